/* desired — the routes the agent wants, computed by one pure function.
 *
 * Input (struct agent_world): this node's name, the nodes' InternalIPs, the IPAM blocks
 * (CIDR + affine node) and the active owner of every allocated address (from the
 * IPAMBlock records), the local endpoints (registered by the CNI plugin or adopted from
 * existing routes) and the overrides the migration code asks for. Output: a sorted
 * array of struct rt_route, all in the main table with protocol w->protocol.
 *
 * Rules, first match per (destination, metric) wins:
 *   1. override for IP X:  DEV  -> X/32 (/128) dev ifindex metric m
 *                          VIA  -> X/32 via the node's InternalIP of X's family, metric
 *                                  w->metric (none if the node or address is unknown)
 *                          NONE -> no /32 for X from rules 2 and 3
 *   2. local endpoint, not a dark migration target, interface resolved (ifindex > 0):
 *      each IP -> IP/32 dev veth metric w->metric (scope link for IPv4, universe for IPv6,
 *      exactly what the CNI plugin installs) -- unless IPAM names an active owner with
 *      a uid that is not this endpoint's pod and a node that is not this one (the VM
 *      moved away: rule 3 routes it to its new node).
 *   3. direct mode: an allocated address whose owner node differs from its block's
 *      affine node, and whose owner node is not this one -> IP/32 via the owner node.
 *   4. direct mode: a block affine to another node -> block via that node's address.
 * Nothing is routed to this node's own address or to a node whose address is unknown.
 * Overlay (w->via_oif > 0, cross_node = vxlan): every route "via a node" of rules 1, 3
 * and 4 leaves through that device instead, the same gateway marked onlink (the node's
 * InternalIP of the inner family, which the overlay's permanent neighbour entry maps to
 * the node's VTEP MAC).
 */
#ifndef KVNET_AGENT_DESIRED_H
#define KVNET_AGENT_DESIRED_H

#include "ipam/ipam.h"
#include "net/addr.h"
#include "net/link.h"
#include "net/route.h"

#include <stdbool.h>
#include <stdint.h>

struct err;

#define AGENT_EP_IPS_MAX IPAM_HANDLE_IPS_MAX

/* One local endpoint: a pod interface on this node, as the CNI plugin registered it. */
struct agent_ep {
	char cid[IPAM_CID_MAX + 1];	    /* container id (key, with ifname) */
	char ifname[IPAM_IFNAME_MAX + 1];   /* interface in the pod (key, with cid) */
	char ns[IPAM_NS_MAX + 1];	    /* pod namespace ("" unknown) */
	char pod[IPAM_NAME_MAX + 1];	    /* pod name ("" unknown) */
	char uid[IPAM_UID_MAX + 1];	    /* pod uid ("" unknown) */
	char veth[LINK_NAMESZ];		    /* host-side veth name */
	char handle[IPAM_NAME_MAX + 1];	    /* IPAM handle ("" unknown) */
	char vm[IPAM_NAME_MAX + 1];	    /* VM (VMI) name for VM pods, else "" */
	bool target;			    /* a migration target: dark (no route) until the
					     * migration code overrides its route */
	bool adopted;			    /* reconstructed from an existing route at start,
					     * not registered by the CNI plugin */
	unsigned n_ip;			    /* addresses in ip[] */
	struct ip_addr ip[AGENT_EP_IPS_MAX]; /* the pod's addresses */
	int ifindex;			    /* veth ifindex, resolved by the agent; 0 = absent */
};

/* One node and its InternalIP per family (family 0 = unknown). */
struct agent_node {
	const char *name;  /* object name */
	struct ip_addr v4; /* IPv4 InternalIP */
	struct ip_addr v6; /* IPv6 InternalIP */
};

/* One IPAM block. */
struct agent_block {
	struct ip_addr net; /* network address */
	uint8_t len;	    /* prefix length */
	const char *node;   /* affine node ("" none) */
};

/* The active owner of one allocated address (IPAMBlock slot). */
struct agent_owner {
	struct ip_addr ip; /* the address */
	const char *node;  /* active owner's node, else the allocating node */
	const char *uid;   /* active owner's pod uid ("" for ordinary pods) */
};

enum agent_ovr_kind {
	AGENT_OVR_DEV,	/* route the /32 to a local interface at a given metric */
	AGENT_OVR_VIA,	/* route the /32 via another node */
	AGENT_OVR_NONE, /* no /32 at all */
};

/* A route for one address that the migration code imposes over rules 2 and 3. */
struct agent_override {
	struct ip_addr ip;	  /* the address */
	enum agent_ovr_kind kind; /* what to do */
	int ifindex;		  /* DEV: interface */
	uint32_t metric;	  /* DEV: metric (0 = the world's metric) */
	char node[IPAM_NAME_MAX + 1]; /* VIA: node name */
};

struct agent_world {
	const char *self;			/* this node's name */
	bool direct;				/* cross-node routes (rules 3, 4): direct
						 * or overlay */
	int via_oif;				/* > 0: routes via a node leave through
						 * this device, onlink (the overlay); 0 =
						 * the kernel's route to the gateway */
	uint32_t metric;			/* normal metric (route_metric) */
	uint8_t protocol;			/* route protocol (route_protocol) */
	const struct agent_node *nodes;		/* nodes */
	unsigned n_nodes;			/* their count */
	const struct agent_block *blocks;	/* IPAM blocks */
	unsigned n_blocks;			/* their count */
	const struct agent_owner *owners;	/* allocated addresses */
	unsigned n_owners;			/* their count */
	const struct agent_ep *const *eps;	/* local endpoints */
	unsigned n_eps;				/* their count */
	const struct agent_override *ovr;	/* overrides */
	unsigned n_ovr;				/* their count */
};

/* Compute the desired routes of w into *out (malloc'd; free()) and *n, sorted by
 * (family, destination, prefix length, metric). Pure: no I/O, no clock. 0 or -ENOMEM. */
int agent_desired(const struct agent_world *w, struct rt_route **out, unsigned *n,
		  struct err *e);

/* True when route `have` (as the kernel reports it) is what `want` asks for: same
 * destination, prefix, table, metric, scope, type, gateway and, when want names one,
 * output interface. */
bool agent_route_same(const struct rt_route *want, const struct rt_route *have);

/* Order used for the output: family, destination, prefix length, metric. */
int agent_route_cmp(const struct rt_route *a, const struct rt_route *b);

#endif
