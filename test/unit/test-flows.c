/* Unit tests for flows/flows: aggregation against an independent brute-force list, the
 * bound (drops counted, nothing evicted, memory fixed), flush, classification of
 * egress/ingress/DNAT tuples, and the JSON line (parsed back with lib/json). */
#include "flows/flows.h"
#include "lib/err.h"
#include "lib/json.h"
#include "test/lib/t.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static struct ip_addr v4(const char *s)
{
	struct ip_addr a;
	if (!ip_parse(s, &a))
		memset(&a, 0, sizeof(a));
	return a;
}

static struct flow_key key(const char *ns, const char *name, enum flow_dir d, const char *peer,
			   uint16_t port, uint8_t proto)
{
	struct flow_key k;
	memset(&k, 0, sizeof(k));
	k.ep.kind = FLOW_KIND_VM;
	snprintf(k.ep.ns, sizeof(k.ep.ns), "%s", ns);
	snprintf(k.ep.name, sizeof(k.ep.name), "%s", name);
	k.dir = d;
	k.peer = v4(peer);
	k.port = port;
	k.proto = proto;
	return k;
}

/* ---- brute force: a plain list, compared field by field ---------------------------- */

struct naive {
	struct flow_key k[512];
	uint64_t bin[512], bout[512], pin[512], pout[512];
	unsigned started[512], n;
};

static bool naive_eq(const struct flow_key *a, const struct flow_key *b)
{
	return a->ep.kind == b->ep.kind && !strcmp(a->ep.ns, b->ep.ns) &&
	       !strcmp(a->ep.name, b->ep.name) && a->dir == b->dir &&
	       !memcmp(&a->peer, &b->peer, sizeof(a->peer)) && a->port == b->port &&
	       a->proto == b->proto && a->verdict == b->verdict;
}

static void naive_add(struct naive *nv, const struct flow_obs *o)
{
	unsigned i;
	for (i = 0; i < nv->n; i++)
		if (naive_eq(&nv->k[i], &o->key))
			break;
	if (i == nv->n)
		nv->k[nv->n++] = o->key;
	nv->bin[i] += o->bytes_in, nv->bout[i] += o->bytes_out;
	nv->pin[i] += o->pkts_in, nv->pout[i] += o->pkts_out;
	nv->started[i] += o->started;
}

struct cmp {
	struct naive *nv;
	unsigned seen, bad;
};

static void cmp_rec(void *user, const struct flow_rec *r)
{
	struct cmp *c = user;
	c->seen++;
	for (unsigned i = 0; i < c->nv->n; i++)
		if (naive_eq(&c->nv->k[i], &r->key)) {
			if (c->nv->bin[i] != r->bytes_in || c->nv->bout[i] != r->bytes_out ||
			    c->nv->pin[i] != r->pkts_in || c->nv->pout[i] != r->pkts_out ||
			    c->nv->started[i] != r->started)
				c->bad++;
			return;
		}
	c->bad++;
}

static void test_aggregates_like_brute_force(void)
{
	static struct naive nv;
	const char *peers[] = { "198.18.0.5", "198.18.0.6", "198.19.0.1", "198.18.1.9" };
	const char *vms[] = { "vm-a", "vm-b", "vm-c" };
	struct flow_table *t = flow_table_new(400, NULL);
	struct cmp c = { &nv, 0, 0 };
	unsigned long seed = 12345;
	T_CHECK(t != NULL);
	memset(&nv, 0, sizeof(nv));
	for (int i = 0; i < 5000; i++) {
		struct flow_obs o;
		seed = seed * 6364136223846793005UL + 1442695040888963407UL;
		memset(&o, 0, sizeof(o));
		o.key = key("ns", vms[(seed >> 33) % 3], (seed >> 35) & 1 ? FLOW_INGRESS : FLOW_EGRESS,
			    peers[(seed >> 40) % 4], (uint16_t)(80 + (seed >> 45) % 4),
			    (seed >> 50) & 1 ? IPPROTO_TCP : IPPROTO_UDP);
		o.key.verdict = (seed >> 52) % 5 == 0 ? FLOW_DENY : FLOW_ALLOW;
		o.bytes_in = (seed >> 20) % 1500, o.bytes_out = (seed >> 24) % 900;
		o.pkts_in = 1, o.pkts_out = (seed >> 30) & 1;
		o.started = (seed >> 54) % 3 == 0;
		o.ts_ms = 1000 + (uint64_t)i;
		T_EQ(flow_observe(t, &o), 0);
		naive_add(&nv, &o);
	}
	T_EQ(flow_table_stats(t).in_use, nv.n);
	T_EQ(flow_table_flush(t, cmp_rec, &c), nv.n);
	T_EQ(c.seen, nv.n);
	T_EQ(c.bad, 0);
	T_EQ(flow_table_stats(t).in_use, 0);
	T_EQ(flow_table_stats(t).observed, 5000);
	T_EQ(flow_table_stats(t).dropped, 0);
	flow_table_free(t);
}

static void count_rec(void *user, const struct flow_rec *r)
{
	unsigned *n = user;
	(void)r;
	(*n)++;
}

static void test_bound_drops_and_counts(void)
{
	struct flow_table *t = flow_table_new(64, NULL);
	size_t bytes = flow_table_bytes(t);
	unsigned n = 0;
	char peer[32];
	T_CHECK(t != NULL);
	for (int i = 0; i < 10000; i++) {
		struct flow_obs o;
		memset(&o, 0, sizeof(o));
		snprintf(peer, sizeof(peer), "198.18.%d.%d", (i >> 8) & 255, i & 255);
		o.key = key("ns", "vm", FLOW_INGRESS, peer, 443, IPPROTO_TCP);
		o.started = true;
		o.ts_ms = (uint64_t)i;
		T_EQ(flow_observe(t, &o), i < 64 ? 0 : -ENOSPC);
	}
	/* a key already held still aggregates when the table is full */
	{
		struct flow_obs o;
		memset(&o, 0, sizeof(o));
		o.key = key("ns", "vm", FLOW_INGRESS, "198.18.0.0", 443, IPPROTO_TCP);
		o.bytes_in = 7;
		T_EQ(flow_observe(t, &o), 0);
	}
	T_EQ(flow_table_stats(t).dropped, 10000 - 64);
	T_EQ(flow_table_stats(t).in_use, 64);
	T_EQ(flow_table_bytes(t), bytes);
	T_EQ(flow_table_flush(t, count_rec, &n), 64);
	T_EQ(n, 64);
	/* the next window has room again */
	{
		struct flow_obs o;
		memset(&o, 0, sizeof(o));
		o.key = key("ns", "vm", FLOW_EGRESS, "198.18.9.9", 53, IPPROTO_UDP);
		T_EQ(flow_observe(t, &o), 0);
	}
	flow_table_free(t);
	T_CHECK(flow_table_new(0, NULL) == NULL);
	{
		struct err e = { 0 };
		T_CHECK(flow_table_new(1u << 21, &e) == NULL);
		T_CHECK(strstr(e.msg, "out of range") != NULL);
	}
}

static void test_classify(void)
{
	struct ip_addr ep[2] = { v4("198.18.0.10"), v4("2001:db8:4b76::10") };
	struct flow_tuple t;
	struct flow_key k;
	struct ip_addr ip;
	char b[IP_STRLEN];
	struct flow_obs o;

	/* the VM opened a connection to a Service address, DNAT-ed to a pod */
	memset(&t, 0, sizeof(t));
	t.src = v4("198.18.0.10"), t.dst = v4("198.18.200.1"), t.reply_src = v4("198.18.0.77");
	t.sport = 40000, t.dport = 443, t.proto = IPPROTO_TCP;
	memset(&k, 0, sizeof(k));
	T_CHECK(flow_classify(&t, ep, 2, &k, &ip));
	T_EQ(k.dir, FLOW_EGRESS);
	T_STREQ(ip_fmt(&k.peer, b), "198.18.200.1");
	T_EQ(k.port, 443);
	T_STREQ(ip_fmt(&ip, b), "198.18.0.10");
	memset(&o, 0, sizeof(o));
	flow_counters(k.dir, 100, 2, 5000, 4, &o);
	T_EQ(o.bytes_out, 100);
	T_EQ(o.bytes_in, 5000);

	/* a peer reached the VM through a DNAT on the node (reply source is the VM) */
	t.src = v4("198.19.0.1"), t.dst = v4("198.18.250.5"), t.reply_src = v4("198.18.0.10");
	t.dport = 8080;
	T_CHECK(flow_classify(&t, ep, 2, &k, &ip));
	T_EQ(k.dir, FLOW_INGRESS);
	T_STREQ(ip_fmt(&k.peer, b), "198.19.0.1");
	T_STREQ(ip_fmt(&ip, b), "198.18.0.10");
	flow_counters(k.dir, 100, 2, 5000, 4, &o);
	T_EQ(o.bytes_in, 100);
	T_EQ(o.pkts_out, 4);

	/* v6 ingress, plain */
	t.src = v4("2001:db8:fab::13"), t.dst = v4("2001:db8:4b76::10");
	memset(&t.reply_src, 0, sizeof(t.reply_src));
	T_CHECK(flow_classify(&t, ep, 2, &k, &ip));
	T_EQ(k.dir, FLOW_INGRESS);

	/* not ours, and the endpoint talking to itself */
	t.src = v4("198.18.0.1"), t.dst = v4("198.18.0.2");
	T_CHECK(!flow_classify(&t, ep, 2, &k, &ip));
	t.src = v4("198.18.0.10"), t.dst = v4("198.18.0.10");
	T_CHECK(!flow_classify(&t, ep, 2, &k, &ip));
}

static void json_rec(void *user, const struct flow_rec *r)
{
	char *out = user;
	struct json_w w;
	struct flow_rec x = *r; /* the agent names the policies at the window's end */
	x.pols.reason = FLOW_R_DEFAULT_DENY;
	flow_pols_add(&x.pols, "prod/deny-all");
	json_w_init(&w, out, 2048);
	flow_json(&w, &x, 60000, 120000);
	if (json_w_finish(&w, NULL) < 0)
		out[0] = '\0';
}

static void test_json_line(void)
{
	struct flow_table *t = flow_table_new(4, NULL);
	struct flow_obs o;
	char out[2048] = "";
	struct json_tok tok[128];
	struct json_doc d;
	uint64_t v = 0;
	memset(&o, 0, sizeof(o));
	o.key = key("prod", "db-1", FLOW_INGRESS, "198.19.0.1", 5432, IPPROTO_TCP);
	o.key.verdict = FLOW_DENY;
	o.ep_ip = v4("198.18.0.10");
	o.bytes_in = 60, o.pkts_in = 1, o.started = true, o.ts_ms = 61000;
	T_EQ(flow_observe(t, &o), 0);
	flow_table_flush(t, json_rec, out);
	T_CHECK(out[0] == '{');
	T_EQ(json_parse(&d, out, strlen(out), tok, 128, 0, NULL), 0);
	T_CHECK(json_str_eq(&d, json_get(&d, 0, "action"), "deny", 4));
	T_CHECK(json_str_eq(&d, json_get(&d, 0, "reporter"), "dst", 3));
	T_CHECK(json_str_eq(&d, json_get(&d, 0, "dest_name"), "db-1", 4));
	T_CHECK(json_str_eq(&d, json_get(&d, 0, "dest_kind"), "vm", 2));
	T_CHECK(json_str_eq(&d, json_get(&d, 0, "source_ip"), "198.19.0.1", 10));
	T_CHECK(json_str_eq(&d, json_get(&d, 0, "source_kind"), "external", 8));
	T_CHECK(json_str_eq(&d, json_get(&d, 0, "proto"), "tcp", 3));
	T_EQ(json_uint64(&d, json_get(&d, 0, "dest_port"), &v), 0);
	T_EQ(v, 5432);
	T_EQ(json_uint64(&d, json_get(&d, 0, "start_time"), &v), 0);
	T_EQ(v, 60);
	T_CHECK(json_str_eq(&d, json_index(&d, json_get(&d, 0, "policies"), 0),
			    "prod/deny-all", 13));
	flow_table_free(t);
}

/* The window's endpoint identities are bounded too: one more than FLOW_EPS_MAX is dropped
 * (counted), each kept one comes back from the flush with its own name and counters. */
struct ep_seen {
	unsigned n, bad;
};

static void check_ep_rec(void *user, const struct flow_rec *r)
{
	struct ep_seen *x = user;
	unsigned i = 0;
	char want[32];
	x->n++;
	if (sscanf(r->key.ep.name, "vm-%u", &i) != 1) {
		x->bad++;
		return;
	}
	snprintf(want, sizeof(want), "ns-%u", i % 7);
	if (strcmp(r->key.ep.ns, want) != 0 || r->bytes_in != i + 1 || r->key.port != 80 ||
	    r->started != 1 || r->peer_who.kind != FLOW_KIND_EXTERNAL)
		x->bad++;
}

static void test_endpoint_pool_bound(void)
{
	struct flow_table *t = flow_table_new(4 * FLOW_EPS_MAX, NULL);
	char ns[16], name[16];
	T_CHECK(t != NULL);
	for (unsigned i = 0; i <= FLOW_EPS_MAX; i++) {
		snprintf(ns, sizeof(ns), "ns-%u", i % 7);
		snprintf(name, sizeof(name), "vm-%u", i);
		struct flow_obs o;
		memset(&o, 0, sizeof(o));
		o.key = key(ns, name, FLOW_INGRESS, "198.18.0.1", 80, IPPROTO_TCP);
		o.bytes_in = i + 1;
		o.started = true;
		T_EQ(flow_observe(t, &o), i < FLOW_EPS_MAX ? 0 : -ENOSPC);
	}
	T_EQ(flow_table_stats(t).dropped, 1);
	struct ep_seen x = { 0, 0 };
	T_EQ(flow_table_flush(t, check_ep_rec, &x), FLOW_EPS_MAX);
	T_EQ(x.n, FLOW_EPS_MAX);
	T_EQ(x.bad, 0);
	/* a flush empties the pool: a new endpoint fits again */
	struct flow_obs o;
	memset(&o, 0, sizeof(o));
	o.key = key("ns-x", "vm-new", FLOW_EGRESS, "198.18.0.2", 53, IPPROTO_UDP);
	T_EQ(flow_observe(t, &o), 0);
	flow_table_free(t);
}

int main(void)
{
	T_RUN(test_aggregates_like_brute_force);
	T_RUN(test_bound_drops_and_counts);
	T_RUN(test_endpoint_pool_bound);
	T_RUN(test_classify);
	T_RUN(test_json_line);
	return t_done();
}
