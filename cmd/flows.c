/* flows role: the blast-radius report of a VM (or an address) from flow records.
 *
 *   kvnet flows (--vm NS/NAME | --ip ADDR) [--since DURATION] [-o table|json|csv|svg]
 *               [--out FILE] [--max-rows N] FILE...
 *
 * FILE is a flow log (flows/flows.h: one JSON record per line, as the agents write them;
 * "-" is stdin). Records from several nodes' logs are merged, so a VM's report continues
 * across migrations (records name the VM, not its pod). --since keeps records active in
 * the last DURATION (N followed by s, m, h or d; default: everything). -o svg writes the
 * picture (flows/svg.h). The table's POLICY column names the policies that admitted a
 * row ("+N" for those cut), or its reason: "no-policy", "ingress-default-deny:POLICIES"
 * (the policies isolating that direction), "unenforced", "-" (unknown); json carries
 * "policies", "policies_cut" and "reason" apart, csv "policy" (the names) and "reason".
 * A line that is not a record is named on stderr (file:line and why) and skipped; the
 * count is printed at the end.
 *
 * Exit status: 0 report written; 1 a file could not be read or written; 2 usage error.
 */
#include "cmd/cmd.h"
#include "flows/report.h"
#include "flows/svg.h"
#include "lib/err.h"
#include "lib/file.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define FL_MAX_FILE (1u << 30)
#define FL_WARN_MAX 10

static int fl_usage(FILE *f, int status)
{
	fprintf(f,
		"usage: kvnet flows (--vm NS/NAME | --ip ADDR) [--since DURATION]\n"
		"                   [-o table|json|csv|svg] [--out FILE] [--max-rows N] FILE...\n"
		"  --vm NS/NAME    the VM (or pod) whose peers to report, on every node\n"
		"  --ip ADDR       or the endpoint address\n"
		"  --since D       records active in the last D (30s, 10m, 2h, 1d); default all\n"
		"  -o FORMAT       table (default), json, csv, or svg (the picture)\n"
		"  --out FILE      write there instead of stdout\n"
		"  --max-rows N    at most N rows (default 100000)\n"
		"  FILE            flow logs (JSON lines) of any nodes; - is stdin\n");
	return status;
}

static int fl_duration_ms(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || v > 100000000ULL)
		return -EINVAL;
	switch (*end) {
	case 's': v *= 1000ULL; break;
	case 'm': v *= 60000ULL; break;
	case 'h': v *= 3600000ULL; break;
	case 'd': v *= 86400000ULL; break;
	default: return -EINVAL;
	}
	if (end[1])
		return -EINVAL;
	*out = v;
	return 0;
}

static uint64_t fl_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* stdin into a malloc'd buffer (at most FL_MAX_FILE bytes). */
static int fl_read_stdin(char **out, size_t *len, struct err *e)
{
	size_t cap = 1 << 16, n = 0, got;
	char *buf = malloc(cap), *nb;
	while (buf && (got = fread(buf + n, 1, cap - n, stdin)) > 0) {
		n += got;
		if (n == cap) {
			if (cap >= FL_MAX_FILE) {
				free(buf);
				return err_setx(e, EFBIG, "stdin: more than %u bytes", FL_MAX_FILE);
			}
			nb = realloc(buf, cap * 2);
			if (!nb)
				break;
			buf = nb, cap *= 2;
		}
	}
	if (!buf || n == cap || ferror(stdin)) {
		free(buf);
		return err_setx(e, EIO, "stdin: read failed or out of memory");
	}
	*out = buf, *len = n;
	return 0;
}

/* Write text to path through a temporary file and a rename. */
static int fl_write(const char *path, const char *text, size_t n, struct err *e)
{
	char tmp[4096];
	FILE *f;
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return err_setx(e, ENAMETOOLONG, "%s: name too long", path);
	f = fopen(tmp, "w");
	if (!f)
		return err_set(e, errno, "%s: open", tmp);
	if (fwrite(text, 1, n, f) != n || fclose(f) != 0) {
		unlink(tmp);
		return err_setx(e, EIO, "%s: write failed", tmp);
	}
	if (rename(tmp, path) < 0) {
		unlink(tmp);
		return err_set(e, errno, "%s: rename", path);
	}
	return 0;
}

/* Merge every record line of text into rep; *bad counts what was skipped. */
static void fl_merge(struct flow_report *rep, const char *name, char *text, size_t n,
		     unsigned long *bad)
{
	unsigned long line = 0;
	for (char *p = text, *end = text + n; p < end;) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
		struct flow_rec r;
		uint64_t t0, t1;
		struct err e = { 0 };
		line++;
		if (len && p[len - 1] == '\r')
			len--;
		if (len == 0) {
			/* blank line */
		} else if (flow_line_parse(p, len, &r, &t0, &t1, &e) < 0) {
			if (++*bad <= FL_WARN_MAX)
				fprintf(stderr, "kvnet flows: %s:%lu: skipped: %s\n", name, line,
					e.msg);
		} else if (flow_report_add(rep, &r) == -ENOMEM) {
			fprintf(stderr, "kvnet flows: out of memory\n");
			exit(1);
		}
		p += len + (nl ? (size_t)(nl - p - len) + 1 : 0);
		if (!nl)
			break;
	}
}

int cmd_flows(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "vm", required_argument, NULL, 'v' },	    { "ip", required_argument, NULL, 'i' },
		{ "since", required_argument, NULL, 's' },  { "out", required_argument, NULL, 'w' },
		{ "max-rows", required_argument, NULL, 'm' }, { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct flow_query q;
	struct flow_report rep;
	const char *fmt = "table", *out = NULL, *vm = NULL, *ip = NULL;
	unsigned long bad = 0, max_rows = 100000;
	uint64_t since = 0;
	char *text;
	size_t n;
	int c, status = 0;
	struct err e = { 0 };

	memset(&q, 0, sizeof(q));
	optind = 1;
	while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
		switch (c) {
		case 'v': vm = optarg; break;
		case 'i': ip = optarg; break;
		case 'o': fmt = optarg; break;
		case 'w': out = optarg; break;
		case 's':
			if (fl_duration_ms(optarg, &since) < 0) {
				fprintf(stderr, "kvnet flows: --since %s: want N followed by s, m, h or d\n",
					optarg);
				return 2;
			}
			break;
		case 'm': {
			char *end;
			max_rows = strtoul(optarg, &end, 10);
			if (*end || max_rows == 0 || max_rows > 1000000) {
				fprintf(stderr, "kvnet flows: --max-rows %s: want 1..1000000\n", optarg);
				return 2;
			}
			break;
		}
		case 'h': return fl_usage(stdout, 0);
		default: return fl_usage(stderr, 2);
		}
	}
	if (!!vm == !!ip || optind == argc)
		return fl_usage(stderr, 2);
	if (vm) {
		const char *sl = strchr(vm, '/');
		if (!sl || sl == vm || !sl[1] || (size_t)(sl - vm) > FLOW_NAME_MAX ||
		    strlen(sl + 1) > FLOW_NAME_MAX || strchr(sl + 1, '/')) {
			fprintf(stderr, "kvnet flows: --vm %s: want NAMESPACE/NAME\n", vm);
			return 2;
		}
		memcpy(q.ns, vm, (size_t)(sl - vm));
		snprintf(q.name, sizeof(q.name), "%s", sl + 1);
	} else if (!ip_parse(ip, &q.ip)) {
		fprintf(stderr, "kvnet flows: --ip %s: not an IPv4 or IPv6 address\n", ip);
		return 2;
	}
	if (strcmp(fmt, "table") && strcmp(fmt, "json") && strcmp(fmt, "csv") &&
	    strcmp(fmt, "svg")) {
		fprintf(stderr, "kvnet flows: -o %s: want table, json, csv or svg\n", fmt);
		return 2;
	}
	if (since)
		q.since_ms = fl_now_ms() - since;
	flow_report_init(&rep, &q, (unsigned)max_rows);
	for (int i = optind; i < argc; i++) {
		int rc = strcmp(argv[i], "-") == 0 ? fl_read_stdin(&text, &n, &e)
						   : file_read(argv[i], FL_MAX_FILE, &text, &n, &e);
		if (rc < 0) {
			fprintf(stderr, "kvnet flows: %s\n", e.msg);
			flow_report_free(&rep);
			return 1;
		}
		fl_merge(&rep, argv[i], text, n, &bad);
		free(text);
	}
	flow_report_sort(&rep);
	if (strcmp(fmt, "svg") == 0)
		text = flow_report_svg(&rep, &n, &e);
	else
		text = flow_report_text(&rep, strcmp(fmt, "json") == 0  ? FLOW_FMT_JSON
					      : strcmp(fmt, "csv") == 0 ? FLOW_FMT_CSV
									: FLOW_FMT_TABLE,
					&n, &e);
	if (!text) {
		fprintf(stderr, "kvnet flows: %s\n", e.msg);
		flow_report_free(&rep);
		return 1;
	}
	if (out ? fl_write(out, text, n, &e) < 0
		: fwrite(text, 1, n, stdout) != n) {
		fprintf(stderr, "kvnet flows: %s\n", out ? e.msg : "stdout: write failed");
		status = 1;
	}
	if (bad)
		fprintf(stderr, "kvnet flows: %lu line%s skipped\n", bad, bad == 1 ? "" : "s");
	if (rep.dropped)
		fprintf(stderr, "kvnet flows: %llu records not shown: more than %lu rows\n",
			(unsigned long long)rep.dropped, max_rows);
	free(text);
	flow_report_free(&rep);
	return status;
}
