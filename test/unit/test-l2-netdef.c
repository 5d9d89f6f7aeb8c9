/* Unit tests for l2/netdef: the L2Network resource parsed, validated (every error names
 * the field and why), the trunk a node uses (name override, label override, default),
 * the addresses the network's IPAM may hand out, and the link id. */
#include "l2/netdef.h"
#include "lib/err.h"
#include "test/lib/t.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define EX                                                                                  \
	"{\"apiVersion\":\"kvnet.io/v1\",\"kind\":\"L2Network\",\"metadata\":{\"name\":\"vlan100\"}," \
	"\"spec\":{\"vlan\":100,\"trunk\":{\"interface\":\"eno2\",\"nodes\":["               \
	"{\"name\":\"edge-3\",\"interface\":\"enp3s0\"},"                                   \
	"{\"matchLabels\":{\"hw\":\"gen2\",\"zone\":\"a\"},\"interface\":\"ens5f1\"}]},"      \
	"\"mtu\":1500,\"ipv4\":{\"subnet\":\"198.18.100.0/24\",\"gateway\":\"198.18.100.1\"}," \
	"\"ipv6\":{\"subnet\":\"2001:db8:100::/64\",\"gateway\":\"2001:db8:100::1\"}}}"

static int parse(const char *text, struct l2_netdef *n, struct err *e)
{
	return l2_netdef_parse_text(text, strlen(text), n, e);
}

static void test_example(void)
{
	static struct l2_netdef n;
	struct err e = { 0 };
	T_EQ(parse(EX, &n, &e), 0);
	T_STREQ(n.name, "vlan100");
	T_EQ(n.vid, 100);
	T_STREQ(n.trunk, "eno2");
	T_EQ(n.n_over, 2);
	T_EQ(n.mtu, 1500);
	T_CHECK(n.v4.set && n.v4.prefix == 24 && n.v6.set && n.v6.prefix == 64);
	T_EQ(strlen(n.id), 8);
	/* the id is stable and differs between names */
	static struct l2_netdef m;
	T_EQ(parse(EX, &m, &e), 0);
	T_STREQ(m.id, n.id);
	char other[sizeof(EX) + 8];
	snprintf(other, sizeof(other), "%s", EX);
	memcpy(strstr(other, "vlan100"), "vlan200", 7);
	T_EQ(parse(other, &m, &e), 0);
	T_CHECK(strcmp(m.id, n.id) != 0);
}

static void test_trunk_for_node(void)
{
	static struct l2_netdef n;
	struct err e = { 0 };
	T_EQ(parse(EX, &n, &e), 0);
	struct l2_label gen2[2] = { { "zone", "a" }, { "hw", "gen2" } }, half[1] = { { "hw", "gen2" } };
	struct l2_node edge3 = { "edge-3", gen2, 2 }, g = { "edge-9", gen2, 2 },
		       h = { "edge-9", half, 1 }, plain = { "edge-1", NULL, 0 };
	T_STREQ(l2_netdef_trunk(&n, &edge3), "enp3s0"); /* the first override wins */
	T_STREQ(l2_netdef_trunk(&n, &g), "ens5f1");
	T_STREQ(l2_netdef_trunk(&n, &h), "eno2");       /* every label must match */
	T_STREQ(l2_netdef_trunk(&n, &plain), "eno2");
	/* no default: a node no override names is not on the network */
	T_EQ(parse("{\"metadata\":{\"name\":\"x\"},\"spec\":{\"vlan\":0,\"trunk\":{\"nodes\":"
		   "[{\"name\":\"a\",\"interface\":\"eth1\"}]}}}", &n, &e), 0);
	T_EQ(n.vid, 0);
	T_CHECK(l2_netdef_trunk(&n, &plain) == NULL);
}

static void test_usable(void)
{
	static struct l2_netdef n;
	struct err e = { 0 };
	struct ip_addr a;
	T_EQ(parse(EX, &n, &e), 0);
	const char *yes[] = { "198.18.100.2", "198.18.100.254", "2001:db8:100::10" };
	const char *no[] = { "198.18.100.0", "198.18.100.1", "198.18.100.255", "198.18.101.5",
			     "2001:db8:100::1", "2001:db8:101::10", "2001:db8:100::" };
	for (size_t i = 0; i < sizeof(yes) / sizeof(*yes); i++)
		T_CHECK(ip_parse(yes[i], &a) && l2_netdef_usable(&n, &a));
	for (size_t i = 0; i < sizeof(no) / sizeof(*no); i++)
		T_CHECK(ip_parse(no[i], &a) && !l2_netdef_usable(&n, &a));
}

static void expect(const char *spec, const char *want)
{
	static struct l2_netdef n;
	struct err e = { 0 };
	char doc[2048];
	snprintf(doc, sizeof(doc), "{\"metadata\":{\"name\":\"vlan7\"},\"spec\":%s}", spec);
	int rc = parse(doc, &n, &e);
	T_EQ(rc, -EINVAL);
	if (!strstr(e.msg, want))
		t_note("want '%s' in '%s'", want, e.msg);
	T_CHECK(strstr(e.msg, want));
}

static void test_errors(void)
{
	static struct l2_netdef n;
	struct err e = { 0 };
	T_EQ(parse("[1]", &n, &e), -EINVAL);
	T_EQ(parse("{\"kind\":\"Pod\",\"metadata\":{\"name\":\"a\"}}", &n, &e), -EINVAL);
	T_CHECK(strstr(e.msg, "kind: 'Pod' is not L2Network"));
	T_EQ(parse("{\"metadata\":{\"name\":\"Bad_Name\"},\"spec\":{}}", &n, &e), -EINVAL);
	T_CHECK(strstr(e.msg, "metadata.name: 'Bad_Name' is not a DNS label"));
	T_EQ(parse("{\"metadata\":{}}", &n, &e), -EINVAL);
	T_CHECK(strstr(e.msg, "metadata.name: required"));
	T_EQ(parse("{\"metadata\":{\"name\":\"a\"}", &n, &e) < 0, 1);
	expect("{\"trunk\":{\"interface\":\"eno2\"}}", "L2Network vlan7: spec.vlan: required");
	expect("{\"vlan\":4095,\"trunk\":{\"interface\":\"eno2\"}}", "spec.vlan: 4095 is not 0-4094");
	expect("{\"vlan\":\"100\",\"trunk\":{\"interface\":\"eno2\"}}", "spec.vlan: not an integer");
	expect("{\"vlan\":1}", "spec.trunk: required");
	expect("{\"vlan\":1,\"trunk\":{}}", "spec.trunk: names no interface");
	expect("{\"vlan\":1,\"trunk\":{\"interface\":\"a-very-long-ifname\"}}",
	       "spec.trunk.interface: longer than 15 bytes");
	expect("{\"vlan\":1,\"trunk\":{\"interface\":\"a/b\"}}", "is not an interface name");
	expect("{\"vlan\":1,\"trunk\":{\"nodes\":[{\"interface\":\"eth1\"}]}}",
	       "spec.trunk.nodes[0]: give either name or matchLabels");
	expect("{\"vlan\":1,\"trunk\":{\"nodes\":[{\"name\":\"a\"}]}}",
	       "spec.trunk.nodes[0].interface: required");
	expect("{\"vlan\":1,\"trunk\":{\"interface\":\"e\"},\"mtu\":100}", "spec.mtu: not an MTU");
	expect("{\"vlan\":1,\"trunk\":{\"interface\":\"e\"},\"ipv4\":{\"subnet\":\"198.18.100.1/24\"}}",
	       "spec.ipv4.subnet: 198.18.100.1/24 has host bits set");
	expect("{\"vlan\":1,\"trunk\":{\"interface\":\"e\"},\"ipv4\":{\"subnet\":\"2001:db8::/64\"}}",
	       "spec.ipv4.subnet: not an IPv4 CIDR");
	expect("{\"vlan\":1,\"trunk\":{\"interface\":\"e\"},\"ipv4\":{\"subnet\":\"198.18.100.0/24\","
	       "\"gateway\":\"198.18.101.1\"}}", "spec.ipv4.gateway: 198.18.101.1 is outside the subnet");
	expect("{\"vlan\":1,\"trunk\":{\"interface\":\"e\"},\"ipv6\":{}}", "spec.ipv6.subnet: required");
}

int main(void)
{
	T_RUN(test_example);
	T_RUN(test_trunk_for_node);
	T_RUN(test_usable);
	T_RUN(test_errors);
	return t_done();
}
