/* nft — nf_tables spoken over netlink (NETLINK_NETFILTER) by kvnet itself: no libnftnl,
 * no exec of nft. Three parts:
 *
 *   batch    nft_batch_*, nft_table/chain/set/elem/rule_*: a typed builder of one
 *            transaction on one table of family inet. Messages go into a heap buffer
 *            that grows; the first build error is sticky and is what the commit returns.
 *   commit   nft_commit: the batch in ONE sendmsg(), framed by NFNL_MSG_BATCH_BEGIN and
 *            NFNL_MSG_BATCH_END, NLM_F_ACK on every message; every ack/error is matched
 *            by sequence number to the message that caused it, so the error names the
 *            object (and, with the kernel's attribute offset, the expression or element).
 *   read     nft_state_load: the table's chains, sets with elements and rules with their
 *            handles, user data (the kvnet id of each rule) and counters, so a reconciler
 *            can adopt an existing table and rewrite only what differs. The reply parser
 *            (nft_state_feed) is pure and fuzzed (test/fuzz/fuzz-nft.c).
 *
 * One batch is one nfnetlink transaction: the kernel applies all of it or none. The
 * kernel only treats a batch as a whole when BEGIN, the messages and END arrive in one
 * skb, i.e. one sendmsg(); a batch split over several sendmsg() calls would be several
 * transactions (or an aborted one). So a large batch is never split: nft_commit raises
 * the socket's send buffer (SO_SNDBUFFORCE, as root; SO_SNDBUF otherwise) to hold the
 * whole batch, and its receive buffer (SO_RCVBUFFORCE) to hold one ack per message,
 * before it sends. The kernel processes the batch inside sendmsg(), so every answer is
 * queued when sendmsg() returns; the answers are then read without blocking. A caller
 * that wants several smaller transactions builds several batches.
 *
 * Wire format of a batch (each part a netlink message, see net/nl.h):
 *
 *   +--------------------+----------------------------------------+------------------+
 *   | BATCH_BEGIN        | NFT_MSG_NEWTABLE / NEWCHAIN / NEWSET / | BATCH_END        |
 *   | nfgenmsg res_id =  | NEWSETELEM / NEWRULE / DEL... each:    | nfgenmsg         |
 *   | NFNL_SUBSYS_NFTA.. | nlmsghdr (type = 10 << 8 | msg,        |                  |
 *   | [NFNL_BATCH_GENID] | NLM_F_ACK), nfgenmsg family inet, attrs|                  |
 *   +--------------------+----------------------------------------+------------------+
 *
 * nf_tables attributes carry integers in network byte order (be32/be64); data values
 * (keys, compared bytes) are raw bytes as the packet has them.
 *
 * A rule is expressions run on registers: e.g. `ip saddr @peers tcp dport 80 accept` is
 *   meta load nfproto => reg1; cmp eq reg1 2 (ipv4)
 *   meta load l4proto => reg1; cmp eq reg1 6 (tcp)
 *   payload load network+12, 4 bytes => reg1; lookup reg1 in set peers
 *   payload load transport+2, 2 bytes => reg1; cmp eq reg1 0x0050
 *   immediate verdict accept
 * The nft_match_* helpers emit such sequences (with the nfproto / l4proto dependency
 * emitted once per rule); nft_expr_* are the single expressions beneath them.
 */
#ifndef KVNET_NET_NFT_H
#define KVNET_NET_NFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/nl.h"

struct err;
struct ip_addr;

/* Longest table, chain and set name the kernel takes, with the NUL (NFT_NAME_MAXLEN). */
#define NFT_NAME_MAX 256
/* Longest rule id (stored as the rule's comment in NFTA_RULE_USERDATA), with the NUL. */
#define NFT_ID_MAX 128
/* Longest set key: a concatenation of fields, each padded to 4 bytes, up to the
 * kernel's NFT_DATA_VALUE_MAXLEN (64: the sixteen 32-bit registers). */
#define NFT_KEY_MAX 64
/* Most fields of a concatenated key (nft_set_spec.fields): the key's type number holds
 * 6 bits per field in 32 bits, as nft reads it back. */
#define NFT_FIELDS_MAX 5
/* Room reserved for one message while it is built: a rule or one element message never
 * grows beyond it (element messages are closed at NFT_ELEMS_MAX bytes of elements). */
#define NFT_MSG_ROOM 69632
#define NFT_ELEMS_MAX 60000

/* ---- batch ---------------------------------------------------------------------- */

/* What the open message is. */
enum nft_open { NFT_OPEN_NONE, NFT_OPEN_RULE, NFT_OPEN_ELEMS };

/* One message of a batch, for the answer that refers to it. */
struct nft_bmsg {
	size_t off;	/* where its header starts in the batch buffer */
	uint32_t seq;	/* sequence number it was sent with */
	int rc;		/* the kernel's answer: 0 ack, -errno, 1 not answered yet */
	uint32_t bad_off; /* offset in it of the attribute the kernel blamed, 0 none */
	unsigned first;	/* element messages: number of their first element (1-based) */
	char what[120]; /* "rule ep-b #3 (kvnet:ab12)", "set peers: add elements 1-500" */
};

/* A transaction being built on one table of family inet. Initialise with
 * nft_batch_init, free with nft_batch_free; reuse with nft_batch_reset. */
struct nft_batch {
	char table[NFT_NAME_MAX]; /* the table every message names */
	uint8_t *buf;		  /* BATCH_BEGIN and the messages (heap) */
	size_t len;		  /* bytes of finished messages in buf */
	size_t cap;		  /* bytes allocated */
	struct nl_msg m;	  /* the open message, built in place in buf */
	enum nft_open open;	  /* what m is */
	size_t nest[2];		  /* the open nests of m (expressions / elements list) */
	char open_set[NFT_NAME_MAX]; /* the set of an open element message */
	int open_op;		  /* NFT_MSG_NEWSETELEM or DELSETELEM of the open elements */
	unsigned open_first;	  /* element number (1-based) the open message starts at */
	unsigned nelems;	  /* elements in the open message */
	unsigned nexprs;	  /* expressions in the open rule */
	uint8_t dep_nfproto;	  /* nfproto the open rule already matched, 0 none */
	uint8_t dep_l4proto;	  /* l4proto the open rule already matched, 0 none */
	struct nft_bmsg *msgs;	  /* one per message after BATCH_BEGIN (heap) */
	size_t nmsgs;		  /* messages */
	size_t msgcap;		  /* entries allocated */
	uint32_t next_set_id;	  /* NFTA_SET_ID of the next set added */
	unsigned elem_count;	  /* elements added or deleted so far (for descriptions) */
	unsigned rule_count;	  /* rules added so far (for descriptions) */
	int rc;			  /* first build error (-errno, sticky), 0 */
	char emsg[512];		  /* its text */
	uint32_t seq_begin;	  /* sequence number of BATCH_BEGIN at the last commit */
	int batch_rc;		  /* the kernel's answer to BATCH_BEGIN itself (genid, EPERM) */
	char ktext[200];	  /* extended-ack text of the first refusal, "" none */
	bool ktext_set;		  /* ktext belongs to the first refusal already */
	size_t failed;		  /* after a failed commit: index of the first message the
				   * kernel refused, or nmsgs when no message was named */
	uint8_t family;		  /* NFPROTO_ of every message; 0: NFPROTO_INET */
};

/* Start an empty batch on table `name` (family inet). Returns 0, -EINVAL for a name
 * that is empty or too long, -ENOMEM. */
int nft_batch_init(struct nft_batch *b, const char *table, struct err *e);
/* Make the batch's table one of family NFPROTO_BRIDGE / NFPROTO_NETDEV / NFPROTO_INET
 * (the default) before anything is added. In the bridge family the IPv4/IPv6 dependency
 * of address matches (nft_match_nfproto) is the ethertype (meta protocol), as `nft`
 * writes it there. 0 or -EAFNOSUPPORT. */
int nft_batch_family(struct nft_batch *b, uint8_t family);
/* Drop every message (keep the buffer and table name). */
void nft_batch_reset(struct nft_batch *b);
void nft_batch_free(struct nft_batch *b);
/* Messages in the batch (the open one counted once it is closed). */
size_t nft_batch_count(const struct nft_batch *b);

/* Table operations. ADD creates it or leaves it as it is; CREATE fails with -EEXIST
 * when it exists; DELETE removes it with everything in it (-ENOENT when absent);
 * FLUSH removes every rule of every chain, keeping chains and sets. */
enum nft_tableop { NFT_TABLE_ADD, NFT_TABLE_CREATE, NFT_TABLE_DELETE, NFT_TABLE_FLUSH };
int nft_table(struct nft_batch *b, enum nft_tableop op);

/* Chains. A base chain has a hook; a regular chain (hook NFT_HOOK_NONE) is reached by
 * jump/goto or a verdict map. */
enum nft_hook {
	NFT_HOOK_NONE,
	NFT_HOOK_PREROUTING,
	NFT_HOOK_INPUT,
	NFT_HOOK_FORWARD,
	NFT_HOOK_OUTPUT,
	NFT_HOOK_POSTROUTING,
};
struct nft_chain_spec {
	const char *name;  /* chain name */
	enum nft_hook hook; /* NFT_HOOK_NONE: a regular chain */
	int32_t priority;  /* base chain priority (0 = filter) */
	bool drop;	   /* base chain policy: drop (else accept) */
};
/* Add a chain (no error when it exists: a base chain's policy is then updated). */
int nft_chain_add(struct nft_batch *b, const struct nft_chain_spec *c);
/* Delete a chain (it must hold no rules and no jump may point to it in the result). */
int nft_chain_del(struct nft_batch *b, const char *name);
/* Delete every rule of the chain. */
int nft_chain_flush(struct nft_batch *b, const char *name);

/* Set keys. Keys are raw bytes as in the packet: addresses in network order, ports
 * big-endian, interface names NUL-padded to 16 bytes. */
enum nft_keytype {
	NFT_KEY_IPV4,	  /* ipv4_addr, 4 bytes */
	NFT_KEY_IPV6,	  /* ipv6_addr, 16 bytes */
	NFT_KEY_SERVICE,  /* inet_service (port), 2 bytes big-endian */
	NFT_KEY_IFNAME,	  /* ifname, 16 bytes */
	NFT_KEY_PROTO,	  /* inet_proto, 1 byte */
	NFT_KEY_PROTO_SERVICE, /* inet_proto . inet_service, a concatenation of 8 bytes: the
				* protocol in byte 0, the port big-endian in bytes 4-5 (each
				* field padded to a 32-bit register); with interval, port
				* ranges per protocol ("tcp . 8000-8080") */
};
/* The fields of a concatenated key, each loaded from the packet by nft_update and
 * stored in the key padded to a 32-bit register (ifname 16 bytes, an IPv4 address 4, an
 * IPv6 address 16, the protocol 1 -> 4, a port 2 -> 4, big-endian in the first two). */
enum nft_field {
	NFT_F_IIFNAME, /* meta iifname */
	NFT_F_OIFNAME, /* meta oifname */
	NFT_F_SADDR4,  /* ip saddr */
	NFT_F_DADDR4,  /* ip daddr */
	NFT_F_SADDR6,  /* ip6 saddr */
	NFT_F_DADDR6,  /* ip6 daddr */
	NFT_F_L4PROTO, /* meta l4proto */
	NFT_F_SPORT,   /* th sport (needs an l4proto match of a protocol with ports first) */
	NFT_F_DPORT,   /* th dport (idem) */
};
/* Bytes field f takes in a concatenated key (padded), and in the packet (unpadded). */
unsigned nft_field_len(enum nft_field f);

struct nft_set_spec {
	const char *name;      /* set name */
	enum nft_keytype key;  /* key type (ignored when nfields > 0) */
	bool interval;	       /* ranges (CIDR blocks, port ranges) */
	bool vmap;	       /* a verdict map: each element carries a verdict */
	const enum nft_field *fields; /* nfields > 0: the key is this concatenation */
	uint8_t nfields;       /* fields of the key, 0: key is `key` (1..NFT_FIELDS_MAX) */
	bool dynamic;	       /* filled from the data path (nft_update): `flags dynamic` */
	uint64_t timeout_ms;   /* elements expire this long after their last update, 0 never */
	uint32_t size;	       /* most elements (the kernel refuses more), 0: no bound */
	bool counter;	       /* each element carries a counter (packets, bytes) */
};
int nft_set_add(struct nft_batch *b, const struct nft_set_spec *s);
/* Delete a set (no rule may still refer to it in the result). */
int nft_set_del(struct nft_batch *b, const char *name);
/* Delete every element of a set. */
int nft_set_flush(struct nft_batch *b, const char *name);

/* Verdicts. */
enum nft_verdict { NFT_V_ACCEPT, NFT_V_DROP, NFT_V_JUMP, NFT_V_GOTO, NFT_V_RETURN, NFT_V_CONTINUE };

/* One set element: key (len bytes: the set's key length), for an interval set key_end
 * too (the last value of the range, inclusive; equal to key for a single value), for a
 * verdict map the verdict (and chain for NFT_V_JUMP/GOTO). */
struct nft_elem {
	uint8_t key[NFT_KEY_MAX];     /* first value */
	uint8_t key_end[NFT_KEY_MAX]; /* last value (interval sets only) */
	uint8_t len;		      /* key bytes */
	enum nft_verdict verdict;     /* verdict maps only */
	const char *chain;	      /* JUMP/GOTO target (verdict maps only) */
};
/* Add (del = false) or delete n elements of the set `s` describes (the spec it was
 * created with: an interval set takes ranges, each a start element and an end element
 * at key_end + 1, or no end element when key_end is the largest value; a verdict map's
 * elements carry their verdicts). Consecutive calls on the same set pack elements into
 * as few messages as fit. */
int nft_elems(struct nft_batch *b, const struct nft_set_spec *s, bool del,
	      const struct nft_elem *el, size_t n);

/* Helpers that fill an element. nft_elem_ifname: -EINVAL when the name does not fit. */
void nft_elem_addr(struct nft_elem *el, const struct ip_addr *lo, const struct ip_addr *hi);
void nft_elem_port(struct nft_elem *el, uint16_t lo, uint16_t hi);
void nft_elem_proto_port(struct nft_elem *el, uint8_t proto, uint16_t lo, uint16_t hi);
int nft_elem_ifname(struct nft_elem *el, const char *ifname, enum nft_verdict v,
		    const char *chain);

/* Rules. nft_rule_begin opens a rule in `chain` carrying `id` (up to NFT_ID_MAX - 1
 * bytes; stored as the rule's comment in its user data, which `nft list` shows and
 * nft_state_load reads back; NULL for none); the expressions follow; nft_rule_end
 * closes it. op: APPEND adds at the end of the chain, INSERT at its start, REPLACE
 * rewrites the rule `handle` in place (atomically; handle is ignored otherwise). */
enum nft_ruleop { NFT_RULE_APPEND, NFT_RULE_INSERT, NFT_RULE_REPLACE };
int nft_rule_begin(struct nft_batch *b, enum nft_ruleop op, const char *chain,
		   uint64_t handle, const char *id);
int nft_rule_end(struct nft_batch *b);
/* Delete rule `handle` of `chain`. */
int nft_rule_del(struct nft_batch *b, const char *chain, uint64_t handle);

/* What a match compares. */
enum nft_dir { NFT_SRC, NFT_DST };
enum nft_meta { NFT_IIFNAME, NFT_OIFNAME };

/* Matches (each emits the expressions it needs into the open rule):
 *   ifname   meta iifname/oifname == name ("veth*" style prefixes: a trailing '*')
 *   nfproto  meta nfproto == NFPROTO_IPV4 / NFPROTO_IPV6
 *   l4proto  meta l4proto == proto (IPPROTO_TCP ...)
 *   addr     ip/ip6 saddr/daddr == prefix (plen < 32/128: masked), neg: !=
 *   addr_set ip/ip6 saddr/daddr (family AF_INET/AF_INET6) in @set (neg: not in)
 *   port     th sport/dport == lo (lo == hi) or in lo-hi; needs an l4proto match first
 *   port_set th sport/dport in @set
 *   proto_port_set  meta l4proto . th sport/dport in @set (an NFT_KEY_PROTO_SERVICE set)
 *   ct       ct state & bits != 0 (NFT_CTS_* bits below)
 *   vmap     meta iifname/oifname vmap @map: the map's verdict ends the rule */
int nft_match_ifname(struct nft_batch *b, enum nft_meta which, const char *name);
int nft_match_nfproto(struct nft_batch *b, uint8_t nfproto);
int nft_match_l4proto(struct nft_batch *b, uint8_t proto);
int nft_match_addr(struct nft_batch *b, enum nft_dir dir, const struct ip_addr *a,
		   uint8_t plen, bool neg);
int nft_match_addr_set(struct nft_batch *b, enum nft_dir dir, int family, const char *set,
		       bool neg);
int nft_match_port(struct nft_batch *b, enum nft_dir dir, uint16_t lo, uint16_t hi);
int nft_match_port_set(struct nft_batch *b, enum nft_dir dir, const char *set);
int nft_match_proto_port_set(struct nft_batch *b, enum nft_dir dir, const char *set);
#define NFT_CTS_INVALID 0x01u
#define NFT_CTS_ESTABLISHED 0x02u
#define NFT_CTS_RELATED 0x04u
#define NFT_CTS_NEW 0x08u
#define NFT_CTS_UNTRACKED 0x40u
int nft_match_ct_state(struct nft_batch *b, uint32_t bits);
int nft_vmap(struct nft_batch *b, enum nft_meta which, const char *map);

/* The dynset statement `update @set { f1 . f2 ... counter }`: loads the set's key
 * fields (s->fields, s->nfields > 0) from the packet into consecutive 32-bit registers
 * and adds the key to the dynamic set s (or refreshes its timeout), with a counter per
 * element when s->counter. When the set is full (s->size elements) the statement stops
 * the rule there, so the rule's later statements run only for recorded packets. The
 * rule must match the protocol family (nft_match_nfproto) and, for ports, a protocol
 * with ports (nft_match_l4proto) first. -EINVAL for a set without fields. */
int nft_update(struct nft_batch *b, const struct nft_set_spec *s);

/* Statements: a counter (packets, bytes), a log line (prefix; group >= 0: to nflog
 * group, else the kernel log), a verdict (chain for JUMP/GOTO). */
int nft_counter(struct nft_batch *b);
int nft_log(struct nft_batch *b, const char *prefix, int group);
/* A rate limit (a match): the rule goes on while at most per_second packets per second
 * (with a burst of burst more) have passed it, and stops there otherwise. -EINVAL for
 * a rate of 0. */
int nft_limit(struct nft_batch *b, uint64_t per_second, uint32_t burst);
int nft_verdict(struct nft_batch *b, enum nft_verdict v, const char *chain);

/* The single expressions beneath the matches, for what they do not cover. Registers:
 * NFT_REG_1..4 (16 bytes each). cmp ops: NFT_CMP_EQ ... from <linux/netfilter/nf_tables.h>. */
int nft_expr_meta(struct nft_batch *b, uint32_t key, uint32_t dreg);
int nft_expr_payload(struct nft_batch *b, uint32_t base, uint32_t offset, uint32_t len,
		     uint32_t dreg);
int nft_expr_cmp(struct nft_batch *b, uint32_t sreg, uint32_t op, const void *data,
		 size_t len);
int nft_expr_range(struct nft_batch *b, uint32_t sreg, bool neg, const void *from,
		   const void *to, size_t len);
int nft_expr_bitwise(struct nft_batch *b, uint32_t sreg, uint32_t dreg, const void *mask,
		     const void *xor, size_t len);
int nft_expr_lookup(struct nft_batch *b, const char *set, uint32_t sreg, bool map, bool neg);
int nft_expr_ct(struct nft_batch *b, uint32_t key, uint32_t dreg);

/* ---- commit --------------------------------------------------------------------- */

/* Send the batch as one transaction on s (a NETLINK_NETFILTER socket from nl_open) and
 * read the answer to every message. genid != 0: the kernel refuses the batch (-ERESTART)
 * when the ruleset generation is no longer genid (what nft_state_load saw), so a change
 * made meanwhile by someone else is not overwritten blindly.
 * Returns 0 when the kernel applied the whole batch, else -errno and nothing changed;
 * e says which message failed and why ("nft kvnet: rule ep-b #2 (id): add: expression 3
 * (lookup): No such file or directory"), b->failed is its index. A build error of the
 * batch is returned without sending anything. The batch can be committed again. */
int nft_commit(struct nl_sock *s, struct nft_batch *b, uint32_t genid, struct err *e);

/* The answers of one commit, datagram by datagram (pure; nft_commit uses it and the
 * fuzzer feeds it): matches each NLMSG_ERROR by sequence number to b->msgs[] and sets
 * its rc. Returns 0, or -EBADMSG/-ESRCH/-EPROTO for a datagram that is malformed, for
 * another port or for no message of the batch (e says which). */
int nft_acks_feed(struct nft_batch *b, uint32_t portid, const void *buf, size_t len,
		  struct err *e);
/* After the answers: 0 when every message was acked; else the first refusal as -errno
 * with e naming the message (b->failed set); -EPROTO when answers are missing. */
int nft_acks_result(struct nft_batch *b, struct err *e);

/* The ruleset generation (NFT_MSG_GETGEN). */
int nft_genid(struct nl_sock *s, uint32_t *genid, struct err *e);

/* ---- read ----------------------------------------------------------------------- */

struct nft_chain_info {
	char name[NFT_NAME_MAX]; /* chain name */
	uint64_t handle;	 /* kernel handle */
	bool base;		 /* a base chain (has a hook) */
	enum nft_hook hook;	 /* its hook, NFT_HOOK_NONE for a regular chain */
	int32_t priority;	 /* base chain priority */
	bool drop;		 /* base chain policy drop */
	char type[16];		 /* base chain type ("filter") */
	uint32_t use;		 /* references to it (jumps, map elements) */
};

struct nft_elem_info {
	uint8_t key[NFT_KEY_MAX]; /* key bytes */
	uint8_t len;		  /* key length */
	bool end;		  /* an interval end element (NFT_SET_ELEM_INTERVAL_END) */
	uint8_t key_end[NFT_KEY_MAX]; /* concatenation ranges: the last key (KEY_END) */
	bool has_key_end;	  /* key_end is set */
	bool has_verdict;	  /* a map element with a verdict */
	int32_t verdict;	  /* its kernel verdict code (NF_ACCEPT, NFT_JUMP ...) */
	char chain[NFT_NAME_MAX]; /* JUMP/GOTO target */
	bool has_counter;	  /* the element carries a counter (a set with `counter`) */
	uint64_t packets;	  /* its counter */
	uint64_t bytes;		  /* its counter */
	uint64_t expires_ms;	  /* time left before it expires (timeout sets), 0 none */
};

struct nft_set_info {
	char name[NFT_NAME_MAX];     /* set name */
	uint64_t handle;	     /* kernel handle */
	uint32_t flags;		     /* NFT_SET_INTERVAL, NFT_SET_MAP ... */
	uint32_t key_type;	     /* userspace type number (7 ipv4_addr ...) */
	uint32_t key_len;	     /* key bytes */
	uint32_t data_type;	     /* maps: NFT_DATA_VERDICT ... */
	uint32_t size;		     /* most elements (NFTA_SET_DESC_SIZE), 0 no bound */
	uint64_t timeout_ms;	     /* default element timeout, 0 none */
	char expr[16];		     /* name of its per-element expression ("counter"), "" */
	struct nft_elem_info *elems; /* its elements, in kernel order (heap) */
	size_t nelems;		     /* how many */
	size_t elcap;		     /* allocated */
};

struct nft_rule_info {
	char chain[NFT_NAME_MAX]; /* the chain it is in */
	uint64_t handle;	  /* kernel handle (for REPLACE / DELETE) */
	char id[NFT_ID_MAX];	  /* the kvnet id from its user data comment, "" none */
	unsigned nexprs;	  /* expressions */
	char exprs[160];	  /* their names, comma-separated ("meta,cmp,counter") */
	bool has_counter;	  /* a counter expression is in it */
	uint64_t packets;	  /* its counter */
	uint64_t bytes;		  /* its counter */
};

/* What the kernel holds in one table. */
struct nft_state {
	char table[NFT_NAME_MAX];    /* the table asked for */
	bool exists;		     /* it exists */
	uint64_t handle;	     /* its handle */
	uint32_t genid;		     /* generation when it was read */
	struct nft_chain_info *chains; /* (heap) */
	size_t nchains, chcap;	     /* count, allocated */
	struct nft_set_info *sets;   /* (heap) */
	size_t nsets, setcap;	     /* count, allocated */
	struct nft_rule_info *rules; /* in chain order (heap) */
	size_t nrules, rulecap;	     /* count, allocated */
	uint8_t family;		     /* NFPROTO_ of the table; 0: NFPROTO_INET */
};

/* Prepare st for table `table` (empty; -EINVAL when the name does not fit). */
int nft_state_init(struct nft_state *st, const char *table);
void nft_state_free(struct nft_state *st);
/* Read (and feed) the table of family NFPROTO_BRIDGE / NETDEV / INET instead of inet;
 * after nft_state_init. 0 or -EAFNOSUPPORT. */
int nft_state_family(struct nft_state *st, uint8_t family);

/* Read the table: chains, sets and their elements, rules (a consistent view: the dump
 * is redone when the generation changed while it was read, up to a few times). A table
 * that does not exist is st->exists = false and returns 0. */
int nft_state_load(struct nl_sock *s, struct nft_state *st, struct err *e);

/* Read one set of the table and its elements (with their counters and expiry), for
 * reading a dynamic set often. st is cleared first; st->exists is whether the set came
 * back (an absent table or set is 0 with no sets). */
int nft_set_load(struct nl_sock *s, struct nft_state *st, const char *set, struct err *e);

/* Read only the table's rules (one GETRULE dump: handles, ids and counters), for
 * reading counters often without the cost of every set element. st is cleared first;
 * st->exists says whether any rule of the table came back (an absent table is 0 with
 * no rules). */
int nft_rules_load(struct nl_sock *s, struct nft_state *st, struct err *e);

/* Add one kernel message (NFT_MSG_NEWTABLE/NEWCHAIN/NEWSET/NEWSETELEM/NEWRULE as a dump
 * hands it out) to st; messages of other tables or families are skipped. Pure: the
 * loader and the fuzzer use it. -EBADMSG with e for a malformed message, -ENOMEM. */
int nft_state_feed(struct nft_state *st, const struct nl_msgv *m, struct err *e);

/* Lookups in a loaded state; NULL when absent. */
const struct nft_chain_info *nft_state_chain(const struct nft_state *st, const char *name);
const struct nft_set_info *nft_state_set(const struct nft_state *st, const char *name);
const struct nft_rule_info *nft_state_rule(const struct nft_state *st, const char *id);

#endif
