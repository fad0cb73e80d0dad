/* tests/unit/test_sql_digest.c: fingerprints group statements that differ only in
 * literals, spacing, comments and keyword case; redaction always hides passwords; and
 * digest, secret check and redaction give what they gave before the speed work. */
#include "router/sql_digest.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "router/classify.h"
#include "router/sql_lex.h"

/* --- reference: router/sql_digest.c as of main eab1507 (before the speed work) --------
 * Copied verbatim: the output buffer, sql_digest (hash in one loop at the end, keyword
 * names from sql_kw_name), the byte-by-byte PASSWORD/IDENTIFIED prefilter,
 * sql_has_secret and sql_redact.  Only the public names are made static and prefixed
 * ref_.  It lexes with the current lexer, which test_sql_lex checks token for token
 * against the previous one. */

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

static uint64_t
ref_digest(const char *sql, size_t n, unsigned lex_flags, char *out, size_t outlen)
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

static bool
ref_has_secret(const char *sql, size_t n, unsigned lex_flags)
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

static size_t
ref_redact(const char *sql, size_t n, unsigned lex_flags, bool all_literals, char *out,
	   size_t outlen)
{
	struct dbuf b = {out, outlen ? outlen - 1 : 0, 0};
	struct sql_lex lx;
	struct sql_tok t;
	bool secret = ref_has_secret(sql, n, lex_flags);

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

/* --- end of reference ---------------------------------------------------------------- */

static const char *
digest_of(const char *sql, uint64_t *h)
{
	static char out[SQL_DIGEST_MAX];

	*h = sql_digest(sql, strlen(sql), 0, out, sizeof(out));
	return out;
}

static void
test_digest_text(void **state)
{
	(void)state;
	static const struct {
		const char *sql, *want;
	} cases[] = {
		{"SELECT c FROM sbtest1 WHERE id=42", "SELECT c FROM sbtest1 WHERE id = ?"},
		{"select  c\n from sbtest1 where id = 'x' -- tail", "SELECT c FROM sbtest1 WHERE id = ?"},
		{"SELECT * FROM t WHERE id IN (1, 2, 3,4)", "SELECT * FROM t WHERE id IN(?+)"},
		{"INSERT INTO t (a,b) VALUES (1,'x'),(2,'y')", "INSERT INTO t(a, b) VALUES(?+)"},
		{"SELECT _utf8mb4'x', x'0A', b'01', 0x1F, 1.5e3", "SELECT ?+"},
		{"/* c */ SELECT /*+ MAX_EXECUTION_TIME(1) */ 1", "SELECT ?"},
		{"/*!50000 DROP TABLE */ t1", "DROP TABLE t1"},
		{"SELECT `a b`.c FROM `ks`.`t`", "SELECT `a b`.c FROM `ks`.`t`"},
		{"INSERT INTO t VALUES (1),(2),(3)", "INSERT INTO t VALUES(?)"},
		{"", ""},
	};
	uint64_t h;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *d = digest_of(cases[i].sql, &h);
		if (strcmp(d, cases[i].want) != 0) {
			fail_msg("digest(%s) = '%s', want '%s'", cases[i].sql, d, cases[i].want);
		}
	}
}

static void
test_digest_hash_groups_and_separates(void **state)
{
	(void)state;
	uint64_t a, b, c;

	digest_of("SELECT c FROM sbtest1 WHERE id=1", &a);
	digest_of("select c from sbtest1 /* x */ where id =  99999", &b);
	digest_of("SELECT c FROM sbtest2 WHERE id=1", &c);
	assert_true(a == b);
	assert_true(a != c);
}

static void
test_digest_bounded_output(void **state)
{
	(void)state;
	size_t n = 100000;
	char *sql = malloc(n + 1), out[64];

	memset(sql, 'a', n);
	memcpy(sql, "SELECT ", 7);
	sql[n] = 0;
	sql_digest(sql, n, 0, out, sizeof(out));
	assert_int_equal(strlen(out), sizeof(out) - 1);
	free(sql);
}

static void
test_redact(void **state)
{
	(void)state;
	static const struct {
		const char *sql;
		bool all;
		const char *want;
	} cases[] = {
		{"SELECT * FROM t WHERE name = 'bob' AND id = 3", false, "SELECT * FROM t WHERE name = 'bob' AND id = 3"},
		{"SELECT * FROM t WHERE name = 'bob' AND id = 3", true, "SELECT * FROM t WHERE name = ? AND id = ?"},
		{"CREATE USER u IDENTIFIED BY 'hunter2'", false, "CREATE USER u IDENTIFIED BY ?"},
		{"create user 'u'@'%' identified by \"s3cr'et\"", false, "create user ?@'%' identified by ?"},
		{"ALTER USER u IDENTIFIED VIA ed25519 USING PASSWORD('pw')", false, "ALTER USER u IDENTIFIED VIA ed25519 USING PASSWORD(?)"},
		{"SET PASSWORD FOR u = PASSWORD('pw')", false, "SET PASSWORD FOR u = PASSWORD(?)"},
		{"SET PASSWORD = '*AB12'", false, "SET PASSWORD = ?"},
		{"CHANGE MASTER TO MASTER_PASSWORD='pw', MASTER_PORT=3306", false, "CHANGE MASTER TO MASTER_PASSWORD=?, MASTER_PORT=3306"},
		{"/*!80000 CREATE USER u IDENTIFIED BY 'pw' */", false, "/*!80000 CREATE USER u IDENTIFIED BY ? */"},
		{"GRANT ALL ON *.* TO u IDENTIFIED BY x'414243'", false, "GRANT ALL ON *.* TO u IDENTIFIED BY ?"},
		{"CREATE USER u IDENTIFIED BY 'unterminated", false, "CREATE USER u IDENTIFIED BY ?"},
	};
	char out[256];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n = strlen(cases[i].sql);
		size_t r = sql_redact(cases[i].sql, n, 0, cases[i].all, out, n + 1);
		assert_true(r <= n);
		if (strcmp(out, cases[i].want) != 0) {
			fail_msg("redact(%s) = '%s', want '%s'", cases[i].sql, out, cases[i].want);
		}
	}
}

/* --- differential tests: current code == reference ---------------------------------- */

static const char *const tricky[] = {
	"", "SELECT c FROM sbtest1 WHERE id=5021", "select  c\n from sbtest1 where id = 'x' -- t",
	"SELECT * FROM t WHERE id IN (1, 2, 3,4)", "INSERT INTO t (a,b) VALUES (1,'x'),(2,'y')",
	"INSERT INTO t VALUES (1),(2),(3)", "INSERT INTO t VALUES ((1),(2)),((3),(4))",
	"SELECT _utf8mb4'x', x'0A', b'01', 0x1F, 1.5e3", "/*!50000 DROP TABLE */ t1",
	"SELECT `a b`.c FROM `ks`.`t`", "select (?),(?),(?+),(?+)", "select ?, ?, ?",
	"select 1,2,3,(4,5),((6)),(7),(8)", "SeLeCt DiStInCt c fRoM t oRdEr By c",
	"select a.b.c, t.5x, .5, @a, @@session.x, :v, ?", "select 'a\\'b', \"c\\\"d\", `e``f`",
	"CREATE USER u IDENTIFIED BY 'hunter2'", "create user 'u'@'%' identified by \"s3cr'et\"",
	"SET PASSWORD FOR u = PASSWORD('pw')", "CHANGE MASTER TO MASTER_PASSWORD='pw'",
	"select old_password('x')", "select passwor, dentified, identifie", "d", "D", "dd",
	"password", "PASSWORD", "xpassword", "identified", "IDENTIFIEDx", "identifie", "assword",
	"select 'password'", "select /* identified */ 1", "select `password` from t",
	"UPDATE sbtest4 SET c='38218461204-03942394029-59420342983' WHERE id=44",
};

static const char *const frags[] = {
	"select", "SELECT", "from", "IN", "values", "VALUES", "id", "=", " ", "  ", "\n", "\t",
	",", ", ", "(", ")", "),(", "1", "2.5", "'s'", "\"s\"", "`q`", "x'0a'", "b'1'", "0x1f",
	"_utf8mb4'x'", "?", ".", "t", "a.b", "/* c */", "/*!50700 ", "*/", "-- c\n", "# c\n",
	"/*+ h */", "/*vt+ d */", ";", "@v", "@@x", ":p", "password", "PassWord", "identified",
	"IDENTIFIED", "passwor", "dentified", "d", "D", "old_password", "master_password", "'",
	"\\", "--", "/*", "<=>", "->>", "N'n'", "1e-5", "\xff", "by",
};

static uint64_t rng_state = 0x2545f4914f6cdd1dULL;

static unsigned
rnd(unsigned m)
{
	rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
	return (unsigned)(rng_state >> 33) % m;
}

static unsigned long diff_inputs;

/* Digest (text and hash, several buffer sizes), secret check and redaction of the
 * current code and of the reference agree, for every lexer flag set.  The text is in
 * a heap block of exactly n bytes (ASan sees any overread). */
static void
diff_one(const char *s, size_t n)
{
	static const size_t outlens[] = {SQL_DIGEST_MAX, 0, 1, 2, 7, 16, 17, 33};
	char *z = malloc(n ? n : 1), a[SQL_DIGEST_MAX], b[SQL_DIGEST_MAX];
	unsigned flags;
	size_t k;

	assert_non_null(z);
	memcpy(z, s, n);
	for (flags = 0; flags < 4; flags++) {
		for (k = 0; k < sizeof(outlens) / sizeof(outlens[0]); k++) {
			size_t ol = outlens[k];
			uint64_t ha, hb;

			memset(a, 'A', sizeof(a));
			memset(b, 'A', sizeof(b));
			ha = sql_digest(z, n, flags, a, ol);
			hb = ref_digest(z, n, flags, b, ol);
			if (ha != hb || memcmp(a, b, sizeof(a)) != 0)
				fail_msg("digest differs (flags %u, outlen %zu): '%s' %llx, want '%s' "
					 "%llx; input '%.*s'", flags, ol, ol ? a : "", (unsigned long long)ha,
					 ol ? b : "", (unsigned long long)hb, (int)n, z);
		}
		if (sql_has_secret(z, n, flags) != ref_has_secret(z, n, flags))
			fail_msg("has_secret differs (flags %u): input '%.*s'", flags, (int)n, z);
		{
			char *ra = malloc(n + 1), *rb = malloc(n + 1);
			size_t la, lb;

			assert_true(ra != NULL && rb != NULL);
			la = sql_redact(z, n, flags, flags & 1, ra, n + 1);
			lb = ref_redact(z, n, flags, flags & 1, rb, n + 1);
			if (la != lb || memcmp(ra, rb, la + 1) != 0)
				fail_msg("redact differs (flags %u): input '%.*s'", flags, (int)n, z);
			free(ra);
			free(rb);
		}
	}
	free(z);
	diff_inputs++;
}

static void
test_diff_digest(void **state)
{
	char buf[1024];
	size_t i, k;
	unsigned r;

	(void)state;
	for (i = 0; i < sizeof(tricky) / sizeof(tricky[0]); i++)
		for (k = 0; k <= strlen(tricky[i]); k++)
			diff_one(tricky[i], k);
	for (r = 0; r < 30000; r++) {
		size_t w = 0, nf = rnd(r % 16 == 0 ? 200 : 30);

		for (k = 0; k < nf; k++) {
			const char *f = frags[rnd(sizeof(frags) / sizeof(frags[0]))];
			size_t fl = strlen(f);

			if (rnd(50) == 0) {
				f = "\0";
				fl = 1;
			}
			if (w + fl > sizeof(buf))
				break;
			memcpy(buf + w, f, fl);
			w += fl;
		}
		diff_one(buf, w);
	}
	/* digests longer than the buffer: the cut, and the hash of the cut text */
	for (r = 0; r < 300; r++) {
		static const char *const parts[] = {"1, ", "x,", "(1),(2),", "'s' ", "a.b "};
		size_t w = 0;

		for (;;) {
			const char *f = parts[rnd(sizeof(parts) / sizeof(parts[0]))];

			if (w + strlen(f) > sizeof(buf))
				break;
			memcpy(buf + w, f, strlen(f));
			w += strlen(f);
		}
		diff_one(buf, w);
	}
	print_message("differential: %lu inputs, each with 4 flag sets\n", diff_inputs);
}

/* --- skeletons ------------------------------------------------------------------- */

static bool
skel_of(const char *sql, char *out, size_t *n)
{
	uint64_t h;

	return sql_skeleton(sql, strlen(sql), out, SQL_DIGEST_MAX, n, &h);
}

static void
test_skeleton_cases(void **state)
{
	static const char *const same[][2] = {
		{"SELECT c FROM sbtest1 WHERE id=5021", "SELECT c FROM sbtest1 WHERE id=7"},
		{"UPDATE t SET c='a-b' WHERE id=4", "UPDATE t SET c='' WHERE id=44444"},
		{"INSERT INTO t VALUES (1,'x'),(-2,'/* no */')", "INSERT INTO t VALUES (9,'--'),(-0,'#')"},
		{"SELECT `a``1` FROM t WHERE x = '\xc3\xa9'", "SELECT `a``1` FROM t WHERE x = '\"'"},
		{"SELECT 'a''b'", "SELECT 'ab'"}, /* one literal each */
	};
	static const char *const differ[][2] = {
		{"SELECT c FROM t WHERE id=1", "SELECT c FROM t WHERE id = 1"}, /* spacing */
		{"SELECT c FROM t AS 'x'", "SELECT c FROM t AS 'y'"},             /* alias */
		{"SELECT 1 as 2", "SELECT 1 as 3"}, {"SELECT t.As 1", "SELECT t.As 2"},
		{"SELECT x'0a'", "SELECT x'0b'"},                                   /* prefix */
		{"SELECT _utf8mb4'a'", "SELECT _utf8mb4'b'"},
		{"SELECT 1e5", "SELECT 2e5"}, {"SELECT 1e-5", "SELECT 1e-6"}, {"SELECT 1.5", "SELECT 1.6"}, {"SELECT .5", "SELECT .6"},
		{"SELECT c FROM t1", "SELECT c FROM t2"}, {"SELECT @1", "SELECT @2"}, {"SELECT :1", "SELECT :2"},
		{"SELECT 0x1f", "SELECT 0x2f"}, {"SELECT `1`", "SELECT `2`"},
	};
	static const char *const none[] = {
		"SELECT 1 -- c", "SELECT 1 # c", "SELECT /* c */ 1", "SELECT \"s\"",
		"SELECT 'a\\'b'", "SELECT 'open", "SELECT `open", "SELECT \x01", "SELECT `\x02`",
		"SELECT x'\x01'",
	};
	char a[SQL_DIGEST_MAX], b[SQL_DIGEST_MAX];
	size_t an, bn;
	uint64_t h;

	(void)state;
	for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
		assert_true(skel_of(same[i][0], a, &an) && skel_of(same[i][1], b, &bn));
		assert_true(an == bn && memcmp(a, b, an) == 0);
	}
	for (size_t i = 0; i < sizeof(differ) / sizeof(differ[0]); i++) {
		assert_true(skel_of(differ[i][0], a, &an) && skel_of(differ[i][1], b, &bn));
		if (an == bn && memcmp(a, b, an) == 0)
			fail_msg("one skeleton for '%s' and '%s'", differ[i][0], differ[i][1]);
	}
	for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++)
		if (skel_of(none[i], a, &an))
			fail_msg("a skeleton for '%s'", none[i]);
	assert_true(skel_of("SELECT c FROM t WHERE id = 12", a, &an));
	assert_int_equal(an, strlen("SELECT c FROM t WHERE id = ") + 1);
	assert_int_equal(a[an - 1], SQL_SKEL_NUM);
	/* bounded: a skeleton that does not fit is no skeleton */
	assert_true(sql_skeleton("SELECT 1", 8, a, 8, &an, &h));
	assert_false(sql_skeleton("SELECT 1", 8, a, 7, &an, &h));
	assert_true(sql_skeleton("SELECT 'long string'", 20, a, 8, &an, &h));
	assert_false(sql_skeleton("SELECT 'long string'", 20, a, 7, &an, &h));
}

/* Literal text that must not change a digest, for the variants below. */
static const char *const num_lits[] = {"0", "7", "123456789012345678901234567890"};
static const char *const str_lits[] = {"''", "'x'", "'a b -- c /* d */ # e \" `f` ;'",
				       "'\xc3\xa9\xff'", "'\x01\x02'"};

static bool
classes_kept(uint8_t cls)
{
	return cls == SQL_CLASS_SELECT || cls == SQL_CLASS_INSERT || cls == SQL_CLASS_REPLACE ||
	       cls == SQL_CLASS_UPDATE || cls == SQL_CLASS_DELETE || cls == SQL_CLASS_BEGIN ||
	       cls == SQL_CLASS_COMMIT || cls == SQL_CLASS_ROLLBACK;
}

static void
assert_same_tables(const struct sql_stmt *x, const struct sql_stmt *y, const char *what)
{
	if (x->cls != y->cls || x->ntables != y->ntables)
		fail_msg("classification differs for a variant of '%s'", what);
	for (unsigned i = 0; i < x->ntables && i < SQL_STMT_MAX_TABLES; i++) {
		const struct sql_tref *p = &x->tables[i], *q = &y->tables[i];
		if (p->role != q->role || p->qual.len != q->qual.len || p->name.len != q->name.len ||
		    memcmp(x->names + p->qual.off, y->names + q->qual.off, p->qual.len) != 0 ||
		    memcmp(x->names + p->name.off, y->names + q->name.off, p->name.len) != 0)
			fail_msg("table %u differs for a variant of '%s'", i, what);
	}
}

/* Every statement with a skeleton, its literals swapped for others: the same skeleton,
 * the same digest text, hash and folded hash, the same class and tables. */
static void
skel_variants_agree(const char *s, size_t n, unsigned flags)
{
	static struct sql_stmt st0, st1;
	char sk[SQL_DIGEST_MAX], sk2[SQL_DIGEST_MAX], d0[SQL_DIGEST_MAX], d1[SQL_DIGEST_MAX];
	char v[4 * SQL_DIGEST_MAX];
	size_t skn, skn2, vn = 0;
	uint64_t h, f0 = 0, f1 = 0;

	if (!sql_skeleton(s, n, sk, sizeof(sk), &skn, &h))
		return;
	for (size_t i = 0; i < skn; i++) {
		const char *lit = NULL;
		if (sk[i] == SQL_SKEL_NUM)
			lit = num_lits[rnd(3)];
		else if (sk[i] == SQL_SKEL_STR)
			lit = str_lits[rnd(5)];
		if (lit != NULL) {
			memcpy(v + vn, lit, strlen(lit));
			vn += strlen(lit);
		} else {
			v[vn++] = sk[i];
		}
	}
	if (!sql_skeleton(v, vn, sk2, sizeof(sk2), &skn2, &h) || skn2 != skn ||
	    memcmp(sk, sk2, skn) != 0)
		fail_msg("variant '%.*s' of '%.*s' has another skeleton", (int)vn, v, (int)n, s);
	uint64_t h0 = sql_digest_ex(s, n, flags, d0, sizeof(d0), &f0);
	uint64_t h1 = sql_digest_ex(v, vn, flags, d1, sizeof(d1), &f1);
	if (h0 != h1 || f0 != f1 || strcmp(d0, d1) != 0)
		fail_msg("flags %u: digest '%s' of '%.*s' but '%s' of its variant '%.*s'", flags,
			 d0, (int)n, s, d1, (int)vn, v);
	sql_classify(s, n, flags, &st0);
	if (classes_kept(st0.cls)) {
		sql_classify(v, vn, flags, &st1);
		assert_same_tables(&st0, &st1, s);
	}
}

static void
test_skeleton_variants(void **state)
{
	char buf[1024];
	unsigned long with = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(tricky) / sizeof(tricky[0]); i++)
		for (unsigned flags = 0; flags < 4; flags++)
			skel_variants_agree(tricky[i], strlen(tricky[i]), flags);
	for (unsigned r = 0; r < 30000; r++) {
		size_t w = 0, nf = rnd(r % 16 == 0 ? 200 : 30), an;
		char sk[SQL_DIGEST_MAX];
		uint64_t h;

		for (size_t k = 0; k < nf; k++) {
			static const char *const more[] = {" AS ", "as", "As\f", "AS\v", "1", "'s'", "`", "'", ":", "@"};
			const char *f = rnd(8) ? frags[rnd(sizeof(frags) / sizeof(frags[0]))]
					       : more[rnd(sizeof(more) / sizeof(more[0]))];
			if (w + strlen(f) > sizeof(buf))
				break;
			memcpy(buf + w, f, strlen(f));
			w += strlen(f);
		}
		with += sql_skeleton(buf, w, sk, sizeof(sk), &an, &h);
		skel_variants_agree(buf, w, r & 3);
	}
	print_message("skeleton variants: %lu of 30000 inputs had a skeleton\n", with);
	assert_true(with > 3000);
}

/* sql_digest_ex's second hash: what the digest text folds but tables may depend on. */
static uint64_t
folded_of(const char *sql, char *d, size_t dn)
{
	uint64_t f = 0;
	uint64_t h = sql_digest_ex(sql, strlen(sql), 0, d, dn, &f);

	assert_true(h == sql_digest(sql, strlen(sql), 0, d, dn)); /* same digest either way */
	return f;
}

static void
test_digest_ex_folded_parts(void **state)
{
	char a[256], b[256];

	(void)state;
	/* value literals, spacing and comments: same digest, same folded hash */
	assert_true(folded_of("SELECT c FROM t1 WHERE id = 1", a, sizeof(a)) ==
		    folded_of("SELECT  c FROM t1 /* x */ WHERE id = 'zz'", b, sizeof(b)));
	assert_string_equal(a, b);
	/* a keyword used as a table name: one digest, two tables */
	assert_true(folded_of("SELECT c FROM data", a, sizeof(a)) !=
		    folded_of("SELECT c FROM DATA", b, sizeof(b)));
	assert_string_equal(a, b);
	/* a quoted alias after AS */
	assert_true(folded_of("SELECT c FROM t AS 'x'", a, sizeof(a)) !=
		    folded_of("SELECT c FROM t AS 'y'", b, sizeof(b)));
	assert_string_equal(a, b);
	/* but not a value after AS elsewhere: CAST(1 AS ...) keeps the keyword only */
	assert_true(folded_of("SELECT CAST(1 AS CHAR) FROM t", a, sizeof(a)) ==
		    folded_of("SELECT CAST(2 AS CHAR) FROM t", b, sizeof(b)));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_digest_text),
		cmocka_unit_test(test_digest_ex_folded_parts),
		cmocka_unit_test(test_digest_hash_groups_and_separates),
		cmocka_unit_test(test_digest_bounded_output),
		cmocka_unit_test(test_redact),
		cmocka_unit_test(test_diff_digest),
		cmocka_unit_test(test_skeleton_cases),
		cmocka_unit_test(test_skeleton_variants),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
