/* router/sql_lex.h: MySQL lexer (length-bounded, never reads past the input) and the
 * statement splitter built on it.  Pure: no I/O, no allocation.
 *
 * How to use:
 *   struct sql_lex lx; struct sql_tok t;
 *   sql_lex_init(&lx, sql, n, 0);
 *   while (sql_lex_next(&lx, &t)) ...          every token, comments included
 *   while (sql_lex_next_code(&lx, &t)) ...     code only: comments, hints, directives and
 *                                              the delimiters of executable comments
 *                                              skipped; the CONTENT of / *! ... * / is code
 * Token text is sql + t.off, t.len bytes.  sql_tok_ident() gives an identifier's value
 * (backticks removed, doubled backticks collapsed). */
#ifndef RT_ROUTER_SQL_LEX_H
#define RT_ROUTER_SQL_LEX_H

#include <stdbool.h>
#include <stddef.h>

#include "router/sql_lex_types.h"

/* Finds the next statement of a multi-statement text, splitting on ';' outside quotes
 * and comments (as vtgate's SplitStatementToPieces does).  Starting the scan at *pos,
 * skips empty pieces; on success sets *start and *len to the statement's bytes (trimmed of
 * surrounding whitespace, ';' excluded), advances *pos past it (just past its ';', or
 * to n) and returns true.  Returns false when no non-empty statement is left.  Linear
 * in n; lexes with flags 0 (backslash escapes on, '"' quotes a string), each piece from
 * a fresh lexer state.
 *
 * Is it the only statement?  After the first successful call, *pos == n means nothing
 * follows (the usual case: no ';', or one ';' as the last byte).  *pos < n with only
 * whitespace and ';' left ("x; ", "x;;") also ends the text: sql_split_done tells
 * both apart exactly. */
bool sql_split_next(const char *sql, size_t n, size_t *pos, size_t *start, size_t *len);

/* True if no statement is left from pos on, i.e. the next sql_split_next(sql, n, &pos,
 * ...) would return false: sql[pos..n) holds only whitespace and ';' (any other byte
 * belongs to a non-empty piece).  Costs the bytes after the last ';', usually none. */
bool sql_split_done(const char *sql, size_t n, size_t pos);

/* If the statement is a USE statement (comments allowed anywhere), writes its target
 * text with backticks removed (doubled backticks collapsed) to out (NUL-terminated,
 * cut to outlen - 1) and returns true; `USE` alone gives "".  False otherwise. */
bool sql_use_target(const char *sql, size_t n, char *out, size_t outlen);

/* Starts lexing z[0..n) with SQL_LEX_* flags.  z is borrowed; it must outlive lx. */
void sql_lex_init(struct sql_lex *lx, const char *z, size_t n, unsigned flags);

/* Next token of any kind into *t; false (t->type = SQL_TK_EOF) at the end.  Every call
 * consumes at least one byte, so a full scan is linear in n. */
bool sql_lex_next(struct sql_lex *lx, struct sql_tok *t);

/* Like sql_lex_next, but skips SPACE, COMMENT, HINT, DIRECTIVE, EXEC_BEGIN, EXEC_END. */
bool sql_lex_next_code(struct sql_lex *lx, struct sql_tok *t);

/* Keyword id of s[0..n) (case-insensitive), SQL_KW_NONE if it is not one we know. */
enum sql_kw sql_kw_lookup(const char *s, size_t n);

/* Same answer by binary search over the sorted keyword table (reference for tests). */
enum sql_kw sql_kw_lookup_sorted(const char *s, size_t n);

/* Upper-case name of a keyword ("" for SQL_KW_NONE or out of range). */
const char *sql_kw_name(enum sql_kw kw);

/* Value of an IDENT, QIDENT, STRING or VAR-less token: delimiters removed, doubled quotes
 * collapsed, for STRING the backslash escapes decoded (unless SQL_LEX_NO_BACKSLASH_ESCAPES
 * in flags).  Writes at most outlen - 1 bytes plus a NUL to out and returns the full
 * length of the value (so a return >= outlen means it was cut). */
size_t sql_tok_value(const char *sql, const struct sql_tok *t, unsigned flags, char *out,
		     size_t outlen);

/* Name of a token type, for tests and debugging ("ident", "string", ...). */
const char *sql_tk_name(enum sql_tk tk);

#endif /* RT_ROUTER_SQL_LEX_H */
