/* router/rules.h: the routing model vtgate plans with: table routing rules, keyspace
 * routing rules, shard routing rules and the keyspaces (tables, sharded,
 * require_explicit_routing), loaded with jansson into an IMMUTABLE, refcounted
 * snapshot.  Built like vtgate's vindexes.BuildVSchema: invalid rule targets become
 * per-rule errors with vtgate's text (ROUTING_SPEC a.3); rule order in the input never
 * matters except where vtgate's own order-dependence (duplicates) does.
 *
 * Accepted inputs (format auto-detected):
 *   - SrvVSchema JSON (vtctldclient GetSrvVSchema): keyspaces + routing_rules {rules:[..]},
 *     keyspace_routing_rules, shard_routing_rules;
 *   - vtgate /debug/vschema JSON: rules already resolved (key -> ["ks.t"] | [] | "error");
 *   - a bare GetRoutingRules / GetKeyspaceRoutingRules / GetShardRoutingRules file
 *     ({"rules": [...]}), alone or together with a vschema in one of the forms above
 *     (or a bare {"ks": {"sharded":..,"tables":{..}}} keyspace map), in which case the
 *     rules file replaces that kind of rules.
 *
 * How to use:
 *   char err[RULES_ERRLEN];
 *   struct rules *r = rules_load_file("srvvschema.json", NULL, err, sizeof err);
 *   if (r == NULL) { log err; keep the previous snapshot; }
 *   ... route_resolve(r, ...) ...          (router/resolve.h)
 *   rules_unref(old); current = r;         (in-flight users hold their own rules_ref)
 * A snapshot is never modified after load, so any number of threads may read it. */
#ifndef RT_ROUTER_RULES_H
#define RT_ROUTER_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RULES_ERRLEN 512

struct rules; /* opaque, immutable, refcounted */

enum rules_format {
	RULES_FMT_SRVVSCHEMA = 0, /* SrvVSchema (or a bare keyspace map) */
	RULES_FMT_DEBUG_VSCHEMA,  /* vtgate /debug/vschema */
	RULES_FMT_RULES_ONLY      /* only a GetRoutingRules-style file, no keyspaces */
};

enum rule_kind {
	RULE_TARGET = 0, /* routes to one table: ks (index) + table */
	RULE_DISABLED,   /* empty to_tables: "table X has been disabled" */
	RULE_ERROR       /* build error, surfaced when a query hits the key */
};

/* One table routing rule, borrowed from the snapshot. */
struct rule_view {
	const char *key;   /* from_table as written (the map key) */
	enum rule_kind kind;
	int ks;            /* RULE_TARGET: keyspace index (see rules_keyspace_name) */
	const char *table; /* RULE_TARGET: table name */
	const char *error; /* RULE_ERROR: vtgate's error text */
};

/* Loads a snapshot.  vschema_path may be NULL when rules_path is given and vice versa.
 * On failure returns NULL and writes "<file>:<line>:<col> (byte <pos>): <problem>" or
 * "<file>: <json path>: <problem>" to err.  The caller keeps its previous snapshot. */
struct rules *rules_load_file(const char *vschema_path, const char *rules_path, char *err,
			      size_t errlen);

/* Same from memory.  json[0..n) is one document of any accepted format; rules_json may
 * be NULL (rn 0).  name/rules_name label the inputs in error messages. */
struct rules *rules_load_buffer(const char *json, size_t n, const char *name,
				const char *rules_json, size_t rn, const char *rules_name,
				char *err, size_t errlen);

/* Takes another reference (returns r); rules_unref drops one and frees at zero.  Both
 * accept NULL.  Reference counting is atomic. */
struct rules *rules_ref(struct rules *r);
void rules_unref(struct rules *r);

/* Process-wide increasing load number (1, 2, ...), and a 64-bit content hash that is
 * independent of rule and key order and equal for the same resolved state in any format. */
uint64_t rules_generation(const struct rules *r);
uint64_t rules_hash(const struct rules *r);
enum rules_format rules_format(const struct rules *r);
const char *rules_format_name(enum rules_format f);

/* Sizes. */
size_t rules_count(const struct rules *r);           /* table routing rules */
size_t rules_keyspace_rule_count(const struct rules *r);
size_t rules_shard_rule_count(const struct rules *r);
size_t rules_keyspace_count(const struct rules *r);

/* --- lookups used by the resolver (all O(1) hash lookups, no allocation) ------------ */

/* Keyspaces are indexed 0..count-1 in name order.  -1 if unknown. */
int rules_keyspace_find(const struct rules *r, const char *name, size_t n);
const char *rules_keyspace_name(const struct rules *r, int ks);
bool rules_keyspace_sharded(const struct rules *r, int ks);
/* Alphabetically first keyspace (vschema.FirstKeyspace), -1 if none. */
int rules_first_keyspace(const struct rules *r);
/* AnyKeyspace(): first sharded keyspace by name, else the first keyspace; -1 if none. */
int rules_any_keyspace(const struct rules *r);
/* Is the table declared in the keyspace's vschema (debug form: incl. tracked tables)? */
bool rules_table_declared(const struct rules *r, int ks, const char *name, size_t n);

/* Global (unqualified) table: keyspace index, -1 if not found, -2 if ambiguous. */
#define RULES_AMBIGUOUS (-2)
int rules_global_table(const struct rules *r, const char *name, size_t n);

/* Table routing rule for the exact key, or false. */
bool rules_table_rule(const struct rules *r, const char *key, size_t n, struct rule_view *out);
/* Table routing rule by position 0..rules_count-1 (stable within the snapshot). */
bool rules_table_rule_at(const struct rules *r, size_t i, struct rule_view *out);

/* Keyspace routing rule from_keyspace (with "@tt" suffix if any) -> to_keyspace. */
bool rules_keyspace_rule(const struct rules *r, const char *key, size_t n, const char **to);
bool rules_any_keyspace_rules(const struct rules *r);

/* Shard routing rule "from_ks.shard" -> to_keyspace. */
bool rules_shard_rule(const struct rules *r, const char *key, size_t n, const char **to);

#endif /* RT_ROUTER_RULES_H */
