/* ipam live: the API's pods, VMIs, VMs and handle times from LIST pages; see live.h. */
#include "ipam/live.h"

#include "kube/types.h"
#include "lib/err.h"
#include "lib/json.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Copy s into dst (cap bytes); false when s is NULL or does not fit. */
static bool cpy(char *dst, size_t cap, const char *s)
{
	return s && (size_t)snprintf(dst, cap, "%s", s) < cap;
}

int ipam_live_pods_page(struct ipam_live *l, const struct json_doc *d, int items, struct err *e)
{
	struct json_iter it;
	int k, v;
	json_iter_init(&it, d, items);
	while (json_iter_next(&it, &k, &v)) {
		char mem[4096];
		struct kube_arena a;
		struct kube_pod pod;
		kube_arena_init(&a, mem, sizeof(mem));
		int rc = kube_pod_view(d, v, &pod, &a, e);
		if (rc < 0)
			return err_prefix(e, "list pods"), rc;
		struct ipam_live_pod p;
		memset(&p, 0, sizeof(p));
		if (!cpy(p.ns, sizeof(p.ns), pod.meta.namespace_) ||
		    !cpy(p.name, sizeof(p.name), pod.meta.name) ||
		    !cpy(p.uid, sizeof(p.uid), pod.meta.uid ? pod.meta.uid : ""))
			continue;
		cpy(p.node, sizeof(p.node), pod.node_name ? pod.node_name : "");
		p.done =
		    pod.phase && (!strcmp(pod.phase, "Succeeded") || !strcmp(pod.phase, "Failed"));
		int ips = json_find(d, v, "status", "podIPs", NULL);
		struct json_iter ii;
		int kk, vv;
		json_iter_init(&ii, d, ips >= 0 ? ips : -1);
		while (ips >= 0 && json_iter_next(&ii, &kk, &vv) && p.n_ips < IPAM_HANDLE_IPS_MAX) {
			int ipt = json_get(d, vv, "ip");
			char s[64];
			if (ipt >= 0 && !json_str(d, ipt, s, sizeof(s)) &&
			    !ipam_addr_parse(&p.ips[p.n_ips], s, NULL))
				p.n_ips++;
		}
		if (!p.n_ips && pod.pod_ip && !ipam_addr_parse(&p.ips[0], pod.pod_ip, NULL))
			p.n_ips = 1;
		if (ipam_live_add_pod(l, &p))
			return err_set(e, ENOMEM, "list pods");
	}
	return 0;
}

static int objs_page(struct ipam_live *l, const struct json_doc *d, int items, bool vmi,
		     struct err *e)
{
	struct json_iter it;
	int k, v;
	json_iter_init(&it, d, items);
	while (json_iter_next(&it, &k, &v)) {
		char mem[2048];
		struct kube_arena a;
		struct kube_meta m;
		kube_arena_init(&a, mem, sizeof(mem));
		int rc = kube_meta_view(d, v, &m, &a, e);
		if (rc < 0)
			return err_prefix(e, "list %s", vmi ? "VMIs" : "VMs"), rc;
		struct ipam_live_obj o;
		memset(&o, 0, sizeof(o));
		if (!cpy(o.ns, sizeof(o.ns), m.namespace_) || !cpy(o.name, sizeof(o.name), m.name))
			continue;
		cpy(o.uid, sizeof(o.uid), m.uid ? m.uid : "");
		if ((vmi ? ipam_live_add_vmi(l, &o) : ipam_live_add_vm(l, &o)))
			return err_set(e, ENOMEM, "list");
	}
	return 0;
}

int ipam_live_vmis_page(struct ipam_live *l, const struct json_doc *d, int items, struct err *e)
{
	return objs_page(l, d, items, true, e);
}

int ipam_live_vms_page(struct ipam_live *l, const struct json_doc *d, int items, struct err *e)
{
	return objs_page(l, d, items, false, e);
}

int64_t ipam_rfc3339(const char *s)
{
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
		   &tm.tm_min, &tm.tm_sec) != 6)
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (int64_t)timegm(&tm);
}

void ipam_htimes_free(struct ipam_htimes *h)
{
	free(h->v);
	memset(h, 0, sizeof(*h));
}

int ipam_htimes_page(struct ipam_htimes *h, const struct json_doc *d, int items, struct err *e)
{
	struct json_iter it;
	int k, v;
	json_iter_init(&it, d, items);
	while (json_iter_next(&it, &k, &v)) {
		int n = json_find(d, v, "metadata", "name", NULL);
		int c = json_find(d, v, "metadata", "creationTimestamp", NULL);
		char ts[64];
		struct ipam_htime t;
		if (n < 0 || c < 0 || json_str(d, n, t.id, sizeof(t.id)) ||
		    json_str(d, c, ts, sizeof(ts)))
			continue;
		t.t = ipam_rfc3339(ts);
		if (h->n == h->cap) {
			unsigned nc = h->cap ? h->cap * 2 : 64;
			struct ipam_htime *p = realloc(h->v, nc * sizeof(*p));
			if (!p)
				return err_set(e, ENOMEM, "list ipamhandles");
			h->v = p;
			h->cap = nc;
		}
		h->v[h->n++] = t;
	}
	return 0;
}

int64_t ipam_htimes_get(void *user, const char *id)
{
	const struct ipam_htimes *h = user;
	for (unsigned i = 0; i < h->n; i++)
		if (!strcmp(h->v[i].id, id))
			return h->v[i].t;
	return -1;
}
