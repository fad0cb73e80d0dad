/* proxy/metrics.h: labelled counters and gauges, rendered as Prometheus text (/metrics)
 * and as JSON (/stats).  One registry per process, used from the event-loop thread only.
 * Each family bounds its number of label sets: past the bound a sample is not recorded
 * but counted in routetrace_metrics_series_dropped_total, so a hostile workload (e.g.
 * endless distinct table names) cannot grow memory without bound. */
#ifndef RT_PROXY_METRICS_H
#define RT_PROXY_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evbuffer;
struct metrics;
struct metric_family;

enum metric_type { METRIC_COUNTER = 0, METRIC_GAUGE };

#define METRICS_MAX_LABELS 6

struct metrics *metrics_new(unsigned max_series_per_family);
void metrics_free(struct metrics *m);

/* Registers (or returns the existing) family.  Strings must outlive the registry
 * (string literals).  NULL on allocation failure or too many labels. */
struct metric_family *metrics_family(struct metrics *m, const char *name, const char *help,
				     enum metric_type type, unsigned nlabels,
				     const char *const *label_names);

/* Adds to a counter / sets a gauge for one label set (values copied).  Values may be
 * any bytes; they are escaped on output. */
void metric_add(struct metric_family *f, const char *const *label_values, uint64_t delta);
void metric_set(struct metric_family *f, const char *const *label_values, double value);

/* A handle on one label set, for counting into it often without the lookup: its
 * position in the family, created if new, valid for the registry's life (series are
 * never removed).  -1 when f is NULL or at its bound (use metric_add then, which counts
 * the sample as dropped). */
int metric_series(struct metric_family *f, const char *const *label_values);
/* Counts into a handle's series: one atomic add into this thread's shard of it, no lock
 * (the hot path of every lane; readers sum the shards). */
void metric_add_at(struct metric_family *f, int series, uint64_t delta);
/* Reads one label set's value (0 when absent); for tests and /health. */
double metric_get(const struct metric_family *f, const char *const *label_values);

/* Appends the Prometheus text exposition of every family. */
void metrics_render_prom(const struct metrics *m, struct evbuffer *out);

/* Appends {"family": [{"labels": {...}, "value": n}, ...], ...} as JSON. */
void metrics_render_json(const struct metrics *m, struct evbuffer *out);

#endif /* RT_PROXY_METRICS_H */
