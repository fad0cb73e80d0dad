/* tests/fuzz/fuzz_reasm.c: libFuzzer target for capture/reasm.c and capture/pkt.c.
 *
 * Input byte 0 >= 0xf0: raw frame mode, the rest is one frame parsed as each link type
 * (every successfully parsed segment is also fed to a reassembler).
 * Otherwise: bytes 0..4 pick small limits, then 8-byte records, each a synthetic segment
 * of one of 4 connections: [ctl][flags][off_hi][off_lo][len][ack][dt][pad].
 * Payload byte at sequence number s is canon(s) = s * 131 (mod 256) unless the record
 * asks for different bytes, so the harness can check what comes out:
 *   - in each data callback, and across callbacks with the gaps between, the bytes are
 *     consecutive stream bytes (skipped once a FIN or conflicting bytes were fed);
 *   - bytes delivered never exceed payload bytes fed, per connection and direction;
 *   - bytes held never exceed the configured bound; flows never exceed max_flows;
 *   - every flow opened is closed by reasm_free. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capture/pkt.h"
#include "capture/reasm.h"

#define NCONN 4
#define SPORT 3306
#define CPORT0 40000

#define CHECK(x)                                                                                   \
	do {                                                                                       \
		if (!(x)) {                                                                        \
			fprintf(stderr, "fuzz_reasm: check failed: %s (line %d)\n", #x, __LINE__); \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

struct dirstate {
	uint64_t fed;          /* payload bytes fed (all instances of this connection) */
	uint64_t delivered;
	bool unchecked;        /* FIN or odd bytes fed: continuity not checkable */
	bool have_last;
	uint8_t last;          /* last byte delivered */
	uint64_t pending_gap;  /* bytes lost since `last` */
};

struct harness {
	struct dirstate d[2 * NCONN][2]; /* by connection, then IPv4 / IPv6 */
	uint64_t opened, closed;
};

static uint8_t
canon(uint32_t seq)
{
	return (uint8_t)(seq * 131u);
}

static struct dirstate *
dir_of(struct harness *h, struct reasm_flow *f, enum reasm_dir dir)
{
	uint16_t cport;
	uint8_t ipver;
	unsigned c;

	reasm_flow_endpoints(f, &ipver, NULL, &cport, NULL, NULL);
	c = (unsigned)(cport - CPORT0) % NCONN + (ipver == 6 ? NCONN : 0);
	return &h->d[c][dir];
}

static void
on_open(void *ctx, struct reasm_flow *f, uint64_t ts)
{
	struct harness *h = ctx;
	int d;

	(void)ts;
	h->opened++;
	for (d = 0; d < 2; d++) {
		dir_of(h, f, (enum reasm_dir)d)->have_last = false; /* a new instance */
	}
}

static void
on_data(void *ctx, struct reasm_flow *f, enum reasm_dir dir, const uint8_t *p, size_t n,
	uint64_t ts)
{
	struct dirstate *s = dir_of(ctx, f, dir);
	size_t i;

	(void)ts;
	CHECK(n > 0);
	s->delivered += n;
	CHECK(s->delivered <= s->fed);
	if (!s->unchecked) {
		if (s->have_last) {
			CHECK(p[0] == (uint8_t)(s->last + 131u * (1u + (uint32_t)s->pending_gap)));
		}
		for (i = 1; i < n; i++) {
			CHECK(p[i] == (uint8_t)(p[i - 1] + 131u));
		}
	}
	s->have_last = true;
	s->last = p[n - 1];
	s->pending_gap = 0;
}

static void
on_gap(void *ctx, struct reasm_flow *f, enum reasm_dir dir, uint64_t lost, uint64_t ts)
{
	struct dirstate *s = dir_of(ctx, f, dir);

	(void)ts;
	CHECK(lost > 0 && lost < (1ull << 32));
	s->pending_gap += lost;
}

static void
on_close(void *ctx, struct reasm_flow *f, enum reasm_close_why why, uint64_t ts)
{
	struct harness *h = ctx;

	(void)f;
	(void)ts;
	CHECK(why < REASM_CLOSE_MAX);
	h->closed++;
}

static void
check_bounds(struct reasm *r, const struct reasm_limits *lim)
{
	struct reasm_stats st;

	reasm_get_stats(r, &st);
	CHECK(st.held_bytes_now <= lim->total_hold_bytes);
	CHECK(st.held_bytes_hwm <= lim->total_hold_bytes);
	CHECK(st.flows_now <= lim->max_flows);
	CHECK(st.delivered_bytes + st.ignored_bytes <= st.bytes);
}

static void
fuzz_frames(const uint8_t *data, size_t size)
{
	static const int types[] = {0, 1, 12, 14, 101, 108, 113, 228, 229, 276, 147};
	static const uint16_t ports[] = {SPORT};
	struct reasm_callbacks cb = {0};
	struct reasm *r = reasm_new(ports, 1, NULL, &cb);
	struct pkt_counts c;
	struct pkt_tcp t;
	uint8_t *copy = malloc(size ? size : 1);
	size_t i;

	memcpy(copy, data, size);
	memset(&c, 0, sizeof(c));
	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		if (pkt_parse_count(types[i], copy, size, &t, &c) == PKT_OK) {
			CHECK(t.payload >= copy && t.payload + t.len <= copy + size);
			CHECK(t.len <= t.seg_len && t.truncated == (t.len < t.seg_len));
			t.dport = SPORT;
			reasm_segment(r, &t, i);
		}
	}
	reasm_free(r);
	free(copy);
}

static void
build_seg(struct pkt_tcp *s, const uint8_t *rec, const uint32_t isn[NCONN][2], uint8_t *buf)
{
	unsigned c = (rec[0] >> 1) % NCONN, dir = rec[0] & 1;
	uint32_t seq = isn[c][dir] + (uint32_t)(rec[2] << 8 | rec[3]) - 512u;
	uint32_t first, i;
	size_t len = (size_t)rec[4] * 3;

	memset(s, 0, sizeof(*s));
	s->ipver = (rec[0] & 0x40) ? 6 : 4;
	s->src[0] = s->dst[0] = 10;
	s->src[15] = (uint8_t)(dir ? 2 : 1);
	s->dst[15] = (uint8_t)(dir ? 1 : 2);
	s->sport = (uint16_t)(dir ? SPORT : CPORT0 + c);
	s->dport = (uint16_t)(dir ? CPORT0 + c : SPORT);
	s->seq = seq;
	s->flags = rec[1] & (PKT_TCP_SYN | PKT_TCP_FIN | PKT_TCP_RST | PKT_TCP_ACK);
	s->ack = isn[c][!dir] + (uint32_t)rec[5] * 64u;
	first = seq + ((s->flags & PKT_TCP_SYN) ? 1 : 0); /* data follows the SYN */
	for (i = 0; i < len; i++) {
		buf[i] = (rec[0] & 0x20) ? (uint8_t)(rec[7] ^ i) : canon(first + i);
	}
	s->payload = buf;
	s->len = s->seg_len = len;
	if (rec[1] & 0x80) { /* the capture cut it */
		s->len = len / 2;
		s->truncated = s->len < s->seg_len;
	}
}

static void
fuzz_segments(const uint8_t *data, size_t size)
{
	static const uint16_t ports[] = {SPORT};
	struct harness h;
	struct reasm_limits lim;
	struct reasm_callbacks cb = {on_open, on_data, on_gap, on_close, &h};
	uint32_t isn[NCONN][2];
	uint8_t buf[256 * 3];
	struct pkt_tcp s;
	struct reasm *r;
	uint64_t ts = 1000000;
	unsigned c, d;
	size_t off;

	memset(&h, 0, sizeof(h));
	reasm_limits_default(&lim);
	lim.flow_hold_bytes = 64 + (size_t)data[1] * 16;
	lim.flow_hold_segs = 1 + data[2] % 32;
	lim.total_hold_bytes = 128 + (size_t)data[3] * 24;
	lim.max_flows = 1 + data[4] % 6;
	lim.hole_timeout_us = 50000;
	lim.ack_grace_us = 5000;
	lim.idle_timeout_us = 2000000;
	for (c = 0; c < NCONN; c++) {
		for (d = 0; d < 2; d++) { /* near 2^32 for some, to cross the wrap */
			isn[c][d] = (data[0] & 1) ? 0xffffff00u + c * 7 + d : 1000u * (c + 1) + d;
		}
	}
	r = reasm_new(ports, 1, &lim, &cb);
	CHECK(r != NULL);
	for (off = 5; off + 8 <= size; off += 8) {
		const uint8_t *rec = data + off;
		unsigned ci = (rec[0] >> 1) % NCONN + ((rec[0] & 0x40) ? NCONN : 0);
		struct dirstate *ds = &h.d[ci][rec[0] & 1];

		build_seg(&s, rec, isn, buf);
		ds->fed += s.len;
		if ((s.flags & PKT_TCP_FIN) || (rec[0] & 0x20)) {
			ds->unchecked = true;
		}
		ts += (uint64_t)rec[6] * 1000;
		reasm_segment(r, &s, ts);
		if (rec[0] & 0x80) {
			reasm_expire(r, ts + 40000);
		}
		check_bounds(r, &lim);
	}
	reasm_free(r);
	CHECK(h.opened == h.closed);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1) {
		return 0;
	}
	if (data[0] >= 0xf0) {
		fuzz_frames(data + 1, size - 1);
	} else if (size >= 5) {
		fuzz_segments(data, size);
	}
	return 0;
}
