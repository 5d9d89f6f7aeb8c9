/* ipam macs — which allocation holds which MAC on which network. A MAC reserved for a VM
 * (ipamctl reserve/import) belongs to one VM per network: the inventory refuses a second
 * one (ipam/inventory.h), and check reports one that got in anyway (DuplicateMAC,
 * ipam/report.h: two reserves racing on different kubernetes objects). Pure: no I/O.
 *
 * MACs compare case-insensitively. The network of an allocation is the one its handle was
 * made with (ipam_handle_vm for a VM, ipam_handle_pod for an ordinary pod).
 */
#ifndef KVNET_IPAM_MACS_H
#define KVNET_IPAM_MACS_H

#include "ipam/ipam.h"

#include <stdbool.h>
#include <stddef.h>

/* One allocation with a MAC. */
struct ipam_mac_ref {
	const struct ipam_attrs *a; /* the allocation (in the state indexed) */
	struct ip_addr ip;	    /* its address */
};

/* Every allocation of a state that has a MAC, sorted by MAC, then by address (v4 first). */
struct ipam_macs {
	struct ipam_mac_ref *v; /* entries; owned */
	unsigned n;		/* entries used */
};

/* Index the allocations of st into m (valid while st is unchanged). 0 or -ENOMEM. */
int ipam_macs_index(struct ipam_macs *m, const struct ipam_state *st);
void ipam_macs_free(struct ipam_macs *m);

/* True when allocation a is on network net: its handle is the one net gives its VM (or,
 * without a VM name, its container). */
bool ipam_alloc_on_network(const struct ipam_attrs *a, const char *net);
/* The network of allocation a, from its handle ("<net>.vmi.<ns>.<vm>" or "<net>.<cid>")
 * into net (cap bytes). False when the handle is not one of those forms (a name shortened
 * with a hash, or no VM name nor container ID). */
bool ipam_alloc_network(const struct ipam_attrs *a, char *net, size_t cap);

/* The first entry of m with MAC mac on network net whose handle is not handle, or NULL. */
const struct ipam_mac_ref *ipam_macs_taken(const struct ipam_macs *m, const char *mac,
					   const char *net, const char *handle);

#endif
