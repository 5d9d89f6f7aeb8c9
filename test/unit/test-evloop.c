/* Unit tests for lib/evloop: io readiness, modify, timers (order, cancel, periodic,
 * re-arm), signals through signalfd, deletion and addition during dispatch, stop, and
 * destroy functions running exactly once. Every test has a watchdog timer so a bug
 * fails the test instead of hanging it; no test asserts how long anything took. */
#include "lib/err.h"
#include "lib/evloop.h"
#include "test/lib/t.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define WATCHDOG_MS 5000

static void watchdog_cb(struct ev_loop *loop, struct ev_timer *t, void *ud)
{
	(void)t;
	*(bool *)ud = true;
	ev_stop(loop);
}

/* A loop with a watchdog; *fired tells whether the watchdog ended the run. */
static struct ev_loop *loop_new(bool *fired)
{
	struct err e = { 0 };
	struct ev_loop *loop = ev_loop_new(&e);
	if (!loop) {
		t_note("ev_loop_new: %s", e.msg);
		return NULL;
	}
	*fired = false;
	if (ev_timer_add(loop, WATCHDOG_MS, 0, watchdog_cb, fired, NULL, NULL, &e) < 0)
		t_note("watchdog: %s", e.msg);
	return loop;
}

static int destroyed;
static void count_destroy(void *ud)
{
	(void)ud;
	destroyed++;
}

/* --- io --------------------------------------------------------------------------------- */

struct pipe_ctx {
	char got[64];   /* bytes read */
	size_t n;       /* how many */
	int calls;      /* callback invocations */
	uint32_t revents; /* last revents */
};

static void pipe_read_cb(struct ev_loop *loop, struct ev_io *io, int fd, uint32_t revents,
			 void *ud)
{
	struct pipe_ctx *c = ud;
	(void)io;
	c->calls++;
	c->revents = revents;
	ssize_t r = read(fd, c->got + c->n, sizeof(c->got) - c->n);
	if (r > 0)
		c->n += (size_t)r;
	ev_stop(loop);
}

static void test_io_pipe(void)
{
	bool wd;
	struct ev_loop *loop = loop_new(&wd);
	struct pipe_ctx c = { 0 };
	struct ev_io *io;
	struct err e = { 0 };
	int p[2];
	T_CHECK(loop != NULL);
	T_EQ(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	destroyed = 0;
	T_EQ(ev_io_add(loop, p[0], EPOLLIN, pipe_read_cb, &c, count_destroy, &io, &e), 0);
	T_EQ(write(p[1], "hello", 5), 5);
	T_EQ(ev_run(loop, &e), 0);
	T_CHECK(!wd);
	T_EQ(c.calls, 1);
	T_CHECK(c.revents & EPOLLIN);
	T_EQ(c.n, 5);
	T_MEMEQ(c.got, "hello", 5);
	/* adding the same fd twice is an error with a message */
	T_EQ(ev_io_add(loop, p[0], EPOLLIN, pipe_read_cb, &c, NULL, NULL, &e), -EEXIST);
	T_CHECK(strstr(e.msg, "epoll_ctl add fd") != NULL);
	T_EQ(ev_io_add(loop, -1, EPOLLIN, pipe_read_cb, &c, NULL, NULL, &e), -EBADF);
	T_EQ(destroyed, 0);
	ev_io_del(io);
	T_EQ(destroyed, 1);
	close(p[0]);
	close(p[1]);
	ev_loop_free(loop);
	T_EQ(destroyed, 1);
}

static void out_cb(struct ev_loop *loop, struct ev_io *io, int fd, uint32_t revents, void *ud)
{
	(void)io;
	(void)fd;
	*(uint32_t *)ud = revents;
	ev_stop(loop);
}

static void stop_timer_cb(struct ev_loop *loop, struct ev_timer *t, void *ud)
{
	(void)t;
	(void)ud;
	ev_stop(loop);
}

static void test_io_modify(void)
{
	bool wd;
	struct ev_loop *loop = loop_new(&wd);
	struct ev_io *io;
	struct err e = { 0 };
	uint32_t got = 0;
	int sp[2];
	T_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sp), 0);
	T_EQ(ev_io_add(loop, sp[0], EPOLLIN, out_cb, &got, NULL, &io, &e), 0);
	/* nothing to read: only the 20 ms timer ends this run */
	T_EQ(ev_timer_add(loop, 20, 0, stop_timer_cb, NULL, NULL, NULL, &e), 0);
	T_EQ(ev_run(loop, &e), 0);
	T_EQ(got, 0);
	T_EQ(ev_io_modify(io, EPOLLOUT, &e), 0);
	T_EQ(ev_run(loop, &e), 0);
	T_CHECK(got & EPOLLOUT);
	T_CHECK(!wd);
	close(sp[0]);
	close(sp[1]);
	ev_loop_free(loop);
}

/* --- timers ----------------------------------------------------------------------------- */

struct order_ctx {
	int seen[16];        /* ids in firing order */
	int n;               /* how many fired */
	int stop_after;      /* ev_stop when n reaches this */
	uint64_t armed_ms[16]; /* when each id was armed */
	uint64_t due_ms[16];   /* its delay */
	bool early;          /* a timer fired before its deadline */
};

struct order_timer {
	struct order_ctx *ctx; /* shared */
	int id;                /* this timer */
};

static void order_cb(struct ev_loop *loop, struct ev_timer *t, void *ud)
{
	struct order_timer *ot = ud;
	struct order_ctx *c = ot->ctx;
	(void)t;
	if (ev_now_ms() < c->armed_ms[ot->id] + c->due_ms[ot->id])
		c->early = true;
	c->seen[c->n++] = ot->id;
	if (c->n == c->stop_after)
		ev_stop(loop);
}

static void test_timer_order(void)
{
	bool wd;
	struct ev_loop *loop = loop_new(&wd);
	struct order_ctx c = { .stop_after = 5 };
	struct order_timer ot[5];
	/* far apart (only a > 50 ms stall between two adds could reorder them), plus
	 * two equal delays: armed in order, so due in order (tie-break by arm order) */
	const uint64_t delay[5] = { 150, 50, 100, 50, 0 };
	struct err e = { 0 };
	for (int i = 0; i < 5; i++) {
		ot[i] = (struct order_timer){ &c, i };
		c.armed_ms[i] = ev_now_ms();
		c.due_ms[i] = delay[i];
		T_EQ(ev_timer_add(loop, delay[i], 0, order_cb, &ot[i], NULL, NULL, &e), 0);
	}
	T_EQ(ev_run(loop, &e), 0);
	T_CHECK(!wd);
	T_EQ(c.n, 5);
	const int want[5] = { 4, 1, 3, 2, 0 };
	for (int i = 0; i < 5; i++)
		T_EQ(c.seen[i], want[i]);
	T_CHECK(!c.early);
	ev_loop_free(loop);
}

struct cancel_ctx {
	struct ev_timer *victim; /* cancelled by the first timer */
	bool victim_fired;       /* must stay false */
};

static void victim_cb(struct ev_loop *loop, struct ev_timer *t, void *ud)
{
	(void)loop;
	(void)t;
	((struct cancel_ctx *)ud)->victim_fired = true;
}

static void canceller_cb(struct ev_loop *loop, struct ev_timer *t, void *ud)
{
	(void)loop;
	(void)t;
	ev_timer_del(((struct cancel_ctx *)ud)->victim);
}

static void test_timer_cancel(void)
{
	bool wd;
	struct ev_loop *loop = loop_new(&wd);
	struct cancel_ctx c = { 0 };
	struct ev_timer *dis;
	struct err e = { 0 };
	destroyed = 0;
	T_EQ(ev_timer_add(loop, 10, 0, canceller_cb, &c, NULL, NULL, &e), 0);
	T_EQ(ev_timer_add(loop, 30, 0, victim_cb, &c, count_destroy, &c.victim, &e), 0);
	/* disarmed, not deleted: never fires, still valid */
	T_EQ(ev_timer_add(loop, 20, 0, victim_cb, &c, NULL, &dis, &e), 0);
	ev_timer_disarm(dis);
	T_CHECK(!ev_timer_armed(dis));
	T_EQ(ev_timer_add(loop, 60, 0, stop_timer_cb, NULL, NULL, NULL, &e), 0);
	T_EQ(ev_run(loop, &e), 0);
	T_CHECK(!wd);
	T_CHECK(!c.victim_fired);
	T_EQ(destroyed, 1);
	ev_timer_del(dis);
	ev_loop_free(loop);
	T_EQ(destroyed, 1);
}

/* The same deadline for both: whichever runs first deletes the other, in one batch. */
static void test_timer_cancel_same_batch(void)
{
	bool wd;
	struct ev_loop *loop = loop_new(&wd);
	struct cancel_ctx c = { 0 };
	struct err e = { 0 };
	destroyed = 0;
	T_EQ(ev_timer_add(loop, 0, 0, canceller_cb, &c, NULL, NULL, &e), 0);
	T_EQ(ev_timer_add(loop, 0, 0, victim_cb, &c, count_destroy, &c.victim, &e), 0);
	T_EQ(ev_timer_add(loop, 30, 0, stop_timer_cb, NULL, NULL, NULL, &e), 0);
	T_EQ(ev_run(loop, &e), 0);
	T_CHECK(!c.victim_fired);
	T_EQ(destroyed, 1);
	ev_loop_free(loop);
}

struct periodic_ctx {
	int count;       /* callbacks so far */
	int limit;       /* delete itself at this count */
	uint64_t first;  /* arm time */
	uint64_t last;   /* time of the previous callback */
	bool early;      /* a tick came less than a period after the previous one's deadline */
};

static void periodic_cb(struct ev_loop *loop, struct ev_timer *t, void *ud)
{
	struct periodic_ctx *c = ud;
	c->count++;
	/* tick k is due at first + k * 5 ms; it must never come before that */
	if (ev_now_ms() < c->first + (uint64_t)c->count * 5)
		c->early = true;
	if (c->count == c->limit) {
		ev_timer_del(t); /* deleting itself from its own callback */
		ev_stop(loop);
	}
}

static void test_timer_periodic(void)
{
	bool wd;
	struct ev_loop *loop = loop_new(&wd);
	struct periodic_ctx c = { .limit = 5, .first = ev_now_ms() };
	struct err e = { 0 };
	destroyed = 0;
	T_EQ(ev_timer_add(loop, 5, 5, periodic_cb, &c, count_destroy, NULL, &e), 0);
	T_EQ(ev_run(loop, &e), 0);
	T_CHECK(!wd);
	T_EQ(c.count, 5);
	T_CHECK(!c.early);
	T_EQ(destroyed, 1);
	ev_loop_free(loop);
	T_EQ(destroyed, 1);
}

struct rearm_ctx {
	int count;   /* callbacks so far */
};

static void rearm_cb(struct ev_loop *loop, struct ev_timer *t, void *ud)
{
	struct rearm_ctx *c = ud;
	T_CHECK(!ev_timer_armed(t)); /* a one-shot is disarmed while its callback runs */
	if (++c->count < 3)
		ev_timer_arm(t, 1, 0);
	else
		ev_stop(loop);
}

static void test_timer_rearm(void)
{
	bool wd;
	struct ev_loop *loop = loop_new(&wd);
	struct rearm_ctx c = { 0 };
	struct ev_timer *t;
	struct err e = { 0 };
	T_EQ(ev_timer_add(loop, 1, 0, rearm_cb, &c, NULL, &t, &e), 0);
	T_CHECK(ev_timer_armed(t));
	T_EQ(ev_run(loop, &e), 0);
	T_EQ(c.count, 3);
	T_CHECK(!ev_timer_armed(t));
	T_CHECK(!wd);
	/* run again: re-armed from outside, it fires once more */
	ev_timer_arm(t, 0, 0);
	T_EQ(ev_run(loop, &e), 0);
	T_EQ(c.count, 4);
	ev_loop_free(loop);
}

/* A periodic timer stopped by ev_timer_disarm inside its own callback stays stopped. */
static void disarm_self_cb(struct ev_loop *loop, struct ev_timer *t, void *ud)
{
	(void)loop;
	(*(int *)ud)++;
	ev_timer_disarm(t);
}

static void test_timer_periodic_disarm_self(void)
{
	bool wd;
	struct ev_loop *loop = loop_new(&wd);
	int count = 0;
	struct ev_timer *t;
	struct err e = { 0 };
	T_EQ(ev_timer_add(loop, 1, 1, disarm_self_cb, &count, NULL, &t, &e), 0);
	T_EQ(ev_timer_add(loop, 40, 0, stop_timer_cb, NULL, NULL, NULL, &e), 0);
	T_EQ(ev_run(loop, &e), 0);
	T_EQ(count, 1);
	T_CHECK(!ev_timer_armed(t));
	ev_loop_free(loop);
}

/* --- signals ---------------------------------------------------------------------------- */

struct sig_ctx {
	int got;       /* deliveries */
	int signo;     /* last signal number */
	pid_t pid;     /* sender of the last one */
};

static void sig_cb(struct ev_loop *loop, struct ev_signal *s, int signo,
		   const struct signalfd_siginfo *si, void *ud)
{
	struct sig_ctx *c = ud;
	(void)s;
	c->got++;
	c->signo = signo;
	c->pid = (pid_t)si->ssi_pid;
	ev_stop(loop);
}

static void raise_cb(struct ev_loop *loop, struct ev_timer *t, void *ud)
{
	(void)loop;
	(void)t;
	kill(getpid(), *(int *)ud);
}

static bool blocked(int signo)
{
	sigset_t cur;
	sigprocmask(SIG_BLOCK, NULL, &cur);
	return sigismember(&cur, signo);
}

static void test_signal_usr1(void)
{
	bool wd;
	struct ev_loop *loop = loop_new(&wd);
	struct sig_ctx c1 = { 0 }, c2 = { 0 };
	struct ev_signal *s1, *s2;
	struct err e = { 0 };
	int signo = SIGUSR1;
	T_CHECK(!blocked(SIGUSR1));
	destroyed = 0;
	T_EQ(ev_signal_add(loop, SIGUSR1, sig_cb, &c1, count_destroy, &s1, &e), 0);
	T_EQ(ev_signal_add(loop, SIGUSR1, sig_cb, &c2, count_destroy, &s2, &e), 0);
	T_CHECK(blocked(SIGUSR1));
	T_EQ(ev_timer_add(loop, 1, 0, raise_cb, &signo, NULL, NULL, &e), 0);
	T_EQ(ev_run(loop, &e), 0);
	T_CHECK(!wd);
	T_EQ(c1.got, 1);
	T_EQ(c2.got, 1); /* every watcher of the signal is called */
	T_EQ(c1.signo, SIGUSR1);
	T_EQ(c1.pid, getpid());
	/* a signal sent while no run is active waits in the signalfd */
	kill(getpid(), SIGUSR1);
	ev_signal_del(s2);
	T_CHECK(blocked(SIGUSR1)); /* still watched by s1 */
	T_EQ(ev_run(loop, &e), 0);
	T_EQ(c1.got, 2);
	T_EQ(c2.got, 1);
	/* the last watcher gone: unblocked again, and a pending one is dropped, not fatal */
	kill(getpid(), SIGUSR1);
	ev_signal_del(s1);
	T_CHECK(!blocked(SIGUSR1));
	T_EQ(destroyed, 2);
	T_EQ(ev_signal_add(loop, SIGKILL, sig_cb, &c1, NULL, NULL, &e), -EINVAL);
	T_EQ(ev_signal_add(loop, 0, sig_cb, &c1, NULL, NULL, &e), -EINVAL);
	T_EQ(ev_signal_add(loop, 1000, sig_cb, &c1, NULL, NULL, &e), -EINVAL);
	ev_loop_free(loop);
}

static void test_signal_already_blocked(void)
{
	bool wd;
	struct ev_loop *loop = loop_new(&wd);
	struct sig_ctx c = { 0 };
	struct ev_signal *s;
	struct err e = { 0 };
	sigset_t one;
	sigemptyset(&one);
	sigaddset(&one, SIGUSR2);
	sigprocmask(SIG_BLOCK, &one, NULL);
	T_EQ(ev_signal_add(loop, SIGUSR2, sig_cb, &c, NULL, &s, &e), 0);
	ev_signal_del(s);
	T_CHECK(blocked(SIGUSR2)); /* it was blocked before the loop came: stays so */
	sigprocmask(SIG_UNBLOCK, &one, NULL);
	/* ev_loop_free restores the mask for signals it still watches */
	T_EQ(ev_signal_add(loop, SIGUSR2, sig_cb, &c, NULL, &s, &e), 0);
	T_CHECK(blocked(SIGUSR2));
	ev_loop_free(loop);
	T_CHECK(!blocked(SIGUSR2));
}

/* --- deletion and addition during dispatch ---------------------------------------------- */

struct pair_ctx {
	struct ev_io *io[2];  /* the two watchers */
	int calls[2];         /* callbacks per watcher */
	int fds[2];           /* their read ends */
};

struct pair_arg {
	struct pair_ctx *ctx; /* shared */
	int self;             /* 0 or 1 */
};

static void pair_cb(struct ev_loop *loop, struct ev_io *io, int fd, uint32_t revents, void *ud)
{
	struct pair_arg *a = ud;
	(void)io;
	(void)fd;
	(void)revents;
	a->ctx->calls[a->self]++;
	/* both are readable in the same batch: the first one called deletes the other,
	 * then itself */
	ev_io_del(a->ctx->io[1 - a->self]);
	ev_io_del(a->ctx->io[a->self]);
	ev_stop(loop);
}

static void test_del_during_dispatch(void)
{
	bool wd;
	struct ev_loop *loop = loop_new(&wd);
	struct pair_ctx c = { 0 };
	struct pair_arg *a0 = malloc(sizeof(*a0)), *a1 = malloc(sizeof(*a1));
	struct err e = { 0 };
	int p0[2], p1[2];
	T_EQ(pipe2(p0, O_NONBLOCK | O_CLOEXEC), 0);
	T_EQ(pipe2(p1, O_NONBLOCK | O_CLOEXEC), 0);
	*a0 = (struct pair_arg){ &c, 0 };
	*a1 = (struct pair_arg){ &c, 1 };
	/* destroy = free: ASan proves nothing touches user_data after it */
	T_EQ(ev_io_add(loop, p0[0], EPOLLIN, pair_cb, a0, free, &c.io[0], &e), 0);
	T_EQ(ev_io_add(loop, p1[0], EPOLLIN, pair_cb, a1, free, &c.io[1], &e), 0);
	T_EQ(write(p0[1], "x", 1), 1);
	T_EQ(write(p1[1], "y", 1), 1);
	T_EQ(ev_run(loop, &e), 0);
	T_EQ(c.calls[0] + c.calls[1], 1);
	T_CHECK(!wd);
	for (int i = 0; i < 2; i++) {
		close(p0[i]);
		close(p1[i]);
	}
	ev_loop_free(loop);
}

struct adder_ctx {
	int fd;              /* readable pipe to watch from inside a callback */
	struct pipe_ctx got; /* what the added watcher read */
};

static void adder_cb(struct ev_loop *loop, struct ev_timer *t, void *ud)
{
	struct adder_ctx *c = ud;
	struct err e = { 0 };
	if (ev_io_add(loop, c->fd, EPOLLIN, pipe_read_cb, &c->got, NULL, NULL, &e) < 0)
		t_note("add from callback: %s", e.msg);
	ev_timer_del(t);
}

static void test_add_during_dispatch(void)
{
	bool wd;
	struct ev_loop *loop = loop_new(&wd);
	struct adder_ctx c = { 0 };
	struct err e = { 0 };
	int p[2];
	T_EQ(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	c.fd = p[0];
	T_EQ(write(p[1], "late", 4), 4);
	T_EQ(ev_timer_add(loop, 1, 0, adder_cb, &c, NULL, NULL, &e), 0);
	T_EQ(ev_run(loop, &e), 0);
	T_CHECK(!wd);
	T_EQ(c.got.calls, 1);
	T_EQ(c.got.n, 4);
	close(p[0]);
	close(p[1]);
	ev_loop_free(loop);
}

/* ev_loop_free deletes whatever is left and runs every destroy once. */
static void test_free_runs_destroy(void)
{
	struct err e = { 0 };
	struct ev_loop *loop = ev_loop_new(&e);
	int p[2];
	T_EQ(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	destroyed = 0;
	T_EQ(ev_io_add(loop, p[0], EPOLLIN, pipe_read_cb, NULL, count_destroy, NULL, &e), 0);
	T_EQ(ev_timer_add(loop, 100000, 0, stop_timer_cb, NULL, count_destroy, NULL, &e), 0);
	T_EQ(ev_timer_add(loop, 1, 1, stop_timer_cb, NULL, count_destroy, NULL, &e), 0);
	T_EQ(ev_signal_add(loop, SIGUSR1, sig_cb, NULL, count_destroy, NULL, &e), 0);
	ev_loop_free(loop);
	T_EQ(destroyed, 4);
	T_CHECK(!blocked(SIGUSR1));
	close(p[0]);
	close(p[1]);
	ev_loop_free(NULL);
}

/* Many timers: the heap keeps them in deadline order whatever the insertion order.
 * The test cannot see a timer's exact deadline (the loop reads the clock inside
 * ev_timer_add, and this machine may preempt us between any two lines), so each timer
 * records the interval its deadline must lie in: [before add + d, after add + d + 1) ms.
 * Firing B after A is wrong only when B's interval lies entirely before A's. */
struct many_ctx {
	uint64_t max_lo;        /* greatest lower bound of the deadlines fired so far */
	int n;                  /* callbacks so far */
	bool out_of_order;      /* a timer certainly came after a later-due one */
	bool early;             /* a timer came before its deadline */
};

struct many_timer {
	struct many_ctx *ctx;   /* shared */
	uint64_t lo, hi;        /* the deadline is in [lo, hi) */
};

static void many_cb(struct ev_loop *loop, struct ev_timer *t, void *ud)
{
	struct many_timer *m = ud;
	(void)t;
	if (m->hi <= m->ctx->max_lo)
		m->ctx->out_of_order = true;
	if (ev_now_ms() < m->lo)
		m->ctx->early = true;
	if (m->lo > m->ctx->max_lo)
		m->ctx->max_lo = m->lo;
	if (++m->ctx->n == 200)
		ev_stop(loop);
}

static void test_many_timers(void)
{
	bool wd;
	struct ev_loop *loop = loop_new(&wd);
	struct many_ctx c = { 0 };
	struct many_timer *m = calloc(200, sizeof(*m));
	struct err e = { 0 };
	uint64_t x = 12345;
	for (int i = 0; i < 200; i++) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		uint64_t d = (x >> 33) % 50;
		m[i].ctx = &c;
		m[i].lo = ev_now_ms() + d;
		T_EQ(ev_timer_add(loop, d, 0, many_cb, &m[i], NULL, NULL, &e), 0);
		m[i].hi = ev_now_ms() + d + 1;
	}
	T_EQ(ev_run(loop, &e), 0);
	T_CHECK(!wd);
	T_EQ(c.n, 200);
	T_CHECK(!c.out_of_order);
	T_CHECK(!c.early);
	ev_loop_free(loop);
	free(m);
}

static void busy_cb(struct ev_loop *loop, struct ev_timer *t, void *ud)
{
	struct err e = { 0 };
	(void)t;
	*(int *)ud = ev_run(loop, &e);
	ev_stop(loop);
}

static void test_run_twice_is_busy(void)
{
	bool wd;
	struct ev_loop *loop = loop_new(&wd);
	struct err e = { 0 };
	int nested = 0;
	T_EQ(ev_timer_add(loop, 0, 0, busy_cb, &nested, NULL, NULL, &e), 0);
	T_EQ(ev_run(loop, &e), 0);
	T_EQ(nested, -EBUSY);
	T_CHECK(ev_loop_fd(loop) >= 0);
	ev_loop_free(loop);
}

int main(void)
{
	T_RUN(test_io_pipe);
	T_RUN(test_io_modify);
	T_RUN(test_timer_order);
	T_RUN(test_timer_cancel);
	T_RUN(test_timer_cancel_same_batch);
	T_RUN(test_timer_periodic);
	T_RUN(test_timer_rearm);
	T_RUN(test_timer_periodic_disarm_self);
	T_RUN(test_signal_usr1);
	T_RUN(test_signal_already_blocked);
	T_RUN(test_del_during_dispatch);
	T_RUN(test_add_during_dispatch);
	T_RUN(test_free_runs_destroy);
	T_RUN(test_many_timers);
	T_RUN(test_run_twice_is_busy);
	return t_done();
}
