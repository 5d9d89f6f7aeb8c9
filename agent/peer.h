/* peer — the direct agent-to-agent path of the migration cut-over (issue #11; the VXLAN
 * mode of issue #15 may reuse it): "addresses X live on node N at address A now".
 *
 *   target agent: announcement -> its /32 + /128 in (mignode) -> agent_peer_tell()
 *                 -> one signed UDP datagram (agent/peermsg.h) to every other node's
 *                 InternalIP, [agent] peer_port
 *   other agents: receive -> size, HMAC ([agent] peer_key_file), decode, sender is a
 *                 known node sending from its own InternalIP, not this node, replay
 *                 window -> per address: the route X/32 (/128) via node N now
 *                 (agent_override_apply VIA N, one RTM_NEWROUTE) -- the source node too,
 *                 so what still reaches it is forwarded at once
 *
 * The API stays the source of truth. A lost message changes only speed: the owner
 * change in the IPAMBlocks moves the routes as before. A forged, replayed, oversized or
 * garbage message changes nothing (a rate-limited warning naming what and why, and
 * kvnet_peer_messages_rejected_total{reason}). An address is taken only when the
 * datastore knows it (an allocated IPAM address) and its owner is not already node N;
 * an address of a local endpoint only when it is the source of that very migration
 * (its VMI's status.migrationState has migrationUid U and targetNode N and has not
 * failed, and VMIM U of that VMI exists and has not failed): never is a VM still local
 * and active routed away. A peer override is dropped as soon as the datastore's owner of
 * the address changes (whichever way: the API has spoken) or after PEER_HOLD_MS, and is
 * never persisted: a restarted agent trusts only the API, and takes no message whose
 * event time is older than its own start.
 *
 * Replay protection: HMAC over everything, then per sender node a boot id (the sender
 * agent's start time; only a newer one restarts its sequence) and a 64-wide sliding
 * window of sequence numbers, and the event time within PEER_WINDOW_NS of this clock.
 *
 * Node addresses come from the Node informer (InternalIPs), so the path needs the
 * kubernetes datastore; with the file datastore, a 0 peer_port or no key file it is off
 * (said once at start). The socket is bound to this node's InternalIP (one per family)
 * once its Node object is known.
 *
 * Metrics:
 *   kvnet_peer_messages_sent_total{result="ok|error"}      datagrams sent
 *   kvnet_peer_messages_received_total                     datagrams read
 *   kvnet_peer_messages_rejected_total{reason}             size, auth, garbage, self,
 *       unknown_node, source, stale, replay (whole message); local, unknown_addr
 *       (an address of an accepted message refused)
 *   kvnet_peer_overrides                                   peer overrides held (gauge)
 *   kvnet_peer_overrides_dropped_total{why="api|expired|replaced|retracted"}
 *   kvnet_peer_announce_to_route_seconds                   the message's event time (the
 *       target's announcement, its clock) to this node's route ack (histogram)
 *
 * Sockets get 4 MiB buffers (SO_RCVBUFFORCE / SO_SNDBUFFORCE where allowed): a
 * conntrack hand-over sends a few hundred datagrams back to back.
 *
 * A RETRACT (the target's claim withdrawn: its owner CAS failed, or the migration ended
 * first) from the node of a held override drops it at once ("retracted"); the reconcile
 * that follows routes the address by the API. It passes the same checks as a CLAIM.
 *
 * Log lines (logfmt): msg="peer claim sent" (and "peer retract sent") seq= peers= ip= uid=
 * sent_ts=; msg="peer retract accepted" node= seq= uid= ip= dropped= handle_us=;
 * msg="peer claim accepted" node= seq= uid= ip= applied= announce_ts= route_ts=
 * latency_us= handle_us= (handle_us: datagram read -> first route ack on this node);
 * msg="peer message rejected" reason= from= detail= (at most 20 per 10 s, all counted);
 * msg="peer override dropped" ip= node= why=.
 *
 * Known limits: the key is one per cluster, so any node holding it can speak for any
 * other (the sender must still send from the InternalIP of the node it names); a VM
 * that comes back to a node within [migration] convergence_seconds, or whose source pod
 * ends before the owner swap lands, has its peer route cleared by the migration code
 * (its TIMEWAIT timer / FORGET clear every override of the VM's addresses), and routes
 * by the API from then on; a sender whose clock steps back across a restart has its
 * messages refused (older boot id) until the receivers restart: speed only.
 */
#ifndef KVNET_AGENT_PEER_H
#define KVNET_AGENT_PEER_H

#include "lib/ip.h"

#include <stdbool.h>
#include <stdint.h>

struct agent;
struct err;
struct agent_peer;

#define PEER_HOLD_MS 15000			 /* longest a peer override is kept */
#define PEER_WINDOW_NS (10ull * 1000000000ull) /* accepted clock difference */

/* The module for agent a (module table name "peer"; registers its hooks). Reads the key
 * file when the path is on. NULL with e on failure (a key file that exists but cannot
 * be read or is too short or long, metric registration). */
struct agent_peer *agent_peer_new(struct agent *a, struct err *e);

/* Close the sockets, cancel the timer, forget the held overrides (routes stay as they
 * are: the next reconcile goes by the API). NULL is ignored. */
void agent_peer_free(struct agent_peer *p);

/* Tell every other node's agent that addresses ips[0..n) (at most PEERMSG_ADDRS_MAX are
 * sent) live on this node now, for migration uid ("" or NULL: none), event time
 * event_ns (unix ns: the announcement's kernel timestamp). Call after the local routes
 * are in. Best effort: failures are logged and counted, never returned to the caller's
 * state machine. 0, or -ENOTCONN when the path is off (nothing sent), or the first
 * sendto's -errno (the other peers were still tried). */
int agent_peer_tell(struct agent *a, const struct ip_addr *ips, unsigned n, const char *uid,
		    uint64_t event_ns);

/* Withdraw this node's claim of ips[0..n) (at most PEERMSG_ADDRS_MAX) for migration uid:
 * the target's owner compare-and-swap failed, or its migration ended before the swap
 * landed. Every other agent drops the overrides it set from this node's claims of those
 * addresses and routes them by the API again at once (not PEER_HOLD_MS later). Best
 * effort like agent_peer_tell (a lost retraction leaves the override until the API's
 * owner changes or PEER_HOLD_MS). 0, -ENOTCONN (path off), -EINVAL, or sendto's -errno. */
int agent_peer_retract(struct agent *a, const struct ip_addr *ips, unsigned n,
		       const char *uid);

/* ---- other message types (agent/peerct.h: the conntrack hand-over) -------------------
 * peer.c owns the sockets, the key and the replay state; a module that speaks another
 * message type fills a struct peermsg and lets peer.c sign and send it, and is handed
 * the messages of its type that passed size, HMAC, decoding, the sender check (a known
 * node sending from its own InternalIP, not this node) and the replay window. What the
 * message may change is for that module to judge. */
struct peermsg;

/* Called for an authenticated, fresh message of type PEERMSG_T_CT (m->node: the sender,
 * verified as above). */
typedef void (*agent_peer_ct_fn)(void *user, const struct peermsg *m);
/* Called for every authenticated, fresh CLAIM (the cut-over of migration m->uid to node
 * m->node, m->ts_ns the announcement's time), after peer.c has taken it. */
typedef void (*agent_peer_claim_fn)(void *user, const struct peermsg *m);

/* Subscribe (one subscriber: a second call replaces it; NULLs unsubscribe). 0, or
 * -ENOTCONN when the peer module does not exist. */
int agent_peer_listen(struct agent *a, agent_peer_ct_fn ct, agent_peer_claim_fn claim,
		      void *user);

/* True when the path is on (port, key and datastore allow it; known at creation). */
bool agent_peer_on(struct agent *a);

/* Fill m's sender fields (node, node addresses) for a message to send, so the caller
 * can size a CT payload (peermsg_ct_room). 0, or -ENOTCONN when the path is off or this
 * node's address is not known yet. */
int agent_peer_prepare(struct agent *a, struct peermsg *m);

/* Sign and send m (prepared; its type and type fields set by the caller; boot, sequence
 * and, when 0, the event time are filled here) to node `to`'s agent. 0, -ENOTCONN (path
 * off, unknown node or no address of a family this node has), -EINVAL (does not
 * encode: e says why) or sendto's -errno (-EAGAIN: the socket buffer is full). */
int agent_peer_send(struct agent *a, const char *to, struct peermsg *m, struct err *e);

#endif
