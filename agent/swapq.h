/* swapq — the IPAM owner compare-and-swap of the migration code, off the event loop.
 *
 *   loop thread                          worker thread (one, started with the queue)
 *   swapq_submit(job) ──queue──►         take job; datastore: fast path (the prepared
 *                                        state from the informers' copies: one CAS PUT per
 *                                        changed block), else the full update (LIST, swap,
 *                                        CAS, retried on conflict by ipam_ds_update)
 *   done(result) ◄──eventfd── results ◄─ result (rc, changed, path, timings, error)
 *
 * Why: an owner swap is one or more API round trips (tens of ms on a loaded API server,
 * seconds when it is slow); done inline it held the agent's loop at the very moment the
 * cut-over needs it (peer messages, neighbour entries, the conntrack top-up). The table
 * (agent/migrate.h) carries the answer back as the events MIG_EV_SWAP_DONE /
 * MIG_EV_SWAP_FAILED; this module knows nothing of states.
 *
 * Jobs run one at a time in submission order (FIFO), so a RETURN submitted after a TAKE
 * of the same endpoint sees the TAKE's result in the datastore. The worker has its own
 * API client (kube_client is one-thread; the kubeconfig is loaded again on the worker
 * at its first kubernetes job, the fast path's records are parsed there too), and never logs: every outcome goes back to the loop,
 * which logs and counts. The worker thread starts with every signal blocked (the loop's
 * signalfd sees them all).
 *
 * Datastores: the caller's (struct ipam_ds, used only by the worker from then on), the
 * kubernetes datastore over [kubernetes] kubeconfig/context, or the file datastore in
 * [datastore] state_dir (opened per job).
 *
 * Shutdown (swapq_free) waits for the job in progress (bounded by the API client's I/O
 * timeout); queued jobs and unread results are dropped: a restarted agent trusts only
 * the API.
 */
#ifndef KVNET_AGENT_SWAPQ_H
#define KVNET_AGENT_SWAPQ_H

#include "agent/migrate.h"
#include "lib/err.h"

#include <stdbool.h>
#include <stdint.h>

struct ev_loop;
struct ipam_ds;
struct ipam_state;
struct swapq;

/* Where the worker writes. */
enum swapq_ds_kind {
	SWAPQ_DS_CALLER,     /* ds below (not owned; only the worker uses it after start) */
	SWAPQ_DS_KUBERNETES, /* kvnet.io CRDs through a client of the worker's own */
	SWAPQ_DS_FILE,	     /* the file datastore in dir */
};

struct swapq_ds {
	enum swapq_ds_kind kind; /* which */
	struct ipam_ds *ds;	 /* SWAPQ_DS_CALLER: the datastore */
	const char *kubeconfig;	 /* KUBERNETES: [kubernetes] kubeconfig ("" = default) */
	const char *context;	 /* KUBERNETES: [kubernetes] context ("" = current) */
	int io_timeout_ms;	 /* KUBERNETES: the API client's I/O timeout */
	const char *dir;	 /* FILE: [datastore] state_dir */
};

/* How a job was done. */
enum swapq_path {
	SWAPQ_PATH_NONE, /* not tried (no datastore, out of memory before any I/O) */
	SWAPQ_PATH_FAST, /* the prepared state: one CAS per changed block, no LIST */
	SWAPQ_PATH_FULL, /* ipam_ds_update: load, swap, compare-and-swap */
};

/* What the loop gets back for one job. */
struct swapq_result {
	uint64_t id;		/* the job's id (the caller's endpoint key) */
	uint64_t gen;		/* the job's generation (the caller's) */
	enum mig_act_kind kind; /* MIG_A_OWNER_TAKE, _RECLAIM or _RETURN */
	int rc;			/* 0 or -errno of the swap */
	bool changed;		/* the owners were swapped (else they already were) */
	enum swapq_path path;	/* how */
	char fast_why[160];	/* FULL after a fast try: why the fast path gave up */
	struct err e;		/* rc < 0: what failed and why */
	uint64_t wait_us;	/* submission -> the worker took it (monotonic) */
	uint64_t cas_us;	/* the worker's time on it (monotonic) */
	uint64_t done_ns;	/* when the worker finished (unix ns) */
};

/* The fast path's input: LIST answer pages ({"items":[...]}) of the endpoint's
 * IPAMBlocks and of its IPAMHandle, copied from the informers' objects on the loop (a
 * copy, no parse: the worker parses). Both malloc'd; free() them. */
struct swapq_fast {
	char *blocks;	    /* the blocks that name one of the endpoint's addresses */
	size_t blocks_len;  /* its length */
	char *handles;	    /* the endpoint's handle */
	size_t handles_len; /* its length */
};

/* Called on the loop for each finished job, in completion (= submission) order. r is
 * valid during the call only. */
typedef void (*swapq_done_fn)(void *user, const struct swapq_result *r);

/* A queue on loop (an eventfd watched there) and its worker thread. ds strings are
 * copied. NULL with e on failure. */
struct swapq *swapq_new(struct ev_loop *loop, const struct swapq_ds *ds, swapq_done_fn done,
			void *user, struct err *e);

/* Stop the worker (after its current job), drop queued jobs and unread results, free.
 * NULL is ignored. */
void swapq_free(struct swapq *q);

/* Queue the owner action `kind` (MIG_A_OWNER_TAKE / _RECLAIM: take, _RETURN: give back,
 * as mig_owner_swap) for a copy of m, answered later through done() with id and gen.
 * fast_take: the fast path's input (kubernetes datastore), or NULL (full update only);
 * its texts move to the queue in every case (fast_take's fields are cleared). 0, or
 * -errno with e (-ENOMEM, -EINVAL for a kind that is not an owner action): the caller
 * treats that as a failed try. Constant time on the loop: a copy and a signal. */
int swapq_submit(struct swapq *q, const struct mig_ep *m, enum mig_act_kind kind, uint64_t id,
		 uint64_t gen, struct swapq_fast *fast_take, struct err *e);

/* Jobs submitted and not answered yet (queued, running, or done and not delivered). */
unsigned swapq_pending(const struct swapq *q);

/* Names for logs: "none", "fast", "full". */
const char *swapq_path_name(enum swapq_path p);

#endif
