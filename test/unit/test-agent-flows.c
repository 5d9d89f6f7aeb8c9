/* test-agent-flows — the GET /flows query: agent_http_query_get (the request's query kept
 * by agent_http_parse, percent-decoding) and agent_flows_query_parse. */
#include "agent/flows.h"
#include "agent/http.h"
#include "lib/err.h"
#include "test/lib/t.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#define NOW 1800000000000ULL

static void test_http_keeps_query(void)
{
	struct agent_http_req r;
	const char *h = "GET /flows?vm=default%2Fvm-a&since=5m HTTP/1.1\r\nHost: x\r\n\r\n";
	T_EQ(agent_http_parse(h, strlen(h), &r, NULL), (long)strlen(h));
	T_STREQ(r.path, "/flows");
	T_STREQ(r.query, "vm=default%2Fvm-a&since=5m");
	h = "GET /metrics HTTP/1.1\r\n\r\n";
	T_EQ(agent_http_parse(h, strlen(h), &r, NULL), (long)strlen(h));
	T_STREQ(r.query, "");
}

static void test_query_get(void)
{
	char v[16];
	struct err e = { 0 };
	T_EQ(agent_http_query_get("a=1&vm=ns%2Fx+y&vm=2", "vm", v, sizeof(v), &e), 1);
	T_STREQ(v, "ns/x y");
	T_EQ(agent_http_query_get("vmx=1&v=2", "vm", v, sizeof(v), &e), 0);
	T_EQ(agent_http_query_get("vm=", "vm", v, sizeof(v), &e), 1);
	T_STREQ(v, "");
	T_EQ(agent_http_query_get("vm=%2", "vm", v, sizeof(v), &e), -EINVAL);
	T_EQ(agent_http_query_get("vm=%zz", "vm", v, sizeof(v), &e), -EINVAL);
	T_EQ(agent_http_query_get("vm=a%00b", "vm", v, sizeof(v), &e), -EINVAL);
	T_CHECK(strstr(e.msg, "control byte") != NULL);
	T_EQ(agent_http_query_get("vm=0123456789abcdef", "vm", v, sizeof(v), &e), -ENAMETOOLONG);
}

static void test_flows_query(void)
{
	struct flow_query q;
	struct err e = { 0 };
	T_EQ(agent_flows_query_parse("vm=default%2Fvm-a&since=5m", NOW, &q, &e), 0);
	T_STREQ(q.ns, "default");
	T_STREQ(q.name, "vm-a");
	T_EQ(q.since_ms, NOW - 300000);
	T_EQ(agent_flows_query_parse("ip=2001:db8::5", NOW, &q, &e), 0);
	T_EQ(q.ip.family, AF_INET6);
	T_EQ(q.since_ms, 0);
	T_STREQ(q.name, "");
	T_EQ(agent_flows_query_parse("ip=198.18.0.5&since=1d", NOW, &q, &e), 0);
	T_EQ(q.since_ms, NOW - 86400000ULL);
	/* exactly one of vm and ip, each well formed */
	T_EQ(agent_flows_query_parse("since=5m", NOW, &q, &e), -EINVAL);
	T_CHECK(strstr(e.msg, "exactly one") != NULL);
	T_EQ(agent_flows_query_parse("vm=a/b&ip=198.18.0.5", NOW, &q, &e), -EINVAL);
	T_EQ(agent_flows_query_parse("vm=novm", NOW, &q, &e), -EINVAL);
	T_EQ(agent_flows_query_parse("vm=a/b/c", NOW, &q, &e), -EINVAL);
	T_EQ(agent_flows_query_parse("vm=/b", NOW, &q, &e), -EINVAL);
	T_EQ(agent_flows_query_parse("ip=198.18.0.300", NOW, &q, &e), -EINVAL);
	T_CHECK(strstr(e.msg, "query ip") != NULL);
	T_EQ(agent_flows_query_parse("vm=a/b&since=5", NOW, &q, &e), -EINVAL);
	T_EQ(agent_flows_query_parse("vm=a/b&since=5w", NOW, &q, &e), -EINVAL);
	T_EQ(agent_flows_query_parse("vm=a/b&since=m", NOW, &q, &e), -EINVAL);
	T_CHECK(strstr(e.msg, "query since") != NULL);
	/* a since longer than the epoch means everything */
	T_EQ(agent_flows_query_parse("vm=a/b&since=99999999d", 1000, &q, &e), 0);
	T_EQ(q.since_ms, 0);
}

int main(void)
{
	T_RUN(test_http_keeps_query);
	T_RUN(test_query_get);
	T_RUN(test_flows_query);
	return t_done();
}
