/* ipam listing — the state in the order and with the counts a listing shows (ipamctl show,
 * pool list): pools and blocks sorted by address, one block's usage, borrowed allocations.
 * Pure: no I/O.
 */
#ifndef KVNET_IPAM_LISTING_H
#define KVNET_IPAM_LISTING_H

#include "ipam/ipam.h"

#include <stdbool.h>

/* The pools of st sorted by address, IPv4 first, a shorter prefix first on a tie: a new
 * array of st->n_pools indices into st->pools (never empty: free() it), or NULL when out
 * of memory. */
unsigned *ipam_pools_sorted(const struct ipam_state *st);

/* The blocks of st sorted by address, IPv4 first: a new array of st->n_blocks pointers
 * into st->blocks (free() it; the pointers live as long as st is unchanged), or NULL when
 * out of memory. */
const struct ipam_block **ipam_blocks_sorted(const struct ipam_state *st);

/* Usage of one block. */
struct ipam_block_usage {
	unsigned in_use;   /* allocated addresses */
	unsigned borrowed; /* allocations used on a node other than the block's affinity */
	unsigned reserved; /* free addresses the block's pool never hands out */
	unsigned capacity; /* addresses that can be allocated: size - reserved */
};

/* Usage of block b of st (its pool's reserved addresses come from st). */
void ipam_block_usage(const struct ipam_state *st, const struct ipam_block *b,
		      struct ipam_block_usage *u);

/* True when allocation a (in block b) is borrowed: b has an affinity, a is used on a
 * known node (ipam_alloc_node) and that node is another one. */
bool ipam_alloc_borrowed(const struct ipam_block *b, const struct ipam_attrs *a);

#endif
