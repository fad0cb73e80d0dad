/* router/sql_lex_types.h: layouts of the lexer state and token, exposed because callers
 * keep them by value (no allocation on the statement path).  Only other types headers
 * are included here. */
#ifndef RT_ROUTER_SQL_LEX_TYPES_H
#define RT_ROUTER_SQL_LEX_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Lexer option flags (the server's sql_mode bits that change lexing). */
#define SQL_LEX_ANSI_QUOTES 0x1u            /* "x" is an identifier, not a string */
#define SQL_LEX_NO_BACKSLASH_ESCAPES 0x2u   /* '\' is an ordinary byte inside strings */

enum sql_tk {
	SQL_TK_EOF = 0,
	SQL_TK_SPACE,       /* run of whitespace */
	SQL_TK_COMMENT,     /* -- x, # x, / * x * / (not hints, directives or executable) */
	SQL_TK_HINT,        /* optimizer hint / *+ ... * / */
	SQL_TK_DIRECTIVE,   /* Vitess directive / *vt+ ... * / */
	SQL_TK_EXEC_BEGIN,  /* opening of an executable comment / *! or / *!50700 */
	SQL_TK_EXEC_END,    /* the * / that closes an executable comment */
	SQL_TK_IDENT,       /* unquoted identifier or keyword (see kw) */
	SQL_TK_QIDENT,      /* `quoted` identifier (or "x" under ANSI_QUOTES) */
	SQL_TK_STRING,      /* 'x', "x", N'x' */
	SQL_TK_INTRODUCER,  /* charset introducer _utf8mb4 directly before a literal */
	SQL_TK_NUMBER,      /* 12, 1.5, .5e3 */
	SQL_TK_HEXNUM,      /* x'0A', 0x0A */
	SQL_TK_BITNUM,      /* b'01', 0b01 */
	SQL_TK_VAR,         /* @x, @@x, @'x', @`x`, @ */
	SQL_TK_PARAM,       /* ? or :name */
	SQL_TK_LPAREN,
	SQL_TK_RPAREN,
	SQL_TK_COMMA,
	SQL_TK_DOT,
	SQL_TK_SEMI,
	SQL_TK_OP,          /* any other operator: = <=> := -> ->> || && ... */
	SQL_TK_COUNT
};

/* Token flags */
#define SQL_TOKF_UNTERMINATED 0x1u /* quote or comment ran to the end of the input */
#define SQL_TOKF_IN_EXEC 0x2u      /* token lies inside an executable comment */

struct sql_tok {
	uint8_t type;  /* enum sql_tk */
	uint8_t flags; /* SQL_TOKF_* */
	uint16_t kw;   /* enum sql_kw for SQL_TK_IDENT, else SQL_KW_NONE */
	size_t off;    /* offset of the first byte in the input */
	size_t len;    /* bytes, delimiters included */
};

struct sql_lex {
	const char *z;
	size_t n;
	size_t pos;
	unsigned flags;     /* SQL_LEX_* */
	unsigned exec;      /* inside an executable comment (nesting depth, normally 0/1) */
	bool prev_word;     /* last code token was an identifier: ".5" after it is a dot */
};

/* Keywords the classifier needs, SORTED (the table is searched with bsearch; a unit test
 * checks the order).  Anything else is an identifier with kw == SQL_KW_NONE. */
#define SQL_KEYWORDS(X)                                                                            \
	X(ADD) X(AFTER) X(ALGORITHM) X(ALL) X(ALTER) X(ANALYZE) X(AS) X(BEGIN) X(BY) X(CALL)       \
	X(CHANGE) X(CHECK) X(COLUMN) X(COLUMNS) X(COMMIT) X(CONCURRENT) X(CONSTRAINT) X(CREATE)    \
	X(CROSS) X(DATA) X(DATABASE) X(DATABASES) X(DEALLOCATE) X(DEFINER) X(DELAYED) X(DELETE)    \
	X(DESC) X(DESCRIBE) X(DISTINCT) X(DO) X(DROP) X(DUAL) X(DUPLICATE) X(EXCEPT) X(EXECUTE)    \
	X(EXISTS) X(EXPLAIN) X(FIELDS) X(FLUSH) X(FOR) X(FORCE) X(FOREIGN) X(FORMAT) X(FROM) X(FULL)        \
	X(FULLTEXT) X(FUNCTION) X(GRANT) X(GROUP) X(HANDLER) X(HAVING) X(HIGH_PRIORITY) X(IF)      \
	X(IGNORE) X(IN) X(INDEX) X(INDEXES) X(INFILE) X(INNER) X(INSERT) X(INTERSECT) X(INTO)     \
	X(JOIN) X(KEY) X(KEYS) X(KILL) X(LATERAL) X(LEFT) X(LIKE) X(LIMIT) X(LOAD) X(LOCAL)        \
	X(LOCK) X(LOW_PRIORITY) X(MODIFY) X(NATURAL) X(NOT) X(ON) X(OPTIMIZE) X(OR) X(ORDER)       \
	X(OUTER) X(PARTITION) X(PLAN) X(PREPARE) X(PROCEDURE) X(QUERIES) X(QUICK) X(READ)          \
	X(RECURSIVE) X(REFERENCES) X(RELEASE) X(RENAME) X(REPAIR) X(REPLACE) X(REVOKE) X(RIGHT)    \
	X(ROLLBACK) X(SAVEPOINT) X(SCHEMA) X(SCHEMAS) X(SELECT) X(SET) X(SHOW) X(SPATIAL)          \
	X(SQL_CALC_FOUND_ROWS) X(SQL_NO_CACHE) X(START) X(STRAIGHT_JOIN) X(TABLE) X(TABLES)       \
	X(TEMPORARY) X(TO) X(TRACE) X(TRANSACTION) X(TRIGGER) X(TRUNCATE) X(UNION) X(UNIQUE)      \
	X(UNLOCK) X(UPDATE) X(USE) X(USING) X(VALUES) X(VEXPLAIN) X(VIEW) X(WHERE) X(WINDOW)       \
	X(WITH) X(WRITE) X(XA)

#define SQL_KW_ENUM_(name) SQL_KW_##name,
enum sql_kw { SQL_KW_NONE = 0, SQL_KEYWORDS(SQL_KW_ENUM_) SQL_KW_COUNT };
#undef SQL_KW_ENUM_

#endif /* RT_ROUTER_SQL_LEX_TYPES_H */
