/* Unit tests for ipam/: allocator (affinity, claim, borrow, reserved addresses,
 * idempotence, owners with preconditions, release rules, v4/v6, exhaustion), handle
 * naming with the hash suffix (checked against sha256sum), JSON records and diffs. */
#include "ipam/ipam.h"
#include "lib/json.h"
#include "lib/err.h"
#include "test/lib/t.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static struct ip_addr A(const char *s) {
	struct ip_addr a;
	if (ipam_addr_parse(&a, s, NULL))
		memset(&a, 0xee, sizeof(a));
	return a;
}

static const char *
S(const struct ip_addr *a)
{
	static char buf[8][64]; /* test code: a few rotating buffers */
	static int k;
	k = (k + 1) % 8;
	return ipam_addr_str(a, buf[k], sizeof(buf[k]));
}

static int pool(struct ipam_state *st, const char *name, const char *cidr, unsigned bs,
		const char *res1, const char *res2)
{
	struct ipam_cidr c;
	struct ip_addr r[2];
	unsigned n = 0;
	if (ipam_cidr_parse(&c, cidr, NULL))
		return -EINVAL;
	if (res1)
		r[n++] = A(res1);
	if (res2)
		r[n++] = A(res2);
	return ipam_pool_add(st, name, &c, bs, r, n, NULL);
}

/* Allocate for handle h on node; returns the first address as text ("" on error). */
static const char *alloc(struct ipam_state *st, const char *h, const char *node, unsigned fam,
			 int *rc)
{
	struct ip_addr out[IPAM_HANDLE_IPS_MAX];
	unsigned n = 0;
	struct err e = {0};
	int r = ipam_alloc(st, h, node, fam, NULL, out, &n, &e);
	if (rc)
		*rc = r;
	return r || n == 0 ? "" : S(&out[0]);
}

/* A pool with a network serves only that network; others never take from it. The field
 * round-trips through the record JSON, and a pool without it writes no "network". */
static void test_network_pools(void)
{
	struct ipam_state st;
	ipam_state_init(&st);
	T_EQ(pool(&st, "routed", "198.18.0.0/24", 0, NULL, NULL), 0);
	T_EQ(pool(&st, "l2", "198.18.100.0/24", 0, "198.18.100.1", NULL), 0);
	snprintf(st.pools[1].network, sizeof(st.pools[1].network), "vlan100");
	struct ip_addr out[IPAM_HANDLE_IPS_MAX];
	unsigned n = 0;
	struct err e = {0};
	T_EQ(ipam_alloc_net(&st, "vlan100.vm1", "node-a", IPAM_V4, "vlan100", NULL, out, &n, &e), 0);
	T_STREQ(S(&out[0]), "198.18.100.2"); /* .0 and the gateway .1 reserved */
	T_STREQ(alloc(&st, "net.c1", "node-a", IPAM_V4, NULL), "198.18.0.1");
	/* fill the routed pool: it never borrows from the L2 network's block */
	char h[32];
	int rc = 0;
	for (int i = 2; i < 300 && rc == 0; i++) {
		snprintf(h, sizeof(h), "net.c%d", i);
		const char *got = alloc(&st, h, "node-a", IPAM_V4, &rc);
		if (rc == 0)
			T_CHECK(strncmp(got, "198.18.0.", 9) == 0);
	}
	T_EQ(rc, -ENOSPC);
	T_EQ(ipam_alloc_net(&st, "vlan200.vm1", "node-a", IPAM_V4, "vlan200", NULL, out, &n, &e),
	     -ENOENT);
	T_CHECK(strstr(e.msg, "vlan200") != NULL);
	struct json_w w;
	json_w_init_grow(&w, 1024);
	T_EQ(ipam_rec_write(&st, IPAM_POOL, "l2", &w, NULL), 0);
	T_CHECK(strstr(w.buf, "\"network\":\"vlan100\"") != NULL);
	struct ipam_state st2;
	ipam_state_init(&st2);
	T_EQ(ipam_state_load(&st2, IPAM_POOL, "l2", "1", w.buf, w.len, NULL), 0);
	T_STREQ(st2.pools[0].network, "vlan100");
	json_w_free(&w);
	json_w_init_grow(&w, 1024);
	T_EQ(ipam_rec_write(&st, IPAM_POOL, "routed", &w, NULL), 0);
	T_CHECK(strstr(w.buf, "network") == NULL);
	json_w_free(&w);
	ipam_state_free(&st2);
	ipam_state_free(&st);
}

/* ipam_pool_claim: a pool of no network whose allocations are all the L2Network's becomes
 * its own (ipamctl, before the network's first CNI ADD), after which the routed allocator
 * never takes from it; a pool of another network, or one with routed allocations, is
 * refused; an address in no pool is -ENOENT. */
static void test_pool_claim(void)
{
	struct ipam_state st;
	ipam_state_init(&st);
	T_EQ(pool(&st, "routed", "198.18.0.0/30", 30, NULL, NULL), 0);
	T_EQ(pool(&st, "l2", "198.18.100.0/24", 0, NULL, NULL), 0);
	T_EQ(pool(&st, "mixed", "198.18.101.0/24", 0, NULL, NULL), 0);
	struct ip_addr a = A("198.18.100.10"), m = A("198.18.101.10"), none = A("198.18.9.1");
	struct err e = {0};
	T_EQ(ipam_reserve_ip(&st, "vlan100.vmi.default.vm1", &a, NULL, NULL), 0);
	T_CHECK(ipam_pool_adoptable(&st, &st.pools[1], "vlan100"));
	T_CHECK(!ipam_pool_adoptable(&st, &st.pools[1], "vlan10")); /* a prefix is not a name */
	T_EQ(ipam_pool_claim(&st, &a, "vlan100", &e), 1);
	T_STREQ(st.pools[1].network, "vlan100");
	T_EQ(ipam_pool_claim(&st, &a, "vlan100", &e), 0);
	T_EQ(ipam_pool_claim(&st, &a, "vlan200", &e), -EEXIST);
	T_CHECK(strstr(e.msg, "serves L2Network vlan100") != NULL);
	T_EQ(ipam_reserve_ip(&st, "kvnet.vmi.default.vm2", &m, NULL, NULL), 0);
	T_EQ(ipam_pool_claim(&st, &m, "vlan101", &e), -EEXIST);
	T_STREQ(st.pools[2].network, "");
	T_EQ(ipam_pool_claim(&st, &none, "vlan100", &e), -ENOENT);
	/* the routed allocator: the /30's two addresses, then the mixed pool, never vlan100's */
	int rc = 0;
	char h[32];
	for (int i = 0; i < 300 && rc == 0; i++) {
		snprintf(h, sizeof(h), "net.c%d", i);
		const char *got = alloc(&st, h, "node-a", IPAM_V4, &rc);
		if (rc == 0)
			T_CHECK(strncmp(got, "198.18.100.", 11) != 0);
	}
	T_EQ(rc, -ENOSPC);
	ipam_state_free(&st);
}

static void test_affinity_and_claim(void)
{
	struct ipam_state st;
	ipam_state_init(&st);
	T_EQ(pool(&st, "p4", "198.18.0.0/24", 0, NULL, NULL), 0);
	T_STREQ(alloc(&st, "h-a1", "node-a", IPAM_V4, NULL), "198.18.0.1");  /* .0 reserved */
	T_STREQ(alloc(&st, "h-b1", "node-b", IPAM_V4, NULL), "198.18.0.64"); /* own block */
	T_STREQ(alloc(&st, "h-a2", "node-a", IPAM_V4, NULL), "198.18.0.2");
	T_EQ(st.n_blocks, 2);
	T_STREQ(st.blocks[0].affinity, "node-a");
	T_STREQ(st.blocks[1].affinity, "node-b");
	/* fill node-a's block (.1 .. .63), then it claims the next free block */
	char h[32];
	for (int i = 3; i <= 63; i++) {
		snprintf(h, sizeof(h), "h-a%d", i);
		alloc(&st, h, "node-a", IPAM_V4, NULL);
	}
	T_STREQ(alloc(&st, "h-a64", "node-a", IPAM_V4, NULL), "198.18.0.128");
	T_EQ(st.n_blocks, 3);
	T_STREQ(st.blocks[2].affinity, "node-a");
	T_EQ(ipam_check(&st, NULL), 0);
	ipam_state_free(&st);
}

static void test_borrow_and_exhaustion_v4(void)
{
	struct ipam_state st;
	struct err e = {0};
	ipam_state_init(&st);
	/* /25 with /26 blocks: two blocks; .0 and .127 reserved (network, pool's last),
	 * .5 explicitly: 125 addresses */
	T_EQ(pool(&st, "p4", "198.18.1.0/25", 26, "198.18.1.5", NULL), 0);
	T_STREQ(alloc(&st, "b-0", "node-b", IPAM_V4, NULL), "198.18.1.1");
	char h[32], seen[128] = {0};
	int rc = 0, got = 1;
	seen[1] = 1;
	for (int i = 0; i < 200; i++) {
		snprintf(h, sizeof(h), "a-%d", i);
		const char *s = alloc(&st, h, "node-a", IPAM_V4, &rc);
		if (rc)
			break;
		struct ip_addr a = A(s);
		T_CHECK(a.b[0] == 198 && a.b[1] == 18 && a.b[2] == 1 && a.b[3] < 128);
		T_CHECK(!seen[a.b[3]]);
		seen[a.b[3]] = 1;
		got++;
		if (i == 62) /* node-a filled 198.18.1.64/26 minus .127: 63 addresses; next
			      * one is borrowed from node-b's block */
			T_STREQ(s, "198.18.1.126");
		if (i == 63)
			T_STREQ(s, "198.18.1.2");
	}
	T_EQ(rc, -ENOSPC);
	T_EQ(got, 125);
	T_CHECK(!seen[0] && !seen[127] && !seen[5]);
	T_EQ(st.n_blocks, 2);
	T_EQ(ipam_alloc(&st, "one-more", "node-c", IPAM_V4, NULL, (struct ip_addr[4]){0},
			(unsigned[1]){0}, &e),
	     -ENOSPC);
	T_CHECK(strstr(e.msg, "exhausted") != NULL);
	T_EQ(ipam_check(&st, NULL), 0);
	/* a released address is handed out again */
	T_EQ(ipam_release_handle(&st, "a-10", false, NULL), 0);
	T_CHECK(alloc(&st, "again", "node-c", IPAM_V4, &rc)[0] != 0);
	T_EQ(rc, 0);
	ipam_state_free(&st);
}

static void test_v6_and_dual_stack(void)
{
	struct ipam_state st;
	struct ip_addr out[4];
	unsigned n = 0;
	ipam_state_init(&st);
	T_EQ(pool(&st, "p4", "198.18.2.0/26", 0, NULL, NULL), 0);
	T_EQ(pool(&st, "p6", "2001:db8:0:1::/122", 0, NULL, NULL), 0);
	T_EQ(ipam_alloc(&st, "vm-1", "node-a", IPAM_V4 | IPAM_V6, NULL, out, &n, NULL), 0);
	T_EQ(n, 2);
	T_STREQ(S(&out[0]), "198.18.2.1");
	T_STREQ(S(&out[1]), "2001:db8:0:1::1"); /* ::0 is Subnet-Router anycast */
	/* v6 keeps its last address: 63 usable in a /122 */
	char h[32];
	int rc = 0, count = 1;
	for (int i = 0; i < 100; i++) {
		snprintf(h, sizeof(h), "v6-%d", i);
		alloc(&st, h, "node-a", IPAM_V6, &rc);
		if (rc)
			break;
		count++;
	}
	T_EQ(rc, -ENOSPC);
	T_EQ(count, 63);
	struct ip_addr last = A("2001:db8:0:1::3f");
	T_CHECK(ipam_lookup_ip(&st, &last) != NULL);
	/* all or nothing: v4 free but v6 exhausted, the v4 address is not kept */
	unsigned before = st.blocks[0].used;
	T_EQ(ipam_alloc(&st, "vm-2", "node-a", IPAM_V4 | IPAM_V6, NULL, out, &n, NULL), -ENOSPC);
	T_EQ(st.blocks[0].used, before);
	T_CHECK(ipam_handle_find(&st, "vm-2") == NULL);
	/* no pool of a family */
	struct ipam_state s2;
	ipam_state_init(&s2);
	T_EQ(pool(&s2, "p4", "198.18.2.0/26", 0, NULL, NULL), 0);
	T_EQ(ipam_alloc(&s2, "x", "n", IPAM_V6, NULL, out, &n, NULL), -ENOENT);
	ipam_state_free(&s2);
	T_EQ(ipam_check(&st, NULL), 0);
	ipam_state_free(&st);
}

static void test_idempotent_per_handle(void)
{
	struct ipam_state st;
	struct ip_addr o1[4], o2[4];
	unsigned n1, n2;
	struct ipam_attrs at = {0};
	strcpy(at.pod, "virt-launcher-vm1-abcde");
	strcpy(at.vmi_name, "vm1");
	ipam_state_init(&st);
	T_EQ(pool(&st, "p4", "198.18.3.0/24", 0, NULL, NULL), 0);
	T_EQ(pool(&st, "p6", "2001:db8:3::/120", 0, NULL, NULL), 0);
	T_EQ(ipam_alloc(&st, "net1.vmi.default.vm1", "node-a", IPAM_V4 | IPAM_V6, &at, o1, &n1,
			NULL),
	     0);
	/* restart on another node: same addresses, nothing new allocated */
	T_EQ(ipam_alloc(&st, "net1.vmi.default.vm1", "node-b", IPAM_V4 | IPAM_V6, &at, o2, &n2,
			NULL),
	     0);
	T_EQ(n1, 2);
	T_EQ(n2, 2);
	T_CHECK(ip_eq(&o1[0], &o2[0]) && ip_eq(&o1[1], &o2[1]));
	T_EQ(st.n_blocks, 2);
	T_EQ(st.blocks[0].used + st.blocks[1].used, 2);
	const struct ipam_attrs *a = ipam_lookup_ip(&st, &o1[0]);
	T_CHECK(a != NULL);
	if (a) {
		T_STREQ(a->handle, "net1.vmi.default.vm1");
		T_STREQ(a->pod, "virt-launcher-vm1-abcde");
		T_STREQ(a->node, "node-a");
	}
	const struct ipam_handle *h = ipam_handle_find(&st, "net1.vmi.default.vm1");
	T_CHECK(h && h->n == 2);
	/* bad input */
	T_EQ(ipam_alloc(&st, "Bad_Handle", "node-a", IPAM_V4, NULL, o1, &n1, NULL), -EINVAL);
	T_EQ(ipam_alloc(&st, "ok", "", IPAM_V4, NULL, o1, &n1, NULL), -EINVAL);
	T_EQ(ipam_alloc(&st, "ok", "n", 0, NULL, o1, &n1, NULL), -EINVAL);
	ipam_state_free(&st);
}

static struct ipam_owner owner(const char *name, const char *uid, const char *node)
{
	struct ipam_owner o = {0};
	strcpy(o.ns, "default");
	strcpy(o.name, name);
	strcpy(o.uid, uid);
	strcpy(o.node, node);
	return o;
}

static void test_owners_preconditions(void)
{
	struct ipam_state st;
	struct err e = {0};
	struct ip_addr out[4];
	unsigned n;
	ipam_state_init(&st);
	T_EQ(pool(&st, "p4", "198.18.4.0/24", 0, NULL, NULL), 0);
	T_EQ(pool(&st, "p6", "2001:db8:4::/120", 0, NULL, NULL), 0);
	const char *h = "net1.vmi.default.vm1";
	T_EQ(ipam_alloc(&st, h, "node-a", IPAM_V4 | IPAM_V6, NULL, out, &n, NULL), 0);
	struct ipam_owner src = owner("virt-launcher-vm1-aaaaa", "uid-src", "node-a");
	struct ipam_owner dst = owner("virt-launcher-vm1-bbbbb", "uid-dst", "node-b");
	struct ipam_owner other = owner("virt-launcher-vm1-ccccc", "uid-other", "node-c");
	T_EQ(ipam_owner_set(&st, h, IPAM_ACTIVE, &src, NULL, NULL), 0);
	/* a second pod cannot take a held slot without naming the holder */
	T_EQ(ipam_owner_set(&st, h, IPAM_ACTIVE, &other, NULL, &e), -EBUSY);
	T_CHECK(strstr(e.msg, "uid-src") != NULL);
	T_EQ(ipam_owner_set(&st, h, IPAM_ACTIVE, &other, "uid-wrong", NULL), -EBUSY);
	/* same pod again (retried ADD) with the right precondition */
	T_EQ(ipam_owner_set(&st, h, IPAM_ACTIVE, &src, "uid-src", NULL), 0);
	/* migration target */
	T_EQ(ipam_owner_set(&st, h, IPAM_ALTERNATE, &dst, NULL, NULL), 0);
	for (unsigned i = 0; i < n; i++) {
		const struct ipam_attrs *a = ipam_lookup_ip(&st, &out[i]);
		T_STREQ(a->active.uid, "uid-src");
		T_STREQ(a->alternate.uid, "uid-dst");
		T_STREQ(a->alternate.node, "node-b");
	}
	/* release refused while an owner is set */
	T_EQ(ipam_release_handle(&st, h, false, &e), -EBUSY);
	T_CHECK(strstr(e.msg, "still set") != NULL);
	/* DEL of another pod does not clear the slot */
	T_EQ(ipam_owner_clear(&st, h, IPAM_ACTIVE, "uid-other", &e), -EBUSY);
	T_EQ(ipam_owner_clear(&st, h, IPAM_ACTIVE, "uid-src", NULL), 0);
	T_EQ(ipam_owner_clear(&st, h, IPAM_ACTIVE, "uid-src", NULL), 0); /* idempotent */
	T_EQ(ipam_release_handle(&st, h, false, NULL), -EBUSY);		 /* alternate set */
	T_EQ(ipam_owner_clear(&st, h, IPAM_ALTERNATE, "uid-dst", NULL), 0);
	T_EQ(ipam_owner_set(&st, "nope", IPAM_ACTIVE, &src, NULL, NULL), -ENOENT);
	T_EQ(ipam_owner_clear(&st, "nope", IPAM_ACTIVE, "x", NULL), -ENOENT);
	struct ipam_owner empty = {0};
	T_EQ(ipam_owner_set(&st, h, IPAM_ACTIVE, &empty, NULL, NULL), -EINVAL);
	struct ipam_owner no_ns = owner("p", "uid-x", "node-a");
	no_ns.ns[0] = 0;
	T_EQ(ipam_owner_set(&st, h, IPAM_ACTIVE, &no_ns, NULL, NULL), -EINVAL);
	T_EQ(ipam_release_handle(&st, h, false, NULL), 0);
	T_CHECK(ipam_handle_find(&st, h) == NULL);
	T_CHECK(ipam_lookup_ip(&st, &out[0]) == NULL);
	T_EQ(ipam_release_handle(&st, h, false, NULL), -ENOENT);
	/* force releases despite owners */
	T_EQ(ipam_alloc(&st, "h2", "node-a", IPAM_V4, NULL, out, &n, NULL), 0);
	T_EQ(ipam_owner_set(&st, "h2", IPAM_ACTIVE, &src, NULL, NULL), 0);
	T_EQ(ipam_release_handle(&st, "h2", true, NULL), 0);
	T_EQ(ipam_check(&st, NULL), 0);
	ipam_state_free(&st);
}

static void test_reserve_and_release_ip(void)
{
	struct ipam_state st;
	struct err e = {0};
	struct ip_addr a;
	ipam_state_init(&st);
	T_EQ(pool(&st, "p4", "198.18.5.0/24", 0, "198.18.5.200", NULL), 0);
	a = A("198.18.5.77");
	T_EQ(ipam_reserve_ip(&st, "import-vm1", &a, NULL, NULL), 0);
	T_EQ(ipam_reserve_ip(&st, "import-vm1", &a, NULL, NULL), 0); /* same holder: fine */
	T_EQ(ipam_reserve_ip(&st, "someone-else", &a, NULL, &e), -EEXIST);
	T_CHECK(strstr(e.msg, "import-vm1") != NULL);
	a = A("198.19.0.1");
	T_EQ(ipam_reserve_ip(&st, "x", &a, NULL, &e), -EADDRNOTAVAIL);
	T_CHECK(strstr(e.msg, "not inside any pool") != NULL);
	const char *res[] = {"198.18.5.0", "198.18.5.255", "198.18.5.200"};
	for (int i = 0; i < 3; i++) {
		a = A(res[i]);
		T_EQ(ipam_reserve_ip(&st, "x", &a, NULL, &e), -EADDRNOTAVAIL);
	}
	/* the reserved block has no affinity; a node still claims its own */
	T_EQ(st.n_blocks, 1);
	T_STREQ(st.blocks[0].affinity, "");
	T_STREQ(alloc(&st, "pod-1", "node-a", IPAM_V4, NULL), "198.18.5.1");
	T_EQ(st.n_blocks, 2);
	a = A("198.18.5.77");
	T_EQ(ipam_release_ip(&st, &a, NULL), 0);
	T_CHECK(ipam_handle_find(&st, "import-vm1") == NULL);
	T_EQ(ipam_release_ip(&st, &a, &e), -ENOENT);
	T_EQ(ipam_check(&st, NULL), 0);
	ipam_state_free(&st);
}

/* The pools people use for IPv6: a /48 (2^74 blocks of /122) and a /64. Blocks are
 * claimed one at a time from the start of the pool, on each node; nothing enumerates. */
static void test_v6_large_pools(void)
{
	struct ipam_state st;
	ipam_state_init(&st);
	T_EQ(pool(&st, "p48", "2001:db8:4b76::/48", 0, NULL, NULL), 0);
	T_EQ(pool(&st, "p64", "2001:db8:4b77::/64", 120, NULL, NULL), 0);
	T_EQ(pool(&st, "p32", "2001:db8::/32", 0, NULL, NULL), -EEXIST); /* overlaps both */
	int rc = 0;
	T_STREQ(alloc(&st, "a1", "node-a", IPAM_V6, &rc), "2001:db8:4b76::1");
	T_STREQ(alloc(&st, "b1", "node-b", IPAM_V6, &rc), "2001:db8:4b76::40"); /* only the pool's ::0 is kept */
	T_STREQ(alloc(&st, "a2", "node-a", IPAM_V6, &rc), "2001:db8:4b76::2");
	char h[32];
	for (int i = 0; i < 70 && rc == 0; i++) { /* fill node-a's block, claim the next */
		snprintf(h, sizeof(h), "fill-%d", i);
		alloc(&st, h, "node-a", IPAM_V6, &rc);
	}
	T_EQ(rc, 0);
	T_EQ(st.n_blocks, 3);
	T_STREQ(S(&st.blocks[2].cidr.a), "2001:db8:4b76::80");
	T_EQ(st.blocks[2].cidr.prefix, 122);
	T_EQ(ipam_check(&st, NULL), 0);
	ipam_state_free(&st);
}

static void test_pool_config_errors(void)
{
	struct ipam_state st;
	struct ipam_cidr c;
	ipam_state_init(&st);
	T_EQ(ipam_cidr_parse(&c, "198.18.0.1/24", NULL), -EINVAL); /* host bits */
	T_EQ(ipam_cidr_parse(&c, "198.18.0.0/33", NULL), -EINVAL);
	T_EQ(ipam_cidr_parse(&c, "198.18.0.0/024", NULL), -EINVAL);
	T_EQ(ipam_cidr_parse(&c, "198.18.0.0", NULL), -EINVAL);
	T_EQ(ipam_cidr_parse(&c, "2001:db8::/32", NULL), 0);
	T_EQ(pool(&st, "p", "198.18.0.0/24", 20, NULL, NULL), -EINVAL); /* block > pool */
	T_EQ(pool(&st, "p", "198.18.0.0/16", 21, NULL, NULL), -EINVAL); /* 2048 per block */
	T_EQ(pool(&st, "p", "198.18.0.0/24", 0, "198.18.1.1", NULL), -EINVAL);
	T_EQ(pool(&st, "P", "198.18.0.0/24", 0, NULL, NULL), -EINVAL);
	T_EQ(pool(&st, "p", "198.18.0.0/24", 0, NULL, NULL), 0);
	T_EQ(pool(&st, "q", "198.18.0.128/25", 0, NULL, NULL), -EEXIST); /* overlap */
	T_EQ(pool(&st, "p", "198.18.9.0/24", 0, NULL, NULL), -EEXIST);
	ipam_state_free(&st);
}

static void test_check_finds_inconsistency(void)
{
	struct ipam_state st;
	struct err e = {0};
	ipam_state_init(&st);
	T_EQ(pool(&st, "p4", "198.18.6.0/24", 0, NULL, NULL), 0);
	alloc(&st, "h1", "node-a", IPAM_V4, NULL);
	alloc(&st, "h2", "node-a", IPAM_V4, NULL);
	T_EQ(ipam_check(&st, NULL), 0);
	st.blocks[0].used++;
	T_EQ(ipam_check(&st, &e), -EUCLEAN);
	T_CHECK(strstr(e.msg, "count says 3 used, table holds 2") != NULL);
	st.blocks[0].used--;
	st.handles[0].ip[0] = A("198.18.6.50");
	T_EQ(ipam_check(&st, &e), -EUCLEAN);
	ipam_state_free(&st);
}

/* --- names ----------------------------------------------------------------------------- */

static void test_handle_names(void)
{
	char out[IPAM_NAME_MAX + 1];
	T_EQ(ipam_handle_pod(out, "net1", "0a1b2c3d4e5f", NULL), 0);
	T_STREQ(out, "net1.0a1b2c3d4e5f");
	T_EQ(ipam_handle_vm(out, "net1", "default", "vm1", NULL), 0);
	T_STREQ(out, "net1.vmi.default.vm1");
	T_CHECK(ipam_name_valid(out));
	T_EQ(ipam_handle_vm(out, "net1", "", "vm1", NULL), -EINVAL);
	const char *bad[] = {"", "-a", "a-", ".a", "a..b", "a.-b", "a-.b", "A", "a_b", "a/b"};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		T_CHECK(!ipam_name_valid(bad[i]));
	const char *good[] = {"a", "0", "a-b", "a--b", "a.b", "net1.vmi.ns.vm"};
	for (unsigned i = 0; i < sizeof(good) / sizeof(*good); i++)
		T_CHECK(ipam_name_valid(good[i]));
	/* inputs that are not names map to valid names with a hash suffix, distinctly */
	char o1[IPAM_NAME_MAX + 1], o2[IPAM_NAME_MAX + 1];
	ipam_name_map("Net_1.vmi.NS.VM", o1);
	ipam_name_map("net-1.vmi.ns.vm", o2);
	T_CHECK(ipam_name_valid(o1));
	T_STREQ(o2, "net-1.vmi.ns.vm");
	T_CHECK(strcmp(o1, o2) != 0);
	T_EQ(strncmp(o1, "net-1.vmi.ns.vm-", 16), 0);
	const char *weird[] = {"___", "..", "-.-", "\xff\xfe", "a.-b", "x."};
	for (unsigned i = 0; i < sizeof(weird) / sizeof(*weird); i++) {
		ipam_name_map(weird[i], o1);
		T_CHECK(ipam_name_valid(o1));
	}
}

static void test_handle_hash_suffix(void)
{
	/* a VM whose name makes the handle longer than 253 */
	char vm[241], full[400], out[IPAM_NAME_MAX + 1];
	memset(vm, 'v', sizeof(vm) - 1);
	vm[sizeof(vm) - 1] = 0;
	snprintf(full, sizeof(full), "net1.vmi.default.%s", vm);
	T_EQ(ipam_handle_vm(out, "net1", "default", vm, NULL), 0);
	T_EQ(strlen(out), IPAM_NAME_MAX);
	T_CHECK(ipam_name_valid(out));
	/* prefix kept, suffix = first 10 hex of SHA-256 of the full id (sha256sum) */
	T_EQ(strncmp(out, full, IPAM_NAME_MAX - 11), 0);
	T_EQ(out[IPAM_NAME_MAX - 11], '-');
	int st;
	char *sum = t_sh(&st, "printf %%s '%s' | sha256sum", full);
	T_EQ(st, 0);
	T_CHECK(sum && strncmp(out + IPAM_NAME_MAX - 10, sum, 10) == 0);
	free(sum);
	/* two long names differing at the end differ */
	char out2[IPAM_NAME_MAX + 1];
	vm[sizeof(vm) - 2] = 'w';
	T_EQ(ipam_handle_vm(out2, "net1", "default", vm, NULL), 0);
	T_CHECK(strcmp(out, out2) != 0);
	/* exactly 253 characters passes unchanged */
	char vm2[IPAM_NAME_MAX + 1];
	memset(vm2, 'x', IPAM_NAME_MAX - 17);
	vm2[IPAM_NAME_MAX - 17] = 0;
	T_EQ(ipam_handle_vm(out, "net1", "default", vm2, NULL), 0);
	T_EQ(strlen(out), IPAM_NAME_MAX);
	T_EQ(strncmp(out, "net1.vmi.default.xxx", 20), 0);
	T_EQ(out[IPAM_NAME_MAX - 1], 'x');
}

/* --- records ---------------------------------------------------------------------------- */

static char *rec(const struct ipam_state *st, enum ipam_kind k, const char *name)
{
	struct json_w w;
	json_w_init_grow(&w, 1 << 20);
	if (ipam_rec_write(st, k, name, &w, NULL)) {
		json_w_free(&w);
		return NULL;
	}
	return json_w_take(&w, NULL);
}

static void build(struct ipam_state *st)
{
	struct ipam_attrs at = {0};
	struct ip_addr out[4];
	unsigned n;
	ipam_state_init(st);
	pool(st, "p4", "198.18.7.0/24", 0, "198.18.7.9", NULL);
	pool(st, "p6", "2001:db8:7::/120", 124, NULL, NULL);
	strcpy(at.pod, "virt-launcher-vm1-x");
	strcpy(at.ns, "default");
	strcpy(at.ifname, "eth0");
	strcpy(at.container_id, "c0ffee");
	strcpy(at.vmi_name, "vm1");
	strcpy(at.vmi_uid, "11111111-2222-3333-4444-555555555555");
	strcpy(at.vm_uid, "vm-uid");
	strcpy(at.vmim_uid, "vmim-uid \"quoted\" \\ \xc3\xa9");
	ipam_alloc(st, "net1.vmi.default.vm1", "node-a", IPAM_V4 | IPAM_V6, &at, out, &n, NULL);
	struct ipam_owner o = owner("virt-launcher-vm1-x", "uid-1", "node-a");
	ipam_owner_set(st, "net1.vmi.default.vm1", IPAM_ACTIVE, &o, NULL, NULL);
	ipam_alloc(st, "net1.c0ffee", "node-b", IPAM_V4, NULL, out, &n, NULL);
}

static int load_all(struct ipam_state *dst, const struct ipam_state *src)
{
	char name[64];
	int r = 0;
	for (unsigned i = 0; i < src->n_pools && !r; i++) {
		char *j = rec(src, IPAM_POOL, src->pools[i].name);
		r = ipam_state_load(dst, IPAM_POOL, src->pools[i].name, "1", j, strlen(j), NULL);
		free(j);
	}
	for (unsigned i = 0; i < src->n_blocks && !r; i++) {
		ipam_block_name(&src->blocks[i].cidr, name, sizeof(name));
		char *j = rec(src, IPAM_BLOCK, name);
		r = ipam_state_load(dst, IPAM_BLOCK, name, "1", j, strlen(j), NULL);
		free(j);
	}
	for (unsigned i = 0; i < src->n_handles && !r; i++) {
		char *j = rec(src, IPAM_HANDLE, src->handles[i].id);
		r = ipam_state_load(dst, IPAM_HANDLE, src->handles[i].id, "1", j, strlen(j), NULL);
		free(j);
	}
	return r;
}

static void test_json_round_trip(void)
{
	struct ipam_state a, b;
	build(&a);
	ipam_state_init(&b);
	T_EQ(load_all(&b, &a), 0);
	T_EQ(ipam_check(&b, NULL), 0);
	T_EQ(b.n_pools, 2);
	T_EQ(b.n_blocks, 3);
	T_EQ(b.n_handles, 2);
	char name[64];
	for (unsigned i = 0; i < a.n_blocks; i++) {
		ipam_block_name(&a.blocks[i].cidr, name, sizeof(name));
		char *x = rec(&a, IPAM_BLOCK, name), *y = rec(&b, IPAM_BLOCK, name);
		T_CHECK(x && y && !strcmp(x, y));
		free(x);
		free(y);
	}
	char *p6 = rec(&b, IPAM_POOL, "p6");
	T_STREQ(p6, "{\"cidr\":\"2001:db8:7::/120\",\"blockSize\":124,\"reserved\":[]}");
	free(p6);
	char *h = rec(&b, IPAM_HANDLE, "net1.vmi.default.vm1");
	T_STREQ(h, "{\"ips\":[\"198.18.7.1\",\"2001:db8:7::1\"]}");
	free(h);
	struct ip_addr v4 = A("198.18.7.1");
	const struct ipam_attrs *at = ipam_lookup_ip(&b, &v4);
	T_CHECK(at != NULL);
	if (at) {
		T_STREQ(at->vmim_uid, "vmim-uid \"quoted\" \\ \xc3\xa9");
		T_STREQ(at->active.uid, "uid-1");
		T_STREQ(at->alternate.uid, "");
		T_STREQ(at->ifname, "eth0");
	}
	/* nothing changed since load: empty diff */
	struct ipam_change *c;
	unsigned n;
	T_EQ(ipam_state_diff(&b, &c, &n, NULL), 0);
	T_EQ(n, 0);
	ipam_changes_free(c, n);
	/* one allocation: the block and the new handle change, with versions */
	alloc(&b, "net1.new", "node-a", IPAM_V4, NULL);
	T_EQ(ipam_release_handle(&b, "net1.c0ffee", true, NULL), 0);
	T_EQ(ipam_state_diff(&b, &c, &n, NULL), 0);
	T_EQ(n, 4); /* node-a's v4 block, node-b's v4 block, handle create, handle delete */
	int creates = 0, deletes = 0, updates = 0;
	for (unsigned i = 0; i < n; i++) {
		if (!c[i].json)
			deletes++, T_STREQ(c[i].name, "net1.c0ffee");
		else if (!c[i].version[0])
			creates++, T_STREQ(c[i].name, "net1.new");
		else
			updates++, T_EQ(c[i].kind, IPAM_BLOCK);
	}
	T_EQ(creates, 1);
	T_EQ(deletes, 1);
	T_EQ(updates, 2);
	ipam_changes_free(c, n);
	ipam_state_free(&a);
	ipam_state_free(&b);
}

static void test_json_strict(void)
{
	struct {
		enum ipam_kind k;
		const char *name, *json, *why;
	} bad[] = {
	    {IPAM_POOL, "p", "{\"cidr\":\"198.18.0.0/24\",\"x\":1}", "unknown field \"x\""},
	    {IPAM_POOL, "p", "{\"cidr\":\"198.18.0.0/24\",\"cidr\":\"198.18.0.0/24\"}",
	     "given twice"},
	    {IPAM_POOL, "p", "{\"blockSize\":26}", "\"cidr\" missing"},
	    {IPAM_POOL, "p", "{\"cidr\":\"198.18.0.1/24\"}", "host bits"},
	    {IPAM_POOL, "p", "{\"cidr\":\"198.18.0.0/24\",\"blockSize\":\"26\"}", "blockSize"},
	    {IPAM_POOL, "p", "{\"cidr\":\"198.18.0.0/24\",\"reserved\":[1]}", "address"},
	    {IPAM_POOL, "p", "[]", "not a JSON object"},
	    {IPAM_POOL, "p", "{\"cidr\":", "pool p"},
	    {IPAM_POOL, "Bad", "{\"cidr\":\"198.18.0.0/24\"}", "valid object name"},
	    {IPAM_BLOCK, "v4-198-18-0-0-26",
	     "{\"cidr\":\"198.18.0.0/26\",\"affinity\":null,\"used\":1,\"allocations\":[{\"ip\":"
	     "\"198.18.0.99\",\"handle\":\"h\"}]}",
	     "outside the block"},
	    {IPAM_BLOCK, "v4-198-18-0-0-26",
	     "{\"cidr\":\"198.18.0.0/26\",\"affinity\":null,\"used\":2,\"allocations\":[{\"ip\":"
	     "\"198.18.0.9\",\"handle\":\"h\"},{\"ip\":\"198.18.0.9\",\"handle\":\"h\"}]}",
	     "listed twice"},
	    {IPAM_BLOCK, "v4-198-18-0-64-26",
	     "{\"cidr\":\"198.18.0.0/26\",\"used\":0,\"allocations\":[]}", "does not match"},
	    {IPAM_BLOCK, "v4-198-18-0-0-26",
	     "{\"cidr\":\"198.18.0.0/26\",\"used\":0,\"allocations\":[{\"ip\":\"198.18.0.1\"}]}",
	     "\"handle\" missing"},
	    {IPAM_BLOCK, "v4-198-18-0-0-26",
	     "{\"cidr\":\"198.18.0.0/26\",\"used\":0,\"allocations\":[{\"ip\":\"198.18.0.1\","
	     "\"handle\":\"h\",\"activeOwner\":{\"name\":\"p\"}}]}",
	     "\"namespace\" missing"},
	    {IPAM_BLOCK, "v4-198-18-0-0-26",
	     "{\"cidr\":\"198.18.0.0/26\",\"used\":-1,\"allocations\":[]}", "used"},
	    {IPAM_BLOCK, "v4-198-18-0-0-20",
	     "{\"cidr\":\"198.18.0.0/20\",\"used\":0,\"allocations\":[]}", "larger"},
	    {IPAM_HANDLE, "h", "{\"ips\":[]}", "no address"},
	    {IPAM_HANDLE, "h", "{\"ips\":[\"198.18.0.1\",\"x\"]}", "not an IPv4"},
	    {IPAM_HANDLE, "h", "{\"ips\":\"198.18.0.1\"}", "not an array"},
	    {IPAM_CONFIG, "default", "{\"kubeVirtVMAddressPersistence\":\"enabled\"}",
	     "not \"Enabled\" or \"Disabled\""},
	    {IPAM_CONFIG, "default", "{\"kubeVirtVMAddressPersistence\":true}", "not \"Enabled\""},
	    {IPAM_CONFIG, "default", "{\"persistence\":\"Enabled\"}", "unknown field"},
	    {IPAM_CONFIG, "other", "{}", "singleton named \"default\""},
	    {IPAM_CONFIG, "default", "[]", "not a JSON object"},
	};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		struct ipam_state st;
		struct err e = {0};
		ipam_state_init(&st);
		int r = ipam_state_load(&st, bad[i].k, bad[i].name, "", bad[i].json,
					strlen(bad[i].json), &e);
		if (!T_CHECK(r < 0) || !T_CHECK(strstr(e.msg, bad[i].why) != NULL))
			t_note("case %u: %s", i, e.msg);
		ipam_state_free(&st);
	}
	/* the same record twice */
	struct ipam_state st;
	ipam_state_init(&st);
	const char *h = "{\"ips\":[\"198.18.0.1\"]}";
	T_EQ(ipam_state_load(&st, IPAM_HANDLE, "h", "", h, strlen(h), NULL), 0);
	T_EQ(ipam_state_load(&st, IPAM_HANDLE, "h", "", h, strlen(h), NULL), -EEXIST);
	ipam_state_free(&st);
}

/* The block slot holding allocated address text a, or NULL when it is free (test
 * access to the block). */
static struct ipam_attrs **slot_of(struct ipam_state *st, const char *txt)
{
	struct ip_addr a;
	ipam_addr_parse(&a, txt, NULL);
	const struct ipam_attrs *at = ipam_lookup_ip(st, &a);
	for (unsigned b = 0; at && b < st->n_blocks; b++)
		for (unsigned o = 0; o < st->blocks[b].size; o++)
			if (st->blocks[b].slot[o] == at)
				return &st->blocks[b].slot[o];
	return NULL;
}

/* Torn commits (kubernetes datastore: blocks and handles written separately) are
 * repaired by ipam_handle_mend(), and a torn handle never frees another's address. */
static void test_handle_mend(void)
{
	struct ipam_state st;
	struct err e = {0};
	ipam_state_init(&st);
	T_EQ(pool(&st, "p4", "198.18.4.0/24", 0, NULL, NULL), 0);
	T_EQ(pool(&st, "p6", "2001:db8:4::/120", 0, NULL, NULL), 0);
	/* 1. the block freed the v4, the handle still lists it (a release that died) */
	T_STREQ(alloc(&st, "h1", "node-a", IPAM_V4 | IPAM_V6, NULL), "198.18.4.1");
	struct ipam_attrs **sl = slot_of(&st, "198.18.4.1");
	T_CHECK(sl != NULL);
	if (!sl)
		return;
	free(*sl);
	*sl = NULL;
	st.blocks[0].used--;
	T_CHECK(ipam_check(&st, NULL) < 0);
	/* ... and meanwhile another handle got that address: releasing h1 must not free it */
	T_STREQ(alloc(&st, "h2", "node-a", IPAM_V4, NULL), "198.18.4.1");
	T_EQ(ipam_release_handle(&st, "h1", true, &e), 0);
	T_CHECK(slot_of(&st, "198.18.4.1") != NULL);
	T_STREQ((*slot_of(&st, "198.18.4.1"))->handle, "h2");
	T_EQ(ipam_check(&st, &e), 0);
	/* again, mended instead of released: h3 drops the address h2 holds */
	T_STREQ(alloc(&st, "h3", "node-a", IPAM_V4 | IPAM_V6, NULL), "198.18.4.2");
	sl = slot_of(&st, "198.18.4.2");
	free(*sl);
	*sl = NULL;
	st.blocks[0].used--;
	T_STREQ(alloc(&st, "h2b", "node-a", IPAM_V4, NULL), "198.18.4.2");
	T_EQ(ipam_handle_mend(&st, "h3", &e), 1);
	const struct ipam_handle *h = ipam_handle_find(&st, "h3");
	T_CHECK(h && h->n == 1 && h->ip[0].family == AF_INET6);
	T_EQ(ipam_check(&st, &e), 0);
	T_EQ(ipam_handle_mend(&st, "h3", &e), 0);
	/* 2. an allocation whose handle was never written: adopted */
	T_STREQ(alloc(&st, "h4", "node-a", IPAM_V4, NULL), "198.18.4.3");
	for (unsigned i = 0; i < st.n_handles; i++)
		if (!strcmp(st.handles[i].id, "h4"))
			st.handles[i] = st.handles[--st.n_handles];
	T_CHECK(ipam_handle_find(&st, "h4") == NULL);
	T_EQ(ipam_handle_mend(&st, "h4", &e), 1);
	h = ipam_handle_find(&st, "h4");
	T_CHECK(h && h->n == 1 && !strcmp(S(&h->ip[0]), "198.18.4.3"));
	T_EQ(ipam_check(&st, &e), 0);
	/* 3. a second v4 naming h4 (a failed undo's stray): released */
	T_STREQ(alloc(&st, "tmp", "node-a", IPAM_V4, NULL), "198.18.4.4");
	snprintf((*slot_of(&st, "198.18.4.4"))->handle, IPAM_NAME_MAX + 1, "h4");
	for (unsigned i = 0; i < st.n_handles; i++)
		if (!strcmp(st.handles[i].id, "tmp"))
			st.handles[i] = st.handles[--st.n_handles];
	unsigned used = st.blocks[0].used;
	T_EQ(ipam_handle_mend(&st, "h4", &e), 1);
	T_CHECK(slot_of(&st, "198.18.4.4") == NULL);
	T_EQ(st.blocks[0].used, used - 1);
	T_EQ(ipam_check(&st, &e), 0);
	/* 4. owner slots that differ between v4 and v6 (written to one block only) */
	struct ip_addr out[4];
	unsigned n;
	T_EQ(ipam_alloc(&st, "h5", "node-a", IPAM_V4 | IPAM_V6, NULL, out, &n, NULL), 0);
	struct ipam_owner a = owner("pod-a", "uid-a", "node-a");
	struct ipam_owner b = owner("pod-b", "uid-b", "node-b");
	T_EQ(ipam_owner_set(&st, "h5", IPAM_ACTIVE, &a, NULL, NULL), 0);
	((struct ipam_attrs *)ipam_lookup_ip(&st, &out[1]))->active = b;
	T_EQ(ipam_owner_set(&st, "h5", IPAM_ACTIVE, &b, "uid-a", &e), -EBUSY);
	T_EQ(ipam_handle_mend(&st, "h5", &e), 1);
	T_STREQ(ipam_lookup_ip(&st, &out[1])->active.uid, "uid-a");
	T_EQ(ipam_owner_set(&st, "h5", IPAM_ACTIVE, &b, "uid-a", &e), 0);
	T_EQ(ipam_handle_mend(&st, "h5", &e), 0);
	T_EQ(ipam_handle_mend(&st, "nothing", &e), 0);
	T_EQ(ipam_check(&st, &e), 0);
	/* 5. h3 was left with its v6 only: allocating v4+v6 keeps the v6, adds a v4 */
	struct ip_addr v6 = ipam_handle_find(&st, "h3")->ip[0];
	T_EQ(ipam_alloc(&st, "h3", "node-a", IPAM_V4 | IPAM_V6, NULL, out, &n, &e), 0);
	T_EQ(n, 2);
	T_CHECK(ip_eq(&out[0], &v6) && out[1].family == AF_INET);
	T_EQ(ipam_alloc(&st, "h3", "node-a", IPAM_V4 | IPAM_V6, NULL, out, &n, &e), 0);
	T_EQ(n, 2); /* and again: nothing new */
	T_EQ(ipam_check(&st, &e), 0);
	ipam_state_free(&st);
}

/* The IPAMConfig singleton: defaults without a record, load (absent field = Enabled),
 * canonical write, and the diff creates, updates and deletes config/default. */
static void test_config_record(void)
{
	struct ipam_state st;
	struct ipam_config c = {0};
	struct err e = {0};
	ipam_state_init(&st);
	T_CHECK(!ipam_config_get(&st, &c));
	T_EQ(c.vm_persistence, IPAM_PERSIST_ENABLED);
	T_EQ(ipam_state_load(&st, IPAM_CONFIG, "default", "7", "{}", 2, &e), 0);
	T_CHECK(ipam_config_get(&st, &c));
	T_EQ(c.vm_persistence, IPAM_PERSIST_ENABLED);
	T_EQ(ipam_state_load(&st, IPAM_CONFIG, "default", "7", "{}", 2, &e), -EEXIST);
	/* loaded "{}" is not the canonical text: the diff rewrites it in full */
	struct ipam_change *ch;
	unsigned n;
	T_EQ(ipam_state_diff(&st, &ch, &n, &e), 0);
	T_EQ(n, 1);
	if (n == 1) {
		T_EQ(ch[0].kind, IPAM_CONFIG);
		T_STREQ(ch[0].name, "default");
		T_STREQ(ch[0].version, "7");
		T_STREQ(ch[0].json, "{\"kubeVirtVMAddressPersistence\":\"Enabled\"}");
	}
	ipam_changes_free(ch, n);
	ipam_state_free(&st);

	ipam_state_init(&st);
	const char *dis = "{\"kubeVirtVMAddressPersistence\":\"Disabled\"}";
	T_EQ(ipam_state_load(&st, IPAM_CONFIG, "default", "3", dis, strlen(dis), &e), 0);
	T_CHECK(ipam_config_get(&st, &c));
	T_EQ(c.vm_persistence, IPAM_PERSIST_DISABLED);
	T_EQ(ipam_state_diff(&st, &ch, &n, &e), 0);
	T_EQ(n, 0); /* unchanged */
	ipam_changes_free(ch, n);
	c.vm_persistence = IPAM_PERSIST_ENABLED;
	T_EQ(ipam_config_set(&st, &c, &e), 0);
	T_EQ(ipam_state_diff(&st, &ch, &n, &e), 0);
	T_EQ(n, 1);
	if (n == 1)
		T_STREQ(ch[0].json, "{\"kubeVirtVMAddressPersistence\":\"Enabled\"}");
	ipam_changes_free(ch, n);
	c.vm_persistence = (enum ipam_persist)9;
	T_EQ(ipam_config_set(&st, &c, &e), -EINVAL);
	ipam_config_clear(&st);
	T_EQ(ipam_state_diff(&st, &ch, &n, &e), 0);
	T_EQ(n, 1);
	if (n == 1) {
		T_EQ(ch[0].kind, IPAM_CONFIG);
		T_CHECK(ch[0].json == NULL); /* delete */
		T_STREQ(ch[0].version, "3");
	}
	ipam_changes_free(ch, n);
	ipam_state_free(&st);

	/* a new record is a create */
	ipam_state_init(&st);
	c.vm_persistence = IPAM_PERSIST_DISABLED;
	T_EQ(ipam_config_set(&st, &c, &e), 0);
	T_EQ(ipam_state_diff(&st, &ch, &n, &e), 0);
	T_EQ(n, 1);
	if (n == 1) {
		T_STREQ(ch[0].version, "");
		T_STREQ(ch[0].json, dis);
	}
	ipam_changes_free(ch, n);
	ipam_state_free(&st);
	T_STREQ(ipam_kind_name(IPAM_CONFIG), "config");
	enum ipam_persist p;
	T_CHECK(ipam_persist_parse("Disabled", &p) && p == IPAM_PERSIST_DISABLED);
	T_CHECK(!ipam_persist_parse("disabled", &p));
}

int main(void)
{
	T_RUN(test_affinity_and_claim);
	T_RUN(test_network_pools);
	T_RUN(test_pool_claim);
	T_RUN(test_borrow_and_exhaustion_v4);
	T_RUN(test_v6_and_dual_stack);
	T_RUN(test_v6_large_pools);
	T_RUN(test_idempotent_per_handle);
	T_RUN(test_owners_preconditions);
	T_RUN(test_reserve_and_release_ip);
	T_RUN(test_pool_config_errors);
	T_RUN(test_check_finds_inconsistency);
	T_RUN(test_handle_names);
	T_RUN(test_handle_hash_suffix);
	T_RUN(test_json_round_trip);
	T_RUN(test_json_strict);
	T_RUN(test_config_record);
	T_RUN(test_handle_mend);
	return t_done();
}
