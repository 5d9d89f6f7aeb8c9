/* polnft — the nf_tables design of NetworkPolicy (pure: no kernel, no clock), and the
 * difference between two designs as an ordered plan of batch operations.
 *
 * pnft_build() turns a compiled rule set (policy/policy.h) into the one table kvnet
 * owns:
 *
 *   table inet kvnet
 *     map eg { ifname : verdict }   veth → goto e-VETH      (egress of the pod)
 *     map in { ifname : verdict }   veth → goto i-VETH      (ingress of the pod)
 *     set p4-HASH / p6-HASH         interval sets of peer addresses, named by content
 *     chain egress   hook forward priority 0, policy accept:
 *         iifname "kvl-*" accept                      (bridged by a kvnet L2 bridge: with
 *                                                      br_netfilter and bridge-nf-call-
 *                                                      iptables=1 these frames come here
 *                                                      too; their policy is the bridge
 *                                                      table's, agent/mnpnft.h)
 *         iifname != "kv*" accept                     (not a kvnet veth: not ours)
 *         ct state established,related accept
 *         ct state invalid drop
 *         iifname vmap @eg                            (programmed endpoints)
 *         drop                                        (a kvnet veth without rules yet:
 *                                                      fail closed; accept when open)
 *     chain ingress  hook forward priority 1: the same with oifname and @in
 *     chain e-VETH / i-VETH: not isolated: counter accept; isolated: one rule per
 *         (allow rule, address family of its peers, port range):
 *         [ip saddr @p4-HASH] [meta l4proto tcp th dport 80-80] counter accept,
 *         then (with nflog on) limit rate R/second log prefix "kvnet deny CHAIN" group G
 *         (no verdict: the log of denied packets, at most R a second), then counter drop.
 *
 * The two directions are two base chains at the same hook: a packet between two pods of
 * this node passes the sender's egress chain (in chain egress) and the receiver's
 * ingress chain (in chain ingress); each base chain's accept only ends that chain.
 * Sets are named after a hash of their content and never change: a changed peer set is
 * a new set, a new rule pointing at it and the old ones deleted in the same batch.
 * Every rule carries user data "HASH16 TEXT" (hash of its full content, then a readable
 * id), so a reconciler reading the kernel's table knows which rules are the desired ones.
 *
 * pnft_diff() compares a desired table with the table in the kernel (as read back) and
 * plans only the difference, ordered so that every reference exists when it is made and
 * nothing is deleted while referenced: add table, sets, maps, chains, rules; add map
 * elements; delete map elements, rules, chains (flushed first), sets. Rules of a chain
 * whose order cannot be kept by deleting and inserting (terminal rules last) are
 * rewritten (flush + add) in the same batch.
 */
#ifndef KVNET_AGENT_POLNFT_H
#define KVNET_AGENT_POLNFT_H

#include "policy/policy.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct err;
struct ip_addr;
struct nft_batch;

#define PNFT_TABLE "kvnet"	  /* the table (family inet) */
#define PNFT_CHAIN_EGRESS "egress"  /* base chain, hook forward, priority 0 */
#define PNFT_CHAIN_INGRESS "ingress" /* base chain, hook forward, priority 1 */
#define PNFT_MAP_EG "eg"	  /* iifname → goto e-VETH */
#define PNFT_MAP_IN "in"	  /* oifname → goto i-VETH */
#define PNFT_NAME_MAX 32	  /* chain / set names, with the NUL */
#define PNFT_IFNAME_MAX 16	  /* IFNAMSIZ */
#define PNFT_UDATA_MAX 128	  /* rule user data, with the NUL */
#define PNFT_PREFIX "kv"	  /* host veth names start so (cni/mode.c) */
#define PNFT_L2_PREFIX "kvl-"	  /* kvnet's L2 bridges (l2_bridge_name, l2/net.h) */
#define PNFT_LOG_PREFIX "kvnet deny " /* log prefix of a deny rule, then its chain */
#define PNFT_LOG_MAX 48		  /* a log prefix, with the NUL */

/* ct state bits as the kernel has them (NF_CT_STATE_BIT, linux/netfilter/nf_conntrack_common.h). */
#define PNFT_CT_INVALID 1u
#define PNFT_CT_ESTABLISHED 2u
#define PNFT_CT_RELATED 4u

enum pnft_verdict {
	PNFT_V_NONE,   /* no immediate verdict (a vmap lookup decides, or the rule falls through) */
	PNFT_V_ACCEPT, /* accept */
	PNFT_V_DROP,   /* drop */
	PNFT_V_GOTO,   /* goto target */
};

/* Which interface name a match or a vmap looks at. */
enum pnft_if {
	PNFT_IF_NONE, /* none */
	PNFT_IF_IIF,  /* meta iifname */
	PNFT_IF_OIF,  /* meta oifname */
};

/* One rule: the matches in this order, each optional, then counter and verdict. */
struct pnft_rule {
	char udata[PNFT_UDATA_MAX];   /* "HASH16 TEXT": identity in the kernel */
	enum pnft_if not_prefix;      /* IIF/OIF: name does NOT start with PNFT_PREFIX */
	enum pnft_if l2_prefix;	      /* IIF/OIF: name starts with PNFT_L2_PREFIX (a frame
				       * bridged by a kvnet L2 bridge, which br_netfilter
				       * shows this hook with the bridge as iif and oif) */
	uint32_t ct_state;	      /* ct state & this != 0 (PNFT_CT_*); 0: no match */
	uint8_t nfproto;	      /* NFPROTO_IPV4 (2) / NFPROTO_IPV6 (10); 0: any */
	bool saddr;		      /* set: the address matched is the source, else the
				       * destination */
	char set[PNFT_NAME_MAX];      /* address set looked up ("" none) */
	uint8_t l4proto;	      /* meta l4proto (0: any) */
	uint16_t dport_lo, dport_hi;  /* th dport lo..hi (both 0: any; needs l4proto) */
	enum pnft_if vmap;	      /* IIF/OIF: vmap lookup of that name in map `target` */
	uint32_t limit_rate;	      /* > 0: limit rate limit_rate/second (burst as much) */
	bool log;		      /* a log statement to nflog group log_group */
	uint16_t log_group;	      /* its group */
	char log_prefix[PNFT_LOG_MAX]; /* its prefix */
	bool counter;		      /* a counter expression before the verdict */
	enum pnft_verdict verdict;    /* the immediate verdict */
	char target[PNFT_NAME_MAX];   /* GOTO: chain; vmap: map name */
	bool tail;		      /* a terminal rule: stays after every non-tail rule */
};

struct pnft_chain {
	char name[PNFT_NAME_MAX]; /* chain name */
	bool base;		  /* a base chain: type filter hook forward, policy accept */
	int prio;		  /* base: priority */
	struct pnft_rule *rules;  /* rules in order (heap) */
	unsigned n;		  /* how many */
	/* read back only (pnft_diff's current side): kernel handles of the rules */
	uint64_t *handles;	  /* handles[i] of rules[i] (heap), NULL for a desired table */
};

/* An interval set of one family's addresses (flags interval, constant content). */
struct pnft_set {
	char name[PNFT_NAME_MAX];  /* "p4-HASH" / "p6-HASH" */
	uint8_t family;		   /* AF_INET or AF_INET6 */
	struct pol_range *r;	   /* normalized intervals (heap) */
	unsigned n;		   /* how many */
};

/* One element of an ifname verdict map: name → goto chain. */
struct pnft_elem {
	char ifname[PNFT_IFNAME_MAX]; /* the key */
	char chain[PNFT_NAME_MAX];    /* goto this chain */
};

struct pnft_map {
	char name[PNFT_NAME_MAX];  /* PNFT_MAP_EG / PNFT_MAP_IN */
	struct pnft_elem *e;	   /* elements, sorted by ifname (heap) */
	unsigned n;		   /* how many */
};

/* The whole table. */
struct pnft_table {
	bool present;		   /* the table exists (read back: false when absent) */
	struct pnft_chain *chains; /* base chains first, then per-endpoint chains (heap) */
	unsigned n_chains;	   /* how many */
	struct pnft_set *sets;	   /* sorted by name (heap) */
	unsigned n_sets;	   /* how many */
	struct pnft_map maps[2];   /* [0] eg, [1] in */
	bool has_map[2];	   /* read back: the map exists */
};

struct pnft_opts {
	bool fail_open;	     /* a kvnet veth without its chains is accepted (and logged by
			      * the caller), not dropped */
	bool nflog;	     /* the default deny of an isolated direction logs to nflog */
	uint16_t nflog_group; /* that group */
	uint32_t nflog_rate; /* at most this many packets a second per chain (>= 1) */
};

/* The table for rs: every endpoint of rs with an ifname gets its two chains and map
 * elements (endpoints without one are skipped). 0, -ENOMEM, -EINVAL (an interface name
 * too long) with e. out is freed with pnft_table_free() (also on error). */
int pnft_build(const struct pol_ruleset *rs, const struct pnft_opts *o,
	       struct pnft_table *out, struct err *e);
void pnft_table_free(struct pnft_table *t);

/* Lookups in a table; NULL when absent. */
const struct pnft_chain *pnft_chain_find(const struct pnft_table *t, const char *name);
const struct pnft_set *pnft_set_find(const struct pnft_table *t, const char *name);
/* True when map m (0 eg, 1 in) of t maps ifname to chain. */
bool pnft_map_has(const struct pnft_table *t, int m, const char *ifname, const char *chain);

/* The name of the interval set of peers' addresses of one family ("p4_HASH" /
 * "p6_HASH", a hash of exactly those intervals: same content, same name) into name, when
 * peers has any of that family. Returns how many intervals of family peers holds (0:
 * name untouched). Shared by the bridge table of MultiNetworkPolicy (agent/mnpnft.h). */
unsigned pnft_set_name(const struct pol_ranges *peers, uint8_t family,
		       char name[PNFT_NAME_MAX]);
/* Interval r as its first and last address (family r->family). */
void pnft_range_addrs(const struct pol_range *r, struct ip_addr *lo, struct ip_addr *hi);
/* Append to b the creation of interval set `name` (IPv4 or IPv6 addresses by family)
 * holding r[0..n). 0, -ENOMEM or the batch's error. */
int pnft_batch_set(struct nft_batch *b, const char *name, uint8_t family,
		   const struct pol_range *r, unsigned n);

/* The chain names of veth ifname for egress / ingress ("e-VETH", "i-VETH"). */
void pnft_chain_name(char out[PNFT_NAME_MAX], bool egress, const char *ifname);

/* The table as `nft -f` input (for logs, tests and people). Heap string or NULL. */
char *pnft_text(const struct pnft_table *t);

/* ---- the difference ------------------------------------------------------------------ */

enum pnft_op_kind {
	PNFT_OP_ADD_TABLE,   /* create the table */
	PNFT_OP_ADD_SET,     /* create set `set` with its elements */
	PNFT_OP_ADD_MAP,     /* create map `map` (ifname : verdict), empty */
	PNFT_OP_ADD_CHAIN,   /* create chain `chain` (base or regular, as in the desired) */
	PNFT_OP_FLUSH_CHAIN, /* remove every rule of chain `name` */
	PNFT_OP_ADD_RULE,    /* append rule to chain `name` */
	PNFT_OP_INSERT_RULE, /* insert rule at the head of chain `name` */
	PNFT_OP_ADD_ELEM,    /* add element `elem` to map `name` */
	PNFT_OP_DEL_ELEM,    /* delete element `elem` from map `name` */
	PNFT_OP_DEL_RULE,    /* delete the rule `handle` of chain `name` */
	PNFT_OP_DEL_CHAIN,   /* delete chain `name` (empty by then) */
	PNFT_OP_DEL_SET,     /* delete set `name` */
};

struct pnft_op {
	enum pnft_op_kind kind;	      /* what */
	char name[PNFT_NAME_MAX];     /* the chain / map / set it is about */
	const struct pnft_chain *chain; /* ADD_CHAIN: the desired chain (points into desired) */
	const struct pnft_set *set;     /* ADD_SET: the desired set (points into desired) */
	const struct pnft_rule *rule;   /* ADD/INSERT_RULE: the rule (points into desired) */
	struct pnft_elem elem;	      /* ADD/DEL_ELEM: the element */
	uint64_t handle;	      /* DEL_RULE: its kernel handle */
};

/* An ordered plan; empty when the kernel is as desired. */
struct pnft_plan {
	struct pnft_op *ops; /* in batch order (heap) */
	unsigned n;	     /* how many */
	unsigned cap;	     /* allocated */
};

/* Plan the batch that turns cur (read back from the kernel; present false: no table)
 * into want. A chain of cur without handles (a table kept in memory rather than read
 * back) is left alone when equal to want's and else replaced whole (flush, then every
 * rule added, in the same batch). Ops point into want (keep it alive while the plan is used). 0 or -ENOMEM
 * with e. */
int pnft_diff(const struct pnft_table *want, const struct pnft_table *cur,
	      struct pnft_plan *plan, struct err *e);
void pnft_plan_free(struct pnft_plan *p);

/* Apply plan p (from pnft_diff(want, cur)) to cur in memory, the way the kernel would:
 * the table a successful batch leaves. For tests and for keeping a cached copy of the
 * kernel's table. 0, -ENOENT (an op refers to something missing), -ENOMEM with e. */
int pnft_apply(struct pnft_table *cur, const struct pnft_plan *p, uint64_t *next_handle,
	       struct err *e);

/* True when a and b hold the same chains (names, rules by user data in order), sets
 * (names) and map elements. */
bool pnft_equal(const struct pnft_table *a, const struct pnft_table *b);

#endif
