/* ipamctl role — the operator CLI over the IPAM state (conventions of `calicoctl ipam` and
 * `kubectl`): see, check, repair and pre-register VM addresses.
 *
 *   show [--blocks | --ip IP | --vm NS/NAME | --borrowed | --configuration]
 *   check [-o report.json]
 *   release --ip IP | --handle H | --from-report FILE [--force]
 *   reserve --vm NS/NAME --ip IP [--mac MAC] [--network NET]
 *   import FILE.csv [--partial] [--network NET]
 *   configure --kubevirt-ip-persistence=Enabled|Disabled
 *   pool list | pool add CIDR [--block-size N] | pool delete CIDR
 *
 * Global flags (anywhere on the line): --datastore kubernetes|file, --kubeconfig FILE,
 * --context NAME (KUBECONFIG is honoured), --state-dir DIR, -c FILE (kvnet.conf: its
 * [datastore], [kubernetes] and [ipam] sections are the defaults of these flags;
 * KVNET_<SECTION>_<KEY> variables override the file), -o table|json|wide, --network NET
 * (default "kvnet", the CNI network name of VM handles <network>.vmi.<ns>.<vm>).
 * For `check`, -o with anything but table/json/wide is the report file.
 *
 * ipamctl talks to the datastore directly (the agent is optional). The API server (the
 * kubernetes datastore's, or with the file datastore the kubeconfig's when one is found)
 * tells which pods, VMIs and VMs exist: check judges leaks and duplicates with it, release
 * refuses an address whose owner is alive (or cannot be verified) unless --force.
 *
 * Exit status: 0 done; 1 problems found or the operation failed; 2 usage error.
 */
#include "cmd/cmd.h"

#include "conf/conf.h"
#include "ipam/ds.h"
#include "ipam/ds_file.h"
#include "ipam/ds_kube.h"
#include "ipam/inventory.h"
#include "ipam/ipam.h"
#include "ipam/report.h"
#include "kube/client.h"
#include "lib/json.h"
#include "kube/kubeconfig.h"
#include "kube/types.h"
#include "lib/err.h"
#include "lib/file.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define CTL_KUBE_TIMEOUT_MS 15000
#define CTL_PAGE 500
#define CTL_FILE_MAX (64u << 20)
#define CTL_DEFAULT_NETWORK "kvnet"

enum ctl_out { OUT_TABLE = 1, OUT_JSON, OUT_WIDE };

struct htimes;

/* The process: options, configuration, datastore and API connections. */
struct ctl {
	enum ctl_out out;		   /* -o */
	const char *report_file;	   /* check -o FILE */
	const char *conf_path;		   /* -c */
	const char *ds_flag;		   /* --datastore */
	const char *state_dir_flag;	   /* --state-dir */
	const char *kubeconfig_flag;	   /* --kubeconfig */
	const char *context_flag;	   /* --context */
	const char *network;		   /* --network */
	const char *ip;			   /* --ip */
	const char *vm;			   /* --vm NS/NAME */
	const char *handle;		   /* --handle */
	const char *from_report;	   /* --from-report */
	const char *mac;		   /* --mac */
	const char *persistence;	   /* --kubevirt-ip-persistence */
	const char *grace_flag;		   /* --vm-grace-seconds */
	unsigned block_size;		   /* --block-size (0 = pool default) */
	bool blocks, borrowed, configuration, force, partial; /* switches */
	struct conf conf;		   /* kvnet.conf with overrides */
	bool kube;			   /* datastore is kubernetes */
	char state_dir[PATH_MAX];	   /* file datastore directory */
	uint32_t vm_grace;		   /* [ipam] vm_grace_seconds or the flag */
	struct ipam_ds_file df;		   /* file datastore (when !kube) */
	bool df_open;			   /* df is open */
	struct kcfg *kc;		   /* kubeconfig (API), or NULL */
	struct kube_client *c;		   /* API client, or NULL */
	struct ipam_ds_kube dk;		   /* kubernetes datastore over c */
	struct ipam_ds ds;		   /* the datastore in use */
	struct ipam_live live;		   /* API view (live.known once loaded) */
	bool live_loaded;		   /* load_live ran */
	char api_note[256];		   /* why there is no API view */
	struct htimes *ht;		   /* handle times being listed (page_handles) */
};

/* ---- output helpers ------------------------------------------------------------------ */

static void errx_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void errx_(const char *fmt, ...)
{
	va_list ap;
	fputs("ipamctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* A table: rows of cells, printed kubectl-style (upper-case header, columns padded, three
 * spaces between). */
#define TBL_COLS 10
struct tbl {
	unsigned ncols;		/* columns */
	char **cell;		/* rows * ncols strings (owned) */
	unsigned rows, cap;	/* rows used (header included) / allocated */
};

static void tbl_row(struct tbl *t, ...)
{
	if (t->rows == t->cap) {
		unsigned nc = t->cap ? t->cap * 2 : 16;
		char **p = realloc(t->cell, (size_t)nc * t->ncols * sizeof(*p));
		if (!p) {
			errx_("out of memory");
			exit(1);
		}
		t->cell = p;
		t->cap = nc;
	}
	va_list ap;
	va_start(ap, t);
	for (unsigned i = 0; i < t->ncols; i++) {
		const char *s = va_arg(ap, const char *);
		t->cell[t->rows * t->ncols + i] = strdup(s && *s ? s : "-");
	}
	va_end(ap);
	t->rows++;
}

static void tbl_free(struct tbl *t)
{
	for (unsigned i = 0; i < t->rows * t->ncols; i++)
		free(t->cell[i]);
	free(t->cell);
	t->cell = NULL;
	t->rows = t->cap = 0;
}

static void tbl_print(struct tbl *t)
{
	size_t w[TBL_COLS] = {0};
	for (unsigned r = 0; r < t->rows; r++)
		for (unsigned c = 0; c < t->ncols; c++) {
			const char *s = t->cell[r * t->ncols + c];
			size_t n = s ? strlen(s) : 0;
			if (n > w[c])
				w[c] = n;
		}
	for (unsigned r = 0; r < t->rows; r++) {
		for (unsigned c = 0; c < t->ncols; c++) {
			const char *s = t->cell[r * t->ncols + c];
			if (c + 1 == t->ncols)
				printf("%s\n", s ? s : "");
			else
				printf("%-*s   ", (int)w[c], s ? s : "");
		}
	}
	tbl_free(t);
}

/* Print compact JSON text indented by two spaces (kubectl -o json style). */
static int print_pretty(const char *text, size_t len)
{
	struct json_doc d;
	struct err e = {0};
	int rc = json_parse(&d, text, len, NULL, 0, 0, &e);
	if (rc && rc != -ENOSPC)
		return rc;
	struct json_tok *tok = calloc(d.n ? d.n : 1, sizeof(*tok));
	if (!tok)
		return -ENOMEM;
	if ((rc = json_parse(&d, text, len, tok, d.n, 0, &e))) {
		free(tok);
		return rc;
	}
	/* walk tokens with an explicit stack of "remaining children" */
	unsigned depth = 0;
	uint32_t left[JSON_DEPTH_MAX + 1];
	bool isobj[JSON_DEPTH_MAX + 1];
	bool first[JSON_DEPTH_MAX + 1];
	left[0] = 1;
	isobj[0] = false;
	first[0] = true;
	for (unsigned i = 0; i < d.n; i++) {
		const struct json_tok *t = &tok[i];
		bool key = t->flags & JSON_TF_KEY;
		if (depth > 0 && (key || !isobj[depth])) {
			printf("%s\n%*s", first[depth] ? "" : ",", (int)depth * 2, "");
			first[depth] = false;
		}
		size_t n;
		const char *raw = json_raw(&d, (int)i, &n);
		switch ((enum json_type)t->type) {
		case JSON_OBJECT:
		case JSON_ARRAY:
			putchar(t->type == JSON_OBJECT ? '{' : '[');
			if (!key && depth > 0 && !isobj[depth])
				left[depth]--;
			else if (depth > 0 && isobj[depth])
				left[depth]--;
			if (t->size == 0) {
				putchar(t->type == JSON_OBJECT ? '}' : ']');
				break;
			}
			depth++;
			left[depth] = t->size * (t->type == JSON_OBJECT ? 2 : 1);
			isobj[depth] = t->type == JSON_OBJECT;
			first[depth] = true;
			continue;
		case JSON_STRING:
			printf("\"%.*s\"%s", (int)n, raw, key ? ": " : "");
			left[depth]--;
			break;
		case JSON_NUMBER:
		case JSON_TRUE:
		case JSON_FALSE:
		case JSON_NULL:
			printf("%.*s", (int)n, raw);
			left[depth]--;
			break;
		}
		while (depth > 0 && left[depth] == 0) {
			printf("\n%*s%c", (int)(depth - 1) * 2, "", isobj[depth] ? '}' : ']');
			depth--;
		}
	}
	putchar('\n');
	free(tok);
	return 0;
}

/* Finish writer w and print it pretty; 0 or 1 (failure reported). */
static int emit_json(struct json_w *w)
{
	struct err e = {0};
	if (json_w_finish(w, &e) < 0) {
		errx_("writing JSON: %s", e.msg);
		json_w_free(w);
		return 1;
	}
	int rc = print_pretty(w->buf, w->len);
	json_w_free(w);
	if (rc) {
		errx_("writing JSON: cannot re-read own output");
		return 1;
	}
	return 0;
}

static void w_kstr(struct json_w *w, const char *k, const char *v)
{
	json_w_key(w, k);
	json_w_str(w, v);
}

static void w_kuint(struct json_w *w, const char *k, uint64_t v)
{
	json_w_key(w, k);
	json_w_uint(w, v);
}

static void w_k128(struct json_w *w, const char *k, unsigned __int128 v)
{
	char s[48];
	ipam_u128_str(v, s, sizeof(s));
	json_w_key(w, k);
	json_w_number(w, s, strlen(s));
}

static void json_head(struct json_w *w, const char *kind)
{
	json_w_init_grow(w, CTL_FILE_MAX);
	json_w_obj_begin(w);
	w_kstr(w, "apiVersion", "kvnet.io/v1");
	w_kstr(w, "kind", kind);
}

/* ---- datastore and API ------------------------------------------------------------- */

static int open_api(struct ctl *x, bool required)
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
		errx_("kubernetes: %s", e.msg);
		return rc;
	}
	if (x->kc->insecure)
		errx_("warning: %s: insecure-skip-tls-verify is set: the API server's certificate "
		      "is NOT verified", x->kc->source);
	x->c = kube_client_from_kcfg(x->kc, CTL_KUBE_TIMEOUT_MS, &e);
	if (!x->c) {
		errx_("kubernetes: %s", e.msg);
		kcfg_free(x->kc);
		x->kc = NULL;
		return -EINVAL;
	}
	return 0;
}

static int open_store(struct ctl *x)
{
	struct err e = {0};
	if (!x->kube) {
		if (ipam_ds_file_open(&x->df, x->state_dir, &e) < 0) {
			errx_("file datastore: %s", e.msg);
			return -1;
		}
		x->df_open = true;
		x->ds = ipam_ds_file(&x->df);
		return 0;
	}
	if (open_api(x, true) < 0)
		return -1;
	ipam_ds_kube_init(&x->dk, x->c);
	x->ds = ipam_ds_kube(&x->dk);
	return 0;
}

static void close_all(struct ctl *x)
{
	if (x->df_open)
		ipam_ds_file_close(&x->df);
	kube_client_free(x->c);
	kcfg_free(x->kc);
	ipam_live_free(&x->live);
}

static int read_state(struct ctl *x, struct ipam_state *st)
{
	struct err e = {0};
	if (ipam_ds_read(&x->ds, st, &e) < 0) {
		errx_("%s datastore: %s", x->kube ? "kubernetes" : "file", e.msg);
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
static int load_live(struct ctl *x)
{
	if (x->live_loaded)
		return 0;
	x->live_loaded = true;
	if (open_api(x, x->kube) < 0)
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
		errx_("API: %s", e.msg);
		return -1;
	}
	x->live.known = true;
	return 0;
}

/* Creation times of handles: kubernetes creationTimestamp, file mtime. */
struct htime {
	char id[IPAM_NAME_MAX + 1]; /* handle id */
	int64_t t;		    /* seconds since the epoch */
};
struct htimes {
	struct ctl *x;	     /* the process */
	struct htime *v;     /* known times (kubernetes) */
	unsigned n, cap;     /* used / allocated */
};

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
	struct htimes *ht = x->ht;
	struct json_iter it;
	int k, v;
	json_iter_init(&it, d, items);
	while (json_iter_next(&it, &k, &v)) {
		int n = json_find(d, v, "metadata", "name", NULL);
		int c = json_find(d, v, "metadata", "creationTimestamp", NULL);
		char ts[64];
		struct htime h;
		if (n < 0 || c < 0 || json_str(d, n, h.id, sizeof(h.id)) ||
		    json_str(d, c, ts, sizeof(ts)))
			continue;
		h.t = rfc3339(ts);
		if (ht->n == ht->cap) {
			unsigned nc = ht->cap ? ht->cap * 2 : 64;
			struct htime *p = realloc(ht->v, nc * sizeof(*p));
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
static int64_t handle_time(void *user, const char *id)
{
	struct htimes *h = user;
	if (!h->x->kube)
		return -1;
	for (unsigned i = 0; i < h->n; i++)
		if (!strcmp(h->v[i].id, id))
			return h->v[i].t;
	return -1;
}

static const char *slash_split(const char *s, char *ns, size_t nscap, char *name, size_t ncap)
{
	const char *sl = s ? strchr(s, '/') : NULL;
	if (!sl || sl == s || !sl[1] || strchr(sl + 1, '/') || (size_t)(sl - s) >= nscap ||
	    strlen(sl + 1) >= ncap)
		return NULL;
	memcpy(ns, s, (size_t)(sl - s));
	ns[sl - s] = 0;
	snprintf(name, ncap, "%s", sl + 1);
	return name;
}

/* ---- show ------------------------------------------------------------------------- */

static void pct(char *buf, size_t cap, unsigned __int128 part, unsigned __int128 whole)
{
	char n[48];
	snprintf(buf, cap, "%s (%u%%)", ipam_u128_str(part, n, sizeof(n)), ipam_percent(part, whole));
}

static int cmp_pool(const void *a, const void *b)
{
	const struct ipam_pool *x = *(const struct ipam_pool *const *)a;
	const struct ipam_pool *y = *(const struct ipam_pool *const *)b;
	if (x->cidr.a.family != y->cidr.a.family)
		return x->cidr.a.family == AF_INET ? -1 : 1;
	int c = memcmp(x->cidr.a.b, y->cidr.a.b, 16);
	return c ? c : (int)x->cidr.prefix - (int)y->cidr.prefix;
}

static int cmp_blockp(const void *a, const void *b)
{
	const struct ipam_block *x = *(const struct ipam_block *const *)a;
	const struct ipam_block *y = *(const struct ipam_block *const *)b;
	if (x->cidr.a.family != y->cidr.a.family)
		return x->cidr.a.family == AF_INET ? -1 : 1;
	return memcmp(x->cidr.a.b, y->cidr.a.b, 16);
}

/* Pools sorted by address (v4 first): an array of indices into st->pools. */
static unsigned *sorted_pools(const struct ipam_state *st)
{
	const struct ipam_pool **p = calloc(st->n_pools + 1, sizeof(*p));
	unsigned *idx = calloc(st->n_pools + 1, sizeof(*idx));
	if (!p || !idx) {
		free(p);
		free(idx);
		return NULL;
	}
	for (unsigned i = 0; i < st->n_pools; i++)
		p[i] = &st->pools[i];
	qsort(p, st->n_pools, sizeof(*p), cmp_pool);
	for (unsigned i = 0; i < st->n_pools; i++)
		idx[i] = (unsigned)(p[i] - st->pools);
	free(p);
	return idx;
}

static const struct ipam_block **sorted_blocks(const struct ipam_state *st)
{
	const struct ipam_block **b = calloc(st->n_blocks + 1, sizeof(*b));
	if (!b)
		return NULL;
	for (unsigned i = 0; i < st->n_blocks; i++)
		b[i] = &st->blocks[i];
	qsort(b, st->n_blocks, sizeof(*b), cmp_blockp);
	return b;
}

static int show_pools(struct ctl *x, const struct ipam_state *st)
{
	unsigned *idx = sorted_pools(st);
	if (!idx)
		return 1;
	char cs[64], tot[48], used[64], fr[64], blk[8], nb[16], nbr[16], nres[16];
	if (x->out == OUT_JSON) {
		struct json_w w;
		json_head(&w, "IPPoolUsageList");
		json_w_key(&w, "items");
		json_w_arr_begin(&w);
		for (unsigned k = 0; k < st->n_pools; k++) {
			const struct ipam_pool *p = &st->pools[idx[k]];
			struct ipam_pool_usage u;
			ipam_pool_usage(st, idx[k], &u);
			json_w_obj_begin(&w);
			w_kstr(&w, "name", p->name);
			w_kstr(&w, "cidr", ipam_cidr_str(&p->cidr, cs, sizeof(cs)));
			w_kuint(&w, "blockSize", p->block_prefix);
			w_k128(&w, "total", u.total);
			w_k128(&w, "inUse", u.used);
			w_k128(&w, "free", u.total - u.used);
			w_kuint(&w, "inUsePercent", ipam_percent(u.used, u.total));
			w_kuint(&w, "blocks", u.blocks);
			w_kuint(&w, "borrowed", u.borrowed);
			w_kuint(&w, "reservedAddresses", u.n_reserved_addrs);
			json_w_obj_end(&w);
		}
		json_w_arr_end(&w);
		json_w_obj_end(&w);
		free(idx);
		return emit_json(&w);
	}
	bool wide = x->out == OUT_WIDE;
	struct tbl t = {.ncols = wide ? 9 : 5};
	if (wide)
		tbl_row(&t, "POOL", "CIDR", "TOTAL", "IN USE", "FREE", "BLOCK SIZE", "BLOCKS",
			"BORROWED", "RESERVED");
	else
		tbl_row(&t, "POOL", "CIDR", "TOTAL", "IN USE", "FREE");
	for (unsigned k = 0; k < st->n_pools; k++) {
		const struct ipam_pool *p = &st->pools[idx[k]];
		struct ipam_pool_usage u;
		ipam_pool_usage(st, idx[k], &u);
		pct(used, sizeof(used), u.used, u.total);
		pct(fr, sizeof(fr), u.total - u.used, u.total);
		ipam_u128_str(u.total, tot, sizeof(tot));
		ipam_cidr_str(&p->cidr, cs, sizeof(cs));
		snprintf(blk, sizeof(blk), "/%u", p->block_prefix);
		snprintf(nb, sizeof(nb), "%u", u.blocks);
		snprintf(nbr, sizeof(nbr), "%u", u.borrowed);
		snprintf(nres, sizeof(nres), "%u", u.n_reserved_addrs);
		tbl_row(&t, p->name, cs, tot, used, fr, blk, nb, nbr, nres);
	}
	if (!st->n_pools) {
		printf("No IP pools.\n");
		tbl_free(&t);
	} else {
		tbl_print(&t);
	}
	free(idx);
	return 0;
}

static int show_blocks(struct ctl *x, const struct ipam_state *st)
{
	const struct ipam_block **bs = sorted_blocks(st);
	if (!bs)
		return 1;
	char cs[64], used[64], fr[32], borrowed[16];
	struct json_w w;
	struct tbl t = {.ncols = x->out == OUT_WIDE ? 6 : 5};
	if (x->out == OUT_JSON) {
		json_head(&w, "IPAMBlockUsageList");
		json_w_key(&w, "items");
		json_w_arr_begin(&w);
	} else if (x->out == OUT_WIDE) {
		tbl_row(&t, "BLOCK", "POOL", "AFFINITY", "IN USE", "FREE", "BORROWED");
	} else {
		tbl_row(&t, "BLOCK", "POOL", "AFFINITY", "IN USE", "FREE");
	}
	for (unsigned i = 0; i < st->n_blocks; i++) {
		const struct ipam_block *b = bs[i];
		const struct ipam_pool *p = ipam_pool_of(st, &b->cidr.a);
		unsigned n = 0, nb = 0;
		for (unsigned k = 0; k < b->size; k++) {
			if (!b->slot[k])
				continue;
			n++;
			const char *node = ipam_alloc_node(b->slot[k]);
			nb += b->affinity[0] && node[0] && strcmp(node, b->affinity);
		}
		/* free = allocatable: size minus allocations minus pool-reserved addresses */
		unsigned res = 0;
		for (unsigned k = 0; p && k < b->size; k++) {
			struct ip_addr a = ipam_block_addr(b, k);
			res += !b->slot[k] && ipam_pool_reserves(p, &a);
		}
		unsigned cap = b->size - res;
		ipam_cidr_str(&b->cidr, cs, sizeof(cs));
		if (x->out == OUT_JSON) {
			json_w_obj_begin(&w);
			w_kstr(&w, "cidr", cs);
			w_kstr(&w, "pool", p ? p->name : "");
			json_w_key(&w, "affinity");
			if (b->affinity[0])
				json_w_str(&w, b->affinity);
			else
				json_w_null(&w);
			w_kuint(&w, "size", b->size);
			w_kuint(&w, "inUse", n);
			w_kuint(&w, "free", cap - n);
			w_kuint(&w, "storedCount", b->used);
			w_kuint(&w, "borrowed", nb);
			json_w_obj_end(&w);
			continue;
		}
		pct(used, sizeof(used), n, cap);
		snprintf(fr, sizeof(fr), "%u", cap - n);
		snprintf(borrowed, sizeof(borrowed), "%u", nb);
		tbl_row(&t, cs, p ? p->name : "(no pool)", b->affinity, used, fr, borrowed);
	}
	free(bs);
	if (x->out == OUT_JSON) {
		json_w_arr_end(&w);
		json_w_obj_end(&w);
		return emit_json(&w);
	}
	if (!st->n_blocks) {
		printf("No blocks claimed.\n");
		tbl_free(&t);
	} else {
		tbl_print(&t);
	}
	return 0;
}

static void owner_text(char *buf, size_t cap, const struct ipam_owner *o)
{
	if (!o->uid[0])
		snprintf(buf, cap, "-");
	else
		snprintf(buf, cap, "%s/%s%s%s", o->ns, o->name, o->node[0] ? "@" : "",
			 o->node);
}

static void w_owner(struct json_w *w, const char *k, const struct ipam_owner *o)
{
	json_w_key(w, k);
	if (!o->uid[0]) {
		json_w_null(w);
		return;
	}
	json_w_obj_begin(w);
	w_kstr(w, "namespace", o->ns);
	w_kstr(w, "name", o->name);
	w_kstr(w, "uid", o->uid);
	w_kstr(w, "node", o->node);
	json_w_obj_end(w);
}

static void w_attrs(struct json_w *w, const struct ipam_attrs *a)
{
	json_w_key(w, "attributes");
	json_w_obj_begin(w);
	const struct {
		const char *k, *v;
	} f[] = {{"pod", a->pod},	     {"namespace", a->ns},	  {"node", a->node},
		 {"ifname", a->ifname},	     {"containerID", a->container_id},
		 {"vmiName", a->vmi_name},   {"vmiUID", a->vmi_uid},	  {"vmUID", a->vm_uid},
		 {"vmimUID", a->vmim_uid},   {"mac", a->mac}};
	for (unsigned i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		if (f[i].v[0])
			w_kstr(w, f[i].k, f[i].v);
	json_w_obj_end(w);
}

static int show_ip(struct ctl *x, const struct ipam_state *st)
{
	struct ip_addr a;
	struct err e = {0};
	if (ipam_addr_parse(&a, x->ip, &e) < 0) {
		errx_("show --ip: %s", e.msg);
		return 2;
	}
	char as[64], cs[64], why[256], o1[600], o2[600];
	ipam_addr_str(&a, as, sizeof(as));
	const struct ipam_pool *p = ipam_pool_of(st, &a);
	const struct ipam_block *b = ipam_block_of(st, &a);
	const struct ipam_attrs *at = ipam_lookup_ip(st, &a);
	enum ipam_owner_state os = IPAM_OWNER_UNKNOWN;
	if (at) {
		if (load_live(x) < 0)
			return 1;
		os = ipam_owner_judge(&x->live, at, why, sizeof(why));
	}
	if (x->out == OUT_JSON) {
		struct json_w w;
		json_head(&w, "IPAMAddress");
		w_kstr(&w, "ip", as);
		json_w_key(&w, "inUse");
		json_w_bool(&w, at != NULL);
		json_w_key(&w, "pool");
		if (p)
			json_w_str(&w, p->name);
		else
			json_w_null(&w);
		json_w_key(&w, "reservedByPool");
		json_w_bool(&w, p && ipam_pool_reserves(p, &a));
		json_w_key(&w, "block");
		if (b)
			json_w_str(&w, ipam_cidr_str(&b->cidr, cs, sizeof(cs)));
		else
			json_w_null(&w);
		json_w_key(&w, "blockAffinity");
		if (b && b->affinity[0])
			json_w_str(&w, b->affinity);
		else
			json_w_null(&w);
		if (at) {
			w_kstr(&w, "handle", at->handle);
			w_owner(&w, "activeOwner", &at->active);
			w_owner(&w, "alternateOwner", &at->alternate);
			w_attrs(&w, at);
			w_kstr(&w, "owner", ipam_owner_state_name(os));
			w_kstr(&w, "ownerDetail", why);
		}
		json_w_obj_end(&w);
		int rc = emit_json(&w);
		return rc ? rc : (p ? 0 : 1);
	}
	if (!p) {
		printf("IP %s is not in any pool\n", as);
		return 1;
	}
	if (!at) {
		printf("IP %s is not in use (pool %s%s)\n", as, p->name,
		       ipam_pool_reserves(p, &a) ? ", reserved by the pool: never handed out" : "");
		return 0;
	}
	printf("IP %s is in use\n", as);
	printf("  Pool:       %s\n", p->name);
	printf("  Block:      %s (affinity %s)\n", ipam_cidr_str(&b->cidr, cs, sizeof(cs)),
	       b->affinity[0] ? b->affinity : "none");
	printf("  Handle:     %s\n", at->handle);
	if (at->vmi_name[0])
		printf("  VM:         %s/%s%s%s\n", at->ns, at->vmi_name, at->mac[0] ? " mac " : "",
		       at->mac);
	owner_text(o1, sizeof(o1), &at->active);
	owner_text(o2, sizeof(o2), &at->alternate);
	printf("  Active:     %s%s%s%s\n", o1, at->active.uid[0] ? " (uid " : "",
	       at->active.uid, at->active.uid[0] ? ")" : "");
	printf("  Alternate:  %s%s%s%s\n", o2, at->alternate.uid[0] ? " (uid " : "",
	       at->alternate.uid, at->alternate.uid[0] ? ")" : "");
	printf("  Attributes:");
	const struct {
		const char *k, *v;
	} f[] = {{"pod", at->pod},	       {"namespace", at->ns},	     {"node", at->node},
		 {"ifname", at->ifname},       {"containerID", at->container_id},
		 {"vmiName", at->vmi_name},    {"vmiUID", at->vmi_uid},	     {"vmUID", at->vm_uid},
		 {"vmimUID", at->vmim_uid},    {"mac", at->mac}};
	for (unsigned i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		if (f[i].v[0])
			printf(" %s=%s", f[i].k, f[i].v);
	printf("\n  Owner:      %s (%s)\n", ipam_owner_state_name(os), why);
	return 0;
}

static int show_vm(struct ctl *x, const struct ipam_state *st)
{
	char ns[IPAM_NS_MAX + 1], name[IPAM_NAME_MAX + 1];
	if (!slash_split(x->vm, ns, sizeof(ns), name, sizeof(name))) {
		errx_("show --vm: '%s': want NAMESPACE/NAME", x->vm);
		return 2;
	}
	if (load_live(x) < 0)
		return 1;
	const struct ipam_block **bs = sorted_blocks(st);
	if (!bs)
		return 1;
	struct json_w w;
	struct tbl t = {.ncols = x->out == OUT_WIDE ? 7 : 6};
	if (x->out == OUT_JSON) {
		json_head(&w, "IPAMVMAddressList");
		w_kstr(&w, "namespace", ns);
		w_kstr(&w, "vm", name);
		json_w_key(&w, "items");
		json_w_arr_begin(&w);
	} else if (x->out == OUT_WIDE) {
		tbl_row(&t, "IP", "MAC", "STATE", "ACTIVE", "ALTERNATE", "HANDLE", "OWNER");
	} else {
		tbl_row(&t, "IP", "MAC", "STATE", "ACTIVE", "ALTERNATE", "HANDLE");
	}
	unsigned found = 0;
	for (unsigned i = 0; i < st->n_blocks; i++) {
		const struct ipam_block *b = bs[i];
		for (unsigned k = 0; k < b->size; k++) {
			const struct ipam_attrs *a = b->slot[k];
			if (!a || strcmp(a->ns, ns) || strcmp(a->vmi_name, name))
				continue;
			found++;
			char as[64], o1[600], o2[600], why[256];
			struct ip_addr ad = ipam_block_addr(b, k);
			ipam_addr_str(&ad, as, sizeof(as));
			enum ipam_owner_state os = ipam_owner_judge(&x->live, a, why, sizeof(why));
			const char *state = os == IPAM_OWNER_RESERVED ? "reserved" : "in use";
			if (x->out == OUT_JSON) {
				json_w_obj_begin(&w);
				w_kstr(&w, "ip", as);
				w_kstr(&w, "handle", a->handle);
				w_kstr(&w, "state", state);
				json_w_key(&w, "mac");
				if (a->mac[0])
					json_w_str(&w, a->mac);
				else
					json_w_null(&w);
				w_owner(&w, "activeOwner", &a->active);
				w_owner(&w, "alternateOwner", &a->alternate);
				w_kstr(&w, "owner", ipam_owner_state_name(os));
				w_kstr(&w, "ownerDetail", why);
				json_w_obj_end(&w);
				continue;
			}
			owner_text(o1, sizeof(o1), &a->active);
			owner_text(o2, sizeof(o2), &a->alternate);
			tbl_row(&t, as, a->mac, state, o1, o2, a->handle,
				ipam_owner_state_name(os));
		}
	}
	free(bs);
	if (x->out == OUT_JSON) {
		json_w_arr_end(&w);
		json_w_obj_end(&w);
		int rc = emit_json(&w);
		return rc ? rc : (found ? 0 : 1);
	}
	if (!found) {
		printf("VM %s/%s holds no address\n", ns, name);
		tbl_free(&t);
		return 1;
	}
	tbl_print(&t);
	return 0;
}

static int show_borrowed(struct ctl *x, const struct ipam_state *st)
{
	const struct ipam_block **bs = sorted_blocks(st);
	if (!bs)
		return 1;
	struct json_w w;
	struct tbl t = {.ncols = 5};
	if (x->out == OUT_JSON) {
		json_head(&w, "IPAMBorrowedList");
		json_w_key(&w, "items");
		json_w_arr_begin(&w);
	} else {
		tbl_row(&t, "IP", "BLOCK", "BLOCK NODE", "USED ON", "HANDLE");
	}
	unsigned n = 0;
	for (unsigned i = 0; i < st->n_blocks; i++) {
		const struct ipam_block *b = bs[i];
		for (unsigned k = 0; k < b->size; k++) {
			const struct ipam_attrs *a = b->slot[k];
			if (!a)
				continue;
			const char *node = ipam_alloc_node(a);
			if (!b->affinity[0] || !node[0] || !strcmp(node, b->affinity))
				continue;
			n++;
			char as[64], cs[64];
			struct ip_addr ad = ipam_block_addr(b, k);
			ipam_addr_str(&ad, as, sizeof(as));
			ipam_cidr_str(&b->cidr, cs, sizeof(cs));
			if (x->out == OUT_JSON) {
				json_w_obj_begin(&w);
				w_kstr(&w, "ip", as);
				w_kstr(&w, "block", cs);
				w_kstr(&w, "blockNode", b->affinity);
				w_kstr(&w, "usedOn", node);
				w_kstr(&w, "handle", a->handle);
				json_w_obj_end(&w);
				continue;
			}
			tbl_row(&t, as, cs, b->affinity, node, a->handle);
		}
	}
	free(bs);
	if (x->out == OUT_JSON) {
		json_w_arr_end(&w);
		json_w_obj_end(&w);
		return emit_json(&w);
	}
	if (!n) {
		printf("No borrowed addresses.\n");
		tbl_free(&t);
		return 0;
	}
	tbl_print(&t);
	return 0;
}

/* The IPAMConfig record (cluster-wide; absent = Enabled) and the grace period in use. */
static int show_configuration(struct ctl *x)
{
	if (open_store(x) < 0)
		return 1;
	struct ipam_state st;
	if (read_state(x, &st) < 0) {
		ipam_state_free(&st);
		return 1;
	}
	struct ipam_config c;
	bool rec = ipam_config_get(&st, &c);
	ipam_state_free(&st);
	const char *pers = ipam_persist_name(c.vm_persistence);
	char g[16];
	snprintf(g, sizeof(g), "%u", x->vm_grace);
	if (x->out == OUT_JSON) {
		struct json_w w;
		json_head(&w, "IPAMConfiguration");
		w_kstr(&w, "kubeVirtVMAddressPersistence", pers);
		json_w_key(&w, "ipamConfigRecord");
		json_w_bool(&w, rec);
		w_kuint(&w, "vmGraceSeconds", x->vm_grace);
		w_kstr(&w, "datastore", x->kube ? "kubernetes" : "file");
		json_w_obj_end(&w);
		return emit_json(&w);
	}
	struct tbl t = {.ncols = 2};
	tbl_row(&t, "PROPERTY", "VALUE");
	tbl_row(&t, "KubeVirtVMAddressPersistence", rec ? pers : "Enabled (default: no IPAMConfig)");
	tbl_row(&t, "VMGraceSeconds", g);
	tbl_row(&t, "Datastore", x->kube ? "kubernetes" : "file");
	tbl_print(&t);
	return 0;
}

static int cmd_show(struct ctl *x)
{
	unsigned modes = (x->blocks ? 1 : 0) + (x->ip ? 1 : 0) + (x->vm ? 1 : 0) +
			 (x->borrowed ? 1 : 0) + (x->configuration ? 1 : 0);
	if (modes > 1) {
		errx_("show: --blocks, --ip, --vm, --borrowed and --configuration exclude each "
		      "other");
		return 2;
	}
	if (x->configuration)
		return show_configuration(x);
	if (open_store(x) < 0)
		return 1;
	struct ipam_state st;
	if (read_state(x, &st) < 0) {
		ipam_state_free(&st);
		return 1;
	}
	int rc;
	if (x->blocks)
		rc = show_blocks(x, &st);
	else if (x->ip)
		rc = show_ip(x, &st);
	else if (x->vm)
		rc = show_vm(x, &st);
	else if (x->borrowed)
		rc = show_borrowed(x, &st);
	else
		rc = show_pools(x, &st);
	ipam_state_free(&st);
	return rc;
}

/* ---- check ------------------------------------------------------------------------ */

static int run_check(struct ctl *x, const struct ipam_state *st, struct ipam_report *r,
		     struct htimes *ht)
{
	struct err e = {0};
	struct ipam_check_opts o = {.live = &x->live, .now = (int64_t)time(NULL),
				    .vm_grace = x->vm_grace, .handle_time = handle_time, .user = ht};
	if (ipam_report_check(st, &o, r, &e) < 0) {
		errx_("check: %s", e.msg);
		return -1;
	}
	return 0;
}

static int load_htimes(struct ctl *x, struct htimes *ht)
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
		errx_("API: %s", e.msg);
		return -1;
	}
	return 0;
}

static int cmd_check(struct ctl *x)
{
	bool quiet = x->out == OUT_JSON;
	if (open_store(x) < 0)
		return 1;
	if (!quiet)
		printf("Checking IPAM for inconsistencies (%s datastore)...\n",
		       x->kube ? "kubernetes" : "file");
	struct ipam_state st;
	if (read_state(x, &st) < 0) {
		ipam_state_free(&st);
		return 1;
	}
	if (!quiet)
		printf("Loaded IPAM state: %u pools, %u blocks, %u handles\n", st.n_pools,
		       st.n_blocks, st.n_handles);
	if (load_live(x) < 0) {
		ipam_state_free(&st);
		return 1;
	}
	if (!quiet) {
		if (x->live.known)
			printf("Loaded from the API: %u pods, %u VMIs, %u VMs\n", x->live.n_pods,
			       x->live.n_vmis, x->live.n_vms);
		else
			printf("No API server (%s): leaks and duplicates are not checked\n",
			       x->api_note);
		printf("Checking allocations, handles and block counts...\n");
		if (x->live.known)
			printf("Checking owners (VM grace period %us) and addresses used by two "
			       "pods...\n", x->vm_grace);
	}
	struct htimes ht;
	struct ipam_report r;
	ipam_report_init(&r);
	int rc = 1;
	if (load_htimes(x, &ht) < 0 || run_check(x, &st, &r, &ht) < 0)
		goto out;
	if (!quiet) {
		printf("Checked %u allocations (%u reserved for VMs, %u of gone VMs within the "
		       "grace period)\n", r.allocations, r.reservations, r.within_grace);
		struct tbl t = {.ncols = 5};
		tbl_row(&t, "PROBLEM", "IP", "HANDLE", "REPAIR", "DETAIL");
		for (unsigned i = 0; i < r.n; i++) {
			char as[64] = "";
			if (r.p[i].has_ip)
				ipam_addr_str(&r.p[i].ip, as, sizeof(as));
			tbl_row(&t, ipam_problem_name(r.p[i].kind), as, r.p[i].handle,
				ipam_repair_name(r.p[i].repair), r.p[i].detail);
		}
		if (r.n)
			tbl_print(&t);
		else
			tbl_free(&t);
		printf("found %u problem%s\n", r.n, r.n == 1 ? "" : "s");
	}
	struct json_w w;
	struct err e = {0};
	json_w_init_grow(&w, CTL_FILE_MAX);
	if (ipam_report_write(&r, &w, &e) < 0) {
		errx_("check: report: %s", e.msg);
		json_w_free(&w);
		goto out;
	}
	if (x->report_file) {
		FILE *f = fopen(x->report_file, "w");
		if (!f || fwrite(w.buf, 1, w.len, f) != w.len || fputc('\n', f) == EOF ||
		    fclose(f) != 0) {
			errx_("check: report %s: write: %s", x->report_file, strerror(errno));
			json_w_free(&w);
			goto out;
		}
		if (!quiet)
			printf("Report written to %s\n", x->report_file);
	}
	if (quiet) {
		if (print_pretty(w.buf, w.len) < 0) {
			json_w_free(&w);
			goto out;
		}
	}
	json_w_free(&w);
	rc = r.n ? 1 : 0;
out:
	free(ht.v);
	ipam_report_free(&r);
	ipam_state_free(&st);
	return rc;
}

/* ---- release ---------------------------------------------------------------------- */

/* One action done or refused, for the output. */
struct act {
	char verb[16];		/* "released", "unlinked", ... or "refused", "skipped" */
	char ip[64];		/* address or "" */
	char handle[IPAM_NAME_MAX + 1]; /* handle or "" */
	char detail[IPAM_REPORT_DETAIL + 64]; /* why / what */
};

struct acts {
	struct act *v;		/* actions; owned */
	unsigned n, cap;	/* used / allocated */
	unsigned refused;	/* actions refused or failed */
};

static void act_add(struct acts *a, const char *verb, const char *ip, const char *handle,
		    const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void act_add(struct acts *a, const char *verb, const char *ip, const char *handle,
		    const char *fmt, ...)
{
	if (a->n == a->cap) {
		unsigned nc = a->cap ? a->cap * 2 : 16;
		struct act *p = realloc(a->v, nc * sizeof(*p));
		if (!p) {
			errx_("out of memory");
			exit(1);
		}
		a->v = p;
		a->cap = nc;
	}
	struct act *x = &a->v[a->n++];
	snprintf(x->verb, sizeof(x->verb), "%s", verb);
	snprintf(x->ip, sizeof(x->ip), "%s", ip ? ip : "");
	snprintf(x->handle, sizeof(x->handle), "%s", handle ? handle : "");
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(x->detail, sizeof(x->detail), fmt, ap);
	va_end(ap);
	if (!strcmp(verb, "refused") || !strcmp(verb, "failed") || !strcmp(verb, "left"))
		a->refused++;
}

static int print_acts(struct ctl *x, const char *cmd, const struct acts *a)
{
	if (x->out == OUT_JSON) {
		struct json_w w;
		json_head(&w, "IPAMCtlResult");
		w_kstr(&w, "command", cmd);
		json_w_key(&w, "actions");
		json_w_arr_begin(&w);
		for (unsigned i = 0; i < a->n; i++) {
			json_w_obj_begin(&w);
			w_kstr(&w, "action", a->v[i].verb);
			if (a->v[i].ip[0])
				w_kstr(&w, "ip", a->v[i].ip);
			if (a->v[i].handle[0])
				w_kstr(&w, "handle", a->v[i].handle);
			w_kstr(&w, "detail", a->v[i].detail);
			json_w_obj_end(&w);
		}
		json_w_arr_end(&w);
		json_w_obj_end(&w);
		return emit_json(&w);
	}
	for (unsigned i = 0; i < a->n; i++) {
		const struct act *v = &a->v[i];
		FILE *f = !strcmp(v->verb, "refused") || !strcmp(v->verb, "failed") ? stderr : stdout;
		fprintf(f, "%s%s%s%s%s%s\n", v->verb, v->ip[0] ? " " : "", v->ip,
			v->handle[0] ? " (handle " : "", v->handle, v->handle[0] ? ")" : "");
		if (v->detail[0])
			fprintf(f, "  %s\n", v->detail);
	}
	return 0;
}

struct rel_arg {
	struct ctl *x;			/* the process */
	const struct ipam_report *old;	/* --from-report */
	struct htimes *ht;		/* handle times */
	struct acts acts;		/* what happened (reset per try) */
};

static void acts_reset(struct acts *a)
{
	a->n = 0;
	a->refused = 0;
}

/* Can the owner of allocation a be released? Fills why. */
static bool may_release(struct ctl *x, const struct ipam_attrs *a, char *why, size_t cap)
{
	enum ipam_owner_state os = ipam_owner_judge(&x->live, a, why, cap);
	if (x->force)
		return true;
	return os == IPAM_OWNER_GONE;
}

static int op_release_ip(struct ipam_state *st, void *arg, struct err *e)
{
	struct rel_arg *ra = arg;
	struct ctl *x = ra->x;
	acts_reset(&ra->acts);
	struct ip_addr a;
	if (ipam_addr_parse(&a, x->ip, e) < 0)
		return -EINVAL;
	char as[64], why[256];
	ipam_addr_str(&a, as, sizeof(as));
	const struct ipam_attrs *at = ipam_lookup_ip(st, &a);
	if (!at)
		return err_setx(e, ENOENT, "release %s: not allocated", as);
	char handle[IPAM_NAME_MAX + 1];
	snprintf(handle, sizeof(handle), "%s", at->handle);
	if (!may_release(x, at, why, sizeof(why))) {
		act_add(&ra->acts, "refused", as, handle, "owner %s: %s (use --force to release it anyway)",
			ipam_owner_state_name(ipam_owner_judge(&x->live, at, why, sizeof(why))),
			why);
		return -EBUSY;
	}
	ipam_owner_judge(&x->live, at, why, sizeof(why));
	int rc = ipam_release_ip(st, &a, e);
	if (rc)
		return rc;
	act_add(&ra->acts, "released", as, handle, "%s%s", x->force ? "forced; " : "", why);
	return 0;
}

static int op_release_handle(struct ipam_state *st, void *arg, struct err *e)
{
	struct rel_arg *ra = arg;
	struct ctl *x = ra->x;
	acts_reset(&ra->acts);
	const struct ipam_handle *h = ipam_handle_find(st, x->handle);
	if (!h)
		return err_setx(e, ENOENT, "release handle %s: no such handle", x->handle);
	struct ip_addr ips[IPAM_HANDLE_IPS_MAX];
	unsigned n = h->n;
	memcpy(ips, h->ip, n * sizeof(*ips));
	char why[256], as[64];
	for (unsigned i = 0; i < n; i++) {
		const struct ipam_attrs *at = ipam_lookup_ip(st, &ips[i]);
		if (at && !may_release(x, at, why, sizeof(why))) {
			act_add(&ra->acts, "refused", ipam_addr_str(&ips[i], as, sizeof(as)),
				x->handle, "owner %s: %s (use --force to release it anyway)",
				ipam_owner_state_name(ipam_owner_judge(&x->live, at, why, sizeof(why))),
				why);
			return -EBUSY;
		}
	}
	for (unsigned i = 0; i < n; i++) {
		const struct ipam_attrs *at = ipam_lookup_ip(st, &ips[i]);
		if (at)
			ipam_owner_judge(&x->live, at, why, sizeof(why));
		else
			snprintf(why, sizeof(why), "listed by the handle, not allocated");
		act_add(&ra->acts, "released", ipam_addr_str(&ips[i], as, sizeof(as)), x->handle,
			"%s%s", x->force ? "forced; " : "", why);
	}
	return ipam_release_handle(st, x->handle, true, e);
}

static const char *repair_verb(enum ipam_repair r)
{
	switch (r) {
	case IPAM_R_NONE:
		return "left";
	case IPAM_R_RELEASE:
		return "released";
	case IPAM_R_UNLINK:
		return "unlinked";
	case IPAM_R_RELINK:
		return "relinked";
	case IPAM_R_RECOUNT:
		return "recounted";
	}
	return "?";
}

static int op_release_report(struct ipam_state *st, void *arg, struct err *e)
{
	struct rel_arg *ra = arg;
	struct ctl *x = ra->x;
	acts_reset(&ra->acts);
	struct ipam_report now;
	if (run_check(x, st, &now, ra->ht) < 0)
		return err_setx(e, ENOMEM, "release: check");
	for (unsigned i = 0; i < ra->old->n; i++) {
		const struct ipam_problem *p = &ra->old->p[i];
		char as[64] = "";
		if (p->has_ip)
			ipam_addr_str(&p->ip, as, sizeof(as));
		bool current = ipam_problem_current(&now, p);
		if (!current && x->force && p->kind == IPAM_P_LEAKED && p->has_ip) {
			const struct ipam_attrs *at = ipam_lookup_ip(st, &p->ip);
			current = at && !strcmp(at->handle, p->handle);
		}
		if (!current) {
			act_add(&ra->acts, "skipped", as, p->handle,
				"%s: no longer found (owner alive again or already repaired)",
				ipam_problem_name(p->kind));
			continue;
		}
		if (p->repair == IPAM_R_NONE) {
			act_add(&ra->acts, "left", as, p->handle, "%s needs a person: %s",
				ipam_problem_name(p->kind), p->detail);
			continue;
		}
		struct err re = {0};
		if (ipam_report_repair(st, p, &re) < 0) {
			act_add(&ra->acts, "failed", as, p->handle, "%s: %s",
				ipam_problem_name(p->kind), re.msg);
			continue;
		}
		if (p->kind == IPAM_P_BLOCK_COUNT) {
			char cs[64];
			act_add(&ra->acts, "recounted", NULL, NULL, "block %s: count %u -> %u",
				ipam_cidr_str(&p->block, cs, sizeof(cs)), p->stored, p->actual);
			continue;
		}
		act_add(&ra->acts, repair_verb(p->repair), as, p->handle, "%s: %s",
			ipam_problem_name(p->kind), p->detail);
	}
	ipam_report_free(&now);
	return 0;
}

static int cmd_release(struct ctl *x)
{
	unsigned modes = (x->ip ? 1 : 0) + (x->handle ? 1 : 0) + (x->from_report ? 1 : 0);
	if (modes != 1) {
		errx_("release: give exactly one of --ip, --handle, --from-report");
		return 2;
	}
	struct ipam_report old;
	ipam_report_init(&old);
	struct err e = {0};
	if (x->ip) {
		struct ip_addr a;
		if (ipam_addr_parse(&a, x->ip, &e) < 0) {
			errx_("release --ip: %s", e.msg);
			return 2;
		}
	}
	if (x->from_report) {
		char *text = NULL;
		size_t len = 0;
		if (file_read(x->from_report, CTL_FILE_MAX, &text, &len, &e) < 0 ||
		    ipam_report_parse(&old, text, len, &e) < 0) {
			errx_("release --from-report: %s", e.msg);
			free(text);
			ipam_report_free(&old);
			return 1;
		}
		free(text);
	}
	int rc = 1;
	struct htimes ht = {0};
	struct rel_arg ra = {.x = x, .old = &old, .ht = &ht};
	if (open_store(x) < 0 || load_live(x) < 0)
		goto out;
	if (x->from_report && load_htimes(x, &ht) < 0)
		goto out;
	int r = ipam_ds_update(&x->ds,
			       x->ip ? op_release_ip
				     : x->handle ? op_release_handle : op_release_report,
			       &ra, &e);
	if (r < 0 && r != -EBUSY) {
		print_acts(x, "release", &ra.acts);
		errx_("release: %s", e.msg);
		goto out;
	}
	print_acts(x, "release", &ra.acts);
	if (x->from_report && x->out != OUT_JSON) {
		unsigned done = 0;
		for (unsigned i = 0; i < ra.acts.n; i++)
			done += strcmp(ra.acts.v[i].verb, "skipped") && strcmp(ra.acts.v[i].verb, "left") &&
				strcmp(ra.acts.v[i].verb, "failed");
		printf("repaired %u of %u problems in the report\n", done, old.n);
	}
	rc = r < 0 || ra.acts.refused ? 1 : 0;
out:
	free(ra.acts.v);
	free(ht.v);
	ipam_report_free(&old);
	return rc;
}

/* ---- reserve and import --------------------------------------------------------------- */

struct inv_arg {
	struct ipam_inv *inv;	/* rows (validated again on every try) */
	bool partial;		/* apply the good rows even if some are bad */
	unsigned applied;	/* rows that changed the state */
	unsigned bad;		/* rows found bad on the fresh state */
};

static int op_inventory(struct ipam_state *st, void *arg, struct err *e)
{
	struct inv_arg *ia = arg;
	/* validate on this (fresh) state: someone may have taken an address meanwhile */
	for (unsigned i = 0; i < ia->inv->n; i++)
		ia->inv->rows[i].in_place = false;
	unsigned before = ia->inv->n_errs_total;
	if (ipam_inv_validate(ia->inv, st, e) < 0)
		return -ENOMEM;
	ia->bad = 0;
	for (unsigned i = 0; i < ia->inv->n; i++)
		ia->bad += ia->inv->rows[i].bad;
	if (ia->inv->n_errs_total != before && !ia->partial)
		return err_setx(e, EEXIST, "the state changed while importing; nothing applied");
	return ipam_inv_apply(st, ia->inv, &ia->applied, e);
}

static void print_inv_errs(const char *what, const struct ipam_inv *v)
{
	bool one = !strcmp(what, "reserve");
	for (unsigned i = 0; i < v->n_errs; i++)
		if (one)
			errx_("reserve: %s", v->errs[i].msg);
		else if (v->errs[i].line)
			fprintf(stderr, "%s:%u: %s\n", what, v->errs[i].line, v->errs[i].msg);
		else
			fprintf(stderr, "%s: %s\n", what, v->errs[i].msg);
	if (v->n_errs_total > v->n_errs)
		fprintf(stderr, "%s: ... and %u more problems\n", what,
			v->n_errs_total - v->n_errs);
}

static int inv_json(const char *cmd, const struct ipam_inv *v, unsigned applied,
		    unsigned in_place, bool done)
{
	struct json_w w;
	json_head(&w, "IPAMCtlResult");
	w_kstr(&w, "command", cmd);
	w_kuint(&w, "rows", v->n_seen);
	w_kuint(&w, "applied", applied);
	w_kuint(&w, "alreadyInPlace", in_place);
	json_w_key(&w, "changed");
	json_w_bool(&w, done && applied > 0);
	json_w_key(&w, "problems");
	json_w_arr_begin(&w);
	for (unsigned i = 0; i < v->n_errs; i++) {
		json_w_obj_begin(&w);
		w_kuint(&w, "line", v->errs[i].line);
		w_kstr(&w, "message", v->errs[i].msg);
		json_w_obj_end(&w);
	}
	json_w_arr_end(&w);
	json_w_obj_end(&w);
	return emit_json(&w);
}

/* Validate v against the current state, then apply it in one update. */
static int run_inventory(struct ctl *x, const char *cmd, const char *what, struct ipam_inv *v)
{
	struct err e = {0};
	if (open_store(x) < 0)
		return 1;
	struct ipam_state st;
	if (read_state(x, &st) < 0) {
		ipam_state_free(&st);
		return 1;
	}
	int r = ipam_inv_validate(v, &st, &e);
	ipam_state_free(&st);
	if (r < 0) {
		errx_("%s: %s", cmd, e.msg);
		return 1;
	}
	unsigned bad = 0, in_place = 0;
	for (unsigned i = 0; i < v->n; i++) {
		bad += v->rows[i].bad;
		in_place += v->rows[i].in_place;
	}
	bool problems = v->n_errs_total > 0;
	if (problems && !x->partial) {
		if (x->out == OUT_JSON)
			inv_json(cmd, v, 0, in_place, false);
		print_inv_errs(what, v);
		if (strcmp(cmd, "reserve"))
			errx_("%s: %u problem%s found; nothing applied", cmd, v->n_errs_total,
			      v->n_errs_total == 1 ? "" : "s");
		return 1;
	}
	struct inv_arg ia = {.inv = v, .partial = x->partial};
	r = ipam_ds_update(&x->ds, op_inventory, &ia, &e);
	if (r < 0) {
		print_inv_errs(what, v);
		errx_("%s: %s", cmd, e.msg);
		return 1;
	}
	in_place = 0;
	for (unsigned i = 0; i < v->n; i++)
		in_place += v->rows[i].in_place;
	if (x->out == OUT_JSON) {
		inv_json(cmd, v, ia.applied, in_place, true);
		print_inv_errs(what, v);
		return v->n_errs_total ? 1 : 0;
	}
	if (!strcmp(cmd, "reserve") && v->n == 1) {
		const struct ipam_inv_row *row = &v->rows[0];
		char as[64];
		ipam_addr_str(&row->ip, as, sizeof(as));
		printf("%s %s for VM %s/%s (handle %s%s%s)\n",
		       ia.applied ? "reserved" : "already reserved:", as, row->ns, row->vm,
		       row->handle, row->mac[0] ? ", mac " : "", row->mac);
		return 0;
	}
	print_inv_errs(what, v);
	bad = 0;
	for (unsigned i = 0; i < v->n; i++)
		bad += v->rows[i].bad;
	printf("imported %u row%s: %u reserved, %u already in place, %u with problems (not "
	       "applied)\n", v->n_seen, v->n_seen == 1 ? "" : "s", ia.applied, in_place,
	       v->n_seen - v->n + bad);
	return v->n_errs_total ? 1 : 0;
}

static int cmd_reserve(struct ctl *x)
{
	char ns[IPAM_NS_MAX + 1], name[IPAM_NAME_MAX + 1];
	if (!x->vm || !x->ip) {
		errx_("reserve: --vm NAMESPACE/NAME and --ip IP are required");
		return 2;
	}
	if (!slash_split(x->vm, ns, sizeof(ns), name, sizeof(name))) {
		errx_("reserve: --vm '%s': want NAMESPACE/NAME", x->vm);
		return 2;
	}
	struct ipam_inv v;
	struct err e = {0};
	ipam_inv_init(&v);
	int rc = 1;
	if (ipam_inv_add(&v, 1, ns, name, x->ip, x->mac ? x->mac : "", x->network, &e) < 0) {
		errx_("reserve: %s", e.msg);
		goto out;
	}
	if (v.n_errs_total) {
		for (unsigned i = 0; i < v.n_errs; i++)
			errx_("reserve: %s", v.errs[i].msg);
		rc = 2;
		goto out;
	}
	rc = run_inventory(x, "reserve", "reserve", &v);
out:
	ipam_inv_free(&v);
	return rc;
}

static int cmd_import(struct ctl *x, const char *path)
{
	char *text = NULL;
	size_t len = 0;
	struct err e = {0};
	if (file_read(path, CTL_FILE_MAX, &text, &len, &e) < 0) {
		errx_("import: %s", e.msg);
		return 1;
	}
	struct ipam_inv v;
	int rc = 1;
	if (ipam_inv_parse(&v, text, len, x->network, &e) < 0) {
		errx_("import: %s: %s", path, e.msg);
		goto out;
	}
	rc = run_inventory(x, "import", path, &v);
out:
	ipam_inv_free(&v);
	free(text);
	return rc;
}

/* ---- pools ------------------------------------------------------------------------ */

struct pool_arg {
	struct ipam_cidr cidr; /* the pool */
	unsigned block;	       /* block prefix (0 default) */
	bool existed;	       /* add: already there with the same CIDR */
};

static int op_pool_add(struct ipam_state *st, void *arg, struct err *e)
{
	struct pool_arg *pa = arg;
	for (unsigned i = 0; i < st->n_pools; i++)
		if (st->pools[i].cidr.prefix == pa->cidr.prefix &&
		    ip_eq(&st->pools[i].cidr.a, &pa->cidr.a)) {
			pa->existed = true;
			if (pa->block && pa->block != st->pools[i].block_prefix)
				return err_setx(e, EEXIST, "pool %s exists with block size /%u",
						st->pools[i].name, st->pools[i].block_prefix);
			return 0;
		}
	char name[IPAM_NAME_MAX + 1];
	ipam_block_name(&pa->cidr, name, sizeof(name));
	return ipam_pool_add(st, name, &pa->cidr, pa->block, NULL, 0, e);
}

static int op_pool_delete(struct ipam_state *st, void *arg, struct err *e)
{
	struct pool_arg *pa = arg;
	return ipam_pool_delete(st, &pa->cidr, e);
}

static int pool_list(struct ctl *x, const struct ipam_state *st)
{
	unsigned *idx = sorted_pools(st);
	if (!idx)
		return 1;
	char cs[64], bs[8], nr[16];
	if (x->out == OUT_JSON) {
		struct json_w w;
		json_head(&w, "IPPoolList");
		json_w_key(&w, "items");
		json_w_arr_begin(&w);
		for (unsigned k = 0; k < st->n_pools; k++) {
			const struct ipam_pool *p = &st->pools[idx[k]];
			json_w_obj_begin(&w);
			w_kstr(&w, "name", p->name);
			w_kstr(&w, "cidr", ipam_cidr_str(&p->cidr, cs, sizeof(cs)));
			w_kuint(&w, "blockSize", p->block_prefix);
			json_w_key(&w, "reserved");
			json_w_arr_begin(&w);
			for (unsigned i = 0; i < p->n_reserved; i++)
				json_w_str(&w, ipam_addr_str(&p->reserved[i], cs, sizeof(cs)));
			json_w_arr_end(&w);
			json_w_obj_end(&w);
		}
		json_w_arr_end(&w);
		json_w_obj_end(&w);
		free(idx);
		return emit_json(&w);
	}
	struct tbl t = {.ncols = 4};
	tbl_row(&t, "NAME", "CIDR", "BLOCK SIZE", "RESERVED");
	for (unsigned k = 0; k < st->n_pools; k++) {
		const struct ipam_pool *p = &st->pools[idx[k]];
		snprintf(bs, sizeof(bs), "/%u", p->block_prefix);
		snprintf(nr, sizeof(nr), "%u", p->n_reserved);
		tbl_row(&t, p->name, ipam_cidr_str(&p->cidr, cs, sizeof(cs)), bs, nr);
	}
	free(idx);
	if (!st->n_pools) {
		printf("No IP pools.\n");
		tbl_free(&t);
		return 0;
	}
	tbl_print(&t);
	return 0;
}

static int cmd_pool(struct ctl *x, int argc, char **argv)
{
	if (argc < 1) {
		errx_("pool: want list, add CIDR or delete CIDR");
		return 2;
	}
	const char *sub = argv[0];
	bool list = !strcmp(sub, "list"), add = !strcmp(sub, "add"), del = !strcmp(sub, "delete");
	if (!list && !add && !del) {
		errx_("pool: unknown subcommand '%s' (list, add, delete)", sub);
		return 2;
	}
	if ((list && argc != 1) || (!list && argc != 2)) {
		errx_("pool %s: %s", sub, list ? "takes no argument" : "takes one CIDR");
		return 2;
	}
	if (!add && x->block_size) {
		errx_("pool %s: --block-size is for pool add", sub);
		return 2;
	}
	struct pool_arg pa = {.block = x->block_size};
	struct err e = {0};
	if (!list && ipam_cidr_parse(&pa.cidr, argv[1], &e) < 0) {
		errx_("pool %s: %s", sub, e.msg);
		return 2;
	}
	if (open_store(x) < 0)
		return 1;
	if (list) {
		struct ipam_state st;
		int rc = read_state(x, &st) < 0 ? 1 : pool_list(x, &st);
		ipam_state_free(&st);
		return rc;
	}
	int r = ipam_ds_update(&x->ds, add ? op_pool_add : op_pool_delete, &pa, &e);
	char name[IPAM_NAME_MAX + 1], cs[64];
	ipam_block_name(&pa.cidr, name, sizeof(name));
	ipam_cidr_str(&pa.cidr, cs, sizeof(cs));
	struct acts a = {0};
	if (r < 0) {
		errx_("pool %s: %s", sub, e.msg);
		return 1;
	}
	if (add)
		act_add(&a, pa.existed ? "unchanged" : "added", NULL, NULL, "pool %s %s", name, cs);
	else
		act_add(&a, "deleted", NULL, NULL, "pool %s", cs);
	if (x->out == OUT_JSON)
		r = print_acts(x, add ? "pool add" : "pool delete", &a);
	else
		printf("%s pool %s\n", a.v[0].verb, cs);
	free(a.v);
	return r ? 1 : 0;
}

/* ---- configure ----------------------------------------------------------------------- */

struct cfg_arg {
	enum ipam_persist want; /* the value asked */
	bool changed;		/* the record changed */
	bool had;		/* a record existed */
	enum ipam_persist was;	/* its (or the default) value before */
};

static int op_configure(struct ipam_state *st, void *arg, struct err *e)
{
	struct cfg_arg *ca = arg;
	struct ipam_config c;
	ca->had = ipam_config_get(st, &c);
	ca->was = c.vm_persistence;
	ca->changed = !ca->had || c.vm_persistence != ca->want;
	if (!ca->changed)
		return 0;
	c.vm_persistence = ca->want;
	return ipam_config_set(st, &c, e);
}

static int cmd_configure(struct ctl *x)
{
	struct cfg_arg ca = {0};
	if (!x->persistence) {
		errx_("configure: --kubevirt-ip-persistence=Enabled|Disabled is required");
		return 2;
	}
	if (!ipam_persist_parse(x->persistence, &ca.want)) {
		errx_("configure: --kubevirt-ip-persistence: '%s' is neither Enabled nor Disabled",
		      x->persistence);
		return 2;
	}
	if (open_store(x) < 0)
		return 1;
	struct err e = {0};
	if (ipam_ds_update(&x->ds, op_configure, &ca, &e) < 0) {
		errx_("configure: %s", e.msg);
		return 1;
	}
	struct acts a = {0};
	act_add(&a, ca.changed ? "configured" : "unchanged", NULL, NULL,
		"kubeVirtVMAddressPersistence %s%s%s", ipam_persist_name(ca.want),
		ca.changed ? " (was " : "",
		ca.changed ? (ca.had ? ipam_persist_name(ca.was) : "Enabled by default)") : "");
	if (ca.changed && ca.had)
		strncat(a.v[0].detail, ")", sizeof(a.v[0].detail) - strlen(a.v[0].detail) - 1);
	int rc = print_acts(x, "configure", &a);
	free(a.v);
	return rc ? 1 : 0;
}

/* ---- options ------------------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: kvnet ipamctl [GLOBAL FLAGS] COMMAND [FLAGS]\n"
		"commands:\n"
		"  show [--blocks | --ip IP | --vm NS/NAME | --borrowed | --configuration]\n"
		"  check [-o report.json] [--vm-grace-seconds N]\n"
		"  release --ip IP | --handle H | --from-report FILE [--force]\n"
		"  reserve --vm NS/NAME --ip IP [--mac MAC] [--network NET]\n"
		"  import FILE.csv [--partial] [--network NET]   (namespace,vm,ip,mac,network)\n"
		"  configure --kubevirt-ip-persistence=Enabled|Disabled\n"
		"  pool list | pool add CIDR [--block-size N] | pool delete CIDR\n"
		"global flags:\n"
		"  --datastore kubernetes|file   --state-dir DIR   -c FILE (kvnet.conf)\n"
		"  --kubeconfig FILE   --context NAME   (KUBECONFIG is honoured)\n"
		"  -o table|json|wide   --network NET (default " CTL_DEFAULT_NETWORK ")\n"
		"exit status: 0 ok, 1 problems found or failed, 2 usage error\n");
}

enum {
	O_DATASTORE = 256, O_KUBECONFIG, O_CONTEXT, O_STATE_DIR, O_NETWORK, O_BLOCKS, O_IP, O_VM,
	O_BORROWED, O_CONFIGURATION, O_HANDLE, O_FROM_REPORT, O_FORCE, O_MAC, O_PARTIAL,
	O_BLOCK_SIZE, O_PERSISTENCE, O_GRACE,
};

static const struct option opts[] = {
	{"datastore", required_argument, NULL, O_DATASTORE},
	{"kubeconfig", required_argument, NULL, O_KUBECONFIG},
	{"context", required_argument, NULL, O_CONTEXT},
	{"state-dir", required_argument, NULL, O_STATE_DIR},
	{"config", required_argument, NULL, 'c'},
	{"output", required_argument, NULL, 'o'},
	{"network", required_argument, NULL, O_NETWORK},
	{"blocks", no_argument, NULL, O_BLOCKS},
	{"ip", required_argument, NULL, O_IP},
	{"vm", required_argument, NULL, O_VM},
	{"borrowed", no_argument, NULL, O_BORROWED},
	{"configuration", no_argument, NULL, O_CONFIGURATION},
	{"handle", required_argument, NULL, O_HANDLE},
	{"from-report", required_argument, NULL, O_FROM_REPORT},
	{"force", no_argument, NULL, O_FORCE},
	{"mac", required_argument, NULL, O_MAC},
	{"partial", no_argument, NULL, O_PARTIAL},
	{"block-size", required_argument, NULL, O_BLOCK_SIZE},
	{"kubevirt-ip-persistence", required_argument, NULL, O_PERSISTENCE},
	{"vm-grace-seconds", required_argument, NULL, O_GRACE},
	{"help", no_argument, NULL, 'h'},
	{NULL, 0, NULL, 0},
};

/* Which command-specific flags each command takes (the globals go everywhere). */
static bool flag_ok(const char *cmd, int o)
{
	switch (o) {
	case O_BLOCKS:
	case O_BORROWED:
	case O_CONFIGURATION:
		return !strcmp(cmd, "show");
	case O_IP:
		return !strcmp(cmd, "show") || !strcmp(cmd, "release") || !strcmp(cmd, "reserve");
	case O_VM:
		return !strcmp(cmd, "show") || !strcmp(cmd, "reserve");
	case O_HANDLE:
	case O_FROM_REPORT:
	case O_FORCE:
		return !strcmp(cmd, "release");
	case O_MAC:
		return !strcmp(cmd, "reserve");
	case O_PARTIAL:
		return !strcmp(cmd, "import");
	case O_BLOCK_SIZE:
		return !strcmp(cmd, "pool");
	case O_PERSISTENCE:
		return !strcmp(cmd, "configure");
	case O_GRACE:
		return !strcmp(cmd, "check") || !strcmp(cmd, "release") || !strcmp(cmd, "show");
	}
	return true;
}

static bool parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	char *end;
	if (!s || !*s || *s == '-' || *s == '+')
		return false;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || *end || v > max)
		return false;
	*out = v;
	return true;
}

int cmd_ipamctl(int argc, char **argv)
{
	struct ctl x;
	memset(&x, 0, sizeof(x));
	x.out = OUT_TABLE;
	x.network = CTL_DEFAULT_NETWORK;
	const char *out_flag = NULL;
	int seen[64];
	unsigned nseen = 0;
	int opt;
	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, ":c:o:h", opts, NULL)) != -1) {
		unsigned long v;
		switch (opt) {
		case O_DATASTORE:
			x.ds_flag = optarg;
			break;
		case O_KUBECONFIG:
			x.kubeconfig_flag = optarg;
			break;
		case O_CONTEXT:
			x.context_flag = optarg;
			break;
		case O_STATE_DIR:
			x.state_dir_flag = optarg;
			break;
		case 'c':
			x.conf_path = optarg;
			break;
		case 'o':
			out_flag = optarg;
			break;
		case O_NETWORK:
			x.network = optarg;
			break;
		case O_BLOCKS:
			x.blocks = true;
			break;
		case O_IP:
			x.ip = optarg;
			break;
		case O_VM:
			x.vm = optarg;
			break;
		case O_BORROWED:
			x.borrowed = true;
			break;
		case O_CONFIGURATION:
			x.configuration = true;
			break;
		case O_HANDLE:
			x.handle = optarg;
			break;
		case O_FROM_REPORT:
			x.from_report = optarg;
			break;
		case O_FORCE:
			x.force = true;
			break;
		case O_MAC:
			x.mac = optarg;
			break;
		case O_PARTIAL:
			x.partial = true;
			break;
		case O_BLOCK_SIZE:
			if (!parse_uint(optarg, 128, &v) || v == 0) {
				errx_("--block-size: '%s' is not a prefix length", optarg);
				return 2;
			}
			x.block_size = (unsigned)v;
			break;
		case O_PERSISTENCE:
			x.persistence = optarg;
			break;
		case O_GRACE:
			x.grace_flag = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case ':':
			errx_("option '%s' needs a value", argv[optind - 1]);
			usage(stderr);
			return 2;
		default:
			errx_("unknown option '%s'", argv[optind - 1]);
			usage(stderr);
			return 2;
		}
		if (opt >= 256 && nseen < 64)
			seen[nseen++] = opt;
	}
	if (optind >= argc) {
		errx_("no command given");
		usage(stderr);
		return 2;
	}
	const char *cmd = argv[optind];
	static const char *const cmds[] = {"show", "check", "release", "reserve", "import",
					   "configure", "pool"};
	bool known = false;
	for (unsigned i = 0; i < 7; i++)
		known |= !strcmp(cmd, cmds[i]);
	if (!known) {
		errx_("unknown command '%s'", cmd);
		usage(stderr);
		return 2;
	}
	for (unsigned i = 0; i < nseen; i++)
		if (!flag_ok(cmd, seen[i])) {
			const char *name = "?";
			for (unsigned k = 0; opts[k].name; k++)
				if (opts[k].val == seen[i])
					name = opts[k].name;
			errx_("%s: --%s does not apply to this command", cmd, name);
			return 2;
		}
	if (out_flag) {
		if (!strcmp(out_flag, "table"))
			x.out = OUT_TABLE;
		else if (!strcmp(out_flag, "json"))
			x.out = OUT_JSON;
		else if (!strcmp(out_flag, "wide"))
			x.out = OUT_WIDE;
		else if (!strcmp(cmd, "check"))
			x.report_file = out_flag;
		else {
			errx_("-o: '%s' is not table, json or wide", out_flag);
			return 2;
		}
	}
	struct err e = {0};
	if (conf_load(&x.conf, x.conf_path ? x.conf_path : CONF_DEFAULT_PATH, !x.conf_path,
		      environ, &e) < 0) {
		errx_("configuration: %s", e.msg);
		return 1;
	}
	x.kube = x.conf.datastore.type == CONF_DATASTORE_KUBERNETES;
	if (x.ds_flag) {
		if (!strcmp(x.ds_flag, "kubernetes"))
			x.kube = true;
		else if (!strcmp(x.ds_flag, "file"))
			x.kube = false;
		else {
			errx_("--datastore: '%s' is neither kubernetes nor file", x.ds_flag);
			return 2;
		}
	}
	snprintf(x.state_dir, sizeof(x.state_dir), "%s",
		 x.state_dir_flag ? x.state_dir_flag : x.conf.datastore.state_dir);
	x.vm_grace = x.conf.ipam.vm_grace_seconds;
	if (x.grace_flag) {
		unsigned long v;
		if (!parse_uint(x.grace_flag, 86400 * 365, &v)) {
			errx_("--vm-grace-seconds: '%s' is not a number of seconds", x.grace_flag);
			return 2;
		}
		x.vm_grace = (uint32_t)v;
	}
	if (!ipam_name_valid(x.network)) {
		errx_("--network: '%s' is not a valid object name", x.network);
		return 2;
	}
	int rest = argc - optind - 1;
	char **rargv = argv + optind + 1;
	if (strcmp(cmd, "pool") && strcmp(cmd, "import") && rest > 0) {
		errx_("%s: unexpected argument '%s'", cmd, rargv[0]);
		return 2;
	}
	int rc;
	if (!strcmp(cmd, "show"))
		rc = cmd_show(&x);
	else if (!strcmp(cmd, "check"))
		rc = cmd_check(&x);
	else if (!strcmp(cmd, "release"))
		rc = cmd_release(&x);
	else if (!strcmp(cmd, "reserve"))
		rc = cmd_reserve(&x);
	else if (!strcmp(cmd, "import")) {
		if (rest != 1) {
			errx_("import: want one FILE.csv");
			rc = 2;
		} else {
			rc = cmd_import(&x, rargv[0]);
		}
	} else if (!strcmp(cmd, "configure"))
		rc = cmd_configure(&x);
	else
		rc = cmd_pool(&x, rest, rargv);
	close_all(&x);
	if (fflush(stdout) != 0 && rc == 0)
		rc = 1;
	return rc;
}
