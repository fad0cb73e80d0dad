/* router/target.h: Vitess session target strings ("ks", "ks@replica", "@rdonly",
 * "ks:-80", "ks/-80", "ks[-80]@rdonly", "ks[1a2b]") parsed exactly as vtgate's
 * topoproto.ParseDestination does (ROUTING_SPEC section b).  Pure, no allocation.
 *
 * How to use:
 *   struct vt_target t;
 *   if (!vt_target_parse(s, n, VT_TT_PRIMARY, &t, err, sizeof err)) ... bad target
 *   t.keyspace ("" allowed), t.tablet_type, t.dest (VT_DEST_NONE unless shard-targeted)
 * vt_tablet_type_name()/vt_tablet_type_suffix() give "PRIMARY"/"@primary". */
#ifndef RT_ROUTER_TARGET_H
#define RT_ROUTER_TARGET_H

#include <stdbool.h>
#include <stddef.h>

#define VT_NAME_MAX 256 /* keyspace and destination text, NUL included */

/* Values are the topodata.TabletType proto numbers. */
enum vt_tablet_type {
	VT_TT_UNKNOWN = 0,
	VT_TT_PRIMARY = 1,
	VT_TT_REPLICA = 2,
	VT_TT_RDONLY = 3,
	VT_TT_SPARE = 4,
	VT_TT_EXPERIMENTAL = 5,
	VT_TT_BACKUP = 6,
	VT_TT_RESTORE = 7,
	VT_TT_DRAINED = 8,
	VT_TT_COUNT
};

enum vt_dest_kind {
	VT_DEST_NONE = 0,
	VT_DEST_SHARD,        /* ks:-80 or ks/-80 */
	VT_DEST_KEYRANGE,     /* ks[-80] (exact key range) */
	VT_DEST_KEYSPACE_ID   /* ks[1a2b] (hex keyspace id) */
};

struct vt_target {
	char keyspace[VT_NAME_MAX];
	char dest_text[VT_NAME_MAX]; /* shard name, range or hex id as written */
	enum vt_tablet_type tablet_type;
	enum vt_dest_kind dest;
	bool tablet_type_given;      /* the string had an @type part */
	bool truncated;              /* a part was longer than VT_NAME_MAX - 1 and was cut */
};

/* Parses s[0..n) into *out (always fully written).  default_tt is used when there is no
 * "@type" (vtgate's --default-tablet-type).  An unknown type name gives VT_TT_UNKNOWN and
 * still returns true (vtgate fails later).  Returns false, with a message in err, only
 * for a '[' without ']' or a bad key range / hex id, like vtgate. */
bool vt_target_parse(const char *s, size_t n, enum vt_tablet_type default_tt,
		     struct vt_target *out, char *err, size_t errlen);

/* Case-insensitive tablet type name (MASTER = PRIMARY, BATCH = RDONLY); UNKNOWN if none. */
enum vt_tablet_type vt_tablet_type_parse(const char *s, size_t n);

/* "PRIMARY", "REPLICA", ... ("UNKNOWN" out of range). */
const char *vt_tablet_type_name(enum vt_tablet_type tt);

/* The routing-rule key suffix vtgate's TabletTypeSuffix gives: "@primary", "@replica",
 * ... every type has one ("@unknown" out of range). */
const char *vt_tablet_type_suffix(enum vt_tablet_type tt);

/* True for information_schema, mysql, sys, performance_schema (case-insensitive). */
bool vt_is_system_schema(const char *s, size_t n);

#endif /* RT_ROUTER_TARGET_H */
