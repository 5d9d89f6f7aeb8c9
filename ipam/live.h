/* ipam live — the API's view read from LIST pages, for ipamctl's checks: pods (namespace,
 * name, uid, node, finished, status.podIPs), VMIs and VMs into a struct ipam_live
 * (ipam/report.h), and IPAMHandles' creation times (a VM handle younger than the grace
 * period is not a leak). Pure: the caller fetches the pages (kube_list) and parses them;
 * these functions read one parsed page each.
 *
 * An item too long for the fixed-size fields, or without a namespace (pods, VMIs, VMs) or
 * a name and creationTimestamp (handles), is skipped: it cannot own an allocation.
 */
#ifndef KVNET_IPAM_LIVE_H
#define KVNET_IPAM_LIVE_H

#include "ipam/ipam.h"
#include "ipam/report.h"

#include <stdint.h>

struct err;
struct json_doc;

/* Add the pods of a LIST page to l: items is the token of its "items" array. A pod's
 * addresses are status.podIPs (at most IPAM_HANDLE_IPS_MAX, unparsable ones skipped),
 * else status.podIP; phase Succeeded or Failed means done. 0, -ENOMEM, or an item that is
 * no object (-EINVAL with e, "list pods: ..."). */
int ipam_live_pods_page(struct ipam_live *l, const struct json_doc *d, int items, struct err *e);
/* The same for VirtualMachineInstances and VirtualMachines (namespace, name, uid). */
int ipam_live_vmis_page(struct ipam_live *l, const struct json_doc *d, int items, struct err *e);
int ipam_live_vms_page(struct ipam_live *l, const struct json_doc *d, int items, struct err *e);

/* Creation time of one handle. */
struct ipam_htime {
	char id[IPAM_NAME_MAX + 1]; /* handle id (metadata.name) */
	int64_t t;		    /* metadata.creationTimestamp, seconds since the epoch;
				     * -1 when it is no RFC 3339 time */
};

/* Creation times of handles (empty for the file datastore, which keeps none). */
struct ipam_htimes {
	struct ipam_htime *v; /* times; owned */
	unsigned n, cap;      /* used / allocated */
};

void ipam_htimes_free(struct ipam_htimes *h);
/* Add the IPAMHandles of a LIST page to h. 0 or -ENOMEM. */
int ipam_htimes_page(struct ipam_htimes *h, const struct json_doc *d, int items, struct err *e);
/* Creation time of handle id (user is a struct ipam_htimes), -1 when unknown (counts as
 * old): the shape of ipam_check_opts.handle_time. */
int64_t ipam_htimes_get(void *user, const char *id);

/* Seconds since the epoch of an RFC 3339 time "YYYY-MM-DDTHH:MM:SS..." (UTC; what follows
 * the seconds is ignored, as the API server writes "Z"), or -1. */
int64_t ipam_rfc3339(const char *s);

#endif
