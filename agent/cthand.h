/* cthand — the conntrack hand-over of a migrating VM's connections, as the calls an
 * agent-to-agent transport makes. No transport and no I/O beyond ctnetlink here.
 *
 *   source node                                  target node
 *   -----------                                  -----------
 *   cthand_collect(ct, vm addrs, &list)          (before the cut-over, and again at it)
 *   while ((len = cthand_encode(&list, &pos,
 *                  buf, cap)) > 0)
 *       send(buf, len)       ---- chunk ---->    cthand_apply(ct, vm addrs, buf, len, &res)
 *
 * Every chunk is a complete wire-form list (net/ct.h: "KVCT", version, count, 96 bytes an
 * entry), so chunks can travel in separate datagrams, be lost or arrive in any order, and
 * each is applied on its own; cap sets the chunk size (ct_wire_size(10) = 968 bytes: a
 * 1 KiB chunk holds 10 entries). Applying is idempotent: an entry the target has already (an earlier chunk, a
 * top-up at the cut-over, a connection the VM made through the target meanwhile) is
 * updated - timeout, mark, TCP state - never duplicated. The target creates only entries
 * that involve one of the addresses IT expects for the VM (its own endpoint's addresses,
 * not the sender's word), so even an authenticated peer cannot plant conntrack state for
 * other addresses. The source only reads its table: nothing here deletes an entry, since
 * the VM can come back (a failed or reverted migration).
 */
#ifndef KVNET_AGENT_CTHAND_H
#define KVNET_AGENT_CTHAND_H

#include "lib/ip.h"
#include "net/ct.h"

#include <stddef.h>

struct err;
struct nl_sock;

/* What one cthand_apply did. */
struct cthand_result {
	unsigned entries; /* entries the chunk held */
	unsigned applied; /* created or updated on this node */
	unsigned foreign; /* skipped: none of the VM's addresses in either tuple */
	unsigned failed;  /* refused by the kernel (e holds the first failure) */
};

/* Source: append to out the entries of ct's table (a NETLINK_NETFILTER socket, ct_open)
 * whose original or reply tuple holds one of the n addresses (n >= 1). Read-only.
 * Returns 0 or -errno (-E2BIG past out->max). */
int cthand_collect(struct nl_sock *ct, const struct ip_addr *addrs, size_t n,
		   struct ct_list *out, struct err *e);

/* Source: encode the entries of l from *pos on, as many as fit in cap bytes, into buf as
 * one wire-form chunk, and advance *pos past them. Returns the chunk's bytes, 0 when *pos
 * is at the end (nothing left), or -EMSGSIZE when cap cannot hold even one entry
 * (cap < ct_wire_size(1)). */
long cthand_encode(const struct ct_list *l, size_t *pos, void *buf, size_t cap,
		   struct err *e);

/* Target: decode the chunk (len bytes at buf, untrusted) and create or update each entry
 * that holds one of the VM's n addresses (n >= 1) in ct's namespace; res says what
 * happened. A malformed chunk is refused whole (-EBADMSG / -EPROTONOSUPPORT / -E2BIG,
 * nothing applied). Otherwise every entry is tried even when one fails; returns 0 when
 * none failed, else the first failure's -errno (e says which entry and why). */
int cthand_apply(struct nl_sock *ct, const struct ip_addr *addrs, size_t n, const void *buf,
		 size_t len, struct cthand_result *res, struct err *e);

/* ---- top-up from events ------------------------------------------------------------
 * Between the first copy and the cut-over the VM keeps opening (and closing)
 * connections through the source. A tracker, opened BEFORE cthand_collect, keeps the
 * VM's entries that were created or updated since (conntrack NEW/UPDATE events, the
 * last state of each connection; DESTROY drops it), so the top-up at the cut-over is
 * cthand_encode over that delta instead of another full dump. When the kernel dropped
 * events (cthand_track_read returns -ENOBUFS) the delta is incomplete: the caller
 * collects again. The kernel sends TCP info with an update only when the TCP state
 * changed; an entry first seen through such an update (a connection older than the
 * tracker) goes out without it, which on the target only refreshes the copy made by
 * cthand_collect (timeout, mark). */
struct cthand_track;

/* Open a tracker for the n addresses (n >= 1, copied) on a new event socket in the
 * namespace at nspath (NULL: the caller's), non-blocking, with a 4 MiB receive buffer
 * where allowed. NULL with e on failure. */
struct cthand_track *cthand_track_new(const char *nspath, const struct ip_addr *addrs,
				      size_t n, struct err *e);

/* The fd to poll for input. */
int cthand_track_fd(const struct cthand_track *t);

/* Read every waiting event into the delta. Returns the events of the VM's addresses that
 * were taken (>= 0), -ENOBUFS when events were lost (collect again, then
 * cthand_track_reset), -E2BIG when the delta is full (CT_WIRE_MAX), or -errno. */
int cthand_track_read(struct cthand_track *t, struct err *e);

/* The delta so far (owned by t, valid until the next read or reset). */
const struct ct_list *cthand_track_list(const struct cthand_track *t);

/* Empty the delta (after it was sent). */
void cthand_track_reset(struct cthand_track *t);

/* Close the socket and free t. NULL is ignored. */
void cthand_track_free(struct cthand_track *t);

#endif
