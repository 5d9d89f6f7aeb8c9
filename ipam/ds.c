/* ipam datastore update loop; see ds.h. No I/O of its own (it only sleeps). */
#include "ipam/ds.h"

#include "lib/err.h"

#include <errno.h>
#include <time.h>
#include <unistd.h>

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

unsigned ipam_ds_backoff_us(struct ipam_ds_backoff *b, unsigned conflicts)
{
	unsigned base = b->base_us ? b->base_us : IPAM_DS_BACKOFF_BASE_US;
	unsigned max = b->max_us ? b->max_us : IPAM_DS_BACKOFF_MAX_US;
	unsigned c = max;
	if (conflicts >= 1 && conflicts - 1 < 31 && (uint64_t)base << (conflicts - 1) < max)
		c = (unsigned)((uint64_t)base << (conflicts - 1));
	unsigned half = c / 2;
	return half + (unsigned)(xorshift(&b->seed) % ((uint64_t)(c - half) + 1));
}

static void backoff_sleep(struct ipam_ds_backoff *b, unsigned conflicts)
{
	if (b->seed == 0) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		b->seed = ((uint64_t)getpid() << 32) ^ (uint64_t)ts.tv_nsec ^
			  ((uint64_t)ts.tv_sec << 20) ^ 0x9e3779b97f4a7c15ull;
	}
	unsigned us = ipam_ds_backoff_us(b, conflicts);
	if (b->sleep) {
		b->sleep(b->sleep_arg, us);
		return;
	}
	struct timespec ts = {.tv_sec = us / 1000000, .tv_nsec = (long)(us % 1000000) * 1000};
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

int ipam_ds_update(const struct ipam_ds *ds, ipam_ds_fn fn, void *arg, struct err *e)
{
	return ipam_ds_update_scoped(ds, NULL, fn, arg, e);
}

int ipam_ds_update_scoped(const struct ipam_ds *ds, const struct ipam_ds_scope *scope,
			  ipam_ds_fn fn, void *arg, struct err *e)
{
	struct ipam_ds_backoff dflt = {0};
	struct ipam_ds_backoff *bo = ds->backoff ? ds->backoff : &dflt;
	for (unsigned t = 0; t < IPAM_DS_TRIES; t++) {
		struct ipam_state st;
		struct ipam_change *c = NULL;
		unsigned n = 0;
		if (t > 0)
			backoff_sleep(bo, t);
		ipam_state_init(&st);
		int r = ds->ops->begin(ds->ctx, e);
		if (r)
			return r;
		r = ds->ops->load(ds->ctx, scope, &st, e);
		if (!r)
			r = fn(&st, arg, e);
		if (!r)
			r = ipam_state_diff(&st, &c, &n, e);
		if (!r && n)
			r = ds->ops->commit(ds->ctx, c, n, e);
		ds->ops->end(ds->ctx);
		ipam_changes_free(c, n);
		ipam_state_free(&st);
		if (r != -ESTALE)
			return r;
	}
	return err_setx(e, EAGAIN, "ipam %s datastore: update: still conflicting after %d tries",
			ds->ops->name, IPAM_DS_TRIES);
}

int ipam_ds_read(const struct ipam_ds *ds, struct ipam_state *st, struct err *e)
{
	ipam_state_init(st);
	int r = ds->ops->begin(ds->ctx, e);
	if (r)
		return r;
	r = ds->ops->load(ds->ctx, NULL, st, e);
	ds->ops->end(ds->ctx);
	return r;
}
