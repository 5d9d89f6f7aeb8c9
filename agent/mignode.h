/* mignode — the migration machines of one node (agent/migrate.h), wired into the agent.
 *
 * One machine per local VM endpoint (an agent endpoint whose `vm` is set), created when
 * the agent adds the endpoint and freed when the table says MIG_A_FORGET. Events come
 * from the agent's hooks and from one capture socket:
 *
 *   endpoint added (target)         -> TARGET_POD (the CNI ADD waits on a gate until armed)
 *   endpoint removed                -> POD_DELETED
 *   pod object: ready annotation    -> READY_ANNOTATION
 *               phase Succeeded/Failed, deletionTimestamp -> POD_ENDED; deleted -> POD_DELETED
 *   VMIM object reaching Succeeded  -> VMIM_SUCCEEDED   (a target only for its own VMIM,
 *               reaching Failed, or deleted unfinished -> VMIM_FAILED   label migrationJobUID)
 *   IPAMBlock object: the active owner of one of the endpoint's addresses
 *                                   -> OWNER_LOCAL / OWNER_REMOTE (mig_owner_event)
 *   capture socket (AF_PACKET, every interface of the node's namespace): an announcement
 *               whose ifindex is an ARMED endpoint's veth and whose IP/MAC is the VM's
 *                                   -> ANNOUNCE, carrying the frame's kernel timestamp
 *   convergence timer               -> TIMER
 *
 * Actions: routes through the agent's overrides (ROUTE_MIGRATE = agent_override_apply,
 * one acked RTM_NEWROUTE per address, which ends the announcement-to-route latency;
 * ROUTE_NORMAL = the endpoint stops being a dark target and its override is dropped, so
 * the agent's own rule routes it at route_metric; ROUTE_DEL = override NONE for a target,
 * dropped override for a source, whose /32 the agent's direct mode sends to the new node),
 * owners by compare-and-swap through the datastore, timers on the agent's loop.
 *
 * The owner swap never blocks the loop: the action only issues it to a worker thread
 * (agent/swapq.h) and the step ends, so the cut-over's data plane (routes, neighbour
 * entries, the peer fan-out, the conntrack chunks that arrive next) is not held behind an
 * API round trip; the answer comes back on the loop and is fed to the machine as
 * SWAP_DONE / SWAP_FAILED (only the answer to its latest owner action; older ones are
 * logged and dropped). With the kubernetes datastore the loop first prepares a fast
 * path: the blocks and the handle from the informers' copies (kept here from the object
 * hooks), so the worker writes only the changed blocks, each a PUT under its
 * resourceVersion; anything missing or a conflict falls back to the full update
 * (ipam_ds_update: LIST, swap, CAS). A swap that fails because the datastore is
 * unreachable is retried with backoff (100 ms .. 5 s) as long as the machine's state
 * still wants it; one that fails for good (the slot is someone else's, the addresses
 * are gone) is SWAP_FAILED, which the table answers (a claiming target gives the
 * traffic back). Nothing of a swap in flight survives a restart: the API decides.
 *
 * Metrics in the agent's registry:
 *   kvnet_migrations_total{outcome="succeeded|failed|aborted"}         counter
 *   kvnet_migration_announce_to_route_seconds                           histogram
 *       (kernel timestamp of the frame -> ack of RTM_NEWROUTE; buckets 25 us .. 100 ms)
 *   kvnet_migration_endpoints{state="base|target|live|timewait|source|retired"}  gauge
 *   kvnet_migration_announcements_total{match="armed|ignored"}          counter
 *   kvnet_migration_owner_swaps_total{path="fast|full"}                 counter
 *   kvnet_migration_cutover_round_seconds   histogram: event-loop time of a step that
 *       moves the IPAM owner (the target's cut-over round: routes, peer fan-out, owner)
 *   kvnet_migration_owner_loop_seconds      histogram: the owner action's share of it
 *
 * Log lines: see agent/migrate.h for the field names (stable; the lab parses them), and:
 *   the step that issues an owner action: owner=issued owner_us= (its loop time)
 *       dataplane_us= (step start -> routes in and the peers told) round_us= (the step)
 *   msg="migration owner answered" (a TAKE's answer, before the table sees it) and the
 *       cell lines of SWAP_*: owner=swapped|unchanged|failed action= attempts=
 *       path=fast|full swap_us= (issued -> answer on the loop) cas_us= (the worker's
 *       time) queue_us= (waiting behind other jobs) [error=]
 *   msg="migration owner swapped" (a RETURN's or RECLAIM's answer),
 *   msg="migration owner answer dropped" (machine gone or superseded).
 */
#ifndef KVNET_AGENT_MIGNODE_H
#define KVNET_AGENT_MIGNODE_H

#include "agent/migrate.h"

#include <stdbool.h>

struct agent;
struct ann_event;
struct err;
struct ipam_ds;
struct mignode;

/* Gate bit (agent_ep_gate_set) held while a target endpoint is not armed yet. */
#define MIGNODE_GATE_ARMED 0x1u

/* Create the node's migration code for agent a and install its hooks (agent_set_hooks).
 * ds: the datastore for owner CAS (not owned, must outlive it), or NULL for the
 * kubernetes datastore over the agent's API client. Opens the capture socket when
 * [migration] announce_detection is on. NULL with e on failure (capture needs
 * CAP_NET_RAW, metric registration). Call before agent_start(). */
struct mignode *mignode_new(struct agent *a, struct ipam_ds *ds, struct err *e);

/* Close the capture socket, cancel timers, free every machine (routes stay). NULL is
 * ignored. */
void mignode_free(struct mignode *m);

/* Feed one announcement as if the capture socket had seen it (the capture path calls
 * this too). Returns true when it matched an armed endpoint. */
bool mignode_announce(struct mignode *m, const struct ann_event *ev);

/* Machines in state s now. */
unsigned mignode_count(const struct mignode *m, enum mig_state s);

#endif
