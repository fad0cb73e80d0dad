/* router/guard.h: the DDL guard's decision (issue 5).  Pure: no I/O, no clock, no
 * allocation per statement.  Given a classified statement (router/classify.h) and its
 * resolution (router/resolve.h) under a rules snapshot and the session target, decides
 * whether destructive DDL must be blocked, and writes an actionable reason.
 *
 * How to use:
 *   struct guard_policy *p = guard_policy_new(GUARD_BLOCK, allow, nallow, err, sizeof err);
 *   per statement: sql_classify(...); route_resolve(...);
 *     struct guard_decision d;
 *     guard_check(p, rules, &session, sql, n, &st, &res, &d);
 *     d.verdict: GUARD_ALLOW | GUARD_WOULD_BLOCK (warn mode) | GUARD_DENY (block mode)
 *   guard_policy_free(p);
 * Non-destructive statements return after a class check (a few ns).  For destructive DDL
 * the guard needs an index of the tables and keyspaces named by the routing rules; it is
 * built once per rules snapshot (O(rules), keyed by rules_generation) and memoized in the
 * policy under a mutex, so a policy may be shared by threads.  See docs/guard.md. */
#ifndef RT_ROUTER_GUARD_H
#define RT_ROUTER_GUARD_H

#include <stdbool.h>
#include <stddef.h>

#include "router/classify_types.h"
#include "router/resolve.h"
#include "router/rules.h"
#include "router/target.h"

enum guard_mode { GUARD_OFF = 0, GUARD_WARN, GUARD_BLOCK };

enum guard_verdict {
	GUARD_ALLOW = 0,   /* forward */
	GUARD_WOULD_BLOCK, /* warn mode: forward, trace would_block */
	GUARD_DENY         /* block mode: answer ERR 1105 / HY000 with reason */
};

/* guard_decision.reason_code: which rule of issue 5 decided */
#define GUARD_R_NONE 0        /* allowed */
#define GUARD_R_REDIRECT 1    /* reaches another keyspace/table, or resolution fails */
#define GUARD_R_WORKFLOW 2    /* table named by a routing rule (active workflow) */
#define GUARD_R_DATABASE 3    /* DROP DATABASE of a keyspace some rule names */
#define GUARD_R_FAIL_CLOSED 4 /* not fully understood, PREPARE FROM @var, shard-targeted */

#define GUARD_REASON_MAX 512

struct guard_policy; /* opaque: mode + allow-list, immutable in meaning */

struct guard_decision {
	enum guard_verdict verdict;
	unsigned reason_code;          /* GUARD_R_* */
	char reason[GUARD_REASON_MAX]; /* whole client/trace message, "" when allowed */
};

/* Builds a policy.  allow[0..nallow) are "ks" or "ks.table" entries (copied; exact,
 * case-sensitive match).  Returns NULL with a message in err on a malformed entry or
 * out of memory.  Free with guard_policy_free (accepts NULL). */
struct guard_policy *guard_policy_new(enum guard_mode mode, const char *const *allow, size_t nallow,
                                      char *err, size_t errlen);
void guard_policy_free(struct guard_policy *p);

/* The policy's mode (GUARD_OFF for NULL). */
enum guard_mode guard_policy_mode(const struct guard_policy *p);

/* "block" | "warn" | "off" (case-insensitive) -> *out; false for anything else. */
bool guard_mode_parse(const char *s, enum guard_mode *out);

/* "block", "warn", "off" ("?" out of range); "allow", "would_block", "deny". */
const char *guard_mode_name(enum guard_mode m);
const char *guard_verdict_name(enum guard_verdict v);

/* Decides for one statement.  sql[0..n) is its text (re-lexed only for destructive or
 * not-understood statements, to fail closed); st and res are its classification and
 * resolution under rules and session (res may be NULL: then destructive DDL is denied).
 * p == NULL or mode off gives GUARD_ALLOW.  Always fills *out.  Never blocks; takes the
 * policy's mutex only for destructive DDL.  Lexes with flags 0 (see guard_check_lex). */
void guard_check(const struct guard_policy *p, const struct rules *rules,
                 const struct vt_target *session, const char *sql, size_t n,
                 const struct sql_stmt *st, const struct route_result *res,
                 struct guard_decision *out);

/* Same, with the SQL_LEX_* flags (sql_mode) the statement was classified with. */
void guard_check_lex(const struct guard_policy *p, const struct rules *rules,
                     const struct vt_target *session, const char *sql, size_t n, unsigned lex_flags,
                     const struct sql_stmt *st, const struct route_result *res,
                     struct guard_decision *out);

#endif /* RT_ROUTER_GUARD_H */
