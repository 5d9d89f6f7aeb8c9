/* metrics — a tiny registry of Prometheus metrics and its text exposition format 0.0.4.
 *
 *   struct agent_metric *m = agent_metric_new(reg, "kvnet_migrations_total",
 *                "Live migrations handled, by outcome.", AGENT_M_COUNTER, "outcome");
 *   agent_metric_add(m, "succeeded", 1);
 *   struct agent_metric *h = agent_metric_histogram(reg, "kvnet_announce_to_route_seconds",
 *                "Announcement seen to route installed.", bounds, n_bounds);
 *   agent_metric_observe(h, 0.000087);
 *
 * Output (agent_metrics_format):
 *
 *   # HELP kvnet_migrations_total Live migrations handled, by outcome.
 *   # TYPE kvnet_migrations_total counter
 *   kvnet_migrations_total{outcome="succeeded"} 1
 *
 * Metrics are printed in registration order, series of a labelled metric in the order
 * their label values first appeared. A metric lives as long as its registry. Values are
 * doubles (counters hold integers exactly up to 2^53).
 */
#ifndef KVNET_AGENT_METRICS_H
#define KVNET_AGENT_METRICS_H

#include <stddef.h>
#include <stdint.h>

enum agent_mtype {
	AGENT_M_COUNTER,   /* only goes up */
	AGENT_M_GAUGE,	   /* set to the current value */
	AGENT_M_HISTOGRAM, /* observations in cumulative buckets */
};

#define AGENT_M_BUCKETS_MAX 24 /* histogram buckets, +Inf excluded */
#define AGENT_M_SERIES_MAX 32  /* label values per labelled metric (agent_metric_new) */
#define AGENT_M_LV_SEP '\x1f'  /* separates the values of a metric with several labels */

struct agent_metrics;
struct agent_metric;

struct agent_metrics *agent_metrics_new(void);
void agent_metrics_free(struct agent_metrics *r);

/* Register a counter or gauge: name [a-zA-Z_:][a-zA-Z0-9_:]*, label NULL (one series)
 * or one label name. NULL when out of memory, the name or label is invalid, or the name
 * is taken. */
struct agent_metric *agent_metric_new(struct agent_metrics *r, const char *name,
				      const char *help, enum agent_mtype type,
				      const char *label);
/* The same with up to 4 label names separated by commas ("namespace,pod,direction") and
 * room for max_series series. A series' label value is then the values in that order
 * joined by AGENT_M_LV_SEP ("ns\x1fpod\x1fingress"); together at most 159 bytes. */
struct agent_metric *agent_metric_new_wide(struct agent_metrics *r, const char *name,
					   const char *help, enum agent_mtype type,
					   const char *labels, unsigned max_series);
/* Register a histogram with n ascending upper bounds (seconds or whatever the name
 * says; +Inf is implied). NULL as above, or when the bounds are not ascending or n is
 * 0 or over AGENT_M_BUCKETS_MAX. */
struct agent_metric *agent_metric_histogram(struct agent_metrics *r, const char *name,
					    const char *help, const double *bounds, unsigned n);

/* Counter: add v (>= 0) to the series of label value lv (NULL for an unlabelled metric).
 * Gauge: agent_metric_set. A new label value beyond AGENT_M_SERIES_MAX is dropped. */
void agent_metric_add(struct agent_metric *m, const char *lv, double v);
void agent_metric_set(struct agent_metric *m, const char *lv, double v);
/* Forget every series of a counter or gauge (what is exported is then only what is set
 * again): for series that follow a changing set of objects. */
void agent_metric_clear(struct agent_metric *m);
/* Current value of a series (0 if it does not exist). */
double agent_metric_get(const struct agent_metric *m, const char *lv);
/* Histogram: one observation. */
void agent_metric_observe(struct agent_metric *m, double v);

/* The whole registry in text format into a malloc'd NUL-terminated string (*len its
 * length). NULL when out of memory. */
char *agent_metrics_format(const struct agent_metrics *r, size_t *len);

#endif
