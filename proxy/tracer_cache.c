/* proxy/tracer_cache.c: what the tracer keeps so that a statement is not analysed
 * again (see tracer_int.h): its classification and digest by statement shape (the
 * skeleton, or the digest when there is none) and by prepared text, each with the route
 * memo of its last resolution.  Entries are made on a miss, in fixed slot arrays whose
 * slot_index picks the slot a new entry takes (CLOCK); nothing here allocates on a hit. */
#include "proxy/tracer_int.h"

#include <stdlib.h>
#include <string.h>

#include "router/hash.h"

static void
memo_clear(struct route_memo *m)
{
	free(m->tables);
	free(m->named_client);
	*m = (struct route_memo){0};
}

static void
analysis_clear(struct analysis *a)
{
	free(a->text);
	free(a->st);
	memo_clear(&a->memo);
	*a = (struct analysis){0};
}

bool
tracer_slots_ready(void *slotsp, struct slot_index **ix, unsigned cap, size_t size)
{
	void **slots = slotsp;

	if (*slots == NULL && (*slots = calloc(cap, size)) == NULL) {
		return false;
	}
	return *ix != NULL || (*ix = slot_index_new(cap)) != NULL;
}

void
tracer_caches_free(struct tracer *t)
{
	for (size_t i = 0; t->execs != NULL && i < TRACER_EXEC_SLOTS; i++) {
		analysis_clear(&t->execs[i].a);
	}
	free(t->execs);
	for (size_t i = 0; t->shapes != NULL && i < TRACER_SHAPE_SLOTS; i++) {
		analysis_clear(&t->shapes[i].a);
	}
	free(t->shapes);
	slot_index_free(t->exec_ix);
	slot_index_free(t->shape_ix);
}

/* ---- route memos ---------------------------------------------------------------- */

/* t->memo, the memo of the statement in t->st, if it holds this rules snapshot, target
 * and transaction state: restored into t->res and returned. */
struct route_memo *
tracer_memo_restore(struct tracer *t, const struct stmt_ctx *x, uint64_t tgt_epoch)
{
	struct route_memo *m = t->memo;

	if (m == NULL || m->rules_epoch != t->rules_epoch || m->tgt_epoch != tgt_epoch ||
	    m->in_tx != x->in_tx || m->target_known != x->target_known) {
		return NULL;
	}
	t->res.ntables = m->ntables;
	t->res.flags = m->flags;
	t->res.tablet_type = m->tablet_type;
	t->res.error = m->error;
	t->res.text_used = m->text_used;
	memcpy(t->res.tables, m->tables, m->ntables * sizeof(m->tables[0]));
	memcpy(t->res.text, m->text, m->text_used);
	return m;
}

/* Makes t->memo (if any) hold the resolution just made into t->res; returns it. */
struct route_memo *
tracer_memo_keep(struct tracer *t, const struct stmt_ctx *x, uint64_t tgt_epoch)
{
	struct route_memo *m = t->memo;
	unsigned nt = t->res.ntables, ns = nt ? nt : 1;
	size_t tb = nt * sizeof(struct route_table), sb = (ns + nt) * sizeof(int);

	if (m == NULL || t->rules_epoch == 0) {
		return NULL;
	}
	memo_clear(m);
	if ((m->tables = malloc(tb + sb + t->res.text_used + 1)) == NULL) {
		return NULL;
	}
	m->stmt_series = (int *)((char *)m->tables + tb);
	m->named_series = m->stmt_series + ns;
	m->text = (char *)(m->named_series + nt);
	memcpy(m->tables, t->res.tables, tb);
	memcpy(m->text, t->res.text, t->res.text_used);
	for (unsigned i = 0; i < ns + nt; i++) {
		m->stmt_series[i] = SERIES_UNKNOWN;
	}
	m->rules_epoch = t->rules_epoch;
	m->tgt_epoch = tgt_epoch;
	m->in_tx = x->in_tx;
	m->target_known = x->target_known;
	m->ntables = (uint16_t)nt;
	m->text_used = t->res.text_used;
	m->flags = t->res.flags;
	m->tablet_type = t->res.tablet_type;
	m->error = t->res.error;
	return m;
}

/* ---- COM_STMT_EXECUTE --------------------------------------------------------- */

/* A prepared statement runs the same text every time: its classification and digest
 * (which depend on the text and the lexer flags only, never on the session or the
 * rules) are kept by text, so a repeated EXECUTE is neither split, lexed nor digested
 * again.  Routing, the guard and the counters still run on every one. */

static size_t
st_packed_size(const struct sql_stmt *st)
{
	size_t nt = st->ntables < SQL_STMT_MAX_TABLES ? st->ntables : SQL_STMT_MAX_TABLES;

	return offsetof(struct sql_stmt, tables) + nt * sizeof(st->tables[0]) + sizeof(uint16_t) +
	       st->names_used;
}

/* The bytes of st that mean something: the fields before the tables, the tables used,
 * the name bytes used (names are offsets into them). */
static void
st_pack(const struct sql_stmt *st, unsigned char *out)
{
	size_t nt = st->ntables < SQL_STMT_MAX_TABLES ? st->ntables : SQL_STMT_MAX_TABLES;
	size_t o = offsetof(struct sql_stmt, tables);

	memcpy(out, st, o);
	memcpy(out + o, st->tables, nt * sizeof(st->tables[0]));
	o += nt * sizeof(st->tables[0]);
	memcpy(out + o, &st->names_used, sizeof(uint16_t));
	memcpy(out + o + sizeof(uint16_t), st->names, st->names_used);
}

static void
st_unpack(const unsigned char *in, struct sql_stmt *st)
{
	size_t o = offsetof(struct sql_stmt, tables);

	memcpy(st, in, o);
	size_t nt = st->ntables < SQL_STMT_MAX_TABLES ? st->ntables : SQL_STMT_MAX_TABLES;
	memcpy(st->tables, in + o, nt * sizeof(st->tables[0]));
	o += nt * sizeof(st->tables[0]);
	memcpy(&st->names_used, in + o, sizeof(uint16_t));
	memcpy(st->names, in + o + sizeof(uint16_t), st->names_used);
}

/* ---- cached analyses ----------------------------------------------------------- */

/* The analysis just made (t->st, t->digest...) with its key bytes key[0..klen), into a;
 * false (nothing held) when memory is short. */
static bool
analysis_make(const struct tracer *t, const char *key, size_t klen, struct analysis *a)
{
	size_t dl = strlen(t->digest);
	char *text = malloc(klen + 1 + dl + 1);
	unsigned char *st = malloc(st_packed_size(&t->st));

	if (text == NULL || st == NULL) {
		free(text);
		free(st);
		return false;
	}
	memcpy(text, key, klen);
	text[klen] = 0;
	memcpy(text + klen + 1, t->digest, dl + 1);
	st_pack(&t->st, st);
	*a = (struct analysis){.text = text, .digest = text + klen + 1, .digest_len = dl,
			       .digest_hash = t->digest_hash, .digest_folded = t->digest_folded,
			       .st = st};
	return true;
}

/* A cache hit: the statement's digest, classification and memo, as analysing it would
 * leave them. */
void
tracer_analysis_restore(struct tracer *t, struct analysis *a)
{
	count_inc(&t->counts.analysis_hits);
	memcpy(t->digest, a->digest, a->digest_len + 1);
	t->digest_hash = a->digest_hash;
	t->digest_folded = a->digest_folded;
	st_unpack(a->st, &t->st);
	t->memo = &a->memo;
}

/* ---- statement shapes ------------------------------------------------------------ */

/* An application sends a few statement shapes with ever-new literals.  A statement's
 * class and tables are kept by its shape, so the next statement of that shape is not
 * classified again.  The shape is the skeleton (sql_skeleton: the text with its simple
 * literals cut, found without lexing) when the text has one, so that the next one is not
 * lexed at all; otherwise the digest text and what the digest folds (sql_digest_ex).
 * Only classes whose class and tables never depend on a value literal are kept; a digest
 * cut at SQL_DIGEST_MAX is never kept. */
static bool
shape_cacheable(const struct tracer *t)
{
	switch ((enum sql_class)t->st.cls) {
	case SQL_CLASS_SELECT:
	case SQL_CLASS_INSERT:
	case SQL_CLASS_REPLACE:
	case SQL_CLASS_UPDATE:
	case SQL_CLASS_DELETE:
	case SQL_CLASS_BEGIN:
	case SQL_CLASS_COMMIT:
	case SQL_CLASS_ROLLBACK:
		return strlen(t->digest) < SQL_DIGEST_MAX - 1;
	default:
		return false;
	}
}

/* The slot key of the statement in hand: its skeleton's hash, or (no skeleton; digest
 * made) its digest hash. */
static uint64_t
shape_key(const struct tracer *t)
{
	return t->skel_ok ? t->skel_hash : t->digest_hash;
}

static bool
shape_is(const struct tracer *t, const struct shape_slot *e, unsigned lex_flags)
{
	if (e->lex_flags != lex_flags || e->by_skel != t->skel_ok)
		return false;
	if (t->skel_ok)
		return e->skel_len == t->skel_len && memcmp(e->a.text, t->skel, t->skel_len) == 0;
	return e->a.digest_folded == t->digest_folded && strcmp(e->a.digest, t->digest) == 0;
}

static struct shape_slot *
shape_find(struct tracer *t, unsigned lex_flags)
{
	uint64_t key = shape_key(t);

	for (int i = -1; t->shape_ix != NULL && (i = slot_index_next(t->shape_ix, key, i)) >= 0;) {
		if (shape_is(t, &t->shapes[i], lex_flags)) {
			slot_index_touch(t->shape_ix, i);
			return &t->shapes[i];
		}
	}
	return NULL;
}

static struct shape_slot *
shape_keep(struct tracer *t, unsigned lex_flags)
{
	size_t kl = t->skel_ok ? t->skel_len : 0;
	struct analysis a;

	if (!tracer_slots_ready(&t->shapes, &t->shape_ix, TRACER_SHAPE_SLOTS, sizeof(*t->shapes)) ||
	    !analysis_make(t, t->skel, kl, &a)) {
		return NULL;
	}
	struct shape_slot *e = &t->shapes[slot_index_claim(t->shape_ix, shape_key(t))];
	analysis_clear(&e->a);
	*e = (struct shape_slot){.a = a, .lex_flags = lex_flags, .by_skel = t->skel_ok,
				 .skel_len = kl};
	return e;
}

/* Classifies sql[0..n) into t->st and leaves its digest in t->digest / digest_hash /
 * digest_folded: made once, for the cache key, the metrics and the record alike (every
 * statement is classified here or taken whole from the prepared-text cache). */
void
tracer_classify(struct tracer *t, const struct stmt_ctx *x, const char *sql, size_t n)
{
	struct shape_slot *e = NULL;

	t->skel_ok = sql_skeleton(sql, n, t->skel, sizeof(t->skel), &t->skel_len, &t->skel_hash);
	if (t->skel_ok) {
		e = shape_find(t, x->lex_flags);
	} else {
		/* no skeleton: the shape is keyed by the digest, made first */
		t->digest_hash = sql_digest_ex(sql, n, x->lex_flags, t->digest, sizeof(t->digest),
					       &t->digest_folded);
		e = shape_find(t, x->lex_flags);
	}
	if (e != NULL) {
		tracer_analysis_restore(t, &e->a);
		return;
	}
	count_inc(&t->counts.analysis_misses);
	if (t->skel_ok) {
		t->digest_hash = sql_digest_ex(sql, n, x->lex_flags, t->digest, sizeof(t->digest),
					       &t->digest_folded);
	}
	sql_classify(sql, n, x->lex_flags, &t->st);
	e = shape_cacheable(t) ? shape_keep(t, x->lex_flags) : NULL;
	t->memo = e ? &e->a.memo : NULL;
}

uint64_t
tracer_exec_key(const char *text, size_t n, unsigned lex_flags)
{
	return hash_bytes(lex_flags, text, n);
}

struct exec_slot *
tracer_exec_find(struct tracer *t, uint64_t key, const char *text, size_t n, unsigned lex_flags)
{
	for (int i = -1; t->exec_ix != NULL && (i = slot_index_next(t->exec_ix, key, i)) >= 0;) {
		struct exec_slot *e = &t->execs[i];
		if (e->len == n && e->lex_flags == lex_flags && memcmp(e->a.text, text, n) == 0) {
			slot_index_touch(t->exec_ix, i);
			return e;
		}
	}
	return NULL;
}

/* Keeps the analysis just made of text (one statement: t->st, its digest in t->digest). */
void
tracer_exec_keep(struct tracer *t, uint64_t key, const char *text, size_t n, unsigned lex_flags,
	  size_t start, size_t slen)
{
	struct analysis a;

	if (!tracer_slots_ready(&t->execs, &t->exec_ix, TRACER_EXEC_SLOTS, sizeof(*t->execs)) ||
	    !analysis_make(t, text, n, &a)) {
		return;
	}
	struct exec_slot *e = &t->execs[slot_index_claim(t->exec_ix, key)];
	analysis_clear(&e->a);
	*e = (struct exec_slot){.a = a, .lex_flags = lex_flags, .len = n, .start = start,
				.slen = slen};
}

/* Classes whose analysis also changes the session's prepared texts or its target: never
 * taken from the cache (none of them can be prepared with COM_STMT_PREPARE anyway). */
bool
tracer_exec_cacheable(const struct sql_stmt *st)
{
	return st->cls != SQL_CLASS_PREPARE && st->cls != SQL_CLASS_EXECUTE &&
	       st->cls != SQL_CLASS_DEALLOCATE && st->cls != SQL_CLASS_USE;
}
