/* libFuzzer target for the kubernetes datastore's LIST and GET answer readers
 * (ipam_ds_kube_load_page, ipam_ds_kube_load_obj): the input is one answer body, loaded
 * as each kind (pools, blocks, handles) into one state, as a page and as an object; whatever loads must pass ipam_check() and
 * ipam_state_diff() without a crash, and a fresh state must diff to nothing (the
 * loaded records are kept in canonical form). The first byte picks the order. */
#include "ipam/ds_kube.h"
#include "ipam/ipam.h"
#include "lib/err.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	struct ipam_state st;
	struct err e;
	char cont[256];
	ipam_state_init(&st);
	for (int k = 0; k < IPAM_KIND_LAST; k++) {
		int kind = 1 + (data[0] + k) % IPAM_KIND_LAST;
		ipam_ds_kube_load_page(&st, (enum ipam_kind)kind, (const char *)data + 1, size - 1,
				       cont, sizeof(cont), &e);
		ipam_ds_kube_load_obj(&st, (enum ipam_kind)kind, "h1", (const char *)data + 1,
				      size - 1, &e);
	}
	ipam_check(&st, &e);
	struct ipam_change *c;
	unsigned n;
	if (ipam_state_diff(&st, &c, &n, &e) == 0) {
		if (n) /* loaded, untouched records must not show as changed */
			abort();
		ipam_changes_free(c, n);
	}
	ipam_state_free(&st);
	return 0;
}
