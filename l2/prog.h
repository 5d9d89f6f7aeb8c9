/* l2/prog — the tc-BPF programs of kvnet's L2 bridge networks, assembled per port.
 *
 * The data plane needs neither `8021q` nor bridge VLAN filtering. Each L2 network (one
 * VLAN of one trunk) gets a bridge of its own; frames inside it are untagged, so VLANs
 * are apart by construction (broadcast and unknown unicast included) and each bridge
 * learns its own MACs. Three programs join them to the trunk and guard the VM ports:
 *
 *   trunk uplink (ingress)          frames from the switch
 *     tagged vid v, v one of ours   pop the tag, redirect to VLAN v's uplink veth (it
 *                                   enters the VLAN's bridge); a second (inner) tag,
 *                                   or an S-tag (802.1ad), is dropped
 *     tagged, another vid           dropped
 *     untagged                      the untagged L2 network's veth if there is one,
 *                                   else passed on to the host (the trunk may be the
 *                                   node's own uplink)
 *
 *   VLAN uplink veth (ingress)      frames leaving VLAN v's bridge towards the switch
 *                                   a tagged frame is dropped; else push tag v (none for
 *                                   the untagged network) and redirect out of the trunk
 *
 *   VM port (ingress)               frames the VM sends (port security)
 *                                   dropped: a tagged frame (no VLAN hopping), another
 *                                   source MAC, anything but ARP / IPv4 / IPv6, an ARP
 *                                   whose sender MAC or address is not the VM's, an IPv4
 *                                   or IPv6 source that is not the VM's (0.0.0.0, :: and
 *                                   fe80::/10 allowed: DHCP, DAD, link-local), a DHCP or
 *                                   DHCPv6 server reply (UDP source 67 / 547), a router
 *                                   advertisement or redirect, a neighbour advertisement
 *                                   for an address not the VM's. With no addresses known
 *                                   (the network has no IPAM), only MAC and tags are
 *                                   checked.
 *
 *   port gate (ingress and egress)  a closed VM port (a migration target before the VM
 *                                   is announced there, a source after the hand-over):
 *                                   every frame is dropped, both ways. It sits before the
 *                                   guard (a lower tc priority) and is removed to open.
 *
 * Verdicts are direct-action tc codes (TC_ACT_OK, TC_ACT_SHOT, TC_ACT_REDIRECT). The
 * builders only assemble; net/bpf.h loads, net/tc.h attaches.
 */
#ifndef KVNET_L2_PROG_H
#define KVNET_L2_PROG_H

#include "lib/ip.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bpf_asm;

#define L2_VLAN_MAX 64	     /* L2 networks on one trunk */
#define L2_PORT_IPS 8	     /* addresses one VM port may use */

/* One L2 network of a trunk: frames of vid (1..4094) go to the veth at ifindex. */
struct l2_vlan_out {
	uint16_t vid;  /* 802.1Q VLAN id */
	int ifindex;   /* the VLAN's uplink veth (trunk side) */
};

/* The trunk's ingress program: n networks of v (n <= L2_VLAN_MAX, distinct vids);
 * untagged_ifindex the untagged network's veth or 0 (untagged frames go to the host). */
int l2_prog_trunk(struct bpf_asm *a, const struct l2_vlan_out *v, size_t n,
		  int untagged_ifindex);

/* The VLAN uplink veth's ingress program: tag vid (0: none) and out of trunk_ifindex. */
int l2_prog_uplink(struct bpf_asm *a, uint16_t vid, int trunk_ifindex);

/* What a VM port may send. */
struct l2_guard {
	uint8_t mac[6];                  /* the VM's MAC */
	struct ip_addr ips[L2_PORT_IPS]; /* its addresses (v4 and v6) */
	size_t n_ips;                    /* how many; 0: addresses are not checked */
};

/* The VM port's ingress program. */
int l2_prog_guard(struct bpf_asm *a, const struct l2_guard *g);

/* The gate of a closed port: drops every frame. */
int l2_prog_gate(struct bpf_asm *a);

#endif
