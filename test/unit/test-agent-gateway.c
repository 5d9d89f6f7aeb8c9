/* unit tests for agent/gateway: its gateway is the CNI plugin's, and endpoints with
 * nothing to do ask nothing of the kernel (no socket needed). The kernel side is the
 * lab's test/lab/test_binding.py. */
#include "agent/desired.h"
#include "agent/gateway.h"
#include "cni/netconf.h"
#include "lib/err.h"
#include "test/lib/t.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

static void test_same_gateway(void)
{
	T_STREQ(AGENT_GW4, CNI_GW4);
}

static void test_nothing_to_do(void)
{
	struct err e = {0};
	struct agent_ep ep;
	memset(&ep, 0, sizeof(ep));
	strcpy(ep.veth, "kv0");
	strcpy(ep.pod, "virt-launcher-vm-a-x");
	/* IPv6 only: no IPv4 gateway address wanted */
	ep.n_ip = 1;
	T_CHECK(ip_parse("2001:db8::5", &ep.ip[0]));
	ep.ifindex = 7;
	T_EQ(agent_gw_addr_ensure(NULL, &ep, &e), 0);
	/* IPv4 but the veth not resolved yet: later (the next reconcile) */
	T_CHECK(ip_parse("198.18.0.5", &ep.ip[0]));
	ep.ifindex = 0;
	T_EQ(agent_gw_addr_ensure(NULL, &ep, &e), 0);
	/* a neighbour entry needs the veth */
	const uint8_t mac[6] = {0x02, 0, 0, 0, 0, 5};
	T_EQ(agent_gw_neigh(NULL, &ep, mac, &e), -ENODEV);
	T_STREQ(e.msg, "endpoint virt-launcher-vm-a-x: veth kv0 not resolved");
}

int main(void)
{
	T_RUN(test_same_gateway);
	T_RUN(test_nothing_to_do);
	return t_done();
}
