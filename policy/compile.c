/* policy/compile — world + endpoints -> rule set, and the verdict query (see policy.h). */
#include "policy/internal.h"

#include "lib/err.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static const char *const dir_name[POL_NDIR] = { "ingress", "egress" };

bool pol_sel_match(const struct pol_sel *s, const struct pol_labels *l)
{
	for (unsigned i = 0; i < s->n; i++) {
		const struct pol_req *r = &s->reqs[i];
		const char *v = pol_labels_get(l, r->key);
		bool in = false;
		for (unsigned j = 0; v && j < r->n_vals; j++)
			if (strcmp(r->vals[j], v) == 0)
				in = true;
		switch (r->op) {
		case POL_OP_IN:
			if (!in)
				return false;
			break;
		case POL_OP_NOTIN:
			if (in)
				return false;
			break;
		case POL_OP_EXISTS:
			if (!v)
				return false;
			break;
		case POL_OP_DNE:
			if (v)
				return false;
			break;
		}
	}
	return true;
}

/* Does namespace `name` match s? A namespace not in the world has only the label the
 * API server puts on every namespace. */
static bool ns_match(const struct pol_world *w, const char *name, const struct pol_sel *s)
{
	for (unsigned i = 0; i < w->n_ns; i++)
		if (strcmp(w->ns[i].name, name) == 0)
			return pol_sel_match(s, &w->ns[i].labels);
	struct pol_label one = { .k = (char *)"kubernetes.io/metadata.name", .v = (char *)name };
	struct pol_labels l = { .l = &one, .n = 1 };
	return pol_sel_match(s, &l);
}

static bool selects(const struct pol_policy *p, const struct pol_pod *pod)
{
	return strcmp(p->ns, pod->ns) == 0 && pol_sel_match(&p->pod_sel, &pod->labels);
}

static bool peer_has_pod(const struct pol_world *w, const struct pol_policy *p,
			 const struct pol_peer *pe, const struct pol_pod *pod)
{
	if (pe->ipblock)
		return false;
	if (pe->ns_sel.present) {
		if (!ns_match(w, pod->ns, &pe->ns_sel))
			return false;
	} else if (strcmp(pod->ns, p->ns) != 0) {
		return false;
	}
	return !pe->pod_sel.present || pol_sel_match(&pe->pod_sel, &pod->labels);
}

static bool rule_has_pod(const struct pol_world *w, const struct pol_policy *p,
			 const struct pol_rule *r, const struct pol_pod *pod)
{
	if (r->all_peers)
		return true;
	for (unsigned i = 0; i < r->n_peers; i++)
		if (peer_has_pod(w, p, &r->peers[i], pod))
			return true;
	return false;
}

static const struct pol_named_port *find_named(const struct pol_pod *pod, const char *name,
					       uint8_t proto)
{
	for (unsigned i = 0; i < pod->n_ports; i++)
		if (pod->ports[i].proto == proto && strcmp(pod->ports[i].name, name) == 0)
			return &pod->ports[i];
	return NULL;
}

static void crule_free(struct pol_crule *r)
{
	free(r->id);
	free(r->policy);
	pol_ranges_free(&r->peers);
	free(r->ports);
}

static void cdir_free(struct pol_cdir *d)
{
	for (unsigned i = 0; i < d->n_policies; i++)
		free(d->policies[i]);
	free(d->policies);
	for (unsigned i = 0; i < d->n_rules; i++)
		crule_free(&d->rules[i]);
	free(d->rules);
	*d = (struct pol_cdir){ 0 };
}

void pol_ruleset_free(struct pol_ruleset *rs)
{
	for (unsigned i = 0; i < rs->n; i++) {
		free(rs->eps[i].ns);
		free(rs->eps[i].name);
		free(rs->eps[i].ifname);
		for (int d = 0; d < POL_NDIR; d++)
			cdir_free(&rs->eps[i].dir[d]);
	}
	free(rs->eps);
	*rs = (struct pol_ruleset){ 0 };
}

static struct pol_crule *new_rule(struct pol_cdir *d, const struct pol_policy *p,
				  enum pol_dir dir, unsigned idx, const char *suffix)
{
	struct pol_crule *n = realloc(d->rules, (d->n_rules + 1) * sizeof(*n));
	if (!n)
		return NULL;
	d->rules = n;
	struct pol_crule *r = &n[d->n_rules];
	*r = (struct pol_crule){ .index = idx };
	size_t cap = strlen(p->ns) + strlen(p->name) + 64;
	r->id = malloc(cap);
	r->policy = malloc(cap);
	if (!r->id || !r->policy) {
		free(r->id);
		free(r->policy);
		return NULL;
	}
	snprintf(r->policy, cap, "%s/%s", p->ns, p->name);
	snprintf(r->id, cap, "%s/%s/%s/%u%s", p->ns, p->name, dir_name[dir], idx, suffix);
	d->n_rules++;
	return r;
}

static int add_port(struct pol_crule *r, uint8_t proto, uint16_t lo, uint16_t hi)
{
	for (unsigned i = 0; i < r->n_ports; i++)
		if (r->ports[i].proto == proto && r->ports[i].lo == lo && r->ports[i].hi == hi)
			return 0;
	struct pol_cport *n = realloc(r->ports, (r->n_ports + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	r->ports = n;
	n[r->n_ports++] = (struct pol_cport){ .proto = proto, .lo = lo, .hi = hi };
	return 0;
}

static int add_pod_ips(struct pol_ranges *s, const struct pol_pod *pod)
{
	for (unsigned i = 0; i < pod->n_ips; i++)
		if (pol_ranges_add_cidr(s, &pod->ips[i], pod->ips[i].family == AF_INET ? 32 : 128))
			return -ENOMEM;
	return 0;
}

/* The peer set of rule r of policy p. */
static int rule_peers(const struct pol_world *w, const struct pol_policy *p,
		      const struct pol_rule *r, struct pol_crule *c)
{
	c->any_peer = r->all_peers;
	if (r->all_peers)
		return 0;
	for (unsigned i = 0; i < r->n_peers; i++) {
		const struct pol_peer *pe = &r->peers[i];
		if (!pe->ipblock)
			continue;
		for (unsigned j = 0; j < pe->block.n; j++)
			if (pol_ranges_add(&c->peers, pe->block.r[j].family, pe->block.r[j].lo,
					   pe->block.r[j].hi) < 0)
				return -ENOMEM;
	}
	for (unsigned k = 0; k < w->n_pods; k++)
		if (rule_has_pod(w, p, r, &w->pods[k]) && add_pod_ips(&c->peers, &w->pods[k]) < 0)
			return -ENOMEM;
	return pol_ranges_normalize(&c->peers);
}

struct named_hit {
	uint8_t proto;                /* resolved protocol */
	uint16_t port;                /* resolved number */
	struct ip_addr ips[POL_IPS_MAX]; /* the peer pod's addresses in the peer set */
	unsigned n_ips;               /* how many */
};

static int cmp_hit(const void *pa, const void *pb)
{
	const struct named_hit *a = pa, *b = pb;
	if (a->proto != b->proto)
		return a->proto < b->proto ? -1 : 1;
	return a->port < b->port ? -1 : a->port > b->port;
}

/* Egress named ports: one rule per resolved (protocol, port) whose peers are the peer
 * pods that name it so. */
static int egress_named(const struct pol_world *w, const struct pol_policy *p,
			const struct pol_rule *r, unsigned idx, struct pol_cdir *d)
{
	struct named_hit *hits = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;
	for (unsigned k = 0; k < w->n_pods; k++) {
		const struct pol_pod *pod = &w->pods[k];
		/* a named port is resolved on the destination pod however the peer matched it
		 * (selector, or an ipBlock holding its address) */
		bool by_sel = rule_has_pod(w, p, r, pod);
		struct ip_addr in_set[POL_IPS_MAX];
		unsigned n_in = 0;
		for (unsigned a = 0; a < pod->n_ips; a++) {
			bool in = by_sel;
			for (unsigned b = 0; !in && b < r->n_peers; b++)
				in = r->peers[b].ipblock && pol_ranges_has(&r->peers[b].block, &pod->ips[a]);
			if (in)
				in_set[n_in++] = pod->ips[a];
		}
		if (!n_in)
			continue;
		for (unsigned i = 0; i < r->n_ports; i++) {
			const struct pol_port *po = &r->ports[i];
			const struct pol_named_port *np = po->name ? find_named(pod, po->name, po->proto)
								   : NULL;
			if (!np)
				continue;
			if (n == cap) {
				cap = cap ? cap * 2 : 8;
				struct named_hit *nh = realloc(hits, cap * sizeof(*nh));
				if (!nh) {
					rc = -ENOMEM;
					goto out;
				}
				hits = nh;
			}
			hits[n] = (struct named_hit){ .proto = np->proto, .port = np->port, .n_ips = n_in };
			memcpy(hits[n++].ips, in_set, sizeof(in_set));
		}
	}
	if (n)
		qsort(hits, n, sizeof(*hits), cmp_hit);
	for (size_t i = 0; i < n;) {
		char suffix[32];
		snprintf(suffix, sizeof(suffix), "/%s:%u", pol_proto_name(hits[i].proto), hits[i].port);
		struct pol_crule *c = new_rule(d, p, POL_EGRESS, idx, suffix);
		if (!c || add_port(c, hits[i].proto, hits[i].port, hits[i].port) < 0) {
			rc = -ENOMEM;
			goto out;
		}
		size_t j = i;
		for (; j < n && cmp_hit(&hits[j], &hits[i]) == 0; j++)
			for (unsigned a = 0; a < hits[j].n_ips; a++)
				if (pol_ranges_add_cidr(&c->peers, &hits[j].ips[a],
							hits[j].ips[a].family == AF_INET ? 32 : 128) < 0) {
					rc = -ENOMEM;
					goto out;
				}
		pol_ranges_normalize(&c->peers);
		i = j;
	}
out:
	free(hits);
	return rc;
}

static int compile_rule(const struct pol_world *w, const struct pol_policy *p,
			const struct pol_pod *pod, enum pol_dir dir, unsigned idx,
			struct pol_cdir *d)
{
	const struct pol_rule *r = &p->rules[dir][idx];
	bool named = false;
	struct pol_crule tmp = { 0 };
	int rc = 0;
	tmp.any_port = r->all_ports;
	for (unsigned i = 0; i < r->n_ports; i++) {
		const struct pol_port *po = &r->ports[i];
		if (po->name) {
			if (dir == POL_EGRESS) {
				named = true;
				continue;
			}
			const struct pol_named_port *np = find_named(pod, po->name, po->proto);
			if (np && (rc = add_port(&tmp, np->proto, np->port, np->port)) < 0)
				goto out;
		} else if ((rc = add_port(&tmp, po->proto, po->any_port ? 1 : po->port,
					  po->any_port ? 65535 : po->end_port)) < 0) {
			goto out;
		}
	}
	if (tmp.any_port || tmp.n_ports) {
		struct pol_crule *c = new_rule(d, p, dir, idx, "");
		if (!c) {
			rc = -ENOMEM;
			goto out;
		}
		c->any_port = tmp.any_port;
		c->ports = tmp.ports;
		c->n_ports = tmp.n_ports;
		tmp.ports = NULL;
		if ((rc = rule_peers(w, p, r, c)) < 0)
			goto out;
	}
	if (named)
		rc = egress_named(w, p, r, idx, d);
out:
	free(tmp.ports);
	return rc;
}

static int cmp_strp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}



static int compile_dir(const struct pol_world *w, const unsigned *order, const struct pol_pod *pod,
		       enum pol_dir dir, struct pol_cdir *d)
{
	for (unsigned oi = 0; oi < w->n_pol; oi++) {
		const struct pol_policy *p = &w->pol[order[oi]];
		if (!p->types[dir] || !selects(p, pod))
			continue;
		d->isolated = true;
		char **n = realloc(d->policies, (d->n_policies + 1) * sizeof(*n));
		if (!n)
			return -ENOMEM;
		d->policies = n;
		size_t cap = strlen(p->ns) + strlen(p->name) + 2;
		if (!(n[d->n_policies] = malloc(cap)))
			return -ENOMEM;
		snprintf(n[d->n_policies++], cap, "%s/%s", p->ns, p->name);
		for (unsigned i = 0; i < p->n_rules[dir]; i++) {
			int rc = compile_rule(w, p, pod, dir, i, d);
			if (rc < 0)
				return rc;
		}
	}
	if (d->n_policies > 1)
		qsort(d->policies, d->n_policies, sizeof(char *), cmp_strp);
	return 0;
}

static int cmp_pol(const struct pol_policy *a, const struct pol_policy *b)
{
	int c = strcmp(a->ns, b->ns);
	return c ? c : strcmp(a->name, b->name);
}

/* Insertion sort of policy indices (no qsort_r in every libc). */
static void sort_order(const struct pol_world *w, unsigned *order)
{
	for (unsigned i = 0; i < w->n_pol; i++) {
		unsigned v = order[i] = i, j = i;
		while (j > 0 && cmp_pol(&w->pol[order[j - 1]], &w->pol[v]) > 0) {
			order[j] = order[j - 1];
			j--;
		}
		order[j] = v;
	}
}

static int cmp_cep(const void *pa, const void *pb)
{
	const struct pol_cep *a = pa, *b = pb;
	int c = strcmp(a->ns, b->ns);
	return c ? c : strcmp(a->name, b->name);
}

static const struct pol_pod *find_pod(const struct pol_world *w, const char *ns,
				      const char *name)
{
	for (unsigned i = 0; i < w->n_pods; i++)
		if (strcmp(w->pods[i].ns, ns) == 0 && strcmp(w->pods[i].name, name) == 0)
			return &w->pods[i];
	return NULL;
}

int pol_compile(const struct pol_world *w, const struct pol_ep_in *eps, unsigned n,
		struct pol_ruleset *out, struct err *e)
{
	*out = (struct pol_ruleset){ 0 };
	unsigned count = eps ? n : w->n_pods;
	unsigned *order = calloc(w->n_pol ? w->n_pol : 1, sizeof(*order));
	int rc = 0;
	if (!order || (count && !(out->eps = calloc(count, sizeof(*out->eps))))) {
		rc = err_setx(e, ENOMEM, "policy: compile: out of memory");
		goto fail;
	}
	sort_order(w, order);
	for (unsigned i = 0; i < count; i++) {
		const struct pol_pod *pod = eps ? find_pod(w, eps[i].ns, eps[i].name) : &w->pods[i];
		if (!pod) {
			rc = err_setx(e, ENOENT, "policy: endpoint %s/%s: no such pod or VMI",
				      eps[i].ns, eps[i].name);
			goto fail;
		}
		struct pol_cep *c = &out->eps[out->n++];
		c->ns = strdup(pod->ns);
		c->name = strdup(pod->name);
		c->ifname = eps && eps[i].ifname ? strdup(eps[i].ifname) : NULL;
		c->vm = pod->vm;
		c->n_ips = pod->n_ips;
		memcpy(c->ips, pod->ips, sizeof(c->ips));
		if (!c->ns || !c->name || (eps && eps[i].ifname && !c->ifname)) {
			rc = -ENOMEM;
			goto nomem;
		}
		for (int d = 0; d < POL_NDIR; d++)
			if ((rc = compile_dir(w, order, pod, (enum pol_dir)d, &c->dir[d])) < 0)
				goto nomem;
	}
	if (out->n > 1)
		qsort(out->eps, out->n, sizeof(*out->eps), cmp_cep);
	free(order);
	return 0;
nomem:
	rc = err_setx(e, ENOMEM, "policy: compile: out of memory");
fail:
	free(order);
	pol_ruleset_free(out);
	return rc;
}

bool pol_crule_match(const struct pol_crule *r, const struct ip_addr *ip, uint8_t proto,
		     uint16_t port)
{
	if (!r->any_peer && !pol_ranges_has(&r->peers, ip))
		return false;
	if (r->any_port)
		return true;
	for (unsigned i = 0; i < r->n_ports; i++)
		if (r->ports[i].proto == proto && r->ports[i].lo <= port && port <= r->ports[i].hi)
			return true;
	return false;
}

void pol_ruleset_json(const struct pol_ruleset *rs, struct json_w *w)
{
	char buf[IP_STRLEN];
	json_w_obj_begin(w);
	json_w_key(w, "endpoints");
	json_w_arr_begin(w);
	for (unsigned i = 0; i < rs->n; i++) {
		const struct pol_cep *c = &rs->eps[i];
		json_w_obj_begin(w);
		json_w_kstr(w, "namespace", c->ns);
		json_w_kstr(w, "name", c->name);
		json_w_kbool(w, "vm", c->vm);
		if (c->ifname)
			json_w_kstr(w, "interface", c->ifname);
		json_w_key(w, "addresses");
		json_w_arr_begin(w);
		for (unsigned j = 0; j < c->n_ips; j++)
			json_w_str(w, ip_fmt(&c->ips[j], buf));
		json_w_arr_end(w);
		for (int d = 0; d < POL_NDIR; d++) {
			const struct pol_cdir *cd = &c->dir[d];
			json_w_key(w, dir_name[d]);
			json_w_obj_begin(w);
			json_w_kbool(w, "isolated", cd->isolated);
			json_w_key(w, "policies");
			json_w_arr_begin(w);
			for (unsigned j = 0; j < cd->n_policies; j++)
				json_w_str(w, cd->policies[j]);
			json_w_arr_end(w);
			json_w_key(w, "rules");
			json_w_arr_begin(w);
			for (unsigned j = 0; j < cd->n_rules; j++) {
				const struct pol_crule *r = &cd->rules[j];
				json_w_obj_begin(w);
				json_w_kstr(w, "id", r->id);
				json_w_kstr(w, "policy", r->policy);
				json_w_key(w, "peers");
				if (r->any_peer)
					json_w_str(w, "any");
				else
					pol_ranges_json(&r->peers, w);
				json_w_key(w, "ports");
				if (r->any_port) {
					json_w_str(w, "any");
				} else {
					json_w_arr_begin(w);
					for (unsigned k = 0; k < r->n_ports; k++) {
						char pb[32];
						const struct pol_cport *p = &r->ports[k];
						if (p->lo == p->hi)
							snprintf(pb, sizeof(pb), "%s/%u", pol_proto_name(p->proto), p->lo);
						else
							snprintf(pb, sizeof(pb), "%s/%u-%u", pol_proto_name(p->proto),
								 p->lo, p->hi);
						json_w_str(w, pb);
					}
					json_w_arr_end(w);
				}
				json_w_obj_end(w);
			}
			json_w_arr_end(w);
			json_w_obj_end(w);
		}
		json_w_obj_end(w);
	}
	json_w_arr_end(w);
	json_w_obj_end(w);
}

/* Resolve a pod end: its address of family fam (0: the first). */
static int resolve_end(const struct pol_world *w, struct pol_end *end, uint8_t fam,
		       struct err *e)
{
	if (!end->ns)
		return 0;
	const struct pol_pod *pod = find_pod(w, end->ns, end->name);
	const char *why;
	if (!pod && (why = pol_world_inactive_why(w, end->ns, end->name)))
		return err_setx(e, ENOENT, "policy: %s/%s: NetworkPolicy does not apply to it: it %s",
				end->ns, end->name, why);
	if (!pod)
		return err_setx(e, ENOENT, "policy: %s/%s: no such pod or VMI", end->ns, end->name);
	if (end->ip.family) {
		/* the caller named one of its addresses */
		for (unsigned i = 0; i < pod->n_ips; i++)
			if (ip_eq(&pod->ips[i], &end->ip))
				return 0;
		char b[IP_STRLEN];
		return err_setx(e, ENOENT, "policy: %s/%s: does not hold %s", end->ns, end->name,
				ip_fmt(&end->ip, b));
	}
	for (unsigned i = 0; i < pod->n_ips; i++)
		if (!fam || pod->ips[i].family == fam) {
			end->ip = pod->ips[i];
			return 0;
		}
	return err_setx(e, ENOENT, "policy: %s/%s: has no %saddress", end->ns, end->name,
			fam == AF_INET ? "IPv4 " : fam == AF_INET6 ? "IPv6 " : "");
}

void pol_verdict_free(struct pol_verdict *v)
{
	for (int d = 0; d < POL_NDIR; d++)
		pol_ruleset_free(&v->rs[d]);
}

int pol_verdict(const struct pol_world *w, struct pol_end *src, struct pol_end *dst,
		uint8_t proto, uint16_t port, struct pol_verdict *v, struct err *e)
{
	*v = (struct pol_verdict){ 0 };
	int rc;
	uint8_t fam = src->ip.family ? src->ip.family : dst->ip.family;
	if ((rc = resolve_end(w, dst, fam, e)) < 0 ||
	    (rc = resolve_end(w, src, dst->ip.family, e)) < 0)
		return rc;
	if (src->ip.family != dst->ip.family)
		return err_setx(e, EINVAL, "policy: source and destination are of different families");
	/* egress is checked on the source, ingress on the destination */
	struct pol_end *side[POL_NDIR] = { dst, src };
	struct pol_end *peer[POL_NDIR] = { src, dst };
	v->allowed = true;
	for (int d = 0; d < POL_NDIR; d++) {
		char pb[IP_STRLEN];
		struct pol_end *s = side[d];
		v->dir_allowed[d] = true;
		if (!s->ns) {
			snprintf(v->why[d], POL_REASON_MAX, "%s: %s is no known pod, not checked",
				 dir_name[d], ip_fmt(&s->ip, pb));
			continue;
		}
		struct pol_ep_in in = { .ns = s->ns, .name = s->name };
		if ((rc = pol_compile(w, &in, 1, &v->rs[d], e)) < 0) {
			pol_verdict_free(v);
			return rc;
		}
		struct pol_cdir *cd = &v->rs[d].eps[0].dir[d];
		v->applies[d] = true;
		v->cdir[d] = cd;
		if (!cd->isolated) {
			snprintf(v->why[d], POL_REASON_MAX,
				 "%s of %s/%s: not isolated (no policy selects it), allowed", dir_name[d],
				 s->ns, s->name);
			continue;
		}
		for (unsigned i = 0; i < cd->n_rules; i++)
			if (pol_crule_match(&cd->rules[i], &peer[d]->ip, proto, port)) {
				v->rule[d] = cd->rules[i].id;
				break;
			}
		v->dir_allowed[d] = v->rule[d] != NULL;
		if (v->rule[d])
			snprintf(v->why[d], POL_REASON_MAX, "%s of %s/%s: allowed by rule %s",
				 dir_name[d], s->ns, s->name, v->rule[d]);
		else
			snprintf(v->why[d], POL_REASON_MAX, "%s of %s/%s: isolated, no rule allows",
				 dir_name[d], s->ns, s->name);
		if (!v->dir_allowed[d])
			v->allowed = false;
	}
	return 0;
}
