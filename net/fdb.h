/* fdb — the VXLAN overlay's kernel objects: the VXLAN device and its forwarding
 * database (FDB) entries, each "inner MAC -> remote VTEP underlay address".
 *
 * Every operation acts in the namespace of the socket and returns 0 or -errno with e
 * reading "fdb 02:4b:c6:12:00:02 dst 198.18.1.2 dev 7: add: why".
 *
 *   FDB entry, RTM_NEWNEIGH / RTM_DELNEIGH / RTM_GETNEIGH (dump):
 *   nlmsghdr | ndmsg {family AF_BRIDGE, ifindex (the VXLAN device), state NUD_PERMANENT,
 *                     flags NTF_SELF (the device's own table, not a bridge's)}
 *            | NDA_LLADDR mac (6) | NDA_DST remote VTEP (4 or 16 bytes)
 *
 *   VXLAN device, RTM_NEWLINK (to create; and the kernel's answer to RTM_GETLINK):
 *   nlmsghdr | ifinfomsg | IFLA_IFNAME | IFLA_MTU u32 | IFLA_ADDRESS mac
 *            | IFLA_LINKINFO { IFLA_INFO_KIND "vxlan",
 *                              IFLA_INFO_DATA { IFLA_VXLAN_ID u32, IFLA_VXLAN_LINK u32,
 *                                               IFLA_VXLAN_LOCAL(6) addr,
 *                                               IFLA_VXLAN_PORT be16,
 *                                               IFLA_VXLAN_LEARNING u8 0 } }
 *
 * Learning is off: every remote MAC is programmed (by agent/vxlan.c), nothing floods.
 */
#ifndef KVNET_NET_FDB_H
#define KVNET_NET_FDB_H

#include <stdbool.h>
#include <stdint.h>

#include "net/addr.h"
#include "net/link.h"

struct err;
struct nl_sock;
struct nl_msgv;

/* VXLAN encapsulation overhead on top of the inner frame: outer IPv4 + UDP + VXLAN +
 * inner Ethernet = 20 + 8 + 8 + 14; with an IPv6 underlay 40 instead of 20. */
#define FDB_VXLAN_OVERHEAD_V4 50
#define FDB_VXLAN_OVERHEAD_V6 70

/* One FDB entry of a VXLAN device. */
struct fdb_entry {
	int ifindex;	    /* the VXLAN device */
	uint8_t mac[6];	    /* inner destination MAC */
	struct ip_addr dst; /* remote VTEP (underlay) address; family 0 = none */
	uint16_t state;	    /* NUD_* (NUD_PERMANENT for what kvnet installs) */
	uint8_t flags;	    /* NTF_* (NTF_SELF) */
};

/* A VXLAN device to create. */
struct fdb_vxlan {
	char name[LINK_NAMESZ];	 /* device name */
	uint32_t vni;		 /* VXLAN network identifier, 1..2^24-1 */
	uint16_t port;		 /* UDP destination port, host order (4789) */
	struct ip_addr local;	 /* local VTEP (underlay) address; its family is the
				  * underlay's */
	int underlay;		 /* underlay ifindex; 0 = none (route lookup per packet) */
	uint32_t mtu;		 /* device MTU; 0 = the kernel's choice */
	uint8_t mac[6];		 /* device MAC (fdb_vxlan_mac) */
};

/* The fixed MAC of the VTEP whose underlay address is node: 02:4b (locally
 * administered, unicast) then the four bytes of an IPv4 address, or of an IPv6
 * address folded (bytes 0..11 XORed into 12..15). Every node computes every other node's
 * MAC the same way, so no MAC travels between nodes. Pure. */
void fdb_vxlan_mac(const struct ip_addr *node, uint8_t mac[6]);

/* The MTU of a VXLAN device over an underlay of MTU underlay_mtu and the given family
 * (AF_INET or AF_INET6); 0 when the underlay is too small (below 68 + overhead). */
uint32_t fdb_vxlan_mtu(uint32_t underlay_mtu, int family);

/* Create the VXLAN device v (down; set it up with link_set_up). -EEXIST if a link of
 * that name exists. */
int fdb_vxlan_add(struct nl_sock *s, const struct fdb_vxlan *v, struct err *e);

/* Parse an RTM_NEWLINK message of a VXLAN device into out (pure; fuzzed): name, MTU,
 * MAC, and from IFLA_LINKINFO / IFLA_INFO_DATA the VNI, UDP port (host order; 0 when
 * absent), underlay ifindex (0 = none) and local address (family 0 = none). A link of
 * another kind is -ENOTSUP, a malformed message or one without IFLA_VXLAN_ID -EBADMSG. */
int fdb_vxlan_parse(const struct nl_msgv *m, struct fdb_vxlan *out, struct err *e);

/* Read the VXLAN device `name` (RTM_GETLINK) into out, its ifindex into *ifindex.
 * Absent: -ENODEV; a link of another kind: -ENOTSUP (both with e). */
int fdb_vxlan_get(struct nl_sock *s, const char *name, struct fdb_vxlan *out, int *ifindex,
		  struct err *e);

/* Add or replace the permanent entry mac -> dst on VXLAN device ifindex. */
int fdb_replace(struct nl_sock *s, int ifindex, const uint8_t mac[6],
		const struct ip_addr *dst, struct err *e);

/* Delete the entry mac -> dst on ifindex. Absent: -ENOENT. */
int fdb_del(struct nl_sock *s, int ifindex, const uint8_t mac[6], const struct ip_addr *dst,
	    struct err *e);

/* Parse an RTM_NEWNEIGH message of family AF_BRIDGE (pure; fuzzed). Another family is
 * -EAFNOSUPPORT, a malformed message -EBADMSG. An entry without NDA_LLADDR is -EBADMSG. */
int fdb_parse(const struct nl_msgv *m, struct fdb_entry *out, struct err *e);

/* Dump the FDB entries of device ifindex (every device: 0) and call fn for each (fn
 * returns 0 or -errno to stop, with e). -EINTR if the dump was interrupted. */
int fdb_dump(struct nl_sock *s, int ifindex,
	     int (*fn)(const struct fdb_entry *f, void *arg, struct err *e), void *arg,
	     struct err *e);

/* Parse an RTM_NEWADDR message (pure; fuzzed): the interface *ifindex and the address
 * *ip it holds (IFA_LOCAL, else IFA_ADDRESS). -EAFNOSUPPORT for a family other than IPv4
 * and IPv6, -EBADMSG for a malformed message or one without an address. */
int fdb_addr_parse(const struct nl_msgv *m, int *ifindex, struct ip_addr *ip,
		   struct err *e);

/* The interface that holds address ip (the underlay of a VTEP whose local address is
 * ip): dumps the addresses of ip's family. -ENODEV with e when no interface has it. */
int fdb_addr_ifindex(struct nl_sock *s, const struct ip_addr *ip, int *ifindex,
		     struct err *e);

/* Format a MAC "02:4b:c6:12:00:02" into buf (18 bytes). */
const char *fdb_mac_fmt(const uint8_t mac[6], char *buf);

#endif
