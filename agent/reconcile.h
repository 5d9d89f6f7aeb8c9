/* reconcile — make the kernel's kvnet routes equal a desired set (agent/desired.h).
 *
 *   dump main-table routes with protocol P (IPv4 and IPv6)
 *   for each desired route:  an equal one is there  -> adopted (untouched)
 *                            otherwise              -> RTM_NEWROUTE replace (added/fixed)
 *   for each dumped route no desired route matches -> RTM_DELROUTE (stale)
 *
 * Replaces come before deletes, and an equal route is never touched, so a correct route
 * is never missing for an instant (no delete-then-add). A route's identity is
 * (destination, prefix, table, metric); "equal" is agent_route_same().
 */
#ifndef KVNET_AGENT_RECONCILE_H
#define KVNET_AGENT_RECONCILE_H

#include "net/route.h"

#include <stdint.h>

struct err;
struct nl_sock;

struct agent_rec_stats {
	unsigned adopted;  /* desired routes found in place */
	unsigned added;	   /* desired routes installed where none of that identity was */
	unsigned fixed;	   /* desired routes replacing a different one of the same identity */
	unsigned removed;  /* stale routes deleted */
	unsigned failed;   /* operations that failed (the first error is reported) */
};

/* Apply want[0..n) (protocol `protocol`, main table) on socket s. Every operation is
 * tried; returns 0 when all succeeded, else the first failure's -errno with e.
 * st (may be NULL) gets the counts. */
int agent_reconcile(struct nl_sock *s, uint8_t protocol, const struct rt_route *want,
		    unsigned n, struct agent_rec_stats *st, struct err *e);

/* Routes of protocol `protocol` in the main table now (both families), malloc'd into
 * *out (free()), *n entries. 0 or -errno with e. */
int agent_routes_dump(struct nl_sock *s, uint8_t protocol, struct rt_route **out,
		      unsigned *n, struct err *e);

#endif
