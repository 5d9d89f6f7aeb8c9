/* reconcile — kernel routes of kvnet's protocol made equal to the desired set. */
#include "agent/reconcile.h"

#include "agent/desired.h"
#include "lib/err.h"
#include "net/nl.h"

#include <errno.h>
#include <linux/rtnetlink.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct dumpv {
	struct rt_route *v; /* routes */
	unsigned n, cap;    /* used / allocated */
};

static int dump_cb(const struct rt_route *r, void *arg, struct err *e)
{
	struct dumpv *d = arg;
	uint32_t t = r->table ? r->table : RT_TABLE_MAIN;
	if (t != RT_TABLE_MAIN)
		return 0;
	if (d->n == d->cap) {
		unsigned cap = d->cap ? d->cap * 2 : 32;
		struct rt_route *nv = realloc(d->v, (size_t)cap * sizeof(*nv));
		if (!nv)
			return err_setx(e, ENOMEM, "agent: route dump: out of memory");
		d->v = nv;
		d->cap = cap;
	}
	d->v[d->n++] = *r;
	return 0;
}

int agent_routes_dump(struct nl_sock *s, uint8_t protocol, struct rt_route **out,
		      unsigned *n, struct err *e)
{
	static const uint8_t fams[2] = { AF_INET, AF_INET6 };
	for (int tries = 0;; tries++) {
		struct dumpv d = { 0 };
		int rc = 0;
		for (int i = 0; i < 2 && rc == 0; i++) {
			struct rt_filter f = { .family = fams[i], .protocol = protocol,
					       .table = RT_TABLE_MAIN };
			rc = rt_dump(s, &f, dump_cb, &d, e);
		}
		if (rc == -EINTR && tries < 3) { /* interrupted dump: again */
			free(d.v);
			err_clear(e);
			continue;
		}
		if (rc < 0) {
			free(d.v);
			return rc;
		}
		*out = d.v;
		*n = d.n;
		return 0;
	}
}

int agent_reconcile(struct nl_sock *s, uint8_t protocol, const struct rt_route *want,
		    unsigned n, struct agent_rec_stats *st, struct err *e)
{
	struct agent_rec_stats z = { 0 };
	if (!st)
		st = &z;
	memset(st, 0, sizeof(*st));
	struct rt_route *cur = NULL;
	unsigned ncur = 0;
	int rc = agent_routes_dump(s, protocol, &cur, &ncur, e);
	if (rc < 0)
		return err_prefix(e, "agent: reconcile: dump"), rc;
	bool *keep = calloc(ncur ? ncur : 1, sizeof(*keep));
	if (!keep) {
		free(cur);
		return err_setx(e, ENOMEM, "agent: reconcile: out of memory");
	}
	int first = 0;
	struct err e1 = { 0 };
	/* install / fix first */
	for (unsigned i = 0; i < n; i++) {
		bool same = false, exists = false;
		for (unsigned k = 0; k < ncur; k++) {
			if (agent_route_cmp(&want[i], &cur[k]) != 0)
				continue;
			exists = true;
			if (agent_route_same(&want[i], &cur[k])) {
				same = true;
				keep[k] = true;
			}
		}
		if (same) {
			st->adopted++;
			continue;
		}
		struct rt_route r = want[i];
		r.protocol = protocol;
		int x = rt_replace(s, &r, &e1);
		if (x < 0) {
			st->failed++;
			if (!first) {
				first = x;
				if (e)
					*e = e1;
			}
			continue;
		}
		if (exists) {
			st->fixed++;
			/* the replaced route is the same identity: gone from the kernel */
			for (unsigned k = 0; k < ncur; k++)
				if (agent_route_cmp(&want[i], &cur[k]) == 0 &&
				    !agent_route_same(&want[i], &cur[k]))
					keep[k] = true;
		} else {
			st->added++;
		}
	}
	/* then remove what is stale */
	for (unsigned k = 0; k < ncur; k++) {
		if (keep[k])
			continue;
		bool wanted = false;
		for (unsigned i = 0; i < n && !wanted; i++)
			wanted = agent_route_same(&want[i], &cur[k]);
		if (wanted)
			continue;
		struct rt_route d = cur[k];
		d.protocol = protocol;
		int x = rt_del(s, &d, &e1);
		if (x == -ESRCH)
			continue;
		if (x < 0) {
			st->failed++;
			if (!first) {
				first = x;
				if (e)
					*e = e1;
			}
			continue;
		}
		st->removed++;
	}
	free(keep);
	free(cur);
	return first;
}
