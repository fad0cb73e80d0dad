/* proxy/mirror.h: one routing-rules source (a file, vtgate's HTTP endpoint, or a
 * command) polled through the event loop without ever blocking it.  The mirror only
 * fetches BYTES and notices when they change; a caller-provided callback parses them
 * (router's loader) and says whether they were accepted.  Staleness and counters are
 * kept here so /health, /metrics and the trace can report them. */
#ifndef RT_PROXY_MIRROR_H
#define RT_PROXY_MIRROR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct event_base;
struct mirror; /* opaque */

#define MIRROR_ERRLEN 512 /* size of the error text kept in the status */

enum mirror_kind {
	MIRROR_FILE = 0, /* file:PATH */
	MIRROR_HTTP,     /* http://HOST[:PORT]/PATH */
	MIRROR_EXEC      /* exec:COMMAND, run with /bin/sh -c */
};

struct mirror_opts {
	uint32_t poll_ms;    /* delay between the end of one fetch and the next; default 1000 */
	uint32_t timeout_ms; /* whole-fetch deadline (connect..last byte, or child run); 5000 */
	size_t max_bytes;    /* larger content is a failure, never read further; 64 MiB */
};

/* Called when a fetch succeeded and the bytes differ from the last ACCEPTED content
 * and from the last REJECTED content.  data[len] is a NUL (not part of the content);
 * data is only valid during the call.  origin is the source spec.  Return true if the
 * bytes were accepted (parsed and installed); false, with a message in err (NUL-
 * terminated, at most errlen bytes), if rejected: the mirror counts a failure and does
 * not offer the same bytes again until they change or mirror_force() is called.
 * The callback must not call mirror_free() on its own mirror. */
typedef bool (*mirror_bytes_fn)(void *ctx, const char *data, size_t len, const char *origin,
                                char *err, size_t errlen);

/* Snapshot of a mirror's state, filled by mirror_status().  Times are microseconds since
 * the Unix epoch (CLOCK_REALTIME), 0 meaning "never". */
struct mirror_status {
	const char *source;             /* the spec string; borrowed, valid until mirror_free */
	enum mirror_kind kind;          /* which kind of source */
	bool stale;                     /* the last completed attempt failed (fetch or parse) */
	bool has_content;               /* some content has been accepted at least once */
	bool busy;                      /* a fetch is in progress right now */
	int64_t stale_since_us;         /* start of the current run of failures; 0 if !stale */
	int64_t last_attempt_us;        /* end of the last completed attempt */
	int64_t last_success_us;        /* end of the last successful attempt */
	int64_t last_change_us;         /* when content was last accepted */
	uint64_t fetches;               /* completed attempts, successful or not */
	uint64_t changes;               /* deliveries accepted by the callback */
	uint64_t rejects;               /* deliveries rejected by the callback */
	uint64_t failures;              /* failed attempts in total (fetch errors + rejects) */
	uint32_t consecutive_failures;  /* failed attempts since the last success */
	uint64_t content_hash;          /* 64-bit FNV-1a of the accepted content; 0 if none */
	size_t content_len;             /* length of the accepted content */
	char last_error[MIRROR_ERRLEN]; /* last failure's text; kept after recovery; "" if none */
};

/* Called after an attempt that changed `stale` (fresh -> stale, or stale -> fresh),
 * with the new status (borrowed, valid during the call): the tracer's
 * mirror_stale / mirror_recovered records.  Must not call mirror_free(). */
typedef void (*mirror_state_fn)(void *ctx, const struct mirror_status *st);

/* Fill o with the defaults (1 s poll, 5 s timeout, 64 MiB). */
void mirror_opts_default(struct mirror_opts *o);

/* Parse and validate a source spec without creating anything: "file:PATH",
 * "http://HOST[:PORT]/PATH" or "exec:COMMAND".  Returns true and sets *kind on success;
 * false with a reason in err otherwise.  Never blocks. */
bool mirror_spec_check(const char *spec, enum mirror_kind *kind, char *err, size_t errlen);

/* Create a mirror on base for spec.  opts may be NULL (defaults; zero fields also mean
 * default).  The first fetch starts as soon as the loop runs, then every poll_ms after
 * the previous fetch completed.  on_bytes/ctx are borrowed and must outlive the
 * mirror.  Returns NULL with a reason in err on a bad spec or allocation failure. */
struct mirror *mirror_new(struct event_base *base, const char *spec, const struct mirror_opts *opts,
                          mirror_bytes_fn on_bytes, void *ctx, char *err, size_t errlen);

/* Fetch now (SIGHUP).  Forgets the last rejected content, so the same bytes are
 * offered to the callback again, and re-reads a big file even if its identity is
 * unchanged; accepted content that did not change is still not re-delivered.  If a
 * fetch is running, another starts as soon as it completes. */
void mirror_force(struct mirror *m);

/* Set (or clear, with fn NULL) the staleness-transition callback; ctx borrowed. */
void mirror_on_state(struct mirror *m, mirror_state_fn fn, void *ctx);

/* Copy the current state into *st (non-blocking, no allocation). */
void mirror_status(const struct mirror *m, struct mirror_status *st);

/* The status as a new JSON object (caller owns the reference), or NULL on allocation
 * failure.  Times as RFC 3339 strings (UTC, microseconds) or null. */
json_t *mirror_status_json(const struct mirror *m);

/* Stop and free: cancels a running fetch, SIGKILLs a running command's process group
 * and reaps it (waitpid on that pid only; SIGKILL makes this prompt).  NULL is a no-op. */
void mirror_free(struct mirror *m);

#endif /* RT_PROXY_MIRROR_H */
