/* Unit tests for agent/migrate: every cell of the state x event table against a spec
 * written out here independently, then whole hand-overs (A -> B, A -> B -> A, failure,
 * abort, a second migration during TimeWait, agent restart), announcement matching and
 * owner events. */
#include "agent/migrate.h"
#include "ipam/ipam.h"
#include "lib/err.h"
#include "test/lib/t.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

/* The spec: what each state does with each event. "-" = invalid (ignored, warned),
 * "=" = expected no-op, else "NEXT-STATE[/outcome]: actions...". Written from the
 * issue's description, not generated from the table. */
struct spec {
	enum mig_state st;
	enum mig_event ev;
	const char *want;
};

static const struct spec SPEC[] = {
	{ MIG_BASE, MIG_EV_TARGET_POD, "target: route_del arm" },
	{ MIG_BASE, MIG_EV_ANNOUNCE, "=" },
	{ MIG_BASE, MIG_EV_READY_ANNOTATION, "=" },
	{ MIG_BASE, MIG_EV_VMIM_SUCCEEDED, "=" },
	{ MIG_BASE, MIG_EV_VMIM_FAILED, "=" },
	{ MIG_BASE, MIG_EV_POD_ENDED, "retired: route_del" },
	{ MIG_BASE, MIG_EV_POD_DELETED, "retired: forget" },
	{ MIG_BASE, MIG_EV_OWNER_LOCAL, "=" },
	{ MIG_BASE, MIG_EV_OWNER_REMOTE, "source: route_del" },
	{ MIG_BASE, MIG_EV_TIMER, "-" },
	{ MIG_BASE, MIG_EV_SWAP_DONE, "=" },
	{ MIG_BASE, MIG_EV_SWAP_FAILED, "=" },

	{ MIG_TARGET, MIG_EV_TARGET_POD, "=" },
	{ MIG_TARGET, MIG_EV_ANNOUNCE, "claiming: route_migrate/512 disarm owner_take" },
	{ MIG_TARGET, MIG_EV_READY_ANNOTATION, "claiming: route_migrate/512 disarm owner_take" },
	{ MIG_TARGET, MIG_EV_VMIM_SUCCEEDED,
	  "timewait/succeeded: route_migrate/512 disarm owner_take timer_start/2000" },
	{ MIG_TARGET, MIG_EV_VMIM_FAILED, "retired/failed: disarm route_del" },
	{ MIG_TARGET, MIG_EV_POD_ENDED, "retired/aborted: disarm route_del" },
	{ MIG_TARGET, MIG_EV_POD_DELETED, "retired/aborted: disarm forget" },
	{ MIG_TARGET, MIG_EV_OWNER_LOCAL, "live: route_migrate/512 disarm" },
	{ MIG_TARGET, MIG_EV_OWNER_REMOTE, "=" },
	{ MIG_TARGET, MIG_EV_TIMER, "-" },
	{ MIG_TARGET, MIG_EV_SWAP_DONE, "=" },
	{ MIG_TARGET, MIG_EV_SWAP_FAILED, "=" },

	/* routes in and the other agents told; the owner CAS is in flight */
	{ MIG_CLAIMING, MIG_EV_TARGET_POD, "=" },
	{ MIG_CLAIMING, MIG_EV_ANNOUNCE, "=" },
	{ MIG_CLAIMING, MIG_EV_READY_ANNOTATION, "=" },
	{ MIG_CLAIMING, MIG_EV_VMIM_SUCCEEDED, "timewait/succeeded: timer_start/2000" },
	{ MIG_CLAIMING, MIG_EV_VMIM_FAILED, "retired/failed: route_del owner_return peer_retract" },
	{ MIG_CLAIMING, MIG_EV_POD_ENDED, "retired/aborted: route_del owner_return peer_retract" },
	{ MIG_CLAIMING, MIG_EV_POD_DELETED,
	  "retired/aborted: route_del owner_return peer_retract forget" },
	{ MIG_CLAIMING, MIG_EV_OWNER_LOCAL, "live:" },
	{ MIG_CLAIMING, MIG_EV_OWNER_REMOTE, "=" },
	{ MIG_CLAIMING, MIG_EV_TIMER, "-" },
	{ MIG_CLAIMING, MIG_EV_SWAP_DONE, "live:" },
	{ MIG_CLAIMING, MIG_EV_SWAP_FAILED, "target: route_del peer_retract" },

	{ MIG_LIVE, MIG_EV_TARGET_POD, "=" },
	{ MIG_LIVE, MIG_EV_ANNOUNCE, "=" },
	{ MIG_LIVE, MIG_EV_READY_ANNOTATION, "=" },
	{ MIG_LIVE, MIG_EV_VMIM_SUCCEEDED, "timewait/succeeded: timer_start/2000" },
	{ MIG_LIVE, MIG_EV_VMIM_FAILED, "retired/failed: route_del owner_return" },
	{ MIG_LIVE, MIG_EV_POD_ENDED, "retired/aborted: route_del owner_return" },
	{ MIG_LIVE, MIG_EV_POD_DELETED, "retired/aborted: route_del owner_return forget" },
	{ MIG_LIVE, MIG_EV_OWNER_LOCAL, "=" },
	{ MIG_LIVE, MIG_EV_OWNER_REMOTE, "source: route_del" },
	{ MIG_LIVE, MIG_EV_TIMER, "-" },
	{ MIG_LIVE, MIG_EV_SWAP_DONE, "=" },
	{ MIG_LIVE, MIG_EV_SWAP_FAILED, "=" },

	{ MIG_TIMEWAIT, MIG_EV_TARGET_POD, "=" },
	{ MIG_TIMEWAIT, MIG_EV_ANNOUNCE, "=" },
	{ MIG_TIMEWAIT, MIG_EV_READY_ANNOTATION, "=" },
	{ MIG_TIMEWAIT, MIG_EV_VMIM_SUCCEEDED, "=" },
	{ MIG_TIMEWAIT, MIG_EV_VMIM_FAILED, "-" },
	{ MIG_TIMEWAIT, MIG_EV_POD_ENDED, "retired: timer_stop route_del" },
	{ MIG_TIMEWAIT, MIG_EV_POD_DELETED, "retired: timer_stop route_del forget" },
	{ MIG_TIMEWAIT, MIG_EV_OWNER_LOCAL, "=" },
	{ MIG_TIMEWAIT, MIG_EV_OWNER_REMOTE, "source: timer_stop route_del" },
	{ MIG_TIMEWAIT, MIG_EV_TIMER, "base: route_normal/1024" },
	{ MIG_TIMEWAIT, MIG_EV_SWAP_DONE, "=" },
	{ MIG_TIMEWAIT, MIG_EV_SWAP_FAILED, "=" },

	{ MIG_SOURCE, MIG_EV_TARGET_POD, "-" },
	{ MIG_SOURCE, MIG_EV_ANNOUNCE, "=" },
	{ MIG_SOURCE, MIG_EV_READY_ANNOTATION, "=" },
	{ MIG_SOURCE, MIG_EV_VMIM_SUCCEEDED, "=" },
	{ MIG_SOURCE, MIG_EV_VMIM_FAILED, "base: route_normal/1024 owner_reclaim" },
	{ MIG_SOURCE, MIG_EV_POD_ENDED, "retired:" },
	{ MIG_SOURCE, MIG_EV_POD_DELETED, "retired: forget" },
	{ MIG_SOURCE, MIG_EV_OWNER_LOCAL, "base: route_normal/1024" },
	{ MIG_SOURCE, MIG_EV_OWNER_REMOTE, "=" },
	{ MIG_SOURCE, MIG_EV_TIMER, "-" },
	{ MIG_SOURCE, MIG_EV_SWAP_DONE, "=" },
	{ MIG_SOURCE, MIG_EV_SWAP_FAILED, "=" },

	{ MIG_RETIRED, MIG_EV_TARGET_POD, "=" },
	{ MIG_RETIRED, MIG_EV_ANNOUNCE, "=" },
	{ MIG_RETIRED, MIG_EV_READY_ANNOTATION, "=" },
	{ MIG_RETIRED, MIG_EV_VMIM_SUCCEEDED, "=" },
	{ MIG_RETIRED, MIG_EV_VMIM_FAILED, "=" },
	{ MIG_RETIRED, MIG_EV_POD_ENDED, "=" },
	{ MIG_RETIRED, MIG_EV_POD_DELETED, "retired: forget" },
	{ MIG_RETIRED, MIG_EV_OWNER_LOCAL, "=" },
	{ MIG_RETIRED, MIG_EV_OWNER_REMOTE, "=" },
	{ MIG_RETIRED, MIG_EV_TIMER, "-" },
	{ MIG_RETIRED, MIG_EV_SWAP_DONE, "=" },
	{ MIG_RETIRED, MIG_EV_SWAP_FAILED, "=" },
};

static const struct mig_params P = {
	.route_metric = 1024, .migration_metric = 512, .convergence_ms = 2000
};

/* Render a result in the spec's notation. */
static void render(const struct mig_result *r, char *buf, size_t cap)
{
	switch (r->kind) {
	case MIG_CELL_INVALID:
		snprintf(buf, cap, "-");
		return;
	case MIG_CELL_NOOP:
		snprintf(buf, cap, "=");
		return;
	case MIG_CELL_MOVE:
		break;
	}
	size_t n = (size_t)snprintf(buf, cap, "%s%s%s:", mig_state_name(r->to),
				    r->outcome ? "/" : "", mig_outcome_name(r->outcome));
	for (unsigned i = 0; i < r->n && n < cap; i++) {
		const struct mig_action *a = &r->act[i];
		n += (size_t)snprintf(buf + n, cap - n, " %s", mig_act_name(a->kind));
		if (a->metric && n < cap)
			n += (size_t)snprintf(buf + n, cap - n, "/%u", a->metric);
		if (a->ms && n < cap)
			n += (size_t)snprintf(buf + n, cap - n, "/%llu", (unsigned long long)a->ms);
	}
}

static struct mig_result step(struct mig_ep *ep, enum mig_event kind, uint64_t ts)
{
	struct mig_ev ev = { .kind = kind, .ts_ns = ts };
	struct mig_result r;
	mig_step(ep, &P, &ev, &r);
	return r;
}

/* Every cell, and the spec covers every cell exactly once. */
static void test_every_cell(void)
{
	unsigned seen[MIG_N_STATES][MIG_N_EVENTS];
	memset(seen, 0, sizeof(seen));
	T_EQ(sizeof(SPEC) / sizeof(SPEC[0]), MIG_N_STATES * MIG_N_EVENTS);
	for (size_t i = 0; i < sizeof(SPEC) / sizeof(SPEC[0]); i++) {
		const struct spec *s = &SPEC[i];
		seen[s->st][s->ev]++;
		struct mig_ep ep;
		mig_ep_init(&ep);
		ep.state = s->st;
		struct mig_result r = step(&ep, s->ev, 1000 + i);
		char got[256];
		render(&r, got, sizeof(got));
		if (!T_STREQ(got, s->want))
			t_note("cell %s x %s", mig_state_name(s->st), mig_event_name(s->ev));
		T_EQ(r.from, s->st);
		T_EQ(r.event, s->ev);
		if (r.kind == MIG_CELL_MOVE) {
			T_EQ(ep.state, r.to);
			T_EQ(ep.since_ns, 1000 + i);
		} else {
			/* ignored: nothing changes, nothing to do */
			T_EQ(ep.state, s->st);
			T_EQ(r.to, s->st);
			T_EQ(r.n, 0);
			T_EQ(ep.since_ns, 0);
			T_CHECK(r.msg == NULL);
		}
	}
	for (unsigned s = 0; s < MIG_N_STATES; s++)
		for (unsigned e = 0; e < MIG_N_EVENTS; e++)
			if (!T_EQ(seen[s][e], 1))
				t_note("spec row for %s x %s", mig_state_name(s),
				       mig_event_name(e));
}

/* Cells that go live or move hand-overs say so in their log message. */
static void test_messages(void)
{
	for (unsigned s = 0; s < MIG_N_STATES; s++)
		for (unsigned e = 0; e < MIG_N_EVENTS; e++) {
			const struct mig_cell *c = &mig_table[s][e];
			if (c->kind != MIG_CELL_MOVE)
				continue;
			if (c->trigger != MIG_TRIG_NONE)
				T_STREQ(c->msg, "migration live");
			if (c->msg)
				T_CHECK(strncmp(c->msg, "migration ", 10) == 0);
			/* outcomes only on the target side, only when leaving TARGET/LIVE */
			if (c->outcome != MIG_OUT_NONE)
				T_CHECK(s == MIG_TARGET || s == MIG_CLAIMING || s == MIG_LIVE);
			T_CHECK(c->n <= MIG_ACTS_MAX);
		}
}

/* Out-of-range input is an ignored event, never a read outside the table. */
static void test_out_of_range(void)
{
	struct mig_ep ep;
	mig_ep_init(&ep);
	struct mig_result r = step(&ep, MIG_N_EVENTS, 5);
	T_EQ(r.kind, MIG_CELL_INVALID);
	T_EQ(ep.state, MIG_BASE);
	r = step(&ep, (enum mig_event)-1, 5);
	T_EQ(r.kind, MIG_CELL_INVALID);
	ep.state = MIG_N_STATES;
	r = step(&ep, MIG_EV_TIMER, 5);
	T_EQ(r.kind, MIG_CELL_INVALID);
	T_EQ(ep.state, MIG_N_STATES);
	T_STREQ(mig_state_name(MIG_N_STATES), "?");
	T_STREQ(mig_event_name(MIG_N_EVENTS), "?");
	T_STREQ(mig_outcome_name(MIG_N_OUTCOMES), "?");
	T_STREQ(mig_act_name((enum mig_act_kind)99), "?");
	T_STREQ(mig_trigger_name((enum mig_trigger)99), "?");
}

/* A -> B: the target side from arming to convergence, and the source side. */
static void test_handover_success(void)
{
	struct mig_ep tgt, src;
	mig_ep_init(&tgt);
	mig_ep_init(&src);
	struct mig_result r = step(&tgt, MIG_EV_TARGET_POD, 10);
	T_EQ(tgt.state, MIG_TARGET);
	r = step(&tgt, MIG_EV_OWNER_REMOTE, 11); /* the source still holds it */
	T_EQ(r.kind, MIG_CELL_NOOP);
	r = step(&tgt, MIG_EV_ANNOUNCE, 12345);
	T_EQ(tgt.state, MIG_CLAIMING); /* routes in, the owner CAS issued */
	T_EQ(tgt.trigger, MIG_TRIG_ANNOUNCEMENT);
	T_EQ(tgt.announce_ns, 12345);
	T_STREQ(r.msg, "migration live");
	T_EQ(r.act[0].kind, MIG_A_ROUTE_MIGRATE); /* the route first */
	r = step(&tgt, MIG_EV_ANNOUNCE, 99999);	  /* QEMU's next round */
	T_EQ(r.kind, MIG_CELL_NOOP);
	T_EQ(tgt.announce_ns, 12345);
	r = step(&tgt, MIG_EV_READY_ANNOTATION, 20);
	T_EQ(r.kind, MIG_CELL_NOOP);
	T_EQ(tgt.trigger, MIG_TRIG_ANNOUNCEMENT);
	r = step(&tgt, MIG_EV_OWNER_REMOTE, 20); /* the blocks before our CAS landed */
	T_EQ(r.kind, MIG_CELL_NOOP);
	T_EQ(tgt.state, MIG_CLAIMING);
	r = step(&tgt, MIG_EV_SWAP_DONE, 21); /* our CAS answered */
	T_EQ(tgt.state, MIG_LIVE);
	T_STREQ(r.msg, "migration owner taken");
	T_EQ(r.n, 0);
	r = step(&tgt, MIG_EV_OWNER_LOCAL, 21); /* and its watch event */
	T_EQ(r.kind, MIG_CELL_NOOP);
	/* the source node sees the owner move */
	r = step(&src, MIG_EV_OWNER_REMOTE, 22);
	T_EQ(src.state, MIG_SOURCE);
	T_EQ(r.n, 1);
	T_EQ(r.act[0].kind, MIG_A_ROUTE_DEL);
	r = step(&tgt, MIG_EV_VMIM_SUCCEEDED, 30);
	T_EQ(tgt.state, MIG_TIMEWAIT);
	T_EQ(r.outcome, MIG_OUT_SUCCEEDED);
	T_EQ(r.act[0].ms, 2000);
	r = step(&src, MIG_EV_VMIM_SUCCEEDED, 31);
	T_EQ(r.kind, MIG_CELL_NOOP);
	T_EQ(r.outcome, MIG_OUT_NONE); /* counted once, on the target node */
	r = step(&src, MIG_EV_POD_ENDED, 32);
	T_EQ(src.state, MIG_RETIRED);
	r = step(&src, MIG_EV_POD_DELETED, 33);
	T_EQ(r.act[0].kind, MIG_A_FORGET);
	r = step(&tgt, MIG_EV_TIMER, 40);
	T_EQ(tgt.state, MIG_BASE);
	T_EQ(r.act[0].kind, MIG_A_ROUTE_NORMAL);
	T_EQ(r.act[0].metric, 1024);
	/* the trigger of the last hand-over stays for the logs until the next one */
	T_EQ(tgt.trigger, MIG_TRIG_ANNOUNCEMENT);
}

/* A -> B -> A: the endpoint that came in as a target becomes the next source, and a
 * new target pod on A goes live; then B's endpoint is handed over. */
static void test_there_and_back(void)
{
	struct mig_ep a1, b, a2;
	mig_ep_init(&a1);
	mig_ep_init(&b);
	mig_ep_init(&a2);
	step(&b, MIG_EV_TARGET_POD, 1);
	step(&b, MIG_EV_ANNOUNCE, 2);
	step(&a1, MIG_EV_OWNER_REMOTE, 3);
	step(&b, MIG_EV_VMIM_SUCCEEDED, 4);
	step(&b, MIG_EV_TIMER, 5);
	step(&a1, MIG_EV_POD_ENDED, 6);
	step(&a1, MIG_EV_POD_DELETED, 7);
	T_EQ(b.state, MIG_BASE);
	/* back to A */
	step(&a2, MIG_EV_TARGET_POD, 8);
	struct mig_result r = step(&a2, MIG_EV_ANNOUNCE, 9);
	T_EQ(a2.state, MIG_CLAIMING);
	T_EQ(r.act[2].kind, MIG_A_OWNER_TAKE);
	r = step(&b, MIG_EV_OWNER_REMOTE, 10);
	T_EQ(b.state, MIG_SOURCE);
	T_EQ(b.trigger, MIG_TRIG_NONE); /* a new hand-over forgets the old trigger */
	T_EQ(b.announce_ns, 0);
	step(&a2, MIG_EV_VMIM_SUCCEEDED, 11);
	step(&a2, MIG_EV_TIMER, 12);
	T_EQ(a2.state, MIG_BASE);
}

/* B -> C while B is still converging: B stops its timer and its route at once. */
static void test_second_migration_during_timewait(void)
{
	struct mig_ep b, c;
	mig_ep_init(&b);
	mig_ep_init(&c);
	step(&b, MIG_EV_TARGET_POD, 1);
	step(&b, MIG_EV_READY_ANNOTATION, 2);
	T_EQ(b.trigger, MIG_TRIG_ANNOTATION);
	T_EQ(b.announce_ns, 0);
	step(&b, MIG_EV_VMIM_SUCCEEDED, 3);
	T_EQ(b.state, MIG_TIMEWAIT);
	step(&c, MIG_EV_TARGET_POD, 4);
	step(&c, MIG_EV_ANNOUNCE, 5);
	struct mig_result r = step(&b, MIG_EV_OWNER_REMOTE, 6);
	T_EQ(b.state, MIG_SOURCE);
	T_EQ(r.n, 2);
	T_EQ(r.act[0].kind, MIG_A_TIMER_STOP);
	T_EQ(r.act[1].kind, MIG_A_ROUTE_DEL);
	r = step(&b, MIG_EV_TIMER, 7); /* a timer that fired anyway is stale */
	T_EQ(r.kind, MIG_CELL_INVALID);
	T_EQ(b.state, MIG_SOURCE);
}

/* Failed after the cut-over: the target returns the owner, the source takes the
 * route back (either when it sees the VMIM fail or when the owner comes back). */
static void test_failed_rollback(void)
{
	struct mig_ep tgt, src;
	mig_ep_init(&tgt);
	mig_ep_init(&src);
	step(&tgt, MIG_EV_TARGET_POD, 1);
	step(&tgt, MIG_EV_ANNOUNCE, 2);
	step(&src, MIG_EV_OWNER_REMOTE, 3);
	struct mig_result r = step(&tgt, MIG_EV_VMIM_FAILED, 4);
	T_EQ(tgt.state, MIG_RETIRED);
	T_EQ(r.outcome, MIG_OUT_FAILED);
	T_EQ(r.act[0].kind, MIG_A_ROUTE_DEL);
	T_EQ(r.act[1].kind, MIG_A_OWNER_RETURN);
	r = step(&src, MIG_EV_OWNER_LOCAL, 5);
	T_EQ(src.state, MIG_BASE);
	T_EQ(r.act[0].kind, MIG_A_ROUTE_NORMAL);
	r = step(&src, MIG_EV_VMIM_FAILED, 6); /* now just old news */
	T_EQ(r.kind, MIG_CELL_NOOP);
	/* the failed target pod is deleted later; its label still says target */
	r = step(&tgt, MIG_EV_TARGET_POD, 7);
	T_EQ(r.kind, MIG_CELL_NOOP);
	T_EQ(tgt.state, MIG_RETIRED);
	r = step(&tgt, MIG_EV_POD_DELETED, 8);
	T_EQ(r.outcome, MIG_OUT_NONE); /* counted once already */
	T_EQ(r.act[0].kind, MIG_A_FORGET);
}

/* Failed before cut-over: the target never routed, the source never noticed. */
static void test_failed_before_cutover(void)
{
	struct mig_ep tgt, src;
	mig_ep_init(&tgt);
	mig_ep_init(&src);
	step(&tgt, MIG_EV_TARGET_POD, 1);
	struct mig_result r = step(&tgt, MIG_EV_VMIM_FAILED, 2);
	T_EQ(r.outcome, MIG_OUT_FAILED);
	for (unsigned i = 0; i < r.n; i++) {
		T_CHECK(r.act[i].kind != MIG_A_ROUTE_MIGRATE);
		T_CHECK(r.act[i].kind != MIG_A_OWNER_TAKE);
	}
	r = step(&src, MIG_EV_VMIM_FAILED, 3);
	T_EQ(r.kind, MIG_CELL_NOOP);
	T_EQ(src.state, MIG_BASE);
	/* an announcement after the failure does not resurrect it */
	r = step(&tgt, MIG_EV_ANNOUNCE, 4);
	T_EQ(r.kind, MIG_CELL_NOOP);
	T_EQ(tgt.state, MIG_RETIRED);
}

/* Target pod deleted before going live: aborted, nothing routed. */
static void test_aborted(void)
{
	struct mig_ep tgt;
	mig_ep_init(&tgt);
	step(&tgt, MIG_EV_TARGET_POD, 1);
	struct mig_result r = step(&tgt, MIG_EV_POD_DELETED, 2);
	T_EQ(r.outcome, MIG_OUT_ABORTED);
	T_EQ(r.n, 2);
	T_EQ(r.act[0].kind, MIG_A_DISARM);
	T_EQ(r.act[1].kind, MIG_A_FORGET);
}

/* The agent restarted mid-migration: the owner already points at the target. */
static void test_restart_mid_migration(void)
{
	struct mig_ep tgt;
	mig_ep_init(&tgt);
	step(&tgt, MIG_EV_TARGET_POD, 1);
	struct mig_result r = step(&tgt, MIG_EV_OWNER_LOCAL, 2);
	T_EQ(tgt.state, MIG_LIVE);
	T_EQ(tgt.trigger, MIG_TRIG_OWNER);
	for (unsigned i = 0; i < r.n; i++)
		T_CHECK(r.act[i].kind != MIG_A_OWNER_TAKE); /* nothing to swap */
}

/* The owner CAS answered late or never: the watch may come first; a final failure
 * gives the traffic back; the VMIM may end while it is in flight. */
static void test_swap_pending(void)
{
	struct mig_ep t;
	mig_ep_init(&t);
	step(&t, MIG_EV_TARGET_POD, 1);
	step(&t, MIG_EV_ANNOUNCE, 2);
	T_EQ(t.state, MIG_CLAIMING);
	/* the watch delivers our write before the answer */
	struct mig_result r = step(&t, MIG_EV_OWNER_LOCAL, 3);
	T_EQ(t.state, MIG_LIVE);
	T_EQ(r.n, 0);
	r = step(&t, MIG_EV_SWAP_DONE, 4); /* the answer, late */
	T_EQ(r.kind, MIG_CELL_NOOP);
	T_EQ(t.state, MIG_LIVE);

	/* the CAS fails for good: the route goes, the machine is a dark target again and
	 * the VMIM's failure then retires it (returning the owner is harmless: not ours) */
	mig_ep_init(&t);
	step(&t, MIG_EV_TARGET_POD, 1);
	step(&t, MIG_EV_ANNOUNCE, 2);
	r = step(&t, MIG_EV_SWAP_FAILED, 3);
	T_EQ(t.state, MIG_TARGET);
	T_STREQ(r.msg, "migration claim reverted");
	T_EQ(r.n, 2);
	T_EQ(r.act[0].kind, MIG_A_ROUTE_DEL);
	T_EQ(r.act[1].kind, MIG_A_PEER_RETRACT); /* the other agents route by the API again */
	T_EQ(t.trigger, MIG_TRIG_NONE);
	r = step(&t, MIG_EV_SWAP_FAILED, 4); /* a repeat changes nothing */
	T_EQ(r.kind, MIG_CELL_NOOP);
	r = step(&t, MIG_EV_VMIM_FAILED, 5);
	T_EQ(t.state, MIG_RETIRED);
	T_EQ(r.outcome, MIG_OUT_FAILED);

	/* the VMIM succeeds while the CAS is in flight: timewait, the answer is old news */
	mig_ep_init(&t);
	step(&t, MIG_EV_TARGET_POD, 1);
	step(&t, MIG_EV_ANNOUNCE, 2);
	r = step(&t, MIG_EV_VMIM_SUCCEEDED, 3);
	T_EQ(t.state, MIG_TIMEWAIT);
	T_EQ(r.outcome, MIG_OUT_SUCCEEDED);
	r = step(&t, MIG_EV_SWAP_DONE, 4);
	T_EQ(r.kind, MIG_CELL_NOOP);

	/* the VMIM fails while it is in flight: route out, the owner given back (queued
	 * after the take, so it undoes whatever the take did) */
	mig_ep_init(&t);
	step(&t, MIG_EV_TARGET_POD, 1);
	step(&t, MIG_EV_ANNOUNCE, 2);
	r = step(&t, MIG_EV_VMIM_FAILED, 3);
	T_EQ(t.state, MIG_RETIRED);
	T_EQ(r.outcome, MIG_OUT_FAILED);
	T_EQ(r.act[0].kind, MIG_A_ROUTE_DEL);
	T_EQ(r.act[1].kind, MIG_A_OWNER_RETURN);
	T_EQ(r.act[2].kind, MIG_A_PEER_RETRACT);
	r = step(&t, MIG_EV_SWAP_DONE, 4);
	T_EQ(r.kind, MIG_CELL_NOOP);
}

static struct ip_addr ip_of(const char *s)
{
	struct ip_addr a;
	T_CHECK(ip_parse(s, &a));
	return a;
}

static void test_announce_match(void)
{
	struct mig_ep ep;
	mig_ep_init(&ep);
	ep.ifindex = 7;
	ep.n_ip = 2;
	ep.ip[0] = ip_of("198.18.0.65");
	ep.ip[1] = ip_of("2001:db8::41");
	const uint8_t mac[6] = { 0x02, 0, 0, 0, 0, 0x41 };
	const uint8_t other[6] = { 0x02, 0, 0, 0, 0, 0x42 };
	struct ip_addr v4 = ip_of("198.18.0.65"), v6 = ip_of("2001:db8::41");
	struct ip_addr bad = ip_of("198.18.0.66"), none;
	memset(&none, 0, sizeof(none));
	T_CHECK(mig_announce_match(&ep, 7, &v4, NULL));
	T_CHECK(mig_announce_match(&ep, 7, &v6, other));
	T_CHECK(!mig_announce_match(&ep, 8, &v4, NULL)); /* another veth */
	T_CHECK(!mig_announce_match(&ep, 0, &v4, NULL));
	T_CHECK(!mig_announce_match(&ep, 7, &bad, NULL));
	/* RARP: MAC only; unknown MAC never matches */
	T_CHECK(!mig_announce_match(&ep, 7, &none, mac));
	memcpy(ep.mac, mac, 6);
	ep.has_mac = true;
	T_CHECK(mig_announce_match(&ep, 7, &none, mac));
	T_CHECK(mig_announce_match(&ep, 7, &bad, mac));
	T_CHECK(!mig_announce_match(&ep, 7, &none, other));
	T_CHECK(!mig_announce_match(&ep, 7, NULL, NULL));
	/* an endpoint without a veth yet matches nothing */
	ep.ifindex = 0;
	T_CHECK(!mig_announce_match(&ep, 0, &v4, mac));
}

static void test_owner_event(void)
{
	struct mig_ep ep;
	mig_ep_init(&ep);
	snprintf(ep.pod_uid, sizeof(ep.pod_uid), "%s", "uid-a");
	T_EQ(mig_owner_event(&ep, "uid-a", "node-a", "node-a"), MIG_EV_OWNER_LOCAL);
	T_EQ(mig_owner_event(&ep, "uid-b", "node-b", "node-a"), MIG_EV_OWNER_REMOTE);
	T_EQ(mig_owner_event(&ep, "uid-b", "node-a", "node-a"), MIG_N_EVENTS);
	T_EQ(mig_owner_event(&ep, "", "node-b", "node-a"), MIG_N_EVENTS);
	T_EQ(mig_owner_event(&ep, NULL, NULL, "node-a"), MIG_N_EVENTS);
	T_EQ(mig_owner_event(&ep, "uid-b", "", "node-a"), MIG_N_EVENTS);
}

/* A VM with v4+v6 addresses, source pod active on node-a, target alternate on node-b. */
#define HANDLE "vmnet.vmi.default.vm-a"
static void owner_of(struct ipam_owner *o, const char *name, const char *uid, const char *node)
{
	memset(o, 0, sizeof(*o));
	snprintf(o->ns, sizeof(o->ns), "default");
	snprintf(o->name, sizeof(o->name), "%s", name);
	snprintf(o->uid, sizeof(o->uid), "%s", uid);
	snprintf(o->node, sizeof(o->node), "%s", node);
}

static void vm_state(struct ipam_state *st, struct mig_ep *tgt, struct mig_ep *src,
		     bool with_target)
{
	struct err e;
	struct ipam_cidr c4, c6;
	ipam_state_init(st);
	T_EQ(ipam_cidr_parse(&c4, "198.18.0.0/24", &e), 0);
	T_EQ(ipam_cidr_parse(&c6, "2001:db8:4b76::/112", &e), 0);
	T_EQ(ipam_pool_add(st, "p4", &c4, 0, NULL, 0, &e), 0);
	T_EQ(ipam_pool_add(st, "p6", &c6, 0, NULL, 0, &e), 0);
	struct ipam_attrs at;
	memset(&at, 0, sizeof(at));
	struct ip_addr out[IPAM_HANDLE_IPS_MAX];
	unsigned n = 0;
	T_EQ(ipam_alloc(st, HANDLE, "node-a", IPAM_V4 | IPAM_V6, &at, out, &n, &e), 0);
	T_EQ(n, 2);
	struct ipam_owner o;
	owner_of(&o, "virt-launcher-vm-a-src", "uid-src", "node-a");
	T_EQ(ipam_owner_set(st, HANDLE, IPAM_ACTIVE, &o, NULL, &e), 0);
	if (with_target) {
		owner_of(&o, "virt-launcher-vm-a-tgt", "uid-tgt", "node-b");
		T_EQ(ipam_owner_set(st, HANDLE, IPAM_ALTERNATE, &o, NULL, &e), 0);
	}
	struct mig_ep *eps[2] = { tgt, src };
	const char *uids[2] = { "uid-tgt", "uid-src" };
	const char *pods[2] = { "virt-launcher-vm-a-tgt", "virt-launcher-vm-a-src" };
	for (unsigned k = 0; k < 2; k++) {
		mig_ep_init(eps[k]);
		snprintf(eps[k]->ns, sizeof(eps[k]->ns), "default");
		snprintf(eps[k]->pod, sizeof(eps[k]->pod), "%s", pods[k]);
		snprintf(eps[k]->pod_uid, sizeof(eps[k]->pod_uid), "%s", uids[k]);
		eps[k]->n_ip = n;
		for (unsigned i = 0; i < n; i++) {
			eps[k]->ip[i].family = out[i].family;
			memcpy(eps[k]->ip[i].b, out[i].b, 16);
		}
	}
}

static const char *slot(const struct ipam_state *st, const struct mig_ep *ep, unsigned i,
			enum ipam_slot which)
{
	struct ip_addr a;
	memset(&a, 0, sizeof(a));
	a.family = ep->ip[i].family;
	memcpy(a.b, ep->ip[i].b, 16);
	const struct ipam_attrs *at = ipam_lookup_ip(st, &a);
	if (!at)
		return "(none)";
	return which == IPAM_ACTIVE ? at->active.uid : at->alternate.uid;
}

static void test_owner_take_and_return(void)
{
	struct ipam_state st;
	struct mig_ep tgt, src;
	struct err e;
	bool ch = true;
	vm_state(&st, &tgt, &src, true);
	T_EQ(mig_owner_swap(&st, &tgt, true, &ch, &e), 0);
	T_CHECK(ch);
	for (unsigned i = 0; i < 2; i++) { /* both families, one handle */
		T_STREQ(slot(&st, &tgt, i, IPAM_ACTIVE), "uid-tgt");
		T_STREQ(slot(&st, &tgt, i, IPAM_ALTERNATE), "uid-src");
	}
	T_CHECK(ipam_check(&st, &e) == 0);
	/* again: already done, nothing changes */
	T_EQ(mig_owner_swap(&st, &tgt, true, &ch, &e), 0);
	T_CHECK(!ch);
	/* failed after the cut-over: the target gives it back */
	T_EQ(mig_owner_swap(&st, &tgt, false, &ch, &e), 0);
	T_CHECK(ch);
	T_STREQ(slot(&st, &tgt, 0, IPAM_ACTIVE), "uid-src");
	T_STREQ(slot(&st, &tgt, 0, IPAM_ALTERNATE), "uid-tgt");
	T_EQ(mig_owner_swap(&st, &tgt, false, &ch, &e), 0); /* not active: no-op */
	T_CHECK(!ch);
	/* the source reclaiming after the target took it: the same swap from its side */
	T_EQ(mig_owner_swap(&st, &tgt, true, &ch, &e), 0);
	T_EQ(mig_owner_swap(&st, &src, true, &ch, &e), 0);
	T_CHECK(ch);
	T_STREQ(slot(&st, &src, 1, IPAM_ACTIVE), "uid-src");
	T_STREQ(slot(&st, &src, 1, IPAM_ALTERNATE), "uid-tgt");
	ipam_state_free(&st);
}

static void test_owner_preconditions(void)
{
	struct ipam_state st;
	struct mig_ep tgt, src;
	struct err e;
	bool ch = true;
	vm_state(&st, &tgt, &src, false);
	/* a target that is not the alternate owner (another target replaced it) */
	T_EQ(mig_owner_swap(&st, &tgt, true, &ch, &e), -EBUSY);
	T_CHECK(!ch);
	T_CHECK(strstr(e.msg, "not the alternate owner") != NULL);
	T_STREQ(slot(&st, &src, 0, IPAM_ACTIVE), "uid-src"); /* untouched */
	/* nobody to give back to */
	T_EQ(mig_owner_swap(&st, &src, false, &ch, &e), -ENOENT);
	T_CHECK(strstr(e.msg, "no alternate owner") != NULL);
	/* the source pod is gone (DEL emptied active): the target takes an empty slot */
	T_EQ(ipam_owner_clear(&st, HANDLE, IPAM_ACTIVE, "uid-src", &e), 0);
	struct ipam_owner o;
	owner_of(&o, "virt-launcher-vm-a-tgt", "uid-tgt", "node-b");
	T_EQ(ipam_owner_set(&st, HANDLE, IPAM_ALTERNATE, &o, NULL, &e), 0);
	T_EQ(mig_owner_swap(&st, &tgt, true, &ch, &e), 0);
	T_CHECK(ch);
	T_STREQ(slot(&st, &tgt, 0, IPAM_ACTIVE), "uid-tgt");
	T_STREQ(slot(&st, &tgt, 0, IPAM_ALTERNATE), "");
	/* addresses nobody holds; a pod without uid */
	struct mig_ep stray = tgt;
	stray.ip[0] = ip_of("198.18.9.9");
	stray.n_ip = 1;
	T_EQ(mig_owner_swap(&st, &stray, true, &ch, &e), -ENOENT);
	stray = tgt;
	stray.pod_uid[0] = '\0';
	T_EQ(mig_owner_swap(&st, &stray, true, &ch, &e), -EINVAL);
	ipam_state_free(&st);
}

/* A half-done earlier swap (the v4 block written, the v6 block not) is repaired. */
static void test_owner_mixed_repair(void)
{
	struct ipam_state st;
	struct mig_ep tgt, src;
	struct err e;
	bool ch = false;
	vm_state(&st, &tgt, &src, true);
	struct ip_addr a4;
	memset(&a4, 0, sizeof(a4));
	a4.family = tgt.ip[0].family;
	memcpy(a4.b, tgt.ip[0].b, 16);
	struct ipam_owner o;
	owner_of(&o, "virt-launcher-vm-a-tgt", "uid-tgt", "node-b");
	T_EQ(ipam_owner_put(&st, &a4, IPAM_ACTIVE, &o, &e), 0);
	owner_of(&o, "virt-launcher-vm-a-src", "uid-src", "node-a");
	T_EQ(ipam_owner_put(&st, &a4, IPAM_ALTERNATE, &o, &e), 0);
	T_STREQ(slot(&st, &tgt, 0, IPAM_ACTIVE), "uid-tgt");
	T_STREQ(slot(&st, &tgt, 1, IPAM_ACTIVE), "uid-src");
	/* the handle-wide call cannot fix this ... */
	T_EQ(ipam_owner_set(&st, HANDLE, IPAM_ACTIVE, &o, "uid-src", &e), -EBUSY);
	/* ... the per-address swap can */
	T_EQ(mig_owner_swap(&st, &tgt, true, &ch, &e), 0);
	T_CHECK(ch);
	for (unsigned i = 0; i < 2; i++) {
		T_STREQ(slot(&st, &tgt, i, IPAM_ACTIVE), "uid-tgt");
		T_STREQ(slot(&st, &tgt, i, IPAM_ALTERNATE), "uid-src");
	}
	/* and the same for a give-back that stopped half way */
	owner_of(&o, "virt-launcher-vm-a-src", "uid-src", "node-a");
	T_EQ(ipam_owner_put(&st, &a4, IPAM_ACTIVE, &o, &e), 0);
	owner_of(&o, "virt-launcher-vm-a-tgt", "uid-tgt", "node-b");
	T_EQ(ipam_owner_put(&st, &a4, IPAM_ALTERNATE, &o, &e), 0);
	T_EQ(mig_owner_swap(&st, &tgt, false, &ch, &e), 0);
	T_CHECK(ch);
	for (unsigned i = 0; i < 2; i++) {
		T_STREQ(slot(&st, &tgt, i, IPAM_ACTIVE), "uid-src");
		T_STREQ(slot(&st, &tgt, i, IPAM_ALTERNATE), "uid-tgt");
	}
	/* ipam_owner_put: empty a slot; a bad owner; an address nobody holds */
	T_EQ(ipam_owner_put(&st, &a4, IPAM_ALTERNATE, NULL, &e), 0);
	T_STREQ(slot(&st, &tgt, 0, IPAM_ALTERNATE), "");
	memset(&o, 0, sizeof(o));
	T_EQ(ipam_owner_put(&st, &a4, IPAM_ACTIVE, &o, &e), -EINVAL);
	struct ip_addr none;
	T_EQ(ipam_addr_parse(&none, "198.18.0.200", &e), 0);
	T_EQ(ipam_owner_put(&st, &none, IPAM_ACTIVE, NULL, &e), -ENOENT);
	T_CHECK(ipam_check(&st, &e) == 0);
	ipam_state_free(&st);
}

int main(void)
{
	T_RUN(test_every_cell);
	T_RUN(test_messages);
	T_RUN(test_out_of_range);
	T_RUN(test_handover_success);
	T_RUN(test_there_and_back);
	T_RUN(test_second_migration_during_timewait);
	T_RUN(test_failed_rollback);
	T_RUN(test_failed_before_cutover);
	T_RUN(test_aborted);
	T_RUN(test_restart_mid_migration);
	T_RUN(test_swap_pending);
	T_RUN(test_announce_match);
	T_RUN(test_owner_event);
	T_RUN(test_owner_take_and_return);
	T_RUN(test_owner_preconditions);
	T_RUN(test_owner_mixed_repair);
	return t_done();
}
