/* router/resolve.c: VCursorImpl.FindTableOrVindex + VSchema.FindRoutedTable, as
 * ROUTING_SPEC section a states them, applied to every reference of a statement. */
#include "router/resolve.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "router/classify.h"

#define KEYBUF 1024 /* longest routing-rule key we build; longer keys never match */

/* --- result text buffer ------------------------------------------------------------ */

static const char *
text_add(struct route_result *out, const char *s, size_t n)
{
	char *p;

	if (n + 1 > sizeof(out->text) - out->text_used)
		return NULL;
	p = out->text + out->text_used;
	memcpy(p, s, n);
	p[n] = '\0';
	out->text_used = (uint16_t)(out->text_used + n + 1);
	return p;
}

static const char *text_fmt2(struct route_result *out, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static const char *
text_fmt2(struct route_result *out, const char *fmt, ...)
{
	char buf[600];
	const char *p;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		return "error";
	if ((size_t)n >= sizeof(buf))
		n = (int)sizeof(buf) - 1;
	p = text_add(out, buf, (size_t)n);
	return p ? p : "error (result text buffer full)";
}

/* --- session helpers ---------------------------------------------------------------- */

const char *
route_session_keyspace(const struct rules *r, const struct vt_target *session)
{
	if (session->keyspace[0] == '\0' && rules_keyspace_count(r) == 1)
		return rules_keyspace_name(r, 0);
	return session->keyspace;
}

/* getActualKeyspace(): a system-schema session keyspace means AnyKeyspace(). */
static const char *
actual_keyspace(const struct rules *r, const char *sess_ks, bool *any)
{
	*any = false;
	if (!vt_is_system_schema(sess_ks, strlen(sess_ks)))
		return sess_ks;
	*any = true;
	return rules_any_keyspace(r) >= 0 ? rules_keyspace_name(r, rules_any_keyspace(r)) : "";
}

/* Builds a+b+c into buf (NUL-terminated); false if it does not fit. */
static bool
cat3(char *buf, size_t len, const char *a, const char *b, const char *c, size_t *n)
{
	size_t la = strlen(a), lb = strlen(b), lc = strlen(c);

	if (la + lb + lc + 1 > len)
		return false;
	memcpy(buf, a, la);
	memcpy(buf + la, b, lb);
	memcpy(buf + la + lb, c, lc);
	buf[la + lb + lc] = '\0';
	*n = la + lb + lc;
	return true;
}

/* --- FindRoutedTable ------------------------------------------------------------------ */

struct lookup {
	const char *ks;      /* effective keyspace ("" = global) */
	const char *name;
	enum vt_tablet_type tt;
};

/* Step 1: keyspace routing rules, applied once. */
static const char *
apply_keyspace_rules(const struct rules *r, const char *ks, enum vt_tablet_type tt,
		     uint32_t *flags)
{
	char key[KEYBUF], lower[32];
	const char *to, *nm = vt_tablet_type_name(tt);
	size_t n, i;

	if (!rules_any_keyspace_rules(r))
		return ks;
	lower[0] = '\0';
	if (tt != VT_TT_PRIMARY) {
		lower[0] = '@';
		for (i = 0; nm[i] && i + 2 < sizeof(lower); i++)
			lower[i + 1] = (char)(nm[i] >= 'A' && nm[i] <= 'Z' ? nm[i] - 'A' + 'a' : nm[i]);
		lower[i + 1] = '\0';
	}
	if (cat3(key, sizeof(key), ks, lower, "", &n) && rules_keyspace_rule(r, key, n, &to)) {
		*flags |= ROUTE_T_KS_RULE;
		return to;
	}
	if (lower[0] != '\0' && rules_keyspace_rule(r, ks, strlen(ks), &to)) {
		*flags |= ROUTE_T_KS_RULE;
		return to;
	}
	return ks;
}

/* Marks t failed with a fixed text (borrowed, must be static or snapshot-owned). */
static void
set_error_text(struct route_table *t, uint32_t flag, const char *text)
{
	t->flags |= flag | ROUTE_T_ERROR;
	t->error = text;
	t->reached_ks = NULL;
	t->reached_table = NULL;
}

/* Marks t failed with "<pre><arg><post>" formatted into the result's text buffer. */
static void
set_error(struct route_result *out, struct route_table *t, uint32_t flag, const char *pre,
	  const char *arg, const char *post)
{
	set_error_text(t, flag, text_fmt2(out, "%s%s%s", pre, arg, post));
}

/* Step 5: findTable(ks, name, constructUnsharded=true).  Returns true if found. */
static bool
find_table(const struct rules *r, struct route_result *out, struct route_table *t,
	   const char *ks, const char *name)
{
	size_t nl = strlen(name);
	int k;

	if (ks[0] == '\0') {
		int g = rules_global_table(r, name, nl);

		if (g >= 0) {
			t->reached_ks = rules_keyspace_name(r, g);
			t->reached_table = name;
			return true;
		}
		if (rules_keyspace_count(r) == 1) {
			k = 0;
			goto in_keyspace;
		}
		if (g == RULES_AMBIGUOUS)
			set_error(out, t, ROUTE_T_AMBIGUOUS, "ambiguous table reference: ", name, "");
		else
			set_error(out, t, ROUTE_T_UNKNOWN_TABLE, "table ", name, " not found");
		return false;
	}
	k = rules_keyspace_find(r, ks, strlen(ks));
	if (k < 0) {
		set_error(out, t, ROUTE_T_UNKNOWN_KEYSPACE, "VT05003: unknown database '", ks,
			  "' in vschema");
		return false;
	}
in_keyspace:
	if (rules_table_declared(r, k, name, nl)) {
		t->reached_ks = rules_keyspace_name(r, k);
		t->reached_table = name;
		return true;
	}
	if (!rules_keyspace_sharded(r, k)) {
		t->flags |= ROUTE_T_SYNTHETIC;
		t->reached_ks = rules_keyspace_name(r, k);
		t->reached_table = name;
		return true;
	}
	set_error(out, t, ROUTE_T_UNKNOWN_TABLE, "table ", name, " not found");
	return false;
}

/* Steps 2-4: table routing rules (fqtn@tt, then the bare key).  True if a key matched. */
static bool
table_rules(const struct rules *r, struct route_result *out, struct route_table *t,
	    const char *ks, const char *name)
{
	char key[KEYBUF];
	size_t n, qn;
	struct rule_view rv;
	bool hit;

	if (!cat3(key, sizeof(key), ks, ks[0] ? "." : "", name, &qn))
		return false;
	{
		const char *sfx = vt_tablet_type_suffix(t->tablet_type);
		size_t sl = strlen(sfx);

		n = qn + sl;
		hit = n < sizeof(key) && (memcpy(key + qn, sfx, sl + 1), true) &&
		      rules_table_rule(r, key, n, &rv);
	}
	if (!hit) {
		key[qn] = '\0';
		hit = rules_table_rule(r, key, qn, &rv);
	}
	if (!hit)
		return false;
	t->rule = rv.key;
	t->flags |= ROUTE_T_RULE;
	if (rv.kind == RULE_ERROR)
		set_error_text(t, ROUTE_T_RULE_ERROR, rv.error);
	else if (rv.kind == RULE_DISABLED)
		set_error(out, t, ROUTE_T_DISABLED, "table ", name, " has been disabled");
	else {
		t->reached_ks = rules_keyspace_name(r, rv.ks);
		t->reached_table = rv.table;
	}
	return true;
}

/* Where the vschema alone would send an unqualified name (for REDIRECTED). */
static const char *
no_rule_keyspace(const struct rules *r, const char *name)
{
	int g = rules_global_table(r, name, strlen(name));

	if (g >= 0)
		return rules_keyspace_name(r, g);
	if (rules_keyspace_count(r) == 1)
		return rules_keyspace_name(r, 0);
	return NULL;
}

static void
mark_redirected(const struct rules *r, struct route_table *t, const char *eff_ks)
{
	const char *base_ks;

	if (t->reached_ks == NULL || !(t->flags & (ROUTE_T_RULE | ROUTE_T_KS_RULE)))
		return;
	base_ks = eff_ks[0] ? eff_ks : no_rule_keyspace(r, t->table);
	if (base_ks == NULL || strcmp(base_ks, t->reached_ks) != 0 ||
	    strcmp(t->table, t->reached_table) != 0)
		t->flags |= ROUTE_T_REDIRECTED;
}

/* DDL on a table that was not found: TargetDestination(qualifier). */
static void
ddl_destination(const struct rules *r, struct route_result *out, struct route_table *t,
		const char *qual, const char *actual_ks)
{
	const char *ks = qual[0] ? qual : actual_ks;
	int k;

	t->flags &= ~(uint32_t)(ROUTE_T_ERROR | ROUTE_T_UNKNOWN_TABLE);
	t->error = NULL;
	if (ks[0] == '\0') {
		set_error_text(t, ROUTE_T_UNKNOWN_KEYSPACE,
			  "VT09005: no database selected: use keyspace<:shard><@type> or "
			  "keyspace<[range]><@type> (<> are optional)");
		return;
	}
	k = rules_keyspace_find(r, ks, strlen(ks));
	if (k < 0) {
		set_error(out, t, ROUTE_T_UNKNOWN_KEYSPACE, "VT05003: unknown database '", ks,
			  "' in vschema");
		return;
	}
	t->flags |= (t->flags & ROUTE_T_NEW_NAME) ? 0 : ROUTE_T_DDL_FALLBACK;
	t->reached_ks = rules_keyspace_name(r, k);
	t->reached_table = t->table;
}

/* --- one reference ------------------------------------------------------------------- */

struct ctx {
	const struct rules *r;
	const struct vt_target *sess;
	const char *sess_ks;   /* after the single-keyspace fill */
	struct route_result *out;
	const struct sql_stmt *st;
	bool qual_dest; /* some qualifier carried a shard/range destination */
};

static void
resolve_dual(struct ctx *c, struct route_table *t)
{
	bool any;
	const char *ks = actual_keyspace(c->r, c->sess_ks, &any);

	t->flags |= ROUTE_T_DUAL;
	t->tablet_type = VT_TT_PRIMARY;
	t->named_ks = "";
	if (ks[0] == '\0') {
		int f = rules_first_keyspace(c->r);

		if (f < 0) {
			set_error_text(t, ROUTE_T_UNKNOWN_KEYSPACE, "no keyspace in vschema");
			return;
		}
		ks = rules_keyspace_name(c->r, f);
	} else if (rules_keyspace_find(c->r, ks, strlen(ks)) < 0) {
		set_error(c->out, t, ROUTE_T_UNKNOWN_KEYSPACE, "VT05003: unknown database '", ks,
			  "' in vschema");
		return;
	}
	t->reached_ks = ks;
	t->reached_table = "dual";
}

static void
resolve_bypass(struct ctx *c, struct route_table *t, const char *qual)
{
	t->flags |= ROUTE_T_SHARD_TARGETED;
	if (qual[0] != '\0' && strcmp(qual, c->sess->keyspace) != 0)
		t->flags |= ROUTE_T_FOREIGN_QUALIFIER;
	t->reached_ks = c->sess->keyspace;
	t->reached_table = t->table;
}

/* The table a RENAME's new name t belongs to: the nearest DDL table before t that is not
 * itself a new name (RENAME a TO b, c TO d; ALTER TABLE a ... RENAME TO b). */
static const struct route_table *
renamed_table(const struct route_result *out, const struct route_table *t)
{
	for (size_t i = (size_t)(t - out->tables); i-- > 0;)
		if (out->tables[i].role == SQL_ROLE_DDL && !(out->tables[i].flags & ROUTE_T_NEW_NAME))
			return &out->tables[i];
	return NULL;
}

/* buildRenameTable resolves a qualified new name with TargetDestination(qualifier); an
 * unqualified one is not resolved at all and stays in the renamed table's keyspace,
 * whatever the session keyspace. */
static void
resolve_new_name(struct ctx *c, struct route_table *t, const char *qual, const char *ks)
{
	const struct route_table *from = qual[0] == '\0' ? renamed_table(c->out, t) : NULL;

	if (from == NULL) {
		ddl_destination(c->r, c->out, t, qual, ks);
		return;
	}
	/* a failure of the renamed table is the statement's error already */
	t->reached_ks = from->reached_ks;
	t->reached_table = from->reached_ks ? t->table : NULL;
}

static void
resolve_ref(struct ctx *c, const struct sql_tref *ref, struct route_table *t)
{
	const char *qual = sql_stmt_str(c->st, ref->qual);
	char perr[128];
	struct vt_target qt;
	const char *ks, *orig_ks;
	bool any;

	t->table = sql_stmt_str(c->st, ref->name);
	t->named_ks = qual[0] ? qual : c->sess_ks;
	t->tablet_type = c->sess->tablet_type;
	if (ref->flags & SQL_TREF_NEW_NAME)
		t->flags |= ROUTE_T_NEW_NAME;
	if (c->sess->dest != VT_DEST_NONE) {
		resolve_bypass(c, t, qual);
		return;
	}
	if (qual[0] == '\0' && strcmp(t->table, "dual") == 0) {
		resolve_dual(c, t);
		return;
	}
	ks = NULL;
	if (qual[0] != '\0' && strpbrk(qual, "@/:[") == NULL) {
		ks = qual; /* plain keyspace qualifier: the common case, no parse */
	} else if (qual[0] != '\0') {
		if (!vt_target_parse(qual, strlen(qual), c->sess->tablet_type, &qt, perr,
				     sizeof(perr))) {
			set_error(c->out, t, ROUTE_T_UNKNOWN_KEYSPACE, "", perr, "");
			return;
		}
		t->flags |= ROUTE_T_QUALIFIER_TARGET;
		if (qt.dest != VT_DEST_NONE)
			c->qual_dest = true;
		if (qt.keyspace[0] != '\0')
			ks = text_add(c->out, qt.keyspace, strlen(qt.keyspace));
	}
	if (ks == NULL && rules_keyspace_count(c->r) == 1)
		ks = rules_keyspace_name(c->r, 0);
	if (ks == NULL) {
		ks = actual_keyspace(c->r, c->sess_ks, &any);
		if (any)
			t->flags |= ROUTE_T_ANY_KEYSPACE;
	}
	if (ref->flags & SQL_TREF_NEW_NAME) {
		resolve_new_name(c, t, qual, ks);
		return;
	}
	if (vt_is_system_schema(ks, strlen(ks)) && rules_keyspace_find(c->r, ks, strlen(ks)) < 0) {
		int a = rules_any_keyspace(c->r);

		t->flags |= ROUTE_T_SYSTEM_SCHEMA;
		t->reached_ks = a >= 0 ? rules_keyspace_name(c->r, a) : "";
		t->reached_table = t->table;
		return;
	}
	orig_ks = ks;
	ks = apply_keyspace_rules(c->r, ks, t->tablet_type, &t->flags);
	if (!table_rules(c->r, c->out, t, ks, t->table))
		find_table(c->r, c->out, t, ks, t->table);
	if (ref->role == SQL_ROLE_DDL && (t->flags & ROUTE_T_UNKNOWN_TABLE) &&
	    !(t->flags & ROUTE_T_RULE)) {
		bool dummy;

		ddl_destination(c->r, c->out, t, qual, actual_keyspace(c->r, c->sess_ks, &dummy));
	}
	mark_redirected(c->r, t, orig_ks);
}

/* --- statement-level checks ------------------------------------------------------------- */

static void
check_use(struct ctx *c, bool in_tx)
{
	const char *db = sql_stmt_str(c->st, c->st->db);
	struct vt_target nt;
	char perr[128];

	if (!vt_target_parse(db, strlen(db), VT_TT_PRIMARY, &nt, perr, sizeof(perr))) {
		c->out->error = text_fmt2(c->out, "%s", perr);
		return;
	}
	if (nt.keyspace[0] != '\0' && !vt_is_system_schema(nt.keyspace, strlen(nt.keyspace)) &&
	    rules_keyspace_find(c->r, nt.keyspace, strlen(nt.keyspace)) < 0) {
		c->out->error = text_fmt2(c->out, "VT05003: unknown database '%s' in vschema",
					  nt.keyspace);
		return;
	}
	if (in_tx && nt.tablet_type_given && nt.tablet_type != VT_TT_PRIMARY)
		c->out->error = "can't execute the given command because you have an active "
				"transaction";
}

static const char *
dml_word(uint8_t cls)
{
	switch (cls) {
	case SQL_CLASS_INSERT:
	case SQL_CLASS_REPLACE:
		return "insert";
	case SQL_CLASS_UPDATE:
		return "update";
	case SQL_CLASS_DELETE:
		return "delete";
	default:
		return NULL;
	}
}

static void
check_statement(struct ctx *c)
{
	struct route_result *out = c->out;
	const char *w = dml_word(c->st->cls);
	const char *ddl_ks = NULL;
	unsigned i;

	for (i = 0; i < out->ntables && out->error == NULL; i++)
		if (out->tables[i].error != NULL)
			out->error = out->tables[i].error;
	if (out->error == NULL && w != NULL && c->sess->dest == VT_DEST_NONE &&
	    c->sess->tablet_type != VT_TT_PRIMARY)
		out->error = text_fmt2(out, "VT09002: %s statement with a replica target", w);
	if (out->error == NULL && c->qual_dest &&
	    (c->st->cls == SQL_CLASS_SELECT || c->st->cls == SQL_CLASS_INSERT ||
	     c->st->cls == SQL_CLASS_REPLACE))
		out->error = c->st->cls == SQL_CLASS_SELECT
				 ? "VT09017: SELECT with a target destination is not allowed"
				 : "VT09017: INSERT with a target destination is not allowed";
	/* RENAME a TO b: the new name must stay in the old name's keyspace */
	for (i = 0; i + 1 < out->ntables && out->error == NULL; i++) {
		const struct route_table *a = &out->tables[i], *b = &out->tables[i + 1];

		if ((a->flags & ROUTE_T_NEW_NAME) || !(b->flags & ROUTE_T_NEW_NAME) ||
		    a->reached_ks == NULL || b->reached_ks == NULL ||
		    strcmp(a->reached_ks, b->reached_ks) == 0)
			continue;
		out->error = text_fmt2(out, "VT03002: changing schema from '%s' to '%s' is not allowed",
				       a->reached_ks, b->reached_ks);
	}
	for (i = 0; i < out->ntables && out->error == NULL; i++) {
		const struct route_table *t = &out->tables[i];

		if (t->role != SQL_ROLE_DDL || (t->flags & ROUTE_T_NEW_NAME) ||
		    t->reached_ks == NULL)
			continue;
		if (ddl_ks == NULL)
			ddl_ks = t->reached_ks;
		else if (strcmp(ddl_ks, t->reached_ks) != 0 &&
			 (c->st->cls == SQL_CLASS_DROP || c->st->cls == SQL_CLASS_RENAME))
			out->error = "VT12001: unsupported: Tables or Views specified in the query "
				     "do not belong to the same destination";
	}
}

void
route_resolve(const struct rules *r, const struct vt_target *session, bool in_tx,
	      const struct sql_stmt *st, struct route_result *out)
{
	struct ctx c = {r, session, route_session_keyspace(r, session), out, st, false};
	unsigned i;

	out->ntables = 0;
	out->flags = 0;
	out->error = NULL;
	out->text_used = 0;
	out->tablet_type = session->tablet_type;
	if (st->cls == SQL_CLASS_USE)
		check_use(&c, in_tx);
	for (i = 0; i < st->ntables && i < SQL_STMT_MAX_TABLES; i++) {
		struct route_table *t = &out->tables[out->ntables++];

		memset(t, 0, sizeof(*t));
		t->tref = (uint8_t)i;
		t->role = st->tables[i].role;
		resolve_ref(&c, &st->tables[i], t);
		out->flags |= t->flags;
	}
	if (out->error == NULL)
		check_statement(&c);
}

const char *
route_named_str(const struct route_table *t, char *buf, size_t len)
{
	snprintf(buf, len, "%s%s%s", t->named_ks ? t->named_ks : "",
		 t->named_ks && t->named_ks[0] ? "." : "", t->table ? t->table : "");
	return buf;
}

const char *
route_reached_str(const struct route_table *t, char *buf, size_t len)
{
	if (t->reached_ks == NULL)
		snprintf(buf, len, "%s", "");
	else
		snprintf(buf, len, "%s%s%s", t->reached_ks, t->reached_ks[0] ? "." : "",
			 t->reached_table ? t->reached_table : "");
	return buf;
}
