/* evloop — the event loop the agent lives on: epoll + one timerfd + one signalfd.
 *
 * An explicit loop object (no globals). Three kinds of watchers, each created with a
 * callback, a user_data pointer and an optional destroy function for that pointer
 * (ell style): destroy(user_data) runs exactly once, when the watcher is deleted with
 * its _del function or when the loop is freed with the watcher still in it.
 *
 *   io      a file descriptor and epoll events (EPOLLIN, EPOLLOUT, ... as for epoll_ctl);
 *           the loop never closes the fd.
 *   timer   one-shot or periodic, millisecond resolution, CLOCK_MONOTONIC. All timers
 *           share ONE timerfd armed for the earliest deadline; they are kept in a binary
 *           min-heap ordered by (deadline, creation order), so timers due at the same
 *           time fire in the order they were armed. A periodic timer's next deadline is
 *           the previous one plus the period (no drift); if the loop fell more than a
 *           period behind it is due again one period from now (no bursts). A one-shot
 *           timer is disarmed after its callback but stays allocated until ev_timer_del;
 *           ev_timer_arm re-arms either kind (also from inside its own callback).
 *   signal  a signal delivered through the loop's signalfd. Adding the first watcher for
 *           a signal blocks it (sigprocmask; the agent is single-threaded); deleting the
 *           last one unblocks it again unless it was blocked before. Several watchers
 *           may watch one signal; each is called for every delivery.
 *
 * Callbacks may add, modify and delete any watcher, including the one being called,
 * at any time: a deleted watcher is never called again (even if its event is already
 * in the batch being dispatched) and its memory is reclaimed only after the dispatch.
 * Timers armed during timer dispatch fire at the earliest on the next iteration.
 *
 * Errors: constructors return NULL or 0/-errno with `struct err` filled
 * ("evloop: epoll_ctl add fd 7: Bad file descriptor").
 */
#ifndef KVNET_LIB_EVLOOP_H
#define KVNET_LIB_EVLOOP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>

struct err;
struct ev_loop;
struct ev_io;
struct ev_timer;
struct ev_signal;

typedef void (*ev_destroy_fn)(void *user_data);
/* fd is the watched descriptor, revents the epoll events that occurred. */
typedef void (*ev_io_fn)(struct ev_loop *loop, struct ev_io *io, int fd, uint32_t revents,
			 void *user_data);
typedef void (*ev_timer_fn)(struct ev_loop *loop, struct ev_timer *timer, void *user_data);
/* si is the kernel's record of this delivery (sender pid, uid, ...). */
typedef void (*ev_signal_fn)(struct ev_loop *loop, struct ev_signal *sig, int signo,
			     const struct signalfd_siginfo *si, void *user_data);

/* Create a loop: an epoll fd, a timerfd and a signalfd (all CLOEXEC). NULL on failure
 * with e set. */
struct ev_loop *ev_loop_new(struct err *e);

/* Delete every watcher still in the loop (calling their destroy functions), restore the
 * signal mask for the signals the loop blocked, close the loop's fds and free it.
 * Must not be called from inside ev_run. NULL is ignored. */
void ev_loop_free(struct ev_loop *loop);

/* Dispatch events until ev_stop() is called (from a callback) or an error occurs.
 * Returns 0 after ev_stop; -EBUSY if the loop is already running; -errno with e if
 * epoll_wait fails (EINTR is retried). Can be called again after it returned. */
int ev_run(struct ev_loop *loop, struct err *e);

/* Make ev_run return after the current callback and the rest of the current batch. */
void ev_stop(struct ev_loop *loop);

/* The loop's epoll fd: readable when the loop has work (to nest it in another poller). */
int ev_loop_fd(const struct ev_loop *loop);

/* CLOCK_MONOTONIC now, in milliseconds (the clock timers use). */
uint64_t ev_now_ms(void);

/* Watch fd for events. On success *out is the watcher (needed for modify/del). */
int ev_io_add(struct ev_loop *loop, int fd, uint32_t events, ev_io_fn cb, void *user_data,
	      ev_destroy_fn destroy, struct ev_io **out, struct err *e);
/* Change the events watched. Returns 0 or -errno with e. */
int ev_io_modify(struct ev_io *io, uint32_t events, struct err *e);
/* Stop watching (the fd stays open) and run destroy(user_data). io is invalid after. */
void ev_io_del(struct ev_io *io);

/* A timer due after first_ms, then every period_ms if period_ms > 0 (one-shot if 0). */
int ev_timer_add(struct ev_loop *loop, uint64_t first_ms, uint64_t period_ms, ev_timer_fn cb,
		 void *user_data, ev_destroy_fn destroy, struct ev_timer **out, struct err *e);
/* (Re-)arm: due first_ms from now, then every period_ms (0 = one-shot). Replaces any
 * pending deadline. Cannot fail. */
void ev_timer_arm(struct ev_timer *t, uint64_t first_ms, uint64_t period_ms);
/* Cancel without freeing: the timer stays valid and can be armed again. */
void ev_timer_disarm(struct ev_timer *t);
/* True while the timer has a pending deadline. */
bool ev_timer_armed(const struct ev_timer *t);
/* Cancel and free; runs destroy(user_data). t is invalid after. */
void ev_timer_del(struct ev_timer *t);

/* Deliver signo through the loop (blocks it; see above). Returns 0 or -errno (EINVAL
 * for SIGKILL, SIGSTOP or a bad number). */
int ev_signal_add(struct ev_loop *loop, int signo, ev_signal_fn cb, void *user_data,
		  ev_destroy_fn destroy, struct ev_signal **out, struct err *e);
/* Stop watching; unblocks the signal when this was its last watcher and the loop
 * blocked it. Runs destroy(user_data). sig is invalid after. */
void ev_signal_del(struct ev_signal *sig);

#endif
