/* router/target.c: Vitess target string parsing (topoproto.ParseDestination). */
#include "router/target.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

static const char *const tt_names[VT_TT_COUNT] = {
    "UNKNOWN", "PRIMARY", "REPLICA", "RDONLY", "SPARE", "EXPERIMENTAL", "BACKUP", "RESTORE",
    "DRAINED"};
static const char *const tt_suffixes[VT_TT_COUNT] = {
    "@unknown", "@primary", "@replica", "@rdonly", "@spare", "@experimental", "@backup",
    "@restore", "@drained"};

const char *
vt_tablet_type_name(enum vt_tablet_type tt)
{
	return (unsigned)tt < VT_TT_COUNT ? tt_names[tt] : "UNKNOWN";
}

const char *
vt_tablet_type_suffix(enum vt_tablet_type tt)
{
	return (unsigned)tt < VT_TT_COUNT ? tt_suffixes[tt] : "@unknown";
}

static bool
eq_ci(const char *s, size_t n, const char *lit)
{
	return strlen(lit) == n && strncasecmp(s, lit, n) == 0;
}

enum vt_tablet_type
vt_tablet_type_parse(const char *s, size_t n)
{
	int i;

	if (eq_ci(s, n, "MASTER"))
		return VT_TT_PRIMARY;
	if (eq_ci(s, n, "BATCH"))
		return VT_TT_RDONLY;
	for (i = 1; i < VT_TT_COUNT; i++)
		if (eq_ci(s, n, tt_names[i]))
			return (enum vt_tablet_type)i;
	return VT_TT_UNKNOWN;
}

bool
vt_is_system_schema(const char *s, size_t n)
{
	return eq_ci(s, n, "information_schema") || eq_ci(s, n, "mysql") || eq_ci(s, n, "sys") ||
	       eq_ci(s, n, "performance_schema");
}

/* Last index of any byte of set in s[0..n), or n if none. */
static size_t
last_of(const char *s, size_t n, const char *set)
{
	size_t i = n;

	while (i > 0) {
		i--;
		if (strchr(set, s[i]) != NULL && s[i] != '\0')
			return i;
	}
	return n;
}

static void
copy_cut(char *dst, const char *src, size_t n, bool *cut)
{
	if (n >= VT_NAME_MAX) {
		n = VT_NAME_MAX - 1;
		*cut = true;
	}
	memcpy(dst, src, n);
	dst[n] = '\0';
}

static bool
is_hex_text(const char *s, size_t n)
{
	size_t i;

	if (n % 2 != 0)
		return false;
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
			return false;
	}
	return true;
}

/* A sharding spec with exactly one range: "start-end", each side hex (possibly empty). */
static bool
is_single_range(const char *s, size_t n)
{
	const char *dash = memchr(s, '-', n);
	size_t a;

	if (dash == NULL || memchr(dash + 1, '-', n - (size_t)(dash - s) - 1) != NULL)
		return false;
	a = (size_t)(dash - s);
	return is_hex_text(s, a) && is_hex_text(dash + 1, n - a - 1);
}

static bool
parse_bracket(const char *s, size_t *n, struct vt_target *out, char *err, size_t errlen)
{
	size_t lb = last_of(s, *n, "["), rb;

	if (lb == *n)
		return true;
	rb = last_of(s, *n, "]");
	if (rb == *n || rb < lb) {
		snprintf(err, errlen, "invalid key range provided. Couldn't find range end ']'");
		return false;
	}
	if (memchr(s + lb + 1, '-', rb - lb - 1) != NULL) {
		if (!is_single_range(s + lb + 1, rb - lb - 1)) {
			snprintf(err, errlen, "single keyrange expected in %.*s", (int)(rb - lb - 1),
				 s + lb + 1);
			return false;
		}
		out->dest = VT_DEST_KEYRANGE;
	} else {
		if (!is_hex_text(s + lb + 1, rb - lb - 1)) {
			snprintf(err, errlen, "expected valid hex in keyspace id %.*s",
				 (int)(rb - lb - 1), s + lb + 1);
			return false;
		}
		out->dest = VT_DEST_KEYSPACE_ID;
	}
	copy_cut(out->dest_text, s + lb + 1, rb - lb - 1, &out->truncated);
	*n = lb;
	return true;
}

bool
vt_target_parse(const char *s, size_t n, enum vt_tablet_type default_tt,
		struct vt_target *out, char *err, size_t errlen)
{
	size_t i;

	memset(out, 0, sizeof(*out));
	out->tablet_type = default_tt;
	if (errlen > 0)
		err[0] = '\0';
	if (s == NULL)
		n = 0;
	i = last_of(s, n, "@");
	if (i < n) {
		out->tablet_type = vt_tablet_type_parse(s + i + 1, n - i - 1);
		out->tablet_type_given = true;
		n = i;
	}
	i = last_of(s, n, "/:");
	if (i < n) {
		out->dest = VT_DEST_SHARD;
		copy_cut(out->dest_text, s + i + 1, n - i - 1, &out->truncated);
		n = i;
	}
	if (!parse_bracket(s, &n, out, err, errlen))
		return false;
	copy_cut(out->keyspace, s, n, &out->truncated);
	return true;
}
