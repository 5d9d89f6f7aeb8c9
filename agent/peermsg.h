/* peermsg — the agent-to-agent datagram "addresses X live on node N at address A" (pure:
 * no I/O, no clock, no logging; the clock is a parameter).
 *
 * One UDP datagram, at most PEERMSG_MAX bytes, every integer big-endian:
 *
 *    0               1               2               3
 *   +---------------+---------------+---------------+---------------+
 *   |  'K'    'V'    'P'    'M'   (magic)                           |   0
 *   | version (1)   | type: 1 CLAIM | reserved, 0 (2 bytes)         |   4
 *   |               |       2 CT    |                               |
 *   |               |    3 RETRACT  |                               |
 *   | boot id: the sender's start time, unix ns (8)                 |   8
 *   | sequence: 1, 2, 3 ... per boot id (8)                         |  16
 *   | event time: the announcement's timestamp, unix ns (8)         |  24
 *   | TLVs: type (1) | length (1) | value (length) ...             |  32
 *   | HMAC-SHA256 over every byte before it (32)                    | end - 32
 *   +---------------------------------------------------------------+
 *
 *   TLV 1 NODE       the node the addresses live on now (1..253 bytes, [a-z0-9.-]),
 *                    exactly once; it is also the sender
 *   TLV 2 NODE_ADDR  that node's address (4 or 16 bytes), once or twice (v4, v6)
 *   TLV 3 UID        the migration uid (1..PEERMSG_UID_MAX printable bytes), at most once
 *   TLV 4 ADDR       one address that lives there (4 or 16 bytes), 1..PEERMSG_ADDRS_MAX
 *                    (CLAIM only; a CT message carrying one is refused)
 *   TLV 5 VMI_UID    the VMI's metadata.uid (1..PEERMSG_UID_MAX printable), CT: once
 *   TLV 6 CHUNK      CT: once, 8 bytes: round (be32: 1 the first full copy, then one
 *                    more per top-up or repeat; bit 31 PEERMSG_CT_CUTOVER marks the
 *                    round sent at the cut-over, whose event time is the target's
 *                    announcement), index (be16), count (be16) of the round's chunks;
 *                    round without the flag >= 1, index < count
 *   TLV 7 CT_DATA    CT: 1..255 bytes each, in order; their values concatenated are
 *                    one conntrack wire-form list (net/ct.h "KVCT", not read here),
 *                    1..PEERMSG_CT_MAX bytes in all
 *   any other type   skipped (a newer sender may add some; they are authenticated too)
 *
 * RETRACT withdraws a CLAIM of the same sender: "addresses X do not live on node N after
 * all" (the target's owner compare-and-swap failed, or its migration ended before the
 * swap landed); its fields are CLAIM's.
 *
 * CLAIM and RETRACT need NODE, NODE_ADDR and ADDR; CT needs NODE, NODE_ADDR, UID (the migration),
 * VMI_UID, CHUNK and CT_DATA. Both are signed and replay-checked alike and share one
 * sequence space per sender.
 *
 * Authentication: HMAC-SHA256 (BearSSL) with the cluster's shared key, compared in
 * constant time, checked before anything but the length is read. Replay protection
 * (peermsg_fresh): the event time must lie within a window of the receiver's clock and
 * not before the receiver started (a restarted receiver takes nothing older than
 * itself), and per sender the boot id may only grow and, within one boot id, every
 * sequence number is taken once (a 64-wide sliding window like IPsec's, so reordering
 * of close messages loses nothing).
 */
#ifndef KVNET_AGENT_PEERMSG_H
#define KVNET_AGENT_PEERMSG_H

#include "lib/ip.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct err;

#define PEERMSG_MAX 1024	 /* bytes of a datagram, HMAC included */
#define PEERMSG_HDR 32		 /* the fixed header */
#define PEERMSG_MAC 32		 /* HMAC-SHA256 */
#define PEERMSG_MIN (PEERMSG_HDR + PEERMSG_MAC)
#define PEERMSG_NODE_MAX 253	 /* node name bytes */
#define PEERMSG_UID_MAX 64	 /* migration uid bytes */
#define PEERMSG_ADDRS_MAX 8	 /* addresses of one message */
#define PEERMSG_KEY_MIN 16	 /* shortest key accepted */
#define PEERMSG_KEY_MAX 4096	 /* longest key accepted */
#define PEERMSG_VERSION 1	 /* the version written and read */
#define PEERMSG_T_CLAIM 1	 /* message type: addresses live on a node */
#define PEERMSG_T_CT 2		 /* message type: a conntrack chunk of a migrating VM */
#define PEERMSG_T_RETRACT 3	 /* message type: a claim of the sender withdrawn */
#define PEERMSG_CT_MAX (PEERMSG_MAX - PEERMSG_MIN) /* CT payload bytes, at most */
#define PEERMSG_CT_CUTOVER 0x80000000u /* round flag: sent at the cut-over */

/* TLV types. */
enum peermsg_tlv {
	PEERMSG_TLV_NODE = 1,	   /* node name */
	PEERMSG_TLV_NODE_ADDR = 2, /* node address */
	PEERMSG_TLV_UID = 3,	   /* migration uid */
	PEERMSG_TLV_ADDR = 4,	   /* an address living on the node */
	PEERMSG_TLV_VMI_UID = 5,   /* CT: the VMI's uid */
	PEERMSG_TLV_CHUNK = 6,	   /* CT: round, index, count */
	PEERMSG_TLV_CT_DATA = 7,   /* CT: a piece of the conntrack wire form */
};

/* One decoded (or to be encoded) message. */
struct peermsg {
	uint8_t type;				 /* PEERMSG_T_CLAIM, _CT or _RETRACT */
	uint64_t boot;				 /* sender's boot id (its start, unix ns) */
	uint64_t seq;				 /* sequence number, >= 1 */
	uint64_t ts_ns;				 /* event time (unix ns) */
	char node[PEERMSG_NODE_MAX + 1];	 /* node name, NUL-terminated */
	unsigned n_node_addr;			 /* addresses in node_addr[] (1..2) */
	struct ip_addr node_addr[2];		 /* the node's addresses */
	char uid[PEERMSG_UID_MAX + 1];		 /* migration uid, "" none */
	unsigned n_addr;			 /* addresses in addr[] */
	struct ip_addr addr[PEERMSG_ADDRS_MAX];	 /* the addresses living there (CLAIM) */
	char vmi_uid[PEERMSG_UID_MAX + 1];	 /* CT: the VMI's uid */
	uint32_t round;				 /* CT: send round (>= 1) | CUTOVER flag */
	uint16_t chunk;				 /* CT: index of this chunk in its round */
	uint16_t chunks;			 /* CT: chunks of the round, > chunk */
	uint16_t ct_len;			 /* CT: bytes in ct[] (1..PEERMSG_CT_MAX) */
	uint8_t ct[PEERMSG_CT_MAX];		 /* CT: the conntrack wire-form list */
};

/* The CT payload bytes (ct_len) that fit into one datagram beside m's other fields
 * (node, node addresses, uid, vmi_uid as set; the TLV overhead of CT_DATA counted): the
 * cap to encode a conntrack chunk with. 0 when nothing fits. Pure. */
size_t peermsg_ct_room(const struct peermsg *m);

/* Encode m into buf[0..cap) with its HMAC under key[0..klen) and set *len. 0, or -EINVAL
 * with e (a field out of range: empty or bad node name, no node address or address, too
 * many, a uid too long or not printable, seq 0; for CT: no uid or vmi_uid, addresses
 * set, round 0, chunk >= chunks, ct_len 0 or over PEERMSG_CT_MAX) or -ENOSPC (cap too
 * small, or the datagram would pass PEERMSG_MAX: see peermsg_ct_room). */
int peermsg_encode(const struct peermsg *m, const uint8_t *key, size_t klen, uint8_t *buf,
		   size_t cap, size_t *len, struct err *e);

/* Check the length bounds and the HMAC of datagram buf[0..len) under key (constant-time
 * compare). 0, -EMSGSIZE (shorter than PEERMSG_MIN or longer than PEERMSG_MAX) or
 * -EPERM (the HMAC does not match: wrong key or changed bytes), with e. */
int peermsg_auth(const uint8_t *buf, size_t len, const uint8_t *key, size_t klen,
		 struct err *e);

/* Decode datagram buf[0..len) (its last PEERMSG_MAC bytes, the HMAC, are not read: call
 * peermsg_auth first) into *m. 0, or -EMSGSIZE (length out of bounds) or -EBADMSG with e
 * naming what is wrong (magic, version, type, reserved bytes, a TLV running past the
 * end, a bad length or value, a singleton repeated, a required TLV missing, too many
 * addresses, a TLV of the other type's). The CT payload is copied, not parsed (that is
 * net/ct's ct_wire_decode). Never reads outside buf. */
int peermsg_decode(const uint8_t *buf, size_t len, struct peermsg *m, struct err *e);

/* What the receiver knows of one sender, for replay protection. Zero it to start. */
struct peermsg_seen {
	bool used;     /* something was accepted from this sender */
	uint64_t boot; /* its newest boot id */
	uint64_t top;  /* the highest sequence accepted under that boot id */
	uint64_t bits; /* bit i: sequence top - i was accepted (bit 0 = top) */
};

enum peermsg_fresh {
	PEERMSG_FRESH,	  /* new: accepted and recorded in the sender's state */
	PEERMSG_STALE,	  /* event time outside [now - window, now + window], or before
			   * the receiver started */
	PEERMSG_REPLAY,	  /* sequence already seen, older than the window, or an older
			   * boot id than the newest seen */
};

/* Replay check of an authenticated message m from the sender whose state is *s, at
 * receiver time now_ns, the receiver having started at start_ns; window_ns bounds the
 * clock difference. PEERMSG_FRESH updates *s; other verdicts leave it alone. Pure. */
enum peermsg_fresh peermsg_fresh(struct peermsg_seen *s, const struct peermsg *m,
				 uint64_t now_ns, uint64_t start_ns, uint64_t window_ns);

/* "fresh", "stale", "replay"; "?" out of range. */
const char *peermsg_fresh_name(enum peermsg_fresh f);

/* True when s is a node name the message may carry (1..253 bytes of [a-z0-9.-]). */
bool peermsg_node_name_ok(const char *s);

#endif
