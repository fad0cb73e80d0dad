/* router/classify.h: statement classification and table extraction.  One pass over the
 * lexer's code tokens, linear in the text, no allocation: results go into a caller-owned
 * struct sql_stmt (see classify_types.h; about 4.5 KiB, keep one per session or on the
 * stack).
 *
 * How to use:
 *   struct sql_stmt st;
 *   sql_classify(sql, n, 0, &st);            one statement (split first: sql_split_next)
 *   st.cls, st.flags; for i < st.ntables: st.tables[i].role,
 *   sql_stmt_str(&st, st.tables[i].name) -> pointer into st.names (NUL-terminated)
 * Then hand &st to route_resolve() (router/resolve.h). */
#ifndef RT_ROUTER_CLASSIFY_H
#define RT_ROUTER_CLASSIFY_H

#include <stddef.h>

#include "router/classify_types.h"

/* Classifies one statement sql[0..n) (trailing ';' allowed) with SQL_LEX_* lex_flags.
 * Always fills *st; never fails: text it cannot classify gets SQL_CLASS_UNPARSED and a
 * static reason. */
void sql_classify(const char *sql, size_t n, unsigned lex_flags, struct sql_stmt *st);

/* The NUL-terminated text of a name slice (borrowed from st; "" for an empty slice). */
const char *sql_stmt_str(const struct sql_stmt *st, struct sql_name nm);

/* Lower-case class name: "select", "insert", ..., "vexplain" is reported as the inner
 * class plus SQL_STMT_VEXPLAIN_EXEC, "unparsed" for SQL_CLASS_UNPARSED. */
const char *sql_class_name(enum sql_class cls);

/* "read", "write", "ddl". */
const char *sql_role_name(enum sql_role role);

/* What a statement does to the session's transaction when it succeeds: BEGIN / START
 * TRANSACTION opens one; COMMIT, ROLLBACK and DDL (implicit commit) end it. */
enum sql_tx_effect { SQL_TX_NONE = 0, SQL_TX_BEGIN, SQL_TX_END };
enum sql_tx_effect sql_stmt_tx_effect(const struct sql_stmt *st);

#endif /* RT_ROUTER_CLASSIFY_H */
