/* ipam report — what ipamctl asks of the IPAM state: usage, ownership, cross-checks against
 * the API, the machine-readable check report, and the repairs it names. Pure: no I/O.
 *
 * Liveness comes in as a struct ipam_live the caller fills from the API (pods, VMIs,
 * VMs); without one (no API server reachable or configured) nothing is judged leaked
 * and owners are "unknown".
 *
 * Problems `ipam_report_check()` finds:
 *
 *   LeakedAllocation         an allocation whose owner is gone. Ordinary pod: no pod
 *                            namespace/name. VM: neither owner pod (by uid) nor the VMI nor
 *                            the VM exist, and the VM's handle is older than the grace
 *                            period (a VM being (re)created or an API view that lags a CNI
 *                            ADD is not reported). A reservation (ipamctl reserve/import:
 *                            a VM address that never had a pod) is never a leak.
 *   HandleWithoutAllocation  a handle lists an address that is not allocated to it (or
 *                            lists none)
 *   AllocationWithoutHandle  an allocation whose handle is missing or does not list it
 *   BlockCountMismatch       a block's stored count differs from its allocations
 *   DuplicateAddress         one address in status.podIPs of two live pods that are not
 *                            the active and alternate owner of that one VM address
 *   DuplicateMAC             an allocation whose MAC another VM (or pod) of the same
 *                            network holds (ipam/macs.h); reported at the later address of
 *                            the pair, naming the first. Import and reserve refuse this;
 *                            two reserves racing on different kubernetes objects do not
 *                            see each other
 *   L2NetworkMismatch        an allocation in the pool of L2Network N whose handle is not
 *                            one of N's (<N>.<...>): another network took an address that
 *                            only N hands out; or a handle of an L2Network in a pool that
 *                            serves none
 *   OutsideL2Subnet          an allocation in N's pool outside N's subnet of its family
 *                            (the L2Network was changed after the pool was made, or the
 *                            family has no subnet any more)
 *   L2GatewayAllocated       an allocation of N's gateway address (a VM that answers as the
 *                            gateway cuts the VLAN off its router)
 *                            The last three need the L2Networks (ipam_check_opts.l2nets);
 *                            without them a pool's network is taken as unknown: only the
 *                            first is checked
 *
 * Report (`ipam_report_write`, read back by `ipam_report_parse`):
 *
 *   {"apiVersion":"kvnet.io/v1","kind":"IPAMCheckReport","vmGraceSeconds":300,
 *    "apiChecked":true,"allocations":N,"handles":N,"blocks":N,"reservations":N,
 *    "withinGrace":N,"problems":[{"kind":"LeakedAllocation","ip":"198.18.0.5",
 *    "handle":"...","block":"198.18.0.0/26","repair":"release","detail":"..."}, ...]}
 *
 * "repair" is what `ipam_report_repair` does: release (free the address), unlink (drop the
 * address from the handle), relink (add the address to its handle: its owner is alive),
 * recount (set the block count), none (needs a person: DuplicateAddress, DuplicateMAC).
 */
#ifndef KVNET_IPAM_REPORT_H
#define KVNET_IPAM_REPORT_H

#include "ipam/ipam.h"

#include <stdbool.h>
#include <stdint.h>

struct err;
struct json_w;

#define IPAM_REPORT_DETAIL 320 /* bytes of a problem's explanation */

/* --- liveness ------------------------------------------------------------------------- */

struct ipam_live_pod {
	char ns[IPAM_NS_MAX + 1];		    /* namespace */
	char name[IPAM_NAME_MAX + 1];		    /* name */
	char uid[IPAM_UID_MAX + 1];		    /* metadata.uid */
	char node[IPAM_NAME_MAX + 1];		    /* spec.nodeName ("" unscheduled) */
	bool done;				    /* phase Succeeded/Failed: not alive */
	unsigned n_ips;				    /* entries in ips[] */
	struct ip_addr ips[IPAM_HANDLE_IPS_MAX]; /* status.podIPs */
};

struct ipam_live_obj {
	char ns[IPAM_NS_MAX + 1];     /* namespace */
	char name[IPAM_NAME_MAX + 1]; /* name */
	char uid[IPAM_UID_MAX + 1];   /* metadata.uid */
};

/* What exists in the API. Arrays are owned (ipam_live_free()). */
struct ipam_live {
	bool known;			  /* filled from an API server; false = unknown */
	struct ipam_live_pod *pods;	  /* pods */
	unsigned n_pods, cap_pods;	  /* used / allocated */
	struct ipam_live_obj *vmis;	  /* kubevirt.io VirtualMachineInstances */
	unsigned n_vmis, cap_vmis;	  /* used / allocated */
	struct ipam_live_obj *vms;	  /* kubevirt.io VirtualMachines */
	unsigned n_vms, cap_vms;	  /* used / allocated */
};

void ipam_live_init(struct ipam_live *l);
void ipam_live_free(struct ipam_live *l);
/* Append a pod / VMI / VM (copied). 0 or -ENOMEM. */
int ipam_live_add_pod(struct ipam_live *l, const struct ipam_live_pod *p);
int ipam_live_add_vmi(struct ipam_live *l, const struct ipam_live_obj *o);
int ipam_live_add_vm(struct ipam_live *l, const struct ipam_live_obj *o);

enum ipam_owner_state {
	IPAM_OWNER_ALIVE = 1, /* an owner pod, the VMI or the VM exists */
	IPAM_OWNER_GONE,      /* none of them exists */
	IPAM_OWNER_RESERVED,  /* a VM address reserved before the VM had any pod */
	IPAM_OWNER_UNKNOWN,   /* no API view (live->known false) */
};

/* Judge the owner of allocation a. why (cap bytes) says which object keeps it alive or
 * what is gone: "pod default/virt-launcher-vm-a-x (uid ...) on node-a", "VM default/vm-a
 * exists", "pod default/p1 gone". */
enum ipam_owner_state ipam_owner_judge(const struct ipam_live *live, const struct ipam_attrs *a,
				       char *why, size_t cap);
/* "alive", "gone", "reserved", "unknown". */
const char *ipam_owner_state_name(enum ipam_owner_state s);

/* --- usage ---------------------------------------------------------------------------- */

/* Usage of one pool. Numbers are 128-bit: an IPv6 pool may hold 2^80 addresses. */
struct ipam_pool_usage {
	unsigned __int128 total;    /* addresses that can be handed out (reserved excluded) */
	unsigned __int128 used;	    /* allocated */
	unsigned blocks;	    /* blocks claimed in the pool */
	unsigned borrowed;	    /* allocations on a node other than their block's */
	unsigned n_reserved_addrs;  /* addresses the pool never hands out */
};

/* Usage of pool st->pools[i]. */
void ipam_pool_usage(const struct ipam_state *st, unsigned i, struct ipam_pool_usage *u);
/* Decimal text of v into buf (at least 40 bytes). Returns buf. */
const char *ipam_u128_str(unsigned __int128 v, char *buf, size_t cap);
/* Percentage of part in whole, rounded down, 0 when whole is 0. */
unsigned ipam_percent(unsigned __int128 part, unsigned __int128 whole);
/* The node an allocation is used on: the active owner's node, else the recorded node. */
const char *ipam_alloc_node(const struct ipam_attrs *a);

/* --- pools ---------------------------------------------------------------------------- */

/* Add the pool c named ipam_block_name(c) with block prefix block (0 = the default),
 * unless a pool with exactly this CIDR exists: then *existed is set and it is 0, or
 * -EEXIST when block is given and differs from that pool's. Otherwise ipam_pool_add()'s
 * result (e.g. -EEXIST for an overlapping pool). */
int ipam_pool_ensure(struct ipam_state *st, const struct ipam_cidr *c, unsigned block,
		     bool *existed, struct err *e);
/* Delete the pool with exactly this CIDR and its (empty) blocks. -ENOENT no such pool;
 * -EBUSY while any address of it is allocated (e says how many and names one). */
int ipam_pool_delete(struct ipam_state *st, const struct ipam_cidr *c, struct err *e);

/* --- check ---------------------------------------------------------------------------- */

enum ipam_problem_kind {
	IPAM_P_LEAKED = 1,     /* LeakedAllocation */
	IPAM_P_HANDLE_STALE,   /* HandleWithoutAllocation */
	IPAM_P_NO_HANDLE,      /* AllocationWithoutHandle */
	IPAM_P_BLOCK_COUNT,    /* BlockCountMismatch */
	IPAM_P_DUPLICATE,      /* DuplicateAddress */
	IPAM_P_DUP_MAC,	       /* DuplicateMAC */
	IPAM_P_L2_NETWORK,     /* L2NetworkMismatch */
	IPAM_P_L2_SUBNET,      /* OutsideL2Subnet */
	IPAM_P_L2_GATEWAY,     /* L2GatewayAllocated */
};

enum ipam_repair {
	IPAM_R_NONE = 1, /* needs a person */
	IPAM_R_RELEASE,	 /* free the address */
	IPAM_R_UNLINK,	 /* drop the address (or an empty handle) from the handle */
	IPAM_R_RELINK,	 /* add the address to its handle */
	IPAM_R_RECOUNT,	 /* set the block count to its allocations */
};

struct ipam_problem {
	enum ipam_problem_kind kind;	   /* what */
	enum ipam_repair repair;	   /* how ipam_report_repair() fixes it */
	bool has_ip;			   /* ip is set */
	struct ip_addr ip;		   /* the address concerned */
	char handle[IPAM_NAME_MAX + 1];	   /* the handle concerned, or "" */
	bool has_block;			   /* block is set */
	struct ipam_cidr block;		   /* the block concerned */
	unsigned stored, actual;	   /* BlockCountMismatch: stored count, allocations */
	char detail[IPAM_REPORT_DETAIL];   /* one line for a person */
};

/* An L2Network as check needs it (the caller reads the L2Network objects). */
struct ipam_l2net {
	char name[IPAM_NAME_MAX + 1]; /* metadata.name */
	bool has_v4, has_v6;	      /* a subnet of that family is given */
	struct ipam_cidr v4, v6;      /* the subnets */
	struct ip_addr gw4, gw6;      /* their gateways (family 0: none) */
};

struct ipam_check_opts {
	const struct ipam_live *live; /* API view; NULL or !known = leaks not judged */
	int64_t now;		      /* current time, seconds (same clock as handle_age) */
	uint32_t vm_grace;	      /* [ipam] vm_grace_seconds */
	/* Creation time (seconds) of handle id, or -1 when unknown (then it counts as old;
	 * the file datastore keeps no times). NULL: every handle is old. */
	int64_t (*handle_time)(void *user, const char *id);
	void *user; /* passed to handle_time */
	const struct ipam_l2net *l2nets; /* the L2Networks that exist (NULL: not known) */
	unsigned n_l2nets;		 /* entries in l2nets */
};

struct ipam_report {
	uint32_t vm_grace;		/* grace period used */
	bool api_checked;		/* leaks and duplicates were judged against the API */
	unsigned allocations;		/* allocations seen */
	unsigned handles;		/* handles seen */
	unsigned blocks;		/* blocks seen */
	unsigned reservations;		/* VM addresses reserved and not yet used */
	unsigned within_grace;		/* VM allocations whose owner is gone, in grace */
	struct ipam_problem *p;		/* problems, in a stable order; owned */
	unsigned n, cap;		/* used / allocated */
};

void ipam_report_init(struct ipam_report *r);
void ipam_report_free(struct ipam_report *r);
/* Cross-check st (and the API view in o) into r (initialised here; free it even on
 * error). Problems come in order: blocks by address, then handles by id, duplicate
 * addresses, duplicate MACs last (by MAC).
 * 0 or -ENOMEM. */
int ipam_report_check(const struct ipam_state *st, const struct ipam_check_opts *o,
		      struct ipam_report *r, struct err *e);
/* "LeakedAllocation", ...; "release", ... */
const char *ipam_problem_name(enum ipam_problem_kind k);
const char *ipam_repair_name(enum ipam_repair r);

/* Write r as the report JSON (one object). The writer's error, or 0. */
int ipam_report_write(const struct ipam_report *r, struct json_w *w, struct err *e);
/* Read a report written by ipam_report_write (strict: unknown kinds, repairs, fields and
 * bad addresses are -EINVAL naming the problem's index). r is initialised here. */
int ipam_report_parse(struct ipam_report *r, const char *text, size_t len, struct err *e);

/* True when problem p (from an older report) is still found in fresh report now (same
 * kind, address, handle and block). */
bool ipam_problem_current(const struct ipam_report *now, const struct ipam_problem *p);
/* True when problem p of an older report may still be repaired in st: it is current in
 * now, or, with force, it is a leak whose address is still allocated to the same handle
 * (its owner came back, or cannot be verified: release --force). */
bool ipam_problem_repairable(const struct ipam_report *now, const struct ipam_state *st,
			     const struct ipam_problem *p, bool force);
/* Apply p's repair to st. -ENOENT when there is nothing to repair any more, -EPERM for
 * IPAM_R_NONE, else 0. */
int ipam_report_repair(struct ipam_state *st, const struct ipam_problem *p, struct err *e);

/* Add address a to handle id (creating the handle) / drop it (an empty handle goes; a NULL
 * drops the whole handle record, the allocations stay). Exposed for repairs; 0, -E2BIG
 * (handle full), -ENOMEM, -EINVAL (bad id), -ENOENT (drop: not listed). */
int ipam_handle_link(struct ipam_state *st, const char *id, const struct ip_addr *a);
int ipam_handle_unlink(struct ipam_state *st, const char *id, const struct ip_addr *a);

#endif
