/* router/resolve.h: vtgate's table -> keyspace resolution (ROUTING_SPEC a.1-a.6) for
 * every table reference of a classified statement, against one rules snapshot, the
 * session's parsed target and its transaction state.  No allocation: results go into a
 * caller-owned struct route_result (about 6 KiB; keep one per session or on the stack).
 *
 * How to use:
 *   struct vt_target sess;  vt_target_parse(target, len, VT_TT_PRIMARY, &sess, err, n);
 *   struct sql_stmt st;     sql_classify(sql, n, 0, &st);
 *   struct route_result res;
 *   route_resolve(rules, &sess, in_transaction, &st, &res);
 *   res.error (NULL if vtgate would plan it), res.tables[i].reached_ks, .flags, ...
 * The result BORROWS strings from the rules snapshot, the statement and the session
 * target: keep all three alive (and unchanged) while reading it. */
#ifndef RT_ROUTER_RESOLVE_H
#define RT_ROUTER_RESOLVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "router/classify_types.h"
#include "router/rules.h"
#include "router/target.h"

/* Per-table flags (route_table.flags); route_result.flags is their OR. */
#define ROUTE_T_RULE 0x00001             /* a table routing rule key decided (see rule) */
#define ROUTE_T_KS_RULE 0x00002          /* a keyspace routing rule rewrote the keyspace */
#define ROUTE_T_REDIRECTED 0x00004       /* reached differs from named: for a named keyspace,
					  * reached ks.table != named ks.table; unqualified
					  * without session keyspace: reached differs from where
					  * the vschema alone (no rules) would send it */
#define ROUTE_T_DISABLED 0x00008         /* rule with no targets: "table X has been disabled" */
#define ROUTE_T_AMBIGUOUS 0x00010        /* "ambiguous table reference: X" */
#define ROUTE_T_UNKNOWN_KEYSPACE 0x00020 /* "VT05003: unknown database 'ks' in vschema" */
#define ROUTE_T_UNKNOWN_TABLE 0x00040    /* "table X not found" */
#define ROUTE_T_RULE_ERROR 0x00080       /* the deciding rule holds a build error (a.3) */
#define ROUTE_T_SHARD_TARGETED 0x00100   /* session has a shard/range destination: routing
					  * bypassed, sent to the session keyspace (a.5) */
#define ROUTE_T_SYSTEM_SCHEMA 0x00200    /* qualifier is information_schema/mysql/sys/
					  * performance_schema: goes to AnyKeyspace (a.6) */
#define ROUTE_T_DUAL 0x00400             /* unqualified dual: session ks or first ks, PRIMARY */
#define ROUTE_T_DDL_FALLBACK 0x00800     /* DDL on a table not found: sent to the qualifier's
					  * or the session's keyspace (section c) */
#define ROUTE_T_NEW_NAME 0x01000         /* RENAME target name: TargetDestination(qualifier) */
#define ROUTE_T_SYNTHETIC 0x02000        /* undeclared name accepted by an unsharded keyspace */
#define ROUTE_T_ANY_KEYSPACE 0x04000     /* session keyspace is a system schema, so the
					  * unqualified name was looked up in AnyKeyspace() */
#define ROUTE_T_FOREIGN_QUALIFIER 0x08000 /* shard-targeted: a qualifier other than the session
					   * keyspace is left in the SQL (MySQL database name) */
#define ROUTE_T_QUALIFIER_TARGET 0x10000 /* the qualifier was a target string (ks@replica,
					  * ks:-80): its @type is NOT used for routing */
#define ROUTE_T_ERROR 0x20000            /* this reference fails planning (see error) */

struct route_table {
	uint8_t tref;             /* index into sql_stmt.tables */
	uint8_t role;             /* enum sql_role, copied from the statement */
	enum vt_tablet_type tablet_type; /* tablet type used for the rule key / shards */
	uint32_t flags;           /* ROUTE_T_* */
	const char *named_ks;     /* qualifier as written, or the session keyspace, or "" */
	const char *table;        /* table name as written (unescaped) */
	const char *reached_ks;   /* keyspace the table reaches; NULL on error */
	const char *reached_table; /* table name in that keyspace; NULL on error */
	const char *rule;         /* deciding routing-rule key, NULL if none */
	const char *error;        /* vtgate's error text, NULL if none */
};

struct route_result {
	uint16_t ntables;
	uint32_t flags;            /* OR of the tables' flags */
	enum vt_tablet_type tablet_type; /* the session's */
	const char *error;         /* statement-level error (first table error, VT09002, ...) */
	struct route_table tables[SQL_STMT_MAX_TABLES];
	uint16_t text_used;
	char text[2048];           /* formatted error texts and copied names */
};

/* Resolves every table reference of st.  session must be a parsed target (its
 * tablet_type already defaulted); in_tx is the session's transaction state.  Always
 * fills *out.  Statement-level checks: USE target validity (VT05003, "can't execute the
 * given command because you have an active transaction"), DML on a non-primary target
 * (VT09002), multi-table DDL spanning keyspaces (VT12001), DDL without any keyspace
 * (VT09005), RENAME into another keyspace (VT03002), SELECT/INSERT with a destination in
 * a qualifier (VT09017). */
void route_resolve(const struct rules *r, const struct vt_target *session, bool in_tx,
		   const struct sql_stmt *st, struct route_result *out);

/* Effective session keyspace: the target's, or the only keyspace when the vschema has
 * exactly one and the target has none (ParseDestinationTarget). */
const char *route_session_keyspace(const struct rules *r, const struct vt_target *session);

/* Writes "ks.table" (or "table") for a resolved entry's named / reached side into buf;
 * returns buf. */
const char *route_named_str(const struct route_table *t, char *buf, size_t len);
const char *route_reached_str(const struct route_table *t, char *buf, size_t len);

#endif /* RT_ROUTER_RESOLVE_H */
