/* libFuzzer target for the inventory CSV parser (ipam_inv_parse): any input gives rows
 * that are well formed (valid namespace, VM name, handle, canonical MAC) and problems
 * sorted by line; then validation and apply run against a small state with two pools,
 * and the result must pass ipam_check. */
#include "ipam/inventory.h"
#include "lib/err.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ipam_inv v;
	struct err e;
	if (ipam_inv_parse(&v, (const char *)data, size, "kvnet", &e) == 0) {
		for (unsigned i = 0; i < v.n; i++) {
			const struct ipam_inv_row *r = &v.rows[i];
			uint8_t m[6];
			if (!ipam_name_valid(r->vm) || !ipam_name_valid(r->handle) ||
			    !ipam_name_valid(r->network) || !r->ns[0] ||
			    (r->mac[0] && ipam_mac_parse(r->mac, m, NULL, NULL)))
				abort();
		}
		for (unsigned i = 1; i < v.n_errs; i++)
			if (v.errs[i - 1].line > v.errs[i].line)
				abort();
		struct ipam_state st;
		struct ipam_cidr c4, c6;
		ipam_state_init(&st);
		ipam_cidr_parse(&c4, "198.18.0.0/24", NULL);
		ipam_cidr_parse(&c6, "2001:db8::/120", NULL);
		ipam_pool_add(&st, "p4", &c4, 0, NULL, 0, NULL);
		ipam_pool_add(&st, "p6", &c6, 0, NULL, 0, NULL);
		unsigned applied;
		if (ipam_inv_validate(&v, &st, &e) == 0 &&
		    ipam_inv_apply(&st, &v, &applied, &e) == 0 && ipam_check(&st, &e) != 0)
			abort();
		ipam_state_free(&st);
	}
	ipam_inv_free(&v);
	return 0;
}
