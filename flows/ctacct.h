/* ctacct — conntrack messages with their accounting, for the flow module (pure: no I/O).
 *
 * net/ct.h's struct ct_entry carries tuples, status and TCP state but not the kernel's
 * per-direction counters, which are what a flow record is made of. This reads the rest
 * of the same message: ct_parse() for the entry, and beside it
 *
 *   CTA_ID                 be32   the kernel's id of the connection (stable for its life)
 *   CTA_COUNTERS_ORIG      nested > CTA_COUNTERS_PACKETS be64, CTA_COUNTERS_BYTES be64
 *   CTA_COUNTERS_REPLY     nested > (the same)
 *
 * Counters are present with net.netfilter.nf_conntrack_acct=1: in dumps and in DESTROY
 * events (NEW and UPDATE events carry none). Both are fuzzed (test/fuzz/fuzz-flows-ct.c).
 * When net/ct.h's entry grows counters this collapses into ct_events_parse.
 */
#ifndef KVNET_FLOWS_CTACCT_H
#define KVNET_FLOWS_CTACCT_H

#include "net/ct.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct err;
struct nl_msgv;

/* One conntrack message: the entry, its id and its counters. */
struct flow_ct {
	struct ct_entry ce; /* tuples, status, ... (ct_parse) */
	bool has_id;	    /* CTA_ID was present */
	uint32_t id;	    /* CTA_ID */
	bool has_acct;	    /* both counter nests were present */
	uint64_t bytes[2];  /* bytes, original [0] and reply [1] direction */
	uint64_t pkts[2];   /* packets, original [0] and reply [1] direction */
};

/* Parse one ctnetlink NEW / DELETE message (m->data at the nfgenmsg) into *out. 0,
 * -ENOMSG for another message type, -EBADMSG (e says what) when malformed. */
int flow_ct_parse(const struct nl_msgv *m, struct flow_ct *out, struct err *e);

/* Called for each conntrack message of a datagram. 0 goes on; -errno stops. */
typedef int (*flow_ct_cb)(enum ct_event ev, const struct flow_ct *fc, void *arg);

/* Walk the netlink messages of one event datagram (len bytes at buf) and hand each
 * conntrack message to cb (other types are skipped). Returns the number handed out, or
 * -EBADMSG with e when a message is cut or malformed, or cb's error. */
int flow_ct_events_parse(const void *buf, size_t len, flow_ct_cb cb, void *arg,
			 struct err *e);

#endif
