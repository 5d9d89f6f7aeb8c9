/* netns tests for net/route against the real kernel, IPv4 and IPv6; every result is
 * checked with `ip -j route show table all` parsed by python3. */
#include "lib/err.h"
#include "net/addr.h"
#include "net/link.h"
#include "net/nl.h"
#include "net/route.h"
#include "test/lib/t.h"
#include "test/lib/tns.h"

#include <errno.h>
#include <linux/if_addr.h>
#include <linux/rtnetlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static const char *A;
static struct nl_sock *SA;
static int IDX; /* ifindex of kv0 */

/* python: the routes with this dst, as (dev, gateway, metric, protocol, scope, table,
 * onlink) tuples */
#define SEL(fam, dst)                                                                              \
	"[(r['dev'], r.get('gateway'), r.get('metric'), r['protocol'], r.get('scope'), "           \
	"r.get('table', 'main'), 'onlink' in r['flags']) for r in d if r['dst'] == '" dst "']"
#define V4 "-4 route show table all"
#define V6 "-6 route show table all"

static struct rt_route route(const char *dst, const char *gw)
{
	struct rt_route r;
	memset(&r, 0, sizeof(r));
	T_CHECK(ip_parse_prefix(dst, &r.dst, &r.dst_len));
	if (gw)
		T_CHECK(ip_parse(gw, &r.gw));
	return r;
}

static void test_v4_host_route_metric_proto_scope(void)
{
	struct err e = {0};
	struct rt_route r = route("198.18.1.5/32", NULL);
	r.oif = IDX;
	r.scope = RT_SCOPE_LINK;
	r.metric = 1024;
	r.protocol = RT_PROTO_KVNET;
	T_EQ(rt_add(SA, &r, &e), 0);
	T_CHECK(tns_ipj_is(A, V4, SEL(4, "198.18.1.5"),
			   "[('kv0', None, 1024, '75', 'link', 'main', False)]"));
	T_EQ(rt_add(SA, &r, &e), -EEXIST);
	T_STREQ(e.msg, "route 198.18.1.5/32: add: File exists");
	/* the same prefix at another metric is another route (the migration's 512) */
	r.metric = 512;
	T_EQ(rt_add(SA, &r, &e), 0);
	T_CHECK(tns_ipj_is(A, V4, "sorted(r['metric'] for r in d if r['dst'] == '198.18.1.5')",
			   "[512, 1024]"));
	/* delete picks the one with the metric asked for */
	T_EQ(rt_del(SA, &r, &e), 0);
	T_CHECK(tns_ipj_is(A, V4, "sorted(r['metric'] for r in d if r['dst'] == '198.18.1.5')",
			   "[1024]"));
	r.metric = 77;
	T_EQ(rt_del(SA, &r, &e), -ESRCH);
	t_note("%s", e.msg);
	r.metric = 1024;
	T_EQ(rt_del(SA, &r, &e), 0);
	T_CHECK(tns_ipj_is(A, V4, SEL(4, "198.18.1.5"), "[]"));
}

static void test_v4_gateway_and_replace(void)
{
	struct err e = {0};
	struct rt_route r = route("198.18.2.0/24", "198.18.0.2");
	r.oif = IDX;
	r.metric = 100;
	r.protocol = RT_PROTO_KVNET;
	T_EQ(rt_add(SA, &r, &e), 0);
	T_CHECK(tns_ipj_is(A, V4, SEL(4, "198.18.2.0/24"),
			   "[('kv0', '198.18.0.2', 100, '75', None, 'main', False)]"));
	/* replace: same destination, table and metric, new gateway: still one route */
	r.gw = route("198.18.9.9/32", "198.18.0.3").gw;
	T_EQ(rt_replace(SA, &r, &e), 0);
	T_CHECK(tns_ipj_is(A, V4, SEL(4, "198.18.2.0/24"),
			   "[('kv0', '198.18.0.3', 100, '75', None, 'main', False)]"));
	/* replace of something absent creates it */
	struct rt_route n = route("198.18.2.128/25", NULL);
	n.oif = IDX;
	n.scope = RT_SCOPE_LINK;
	n.protocol = RT_PROTO_KVNET;
	T_EQ(rt_replace(SA, &n, &e), 0);
	T_CHECK(tns_ipj_is(A, V4, "len(" SEL(4, "198.18.2.128/25") ")", "1"));
	T_EQ(rt_del(SA, &r, &e), 0);
	T_EQ(rt_del(SA, &n, &e), 0);
	T_CHECK(tns_ipj_is(A, V4, "[r for r in d if r['dst'].startswith('198.18.2.')]", "[]"));
}

static void test_v4_onlink_and_extack(void)
{
	struct err e = {0};
	struct rt_route r = route("198.18.3.0/24", "198.19.9.9");
	r.oif = IDX;
	r.protocol = RT_PROTO_KVNET;
	/* the gateway is not on kv0's subnet: the kernel says why, we carry it */
	T_EQ(rt_add(SA, &r, &e), -ENETUNREACH);
	T_STREQ(e.msg, "route 198.18.3.0/24: add: Nexthop has invalid gateway");
	T_CHECK(tns_ipj_is(A, V4, SEL(4, "198.18.3.0/24"), "[]"));
	r.onlink = true;
	T_EQ(rt_add(SA, &r, &e), 0);
	T_CHECK(tns_ipj_is(A, V4, SEL(4, "198.18.3.0/24"),
			   "[('kv0', '198.19.9.9', None, '75', None, 'main', True)]"));
	/* the pod's default route: via 169.254.1.1-style on-link gateway */
	struct rt_route def = route("0.0.0.0/0", "198.19.255.1");
	def.oif = IDX;
	def.onlink = true;
	def.table = 200;
	def.protocol = RT_PROTO_KVNET;
	T_EQ(rt_add(SA, &def, &e), 0);
	T_CHECK(tns_ipj_is(A, V4, SEL(4, "default"),
			   "[('kv0', '198.19.255.1', None, '75', None, '200', True)]"));
	T_EQ(rt_del(SA, &r, &e), 0);
	T_EQ(rt_del(SA, &def, &e), 0);
}

static void test_v4_tables(void)
{
	struct err e = {0};
	struct rt_route r = route("198.18.4.0/24", NULL);
	r.oif = IDX;
	r.scope = RT_SCOPE_LINK;
	r.protocol = RT_PROTO_KVNET;
	r.table = 100;
	T_EQ(rt_add(SA, &r, &e), 0);
	r.table = 1000; /* above 255: only RTA_TABLE can say it */
	T_EQ(rt_add(SA, &r, &e), 0);
	T_CHECK(tns_ipj_is(A, V4, "sorted(x[5] for x in " SEL(4, "198.18.4.0/24") ")",
			   "['100', '1000']"));
	T_CHECK(tns_ipj_is(A, "-4 route show table 1000", "[r['dst'] for r in d]",
			   "['198.18.4.0/24']"));
	/* a delete in table 100 leaves table 1000 alone */
	r.table = 100;
	T_EQ(rt_del(SA, &r, &e), 0);
	T_CHECK(tns_ipj_is(A, V4, "[x[5] for x in " SEL(4, "198.18.4.0/24") "]", "['1000']"));
	r.table = 1000;
	T_EQ(rt_del(SA, &r, &e), 0);
}

static void test_v6_routes(void)
{
	struct err e = {0};
	struct rt_route r = route("2001:db8:1::/64", "2001:db8::2");
	r.oif = IDX;
	r.metric = 1024;
	r.protocol = RT_PROTO_KVNET;
	T_EQ(rt_add(SA, &r, &e), 0);
	T_CHECK(tns_ipj_is(A, V6, SEL(6, "2001:db8:1::/64"),
			   "[('kv0', '2001:db8::2', 1024, '75', None, 'main', False)]"));
	/* host route at elevated priority */
	struct rt_route h = route("2001:db8:2::5/128", NULL);
	h.oif = IDX;
	h.metric = 512;
	h.protocol = RT_PROTO_KVNET;
	T_EQ(rt_add(SA, &h, &e), 0);
	T_CHECK(tns_ipj_is(A, V6, SEL(6, "2001:db8:2::5"),
			   "[('kv0', None, 512, '75', None, 'main', False)]"));
	/* onlink gateway outside every prefix on kv0 */
	struct rt_route o = route("2001:db8:3::/64", "2001:db8:99::1");
	o.oif = IDX;
	o.protocol = RT_PROTO_KVNET;
	T_CHECK(rt_add(SA, &o, &e) < 0);
	t_note("%s", e.msg);
	T_CHECK(strncmp(e.msg, "route 2001:db8:3::/64: add: ", 28) == 0);
	o.onlink = true;
	T_EQ(rt_add(SA, &o, &e), 0);
	T_CHECK(tns_ipj_is(A, V6, "[x[1] for x in " SEL(6, "2001:db8:3::/64") " if x[6]]",
			   "['2001:db8:99::1']"));
	/* replace the gateway of the /64 */
	r.gw = route("2001:db8::9/128", "2001:db8::3").gw;
	T_EQ(rt_replace(SA, &r, &e), 0);
	T_CHECK(tns_ipj_is(A, V6, SEL(6, "2001:db8:1::/64"),
			   "[('kv0', '2001:db8::3', 1024, '75', None, 'main', False)]"));
	/* table */
	struct rt_route t = route("2001:db8:4::/64", NULL);
	t.oif = IDX;
	t.table = 300;
	t.protocol = RT_PROTO_KVNET;
	T_EQ(rt_add(SA, &t, &e), 0);
	T_CHECK(tns_ipj_is(A, V6, "[x[5] for x in " SEL(6, "2001:db8:4::/64") "]", "['300']"));
	/* the pod's IPv6 default route: via the host veth's link-local address */
	struct rt_route d6 = route("::/0", "fe80::ecee:eeff:feee:eeee");
	d6.oif = IDX;
	d6.table = 300;
	d6.protocol = RT_PROTO_KVNET;
	T_EQ(rt_add(SA, &d6, &e), 0);
	T_CHECK(
	    tns_ipj_is(A, "-6 route show table 300", SEL(6, "default"),
		       "[('kv0', 'fe80::ecee:eeff:feee:eeee', 1024, '75', None, 'main', False)]"));
	T_EQ(rt_del(SA, &d6, &e), 0);
	T_EQ(rt_del(SA, &r, &e), 0);
	T_EQ(rt_del(SA, &h, &e), 0);
	T_EQ(rt_del(SA, &o, &e), 0);
	T_EQ(rt_del(SA, &t, &e), 0);
	T_CHECK(tns_ipj_is(A, V6,
			   "[r for r in d if r['dst'].startswith('2001:db8:') and "
			   "r['dst'] != '2001:db8::/64' and r.get('table') != 'local']",
			   "[]"));
	T_EQ(rt_del(SA, &t, &e), -ESRCH);
}

/* collects dumped routes as "dst/len metric table" strings */
struct got {
	char s[2048]; /* space-separated */
	int n;	      /* count */
};

static int collect(const struct rt_route *r, void *arg, struct err *e)
{
	struct got *g = arg;
	char a[IP_STRLEN];
	size_t off = strlen(g->s);
	(void)e;
	snprintf(g->s + off, sizeof(g->s) - off, "%s%s:%u:%u", g->n ? " " : "", rt_fmt(r, a),
		 r->metric, r->table);
	g->n++;
	return 0;
}

static void test_dump_filtered_by_protocol(void)
{
	struct err e = {0};
	const char *dsts[] = {"198.18.10.0/24", "198.18.11.1/32", "198.18.12.0/24"};
	for (int i = 0; i < 3; i++) {
		struct rt_route r = route(dsts[i], NULL);
		r.oif = IDX;
		r.scope = RT_SCOPE_LINK;
		r.metric = 1024;
		r.protocol = i == 2 ? RTPROT_STATIC : RT_PROTO_KVNET;
		r.table = i == 1 ? 1000 : 0;
		T_EQ(rt_add(SA, &r, &e), 0);
	}
	struct rt_route r6 = route("2001:db8:10::/64", NULL);
	r6.oif = IDX;
	r6.protocol = RT_PROTO_KVNET;
	T_EQ(rt_add(SA, &r6, &e), 0);

	struct got g = {.n = 0};
	struct rt_filter f = {.family = AF_INET, .protocol = RT_PROTO_KVNET};
	T_EQ(rt_dump(SA, &f, collect, &g, &e), 0);
	T_EQ(g.n, 2); /* in table order: 1000 may come before main */
	T_CHECK(strstr(g.s, "198.18.10.0/24:1024:254") != NULL);
	T_CHECK(strstr(g.s, "198.18.11.1/32:1024:1000") != NULL);
	/* the independent view: what iproute2 lists as protocol 75, IPv4, all tables */
	char *ip = tns_ipj(A, V4, "len([r for r in d if r['protocol'] == '75'])");
	T_EQ(g.n, ip ? atoi(ip) : -1);
	free(ip);

	memset(&g, 0, sizeof(g));
	f.table = 1000;
	T_EQ(rt_dump(SA, &f, collect, &g, &e), 0);
	T_STREQ(g.s, "198.18.11.1/32:1024:1000");

	memset(&g, 0, sizeof(g));
	struct rt_filter f6 = {.family = AF_INET6, .protocol = RT_PROTO_KVNET};
	T_EQ(rt_dump(SA, &f6, collect, &g, &e), 0);
	T_STREQ(g.s, "2001:db8:10::/64:1024:254");

	/* everything IPv4, unfiltered: the same count iproute2 shows */
	memset(&g, 0, sizeof(g));
	struct rt_filter all = {.family = AF_INET};
	T_EQ(rt_dump(SA, &all, collect, &g, &e), 0);
	ip = tns_ipj(A, V4, "len(d)");
	T_EQ(g.n, ip ? atoi(ip) : -1);
	free(ip);
}

static void test_bad_input(void)
{
	struct err e = {0};
	struct rt_route r;
	memset(&r, 0, sizeof(r));
	T_EQ(rt_add(SA, &r, &e), -EAFNOSUPPORT);
	r = route("198.18.20.0/24", "2001:db8::1");
	T_EQ(rt_add(SA, &r, &e), -EINVAL);
	T_CHECK(strstr(e.msg, "gateway family") != NULL);
	r = route("198.18.20.0/24", NULL);
	r.dst_len = 33;
	T_EQ(rt_add(SA, &r, &e), -EINVAL);
	r = route("198.18.20.0/24", NULL);
	r.oif = 9999;
	T_EQ(rt_add(SA, &r, &e), -ENODEV);
	t_note("%s", e.msg);
	struct rt_filter f = {.family = 0};
	T_EQ(rt_dump(SA, &f, collect, NULL, &e), -EAFNOSUPPORT);
}

int main(void)
{
	struct err e = {0};
	struct ip_addr a4, a6;
	A = tns_new("route");
	SA = A ? tns_sock(A) : NULL;
	struct link_veth v = {.name = "kv0", .peer = "kv1", .peer_netns_fd = -1};
	int peer = 0;
	ip_parse("198.18.0.1", &a4);
	ip_parse("2001:db8::1", &a6);
	if (!SA || link_add_veth(SA, &v, &e) < 0 || link_index(SA, "kv0", &IDX, &e) < 0 ||
	    link_index(SA, "kv1", &peer, &e) < 0 || link_set_up(SA, IDX, true, &e) < 0 ||
	    link_set_up(SA, peer, true, &e) < 0 || addr_add(SA, IDX, &a4, 24, 0, &e) < 0 ||
	    addr_add(SA, IDX, &a6, 64, IFA_F_NODAD, &e) < 0) {
		printf("# %s\nnot ok - test-route: setup\n", e.msg);
		return 1;
	}
	T_RUN(test_v4_host_route_metric_proto_scope);
	T_RUN(test_v4_gateway_and_replace);
	T_RUN(test_v4_onlink_and_extack);
	T_RUN(test_v4_tables);
	T_RUN(test_v6_routes);
	T_RUN(test_dump_filtered_by_protocol);
	T_RUN(test_bad_input);
	nl_close(SA);
	return t_done();
}
