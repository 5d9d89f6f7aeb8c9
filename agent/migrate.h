/* migrate — the live-migration hand-over of one local VM endpoint, as a state x event
 * table (pure: no I/O, no clock, no logging).
 *
 * An endpoint is one VM pod on this node (a VM's ordinary pod, a migration source, or a
 * migration target). The agent feeds it events (pod and VMIM informers, IPAM owner
 * changes, announcements seen by the capture socket, its convergence timer); mig_step()
 * looks up the cell of mig_table[state][event], moves the endpoint to the cell's state
 * and hands back the cell's actions as records. The agent carries them out (route
 * override + reconcile, owner compare-and-swap, capture arming, timers) and logs the
 * transition. Unit tests drive every cell of the table through mig_step().
 *
 *   BASE ──TARGET_POD──► TARGET (dark: no host route; announcement detection armed)
 *     ▲                    │ ANNOUNCE (GARP/RARP/NA on the target veth)
 *     │                    │ READY_ANNOTATION (fallback)
 *     │                    ▼
 *     │                  CLAIMING (/32 + /128 at migration_metric, the other agents told;
 *     │                    │   the owner CAS issued off the loop, its answer pending)
 *     │                    │ SWAP_DONE (the CAS landed) or OWNER_LOCAL (the watch saw it
 *     │                    │ first)        SWAP_FAILED ──► TARGET (route dropped: dark,
 *     │                    ▼                              disarmed; the API names the source;
 *     │                    │                              the other agents' claim retracted)
 *     │                  LIVE (the target is the ACTIVE owner, which is what the other
 *     │                    │   nodes watch)        TARGET ──OWNER_LOCAL (restart)──► LIVE
 *     │                    │ VMIM_SUCCEEDED  (TARGET/CLAIMING x VMIM_SUCCEEDED go here at once)
 *     │ TIMER              ▼
 *     └──────────────── TIMEWAIT (convergence timer; then back to route_metric)
 *
 *   BASE/LIVE/TIMEWAIT ──OWNER_REMOTE──► SOURCE (the VM is active on another node: no
 *                                        local route; that node's /32 takes over)
 *   SOURCE ──VMIM_FAILED / OWNER_LOCAL──► BASE (rolled back: route and owner back)
 *   TARGET/CLAIMING/LIVE ──VMIM_FAILED, POD_ENDED──► RETIRED (torn down: no route, owner
 *                                               returned to the source)
 *
 * The owner actions (MIG_A_OWNER_*) only issue the compare-and-swap (agent/swapq.h);
 * its answer comes back as an event: SWAP_DONE (done, or nothing left to do) or
 * SWAP_FAILED (it will not get better: someone else holds the slot, the addresses are
 * gone). Transient failures (API server unreachable) are retried by the caller with
 * backoff while the state still wants the action, and produce no event. Only the
 * answer to the latest owner action of a machine is fed; the answer to a RETURN or
 * RECLAIM changes no state (NOOP cells), only the TAKE of CLAIMING does.
 *   any ──POD_DELETED──► endpoint forgotten (MIG_A_FORGET)
 *
 * Every cell is one of three kinds: a transition (MIG_CELL_MOVE: log at info), an
 * expected repeat that changes nothing (MIG_CELL_NOOP: QEMU announces five times, the
 * annotation follows the announcement; log at debug), or an event that makes no sense
 * in that state (MIG_CELL_INVALID: ignored, logged as a warning).
 *
 * Outcomes (metric kvnet_migrations_total{outcome}) are counted on the TARGET node only,
 * once per migration: succeeded when the VMIM reaches Succeeded while TARGET or LIVE,
 * failed when it reaches Failed, aborted when the target pod ends or is deleted first.
 *
 * Log lines (the lab's demo timeline parses them; these names are stable):
 *   msg="migration <cell msg>"  the cell's message, e.g. "migration live"
 *   vmi=NS/NAME pod=NAME        the VM and this endpoint's pod
 *   from=STATE to=STATE event=EVENT   mig_state_name(), mig_event_name()
 *   ip=ADDR[,ADDR]              the endpoint's addresses
 *   ifname=kvXXXXXXXXXXX        the host veth
 *   event_ts=S.UUUUUU           time of the event (unix seconds; for an announcement the
 *                               frame's kernel timestamp)
 *   trigger=announcement|annotation|succeeded|owner   what made it live (mig_trigger_name)
 *   announce_ts=S.UUUUUU        kernel timestamp of the announcement frame (unix seconds)
 *   route_ts=S.UUUUUU           when the kernel acked the RTM_NEWROUTE (unix seconds)
 *   latency_us=N                route_ts - announce_ts in microseconds
 *   outcome=succeeded|failed|aborted   when the cell counts one
 *   metric=N                    the route metric installed
 */
#ifndef KVNET_AGENT_MIGRATE_H
#define KVNET_AGENT_MIGRATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/addr.h"

#define MIG_IPS_MAX 4	  /* addresses of one endpoint (one per family in practice) */
#define MIG_NAME_MAX 253  /* Kubernetes object names */
#define MIG_UID_MAX 64	  /* uids */
#define MIG_ACTS_MAX 5	  /* actions of one cell */

enum mig_state {
	MIG_BASE,     /* no migration in progress: routed at route_metric (or not ours) */
	MIG_TARGET,   /* migration target, dark, announcement detection armed */
	MIG_CLAIMING, /* target running the VM: route at migration_metric, owner CAS pending */
	MIG_LIVE,     /* target running the VM: route at migration_metric, owner taken */
	MIG_TIMEWAIT, /* migration succeeded: convergence timer running */
	MIG_SOURCE,   /* the VM is active on another node: no local route */
	MIG_RETIRED,  /* done here (failed target, finished source): waits for deletion */
	MIG_N_STATES
};

enum mig_event {
	MIG_EV_TARGET_POD,	 /* the pod is a migration target and its veth exists */
	MIG_EV_ANNOUNCE,	 /* GARP / RARP / unsolicited NA for the VM on its veth */
	MIG_EV_READY_ANNOTATION, /* kubevirt.io/migration-target-ready-timestamp appeared */
	MIG_EV_VMIM_SUCCEEDED,	 /* the endpoint's migration reached Succeeded */
	MIG_EV_VMIM_FAILED,	 /* the endpoint's migration reached Failed */
	MIG_EV_POD_ENDED,	 /* the pod's phase became Succeeded or Failed */
	MIG_EV_POD_DELETED,	 /* the pod is gone */
	MIG_EV_OWNER_LOCAL,	 /* the VM's active IPAM owner is this pod */
	MIG_EV_OWNER_REMOTE,	 /* the VM's active IPAM owner is a pod on another node */
	MIG_EV_TIMER,		 /* the convergence timer fired */
	MIG_EV_SWAP_DONE,	 /* the owner CAS of the latest owner action succeeded */
	MIG_EV_SWAP_FAILED,	 /* it failed for good (not a transient error) */
	MIG_N_EVENTS
};

enum mig_act_kind {
	MIG_A_ARM,	     /* arm announcement detection on the endpoint's veth */
	MIG_A_DISARM,	     /* disarm it */
	MIG_A_ROUTE_MIGRATE, /* host /32 and /128 dev veth at `metric` (migration_metric) */
	MIG_A_ROUTE_NORMAL,  /* host routes at `metric` (route_metric), drop the others */
	MIG_A_ROUTE_DEL,     /* no host route for the endpoint on this node */
	MIG_A_OWNER_TAKE,    /* CAS (issued, answered by SWAP_*): this pod alternate -> active,
			      * old active -> alternate */
	MIG_A_OWNER_RETURN,  /* CAS: this pod active -> alternate, alternate -> active */
	MIG_A_OWNER_RECLAIM, /* CAS (source side): this pod alternate -> active again */
	MIG_A_PEER_RETRACT,  /* withdraw the claim the other agents were told (agent/peer.h) */
	MIG_A_TIMER_START,   /* start the convergence timer, `ms` */
	MIG_A_TIMER_STOP,    /* cancel it */
	MIG_A_FORGET,	     /* the endpoint is finished: the caller frees it */
};

enum mig_cell_kind {
	MIG_CELL_INVALID, /* not meaningful in this state: ignored, logged as a warning */
	MIG_CELL_NOOP,	  /* expected, changes nothing */
	MIG_CELL_MOVE,	  /* a transition (possibly to the same state) with actions */
};

enum mig_outcome {
	MIG_OUT_NONE,	   /* this cell counts no outcome */
	MIG_OUT_SUCCEEDED, /* the migration succeeded */
	MIG_OUT_FAILED,	   /* the VMIM failed */
	MIG_OUT_ABORTED,   /* the target pod ended or went away before success */
	MIG_N_OUTCOMES
};

enum mig_trigger {
	MIG_TRIG_NONE,	       /* not live (yet) */
	MIG_TRIG_ANNOUNCEMENT, /* an announcement on the target veth */
	MIG_TRIG_ANNOTATION,   /* the target-ready annotation (fallback) */
	MIG_TRIG_SUCCEEDED,    /* the VMIM succeeded before either was seen */
	MIG_TRIG_OWNER,	       /* the owner already pointed here (agent restart) */
};

/* One cell of the table. */
struct mig_cell {
	enum mig_cell_kind kind;		/* what the cell is */
	enum mig_state to;			/* next state (MOVE only) */
	enum mig_outcome outcome;		/* outcome counted (MOVE only) */
	enum mig_trigger trigger;		/* trigger recorded when going live, else NONE */
	const char *msg;			/* log message ("migration live"); NULL: none */
	unsigned n;				/* actions in act[] */
	enum mig_act_kind act[MIG_ACTS_MAX];	/* actions, in the order to carry out */
};

/* The table: mig_table[state][event]. Exposed for the unit tests and for docs. */
extern const struct mig_cell mig_table[MIG_N_STATES][MIG_N_EVENTS];

/* Numbers the machine puts into action records (from the configuration). */
struct mig_params {
	uint32_t route_metric;	   /* [network] route_metric (1024) */
	uint32_t migration_metric; /* [network] migration_metric (512) */
	uint64_t convergence_ms;   /* [migration] convergence_seconds * 1000 */
};

/* One local VM endpoint. The caller fills the identity fields (mig_ep_init() zeroes the
 * rest) and owns the storage; mig_step() changes state, trigger and the timestamps. */
struct mig_ep {
	enum mig_state state;		   /* current state */
	char ns[MIG_NAME_MAX + 1];	   /* pod namespace */
	char pod[MIG_NAME_MAX + 1];	   /* pod name */
	char pod_uid[MIG_UID_MAX + 1];	   /* pod uid (the endpoint's key) */
	char vmi[MIG_NAME_MAX + 1];	   /* VMI name (same namespace) */
	char vmim_uid[MIG_UID_MAX + 1];	   /* migration uid when a target, else "" */
	char ifname[16];		   /* host veth name */
	int ifindex;			   /* host veth ifindex; 0 = not known yet */
	unsigned n_ip;			   /* addresses in ip[] */
	struct ip_addr ip[MIG_IPS_MAX];	   /* the VM's addresses */
	bool has_mac;			   /* mac[] is known */
	uint8_t mac[6];			   /* the VM's MAC (RARP carries only that) */
	enum mig_trigger trigger;	   /* what made it live (MIG_TRIG_NONE before) */
	uint64_t announce_ns;		   /* kernel timestamp of the triggering frame
					    * (unix ns), 0 when not an announcement */
	uint64_t since_ns;		   /* event time of the last transition (unix ns) */
};

/* An event as fed to mig_step(). */
struct mig_ev {
	enum mig_event kind; /* which */
	uint64_t ts_ns;	     /* its time (unix ns): the frame's kernel timestamp for
			      * ANNOUNCE, the caller's clock otherwise */
};

/* One action for the caller to carry out. */
struct mig_action {
	enum mig_act_kind kind; /* what */
	uint32_t metric;	/* ROUTE_MIGRATE / ROUTE_NORMAL: the metric, else 0 */
	uint64_t ms;		/* TIMER_START: the delay, else 0 */
};

/* What one mig_step() did. */
struct mig_result {
	enum mig_cell_kind kind;		/* the cell's kind */
	enum mig_state from;			/* state before */
	enum mig_state to;			/* state after (= from unless MOVE) */
	enum mig_event event;			/* the event */
	enum mig_outcome outcome;		/* outcome to count, MIG_OUT_NONE if none */
	const char *msg;			/* the cell's log message or NULL */
	unsigned n;				/* actions in act[] */
	struct mig_action act[MIG_ACTS_MAX];	/* to carry out in this order */
};

/* Zero ep and put it in MIG_BASE. */
void mig_ep_init(struct mig_ep *ep);

/* Feed event ev to ep: look up its cell, move ep (MOVE cells: state, and when the cell
 * goes live the trigger and, for ANNOUNCE, announce_ns = ev->ts_ns; since_ns = ev->ts_ns),
 * and fill out with the cell's actions parameterised from p. INVALID and NOOP cells
 * change nothing and return no actions. An out-of-range state or event is reported as
 * an INVALID cell (never read out of the table). */
void mig_step(struct mig_ep *ep, const struct mig_params *p, const struct mig_ev *ev,
	      struct mig_result *out);

/* True when an announcement seen on ifindex for ip (family 0 = none: a RARP) or mac
 * (NULL = none) belongs to ep: the interface must be ep's veth, and the IP one of ep's
 * addresses or the MAC ep's MAC. */
bool mig_announce_match(const struct mig_ep *ep, int ifindex, const struct ip_addr *ip,
			const uint8_t *mac);

/* Which owner event the VM's active owner (uid, node) means for ep on node `self`:
 * MIG_EV_OWNER_LOCAL when the uid is ep's pod, MIG_EV_OWNER_REMOTE when it is a pod on
 * another (named) node, MIG_N_EVENTS (no event) otherwise (empty slot, another pod on
 * this node). */
enum mig_event mig_owner_event(const struct mig_ep *ep, const char *active_uid,
			       const char *active_node, const char *self);

/* The owner compare-and-swap of MIG_A_OWNER_TAKE / _RECLAIM (take) and _RETURN (!take),
 * as an ipam_ds_fn body (pure: edits st). The VM's handle is the one holding ep's first
 * allocated address; every address of the handle is checked and swapped on its own
 * (blocks are separate objects: a half-done earlier write can leave them different, and
 * this repairs them), all or nothing. take: where ep's pod holds the ALTERNATE slot it
 * becomes active and the previous active owner (the source) the alternate (or the slot
 * is emptied when there was none). !take: where ep's pod holds the ACTIVE slot the
 * alternate must hold a pod; the two swap. Addresses already done (take: ep active;
 * !take: ep not active) are left alone; all done is 0 with *changed false. -ENOENT: no allocation holds ep's addresses, or nobody to give
 * back to; -EBUSY: ep's pod does not hold the slot it would leave (e names who does). */
struct ipam_state;
struct err;
int mig_owner_swap(struct ipam_state *st, const struct mig_ep *ep, bool take, bool *changed,
		   struct err *e);

/* Names for logs and metrics: "base", "target", "claiming", "live", "timewait", "source",
 * "retired"; "target_pod", "announce", "ready_annotation", "vmim_succeeded", "vmim_failed",
 * "pod_ended", "pod_deleted", "owner_local", "owner_remote", "timer", "swap_done",
 * "swap_failed"; action names;
 * "", "succeeded", "failed", "aborted"; "", "announcement", "annotation", "succeeded",
 * "owner". "?" for a value out of range. */
const char *mig_state_name(enum mig_state s);
const char *mig_event_name(enum mig_event ev);
const char *mig_act_name(enum mig_act_kind a);
const char *mig_outcome_name(enum mig_outcome o);
const char *mig_trigger_name(enum mig_trigger t);

#endif
