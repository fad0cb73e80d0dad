/* proxy/runtime.h: what the inline proxy and the capture mode share around the wire
 * decoder: the metrics registry, the trace sink, the tracer (router + guard), the rules
 * mirror feeding it, and the admin HTTP pages (/metrics, /stats, /rules, /health).
 * One per process, on one event loop.
 *
 *   struct runtime *rt = runtime_new(base, &opts, err, sizeof err);
 *   tracer_conn_new(runtime_tracer(rt), ...) per connection;
 *   SIGHUP: runtime_reload(rt, &new_opts);  exit: runtime_free(rt). */
#ifndef RT_PROXY_RUNTIME_H
#define RT_PROXY_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "router/guard.h"
#include "router/target.h"

struct cfg;
struct event_base;
struct loops;
struct runtime;
struct tracer;
struct metrics;

#define RUNTIME_MAX_ALLOW 64

struct runtime_opts {
	const char *source;            /* "proxy" | "capture" */
	bool can_block;                /* inline proxy: guard denials are answered with ERR */
	const char *rules;             /* "file:PATH" | "http://..." | "exec:CMD" | NULL (none) */
	const char *rules_vschema;     /* optional: vschema file for a bare GetRoutingRules
	                                  source (file: sources only), NULL if none */
	uint32_t rules_poll_ms;        /* mirror poll interval (0 = default 1000) */
	uint32_t rules_timeout_ms;     /* per fetch (0 = default 5000) */
	const char *trace;             /* trace file, "-" for stdout, NULL = no trace */
	size_t trace_queue_bytes;      /* bound on queued trace bytes (0 = 16 MiB) */
	bool redact_literals;
	const char *admin;             /* "127.0.0.1:9090", NULL = no admin server */
	enum guard_mode guard;         /* ignored (off) without a rules source */
	const char *guard_allow[RUNTIME_MAX_ALLOW]; /* "ks" or "ks.table" */
	size_t n_guard_allow;
	enum vt_tablet_type default_tablet_type;
};

/* Fills o from a loaded config's rules, trace, admin and guard keys (source and
 * can_block are left as they are).  o's strings borrow from c. */
void runtime_opts_from_cfg(const struct cfg *c, struct runtime_opts *o);

/* Starts the sink, the mirror (its first fetch runs when the loop runs) and the admin
 * server.  NULL with a reason in err (trace file, admin address, rules spec). */
struct runtime *runtime_new(struct event_base *base, const struct runtime_opts *o, char *err,
			    size_t errlen);

/* SIGHUP: reopens the trace file, re-fetches the rules now, applies the reloadable
 * options (guard mode and allow-list, redaction, default tablet type).  A bad option
 * keeps the old value and returns false with a reason in err. */
bool runtime_reload(struct runtime *rt, const struct runtime_opts *o, char *err, size_t errlen);

/* Runs the loop until a first rules snapshot is installed, the source fails, or
 * timeout_ms passes (offline capture needs the rules before it reads the file).
 * True if a snapshot is in force (or no source is configured). */
bool runtime_wait_rules(struct runtime *rt, uint32_t timeout_ms, char *err, size_t errlen);

struct tracer *runtime_tracer(struct runtime *rt);

/* The inline proxy's loop lanes: one tracer per lane (lane 0's is runtime_tracer), each
 * used only on its lane's thread.  Rules, guard and options reach the other lanes'
 * tracers as jobs (loops_post).  Call once, before any session; the loops must be
 * stopped before runtime_free. */
bool runtime_attach_loops(struct runtime *rt, struct loops *loops, const struct runtime_opts *o,
			  char *err, size_t errlen);
struct tracer *runtime_lane_tracer(struct runtime *rt, unsigned lane);
struct metrics *runtime_metrics(struct runtime *rt);

/* Session accounting for /metrics and /health (the proxy's listener or the capture). */
void runtime_session_opened(struct runtime *rt);
void runtime_session_closed(struct runtime *rt, uint64_t bytes_c2s, uint64_t bytes_s2c);
void runtime_add_bytes(struct runtime *rt, uint64_t c2s, uint64_t s2c);

/* Extra gauges a mode publishes at render time (capture's blind-spot counters):
 * fn is called before /metrics, /stats and /health are rendered. */
typedef void (*runtime_refresh_fn)(void *ctx, struct metrics *m);
void runtime_on_refresh(struct runtime *rt, runtime_refresh_fn fn, void *ctx);

/* Flushes the trace (shutdown, end of an offline capture). */
void runtime_flush(struct runtime *rt);

void runtime_free(struct runtime *rt);

#endif /* RT_PROXY_RUNTIME_H */
