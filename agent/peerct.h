/* peerct — the conntrack hand-over of a migrating VM over the agent-to-agent path
 * (issue #11): agent/cthand.h's calls, carried by agent/peer.h's signed datagrams
 * (agent/peermsg.h type CT, one wire-form chunk each).
 *
 *   source agent                                     target agent
 *   ------------                                     ------------
 *   VMIM TargetReady/Running, the VMI's migrationState says source = this node,
 *   target = N, and the source pod is a local endpoint:
 *     tracker on (conntrack events, node namespace), dump the VM's entries
 *     round 1: every entry, in chunks  --- CT --->   the VMI (by uid) is migrating to
 *     every TOPUP_MS: the tracker's delta ---->      THIS node from THAT sender node (its
 *       (lost events: a full dump again)             own informers: VMI migrationState
 *   the cut-over: the target's claim (peer.h), or      uid/sourceNode/targetNode, not
 *     the VMI saying so (nodeName = N or               failed; the VMIM of that uid for
 *     completed; not targetNodeDomainDetected,         that VMI, not failed), its target
 *     which a merge patch may leave from an
 *     earlier migration):
 *     the delta, flagged CUTOVER, with the             pod a local endpoint: cthand_apply
 *     claim's event time    ---------------->          for that endpoint's addresses
 *     REPEAT_MS later: every entry again (repairs lost datagrams; applying is idempotent)
 *     FINAL_MS later: the last delta, then the tracker closes
 *   VMIM or migrationState failed, the VMI or source endpoint gone, MAX_MS: closed.
 *
 * Conntrack of a routed pod's traffic lives in the node's namespace (the traffic is
 * forwarded there; a DNAT to a Service address on the node is a node entry too), which
 * is the agent's: nothing is read in the pod's. Nothing is ever deleted on the source
 * (the VM can come back). Bounds: CT_WIRE_MAX entries a round (more is cut and said),
 * PEERCT_SESS_MAX migrations at once, PEERCT_MAX_MS a session.
 *
 * Off unless the peer path is on and [agent] conntrack_handover is true (read at each
 * use, so a reload turns it on or off; the target then refuses chunks, reason=off).
 *
 * Metrics:
 *   kvnet_ct_handover_entries_total{result="sent|applied|failed|foreign"}
 *   kvnet_ct_handover_chunks_total{result="sent|send_error|applied|refused"}
 *   kvnet_ct_handover_cutover_to_applied_seconds   target: the announcement (the
 *       CUTOVER round's event time, the target's own clock) to that chunk applied
 * Log lines (logfmt):
 *   msg="conntrack hand-over started" uid= vmi=NS/NAME to= ip=
 *   msg="conntrack hand-over sent" uid= vmi= to= round= why=initial|topup|cutover|repeat|
 *       resync|final entries= chunks= errors= [truncated=1]
 *   msg="conntrack hand-over ended" uid= vmi= why= rounds= entries=
 *   msg="conntrack hand-over applied" uid= vmi= from= round= cutover=0|1 chunk= of=
 *       entries= applied= failed= foreign= apply_us= (checks + ctnetlink, this chunk)
 *       [cutover_to_applied_us=] [error=]
 *   msg="conntrack hand-over refused" reason=off|unknown_vmi|not_target|no_endpoint|
 *       garbage from= detail=  (at most 20 per 10 s, all counted)
 */
#ifndef KVNET_AGENT_PEERCT_H
#define KVNET_AGENT_PEERCT_H

struct agent;
struct err;

#define PEERCT_SESS_MAX 16	  /* migrations handed over at once */
#define PEERCT_TOPUP_MS 500	  /* delta before the cut-over this often */
#define PEERCT_REPEAT_MS 300	  /* the full repeat after the cut-over */
#define PEERCT_FINAL_MS 1500	  /* the last delta after it, then closed */
#define PEERCT_MAX_MS (15 * 60 * 1000) /* longest a session lives */

/* The module (module table name "peerct"; subscribes to the peer module, which must be
 * created before it). Returns its state (struct agent_peerct *), or NULL with e. */
void *agent_peerct_new(struct agent *a, struct err *e);

/* Close every session (trackers, no entry touched) and free. NULL is ignored. */
void agent_peerct_free(void *state);

#endif
