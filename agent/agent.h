/* agent — the node daemon's hub: it wires the endpoint table, the world model, the
 * servers and the kernel reconcilers together on one event loop, and runs the modules
 * that give the agent its features.
 *
 *   cmd/agent.c ── agent_new(conf, node, log) ── agent_start() ── ev_run(agent_loop())
 *                                                               ── agent_free()
 *
 *   agent/endpoints.h   the endpoint table and its files in [agent] endpoints_dir
 *   agent/informers.h   the world model: one informer per object kind some module wants
 *   agent/servers.h     the CNI socket and the HTTP port (/healthz, /readyz, /metrics):
 *                       peer checks, per-listener limits and timeouts
 *   agent/admit.h       which registrations are accepted (pure checks)
 *   agent/reconcile.h   the route reconciler (one reconciler per kernel object kind)
 *   agent/modules.h     the module table: routes (agent/routes.h), migration hand-over
 *                       (agent/mignode.h), the agent-to-agent cut-over path (agent/peer.h)
 *
 * What the hub does itself: the CNI requests (register, unregister, "programmed"
 * answers), readiness (/readyz 200 once every wanted informer has synced once and the
 * first reconcile, the route adoption, has run), and the reconcile: after any change
 * (coalesced), every [agent] resync_seconds, and on request, it adopts unregistered kvnet
 * routes, resolves the endpoints' veths, asks every contributor for its part of the
 * desired state and hands each kernel object kind's union to its reconciler, which
 * applies the difference (replace, never delete-then-add; then stale deletes).
 *
 * ---- Where a new feature module plugs in -------------------------------------------
 * A module (policy, flows, routing modes, L2, ...) is one agent/NAME.c with NAME.h and one
 * line in agent/modules.c's table ({name, new, free}); the hub is not edited. Its new()
 * runs in agent_new(), before agent_start(), and registers what it needs:
 *   - agent_want_kind(a, AGENT_K_...)         the informers it reads (agent_obj_get/each);
 *   - agent_hook_add(a, AGENT_HOOK_..., fn, arg)  endpoint added/removed, object events,
 *                                             reconcile done; several subscribers per
 *                                             hook, called in registration order;
 *   - agent_contrib_add(a, AGENT_KOBJ_..., fn, arg)  its part of the desired state: a
 *                                             pure function of the agent's state that
 *                                             appends entries (agent_want_routes); the
 *                                             hub hands the union to that kind's one
 *                                             reconciler;
 *   - gates (agent_ep_gate_set) to hold a CNI ADD's "programmed" answer, overrides
 *     (agent_override_*) for per-address route decisions, metrics (agent_metrics),
 *     timers and fds on agent_loop();
 *   - agent_http_add(a, "/path", fn, arg)     a GET endpoint on the HTTP port.
 * A new kernel object kind (neighbours, nf_tables, tc/BPF, FDB) adds an AGENT_KOBJ_ value,
 * its want array and its reconciler in the hub's reconciler table: the only hub edit,
 * once per kind, never per feature.
 *
 * Everything runs on the loop's thread; no call blocks on the network except the
 * informers' LIST (kube/informer.h).
 */
#ifndef KVNET_AGENT_AGENT_H
#define KVNET_AGENT_AGENT_H

#include "agent/desired.h"
#include "agent/informers.h"
#include "conf/conf.h"

#include <stdbool.h>
#include <stdint.h>

struct err;
struct ev_loop;
struct kube_obj;
struct kube_client;
struct log;
struct nl_sock;
struct agent_metrics;
struct agent_http_answer;

struct agent;

/* ---- life cycle -------------------------------------------------------------------- */

/* A stopped agent for configuration c (copied) logging to log (not owned; must outlive
 * the agent). node is this node's name (already mapped to an object name). Creates the
 * loop and every module of the module table (agent/modules.h); opens nothing else.
 * NULL with e on failure. */
struct agent *agent_new(const struct conf *c, const char *node, struct log *log,
			struct err *e);

/* Open the HTTP listener and the unix socket, load the endpoint table, create and start
 * the informers (kubernetes datastore) and schedule the first reconcile. 0 or -errno
 * with e (address in use, socket directory missing, kubeconfig unusable, ...). */
int agent_start(struct agent *a, struct err *e);

/* Take a new configuration (SIGHUP): log level, resync interval, metric, direct mode.
 * Listen address, socket, endpoints_dir and the datastore are not changed in flight
 * (a warning names any that differ). Schedules a reconcile. 0 or -EINVAL with e. */
int agent_reload(struct agent *a, const struct conf *c, struct err *e);

/* Stop serving and free everything: the modules (reverse order), the unix socket
 * (closed and unlinked), the HTTP listener and connections, the informers. Routes are
 * left as they are. NULL is ignored. */
void agent_free(struct agent *a);

/* ---- what modules read --------------------------------------------------------------- */

/* The loop the agent runs on (for timers and io of the modules). */
struct ev_loop *agent_loop(struct agent *a);
/* The logger, the configuration in force, this node's name, its datastore identity
 * (conf_datastore_ident; the API server part is known after agent_start). */
struct log *agent_log(struct agent *a);
const struct conf *agent_conf(const struct agent *a);
const char *agent_node(const struct agent *a);
const char *agent_datastore(const struct agent *a);
/* The API client (NULL with the file datastore), for owner compare-and-swap writes. */
struct kube_client *agent_kube(struct agent *a);
/* The rtnetlink socket the reconcilers use (for fast-path writes). */
struct nl_sock *agent_nl(struct agent *a);
/* The metrics registry (agent/metrics.h). */
struct agent_metrics *agent_metrics(struct agent *a);
/* True once ready (what /readyz says). */
bool agent_ready(const struct agent *a);
/* The state of module `name` of the module table (agent/modules.h), for a module that
 * offers calls to the others (the peer path's agent_peer_tell); NULL when no such
 * module exists or it is not created (yet). */
void *agent_module(struct agent *a, const char *name);

/* Ask for informer `kind` (before agent_start; kinds nobody asks for are not watched). */
void agent_want_kind(struct agent *a, enum agent_kind kind);
/* The informer stores (kubernetes datastore; false / nothing with the file datastore,
 * before the informers exist or for a kind not watched): object `kind` by namespace ("" or
 * NULL cluster-scoped) and name, and a walk over all of them. Views are valid until the
 * loop runs the informer again (copy what you keep). */
bool agent_obj_get(const struct agent *a, enum agent_kind kind, const char *ns,
		   const char *name, struct kube_obj *out);
void agent_obj_each(const struct agent *a, enum agent_kind kind,
		    void (*fn)(void *user, const struct kube_obj *obj), void *user);
/* True once informer `kind` has synced (always true with the file datastore and for
 * kinds not watched); all: every one. */
bool agent_obj_synced(const struct agent *a, enum agent_kind kind);
bool agent_obj_all_synced(const struct agent *a);

/* ---- hooks: several subscribers each ------------------------------------------------- */

enum agent_hook {
	AGENT_HOOK_EP_ADDED,	/* an endpoint was registered (or re-registered: the old one
				 * was removed first) or loaded at start (from_disk); ep stays
				 * valid until AGENT_HOOK_EP_REMOVED */
	AGENT_HOOK_EP_REMOVED,	/* an endpoint is being unregistered; ep is freed after */
	AGENT_HOOK_OBJECT,	/* an informer event (old NULL: add; obj NULL: delete) */
	AGENT_HOOK_RECONCILED,	/* a reconcile finished (ok: everything desired in place) */
	AGENT_HOOK_COUNT,	/* number of hooks */
};

/* What a hook is told; only the fields of its hook are set. */
struct agent_event {
	enum agent_hook hook;	     /* which */
	struct agent_ep *ep;	     /* EP_*: the endpoint */
	bool from_disk;		     /* EP_ADDED: loaded at start, not registered now */
	enum agent_kind kind;	     /* OBJECT: the informer */
	const struct kube_obj *old;  /* OBJECT: before (NULL for an add) */
	const struct kube_obj *obj;  /* OBJECT: after (NULL for a delete) */
	bool ok;		     /* RECONCILED: every desired object in place */
};

/* A hook function: runs on the loop; may call every agent_* function but agent_free().
 * Object views are valid only during the call. */
typedef void (*agent_hook_fn)(void *arg, struct agent *a, const struct agent_event *ev);

/* Subscribe fn(arg) to hook h (after the subscribers before it). 0 or -ENOMEM /
 * -EINVAL with e. */
int agent_hook_add(struct agent *a, enum agent_hook h, agent_hook_fn fn, void *arg,
		   struct err *e);
/* Unsubscribe (fn, arg) from h; no-op if not subscribed. */
void agent_hook_del(struct agent *a, enum agent_hook h, agent_hook_fn fn, void *arg);

/* ---- HTTP endpoints of modules ------------------------------------------------------- */

#define AGENT_HTTP_ROUTES_MAX 8 /* module paths on the HTTP port */

/* Answer a GET (or HEAD) of a module's path: query is what followed '?' (not decoded,
 * agent_http_query_get); fill ans (agent/servers.h: status 200 and text preset). */
typedef void (*agent_http_fn)(void *arg, struct agent *a, const char *query,
			      struct agent_http_answer *ans);
/* Serve path (exact match, "/" then at most 63 bytes; not /healthz, /readyz, /metrics)
 * with fn(arg). 0, or -EEXIST / -ENOSPC / -EINVAL with e. */
int agent_http_add(struct agent *a, const char *path, agent_http_fn fn, void *arg,
		   struct err *e);
/* Stop serving path (no-op if not served). */
void agent_http_del(struct agent *a, const char *path);

/* ---- the desired state: contributions per kernel object kind ------------------------- */

enum agent_kobj {
	AGENT_KOBJ_ROUTE, /* routes with [network] route_protocol, main table */
	AGENT_KOBJ_COUNT, /* number of kinds */
};

/* The desired state being assembled by one reconcile (opaque to contributors). */
struct agent_want;

/* Append n routes (copied) to the desired routes. 0 or -ENOMEM with e. */
int agent_want_routes(struct agent_want *w, const struct rt_route *r, unsigned n,
		      struct err *e);

/* A contribution: append this module's part of kind k to w from the agent's state (pure:
 * read the endpoints, informers, overrides, configuration; no kernel I/O). 0 or
 * -errno with e (the reconcile of that kind is then skipped, nothing is deleted). */
typedef int (*agent_contrib_fn)(void *arg, struct agent *a, struct agent_want *w,
				struct err *e);
/* Register / unregister a contribution to kind k. 0 or -ENOMEM / -EINVAL with e. */
int agent_contrib_add(struct agent *a, enum agent_kobj k, agent_contrib_fn fn, void *arg,
		      struct err *e);
void agent_contrib_del(struct agent *a, enum agent_kobj k, agent_contrib_fn fn, void *arg);

/* ---- endpoints ----------------------------------------------------------------------- */

/* Endpoint by (container id, ifname), or by one of its addresses; NULL if none. */
struct agent_ep *agent_ep_find(struct agent *a, const char *cid, const char *ifname);
struct agent_ep *agent_ep_find_ip(struct agent *a, const struct ip_addr *ip);
/* Number of endpoints and endpoint number i (0..n-1; order changes on add/remove). */
unsigned agent_ep_count(const struct agent *a);
struct agent_ep *agent_ep_at(struct agent *a, unsigned i);

/* Mark the endpoint a dark migration target (true) or an ordinary one (false: the VM
 * runs here now, desired.h rule 2 routes it), keep that in its endpoint file and
 * schedule a reconcile. 0 or -errno with e (the file could not be written; the flag is
 * changed anyway). */
int agent_ep_set_target(struct agent *a, struct agent_ep *ep, bool target, struct err *e);

/* "Programmed" gates: a CNI ADD waiting for confirmation is answered once the
 * endpoint's routes are in their desired state and no gate bit is set. A module sets a
 * bit when an endpoint is added (AGENT_HOOK_EP_ADDED) and clears it when its part is
 * ready (the migration code: the target's detection is armed). Clearing re-checks the
 * waiters at once. */
void agent_ep_gate_set(struct agent *a, struct agent_ep *ep, unsigned bits);
void agent_ep_gate_clear(struct agent *a, struct agent_ep *ep, unsigned bits);

/* ---- route overrides ----------------------------------------------------------------- */

/* Impose (or replace) the route for address o->ip (desired.h rule 1), and schedule a
 * reconcile. 0 or -ENOMEM / -EINVAL (no address) with e. */
int agent_override_set(struct agent *a, const struct agent_override *o, struct err *e);
/* As agent_override_set, and install that route now with one RTM_NEWROUTE replace
 * (the fast path after an announcement; the reconcile that follows removes what the
 * override made stale, e.g. the same /32 at another metric). DEV and VIA only. */
int agent_override_apply(struct agent *a, const struct agent_override *o, struct err *e);
/* Forget the override for ip (no-op if none) and schedule a reconcile. */
void agent_override_clear(struct agent *a, const struct ip_addr *ip);
/* The override for ip, or NULL; every override (*n of them). */
const struct agent_override *agent_override_get(const struct agent *a,
						const struct ip_addr *ip);
const struct agent_override *agent_overrides(const struct agent *a, unsigned *n);

/* ---- reconcile ----------------------------------------------------------------------- */

/* Reconcile on the next loop iteration (coalesces many calls into one). */
void agent_reconcile_soon(struct agent *a);
/* Reconcile now: 0 when every desired object is in place, else -errno with e (the first
 * failure; the rest was still applied). */
int agent_reconcile_now(struct agent *a, struct err *e);

#endif
