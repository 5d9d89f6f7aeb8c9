/* libFuzzer target for the ipam record parser: the input is loaded as each kind of
 * record (pool, block, handle) into one state; whatever loads must pass through
 * ipam_check() without a crash, write back as JSON that loads again to the same text,
 * and survive an allocation, a diff and a release. The first byte picks the order. */
#include "ipam/ipam.h"
#include "lib/json.h"
#include "lib/err.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const names[] = {"p4", "v4-198-18-0-0-26", "h", "default"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	struct ipam_state st;
	struct err e;
	ipam_state_init(&st);
	const char *txt = (const char *)data + 1;
	size_t len = size - 1;
	/* a fixed pool so blocks can be valid, then the input as a record */
	const char *pool = "{\"cidr\":\"198.18.0.0/24\",\"blockSize\":26,\"reserved\":[]}";
	ipam_state_load(&st, IPAM_POOL, "fixed", "1", pool, strlen(pool), &e);
	for (int k = 0; k < IPAM_KIND_LAST; k++) {
		int kind = 1 + (data[0] + k) % IPAM_KIND_LAST;
		ipam_state_load(&st, (enum ipam_kind)kind, names[kind - 1], "v", txt, len, &e);
	}
	ipam_check(&st, &e);
	/* round trip whatever loaded */
	for (unsigned i = 0; i < st.n_loaded; i++) {
		struct json_w w;
		json_w_init_grow(&w, 1 << 22);
		if (ipam_rec_write(&st, st.loaded[i].kind, st.loaded[i].name, &w, &e) == 0) {
			struct ipam_state s2;
			ipam_state_init(&s2);
			if (st.loaded[i].kind == IPAM_BLOCK)
				ipam_state_load(&s2, IPAM_POOL, "fixed", "1", pool, strlen(pool),
						&e);
			if (ipam_state_load(&s2, st.loaded[i].kind, st.loaded[i].name, "", w.buf,
					    w.len, &e) != 0)
				abort(); /* what we write must load */
			ipam_state_free(&s2);
		}
		json_w_free(&w);
	}
	struct ip_addr out[IPAM_HANDLE_IPS_MAX];
	unsigned n;
	ipam_alloc(&st, "fz", "node-a", IPAM_V4 | IPAM_V6, NULL, out, &n, &e);
	struct ipam_change *c;
	unsigned nc;
	if (ipam_state_diff(&st, &c, &nc, &e) == 0)
		ipam_changes_free(c, nc);
	ipam_release_handle(&st, "h", false, &e);
	ipam_release_handle(&st, "fz", true, &e);
	ipam_state_free(&st);
	return 0;
}
