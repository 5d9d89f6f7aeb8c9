/* Unit tests for ipam/listing: pools and blocks in address order (IPv4 first), one
 * block's usage (allocated, borrowed, reserved by its pool, capacity). */
#include "ipam/listing.h"
#include "lib/err.h"
#include "test/lib/t.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static void pool(struct ipam_state *st, const char *name, const char *cidr, unsigned block,
		 const char *reserved)
{
	struct ipam_cidr c;
	struct ip_addr r;
	T_EQ(ipam_cidr_parse(&c, cidr, NULL), 0);
	if (reserved)
		T_EQ(ipam_addr_parse(&r, reserved, NULL), 0);
	T_EQ(ipam_pool_add(st, name, &c, block, reserved ? &r : NULL, reserved ? 1 : 0, NULL), 0);
}

static void test_pools_sorted(void)
{
	struct ipam_state st;
	ipam_state_init(&st);
	pool(&st, "v6", "2001:db8::/120", 0, NULL);
	pool(&st, "b", "198.18.4.0/24", 0, NULL);
	pool(&st, "a", "198.18.1.0/24", 0, NULL);
	unsigned *idx = ipam_pools_sorted(&st);
	T_CHECK(idx != NULL);
	if (idx && st.n_pools == 3) {
		T_STREQ(st.pools[idx[0]].name, "a");
		T_STREQ(st.pools[idx[1]].name, "b");
		T_STREQ(st.pools[idx[2]].name, "v6");
	}
	free(idx);
	ipam_state_free(&st);

	/* no pools: still an array to free */
	ipam_state_init(&st);
	idx = ipam_pools_sorted(&st);
	T_CHECK(idx != NULL);
	free(idx);
	ipam_state_free(&st);
}

static struct ip_addr alloc(struct ipam_state *st, const char *handle, const char *node,
			    unsigned fam, const char *owner_node)
{
	struct ipam_attrs at;
	memset(&at, 0, sizeof(at));
	snprintf(at.node, sizeof(at.node), "%s", node);
	if (owner_node) {
		snprintf(at.active.uid, sizeof(at.active.uid), "uid-%s", handle);
		snprintf(at.active.ns, sizeof(at.active.ns), "default");
		snprintf(at.active.name, sizeof(at.active.name), "%s", handle);
		snprintf(at.active.node, sizeof(at.active.node), "%s", owner_node);
	}
	struct ip_addr out[2];
	unsigned n = 0;
	struct err e = {0};
	T_EQ(ipam_alloc(st, handle, node, fam, &at, out, &n, &e), 0);
	T_EQ(n, 1);
	return out[0];
}

static void test_blocks_sorted_and_usage(void)
{
	struct ipam_state st;
	ipam_state_init(&st);
	pool(&st, "v6", "2001:db8::/120", 122, NULL);
	pool(&st, "v4", "198.18.0.0/24", 26, "198.18.0.7");
	/* node-b claims first (lowest block), then node-a (next block); v6 before any v4 */
	alloc(&st, "h6", "node-a", IPAM_V6, NULL);
	alloc(&st, "hb", "node-b", IPAM_V4, NULL);
	alloc(&st, "ha1", "node-a", IPAM_V4, NULL);
	alloc(&st, "ha2", "node-a", IPAM_V4, "node-c"); /* its pod runs on node-c: borrowed */
	T_EQ(st.n_blocks, 3);
	const struct ipam_block **bs = ipam_blocks_sorted(&st);
	T_CHECK(bs != NULL);
	if (!bs || st.n_blocks != 3)
		goto out;
	char cs[64];
	T_STREQ(ipam_cidr_str(&bs[0]->cidr, cs, sizeof(cs)), "198.18.0.0/26");
	T_STREQ(bs[0]->affinity, "node-b");
	T_STREQ(ipam_cidr_str(&bs[1]->cidr, cs, sizeof(cs)), "198.18.0.64/26");
	T_STREQ(bs[1]->affinity, "node-a");
	T_EQ(bs[2]->cidr.a.family, AF_INET6);

	struct ipam_block_usage u;
	/* the pool's first address and 198.18.0.7 are reserved in the first block */
	ipam_block_usage(&st, bs[0], &u);
	T_EQ(u.in_use, 1);
	T_EQ(u.borrowed, 0);
	T_EQ(u.reserved, 2);
	T_EQ(u.capacity, 62);
	ipam_block_usage(&st, bs[1], &u);
	T_EQ(u.in_use, 2);
	T_EQ(u.borrowed, 1);
	T_EQ(u.reserved, 0);
	T_EQ(u.capacity, 64);
	/* v6: the pool's first address (Subnet-Router anycast) */
	ipam_block_usage(&st, bs[2], &u);
	T_EQ(u.in_use, 1);
	T_EQ(u.reserved, 1);
	T_EQ(u.capacity, 63);

	unsigned borrowed = 0;
	for (unsigned k = 0; k < bs[1]->size; k++)
		if (bs[1]->slot[k] && ipam_alloc_borrowed(bs[1], bs[1]->slot[k])) {
			borrowed++;
			T_STREQ(bs[1]->slot[k]->handle, "ha2");
		}
	T_EQ(borrowed, 1);
out:
	free(bs);
	ipam_state_free(&st);
}

static void test_borrowed_needs_affinity_and_node(void)
{
	struct ipam_block b;
	struct ipam_attrs a;
	memset(&b, 0, sizeof(b));
	memset(&a, 0, sizeof(a));
	T_CHECK(!ipam_alloc_borrowed(&b, &a)); /* no affinity, no node */
	snprintf(a.node, sizeof(a.node), "node-x");
	T_CHECK(!ipam_alloc_borrowed(&b, &a)); /* block without affinity */
	snprintf(b.affinity, sizeof(b.affinity), "node-x");
	T_CHECK(!ipam_alloc_borrowed(&b, &a)); /* same node */
	a.node[0] = 0;
	T_CHECK(!ipam_alloc_borrowed(&b, &a)); /* node unknown */
	snprintf(a.node, sizeof(a.node), "node-y");
	T_CHECK(ipam_alloc_borrowed(&b, &a));
}

int main(void)
{
	T_RUN(test_pools_sorted);
	T_RUN(test_blocks_sorted_and_usage);
	T_RUN(test_borrowed_needs_affinity_and_node);
	return t_done();
}
