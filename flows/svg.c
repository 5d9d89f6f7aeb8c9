/* svg — drawing the report (flows/svg.h): peers grouped from the rows, placed on a
 * circle, written with fprintf into an open_memstream() buffer. */
#include "flows/svg.h"

#include "lib/err.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define W 960
#define H 720
#define R 270
#define PI 3.14159265358979323846

/* sin and cos of x in [-2pi, 2pi] by their series (no libm in the static binary for
 * one circle). */
static void sincos_(double x, double *s, double *c)
{
	double term = x, sum = x;
	for (int k = 1; k < 30; k++) {
		term *= -x * x / ((2.0 * k) * (2.0 * k + 1));
		sum += term;
	}
	*s = sum;
	term = 1, sum = 1;
	for (int k = 1; k < 30; k++) {
		term *= -x * x / ((2.0 * k - 1) * (2.0 * k));
		sum += term;
	}
	*c = sum;
}

/* Point i of n on the circle, starting at the top, clockwise. */
static void place(unsigned i, unsigned n, double *x, double *y)
{
	double sn, cs;
	sincos_(2 * PI * i / (n ? n : 1) - PI / 2, &sn, &cs);
	*x = W / 2.0 + R * cs;
	*y = H / 2.0 + R * sn;
}

/* Edge width: 1 + log10(bytes + 1), from the bit length. */
static double width(uint64_t bytes)
{
	unsigned bits = 0;
	for (uint64_t v = bytes + 1; v > 1; v >>= 1)
		bits++;
	return 1 + bits * 0.30103;
}

/* One peer and verdict drawn: a node (shared by its verdicts) and an edge. */
struct edge {
	char label[2 * FLOW_NAME_MAX + 8]; /* the peer's label */
	const char *kind;		   /* its kind name */
	enum flow_verdict verdict;	   /* allow / deny */
	uint64_t bytes;			   /* in + out */
	char ports[160];		   /* "443/tcp 80/tcp ..." */
	char why[200];			   /* its rows' policies, or their default denies */
	unsigned node;			   /* index of its node */
};

static void xml(FILE *f, const char *s)
{
	for (; *s; s++)
		switch (*s) {
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '&': fputs("&amp;", f); break;
		case '"': fputs("&quot;", f); break;
		case '\'': fputs("&apos;", f); break;
		default:
			if ((unsigned char)*s >= 0x20)
				fputc(*s, f);
		}
}

static void add_port(char *ports, size_t cap, const struct flow_row *r)
{
	char one[32];
	const char *pn = flow_proto_name(r->proto);
	size_t o = strlen(ports);
	if (pn && r->port)
		snprintf(one, sizeof(one), "%u/%s", r->port, pn);
	else if (pn)
		snprintf(one, sizeof(one), "%s", pn);
	else
		snprintf(one, sizeof(one), "%u/%u", r->port, r->proto);
	if (strstr(ports, one))
		return;
	if (o + strlen(one) + 5 >= cap) {
		if (!strstr(ports, "..."))
			snprintf(ports + o, cap - o, " ...");
		return;
	}
	snprintf(ports + o, cap - o, "%s%s", o ? " " : "", one);
}

/* Append what decided row r (its policy names; "no policy"; "DIR default deny") to the
 * edge's why, once each, cut with "..." when full. */
static void add_why(char *why, size_t cap, const struct flow_row *r)
{
	char one[FLOW_POLICY_MAX + 32];
	unsigned n = r->pols.n ? r->pols.n : 1;
	for (unsigned i = 0; i < n; i++) {
		size_t o = strlen(why);
		switch (r->pols.reason) {
		case FLOW_R_DEFAULT_DENY:
			snprintf(one, sizeof(one), "%s default deny", flow_dir_name(r->dir));
			n = 1;
			break;
		case FLOW_R_NO_POLICY:
			snprintf(one, sizeof(one), "no policy");
			break;
		case FLOW_R_POLICY:
		case FLOW_R_UNKNOWN:
		case FLOW_R_UNENFORCED:
			if (!r->pols.n)
				return;
			snprintf(one, sizeof(one), "%s", r->pols.name[i]);
			break;
		}
		if (strstr(why, one))
			continue;
		if (o + strlen(one) + 6 >= cap) {
			if (!strstr(why, "..."))
				snprintf(why + o, cap - o, ", ...");
			return;
		}
		snprintf(why + o, cap - o, "%s%s", o ? ", " : "", one);
	}
}

/* Group the rows into edges; nodes[] get the distinct labels. Returns the edge count. */
static unsigned group(const struct flow_report *rep, struct edge *ed, unsigned cap,
		      char (*nodes)[2 * FLOW_NAME_MAX + 8], unsigned *nnodes, uint64_t *other)
{
	unsigned n = 0;
	*nnodes = 0;
	*other = 0;
	for (unsigned j = 0; j < 2 * rep->n; j++) {
		/* denied rows first: a denied peer is always drawn */
		const struct flow_row *r = &rep->rows[j % rep->n];
		char lbl[2 * FLOW_NAME_MAX + 8];
		unsigned k, nd;
		if ((j < rep->n) != (r->verdict == FLOW_DENY))
			continue;
		flow_row_label(r, lbl, sizeof(lbl));
		for (nd = 0; nd < *nnodes; nd++)
			if (strcmp(nodes[nd], lbl) == 0)
				break;
		if (nd == *nnodes) {
			if (*nnodes == FLOW_SVG_PEERS) {
				*other += r->bytes_in + r->bytes_out + 1;
				continue;
			}
			snprintf(nodes[(*nnodes)++], sizeof(nodes[0]), "%s", lbl);
		}
		for (k = 0; k < n; k++)
			if (ed[k].node == nd && ed[k].verdict == r->verdict)
				break;
		if (k == n) {
			if (n == cap)
				continue;
			memset(&ed[n], 0, sizeof(ed[n]));
			snprintf(ed[n].label, sizeof(ed[n].label), "%s", lbl);
			ed[n].kind = flow_kind_name(r->peer_who.kind);
			ed[n].verdict = r->verdict;
			ed[n].node = nd;
			n++;
		}
		ed[k].bytes += r->bytes_in + r->bytes_out;
		add_port(ed[k].ports, sizeof(ed[k].ports), r);
		add_why(ed[k].why, sizeof(ed[k].why), r);
	}
	return n;
}

char *flow_report_svg(const struct flow_report *rep, size_t *len, struct err *e)
{
	static const size_t ecap = 2 * FLOW_SVG_PEERS;
	struct edge *ed = calloc(ecap, sizeof(*ed));
	char(*nodes)[2 * FLOW_NAME_MAX + 8] = calloc(FLOW_SVG_PEERS, sizeof(*nodes));
	char *buf = NULL, title[2 * FLOW_NAME_MAX + 8];
	size_t n = 0;
	unsigned ne, nn, slots;
	uint64_t other;
	FILE *f = NULL;

	if (ed && nodes)
		f = open_memstream(&buf, &n);
	if (!f) {
		free(ed);
		free(nodes);
		err_setx(e, ENOMEM, "flow picture: out of memory");
		return NULL;
	}
	ne = group(rep, ed, ecap, nodes, &nn, &other);
	slots = nn + (other ? 1 : 0);
	snprintf(title, sizeof(title), "%s/%s", rep->ep.ns, rep->ep.name);
	fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		   "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
		   "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"13\">\n"
		   "<title>", W, H, W, H);
	xml(f, title);
	fprintf(f, " — who talks to it</title>\n<rect width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n",
		W, H);
	for (unsigned i = 0; i < ne; i++) {
		double x, y, off = ed[i].verdict == FLOW_DENY ? 6 : 0;
		double wdt = width(ed[i].bytes);
		bool deny = ed[i].verdict == FLOW_DENY;
		place(ed[i].node, slots, &x, &y);
		fprintf(f, "<g class=\"edge %s\"><line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" "
			   "y2=\"%.1f\" stroke=\"%s\" stroke-width=\"%.1f\"%s/>",
			deny ? "denied" : "allowed", W / 2.0 + off, H / 2.0 + off, x + off,
			y + off, deny ? "#c62828" : "#546e7a", wdt,
			deny ? " stroke-dasharray=\"8 5\"" : "");
		fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" fill=\"%s\">",
			(W / 2.0 + x) / 2 + off, (H / 2.0 + y) / 2 + off - 4,
			deny ? "#c62828" : "#37474f");
		xml(f, ed[i].ports);
		fprintf(f, "%s</text>", deny ? " denied" : "");
		if (ed[i].why[0]) {
			fprintf(f, "<text class=\"why\" x=\"%.1f\" y=\"%.1f\" "
				   "text-anchor=\"middle\" font-size=\"11\" fill=\"%s\">",
				(W / 2.0 + x) / 2 + off, (H / 2.0 + y) / 2 + off + 10,
				deny ? "#c62828" : "#607d8b");
			xml(f, ed[i].why);
			fputs("</text>", f);
		}
		fputs("</g>\n", f);
	}
	for (unsigned i = 0; i < slots; i++) {
		double x, y;
		const char *kind = "external";
		char more[48];
		const char *lbl = nodes[i];
		place(i, slots, &x, &y);
		for (unsigned k = 0; k < ne; k++)
			if (ed[k].node == i)
				kind = ed[k].kind;
		if (i == nn) {
			snprintf(more, sizeof(more), "+%u more rows",
				 (unsigned)(rep->n > nn ? rep->n - nn : 0));
			lbl = more;
			kind = "more";
		}
		fprintf(f, "<g class=\"peer %s\"><circle cx=\"%.1f\" cy=\"%.1f\" r=\"30\" "
			   "fill=\"#eceff1\" stroke=\"#455a64\"/><text class=\"label\" x=\"%.1f\" "
			   "y=\"%.1f\" text-anchor=\"middle\">",
			kind, x, y, x, y + 46);
		xml(f, lbl);
		fprintf(f, "</text><text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" "
			   "font-size=\"11\" fill=\"#607d8b\">%s</text></g>\n",
			x, y + 4, kind);
	}
	fprintf(f, "<g class=\"endpoint\"><circle cx=\"%d\" cy=\"%d\" r=\"44\" fill=\"#1565c0\"/>"
		   "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" fill=\"#ffffff\" "
		   "font-weight=\"bold\">",
		W / 2, H / 2, W / 2, H / 2 + 5);
	xml(f, rep->ep.name[0] ? rep->ep.name : "?");
	fprintf(f, "</text></g>\n<text x=\"16\" y=\"26\" font-size=\"16\" font-weight=\"bold\">");
	xml(f, title);
	fprintf(f, " (%s): %u peers, %llu records</text>\n</svg>\n", flow_kind_name(rep->ep.kind),
		nn + (other ? 1 : 0), (unsigned long long)rep->records);
	free(ed);
	free(nodes);
	if (fclose(f) != 0) {
		free(buf);
		err_setx(e, ENOMEM, "flow picture: out of memory");
		return NULL;
	}
	if (len)
		*len = n;
	return buf;
}
