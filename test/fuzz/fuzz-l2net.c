/* libFuzzer target: the L2Network parser (l2/netdef) over any bytes, and what is asked of
 * a parsed network (the trunk of a node, usable addresses). Seeds: test/fuzz/corpus/l2net. */
#include "l2/netdef.h"
#include "lib/err.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct l2_netdef n;
	struct err e;
	if (l2_netdef_parse_text((const char *)data, size, &n, &e) < 0) {
		if (!memchr(e.msg, 0, sizeof(e.msg)))
			__builtin_trap();
		return 0;
	}
	struct l2_label lab[1] = { { "hw", "gen2" } };
	struct l2_node node = { "edge-3", lab, 1 };
	const char *t = l2_netdef_trunk(&n, &node);
	if (t && strlen(t) > L2_IFNAME_MAX)
		__builtin_trap();
	if (strlen(n.id) != 8 || n.vid > 4094)
		__builtin_trap();
	struct ip_addr a;
	if (ip_parse("198.18.100.10", &a))
		(void)l2_netdef_usable(&n, &a);
	return 0;
}
