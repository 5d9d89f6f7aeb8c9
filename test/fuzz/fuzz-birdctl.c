/* libFuzzer target: BIRD control socket replies (agent/birdctl) over any bytes, parsed
 * reply after reply like the agent reads them. Promises checked: a result of 1, 0,
 * -EBADMSG or -EMSGSIZE only; *used within the input and ending on a newline; a final
 * line's code in 0..9999; kept text printable and bounded; the same bytes give the same
 * answer; a prefix that ends before the final line asks for more or fails, never
 * "done". Seeds: replies recorded from BIRD 2.0.12 (test/fuzz/corpus/birdctl). */
#include "agent/birdctl.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	size_t left = size;
	for (int guard = 0; guard < 64 && left; guard++) {
		struct agent_birdctl_reply r, r2;
		size_t used = 0, used2 = 0;
		int rc = agent_birdctl_parse(p, left, &used, &r);
		int rc2 = agent_birdctl_parse(p, left, &used2, &r2);
		if (rc != rc2 || used != used2 || r.code != r2.code)
			__builtin_trap();
		if (rc != 1 && rc != 0 && rc != -EBADMSG && rc != -EMSGSIZE)
			__builtin_trap();
		size_t tl = strlen(r.text);
		if (tl > AGENT_BIRDCTL_TEXT_MAX)
			__builtin_trap();
		for (size_t i = 0; i < tl; i++)
			if (r.text[i] < 0x20 || r.text[i] >= 0x7f)
				__builtin_trap();
		if (rc != 1)
			return 0;
		if (used == 0 || used > left || p[used - 1] != '\n' || r.code < 0 ||
		    r.code > 9999)
			__builtin_trap();
		if (used > 1) {
			size_t u3 = 0;
			struct agent_birdctl_reply r3;
			if (agent_birdctl_parse(p, used - 1, &u3, &r3) == 1)
				__builtin_trap();
		}
		(void)agent_birdctl_configure_ok(r.code);
		p += used;
		left -= used;
	}
	return 0;
}
