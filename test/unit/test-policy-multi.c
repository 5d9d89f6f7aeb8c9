/* Unit tests for MultiNetworkPolicy in policy/: the policy-for annotation (bare and
 * namespaced NADs, errors naming the field), pod addresses per network from the
 * network-status annotation and from a VMI's networks, pol_world_net() (only the
 * MultiNetworkPolicies of that network; addresses of that network), the verdicts of the
 * same compiler over it, and that NetworkPolicy compilation never sees a
 * MultiNetworkPolicy. */
#include "policy/policy.h"
#include "lib/err.h"
#include "test/lib/t.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static int add(struct pol_world *w, const char *json, struct err *e)
{
	int rc = pol_world_add_json(w, json, strlen(json), NULL, e);
	if (rc < 0)
		fprintf(stderr, "# add: %s\n", e->msg);
	return rc;
}

/* Pod NS/NAME with label app=NAME, cluster address 198.18.0.X, and on NAD vms/l2a
 * address 198.19.1.X (l2b: 198.19.2.X when on_b). */
static void pod(struct pol_world *w, const char *ns, const char *name, int x, bool on_b)
{
	char buf[2048], st[512], second[160] = "";
	if (on_b)
		snprintf(second, sizeof(second),
			 ",{\\\"name\\\":\\\"vms/l2b\\\",\\\"interface\\\":\\\"net2\\\","
			 "\\\"ips\\\":[\\\"198.19.2.%d\\\"]}", x);
	snprintf(st, sizeof(st),
		 "[{\\\"name\\\":\\\"kvnet\\\",\\\"interface\\\":\\\"eth0\\\",\\\"ips\\\":[\\\"198.18.0.%d\\\"],"
		 "\\\"default\\\":true},{\\\"name\\\":\\\"vms/l2a\\\",\\\"interface\\\":\\\"net1\\\","
		 "\\\"ips\\\":[\\\"198.19.1.%d/24\\\"]}%s]",
		 x, x, second);
	snprintf(buf, sizeof(buf),
		 "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"%s\",\"namespace\":\"%s\","
		 "\"labels\":{\"app\":\"%s\"},\"annotations\":{\"k8s.v1.cni.cncf.io/network-status\":"
		 "\"%s\"}},\"status\":{\"podIP\":\"198.18.0.%d\"}}",
		 name, ns, name, st, x);
	struct err e = { 0 };
	if (add(w, buf, &e) < 0)
		abort();
}

/* ingress of vms/app=server from app=client on TCP 443, for NADs `nets`. */
static void mnp(struct pol_world *w, const char *name, const char *nets)
{
	char buf[1024];
	snprintf(buf, sizeof(buf),
		 "{\"apiVersion\":\"k8s.cni.cncf.io/v1beta1\",\"kind\":\"MultiNetworkPolicy\","
		 "\"metadata\":{\"name\":\"%s\",\"namespace\":\"vms\",\"annotations\":"
		 "{\"k8s.v1.cni.cncf.io/policy-for\":\"%s\"}},\"spec\":{\"podSelector\":"
		 "{\"matchLabels\":{\"app\":\"server\"}},\"policyTypes\":[\"Ingress\"],"
		 "\"ingress\":[{\"from\":[{\"podSelector\":{\"matchLabels\":{\"app\":\"client\"}}}],"
		 "\"ports\":[{\"protocol\":\"TCP\",\"port\":443}]}]}}",
		 name, nets);
	struct err e = { 0 };
	if (add(w, buf, &e) < 0)
		abort();
}

static struct pol_world *world(void)
{
	struct pol_world *w = pol_world_new();
	pod(w, "vms", "server", 1, true);
	pod(w, "vms", "client", 2, false);
	pod(w, "vms", "other", 3, true);
	return w;
}

static int verdict(const struct pol_world *w, const char *from, const char *to, int port)
{
	struct pol_end s = { .ns = "vms", .name = from }, d = { .ns = "vms", .name = to };
	struct pol_verdict v;
	struct err e = { 0 };
	if (pol_verdict(w, &s, &d, POL_TCP, (uint16_t)port, &v, &e) < 0) {
		fprintf(stderr, "# verdict: %s\n", e.msg);
		return -1;
	}
	int r = v.allowed;
	pol_verdict_free(&v);
	return r;
}

static void test_parse_policy_for(void)
{
	struct pol_world *w = world();
	mnp(w, "p1", "l2a, other/l2x");
	T_EQ(pol_world_nmulti(w), 1u);
	T_EQ(pol_world_npolicies(w), 0u);
	struct pol_world *a = pol_world_net(w, "vms/l2a");
	struct pol_world *x = pol_world_net(w, "other/l2x");
	struct pol_world *b = pol_world_net(w, "vms/l2b");
	T_CHECK(a && x && b);
	T_EQ(pol_world_npolicies(a), 1u);
	T_EQ(pol_world_npolicies(x), 1u);
	T_EQ(pol_world_npolicies(b), 0u);
	pol_world_free(a);
	pol_world_free(x);
	pol_world_free(b);
	pol_world_free(w);
}

static void test_parse_errors(void)
{
	struct pol_world *w = pol_world_new();
	struct err e = { 0 };
	const char *none = "{\"kind\":\"MultiNetworkPolicy\",\"metadata\":{\"name\":\"p\","
			   "\"namespace\":\"vms\"},\"spec\":{\"podSelector\":{}}}";
	T_EQ(pol_world_add_json(w, none, strlen(none), NULL, &e), -EINVAL);
	T_CHECK(strstr(e.msg, "MultiNetworkPolicy vms/p") && strstr(e.msg, "policy-for: required"));
	const char *bad = "{\"kind\":\"MultiNetworkPolicy\",\"metadata\":{\"name\":\"p\","
			  "\"namespace\":\"vms\",\"annotations\":{\"k8s.v1.cni.cncf.io/policy-for\":"
			  "\"a/b/c\"}},\"spec\":{\"podSelector\":{}}}";
	e = (struct err){ 0 };
	T_EQ(pol_world_add_json(w, bad, strlen(bad), NULL, &e), -EINVAL);
	T_CHECK(strstr(e.msg, "a/b/c: not NAD or NAMESPACE/NAD") != NULL);
	const char *empty = "{\"kind\":\"MultiNetworkPolicy\",\"metadata\":{\"name\":\"p\","
			    "\"namespace\":\"vms\",\"annotations\":{\"k8s.v1.cni.cncf.io/policy-for\":"
			    "\" , \"}},\"spec\":{\"podSelector\":{}}}";
	e = (struct err){ 0 };
	T_EQ(pol_world_add_json(w, empty, strlen(empty), NULL, &e), -EINVAL);
	T_CHECK(strstr(e.msg, "names no network") != NULL);
	const char *st = "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"q\",\"namespace\":\"vms\","
			 "\"annotations\":{\"k8s.v1.cni.cncf.io/network-status\":\"{oops\"}}}";
	e = (struct err){ 0 };
	T_EQ(pol_world_add_json(w, st, strlen(st), NULL, &e), -EINVAL);
	T_CHECK(strstr(e.msg, "Pod vms/q") && strstr(e.msg, "network-status: not a JSON list"));
	T_EQ(pol_world_nmulti(w), 0u);
	pol_world_free(w);
}

static void test_net_addresses(void)
{
	struct pol_world *w = world();
	struct ip_addr ips[POL_IPS_MAX];
	unsigned n = 0;
	char b[IP_STRLEN];
	T_CHECK(pol_world_pod_net_ips(w, "vms", "server", "vms/l2a", ips, &n));
	T_EQ(n, 1u);
	T_STREQ(ip_fmt(&ips[0], b), "198.19.1.1");
	T_CHECK(pol_world_pod_net_ips(w, "vms", "server", "vms/l2b", ips, &n));
	T_STREQ(ip_fmt(&ips[0], b), "198.19.2.1");
	T_CHECK(!pol_world_pod_net_ips(w, "vms", "client", "vms/l2b", ips, &n));
	T_CHECK(!pol_world_pod_net_ips(w, "vms", "server", "kvnet", ips, &n));
	/* a VMI: spec.networks joined with status.interfaces by name */
	const char *vmi =
		"{\"kind\":\"VirtualMachineInstance\",\"metadata\":{\"name\":\"vm1\",\"namespace\":"
		"\"vms\",\"labels\":{\"app\":\"client\"}},\"spec\":{\"networks\":[{\"name\":\"default\","
		"\"pod\":{}},{\"name\":\"lan\",\"multus\":{\"networkName\":\"l2a\"}}]},\"status\":"
		"{\"interfaces\":[{\"name\":\"default\",\"ipAddress\":\"198.18.0.9\"},{\"name\":\"lan\","
		"\"ipAddress\":\"198.19.1.9\",\"ipAddresses\":[\"198.19.1.9\",\"2001:db8::9\"]}]}}";
	struct err e = { 0 };
	T_EQ(add(w, vmi, &e), 0);
	T_CHECK(pol_world_pod_net_ips(w, "vms", "vm1", "vms/l2a", ips, &n));
	T_EQ(n, 2u);
	T_STREQ(ip_fmt(&ips[0], b), "198.19.1.9");
	T_STREQ(ip_fmt(&ips[1], b), "2001:db8::9");
	pol_world_free(w);
}

/* The compiled rule set on l2a: server's ingress isolated with one rule from client's
 * l2a address on tcp/443; its addresses are its l2a ones. */
static void test_compile_net(void)
{
	struct pol_world *w = world();
	mnp(w, "p1", "l2a");
	struct pol_world *a = pol_world_net(w, "vms/l2a");
	struct pol_ep_in in = { .ns = "vms", .name = "server", .ifname = "kvport1" };
	struct pol_ruleset rs;
	struct err e = { 0 };
	T_EQ(pol_compile(a, &in, 1, &rs, &e), 0);
	T_EQ(rs.n, 1u);
	char b[IP_STRLEN], rb[256];
	T_EQ(rs.eps[0].n_ips, 1u);
	T_STREQ(ip_fmt(&rs.eps[0].ips[0], b), "198.19.1.1");
	T_CHECK(rs.eps[0].dir[POL_INGRESS].isolated);
	T_CHECK(!rs.eps[0].dir[POL_EGRESS].isolated);
	T_EQ(rs.eps[0].dir[POL_INGRESS].n_rules, 1u);
	const struct pol_crule *r = &rs.eps[0].dir[POL_INGRESS].rules[0];
	T_STREQ(r->id, "vms/p1/ingress/0");
	T_STREQ(pol_ranges_fmt(&r->peers, rb, sizeof(rb)), "198.19.1.2/32");
	T_EQ(r->n_ports, 1u);
	T_EQ(r->ports[0].lo, 443);
	pol_ruleset_free(&rs);
	/* the cluster network: the MultiNetworkPolicy is not there */
	in.ifname = NULL;
	T_EQ(pol_compile(w, &in, 1, &rs, &e), 0);
	T_CHECK(!rs.eps[0].dir[POL_INGRESS].isolated);
	T_STREQ(ip_fmt(&rs.eps[0].ips[0], b), "198.18.0.1");
	pol_ruleset_free(&rs);
	pol_world_free(a);
	pol_world_free(w);
}

/* The expected matrix on each network: on l2a only client → server 443 is allowed into
 * server; on l2b (no policy) everything; on the cluster network everything. */
static void test_verdicts(void)
{
	struct pol_world *w = world();
	mnp(w, "p1", "vms/l2a");
	struct pol_world *a = pol_world_net(w, "vms/l2a");
	struct pol_world *b = pol_world_net(w, "vms/l2b");
	T_EQ(verdict(a, "client", "server", 443), 1);
	T_EQ(verdict(a, "client", "server", 80), 0);
	T_EQ(verdict(a, "other", "server", 443), 0);
	T_EQ(verdict(a, "server", "client", 80), 1);
	T_EQ(verdict(a, "server", "other", 443), 1);
	T_EQ(verdict(b, "other", "server", 443), 1);
	T_EQ(verdict(b, "other", "server", 80), 1);
	T_EQ(verdict(w, "other", "server", 80), 1);
	pol_world_free(a);
	pol_world_free(b);
	pol_world_free(w);
}

/* A VMI's address on an L2 (secondary) network is not a cluster address: a
 * NetworkPolicy peer set selecting the VMI holds its pod-network address only, and the
 * L2 address names no pod or VMI on the cluster network. */
static void test_vmi_l2_no_leak(void)
{
	struct pol_world *w = pol_world_new();
	struct err e = { 0 };
	const char *vmi =
		"{\"kind\":\"VirtualMachineInstance\",\"metadata\":{\"name\":\"vm1\",\"namespace\":"
		"\"vms\",\"labels\":{\"app\":\"client\"}},\"spec\":{\"networks\":[{\"name\":\"default\","
		"\"pod\":{}},{\"name\":\"lan\",\"multus\":{\"networkName\":\"l2a\"}}]},\"status\":"
		"{\"interfaces\":[{\"name\":\"default\",\"ipAddress\":\"198.18.0.9\"},{\"name\":\"lan\","
		"\"ipAddress\":\"198.19.1.9\",\"ipAddresses\":[\"198.19.1.9\",\"2001:db8::9\"]}]}}";
	const char *srv =
		"{\"kind\":\"Pod\",\"metadata\":{\"name\":\"server\",\"namespace\":\"vms\","
		"\"labels\":{\"app\":\"server\"}},\"status\":{\"podIP\":\"198.18.0.1\"}}";
	const char *np =
		"{\"kind\":\"NetworkPolicy\",\"metadata\":{\"name\":\"np\",\"namespace\":\"vms\"},"
		"\"spec\":{\"podSelector\":{\"matchLabels\":{\"app\":\"server\"}},\"ingress\":[{\"from\":"
		"[{\"podSelector\":{\"matchLabels\":{\"app\":\"client\"}}}]}]}}";
	T_EQ(add(w, vmi, &e), 0);
	T_EQ(add(w, srv, &e), 0);
	T_EQ(add(w, np, &e), 0);
	struct pol_ep_in in = { .ns = "vms", .name = "server", .ifname = "kvsrv" };
	struct pol_ruleset rs;
	char rb[256];
	T_EQ(pol_compile(w, &in, 1, &rs, &e), 0);
	T_EQ(rs.eps[0].dir[POL_INGRESS].n_rules, 1u);
	T_STREQ(pol_ranges_fmt(&rs.eps[0].dir[POL_INGRESS].rules[0].peers, rb, sizeof(rb)),
		"198.18.0.9/32");
	pol_ruleset_free(&rs);
	struct ip_addr l2;
	const char *ns, *name;
	bool vm;
	T_CHECK(ip_parse("198.19.1.9", &l2));
	T_CHECK(!pol_world_find_ip(w, &l2, &ns, &name, &vm));
	T_CHECK(ip_parse("2001:db8::9", &l2));
	T_CHECK(!pol_world_find_ip(w, &l2, &ns, &name, &vm));
	/* its cluster address still names it; its L2 address is its address on l2a */
	T_CHECK(ip_parse("198.18.0.9", &l2));
	T_CHECK(pol_world_find_ip(w, &l2, &ns, &name, &vm) && vm);
	struct ip_addr ips[POL_IPS_MAX];
	unsigned n = 0;
	T_CHECK(pol_world_pod_net_ips(w, "vms", "vm1", "vms/l2a", ips, &n));
	T_EQ(n, 2u);
	pol_world_free(w);
}

int main(void)
{
	T_RUN(test_parse_policy_for);
	T_RUN(test_parse_errors);
	T_RUN(test_net_addresses);
	T_RUN(test_compile_net);
	T_RUN(test_verdicts);
	T_RUN(test_vmi_l2_no_leak);
	return t_done();
}
