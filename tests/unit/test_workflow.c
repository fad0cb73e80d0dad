/* tests/unit/test_workflow.c: walking the MoveTables fixtures state by state, the
 * change records name the step, the keys that changed and where t1 now goes. */
#include "router/workflow.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "router/rules.h"

#define FX "tests/fixtures/movetables/"

static struct rules *
load(const char *state)
{
	char path[256], err[RULES_ERRLEN];

	snprintf(path, sizeof(path), FX "%s.srvvschema.json", state);
	struct rules *r = rules_load_file(path, NULL, err, sizeof(err));
	if (r == NULL) {
		fail_msg("%s: %s", path, err);
	}
	return r;
}

static json_t *
wf_of(json_t *rec, const char *table)
{
	size_t i;
	json_t *w;

	json_array_foreach(json_object_get(rec, "workflows"), i, w)
	{
		if (strcmp(json_string_value(json_object_get(w, "table")), table) == 0) {
			return w;
		}
	}
	return NULL;
}

static bool
has_line(json_t *rec, const char *field, const char *line)
{
	size_t i;
	json_t *v;

	json_array_foreach(json_object_get(rec, field), i, v)
	{
		if (strcmp(json_string_value(v), line) == 0) {
			return true;
		}
	}
	return false;
}

static void
expect_wf(json_t *rec, const char *table, const char *step, const char *p, const char *r,
	  const char *d)
{
	json_t *w = wf_of(rec, table);

	if (w == NULL) {
		fail_msg("no workflow entry for %s in %s", table, json_dumps(rec, 0));
	}
	assert_string_equal(json_string_value(json_object_get(w, "step")), step);
	assert_string_equal(json_string_value(json_object_get(w, "primary")), p);
	assert_string_equal(json_string_value(json_object_get(w, "replica")), r);
	assert_string_equal(json_string_value(json_object_get(w, "rdonly")), d);
}

#define S "sourcekeyspace"
#define T "targetkeyspace"
#define ARROW " \xe2\x86\x92 "

/* Steps through the states in order, one change record per state (rec[i]). */
static void
walk(struct workflow_memory *m, const char *const *states, int n, json_t **rec)
{
	struct rules *prev = NULL;

	for (int i = 0; i < n; i++) {
		struct rules *r = load(states[i]);
		rec[i] = json_object();
		workflow_describe_change(m, prev, r, rec[i]);
		rules_unref(prev);
		prev = r;
	}
	rules_unref(prev);
}

static void
drop(json_t **rec, int n)
{
	for (int i = 0; i < n; i++) {
		json_decref(rec[i]);
	}
}

/* Forward path: before -> created -> rdonly -> replica -> switched -> completed. */
static void
test_forward_cutover(void **state)
{
	(void)state;
	struct workflow_memory *m = workflow_memory_new();
	const char *states[] = {"00-before", "01-created", "02-rdonly-switched", "03-replica-switched",
				"04-switched", "06-completed"};
	json_t *rec[6];

	walk(m, states, 6, rec);
	assert_int_equal(json_array_size(json_object_get(rec[0], "workflows")), 0);
	expect_wf(rec[1], "t1", "created", S, S, S);
	assert_true(has_line(rec[1], "changes", "targetkeyspace.t1: (none)" ARROW S ".t1"));
	assert_int_equal(json_array_size(json_object_get(rec[1], "moved")), 0);
	expect_wf(rec[2], "t1", "reads_switched", S, S, T);
	assert_true(has_line(rec[2], "moved", "t1@rdonly: " S ARROW T));
	assert_true(has_line(rec[2], "changes", "t1@rdonly: " S ".t1" ARROW T ".t1"));
	assert_true(has_line(rec[2], "summary", "t1: reads switched for rdonly (" S ARROW T ")"));
	expect_wf(rec[3], "t2", "reads_switched", S, T, T);
	assert_true(has_line(rec[3], "moved", "t2@replica: " S ARROW T));
	expect_wf(rec[4], "t1", "switched", T, T, T);
	assert_true(has_line(rec[4], "moved", "t1@primary: " S ARROW T));
	assert_true(has_line(rec[4], "changes", "targetkeyspace.t1: " S ".t1" ARROW "(deleted)"));
	expect_wf(rec[5], "t1", "completed", T, T, T);
	drop(rec, 6);
	workflow_memory_free(m);
}

/* Back out: created -> switched -> reversed -> cancelled. */
static void
test_reverse_and_cancel(void **state)
{
	(void)state;
	struct workflow_memory *m = workflow_memory_new();
	const char *states[] = {"01-created", "04-switched", "05-reversed", "07-cancelled"};
	json_t *rec[4];

	walk(m, states, 4, rec);
	expect_wf(rec[2], "t1", "reversed", S, S, S);
	assert_true(has_line(rec[2], "moved", "t1@rdonly: " T ARROW S));
	expect_wf(rec[3], "t2", "cancelled", S, S, S);
	drop(rec, 4);
	workflow_memory_free(m);
}

/* Every format of the same state describes the same step. */
static void
test_step_alone(void **state)
{
	(void)state;
	static const struct {
		const char *state, *step;
	} cases[] = {
		{"00-before", "none"}, {"01-created", "created"}, {"02-rdonly-switched", "reads_switched"},
		{"03-replica-switched", "reads_switched"}, {"04-switched", "switched"},
		{"05-reversed", "switched"}, /* without memory a reverse looks like a switch to S */
		{"06-completed", "none"},
	};
	char path[256], err[RULES_ERRLEN];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (int f = 0; f < 2; f++) {
			snprintf(path, sizeof(path), FX "%s.%s.json", cases[i].state,
				 f ? "debug-vschema" : "srvvschema");
			struct rules *r = rules_load_file(path, NULL, err, sizeof(err));
			assert_non_null(r);
			if (strcmp(workflow_step(r, "t1"), cases[i].step) != 0) {
				fail_msg("%s: step %s, want %s", path, workflow_step(r, "t1"), cases[i].step);
			}
			rules_unref(r);
		}
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_forward_cutover),
		cmocka_unit_test(test_reverse_and_cancel),
		cmocka_unit_test(test_step_alone),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
