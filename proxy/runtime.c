/* proxy/runtime.c: wiring of metrics, trace sink, tracer, rules mirror and admin pages.
 * The mirror hands bytes to the router's loader here; a snapshot that fails to load is
 * refused and the previous one stays in force. */
#include "proxy/runtime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <jansson.h>

#include "proxy/admin.h"
#include "proxy/clock.h"
#include "proxy/config.h"
#include "proxy/fileio.h"
#include "proxy/log.h"
#include "proxy/loops.h"
#include "proxy/metrics.h"
#include "proxy/mirror.h"
#include "proxy/trace_sink.h"
#include "proxy/tracer.h"
#include "router/rules.h"
#include "router/workflow.h"

#define RUNTIME_DEFAULT_QUEUE (16u << 20)
#define RUNTIME_VSCHEMA_MAX (64u << 20)

struct runtime {
	struct event_base *base;
	char source[16];
	char *rules_spec;
	char *vschema_path;
	struct metrics *metrics;
	struct trace_sink *sink;
	struct tracer *tracer;      /* lane 0's: it also reports rules and mirror events */
	struct loops *loops;        /* the proxy's lanes, NULL in capture mode */
	struct tracer **lane_tracer; /* [0] = tracer; the others follow it by jobs */
	unsigned nlanes;
	struct mirror *mirror;
	struct admin *admin;
	json_t *rules_doc;          /* last accepted rules document, for /rules */
	char rules_origin[256];
	uint64_t rules_loaded_us;
	uint64_t started_us;
	uint64_t sessions_active, sessions_total; /* atomic: every lane counts */
	uint64_t rules_rejected;
	char last_reject[512];
	runtime_refresh_fn refresh;
	void *refresh_ctx;
	struct metric_family *m_sessions, *m_sessions_active, *m_bytes, *m_gen, *m_age,
		*m_mirror_stale, *m_mirror_fail, *m_mirror_fetch, *m_rules_rej, *m_trace,
		*m_tracer, *m_uptime, *m_analysis;
};

static void
runtime_register_metrics(struct runtime *rt)
{
	static const char *const dir_l[] = {"direction"};
	static const char *const kind_l[] = {"kind"};
	static const char *const result_l[] = {"result"};
	static const char *const none[] = {NULL};
	struct metrics *m = rt->metrics;

	rt->m_sessions = metrics_family(m, "routetrace_sessions_total", "Client sessions seen",
					METRIC_COUNTER, 0, none);
	rt->m_sessions_active = metrics_family(m, "routetrace_sessions_active",
					       "Client sessions open now", METRIC_GAUGE, 0, none);
	rt->m_bytes = metrics_family(m, "routetrace_bytes_total",
				     "Bytes relayed (proxy) or reassembled (capture)",
				     METRIC_COUNTER, 1, dir_l);
	rt->m_gen = metrics_family(m, "routetrace_rules_generation",
				   "Generation of the rules snapshot in force (0: none yet)",
				   METRIC_GAUGE, 0, none);
	rt->m_age = metrics_family(m, "routetrace_rules_age_seconds",
				   "Seconds since the snapshot in force was loaded", METRIC_GAUGE, 0,
				   none);
	rt->m_mirror_stale = metrics_family(m, "routetrace_mirror_stale",
					    "1 while the rules source is failing", METRIC_GAUGE, 0,
					    none);
	rt->m_mirror_fail = metrics_family(m, "routetrace_mirror_failures_total",
					   "Failed fetches or rejected rules documents",
					   METRIC_COUNTER, 0, none);
	rt->m_mirror_fetch = metrics_family(m, "routetrace_mirror_fetches_total",
					    "Completed fetches of the rules source", METRIC_COUNTER,
					    0, none);
	rt->m_rules_rej = metrics_family(m, "routetrace_rules_rejected_total",
					 "Rules documents that failed to load (previous kept)",
					 METRIC_COUNTER, 0, none);
	rt->m_trace = metrics_family(m, "routetrace_trace_records_total",
				     "Trace records written or dropped (queue full)", METRIC_COUNTER,
				     1, kind_l);
	rt->m_tracer = metrics_family(m, "routetrace_statements_by_outcome_total",
				      "Statements traced, redirected, blocked, would_block, "
				      "route_error",
				      METRIC_COUNTER, 1, kind_l);
	rt->m_analysis = metrics_family(m, "routetrace_analysis_cache_total",
					"Statements whose classification came from the shape or "
					"prepared-text cache (hit) or was lexed (miss)",
					METRIC_COUNTER, 1, result_l);
	rt->m_uptime = metrics_family(m, "routetrace_uptime_seconds", "Seconds since start",
				      METRIC_GAUGE, 0, none);
}

/* The tracers' counters, summed over the lanes. */
static void
runtime_counts(struct runtime *rt, struct tracer_counts *sum)
{
	tracer_get_counts(rt->tracer, sum);
	for (unsigned i = 1; i < rt->nlanes; i++) {
		struct tracer_counts c;
		tracer_get_counts(rt->lane_tracer[i], &c);
		sum->statements += c.statements;
		sum->redirected += c.redirected;
		sum->blocked += c.blocked;
		sum->would_block += c.would_block;
		sum->route_errors += c.route_errors;
		sum->records += c.records;
		sum->records_dropped += c.records_dropped;
		sum->analysis_hits += c.analysis_hits;
		sum->analysis_misses += c.analysis_misses;
	}
}

/* Gauges computed when a page is rendered. */
static void
runtime_refresh(struct runtime *rt)
{
	static const char *const none[] = {NULL};
	uint64_t now = clock_wall_us();
	struct rules *r = tracer_rules(rt->tracer);
	struct tracer_counts tc;

	metric_set(rt->m_sessions, none, (double)__atomic_load_n(&rt->sessions_total, __ATOMIC_RELAXED));
	metric_set(rt->m_sessions_active, none,
		   (double)__atomic_load_n(&rt->sessions_active, __ATOMIC_RELAXED));
	metric_set(rt->m_gen, none, r ? (double)rules_generation(r) : 0);
	metric_set(rt->m_age, none, r ? (double)(now - rt->rules_loaded_us) / 1e6 : 0);
	metric_set(rt->m_uptime, none, (double)(now - rt->started_us) / 1e6);
	metric_set(rt->m_rules_rej, none, (double)rt->rules_rejected);
	if (rt->mirror != NULL) {
		struct mirror_status st;
		mirror_status(rt->mirror, &st);
		metric_set(rt->m_mirror_stale, none, st.stale ? 1 : 0);
		metric_set(rt->m_mirror_fail, none, (double)st.failures);
		metric_set(rt->m_mirror_fetch, none, (double)st.fetches);
	}
	if (rt->sink != NULL) {
		struct trace_sink_stats ss;
		const char *w[] = {"written"}, *d[] = {"dropped"};
		trace_sink_get_stats(rt->sink, &ss);
		metric_set(rt->m_trace, w, (double)ss.written);
		metric_set(rt->m_trace, d, (double)ss.dropped);
	}
	runtime_counts(rt, &tc);
	const struct {
		const char *k;
		uint64_t v;
	} out[] = {{"statements", tc.statements}, {"redirected", tc.redirected},
		   {"blocked", tc.blocked},       {"would_block", tc.would_block},
		   {"route_error", tc.route_errors}};
	for (size_t i = 0; i < sizeof(out) / sizeof(out[0]); i++) {
		const char *l[] = {out[i].k};
		metric_set(rt->m_tracer, l, (double)out[i].v);
	}
	const char *hit[] = {"hit"}, *miss[] = {"miss"};
	metric_set(rt->m_analysis, hit, (double)tc.analysis_hits);
	metric_set(rt->m_analysis, miss, (double)tc.analysis_misses);
	if (rt->refresh != NULL) {
		rt->refresh(rt->refresh_ctx, rt->metrics);
	}
}

/* ---- the other lanes' tracers ------------------------------------------------------- */

/* Each lane's tracer is touched only on its lane's thread: changes travel as jobs. */
struct lane_update {
	struct tracer *t;
	struct rules *rules;          /* reference, or NULL */
	struct guard_policy *guard;   /* owned, or NULL */
	bool set_opts;
	struct tracer_opts opts;
};

static void
lane_update_job(void *arg)
{
	struct lane_update *u = arg;

	if (u->rules != NULL) {
		tracer_adopt_rules(u->t, u->rules);
	}
	if (u->guard != NULL) {
		tracer_set_guard(u->t, u->guard);
	}
	if (u->set_opts) {
		tracer_set_opts(u->t, &u->opts);
	}
	free(u);
}

static void
lane_post(struct runtime *rt, unsigned lane, struct lane_update *u)
{
	u->t = rt->lane_tracer[lane];
	if (!loops_post(rt->loops, lane, lane_update_job, u)) {
		log_error("out of memory: lane %u keeps its previous rules/guard/options", lane);
		rules_unref(u->rules);
		guard_policy_free(u->guard);
		free(u);
	}
}

static void
runtime_lanes_adopt(struct runtime *rt, struct rules *r)
{
	for (unsigned i = 1; i < rt->nlanes; i++) {
		struct lane_update *u = calloc(1, sizeof(*u));
		if (u == NULL) {
			log_error("out of memory: lane %u keeps its previous rules", i);
			continue;
		}
		u->rules = rules_ref(r);
		lane_post(rt, i, u);
	}
}

/* ---- rules ------------------------------------------------------------------------- */

static bool
runtime_on_bytes(void *ctx, const char *data, size_t len, const char *origin, char *err,
		 size_t errlen)
{
	struct runtime *rt = ctx;
	struct rules *r;

	if (rt->vschema_path != NULL) {
		size_t vn = 0;
		char *vs = fileio_read(rt->vschema_path, RUNTIME_VSCHEMA_MAX, &vn, err, errlen);
		if (vs == NULL) {
			goto rejected;
		}
		r = rules_load_buffer(vs, vn, rt->vschema_path, data, len, origin, err, errlen);
		free(vs);
	} else {
		r = rules_load_buffer(data, len, origin, NULL, 0, NULL, err, errlen);
	}
	if (r == NULL) {
		goto rejected;
	}
	uint64_t now = clock_wall_us();
	uint64_t gen = rules_generation(r);
	if (tracer_set_rules(rt->tracer, r, now, origin)) {
		runtime_lanes_adopt(rt, r);
		log_info("rules: generation %llu from %s (%zu table rules)",
			 (unsigned long long)gen, origin, rules_count(tracer_rules(rt->tracer)));
		rt->rules_loaded_us = now;
	}
	json_decref(rt->rules_doc);
	rt->rules_doc = json_loadb(data, len, 0, NULL);
	snprintf(rt->rules_origin, sizeof(rt->rules_origin), "%s", origin);
	return true;
rejected:
	rt->rules_rejected++;
	snprintf(rt->last_reject, sizeof(rt->last_reject), "%s", err);
	log_warn("rules from %s rejected, previous snapshot stays in force: %s", origin, err);
	return false;
}

static void
runtime_on_mirror_state(void *ctx, const struct mirror_status *st)
{
	struct runtime *rt = ctx;

	if (st->stale) {
		log_warn("rules source %s is failing: %s", st->source, st->last_error);
	} else {
		log_info("rules source %s recovered", st->source);
	}
	tracer_mirror_state(rt->tracer, st->stale, (uint64_t)st->stale_since_us, st->last_error,
			    clock_wall_us());
}

/* ---- admin pages ------------------------------------------------------------------- */

static void
page_metrics(void *ctx, struct admin_req *req)
{
	struct runtime *rt = ctx;

	runtime_refresh(rt);
	admin_req_set_type(req, PROM_CONTENT_TYPE);
	metrics_render_prom(rt->metrics, admin_req_body(req));
}

static json_t *
health_json(struct runtime *rt, bool *ok)
{
	struct rules *r = tracer_rules(rt->tracer);
	json_t *j = json_object();
	const char *status = "ok";

	if (rt->mirror != NULL) {
		struct mirror_status st;
		mirror_status(rt->mirror, &st);
		if (r == NULL) {
			status = "no_rules";
		} else if (st.stale) {
			status = "stale";
		}
		json_object_set_new(j, "mirror", mirror_status_json(rt->mirror));
	}
	*ok = strcmp(status, "ok") == 0;
	json_object_set_new(j, "status", json_string(status));
	json_object_set_new(j, "mode", json_string(rt->source));
	json_object_set_new(j, "rules_generation",
			    json_integer(r ? (json_int_t)rules_generation(r) : 0));
	json_object_set_new(j, "guard", json_string(guard_mode_name(tracer_guard_mode(rt->tracer))));
	json_object_set_new(j, "sessions_active",
			    json_integer((json_int_t)__atomic_load_n(&rt->sessions_active,
								     __ATOMIC_RELAXED)));
	if (rt->rules_rejected > 0) {
		json_object_set_new(j, "last_rules_rejected", json_string(rt->last_reject));
	}
	return j;
}

/* /health answers 200 with the state; ?strict=1 answers 503 unless the rules are
 * current (for a load balancer that should stop sending traffic through a blind proxy). */
static void
page_health(void *ctx, struct admin_req *req)
{
	struct runtime *rt = ctx;
	bool ok;
	const char *strict = admin_req_param(req, "strict");

	json_t *j = health_json(rt, &ok);
	if (!ok && strict != NULL && strcmp(strict, "1") == 0) {
		admin_req_set_status(req, 503);
	}
	admin_reply_json(req, j, JSON_INDENT(1));
}

static void
page_stats(void *ctx, struct admin_req *req)
{
	struct runtime *rt = ctx;
	struct evbuffer *b = admin_req_body(req);
	bool ok;

	runtime_refresh(rt);
	admin_req_set_type(req, "application/json");
	json_t *health = health_json(rt, &ok);
	char *h = json_dumps(health, JSON_COMPACT | JSON_ENSURE_ASCII);
	json_decref(health);
	evbuffer_add_printf(b, "{\"health\":%s,\"metrics\":", h ? h : "null");
	free(h);
	metrics_render_json(rt->metrics, b);
	evbuffer_add(b, "}\n", 2);
}

static void
page_rules(void *ctx, struct admin_req *req)
{
	struct runtime *rt = ctx;
	struct rules *r = tracer_rules(rt->tracer);

	if (r == NULL) {
		admin_reply_json(req, json_pack("{s:n,s:s}", "generation", "status",
						rt->rules_spec ? "no snapshot loaded yet"
							       : "no rules source configured"),
				 JSON_INDENT(1));
		return;
	}
	char hash[20];
	snprintf(hash, sizeof(hash), "%016llx", (unsigned long long)rules_hash(r));
	json_t *j = json_pack("{s:I,s:s,s:s,s:s,s:I,s:I,s:I,s:I}", "generation",
			      (json_int_t)rules_generation(r), "hash", hash, "origin",
			      rt->rules_origin, "format", rules_format_name(rules_format(r)),
			      "table_rules", (json_int_t)rules_count(r), "keyspace_rules",
			      (json_int_t)rules_keyspace_rule_count(r), "shard_rules",
			      (json_int_t)rules_shard_rule_count(r), "keyspaces",
			      (json_int_t)rules_keyspace_count(r));
	json_object_set(j, "document", rt->rules_doc ? rt->rules_doc : json_null());
	admin_reply_json(req, j, JSON_INDENT(1));
}

/* ---- lifecycle --------------------------------------------------------------------- */

static struct guard_policy *
runtime_guard(const struct runtime_opts *o, char *err, size_t errlen)
{
	enum guard_mode mode = o->rules != NULL ? o->guard : GUARD_OFF;

	return guard_policy_new(mode, o->guard_allow, o->n_guard_allow, err, errlen);
}

static void
runtime_tracer_opts(const struct runtime_opts *o, struct tracer_opts *to)
{
	memset(to, 0, sizeof(*to));
	to->source = o->source;
	to->can_block = o->can_block;
	to->redact_literals = o->redact_literals;
	to->default_tablet_type = o->default_tablet_type ? o->default_tablet_type : VT_TT_PRIMARY;
}

static bool
runtime_start_mirror(struct runtime *rt, const struct runtime_opts *o, char *err, size_t errlen)
{
	struct mirror_opts mo;

	mirror_opts_default(&mo);
	if (o->rules_poll_ms) {
		mo.poll_ms = o->rules_poll_ms;
	}
	if (o->rules_timeout_ms) {
		mo.timeout_ms = o->rules_timeout_ms;
	}
	rt->mirror = mirror_new(rt->base, o->rules, &mo, runtime_on_bytes, rt, err, errlen);
	if (rt->mirror == NULL) {
		return false;
	}
	mirror_on_state(rt->mirror, runtime_on_mirror_state, rt);
	return true;
}

static bool
runtime_start_admin(struct runtime *rt, const char *addr, char *err, size_t errlen)
{
	rt->admin = admin_new(rt->base, addr, err, errlen);
	if (rt->admin == NULL) {
		return false;
	}
	admin_route(rt->admin, "/metrics", page_metrics, rt);
	admin_route(rt->admin, "/health", page_health, rt);
	admin_route(rt->admin, "/stats", page_stats, rt);
	admin_route(rt->admin, "/rules", page_rules, rt);
	log_info("admin: http://%s/ (/metrics /stats /rules /health)", addr);
	return true;
}

void
runtime_opts_from_cfg(const struct cfg *c, struct runtime_opts *o)
{
	static const enum guard_mode guard_of[] = {GUARD_OFF, GUARD_WARN, GUARD_BLOCK};
	static const enum vt_tablet_type tt_of[] = {VT_TT_PRIMARY, VT_TT_REPLICA, VT_TT_RDONLY};

	o->rules = c->rules[0] ? c->rules : NULL;
	o->rules_vschema = c->rules_vschema[0] ? c->rules_vschema : NULL;
	o->rules_poll_ms = (uint32_t)c->rules_poll_ms;
	o->rules_timeout_ms = (uint32_t)c->rules_timeout_ms;
	o->trace = c->trace[0] ? c->trace : NULL;
	o->trace_queue_bytes = (size_t)c->trace_queue_bytes;
	o->redact_literals = c->redact_literals;
	o->admin = c->admin[0] ? c->admin : NULL;
	o->guard = guard_of[c->guard >= 0 && c->guard <= 2 ? c->guard : 2];
	o->default_tablet_type =
		tt_of[c->default_tablet_type >= 0 && c->default_tablet_type <= 2 ? c->default_tablet_type : 0];
	o->n_guard_allow = 0;
	for (unsigned i = 0; i < c->n_guard_allow && i < RUNTIME_MAX_ALLOW; i++) {
		o->guard_allow[o->n_guard_allow++] = c->guard_allow[i];
	}
}

struct runtime *
runtime_new(struct event_base *base, const struct runtime_opts *o, char *err, size_t errlen)
{
	struct runtime *rt = calloc(1, sizeof(*rt));
	struct tracer_opts to;

	if (rt == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	rt->base = base;
	rt->started_us = clock_wall_us();
	snprintf(rt->source, sizeof(rt->source), "%s", o->source);
	rt->metrics = metrics_new(10000);
	if (rt->metrics == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	runtime_register_metrics(rt);
	if (o->trace != NULL && o->trace[0] != 0) {
		rt->sink = trace_sink_open(o->trace, o->trace_queue_bytes ? o->trace_queue_bytes
									  : RUNTIME_DEFAULT_QUEUE,
					   err, errlen);
		if (rt->sink == NULL) {
			goto fail;
		}
	}
	runtime_tracer_opts(o, &to);
	to.source = rt->source;
	rt->tracer = tracer_new(&to, rt->sink, rt->metrics);
	if (rt->tracer == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	struct guard_policy *gp = runtime_guard(o, err, errlen);
	if (gp == NULL) {
		goto fail;
	}
	tracer_set_guard(rt->tracer, gp);
	if (o->rules != NULL && o->rules[0] != 0) {
		rt->rules_spec = strdup(o->rules);
		rt->vschema_path = o->rules_vschema ? strdup(o->rules_vschema) : NULL;
		if (!runtime_start_mirror(rt, o, err, errlen)) {
			goto fail;
		}
	}
	if (o->admin != NULL && o->admin[0] != 0 && !runtime_start_admin(rt, o->admin, err, errlen)) {
		goto fail;
	}
	return rt;
fail:
	runtime_free(rt);
	return NULL;
}

bool
runtime_reload(struct runtime *rt, const struct runtime_opts *o, char *err, size_t errlen)
{
	struct tracer_opts to;
	struct guard_policy *gp = runtime_guard(o, err, errlen);

	if (gp == NULL) {
		return false;
	}
	tracer_set_guard(rt->tracer, gp);
	runtime_tracer_opts(o, &to);
	to.source = rt->source;
	tracer_set_opts(rt->tracer, &to);
	for (unsigned i = 1; i < rt->nlanes; i++) {
		struct lane_update *u = calloc(1, sizeof(*u));
		if (u == NULL) {
			log_error("out of memory: lane %u keeps its previous guard and options", i);
			continue;
		}
		if ((u->guard = runtime_guard(o, err, errlen)) == NULL) {
			log_error("lane %u keeps its previous guard and options: %s", i, err);
			free(u);
			continue;
		}
		u->set_opts = true;
		u->opts = to;
		lane_post(rt, i, u);
	}
	if (rt->sink != NULL) {
		trace_sink_reopen(rt->sink);
	}
	if (rt->mirror != NULL) {
		mirror_force(rt->mirror);
	}
	return true;
}

bool
runtime_attach_loops(struct runtime *rt, struct loops *loops, const struct runtime_opts *o,
		     char *err, size_t errlen)
{
	unsigned n = loops_count(loops);
	struct tracer_opts to;

	rt->lane_tracer = calloc(n, sizeof(*rt->lane_tracer));
	if (rt->lane_tracer == NULL) {
		snprintf(err, errlen, "out of memory");
		return false;
	}
	rt->loops = loops;
	rt->lane_tracer[0] = rt->tracer;
	rt->nlanes = 1;
	runtime_tracer_opts(o, &to);
	to.source = rt->source;
	for (unsigned i = 1; i < n; i++) {
		struct tracer *t = tracer_new(&to, rt->sink, rt->metrics);
		struct guard_policy *gp = t != NULL ? runtime_guard(o, err, errlen) : NULL;
		if (gp == NULL) {
			if (t == NULL) {
				snprintf(err, errlen, "out of memory");
			}
			tracer_free(t);
			return false;
		}
		tracer_set_guard(t, gp);
		if (tracer_rules(rt->tracer) != NULL) {
			tracer_adopt_rules(t, rules_ref(tracer_rules(rt->tracer)));
		}
		rt->lane_tracer[rt->nlanes++] = t;
	}
	return true;
}

struct tracer *
runtime_lane_tracer(struct runtime *rt, unsigned lane)
{
	return lane < rt->nlanes ? rt->lane_tracer[lane] : rt->tracer;
}

static void
wait_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	*(bool *)arg = true;
}

bool
runtime_wait_rules(struct runtime *rt, uint32_t timeout_ms, char *err, size_t errlen)
{
	bool expired = false;
	struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
	struct event *t = evtimer_new(rt->base, wait_timeout, &expired);

	if (rt->mirror == NULL) {
		event_free(t);
		return true;
	}
	evtimer_add(t, &tv);
	for (;;) {
		struct mirror_status st;
		mirror_status(rt->mirror, &st);
		if (tracer_rules(rt->tracer) != NULL) {
			break;
		}
		if (st.fetches > 0 && st.stale) {
			snprintf(err, errlen, "rules source %s: %s", st.source, st.last_error);
			break;
		}
		if (expired) {
			snprintf(err, errlen, "rules source %s: no snapshot within %u ms", st.source,
				 timeout_ms);
			break;
		}
		event_base_loop(rt->base, EVLOOP_ONCE);
	}
	event_free(t);
	return tracer_rules(rt->tracer) != NULL;
}

struct tracer *
runtime_tracer(struct runtime *rt)
{
	return rt->tracer;
}

struct metrics *
runtime_metrics(struct runtime *rt)
{
	return rt->metrics;
}

void
runtime_session_opened(struct runtime *rt)
{
	__atomic_add_fetch(&rt->sessions_active, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&rt->sessions_total, 1, __ATOMIC_RELAXED);
}

void
runtime_add_bytes(struct runtime *rt, uint64_t c2s, uint64_t s2c)
{
	const char *up[] = {"client_to_server"}, *down[] = {"server_to_client"};

	metric_add(rt->m_bytes, up, c2s);
	metric_add(rt->m_bytes, down, s2c);
}

void
runtime_session_closed(struct runtime *rt, uint64_t bytes_c2s, uint64_t bytes_s2c)
{
	__atomic_sub_fetch(&rt->sessions_active, 1, __ATOMIC_RELAXED); /* after an open */
	runtime_add_bytes(rt, bytes_c2s, bytes_s2c);
}

void
runtime_on_refresh(struct runtime *rt, runtime_refresh_fn fn, void *ctx)
{
	rt->refresh = fn;
	rt->refresh_ctx = ctx;
}

void
runtime_flush(struct runtime *rt)
{
	if (rt->sink != NULL) {
		trace_sink_flush(rt->sink);
	}
}

void
runtime_free(struct runtime *rt)
{
	if (rt == NULL) {
		return;
	}
	admin_free(rt->admin);
	mirror_free(rt->mirror);
	for (unsigned i = 1; i < rt->nlanes; i++) {
		tracer_free(rt->lane_tracer[i]);
	}
	free(rt->lane_tracer);
	tracer_free(rt->tracer);
	trace_sink_close(rt->sink);
	metrics_free(rt->metrics);
	json_decref(rt->rules_doc);
	free(rt->rules_spec);
	free(rt->vschema_path);
	free(rt);
}
