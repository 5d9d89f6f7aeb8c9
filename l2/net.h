/* l2/net — the node side of L2 bridge networks: a bridge per network, joined to the
 * trunk by a veth pair and tc-BPF (l2/prog.h), and guarded VM ports.
 *
 *                 +-------------------- node --------------------------------+
 *   switch ===== trunk (ingress: demux by VLAN, pop)                          |
 *   (tagged)      |   redirect                          kvl-ID (bridge, VLAN v)|
 *                 +--> kvt-ID ====== kvu-ID (port) ----+---- VM port (guard)   |
 *                 <-- (ingress: push v, redirect out of the trunk)            |
 *                 +-----------------------------------------------------------+
 *
 * Names: the bridge kvl-ID, the veth pair kvu-ID (in the bridge) / kvt-ID (trunk side),
 * ID at most 8 characters chosen by the caller (e.g. a hash of the L2Network's name).
 * kvnet's own links carry no addresses: IPv6 is switched off on them, so the node sends
 * nothing into the VLAN itself; the trunk is left as it is (it may carry the node's own
 * untagged traffic, which passes to the host).
 *
 * Order, so that nothing is ever open: a network's plumbing and its uplink program are
 * in place before the trunk program that sends it frames is replaced (in one step); a VM
 * port gets its guard before it joins the bridge and goes up.
 */
#ifndef KVNET_L2_NET_H
#define KVNET_L2_NET_H

#include "l2/prog.h"

#include <stddef.h>
#include <stdint.h>

struct err;
struct nl_sock;

#define L2_ID_MAX 8 /* characters of a network's link id */

/* One L2 network of a trunk. */
struct l2_net {
	char id[L2_ID_MAX + 1]; /* link id: kvl-ID, kvu-ID, kvt-ID */
	uint16_t vid;		/* 1..4094, or 0 for the trunk's untagged frames */
	uint32_t mtu;		/* of the bridge and veths; 0 = the trunk's */
};

/* Link names of network id: kvl-ID / kvu-ID / kvt-ID into buf (16 bytes). */
void l2_bridge_name(const char *id, char buf[16]);
void l2_uplink_name(const char *id, char buf[16]);
void l2_trunk_side_name(const char *id, char buf[16]);

/* Make the n networks of trunk (an interface name) real in the socket's namespace:
 * bridges, veth pairs, programs; what exists already is kept and brought in line.
 * Networks of this trunk not in nets are not touched (l2_net_remove). 0 or -errno, e
 * naming the network and step. */
int l2_trunk_apply(struct nl_sock *s, const char *trunk, const struct l2_net *nets, size_t n,
		   struct err *e);

/* Take kvnet's program off trunk (its last network is gone): the trunk's frames go to
 * the host again as before kvnet. Call it before removing the last network's links.
 * A trunk without the program, or gone, is fine. 0 or -errno. */
int l2_trunk_release(struct nl_sock *s, const char *trunk, struct err *e);
/* Remove network id's bridge and veth pair. Call it right after its trunk was re-applied
 * without it (which stops the switch's frames of its VLAN at once; until the removal its
 * VMs can still send out of the trunk). Absent is fine. */
int l2_net_remove(struct nl_sock *s, const char *id, struct err *e);

/* Put VM port ifindex (the host side of the VM's interface) into network id's bridge
 * behind a guard for g: the guard first, then the bridge, then up. A port already there
 * gets the new guard in one step. 0 or -errno. */
int l2_port_attach(struct nl_sock *s, const char *id, int ifindex, const struct l2_guard *g,
		   struct err *e);

#endif
