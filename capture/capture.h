/* capture/capture.h: the passive pipeline's glue.  Captured frames go in (pkt_parse),
 * TCP flows are reassembled (reasm), and each flow's two byte streams feed the inline
 * proxy's own wire decoder and tracer, so the trace is the proxy's, with
 * "source":"capture".  Everything the capture could not see is counted (blind spots):
 * kernel drops, reassembly gaps, mid-stream and opaque (TLS) sessions, streams that are
 * not MySQL, responses with no command, evicted flows.
 *
 *   struct capture *c = capture_new(tracer, ports, n, NULL, &hooks);
 *   capture_frame(c, linktype, bytes, caplen, ts_us);   per captured frame
 *   capture_expire(c, now_us);                         live: from a timer
 *   capture_finish(c, last_ts_us);                      end of an offline file
 *   capture_get_stats / capture_publish / capture_print_summary; capture_free(c).
 * Single-threaded: call everything from the thread that owns the tracer. */
#ifndef RT_CAPTURE_CAPTURE_H
#define RT_CAPTURE_CAPTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "capture/pkt.h"
#include "capture/reasm.h"
#include "proxy/wire.h"

struct capture; /* opaque */
struct tracer;
struct metrics;

struct capture_limits {
	struct reasm_limits reasm; /* zero fields = reasm defaults, except ack_grace_us:
	                              1 us (see capture.c) */
	struct wire_limits wire;   /* zero fields = decoder defaults */
};

/* Session accounting (the runtime's /metrics and /health); every member may be NULL. */
struct capture_hooks {
	void (*session_opened)(void *ctx);
	void (*session_closed)(void *ctx, uint64_t bytes_c2s, uint64_t bytes_s2c);
	void *ctx;
};

/* What the capture saw and what it could not see.  All monotonic except flows_now. */
struct capture_stats {
	uint64_t frames;             /* frames given to capture_frame */
	struct pkt_counts pkt;       /* frames per pkt_parse outcome (PKT_OK = TCP segments) */
	struct reasm_stats reasm;    /* reassembly counters (gaps, midstream, evicted, ...) */
	uint64_t sessions;           /* flows handed to the decoder */
	uint64_t commands;           /* client commands decoded */
	uint64_t unanswered;         /* commands whose response was never seen (aborted) */
	uint64_t resyncs;            /* decoding (re)started at a command (mid-stream, gaps) */
	uint64_t opaque_tls;         /* sessions that switched to TLS (SSLRequest) */
	uint64_t opaque_other;       /* sessions the decoder cannot follow (binlog dump) */
	uint64_t not_mysql;          /* flows the decoder rejected as not MySQL / hostile */
	uint64_t unmatched_responses; /* server packets with no command pending */
	uint64_t anomalies;          /* every decoder anomaly (includes the above) */
	uint64_t kernel_dropped;     /* live: pcap_stats ps_drop (set by capture_note_drops) */
	uint64_t if_dropped;         /* live: pcap_stats ps_ifdrop */
	bool live;                   /* kernel counters are meaningful */
};

/* Creates the pipeline.  `tracer` is borrowed and must outlive the capture; `ports` are
 * the server ports (copied, nports >= 1); limits and hooks may be NULL.  NULL on
 * allocation failure. */
struct capture *capture_new(struct tracer *tracer, const uint16_t *ports, size_t nports,
			    const struct capture_limits *limits, const struct capture_hooks *hooks);

/* Closes every flow still open (their pending commands are traced as aborted) and
 * frees.  NULL is a no-op. */
void capture_free(struct capture *c);

/* One captured frame of link type `linktype` (a DLT_* value), `caplen` bytes at p,
 * captured at ts_us.  Never reads outside p[0..caplen); trace records are emitted from
 * inside the call. */
void capture_frame(struct capture *c, int linktype, const uint8_t *p, size_t caplen,
		   uint64_t ts_us);

/* Live: expires idle flows and stale holes as of ts_us (a quiet interface). */
void capture_expire(struct capture *c, uint64_t ts_us);

/* End of an offline run: delivers what is held (holes become gaps) and closes every
 * flow as of ts_us.  The capture stays usable (new frames open new flows). */
void capture_finish(struct capture *c, uint64_t ts_us);

/* Live: records the kernel's drop counters (pcap_stats totals) for stats and summary. */
void capture_note_drops(struct capture *c, uint64_t dropped, uint64_t if_dropped);

/* Client-direction payload bytes handed to the decoder so far (lets an offline reader
 * pace the trace sink). */
uint64_t capture_c2s_bytes(const struct capture *c);

void capture_get_stats(const struct capture *c, struct capture_stats *out);

/* Writes the blind-spot counters into the registry as routetrace_capture_* families
 * (counters set to their totals): call it before /metrics is rendered. */
void capture_publish(const struct capture *c, struct metrics *m);

/* Prints the end-of-run summary (packets, flows, statements, every blind spot, and
 * whether the trace can be trusted as complete) to out.  `statements` and
 * `records_dropped` come from the tracer (tracer_get_counts); `input_problem` (NULL if
 * none) says why the input ended early (file cut short, interrupted): the verdict is
 * then INCOMPLETE. */
void capture_print_summary(const struct capture *c, FILE *out, uint64_t statements,
			   uint64_t records_dropped, const char *input_problem);

/* True when nothing was missed: no kernel drops, gaps, mid-stream, opaque or
 * non-MySQL sessions, unmatched responses, evictions or truncated segments. */
bool capture_complete(const struct capture *c);

#endif /* RT_CAPTURE_CAPTURE_H */
