/* informers — the world model (see informers.h). */
#include "agent/informers.h"

#include "conf/conf.h"
#include "ipam/ipam.h"
#include "kube/client.h"
#include "kube/informer.h"
#include "kube/kubeconfig.h"
#include "kube/types.h"
#include "lib/err.h"
#include "lib/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

#define AGENT_KUBE_TIMEOUT_MS 10000 /* API server I/O timeout */

/* Per-informer context. */
struct inf_ctx {
	struct agent_informers *w;  /* the world model */
	enum agent_kind kind;	    /* which */
	bool wanted;		    /* some module asked for it */
	struct kube_informer *inf;  /* the informer (owned) */
	bool synced;		    /* first LIST applied */
};

struct agent_informers {
	struct ev_loop *loop;			/* the loop (not owned) */
	struct log *log;			/* logger (not owned) */
	char node[IPAM_NAME_MAX + 1];		/* this node */
	struct agent_informers_notify notify;	/* the owner's callbacks */
	void *user;				/* their argument */
	struct kcfg *kc;			/* kubeconfig (owned) */
	struct kube_client *kube;		/* API client (owned) */
	struct inf_ctx inf[AGENT_K_COUNT];	/* per kind */
	bool synced_all;			/* every wanted informer synced once */
};

static const char *const kind_names[AGENT_K_COUNT] = { "pods", "vmis", "vmims",
						       "ipamblocks", "ipamhandles", "nodes",
						       "networkpolicies", "namespaces",
						       "pods-all", "l2networks",
						       "multi-networkpolicies" };

const char *agent_kind_name(enum agent_kind k)
{
	return (unsigned)k < AGENT_K_COUNT ? kind_names[k] : "?";
}

struct agent_informers *agent_informers_new(struct ev_loop *loop, struct log *log,
					    const char *node,
					    const struct agent_informers_notify *notify,
					    void *user)
{
	struct agent_informers *w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->loop = loop;
	w->log = log;
	snprintf(w->node, sizeof(w->node), "%s", node);
	if (notify)
		w->notify = *notify;
	w->user = user;
	for (int k = 0; k < AGENT_K_COUNT; k++) {
		w->inf[k].w = w;
		w->inf[k].kind = (enum agent_kind)k;
	}
	return w;
}

void agent_informers_free(struct agent_informers *w)
{
	if (!w)
		return;
	for (int k = 0; k < AGENT_K_COUNT; k++)
		if (w->inf[k].inf) {
			kube_informer_stop(w->inf[k].inf);
			kube_informer_free(w->inf[k].inf);
		}
	kube_client_free(w->kube);
	kcfg_free(w->kc);
	free(w);
}

void agent_informers_want(struct agent_informers *w, enum agent_kind k)
{
	if ((unsigned)k < AGENT_K_COUNT)
		w->inf[k].wanted = true;
}

static void inf_add(void *user, const struct kube_obj *obj)
{
	struct inf_ctx *c = user;
	if (c->w->notify.object)
		c->w->notify.object(c->w->user, c->kind, NULL, obj);
}

static void inf_update(void *user, const struct kube_obj *old, const struct kube_obj *obj)
{
	struct inf_ctx *c = user;
	if (c->w->notify.object)
		c->w->notify.object(c->w->user, c->kind, old, obj);
}

static void inf_del(void *user, const struct kube_obj *obj)
{
	struct inf_ctx *c = user;
	if (c->w->notify.object)
		c->w->notify.object(c->w->user, c->kind, obj, NULL);
}

static void inf_synced(void *user)
{
	struct inf_ctx *c = user;
	struct agent_informers *w = c->w;
	if (!c->synced)
		log_info(w->log, "agent: informer %s synced (%zu objects)", kind_names[c->kind],
			 kube_informer_count(c->inf));
	c->synced = true;
	bool all = agent_informers_all_synced(w);
	if (all && !w->synced_all) {
		w->synced_all = true;
		log_info(w->log, "agent: all informers synced");
	}
	if (w->notify.synced)
		w->notify.synced(w->user, c->kind, w->synced_all);
}

static void inf_error(void *user, const struct err *e)
{
	struct inf_ctx *c = user;
	struct agent_informers *w = c->w;
	log_msg(w->log, LOG_LVL_WARN, "agent: informer %s: %s (retrying)", kind_names[c->kind],
		e->msg);
	bool optional = c->kind != AGENT_K_POD && c->kind != AGENT_K_NODE &&
			c->kind != AGENT_K_POD_ALL && c->kind != AGENT_K_NAMESPACE;
	if (!c->synced && optional && e->code == ENOENT) {
		log_warnx(w->log, "agent: informer %s: the API server does not serve it: "
				  "treated as empty until it does", kind_names[c->kind]);
		inf_synced(c);
	}
}

static const struct kube_informer_ops inf_ops = {
	.add = inf_add,
	.update = inf_update,
	.del = inf_del,
	.synced = inf_synced,
	.error = inf_error,
};

int agent_informers_start(struct agent_informers *w, const struct conf *c, struct err *e)
{
	struct kcfg_opts ko = {
		.kubeconfig = c->kubernetes.kubeconfig,
		.context = c->kubernetes.context,
		.envp = environ,
	};
	int rc = kcfg_load(&w->kc, &ko, e);
	if (rc < 0)
		return err_prefix(e, "agent: kubernetes"), rc;
	if (w->kc->insecure)
		log_warnx(w->log, "agent: %s: insecure-skip-tls-verify is set: the API server's "
				  "certificate is NOT verified", w->kc->source);
	w->kube = kube_client_from_kcfg(w->kc, AGENT_KUBE_TIMEOUT_MS, e);
	if (!w->kube)
		return err_prefix(e, "agent: kubernetes"), -EINVAL;
	static const struct kube_res *const res[AGENT_K_COUNT] = {
		&kube_res_pods, &kube_res_vmis, &kube_res_vmims,
		&kube_res_ipamblocks, &kube_res_ipamhandles, &kube_res_nodes,
		&kube_res_netpols, &kube_res_namespaces, &kube_res_pods,
		&kube_res_l2networks, &kube_res_mnetpols,
	};
	char fs[IPAM_NAME_MAX + 32];
	snprintf(fs, sizeof(fs), "spec.nodeName=%s", w->node);
	for (int k = 0; k < AGENT_K_COUNT; k++) {
		if (!w->inf[k].wanted)
			continue;
		struct kube_informer_opts o = { 0 };
		if (k == AGENT_K_POD)
			o.field_selector = fs;
		w->inf[k].inf = kube_informer_new(w->loop, w->kube, res[k], &o, &inf_ops,
						  &w->inf[k], e);
		if (!w->inf[k].inf)
			return err_prefix(e, "agent: informer %s", kind_names[k]), -EINVAL;
	}
	for (int k = 0; k < AGENT_K_COUNT; k++)
		if (w->inf[k].inf && (rc = kube_informer_start(w->inf[k].inf, e)) < 0)
			return err_prefix(e, "agent: informer %s", kind_names[k]), rc;
	log_info(w->log, "agent: watching the API server (%s) for node %s", w->kc->source,
		 w->node);
	return 0;
}

struct kube_client *agent_informers_client(const struct agent_informers *w)
{
	return w->kube;
}

const char *agent_informers_server(const struct agent_informers *w)
{
	return w->kc ? w->kc->server : NULL;
}

bool agent_informers_get(const struct agent_informers *w, enum agent_kind kind,
			 const char *ns, const char *name, struct kube_obj *out)
{
	if ((unsigned)kind >= AGENT_K_COUNT || !w->inf[kind].inf)
		return false;
	return kube_informer_get(w->inf[kind].inf, ns, name, out);
}

void agent_informers_each(const struct agent_informers *w, enum agent_kind kind,
			  void (*fn)(void *user, const struct kube_obj *obj), void *user)
{
	if ((unsigned)kind < AGENT_K_COUNT && w->inf[kind].inf)
		kube_informer_each(w->inf[kind].inf, fn, user);
}

size_t agent_informers_count(const struct agent_informers *w, enum agent_kind kind)
{
	if ((unsigned)kind >= AGENT_K_COUNT || !w->inf[kind].inf)
		return 0;
	return kube_informer_count(w->inf[kind].inf);
}

bool agent_informers_synced(const struct agent_informers *w, enum agent_kind kind)
{
	if ((unsigned)kind >= AGENT_K_COUNT)
		return false;
	return !w->inf[kind].wanted || w->inf[kind].synced;
}

bool agent_informers_all_synced(const struct agent_informers *w)
{
	for (int k = 0; k < AGENT_K_COUNT; k++)
		if (!agent_informers_synced(w, (enum agent_kind)k))
			return false;
	return true;
}

bool agent_informers_watched(const struct agent_informers *w, enum agent_kind kind)
{
	return (unsigned)kind < AGENT_K_COUNT && w->inf[kind].inf;
}

uint64_t agent_informers_reconnects(const struct agent_informers *w)
{
	uint64_t rec = 0;
	for (int k = 0; k < AGENT_K_COUNT; k++)
		if (w->inf[k].inf) {
			struct kube_informer_stats s;
			kube_informer_stats(w->inf[k].inf, &s);
			rec += s.reconnects;
		}
	return rec;
}
