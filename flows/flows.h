/* flows — flow records per endpoint, aggregated and bounded (pure: no I/O, no clock).
 *
 * The agent's flow module (issue #14) feeds this table with what conntrack reports
 * (net/ct.h events: new, update with accounting, destroy) and, on L2 ports, with counter
 * deltas. A flow is aggregated to the key
 *
 *   (endpoint, direction, peer address, port, protocol)
 *
 * where the endpoint is a local VM or pod (by its identity "NS/NAME" and kind, so a VM's
 * flows follow it across migrations), direction is what the endpoint did (egress: it
 * opened the connection; ingress: a peer did), port is the service port (the
 * destination port of the original direction: for egress the peer's, for ingress the
 * endpoint's own), and the peer is the other side as the endpoint sees it (for a
 * connection the endpoint opened to a DNAT-ed Service address, the Service address:
 * what the VM's configuration names).
 *
 * Bounded: the table holds at most `max_flows` records (its memory is allocated once, at
 * flow_table_new); a new key that does not fit is dropped and counted (flow_stats), never
 * evicting what is already aggregated in the current window. flow_table_flush() hands
 * every record of the window to a callback and starts the next window empty.
 *
 * Records serialise to one JSON line each (flow_json), with fields close to Calico's flow
 * logs:
 *   {"start_time":S,"end_time":S,"reporter":"src|dst","action":"allow|deny",
 *    "source_ip":..,"source_name":..,"source_namespace":..,"source_kind":..,
 *    "dest_ip":..,"dest_name":..,"dest_namespace":..,"dest_kind":..,
 *    "dest_port":N,"proto":"tcp|udp|sctp|icmp|icmpv6|N","policies":[..],
 *    "policies_cut":N,"reason":R,
 *    "bytes_in":N,"bytes_out":N,"packets_in":N,"packets_out":N,
 *    "num_flows":N,"num_flows_started":N,"num_flows_completed":N,
 *    "first_seen_ms":N,"last_seen_ms":N,"direction":"egress|ingress","node":..}
 * where "in" and "out" are seen from the endpoint (reporter "src" for egress, "dst" for
 * ingress). "policies" and "reason" say why the endpoint's side let the flow through or
 * dropped it (struct flow_pols): an allowed flow names the NetworkPolicies ("NS/NAME")
 * whose rules admit it for the endpoint's direction (reason "policy"), or says that no
 * policy isolates that direction ("no-policy"); a denied one says which direction's
 * default deny dropped it ("ingress-default-deny" / "egress-default-deny") and names the
 * policies isolating that direction; "unenforced" when the node enforces no policy,
 * "unknown" when nobody could tell (e.g. the endpoint's pod was not known yet). At most
 * FLOW_POLICIES names are kept; "policies_cut" counts those left out.
 */
#ifndef KVNET_FLOWS_FLOWS_H
#define KVNET_FLOWS_FLOWS_H

#include "lib/ip.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct err;
struct json_w;

#define FLOW_NAME_MAX 253   /* a Kubernetes name or "NS/NAME" part */
#define FLOW_EPS_MAX 1024   /* endpoint identities one window holds (a node's pods and VMs)
			     * at most; observations of more are dropped (stats.dropped) */
#define FLOW_POLICY_MAX 128 /* "NS/NAME" of a policy */
#define FLOW_POLICIES 4	    /* policies named per record or row (more are counted) */

enum flow_dir {
	FLOW_EGRESS,  /* the endpoint opened it */
	FLOW_INGRESS, /* a peer opened it */
};

enum flow_verdict {
	FLOW_ALLOW, /* let through (by policy, or no policy selects the endpoint) */
	FLOW_DENY,  /* dropped by policy */
};

enum flow_kind {
	FLOW_KIND_VM,	    /* a KubeVirt VM (identity: the VMI) */
	FLOW_KIND_POD,	    /* an ordinary pod */
	FLOW_KIND_NODE,	    /* a cluster node (peers only) */
	FLOW_KIND_EXTERNAL, /* anything else (peers only) */
};

/* Why the endpoint's side decided as it did (see the JSON fields above). */
enum flow_reason {
	FLOW_R_UNKNOWN,	     /* nobody could tell */
	FLOW_R_POLICY,	     /* allowed by the named policies' rules */
	FLOW_R_NO_POLICY,    /* allowed: no policy isolates the endpoint's direction */
	FLOW_R_DEFAULT_DENY, /* denied by the default deny of the record's direction */
	FLOW_R_UNENFORCED,   /* the node enforces no policy */
};

/* The policies behind a verdict, bounded. */
struct flow_pols {
	enum flow_reason reason;		     /* why */
	char name[FLOW_POLICIES][FLOW_POLICY_MAX + 1]; /* "NS/NAME", n of them, sorted */
	unsigned n;				     /* names kept */
	unsigned cut;				     /* names left out (the bound) */
};

/* Who a side of a flow is. */
struct flow_who {
	enum flow_kind kind;	       /* what it is */
	char ns[FLOW_NAME_MAX + 1];    /* namespace; "" for nodes and external peers */
	char name[FLOW_NAME_MAX + 1];  /* VMI, pod or node name; "" when external */
};

/* The aggregation key. */
struct flow_key {
	struct flow_who ep;	/* the local endpoint (kind VM or POD) */
	enum flow_dir dir;	/* what the endpoint did */
	struct ip_addr peer;	/* the other side as the endpoint sees it */
	uint16_t port;		/* the service port (original direction's destination port;
				 * 0 for protocols without ports) */
	uint8_t proto;		/* IPPROTO_* */
	enum flow_verdict verdict; /* allow or deny */
};

/* One aggregated record of a window. */
struct flow_rec {
	struct flow_key key;		  /* what */
	struct flow_who peer_who;	  /* the peer named (kind EXTERNAL when unknown) */
	struct ip_addr ep_ip;		  /* the endpoint's address on this flow */
	struct flow_pols pols;		  /* why (set by the agent at the window's end) */
	char node[FLOW_NAME_MAX + 1];	  /* the node that saw it ("" until the agent sets it) */
	uint64_t bytes_in, bytes_out;	  /* seen from the endpoint */
	uint64_t pkts_in, pkts_out;	  /* seen from the endpoint */
	uint64_t first_ms, last_ms;	  /* first and last activity (unix ms) */
	uint32_t started;		  /* connections that started in the window */
	uint32_t completed;		  /* connections that ended in the window */
	uint32_t flows;			  /* connections seen in the window */
};

/* One observation: a connection started, progressed (counter deltas) or ended. */
struct flow_obs {
	struct flow_key key;		  /* the aggregation key (flow_classify fills it) */
	struct ip_addr ep_ip;		  /* the endpoint's address on this flow */
	uint64_t bytes_in, bytes_out;	  /* deltas since the last observation */
	uint64_t pkts_in, pkts_out;	  /* deltas */
	uint64_t ts_ms;			  /* when (unix ms) */
	bool started;			  /* a new connection */
	bool ended;			  /* the connection ended */
};

/* What the table did, for metrics. */
struct flow_stats {
	uint64_t observed;	/* observations taken */
	uint64_t dropped;	/* observations of new keys refused: the table was full */
	uint64_t flushed;	/* records handed out by flow_table_flush */
	unsigned in_use;	/* records in the current window */
	unsigned max;		/* the bound */
};

struct flow_table;

/* A table holding at most max_flows records (1..1,048,576), all memory allocated now
 * (flow_table_bytes tells how much). NULL with e on a bad bound or no memory. */
struct flow_table *flow_table_new(unsigned max_flows, struct err *e);
void flow_table_free(struct flow_table *t);
/* Bytes of memory the table holds (fixed for its life). */
size_t flow_table_bytes(const struct flow_table *t);

/* Add one observation: aggregated into its key's record (created if new). 0, or
 * -ENOSPC when the key is new and the table is full, or its endpoint is new and the
 * window already holds FLOW_EPS_MAX endpoints (counted in stats.dropped). */
int flow_observe(struct flow_table *t, const struct flow_obs *o);

/* Hand every record of the window to fn (in no particular order) and empty the table.
 * fn may not call back into t. Returns the number of records. */
unsigned flow_table_flush(struct flow_table *t, void (*fn)(void *user, const struct flow_rec *r),
			  void *user);

/* The counters. */
struct flow_stats flow_table_stats(const struct flow_table *t);

/* ---- classification -------------------------------------------------------------- */

/* A connection's original-direction tuple, as conntrack reports it (reply_src is the
 * reply direction's source: differs from dst when the connection was DNAT-ed). */
struct flow_tuple {
	struct ip_addr src, dst;   /* original direction */
	struct ip_addr reply_src;  /* reply direction source (family 0 = same as dst) */
	uint16_t sport, dport;	   /* original direction ports (0 without ports) */
	uint8_t proto;		   /* IPPROTO_* */
};

/* Which side of tuple t is the endpoint with addresses ep[0..n): egress when the
 * original source is one of them, ingress when the original destination or the reply
 * source (a connection DNAT-ed to the endpoint) is. Fills dir, peer, port, proto and
 * *ep_ip. false when the endpoint is on neither side (or on both: a connection of the
 * endpoint to itself is not a flow). Counters: orig packets are the endpoint's "out" for
 * egress and its "in" for ingress (flow_counters). */
bool flow_classify(const struct flow_tuple *t, const struct ip_addr *ep, unsigned n,
		   struct flow_key *k, struct ip_addr *ep_ip);

/* Map conntrack's per-direction counters onto the endpoint's in/out for direction dir. */
void flow_counters(enum flow_dir dir, uint64_t orig_bytes, uint64_t orig_pkts,
		   uint64_t reply_bytes, uint64_t reply_pkts, struct flow_obs *o);

/* ---- output ---------------------------------------------------------------------- */

/* "tcp", "udp", "sctp", "icmp", "icmpv6", or NULL for another protocol number. */
const char *flow_proto_name(uint8_t proto);
/* "vm", "pod", "node", "external"; "egress"/"ingress"; "allow"/"deny". */
const char *flow_kind_name(enum flow_kind k);
const char *flow_dir_name(enum flow_dir d);
const char *flow_verdict_name(enum flow_verdict v);

/* "policy", "no-policy", "ingress-default-deny" / "egress-default-deny" (by dir),
 * "unenforced", "unknown". */
const char *flow_reason_name(enum flow_reason r, enum flow_dir dir);
/* Parse such a name for a record of direction dir; false when it is none (or a default
 * deny of the other direction). */
bool flow_reason_parse(const char *s, enum flow_dir dir, enum flow_reason *out);
/* Add policy name to p (kept sorted, once; counted in p->cut when p is full; names
 * longer than FLOW_POLICY_MAX are cut). */
void flow_pols_add(struct flow_pols *p, const char *name);
/* Merge src into dst: the names (bounded, cuts summed) and, when dst's reason is
 * unknown, src's reason. */
void flow_pols_merge(struct flow_pols *dst, const struct flow_pols *src);

/* Write r as one JSON object (the fields above) into w; the window is
 * [start_ms, end_ms). The writer's sticky error tells whether it fit. */
void flow_json(struct json_w *w, const struct flow_rec *r, uint64_t start_ms,
	       uint64_t end_ms);

#endif
