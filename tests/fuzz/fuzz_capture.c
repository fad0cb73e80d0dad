/* tests/fuzz/fuzz_capture.c: libFuzzer target for the whole passive path: synthetic TCP
 * segments (raw IPv4/IPv6 frames) of a few connections -> pkt -> reasm -> the wire
 * decoder -> the tracer (rules snapshot embedded, guard in block mode, trace written to
 * /dev/null) through capture/capture.c.
 *
 * Input: a sequence of records, each [ctl][len][dt] (+ [off_hi][off_lo] when ctl bit 7)
 * followed by len payload bytes taken from the input:
 *   ctl bits 0-1 connection, bit 2 direction (1 = server to client), bits 3-5 TCP flags
 *   (0 ACK, 1 SYN, 2 SYN+ACK, 3 FIN+ACK, 4 RST, 5-7 PSH+ACK), bit 6 IPv6, bit 7 the
 *   segment starts at a signed offset from the expected sequence number (reorder,
 *   overlap, hole, wraparound).  dt advances packet time by dt milliseconds.
 * Seeds made from recorded MySQL pcaps: tests/integ/capture_tool.py fuzzseed.
 * Checks: no crash, no leak (LeakSanitizer), held bytes and flows within the limits. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capture/capture.h"
#include "proxy/metrics.h"
#include "proxy/trace_sink.h"
#include "proxy/tracer.h"
#include "router/guard.h"
#include "router/rules.h"

#define NCONN 4
#define SPORT 3306
#define CPORT0 40000
#define MAX_FLOWS 6
#define HOLD_BYTES 65536

#define CHECK(x)                                                                                   \
	do {                                                                                       \
		if (!(x)) {                                                                        \
			fprintf(stderr, "fuzz_capture: check failed: %s (line %d)\n", #x, __LINE__); \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/* tests/fixtures/movetables/01-created.srvvschema.json */
static const char fixture[] =
	"{\"keyspaces\":{\"sourcekeyspace\":{\"sharded\":false,\"tables\":{\"t1\":{},\"t2\":{},\"t3\":{}}},\"targe"
	"tkeyspace\":{\"sharded\":false,\"tables\":{\"t1\":{},\"t2\":{}}}},\"routing_rules\":{\"rules\":[{\"from_"
	"table\":\"t1\",\"to_tables\":[\"sourcekeyspace.t1\"]},{\"from_table\":\"sourcekeyspace.t1\",\"to_table"
	"s\":[\"sourcekeyspace.t1\"]},{\"from_table\":\"targetkeyspace.t1\",\"to_tables\":[\"sourcekeyspace.t"
	"1\"]},{\"from_table\":\"t2\",\"to_tables\":[\"sourcekeyspace.t2\"]},{\"from_table\":\"sourcekeyspace.t"
	"2\",\"to_tables\":[\"sourcekeyspace.t2\"]},{\"from_table\":\"targetkeyspace.t2\",\"to_tables\":[\"sour"
	"cekeyspace.t2\"]},{\"from_table\":\"t1@replica\",\"to_tables\":[\"sourcekeyspace.t1\"]},{\"from_tabl"
	"e\":\"sourcekeyspace.t1@replica\",\"to_tables\":[\"sourcekeyspace.t1\"]},{\"from_table\":\"targetkey"
	"space.t1@replica\",\"to_tables\":[\"sourcekeyspace.t1\"]},{\"from_table\":\"t2@replica\",\"to_tables"
	"\":[\"sourcekeyspace.t2\"]},{\"from_table\":\"sourcekeyspace.t2@replica\",\"to_tables\":[\"sourcekey"
	"space.t2\"]},{\"from_table\":\"targetkeyspace.t2@replica\",\"to_tables\":[\"sourcekeyspace.t2\"]},{"
	"\"from_table\":\"t1@rdonly\",\"to_tables\":[\"sourcekeyspace.t1\"]},{\"from_table\":\"sourcekeyspace."
	"t1@rdonly\",\"to_tables\":[\"sourcekeyspace.t1\"]},{\"from_table\":\"targetkeyspace.t1@rdonly\",\"to"
	"_tables\":[\"sourcekeyspace.t1\"]},{\"from_table\":\"t2@rdonly\",\"to_tables\":[\"sourcekeyspace.t2\""
	"]},{\"from_table\":\"sourcekeyspace.t2@rdonly\",\"to_tables\":[\"sourcekeyspace.t2\"]},{\"from_tabl"
	"e\":\"targetkeyspace.t2@rdonly\",\"to_tables\":[\"sourcekeyspace.t2\"]}]},\"shard_routing_rules\":{"
	"\"rules\":[]},\"keyspace_routing_rules\":{\"rules\":[]},\"mirror_rules\":{\"rules\":[]}}";

static struct tracer *g_tracer;

static void
fuzz_init(void)
{
	char err[512];
	struct trace_sink *sink = trace_sink_open("/dev/null", 1 << 20, err, sizeof(err));
	struct metrics *m = metrics_new(256);
	struct tracer_opts o = {.source = "capture", .can_block = false,
				.default_tablet_type = VT_TT_PRIMARY};
	struct rules *r;

	CHECK(sink != NULL && m != NULL);
	g_tracer = tracer_new(&o, sink, m); /* sink and metrics live for the process */
	r = rules_load_buffer(fixture, sizeof(fixture) - 1, "fixture", NULL, 0, NULL, err,
			      sizeof(err));
	CHECK(r != NULL);
	tracer_set_rules(g_tracer, r, 1700000000000000ULL, "file:fixture");
	tracer_set_guard(g_tracer, guard_policy_new(GUARD_BLOCK, NULL, 0, err, sizeof(err)));
}

struct conn {
	uint32_t next[2]; /* next sequence number per direction */
};

static size_t
put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
	return 2;
}

static size_t
put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
	return 4;
}

/* Writes an IPv4 or IPv6 + TCP frame (DLT_RAW) into f; returns its length. */
static size_t
build_frame(uint8_t *f, bool v6, int conn, int dir, uint32_t seq, uint32_t ack, uint8_t flags,
	    const uint8_t *pl, size_t n)
{
	uint16_t cport = (uint16_t)(CPORT0 + conn), sp = dir ? SPORT : cport, dp = dir ? cport : SPORT;
	size_t ip = v6 ? 40 : 20, o;
	uint8_t *t = f + ip;

	memset(f, 0, ip + 20);
	if (v6) {
		f[0] = 0x60;
		put16(f + 4, (uint16_t)(20 + n));
		f[6] = 6;
		f[7] = 64;
		f[23] = (uint8_t)(1 + dir);  /* ::1 / ::2 */
		f[39] = (uint8_t)(2 - dir);
	} else {
		f[0] = 0x45;
		put16(f + 2, (uint16_t)(20 + 20 + n));
		f[8] = 64;
		f[9] = 6;
		put32(f + 12, dir ? 0x0a000002 : 0x0a000001);
		put32(f + 16, dir ? 0x0a000001 : 0x0a000002);
	}
	o = put16(t, sp);
	o += put16(t + o, dp);
	o += put32(t + o, seq);
	o += put32(t + o, ack);
	t[12] = 5 << 4;
	t[13] = flags;
	put16(t + 14, 65535);
	memcpy(t + 20, pl, n);
	return ip + 20 + n;
}

static const uint8_t flag_sel[8] = {
	PKT_TCP_ACK, PKT_TCP_SYN, PKT_TCP_SYN | PKT_TCP_ACK, PKT_TCP_FIN | PKT_TCP_ACK,
	PKT_TCP_RST, PKT_TCP_PSH | PKT_TCP_ACK, PKT_TCP_PSH | PKT_TCP_ACK, PKT_TCP_PSH | PKT_TCP_ACK};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t frame[40 + 20 + 256];
	struct capture_limits lim;
	struct conn cs[NCONN];
	struct capture_stats st;
	uint16_t port = SPORT;
	uint64_t ts = 1700000000000000ULL;
	struct capture *c;
	size_t i = 0;

	if (g_tracer == NULL) {
		fuzz_init();
	}
	memset(&lim, 0, sizeof(lim));
	lim.reasm.max_flows = MAX_FLOWS;
	lim.reasm.flow_hold_bytes = HOLD_BYTES / 2;
	lim.reasm.total_hold_bytes = HOLD_BYTES;
	lim.reasm.flow_hold_segs = 32;
	lim.wire.max_inspect = 4096;
	lim.wire.max_prepared = 8;
	lim.wire.max_pending = 16;
	c = capture_new(g_tracer, &port, 1, &lim, NULL);
	CHECK(c != NULL);
	for (int k = 0; k < NCONN; k++) {
		cs[k].next[0] = 1000u * (uint32_t)(k + 1);
		cs[k].next[1] = 0xfffff000u + 7u * (uint32_t)k; /* server ISNs near wraparound */
	}
	while (i + 3 <= size) {
		uint8_t ctl = data[i], len = data[i + 1], dt = data[i + 2];
		int conn = ctl & 3, dir = (ctl >> 2) & 1;
		uint8_t flags = flag_sel[(ctl >> 3) & 7];
		uint32_t seq = cs[conn].next[dir];
		size_t n;

		i += 3;
		if (ctl & 0x80) {
			if (i + 2 > size) {
				break;
			}
			seq += (uint32_t)(int32_t)(int16_t)((data[i] << 8) | data[i + 1]);
			i += 2;
		}
		n = len <= size - i ? len : size - i;
		ts += (uint64_t)dt * 1000u;
		if (flags & PKT_TCP_SYN) {
			seq -= 1; /* the SYN's own sequence number precedes the data */
		}
		capture_frame(c, 12, frame,
			      build_frame(frame, ctl & 0x40, conn, dir, seq, cs[conn].next[!dir],
					  flags, data + i, n),
			      ts);
		i += n;
		if (!(ctl & 0x80)) {
			cs[conn].next[dir] = seq + (uint32_t)n + ((flags & PKT_TCP_SYN) ? 1u : 0u);
		}
		capture_get_stats(c, &st);
		CHECK(st.reasm.held_bytes_now <= HOLD_BYTES);
		CHECK(st.reasm.flows_now <= MAX_FLOWS);
	}
	capture_finish(c, ts + 1);
	capture_get_stats(c, &st);
	CHECK(st.reasm.flows_now == 0);
	CHECK(st.reasm.flows_closed == st.reasm.flows_opened);
	capture_free(c);
	return 0;
}
