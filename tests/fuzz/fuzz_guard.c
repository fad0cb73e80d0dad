/* tests/fuzz/fuzz_guard.c: libFuzzer target for router/guard.c.  Arbitrary bytes are one
 * statement (and, as the tracer does, each piece sql_split_next finds) -> sql_classify ->
 * route_resolve against the 01-created MoveTables snapshot (embedded below, a copy of
 * tests/fixtures/movetables/01-created.srvvschema.json) -> guard_check.
 * Byte 0 picks the session target; the rest is the SQL.
 * Checked, besides no crash / no hang / no leak:
 *   - block, warn and off agree: DENY <-> WOULD_BLOCK with the same reason; off allows;
 *   - a reason is present exactly when blocked, NUL-terminated, with a code 1..4;
 *   - fail closed: if the code tokens start with DROP/TRUNCATE/RENAME (executable comment
 *     content counts; DROP/RENAME of PROCEDURE, FUNCTION, TRIGGER, EVENT, USER, ROLE,
 *     SERVER, PREPARE, TABLESPACE, LOGFILE, RESOURCE, SPATIAL excepted) and an identifier
 *     names t1 (whole, or a '.'/'@' component, any letter case), or it is DROP
 *     DATABASE|SCHEMA and an identifier names targetkeyspace/sourcekeyspace, the verdict
 *     is never GUARD_ALLOW under block mode. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "router/classify.h"
#include "router/guard.h"
#include "router/resolve.h"
#include "router/rules.h"
#include "router/sql_lex.h"
#include "router/target.h"

#define CHECK(x)                                                                                   \
	do {                                                                                       \
		if (!(x)) {                                                                        \
			fprintf(stderr, "fuzz_guard: check failed: %s (line %d)\n", #x, __LINE__); \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

static const char fixture[] =
    "{\"keyspaces\":{\"sourcekeyspace\":{\"sharded\":false,\"tables\":{\"t1\":{},\"t2\""
    ":{},\"t3\":{}}},\"targetkeyspace\":{\"sharded\":false,\"tables\":{\"t1\":{},\"t2\""
    ":{}}}},\"routing_rules\":{\"rules\":[{\"from_table\":\"t1\",\"to_tables\":[\"sour"
    "cekeyspace.t1\"]},{\"from_table\":\"sourcekeyspace.t1\",\"to_tables\":[\"sourc"
    "ekeyspace.t1\"]},{\"from_table\":\"targetkeyspace.t1\",\"to_tables\":[\"source"
    "keyspace.t1\"]},{\"from_table\":\"t2\",\"to_tables\":[\"sourcekeyspace.t2\"]},{"
    "\"from_table\":\"sourcekeyspace.t2\",\"to_tables\":[\"sourcekeyspace.t2\"]},{\""
    "from_table\":\"targetkeyspace.t2\",\"to_tables\":[\"sourcekeyspace.t2\"]},{\"f"
    "rom_table\":\"t1@replica\",\"to_tables\":[\"sourcekeyspace.t1\"]},{\"from_tabl"
    "e\":\"sourcekeyspace.t1@replica\",\"to_tables\":[\"sourcekeyspace.t1\"]},{\"fr"
    "om_table\":\"targetkeyspace.t1@replica\",\"to_tables\":[\"sourcekeyspace.t1\""
    "]},{\"from_table\":\"t2@replica\",\"to_tables\":[\"sourcekeyspace.t2\"]},{\"fro"
    "m_table\":\"sourcekeyspace.t2@replica\",\"to_tables\":[\"sourcekeyspace.t2\"]"
    "},{\"from_table\":\"targetkeyspace.t2@replica\",\"to_tables\":[\"sourcekeyspa"
    "ce.t2\"]},{\"from_table\":\"t1@rdonly\",\"to_tables\":[\"sourcekeyspace.t1\"]},"
    "{\"from_table\":\"sourcekeyspace.t1@rdonly\",\"to_tables\":[\"sourcekeyspace."
    "t1\"]},{\"from_table\":\"targetkeyspace.t1@rdonly\",\"to_tables\":[\"sourcekey"
    "space.t1\"]},{\"from_table\":\"t2@rdonly\",\"to_tables\":[\"sourcekeyspace.t2\""
    "]},{\"from_table\":\"sourcekeyspace.t2@rdonly\",\"to_tables\":[\"sourcekeyspa"
    "ce.t2\"]},{\"from_table\":\"targetkeyspace.t2@rdonly\",\"to_tables\":[\"source"
    "keyspace.t2\"]}]},\"shard_routing_rules\":{\"rules\":[]},\"keyspace_routing_"
    "rules\":{\"rules\":[]},\"mirror_rules\":{\"rules\":[]}}";

static const char *const sessions[] = {"",
                                       "sourcekeyspace",
                                       "targetkeyspace",
                                       "targetkeyspace@replica",
                                       "sourcekeyspace@rdonly",
                                       "targetkeyspace:-80",
                                       "information_schema",
                                       "@replica"};
#define NSESS (sizeof(sessions) / sizeof(sessions[0]))

static struct rules *snap;
static struct guard_policy *pol_block, *pol_warn, *pol_off;
static struct sql_stmt st;
static struct route_result res;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char err[RULES_ERRLEN];

	(void)argc;
	(void)argv;
	snap = rules_load_buffer(fixture, sizeof(fixture) - 1, "01-created", NULL, 0, NULL, err,
	                         sizeof(err));
	pol_block = guard_policy_new(GUARD_BLOCK, NULL, 0, err, sizeof(err));
	pol_warn = guard_policy_new(GUARD_WARN, NULL, 0, err, sizeof(err));
	pol_off = guard_policy_new(GUARD_OFF, NULL, 0, err, sizeof(err));
	CHECK(snap != NULL && rules_count(snap) == 18);
	CHECK(pol_block && pol_warn && pol_off);
	return 0;
}

static bool
word_is(const char *z, const struct sql_tok *t, const char *w)
{
	return t->type == SQL_TK_IDENT && strlen(w) == t->len &&
	       strncasecmp(z + t->off, w, t->len) == 0;
}

static bool
safe_object(const char *z, const struct sql_tok *t)
{
	static const char *const w[] = {"PROCEDURE",  "FUNCTION", "TRIGGER",  "EVENT",
	                                "USER",       "ROLE",     "SERVER",   "PREPARE",
	                                "TABLESPACE", "LOGFILE",  "RESOURCE", "SPATIAL"};
	size_t i;

	for (i = 0; i < sizeof(w) / sizeof(w[0]); i++)
		if (word_is(z, t, w[i]))
			return true;
	return false;
}

/* Has v[0..n) a '.'/'@'-separated component (or whole) equal to w, any case? */
static bool
has_component(const char *v, size_t n, const char *w)
{
	size_t i, start = 0, wl = strlen(w);

	for (i = 0; i <= n; i++) {
		if (i < n && v[i] != '.' && v[i] != '@')
			continue;
		if (i - start == wl && strncasecmp(v + start, w, wl) == 0)
			return true;
		start = i + 1;
	}
	return false;
}

/* The fail-closed oracle: must this text be refused in 01-created? */
static bool
must_refuse(const char *z, size_t n)
{
	struct sql_lex lx;
	struct sql_tok t, u;
	bool database = false;
	char v[2048];
	size_t vn;

	sql_lex_init(&lx, z, n, 0);
	if (!sql_lex_next_code(&lx, &t) || t.type != SQL_TK_IDENT ||
	    (t.kw != SQL_KW_DROP && t.kw != SQL_KW_TRUNCATE && t.kw != SQL_KW_RENAME))
		return false;
	if (t.kw != SQL_KW_TRUNCATE) {
		if (!sql_lex_next_code(&lx, &u))
			return false;
		if (safe_object(z, &u))
			return false;
		database = t.kw == SQL_KW_DROP &&
		           (u.kw == SQL_KW_DATABASE || u.kw == SQL_KW_SCHEMA) &&
		           u.type == SQL_TK_IDENT;
		if (u.type == SQL_TK_IDENT || u.type == SQL_TK_QIDENT) {
			vn = sql_tok_value(z, &u, 0, v, sizeof(v));
			if (vn < sizeof(v) && has_component(v, vn, "t1"))
				return true;
		}
	}
	while (sql_lex_next_code(&lx, &u)) {
		if (u.type != SQL_TK_IDENT && u.type != SQL_TK_QIDENT)
			continue;
		vn = sql_tok_value(z, &u, 0, v, sizeof(v));
		if (vn >= sizeof(v))
			continue;
		if (has_component(v, vn, "t1"))
			return true;
		if (database && (has_component(v, vn, "targetkeyspace") ||
		                 has_component(v, vn, "sourcekeyspace")))
			return true;
	}
	return false;
}

static void
check_one(const struct vt_target *sess, const char *z, size_t n)
{
	struct guard_decision b, w, o;

	sql_classify(z, n, 0, &st);
	route_resolve(snap, sess, false, &st, &res);
	guard_check(pol_block, snap, sess, z, n, &st, &res, &b);
	guard_check(pol_warn, snap, sess, z, n, &st, &res, &w);
	guard_check(pol_off, snap, sess, z, n, &st, &res, &o);
	CHECK(memchr(b.reason, '\0', sizeof(b.reason)) != NULL);
	CHECK(b.verdict == GUARD_ALLOW || b.verdict == GUARD_DENY);
	CHECK((b.verdict == GUARD_ALLOW) == (b.reason[0] == '\0'));
	CHECK((b.verdict == GUARD_ALLOW) == (b.reason_code == 0));
	CHECK(b.reason_code <= GUARD_R_FAIL_CLOSED);
	CHECK(w.verdict == (b.verdict == GUARD_DENY ? GUARD_WOULD_BLOCK : GUARD_ALLOW));
	CHECK(w.reason_code == b.reason_code && strcmp(w.reason, b.reason) == 0);
	CHECK(o.verdict == GUARD_ALLOW && o.reason[0] == '\0');
	if (b.verdict == GUARD_ALLOW && must_refuse(z, n)) {
		fprintf(stderr, "fuzz_guard: fail-closed property violated for [%.*s]\n", (int)n,
		        z);
		abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vt_target sess;
	const char *z;
	char err[128];
	size_t n, pos = 0, start, len, k = 0;

	if (size < 1 || size > 65536)
		return 0;
	CHECK(vt_target_parse(sessions[data[0] % NSESS], strlen(sessions[data[0] % NSESS]),
	                      VT_TT_PRIMARY, &sess, err, sizeof(err)));
	z = (const char *)data + 1;
	n = size - 1;
	check_one(&sess, z, n);
	while (k++ < 64 && sql_split_next(z, n, &pos, &start, &len))
		check_one(&sess, z + start, len);
	return 0;
}
