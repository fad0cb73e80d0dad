/* tests/fuzz/fuzz_sql.c: lexer + splitter + classifier + resolver on arbitrary bytes.
 * Invariants checked: tokens tile the input exactly, never past n; the splitter's pieces
 * lie inside the input and advance; classification terminates with sane counts; the
 * result does not depend on bytes after n (input copied to an exact-size buffer); a
 * statement with a skeleton gets the digest and folded hash of a copy whose literals
 * are swapped for others (the tracer keys its shape cache on the skeleton). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "router/classify.h"
#include "router/resolve.h"
#include "router/sql_digest.h"
#include "router/rules.h"
#include "router/sql_lex.h"
#include "router/target.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct rules *fuzz_rules;

static void
check_lex(const char *z, size_t n, unsigned flags)
{
	struct sql_lex lx;
	struct sql_tok t;
	size_t expect = 0;

	sql_lex_init(&lx, z, n, flags);
	while (sql_lex_next(&lx, &t)) {
		if (t.off != expect || t.len == 0 || t.off + t.len > n)
			abort();
		if (t.type == SQL_TK_IDENT && t.kw != sql_kw_lookup_sorted(z + t.off, t.len))
			abort();
		expect += t.len;
	}
	if (expect != n)
		abort();
}

/* The skeleton's promise: swapping each cut literal for another keeps the skeleton,
 * the digest and the folded hash. */
static void
check_skeleton(const char *z, size_t n, unsigned flags)
{
	static char sk[SQL_DIGEST_MAX], sk2[SQL_DIGEST_MAX], d0[SQL_DIGEST_MAX], d1[SQL_DIGEST_MAX];
	static char v[8 * SQL_DIGEST_MAX];
	size_t skn, skn2, vn = 0;
	uint64_t h, f0 = 0, f1 = 0;

	if (!sql_skeleton(z, n, sk, sizeof(sk), &skn, &h))
		return;
	for (size_t i = 0; i < skn; i++) {
		const char *lit = sk[i] == SQL_SKEL_NUM   ? (i & 1 ? "0" : "98765")
				  : sk[i] == SQL_SKEL_STR ? (i & 1 ? "''" : "'-- /* ` \" x'")
							  : NULL;
		if (lit != NULL) {
			memcpy(v + vn, lit, strlen(lit));
			vn += strlen(lit);
		} else {
			v[vn++] = sk[i];
		}
	}
	if (!sql_skeleton(v, vn, sk2, sizeof(sk2), &skn2, &h) || skn2 != skn ||
	    memcmp(sk, sk2, skn) != 0)
		abort();
	if (sql_digest_ex(z, n, flags, d0, sizeof(d0), &f0) !=
		    sql_digest_ex(v, vn, flags, d1, sizeof(d1), &f1) ||
	    f0 != f1 || strcmp(d0, d1) != 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct sql_stmt st;
	static struct route_result res;
	char *z = malloc(size ? size : 1);
	size_t pos = 0, start, len, last = 0;
	struct vt_target sess;
	char err[128], use[64];
	unsigned flags = size ? data[0] & 3u : 0;

	if (z == NULL)
		return 0;
	memcpy(z, data, size);
	if (fuzz_rules == NULL) {
		static const char js[] =
		    "{\"keyspaces\": {\"s\": {}, \"t\": {\"sharded\": true, \"tables\": {\"t1\": {}}}},"
		    " \"routing_rules\": {\"rules\": [{\"from_table\": \"t1\", \"to_tables\": "
		    "[\"s.t1\"]}, {\"from_table\": \"x@replica\", \"to_tables\": []}]},"
		    " \"keyspace_routing_rules\": {\"rules\": [{\"from_keyspace\": \"t@rdonly\", "
		    "\"to_keyspace\": \"s\"}]}}";

		fuzz_rules = rules_load_buffer(js, sizeof(js) - 1, "fuzz", NULL, 0, NULL, err,
					       sizeof(err));
		if (fuzz_rules == NULL)
			abort();
	}
	check_lex(z, size, flags);
	while (sql_split_next(z, size, &pos, &start, &len)) {
		if (start < last || start + len > size || len == 0 || pos <= start)
			abort();
		last = start + len;
		check_skeleton(z + start, len, flags);
		sql_classify(z + start, len, flags, &st);
		if (st.ntables > SQL_STMT_MAX_TABLES || st.names_used > SQL_STMT_NAMEBUF)
			abort();
		(void)sql_use_target(z + start, len, use, sizeof(use));
		vt_target_parse(z + start, len > 40 ? 40 : len, VT_TT_PRIMARY, &sess, err,
				sizeof(err));
		vt_target_parse("t@rdonly", 8, VT_TT_PRIMARY, &sess, err, sizeof(err));
		route_resolve(fuzz_rules, &sess, flags & 1, &st, &res);
		if (res.ntables != st.ntables)
			abort();
	}
	free(z);
	return 0;
}
