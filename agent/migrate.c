/* migrate — the migration state x event table and the pure step function. */
#include "agent/migrate.h"

#include "ipam/ipam.h"
#include "lib/err.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

/* Cell builders. Every cell of the table is written out, so a reader sees each state's
 * answer to each event; INVALID cells are ignored and logged as warnings by the caller. */
#define INVALID { .kind = MIG_CELL_INVALID }
#define NOOP { .kind = MIG_CELL_NOOP }
#define NACT(...) (sizeof((enum mig_act_kind[]){ __VA_ARGS__ }) / sizeof(enum mig_act_kind))
#define MOVE(st, out, trig, m, ...)                                                         \
	{ .kind = MIG_CELL_MOVE, .to = (st), .outcome = (out), .trigger = (trig), .msg = (m),  \
	  .n = NACT(__VA_ARGS__), .act = { __VA_ARGS__ } }
#define MOVE0(st, out, m)                                                                   \
	{ .kind = MIG_CELL_MOVE, .to = (st), .outcome = (out), .trigger = MIG_TRIG_NONE,       \
	  .msg = (m), .n = 0 }

#define O_NONE MIG_OUT_NONE
#define T_NONE MIG_TRIG_NONE

/* The order of actions matters: the route goes in first (it is what moves the
 * traffic, and its ack ends the announcement-to-route latency), capture is disarmed
 * next, and the owner compare-and-swap (an API round trip, issued off the loop; its
 * answer comes back as SWAP_DONE / SWAP_FAILED) comes last. */
const struct mig_cell mig_table[MIG_N_STATES][MIG_N_EVENTS] = {
	[MIG_BASE] = {
		[MIG_EV_TARGET_POD] = MOVE(MIG_TARGET, O_NONE, T_NONE, "migration target armed",
					   MIG_A_ROUTE_DEL, MIG_A_ARM),
		[MIG_EV_ANNOUNCE] = NOOP, /* a running VM announcing itself (boot, link up) */
		[MIG_EV_READY_ANNOTATION] = NOOP, /* a finished target keeps the annotation */
		[MIG_EV_VMIM_SUCCEEDED] = NOOP,	  /* seen after the owner moved, or old */
		[MIG_EV_VMIM_FAILED] = NOOP,	  /* failed before cut-over: source keeps all */
		[MIG_EV_POD_ENDED] = MOVE(MIG_RETIRED, O_NONE, T_NONE, "migration endpoint ended",
					  MIG_A_ROUTE_DEL),
		[MIG_EV_POD_DELETED] = MOVE(MIG_RETIRED, O_NONE, T_NONE, NULL, MIG_A_FORGET),
		[MIG_EV_OWNER_LOCAL] = NOOP,
		[MIG_EV_OWNER_REMOTE] = MOVE(MIG_SOURCE, O_NONE, T_NONE, "migration source handed over",
					     MIG_A_ROUTE_DEL),
		[MIG_EV_TIMER] = INVALID,
		[MIG_EV_SWAP_DONE] = NOOP,   /* a RECLAIM's answer (rolled back source) */
		[MIG_EV_SWAP_FAILED] = NOOP, /* the same, failed: logged with the action */
	},
	[MIG_TARGET] = {
		[MIG_EV_TARGET_POD] = NOOP, /* the pod was updated, still a target */
		[MIG_EV_ANNOUNCE] = MOVE(MIG_CLAIMING, O_NONE, MIG_TRIG_ANNOUNCEMENT,
					 "migration live", MIG_A_ROUTE_MIGRATE, MIG_A_DISARM,
					 MIG_A_OWNER_TAKE),
		[MIG_EV_READY_ANNOTATION] = MOVE(MIG_CLAIMING, O_NONE, MIG_TRIG_ANNOTATION,
						 "migration live", MIG_A_ROUTE_MIGRATE,
						 MIG_A_DISARM, MIG_A_OWNER_TAKE),
		[MIG_EV_VMIM_SUCCEEDED] = MOVE(MIG_TIMEWAIT, MIG_OUT_SUCCEEDED, MIG_TRIG_SUCCEEDED,
					       "migration live", MIG_A_ROUTE_MIGRATE,
					       MIG_A_DISARM, MIG_A_OWNER_TAKE,
					       MIG_A_TIMER_START),
		[MIG_EV_VMIM_FAILED] = MOVE(MIG_RETIRED, MIG_OUT_FAILED, T_NONE, "migration failed",
					    MIG_A_DISARM, MIG_A_ROUTE_DEL),
		[MIG_EV_POD_ENDED] = MOVE(MIG_RETIRED, MIG_OUT_ABORTED, T_NONE, "migration aborted",
					  MIG_A_DISARM, MIG_A_ROUTE_DEL),
		[MIG_EV_POD_DELETED] = MOVE(MIG_RETIRED, MIG_OUT_ABORTED, T_NONE, "migration aborted",
					    MIG_A_DISARM, MIG_A_FORGET),
		[MIG_EV_OWNER_LOCAL] = MOVE(MIG_LIVE, O_NONE, MIG_TRIG_OWNER, "migration live",
					    MIG_A_ROUTE_MIGRATE, MIG_A_DISARM),
		[MIG_EV_OWNER_REMOTE] = NOOP, /* the source holds it until cut-over */
		[MIG_EV_TIMER] = INVALID,
		[MIG_EV_SWAP_DONE] = NOOP,   /* not claiming (any more): nothing to confirm */
		[MIG_EV_SWAP_FAILED] = NOOP, /* already reverted */
	},
	[MIG_CLAIMING] = {
		[MIG_EV_TARGET_POD] = NOOP,
		[MIG_EV_ANNOUNCE] = NOOP,	   /* QEMU announces several rounds */
		[MIG_EV_READY_ANNOTATION] = NOOP, /* follows the announcement */
		[MIG_EV_VMIM_SUCCEEDED] = MOVE(MIG_TIMEWAIT, MIG_OUT_SUCCEEDED, T_NONE,
					       "migration succeeded", MIG_A_TIMER_START),
		/* the owner may never have moved: the other agents' claim routes go now */
		[MIG_EV_VMIM_FAILED] = MOVE(MIG_RETIRED, MIG_OUT_FAILED, T_NONE, "migration failed",
					    MIG_A_ROUTE_DEL, MIG_A_OWNER_RETURN, MIG_A_PEER_RETRACT),
		[MIG_EV_POD_ENDED] = MOVE(MIG_RETIRED, MIG_OUT_ABORTED, T_NONE, "migration aborted",
					  MIG_A_ROUTE_DEL, MIG_A_OWNER_RETURN, MIG_A_PEER_RETRACT),
		[MIG_EV_POD_DELETED] = MOVE(MIG_RETIRED, MIG_OUT_ABORTED, T_NONE, "migration aborted",
					    MIG_A_ROUTE_DEL, MIG_A_OWNER_RETURN, MIG_A_PEER_RETRACT,
					    MIG_A_FORGET),
		/* the watch delivered our CAS before its answer came back */
		[MIG_EV_OWNER_LOCAL] = MOVE0(MIG_LIVE, O_NONE, "migration owner taken"),
		/* the blocks as they were before our CAS: its answer decides */
		[MIG_EV_OWNER_REMOTE] = NOOP,
		[MIG_EV_TIMER] = INVALID,
		[MIG_EV_SWAP_DONE] = MOVE0(MIG_LIVE, O_NONE, "migration owner taken"),
		/* the API keeps the source: give the traffic back (dark, disarmed; the VMIM's
		 * end, the annotation or the API naming this pod decide what comes next), and
		 * the other agents, told of the claim, route by the API again at once */
		[MIG_EV_SWAP_FAILED] = MOVE(MIG_TARGET, O_NONE, T_NONE, "migration claim reverted",
					    MIG_A_ROUTE_DEL, MIG_A_PEER_RETRACT),
	},
	[MIG_LIVE] = {
		[MIG_EV_TARGET_POD] = NOOP,
		[MIG_EV_ANNOUNCE] = NOOP,	   /* QEMU announces several rounds */
		[MIG_EV_READY_ANNOTATION] = NOOP, /* follows the announcement */
		[MIG_EV_VMIM_SUCCEEDED] = MOVE(MIG_TIMEWAIT, MIG_OUT_SUCCEEDED, T_NONE,
					       "migration succeeded", MIG_A_TIMER_START),
		[MIG_EV_VMIM_FAILED] = MOVE(MIG_RETIRED, MIG_OUT_FAILED, T_NONE, "migration failed",
					    MIG_A_ROUTE_DEL, MIG_A_OWNER_RETURN),
		[MIG_EV_POD_ENDED] = MOVE(MIG_RETIRED, MIG_OUT_ABORTED, T_NONE, "migration aborted",
					  MIG_A_ROUTE_DEL, MIG_A_OWNER_RETURN),
		[MIG_EV_POD_DELETED] = MOVE(MIG_RETIRED, MIG_OUT_ABORTED, T_NONE, "migration aborted",
					    MIG_A_ROUTE_DEL, MIG_A_OWNER_RETURN, MIG_A_FORGET),
		[MIG_EV_OWNER_LOCAL] = NOOP, /* our own compare-and-swap coming back */
		[MIG_EV_OWNER_REMOTE] = MOVE(MIG_SOURCE, O_NONE, T_NONE,
					     "migration source handed over", MIG_A_ROUTE_DEL),
		[MIG_EV_TIMER] = INVALID,
		[MIG_EV_SWAP_DONE] = NOOP,   /* the watch was first (OWNER_LOCAL) */
		[MIG_EV_SWAP_FAILED] = NOOP, /* the API names this pod already */
	},
	[MIG_TIMEWAIT] = {
		[MIG_EV_TARGET_POD] = NOOP,
		[MIG_EV_ANNOUNCE] = NOOP,
		[MIG_EV_READY_ANNOTATION] = NOOP,
		[MIG_EV_VMIM_SUCCEEDED] = NOOP,
		[MIG_EV_VMIM_FAILED] = INVALID, /* a succeeded migration does not fail */
		[MIG_EV_POD_ENDED] = MOVE(MIG_RETIRED, O_NONE, T_NONE, "migration endpoint ended",
					  MIG_A_TIMER_STOP, MIG_A_ROUTE_DEL),
		[MIG_EV_POD_DELETED] = MOVE(MIG_RETIRED, O_NONE, T_NONE, NULL, MIG_A_TIMER_STOP,
					    MIG_A_ROUTE_DEL, MIG_A_FORGET),
		[MIG_EV_OWNER_LOCAL] = NOOP,
		/* a second migration during the convergence period */
		[MIG_EV_OWNER_REMOTE] = MOVE(MIG_SOURCE, O_NONE, T_NONE,
					     "migration source handed over", MIG_A_TIMER_STOP,
					     MIG_A_ROUTE_DEL),
		[MIG_EV_TIMER] = MOVE(MIG_BASE, O_NONE, T_NONE, "migration converged",
				      MIG_A_ROUTE_NORMAL),
		[MIG_EV_SWAP_DONE] = NOOP,   /* the take of a migration that already succeeded */
		[MIG_EV_SWAP_FAILED] = NOOP, /* KubeVirt says it runs here: keep it (logged) */
	},
	[MIG_SOURCE] = {
		[MIG_EV_TARGET_POD] = INVALID, /* a source pod never becomes a target */
		[MIG_EV_ANNOUNCE] = NOOP,
		[MIG_EV_READY_ANNOTATION] = NOOP,
		[MIG_EV_VMIM_SUCCEEDED] = NOOP, /* the pod ends next */
		[MIG_EV_VMIM_FAILED] = MOVE(MIG_BASE, O_NONE, T_NONE, "migration rolled back",
					    MIG_A_ROUTE_NORMAL, MIG_A_OWNER_RECLAIM),
		[MIG_EV_POD_ENDED] = MOVE0(MIG_RETIRED, O_NONE, "migration source ended"),
		[MIG_EV_POD_DELETED] = MOVE(MIG_RETIRED, O_NONE, T_NONE, NULL, MIG_A_FORGET),
		[MIG_EV_OWNER_LOCAL] = MOVE(MIG_BASE, O_NONE, T_NONE, "migration rolled back",
					    MIG_A_ROUTE_NORMAL),
		[MIG_EV_OWNER_REMOTE] = NOOP,
		[MIG_EV_TIMER] = INVALID,
		[MIG_EV_SWAP_DONE] = NOOP,   /* an answer for an earlier state */
		[MIG_EV_SWAP_FAILED] = NOOP,
	},
	[MIG_RETIRED] = {
		[MIG_EV_TARGET_POD] = NOOP, /* a failed target keeps its label */
		[MIG_EV_ANNOUNCE] = NOOP,
		[MIG_EV_READY_ANNOTATION] = NOOP,
		[MIG_EV_VMIM_SUCCEEDED] = NOOP,
		[MIG_EV_VMIM_FAILED] = NOOP,
		[MIG_EV_POD_ENDED] = NOOP,
		[MIG_EV_POD_DELETED] = MOVE(MIG_RETIRED, O_NONE, T_NONE, NULL, MIG_A_FORGET),
		[MIG_EV_OWNER_LOCAL] = NOOP,
		[MIG_EV_OWNER_REMOTE] = NOOP,
		[MIG_EV_TIMER] = INVALID,
		[MIG_EV_SWAP_DONE] = NOOP,   /* the RETURN's answer */
		[MIG_EV_SWAP_FAILED] = NOOP, /* the same, failed: logged with the action */
	},
};

void mig_ep_init(struct mig_ep *ep)
{
	memset(ep, 0, sizeof(*ep));
	ep->state = MIG_BASE;
	ep->trigger = MIG_TRIG_NONE;
}

static uint32_t act_metric(enum mig_act_kind a, const struct mig_params *p)
{
	switch (a) {
	case MIG_A_ROUTE_MIGRATE:
		return p->migration_metric;
	case MIG_A_ROUTE_NORMAL:
		return p->route_metric;
	case MIG_A_ARM:
	case MIG_A_DISARM:
	case MIG_A_ROUTE_DEL:
	case MIG_A_OWNER_TAKE:
	case MIG_A_OWNER_RETURN:
	case MIG_A_OWNER_RECLAIM:
	case MIG_A_PEER_RETRACT:
	case MIG_A_TIMER_START:
	case MIG_A_TIMER_STOP:
	case MIG_A_FORGET:
		return 0;
	}
	return 0;
}

void mig_step(struct mig_ep *ep, const struct mig_params *p, const struct mig_ev *ev,
	      struct mig_result *out)
{
	memset(out, 0, sizeof(*out));
	out->from = ep->state;
	out->to = ep->state;
	out->event = ev->kind;
	out->kind = MIG_CELL_INVALID;
	if ((unsigned)ep->state >= MIG_N_STATES || (unsigned)ev->kind >= MIG_N_EVENTS)
		return;
	const struct mig_cell *c = &mig_table[ep->state][ev->kind];
	out->kind = c->kind;
	if (c->kind != MIG_CELL_MOVE)
		return;
	out->to = c->to;
	out->outcome = c->outcome;
	out->msg = c->msg;
	out->n = c->n;
	for (unsigned i = 0; i < c->n && i < MIG_ACTS_MAX; i++) {
		out->act[i].kind = c->act[i];
		out->act[i].metric = act_metric(c->act[i], p);
		out->act[i].ms = c->act[i] == MIG_A_TIMER_START ? p->convergence_ms : 0;
	}
	if (c->trigger != MIG_TRIG_NONE) {
		ep->trigger = c->trigger;
		ep->announce_ns = c->trigger == MIG_TRIG_ANNOUNCEMENT ? ev->ts_ns : 0;
	} else if (c->to == MIG_TARGET || c->to == MIG_SOURCE) {
		/* a new hand-over begins: forget how the previous one went live */
		ep->trigger = MIG_TRIG_NONE;
		ep->announce_ns = 0;
	}
	ep->state = c->to;
	ep->since_ns = ev->ts_ns;
}

bool mig_announce_match(const struct mig_ep *ep, int ifindex, const struct ip_addr *ip,
			const uint8_t *mac)
{
	if (ifindex <= 0 || ep->ifindex != ifindex)
		return false;
	if (ip && (ip->family == AF_INET || ip->family == AF_INET6)) {
		for (unsigned i = 0; i < ep->n_ip && i < MIG_IPS_MAX; i++)
			if (ip_eq(&ep->ip[i], ip))
				return true;
	}
	return mac && ep->has_mac && memcmp(mac, ep->mac, 6) == 0;
}

enum mig_event mig_owner_event(const struct mig_ep *ep, const char *active_uid,
			       const char *active_node, const char *self)
{
	if (!active_uid || !active_uid[0])
		return MIG_N_EVENTS;
	if (ep->pod_uid[0] && strcmp(active_uid, ep->pod_uid) == 0)
		return MIG_EV_OWNER_LOCAL;
	if (active_node && active_node[0] && self && strcmp(active_node, self) != 0)
		return MIG_EV_OWNER_REMOTE;
	return MIG_N_EVENTS;
}

int mig_owner_swap(struct ipam_state *st, const struct mig_ep *ep, bool take, bool *changed,
		   struct err *e)
{
	const struct ipam_attrs *at = NULL;
	*changed = false;
	for (unsigned i = 0; i < ep->n_ip && i < MIG_IPS_MAX && !at; i++) {
		struct ip_addr ia;
		memset(&ia, 0, sizeof(ia));
		ia.family = ep->ip[i].family;
		memcpy(ia.b, ep->ip[i].b, sizeof(ia.b));
		at = ipam_lookup_ip(st, &ia);
	}
	if (!at)
		return err_setx(e, ENOENT, "pod %s/%s: no allocation holds its addresses", ep->ns,
				ep->pod);
	if (!ep->pod_uid[0])
		return err_setx(e, EINVAL, "pod %s/%s: uid not known", ep->ns, ep->pod);
	const struct ipam_handle *h = ipam_handle_find(st, at->handle);
	if (!h)
		return err_setx(e, ENOENT, "handle %s: not found", at->handle);
	/* Every address of the handle on its own: the blocks are separate objects, so a
	 * write that failed half way can leave the addresses with different owners, and
	 * this is what repairs them. Check all first, then change (all or nothing). */
	struct ipam_owner act[IPAM_HANDLE_IPS_MAX], alt[IPAM_HANDLE_IPS_MAX];
	bool swap[IPAM_HANDLE_IPS_MAX];
	for (unsigned i = 0; i < h->n && i < IPAM_HANDLE_IPS_MAX; i++) {
		const struct ipam_attrs *a = ipam_lookup_ip(st, &h->ip[i]);
		char buf[64];
		if (!a)
			return err_setx(e, ENOENT, "handle %s: address %s not allocated", h->id,
					ipam_addr_str(&h->ip[i], buf, sizeof(buf)));
		act[i] = a->active;
		alt[i] = a->alternate;
		bool me_act = strcmp(a->active.uid, ep->pod_uid) == 0;
		bool me_alt = strcmp(a->alternate.uid, ep->pod_uid) == 0;
		if (take) {
			swap[i] = !me_act;
			if (!me_act && !me_alt)
				return err_setx(e, EBUSY, "handle %s: pod %s/%s is not the alternate "
						"owner (%s holds it)", h->id, ep->ns, ep->pod,
						a->alternate.uid[0] ? a->alternate.name : "nobody");
		} else {
			swap[i] = me_act; /* not active (any more): nothing to give back */
			if (me_act && !a->alternate.uid[0])
				return err_setx(e, ENOENT, "handle %s: no alternate owner to give "
						"the VM back to", h->id);
		}
	}
	for (unsigned i = 0; i < h->n && i < IPAM_HANDLE_IPS_MAX; i++) {
		if (!swap[i])
			continue;
		int rc = ipam_owner_put(st, &h->ip[i], IPAM_ACTIVE, &alt[i], e);
		if (rc == 0)
			rc = ipam_owner_put(st, &h->ip[i], IPAM_ALTERNATE,
					    act[i].uid[0] ? &act[i] : NULL, e);
		if (rc < 0)
			return rc;
		*changed = true;
	}
	return 0;
}

const char *mig_state_name(enum mig_state s)
{
	switch (s) {
	case MIG_BASE:
		return "base";
	case MIG_TARGET:
		return "target";
	case MIG_CLAIMING:
		return "claiming";
	case MIG_LIVE:
		return "live";
	case MIG_TIMEWAIT:
		return "timewait";
	case MIG_SOURCE:
		return "source";
	case MIG_RETIRED:
		return "retired";
	case MIG_N_STATES:
		break;
	}
	return "?";
}

const char *mig_event_name(enum mig_event ev)
{
	switch (ev) {
	case MIG_EV_TARGET_POD:
		return "target_pod";
	case MIG_EV_ANNOUNCE:
		return "announce";
	case MIG_EV_READY_ANNOTATION:
		return "ready_annotation";
	case MIG_EV_VMIM_SUCCEEDED:
		return "vmim_succeeded";
	case MIG_EV_VMIM_FAILED:
		return "vmim_failed";
	case MIG_EV_POD_ENDED:
		return "pod_ended";
	case MIG_EV_POD_DELETED:
		return "pod_deleted";
	case MIG_EV_OWNER_LOCAL:
		return "owner_local";
	case MIG_EV_OWNER_REMOTE:
		return "owner_remote";
	case MIG_EV_TIMER:
		return "timer";
	case MIG_EV_SWAP_DONE:
		return "swap_done";
	case MIG_EV_SWAP_FAILED:
		return "swap_failed";
	case MIG_N_EVENTS:
		break;
	}
	return "?";
}

const char *mig_act_name(enum mig_act_kind a)
{
	switch (a) {
	case MIG_A_ARM:
		return "arm";
	case MIG_A_DISARM:
		return "disarm";
	case MIG_A_ROUTE_MIGRATE:
		return "route_migrate";
	case MIG_A_ROUTE_NORMAL:
		return "route_normal";
	case MIG_A_ROUTE_DEL:
		return "route_del";
	case MIG_A_OWNER_TAKE:
		return "owner_take";
	case MIG_A_OWNER_RETURN:
		return "owner_return";
	case MIG_A_OWNER_RECLAIM:
		return "owner_reclaim";
	case MIG_A_PEER_RETRACT:
		return "peer_retract";
	case MIG_A_TIMER_START:
		return "timer_start";
	case MIG_A_TIMER_STOP:
		return "timer_stop";
	case MIG_A_FORGET:
		return "forget";
	}
	return "?";
}

const char *mig_outcome_name(enum mig_outcome o)
{
	switch (o) {
	case MIG_OUT_NONE:
		return "";
	case MIG_OUT_SUCCEEDED:
		return "succeeded";
	case MIG_OUT_FAILED:
		return "failed";
	case MIG_OUT_ABORTED:
		return "aborted";
	case MIG_N_OUTCOMES:
		break;
	}
	return "?";
}

const char *mig_trigger_name(enum mig_trigger t)
{
	switch (t) {
	case MIG_TRIG_NONE:
		return "";
	case MIG_TRIG_ANNOUNCEMENT:
		return "announcement";
	case MIG_TRIG_ANNOTATION:
		return "annotation";
	case MIG_TRIG_SUCCEEDED:
		return "succeeded";
	case MIG_TRIG_OWNER:
		return "owner";
	}
	return "?";
}
