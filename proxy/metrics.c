/* proxy/metrics.c: families of labelled series; each family keeps its series in
 * insertion order (stable output) with an open-addressing index over a hash of the
 * label values. */
#include "proxy/metrics.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <jansson.h>

#include "proxy/admin.h"
#include "proxy/json_util.h"

#define METRICS_MAX_FAMILIES 64
#define COUNT_CHUNK 64   /* metric_add_at's counters are allocated this many series at a time */
#define COUNT_SHARDS 16  /* ... each series with a counter per shard; a thread counts into its own */

struct metric_series {
	char **values;       /* nlabels copies */
	uint64_t hash;
	double value;
};

struct metric_family {
	struct metrics *owner;
	const char *name;
	const char *help;
	enum metric_type type;
	unsigned nlabels;
	const char *labels[METRICS_MAX_LABELS];
	struct metric_series *series; /* insertion order */
	unsigned nseries, cap;
	unsigned *index;             /* open addressing: series position + 1, 0 = empty */
	unsigned index_cap;          /* power of two, > 2 * nseries */
	uint64_t **counts;           /* metric_add_at's counters: chunks (by series position */
	unsigned ncount_chunks;      /* / COUNT_CHUNK) of COUNT_SHARDS x COUNT_CHUNK counters,
	                                made by metric_series, never moved, added to without
	                                the mutex */
};

/* One mutex for the registry: the loop lanes' tracers count into the same families.
 * Held for a hash lookup and an add, so it is rarely contended.  The per-statement counts
 * (metric_add_at, by a series handle) take no lock and share no cache line between
 * threads: each thread adds into its own shard of the series' counter (a shard's
 * counters are contiguous), and a reader sums the shards.  Series are never removed. */
struct metrics {
	pthread_mutex_t mu;
	struct metric_family fam[METRICS_MAX_FAMILIES];
	unsigned nfam;
	unsigned max_series;
	struct metric_family *dropped; /* routetrace_metrics_series_dropped_total */
};

static uint64_t
labels_hash(unsigned n, const char *const *v)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a over values, NUL-separated */

	for (unsigned i = 0; i < n; i++) {
		for (const unsigned char *p = (const unsigned char *)v[i]; *p; p++) {
			h = (h ^ *p) * 1099511628211ULL;
		}
		h = (h ^ 0xff) * 1099511628211ULL;
	}
	return h;
}

static bool
labels_equal(unsigned n, char *const *a, const char *const *b)
{
	for (unsigned i = 0; i < n; i++) {
		if (strcmp(a[i], b[i]) != 0) {
			return false;
		}
	}
	return true;
}

static struct metric_family *family_register(struct metrics *m, const char *name,
					     const char *help, enum metric_type type,
					     unsigned nlabels, const char *const *label_names);

struct metrics *
metrics_new(unsigned max_series_per_family)
{
	struct metrics *m = calloc(1, sizeof(*m));
	static const char *const fam_label[] = {"family"};

	if (m == NULL) {
		return NULL;
	}
	pthread_mutex_init(&m->mu, NULL);
	m->max_series = max_series_per_family ? max_series_per_family : 10000;
	m->dropped = metrics_family(m, "routetrace_metrics_series_dropped_total",
				    "Samples not recorded because a family reached its label-set bound",
				    METRIC_COUNTER, 1, fam_label);
	return m;
}

void
metrics_free(struct metrics *m)
{
	if (m == NULL) {
		return;
	}
	for (unsigned f = 0; f < m->nfam; f++) {
		struct metric_family *fam = &m->fam[f];
		for (unsigned s = 0; s < fam->nseries; s++) {
			for (unsigned l = 0; l < fam->nlabels; l++) {
				free(fam->series[s].values[l]);
			}
			free(fam->series[s].values);
		}
		free(fam->series);
		free(fam->index);
		for (unsigned c = 0; c < fam->ncount_chunks; c++) {
			free(fam->counts[c]);
		}
		free(fam->counts);
	}
	pthread_mutex_destroy(&m->mu);
	free(m);
}

struct metric_family *
metrics_family(struct metrics *m, const char *name, const char *help, enum metric_type type,
	       unsigned nlabels, const char *const *label_names)
{
	pthread_mutex_lock(&m->mu);
	struct metric_family *fam = family_register(m, name, help, type, nlabels, label_names);
	pthread_mutex_unlock(&m->mu);
	return fam;
}

static struct metric_family *
family_register(struct metrics *m, const char *name, const char *help, enum metric_type type,
		unsigned nlabels, const char *const *label_names)
{
	for (unsigned f = 0; f < m->nfam; f++) {
		if (strcmp(m->fam[f].name, name) == 0) {
			return &m->fam[f];
		}
	}
	if (m->nfam == METRICS_MAX_FAMILIES || nlabels > METRICS_MAX_LABELS) {
		return NULL;
	}
	struct metric_family *fam = &m->fam[m->nfam++];
	memset(fam, 0, sizeof(*fam));
	fam->owner = m;
	fam->name = name;
	fam->help = help;
	fam->type = type;
	fam->nlabels = nlabels;
	for (unsigned i = 0; i < nlabels; i++) {
		fam->labels[i] = label_names[i];
	}
	return fam;
}

static bool
family_reindex(struct metric_family *f, unsigned new_cap)
{
	unsigned *idx = calloc(new_cap, sizeof(*idx));

	if (idx == NULL) {
		return false;
	}
	for (unsigned s = 0; s < f->nseries; s++) {
		unsigned i = (unsigned)f->series[s].hash & (new_cap - 1);
		while (idx[i] != 0) {
			i = (i + 1) & (new_cap - 1);
		}
		idx[i] = s + 1;
	}
	free(f->index);
	f->index = idx;
	f->index_cap = new_cap;
	return true;
}

static struct metric_series *
family_find(const struct metric_family *f, uint64_t h, const char *const *v)
{
	if (f->index_cap == 0) {
		return NULL;
	}
	for (unsigned i = (unsigned)h & (f->index_cap - 1); f->index[i] != 0;
	     i = (i + 1) & (f->index_cap - 1)) {
		struct metric_series *s = &f->series[f->index[i] - 1];
		if (s->hash == h && labels_equal(f->nlabels, s->values, v)) {
			return s;
		}
	}
	return NULL;
}

static struct metric_series *family_series(struct metric_family *f, const char *const *v);

/* The family holds as many label sets as it may (the dropped-samples family never is). */
static bool
family_full(const struct metric_family *f)
{
	return f->nseries >= f->owner->max_series && f != f->owner->dropped;
}

/* This thread's shard: threads take them in turn (the loop lanes get one each, up to
 * COUNT_SHARDS lanes). */
static unsigned
count_shard(void)
{
	static unsigned next;
	static _Thread_local unsigned mine = COUNT_SHARDS;

	if (mine == COUNT_SHARDS) {
		mine = __atomic_fetch_add(&next, 1, __ATOMIC_RELAXED) % COUNT_SHARDS;
	}
	return mine;
}

/* Makes sure series position pos has its counters (mu held).  Published with release
 * stores: metric_add_at reads the pointers without the mutex. */
static bool
family_counter(struct metric_family *f, unsigned pos)
{
	unsigned c = pos / COUNT_CHUNK;

	if (f->counts == NULL) {
		/* enough chunks for the bound (no handle is ever taken on the dropped family,
		 * the one family without it: past the chunks, no counter and no handle) */
		unsigned n = (f->owner->max_series + COUNT_CHUNK - 1) / COUNT_CHUNK;
		uint64_t **arr = calloc(n, sizeof(*arr));
		if (arr == NULL) {
			return false;
		}
		f->ncount_chunks = n;
		__atomic_store_n(&f->counts, arr, __ATOMIC_RELEASE);
	}
	if (c >= f->ncount_chunks) {
		return false;
	}
	if (f->counts[c] == NULL) {
		uint64_t *chunk = calloc((size_t)COUNT_SHARDS * COUNT_CHUNK, sizeof(*chunk));
		if (chunk == NULL) {
			return false;
		}
		__atomic_store_n(&f->counts[c], chunk, __ATOMIC_RELEASE);
	}
	return true;
}

/* A series' value: what metric_add / metric_set left, plus what metric_add_at counted. */
static double
series_value(const struct metric_family *f, unsigned pos)
{
	const uint64_t *chunk = f->counts != NULL ? f->counts[pos / COUNT_CHUNK] : NULL;
	uint64_t n = 0;

	for (unsigned sh = 0; chunk != NULL && sh < COUNT_SHARDS; sh++) {
		n += __atomic_load_n(&chunk[sh * COUNT_CHUNK + pos % COUNT_CHUNK], __ATOMIC_RELAXED);
	}
	return f->series[pos].value + (double)n;
}

static struct metric_series *
family_insert(struct metric_family *f, uint64_t h, const char *const *v)
{
	if (family_full(f)) {
		const char *name[] = {f->name};
		struct metric_series *d = family_series(f->owner->dropped, name); /* mu held */
		if (d != NULL) {
			d->value += 1;
		}
		return NULL;
	}
	if (f->nseries == f->cap) {
		unsigned cap = f->cap ? f->cap * 2 : 8;
		struct metric_series *s = realloc(f->series, cap * sizeof(*s));
		if (s == NULL) {
			return NULL;
		}
		f->series = s;
		f->cap = cap;
	}
	if (2 * (f->nseries + 1) > f->index_cap &&
	    !family_reindex(f, f->index_cap ? f->index_cap * 2 : 16)) {
		return NULL;
	}
	struct metric_series *s = &f->series[f->nseries];
	s->values = calloc(f->nlabels ? f->nlabels : 1, sizeof(char *));
	if (s->values == NULL) {
		return NULL;
	}
	for (unsigned l = 0; l < f->nlabels; l++) {
		s->values[l] = strdup(v[l] ? v[l] : "");
		if (s->values[l] == NULL) {
			while (l-- > 0) {
				free(s->values[l]);
			}
			free(s->values);
			return NULL;
		}
	}
	s->hash = h;
	s->value = 0;
	unsigned i = (unsigned)h & (f->index_cap - 1);
	while (f->index[i] != 0) {
		i = (i + 1) & (f->index_cap - 1);
	}
	f->index[i] = ++f->nseries;
	return s;
}

/* Label values v with NULL read as "", into vals; returns their hash. */
static uint64_t
labels_norm(const struct metric_family *f, const char *const *v, const char **vals)
{
	for (unsigned i = 0; i < f->nlabels; i++) {
		vals[i] = v[i] ? v[i] : "";
	}
	return labels_hash(f->nlabels, vals);
}

static struct metric_series *
family_lookup(const struct metric_family *f, const char *const *v)
{
	const char *vals[METRICS_MAX_LABELS];
	uint64_t h = labels_norm(f, v, vals);

	return family_find(f, h, vals);
}

static struct metric_series *
family_series(struct metric_family *f, const char *const *v)
{
	const char *vals[METRICS_MAX_LABELS];
	uint64_t h = labels_norm(f, v, vals);
	struct metric_series *s = family_find(f, h, vals);

	return s ? s : family_insert(f, h, vals);
}

static void
series_update(struct metric_family *f, const char *const *label_values, double v, bool add)
{
	struct metric_series *s;

	if (f == NULL) {
		return;
	}
	pthread_mutex_lock(&f->owner->mu);
	if ((s = family_series(f, label_values)) != NULL) {
		s->value = add ? s->value + v : v;
	}
	pthread_mutex_unlock(&f->owner->mu);
}

void
metric_add(struct metric_family *f, const char *const *label_values, uint64_t delta)
{
	series_update(f, label_values, (double)delta, true);
}

int
metric_series(struct metric_family *f, const char *const *label_values)
{
	struct metric_series *s;

	if (f == NULL) {
		return -1;
	}
	pthread_mutex_lock(&f->owner->mu);
	/* at the bound, an existing series only: the caller's metric_add counts the drop */
	s = family_full(f) ? family_lookup(f, label_values) : family_series(f, label_values);
	int at = s && family_counter(f, (unsigned)(s - f->series)) ? (int)(s - f->series) : -1;
	pthread_mutex_unlock(&f->owner->mu);
	return at;
}

void
metric_add_at(struct metric_family *f, int series, uint64_t delta)
{
	if (f == NULL || series < 0) {
		return;
	}
	uint64_t **arr = __atomic_load_n(&f->counts, __ATOMIC_ACQUIRE);
	if (arr == NULL || (unsigned)series >= f->ncount_chunks * COUNT_CHUNK) {
		return; /* not a handle metric_series gave */
	}
	uint64_t *chunk = __atomic_load_n(&arr[series / COUNT_CHUNK], __ATOMIC_ACQUIRE);
	if (chunk != NULL) {
		__atomic_fetch_add(&chunk[count_shard() * COUNT_CHUNK + series % COUNT_CHUNK], delta,
				   __ATOMIC_RELAXED);
	}
}

void
metric_set(struct metric_family *f, const char *const *label_values, double value)
{
	series_update(f, label_values, value, false);
}

double
metric_get(const struct metric_family *f, const char *const *label_values)
{
	if (f == NULL) {
		return 0;
	}
	pthread_mutex_lock(&f->owner->mu);
	const struct metric_series *s = family_lookup(f, label_values);
	double v = s ? series_value(f, (unsigned)(s - f->series)) : 0;
	pthread_mutex_unlock(&f->owner->mu);
	return v;
}

void
metrics_render_prom(const struct metrics *m, struct evbuffer *out)
{
	const char *labels[METRICS_MAX_LABELS][2];

	pthread_mutex_lock((pthread_mutex_t *)&m->mu);
	for (unsigned f = 0; f < m->nfam; f++) {
		const struct metric_family *fam = &m->fam[f];
		prom_header(out, fam->name, fam->type == METRIC_COUNTER ? "counter" : "gauge",
			    fam->help);
		for (unsigned s = 0; s < fam->nseries; s++) {
			for (unsigned l = 0; l < fam->nlabels; l++) {
				labels[l][0] = fam->labels[l];
				labels[l][1] = fam->series[s].values[l];
			}
			prom_sample(out, fam->name, labels, fam->nlabels, series_value(fam, s));
		}
	}
	pthread_mutex_unlock((pthread_mutex_t *)&m->mu);
}

void
metrics_render_json(const struct metrics *m, struct evbuffer *out)
{
	json_t *root = json_object();

	pthread_mutex_lock((pthread_mutex_t *)&m->mu);
	for (unsigned f = 0; f < m->nfam; f++) {
		const struct metric_family *fam = &m->fam[f];
		json_t *arr = json_array();
		for (unsigned s = 0; s < fam->nseries; s++) {
			json_t *labels = json_object();
			for (unsigned l = 0; l < fam->nlabels; l++) {
				const char *v = fam->series[s].values[l];
				json_object_set_new(labels, fam->labels[l],
						    json_string_lossy(v, strlen(v)));
			}
			json_array_append_new(arr, json_pack("{s:o,s:f}", "labels", labels, "value",
							     series_value(fam, s)));
		}
		json_object_set_new(root, fam->name, arr);
	}
	pthread_mutex_unlock((pthread_mutex_t *)&m->mu);
	char *txt = json_dumps(root, JSON_COMPACT | JSON_ENSURE_ASCII);
	if (txt != NULL) {
		evbuffer_add(out, txt, strlen(txt));
		free(txt);
	}
	json_decref(root);
}
