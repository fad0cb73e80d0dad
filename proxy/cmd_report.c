/* proxy/cmd_report.c: `routetrace report TRACE.jsonl [--json]`: what moved, when, and
 * what still goes to the old keyspace, read back from a trace (inline or capture).
 * Streams the file line by line; memory grows with the number of distinct
 * table/tablet-type/digest keys, not with the trace's length. */
#include "proxy/cmd_report.h"

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

struct report {
	json_t *changes;   /* [{ts, generation, summary[], moved[]}] */
	json_t *routes;    /* "table|tt|class|ks" -> {count, first, last} */
	json_t *named;     /* "named|reached|digest" -> {count, last, sql, clients{}} */
	json_t *guard;     /* "verdict|reason" -> count */
	json_t *sources;   /* table -> source keyspace of its workflow (last seen) */
	json_t *after;     /* "table|tt|ks" -> count, since the last rules change */
	uint64_t records, statements, bad_lines;
	char first_ts[40], last_ts[40];
};

static void
bump(json_t *obj, const char *key, const char *ts, json_t *extra)
{
	json_t *e = json_object_get(obj, key);

	if (e == NULL) {
		e = json_pack("{s:i,s:s}", "count", 0, "first", ts ? ts : "");
		json_object_set_new(obj, key, e);
	}
	json_object_set_new(e, "count", json_integer(json_integer_value(json_object_get(e, "count")) + 1));
	json_object_set_new(e, "last", json_string(ts ? ts : ""));
	if (extra != NULL) {
		json_object_update_missing(e, extra);
		json_decref(extra);
	}
}

static const char *
sget(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "";
}

static void
report_rules_changed(struct report *r, json_t *rec)
{
	size_t i;
	json_t *w;

	json_t *summary = json_object_get(rec, "summary"), *moved = json_object_get(rec, "moved");

	json_array_append_new(r->changes,
			      json_pack("{s:s,s:O,s:O,s:O}", "ts", sget(rec, "ts"), "generation",
					json_object_get(rec, "generation"), "summary",
					summary ? summary : json_null(), "moved",
					moved ? moved : json_null()));
	json_array_foreach(json_object_get(rec, "workflows"), i, w)
	{
		const char *src = sget(w, "source");
		if (src[0]) {
			json_object_set_new(r->sources, sget(w, "table"), json_string(src));
		}
	}
	json_object_clear(r->after);
}

static void
report_statement(struct report *r, json_t *rec)
{
	const char *ts = sget(rec, "ts"), *tt = sget(rec, "tablet_type"), *cls = sget(rec, "class");
	char key[1024];
	size_t i;
	json_t *t;

	r->statements++;
	json_array_foreach(json_object_get(rec, "tables"), i, t)
	{
		const char *reached = sget(t, "reached");
		const char *dot = strrchr(reached, '.');
		const char *table = dot ? dot + 1 : sget(t, "named");
		snprintf(key, sizeof(key), "%s|%s|%s|%.*s", table, tt, cls,
			 (int)(dot ? dot - reached : 0), reached);
		bump(r->routes, key, ts, NULL);
		snprintf(key, sizeof(key), "%s|%s|%.*s", table, tt, (int)(dot ? dot - reached : 0),
			 reached);
		bump(r->after, key, ts, NULL);
		if (json_is_true(json_object_get(t, "redirected")) && strchr(sget(t, "named"), '.')) {
			snprintf(key, sizeof(key), "%s|%s|%s", sget(t, "named"), reached,
				 sget(rec, "digest_hash"));
			bump(r->named, key, ts, json_pack("{s:s,s:s}", "digest", sget(rec, "digest"),
							   "client", sget(rec, "client")));
		}
	}
	const char *verdict = sget(rec, "verdict");
	if (strcmp(verdict, "blocked") == 0 || strcmp(verdict, "would_block") == 0) {
		snprintf(key, sizeof(key), "%s|%s", verdict,
			 sget(json_object_get(rec, "guard"), "reason"));
		bump(r->guard, key, ts, NULL);
	}
}

static bool
report_read(struct report *r, FILE *f)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;

	while ((n = getline(&line, &cap, f)) > 0) {
		json_error_t e;
		json_t *rec = json_loadb(line, (size_t)n, 0, &e);
		if (!json_is_object(rec)) {
			r->bad_lines++;
			json_decref(rec);
			continue;
		}
		r->records++;
		const char *ts = sget(rec, "ts");
		if (r->first_ts[0] == 0) {
			snprintf(r->first_ts, sizeof(r->first_ts), "%s", ts);
		}
		snprintf(r->last_ts, sizeof(r->last_ts), "%s", ts);
		const char *ev = sget(rec, "event");
		if (strcmp(ev, "rules_changed") == 0) {
			report_rules_changed(r, rec);
		} else if (ev[0] == 0 && json_object_get(rec, "class") != NULL) {
			report_statement(r, rec);
		}
		json_decref(rec);
	}
	free(line);
	return true;
}

static void
print_text(struct report *r, FILE *out)
{
	size_t i;
	json_t *c, *e;
	const char *k;

	fprintf(out, "%llu records, %llu statements, %s .. %s%s\n",
		(unsigned long long)r->records, (unsigned long long)r->statements, r->first_ts,
		r->last_ts, r->bad_lines ? " (some lines were not JSON)" : "");
	fprintf(out, "\nRouting rules changes (what moved, when):\n");
	json_array_foreach(r->changes, i, c)
	{
		size_t j;
		json_t *s;
		fprintf(out, "  %s  generation %lld\n", sget(c, "ts"),
			(long long)json_integer_value(json_object_get(c, "generation")));
		json_array_foreach(json_object_get(c, "summary"), j, s)
		{
			fprintf(out, "      %s\n", json_string_value(s));
		}
		json_array_foreach(json_object_get(c, "moved"), j, s)
		{
			fprintf(out, "      moved: %s\n", json_string_value(s));
		}
	}
	fprintf(out, "\nWhere statements went (table tablet_type class -> keyspace: count):\n");
	json_object_foreach(r->routes, k, e)
	{
		fprintf(out, "  %-60s %lld\n", k, (long long)json_integer_value(json_object_get(e, "count")));
	}
	fprintf(out, "\nSince the last rules change, still reaching a workflow's source keyspace:\n");
	bool any = false;
	json_object_foreach(r->after, k, e)
	{
		char table[256], tt[64], ks[256];
		if (sscanf(k, "%255[^|]|%63[^|]|%255s", table, tt, ks) != 3) {
			continue;
		}
		const char *src = json_string_value(json_object_get(r->sources, table));
		if (src != NULL && strcmp(src, ks) == 0) {
			fprintf(out, "  %s@%s -> %s: %lld statements\n", table, tt, ks,
				(long long)json_integer_value(json_object_get(e, "count")));
			any = true;
		}
	}
	if (!any) {
		fprintf(out, "  none\n");
	}
	fprintf(out, "\nStatements naming a keyspace they do not reach (break when rules are removed):\n");
	json_object_foreach(r->named, k, e)
	{
		fprintf(out, "  %s  x%lld  last %s  client %s\n      %s\n", k,
			(long long)json_integer_value(json_object_get(e, "count")), sget(e, "last"),
			sget(e, "client"), sget(e, "digest"));
	}
	if (json_object_size(r->named) == 0) {
		fprintf(out, "  none\n");
	}
	fprintf(out, "\nDDL guard:\n");
	json_object_foreach(r->guard, k, e)
	{
		fprintf(out, "  x%lld %s\n", (long long)json_integer_value(json_object_get(e, "count")), k);
	}
	if (json_object_size(r->guard) == 0) {
		fprintf(out, "  nothing blocked\n");
	}
}

static void
report_usage(FILE *out)
{
	fprintf(out, "usage: routetrace report [--json] TRACE.jsonl|-\n"
		     "  what moved and when (rules changes), where statements went per table and\n"
		     "  tablet type, what still reaches a workflow's source keyspace, statements that\n"
		     "  name a keyspace they do not reach, and the DDL guard's decisions.\n");
}

int
cmd_report(int argc, char **argv)
{
	static const struct option opts[] = {
		{"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	bool as_json = false;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "jh", opts, NULL)) != -1) {
		if (c == 'j') {
			as_json = true;
		} else {
			report_usage(c == 'h' ? stdout : stderr);
			return c == 'h' ? 0 : 2;
		}
	}
	if (optind != argc - 1) {
		report_usage(stderr);
		return 2;
	}
	const char *path = argv[optind];
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
	if (f == NULL) {
		fprintf(stderr, "routetrace report: %s: cannot open\n", path);
		return 1;
	}
	struct report r = {.changes = json_array(), .routes = json_object(), .named = json_object(),
			   .guard = json_object(), .sources = json_object(), .after = json_object()};
	report_read(&r, f);
	if (f != stdin) {
		fclose(f);
	}
	if (as_json) {
		json_t *j = json_pack("{s:I,s:I,s:O,s:O,s:O,s:O,s:O}", "records", (json_int_t)r.records,
				      "statements", (json_int_t)r.statements, "rules_changes",
				      r.changes, "routes", r.routes, "named_not_reached", r.named,
				      "guard", r.guard, "since_last_change", r.after);
		json_dumpf(j, stdout, JSON_INDENT(1) | JSON_SORT_KEYS);
		fputc('\n', stdout);
		json_decref(j);
	} else {
		print_text(&r, stdout);
	}
	json_decref(r.changes);
	json_decref(r.routes);
	json_decref(r.named);
	json_decref(r.guard);
	json_decref(r.sources);
	json_decref(r.after);
	return 0;
}
