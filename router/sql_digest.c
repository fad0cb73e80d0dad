/* router/sql_digest.c: fingerprints and redaction on top of the lexer. */
#include "router/sql_digest.h"

#include <string.h>
#include <strings.h>

#include "router/sql_lex.h"

struct dbuf {
	char *p;
	size_t cap; /* usable bytes, NUL excluded */
	size_t len;
};

static void
dbuf_put(struct dbuf *b, const char *s, size_t n)
{
	size_t room = b->cap - b->len;

	if (n > room) {
		n = room;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

static bool
dbuf_ends_with(const struct dbuf *b, const char *s)
{
	size_t n = strlen(s);

	return b->len >= n && memcmp(b->p + b->len - n, s, n) == 0;
}

static bool
tok_is_literal(const struct sql_tok *t)
{
	return t->type == SQL_TK_STRING || t->type == SQL_TK_NUMBER || t->type == SQL_TK_HEXNUM ||
	       t->type == SQL_TK_BITNUM;
}

/* Emits '?', folding "?, ?" (and "?+, ?") into "?+".  The caller has already written
 * the space owed before this token, so the tail is "?, " or "?+, ". */
static void
digest_put_placeholder(struct dbuf *b)
{
	if (dbuf_ends_with(b, "?+, ")) {
		b->len -= 2;
		return;
	}
	if (dbuf_ends_with(b, "?, ")) {
		b->len -= 2;
		dbuf_put(b, "+", 1);
		return;
	}
	dbuf_put(b, "?", 1);
}

/* Multi-row VALUES: "(?+),(?+)" -> "(?+)" and "(?),(?)" -> "(?)", so the number of
 * rows does not split a digest. */
static void
digest_fold_rows(struct dbuf *b)
{
	if (dbuf_ends_with(b, "(?+),(?+)")) {
		b->len -= 5;
	} else if (dbuf_ends_with(b, "(?),(?)")) {
		b->len -= 4;
	}
}

/* Canonical spacing: one space between tokens, none after '(' or '.', none before
 * '(' ')' ',' '.' ';' (so "id=1" and "id = 1", "COUNT (*)" and "COUNT(*)" agree). */
static bool
tok_needs_space_before(const struct sql_tok *t)
{
	return t->type != SQL_TK_RPAREN && t->type != SQL_TK_COMMA && t->type != SQL_TK_DOT &&
	       t->type != SQL_TK_SEMI && t->type != SQL_TK_LPAREN;
}

uint64_t
sql_digest(const char *sql, size_t n, unsigned lex_flags, char *out, size_t outlen)
{
	struct dbuf b = {out, outlen ? outlen - 1 : 0, 0};
	struct sql_lex lx;
	struct sql_tok t;
	bool after_open = true; /* no space before the first token or after '(' / '.' */

	sql_lex_init(&lx, sql, n, lex_flags);
	while (sql_lex_next_code(&lx, &t)) {
		if (t.type == SQL_TK_INTRODUCER) {
			continue; /* _utf8mb4'x' -> ? */
		}
		if (!after_open && tok_needs_space_before(&t)) {
			dbuf_put(&b, " ", 1);
		}
		if (tok_is_literal(&t)) {
			digest_put_placeholder(&b);
		} else if (t.type == SQL_TK_IDENT && t.kw != 0) {
			const char *kw = sql_kw_name((enum sql_kw)t.kw);
			dbuf_put(&b, kw, strlen(kw));
		} else {
			dbuf_put(&b, sql + t.off, t.len);
		}
		if (t.type == SQL_TK_RPAREN) {
			digest_fold_rows(&b);
		}
		after_open = t.type == SQL_TK_LPAREN || t.type == SQL_TK_DOT;
	}
	if (outlen) {
		out[b.len] = 0;
	}
	uint64_t h = 1469598103934665603ULL;
	for (size_t i = 0; i < b.len; i++) {
		h = (h ^ (unsigned char)out[i]) * 1099511628211ULL;
	}
	return h;
}

static bool
ident_is(const char *sql, const struct sql_tok *t, const char *word)
{
	return t->type == SQL_TK_IDENT && t->len == strlen(word) &&
	       strncasecmp(sql + t->off, word, t->len) == 0;
}

/* True if the text holds "PASSWORD" or "IDENTIFIED" in any case: every word below does,
 * so a statement without either needs no lexing. */
static bool
may_have_secret(const char *sql, size_t n)
{
	for (size_t i = 0; i + 8 <= n; i++) {
		char c = (char)(sql[i] | 0x20);
		if ((c == 'p' && strncasecmp(sql + i, "password", 8) == 0) ||
		    (c == 'i' && i + 10 <= n && strncasecmp(sql + i, "identified", 10) == 0)) {
			return true;
		}
	}
	return false;
}

bool
sql_has_secret(const char *sql, size_t n, unsigned lex_flags)
{
	struct sql_lex lx;
	struct sql_tok t;

	if (!may_have_secret(sql, n)) {
		return false;
	}
	sql_lex_init(&lx, sql, n, lex_flags);
	while (sql_lex_next_code(&lx, &t)) {
		if (ident_is(sql, &t, "IDENTIFIED") || ident_is(sql, &t, "PASSWORD") ||
		    ident_is(sql, &t, "MASTER_PASSWORD") || ident_is(sql, &t, "OLD_PASSWORD")) {
			return true;
		}
	}
	return false;
}

size_t
sql_redact(const char *sql, size_t n, unsigned lex_flags, bool all_literals, char *out,
	   size_t outlen)
{
	struct dbuf b = {out, outlen ? outlen - 1 : 0, 0};
	struct sql_lex lx;
	struct sql_tok t;
	bool secret = sql_has_secret(sql, n, lex_flags);

	sql_lex_init(&lx, sql, n, lex_flags);
	while (sql_lex_next(&lx, &t)) {
		bool hide = (all_literals && tok_is_literal(&t)) ||
			    (secret && t.type != SQL_TK_NUMBER && tok_is_literal(&t));
		if (hide) {
			dbuf_put(&b, "?", 1);
		} else {
			dbuf_put(&b, sql + t.off, t.len);
		}
	}
	if (outlen) {
		out[b.len] = 0;
	}
	return b.len;
}
