/* ipam — the VM-aware address allocator: records and operations, pure (no I/O).
 *
 * Four kinds of record, each one datastore object (kubernetes: one CRD object whose
 * `spec` is the JSON below; file: one file in the state directory):
 *
 *   pool    name -> {"cidr":"198.18.0.0/22","blockSize":26,"reserved":["198.18.0.9"],
 *                    "network":"vlan100"}  (network: only for the pool of an L2Network's
 *                    subnet, which only that network allocates from; absent otherwise)
 *   block   name -> {"cidr":"198.18.0.64/26","affinity":"node-a"|null,"used":2,
 *                    "allocations":[{"ip":"198.18.0.65","handle":"...", attributes...}]}
 *   handle  name -> {"ips":["198.18.0.65","2001:db8::41"]}   (name = the handle id)
 *   config  "default" -> {"kubeVirtVMAddressPersistence":"Enabled"|"Disabled"}
 *           (the cluster-wide singleton IPAMConfig; absent record or field = Enabled;
 *           any other name is refused)
 *
 * A node allocates from blocks affine to it, claims the lowest free block of a pool when
 * those are full, and borrows a free address from any block (any affinity) when no pool
 * of that family has a free block left. An allocation is keyed on a handle: allocating
 * for a handle that already holds addresses returns the same addresses (a VM keeps its
 * IP over restart, eviction and migration because its handle is keyed on the VM).
 *
 * Reserved addresses, never handed out:
 *   - the first address of every POOL (v4 network address; v6 Subnet-Router anycast,
 *     RFC 4291 2.6.1, which routers answer to);
 *   - for v4 the last address of every POOL (the broadcast address of the pool as a
 *     subnet: hosts and middleboxes configured with the pool's prefix treat it as
 *     broadcast). Block boundaries inside a pool are NOT reserved: pod addresses are
 *     /32 and /128 on routed veths, so a block's first/last address is an ordinary host;
 *   - every address in the pool's explicit reservation list.
 *
 * Every allocation carries attributes (pod, namespace, node, ifname, containerID, the
 * VM's vmi-name/vmi-uid/vm-uid/vmim-uid) and two owner slots, active and alternate, each
 * a pod (namespace/name, uid, node). Owner slots change only under a precondition on the
 * uid they hold, so two racing CNI calls cannot both win.
 *
 * State is a struct ipam_state the caller owns (ipam_state_free()). Records come in
 * through ipam_state_load() (strict JSON parse) or the config calls, operations edit the
 * state, and ipam_state_diff() lists what changed since load for a datastore to write.
 */
#ifndef KVNET_IPAM_IPAM_H
#define KVNET_IPAM_IPAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/ip.h"

struct err;
struct json_w;

/* Object names (handle ids, pool names, nodes, pods): Kubernetes DNS-subdomain names,
 * at most 253 characters. */
#define IPAM_NAME_MAX 253
#define IPAM_NS_MAX 63		  /* namespace: a DNS label */
#define IPAM_UID_MAX 64		  /* uids are 36-character UUIDs; room to spare */
#define IPAM_IFNAME_MAX 15	  /* IFNAMSIZ - 1 */
#define IPAM_CID_MAX 128	  /* container ID */
#define IPAM_BLOCK_ADDRS_MAX 1024 /* v4 block prefix >= 22, v6 >= 118 */
#define IPAM_HANDLE_IPS_MAX 4	  /* addresses one handle may hold */
#define IPAM_RESERVED_MAX 64	  /* explicit reservations per pool */
#define IPAM_VERSION_MAX 64	  /* datastore version text (resourceVersion, file hash) */
#define IPAM_HASH_HEX 10	  /* hex digits of SHA-256 in a shortened handle id */
#define IPAM_MAC_STR 18		  /* "aa:bb:cc:dd:ee:ff" + NUL */

enum ipam_family { IPAM_V4 = 1, IPAM_V6 = 2 }; /* bit mask in requests */

enum ipam_kind { IPAM_POOL = 1, IPAM_BLOCK, IPAM_HANDLE, IPAM_CONFIG };
#define IPAM_KIND_LAST IPAM_CONFIG /* kinds are 1..IPAM_KIND_LAST */

#define IPAM_CONFIG_NAME "default" /* the one IPAMConfig record */

/* IPAMConfig spec.kubeVirtVMAddressPersistence. */
enum ipam_persist { IPAM_PERSIST_ENABLED = 1, IPAM_PERSIST_DISABLED };

enum ipam_slot { IPAM_ACTIVE = 1, IPAM_ALTERNATE };


struct ipam_cidr {
	struct ip_addr a; /* network address (host bits zero) */
	uint8_t prefix;	    /* prefix length */
};

struct ipam_owner {
	char ns[IPAM_NS_MAX + 1];     /* pod namespace */
	char name[IPAM_NAME_MAX + 1]; /* pod name */
	char uid[IPAM_UID_MAX + 1];   /* pod uid; "" = the slot is empty */
	char node[IPAM_NAME_MAX + 1]; /* node the pod runs on */
	char cid[IPAM_CID_MAX + 1];   /* its container ID ("" unknown): CNI GC matches the
				       * slot against the runtime's valid attachments */
	char ifname[IPAM_IFNAME_MAX + 1]; /* its interface ("" unknown) */
};

struct ipam_attrs {
	char handle[IPAM_NAME_MAX + 1];	     /* handle id this address belongs to */
	char pod[IPAM_NAME_MAX + 1];	     /* pod that asked (informational) */
	char ns[IPAM_NS_MAX + 1];	     /* its namespace */
	char node[IPAM_NAME_MAX + 1];	     /* its node */
	char ifname[IPAM_IFNAME_MAX + 1];    /* interface in the pod */
	char container_id[IPAM_CID_MAX + 1]; /* runtime container ID */
	char vmi_name[IPAM_NAME_MAX + 1];    /* VM pods: the VMI's name, else "" */
	char vmi_uid[IPAM_UID_MAX + 1];	     /* VM pods: VMI uid */
	char vm_uid[IPAM_UID_MAX + 1];	     /* VM pods: owning VM uid ("" standalone VMI) */
	char vmim_uid[IPAM_UID_MAX + 1];     /* VM pods: migration uid when a target */
	char mac[IPAM_MAC_STR];		     /* MAC the pod interface must get (ipamctl
					      * reserve/import), lower-case; "" = any */
	struct ipam_owner active;	     /* pod running the VM */
	struct ipam_owner alternate;	     /* migration target pod */
};

struct ipam_pool {
	char name[IPAM_NAME_MAX + 1];		      /* record name */
	struct ipam_cidr cidr;			      /* the pool */
	uint8_t block_prefix;			      /* block size as a prefix length */
	unsigned n_reserved;			      /* entries in reserved[] */
	struct ip_addr reserved[IPAM_RESERVED_MAX]; /* explicitly reserved addresses */
	char network[IPAM_NAME_MAX + 1];	      /* the L2Network this pool serves alone
						       * ("" = any ordinary network's) */
};

struct ipam_block {
	struct ipam_cidr cidr;		  /* the block (inside exactly one pool) */
	char affinity[IPAM_NAME_MAX + 1]; /* node the block is affine to; "" none */
	unsigned size;			  /* addresses in the block (2^(bits-prefix)) */
	unsigned used;			  /* the stored allocation count (checked) */
	struct ipam_attrs **slot;	  /* size entries; NULL = free; owned */
};

struct ipam_handle {
	char id[IPAM_NAME_MAX + 1];		  /* handle id (= record name) */
	unsigned n;				  /* addresses held */
	struct ip_addr ip[IPAM_HANDLE_IPS_MAX]; /* them */
};

/* A record as it was loaded, kept to tell what changed (ipam_state_diff()). */
struct ipam_loaded {
	enum ipam_kind kind;		    /* record kind */
	char name[IPAM_NAME_MAX + 1];	    /* record name */
	char version[IPAM_VERSION_MAX + 1]; /* datastore version when read */
	char *json;			    /* the record's JSON as read; owned */
	size_t len;			    /* its length */
};

/* The IPAMConfig record. */
struct ipam_config {
	enum ipam_persist vm_persistence; /* VM pods keep their IP (handle on the VM) */
};

struct ipam_state {
	bool has_config;	     /* an IPAMConfig record exists */
	struct ipam_config config;   /* it (meaningful when has_config) */
	struct ipam_pool *pools;     /* pools; owned array */
	unsigned n_pools, cap_pools; /* used / allocated */
	struct ipam_block *blocks;   /* blocks; owned array */
	unsigned n_blocks, cap_blocks;
	struct ipam_handle *handles; /* handles; owned array */
	unsigned n_handles, cap_handles;
	struct ipam_loaded *loaded; /* records as loaded; owned */
	unsigned n_loaded, cap_loaded;
};

/* One write a datastore must make: create/update (json != NULL) or delete (json NULL).
 * version is what the record had when loaded ("" = it did not exist: create only). */
struct ipam_change {
	enum ipam_kind kind; /* record kind */
	const char *name;    /* record name (a valid object name) */
	char *json;	     /* new JSON (owned by the change list) or NULL = delete */
	size_t len;	     /* its length */
	const char *version; /* expected current version ("" = must not exist) */
};

/* --- addresses ------------------------------------------------------------------------ */

/* Parse "198.18.0.1" / "2001:db8::1". 0 or -EINVAL. */
int ipam_addr_parse(struct ip_addr *a, const char *s, struct err *e);
/* Format into buf (at least 46 bytes). Returns buf. */
const char *ipam_addr_str(const struct ip_addr *a, char *buf, size_t cap);
/* Parse a MAC "aa:bb:cc:dd:ee:ff" (either case) into out; canon (IPAM_MAC_STR bytes, may
 * be NULL) gets the lower-case form. A multicast MAC (group bit) or all zeros is refused:
 * an interface cannot use it. 0 or -EINVAL with e. */
int ipam_mac_parse(const char *s, uint8_t out[6], char *canon, struct err *e);
/* Parse "198.18.0.0/24": host bits must be zero. 0 or -EINVAL. */
int ipam_cidr_parse(struct ipam_cidr *c, const char *s, struct err *e);
const char *ipam_cidr_str(const struct ipam_cidr *c, char *buf, size_t cap);
bool ipam_cidr_contains(const struct ipam_cidr *c, const struct ip_addr *a);

/* --- names ---------------------------------------------------------------------------- */

/* True when s is a Kubernetes DNS-subdomain name: 1..253 chars of [a-z0-9.-], dot-
 * separated labels that start and end with [a-z0-9]. */
bool ipam_name_valid(const char *s);
/* Map any text to a valid object name. s itself when it already is one; otherwise
 * lowercase it, keep [a-z0-9] and single '-'/'.' separators between them, cut to
 * 253 - 11 characters and append "-" + the first 10 hex digits of SHA-256(s), so two
 * different inputs that clean up to the same text still get different names.
 * out needs IPAM_NAME_MAX + 1 bytes. */
void ipam_name_map(const char *s, char *out);
/* Handle ids. Ordinary pod: "<network>.<containerID>"; VM pod:
 * "<network>.vmi.<namespace>.<vm>"; both through ipam_name_map(). -EINVAL for empty
 * parts. out needs IPAM_NAME_MAX + 1 bytes. */
int ipam_handle_pod(char *out, const char *network, const char *container_id, struct err *e);
int ipam_handle_vm(char *out, const char *network, const char *ns, const char *vm, struct err *e);
/* Record name of a block: "v4-198-18-0-64-26", "v6-<32 hex digits>-122". */
void ipam_block_name(const struct ipam_cidr *c, char *out, size_t cap);

/* --- state ---------------------------------------------------------------------------- */

/* The pool holding address a (NULL: none) and the block (NULL: none claimed). */
const struct ipam_pool *ipam_pool_of(const struct ipam_state *st, const struct ip_addr *a);
const struct ipam_block *ipam_block_of(const struct ipam_state *st, const struct ip_addr *a);
/* Address number ord of block b. */
struct ip_addr ipam_block_addr(const struct ipam_block *b, unsigned ord);

void ipam_state_init(struct ipam_state *st);
void ipam_state_free(struct ipam_state *st);

/* Add a pool (config). block_prefix 0 = default (/26 v4, /122 v6); it must be at least
 * the pool's prefix and give at most IPAM_BLOCK_ADDRS_MAX addresses. Pools may not
 * overlap. -EINVAL / -EEXIST with e. */
int ipam_pool_add(struct ipam_state *st, const char *name, const struct ipam_cidr *cidr,
		  unsigned block_prefix, const struct ip_addr *reserved, unsigned n_reserved,
		  struct err *e);
/* True when a is never handed out by pool p (see the header comment). */
bool ipam_pool_reserves(const struct ipam_pool *p, const struct ip_addr *a);
/* Pool p (one of st's) serves only L2Network net from now on ("": any routed network).
 * An update of the pool record. */
void ipam_pool_set_network(struct ipam_state *st, struct ipam_pool *p, const char *net);
/* True when every address allocated in pool p belongs to a handle of network net (the
 * handle id starts with "net."): p may become net's own. */
bool ipam_pool_adoptable(const struct ipam_state *st, const struct ipam_pool *p,
			 const char *net);
/* The pool holding a serves L2Network net alone from now on, so the routed allocator
 * never hands out its addresses (ipamctl calls it for a pool inside an L2Network's subnet
 * and for every address registered on one, before any CNI ADD of that network): 0 when
 * it does already, 1 when it was a pool of no network and ipam_pool_adoptable() (an
 * update of the pool record), -ENOENT when no pool holds a, -EEXIST with e when the pool
 * serves another network or holds addresses of other networks' handles. */
int ipam_pool_claim(struct ipam_state *st, const struct ip_addr *a, const char *net,
		    struct err *e);
/* Pool p (one of st's) never hands out a (an L2Network's gateway): added to its reserved
 * list unless there already. 0, -EADDRINUSE when a handle holds a (e names it), -ENOSPC
 * when the list is full. An update of the pool record. */
int ipam_pool_reserve(struct ipam_state *st, struct ipam_pool *p, const struct ip_addr *a,
		      struct err *e);

/* Allocate one address per family in `families` (IPAM_V4|IPAM_V6) for handle, on node,
 * with attrs (attrs->handle is overwritten with handle). If the handle already holds
 * addresses, they are returned unchanged (idempotent); only a requested family it holds
 * no address of is allocated (a handle left with one family by a torn commit, or a
 * reservation of one family on a dual-stack network).
 * Otherwise all or nothing: -ENOSPC when a family is exhausted, -ENOENT when no pool of
 * a requested family exists. out gets up to IPAM_HANDLE_IPS_MAX addresses, *n_out
 * their count. */
int ipam_alloc(struct ipam_state *st, const char *handle, const char *node, unsigned families,
	       const struct ipam_attrs *attrs, struct ip_addr *out, unsigned *n_out,
	       struct err *e);
/* ipam_alloc() for network net: new addresses come only from pools whose network is net
 * ("" or NULL: pools of no network, which is what ipam_alloc() uses). */
int ipam_alloc_net(struct ipam_state *st, const char *handle, const char *node,
		   unsigned families, const char *net, const struct ipam_attrs *attrs,
		   struct ip_addr *out, unsigned *n_out, struct err *e);
/* Give the specific address a to handle (ipamctl reserve/import): a must be inside a
 * pool (-EADDRNOTAVAIL), not reserved by it (-EADDRNOTAVAIL), and free (-EEXIST naming
 * the holding handle). Allocating the same address to the same handle again is 0. */
int ipam_reserve_ip(struct ipam_state *st, const char *handle, const struct ip_addr *a,
		    const struct ipam_attrs *attrs, struct err *e);

/* Put owner o in slot `which` of every address of handle, only if the slot is empty or
 * holds uid expect_uid (NULL = must be empty). o needs ns, name and uid (-EINVAL).
 * -ENOENT unknown handle, -EBUSY when the
 * precondition fails (e names the current holder); nothing changes on failure. */
int ipam_owner_set(struct ipam_state *st, const char *handle, enum ipam_slot which,
		   const struct ipam_owner *o, const char *expect_uid, struct err *e);
/* Empty slot `which` if it holds expect_uid; 0 when it is already empty (DEL is
 * idempotent), -EBUSY when another pod holds it, -ENOENT unknown handle. */
int ipam_owner_clear(struct ipam_state *st, const char *handle, enum ipam_slot which,
		     const char *expect_uid, struct err *e);

/* Put owner o (NULL = empty the slot) in slot `which` of the one allocated address a,
 * without a precondition: for a caller that checked every address itself (the migration
 * hand-over repairing owners that differ between a handle's addresses after a partial
 * write). o needs ns, name and uid (-EINVAL); -ENOENT when a is not allocated. */
int ipam_owner_put(struct ipam_state *st, const struct ip_addr *a, enum ipam_slot which,
		   const struct ipam_owner *o, struct err *e);

/* Release all addresses of handle (those a block allocates to it: never another
 * handle's) and the handle. Unless force, refused with -EBUSY
 * while an owner slot is set (a VM's IP is freed only when both slots are empty).
 * -ENOENT unknown handle. */
int ipam_release_handle(struct ipam_state *st, const char *handle, bool force, struct err *e);
/* Release one address (and drop it from its handle; an empty handle is deleted).
 * -ENOENT when it is not allocated. */
int ipam_release_ip(struct ipam_state *st, const struct ip_addr *a, struct err *e);

/* Repair one handle's records after a torn commit. The kubernetes datastore writes
 * blocks and handles as separate objects; a crash or a failed undo between them leaves
 * them disagreeing (the file datastore's journal never does). Rules:
 *   - an address the handle lists that no block allocates to it is dropped from the
 *     handle (a release that freed the block but died before deleting the handle);
 *   - an allocation naming the handle that the handle does not list is adopted when the
 *     handle holds no address of that family (an allocation that died before writing
 *     the handle: the handle is created), else released (a stray of a failed undo);
 *   - an owner slot that differs between the handle's addresses is set to the first
 *     address's value (a slot change written to one block only).
 * Every datastore write is a compare-and-swap on what was loaded, so mending a record a
 * concurrent writer is still completing conflicts instead of losing data. Returns the
 * number of fixes (0 = the handle was consistent) or -ENOMEM. */
int ipam_handle_mend(struct ipam_state *st, const char *handle, struct err *e);

/* Look-ups: attributes of an allocated address, or NULL; a handle, or NULL. */
const struct ipam_attrs *ipam_lookup_ip(const struct ipam_state *st, const struct ip_addr *a);
const struct ipam_handle *ipam_handle_find(const struct ipam_state *st, const char *id);

/* Consistency: blocks inside pools, aligned and disjoint; stored counts equal contents;
 * no reserved address allocated; every allocation's handle exists and lists it; every
 * handle address is allocated to that handle; no address held twice. 0 or -EUCLEAN
 * with e naming the first problem. */
int ipam_check(const struct ipam_state *st, struct err *e);

/* --- cluster configuration (IPAMConfig) ---------------------------------------------- */

/* The effective configuration: the record's when there is one, else the defaults
 * (persistence Enabled). Returns whether a record exists. */
bool ipam_config_get(const struct ipam_state *st, struct ipam_config *out);
/* Create or replace the record (written by the next commit). -EINVAL for an invalid
 * value. */
int ipam_config_set(struct ipam_state *st, const struct ipam_config *c, struct err *e);
/* Remove the record (back to the defaults; deleted by the next commit). */
void ipam_config_clear(struct ipam_state *st);
/* "Enabled" / "Disabled"; parse is case-sensitive as in the CRD (false when neither). */
const char *ipam_persist_name(enum ipam_persist p);
bool ipam_persist_parse(const char *s, enum ipam_persist *out);

/* --- records -------------------------------------------------------------------------- */

/* Write record `name` of `kind` as JSON (one object). 0 or -ENOENT (no such record) or
 * the writer's error. */
int ipam_rec_write(const struct ipam_state *st, enum ipam_kind kind, const char *name,
		   struct json_w *w, struct err *e);
/* Parse a record strictly (unknown or duplicate keys, wrong types, addresses outside
 * the block, bad names: -EINVAL with e saying which) and add it to st; also remember it
 * as loaded with `version` for ipam_state_diff(). -EEXIST for a second record of the
 * same name. */
int ipam_state_load(struct ipam_state *st, enum ipam_kind kind, const char *name,
		    const char *version, const char *json, size_t len, struct err *e);
/* The writes that turn the loaded records into the current state: *out (malloc'd,
 * free with ipam_changes_free()) with *n entries. 0 or -ENOMEM. */
int ipam_state_diff(const struct ipam_state *st, struct ipam_change **out, unsigned *n,
		    struct err *e);
void ipam_changes_free(struct ipam_change *c, unsigned n);
/* "pool", "block", "handle", "config". */
const char *ipam_kind_name(enum ipam_kind k);

#endif
