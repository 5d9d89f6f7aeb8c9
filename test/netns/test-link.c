/* netns tests for net/link against the real kernel, in fresh namespaces, each result
 * checked with iproute2 (`ip -j`, parsed by python3) or sysfs inside the namespace. */
#include "lib/err.h"
#include "net/link.h"
#include "net/nl.h"
#include "test/lib/t.h"
#include "test/lib/tns.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *A, *B;  /* two namespaces */
static struct nl_sock *SA; /* rtnetlink socket living in A */

static int ns_fd(const char *ns)
{
	return open(tns_path(ns), O_RDONLY | O_CLOEXEC);
}

static int ip_index(const char *ns, const char *dev)
{
	char args[64];
	snprintf(args, sizeof(args), "link show dev %s", dev);
	char *s = tns_ipj(ns, args, "d[0]['ifindex']");
	int v = s ? atoi(s) : -1;
	free(s);
	return v;
}

static bool ip_has_link(const char *ns, const char *dev)
{
	int st;
	free(tns_sh(&st, ns, "ip link show dev %s >/dev/null 2>&1", dev));
	return st == 0;
}

static void test_veth_peer_in_other_netns(void)
{
	struct err e = {0};
	const uint8_t mac[6] = {0x02, 0x4b, 0x56, 0x11, 0x00, 0x01};
	const uint8_t pmac[6] = {0x02, 0x4b, 0x56, 0x11, 0x00, 0x02};
	int fd = ns_fd(B);
	T_CHECK(fd >= 0);
	struct link_veth v = {
	    .name = "kvhost0",
	    .peer = "eth0",
	    .peer_netns_fd = fd,
	    .mac = mac,
	    .peer_mac = pmac,
	    .mtu = 1400,
	};
	T_EQ(link_add_veth(SA, &v, &e), 0);
	close(fd);
	if (e.code)
		t_note("%s", e.msg);
	/* this end in A, the peer named eth0 in B, not in A */
	T_CHECK(tns_ipj_is(A, "-d link show dev kvhost0", "d[0]['linkinfo']['info_kind']", "veth"));
	T_CHECK(tns_ipj_is(A, "link show dev kvhost0", "d[0]['mtu']", "1400"));
	T_CHECK(tns_ipj_is(A, "link show dev kvhost0", "d[0]['address']", "02:4b:56:11:00:01"));
	T_CHECK(tns_ipj_is(A, "link show dev kvhost0", "'link_netnsid' in d[0]", "True"));
	T_CHECK(tns_ipj_is(B, "link show dev eth0", "d[0]['mtu']", "1400"));
	T_CHECK(tns_ipj_is(B, "link show dev eth0", "d[0]['address']", "02:4b:56:11:00:02"));
	T_CHECK(!ip_has_link(A, "eth0"));

	/* same name again: EEXIST, with the object in the message */
	fd = ns_fd(B);
	v.peer_netns_fd = fd;
	v.peer = "eth1";
	T_EQ(link_add_veth(SA, &v, &e), -EEXIST);
	close(fd);
	T_CHECK(strncmp(e.msg, "veth kvhost0 (peer eth1): create: ", 34) == 0);
	t_note("%s", e.msg);
}

static void test_veth_same_netns_and_index(void)
{
	struct err e = {0};
	struct link_veth v = {.name = "kva", .peer = "kvb", .peer_netns_fd = -1};
	T_EQ(link_add_veth(SA, &v, &e), 0);
	int ia = 0, ib = 0;
	T_EQ(link_index(SA, "kva", &ia, &e), 0);
	T_EQ(link_index(SA, "kvb", &ib, &e), 0);
	T_EQ(ia, ip_index(A, "kva"));
	T_EQ(ib, ip_index(A, "kvb"));
	T_CHECK(ia > 0 && ib > 0 && ia != ib);
	struct link_info li;
	T_EQ(link_get(SA, "kva", &li, &e), 0);
	T_STREQ(li.name, "kva");
	T_STREQ(li.kind, "veth");
	T_EQ(li.index, ia);
}

static void test_index_missing_and_bad_names(void)
{
	struct err e = {0};
	int idx = 99;
	T_EQ(link_index(SA, "nosuchlink", &idx, &e), -ENODEV);
	T_EQ(idx, 0);
	T_CHECK(strncmp(e.msg, "link nosuchlink: get: ", 22) == 0);
	T_EQ(link_index(SA, "a-name-far-too-long", &idx, &e), -EINVAL);
	T_EQ(link_index(SA, "", &idx, &e), -EINVAL);
	struct link_veth v = {.name = "ok", .peer = "bad/name", .peer_netns_fd = -1};
	T_EQ(link_add_veth(SA, &v, &e), -EINVAL);
	T_CHECK(!ip_has_link(A, "ok"));
}

static void test_rename_mac_mtu_updown(void)
{
	struct err e = {0};
	struct link_veth v = {.name = "kvr0", .peer = "kvr1", .peer_netns_fd = -1};
	T_EQ(link_add_veth(SA, &v, &e), 0);
	int idx = ip_index(A, "kvr0");
	T_EQ(link_rename(SA, idx, "kvrenamed", &e), 0);
	T_CHECK(ip_has_link(A, "kvrenamed"));
	T_CHECK(!ip_has_link(A, "kvr0"));
	T_EQ(ip_index(A, "kvrenamed"), idx);

	const uint8_t mac[6] = {0xee, 0xee, 0xee, 0xee, 0xee, 0xee};
	T_EQ(link_set_mac(SA, idx, mac, &e), 0);
	T_CHECK(tns_ipj_is(A, "link show dev kvrenamed", "d[0]['address']", "ee:ee:ee:ee:ee:ee"));
	T_EQ(link_set_mtu(SA, idx, 1280, &e), 0);
	T_CHECK(tns_ipj_is(A, "link show dev kvrenamed", "d[0]['mtu']", "1280"));
	T_EQ(link_set_mtu(SA, idx, 10, &e), -EINVAL); /* below the minimum */
	t_note("%s", e.msg);
	T_CHECK(strncmp(e.msg, "link ", 5) == 0 && strstr(e.msg, "set MTU: ") != NULL);
	T_CHECK(tns_ipj_is(A, "link show dev kvrenamed", "d[0]['mtu']", "1280"));

	T_EQ(link_set_up(SA, idx, true, &e), 0);
	T_CHECK(tns_ipj_is(A, "link show dev kvrenamed", "'UP' in d[0]['flags']", "True"));
	T_EQ(link_set_up(SA, idx, false, &e), 0);
	T_CHECK(tns_ipj_is(A, "link show dev kvrenamed", "'UP' in d[0]['flags']", "False"));
}

static void test_bridge_and_master(void)
{
	struct err e = {0};
	T_EQ(link_add_bridge(SA, "kvbr0", &e), 0);
	T_CHECK(tns_ipj_is(A, "-d link show dev kvbr0", "d[0]['linkinfo']['info_kind']", "bridge"));
	struct link_veth v = {.name = "kvp0", .peer = "kvp1", .peer_netns_fd = -1};
	T_EQ(link_add_veth(SA, &v, &e), 0);
	struct link_veth v2 = {.name = "kvq0", .peer = "kvq1", .peer_netns_fd = -1};
	T_EQ(link_add_veth(SA, &v2, &e), 0);
	int br = ip_index(A, "kvbr0");
	T_EQ(link_set_master(SA, ip_index(A, "kvp0"), br, &e), 0);
	T_EQ(link_set_master(SA, ip_index(A, "kvq0"), br, &e), 0);
	T_CHECK(tns_ipj_is(A, "-d link show dev kvp0", "d[0]['master']", "kvbr0"));
	T_CHECK(tns_ipj_is(A, "-d link show dev kvp0", "d[0]['linkinfo']['info_slave_kind']",
			   "bridge"));
	T_CHECK(tns_ipj_is(A, "link show master kvbr0", "sorted(x['ifname'] for x in d)",
			   "['kvp0', 'kvq0']"));
	struct link_info li;
	T_EQ(link_get(SA, "kvp0", &li, &e), 0);
	T_EQ(li.master, br);
	/* release */
	T_EQ(link_set_master(SA, ip_index(A, "kvp0"), 0, &e), 0);
	T_CHECK(tns_ipj_is(A, "link show dev kvp0", "'master' in d[0]", "False"));
	T_CHECK(tns_ipj_is(A, "link show master kvbr0", "[x['ifname'] for x in d]", "['kvq0']"));
	/* a master that does not exist */
	T_EQ(link_set_master(SA, ip_index(A, "kvp0"), 9999, &e), -EINVAL);
	t_note("%s", e.msg);
}

static void test_tap(void)
{
	struct err e = {0};
	struct link_tap t = {.name = "kvtap0", .owner = 1000, .group = 1001};
	T_EQ(link_add_tap(SA, &t, &e), 0);
	if (e.code)
		t_note("%s", e.msg);
	T_CHECK(tns_ipj_is(A, "-d link show dev kvtap0", "d[0]['linkinfo']['info_data']['type']",
			   "tap"));
	T_CHECK(tns_ipj_is(A, "-d link show dev kvtap0", "d[0]['linkinfo']['info_data']['persist']",
			   "True"));
	T_CHECK(tns_ipj_is(A, "-d link show dev kvtap0", "d[0]['linkinfo']['info_data']['pi']",
			   "False"));
	int st;
	char *owner = tns_sh(&st, A, "cat /sys/class/net/kvtap0/owner /sys/class/net/kvtap0/group");
	T_STREQ(owner, "1000\n1001\n");
	free(owner);
	/* made in the socket's namespace, not the caller's */
	free(t_sh(&st, "ip link show dev kvtap0 >/dev/null 2>&1"));
	T_CHECK(st != 0);
	/* a second one with the same name is refused */
	T_EQ(link_add_tap(SA, &t, &e), -EBUSY);
	t_note("%s", e.msg);
	struct link_info li;
	T_EQ(link_get(SA, "kvtap0", &li, &e), 0);
	T_STREQ(li.kind, "tun");
	T_EQ(link_del(SA, li.index, &e), 0);
	T_CHECK(!ip_has_link(A, "kvtap0"));
}

static void test_delete(void)
{
	struct err e = {0};
	int fd = ns_fd(B);
	struct link_veth v = {.name = "kvdel0", .peer = "kvdel1", .peer_netns_fd = fd};
	T_EQ(link_add_veth(SA, &v, &e), 0);
	close(fd);
	T_CHECK(ip_has_link(B, "kvdel1"));
	int idx = ip_index(A, "kvdel0");
	T_EQ(link_del(SA, idx, &e), 0);
	T_CHECK(!ip_has_link(A, "kvdel0"));
	T_CHECK(!ip_has_link(B, "kvdel1")); /* the peer went with it */
	T_EQ(link_del(SA, idx, &e), -ENODEV);
	T_CHECK(strncmp(e.msg, "link ", 5) == 0 && strstr(e.msg, ": delete: ") != NULL);
}

static void test_move_to_netns(void)
{
	struct err e = {0};
	struct link_veth v = {.name = "kvmv0", .peer = "kvmv1", .peer_netns_fd = -1};
	T_EQ(link_add_veth(SA, &v, &e), 0);
	int idx = ip_index(A, "kvmv1");
	int fd = ns_fd(B);
	T_EQ(link_set_netns(SA, idx, fd, "eth9", &e), 0);
	T_CHECK(!ip_has_link(A, "kvmv1"));
	T_CHECK(tns_ipj_is(B, "-d link show dev eth9", "d[0]['linkinfo']['info_kind']", "veth"));
	/* a name already taken there: -EEXIST, and the kernel moved it under its old name */
	v.name = "kvmv2";
	v.peer = "kvmv3";
	T_EQ(link_add_veth(SA, &v, &e), 0);
	T_EQ(link_set_netns(SA, ip_index(A, "kvmv3"), fd, "eth9", &e), -EEXIST);
	t_note("%s", e.msg);
	T_CHECK(!ip_has_link(A, "kvmv3"));
	T_CHECK(ip_has_link(B, "kvmv3"));
	/* keep the name */
	v.name = "kvmv4";
	v.peer = "kvmv5";
	T_EQ(link_add_veth(SA, &v, &e), 0);
	T_EQ(link_set_netns(SA, ip_index(A, "kvmv5"), fd, NULL, &e), 0);
	T_CHECK(ip_has_link(B, "kvmv5"));
	T_CHECK(!ip_has_link(A, "kvmv5"));
	T_EQ(link_set_netns(SA, ip_index(A, "kvmv2"), -1, NULL, &e), -EBADF);
	close(fd);
}

int main(void)
{
	A = tns_new("link-a");
	B = tns_new("link-b");
	SA = A ? tns_sock(A) : NULL;
	if (!A || !B || !SA) {
		printf("not ok - test-link: namespaces or socket\n");
		return 1;
	}
	T_RUN(test_veth_peer_in_other_netns);
	T_RUN(test_veth_same_netns_and_index);
	T_RUN(test_index_missing_and_bad_names);
	T_RUN(test_rename_mac_mtu_updown);
	T_RUN(test_bridge_and_master);
	T_RUN(test_tap);
	T_RUN(test_move_to_netns);
	T_RUN(test_delete);
	nl_close(SA);
	return t_done();
}
