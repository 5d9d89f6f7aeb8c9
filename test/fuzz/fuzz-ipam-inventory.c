/* libFuzzer target for the inventory CSV parser (ipam_inv_parse): any input gives rows
 * that are well formed (valid namespace, VM name, handle, canonical MAC) and problems
 * sorted by line; then validation and apply run against a small state with two pools and
 * one VM reserved with a MAC, and the result must pass ipam_check; no two rows that
 * survive validation give one MAC to two VMs of one network (nor the seeded VM's); the
 * recheck after the apply finds no race, and undo takes back exactly what was applied. */
#include "ipam/inventory.h"
#include "lib/err.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Abort when two good rows (or a good row and the seeded VM) of one network share a MAC
 * but not the VM. */
static void one_mac_per_vm(const struct ipam_inv *v)
{
	for (unsigned i = 0; i < v->n; i++) {
		const struct ipam_inv_row *a = &v->rows[i];
		if (a->bad || !a->mac[0])
			continue;
		if (!strcmp(a->network, "kvnet") && !strcasecmp(a->mac, "02:00:00:00:00:01") &&
		    strcmp(a->handle, "kvnet.vmi.default.vm-seed"))
			abort();
		for (unsigned j = i + 1; j < v->n; j++) {
			const struct ipam_inv_row *b = &v->rows[j];
			if (!b->bad && !strcasecmp(a->mac, b->mac) && !strcmp(a->network, b->network) &&
			    strcmp(a->handle, b->handle))
				abort();
		}
	}
}

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
		struct ipam_attrs seed;
		struct ip_addr sa;
		memset(&seed, 0, sizeof(seed));
		strcpy(seed.ns, "default");
		strcpy(seed.vmi_name, "vm-seed");
		strcpy(seed.mac, "02:00:00:00:00:01");
		ipam_addr_parse(&sa, "198.18.0.200", NULL);
		if (ipam_reserve_ip(&st, "kvnet.vmi.default.vm-seed", &sa, &seed, &e))
			abort();
		unsigned applied;
		if (ipam_inv_validate(&v, &st, &e) == 0) {
			one_mac_per_vm(&v);
			if (ipam_inv_apply(&st, &v, &applied, &e) == 0) {
				/* one writer: the recheck after its own write finds no race */
				if (ipam_check(&st, &e) != 0 || ipam_inv_mac_recheck(&v, &st, &e) > 0)
					abort();
				unsigned undone;
				if (ipam_inv_undo(&st, &v, false, &undone, &e) != 0 ||
				    undone != applied || ipam_check(&st, &e) != 0)
					abort();
			}
		}
		ipam_state_free(&st);
	}
	ipam_inv_free(&v);
	return 0;
}
