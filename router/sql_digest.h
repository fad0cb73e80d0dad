/* router/sql_digest.h: statement fingerprints (literals replaced by '?', a stable hash)
 * and redaction of SQL text for the trace.  Pure, no allocation: callers pass buffers.
 *
 *   char d[SQL_DIGEST_MAX]; uint64_t h = sql_digest(sql, n, 0, d, sizeof(d));
 *   char *r = malloc(n + 1); size_t rn = sql_redact(sql, n, 0, redact_all, r, n + 1);
 */
#ifndef RT_ROUTER_SQL_DIGEST_H
#define RT_ROUTER_SQL_DIGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SQL_DIGEST_MAX 1024 /* digest text beyond this is cut (the hash covers the cut text) */

/* Writes the normalised statement to out (NUL-terminated, at most outlen - 1 bytes):
 * comments, hints and directives dropped (executable-comment content kept as code),
 * whitespace collapsed, keywords upper-cased, every literal (string, number, hex, bit,
 * with its charset introducer) replaced by '?', and a list of two or more '?' collapsed
 * to "?+" (IN lists, multi-row VALUES).  Returns a 64-bit FNV-1a hash of that text:
 * equal for statements that differ only in literals, spacing, comments or keyword case.
 * `lex_flags` are SQL_LEX_* from router/sql_lex_types.h. */
uint64_t sql_digest(const char *sql, size_t n, unsigned lex_flags, char *out, size_t outlen);

/* sql_digest, and in *folded a hash of what the digest folds but a statement's tables and
 * class may depend on: the keywords as written (a keyword used as a table name is
 * upper-cased in the digest: `status` and `STATUS` are two tables) and a literal right
 * after AS (a quoted alias).  Two statements with the same digest text and the same
 * *folded differ only in value literals, spacing and comments. */
uint64_t sql_digest_ex(const char *sql, size_t n, unsigned lex_flags, char *out, size_t outlen,
		       uint64_t *folded);

/* A key for the digest that costs no lexing: the statement's bytes as written, with
 * each value literal that surely lexes as one (a '...' string without backslash, a run
 * of decimal digits standing alone, neither right after AS) cut to one marker byte
 * (SQL_SKEL_STR, SQL_SKEL_NUM); everything else is kept byte for byte.  Two statements
 * with equal skeletons and equal lex flags get equal digests and folded hashes (so what
 * is keyed on those may be keyed on the skeleton instead).  Returns false, and no key, for text holding what could change how
 * the rest lexes (a comment, a '"', a backslash in a string, an unterminated quote, a
 * marker byte) or whose skeleton would not fit in outlen bytes; sql_digest_ex then
 * does the work.  *hash is a hash of out[0..*outn). */
#define SQL_SKEL_NUM '\x01'
#define SQL_SKEL_STR '\x02'
bool sql_skeleton(const char *sql, size_t n, char *out, size_t outlen, size_t *outn,
		  uint64_t *hash);

/* Copies the statement to out with literals replaced by '?'.  With all_literals false
 * only secrets are replaced: every string / hex / bit literal of a statement that
 * carries a password (IDENTIFIED ..., PASSWORD(...), SET PASSWORD, MASTER_PASSWORD,
 * PASSWORD '...' options).  The output is never longer than the input: outlen >= n + 1
 * always suffices.  Returns the bytes written (NUL not counted). */
size_t sql_redact(const char *sql, size_t n, unsigned lex_flags, bool all_literals, char *out,
		  size_t outlen);

/* True if the statement carries a password (see sql_redact). */
bool sql_has_secret(const char *sql, size_t n, unsigned lex_flags);

#endif /* RT_ROUTER_SQL_DIGEST_H */
