/* agent — the node daemon: endpoint table, informers, route ownership, the CNI socket and
 * the HTTP endpoints (/healthz, /readyz, /metrics), all on one event loop.
 *
 *   cmd/agent.c ── agent_new(conf, log) ── agent_start() ── ev_run(agent_loop()) ── agent_free()
 *
 * What it does (see desired.h for the route rules, reconcile.h for how they are applied):
 *   - endpoints: the CNI plugin registers each pod interface over the unix socket
 *     (proto.h); the table is kept in [agent] endpoints_dir (one JSON file per endpoint,
 *     the ADD line itself) so a restarted agent knows every endpoint at once; kvnet routes
 *     found at start on an interface no file names are adopted as endpoints too;
 *   - informers (kubernetes datastore only): pods on this node, VMIs, VMIMs, IPAM blocks
 *     and handles, nodes. While the API server is down the stores keep the last state, so
 *     the routes stay as they are; the informers relist by themselves;
 *   - routes: every route with [network] route_protocol in the main table is the
 *     agent's. A reconcile computes the desired set and applies the difference with
 *     replace (never delete-then-add), then deletes what is stale. It runs after any
 *     change (coalesced), every [agent] resync_seconds, and on request;
 *   - ready (/readyz 200) once every informer has synced once and the first reconcile
 *     (route adoption) has run.
 *
 * For the migration code (agent/migrate.c): hooks for endpoint and object events, route
 * overrides per address, "programmed" gates per endpoint, the loop for timers, the
 * metrics registry. Everything runs on the loop's thread; no call blocks on the network
 * except the informers' LIST (kube/informer.h).
 */
#ifndef KVNET_AGENT_AGENT_H
#define KVNET_AGENT_AGENT_H

#include "agent/desired.h"
#include "conf/conf.h"

#include <stdbool.h>
#include <stdint.h>

struct err;
struct ev_loop;
struct kube_obj;
struct kube_client;
struct log;
struct agent_metrics;

struct agent;

/* Which informer an object event comes from. */
enum agent_kind {
	AGENT_K_POD,	/* pods on this node */
	AGENT_K_VMI,	/* kubevirt.io VirtualMachineInstances */
	AGENT_K_VMIM,	/* kubevirt.io VirtualMachineInstanceMigrations */
	AGENT_K_BLOCK,	/* kvnet.io IPAMBlocks */
	AGENT_K_HANDLE, /* kvnet.io IPAMHandles */
	AGENT_K_NODE,	/* nodes */
	AGENT_K_COUNT,	/* number of kinds */
};

/* Callbacks for the migration code; any may be NULL. They run on the loop; they may call
 * every agent_* function below but not agent_free(). Object views are valid only during
 * the call (kube/informer.h). */
struct agent_hooks {
	/* An endpoint was registered (or re-registered: the old one was replaced) or
	 * loaded at start (from_disk). ep stays valid until ep_removed. */
	void (*ep_added)(void *user, struct agent *a, struct agent_ep *ep, bool from_disk);
	/* An endpoint is being unregistered; ep is freed after the call. */
	void (*ep_removed)(void *user, struct agent *a, struct agent_ep *ep);
	/* Informer events: old is NULL for an add, obj is NULL for a delete. */
	void (*object)(void *user, struct agent *a, enum agent_kind kind,
		       const struct kube_obj *old, const struct kube_obj *obj);
	/* A reconcile finished (ok: every desired route is in place). */
	void (*reconciled)(void *user, struct agent *a, bool ok);
};

/* A stopped agent for configuration c (copied) logging to log (not owned; must outlive
 * the agent). node is this node's name (already mapped to an object name). Creates the
 * loop; opens nothing else. NULL with e on failure. */
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

/* Stop serving and free everything: closes and unlinks the unix socket, closes the
 * HTTP listener and connections, stops the informers. Routes are left as they are.
 * NULL is ignored. */
void agent_free(struct agent *a);

/* The loop the agent runs on (for timers and io of the migration code). */
struct ev_loop *agent_loop(struct agent *a);
/* The logger, the configuration in force, this node's name. */
struct log *agent_log(struct agent *a);
const struct conf *agent_conf(const struct agent *a);
const char *agent_node(const struct agent *a);
/* The API client (NULL with the file datastore), for owner compare-and-swap writes. */
struct kube_client *agent_kube(struct agent *a);
/* The metrics registry (agent/metrics.h). */
struct agent_metrics *agent_metrics(struct agent *a);
/* True once ready (what /readyz says). */
bool agent_ready(const struct agent *a);

/* The informer stores (kubernetes datastore; false / nothing with the file datastore or
 * before the informers exist): object `kind` by namespace ("" or NULL cluster-scoped) and
 * name, and a walk over all of them. Views are valid until the loop runs the informer
 * again (copy what you keep). */
bool agent_obj_get(const struct agent *a, enum agent_kind kind, const char *ns,
		   const char *name, struct kube_obj *out);
void agent_obj_each(const struct agent *a, enum agent_kind kind,
		    void (*fn)(void *user, const struct kube_obj *obj), void *user);
/* True once informer `kind` has synced (always true with the file datastore). */
bool agent_obj_synced(const struct agent *a, enum agent_kind kind);

/* Install the migration code's hooks (one set; a second call replaces the first). */
void agent_set_hooks(struct agent *a, const struct agent_hooks *h, void *user);

/* ---- endpoints --------------------------------------------------------------------- */

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
 * endpoint's routes are in their desired state and no gate bit is set. The migration
 * code sets a bit when a target endpoint is added (ep_added hook) and clears it when the
 * target's detection is armed. Clearing re-checks the waiters at once. */
void agent_ep_gate_set(struct agent *a, struct agent_ep *ep, unsigned bits);
void agent_ep_gate_clear(struct agent *a, struct agent_ep *ep, unsigned bits);

/* ---- routes ------------------------------------------------------------------------ */

/* Impose (or replace) the route for address o->ip (desired.h rule 1), and schedule a
 * reconcile. 0 or -ENOMEM / -EINVAL (no address) with e. */
int agent_override_set(struct agent *a, const struct agent_override *o, struct err *e);
/* As agent_override_set, and install that route now with one RTM_NEWROUTE replace
 * (the fast path after an announcement; the reconcile that follows removes what the
 * override made stale, e.g. the same /32 at another metric). DEV and VIA only. */
int agent_override_apply(struct agent *a, const struct agent_override *o, struct err *e);
/* Forget the override for ip (no-op if none) and schedule a reconcile. */
void agent_override_clear(struct agent *a, const struct ip_addr *ip);
/* The override for ip, or NULL. */
const struct agent_override *agent_override_get(const struct agent *a,
						const struct ip_addr *ip);

/* Reconcile on the next loop iteration (coalesces many calls into one). */
void agent_reconcile_soon(struct agent *a);
/* Reconcile now: 0 when every desired route is in place, else -errno with e (the first
 * failure; the rest was still applied). */
int agent_reconcile_now(struct agent *a, struct err *e);

#endif
