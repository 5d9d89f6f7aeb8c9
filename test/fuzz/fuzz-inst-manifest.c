/* libFuzzer target for inst/: arbitrary bytes as an install manifest
 * (ROOT/var/lib/kvnet/install.manifest, which `kvnet uninstall` follows).
 *
 * Besides "never crash": every item a parse accepts has a path inst_path_ok() accepts
 * (uninstall never leaves the root), and a manifest that parses prints back to text that
 * parses to the same items and prints identically. */
#include "inst/inst.h"
#include "lib/err.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *print(const struct inst_plan *p, size_t *len)
{
	size_t need = inst_manifest_format(p, NULL, 0);
	char *b = malloc(need + 1);
	if (!b)
		abort();
	if (inst_manifest_format(p, b, need + 1) != need)
		abort();
	*len = need;
	return b;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct inst_plan p = { 0 }, q = { 0 };
	struct err e = { 0 };
	if (inst_manifest_parse(&p, (const char *)data, size, &e) < 0) {
		inst_plan_free(&p);
		return 0;
	}
	for (unsigned i = 0; i < p.n; i++)
		if (!inst_path_ok(p.item[i].path)) {
			fprintf(stderr, "accepted a path outside the root: %s\n", p.item[i].path);
			abort();
		}
	size_t la, lb;
	char *a = print(&p, &la);
	if (inst_manifest_parse(&q, a, la, &e) < 0) {
		fprintf(stderr, "printed manifest does not parse: %s\n%s", e.msg, a);
		abort();
	}
	char *b = print(&q, &lb);
	if (p.n != q.n || la != lb || memcmp(a, b, la) != 0) {
		fprintf(stderr, "round trip differs:\n%s--\n%s", a, b);
		abort();
	}
	free(a);
	free(b);
	inst_plan_free(&p);
	inst_plan_free(&q);
	return 0;
}
