/* tests/unit/test_rules.c: loading the routing model (formats, per-rule errors as vtgate
 * builds them, JSON errors, order independence, refcounts, 10k rules). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "router/rules.h"

#define FIX "tests/fixtures/movetables/"

static const char *const states[] = {"00-before",   "01-created", "02-rdonly-switched",
				     "03-replica-switched", "04-switched", "05-reversed",
				     "06-completed", "07-cancelled"};
#define NSTATES (sizeof(states) / sizeof(states[0]))

static struct rules *
load2(const char *state, const char *fmt, const char *rules_fmt)
{
	char a[256], b[256], err[RULES_ERRLEN];
	struct rules *r;

	snprintf(a, sizeof(a), FIX "%s.%s.json", state, fmt);
	snprintf(b, sizeof(b), FIX "%s.%s.json", state, rules_fmt ? rules_fmt : "");
	r = rules_load_file(a, rules_fmt ? b : NULL, err, sizeof(err));
	if (r == NULL)
		fail_msg("load %s: %s", a, err);
	return r;
}

static void
test_fixture_formats(void **state)
{
	size_t i;
	uint64_t prev = 0;

	(void)state;
	for (i = 0; i < NSTATES; i++) {
		struct rules *s = load2(states[i], "srvvschema", NULL);
		struct rules *d = load2(states[i], "debug-vschema", NULL);
		struct rules *x = load2(states[i], "srvvschema", "rules");

		assert_int_equal(rules_format(s), RULES_FMT_SRVVSCHEMA);
		assert_int_equal(rules_format(d), RULES_FMT_DEBUG_VSCHEMA);
		assert_int_equal(rules_count(s), rules_count(d));
		assert_int_equal(rules_count(s), rules_count(x));
		/* same resolved state in every format -> same content hash */
		assert_true(rules_hash(s) == rules_hash(d));
		assert_true(rules_hash(s) == rules_hash(x));
		/* consecutive states differ */
		if (i > 0 && strcmp(states[i], "07-cancelled") != 0)
			assert_true(rules_hash(s) != prev);
		prev = rules_hash(s);
		assert_int_equal(rules_keyspace_count(s), 2);
		assert_true(rules_generation(d) > rules_generation(s));
		rules_unref(s);
		rules_unref(d);
		rules_unref(x);
	}
}

static void
test_rule_counts(void **state)
{
	/* ROUTING_SPEC d: 18 rules after Create, 16 after switch / reverse, 0 after Complete */
	static const size_t want[NSTATES] = {0, 18, 18, 18, 16, 16, 0, 0};
	size_t i;

	(void)state;
	for (i = 0; i < NSTATES; i++) {
		struct rules *r = load2(states[i], "srvvschema", NULL);

		assert_int_equal(rules_count(r), want[i]);
		rules_unref(r);
	}
}

static struct rules *
load_str(const char *json, char *err, size_t errlen)
{
	return rules_load_buffer(json, strlen(json), "mem.json", NULL, 0, NULL, err, errlen);
}

static void
expect_rule(const struct rules *r, const char *key, enum rule_kind kind, const char *ks,
	    const char *table_or_error)
{
	struct rule_view v;

	if (!rules_table_rule(r, key, strlen(key), &v))
		fail_msg("no rule %s", key);
	if (v.kind != kind)
		fail_msg("rule %s: kind %d want %d (error %s)", key, v.kind, kind,
			 v.error ? v.error : "-");
	if (kind == RULE_TARGET) {
		assert_string_equal(rules_keyspace_name(r, v.ks), ks);
		assert_string_equal(v.table, table_or_error);
	} else if (kind == RULE_ERROR) {
		assert_string_equal(v.error, table_or_error);
	}
}

/* ROUTING_SPEC a.3: rule build errors, stored per rule. */
static void
test_rule_errors(void **state)
{
	const char *json =
	    "{\"keyspaces\": {\"u\": {\"sharded\": false},"
	    " \"s\": {\"sharded\": true, \"tables\": {\"have\": {}}}},"
	    " \"routing_rules\": {\"rules\": ["
	    "  {\"from_table\": \"two\", \"to_tables\": [\"u.a\", \"u.b\"]},"
	    "  {\"from_table\": \"off\", \"to_tables\": []},"
	    "  {\"from_table\": \"noks\", \"to_tables\": [\"nope.t\"]},"
	    "  {\"from_table\": \"unq\", \"to_tables\": [\"t1\"]},"
	    "  {\"from_table\": \"dots\", \"to_tables\": [\"a.b.c\"]},"
	    "  {\"from_table\": \"missing\", \"to_tables\": [\"s.nothere\"]},"
	    "  {\"from_table\": \"found\", \"to_tables\": [\"s.have\"]},"
	    "  {\"from_table\": \"anyname\", \"to_tables\": [\"u.whatever\"]},"
	    "  {\"from_table\": \"dup\", \"to_tables\": [\"u.x\"]},"
	    "  {\"from_table\": \"dup\", \"to_tables\": [\"u.y\"]},"
	    "  {\"from_table\": \"thenoff\", \"to_tables\": [\"u.x\"]},"
	    "  {\"from_table\": \"thenoff\", \"to_tables\": []},"
	    "  {\"from_table\": \"offthen\", \"to_tables\": []},"
	    "  {\"from_table\": \"offthen\", \"to_tables\": [\"u.x\"]},"
	    "  {\"from_table\": \"ks.t1@rdonly\", \"to_tables\": [\"u.t1\"]},"
	    "  {\"from_table\": \"bq\", \"to_tables\": [\"`u`.`t q`\"]}"
	    "]}}";
	char err[RULES_ERRLEN];
	struct rules *r = load_str(json, err, sizeof(err));

	(void)state;
	if (r == NULL)
		fail_msg("%s", err);
	expect_rule(r, "two", RULE_ERROR, NULL, "table two has more than one target: [u.a u.b]");
	expect_rule(r, "off", RULE_DISABLED, NULL, NULL);
	expect_rule(r, "noks", RULE_ERROR, NULL, "VT05003: unknown database 'nope' in vschema");
	expect_rule(r, "unq", RULE_ERROR, NULL, "table t1 must be qualified");
	expect_rule(r, "dots", RULE_ERROR, NULL, "invalid table name: a.b.c");
	expect_rule(r, "missing", RULE_ERROR, NULL, "table s.nothere not found");
	expect_rule(r, "found", RULE_TARGET, "s", "have");
	expect_rule(r, "anyname", RULE_TARGET, "u", "whatever");
	expect_rule(r, "dup", RULE_ERROR, NULL, "duplicate rule for entry dup");
	expect_rule(r, "thenoff", RULE_DISABLED, NULL, NULL);
	expect_rule(r, "offthen", RULE_ERROR, NULL, "duplicate rule for entry offthen");
	expect_rule(r, "ks.t1@rdonly", RULE_TARGET, "u", "t1");
	expect_rule(r, "bq", RULE_TARGET, "u", "t q");
	rules_unref(r);
}

static void
test_debug_format(void **state)
{
	const char *json =
	    "{\"mirror_rules\": {}, \"routing_rules\": {\"t1\": [\"a.t1\"], \"bad\": \"VT05003: "
	    "unknown database 'noks' in vschema\", \"off\": []},"
	    " \"keyspaces\": {\"a\": {\"tables\": {\"t1\": {\"name\": \"t1\"}}}, \"b\": {}},"
	    " \"shard_routing_rules\": {\"a.-80\": \"b\"},"
	    " \"keyspace_routing_rules\": {\"a@replica\": \"b\"}}";
	char err[RULES_ERRLEN];
	struct rules *r = load_str(json, err, sizeof(err));
	const char *to;

	(void)state;
	if (r == NULL)
		fail_msg("%s", err);
	assert_int_equal(rules_format(r), RULES_FMT_DEBUG_VSCHEMA);
	expect_rule(r, "t1", RULE_TARGET, "a", "t1");
	expect_rule(r, "bad", RULE_ERROR, NULL, "VT05003: unknown database 'noks' in vschema");
	expect_rule(r, "off", RULE_DISABLED, NULL, NULL);
	assert_true(rules_shard_rule(r, "a.-80", 5, &to));
	assert_string_equal(to, "b");
	assert_true(rules_keyspace_rule(r, "a@replica", 9, &to));
	assert_string_equal(to, "b");
	assert_false(rules_keyspace_rule(r, "a", 1, &to));
	rules_unref(r);
}

static void
test_rules_files(void **state)
{
	const char *vs = "{\"keyspaces\": {\"s\": {}, \"t\": {}}}";
	const char *ksr = "{\"rules\": [{\"from_keyspace\": \"s@rdonly\", \"to_keyspace\": \"t\"}]}";
	const char *shr = "{\"rules\": [{\"from_keyspace\": \"t\", \"to_keyspace\": \"s\", "
			  "\"shard\": \"-80\"}]}";
	char err[RULES_ERRLEN];
	const char *to;
	struct rules *r;

	(void)state;
	r = rules_load_buffer(vs, strlen(vs), "vs", ksr, strlen(ksr), "ksr", err, sizeof(err));
	assert_non_null(r);
	assert_true(rules_keyspace_rule(r, "s@rdonly", 8, &to));
	assert_string_equal(to, "t");
	rules_unref(r);
	r = rules_load_buffer(vs, strlen(vs), "vs", shr, strlen(shr), "shr", err, sizeof(err));
	assert_non_null(r);
	assert_true(rules_shard_rule(r, "t.-80", 5, &to));
	rules_unref(r);
	/* a bare GetRoutingRules file alone: no keyspaces, so every target is VT05003 */
	r = load2("01-created", "rules", NULL);
	assert_int_equal(rules_format(r), RULES_FMT_RULES_ONLY);
	expect_rule(r, "t1", RULE_ERROR, NULL,
		    "VT05003: unknown database 'sourcekeyspace' in vschema");
	rules_unref(r);
}

struct bad_case {
	const char *json;
	const char *want; /* substring of the message */
};

static const struct bad_case bad_cases[] = {
	{"{\"keyspaces\": {", "mem.json:1:15"},
	{"{\"keyspaces\": {}}  x", "mem.json:1:"},
	{"[1, 2]", "top level is not a JSON object"},
	{"", "mem.json:"},
	{"{\"a\": 1, \"a\": 2}", "duplicate"},
	{"{\"keyspaces\": 5}", "keyspaces: not an object"},
	{"{\"keyspaces\": {\"k\": 1}}", "keyspaces.k: not an object"},
	{"{\"keyspaces\": {}, \"routing_rules\": {\"rules\": [{\"to_tables\": []}]}}",
	 "routing_rules.rules[0]: from_table is not a string"},
	{"{\"keyspaces\": {}, \"routing_rules\": {\"rules\": [7]}}", "routing_rules.rules[0]"},
	{"{\"keyspaces\": {}, \"routing_rules\": {\"x\": 7}}", "neither an array"},
	{"{\"keyspaces\": {}, \"keyspace_routing_rules\": {\"rules\": [{\"from_keyspace\": 1}]}}",
	 "keyspace_routing_rules.rules[0]"},
	{"{\"rules\": 3}", "rules"},
	{"{\"keyspaces\": {\"k\": {\"tables\": []}}}", "tables: not an object"},
};

static void
test_bad_json(void **state)
{
	char err[RULES_ERRLEN];
	struct rules *good, *r;
	size_t i;

	(void)state;
	good = load2("01-created", "srvvschema", NULL);
	for (i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		err[0] = '\0';
		r = load_str(bad_cases[i].json, err, sizeof(err));
		if (r != NULL)
			fail_msg("case %zu accepted", i);
		if (strstr(err, bad_cases[i].want) == NULL)
			fail_msg("case %zu: '%s' lacks '%s'", i, err, bad_cases[i].want);
	}
	/* the previous snapshot is untouched and still answers */
	assert_int_equal(rules_count(good), 18);
	r = rules_load_file("tests/fixtures/movetables/does-not-exist.json", NULL, err, sizeof(err));
	assert_null(r);
	assert_non_null(strstr(err, "does-not-exist.json"));
	rules_unref(good);
}

static void
test_globals(void **state)
{
	const char *json =
	    "{\"keyspaces\": {"
	    " \"a\": {\"tables\": {\"x\": {}, \"only_a\": {}, \"ref\": {\"type\": \"reference\","
	    "  \"source\": \"b.ref\"}}},"
	    " \"b\": {\"sharded\": true, \"tables\": {\"x\": {}, \"ref\": {}}},"
	    " \"c\": {\"require_explicit_routing\": true, \"tables\": {\"only_a\": {}}},"
	    " \"d\": {\"sharded\": true}}}";
	char err[RULES_ERRLEN];
	struct rules *r = load_str(json, err, sizeof(err));

	(void)state;
	assert_non_null(r);
	assert_int_equal(rules_global_table(r, "x", 1), RULES_AMBIGUOUS);
	assert_int_equal(rules_global_table(r, "only_a", 6), rules_keyspace_find(r, "a", 1));
	assert_int_equal(rules_global_table(r, "ref", 3), rules_keyspace_find(r, "b", 1));
	assert_int_equal(rules_global_table(r, "none", 4), -1);
	assert_string_equal(rules_keyspace_name(r, rules_first_keyspace(r)), "a");
	assert_string_equal(rules_keyspace_name(r, rules_any_keyspace(r)), "b");
	rules_unref(r);
}

/* 10,000 rules in random order load, and the hash does not depend on the order. */
static char *
gen_rules(size_t n, unsigned seed)
{
	size_t cap = n * 96 + 256, w, i;
	char *buf = malloc(cap);
	size_t *perm = malloc(n * sizeof(*perm));

	assert_non_null(buf);
	assert_non_null(perm);
	for (i = 0; i < n; i++)
		perm[i] = i;
	srand(seed);
	for (i = n - 1; i > 0; i--) {
		size_t j = (size_t)rand() % (i + 1), t = perm[i];

		perm[i] = perm[j];
		perm[j] = t;
	}
	w = (size_t)snprintf(buf, cap, "{\"keyspaces\": {\"s\": {}, \"t\": {}}, "
				       "\"routing_rules\": {\"rules\": [");
	for (i = 0; i < n; i++)
		w += (size_t)snprintf(buf + w, cap - w,
				      "%s{\"from_table\": \"s.tbl%zu@replica\", \"to_tables\": "
				      "[\"t.tbl%zu\"]}",
				      i ? "," : "", perm[i], perm[i]);
	snprintf(buf + w, cap - w, "]}}");
	free(perm);
	return buf;
}

static void
test_10k_order_independent(void **state)
{
	char err[RULES_ERRLEN];
	char *a = gen_rules(10000, 1), *b = gen_rules(10000, 2);
	struct rules *ra = load_str(a, err, sizeof(err)), *rb = load_str(b, err, sizeof(err));
	struct rule_view v;

	(void)state;
	assert_non_null(ra);
	assert_non_null(rb);
	assert_int_equal(rules_count(ra), 10000);
	assert_true(strcmp(a, b) != 0);
	assert_true(rules_hash(ra) == rules_hash(rb));
	assert_true(rules_table_rule(ra, "s.tbl9999@replica", 17, &v));
	assert_string_equal(v.table, "tbl9999");
	rules_unref(ra);
	rules_unref(rb);
	free(a);
	free(b);
}

static void
test_many_keyspace_rules(void **state)
{
	size_t n = 5000, cap = n * 80 + 128, w, i;
	char *buf = malloc(cap), err[RULES_ERRLEN];
	struct rules *r;
	const char *to;

	(void)state;
	assert_non_null(buf);
	w = (size_t)snprintf(buf, cap, "{\"keyspaces\": {\"t\": {}}, \"keyspace_routing_rules\": "
				       "{\"rules\": [");
	for (i = 0; i < n; i++)
		w += (size_t)snprintf(buf + w, cap - w,
				      "%s{\"from_keyspace\": \"k%zu@replica\", \"to_keyspace\": \"t\"}",
				      i ? "," : "", i);
	snprintf(buf + w, cap - w, "]}}");
	r = load_str(buf, err, sizeof(err));
	assert_non_null(r);
	assert_int_equal(rules_keyspace_rule_count(r), n);
	assert_true(rules_keyspace_rule(r, "k4999@replica", 13, &to));
	assert_string_equal(to, "t");
	assert_true(rules_keyspace_rule(r, "k0@replica", 10, &to));
	rules_unref(r);
	free(buf);
}

static void
test_refcount(void **state)
{
	struct rules *r = load2("01-created", "srvvschema", NULL);

	(void)state;
	assert_ptr_equal(rules_ref(r), r);
	rules_unref(r);
	assert_int_equal(rules_count(r), 18); /* still alive: one reference left */
	rules_unref(r);
	rules_unref(NULL);
	assert_null(rules_ref(NULL));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fixture_formats), cmocka_unit_test(test_rule_counts),
	    cmocka_unit_test(test_rule_errors),     cmocka_unit_test(test_debug_format),
	    cmocka_unit_test(test_rules_files),     cmocka_unit_test(test_bad_json),
	    cmocka_unit_test(test_globals),         cmocka_unit_test(test_10k_order_independent),
	    cmocka_unit_test(test_refcount),        cmocka_unit_test(test_many_keyspace_rules),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
