/* libFuzzer target for the agent's parsers: the CNI line protocol (requests and
 * answers; a request that parses must format and parse back to the same request) and
 * the HTTP request-head parser (fed whole and in two pieces: same outcome). */
#include "agent/http.h"
#include "agent/proto.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* exact-size copies so ASan sees any read past the end */
	char *buf = malloc(size ? size : 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	struct agent_req r;
	if (agent_req_parse(buf, size, &r, NULL) == 0) {
		static char line[AGENT_PROTO_LINE_MAX + 64];
		long n = agent_req_format(&r, line, sizeof(line));
		if (n > 0) {
			struct agent_req back;
			if (agent_req_parse(line, (size_t)n, &back, NULL) != 0 || back.op != r.op ||
			    back.wait != r.wait || memcmp(&back.ep, &r.ep, sizeof(r.ep)) != 0 ||
			    strcmp(back.node, r.node) != 0 ||
			    strcmp(back.datastore, r.datastore) != 0)
				abort();
		}
	}
	/* an endpoint file: the same, identity optional */
	if (agent_req_parse_stored(buf, size, &r, NULL) == 0) {
		static char line[AGENT_PROTO_LINE_MAX + 64];
		long n = agent_req_format(&r, line, sizeof(line));
		if (n > 0) {
			struct agent_req back;
			if (agent_req_parse_stored(line, (size_t)n, &back, NULL) != 0 ||
			    back.op != r.op || memcmp(&back.ep, &r.ep, sizeof(r.ep)) != 0 ||
			    strcmp(back.node, r.node) != 0 ||
			    strcmp(back.datastore, r.datastore) != 0)
				abort();
		}
	}
	struct agent_resp rs;
	if (agent_resp_parse(buf, size, &rs, NULL) == 0) {
		char line[sizeof(rs.error) + 64];
		long n = agent_resp_format(&rs, line, sizeof(line));
		struct agent_resp back;
		if (n > 0 && (agent_resp_parse(line, (size_t)n, &back, NULL) != 0 ||
			      back.status != rs.status || strcmp(back.error, rs.error) != 0))
			abort();
	}
	struct agent_http_req h1, h2;
	long a = agent_http_parse(buf, size, &h1, NULL);
	if (a > 0) {
		/* a complete head parses the same from a prefix that holds it */
		long b = agent_http_parse(buf, (size_t)a, &h2, NULL);
		if (b != a || strcmp(h1.path, h2.path) != 0 || strcmp(h1.method, h2.method) != 0)
			abort();
	}
	free(buf);
	return 0;
}
