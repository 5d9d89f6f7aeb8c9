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
 * port gets its guard (and, when it starts closed, its gates) before it joins the bridge
 * and goes up.
 *
 * Live migration: a VM port can be closed, both ways, by the port gate (l2/prog.h) on its
 * ingress and egress at tc priority L2_PRIO_GATE, ahead of the guard at L2_PRIO_GUARD.
 * The gate is a tc-BPF program, not a bridge port state: the STP port state of a bridge
 * without STP is reset to forwarding whenever the port's carrier comes up, and bridge
 * VLAN filtering is not there to use. A capture socket (AF_PACKET) still sees what a
 * closed port's VM sends (taps run before tc ingress): that is how the VM's announcement
 * is detected on a closed target port. l2_relearn sends the announcements for a VM into
 * its network's bridge, from where they reach every local port and, tagged by the uplink
 * program, the trunk.
 */
#ifndef KVNET_L2_NET_H
#define KVNET_L2_NET_H

#include "l2/prog.h"

#include <stdbool.h>

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

#define L2_PRIO_GATE 1	/* tc priority of a closed port's gate (first) */
#define L2_PRIO_GUARD 2 /* tc priority of the port guard (ingress) */

/* Put VM port ifindex (the host side of the VM's interface) into network id's bridge
 * behind a guard for g: the guard first (and with closed the gates, l2_port_close), then
 * the bridge, then up. A port already there gets the new guard in one step (a closed
 * port stays closed: closed only ever closes). 0 or -errno. */
int l2_port_attach(struct nl_sock *s, const char *id, int ifindex, const struct l2_guard *g,
		   bool closed, struct err *e);

/* Close VM port ifindex both ways (the gate on egress, then on ingress); closed already
 * is fine. 0 or -errno. */
int l2_port_close(struct nl_sock *s, int ifindex, struct err *e);
/* Open it: the gates go (ingress first, then egress), its guard stays. Open already is
 * fine. 0 or -errno. */
int l2_port_open(struct nl_sock *s, int ifindex, struct err *e);
/* Point the bridge's forwarding entry of mac at port ifindex (a dynamic entry, as if
 * learnt from a frame the VM sent there; RTM_NEWNEIGH AF_BRIDGE NTF_MASTER, replace), so
 * frames for a VM that just arrived on this node reach it at once even when it has not
 * sent anything yet (the bridge had learnt it behind the uplink). 0 or -errno. */
int l2_port_learn(struct nl_sock *s, int ifindex, const uint8_t mac[6], struct err *e);
/* Whether port ifindex has a gate (on either hook) into *closed. 0 or -errno. */
int l2_port_closed(struct nl_sock *s, int ifindex, bool *closed, struct err *e);

/* Who a VM port is, kept on the port itself as its interface alias (IFLA_IFALIAS), so
 * the agent finds a pod's L2 ports and the VM's MAC and addresses in the kernel:
 *
 *   kvnet-l2 uid=POD_UID mac=aa:bb:cc:dd:ee:ff [ip=ADDR[,ADDR...]]
 */
#define L2_UID_MAX 63 /* characters of a pod uid kept */
struct l2_port_id {
	char uid[L2_UID_MAX + 1];	 /* the pod's uid */
	uint8_t mac[6];			 /* the VM's MAC on this port */
	struct ip_addr ips[L2_PORT_IPS]; /* its addresses */
	size_t n_ips;			 /* how many */
};

/* The alias of p into buf (cap bytes). Its length, or -ENOSPC / -EINVAL (an empty uid,
 * one with a space or longer than L2_UID_MAX, more than L2_PORT_IPS addresses). Pure. */
int l2_alias_fmt(const struct l2_port_id *p, char *buf, size_t cap);
/* Parse an alias (any string; fuzzed) into *out: 0, or -ENOMSG when it is not kvnet's
 * (no "kvnet-l2 " prefix), -EINVAL when it is but does not parse. Pure. */
int l2_alias_parse(const char *s, struct l2_port_id *out);

/* What l2_relearn sent. */
struct l2_relearn_sent {
	unsigned garp, na, rarp; /* frames of each kind */
};

/* Announce a VM into network id's bridge kvl-ID, in the calling thread's namespace: a
 * gratuitous ARP for each IPv4 address of ips (n of them), an unsolicited neighbour
 * advertisement for each IPv6 one, and a RARP for mac, all from mac. The bridge floods
 * them to its ports and its uplink, which tags them with the network's VLAN on the trunk,
 * so the switch (and every node's bridge) relearns mac at once even when the VM says
 * nothing. What was sent goes into *sent (may be NULL). 0, or the first -errno with e
 * (the other frames are still tried). */
int l2_relearn(const char *id, const uint8_t mac[6], const struct ip_addr *ips, size_t n,
	       struct l2_relearn_sent *sent, struct err *e);

#endif
