/* Unit tests for kube_net_status_find (kube/types.h): the Multus network-status entry of a
 * VM's L2 port found by its MAC, or by an address when the entry has no mac; the default
 * network never matches; errors for text that is not a list of named objects. */
#include "kube/types.h"
#include "lib/err.h"
#include "test/lib/t.h"

#include <errno.h>
#include <string.h>

static const char STATUS[] =
	"[{\"name\":\"kvnet\",\"interface\":\"eth0\",\"ips\":[\"198.18.0.5\"],"
	"\"mac\":\"02:00:c6:12:64:0a\",\"default\":true},"
	"{\"name\":\"vms/vlan100\",\"interface\":\"net1\",\"ips\":[\"198.18.100.10/24\","
	"\"2001:db8:100::a\"],\"mac\":\"02:00:C6:12:64:0A\"},"
	"{\"name\":\"vlan200\",\"interface\":\"net2\",\"ips\":[\"198.18.200.10\"]}]";

static void test_by_mac(void)
{
	static const uint8_t mac[6] = { 0x02, 0x00, 0xc6, 0x12, 0x64, 0x0a };
	struct kube_net_attach a;
	struct err e = { 0 };
	char b[IP_STRLEN];
	T_EQ(kube_net_status_find(STATUS, strlen(STATUS), mac, NULL, 0, &a, &e), 0);
	T_STREQ(a.name, "vms/vlan100");
	T_STREQ(a.iface, "net1");
	T_EQ(a.n_ips, 2u);
	T_STREQ(ip_fmt(&a.ips[0], b), "198.18.100.10");
	T_STREQ(ip_fmt(&a.ips[1], b), "2001:db8:100::a");
}

static void test_by_ip(void)
{
	static const uint8_t mac[6] = { 0x02, 0, 0, 0, 0, 0x99 };
	struct kube_net_attach a;
	struct ip_addr ip;
	struct err e = { 0 };
	T_CHECK(ip_parse("198.18.200.10", &ip));
	T_EQ(kube_net_status_find(STATUS, strlen(STATUS), mac, &ip, 1, &a, &e), 0);
	T_STREQ(a.name, "vlan200");
	T_CHECK(!a.has_mac);
	/* the default network's address is not an L2 port's */
	T_CHECK(ip_parse("198.18.0.5", &ip));
	T_EQ(kube_net_status_find(STATUS, strlen(STATUS), mac, &ip, 1, &a, &e), -ENOENT);
}

static void test_errors(void)
{
	static const uint8_t mac[6] = { 0 };
	struct kube_net_attach a;
	struct err e = { 0 };
	const char *bad[] = { "{}", "[1]", "[{\"interface\":\"net1\"}]", "not json", "" };
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		T_EQ(kube_net_status_find(bad[i], strlen(bad[i]), mac, NULL, 0, &a, &e), -EINVAL);
		T_CHECK(strstr(e.msg, "network-status") != NULL);
	}
	/* a malformed entry is not the port, the list still is one */
	const char *odd = "[{\"name\":\"x\",\"mac\":\"zz\"},{\"name\":\"y\",\"ips\":[\"no\"]}]";
	T_EQ(kube_net_status_find(odd, strlen(odd), mac, NULL, 0, &a, &e), -ENOENT);
}

int main(void)
{
	T_RUN(test_by_mac);
	T_RUN(test_by_ip);
	T_RUN(test_errors);
	return t_done();
}
