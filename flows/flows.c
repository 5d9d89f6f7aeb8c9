/* flows — the bounded aggregation table (flows/flows.h). Open addressing over a slot
 * array twice the bound (a power of two), compact records in a separate array of exactly
 * the bound, both allocated once; a flush clears the slots and starts the records anew.
 * A record names its endpoint by an index into a pool of the window's endpoint
 * identities (a node has few endpoints and many flows: the names are held once, and a
 * record is ~140 bytes instead of the ~1.9 KB of a struct flow_rec); the flush expands
 * each into a struct flow_rec for the caller. */
#include "flows/flows.h"

#include "lib/err.h"
#include "lib/json.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FLOW_MAX_BOUND (1u << 20)
#define SLOT_EMPTY UINT32_MAX

/* One aggregated record as the table holds it. */
struct trec {
	uint32_t ep;		   /* the endpoint: index into the pool */
	enum flow_dir dir;	   /* key: what the endpoint did */
	enum flow_verdict verdict; /* key: allow or deny */
	uint16_t port;		   /* key: the service port */
	uint8_t proto;		   /* key: IPPROTO_* */
	struct ip_addr peer;	   /* key: the other side */
	struct ip_addr ep_ip;	   /* the endpoint's address on this flow */
	uint64_t bytes_in, bytes_out, pkts_in, pkts_out; /* seen from the endpoint */
	uint64_t first_ms, last_ms;			 /* first and last activity */
	uint32_t started, completed, flows;		 /* connections */
};

struct flow_table {
	struct trec *recs;	/* records of the window, [0, used) */
	uint32_t *slots;	/* index into recs, or SLOT_EMPTY */
	unsigned max;		/* the bound */
	unsigned used;		/* records in use */
	uint32_t mask;		/* slots - 1 */
	struct flow_who *eps;	/* the window's endpoint identities, [0, n_eps) */
	uint32_t *ep_slots;	/* index into eps, or SLOT_EMPTY */
	unsigned max_eps;	/* the pool's bound */
	unsigned n_eps;		/* identities in use */
	uint32_t ep_mask;	/* ep_slots - 1 */
	struct flow_stats st;	/* counters */
};

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

static uint32_t who_hash(const struct flow_who *w)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	uint8_t k = (uint8_t)w->kind;
	h = fnv(h, &k, 1);
	h = fnv(h, w->ns, strlen(w->ns) + 1);
	h = fnv(h, w->name, strlen(w->name) + 1);
	return (uint32_t)(h ^ (h >> 29));
}

static uint32_t rec_hash(uint32_t ep, const struct flow_key *k)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	uint8_t small[5] = { (uint8_t)k->dir, k->proto, (uint8_t)k->verdict, k->peer.family, 0 };
	h = fnv(h, &ep, sizeof(ep));
	h = fnv(h, small, sizeof(small));
	h = fnv(h, k->peer.b, sizeof(k->peer.b));
	h = fnv(h, &k->port, sizeof(k->port));
	return (uint32_t)(h ^ (h >> 29));
}

static bool rec_eq(const struct trec *r, uint32_t ep, const struct flow_key *k)
{
	return r->ep == ep && r->dir == k->dir && r->proto == k->proto &&
	       r->verdict == k->verdict && r->port == k->port && ip_eq(&r->peer, &k->peer);
}

static uint32_t pow2_above(unsigned n)
{
	uint32_t v = 2;
	while (v < 2u * n)
		v <<= 1;
	return v;
}

struct flow_table *flow_table_new(unsigned max_flows, struct err *e)
{
	struct flow_table *t;
	if (max_flows == 0 || max_flows > FLOW_MAX_BOUND) {
		err_setx(e, EINVAL, "flows: table bound %u out of range 1..%u", max_flows,
			 FLOW_MAX_BOUND);
		return NULL;
	}
	uint32_t nslots = pow2_above(max_flows);
	unsigned max_eps = max_flows < FLOW_EPS_MAX ? max_flows : FLOW_EPS_MAX;
	uint32_t neps = pow2_above(max_eps);
	t = calloc(1, sizeof(*t));
	if (t) {
		t->recs = calloc(max_flows, sizeof(*t->recs));
		t->slots = malloc(nslots * sizeof(*t->slots));
		t->eps = calloc(max_eps, sizeof(*t->eps));
		t->ep_slots = malloc(neps * sizeof(*t->ep_slots));
	}
	if (!t || !t->recs || !t->slots || !t->eps || !t->ep_slots) {
		flow_table_free(t);
		err_setx(e, ENOMEM, "flows: no memory for a table of %u flows", max_flows);
		return NULL;
	}
	memset(t->slots, 0xff, nslots * sizeof(*t->slots));
	memset(t->ep_slots, 0xff, neps * sizeof(*t->ep_slots));
	t->max = max_flows;
	t->mask = nslots - 1;
	t->max_eps = max_eps;
	t->ep_mask = neps - 1;
	t->st.max = max_flows;
	return t;
}

void flow_table_free(struct flow_table *t)
{
	if (!t)
		return;
	free(t->recs);
	free(t->slots);
	free(t->eps);
	free(t->ep_slots);
	free(t);
}

size_t flow_table_bytes(const struct flow_table *t)
{
	return sizeof(*t) + (size_t)t->max * sizeof(*t->recs) +
	       ((size_t)t->mask + 1) * sizeof(*t->slots) +
	       (size_t)t->max_eps * sizeof(*t->eps) +
	       ((size_t)t->ep_mask + 1) * sizeof(*t->ep_slots);
}

/* The pool index of endpoint w, added when new; SLOT_EMPTY when the pool is full. */
static uint32_t ep_index(struct flow_table *t, const struct flow_who *w)
{
	uint32_t i = who_hash(w) & t->ep_mask;
	for (;;) {
		uint32_t *s = &t->ep_slots[i];
		if (*s == SLOT_EMPTY)
			break;
		const struct flow_who *h = &t->eps[*s];
		if (h->kind == w->kind && strcmp(h->ns, w->ns) == 0 &&
		    strcmp(h->name, w->name) == 0)
			return *s;
		i = (i + 1) & t->ep_mask;
	}
	if (t->n_eps == t->max_eps)
		return SLOT_EMPTY;
	t->ep_slots[i] = t->n_eps;
	t->eps[t->n_eps] = *w;
	return t->n_eps++;
}

/* The slot holding the record of (ep, k), or the empty slot where it would go. */
static uint32_t *slot_of(struct flow_table *t, uint32_t ep, const struct flow_key *k)
{
	uint32_t i = rec_hash(ep, k) & t->mask;
	for (;;) {
		uint32_t *s = &t->slots[i];
		if (*s == SLOT_EMPTY || rec_eq(&t->recs[*s], ep, k))
			return s;
		i = (i + 1) & t->mask;
	}
}

int flow_observe(struct flow_table *t, const struct flow_obs *o)
{
	t->st.observed++;
	uint32_t ep = ep_index(t, &o->key.ep);
	if (ep == SLOT_EMPTY) {
		t->st.dropped++;
		return -ENOSPC;
	}
	uint32_t *s = slot_of(t, ep, &o->key);
	struct trec *r;
	if (*s == SLOT_EMPTY) {
		if (t->used == t->max) {
			t->st.dropped++;
			return -ENOSPC;
		}
		*s = t->used++;
		r = &t->recs[*s];
		*r = (struct trec){ .ep = ep, .dir = o->key.dir, .verdict = o->key.verdict,
				    .port = o->key.port, .proto = o->key.proto,
				    .peer = o->key.peer, .ep_ip = o->ep_ip,
				    .first_ms = o->ts_ms, .last_ms = o->ts_ms };
	}
	r = &t->recs[*s];
	r->bytes_in += o->bytes_in;
	r->bytes_out += o->bytes_out;
	r->pkts_in += o->pkts_in;
	r->pkts_out += o->pkts_out;
	if (o->ts_ms < r->first_ms)
		r->first_ms = o->ts_ms;
	if (o->ts_ms > r->last_ms)
		r->last_ms = o->ts_ms;
	if (o->started) {
		r->started++;
		r->flows++;
	} else if (r->flows == 0) {
		r->flows = 1; /* a connection older than the window */
	}
	if (o->ended)
		r->completed++;
	return 0;
}

unsigned flow_table_flush(struct flow_table *t, void (*fn)(void *user, const struct flow_rec *r),
			  void *user)
{
	unsigned n = t->used;
	struct flow_rec out;
	for (unsigned i = 0; i < n; i++) {
		const struct trec *r = &t->recs[i];
		memset(&out, 0, sizeof(out));
		out.key.ep = t->eps[r->ep];
		out.key.dir = r->dir;
		out.key.peer = r->peer;
		out.key.port = r->port;
		out.key.proto = r->proto;
		out.key.verdict = r->verdict;
		out.peer_who.kind = FLOW_KIND_EXTERNAL;
		out.ep_ip = r->ep_ip;
		out.bytes_in = r->bytes_in;
		out.bytes_out = r->bytes_out;
		out.pkts_in = r->pkts_in;
		out.pkts_out = r->pkts_out;
		out.first_ms = r->first_ms;
		out.last_ms = r->last_ms;
		out.started = r->started;
		out.completed = r->completed;
		out.flows = r->flows;
		fn(user, &out);
	}
	memset(t->slots, 0xff, ((size_t)t->mask + 1) * sizeof(*t->slots));
	memset(t->ep_slots, 0xff, ((size_t)t->ep_mask + 1) * sizeof(*t->ep_slots));
	t->used = 0;
	t->n_eps = 0;
	t->st.flushed += n;
	return n;
}

struct flow_stats flow_table_stats(const struct flow_table *t)
{
	struct flow_stats s = t->st;
	s.in_use = t->used;
	return s;
}

static bool among(const struct ip_addr *a, const struct ip_addr *ep, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (ip_eq(a, &ep[i]))
			return true;
	return false;
}

bool flow_classify(const struct flow_tuple *t, const struct ip_addr *ep, unsigned n,
		   struct flow_key *k, struct ip_addr *ep_ip)
{
	bool out = among(&t->src, ep, n);
	bool in = among(&t->dst, ep, n) ||
		  (t->reply_src.family && among(&t->reply_src, ep, n));
	if (out == in)
		return false;
	k->proto = t->proto;
	k->port = t->dport;
	if (out) {
		k->dir = FLOW_EGRESS;
		k->peer = t->dst;
		*ep_ip = t->src;
	} else {
		k->dir = FLOW_INGRESS;
		k->peer = t->src;
		*ep_ip = among(&t->dst, ep, n) ? t->dst : t->reply_src;
	}
	return true;
}

void flow_counters(enum flow_dir dir, uint64_t orig_bytes, uint64_t orig_pkts,
		   uint64_t reply_bytes, uint64_t reply_pkts, struct flow_obs *o)
{
	switch (dir) {
	case FLOW_EGRESS:
		o->bytes_out = orig_bytes, o->pkts_out = orig_pkts;
		o->bytes_in = reply_bytes, o->pkts_in = reply_pkts;
		return;
	case FLOW_INGRESS:
		o->bytes_in = orig_bytes, o->pkts_in = orig_pkts;
		o->bytes_out = reply_bytes, o->pkts_out = reply_pkts;
		return;
	}
}

const char *flow_proto_name(uint8_t proto)
{
	switch (proto) {
	case IPPROTO_TCP: return "tcp";
	case IPPROTO_UDP: return "udp";
	case IPPROTO_SCTP: return "sctp";
	case IPPROTO_ICMP: return "icmp";
	case IPPROTO_ICMPV6: return "icmpv6";
	default: return NULL;
	}
}

const char *flow_kind_name(enum flow_kind k)
{
	switch (k) {
	case FLOW_KIND_VM: return "vm";
	case FLOW_KIND_POD: return "pod";
	case FLOW_KIND_NODE: return "node";
	case FLOW_KIND_EXTERNAL: return "external";
	}
	return "?";
}

const char *flow_dir_name(enum flow_dir d)
{
	switch (d) {
	case FLOW_EGRESS: return "egress";
	case FLOW_INGRESS: return "ingress";
	}
	return "?";
}

const char *flow_verdict_name(enum flow_verdict v)
{
	switch (v) {
	case FLOW_ALLOW: return "allow";
	case FLOW_DENY: return "deny";
	}
	return "?";
}

const char *flow_reason_name(enum flow_reason r, enum flow_dir dir)
{
	switch (r) {
	case FLOW_R_UNKNOWN: return "unknown";
	case FLOW_R_POLICY: return "policy";
	case FLOW_R_NO_POLICY: return "no-policy";
	case FLOW_R_DEFAULT_DENY:
		return dir == FLOW_EGRESS ? "egress-default-deny" : "ingress-default-deny";
	case FLOW_R_UNENFORCED: return "unenforced";
	}
	return "unknown";
}

bool flow_reason_parse(const char *s, enum flow_dir dir, enum flow_reason *out)
{
	static const enum flow_reason all[] = { FLOW_R_UNKNOWN, FLOW_R_POLICY, FLOW_R_NO_POLICY,
						FLOW_R_DEFAULT_DENY, FLOW_R_UNENFORCED };
	for (unsigned i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		if (strcmp(s, flow_reason_name(all[i], dir)) == 0) {
			*out = all[i];
			return true;
		}
	return false;
}

void flow_pols_add(struct flow_pols *p, const char *name)
{
	char nm[FLOW_POLICY_MAX + 1];
	unsigned i = 0;
	snprintf(nm, sizeof(nm), "%s", name);
	if (!nm[0])
		return;
	for (; i < p->n; i++) {
		int c = strcmp(p->name[i], nm);
		if (c == 0)
			return;
		if (c > 0)
			break;
	}
	if (p->n == FLOW_POLICIES) {
		p->cut++;
		return;
	}
	memmove(p->name[i + 1], p->name[i], (size_t)(p->n - i) * sizeof(p->name[0]));
	memcpy(p->name[i], nm, sizeof(nm));
	p->n++;
}

void flow_pols_merge(struct flow_pols *dst, const struct flow_pols *src)
{
	if (dst->reason == FLOW_R_UNKNOWN)
		dst->reason = src->reason;
	for (unsigned i = 0; i < src->n; i++)
		flow_pols_add(dst, src->name[i]);
	dst->cut += src->cut;
}

static void side(struct json_w *w, const char *pfx, const struct ip_addr *ip,
		 const struct flow_who *who)
{
	char key[32], buf[IP_STRLEN];
	snprintf(key, sizeof(key), "%s_ip", pfx);
	json_w_kstr(w, key, ip_fmt(ip, buf));
	snprintf(key, sizeof(key), "%s_name", pfx);
	json_w_kstr(w, key, who->name[0] ? who->name : "-");
	snprintf(key, sizeof(key), "%s_namespace", pfx);
	json_w_kstr(w, key, who->ns[0] ? who->ns : "-");
	snprintf(key, sizeof(key), "%s_kind", pfx);
	json_w_kstr(w, key, flow_kind_name(who->kind));
}

void flow_json(struct json_w *w, const struct flow_rec *r, uint64_t start_ms,
	       uint64_t end_ms)
{
	const char *pn = flow_proto_name(r->key.proto);
	bool egress = r->key.dir == FLOW_EGRESS;
	json_w_obj_begin(w);
	json_w_key(w, "start_time");
	json_w_uint(w, start_ms / 1000);
	json_w_key(w, "end_time");
	json_w_uint(w, end_ms / 1000);
	json_w_kstr(w, "reporter", egress ? "src" : "dst");
	json_w_kstr(w, "action", flow_verdict_name(r->key.verdict));
	json_w_kstr(w, "direction", flow_dir_name(r->key.dir));
	if (egress) {
		side(w, "source", &r->ep_ip, &r->key.ep);
		side(w, "dest", &r->key.peer, &r->peer_who);
	} else {
		side(w, "source", &r->key.peer, &r->peer_who);
		side(w, "dest", &r->ep_ip, &r->key.ep);
	}
	json_w_key(w, "dest_port");
	json_w_uint(w, r->key.port);
	json_w_key(w, "proto");
	if (pn)
		json_w_str(w, pn);
	else
		json_w_uint(w, r->key.proto);
	json_w_key(w, "policies");
	json_w_arr_begin(w);
	for (unsigned i = 0; i < r->pols.n; i++)
		json_w_str(w, r->pols.name[i]);
	json_w_arr_end(w);
	json_w_key(w, "policies_cut");
	json_w_uint(w, r->pols.cut);
	json_w_kstr(w, "reason", flow_reason_name(r->pols.reason, r->key.dir));
	json_w_key(w, "bytes_in");
	json_w_uint(w, r->bytes_in);
	json_w_key(w, "bytes_out");
	json_w_uint(w, r->bytes_out);
	json_w_key(w, "packets_in");
	json_w_uint(w, r->pkts_in);
	json_w_key(w, "packets_out");
	json_w_uint(w, r->pkts_out);
	json_w_key(w, "num_flows");
	json_w_uint(w, r->flows);
	json_w_key(w, "num_flows_started");
	json_w_uint(w, r->started);
	json_w_key(w, "num_flows_completed");
	json_w_uint(w, r->completed);
	json_w_key(w, "first_seen_ms");
	json_w_uint(w, r->first_ms);
	json_w_key(w, "last_seen_ms");
	json_w_uint(w, r->last_ms);
	json_w_kstr(w, "node", r->node);
	json_w_obj_end(w);
}
