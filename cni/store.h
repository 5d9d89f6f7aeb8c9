/* store — the IPAM side of one CNI invocation: the datastore the configuration names
 * (file, or kubernetes over the API server), the per-request IPAM parameters, and the
 * ordinary pod's allocate and release operations. */
#ifndef KVNET_CNI_STORE_H
#define KVNET_CNI_STORE_H

#include "cni/netconf.h"
#include "ipam/ds.h"
#include "ipam/ds_file.h"
#include "ipam/ds_kube.h"
#include "lib/ip.h"

#include <stdbool.h>
#include <stdint.h>

#define CNI_KUBE_TIMEOUT_MS 10000     /* API server I/O timeout (kubernetes datastore) */
#define CNI_KUBE_LOCKDIR "/run/kvnet" /* node-local lock of kubernetes IPAM updates */

struct cni_vm;
struct cni_gc;
struct kcfg;
struct kube_client;

/* The IPAM datastore a request uses: the file one or the kubernetes one. */
struct cni_store {
	struct ipam_ds_file df;	/* file datastore (when !kube) */
	struct kcfg *kc;	/* resolved kubeconfig (kube; owned) */
	struct kube_client *c;	/* API client (kube; owned) */
	struct ipam_ds_kube dk;	/* kubernetes datastore over c */
	struct ipam_ds ds;	/* the view of whichever is open */
	bool kube;		/* which */
};

/* One IPAM operation's parameters and results. */
struct cni_ipam {
	const struct cni_req *r;	       /* request */
	char handle[IPAM_NAME_MAX + 1];	       /* handle id */
	struct ip_addr ip[IPAM_HANDLE_IPS_MAX]; /* allocated */
	unsigned n;			       /* count */
	bool existed;			       /* the handle held addresses before ADD */
	unsigned released;		       /* GC: handles released */
	const struct cni_vm *vm;	       /* VM pod identity, or NULL (ordinary pod) */
	uint8_t mac[6];			       /* MAC recorded for the VM (ipamctl
						* reserve/import) or asked by the runtime
						* (cni_mac_pick); the pod interface gets it */
	bool has_mac;			       /* mac is set */
	bool persist_off;		       /* a VM pod made ordinary by the IPAMConfig */
	struct cni_gc *gc;		       /* GC: what cni_gc() found out, or NULL */
};

/* Open the datastore r names into s (close with cni_store_close). Failure is CNI code
 * `code` (11 for ADD/DEL/CHECK/GC, 50 for STATUS). No I/O to the API server yet: the
 * kube client connects on its first call. */
int cni_store_open(struct cni_store *s, const struct cni_req *r, int code, struct cni_fail *f);
void cni_store_close(struct cni_store *s);

/* Start an IPAM request for an ordinary pod: the handle "<network>.<containerID>". */
int cni_ipam_init(struct cni_ipam *c, const struct cni_req *r, struct cni_fail *f);

/* One IPAM update: fn over the datastore; over `open` when given (reusing its
 * connection), else over one opened and closed here. one_handle: fn reads and changes
 * c->handle only (kubernetes: a GET of it instead of a LIST of every handle). Errors map
 * to CNI codes: no free address 999, invalid 7, unavailable/conflicting or an unusable API
 * answer 11, a VM pod refused by cni_op_vm_alloc (-EADDRINUSE) 999. */
int cni_ipam_run(const struct cni_req *r, struct cni_store *open, ipam_ds_fn fn,
		 bool one_handle, struct cni_ipam *c, struct cni_fail *f);

/* The network name IPAM keys r's handles on: the L2Network for mode l2 (so the VM's
 * address is one per L2Network, whichever attachment names it), else the CNI network. */
const char *cni_ipam_net(const struct cni_req *r);

/* Make sure every configured pool exists in st (added with the default block size), with
 * its gateway (r->pool_gw) reserved and, for an L2Network, its network set: a pool made
 * before gets the missing reservation (-EADDRINUSE when an address holds the gateway
 * already); a pool of no network whose addresses all belong to the L2Network's handles
 * (made by `ipamctl pool add` for reservations) becomes the L2Network's; a pool of
 * another network is -EEXIST (one subnet, one network). */
int cni_sync_pools(struct ipam_state *st, const struct cni_req *r, struct err *e);
/* The MAC of c's interface: the one recorded for the VM (c->has_mac, from ipamctl
 * reserve/import) and the runtime's (r->mac) must agree (-EINVAL naming both); the
 * runtime's alone becomes c->mac. */
int cni_mac_pick(struct cni_ipam *c, struct err *e);
/* The IPAMConfig in st must still say what was read before this update (off: Disabled):
 * -EAGAIN (try again) when it changed in between. */
int cni_persist_still(const struct ipam_state *st, bool off, struct err *e);
/* The attributes of an allocation made for r's pod on c's node. */
void cni_attrs(const struct cni_ipam *c, struct ipam_attrs *a);

/* ipam_ds_fn: allocate one address per family to c->handle (ordinary pod; arg = c). */
int cni_op_alloc(struct ipam_state *st, void *arg, struct err *e);
/* ipam_ds_fn: release c->handle; a missing handle is no error (arg = c). */
int cni_op_release(struct ipam_state *st, void *arg, struct err *e);

#endif
