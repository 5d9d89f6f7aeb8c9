/* bgp — cross_node = bgp: keeps BIRD's configuration fragment ([bgp] config) equal to
 * what agent/birdconf.h makes of kvnet.conf and this node's IPAM blocks, and asks BIRD
 * to reload through its control socket ([bgp] socket) when the fragment changed.
 *
 * After every reconcile (AGENT_HOOK_RECONCILED) the fragment is computed; when it
 * differs from the file it is written atomically (temporary file, fsync, rename) and
 * BIRD is told `configure` (also once at start). The exchange runs on the agent's loop:
 * a non-blocking connect, the 0001 banner, `configure`, the reply parsed by
 * agent/birdctl.h, everything within AGENT_BGP_TIMEOUT_MS. A BIRD that is down, refuses,
 * answers garbage or an error is one warning line naming the socket and the reason, and
 * a retry after AGENT_BGP_RETRY_MS; the agent never waits for it. kvnet's routes do not
 * depend on BIRD: it only announces them.
 *
 * The router id is [bgp] router_id, else this node's IPv4 InternalIP (Node informer).
 * With another cross_node (a reload switched away from bgp, or a start after a bgp run)
 * a fragment of kvnet's (it begins with AGENT_BIRD_HEADER) that has protocols in it is
 * replaced by agent_bird_conf_none() and BIRD told `configure` once (no retry: a BIRD
 * that is down reads it when it starts): BIRD drops kvnet's kernel protocol (the routes
 * it installed) and BGP sessions (the peers withdraw this node's routes). A reload to
 * bgp writes the full fragment again. An absent file, or one not kvnet's, is left alone.
 */
#ifndef KVNET_AGENT_BGP_H
#define KVNET_AGENT_BGP_H

struct agent;
struct agent_bgp;
struct err;

#define AGENT_BGP_TIMEOUT_MS 3000 /* one control socket exchange, at most */
#define AGENT_BGP_RETRY_MS 5000	  /* after a failed reload or write */

/* The module (a struct agent_bgp) for agent a, registering its hook in every mode (a
 * reload may switch cross_node); the module table's create. NULL with e. */
void *agent_bgp_new(struct agent *a, struct err *e);
/* Close the control connection, drop the timers, free (a struct agent_bgp). NULL is
 * ignored. */
void agent_bgp_free(void *state);

#endif
