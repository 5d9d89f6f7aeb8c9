/* mnpnft — the nf_tables design of MultiNetworkPolicy on L2 bridge ports (pure: no
 * kernel, no clock), and its batch.
 *
 * Where: `table bridge kvnet-l2`, not netdev. An L2 access port (cni/l2.c: the host side
 * of a VM's net1, named like a veth, "kv" + 11 hex digits) is a bridge port; traffic
 * between two VMs of one bridge never leaves the bridge, so only the bridge family's
 * forward hook sees it with both ports known (iifname = the sending port, oifname = the
 * receiving one, once per port for flooded frames). A netdev chain sits on one device's
 * ingress (and egress) only and would need a chain per port per direction, with no
 * notion of the receiving port for frames going out of the other.
 *
 * Stateless: `ct state` in a bridge table needs nf_conntrack_bridge, which this kernel
 * does not have (CONFIG_NF_CONNTRACK_BRIDGE unset; the kernel refuses such a rule with
 * EPROTO). So the answers to allowed traffic get reply rules instead: in the opposite
 * direction's chain, the same peers and ports with source and destination swapped, and
 * for TCP only segments that do not open a connection (not SYN without ACK). A port
 * whose other direction is not isolated lets out (or in) every TCP segment that is not
 * a connection opening: its own connections keep working, nobody can open a new one to
 * it. UDP and SCTP answers pass only where a rule names them (documented limitation).
 *
 *   table bridge kvnet-l2
 *     map eg { ifname : verdict }   port → goto e_PORT (what the VM sends)
 *     map in { ifname : verdict }   port → goto i_PORT (what the VM receives)
 *     set p4_HASH / p6_HASH         interval sets of peer addresses, named by content
 *     chain egress   hook forward priority 0, policy accept:
 *         iifname "kvt-*" accept     iifname "kvu-*" accept    (trunk side, uplink)
 *         iifname != "kv*" accept                              (not kvnet's)
 *         iifname vmap @eg
 *         counter drop               (a kvnet port without its rules: fail closed)
 *     chain ingress  hook forward priority 1: the same with oifname and @in
 *     chain e_PORT / i_PORT: not isolated: counter accept; isolated:
 *         ARP of the port's own address (egress: sender, ingress: target) accept
 *         ICMPv6 router/neighbour solicitation and advertisement accept
 *         one rule per (allow rule, family, port range): [ip daddr @p4_HASH]
 *             [meta l4proto tcp th dport 443] counter accept
 *         reply rules of the other direction (th sport, TCP not opening)
 *         counter drop
 *
 * Every rule carries user data "HASH16 TEXT" (a hash of its full content, then the
 * text), so the table read back from the kernel is recognised: when every chain holds
 * the desired rules in order and the sets are the desired ones, nothing is written (a
 * restarted agent adopts the table); otherwise one transaction deletes the table and
 * writes it again (the kernel switches from the old to the new rules at once).
 */
#ifndef KVNET_AGENT_MNPNFT_H
#define KVNET_AGENT_MNPNFT_H

#include "net/nft.h"
#include "policy/policy.h"

#include <stdbool.h>
#include <stdint.h>

struct err;

#define MNFT_TABLE "kvnet-l2"	   /* the table (family bridge) */
#define MNFT_CHAIN_EGRESS "egress" /* base chain, hook forward, priority 0 */
#define MNFT_CHAIN_INGRESS "ingress" /* base chain, hook forward, priority 1 */
#define MNFT_MAP_EG "eg"	   /* iifname → goto e_PORT */
#define MNFT_MAP_IN "in"	   /* oifname → goto i_PORT */
#define MNFT_NAME_MAX 32	   /* chain / set names, with the NUL */

/* What a rule matches, each optional, in this order; then counter and verdict. */
struct mnft_rule {
	char id[NFT_ID_MAX];	   /* "HASH16 TEXT" */
	char text[NFT_ID_MAX];	   /* TEXT alone (nft syntax, for people) */
	enum nft_meta ifwhich;	   /* interface match / vmap: iifname or oifname */
	char ifname[16];	   /* interface name match ("kvt-*" prefix), "" none */
	bool if_neg;		   /* the interface match is != */
	bool vmap;		   /* ifwhich vmap @target: the map's verdict */
	uint16_t ethertype;	   /* meta protocol (ETH_P_ARP ...), 0 any */
	bool arp_own;		   /* ARP: sender (arp_spa) / target address == own */
	bool arp_spa;		   /* arp_own matches the sender, else the target */
	struct ip_addr own;	   /* arp_own: the port's IPv4 address */
	uint8_t icmp6;		   /* ICMPv6 type (needs ethertype IPv6), 0 none */
	char set[MNFT_NAME_MAX];   /* address set ("" none) */
	uint8_t set_family;	   /* AF_INET / AF_INET6 of the set */
	bool saddr;		   /* set matched against the source, else the destination */
	uint8_t l4proto;	   /* meta l4proto, 0 any */
	bool l4_not_tcp;	   /* meta l4proto != tcp (and l4proto 0) */
	bool sport;		   /* the port range is th sport, else th dport */
	uint16_t plo, phi;	   /* port range (both 0: any; needs l4proto) */
	bool tcp_not_open;	   /* tcp flags & (syn|ack) != syn (needs l4proto tcp) */
	bool counter;		   /* a counter before the verdict */
	enum nft_verdict verdict;  /* accept / drop (vmap: none) */
	char target[MNFT_NAME_MAX]; /* vmap: the map */
};

struct mnft_chain {
	char name[MNFT_NAME_MAX]; /* chain name */
	bool base;		  /* type filter hook forward, policy accept */
	int prio;		  /* base: priority */
	struct mnft_rule *rules;  /* rules in order (heap) */
	unsigned n;		  /* how many */
};

struct mnft_set {
	char name[MNFT_NAME_MAX]; /* "p4_HASH" / "p6_HASH" */
	uint8_t family;		  /* AF_INET / AF_INET6 */
	struct pol_range *r;	  /* normalized intervals (heap) */
	unsigned n;		  /* how many */
};

struct mnft_elem {
	char ifname[16];	    /* the port */
	char chain[MNFT_NAME_MAX]; /* goto this chain */
};

struct mnft_table {
	struct mnft_chain *chains; /* base chains first (heap) */
	unsigned n_chains;	   /* how many */
	struct mnft_set *sets;	   /* sorted by name (heap) */
	unsigned n_sets;	   /* how many */
	struct mnft_elem *map[2];  /* [0] eg, [1] in: elements sorted by port (heap) */
	unsigned n_map[2];	   /* how many */
};

/* The table for rss[0..n_rs) (each compiled on the pol_world_net() view of one NAD):
 * every endpoint with an ifname (its bridge port) gets its two chains and map elements;
 * its IPv4 addresses are the "own" addresses of its ARP rules. 0, -ENOMEM, -EINVAL (a
 * port name too long, or a port in two rule sets) with e; out is freed with
 * mnft_table_free() (also on error). */
int mnft_build(const struct pol_ruleset *rss, unsigned n_rs, struct mnft_table *out,
	       struct err *e);
void mnft_table_free(struct mnft_table *t);
const struct mnft_chain *mnft_chain_find(const struct mnft_table *t, const char *name);

/* True when the kernel's table st (loaded with family NFPROTO_BRIDGE) is t: the same
 * chains with the same rule ids in order, the same sets, the table present. */
bool mnft_matches(const struct mnft_table *t, const struct nft_state *st);

/* Append to b (family bridge, table MNFT_TABLE) the transaction that makes the kernel's
 * table t: delete the table when exists, then create it with everything. 0 or the
 * batch's error. */
int mnft_batch(const struct mnft_table *t, bool exists, struct nft_batch *b);

#endif
