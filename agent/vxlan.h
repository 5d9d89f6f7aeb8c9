/* vxlan — cross_node = vxlan: the node's VXLAN overlay device and, for every other
 * node, the overlay entries that make "via that node onlink dev <device>" work.
 *
 * After every reconcile (AGENT_HOOK_RECONCILED) the module brings the kernel to:
 *   - the device [network] vxlan_device (VNI vxlan_vni, UDP port vxlan_port, learning
 *     off, local address = this node's InternalIP of vxlan_family, underlay
 *     vxlan_underlay or the interface holding that address, MTU = underlay MTU minus
 *     the encapsulation overhead, net/fdb.h), created and set up once the Node object
 *     gives this node's address. An existing link of that name is read back
 *     (fdb_vxlan_get): a vxlan link with that VNI, port, local address and underlay is
 *     adopted (MAC and MTU set if they differ); one with other attributes is deleted
 *     and created again (a warning names them); a link of another kind is refused (a
 *     warning each reconcile, nothing built on it);
 *   - after a reload (SIGHUP) that changes vxlan_device, vxlan_vni, vxlan_port,
 *     vxlan_underlay or vxlan_family (or this node's InternalIP changed): the device in
 *     use is deleted, with a warning naming the keys, and created again as now
 *     configured (its FDB entries, neighbours and routes are programmed again on the
 *     new device; traffic between nodes stops until every node runs the same
 *     VNI and port);
 *   - per other node with an InternalIP of vxlan_family (its VTEP): the permanent FDB
 *     entry "VTEP MAC -> VTEP address" (fdb_vxlan_mac: every node derives every MAC)
 *     and a permanent neighbour entry on the device for each of the node's InternalIPs
 *     (v4 and v6: the gateways of agent/desired.h's overlay routes) -> that MAC.
 * The module owns the device, so every permanent FDB entry on it is its own: it dumps
 * them, adds the missing ones and deletes the stale ones (a node gone or moved). The
 * neighbours it installed are remembered with their MAC: one is written only when it is
 * new or its MAC changed (a reconcile that changes nothing sends no RTM_NEWNEIGH), and
 * deleted when no other node has that
 * InternalIP any more (neighbours left by an earlier agent of a node removed while no
 * agent ran stay: no route uses them). The first time the device exists it asks for a reconcile, so the
 * routes module (agent_vxlan_ifindex) routes remote blocks and moved /32s through it.
 * Failures are one warning line each and are retried on the next reconcile.
 * With another cross_node (a reload switched away from vxlan, or the agent starts in
 * another mode after a vxlan run) the device of that name, if it is a VXLAN link, is
 * deleted with one warning: its FDB entries, neighbours and the routes through it go
 * with it (a link of another kind is left alone). Nothing else is done.
 */
#ifndef KVNET_AGENT_VXLAN_H
#define KVNET_AGENT_VXLAN_H

struct agent;
struct err;

/* The module (a struct agent_vxlan) for agent a; the module table's create. NULL with
 * e. */
void *agent_vxlan_new(struct agent *a, struct err *e);
/* Unsubscribe and free (a struct agent_vxlan); the device and entries stay. NULL is
 * ignored. */
void agent_vxlan_free(void *state);

/* The ifindex of the overlay device once it exists and is up, else 0 (also for NULL:
 * no module, another cross_node). */
int agent_vxlan_ifindex(const void *state);

#endif
