/* birdconf — BIRD 2's configuration fragment for cross_node = bgp, from kvnet's own
 * configuration and this node's IPAM blocks. Pure: no I/O, no clock.
 *
 * The fragment (included from bird.conf, which then holds no router id, device or kernel
 * protocol of its own) has, per address family that has a pool or a peer:
 *   - protocol static kvnet_blocks4/6: this node's blocks as unreachable routes (announced,
 *     never installed: the kernel protocol exports BGP routes only);
 *   - protocol kernel kvnet_kernel4/6: `learn`, importing only routes with
 *     krt_source = [network] route_protocol (kvnet's) at preference
 *     AGENT_BIRD_KERNEL_PREF (above BGP's 100: a migration target's /32 is its node's
 *     best route and announced at once, not only after the source withdrew its copy;
 *     at BIRD's default 10 for kernel routes it lost to the BGP route of the same /32
 *     while the source still announced it), exporting only routes learned
 *     from BGP and inside a pool, all at ONE metric ([bgp] kernel_metric). No filter
 *     sets krt_metric: with a metric taken from local preference a route whose
 *     preference changes is a new kernel route and the old copy stays behind;
 *   - filter kvnet_export4/6: the blocks; a host route kvnet put on a pod interface
 *     ("kv*") at [network] migration_metric (a migration target's) with
 *     migration_local_pref; another such host route outside this node's blocks (a
 *     borrowed or moved-in address) with local_pref; nothing else (routes via another
 *     node, /32s inside a block: the block covers them);
 *   - protocol bgp kvnet_peerN per peer: the family of the peer's address, `direct`
 *     (also for iBGP: peers share a segment with the node, a ToR or route reflector, so
 *     next hops are on-link), graceful restart when configured.
 */
#ifndef KVNET_AGENT_BIRDCONF_H
#define KVNET_AGENT_BIRDCONF_H

#include "agent/desired.h"
#include "conf/conf.h"
#include "lib/ip.h"

#include <stddef.h>

struct err;

#define AGENT_BIRD_KERNEL_PREF 200 /* preference of kvnet's routes learned from the kernel */

/* What the fragment is made of. */
struct agent_bird_in {
	const struct conf *c;		  /* [bgp], [network], [ipam] pools */
	struct ip_addr router_id;	  /* IPv4 router id (resolved by the caller) */
	const struct agent_block *blocks; /* this node's blocks (any order; node ignored) */
	unsigned n_blocks;		  /* their count */
};

/* The fragment for in into *out (malloc'd, NUL-terminated; free()) and *len. The same
 * input (blocks in any order, duplicates ignored) gives the same bytes. 0, or -EINVAL
 * (no IPv4 router id) / -ENOMEM with e. */
int agent_bird_conf(const struct agent_bird_in *in, char **out, size_t *len,
		    struct err *e);

/* The first bytes of every fragment kvnet writes (agent_bird_conf and
 * agent_bird_conf_none): how the agent recognises a file as its own. */
#define AGENT_BIRD_HEADER "# kvnet: BIRD 2 configuration fragment"

/* The fragment of a node whose cross_node is not bgp (NUL-terminated, static): the device
 * protocol only (BIRD refuses a configuration without any protocol), so BIRD's reconfigure
 * removes kvnet's kernel, static and BGP protocols (its kernel routes and BGP sessions
 * with them) and bird.conf's include still finds a file. */
const char *agent_bird_conf_none(void);

#endif
