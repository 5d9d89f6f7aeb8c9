/* types — typed views of Kubernetes/KubeVirt objects; see types.h. */
#include "kube/types.h"

#include "lib/err.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static bool lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* s[0..n) is one DNS-1123 label's characters (the length limit is the caller's). */
static bool label_ok(const char *s, size_t n)
{
	if (n == 0 || !lower_alnum(s[0]) || !lower_alnum(s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!lower_alnum(s[i]) && s[i] != '-')
			return false;
	return true;
}

bool kube_name_is_label(const char *s)
{
	return s && strlen(s) <= 63 && label_ok(s, strlen(s));
}

bool kube_name_is_subdomain(const char *s)
{
	if (!s)
		return false;
	size_t n = strlen(s);
	if (n == 0 || n > 253)
		return false;
	for (const char *p = s;;) {
		const char *dot = strchr(p, '.');
		size_t len = dot ? (size_t)(dot - p) : strlen(p);
		if (!label_ok(p, len))
			return false;
		if (!dot)
			return true;
		p = dot + 1;
	}
}

bool kube_uid_valid(const char *s)
{
	if (!s || !isxdigit((unsigned char)s[0]))
		return false;
	size_t n = 0;
	for (; s[n]; n++)
		if (!isxdigit((unsigned char)s[n]) && s[n] != '-')
			return false;
	return n <= 64;
}

void kube_arena_init(struct kube_arena *a, char *buf, size_t cap)
{
	a->buf = buf;
	a->cap = cap;
	a->used = 0;
}

const char *kube_arena_str(struct kube_arena *a, const struct json_doc *d, int i)
{
	if (json_type(d, i) != JSON_STRING || a->used >= a->cap)
		return NULL;
	char *dst = a->buf + a->used;
	if (json_str(d, i, dst, a->cap - a->used) != 0)
		return NULL;
	a->used += strlen(dst) + 1;
	return dst;
}

/* What a view needs while it reads: where, into what, and what to call it. */
struct vctx {
	const struct json_doc *d;  /* document */
	struct kube_arena *a;      /* string arena */
	struct err *e;             /* error sink */
	const char *kind;          /* "Pod", ... for messages */
};

static int bad(struct vctx *c, int code, const char *path, const char *why)
{
	return err_setx(c->e, code, "kube: %s: %s: %s", c->kind, path, why);
}

/* Optional string member: *out NULL when absent or null. */
static int opt_str(struct vctx *c, int obj, const char *key, const char *path,
		   const char **out)
{
	*out = NULL;
	if (obj < 0)
		return 0;
	int t = json_get(c->d, obj, key);
	if (t < 0 || json_type(c->d, t) == JSON_NULL)
		return 0;
	if (json_type(c->d, t) != JSON_STRING)
		return bad(c, EINVAL, path, "not a string");
	*out = kube_arena_str(c->a, c->d, t);
	if (!*out) {
		long need = json_str_len(c->d, t);
		if (need >= 0 && c->a->used < c->a->cap && (size_t)need < c->a->cap - c->a->used)
			return bad(c, EINVAL, path, "contains a NUL character");
		return bad(c, ENOSPC, path, "string arena full");
	}
	return 0;
}

static int opt_bool(struct vctx *c, int obj, const char *key, const char *path, bool *out)
{
	*out = false;
	if (obj < 0)
		return 0;
	int t = json_get(c->d, obj, key);
	if (t < 0 || json_type(c->d, t) == JSON_NULL)
		return 0;
	if (json_bool(c->d, t, out) != 0)
		return bad(c, EINVAL, path, "not a boolean");
	return 0;
}

/* Optional member of a given container type: its token, or -1. */
static int opt_tok(struct vctx *c, int obj, const char *key, enum json_type want,
		   const char *path, int *out)
{
	*out = -1;
	if (obj < 0)
		return 0;
	int t = json_get(c->d, obj, key);
	if (t < 0 || json_type(c->d, t) == JSON_NULL)
		return 0;
	if (json_type(c->d, t) != want)
		return bad(c, EINVAL, path, want == JSON_OBJECT ? "not an object" : "not an array");
	*out = t;
	return 0;
}

static int meta_fill(struct vctx *c, int obj, struct kube_meta *m)
{
	int md, r;
	memset(m, 0, sizeof(*m));
	m->doc = c->d;
	m->obj = obj;
	m->labels = m->annotations = m->owner_refs = -1;
	if (json_type(c->d, obj) != JSON_OBJECT)
		return bad(c, EINVAL, "object", "not a JSON object");
	if ((r = opt_str(c, obj, "kind", "kind", &m->kind)) ||
	    (r = opt_str(c, obj, "apiVersion", "apiVersion", &m->api_version)))
		return r;
	if (m->kind && strcmp(c->kind, "object") != 0 && strcmp(m->kind, c->kind) != 0)
		return err_setx(c->e, EINVAL, "kube: %s: object has kind %s", c->kind, m->kind);
	if ((r = opt_tok(c, obj, "metadata", JSON_OBJECT, "metadata", &md)))
		return r;
	if (md < 0)
		return bad(c, EINVAL, "metadata", "missing");
	if ((r = opt_str(c, md, "name", "metadata.name", &m->name)) ||
	    (r = opt_str(c, md, "generateName", "metadata.generateName", &m->generate_name)) ||
	    (r = opt_str(c, md, "namespace", "metadata.namespace", &m->namespace_)) ||
	    (r = opt_str(c, md, "uid", "metadata.uid", &m->uid)) ||
	    (r = opt_str(c, md, "resourceVersion", "metadata.resourceVersion",
			 &m->resource_version)) ||
	    (r = opt_str(c, md, "deletionTimestamp", "metadata.deletionTimestamp",
			 &m->deletion_timestamp)) ||
	    (r = opt_tok(c, md, "labels", JSON_OBJECT, "metadata.labels", &m->labels)) ||
	    (r = opt_tok(c, md, "annotations", JSON_OBJECT, "metadata.annotations",
			 &m->annotations)) ||
	    (r = opt_tok(c, md, "ownerReferences", JSON_ARRAY, "metadata.ownerReferences",
			 &m->owner_refs)))
		return r;
	if (m->owner_refs >= 0)
		m->n_owner_refs = c->d->tok[m->owner_refs].size;
	return 0;
}

/* The BOOKMARK objects of a watch carry only a resourceVersion, so name is checked by
 * the typed views, not by meta_fill(). */
static int need_name(struct vctx *c, const struct kube_meta *m)
{
	if (!m->name || !*m->name)
		return bad(c, EINVAL, "metadata.name", "missing or empty");
	return 0;
}

int kube_meta_view(const struct json_doc *d, int obj, struct kube_meta *m,
		   struct kube_arena *a, struct err *e)
{
	struct vctx c = { d, a, e, "object" };
	int r = meta_fill(&c, obj, m);
	return r ? r : need_name(&c, m);
}

static const char *map_get(const struct kube_meta *m, int map, const char *key,
			   struct kube_arena *a)
{
	if (map < 0)
		return NULL;
	int v = json_get(m->doc, map, key);
	return v < 0 ? NULL : kube_arena_str(a, m->doc, v);
}

const char *kube_label(const struct kube_meta *m, const char *key, struct kube_arena *a)
{
	return map_get(m, m->labels, key, a);
}

const char *kube_annotation(const struct kube_meta *m, const char *key, struct kube_arena *a)
{
	return map_get(m, m->annotations, key, a);
}

bool kube_has_annotation(const struct kube_meta *m, const char *key)
{
	return m->annotations >= 0 &&
	       json_type(m->doc, json_get(m->doc, m->annotations, key)) == JSON_STRING;
}

int kube_owner_ref(const struct kube_meta *m, unsigned idx, struct kube_owner_ref *o,
		   struct kube_arena *a, struct err *e)
{
	struct vctx c = { m->doc, a, e, "ownerReference" };
	int r;
	memset(o, 0, sizeof(*o));
	if (m->owner_refs < 0 || idx >= m->n_owner_refs)
		return -ENOENT;
	int t = json_index(m->doc, m->owner_refs, idx);
	if (json_type(m->doc, t) != JSON_OBJECT)
		return bad(&c, EINVAL, "metadata.ownerReferences[]", "not an object");
	if ((r = opt_str(&c, t, "apiVersion", "apiVersion", &o->api_version)) ||
	    (r = opt_str(&c, t, "kind", "kind", &o->kind)) ||
	    (r = opt_str(&c, t, "name", "name", &o->name)) ||
	    (r = opt_str(&c, t, "uid", "uid", &o->uid)) ||
	    (r = opt_bool(&c, t, "controller", "controller", &o->controller)) ||
	    (r = opt_bool(&c, t, "blockOwnerDeletion", "blockOwnerDeletion",
			  &o->block_owner_deletion)))
		return r;
	if (!o->api_version || !o->kind || !o->name || !o->uid)
		return bad(&c, EINVAL, "metadata.ownerReferences[]",
			   "apiVersion, kind, name and uid are required");
	return 0;
}

int kube_controller_ref(const struct kube_meta *m, struct kube_owner_ref *o,
			struct kube_arena *a, struct err *e)
{
	bool found = false;
	struct kube_owner_ref cur;
	memset(o, 0, sizeof(*o));
	for (unsigned i = 0; i < m->n_owner_refs; i++) {
		size_t mark = a->used;
		int r = kube_owner_ref(m, i, &cur, a, e);
		if (r)
			return r;
		if (!cur.controller) {
			a->used = mark; /* give the strings back */
			continue;
		}
		if (found)
			return err_setx(e, EINVAL, "kube: %s: more than one controller reference",
					m->name ? m->name : "object");
		*o = cur;
		found = true;
	}
	return found ? 0 : -ENOENT;
}

int kube_pod_view(const struct json_doc *d, int obj, struct kube_pod *p, struct kube_arena *a,
		  struct err *e)
{
	struct vctx c = { d, a, e, "Pod" };
	int spec, status, r;
	memset(p, 0, sizeof(*p));
	if ((r = meta_fill(&c, obj, &p->meta)) || (r = need_name(&c, &p->meta)) ||
	    (r = opt_tok(&c, obj, "spec", JSON_OBJECT, "spec", &spec)) ||
	    (r = opt_tok(&c, obj, "status", JSON_OBJECT, "status", &status)) ||
	    (r = opt_str(&c, spec, "nodeName", "spec.nodeName", &p->node_name)) ||
	    (r = opt_str(&c, status, "phase", "status.phase", &p->phase)) ||
	    (r = opt_str(&c, status, "podIP", "status.podIP", &p->pod_ip)))
		return r;
	return 0;
}

static int mig_fill(struct vctx *c, int status, struct kube_migration_state *m)
{
	int ms, r;
	memset(m, 0, sizeof(*m));
	if ((r = opt_tok(c, status, "migrationState", JSON_OBJECT, "status.migrationState", &ms)))
		return r;
	if (ms < 0)
		return 0;
	m->present = true;
	if ((r = opt_str(c, ms, "migrationUid", "status.migrationState.migrationUid",
			 &m->migration_uid)) ||
	    (r = opt_str(c, ms, "sourceNode", "status.migrationState.sourceNode",
			 &m->source_node)) ||
	    (r = opt_str(c, ms, "sourcePod", "status.migrationState.sourcePod", &m->source_pod)) ||
	    (r = opt_str(c, ms, "targetNode", "status.migrationState.targetNode",
			 &m->target_node)) ||
	    (r = opt_str(c, ms, "targetPod", "status.migrationState.targetPod", &m->target_pod)) ||
	    (r = opt_str(c, ms, "targetNodeAddress", "status.migrationState.targetNodeAddress",
			 &m->target_node_address)) ||
	    (r = opt_str(c, ms, "targetNodeDomainReadyTimestamp",
			 "status.migrationState.targetNodeDomainReadyTimestamp",
			 &m->target_node_domain_ready_ts)) ||
	    (r = opt_bool(c, ms, "targetNodeDomainDetected",
			  "status.migrationState.targetNodeDomainDetected",
			  &m->target_node_domain_detected)) ||
	    (r = opt_str(c, ms, "startTimestamp", "status.migrationState.startTimestamp",
			 &m->start_ts)) ||
	    (r = opt_str(c, ms, "endTimestamp", "status.migrationState.endTimestamp",
			 &m->end_ts)) ||
	    (r = opt_str(c, ms, "mode", "status.migrationState.mode", &m->mode)) ||
	    (r = opt_bool(c, ms, "completed", "status.migrationState.completed",
			  &m->completed)) ||
	    (r = opt_bool(c, ms, "failed", "status.migrationState.failed", &m->failed)))
		return r;
	return 0;
}

int kube_vmi_view(const struct json_doc *d, int obj, struct kube_vmi *v, struct kube_arena *a,
		  struct err *e)
{
	struct vctx c = { d, a, e, "VirtualMachineInstance" };
	int status, ifs, r;
	memset(v, 0, sizeof(*v));
	v->active_pods = -1;
	if ((r = meta_fill(&c, obj, &v->meta)) || (r = need_name(&c, &v->meta)) ||
	    (r = opt_tok(&c, obj, "status", JSON_OBJECT, "status", &status)) ||
	    (r = opt_str(&c, status, "nodeName", "status.nodeName", &v->node_name)) ||
	    (r = opt_str(&c, status, "phase", "status.phase", &v->phase)) ||
	    (r = mig_fill(&c, status, &v->mig)) ||
	    (r = opt_tok(&c, status, "activePods", JSON_OBJECT, "status.activePods",
			 &v->active_pods)) ||
	    (r = opt_tok(&c, status, "interfaces", JSON_ARRAY, "status.interfaces", &ifs)))
		return r;
	struct json_iter it;
	int k, el;
	json_iter_init(&it, d, ifs);
	while (v->n_ifaces < KUBE_VMI_IFACES_MAX && json_iter_next(&it, &k, &el)) {
		struct kube_vmi_iface *f = &v->ifaces[v->n_ifaces];
		int ips;
		if (json_type(d, el) != JSON_OBJECT)
			return bad(&c, EINVAL, "status.interfaces[]", "not an object");
		if ((r = opt_str(&c, el, "name", "status.interfaces[].name", &f->name)) ||
		    (r = opt_str(&c, el, "interfaceName", "status.interfaces[].interfaceName",
				 &f->interface_name)) ||
		    (r = opt_str(&c, el, "mac", "status.interfaces[].mac", &f->mac)) ||
		    (r = opt_str(&c, el, "ipAddress", "status.interfaces[].ipAddress", &f->ip)) ||
		    (r = opt_tok(&c, el, "ipAddresses", JSON_ARRAY,
				 "status.interfaces[].ipAddresses", &ips)))
			return r;
		struct json_iter ii;
		int k2, ip;
		json_iter_init(&ii, d, ips);
		while (f->n_ips < KUBE_IFACE_IPS_MAX && json_iter_next(&ii, &k2, &ip)) {
			if (json_type(d, ip) != JSON_STRING)
				return bad(&c, EINVAL, "status.interfaces[].ipAddresses[]",
					   "not a string");
			f->ips[f->n_ips] = kube_arena_str(a, d, ip);
			if (!f->ips[f->n_ips])
				return bad(&c, ENOSPC, "status.interfaces[].ipAddresses[]",
					   "string arena full or NUL in string");
			f->n_ips++;
		}
		v->n_ifaces++;
	}
	return 0;
}

bool kube_vmi_active_pod(const struct kube_vmi *v, const char *pod_uid)
{
	return pod_uid && *pod_uid && v->active_pods >= 0 &&
	       json_get(v->meta.doc, v->active_pods, pod_uid) >= 0;
}

int kube_vm_view(const struct json_doc *d, int obj, struct kube_vm *v, struct kube_arena *a,
		 struct err *e)
{
	struct vctx c = { d, a, e, "VirtualMachine" };
	int spec, r;
	memset(v, 0, sizeof(*v));
	v->running = -1;
	if ((r = meta_fill(&c, obj, &v->meta)) || (r = need_name(&c, &v->meta)) ||
	    (r = opt_tok(&c, obj, "spec", JSON_OBJECT, "spec", &spec)) ||
	    (r = opt_str(&c, spec, "runStrategy", "spec.runStrategy", &v->run_strategy)))
		return r;
	int run = spec >= 0 ? json_get(d, spec, "running") : -1;
	if (run >= 0 && json_type(d, run) != JSON_NULL) {
		bool b;
		if (json_bool(d, run, &b) != 0)
			return bad(&c, EINVAL, "spec.running", "not a boolean");
		v->running = b;
	}
	return 0;
}

int kube_vmim_view(const struct json_doc *d, int obj, struct kube_vmim *v,
		   struct kube_arena *a, struct err *e)
{
	struct vctx c = { d, a, e, "VirtualMachineInstanceMigration" };
	int spec, status, r;
	memset(v, 0, sizeof(*v));
	if ((r = meta_fill(&c, obj, &v->meta)) || (r = need_name(&c, &v->meta)) ||
	    (r = opt_tok(&c, obj, "spec", JSON_OBJECT, "spec", &spec)) ||
	    (r = opt_tok(&c, obj, "status", JSON_OBJECT, "status", &status)) ||
	    (r = opt_str(&c, spec, "vmiName", "spec.vmiName", &v->vmi_name)) ||
	    (r = opt_str(&c, status, "phase", "status.phase", &v->phase)) ||
	    (r = mig_fill(&c, status, &v->mig)))
		return r;
	if (!v->vmi_name || !*v->vmi_name)
		return bad(&c, EINVAL, "spec.vmiName", "missing or empty");
	return 0;
}

int kube_node_view(const struct json_doc *d, int obj, struct kube_node *n,
		   struct kube_arena *a, struct err *e)
{
	struct vctx c = { d, a, e, "Node" };
	int status, addrs, r;
	memset(n, 0, sizeof(*n));
	if ((r = meta_fill(&c, obj, &n->meta)) || (r = need_name(&c, &n->meta)) ||
	    (r = opt_tok(&c, obj, "status", JSON_OBJECT, "status", &status)) ||
	    (r = opt_tok(&c, status, "addresses", JSON_ARRAY, "status.addresses", &addrs)))
		return r;
	struct json_iter it;
	int k, el;
	json_iter_init(&it, d, addrs);
	while (n->n_addrs < KUBE_NODE_ADDRS_MAX && json_iter_next(&it, &k, &el)) {
		struct kube_node_addr *x = &n->addrs[n->n_addrs];
		if (json_type(d, el) != JSON_OBJECT)
			return bad(&c, EINVAL, "status.addresses[]", "not an object");
		if ((r = opt_str(&c, el, "type", "status.addresses[].type", &x->type)) ||
		    (r = opt_str(&c, el, "address", "status.addresses[].address", &x->address)))
			return r;
		if (!x->type || !x->address)
			return bad(&c, EINVAL, "status.addresses[]", "type and address required");
		n->n_addrs++;
	}
	return 0;
}

const char *kube_node_address(const struct kube_node *n, const char *type)
{
	for (unsigned i = 0; i < n->n_addrs; i++)
		if (strcmp(n->addrs[i].type, type) == 0)
			return n->addrs[i].address;
	return NULL;
}

/* "aa:bb:cc:dd:ee:ff" (any case) into mac. */
static bool mac_parse(const char *s, uint8_t mac[6])
{
	for (int i = 0; i < 6; i++) {
		const char *p = s + 3 * i;
		if (!isxdigit((unsigned char)p[0]) || !isxdigit((unsigned char)p[1]) ||
		    p[2] != (i == 5 ? 0 : ':'))
			return false;
		char hex[3] = { p[0], p[1], 0 };
		mac[i] = (uint8_t)strtoul(hex, NULL, 16);
	}
	return true;
}

/* Entry tok of the list into *out (name, interface, mac, ips). False when malformed. */
static bool net_entry(const struct json_doc *d, int tok, struct kube_net_attach *out)
{
	memset(out, 0, sizeof(*out));
	int nm = json_get(d, tok, "name"), itf = json_get(d, tok, "interface");
	int mc = json_get(d, tok, "mac"), ips = json_get(d, tok, "ips");
	char buf[64];
	if (nm < 0 || json_str(d, nm, out->name, sizeof(out->name)) < 0)
		return false;
	if (itf >= 0 && json_str(d, itf, out->iface, sizeof(out->iface)) < 0)
		out->iface[0] = 0;
	if (mc >= 0 && json_str(d, mc, buf, sizeof(buf)) == 0 && buf[0]) {
		if (!mac_parse(buf, out->mac))
			return false;
		out->has_mac = true;
	}
	if (ips < 0)
		return true;
	if (json_type(d, ips) != JSON_ARRAY)
		return false;
	struct json_iter it;
	int k, v;
	json_iter_init(&it, d, ips);
	while (json_iter_next(&it, &k, &v)) {
		if (json_str(d, v, buf, sizeof(buf)) < 0)
			return false;
		char *slash = strchr(buf, '/');
		if (slash)
			*slash = 0;
		if (out->n_ips < KUBE_NET_IPS_MAX && !ip_parse(buf, &out->ips[out->n_ips]))
			return false;
		if (out->n_ips < KUBE_NET_IPS_MAX)
			out->n_ips++;
	}
	return true;
}

int kube_net_status_find(const char *text, size_t len, const uint8_t mac[6],
			 const struct ip_addr *ips, unsigned n_ips, struct kube_net_attach *out,
			 struct err *e)
{
	struct json_doc d;
	struct json_tok *tok = NULL;
	int rc = -ENOENT;
	memset(out, 0, sizeof(*out));
	if (json_parse_alloc(&d, text, len, &tok, NULL) < 0 || json_type(&d, 0) != JSON_ARRAY) {
		free(tok);
		return err_setx(e, EINVAL, KUBE_NET_STATUS ": not a JSON list");
	}
	struct json_iter it;
	int k, v;
	unsigned idx = 0;
	bool found = false;
	json_iter_init(&it, &d, 0);
	while (json_iter_next(&it, &k, &v)) {
		struct kube_net_attach a;
		int nm = json_type(&d, v) == JSON_OBJECT ? json_get(&d, v, "name") : -1;
		if (nm < 0 || json_type(&d, nm) != JSON_STRING) {
			rc = err_setx(e, EINVAL, KUBE_NET_STATUS "[%u].name: required", idx);
			goto out;
		}
		idx++;
		int dt = json_get(&d, v, "default");
		bool def = false;
		if ((dt >= 0 && json_bool(&d, dt, &def) == 0 && def) || found ||
		    !net_entry(&d, v, &a))
			continue;
		bool hit = false;
		if (a.has_mac)
			hit = memcmp(a.mac, mac, 6) == 0;
		for (unsigned i = 0; !a.has_mac && i < a.n_ips && !hit; i++)
			for (unsigned j = 0; j < n_ips && !hit; j++)
				hit = ip_eq(&a.ips[i], &ips[j]);
		if (hit) {
			*out = a;
			found = true;
		}
	}
	rc = found ? 0 : -ENOENT;
out:
	free(tok);
	return rc;
}
