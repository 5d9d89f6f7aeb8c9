/* ipam datastore update loop; see ds.h. No I/O of its own. */
#include "ipam/ds.h"

#include "lib/err.h"

#include <errno.h>

int ipam_ds_update(const struct ipam_ds *ds, ipam_ds_fn fn, void *arg, struct err *e)
{
	for (unsigned t = 0; t < IPAM_DS_TRIES; t++) {
		struct ipam_state st;
		struct ipam_change *c = NULL;
		unsigned n = 0;
		ipam_state_init(&st);
		int r = ds->ops->begin(ds->ctx, e);
		if (r)
			return r;
		r = ds->ops->load(ds->ctx, &st, e);
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
	r = ds->ops->load(ds->ctx, st, e);
	ds->ops->end(ds->ctx);
	return r;
}
