/* l2flows — flow observations for L2 ports (VM interfaces in kvnet's L2 bridges), part
 * of the flows module (agent/flows.h): conntrack does not see bridged traffic (no
 * nf_conntrack_bridge), so kvnet counts it itself in an nf_tables table of its own:
 *
 *   table bridge kvnet-l2flows
 *     set tcp4/udp4/tcp6/udp6  iifname . saddr . daddr . sport . dport, dynamic, timeout,
 *                              size [flows] max_flows, a counter per element
 *     set syn4/syn6            the same key, no counter: TCP SYN without ACK (who opened)
 *     chain fwd (hook forward, priority 100: after the policy chains, so only accepted
 *                frames are counted)
 *       ip  tcp flags & (syn|ack) == syn update @syn4 { ... }
 *       ip  tcp update @tcp4 { ... counter } accept       (and udp, and ip6)
 *       ip  tcp counter comment "full-tcp4"               (frames a full set did not take)
 *
 * Every frame a bridge forwards is keyed by its ingress port. At each window the sets
 * are read (nft_set_load) and each element is matched to a VM port (a link enslaved to a
 * bridge whose alias is kvnet's l2_port_id): the VM sent it when its ingress port is the
 * VM's port, the VM receives it when its destination is one of the VM's addresses. The
 * counters' growth since the last window is the observation; who opened a TCP connection
 * is the side whose SYN is in the syn set, else (UDP, or the SYN aged out) the side with
 * the higher port. Memory: the last counters of at most 4 x max_flows elements.
 */
#ifndef KVNET_AGENT_L2FLOWS_H
#define KVNET_AGENT_L2FLOWS_H

#include "flows/flows.h"
#include "l2/net.h"
#include "lib/ip.h"
#include "net/nft.h"

#include <stdbool.h>
#include <stdint.h>

struct err;
struct nl_sock;

#define L2F_TABLE "kvnet-l2flows" /* the table's name (family bridge) */
#define L2F_PORTS_MAX 64	  /* VM ports looked at per window */

/* One VM port of this node. */
struct l2f_port {
	char name[16];		/* its interface */
	struct l2_port_id id;	/* who it is (its alias) */
};

/* One observation: what a VM port's flow did since the last window. */
struct l2f_obs {
	const struct l2f_port *port; /* the VM's port */
	struct flow_tuple t;	     /* the connection, original direction */
	uint64_t orig_bytes, orig_pkts;	  /* growth of the original direction */
	uint64_t reply_bytes, reply_pkts; /* growth of the reply direction */
	bool vm_opened;		     /* the VM is the original source */
	bool started;		     /* first seen in this window */
};

/* The table's counters between windows. */
struct l2flows;

/* Bound to max elements per set, elements expire after timeout_s without traffic. NULL
 * with e (ENOMEM, EINVAL for max 0). */
struct l2flows *l2flows_new(uint32_t max, uint32_t timeout_s, struct err *e);
void l2flows_free(struct l2flows *lf);

/* (Re)create the table on s (NETLINK_NETFILTER) in one transaction. 0 or -errno, e. */
int l2flows_program(struct l2flows *lf, struct nl_sock *s, struct err *e);

/* The VM ports of this node from a link dump on rt (NETLINK_ROUTE): links with a
 * master whose alias is kvnet's. Fills ports[0..*n) (at most L2F_PORTS_MAX). */
int l2flows_ports(struct nl_sock *rt, struct l2f_port *ports, unsigned *n, struct err *e);

/* Read the sets on s and call fn for each flow of ports[0..n) whose counters grew.
 * *full gets the frames the full sets did not take since the last call. 0 or -errno
 * with e (nothing is called then). */
int l2flows_collect(struct l2flows *lf, struct nl_sock *s, const struct l2f_port *ports,
		    unsigned n, void (*fn)(void *arg, const struct l2f_obs *o), void *arg,
		    uint64_t *full, struct err *e);

/* Pure part of l2flows_collect (unit-tested): a window is l2flows_begin, then
 * l2flows_feed per loaded counting set (family AF_INET / AF_INET6, protocol proto; syn
 * the matching syn set or NULL), then l2flows_end (the counters read become the ones
 * the next window's growth is measured from; elements not fed are forgotten). */
void l2flows_begin(struct l2flows *lf);
void l2flows_end(struct l2flows *lf);
void l2flows_feed(struct l2flows *lf, const struct nft_set_info *set,
		  const struct nft_set_info *syn, int family, uint8_t proto,
		  const struct l2f_port *ports, unsigned n,
		  void (*fn)(void *arg, const struct l2f_obs *o), void *arg);

#endif
