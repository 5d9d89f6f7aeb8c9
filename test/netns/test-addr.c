/* netns tests for net/addr against the real kernel; checked with `ip -j addr`. */
#include "lib/err.h"
#include "net/addr.h"
#include "net/link.h"
#include "net/nl.h"
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
static int IDX; /* ifindex of kv0 in A */

static void test_parse_and_format(void)
{
	struct ip_addr ip;
	uint8_t plen;
	char buf[IP_STRLEN];
	T_CHECK(ip_parse("198.18.0.1", &ip));
	T_EQ(ip.family, AF_INET);
	T_STREQ(ip_fmt(&ip, buf), "198.18.0.1");
	T_CHECK(ip_parse_prefix("2001:db8::1/64", &ip, &plen));
	T_EQ(ip.family, AF_INET6);
	T_EQ(plen, 64);
	T_STREQ(ip_fmt_prefix(&ip, plen, buf), "2001:db8::1/64");
	T_CHECK(ip_parse_prefix("198.18.0.1", &ip, &plen) && plen == 32);
	T_CHECK(!ip_parse_prefix("198.18.0.1/33", &ip, &plen));
	T_CHECK(!ip_parse_prefix("2001:db8::1/129", &ip, &plen));
	T_CHECK(!ip_parse_prefix("198.18.0.1/", &ip, &plen));
	T_CHECK(!ip_parse_prefix("198.18.0.1/2x", &ip, &plen));
	T_CHECK(!ip_parse("198.18.0", &ip));
	T_EQ(ip.family, 0);
	T_STREQ(ip_fmt(&ip, buf), "?");
}

static void test_add_del_v4(void)
{
	struct err e = {0};
	struct ip_addr ip;
	ip_parse("198.18.0.1", &ip);
	T_EQ(addr_add(SA, IDX, &ip, 24, 0, &e), 0);
	T_CHECK(tns_ipj_is(A, "-4 addr show dev kv0",
			   "[(a['local'], a['prefixlen']) for a in d[0]['addr_info']]",
			   "[('198.18.0.1', 24)]"));
	/* a second /32 on the same link */
	ip_parse("198.18.0.9", &ip);
	T_EQ(addr_add(SA, IDX, &ip, 32, 0, &e), 0);
	T_CHECK(tns_ipj_is(A, "-4 addr show dev kv0", "len(d[0]['addr_info'])", "2"));
	/* again: EEXIST with the object named */
	T_EQ(addr_add(SA, IDX, &ip, 32, 0, &e), -EEXIST);
	T_CHECK(strncmp(e.msg, "address 198.18.0.9/32 dev ", 26) == 0);
	t_note("%s", e.msg);
	T_EQ(addr_del(SA, IDX, &ip, 32, &e), 0);
	T_CHECK(tns_ipj_is(A, "-4 addr show dev kv0", "[a['local'] for a in d[0]['addr_info']]",
			   "['198.18.0.1']"));
	T_EQ(addr_del(SA, IDX, &ip, 32, &e), -EADDRNOTAVAIL);
	t_note("%s", e.msg);
}

static void test_add_v6_nodad(void)
{
	struct err e = {0};
	struct ip_addr ip;
	ip_parse("2001:db8::1", &ip);
	T_EQ(addr_add(SA, IDX, &ip, 64, IFA_F_NODAD, &e), 0);
	T_CHECK(tns_ipj_is(A, "-6 addr show dev kv0 scope global",
			   "[(a['local'], a['prefixlen'], a.get('nodad'), a.get('tentative')) "
			   "for a in d[0]['addr_info']]",
			   "[('2001:db8::1', 64, True, None)]"));
	/* without NODAD on an up link the address starts tentative (DAD runs) */
	ip_parse("2001:db8::2", &ip);
	T_EQ(addr_add(SA, IDX, &ip, 128, 0, &e), 0);
	T_CHECK(
	    tns_ipj_is(A, "-6 addr show dev kv0 scope global",
		       "[a.get('nodad') for a in d[0]['addr_info'] if a['local'] == '2001:db8::2']",
		       "[None]"));
	T_EQ(addr_del(SA, IDX, &ip, 128, &e), 0);
	ip_parse("2001:db8::1", &ip);
	T_EQ(addr_del(SA, IDX, &ip, 64, &e), 0);
	T_CHECK(tns_ipj_is(A, "-6 addr show dev kv0 scope global",
			   "[a for x in d for a in x.get('addr_info', [])]", "[]"));
}

static void test_bad_input(void)
{
	struct err e = {0};
	struct ip_addr ip = {0};
	T_EQ(addr_add(SA, IDX, &ip, 24, 0, &e), -EAFNOSUPPORT);
	ip_parse("198.18.0.7", &ip);
	T_EQ(addr_add(SA, IDX, &ip, 40, 0, &e), -EINVAL);
	T_EQ(addr_add(SA, 0, &ip, 32, 0, &e), -EINVAL);
	T_EQ(addr_add(SA, 9999, &ip, 32, 0, &e), -ENODEV);
	t_note("%s", e.msg);
}

/* The routed mode's gateway: one /32 scope host on two links (cni/routed.c). */
static void test_scope_host_two_links(void)
{
	struct err e = {0};
	struct ip_addr gw;
	int idx1 = 0;
	ip_parse("169.254.1.1", &gw);
	T_EQ(link_index(SA, "kv1", &idx1, &e), 0);
	T_EQ(link_set_up(SA, idx1, true, &e), 0);
	T_EQ(addr_add_scope(SA, IDX, &gw, 32, 0, RT_SCOPE_HOST, &e), 0);
	T_EQ(addr_add_scope(SA, idx1, &gw, 32, 0, RT_SCOPE_HOST, &e), 0);
	T_EQ(addr_add_scope(SA, idx1, &gw, 32, 0, RT_SCOPE_HOST, &e), -EEXIST);
	T_CHECK(strncmp(e.msg, "address 169.254.1.1/32 dev ", 27) == 0);
	t_note("%s", e.msg);
	T_CHECK(tns_ipj_is(A, "-4 addr show dev kv1",
			   "[(a['local'], a['prefixlen'], a['scope']) for a in d[0]['addr_info']]",
			   "[('169.254.1.1', 32, 'host')]"));
	/* one local route per link (proto kernel), each going with its address */
	T_CHECK(tns_ipj_is(A, "-4 route show table local 169.254.1.1",
			   "sorted((r['dev'], r['type'], r['protocol']) for r in d)",
			   "[('kv0', 'local', 'kernel'), ('kv1', 'local', 'kernel')]"));
	/* never the source of what leaves through the link */
	int st = -1;
	free(tns_sh(&st, A, "ip route add 198.19.200.1/32 dev kv1 scope link"));
	T_EQ(st, 0);
	T_CHECK(tns_ipj_is(A, "-4 route get 198.19.200.1", "d[0].get('prefsrc') != '169.254.1.1'",
			   "True"));
	T_EQ(addr_del(SA, IDX, &gw, 32, &e), 0);
	T_CHECK(tns_ipj_is(A, "-4 route show table local 169.254.1.1",
			   "[(r['dev'], r['type']) for r in d]", "[('kv1', 'local')]"));
	T_EQ(addr_del(SA, idx1, &gw, 32, &e), 0);
	T_CHECK(tns_ipj_is(A, "-4 route show table local 169.254.1.1", "d", "[]"));
}

int main(void)
{
	struct err e = {0};
	A = tns_new("addr");
	SA = A ? tns_sock(A) : NULL;
	struct link_veth v = {.name = "kv0", .peer = "kv1", .peer_netns_fd = -1};
	if (!SA || link_add_veth(SA, &v, &e) < 0 || link_index(SA, "kv0", &IDX, &e) < 0 ||
	    link_set_up(SA, IDX, true, &e) < 0) {
		printf("# %s\nnot ok - test-addr: setup\n", e.msg);
		return 1;
	}
	T_RUN(test_parse_and_format);
	T_RUN(test_add_del_v4);
	T_RUN(test_add_v6_nodad);
	T_RUN(test_bad_input);
	T_RUN(test_scope_host_two_links);
	nl_close(SA);
	return t_done();
}
