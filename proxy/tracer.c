/* proxy/tracer.c: per statement, classify -> resolve -> guard at the command, keep a
 * partial JSON record with the command's context, complete it with the result and write
 * it.  The classifier and resolver work in scratch space owned by the tracer, so the
 * only allocations per statement are the record itself.  What is kept so that a
 * statement seen before is not analysed again lives in tracer_cache.c; the structures
 * both share are in tracer_int.h. */
#include "proxy/tracer_int.h"

#include <stddef.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include "proxy/json_util.h"
#include "proxy/metrics.h"
#include "proxy/slot_index.h"
#include "proxy/trace_sink.h"
#include "router/classify.h"
#include "router/hash.h"
#include "router/resolve.h"
#include "router/rules.h"
#include "router/sql_digest.h"
#include "router/sql_lex.h"
#include "router/workflow.h"

static void jfrag_unref(struct jfrag *f);


/* ---- setup ------------------------------------------------------------------------- */

static void
tracer_register_metrics(struct tracer *t)
{
	static const char *const stmt_l[] = {"table", "tablet_type", "class", "keyspace"};
	static const char *const named_l[] = {"table", "named_keyspace", "reached_keyspace",
					      "digest", "client"};
	static const char *const guard_l[] = {"verdict", "class"};
	static const char *const err_l[] = {"class"};

	if (t->metrics == NULL) {
		return;
	}
	t->m_stmts = metrics_family(t->metrics, "routetrace_statements_total",
				    "Statements per table reference, by the tablet type used, the "
				    "statement class and the keyspace the table reaches",
				    METRIC_COUNTER, 4, stmt_l);
	t->m_named_other = metrics_family(
		t->metrics, "routetrace_named_other_keyspace_total",
		"Statements naming a keyspace (qualifier or USE) that routing rules send elsewhere: "
		"these break when the rules are removed at MoveTables Complete",
		METRIC_COUNTER, 5, named_l);
	t->m_guard = metrics_family(t->metrics, "routetrace_guard_decisions_total",
				    "DDL guard decisions that were not 'allow'", METRIC_COUNTER, 2,
				    guard_l);
	t->m_route_err = metrics_family(t->metrics, "routetrace_route_errors_total",
					"Statements vtgate would refuse to plan under the mirrored rules",
					METRIC_COUNTER, 1, err_l);
}

struct tracer *
tracer_new(const struct tracer_opts *opts, struct trace_sink *sink, struct metrics *metrics)
{
	struct tracer *t = calloc(1, sizeof(*t));

	if (t == NULL) {
		return NULL;
	}
	t->opts = *opts;
	t->sink = sink;
	t->metrics = metrics;
	t->wf = workflow_memory_new();
	if (t->wf == NULL) {
		free(t);
		return NULL;
	}
	tracer_register_metrics(t);
	return t;
}

void
tracer_free(struct tracer *t)
{
	if (t == NULL) {
		return;
	}
	rules_unref(t->rules);
	guard_policy_free(t->guard);
	workflow_memory_free(t->wf);
	while (t->spare_cmds != NULL) {
		struct tcmd *next = t->spare_cmds->next_spare;
		free(t->spare_cmds);
		t->spare_cmds = next;
	}
	for (size_t i = 0; i < sizeof(t->jconst) / sizeof(t->jconst[0]); i++) {
		json_decref(t->jconst[i].j);
	}
	tracer_caches_free(t);
	for (size_t i = 0; t->frags != NULL && i < TRACER_FRAG_SLOTS; i++) {
		jfrag_unref(t->frags[i].frag);
	}
	free(t->frags);
	slot_index_free(t->frag_ix);
	for (size_t i = 0; i < sizeof(t->outcome) / sizeof(t->outcome[0][0][0]); i++) {
		jfrag_unref((&t->outcome[0][0][0])[i]);
	}
	free(t->scratch);
	jbuf_free(&t->out);
	free(t);
}

void
tracer_set_opts(struct tracer *t, const struct tracer_opts *opts)
{
	t->opts = *opts;
	memset(t->tgts, 0, sizeof(t->tgts)); /* the default tablet type may have changed */
}

void
tracer_set_guard(struct tracer *t, struct guard_policy *p)
{
	guard_policy_free(t->guard);
	t->guard = p;
}

enum guard_mode
tracer_guard_mode(const struct tracer *t)
{
	return t->guard ? guard_policy_mode(t->guard) : GUARD_OFF;
}

struct rules *
tracer_rules(const struct tracer *t)
{
	return t->rules;
}


void
tracer_get_counts(const struct tracer *t, struct tracer_counts *out)
{
	out->statements = __atomic_load_n(&t->counts.statements, __ATOMIC_RELAXED);
	out->redirected = __atomic_load_n(&t->counts.redirected, __ATOMIC_RELAXED);
	out->blocked = __atomic_load_n(&t->counts.blocked, __ATOMIC_RELAXED);
	out->would_block = __atomic_load_n(&t->counts.would_block, __ATOMIC_RELAXED);
	out->route_errors = __atomic_load_n(&t->counts.route_errors, __ATOMIC_RELAXED);
	out->records = __atomic_load_n(&t->counts.records, __ATOMIC_RELAXED);
	out->records_dropped = __atomic_load_n(&t->counts.records_dropped, __ATOMIC_RELAXED);
	out->analysis_hits = __atomic_load_n(&t->counts.analysis_hits, __ATOMIC_RELAXED);
	out->analysis_misses = __atomic_load_n(&t->counts.analysis_misses, __ATOMIC_RELAXED);
}

/* ---- writing records --------------------------------------------------------------- */

/* Records are built from many small values; most of them repeat from one record to the
 * next.  Those are made once and shared (jansson values are reference counted), and
 * our own keys skip jansson's UTF-8 check: the record costs fewer allocations and
 * scans, and its text is unchanged. */
static inline void
jset(json_t *obj, const char *key, json_t *value)
{
	json_object_set_new_nocheck(obj, key, value);
}

/* A new reference to the JSON string of `name`, one of our static ASCII names (class,
 * tablet type, role, verdict, command, source): cached by address. */
static json_t *
jconst(struct tracer *t, const char *name)
{
	const size_t n = sizeof(t->jconst) / sizeof(t->jconst[0]);
	size_t i = ((uintptr_t)name >> 3) % n;

	for (size_t k = 0; k < n; k++, i = (i + 1) % n) {
		if (t->jconst[i].name == name) {
			return json_incref(t->jconst[i].j);
		}
		if (t->jconst[i].name == NULL) {
			t->jconst[i].j = json_string_nocheck(name);
			t->jconst[i].name = t->jconst[i].j ? name : NULL;
			return json_incref(t->jconst[i].j);
		}
	}
	return json_string_nocheck(name); /* table full: not cached */
}

/* The members of obj as text (obj is released); NULL if it has none or on failure. */
static struct jfrag *
jfrag_of(json_t *obj)
{
	size_t n = obj ? json_dumpb(obj, NULL, 0, JSON_COMPACT) : 0;
	struct jfrag *f = n > 2 ? malloc(sizeof(*f) + n) : NULL;

	if (f != NULL && json_dumpb(obj, f->text, n, JSON_COMPACT) == n) {
		f->refs = 1;
		f->len = n - 2;
		memmove(f->text, f->text + 1, f->len);
	} else {
		free(f);
		f = NULL;
	}
	json_decref(obj);
	return f;
}

static struct jfrag *
jfrag_ref(struct jfrag *f)
{
	if (f != NULL) {
		f->refs++;
	}
	return f;
}

static void
jfrag_unref(struct jfrag *f)
{
	if (f != NULL && --f->refs == 0) {
		free(f);
	}
}

static const char hexdig[] = "0123456789abcdef";

static void
hex64(uint64_t v, char out[17])
{
	for (int i = 15; i >= 0; i--, v >>= 4) {
		out[i] = hexdig[v & 15];
	}
	out[16] = 0;
}

/* RFC 3339 with microseconds.  The date and time part is formatted once per second
 * (per thread: each loop lane has its tracer). */
static void
ts_rfc3339(uint64_t ts_us, char *buf, size_t len)
{
	static __thread time_t cached_sec = (time_t)-1;
	static __thread char cached[32];
	time_t sec = (time_t)(ts_us / 1000000);

	if (sec != cached_sec) {
		struct tm tm;
		gmtime_r(&sec, &tm);
		strftime(cached, sizeof(cached), "%Y-%m-%dT%H:%M:%S", &tm);
		cached_sec = sec;
	}
	size_t n = strlen(cached);
	unsigned frac = (unsigned)(ts_us % 1000000);

	if (len < n + 9) {
		snprintf(buf, len, "%s", cached);
		return;
	}
	memcpy(buf, cached, n);
	buf[n] = '.';
	for (int i = 6; i >= 1; i--, frac /= 10) {
		buf[n + (size_t)i] = (char)('0' + frac % 10);
	}
	buf[n + 7] = 'Z';
	buf[n + 8] = 0;
}

/* Ends the line in t->out and hands it to the sink (or counts it dropped). */
static void
tracer_write_out(struct tracer *t)
{
	if (t->out.failed) {
		count_inc(&t->counts.records_dropped);
		return;
	}
	count_inc(&t->counts.records);
	if (!trace_sink_write(t->sink, t->out.p, t->out.len)) {
		count_inc(&t->counts.records_dropped);
	}
}

/* Appends the fragments' members (NULL ones skipped), each after a comma. */
static void
out_frags(struct jbuf *o, const struct jfrag *const *parts, int nparts)
{
	for (int i = 0; i < nparts; i++) {
		if (parts[i] != NULL) {
			jbuf_put(o, ",", 1);
			jbuf_put(o, parts[i]->text, parts[i]->len);
		}
	}
}

/* Writes one line: the members of rec (an event: it has some), then those of the
 * fragments.  The text goes through a buffer kept across records: no allocation per line
 * once it has grown to the longest record. */
static void
tracer_emit_parts(struct tracer *t, json_t *rec, const struct jfrag *const *parts, int nparts)
{
	struct jbuf *o = &t->out;

	if (t->sink == NULL) {
		return;
	}
	o->len = 0;
	o->failed = false;
	jbuf_json(o, rec);
	if (!o->failed && o->len > 2) {
		o->len--; /* the closing brace: the fragments go before it */
		out_frags(o, parts, nparts);
		jbuf_put(o, "}", 1);
	}
	tracer_write_out(t);
}

static void
tracer_emit(struct tracer *t, json_t *rec)
{
	tracer_emit_parts(t, rec, NULL, 0);
}

static void
tracer_emit_event(struct tracer *t, const char *event, uint64_t ts_us, json_t *fields)
{
	char ts[40];

	ts_rfc3339(ts_us, ts, sizeof(ts));
	json_t *rec = json_pack("{s:s,s:s,s:s}", "ts", ts, "event", event, "source", t->opts.source);
	if (rec != NULL && fields != NULL) {
		json_object_update(rec, fields);
	}
	if (rec != NULL) {
		tracer_emit(t, rec);
	}
	json_decref(rec);
	json_decref(fields);
}

/* ---- rules ------------------------------------------------------------------------- */

void
tracer_adopt_rules(struct tracer *t, struct rules *r)
{
	rules_unref(t->rules);
	t->rules = r;
	t->rules_epoch++;
}

bool
tracer_set_rules(struct tracer *t, struct rules *r, uint64_t ts_us, const char *origin)
{
	if (t->rules != NULL && rules_hash(t->rules) == rules_hash(r)) {
		rules_unref(r);
		return false;
	}
	json_t *f = json_pack("{s:I,s:I,s:s,s:s,s:I}", "generation", (json_int_t)rules_generation(r),
			      "previous_generation",
			      (json_int_t)(t->rules ? rules_generation(t->rules) : 0), "origin",
			      origin ? origin : "", "format", rules_format_name(rules_format(r)),
			      "rules", (json_int_t)rules_count(r));
	if (f != NULL) {
		char hash[20];
		snprintf(hash, sizeof(hash), "%016" PRIx64, rules_hash(r));
		json_object_set_new(f, "hash", json_string(hash));
		workflow_describe_change(t->wf, t->rules, r, f);
	}
	tracer_emit_event(t, "rules_changed", ts_us, f);
	rules_unref(t->rules);
	t->rules = r;
	t->rules_epoch++;
	return true;
}

void
tracer_mirror_state(struct tracer *t, bool stale, uint64_t since_us, const char *error,
		    uint64_t ts_us)
{
	char since[40];

	if (stale == t->mirror_stale) {
		return;
	}
	t->mirror_stale = stale;
	ts_rfc3339(since_us, since, sizeof(since));
	json_t *f = json_pack("{s:s,s:s}", "since", since, "error", error ? error : "");
	tracer_emit_event(t, stale ? "mirror_stale" : "mirror_recovered", ts_us, f);
}

/* ---- connections ------------------------------------------------------------------- */

struct tracer_conn *
tracer_conn_new(struct tracer *t, uint64_t id, const char *client)
{
	struct tracer_conn *c = calloc(1, sizeof(*c));

	if (c == NULL) {
		return NULL;
	}
	c->t = t;
	c->id = id;
	snprintf(c->client, sizeof(c->client), "%s", client ? client : "");
	snprintf(c->client_host, sizeof(c->client_host), "%s", c->client);
	char *colon = strrchr(c->client_host, ':');
	if (colon != NULL && strchr(c->client_host, '.') != NULL) {
		*colon = 0; /* "10.0.0.5:51234" -> "10.0.0.5" (IPv6 "[::1]:5" keeps its brackets) */
	} else if (c->client_host[0] == '[' && colon != NULL && colon[-1] == ']') {
		*colon = 0;
	}
	return c;
}

static void
conn_clear_prepares(struct tracer_conn *c)
{
	while (c->preps != NULL) {
		struct sql_prepare *p = c->preps;
		c->preps = p->next;
		free(p->name);
		free(p->sql);
		free(p);
	}
	c->npreps = 0;
}

void
tracer_conn_free(struct tracer_conn *c)
{
	if (c == NULL) {
		return;
	}
	conn_clear_prepares(c);
	jfrag_unref(c->frag);
	free(c->frag_user);
	free(c->frag_target);
	free(c);
}

static uint64_t
fnv_mix(uint64_t h, uint64_t v)
{
	return (h ^ v) * 0x100000001b3ull;
}

/* The session target in force: its text parsed once while it stays in the cache (the
 * parse depends on the text and the default tablet type only).  A text too long for a
 * slot is parsed every time into the last slot, which is then not kept.  Every parse
 * gives the slot a new epoch. */
static const struct tgt_slot *
conn_target(struct tracer_conn *c, const char *raw)
{
	struct tracer *t = c->t;
	size_t n = strlen(raw);
	uint64_t h = hash_bytes(0, raw, n);
	char err[128];

	bool keep = n < VT_NAME_MAX;
	struct tgt_slot *sl = &t->tgts[keep ? h % TRACER_TARGET_SLOTS : TRACER_TARGET_SLOTS - 1];
	if (keep && sl->used && strcmp(sl->raw, raw) == 0) {
		return sl;
	}
	if (!vt_target_parse(raw, n, t->opts.default_tablet_type, &sl->tgt, err, sizeof(err))) {
		vt_target_parse("", 0, t->opts.default_tablet_type, &sl->tgt, err, sizeof(err));
	}
	sl->used = keep;
	sl->epoch = ++t->tgt_epochs;
	if (keep) {
		memcpy(sl->raw, raw, n + 1);
	}
	return sl;
}

/* ---- SQL-level PREPARE / EXECUTE --------------------------------------------------- */

static struct sql_prepare *
conn_find_prepare(struct tracer_conn *c, const char *name)
{
	for (struct sql_prepare *p = c->preps; p != NULL; p = p->next) {
		if (strcasecmp(p->name, name) == 0) {
			return p;
		}
	}
	return NULL;
}

/* Remembers PREPARE name FROM '<text>' (the text as the classifier unescaped it: the
 * inner statement is not available as text, so we keep the statement's own SQL and
 * re-derive the inner text from the string literal). */
static void
conn_note_prepare(struct tracer_conn *c, const char *name, const char *inner, size_t n)
{
	struct sql_prepare *p = conn_find_prepare(c, name);

	if (p == NULL) {
		if (c->npreps >= TRACER_MAX_SQL_PREPARES) {
			return;
		}
		p = calloc(1, sizeof(*p));
		if (p == NULL || (p->name = strdup(name)) == NULL) {
			free(p);
			return;
		}
		p->next = c->preps;
		c->preps = p;
		c->npreps++;
	}
	free(p->sql);
	p->sql = strndup(inner, n);
	p->len = p->sql ? n : 0;
}

static void
conn_forget_prepare(struct tracer_conn *c, const char *name)
{
	for (struct sql_prepare **pp = &c->preps; *pp != NULL; pp = &(*pp)->next) {
		if (strcasecmp((*pp)->name, name) == 0) {
			struct sql_prepare *p = *pp;
			*pp = p->next;
			free(p->name);
			free(p->sql);
			free(p);
			c->npreps--;
			return;
		}
	}
}

/* The string literal of PREPARE s FROM '<text>', unescaped into buf; false if none. */
static bool
prepare_inner_text(const char *sql, size_t n, char *buf, size_t len, size_t *out_n)
{
	struct sql_lex lx;
	struct sql_tok tok;
	bool from = false;

	sql_lex_init(&lx, sql, n, 0);
	while (sql_lex_next_code(&lx, &tok)) {
		if (from && tok.type == SQL_TK_STRING) {
			size_t v = sql_tok_value(sql, &tok, 0, buf, len);
			*out_n = v < len ? v : len - 1;
			return true;
		}
		from = tok.type == SQL_TK_IDENT && tok.kw == SQL_KW_FROM;
	}
	return false;
}

/* ---- analysing one statement ----------------------------------------------------- */


/* An unqualified name in a session whose target capture never saw: where it goes is
 * unknown, and nothing is guessed. */
static bool
tref_target_unknown(const struct stmt_ctx *x, const struct sql_stmt *st,
		    const struct route_table *rt)
{
	return !x->target_known && st->tables[rt->tref].qual.len == 0;
}

static json_t *
table_json(struct tracer *t, const struct stmt_ctx *x, const struct route_table *rt,
	   const struct sql_stmt *st)
{
	char named[2 * VT_NAME_MAX], reached[2 * VT_NAME_MAX];
	bool unknown = tref_target_unknown(x, st, rt);

	route_named_str(rt, named, sizeof(named));
	json_t *j = json_object();
	jset(j, "named", json_string_lossy(named, strlen(named)));
	if (unknown || rt->reached_ks == NULL) {
		jset(j, "reached", json_null());
	} else {
		route_reached_str(rt, reached, sizeof(reached));
		jset(j, "reached", json_string_lossy(reached, strlen(reached)));
	}
	jset(j, "rule", rt->rule ? json_string_lossy(rt->rule, strlen(rt->rule)) : json_null());
	jset(j, "role", jconst(t, sql_role_name((enum sql_role)rt->role)));
	jset(j, "redirected", json_boolean(!unknown && (rt->flags & ROUTE_T_REDIRECTED)));
	if (unknown) {
		jset(j, "unknown_target", json_true());
	}
	if (rt->error != NULL) {
		jset(j, "error", json_string_lossy(rt->error, strlen(rt->error)));
	}
	return j;
}

/* Counts one sample into f's series for labels, through *series when the statement
 * has a memo (NULL otherwise): looked up the first time, then used as is. */
static void
count_series(struct metric_family *f, int *series, const char *const *labels)
{
	if (series != NULL && *series == SERIES_UNKNOWN) {
		*series = metric_series(f, labels);
	}
	if (series != NULL && *series >= 0) {
		metric_add_at(f, *series, 1);
	} else {
		metric_add(f, labels, 1); /* no memo, or the family is at its bound */
	}
}

/* The memo's m_named_other series carry a client host as a label: they are kept for the
 * first host that runs the statement; other hosts look theirs up each time (NULL), so
 * hosts taking turns on one shape cost no allocation per statement. */
static int *
memo_named_series(struct route_memo *m, const struct tracer_conn *c, unsigned i)
{
	if (m == NULL) {
		return NULL;
	}
	if (m->named_client == NULL && (m->named_client = strdup(c->client_host)) == NULL) {
		return NULL;
	}
	return strcmp(m->named_client, c->client_host) == 0 ? &m->named_series[i] : NULL;
}

/* Routing counters for one analysed statement, straight from its resolution (no JSON:
 * they are kept whether or not a trace is written); m is its memo, or NULL. */
static void
stmt_count_route(struct tracer_conn *c, const struct stmt_ctx *x, const struct vt_target *tgt,
		 struct route_memo *m)
{
	struct tracer *t = c->t;
	const char *cls = sql_class_name((enum sql_class)t->st.cls);
	const char *tt = vt_tablet_type_name(tgt->tablet_type);
	char hash[20] = "";
	bool redirected = false;

	count_inc(&t->counts.statements);
	if (t->rules == NULL || t->res.ntables == 0) {
		const char *l[] = {"", tt, cls, ""};
		count_series(t->m_stmts, m ? &m->stmt_series[0] : NULL, l);
		return;
	}
	for (unsigned i = 0; i < t->res.ntables; i++) {
		const struct route_table *rt = &t->res.tables[i];
		bool unknown = tref_target_unknown(x, &t->st, rt);
		const char *table = rt->reached_table && !unknown ? rt->reached_table : rt->table;
		const char *ks = rt->reached_ks && !unknown ? rt->reached_ks : "";
		const char *l[] = {table, tt, cls, ks};
		count_series(t->m_stmts, m ? &m->stmt_series[i] : NULL, l);
		if (unknown || !(rt->flags & ROUTE_T_REDIRECTED)) {
			continue;
		}
		redirected = true;
		if (rt->named_ks != NULL && rt->named_ks[0] != 0) {
			int *ns = memo_named_series(m, c, i);
			if (hash[0] == 0 && (ns == NULL || *ns < 0)) {
				hex64(t->digest_hash, hash);
			}
			const char *nl[] = {table, rt->named_ks, ks, hash, c->client_host};
			count_series(t->m_named_other, ns, nl);
		}
	}
	if (redirected) {
		count_inc(&t->counts.redirected);
	}
}

/* The statement text for the record: verbatim unless a literal must be hidden (then
 * redacted into the tracer's scratch buffer, which only grows). */
static void
stmt_sql_put(struct tracer *t, struct jbuf *b, const char *sql, size_t n, unsigned lex_flags)
{
	if (!t->opts.redact_literals && !sql_has_secret(sql, n, lex_flags)) {
		jbuf_string(b, sql, n);
		return;
	}
	if (t->scratch_cap < n + 1) {
		char *p = realloc(t->scratch, n + 1);
		if (p == NULL) {
			jbuf_puts(b, "\"(out of memory)\"");
			return;
		}
		t->scratch = p;
		t->scratch_cap = n + 1;
	}
	size_t rn = sql_redact(sql, n, lex_flags, t->opts.redact_literals, t->scratch, n + 1);
	jbuf_string(b, t->scratch, rn);
}

/* ---- record fragments ----------------------------------------------------------- */

/* A record is written as three parts: the members proper to the run (time, SQL text,
 * verdict, result), those of its session, and those of its statement shape.  The last
 * two repeat from one statement to the next and are serialised once: jansson writes
 * every byte, most of them only once per session or per shape. */

static bool
same_str(const char *kept, const char *now)
{
	return kept == NULL ? now == NULL : now != NULL && strcmp(kept, now) == 0;
}

/* The session's members, made again when its user or target changed. */
static struct jfrag *
conn_frag(struct tracer_conn *c, const struct stmt_ctx *x)
{
	const char *target = x->target_known ? x->target_raw : NULL;

	if (c->frag != NULL && same_str(c->frag_user, x->user) && same_str(c->frag_target, target)) {
		return jfrag_ref(c->frag);
	}
	json_t *o = json_object();
	jset(o, "session", json_integer((json_int_t)c->id));
	jset(o, "client", json_string_lossy(c->client, strlen(c->client)));
	jset(o, "user", json_string_lossy(x->user, strlen(x->user)));
	jset(o, "target", target ? json_string_lossy(target, strlen(target)) : json_string("unknown"));
	jset(o, "source", jconst(c->t, c->t->opts.source));
	struct jfrag *f = jfrag_of(o);
	char *u = strdup(x->user), *tg = target ? strdup(target) : NULL;
	if (f == NULL || u == NULL || (target != NULL && tg == NULL)) {
		free(u);
		free(tg);
		return f; /* used once, not kept */
	}
	jfrag_unref(c->frag);
	free(c->frag_user);
	free(c->frag_target);
	c->frag = f;
	c->frag_user = u;
	c->frag_target = tg;
	return jfrag_ref(f);
}

/* The members that follow from the statement's shape (its digest: the same text but
 * for literals, spacing and comments) in the session state it ran in: class, tables
 * and where each goes.  Routing never depends on a literal, so equal shapes in equal
 * states get equal members. */
static json_t *
stmt_shape_json(struct tracer *t, const struct stmt_ctx *x, const struct vt_target *tgt,
		const char *digest, uint64_t hash)
{
	char hex[17];
	json_t *o = json_object(), *tables = json_array();

	for (unsigned i = 0; t->rules != NULL && i < t->res.ntables; i++) {
		json_array_append_new(tables, table_json(t, x, &t->res.tables[i], &t->st));
	}
	hex64(hash, hex);
	jset(o, "tablet_type", jconst(t, vt_tablet_type_name(tgt->tablet_type)));
	jset(o, "in_transaction", json_boolean(x->in_tx));
	jset(o, "command", jconst(t, x->command));
	jset(o, "class", jconst(t, sql_class_name((enum sql_class)t->st.cls)));
	if (t->st.cls == SQL_CLASS_UNPARSED && t->st.reason != NULL) {
		jset(o, "unparsed", json_string(t->st.reason));
	}
	jset(o, "digest", json_string_lossy(digest, strlen(digest)));
	jset(o, "digest_hash", json_stringn_nocheck(hex, 16));
	jset(o, "tables", tables);
	jset(o, "rules_generation", json_integer(t->rules ? (json_int_t)rules_generation(t->rules) : 0));
	if (t->rules != NULL && t->res.error != NULL) {
		jset(o, "route_error", json_string_lossy(t->res.error, strlen(t->res.error)));
	}
	return o;
}

/* The shape members of the statement just analysed (t->st, t->res), from the cache when
 * this shape was seen in this state before. */
static struct jfrag *
stmt_frag(struct tracer *t, const struct stmt_ctx *x, const struct vt_target *tgt,
	  const char *digest, uint64_t hash)
{
	const char *target = x->target_known ? x->target_raw : "";
	uint64_t gen = t->rules ? rules_generation(t->rules) : 0;
	uint64_t key = fnv_mix(fnv_mix(fnv_mix(hash ^ t->digest_folded, gen), (uintptr_t)x->command),
			       t->st.cls | (unsigned)tgt->tablet_type << 8 | (unsigned)x->in_tx << 16 |
				       (unsigned)x->target_known << 17);
	bool cacheable = t->st.cls != SQL_CLASS_UNPARSED && strlen(digest) < SQL_DIGEST_MAX - 1;

	key = hash_bytes(key, target, strlen(target));
	cacheable = cacheable && strlen(target) < sizeof(t->frags->target) &&
		    tracer_slots_ready(&t->frags, &t->frag_ix, TRACER_FRAG_SLOTS, sizeof(*t->frags));
	for (int i = -1; cacheable && (i = slot_index_next(t->frag_ix, key, i)) >= 0;) {
		struct stmt_slot *sl = &t->frags[i];
		if (sl->digest_hash == hash &&
		    sl->digest_folded == t->digest_folded && sl->rules_gen == gen &&
		    sl->command == x->command && sl->cls == t->st.cls &&
		    sl->tablet_type == tgt->tablet_type && sl->in_tx == x->in_tx &&
		    sl->target_known == x->target_known && strcmp(sl->target, target) == 0) {
			slot_index_touch(t->frag_ix, i);
			return jfrag_ref(sl->frag);
		}
	}
	struct jfrag *f = jfrag_of(stmt_shape_json(t, x, tgt, digest, hash));
	if (cacheable && f != NULL) {
		struct stmt_slot *sl = &t->frags[slot_index_claim(t->frag_ix, key)];
		jfrag_unref(sl->frag);
		*sl = (struct stmt_slot){.digest_hash = hash,
					 .digest_folded = t->digest_folded, .rules_gen = gen,
					 .command = x->command, .cls = t->st.cls,
					 .tablet_type = (uint8_t)tgt->tablet_type, .in_tx = x->in_tx,
					 .target_known = x->target_known, .frag = jfrag_ref(f)};
		memcpy(sl->target, target, strlen(target) + 1);
	}
	return f;
}

/* The record of the statement just analysed, in three parts (see above); the run's
 * part is completed by stmt_write.  `shown` (if not NULL) is the text the client sent
 * when sql is what it runs (EXECUTE s: sql is the prepared text). */
static void
stmt_record(struct tracer_conn *c, const struct stmt_ctx *x, const struct vt_target *tgt,
	    const char *sql, size_t n, bool truncated, const struct guard_decision *gd,
	    const struct stmt_text *shown, struct tstmt *s)
{
	struct tracer *t = c->t;
	uint64_t hash = t->digest_hash;
	struct jbuf *h = &s->head;

	jbuf_puts(h, "\"sql\":");
	if (shown != NULL) {
		stmt_sql_put(t, h, shown->sql, shown->n, x->lex_flags);
		jbuf_puts(h, ",\"prepared_sql\":");
	}
	stmt_sql_put(t, h, sql, n, x->lex_flags);
	if (truncated) {
		jbuf_puts(h, ",\"sql_truncated\":true");
	}
	if (gd->verdict != GUARD_ALLOW) {
		json_t *g = json_pack("{s:s,s:i}", "reason", gd->reason, "rule", (int)gd->reason_code);
		jbuf_puts(h, ",\"guard\":");
		jbuf_json(h, g);
		json_decref(g);
	}
	s->traced = true;
	s->conn_f = conn_frag(c, x);
	s->stmt_f = stmt_frag(t, x, tgt, t->digest, hash);
}


/* Resolves and guards sql[0..n), already classified into t->st, counts it, and
 * starts its record in ts (none when no trace is written). */
static void
stmt_analyse(struct tracer_conn *c, const struct stmt_ctx *x, const char *sql, size_t n,
	     bool truncated, const struct stmt_text *shown, struct tstmt *ts,
	     struct guard_decision *gd)
{
	struct tracer *t = c->t;
	const struct tgt_slot *sl = conn_target(c, x->target_known ? x->target_raw : "");
	const struct vt_target *tgt = &sl->tgt;
	struct route_memo *m = NULL;

	ts->cls = t->st.cls;
	gd->verdict = GUARD_ALLOW; /* the rest is read only when the guard decided */
	gd->reason_code = 0;
	gd->reason[0] = 0;
	if (t->rules != NULL) {
		m = tracer_memo_restore(t, x, sl->epoch);
		if (m == NULL) {
			route_resolve(t->rules, tgt, x->in_tx, &t->st, &t->res);
			m = tracer_memo_keep(t, x, sl->epoch);
		}
		if (t->res.error != NULL) {
			const char *cl[] = {sql_class_name((enum sql_class)t->st.cls)};
			count_inc(&t->counts.route_errors);
			metric_add(t->m_route_err, cl, 1);
		}
	}
	if (t->guard != NULL) {
		/* Without a snapshot yet, destructive DDL is denied: fail closed. */
		guard_check_lex(t->guard, t->rules, tgt, sql, n, x->lex_flags, &t->st,
				t->rules ? &t->res : NULL, gd);
	}
	ts->objected = gd->verdict != GUARD_ALLOW;
	stmt_count_route(c, x, tgt, m);
	if (t->sink != NULL) {
		stmt_record(c, x, tgt, sql, n, truncated, gd, shown, ts);
	}
}

static const char *const verdict_names[] = {"forwarded", "would_block", "blocked"};

static int
stmt_verdict(const struct tstmt *s)
{
	return s->blocked ? 2 : s->objected ? 1 : 0;
}

/* Guard counters, once the command's verdict is final (a denied statement blocks the
 * whole packet). */
static void
cmd_count_verdicts(struct tracer *t, const struct tcmd *cmd)
{
	for (unsigned i = 0; i < cmd->n; i++) {
		const struct tstmt *s = &cmd->s[i];
		if (stmt_verdict(s) == 0) {
			continue; /* forwarded: not a guard decision */
		}
		const char *gl[] = {verdict_names[stmt_verdict(s)], sql_class_name((enum sql_class)s->cls)};
		metric_add(t->m_guard, gl, 1);
		if (s->blocked) {
			count_inc(&t->counts.blocked);
		} else {
			count_inc(&t->counts.would_block);
		}
	}
}

/* ---- finishing statements ------------------------------------------------------- */

/* The verdict and result members of the usual outcome, an OK with a small row or
 * affected count, serialised once each; NULL for any other. */
static struct jfrag *
outcome_frag(struct tracer *t, int verdict, bool rows, uint64_t count)
{
	if (count >= TRACER_OUTCOME_MAX) {
		return NULL;
	}
	struct jfrag **slot = &t->outcome[verdict][rows][count];
	if (*slot == NULL) {
		json_t *o = json_object(), *r = json_object();
		jset(r, "ok", json_true());
		jset(r, rows ? "rows" : "affected", json_integer((json_int_t)count));
		jset(o, "verdict", jconst(t, verdict_names[verdict]));
		jset(o, "result", r);
		*slot = jfrag_of(o);
	}
	return jfrag_ref(*slot);
}

/* Completes statement i with its outcome, either `result` (owned) or the verdict and
 * result members as text (`outcome`, owned), and writes it. */
static void
stmt_write(struct tcmd *cmd, unsigned i, json_t *result, struct jfrag *outcome, uint64_t ts_us)
{
	struct tracer *t = cmd->t;
	struct tstmt *s = &cmd->s[i];
	struct jbuf *o = &t->out;
	char ts[40];

	if (s->done || !s->traced || t->sink == NULL) {
		s->done = true;
		json_decref(result);
		jfrag_unref(outcome);
		return;
	}
	s->done = true;
	ts_rfc3339(ts_us, ts, sizeof(ts));
	o->len = 0;
	o->failed = s->head.failed;
	jbuf_puts(o, "{\"ts\":\"");
	jbuf_puts(o, ts);
	jbuf_puts(o, "\",");
	jbuf_put(o, s->head.p, s->head.len);
	jbuf_puts(o, ",\"latency_us\":");
	jbuf_uint(o, ts_us >= cmd->start_us ? ts_us - cmd->start_us : 0);
	if (cmd->n > 1) {
		jbuf_puts(o, ",\"statement_index\":");
		jbuf_uint(o, i);
	}
	if (outcome == NULL) {
		json_t *vr = json_object();
		jset(vr, "verdict", jconst(t, verdict_names[stmt_verdict(s)]));
		jset(vr, "result", result);
		jbuf_put(o, ",", 1);
		jbuf_members(o, vr);
		json_decref(vr);
	}
	const struct jfrag *parts[] = {outcome, s->conn_f, s->stmt_f};
	out_frags(o, parts, 3);
	jbuf_put(o, "}", 1);
	tracer_write_out(t);
	jbuf_free(&s->head);
	jfrag_unref(outcome);
}

static void
stmt_finish(struct tcmd *cmd, unsigned i, json_t *result, uint64_t ts_us)
{
	stmt_write(cmd, i, result, NULL, ts_us);
}

static json_t *
result_json(const struct wire_result *r, uint64_t extra_rows)
{
	if (r->is_error) {
		return json_pack("{s:i,s:s,s:o}", "error", (int)r->err_code, "sqlstate", r->sqlstate,
				 "message", json_string_lossy(r->message ? r->message : "",
							      r->message_len));
	}
	if (r->aborted) {
		return json_pack("{s:b,s:s}", "ok", 0, "aborted", "connection closed before the response ended");
	}
	json_t *j = json_object();
	jset(j, "ok", json_true());
	if (r->is_resultset || extra_rows > 0) {
		jset(j, "rows", json_integer((json_int_t)(r->rows + extra_rows)));
	} else {
		jset(j, "affected", json_integer((json_int_t)r->affected));
	}
	return j;
}

/* A result of the response: it belongs to the next statement not finished.  A CALL
 * returns result sets and ends with an OK, so result sets go to the CALL until then. */
static void
cmd_result(struct tcmd *cmd, const struct wire_result *r, uint64_t ts_us)
{
	if (cmd->next >= cmd->n) {
		return;
	}
	struct tstmt *s = &cmd->s[cmd->next];
	if (s->cls == SQL_CLASS_CALL && r->is_resultset && !r->is_error && r->more) {
		s->rows += r->rows;
		return;
	}
	struct jfrag *of = NULL;
	bool rows = r->is_resultset || s->rows > 0;
	if (!s->traced) { /* no trace written: nothing to build */
		s->done = true;
	} else if (!r->is_error && !r->aborted &&
		   (of = outcome_frag(cmd->t, stmt_verdict(s), rows,
				      rows ? r->rows + s->rows : r->affected)) != NULL) {
		stmt_write(cmd, cmd->next, NULL, of, ts_us);
	} else {
		stmt_finish(cmd, cmd->next, result_json(r, s->rows), ts_us);
	}
	cmd->next++;
}

/* The response ended: statements left got no result (an earlier one failed and the
 * server skipped them, or the connection closed). */
static void
cmd_end(struct tcmd *cmd, const struct wire_result *r, uint64_t ts_us)
{
	for (unsigned i = cmd->next; i < cmd->n; i++) {
		json_t *res = r->aborted ? json_pack("{s:b,s:s}", "ok", 0, "aborted",
						     "connection closed before the response ended")
					 : json_pack("{s:b,s:s}", "ok", 0, "skipped",
						     "not run: an earlier statement of the packet failed");
		stmt_finish(cmd, i, res, ts_us);
	}
	cmd->next = cmd->n;
}

static void
cmd_blocked(struct tcmd *cmd, uint64_t ts_us)
{
	for (unsigned i = 0; i < cmd->n; i++) {
		stmt_finish(cmd, i,
			    json_pack("{s:i,s:s,s:s}", "error", 1105, "sqlstate", "HY000", "message",
				      cmd->block_reason),
			    ts_us);
	}
}

void
tracer_cmd_free(void *user)
{
	struct tcmd *cmd = user;

	if (cmd == NULL) {
		return;
	}
	for (unsigned i = 0; i < cmd->n; i++) {
		jbuf_free(&cmd->s[i].head);
		jfrag_unref(cmd->s[i].conn_f);
		jfrag_unref(cmd->s[i].stmt_f);
	}
	/* a command never outlives its lane's tracer: sessions end before tracer_free */
	if (cmd->n == 1 && cmd->t->nspare_cmds < TRACER_SPARE_CMDS) {
		cmd->next_spare = cmd->t->spare_cmds;
		cmd->t->spare_cmds = cmd;
		cmd->t->nspare_cmds++;
		return;
	}
	free(cmd);
}

size_t
tracer_block_message(const void *user, char *buf, size_t len)
{
	const struct tcmd *cmd = user;

	if (cmd == NULL || len == 0) {
		return 0;
	}
	snprintf(buf, len, "%s", cmd->block_reason);
	return strlen(buf);
}

/* ---- commands ------------------------------------------------------------------- */

static struct tcmd *
cmd_new(struct tracer_conn *c, uint8_t com, unsigned n, uint64_t ts_us)
{
	/* malloc, not calloc: one per command, and the block reason (most of the size) only
	 * needs its first byte cleared.  The usual command, one statement, takes one of the
	 * lane's spares instead: one per session with a command in flight is enough. */
	struct tcmd *cmd = n == 1 ? c->t->spare_cmds : NULL;

	if (cmd != NULL) {
		c->t->spare_cmds = cmd->next_spare;
		c->t->nspare_cmds--;
	} else {
		cmd = malloc(sizeof(*cmd) + n * sizeof(cmd->s[0]));
	}
	if (cmd != NULL) {
		memset(cmd, 0, offsetof(struct tcmd, block_reason) + 1);
		memset(cmd->s, 0, n * sizeof(cmd->s[0]));
		cmd->t = c->t;
		cmd->conn = c;
		cmd->cmd = com;
		cmd->n = n;
		cmd->start_us = ts_us;
	}
	return cmd;
}

/* The session state after statement `st` ran (a USE, BEGIN, COMMIT or DDL later in the
 * same packet changes what the following statements are analysed with). */
static void
ctx_after(struct stmt_ctx *x, const struct sql_stmt *st, char *tbuf, size_t tlen)
{
	if (st->cls == SQL_CLASS_USE) {
		snprintf(tbuf, tlen, "%s", sql_stmt_str(st, st->db));
		x->target_raw = tbuf;
		x->target_known = true;
	}
	if (sql_stmt_tx_effect(st) != SQL_TX_NONE) {
		x->in_tx = sql_stmt_tx_effect(st) == SQL_TX_BEGIN;
	}
}

/* SQL-level PREPARE / DEALLOCATE are remembered; EXECUTE is analysed as the text it
 * runs.  Returns the text to analyse (sql itself unless it is a known EXECUTE). */
static const char *
conn_sql_prepares(struct tracer_conn *c, const char *sql, size_t n, size_t *out_n)
{
	const struct sql_stmt *st = &c->t->st;
	const char *name = sql_stmt_str(st, st->object);

	*out_n = n;
	if (st->cls == SQL_CLASS_PREPARE && (st->flags & SQL_STMT_PREPARE_TEXT)) {
		char *inner = malloc(n + 1);
		size_t in;
		if (inner != NULL && prepare_inner_text(sql, n, inner, n + 1, &in)) {
			conn_note_prepare(c, name, inner, in);
		}
		free(inner);
	} else if (st->cls == SQL_CLASS_DEALLOCATE) {
		conn_forget_prepare(c, name);
	} else if (st->cls == SQL_CLASS_EXECUTE) {
		const struct sql_prepare *p = conn_find_prepare(c, name);
		if (p != NULL && p->sql != NULL) {
			*out_n = p->len;
			return p->sql;
		}
	}
	return sql;
}

/* True if the guard's decision on a statement of cmd refuses the command. */
static bool
cmd_denies(struct tracer_conn *c, struct tcmd *cmd, const struct guard_decision *gd)
{
	if (gd->verdict != GUARD_DENY || !c->t->opts.can_block) {
		return false;
	}
	if (cmd->block_reason[0] == 0) {
		snprintf(cmd->block_reason, sizeof(cmd->block_reason), "%s", gd->reason);
	}
	return true;
}

/* Analyses statement i of cmd; returns true if the guard denies it. */
static bool
cmd_add_stmt(struct tracer_conn *c, struct tcmd *cmd, unsigned i, struct stmt_ctx *x,
	     const char *sql, size_t n, bool truncated, char *tbuf, size_t tlen)
{
	struct guard_decision gd;
	struct tstmt *s = &cmd->s[i];

	size_t en;

	tracer_classify(c->t, x, sql, n);
	c->t->ran_other = false;
	const char *exec = conn_sql_prepares(c, sql, n, &en);
	if (exec == sql) {
		stmt_analyse(c, x, sql, n, truncated, NULL, s, &gd);
	} else {
		/* EXECUTE s: the tables, class and guard verdict are those of the prepared
		 * text; the record keeps the EXECUTE's own SQL beside it. */
		const struct stmt_text shown = {sql, n};
		c->t->ran_other = true;
		tracer_classify(c->t, x, exec, en);
		stmt_analyse(c, x, exec, en, false, &shown, s, &gd);
	}
	ctx_after(x, &c->t->st, tbuf, tlen);
	return cmd_denies(c, cmd, &gd);
}

static struct tcmd *
conn_query(struct tracer_conn *c, const struct wire_command *wc, struct stmt_ctx *x,
	   uint64_t ts_us, bool *deny)
{
	char tbuf[VT_NAME_MAX];
	size_t pos = 0, start = 0, len = 0;
	unsigned n = 0;

	/* Counted in one pass: the usual single statement is then not scanned again. */
	if (sql_split_next(wc->text, wc->text_len, &pos, &start, &len)) {
		size_t more = pos, s2, l2;
		n = 1;
		while (sql_split_next(wc->text, wc->text_len, &more, &s2, &l2)) {
			n++;
		}
	}
	struct tcmd *cmd = cmd_new(c, wc->cmd, n ? n : 1, ts_us);
	if (cmd == NULL) {
		return NULL;
	}
	if (n <= 1) {
		*deny = cmd_add_stmt(c, cmd, 0, x, n ? wc->text + start : wc->text ? wc->text : "",
				     n ? len : wc->text_len, wc->text_truncated, tbuf, sizeof(tbuf));
		return cmd;
	}
	pos = 0;
	for (unsigned i = 0; sql_split_next(wc->text, wc->text_len, &pos, &start, &len); i++) {
		bool last = i + 1 == n;
		*deny |= cmd_add_stmt(c, cmd, i, x, wc->text + start, len,
				      last && wc->text_truncated, tbuf, sizeof(tbuf));
	}
	return cmd;
}


static struct tcmd *
conn_execute(struct tracer_conn *c, const struct wire_command *wc, struct stmt_ctx *x,
	     uint64_t ts_us, bool *deny)
{
	struct tracer *t = c->t;
	uint64_t key = tracer_exec_key(wc->text, wc->text_len, x->lex_flags);
	struct exec_slot *e = tracer_exec_find(t, key, wc->text, wc->text_len, x->lex_flags);
	struct guard_decision gd;

	if (e == NULL) {
		struct tcmd *cmd = conn_query(c, wc, x, ts_us, deny);
		size_t pos = 0, start, slen, s2, l2;
		if (cmd != NULL && cmd->n == 1 && !wc->text_truncated && !t->ran_other &&
		    tracer_exec_cacheable(&t->st) &&
		    sql_split_next(wc->text, wc->text_len, &pos, &start, &slen)) {
			if (!sql_split_next(wc->text, wc->text_len, &pos, &s2, &l2)) {
				tracer_exec_keep(t, key, wc->text, wc->text_len, x->lex_flags, start, slen);
			}
		}
		return cmd;
	}
	struct tcmd *cmd = cmd_new(c, wc->cmd, 1, ts_us);
	if (cmd == NULL) {
		return NULL;
	}
	tracer_analysis_restore(t, &e->a);
	stmt_analyse(c, x, e->a.text + e->start, e->slen, false, NULL, &cmd->s[0], &gd);
	*deny = cmd_denies(c, cmd, &gd);
	return cmd;
}

/* COM_INIT_DB is vtgate's `use `<db>``: analysed as that statement. */
static struct tcmd *
conn_init_db(struct tracer_conn *c, const struct wire_command *wc, struct stmt_ctx *x,
	     uint64_t ts_us, bool *deny)
{
	char tbuf[VT_NAME_MAX];
	size_t n = wc->text_len, o = 0;
	char *sql = malloc(2 * n + 8);
	struct tcmd *cmd = cmd_new(c, wc->cmd, 1, ts_us);

	if (sql == NULL || cmd == NULL) {
		free(sql);
		free(cmd);
		return NULL;
	}
	memcpy(sql, "use `", 5);
	o = 5;
	for (size_t i = 0; i < n; i++) {
		if (wc->text[i] == '`') {
			sql[o++] = '`';
		}
		sql[o++] = wc->text[i];
	}
	sql[o++] = '`';
	*deny = cmd_add_stmt(c, cmd, 0, x, sql, o, false, tbuf, sizeof(tbuf));
	free(sql);
	return cmd;
}

static enum wire_verdict
conn_command(struct tracer_conn *c, const struct wire_conv *wc, const struct wire_event *ev)
{
	struct wire_command *w = ev->u.command;
	struct stmt_ctx x = {
		.target_raw = wire_conv_target(wc),
		.target_known = wire_conv_target_known(wc),
		.in_tx = wire_conv_in_transaction(wc),
		.lex_flags = (wire_conv_status(wc) & WIRE_STATUS_NO_BACKSLASH_ESCAPES)
				     ? SQL_LEX_NO_BACKSLASH_ESCAPES : 0,
		.user = wire_conv_user(wc),
	};
	struct tcmd *cmd = NULL;
	bool deny = false;

	switch (w->cmd) {
	case WIRE_COM_QUERY:
		x.command = "query";
		cmd = conn_query(c, w, &x, ev->ts_us, &deny);
		break;
	case WIRE_COM_STMT_PREPARE:
		x.command = "prepare";
		cmd = conn_query(c, w, &x, ev->ts_us, &deny);
		break;
	case WIRE_COM_STMT_EXECUTE:
		if (w->text == NULL) {
			return WIRE_FORWARD; /* statement never seen prepared: nothing to analyse */
		}
		x.command = "execute";
		cmd = conn_execute(c, w, &x, ev->ts_us, &deny);
		break;
	case WIRE_COM_INIT_DB:
		x.command = "init_db";
		cmd = conn_init_db(c, w, &x, ev->ts_us, &deny);
		break;
	case WIRE_COM_RESET_CONNECTION:
	case WIRE_COM_CHANGE_USER:
		conn_clear_prepares(c);
		return WIRE_FORWARD;
	default:
		return WIRE_FORWARD;
	}
	if (cmd == NULL) {
		return WIRE_FORWARD;
	}
	w->user = cmd;
	if (!deny) {
		cmd_count_verdicts(c->t, cmd);
		return WIRE_FORWARD;
	}
	for (unsigned i = 0; i < cmd->n; i++) {
		cmd->s[i].blocked = true;
	}
	cmd_count_verdicts(c->t, cmd);
	if (cmd->n > 1) {
		size_t l = strlen(cmd->block_reason);
		snprintf(cmd->block_reason + l, sizeof(cmd->block_reason) - l,
			 " (nothing of this multi-statement packet was run)");
	}
	return WIRE_BLOCK;
}

static void
conn_target_event(struct tracer_conn *c, const struct wire_event *ev)
{
	json_t *f = json_pack("{s:I,s:s,s:o,s:o}", "session", (json_int_t)c->id, "client", c->client,
			      "from", json_string_lossy(ev->u.target.previous, strlen(ev->u.target.previous)),
			      "to", json_string_lossy(ev->u.target.target, strlen(ev->u.target.target)));
	tracer_emit_event(c->t, "target_changed", ev->ts_us, f);
}

enum wire_verdict
tracer_conn_event(struct tracer_conn *c, const struct wire_conv *wc, const struct wire_event *ev)
{
	switch (ev->type) {
	case WIRE_EV_COMMAND:
		return conn_command(c, wc, ev);
	case WIRE_EV_RESULT:
		if (ev->u.result.user != NULL) {
			cmd_result(ev->u.result.user, &ev->u.result, ev->ts_us);
		}
		break;
	case WIRE_EV_BLOCKED_DUE:
		if (ev->u.blocked.user != NULL) {
			cmd_blocked(ev->u.blocked.user, ev->ts_us);
		}
		break;
	case WIRE_EV_RESPONSE_END:
		if (ev->u.result.user != NULL) {
			cmd_end(ev->u.result.user, &ev->u.result, ev->ts_us);
			tracer_cmd_free(ev->u.result.user);
		}
		break;
	case WIRE_EV_TARGET:
		conn_target_event(c, ev);
		break;
	default:
		break;
	}
	return WIRE_FORWARD;
}
