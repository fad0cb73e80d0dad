/* tests/unit/test_json_util.c: the trace's text buffer writes what jansson writes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/json_util.h"

/* What jansson writes for s[0..n) as a JSON string (after the lossy UTF-8 repair). */
static char *
jansson_text(const char *s, size_t n)
{
	json_t *j = json_string_lossy(s, n);
	char *out = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);

	json_decref(j);
	return out;
}

static void
check_string(const char *s, size_t n)
{
	struct jbuf b = {0};
	char *want = jansson_text(s, n);

	jbuf_string(&b, s, n);
	assert_false(b.failed);
	assert_non_null(want);
	assert_int_equal(b.len, strlen(want));
	assert_memory_equal(b.p, want, b.len);
	free(want);
	jbuf_free(&b);
}

/* Every single byte, alone and inside text, and every pair of bytes around the fast
 * path's edges: the copied text is jansson's, byte for byte. */
static void
test_string_as_jansson(void **state)
{
	(void)state;
	char buf[8];

	for (int c = 0; c < 256; c++) {
		buf[0] = (char)c;
		check_string(buf, 1);
		memcpy(buf, "ab", 2);
		buf[2] = (char)c;
		memcpy(buf + 3, "cd", 2);
		check_string(buf, 5);
	}
	static const unsigned char edge[] = {0x00, 0x1f, 0x20, 0x21, '"', '/', '\\', 0x7e, 0x7f,
					     0x80, 0xc3, 0xa9, 0xe2, 0xff};
	for (size_t i = 0; i < sizeof(edge); i++) {
		for (size_t k = 0; k < sizeof(edge); k++) {
			buf[0] = (char)edge[i];
			buf[1] = (char)edge[k];
			check_string(buf, 2);
		}
	}
	/* every byte at every position of a longer text (the word-at-a-time scan's lanes) */
	char line[24];
	for (int c = 0; c < 256; c++) {
		for (size_t k = 0; k < sizeof(line); k++) {
			memset(line, 'x', sizeof(line));
			line[k] = (char)c;
			check_string(line, sizeof(line));
		}
	}
	const char *sql = "SELECT c FROM sbtest1 WHERE id = 5 AND pad = 'x/y' -- done";
	check_string(sql, strlen(sql));
	check_string("", 0);
	check_string("caf\xc3\xa9 \"q\" \\ \t\n", 14);
}

static void
test_json_and_members(void **state)
{
	(void)state;
	struct jbuf b = {0};
	json_t *o = json_pack("{s:i,s:s,s:[i,b]}", "a", 1, "b", "x\"y", "c", 2, 1);
	json_t *empty = json_object();

	jbuf_puts(&b, "{");
	jbuf_members(&b, o);
	jbuf_puts(&b, ",\"z\":");
	jbuf_json(&b, empty);
	jbuf_members(&b, empty); /* nothing */
	jbuf_puts(&b, "}");
	assert_false(b.failed);
	assert_int_equal(b.len, strlen("{\"a\":1,\"b\":\"x\\\"y\",\"c\":[2,true],\"z\":{}}"));
	assert_memory_equal(b.p, "{\"a\":1,\"b\":\"x\\\"y\",\"c\":[2,true],\"z\":{}}", b.len);
	json_decref(o);
	json_decref(empty);
	jbuf_free(&b);
}

/* A value that does not fit the room left is written again after the buffer grew; many
 * appends keep every byte in order. */
static void
test_growth(void **state)
{
	(void)state;
	struct jbuf b = {0};
	char big[3000];

	memset(big, 'q', sizeof(big));
	json_t *s = json_stringn(big, sizeof(big));
	for (int i = 0; i < 50; i++) {
		jbuf_json(&b, s);
	}
	assert_false(b.failed);
	assert_int_equal(b.len, 50 * (sizeof(big) + 2));
	for (int i = 0; i < 50; i++) {
		const char *p = b.p + (size_t)i * (sizeof(big) + 2);
		assert_int_equal(p[0], '"');
		assert_int_equal(p[1], 'q');
		assert_int_equal(p[sizeof(big) + 1], '"');
	}
	json_decref(s);
	jbuf_free(&b);
	assert_null(b.p);
	assert_int_equal(b.len, 0);
}

static void
test_uint(void **state)
{
	(void)state;
	struct jbuf b = {0};
	static const uint64_t v[] = {0, 7, 10, 999, 1000000, UINT64_MAX};
	char want[32];

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		b.len = 0;
		jbuf_uint(&b, v[i]);
		snprintf(want, sizeof(want), "%llu", (unsigned long long)v[i]);
		assert_int_equal(b.len, strlen(want));
		assert_memory_equal(b.p, want, b.len);
	}
	jbuf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_string_as_jansson),
	    cmocka_unit_test(test_json_and_members),
	    cmocka_unit_test(test_growth),
	    cmocka_unit_test(test_uint),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
