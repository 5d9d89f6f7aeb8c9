/* gc — the CNI GC command (spec 1.1): what this node's runtime no longer lists goes.
 *   ordinary pods  release each handle of this network allocated on this node whose
 *                  (containerID, ifname) is not in cni.dev/valid-attachments
 *   VM handles     never released for a missing attachment while the VM exists; owner
 *                  slots of this node whose attachment is not listed are emptied (with a
 *                  precondition on the uid), and a handle is released when both slots are
 *                  empty and its VM (standalone VMI: the VMI) is gone, being deleted or
 *                  replaced (one GET each, kubernetes datastore)
 * Torn commits of every handle are repaired first (ipam_handle_mend). */
#ifndef KVNET_CNI_GC_H
#define KVNET_CNI_GC_H

#include "cni/netconf.h"

/* GC state: VM handles whose VM (or standalone VMI) is gone, found before the update. */
struct cni_gc {
	char (*gone)[IPAM_NAME_MAX + 1]; /* handle ids; malloc'd */
	unsigned n_gone, cap_gone;	 /* used / allocated */
	unsigned cleared;		 /* owner slots emptied */
	unsigned mended;		 /* torn-record repairs (ipam_handle_mend) */
};

struct ipam_state;
struct err;

/* The GC decision as one IPAM update (an ipam_ds_fn; arg = struct cni_ipam whose r gives
 * the network, node and attachments, and whose gc lists the VM handles found gone):
 * what cni_gc() runs inside the datastore's update. Pure over st; c->released and
 * gc->cleared / gc->mended count what it did. */
int cni_gc_op(struct ipam_state *st, void *arg, struct err *e);

/* Run GC for r (cniVersion 1.1.0, attachments given). 0, or -1 with f. */
int cni_gc(struct cni_req *r, struct cni_fail *f);

#endif
