/* test-agent-desired — the pure desired-route function (agent/desired.h) and the
 * route comparison the reconciler uses. */
#include "agent/desired.h"
#include "lib/err.h"
#include "test/lib/t.h"

#include <linux/rtnetlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static struct ip_addr ip(const char *s)
{
	struct ip_addr a;
	if (!ip_parse(s, &a))
		abort();
	return a;
}

static struct agent_ep mkep(const char *cid, const char *uid, int ifindex, const char *a1,
			    const char *a2, bool target)
{
	struct agent_ep e;
	memset(&e, 0, sizeof(e));
	snprintf(e.cid, sizeof(e.cid), "%s", cid);
	snprintf(e.ifname, sizeof(e.ifname), "eth0");
	snprintf(e.uid, sizeof(e.uid), "%s", uid);
	snprintf(e.veth, sizeof(e.veth), "kv%s", cid);
	e.ifindex = ifindex;
	e.target = target;
	e.ip[e.n_ip++] = ip(a1);
	if (a2)
		e.ip[e.n_ip++] = ip(a2);
	return e;
}

static const struct agent_node nodes[] = {
	{ "node-a", { AF_INET, { 198, 19, 0, 1 } }, { 0 } },
	{ "node-b", { AF_INET, { 198, 19, 0, 2 } }, { 0 } },
	{ "node-c", { AF_INET, { 198, 19, 0, 3 } }, { 0 } },
};

/* Find the route to dst/len at metric; NULL if none. */
static const struct rt_route *find(const struct rt_route *v, unsigned n, const char *dst,
				   unsigned len, uint32_t metric)
{
	struct ip_addr d = ip(dst);
	for (unsigned i = 0; i < n; i++)
		if (ip_eq(&v[i].dst, &d) && v[i].dst_len == len && v[i].metric == metric)
			return &v[i];
	return NULL;
}

static bool is_via(const struct rt_route *r, const char *gw)
{
	struct ip_addr g = ip(gw);
	return r && r->gw.family && ip_eq(&r->gw, &g) && r->oif == 0 &&
	       r->scope == RT_SCOPE_UNIVERSE && r->protocol == 75;
}

static void world(struct agent_world *w, const char *self)
{
	memset(w, 0, sizeof(*w));
	w->self = self;
	w->direct = true;
	w->metric = 1024;
	w->protocol = 75;
	w->nodes = nodes;
	w->n_nodes = 3;
}

static void test_local_endpoints(void)
{
	struct agent_ep e1 = mkep("c1", "u1", 7, "198.18.0.5", "2001:db8::5", false);
	struct agent_ep e2 = mkep("c2", "u2", 8, "198.18.0.6", NULL, true); /* dark target */
	struct agent_ep e3 = mkep("c3", "u3", 0, "198.18.0.7", NULL, false); /* no veth */
	const struct agent_ep *eps[] = { &e1, &e2, &e3 };
	struct agent_world w;
	world(&w, "node-a");
	w.eps = eps;
	w.n_eps = 3;
	struct rt_route *v;
	unsigned n;
	T_EQ(agent_desired(&w, &v, &n, NULL), 0);
	T_EQ(n, 2);
	const struct rt_route *r4 = find(v, n, "198.18.0.5", 32, 1024);
	const struct rt_route *r6 = find(v, n, "2001:db8::5", 128, 1024);
	T_CHECK(r4 && r4->oif == 7 && r4->scope == RT_SCOPE_LINK && !r4->gw.family &&
		r4->protocol == 75);
	T_CHECK(r6 && r6->oif == 7 && r6->scope == RT_SCOPE_UNIVERSE);
	T_CHECK(!find(v, n, "198.18.0.6", 32, 1024)); /* dark */
	T_CHECK(!find(v, n, "198.18.0.7", 32, 1024)); /* unresolved */
	/* sorted: IPv4 before IPv6 */
	T_EQ(v[0].dst.family, AF_INET);
	free(v);
}

static void test_remote_blocks_and_moved_ips(void)
{
	struct agent_block blocks[] = {
		{ ip("198.18.0.0"), 26, "node-a" },
		{ ip("198.18.0.64"), 26, "node-b" },
		{ ip("198.18.0.128"), 26, "node-c" },
		{ ip("198.18.0.192"), 26, "" },	       /* no affinity: no route */
		{ ip("2001:db8::"), 122, "node-b" },   /* node-b has no IPv6 address */
	};
	struct agent_owner owners[] = {
		{ ip("198.18.0.10"), "node-b", "uid-vm1" },  /* ours, runs on b */
		{ ip("198.18.0.70"), "node-b", "uid-x" },    /* b's, on b: block route */
		{ ip("198.18.0.71"), "node-c", "uid-vm2" },  /* b's, on c */
		{ ip("198.18.0.72"), "node-a", "uid-vm3" },  /* b's, on us: local rule only */
		{ ip("198.18.0.130"), "node-d", "uid-y" },   /* unknown node: nothing */
	};
	struct agent_ep e = mkep("c3", "uid-vm3", 9, "198.18.0.72", NULL, false);
	const struct agent_ep *eps[] = { &e };
	struct agent_world w;
	world(&w, "node-a");
	w.blocks = blocks;
	w.n_blocks = 5;
	w.owners = owners;
	w.n_owners = 5;
	w.eps = eps;
	w.n_eps = 1;
	struct rt_route *v;
	unsigned n;
	T_EQ(agent_desired(&w, &v, &n, NULL), 0);
	T_CHECK(is_via(find(v, n, "198.18.0.64", 26, 1024), "198.19.0.2"));
	T_CHECK(is_via(find(v, n, "198.18.0.128", 26, 1024), "198.19.0.3"));
	T_CHECK(!find(v, n, "198.18.0.0", 26, 1024));	/* our own block */
	T_CHECK(!find(v, n, "198.18.0.192", 26, 1024)); /* no affinity */
	T_CHECK(!find(v, n, "2001:db8::", 122, 1024));	/* no IPv6 InternalIP */
	T_CHECK(is_via(find(v, n, "198.18.0.10", 32, 1024), "198.19.0.2"));
	T_CHECK(!find(v, n, "198.18.0.70", 32, 1024));
	T_CHECK(is_via(find(v, n, "198.18.0.71", 32, 1024), "198.19.0.3"));
	const struct rt_route *l = find(v, n, "198.18.0.72", 32, 1024);
	T_CHECK(l && l->oif == 9);
	T_CHECK(!find(v, n, "198.18.0.130", 32, 1024));
	T_EQ(n, 5);
	free(v);

	/* direct mode off: local routes only */
	w.direct = false;
	T_EQ(agent_desired(&w, &v, &n, NULL), 0);
	T_EQ(n, 1);
	T_CHECK(find(v, n, "198.18.0.72", 32, 1024) != NULL);
	free(v);
}

/* The overlay: rules 1 (VIA), 3 and 4 through the VXLAN device, onlink; local routes
 * unchanged. */
static void test_overlay_via_oif(void)
{
	struct agent_block blocks[] = { { ip("198.18.0.64"), 26, "node-b" } };
	struct agent_owner owners[] = { { ip("198.18.0.71"), "node-c", "uid-vm2" } };
	struct agent_ep e = mkep("c3", "uid-vm3", 9, "198.18.0.5", NULL, false);
	const struct agent_ep *eps[] = { &e };
	struct agent_override ovr;
	memset(&ovr, 0, sizeof(ovr));
	ovr.ip = ip("198.18.0.99");
	ovr.kind = AGENT_OVR_VIA;
	snprintf(ovr.node, sizeof(ovr.node), "node-c");
	struct agent_world w;
	world(&w, "node-a");
	w.via_oif = 42;
	w.blocks = blocks;
	w.n_blocks = 1;
	w.owners = owners;
	w.n_owners = 1;
	w.eps = eps;
	w.n_eps = 1;
	w.ovr = &ovr;
	w.n_ovr = 1;
	struct rt_route *v;
	unsigned n;
	T_EQ(agent_desired(&w, &v, &n, NULL), 0);
	const char *dst[] = { "198.18.0.64", "198.18.0.71", "198.18.0.99" };
	const unsigned len[] = { 26, 32, 32 };
	const char *gw[] = { "198.19.0.2", "198.19.0.3", "198.19.0.3" };
	for (unsigned i = 0; i < 3; i++) {
		const struct rt_route *r = find(v, n, dst[i], len[i], 1024);
		struct ip_addr g = ip(gw[i]);
		T_CHECK(r && r->oif == 42 && r->onlink && ip_eq(&r->gw, &g) &&
			r->scope == RT_SCOPE_UNIVERSE);
	}
	const struct rt_route *l = find(v, n, "198.18.0.5", 32, 1024);
	T_CHECK(l && l->oif == 9 && !l->onlink && !l->gw.family);
	T_EQ(n, 4);
	free(v);
}

static void test_vm_moved_away(void)
{
	/* the source node after a migration: the pod is still here, IPAM's active owner is
	 * the target pod on node-b -> route via node-b, not the local veth */
	struct agent_block blocks[] = { { ip("198.18.0.0"), 26, "node-a" } };
	struct agent_owner owners[] = { { ip("198.18.0.10"), "node-b", "uid-target" } };
	struct agent_ep src = mkep("src", "uid-source", 4, "198.18.0.10", NULL, false);
	const struct agent_ep *eps[] = { &src };
	struct agent_world w;
	world(&w, "node-a");
	w.blocks = blocks;
	w.n_blocks = 1;
	w.owners = owners;
	w.n_owners = 1;
	w.eps = eps;
	w.n_eps = 1;
	struct rt_route *v;
	unsigned n;
	T_EQ(agent_desired(&w, &v, &n, NULL), 0);
	T_EQ(n, 1);
	T_CHECK(is_via(find(v, n, "198.18.0.10", 32, 1024), "198.19.0.2"));
	free(v);
	/* while IPAM still names the source pod, it is routed locally */
	owners[0].node = "node-a";
	owners[0].uid = "uid-source";
	T_EQ(agent_desired(&w, &v, &n, NULL), 0);
	T_EQ(n, 1);
	T_CHECK(find(v, n, "198.18.0.10", 32, 1024) && v[0].oif == 4);
	free(v);
}

static void test_overrides(void)
{
	struct agent_block blocks[] = { { ip("198.18.0.64"), 26, "node-b" } };
	struct agent_owner owners[] = { { ip("198.18.0.70"), "node-b", "uid-src" } };
	struct agent_ep tgt = mkep("tgt", "uid-tgt", 11, "198.18.0.70", NULL, true);
	struct agent_ep other = mkep("o", "uid-o", 12, "198.18.0.20", NULL, false);
	const struct agent_ep *eps[] = { &tgt, &other };
	struct agent_override ovr[3];
	memset(ovr, 0, sizeof(ovr));
	ovr[0].ip = ip("198.18.0.70"); /* the target went live: metric 512 on its veth */
	ovr[0].kind = AGENT_OVR_DEV;
	ovr[0].ifindex = 11;
	ovr[0].metric = 512;
	ovr[1].ip = ip("198.18.0.20"); /* NONE hides the local route */
	ovr[1].kind = AGENT_OVR_NONE;
	ovr[2].ip = ip("198.18.0.99"); /* VIA a node */
	ovr[2].kind = AGENT_OVR_VIA;
	snprintf(ovr[2].node, sizeof(ovr[2].node), "node-c");
	struct agent_world w;
	world(&w, "node-a");
	w.blocks = blocks;
	w.n_blocks = 1;
	w.owners = owners;
	w.n_owners = 1;
	w.eps = eps;
	w.n_eps = 2;
	w.ovr = ovr;
	w.n_ovr = 3;
	struct rt_route *v;
	unsigned n;
	T_EQ(agent_desired(&w, &v, &n, NULL), 0);
	const struct rt_route *r = find(v, n, "198.18.0.70", 32, 512);
	T_CHECK(r && r->oif == 11 && r->scope == RT_SCOPE_LINK);
	T_CHECK(!find(v, n, "198.18.0.70", 32, 1024));
	T_CHECK(!find(v, n, "198.18.0.20", 32, 1024));
	T_CHECK(is_via(find(v, n, "198.18.0.99", 32, 1024), "198.19.0.3"));
	T_CHECK(is_via(find(v, n, "198.18.0.64", 26, 1024), "198.19.0.2"));
	T_EQ(n, 3);
	free(v);
	/* VIA ourselves or an unknown node: nothing */
	snprintf(ovr[2].node, sizeof(ovr[2].node), "node-a");
	T_EQ(agent_desired(&w, &v, &n, NULL), 0);
	T_CHECK(!find(v, n, "198.18.0.99", 32, 1024));
	free(v);
}

static void test_ipv6_and_dedup(void)
{
	struct agent_node n6[] = { { "node-b", { 0 }, { 0 } } };
	n6[0].v6 = ip("2001:db8:ffff::2");
	struct agent_block blocks[] = { { ip("2001:db8:1::"), 122, "node-b" },
					{ ip("2001:db8:1::"), 122, "node-b" } };
	struct agent_ep e = mkep("c", "u", 3, "2001:db8:2::1", NULL, false);
	struct agent_ep dup = mkep("d", "u", 5, "2001:db8:2::1", NULL, false);
	const struct agent_ep *eps[] = { &e, &dup };
	struct agent_world w;
	world(&w, "node-a");
	w.nodes = n6;
	w.n_nodes = 1;
	w.blocks = blocks;
	w.n_blocks = 2;
	w.eps = eps;
	w.n_eps = 2;
	struct rt_route *v;
	unsigned n;
	T_EQ(agent_desired(&w, &v, &n, NULL), 0);
	T_EQ(n, 2); /* one block route, one /128: first endpoint wins */
	const struct rt_route *b = find(v, n, "2001:db8:1::", 122, 1024);
	T_CHECK(b && b->gw.family == AF_INET6);
	const struct rt_route *l = find(v, n, "2001:db8:2::1", 128, 1024);
	T_CHECK(l && l->oif == 3);
	free(v);
}

static void test_route_same(void)
{
	struct rt_route want, have;
	memset(&want, 0, sizeof(want));
	want.dst = ip("198.18.0.5");
	want.dst_len = 32;
	want.oif = 7;
	want.metric = 1024;
	want.protocol = 75;
	want.scope = RT_SCOPE_LINK;
	have = want;
	have.table = RT_TABLE_MAIN;
	have.type = RTN_UNICAST;
	T_CHECK(agent_route_same(&want, &have));
	have.oif = 8;
	T_CHECK(!agent_route_same(&want, &have)); /* wrong device */
	have.oif = 7;
	have.scope = RT_SCOPE_UNIVERSE;
	T_CHECK(!agent_route_same(&want, &have)); /* wrong scope */
	have.scope = RT_SCOPE_LINK;
	have.gw = ip("198.19.0.9");
	T_CHECK(!agent_route_same(&want, &have)); /* a gateway where none is wanted */
	have.gw.family = 0;
	have.metric = 512;
	T_CHECK(!agent_route_same(&want, &have)); /* another identity */
	T_CHECK(agent_route_cmp(&have, &want) < 0);
	/* a gateway route: the kernel reports an oif too; only the gateway counts */
	want.oif = 0;
	want.gw = ip("198.19.0.2");
	want.scope = RT_SCOPE_UNIVERSE;
	have = want;
	have.oif = 3;
	T_CHECK(agent_route_same(&want, &have));
}

int main(void)
{
	T_RUN(test_local_endpoints);
	T_RUN(test_remote_blocks_and_moved_ips);
	T_RUN(test_overlay_via_oif);
	T_RUN(test_vm_moved_away);
	T_RUN(test_overrides);
	T_RUN(test_ipv6_and_dedup);
	T_RUN(test_route_same);
	return t_done();
}
