/* l2/netdef — the L2Network resource (kvnet.io/v1, cluster-scoped): one VLAN of a trunk
 * extended into the cluster. Parsed from the API's JSON (a CR, or the same document in
 * the file datastore's l2networks/ directory), validated, and asked which trunk a node
 * uses. Pure: no I/O; fuzzed.
 *
 *   apiVersion: kvnet.io/v1
 *   kind: L2Network
 *   metadata: {name: vlan100}
 *   spec:
 *     vlan: 100                       1..4094, or 0: the trunk's untagged frames
 *     trunk:
 *       interface: eno2               the default uplink of every node
 *       nodes:                        overrides, the first match wins
 *       - {name: edge-3, interface: enp3s0}
 *       - {matchLabels: {hw: gen2}, interface: ens5f1}
 *     mtu: 1500                       optional; default the trunk's
 *     ipv4: {subnet: 198.18.100.0/24, gateway: 198.18.100.1}    optional
 *     ipv6: {subnet: 2001:db8:100::/64, gateway: 2001:db8:100::1} optional
 *
 * The subnets are the network's IPAM pools (the gateway is never handed out) and the
 * port guard's idea of who may send what; without them a port is guarded by MAC only.
 */
#ifndef KVNET_L2_NETDEF_H
#define KVNET_L2_NETDEF_H

#include "lib/ip.h"
#include "lib/json.h"

#include <stdbool.h>
#include <stdint.h>

struct err;

#define L2_NAME_MAX 63	     /* an L2Network's name: a DNS label */
#define L2_IFNAME_MAX 15     /* a Linux interface name */
#define L2_OVERRIDES_MAX 16  /* per-node trunk overrides */
#define L2_LABELS_MAX 4	     /* matchLabels pairs of one override */
/* The file datastore keeps one document per L2Network, state_dir/L2_DOC_DIR/NAME.json;
 * every reader (the CNI, the agent, ipamctl) takes these two from here. */
#define L2_DOC_DIR "l2networks"	     /* under the file datastore's state_dir */
#define L2_DOC_MAX (256u << 10)	     /* largest L2Network document read */

struct l2_subnet {
	bool set;	      /* given */
	struct ip_addr net;   /* network address (host bits zero) */
	uint8_t prefix;	      /* prefix length */
	struct ip_addr gw;    /* gateway (family 0: none) */
};

struct l2_label {
	char k[320];  /* key: [prefix (253) /] name (63) */
	char v[64];   /* value (63) */
};

struct l2_override {
	char node[254];			   /* node name, or "" when selected by labels */
	struct l2_label labels[L2_LABELS_MAX]; /* matchLabels (all must match) */
	unsigned n_labels;		   /* how many */
	char ifname[L2_IFNAME_MAX + 1];	   /* the trunk on those nodes */
};

struct l2_netdef {
	char name[L2_NAME_MAX + 1];	    /* metadata.name */
	char id[9];			    /* link id: 8 hex digits of SHA-256(name) */
	uint16_t vid;			    /* 0 untagged, else 1..4094 */
	char trunk[L2_IFNAME_MAX + 1];	    /* default trunk, "" when every node overrides */
	struct l2_override over[L2_OVERRIDES_MAX];
	unsigned n_over;		    /* how many */
	uint32_t mtu;			    /* 0 = the trunk's */
	struct l2_subnet v4, v6;	    /* optional subnets */
};

/* Parse the L2Network object at token obj of d into *out. 0, or -EINVAL with e naming the
 * field and why ("L2Network vlan100: spec.vlan: 4095 is not 0-4094"). */
int l2_netdef_parse(const struct json_doc *d, int obj, struct l2_netdef *out, struct err *e);

/* The same from text (a whole JSON document). */
int l2_netdef_parse_text(const char *text, size_t len, struct l2_netdef *out, struct err *e);

/* A node's labels, to match overrides against: n pairs. */
struct l2_node {
	const char *name;		/* node name */
	const struct l2_label *labels;	/* its labels */
	unsigned n_labels;		/* how many */
};

/* The trunk interface node uses for n (the first override that matches, else the
 * default), or NULL when neither names one (the network is not on that node). */
const char *l2_netdef_trunk(const struct l2_netdef *n, const struct l2_node *node);

/* True when ip lies in one of n's subnets (and is not the network address, a v4
 * broadcast or the gateway): an address the network's IPAM may hand out. */
bool l2_netdef_usable(const struct l2_netdef *n, const struct ip_addr *ip);

#endif
