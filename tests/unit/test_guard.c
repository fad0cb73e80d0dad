/* tests/unit/test_guard.c: the DDL guard against the real classifier, resolver and the
 * MoveTables fixtures: every lifecycle state, the bypass corpus of issue 5, modes,
 * allow-list, the exact ERR text, and the cost of the non-DDL fast path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "router/classify.h"
#include "router/guard.h"
#include "router/resolve.h"
#include "router/rules.h"
#include "router/sql_lex.h"
#include "router/target.h"

#define FIX "tests/fixtures/movetables/"

enum { S00, S01, S02, S03, S04, S05, S06, S07, NSTATES };
static const char *const state_names[NSTATES] = {
    "00-before",   "01-created",  "02-rdonly-switched", "03-replica-switched",
    "04-switched", "05-reversed", "06-completed",       "07-cancelled"};
static struct rules *snap[NSTATES];

#define A GUARD_ALLOW
#define B GUARD_DENY

struct gcase {
	int state;
	const char *session; /* target string */
	const char *sql;
	enum guard_verdict want;
	unsigned code; /* expected reason_code when blocked */
};

/* Everything one check needs, kept off the stack (sql_stmt/route_result are KiBs). */
static struct sql_stmt g_st;
static struct route_result g_res;

static void
decide(const struct guard_policy *p, int state, const char *session, const char *sql, size_t n,
       struct guard_decision *d)
{
	struct vt_target sess;
	char err[128];

	assert_true(
	    vt_target_parse(session, strlen(session), VT_TT_PRIMARY, &sess, err, sizeof(err)));
	sql_classify(sql, n, 0, &g_st);
	route_resolve(snap[state], &sess, false, &g_st, &g_res);
	guard_check(p, snap[state], &sess, sql, n, &g_st, &g_res, d);
}

static void
run_cases(const struct guard_policy *p, const struct gcase *k, size_t nk,
          enum guard_verdict blocked_as)
{
	size_t i, bad = 0;

	for (i = 0; i < nk; i++) {
		struct guard_decision d;
		enum guard_verdict want = k[i].want == B ? blocked_as : GUARD_ALLOW;

		decide(p, k[i].state, k[i].session, k[i].sql, strlen(k[i].sql), &d);
		if (d.verdict != want || (want != GUARD_ALLOW && d.reason_code != k[i].code) ||
		    (want == GUARD_ALLOW) != (d.reason[0] == '\0')) {
			print_error("case %zu [%s, session '%s'] %s\n  want %s/%u, got %s/%u: %s\n",
			            i, state_names[k[i].state], k[i].session, k[i].sql,
			            guard_verdict_name(want), k[i].code,
			            guard_verdict_name(d.verdict), d.reason_code, d.reason);
			bad++;
		}
	}
	assert_int_equal(bad, 0);
}

static struct guard_policy *
policy(enum guard_mode m, const char *const *allow, size_t n)
{
	char err[256];
	struct guard_policy *p = guard_policy_new(m, allow, n, err, sizeof(err));

	if (p == NULL)
		fail_msg("guard_policy_new: %s", err);
	return p;
}

/* --- lifecycle matrix ---------------------------------------------------------------- */

/* The same statements in every state; expected verdicts per state. */
#define ALLS(sql, sess, e0, e1, e2, e3, e4, e5, e6, e7)                                            \
	{S00, sess, sql, e0 ? B : A, e0}, {S01, sess, sql, e1 ? B : A, e1},                        \
	    {S02, sess, sql, e2 ? B : A, e2}, {S03, sess, sql, e3 ? B : A, e3},                    \
	    {S04, sess, sql, e4 ? B : A, e4}, {S05, sess, sql, e5 ? B : A, e5},                    \
	    {S06, sess, sql, e6 ? B : A, e6},                                                      \
	{                                                                                          \
		S07, sess, sql, e7 ? B : A, e7                                                     \
	}

/* codes: 0 allowed, 1 redirected, 2 workflow table, 3 database, 4 fail closed */
static const struct gcase lifecycle[] = {
    ALLS("DROP TABLE targetkeyspace.t1", "", 0, 1, 1, 1, 2, 1, 0, 0),
    ALLS("DROP TABLE sourcekeyspace.t1", "", 0, 2, 2, 2, 1, 2, 0, 0),
    ALLS("DROP TABLE targetkeyspace.t2", "", 0, 1, 1, 1, 2, 1, 0, 0),
    ALLS("DROP TABLE t1", "", 0, 1, 1, 1, 1, 1, 0, 0),
    ALLS("DROP TABLE t1", "sourcekeyspace", 0, 2, 2, 2, 1, 2, 0, 0),
    ALLS("DROP TABLE t1", "targetkeyspace", 0, 1, 1, 1, 2, 1, 0, 0),
    /* @replica: the t1@replica keys decide; switched to T from 03 on */
    ALLS("DROP TABLE t1", "targetkeyspace@replica", 0, 1, 1, 2, 2, 1, 0, 0),
    ALLS("DROP TABLE t1", "sourcekeyspace@replica", 0, 2, 2, 1, 1, 2, 0, 0),
    ALLS("DROP TABLE sourcekeyspace.t3", "", 0, 0, 0, 0, 0, 0, 0, 0),
    ALLS("DROP TABLE t3", "", 0, 0, 0, 0, 0, 0, 0, 0),
    ALLS("DROP TABLE t3", "sourcekeyspace", 0, 0, 0, 0, 0, 0, 0, 0),
    ALLS("TRUNCATE targetkeyspace.t1", "", 0, 1, 1, 1, 2, 1, 0, 0),
    ALLS("TRUNCATE TABLE sourcekeyspace.t1", "", 0, 2, 2, 2, 1, 2, 0, 0),
    ALLS("TRUNCATE TABLE t3", "sourcekeyspace", 0, 0, 0, 0, 0, 0, 0, 0),
    ALLS("RENAME TABLE targetkeyspace.t1 TO targetkeyspace.t1_old", "", 0, 1, 1, 1, 2, 1, 0, 0),
    ALLS("RENAME TABLE sourcekeyspace.t1 TO sourcekeyspace.t1_old", "", 0, 2, 2, 2, 1, 2, 0, 0),
    ALLS("RENAME TABLE sourcekeyspace.t3 TO sourcekeyspace.t3_old", "", 0, 0, 0, 0, 0, 0, 0, 0),
    ALLS("ALTER TABLE targetkeyspace.t2 RENAME TO targetkeyspace.t2_old", "", 0, 1, 1, 1, 2, 1, 0,
         0),
    ALLS("ALTER TABLE sourcekeyspace.t3 RENAME TO sourcekeyspace.t3_old", "", 0, 0, 0, 0, 0, 0, 0,
         0),
    ALLS("ALTER TABLE targetkeyspace.t1 DROP COLUMN c", "", 0, 1, 1, 1, 2, 1, 0, 0),
    ALLS("ALTER TABLE sourcekeyspace.t1 DROP COLUMN c", "", 0, 2, 2, 2, 1, 2, 0, 0),
    ALLS("ALTER TABLE sourcekeyspace.t3 DROP COLUMN c", "", 0, 0, 0, 0, 0, 0, 0, 0),
    ALLS("DROP INDEX i ON targetkeyspace.t1", "", 0, 1, 1, 1, 2, 1, 0, 0),
    ALLS("DROP INDEX i ON t3", "sourcekeyspace", 0, 0, 0, 0, 0, 0, 0, 0),
    ALLS("DROP DATABASE sourcekeyspace", "", 0, 3, 3, 3, 3, 3, 0, 0),
    ALLS("DROP SCHEMA targetkeyspace", "", 0, 3, 3, 3, 3, 3, 0, 0),
    /* non-destructive: always allowed */
    ALLS("ALTER TABLE targetkeyspace.t1 ADD COLUMN c int", "", 0, 0, 0, 0, 0, 0, 0, 0),
    ALLS("SELECT * FROM targetkeyspace.t1", "", 0, 0, 0, 0, 0, 0, 0, 0),
    ALLS("INSERT INTO t1 VALUES (1)", "targetkeyspace", 0, 0, 0, 0, 0, 0, 0, 0),
    ALLS("CREATE TABLE targetkeyspace.t9 (id int)", "", 0, 0, 0, 0, 0, 0, 0, 0),
    ALLS("DELETE FROM sourcekeyspace.t1", "", 0, 0, 0, 0, 0, 0, 0, 0),
};

static void
test_lifecycle(void **state)
{
	struct guard_policy *p = policy(GUARD_BLOCK, NULL, 0);

	(void)state;
	run_cases(p, lifecycle, sizeof(lifecycle) / sizeof(lifecycle[0]), GUARD_DENY);
	guard_policy_free(p);
}

/* --- bypass corpus (issue 5's list), state 01-created ------------------------------- */

static const struct gcase bypass[] = {
    {S01, "", "dRoP tAbLe targetkeyspace.t1", B, 1},
    {S01, "", "DROP/**/TABLE/*x*/targetkeyspace.t1", B, 1},
    {S01, "", "DROP -- a comment\nTABLE # another\n targetkeyspace.t1", B, 1},
    {S01, "", "/*!50000 DROP TABLE targetkeyspace.t1 */", B, 1},
    {S01, "", "/*! DROP */ TABLE targetkeyspace.t1", B, 1},
    {S01, "", "/*!DROP*//*!TABLE*/targetkeyspace.t1", B, 1},
    {S01, "", "DROP TABLE `targetkeyspace`.`t1`", B, 1},
    /* one identifier: with no keyspace, vtgate looks up the bare key
     * "targetkeyspace.t1", which is a rule -> sourcekeyspace.t1 */
    {S01, "", "DROP TABLE `targetkeyspace.t1`", B, 1},
    /* with USE sourcekeyspace it names table "targetkeyspace.t1" in S: its
     * components name a workflow table, fail closed */
    {S01, "sourcekeyspace", "DROP TABLE `targetkeyspace.t1`", B, 2},
    {S01, "", "DROP\tTABLE\ntargetkeyspace.t1\r\n", B, 1},
    {S01, "", "DROP\fTABLE\vtargetkeyspace.t1", B, 1},
    {S01, "", "DROP TABLE t3, targetkeyspace.t1", B, 1},
    {S01, "", "DROP TABLE sourcekeyspace.t3, sourcekeyspace.t1", B, 2},
    {S01, "", "DROP TABLE IF EXISTS targetkeyspace.t1", B, 1},
    {S01, "", "DROP TEMPORARY TABLE IF EXISTS targetkeyspace.t1", B, 1},
    {S01, "", "DROP VIEW targetkeyspace.t1", B, 1},
    {S01, "", "PREPARE s FROM 'DROP TABLE targetkeyspace.t1'", B, 1},
    {S01, "", "PREPARE s FROM 'TRUNCATE sourcekeyspace.t2'", B, 2},
    {S01, "", "PREPARE s FROM \"VEXPLAIN QUERIES DROP TABLE targetkeyspace.t1\"", B, 1},
    {S01, "", "PREPARE s FROM 'SELECT * FROM targetkeyspace.t1'", A, 0},
    {S01, "", "PREPARE s FROM @q", B, 4},
    {S06, "", "PREPARE s FROM @q", B, 4},
    {S01, "", "VEXPLAIN QUERIES DROP TABLE targetkeyspace.t1", B, 1},
    {S01, "", "VEXPLAIN ALL DROP TABLE targetkeyspace.t1", B, 1},
    {S01, "", "VEXPLAIN TRACE DROP TABLE targetkeyspace.t1", B, 1},
    {S01, "", "vexplain /**/ queries TRUNCATE sourcekeyspace.t1", B, 2},
    {S01, "", "VEXPLAIN PLAN DROP TABLE targetkeyspace.t1", A, 0},
    {S01, "", "VEXPLAIN DROP TABLE targetkeyspace.t1", A, 0},
    {S01, "", "VEXPLAIN KEYS DROP TABLE targetkeyspace.t1", A, 0},
    /* unqualified under USE / COM_INIT_DB / handshake db: the session target */
    {S01, "targetkeyspace", "DROP TABLE t1", B, 1},
    {S01, "targetkeyspace", "drop table `t1`", B, 1},
    {S04, "sourcekeyspace", "DROP TABLE t1", B, 1},
    /* USE information_schema: unqualified names go to AnyKeyspace() */
    {S01, "information_schema", "DROP TABLE t1", B, 1},
    /* shard-targeted: routing bypassed, goes to the session keyspace's shard */
    {S01, "targetkeyspace:-80", "DROP TABLE t1", B, 4},
    {S01, "`targetkeyspace/0`", "TRUNCATE t2", B, 4},
    {S01, "targetkeyspace:-80", "DROP TABLE t3", A, 0},
    {S01, "targetkeyspace:-80", "DROP TABLE sourcekeyspace.t3", B, 4},
    {S06, "targetkeyspace:-80", "DROP TABLE t1", A, 0},
    /* garbage after the name */
    {S01, "", "DROP TABLE targetkeyspace.t1 ))) garbage", B, 1},
    {S01, "", "DROP TABLE sourcekeyspace.t3 garbage targetkeyspace.t1", B, 4},
    /* a single text with two statements (the tracer splits; fail closed anyway) */
    {S01, "", "DROP TABLE sourcekeyspace.t3; DROP TABLE targetkeyspace.t1", B, 4},
    /* not understood but starting like DDL */
    {S01, "", "DROP TABLE sourcekeyspace.t3 /* unterminated", B, 4},
    {S01, "", "DROP TABLE sourcekeyspace.t3 'unterminated", B, 4},
    {S01, "", "DROP SEQUENCE sourcekeyspace.t3", B, 4},
    {S01, "", "TRUNCATE", B, 4},
    {S01, "", "DROP", B, 4},
    {S01, "", "DROP PROCEDURE targetkeyspace.t1", A, 0},
    {S01, "", "DROP PREPARE t1", A, 0},
    {S01, "", "DROP INDEX t1 ON sourcekeyspace.t3", B, 4},
    /* renaming onto a workflow table's name */
    {S01, "", "RENAME TABLE sourcekeyspace.t3 TO sourcekeyspace.t1", B, 2},
    /* letter case of names: vtgate is case-sensitive, MySQL may not be */
    {S01, "", "DROP TABLE sourcekeyspace.T1", B, 2},
    {S01, "", "DROP TABLE TARGETKEYSPACE.t1", B, 1},
    {S01, "", "DROP DATABASE IF EXISTS `sourcekeyspace`", B, 3},
    {S01, "", "DROP DATABASE `targetkeyspace@replica`", B, 3},
    {S01, "", "DROP DATABASE otherdb", A, 0},
    /* fuzz findings (regressions) */
    {S01, "", "RENAME TABLE sourcekeyspace.t3 TO t1", B, 2},
    {S01, "", "RENAME TABLE sourcekeyspace.t3 TO t1.ac", B, 1},
    {S01, "targetkeyspace", "RENAME TABLE sourcekeyspace.t3 TO `sourcekeyspace@replica`.x", B, 1},
    /* an unqualified new name stays in the renamed table's keyspace */
    {S01, "", "RENAME TABLE sourcekeyspace.t3 TO t3_old", A, 0},
    {S01, "targetkeyspace", "RENAME TABLE sourcekeyspace.t3 TO t3_old", A, 0},
    {S01, "", "DROP DATABASE `targetkeyspace@rep x@y`", B, 3},
    {S01, "", "DROP DATABASE IF EXMMM.t1", B, 4},
    {S01, "", "DROP DATABASE t1", B, 4},
    {S06, "", "DROP DATABASE t1", A, 0},
};

static void
test_bypass_corpus(void **state)
{
	struct guard_policy *p = policy(GUARD_BLOCK, NULL, 0);

	(void)state;
	run_cases(p, bypass, sizeof(bypass) / sizeof(bypass[0]), GUARD_DENY);
	guard_policy_free(p);
}

/* A DROP list of 100 tables, the 80th dangerous: beyond what the classifier records. */
static void
test_overflow(void **state)
{
	struct guard_policy *p = policy(GUARD_BLOCK, NULL, 0);
	struct guard_decision d;
	char sql[4096];
	size_t w = 0, i;

	(void)state;
	w += (size_t)snprintf(sql + w, sizeof(sql) - w, "DROP TABLE ");
	for (i = 1; i <= 100; i++)
		w += (size_t)snprintf(sql + w, sizeof(sql) - w, "%s%s", i > 1 ? ", " : "",
		                      i == 80 ? "targetkeyspace.t1" : "sourcekeyspace.t3");
	decide(p, S01, "", sql, w, &d);
	assert_int_equal(d.verdict, GUARD_DENY);
	assert_int_equal(d.reason_code, GUARD_R_FAIL_CLOSED);
	assert_non_null(strstr(d.reason, "more than 64"));
	guard_policy_free(p);
}

/* The tracer's path: split a multi-statement packet, guard each piece. */
static void
test_multi_statement_pieces(void **state)
{
	static const char sql[] = "SELECT 1; DROP TABLE t3 ;DROP TABLE targetkeyspace.t1;";
	struct guard_policy *p = policy(GUARD_BLOCK, NULL, 0);
	enum guard_verdict got[4];
	size_t pos = 0, start, len, k = 0;

	(void)state;
	while (k < 4 && sql_split_next(sql, sizeof(sql) - 1, &pos, &start, &len)) {
		struct guard_decision d;

		decide(p, S01, "", sql + start, len, &d);
		got[k++] = d.verdict;
	}
	assert_int_equal(k, 3);
	assert_int_equal(got[0], GUARD_ALLOW);
	assert_int_equal(got[1], GUARD_ALLOW);
	assert_int_equal(got[2], GUARD_DENY);
	guard_policy_free(p);
}

/* --- modes, allow-list, message ------------------------------------------------------ */

static void
test_exact_reason(void **state)
{
	struct guard_policy *p = policy(GUARD_BLOCK, NULL, 0);
	struct guard_decision d;
	static const char sql[] = "DROP TABLE targetkeyspace.t1";

	(void)state;
	decide(p, S01, "", sql, sizeof(sql) - 1, &d);
	assert_int_equal(d.verdict, GUARD_DENY);
	assert_int_equal(d.reason_code, GUARD_R_REDIRECT);
	assert_string_equal(d.reason,
	                    "routetrace: blocked DROP TABLE targetkeyspace.t1: routing rule "
	                    "'targetkeyspace.t1' sends it to sourcekeyspace.t1, which would drop "
	                    "sourcekeyspace.t1; finish or cancel the workflow (MoveTables "
	                    "Complete/Cancel) or clean up the routing rules first");
	/* after the full switch the mirror image: S.t1 drops the new copy */
	decide(p, S04, "", "DROP TABLE sourcekeyspace.t1", 28, &d);
	assert_string_equal(d.reason,
	                    "routetrace: blocked DROP TABLE sourcekeyspace.t1: routing rule "
	                    "'sourcekeyspace.t1' sends it to targetkeyspace.t1, which would drop "
	                    "targetkeyspace.t1; finish or cancel the workflow (MoveTables "
	                    "Complete/Cancel) or clean up the routing rules first");
	decide(p, S01, "", "PREPARE s FROM @q", 17, &d);
	assert_non_null(strstr(d.reason, "PREPARE"));
	decide(p, S01, "", "VEXPLAIN QUERIES DROP TABLE targetkeyspace.t1", 45, &d);
	assert_non_null(strstr(d.reason, "VEXPLAIN"));
	guard_policy_free(p);
}

static void
test_warn_and_off(void **state)
{
	struct guard_policy *w = policy(GUARD_WARN, NULL, 0);
	struct guard_policy *b = policy(GUARD_BLOCK, NULL, 0);
	struct guard_policy *o = policy(GUARD_OFF, NULL, 0);
	size_t i;

	(void)state;
	run_cases(w, bypass, sizeof(bypass) / sizeof(bypass[0]), GUARD_WOULD_BLOCK);
	run_cases(w, lifecycle, sizeof(lifecycle) / sizeof(lifecycle[0]), GUARD_WOULD_BLOCK);
	for (i = 0; i < sizeof(bypass) / sizeof(bypass[0]); i++) {
		struct guard_decision dw, db, dof;
		const struct gcase *k = &bypass[i];

		decide(w, k->state, k->session, k->sql, strlen(k->sql), &dw);
		decide(b, k->state, k->session, k->sql, strlen(k->sql), &db);
		decide(o, k->state, k->session, k->sql, strlen(k->sql), &dof);
		assert_string_equal(dw.reason, db.reason); /* same reason, other verdict */
		assert_int_equal(dof.verdict, GUARD_ALLOW);
		assert_string_equal(dof.reason, "");
	}
	assert_int_equal(guard_policy_mode(NULL), GUARD_OFF);
	guard_policy_free(w);
	guard_policy_free(b);
	guard_policy_free(o);
}

static void
test_allow_list(void **state)
{
	static const char *const by_ks[] = {"sourcekeyspace"};
	static const char *const by_table[] = {"targetkeyspace.t1"};
	static const struct gcase ks_cases[] = {
	    {S01, "", "DROP TABLE sourcekeyspace.t1", A, 0},
	    {S01, "", "TRUNCATE sourcekeyspace.t2", A, 0},
	    {S01, "sourcekeyspace", "DROP TABLE t1", A, 0},
	    {S01, "", "DROP TABLE targetkeyspace.t1", B, 1}, /* rule 1 is not allow-listed */
	    {S04, "", "DROP TABLE targetkeyspace.t1", B, 2},
	    {S01, "", "DROP DATABASE sourcekeyspace", B, 3},
	    {S01, "sourcekeyspace:-80", "DROP TABLE t1", A, 0},
	};
	static const struct gcase table_cases[] = {
	    {S04, "", "DROP TABLE targetkeyspace.t1", A, 0},
	    {S04, "targetkeyspace", "DROP TABLE t1", A, 0},
	    {S04, "", "DROP TABLE targetkeyspace.t2", B, 2},
	    {S04, "", "DROP TABLE sourcekeyspace.t1", B, 1},
	    {S04, "", "DROP TABLE targetkeyspace.T1", B, 2}, /* exact match only */
	    {S01, "", "DROP TABLE sourcekeyspace.t1", B, 2},
	};
	struct guard_policy *pk = policy(GUARD_BLOCK, by_ks, 1);
	struct guard_policy *pt = policy(GUARD_BLOCK, by_table, 1);

	(void)state;
	run_cases(pk, ks_cases, sizeof(ks_cases) / sizeof(ks_cases[0]), GUARD_DENY);
	run_cases(pt, table_cases, sizeof(table_cases) / sizeof(table_cases[0]), GUARD_DENY);
	guard_policy_free(pk);
	guard_policy_free(pt);
}

static void
test_policy_and_modes(void **state)
{
	static const char *const bad[] = {"", "a.b.c", "a b", ".t", "ks.", "ks@replica"};
	char err[256];
	enum guard_mode m;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_null(guard_policy_new(GUARD_BLOCK, &bad[i], 1, err, sizeof(err)));
		assert_true(err[0] != '\0');
	}
	assert_true(guard_mode_parse("block", &m) && m == GUARD_BLOCK);
	assert_true(guard_mode_parse("WARN", &m) && m == GUARD_WARN);
	assert_true(guard_mode_parse("off", &m) && m == GUARD_OFF);
	assert_false(guard_mode_parse("deny", &m));
	assert_false(guard_mode_parse(NULL, &m));
	assert_string_equal(guard_mode_name(GUARD_WARN), "warn");
	assert_string_equal(guard_verdict_name(GUARD_WOULD_BLOCK), "would_block");
	guard_policy_free(NULL);
}

/* The index memo follows the snapshot: the same policy across states and reloads. */
static void
test_snapshot_change(void **state)
{
	struct guard_policy *p = policy(GUARD_BLOCK, NULL, 0);
	struct guard_decision d;
	char err[RULES_ERRLEN];
	struct rules *again;
	int i;

	(void)state;
	for (i = 0; i < 3; i++) {
		decide(p, S04, "", "DROP TABLE targetkeyspace.t1", 28, &d);
		assert_int_equal(d.reason_code, GUARD_R_WORKFLOW);
		decide(p, S06, "", "DROP TABLE targetkeyspace.t1", 28, &d);
		assert_int_equal(d.verdict, GUARD_ALLOW);
		decide(p, S00, "", "DROP TABLE sourcekeyspace.t1", 28, &d);
		assert_int_equal(d.verdict, GUARD_ALLOW);
	}
	/* a reload of the same file is a new generation with the same meaning */
	again = rules_load_file(FIX "01-created.srvvschema.json", NULL, err, sizeof(err));
	assert_non_null(again);
	rules_unref(snap[S01]);
	snap[S01] = again;
	decide(p, S01, "", "DROP TABLE sourcekeyspace.t1", 28, &d);
	assert_int_equal(d.reason_code, GUARD_R_WORKFLOW);
	guard_policy_free(p);
}

/* Multi-tenant MoveTables (keyspace routing rules) and partial MoveTables (shard rules). */
static void
test_keyspace_and_shard_rules(void **state)
{
	static const char ks_json[] =
	    "{\"keyspaces\": {\"sourcekeyspace\": {\"sharded\": false, \"tables\": "
	    "{\"t3\": {}}}, \"targetkeyspace\": {\"sharded\": false, \"tables\": {}}, "
	    "\"other\": {\"sharded\": false, \"tables\": {}}},"
	    "\"keyspace_routing_rules\": {\"rules\": ["
	    "{\"from_keyspace\": \"sourcekeyspace\", \"to_keyspace\": \"targetkeyspace\"},"
	    "{\"from_keyspace\": \"sourcekeyspace@replica\", \"to_keyspace\": "
	    "\"targetkeyspace\"}]}}";
	static const char shard_json[] =
	    "{\"keyspaces\": {\"a\": {\"sharded\": false, \"tables\": {}}, "
	    "\"b\": {\"sharded\": false, \"tables\": {}}},"
	    "\"shard_routing_rules\": {\"rules\": [{\"from_keyspace\": \"a\", "
	    "\"to_keyspace\": \"b\", \"shard\": \"0\"}]}}";
	struct guard_policy *p = policy(GUARD_BLOCK, NULL, 0);
	struct rules *saved = snap[S00];
	struct guard_decision d;
	char err[RULES_ERRLEN];

	(void)state;
	snap[S00] =
	    rules_load_buffer(ks_json, sizeof(ks_json) - 1, "ks", NULL, 0, NULL, err, sizeof(err));
	if (snap[S00] == NULL)
		fail_msg("%s", err);
	decide(p, S00, "", "DROP TABLE sourcekeyspace.t3", 28, &d);
	assert_int_equal(d.reason_code, GUARD_R_REDIRECT);
	assert_non_null(strstr(d.reason, "keyspace routing rule"));
	decide(p, S00, "", "DROP TABLE targetkeyspace.t3", 28, &d);
	assert_int_equal(d.reason_code, GUARD_R_WORKFLOW);
	decide(p, S00, "", "DROP DATABASE targetkeyspace", 28, &d);
	assert_int_equal(d.reason_code, GUARD_R_DATABASE);
	decide(p, S00, "", "DROP DATABASE other", 19, &d);
	assert_int_equal(d.verdict, GUARD_ALLOW);
	decide(p, S00, "", "DROP TABLE other.x", 18, &d);
	assert_int_equal(d.verdict, GUARD_ALLOW);
	rules_unref(snap[S00]);
	snap[S00] = rules_load_buffer(shard_json, sizeof(shard_json) - 1, "shard", NULL, 0, NULL,
	                              err, sizeof(err));
	if (snap[S00] == NULL)
		fail_msg("%s", err);
	/* shard rules cannot be listed: DROP DATABASE of anything is refused meanwhile */
	decide(p, S00, "", "DROP DATABASE zzz", 17, &d);
	assert_int_equal(d.reason_code, GUARD_R_DATABASE);
	assert_non_null(strstr(d.reason, "shard routing rules"));
	decide(p, S00, "", "DROP TABLE a.x", 14, &d);
	assert_int_equal(d.verdict, GUARD_ALLOW);
	rules_unref(snap[S00]);
	snap[S00] = saved;
	guard_policy_free(p);
}

static double
elapsed_ns(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) * 1e9 + (double)(b->tv_nsec - a->tv_nsec);
}

/* The fast path: a non-DDL statement costs a class check.  Prints ns per call, and
 * compares with a trivial out-of-line library call timed the same way (so the bound holds
 * under sanitizers and valgrind too): lexing or indexing per call would be far slower. */
static void
test_fast_path_cost(void **state)
{
	static const char sql[] = "SELECT id, name FROM targetkeyspace.t1 WHERE id = 42";
	struct guard_policy *p = policy(GUARD_BLOCK, NULL, 0);
	struct guard_decision d;
	struct vt_target sess;
	struct timespec a, b, c;
	char err[64];
	const int iters = 2000000;
	double ns, base;
	int i;

	(void)state;
	assert_true(vt_target_parse("", 0, VT_TT_PRIMARY, &sess, err, sizeof(err)));
	sql_classify(sql, sizeof(sql) - 1, 0, &g_st);
	route_resolve(snap[S01], &sess, false, &g_st, &g_res);
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (i = 0; i < iters; i++) {
		guard_check(p, snap[S01], &sess, sql, sizeof(sql) - 1, &g_st, &g_res, &d);
		__asm__ volatile("" : : "r"(&d) : "memory");
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	for (i = 0; i < iters; i++) {
		const char *x = sql_stmt_str(&g_st, g_st.tables[0].name);

		__asm__ volatile("" : : "r"(x) : "memory");
	}
	clock_gettime(CLOCK_MONOTONIC, &c);
	guard_policy_free(p);
	ns = elapsed_ns(&a, &b) / iters;
	base = elapsed_ns(&b, &c) / iters;
	printf("guard_check on a SELECT: %.2f ns/call (trivial call: %.2f ns)\n", ns, base);
	assert_int_equal(d.verdict, GUARD_ALLOW);
	assert_true(ns < 20.0 * base + 20.0);
}

static int
setup(void **state)
{
	char path[256], err[RULES_ERRLEN];
	int i;

	(void)state;
	for (i = 0; i < NSTATES; i++) {
		snprintf(path, sizeof(path), FIX "%s.srvvschema.json", state_names[i]);
		snap[i] = rules_load_file(path, NULL, err, sizeof(err));
		if (snap[i] == NULL) {
			fprintf(stderr, "load %s: %s\n", path, err);
			return -1;
		}
	}
	return 0;
}

static int
teardown(void **state)
{
	int i;

	(void)state;
	for (i = 0; i < NSTATES; i++)
		rules_unref(snap[i]);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_lifecycle),       cmocka_unit_test(test_bypass_corpus),
	    cmocka_unit_test(test_overflow),        cmocka_unit_test(test_multi_statement_pieces),
	    cmocka_unit_test(test_exact_reason),    cmocka_unit_test(test_warn_and_off),
	    cmocka_unit_test(test_allow_list),      cmocka_unit_test(test_policy_and_modes),
	    cmocka_unit_test(test_snapshot_change), cmocka_unit_test(test_keyspace_and_shard_rules),
	    cmocka_unit_test(test_fast_path_cost),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
