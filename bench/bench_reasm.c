/* bench/bench_reasm.c: packets/s and payload GB/s of pkt_parse + reasm_segment on a
 * synthetic stream (Ethernet/IPv4/TCP frames, several flows interleaved), in order and
 * with every other pair of segments swapped (the copy path).
 *   bench_reasm [packets] [payload_bytes] */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "capture/pkt.h"
#include "capture/reasm.h"

#define NFLOWS 64
#define HDR (14 + 20 + 32) /* Ethernet, IPv4, TCP with timestamps */

struct sink {
	uint64_t bytes;
	uint64_t check;
	uint64_t gaps;
};

static void
on_data(void *ctx, struct reasm_flow *f, enum reasm_dir dir, const uint8_t *p, size_t n,
	uint64_t ts)
{
	struct sink *s = ctx;

	(void)f;
	(void)dir;
	(void)ts;
	s->bytes += n;
	s->check += p[0] + p[n - 1];
}

static void
on_gap(void *ctx, struct reasm_flow *f, enum reasm_dir dir, uint64_t lost, uint64_t ts)
{
	struct sink *s = ctx;

	(void)f;
	(void)dir;
	(void)lost;
	(void)ts;
	s->gaps++;
}

static void
put16(uint8_t *p, unsigned v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void
put32(uint8_t *p, uint32_t v)
{
	put16(p, v >> 16);
	put16(p + 2, v & 0xffff);
}

static void
frame_init(uint8_t *b, unsigned flow, size_t plen)
{
	memset(b, 0, HDR + plen);
	put16(b + 12, 0x0800);
	b[14] = 0x45;
	put16(b + 16, (unsigned)(20 + 32 + plen));
	b[22] = 64;
	b[23] = 6;
	b[26] = 10, b[29] = (uint8_t)(1 + flow);
	b[30] = 10, b[33] = 250;
	put16(b + 34, 40000 + flow);
	put16(b + 36, 3306);
	b[46] = 8 << 4;
	b[47] = PKT_TCP_ACK;
	memset(b + HDR, 'a' + (int)(flow % 26), plen);
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts); /* CPU time: fair on a busy machine */
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs `packets` segments; swap = deliver each pair of a flow's segments reversed. */
static void
run(uint64_t packets, size_t plen, int swap)
{
	static const uint16_t port = 3306;
	struct sink s = {0};
	struct reasm_callbacks cb = {NULL, on_data, on_gap, NULL, &s};
	struct reasm *r = reasm_new(&port, 1, NULL, &cb);
	uint8_t *frames = malloc((size_t)NFLOWS * (HDR + plen));
	uint32_t seq[NFLOWS];
	struct pkt_tcp t;
	uint64_t i, parsed = 0;
	unsigned f;
	double t0, dt;

	for (f = 0; f < NFLOWS; f++) {
		frame_init(frames + (size_t)f * (HDR + plen), f, plen);
		seq[f] = 1000u * f;
	}
	t0 = now_s();
	for (i = 0; i < packets; i++) {
		uint8_t *b;
		uint32_t sq;

		f = (unsigned)((i >> 1) % NFLOWS); /* two consecutive segments per flow */
		b = frames + (size_t)f * (HDR + plen);
		sq = seq[f];
		if (swap) {
			sq += (i & 1) ? 0 : (uint32_t)plen; /* second of the pair first */
		} else {
			sq += (i & 1) ? (uint32_t)plen : 0;
		}
		put32(b + 38, sq);
		if (i & 1) {
			seq[f] += 2 * (uint32_t)plen;
		}
		if (pkt_parse(PKT_LINK_EN10MB, b, HDR + plen, &t) == PKT_OK) {
			reasm_segment(r, &t, 1000000 + i);
			parsed++;
		}
	}
	dt = now_s() - t0;
	printf("%-10s payload %5zu B: %8.2f Mpkt/s  %6.2f GB/s payload  (%" PRIu64
	       " pkts, %.2fs, delivered %" PRIu64 " B, gaps %" PRIu64 ")\n",
	       swap ? "reordered" : "in-order", plen, (double)parsed / dt / 1e6,
	       (double)s.bytes / dt / 1e9, parsed, dt, s.bytes, s.gaps);
	/* reordered: each flow opens mid-stream on its first (second-half) segment, so
	 * the first segment of every flow counts as already passed */
	if (s.bytes != (parsed - (swap ? NFLOWS : 0)) * plen || s.gaps != 0) {
		printf("ERROR: delivered bytes do not match\n");
		exit(1);
	}
	reasm_free(r);
	free(frames);
}

int
main(int argc, char **argv)
{
	uint64_t packets = argc > 1 ? strtoull(argv[1], NULL, 10) : 20000000;
	size_t plen = argc > 2 ? strtoul(argv[2], NULL, 10) : 0;

	if (plen > 0) {
		run(packets, plen, 0);
		run(packets, plen, 1);
		return 0;
	}
	run(packets, 1448, 0);
	run(packets, 1448, 1);
	run(packets, 200, 0);
	run(packets, 32768, 0);
	return 0;
}
