/* router/sql_lex.c: MySQL lexer on the SQLite model: a 256-entry byte class table and a
 * switch on the class.  Every read is checked against n; there is no NUL sentinel. */
#include "router/sql_lex.h"

#include <stdlib.h>
#include <string.h>

enum cc {
	CC_OTHER = 0, /* single-byte operator or illegal byte */
	CC_SPACE,
	CC_ALPHA,     /* letters, _, $, bytes >= 0x80 */
	CC_X,         /* x X: x'..' hex literal */
	CC_B,         /* b B: b'..' bit literal */
	CC_N,         /* n N: N'..' national string */
	CC_DIGIT,
	CC_QUOTE,     /* ' */    /* CC_QUOTE .. CC_SEMI: the splitter's stop bytes */
	CC_DQUOTE,    /* " */
	CC_BACKTICK,
	CC_MINUS,
	CC_HASH,
	CC_SLASH,
	CC_STAR,
	CC_SEMI,
	CC_AT,
	CC_LP,
	CC_RP,
	CC_COMMA,
	CC_DOT,
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

/* CC_QUOTE .. CC_SEMI are contiguous: the bytes that can start a quote, a comment, the
 * end of an executable comment or a ';' (see split_end). */
_Static_assert(CC_DQUOTE == CC_QUOTE + 1 && CC_BACKTICK == CC_QUOTE + 2 &&
		   CC_MINUS == CC_QUOTE + 3 && CC_HASH == CC_QUOTE + 4 &&
		   CC_SLASH == CC_QUOTE + 5 && CC_STAR == CC_QUOTE + 6 && CC_SEMI == CC_QUOTE + 7,
	       "split stop classes are contiguous");

static inline bool
is_split_stop(unsigned char c)
{
	return (unsigned)(lex_class[c] - CC_QUOTE) <= (unsigned)(CC_SEMI - CC_QUOTE);
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
static uint8_t kw_len[SQL_KW_COUNT]; /* strlen of each name: most probes fail on length */
static bool kw_ready;

static inline unsigned char
up(unsigned char c)
{
	return (c >= 'a' && c <= 'z') ? (unsigned char)(c - 'a' + 'A') : c;
}

static inline unsigned
kw_hash(const char *s, size_t n)
{
	unsigned h = (unsigned)n * 131u;

	h = h * 31u + up((unsigned char)s[0]);
	h = h * 31u + up((unsigned char)s[n > 1 ? 1 : 0]);
	h = h * 31u + up((unsigned char)s[n - 1]);
	h = h * 31u + up((unsigned char)s[n / 2]);
	return (h ^ (h >> 7)) & (KW_SLOTS - 1);
}

/* s[0..n) upper-cased equals kw, whose length is n (kw_cmp == 0 without the ordering). */
static inline bool
kw_eq(const char *s, size_t n, const char *kw)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (up((unsigned char)s[i]) != (unsigned char)kw[i])
			return false;
	return true;
}

static void
kw_build(void)
{
	int k;

	for (k = 1; k < SQL_KW_COUNT; k++) {
		unsigned i = kw_hash(kw_names[k], strlen(kw_names[k]));

		kw_len[k] = (uint8_t)strlen(kw_names[k]);

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

/* The lookup itself, inlined into the lexer (one call per identifier otherwise). */
static inline enum sql_kw
kw_lookup(const char *s, size_t n)
{
	unsigned i;

	if (n < 2 || n > KW_MAXLEN)
		return SQL_KW_NONE;
	if (!kw_ready)
		kw_build();
	for (i = kw_hash(s, n); kw_table[i] != 0; i = (i + 1) & (KW_SLOTS - 1)) {
		unsigned k = kw_table[i];

		if (kw_len[k] == n && kw_eq(s, n, kw_names[k]))
			return (enum sql_kw)k;
	}
	return SQL_KW_NONE;
}

enum sql_kw
sql_kw_lookup(const char *s, size_t n)
{
	return kw_lookup(s, n);
}

/* The reference lookup (binary search of the sorted names), for tests. */
enum sql_kw
sql_kw_lookup_sorted(const char *s, size_t n)
{
	size_t lo = 1, hi = SQL_KW_COUNT;

	if (n == 0 || n > KW_MAXLEN)
		return SQL_KW_NONE;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = kw_cmp(s, n, kw_names[mid]);

		if (c == 0)
			return (enum sql_kw)mid;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return SQL_KW_NONE;
}

const char *
sql_kw_name(enum sql_kw kw)
{
	if ((int)kw <= 0 || kw >= SQL_KW_COUNT)
		return "";
	return kw_names[kw];
}

const char *
sql_tk_name(enum sql_tk tk)
{
	static const char *const names[SQL_TK_COUNT] = {
	    "eof",    "space", "comment", "hint",   "directive", "exec_begin", "exec_end",
	    "ident",  "qident", "string", "introducer", "number", "hexnum", "bitnum",
	    "var",    "param", "lparen",  "rparen", "comma",     "dot",        "semi",
	    "op"};

	return (unsigned)tk < SQL_TK_COUNT ? names[tk] : "?";
}

/* --- scanners: each returns the end offset of the token starting at i ---------- */

/* Offset of the first c in z[j..n), n if none. */
static inline size_t
find_byte(const char *z, size_t j, size_t n, unsigned char c)
{
	const char *p = j < n ? memchr(z + j, c, n - j) : NULL;

	return p ? (size_t)(p - z) : n;
}

/* Quoted text starting at the opening quote i; sets *unterminated.  Only the quote and
 * (with backslash) '\\' matter inside, so both are found with memchr; each is searched
 * again only once the scan has passed the last one found, so every byte is searched at
 * most once per kind (linear, even for a string full of escapes). */
static size_t
scan_quoted(const struct sql_lex *lx, size_t i, unsigned char q, bool backslash, bool *unterm)
{
	const char *z = lx->z;
	size_t n = lx->n, j = i + 1;
	size_t qpos = find_byte(z, j, n, q);
	size_t bpos = backslash ? find_byte(z, j, n, '\\') : n;

	for (;;) {
		if (bpos < qpos) {
			/* an escape: it and the byte after it are text */
			if (bpos + 1 >= n)
				break;
			j = bpos + 2;
			bpos = find_byte(z, j, n, '\\');
			if (qpos < j)
				qpos = find_byte(z, j, n, q);
			continue;
		}
		if (qpos >= n)
			break;
		if (qpos + 1 < n && (unsigned char)z[qpos + 1] == q) {
			/* a doubled quote is text */
			j = qpos + 2;
			qpos = find_byte(z, j, n, q);
			continue;
		}
		*unterm = false;
		return qpos + 1;
	}
	*unterm = true;
	return n;
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

	/* only a '*' can start the closer: jump from one to the next */
	for (j = find_byte(lx->z, i, lx->n, '*'); j + 1 < lx->n;
	     j = find_byte(lx->z, j + 1, lx->n, '*')) {
		if (lx->z[j + 1] == '/') {
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
	const unsigned char *z = (const unsigned char *)lx->z;
	size_t n = lx->n;

	while (j < n && is_word(z[j]))
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

void
sql_lex_init(struct sql_lex *lx, const char *z, size_t n, unsigned flags)
{
	memset(lx, 0, sizeof(*lx));
	lx->z = z;
	lx->n = z ? n : 0;
	lx->flags = flags;
}

/* Token types after which the previous-code-token state (prev_word) is kept. */
#define KEEP_PREV_WORD                                                                     \
	((1u << SQL_TK_SPACE) | (1u << SQL_TK_COMMENT) | (1u << SQL_TK_HINT) |             \
	 (1u << SQL_TK_DIRECTIVE))
_Static_assert(SQL_TK_COUNT <= 32, "token types fit a mask");

/* sql_lex_next, inlined into sql_lex_next_code (its one hot caller here). */
static inline bool
lex_next(struct sql_lex *lx, struct sql_tok *t)
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
		t->kw = (uint16_t)kw_lookup(lx->z + i, t->len);
	if (!((1u << t->type) & KEEP_PREV_WORD))
		lx->prev_word = t->type == SQL_TK_IDENT || t->type == SQL_TK_QIDENT;
	return true;
}

bool
sql_lex_next(struct sql_lex *lx, struct sql_tok *t)
{
	return lex_next(lx, t);
}

bool
sql_lex_next_code(struct sql_lex *lx, struct sql_tok *t)
{
	for (;;) {
		/* whitespace is skipped here without building tokens (the hot path) */
		while (lx->pos < lx->n && lex_class[(unsigned char)lx->z[lx->pos]] == CC_SPACE)
			lx->pos++;
		if (!lex_next(lx, t))
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

static unsigned char
unescape(unsigned char c)
{
	switch (c) {
	case '0': return '\0';
	case 'n': return '\n';
	case 'r': return '\r';
	case 't': return '\t';
	case 'b': return '\b';
	case 'Z': return 0x1a;
	default: return c;
	}
}

size_t
sql_tok_value(const char *sql, const struct sql_tok *t, unsigned flags, char *out,
	      size_t outlen)
{
	const char *s = sql + t->off;
	size_t n = t->len, i = 0, w = 0;
	unsigned char q = 0;
	bool bs;

	if (n > 0 && (s[0] == 'N' || s[0] == 'n' || s[0] == 'x' || s[0] == 'X' || s[0] == 'b' ||
		      s[0] == 'B') && n > 1 && s[1] == '\'' && t->type != SQL_TK_IDENT) {
		s++;
		n--;
	}
	if (n > 0 && (s[0] == '`' || s[0] == '\'' || s[0] == '"') && t->type != SQL_TK_IDENT) {
		q = (unsigned char)s[0];
		i = 1;
		if (!(t->flags & SQL_TOKF_UNTERMINATED) && n >= 2)
			n--; /* drop the closing quote */
	}
	bs = t->type == SQL_TK_STRING && !(flags & SQL_LEX_NO_BACKSLASH_ESCAPES);
	for (; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (bs && c == '\\' && i + 1 < n)
			c = unescape((unsigned char)s[++i]);
		else if (q && c == q && i + 1 < n && (unsigned char)s[i + 1] == q)
			i++;
		if (w + 1 < outlen)
			out[w] = (char)c;
		w++;
	}
	if (outlen > 0)
		out[w < outlen ? w : outlen - 1] = '\0';
	return w;
}

/* --- splitting and USE -------------------------------------------------------- */

static bool
is_space_byte(unsigned char c)
{
	return lex_class[c] == CC_SPACE;
}

/* End of the piece that starts at s: the offset of the first ';' that the lexer (flags 0,
 * fresh state at s) would return as a SEMI token, or n.  Only the stop bytes (quotes, '-',
 * '#', '/', '*', ';') can start a quote or a comment or change the executable-comment
 * depth, and they are handed to scan_one, so quoting and comments follow the lexer's own
 * rules.  Every other byte is stepped over one at a time, which lands on the same stop
 * bytes the lexer's tokens would, because a token starting at a non-stop byte holds no
 * stop byte, except:
 *   - a number's exponent sign "1e-5": that '-' is followed by a digit, so scan_one
 *     reads it as the operator '-', not as "--", and moves one byte;
 *   - the quoted part of x'..', b'..', N'..', _cs'..', @'..', @"..", @`..`: scanned by
 *     scan_quoted with the same quote and backslash rule as the bare quote token (flags
 *     0: '"' is a string with escapes, '`' has none).
 * Operators holding '-' ("->", "->>") start with it, so they start at a stop byte. */
static size_t
split_end(const char *sql, size_t n, size_t s)
{
	const unsigned char *z = (const unsigned char *)sql;
	struct sql_lex lx;
	struct sql_tok t;
	size_t i = s, j;

	/* Only a ';' ends a statement early: without one the rest is one piece, whatever
	 * quotes or comments it holds, and the usual single statement is not lexed here. */
	if (s >= n || memchr(z + s, ';', n - s) == NULL)
		return n;
	sql_lex_init(&lx, sql, n, 0);
	for (;;) {
		while (i < n && !is_split_stop(z[i]))
			i++;
		if (i >= n)
			return n;
		if (z[i] == ';')
			return i;
		t.flags = 0;
		j = scan_one(&lx, i, &t);
		i = j > i ? j : i + 1; /* progress, as sql_lex_next guarantees */
	}
}

bool
sql_split_next(const char *sql, size_t n, size_t *pos, size_t *start, size_t *len)
{
	while (*pos < n) {
		size_t s = *pos, e = split_end(sql, n, s);

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

bool
sql_split_done(const char *sql, size_t n, size_t pos)
{
	for (; pos < n; pos++)
		if (sql[pos] != ';' && !is_space_byte((unsigned char)sql[pos]))
			return false;
	return true;
}

bool
sql_use_target(const char *sql, size_t n, char *out, size_t outlen)
{
	struct sql_lex lx;
	struct sql_tok t;
	size_t w = 0;

	if (outlen > 0)
		out[0] = '\0';
	sql_lex_init(&lx, sql, n, 0);
	if (!sql_lex_next_code(&lx, &t) || t.kw != SQL_KW_USE)
		return false;
	while (sql_lex_next_code(&lx, &t)) {
		size_t k;

		if (t.type == SQL_TK_SEMI)
			break;
		if (t.type == SQL_TK_QIDENT) {
			w += sql_tok_value(sql, &t, 0, out + (w < outlen ? w : 0),
					   w < outlen ? outlen - w : 0);
		} else {
			for (k = 0; k < t.len; k++, w++)
				if (w + 1 < outlen)
					out[w] = sql[t.off + k];
		}
	}
	if (outlen > 0)
		out[w < outlen ? w : outlen - 1] = '\0';
	return true;
}
