/* proxy/tracer.h: turns the wire decoder's events into routing decisions, guard
 * verdicts, trace records (one JSON line per statement) and counters.  Written once and
 * fed twice: the inline session and the pcap capture call the same functions, so both
 * produce the same trace (only "source" and timing differ).
 *
 * How to use:
 *   struct tracer *t = tracer_new(&opts, sink, metrics);
 *   tracer_set_rules(t, rules, now, "file:rules.json");      whenever the mirror delivers
 *   struct tracer_conn *tc = tracer_conn_new(t, id, "10.0.0.5:51234");
 *   verdict = tracer_conn_event(tc, conv, ev);                for every wire event
 *   ...wire free hook -> tracer_cmd_free(user); BLOCKED_DUE -> tracer_block_message(user, ...)
 *   tracer_conn_free(tc);
 * Single-threaded: call everything from one thread (the event loop). */
#ifndef RT_PROXY_TRACER_H
#define RT_PROXY_TRACER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proxy/wire.h"
#include "router/guard.h"
#include "router/target.h"

struct tracer;
struct tracer_conn;
struct trace_sink;
struct metrics;
struct rules;

struct tracer_opts {
	const char *source;                  /* "proxy" or "capture" (static string) */
	bool can_block;                      /* inline: a GUARD_DENY blocks; capture: would_block */
	bool redact_literals;                /* every literal -> '?' (passwords always are) */
	enum vt_tablet_type default_tablet_type; /* vtgate's --default-tablet-type */
};

/* sink and metrics are borrowed (either may be NULL) and must outlive the tracer. */
struct tracer *tracer_new(const struct tracer_opts *opts, struct trace_sink *sink,
			  struct metrics *metrics);
void tracer_free(struct tracer *t);

/* Installs a new snapshot, taking over the caller's reference.  Writes a
 * {"event":"rules_changed"} record (per-key diff, per table and tablet type where
 * unqualified names now go, the MoveTables step recognised) unless the content hash is
 * unchanged, in which case the snapshot is dropped and false is returned. */
bool tracer_set_rules(struct tracer *t, struct rules *r, uint64_t ts_us, const char *origin);

/* Installs a snapshot without a trace event (taking over the reference): for the
 * tracers of the other loop lanes, which follow the one that reports the change. */
void tracer_adopt_rules(struct tracer *t, struct rules *r);

/* The snapshot in force (borrowed; NULL before the first). */
struct rules *tracer_rules(const struct tracer *t);

/* Replaces the guard policy (taking ownership; NULL = guard off). */
void tracer_set_guard(struct tracer *t, struct guard_policy *p);
enum guard_mode tracer_guard_mode(const struct tracer *t);

/* Replaces the options that can change on reload (redaction, default tablet type). */
void tracer_set_opts(struct tracer *t, const struct tracer_opts *opts);

/* The rules source failed or recovered: writes {"event":"mirror_stale"} /
 * {"event":"mirror_recovered"} records on transitions. */
void tracer_mirror_state(struct tracer *t, bool stale, uint64_t since_us, const char *error,
			 uint64_t ts_us);

/* A connection: id and client address ("host:port") are copied.  Free it only after
 * the connection's wire decoder is freed (its pending commands refer to it). */
struct tracer_conn *tracer_conn_new(struct tracer *t, uint64_t id, const char *client);
void tracer_conn_free(struct tracer_conn *c);

/* Every decoder event of that connection, in order.  For WIRE_EV_COMMAND the return is
 * the verdict (WIRE_BLOCK only when the guard denies and opts.can_block) and
 * ev->u.command->user is set to the command's context. */
enum wire_verdict tracer_conn_event(struct tracer_conn *c, const struct wire_conv *wc,
				    const struct wire_event *ev);

/* The wire decoder's free hook for command contexts. */
void tracer_cmd_free(void *user);

/* The ERR message for a blocked command (WIRE_EV_BLOCKED_DUE); returns its length. */
size_t tracer_block_message(const void *user, char *buf, size_t len);

/* Counters kept by the tracer, for /health and tests. */
struct tracer_counts {
	uint64_t statements;   /* statements traced */
	uint64_t redirected;   /* statements with a table that reaches another keyspace/table
	                          than the one it names */
	uint64_t blocked;      /* statements blocked by the guard */
	uint64_t would_block;  /* statements the guard would have blocked (warn, capture) */
	uint64_t route_errors; /* statements vtgate would refuse to plan */
	uint64_t records;      /* trace records handed to the sink */
	uint64_t records_dropped; /* refused by a full sink queue */
	uint64_t analysis_hits;   /* statements whose classification came from a cache (a */
	uint64_t analysis_misses; /* shape or a prepared text), and those that were lexed */
};
void tracer_get_counts(const struct tracer *t, struct tracer_counts *out);

#endif /* RT_PROXY_TRACER_H */
