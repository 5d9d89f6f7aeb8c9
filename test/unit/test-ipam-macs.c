/* Unit tests for ipam/macs: the MAC index (case-insensitive order, then address), the
 * network of an allocation from its handle (VM, ordinary pod, shortened names), and the
 * look-up of a MAC held by another handle of a network. */
#include "ipam/macs.h"
#include "lib/err.h"
#include "test/lib/t.h"

#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

static void vm(struct ipam_state *st, const char *net, const char *ns, const char *name,
	       const char *ip, const char *mac)
{
	struct ipam_attrs at;
	char h[IPAM_NAME_MAX + 1];
	struct ip_addr a;
	memset(&at, 0, sizeof(at));
	snprintf(at.ns, sizeof(at.ns), "%s", ns);
	snprintf(at.vmi_name, sizeof(at.vmi_name), "%s", name);
	snprintf(at.mac, sizeof(at.mac), "%s", mac);
	T_EQ(ipam_handle_vm(h, net, ns, name, NULL), 0);
	T_EQ(ipam_addr_parse(&a, ip, NULL), 0);
	T_EQ(ipam_reserve_ip(st, h, &a, &at, NULL), 0);
}

static void state(struct ipam_state *st)
{
	struct ipam_cidr c4, c6;
	ipam_state_init(st);
	ipam_cidr_parse(&c4, "198.18.0.0/24", NULL);
	ipam_cidr_parse(&c6, "2001:db8::/120", NULL);
	T_EQ(ipam_pool_add(st, "p4", &c4, 0, NULL, 0, NULL), 0);
	T_EQ(ipam_pool_add(st, "p6", &c6, 0, NULL, 0, NULL), 0);
}

static void test_index_order_and_taken(void)
{
	struct ipam_state st;
	state(&st);
	vm(&st, "kvnet", "default", "vm-b", "198.18.0.20", "02:00:00:00:00:BB");
	vm(&st, "kvnet", "default", "vm-a", "2001:db8::10", "02:00:00:00:00:aa");
	vm(&st, "kvnet", "default", "vm-a", "198.18.0.10", "02:00:00:00:00:aa");
	vm(&st, "net2", "default", "vm-c", "198.18.0.5", "02:00:00:00:00:Aa");
	vm(&st, "kvnet", "default", "vm-n", "198.18.0.30", ""); /* no MAC: not indexed */
	struct ipam_macs m;
	T_EQ(ipam_macs_index(&m, &st), 0);
	T_EQ(m.n, 4);
	char as[64];
	if (m.n == 4) {
		/* the three 02:..:aa first (v4 by address, then v6), then 02:..:BB */
		T_STREQ(ipam_addr_str(&m.v[0].ip, as, sizeof(as)), "198.18.0.5");
		T_STREQ(ipam_addr_str(&m.v[1].ip, as, sizeof(as)), "198.18.0.10");
		T_STREQ(ipam_addr_str(&m.v[2].ip, as, sizeof(as)), "2001:db8::10");
		T_STREQ(m.v[3].a->vmi_name, "vm-b");
	}
	/* vm-a's MAC on kvnet, asked for another VM: vm-a; for vm-a itself: nobody */
	const struct ipam_mac_ref *r = ipam_macs_taken(&m, "02:00:00:00:00:AA", "kvnet",
						       "kvnet.vmi.default.vm-x");
	T_CHECK(r && !strcmp(r->a->handle, "kvnet.vmi.default.vm-a"));
	T_CHECK(!ipam_macs_taken(&m, "02:00:00:00:00:aa", "kvnet", "kvnet.vmi.default.vm-a"));
	r = ipam_macs_taken(&m, "02:00:00:00:00:aa", "net2", "net2.vmi.default.vm-x");
	T_CHECK(r && !strcmp(r->a->vmi_name, "vm-c"));
	T_CHECK(!ipam_macs_taken(&m, "02:00:00:00:00:bb", "net2", "net2.vmi.default.vm-x"));
	T_CHECK(ipam_macs_taken(&m, "02:00:00:00:00:bb", "kvnet", "kvnet.vmi.default.vm-x"));
	T_CHECK(!ipam_macs_taken(&m, "02:00:00:00:00:cc", "kvnet", "kvnet.vmi.default.vm-x"));
	ipam_macs_free(&m);
	T_EQ(m.n, 0);

	/* an empty state: an empty index */
	struct ipam_state none;
	ipam_state_init(&none);
	T_EQ(ipam_macs_index(&m, &none), 0);
	T_EQ(m.n, 0);
	T_CHECK(!ipam_macs_taken(&m, "02:00:00:00:00:aa", "kvnet", "x"));
	ipam_macs_free(&m);
	ipam_state_free(&none);
	ipam_state_free(&st);
}

static void test_network_of_allocation(void)
{
	struct ipam_attrs a;
	char net[IPAM_NAME_MAX + 1];
	memset(&a, 0, sizeof(a));
	snprintf(a.ns, sizeof(a.ns), "default");
	snprintf(a.vmi_name, sizeof(a.vmi_name), "vm-a");
	snprintf(a.handle, sizeof(a.handle), "my.net.vmi.default.vm-a");
	T_CHECK(ipam_alloc_network(&a, net, sizeof(net)));
	T_STREQ(net, "my.net");
	T_CHECK(ipam_alloc_on_network(&a, "my.net"));
	T_CHECK(!ipam_alloc_on_network(&a, "my"));
	T_CHECK(!ipam_alloc_network(&a, net, 4)); /* does not fit */
	/* a handle of another VM name than the attributes say: no network */
	snprintf(a.handle, sizeof(a.handle), "kvnet.vmi.default.vm-b");
	T_CHECK(!ipam_alloc_network(&a, net, sizeof(net)));
	T_CHECK(!ipam_alloc_on_network(&a, "kvnet"));
	/* an ordinary pod: "<net>.<containerID>" */
	memset(&a, 0, sizeof(a));
	snprintf(a.container_id, sizeof(a.container_id), "c1");
	snprintf(a.handle, sizeof(a.handle), "kvnet.c1");
	T_CHECK(ipam_alloc_network(&a, net, sizeof(net)));
	T_STREQ(net, "kvnet");
	/* a name shortened with a hash still matches its network, but cannot be split */
	char longvm[231];
	memset(longvm, 'v', 230);
	longvm[230] = 0;
	memset(&a, 0, sizeof(a));
	snprintf(a.ns, sizeof(a.ns), "default-namespace-with-a-long-name");
	snprintf(a.vmi_name, sizeof(a.vmi_name), "%s", longvm);
	T_EQ(ipam_handle_vm(a.handle, "kvnet", a.ns, a.vmi_name, NULL), 0);
	T_CHECK(strlen(a.handle) <= IPAM_NAME_MAX);
	T_CHECK(ipam_alloc_on_network(&a, "kvnet"));
	T_CHECK(!ipam_alloc_network(&a, net, sizeof(net)));
	/* neither VM nor container: no network */
	memset(&a, 0, sizeof(a));
	snprintf(a.handle, sizeof(a.handle), "kvnet.x");
	T_CHECK(!ipam_alloc_network(&a, net, sizeof(net)));
	T_CHECK(!ipam_alloc_on_network(&a, "kvnet"));
}

int main(void)
{
	T_RUN(test_index_order_and_taken);
	T_RUN(test_network_of_allocation);
	return t_done();
}
