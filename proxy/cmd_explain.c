/* proxy/cmd_explain.c: `routetrace explain`: classify and resolve SQL against a rules
 * snapshot, print the decision per statement (human-readable, one JSON object, or JSON
 * lines in --batch mode).  A USE, BEGIN, COMMIT/ROLLBACK or DDL inside the SQL updates
 * the session target / transaction state for the statements after it, as vtgate's
 * session would. */
#include "proxy/cmd_explain.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "router/classify.h"
#include "router/guard.h"
#include "router/resolve.h"
#include "router/rules.h"
#include "router/sql_lex.h"
#include "router/target.h"

#define XOPTS_MAX_ALLOW 64

struct xopts {
	const char *vschema, *rules, *target;
	bool in_tx, json, batch;
	unsigned lex_flags;
	enum guard_mode guard;
	const char *allow[XOPTS_MAX_ALLOW];
	size_t nallow;
};

/* The guard's verdict for one statement, and whether any statement was denied (the
 * exit status tells a script that checks a cleanup plan). */
struct xguard {
	const struct guard_policy *policy;
	bool denied;
};

struct xsession {
	struct vt_target target;
	bool in_tx;
};

static const struct {
	uint32_t bit;
	const char *name;
} flag_names[] = {
    {ROUTE_T_RULE, "rule"},
    {ROUTE_T_KS_RULE, "keyspace_rule"},
    {ROUTE_T_REDIRECTED, "redirected"},
    {ROUTE_T_DISABLED, "disabled"},
    {ROUTE_T_AMBIGUOUS, "ambiguous"},
    {ROUTE_T_UNKNOWN_KEYSPACE, "unknown_keyspace"},
    {ROUTE_T_UNKNOWN_TABLE, "unknown_table"},
    {ROUTE_T_RULE_ERROR, "rule_error"},
    {ROUTE_T_SHARD_TARGETED, "shard_targeted"},
    {ROUTE_T_SYSTEM_SCHEMA, "system_schema"},
    {ROUTE_T_DUAL, "dual"},
    {ROUTE_T_DDL_FALLBACK, "ddl_fallback"},
    {ROUTE_T_NEW_NAME, "new_name"},
    {ROUTE_T_SYNTHETIC, "synthetic"},
    {ROUTE_T_ANY_KEYSPACE, "any_keyspace"},
    {ROUTE_T_FOREIGN_QUALIFIER, "foreign_qualifier"},
    {ROUTE_T_QUALIFIER_TARGET, "qualifier_target"},
    {ROUTE_T_ERROR, "error"},
};

static void
usage(FILE *f)
{
	fprintf(f,
		"usage: routetrace explain --vschema FILE [--rules FILE] [--target TARGET]\n"
		"                          [--in-transaction] [--json] [--ansi-quotes] \"SQL\"\n"
		"       routetrace explain --vschema FILE [--rules FILE] --batch < lines.jsonl\n"
		"  --vschema FILE     SrvVSchema, vtgate /debug/vschema, or GetRoutingRules JSON\n"
		"  --rules FILE       GetRoutingRules (or keyspace/shard rules) JSON; replaces\n"
		"                     that kind of rules from --vschema\n"
		"  --target TARGET    session target: ks, ks@replica, @rdonly, ks:-80 ...\n"
		"  --in-transaction   the session has an open transaction\n"
		"  --guard MODE       DDL guard verdicts: block (default), warn, off; in block\n"
		"                     mode the exit status is 3 if any statement would be blocked\n"
		"  --allow ENTRY      guard allow-list entry, ks or ks.table (repeatable)\n"
		"  --json             one JSON object instead of text\n"
		"  --batch            JSON lines {\"sql\",\"target\",\"in_transaction\"} on stdin,\n"
		"                     one JSON line out per line in\n");
}

/* Session changes a statement makes for the ones after it. */
static void
session_follow(struct xsession *s, const struct sql_stmt *st, const struct route_result *res)
{
	if (st->cls == SQL_CLASS_USE && res->error == NULL) {
		const char *db = sql_stmt_str(st, st->db);
		struct vt_target nt;
		char err[128];

		if (vt_target_parse(db, strlen(db), VT_TT_PRIMARY, &nt, err, sizeof(err)))
			s->target = nt;
	}
	if (sql_stmt_tx_effect(st) != SQL_TX_NONE) {
		s->in_tx = sql_stmt_tx_effect(st) == SQL_TX_BEGIN;
	}
}

static json_t *
table_json(const struct route_table *t)
{
	char named[600], reached[600];
	json_t *o = json_object(), *fl = json_array();
	size_t i;

	for (i = 0; i < sizeof(flag_names) / sizeof(flag_names[0]); i++)
		if (t->flags & flag_names[i].bit)
			json_array_append_new(fl, json_string(flag_names[i].name));
	json_object_set_new(o, "named", json_string(route_named_str(t, named, sizeof(named))));
	json_object_set_new(o, "reached",
			    t->reached_ks ? json_string(route_reached_str(t, reached,
									  sizeof(reached)))
					  : json_null());
	json_object_set_new(o, "rule", t->rule ? json_string(t->rule) : json_null());
	json_object_set_new(o, "tablet_type", json_string(vt_tablet_type_name(t->tablet_type)));
	json_object_set_new(o, "redirected", json_boolean(t->flags & ROUTE_T_REDIRECTED));
	json_object_set_new(o, "role", json_string(sql_role_name((enum sql_role)t->role)));
	json_object_set_new(o, "flags", fl);
	if (t->error)
		json_object_set_new(o, "error", json_string(t->error));
	return o;
}

static json_t *
guard_json(const struct guard_decision *gd)
{
	if (gd->verdict == GUARD_ALLOW)
		return json_pack("{s:s}", "verdict", guard_verdict_name(gd->verdict));
	return json_pack("{s:s,s:s,s:i}", "verdict", guard_verdict_name(gd->verdict), "reason",
			 gd->reason, "rule", (int)gd->reason_code);
}

static json_t *
stmt_json(const char *sql, size_t n, const struct sql_stmt *st, const struct route_result *res)
{
	json_t *o = json_object(), *tabs = json_array();
	unsigned i;

	json_object_set_new(o, "sql", json_stringn(sql, n));
	json_object_set_new(o, "class", json_string(sql_class_name((enum sql_class)st->cls)));
	if (st->inner_cls != SQL_CLASS_UNPARSED)
		json_object_set_new(o, "inner_class",
				    json_string(sql_class_name((enum sql_class)st->inner_cls)));
	if (st->flags & SQL_STMT_VEXPLAIN_EXEC)
		json_object_set_new(o, "vexplain_executes", json_true());
	if (st->flags & SQL_STMT_PREPARE_UNKNOWN)
		json_object_set_new(o, "prepare_text_unknown", json_true());
	if (st->reason)
		json_object_set_new(o, "reason", json_string(st->reason));
	json_object_set_new(o, "tablet_type", json_string(vt_tablet_type_name(res->tablet_type)));
	for (i = 0; i < res->ntables; i++)
		json_array_append_new(tabs, table_json(&res->tables[i]));
	json_object_set_new(o, "tables", tabs);
	json_object_set_new(o, "error", res->error ? json_string(res->error) : json_null());
	return o;
}

static void
print_text(FILE *f, unsigned idx, const char *sql, size_t n, const struct sql_stmt *st,
	   const struct route_result *res)
{
	char named[600], reached[600];
	unsigned i;
	size_t k;

	fprintf(f, "statement %u: %.*s\n", idx, (int)n, sql);
	fprintf(f, "  class: %s", sql_class_name((enum sql_class)st->cls));
	if (st->inner_cls != SQL_CLASS_UNPARSED)
		fprintf(f, " (inner: %s)", sql_class_name((enum sql_class)st->inner_cls));
	if (st->flags & SQL_STMT_VEXPLAIN_EXEC)
		fprintf(f, " [VEXPLAIN executes it]");
	if (st->reason)
		fprintf(f, " (%s)", st->reason);
	fprintf(f, "\n  tablet type: %s\n", vt_tablet_type_name(res->tablet_type));
	for (i = 0; i < res->ntables; i++) {
		const struct route_table *t = &res->tables[i];

		fprintf(f, "  %-5s %s -> %s", sql_role_name((enum sql_role)t->role),
			route_named_str(t, named, sizeof(named)),
			t->reached_ks ? route_reached_str(t, reached, sizeof(reached)) : "(error)");
		fprintf(f, "  rule: %s  tablet: %s", t->rule ? t->rule : "-",
			vt_tablet_type_name(t->tablet_type));
		for (k = 0; k < sizeof(flag_names) / sizeof(flag_names[0]); k++)
			if ((t->flags & flag_names[k].bit) && flag_names[k].bit != ROUTE_T_RULE &&
			    flag_names[k].bit != ROUTE_T_ERROR)
				fprintf(f, " [%s]", flag_names[k].name);
		fprintf(f, "\n");
		if (t->error)
			fprintf(f, "        error: %s\n", t->error);
	}
	if (res->error)
		fprintf(f, "  error: %s\n", res->error);
}

static void
print_guard(FILE *f, const struct guard_decision *gd)
{
	if (gd->verdict == GUARD_ALLOW)
		fprintf(f, "  guard: allow\n");
	else
		fprintf(f, "  guard: %s: %s\n", guard_verdict_name(gd->verdict), gd->reason);
}

/* Explains every statement of sql; appends JSON objects to arr when arr != NULL,
 * else prints text. */
static void
explain_sql(const struct rules *r, struct xsession *s, struct xguard *g, unsigned lex_flags,
	    const char *sql, size_t n, json_t *arr)
{
	static struct sql_stmt st;
	static struct route_result res;
	struct guard_decision gd;
	size_t pos = 0, start, len;
	unsigned idx = 0;

	while (sql_split_next(sql, n, &pos, &start, &len)) {
		sql_classify(sql + start, len, lex_flags, &st);
		route_resolve(r, &s->target, s->in_tx, &st, &res);
		guard_check_lex(g->policy, r, &s->target, sql + start, len, lex_flags, &st, &res, &gd);
		g->denied |= gd.verdict == GUARD_DENY;
		if (arr != NULL) {
			json_t *o = stmt_json(sql + start, len, &st, &res);
			json_object_set_new(o, "guard", guard_json(&gd));
			json_array_append_new(arr, o);
		} else {
			print_text(stdout, ++idx, sql + start, len, &st, &res);
			print_guard(stdout, &gd);
		}
		session_follow(s, &st, &res);
	}
}

static bool
session_init(struct xsession *s, const char *target, bool in_tx, char *err, size_t errlen)
{
	s->in_tx = in_tx;
	return vt_target_parse(target ? target : "", target ? strlen(target) : 0, VT_TT_PRIMARY,
			       &s->target, err, errlen);
}

static void
batch_line(const struct rules *r, struct xguard *g, unsigned lex_flags, const char *line,
	   size_t n)
{
	json_error_t je;
	json_t *in = json_loadb(line, n, 0, &je), *out = json_object(), *arr = json_array();
	json_t *sql = json_object_get(in, "sql"), *tg = json_object_get(in, "target");
	struct xsession s;
	char err[256];
	char *text;

	if (in == NULL || !json_is_string(sql) || (tg && !json_is_string(tg) && !json_is_null(tg))) {
		snprintf(err, sizeof(err), "bad input line: %s",
			 in == NULL ? je.text : "need {\"sql\": string, \"target\": string}");
		json_object_set_new(out, "error", json_string(err));
	} else if (!session_init(&s, json_is_string(tg) ? json_string_value(tg) : "",
				 json_is_true(json_object_get(in, "in_transaction")), err,
				 sizeof(err))) {
		json_object_set_new(out, "error", json_string(err));
	} else {
		explain_sql(r, &s, g, lex_flags, json_string_value(sql), json_string_length(sql),
			    arr);
		json_object_set_new(out, "error", json_null());
	}
	json_object_set(out, "statements", arr);
	text = json_dumps(out, JSON_COMPACT | JSON_ENSURE_ASCII);
	if (text != NULL)
		printf("%s\n", text);
	free(text);
	json_decref(arr);
	json_decref(out);
	json_decref(in);
}

static int
run_batch(const struct rules *r, struct xguard *g, unsigned lex_flags)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t got;

	while ((got = getline(&line, &cap, stdin)) >= 0) {
		size_t n = (size_t)got;

		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			n--;
		if (n == 0)
			continue;
		batch_line(r, g, lex_flags, line, n);
		fflush(stdout);
	}
	free(line);
	return 0;
}

static int
parse_args(int argc, char **argv, struct xopts *o, const char **sql)
{
	static const struct option longopts[] = {
	    {"vschema", required_argument, NULL, 'v'}, {"rules", required_argument, NULL, 'r'},
	    {"target", required_argument, NULL, 't'},  {"in-transaction", no_argument, NULL, 'x'},
	    {"json", no_argument, NULL, 'j'},          {"batch", no_argument, NULL, 'b'},
	    {"ansi-quotes", no_argument, NULL, 'a'},   {"help", no_argument, NULL, 'h'},
	    {"guard", required_argument, NULL, 'g'},   {"allow", required_argument, NULL, 'A'},
	    {NULL, 0, NULL, 0}};
	int c;

	memset(o, 0, sizeof(*o));
	o->guard = GUARD_BLOCK;
	optind = 1;
	while ((c = getopt_long(argc, argv, "v:r:t:xjbahg:A:", longopts, NULL)) != -1) {
		switch (c) {
		case 'v': o->vschema = optarg; break;
		case 'r': o->rules = optarg; break;
		case 't': o->target = optarg; break;
		case 'x': o->in_tx = true; break;
		case 'j': o->json = true; break;
		case 'b': o->batch = true; break;
		case 'a': o->lex_flags |= SQL_LEX_ANSI_QUOTES; break;
		case 'g':
			if (!guard_mode_parse(optarg, &o->guard)) {
				fprintf(stderr, "routetrace explain: --guard: block, warn or off\n");
				return 2;
			}
			break;
		case 'A':
			if (o->nallow == XOPTS_MAX_ALLOW) {
				fprintf(stderr, "routetrace explain: too many --allow\n");
				return 2;
			}
			o->allow[o->nallow++] = optarg;
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if ((o->vschema == NULL && o->rules == NULL) || (!o->batch && optind != argc - 1)) {
		usage(stderr);
		return 2;
	}
	*sql = o->batch ? NULL : argv[optind];
	return -1;
}

int
cmd_explain(int argc, char **argv)
{
	struct xopts o;
	const char *sql = NULL;
	char err[RULES_ERRLEN];
	struct rules *r;
	struct xsession s;
	struct xguard g = {0};
	struct guard_policy *gp;
	int rc = parse_args(argc, argv, &o, &sql);

	if (rc >= 0)
		return rc;
	gp = guard_policy_new(o.guard, o.allow, o.nallow, err, sizeof(err));
	if (gp == NULL) {
		fprintf(stderr, "routetrace explain: --allow: %s\n", err);
		return 2;
	}
	g.policy = gp;
	r = rules_load_file(o.vschema, o.rules, err, sizeof(err));
	if (r == NULL) {
		fprintf(stderr, "routetrace explain: %s\n", err);
		guard_policy_free(gp);
		return 1;
	}
	if (o.batch) {
		rc = run_batch(r, &g, o.lex_flags);
	} else if (!session_init(&s, o.target, o.in_tx, err, sizeof(err))) {
		fprintf(stderr, "routetrace explain: bad --target: %s\n", err);
		rc = 2;
	} else if (o.json) {
		json_t *out = json_object(), *arr = json_array();
		char *text;

		explain_sql(r, &s, &g, o.lex_flags, sql, strlen(sql), arr);
		json_object_set_new(out, "rules_generation", json_integer((json_int_t)rules_generation(r)));
		json_object_set_new(out, "rules_format", json_string(rules_format_name(rules_format(r))));
		json_object_set_new(out, "statements", arr);
		text = json_dumps(out, JSON_INDENT(2) | JSON_ENSURE_ASCII);
		if (text != NULL)
			printf("%s\n", text);
		free(text);
		json_decref(out);
		rc = 0;
	} else {
		explain_sql(r, &s, &g, o.lex_flags, sql, strlen(sql), NULL);
		rc = 0;
	}
	if (rc == 0 && !o.batch && g.denied)
		rc = 3; /* a statement would be blocked: a checked cleanup script must not run */
	rules_unref(r);
	guard_policy_free(gp);
	return rc;
}
