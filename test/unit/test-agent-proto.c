/* test-agent-proto — the CNI <-> agent line protocol, the agent's HTTP request parser
 * and the metrics text format. */
#include "agent/http.h"
#include "agent/metrics.h"
#include "agent/proto.h"
#include "lib/err.h"
#include "test/lib/t.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static int req(const char *s, struct agent_req *r, struct err *e)
{
	err_clear(e);
	return agent_req_parse(s, strlen(s), r, e);
}

static void test_req_add_roundtrip(void)
{
	struct agent_req r;
	struct err e = { 0 };
	const char *line = "{\"op\":\"add\",\"node\":\"n\",\"datastore\":\"file:/d\",\"container_id\":\"abc\",\"ifname\":\"eth0\","
			   "\"veth\":\"kv0123456789a\",\"ips\":[\"198.18.0.5\",\"2001:db8::5\"],"
			   "\"namespace\":\"ns\",\"pod\":\"virt-launcher-x\",\"uid\":\"u-1\","
			   "\"handle\":\"net.vmi.ns.vm\",\"vm\":\"vm\",\"target\":true,"
			   "\"wait\":true}\n";
	T_EQ(req(line, &r, &e), 0);
	T_EQ(r.op, AGENT_OP_ADD);
	T_CHECK(r.wait && r.ep.target);
	T_STREQ(r.ep.cid, "abc");
	T_STREQ(r.ep.veth, "kv0123456789a");
	T_STREQ(r.ep.vm, "vm");
	T_EQ(r.ep.n_ip, 2);
	T_EQ(r.ep.ip[1].family, AF_INET6);
	char buf[AGENT_PROTO_LINE_MAX];
	long n = agent_req_format(&r, buf, sizeof(buf));
	T_CHECK(n > 0 && buf[n - 1] == '\n');
	struct agent_req r2;
	T_EQ(agent_req_parse(buf, (size_t)n, &r2, &e), 0);
	T_CHECK(memcmp(&r.ep, &r2.ep, sizeof(r.ep)) == 0 && r2.wait);
	T_STREQ(r2.node, "n");
	T_STREQ(r2.datastore, "file:/d");
	/* too small a buffer: -ENOSPC, never a cut line */
	T_EQ(agent_req_format(&r, buf, 40), -ENOSPC);
}

/* node and datastore: required in a request, optional in an endpoint file */
static void test_req_identity(void)
{
	struct agent_req r;
	struct err e = { 0 };
	const char *full = "{\"op\":\"add\",\"node\":\"node-a\",\"datastore\":"
			   "\"kubernetes:https://198.18.0.1:6443\",\"container_id\":\"c\","
			   "\"ifname\":\"eth0\",\"veth\":\"kv1\",\"ips\":[\"198.18.0.5\"]}";
	T_EQ(req(full, &r, &e), 0);
	T_STREQ(r.node, "node-a");
	T_STREQ(r.datastore, "kubernetes:https://198.18.0.1:6443");
	char buf[AGENT_PROTO_LINE_MAX];
	long n = agent_req_format(&r, buf, sizeof(buf));
	T_CHECK(n > 0 && strstr(buf, "\"node\":\"node-a\",\"datastore\":"
				"\"kubernetes:https://198.18.0.1:6443\""));
	const char *nonode = "{\"op\":\"add\",\"datastore\":\"file:/d\",\"container_id\":"
			     "\"c\",\"ifname\":\"eth0\",\"veth\":\"kv1\",\"ips\":[\"198.18.0.5\"]}";
	T_EQ(req(nonode, &r, &e), -EINVAL);
	T_CHECK(strstr(e.msg, "node: missing"));
	const char *nods = "{\"op\":\"add\",\"node\":\"n\",\"container_id\":"
			   "\"c\",\"ifname\":\"eth0\",\"veth\":\"kv1\",\"ips\":[\"198.18.0.5\"]}";
	T_EQ(req(nods, &r, &e), -EINVAL);
	T_CHECK(strstr(e.msg, "datastore: missing"));
	const char *empty = "{\"op\":\"add\",\"node\":\"\",\"datastore\":\"file:/d\","
			    "\"container_id\":\"c\",\"ifname\":\"eth0\",\"veth\":\"kv1\","
			    "\"ips\":[\"198.18.0.5\"]}";
	T_EQ(req(empty, &r, &e), -EINVAL);
	T_CHECK(strstr(e.msg, "node: empty"));
	const char *del = "{\"op\":\"del\",\"node\":\"n\",\"container_id\":\"c\","
			  "\"ifname\":\"eth0\"}";
	T_EQ(req(del, &r, &e), -EINVAL);
	T_CHECK(strstr(e.msg, "del: node: not allowed"));
	/* an endpoint file from before the identity: accepted, identity "" */
	const char *old = "{\"op\":\"add\",\"container_id\":\"c\",\"ifname\":\"eth0\","
			  "\"veth\":\"kv1\",\"ips\":[\"198.18.0.5\"]}\n";
	err_clear(&e);
	T_EQ(agent_req_parse_stored(old, strlen(old), &r, &e), 0);
	T_CHECK(r.node[0] == 0 && r.datastore[0] == 0);
	n = agent_req_format(&r, buf, sizeof(buf));
	T_CHECK(n > 0 && !strstr(buf, "node") && !strstr(buf, "datastore"));
	T_EQ(agent_req_parse_stored(full, strlen(full), &r, &e), 0);
	T_STREQ(r.node, "node-a");
	/* the file parser is as strict as the request parser otherwise */
	const char *bad = "{\"op\":\"add\",\"container_id\":\"c\",\"ifname\":\"eth0\","
			  "\"veth\":\"kv1\",\"ips\":[\"x\"]}";
	T_EQ(agent_req_parse_stored(bad, strlen(bad), &r, &e), -EINVAL);
}

static void test_req_del_ping(void)
{
	struct agent_req r;
	struct err e = { 0 };
	T_EQ(req("{\"op\":\"del\",\"container_id\":\"abc\",\"ifname\":\"eth0\"}", &r, &e), 0);
	T_EQ(r.op, AGENT_OP_DEL);
	T_STREQ(r.ep.ifname, "eth0");
	T_EQ(req("{\"op\":\"ping\"}\n", &r, &e), 0);
	T_EQ(r.op, AGENT_OP_PING);
}

static void test_req_errors(void)
{
	static const struct {
		const char *line; /* request */
		const char *why;  /* part of the message */
	} bad[] = {
		{ "", "not JSON" },
		{ "[]", "not a JSON object" },
		{ "{\"op\":\"add\"", "not JSON" },
		{ "{\"op\":\"kill\"}", "is not add, del or ping" },
		{ "{\"op\":1}", "op: not a string" },
		{ "{}", "op: missing" },
		{ "{\"op\":\"ping\",\"x\":1}", "unknown field \"x\"" },
		{ "{\"op\":\"del\",\"container_id\":\"a\"}", "ifname: missing" },
		{ "{\"op\":\"del\",\"container_id\":\"a\",\"ifname\":\"e\",\"ips\":[]}",
		  "ips: not allowed" },
		{ "{\"op\":\"del\",\"container_id\":\"../x\",\"ifname\":\"e\"}", "'/'" },
		{ "{\"op\":\"add\",\"node\":\"n\",\"datastore\":\"file:/d\",\"container_id\":\"a\",\"ifname\":\"e\",\"ips\":[\"1.2.3.4\"]}",
		  "veth: missing" },
		{ "{\"op\":\"add\",\"node\":\"n\",\"datastore\":\"file:/d\",\"container_id\":\"a\",\"ifname\":\"e\",\"veth\":\"v\"}",
		  "ips: missing" },
		{ "{\"op\":\"add\",\"node\":\"n\",\"datastore\":\"file:/d\",\"container_id\":\"a\",\"ifname\":\"e\",\"veth\":\"v\","
		  "\"ips\":[]}", "ips: empty" },
		{ "{\"op\":\"add\",\"node\":\"n\",\"datastore\":\"file:/d\",\"container_id\":\"a\",\"ifname\":\"e\",\"veth\":\"v\","
		  "\"ips\":[\"198.18.0.300\"]}", "ips[0]: not an IP address" },
		{ "{\"op\":\"add\",\"node\":\"n\",\"datastore\":\"file:/d\",\"container_id\":\"a\",\"ifname\":\"e\",\"veth\":\"v\","
		  "\"ips\":[\"198.18.0.3\",\"198.18.0.3\"]}", "ips[1]: listed twice" },
		{ "{\"op\":\"add\",\"node\":\"n\",\"datastore\":\"file:/d\",\"container_id\":\"a\",\"ifname\":\"e\",\"veth\":\"v\","
		  "\"ips\":[\"198.18.0.1\",\"198.18.0.2\",\"198.18.0.3\",\"198.18.0.4\","
		  "\"198.18.0.5\"]}", "more than 4" },
		{ "{\"op\":\"add\",\"node\":\"n\",\"datastore\":\"file:/d\",\"container_id\":\"a\",\"ifname\":\"e\",\"veth\":"
		  "\"kv-way-too-long-name\",\"ips\":[\"198.18.0.3\"]}", "veth: longer than 15" },
		{ "{\"op\":\"add\",\"node\":\"n\",\"datastore\":\"file:/d\",\"container_id\":\"a\",\"ifname\":\"e\",\"veth\":\"v\","
		  "\"ips\":[\"198.18.0.3\"],\"wait\":\"yes\"}", "wait: not a boolean" },
		{ "{\"op\":\"ping\"}\n{\"op\":\"ping\"}", "more than one line" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct agent_req r;
		struct err e = { 0 };
		int rc = req(bad[i].line, &r, &e);
		if (!T_EQ(rc, -EINVAL) || !T_CHECK(strstr(e.msg, bad[i].why)))
			t_note("line %zu: %s -> %s", i, bad[i].line, e.msg);
	}
}

static void test_resp(void)
{
	struct agent_resp r = { .status = AGENT_ST_ERROR };
	snprintf(r.error, sizeof(r.error), "veth \"kvx\" missing");
	char buf[512];
	long n = agent_resp_format(&r, buf, sizeof(buf));
	T_CHECK(n > 0);
	struct agent_resp back;
	struct err e = { 0 };
	T_EQ(agent_resp_parse(buf, (size_t)n, &back, &e), 0);
	T_EQ(back.status, AGENT_ST_ERROR);
	T_STREQ(back.error, "veth \"kvx\" missing");
	const char *ok = "{\"status\":\"programmed\"}\n";
	T_EQ(agent_resp_parse(ok, strlen(ok), &back, &e), 0);
	T_EQ(back.status, AGENT_ST_PROGRAMMED);
	const char *b1 = "{\"status\":\"programmed\",\"error\":\"x\"}";
	T_EQ(agent_resp_parse(b1, strlen(b1), &back, &e), -EINVAL);
	const char *b2 = "{\"status\":\"error\"}";
	T_EQ(agent_resp_parse(b2, strlen(b2), &back, &e), -EINVAL);
	const char *b3 = "{\"status\":\"maybe\"}";
	T_EQ(agent_resp_parse(b3, strlen(b3), &back, &e), -EINVAL);
}

static long hp(const char *s, struct agent_http_req *r)
{
	return agent_http_parse(s, strlen(s), r, NULL);
}

static void test_http_parse(void)
{
	struct agent_http_req r;
	const char *g = "GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\nAccept:  */*  \r\n\r\n";
	T_EQ(hp(g, &r), (long)strlen(g));
	T_STREQ(r.method, "GET");
	T_STREQ(r.path, "/metrics");
	T_EQ(r.minor, 1);
	/* incomplete heads, fed in pieces */
	for (size_t i = 0; i < strlen(g); i++)
		T_EQ(agent_http_parse(g, i, &r, NULL), 0);
	T_EQ(hp("HEAD /healthz HTTP/1.0\r\n\r\nextra", &r), 26);
	T_STREQ(r.method, "HEAD");
	T_EQ(hp("GET /x HTTP/1.1\r\nContent-Length: 0\r\n\r\n", &r), 38);
	static const char *const bad[] = {
		"GET /x HTTP/1.1\n\n",
		"GET /x HTTP/1.1\r\nHost: a\n\r\n",
		"GET x HTTP/1.1\r\n\r\n",
		"GET /x HTTP/2.0\r\n\r\n",
		"GET  /x HTTP/1.1\r\n\r\n",
		"/x HTTP/1.1\r\n\r\n",
		"GET /x HTTP/1.1\r\nBad Header: 1\r\n\r\n",
		"GET /x HTTP/1.1\r\n: 1\r\n\r\n",
		"GET /x HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
		"GET /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
		"GET /x HTTP/1.1\r\nA: b\x01\r\n\r\n",
		"GET /a b HTTP/1.1\r\n\r\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct err e = { 0 };
		long rc = agent_http_parse(bad[i], strlen(bad[i]), &r, &e);
		if (!T_EQ(rc, -EPROTO))
			t_note("case %zu", i);
	}
	char *big = malloc(AGENT_HTTP_HEAD_MAX + 100);
	memset(big, 'a', AGENT_HTTP_HEAD_MAX + 100);
	memcpy(big, "GET /x HTTP/1.1\r\nX: ", 20);
	struct err e = { 0 };
	T_EQ(agent_http_parse(big, AGENT_HTTP_HEAD_MAX + 100, &r, &e), -EMSGSIZE);
	free(big);
	size_t len;
	char *resp = agent_http_response(503, "text/plain", "not ready\n", 10, false, &len);
	T_CHECK(resp && strstr(resp, "HTTP/1.1 503 Service Unavailable\r\n") == resp);
	T_CHECK(resp && strstr(resp, "Content-Length: 10\r\n") &&
		strstr(resp, "\r\n\r\nnot ready\n"));
	free(resp);
	resp = agent_http_response(200, "text/plain", "ok\n", 3, true, &len);
	T_CHECK(resp && len > 3 && memcmp(resp + len - 4, "\r\n\r\n", 4) == 0);
	free(resp);
}

static void test_metrics(void)
{
	struct agent_metrics *r = agent_metrics_new();
	struct agent_metric *c = agent_metric_new(r, "kvnet_migrations_total",
						  "Migrations, by outcome.", AGENT_M_COUNTER,
						  "outcome");
	struct agent_metric *g = agent_metric_new(r, "kvnet_x", "a \\ b\nc", AGENT_M_GAUGE,
						  NULL);
	double bounds[] = { 0.0001, 0.00025, 0.001 };
	struct agent_metric *h = agent_metric_histogram(r, "kvnet_lat_seconds", "Latency.",
							bounds, 3);
	T_CHECK(c && g && h);
	T_CHECK(!agent_metric_new(r, "kvnet_x", "", AGENT_M_GAUGE, NULL)); /* taken */
	T_CHECK(!agent_metric_new(r, "9bad", "", AGENT_M_GAUGE, NULL));
	T_CHECK(!agent_metric_new(r, "kvnet_y", "", AGENT_M_GAUGE, "__reserved"));
	double desc[] = { 2, 1 };
	T_CHECK(!agent_metric_histogram(r, "kvnet_z", "", desc, 2));
	agent_metric_add(c, "succeeded", 2);
	agent_metric_add(c, "fail\"ed", 1);
	agent_metric_add(c, "succeeded", -5); /* counters never go down */
	agent_metric_set(g, NULL, 0.5);
	agent_metric_observe(h, 0.00005);
	agent_metric_observe(h, 0.0002);
	agent_metric_observe(h, 5);
	T_EQ(agent_metric_get(c, "succeeded"), 2);
	size_t len;
	char *t = agent_metrics_format(r, &len);
	const char *want =
		"# HELP kvnet_migrations_total Migrations, by outcome.\n"
		"# TYPE kvnet_migrations_total counter\n"
		"kvnet_migrations_total{outcome=\"succeeded\"} 2\n"
		"kvnet_migrations_total{outcome=\"fail\\\"ed\"} 1\n"
		"# HELP kvnet_x a \\\\ b\\nc\n"
		"# TYPE kvnet_x gauge\n"
		"kvnet_x 0.5\n"
		"# HELP kvnet_lat_seconds Latency.\n"
		"# TYPE kvnet_lat_seconds histogram\n"
		"kvnet_lat_seconds_bucket{le=\"0.0001\"} 1\n"
		"kvnet_lat_seconds_bucket{le=\"0.00025\"} 2\n"
		"kvnet_lat_seconds_bucket{le=\"0.001\"} 2\n"
		"kvnet_lat_seconds_bucket{le=\"+Inf\"} 3\n"
		"kvnet_lat_seconds_sum 5.00025\n"
		"kvnet_lat_seconds_count 3\n";
	T_STREQ(t, want);
	T_EQ(len, strlen(want));
	free(t);
	agent_metrics_free(r);
}

/* Several labels, a series cap of its own, and clearing (kvnet_policy_dropped_*). */
#define S "\x1f"
static void test_metrics_wide(void)
{
	struct agent_metrics *r = agent_metrics_new();
	struct agent_metric *w = agent_metric_new_wide(r, "kvnet_drops_total", "Drops.",
						       AGENT_M_COUNTER,
						       "namespace,pod,direction", 3);
	T_CHECK(w != NULL);
	T_CHECK(!agent_metric_new_wide(r, "kvnet_a", "", AGENT_M_GAUGE, "a,,b", 3));
	T_CHECK(!agent_metric_new_wide(r, "kvnet_b", "", AGENT_M_GAUGE, "a,__b", 3));
	T_CHECK(!agent_metric_new_wide(r, "kvnet_c", "", AGENT_M_GAUGE, "a,b,c,d,e", 3));
	T_CHECK(!agent_metric_new_wide(r, "kvnet_d", "", AGENT_M_GAUGE, "a", 0));
	agent_metric_set(w, "ns1" S "vm-a" S "ingress", 7);
	agent_metric_set(w, "ns1" S "vm-a" S "egress", 1);
	agent_metric_set(w, "ns\"2" S "p", 2); /* a missing value prints as "" */
	agent_metric_set(w, "ns3" S "q" S "ingress", 9); /* beyond its 3 series: dropped */
	T_EQ(agent_metric_get(w, "ns1" S "vm-a" S "ingress"), 7);
	T_EQ(agent_metric_get(w, "ns3" S "q" S "ingress"), 0);
	size_t len;
	char *t = agent_metrics_format(r, &len);
	T_STREQ(t, "# HELP kvnet_drops_total Drops.\n"
		   "# TYPE kvnet_drops_total counter\n"
		   "kvnet_drops_total{namespace=\"ns1\",pod=\"vm-a\",direction=\"ingress\"} 7\n"
		   "kvnet_drops_total{namespace=\"ns1\",pod=\"vm-a\",direction=\"egress\"} 1\n"
		   "kvnet_drops_total{namespace=\"ns\\\"2\",pod=\"p\",direction=\"\"} 2\n");
	free(t);
	agent_metric_clear(w);
	agent_metric_set(w, "ns3" S "q" S "ingress", 9);
	t = agent_metrics_format(r, &len);
	T_STREQ(t, "# HELP kvnet_drops_total Drops.\n"
		   "# TYPE kvnet_drops_total counter\n"
		   "kvnet_drops_total{namespace=\"ns3\",pod=\"q\",direction=\"ingress\"} 9\n");
	free(t);
	agent_metrics_free(r);
}

#undef S

int main(void)
{
	T_RUN(test_req_add_roundtrip);
	T_RUN(test_req_identity);
	T_RUN(test_req_del_ping);
	T_RUN(test_req_errors);
	T_RUN(test_resp);
	T_RUN(test_http_parse);
	T_RUN(test_metrics);
	T_RUN(test_metrics_wide);
	return t_done();
}
