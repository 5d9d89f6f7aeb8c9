/* admit — whether the agent accepts a registration: pure checks of a CNI add against
 * what the kernel and IPAM say (the caller gathers those; no I/O here).
 *
 * Accepted only when:
 *   - the host interface exists, is a veth, and has kvnet's name: "kv" + 11 lower-case
 *     hex digits (the CNI plugin's host_ifname); so never lo, an uplink, a bridge;
 *   - every address lies inside one of the configured pools ([ipam] ipv4_pools,
 *     ipv6_pools) of its family;
 *   - where IPAM's state could be read (the file datastore, read by the caller), every
 *     address is allocated, and to the endpoint's handle when the add names one.
 * The kubernetes datastore's records are not consulted here: the informers' copies can
 * lag the plugin's own allocation by a watch event, and a GET would block the loop.
 */
#ifndef KVNET_AGENT_ADMIT_H
#define KVNET_AGENT_ADMIT_H

#include "agent/desired.h"

#include <stdbool.h>
#include <stddef.h>

struct conf;
struct ipam_state;
struct link_info;

/* True when name is a kvnet host veth name (see above). */
bool agent_admit_veth_name(const char *name);

/* Check ep against the configuration c, the host interface li (NULL: it does not
 * exist) and IPAM's state st (NULL: not readable). True when accepted; else false with
 * why (cap bytes) saying which check failed ("veth lo: not a kvnet host veth (kind
 * \"\", name not kv + 11 hex digits)", "198.51.100.1: outside every configured pool"). */
bool agent_admit(const struct conf *c, const struct agent_ep *ep, const struct link_info *li,
		 const struct ipam_state *st, char *why, size_t cap);

#endif
