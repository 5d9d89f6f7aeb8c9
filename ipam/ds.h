/* ipam datastore — the interface both datastores implement, and the update loop.
 *
 * A datastore stores records (ipam.h: pool, block, handle, config), each a JSON object
 * under a kind and a name, with an opaque version that changes on every write. One IPAM
 * operation is one update:
 *
 *   begin   take whatever exclusion the store has (file: flock on DIR/lock; kubernetes:
 *           nothing)
 *   load    read every record with its version into a fresh ipam_state
 *           (ipam_state_load(); kubernetes: LIST of IPPools, IPAMBlocks, IPAMHandles,
 *           IPAMConfigs in group kvnet.io, version = metadata.resourceVersion)
 *   fn      the caller's pure operation on the state (ipam_alloc(), owner calls, ...)
 *   commit  write ipam_state_diff(): each change names the version it expects, "" for a
 *           create. A record whose version moved is a conflict: commit returns -ESTALE
 *           and the whole update is retried from begin, at most IPAM_DS_TRIES times,
 *           after an exponential backoff with jitter (struct ipam_ds_backoff), so that
 *           writers that collided do not collide again in lock step.
 *   end     release the exclusion.
 *
 * File datastore: under the flock nothing else writes, so conflicts do not happen
 * (they are still checked); the commit is all-or-nothing through a redo journal.
 *
 * Kubernetes datastore (later) maps commit onto per-object compare-and-swap: create =
 * POST (409 AlreadyExists = -ESTALE), update = PUT with metadata.resourceVersion set
 * to the change's version (409 Conflict = -ESTALE), delete = DELETE with
 * preconditions.resourceVersion. The changes come ordered blocks first, then handles,
 * pools, deletions: the block allocation is the truth, so a conflict or crash half way
 * leaves at worst a block allocation whose handle record is missing, which the next
 * update's ipam_check() reports and GC repairs; never one address in two blocks,
 * because a block is one object written by CAS.
 */
#ifndef KVNET_IPAM_DS_H
#define KVNET_IPAM_DS_H

#include "ipam/ipam.h"

#include <stdint.h>

struct err;

#define IPAM_DS_TRIES 8		     /* updates retried on -ESTALE before giving up */
#define IPAM_DS_BACKOFF_BASE_US 4000	/* default first backoff ceiling */
#define IPAM_DS_BACKOFF_MAX_US 256000 /* default largest backoff ceiling */

/* Backoff between conflicting tries: before try t+1 (t >= 1 conflicts so far) the update
 * waits a uniformly random time in [c/2, c], c = min(max_us, base_us << (t-1)) ("equal
 * jitter": never zero, never in lock step). The random numbers come from a xorshift
 * generator whose state is seed, so a test that sets seed gets the same delays every
 * run, and with a sleep callback it waits for nothing. */
struct ipam_ds_backoff {
	unsigned base_us; /* first ceiling (0 = IPAM_DS_BACKOFF_BASE_US) */
	unsigned max_us;  /* largest ceiling (0 = IPAM_DS_BACKOFF_MAX_US) */
	uint64_t seed;	  /* generator state; 0 = seeded from the pid and the clock */
	void (*sleep)(void *arg, unsigned us); /* NULL = nanosleep */
	void *sleep_arg;		       /* its argument */
};

/* What an update touches, so a store can load less (kubernetes: GET one handle instead
 * of LISTing them all). An operation with a scope must not read or change any other
 * handle (ipam_check() over such a state would see allocations without handles). */
struct ipam_ds_scope {
	const char *handle; /* the only handle the operation reads or changes */
};

struct ipam_ds_ops {
	const char *name; /* "file", "kubernetes" */
	/* Take the store's exclusion (may block). 0 or -errno. */
	int (*begin)(void *ctx, struct err *e);
	/* Load the records into st (fresh, initialised) with ipam_state_load(): every one,
	 * or with a scope at least every pool and block, the config and the scope's handle
	 * (a store may load more). */
	int (*load)(void *ctx, const struct ipam_ds_scope *scope, struct ipam_state *st,
		    struct err *e);
	/* Apply the n changes, checking each expected version; -ESTALE on a conflict. */
	int (*commit)(void *ctx, const struct ipam_change *c, unsigned n, struct err *e);
	/* Release the exclusion. Never fails. */
	void (*end)(void *ctx);
};

struct ipam_ds {
	const struct ipam_ds_ops *ops;	 /* implementation */
	void *ctx;			 /* its state (not owned) */
	struct ipam_ds_backoff *backoff; /* between conflicting tries; NULL = defaults */
};

/* The operation an update runs: edit st, return 0 to commit or -errno to abort (nothing
 * is written). It may run more than once (retries), each time on freshly loaded state. */
typedef int (*ipam_ds_fn)(struct ipam_state *st, void *arg, struct err *e);

/* Run fn as one update (begin, load, fn, commit, end), retrying on -ESTALE up to
 * IPAM_DS_TRIES times with backoff between tries (then -EAGAIN). fn's error is
 * returned as is. */
int ipam_ds_update(const struct ipam_ds *ds, ipam_ds_fn fn, void *arg, struct err *e);

/* The same as ipam_ds_update(), loading only what scope names (NULL = everything). */
int ipam_ds_update_scoped(const struct ipam_ds *ds, const struct ipam_ds_scope *scope,
			  ipam_ds_fn fn, void *arg, struct err *e);

/* The delay before the try after `conflicts` conflicts (>= 1), advancing b->seed (which
 * must not be 0 here). Pure. */
unsigned ipam_ds_backoff_us(struct ipam_ds_backoff *b, unsigned conflicts);

/* Load the whole state read-only (begin, load, end) into st (initialised here; the
 * caller frees it with ipam_state_free() even on error). */
int ipam_ds_read(const struct ipam_ds *ds, struct ipam_state *st, struct err *e);

#endif
