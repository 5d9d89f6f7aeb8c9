/* ipam listing: sorted pools and blocks, block usage; see listing.h. */
#include "ipam/listing.h"

#include "ipam/report.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static int cmp_pool(const void *a, const void *b)
{
	const struct ipam_pool *x = *(const struct ipam_pool *const *)a;
	const struct ipam_pool *y = *(const struct ipam_pool *const *)b;
	if (x->cidr.a.family != y->cidr.a.family)
		return x->cidr.a.family == AF_INET ? -1 : 1;
	int c = memcmp(x->cidr.a.b, y->cidr.a.b, 16);
	return c ? c : (int)x->cidr.prefix - (int)y->cidr.prefix;
}

static int cmp_block(const void *a, const void *b)
{
	const struct ipam_block *x = *(const struct ipam_block *const *)a;
	const struct ipam_block *y = *(const struct ipam_block *const *)b;
	if (x->cidr.a.family != y->cidr.a.family)
		return x->cidr.a.family == AF_INET ? -1 : 1;
	return memcmp(x->cidr.a.b, y->cidr.a.b, 16);
}

unsigned *ipam_pools_sorted(const struct ipam_state *st)
{
	const struct ipam_pool **p = calloc(st->n_pools + 1, sizeof(*p));
	unsigned *idx = calloc(st->n_pools + 1, sizeof(*idx));
	if (!p || !idx) {
		free(p);
		free(idx);
		return NULL;
	}
	for (unsigned i = 0; i < st->n_pools; i++)
		p[i] = &st->pools[i];
	qsort(p, st->n_pools, sizeof(*p), cmp_pool);
	for (unsigned i = 0; i < st->n_pools; i++)
		idx[i] = (unsigned)(p[i] - st->pools);
	free(p);
	return idx;
}

const struct ipam_block **ipam_blocks_sorted(const struct ipam_state *st)
{
	const struct ipam_block **b = calloc(st->n_blocks + 1, sizeof(*b));
	if (!b)
		return NULL;
	for (unsigned i = 0; i < st->n_blocks; i++)
		b[i] = &st->blocks[i];
	qsort(b, st->n_blocks, sizeof(*b), cmp_block);
	return b;
}

bool ipam_alloc_borrowed(const struct ipam_block *b, const struct ipam_attrs *a)
{
	const char *node = ipam_alloc_node(a);
	return b->affinity[0] && node[0] && strcmp(node, b->affinity);
}

void ipam_block_usage(const struct ipam_state *st, const struct ipam_block *b,
		      struct ipam_block_usage *u)
{
	memset(u, 0, sizeof(*u));
	const struct ipam_pool *p = ipam_pool_of(st, &b->cidr.a);
	for (unsigned k = 0; k < b->size; k++) {
		if (b->slot[k]) {
			u->in_use++;
			u->borrowed += ipam_alloc_borrowed(b, b->slot[k]);
			continue;
		}
		struct ip_addr a = ipam_block_addr(b, k);
		u->reserved += p && ipam_pool_reserves(p, &a);
	}
	u->capacity = b->size - u->reserved;
}
