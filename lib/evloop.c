/* evloop — epoll + timerfd + signalfd event loop; see evloop.h.
 *
 * Memory rule that makes deletion during dispatch safe: every watcher starts with a
 * struct ev_hdr. Deleting a watcher unlinks it, marks it dead and runs its destroy
 * function at once, but while a dispatch is running (loop->depth > 0) the memory goes
 * to a graveyard that is freed only when the dispatch is over. So a pointer taken
 * before a callback (an epoll event's data.ptr, the next timer of a batch, the next
 * signal watcher) always points to valid memory, and `dead` says whether to skip it.
 */
#include "lib/evloop.h"
#include "lib/err.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define EV_BATCH 64               /* epoll events read per epoll_wait */
#define EV_NOT_ARMED ((size_t)-1) /* heap_idx of a timer that is not in the heap */
#define NS_PER_MS 1000000ull
#define EV_MAX_MS (UINT64_MAX / NS_PER_MS / 4) /* clamp: far future, no overflow */

/* First member of every watcher: the graveyard link. */
struct ev_hdr {
	struct ev_hdr *grave_next; /* next buried watcher, freed after the dispatch */
};

/* Intrusive doubly-linked list node; a list is a sentinel node. */
struct ev_link {
	struct ev_link *prev, *next;
};

struct ev_io {
	struct ev_hdr hdr;       /* must be first (graveyard) */
	struct ev_loop *loop;    /* owner */
	struct ev_link link;     /* in loop->ios */
	int fd;                  /* watched descriptor (not owned) */
	uint32_t events;         /* epoll events asked for */
	ev_io_fn cb;             /* callback */
	void *user_data;         /* callback argument */
	ev_destroy_fn destroy;   /* run on user_data at deletion; may be NULL */
	bool dead;               /* deleted; never call again */
};

struct ev_timer {
	struct ev_hdr hdr;         /* must be first (graveyard) */
	struct ev_loop *loop;      /* owner */
	struct ev_link link;       /* in loop->timers (armed or not) */
	uint64_t deadline_ns;      /* CLOCK_MONOTONIC deadline when armed */
	uint64_t period_ns;        /* 0: one-shot */
	uint64_t seq;              /* arm order: tie-breaker for equal deadlines */
	uint64_t arm_gen;          /* bumped by every arm/disarm (did the callback re-arm?) */
	size_t heap_idx;           /* index in loop->heap, or EV_NOT_ARMED */
	struct ev_timer *batch_next; /* next due timer in the batch being dispatched */
	bool in_batch;             /* due in the current batch and not re-armed since */
	ev_timer_fn cb;            /* callback */
	void *user_data;           /* callback argument */
	ev_destroy_fn destroy;     /* run on user_data at deletion; may be NULL */
	bool dead;                 /* deleted; never call again */
};

struct ev_signal {
	struct ev_hdr hdr;       /* must be first (graveyard) */
	struct ev_loop *loop;    /* owner */
	struct ev_link link;     /* in loop->signals */
	int signo;               /* watched signal */
	uint64_t seq;            /* creation order: watchers added during dispatch wait */
	ev_signal_fn cb;         /* callback */
	void *user_data;         /* callback argument */
	ev_destroy_fn destroy;   /* run on user_data at deletion; may be NULL */
	bool dead;               /* deleted; never call again */
};

struct ev_loop {
	int epfd;                  /* epoll instance */
	int tfd;                   /* the one timerfd (CLOCK_MONOTONIC, absolute) */
	int sfd;                   /* the one signalfd */
	struct ev_io *tio, *sio;   /* internal watchers of tfd and sfd */
	struct ev_link ios;        /* every io watcher, internal ones included */
	struct ev_link timers;     /* every timer */
	struct ev_link signals;    /* every signal watcher */
	struct ev_timer **heap;    /* armed timers, min-heap on (deadline_ns, seq) */
	size_t heap_len;           /* armed timers */
	size_t heap_cap;           /* slots in heap; always >= number of timers */
	size_t ntimers;            /* timers in loop->timers */
	uint64_t seq;              /* counter for ev_timer.seq and ev_signal.seq */
	uint64_t armed_ns;         /* deadline tfd is armed for; 0 = disarmed */
	sigset_t sigs;             /* signals the signalfd reads */
	sigset_t we_blocked;       /* signals the loop blocked (unblocked when unwatched) */
	struct ev_hdr *graveyard;  /* deleted watchers waiting for the dispatch to end */
	int depth;                 /* > 0 while callbacks are being dispatched */
	bool running;              /* inside ev_run */
	bool stop;                 /* ev_stop was called */
};

/* --- lists, graveyard, clock ---------------------------------------------------------- */

static void list_init(struct ev_link *l)
{
	l->prev = l->next = l;
}

static void list_add_tail(struct ev_link *head, struct ev_link *n)
{
	n->prev = head->prev;
	n->next = head;
	head->prev->next = n;
	head->prev = n;
}

/* Unlink n; n->next is kept so a walk standing on n can go on (see the file comment). */
static void list_del(struct ev_link *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->prev = NULL;
}

#define link_owner(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

static void bury(struct ev_loop *loop, struct ev_hdr *h)
{
	if (loop->depth > 0) {
		h->grave_next = loop->graveyard;
		loop->graveyard = h;
	} else {
		free(h);
	}
}

static void reap(struct ev_loop *loop)
{
	while (loop->graveyard) {
		struct ev_hdr *h = loop->graveyard;
		loop->graveyard = h->grave_next;
		free(h);
	}
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t ev_now_ms(void)
{
	return now_ns() / NS_PER_MS;
}

/* --- timer heap ------------------------------------------------------------------------- */

static bool timer_before(const struct ev_timer *a, const struct ev_timer *b)
{
	return a->deadline_ns < b->deadline_ns ||
	       (a->deadline_ns == b->deadline_ns && a->seq < b->seq);
}

static void heap_set(struct ev_loop *loop, size_t i, struct ev_timer *t)
{
	loop->heap[i] = t;
	t->heap_idx = i;
}

static void heap_up(struct ev_loop *loop, size_t i)
{
	struct ev_timer *t = loop->heap[i];
	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (!timer_before(t, loop->heap[parent]))
			break;
		heap_set(loop, i, loop->heap[parent]);
		i = parent;
	}
	heap_set(loop, i, t);
}

static void heap_down(struct ev_loop *loop, size_t i)
{
	struct ev_timer *t = loop->heap[i];
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		const struct ev_timer *best = t;
		if (l < loop->heap_len && timer_before(loop->heap[l], best)) {
			m = l;
			best = loop->heap[l];
		}
		if (r < loop->heap_len && timer_before(loop->heap[r], best))
			m = r;
		if (m == i)
			break;
		heap_set(loop, i, loop->heap[m]);
		i = m;
	}
	heap_set(loop, i, t);
}

static void heap_push(struct ev_loop *loop, struct ev_timer *t)
{
	/* capacity is reserved by ev_timer_add: heap_cap >= ntimers >= heap_len + 1 */
	loop->heap[loop->heap_len] = t;
	t->heap_idx = loop->heap_len++;
	heap_up(loop, t->heap_idx);
}

static void heap_remove(struct ev_loop *loop, struct ev_timer *t)
{
	size_t i = t->heap_idx;
	struct ev_timer *last = loop->heap[--loop->heap_len];
	t->heap_idx = EV_NOT_ARMED;
	if (last == t)
		return;
	heap_set(loop, i, last);
	heap_up(loop, i);
	heap_down(loop, last->heap_idx);
}

/* Arm the timerfd for the earliest deadline, or disarm it. */
static void timerfd_update(struct ev_loop *loop)
{
	uint64_t want = loop->heap_len ? loop->heap[0]->deadline_ns : 0;
	struct itimerspec its;
	if (want == loop->armed_ns)
		return;
	memset(&its, 0, sizeof(its));
	if (want) {
		its.it_value.tv_sec = (time_t)(want / 1000000000ull);
		its.it_value.tv_nsec = (long)(want % 1000000000ull);
	}
	/* cannot fail with a valid fd and a normalized, non-negative time */
	timerfd_settime(loop->tfd, TFD_TIMER_ABSTIME, &its, NULL);
	loop->armed_ns = want;
}

static void timer_schedule(struct ev_timer *t, uint64_t deadline)
{
	struct ev_loop *loop = t->loop;
	t->deadline_ns = deadline ? deadline : 1; /* 0 would disarm the timerfd */
	t->seq = ++loop->seq;
	heap_push(loop, t);
}

/* The timerfd fired: run every timer that is due, in (deadline, seq) order. */
static void timers_dispatch(struct ev_loop *loop, struct ev_io *io, int fd, uint32_t revents,
			    void *user_data)
{
	uint64_t expirations;
	struct ev_timer *batch = NULL, **tail = &batch;
	(void)io;
	(void)revents;
	(void)user_data;
	if (read(fd, &expirations, sizeof(expirations)) < 0) {
		/* EAGAIN: re-armed since it fired; the heap below is the truth anyway */
	}
	loop->armed_ns = 0; /* an expired absolute timerfd is disarmed */
	uint64_t now = now_ns();
	while (loop->heap_len && loop->heap[0]->deadline_ns <= now) {
		struct ev_timer *t = loop->heap[0];
		heap_remove(loop, t);
		t->in_batch = true;
		t->batch_next = NULL;
		*tail = t;
		tail = &t->batch_next;
	}
	for (struct ev_timer *t = batch; t; t = t->batch_next) {
		if (t->dead || !t->in_batch)
			continue; /* deleted, or re-armed/disarmed by an earlier callback */
		t->in_batch = false;
		uint64_t gen = t->arm_gen;
		t->cb(loop, t, t->user_data);
		if (!t->dead && t->arm_gen == gen && t->period_ns) {
			uint64_t next = t->deadline_ns + t->period_ns;
			uint64_t after = now_ns();
			if (next <= after)
				next = after + t->period_ns;
			timer_schedule(t, next);
		}
	}
	timerfd_update(loop);
}

/* --- signals ---------------------------------------------------------------------------- */

static void signals_dispatch(struct ev_loop *loop, struct ev_io *io, int fd, uint32_t revents,
			     void *user_data)
{
	struct signalfd_siginfo si;
	(void)io;
	(void)revents;
	(void)user_data;
	while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		uint64_t limit = loop->seq; /* watchers added from a callback wait */
		for (struct ev_link *l = loop->signals.next; l != &loop->signals; l = l->next) {
			struct ev_signal *s = link_owner(l, struct ev_signal, link);
			if (s->dead || s->seq > limit || s->signo != (int)si.ssi_signo)
				continue;
			s->cb(loop, s, s->signo, &si, s->user_data);
		}
	}
}

/* --- loop ------------------------------------------------------------------------------- */

struct ev_loop *ev_loop_new(struct err *e)
{
	struct ev_loop *loop = calloc(1, sizeof(*loop));
	if (!loop) {
		err_set(e, ENOMEM, "evloop: new");
		return NULL;
	}
	loop->epfd = loop->tfd = loop->sfd = -1;
	list_init(&loop->ios);
	list_init(&loop->timers);
	list_init(&loop->signals);
	sigemptyset(&loop->sigs);
	sigemptyset(&loop->we_blocked);
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epfd < 0) {
		err_set(e, errno, "evloop: epoll_create1");
		goto fail;
	}
	loop->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (loop->tfd < 0) {
		err_set(e, errno, "evloop: timerfd_create");
		goto fail;
	}
	loop->sfd = signalfd(-1, &loop->sigs, SFD_NONBLOCK | SFD_CLOEXEC);
	if (loop->sfd < 0) {
		err_set(e, errno, "evloop: signalfd");
		goto fail;
	}
	if (ev_io_add(loop, loop->tfd, EPOLLIN, timers_dispatch, NULL, NULL, &loop->tio, e) < 0 ||
	    ev_io_add(loop, loop->sfd, EPOLLIN, signals_dispatch, NULL, NULL, &loop->sio, e) < 0)
		goto fail;
	return loop;
fail:
	ev_loop_free(loop);
	return NULL;
}

void ev_loop_free(struct ev_loop *loop)
{
	if (!loop)
		return;
	while (loop->signals.next != &loop->signals)
		ev_signal_del(link_owner(loop->signals.next, struct ev_signal, link));
	while (loop->timers.next != &loop->timers)
		ev_timer_del(link_owner(loop->timers.next, struct ev_timer, link));
	while (loop->ios.next != &loop->ios)
		ev_io_del(link_owner(loop->ios.next, struct ev_io, link));
	reap(loop);
	if (loop->sfd >= 0)
		close(loop->sfd);
	if (loop->tfd >= 0)
		close(loop->tfd);
	if (loop->epfd >= 0)
		close(loop->epfd);
	free(loop->heap);
	free(loop);
}

int ev_run(struct ev_loop *loop, struct err *e)
{
	struct epoll_event evs[EV_BATCH];
	int r = 0;
	if (loop->running)
		return err_setx(e, EBUSY, "evloop: run: already running");
	loop->running = true;
	loop->stop = false;
	while (!loop->stop) {
		int n = epoll_wait(loop->epfd, evs, EV_BATCH, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = err_set(e, errno, "evloop: epoll_wait");
			break;
		}
		loop->depth++;
		for (int i = 0; i < n; i++) {
			struct ev_io *io = evs[i].data.ptr;
			if (io->dead)
				continue;
			io->cb(loop, io, io->fd, evs[i].events, io->user_data);
		}
		loop->depth--;
		reap(loop);
	}
	loop->running = false;
	return r;
}

void ev_stop(struct ev_loop *loop)
{
	loop->stop = true;
}

int ev_loop_fd(const struct ev_loop *loop)
{
	return loop->epfd;
}

/* --- io --------------------------------------------------------------------------------- */

int ev_io_add(struct ev_loop *loop, int fd, uint32_t events, ev_io_fn cb, void *user_data,
	      ev_destroy_fn destroy, struct ev_io **out, struct err *e)
{
	struct ev_io *io = calloc(1, sizeof(*io));
	if (!io)
		return err_set(e, ENOMEM, "evloop: io fd %d", fd);
	io->loop = loop;
	io->fd = fd;
	io->events = events;
	io->cb = cb;
	io->user_data = user_data;
	io->destroy = destroy;
	struct epoll_event ev = { .events = events, .data.ptr = io };
	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int r = err_set(e, errno, "evloop: epoll_ctl add fd %d", fd);
		free(io);
		return r;
	}
	list_add_tail(&loop->ios, &io->link);
	if (out)
		*out = io;
	return 0;
}

int ev_io_modify(struct ev_io *io, uint32_t events, struct err *e)
{
	struct epoll_event ev = { .events = events, .data.ptr = io };
	if (epoll_ctl(io->loop->epfd, EPOLL_CTL_MOD, io->fd, &ev) < 0)
		return err_set(e, errno, "evloop: epoll_ctl modify fd %d", io->fd);
	io->events = events;
	return 0;
}

void ev_io_del(struct ev_io *io)
{
	if (!io || io->dead)
		return;
	/* EBADF/ENOENT when the fd was closed first: it already left the epoll set */
	epoll_ctl(io->loop->epfd, EPOLL_CTL_DEL, io->fd, NULL);
	list_del(&io->link);
	io->dead = true;
	if (io->destroy)
		io->destroy(io->user_data);
	bury(io->loop, &io->hdr);
}

/* --- timers ----------------------------------------------------------------------------- */

int ev_timer_add(struct ev_loop *loop, uint64_t first_ms, uint64_t period_ms, ev_timer_fn cb,
		 void *user_data, ev_destroy_fn destroy, struct ev_timer **out, struct err *e)
{
	if (loop->ntimers + 1 > loop->heap_cap) {
		size_t cap = loop->heap_cap ? loop->heap_cap * 2 : 16;
		struct ev_timer **h = reallocarray(loop->heap, cap, sizeof(*h));
		if (!h)
			return err_set(e, ENOMEM, "evloop: timer");
		loop->heap = h;
		loop->heap_cap = cap;
	}
	struct ev_timer *t = calloc(1, sizeof(*t));
	if (!t)
		return err_set(e, ENOMEM, "evloop: timer");
	t->loop = loop;
	t->heap_idx = EV_NOT_ARMED;
	t->cb = cb;
	t->user_data = user_data;
	t->destroy = destroy;
	list_add_tail(&loop->timers, &t->link);
	loop->ntimers++;
	ev_timer_arm(t, first_ms, period_ms);
	if (out)
		*out = t;
	return 0;
}

void ev_timer_disarm(struct ev_timer *t)
{
	t->arm_gen++;
	t->in_batch = false;
	if (t->heap_idx != EV_NOT_ARMED) {
		heap_remove(t->loop, t);
		timerfd_update(t->loop);
	}
}

void ev_timer_arm(struct ev_timer *t, uint64_t first_ms, uint64_t period_ms)
{
	if (t->dead)
		return;
	ev_timer_disarm(t);
	if (first_ms > EV_MAX_MS)
		first_ms = EV_MAX_MS;
	if (period_ms > EV_MAX_MS)
		period_ms = EV_MAX_MS;
	t->period_ns = period_ms * NS_PER_MS;
	timer_schedule(t, now_ns() + first_ms * NS_PER_MS);
	timerfd_update(t->loop);
}

bool ev_timer_armed(const struct ev_timer *t)
{
	return t->heap_idx != EV_NOT_ARMED;
}

void ev_timer_del(struct ev_timer *t)
{
	if (!t || t->dead)
		return;
	ev_timer_disarm(t);
	list_del(&t->link);
	t->loop->ntimers--;
	t->dead = true;
	if (t->destroy)
		t->destroy(t->user_data);
	bury(t->loop, &t->hdr);
}

/* --- signals ---------------------------------------------------------------------------- */

static bool signal_watched(const struct ev_loop *loop, int signo)
{
	for (const struct ev_link *l = loop->signals.next; l != &loop->signals; l = l->next) {
		const struct ev_signal *s = link_owner(l, struct ev_signal, link);
		if (s->signo == signo)
			return true;
	}
	return false;
}

int ev_signal_add(struct ev_loop *loop, int signo, ev_signal_fn cb, void *user_data,
		  ev_destroy_fn destroy, struct ev_signal **out, struct err *e)
{
	sigset_t one, old, want;
	if (signo == SIGKILL || signo == SIGSTOP || sigemptyset(&one) < 0 ||
	    sigaddset(&one, signo) < 0)
		return err_setx(e, EINVAL, "evloop: signal %d: cannot be watched", signo);
	struct ev_signal *s = calloc(1, sizeof(*s));
	if (!s)
		return err_set(e, ENOMEM, "evloop: signal %d", signo);
	if (!sigismember(&loop->sigs, signo)) {
		want = loop->sigs;
		sigaddset(&want, signo);
		if (sigprocmask(SIG_BLOCK, &one, &old) < 0) {
			int r = err_set(e, errno, "evloop: signal %d: block", signo);
			free(s);
			return r;
		}
		if (signalfd(loop->sfd, &want, 0) < 0) {
			int r = err_set(e, errno, "evloop: signal %d: signalfd", signo);
			if (!sigismember(&old, signo))
				sigprocmask(SIG_UNBLOCK, &one, NULL);
			free(s);
			return r;
		}
		if (!sigismember(&old, signo))
			sigaddset(&loop->we_blocked, signo);
		loop->sigs = want;
	}
	s->loop = loop;
	s->signo = signo;
	s->seq = ++loop->seq;
	s->cb = cb;
	s->user_data = user_data;
	s->destroy = destroy;
	list_add_tail(&loop->signals, &s->link);
	if (out)
		*out = s;
	return 0;
}

void ev_signal_del(struct ev_signal *s)
{
	if (!s || s->dead)
		return;
	struct ev_loop *loop = s->loop;
	list_del(&s->link);
	s->dead = true;
	if (!signal_watched(loop, s->signo)) {
		sigset_t one;
		sigemptyset(&one);
		sigaddset(&one, s->signo);
		sigdelset(&loop->sigs, s->signo);
		signalfd(loop->sfd, &loop->sigs, 0);
		if (sigismember(&loop->we_blocked, s->signo)) {
			/* deliveries nobody reads any more are dropped, not turned into the
			 * default action (which for most signals kills the process) */
			struct timespec zero = { 0, 0 };
			while (sigtimedwait(&one, NULL, &zero) == s->signo)
				;
			sigdelset(&loop->we_blocked, s->signo);
			sigprocmask(SIG_UNBLOCK, &one, NULL);
		}
	}
	if (s->destroy)
		s->destroy(s->user_data);
	bury(loop, &s->hdr);
}
