/* capture/cmd_capture.c: `routetrace capture`: options, the shared runtime (trace, rules
 * mirror, guard, admin pages), and the two drivers: an offline file read as fast as the
 * trace sink allows, and a live interface on the event loop. */
#include "capture/cmd_capture.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include <event2/event.h>

#include "capture/capture.h"
#include "capture/pcap_src.h"
#include "proxy/config.h"
#include "proxy/log.h"
#include "proxy/metrics.h"
#include "proxy/runtime.h"
#include "proxy/tracer.h"
#include "router/guard.h"
#include "router/target.h"

#define CAP_DEFAULT_PORT 15306
#define CAP_ERRLEN 512
#define CAP_DETECT_PACKETS 200000 /* packets scanned for greetings when no --port */
#define CAP_PACE_RECORDS 4096     /* offline: flush the trace after this many records */
#define CAP_PACE_C2S (512u << 10) /* ... or this many client bytes (records carry SQL) */

struct cap_run {
	const char *iface;          /* -i */
	const char *file;           /* -r */
	const char *config;         /* -c */
	uint16_t ports[PCAP_SRC_MAX_PORTS];
	size_t nports;              /* 0 until --port or detection */
	int buffer_bytes;           /* --buffer-size (live) */
	uint32_t rules_wait_ms;     /* offline: wait for the first snapshot */
	bool quiet;                 /* no progress, no summary */
	struct runtime_opts ro;
	struct event_base *base;
	struct runtime *rt;
	struct capture *cap;
	struct pcap_src *src;
	int linktype;
	uint64_t last_ts;           /* newest packet time seen */
	uint64_t paced_records;     /* tracer records at the last trace flush */
	uint64_t paced_c2s;         /* client bytes at the last trace flush */
	uint64_t packets;
	bool progress;              /* offline and stderr is a terminal */
	uint64_t progress_us;       /* wall time of the last progress line */
	char read_error[CAP_ERRLEN]; /* "" unless the file ended badly */
	struct cfg *cfg;            /* -c: loaded config (its strings back ro) */
	bool stop;                  /* SIGINT/SIGTERM seen */
};

static uint64_t
wall_us(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
}

static void
cap_usage(FILE *out)
{
	fprintf(out,
		"usage: routetrace capture (-i IFACE | -r FILE) [--port PORT[,PORT...]] [options]\n"
		"  -i, --interface IFACE   live capture (needs root or CAP_NET_RAW, see docs/capture.md)\n"
		"  -r, --read FILE         offline: a pcap or pcapng file (\"-\" = stdin)\n"
		"  -p, --port LIST         server ports, comma separated (default %d; offline without\n"
		"                          --port: the ports MySQL greetings come from, else %d)\n"
		"  -c, --config FILE       the proxy's JSON config (rules, trace, admin, guard keys)\n"
		"      --rules SOURCE      file:PATH | http://vtgate:15001/... | exec:CMD\n"
		"      --rules-vschema F   vschema file for a bare GetRoutingRules file source\n"
		"      --trace PATH|-      trace file (JSON lines), - = stdout\n"
		"      --admin ADDR        admin HTTP (/metrics /stats /rules /health), e.g. 127.0.0.1:9090\n"
		"      --guard MODE        off | warn | block: what is reported as would_block\n"
		"      --guard-allow KS[.T] exempt a keyspace or table from the guard (repeatable)\n"
		"      --redact            replace every literal in the traced SQL with ?\n"
		"      --default-tablet-type T  vtgate's --default-tablet-type (primary)\n"
		"      --buffer-size BYTES kernel capture buffer (live; default libpcap's)\n"
		"      --rules-wait-ms MS  offline: wait this long for the first rules (10000)\n"
		"  -q, --quiet             no progress line, no summary\n"
		"  -h, --help\n"
		"Records carry \"source\":\"capture\"; guard denials appear as would_block.\n"
		"The summary on stderr lists every blind spot (kernel drops, gaps, mid-stream and\n"
		"TLS sessions, unmatched responses, evicted flows) so a clean result can be trusted.\n",
		CAP_DEFAULT_PORT, CAP_DEFAULT_PORT);
}

/* "3306,15306" -> ports.  False (message printed) on a bad list. */
static bool
parse_ports(const char *s, struct cap_run *r)
{
	const char *p = s;

	r->nports = 0;
	while (*p != '\0') {
		char *end;
		unsigned long v;

		errno = 0;
		v = strtoul(p, &end, 10);
		if (end == p || errno != 0 || v == 0 || v > 65535 || (*end != ',' && *end != '\0') ||
		    r->nports == PCAP_SRC_MAX_PORTS) {
			fprintf(stderr, "routetrace capture: bad --port list '%s'\n", s);
			return false;
		}
		r->ports[r->nports++] = (uint16_t)v;
		p = *end == ',' ? end + 1 : end;
	}
	if (r->nports == 0) {
		fprintf(stderr, "routetrace capture: empty --port list\n");
		return false;
	}
	return true;
}

static bool
parse_int(const char *name, const char *s, long min, long max, long *out)
{
	char *end;

	errno = 0;
	*out = strtol(s, &end, 10);
	if (end == s || *end != '\0' || errno != 0 || *out < min || *out > max) {
		fprintf(stderr, "routetrace capture: bad %s '%s'\n", name, s);
		return false;
	}
	return true;
}

enum {
	OPT_RULES = 256,
	OPT_VSCHEMA,
	OPT_TRACE,
	OPT_ADMIN,
	OPT_GUARD,
	OPT_ALLOW,
	OPT_REDACT,
	OPT_TT,
	OPT_BUFFER,
	OPT_WAIT
};

/* One long option.  Returns false on a bad value (message printed). */
static bool
cap_long_opt(struct cap_run *r, int ch, const char *arg)
{
	long v;

	switch (ch) {
	case OPT_RULES: r->ro.rules = arg; return true;
	case OPT_VSCHEMA: r->ro.rules_vschema = arg; return true;
	case OPT_TRACE: r->ro.trace = arg; return true;
	case OPT_ADMIN: r->ro.admin = arg; return true;
	case OPT_REDACT: r->ro.redact_literals = true; return true;
	case OPT_GUARD:
		if (!guard_mode_parse(arg, &r->ro.guard)) {
			fprintf(stderr, "routetrace capture: --guard wants off, warn or block\n");
			return false;
		}
		return true;
	case OPT_ALLOW:
		if (r->ro.n_guard_allow == RUNTIME_MAX_ALLOW) {
			fprintf(stderr, "routetrace capture: too many --guard-allow\n");
			return false;
		}
		r->ro.guard_allow[r->ro.n_guard_allow++] = arg;
		return true;
	case OPT_TT:
		r->ro.default_tablet_type = vt_tablet_type_parse(arg, strlen(arg));
		if (r->ro.default_tablet_type == VT_TT_UNKNOWN) {
			fprintf(stderr, "routetrace capture: bad tablet type '%s'\n", arg);
			return false;
		}
		return true;
	case OPT_BUFFER:
		if (!parse_int("--buffer-size", arg, 0, 1L << 30, &v)) {
			return false;
		}
		r->buffer_bytes = (int)v;
		return true;
	case OPT_WAIT:
		if (!parse_int("--rules-wait-ms", arg, 0, 3600000, &v)) {
			return false;
		}
		r->rules_wait_ms = (uint32_t)v;
		return true;
	default: return false;
	}
}

/* Returns -1 to go on, else an exit status. */
static int
cap_parse_args(struct cap_run *r, int argc, char **argv)
{
	static const struct option opts[] = {
		{"interface", required_argument, NULL, 'i'}, {"read", required_argument, NULL, 'r'},
		{"port", required_argument, NULL, 'p'},      {"config", required_argument, NULL, 'c'},
		{"quiet", no_argument, NULL, 'q'},           {"help", no_argument, NULL, 'h'},
		{"rules", required_argument, NULL, OPT_RULES},
		{"rules-vschema", required_argument, NULL, OPT_VSCHEMA},
		{"trace", required_argument, NULL, OPT_TRACE},
		{"admin", required_argument, NULL, OPT_ADMIN},
		{"guard", required_argument, NULL, OPT_GUARD},
		{"guard-allow", required_argument, NULL, OPT_ALLOW},
		{"redact", no_argument, NULL, OPT_REDACT},
		{"default-tablet-type", required_argument, NULL, OPT_TT},
		{"buffer-size", required_argument, NULL, OPT_BUFFER},
		{"rules-wait-ms", required_argument, NULL, OPT_WAIT},
		{NULL, 0, NULL, 0}};
	bool allow_seen = false; /* flags replace the config file's allow-list */
	int ch;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "i:r:p:c:qh", opts, NULL)) != -1) {
		switch (ch) {
		case 'i': r->iface = optarg; break;
		case 'r': r->file = optarg; break;
		case 'c': r->config = optarg; break;
		case 'q': r->quiet = true; break;
		case 'p':
			if (!parse_ports(optarg, r)) {
				return 2;
			}
			break;
		case 'h': cap_usage(stdout); return 0;
		case '?': cap_usage(stderr); return 2;
		default:
			if (ch == OPT_ALLOW && !allow_seen) {
				r->ro.n_guard_allow = 0;
				allow_seen = true;
			}
			if (!cap_long_opt(r, ch, optarg)) {
				return 2;
			}
			break;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "routetrace capture: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	if ((r->iface == NULL) == (r->file == NULL)) {
		fprintf(stderr, "routetrace capture: give exactly one of -i IFACE and -r FILE\n");
		cap_usage(stderr);
		return 2;
	}
	return -1;
}

/* A server greeting (HandshakeV10, MYSQL_WIRE_NOTES.md section 3): seq 0, protocol
 * version 10, a NUL-terminated printable version string, inside one packet. */
static bool
looks_like_greeting(const uint8_t *p, size_t n)
{
	size_t len, i;

	if (n < 8 || p[3] != 0 || p[4] != 0x0a) {
		return false;
	}
	len = (size_t)p[0] | (size_t)p[1] << 8 | (size_t)p[2] << 16;
	if (len < 20 || len + 4 > n) {
		return false;
	}
	for (i = 5; i < 4 + len && p[i] != 0; i++) {
		if (p[i] < 0x20 || p[i] > 0x7e) {
			return false;
		}
	}
	return i > 5 && i < 4 + len;
}

/* Offline without --port: the ports greetings are sent from in the first packets. */
static void
detect_ports(struct cap_run *r)
{
	char err[CAP_ERRLEN];
	struct pcap_src *s = NULL;
	struct pcap_src_pkt pk;
	struct pkt_tcp seg;
	bool opened;
	int lt;

	if (strcmp(r->file, "-") != 0) {
		s = pcap_src_open_file(r->file, NULL, 0, err, sizeof(err));
	}
	opened = s != NULL;
	if (s != NULL) {
		lt = pcap_src_datalink(s);
		for (int i = 0; i < CAP_DETECT_PACKETS && pcap_src_next(s, &pk) == PCAP_SRC_OK;
		     i++) {
			bool known = false;

			if (pkt_parse(lt, pk.data, pk.caplen, &seg) != PKT_OK ||
			    !looks_like_greeting(seg.payload, seg.len)) {
				continue;
			}
			for (size_t k = 0; k < r->nports; k++) {
				known |= r->ports[k] == seg.sport;
			}
			if (!known && r->nports < PCAP_SRC_MAX_PORTS) {
				r->ports[r->nports++] = seg.sport;
			}
		}
		pcap_src_close(s);
	}
	if (r->nports == 0) {
		r->ports[r->nports++] = CAP_DEFAULT_PORT;
		if (!r->quiet && opened) {
			fprintf(stderr, "routetrace capture: no MySQL greeting in the file; port %d\n",
				CAP_DEFAULT_PORT);
		} else if (!r->quiet && strcmp(r->file, "-") == 0) {
			fprintf(stderr, "routetrace capture: standard input without --port: port %d\n",
				CAP_DEFAULT_PORT);
		}
	} else if (!r->quiet) {
		fprintf(stderr, "routetrace capture: server port(s) from greetings:");
		for (size_t k = 0; k < r->nports; k++) {
			fprintf(stderr, "%s%u", k ? "," : " ", (unsigned)r->ports[k]);
		}
		fprintf(stderr, " (override with --port)\n");
	}
}

static void
hook_opened(void *ctx)
{
	runtime_session_opened(ctx);
}

static void
hook_closed(void *ctx, uint64_t c2s, uint64_t s2c)
{
	runtime_session_closed(ctx, c2s, s2c);
}

static void
update_drops(struct cap_run *r)
{
	struct pcap_src_stats ps;

	if (r->iface != NULL && r->src != NULL && pcap_src_stats(r->src, &ps)) {
		capture_note_drops(r->cap, ps.dropped, ps.ifdropped);
	}
}

/* The runtime renders /metrics: publish the blind-spot counters first. */
static void
on_refresh(void *ctx, struct metrics *m)
{
	struct cap_run *r = ctx;

	update_drops(r);
	capture_publish(r->cap, m);
}

static void
print_summary(struct cap_run *r)
{
	struct tracer_counts tc;

	if (r->quiet) {
		return;
	}
	update_drops(r);
	tracer_get_counts(runtime_tracer(r->rt), &tc);
	if (r->file != NULL) {
		fprintf(stderr, "file: %s%s%s\n", r->file, r->read_error[0] ? ": " : "",
			r->read_error);
	}
	capture_print_summary(r->cap, stderr, tc.statements, tc.records_dropped,
			      r->read_error[0] ? r->read_error : NULL);
	if (tc.would_block > 0) {
		fprintf(stderr, "guard: %" PRIu64 " statement(s) would have been blocked\n",
			tc.would_block);
	}
}

/* The trace sink drops lines rather than wait when its queue is full (right for the
 * inline proxy); an offline run has no one to keep pace with, so it waits for the
 * writer before the queue can fill: every CAP_PACE_RECORDS records (a record without
 * long SQL is under 2 KiB) or CAP_PACE_C2S client bytes (a record holds its SQL twice,
 * sql and digest, at most 6 bytes per byte when escaped), well under the default
 * queue (trace_queue_bytes, 16 MiB); a queue set much smaller may drop records, counted. */
static void
offline_pace(struct cap_run *r)
{
	struct tracer_counts tc;
	uint64_t c2s = capture_c2s_bytes(r->cap);

	tracer_get_counts(runtime_tracer(r->rt), &tc);
	if (tc.records - r->paced_records >= CAP_PACE_RECORDS || c2s - r->paced_c2s >= CAP_PACE_C2S) {
		runtime_flush(r->rt);
		r->paced_records = tc.records;
		r->paced_c2s = c2s;
	}
}

static void
offline_progress(struct cap_run *r, bool last)
{
	struct tracer_counts tc;
	uint64_t now = wall_us(), done = 0, total = 0;

	if (!last && now - r->progress_us < 500000) {
		return;
	}
	r->progress_us = now;
	tracer_get_counts(runtime_tracer(r->rt), &tc);
	pcap_src_progress(r->src, &done, &total);
	fprintf(stderr, "\r%" PRIu64 " packets, %" PRIu64 " statements", r->packets, tc.statements);
	if (total > 0) {
		fprintf(stderr, ", %.1f%% of the file", 100.0 * (double)done / (double)total);
	}
	fprintf(stderr, "\033[K%s", last ? "\n" : "");
}

static void
on_offline_packet(void *ctx, const struct pcap_src_pkt *pk)
{
	struct cap_run *r = ctx;

	if (pk->ts_us > r->last_ts) {
		r->last_ts = pk->ts_us;
	}
	capture_frame(r->cap, r->linktype, pk->data, pk->caplen, pk->ts_us);
	r->packets++;
	offline_pace(r);
}

static int
run_offline(struct cap_run *r)
{
	int n = 0;

	while (!r->stop && (n = pcap_src_dispatch(r->src, 4096, on_offline_packet, r)) > 0) {
		if (r->progress) {
			offline_progress(r, false);
		}
		/* serve the admin pages and the mirror (and signals) between batches */
		event_base_loop(r->base, EVLOOP_NONBLOCK);
	}
	if (r->stop) {
		snprintf(r->read_error, sizeof(r->read_error), "interrupted after %" PRIu64
			 " packets", r->packets);
	}
	if (n < 0) {
		/* a file cut short (tcpdump killed) ends here: what was read is traced */
		snprintf(r->read_error, sizeof(r->read_error), "read error after %" PRIu64
			 " packets: %s", r->packets, pcap_src_error(r->src));
		log_warn("%s", r->read_error);
	}
	if (r->progress) {
		offline_progress(r, true);
	}
	capture_finish(r->cap, r->last_ts);
	runtime_flush(r->rt);
	print_summary(r);
	return 0;
}

static void
on_live_packet(void *ctx, const struct pcap_src_pkt *pk)
{
	struct cap_run *r = ctx;

	if (pk->ts_us > r->last_ts) {
		r->last_ts = pk->ts_us;
	}
	capture_frame(r->cap, r->linktype, pk->data, pk->caplen, pk->ts_us);
	r->packets++;
}

static void
live_drain(struct cap_run *r)
{
	int n = 0;

	do {
		n = pcap_src_dispatch(r->src, -1, on_live_packet, r);
	} while (n > 0);
	if (n < 0) {
		log_error("capture: %s", pcap_src_error(r->src));
		event_base_loopexit(r->base, NULL);
	}
}

static void
on_live_readable(evutil_socket_t fd, short what, void *ctx)
{
	(void)fd;
	(void)what;
	live_drain(ctx);
}

/* libpcap may hold packets in a TPACKET block that poll() does not report yet: read on a
 * timer too, and expire idle flows by the wall clock while the wire is quiet. */
static void
on_live_timer(evutil_socket_t fd, short what, void *ctx)
{
	struct cap_run *r = ctx;
	uint64_t now = wall_us();

	(void)fd;
	(void)what;
	live_drain(r);
	capture_expire(r->cap, now > r->last_ts ? now : r->last_ts);
	update_drops(r);
}

static void
on_signal(evutil_socket_t sig, short what, void *ctx)
{
	struct cap_run *r = ctx;
	char err[CAP_ERRLEN];

	(void)what;
	if (sig == SIGHUP) {
		if (!runtime_reload(r->rt, &r->ro, err, sizeof(err))) {
			log_error("reload: %s", err);
		}
		return;
	}
	log_info("signal %d: stopping the capture", (int)sig);
	r->stop = true;
	event_base_loopexit(r->base, NULL);
}

static int
run_live(struct cap_run *r)
{
	char err[CAP_ERRLEN];
	struct event *rd = NULL, *tm;
	int ms = pcap_src_timeout_ms(r->src);
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	if (!pcap_src_set_nonblock(r->src, true, err, sizeof(err))) {
		log_error("capture: %s", err);
		return 1;
	}
	if (pcap_src_fd(r->src) >= 0) {
		rd = event_new(r->base, pcap_src_fd(r->src), EV_READ | EV_PERSIST, on_live_readable, r);
		event_add(rd, NULL);
	}
	tm = event_new(r->base, -1, EV_PERSIST, on_live_timer, r);
	event_add(tm, &tv);
	log_info("routetrace capture: listening on %s", r->iface);
	event_base_dispatch(r->base);
	live_drain(r);
	capture_finish(r->cap, wall_us());
	runtime_flush(r->rt);
	print_summary(r);
	if (rd != NULL) {
		event_free(rd);
	}
	event_free(tm);
	return 0;
}

static bool
open_source(struct cap_run *r, char *err, size_t errlen)
{
	if (r->file != NULL) {
		/* no BPF filter offline: every frame reaches pkt_parse, so what is not TCP on
		 * the ports (garbage, VLAN-tagged, other traffic) is counted, not hidden */
		r->src = pcap_src_open_file(r->file, NULL, 0, err, errlen);
		r->progress = r->src != NULL && !r->quiet && isatty(STDERR_FILENO);
	} else {
		r->src = pcap_src_open_live(r->iface, r->ports, r->nports, r->buffer_bytes, err,
					    errlen);
	}
	if (r->src == NULL) {
		return false;
	}
	r->linktype = pcap_src_datalink(r->src);
	if (!pkt_linktype_supported(r->linktype)) {
		snprintf(err, errlen, "link type %d is not supported", r->linktype);
		return false;
	}
	return true;
}

/* Runtime, capture pipeline, source; then the driver. */
static int
cap_run_all(struct cap_run *r)
{
	struct capture_hooks hooks = {hook_opened, hook_closed, NULL};
	char err[CAP_ERRLEN];
	struct event *sig[3] = {NULL, NULL, NULL};
	static const int signo[3] = {SIGINT, SIGTERM, SIGHUP};
	int rc = 1;

	r->rt = runtime_new(r->base, &r->ro, err, sizeof(err));
	if (r->rt == NULL) {
		fprintf(stderr, "routetrace capture: %s\n", err);
		return 1;
	}
	hooks.ctx = r->rt;
	r->cap = capture_new(runtime_tracer(r->rt), r->ports, r->nports, NULL, &hooks);
	if (r->cap == NULL) {
		fprintf(stderr, "routetrace capture: out of memory\n");
		goto out;
	}
	runtime_on_refresh(r->rt, on_refresh, r);
	if (r->file != NULL && r->ro.rules != NULL &&
	    !runtime_wait_rules(r->rt, r->rules_wait_ms, err, sizeof(err))) {
		fprintf(stderr, "routetrace capture: no rules: %s\n", err);
		goto out;
	}
	if (!open_source(r, err, sizeof(err))) {
		fprintf(stderr, "routetrace capture: %s\n", err);
		goto out;
	}
	for (int i = 0; i < 3; i++) {
		sig[i] = evsignal_new(r->base, signo[i], on_signal, r);
		evsignal_add(sig[i], NULL);
	}
	rc = r->file != NULL ? run_offline(r) : run_live(r);
out:
	for (int i = 0; i < 3; i++) {
		if (sig[i] != NULL) {
			event_free(sig[i]);
		}
	}
	runtime_on_refresh(r->rt, NULL, NULL);
	/* flows still open were closed by run_*; this frees the flow table */
	capture_free(r->cap);
	runtime_flush(r->rt);
	runtime_free(r->rt);
	pcap_src_close(r->src);
	return rc;
}

/* -c FILE (or none: the defaults): the proxy's config.  Its tracing, rules, guard and
 * admin keys fill the options (the listener keys do not apply), then the flags are
 * parsed again so they override it. */
static bool
cap_apply_config(struct cap_run *r, int argc, char **argv)
{
	char err[CFG_ERRLEN];
	const struct cfg *c;
	struct runtime_opts *o = &r->ro;

	r->cfg = cfg_load(r->config, NULL, 0, err, sizeof(err));
	if (r->cfg == NULL) {
		fprintf(stderr, "routetrace capture: %s\n", err);
		return false;
	}
	c = r->cfg;
	log_set_level(c->log_level);
	runtime_opts_from_cfg(c, o);
	return cap_parse_args(r, argc, argv) < 0;
}

int
cmd_capture(int argc, char **argv)
{
	struct cap_run r;
	int rc;

	memset(&r, 0, sizeof(r));
	r.ro.source = "capture";
	r.ro.can_block = false;
	r.ro.default_tablet_type = VT_TT_PRIMARY;
	r.rules_wait_ms = 10000;
	rc = cap_parse_args(&r, argc, argv);
	if (rc >= 0) {
		return rc;
	}
	/* the config's defaults (guard block, like the proxy) even without -c */
	if (!cap_apply_config(&r, argc, argv)) {
		cfg_unref(r.cfg);
		return 1;
	}
	if (r.nports == 0) {
		if (r.file != NULL) {
			detect_ports(&r);
		} else {
			r.ports[r.nports++] = CAP_DEFAULT_PORT;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	r.base = event_base_new();
	if (r.base == NULL) {
		fprintf(stderr, "routetrace capture: event_base_new failed\n");
		return 1;
	}
	rc = cap_run_all(&r);
	event_base_free(r.base);
	cfg_unref(r.cfg);
	return rc;
}
