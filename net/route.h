/* route — rtnetlink route operations, IPv4 and IPv6: add, replace, delete, dump.
 *
 * Every operation acts in the namespace of the socket and returns 0 or -errno with e
 * reading "route 198.18.0.5/32: add: Nexthop has invalid gateway".
 *
 *   RTM_NEWROUTE / RTM_DELROUTE:
 *   nlmsghdr | rtmsg {family, dst_len, src_len 0, tos 0, table (<256 or RT_TABLE_UNSPEC),
 *                     protocol, scope, type, flags (RTNH_F_ONLINK)}
 *            | RTA_DST addr | RTA_GATEWAY addr | RTA_OIF u32 | RTA_PRIORITY u32
 *            | RTA_TABLE u32
 *
 * kvnet marks its routes with its own protocol number so that the agent can find and
 * clean them after a restart: `ip route show proto 75`.
 */
#ifndef KVNET_NET_ROUTE_H
#define KVNET_NET_ROUTE_H

#include <stdbool.h>
#include <stdint.h>

#include "net/addr.h"

struct err;
struct nl_sock;
struct nl_msgv;

/* kvnet's own route protocol number (rtm_protocol), shown by iproute2 as "75". */
#define RT_PROTO_KVNET 75

/* One route. Zero-initialised = scope universe, main table, no gateway, no metric. */
struct rt_route {
	struct ip_addr dst; /* destination network; its family is the route's family */
	uint8_t dst_len;    /* prefix length */
	struct ip_addr gw;  /* gateway (same family as dst), family 0 = none */
	int oif;	    /* output interface ifindex; 0 = none */
	uint32_t table;	    /* routing table id; 0 = main (RT_TABLE_MAIN, 254) */
	uint32_t metric;    /* RTA_PRIORITY; 0 = none (IPv6: the kernel picks 1024) */
	uint8_t protocol;   /* RTPROT_* or RT_PROTO_KVNET; 0 = unspecified */
	uint8_t scope;	    /* RT_SCOPE_UNIVERSE (0), RT_SCOPE_LINK (253), ... */
	uint8_t type;	    /* RTN_*; 0 = RTN_UNICAST */
	bool onlink;	    /* RTNH_F_ONLINK: gateway is on the link, no check */
};

/* Parse an RTM_NEWROUTE message (pure; fuzzed). Routes of other families than IPv4 and
 * IPv6 are -EAFNOSUPPORT; a malformed message -EBADMSG. kvnet installs no multipath
 * routes: for one, the nexthops (RTA_MULTIPATH) are not reported (gw and oif stay 0). */
int rt_parse(const struct nl_msgv *m, struct rt_route *out, struct err *e);

/* Add the route; one already there is -EEXIST. */
int rt_add(struct nl_sock *s, const struct rt_route *r, struct err *e);

/* Add the route, or replace the one with the same destination, table and metric (the
 * metric is part of a route's identity for both families: moving a /32 from metric 512
 * to 1024 is an add of the new one and a delete of the old one). */
int rt_replace(struct nl_sock *s, const struct rt_route *r, struct err *e);

/* Delete the route matching r: destination, table, and each of gateway, oif, metric and
 * protocol that r sets (scope and type match anything). None: -ESRCH. */
int rt_del(struct nl_sock *s, const struct rt_route *r, struct err *e);

/* Which routes rt_dump() reports. */
struct rt_filter {
	uint8_t family;	  /* AF_INET or AF_INET6 (required) */
	uint8_t protocol; /* only this protocol; 0 = any */
	uint32_t table;	  /* only this table; 0 = any */
	int oif;	  /* only via this ifindex; 0 = any */
};

/* Dump routes matching f and call fn for each (fn returns 0 or -errno to stop, with e
 * filled). Cached IPv6 clones are skipped. -EINTR if the kernel flagged the dump as
 * interrupted (dump again). */
int rt_dump(struct nl_sock *s, const struct rt_filter *f,
	    int (*fn)(const struct rt_route *r, void *arg, struct err *e), void *arg,
	    struct err *e);

/* Format "198.18.0.5/32" (the destination) into buf (IP_STRLEN). */
const char *rt_fmt(const struct rt_route *r, char *buf);

#endif
