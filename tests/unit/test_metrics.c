/* tests/unit/test_metrics.c: labelled series, Prometheus text and JSON output, the
 * label-set bound, and lossy JSON strings. */
#include "proxy/metrics.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <jansson.h>

#include "proxy/json_util.h"

static char *
render(struct metrics *m, bool json)
{
	struct evbuffer *b = evbuffer_new();
	size_t n;

	if (json) {
		metrics_render_json(m, b);
	} else {
		metrics_render_prom(m, b);
	}
	n = evbuffer_get_length(b);
	char *s = malloc(n + 1);
	evbuffer_remove(b, s, n);
	s[n] = 0;
	evbuffer_free(b);
	return s;
}

static void
test_counters_and_prom_text(void **state)
{
	(void)state;
	struct metrics *m = metrics_new(100);
	static const char *const lbl[] = {"table", "keyspace"};
	struct metric_family *f = metrics_family(m, "rt_statements_total", "Statements", METRIC_COUNTER, 2, lbl);
	const char *a[] = {"t1", "sourcekeyspace"};
	const char *b[] = {"t\"2\\\n", "targetkeyspace"};

	assert_ptr_equal(f, metrics_family(m, "rt_statements_total", "x", METRIC_COUNTER, 2, lbl));
	metric_add(f, a, 2);
	metric_add(f, a, 3);
	metric_add(f, b, 1);
	assert_true(metric_get(f, a) == 5);
	assert_true(metric_get(f, b) == 1);
	char *txt = render(m, false);
	assert_non_null(strstr(txt, "# TYPE rt_statements_total counter\n"));
	assert_non_null(strstr(txt, "rt_statements_total{table=\"t1\",keyspace=\"sourcekeyspace\"} 5\n"));
	assert_non_null(strstr(txt, "rt_statements_total{table=\"t\\\"2\\\\\\n\",keyspace=\"targetkeyspace\"} 1\n"));
	free(txt);
	metrics_free(m);
}

static void
test_series_bound_counts_drops(void **state)
{
	(void)state;
	struct metrics *m = metrics_new(10);
	static const char *const lbl[] = {"table"};
	struct metric_family *f = metrics_family(m, "rt_x_total", "X", METRIC_COUNTER, 1, lbl);
	char name[32];

	for (int i = 0; i < 1000; i++) {
		snprintf(name, sizeof(name), "t%d", i);
		const char *v[] = {name};
		metric_add(f, v, 1);
	}
	const char *t0[] = {"t0"}, *t999[] = {"t999"}, *fam[] = {"rt_x_total"};
	assert_true(metric_get(f, t0) == 1);
	assert_true(metric_get(f, t999) == 0);
	struct metric_family *d = metrics_family(m, "routetrace_metrics_series_dropped_total", "", METRIC_COUNTER, 1, lbl);
	assert_true(metric_get(d, fam) == 990);
	metrics_free(m);
}

/* A handle counts into the same series metric_add finds; at the bound a new label set
 * gets none and its samples are counted as dropped once each, through metric_add. */
static void
test_series_handle(void **state)
{
	(void)state;
	struct metrics *m = metrics_new(2);
	static const char *const lbl[] = {"table", "keyspace"};
	struct metric_family *f = metrics_family(m, "rt_h_total", "H", METRIC_COUNTER, 2, lbl);
	const char *a[] = {"t1", "ks"}, *b[] = {"t2", NULL}, *b2[] = {"t2", ""}, *c[] = {"t3", "ks"};

	int ia = metric_series(f, a), ib = metric_series(f, b);
	assert_true(ia >= 0 && ib >= 0 && ia != ib);
	assert_int_equal(metric_series(f, a), ia);
	assert_int_equal(metric_series(f, b2), ib);
	metric_add_at(f, ia, 4);
	metric_add(f, a, 1);
	metric_add_at(f, ib, 2);
	assert_true(metric_get(f, a) == 5);
	assert_true(metric_get(f, b2) == 2);

	assert_int_equal(metric_series(f, c), -1);
	metric_add_at(f, -1, 7);
	metric_add(f, c, 1);
	const char *fam[] = {"rt_h_total"};
	struct metric_family *d = metrics_family(m, "routetrace_metrics_series_dropped_total", "", METRIC_COUNTER, 1, lbl);
	assert_true(metric_get(d, fam) == 1);
	assert_true(metric_get(f, c) == 0);
	assert_int_equal(metric_series(NULL, a), -1);
	metrics_free(m);
}

static void
test_json_output_is_valid_with_binary_labels(void **state)
{
	(void)state;
	struct metrics *m = metrics_new(100);
	static const char *const lbl[] = {"table"};
	struct metric_family *f = metrics_family(m, "rt_g", "G", METRIC_GAUGE, 1, lbl);
	const char *v[] = {"bad\xff\xfe"};

	metric_set(f, v, 2.5);
	char *txt = render(m, true);
	json_error_t e;
	json_t *j = json_loads(txt, 0, &e);
	assert_non_null(j);
	json_t *s = json_array_get(json_object_get(j, "rt_g"), 0);
	assert_true(json_real_value(json_object_get(s, "value")) == 2.5);
	assert_string_equal(json_string_value(json_object_get(json_object_get(s, "labels"), "table")),
			    "bad\xef\xbf\xbd\xef\xbf\xbd");
	json_decref(j);
	free(txt);
	metrics_free(m);
}

static void
test_json_string_lossy(void **state)
{
	(void)state;
	json_t *j = json_string_lossy("ok \xc3\xa9 \xed\xa0\x80 \xf4\x90\x80\x80 \xc0\xaf", 18);
	/* é kept; surrogate, > U+10FFFF and overlong each replaced byte by byte */
	const char *s = json_string_value(j);
	assert_non_null(s);
	assert_true(strncmp(s, "ok \xc3\xa9 \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd ", 15) == 0);
	json_decref(j);
	j = json_string_lossy("a\0b", 3);
	assert_string_equal(json_string_value(j), "a\xef\xbf\xbd" "b");
	json_decref(j);
}

/* Lanes count into handles without the registry mutex while another thread adds label
 * sets (growing the family's arrays) and renders: no count is lost. */
struct counting {
	struct metric_family *f;
	int series[4];
};

static void *
count_thread(void *arg)
{
	struct counting *c = arg;

	for (int i = 0; i < 200000; i++) {
		metric_add_at(c->f, c->series[i % 4], 1);
	}
	return NULL;
}

static void
test_handles_count_without_lock(void **state)
{
	(void)state;
	static const char *const names[] = {"k"};
	struct metrics *m = metrics_new(5000);
	struct counting c = {.f = metrics_family(m, "c_total", "help", METRIC_COUNTER, 1, names)};
	pthread_t th[3];
	char v[32];

	for (int i = 0; i < 4; i++) {
		snprintf(v, sizeof(v), "hot%d", i);
		const char *l[] = {v};
		c.series[i] = metric_series(c.f, l);
		assert_true(c.series[i] >= 0);
	}
	for (int i = 0; i < 3; i++) {
		assert_int_equal(pthread_create(&th[i], NULL, count_thread, &c), 0);
	}
	for (int i = 0; i < 3000; i++) { /* past several counter chunks and reallocations */
		snprintf(v, sizeof(v), "cold%d", i);
		const char *l[] = {v};
		metric_add(c.f, l, 1);
		if (i % 500 == 0) {
			free(render(m, i % 1000 == 0));
		}
	}
	for (int i = 0; i < 3; i++) {
		pthread_join(th[i], NULL);
	}
	for (int i = 0; i < 4; i++) {
		snprintf(v, sizeof(v), "hot%d", i);
		const char *l[] = {v};
		assert_true(metric_get(c.f, l) == 3 * 200000 / 4);
	}
	const char *cold[] = {"cold2999"};
	assert_true(metric_get(c.f, cold) == 1);
	metrics_free(m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counters_and_prom_text),
		cmocka_unit_test(test_series_bound_counts_drops),
		cmocka_unit_test(test_series_handle),
		cmocka_unit_test(test_json_output_is_valid_with_binary_labels),
		cmocka_unit_test(test_json_string_lossy),
		cmocka_unit_test(test_handles_count_without_lock),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
