/* test-agent-admit — which registrations the agent accepts (agent/admit.h). */
#include "agent/admit.h"
#include "conf/conf.h"
#include "ipam/ipam.h"
#include "lib/err.h"
#include "net/link.h"
#include "test/lib/t.h"

#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

static struct agent_ep ep_of(const char *veth, const char *ip, const char *handle)
{
	struct agent_ep ep;
	memset(&ep, 0, sizeof(ep));
	snprintf(ep.cid, sizeof(ep.cid), "cid");
	snprintf(ep.ifname, sizeof(ep.ifname), "eth0");
	snprintf(ep.veth, sizeof(ep.veth), "%s", veth);
	snprintf(ep.handle, sizeof(ep.handle), "%s", handle);
	ip_parse(ip, &ep.ip[0]);
	ep.n_ip = 1;
	return ep;
}

static struct link_info link_of(const char *name, const char *kind)
{
	struct link_info li;
	memset(&li, 0, sizeof(li));
	li.index = 7;
	snprintf(li.name, sizeof(li.name), "%s", name);
	snprintf(li.kind, sizeof(li.kind), "%s", kind);
	return li;
}

static void test_names(void)
{
	T_CHECK(agent_admit_veth_name("kv0123456789a"));
	T_CHECK(agent_admit_veth_name("kvfffffffffff"));
	T_CHECK(!agent_admit_veth_name("kv0123456789"));   /* 10 digits */
	T_CHECK(!agent_admit_veth_name("kv0123456789ab")); /* 12 */
	T_CHECK(!agent_admit_veth_name("kv0123456789A"));  /* upper case */
	T_CHECK(!agent_admit_veth_name("kx0123456789a"));
	T_CHECK(!agent_admit_veth_name("lo"));
	T_CHECK(!agent_admit_veth_name(""));
}

static void test_link_and_pools(void)
{
	struct conf c;
	T_EQ(conf_defaults(&c, NULL), 0); /* pools 198.18.0.0/16, 2001:db8:4b76::/48 */
	char why[256];
	struct agent_ep ep = ep_of("kv0123456789a", "198.18.3.4", "");
	struct link_info veth = link_of("kv0123456789a", "veth");
	T_CHECK(agent_admit(&c, &ep, &veth, NULL, why, sizeof(why)));
	T_CHECK(!agent_admit(&c, &ep, NULL, NULL, why, sizeof(why)));
	T_CHECK(strstr(why, "does not exist"));
	struct link_info lo = link_of("lo", "");
	struct agent_ep eplo = ep_of("lo", "198.18.3.4", "");
	T_CHECK(!agent_admit(&c, &eplo, &lo, NULL, why, sizeof(why)));
	T_CHECK(strstr(why, "veth lo: not a kvnet host veth"));
	struct link_info br = link_of("kv0123456789a", "bridge");
	T_CHECK(!agent_admit(&c, &ep, &br, NULL, why, sizeof(why)));
	T_CHECK(strstr(why, "kind \"bridge\""));
	struct agent_ep out = ep_of("kv0123456789a", "198.19.0.1", "");
	T_CHECK(!agent_admit(&c, &out, &veth, NULL, why, sizeof(why)));
	T_STREQ(why, "198.19.0.1: outside every configured pool ([ipam] ipv4_pools)");
	struct agent_ep v6 = ep_of("kv0123456789a", "2001:db8:4b76:1::5", "");
	T_CHECK(agent_admit(&c, &v6, &veth, NULL, why, sizeof(why)));
	struct agent_ep v6out = ep_of("kv0123456789a", "2001:db8:4b77::5", "");
	T_CHECK(!agent_admit(&c, &v6out, &veth, NULL, why, sizeof(why)));
	T_CHECK(strstr(why, "ipv6_pools"));
	/* a second address outside: the whole registration is refused */
	struct agent_ep two = ep_of("kv0123456789a", "198.18.3.4", "");
	ip_parse("2001:db8:ffff::1", &two.ip[1]);
	two.n_ip = 2;
	T_CHECK(!agent_admit(&c, &two, &veth, NULL, why, sizeof(why)));
}

static void test_ipam_records(void)
{
	struct conf c;
	T_EQ(conf_defaults(&c, NULL), 0);
	struct ipam_state st;
	ipam_state_init(&st);
	struct ipam_cidr pool;
	T_CHECK(ip_parse_prefix("198.18.0.0/16", &pool.a, &pool.prefix));
	struct err e = { 0 };
	T_EQ(ipam_pool_add(&st, "p4", &pool, 0, NULL, 0, &e), 0);
	struct ip_addr a9, a10;
	ip_parse("198.18.7.9", &a9);
	ip_parse("198.18.7.10", &a10);
	struct ipam_attrs at;
	memset(&at, 0, sizeof(at));
	T_EQ(ipam_reserve_ip(&st, "net.vmi.default.vm1", &a9, &at, &e), 0);
	T_EQ(ipam_reserve_ip(&st, "net.vmi.default.vm2", &a10, &at, &e), 0);
	struct link_info veth = link_of("kv0123456789a", "veth");
	char why[256];
	struct agent_ep ok1 = ep_of("kv0123456789a", "198.18.7.9", "net.vmi.default.vm1");
	T_CHECK(agent_admit(&c, &ok1, &veth, &st, why, sizeof(why)));
	struct agent_ep other = ep_of("kv0123456789a", "198.18.7.10", "net.vmi.default.vm1");
	T_CHECK(!agent_admit(&c, &other, &veth, &st, why, sizeof(why)));
	T_STREQ(why, "198.18.7.10: IPAM gave it to handle net.vmi.default.vm2, not "
		     "net.vmi.default.vm1");
	struct agent_ep free1 = ep_of("kv0123456789a", "198.18.7.11", "net.vmi.default.vm1");
	T_CHECK(!agent_admit(&c, &free1, &veth, &st, why, sizeof(why)));
	T_STREQ(why, "198.18.7.11: not allocated in IPAM");
	/* no handle named: allocated is enough */
	struct agent_ep nohandle = ep_of("kv0123456789a", "198.18.7.10", "");
	T_CHECK(agent_admit(&c, &nohandle, &veth, &st, why, sizeof(why)));
	ipam_state_free(&st);
}

int main(void)
{
	T_RUN(test_names);
	T_RUN(test_link_and_pools);
	T_RUN(test_ipam_records);
	return t_done();
}
