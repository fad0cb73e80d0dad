/* router/rules.c: loading the routing model into an immutable snapshot.
 *
 * Everything lives in one arena plus a few arrays; lookups go through open-addressing
 * string hash maps, so building is O(n) and every lookup O(1). */
#include "router/rules.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

/* --- arena ------------------------------------------------------------------------ */

struct arena_blk {
	struct arena_blk *next;
	size_t used, cap;
	char data[];
};

struct arena {
	struct arena_blk *head;
};

static char *
arena_dup(struct arena *a, const char *s, size_t n)
{
	struct arena_blk *b = a->head;
	char *p;

	if (b == NULL || b->cap - b->used < n + 1) {
		size_t cap = n + 1 > 65536 ? n + 1 : 65536;

		b = malloc(sizeof(*b) + cap);
		if (b == NULL)
			return NULL;
		b->next = a->head;
		b->used = 0;
		b->cap = cap;
		a->head = b;
	}
	p = b->data + b->used;
	memcpy(p, s, n);
	p[n] = '\0';
	b->used += n + 1;
	return p;
}

static void
arena_free(struct arena *a)
{
	while (a->head != NULL) {
		struct arena_blk *b = a->head;

		a->head = b->next;
		free(b);
	}
}

/* --- string map --------------------------------------------------------------------- */

struct smap_ent {
	const char *k; /* NULL: empty slot */
	uint32_t klen;
	int32_t val;
	uint64_t h;
};

struct smap {
	struct smap_ent *slots;
	size_t mask, count;
};

static uint64_t
hash_bytes(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ULL;
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ULL;
	}
	return h;
}

/* The maps' own hash, eight bytes a step: every statement looks its tables up here
 * (~110k lookups on the bench capture), and byte-wise FNV-1a was most of each lookup.
 * hash_bytes stays the snapshot's content hash (it shows in rules_changed records). */
static uint64_t
smap_hash(const char *s, size_t n)
{
	const uint64_t k = 0x9e3779b97f4a7c15ULL;
	uint64_t h = (uint64_t)n * k, w;
	size_t i = 0, j;

	for (; i + 8 <= n; i += 8) {
		memcpy(&w, s + i, sizeof(w));
		h = (h ^ w) * k;
		h ^= h >> 31;
	}
	if (i < n) {
		for (w = 0, j = 0; i + j < n; j++)
			w |= (uint64_t)(unsigned char)s[i + j] << (8 * j);
		h = (h ^ w) * k;
	}
	/* the slot is the low bits: fold the high ones (where the products put the mixing) down */
	h ^= h >> 32;
	h *= k;
	return h ^ (h >> 29);
}

static bool
smap_grow(struct smap *m)
{
	size_t ncap = m->slots ? (m->mask + 1) * 2 : 16, i;
	struct smap_ent *ns = calloc(ncap, sizeof(*ns));

	if (ns == NULL)
		return false;
	for (i = 0; m->slots && i <= m->mask; i++) {
		size_t j;

		if (m->slots[i].k == NULL)
			continue;
		for (j = m->slots[i].h & (ncap - 1); ns[j].k != NULL; j = (j + 1) & (ncap - 1))
			;
		ns[j] = m->slots[i];
	}
	free(m->slots);
	m->slots = ns;
	m->mask = ncap - 1;
	return true;
}

static struct smap_ent *
smap_find(const struct smap *m, const char *k, size_t n)
{
	uint64_t h;
	size_t j;

	if (m->slots == NULL || n > UINT32_MAX)
		return NULL;
	h = smap_hash(k, n);
	for (j = h & m->mask; m->slots[j].k != NULL; j = (j + 1) & m->mask) {
		struct smap_ent *e = &m->slots[j];

		if (e->h == h && e->klen == n && memcmp(e->k, k, n) == 0)
			return e;
	}
	return NULL;
}

/* Inserts or overwrites k (which must outlive the map). */
static bool
smap_put(struct smap *m, const char *k, size_t n, int32_t val)
{
	struct smap_ent *e = smap_find(m, k, n);
	uint64_t h;
	size_t j;

	if (e != NULL) {
		e->val = val;
		return true;
	}
	if ((m->count + 1) * 4 > (m->slots ? m->mask + 1 : 0) * 3 && !smap_grow(m))
		return false;
	h = smap_hash(k, n);
	for (j = h & m->mask; m->slots[j].k != NULL; j = (j + 1) & m->mask)
		;
	m->slots[j].k = k;
	m->slots[j].klen = (uint32_t)n;
	m->slots[j].val = val;
	m->slots[j].h = h;
	m->count++;
	return true;
}

/* --- the snapshot ------------------------------------------------------------------ */

struct tbl_ent {
	const char *name;
	const char *source_ks; /* reference table's source keyspace, or NULL */
};

struct ks_ent {
	const char *name;
	bool sharded;
	bool explicit_routing;
	struct tbl_ent *tables;
	size_t ntables;
	struct smap tmap;
};

struct rule_ent {
	const char *key;
	enum rule_kind kind;
	int ks;
	const char *table;
	const char *error;
};

struct pair_ent {
	const char *key, *to;
};

struct rules {
	atomic_uint refs;
	uint64_t generation, hash;
	enum rules_format fmt;
	struct arena arena;
	struct ks_ent *ks;
	size_t nks;
	struct smap ks_map;
	struct rule_ent *rules;
	size_t nrules, caprules;
	struct smap rule_map;
	struct pair_ent *ksr, *shr;
	size_t nksr, nshr;
	struct smap ksr_map, shr_map, global;
	int first_ks, any_ks;
};

static atomic_uint_fast64_t generation_counter;

struct loadctx {
	struct rules *r;
	const char *name; /* file label for messages */
	char *err;
	size_t errlen;
	bool failed;
};

/* Records the first failure as "<file>: <a><b><what>" (a/b: the JSON path). */
static bool
fail3(struct loadctx *c, const char *a, const char *b, const char *what)
{
	if (!c->failed)
		snprintf(c->err, c->errlen, "%s: %s%s%s", c->name, a, b, what);
	c->failed = true;
	return false;
}

static const char *
dup_str(struct loadctx *c, const char *s, size_t n)
{
	const char *p = arena_dup(&c->r->arena, s, n);

	if (p == NULL)
		fail3(c, "(load)", "", ": " "out of memory");
	return p;
}

/* --- keyspaces --------------------------------------------------------------------- */

static int
ks_cmp(const void *a, const void *b)
{
	return strcmp(((const struct ks_ent *)a)->name, ((const struct ks_ent *)b)->name);
}

static bool
load_tables(struct loadctx *c, struct ks_ent *k, json_t *tables)
{
	const char *tname;
	json_t *tv;
	size_t i = 0;

	if (tables == NULL || json_is_null(tables))
		return true;
	if (!json_is_object(tables))
		return fail3(c, "keyspaces.", k->name, ".tables: not an object");
	k->tables = calloc(json_object_size(tables) + 1, sizeof(*k->tables));
	if (k->tables == NULL)
		return fail3(c, k->name, "", ": " "out of memory");
	json_object_foreach(tables, tname, tv) {
		struct tbl_ent *t = &k->tables[i];
		json_t *type = json_is_object(tv) ? json_object_get(tv, "type") : NULL;
		json_t *src = json_is_object(tv) ? json_object_get(tv, "source") : NULL;

		t->name = dup_str(c, tname, strlen(tname));
		if (t->name == NULL)
			return false;
		if (json_is_string(type) && strcmp(json_string_value(type), "reference") == 0 &&
		    json_is_string(src)) {
			const char *s = json_string_value(src), *dot = strchr(s, '.');

			if (dot != NULL)
				t->source_ks = dup_str(c, s, (size_t)(dot - s));
		}
		if (!smap_put(&k->tmap, t->name, strlen(t->name), (int32_t)i))
			return fail3(c, k->name, "", ": " "out of memory");
		i++;
	}
	k->ntables = i;
	return true;
}

static bool
load_keyspaces(struct loadctx *c, json_t *kss)
{
	struct rules *r = c->r;
	const char *kname;
	json_t *kv;
	size_t i = 0;

	if (kss == NULL || json_is_null(kss))
		return true;
	if (!json_is_object(kss))
		return fail3(c, "keyspaces", "", ": " "not an object");
	r->ks = calloc(json_object_size(kss) + 1, sizeof(*r->ks));
	if (r->ks == NULL)
		return fail3(c, "keyspaces", "", ": " "out of memory");
	json_object_foreach(kss, kname, kv) {
		if (!json_is_object(kv))
			return fail3(c, "keyspaces.", kname, ": not an object");
		r->ks[i].name = dup_str(c, kname, strlen(kname));
		r->ks[i].sharded = json_is_true(json_object_get(kv, "sharded"));
		r->ks[i].explicit_routing =
		    json_is_true(json_object_get(kv, "require_explicit_routing"));
		r->nks = ++i;
		if (r->ks[i - 1].name == NULL)
			return false;
	}
	qsort(r->ks, r->nks, sizeof(*r->ks), ks_cmp);
	for (i = 0; i < r->nks; i++) {
		if (!smap_put(&r->ks_map, r->ks[i].name, strlen(r->ks[i].name), (int32_t)i))
			return fail3(c, "keyspaces", "", ": " "out of memory");
		if (!load_tables(c, &r->ks[i], json_object_get(kss, r->ks[i].name)
						   ? json_object_get(json_object_get(kss, r->ks[i].name),
								     "tables")
						   : NULL))
			return false;
	}
	return true;
}

/* A reference table in keyspace `in` whose source is keyspace `ks`. */
static bool
referenced_in(const struct rules *r, int in, const char *tname, const char *ks)
{
	struct smap_ent *e = smap_find(&r->ks[in].tmap, tname, strlen(tname));
	const char *src;

	if (e == NULL)
		return false;
	src = r->ks[in].tables[e->val].source_ks;
	return src != NULL && strcmp(src, ks) == 0;
}

/* vtgate buildGlobalTables (ROUTING_SPEC a.4). */
static bool
build_globals(struct loadctx *c)
{
	struct rules *r = c->r;
	size_t i, j;

	for (i = 0; i < r->nks; i++) {
		if (r->ks[i].explicit_routing)
			continue;
		for (j = 0; j < r->ks[i].ntables; j++) {
			const char *t = r->ks[i].tables[j].name;
			struct smap_ent *g = smap_find(&r->global, t, strlen(t));
			int32_t v = (int32_t)i;

			if (g != NULL) {
				if (g->val == RULES_AMBIGUOUS ||
				    referenced_in(r, (int)i, t, r->ks[g->val].name))
					continue;
				if (!referenced_in(r, g->val, t, r->ks[i].name))
					v = RULES_AMBIGUOUS;
			}
			if (!smap_put(&r->global, t, strlen(t), v))
				return fail3(c, "tables", "", ": " "out of memory");
		}
	}
	r->first_ks = r->nks > 0 ? 0 : -1;
	r->any_ks = r->first_ks;
	for (i = 0; i < r->nks; i++) {
		if (r->ks[i].sharded) {
			r->any_ks = (int)i;
			break;
		}
	}
	return true;
}

/* --- table routing rules -------------------------------------------------------------- */

static struct rule_ent *
rule_slot(struct loadctx *c, const char *key, size_t n)
{
	struct rules *r = c->r;
	struct smap_ent *e = smap_find(&r->rule_map, key, n);
	struct rule_ent *re;

	if (e != NULL) {
		re = &r->rules[e->val];
		memset(&re->kind, 0, sizeof(*re) - offsetof(struct rule_ent, kind));
		return re;
	}
	if (r->nrules == r->caprules) {
		size_t ncap = r->caprules ? r->caprules * 2 : 64;
		struct rule_ent *nr = realloc(r->rules, ncap * sizeof(*nr));

		if (nr == NULL)
			return fail3(c, "routing_rules", "", ": " "out of memory"), NULL;
		r->rules = nr;
		r->caprules = ncap;
	}
	re = &r->rules[r->nrules];
	memset(re, 0, sizeof(*re));
	re->key = dup_str(c, key, n);
	if (re->key == NULL || !smap_put(&r->rule_map, re->key, n, (int32_t)r->nrules))
		return fail3(c, "routing_rules", "", ": " "out of memory"), NULL;
	r->nrules++;
	return re;
}

static bool
rule_error(struct loadctx *c, struct rule_ent *re, const char *text)
{
	re->kind = RULE_ERROR;
	re->error = dup_str(c, text, strlen(text));
	return re->error != NULL;
}

/* Parses "ks.table" as vtgate's ParseTable does (identifiers, optional backticks). */
static int
parse_target(const char *s, char *ks, size_t kslen, char *tb, size_t tblen)
{
	const char *dot;
	size_t a, b;

	if (s[0] == '\0' || strchr(s, '`') != NULL) {
		/* backticked targets: accept `ks`.`t` by stripping */
		char tmp[512];
		size_t i, w = 0;

		for (i = 0; s[i] && w + 1 < sizeof(tmp); i++)
			if (s[i] != '`')
				tmp[w++] = s[i];
		tmp[w] = '\0';
		if (w == 0)
			return -1;
		if (s[0] != '\0' && strchr(s, '`') != NULL)
			return parse_target(tmp, ks, kslen, tb, tblen);
		return -1;
	}
	dot = strchr(s, '.');
	if (dot == NULL) {
		snprintf(tb, tblen, "%s", s);
		ks[0] = '\0';
		return 0; /* unqualified */
	}
	if (strchr(dot + 1, '.') != NULL || dot == s || dot[1] == '\0')
		return -1;
	a = (size_t)(dot - s);
	b = strlen(dot + 1);
	if (a >= kslen || b >= tblen)
		return -1;
	memcpy(ks, s, a);
	ks[a] = '\0';
	memcpy(tb, dot + 1, b + 1);
	return 1;
}

/* Resolves a rule target (FindTable: routing rules ignored; unsharded accepts any). */
static bool
rule_target(struct loadctx *c, struct rule_ent *re, const char *target)
{
	struct rules *r = c->r;
	char ks[256], tb[256], msg[700];
	struct smap_ent *e;
	int q = parse_target(target, ks, sizeof(ks), tb, sizeof(tb));

	if (q < 0) {
		snprintf(msg, sizeof(msg), "invalid table name: %s", target);
		return rule_error(c, re, msg);
	}
	if (q == 0) {
		snprintf(msg, sizeof(msg), "table %s must be qualified", target);
		return rule_error(c, re, msg);
	}
	e = smap_find(&r->ks_map, ks, strlen(ks));
	if (e == NULL) {
		snprintf(msg, sizeof(msg), "VT05003: unknown database '%s' in vschema", ks);
		return rule_error(c, re, msg);
	}
	if (r->ks[e->val].sharded && smap_find(&r->ks[e->val].tmap, tb, strlen(tb)) == NULL) {
		snprintf(msg, sizeof(msg), "table %s not found", target);
		return rule_error(c, re, msg);
	}
	re->kind = RULE_TARGET;
	re->ks = e->val;
	re->table = dup_str(c, tb, strlen(tb));
	return re->table != NULL;
}

/* One {from_table, to_tables} entry, vtgate buildRoutingRule semantics (a.3). */
static bool
add_proto_rule(struct loadctx *c, json_t *rule, size_t idx)
{
	json_t *from = json_object_get(rule, "from_table");
	json_t *to = json_object_get(rule, "to_tables");
	char path[64], msg[1024];
	const char *key;
	struct rule_ent *re;
	size_t klen;

	snprintf(path, sizeof(path), "routing_rules.rules[%zu]", idx);
	if (!json_is_string(from))
		return fail3(c, path, "", ": " "from_table is not a string");
	if (to != NULL && !json_is_null(to) && !json_is_array(to))
		return fail3(c, path, "", ": " "to_tables is not an array");
	key = json_string_value(from);
	klen = json_string_length(from);
	if (json_array_size(to) > 1) {
		size_t i, w;

		w = (size_t)snprintf(msg, sizeof(msg), "table %s has more than one target: [", key);
		for (i = 0; i < json_array_size(to) && w < sizeof(msg); i++) {
			json_t *t = json_array_get(to, i);

			w += (size_t)snprintf(msg + w, sizeof(msg) - w, "%s%s", i ? " " : "",
					      json_is_string(t) ? json_string_value(t) : "?");
		}
		if (w < sizeof(msg))
			snprintf(msg + w, sizeof(msg) - w, "]");
		re = rule_slot(c, key, klen);
		return re != NULL && rule_error(c, re, msg);
	}
	if (json_array_size(to) == 0) {
		re = rule_slot(c, key, klen); /* silently replaces any earlier entry */
		if (re != NULL)
			re->kind = RULE_DISABLED;
		return re != NULL;
	}
	if (!json_is_string(json_array_get(to, 0)))
		return fail3(c, path, "", ": " "to_tables[0] is not a string");
	if (smap_find(&c->r->rule_map, key, klen) != NULL) {
		snprintf(msg, sizeof(msg), "duplicate rule for entry %s", key);
		re = rule_slot(c, key, klen);
		return re != NULL && rule_error(c, re, msg);
	}
	re = rule_slot(c, key, klen);
	return re != NULL && rule_target(c, re, json_string_value(json_array_get(to, 0)));
}

static bool
load_proto_rules(struct loadctx *c, json_t *arr)
{
	size_t i;

	for (i = 0; i < json_array_size(arr); i++) {
		json_t *rule = json_array_get(arr, i);

		if (!json_is_object(rule)) {
			char path[64];

			snprintf(path, sizeof(path), "routing_rules.rules[%zu]", i);
			return fail3(c, path, "", ": " "not an object");
		}
		if (!add_proto_rule(c, rule, i))
			return false;
	}
	return true;
}

/* /debug/vschema routing_rules: key -> ["ks.t"] | [] | "error text" (already resolved). */
static bool
load_debug_rules(struct loadctx *c, json_t *obj)
{
	const char *key;
	json_t *v;

	json_object_foreach(obj, key, v) {
		struct rule_ent *re = rule_slot(c, key, strlen(key));

		if (re == NULL)
			return false;
		if (json_is_string(v)) {
			if (!rule_error(c, re, json_string_value(v)))
				return false;
		} else if (json_is_array(v) && json_array_size(v) == 0) {
			re->kind = RULE_DISABLED;
		} else if (json_is_array(v) && json_array_size(v) == 1 &&
			   json_is_string(json_array_get(v, 0))) {
			if (!rule_target(c, re, json_string_value(json_array_get(v, 0))))
				return false;
		} else if (json_is_array(v)) {
			char msg[256];

			snprintf(msg, sizeof(msg), "table %s has more than one target", key);
			if (!rule_error(c, re, msg))
				return false;
		} else {
			return fail3(c, "routing_rules.", key, ": neither an array nor an error string");
		}
	}
	return true;
}

/* --- keyspace and shard routing rules ------------------------------------------------------ */

static bool
add_pair(struct loadctx *c, struct pair_ent **arr, size_t *n, struct smap *m, const char *key,
	 size_t klen, const char *to)
{
	struct pair_ent *na;
	struct smap_ent *e = smap_find(m, key, klen);
	const char *t = dup_str(c, to, strlen(to));

	if (t == NULL)
		return false;
	if (e != NULL) {
		(*arr)[e->val].to = t;
		return true;
	}
	if ((*n & (*n - 1)) == 0 || *n == 0) {
		/* capacity doubles at powers of two: amortised O(1) appends */
		na = realloc(*arr, (*n ? *n * 2 : 8) * sizeof(**arr));
		if (na == NULL)
			return fail3(c, "rules", "", ": " "out of memory");
		*arr = na;
	}
	na = *arr;
	na[*n].key = dup_str(c, key, klen);
	na[*n].to = t;
	if (na[*n].key == NULL || !smap_put(m, na[*n].key, klen, (int32_t)*n))
		return fail3(c, "rules", "", ": " "out of memory");
	(*n)++;
	return true;
}

/* {"rules": [{from_keyspace, to_keyspace[, shard]}]} */
static bool
load_pair_rules(struct loadctx *c, json_t *arr, bool shard, const char *what)
{
	struct rules *r = c->r;
	size_t i;

	for (i = 0; i < json_array_size(arr); i++) {
		json_t *e = json_array_get(arr, i);
		json_t *from = json_object_get(e, "from_keyspace");
		json_t *to = json_object_get(e, "to_keyspace");
		json_t *sh = json_object_get(e, "shard");
		char key[600], path[80];
		int kl;

		snprintf(path, sizeof(path), "%s.rules[%zu]", what, i);
		if (!json_is_string(from) || !json_is_string(to) || (shard && !json_is_string(sh)))
			return fail3(c, path, "", ": " "from_keyspace/to_keyspace/shard missing");
		kl = shard ? snprintf(key, sizeof(key), "%s.%s", json_string_value(from),
				      json_string_value(sh))
			   : snprintf(key, sizeof(key), "%s", json_string_value(from));
		if (kl < 0 || (size_t)kl >= sizeof(key))
			return fail3(c, path, "", ": " "key too long");
		if (!add_pair(c, shard ? &r->shr : &r->ksr, shard ? &r->nshr : &r->nksr,
			      shard ? &r->shr_map : &r->ksr_map, key, (size_t)kl,
			      json_string_value(to)))
			return false;
	}
	return true;
}

/* Debug form: {"from": "to"} or null. */
static bool
load_pair_map(struct loadctx *c, json_t *obj, bool shard, const char *what)
{
	struct rules *r = c->r;
	const char *key;
	json_t *v;

	if (obj == NULL || json_is_null(obj))
		return true;
	if (json_is_object(obj) && json_is_array(json_object_get(obj, "rules")))
		return load_pair_rules(c, json_object_get(obj, "rules"), shard, what);
	if (!json_is_object(obj))
		return fail3(c, what, "", ": " "not an object");
	json_object_foreach(obj, key, v) {
		if (!json_is_string(v))
			return fail3(c, what, "", ": " "value is not a string");
		if (!add_pair(c, shard ? &r->shr : &r->ksr, shard ? &r->nshr : &r->nksr,
			      shard ? &r->shr_map : &r->ksr_map, key, strlen(key),
			      json_string_value(v)))
			return false;
	}
	return true;
}

/* --- content hash ------------------------------------------------------------------------ */

static uint64_t
mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static uint64_t
hash_parts(char tag, const char *a, const char *b, const char *d)
{
	uint64_t h = hash_bytes(&tag, 1);

	h = mix64(h ^ hash_bytes(a ? a : "", a ? strlen(a) : 0));
	h = mix64(h ^ hash_bytes(b ? b : "", b ? strlen(b) : 0));
	h = mix64(h ^ hash_bytes(d ? d : "", d ? strlen(d) : 0));
	return h;
}

/* Sum of per-element hashes: independent of order, equal across formats for the same
 * resolved state. */
static uint64_t
content_hash(const struct rules *r)
{
	uint64_t h = 0;
	size_t i, j;

	for (i = 0; i < r->nks; i++) {
		h += mix64(hash_parts('K', r->ks[i].name, r->ks[i].sharded ? "s" : "u",
				      r->ks[i].explicit_routing ? "x" : ""));
		for (j = 0; j < r->ks[i].ntables; j++)
			h += mix64(hash_parts('T', r->ks[i].name, r->ks[i].tables[j].name, NULL));
	}
	for (i = 0; i < r->nrules; i++) {
		const struct rule_ent *e = &r->rules[i];

		if (e->kind == RULE_TARGET)
			h += mix64(hash_parts('R', e->key, r->ks[e->ks].name, e->table));
		else if (e->kind == RULE_DISABLED)
			h += mix64(hash_parts('D', e->key, NULL, NULL));
		else
			h += mix64(hash_parts('E', e->key, e->error, NULL));
	}
	for (i = 0; i < r->nksr; i++)
		h += mix64(hash_parts('Q', r->ksr[i].key, r->ksr[i].to, NULL));
	for (i = 0; i < r->nshr; i++)
		h += mix64(hash_parts('S', r->shr[i].key, r->shr[i].to, NULL));
	return h;
}

/* --- top level ------------------------------------------------------------------------ */

static json_t *
parse_json(const char *buf, size_t n, const char *name, char *err, size_t errlen)
{
	json_error_t je;
	json_t *root = json_loadb(buf, n, JSON_REJECT_DUPLICATES, &je);

	if (root == NULL) {
		snprintf(err, errlen, "%s:%d:%d (byte %d): %s", name, je.line, je.column,
			 je.position, je.text);
		return NULL;
	}
	if (!json_is_object(root)) {
		snprintf(err, errlen, "%s: top level is not a JSON object", name);
		json_decref(root);
		return NULL;
	}
	return root;
}

/* Which list a {"rules": [...]} file holds, from its first entry. */
enum rulefile_kind { RF_TABLE = 0, RF_KEYSPACE, RF_SHARD };

static enum rulefile_kind
rulefile_kind(json_t *arr)
{
	json_t *e = json_array_get(arr, 0);

	if (json_object_get(e, "from_keyspace") == NULL)
		return RF_TABLE;
	return json_object_get(e, "shard") ? RF_SHARD : RF_KEYSPACE;
}

static bool
load_rules_file(struct loadctx *c, json_t *rf)
{
	json_t *arr = json_object_get(rf, "rules");

	if (!json_is_array(arr))
		return fail3(c, "rules", "", ": " "missing or not an array");
	switch (rulefile_kind(arr)) {
	case RF_KEYSPACE:
		return load_pair_rules(c, arr, false, "keyspace_routing_rules");
	case RF_SHARD:
		return load_pair_rules(c, arr, true, "shard_routing_rules");
	default:
		return load_proto_rules(c, arr);
	}
}

static bool
is_rules_file(json_t *root)
{
	return json_is_array(json_object_get(root, "rules")) &&
	       json_object_get(root, "keyspaces") == NULL;
}

/* Vschema document (SrvVSchema, debug, or a bare keyspace map); rf may replace rules. */
static bool
load_vschema(struct loadctx *c, json_t *v, json_t *rf)
{
	json_t *kss = json_object_get(v, "keyspaces");
	json_t *rr = json_object_get(v, "routing_rules");
	bool debug;

	if (kss == NULL && json_object_get(v, "routing_rules") == NULL)
		kss = v; /* bare keyspace map */
	debug = json_is_object(rr) && json_object_get(rr, "rules") == NULL &&
		json_object_size(rr) > 0;
	debug = debug || json_object_get(v, "mirror_rules") != NULL ||
		(json_is_object(rr) && json_object_size(rr) == 0);
	c->r->fmt = debug ? RULES_FMT_DEBUG_VSCHEMA : RULES_FMT_SRVVSCHEMA;
	if (!load_keyspaces(c, kss))
		return false;
	if (rf != NULL && rulefile_kind(json_object_get(rf, "rules")) == RF_TABLE) {
		if (!load_rules_file(c, rf))
			return false;
	} else if (json_is_object(rr) && json_is_array(json_object_get(rr, "rules"))) {
		c->r->fmt = RULES_FMT_SRVVSCHEMA;
		if (!load_proto_rules(c, json_object_get(rr, "rules")))
			return false;
	} else if (json_is_object(rr)) {
		if (!load_debug_rules(c, rr))
			return false;
	} else if (rr != NULL && !json_is_null(rr)) {
		return fail3(c, "routing_rules", "", ": " "not an object");
	}
	if (rf != NULL && rulefile_kind(json_object_get(rf, "rules")) != RF_TABLE)
		return load_rules_file(c, rf);
	return load_pair_map(c, json_object_get(v, "keyspace_routing_rules"), false,
			     "keyspace_routing_rules") &&
	       load_pair_map(c, json_object_get(v, "shard_routing_rules"), true,
			     "shard_routing_rules");
}

static void
rules_free(struct rules *r)
{
	size_t i;

	if (r == NULL)
		return;
	for (i = 0; i < r->nks; i++) {
		free(r->ks[i].tables);
		free(r->ks[i].tmap.slots);
	}
	free(r->ks);
	free(r->ks_map.slots);
	free(r->rules);
	free(r->rule_map.slots);
	free(r->ksr);
	free(r->shr);
	free(r->ksr_map.slots);
	free(r->shr_map.slots);
	free(r->global.slots);
	arena_free(&r->arena);
	free(r);
}

struct rules *
rules_load_buffer(const char *json, size_t n, const char *name, const char *rules_json,
		  size_t rn, const char *rules_name, char *err, size_t errlen)
{
	struct loadctx c = {0};
	json_t *v = NULL, *rf = NULL;
	struct rules *r = NULL;

	if (json != NULL && (v = parse_json(json, n, name ? name : "vschema", err, errlen)) == NULL)
		return NULL;
	if (rules_json != NULL &&
	    (rf = parse_json(rules_json, rn, rules_name ? rules_name : "rules", err, errlen)) == NULL)
		goto out;
	if (v != NULL && rf == NULL && is_rules_file(v)) {
		rf = v;
		v = NULL;
		name = rules_name ? rules_name : name;
	}
	if (v == NULL && rf == NULL) {
		snprintf(err, errlen, "no vschema or rules given");
		goto out;
	}
	r = calloc(1, sizeof(*r));
	if (r == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	c.r = r;
	c.err = err;
	c.errlen = errlen;
	c.name = v != NULL ? (name ? name : "vschema") : (rules_name ? rules_name : "rules");
	if (v != NULL) {
		if (!load_vschema(&c, v, rf))
			goto fail;
	} else {
		r->fmt = RULES_FMT_RULES_ONLY;
		c.name = rules_name ? rules_name : (name ? name : "rules");
		if (!load_rules_file(&c, rf))
			goto fail;
	}
	if (!build_globals(&c))
		goto fail;
	atomic_init(&r->refs, 1);
	r->generation = atomic_fetch_add(&generation_counter, 1) + 1;
	r->hash = content_hash(r);
	goto out;
fail:
	rules_free(r);
	r = NULL;
out:
	json_decref(v);
	json_decref(rf);
	return r;
}

static char *
read_file(const char *path, size_t *n, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t cap = 0, len = 0;

	if (f == NULL) {
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return NULL;
	}
	for (;;) {
		size_t got;

		if (len == cap) {
			char *nb = realloc(buf, cap ? cap * 2 : 65536);

			if (nb == NULL) {
				snprintf(err, errlen, "%s: out of memory", path);
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = nb;
			cap = cap ? cap * 2 : 65536;
		}
		got = fread(buf + len, 1, cap - len, f);
		len += got;
		if (got == 0)
			break;
	}
	if (ferror(f)) {
		snprintf(err, errlen, "%s: read error", path);
		free(buf);
		fclose(f);
		return NULL;
	}
	fclose(f);
	*n = len;
	return buf;
}

struct rules *
rules_load_file(const char *vschema_path, const char *rules_path, char *err, size_t errlen)
{
	char *a = NULL, *b = NULL;
	size_t an = 0, bn = 0;
	struct rules *r = NULL;

	if (vschema_path != NULL && (a = read_file(vschema_path, &an, err, errlen)) == NULL)
		return NULL;
	if (rules_path != NULL && (b = read_file(rules_path, &bn, err, errlen)) == NULL)
		goto out;
	r = rules_load_buffer(a, an, vschema_path, b, bn, rules_path, err, errlen);
out:
	free(a);
	free(b);
	return r;
}

struct rules *
rules_ref(struct rules *r)
{
	if (r != NULL)
		atomic_fetch_add(&r->refs, 1);
	return r;
}

void
rules_unref(struct rules *r)
{
	if (r != NULL && atomic_fetch_sub(&r->refs, 1) == 1)
		rules_free(r);
}

uint64_t
rules_generation(const struct rules *r)
{
	return r->generation;
}

uint64_t
rules_hash(const struct rules *r)
{
	return r->hash;
}

enum rules_format
rules_format(const struct rules *r)
{
	return r->fmt;
}

const char *
rules_format_name(enum rules_format f)
{
	switch (f) {
	case RULES_FMT_SRVVSCHEMA: return "srvvschema";
	case RULES_FMT_DEBUG_VSCHEMA: return "debug-vschema";
	case RULES_FMT_RULES_ONLY: return "rules-only";
	default: return "?";
	}
}

size_t
rules_count(const struct rules *r)
{
	return r->nrules;
}

size_t
rules_keyspace_rule_count(const struct rules *r)
{
	return r->nksr;
}

size_t
rules_shard_rule_count(const struct rules *r)
{
	return r->nshr;
}

size_t
rules_keyspace_count(const struct rules *r)
{
	return r->nks;
}

int
rules_keyspace_find(const struct rules *r, const char *name, size_t n)
{
	struct smap_ent *e = smap_find(&r->ks_map, name, n);

	return e ? e->val : -1;
}

const char *
rules_keyspace_name(const struct rules *r, int ks)
{
	return ks >= 0 && (size_t)ks < r->nks ? r->ks[ks].name : "";
}

bool
rules_keyspace_sharded(const struct rules *r, int ks)
{
	return ks >= 0 && (size_t)ks < r->nks && r->ks[ks].sharded;
}

int
rules_first_keyspace(const struct rules *r)
{
	return r->first_ks;
}

int
rules_any_keyspace(const struct rules *r)
{
	return r->any_ks;
}

bool
rules_table_declared(const struct rules *r, int ks, const char *name, size_t n)
{
	return ks >= 0 && (size_t)ks < r->nks && smap_find(&r->ks[ks].tmap, name, n) != NULL;
}

int
rules_global_table(const struct rules *r, const char *name, size_t n)
{
	struct smap_ent *e = smap_find(&r->global, name, n);

	return e ? e->val : -1;
}

static void
view_of(const struct rule_ent *e, struct rule_view *out)
{
	out->key = e->key;
	out->kind = e->kind;
	out->ks = e->ks;
	out->table = e->table;
	out->error = e->error;
}

bool
rules_table_rule(const struct rules *r, const char *key, size_t n, struct rule_view *out)
{
	struct smap_ent *e = smap_find(&r->rule_map, key, n);

	if (e == NULL)
		return false;
	view_of(&r->rules[e->val], out);
	return true;
}

bool
rules_table_rule_at(const struct rules *r, size_t i, struct rule_view *out)
{
	if (i >= r->nrules)
		return false;
	view_of(&r->rules[i], out);
	return true;
}

bool
rules_keyspace_rule(const struct rules *r, const char *key, size_t n, const char **to)
{
	struct smap_ent *e = smap_find(&r->ksr_map, key, n);

	if (e == NULL)
		return false;
	*to = r->ksr[e->val].to;
	return true;
}

bool
rules_any_keyspace_rules(const struct rules *r)
{
	return r->nksr > 0;
}

bool
rules_shard_rule(const struct rules *r, const char *key, size_t n, const char **to)
{
	struct smap_ent *e = smap_find(&r->shr_map, key, n);

	if (e == NULL)
		return false;
	*to = r->shr[e->val].to;
	return true;
}
