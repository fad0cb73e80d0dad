/* proxy/trace_sink.h: where trace lines go.  A bounded in-memory queue in front of a
 * writer thread, so writing a trace never stalls forwarding: when the queue is full a
 * line is dropped and counted, never silently lost and never waited for.  The file is
 * reopened on request (SIGHUP, for logrotate). */
#ifndef RT_PROXY_TRACE_SINK_H
#define RT_PROXY_TRACE_SINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct trace_sink;

struct trace_sink_stats {
	uint64_t written;       /* lines handed to write(2) */
	uint64_t dropped;       /* lines refused because the queue was full */
	uint64_t write_errors;  /* failed write(2)/open(2) calls */
	size_t queued_bytes;    /* bytes waiting now */
	size_t queue_capacity;  /* bound on queued bytes */
};

/* Opens `path` for appending ("-" = standard output) and starts the writer thread.
 * `queue_bytes` bounds the memory held for lines not yet written (minimum 64 KiB).
 * Returns NULL with a reason in err on failure. */
struct trace_sink *trace_sink_open(const char *path, size_t queue_bytes, char *err, size_t errlen);

/* Queues one line (a trailing '\n' is added).  Never blocks on I/O: returns false and
 * counts a drop when the queue has no room.  Safe from one producer thread. */
bool trace_sink_write(struct trace_sink *s, const char *line, size_t len);

/* Asks the writer to reopen the file before its next write (logrotate). */
void trace_sink_reopen(struct trace_sink *s);

/* Waits until everything queued so far is written (tests, shutdown). */
void trace_sink_flush(struct trace_sink *s);

void trace_sink_get_stats(struct trace_sink *s, struct trace_sink_stats *out);

const char *trace_sink_path(const struct trace_sink *s);

/* Flushes, stops the writer thread and closes the file. */
void trace_sink_close(struct trace_sink *s);

#endif /* RT_PROXY_TRACE_SINK_H */
