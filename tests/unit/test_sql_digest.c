/* tests/unit/test_sql_digest.c: fingerprints group statements that differ only in
 * literals, spacing, comments and keyword case; redaction always hides passwords. */
#include "router/sql_digest.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

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

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_digest_text),
		cmocka_unit_test(test_digest_hash_groups_and_separates),
		cmocka_unit_test(test_digest_bounded_output),
		cmocka_unit_test(test_redact),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
