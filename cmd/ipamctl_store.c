/* ipamctl datastore and API: opening them, the API view of pods, VMIs and VMs, handle
 * creation times; see ipamctl.h. */
#include "cmd/ipamctl.h"

#include "kube/client.h"
#include "kube/kubeconfig.h"
#include "kube/types.h"
#include "lib/err.h"
#include "lib/json.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

extern char **environ;

/* ---- datastore and API ------------------------------------------------------------- */

int ctl_open_api(struct ctl *x, bool required)
{
	if (x->c)
		return 0;
	struct err e = {0};
	const char *kcp = x->kubeconfig_flag ? x->kubeconfig_flag : x->conf.kubernetes.kubeconfig;
	const char *ctx = x->context_flag ? x->context_flag : x->conf.kubernetes.context;
	struct kcfg_opts ko = {.kubeconfig = kcp, .context = ctx, .envp = environ};
	int rc = kcfg_load(&x->kc, &ko, &e);
	if (rc == -ENOENT && !required && !(kcp && *kcp)) {
		snprintf(x->api_note, sizeof(x->api_note), "%s", e.msg);
		return -ENOENT;
	}
	if (rc < 0) {
		ctl_errx("kubernetes: %s", e.msg);
		return rc;
	}
	if (x->kc->insecure)
		ctl_errx("warning: %s: insecure-skip-tls-verify is set: the API server's certificate "
		      "is NOT verified", x->kc->source);
	x->c = kube_client_from_kcfg(x->kc, CTL_KUBE_TIMEOUT_MS, &e);
	if (!x->c) {
		ctl_errx("kubernetes: %s", e.msg);
		kcfg_free(x->kc);
		x->kc = NULL;
		return -EINVAL;
	}
	return 0;
}

int ctl_open_store(struct ctl *x)
{
	struct err e = {0};
	if (!x->kube) {
		if (ipam_ds_file_open(&x->df, x->state_dir, &e) < 0) {
			ctl_errx("file datastore: %s", e.msg);
			return -1;
		}
		x->df_open = true;
		x->ds = ipam_ds_file(&x->df);
		return 0;
	}
	if (ctl_open_api(x, true) < 0)
		return -1;
	ipam_ds_kube_init(&x->dk, x->c);
	x->ds = ipam_ds_kube(&x->dk);
	return 0;
}

void ctl_close(struct ctl *x)
{
	if (x->df_open)
		ipam_ds_file_close(&x->df);
	kube_client_free(x->c);
	kcfg_free(x->kc);
	ipam_live_free(&x->live);
}

int ctl_read_state(struct ctl *x, struct ipam_state *st)
{
	struct err e = {0};
	if (ipam_ds_read(&x->ds, st, &e) < 0) {
		ctl_errx("%s datastore: %s", x->kube ? "kubernetes" : "file", e.msg);
		return -1;
	}
	return 0;
}

/* A whole LIST (every page) of res, each page's document handed to fn. */
typedef int (*page_fn)(struct ctl *x, const struct json_doc *d, int items, struct err *e);

static int list_all(struct ctl *x, const struct kube_res *res, page_fn fn, struct err *e)
{
	char cont[1024] = "";
	for (;;) {
		struct kube_list_opts lo = {.limit = CTL_PAGE, .continue_token = cont[0] ? cont : NULL};
		struct kube_resp resp = {0};
		int rc = kube_list(x->c, res, NULL, &lo, &resp, e);
		if (rc < 0) {
			kube_resp_free(&resp);
			return rc;
		}
		struct json_doc d;
		rc = json_parse(&d, resp.body, resp.len, NULL, 0, 0, e);
		struct json_tok *tok = NULL;
		if (!rc || rc == -ENOSPC) {
			tok = calloc(d.n ? d.n : 1, sizeof(*tok));
			rc = tok ? json_parse(&d, resp.body, resp.len, tok, d.n, 0, e)
				 : err_set(e, ENOMEM, "list %s", res->plural);
		}
		if (!rc) {
			int items = json_get(&d, 0, "items");
			rc = items >= 0 ? fn(x, &d, items, e) : 0;
			int ct = json_find(&d, 0, "metadata", "continue", NULL);
			cont[0] = 0;
			if (!rc && ct >= 0 && json_type(&d, ct) == JSON_STRING &&
			    json_str(&d, ct, cont, sizeof(cont)))
				rc = err_setx(e, EPROTO, "list %s: bad continue token", res->plural);
		} else {
			err_prefix(e, "list %s", res->plural);
		}
		free(tok);
		kube_resp_free(&resp);
		if (rc || !cont[0])
			return rc;
	}
}

static bool cpy(char *dst, size_t cap, const char *s)
{
	return s && (size_t)snprintf(dst, cap, "%s", s) < cap;
}

static int page_pods(struct ctl *x, const struct json_doc *d, int items, struct err *e)
{
	struct json_iter it;
	int k, v;
	json_iter_init(&it, d, items);
	while (json_iter_next(&it, &k, &v)) {
		char mem[4096];
		struct kube_arena a;
		struct kube_pod pod;
		kube_arena_init(&a, mem, sizeof(mem));
		if (kube_pod_view(d, v, &pod, &a, e) < 0)
			return err_prefix(e, "list pods");
		struct ipam_live_pod p;
		memset(&p, 0, sizeof(p));
		if (!cpy(p.ns, sizeof(p.ns), pod.meta.namespace_) ||
		    !cpy(p.name, sizeof(p.name), pod.meta.name) ||
		    !cpy(p.uid, sizeof(p.uid), pod.meta.uid ? pod.meta.uid : ""))
			continue;
		cpy(p.node, sizeof(p.node), pod.node_name ? pod.node_name : "");
		p.done = pod.phase && (!strcmp(pod.phase, "Succeeded") || !strcmp(pod.phase, "Failed"));
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
		if (ipam_live_add_pod(&x->live, &p))
			return err_set(e, ENOMEM, "list pods");
	}
	return 0;
}

static int page_objs(struct ctl *x, const struct json_doc *d, int items, struct err *e,
		     bool vmi)
{
	struct json_iter it;
	int k, v;
	json_iter_init(&it, d, items);
	while (json_iter_next(&it, &k, &v)) {
		char mem[2048];
		struct kube_arena a;
		struct kube_meta m;
		kube_arena_init(&a, mem, sizeof(mem));
		if (kube_meta_view(d, v, &m, &a, e) < 0)
			return err_prefix(e, "list %s", vmi ? "VMIs" : "VMs");
		struct ipam_live_obj o;
		memset(&o, 0, sizeof(o));
		if (!cpy(o.ns, sizeof(o.ns), m.namespace_) || !cpy(o.name, sizeof(o.name), m.name))
			continue;
		cpy(o.uid, sizeof(o.uid), m.uid ? m.uid : "");
		if ((vmi ? ipam_live_add_vmi(&x->live, &o) : ipam_live_add_vm(&x->live, &o)))
			return err_set(e, ENOMEM, "list");
	}
	return 0;
}

static int page_vmis(struct ctl *x, const struct json_doc *d, int items, struct err *e)
{
	return page_objs(x, d, items, e, true);
}

static int page_vms(struct ctl *x, const struct json_doc *d, int items, struct err *e)
{
	return page_objs(x, d, items, e, false);
}

/* Fill x->live from the API. 0 with live.known, 0 without (no API configured with the
 * file datastore: api_note says why), -1 on an API failure (reported). */
int ctl_load_live(struct ctl *x)
{
	if (x->live_loaded)
		return 0;
	x->live_loaded = true;
	if (ctl_open_api(x, x->kube) < 0)
		return x->c || x->api_note[0] ? 0 : -1;
	struct err e = {0};
	int rc = list_all(x, &kube_res_pods, page_pods, &e);
	if (!rc) {
		rc = list_all(x, &kube_res_vmis, page_vmis, &e);
		if (rc == -ENOENT) /* KubeVirt not installed */
			rc = 0;
	}
	if (!rc) {
		rc = list_all(x, &kube_res_vms, page_vms, &e);
		if (rc == -ENOENT)
			rc = 0;
	}
	if (rc) {
		ctl_errx("API: %s", e.msg);
		return -1;
	}
	x->live.known = true;
	return 0;
}

static int64_t rfc3339(const char *s)
{
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
		   &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (int64_t)timegm(&tm);
}

static int page_handles(struct ctl *x, const struct json_doc *d, int items, struct err *e)
{
	struct ctl_htimes *ht = x->ht;
	struct json_iter it;
	int k, v;
	json_iter_init(&it, d, items);
	while (json_iter_next(&it, &k, &v)) {
		int n = json_find(d, v, "metadata", "name", NULL);
		int c = json_find(d, v, "metadata", "creationTimestamp", NULL);
		char ts[64];
		struct ctl_htime h;
		if (n < 0 || c < 0 || json_str(d, n, h.id, sizeof(h.id)) ||
		    json_str(d, c, ts, sizeof(ts)))
			continue;
		h.t = rfc3339(ts);
		if (ht->n == ht->cap) {
			unsigned nc = ht->cap ? ht->cap * 2 : 64;
			struct ctl_htime *p = realloc(ht->v, nc * sizeof(*p));
			if (!p)
				return err_set(e, ENOMEM, "list ipamhandles");
			ht->v = p;
			ht->cap = nc;
		}
		ht->v[ht->n++] = h;
	}
	return 0;
}

/* Creation time of handle id: the IPAMHandle's creationTimestamp (kubernetes). The file
 * datastore keeps no times: -1 (counts as old). There the CNI treats every pod as an
 * ordinary one, so its VM allocations come from reserve/import, which are never leaks. */
int64_t ctl_handle_time(void *user, const char *id)
{
	struct ctl_htimes *h = user;
	if (!h->x->kube)
		return -1;
	for (unsigned i = 0; i < h->n; i++)
		if (!strcmp(h->v[i].id, id))
			return h->v[i].t;
	return -1;
}
int ctl_load_htimes(struct ctl *x, struct ctl_htimes *ht)
{
	memset(ht, 0, sizeof(*ht));
	ht->x = x;
	if (!x->kube)
		return 0;
	struct err e = {0};
	x->ht = ht;
	int rc = list_all(x, &kube_res_ipamhandles, page_handles, &e);
	x->ht = NULL;
	if (rc < 0) {
		ctl_errx("API: %s", e.msg);
		return -1;
	}
	return 0;
}
