/* report — records back from their JSON lines, the query, the merge and the text forms
 * (flows/report.h). Text is built in an open_memstream() buffer. */
#include "flows/report.h"

#include "lib/err.h"
#include "lib/json.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LINE_TOKENS 128

/* ---- parsing ------------------------------------------------------------------------ */

struct lp {
	struct json_doc d;
	struct err *e;
};

static int want_str(struct lp *p, const char *k, char *buf, size_t cap)
{
	int i = json_get(&p->d, 0, k);
	if (i < 0 || json_type(&p->d, i) != JSON_STRING)
		return err_setx(p->e, EINVAL, "flow record: \"%s\": missing or not a string", k);
	if (json_str(&p->d, i, buf, cap) < 0)
		return err_setx(p->e, EINVAL, "flow record: \"%s\": too long or not text", k);
	return 0;
}

static int want_u64(struct lp *p, const char *k, uint64_t max, uint64_t *out)
{
	int i = json_get(&p->d, 0, k);
	if (i < 0 || json_uint64(&p->d, i, out) < 0 || *out > max)
		return err_setx(p->e, EINVAL,
				"flow record: \"%s\": missing or not a number in 0..%llu", k,
				(unsigned long long)max);
	return 0;
}

static int want_kind(struct lp *p, const char *k, enum flow_kind *out)
{
	static const enum flow_kind kinds[] = { FLOW_KIND_VM, FLOW_KIND_POD, FLOW_KIND_NODE,
						FLOW_KIND_EXTERNAL };
	char s[16];
	int rc = want_str(p, k, s, sizeof(s));
	if (rc < 0)
		return rc;
	for (unsigned i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strcmp(s, flow_kind_name(kinds[i])) == 0) {
			*out = kinds[i];
			return 0;
		}
	return err_setx(p->e, EINVAL, "flow record: \"%s\": \"%s\" is no kind", k, s);
}

/* source_* or dest_* into who and ip. */
static int want_side(struct lp *p, const char *pfx, struct flow_who *who, struct ip_addr *ip)
{
	char k[32], s[IP_STRLEN];
	int rc;
	snprintf(k, sizeof(k), "%s_ip", pfx);
	if ((rc = want_str(p, k, s, sizeof(s))) < 0)
		return rc;
	if (!ip_parse(s, ip))
		return err_setx(p->e, EINVAL, "flow record: \"%s\": \"%s\" is no address", k, s);
	snprintf(k, sizeof(k), "%s_namespace", pfx);
	if ((rc = want_str(p, k, who->ns, sizeof(who->ns))) < 0)
		return rc;
	snprintf(k, sizeof(k), "%s_name", pfx);
	if ((rc = want_str(p, k, who->name, sizeof(who->name))) < 0)
		return rc;
	if (strcmp(who->ns, "-") == 0)
		who->ns[0] = '\0';
	if (strcmp(who->name, "-") == 0)
		who->name[0] = '\0';
	snprintf(k, sizeof(k), "%s_kind", pfx);
	return want_kind(p, k, &who->kind);
}

static int want_proto(struct lp *p, uint8_t *out)
{
	static const uint8_t known[] = { IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP, IPPROTO_ICMP,
					 IPPROTO_ICMPV6 };
	int i = json_get(&p->d, 0, "proto");
	uint64_t v;
	char s[16];
	if (i >= 0 && json_type(&p->d, i) == JSON_STRING && json_str(&p->d, i, s, sizeof(s)) == 0)
		for (unsigned k = 0; k < sizeof(known); k++)
			if (strcmp(s, flow_proto_name(known[k])) == 0) {
				*out = known[k];
				return 0;
			}
	if (i >= 0 && json_uint64(&p->d, i, &v) == 0 && v < 256) {
		*out = (uint8_t)v;
		return 0;
	}
	return err_setx(p->e, EINVAL, "flow record: \"proto\": missing or unknown");
}

int flow_line_parse(const char *line, size_t len, struct flow_rec *r, uint64_t *start_ms,
		    uint64_t *end_ms, struct err *e)
{
	struct json_tok tok[LINE_TOKENS];
	struct lp p = { .e = e };
	struct flow_who src, dst;
	struct ip_addr sip, dip;
	char s[FLOW_POLICY_MAX + 1];
	uint64_t v;
	int rc, i;

	memset(r, 0, sizeof(*r));
	if (json_parse(&p.d, line, len, tok, LINE_TOKENS, 4, e) < 0 ||
	    json_type(&p.d, 0) != JSON_OBJECT)
		return err_setx(e, EINVAL, "flow record: not one JSON object");
	if ((rc = want_u64(&p, "start_time", UINT64_MAX / 1000, start_ms)) < 0 ||
	    (rc = want_u64(&p, "end_time", UINT64_MAX / 1000, end_ms)) < 0)
		return rc;
	*start_ms *= 1000, *end_ms *= 1000;
	if ((rc = want_str(&p, "direction", s, sizeof(s))) < 0)
		return rc;
	if (strcmp(s, "egress") == 0)
		r->key.dir = FLOW_EGRESS;
	else if (strcmp(s, "ingress") == 0)
		r->key.dir = FLOW_INGRESS;
	else
		return err_setx(e, EINVAL, "flow record: \"direction\": \"%s\" unknown", s);
	if ((rc = want_str(&p, "action", s, sizeof(s))) < 0)
		return rc;
	if (strcmp(s, "allow") == 0)
		r->key.verdict = FLOW_ALLOW;
	else if (strcmp(s, "deny") == 0)
		r->key.verdict = FLOW_DENY;
	else
		return err_setx(e, EINVAL, "flow record: \"action\": \"%s\" unknown", s);
	if ((rc = want_side(&p, "source", &src, &sip)) < 0 ||
	    (rc = want_side(&p, "dest", &dst, &dip)) < 0)
		return rc;
	if (r->key.dir == FLOW_EGRESS)
		r->key.ep = src, r->ep_ip = sip, r->key.peer = dip, r->peer_who = dst;
	else
		r->key.ep = dst, r->ep_ip = dip, r->key.peer = sip, r->peer_who = src;
	if (r->key.ep.kind != FLOW_KIND_VM && r->key.ep.kind != FLOW_KIND_POD)
		return err_setx(e, EINVAL, "flow record: the endpoint side is a %s, not a vm or pod",
				flow_kind_name(r->key.ep.kind));
	if (sip.family != dip.family)
		return err_setx(e, EINVAL, "flow record: source and destination of two families");
	if ((rc = want_u64(&p, "dest_port", 65535, &v)) < 0)
		return rc;
	r->key.port = (uint16_t)v;
	if ((rc = want_proto(&p, &r->key.proto)) < 0)
		return rc;
	if ((rc = want_u64(&p, "bytes_in", UINT64_MAX, &r->bytes_in)) < 0 ||
	    (rc = want_u64(&p, "bytes_out", UINT64_MAX, &r->bytes_out)) < 0 ||
	    (rc = want_u64(&p, "packets_in", UINT64_MAX, &r->pkts_in)) < 0 ||
	    (rc = want_u64(&p, "packets_out", UINT64_MAX, &r->pkts_out)) < 0 ||
	    (rc = want_u64(&p, "first_seen_ms", UINT64_MAX, &r->first_ms)) < 0 ||
	    (rc = want_u64(&p, "last_seen_ms", UINT64_MAX, &r->last_ms)) < 0)
		return rc;
	if ((rc = want_u64(&p, "num_flows", UINT32_MAX, &v)) < 0)
		return rc;
	r->flows = (uint32_t)v;
	if ((rc = want_u64(&p, "num_flows_started", UINT32_MAX, &v)) < 0)
		return rc;
	r->started = (uint32_t)v;
	if ((rc = want_u64(&p, "num_flows_completed", UINT32_MAX, &v)) < 0)
		return rc;
	r->completed = (uint32_t)v;
	if ((rc = want_str(&p, "node", r->node, sizeof(r->node))) < 0)
		return rc;
	i = json_get(&p.d, 0, "policies");
	if (i < 0 || json_type(&p.d, i) != JSON_ARRAY)
		return err_setx(e, EINVAL, "flow record: \"policies\": missing or not an array");
	for (int k = 0, x; (x = json_index(&p.d, i, k)) >= 0; k++) {
		if (json_type(&p.d, x) != JSON_STRING || json_str(&p.d, x, s, sizeof(s)) < 0)
			return err_setx(e, EINVAL, "flow record: \"policies\": not a list of names");
		flow_pols_add(&r->pols, s);
	}
	/* policies_cut and reason are newer than the first records: optional */
	if (json_get(&p.d, 0, "policies_cut") >= 0) {
		if ((rc = want_u64(&p, "policies_cut", UINT32_MAX, &v)) < 0)
			return rc;
		r->pols.cut += (unsigned)v;
	}
	if (json_get(&p.d, 0, "reason") >= 0) {
		if ((rc = want_str(&p, "reason", s, sizeof(s))) < 0)
			return rc;
		if (!flow_reason_parse(s, r->key.dir, &r->pols.reason))
			return err_setx(e, EINVAL, "flow record: \"reason\": \"%s\" unknown for "
					"direction %s", s, flow_dir_name(r->key.dir));
	}
	return 0;
}

/* ---- query and merge ---------------------------------------------------------------- */

bool flow_query_match(const struct flow_query *q, const struct flow_rec *r)
{
	if (r->last_ms < q->since_ms)
		return false;
	if (q->name[0])
		return strcmp(q->ns, r->key.ep.ns) == 0 && strcmp(q->name, r->key.ep.name) == 0;
	return q->ip.family && ip_eq(&q->ip, &r->ep_ip);
}

void flow_report_init(struct flow_report *rep, const struct flow_query *q, unsigned max_rows)
{
	memset(rep, 0, sizeof(*rep));
	rep->q = *q;
	rep->max_rows = max_rows == 0 ? 1 : max_rows > 1000000 ? 1000000 : max_rows;
}

void flow_report_free(struct flow_report *rep)
{
	free(rep->rows);
	rep->rows = NULL;
	rep->n = rep->cap = 0;
}

static bool row_is(const struct flow_row *w, const struct flow_rec *r)
{
	return w->port == r->key.port && w->proto == r->key.proto && w->dir == r->key.dir &&
	       w->verdict == r->key.verdict && ip_eq(&w->peer, &r->key.peer);
}

static void row_node(struct flow_row *w, const char *node)
{
	if (!node[0])
		return;
	for (unsigned i = 0; i < w->nnodes; i++)
		if (strcmp(w->nodes[i], node) == 0)
			return;
	if (w->nnodes == FLOW_REPORT_NODES) {
		w->more_nodes++;
		return;
	}
	snprintf(w->nodes[w->nnodes++], sizeof(w->nodes[0]), "%s", node);
}

int flow_report_add(struct flow_report *rep, const struct flow_rec *r)
{
	struct flow_row *w = NULL;
	if (!flow_query_match(&rep->q, r))
		return 0;
	for (unsigned i = 0; i < rep->n && !w; i++)
		if (row_is(&rep->rows[i], r))
			w = &rep->rows[i];
	if (!w) {
		if (rep->n == rep->max_rows) {
			rep->dropped++;
			return -ENOSPC;
		}
		if (rep->n == rep->cap) {
			unsigned cap = rep->cap ? rep->cap * 2 : 16;
			struct flow_row *nr = realloc(rep->rows, cap * sizeof(*nr));
			if (!nr)
				return -ENOMEM;
			rep->rows = nr, rep->cap = cap;
		}
		w = &rep->rows[rep->n++];
		memset(w, 0, sizeof(*w));
		w->peer = r->key.peer, w->port = r->key.port, w->proto = r->key.proto;
		w->dir = r->key.dir, w->verdict = r->key.verdict;
		w->peer_who = r->peer_who;
		w->first_ms = r->first_ms, w->last_ms = r->last_ms;
		if (rep->records == 0)
			rep->ep = r->key.ep;
	}
	if (w->peer_who.kind == FLOW_KIND_EXTERNAL && r->peer_who.kind != FLOW_KIND_EXTERNAL)
		w->peer_who = r->peer_who;
	flow_pols_merge(&w->pols, &r->pols);
	row_node(w, r->node);
	w->bytes_in += r->bytes_in, w->bytes_out += r->bytes_out;
	w->pkts_in += r->pkts_in, w->pkts_out += r->pkts_out;
	w->flows += r->flows;
	if (r->first_ms < w->first_ms)
		w->first_ms = r->first_ms;
	if (r->last_ms > w->last_ms)
		w->last_ms = r->last_ms;
	if (rep->records == 0)
		rep->ep = r->key.ep;
	rep->records++;
	return 1;
}

static int row_cmp(const void *pa, const void *pb)
{
	const struct flow_row *a = pa, *b = pb;
	uint64_t ta = a->bytes_in + a->bytes_out, tb = b->bytes_in + b->bytes_out;
	int c;
	if (ta != tb)
		return ta > tb ? -1 : 1;
	if (a->peer.family != b->peer.family)
		return a->peer.family < b->peer.family ? -1 : 1;
	if ((c = memcmp(a->peer.b, b->peer.b, sizeof(a->peer.b))) != 0)
		return c;
	if (a->port != b->port)
		return a->port < b->port ? -1 : 1;
	if (a->proto != b->proto)
		return a->proto < b->proto ? -1 : 1;
	if (a->dir != b->dir)
		return a->dir < b->dir ? -1 : 1;
	return (int)a->verdict - (int)b->verdict;
}

void flow_report_sort(struct flow_report *rep)
{
	if (rep->n > 1)
		qsort(rep->rows, rep->n, sizeof(*rep->rows), row_cmp);
}

/* ---- text forms --------------------------------------------------------------------- */

const char *flow_row_label(const struct flow_row *row, char *buf, size_t cap)
{
	char ip[IP_STRLEN];
	switch (row->peer_who.kind) {
	case FLOW_KIND_VM:
	case FLOW_KIND_POD:
		snprintf(buf, cap, "%s/%s", row->peer_who.ns, row->peer_who.name);
		return buf;
	case FLOW_KIND_NODE:
		snprintf(buf, cap, "node %s", row->peer_who.name);
		return buf;
	case FLOW_KIND_EXTERNAL:
		break;
	}
	snprintf(buf, cap, "%s", ip_fmt(&row->peer, ip));
	return buf;
}

static void port_text(const struct flow_row *w, char *buf, size_t cap)
{
	const char *pn = flow_proto_name(w->proto);
	if (pn && (w->proto == IPPROTO_ICMP || w->proto == IPPROTO_ICMPV6))
		snprintf(buf, cap, "%s", pn);
	else if (pn)
		snprintf(buf, cap, "%u/%s", w->port, pn);
	else
		snprintf(buf, cap, "%u/%u", w->port, w->proto);
}

/* The policy names comma-separated ("+N" for those cut), after the reason when
 * with_reason and it is not "policy" (the POLICY column of the table). */
static void pols_text(const struct flow_row *w, bool with_reason, char *buf, size_t cap)
{
	size_t o = 0;
	buf[0] = '\0';
	switch (with_reason ? w->pols.reason : FLOW_R_POLICY) {
	case FLOW_R_UNKNOWN:
		o = (size_t)snprintf(buf, cap, w->pols.n ? "" : "-");
		break;
	case FLOW_R_POLICY:
		break;
	case FLOW_R_NO_POLICY:
	case FLOW_R_UNENFORCED:
	case FLOW_R_DEFAULT_DENY:
		o = (size_t)snprintf(buf, cap, "%s%s",
				     flow_reason_name(w->pols.reason, w->dir),
				     w->pols.n ? ":" : "");
		break;
	}
	for (unsigned i = 0; i < w->pols.n && o < cap; i++)
		o += (size_t)snprintf(buf + o, cap - o, "%s%s", i ? "," : "", w->pols.name[i]);
	if (w->pols.cut && o < cap)
		snprintf(buf + o, cap - o, ",+%u", w->pols.cut);
}

static void nodes_text(const struct flow_row *w, char *buf, size_t cap)
{
	size_t o = 0;
	buf[0] = '\0';
	for (unsigned i = 0; i < w->nnodes && o < cap; i++)
		o += (size_t)snprintf(buf + o, cap - o, "%s%s", i ? "," : "", w->nodes[i]);
	if (w->more_nodes && o < cap)
		snprintf(buf + o, cap - o, ",+%u", w->more_nodes);
}

static void csv_field(FILE *f, const char *s)
{
	if (!strpbrk(s, ",\"\r\n")) {
		fputs(s, f);
		return;
	}
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"')
			fputc('"', f);
		fputc(*s, f);
	}
	fputc('"', f);
}

static int json_out(const struct flow_report *rep, FILE *f, struct err *e)
{
	struct json_w w;
	char b[IP_STRLEN], lbl[2 * FLOW_NAME_MAX + 8];
	size_t n;
	char *text;
	json_w_init_grow(&w, 64u << 20);
	json_w_obj_begin(&w);
	json_w_key(&w, "endpoint");
	json_w_obj_begin(&w);
	json_w_kstr(&w, "namespace", rep->ep.ns);
	json_w_kstr(&w, "name", rep->ep.name);
	json_w_kstr(&w, "kind", flow_kind_name(rep->ep.kind));
	json_w_obj_end(&w);
	json_w_key(&w, "rows");
	json_w_arr_begin(&w);
	for (unsigned i = 0; i < rep->n; i++) {
		const struct flow_row *r = &rep->rows[i];
		const char *pn = flow_proto_name(r->proto);
		json_w_obj_begin(&w);
		json_w_kstr(&w, "peer", flow_row_label(r, lbl, sizeof(lbl)));
		json_w_kstr(&w, "peer_ip", ip_fmt(&r->peer, b));
		json_w_kstr(&w, "peer_kind", flow_kind_name(r->peer_who.kind));
		json_w_kint(&w, "port", r->port);
		json_w_key(&w, "proto");
		if (pn)
			json_w_str(&w, pn);
		else
			json_w_uint(&w, r->proto);
		json_w_kstr(&w, "direction", flow_dir_name(r->dir));
		json_w_kstr(&w, "action", flow_verdict_name(r->verdict));
		json_w_key(&w, "policies");
		json_w_arr_begin(&w);
		for (unsigned k = 0; k < r->pols.n; k++)
			json_w_str(&w, r->pols.name[k]);
		json_w_arr_end(&w);
		json_w_key(&w, "policies_cut");
		json_w_uint(&w, r->pols.cut);
		json_w_kstr(&w, "reason", flow_reason_name(r->pols.reason, r->dir));
		json_w_key(&w, "nodes");
		json_w_arr_begin(&w);
		for (unsigned k = 0; k < r->nnodes; k++)
			json_w_str(&w, r->nodes[k]);
		json_w_arr_end(&w);
		json_w_key(&w, "bytes_in");
		json_w_uint(&w, r->bytes_in);
		json_w_key(&w, "bytes_out");
		json_w_uint(&w, r->bytes_out);
		json_w_key(&w, "packets_in");
		json_w_uint(&w, r->pkts_in);
		json_w_key(&w, "packets_out");
		json_w_uint(&w, r->pkts_out);
		json_w_key(&w, "connections");
		json_w_uint(&w, r->flows);
		json_w_key(&w, "first_seen_ms");
		json_w_uint(&w, r->first_ms);
		json_w_key(&w, "last_seen_ms");
		json_w_uint(&w, r->last_ms);
		json_w_obj_end(&w);
	}
	json_w_arr_end(&w);
	json_w_key(&w, "records");
	json_w_uint(&w, rep->records);
	json_w_key(&w, "dropped");
	json_w_uint(&w, rep->dropped);
	json_w_obj_end(&w);
	if (json_w_finish(&w, e) < 0) {
		json_w_free(&w);
		return -ENOMEM;
	}
	text = json_w_take(&w, &n);
	fwrite(text, 1, n, f);
	fputc('\n', f);
	free(text);
	return 0;
}

char *flow_report_text(const struct flow_report *rep, enum flow_format fmt, size_t *len,
		       struct err *e)
{
	char *buf = NULL, lbl[2 * FLOW_NAME_MAX + 8], port[32], nodes[256], b[IP_STRLEN];
	char pols[FLOW_POLICIES * (FLOW_POLICY_MAX + 1) + 64];
	size_t n = 0;
	FILE *f = open_memstream(&buf, &n);
	int rc = 0;
	if (!f) {
		err_set(e, errno, "flow report: open_memstream");
		return NULL;
	}
	switch (fmt) {
	case FLOW_FMT_TABLE:
		fprintf(f, "%-32s %-10s %-7s %-6s %12s %12s %8s %-32s %s\n", "PEER", "PORT",
			"DIR", "ACTION", "BYTES_IN", "BYTES_OUT", "CONNS", "POLICY", "NODES");
		for (unsigned i = 0; i < rep->n; i++) {
			const struct flow_row *r = &rep->rows[i];
			port_text(r, port, sizeof(port));
			nodes_text(r, nodes, sizeof(nodes));
			pols_text(r, true, pols, sizeof(pols));
			fprintf(f, "%-32s %-10s %-7s %-6s %12llu %12llu %8llu %-32s %s\n",
				flow_row_label(r, lbl, sizeof(lbl)), port, flow_dir_name(r->dir),
				flow_verdict_name(r->verdict), (unsigned long long)r->bytes_in,
				(unsigned long long)r->bytes_out, (unsigned long long)r->flows,
				pols, nodes[0] ? nodes : "-");
		}
		break;
	case FLOW_FMT_CSV:
		fputs("peer,peer_ip,peer_kind,port,proto,direction,action,policy,reason,nodes,"
		      "bytes_in,"
		      "bytes_out,packets_in,packets_out,connections,first_seen_ms,last_seen_ms\r\n",
		      f);
		for (unsigned i = 0; i < rep->n; i++) {
			const struct flow_row *r = &rep->rows[i];
			const char *pn = flow_proto_name(r->proto);
			csv_field(f, flow_row_label(r, lbl, sizeof(lbl)));
			nodes_text(r, nodes, sizeof(nodes));
			fprintf(f, ",%s,%s,%u,", ip_fmt(&r->peer, b),
				flow_kind_name(r->peer_who.kind), r->port);
			if (pn)
				fputs(pn, f);
			else
				fprintf(f, "%u", r->proto);
			fprintf(f, ",%s,%s,", flow_dir_name(r->dir), flow_verdict_name(r->verdict));
			pols_text(r, false, pols, sizeof(pols));
			csv_field(f, pols);
			fprintf(f, ",%s,", flow_reason_name(r->pols.reason, r->dir));
			csv_field(f, nodes);
			fprintf(f, ",%llu,%llu,%llu,%llu,%llu,%llu,%llu\r\n",
				(unsigned long long)r->bytes_in, (unsigned long long)r->bytes_out,
				(unsigned long long)r->pkts_in, (unsigned long long)r->pkts_out,
				(unsigned long long)r->flows, (unsigned long long)r->first_ms,
				(unsigned long long)r->last_ms);
		}
		break;
	case FLOW_FMT_JSON:
		rc = json_out(rep, f, e);
		break;
	}
	if (fclose(f) != 0 || rc < 0) {
		free(buf);
		if (rc == 0)
			err_setx(e, ENOMEM, "flow report: out of memory");
		return NULL;
	}
	if (len)
		*len = n;
	return buf;
}
