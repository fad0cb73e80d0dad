/* tests/unit/test_sql_lex.c: lexer, splitter and USE-target extraction; differential
 * tests against the lexer and splitter as they were before the speed work. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "router/sql_lex.h"

/* --- reference: router/sql_lex.c as of main eab1507 (before the speed work) -----------
 * Copied verbatim: the byte classes, keyword hash lookup, scanners, sql_lex_next(_code)
 * and sql_split_next (a full lexer pass per piece).  Only the public names are made
 * static and prefixed ref_.  The differential tests below require the current code to
 * give identical tokens and pieces on every input. */

enum cc {
	CC_OTHER = 0, /* single-byte operator or illegal byte */
	CC_SPACE,
	CC_ALPHA,     /* letters, _, $, bytes >= 0x80 */
	CC_X,         /* x X: x'..' hex literal */
	CC_B,         /* b B: b'..' bit literal */
	CC_N,         /* n N: N'..' national string */
	CC_DIGIT,
	CC_QUOTE,     /* ' */
	CC_DQUOTE,    /* " */
	CC_BACKTICK,
	CC_MINUS,
	CC_HASH,
	CC_SLASH,
	CC_STAR,
	CC_AT,
	CC_LP,
	CC_RP,
	CC_COMMA,
	CC_DOT,
	CC_SEMI,
	CC_QMARK,
	CC_COLON,
	CC_OPCHAR     /* chars that start multi-byte operators: < > = ! | & - */
};

#define R8(v) v, v, v, v, v, v, v, v
#define R16(v) R8(v), R8(v)
static const uint8_t lex_class[256] = {
	/* 0x00 */ R8(CC_OTHER), CC_OTHER, CC_SPACE, CC_SPACE, CC_SPACE, CC_SPACE, CC_SPACE,
	CC_OTHER, CC_OTHER,
	/* 0x10 */ R16(CC_OTHER),
	/* 0x20 */ CC_SPACE, CC_OPCHAR, CC_DQUOTE, CC_HASH, CC_ALPHA, CC_OTHER, CC_OPCHAR,
	CC_QUOTE, CC_LP, CC_RP, CC_STAR, CC_OTHER, CC_COMMA, CC_MINUS, CC_DOT, CC_SLASH,
	/* 0x30 */ R8(CC_DIGIT), CC_DIGIT, CC_DIGIT, CC_COLON, CC_SEMI, CC_OPCHAR, CC_OPCHAR,
	CC_OPCHAR, CC_QMARK,
	/* 0x40 */ CC_AT, CC_ALPHA, CC_B, CC_ALPHA, CC_ALPHA, CC_ALPHA, CC_ALPHA, CC_ALPHA,
	CC_ALPHA, CC_ALPHA, CC_ALPHA, CC_ALPHA, CC_ALPHA, CC_ALPHA, CC_N, CC_ALPHA,
	/* 0x50 */ R8(CC_ALPHA), CC_X, CC_ALPHA, CC_ALPHA, CC_OTHER, CC_OTHER, CC_OTHER,
	CC_OTHER, CC_ALPHA,
	/* 0x60 */ CC_BACKTICK, CC_ALPHA, CC_B, CC_ALPHA, CC_ALPHA, CC_ALPHA, CC_ALPHA, CC_ALPHA,
	CC_ALPHA, CC_ALPHA, CC_ALPHA, CC_ALPHA, CC_ALPHA, CC_ALPHA, CC_N, CC_ALPHA,
	/* 0x70 */ R8(CC_ALPHA), CC_X, CC_ALPHA, CC_ALPHA, CC_OTHER, CC_OPCHAR, CC_OTHER,
	CC_OTHER, CC_OTHER,
	/* 0x80 */ R16(CC_ALPHA), R16(CC_ALPHA), R16(CC_ALPHA), R16(CC_ALPHA),
	R16(CC_ALPHA), R16(CC_ALPHA), R16(CC_ALPHA), R16(CC_ALPHA),
};
#undef R8
#undef R16

_Static_assert(sizeof(lex_class) == 256, "lex_class covers every byte");

/* CC_ALPHA .. CC_DIGIT are contiguous: identifier bytes. */
_Static_assert(CC_X == CC_ALPHA + 1 && CC_B == CC_ALPHA + 2 && CC_N == CC_ALPHA + 3 &&
		   CC_DIGIT == CC_ALPHA + 4,
	       "word classes are contiguous");

static inline bool
is_word(unsigned char c)
{
	return (unsigned)(lex_class[c] - CC_ALPHA) <= (unsigned)(CC_DIGIT - CC_ALPHA);
}

static bool
is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static bool
is_hex(unsigned char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Byte at i, or 0 past the end (callers never treat 0 as a terminator, only as "no
 * match" for the specific byte they look for). */
static unsigned char
at(const struct sql_lex *lx, size_t i)
{
	return i < lx->n ? (unsigned char)lx->z[i] : 0;
}

/* --- keywords --------------------------------------------------------------- */

#define SQL_KW_NAME_(name) #name,
static const char *const kw_names[SQL_KW_COUNT] = {"", SQL_KEYWORDS(SQL_KW_NAME_)};
#undef SQL_KW_NAME_

static int
kw_cmp(const char *s, size_t n, const char *kw)
{
	size_t i;

	for (i = 0; i < n && kw[i] != '\0'; i++) {
		unsigned char a = (unsigned char)s[i], b = (unsigned char)kw[i];

		if (a >= 'a' && a <= 'z')
			a = (unsigned char)(a - 'a' + 'A');
		if (a != b)
			return a < b ? -1 : 1;
	}
	if (i < n)
		return 1;
	return kw[i] == '\0' ? 0 : -1;
}

/* Keyword lookup: a 1024-slot open-addressing table keyed by a cheap hash of the
 * upper-cased length, first, second and last bytes, filled once from the sorted name
 * table (which stays the reference: a unit test checks both agree).  A lookup costs one
 * hash and usually one comparison. */
#define KW_SLOTS 1024
#define KW_MAXLEN 24
static uint16_t kw_table[KW_SLOTS];
static bool kw_ready;

static unsigned char
up(unsigned char c)
{
	return (c >= 'a' && c <= 'z') ? (unsigned char)(c - 'a' + 'A') : c;
}

static unsigned
kw_hash(const char *s, size_t n)
{
	unsigned h = (unsigned)n * 131u;

	h = h * 31u + up((unsigned char)s[0]);
	h = h * 31u + up((unsigned char)s[n > 1 ? 1 : 0]);
	h = h * 31u + up((unsigned char)s[n - 1]);
	h = h * 31u + up((unsigned char)s[n / 2]);
	return (h ^ (h >> 7)) & (KW_SLOTS - 1);
}

static void
kw_build(void)
{
	int k;

	for (k = 1; k < SQL_KW_COUNT; k++) {
		unsigned i = kw_hash(kw_names[k], strlen(kw_names[k]));

		while (kw_table[i] != 0)
			i = (i + 1) & (KW_SLOTS - 1);
		kw_table[i] = (uint16_t)k;
	}
	kw_ready = true;
}

/* Built before main(), so concurrent lookups only ever read the table. */
static void kw_init(void) __attribute__((constructor));
static void
kw_init(void)
{
	if (!kw_ready)
		kw_build();
}

static enum sql_kw
ref_kw_lookup(const char *s, size_t n)
{
	unsigned i;

	if (n < 2 || n > KW_MAXLEN)
		return SQL_KW_NONE;
	if (!kw_ready)
		kw_build();
	for (i = kw_hash(s, n); kw_table[i] != 0; i = (i + 1) & (KW_SLOTS - 1)) {
		const char *kw = kw_names[kw_table[i]];

		if (kw_cmp(s, n, kw) == 0)
			return (enum sql_kw)kw_table[i];
	}
	return SQL_KW_NONE;
}

/* --- scanners: each returns the end offset of the token starting at i ---------- */

/* Quoted text starting at the opening quote i; sets *unterminated. */
static size_t
scan_quoted(const struct sql_lex *lx, size_t i, unsigned char q, bool backslash, bool *unterm)
{
	size_t j = i + 1;

	while (j < lx->n) {
		unsigned char c = (unsigned char)lx->z[j];

		if (c == '\\' && backslash) {
			j += (j + 1 < lx->n) ? 2 : 1;
			continue;
		}
		if (c == q) {
			if (at(lx, j + 1) == q && j + 1 < lx->n) {
				j += 2;
				continue;
			}
			*unterm = false;
			return j + 1;
		}
		j++;
	}
	*unterm = true;
	return lx->n;
}

static size_t
scan_line(const struct sql_lex *lx, size_t i)
{
	const char *nl = memchr(lx->z + i, '\n', lx->n - i);

	return nl ? (size_t)(nl - lx->z) : lx->n;
}

/* / * ... * / block comment body from i (just after the opener); end past the closer. */
static size_t
scan_block(const struct sql_lex *lx, size_t i, bool *unterm)
{
	size_t j;

	for (j = i; j + 1 < lx->n; j++) {
		if (lx->z[j] == '*' && lx->z[j + 1] == '/') {
			*unterm = false;
			return j + 2;
		}
	}
	*unterm = true;
	return lx->n;
}

static size_t
scan_word(const struct sql_lex *lx, size_t j)
{
	while (j < lx->n && is_word((unsigned char)lx->z[j]))
		j++;
	return j;
}

/* Number at i: digits [. digits] [e[+-]digits]; 0x../0b..; a digit run followed by word
 * bytes is an identifier (MySQL allows 1abc).  Sets *type. */
static size_t
scan_number(const struct sql_lex *lx, size_t i, uint8_t *type)
{
	size_t j = i;
	bool dot = false;

	*type = SQL_TK_NUMBER;
	if (at(lx, i) == '0' && (at(lx, i + 1) == 'x' || at(lx, i + 1) == 'b')) {
		bool hex = at(lx, i + 1) == 'x';

		j = i + 2;
		while (j < lx->n && (hex ? is_hex(at(lx, j)) : (at(lx, j) == '0' || at(lx, j) == '1')))
			j++;
		if (j > i + 2 && !(j < lx->n && is_word(at(lx, j)))) {
			*type = hex ? SQL_TK_HEXNUM : SQL_TK_BITNUM;
			return j;
		}
		*type = SQL_TK_IDENT;
		return scan_word(lx, j);
	}
	while (j < lx->n && is_digit(at(lx, j)))
		j++;
	if (at(lx, j) == '.' && j < lx->n) {
		dot = true;
		j++;
		while (j < lx->n && is_digit(at(lx, j)))
			j++;
	}
	if ((at(lx, j) == 'e' || at(lx, j) == 'E') && j < lx->n) {
		size_t k = j + 1;

		if (at(lx, k) == '+' || at(lx, k) == '-')
			k++;
		if (k < lx->n && is_digit(at(lx, k))) {
			j = k;
			while (j < lx->n && is_digit(at(lx, j)))
				j++;
		}
	}
	if (!dot && j < lx->n && is_word(at(lx, j))) {
		*type = SQL_TK_IDENT;
		return scan_word(lx, j);
	}
	return j;
}

/* Multi-byte operators; returns the end. */
static size_t
scan_op(const struct sql_lex *lx, size_t i)
{
	static const char *const ops3[] = {"<=>", "->>"};
	static const char *const ops2[] = {"<=", ">=", "<>", "!=", ":=", "||", "&&",
					   "<<", ">>", "->"};
	size_t k;

	for (k = 0; k < sizeof(ops3) / sizeof(ops3[0]); k++)
		if (i + 3 <= lx->n && memcmp(lx->z + i, ops3[k], 3) == 0)
			return i + 3;
	for (k = 0; k < sizeof(ops2) / sizeof(ops2[0]); k++)
		if (i + 2 <= lx->n && memcmp(lx->z + i, ops2[k], 2) == 0)
			return i + 2;
	return i + 1;
}

/* '/' at i: a comment of some kind, or the division operator. */
static size_t
scan_slash(struct sql_lex *lx, size_t i, struct sql_tok *t)
{
	bool unterm = false;
	size_t j;

	if (at(lx, i + 1) != '*' || i + 1 >= lx->n) {
		t->type = SQL_TK_OP;
		return i + 1;
	}
	if (at(lx, i + 2) == '!' && i + 2 < lx->n) {
		size_t d = i + 3;

		while (d < lx->n && d < i + 9 && is_digit(at(lx, d)))
			d++;
		t->type = SQL_TK_EXEC_BEGIN;
		lx->exec++;
		/* A 5- or 6-digit server version is part of the opener; other digits are code. */
		return (d - (i + 3) == 5 || d - (i + 3) == 6) ? d : i + 3;
	}
	if (at(lx, i + 2) == '+' && i + 2 < lx->n)
		t->type = SQL_TK_HINT;
	else if (i + 5 <= lx->n && memcmp(lx->z + i + 2, "vt+", 3) == 0)
		t->type = SQL_TK_DIRECTIVE;
	else
		t->type = SQL_TK_COMMENT;
	j = scan_block(lx, i + 2, &unterm);
	if (unterm)
		t->flags |= SQL_TOKF_UNTERMINATED;
	return j;
}

static size_t
scan_quote_tok(struct sql_lex *lx, size_t i, unsigned char q, struct sql_tok *t)
{
	bool unterm = false;
	bool bs = !(lx->flags & SQL_LEX_NO_BACKSLASH_ESCAPES);
	size_t j;

	if (q == '`' || (q == '"' && (lx->flags & SQL_LEX_ANSI_QUOTES))) {
		t->type = SQL_TK_QIDENT;
		bs = false;
	} else {
		t->type = SQL_TK_STRING;
	}
	j = scan_quoted(lx, i, q, bs, &unterm);
	if (unterm)
		t->flags |= SQL_TOKF_UNTERMINATED;
	return j;
}

/* x'..', b'..', N'..' or an identifier starting with that letter. */
static size_t
scan_prefixed(struct sql_lex *lx, size_t i, enum cc k, struct sql_tok *t)
{
	if (at(lx, i + 1) == '\'' && i + 1 < lx->n) {
		size_t j = scan_quote_tok(lx, i + 1, '\'', t);

		t->type = k == CC_X ? SQL_TK_HEXNUM : k == CC_B ? SQL_TK_BITNUM : SQL_TK_STRING;
		return j;
	}
	t->type = SQL_TK_IDENT;
	return scan_word(lx, i + 1);
}

static size_t
scan_var(struct sql_lex *lx, size_t i, struct sql_tok *t)
{
	size_t j = i + 1;
	unsigned char c;

	t->type = SQL_TK_VAR;
	if (at(lx, j) == '@' && j < lx->n)
		j++;
	c = at(lx, j);
	if (j < lx->n && (c == '\'' || c == '"' || c == '`')) {
		bool unterm = false;

		j = scan_quoted(lx, j, c, c != '`' && !(lx->flags & SQL_LEX_NO_BACKSLASH_ESCAPES),
				&unterm);
		if (unterm)
			t->flags |= SQL_TOKF_UNTERMINATED;
		return j;
	}
	/* @@session.x: dots are part of a system variable name */
	while (j < lx->n && (is_word(at(lx, j)) || (at(lx, j) == '.' && j > i + 1)))
		j++;
	return j;
}

static size_t
scan_alpha(struct sql_lex *lx, size_t i, struct sql_tok *t)
{
	size_t j = scan_word(lx, i);
	unsigned char c = at(lx, j);

	t->type = SQL_TK_IDENT;
	if (lx->z[i] == '_' && j > i + 1 && j < lx->n && (c == '\'' || c == '"'))
		t->type = SQL_TK_INTRODUCER;
	else if (lx->z[i] == '_' && j > i + 1 && j + 1 < lx->n && (c == 'x' || c == 'X' ||
		 c == 'b' || c == 'B') && lx->z[j + 1] == '\'')
		t->type = SQL_TK_INTRODUCER;
	return j;
}

/* One token starting at lx->pos; returns its end offset.  Fills t->type/flags. */
static size_t
scan_one(struct sql_lex *lx, size_t i, struct sql_tok *t)
{
	unsigned char c = (unsigned char)lx->z[i];
	bool unterm = false;
	size_t j;

	switch ((enum cc)lex_class[c]) {
	case CC_SPACE:
		for (j = i + 1; j < lx->n && lex_class[(unsigned char)lx->z[j]] == CC_SPACE; j++)
			;
		t->type = SQL_TK_SPACE;
		return j;
	case CC_X:
	case CC_B:
	case CC_N:
		return scan_prefixed(lx, i, (enum cc)lex_class[c], t);
	case CC_ALPHA:
		return scan_alpha(lx, i, t);
	case CC_DIGIT:
		return scan_number(lx, i, &t->type);
	case CC_QUOTE:
	case CC_DQUOTE:
	case CC_BACKTICK:
		return scan_quote_tok(lx, i, c, t);
	case CC_MINUS:
		/* "--" starts a comment only when followed by a space/control byte or the end */
		if (at(lx, i + 1) == '-' && i + 1 < lx->n && (i + 2 >= lx->n || at(lx, i + 2) <= ' ')) {
			t->type = SQL_TK_COMMENT;
			return scan_line(lx, i);
		}
		t->type = SQL_TK_OP;
		return scan_op(lx, i);
	case CC_HASH:
		t->type = SQL_TK_COMMENT;
		return scan_line(lx, i);
	case CC_SLASH:
		return scan_slash(lx, i, t);
	case CC_STAR:
		if (lx->exec > 0 && at(lx, i + 1) == '/' && i + 1 < lx->n) {
			lx->exec--;
			t->type = SQL_TK_EXEC_END;
			return i + 2;
		}
		t->type = SQL_TK_OP;
		return i + 1;
	case CC_AT:
		return scan_var(lx, i, t);
	case CC_LP:
		t->type = SQL_TK_LPAREN;
		return i + 1;
	case CC_RP:
		t->type = SQL_TK_RPAREN;
		return i + 1;
	case CC_COMMA:
		t->type = SQL_TK_COMMA;
		return i + 1;
	case CC_SEMI:
		t->type = SQL_TK_SEMI;
		return i + 1;
	case CC_DOT:
		if (!lx->prev_word && i + 1 < lx->n && is_digit(at(lx, i + 1)))
			return scan_number(lx, i, &t->type);
		t->type = SQL_TK_DOT;
		return i + 1;
	case CC_QMARK:
		t->type = SQL_TK_PARAM;
		return i + 1;
	case CC_COLON:
		if (i + 1 < lx->n && is_word(at(lx, i + 1))) {
			t->type = SQL_TK_PARAM;
			return scan_word(lx, i + 1);
		}
		t->type = SQL_TK_OP;
		return scan_op(lx, i);
	case CC_OPCHAR:
		t->type = SQL_TK_OP;
		return scan_op(lx, i);
	case CC_OTHER:
	default:
		(void)unterm;
		t->type = SQL_TK_OP;
		return i + 1;
	}
}

static void
ref_lex_init(struct sql_lex *lx, const char *z, size_t n, unsigned flags)
{
	memset(lx, 0, sizeof(*lx));
	lx->z = z;
	lx->n = z ? n : 0;
	lx->flags = flags;
}

static bool
ref_lex_next(struct sql_lex *lx, struct sql_tok *t)
{
	size_t i = lx->pos, j;

	t->type = SQL_TK_EOF;
	t->flags = 0;
	t->kw = SQL_KW_NONE;
	t->off = i;
	t->len = 0;
	if (i >= lx->n)
		return false;
	if (lx->exec > 0)
		t->flags |= SQL_TOKF_IN_EXEC;
	j = scan_one(lx, i, t);
	if (j <= i)
		j = i + 1; /* invariant: progress (linear time) */
	if (j > lx->n)
		j = lx->n;
	t->len = j - i;
	lx->pos = j;
	if (t->type == SQL_TK_IDENT)
		t->kw = (uint16_t)ref_kw_lookup(lx->z + i, t->len);
	if (t->type != SQL_TK_SPACE && t->type != SQL_TK_COMMENT && t->type != SQL_TK_HINT &&
	    t->type != SQL_TK_DIRECTIVE)
		lx->prev_word = t->type == SQL_TK_IDENT || t->type == SQL_TK_QIDENT;
	return true;
}

static bool
ref_lex_next_code(struct sql_lex *lx, struct sql_tok *t)
{
	for (;;) {
		/* whitespace is skipped here without building tokens (the hot path) */
		while (lx->pos < lx->n && lex_class[(unsigned char)lx->z[lx->pos]] == CC_SPACE)
			lx->pos++;
		if (!ref_lex_next(lx, t))
			return false;
		switch (t->type) {
		case SQL_TK_SPACE:
		case SQL_TK_COMMENT:
		case SQL_TK_HINT:
		case SQL_TK_DIRECTIVE:
		case SQL_TK_EXEC_BEGIN:
		case SQL_TK_EXEC_END:
			continue;
		default:
			return true;
		}
	}
}

static bool
is_space_byte(unsigned char c)
{
	return lex_class[c] == CC_SPACE;
}

static bool
ref_split_next(const char *sql, size_t n, size_t *pos, size_t *start, size_t *len)
{
	struct sql_lex lx;
	struct sql_tok t;

	while (*pos < n) {
		size_t s = *pos, e;

		ref_lex_init(&lx, sql, n, 0);
		lx.pos = s;
		e = n;
		while (ref_lex_next(&lx, &t)) {
			if (t.type == SQL_TK_SEMI) {
				e = t.off;
				break;
			}
		}
		*pos = (e < n) ? e + 1 : n;
		while (s < e && is_space_byte((unsigned char)sql[s]))
			s++;
		while (e > s && is_space_byte((unsigned char)sql[e - 1]))
			e--;
		if (e > s) {
			*start = s;
			*len = e - s;
			return true;
		}
	}
	return false;
}

/* --- end of reference ---------------------------------------------------------------- */

/* Renders every token as "type:text" joined by '|', spaces omitted. */
static void
render(const char *sql, size_t n, unsigned flags, bool code_only, char *out, size_t outlen)
{
	struct sql_lex lx;
	struct sql_tok t;
	size_t w = 0;

	sql_lex_init(&lx, sql, n, flags);
	out[0] = '\0';
	while (code_only ? sql_lex_next_code(&lx, &t) : sql_lex_next(&lx, &t)) {
		int r;

		assert_true(t.len > 0);
		assert_true(t.off + t.len <= n);
		if (t.type == SQL_TK_SPACE)
			continue;
		r = snprintf(out + w, outlen - w, "%s%s%s:%.*s", w ? "|" : "",
			     sql_tk_name((enum sql_tk)t.type),
			     (t.flags & SQL_TOKF_UNTERMINATED) ? "!" : "", (int)t.len, sql + t.off);
		assert_true(r > 0 && (size_t)r < outlen - w);
		w += (size_t)r;
	}
}

struct lex_case {
	const char *sql;
	unsigned flags;
	const char *want;
};

static const struct lex_case lex_cases[] = {
	{"select 1", 0, "ident:select|number:1"},
	{"a -- c\nb", 0, "ident:a|comment:-- c|ident:b"},
	{"a --\tc\nb", 0, "ident:a|comment:--\tc|ident:b"},
	{"a --", 0, "ident:a|comment:--"},
	{"a --c", 0, "ident:a|op:-|op:-|ident:c"},
	{"1--1", 0, "number:1|op:-|op:-|number:1"},
	{"a # x; y\nb", 0, "ident:a|comment:# x; y|ident:b"},
	{"a /* x; */ b", 0, "ident:a|comment:/* x; */|ident:b"},
	{"a /* x", 0, "ident:a|comment!:/* x"},
	{"select /*+ SET_VAR(x=1) */ 1", 0, "ident:select|hint:/*+ SET_VAR(x=1) */|number:1"},
	{"select /*vt+ QUERY_TIMEOUT_MS=1 */ 1", 0,
	 "ident:select|directive:/*vt+ QUERY_TIMEOUT_MS=1 */|number:1"},
	{"/*!50700 drop table t */", 0,
	 "exec_begin:/*!50700|ident:drop|ident:table|ident:t|exec_end:*/"},
	{"/*!drop table t*/", 0, "exec_begin:/*!|ident:drop|ident:table|ident:t|exec_end:*/"},
	{"/*!123 x */", 0, "exec_begin:/*!|number:123|ident:x|exec_end:*/"},
	{"/*!50700 drop", 0, "exec_begin:/*!50700|ident:drop"},
	{"a*/b", 0, "ident:a|op:*|op:/|ident:b"},
	{"`a``b`.`c`", 0, "qident:`a``b`|dot:.|qident:`c`"},
	{"`abc", 0, "qident!:`abc"},
	{"'it''s' 'a\\'b' \"q\\\"\"", 0, "string:'it''s'|string:'a\\'b'|string:\"q\\\"\""},
	{"'a\\'", SQL_LEX_NO_BACKSLASH_ESCAPES, "string:'a\\'"},
	{"'a\\'", 0, "string!:'a\\'"},
	{"\"t\".x", SQL_LEX_ANSI_QUOTES, "qident:\"t\"|dot:.|ident:x"},
	{"_utf8mb4'x' _latin1 x'0aF' X'00' 0x1F b'01' 0b10 N'n'", 0,
	 "introducer:_utf8mb4|string:'x'|ident:_latin1|hexnum:x'0aF'|hexnum:X'00'|hexnum:0x1F|"
	 "bitnum:b'01'|bitnum:0b10|string:N'n'"},
	{"1.5 .5 1e10 2E-3 1abc t.5x", 0,
	 "number:1.5|number:.5|number:1e10|number:2E-3|ident:1abc|ident:t|dot:.|ident:5x"},
	{"@a @@session.x @'q' @", 0, "var:@a|var:@@session.x|var:@'q'|var:@"},
	{"a<=>b:=c->>'$' != ? :v1", 0,
	 "ident:a|op:<=>|ident:b|op::=|ident:c|op:->>|string:'$'|op:!=|param:?|param::v1"},
	{"(a,b);", 0, "lparen:(|ident:a|comma:,|ident:b|rparen:)|semi:;"},
	{"'abc", 0, "string!:'abc"},
	{"x'", 0, "hexnum!:x'"},
};

static void
test_lex_cases(void **state)
{
	char out[1024];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(lex_cases) / sizeof(lex_cases[0]); i++) {
		render(lex_cases[i].sql, strlen(lex_cases[i].sql), lex_cases[i].flags, false, out,
		       sizeof(out));
		if (strcmp(out, lex_cases[i].want) != 0)
			fail_msg("case %zu: %s\n got  %s\n want %s", i, lex_cases[i].sql, out,
				 lex_cases[i].want);
	}
}

static void
test_lex_code_only(void **state)
{
	char out[512];
	const char *sql = "/* c */ DROP /*!50001 TABLE */ -- x\n `t` # y";

	(void)state;
	render(sql, strlen(sql), 0, true, out, sizeof(out));
	assert_string_equal(out, "ident:DROP|ident:TABLE|qident:`t`");
}

static void
test_keywords(void **state)
{
	struct sql_lex lx;
	struct sql_tok t;
	int k;

	(void)state;
	for (k = 2; k < SQL_KW_COUNT; k++)
		assert_true(strcmp(sql_kw_name((enum sql_kw)(k - 1)), sql_kw_name((enum sql_kw)k)) < 0);
	for (k = 1; k < SQL_KW_COUNT; k++)
		assert_int_equal(sql_kw_lookup(sql_kw_name((enum sql_kw)k),
					       strlen(sql_kw_name((enum sql_kw)k))), k);
	assert_int_equal(sql_kw_lookup("sElEcT", 6), SQL_KW_SELECT);
	assert_int_equal(sql_kw_lookup("selects", 7), SQL_KW_NONE);
	assert_int_equal(sql_kw_lookup("sel", 3), SQL_KW_NONE);
	/* the hashed lookup agrees with the sorted-table reference, keywords or not */
	{
		static const char *const words[] = {"select", "SeLeCt", "from", "fro", "froms",
						    "x", "t1", "sql_calc_found_rows", "dual", "duals",
						    "straight_join", "vexplain", "xa", "xb", "_utf8"};
		char buf[32];
		size_t w, i;

		for (w = 0; w < sizeof(words) / sizeof(words[0]); w++)
			assert_int_equal(sql_kw_lookup(words[w], strlen(words[w])),
					 sql_kw_lookup_sorted(words[w], strlen(words[w])));
		for (k = 1; k < SQL_KW_COUNT; k++) {
			const char *nm = sql_kw_name((enum sql_kw)k);

			for (i = 0; nm[i] && i + 1 < sizeof(buf); i++)
				buf[i] = (char)((i % 2 || nm[i] < 'A' || nm[i] > 'Z') ? nm[i] : nm[i] + 32);
			buf[i] = '\0';
			assert_int_equal(sql_kw_lookup(buf, i), k);
			buf[i - 1] = 'q'; /* a near miss is no keyword (or another one, consistently) */
			assert_int_equal(sql_kw_lookup(buf, i), sql_kw_lookup_sorted(buf, i));
		}
	}
	sql_lex_init(&lx, "`select`", 8, 0);
	assert_true(sql_lex_next(&lx, &t));
	assert_int_equal(t.kw, SQL_KW_NONE);
}

/* Never reads past n: lex a buffer that is exactly as long as the text, from the heap,
 * so ASan catches any overread, for every prefix of a tricky text. */
static void
test_prefixes_bounded(void **state)
{
	const char *src = "select /*!5 `a``b` 'x\\'y' \"z\" x'0' 0x1 b'1' @@a.b -- \n#\n/*+ */ "
			  "/*vt+ */ --x .5 1e+ ->> :a ? _utf8'q' */";
	size_t len = strlen(src), n;

	(void)state;
	for (n = 0; n <= len; n++) {
		char *buf = malloc(n ? n : 1);
		struct sql_lex lx;
		struct sql_tok t;
		size_t total = 0;

		assert_non_null(buf);
		memcpy(buf, src, n);
		sql_lex_init(&lx, buf, n, 0);
		while (sql_lex_next(&lx, &t))
			total += t.len;
		assert_int_equal(total, n);
		free(buf);
	}
}

struct split_case {
	const char *sql;
	const char *want; /* pieces joined with '|' */
};

static const struct split_case split_cases[] = {
	{"select 1; select 2", "select 1|select 2"},
	{"  ;; select 1 ;\n ; ", "select 1"},
	{"select ';' ; select \";\"", "select ';'|select \";\""},
	{"select `a;b`; x", "select `a;b`|x"},
	{"select 1 -- ; c\n; y", "select 1 -- ; c|y"},
	{"select 1 # ; c\n; y", "select 1 # ; c|y"},
	{"select /* ; */ 1; y", "select /* ; */ 1|y"},
	{"select 'abc; def", "select 'abc; def"},
	{"a/*x;y", "a/*x;y"},
	{"", ""},
	{";", ""},
};

static void
test_split(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(split_cases) / sizeof(split_cases[0]); i++) {
		const char *sql = split_cases[i].sql;
		size_t pos = 0, s, l, w = 0;
		char out[256] = "";

		while (sql_split_next(sql, strlen(sql), &pos, &s, &l))
			w += (size_t)snprintf(out + w, sizeof(out) - w, "%s%.*s", w ? "|" : "",
					      (int)l, sql + s);
		if (strcmp(out, split_cases[i].want) != 0)
			fail_msg("case %zu: got '%s' want '%s'", i, out, split_cases[i].want);
	}
}

struct use_case {
	const char *sql;
	bool is_use;
	const char *target;
};

static const struct use_case use_cases[] = {
	{"use ks", true, "ks"},
	{"USE ks@replica", true, "ks@replica"},
	{"use @rdonly", true, "@rdonly"},
	{"use `ks:-80@replica`", true, "ks:-80@replica"},
	{"use `ks[-80]`", true, "ks[-80]"},
	{"use `a``b`", true, "a`b"},
	{"/* x */ use /* y */ `ks` -- z", true, "ks"},
	{"use", true, ""},
	{"use ks;", true, "ks"},
	{"/*!use ks*/", true, "ks"},
	{"select 1", false, ""},
	{"user", false, ""},
	{"", false, ""},
};

static void
test_use_target(void **state)
{
	size_t i;
	char out[64];

	(void)state;
	for (i = 0; i < sizeof(use_cases) / sizeof(use_cases[0]); i++) {
		const char *sql = use_cases[i].sql;
		bool r = sql_use_target(sql, strlen(sql), out, sizeof(out));

		if (r != use_cases[i].is_use || strcmp(out, use_cases[i].target) != 0)
			fail_msg("case %zu: %s -> %d '%s'", i, sql, r, out);
	}
	/* truncation keeps a NUL inside the buffer */
	assert_true(sql_use_target("use `abcdefgh`", 14, out, 4));
	assert_string_equal(out, "abc");
	assert_true(sql_use_target("use abcdefgh", 12, out, 4));
	assert_string_equal(out, "abc");
}

static void
test_tok_value(void **state)
{
	struct sql_lex lx;
	struct sql_tok t;
	char out[32];
	const char *sql = "'a\\nb''c' `x``y` N'z'";

	(void)state;
	sql_lex_init(&lx, sql, strlen(sql), 0);
	assert_true(sql_lex_next_code(&lx, &t));
	assert_int_equal(sql_tok_value(sql, &t, 0, out, sizeof(out)), 5);
	assert_string_equal(out, "a\nb'c");
	assert_true(sql_lex_next_code(&lx, &t));
	sql_tok_value(sql, &t, 0, out, sizeof(out));
	assert_string_equal(out, "x`y");
	assert_true(sql_lex_next_code(&lx, &t));
	sql_tok_value(sql, &t, 0, out, sizeof(out));
	assert_string_equal(out, "z");
}

/* --- differential tests: current code == reference on tricky and random inputs ------- */

/* Tricky texts for both the lexer and the splitter: every kind of quote, comment and
 * executable comment, terminated or not, escapes, ';' everywhere, operators next to
 * comment openers. */
static const char *const tricky[] = {
	"", ";", ";;", " ; ; ", "select 1", "select 1;", "select 1; ", "select 1;;", "select 1 ;\n",
	"select 1; select 2", "a;b;c", "  ;; select 1 ;\n ; ", "select ';' ; select \";\"",
	"select `a;b`; x", "select 1 -- ; c\n; y", "select 1 # ; c\n; y", "select /* ; */ 1; y",
	"select 'abc; def", "a/*x;y", "'a\\';b", "'a\\\\';b", "'a'';b';c", "\"a\\\";b\";c",
	"`a\\`;b`;c", "`a``;b`;c", "x'ab;';c", "b'0;1';c", "N'x;y';z", "_utf8mb4'a;b';c",
	"@'a;b';c", "@\"a;b\";c", "@`a;b`;c", "@@'x;y';z", "1e-5;x", "1e--;x", "1e-- ;x",
	"a--;b", "a-- ;b\n;c", "a --\t;\n;b", "a --", "a --;", "--", "-- ", "-",
	"a->>'$;x';b", "a->'$';b", "#;\n;x", "#", "/*", "/*/", "/**/;a", "/*!", "/*!;*/;a",
	"/*!50700 a; b */ c; d", "/*!123456 x;*/y", "/*!1234567;*/", "/*! /*! a */ ; */ b; c",
	"*/;a", "a*/*b;*/;c", "/*!a*/*b;*/;c", "/*!a*/*/;c", "/*+ hint; */;x", "/*vt+ d; */;x",
	"/*vt", "/*vt+", "a/;b", "a/ *;b", "'\\", "'\\'", "\"\\", "`\\`;x", "'", "\"", "`",
	"''", "'''", "''''", "'''';a", "x'", "x';", "@", "@@", "@'", "@@\\'", "0x'a;';b",
	".5;.e;1.e-;", "t.5;x", "select c from sbtest1 where id=5021",
	"INSERT INTO sbtest1 (id, k, c, pad) VALUES (9931, 4123, '684-964', '221-701')",
	"select /*!50700 sql_no_cache */ a from t; /* x */ select b -- y\n; # z",
	"\xff;\x80'x;'\xfe", "a\x01--\x01;b", "a--\x7f;b", "a--\x80;b",
};

/* Copies s (n bytes) to a heap block of exactly n bytes, so ASan sees any overread. */
static char *
exact_copy(const char *s, size_t n)
{
	char *b = malloc(n ? n : 1);

	assert_non_null(b);
	memcpy(b, s, n);
	return b;
}

/* Tokens of the current lexer and of the reference agree (type, flags, kw, off, len),
 * for every token, with code_only either way. */
static void
diff_lex(const char *z, size_t n, unsigned flags, bool code_only)
{
	struct sql_lex a, b;
	struct sql_tok ta, tb;

	sql_lex_init(&a, z, n, flags);
	ref_lex_init(&b, z, n, flags);
	for (;;) {
		bool ra = code_only ? sql_lex_next_code(&a, &ta) : sql_lex_next(&a, &ta);
		bool rb = code_only ? ref_lex_next_code(&b, &tb) : ref_lex_next(&b, &tb);

		if (ra != rb || ta.type != tb.type || ta.flags != tb.flags || ta.kw != tb.kw ||
		    ta.off != tb.off || ta.len != tb.len)
			fail_msg("lex differs (flags %u, code %d) at %zu: got %s %zu+%zu kw %u f %u, "
				 "want %s %zu+%zu kw %u f %u; input (%zu bytes) '%.*s'",
				 flags, code_only, tb.off, sql_tk_name((enum sql_tk)ta.type), ta.off,
				 ta.len, ta.kw, ta.flags, sql_tk_name((enum sql_tk)tb.type), tb.off,
				 tb.len, tb.kw, tb.flags, n, (int)n, z);
		if (!ra)
			break;
	}
}

/* Pieces of the current splitter and of the reference agree (result, pos, start, len),
 * from offset 0 or from every offset, and sql_split_done(pos) says exactly whether the
 * reference's next call finds nothing. */
static void
diff_split(const char *z, size_t n, bool every_start)
{
	size_t p0;

	for (p0 = 0; p0 <= n; p0 = every_start ? p0 + 1 : n + 1) {
		size_t pa = p0, pb = p0, sa = 7, la = 7, sb = 7, lb = 7;

		for (;;) {
			bool done = sql_split_done(z, n, pa);
			bool ra = sql_split_next(z, n, &pa, &sa, &la);
			bool rb = ref_split_next(z, n, &pb, &sb, &lb);

			if (ra != rb || pa != pb || sa != sb || la != lb || done != !rb)
				fail_msg("split differs from %zu: got %d pos %zu start %zu len %zu done "
					 "%d, want %d pos %zu start %zu len %zu; input (%zu bytes) '%.*s'",
					 p0, ra, pa, sa, la, done, rb, pb, sb, lb, n, (int)n, z);
			if (!ra)
				break;
		}
	}
}

static unsigned long diff_inputs; /* inputs compared, for the log */

static void
diff_all(const char *s, size_t n, bool every_start)
{
	char *z = exact_copy(s, n);
	unsigned flags;

	diff_split(z, n, every_start);
	for (flags = 0; flags < 4; flags++) {
		diff_lex(z, n, flags, false);
		diff_lex(z, n, flags, true);
	}
	free(z);
	diff_inputs++;
}

static void
test_diff_tricky(void **state)
{
	size_t i, k;

	(void)state;
	for (i = 0; i < sizeof(tricky) / sizeof(tricky[0]); i++) {
		size_t n = strlen(tricky[i]);

		/* the whole text and each of its prefixes (unterminated ends everywhere) */
		for (k = 0; k <= n; k++)
			diff_all(tricky[i], k, true);
	}
	/* NUL bytes inside the text */
	diff_all("a\0;b'\0;'\0", 9, true);
	diff_all("/*\0*/;\0--\0;\n;", 14, true);
}

/* Pieces random texts are made of: everything that changes the lexer's state, in
 * every combination the generator can reach. */
static const char *const frags[] = {
	"'", "\"", "`", "\\", "\\'", "''", ";", ";", ";", "/*", "*/", "/*!", "/*!50700",
	"/*!123", "/*+", "/*vt+", "/", "*", "#", "--", "-- ", "--\t", "-", "\n", " ", "\t", "\r",
	"x'", "b'", "N'", "X'", "_utf8'", "_cs", "@'", "@\"", "@`", "@@", "@", "1e-5", "1e", "1",
	".5", ".", "0x", "0b1", "0x1f", "->", "->>", "<=>", ":=", ":a", "?", "select", "SELECT",
	"from", "IN", "values", "id", "=", "abc", ",", "(", ")", "e", "-1", "\xff", "\x80",
};

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static unsigned
rnd(unsigned m)
{
	rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
	return (unsigned)(rng_state >> 33) % m;
}

/* Builds a text of up to 24 fragments (now and then a NUL) into buf; returns its length. */
static size_t
random_text(char *buf, size_t cap)
{
	size_t w = 0, k, nf = rnd(25);

	for (k = 0; k < nf; k++) {
		const char *f = frags[rnd(sizeof(frags) / sizeof(frags[0]))];
		size_t fl = strlen(f);

		if (rnd(40) == 0) {
			f = "\0";
			fl = 1;
		}
		if (w + fl > cap)
			break;
		memcpy(buf + w, f, fl);
		w += fl;
	}
	return w;
}

static void
test_diff_random(void **state)
{
	char buf[256];
	unsigned i;

	(void)state;
	for (i = 0; i < 60000; i++) {
		size_t n = random_text(buf, sizeof(buf));

		diff_all(buf, n, i % 8 == 0);
	}
}

/* Long texts, mostly plain bytes: escapes and doubled quotes far from the closing
 * quote (the memchr scans must agree with the byte loop at any distance), long
 * comments. */
static void
test_diff_long(void **state)
{
	static const char bytes[] = "ab'\"`\\;*/-#\n !x@";
	char buf[4096];
	unsigned i;

	(void)state;
	for (i = 0; i < 2000; i++) {
		size_t k, len = 1 + rnd(sizeof(buf) - 1);
		unsigned density = 2 + rnd(60); /* 1 state byte in density */

		for (k = 0; k < len; k++)
			buf[k] = rnd(density) ? 'a' : bytes[rnd(sizeof(bytes) - 1)];
		diff_all(buf, len, false);
	}
	print_message("differential: %lu inputs, each split and lexed with 4 flag sets\n",
		      diff_inputs);
}

/* The cheap "only statement" check: *pos == n after the first call means nothing
 * follows; sql_split_done is exact. */
static void
test_split_done(void **state)
{
	static const struct {
		const char *sql;
		bool pos_at_end, done;
	} cases[] = {
		{"select 1", true, true},	      {"select 1  ", true, true},
		{"select 1;", true, true},	      {"select 1; ", false, true},
		{"select 1;;", false, true},	      {"select 1;\n; ", false, true},
		{"select 1; select 2", false, false}, {"select 1; -- c", false, false},
		{"select 1 -- ;", true, true},	      {"select ';'", true, true},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *sql = cases[i].sql;
		size_t n = strlen(sql), pos = 0, s, l;

		assert_true(sql_split_next(sql, n, &pos, &s, &l));
		if ((pos == n) != cases[i].pos_at_end || sql_split_done(sql, n, pos) != cases[i].done)
			fail_msg("case %zu: %s: pos %zu of %zu, done %d", i, sql, pos, n,
				 sql_split_done(sql, n, pos));
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_lex_cases),    cmocka_unit_test(test_lex_code_only),
	    cmocka_unit_test(test_keywords),     cmocka_unit_test(test_prefixes_bounded),
	    cmocka_unit_test(test_split),        cmocka_unit_test(test_use_target),
	    cmocka_unit_test(test_tok_value),    cmocka_unit_test(test_diff_tricky),
	    cmocka_unit_test(test_diff_random),  cmocka_unit_test(test_diff_long),
	    cmocka_unit_test(test_split_done),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
