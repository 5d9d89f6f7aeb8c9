/* ipam kubernetes datastore — records as cluster-scoped custom resources in kvnet.io/v1.
 *
 *   pool   -> IPPool      /apis/kvnet.io/v1/ippools/NAME
 *   block  -> IPAMBlock   /apis/kvnet.io/v1/ipamblocks/NAME
 *   handle -> IPAMHandle  /apis/kvnet.io/v1/ipamhandles/NAME
 *   config -> IPAMConfig  /apis/kvnet.io/v1/ipamconfigs/default   (the singleton)
 *
 * Each object is {"apiVersion":"kvnet.io/v1","kind":K,"metadata":{"name":NAME},
 * "spec":RECORD} with RECORD the JSON of ipam.h; the record's version is the object's
 * metadata.resourceVersion (CRD manifests: dist/crds/).
 *
 *   begin   flock the node-local lock file when one is set (ipam_ds_kube_lock): the
 *           CNI calls of one node then take turns instead of colliding on their node's
 *           block and retrying; across nodes the API server's CAS is the arbiter
 *   load    LIST ippools, ipamblocks, ipamhandles, ipamconfigs, IPAM_DS_KUBE_PAGE objects
 *           per page (following metadata.continue); an update scoped to one handle GETs
 *           that handle and ipamconfigs/default instead of LISTing them (404 = it does
 *           not exist). Each spec is parsed strictly and kept in
 *           canonical form (ipam_rec_write), so the diff sees only real changes whatever
 *           key order or spacing the server returns.
 *   commit  one compare-and-swap per change, in the order ipam_state_diff() gives:
 *           create = POST (409 AlreadyExists -> -ESTALE), update = PUT with
 *           metadata.resourceVersion = the expected version (409 Conflict, or 404 because
 *           it was deleted meanwhile -> -ESTALE), delete = DELETE with
 *           preconditions.resourceVersion (409 -> -ESTALE, 404 -> -ESTALE).
 *           There is no transaction across objects. When a write fails (conflict or
 *           error) after earlier writes of the same commit succeeded, those are undone,
 *           newest first, each by compare-and-swap on the version just written: an
 *           update is PUT back as loaded, a create DELETEd, a delete re-created. So two
 *           racing allocations for one handle on two nodes leave no stray allocation.
 *           An undo that conflicts (someone wrote on top in between) or cannot reach
 *           the server is left as is and named in the error; that is the worst case of
 *           ds.h: an allocation whose handle record is missing, for GC to repair.
 *           (Relies on ds.c's loop: commit follows the load of the same update, whose
 *           state is still alive.)
 *
 * Errors: the API server unreachable (connection refused, timeouts, resets), answering
 * 5xx or 429 is -EAGAIN ("ipam kubernetes datastore: list ipamblocks: API server
 * unavailable: ..."): the CNI plugin maps -EAGAIN to CNI error code 11 (try again later).
 * 401/403 keep -EACCES/-EPERM, a stored object whose spec is not a valid record is
 * -EUCLEAN naming it, other API answers keep the client's errno (kube/client.h).
 */
#ifndef KVNET_IPAM_DS_KUBE_H
#define KVNET_IPAM_DS_KUBE_H

#include "ipam/ds.h"

struct err;
struct kube_client;

#define IPAM_DS_KUBE_PAGE 500 /* objects per LIST page */

struct ipam_ds_kube {
	struct kube_client *c;	     /* the API client (not owned; one thread at a time) */
	unsigned page;		     /* LIST page size; 0 = IPAM_DS_KUBE_PAGE */
	const struct ipam_state *st; /* the state the last load filled (not owned): its
				      * loaded records are what a failed commit restores */
	int lockfd;		     /* node-local lock file, or -1 (none) */
};

/* Set up k over client c (which must outlive k). No I/O. */
void ipam_ds_kube_init(struct ipam_ds_kube *k, struct kube_client *c);
/* Serialise this node's updates with flock on path (created 0600 if missing; its
 * directory must exist). 0 or -errno with e (k then works without the lock). */
int ipam_ds_kube_lock(struct ipam_ds_kube *k, const char *path, struct err *e);
/* Release what ipam_ds_kube_lock() opened. No I/O to the API server. */
void ipam_ds_kube_fini(struct ipam_ds_kube *k);
/* The datastore view of k (k must outlive it). */
struct ipam_ds ipam_ds_kube(struct ipam_ds_kube *k);

/* The effective IPAMConfig without a full load: GET ipamconfigs/default (one API call;
 * 404 = no record = the defaults). out is always filled (defaults on error). 0, -EAGAIN
 * when the API server is unavailable, -EUCLEAN for a record that is not valid. */
int ipam_ds_kube_config(struct ipam_ds_kube *k, struct ipam_config *out, struct err *e);

/* Load one LIST answer body of records of `kind` into st (what load does per page; no
 * I/O, exposed for the fuzzer): every item needs metadata.name, metadata.resourceVersion
 * and a spec that is a valid record (-EUCLEAN naming the object otherwise); the answer
 * must be JSON with an items array or null (-EINVAL / -EPROTO). cont (cont_cap bytes)
 * gets metadata.continue, "" on the last page. */
int ipam_ds_kube_load_page(struct ipam_state *st, enum ipam_kind kind, const char *body, size_t len,
			   char *cont, size_t cont_cap, struct err *e);

/* Load one GET answer body (an object named name) of `kind` into st, with the same
 * checks as a LIST item; an answer naming another object is -EPROTO. No I/O. */
int ipam_ds_kube_load_obj(struct ipam_state *st, enum ipam_kind kind, const char *name,
			  const char *body, size_t len, struct err *e);

#endif
