/* router/classify_types.h: the classified-statement layout.  Exposed because callers
 * keep one by value (per session, or on the stack): classification never allocates. */
#ifndef RT_ROUTER_CLASSIFY_TYPES_H
#define RT_ROUTER_CLASSIFY_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SQL_STMT_MAX_TABLES 64   /* more refs set SQL_STMT_TABLES_OVERFLOW */
#define SQL_STMT_NAMEBUF 4096    /* unescaped identifiers; overflow sets SQL_STMT_NAMES_OVERFLOW */

enum sql_class {
	SQL_CLASS_UNPARSED = 0, /* see sql_stmt.reason */
	SQL_CLASS_SELECT,
	SQL_CLASS_INSERT,
	SQL_CLASS_REPLACE,
	SQL_CLASS_UPDATE,
	SQL_CLASS_DELETE,
	SQL_CLASS_LOAD,
	SQL_CLASS_CREATE,
	SQL_CLASS_ALTER,
	SQL_CLASS_DROP,
	SQL_CLASS_TRUNCATE,
	SQL_CLASS_RENAME,
	SQL_CLASS_SET,
	SQL_CLASS_USE,
	SQL_CLASS_BEGIN,
	SQL_CLASS_COMMIT,
	SQL_CLASS_ROLLBACK,
	SQL_CLASS_SAVEPOINT,
	SQL_CLASS_XA,
	SQL_CLASS_SHOW,
	SQL_CLASS_EXPLAIN,      /* EXPLAIN/DESCRIBE, VEXPLAIN PLAN|KEYS: nothing executes */
	SQL_CLASS_CALL,
	SQL_CLASS_LOCK,
	SQL_CLASS_UNLOCK,
	SQL_CLASS_PREPARE,
	SQL_CLASS_EXECUTE,
	SQL_CLASS_DEALLOCATE,
	SQL_CLASS_OTHER,
	SQL_CLASS_COUNT
};

enum sql_role {
	SQL_ROLE_READ = 0,
	SQL_ROLE_WRITE,
	SQL_ROLE_DDL /* the object a DDL statement creates, changes or drops */
};

/* sql_tref.flags */
#define SQL_TREF_NEW_NAME 0x01   /* RENAME ... TO / ALTER ... RENAME: the new name */
#define SQL_TREF_IMPLICIT 0x02   /* dual added for a FROM-less SELECT */

/* sql_stmt.flags */
#define SQL_STMT_VEXPLAIN_EXEC 0x0001   /* VEXPLAIN QUERIES|ALL|TRACE: inner stmt EXECUTES */
#define SQL_STMT_VEXPLAIN_PLAN 0x0002   /* VEXPLAIN PLAN|KEYS: planned, not executed */
#define SQL_STMT_EXPLAIN_STMT 0x0004    /* EXPLAIN <stmt> (class EXPLAIN, inner_class set) */
#define SQL_STMT_PREPARE_TEXT 0x0008    /* PREPARE s FROM '<sql>': tables are the inner text's */
#define SQL_STMT_PREPARE_UNKNOWN 0x0010 /* PREPARE s FROM @var: text not knowable here */
#define SQL_STMT_TABLES_OVERFLOW 0x0020 /* more than SQL_STMT_MAX_TABLES refs */
#define SQL_STMT_NAMES_OVERFLOW 0x0040  /* identifiers did not fit SQL_STMT_NAMEBUF */
#define SQL_STMT_UNTERMINATED 0x0080    /* a quote or comment ran to the end of the text */
#define SQL_STMT_IF_EXISTS 0x0100       /* DROP ... IF EXISTS */
#define SQL_STMT_IF_NOT_EXISTS 0x0200   /* CREATE ... IF NOT EXISTS */
#define SQL_STMT_TEMPORARY 0x0400       /* CREATE/DROP TEMPORARY TABLE */
#define SQL_STMT_ALTER_RENAME 0x0800    /* ALTER TABLE ... RENAME [TO|AS] x (table rename) */
#define SQL_STMT_ALTER_DROP 0x1000      /* ALTER TABLE ... DROP (column, index, partition...) */
#define SQL_STMT_DDL_VIEW 0x2000        /* CREATE/ALTER/DROP VIEW */
#define SQL_STMT_DDL_INDEX 0x4000       /* CREATE/DROP INDEX */
#define SQL_STMT_DDL_DATABASE 0x8000    /* CREATE/DROP/ALTER DATABASE|SCHEMA (see db) */
#define SQL_STMT_DDL_TABLE 0x10000      /* CREATE/ALTER/DROP TABLE, TRUNCATE, RENAME TABLE */
#define SQL_STMT_TOO_DEEP 0x20000       /* nesting beyond the tracked depth (still scanned) */

/* A slice of sql_stmt.names */
struct sql_name {
	uint16_t off;
	uint16_t len;
};

struct sql_tref {
	struct sql_name qual;  /* qualifier as written (unescaped), len 0 if none */
	struct sql_name name;  /* table name (unescaped) */
	struct sql_name alias; /* alias, len 0 if none */
	uint8_t role;          /* enum sql_role */
	uint8_t flags;         /* SQL_TREF_* */
};

struct sql_stmt {
	uint8_t cls;           /* enum sql_class */
	uint8_t inner_cls;     /* EXPLAIN/VEXPLAIN/PREPARE: class of the inner statement */
	uint16_t ntables;
	uint32_t flags;        /* SQL_STMT_* */
	const char *reason;    /* static text when cls == SQL_CLASS_UNPARSED, else NULL */
	struct sql_name db;    /* USE target; CREATE/DROP/ALTER DATABASE name; SHOW ... FROM db */
	struct sql_name object; /* PREPARE/EXECUTE/DEALLOCATE statement name, SAVEPOINT name */
	struct sql_tref tables[SQL_STMT_MAX_TABLES];
	uint16_t names_used;
	char names[SQL_STMT_NAMEBUF];
};

#endif /* RT_ROUTER_CLASSIFY_TYPES_H */
