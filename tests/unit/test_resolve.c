/* tests/unit/test_resolve.c: the resolver against every MoveTables fixture state x tablet
 * type x name form (ROUTING_SPEC section d), in all three formats, plus keyspace routing
 * rules, shard-targeted sessions, disabled and ambiguous tables, case sensitivity,
 * system-schema sessions, dual, DDL fallbacks and statement-level errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "router/classify.h"
#include "router/resolve.h"
#include "router/rules.h"
#include "router/target.h"

#define FIX "tests/fixtures/movetables/"
#define S "sourcekeyspace"
#define T "targetkeyspace"

static struct sql_stmt g_st;
static struct route_result g_res;

static struct rules *
load_fix(const char *state, int fmt)
{
	char a[256], b[256], err[RULES_ERRLEN];
	struct rules *r;

	snprintf(a, sizeof(a), FIX "%s.%s.json", state,
		 fmt == 1 ? "debug-vschema" : "srvvschema");
	snprintf(b, sizeof(b), FIX "%s.rules.json", state);
	r = rules_load_file(a, fmt == 2 ? b : NULL, err, sizeof(err));
	if (r == NULL)
		fail_msg("%s", err);
	return r;
}

static struct rules *
load_str(const char *json)
{
	char err[RULES_ERRLEN];
	struct rules *r = rules_load_buffer(json, strlen(json), "mem", NULL, 0, NULL, err,
					    sizeof(err));

	if (r == NULL)
		fail_msg("%s", err);
	return r;
}

/* Classifies sql and resolves it with the given target text. */
static const struct route_result *
run(const struct rules *r, const char *target, bool in_tx, const char *sql)
{
	static struct vt_target sess;
	char err[128];

	if (!vt_target_parse(target, strlen(target), VT_TT_PRIMARY, &sess, err, sizeof(err)))
		fail_msg("target %s: %s", target, err);
	sql_classify(sql, strlen(sql), 0, &g_st);
	route_resolve(r, &sess, in_tx, &g_st, &g_res);
	return &g_res;
}

static const char *
reached(const struct route_table *t)
{
	static char buf[600];

	return t->reached_ks ? route_reached_str(t, buf, sizeof(buf)) : "ERR";
}

/* --- the MoveTables matrix (ROUTING_SPEC section d) ----------------------------------- */

struct state_row {
	const char *state;
	const char *ks[3]; /* primary, replica, rdonly: keyspace for t1 / S.t1 / T.t1 */
	const char *plain; /* unqualified t1, when different from ks[] (after Complete/Cancel) */
	const char *qs;    /* S.t1 when different */
	const char *qt;    /* T.t1 when different */
};

static const struct state_row rows[] = {
	{"00-before", {S, S, S}, S, S, T},
	{"01-created", {S, S, S}, NULL, NULL, NULL},
	{"02-rdonly-switched", {S, S, T}, NULL, NULL, NULL},
	{"03-replica-switched", {S, T, T}, NULL, NULL, NULL},
	{"04-switched", {T, T, T}, NULL, NULL, NULL},
	{"05-reversed", {S, S, S}, NULL, NULL, NULL},
	{"06-completed", {NULL, NULL, NULL}, T, S, T},
	{"07-cancelled", {NULL, NULL, NULL}, S, S, T},
};

static const char *const tts[3] = {"primary", "replica", "rdonly"};

/* Expected deciding rule key for a form in states 01..05 ("" = no rule). */
static void
want_rule(const char *state, const char *qual, int tti, char *out, size_t len)
{
	bool switched = strcmp(state, "04-switched") == 0;
	bool reversed = strcmp(state, "05-reversed") == 0;

	if (tti > 0) {
		snprintf(out, len, "%s%s%s@%s", qual, qual[0] ? "." : "", "t1", tts[tti]);
		return;
	}
	if ((switched && strcmp(qual, T) == 0) || (reversed && strcmp(qual, S) == 0)) {
		out[0] = '\0'; /* key deleted: the keyspace is hit directly */
		return;
	}
	snprintf(out, len, "%s%s%s", qual, qual[0] ? "." : "", "t1");
}

static void
check_one(const struct rules *r, const char *target, const char *sql, const char *want_ks,
	  const char *rule_or_null, const char *ctx)
{
	const struct route_result *res = run(r, target, false, sql);
	char want[128];

	if (res->ntables != 1)
		fail_msg("%s: %s: %u tables", ctx, sql, res->ntables);
	snprintf(want, sizeof(want), "%s.t1", want_ks);
	if (strcmp(reached(&res->tables[0]), want) != 0 || res->error != NULL)
		fail_msg("%s [%s] %s: reached %s want %s (error %s)", ctx, target, sql,
			 reached(&res->tables[0]), want, res->error ? res->error : "-");
	if (rule_or_null != NULL) {
		const char *got = res->tables[0].rule ? res->tables[0].rule : "";

		if (strcmp(got, rule_or_null) != 0)
			fail_msg("%s [%s] %s: rule '%s' want '%s'", ctx, target, sql, got,
				 rule_or_null);
	}
}

static void
test_movetables_matrix(void **state)
{
	size_t i;
	int fmt, tti;
	unsigned checks = 0;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		for (fmt = 0; fmt < 3; fmt++) {
			struct rules *r = load_fix(rows[i].state, fmt);

			for (tti = 0; tti < 3; tti++) {
				const struct state_row *w = &rows[i];
				const char *ks = w->ks[tti];
				bool has_rules = ks != NULL && strcmp(w->state, "00-before") != 0;
				char ctx[96], tgt[64], rule[96];

				snprintf(ctx, sizeof(ctx), "%s fmt%d", w->state, fmt);
				snprintf(tgt, sizeof(tgt), "@%s", tts[tti]);
				want_rule(w->state, "", tti, rule, sizeof(rule));
				check_one(r, tgt, "select * from t1", w->plain ? w->plain : ks,
					  has_rules ? rule : "", ctx);
				want_rule(w->state, S, tti, rule, sizeof(rule));
				check_one(r, tgt, "select * from sourcekeyspace.t1", w->qs ? w->qs : ks,
					  has_rules ? rule : "", ctx);
				want_rule(w->state, T, tti, rule, sizeof(rule));
				check_one(r, tgt, "select * from targetkeyspace.t1",
					  w->qt ? w->qt : ks, has_rules ? rule : "", ctx);
				/* USE-keyspace forms: unqualified t1 uses the qualified keys only */
				snprintf(tgt, sizeof(tgt), "%s@%s", S, tts[tti]);
				want_rule(w->state, S, tti, rule, sizeof(rule));
				check_one(r, tgt, "select * from t1", w->qs ? w->qs : ks,
					  has_rules ? rule : "", ctx);
				snprintf(tgt, sizeof(tgt), "%s@%s", T, tts[tti]);
				want_rule(w->state, T, tti, rule, sizeof(rule));
				check_one(r, tgt, "select * from t1", w->qt ? w->qt : ks,
					  has_rules ? rule : "", ctx);
				/* backticked qualifier, target-string qualifier (its @type unused) */
				snprintf(tgt, sizeof(tgt), "@%s", tts[tti]);
				check_one(r, tgt, "select * from `sourcekeyspace@primary`.`t1`",
					  w->qs ? w->qs : ks, NULL, ctx);
				checks += 6;
			}
			rules_unref(r);
		}
	}
	assert_int_equal(checks, 8 * 3 * 3 * 6);
}

/* All three formats give identical resolutions for a mixed set of statements. */
static void
test_formats_identical(void **state)
{
	static const char *const sqls[] = {
	    "select * from t1 join t2 join t3", "select * from sourcekeyspace.t2, targetkeyspace.t3",
	    "drop table targetkeyspace.t1",     "update t2 set a = 1",
	    "select 1",                         "select * from nosuch.t1",
	    "insert into t9 values (1)",        "rename table t1 to t7"};
	static const char *const targets[] = {"", "@replica", "@rdonly", S, T "@replica"};
	size_t i, si, ti, k;
	char a[4096], b[4096];

	(void)state;
	for (i = 1; i < 8; i++) {
		struct rules *r[3];
		char sname[32];

		snprintf(sname, sizeof(sname), "0%zu", i);
		for (k = 0; k < 3; k++)
			r[k] = load_fix(rows[i].state, (int)k);
		for (si = 0; si < sizeof(sqls) / sizeof(sqls[0]); si++) {
			for (ti = 0; ti < sizeof(targets) / sizeof(targets[0]); ti++) {
				for (k = 0; k < 3; k++) {
					const struct route_result *res =
					    run(r[k], targets[ti], false, sqls[si]);
					size_t w = 0;
					unsigned j;
					char *dst = k == 0 ? a : b;

					w += (size_t)snprintf(dst + w, 4096 - w, "%s|",
							      res->error ? res->error : "-");
					for (j = 0; j < res->ntables; j++)
						w += (size_t)snprintf(
						    dst + w, 4096 - w, "%s,%s,%x;",
						    reached(&res->tables[j]),
						    res->tables[j].rule ? res->tables[j].rule : "-",
						    res->tables[j].flags);
					if (k > 0 && strcmp(a, b) != 0)
						fail_msg("%s fmt%zu [%s] %s:\n %s\n %s", rows[i].state,
							 k, targets[ti], sqls[si], a, b);
				}
			}
		}
		for (k = 0; k < 3; k++)
			rules_unref(r[k]);
	}
}

/* --- hand-built vschemas ---------------------------------------------------------------- */

static void
test_keyspace_rules(void **state)
{
	struct rules *r = load_str(
	    "{\"keyspaces\": {\"s\": {}, \"t\": {}, \"u\": {}},"
	    " \"routing_rules\": {\"rules\": [{\"from_table\": \"t.x\", \"to_tables\": [\"u.x\"]}]},"
	    " \"keyspace_routing_rules\": {\"rules\": ["
	    "  {\"from_keyspace\": \"s@replica\", \"to_keyspace\": \"t\"},"
	    "  {\"from_keyspace\": \"s\", \"to_keyspace\": \"s\"},"
	    "  {\"from_keyspace\": \"t\", \"to_keyspace\": \"u\"}]}}");
	const struct route_result *res;

	(void)state;
	res = run(r, "@replica", false, "select * from s.a");
	assert_string_equal(reached(&res->tables[0]), "t.a");
	assert_true(res->tables[0].flags & ROUTE_T_KS_RULE);
	assert_true(res->tables[0].flags & ROUTE_T_REDIRECTED);
	res = run(r, "", false, "select * from s.a");
	assert_string_equal(reached(&res->tables[0]), "s.a");
	assert_false(res->tables[0].flags & ROUTE_T_REDIRECTED);
	/* rdonly: no s@rdonly key, so the bare s key applies */
	res = run(r, "@rdonly", false, "select * from s.a");
	assert_string_equal(reached(&res->tables[0]), "s.a");
	/* applied once, no chaining: s@replica -> t, and t -> u is not followed; but the
	 * table rule for the rewritten keyspace (t.x) is */
	res = run(r, "s@replica", false, "select * from b");
	assert_string_equal(reached(&res->tables[0]), "t.b");
	res = run(r, "s@replica", false, "select * from x");
	assert_string_equal(reached(&res->tables[0]), "u.x");
	assert_string_equal(res->tables[0].rule, "t.x");
	rules_unref(r);
}

static void
test_shard_targeted(void **state)
{
	struct rules *r = load_fix("04-switched", 0);
	const struct route_result *res;

	(void)state;
	res = run(r, S ":-80", false, "select * from t1 join " S ".t2 join other.t3");
	assert_int_equal(res->ntables, 3);
	assert_string_equal(reached(&res->tables[0]), S ".t1");
	assert_null(res->tables[0].rule);
	assert_true(res->tables[0].flags & ROUTE_T_SHARD_TARGETED);
	assert_false(res->tables[1].flags & ROUTE_T_FOREIGN_QUALIFIER);
	assert_true(res->tables[2].flags & ROUTE_T_FOREIGN_QUALIFIER);
	assert_null(res->error);
	res = run(r, S "[-80]@replica", false, "drop table t1");
	assert_string_equal(reached(&res->tables[0]), S ".t1");
	assert_true(res->flags & ROUTE_T_SHARD_TARGETED);
	rules_unref(r);
}

static const char *ks2 =
    "{\"keyspaces\": {"
    " \"main\": {\"tables\": {\"dup\": {}, \"m1\": {}}},"
    " \"other\": {\"tables\": {\"dup\": {}, \"o1\": {}}},"
    " \"zsharded\": {\"sharded\": true, \"tables\": {\"z1\": {}, \"dup\": {}}},"
    " \"hidden\": {\"require_explicit_routing\": true, \"tables\": {\"h1\": {}}}},"
    " \"routing_rules\": {\"rules\": ["
    "  {\"from_table\": \"off\", \"to_tables\": []},"
    "  {\"from_table\": \"main.off\", \"to_tables\": []},"
    "  {\"from_table\": \"t1\", \"to_tables\": [\"other.t1\"]},"
    "  {\"from_table\": \"T1\", \"to_tables\": [\"main.T1\"]},"
    "  {\"from_table\": \"broken\", \"to_tables\": [\"nowhere.t\"]},"
    "  {\"from_table\": \"p@primary\", \"to_tables\": [\"other.p\"]}]}}";

struct rcase {
	const char *target;
	const char *sql;
	const char *reached;   /* first table, "ERR" on error */
	uint32_t flags;        /* must be set on the first table */
	const char *error;     /* statement error, NULL for none */
};

static const struct rcase rcases[] = {
	{"", "select * from off", "ERR", ROUTE_T_DISABLED, "table off has been disabled"},
	{"main", "select * from off", "ERR", ROUTE_T_DISABLED, "table off has been disabled"},
	{"", "select * from dup", "ERR", ROUTE_T_AMBIGUOUS, "ambiguous table reference: dup"},
	{"", "select * from m1", "main.m1", 0, NULL},
	{"", "select * from z1", "zsharded.z1", 0, NULL},
	{"", "select * from h1", "ERR", ROUTE_T_UNKNOWN_TABLE, "table h1 not found"},
	{"", "select * from hidden.h1", "hidden.h1", 0, NULL},
	{"", "select * from nope", "ERR", ROUTE_T_UNKNOWN_TABLE, "table nope not found"},
	{"", "select * from zsharded.nope", "ERR", ROUTE_T_UNKNOWN_TABLE, "table nope not found"},
	{"", "select * from main.anything", "main.anything", ROUTE_T_SYNTHETIC, NULL},
	{"", "select * from nosuch.t", "ERR", ROUTE_T_UNKNOWN_KEYSPACE,
	 "VT05003: unknown database 'nosuch' in vschema"},
	/* case-sensitive keys */
	{"", "select * from t1", "other.t1", ROUTE_T_RULE | ROUTE_T_REDIRECTED, NULL},
	{"", "select * from T1", "main.T1", ROUTE_T_RULE, NULL},
	/* with a session keyspace the bare key t1 is never used */
	{"main", "select * from t1", "main.t1", ROUTE_T_SYNTHETIC, NULL},
	{"main", "select * from dup", "main.dup", 0, NULL},
	/* @primary keys are honoured for table rules */
	{"", "select * from p", "other.p", ROUTE_T_RULE, NULL},
	{"@replica", "select * from p", "ERR", ROUTE_T_UNKNOWN_TABLE, "table p not found"},
	/* rule with a build error surfaces when hit */
	{"", "select * from broken", "ERR", ROUTE_T_RULE_ERROR,
	 "VT05003: unknown database 'nowhere' in vschema"},
	/* information_schema as session keyspace -> AnyKeyspace (first sharded) */
	{"information_schema", "select * from z1", "zsharded.z1", ROUTE_T_ANY_KEYSPACE, NULL},
	{"information_schema", "select * from m1", "ERR", ROUTE_T_UNKNOWN_TABLE, "table m1 not found"},
	{"", "select * from information_schema.tables", "zsharded.tables", ROUTE_T_SYSTEM_SCHEMA,
	 NULL},
	{"", "select * from MySQL.user", "zsharded.user", ROUTE_T_SYSTEM_SCHEMA, NULL},
	/* dual */
	{"", "select 1", "hidden.dual", ROUTE_T_DUAL, NULL},
	{"other@replica", "select 1", "other.dual", ROUTE_T_DUAL, NULL},
	{"information_schema", "select now()", "zsharded.dual", ROUTE_T_DUAL, NULL},
	{"", "select * from main.dual", "main.dual", ROUTE_T_SYNTHETIC, NULL},
	/* DDL fallbacks (section c) */
	{"main", "create table newt (id int)", "main.newt", ROUTE_T_SYNTHETIC, NULL},
	{"zsharded", "create table newt (id int)", "zsharded.newt", ROUTE_T_DDL_FALLBACK, NULL},
	{"", "create table zsharded.newt (id int)", "zsharded.newt", ROUTE_T_DDL_FALLBACK, NULL},
	{"", "create table newt (id int)", "ERR", ROUTE_T_UNKNOWN_KEYSPACE,
	 "VT09005: no database selected: use keyspace<:shard><@type> or keyspace<[range]><@type> "
	 "(<> are optional)"},
	{"", "drop table off", "ERR", ROUTE_T_DISABLED, "table off has been disabled"},
	{"", "drop table m1, o1", "main.m1", 0,
	 "VT12001: unsupported: Tables or Views specified in the query do not belong to the same "
	 "destination"},
	{"main", "rename table m1 to m2", "main.m1", 0, NULL},
	{"main", "rename table m1 to other.m2", "main.m1", 0,
	 "VT03002: changing schema from 'main' to 'other' is not allowed"},
	{"", "select * from `main:-80`.m1", "main.m1", ROUTE_T_QUALIFIER_TARGET,
	 "VT09017: SELECT with a target destination is not allowed"},
	{"", "insert into `main:-80`.m1 values (1)", "main.m1", 0,
	 "VT09017: INSERT with a target destination is not allowed"},
	{"", "update `main:-80`.m1 set a = 1", "main.m1", 0, NULL},
	{"", "select * from `main@replica`.m1", "main.m1", ROUTE_T_QUALIFIER_TARGET, NULL},
	/* statement-level checks */
	{"@replica", "insert into m1 values (1)", "main.m1", 0,
	 "VT09002: insert statement with a replica target"},
	{"@rdonly", "replace into m1 values (1)", "main.m1", 0,
	 "VT09002: insert statement with a replica target"},
	{"@replica", "delete from m1", "main.m1", 0,
	 "VT09002: delete statement with a replica target"},
	{"@replica", "select * from m1 for update", "main.m1", 0, NULL},
	{"", "use nosuch", NULL, 0, "VT05003: unknown database 'nosuch' in vschema"},
	{"", "use information_schema", NULL, 0, NULL},
	{"", "use `main:-80@replica`", NULL, 0, NULL},
	{"", "use `main[-80`", NULL, 0, "invalid key range provided. Couldn't find range end ']'"},
};

static void
test_cases(void **state)
{
	struct rules *r = load_str(ks2);
	size_t i;
	int failures = 0;

	(void)state;
	for (i = 0; i < sizeof(rcases) / sizeof(rcases[0]); i++) {
		const struct rcase *c = &rcases[i];
		const struct route_result *res = run(r, c->target, false, c->sql);
		const char *got = res->ntables ? reached(&res->tables[0]) : NULL;
		uint32_t fl = res->ntables ? res->tables[0].flags : 0;
		bool ok = (c->reached == NULL ? got == NULL : got && strcmp(got, c->reached) == 0) &&
			  (fl & c->flags) == c->flags &&
			  (c->error == NULL ? res->error == NULL
					    : res->error && strcmp(res->error, c->error) == 0);

		if (!ok) {
			print_error("case %zu [%s] %s: reached %s flags %#x error %s\n", i, c->target,
				    c->sql, got ? got : "(none)", fl, res->error ? res->error : "-");
			failures++;
		}
	}
	assert_int_equal(failures, 0);
	rules_unref(r);
}

static void
test_transactions(void **state)
{
	struct rules *r = load_str(ks2);
	const struct route_result *res;

	(void)state;
	res = run(r, "main", true, "use other@replica");
	assert_non_null(res->error);
	assert_string_equal(res->error,
			    "can't execute the given command because you have an active transaction");
	res = run(r, "main", true, "use other");
	assert_null(res->error);
	res = run(r, "main", false, "use other@replica");
	assert_null(res->error);
	rules_unref(r);
}

/* With exactly one keyspace, an empty qualifier is filled in, so bare keys never match. */
static void
test_single_keyspace(void **state)
{
	struct rules *r = load_str(
	    "{\"keyspaces\": {\"only\": {}}, \"routing_rules\": {\"rules\": ["
	    " {\"from_table\": \"t1\", \"to_tables\": [\"only.x\"]},"
	    " {\"from_table\": \"only.t2\", \"to_tables\": [\"only.y\"]}]}}");
	const struct route_result *res;

	(void)state;
	res = run(r, "", false, "select * from t1 join t2");
	assert_string_equal(reached(&res->tables[0]), "only.t1");
	assert_null(res->tables[0].rule);
	assert_string_equal(reached(&res->tables[1]), "only.y");
	assert_string_equal(res->tables[1].rule, "only.t2");
	assert_string_equal(res->tables[1].named_ks, "only");
	rules_unref(r);
}

/* RENAME a TO b: vtgate resolves b only when qualified (TargetDestination); an unqualified
 * b stays in a's keyspace whatever the session keyspace (buildRenameTable). */
static void
test_rename_new_name(void **state)
{
	struct rules *r = load_str(ks2);
	const struct route_result *res;

	(void)state;
	res = run(r, "", false, "rename table m1 to m2");
	assert_null(res->error);
	assert_string_equal(reached(&res->tables[1]), "main.m2");
	assert_true(res->tables[1].flags & ROUTE_T_NEW_NAME);
	res = run(r, "other", false, "rename table main.m1 to m2, other.o1 to o2");
	assert_string_equal(reached(&res->tables[1]), "main.m2");
	assert_string_equal(reached(&res->tables[3]), "other.o2");
	assert_string_equal(res->error, "VT12001: unsupported: Tables or Views specified in the "
					"query do not belong to the same destination");
	res = run(r, "", false, "alter table main.m1 add column c int, rename to m2");
	assert_null(res->error);
	assert_string_equal(reached(&res->tables[1]), "main.m2");
	res = run(r, "main", false, "rename table m1 to nowhere.m2");
	assert_string_equal(reached(&res->tables[1]), "ERR");
	assert_string_equal(res->error, "VT05003: unknown database 'nowhere' in vschema");
	/* TargetDestination takes the qualifier verbatim: a target string is no keyspace */
	res = run(r, "main", false, "rename table m1 to `main@replica`.m2");
	assert_string_equal(res->error, "VT05003: unknown database 'main@replica' in vschema");
	res = run(r, "", false, "rename table nowhere.x to m2");
	assert_string_equal(reached(&res->tables[1]), "ERR");
	assert_string_equal(res->error, "VT05003: unknown database 'nowhere' in vschema");
	rules_unref(r);
}

static void
test_vexplain_and_prepare(void **state)
{
	struct rules *r = load_fix("04-switched", 0);
	const struct route_result *res;

	(void)state;
	res = run(r, "", false, "vexplain queries drop table " T ".t1");
	assert_int_equal(g_st.cls, SQL_CLASS_DROP);
	assert_string_equal(reached(&res->tables[0]), T ".t1");
	res = run(r, "", false, "drop table " S ".t1");
	assert_string_equal(reached(&res->tables[0]), T ".t1"); /* drops the NEW copy */
	assert_true(res->tables[0].flags & ROUTE_T_REDIRECTED);
	res = run(r, "", false, "prepare s from 'select * from t2'");
	assert_int_equal(g_st.cls, SQL_CLASS_PREPARE);
	assert_string_equal(reached(&res->tables[0]), T ".t2");
	rules_unref(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_movetables_matrix), cmocka_unit_test(test_formats_identical),
	    cmocka_unit_test(test_keyspace_rules),    cmocka_unit_test(test_shard_targeted),
	    cmocka_unit_test(test_cases),             cmocka_unit_test(test_transactions),
	    cmocka_unit_test(test_single_keyspace),   cmocka_unit_test(test_vexplain_and_prepare),
	    cmocka_unit_test(test_rename_new_name),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
