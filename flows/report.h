/* report — the blast-radius report of one VM or address (pure: no I/O).
 *
 * Input: flow records as the agents write them (flows/flows.h flow_json, one JSON object
 * per line, from any number of nodes and windows). flow_line_parse() reads one line back
 * (strictly: a line that is not such a record is an error naming the field; it is
 * fuzzed). A query (the VM by namespace/name, or an address, and a start time) selects
 * records; because records name the VM by its identity, not its pod, a VM's records
 * from the source and the target node of a migration are one report.
 *
 * The report merges the selected records into one row per
 *
 *   (peer address, service port, protocol, direction, verdict)
 *
 * summing bytes, packets and connections, keeping the first and last time seen, the
 * peer's name and kind, the policies and the nodes that reported it; rows are sorted by
 * bytes (in + out) descending, then by peer address. Output as an aligned table, JSON or
 * CSV (flow_report_text), or a self-contained SVG picture (flows/svg.h).
 */
#ifndef KVNET_FLOWS_REPORT_H
#define KVNET_FLOWS_REPORT_H

#include "flows/flows.h"

#include <stddef.h>
#include <stdint.h>

struct err;

#define FLOW_REPORT_NODES 4 /* nodes named per row (more are counted) */

/* Parse one record line (without its newline) into r and its window. 0, or -EINVAL with
 * e naming what is wrong (not JSON, a missing or mistyped field, a bad address). */
int flow_line_parse(const char *line, size_t len, struct flow_rec *r, uint64_t *start_ms,
		    uint64_t *end_ms, struct err *e);

/* What to report. */
struct flow_query {
	char ns[FLOW_NAME_MAX + 1];   /* the VM's (or pod's) namespace, with name */
	char name[FLOW_NAME_MAX + 1]; /* "" = select by ip instead */
	struct ip_addr ip;	      /* family 0 = select by name */
	uint64_t since_ms;	      /* records whose last activity is at or after this */
};

/* True when r is about the query's endpoint (by identity, or by its address) and
 * recent enough. */
bool flow_query_match(const struct flow_query *q, const struct flow_rec *r);

/* One row of the report. */
struct flow_row {
	struct ip_addr peer;		  /* the peer as the endpoint sees it */
	struct flow_who peer_who;	  /* its name and kind (first known wins) */
	uint16_t port;			  /* service port */
	uint8_t proto;			  /* IPPROTO_* */
	enum flow_dir dir;		  /* what the endpoint did */
	enum flow_verdict verdict;	  /* allow / deny */
	struct flow_pols pols;		  /* why: the records' policies merged (bounded) */
	char nodes[FLOW_REPORT_NODES][FLOW_NAME_MAX + 1]; /* reporting nodes */
	unsigned nnodes;		  /* how many of nodes[] are set */
	unsigned more_nodes;		  /* further nodes not named */
	uint64_t bytes_in, bytes_out;	  /* sums */
	uint64_t pkts_in, pkts_out;	  /* sums */
	uint64_t flows;			  /* connections */
	uint64_t first_ms, last_ms;	  /* first and last activity */
};

struct flow_report {
	struct flow_query q;	  /* what it answers */
	struct flow_who ep;	  /* the endpoint (from its first record) */
	struct flow_row *rows;	  /* rows, n of them (cap allocated) */
	unsigned n, cap;	  /* used / allocated */
	unsigned max_rows;	  /* bound (records beyond it are counted in dropped) */
	uint64_t records;	  /* records merged */
	uint64_t dropped;	  /* records not merged: the row bound was hit */
};

/* An empty report for q with at most max_rows rows (1..1,000,000). */
void flow_report_init(struct flow_report *rep, const struct flow_query *q, unsigned max_rows);
void flow_report_free(struct flow_report *rep);
/* Merge r when it matches the query (flow_query_match). 1 merged, 0 not matched,
 * -ENOSPC row bound hit (counted), -ENOMEM. */
int flow_report_add(struct flow_report *rep, const struct flow_rec *r);
/* Sort the rows (bytes descending, then peer, port, protocol, direction). */
void flow_report_sort(struct flow_report *rep);

enum flow_format {
	FLOW_FMT_TABLE, /* aligned columns with a header */
	FLOW_FMT_JSON,	/* {"endpoint":..,"rows":[..],"records":N,"dropped":N} */
	FLOW_FMT_CSV,	/* RFC 4180, header line first */
};

/* The report as text in a malloc'd NUL-terminated buffer (*len bytes), or NULL with e
 * (no memory). */
char *flow_report_text(const struct flow_report *rep, enum flow_format f, size_t *len,
		       struct err *e);

/* The peer's display label: "NS/NAME" (pod, vm), "node NAME", or the address. */
const char *flow_row_label(const struct flow_row *row, char *buf, size_t cap);

#endif
