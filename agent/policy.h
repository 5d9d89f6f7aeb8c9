/* policy — the agent module that enforces Kubernetes NetworkPolicy on this node's
 * endpoints with nf_tables ([agent] network_policy enabled, kubernetes datastore).
 *
 *   informers: NetworkPolicies, namespaces, every pod of the cluster, VMIs
 *   on any relevant event (coalesced), every reconcile of the hub, and when an
 *   endpoint comes or goes:
 *       world (policy/) ── pol_compile(this node's endpoints, by host veth)
 *             ── pnft_build (agent/polnft.h: the desired table inet kvnet)
 *             ── nft_state_load (what the kernel holds) ── pnft_diff
 *             ── one atomic nft_commit of only the difference
 *
 * Fail closed: the table's base chains drop every packet of a kvnet veth ("kv*") that
 * has no element in the endpoint maps yet, and an endpoint's element is added in the
 * same batch as its chains. A CNI ADD's "programmed" answer is held (gate
 * AGENT_POLICY_GATE) until that batch is in the kernel; an endpoint whose pod the
 * informers do not know yet stays dropped and gated. With [cni] policy_timeout_action
 * continue the catch-all accepts instead (fail open), which is logged at start.
 *
 * Restart: nothing is written before every informer has synced; then the table in the
 * kernel is adopted as it is (rules are recognised by their user data) and only what
 * differs is changed, so the rules stay in force through a restart or a crash. The
 * table is left in place when the agent stops.
 */
#ifndef KVNET_AGENT_POLICY_H
#define KVNET_AGENT_POLICY_H

struct agent;
struct err;
struct agent_policy;

/* Gate bit held on an endpoint until its policy is in the kernel. */
#define AGENT_POLICY_GATE 0x2u

/* The module for agent a: registers its informers, hooks and metrics when
 * [agent] network_policy is enabled with the kubernetes datastore (else it is inert).
 * NULL with e on failure (out of memory, no netfilter netlink socket). */
struct agent_policy *agent_policy_new(struct agent *a, struct err *e);
/* Unregister and free (the table stays in the kernel). NULL is ignored. */
void agent_policy_free(struct agent_policy *p);

#endif
