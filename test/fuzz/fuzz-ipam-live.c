/* libFuzzer target for ipam/live: any JSON read as a LIST page of pods, VMIs, VMs and
 * IPAMHandles (on its "items" and on the root) is either refused or gives bounded
 * entries; every handle time listed is found again by its id. */
#include "ipam/live.h"
#include "lib/err.h"
#include "lib/json.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void page(const struct json_doc *d, int items)
{
	struct ipam_live l;
	struct ipam_htimes h = {0};
	struct err e;
	ipam_live_init(&l);
	ipam_live_pods_page(&l, d, items, &e);
	ipam_live_vmis_page(&l, d, items, &e);
	ipam_live_vms_page(&l, d, items, NULL);
	for (unsigned i = 0; i < l.n_pods; i++)
		if (strlen(l.pods[i].ns) > IPAM_NS_MAX || l.pods[i].n_ips > IPAM_HANDLE_IPS_MAX)
			abort();
	ipam_live_free(&l);
	if (ipam_htimes_page(&h, d, items, &e) == 0)
		for (unsigned i = 0; i < h.n; i++) {
			unsigned j = 0; /* the first entry of that id is the one found */
			while (strcmp(h.v[j].id, h.v[i].id))
				j++;
			if (ipam_htimes_get(&h, h.v[i].id) != h.v[j].t)
				abort();
		}
	ipam_htimes_free(&h);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct json_doc d;
	const char *text = (const char *)data;
	int rc = json_parse(&d, text, size, NULL, 0, 0, NULL);
	if (rc && rc != -ENOSPC)
		return 0;
	struct json_tok *tok = calloc(d.n ? d.n : 1, sizeof(*tok));
	if (!tok)
		return 0;
	if (json_parse(&d, text, size, tok, d.n, 0, NULL) == 0) {
		page(&d, json_get(&d, 0, "items"));
		page(&d, 0);
	}
	free(tok);
	return 0;
}
