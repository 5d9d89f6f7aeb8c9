/* metrics — registry and Prometheus text format. */
#include "agent/metrics.h"

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define M_NAME_MAX 96
#define M_HELP_MAX 200
#define M_LV_MAX 160 /* label value(s), with the NUL */
#define M_LABELS_MAX 4 /* label names of one metric */

struct series {
	char lv[M_LV_MAX]; /* label value ("" for an unlabelled metric) */
	double v;	   /* value */
};

struct agent_metric {
	struct agent_metric *next;		/* registration order */
	enum agent_mtype type;			/* kind */
	char name[M_NAME_MAX];			/* metric name */
	char help[M_HELP_MAX];			/* HELP text */
	char label[M_NAME_MAX];			/* label name(s), comma-separated, "" none */
	unsigned n_series;			/* used entries of series[] */
	unsigned max_series;			/* entries of series[] */
	struct series *series;			/* counter/gauge values (heap) */
	unsigned n_bounds;			/* histogram: bucket bounds */
	double bounds[AGENT_M_BUCKETS_MAX];	/* their upper bounds */
	uint64_t buckets[AGENT_M_BUCKETS_MAX + 1]; /* non-cumulative counts, +Inf last */
	double sum;				/* histogram: sum of observations */
	uint64_t count;				/* histogram: observations */
};

struct agent_metrics {
	struct agent_metric *head; /* first registered */
	struct agent_metric *tail; /* last registered */
};

struct agent_metrics *agent_metrics_new(void)
{
	return calloc(1, sizeof(struct agent_metrics));
}

void agent_metrics_free(struct agent_metrics *r)
{
	if (!r)
		return;
	for (struct agent_metric *m = r->head, *n; m; m = n) {
		n = m->next;
		free(m->series);
		free(m);
	}
	free(r);
}

static bool name_ok(const char *s, bool colon)
{
	if (!s || !*s || strlen(s) >= M_NAME_MAX)
		return false;
	for (const char *p = s; *p; p++) {
		char c = *p;
		bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
			     (colon && c == ':');
		if (!alpha && !(p > s && c >= '0' && c <= '9'))
			return false;
	}
	return true;
}

/* One label name, or up to M_LABELS_MAX of them separated by commas. */
static bool labels_ok(const char *label)
{
	char one[M_NAME_MAX];
	unsigned n = 0;
	if (strlen(label) >= M_NAME_MAX)
		return false;
	for (const char *p = label;; n++) {
		const char *c = strchr(p, ',');
		size_t l = c ? (size_t)(c - p) : strlen(p);
		memcpy(one, p, l);
		one[l] = 0;
		if (n == M_LABELS_MAX || !name_ok(one, false) || strncmp(one, "__", 2) == 0)
			return false;
		if (!c)
			return true;
		p = c + 1;
	}
}

static struct agent_metric *reg(struct agent_metrics *r, const char *name, const char *help,
				enum agent_mtype type, const char *label, unsigned max_series)
{
	if (!r || !name_ok(name, true) || (label && !labels_ok(label)) || max_series == 0)
		return NULL;
	for (struct agent_metric *m = r->head; m; m = m->next)
		if (strcmp(m->name, name) == 0)
			return NULL;
	struct agent_metric *m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	m->series = calloc(type == AGENT_M_HISTOGRAM ? 1 : max_series, sizeof(*m->series));
	if (!m->series) {
		free(m);
		return NULL;
	}
	m->max_series = max_series;
	m->type = type;
	snprintf(m->name, sizeof(m->name), "%s", name);
	/* HELP: one line; backslash and newline escaped when printed */
	snprintf(m->help, sizeof(m->help), "%s", help ? help : "");
	if (label)
		snprintf(m->label, sizeof(m->label), "%s", label);
	if (r->tail)
		r->tail->next = m;
	else
		r->head = m;
	r->tail = m;
	return m;
}

struct agent_metric *agent_metric_new(struct agent_metrics *r, const char *name,
				      const char *help, enum agent_mtype type,
				      const char *label)
{
	return agent_metric_new_wide(r, name, help, type, label, AGENT_M_SERIES_MAX);
}

struct agent_metric *agent_metric_new_wide(struct agent_metrics *r, const char *name,
					   const char *help, enum agent_mtype type,
					   const char *labels, unsigned max_series)
{
	if (type == AGENT_M_HISTOGRAM)
		return NULL;
	return reg(r, name, help, type, labels, max_series);
}

struct agent_metric *agent_metric_histogram(struct agent_metrics *r, const char *name,
					    const char *help, const double *bounds, unsigned n)
{
	if (n == 0 || n > AGENT_M_BUCKETS_MAX)
		return NULL;
	for (unsigned i = 0; i < n; i++)
		if (!isfinite(bounds[i]) || (i && !(bounds[i] > bounds[i - 1])))
			return NULL;
	struct agent_metric *m = reg(r, name, help, AGENT_M_HISTOGRAM, NULL, 1);
	if (!m)
		return NULL;
	memcpy(m->bounds, bounds, n * sizeof(double));
	m->n_bounds = n;
	return m;
}

static struct series *series(struct agent_metric *m, const char *lv, bool create)
{
	if (!m || m->type == AGENT_M_HISTOGRAM)
		return NULL;
	if (!m->label[0])
		lv = "";
	else if (!lv)
		return NULL;
	for (unsigned i = 0; i < m->n_series; i++)
		if (strncmp(m->series[i].lv, lv, M_LV_MAX - 1) == 0)
			return &m->series[i];
	if (!create || m->n_series == m->max_series)
		return NULL;
	struct series *s = &m->series[m->n_series++];
	snprintf(s->lv, sizeof(s->lv), "%s", lv);
	s->v = 0;
	return s;
}

void agent_metric_add(struct agent_metric *m, const char *lv, double v)
{
	if (!(v >= 0) && m && m->type == AGENT_M_COUNTER)
		return;
	struct series *s = series(m, lv, true);
	if (s)
		s->v += v;
}

void agent_metric_set(struct agent_metric *m, const char *lv, double v)
{
	struct series *s = series(m, lv, true);
	if (s)
		s->v = v;
}

void agent_metric_clear(struct agent_metric *m)
{
	if (m && m->type != AGENT_M_HISTOGRAM)
		m->n_series = 0;
}

double agent_metric_get(const struct agent_metric *m, const char *lv)
{
	struct series *s = series((struct agent_metric *)m, lv, false);
	return s ? s->v : 0;
}

void agent_metric_observe(struct agent_metric *m, double v)
{
	if (!m || m->type != AGENT_M_HISTOGRAM || isnan(v))
		return;
	unsigned i = 0;
	while (i < m->n_bounds && v > m->bounds[i])
		i++;
	m->buckets[i]++;
	m->sum += v;
	m->count++;
}

/* A growing text buffer. */
struct sb {
	char *s;	/* text */
	size_t len, cap; /* used / allocated */
	bool oom;	/* an allocation failed */
};

static void sb_printf(struct sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(struct sb *b, const char *fmt, ...)
{
	if (b->oom)
		return;
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = true;
			return;
		}
		if (b->s && b->len + (size_t)n < b->cap) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = b->cap ? b->cap * 2 : 4096;
		while (cap < b->len + (size_t)n + 1)
			cap *= 2;
		char *ns = realloc(b->s, cap);
		if (!ns) {
			b->oom = true;
			return;
		}
		b->s = ns;
		b->cap = cap;
	}
}

/* Escape for HELP (\\ and \n) or label values (also \"). */
static void sb_esc(struct sb *b, const char *s, bool quote)
{
	for (; *s; s++) {
		if (*s == '\\')
			sb_printf(b, "\\\\");
		else if (*s == '\n')
			sb_printf(b, "\\n");
		else if (quote && *s == '"')
			sb_printf(b, "\\\"");
		else
			sb_printf(b, "%c", *s);
	}
}

/* name="value" pairs: label names split at ',', values at AGENT_M_LV_SEP (a missing
 * value is ""). */
static void sb_labels(struct sb *b, const char *names, const char *lv)
{
	for (const char *n = names; n;) {
		const char *nc = strchr(n, ',');
		const char *vc = lv ? strchr(lv, AGENT_M_LV_SEP) : NULL;
		size_t nl = nc ? (size_t)(nc - n) : strlen(n);
		size_t vl = !lv ? 0 : vc ? (size_t)(vc - lv) : strlen(lv);
		char v[M_LV_MAX];
		memcpy(v, lv ? lv : "", vl);
		v[vl] = 0;
		sb_printf(b, "%s%.*s=\"", n == names ? "" : ",", (int)nl, n);
		sb_esc(b, v, true);
		sb_printf(b, "\"");
		n = nc ? nc + 1 : NULL;
		lv = vc ? vc + 1 : NULL;
	}
}

static void sb_num(struct sb *b, double v)
{
	if (isinf(v))
		sb_printf(b, v > 0 ? "+Inf" : "-Inf");
	else if (isnan(v))
		sb_printf(b, "NaN");
	else if (v > -1e15 && v < 1e15 && v == (double)(long long)v)
		sb_printf(b, "%.0f", v);
	else
		sb_printf(b, "%.9g", v);
}

char *agent_metrics_format(const struct agent_metrics *r, size_t *len)
{
	static const char *const tn[] = { "counter", "gauge", "histogram" };
	struct sb b = { 0 };
	sb_printf(&b, "%s", "");
	for (const struct agent_metric *m = r->head; m; m = m->next) {
		sb_printf(&b, "# HELP %s ", m->name);
		sb_esc(&b, m->help, false);
		sb_printf(&b, "\n# TYPE %s %s\n", m->name, tn[m->type]);
		if (m->type == AGENT_M_HISTOGRAM) {
			uint64_t cum = 0;
			for (unsigned i = 0; i <= m->n_bounds; i++) {
				cum += m->buckets[i];
				sb_printf(&b, "%s_bucket{le=\"", m->name);
				sb_num(&b, i < m->n_bounds ? m->bounds[i] : INFINITY);
				sb_printf(&b, "\"} %llu\n", (unsigned long long)cum);
			}
			sb_printf(&b, "%s_sum ", m->name);
			sb_num(&b, m->sum);
			sb_printf(&b, "\n%s_count %llu\n", m->name, (unsigned long long)m->count);
			continue;
		}
		if (!m->label[0]) {
			sb_printf(&b, "%s ", m->name);
			sb_num(&b, m->n_series ? m->series[0].v : 0);
			sb_printf(&b, "\n");
			continue;
		}
		for (unsigned i = 0; i < m->n_series; i++) {
			sb_printf(&b, "%s{", m->name);
			sb_labels(&b, m->label, m->series[i].lv);
			sb_printf(&b, "} ");
			sb_num(&b, m->series[i].v);
			sb_printf(&b, "\n");
		}
	}
	if (b.oom) {
		free(b.s);
		return NULL;
	}
	*len = b.len;
	return b.s;
}
