/* tests/unit/test_target.c: Vitess target strings (ROUTING_SPEC section b). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "router/target.h"

struct tcase {
	const char *in;
	bool ok;
	const char *ks;
	enum vt_tablet_type tt;
	enum vt_dest_kind dest;
	const char *dest_text;
};

static const struct tcase cases[] = {
	{"ks", true, "ks", VT_TT_PRIMARY, VT_DEST_NONE, ""},
	{"ks@replica", true, "ks", VT_TT_REPLICA, VT_DEST_NONE, ""},
	{"ks@REPLICA", true, "ks", VT_TT_REPLICA, VT_DEST_NONE, ""},
	{"@rdonly", true, "", VT_TT_RDONLY, VT_DEST_NONE, ""},
	{"ks:-80", true, "ks", VT_TT_PRIMARY, VT_DEST_SHARD, "-80"},
	{"ks/-80", true, "ks", VT_TT_PRIMARY, VT_DEST_SHARD, "-80"},
	{"ks:-80@replica", true, "ks", VT_TT_REPLICA, VT_DEST_SHARD, "-80"},
	{"ks[-80]@rdonly", true, "ks", VT_TT_RDONLY, VT_DEST_KEYRANGE, "-80"},
	{"ks[40-80]", true, "ks", VT_TT_PRIMARY, VT_DEST_KEYRANGE, "40-80"},
	{"ks[-]", true, "ks", VT_TT_PRIMARY, VT_DEST_KEYRANGE, "-"},
	{"ks[1a2B]", true, "ks", VT_TT_PRIMARY, VT_DEST_KEYSPACE_ID, "1a2B"},
	{"ks@master", true, "ks", VT_TT_PRIMARY, VT_DEST_NONE, ""},
	{"ks@batch", true, "ks", VT_TT_RDONLY, VT_DEST_NONE, ""},
	{"ks@spare", true, "ks", VT_TT_SPARE, VT_DEST_NONE, ""},
	{"ks@experimental", true, "ks", VT_TT_EXPERIMENTAL, VT_DEST_NONE, ""},
	{"ks@backup", true, "ks", VT_TT_BACKUP, VT_DEST_NONE, ""},
	{"ks@restore", true, "ks", VT_TT_RESTORE, VT_DEST_NONE, ""},
	{"ks@drained", true, "ks", VT_TT_DRAINED, VT_DEST_NONE, ""},
	{"ks@bogus", true, "ks", VT_TT_UNKNOWN, VT_DEST_NONE, ""},
	{"ks@", true, "ks", VT_TT_UNKNOWN, VT_DEST_NONE, ""},
	{"", true, "", VT_TT_PRIMARY, VT_DEST_NONE, ""},
	{"a@b@replica", true, "a@b", VT_TT_REPLICA, VT_DEST_NONE, ""},
	{"ks[-80", false, "", VT_TT_PRIMARY, VT_DEST_NONE, ""},
	{"ks[zz]", false, "", VT_TT_PRIMARY, VT_DEST_NONE, ""},
	{"ks[abc]", false, "", VT_TT_PRIMARY, VT_DEST_NONE, ""},
	{"ks[-40-80]", false, "", VT_TT_PRIMARY, VT_DEST_NONE, ""},
};

static void
test_parse(void **state)
{
	struct vt_target t;
	char err[128];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct tcase *c = &cases[i];
		bool ok = vt_target_parse(c->in, strlen(c->in), VT_TT_PRIMARY, &t, err, sizeof(err));

		if (ok != c->ok)
			fail_msg("case %zu '%s': ok=%d err=%s", i, c->in, ok, err);
		if (!ok) {
			assert_true(err[0] != '\0');
			continue;
		}
		if (strcmp(t.keyspace, c->ks) != 0 || t.tablet_type != c->tt || t.dest != c->dest ||
		    strcmp(t.dest_text, c->dest_text) != 0)
			fail_msg("case %zu '%s': ks=%s tt=%d dest=%d/%s", i, c->in, t.keyspace,
				 t.tablet_type, t.dest, t.dest_text);
	}
}

static void
test_default_and_names(void **state)
{
	struct vt_target t;
	char err[64];

	(void)state;
	assert_true(vt_target_parse("ks", 2, VT_TT_REPLICA, &t, err, sizeof(err)));
	assert_int_equal(t.tablet_type, VT_TT_REPLICA);
	assert_false(t.tablet_type_given);
	assert_true(vt_target_parse("ks@primary", 10, VT_TT_REPLICA, &t, err, sizeof(err)));
	assert_int_equal(t.tablet_type, VT_TT_PRIMARY);
	assert_true(t.tablet_type_given);
	assert_string_equal(vt_tablet_type_suffix(VT_TT_PRIMARY), "@primary");
	assert_string_equal(vt_tablet_type_suffix(VT_TT_UNKNOWN), "@unknown");
	assert_string_equal(vt_tablet_type_suffix(VT_TT_DRAINED), "@drained");
	assert_string_equal(vt_tablet_type_name(VT_TT_RDONLY), "RDONLY");
	assert_true(vt_is_system_schema("INFORMATION_SCHEMA", 18));
	assert_true(vt_is_system_schema("mysql", 5));
	assert_true(vt_is_system_schema("Sys", 3));
	assert_true(vt_is_system_schema("performance_schema", 18));
	assert_false(vt_is_system_schema("mysql2", 6));
	/* the length bound is honoured: "ks@replica" cut to 2 bytes is just "ks" */
	assert_true(vt_target_parse("ks@replica", 2, VT_TT_PRIMARY, &t, err, sizeof(err)));
	assert_string_equal(t.keyspace, "ks");
	assert_int_equal(t.tablet_type, VT_TT_PRIMARY);
}

static void
test_long_truncated(void **state)
{
	char big[600];
	struct vt_target t;
	char err[64];

	(void)state;
	memset(big, 'k', sizeof(big));
	assert_true(vt_target_parse(big, sizeof(big), VT_TT_PRIMARY, &t, err, sizeof(err)));
	assert_true(t.truncated);
	assert_int_equal(strlen(t.keyspace), VT_NAME_MAX - 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse),
	    cmocka_unit_test(test_default_and_names),
	    cmocka_unit_test(test_long_truncated),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
