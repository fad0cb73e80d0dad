/* tests/unit/test_tracer.c: the tracer fed by the real wire decoder, on hand-built
 * conversations, against the MoveTables fixtures: where each statement goes, the guard's
 * verdicts, multi-statement packets with USE, prepared statements, redaction, counters. */
#pragma GCC diagnostic ignored "-Wunused-function"
#include "proxy/tracer.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "proxy/metrics.h"
#include "proxy/trace_sink.h"
#include "router/rules.h"
#include "tests/unit/wire_script.h"

#define FX "tests/fixtures/movetables/"

struct harness {
	char path[64];
	struct trace_sink *sink;
	struct metrics *metrics;
	struct tracer *t;
	struct tracer_conn *tc;
	struct wire_conv *conv;
	json_t *lines; /* records read back */
};

static enum wire_verdict
h_event(void *ctx, const struct wire_event *ev)
{
	struct harness *h = ctx;

	return tracer_conn_event(h->tc, h->conv, ev);
}

static void
h_free(void *ctx, void *user)
{
	(void)ctx;
	tracer_cmd_free(user);
}

static void
h_setup(struct harness *h, const char *state, enum guard_mode mode, bool can_block)
{
	char err[512];
	struct tracer_opts o = {.source = can_block ? "proxy" : "capture", .can_block = can_block,
				.default_tablet_type = VT_TT_PRIMARY};

	memset(h, 0, sizeof(*h));
	snprintf(h->path, sizeof(h->path), "/tmp/rt_tracer_XXXXXX");
	close(mkstemp(h->path));
	h->sink = trace_sink_open(h->path, 1 << 20, err, sizeof(err));
	assert_non_null(h->sink);
	h->metrics = metrics_new(1000);
	h->t = tracer_new(&o, h->sink, h->metrics);
	snprintf(err, sizeof(err), FX "%s.srvvschema.json", state);
	struct rules *r = rules_load_file(err, NULL, err, sizeof(err));
	assert_non_null(r);
	assert_true(tracer_set_rules(h->t, r, 1700000000000000ULL, "file:test"));
	tracer_set_guard(h->t, guard_policy_new(mode, NULL, 0, err, sizeof(err)));
	h->tc = tracer_conn_new(h->t, 7, "10.1.2.3:5555");
	h->conv = wire_conv_new(h_event, h_free, h, NULL);
}

static void
h_run(struct harness *h, struct script *s)
{
	for (int i = 0; i < s->n; i++) {
		size_t off = 0;
		while (off < s->step[i].n) {
			size_t used = 0;
			assert_int_equal(wire_conv_feed(h->conv, s->dir[i], s->step[i].p + off,
							s->step[i].n - off, 1700000000000000ULL + 1000 * (uint64_t)i,
							&used),
					 WIRE_OK);
			off += used;
		}
	}
	trace_sink_flush(h->sink);
	json_decref(h->lines);
	h->lines = json_array();
	FILE *f = fopen(h->path, "r");
	char line[65536];
	while (fgets(line, sizeof(line), f)) {
		json_error_t e;
		json_t *j = json_loads(line, 0, &e);
		if (j == NULL) {
			fail_msg("bad trace line: %s (%s)", line, e.text);
		}
		json_array_append_new(h->lines, j);
	}
	fclose(f);
}

static void
h_teardown(struct harness *h)
{
	wire_conv_free(h->conv);
	tracer_conn_free(h->tc);
	tracer_free(h->t);
	trace_sink_close(h->sink);
	metrics_free(h->metrics);
	json_decref(h->lines);
	unlink(h->path);
}

/* The n-th statement record (events excluded). */
static json_t *
stmt_rec(struct harness *h, unsigned n)
{
	size_t i;
	json_t *j;

	json_array_foreach(h->lines, i, j)
	{
		if (json_object_get(j, "event") == NULL && n-- == 0) {
			return j;
		}
	}
	fail_msg("no statement record %u in %s", n, json_dumps(h->lines, 0));
	return NULL;
}

static const char *
str(json_t *rec, const char *path1, const char *path2)
{
	json_t *v = json_object_get(rec, path1);
	if (path2 != NULL) {
		v = json_object_get(v, path2);
	}
	return json_is_string(v) ? json_string_value(v) : json_is_null(v) ? "null" : "?";
}

static json_t *
table0(json_t *rec)
{
	return json_array_get(json_object_get(rec, "tables"), 0);
}

static void
test_select_and_block_in_created(void **state)
{
	(void)state;
	struct harness h;
	struct script s = {0};

	h_setup(&h, "01-created", GUARD_BLOCK, true);
	sc_handshake(&s, TCAPS, NULL);
	sc_cmd_bytes(&s, WIRE_COM_QUERY, "SELECT * FROM targetkeyspace.t1 WHERE id = 5");
	srv_resultset(&s, false, 1, 3, 0x0002);
	sc_cmd_bytes(&s, WIRE_COM_QUERY, "drop /* x */ TABLE targetkeyspace.t1");
	sc_cmd_bytes(&s, WIRE_COM_QUERY, "DROP TABLE t3");
	srv_ok(&s, 0, 0x0002);
	h_run(&h, &s);

	json_t *r0 = stmt_rec(&h, 0);
	assert_string_equal(str(r0, "class", NULL), "select");
	assert_string_equal(str(table0(r0), "named", NULL), "targetkeyspace.t1");
	assert_string_equal(str(table0(r0), "reached", NULL), "sourcekeyspace.t1");
	assert_string_equal(str(table0(r0), "rule", NULL), "targetkeyspace.t1");
	assert_true(json_is_true(json_object_get(table0(r0), "redirected")));
	assert_string_equal(str(r0, "verdict", NULL), "forwarded");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(r0, "result"), "rows")), 3);
	assert_string_equal(str(r0, "digest", NULL), "SELECT * FROM targetkeyspace.t1 WHERE id = ?");
	assert_string_equal(str(r0, "source", NULL), "proxy");
	assert_string_equal(str(r0, "client", NULL), "10.1.2.3:5555");
	assert_string_equal(str(r0, "user", NULL), "app");
	assert_string_equal(str(r0, "tablet_type", NULL), "PRIMARY");

	json_t *r1 = stmt_rec(&h, 1);
	assert_string_equal(str(r1, "verdict", NULL), "blocked");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(r1, "result"), "error")), 1105);
	assert_non_null(strstr(str(r1, "result", "message"), "sourcekeyspace.t1"));
	assert_non_null(strstr(str(r1, "guard", "reason"), "sourcekeyspace.t1"));
	assert_true(json_is_integer(json_object_get(json_object_get(r1, "guard"), "rule")));
	assert_true(json_is_integer(json_object_get(r1, "latency_us")));
	assert_null(json_object_get(r0, "guard"));
	assert_null(json_object_get(r0, "statement_index"));

	json_t *r2 = stmt_rec(&h, 2);
	assert_string_equal(str(r2, "class", NULL), "drop");
	assert_string_equal(str(r2, "verdict", NULL), "forwarded");

	struct tracer_counts c;
	tracer_get_counts(h.t, &c);
	assert_int_equal(c.statements, 3);
	assert_int_equal(c.blocked, 1);
	assert_int_equal(c.redirected, 2); /* the SELECT and the blocked DROP */
	sc_free(&s);
	h_teardown(&h);
}

/* USE inside a packet changes the target of the statements after it; the whole packet
 * is refused when one statement is. */
static void
test_multi_statement_use_and_packet_block(void **state)
{
	(void)state;
	struct harness h;
	struct script s = {0};

	h_setup(&h, "02-rdonly-switched", GUARD_BLOCK, true);
	sc_handshake(&s, TCAPS, "sourcekeyspace");
	sc_cmd_bytes(&s, WIRE_COM_QUERY, "SELECT 1 FROM t1; USE `sourcekeyspace@rdonly`; SELECT c FROM t1");
	srv_resultset(&s, false, 1, 1, 0x0002 | 0x0008);
	srv_ok(&s, 0, 0x0002 | 0x0008);
	srv_resultset(&s, false, 1, 2, 0x0002);
	sc_cmd_bytes(&s, WIRE_COM_QUERY, "SELECT 1; TRUNCATE sourcekeyspace.t1");
	h_run(&h, &s);

	json_t *a = stmt_rec(&h, 0), *b = stmt_rec(&h, 1), *c = stmt_rec(&h, 2);
	assert_string_equal(str(a, "target", NULL), "sourcekeyspace");
	assert_string_equal(str(table0(a), "reached", NULL), "sourcekeyspace.t1");
	assert_string_equal(str(b, "class", NULL), "use");
	assert_string_equal(str(c, "target", NULL), "sourcekeyspace@rdonly");
	assert_string_equal(str(c, "tablet_type", NULL), "RDONLY");
	assert_string_equal(str(table0(c), "reached", NULL), "targetkeyspace.t1");
	assert_string_equal(str(table0(c), "rule", NULL), "sourcekeyspace.t1@rdonly");
	assert_int_equal(json_integer_value(json_object_get(c, "statement_index")), 2);
	/* the decoder saw the OK of the USE: the session target moved */
	assert_string_equal(wire_conv_target(h.conv), "sourcekeyspace@rdonly");

	json_t *d = stmt_rec(&h, 3), *e = stmt_rec(&h, 4);
	assert_string_equal(str(d, "verdict", NULL), "blocked");
	assert_string_equal(str(e, "verdict", NULL), "blocked");
	assert_non_null(strstr(str(e, "result", "message"), "nothing of this multi-statement packet"));
	sc_free(&s);
	h_teardown(&h);
}

/* One statement shape (literals aside) in changing session states: its cached members
 * follow the target, the tablet type and the rules in force, never carried over from
 * the state they were first made in; counts in results are each record's own. */
static void
test_shape_cache_follows_state(void **state)
{
	(void)state;
	struct harness h;
	struct script s = {0}, s2 = {0};
	char err[512];

	h_setup(&h, "02-rdonly-switched", GUARD_BLOCK, true);
	sc_handshake(&s, TCAPS, "sourcekeyspace");
	sc_cmd_bytes(&s, WIRE_COM_QUERY, "SELECT c FROM t1 WHERE id = 1");
	srv_resultset(&s, false, 1, 1, 0x0002);
	sc_cmd_bytes(&s, WIRE_COM_QUERY, "SELECT c FROM t1 WHERE id = 2");
	srv_resultset(&s, false, 1, 2, 0x0002);
	sc_cmd_bytes(&s, WIRE_COM_QUERY, "USE `sourcekeyspace@rdonly`");
	srv_ok(&s, 0, 0x0002);
	sc_cmd_bytes(&s, WIRE_COM_QUERY, "SELECT c FROM t1 WHERE id = 3");
	srv_resultset(&s, false, 1, 1, 0x0002);
	h_run(&h, &s);

	json_t *a = stmt_rec(&h, 0), *b = stmt_rec(&h, 1), *c = stmt_rec(&h, 3);
	assert_string_equal(str(a, "digest", NULL), str(b, "digest", NULL));
	assert_string_equal(str(b, "sql", NULL), "SELECT c FROM t1 WHERE id = 2");
	assert_string_equal(str(b, "target", NULL), "sourcekeyspace");
	assert_string_equal(str(table0(b), "reached", NULL), "sourcekeyspace.t1");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(a, "result"), "rows")), 1);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(b, "result"), "rows")), 2);
	assert_string_equal(str(c, "digest", NULL), str(a, "digest", NULL));
	assert_string_equal(str(c, "target", NULL), "sourcekeyspace@rdonly");
	assert_string_equal(str(c, "tablet_type", NULL), "RDONLY");
	assert_string_equal(str(table0(c), "reached", NULL), "targetkeyspace.t1");
	assert_string_equal(str(table0(c), "rule", NULL), "sourcekeyspace.t1@rdonly");

	/* ReverseTraffic: the same shape in the same session now reaches the source again */
	struct rules *r = rules_load_file(FX "05-reversed.srvvschema.json", NULL, err, sizeof(err));
	assert_non_null(r);
	assert_true(tracer_set_rules(h.t, r, 1700000000000000ULL, "file:test"));
	sc_cmd_bytes(&s2, WIRE_COM_QUERY, "SELECT c FROM t1 WHERE id = 4");
	srv_resultset(&s2, false, 1, 1, 0x0002);
	h_run(&h, &s2);
	json_t *d = stmt_rec(&h, 4);
	assert_string_equal(str(d, "sql", NULL), "SELECT c FROM t1 WHERE id = 4");
	assert_true(json_integer_value(json_object_get(d, "rules_generation")) >
		    json_integer_value(json_object_get(c, "rules_generation")));
	assert_string_equal(str(table0(d), "reached", NULL), "sourcekeyspace.t1");
	assert_false(json_is_true(json_object_get(table0(d), "redirected")));
	sc_free(&s);
	sc_free(&s2);
	h_teardown(&h);
}

/* Capture cannot block: the same DROP is forwarded and traced would_block; warn mode too. */
static void
test_capture_and_warn_never_block(void **state)
{
	(void)state;
	for (int k = 0; k < 2; k++) {
		struct harness h;
		struct script s = {0};

		h_setup(&h, "04-switched", k ? GUARD_WARN : GUARD_BLOCK, k == 1);
		sc_handshake(&s, TCAPS, NULL);
		sc_cmd_bytes(&s, WIRE_COM_QUERY, "DROP TABLE sourcekeyspace.t1");
		srv_ok(&s, 0, 0x0002);
		h_run(&h, &s);
		json_t *r = stmt_rec(&h, 0);
		assert_string_equal(str(r, "verdict", NULL), "would_block");
		assert_string_equal(str(table0(r), "reached", NULL), "targetkeyspace.t1");
		assert_true(json_is_true(json_object_get(json_object_get(r, "result"), "ok")));
		assert_non_null(json_object_get(r, "guard"));
		sc_free(&s);
		h_teardown(&h);
	}
}

/* COM_STMT_PREPARE's OK for statement id: ncols columns, nparams parameters. */
static void
srv_prepare_ok(struct script *s, uint32_t id, unsigned ncols, unsigned nparams)
{
	struct bb b = {0};

	bb_u8(&b, 0);
	bb_le(&b, id, 4);
	bb_le(&b, ncols, 2);
	bb_le(&b, nparams, 2);
	bb_u8(&b, 0);
	bb_le(&b, 0, 2);
	sc_srv(s, &b);
	bb_free(&b);
	for (unsigned i = 0; i < nparams; i++) {
		srv_coldef(s, "?");
	}
	if (nparams > 0) {
		srv_eof(s, 2);
	}
	for (unsigned i = 0; i < ncols; i++) {
		srv_coldef(s, "c");
	}
	if (ncols > 0) {
		srv_eof(s, 2);
	}
}

/* COM_STMT_EXECUTE of statement id with one LONGLONG parameter. */
static void
sc_execute(struct script *s, uint32_t id, uint64_t param)
{
	struct bb b = {0};

	bb_u8(&b, WIRE_COM_STMT_EXECUTE);
	bb_le(&b, id, 4);
	bb_u8(&b, 0);
	bb_le(&b, 1, 4);
	bb_u8(&b, 0);    /* null bitmap */
	bb_u8(&b, 1);    /* types follow */
	bb_le(&b, 8, 2); /* LONGLONG */
	bb_le(&b, param, 8);
	sc_cmd(s, &b);
	bb_free(&b);
}

/* COM_STMT_PREPARE + EXECUTE are traced with the prepared SQL; SQL-level PREPARE FROM
 * and EXECUTE too; passwords never reach the trace. */
static void
test_prepared_and_redaction(void **state)
{
	(void)state;
	struct harness h;
	struct script s = {0};

	h_setup(&h, "03-replica-switched", GUARD_BLOCK, true);
	sc_handshake(&s, TCAPS, "targetkeyspace@replica");
	sc_cmd_bytes(&s, WIRE_COM_STMT_PREPARE, "SELECT c FROM t2 WHERE id = ?");
	srv_prepare_ok(&s, 1, 1, 1);
	sc_execute(&s, 1, 42);
	srv_ok(&s, 0, 2);
	sc_cmd_bytes(&s, WIRE_COM_QUERY, "CREATE USER bob IDENTIFIED BY 'hunter2'");
	srv_ok(&s, 0, 2);
	sc_cmd_bytes(&s, WIRE_COM_QUERY, "PREPARE s1 FROM 'DELETE FROM t2 WHERE id = \\'a\\''");
	srv_ok(&s, 0, 2);
	sc_cmd_bytes(&s, WIRE_COM_QUERY, "EXECUTE s1");
	srv_ok(&s, 1, 2);
	h_run(&h, &s);

	json_t *p = stmt_rec(&h, 0), *e = stmt_rec(&h, 1), *u = stmt_rec(&h, 2);
	assert_string_equal(str(p, "command", NULL), "prepare");
	assert_string_equal(str(e, "command", NULL), "execute");
	assert_string_equal(str(e, "sql", NULL), "SELECT c FROM t2 WHERE id = ?");
	assert_string_equal(str(e, "tablet_type", NULL), "REPLICA");
	assert_string_equal(str(table0(e), "reached", NULL), "targetkeyspace.t2");
	assert_string_equal(str(u, "sql", NULL), "CREATE USER bob IDENTIFIED BY ?");
	/* SQL-level EXECUTE: the record shows what the client sent and what it ran */
	json_t *x = stmt_rec(&h, 4);
	assert_string_equal(str(x, "sql", NULL), "EXECUTE s1");
	assert_string_equal(str(x, "prepared_sql", NULL), "DELETE FROM t2 WHERE id = 'a'");
	assert_string_equal(str(x, "class", NULL), "delete");
	assert_string_equal(str(table0(x), "reached", NULL), "targetkeyspace.t2");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(x, "result"), "affected")), 1);
	assert_null(json_object_get(stmt_rec(&h, 3), "prepared_sql"));
	char *all = json_dumps(h.lines, 0);
	assert_null(strstr(all, "hunter2"));
	free(all);
	sc_free(&s);
	h_teardown(&h);
}

/* A prepared text's analysis is kept between EXECUTEs: alternating statements keep their
 * own class and tables, and what is reached follows the session's target and the rules
 * in force at each run, never the first run's. */
static void
test_execute_reuses_analysis_not_routing(void **state)
{
	(void)state;
	struct harness h;
	struct script s = {0};

	h_setup(&h, "02-rdonly-switched", GUARD_BLOCK, true);
	sc_handshake(&s, TCAPS, "sourcekeyspace");
	sc_cmd_bytes(&s, WIRE_COM_STMT_PREPARE, "SELECT c FROM t1 WHERE id = ?");
	srv_prepare_ok(&s, 1, 1, 1);
	sc_cmd_bytes(&s, WIRE_COM_STMT_PREPARE, "DELETE FROM t1 WHERE id = ?;");
	srv_prepare_ok(&s, 2, 0, 1);
	for (int round = 0; round < 2; round++) {
		sc_execute(&s, 1, 5);
		srv_resultset(&s, false, 1, 1, 0x0002);
		sc_execute(&s, 2, 6);
		srv_ok(&s, 1, 0x0002);
		if (round == 0) {
			sc_cmd_bytes(&s, WIRE_COM_QUERY, "USE `sourcekeyspace@rdonly`");
			srv_ok(&s, 0, 0x0002);
		}
	}
	h_run(&h, &s);

	/* records: 2 prepares, select, delete, use, select, delete */
	json_t *s1 = stmt_rec(&h, 2), *d1 = stmt_rec(&h, 3), *s2 = stmt_rec(&h, 5),
	       *d2 = stmt_rec(&h, 6);
	assert_string_equal(str(s1, "class", NULL), "select");
	assert_string_equal(str(s2, "class", NULL), "select");
	assert_string_equal(str(d1, "class", NULL), "delete");
	assert_string_equal(str(d2, "class", NULL), "delete");
	assert_string_equal(str(s1, "sql", NULL), "SELECT c FROM t1 WHERE id = ?");
	assert_string_equal(str(s2, "sql", NULL), "SELECT c FROM t1 WHERE id = ?");
	assert_string_equal(str(d2, "sql", NULL), "DELETE FROM t1 WHERE id = ?");
	assert_string_equal(str(s1, "digest", NULL), str(s2, "digest", NULL));
	assert_string_equal(str(s1, "digest_hash", NULL), str(s2, "digest_hash", NULL));
	assert_string_equal(str(table0(s1), "reached", NULL), "sourcekeyspace.t1");
	assert_string_equal(str(s1, "tablet_type", NULL), "PRIMARY");
	/* after USE sourcekeyspace@rdonly, rdonly reads of t1 are switched */
	assert_string_equal(str(table0(s2), "reached", NULL), "targetkeyspace.t1");
	assert_string_equal(str(s2, "tablet_type", NULL), "RDONLY");
	assert_string_equal(str(table0(d1), "role", NULL), "write");
	assert_string_equal(str(table0(d2), "role", NULL), "write");
	assert_string_equal(str(d2, "target", NULL), "sourcekeyspace@rdonly");
	struct tracer_counts c;
	tracer_get_counts(h.t, &c);
	assert_int_equal(c.statements, 7);
	sc_free(&s);
	h_teardown(&h);
}

/* A second session on the harness's tracer, from another client host. */
struct other_conn {
	struct tracer_conn *tc;
	struct wire_conv *conv;
};

static enum wire_verdict
oc_event(void *ctx, const struct wire_event *ev)
{
	struct other_conn *o = ctx;

	return tracer_conn_event(o->tc, o->conv, ev);
}

static double
named_other(struct harness *h, json_t *rec, const char *client)
{
	static const char *const lbl[] = {"table", "named_keyspace", "reached_keyspace", "digest",
					  "client"};
	struct metric_family *f = metrics_family(h->metrics, "routetrace_named_other_keyspace_total",
						 "", METRIC_COUNTER, 5, lbl);
	const char *v[] = {"t1", "sourcekeyspace", "targetkeyspace", str(rec, "digest_hash", NULL),
			   client};
	return metric_get(f, v);
}

static double
stmts_metric(struct harness *h, const char *tt, const char *cls, const char *ks)
{
	static const char *const lbl[] = {"table", "tablet_type", "class", "keyspace"};
	struct metric_family *f = metrics_family(h->metrics, "routetrace_statements_total", "",
						 METRIC_COUNTER, 4, lbl);
	const char *v[] = {"t1", tt, cls, ks};
	return metric_get(f, v);
}

/* A shape's resolution and metric series are kept for the next statement of that shape
 * (route memo): a kept route error comes back with its text, each client host counts
 * into its own series, and a new target or new rules make a new resolution. */
static void
test_route_memo(void **state)
{
	(void)state;
	struct harness h;
	struct script s = {0}, s2 = {0}, s3 = {0};
	char err[512];
	struct other_conn o;

	h_setup(&h, "02-rdonly-switched", GUARD_OFF, true);
	o.tc = tracer_conn_new(h.t, 8, "10.9.9.9:4444");
	o.conv = wire_conv_new(oc_event, h_free, &o, NULL);
	sc_handshake(&s, TCAPS, "sourcekeyspace@replica");
	sc_cmd_bytes(&s, WIRE_COM_QUERY, "DELETE FROM t1 WHERE id = 1");
	srv_err(&s, 1105, "HY000", "no");
	sc_cmd_bytes(&s, WIRE_COM_QUERY, "SELECT c FROM nosuch.t1"); /* another error text */
	srv_err(&s, 1105, "HY000", "no");
	sc_cmd_bytes(&s, WIRE_COM_QUERY, "DELETE FROM t1 WHERE id = 2");
	srv_err(&s, 1105, "HY000", "no");
	sc_cmd_bytes(&s, WIRE_COM_QUERY, "USE `sourcekeyspace@rdonly`");
	srv_ok(&s, 0, 0x0002);
	for (int i = 0; i < 3; i++) {
		sc_cmd_bytes(&s, WIRE_COM_QUERY, "SELECT c FROM sourcekeyspace.t1 WHERE id = 9");
		srv_resultset(&s, false, 1, 1, 0x0002);
	}
	h_run(&h, &s);
	json_t *d1 = stmt_rec(&h, 0), *d2 = stmt_rec(&h, 2), *q3 = stmt_rec(&h, 6);
	assert_non_null(strstr(str(stmt_rec(&h, 1), "route_error", NULL), "VT05003"));
	assert_string_equal(str(d1, "route_error", NULL), str(d2, "route_error", NULL));
	assert_non_null(strstr(str(d2, "route_error", NULL), "VT09002"));
	assert_string_equal(str(table0(d2), "reached", NULL), str(table0(d1), "reached", NULL));
	assert_string_equal(str(table0(q3), "reached", NULL), "targetkeyspace.t1");
	assert_true(stmts_metric(&h, "RDONLY", "select", "targetkeyspace") == 3);
	assert_true(named_other(&h, q3, "10.1.2.3") == 3);

	/* the same shape from another host: its own series, the first one's unchanged */
	sc_handshake(&s2, TCAPS, "sourcekeyspace@rdonly");
	for (int i = 0; i < 2; i++) {
		sc_cmd_bytes(&s2, WIRE_COM_QUERY, "SELECT c FROM sourcekeyspace.t1 WHERE id = 7");
		srv_resultset(&s2, false, 1, 1, 0x0002);
	}
	for (int i = 0; i < s2.n; i++) {
		size_t used = 0;
		assert_int_equal(wire_conv_feed(o.conv, s2.dir[i], s2.step[i].p, s2.step[i].n,
						1700000000000000ULL, &used), WIRE_OK);
		assert_int_equal(used, s2.step[i].n);
	}
	assert_true(named_other(&h, q3, "10.9.9.9") == 2);
	assert_true(named_other(&h, q3, "10.1.2.3") == 3);
	assert_true(stmts_metric(&h, "RDONLY", "select", "targetkeyspace") == 5);

	/* ReverseTraffic: the kept resolution is not used under the new rules */
	struct rules *r = rules_load_file(FX "05-reversed.srvvschema.json", NULL, err, sizeof(err));
	assert_non_null(r);
	assert_true(tracer_set_rules(h.t, r, 1700000000000000ULL, "file:test"));
	sc_cmd_bytes(&s3, WIRE_COM_QUERY, "SELECT c FROM sourcekeyspace.t1 WHERE id = 9");
	srv_resultset(&s3, false, 1, 1, 0x0002);
	h_run(&h, &s3);
	json_t *q4 = stmt_rec(&h, 9); /* 7 and 8: the other session */
	q3 = stmt_rec(&h, 6);         /* h_run read the records anew */
	assert_string_equal(str(table0(q4), "reached", NULL), "sourcekeyspace.t1");
	assert_true(stmts_metric(&h, "RDONLY", "select", "sourcekeyspace") == 1);
	assert_true(stmts_metric(&h, "RDONLY", "select", "targetkeyspace") == 5);
	assert_true(named_other(&h, q3, "10.1.2.3") == 3);

	wire_conv_free(o.conv);
	tracer_conn_free(o.tc);
	sc_free(&s);
	sc_free(&s2);
	sc_free(&s3);
	h_teardown(&h);
}

/* A prepared text's kept resolution brings back its own error text, whatever another
 * statement resolved in between (the guard's reason quotes it). */
static void
test_route_memo_restores_text(void **state)
{
	(void)state;
	struct harness h;
	struct script s = {0};

	h_setup(&h, "02-rdonly-switched", GUARD_WARN, true);
	sc_handshake(&s, TCAPS, "sourcekeyspace");
	sc_cmd_bytes(&s, WIRE_COM_STMT_PREPARE, "DROP TABLE nosuch.t1");
	srv_prepare_ok(&s, 1, 0, 0);
	for (int i = 0; i < 3; i++) {
		sc_execute(&s, 1, 0);
		srv_err(&s, 1105, "HY000", "no");
		char q[64]; /* a new shape each time: resolved, not restored */
		snprintf(q, sizeof(q), "SELECT c FROM other%d.t1", i);
		sc_cmd_bytes(&s, WIRE_COM_QUERY, q);
		srv_err(&s, 1105, "HY000", "no");
	}
	h_run(&h, &s);
	for (unsigned i = 1; i <= 5; i += 2) { /* the prepare, then execute / select pairs */
		json_t *e = stmt_rec(&h, i), *q = stmt_rec(&h, i + 1);
		assert_string_equal(str(e, "verdict", NULL), "would_block");
		assert_non_null(strstr(str(e, "guard", "reason"), "'nosuch'"));
		assert_null(strstr(str(e, "guard", "reason"), "'other"));
		assert_non_null(strstr(str(q, "route_error", NULL), "'other"));
	}
	sc_free(&s);
	h_teardown(&h);
}

/* Shapes are kept by skeleton when the text has one, by digest when not (a comment):
 * either way a statement gets its own text's digest, class and tables. */
static void
test_shapes_by_skeleton_and_digest(void **state)
{
	(void)state;
	static const char *const q[] = {
		"SELECT c FROM t1 WHERE id = 1", "SELECT c FROM t1 WHERE id = 2",
		"SELECT c FROM t1 WHERE id = 'x'", "select c from t1 where id=3 /* no skeleton */",
		"select c from t1 where id=4 /* no skeleton */", "SELECT c FROM t2 WHERE id = 5",
		"DELETE FROM t1 WHERE id = 6", "SELECT c FROM t1 WHERE id = 7",
	};
	struct harness h;
	struct script s = {0};

	h_setup(&h, "02-rdonly-switched", GUARD_BLOCK, true);
	sc_handshake(&s, TCAPS, "sourcekeyspace");
	for (size_t i = 0; i < sizeof(q) / sizeof(q[0]); i++) {
		sc_cmd_bytes(&s, WIRE_COM_QUERY, q[i]);
		if (strncmp(q[i], "DELETE", 6) == 0)
			srv_ok(&s, 1, 0x0002);
		else
			srv_resultset(&s, false, 1, 1, 0x0002);
	}
	h_run(&h, &s);
	for (unsigned i = 0; i < sizeof(q) / sizeof(q[0]); i++) {
		json_t *r = stmt_rec(&h, i);
		bool t2 = i == 5, del = i == 6;
		assert_string_equal(str(r, "sql", NULL), q[i]);
		assert_string_equal(str(r, "digest", NULL), del ? "DELETE FROM t1 WHERE id = ?"
						       : t2 ? "SELECT c FROM t2 WHERE id = ?"
							    : "SELECT c FROM t1 WHERE id = ?");
		assert_string_equal(str(r, "class", NULL), del ? "delete" : "select");
		assert_string_equal(str(table0(r), "named", NULL), t2 ? "sourcekeyspace.t2" : "sourcekeyspace.t1");
		assert_string_equal(str(table0(r), "role", NULL), del ? "write" : "read");
	}
	assert_true(stmts_metric(&h, "PRIMARY", "select", "sourcekeyspace") == 6);
	sc_free(&s);
	h_teardown(&h);
}

/* Runs the statements sql[0..n) (a result set each), in scripts of at most 100. */
static void
run_queries(struct harness *h, char (*sql)[64], unsigned n)
{
	for (unsigned i = 0; i < n; i += 100) {
		struct script s = {0};
		for (unsigned j = i; j < n && j < i + 100; j++) {
			sc_cmd_bytes(&s, WIRE_COM_QUERY, sql[j]);
			srv_resultset(&s, false, 1, 1, 0x0002);
		}
		h_run(h, &s);
		sc_free(&s);
	}
}

/* The shape cache holds as many shapes as it has slots, whatever their hashes (its index
 * is a hash table, not sets of two or four slots, which thrashed on a few dozen shapes
 * whenever several fell into one set), and under a stream of one-off shapes it keeps the
 * ones in use (CLOCK). */
static void
test_analysis_cache_holds_shapes(void **state)
{
	(void)state;
	static char sql[600][64];
	struct harness h;
	struct script s = {0};
	struct tracer_counts c;

	h_setup(&h, "02-rdonly-switched", GUARD_BLOCK, true);
	sc_handshake(&s, TCAPS, "sourcekeyspace");
	h_run(&h, &s);
	sc_free(&s);
	for (unsigned pass = 0; pass < 2; pass++) {
		for (unsigned i = 0; i < 200; i++) {
			snprintf(sql[i], sizeof(sql[i]), "SELECT c FROM t%u WHERE id = %u", i, pass * 1000 + i);
		}
		run_queries(&h, sql, 200);
		tracer_get_counts(h.t, &c);
		assert_int_equal(c.analysis_misses, 200);
		assert_int_equal(c.analysis_hits, pass * 200);
	}
	/* 300 one-off shapes, each followed by one of 20 shapes in turn. */
	for (unsigned i = 0; i < 300; i++) {
		snprintf(sql[2 * i], sizeof(sql[0]), "DELETE FROM u%u WHERE id = %u", i, i);
		snprintf(sql[2 * i + 1], sizeof(sql[0]), "UPDATE h%u SET c = %u WHERE id = 1", i % 20, i);
	}
	run_queries(&h, sql, 600);
	tracer_get_counts(h.t, &c);
	assert_int_equal(c.analysis_misses, 200 + 300 + 20);
	assert_int_equal(c.analysis_hits, 200 + 280);
	json_t *r = stmt_rec(&h, 999); /* the last: 400 before these 600 */
	assert_string_equal(str(r, "digest", NULL), "UPDATE h19 SET c = ? WHERE id = ?");
	h_teardown(&h);
}

/* Statements of one shape share a classification; a keyword used as a table name is
 * upper-cased in the digest, so `data` and `DATA` (two tables) must not share one. */
static void
test_statement_shapes_keep_table_case(void **state)
{
	(void)state;
	struct harness h;
	struct script s = {0};
	static const char *const sql[] = {
		"SELECT c FROM t1 WHERE id = 1", "SELECT c FROM t1 WHERE id = 22",
		"SELECT c FROM data WHERE id = 1", "select c from DATA where id = 2",
		"SELECT c FROM data WHERE id = 3", "SELECT c FROM t2 WHERE id = 4",
	};
	static const char *const named[] = {"t1", "t1", "data", "DATA", "data", "t2"};

	h_setup(&h, "01-created", GUARD_BLOCK, true);
	sc_handshake(&s, TCAPS, "sourcekeyspace");
	for (size_t i = 0; i < sizeof(sql) / sizeof(sql[0]); i++) {
		sc_cmd_bytes(&s, WIRE_COM_QUERY, sql[i]);
		srv_resultset(&s, false, 1, 1, 0x0002);
	}
	h_run(&h, &s);
	for (size_t i = 0; i < sizeof(sql) / sizeof(sql[0]); i++) {
		json_t *r = stmt_rec(&h, i);
		char want[64];
		snprintf(want, sizeof(want), "sourcekeyspace.%s", named[i]);
		assert_string_equal(str(r, "sql", NULL), sql[i]);
		assert_string_equal(str(r, "class", NULL), "select");
		assert_string_equal(str(table0(r), "named", NULL), want);
	}
	assert_string_equal(str(stmt_rec(&h, 2), "digest", NULL),
			    str(stmt_rec(&h, 3), "digest", NULL));
	sc_free(&s);
	h_teardown(&h);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_select_and_block_in_created),
		cmocka_unit_test(test_multi_statement_use_and_packet_block),
		cmocka_unit_test(test_capture_and_warn_never_block),
		cmocka_unit_test(test_prepared_and_redaction),
		cmocka_unit_test(test_shape_cache_follows_state),
		cmocka_unit_test(test_execute_reuses_analysis_not_routing),
		cmocka_unit_test(test_statement_shapes_keep_table_case),
		cmocka_unit_test(test_route_memo),
		cmocka_unit_test(test_route_memo_restores_text),
		cmocka_unit_test(test_shapes_by_skeleton_and_digest),
		cmocka_unit_test(test_analysis_cache_holds_shapes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
