/* nflog — packets logged by nf_tables `log group N` (NFULNL over NETLINK_NETFILTER,
 * subsystem NFNL_SUBSYS_ULOG), for the flow records of denied packets.
 *
 *   bind      nflog_bind: the socket takes group N (one listener per group in a
 *             namespace: -EBUSY when another has it) and asks for the first copy_range
 *             bytes of each packet (enough for the IP and transport headers).
 *   parser    nflog_parse: one NFULNL_MSG_PACKET into a struct nflog_pkt (the rule's
 *             prefix, in/out interface, the packet's 5-tuple read from its network and
 *             transport headers). Pure; fuzzed (test/fuzz/fuzz-nflog.c).
 *             nflog_parse_buf walks a datagram of such messages.
 *
 * A packet message (attribute values in network order):
 *
 *   nlmsghdr  type = NFNL_SUBSYS_ULOG << 8 | NFULNL_MSG_PACKET
 *   nfgenmsg  u8 family (NFPROTO_IPV4 / NFPROTO_IPV6) | u8 version 0 | be16 res_id group
 *   NFULA_PACKET_HDR  { be16 hw_protocol, u8 hook, u8 pad }
 *   NFULA_PREFIX      NUL-terminated string (the log statement's prefix)
 *   NFULA_IFINDEX_INDEV / _OUTDEV  be32
 *   NFULA_PAYLOAD     the packet from its network header, at most copy_range bytes
 *   (NFULA_MARK, NFULA_TIMESTAMP, NFULA_HWADDR, ... are skipped)
 */
#ifndef KVNET_NET_NFLOG_H
#define KVNET_NET_NFLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/ip.h"

struct err;
struct nl_sock;
struct nl_msgv;

#define NFLOG_PREFIX_MAX 128 /* NF_LOG_PREFIXLEN, with the NUL */

/* One logged packet. */
struct nflog_pkt {
	uint16_t group;			 /* the nflog group (nfgenmsg res_id) */
	uint8_t hook;			 /* netfilter hook number it was logged at */
	char prefix[NFLOG_PREFIX_MAX];	 /* the rule's log prefix ("" none) */
	uint32_t indev, outdev;		 /* interface indexes (0 absent) */
	struct ip_addr src, dst;	 /* from the network header */
	uint8_t proto;			 /* IPPROTO_* (the last IPv6 next header read) */
	uint16_t sport, dport;		 /* TCP/UDP/SCTP ports (host order); ICMP: 0 */
	bool has_ports;			 /* the transport header was in the copy */
	uint32_t len;			 /* the packet's length by its network header */
};

/* Bind s (a NETLINK_NETFILTER socket) to group, copying copy_range bytes of each packet,
 * each packet sent in its own message at once (queue threshold 1).
 * 0 or -errno with e (-EBUSY: the group has another listener). */
int nflog_bind(struct nl_sock *s, uint16_t group, uint32_t copy_range, struct err *e);

/* Parse one message. 0; -ENOMSG for a message that is not an nflog packet (another
 * subsystem, NLMSG_DONE ...); -EBADMSG with e for a malformed one (including a payload
 * without a whole IPv4 or IPv6 header). */
int nflog_parse(const struct nl_msgv *m, struct nflog_pkt *p, struct err *e);

/* Every packet message of one datagram to cb (which returns 0 to go on). The number of
 * packets, or -EBADMSG with e when the datagram or a packet message is malformed (the
 * packets before it were handed out). */
typedef int (*nflog_cb)(const struct nflog_pkt *p, void *arg);
int nflog_parse_buf(const void *buf, size_t len, nflog_cb cb, void *arg, struct err *e);

#endif
