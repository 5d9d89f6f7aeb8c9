/* Unit tests for flows/report and flows/svg: a record written by flow_json parses back
 * to the same record; malformed lines are refused naming the field; the query selects by
 * identity (both nodes of a migration) or by address; the merge sums per peer row; the
 * table, CSV and JSON forms; the picture holds every peer label, marks denied edges and
 * escapes hostile names. */
#include "flows/report.h"
#include "flows/svg.h"
#include "lib/err.h"
#include "lib/json.h"
#include "test/lib/t.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct flow_rec rec(const char *node, const char *vm, enum flow_dir dir,
			   const char *peer, uint16_t port, enum flow_verdict v, uint64_t bytes)
{
	struct flow_rec r;
	memset(&r, 0, sizeof(r));
	r.key.ep.kind = FLOW_KIND_VM;
	snprintf(r.key.ep.ns, sizeof(r.key.ep.ns), "prod");
	snprintf(r.key.ep.name, sizeof(r.key.ep.name), "%s", vm);
	r.key.dir = dir;
	ip_parse(peer, &r.key.peer);
	ip_parse(strchr(peer, ':') ? "2001:db8:4b76::10" : "198.18.0.10", &r.ep_ip);
	r.key.port = port;
	r.key.proto = IPPROTO_TCP;
	r.key.verdict = v;
	r.peer_who.kind = FLOW_KIND_EXTERNAL;
	snprintf(r.node, sizeof(r.node), "%s", node);
	r.bytes_in = bytes, r.bytes_out = bytes / 2, r.pkts_in = 3, r.pkts_out = 2;
	r.first_ms = 1000, r.last_ms = 2000, r.flows = 1, r.started = 1;
	return r;
}

static size_t line(const struct flow_rec *r, char *buf, size_t cap)
{
	struct json_w w;
	json_w_init(&w, buf, cap);
	flow_json(&w, r, 0, 60000);
	return json_w_finish(&w, NULL) < 0 ? 0 : w.len;
}

static void test_round_trip(void)
{
	struct flow_rec a = rec("node-a", "db-1", FLOW_INGRESS, "198.19.0.1", 5432, FLOW_DENY, 60);
	struct flow_rec b;
	char buf[2048];
	uint64_t t0, t1;
	size_t n;
	a.peer_who.kind = FLOW_KIND_POD;
	snprintf(a.peer_who.ns, sizeof(a.peer_who.ns), "web");
	snprintf(a.peer_who.name, sizeof(a.peer_who.name), "front-1");
	a.pols.reason = FLOW_R_DEFAULT_DENY;
	flow_pols_add(&a.pols, "prod/deny-all");
	n = line(&a, buf, sizeof(buf));
	T_CHECK(n > 0);
	T_EQ(flow_line_parse(buf, n, &b, &t0, &t1, NULL), 0);
	T_EQ(t1, 60000);
	T_CHECK(memcmp(&a.key.peer, &b.key.peer, sizeof(a.key.peer)) == 0);
	T_CHECK(memcmp(&a.ep_ip, &b.ep_ip, sizeof(a.ep_ip)) == 0);
	T_STREQ(b.key.ep.name, "db-1");
	T_STREQ(b.peer_who.name, "front-1");
	T_EQ(b.peer_who.kind, FLOW_KIND_POD);
	T_EQ(b.key.dir, FLOW_INGRESS);
	T_EQ(b.key.verdict, FLOW_DENY);
	T_EQ(b.key.port, 5432);
	T_EQ(b.bytes_in, 60);
	T_EQ(b.bytes_out, 30);
	T_EQ(b.pols.n, 1);
	T_STREQ(b.pols.name[0], "prod/deny-all");
	T_EQ(b.pols.reason, FLOW_R_DEFAULT_DENY);
	T_CHECK(strstr(buf, "\"reason\":\"ingress-default-deny\"") != NULL);
	/* a default deny of the other direction is refused */
	{
		char mut[2048], *p = strstr(buf, "ingress-default-deny");
		struct err e = { 0 };
		memcpy(mut, buf, n + 1);
		memcpy(mut + (p - buf), "egress-default-denyX", 20);
		mut[p - buf + 19] = '"';
		memmove(mut + (p - buf) + 20, mut + (p - buf) + 21, n - (size_t)(p - buf) - 20);
		T_EQ(flow_line_parse(mut, n - 1, &b, &t0, &t1, &e), -EINVAL);
		T_CHECK(strstr(e.msg, "reason") != NULL);
	}
	T_STREQ(b.node, "node-a");

	/* v6, egress, external peer */
	a = rec("node-b", "db-1", FLOW_EGRESS, "2001:db8:fab::1", 443, FLOW_ALLOW, 9);
	n = line(&a, buf, sizeof(buf));
	T_EQ(flow_line_parse(buf, n, &b, &t0, &t1, NULL), 0);
	T_EQ(b.key.dir, FLOW_EGRESS);
	T_EQ(b.peer_who.kind, FLOW_KIND_EXTERNAL);
	T_EQ(b.key.peer.family, a.key.peer.family);
}

static void test_bad_lines(void)
{
	static const struct {
		const char *text, *why;
	} bad[] = {
		{ "", "not one JSON object" },
		{ "[1]", "not one JSON object" },
		{ "{\"start_time\":1", "not one JSON object" },
		{ "{\"start_time\":\"x\"}", "start_time" },
		{ "{\"start_time\":1,\"end_time\":2}", "direction" },
		{ "{\"start_time\":1,\"end_time\":2,\"direction\":\"up\"}", "direction" },
	};
	struct flow_rec a = rec("node-a", "db-1", FLOW_INGRESS, "198.19.0.1", 80, FLOW_ALLOW, 1);
	struct flow_rec r;
	char buf[2048], mut[2048];
	uint64_t t0, t1;
	size_t n = line(&a, buf, sizeof(buf));
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct err e = { 0 };
		T_EQ(flow_line_parse(bad[i].text, strlen(bad[i].text), &r, &t0, &t1, &e), -EINVAL);
		T_CHECK(strstr(e.msg, bad[i].why) != NULL);
	}
	/* every field mangled in turn is refused, naming that field */
	{
		static const char *fields[] = { "source_ip", "dest_kind", "dest_port", "bytes_in",
						"node", "action" };
		for (unsigned i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
			struct err e = { 0 };
			char key[64], *p;
			snprintf(key, sizeof(key), "\"%s\":", fields[i]);
			memcpy(mut, buf, n + 1);
			p = strstr(mut, key);
			T_CHECK(p != NULL);
			if (!p)
				continue;
			p[1] = 'X'; /* the key no longer matches: the field is missing */
			T_EQ(flow_line_parse(mut, n, &r, &t0, &t1, &e), -EINVAL);
			T_CHECK(strstr(e.msg, fields[i] + 1) != NULL);
		}
	}
	{
		struct err e = { 0 };
		char *p;
		memcpy(mut, buf, n + 1);
		p = strstr(mut, "198.19.0.1");
		memcpy(p, "198.19.0.x", 10);
		T_EQ(flow_line_parse(mut, n, &r, &t0, &t1, &e), -EINVAL);
		T_CHECK(strstr(e.msg, "is no address") != NULL);
	}
}

static void test_query_and_merge(void)
{
	struct flow_query q;
	struct flow_report rep;
	struct flow_rec r;
	memset(&q, 0, sizeof(q));
	snprintf(q.ns, sizeof(q.ns), "prod");
	snprintf(q.name, sizeof(q.name), "db-1");
	flow_report_init(&rep, &q, 10);
	/* the same peer seen by the source node and, after the migration, the target */
	r = rec("node-a", "db-1", FLOW_INGRESS, "198.18.0.77", 5432, FLOW_ALLOW, 1000);
	T_EQ(flow_report_add(&rep, &r), 1);
	r = rec("node-b", "db-1", FLOW_INGRESS, "198.18.0.77", 5432, FLOW_ALLOW, 3000);
	r.peer_who.kind = FLOW_KIND_POD;
	snprintf(r.peer_who.ns, sizeof(r.peer_who.ns), "web");
	snprintf(r.peer_who.name, sizeof(r.peer_who.name), "front-1");
	T_EQ(flow_report_add(&rep, &r), 1);
	r = rec("node-b", "db-1", FLOW_INGRESS, "198.19.0.1", 5432, FLOW_DENY, 10);
	T_EQ(flow_report_add(&rep, &r), 1);
	r = rec("node-b", "other", FLOW_INGRESS, "198.19.0.1", 5432, FLOW_DENY, 10);
	T_EQ(flow_report_add(&rep, &r), 0);
	flow_report_sort(&rep);
	T_EQ(rep.n, 2);
	T_EQ(rep.records, 3);
	T_EQ(rep.rows[0].bytes_in, 4000);
	T_EQ(rep.rows[0].nnodes, 2);
	T_STREQ(rep.rows[0].nodes[1], "node-b");
	T_EQ(rep.rows[0].peer_who.kind, FLOW_KIND_POD);
	T_EQ(rep.rows[1].verdict, FLOW_DENY);
	{
		size_t n;
		char *t = flow_report_text(&rep, FLOW_FMT_TABLE, &n, NULL);
		T_CHECK(t && strstr(t, "web/front-1") && strstr(t, "5432/tcp") &&
			strstr(t, "node-a,node-b") && strstr(t, "deny"));
		free(t);
		t = flow_report_text(&rep, FLOW_FMT_CSV, &n, NULL);
		T_CHECK(t && strncmp(t, "peer,peer_ip,", 13) == 0 && strstr(t, "\"node-a,node-b\""));
		free(t);
		t = flow_report_text(&rep, FLOW_FMT_JSON, &n, NULL);
		T_CHECK(t != NULL);
		if (t) {
			struct json_tok tok[256];
			struct json_doc d;
			T_EQ(json_parse(&d, t, n, tok, 256, 0, NULL), 0);
			T_CHECK(json_str_eq(&d, json_path(&d, 0, "endpoint.name"), "db-1", 4));
		}
		free(t);
	}
	/* by address: the endpoint's own address on the record */
	memset(&q, 0, sizeof(q));
	ip_parse("198.18.0.10", &q.ip);
	T_CHECK(flow_query_match(&q, &r));
	q.since_ms = 5000;
	T_CHECK(!flow_query_match(&q, &r));
	/* the row bound */
	flow_report_free(&rep);
	flow_report_init(&rep, &q, 1);
	q.since_ms = 0;
	rep.q.since_ms = 0;
	r = rec("n", "db-1", FLOW_INGRESS, "198.18.0.1", 1, FLOW_ALLOW, 1);
	T_EQ(flow_report_add(&rep, &r), 1);
	r = rec("n", "db-1", FLOW_INGRESS, "198.18.0.2", 1, FLOW_ALLOW, 1);
	T_EQ(flow_report_add(&rep, &r), -ENOSPC);
	T_EQ(rep.dropped, 1);
	flow_report_free(&rep);
}

/* the policies of a row: the union of its records', bounded, cuts counted; the table
 * shows the names, or the reason when no name decided */
static void test_policies(void)
{
	struct flow_query q;
	struct flow_report rep;
	struct flow_rec r;
	char name[32];
	memset(&q, 0, sizeof(q));
	snprintf(q.ns, sizeof(q.ns), "prod");
	snprintf(q.name, sizeof(q.name), "db-1");
	flow_report_init(&rep, &q, 10);
	r = rec("node-a", "db-1", FLOW_INGRESS, "198.18.0.77", 5432, FLOW_ALLOW, 1000);
	r.pols.reason = FLOW_R_POLICY;
	flow_pols_add(&r.pols, "prod/b-allow");
	flow_pols_add(&r.pols, "prod/a-allow");
	flow_pols_add(&r.pols, "prod/a-allow");
	T_EQ(r.pols.n, 2);
	T_STREQ(r.pols.name[0], "prod/a-allow"); /* sorted, once */
	T_EQ(flow_report_add(&rep, &r), 1);
	r = rec("node-b", "db-1", FLOW_INGRESS, "198.18.0.77", 5432, FLOW_ALLOW, 1000);
	r.pols.reason = FLOW_R_POLICY;
	for (int i = 0; i < 5; i++) {
		snprintf(name, sizeof(name), "prod/c-%d", i);
		flow_pols_add(&r.pols, name);
	}
	T_EQ(r.pols.n, FLOW_POLICIES);
	T_EQ(r.pols.cut, 1);
	T_EQ(flow_report_add(&rep, &r), 1);
	r = rec("node-a", "db-1", FLOW_EGRESS, "198.18.0.99", 53, FLOW_ALLOW, 10);
	r.pols.reason = FLOW_R_NO_POLICY;
	T_EQ(flow_report_add(&rep, &r), 1);
	r = rec("node-a", "db-1", FLOW_INGRESS, "198.19.0.1", 22, FLOW_DENY, 1);
	r.pols.reason = FLOW_R_DEFAULT_DENY;
	flow_pols_add(&r.pols, "prod/a-allow");
	T_EQ(flow_report_add(&rep, &r), 1);
	flow_report_sort(&rep);
	T_EQ(rep.n, 3);
	T_EQ(rep.rows[0].pols.n, FLOW_POLICIES);
	T_EQ(rep.rows[0].pols.cut, 1 + 2); /* the record's cut and c-2, c-3 left out */
	T_STREQ(rep.rows[0].pols.name[0], "prod/a-allow");
	{
		size_t n;
		char *t = flow_report_text(&rep, FLOW_FMT_TABLE, &n, NULL);
		T_CHECK(t && strstr(t, "prod/a-allow,prod/b-allow,prod/c-0,prod/c-1,+3"));
		T_CHECK(t && strstr(t, "no-policy "));
		T_CHECK(t && strstr(t, "ingress-default-deny:prod/a-allow"));
		free(t);
		t = flow_report_text(&rep, FLOW_FMT_JSON, &n, NULL);
		T_CHECK(t && strstr(t, "\"policies\":[\"prod/a-allow\",\"prod/b-allow\""));
		T_CHECK(t && strstr(t, "\"reason\":\"ingress-default-deny\""));
		T_CHECK(t && strstr(t, "\"policies_cut\":3"));
		free(t);
		t = flow_report_text(&rep, FLOW_FMT_CSV, &n, NULL);
		T_CHECK(t && strstr(t, ",allow,\"prod/a-allow,prod/b-allow,prod/c-0,prod/c-1,+3\","
				     "policy,"));
		free(t);
	}
	flow_report_free(&rep);
}

static void test_svg(void)
{
	struct flow_query q;
	struct flow_report rep;
	struct flow_rec r;
	char *svg;
	size_t n;
	memset(&q, 0, sizeof(q));
	snprintf(q.ns, sizeof(q.ns), "prod");
	snprintf(q.name, sizeof(q.name), "db-1");
	flow_report_init(&rep, &q, 100);
	r = rec("node-a", "db-1", FLOW_INGRESS, "198.18.0.77", 5432, FLOW_ALLOW, 100000);
	r.peer_who.kind = FLOW_KIND_POD;
	snprintf(r.peer_who.ns, sizeof(r.peer_who.ns), "web");
	snprintf(r.peer_who.name, sizeof(r.peer_who.name), "<script>x</script>");
	r.pols.reason = FLOW_R_POLICY;
	flow_pols_add(&r.pols, "prod/allow-web");
	flow_report_add(&rep, &r);
	r = rec("node-a", "db-1", FLOW_INGRESS, "198.19.0.1", 22, FLOW_DENY, 10);
	r.pols.reason = FLOW_R_DEFAULT_DENY;
	flow_pols_add(&r.pols, "prod/allow-web");
	flow_report_add(&rep, &r);
	for (int i = 0; i < 40; i++) {
		char ip[32];
		snprintf(ip, sizeof(ip), "198.18.1.%d", i + 1);
		r = rec("node-b", "db-1", FLOW_EGRESS, ip, 53, FLOW_ALLOW, (uint64_t)i);
		flow_report_add(&rep, &r);
	}
	flow_report_sort(&rep);
	svg = flow_report_svg(&rep, &n, NULL);
	T_CHECK(svg != NULL);
	if (!svg)
		return;
	T_EQ(strlen(svg), n);
	T_CHECK(strncmp(svg, "<?xml", 5) == 0);
	T_CHECK(strstr(svg, "198.19.0.1") != NULL);
	T_CHECK(strstr(svg, "stroke-dasharray") != NULL);
	T_CHECK(strstr(svg, "22/tcp denied") != NULL);
	T_CHECK(strstr(svg, ">ingress default deny</text>") != NULL);
	T_CHECK(strstr(svg, ">prod/allow-web</text>") != NULL);
	T_CHECK(strstr(svg, "<script>") == NULL);
	T_CHECK(strstr(svg, "&lt;script&gt;") != NULL);
	T_CHECK(strstr(svg, "more rows</text>") != NULL);
	T_CHECK(strstr(svg, "</svg>") != NULL);
	free(svg);
	flow_report_free(&rep);
}

int main(void)
{
	T_RUN(test_round_trip);
	T_RUN(test_bad_lines);
	T_RUN(test_query_and_merge);
	T_RUN(test_policies);
	T_RUN(test_svg);
	return t_done();
}
