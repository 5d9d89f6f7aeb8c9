/* blockobj — an IPAMBlock object from an informer, as IPAM state.
 *
 * Several modules (routes, bgp, flows, peer, mignode) read the blocks their informer
 * holds: the object's JSON is parsed, its spec loaded as one IPAM_BLOCK record with the
 * object's name and resourceVersion. One place does that, with one error message.
 */
#ifndef KVNET_AGENT_BLOCKOBJ_H
#define KVNET_AGENT_BLOCKOBJ_H

struct err;
struct ipam_state;
struct kube_obj;

/* Initialise st and load o (an IPAMBlock object) into it. 0, or -errno with e (may be
 * NULL) naming the block and why: malformed JSON, no spec, a spec ipam rejects. st is
 * always safe to pass to ipam_state_free(), even on failure. */
int agent_block_load(const struct kube_obj *o, struct ipam_state *st, struct err *e);

#endif
