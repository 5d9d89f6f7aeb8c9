/* libFuzzer target for flows/: arbitrary bytes as a flow-log line.
 *
 * Besides "never crash", every line that parses is written back with flow_json and must
 * parse to the same record (the round trip the agent's log and `kvnet flows` rely on),
 * and is merged into a report whose table, CSV, JSON and SVG forms are built. */
#include "flows/report.h"
#include "flows/svg.h"
#include "lib/json.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct flow_rec r, back;
	struct flow_report rep;
	struct flow_query q;
	uint64_t t0, t1, b0, b1;
	char buf[4096];
	struct json_w w;
	char *t;

	if (flow_line_parse((const char *)data, size, &r, &t0, &t1, NULL) < 0)
		return 0;
	json_w_init(&w, buf, sizeof(buf));
	flow_json(&w, &r, t0, t1);
	if (json_w_finish(&w, NULL) < 0)
		abort(); /* a parsed record always fits a line */
	if (flow_line_parse(buf, w.len, &back, &b0, &b1, NULL) < 0 || b0 != t0 || b1 != t1 ||
	    back.bytes_in != r.bytes_in || back.key.port != r.key.port ||
	    back.key.dir != r.key.dir || back.key.verdict != r.key.verdict ||
	    strcmp(back.key.ep.name, r.key.ep.name) != 0 || strcmp(back.node, r.node) != 0 ||
	    memcmp(&back.key.peer, &r.key.peer, sizeof(r.key.peer)) != 0) {
		fprintf(stderr, "round trip differs:\n%.*s\n%s\n", (int)size, data, buf);
		abort();
	}
	memset(&q, 0, sizeof(q));
	snprintf(q.ns, sizeof(q.ns), "%s", r.key.ep.ns);
	snprintf(q.name, sizeof(q.name), "%s", r.key.ep.name);
	flow_report_init(&rep, &q, 4);
	flow_report_add(&rep, &r);
	flow_report_add(&rep, &back);
	flow_report_sort(&rep);
	for (int f = FLOW_FMT_TABLE; f <= FLOW_FMT_CSV; f++)
		free(flow_report_text(&rep, (enum flow_format)f, NULL, NULL));
	t = flow_report_svg(&rep, NULL, NULL);
	if (t && strstr(t, "<script"))
		abort(); /* names are escaped */
	free(t);
	flow_report_free(&rep);
	return 0;
}
