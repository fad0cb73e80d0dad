/* capture/capture.c: frames -> pkt -> reasm -> one wire decoder + tracer connection per
 * flow, counting every blind spot on the way.  No MySQL parsing here: the decoder is
 * the one the inline proxy runs. */
#include "capture/capture.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/metrics.h"
#include "proxy/tracer.h"

/* A hole with data held behind it that the peer has acknowledged is given up at once
 * (reasm's default waits 20 ms of packet time).  The decoder matches responses to
 * commands in arrival order across the two directions: while a client hole waits, the
 * server's answers to the commands held behind it would be consumed first, and every
 * response after the gap would be paired with the wrong command.  The cost: a capture
 * that shows an ack before the data it acknowledges loses that segment (counted). */
#define CAPTURE_ACK_GRACE_US 1

/* Per flow: the decoder and the tracer connection, plus byte counts for accounting. */
struct cap_flow {
	struct capture *cap;
	struct reasm_flow *flow;   /* borrowed from reasm, valid until its close callback */
	struct wire_conv *conv;    /* freed before tc (its pending commands refer to tc) */
	struct tracer_conn *tc;
	uint64_t bytes[2];         /* payload bytes handed to the decoder, per direction */
	bool ssl_seen;             /* WIRE_EV_SSL_REQUEST fired */
	bool dead;                 /* ignored: opaque or not MySQL */
};

struct capture {
	struct tracer *tracer;
	struct reasm *reasm;
	struct capture_limits lim;
	struct capture_hooks hooks;
	struct capture_stats st;   /* reasm/pkt parts refreshed on read */
	uint64_t c2s_bytes;
};

/* "host:port" or "[v6]:port", as the inline session names its clients, so the two
 * traces of the same traffic can be paired by client address. */
static void
cap_addr_text(uint8_t ipver, const uint8_t addr[16], uint16_t port, char *out, size_t len)
{
	char host[INET6_ADDRSTRLEN] = "?";

	if (ipver == 6) {
		inet_ntop(AF_INET6, addr, host, sizeof(host));
		snprintf(out, len, "[%s]:%u", host, (unsigned)port);
	} else {
		inet_ntop(AF_INET, addr, host, sizeof(host));
		snprintf(out, len, "%s:%u", host, (unsigned)port);
	}
}

static void
cap_free_user(void *ctx, void *user)
{
	(void)ctx;
	tracer_cmd_free(user);
}

static void
cap_count_event(struct cap_flow *fl, const struct wire_event *ev)
{
	struct capture_stats *st = &fl->cap->st;

	switch (ev->type) {
	case WIRE_EV_COMMAND:
		st->commands++;
		break;
	case WIRE_EV_RESULT:
		if (ev->u.result.aborted) {
			st->unanswered++;
		}
		break;
	case WIRE_EV_SSL_REQUEST:
		fl->ssl_seen = true;
		break;
	case WIRE_EV_RESYNC:
		st->resyncs++;
		break;
	case WIRE_EV_ANOMALY:
		st->anomalies++;
		/* the decoder's wording for a server packet that answers nothing we saw */
		if (ev->u.anomaly.what != NULL &&
		    strcmp(ev->u.anomaly.what, "server packet with no command pending") == 0) {
			st->unmatched_responses++;
		}
		break;
	default:
		break;
	}
}

static enum wire_verdict
cap_on_event(void *ctx, const struct wire_event *ev)
{
	struct cap_flow *fl = ctx;

	cap_count_event(fl, ev);
	/* capture cannot block: the tracer was made with can_block = false, so its verdict
	 * is reported as would_block and the command always "goes through" */
	(void)tracer_conn_event(fl->tc, fl->conv, ev);
	return WIRE_FORWARD;
}

static void
cap_on_open(void *ctx, struct reasm_flow *f, uint64_t ts_us)
{
	struct capture *c = ctx;
	struct cap_flow *fl = calloc(1, sizeof(*fl));
	char client[80];
	uint8_t ipver, addr[16];
	uint16_t port;

	(void)ts_us;
	if (fl == NULL) {
		reasm_flow_ignore(f);
		return;
	}
	fl->cap = c;
	fl->flow = f;
	reasm_flow_endpoints(f, &ipver, addr, &port, NULL, NULL);
	cap_addr_text(ipver, addr, port, client, sizeof(client));
	fl->tc = tracer_conn_new(c->tracer, reasm_flow_id(f), client);
	if (reasm_flow_midstream(f)) {
		fl->conv = wire_conv_new_midstream(cap_on_event, cap_free_user, fl, &c->lim.wire);
	} else {
		fl->conv = wire_conv_new(cap_on_event, cap_free_user, fl, &c->lim.wire);
	}
	if (fl->tc == NULL || fl->conv == NULL) {
		wire_conv_free(fl->conv);
		tracer_conn_free(fl->tc);
		free(fl);
		reasm_flow_ignore(f);
		return;
	}
	c->st.sessions++;
	reasm_flow_set_user(f, fl);
	if (c->hooks.session_opened != NULL) {
		c->hooks.session_opened(c->hooks.ctx);
	}
}

/* The decoder stopped following this flow for good: count why and stop delivering. */
static void
cap_flow_dead(struct cap_flow *fl, bool failed)
{
	struct capture_stats *st = &fl->cap->st;

	fl->dead = true;
	reasm_flow_ignore(fl->flow);
	if (failed) {
		st->not_mysql++;
	} else if (fl->ssl_seen) {
		st->opaque_tls++;
	} else {
		st->opaque_other++;
	}
}

static void
cap_on_data(void *ctx, struct reasm_flow *f, enum reasm_dir dir, const uint8_t *p, size_t n,
	    uint64_t ts_us)
{
	struct capture *c = ctx;
	struct cap_flow *fl = reasm_flow_user(f);
	enum wire_dir wd = dir == REASM_C2S ? WIRE_C2S : WIRE_S2C;
	size_t off = 0;

	if (fl == NULL || fl->dead) {
		return;
	}
	fl->bytes[wd] += n;
	if (wd == WIRE_C2S) {
		c->c2s_bytes += n;
	}
	while (off < n) {
		size_t used = 0;

		if (wire_conv_feed(fl->conv, wd, p + off, n - off, ts_us, &used) != WIRE_OK) {
			cap_flow_dead(fl, true);
			return;
		}
		if (used == 0) {
			/* the decoder guarantees progress; never spin on a broken promise */
			cap_flow_dead(fl, true);
			return;
		}
		off += used;
	}
	if (wire_conv_opaque(fl->conv)) {
		cap_flow_dead(fl, false);
	}
}

static void
cap_on_gap(void *ctx, struct reasm_flow *f, enum reasm_dir dir, uint64_t lost, uint64_t ts_us)
{
	struct cap_flow *fl = reasm_flow_user(f);

	(void)ctx;
	(void)lost;
	(void)ts_us;
	if (fl == NULL || fl->dead) {
		return;
	}
	wire_conv_gap(fl->conv, dir == REASM_C2S ? WIRE_C2S : WIRE_S2C);
}

static void
cap_on_close(void *ctx, struct reasm_flow *f, enum reasm_close_why why, uint64_t ts_us)
{
	struct capture *c = ctx;
	struct cap_flow *fl = reasm_flow_user(f);

	(void)why;
	if (fl == NULL) {
		return;
	}
	reasm_flow_set_user(f, NULL);
	wire_conv_close(fl->conv, ts_us);
	wire_conv_free(fl->conv);
	tracer_conn_free(fl->tc);
	if (c->hooks.session_closed != NULL) {
		c->hooks.session_closed(c->hooks.ctx, fl->bytes[WIRE_C2S], fl->bytes[WIRE_S2C]);
	}
	free(fl);
}

struct capture *
capture_new(struct tracer *tracer, const uint16_t *ports, size_t nports,
	    const struct capture_limits *limits, const struct capture_hooks *hooks)
{
	struct capture *c = calloc(1, sizeof(*c));
	struct reasm_callbacks cb = {cap_on_open, cap_on_data, cap_on_gap, cap_on_close, NULL};

	if (c == NULL) {
		return NULL;
	}
	c->tracer = tracer;
	if (limits != NULL) {
		c->lim = *limits;
	}
	if (c->lim.reasm.ack_grace_us == 0) {
		c->lim.reasm.ack_grace_us = CAPTURE_ACK_GRACE_US;
	}
	if (hooks != NULL) {
		c->hooks = *hooks;
	}
	cb.ctx = c;
	c->reasm = reasm_new(ports, nports, &c->lim.reasm, &cb);
	if (c->reasm == NULL) {
		free(c);
		return NULL;
	}
	return c;
}

void
capture_free(struct capture *c)
{
	if (c == NULL) {
		return;
	}
	reasm_free(c->reasm);
	free(c);
}

void
capture_frame(struct capture *c, int linktype, const uint8_t *p, size_t caplen, uint64_t ts_us)
{
	struct pkt_tcp seg;

	c->st.frames++;
	if (pkt_parse_count(linktype, p, caplen, &seg, &c->st.pkt) == PKT_OK) {
		reasm_segment(c->reasm, &seg, ts_us);
	}
}

void
capture_expire(struct capture *c, uint64_t ts_us)
{
	reasm_expire(c->reasm, ts_us);
}

void
capture_finish(struct capture *c, uint64_t ts_us)
{
	reasm_close_all(c->reasm, ts_us);
}

void
capture_note_drops(struct capture *c, uint64_t dropped, uint64_t if_dropped)
{
	c->st.live = true;
	c->st.kernel_dropped = dropped;
	c->st.if_dropped = if_dropped;
}

uint64_t
capture_c2s_bytes(const struct capture *c)
{
	return c->c2s_bytes;
}

void
capture_get_stats(const struct capture *c, struct capture_stats *out)
{
	*out = c->st;
	reasm_get_stats(c->reasm, &out->reasm);
}

bool
capture_complete(const struct capture *c)
{
	struct capture_stats s;

	capture_get_stats(c, &s);
	return s.kernel_dropped == 0 && s.if_dropped == 0 && s.reasm.gaps == 0 &&
	       s.reasm.midstream_flows == 0 && s.opaque_tls == 0 && s.opaque_other == 0 &&
	       s.not_mysql == 0 && s.unmatched_responses == 0 && s.reasm.flows_evicted == 0 &&
	       s.reasm.truncated == 0;
}

/* One routetrace_capture_* family per counter, set to its total at render time. */
struct cap_metric {
	const char *name;
	const char *help;
	uint64_t value;
};

void
capture_publish(const struct capture *c, struct metrics *m)
{
	static const char *const none[] = {NULL};
	static const char *const reason_l[] = {"reason"};
	struct capture_stats s;
	uint64_t skipped = 0;

	capture_get_stats(c, &s);
	for (int i = 1; i < PKT_RC_MAX; i++) {
		skipped += s.pkt.n[i];
	}
	const struct cap_metric cm[] = {
		{"routetrace_capture_frames_total", "Frames read from the capture", s.frames},
		{"routetrace_capture_frames_skipped_total", "Frames that are not TCP/IP (or malformed)",
		 skipped},
		{"routetrace_capture_kernel_drops_total",
		 "Packets the kernel dropped (pcap_stats ps_drop + ps_ifdrop)",
		 s.kernel_dropped + s.if_dropped},
		{"routetrace_capture_flows_total", "TCP flows opened", s.reasm.flows_opened},
		{"routetrace_capture_flows_evicted_total", "Flows evicted from a full flow table",
		 s.reasm.flows_evicted},
		{"routetrace_capture_gaps_total", "Reassembly gaps (bytes never seen)", s.reasm.gaps},
		{"routetrace_capture_gap_bytes_total", "Bytes lost in reassembly gaps",
		 s.reasm.gap_bytes},
		{"routetrace_capture_truncated_segments_total", "Segments cut by the snap length",
		 s.reasm.truncated},
		{"routetrace_capture_midstream_sessions_total",
		 "Sessions joined without their start (user and target unknown until USE)",
		 s.reasm.midstream_flows},
		{"routetrace_capture_resyncs_total", "Decoding resumed at a command after a gap",
		 s.resyncs},
		{"routetrace_capture_unanswered_commands_total",
		 "Commands whose response was never seen", s.unanswered},
		{"routetrace_capture_unmatched_responses_total",
		 "Server packets answering no command seen", s.unmatched_responses},
		{"routetrace_capture_wire_anomalies_total", "Protocol oddities the decoder tolerated",
		 s.anomalies},
	};
	for (size_t i = 0; i < sizeof(cm) / sizeof(cm[0]); i++) {
		struct metric_family *f =
			metrics_family(m, cm[i].name, cm[i].help, METRIC_COUNTER, 0, none);
		metric_set(f, none, (double)cm[i].value);
	}
	struct metric_family *op = metrics_family(
		m, "routetrace_capture_opaque_sessions_total",
		"Sessions the decoder cannot see into (reason: tls, binlog, not_mysql)", METRIC_COUNTER,
		1, reason_l);
	metric_set(op, (const char *const[]){"tls"}, (double)s.opaque_tls);
	metric_set(op, (const char *const[]){"binlog"}, (double)s.opaque_other);
	metric_set(op, (const char *const[]){"not_mysql"}, (double)s.not_mysql);
	struct metric_family *fn = metrics_family(m, "routetrace_capture_flows_open",
						  "Flows in the table now", METRIC_GAUGE, 0, none);
	metric_set(fn, none, (double)s.reasm.flows_now);
}

static void
summary_line(FILE *out, const char *what, uint64_t n, const char *extra)
{
	fprintf(out, "  %-28s %12" PRIu64 "%s%s\n", what, n, extra[0] ? "  " : "", extra);
}

void
capture_print_summary(const struct capture *c, FILE *out, uint64_t statements,
		      uint64_t records_dropped, const char *input_problem)
{
	struct capture_stats s;
	char buf[160];
	uint64_t skipped = 0;

	capture_get_stats(c, &s);
	for (int i = 1; i < PKT_RC_MAX; i++) {
		skipped += s.pkt.n[i];
	}
	fprintf(out, "routetrace capture summary\n");
	snprintf(buf, sizeof(buf), "(TCP segments %" PRIu64 ", skipped %" PRIu64 ")",
		 s.pkt.n[PKT_OK], skipped);
	summary_line(out, "packets", s.frames, buf);
	snprintf(buf, sizeof(buf), "(fin %" PRIu64 ", rst %" PRIu64 ", idle %" PRIu64
		 ", open at end %" PRIu64 ")",
		 s.reasm.flows_closed_by[REASM_CLOSE_FIN], s.reasm.flows_closed_by[REASM_CLOSE_RST],
		 s.reasm.flows_closed_by[REASM_CLOSE_IDLE], s.reasm.flows_closed_by[REASM_CLOSE_END]);
	summary_line(out, "flows", s.reasm.flows_opened, buf);
	snprintf(buf, sizeof(buf), "(commands %" PRIu64 ")", s.commands);
	summary_line(out, "statements", statements, buf);
	fprintf(out, "blind spots (all 0: the trace holds every statement sent)\n");
	summary_line(out, "kernel drops", s.kernel_dropped + s.if_dropped,
		     s.live ? "" : "(offline file: see the capturing tool's count)");
	snprintf(buf, sizeof(buf), "(%" PRIu64 " bytes lost)", s.reasm.gap_bytes);
	summary_line(out, "reassembly gaps", s.reasm.gaps, buf);
	summary_line(out, "truncated segments", s.reasm.truncated, "(snap length)");
	summary_line(out, "mid-stream sessions", s.reasm.midstream_flows,
		     "(user/target unknown until USE)");
	summary_line(out, "opaque sessions (TLS)", s.opaque_tls, "");
	summary_line(out, "opaque sessions (other)", s.opaque_other, "(binlog dump)");
	summary_line(out, "not-MySQL flows", s.not_mysql, "");
	summary_line(out, "unmatched responses", s.unmatched_responses, "");
	summary_line(out, "wire anomalies", s.anomalies, "(all kinds)");
	summary_line(out, "unanswered commands", s.unanswered, "(no response seen)");
	summary_line(out, "flows evicted", s.reasm.flows_evicted, "(flow table full)");
	summary_line(out, "trace records dropped", records_dropped, "(sink queue full)");
	if (s.reasm.flows_opened == 0) {
		fprintf(out, "verdict: NOTHING SEEN: no TCP flow to the server port(s); check "
			     "--port\n");
	} else if (input_problem != NULL) {
		fprintf(out, "verdict: INCOMPLETE: the input ended early (%s)\n", input_problem);
	} else if (!capture_complete(c) || records_dropped > 0) {
		fprintf(out, "verdict: INCOMPLETE: statements may be missing; see the blind spots "
			     "above\n");
	} else if (s.anomalies > 0) {
		fprintf(out, "verdict: complete, but the decoder met %" PRIu64 " protocol "
			     "oddities: some results may be misattributed\n", s.anomalies);
	} else {
		fprintf(out, "verdict: complete: nothing was missed\n");
	}
}
