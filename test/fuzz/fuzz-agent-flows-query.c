/* libFuzzer target for GET /flows query strings: agent_http_query_get and
 * agent_flows_query_parse over arbitrary bytes (made a NUL-terminated query).
 *
 * Besides "never crash": a query that parses names exactly one endpoint (by name or by
 * address) and a since at or before now; a value found fits its buffer. */
#include "agent/flows.h"
#include "agent/http.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char q[1024], v[64];
	struct flow_query fq;
	const uint64_t now = 1800000000000ULL;
	if (size >= sizeof(q))
		return 0;
	memcpy(q, data, size);
	q[size] = 0;
	if (agent_http_query_get(q, "vm", v, sizeof(v), NULL) == 1 && strlen(v) >= sizeof(v))
		abort();
	if (agent_flows_query_parse(q, now, &fq, NULL) == 0) {
		if (!!fq.name[0] == !!fq.ip.family || fq.since_ms > now)
			abort();
		if (fq.name[0] && (!fq.ns[0] || strchr(fq.name, '/')))
			abort();
	}
	return 0;
}
