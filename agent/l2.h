/* l2 — the agent's side of the L2Networks (l2/netdef.h): every network this node has a
 * trunk for is made real (bridge kvl-ID, uplink veth, trunk program: l2/net.h) and kept
 * so, and each node reports its side in the network's status.
 *
 * Where the networks come from: the L2Network objects of the API (kubernetes datastore,
 * an informer; a cluster without the CRD has none) or the files state_dir/L2_DOC_DIR/
 * NAME.json of the file datastore (the same document; read at every reconcile). The trunk
 * a node uses is the first per-node override that matches its name or labels, else the
 * default (l2_netdef_trunk).
 *
 * At every reconcile, per trunk: when the set of networks on it changed, one of them is
 * not ready, or one of its links went, the trunk is applied again with exactly the
 * networks it carries now (the switch's frames of a removed VLAN stop at once), then the
 * links of removed networks go; the last network of a trunk takes kvnet's program off it.
 * Two networks with one VLAN on one trunk: the first by name is used, the other reports
 * the clash. A trunk that does not exist (yet) is retried at every resync. Links of
 * networks that no longer exist are removed once the informers have synced (an agent
 * that was down while an L2Network was deleted cleans up after itself).
 *
 * Status (kubernetes datastore): this node's entry of status.nodes ({node, trunk,
 * trunkFound, bridgeReady, ports, message}) is written when it differs from what the
 * object says, as a JSON patch of the status subresource guarded by a test of the
 * resourceVersion (nodes write their own entries concurrently; a lost race is retried at
 * the next reconcile). A node without a trunk for a network removes its entry.
 *
 * Live migration: an L2 port is no endpoint of the agent's table (routes, gateway and
 * policy are the pod network's); the CNI ADD names it in its interface alias (l2/net.h
 * l2_port_id: the pod's uid, the VM's MAC and addresses). The VM pod's pod-network
 * endpoint carries the hand-over (agent/mignode.h: announcement detection, the
 * target-ready annotation, owner changes); mignode tells this module of every transition
 * of its machine (agent_l2_migrated), and the pod's L2 ports on this node follow it:
 *   -> target      the ports are closed (the CNI ADD of a migration target closed them
 *                  already, before they joined their bridges: l2_port_attach closed)
 *   target -> claiming / live / time-wait (the VM is routed here: at the claim, not
 *                  after the owner CAS through the API; a refused claim goes back to
 *                  target and closes again; claiming -> live, the claim confirmed,
 *                  announces the VM once more: msg="l2 port announced")
 *                  each port opens, then l2_relearn sends, from the VM's MAC, a GARP per
 *                  IPv4 address, an unsolicited NA per IPv6 address and a RARP into the
 *                  bridge; the uplink tags them with the network's VLAN on the trunk, so
 *                  the upstream switch relearns at once even when the guest says nothing
 *   -> source      (the VM is active on another node) the ports close
 *   source -> base (the migration rolled back) the ports open and the VM is announced
 *   -> retired     (a failed target) the ports close
 * A VM with only L2 interfaces (no interface on kvnet's pod network) has no endpoint and
 * no machine; its ports follow KubeVirt's objects (pods of this node, VMIs): the target
 * pod's kubevirt.io/migration-target-ready-timestamp annotation opens them (and announces
 * the VM as above; also when the agent starts and finds the annotation), the VMI's
 * status.nodeName turning to another node closes those of its pods here. The CNI ADD of
 * the target closed them, so an agent restart in between leaves them closed.
 * Log lines: msg="l2 port open" / "l2 port closed", vmi=NS/NAME pod= port= network= vlan=
 * mac= event_ts= (the transition's) ts= (after the change; unix seconds), and for an
 * open garp= na= rarp= (frames sent). Counter kvnet_l2_migration_ports_total{op}.
 *
 * Also: GET /l2networks on the agent's HTTP port (this node's view, JSON, both
 * datastores) and the gauges kvnet_l2_networks{state="ready"|"failed"|"absent"} and
 * kvnet_l2_ports (VM ports in kvnet's bridges).
 */
#ifndef KVNET_AGENT_L2_H
#define KVNET_AGENT_L2_H

#include "agent/migrate.h"
#include "l2/net.h"
#include "l2/netdef.h"
#include "lib/json.h"

#include <stdbool.h>
#include <stddef.h>

struct agent;
struct err;

#define AGENT_L2_MAX 64	      /* L2Networks one node follows */
#define AGENT_L2_MSG_MAX 160  /* a status message */

/* One network as this node has it. */
struct agent_l2_state {
	char name[L2_NAME_MAX + 1];	 /* the L2Network */
	struct l2_net net;		 /* link id, VLAN, MTU */
	char trunk[L2_IFNAME_MAX + 1];	 /* the trunk this node uses; "" = not on this node */
	bool clash;			 /* its VLAN is taken on that trunk by another network */
	bool trunk_found;		 /* the trunk exists here */
	bool bridge_ready;		 /* bridge, uplink and trunk program in place */
	unsigned ports;			 /* VM ports in its bridge */
	char message[AGENT_L2_MSG_MAX];	 /* why not ready, or "" */
};

/* Plan (pure): the networks of defs (n of them, any order) as node sees them, sorted by
 * name into out (cap entries): trunk from l2_netdef_trunk, clashes of one VLAN on one
 * trunk marked (the first name keeps it). trunk_found/bridge_ready/ports are left false/0.
 * Returns how many (at most cap). */
size_t agent_l2_plan(const struct l2_netdef *defs, size_t n, const struct l2_node *node,
		     struct agent_l2_state *out, size_t cap);

/* The JSON patch (pure) that makes the L2Network object at token obj of d carry st as
 * node's entry of status.nodes (st NULL: no entry for node), guarded by a test of its
 * metadata.resourceVersion, into w. Returns 1 when a patch was written, 0 when the object
 * says so already (nothing written), -EINVAL when the object has no resourceVersion or
 * a status.nodes that is not an array. */
int agent_l2_status_patch(const struct json_doc *d, int obj, const char *node,
			  const struct agent_l2_state *st, struct json_w *w);

/* The hand-over's hook (agent/mignode.c calls it; the module is found by name, and an
 * agent without it ignores it). ep: the VM pod's endpoint (NULL ignored), m: its machine
 * after the step from -> to. */
struct agent_ep;
void agent_l2_migrated(struct agent *a, const struct agent_ep *ep, const struct mig_ep *m,
		       enum mig_state from, enum mig_state to);

/* What the transition from -> to of a VM pod's machine does to its L2 ports (pure; the
 * table above): 1 open (and announce), -1 close, 2 announce again, 0 nothing. */
int agent_l2_port_step(enum mig_state from, enum mig_state to);

/* The module (agent/modules.c): its state, or NULL with e. */
void *agent_l2_new(struct agent *a, struct err *e);
void agent_l2_free(void *state);

#endif
