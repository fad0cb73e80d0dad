/* router/sql_digest.c: fingerprints and redaction on top of the lexer. */
#include "router/sql_digest.h"

#include <string.h>
#include <strings.h>

#include "router/hash.h"
#include "router/sql_lex.h"

/* The digest's FNV-1a hash is folded in while the text is built, not in one loop at the
 * end: the multiply chain (4 cycles a byte with nothing else to do) then overlaps with
 * lexing the next tokens.  Only bytes at least HASH_LAG behind the end are folded, as
 * the '?' and row folding take back a few of the last bytes; every shrink goes through
 * dbuf_trim, which recomputes the hash if it ever cuts into the folded bytes (same
 * result, just slower).  Bytes are only ever written at the end, so folded bytes are
 * final. */
#define FNV_OFFSET 1469598103934665603ULL
#define FNV_PRIME 1099511628211ULL
#define HASH_LAG 16

struct dbuf {
	char *p;
	size_t cap; /* usable bytes, NUL excluded */
	size_t len;
	uint64_t h;    /* FNV-1a of p[0..hashed) (sql_digest only) */
	size_t hashed;
};

/* Folds p[hashed..upto) into the hash. */
static void
dbuf_hash_to(struct dbuf *b, size_t upto)
{
	uint64_t h = b->h;

	for (size_t i = b->hashed; i < upto; i++) {
		h = (h ^ (unsigned char)b->p[i]) * FNV_PRIME;
	}
	b->h = h;
	b->hashed = upto;
}

/* Drops the last k bytes. */
static void
dbuf_trim(struct dbuf *b, size_t k)
{
	b->len -= k;
	if (b->len < b->hashed) {
		b->h = FNV_OFFSET;
		b->hashed = 0;
		dbuf_hash_to(b, b->len);
	}
}

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

/* dbuf_put of s upper-cased (a-z only, as the keyword lookup folds case). */
static void
dbuf_put_upper(struct dbuf *b, const char *s, size_t n)
{
	size_t room = b->cap - b->len, i;
	char *w = b->p + b->len;

	if (n > room) {
		n = room;
	}
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		w[i] = (char)((c >= 'a' && c <= 'z') ? c - ('a' - 'A') : c);
	}
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
		dbuf_trim(b, 2);
		return;
	}
	if (dbuf_ends_with(b, "?, ")) {
		dbuf_trim(b, 2);
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
		dbuf_trim(b, 5);
	} else if (dbuf_ends_with(b, "(?),(?)")) {
		dbuf_trim(b, 4);
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

/* FNV-1a of raw bytes, then a separator (the folded-parts hash of sql_digest_ex). */
static uint64_t
fnv_raw(uint64_t h, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		h = (h ^ (unsigned char)s[i]) * FNV_PRIME;
	}
	return (h ^ 0xff) * FNV_PRIME;
}

uint64_t
sql_digest(const char *sql, size_t n, unsigned lex_flags, char *out, size_t outlen)
{
	return sql_digest_ex(sql, n, lex_flags, out, outlen, NULL);
}

uint64_t
sql_digest_ex(const char *sql, size_t n, unsigned lex_flags, char *out, size_t outlen,
	      uint64_t *folded)
{
	struct dbuf b = {out, outlen ? outlen - 1 : 0, 0, FNV_OFFSET, 0};
	struct sql_lex lx;
	struct sql_tok t;
	bool after_open = true; /* no space before the first token or after '(' / '.' */
	bool after_as = false;
	uint64_t f = FNV_OFFSET;

	sql_lex_init(&lx, sql, n, lex_flags);
	while (sql_lex_next_code(&lx, &t)) {
		if (t.type == SQL_TK_INTRODUCER) {
			continue; /* _utf8mb4'x' -> ? */
		}
		if (folded != NULL && ((t.type == SQL_TK_IDENT && t.kw != 0) ||
				       (after_as && tok_is_literal(&t)))) {
			f = fnv_raw(f, sql + t.off, t.len);
		}
		after_as = t.type == SQL_TK_IDENT && t.kw == SQL_KW_AS;
		if (!after_open && tok_needs_space_before(&t)) {
			dbuf_put(&b, " ", 1);
		}
		if (tok_is_literal(&t)) {
			digest_put_placeholder(&b);
		} else if (t.type == SQL_TK_IDENT && t.kw != 0) {
			/* the keyword's name is the token's text upper-cased (the lookup matched
			 * it byte for byte after folding a-z), so no name or strlen is needed */
			dbuf_put_upper(&b, sql + t.off, t.len);
		} else {
			dbuf_put(&b, sql + t.off, t.len);
		}
		if (t.type == SQL_TK_RPAREN) {
			digest_fold_rows(&b);
		}
		after_open = t.type == SQL_TK_LPAREN || t.type == SQL_TK_DOT;
		if (b.len > b.hashed + HASH_LAG) {
			dbuf_hash_to(&b, b.len - HASH_LAG);
		}
	}
	if (outlen) {
		out[b.len] = 0;
	}
	if (folded != NULL) {
		*folded = f;
	}
	dbuf_hash_to(&b, b.len);
	return b.h;
}

/* ---- skeletons ------------------------------------------------------------------ */

/* Byte classes of the skeleton scanner, one table so a byte costs one load:
 * SK_STOP, the bytes it stops at (all others are copied as they are), and SK_STICKY, the
 * bytes a digit run or a quote right next to it may belong with (an identifier, a number
 * form such as 1e5, 0x1f, 1.5, .5, a variable @1 or @'x', a bind variable :1, a charset
 * introducer, x'..'): the lexer's word bytes and . @ : `.  Such literals are kept as
 * written. */
enum { SK_STOP = 1, SK_STICKY = 2 };

#define SK_RANGE_2(c) [c] = SK_STICKY, [c + 1] = SK_STICKY
#define SK_RANGE_4(c) SK_RANGE_2(c), SK_RANGE_2(c + 2)
#define SK_RANGE_8(c) SK_RANGE_4(c), SK_RANGE_4(c + 4)
#define SK_RANGE_16(c) SK_RANGE_8(c), SK_RANGE_8(c + 8)
#define SK_RANGE_32(c) SK_RANGE_16(c), SK_RANGE_16(c + 16)
#define SK_RANGE_64(c) SK_RANGE_32(c), SK_RANGE_32(c + 32)

static const unsigned char skel_class[256] = {
	SK_RANGE_16('A'), SK_RANGE_8('A' + 16), SK_RANGE_2('A' + 24), /* A-Z */
	SK_RANGE_16('a'), SK_RANGE_8('a' + 16), SK_RANGE_2('a' + 24), /* a-z */
	SK_RANGE_64(0x80), SK_RANGE_64(0xC0), /* 0x80-0xFF */
	['_'] = SK_STICKY, ['$'] = SK_STICKY, ['.'] = SK_STICKY, ['@'] = SK_STICKY,
	[':'] = SK_STICKY,
	['0'] = SK_STOP | SK_STICKY, ['1'] = SK_STOP | SK_STICKY, ['2'] = SK_STOP | SK_STICKY,
	['3'] = SK_STOP | SK_STICKY, ['4'] = SK_STOP | SK_STICKY, ['5'] = SK_STOP | SK_STICKY,
	['6'] = SK_STOP | SK_STICKY, ['7'] = SK_STOP | SK_STICKY, ['8'] = SK_STOP | SK_STICKY,
	['9'] = SK_STOP | SK_STICKY, ['`'] = SK_STOP | SK_STICKY,
	[0x01] = SK_STOP, [0x02] = SK_STOP, ['\''] = SK_STOP, ['"'] = SK_STOP, ['#'] = SK_STOP,
	['-'] = SK_STOP, ['/'] = SK_STOP,
};

#undef SK_RANGE_64
#undef SK_RANGE_32
#undef SK_RANGE_16
#undef SK_RANGE_8
#undef SK_RANGE_4
#undef SK_RANGE_2

static bool
skel_sticky(unsigned char c)
{
	return (skel_class[c] & SK_STICKY) != 0;
}

/* The first stop byte in sql[i..n), n if none: four bytes a step, since most of a
 * statement is keywords, names and punctuation that are copied as they are. */
static size_t
skel_next_stop(const unsigned char *z, size_t n, size_t i)
{
	while (i + 4 <= n && !((skel_class[z[i]] | skel_class[z[i + 1]] | skel_class[z[i + 2]] |
				 skel_class[z[i + 3]]) & SK_STOP))
		i += 4;
	while (i < n && !(skel_class[z[i]] & SK_STOP))
		i++;
	return i;
}

/* The literal at i may come right after the word AS (spaces between): an alias, which
 * the folded hash keeps, so it is kept as written.  Any "as" counts, whatever is before
 * it (2.5as lexes as a number and AS): keeping a literal is always safe. */
static bool
skel_after_as(const char *sql, size_t i)
{
	while (i > 0 && (sql[i - 1] == ' ' || (sql[i - 1] >= '\t' && sql[i - 1] <= '\r')))
		i--; /* the lexer's spaces */
	return i >= 2 && (sql[i - 1] | 0x20) == 's' && (sql[i - 2] | 0x20) == 'a';
}

/* End of the quote opened at i (one past the closing q; a doubled q inside does not
 * close it, 'a''b' is one literal), or 0 when it is unterminated or, for a string,
 * holds a backslash (its meaning depends on the SQL mode). */
static size_t
skel_quote_end(const char *sql, size_t n, size_t i, char q)
{
	/* memchr to the next quote: sysbench's 120-byte strings were scanned a byte at a time */
	for (size_t j = i + 1; j < n;) {
		const char *e = memchr(sql + j, q, n - j);
		if (e == NULL)
			return 0;
		size_t k = (size_t)(e - sql);
		if (q == '\'' && memchr(sql + j, '\\', k - j) != NULL)
			return 0;
		if (k + 1 >= n || sql[k + 1] != q)
			return k + 1;
		j = k + 2; /* a doubled quote */
	}
	return 0;
}

bool
sql_skeleton(const char *sql, size_t n, char *out, size_t outlen, size_t *outn, uint64_t *hash)
{
	size_t i = 0, w = 0;

	while (i < n) {
		size_t j = skel_next_stop((const unsigned char *)sql, n, i);
		if (j - i > outlen - w)
			return false;
		memcpy(out + w, sql + i, j - i);
		w += j - i;
		if ((i = j) >= n)
			break;
		unsigned char c = (unsigned char)sql[i];
		bool keep = (i > 0 && skel_sticky((unsigned char)sql[i - 1])) || skel_after_as(sql, i);
		char mark = SQL_SKEL_NUM;
		if (c == '\'' || c == '`') {
			if ((j = skel_quote_end(sql, n, i, (char)c)) == 0)
				return false;
			keep |= c == '`';
			mark = SQL_SKEL_STR;
			if (keep && memchr(sql + i, SQL_SKEL_NUM, j - i) != NULL)
				return false;
			if (keep && memchr(sql + i, SQL_SKEL_STR, j - i) != NULL)
				return false;
		} else if (c >= '0' && c <= '9') {
			while (j < n && sql[j] >= '0' && sql[j] <= '9')
				j++;
			keep |= j < n && skel_sticky((unsigned char)sql[j]);
			keep |= i >= 2 && (sql[i - 1] == '-' || sql[i - 1] == '+') &&
				(sql[i - 2] | 0x20) == 'e'; /* an exponent: 1e-5 */
		} else if (c == '/' || c == '-') {
			if (i + 1 < n && sql[i + 1] == (c == '/' ? '*' : '-'))
				return false; /* a comment */
			keep = true, j = i + 1;
		} else {
			return false; /* '"', '#', a marker byte */
		}
		if (keep ? j - i > outlen - w : w >= outlen)
			return false;
		if (keep) {
			memcpy(out + w, sql + i, j - i);
			w += j - i;
		} else {
			out[w++] = mark;
		}
		i = j;
	}
	*outn = w;
	*hash = hash_bytes(0, out, w); /* picks a cache set: the caller compares the bytes */
	return true;
}

static bool
ident_is(const char *sql, const struct sql_tok *t, const char *word)
{
	return t->type == SQL_TK_IDENT && t->len == strlen(word) &&
	       strncasecmp(sql + t->off, word, t->len) == 0;
}

/* True if "PASSWORD" or "IDENTIFIED" (any case) holds the 'd' or 'D' at i: PASSWORD
 * ends with it, IDENTIFIED has it second (and last, but one place is enough). */
static bool
secret_word_at_d(const char *sql, size_t n, size_t i)
{
	return (i >= 7 && strncasecmp(sql + i - 7, "password", 8) == 0) ||
	       (i >= 1 && i + 9 <= n && strncasecmp(sql + i - 1, "identified", 10) == 0);
}

/* Offset of the first c in sql[i..n), n if none. */
static size_t
find_byte(const char *sql, size_t n, size_t i, char c)
{
	const char *p = i < n ? memchr(sql + i, c, n - i) : NULL;

	return p ? (size_t)(p - sql) : n;
}

/* True if the text holds "PASSWORD" or "IDENTIFIED" in any case: every word below does,
 * so a statement without either needs no lexing.  Both words hold a 'd', so only the
 * places of a 'd' or 'D' are looked at, found with memchr (each kind searched again only
 * once passed: linear). */
static bool
may_have_secret(const char *sql, size_t n)
{
	size_t lo, up, i;

	if (n < 8) {
		return false; /* and sql may be NULL */
	}
	lo = find_byte(sql, n, 0, 'd');
	up = find_byte(sql, n, 0, 'D');
	while ((i = lo < up ? lo : up) < n) {
		if (secret_word_at_d(sql, n, i)) {
			return true;
		}
		if (i == lo) {
			lo = find_byte(sql, n, i + 1, 'd');
		} else {
			up = find_byte(sql, n, i + 1, 'D');
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
	struct dbuf b = {out, outlen ? outlen - 1 : 0, 0, FNV_OFFSET, 0};
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
