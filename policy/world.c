/* policy/world — parsing NetworkPolicies, Pods, VMIs and Namespaces (see policy.h). */
#include "policy/internal.h"

#include "lib/err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

uint8_t pol_proto_parse(const char *s)
{
	if (strcasecmp(s, "tcp") == 0)
		return POL_TCP;
	if (strcasecmp(s, "udp") == 0)
		return POL_UDP;
	if (strcasecmp(s, "sctp") == 0)
		return POL_SCTP;
	return 0;
}

const char *pol_proto_name(uint8_t proto)
{
	switch (proto) {
	case POL_TCP: return "tcp";
	case POL_UDP: return "udp";
	case POL_SCTP: return "sctp";
	}
	return "?";
}

/* Parsing context: the object's description for error messages. */
struct pctx {
	const struct json_doc *d;  /* the document */
	char obj[320];             /* "NetworkPolicy NS/NAME" */
	struct err *e;             /* where errors go */
};

static int bad(struct pctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int bad(struct pctx *c, const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return err_setx(c->e, EINVAL, "%s: %s", c->obj, msg);
}

/* Decoded string of token i (heap), or NULL (no string, NUL inside, no memory). */
static char *dup_str(const struct json_doc *d, int i)
{
	long n = json_str_len(d, i);
	if (n < 0)
		return NULL;
	char *s = malloc((size_t)n + 1);
	if (s && json_str(d, i, s, (size_t)n + 1) < 0) {
		free(s);
		return NULL;
	}
	return s;
}

/* Member key of obj as a string: 0 and *out (NULL when absent or null), -EINVAL when
 * of another type. */
static int get_str(struct pctx *c, int obj, const char *key, const char *path, char **out)
{
	*out = NULL;
	int t = json_get(c->d, obj, key);
	if (t < 0 || json_is_null(c->d, t))
		return 0;
	if (json_type(c->d, t) != JSON_STRING || !(*out = dup_str(c->d, t)))
		return bad(c, "%s%s: not a string", path, key);
	return 0;
}

/* Token of member key when present and not null, else -1; -EINVAL when present and not
 * of type want. */
static int get_typed(struct pctx *c, int obj, const char *key, enum json_type want,
		     const char *path, int *out)
{
	*out = -1;
	int t = json_get(c->d, obj, key);
	if (t < 0 || json_is_null(c->d, t))
		return 0;
	if (json_type(c->d, t) != want)
		return bad(c, "%s%s: not %s", path, key,
			   want == JSON_OBJECT ? "an object" : want == JSON_ARRAY ? "a list" : "valid");
	*out = t;
	return 0;
}

void pol_labels_free(struct pol_labels *l)
{
	for (unsigned i = 0; i < l->n; i++) {
		free(l->l[i].k);
		free(l->l[i].v);
	}
	free(l->l);
	*l = (struct pol_labels){ 0 };
}

static int labels_add(struct pol_labels *l, const char *k, const char *v)
{
	struct pol_label *n = realloc(l->l, (l->n + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	l->l = n;
	n[l->n].k = strdup(k);
	n[l->n].v = strdup(v);
	if (!n[l->n].k || !n[l->n].v) {
		free(n[l->n].k);
		free(n[l->n].v);
		return -ENOMEM;
	}
	l->n++;
	return 0;
}

const char *pol_labels_get(const struct pol_labels *l, const char *k)
{
	for (unsigned i = 0; i < l->n; i++)
		if (strcmp(l->l[i].k, k) == 0)
			return l->l[i].v;
	return NULL;
}

static int parse_labels(struct pctx *c, int map, const char *path, struct pol_labels *out)
{
	*out = (struct pol_labels){ 0 };
	if (map < 0)
		return 0;
	struct json_iter it;
	int k, v;
	json_iter_init(&it, c->d, map);
	while (json_iter_next(&it, &k, &v)) {
		char *ks = dup_str(c->d, k), *vs = NULL;
		int rc = 0;
		if (!ks)
			rc = bad(c, "%s: bad key", path);
		else if (json_type(c->d, v) != JSON_STRING || !(vs = dup_str(c->d, v)))
			rc = bad(c, "%s[\"%s\"]: not a string", path, ks);
		else if (labels_add(out, ks, vs) < 0)
			rc = err_setx(c->e, ENOMEM, "%s: out of memory", c->obj);
		free(ks);
		free(vs);
		if (rc < 0) {
			pol_labels_free(out);
			return rc;
		}
	}
	return 0;
}

void pol_sel_free(struct pol_sel *s)
{
	for (unsigned i = 0; i < s->n; i++) {
		free(s->reqs[i].key);
		for (unsigned j = 0; j < s->reqs[i].n_vals; j++)
			free(s->reqs[i].vals[j]);
		free(s->reqs[i].vals);
	}
	free(s->reqs);
	*s = (struct pol_sel){ 0 };
}

static struct pol_req *sel_push(struct pol_sel *s)
{
	struct pol_req *n = realloc(s->reqs, (s->n + 1) * sizeof(*n));
	if (!n)
		return NULL;
	s->reqs = n;
	n[s->n] = (struct pol_req){ 0 };
	return &n[s->n++];
}

static int parse_sel(struct pctx *c, int obj, const char *path, struct pol_sel *s)
{
	*s = (struct pol_sel){ .present = true };
	char p[256];
	int ml, me, rc;
	if ((rc = get_typed(c, obj, "matchLabels", JSON_OBJECT, path, &ml)) < 0 ||
	    (rc = get_typed(c, obj, "matchExpressions", JSON_ARRAY, path, &me)) < 0)
		return rc;
	struct json_iter it;
	int k, v;
	if (ml >= 0) {
		json_iter_init(&it, c->d, ml);
		while (json_iter_next(&it, &k, &v)) {
			struct pol_req *r = sel_push(s);
			if (!r)
				goto nomem;
			r->op = POL_OP_IN;
			r->key = dup_str(c->d, k);
			r->vals = calloc(1, sizeof(char *));
			if (!r->key || !r->vals)
				goto nomem;
			if (json_type(c->d, v) != JSON_STRING || !(r->vals[0] = dup_str(c->d, v))) {
				rc = bad(c, "%smatchLabels[\"%s\"]: not a string", path, r->key);
				goto fail;
			}
			r->n_vals = 1;
		}
	}
	if (me >= 0) {
		unsigned idx = 0;
		json_iter_init(&it, c->d, me);
		while (json_iter_next(&it, &k, &v)) {
			snprintf(p, sizeof(p), "%smatchExpressions[%u].", path, idx++);
			if (json_type(c->d, v) != JSON_OBJECT) {
				rc = bad(c, "%.*s: not an object", (int)strlen(p) - 1, p);
				goto fail;
			}
			struct pol_req *r = sel_push(s);
			if (!r)
				goto nomem;
			char *op = NULL;
			int vals;
			if ((rc = get_str(c, v, "key", p, &r->key)) < 0 ||
			    (rc = get_str(c, v, "operator", p, &op)) < 0)
				goto fail;
			if (!r->key || !*r->key) {
				free(op);
				rc = bad(c, "%skey: required", p);
				goto fail;
			}
			if (!op) {
				rc = bad(c, "%soperator: required", p);
				goto fail;
			}
			if (strcmp(op, "In") == 0)
				r->op = POL_OP_IN;
			else if (strcmp(op, "NotIn") == 0)
				r->op = POL_OP_NOTIN;
			else if (strcmp(op, "Exists") == 0)
				r->op = POL_OP_EXISTS;
			else if (strcmp(op, "DoesNotExist") == 0)
				r->op = POL_OP_DNE;
			else {
				rc = bad(c, "%soperator: '%s' is not In, NotIn, Exists or DoesNotExist", p,
					 op);
				free(op);
				goto fail;
			}
			free(op);
			if ((rc = get_typed(c, v, "values", JSON_ARRAY, p, &vals)) < 0)
				goto fail;
			unsigned nv = vals >= 0 ? c->d->tok[vals].size : 0;
			bool set_op = r->op == POL_OP_IN || r->op == POL_OP_NOTIN;
			if (set_op && nv == 0) {
				rc = bad(c, "%svalues: must be non-empty for In and NotIn", p);
				goto fail;
			}
			if (!set_op && nv) {
				rc = bad(c, "%svalues: must be empty for Exists and DoesNotExist", p);
				goto fail;
			}
			if (nv) {
				r->vals = calloc(nv, sizeof(char *));
				if (!r->vals)
					goto nomem;
				struct json_iter vi;
				int vk, vv;
				json_iter_init(&vi, c->d, vals);
				while (json_iter_next(&vi, &vk, &vv)) {
					if (json_type(c->d, vv) != JSON_STRING ||
					    !(r->vals[r->n_vals] = dup_str(c->d, vv))) {
						rc = bad(c, "%svalues[%u]: not a string", p, r->n_vals);
						goto fail;
					}
					r->n_vals++;
				}
			}
		}
	}
	return 0;
nomem:
	rc = err_setx(c->e, ENOMEM, "%s: out of memory", c->obj);
fail:
	pol_sel_free(s);
	return rc;
}

static int parse_peer(struct pctx *c, int obj, const char *path, struct pol_peer *pe)
{
	*pe = (struct pol_peer){ 0 };
	char p[256];
	int ps, ns, ib, rc;
	if (json_type(c->d, obj) != JSON_OBJECT)
		return bad(c, "%.*s: not an object", (int)strlen(path) - 1, path);
	if ((rc = get_typed(c, obj, "podSelector", JSON_OBJECT, path, &ps)) < 0 ||
	    (rc = get_typed(c, obj, "namespaceSelector", JSON_OBJECT, path, &ns)) < 0 ||
	    (rc = get_typed(c, obj, "ipBlock", JSON_OBJECT, path, &ib)) < 0)
		return rc;
	if (ib >= 0 && (ps >= 0 || ns >= 0))
		return bad(c, "%sipBlock: may not be combined with podSelector or namespaceSelector",
			   path);
	if (ib < 0 && ps < 0 && ns < 0)
		return bad(c, "%.*s: needs podSelector, namespaceSelector or ipBlock",
			   (int)strlen(path) - 1, path);
	if (ps >= 0) {
		snprintf(p, sizeof(p), "%spodSelector.", path);
		if ((rc = parse_sel(c, ps, p, &pe->pod_sel)) < 0)
			goto fail;
	}
	if (ns >= 0) {
		snprintf(p, sizeof(p), "%snamespaceSelector.", path);
		if ((rc = parse_sel(c, ns, p, &pe->ns_sel)) < 0)
			goto fail;
	}
	if (ib >= 0) {
		pe->ipblock = true;
		snprintf(p, sizeof(p), "%sipBlock.", path);
		char *cidr = NULL;
		struct ip_addr a;
		uint8_t plen;
		if ((rc = get_str(c, ib, "cidr", p, &cidr)) < 0)
			goto fail;
		if (!cidr || !strchr(cidr, '/') || !ip_parse_prefix(cidr, &a, &plen)) {
			rc = bad(c, "%scidr: '%s' is not a CIDR", p, cidr ? cidr : "");
			free(cidr);
			goto fail;
		}
		free(cidr);
		if (pol_ranges_add_cidr(&pe->block, &a, plen) < 0)
			goto nomem;
		int ex;
		if ((rc = get_typed(c, ib, "except", JSON_ARRAY, p, &ex)) < 0)
			goto fail;
		struct json_iter it;
		int k, v;
		unsigned idx = 0;
		json_iter_init(&it, c->d, ex);
		while (ex >= 0 && json_iter_next(&it, &k, &v)) {
			char *xs = json_type(c->d, v) == JSON_STRING ? dup_str(c->d, v) : NULL;
			struct ip_addr xa;
			uint8_t xl;
			bool ok = xs && strchr(xs, '/') && ip_parse_prefix(xs, &xa, &xl);
			free(xs);
			if (!ok) {
				rc = bad(c, "%sexcept[%u]: not a CIDR", p, idx);
				goto fail;
			}
			struct pol_ranges whole = { 0 };
			bool inside = xa.family == a.family && xl >= plen &&
				      pol_ranges_add_cidr(&whole, &a, plen) == 0 &&
				      pol_ranges_has(&whole, &xa);
			pol_ranges_free(&whole);
			if (!inside) {
				rc = bad(c, "%sexcept[%u]: not inside cidr", p, idx);
				goto fail;
			}
			if (pol_ranges_sub_cidr(&pe->block, &xa, xl) < 0)
				goto nomem;
			idx++;
		}
	}
	return 0;
nomem:
	rc = err_setx(c->e, ENOMEM, "%s: out of memory", c->obj);
fail:
	pol_peer_free(pe);
	return rc;
}

void pol_peer_free(struct pol_peer *pe)
{
	pol_sel_free(&pe->pod_sel);
	pol_sel_free(&pe->ns_sel);
	pol_ranges_free(&pe->block);
}

/* A port number of token t in 1..65535. */
static int port_num(struct pctx *c, int t, const char *what, uint16_t *out)
{
	int64_t n;
	if (json_int64(c->d, t, &n) < 0 || n < 1 || n > 65535)
		return bad(c, "%s: not a port number 1..65535", what);
	*out = (uint16_t)n;
	return 0;
}

static bool port_name_ok(const char *s)
{
	size_t n = strlen(s);
	bool letter = false;
	if (n < 1 || n > 15 || s[0] == '-' || s[n - 1] == '-')
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		if (ch >= 'a' && ch <= 'z')
			letter = true;
		else if (!(ch >= '0' && ch <= '9') && ch != '-')
			return false;
	}
	return letter;
}

static int parse_port(struct pctx *c, int obj, const char *path, struct pol_port *po)
{
	*po = (struct pol_port){ .proto = POL_TCP };
	char what[300];
	int rc;
	if (json_type(c->d, obj) != JSON_OBJECT)
		return bad(c, "%.*s: not an object", (int)strlen(path) - 1, path);
	char *proto = NULL;
	if ((rc = get_str(c, obj, "protocol", path, &proto)) < 0)
		return rc;
	if (proto) {
		/* the API takes exactly "TCP", "UDP", "SCTP" */
		po->proto = (strcmp(proto, "TCP") == 0 || strcmp(proto, "UDP") == 0 ||
			     strcmp(proto, "SCTP") == 0) ? pol_proto_parse(proto) : 0;
		if (!po->proto) {
			rc = bad(c, "%sprotocol: '%s' is not TCP, UDP or SCTP", path, proto);
			free(proto);
			return rc;
		}
		free(proto);
	}
	int t = json_get(c->d, obj, "port");
	int et = json_get(c->d, obj, "endPort");
	if (t >= 0 && json_is_null(c->d, t))
		t = -1;
	if (et >= 0 && json_is_null(c->d, et))
		et = -1;
	if (t < 0) {
		if (et >= 0)
			return bad(c, "%sendPort: needs a numeric port", path);
		po->any_port = true;
		return 0;
	}
	snprintf(what, sizeof(what), "%sport", path);
	if (json_type(c->d, t) == JSON_STRING) {
		po->name = dup_str(c->d, t);
		if (!po->name || !port_name_ok(po->name)) {
			rc = bad(c, "%s: '%s' is not a port name", what, po->name ? po->name : "");
			free(po->name);
			po->name = NULL;
			return rc;
		}
		if (et >= 0) {
			free(po->name);
			po->name = NULL;
			return bad(c, "%sendPort: needs a numeric port", path);
		}
		return 0;
	}
	if ((rc = port_num(c, t, what, &po->port)) < 0)
		return rc;
	po->end_port = po->port;
	if (et >= 0) {
		snprintf(what, sizeof(what), "%sendPort", path);
		if ((rc = port_num(c, et, what, &po->end_port)) < 0)
			return rc;
		if (po->end_port < po->port)
			return bad(c, "%s: %u is below port %u", what, po->end_port, po->port);
	}
	return 0;
}

static void rule_free(struct pol_rule *r)
{
	for (unsigned i = 0; i < r->n_peers; i++)
		pol_peer_free(&r->peers[i]);
	free(r->peers);
	for (unsigned i = 0; i < r->n_ports; i++)
		free(r->ports[i].name);
	free(r->ports);
	*r = (struct pol_rule){ 0 };
}

static int parse_rule(struct pctx *c, int obj, enum pol_dir dir, const char *path,
		      struct pol_rule *r)
{
	*r = (struct pol_rule){ 0 };
	char p[256];
	int peers, ports, rc;
	const char *pk = dir == POL_INGRESS ? "from" : "to";
	if (json_type(c->d, obj) != JSON_OBJECT)
		return bad(c, "%.*s: not an object", (int)strlen(path) - 1, path);
	if ((rc = get_typed(c, obj, pk, JSON_ARRAY, path, &peers)) < 0 ||
	    (rc = get_typed(c, obj, "ports", JSON_ARRAY, path, &ports)) < 0)
		return rc;
	unsigned np = peers >= 0 ? c->d->tok[peers].size : 0;
	unsigned nq = ports >= 0 ? c->d->tok[ports].size : 0;
	r->all_peers = np == 0;
	r->all_ports = nq == 0;
	if ((np && !(r->peers = calloc(np, sizeof(*r->peers)))) ||
	    (nq && !(r->ports = calloc(nq, sizeof(*r->ports)))))
		goto nomem;
	struct json_iter it;
	int k, v;
	if (np) {
		json_iter_init(&it, c->d, peers);
		while (json_iter_next(&it, &k, &v)) {
			snprintf(p, sizeof(p), "%s%s[%u].", path, pk, r->n_peers);
			if ((rc = parse_peer(c, v, p, &r->peers[r->n_peers])) < 0)
				goto fail;
			r->n_peers++;
		}
	}
	if (nq) {
		json_iter_init(&it, c->d, ports);
		while (json_iter_next(&it, &k, &v)) {
			snprintf(p, sizeof(p), "%sports[%u].", path, r->n_ports);
			if ((rc = parse_port(c, v, p, &r->ports[r->n_ports])) < 0)
				goto fail;
			r->n_ports++;
		}
	}
	return 0;
nomem:
	rc = err_setx(c->e, ENOMEM, "%s: out of memory", c->obj);
fail:
	rule_free(r);
	return rc;
}

void pol_policy_free(struct pol_policy *p)
{
	free(p->ns);
	free(p->name);
	pol_sel_free(&p->pod_sel);
	for (int d = 0; d < POL_NDIR; d++) {
		for (unsigned i = 0; i < p->n_rules[d]; i++)
			rule_free(&p->rules[d][i]);
		free(p->rules[d]);
	}
	for (unsigned i = 0; i < p->n_nets; i++)
		free(p->nets[i]);
	free(p->nets);
	*p = (struct pol_policy){ 0 };
}

/* "NAD" or "NS/NAD" as "NS/NAD" (ns: the object's namespace) into a heap string. */
static char *net_name(const char *ns, const char *s, size_t n)
{
	while (n && (*s == ' ' || *s == '\t'))
		s++, n--;
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	char *out = NULL;
	if (!n)
		return NULL;
	if (memchr(s, '/', n)) {
		if (asprintf(&out, "%.*s", (int)n, s) < 0)
			return NULL;
	} else if (asprintf(&out, "%s/%.*s", ns, (int)n, s) < 0) {
		return NULL;
	}
	return out;
}

/* The annotation `key` of metadata md as a heap string (*out NULL when absent). */
static int get_annotation(struct pctx *c, int md, const char *key, char **out)
{
	int an, rc;
	*out = NULL;
	if ((rc = get_typed(c, md, "annotations", JSON_OBJECT, "metadata.", &an)) < 0 || an < 0)
		return rc < 0 ? rc : 0;
	char path[128];
	snprintf(path, sizeof(path), "metadata.annotations.");
	return get_str(c, an, key, path, out);
}

#define POL_POLICY_FOR "k8s.v1.cni.cncf.io/policy-for"
#define POL_NET_STATUS "k8s.v1.cni.cncf.io/network-status"

/* A MultiNetworkPolicy's policy-for annotation: comma-separated [NS/]NAD, at least one. */
static int parse_policy_for(struct pctx *c, int obj, struct pol_policy *p)
{
	char *v = NULL;
	int rc = get_annotation(c, json_get(c->d, obj, "metadata"), POL_POLICY_FOR, &v);
	if (rc < 0)
		return rc;
	if (!v)
		return bad(c, "metadata.annotations." POL_POLICY_FOR ": required");
	for (const char *s = v; *s;) {
		const char *comma = strchr(s, ',');
		size_t n = comma ? (size_t)(comma - s) : strlen(s);
		char *one = net_name(p->ns, s, n);
		if (one && (strchr(one, '/') != strrchr(one, '/') || one[strlen(one) - 1] == '/' ||
			    one[0] == '/')) {
			int rc2 = bad(c, "metadata.annotations." POL_POLICY_FOR ": %.*s: not NAD or "
					 "NAMESPACE/NAD", (int)n, s);
			free(one);
			free(v);
			return rc2;
		}
		char **nn = one ? realloc(p->nets, (p->n_nets + 1) * sizeof(*nn)) : NULL;
		if (one && !nn) {
			free(one);
			free(v);
			return err_setx(c->e, ENOMEM, "%s: out of memory", c->obj);
		}
		if (one) {
			p->nets = nn;
			p->nets[p->n_nets++] = one;
		}
		s += n + (comma ? 1 : 0);
	}
	free(v);
	if (!p->n_nets)
		return bad(c, "metadata.annotations." POL_POLICY_FOR ": names no network");
	return 0;
}

/* metadata.name / namespace (namespace defaults to "default" when ns_default). */
static int parse_meta(struct pctx *c, int obj, const char *kind, bool namespaced, char **ns,
		      char **name)
{
	int md, rc;
	*ns = *name = NULL;
	snprintf(c->obj, sizeof(c->obj), "%s", kind);
	if ((rc = get_typed(c, obj, "metadata", JSON_OBJECT, "", &md)) < 0)
		return rc;
	if (md < 0)
		return bad(c, "metadata: required");
	if ((rc = get_str(c, md, "name", "metadata.", name)) < 0)
		return rc;
	if (!*name || !**name) {
		free(*name);
		*name = NULL;
		return bad(c, "metadata.name: required");
	}
	if (namespaced) {
		if ((rc = get_str(c, md, "namespace", "metadata.", ns)) < 0)
			goto fail;
		if (!*ns && !(*ns = strdup("default")))
			goto fail;
		snprintf(c->obj, sizeof(c->obj), "%s %s/%s", kind, *ns, *name);
	} else {
		snprintf(c->obj, sizeof(c->obj), "%s %s", kind, *name);
	}
	return 0;
fail:
	free(*name);
	free(*ns);
	*name = *ns = NULL;
	return rc < 0 ? rc : -ENOMEM;
}

static int parse_policy(struct pctx *c, int obj, bool multi, struct pol_policy *p)
{
	*p = (struct pol_policy){ .multi = multi };
	int rc, spec, ps, types, dirs[POL_NDIR];
	if ((rc = parse_meta(c, obj, multi ? "MultiNetworkPolicy" : "NetworkPolicy", true, &p->ns,
			     &p->name)) < 0)
		return rc;
	p->multi = multi;
	if (multi && (rc = parse_policy_for(c, obj, p)) < 0)
		goto fail;
	if ((rc = get_typed(c, obj, "spec", JSON_OBJECT, "", &spec)) < 0)
		goto fail;
	if (spec < 0) {
		rc = bad(c, "spec: required");
		goto fail;
	}
	if ((rc = get_typed(c, spec, "podSelector", JSON_OBJECT, "spec.", &ps)) < 0)
		goto fail;
	if (ps < 0) {
		rc = bad(c, "spec.podSelector: required");
		goto fail;
	}
	if ((rc = parse_sel(c, ps, "spec.podSelector.", &p->pod_sel)) < 0)
		goto fail;
	if ((rc = get_typed(c, spec, "ingress", JSON_ARRAY, "spec.", &dirs[0])) < 0 ||
	    (rc = get_typed(c, spec, "egress", JSON_ARRAY, "spec.", &dirs[1])) < 0 ||
	    (rc = get_typed(c, spec, "policyTypes", JSON_ARRAY, "spec.", &types)) < 0)
		goto fail;
	if (types < 0) {
		p->types[POL_INGRESS] = true;
		p->types[POL_EGRESS] = dirs[1] >= 0;
	} else {
		struct json_iter it;
		int k, v;
		unsigned idx = 0;
		json_iter_init(&it, c->d, types);
		while (json_iter_next(&it, &k, &v)) {
			if (json_str_eq(c->d, v, "Ingress", 7))
				p->types[POL_INGRESS] = true;
			else if (json_str_eq(c->d, v, "Egress", 6))
				p->types[POL_EGRESS] = true;
			else {
				rc = bad(c, "spec.policyTypes[%u]: not Ingress or Egress", idx);
				goto fail;
			}
			idx++;
		}
	}
	for (int d = 0; d < POL_NDIR; d++) {
		if (dirs[d] < 0)
			continue;
		unsigned n = c->d->tok[dirs[d]].size;
		if (n && !(p->rules[d] = calloc(n, sizeof(struct pol_rule)))) {
			rc = err_setx(c->e, ENOMEM, "%s: out of memory", c->obj);
			goto fail;
		}
		struct json_iter it;
		int k, v;
		json_iter_init(&it, c->d, dirs[d]);
		while (json_iter_next(&it, &k, &v)) {
			char path[64];
			snprintf(path, sizeof(path), "spec.%s[%u].", d ? "egress" : "ingress",
				 p->n_rules[d]);
			if ((rc = parse_rule(c, v, (enum pol_dir)d, path,
					     &p->rules[d][p->n_rules[d]])) < 0)
				goto fail;
			p->n_rules[d]++;
		}
	}
	return 0;
fail:
	pol_policy_free(p);
	return rc;
}

void pol_pod_free(struct pol_pod *p)
{
	free(p->ns);
	free(p->name);
	pol_labels_free(&p->labels);
	for (unsigned i = 0; i < p->n_ports; i++)
		free(p->ports[i].name);
	free(p->ports);
	for (unsigned i = 0; i < p->n_nets; i++)
		free(p->nets[i].net);
	free(p->nets);
	*p = (struct pol_pod){ 0 };
}

/* The entry of network net (heap string, taken) of p, made when missing; NULL (net
 * freed) without memory. */
static struct pol_podnet *pod_net_take(struct pol_pod *p, char *net)
{
	for (unsigned i = 0; i < p->n_nets; i++)
		if (strcmp(p->nets[i].net, net) == 0) {
			free(net);
			return &p->nets[i];
		}
	struct pol_podnet *n = realloc(p->nets, (p->n_nets + 1) * sizeof(*n));
	if (!n) {
		free(net);
		return NULL;
	}
	p->nets = n;
	n[p->n_nets] = (struct pol_podnet){ .net = net };
	return &n[p->n_nets++];
}

static int net_add_ip(struct pctx *c, struct pol_podnet *n, int t, const char *what)
{
	char buf[64];
	struct ip_addr a;
	if (json_type(c->d, t) != JSON_STRING || json_str(c->d, t, buf, sizeof(buf)) < 0)
		return bad(c, "%s: not an IP address", what);
	char *slash = strchr(buf, '/'); /* network-status may carry a prefix length */
	if (slash)
		*slash = 0;
	if (!ip_parse(buf, &a))
		return bad(c, "%s: not an IP address", what);
	for (unsigned i = 0; i < n->n_ips; i++)
		if (ip_eq(&n->ips[i], &a))
			return 0;
	if (n->n_ips < POL_IPS_MAX)
		n->ips[n->n_ips++] = a;
	return 0;
}

/* The pod's k8s.v1.cni.cncf.io/network-status annotation (Multus): a JSON list of
 * {name, interface, ips, default}; every non-default entry is a secondary network. */
static int pod_net_status(struct pctx *c, struct pol_pod *p, int md)
{
	char *v = NULL;
	int rc = get_annotation(c, md, POL_NET_STATUS, &v);
	if (rc < 0 || !v)
		return rc;
	struct json_doc d;
	struct json_tok *tok = NULL;
	struct pctx sub = *c;
	sub.d = &d;
	if (json_parse_alloc(&d, v, strlen(v), &tok, NULL) < 0 || json_type(&d, 0) != JSON_ARRAY) {
		rc = bad(c, "metadata.annotations." POL_NET_STATUS ": not a JSON list");
		goto out;
	}
	struct json_iter it, jt;
	int k, e, k2, v2;
	unsigned idx = 0;
	json_iter_init(&it, &d, 0);
	while (json_iter_next(&it, &k, &e)) {
		char what[160], nm[256];
		snprintf(what, sizeof(what), "metadata.annotations." POL_NET_STATUS "[%u]", idx++);
		int nt = json_type(&d, e) == JSON_OBJECT ? json_get(&d, e, "name") : -1;
		if (nt < 0 || json_str(&d, nt, nm, sizeof(nm)) < 0) {
			rc = bad(c, "%s.name: required", what);
			goto out;
		}
		int dt = json_get(&d, e, "default");
		bool def = false;
		if (dt >= 0 && json_bool(&d, dt, &def) == 0 && def)
			continue;
		struct pol_podnet *n = pod_net_take(p, net_name(p->ns, nm, strlen(nm)));
		if (!n) {
			rc = err_setx(c->e, ENOMEM, "%s: out of memory", c->obj);
			goto out;
		}
		int ips = json_get(&d, e, "ips");
		if (ips < 0)
			continue;
		if (json_type(&d, ips) != JSON_ARRAY) {
			rc = bad(c, "%s.ips: not a list", what);
			goto out;
		}
		unsigned j = 0;
		json_iter_init(&jt, &d, ips);
		while (json_iter_next(&jt, &k2, &v2)) {
			char w2[200];
			snprintf(w2, sizeof(w2), "%s.ips[%u]", what, j++);
			if ((rc = net_add_ip(&sub, n, v2, w2)) < 0)
				goto out;
		}
	}
	rc = 0;
out:
	free(tok);
	free(v);
	return rc;
}

/* A VMI's secondary networks: spec.networks[] {name, multus.networkName} (not
 * multus.default) joined with status.interfaces[] {name, ipAddress(es)}. */
static int vmi_nets(struct pctx *c, struct pol_pod *p, int spec, int status)
{
	int nets = spec >= 0 ? json_get(c->d, spec, "networks") : -1;
	int ifs = status >= 0 ? json_get(c->d, status, "interfaces") : -1;
	if (nets < 0 || json_type(c->d, nets) != JSON_ARRAY)
		return 0;
	struct json_iter it, jt, kt;
	int k, v, k2, v2, k3, v3, rc;
	json_iter_init(&it, c->d, nets);
	while (json_iter_next(&it, &k, &v)) {
		char nm[256], nad[256];
		int mt = json_type(c->d, v) == JSON_OBJECT ? json_get(c->d, v, "multus") : -1;
		int nn = mt >= 0 && json_type(c->d, mt) == JSON_OBJECT
			 ? json_get(c->d, mt, "networkName") : -1;
		int dt = mt >= 0 && json_type(c->d, mt) == JSON_OBJECT ? json_get(c->d, mt, "default")
									 : -1;
		bool def = false;
		if (nn < 0 || (dt >= 0 && json_bool(c->d, dt, &def) == 0 && def))
			continue;
		int namt = json_get(c->d, v, "name");
		if (namt < 0 || json_str(c->d, namt, nm, sizeof(nm)) < 0 ||
		    json_str(c->d, nn, nad, sizeof(nad)) < 0)
			return bad(c, "spec.networks: name and multus.networkName must be strings");
		struct pol_podnet *n = pod_net_take(p, net_name(p->ns, nad, strlen(nad)));
		if (!n)
			return err_setx(c->e, ENOMEM, "%s: out of memory", c->obj);
		if (ifs < 0 || json_type(c->d, ifs) != JSON_ARRAY)
			continue;
		json_iter_init(&jt, c->d, ifs);
		while (json_iter_next(&jt, &k2, &v2)) {
			int in = json_type(c->d, v2) == JSON_OBJECT ? json_get(c->d, v2, "name") : -1;
			if (in < 0 || !json_str_eq(c->d, in, nm, strlen(nm)))
				continue;
			int one = json_get(c->d, v2, "ipAddress"), many = json_get(c->d, v2, "ipAddresses");
			if (one >= 0 && !json_is_null(c->d, one) &&
			    (rc = net_add_ip(c, n, one, "status.interfaces[].ipAddress")) < 0)
				return rc;
			if (many >= 0 && json_type(c->d, many) == JSON_ARRAY) {
				json_iter_init(&kt, c->d, many);
				while (json_iter_next(&kt, &k3, &v3))
					if ((rc = net_add_ip(c, n, v3, "status.interfaces[].ipAddresses")) < 0)
						return rc;
			}
		}
	}
	return 0;
}

/* True when VMI interface `in` (a token of status.interfaces[]) is one of its secondary
 * networks (spec.networks[] with multus.networkName, not multus.default): its addresses
 * are the VMI's on that network (vmi_nets), never cluster addresses. */
static bool vmi_secondary_if(const struct pctx *c, int spec, int in)
{
	int nets = spec >= 0 ? json_get(c->d, spec, "networks") : -1;
	int nm = json_get(c->d, in, "name");
	char name[256];
	if (nets < 0 || json_type(c->d, nets) != JSON_ARRAY || nm < 0 ||
	    json_str(c->d, nm, name, sizeof(name)) < 0)
		return false;
	struct json_iter it;
	int k, v;
	json_iter_init(&it, c->d, nets);
	while (json_iter_next(&it, &k, &v)) {
		int mt = json_type(c->d, v) == JSON_OBJECT ? json_get(c->d, v, "multus") : -1;
		int namt = mt >= 0 ? json_get(c->d, v, "name") : -1;
		if (mt < 0 || json_type(c->d, mt) != JSON_OBJECT || namt < 0 ||
		    json_get(c->d, mt, "networkName") < 0 ||
		    !json_str_eq(c->d, namt, name, strlen(name)))
			continue;
		int dt = json_get(c->d, mt, "default");
		bool def = false;
		return !(dt >= 0 && json_bool(c->d, dt, &def) == 0 && def);
	}
	return false;
}

static int pod_add_ip(struct pctx *c, struct pol_pod *p, int t, const char *what)
{
	char buf[64];
	struct ip_addr a;
	if (json_type(c->d, t) != JSON_STRING || json_str(c->d, t, buf, sizeof(buf)) < 0 ||
	    !ip_parse(buf, &a))
		return bad(c, "%s: not an IP address", what);
	for (unsigned i = 0; i < p->n_ips; i++)
		if (ip_eq(&p->ips[i], &a))
			return 0;
	if (p->n_ips < POL_IPS_MAX)
		p->ips[p->n_ips++] = a;
	return 0;
}

/* Container ports (pods: spec.containers[].ports[] with containerPort; VMIs:
 * spec.domain.devices.interfaces[].ports[] with port). */
static int pod_add_ports(struct pctx *c, struct pol_pod *p, int list, const char *path,
			 const char *numkey)
{
	struct json_iter it;
	int k, v, rc;
	unsigned idx = 0;
	json_iter_init(&it, c->d, list);
	while (json_iter_next(&it, &k, &v)) {
		char pp[128], what[160];
		snprintf(pp, sizeof(pp), "%s[%u].", path, idx++);
		if (json_type(c->d, v) != JSON_OBJECT)
			return bad(c, "%.*s: not an object", (int)strlen(pp) - 1, pp);
		char *name = NULL, *proto = NULL;
		if ((rc = get_str(c, v, "name", pp, &name)) < 0)
			return rc;
		if ((rc = get_str(c, v, "protocol", pp, &proto)) < 0) {
			free(name);
			return rc;
		}
		uint8_t pr = proto ? pol_proto_parse(proto) : POL_TCP;
		free(proto);
		int nt = json_get(c->d, v, numkey);
		uint16_t num = 0;
		snprintf(what, sizeof(what), "%s%s", pp, numkey);
		if (!pr)
			rc = bad(c, "%sprotocol: not TCP, UDP or SCTP", pp);
		else if (nt < 0)
			rc = bad(c, "%s: required", what);
		else
			rc = port_num(c, nt, what, &num);
		if (rc < 0 || !name) {
			free(name);
			if (rc < 0)
				return rc;
			continue;
		}
		struct pol_named_port *n = realloc(p->ports, (p->n_ports + 1) * sizeof(*n));
		if (!n) {
			free(name);
			return err_setx(c->e, ENOMEM, "%s: out of memory", c->obj);
		}
		p->ports = n;
		n[p->n_ports++] = (struct pol_named_port){ .name = name, .proto = pr, .port = num };
	}
	return 0;
}

/* A pod NetworkPolicy does not see (p->inactive set): one on the host network (its
 * address is the node's, only an ipBlock can name it) or one that has ended (phase
 * Succeeded or Failed: its address may already belong to another pod). */
static int pod_inactive(struct pctx *c, int spec, int status, struct pol_pod *p)
{
	int t;
	if (spec >= 0 && (t = json_get(c->d, spec, "hostNetwork")) >= 0 && !json_is_null(c->d, t)) {
		bool b;
		if (json_bool(c->d, t, &b) < 0)
			return bad(c, "spec.hostNetwork: not a boolean");
		if (b)
			p->inactive = "runs on the host network (its address is the node's; only an "
				      "ipBlock can name it)";
	}
	if (status >= 0 && (t = json_get(c->d, status, "phase")) >= 0 && !json_is_null(c->d, t)) {
		char ph[32];
		if (json_str(c->d, t, ph, sizeof(ph)) < 0)
			return bad(c, "status.phase: not a short string");
		if (strcmp(ph, "Succeeded") == 0 || strcmp(ph, "Failed") == 0)
			p->inactive = strcmp(ph, "Failed") == 0
				      ? "has ended (phase Failed; its address may be another pod's)"
				      : "has ended (phase Succeeded; its address may be another pod's)";
	}
	return 0;
}

static int parse_pod(struct pctx *c, int obj, bool vm, struct pol_pod *p)
{
	*p = (struct pol_pod){ .vm = vm };
	int rc, md, lab, spec, status;
	if ((rc = parse_meta(c, obj, vm ? "VirtualMachineInstance" : "Pod", true, &p->ns,
			     &p->name)) < 0)
		return rc;
	md = json_get(c->d, obj, "metadata");
	if ((rc = get_typed(c, md, "labels", JSON_OBJECT, "metadata.", &lab)) < 0 ||
	    (rc = parse_labels(c, lab, "metadata.labels", &p->labels)) < 0)
		goto fail;
	if ((rc = get_typed(c, obj, "spec", JSON_OBJECT, "", &spec)) < 0 ||
	    (rc = get_typed(c, obj, "status", JSON_OBJECT, "", &status)) < 0)
		goto fail;
	if (!vm && (rc = pod_inactive(c, spec, status, p)) < 0)
		goto fail;
	if (!vm && (rc = pod_net_status(c, p, md)) < 0)
		goto fail;
	if (vm && (rc = vmi_nets(c, p, spec, status)) < 0)
		goto fail;
	char path[128];
	struct json_iter it, jt;
	int k, v, k2, v2;
	if (!vm && spec >= 0) {
		int conts;
		if ((rc = get_typed(c, spec, "containers", JSON_ARRAY, "spec.", &conts)) < 0)
			goto fail;
		unsigned ci = 0;
		json_iter_init(&it, c->d, conts);
		while (conts >= 0 && json_iter_next(&it, &k, &v)) {
			int ports;
			snprintf(path, sizeof(path), "spec.containers[%u].", ci);
			if (json_type(c->d, v) != JSON_OBJECT) {
				rc = bad(c, "spec.containers[%u]: not an object", ci);
				goto fail;
			}
			if ((rc = get_typed(c, v, "ports", JSON_ARRAY, path, &ports)) < 0)
				goto fail;
			snprintf(path, sizeof(path), "spec.containers[%u].ports", ci);
			if (ports >= 0 && (rc = pod_add_ports(c, p, ports, path, "containerPort")) < 0)
				goto fail;
			ci++;
		}
	}
	if (vm && spec >= 0) {
		int ifs = json_path(c->d, spec, "domain.devices.interfaces");
		if (ifs >= 0 && json_type(c->d, ifs) == JSON_ARRAY) {
			unsigned ii = 0;
			json_iter_init(&it, c->d, ifs);
			while (json_iter_next(&it, &k, &v)) {
				int ports;
				snprintf(path, sizeof(path), "spec.domain.devices.interfaces[%u].", ii);
				if (json_type(c->d, v) != JSON_OBJECT) {
					rc = bad(c, "%.*s: not an object", (int)strlen(path) - 1, path);
					goto fail;
				}
				if ((rc = get_typed(c, v, "ports", JSON_ARRAY, path, &ports)) < 0)
					goto fail;
				snprintf(path, sizeof(path), "spec.domain.devices.interfaces[%u].ports",
					 ii);
				if (ports >= 0 && (rc = pod_add_ports(c, p, ports, path, "port")) < 0)
					goto fail;
				ii++;
			}
		}
	}
	if (status >= 0 && !vm) {
		int one = json_get(c->d, status, "podIP"), many;
		if (one >= 0 && !json_is_null(c->d, one) &&
		    (rc = pod_add_ip(c, p, one, "status.podIP")) < 0)
			goto fail;
		if ((rc = get_typed(c, status, "podIPs", JSON_ARRAY, "status.", &many)) < 0)
			goto fail;
		unsigned idx = 0;
		json_iter_init(&it, c->d, many);
		while (many >= 0 && json_iter_next(&it, &k, &v)) {
			snprintf(path, sizeof(path), "status.podIPs[%u].ip", idx++);
			int ipt = json_type(c->d, v) == JSON_OBJECT ? json_get(c->d, v, "ip") : -1;
			if (ipt < 0) {
				rc = bad(c, "%s: required", path);
				goto fail;
			}
			if ((rc = pod_add_ip(c, p, ipt, path)) < 0)
				goto fail;
		}
	}
	if (status >= 0 && vm) {
		int ifs;
		if ((rc = get_typed(c, status, "interfaces", JSON_ARRAY, "status.", &ifs)) < 0)
			goto fail;
		unsigned ii = 0;
		json_iter_init(&it, c->d, ifs);
		while (ifs >= 0 && json_iter_next(&it, &k, &v)) {
			snprintf(path, sizeof(path), "status.interfaces[%u].", ii++);
			if (json_type(c->d, v) != JSON_OBJECT) {
				rc = bad(c, "%.*s: not an object", (int)strlen(path) - 1, path);
				goto fail;
			}
			/* an L2 (secondary) interface's addresses must not make the VMI a
			 * NetworkPolicy peer or endpoint on the cluster network */
			if (vmi_secondary_if(c, spec, v))
				continue;
			int one = json_get(c->d, v, "ipAddress"), many;
			char what[160];
			snprintf(what, sizeof(what), "%sipAddress", path);
			if (one >= 0 && !json_is_null(c->d, one) &&
			    (rc = pod_add_ip(c, p, one, what)) < 0)
				goto fail;
			if ((rc = get_typed(c, v, "ipAddresses", JSON_ARRAY, path, &many)) < 0)
				goto fail;
			unsigned j = 0;
			json_iter_init(&jt, c->d, many);
			while (many >= 0 && json_iter_next(&jt, &k2, &v2)) {
				snprintf(what, sizeof(what), "%sipAddresses[%u]", path, j++);
				if ((rc = pod_add_ip(c, p, v2, what)) < 0)
					goto fail;
			}
		}
	}
	return 0;
fail:
	pol_pod_free(p);
	return rc;
}

static int parse_ns(struct pctx *c, int obj, struct pol_ns *n)
{
	*n = (struct pol_ns){ 0 };
	char *unused;
	int rc, lab;
	if ((rc = parse_meta(c, obj, "Namespace", false, &unused, &n->name)) < 0)
		return rc;
	int md = json_get(c->d, obj, "metadata");
	if ((rc = get_typed(c, md, "labels", JSON_OBJECT, "metadata.", &lab)) < 0 ||
	    (rc = parse_labels(c, lab, "metadata.labels", &n->labels)) < 0)
		goto fail;
	/* the API server sets this label on every namespace */
	if (!pol_labels_get(&n->labels, "kubernetes.io/metadata.name") &&
	    labels_add(&n->labels, "kubernetes.io/metadata.name", n->name) < 0) {
		rc = err_setx(c->e, ENOMEM, "%s: out of memory", c->obj);
		goto fail;
	}
	return 0;
fail:
	free(n->name);
	pol_labels_free(&n->labels);
	*n = (struct pol_ns){ 0 };
	return rc;
}

struct pol_world *pol_world_new(void)
{
	return calloc(1, sizeof(struct pol_world));
}

void pol_world_free(struct pol_world *w)
{
	if (!w)
		return;
	if (w->view) {
		free(w->pol);
		free(w->pods);
		free(w);
		return;
	}
	for (unsigned i = 0; i < w->n_pol; i++)
		pol_policy_free(&w->pol[i]);
	for (unsigned i = 0; i < w->n_mpol; i++)
		pol_policy_free(&w->mpol[i]);
	free(w->mpol);
	for (unsigned i = 0; i < w->n_pods; i++)
		pol_pod_free(&w->pods[i]);
	for (unsigned i = 0; i < w->n_ns; i++) {
		free(w->ns[i].name);
		pol_labels_free(&w->ns[i].labels);
	}
	for (unsigned i = 0; i < w->n_inactive; i++)
		free(w->inactive[i]);
	free(w->inactive);
	free(w->pol);
	free(w->pods);
	free(w->ns);
	free(w);
}

unsigned pol_world_npolicies(const struct pol_world *w)
{
	return w->n_pol;
}

unsigned pol_world_npods(const struct pol_world *w)
{
	return w->n_pods;
}

static bool grow(void **arr, unsigned n, size_t elem)
{
	void *p = realloc(*arr, (n + 1) * elem);
	if (!p)
		return false;
	*arr = p;
	return true;
}

static int add_one(struct pol_world *w, struct pctx *c, int obj, unsigned *added, int depth)
{
	int rc;
	char kind[64] = "";
	int kt = json_get(c->d, obj, "kind");
	if (json_type(c->d, obj) != JSON_OBJECT)
		return err_setx(c->e, EINVAL, "object: not a JSON object");
	if (kt >= 0 && json_str(c->d, kt, kind, sizeof(kind)) < 0)
		return err_setx(c->e, EINVAL, "object: kind: not a short string");
	size_t kl = strlen(kind);
	int items = json_get(c->d, obj, "items");
	if (kl >= 4 && strcmp(kind + kl - 4, "List") == 0 && items >= 0) {
		if (depth > 0 || json_type(c->d, items) != JSON_ARRAY)
			return err_setx(c->e, EINVAL, "%s: items: not a list of objects", kind);
		/* items of a typed list (PodList) carry no kind */
		char ik[64] = "";
		if (strcmp(kind, "List") != 0)
			snprintf(ik, sizeof(ik), "%.*s", (int)(kl - 4), kind);
		struct json_iter it;
		int k, v;
		unsigned idx = 0;
		json_iter_init(&it, c->d, items);
		while (json_iter_next(&it, &k, &v)) {
			if (json_type(c->d, v) != JSON_OBJECT)
				return err_setx(c->e, EINVAL, "%s: items[%u]: not an object", kind, idx);
			if (*ik && json_get(c->d, v, "kind") < 0)
				rc = pol_world_add_kind(w, c->d, v, ik, added, c->e);
			else
				rc = add_one(w, c, v, added, depth + 1);
			if (rc < 0)
				return err_prefix(c->e, "%s: items[%u]", kind, idx), rc;
			idx++;
		}
		return 0;
	}
	return pol_world_add_kind(w, c->d, obj, kind, added, c->e);
}

int pol_world_add_kind(struct pol_world *w, const struct json_doc *d, int obj,
		       const char *kind, unsigned *added, struct err *e)
{
	struct pctx c = { .d = d, .e = e };
	int rc;
	if (strcmp(kind, "NetworkPolicy") == 0) {
		if (!grow((void **)&w->pol, w->n_pol, sizeof(*w->pol)))
			return err_setx(e, ENOMEM, "NetworkPolicy: out of memory");
		if ((rc = parse_policy(&c, obj, false, &w->pol[w->n_pol])) < 0)
			return rc;
		w->n_pol++;
	} else if (strcmp(kind, "MultiNetworkPolicy") == 0) {
		if (!grow((void **)&w->mpol, w->n_mpol, sizeof(*w->mpol)))
			return err_setx(e, ENOMEM, "MultiNetworkPolicy: out of memory");
		if ((rc = parse_policy(&c, obj, true, &w->mpol[w->n_mpol])) < 0)
			return rc;
		w->n_mpol++;
	} else if (strcmp(kind, "Pod") == 0 || strcmp(kind, "VirtualMachineInstance") == 0) {
		if (!grow((void **)&w->pods, w->n_pods, sizeof(*w->pods)))
			return err_setx(e, ENOMEM, "Pod: out of memory");
		if ((rc = parse_pod(&c, obj, kind[0] == 'V', &w->pods[w->n_pods])) < 0)
			return rc;
		struct pol_pod *np = &w->pods[w->n_pods];
		if (np->inactive) {
			/* out of policy's world: neither an endpoint nor a peer */
			char *line = NULL;
			bool ok = grow((void **)&w->inactive, w->n_inactive, sizeof(*w->inactive)) &&
				  asprintf(&line, "%s/%s\t%s", np->ns, np->name, np->inactive) >= 0;
			pol_pod_free(np);
			if (!ok)
				return err_setx(e, ENOMEM, "Pod: out of memory");
			w->inactive[w->n_inactive++] = line;
			return 0;
		}
		w->n_pods++;
	} else if (strcmp(kind, "Namespace") == 0) {
		if (!grow((void **)&w->ns, w->n_ns, sizeof(*w->ns)))
			return err_setx(e, ENOMEM, "Namespace: out of memory");
		if ((rc = parse_ns(&c, obj, &w->ns[w->n_ns])) < 0)
			return rc;
		w->n_ns++;
	} else {
		return 0;
	}
	if (added)
		(*added)++;
	return 0;
}

int pol_world_add(struct pol_world *w, const struct json_doc *d, int obj, unsigned *added,
		  struct err *e)
{
	struct pctx c = { .d = d, .e = e };
	return add_one(w, &c, obj, added, 0);
}

int pol_world_add_json(struct pol_world *w, const char *text, size_t len, unsigned *added,
		       struct err *e)
{
	struct json_doc d;
	struct json_tok *tok;
	int rc = json_parse_alloc(&d, text, len, &tok, e);
	if (rc == 0)
		rc = pol_world_add(w, &d, 0, added, e);
	free(tok);
	return rc;
}

int pol_world_add_json_kind(struct pol_world *w, const char *text, size_t len,
			    const char *kind, unsigned *added, struct err *e)
{
	struct json_doc d;
	struct json_tok *tok;
	int rc = json_parse_alloc(&d, text, len, &tok, e);
	if (rc == 0 && d.tok[0].type != JSON_OBJECT)
		rc = err_setx(e, EINVAL, "%s: not a JSON object", kind);
	if (rc == 0)
		rc = pol_world_add_kind(w, &d, 0, kind, added, e);
	free(tok);
	return rc;
}

unsigned pol_world_ninactive(const struct pol_world *w)
{
	return w->n_inactive;
}

const char *pol_world_inactive_why(const struct pol_world *w, const char *ns, const char *name)
{
	size_t nl = strlen(ns), ml = strlen(name);
	for (unsigned i = 0; i < w->n_inactive; i++) {
		const char *l = w->inactive[i];
		if (strncmp(l, ns, nl) == 0 && l[nl] == '/' && strncmp(l + nl + 1, name, ml) == 0 &&
		    l[nl + 1 + ml] == '\t')
			return l + nl + ml + 2;
	}
	return NULL;
}

bool pol_world_find_ip(const struct pol_world *w, const struct ip_addr *ip, const char **ns,
		       const char **name, bool *vm)
{
	const struct pol_pod *hit = NULL;
	for (unsigned i = 0; i < w->n_pods; i++) {
		const struct pol_pod *p = &w->pods[i];
		for (unsigned j = 0; j < p->n_ips; j++)
			if (ip_eq(&p->ips[j], ip) && (!hit || (p->vm && !hit->vm)))
				hit = p;
	}
	if (!hit)
		return false;
	*ns = hit->ns;
	*name = hit->name;
	*vm = hit->vm;
	return true;
}

static bool policy_for(const struct pol_policy *p, const char *net)
{
	for (unsigned i = 0; i < p->n_nets; i++)
		if (strcmp(p->nets[i], net) == 0)
			return true;
	return false;
}

struct pol_world *pol_world_net(const struct pol_world *w, const char *net)
{
	struct pol_world *v = calloc(1, sizeof(*v));
	if (!v)
		return NULL;
	v->view = true;
	v->ns = w->ns;
	v->n_ns = w->n_ns;
	v->inactive = w->inactive;
	v->n_inactive = w->n_inactive;
	if ((w->n_mpol && !(v->pol = calloc(w->n_mpol, sizeof(*v->pol)))) ||
	    (w->n_pods && !(v->pods = calloc(w->n_pods, sizeof(*v->pods))))) {
		pol_world_free(v);
		return NULL;
	}
	for (unsigned i = 0; i < w->n_mpol; i++)
		if (policy_for(&w->mpol[i], net))
			v->pol[v->n_pol++] = w->mpol[i];
	for (unsigned i = 0; i < w->n_pods; i++) {
		struct pol_pod *p = &v->pods[v->n_pods++];
		*p = w->pods[i];
		p->n_ips = 0;
		memset(p->ips, 0, sizeof(p->ips));
		for (unsigned j = 0; j < w->pods[i].n_nets; j++)
			if (strcmp(w->pods[i].nets[j].net, net) == 0) {
				p->n_ips = w->pods[i].nets[j].n_ips;
				memcpy(p->ips, w->pods[i].nets[j].ips, sizeof(p->ips));
			}
	}
	return v;
}

unsigned pol_world_nmulti(const struct pol_world *w)
{
	return w->n_mpol;
}

bool pol_world_pod_net_ips(const struct pol_world *w, const char *ns, const char *name,
			   const char *net, struct ip_addr *ips, unsigned *n)
{
	*n = 0;
	for (unsigned i = 0; i < w->n_pods; i++) {
		const struct pol_pod *p = &w->pods[i];
		if (strcmp(p->ns, ns) != 0 || strcmp(p->name, name) != 0)
			continue;
		for (unsigned j = 0; j < p->n_nets; j++)
			if (strcmp(p->nets[j].net, net) == 0) {
				*n = p->nets[j].n_ips;
				memcpy(ips, p->nets[j].ips, sizeof(p->nets[j].ips));
				return true;
			}
	}
	return false;
}
