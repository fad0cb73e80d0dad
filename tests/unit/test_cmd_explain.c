/* tests/unit/test_cmd_explain.c: `routetrace explain` end to end (argument handling,
 * --json, --batch JSON lines, session changes inside a multi-statement text). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "proxy/cmd_explain.h"

#define FIX "tests/fixtures/movetables/"

/* Runs cmd_explain with stdout (and optionally stdin) redirected; returns the output
 * (caller frees) and the exit status in *rc. */
static char *
run(int *rc, const char *stdin_text, int argc, char **argv)
{
	FILE *out = tmpfile(), *in = NULL;
	int saved_out, saved_in = -1;
	long len;
	char *buf;

	assert_non_null(out);
	fflush(stdout);
	saved_out = dup(1);
	dup2(fileno(out), 1);
	if (stdin_text != NULL) {
		in = tmpfile();
		assert_non_null(in);
		fputs(stdin_text, in);
		fflush(in);
		rewind(in);
		saved_in = dup(0);
		dup2(fileno(in), 0);
		clearerr(stdin);
	}
	*rc = cmd_explain(argc, argv);
	fflush(stdout);
	dup2(saved_out, 1);
	close(saved_out);
	if (in != NULL) {
		dup2(saved_in, 0);
		close(saved_in);
		clearerr(stdin);
		fclose(in);
	}
	len = ftell(out);
	rewind(out);
	buf = calloc(1, (size_t)(len > 0 ? len : 0) + 1);
	assert_non_null(buf);
	if (len > 0)
		assert_int_equal(fread(buf, 1, (size_t)len, out), (size_t)len);
	fclose(out);
	return buf;
}

static void
test_json(void **state)
{
	char *argv[] = {"explain", "--vschema", FIX "04-switched.srvvschema.json", "--json",
			"--target", "@replica",
			"use sourcekeyspace; select * from t1; begin; delete from t2", NULL};
	int rc;
	char *out = run(&rc, NULL, 7, argv);
	json_error_t je;
	json_t *j = json_loads(out, 0, &je), *sts, *t;

	(void)state;
	assert_int_equal(rc, 0);
	assert_non_null(j);
	sts = json_object_get(j, "statements");
	assert_int_equal(json_array_size(sts), 4);
	assert_string_equal(json_string_value(json_object_get(json_array_get(sts, 0), "class")),
			    "use");
	/* USE changed the session to sourcekeyspace (PRIMARY) for what follows */
	t = json_array_get(json_object_get(json_array_get(sts, 1), "tables"), 0);
	assert_string_equal(json_string_value(json_object_get(t, "named")), "sourcekeyspace.t1");
	assert_string_equal(json_string_value(json_object_get(t, "reached")), "targetkeyspace.t1");
	assert_string_equal(json_string_value(json_object_get(t, "rule")), "sourcekeyspace.t1");
	assert_string_equal(json_string_value(json_object_get(t, "tablet_type")), "PRIMARY");
	assert_true(json_is_true(json_object_get(t, "redirected")));
	assert_true(json_is_null(json_object_get(json_array_get(sts, 3), "error")));
	json_decref(j);
	free(out);
}

static void
test_batch(void **state)
{
	char *argv[] = {"explain", "--vschema", FIX "02-rdonly-switched.debug-vschema.json",
			"--batch", NULL};
	const char *in = "{\"sql\": \"select * from t1\", \"target\": \"@rdonly\"}\n"
			 "\n"
			 "not json\n"
			 "{\"sql\": \"update t1 set a = 1; select 1\", \"target\": \"@replica\", "
			 "\"in_transaction\": true}\n";
	int rc;
	char *out = run(&rc, in, 4, argv), *line, *save = NULL;
	json_t *j[3];
	int n = 0;

	(void)state;
	assert_int_equal(rc, 0);
	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		assert_true(n < 3);
		j[n] = json_loads(line, 0, NULL);
		assert_non_null(j[n]);
		n++;
	}
	assert_int_equal(n, 3); /* the empty line is skipped, the bad one answered */
	{
		json_t *t = json_array_get(
		    json_object_get(json_array_get(json_object_get(j[0], "statements"), 0), "tables"),
		    0);

		assert_string_equal(json_string_value(json_object_get(t, "reached")),
				    "targetkeyspace.t1");
		assert_string_equal(json_string_value(json_object_get(t, "rule")), "t1@rdonly");
		assert_string_equal(json_string_value(json_object_get(t, "tablet_type")), "RDONLY");
		assert_true(json_is_true(json_object_get(t, "redirected")));
	}
	assert_non_null(strstr(json_string_value(json_object_get(j[1], "error")), "bad input"));
	assert_int_equal(json_array_size(json_object_get(j[1], "statements")), 0);
	{
		json_t *sts = json_object_get(j[2], "statements");

		assert_int_equal(json_array_size(sts), 2);
		assert_string_equal(json_string_value(json_object_get(json_array_get(sts, 0), "error")),
				    "VT09002: update statement with a replica target");
	}
	for (n = 0; n < 3; n++)
		json_decref(j[n]);
	free(out);
}

static void
test_text_and_errors(void **state)
{
	char *ok[] = {"explain", "--vschema", FIX "01-created.srvvschema.json", "--rules",
		      FIX "03-replica-switched.rules.json", "--target", "@replica",
		      "select * from t1", NULL};
	char *nofile[] = {"explain", "--vschema", FIX "nope.json", "select 1", NULL};
	char *noargs[] = {"explain", "select 1", NULL};
	char *badtarget[] = {"explain", "--vschema", FIX "01-created.srvvschema.json", "--target",
			     "ks[-80", "select 1", NULL};
	int rc;
	char *out;

	(void)state;
	out = run(&rc, NULL, 8, ok);
	assert_int_equal(rc, 0);
	/* --rules replaced the created-state rules with the replica-switched ones */
	assert_non_null(strstr(out, "t1 -> targetkeyspace.t1  rule: t1@replica"));
	free(out);
	out = run(&rc, NULL, 4, nofile);
	assert_int_equal(rc, 1);
	free(out);
	out = run(&rc, NULL, 2, noargs);
	assert_int_equal(rc, 2);
	free(out);
	out = run(&rc, NULL, 6, badtarget);
	assert_int_equal(rc, 2);
	free(out);
}

/* The guard's verdict per statement; block mode exits 3 when a cleanup script would be
 * refused, warn mode reports would_block and exits 0, an allow-list entry lets it pass. */
static void
test_guard_verdicts(void **state)
{
	char *block[] = {"explain", "--vschema", FIX "01-created.srvvschema.json", "--json",
			 "DROP TABLE targetkeyspace.t1; DROP TABLE sourcekeyspace.t3", NULL};
	char *warn[] = {"explain", "--guard", "warn", "--vschema", FIX "01-created.srvvschema.json",
			"DROP TABLE targetkeyspace.t1", NULL};
	char *allow[] = {"explain", "--allow", "targetkeyspace", "--vschema",
			 FIX "01-created.srvvschema.json", "TRUNCATE t2", NULL};
	int rc;
	char *out = run(&rc, NULL, 5, block);
	json_t *j = json_loads(out, 0, NULL), *sts = json_object_get(j, "statements");

	(void)state;
	assert_int_equal(rc, 3);
	json_t *g0 = json_object_get(json_array_get(sts, 0), "guard");
	json_t *g1 = json_object_get(json_array_get(sts, 1), "guard");
	assert_string_equal(json_string_value(json_object_get(g0, "verdict")), "deny");
	assert_non_null(strstr(json_string_value(json_object_get(g0, "reason")),
			       "which would drop sourcekeyspace.t1"));
	assert_string_equal(json_string_value(json_object_get(g1, "verdict")), "allow");
	json_decref(j);
	free(out);

	out = run(&rc, NULL, 6, warn);
	assert_int_equal(rc, 0);
	assert_non_null(strstr(out, "guard: would_block: routetrace: blocked DROP TABLE"));
	free(out);

	/* TRUNCATE t2 with no session keyspace: rule 't2' sends it to sourcekeyspace.t2 (a
	 * redirect, rule 1): the allow-list relaxes only rule 2, so it stays denied */
	out = run(&rc, NULL, 6, allow);
	assert_int_equal(rc, 3);
	free(out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_json),
	    cmocka_unit_test(test_batch),
	    cmocka_unit_test(test_text_and_errors),
	    cmocka_unit_test(test_guard_verdicts),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
