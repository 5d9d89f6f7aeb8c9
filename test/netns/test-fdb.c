/* netns tests for net/fdb against the real kernel: the VXLAN device (IPv4 and IPv6
 * underlay, learning off, MTU, MAC) checked with `ip -j -d link`, and FDB entries
 * (add, replace, dump, delete) checked with `bridge -j fdb`, parsed by python3; devices
 * made by iproute2 read back with fdb_vxlan_get. */
#include "lib/err.h"
#include "net/addr.h"
#include "net/fdb.h"
#include "net/link.h"
#include "net/neigh.h"
#include "net/nl.h"
#include "net/route.h"
#include "test/lib/t.h"
#include "test/lib/tns.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static const char *A;
static struct nl_sock *SA;

static struct ip_addr ip(const char *s)
{
	struct ip_addr a;
	T_CHECK(ip_parse(s, &a));
	return a;
}

/* `bridge -j fdb show dev DEV` | PY (d = the parsed JSON) equals want. */
static int fdb_is(const char *dev, const char *py, const char *want)
{
	int st;
	setenv("KVT_PY", py, 1);
	char *out = tns_sh(&st, A,
			   "bridge -j fdb show dev %s | python3 -c 'import json,os,sys; "
			   "d=json.load(sys.stdin); print(eval(os.environ[\"KVT_PY\"]))'",
			   dev);
	size_t n = out ? strlen(out) : 0;
	while (n && out[n - 1] == '\n')
		out[--n] = '\0';
	int ok = st == 0 && out && strcmp(out, want) == 0;
	if (!ok)
		t_note("bridge fdb show dev %s | %s: got \"%s\", want \"%s\"", dev, py,
		       out ? out : "(failed)", want);
	free(out);
	return ok;
}

#define LINK "(d[0]['mtu'], d[0]['address'], d[0]['linkinfo']['info_kind'], " \
	     "{k: d[0]['linkinfo']['info_data'].get(k) for k in " \
	     "('id', 'port', 'learning', 'local', 'link')})"
#define FDB "sorted((f['mac'], f.get('dst'), f.get('state')) for f in d if f.get('dst'))"

static void test_mac_mtu(void)
{
	uint8_t mac[6];
	char b[18];
	struct ip_addr a4 = ip("198.18.1.2"), a6 = ip("2001:db8::1:2");
	fdb_vxlan_mac(&a4, mac);
	T_STREQ(fdb_mac_fmt(mac, b), "02:4b:c6:12:01:02");
	fdb_vxlan_mac(&a6, mac);
	/* 20 01 0d b8 folded into 00 01 00 02: 20 00 0d ba */
	T_STREQ(fdb_mac_fmt(mac, b), "02:4b:20:00:0d:ba");
	T_EQ(fdb_vxlan_mtu(1500, AF_INET), 1450u);
	T_EQ(fdb_vxlan_mtu(1500, AF_INET6), 1430u);
	T_EQ(fdb_vxlan_mtu(100, AF_INET), 0u);
}

static int count_cb(const struct fdb_entry *f, void *arg, struct err *e)
{
	(void)e;
	unsigned *n = arg;
	if (f->dst.family && f->state == 0x80 /* NUD_PERMANENT */)
		(*n)++;
	return 0;
}

static void test_vxlan_v4(void)
{
	struct err e = { 0 };
	int under = 0, idx = 0;
	T_EQ(link_index(SA, "kvu0", &under, &e), 0);
	struct fdb_vxlan v = { .name = "kvx4", .vni = 4096, .port = 4789,
			       .local = ip("198.18.1.1"), .underlay = under,
			       .mtu = fdb_vxlan_mtu(1500, AF_INET) };
	fdb_vxlan_mac(&v.local, v.mac);
	T_EQ(fdb_vxlan_add(SA, &v, &e), 0);
	T_EQ(fdb_vxlan_add(SA, &v, &e), -EEXIST);
	t_note("%s", e.msg);
	T_EQ(link_index(SA, "kvx4", &idx, &e), 0);
	T_EQ(link_set_up(SA, idx, true, &e), 0);
	T_CHECK(tns_ipj_is(A, "-d link show kvx4", LINK,
			   "(1450, '02:4b:c6:12:01:01', 'vxlan', {'id': 4096, 'port': 4789, "
			   "'learning': False, 'local': '198.18.1.1', 'link': 'kvu0'})"));

	uint8_t m2[6], m3[6];
	struct ip_addr r2 = ip("198.18.2.2"), r3 = ip("198.18.3.3"), r9 = ip("198.18.9.9");
	fdb_vxlan_mac(&r2, m2);
	fdb_vxlan_mac(&r3, m3);
	T_EQ(fdb_replace(SA, idx, m2, &r2, &e), 0);
	T_EQ(fdb_replace(SA, idx, m3, &r3, &e), 0);
	T_CHECK(fdb_is("kvx4", FDB,
		       "[('02:4b:c6:12:02:02', '198.18.2.2', 'permanent'), "
		       "('02:4b:c6:12:03:03', '198.18.3.3', 'permanent')]"));
	unsigned n = 0;
	T_EQ(fdb_dump(SA, idx, count_cb, &n, &e), 0);
	T_EQ(n, 2u);
	/* replace: the MAC now goes to another VTEP, still one entry for it */
	T_EQ(fdb_replace(SA, idx, m3, &r9, &e), 0);
	T_CHECK(fdb_is("kvx4", FDB,
		       "[('02:4b:c6:12:02:02', '198.18.2.2', 'permanent'), "
		       "('02:4b:c6:12:03:03', '198.18.9.9', 'permanent')]"));
	T_EQ(fdb_del(SA, idx, m3, &r9, &e), 0);
	T_EQ(fdb_del(SA, idx, m2, &r2, &e), 0);
	T_CHECK(fdb_is("kvx4", FDB, "[]"));
	T_EQ(fdb_del(SA, idx, m2, &r2, &e), -ENOENT);
	T_CHECK(strncmp(e.msg, "fdb 02:4b:c6:12:02:02 dst 198.18.2.2 dev ", 41) == 0);
	t_note("%s", e.msg);
	T_EQ(link_del(SA, idx, &e), 0);
}

static void test_vxlan_v6(void)
{
	struct err e = { 0 };
	int under = 0, idx = 0;
	T_EQ(link_index(SA, "kvu0", &under, &e), 0);
	struct fdb_vxlan v = { .name = "kvx6", .vni = 77, .port = 8472,
			       .local = ip("2001:db8::1:1"), .underlay = under,
			       .mtu = fdb_vxlan_mtu(1500, AF_INET6) };
	fdb_vxlan_mac(&v.local, v.mac);
	T_EQ(fdb_vxlan_add(SA, &v, &e), 0);
	T_EQ(link_index(SA, "kvx6", &idx, &e), 0);
	T_CHECK(tns_ipj_is(A, "-d link show kvx6",
			   "(d[0]['mtu'], d[0]['linkinfo']['info_data'].get('local6'), "
			   "d[0]['linkinfo']['info_data'].get('port'))",
			   "(1430, '2001:db8::1:1', 8472)"));
	uint8_t m[6];
	struct ip_addr r = ip("2001:db8::2:2");
	fdb_vxlan_mac(&r, m);
	T_EQ(fdb_replace(SA, idx, m, &r, &e), 0);
	char b[18], want[96];
	snprintf(want, sizeof(want), "[('%s', '2001:db8::2:2', 'permanent')]",
		 fdb_mac_fmt(m, b));
	T_CHECK(fdb_is("kvx6", FDB, want));
	T_EQ(fdb_del(SA, idx, m, &r, &e), 0);
	T_EQ(link_del(SA, idx, &e), 0);
}

static void test_bad_input(void)
{
	struct err e = { 0 };
	struct fdb_vxlan v = { .name = "kvxbad", .vni = 0, .local = ip("198.18.1.1") };
	T_EQ(fdb_vxlan_add(SA, &v, &e), -EINVAL);
	v.vni = 1 << 24;
	T_EQ(fdb_vxlan_add(SA, &v, &e), -EINVAL);
	v.vni = 5;
	v.local.family = 0;
	T_EQ(fdb_vxlan_add(SA, &v, &e), -EAFNOSUPPORT);
	const uint8_t mac[6] = { 0x02, 0x4b, 0, 0, 0, 1 };
	struct ip_addr none = { 0 }, a = ip("198.18.2.2");
	T_EQ(fdb_replace(SA, 1, mac, &none, &e), -EAFNOSUPPORT);
	T_EQ(fdb_replace(SA, 0, mac, &a, &e), -EINVAL);
	T_EQ(fdb_replace(SA, 9999, mac, &a, &e), -ENODEV);
	t_note("%s", e.msg);
}

/* fdb_vxlan_get reads back a device made by iproute2 (v4 and v6 underlay, with and without
 * a link), and says what another kind of link or a missing one is. */
static void test_vxlan_get(void)
{
	struct err e = { 0 };
	int st, idx = 0, under = 0, ip_idx = 0;
	char *out = tns_sh(&st, A,
			   "ip link add kvg4 type vxlan id 5000 dstport 8472 local 198.18.1.1 "
			   "dev kvu0 nolearning && "
			   "ip link add kvg6 type vxlan id 77 dstport 4789 local 2001:db8::1:1 && "
			   "ip link add kvgd type bridge");
	free(out);
	T_EQ(st, 0);
	T_EQ(link_index(SA, "kvu0", &under, &e), 0);
	struct fdb_vxlan v;
	char b[IP_STRLEN];
	T_EQ(fdb_vxlan_get(SA, "kvg4", &v, &idx, &e), 0);
	T_STREQ(v.name, "kvg4");
	T_EQ(v.vni, 5000u);
	T_EQ(v.port, 8472);
	T_EQ(v.underlay, under);
	T_STREQ(ip_fmt(&v.local, b), "198.18.1.1");
	out = tns_ipj(A, "link show kvg4", "d[0]['ifindex']");
	ip_idx = out ? atoi(out) : -1;
	free(out);
	T_EQ(idx, ip_idx);
	out = tns_ipj(A, "link show kvg4", "d[0]['mtu']");
	T_CHECK(out && (uint32_t)atoi(out) == v.mtu);
	free(out);
	T_EQ(fdb_vxlan_get(SA, "kvg6", &v, &idx, &e), 0);
	T_EQ(v.vni, 77u);
	T_EQ(v.port, 4789);
	T_EQ(v.underlay, 0);
	T_EQ(v.local.family, AF_INET6);
	T_STREQ(ip_fmt(&v.local, b), "2001:db8::1:1");
	T_EQ(fdb_vxlan_get(SA, "kvgd", &v, &idx, &e), -ENOTSUP);
	T_CHECK(strstr(e.msg, "kvgd is a bridge link, not vxlan") != NULL);
	t_note("%s", e.msg);
	e.msg[0] = '\0';
	T_EQ(fdb_vxlan_get(SA, "kvgnone", &v, &idx, &e), -ENODEV);
	t_note("%s", e.msg);
	T_EQ(idx, 0);
	out = tns_sh(&st, A, "ip link del kvg4 && ip link del kvg6 && ip link del kvgd");
	free(out);
	T_EQ(st, 0);
}

/* The underlay interface found by its address, checked against `ip -j addr`. */
static void test_addr_ifindex(void)
{
	struct err e = { 0 };
	int idx = 0, kv = 0;
	T_EQ(link_index(SA, "kvu0", &kv, &e), 0);
	struct ip_addr a4 = ip("198.18.1.1"), a6 = ip("2001:db8::1:1"), no = ip("198.18.9.9");
	T_EQ(fdb_addr_ifindex(SA, &a4, &idx, &e), 0);
	T_EQ(idx, kv);
	idx = 0;
	T_EQ(fdb_addr_ifindex(SA, &a6, &idx, &e), 0);
	T_EQ(idx, kv);
	T_EQ(fdb_addr_ifindex(SA, &no, &idx, &e), -ENODEV);
	t_note("%s", e.msg);
	int st;
	char *out = tns_sh(&st, A, "ip -j addr show to 198.18.1.1 | python3 -c 'import json,"
				   "sys; print(json.load(sys.stdin)[0][\"ifindex\"])'");
	T_CHECK(st == 0 && out && atoi(out) == kv);
	free(out);
}

/* One side of the overlay recipe agent/vxlan.c programs, with kvnet's own calls: the
 * VXLAN device over the underlay address `self`, the peer's VTEP MAC -> its underlay
 * address (FDB), the peer's address -> that MAC (permanent neighbour) and the peer's
 * block via the peer's address onlink on the device. */
static int overlay_side(const char *ns, const char *self, const char *peer, const char *block)
{
	struct nl_sock *s = tns_sock(ns);
	struct err e = { 0 };
	struct ip_addr me = ip(self), pa = ip(peer);
	struct fdb_vxlan v = { .name = "kvnet.vxlan", .vni = 4096, .port = 4789, .local = me,
			       .mtu = fdb_vxlan_mtu(1500, AF_INET) };
	fdb_vxlan_mac(&me, v.mac);
	uint8_t pmac[6];
	fdb_vxlan_mac(&pa, pmac);
	int idx = 0, rc = -EINVAL;
	if (!s)
		return -ENOMEM;
	struct rt_route r = { .gw = pa, .onlink = true, .protocol = RT_PROTO_KVNET };
	if (!ip_parse_prefix(block, &r.dst, &r.dst_len))
		goto out;
	if ((rc = fdb_addr_ifindex(s, &me, &v.underlay, &e)) < 0 ||
	    (rc = fdb_vxlan_add(s, &v, &e)) < 0 || (rc = link_index(s, v.name, &idx, &e)) < 0 ||
	    (rc = link_set_up(s, idx, true, &e)) < 0 ||
	    (rc = fdb_replace(s, idx, pmac, &pa, &e)) < 0 ||
	    (rc = neigh_add(s, idx, &pa, pmac, &e)) < 0)
		goto out;
	r.oif = idx;
	rc = rt_add(s, &r, &e);
out:
	if (rc < 0)
		t_note("%s: %s", ns, e.msg);
	nl_close(s);
	return rc;
}

/* Two nodes on different subnets routed by a router namespace that knows no pod
 * address: pods reach each other only through the overlay (ping, bounded by -W). */
static void test_overlay_path(void)
{
	const char *n1 = tns_new("ov1"), *n2 = tns_new("ov2"), *r = tns_new("ovr");
	T_CHECK(n1 && n2 && r);
	if (!n1 || !n2 || !r)
		return;
	int st;
	char *out = tns_sh(&st, r,
			   "ip link add o1 type veth peer name u netns %s && "
			   "ip link add o2 type veth peer name u netns %s && "
			   "ip addr add 198.18.11.1/24 dev o1 && ip addr add 198.18.12.1/24 dev o2 && "
			   "ip link set o1 up && ip link set o2 up && sysctl -qw net.ipv4.ip_forward=1 && "
			   "ip -n %s addr add 198.18.11.2/24 dev u && ip -n %s link set u up && "
			   "ip -n %s route add default via 198.18.11.1 && "
			   "ip -n %s addr add 198.19.1.1/32 dev lo && "
			   "ip -n %s addr add 198.18.12.2/24 dev u && ip -n %s link set u up && "
			   "ip -n %s route add default via 198.18.12.1 && "
			   "ip -n %s addr add 198.19.2.1/32 dev lo",
			   n1, n2, n1, n1, n1, n1, n2, n2, n2, n2);
	free(out);
	T_EQ(st, 0);
	T_EQ(overlay_side(n1, "198.18.11.2", "198.18.12.2", "198.19.2.0/24"), 0);
	T_EQ(overlay_side(n2, "198.18.12.2", "198.18.11.2", "198.19.1.0/24"), 0);
	out = tns_sh(&st, n1, "ping -q -c 1 -W 5 -I 198.19.1.1 198.19.2.1");
	free(out);
	T_EQ(st, 0);
	T_CHECK(tns_ipj_is(n1, "route show 198.19.2.0/24", "(d[0]['gateway'], d[0]['dev'], "
			   "'onlink' in d[0]['flags'])", "('198.18.12.2', 'kvnet.vxlan', True)"));
	T_CHECK(tns_ipj_is(n1, "neigh show dev kvnet.vxlan", "[(x['dst'], x['lladdr'], "
			   "x['state']) for x in d]",
			   "[('198.18.12.2', '02:4b:c6:12:0c:02', ['PERMANENT'])]"));
	tns_del(n1);
	tns_del(n2);
	tns_del(r);
}

int main(void)
{
	struct err e = { 0 };
	int st;
	A = tns_new("fdb");
	SA = A ? tns_sock(A) : NULL;
	char *out = A ? tns_sh(&st, A,
			       "ip link add kvu0 type veth peer name kvu1 && ip link set kvu0 up && "
			       "ip addr add 198.18.1.1/24 dev kvu0 && "
			       "ip addr add 2001:db8::1:1/112 dev kvu0 nodad")
		      : NULL;
	free(out);
	if (!SA || st != 0) {
		printf("# %s\nnot ok - test-fdb: setup\n", e.msg);
		return 1;
	}
	T_RUN(test_mac_mtu);
	T_RUN(test_vxlan_v4);
	T_RUN(test_vxlan_v6);
	T_RUN(test_bad_input);
	T_RUN(test_vxlan_get);
	T_RUN(test_addr_ifindex);
	T_RUN(test_overlay_path);
	nl_close(SA);
	return t_done();
}
