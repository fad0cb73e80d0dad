/* tests/fuzz/fuzz_rules.c: the rules loader from a memory buffer.  The first byte picks
 * the mode: the whole input as one document, or split in two (vschema + rules file).
 * Any accepted snapshot is exercised through a few lookups and a resolution. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "router/classify.h"
#include "router/resolve.h"
#include "router/rules.h"
#include "router/target.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
exercise(struct rules *r)
{
	static struct sql_stmt st;
	static struct route_result res;
	static const char *const sqls[] = {"select * from t1 join s.t2, `t`.x",
					   "drop table if exists a, b.c", "select 1",
					   "insert into t1 select * from information_schema.tables"};
	static const char *const targets[] = {"", "s@replica", "@rdonly", "t:-80", "sys"};
	struct vt_target sess;
	char err[64];
	size_t i, k;

	for (i = 0; i < rules_count(r); i++) {
		struct rule_view v;

		if (!rules_table_rule_at(r, i, &v) || v.key == NULL)
			abort();
	}
	for (i = 0; i < sizeof(sqls) / sizeof(sqls[0]); i++) {
		sql_classify(sqls[i], strlen(sqls[i]), 0, &st);
		for (k = 0; k < sizeof(targets) / sizeof(targets[0]); k++) {
			vt_target_parse(targets[k], strlen(targets[k]), VT_TT_PRIMARY, &sess, err,
					sizeof(err));
			route_resolve(r, &sess, false, &st, &res);
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[RULES_ERRLEN];
	struct rules *r;
	char *buf;
	size_t cut;

	if (size == 0)
		return 0;
	buf = malloc(size);
	if (buf == NULL)
		return 0;
	memcpy(buf, data + 1, size - 1);
	if (data[0] & 1) {
		cut = (size - 1) / 2;
		r = rules_load_buffer(buf, cut, "a", buf + cut, size - 1 - cut, "b", err, sizeof(err));
	} else {
		r = rules_load_buffer(buf, size - 1, "a", NULL, 0, NULL, err, sizeof(err));
	}
	if (r == NULL && err[0] == '\0')
		abort(); /* a rejection always says why */
	if (r != NULL) {
		exercise(r);
		rules_unref(r);
	}
	free(buf);
	return 0;
}
