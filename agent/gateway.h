/* gateway — the host side of a routed guest's first hop, for what the CNI plugin alone
 * cannot keep right:
 *
 *   - the gateway address: cni/routed.c puts 169.254.1.1/32 (scope host) on every host
 *     veth so the node answers ARP for a guest's gateway without a route to it (a
 *     KubeVirt bridge-bound guest ARPs for it itself). Endpoints made by an earlier
 *     release lack it: this module adds it to every IPv4 endpoint's veth when the
 *     endpoint is added or loaded at start and after every reconcile ("already there"
 *     is fine; nothing else is touched, and the address's local route is proto kernel,
 *     outside the route reconcile).
 *   - neighbour entries from an announcement: agent_gw_announced() gives the announced
 *     guest MAC to every address of the endpoint on its veth (NUD_REACHABLE, replace),
 *     so the first packet forwarded after a migration's cut-over does not wait for ARP
 *     or neighbour discovery (the kernel learns nothing from a RARP, an unsolicited NA
 *     or, with the route already local, a gratuitous ARP).
 */
#ifndef KVNET_AGENT_GATEWAY_H
#define KVNET_AGENT_GATEWAY_H

#include <stdint.h>

struct agent;
struct agent_ep;
struct err;
struct nl_sock;

/* The routed mode's IPv4 gateway; the same as cni/netconf.h's CNI_GW4 (a unit test
 * checks), spelled here because agent/ does not include cni/. */
#define AGENT_GW4 "169.254.1.1"

/* The module (agent/modules.c; the state is a struct agent_gw): subscribes to endpoint
 * added and reconciled. NULL with e on failure (out of memory). */
void *agent_gw_new(struct agent *a, struct err *e);
/* Unsubscribe and free. NULL is ignored. */
void agent_gw_free(void *g);

/* Put AGENT_GW4/32 scope host on ep's veth if ep has an IPv4 address and a resolved
 * ifindex. 0 (added, already there, or nothing to do) or -errno with e. */
int agent_gw_addr_ensure(struct nl_sock *s, const struct agent_ep *ep, struct err *e);

/* An announcement for ep arrived on its veth carrying mac: ip -> mac (NUD_REACHABLE,
 * replace) on ep's veth for each of ep's addresses. 0 or the first -errno with e (the
 * other addresses are still tried). */
int agent_gw_neigh(struct nl_sock *s, const struct agent_ep *ep, const uint8_t mac[6],
		   struct err *e);

/* agent_gw_neigh on the agent's rtnetlink socket; a failure is logged (a warning: the
 * first packet then waits for ARP/ND, nothing breaks). For the announcement path. */
void agent_gw_announced(struct agent *a, const struct agent_ep *ep, const uint8_t mac[6]);

#endif
