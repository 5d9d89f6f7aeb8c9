/* mnpol — the agent module that enforces MultiNetworkPolicy (k8s.cni.cncf.io/v1beta1) on
 * the access ports of this node's L2 bridges, in table bridge kvnet-l2 (agent/mnpnft.h).
 * Enabled with [agent] network_policy and the kubernetes datastore (else inert).
 *
 *   informers: MultiNetworkPolicies, namespaces, every pod, VMIs, this node's pods
 *   ports: the links of this node enslaved to a kvnet L2 bridge (kvl-*) whose alias
 *          names the VM (l2_alias_parse: pod uid, MAC, addresses)
 *   port → pod (this node's pods, by uid) → its network-status entry of that MAC
 *          (kube_net_status_find) → the NAD "NS/NAD" it is attached through
 *   per NAD: pol_world_net(world, NAD) ── pol_compile(that NAD's ports)
 *   all of them ── mnft_build ── mnft_matches(kernel) ? nothing
 *                                : one atomic batch (delete + create the table)
 *   a node without any kvnet L2 bridge has no table (deleted when the last one goes)
 *
 * On any relevant informer event (coalesced), after every reconcile of the hub, and
 * every MNPOL_PORT_POLL_MS while a port is dropped for want of its pod or its
 * network-status entry (an L2 port does not register with the agent: it is found in
 * the kernel).
 *
 * Fail closed: the table's base chains drop every frame of a kvnet port ("kv*", not the
 * trunk side) that has no element in its port maps, and a port's element comes in the
 * same batch as its chains; a port whose pod, network-status entry or NAD is not known
 * stays dropped (kvnet_mnpol_ports{state="dropped"}). [cni] policy_timeout_action does
 * not open L2 ports. The live-migration gate of agent/l2.c (tc gates on the port) is
 * independent: this module never opens a port the gate holds closed, and an accept
 * here does not pass a frame the gate drops.
 *
 * Restart: nothing is written before every informer has synced; a table that equals
 * the desired one (rules recognised by their user data) is adopted untouched, so the
 * rules stay in force through a restart. The table is left in place when the agent
 * stops.
 */
#ifndef KVNET_AGENT_MNPOL_H
#define KVNET_AGENT_MNPOL_H

struct agent;
struct err;

/* The module for agent a (a module table entry's new): registers informers, hooks and
 * metrics when enabled. NULL with e on failure (out of memory, no netfilter socket). */
void *agent_mnpol_new(struct agent *a, struct err *e);
/* Unregister and free (the table stays in the kernel). NULL is ignored. */
void agent_mnpol_free(void *state);

#endif
