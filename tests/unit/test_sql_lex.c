/* tests/unit/test_sql_lex.c: lexer, splitter and USE-target extraction. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "router/sql_lex.h"

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

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_lex_cases),    cmocka_unit_test(test_lex_code_only),
	    cmocka_unit_test(test_keywords),     cmocka_unit_test(test_prefixes_bounded),
	    cmocka_unit_test(test_split),        cmocka_unit_test(test_use_target),
	    cmocka_unit_test(test_tok_value),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
