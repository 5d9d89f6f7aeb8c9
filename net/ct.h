/* ct — conntrack over ctnetlink (NETLINK_NETFILTER, subsystem NFNL_SUBSYS_CTNETLINK).
 *
 * Four parts:
 *
 *   parser    ct_parse: one IPCTNL_MSG_CT_NEW / _DELETE message into a struct ct_entry
 *             (tuples, status, timeout, mark, zone, TCP protocol info). Pure; fuzzed.
 *   dump      ct_dump: the namespace's table, kept when the original or the reply tuple
 *             holds one of a set of addresses (the VM's v4 and v6). The kernel dumps every
 *             family (nfgenmsg AF_UNSPEC); the address filter runs here, so it works on
 *             kernels without CTA_FILTER and matches either direction.
 *   create    ct_create: an entry made in (another) namespace with IPCTNL_MSG_CT_NEW +
 *             NLM_F_CREATE. A NATed entry is created with its NAT (CTA_NAT_DST / _SRC taken
 *             from the reply tuple), so the kernel computes the same reply tuple; TCP state,
 *             window scales and flags and the timeout are kept. An entry that exists already
 *             is updated (timeout, mark, TCP info), never duplicated.
 *   events    ct_events_*: a socket subscribed to NFNLGRP_CONNTRACK_NEW/UPDATE/DESTROY,
 *             read one datagram at a time into ct_entry values (for the flows module).
 *   wire      ct_wire_encode / ct_wire_decode: a compact, versioned, bounded form of an entry
 *             list carried node to node (the hand-over).
 *
 * A ctnetlink message (attribute values in network order unless said otherwise):
 *
 *   nlmsghdr  type = NFNL_SUBSYS_CTNETLINK << 8 | IPCTNL_MSG_CT_{NEW,GET,DELETE}
 *   nfgenmsg  u8 family (AF_INET / AF_INET6 / AF_UNSPEC) | u8 version 0 | be16 res_id 0
 *   CTA_TUPLE_ORIG / CTA_TUPLE_REPLY (nested)
 *       CTA_TUPLE_IP (nested)     CTA_IP_V4_SRC/DST be32 | CTA_IP_V6_SRC/DST 16 bytes
 *       CTA_TUPLE_PROTO (nested)  CTA_PROTO_NUM u8, CTA_PROTO_SRC/DST_PORT be16,
 *                                 CTA_PROTO_ICMP[V6]_ID be16 / _TYPE u8 / _CODE u8
 *   CTA_STATUS be32 (IPS_*) | CTA_TIMEOUT be32 seconds | CTA_MARK be32 | CTA_ZONE be16
 *   CTA_ID be32 | CTA_COUNTERS_ORIG / _REPLY (nested) > CTA_COUNTERS_PACKETS / _BYTES be64
 *   CTA_TIMESTAMP (nested) > CTA_TIMESTAMP_START / _STOP be64 ns
 *   CTA_PROTOINFO (nested) > CTA_PROTOINFO_TCP (nested)
 *       _STATE u8, _WSCALE_ORIGINAL/_REPLY u8, _FLAGS_ORIGINAL/_REPLY {u8 flags, u8 mask}
 *   CTA_NAT_DST / CTA_NAT_SRC (nested, create only)
 *       CTA_NAT_V4_MINIP/MAXIP be32 | CTA_NAT_V6_MINIP/MAXIP 16 bytes,
 *       CTA_NAT_PROTO (nested) > CTA_PROTONAT_PORT_MIN/MAX be16
 */
#ifndef KVNET_NET_CT_H
#define KVNET_NET_CT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/ip.h"

struct err;
struct nl_sock;
struct nl_msgv;

/* One direction of a connection. For ICMP / ICMPv6, sport holds the echo id and dport
 * holds type << 8 | code (the kernel's own tuple layout for those protocols). */
struct ct_tuple {
	struct ip_addr src; /* source address */
	struct ip_addr dst; /* destination address */
	uint8_t proto;	    /* IPPROTO_TCP, _UDP, _ICMP, _ICMPV6, ... */
	uint16_t sport;	    /* source port (host order), or ICMP id */
	uint16_t dport;	    /* destination port (host order), or ICMP type << 8 | code */
};

/* TCP protocol info of an entry. */
struct ct_tcp {
	uint8_t state;	       /* TCP_CONNTRACK_* (3 = ESTABLISHED) */
	uint8_t wscale[2];     /* window scale, original [0] and reply [1] direction */
	uint8_t flags[2];      /* IP_CT_TCP_FLAG_* per direction */
	uint8_t flags_mask[2]; /* which of flags[] are meant (as the kernel reports them) */
};

/* One conntrack entry, as dumped or as carried to another node. */
struct ct_entry {
	uint8_t l3;	       /* AF_INET or AF_INET6 (the nfgenmsg family) */
	struct ct_tuple orig;  /* original direction */
	struct ct_tuple reply; /* reply direction */
	uint32_t status;       /* IPS_* bits (IPS_SRC_NAT, IPS_DST_NAT, IPS_ASSURED ...) */
	uint32_t timeout;      /* seconds left */
	uint32_t mark;	       /* ct mark */
	uint16_t zone;	       /* ct zone (0 = default) */
	bool has_tcp;	       /* tcp is meaningful */
	struct ct_tcp tcp;     /* TCP protocol info */
	/* What the kernel reports but nobody sets (not in the wire form, not compared by
	 * ct_entry_eq): for the flows module. */
	uint32_t id;	       /* CTA_ID: the kernel's id of the entry (0 = not given);
				* the events of one connection share it */
	bool has_counters;     /* packets/bytes were given (sysctl nf_conntrack_acct=1) */
	uint64_t packets[2];   /* packets, original [0] and reply [1] direction */
	uint64_t bytes[2];     /* bytes (IP headers included), per direction */
	uint64_t start_ns;     /* CTA_TIMESTAMP start, ns since boot (nf_conntrack_timestamp=1);
				* 0 = not given */
	uint64_t stop_ns;      /* CTA_TIMESTAMP stop (set on destroy events), 0 = not given */
};

/* Kinds of event a conntrack subscriber sees. */
enum ct_event {
	CT_EV_NEW,     /* IPCTNL_MSG_CT_NEW with NLM_F_CREATE */
	CT_EV_UPDATE,  /* IPCTNL_MSG_CT_NEW without NLM_F_CREATE */
	CT_EV_DESTROY, /* IPCTNL_MSG_CT_DELETE */
};

/* ---- parser --------------------------------------------------------------------- */

/* Parse one ctnetlink message (IPCTNL_MSG_CT_NEW or _DELETE; m->data starts at the
 * nfgenmsg) into *out (zeroed first). Both tuples must be present with addresses of the
 * message's family and one protocol number for both. Returns 0, or -EBADMSG (e says what) for a
 * malformed message, -ENOMSG for a message of another type. Pure. */
int ct_parse(const struct nl_msgv *m, struct ct_entry *out, struct err *e);

/* True when the original or the reply tuple of ce holds one of the n addresses (as
 * source or destination). */
bool ct_entry_has_addr(const struct ct_entry *ce, const struct ip_addr *addrs, size_t n);

/* True when a and b hold the same connection state: tuples, status, timeout, mark, zone
 * and every TCP info field (compared field by field, never as bytes with padding); the
 * id, counters and timestamps are not compared. */
bool ct_entry_eq(const struct ct_entry *a, const struct ct_entry *b);

/* Format ce as one line ("tcp 198.18.1.2:40000 -> 198.18.7.7:80 | reply ... dnat
 * state 3 timeout 431000 mark 0 zone 0") into buf (len bytes, truncated if short).
 * Returns buf. */
const char *ct_entry_fmt(const struct ct_entry *ce, char *buf, size_t len);

/* ---- dump and create ------------------------------------------------------------ */

/* Open a NETLINK_NETFILTER socket in the network namespace at nspath (/run/netns/X,
 * /proc/PID/ns/net), or in the caller's own when nspath is NULL. Free with nl_close. */
int ct_open(struct nl_sock **out, const char *nspath, struct err *e);

/* A growing list of entries the caller owns (free with ct_list_free). */
struct ct_list {
	struct ct_entry *v; /* entries (heap) */
	size_t n;	    /* entries in v */
	size_t cap;	    /* allocated slots of v */
	size_t max;	    /* hard limit on n (0 = CT_WIRE_MAX); more is -E2BIG */
};

void ct_list_free(struct ct_list *l);

/* Append ce to l. -ENOMEM, or -E2BIG past l->max. */
int ct_list_add(struct ct_list *l, const struct ct_entry *ce, struct err *e);

/* Dump the conntrack table of the namespace s (a NETLINK_NETFILTER socket) and append to
 * out every entry whose tuples hold one of the n addresses (n = 0: every entry). An
 * interrupted dump (-EINTR from the kernel) is retried a few times with out reset to
 * what it held. Returns 0 or -errno. */
int ct_dump(struct nl_sock *s, const struct ip_addr *addrs, size_t n, struct ct_list *out,
	    struct err *e);

/* Create ce in the namespace of s (a NETLINK_NETFILTER socket). A DNAT entry is created
 * with CTA_NAT_DST = the reply source (address and port), an SNAT entry with CTA_NAT_SRC =
 * the reply destination, so the kernel derives the dumped reply tuple. When the entry
 * exists already (the same original tuple in the zone) it is updated instead: timeout,
 * mark and TCP info. Status bits the kernel lets a client set (SEEN_REPLY, ASSURED) are
 * kept. Returns 0 or -errno, e naming the entry. */
int ct_create(struct nl_sock *s, const struct ct_entry *ce, struct err *e);

/* Build the IPCTNL_MSG_CT_NEW request for ce into buf (cap bytes): with NAT attributes and
 * NLM_F_CREATE | NLM_F_EXCL when create is true, an update otherwise. Returns the message
 * length, or -EMSGSIZE. Exposed for tests and the fuzzer (round trip through ct_parse). */
int ct_build_new(const struct ct_entry *ce, bool create, void *buf, size_t cap, struct err *e);

/* ---- events --------------------------------------------------------------------- */

/* Subscribe s (a NETLINK_NETFILTER socket of its own, not used for requests) to the
 * conntrack groups: new (NFNLGRP_CONNTRACK_NEW), update and destroy as the flags say.
 * Returns 0 or -errno. */
int ct_events_subscribe(struct nl_sock *s, bool new, bool update, bool destroy,
			struct err *e);

/* Set the receive buffer of an event socket to bytes (SO_RCVBUFFORCE when privileged,
 * else SO_RCVBUF up to the system's limit), so a burst of events does not overrun it.
 * Returns 0 or -errno. */
int ct_events_rcvbuf(struct nl_sock *s, int bytes, struct err *e);

/* Called for each event. Return 0 to go on, or -errno to stop. */
typedef int (*ct_event_cb)(enum ct_event ev, const struct ct_entry *ce, void *arg);

/* Read one datagram of events from s (blocks unless the fd is non-blocking; poll
 * nl_fd(s) first) and hand each parsed entry to cb. Returns the number of events, 0 when
 * nothing was waiting (EAGAIN), -ENOBUFS when the kernel dropped events (the socket's
 * buffer overran: the caller resynchronises with a dump), or -errno. */
int ct_events_read(struct nl_sock *s, ct_event_cb cb, void *arg, struct err *e);

/* Parse the events in one datagram (len bytes at buf). As ct_events_read; pure. */
int ct_events_parse(const void *buf, size_t len, ct_event_cb cb, void *arg, struct err *e);

/* ---- wire form ------------------------------------------------------------------ */

/* The serialised entry list:
 *
 *   "KVCT" | u8 version (1) | u8 reserved 0 | be16 count | count x entry (96 bytes each):
 *   u8 l3 | u8 proto | u8 has_tcp | u8 tcp state | orig src 16 | orig dst 16 |
 *   be16 orig sport | be16 orig dport | reply src 16 | reply dst 16 | be16 reply sport |
 *   be16 reply dport | be32 status | be32 timeout | be32 mark | be16 zone |
 *   u8 wscale[2] | u8 flags[2] | u8 flags_mask[2]
 *
 * Addresses are 16 bytes (a v4 address in the first 4, the rest zero). At most
 * CT_WIRE_MAX entries. */
#define CT_WIRE_VERSION 1
#define CT_WIRE_MAX 4096
#define CT_WIRE_HDR 8
#define CT_WIRE_ENTRY 96

/* Bytes ct_wire_encode needs for n entries. */
size_t ct_wire_size(size_t n);

/* Encode the n entries into buf (cap bytes). Returns the bytes written, -E2BIG for more
 * than CT_WIRE_MAX entries, -EMSGSIZE when cap is short. */
long ct_wire_encode(const struct ct_entry *v, size_t n, void *buf, size_t cap, struct err *e);

/* Decode len bytes at buf, appending to out. Every entry is checked (family, addresses of
 * that family, protocol) so what comes out can be handed to ct_create. Returns 0, or
 * -EBADMSG / -EPROTONOSUPPORT (another version) / -E2BIG with e saying why; out then
 * holds nothing new. */
int ct_wire_decode(const void *buf, size_t len, struct ct_list *out, struct err *e);

#endif
