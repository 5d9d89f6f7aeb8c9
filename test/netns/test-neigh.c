/* netns tests for net/neigh against the real kernel: permanent and proxy entries, IPv4
 * and IPv6, reachable (announced) entries, checked with `ip -j neigh show [proxy]` parsed by python3. */
#include "lib/err.h"
#include "net/addr.h"
#include "net/link.h"
#include "net/neigh.h"
#include "net/nl.h"
#include "test/lib/t.h"
#include "test/lib/tns.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *A;
static struct nl_sock *SA;
static int IDX; /* ifindex of kv0 */

static struct ip_addr ip(const char *s)
{
	struct ip_addr a;
	T_CHECK(ip_parse(s, &a));
	return a;
}

#define NEIGH "[(n['dst'], n.get('lladdr'), n.get('state')) for n in d]"
#define PROXY "[(n['dst'], n['dev']) for n in d]"

static void test_permanent_v4(void)
{
	struct err e = {0};
	const uint8_t mac[6] = {0x02, 0x4b, 0x56, 0, 0, 5};
	struct ip_addr a = ip("198.18.0.5");
	T_EQ(neigh_add(SA, IDX, &a, mac, &e), 0);
	T_CHECK(tns_ipj_is(A, "-4 neigh show dev kv0", NEIGH,
			   "[('198.18.0.5', '02:4b:56:00:00:05', ['PERMANENT'])]"));
	/* add again with another MAC: replaced, still one entry */
	const uint8_t mac2[6] = {0x02, 0x4b, 0x56, 0, 0, 6};
	T_EQ(neigh_add(SA, IDX, &a, mac2, &e), 0);
	T_CHECK(tns_ipj_is(A, "-4 neigh show dev kv0", NEIGH,
			   "[('198.18.0.5', '02:4b:56:00:00:06', ['PERMANENT'])]"));
	T_EQ(neigh_del(SA, IDX, &a, &e), 0);
	T_CHECK(tns_ipj_is(A, "-4 neigh show dev kv0", NEIGH, "[]"));
	T_EQ(neigh_del(SA, IDX, &a, &e), -ENOENT);
	T_CHECK(strncmp(e.msg, "neighbour 198.18.0.5 dev ", 25) == 0);
	t_note("%s", e.msg);
}

static void test_permanent_v6(void)
{
	struct err e = {0};
	const uint8_t mac[6] = {0x02, 0x4b, 0x56, 0, 0, 7};
	struct ip_addr a = ip("2001:db8::7");
	T_EQ(neigh_add(SA, IDX, &a, mac, &e), 0);
	T_CHECK(tns_ipj_is(A, "-6 neigh show dev kv0",
			   "[x for x in " NEIGH " if x[2] != ['NOARP']]",
			   "[('2001:db8::7', '02:4b:56:00:00:07', ['PERMANENT'])]"));
	T_EQ(neigh_del(SA, IDX, &a, &e), 0);
	T_CHECK(tns_ipj_is(A, "-6 neigh show dev kv0",
			   "[n for n in d if n['dst'] == '2001:db8::7']", "[]"));
}

static void test_proxy_v4_v6(void)
{
	struct err e = {0};
	struct ip_addr a4 = ip("198.18.0.9"), a6 = ip("2001:db8::9");
	T_EQ(neigh_proxy_add(SA, IDX, &a4, &e), 0);
	T_EQ(neigh_proxy_add(SA, IDX, &a6, &e), 0);
	T_CHECK(tns_ipj_is(A, "-4 neigh show proxy", PROXY, "[('198.18.0.9', 'kv0')]"));
	T_CHECK(tns_ipj_is(A, "-6 neigh show proxy", PROXY, "[('2001:db8::9', 'kv0')]"));
	/* proxy entries are not ordinary entries */
	T_CHECK(tns_ipj_is(A, "-4 neigh show dev kv0", NEIGH, "[]"));
	/* adding again is fine (idempotent) */
	T_EQ(neigh_proxy_add(SA, IDX, &a4, &e), 0);
	T_CHECK(tns_ipj_is(A, "-4 neigh show proxy", "len(d)", "1"));
	T_EQ(neigh_proxy_del(SA, IDX, &a4, &e), 0);
	T_EQ(neigh_proxy_del(SA, IDX, &a6, &e), 0);
	T_CHECK(tns_ipj_is(A, "neigh show proxy", PROXY, "[]"));
	T_EQ(neigh_proxy_del(SA, IDX, &a4, &e), -ENOENT);
	T_CHECK(strncmp(e.msg, "proxy neighbour 198.18.0.9 dev ", 31) == 0);
}

static void test_reachable_v4_v6(void)
{
	struct err e = {0};
	const uint8_t mac[6] = {0x02, 0x4b, 0x56, 0, 0, 0x11};
	struct ip_addr a4 = ip("198.18.0.17"), a6 = ip("2001:db8::17");
	T_EQ(neigh_set_reachable(SA, IDX, &a4, mac, &e), 0);
	T_EQ(neigh_set_reachable(SA, IDX, &a6, mac, &e), 0);
	T_CHECK(tns_ipj_is(A, "-4 neigh show dev kv0", NEIGH,
			   "[('198.18.0.17', '02:4b:56:00:00:11', ['REACHABLE'])]"));
	T_CHECK(tns_ipj_is(A, "-6 neigh show dev kv0",
			   "[x for x in " NEIGH " if x[0] == '2001:db8::17']",
			   "[('2001:db8::17', '02:4b:56:00:00:11', ['REACHABLE'])]"));
	/* a new announcement with another MAC replaces it, also over a permanent entry */
	const uint8_t mac2[6] = {0x02, 0x4b, 0x56, 0, 0, 0x12};
	T_EQ(neigh_add(SA, IDX, &a4, mac, &e), 0);
	T_EQ(neigh_set_reachable(SA, IDX, &a4, mac2, &e), 0);
	T_CHECK(tns_ipj_is(A, "-4 neigh show dev kv0", NEIGH,
			   "[('198.18.0.17', '02:4b:56:00:00:12', ['REACHABLE'])]"));
	T_EQ(neigh_del(SA, IDX, &a4, &e), 0);
	T_EQ(neigh_del(SA, IDX, &a6, &e), 0);
	T_EQ(neigh_set_reachable(SA, 9999, &a4, mac, &e), -ENODEV);
	T_CHECK(strncmp(e.msg, "neighbour 198.18.0.17 dev 9999: set reachable", 45) == 0);
	t_note("%s", e.msg);
}

static void test_bad_input(void)
{
	struct err e = {0};
	struct ip_addr none = {0};
	const uint8_t mac[6] = {0x02, 0, 0, 0, 0, 1};
	T_EQ(neigh_add(SA, IDX, &none, mac, &e), -EAFNOSUPPORT);
	struct ip_addr a = ip("198.18.0.5");
	T_EQ(neigh_add(SA, 0, &a, mac, &e), -EINVAL);
	T_EQ(neigh_add(SA, 9999, &a, mac, &e), -ENODEV);
	t_note("%s", e.msg);
}

int main(void)
{
	struct err e = {0};
	A = tns_new("neigh");
	SA = A ? tns_sock(A) : NULL;
	struct link_veth v = {.name = "kv0", .peer = "kv1", .peer_netns_fd = -1};
	if (!SA || link_add_veth(SA, &v, &e) < 0 || link_index(SA, "kv0", &IDX, &e) < 0 ||
	    link_set_up(SA, IDX, true, &e) < 0) {
		printf("# %s\nnot ok - test-neigh: setup\n", e.msg);
		return 1;
	}
	T_RUN(test_permanent_v4);
	T_RUN(test_permanent_v6);
	T_RUN(test_proxy_v4_v6);
	T_RUN(test_reachable_v4_v6);
	T_RUN(test_bad_input);
	nl_close(SA);
	return t_done();
}
