/* ipamctl datastore and API: opening them, the API view of pods, VMIs and VMs, handle
 * creation times; see ipamctl.h. */
#include "cmd/ipamctl.h"

#include "ipam/live.h"
#include "kube/client.h"
#include "kube/kubeconfig.h"
#include "lib/err.h"
#include "lib/json.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* A whole LIST (every page) of res, each page's document handed to fn with user. */
typedef int (*page_fn)(void *user, const struct json_doc *d, int items, struct err *e);

static int list_all(struct ctl *x, const struct kube_res *res, page_fn fn, void *user,
		    struct err *e)
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
			rc = items >= 0 ? fn(user, &d, items, e) : 0;
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

static int pods_page(void *user, const struct json_doc *d, int items, struct err *e)
{
	return ipam_live_pods_page(user, d, items, e);
}

static int vmis_page(void *user, const struct json_doc *d, int items, struct err *e)
{
	return ipam_live_vmis_page(user, d, items, e);
}

static int vms_page(void *user, const struct json_doc *d, int items, struct err *e)
{
	return ipam_live_vms_page(user, d, items, e);
}

static int handles_page(void *user, const struct json_doc *d, int items, struct err *e)
{
	return ipam_htimes_page(user, d, items, e);
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
	int rc = list_all(x, &kube_res_pods, pods_page, &x->live, &e);
	if (!rc) {
		rc = list_all(x, &kube_res_vmis, vmis_page, &x->live, &e);
		if (rc == -ENOENT) /* KubeVirt not installed */
			rc = 0;
	}
	if (!rc) {
		rc = list_all(x, &kube_res_vms, vms_page, &x->live, &e);
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

int ctl_load_htimes(struct ctl *x, struct ipam_htimes *ht)
{
	memset(ht, 0, sizeof(*ht));
	if (!x->kube)
		return 0;
	struct err e = {0};
	int rc = list_all(x, &kube_res_ipamhandles, handles_page, ht, &e);
	if (rc < 0) {
		ctl_errx("API: %s", e.msg);
		return -1;
	}
	return 0;
}
