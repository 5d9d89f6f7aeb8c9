/* l2 — the "l2" data-plane mode (cni_mode_l2, cni/mode.h): a VM's secondary interface
 * on an L2Network (l2/netdef.h), with its original IP and MAC, and the reading of that
 * L2Network from the datastore.
 *
 * Where the L2Network comes from: the file datastore's STATE_DIR/L2_DOC_DIR/NAME.json
 * (the same document as the custom resource), or GET /apis/kvnet.io/v1/l2networks/NAME
 * with the kubernetes datastore. Its subnets become the request's pools (each reserving
 * its gateway, and serving this network alone: ipam.h "network"); without subnets the
 * interface gets no address and its port is guarded by MAC only.
 *
 * The interface: a veth pair, the pod end r->ifname with the VM's MAC and addresses
 * (subnet prefix length, so the kernel's subnet route is the only route: no default
 * route on a secondary network, as the reference bridge plugin does without isGateway),
 * the host end (cni_host_ifname) without any IPv6 address of its own (addr_gen_mode
 * none, accept_ra 0, disable_ipv6) put into the network's bridge kvl-ID behind the port
 * guard (l2_port_attach). When the bridge is not there yet, the trunk this node uses
 * (l2_netdef_trunk) is applied first with every L2Network of the datastore on that trunk
 * (l2_trunk_apply replaces the trunk's program as a whole), under a node-local lock. */
#ifndef KVNET_CNI_L2_H
#define KVNET_CNI_L2_H

#include "cni/netconf.h"
#include "cni/store.h"
#include "l2/net.h"
#include "l2/netdef.h"

#include <stddef.h>

#define CNI_L2_LOCK CNI_KUBE_LOCKDIR "/l2.lock" /* node-local lock of trunk applies */

/* What the l2 mode needs to know of the datastore. */
struct cni_l2 {
	struct l2_netdef def;		 /* the L2Network r->network */
	char trunk[L2_IFNAME_MAX + 1];	 /* its trunk on this node */
	bool bridge;			 /* its bridge kvl-ID exists already */
	struct l2_net nets[L2_VLAN_MAX]; /* !bridge: every L2Network on that trunk here */
	size_t n_nets;			 /* how many (this one included) */
};

/* Read r->network's L2Network from cs into l (and, when its bridge is missing on this
 * node, every L2Network, to find those sharing its trunk), then point r->l2 at l
 * and fill r's pools, pool gateways and families from its subnets. 0, or -1 with f:
 * code 7 when it does not exist, does not parse or has no trunk on r->node, 11 when the
 * datastore cannot be asked. */
int cni_l2_load(struct cni_store *cs, struct cni_req *r, struct cni_l2 *l, struct cni_fail *f);


#endif
