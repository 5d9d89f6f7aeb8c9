/* mignode — the node's migration machines: agent hooks and capture in, actions out. */
#include "agent/mignode.h"
#include "agent/blockobj.h"

#include "agent/agent.h"
#include "agent/gateway.h"
#include "agent/l2.h"
#include "agent/metrics.h"
#include "agent/peer.h"
#include "agent/swapq.h"
#include "conf/conf.h"
#include "ipam/ds.h"
#include "ipam/ds_file.h"
#include "ipam/ds_kube.h"
#include "ipam/ipam.h"
#include "kube/informer.h"
#include "kube/kubevirt.h"
#include "lib/json.h"
#include "kube/types.h"
#include "lib/err.h"
#include "lib/evloop.h"
#include "lib/log.h"
#include "net/announce.h"
#include "net/link.h"
#include "net/packet.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define MIGNODE_API_TIMEOUT_MS 10000 /* the owner worker's API client I/O timeout */
#define ANNOTATION_READY "kubevirt.io/migration-target-ready-timestamp"
#define LABEL_MIGRATION "kubevirt.io/migrationJobUID"

struct mignode;

/* One machine and what the node keeps beside it. */
struct mn_ep {
	struct mig_ep m;		  /* the machine (agent/migrate.h) */
	struct mignode *node;		  /* the node it belongs to */
	struct agent_ep *aep;		  /* the agent's endpoint (valid until ep_removed) */
	char cid[IPAM_CID_MAX + 1];	  /* its key: container id ... */
	char cifname[IPAM_IFNAME_MAX + 1]; /* ... and interface in the pod */
	struct ev_timer *timer;		  /* convergence timer (created on first use) */
	bool armed;			  /* announcements on its veth count */
	bool forget;			  /* MIG_A_FORGET ran: free after the step */
	uint64_t id;			  /* key of its owner jobs (agent/swapq.h) */
	char handle[IPAM_NAME_MAX + 1];	  /* its IPAM handle, learned from the blocks (the
					   * fast path's key), "" until known */
	uint64_t gen;			  /* generation of its latest owner action: only
					   * that one's answer is fed to the machine */
	enum mig_act_kind own;		  /* that action */
	uint64_t issued_us;		  /* when its current try was issued (monotonic) */
	unsigned attempts;		  /* tries of it so far */
	struct ev_timer *retry;		  /* owner CAS retry timer (created on first use) */
	bool pending;			  /* a retry of `own` is scheduled on it */
	uint64_t backoff_ms;		  /* delay before the next try */
	char remote_node[IPAM_NAME_MAX + 1]; /* where the active owner went (logs) */
	struct ip_addr announced;	  /* the address the triggering frame named (family 0:
					   * none, e.g. a RARP): its route goes in first */
	enum { VOUCH_UNKNOWN, VOUCH_YES, VOUCH_NO } vouch; /* a target's standing under
					   * kube/kubevirt.h, decided when its pod, VMI or VMIM
					   * changes (redecide), so an announcement only reads it */
	char why[256];			  /* VOUCH_NO: the reason */
	bool told;			  /* that refusal was logged and counted */
};

/* The last IPAMBlock / IPAMHandle objects the informers delivered, for the owner swap's
 * fast path (no LIST: the records come from here, the writes are still compare-and-swap
 * on their resourceVersion, and a conflict falls back to the full update). */
struct mn_rec {
	enum ipam_kind kind;	      /* IPAM_BLOCK or IPAM_HANDLE */
	char name[IPAM_NAME_MAX + 1]; /* object name */
	char *json;		      /* the whole object; owned */
	size_t len;		      /* its length */
};

struct mignode {
	struct agent *a;	      /* the agent (not owned) */
	struct ipam_ds *ds;	      /* datastore given by the caller, or NULL */
	struct swapq *q;	      /* the owner compare-and-swap, off the loop */
	uint64_t next_id;	      /* the next machine's id */
	struct pkt_sock *cap;	      /* capture socket, NULL when detection is off */
	struct ev_io *cap_io;	      /* its watcher */
	struct mn_ep **eps;	      /* machines; owned */
	unsigned n, cap_eps;	      /* used / allocated */
	unsigned stepping;	      /* > 0 while feed() runs (frees are deferred) */
	struct mn_rec *recs;	      /* cached IPAM objects; owned */
	unsigned n_recs, cap_recs;    /* used / allocated */
	struct agent_metric *m_swap;  /* kvnet_migration_owner_swaps_total{path} */
	struct agent_metric *m_out;   /* kvnet_migrations_total{outcome} */
	struct agent_metric *m_lat;   /* kvnet_migration_announce_to_route_seconds */
	struct agent_metric *m_state; /* kvnet_migration_endpoints{state} */
	struct agent_metric *m_ann;   /* kvnet_migration_announcements_total{match} */
	struct agent_metric *m_round; /* kvnet_migration_cutover_round_seconds */
	struct agent_metric *m_oloop; /* kvnet_migration_owner_loop_seconds */
	struct agent_metric *m_oswap; /* kvnet_migration_owner_swap_seconds */
};

static uint64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* "S.UUUUUU" (unix seconds with microseconds) into buf. */
static const char *fmt_ts(uint64_t ns, char *buf, size_t cap)
{
	snprintf(buf, cap, "%llu.%06llu", (unsigned long long)(ns / 1000000000u),
		 (unsigned long long)(ns % 1000000000u / 1000u));
	return buf;
}

static void ips_fmt(const struct mig_ep *m, char *buf, size_t cap)
{
	size_t off = 0;
	buf[0] = '\0';
	for (unsigned i = 0; i < m->n_ip && i < MIG_IPS_MAX && off < cap; i++) {
		char a[IP_STRLEN];
		off += (size_t)snprintf(buf + off, cap - off, "%s%s", i ? "," : "",
					ip_fmt(&m->ip[i], a));
	}
	if (!buf[0])
		snprintf(buf, cap, "-");
}

static struct mig_params params(const struct mignode *n)
{
	const struct conf *c = agent_conf(n->a);
	struct mig_params p = {
		.route_metric = c->network.route_metric,
		.migration_metric = c->network.migration_metric,
		.convergence_ms = (uint64_t)c->migration.convergence_seconds * 1000u,
	};
	return p;
}

static void update_gauges(struct mignode *n)
{
	if (!n->m_state)
		return;
	for (unsigned s = 0; s < MIG_N_STATES; s++)
		agent_metric_set(n->m_state, mig_state_name(s), mignode_count(n, s));
}

/* ---- owner compare-and-swap -------------------------------------------------------- */

static const char *quotable(struct err *e);

static void rec_put(struct mignode *n, enum ipam_kind kind, const struct kube_obj *old,
		    const struct kube_obj *obj)
{
	const char *name = obj ? obj->name : old ? old->name : NULL;
	if (!name)
		return;
	struct mn_rec *r = NULL;
	for (unsigned i = 0; i < n->n_recs && !r; i++)
		if (n->recs[i].kind == kind && strcmp(n->recs[i].name, name) == 0)
			r = &n->recs[i];
	if (!obj) {
		if (r) {
			free(r->json);
			*r = n->recs[--n->n_recs];
		}
		return;
	}
	char *copy = malloc(obj->len + 1);
	if (!copy)
		return; /* the fast path will miss it and fall back */
	memcpy(copy, obj->json, obj->len);
	copy[obj->len] = '\0';
	if (!r) {
		if (n->n_recs == n->cap_recs) {
			unsigned nc = n->cap_recs ? 2 * n->cap_recs : 16;
			struct mn_rec *nr = realloc(n->recs, nc * sizeof(*nr));
			if (!nr) {
				free(copy);
				return;
			}
			n->recs = nr;
			n->cap_recs = nc;
		}
		r = &n->recs[n->n_recs++];
		memset(r, 0, sizeof(*r));
		r->kind = kind;
		snprintf(r->name, sizeof(r->name), "%s", name);
	}
	free(r->json);
	r->json = copy;
	r->len = obj->len;
}

/* The cached records of kind that `want` accepts as one LIST page ({"items":[...]},
 * malloc'd into *out, *len): a copy, no parse. -ENOMEM. */
static int rec_page(struct mignode *n, enum ipam_kind kind,
		    bool (*want)(const struct mn_rec *r, const void *arg), const void *arg,
		    char **out, size_t *len_out, unsigned *loaded, struct err *e)
{
	size_t cap = 16, len = 0;
	for (unsigned i = 0; i < n->n_recs; i++)
		cap += n->recs[i].len + 1;
	char *body = malloc(cap);
	if (!body)
		return err_set(e, ENOMEM, "migration: owner swap");
	len += (size_t)snprintf(body, cap, "{\"items\":[");
	*loaded = 0;
	for (unsigned i = 0; i < n->n_recs; i++) {
		const struct mn_rec *r = &n->recs[i];
		if (r->kind != kind || !want(r, arg))
			continue;
		if (*loaded)
			body[len++] = ',';
		memcpy(body + len, r->json, r->len);
		len += r->len;
		(*loaded)++;
	}
	body[len++] = ']';
	body[len++] = '}';
	body[len] = '\0';
	*out = body;
	*len_out = len;
	return 0;
}

/* A block that may hold one of the endpoint's addresses (its text names one). */
static bool want_block(const struct mn_rec *r, const void *arg)
{
	const struct mig_ep *m = arg;
	for (unsigned i = 0; i < m->n_ip; i++) {
		char a[IP_STRLEN + 2], q[IP_STRLEN + 4];
		snprintf(q, sizeof(q), "\"%s\"", ip_fmt(&m->ip[i], a));
		if (strstr(r->json, q))
			return true;
	}
	return false;
}

static bool want_handle(const struct mn_rec *r, const void *arg)
{
	return strcmp(r->name, (const char *)arg) == 0;
}

/* Learn x's handle from the cached blocks (a parse of the endpoint's blocks: done when
 * the endpoint appears, off the cut-over's path). */
static void learn_handle(struct mignode *n, struct mn_ep *x)
{
	char *body = NULL;
	size_t len = 0;
	unsigned loaded = 0;
	struct err e;
	if (x->handle[0] || rec_page(n, IPAM_BLOCK, want_block, &x->m, &body, &len, &loaded, &e) < 0)
		return;
	struct ipam_state st;
	ipam_state_init(&st);
	char cont[16];
	if (loaded && ipam_ds_kube_load_page(&st, IPAM_BLOCK, body, len, cont, sizeof(cont), &e) == 0)
		for (unsigned i = 0; i < x->m.n_ip && !x->handle[0]; i++) {
			struct ip_addr ia;
			memset(&ia, 0, sizeof(ia));
			ia.family = x->m.ip[i].family;
			memcpy(ia.b, x->m.ip[i].b, sizeof(ia.b));
			const struct ipam_attrs *at = ipam_lookup_ip(&st, &ia);
			if (at)
				snprintf(x->handle, sizeof(x->handle), "%s", at->handle);
		}
	ipam_state_free(&st);
	free(body);
}

/* The fast path's input from the informers' copies (agent/swapq.h): the endpoint's
 * blocks and handle as text, copied, not parsed (the worker parses, swaps and writes one
 * compare-and-swap PUT per changed block, and falls back to the full update, which is
 * authoritative, on any conflict). -ENOENT when something is not cached here. */
static int fast_copy(struct mignode *n, struct mn_ep *x, struct swapq_fast *f, struct err *e)
{
	unsigned loaded = 0;
	memset(f, 0, sizeof(*f));
	if (!x->handle[0])
		learn_handle(n, x);
	if (!x->handle[0])
		return err_setx(e, ENOENT, "migration: owner swap: handle not known from the blocks");
	int rc = rec_page(n, IPAM_BLOCK, want_block, &x->m, &f->blocks, &f->blocks_len, &loaded, e);
	if (rc == 0 && !loaded)
		rc = err_setx(e, ENOENT, "migration: owner swap: no cached block");
	if (rc == 0)
		rc = rec_page(n, IPAM_HANDLE, want_handle, x->handle, &f->handles, &f->handles_len,
			      &loaded, e);
	if (rc == 0 && loaded != 1)
		rc = err_setx(e, ENOENT, "migration: owner swap: handle %s not cached", x->handle);
	if (rc < 0) {
		free(f->blocks);
		free(f->handles);
		memset(f, 0, sizeof(*f));
	}
	return rc;
}

/* Issue owner action `kind` for x off the loop: its answer comes to on_swapped. */
static int owner_issue(struct mignode *n, struct mn_ep *x, enum mig_act_kind kind,
		       struct err *e)
{
	if (!n->q)
		return err_setx(e, ENOTCONN, "migration: owner swap: no datastore");
	struct swapq_fast fast = { 0 };
	if (!n->ds && agent_conf(n->a)->datastore.type == CONF_DATASTORE_KUBERNETES) {
		struct err fe;
		err_clear(&fe);
		if (fast_copy(n, x, &fast, &fe) < 0)
			log_fields(agent_log(n->a), LOG_LVL_DEBUG, "migration owner swap: full update",
				   "pod=%s/%s reason=\"%s\"", x->m.ns, x->m.pod, quotable(&fe));
	}
	x->issued_us = mono_us();
	return swapq_submit(n->q, &x->m, kind, x->id, x->gen, &fast, e);
}

/* ---- actions ---------------------------------------------------------------------- */

static void on_timer(struct ev_loop *loop, struct ev_timer *t, void *user);
static void on_retry(struct ev_loop *loop, struct ev_timer *t, void *user);

#define RETRY_FIRST_MS 100
#define RETRY_MAX_MS 5000

/* Errors that say the datastore is not reachable now (the API server restarting, ...):
 * the owner swap is tried again later. Anything else (someone else holds the slot, the
 * addresses are gone) will not get better by waiting. */
static bool transient(int rc)
{
	return rc != -EBUSY && rc != -ENOENT && rc != -EINVAL && rc != -ENOMEM;
}

/* Is the latest owner action still what the machine's state wants? */
static bool still_wanted(const struct mn_ep *x)
{
	switch (x->own) {
	case MIG_A_OWNER_TAKE:
		return x->m.state == MIG_CLAIMING || x->m.state == MIG_LIVE ||
		       x->m.state == MIG_TIMEWAIT || x->m.state == MIG_BASE;
	case MIG_A_OWNER_RECLAIM:
		return x->m.state == MIG_BASE;
	case MIG_A_OWNER_RETURN:
		return x->m.state == MIG_RETIRED;
	case MIG_A_ARM:
	case MIG_A_DISARM:
	case MIG_A_ROUTE_MIGRATE:
	case MIG_A_ROUTE_NORMAL:
	case MIG_A_ROUTE_DEL:
	case MIG_A_PEER_RETRACT:
	case MIG_A_TIMER_START:
	case MIG_A_TIMER_STOP:
	case MIG_A_FORGET:
		return false;
	}
	return false;
}

/* Schedule the next try of x's latest owner action (x->own) after the backoff. */
static void retry_later(struct mignode *n, struct mn_ep *x)
{
	struct err e;
	if (x->attempts <= 1)
		x->backoff_ms = RETRY_FIRST_MS;
	x->pending = true;
	if (!x->retry && ev_timer_add(agent_loop(n->a), x->backoff_ms, 0, on_retry, x, NULL,
				      &x->retry, &e) < 0) {
		x->pending = false;
		log_err(agent_log(n->a), LOG_LVL_WARN, &e);
		return;
	}
	ev_timer_arm(x->retry, x->backoff_ms, 0);
	x->backoff_ms = x->backoff_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : x->backoff_ms * 2;
}
static void feed(struct mn_ep *x, enum mig_event kind, uint64_t ts);
static void feed_swap(struct mn_ep *x, enum mig_event kind, const struct swapq_result *res);

/* What carrying out one step's actions found, for its log line. */
struct done {
	uint64_t route_ns;   /* ack of the last RTM_NEWROUTE of ROUTE_MIGRATE, 0 none */
	uint32_t metric;     /* metric installed, 0 none */
	const struct swapq_result *swap; /* SWAP_* events: the answer that made them */
	bool owner_ran;	     /* an owner action ran in this step */
	uint64_t owner_us;   /* loop time spent in the owner action (microseconds) */
	uint64_t route_us;   /* step start -> the data-plane actions done (monotonic us) */
	uint64_t round_us;   /* the whole step on the loop (monotonic us) */
	int failures;	     /* actions that failed (each logged) */
};

static void routes_clear(struct mignode *n, struct mn_ep *x)
{
	for (unsigned i = 0; i < x->m.n_ip; i++)
		agent_override_clear(n->a, &x->m.ip[i]);
}

/* Drop only this code's own routes (DEV overrides) of x's addresses: a peer route (VIA,
 * agent/peer.h) stays until the API's owner of that very address changes, the claim is
 * retracted or its hold runs out. A source handed over on its first block's owner change
 * would otherwise route its other address (the v6 block not written yet) to its own
 * veth again for those milliseconds. */
static void routes_clear_own(struct mignode *n, struct mn_ep *x)
{
	for (unsigned i = 0; i < x->m.n_ip; i++) {
		const struct agent_override *o = agent_override_get(n->a, &x->m.ip[i]);
		if (o && o->kind == AGENT_OVR_DEV)
			agent_override_clear(n->a, &x->m.ip[i]);
	}
}

/* An error text fit for a quoted logfmt value (double quotes become single). */
static const char *quotable(struct err *e)
{
	if (!e || !e->code)
		return "unknown";
	for (char *p = e->msg; *p; p++)
		if (*p == '"' || *p == '\\')
			*p = '\'';
	return e->msg;
}

static void act_fail(struct mignode *n, struct mn_ep *x, const char *what, struct err *e,
		     struct done *d)
{
	d->failures++;
	log_fields(agent_log(n->a), LOG_LVL_WARN, "migration action failed",
		   "vmi=%s/%s pod=%s action=%s error=\"%s\"", x->m.ns, x->m.vmi, x->m.pod, what,
		   quotable(e));
}

static void run_action(struct mignode *n, struct mn_ep *x, const struct mig_action *act,
		       struct done *d)
{
	struct err e;
	err_clear(&e);
	switch (act->kind) {
	case MIG_A_ARM:
		x->armed = n->cap != NULL;
		if (x->aep)
			agent_ep_gate_clear(n->a, x->aep, MIGNODE_GATE_ARMED);
		return;
	case MIG_A_DISARM:
		x->armed = false;
		if (x->aep)
			agent_ep_gate_clear(n->a, x->aep, MIGNODE_GATE_ARMED);
		return;
	case MIG_A_ROUTE_MIGRATE:
		if (x->aep && x->aep->ifindex <= 0) {
			/* added or loaded since the last reconcile resolved the veths */
			int idx = 0;
			if (link_index(agent_nl(n->a), x->aep->veth, &idx, NULL) == 0 && idx > 0)
				x->aep->ifindex = idx;
		}
		if (!x->aep || x->aep->ifindex <= 0) {
			err_setx(&e, ENODEV, "pod %s/%s: host veth %s not known", x->m.ns, x->m.pod,
				 x->m.ifname);
			act_fail(n, x, mig_act_name(act->kind), &e, d);
			return;
		}
		/* the announced address first: its ack ends the measured latency */
		unsigned first = 0;
		for (unsigned i = 0; i < x->m.n_ip; i++)
			if (ip_eq(&x->m.ip[i], &x->announced))
				first = i;
		for (unsigned k = 0; k < x->m.n_ip; k++) {
			unsigned i = k == 0 ? first : (k <= first ? k - 1 : k);
			struct agent_override o;
			memset(&o, 0, sizeof(o));
			o.ip = x->m.ip[i];
			o.kind = AGENT_OVR_DEV;
			o.ifindex = x->aep->ifindex;
			o.metric = act->metric;
			if (agent_override_apply(n->a, &o, &e) < 0)
				act_fail(n, x, mig_act_name(act->kind), &e, d);
			else if (!d->route_ns)
				d->route_ns = now_ns();
		}
		d->metric = act->metric;
		if (d->route_ns) /* the other nodes at once (agent/peer.h); the API follows */
			(void)agent_peer_tell(n->a, x->m.ip, x->m.n_ip, x->m.vmim_uid,
					      x->m.announce_ns ? x->m.announce_ns : d->route_ns);
		return;
	case MIG_A_ROUTE_NORMAL:
		/* no longer a dark target: the agent's own rule routes it at route_metric, also
		 * after an agent restart (the flag is kept in the endpoint's file) */
		if (x->aep && x->aep->target && agent_ep_set_target(n->a, x->aep, false, &e) < 0)
			act_fail(n, x, mig_act_name(act->kind), &e, d);
		routes_clear(n, x);
		agent_reconcile_soon(n->a);
		d->metric = act->metric;
		return;
	case MIG_A_ROUTE_DEL:
		/* a target stays dark by the agent's rule; a source's /32 is dropped by it once
		 * the owner is remote (and routed to the owner's node in direct mode) */
		routes_clear_own(n, x);
		agent_reconcile_soon(n->a);
		return;
	case MIG_A_OWNER_TAKE:
	case MIG_A_OWNER_RECLAIM:
	case MIG_A_OWNER_RETURN: {
		/* a new owner action replaces a pending retry, and only its answer counts */
		x->pending = false;
		if (x->retry)
			ev_timer_disarm(x->retry);
		x->own = act->kind;
		x->gen++;
		x->attempts = 1;
		uint64_t t0 = mono_us();
		int rc = owner_issue(n, x, act->kind, &e);
		d->owner_us = mono_us() - t0;
		d->owner_ran = true;
		if (rc < 0) {
			act_fail(n, x, mig_act_name(act->kind), &e, d);
			if (transient(rc))
				retry_later(n, x);
		}
		return;
	}
	case MIG_A_PEER_RETRACT: /* best effort: a lost one costs PEER_HOLD_MS at most */
		(void)agent_peer_retract(n->a, x->m.ip, x->m.n_ip, x->m.vmim_uid);
		return;
	case MIG_A_TIMER_START:
		if (!x->timer && ev_timer_add(agent_loop(n->a), act->ms, 0, on_timer, x, NULL,
					      &x->timer, &e) < 0) {
			act_fail(n, x, mig_act_name(act->kind), &e, d);
			return;
		}
		ev_timer_arm(x->timer, act->ms, 0);
		return;
	case MIG_A_TIMER_STOP:
		if (x->timer)
			ev_timer_disarm(x->timer);
		return;
	case MIG_A_FORGET:
		routes_clear(n, x);
		if (x->aep)
			agent_ep_gate_clear(n->a, x->aep, MIGNODE_GATE_ARMED);
		x->forget = true;
		return;
	}
}

static void log_step(struct mignode *n, const struct mn_ep *x, const struct mig_result *r,
		     const struct done *d)
{
	struct log *l = agent_log(n->a);
	const struct mig_ep *m = &x->m;
	char ips[4 * IP_STRLEN], extra[512], a[32], b[32];
	ips_fmt(m, ips, sizeof(ips));
	size_t off = 0;
	extra[0] = '\0';
	if (r->to != r->from && r->from == MIG_TARGET &&
	    (r->to == MIG_CLAIMING || r->to == MIG_LIVE || r->to == MIG_TIMEWAIT))
		off += (size_t)snprintf(extra + off, sizeof(extra) - off, " trigger=%s",
					mig_trigger_name(m->trigger));
	if (d->route_ns && m->trigger == MIG_TRIG_ANNOUNCEMENT && m->announce_ns &&
	    off < sizeof(extra)) {
		uint64_t lat = d->route_ns > m->announce_ns ? d->route_ns - m->announce_ns : 0;
		off += (size_t)snprintf(extra + off, sizeof(extra) - off,
					" announce_ts=%s route_ts=%s latency_us=%llu",
					fmt_ts(m->announce_ns, a, sizeof(a)),
					fmt_ts(d->route_ns, b, sizeof(b)),
					(unsigned long long)(lat / 1000u));
	} else if (d->route_ns && off < sizeof(extra)) {
		off += (size_t)snprintf(extra + off, sizeof(extra) - off, " route_ts=%s",
					fmt_ts(d->route_ns, b, sizeof(b)));
	}
	if (d->metric && off < sizeof(extra))
		off += (size_t)snprintf(extra + off, sizeof(extra) - off, " metric=%u", d->metric);
	if (r->outcome != MIG_OUT_NONE && off < sizeof(extra))
		off += (size_t)snprintf(extra + off, sizeof(extra) - off, " outcome=%s",
					mig_outcome_name(r->outcome));
	if (d->owner_ran && off < sizeof(extra))
		off += (size_t)snprintf(extra + off, sizeof(extra) - off, " owner=issued owner_us=%llu",
					(unsigned long long)d->owner_us);
	if (d->swap && off < sizeof(extra)) {
		const struct swapq_result *w = d->swap;
		off += (size_t)snprintf(extra + off, sizeof(extra) - off,
					" owner=%s action=%s attempts=%u path=%s swap_us=%llu "
					"cas_us=%llu queue_us=%llu swap_ts=%s",
					w->rc < 0 ? "failed" : w->changed ? "swapped" : "unchanged",
					mig_act_name(w->kind), x->attempts, swapq_path_name(w->path),
					(unsigned long long)(mono_us() - x->issued_us),
					(unsigned long long)w->cas_us,
					(unsigned long long)w->wait_us,
					fmt_ts(w->done_ns, b, sizeof(b)));
		if (w->rc < 0 && off < sizeof(extra))
			off += (size_t)snprintf(extra + off, sizeof(extra) - off, " error=\"%s\"",
						quotable((struct err *)&w->e));
	}
	if (d->owner_ran && off < sizeof(extra))
		off += (size_t)snprintf(extra + off, sizeof(extra) - off,
					" dataplane_us=%llu round_us=%llu",
					(unsigned long long)d->route_us,
					(unsigned long long)d->round_us);
	if (r->event == MIG_EV_OWNER_REMOTE && x->remote_node[0] && off < sizeof(extra))
		snprintf(extra + off, sizeof(extra) - off, " active_node=%s", x->remote_node);
	log_fields(l, r->msg ? LOG_LVL_INFO : LOG_LVL_DEBUG,
		   r->msg ? r->msg : "migration endpoint forgotten",
		   "vmi=%s/%s pod=%s from=%s to=%s event=%s ip=%s ifname=%s event_ts=%s%s", m->ns, m->vmi,
		   m->pod, mig_state_name(r->from), mig_state_name(r->to),
		   mig_event_name(r->event), ips, m->ifname[0] ? m->ifname : "-",
		   fmt_ts(m->since_ns, a, sizeof(a)), extra);
}

static void free_ep(struct mn_ep *x)
{
	if (x->timer)
		ev_timer_del(x->timer);
	if (x->retry)
		ev_timer_del(x->retry);
	free(x);
}

/* Free the machines that were forgotten (outside any step). */
static void sweep(struct mignode *n)
{
	if (n->stepping)
		return;
	unsigned j = 0;
	for (unsigned i = 0; i < n->n; i++) {
		if (n->eps[i]->forget)
			free_ep(n->eps[i]);
		else
			n->eps[j++] = n->eps[i];
	}
	n->n = j;
}

/* One event into one machine: step, carry out, count, log. swap: the owner answer a
 * SWAP_* event comes from (for the log line), else NULL. */
static void feed_at(struct mn_ep *x, enum mig_event kind, uint64_t ts,
		    const struct swapq_result *swap)
{
	struct mignode *n = x->node;
	if (x->forget)
		return;
	struct mig_params p = params(n);
	struct mig_ev ev = { .kind = kind, .ts_ns = ts };
	struct mig_result r;
	mig_step(&x->m, &p, &ev, &r);
	switch (r.kind) {
	case MIG_CELL_INVALID:
		log_fields(agent_log(n->a), LOG_LVL_WARN, "migration event ignored",
			   "vmi=%s/%s pod=%s state=%s event=%s reason=invalid", x->m.ns, x->m.vmi,
			   x->m.pod, mig_state_name(r.from), mig_event_name(r.event));
		return;
	case MIG_CELL_NOOP:
		log_fields(agent_log(n->a), LOG_LVL_DEBUG, "migration event ignored",
			   "vmi=%s/%s pod=%s state=%s event=%s reason=expected", x->m.ns, x->m.vmi,
			   x->m.pod, mig_state_name(r.from), mig_event_name(r.event));
		return;
	case MIG_CELL_MOVE:
		break;
	}
	n->stepping++;
	agent_l2_migrated(n->a, x->aep, &x->m, r.from, r.to); /* the pod's L2 ports */
	struct done d;
	memset(&d, 0, sizeof(d));
	d.swap = swap;
	uint64_t t0 = mono_us();
	for (unsigned i = 0; i < r.n; i++) {
		run_action(n, x, &r.act[i], &d);
		if (r.act[i].kind == MIG_A_ROUTE_MIGRATE || r.act[i].kind == MIG_A_DISARM)
			d.route_us = mono_us() - t0; /* routes, neighbours, peer fan-out */
	}
	d.round_us = mono_us() - t0;
	if (d.owner_ran && n->m_round) { /* a step that moved the owner: the cut-over round */
		agent_metric_observe(n->m_round, (double)d.round_us / 1e6);
		agent_metric_observe(n->m_oloop, (double)d.owner_us / 1e6);
	}
	if (r.outcome != MIG_OUT_NONE && n->m_out)
		agent_metric_add(n->m_out, mig_outcome_name(r.outcome), 1);
	if (d.route_ns && x->m.trigger == MIG_TRIG_ANNOUNCEMENT && x->m.announce_ns &&
	    d.route_ns >= x->m.announce_ns && n->m_lat)
		agent_metric_observe(n->m_lat, (double)(d.route_ns - x->m.announce_ns) / 1e9);
	log_step(n, x, &r, &d);
	n->stepping--;
	update_gauges(n);
}

static void feed(struct mn_ep *x, enum mig_event kind, uint64_t ts)
{
	feed_at(x, kind, ts, NULL);
}

static void feed_swap(struct mn_ep *x, enum mig_event kind, const struct swapq_result *res)
{
	feed_at(x, kind, now_ns(), res);
}

static void on_timer(struct ev_loop *loop, struct ev_timer *t, void *user)
{
	(void)loop;
	(void)t;
	struct mn_ep *x = user;
	struct mignode *n = x->node;
	feed(x, MIG_EV_TIMER, now_ns());
	sweep(n);
}

static void on_retry(struct ev_loop *loop, struct ev_timer *t, void *user)
{
	(void)loop;
	(void)t;
	struct mn_ep *x = user;
	struct mignode *n = x->node;
	if (x->forget || !x->pending)
		return;
	x->pending = false;
	if (!still_wanted(x))
		return;
	struct err e;
	err_clear(&e);
	x->attempts++;
	int rc = owner_issue(n, x, x->own, &e);
	if (rc < 0) {
		log_fields(agent_log(n->a), LOG_LVL_WARN, "migration action failed",
			   "vmi=%s/%s pod=%s action=%s attempts=%u error=\"%s\"", x->m.ns,
			   x->m.vmi, x->m.pod, mig_act_name(x->own), x->attempts, quotable(&e));
		if (transient(rc))
			retry_later(n, x);
	}
}

/* An owner answer from the worker (agent/swapq.h), on the loop. */
static void on_swapped(void *user, const struct swapq_result *r)
{
	struct mignode *n = user;
	struct mn_ep *x = NULL;
	for (unsigned i = 0; i < n->n && !x; i++)
		if (n->eps[i]->id == r->id && !n->eps[i]->forget)
			x = n->eps[i];
	if (n->m_swap && r->path != SWAPQ_PATH_NONE)
		agent_metric_add(n->m_swap, swapq_path_name(r->path), 1);
	if (r->path == SWAPQ_PATH_FULL && r->fast_why[0])
		log_fields(agent_log(n->a), LOG_LVL_DEBUG, "migration owner swap: full update",
			   "id=%llu reason=\"%s\"", (unsigned long long)r->id, r->fast_why);
	struct err e = r->e;
	if (!x || x->gen != r->gen) {
		/* the machine is gone, or a newer owner action replaced this one */
		log_fields(agent_log(n->a), r->rc < 0 ? LOG_LVL_WARN : LOG_LVL_DEBUG,
			   "migration owner answer dropped",
			   "id=%llu action=%s rc=%d why=%s error=\"%s\"", (unsigned long long)r->id,
			   mig_act_name(r->kind), r->rc, x ? "superseded" : "forgotten",
			   r->rc < 0 ? quotable(&e) : "-");
		return;
	}
	if (n->m_oswap)
		agent_metric_observe(n->m_oswap, (double)(mono_us() - x->issued_us) / 1e6);
	bool take = r->kind == MIG_A_OWNER_TAKE;
	if (r->rc < 0 && transient(r->rc) && still_wanted(x)) {
		log_fields(agent_log(n->a), LOG_LVL_WARN, "migration action failed",
			   "vmi=%s/%s pod=%s action=%s attempts=%u error=\"%s\"", x->m.ns,
			   x->m.vmi, x->m.pod, mig_act_name(r->kind), x->attempts, quotable(&e));
		retry_later(n, x);
		return;
	}
	if (take) { /* the table decides (agent/migrate.h) */
		log_fields(agent_log(n->a), r->rc == 0 ? LOG_LVL_INFO : LOG_LVL_WARN,
			   "migration owner answered",
			   "vmi=%s/%s pod=%s state=%s action=%s attempts=%u owner=%s path=%s "
			   "swap_us=%llu cas_us=%llu queue_us=%llu error=\"%s\"", x->m.ns, x->m.vmi,
			   x->m.pod, mig_state_name(x->m.state), mig_act_name(r->kind), x->attempts,
			   r->rc < 0 ? "failed" : r->changed ? "swapped" : "unchanged",
			   swapq_path_name(r->path),
			   (unsigned long long)(mono_us() - x->issued_us),
			   (unsigned long long)r->cas_us, (unsigned long long)r->wait_us,
			   r->rc < 0 ? quotable(&e) : "-");
		feed_swap(x, r->rc == 0 ? MIG_EV_SWAP_DONE : MIG_EV_SWAP_FAILED, r);
		sweep(n);
		return;
	}
	log_fields(agent_log(n->a), r->rc == 0 ? LOG_LVL_INFO : LOG_LVL_WARN,
		   r->rc == 0 ? "migration owner swapped" : "migration action failed",
		   "vmi=%s/%s pod=%s action=%s attempts=%u owner=%s path=%s cas_us=%llu error=\"%s\"",
		   x->m.ns, x->m.vmi, x->m.pod, mig_act_name(r->kind), x->attempts,
		   r->rc < 0 ? "failed" : r->changed ? "swapped" : "unchanged",
		   swapq_path_name(r->path), (unsigned long long)r->cas_us,
		   r->rc < 0 ? quotable(&e) : "-");
}

/* ---- machines ---------------------------------------------------------------------- */

static struct mn_ep *find_key(struct mignode *n, const char *cid, const char *ifname)
{
	for (unsigned i = 0; i < n->n; i++)
		if (!n->eps[i]->forget && strcmp(n->eps[i]->cid, cid) == 0 &&
		    strcmp(n->eps[i]->cifname, ifname) == 0)
			return n->eps[i];
	return NULL;
}

static void copy_identity(struct mn_ep *x, const struct agent_ep *aep)
{
	snprintf(x->m.ns, sizeof(x->m.ns), "%s", aep->ns);
	snprintf(x->m.pod, sizeof(x->m.pod), "%s", aep->pod);
	if (aep->uid[0])
		snprintf(x->m.pod_uid, sizeof(x->m.pod_uid), "%s", aep->uid);
	snprintf(x->m.vmi, sizeof(x->m.vmi), "%s", aep->vm);
	snprintf(x->m.ifname, sizeof(x->m.ifname), "%s", aep->veth);
	x->m.ifindex = aep->ifindex;
	x->m.n_ip = 0;
	for (unsigned i = 0; i < aep->n_ip && i < MIG_IPS_MAX; i++)
		x->m.ip[x->m.n_ip++] = aep->ip[i];
}

static void on_vmi(struct mignode *n, const struct kube_obj *obj);
static bool target_vouched(struct mignode *n, const struct mn_ep *x, char *why, size_t cap);
static bool vouched(struct mignode *n, struct mn_ep *x);
static void redecide(struct mignode *n, struct mn_ep *x);

static void hook_ep_added(void *user, struct agent *a, struct agent_ep *aep, bool from_disk)
{
	(void)from_disk;
	struct mignode *n = user;
	if (!aep->vm[0])
		return;
	struct mn_ep *x = find_key(n, aep->cid, aep->ifname);
	if (!x) {
		if (n->n == n->cap_eps) {
			unsigned nc = n->cap_eps ? 2 * n->cap_eps : 16;
			struct mn_ep **ne = realloc(n->eps, nc * sizeof(*ne));
			if (!ne) {
				log_warnx(agent_log(a), "migration: endpoint %s/%s: out of memory",
					  aep->ns, aep->pod);
				return;
			}
			n->eps = ne;
			n->cap_eps = nc;
		}
		x = calloc(1, sizeof(*x));
		if (!x) {
			log_warnx(agent_log(a), "migration: endpoint %s/%s: out of memory", aep->ns,
				  aep->pod);
			return;
		}
		mig_ep_init(&x->m);
		x->node = n;
		x->id = ++n->next_id;
		snprintf(x->cid, sizeof(x->cid), "%s", aep->cid);
		snprintf(x->cifname, sizeof(x->cifname), "%s", aep->ifname);
		n->eps[n->n++] = x;
	}
	x->aep = aep;
	copy_identity(x, aep);
	struct kube_obj vmi;
	if (!x->m.has_mac && x->m.vmi[0] && agent_obj_get(a, AGENT_K_VMI, x->m.ns, x->m.vmi, &vmi))
		on_vmi(n, &vmi); /* the guest's MAC (RARP matching) when the VMI came first */
	if (aep->target && x->m.state == MIG_BASE) {
		/* the CNI ADD waiting for "programmed" is answered once detection is armed */
		agent_ep_gate_set(a, aep, MIGNODE_GATE_ARMED);
		feed(x, MIG_EV_TARGET_POD, now_ns());
		redecide(n, x); /* off the announcement's path */
		learn_handle(n, x); /* the same: the fast path's key */
	}
	update_gauges(n);
	sweep(n);
}

static void hook_ep_removed(void *user, struct agent *a, struct agent_ep *aep)
{
	(void)a;
	struct mignode *n = user;
	struct mn_ep *x = find_key(n, aep->cid, aep->ifname);
	if (!x)
		return;
	feed(x, MIG_EV_POD_DELETED, now_ns());
	x->aep = NULL;
	x->forget = true; /* whatever the table said: the agent's endpoint is gone */
	sweep(n);
	update_gauges(n);
}

static bool pod_matches(const struct mn_ep *x, const struct kube_obj *o)
{
	if (strcmp(x->m.ns, o->ns) != 0 || strcmp(x->m.pod, o->name) != 0)
		return false;
	return !x->m.pod_uid[0] || !o->uid || !o->uid[0] || strcmp(x->m.pod_uid, o->uid) == 0;
}

static void on_pod(struct mignode *n, const struct kube_obj *old, const struct kube_obj *obj)
{
	const struct kube_obj *o = obj ? obj : old;
	if (!o)
		return;
	for (unsigned i = 0; i < n->n; i++) {
		struct mn_ep *x = n->eps[i];
		if (x->forget || !pod_matches(x, o))
			continue;
		if (!x->m.pod_uid[0] && o->uid)
			snprintf(x->m.pod_uid, sizeof(x->m.pod_uid), "%s", o->uid);
		if (!obj) {
			feed(x, MIG_EV_POD_DELETED, now_ns());
			continue;
		}
		struct json_doc d;
		struct json_tok *tok;
		char mem[8192];
		struct kube_arena ar;
		struct kube_pod pod;
		kube_arena_init(&ar, mem, sizeof(mem));
		if (kube_obj_parse(obj, &d, &tok) < 0 || kube_pod_view(&d, 0, &pod, &ar, NULL) < 0) {
			free(tok);
			continue;
		}
		const char *mig = kube_label(&pod.meta, LABEL_MIGRATION, &ar);
		if (mig)
			snprintf(x->m.vmim_uid, sizeof(x->m.vmim_uid), "%s", mig);
		bool ready = kube_has_annotation(&pod.meta, ANNOTATION_READY);
		bool ended = pod.meta.deletion_timestamp ||
			     (pod.phase && (strcmp(pod.phase, "Succeeded") == 0 ||
					    strcmp(pod.phase, "Failed") == 0));
		free(tok);
		redecide(n, x); /* its pod changed */
		if (ready && (x->m.state != MIG_TARGET || vouched(n, x)))
			feed(x, MIG_EV_READY_ANNOTATION, now_ns());
		if (ended)
			feed(x, MIG_EV_POD_ENDED, now_ns());
	}
}

static bool phase_final(const char *p)
{
	return p && (strcmp(p, "Succeeded") == 0 || strcmp(p, "Failed") == 0);
}

/* The VMIM's phase (into buf), vmi name, namespace and uid; false when unreadable. */
static bool vmim_read(const struct kube_obj *o, char *phase, size_t pcap, char *vmi, size_t vcap)
{
	struct json_doc d;
	struct json_tok *tok;
	char mem[8192];
	struct kube_arena ar;
	struct kube_vmim v;
	kube_arena_init(&ar, mem, sizeof(mem));
	bool ok = kube_obj_parse(o, &d, &tok) == 0 && kube_vmim_view(&d, 0, &v, &ar, NULL) == 0;
	if (ok) {
		snprintf(phase, pcap, "%s", v.phase ? v.phase : "");
		snprintf(vmi, vcap, "%s", v.vmi_name ? v.vmi_name : "");
	}
	free(tok);
	return ok;
}

static void on_vmim(struct mignode *n, const struct kube_obj *old, const struct kube_obj *obj)
{
	char phase[64], vmi[IPAM_NAME_MAX + 1], ophase[64] = "", ovmi[IPAM_NAME_MAX + 1];
	const struct kube_obj *o = obj ? obj : old;
	if (!o || !vmim_read(o, phase, sizeof(phase), vmi, sizeof(vmi)))
		return;
	for (unsigned i = 0; i < n->n; i++) /* a VMIM of their VMI changed: decide again */
		if (!strcmp(n->eps[i]->m.ns, o->ns) && !strcmp(n->eps[i]->m.vmi, vmi))
			redecide(n, n->eps[i]);
	if (old && obj && !vmim_read(old, ophase, sizeof(ophase), ovmi, sizeof(ovmi)))
		ophase[0] = '\0';
	enum mig_event ev;
	if (!obj) {
		if (phase_final(phase))
			return; /* a finished migration's object cleaned up */
		ev = MIG_EV_VMIM_FAILED; /* deleted unfinished: aborted by the user */
	} else if (strcmp(phase, ophase) == 0) {
		return;
	} else if (strcmp(phase, "Succeeded") == 0) {
		ev = MIG_EV_VMIM_SUCCEEDED;
	} else if (strcmp(phase, "Failed") == 0) {
		ev = MIG_EV_VMIM_FAILED;
	} else {
		return;
	}
	for (unsigned i = 0; i < n->n; i++) {
		struct mn_ep *x = n->eps[i];
		if (x->forget || strcmp(x->m.ns, o->ns) != 0 || strcmp(x->m.vmi, vmi) != 0)
			continue;
		/* a target (or live target) listens only to its own migration */
		bool is_target = x->m.state == MIG_TARGET || x->m.state == MIG_CLAIMING ||
				 x->m.state == MIG_LIVE;
		if (is_target && (!o->uid || strcmp(x->m.vmim_uid, o->uid) != 0))
			continue;
		if (!obj && !is_target)
			continue;
		feed(x, ev, now_ns());
	}
}

static void on_block(struct mignode *n, const struct kube_obj *obj)
{
	if (!obj || !n->n)
		return;
	struct ipam_state st;
	if (agent_block_load(obj, &st, NULL) < 0) {
		ipam_state_free(&st);
		return;
	}
	const char *self = agent_node(n->a);
	for (unsigned i = 0; i < n->n; i++) {
		struct mn_ep *x = n->eps[i];
		if (x->forget)
			continue;
		for (unsigned k = 0; k < x->m.n_ip; k++) {
			struct ip_addr ia;
			memset(&ia, 0, sizeof(ia));
			ia.family = x->m.ip[k].family;
			memcpy(ia.b, x->m.ip[k].b, sizeof(ia.b));
			const struct ipam_attrs *at = ipam_lookup_ip(&st, &ia);
			if (!at)
				continue;
			if (!x->handle[0])
				snprintf(x->handle, sizeof(x->handle), "%s", at->handle);
			enum mig_event ev = mig_owner_event(&x->m, at->active.uid, at->active.node,
							    self);
			if (ev == MIG_N_EVENTS)
				break;
			if (ev == MIG_EV_OWNER_REMOTE)
				snprintf(x->remote_node, sizeof(x->remote_node), "%s",
					 at->active.node);
			feed(x, ev, now_ns());
			break;
		}
	}
	ipam_state_free(&st);
}

static void on_vmi(struct mignode *n, const struct kube_obj *obj)
{
	if (!obj)
		return;
	struct json_doc d;
	struct json_tok *tok;
	char mem[16384];
	struct kube_arena ar;
	struct kube_vmi v;
	kube_arena_init(&ar, mem, sizeof(mem));
	if (kube_obj_parse(obj, &d, &tok) < 0 || kube_vmi_view(&d, 0, &v, &ar, NULL) < 0) {
		free(tok);
		return;
	}
	for (unsigned i = 0; i < n->n; i++) {
		struct mn_ep *x = n->eps[i];
		if (x->forget || strcmp(x->m.ns, obj->ns) != 0 || strcmp(x->m.vmi, obj->name) != 0)
			continue;
		redecide(n, x); /* its VMI changed */
		/* the interface carrying one of the endpoint's addresses, else the only one */
		const char *mac = v.n_ifaces == 1 ? v.ifaces[0].mac : NULL;
		for (unsigned f = 0; f < v.n_ifaces; f++) {
			struct ip_addr ip;
			if (v.ifaces[f].ip && ip_parse(v.ifaces[f].ip, &ip))
				for (unsigned k = 0; k < x->m.n_ip; k++)
					if (ip_eq(&ip, &x->m.ip[k]))
						mac = v.ifaces[f].mac;
		}
		if (mac && ann_mac_parse(mac, x->m.mac))
			x->m.has_mac = true;
	}
	free(tok);
}

static void hook_object(void *user, struct agent *a, enum agent_kind kind,
			const struct kube_obj *old, const struct kube_obj *obj)
{
	(void)a;
	struct mignode *n = user;
	switch (kind) {
	case AGENT_K_POD:
		on_pod(n, old, obj);
		break;
	case AGENT_K_VMIM:
		on_vmim(n, old, obj);
		break;
	case AGENT_K_BLOCK:
		rec_put(n, IPAM_BLOCK, old, obj);
		on_block(n, obj);
		break;
	case AGENT_K_VMI:
		on_vmi(n, obj);
		break;
	case AGENT_K_HANDLE:
		rec_put(n, IPAM_HANDLE, old, obj);
		break;
	case AGENT_K_NODE:
	case AGENT_K_L2NET:
	case AGENT_K_MNETPOL:
	case AGENT_K_NETPOL:
	case AGENT_K_NAMESPACE:
	case AGENT_K_POD_ALL:
	case AGENT_K_COUNT:
		break;
	}
	sweep(n);
}

/* ---- who may go live (kube/kubevirt.h) ------------------------------------------------ */

/* The VMIM whose uid the walk looks for, copied out of the informer. */
struct vmim_find {
	const char *uid;   /* wanted metadata.uid */
	struct kube_obj o; /* the match (json points into the store) */
	bool found;	   /* o is set */
};

static void vmim_find_fn(void *user, const struct kube_obj *obj)
{
	struct vmim_find *f = user;
	if (!f->found && obj->uid && strcmp(obj->uid, f->uid) == 0) {
		f->o = *obj;
		f->found = true;
	}
}

/* May target x go live? The CNI plugin's rule (kube/kubevirt.h) over what the informers
 * hold: its pod, its VMI, and a VMIM of that uid for the VMI, unfinished, aimed at this
 * node and pod. A pod that slipped past an older plugin, or whose VMIM was deleted or
 * finished since, never takes the VM's traffic. why: the reason. Parses three objects:
 * run when something changed, not per frame. */
static bool target_vouched(struct mignode *n, const struct mn_ep *x, char *why, size_t cap)
{
	struct kube_obj po, vo;
	if (!agent_obj_get(n->a, AGENT_K_POD, x->m.ns, x->m.pod, &po)) {
		snprintf(why, cap, "its pod is not (yet) in the pod informer");
		return false;
	}
	if (!agent_obj_get(n->a, AGENT_K_VMI, x->m.ns, x->m.vmi, &vo)) {
		snprintf(why, cap, "VMI %s/%s is not in the VMI informer", x->m.ns, x->m.vmi);
		return false;
	}
	struct json_doc pd, vd, md;
	struct json_tok *pt = NULL, *vt = NULL, *mt = NULL;
	struct {
		char p[16384], v[32768], m[16384]; /* arena memory: pod, VMI, VMIM */
	} *mem = malloc(sizeof(*mem));
	if (!mem) {
		snprintf(why, cap, "out of memory");
		return false;
	}
	struct kube_arena pa, va, ma;
	struct kube_pod pod;
	struct kube_vmi vmi;
	struct kube_vmim vmim;
	bool ok = false, have_vmim = false;
	kube_arena_init(&pa, mem->p, sizeof(mem->p));
	kube_arena_init(&va, mem->v, sizeof(mem->v));
	kube_arena_init(&ma, mem->m, sizeof(mem->m));
	if (kube_obj_parse(&po, &pd, &pt) < 0 || kube_pod_view(&pd, 0, &pod, &pa, NULL) < 0 ||
	    kube_obj_parse(&vo, &vd, &vt) < 0 || kube_vmi_view(&vd, 0, &vmi, &va, NULL) < 0) {
		snprintf(why, cap, "its pod or VMI object does not parse");
		goto out;
	}
	struct kube_owner_ref ref;
	if (kube_controller_ref(&pod.meta, &ref, &pa, NULL) < 0 || !ref.uid || !vmi.meta.uid ||
	    strcmp(ref.uid, vmi.meta.uid) != 0) {
		snprintf(why, cap, "its controller ownerReference does not name VMI %s/%s uid %s",
			 x->m.ns, x->m.vmi, vmi.meta.uid ? vmi.meta.uid : "(none)");
		goto out;
	}
	const char *mig = kube_label(&pod.meta, KUBE_KV_LBL_MIGRATION, &pa);
	if (mig) {
		struct vmim_find f = { .uid = mig };
		agent_obj_each(n->a, AGENT_K_VMIM, vmim_find_fn, &f);
		if (f.found && strcmp(f.o.ns, x->m.ns) == 0) {
			if (kube_obj_parse(&f.o, &md, &mt) < 0 ||
			    kube_vmim_view(&md, 0, &vmim, &ma, NULL) < 0) {
				snprintf(why, cap, "VMIM %s does not parse", mig);
				goto out;
			}
			have_vmim = true;
		}
	}
	struct kube_kv_ask q = { .pod = &pod, .vmi = &vmi, .mig_uid = mig,
				 .vmim = have_vmim ? &vmim : NULL, .node = agent_node(n->a),
				 .holder = KUBE_KV_HOLDER_UNKNOWN };
	enum kube_kv_role role = kube_kv_decide(&q, why, cap);
	ok = role == KUBE_KV_TARGET || role == KUBE_KV_ACTIVE; /* ACTIVE: a completed
						 * migration already names this pod */
out:
	free(pt);
	free(vt);
	free(mt);
	free(mem);
	return ok;
}

/* Decide x's standing now for a dark target (else forget it: a live or base endpoint is
 * not asked). A refusal is logged when an announcement meets it. */
static void redecide(struct mignode *n, struct mn_ep *x)
{
	x->vouch = VOUCH_UNKNOWN;
	x->told = false;
	if (x->m.state != MIG_TARGET)
		return;
	x->vouch = target_vouched(n, x, x->why, sizeof(x->why)) ? VOUCH_YES : VOUCH_NO;
}

/* May x go live now? Refusals logged and counted once per decision. */
static bool vouched(struct mignode *n, struct mn_ep *x)
{
	if (x->vouch == VOUCH_UNKNOWN)
		redecide(n, x);
	if (x->vouch == VOUCH_NO && !x->told) {
		x->told = true;
		log_warnx(agent_log(n->a), "migration: target %s/%s of VM %s may not go live: %s",
			  x->m.ns, x->m.pod, x->m.vmi, x->why);
		if (n->m_ann)
			agent_metric_add(n->m_ann, "unvouched", 1);
	}
	return x->vouch == VOUCH_YES;
}

/* ---- announcements ------------------------------------------------------------------ */

bool mignode_announce(struct mignode *n, const struct ann_event *ev)
{
	struct ip_addr none;
	memset(&none, 0, sizeof(none));
	const struct ip_addr *ip = ev->kind == ANN_RARP ? &none : &ev->ip;
	uint64_t ts = (uint64_t)ev->ts.tv_sec * 1000000000u + (uint64_t)ev->ts.tv_nsec;
	bool hit = false;
	for (unsigned i = 0; i < n->n; i++) {
		struct mn_ep *x = n->eps[i];
		if (x->forget || !x->armed)
			continue;
		if (x->aep)
			x->m.ifindex = x->aep->ifindex; /* the agent resolves it after the ADD */
		if (!mig_announce_match(&x->m, ev->ifindex, ip, ev->mac))
			continue;
		if (x->m.state == MIG_TARGET && !vouched(n, x))
			continue; /* logged and counted once per change of its objects */
		hit = true;
		agent_gw_announced(n->a, x->aep, ev->mac); /* before the route: no ARP wait */
		x->announced = *ip;
		feed(x, MIG_EV_ANNOUNCE, ts);
		memset(&x->announced, 0, sizeof(x->announced));
	}
	if (n->m_ann)
		agent_metric_add(n->m_ann, hit ? "armed" : "ignored", 1);
	sweep(n);
	return hit;
}

static void on_capture(struct ev_loop *loop, struct ev_io *io, int fd, uint32_t revents,
		       void *user)
{
	(void)loop;
	(void)io;
	(void)fd;
	(void)revents;
	struct mignode *n = user;
	struct ann_event ev;
	struct err e;
	int rc;
	/* bounded, so a flood cannot starve the loop */
	for (unsigned i = 0; i < 64 && (rc = pkt_next(n->cap, &ev, NULL, &e)) == 1; i++)
		mignode_announce(n, &ev);
}

/* One subscriber for the agent's hooks (agent.h). */
static void on_hook(void *arg, struct agent *a, const struct agent_event *ev)
{
	switch (ev->hook) {
	case AGENT_HOOK_EP_ADDED:
		hook_ep_added(arg, a, ev->ep, ev->from_disk);
		break;
	case AGENT_HOOK_EP_REMOVED:
		hook_ep_removed(arg, a, ev->ep);
		break;
	case AGENT_HOOK_OBJECT:
		hook_object(arg, a, ev->kind, ev->old, ev->obj);
		break;
	case AGENT_HOOK_RECONCILED:
	case AGENT_HOOK_COUNT:
		break;
	}
}

static void unhook(struct mignode *n)
{
	agent_hook_del(n->a, AGENT_HOOK_EP_ADDED, on_hook, n);
	agent_hook_del(n->a, AGENT_HOOK_EP_REMOVED, on_hook, n);
	agent_hook_del(n->a, AGENT_HOOK_OBJECT, on_hook, n);
}

/* ---- life cycle --------------------------------------------------------------------- */

struct mignode *mignode_new(struct agent *a, struct ipam_ds *ds, struct err *e)
{
	struct mignode *n = calloc(1, sizeof(*n));
	if (!n) {
		err_set(e, ENOMEM, "migration");
		return NULL;
	}
	n->a = a;
	n->ds = ds;
	struct agent_metrics *reg = agent_metrics(a);
	static const double bounds[] = { 25e-6,	 50e-6,	 75e-6,	 100e-6, 150e-6, 200e-6,
					 250e-6, 500e-6, 1e-3,	 2.5e-3, 10e-3,	 100e-3 };
	if (reg) {
		n->m_out = agent_metric_new(reg, "kvnet_migrations_total",
					    "Live migrations handled on this node as the target, "
					    "by outcome.",
					    AGENT_M_COUNTER, "outcome");
		n->m_lat = agent_metric_histogram(
			reg, "kvnet_migration_announce_to_route_seconds",
			"Kernel timestamp of the VM's announcement to the ack of its route.",
			bounds, sizeof(bounds) / sizeof(bounds[0]));
		n->m_state = agent_metric_new(reg, "kvnet_migration_endpoints",
					      "Local VM endpoints by migration state.",
					      AGENT_M_GAUGE, "state");
		n->m_ann = agent_metric_new(reg, "kvnet_migration_announcements_total",
					    "Announcements captured, by whether an armed target "
					    "matched (unvouched: matched a target KubeVirt "
					    "does not name).",
					    AGENT_M_COUNTER, "match");
		n->m_swap = agent_metric_new(reg, "kvnet_migration_owner_swaps_total",
					     "Owner compare-and-swaps (kubernetes datastore), by "
					     "path: fast (from the informers' copies) or full.",
					     AGENT_M_COUNTER, "path");
		static const double rb[] = { 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3,
					     10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 1 };
		n->m_round = agent_metric_histogram(
			reg, "kvnet_migration_cutover_round_seconds",
			"Event-loop time of a migration step that moves the IPAM owner (the "
			"target's cut-over round: routes, peer fan-out and the owner action).",
			rb, sizeof(rb) / sizeof(rb[0]));
		n->m_oloop = agent_metric_histogram(
			reg, "kvnet_migration_owner_loop_seconds",
			"Event-loop time spent in the owner action of such a step.", rb,
			sizeof(rb) / sizeof(rb[0]));
		n->m_oswap = agent_metric_histogram(
			reg, "kvnet_migration_owner_swap_seconds",
			"Owner compare-and-swap issued to its answer back on the event loop "
			"(done off the loop).", rb, sizeof(rb) / sizeof(rb[0]));
		if (!n->m_out || !n->m_lat || !n->m_state || !n->m_ann || !n->m_swap ||
		    !n->m_round || !n->m_oloop || !n->m_oswap) {
			err_setx(e, EEXIST, "migration: metrics: cannot register (taken?)");
			goto fail;
		}
		for (unsigned o = MIG_OUT_SUCCEEDED; o < MIG_N_OUTCOMES; o++)
			agent_metric_add(n->m_out, mig_outcome_name(o), 0);
	}
	const struct conf *c = agent_conf(a);
	struct swapq_ds sd = {
		.kind = ds ? SWAPQ_DS_CALLER
			   : c->datastore.type == CONF_DATASTORE_KUBERNETES ? SWAPQ_DS_KUBERNETES
									    : SWAPQ_DS_FILE,
		.ds = ds,
		.kubeconfig = c->kubernetes.kubeconfig,
		.context = c->kubernetes.context,
		.io_timeout_ms = MIGNODE_API_TIMEOUT_MS,
		.dir = c->datastore.state_dir,
	};
	n->q = swapq_new(agent_loop(a), &sd, on_swapped, n, e);
	if (!n->q)
		goto fail;
	if (agent_conf(a)->migration.announce_detection) {
		n->cap = pkt_open(0, 0, e);
		if (!n->cap) {
			err_prefix(e, "migration: announcement capture");
			goto fail;
		}
		if (ev_io_add(agent_loop(a), pkt_fd(n->cap), EPOLLIN, on_capture, n, NULL,
			      &n->cap_io, e) < 0)
			goto fail;
	}
	update_gauges(n);
	static const enum agent_kind kinds[] = { AGENT_K_POD, AGENT_K_VMI, AGENT_K_VMIM,
						 AGENT_K_BLOCK, AGENT_K_HANDLE };
	for (unsigned i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		agent_want_kind(a, kinds[i]);
	if (agent_hook_add(a, AGENT_HOOK_EP_ADDED, on_hook, n, e) < 0 ||
	    agent_hook_add(a, AGENT_HOOK_EP_REMOVED, on_hook, n, e) < 0 ||
	    agent_hook_add(a, AGENT_HOOK_OBJECT, on_hook, n, e) < 0) {
		err_prefix(e, "migration");
		unhook(n);
		goto fail;
	}
	return n;
fail:
	if (n->cap_io)
		ev_io_del(n->cap_io);
	pkt_close(n->cap);
	swapq_free(n->q);
	free(n);
	return NULL;
}

void mignode_free(struct mignode *n)
{
	if (!n)
		return;
	unhook(n);
	swapq_free(n->q); /* first: no answer arrives for a freed machine */
	if (n->cap_io)
		ev_io_del(n->cap_io);
	pkt_close(n->cap);
	for (unsigned i = 0; i < n->n; i++)
		free_ep(n->eps[i]);
	free(n->eps);
	for (unsigned i = 0; i < n->n_recs; i++)
		free(n->recs[i].json);
	free(n->recs);
	free(n);
}

unsigned mignode_count(const struct mignode *n, enum mig_state s)
{
	unsigned c = 0;
	for (unsigned i = 0; i < n->n; i++)
		if (!n->eps[i]->forget && n->eps[i]->m.state == s)
			c++;
	return c;
}
