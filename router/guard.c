/* router/guard.c: the DDL guard's decision (issue 5 rules 1-4, ROUTING_SPEC c and a.5).
 * Fast path: a class/flag check.  Slow path (destructive or not-understood text only):
 * re-lex the text for its shape, resolve-based rules, and a token cross-check against
 * the per-snapshot index of names the routing rules use. */
#include "router/guard.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/classify.h"
#include "router/sql_lex.h"

#define GUARD_INNER_BUF 8192 /* as the classifier's PREPARE text buffer */
#define GUARD_DEPTH 3        /* PREPARE/VEXPLAIN wrappers followed */
#define NAME_SHOW 96         /* longest name shown in a reason */
#define TRIED_TT 10          /* tablet-type suffixes tried for keyspace rules */

/* --- case-insensitive string set ---------------------------------------------------- */

struct gset_ent {
	char *key; /* owned, as first seen */
	size_t len;
	char *rule; /* owned: a routing-rule key that names it */
};

struct gset {
	struct gset_ent *v;
	size_t cap; /* power of two, > 2 * entries */
	size_t n;   /* entries */
};

static unsigned char
lc(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? (unsigned char)(c - 'A' + 'a') : c;
}

static uint64_t
ci_hash(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ULL;
	size_t i;

	for (i = 0; i < n; i++)
		h = (h ^ lc((unsigned char)s[i])) * 1099511628211ULL;
	return h;
}

static bool
ci_eq(const char *a, size_t an, const char *b, size_t bn)
{
	size_t i;

	if (an != bn)
		return false;
	for (i = 0; i < an; i++)
		if (lc((unsigned char)a[i]) != lc((unsigned char)b[i]))
			return false;
	return true;
}

static bool
gset_init(struct gset *s, size_t max_entries)
{
	size_t cap = 16;

	while (cap < 2 * max_entries + 2)
		cap *= 2;
	s->v = calloc(cap, sizeof(*s->v));
	s->cap = s->v ? cap : 0;
	return s->v != NULL;
}

static void
gset_free(struct gset *s)
{
	size_t i;

	for (i = 0; i < s->cap; i++) {
		free(s->v[i].key);
		free(s->v[i].rule);
	}
	free(s->v);
	s->v = NULL;
	s->cap = 0;
}

static const struct gset_ent *
gset_find(const struct gset *s, const char *k, size_t n)
{
	size_t i;

	if (s->cap == 0)
		return NULL;
	for (i = ci_hash(k, n) & (s->cap - 1); s->v[i].key != NULL; i = (i + 1) & (s->cap - 1))
		if (ci_eq(s->v[i].key, s->v[i].len, k, n))
			return &s->v[i];
	return NULL;
}

/* Adds k (if new) with the rule key that names it; false on out of memory. */
static bool
gset_add(struct gset *s, const char *k, size_t n, const char *rule)
{
	size_t i;

	if (n == 0 || gset_find(s, k, n) != NULL)
		return true;
	for (i = ci_hash(k, n) & (s->cap - 1); s->v[i].key != NULL; i = (i + 1) & (s->cap - 1))
		;
	s->v[i].key = strndup(k, n);
	s->v[i].rule = strdup(rule);
	s->v[i].len = n;
	s->n++;
	return s->v[i].key != NULL && s->v[i].rule != NULL;
}

/* --- per-snapshot index -------------------------------------------------------------- */

struct guard_index {
	uint64_t gen;          /* rules_generation of the snapshot it was built from */
	struct gset tables;    /* table names in any table rule (keys and targets) */
	struct gset keyspaces; /* keyspaces in any rule of any kind */
	struct gset ksrule_ks; /* keyspaces in keyspace routing rules (whole keyspace moves) */
	bool ks_incomplete;    /* some keyspace rule could not be listed (no rules.h API) */
	size_t shard_rules;    /* shard routing rules exist: cannot be listed */
};

static void
index_free(struct guard_index *ix)
{
	if (ix == NULL)
		return;
	gset_free(&ix->tables);
	gset_free(&ix->keyspaces);
	gset_free(&ix->ksrule_ks);
	free(ix);
}

/* A table rule key "[ks.]table[@tt]": its keyspace and every table reading of it. */
static bool
index_rule_key(struct guard_index *ix, const char *key)
{
	const char *at = strrchr(key, '@'), *d1, *d2;
	size_t n = at ? (size_t)(at - key) : strlen(key);
	bool ok = gset_add(&ix->tables, key, n, key);

	d1 = memchr(key, '.', n);
	if (d1 == NULL)
		return ok;
	d2 = d1;
	while (memchr(d2 + 1, '.', n - (size_t)(d2 + 1 - key)) != NULL)
		d2 = memchr(d2 + 1, '.', n - (size_t)(d2 + 1 - key));
	ok = ok && gset_add(&ix->keyspaces, key, (size_t)(d1 - key), key);
	ok = ok && gset_add(&ix->tables, d1 + 1, n - (size_t)(d1 + 1 - key), key);
	return ok && gset_add(&ix->tables, d2 + 1, n - (size_t)(d2 + 1 - key), key);
}

/* Keyspace rules have no enumeration API: probe every vschema keyspace with every
 * tablet-type suffix and count what was found against rules_keyspace_rule_count. */
static bool
index_keyspace_rules(struct guard_index *ix, const struct rules *r)
{
	static const char *const sfx[TRIED_TT] = {
	    "",        "@primary", "@replica", "@rdonly", "@spare", "@experimental",
	    "@backup", "@restore", "@drained", "@unknown"};
	size_t k, i, found = 0;
	bool ok = true;

	for (k = 0; k < rules_keyspace_count(r) && ok; k++) {
		const char *ks = rules_keyspace_name(r, (int)k), *to;
		char key[VT_NAME_MAX + 16];

		for (i = 0; i < TRIED_TT && ok; i++) {
			int kn = snprintf(key, sizeof(key), "%s%s", ks, sfx[i]);

			if (kn < 0 || (size_t)kn >= sizeof(key) ||
			    !rules_keyspace_rule(r, key, (size_t)kn, &to))
				continue;
			found++;
			ok = gset_add(&ix->keyspaces, ks, strlen(ks), key) &&
			     gset_add(&ix->keyspaces, to, strlen(to), key) &&
			     gset_add(&ix->ksrule_ks, ks, strlen(ks), key) &&
			     gset_add(&ix->ksrule_ks, to, strlen(to), key);
		}
	}
	ix->ks_incomplete = found < rules_keyspace_rule_count(r);
	return ok;
}

static struct guard_index *
index_build(const struct rules *r)
{
	struct guard_index *ix = calloc(1, sizeof(*ix));
	size_t nr = rules_count(r), nk = rules_keyspace_count(r), i;
	bool ok;

	if (ix == NULL)
		return NULL;
	ix->gen = rules_generation(r);
	ok = gset_init(&ix->tables, 4 * nr) &&
	     gset_init(&ix->keyspaces, 2 * nr + 2 * TRIED_TT * nk) &&
	     gset_init(&ix->ksrule_ks, 2 * TRIED_TT * nk);
	for (i = 0; i < nr && ok; i++) {
		struct rule_view rv;

		if (!rules_table_rule_at(r, i, &rv))
			continue;
		ok = index_rule_key(ix, rv.key);
		if (ok && rv.kind == RULE_TARGET) {
			const char *ks = rules_keyspace_name(r, rv.ks);

			ok = gset_add(&ix->tables, rv.table, strlen(rv.table), rv.key) &&
			     (ks == NULL || gset_add(&ix->keyspaces, ks, strlen(ks), rv.key));
		}
	}
	ok = ok && index_keyspace_rules(ix, r);
	ix->shard_rules = rules_shard_rule_count(r);
	if (!ok) {
		index_free(ix);
		return NULL;
	}
	return ix;
}

/* --- policy ----------------------------------------------------------------------- */

struct guard_policy {
	enum guard_mode mode;
	char **allow; /* "ks" or "ks.table" */
	size_t nallow;
	pthread_mutex_t mu; /* guards the memo below (slow path only) */
	struct guard_index *memo[2];
	unsigned memo_next;
};

static bool
allow_entry_ok(const char *s, char *err, size_t errlen)
{
	const char *dot = strchr(s, '.');
	size_t i, n = strlen(s);

	if (n == 0 || n >= VT_NAME_MAX * 2 || s[0] == '.' || s[n - 1] == '.' ||
	    (dot && strchr(dot + 1, '.'))) {
		snprintf(err, errlen,
		         "guard allow-list entry '%.64s': want \"keyspace\" or "
		         "\"keyspace.table\"",
		         s);
		return false;
	}
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] <= ' ' || s[i] == '`' || s[i] == '@') {
			snprintf(err, errlen,
			         "guard allow-list entry '%.64s': unexpected "
			         "character",
			         s);
			return false;
		}
	return true;
}

struct guard_policy *
guard_policy_new(enum guard_mode mode, const char *const *allow, size_t nallow, char *err,
                 size_t errlen)
{
	struct guard_policy *p;
	size_t i;

	if (mode != GUARD_OFF && mode != GUARD_WARN && mode != GUARD_BLOCK) {
		snprintf(err, errlen, "guard mode %d out of range", (int)mode);
		return NULL;
	}
	for (i = 0; i < nallow; i++)
		if (allow[i] == NULL || !allow_entry_ok(allow[i], err, errlen))
			return NULL;
	p = calloc(1, sizeof(*p));
	if (p == NULL || (nallow && (p->allow = calloc(nallow, sizeof(char *))) == NULL) ||
	    pthread_mutex_init(&p->mu, NULL) != 0) {
		if (p)
			free(p->allow);
		free(p);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	p->mode = mode;
	for (i = 0; i < nallow; i++) {
		p->allow[p->nallow] = strdup(allow[i]);
		if (p->allow[p->nallow] == NULL) {
			guard_policy_free(p);
			snprintf(err, errlen, "out of memory");
			return NULL;
		}
		p->nallow++;
	}
	return p;
}

void
guard_policy_free(struct guard_policy *p)
{
	size_t i;

	if (p == NULL)
		return;
	for (i = 0; i < p->nallow; i++)
		free(p->allow[i]);
	free(p->allow);
	index_free(p->memo[0]);
	index_free(p->memo[1]);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

enum guard_mode
guard_policy_mode(const struct guard_policy *p)
{
	return p ? p->mode : GUARD_OFF;
}

bool
guard_mode_parse(const char *s, enum guard_mode *out)
{
	static const char *const names[] = {"off", "warn", "block"};
	size_t i;

	for (i = 0; s != NULL && i < 3; i++)
		if (ci_eq(s, strlen(s), names[i], strlen(names[i]))) {
			*out = (enum guard_mode)i;
			return true;
		}
	return false;
}

const char *
guard_mode_name(enum guard_mode m)
{
	switch (m) {
	case GUARD_OFF:
		return "off";
	case GUARD_WARN:
		return "warn";
	case GUARD_BLOCK:
		return "block";
	}
	return "?";
}

const char *
guard_verdict_name(enum guard_verdict v)
{
	switch (v) {
	case GUARD_ALLOW:
		return "allow";
	case GUARD_WOULD_BLOCK:
		return "would_block";
	case GUARD_DENY:
		return "deny";
	}
	return "?";
}

/* Memoized index for r (policy mutex held by the caller).  NULL: out of memory. */
static const struct guard_index *
policy_index(struct guard_policy *p, const struct rules *r)
{
	uint64_t gen = rules_generation(r);
	unsigned i;

	for (i = 0; i < 2; i++)
		if (p->memo[i] != NULL && p->memo[i]->gen == gen)
			return p->memo[i];
	i = p->memo_next;
	index_free(p->memo[i]);
	p->memo[i] = index_build(r);
	p->memo_next ^= 1u;
	return p->memo[i];
}

static bool
allowed_one(const struct guard_policy *p, const char *ks, const char *table)
{
	size_t i, kl = strlen(ks);

	for (i = 0; i < p->nallow; i++) {
		const char *a = p->allow[i];

		if (strcmp(a, ks) == 0)
			return true;
		if (strncmp(a, ks, kl) == 0 && a[kl] == '.' && strcmp(a + kl + 1, table) == 0)
			return true;
	}
	return false;
}

/* --- what the statement is ------------------------------------------------------------ */

enum dk {
	DK_NONE = 0,
	DK_DROP_TABLE,
	DK_DROP_VIEW,
	DK_TRUNCATE,
	DK_RENAME,
	DK_ALTER_RENAME,
	DK_ALTER_DROP,
	DK_DROP_INDEX,
	DK_DROP_DATABASE,
	DK_COUNT
};

static const char *const dk_name[DK_COUNT] = {"statement",
                                              "DROP TABLE",
                                              "DROP VIEW",
                                              "TRUNCATE TABLE",
                                              "RENAME TABLE",
                                              "ALTER TABLE ... RENAME",
                                              "ALTER TABLE ... DROP",
                                              "DROP INDEX",
                                              "DROP DATABASE"};
static const char *const dk_verb[DK_COUNT] = {
    "change", "drop", "drop", "truncate", "rename", "rename", "alter", "drop an index of", "drop"};

#define TROUBLE                                                                                    \
	(SQL_STMT_TABLES_OVERFLOW | SQL_STMT_NAMES_OVERFLOW | SQL_STMT_UNTERMINATED |              \
	 SQL_STMT_TOO_DEEP | SQL_STMT_PREPARE_UNKNOWN)

/* The fast path: can this statement be destructive or not understood? */
static bool
needs_look(const struct sql_stmt *st)
{
	switch (st->cls) {
	case SQL_CLASS_UNPARSED:
	case SQL_CLASS_DROP:
	case SQL_CLASS_TRUNCATE:
	case SQL_CLASS_RENAME:
	case SQL_CLASS_PREPARE:
		return true;
	case SQL_CLASS_ALTER:
		return (st->flags & (TROUBLE | SQL_STMT_ALTER_RENAME | SQL_STMT_ALTER_DROP)) != 0;
	default:
		return st->cls >= SQL_CLASS_COUNT || (st->flags & TROUBLE) != 0;
	}
}

/* Destructive kind from the classification (VEXPLAIN QUERIES|ALL|TRACE already carries
 * the inner class; PREPARE '<text>' carries it in inner_cls). */
static enum dk
destructive_kind(const struct sql_stmt *st)
{
	unsigned cls = st->cls;
	uint32_t f = st->flags;

	if (cls == SQL_CLASS_PREPARE)
		cls = (f & SQL_STMT_PREPARE_TEXT) ? st->inner_cls : SQL_CLASS_UNPARSED;
	switch (cls) {
	case SQL_CLASS_DROP:
		if (f & SQL_STMT_DDL_DATABASE)
			return DK_DROP_DATABASE;
		if (f & SQL_STMT_DDL_INDEX)
			return DK_DROP_INDEX;
		if (f & SQL_STMT_DDL_VIEW)
			return DK_DROP_VIEW;
		return (f & SQL_STMT_DDL_TABLE) ? DK_DROP_TABLE : DK_NONE;
	case SQL_CLASS_TRUNCATE:
		return DK_TRUNCATE;
	case SQL_CLASS_RENAME:
		return (f & SQL_STMT_DDL_TABLE) ? DK_RENAME : DK_NONE;
	case SQL_CLASS_ALTER:
		if (!(f & SQL_STMT_DDL_TABLE))
			return DK_NONE;
		if (f & SQL_STMT_ALTER_RENAME)
			return DK_ALTER_RENAME;
		return (f & SQL_STMT_ALTER_DROP) ? DK_ALTER_DROP : DK_NONE;
	default:
		return DK_NONE;
	}
}

/* The text's own shape, from the lexer alone (fail closed where the classifier gave up). */
struct shape {
	enum sql_kw kw;  /* first keyword of the innermost statement, if DDL-like */
	bool like_ddl;   /* starts like destructive DDL (DROP/RENAME of a non-safe object,
	                  * TRUNCATE, ALTER) */
	bool unknowable; /* PREPARE FROM a variable, or wrappers too long/deep to follow */
	const char *z;   /* innermost statement text (into the input or buf) */
	size_t n;
	char next_word[32]; /* the word after DROP/RENAME, for messages */
	char buf[2][GUARD_INNER_BUF];
};

static bool
word_is(const char *z, const struct sql_tok *t, const char *w)
{
	return t->type == SQL_TK_IDENT && ci_eq(z + t->off, t->len, w, strlen(w));
}

/* DROP/RENAME objects that hold no table data. */
static bool
safe_object(const char *z, const struct sql_tok *t)
{
	static const char *const w[] = {"PROCEDURE",  "FUNCTION", "TRIGGER",  "EVENT",
	                                "USER",       "ROLE",     "SERVER",   "PREPARE",
	                                "TABLESPACE", "LOGFILE",  "RESOURCE", "SPATIAL"};
	size_t i;

	for (i = 0; i < sizeof(w) / sizeof(w[0]); i++)
		if (word_is(z, t, w[i]))
			return true;
	return false;
}

static bool
kw_is(const struct sql_tok *t, enum sql_kw k)
{
	return t->type == SQL_TK_IDENT && t->kw == k;
}

/* VEXPLAIN [QUERIES|ALL|TRACE|PLAN|KEYS] [FORMAT [=] x] <stmt>: sets *off to <stmt>;
 * false when it is planned only (PLAN, KEYS, or no mode: Vitess's default is PLAN). */
static bool
vexplain_inner(struct sql_lex *lx, size_t *off)
{
	struct sql_tok u;

	if (!sql_lex_next_code(lx, &u))
		return false;
	if (!kw_is(&u, SQL_KW_QUERIES) && !kw_is(&u, SQL_KW_ALL) && !kw_is(&u, SQL_KW_TRACE))
		return false;
	if (!sql_lex_next_code(lx, &u))
		return false;
	if (kw_is(&u, SQL_KW_FORMAT)) {
		if (!sql_lex_next_code(lx, &u) ||
		    (u.type == SQL_TK_OP && !sql_lex_next_code(lx, &u)) ||
		    !sql_lex_next_code(lx, &u))
			return false;
	}
	*off = u.off;
	return true;
}

static void
shape_first(struct shape *sh, struct sql_lex *lx, const struct sql_tok *t)
{
	struct sql_tok u;

	sh->kw = (enum sql_kw)t->kw;
	if (t->kw == SQL_KW_TRUNCATE || t->kw == SQL_KW_ALTER) {
		sh->like_ddl = true;
		return;
	}
	if (!sql_lex_next_code(lx, &u)) {
		sh->like_ddl = true;
		return;
	}
	snprintf(sh->next_word, sizeof(sh->next_word), "%.*s", (int)(u.len < 31 ? u.len : 31),
	         sh->z + u.off);
	sh->like_ddl = !safe_object(sh->z, &u);
}

static void
shape_of(const char *z, size_t n, unsigned lf, struct shape *sh)
{
	unsigned depth, cur = 0;

	sh->kw = SQL_KW_NONE;
	sh->like_ddl = sh->unknowable = false;
	sh->next_word[0] = '\0';
	for (depth = 0; depth < GUARD_DEPTH; depth++) {
		struct sql_lex lx;
		struct sql_tok t;
		size_t off, vn;

		sh->z = z;
		sh->n = n;
		sql_lex_init(&lx, z, n, lf);
		if (!sql_lex_next_code(&lx, &t) || t.type != SQL_TK_IDENT)
			return;
		switch (t.kw) {
		case SQL_KW_DROP:
		case SQL_KW_RENAME:
		case SQL_KW_TRUNCATE:
		case SQL_KW_ALTER:
			shape_first(sh, &lx, &t);
			return;
		case SQL_KW_VEXPLAIN:
			if (!vexplain_inner(&lx, &off))
				return;
			z += off;
			n -= off;
			continue;
		case SQL_KW_PREPARE:
			if (!sql_lex_next_code(&lx, &t) || !sql_lex_next_code(&lx, &t) ||
			    !kw_is(&t, SQL_KW_FROM) || !sql_lex_next_code(&lx, &t) ||
			    t.type != SQL_TK_STRING) {
				sh->unknowable = true;
				return;
			}
			vn = sql_tok_value(z, &t, lf, sh->buf[cur], GUARD_INNER_BUF);
			if (vn >= GUARD_INNER_BUF) {
				sh->unknowable = true;
				return;
			}
			z = sh->buf[cur];
			n = vn;
			cur ^= 1u;
			continue;
		default:
			return;
		}
	}
	sh->unknowable = true;
}

/* --- reasons ----------------------------------------------------------------------- */

struct ctx {
	const struct guard_policy *p;
	const struct rules *r;
	const struct vt_target *sess;
	const struct sql_stmt *st;
	const struct route_result *res;
	const char *sql; /* the statement text */
	size_t n;
	const struct guard_index *ix; /* NULL: no rules snapshot */
	enum dk dk;
	const struct shape *sh;
	struct guard_decision *out;
};

static const char *const finish_advice =
    "finish or cancel the workflow (MoveTables Complete/Cancel) or clean up the routing "
    "rules first";

static const char *
wrapper_text(const struct sql_stmt *st)
{
	if (st->flags & SQL_STMT_VEXPLAIN_EXEC)
		return " (inside VEXPLAIN QUERIES|ALL|TRACE, which executes it)";
	if (st->cls == SQL_CLASS_PREPARE && !(st->flags & SQL_STMT_PREPARE_UNKNOWN))
		return " (in SQL PREPARE ... FROM '...')";
	return "";
}

/* Writes the verdict and "routetrace: blocked <what>: <detail>". */
static void block(struct ctx *c, unsigned code, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
block(struct ctx *c, unsigned code, const char *what, const char *fmt, ...)
{
	va_list ap;
	int k;

	c->out->verdict = c->p->mode == GUARD_WARN ? GUARD_WOULD_BLOCK : GUARD_DENY;
	c->out->reason_code = code;
	k = snprintf(c->out->reason, sizeof(c->out->reason), "routetrace: blocked %s%s: ", what,
	             wrapper_text(c->st));
	if (k < 0 || (size_t)k >= sizeof(c->out->reason))
		return;
	va_start(ap, fmt);
	vsnprintf(c->out->reason + k, sizeof(c->out->reason) - (size_t)k, fmt, ap);
	va_end(ap);
}

/* "<KIND> <named>" as the statement names the table. */
static const char *
what_str(const struct ctx *c, const struct route_table *t, char *buf, size_t len)
{
	const struct sql_tref *ref = &c->st->tables[t->tref];
	const char *qual = sql_stmt_str(c->st, ref->qual);
	const char *sks = c->r ? route_session_keyspace(c->r, c->sess) : c->sess->keyspace;

	if (t->flags & ROUTE_T_NEW_NAME)
		snprintf(buf, len, "%s ... TO %.*s%s%.*s", dk_name[c->dk], NAME_SHOW, qual,
		         qual[0] ? "." : "", NAME_SHOW, t->table);
	else if (qual[0] != '\0')
		snprintf(buf, len, "%s %.*s.%.*s", dk_name[c->dk], NAME_SHOW, qual, NAME_SHOW,
		         t->table);
	else if (c->sess->dest != VT_DEST_NONE)
		snprintf(buf, len, "%s %.*s (shard-targeted session %.*s/%.*s)", dk_name[c->dk],
		         NAME_SHOW, t->table, NAME_SHOW, c->sess->keyspace, NAME_SHOW,
		         c->sess->dest_text);
	else if (sks[0] != '\0')
		snprintf(buf, len, "%s %.*s (session keyspace %.*s)", dk_name[c->dk], NAME_SHOW,
		         t->table, NAME_SHOW, sks);
	else
		snprintf(buf, len, "%s %.*s (no keyspace selected)", dk_name[c->dk], NAME_SHOW,
		         t->table);
	return buf;
}

/* --- rule 1: redirected or unresolvable -------------------------------------------- */

/* The keyspace the statement names for t: a qualifier target string's keyspace part. */
static const char *
named_keyspace(const struct route_table *t, char *buf, size_t len)
{
	struct vt_target q;
	char err[64];
	const char *nk = t->named_ks ? t->named_ks : "";

	if (!(t->flags & ROUTE_T_QUALIFIER_TARGET) ||
	    !vt_target_parse(nk, strlen(nk), VT_TT_PRIMARY, &q, err, sizeof(err)))
		return nk;
	snprintf(buf, len, "%s", q.keyspace);
	return buf;
}

static bool
is_redirected(const struct route_table *t, const char *nks)
{
	if (t->flags & ROUTE_T_REDIRECTED)
		return true;
	if (nks[0] == '\0')
		return (t->flags & (ROUTE_T_RULE | ROUTE_T_KS_RULE)) != 0;
	return strcmp(nks, t->reached_ks) != 0 || strcmp(t->table, t->reached_table) != 0;
}

static const char *
how_str(const struct route_table *t, char *buf, size_t len)
{
	if (t->rule != NULL)
		snprintf(buf, len, "routing rule '%.*s'", NAME_SHOW, t->rule);
	else if (t->flags & ROUTE_T_KS_RULE)
		snprintf(buf, len, "a keyspace routing rule");
	else if (t->flags & (ROUTE_T_ANY_KEYSPACE | ROUTE_T_SYSTEM_SCHEMA))
		snprintf(buf, len, "vtgate (system schema keyspace: AnyKeyspace)");
	else
		snprintf(buf, len, "vtgate");
	return buf;
}

/* Fail closed on a name vtgate cannot resolve: vtgate would refuse the statement too, and
 * what the guard cannot place it cannot clear.  A RENAME's new name counts as well. */
static bool
unresolved(struct ctx *c, const struct route_table *t)
{
	char what[320];

	if (t->error == NULL && t->reached_ks != NULL && !(t->flags & ROUTE_T_ERROR))
		return false;
	block(c, GUARD_R_REDIRECT, what_str(c, t, what, sizeof(what)),
	      "vtgate cannot resolve it (%.200s)%s%.*s%s; check the routing rules and "
	      "qualify the %s with the keyspace that holds %s",
	      t->error ? t->error : "unresolved", t->rule ? " under routing rule '" : "",
	      NAME_SHOW, t->rule ? t->rule : "", t->rule ? "'" : "",
	      (t->flags & ROUTE_T_NEW_NAME) ? "new name" : "table",
	      (t->flags & ROUTE_T_NEW_NAME) ? "the table renamed" : "it");
	return true;
}

static bool
rule1(struct ctx *c, const struct route_table *t)
{
	char what[320], nbuf[VT_NAME_MAX], how[160];
	const char *nks;

	if (unresolved(c, t))
		return true;
	nks = named_keyspace(t, nbuf, sizeof(nbuf));
	if (!is_redirected(t, nks))
		return false;
	block(c, GUARD_R_REDIRECT, what_str(c, t, what, sizeof(what)),
	      "%s sends it to %.*s.%.*s, which would %s %.*s.%.*s; %s",
	      how_str(t, how, sizeof(how)), NAME_SHOW, t->reached_ks, NAME_SHOW, t->reached_table,
	      dk_verb[c->dk], NAME_SHOW, t->reached_ks, NAME_SHOW, t->reached_table, finish_advice);
	return true;
}

/* --- rule 2: part of an active workflow ----------------------------------------- */

/* Does s[0..n) name an entry of set: the whole string or a '.'/'@' component? */
static const struct gset_ent *
names_in(const struct gset *set, const char *s, size_t n)
{
	const struct gset_ent *e = gset_find(set, s, n);
	size_t i, start = 0;

	for (i = 0; e == NULL && i <= n; i++) {
		if (i < n && s[i] != '.' && s[i] != '@')
			continue;
		if (i > start && i - start < n)
			e = gset_find(set, s + start, i - start);
		start = i + 1;
	}
	return e;
}

/* Which rule makes the table t (in keyspace ks) part of a workflow, or NULL. */
static const char *
workflow_rule(const struct ctx *c, const struct route_table *t, const char *ks)
{
	const struct gset_ent *e;

	if (c->ix == NULL)
		return NULL;
	if (t->rule != NULL)
		return t->rule;
	e = names_in(&c->ix->tables, t->table, strlen(t->table));
	if (e == NULL && t->reached_table != NULL)
		e = names_in(&c->ix->tables, t->reached_table, strlen(t->reached_table));
	if (e == NULL && ks != NULL)
		e = gset_find(&c->ix->ksrule_ks, ks, strlen(ks));
	if (e == NULL && t->reached_ks != NULL)
		e = gset_find(&c->ix->ksrule_ks, t->reached_ks, strlen(t->reached_ks));
	return e ? e->rule : NULL;
}

static bool
sides_allowed(const struct ctx *c, const struct route_table *t, const char *nks)
{
	if (nks[0] == '\0' && t->reached_ks == NULL)
		return false; /* nothing to match an entry against */
	if (nks[0] != '\0' && !allowed_one(c->p, nks, t->table))
		return false;
	return t->reached_ks == NULL || allowed_one(c->p, t->reached_ks, t->reached_table);
}

static bool
rule2(struct ctx *c, const struct route_table *t)
{
	char what[320], nbuf[VT_NAME_MAX];
	const char *nks = named_keyspace(t, nbuf, sizeof(nbuf));
	const char *rule = workflow_rule(c, t, nks);
	const char *rks = t->reached_ks ? t->reached_ks : nks;

	if (rule == NULL || sides_allowed(c, t, nks))
		return false;
	block(c, GUARD_R_WORKFLOW, what_str(c, t, what, sizeof(what)),
	      "%s%.*s.%.*s is part of an active workflow (routing rule '%.*s' names it); finish "
	      "or cancel the workflow (MoveTables Complete/Cancel) first, or add '%.*s.%.*s' to "
	      "the guard allow-list",
	      (t->flags & ROUTE_T_NEW_NAME) ? "the new name " : "", NAME_SHOW, rks, NAME_SHOW,
	      t->reached_table ? t->reached_table : t->table, NAME_SHOW, rule, NAME_SHOW, rks,
	      NAME_SHOW, t->reached_table ? t->reached_table : t->table);
	return true;
}

/* --- rule 4 for shard-targeted sessions (ROUTING_SPEC a.5) ---------------------------- */

/* Routing is bypassed: the DDL goes where the operator pointed (the session keyspace's
 * shard), so it is not a redirect; but a qualifier other than the session keyspace stays
 * in the SQL and names a MySQL database on that shard, and a workflow table there is
 * still the workflow's copy. */
static bool
shard_targeted(struct ctx *c, const struct route_table *t)
{
	char what[320];
	const char *rule;

	if (t->flags & ROUTE_T_FOREIGN_QUALIFIER) {
		block(c, GUARD_R_FAIL_CLOSED, what_str(c, t, what, sizeof(what)),
		      "the session is shard-targeted (%.*s/%.*s), so routing is bypassed and the "
		      "qualifier '%.*s' stays in the SQL as a MySQL database name on keyspace "
		      "%.*s's shard; USE the keyspace without a shard or drop the qualifier",
		      NAME_SHOW, c->sess->keyspace, NAME_SHOW, c->sess->dest_text, NAME_SHOW,
		      t->named_ks, NAME_SHOW, c->sess->keyspace);
		return true;
	}
	rule = workflow_rule(c, t, c->sess->keyspace);
	if (rule == NULL || allowed_one(c->p, c->sess->keyspace, t->table))
		return false;
	block(c, GUARD_R_FAIL_CLOSED, what_str(c, t, what, sizeof(what)),
	      "the session is shard-targeted (%.*s/%.*s), so routing is bypassed and it would "
	      "%s %.*s.%.*s on that shard, a table of an active workflow (routing rule '%.*s'); "
	      "finish or cancel the workflow (MoveTables Complete/Cancel) first, or add "
	      "'%.*s.%.*s' to the guard allow-list",
	      NAME_SHOW, c->sess->keyspace, NAME_SHOW, c->sess->dest_text, dk_verb[c->dk],
	      NAME_SHOW, c->sess->keyspace, NAME_SHOW, t->table, NAME_SHOW, rule, NAME_SHOW,
	      c->sess->keyspace, NAME_SHOW, t->table);
	return true;
}

/* --- rule 3: DROP DATABASE ----------------------------------------------------------- */

static const char *
ks_rule_for(const struct ctx *c, const char *ks)
{
	static const char *const sfx[] = {"", "@primary", "@replica", "@rdonly"};
	const struct gset_ent *e = c->ix ? gset_find(&c->ix->keyspaces, ks, strlen(ks)) : NULL;
	char key[VT_NAME_MAX + 16];
	const char *to;
	size_t i;

	if (e != NULL)
		return e->rule;
	for (i = 0; c->r != NULL && i < sizeof(sfx) / sizeof(sfx[0]); i++) {
		int kn = snprintf(key, sizeof(key), "%s%s", ks, sfx[i]);

		if (kn > 0 && (size_t)kn < sizeof(key) &&
		    rules_keyspace_rule(c->r, key, (size_t)kn, &to))
			return "keyspace routing rule";
	}
	return NULL;
}

static bool
rule3(struct ctx *c)
{
	const char *db = sql_stmt_str(c->st, c->st->db), *rule;
	struct vt_target tg;
	char err[64], what[200];

	snprintf(what, sizeof(what), "DROP DATABASE %.*s", NAME_SHOW, db);
	if (db[0] == '\0') {
		block(c, GUARD_R_FAIL_CLOSED, what, "no database name found; write it plainly");
		return true;
	}
	if (!vt_target_parse(db, strlen(db), VT_TT_PRIMARY, &tg, err, sizeof(err)))
		snprintf(tg.keyspace, sizeof(tg.keyspace), "%s", db);
	rule = ks_rule_for(c, tg.keyspace);
	if (rule == NULL && c->ix != NULL) {
		/* fail closed on odd target strings: any '.'/'@' part naming a rule keyspace */
		const struct gset_ent *e = names_in(&c->ix->keyspaces, db, strlen(db));

		rule = e ? e->rule : NULL;
	}
	if (rule != NULL) {
		block(c, GUARD_R_DATABASE, what, "keyspace %.*s appears in routing rule '%.*s'; %s",
		      NAME_SHOW, tg.keyspace, NAME_SHOW, rule, finish_advice);
		return true;
	}
	if (c->ix != NULL && (c->ix->ks_incomplete || c->ix->shard_rules > 0)) {
		block(c, GUARD_R_DATABASE, what,
		      "%s routing rules exist that the guard cannot list, so no keyspace can be "
		      "shown to be outside every workflow; %s",
		      c->ix->shard_rules > 0 ? "shard" : "keyspace", finish_advice);
		return true;
	}
	return false;
}

/* --- token cross-check ----------------------------------------------------------- */

/* Counts identifiers in the innermost text that name a member of set (a '.'/'@'
 * component counts); a cut identifier counts (fail closed).  *hit: one of them. */
static size_t
count_names(const struct ctx *c, const struct gset *set, unsigned lf, char *hit, size_t hl)
{
	struct sql_lex lx;
	struct sql_tok t;
	char v[1024];
	size_t cnt = 0, vn;

	sql_lex_init(&lx, c->sh->z, c->sh->n, lf);
	while (sql_lex_next_code(&lx, &t)) {
		if (t.type != SQL_TK_IDENT && t.type != SQL_TK_QIDENT)
			continue;
		vn = sql_tok_value(c->sh->z, &t, lf, v, sizeof(v));
		if (vn >= sizeof(v) || names_in(set, v, vn) != NULL) {
			cnt++;
			snprintf(hit, hl, "%.*s", NAME_SHOW, v);
		}
	}
	return cnt;
}

/* Every identifier naming a workflow table (or, for DROP DATABASE, a rule keyspace) must
 * be one the classifier recorded; otherwise the text hides one where the parse did not
 * look (garbage, odd syntax).  Returns true if it blocked. */
static bool
cross_check(struct ctx *c, unsigned lf)
{
	const struct gset *set;
	char hit[NAME_SHOW + 1] = "";
	size_t seen, known = 0, i;

	if (c->ix == NULL || c->dk == DK_ALTER_RENAME || c->dk == DK_ALTER_DROP)
		return false;
	set = c->dk == DK_DROP_DATABASE ? &c->ix->keyspaces : &c->ix->tables;
	if (set->n == 0 && c->ix->tables.n == 0)
		return false;
	seen = count_names(c, set, lf, hit, sizeof(hit));
	if (c->dk == DK_DROP_DATABASE) {
		/* any identifier naming a workflow table is extra, even the name itself */
		const char *db = sql_stmt_str(c->st, c->st->db);

		seen += count_names(c, &c->ix->tables, lf, hit, sizeof(hit));
		known = names_in(set, db, strlen(db)) != NULL; /* a database named like a
		                                                * workflow table is refused too */
	}
	for (i = 0; c->dk != DK_DROP_DATABASE && i < c->st->ntables; i++) {
		const char *q = sql_stmt_str(c->st, c->st->tables[i].qual);
		const char *nm = sql_stmt_str(c->st, c->st->tables[i].name);

		known += names_in(set, nm, strlen(nm)) != NULL;
		known += q[0] != '\0' && names_in(set, q, strlen(q)) != NULL;
	}
	if (seen <= known)
		return false;
	block(c, GUARD_R_FAIL_CLOSED, dk_name[c->dk],
	      "the text names '%s', which routing rules use, in a place the guard did not parse "
	      "as a table; write the statement plainly (one table list, no trailing text)",
	      hit);
	return true;
}

/* --- the decision ------------------------------------------------------------------ */

static const char *
trouble_text(const struct sql_stmt *st)
{
	if (st->flags & SQL_STMT_TABLES_OVERFLOW)
		return "more than 64 table references";
	if (st->flags & SQL_STMT_NAMES_OVERFLOW)
		return "identifiers too long to record";
	if (st->flags & SQL_STMT_UNTERMINATED)
		return "a quote or comment is not terminated";
	if (st->flags & SQL_STMT_TOO_DEEP)
		return "nested too deeply";
	if (st->cls == SQL_CLASS_UNPARSED && st->reason != NULL)
		return st->reason;
	return "not parsed";
}

/* Any token (comments included) running to the end of the text?  The classifier only
 * sees code tokens, so an unterminated comment does not set SQL_STMT_UNTERMINATED. */
static bool
text_unterminated(const char *z, size_t n, unsigned lf)
{
	struct sql_lex lx;
	struct sql_tok t;

	sql_lex_init(&lx, z, n, lf);
	while (sql_lex_next(&lx, &t))
		if (t.flags & SQL_TOKF_UNTERMINATED)
			return true;
	return false;
}

/* Statement-level fail-closed checks (rule 4).  True if it blocked. */
static bool
statement_checks(struct ctx *c, unsigned lf)
{
	const struct sql_stmt *st = c->st;
	const char *kw = sql_kw_name(c->sh->kw);
	char what[64];

	snprintf(what, sizeof(what), "statement starting with %s", kw[0] ? kw : "PREPARE");
	if (c->sh->unknowable || (st->flags & SQL_STMT_PREPARE_UNKNOWN)) {
		block(c, GUARD_R_FAIL_CLOSED, "PREPARE ... FROM <variable or unreadable text>",
		      "the proxy cannot know the prepared text, so it may be destructive DDL; "
		      "PREPARE from a plain string literal instead");
		return true;
	}
	if (c->sh->like_ddl &&
	    (st->cls == SQL_CLASS_UNPARSED || (st->flags & TROUBLE) ||
	     (st->cls == SQL_CLASS_PREPARE && st->inner_cls == SQL_CLASS_UNPARSED))) {
		block(c, GUARD_R_FAIL_CLOSED, what,
		      "the guard could not fully understand it (%s), and it may be destructive "
		      "DDL; split it into plain statements (at most 64 tables each)",
		      trouble_text(st));
		return true;
	}
	if (c->sh->like_ddl &&
	    (text_unterminated(c->sql, c->n, lf) ||
	     (c->sh->z != c->sql && text_unterminated(c->sh->z, c->sh->n, lf)))) {
		block(c, GUARD_R_FAIL_CLOSED, what,
		      "the guard could not fully understand it (a quote or comment is not "
		      "terminated), and it may be destructive DDL; close it or remove it");
		return true;
	}
	if (c->dk == DK_NONE && c->sh->like_ddl && c->sh->kw != SQL_KW_ALTER) {
		block(c, GUARD_R_FAIL_CLOSED, what,
		      "the guard does not know the form '%s %.31s' and cannot rule out destructive "
		      "DDL; write it as DROP TABLE/VIEW/INDEX/DATABASE, TRUNCATE or RENAME TABLE",
		      kw, c->sh->next_word);
		return true;
	}
	return false;
}

/* Per-table rules in order of severity: every table for rule 1, then for rule 2. */
static bool
table_checks(struct ctx *c)
{
	const struct route_result *res = c->res;
	unsigned i, pass, ddl = 0;

	for (i = 0; i < res->ntables; i++)
		ddl += res->tables[i].role == SQL_ROLE_DDL &&
		       !(res->tables[i].flags & ROUTE_T_NEW_NAME);
	if (ddl == 0) {
		block(c, GUARD_R_FAIL_CLOSED, dk_name[c->dk],
		      "no table name found in it; write the table name plainly");
		return true;
	}
	for (pass = 0; pass < 2; pass++)
		for (i = 0; i < res->ntables; i++) {
			const struct route_table *t = &res->tables[i];

			if (t->role != SQL_ROLE_DDL || t->tref >= c->st->ntables)
				continue;
			if (t->flags & ROUTE_T_SHARD_TARGETED) {
				if (pass == 0 && shard_targeted(c, t))
					return true;
				continue;
			}
			if (pass == 0 && ((t->flags & ROUTE_T_NEW_NAME) ? unresolved(c, t)
			                                               : rule1(c, t)))
				return true;
			if (pass == 1 && rule2(c, t))
				return true;
		}
	return false;
}

static void
check_slow(struct ctx *c, unsigned lf)
{
	if (statement_checks(c, lf) || c->dk == DK_NONE)
		return;
	if (c->res == NULL) {
		block(c, GUARD_R_FAIL_CLOSED, dk_name[c->dk], "no routing resolution was given");
		return;
	}
	if (c->r != NULL && c->ix == NULL) {
		block(c, GUARD_R_FAIL_CLOSED, dk_name[c->dk],
		      "the guard could not index the routing rules (out of memory)");
		return;
	}
	if (c->dk == DK_DROP_DATABASE) {
		if (!rule3(c))
			cross_check(c, lf);
		return;
	}
	if (!table_checks(c))
		cross_check(c, lf);
}

/* The slow path, kept out of line: its 16 KiB frame (two PREPARE text buffers) must not
 * be paid (stack probes, sanitizer redzones) by the fast path. */
static __attribute__((noinline)) void
check_statement(const struct guard_policy *p, const struct rules *rules,
                const struct vt_target *session, const char *sql, size_t n, unsigned lex_flags,
                const struct sql_stmt *st, const struct route_result *res,
                struct guard_decision *out)
{
	struct guard_policy *mp = (struct guard_policy *)(uintptr_t)p;
	struct shape sh;
	struct ctx c;

	if (sql == NULL)
		n = 0;
	c.sql = sql ? sql : "";
	c.n = n;
	shape_of(c.sql, n, lex_flags, &sh);
	c.p = p;
	c.r = rules;
	c.sess = session;
	c.st = st;
	c.res = res;
	c.dk = destructive_kind(st);
	c.sh = &sh;
	c.out = out;
	c.ix = NULL;
	/* The memo is the only mutable part of a policy; the lock is taken only here. */
	pthread_mutex_lock(&mp->mu);
	if (rules != NULL && (c.dk != DK_NONE || sh.like_ddl))
		c.ix = policy_index(mp, rules);
	check_slow(&c, lex_flags);
	pthread_mutex_unlock(&mp->mu);
}

void
guard_check_lex(const struct guard_policy *p, const struct rules *rules,
                const struct vt_target *session, const char *sql, size_t n, unsigned lex_flags,
                const struct sql_stmt *st, const struct route_result *res,
                struct guard_decision *out)
{
	out->verdict = GUARD_ALLOW;
	out->reason_code = GUARD_R_NONE;
	out->reason[0] = '\0';
	if (p == NULL || p->mode == GUARD_OFF || !needs_look(st))
		return;
	check_statement(p, rules, session, sql, n, lex_flags, st, res, out);
}

void
guard_check(const struct guard_policy *p, const struct rules *rules,
            const struct vt_target *session, const char *sql, size_t n, const struct sql_stmt *st,
            const struct route_result *res, struct guard_decision *out)
{
	guard_check_lex(p, rules, session, sql, n, 0, st, res, out);
}
