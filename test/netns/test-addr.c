/* netns tests for net/addr against the real kernel; checked with `ip -j addr`. */
#include "lib/err.h"
#include "net/addr.h"
#include "net/link.h"
#include "net/nl.h"
#include "test/lib/t.h"
#include "test/lib/tns.h"

#include <errno.h>
#include <linux/if_addr.h>
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
	nl_close(SA);
	return t_done();
}
