/* agent — the node daemon's hub (see agent.h). */
#include "agent/agent.h"

#include "agent/admit.h"
#include "agent/endpoints.h"
#include "agent/metrics.h"
#include "agent/modules.h"
#include "agent/proto.h"
#include "agent/reconcile.h"
#include "agent/routes.h"
#include "agent/servers.h"
#include "ipam/ds_file.h"
#include "lib/err.h"
#include "lib/evloop.h"
#include "lib/log.h"
#include "net/nl.h"

#include <errno.h>
#include <linux/rtnetlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#define AGENT_IDENTITY_REQUIRED 0 /* 1: refuse an add without node and datastore */

/* One subscriber of a hook or contributor to a kind. */
struct sub {
	agent_hook_fn hook;	    /* a hook's subscriber, or NULL */
	agent_contrib_fn contrib;   /* a kind's contributor, or NULL */
	void *arg;		    /* its argument */
};

/* A list of subscribers. */
struct subs {
	struct sub *v;	 /* entries (owned) */
	unsigned n, cap; /* used / allocated */
};

struct agent_want {
	struct rt_route *routes;    /* AGENT_KOBJ_ROUTE (owned) */
	unsigned n_routes, cap_routes; /* used / allocated */
};

struct agent {
	struct conf conf;		   /* configuration in force */
	char node[IPAM_NAME_MAX + 1];	   /* this node */
	char ident[AGENT_DATASTORE_MAX];   /* its datastore (conf_datastore_ident) */
	struct log *log;		   /* logger (not owned) */
	struct ev_loop *loop;		   /* the loop (owned) */
	struct nl_sock *nl;		   /* rtnetlink socket (owned) */
	struct agent_metrics *metrics;	   /* registry (owned) */
	struct agent_metric *m_ready;	   /* gauge */
	struct agent_metric *m_eps;	   /* gauge: endpoints */
	struct agent_metric *m_routes;	   /* gauge: routes owned after the last reconcile */
	struct agent_metric *m_changes;	   /* counter{op}: route changes */
	struct agent_metric *m_recs;	   /* counter{result}: reconciles */
	struct agent_metric *m_reconn;	   /* counter: API reconnects */
	struct agent_metric *m_objects;	   /* gauge{kind}: objects in the informer stores */
	struct agent_metric *m_cni;	   /* counter{op}: CNI socket requests */
	struct agent_eps *eps;		   /* endpoint table (owned) */
	struct agent_informers *world;	   /* world model (owned) */
	struct agent_servers *srv;	   /* CNI socket and HTTP (owned) */
	struct agent_override *ovr;	   /* overrides (owned) */
	unsigned n_ovr, cap_ovr;	   /* used / allocated */
	bool kube_mode;			   /* datastore kubernetes: informers run */
	struct ev_timer *soon;		   /* one-shot: reconcile on the next iteration */
	struct ev_timer *resync;	   /* periodic reconcile */
	bool reconciled;		   /* a reconcile after the initial sync succeeded */
	struct subs hooks[AGENT_HOOK_COUNT];	/* subscribers per hook */
	struct subs contribs[AGENT_KOBJ_COUNT]; /* contributors per kernel object kind */
	void **mods;			   /* module states, as agent_modules() lists them */
	unsigned n_mods;		   /* modules created */
	struct {
		char path[64];		   /* exact path */
		agent_http_fn fn;	   /* its handler */
		void *arg;		   /* passed to fn */
	} http[AGENT_HTTP_ROUTES_MAX];	   /* module HTTP endpoints */
	unsigned n_http;		   /* used entries of http[] */
};

/* ---- small helpers ------------------------------------------------------------------ */

struct ev_loop *agent_loop(struct agent *a) { return a->loop; }
struct log *agent_log(struct agent *a) { return a->log; }
const struct conf *agent_conf(const struct agent *a) { return &a->conf; }
const char *agent_node(const struct agent *a) { return a->node; }
const char *agent_datastore(const struct agent *a) { return a->ident; }
struct kube_client *agent_kube(struct agent *a) { return agent_informers_client(a->world); }
struct nl_sock *agent_nl(struct agent *a) { return a->nl; }
struct agent_metrics *agent_metrics(struct agent *a) { return a->metrics; }

bool agent_obj_all_synced(const struct agent *a)
{
	return !a->kube_mode || agent_informers_all_synced(a->world);
}

bool agent_ready(const struct agent *a) { return agent_obj_all_synced(a) && a->reconciled; }

void *agent_module(struct agent *a, const char *name)
{
	unsigned nm = 0;
	const struct agent_module *mods = agent_modules(&nm);
	for (unsigned i = 0; i < a->n_mods && i < nm; i++)
		if (strcmp(mods[i].name, name) == 0)
			return a->mods[i];
	return NULL;
}

void agent_want_kind(struct agent *a, enum agent_kind kind)
{
	agent_informers_want(a->world, kind);
}

bool agent_obj_get(const struct agent *a, enum agent_kind kind, const char *ns,
		   const char *name, struct kube_obj *out)
{
	return agent_informers_get(a->world, kind, ns, name, out);
}

void agent_obj_each(const struct agent *a, enum agent_kind kind,
		    void (*fn)(void *user, const struct kube_obj *obj), void *user)
{
	agent_informers_each(a->world, kind, fn, user);
}

bool agent_obj_synced(const struct agent *a, enum agent_kind kind)
{
	if ((unsigned)kind >= AGENT_K_COUNT)
		return false;
	return !a->kube_mode || agent_informers_synced(a->world, kind);
}

/* ---- subscribers ---------------------------------------------------------------------- */

static int subs_add(struct subs *s, struct sub x, struct err *e)
{
	if (!x.hook && !x.contrib)
		return err_setx(e, EINVAL, "agent: subscribe: no function");
	if (s->n == s->cap) {
		unsigned cap = s->cap ? s->cap * 2 : 4;
		struct sub *nv = realloc(s->v, cap * sizeof(*nv));
		if (!nv)
			return err_setx(e, ENOMEM, "agent: subscribe: out of memory");
		s->v = nv;
		s->cap = cap;
	}
	s->v[s->n++] = x;
	return 0;
}

static void subs_del(struct subs *s, struct sub x)
{
	for (unsigned i = 0; i < s->n; i++)
		if (s->v[i].hook == x.hook && s->v[i].contrib == x.contrib &&
		    s->v[i].arg == x.arg) {
			memmove(&s->v[i], &s->v[i + 1], (s->n - i - 1) * sizeof(s->v[0]));
			s->n--;
			return;
		}
}

int agent_hook_add(struct agent *a, enum agent_hook h, agent_hook_fn fn, void *arg,
		   struct err *e)
{
	if ((unsigned)h >= AGENT_HOOK_COUNT)
		return err_setx(e, EINVAL, "agent: hook %d: no such hook", (int)h);
	return subs_add(&a->hooks[h], (struct sub){ .hook = fn, .arg = arg }, e);
}

void agent_hook_del(struct agent *a, enum agent_hook h, agent_hook_fn fn, void *arg)
{
	if ((unsigned)h < AGENT_HOOK_COUNT)
		subs_del(&a->hooks[h], (struct sub){ .hook = fn, .arg = arg });
}

int agent_contrib_add(struct agent *a, enum agent_kobj k, agent_contrib_fn fn, void *arg,
		      struct err *e)
{
	if ((unsigned)k >= AGENT_KOBJ_COUNT)
		return err_setx(e, EINVAL, "agent: contribution %d: no such kind", (int)k);
	return subs_add(&a->contribs[k], (struct sub){ .contrib = fn, .arg = arg }, e);
}

int agent_http_add(struct agent *a, const char *path, agent_http_fn fn, void *arg,
		   struct err *e)
{
	size_t n = strlen(path);
	if (path[0] != '/' || n >= sizeof(a->http[0].path) || strcmp(path, "/healthz") == 0 ||
	    strcmp(path, "/readyz") == 0 || strcmp(path, "/metrics") == 0)
		return err_setx(e, EINVAL, "agent: http path %s: not a module path", path);
	for (unsigned i = 0; i < a->n_http; i++)
		if (strcmp(a->http[i].path, path) == 0)
			return err_setx(e, EEXIST, "agent: http path %s: served already", path);
	if (a->n_http == AGENT_HTTP_ROUTES_MAX)
		return err_setx(e, ENOSPC, "agent: http path %s: more than %d module paths", path,
				AGENT_HTTP_ROUTES_MAX);
	memcpy(a->http[a->n_http].path, path, n + 1);
	a->http[a->n_http].fn = fn;
	a->http[a->n_http].arg = arg;
	a->n_http++;
	return 0;
}

void agent_http_del(struct agent *a, const char *path)
{
	for (unsigned i = 0; i < a->n_http; i++)
		if (strcmp(a->http[i].path, path) == 0) {
			a->http[i] = a->http[--a->n_http];
			return;
		}
}

void agent_contrib_del(struct agent *a, enum agent_kobj k, agent_contrib_fn fn, void *arg)
{
	if ((unsigned)k < AGENT_KOBJ_COUNT)
		subs_del(&a->contribs[k], (struct sub){ .contrib = fn, .arg = arg });
}

/* Tell every subscriber of ev->hook, in order. A subscriber that unsubscribes another
 * during the call is safe: the list is walked by index against its current length. */
static void hooks_fire(struct agent *a, const struct agent_event *ev)
{
	struct subs *s = &a->hooks[ev->hook];
	for (unsigned i = 0; i < s->n; i++)
		s->v[i].hook(s->v[i].arg, a, ev);
}

int agent_want_routes(struct agent_want *w, const struct rt_route *r, unsigned n,
		      struct err *e)
{
	if (n > w->cap_routes - w->n_routes) {
		unsigned cap = w->cap_routes ? w->cap_routes : 16;
		while (cap - w->n_routes < n) {
			if (cap > UINT32_MAX / 2)
				return err_setx(e, ENOMEM, "agent: desired routes: too many");
			cap *= 2;
		}
		struct rt_route *nv = realloc(w->routes, (size_t)cap * sizeof(*nv));
		if (!nv)
			return err_setx(e, ENOMEM, "agent: desired routes: out of memory");
		w->routes = nv;
		w->cap_routes = cap;
	}
	memcpy(w->routes + w->n_routes, r, (size_t)n * sizeof(*r));
	w->n_routes += n;
	return 0;
}

/* ---- endpoints ------------------------------------------------------------------------ */

static void answer_waiters(struct agent *a);

static void eps_added(void *user, struct agent_ep *ep, bool from_disk)
{
	struct agent_event ev = { .hook = AGENT_HOOK_EP_ADDED, .ep = ep, .from_disk = from_disk };
	hooks_fire(user, &ev);
}

static void eps_removed(void *user, struct agent_ep *ep)
{
	struct agent_event ev = { .hook = AGENT_HOOK_EP_REMOVED, .ep = ep };
	hooks_fire(user, &ev);
}

struct agent_ep *agent_ep_find(struct agent *a, const char *cid, const char *ifname)
{
	return agent_eps_find(a->eps, cid, ifname);
}

struct agent_ep *agent_ep_find_ip(struct agent *a, const struct ip_addr *ip)
{
	return agent_eps_find_ip(a->eps, ip);
}

unsigned agent_ep_count(const struct agent *a) { return agent_eps_count(a->eps); }

struct agent_ep *agent_ep_at(struct agent *a, unsigned i) { return agent_eps_at(a->eps, i); }

void agent_ep_gate_set(struct agent *a, struct agent_ep *ep, unsigned bits)
{
	(void)a;
	agent_eps_gate_set(ep, bits);
}

void agent_ep_gate_clear(struct agent *a, struct agent_ep *ep, unsigned bits)
{
	agent_eps_gate_clear(ep, bits);
	answer_waiters(a);
}

int agent_ep_set_target(struct agent *a, struct agent_ep *ep, bool target, struct err *e)
{
	if (ep->target == target)
		return 0;
	ep->target = target;
	agent_reconcile_soon(a);
	return ep->adopted ? 0 : agent_eps_save(a->eps, ep, e);
}

/* ---- reconcile ------------------------------------------------------------------------ */

static int route_cmp(const void *x, const void *y)
{
	return agent_route_cmp(x, y);
}

/* The route reconciler: the union of the contributions, applied. */
static int reconcile_routes(struct agent *a, struct agent_want *w, struct err *e)
{
	if (w->n_routes > 1)
		qsort(w->routes, w->n_routes, sizeof(*w->routes), route_cmp);
	struct agent_rec_stats st;
	int rc = agent_reconcile(a->nl, (uint8_t)a->conf.network.route_protocol, w->routes,
				 w->n_routes, &st, e);
	agent_metric_add(a->m_changes, "added", st.added);
	agent_metric_add(a->m_changes, "fixed", st.fixed);
	agent_metric_add(a->m_changes, "removed", st.removed);
	agent_metric_add(a->m_changes, "failed", st.failed);
	agent_metric_add(a->m_recs, rc == 0 ? "ok" : "failed", 1);
	agent_metric_set(a->m_routes, NULL, st.adopted + st.added + st.fixed);
	if (st.added || st.fixed || st.removed || st.failed)
		log_info(a->log,
			 "agent: reconcile: %u routes: %u in place, %u added, %u fixed, %u stale "
			 "removed, %u failed",
			 w->n_routes, st.adopted, st.added, st.fixed, st.removed, st.failed);
	else
		log_debug(a->log, "agent: reconcile: %u routes in place", w->n_routes);
	if (rc == 0 && !a->reconciled)
		log_info(a->log, "agent: routes adopted (%u in place, %u added, %u fixed, "
				 "%u stale removed): ready", st.adopted, st.added, st.fixed,
			 st.removed);
	return rc;
}

/* One reconciler per kernel object kind. */
static int (*const reconcilers[AGENT_KOBJ_COUNT])(struct agent *, struct agent_want *,
						  struct err *) = {
	[AGENT_KOBJ_ROUTE] = reconcile_routes,
};

int agent_reconcile_now(struct agent *a, struct err *e)
{
	if (!agent_obj_all_synced(a))
		return err_setx(e, EAGAIN, "agent: reconcile: informers not synced yet");
	agent_eps_adopt_routes(a->eps, a->nl, (uint8_t)a->conf.network.route_protocol,
			       a->conf.network.route_metric, true);
	agent_eps_resolve(a->eps, a->nl);
	int first = 0;
	for (int k = 0; k < AGENT_KOBJ_COUNT; k++) {
		struct agent_want w;
		memset(&w, 0, sizeof(w));
		struct err ke = { 0 };
		int rc = 0;
		struct subs *s = &a->contribs[k];
		for (unsigned i = 0; i < s->n && rc == 0; i++)
			rc = s->v[i].contrib(s->v[i].arg, a, &w, &ke);
		if (rc == 0)
			rc = reconcilers[k](a, &w, &ke);
		free(w.routes);
		if (rc < 0 && first == 0) {
			first = rc;
			if (e)
				*e = ke;
		}
	}
	if (first == 0) {
		a->reconciled = true;
		agent_eps_routes_ok(a->eps);
	}
	agent_metric_set(a->m_ready, NULL, agent_ready(a) ? 1 : 0);
	struct agent_event ev = { .hook = AGENT_HOOK_RECONCILED, .ok = first == 0 };
	hooks_fire(a, &ev);
	answer_waiters(a);
	return first;
}

static void soon_cb(struct ev_loop *loop, struct ev_timer *t, void *user)
{
	(void)loop;
	(void)t;
	struct agent *a = user;
	struct err e = { 0 };
	if (agent_reconcile_now(a, &e) < 0 && e.code != EAGAIN)
		log_err(a->log, LOG_LVL_WARN, &e);
}

void agent_reconcile_soon(struct agent *a)
{
	if (a->soon && !ev_timer_armed(a->soon))
		ev_timer_arm(a->soon, 0, 0);
}

/* ---- overrides ------------------------------------------------------------------------ */

const struct agent_override *agent_override_get(const struct agent *a,
						const struct ip_addr *ip)
{
	for (unsigned i = 0; i < a->n_ovr; i++)
		if (ip_eq(&a->ovr[i].ip, ip))
			return &a->ovr[i];
	return NULL;
}

const struct agent_override *agent_overrides(const struct agent *a, unsigned *n)
{
	*n = a->n_ovr;
	return a->ovr;
}

int agent_override_set(struct agent *a, const struct agent_override *o, struct err *e)
{
	if (o->ip.family != AF_INET && o->ip.family != AF_INET6)
		return err_setx(e, EINVAL, "agent: override: no address");
	struct agent_override *have = (struct agent_override *)agent_override_get(a, &o->ip);
	if (!have) {
		if (a->n_ovr == a->cap_ovr) {
			unsigned cap = a->cap_ovr ? a->cap_ovr * 2 : 8;
			struct agent_override *nv = realloc(a->ovr, cap * sizeof(*nv));
			if (!nv)
				return err_setx(e, ENOMEM, "agent: override: out of memory");
			a->ovr = nv;
			a->cap_ovr = cap;
		}
		have = &a->ovr[a->n_ovr++];
	}
	*have = *o;
	agent_reconcile_soon(a);
	return 0;
}

int agent_override_apply(struct agent *a, const struct agent_override *o, struct err *e)
{
	int rc = agent_override_set(a, o, e);
	if (rc < 0)
		return rc;
	return agent_routes_apply_override(a, o, e);
}

void agent_override_clear(struct agent *a, const struct ip_addr *ip)
{
	for (unsigned i = 0; i < a->n_ovr; i++) {
		if (!ip_eq(&a->ovr[i].ip, ip))
			continue;
		a->ovr[i] = a->ovr[--a->n_ovr];
		agent_reconcile_soon(a);
		return;
	}
}

/* ---- the world model's events --------------------------------------------------------- */

static void world_object(void *user, enum agent_kind kind, const struct kube_obj *old,
			 const struct kube_obj *obj)
{
	struct agent_event ev = { .hook = AGENT_HOOK_OBJECT, .kind = kind, .old = old,
				  .obj = obj };
	hooks_fire(user, &ev);
}

static void world_synced(void *user, enum agent_kind kind, bool all)
{
	(void)kind;
	if (all)
		agent_reconcile_soon(user);
}

/* ---- the CNI requests ----------------------------------------------------------------- */

/* Answer a connection waiting for an endpoint that is now programmed (or gone). */
static void answer_one(void *user, struct agent_conn *c, const char *cid, const char *ifname)
{
	struct agent *a = user;
	struct agent_ep *ep = agent_ep_find(a, cid, ifname);
	if (!ep) {
		agent_conn_wait_done(c);
		agent_conn_answer(c, AGENT_ST_ERROR, "endpoint unregistered while waiting");
		return;
	}
	if (!agent_eps_programmed(ep))
		return;
	agent_conn_wait_done(c);
	log_debug(a->log, "agent: endpoint %s %s programmed", ep->cid, ep->ifname);
	agent_conn_answer(c, AGENT_ST_PROGRAMMED, NULL);
}

static void answer_waiters(struct agent *a)
{
	if (a->srv)
		agent_servers_each_waiting(a->srv, answer_one, a);
}

/* IPAM's state from the file datastore, when it exists (never created here). True with
 * st loaded; false when there is nothing to read or it cannot be read (logged). */
static bool ipam_read_file(struct agent *a, struct ipam_state *st)
{
	struct stat sb;
	if (stat(a->conf.datastore.state_dir, &sb) < 0 || !S_ISDIR(sb.st_mode))
		return false;
	struct ipam_ds_file f;
	struct err e = { 0 };
	if (ipam_ds_file_open(&f, a->conf.datastore.state_dir, &e) < 0) {
		log_err(a->log, LOG_LVL_WARN, &e);
		return false;
	}
	struct ipam_ds ds = ipam_ds_file(&f);
	int rc = ipam_ds_read(&ds, st, &e);
	ipam_ds_file_close(&f);
	if (rc < 0) {
		log_err(a->log, LOG_LVL_WARN, &e);
		ipam_state_free(st);
		return false;
	}
	return true;
}

/* May r be registered (agent/admit.h)? The kernel's view of its veth, and IPAM's record
 * where the agent can read it: the file datastore, when the plugin said it uses this
 * agent's (its datastore identity matched). */
static bool admit(struct agent *a, const struct agent_req *r, char *why, size_t cap)
{
	struct link_info li;
	struct err e = { 0 };
	int rc = link_get(a->nl, r->ep.veth, &li, &e);
	if (rc < 0 && rc != -ENODEV) {
		snprintf(why, cap, "veth %s: %s", r->ep.veth, e.msg);
		return false;
	}
	struct ipam_state st;
	bool have = false;
	if (a->conf.datastore.type == CONF_DATASTORE_FILE && r->datastore[0])
		have = ipam_read_file(a, &st);
	bool ok = agent_admit(&a->conf, &r->ep, rc < 0 ? NULL : &li, have ? &st : NULL, why,
			      cap);
	if (have)
		ipam_state_free(&st);
	return ok;
}

static void cni_add(struct agent *a, struct agent_conn *c, const struct agent_req *r)
{
	struct err e = { 0 };
	agent_metric_add(a->m_cni, "add", 1);
	if (!r->node[0] || !r->datastore[0]) {
		agent_metric_add(a->m_cni, "unidentified", 1);
		log_warnx(a->log, "agent: ADD endpoint %s %s: no registration identity (node, "
				  "datastore): a plugin older than this agent; accepted",
			  r->ep.cid, r->ep.ifname);
	}
	if ((r->node[0] && strcmp(r->node, a->node) != 0) ||
	    (r->datastore[0] && strcmp(r->datastore, a->ident) != 0)) {
		char why[sizeof(r->node) + sizeof(r->datastore) + sizeof(a->node) +
			 sizeof(a->ident) + 128];
		snprintf(why, sizeof(why), "registration for node \"%s\" (datastore %s) refused: "
			 "this agent serves node \"%s\" with datastore %s", r->node, r->datastore,
			 a->node, a->ident);
		agent_metric_add(a->m_cni, "refused", 1);
		log_warnx(a->log, "agent: ADD endpoint %s %s: %s", r->ep.cid, r->ep.ifname, why);
		agent_conn_answer(c, AGENT_ST_ERROR, why);
		return;
	}
	char why[512];
	if (!admit(a, r, why, sizeof(why))) {
		agent_metric_add(a->m_cni, "refused", 1);
		log_warnx(a->log, "agent: ADD endpoint %s %s: refused: %s", r->ep.cid, r->ep.ifname,
			  why);
		agent_conn_answer(c, AGENT_ST_ERROR, why);
		return;
	}
	if (agent_eps_save(a->eps, &r->ep, &e) < 0) {
		log_err(a->log, LOG_LVL_ERROR, &e);
		agent_conn_answer(c, AGENT_ST_ERROR, e.msg);
		return;
	}
	struct agent_ep *ep = agent_eps_insert(a->eps, &r->ep, false);
	if (!ep) {
		agent_conn_answer(c, AGENT_ST_ERROR, "out of memory");
		return;
	}
	char ips[128] = "";
	for (unsigned i = 0; i < ep->n_ip; i++) {
		char s[IP_STRLEN];
		size_t l = strlen(ips);
		snprintf(ips + l, sizeof(ips) - l, "%s%s", i ? "," : "", ip_fmt(&ep->ip[i], s));
	}
	log_info(a->log, "agent: ADD endpoint %s %s (%s/%s) veth %s ips %s%s", ep->cid,
		 ep->ifname, ep->ns[0] ? ep->ns : "-", ep->pod[0] ? ep->pod : "-", ep->veth, ips,
		 ep->target ? " (migration target, dark)" : "");
	if (agent_conn_answer(c, AGENT_ST_REGISTERED, NULL) && r->wait)
		agent_conn_wait(c, r->ep.cid, r->ep.ifname);
	agent_reconcile_soon(a);
}

static void cni_line(void *user, struct agent_conn *c, const char *line, size_t len)
{
	struct agent *a = user;
	struct agent_req r;
	struct err e = { 0 };
	/* An add without the registration identity comes from a plugin of the previous
	 * release (an upgrade that restarted the agent before the binary in /opt/cni/bin was
	 * replaced): accepted with a warning and counted; a mismatch is always refused.
	 * AGENT_IDENTITY_REQUIRED makes it strict. */
	int prc = AGENT_IDENTITY_REQUIRED ? agent_req_parse(line, len, &r, &e)
					  : agent_req_parse_stored(line, len, &r, &e);
	if (prc < 0) {
		agent_metric_add(a->m_cni, "invalid", 1);
		log_warnx(a->log, "agent: socket: %s", e.msg);
		agent_conn_answer(c, AGENT_ST_ERROR, e.msg);
		return;
	}
	switch (r.op) {
	case AGENT_OP_PING:
		agent_metric_add(a->m_cni, "ping", 1);
		agent_conn_answer(c, AGENT_ST_PONG, NULL);
		return;
	case AGENT_OP_DEL: {
		agent_metric_add(a->m_cni, "del", 1);
		struct agent_ep *ep = agent_ep_find(a, r.ep.cid, r.ep.ifname);
		if (ep) {
			log_info(a->log, "agent: DEL endpoint %s %s (%s/%s)", ep->cid, ep->ifname,
				 ep->ns[0] ? ep->ns : "-", ep->pod[0] ? ep->pod : "-");
			agent_eps_remove(a->eps, ep);
			agent_reconcile_soon(a);
		}
		agent_conn_answer(c, AGENT_ST_DELETED, NULL);
		answer_waiters(a);
		return;
	}
	case AGENT_OP_ADD:
		cni_add(a, c, &r);
		return;
	}
}

/* ---- HTTP ------------------------------------------------------------------------------ */

static void http_get(void *user, const char *path, const char *query,
		     struct agent_http_answer *ans)
{
	struct agent *a = user;
	for (unsigned i = 0; i < a->n_http; i++)
		if (strcmp(a->http[i].path, path) == 0) {
			a->http[i].fn(a->http[i].arg, a, query, ans);
			return;
		}
	char *small = ans->text;
	size_t cap = sizeof(ans->text);
	if (strcmp(path, "/healthz") == 0) {
		snprintf(small, cap, "ok\n");
	} else if (strcmp(path, "/readyz") == 0) {
		if (agent_ready(a)) {
			snprintf(small, cap, "ready\n");
		} else {
			ans->status = 503;
			size_t l = (size_t)snprintf(small, cap, "not ready:");
			for (int k = 0; a->kube_mode && k < AGENT_K_COUNT; k++)
				if (!agent_informers_synced(a->world, (enum agent_kind)k) && l < cap)
					l += (size_t)snprintf(small + l, cap - l,
							      " informer %s not synced;",
							      agent_kind_name((enum agent_kind)k));
			if (!a->reconciled && l < cap)
				snprintf(small + l, cap - l, " routes not adopted yet");
			l = strlen(small);
			if (l + 1 < cap)
				memcpy(small + l, "\n", 2);
		}
	} else if (strcmp(path, "/metrics") == 0) {
		agent_metric_set(a->m_eps, NULL, agent_eps_count(a->eps));
		agent_metric_set(a->m_ready, NULL, agent_ready(a) ? 1 : 0);
		for (int k = 0; a->kube_mode && k < AGENT_K_COUNT; k++)
			if (agent_informers_watched(a->world, (enum agent_kind)k))
				agent_metric_set(a->m_objects, agent_kind_name((enum agent_kind)k),
						 (double)agent_informers_count(
							 a->world, (enum agent_kind)k));
		agent_metric_set(a->m_reconn, NULL,
				 (double)agent_informers_reconnects(a->world));
		ans->body = agent_metrics_format(a->metrics, &ans->blen);
		ans->ctype = "text/plain; version=0.0.4; charset=utf-8";
		if (!ans->body) {
			ans->status = 503;
			ans->ctype = "text/plain; charset=utf-8";
			snprintf(small, cap, "out of memory\n");
		}
	} else {
		ans->status = 404;
		snprintf(small, cap, "not found\n");
	}
}

/* ---- life cycle ------------------------------------------------------------------------- */

struct agent *agent_new(const struct conf *c, const char *node, struct log *log, struct err *e)
{
	struct agent *a = calloc(1, sizeof(*a));
	if (!a) {
		err_setx(e, ENOMEM, "agent: out of memory");
		return NULL;
	}
	a->conf = *c;
	snprintf(a->node, sizeof(a->node), "%s", node);
	a->log = log;
	a->kube_mode = c->datastore.type == CONF_DATASTORE_KUBERNETES;
	conf_datastore_ident(c, NULL, a->ident, sizeof(a->ident));
	a->loop = ev_loop_new(e);
	a->metrics = agent_metrics_new();
	if (!a->loop || !a->metrics)
		goto fail;
	struct agent_metrics *r = a->metrics;
	a->m_ready = agent_metric_new(r, "kvnet_agent_ready",
				      "1 once informers synced and routes were adopted.",
				      AGENT_M_GAUGE, NULL);
	a->m_eps = agent_metric_new(r, "kvnet_agent_endpoints", "Local endpoints known.",
				    AGENT_M_GAUGE, NULL);
	a->m_routes = agent_metric_new(r, "kvnet_agent_routes",
				       "Routes programmed (owned and in place) after the last "
				       "reconcile.", AGENT_M_GAUGE, NULL);
	a->m_changes = agent_metric_new(r, "kvnet_agent_route_changes_total",
					"Route operations by reconciles, by op "
					"(added, fixed, removed, failed).", AGENT_M_COUNTER, "op");
	a->m_recs = agent_metric_new(r, "kvnet_agent_reconciles_total",
				     "Reconciles, by result.", AGENT_M_COUNTER, "result");
	a->m_reconn = agent_metric_new(r, "kvnet_agent_api_reconnects_total",
				       "Informer retries after a failed list or watch.",
				       AGENT_M_COUNTER, NULL);
	a->m_objects = agent_metric_new(r, "kvnet_agent_informer_objects",
					"Objects in each informer's store.", AGENT_M_GAUGE, "kind");
	a->m_cni = agent_metric_new(r, "kvnet_agent_cni_requests_total",
				    "CNI socket requests, by op.", AGENT_M_COUNTER, "op");
	if (!a->m_ready || !a->m_eps || !a->m_routes || !a->m_changes || !a->m_recs ||
	    !a->m_reconn || !a->m_objects || !a->m_cni) {
		err_setx(e, ENOMEM, "agent: metrics: out of memory");
		goto fail;
	}
	for (const char *const *op = (const char *const[]){ "added", "fixed", "removed",
							    "failed", NULL }; *op; op++)
		agent_metric_add(a->m_changes, *op, 0);
	static const struct agent_eps_notify eps_notify = { eps_added, eps_removed };
	a->eps = agent_eps_new(c->agent.endpoints_dir, log, &eps_notify, a);
	static const struct agent_informers_notify world_notify = { world_object, world_synced };
	a->world = agent_informers_new(a->loop, log, a->node, &world_notify, a);
	if (!a->eps || !a->world) {
		err_setx(e, ENOMEM, "agent: out of memory");
		goto fail;
	}
	agent_eps_set_identity(a->eps, a->node, a->ident);
	static const struct agent_servers_ops srv_ops = { cni_line, http_get };
	a->srv = agent_servers_new(a->loop, log, a->metrics, a->m_cni, &srv_ops, a, e);
	if (!a->srv)
		goto fail;
	if (nl_open(&a->nl, NETLINK_ROUTE, e) < 0)
		goto fail;
	if (ev_timer_add(a->loop, 0, 0, soon_cb, a, NULL, &a->soon, e) < 0)
		goto fail;
	ev_timer_disarm(a->soon);
	uint64_t p = (uint64_t)c->agent.resync_seconds * 1000;
	if (ev_timer_add(a->loop, p, p, soon_cb, a, NULL, &a->resync, e) < 0)
		goto fail;
	unsigned nm = 0;
	const struct agent_module *mods = agent_modules(&nm);
	a->mods = calloc(nm ? nm : 1, sizeof(*a->mods));
	if (!a->mods) {
		err_setx(e, ENOMEM, "agent: out of memory");
		goto fail;
	}
	for (unsigned i = 0; i < nm; i++) {
		a->mods[i] = mods[i].create(a, e);
		if (!a->mods[i])
			goto fail;
		a->n_mods = i + 1;
	}
	return a;
fail:
	agent_free(a);
	return NULL;
}

int agent_start(struct agent *a, struct err *e)
{
	int rc;
	if ((rc = agent_eps_mkdir(a->eps, e)) < 0)
		return rc;
	if ((rc = agent_servers_listen_http(a->srv, &a->conf.agent.listen, e)) < 0 ||
	    (rc = agent_servers_listen_cni(a->srv, a->conf.agent.socket,
					   a->conf.agent.socket_group, e)) < 0)
		return rc;
	if (a->kube_mode) {
		/* the identity names the API server: known once the kubeconfig is loaded,
		 * which happens before any request is read */
		if ((rc = agent_informers_start(a->world, &a->conf, e)) < 0)
			return rc;
		conf_datastore_ident(&a->conf, agent_informers_server(a->world), a->ident,
				     sizeof(a->ident));
		agent_eps_set_identity(a->eps, a->node, a->ident);
	}
	agent_eps_load(a->eps);
	agent_eps_adopt_routes(a->eps, a->nl, (uint8_t)a->conf.network.route_protocol,
			       a->conf.network.route_metric, false);
	/* the veths' ifindex now, not at the first reconcile: the informers' first events
	 * (an IPAM owner that moved here during the restart) act on the endpoints before it */
	agent_eps_resolve(a->eps, a->nl);
	agent_reconcile_soon(a);
	return 0;
}

int agent_reload(struct agent *a, const struct conf *c, struct err *e)
{
	(void)e;
	if (memcmp(&c->agent.listen, &a->conf.agent.listen, sizeof(c->agent.listen)) != 0 ||
	    strcmp(c->agent.socket, a->conf.agent.socket) != 0 ||
	    strcmp(c->agent.socket_group, a->conf.agent.socket_group) != 0 ||
	    strcmp(c->agent.endpoints_dir, a->conf.agent.endpoints_dir) != 0 ||
	    c->datastore.type != a->conf.datastore.type ||
	    strcmp(c->kubernetes.kubeconfig, a->conf.kubernetes.kubeconfig) != 0 ||
	    c->network.route_protocol != a->conf.network.route_protocol)
		log_warnx(a->log, "agent: reload: listen, socket, socket_group, endpoints_dir, "
				  "datastore, kubeconfig and route_protocol take effect at the next "
				  "start only");
	if (c->network.cross_node != a->conf.network.cross_node)
		log_warnx(a->log, "agent: reload: cross_node %s -> %s: the old mode's objects are "
				  "removed (VXLAN device / BIRD fragment, routes), the new mode's "
				  "made; nodes in different modes do not reach each other",
			  conf_cross_node_name(a->conf.network.cross_node),
			  conf_cross_node_name(c->network.cross_node));
	struct conf keep = a->conf;
	a->conf = *c;
	a->conf.agent.listen = keep.agent.listen;
	memcpy(a->conf.agent.socket, keep.agent.socket, sizeof(keep.agent.socket));
	memcpy(a->conf.agent.socket_group, keep.agent.socket_group,
	       sizeof(keep.agent.socket_group));
	memcpy(a->conf.agent.endpoints_dir, keep.agent.endpoints_dir,
	       sizeof(keep.agent.endpoints_dir));
	a->conf.datastore = keep.datastore;
	a->conf.kubernetes = keep.kubernetes;
	a->conf.network.route_protocol = keep.network.route_protocol;
	uint64_t p = (uint64_t)c->agent.resync_seconds * 1000;
	ev_timer_arm(a->resync, p, p);
	agent_reconcile_soon(a);
	return 0;
}

void agent_free(struct agent *a)
{
	if (!a)
		return;
	unsigned nm = 0;
	const struct agent_module *mods = agent_modules(&nm);
	while (a->n_mods > 0) {
		a->n_mods--;
		mods[a->n_mods].destroy(a->mods[a->n_mods]);
	}
	free(a->mods);
	agent_servers_free(a->srv);
	agent_informers_free(a->world);
	if (a->soon)
		ev_timer_del(a->soon);
	if (a->resync)
		ev_timer_del(a->resync);
	ev_loop_free(a->loop);
	if (a->nl)
		nl_close(a->nl);
	agent_eps_free(a->eps);
	free(a->ovr);
	for (int h = 0; h < AGENT_HOOK_COUNT; h++)
		free(a->hooks[h].v);
	for (int k = 0; k < AGENT_KOBJ_COUNT; k++)
		free(a->contribs[k].v);
	agent_metrics_free(a->metrics);
	free(a);
}
