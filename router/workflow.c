/* router/workflow.c: rules diffs and MoveTables step recognition.  Where a table goes is
 * asked of the resolver itself (an unqualified SELECT per tablet type), so the summary
 * can never disagree with the per-statement trace. */
#include "router/workflow.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/classify.h"
#include "router/resolve.h"
#include "router/rules.h"
#include "router/target.h"

struct workflow_memory {
	json_t *dir; /* table -> {"source": S, "target": T} */
};

static const enum vt_tablet_type wf_tts[3] = {VT_TT_PRIMARY, VT_TT_REPLICA, VT_TT_RDONLY};
static const char *const wf_tt_names[3] = {"primary", "replica", "rdonly"};

struct workflow_memory *
workflow_memory_new(void)
{
	struct workflow_memory *m = calloc(1, sizeof(*m));

	if (m != NULL && (m->dir = json_object()) == NULL) {
		free(m);
		return NULL;
	}
	return m;
}

void
workflow_memory_free(struct workflow_memory *m)
{
	if (m != NULL) {
		json_decref(m->dir);
		free(m);
	}
}

/* "ks.t1@rdonly" -> qualifier "ks", table "t1" (either may be empty). */
static void
key_split(const char *key, char *qual, size_t ql, char *table, size_t tl)
{
	const char *at = strrchr(key, '@');
	size_t n = at ? (size_t)(at - key) : strlen(key);
	const char *dot = memchr(key, '.', n);

	if (dot != NULL) {
		snprintf(qual, ql, "%.*s", (int)(dot - key), key);
		snprintf(table, tl, "%.*s", (int)(n - (size_t)(dot - key) - 1), dot + 1);
	} else {
		qual[0] = 0;
		snprintf(table, tl, "%.*s", (int)n, key);
	}
}

static void
rule_target_text(const struct rules *r, const struct rule_view *v, char *buf, size_t len)
{
	if (v->kind == RULE_TARGET) {
		snprintf(buf, len, "%s.%s", rules_keyspace_name(r, v->ks), v->table);
	} else if (v->kind == RULE_DISABLED) {
		snprintf(buf, len, "(disabled)");
	} else {
		snprintf(buf, len, "(error: %s)", v->error);
	}
}

/* key -> target text of every table rule; and the set of tables the rules name. */
static json_t *
rules_map(const struct rules *r, json_t *tables)
{
	json_t *m = json_object();
	struct rule_view v;
	char buf[1024], q[256], t[256];

	for (size_t i = 0; r != NULL && rules_table_rule_at(r, i, &v); i++) {
		rule_target_text(r, &v, buf, sizeof(buf));
		json_object_set_new(m, v.key, json_string(buf));
		key_split(v.key, q, sizeof(q), t, sizeof(t));
		json_object_set_new(tables, t, json_true());
		if (v.kind == RULE_TARGET) {
			json_object_set_new(tables, v.table, json_true());
		}
	}
	return m;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The keys of obj, sorted (borrowed from obj; free the array). */
static const char **
sorted_keys(json_t *obj, size_t *n)
{
	const char *k;
	json_t *v;
	size_t i = 0;
	const char **keys = calloc(json_object_size(obj) + 1, sizeof(*keys));

	if (keys == NULL) {
		*n = 0;
		return NULL;
	}
	json_object_foreach(obj, k, v)
	{
		keys[i++] = k;
	}
	qsort(keys, i, sizeof(*keys), cmp_str);
	*n = i;
	return keys;
}

static json_t *
diff_lines(json_t *old, json_t *fresh)
{
	json_t *all = json_object(), *out = json_array();
	const char *k;
	json_t *v;
	size_t n;
	char line[2048];

	json_object_foreach(old, k, v)
	{
		json_object_set_new(all, k, json_true());
	}
	json_object_foreach(fresh, k, v)
	{
		json_object_set_new(all, k, json_true());
	}
	const char **keys = sorted_keys(all, &n);
	for (size_t i = 0; i < n; i++) {
		const char *a = json_string_value(json_object_get(old, keys[i]));
		const char *b = json_string_value(json_object_get(fresh, keys[i]));
		if (a != NULL && b != NULL && strcmp(a, b) == 0) {
			continue;
		}
		snprintf(line, sizeof(line), "%s: %s \xe2\x86\x92 %s", keys[i], a ? a : "(none)",
			 b ? b : "(deleted)");
		json_array_append_new(out, json_string(line));
	}
	free(keys);
	json_decref(all);
	return out;
}

/* The keyspace an unqualified `table` reaches with no session keyspace and tablet type
 * tt, as the resolver says; "" when it would fail (error in errbuf). */
static void
reach(const struct rules *r, const char *table, enum vt_tablet_type tt, char *ks, size_t len)
{
	static struct sql_stmt st;     /* large: keep off the stack; single-threaded use */
	static struct route_result res;
	char sql[600], err[64];
	struct vt_target tgt;

	ks[0] = 0;
	if (r == NULL || strchr(table, '`') != NULL) {
		return;
	}
	int n = snprintf(sql, sizeof(sql), "select * from `%s`", table);
	if (n < 0 || (size_t)n >= sizeof(sql)) {
		return;
	}
	sql_classify(sql, (size_t)n, 0, &st);
	vt_target_parse("", 0, tt, &tgt, err, sizeof(err));
	route_resolve(r, &tgt, false, &st, &res);
	if (res.ntables > 0 && res.tables[0].reached_ks != NULL) {
		snprintf(ks, len, "%s", res.tables[0].reached_ks);
	}
}

/* Keyspaces used as a qualifier in the table's rule keys, and whether K.table exists. */
static unsigned
rule_qualifiers(const struct rules *r, const char *table, char quals[2][256], bool bare[2])
{
	struct rule_view v;
	char q[256], t[256];
	unsigned n = 0;

	for (size_t i = 0; rules_table_rule_at(r, i, &v); i++) {
		key_split(v.key, q, sizeof(q), t, sizeof(t));
		if (q[0] == 0 || strcmp(t, table) != 0) {
			continue;
		}
		unsigned j = 0;
		while (j < n && strcmp(quals[j], q) != 0) {
			j++;
		}
		if (j == n) {
			if (n == 2) {
				return 3; /* more than two keyspaces: not a MoveTables pattern */
			}
			snprintf(quals[n], 256, "%s", q);
			bare[n] = false;
			n++;
		}
		if (strchr(v.key, '@') == NULL) {
			bare[j] = true;
		}
	}
	return n;
}

struct wf_state {
	char ks[3][256];     /* where primary / replica / rdonly go */
	char source[256];    /* the keyspace tables move from */
	char target[256];
	const char *step;
	char detail[256];
};

/* Recognises the step from the rules shape (ROUTING_SPEC d) plus the remembered
 * direction.  Fills st->source/target when they can be told. */
static void
wf_recognise(const struct rules *r, const char *table, json_t *mem, struct wf_state *st)
{
	char quals[2][256];
	bool bare[2];
	unsigned nq = rule_qualifiers(r, table, quals, bare);
	const char *ms = json_string_value(json_object_get(mem, "source"));

	st->step = "custom";
	if (nq != 2) {
		return;
	}
	const char *p = st->ks[0];
	int a = strcmp(quals[0], p) == 0 ? 0 : strcmp(quals[1], p) == 0 ? 1 : -1;
	if (a < 0) {
		return;
	}
	const char *other = quals[1 - a];
	bool reads_same = strcmp(st->ks[1], p) == 0 && strcmp(st->ks[2], p) == 0;
	if (bare[0] && bare[1]) {
		/* both K.table keys: writes not switched; p is the source */
		snprintf(st->source, sizeof(st->source), "%.255s", p);
		snprintf(st->target, sizeof(st->target), "%.255s", other);
		st->step = reads_same ? "created" : "reads_switched";
	} else if (!bare[a] && bare[1 - a]) {
		/* other.table -> p, p.table deleted: writes went to p */
		bool back = ms != NULL && strcmp(ms, p) == 0;
		snprintf(st->source, sizeof(st->source), "%.255s", back ? p : other);
		snprintf(st->target, sizeof(st->target), "%.255s", back ? other : p);
		st->step = back ? "reversed" : "switched";
		if (!reads_same) {
			st->step = back ? "reversed_writes" : "switched_writes";
		}
	} else {
		return;
	}
	size_t o = 0;
	for (unsigned i = 1; i < 3; i++) {
		if (strcmp(st->ks[i], p) != 0) {
			o += (size_t)snprintf(st->detail + o, sizeof(st->detail) - o, "%s%s",
					      o ? ", " : "", wf_tt_names[i]);
		}
	}
}

static const char *
step_sentence(const char *step)
{
	static const struct {
		const char *step, *text;
	} s[] = {
		{"created", "MoveTables created: all traffic still goes to the source"},
		{"reads_switched", "reads switched for"},
		{"switched", "writes switched: all traffic goes to the target"},
		{"switched_writes", "writes switched; reads not yet switched for"},
		{"reversed", "ReverseTraffic: all traffic goes back to the source"},
		{"reversed_writes", "writes reversed; reads still on the target for"},
		{"completed", "MoveTables Complete: rules removed, table lives in the target"},
		{"cancelled", "MoveTables Cancel: rules removed, table stays in the source"},
		{"rules_removed", "routing rules removed"},
		{"custom", "routing rules that do not follow the MoveTables pattern"},
	};
	for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++) {
		if (strcmp(s[i].step, step) == 0) {
			return s[i].text;
		}
	}
	return step;
}

/* No rules name the table any more: Complete or Cancel, told by where it is declared. */
static void
wf_removed(const struct rules *r, const char *table, json_t *mem, struct wf_state *st)
{
	const char *ms = json_string_value(json_object_get(mem, "source"));
	const char *mt = json_string_value(json_object_get(mem, "target"));

	st->step = "rules_removed";
	if (ms == NULL || mt == NULL) {
		return;
	}
	snprintf(st->source, sizeof(st->source), "%s", ms);
	snprintf(st->target, sizeof(st->target), "%s", mt);
	int ks = rules_keyspace_find(r, ms, strlen(ms)), kt = rules_keyspace_find(r, mt, strlen(mt));
	size_t n = strlen(table);
	bool in_s = ks >= 0 && rules_table_declared(r, ks, table, n);
	bool in_t = kt >= 0 && rules_table_declared(r, kt, table, n);
	if (in_t && !in_s) {
		st->step = "completed";
	} else if (in_s && !in_t) {
		st->step = "cancelled";
	}
}

static json_t *
wf_table(struct workflow_memory *m, const struct rules *fresh, const char *table,
	 bool named_now, json_t *summary)
{
	struct wf_state st;
	json_t *mem = json_object_get(m->dir, table);
	char line[1024];

	memset(&st, 0, sizeof(st));
	for (unsigned i = 0; i < 3; i++) {
		reach(fresh, table, wf_tts[i], st.ks[i], sizeof(st.ks[i]));
	}
	if (named_now) {
		wf_recognise(fresh, table, mem, &st);
	} else {
		wf_removed(fresh, table, mem, &st);
	}
	if (st.source[0] && st.target[0] && mem == NULL && named_now) {
		json_object_set_new(m->dir, table, json_pack("{s:s,s:s}", "source", st.source,
							     "target", st.target));
	} else if (!named_now) {
		json_object_del(m->dir, table);
	}
	json_t *j = json_pack("{s:s,s:s,s:s,s:s,s:s}", "table", table, "step", st.step, "primary",
			      st.ks[0], "replica", st.ks[1], "rdonly", st.ks[2]);
	if (st.source[0]) {
		json_object_set_new(j, "source", json_string(st.source));
		json_object_set_new(j, "target", json_string(st.target));
	}
	snprintf(line, sizeof(line), "%s: %s%s%s%s%s", table, step_sentence(st.step),
		 st.detail[0] ? " " : "", st.detail, st.source[0] ? " (" : "",
		 st.source[0] ? st.source : "");
	if (st.source[0]) {
		size_t l = strlen(line);
		snprintf(line + l, sizeof(line) - l, " \xe2\x86\x92 %s)", st.target);
	}
	json_array_append_new(summary, json_string(line));
	return j;
}

void
workflow_describe_change(struct workflow_memory *m, const struct rules *old,
			 const struct rules *fresh, json_t *out)
{
	json_t *t_old = json_object(), *t_new = json_object(), *all = json_object();
	json_t *m_old = rules_map(old, t_old), *m_new = rules_map(fresh, t_new);
	json_t *moved = json_array(), *wfs = json_array(), *summary = json_array();
	size_t n;
	char a[256], b[256], line[1024];

	json_object_set_new(out, "changes", diff_lines(m_old, m_new));
	json_object_update(all, t_old);
	json_object_update(all, t_new);
	const char **tables = sorted_keys(all, &n);
	for (size_t i = 0; i < n; i++) {
		for (unsigned j = 0; j < 3; j++) {
			reach(old, tables[i], wf_tts[j], a, sizeof(a));
			reach(fresh, tables[i], wf_tts[j], b, sizeof(b));
			if (old != NULL && strcmp(a, b) != 0) {
				snprintf(line, sizeof(line), "%s@%s: %s \xe2\x86\x92 %s", tables[i],
					 wf_tt_names[j], a[0] ? a : "(error)", b[0] ? b : "(error)");
				json_array_append_new(moved, json_string(line));
			}
		}
		bool now = json_object_get(t_new, tables[i]) != NULL;
		json_array_append_new(wfs, wf_table(m, fresh, tables[i], now, summary));
	}
	free(tables);
	json_object_set_new(out, "moved", moved);
	json_object_set_new(out, "workflows", wfs);
	json_object_set_new(out, "summary", summary);
	json_decref(all);
	json_decref(t_old);
	json_decref(t_new);
	json_decref(m_old);
	json_decref(m_new);
}

const char *
workflow_step(const struct rules *r, const char *table)
{
	struct wf_state st;
	json_t *nothing = json_object();

	memset(&st, 0, sizeof(st));
	for (unsigned i = 0; i < 3; i++) {
		reach(r, table, wf_tts[i], st.ks[i], sizeof(st.ks[i]));
	}
	char quals[2][256];
	bool bare[2];
	if (rule_qualifiers(r, table, quals, bare) == 0) {
		json_decref(nothing);
		return "none";
	}
	wf_recognise(r, table, nothing, &st);
	json_decref(nothing);
	return st.step;
}
