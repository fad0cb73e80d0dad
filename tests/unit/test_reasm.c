/* tests/unit/test_reasm.c: TCP reassembly (capture/reasm.c) on synthetic segments. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "capture/reasm.h"

#define SPORT 3306
#define MAXF 16
#define BUFSZ (1 << 20)

/* What the callbacks saw, per flow (by id) and direction. */
struct rec_flow {
	uint8_t *buf[2];
	size_t len[2];
	unsigned gaps[2];
	uint64_t lost[2];
	int opened, closed;
	enum reasm_close_why why;
	bool midstream;
	bool ignore_after_first; /* test hook: ignore the flow after its first delivery */
	struct reasm_flow *fp;   /* valid until closed */
};

struct rec {
	struct rec_flow f[MAXF + 1];
	uint64_t last_id;
	unsigned events; /* open + data + gap + close, to check ordering */
};

static void
rec_open(void *ctx, struct reasm_flow *f, uint64_t ts)
{
	struct rec *r = ctx;
	uint64_t id = reasm_flow_id(f);

	(void)ts;
	assert_true(id <= MAXF);
	r->f[id].opened++;
	r->f[id].midstream = reasm_flow_midstream(f);
	r->f[id].fp = f;
	r->f[id].buf[0] = malloc(BUFSZ);
	r->f[id].buf[1] = malloc(BUFSZ);
	reasm_flow_set_user(f, &r->f[id]);
	r->last_id = id;
	r->events++;
}

static void
rec_data(void *ctx, struct reasm_flow *f, enum reasm_dir dir, const uint8_t *p, size_t n,
	 uint64_t ts)
{
	struct rec *r = ctx;
	struct rec_flow *rf = reasm_flow_user(f);

	(void)ts;
	assert_non_null(rf);
	assert_false(rf->closed);
	assert_true(rf->len[dir] + n <= BUFSZ);
	memcpy(rf->buf[dir] + rf->len[dir], p, n);
	rf->len[dir] += n;
	r->events++;
	if (rf->ignore_after_first) {
		reasm_flow_ignore(f);
	}
}

static void
rec_gap(void *ctx, struct reasm_flow *f, enum reasm_dir dir, uint64_t lost, uint64_t ts)
{
	struct rec *r = ctx;
	struct rec_flow *rf = reasm_flow_user(f);

	(void)ts;
	rf->gaps[dir]++;
	rf->lost[dir] += lost;
	r->events++;
}

static void
rec_close(void *ctx, struct reasm_flow *f, enum reasm_close_why why, uint64_t ts)
{
	struct rec *r = ctx;
	struct rec_flow *rf = reasm_flow_user(f);

	(void)ts;
	rf->closed++;
	rf->why = why;
	r->events++;
}

static void
rec_free(struct rec *r)
{
	int i;

	for (i = 0; i <= MAXF; i++) {
		free(r->f[i].buf[0]);
		free(r->f[i].buf[1]);
	}
	free(r);
}

struct fx {
	struct rec *rec;
	struct reasm *r;
	uint64_t ts;
	uint8_t ipver;
	uint16_t cport;
};

static struct fx *
fx_new_lim(const struct reasm_limits *lim)
{
	static const uint16_t ports[] = {SPORT, 15306};
	struct fx *x = calloc(1, sizeof(*x));
	struct reasm_callbacks cb;

	x->rec = calloc(1, sizeof(*x->rec));
	cb.open = rec_open;
	cb.data = rec_data;
	cb.gap = rec_gap;
	cb.close = rec_close;
	cb.ctx = x->rec;
	x->r = reasm_new(ports, 2, lim, &cb);
	assert_non_null(x->r);
	x->ts = 1000000;
	x->ipver = 4;
	x->cport = 40000;
	return x;
}

static struct fx *
fx_new(void)
{
	return fx_new_lim(NULL);
}

static void
fx_free(struct fx *x)
{
	reasm_free(x->r);
	rec_free(x->rec);
	free(x);
}

static void
addr(uint8_t ipver, uint8_t last, uint8_t out[16])
{
	memset(out, 0, 16);
	if (ipver == 4) {
		out[0] = 10;
		out[3] = last;
	} else {
		out[0] = 0xfd;
		out[15] = last;
	}
}

/* Sends one segment of the fixture's current connection in direction dir. */
static void
send_seg(struct fx *x, enum reasm_dir dir, uint32_t seq, uint32_t ack, uint8_t flags,
	 const void *p, size_t n)
{
	struct pkt_tcp s;

	memset(&s, 0, sizeof(s));
	s.ipver = x->ipver;
	addr(x->ipver, dir == REASM_C2S ? 1 : 2, s.src);
	addr(x->ipver, dir == REASM_C2S ? 2 : 1, s.dst);
	s.sport = dir == REASM_C2S ? x->cport : SPORT;
	s.dport = dir == REASM_C2S ? SPORT : x->cport;
	s.seq = seq;
	s.ack = ack;
	s.flags = flags;
	s.payload = p;
	s.len = s.seg_len = n;
	reasm_segment(x->r, &s, x->ts);
	x->ts += 10;
}

#define C2S REASM_C2S
#define S2C REASM_S2C
#define A PKT_TCP_ACK
#define CISN 1000u
#define SISN 5000u

static void
handshake(struct fx *x, uint32_t cisn, uint32_t sisn)
{
	send_seg(x, C2S, cisn, 0, PKT_TCP_SYN, NULL, 0);
	send_seg(x, S2C, sisn, cisn + 1, PKT_TCP_SYN | A, NULL, 0);
	send_seg(x, C2S, cisn + 1, sisn + 1, A, NULL, 0);
}

static struct rec_flow *
flow1(struct fx *x)
{
	return &x->rec->f[1];
}

static void
assert_stream(const struct rec_flow *f, enum reasm_dir d, const void *want, size_t n)
{
	assert_int_equal(f->len[d], n);
	assert_memory_equal(f->buf[d], want, n);
}

static struct reasm_stats
stats(struct fx *x)
{
	struct reasm_stats st;

	reasm_get_stats(x->r, &st);
	return st;
}

static void
test_in_order(void **state)
{
	struct fx *x = fx_new();
	const char *q = "select 1", *a = "one row";

	(void)state;
	handshake(x, CISN, SISN);
	send_seg(x, C2S, CISN + 1, SISN + 1, A, q, 3);
	send_seg(x, C2S, CISN + 4, SISN + 1, A, q + 3, 5);
	send_seg(x, S2C, SISN + 1, CISN + 9, A, a, 7);
	assert_stream(flow1(x), C2S, q, 8);
	assert_stream(flow1(x), S2C, a, 7);
	assert_false(flow1(x)->midstream);
	send_seg(x, C2S, CISN + 9, SISN + 8, A | PKT_TCP_FIN, NULL, 0);
	assert_int_equal(flow1(x)->closed, 0);
	send_seg(x, S2C, SISN + 8, CISN + 10, A | PKT_TCP_FIN, NULL, 0);
	assert_int_equal(flow1(x)->closed, 1);
	assert_int_equal(flow1(x)->why, REASM_CLOSE_FIN);
	send_seg(x, C2S, CISN + 10, SISN + 9, A, NULL, 0); /* last ACK: no new flow */
	assert_int_equal(stats(x).flows_opened, 1);
	assert_int_equal(stats(x).no_flow, 1);
	assert_int_equal(stats(x).flows_now, 0);
	assert_int_equal(stats(x).delivered_bytes, 15);
	fx_free(x);
}

static void
test_reordered(void **state)
{
	struct fx *x = fx_new();
	const char *d = "abcdefghijklmnopqrstuvwxyz";

	(void)state;
	handshake(x, CISN, SISN);
	send_seg(x, C2S, CISN + 1 + 20, SISN + 1, A, d + 20, 6);
	send_seg(x, C2S, CISN + 1 + 10, SISN + 1, A, d + 10, 10);
	assert_int_equal(flow1(x)->len[C2S], 0);
	assert_int_equal(stats(x).held_bytes_now, 16);
	send_seg(x, C2S, CISN + 1, SISN + 1, A, d, 10);
	assert_stream(flow1(x), C2S, d, 26);
	assert_int_equal(stats(x).ooo_segments, 2);
	assert_int_equal(stats(x).held_bytes_now, 0);
	assert_int_equal(stats(x).held_bytes_hwm, 16);
	assert_int_equal(flow1(x)->gaps[C2S], 0);
	fx_free(x);
}

static void
test_retransmission(void **state)
{
	struct fx *x = fx_new();
	const char *d = "0123456789abcdefghij";

	(void)state;
	handshake(x, CISN, SISN);
	send_seg(x, C2S, CISN + 1, SISN + 1, A, d, 10);
	send_seg(x, C2S, CISN + 1, SISN + 1, A, d, 10);     /* full duplicate */
	send_seg(x, C2S, CISN + 1 + 5, SISN + 1, A, d + 5, 10); /* half old, half new */
	send_seg(x, C2S, CISN + 1 + 12, SISN + 1, A, d + 12, 8);
	assert_stream(flow1(x), C2S, d, 20);
	assert_int_equal(stats(x).retrans_bytes, 10 + 5 + 3);
	assert_int_equal(stats(x).overlap_conflicts, 0);
	fx_free(x);
}

static void
test_overlap_same_bytes(void **state)
{
	struct fx *x = fx_new();
	const char *d = "0123456789abcdefghijklmnopqrstuv";

	(void)state;
	handshake(x, CISN, SISN);
	send_seg(x, C2S, CISN + 1 + 10, SISN + 1, A, d + 10, 5);
	send_seg(x, C2S, CISN + 1 + 20, SISN + 1, A, d + 20, 5);
	send_seg(x, C2S, CISN + 1 + 8, SISN + 1, A, d + 8, 20); /* spans both held runs */
	assert_int_equal(stats(x).overlap_conflicts, 0);
	assert_int_equal(stats(x).held_bytes_now, 20);
	send_seg(x, C2S, CISN + 1, SISN + 1, A, d, 12); /* in order, overlaps a held run */
	assert_stream(flow1(x), C2S, d, 28);
	assert_int_equal(stats(x).overlap_conflicts, 0);
	assert_int_equal(stats(x).held_bytes_now, 0);
	fx_free(x);
}

static void
test_overlap_conflict_first_wins(void **state)
{
	struct fx *x = fx_new();
	const char *first = "AAAAAAAAAA", *second = "bbbbbbbbbbbbbbbbbbbb";
	char want[30];

	(void)state;
	handshake(x, CISN, SISN);
	send_seg(x, C2S, CISN + 1 + 10, SISN + 1, A, first, 10);
	send_seg(x, C2S, CISN + 1 + 5, SISN + 1, A, second, 20); /* covers 5..25 */
	assert_int_equal(stats(x).overlap_conflicts, 1);
	send_seg(x, C2S, CISN + 1, SISN + 1, A, "zzzzzzz", 7); /* in order 0..7, overlaps 5..7 */
	memcpy(want, "zzzzz", 5);
	memcpy(want + 5, "bbbbb", 5);
	memcpy(want + 10, first, 10);
	memcpy(want + 20, "bbbbb", 5);
	assert_stream(flow1(x), C2S, want, 25);
	assert_int_equal(stats(x).overlap_conflicts, 2); /* "zz" vs "bb" at 5..7 */
	fx_free(x);
}

static void
test_gap_hole_timeout(void **state)
{
	struct fx *x = fx_new();
	char d[300];
	char want[200];

	(void)state;
	memset(d, 'x', sizeof(d));
	for (size_t i = 0; i < sizeof(d); i++) {
		d[i] = (char)('a' + i % 26);
	}
	handshake(x, CISN, SISN);
	send_seg(x, C2S, CISN + 1, SISN + 1, A, d, 100);
	/* 100..200 lost */
	send_seg(x, C2S, CISN + 201, SISN + 1, A, d + 200, 50);
	send_seg(x, C2S, CISN + 251, SISN + 1, A, d + 250, 50);
	assert_int_equal(flow1(x)->len[C2S], 100);
	reasm_expire(x->r, x->ts + 500000); /* not yet */
	assert_int_equal(flow1(x)->gaps[C2S], 0);
	reasm_expire(x->r, x->ts + 1000000);
	assert_int_equal(flow1(x)->gaps[C2S], 1);
	assert_int_equal(flow1(x)->lost[C2S], 100);
	memcpy(want, d, 100);
	memcpy(want + 100, d + 200, 100);
	assert_stream(flow1(x), C2S, want, 200);
	x->ts += 1000000;
	send_seg(x, C2S, CISN + 301, SISN + 1, A, "tail", 4); /* delivery resumed */
	assert_int_equal(flow1(x)->len[C2S], 204);
	assert_int_equal(stats(x).gaps, 1);
	assert_int_equal(stats(x).gap_bytes, 100);
	fx_free(x);
}

static void
test_gap_peer_acked(void **state)
{
	struct fx *x = fx_new();

	(void)state;
	handshake(x, CISN, SISN);
	send_seg(x, C2S, CISN + 1, SISN + 1, A, "q1;", 3);
	/* "q2;" (3 bytes) lost by the capture; the server got it */
	send_seg(x, C2S, CISN + 7, SISN + 1, A, "q3;", 3);
	send_seg(x, S2C, SISN + 1, CISN + 7, A, "r", 1); /* acks past the hole, too soon */
	assert_int_equal(flow1(x)->gaps[C2S], 0);
	x->ts += 30000;
	send_seg(x, S2C, SISN + 2, CISN + 10, A, "r", 1);
	assert_int_equal(flow1(x)->gaps[C2S], 1);
	assert_int_equal(flow1(x)->lost[C2S], 3);
	assert_stream(flow1(x), C2S, "q1;q3;", 6);
	fx_free(x);
}

static void
test_rst_closes_after_data(void **state)
{
	struct fx *x = fx_new();

	(void)state;
	handshake(x, CISN, SISN);
	send_seg(x, C2S, CISN + 1, SISN + 1, A, "hello", 5);
	send_seg(x, S2C, SISN + 1, CISN + 6, A | PKT_TCP_RST, NULL, 0);
	assert_int_equal(flow1(x)->closed, 1);
	assert_int_equal(flow1(x)->why, REASM_CLOSE_RST);
	assert_stream(flow1(x), C2S, "hello", 5);
	send_seg(x, S2C, SISN + 1, CISN + 6, PKT_TCP_RST, NULL, 0); /* another: no flow */
	assert_int_equal(stats(x).flows_opened, 1);
	assert_int_equal(stats(x).flows_closed_by[REASM_CLOSE_RST], 1);
	fx_free(x);
}

static void
test_fin_out_of_order(void **state)
{
	struct fx *x = fx_new();

	(void)state;
	handshake(x, CISN, SISN);
	send_seg(x, S2C, SISN + 1, CISN + 1, A | PKT_TCP_FIN, NULL, 0);
	send_seg(x, C2S, CISN + 6, SISN + 2, A | PKT_TCP_FIN, "world", 5); /* ahead of "hello" */
	assert_int_equal(flow1(x)->closed, 0);
	send_seg(x, C2S, CISN + 1, SISN + 2, A, "hello", 5);
	assert_int_equal(flow1(x)->closed, 1);
	assert_int_equal(flow1(x)->why, REASM_CLOSE_FIN);
	assert_stream(flow1(x), C2S, "helloworld", 10);
	fx_free(x);
}

/* Bytes past a FIN (hostile or corrupt capture) are dropped, whether they were held before
 * the FIN arrived or arrive after it; the stream ends at the FIN and the flow still closes.
 * Found by fuzz_reasm: a drain that reached the FIN used to move `next` backwards and leave a
 * stale hole entry that make_room spun on forever. */
static void
test_bytes_past_fin(void **state)
{
	struct reasm_limits lim = {0};
	struct fx *x;
	uint8_t d[744];
	size_t i;

	(void)state;
	lim.total_hold_bytes = 128;
	x = fx_new_lim(&lim);
	for (i = 0; i < sizeof(d); i++) {
		d[i] = (uint8_t)('a' + i % 26);
	}
	handshake(x, CISN, SISN);
	send_seg(x, C2S, CISN + 100, SISN + 1, A, "held", 4);
	assert_int_equal(stats(x).held_bytes_now, 4);
	send_seg(x, C2S, CISN + 4, SISN + 1, A | PKT_TCP_FIN, NULL, 0); /* 3 bytes, then FIN */
	assert_int_equal(stats(x).held_bytes_now, 0);
	send_seg(x, C2S, CISN + 256, SISN + 1, A, "xyz", 3);
	assert_int_equal(stats(x).held_bytes_now, 0);
	send_seg(x, C2S, CISN, SISN + 1, A, d, sizeof(d)); /* from the SYN's number, far past the FIN */
	assert_stream(flow1(x), C2S, d + 1, 3);
	assert_int_equal(stats(x).after_fin_bytes, 4 + 3 + (sizeof(d) - 4));
	assert_int_equal(flow1(x)->gaps[C2S], 0);
	send_seg(x, S2C, SISN + 1, CISN + 5, A | PKT_TCP_FIN, NULL, 0);
	assert_int_equal(flow1(x)->closed, 1);
	assert_int_equal(flow1(x)->why, REASM_CLOSE_FIN);
	fx_free(x);
}

static void
test_wraparound(void **state)
{
	struct fx *x = fx_new();
	uint8_t d[1000];
	uint32_t isn = 0xffffff00u; /* the stream crosses 2^32 after 255 bytes */
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(d); i++) {
		d[i] = (uint8_t)(i * 7 + 3);
	}
	handshake(x, isn, 0xfffffff0u);
	send_seg(x, C2S, isn + 1 + 500, 0, A, d + 500, 500);
	send_seg(x, C2S, isn + 1 + 200, 0, A, d + 200, 300); /* straddles the wrap */
	send_seg(x, C2S, isn + 1, 0, A, d, 250);             /* overlaps the straddler */
	send_seg(x, S2C, 0xfffffff1u, isn + 1001, A, d, 100);
	assert_stream(flow1(x), C2S, d, 1000);
	assert_stream(flow1(x), S2C, d, 100);
	assert_int_equal(stats(x).gaps, 0);
	fx_free(x);
}

static void
test_midstream(void **state)
{
	struct fx *x = fx_new();

	(void)state;
	send_seg(x, S2C, 777, 999, A, NULL, 0);     /* pure ACK of an unknown flow: ignored */
	assert_int_equal(stats(x).flows_opened, 0);
	send_seg(x, S2C, 777, 999, A, "resp", 4); /* first data seen: joins */
	send_seg(x, C2S, 999, 781, A, "next query", 10);
	send_seg(x, C2S, 1009 + 4, 781, A, "late", 4);
	send_seg(x, C2S, 1009, 781, A, "....", 4);
	assert_true(flow1(x)->midstream);
	assert_stream(flow1(x), S2C, "resp", 4);
	assert_stream(flow1(x), C2S, "next query....late", 18);
	assert_int_equal(stats(x).midstream_flows, 1);
	fx_free(x);
}

static void
test_hold_limit_gap(void **state)
{
	struct reasm_limits lim = {0};
	struct fx *x;
	uint8_t d[4000];
	size_t i;

	(void)state;
	lim.flow_hold_bytes = 1000;
	x = fx_new_lim(&lim);
	for (i = 0; i < sizeof(d); i++) {
		d[i] = (uint8_t)i;
	}
	handshake(x, CISN, SISN);
	send_seg(x, C2S, CISN + 1, SISN + 1, A, d, 100);
	/* 100..600 lost; 600.. arrives in 400-byte segments */
	send_seg(x, C2S, CISN + 1 + 600, SISN + 1, A, d + 600, 400);
	send_seg(x, C2S, CISN + 1 + 1000, SISN + 1, A, d + 1000, 400);
	assert_int_equal(flow1(x)->gaps[C2S], 0);
	assert_int_equal(stats(x).held_bytes_now, 800);
	send_seg(x, C2S, CISN + 1 + 1400, SISN + 1, A, d + 1400, 400); /* 1200 > 1000 */
	assert_int_equal(flow1(x)->gaps[C2S], 1);
	assert_int_equal(flow1(x)->lost[C2S], 500);
	assert_int_equal(flow1(x)->len[C2S], 100 + 1200);
	assert_memory_equal(flow1(x)->buf[C2S] + 100, d + 600, 1200);
	assert_true(stats(x).held_bytes_hwm <= 1000);
	fx_free(x);
}

static void
test_hold_segs_and_global_limit(void **state)
{
	struct reasm_limits lim = {0};
	struct fx *x;
	uint8_t d[64];
	int i;

	(void)state;
	lim.flow_hold_segs = 4;
	lim.total_hold_bytes = 100;
	x = fx_new_lim(&lim);
	memset(d, 'q', sizeof(d));
	handshake(x, CISN, SISN);
	for (i = 0; i < 6; i++) { /* 6 one-byte runs with holes between */
		send_seg(x, C2S, CISN + 10 + 2 * (uint32_t)i, SISN + 1, A, d, 1);
	}
	assert_true(flow1(x)->gaps[C2S] >= 1);
	assert_true(stats(x).held_bytes_hwm <= 4);
	/* second flow: the global bound (100) makes room by giving up the oldest hole */
	x->cport++;
	handshake(x, CISN, SISN);
	send_seg(x, C2S, CISN + 50, SISN + 1, A, d, 60);
	send_seg(x, C2S, CISN + 150, SISN + 1, A, d, 60);
	assert_true(stats(x).held_bytes_now <= 100);
	assert_true(stats(x).held_bytes_hwm <= 100);
	assert_true(x->rec->f[2].gaps[C2S] >= 1);
	fx_free(x);
}

static void
test_flow_limit_evicts_lru(void **state)
{
	struct reasm_limits lim = {0};
	struct fx *x;
	int i;

	(void)state;
	lim.max_flows = 4;
	x = fx_new_lim(&lim);
	for (i = 0; i < 6; i++) {
		x->cport = (uint16_t)(50000 + i);
		handshake(x, CISN, SISN);
		send_seg(x, C2S, CISN + 1, SISN + 1, A, "x", 1);
		if (i == 3) { /* touch flow 1 so flow 2 is now the least recently seen */
			x->cport = 50000;
			send_seg(x, C2S, CISN + 2, SISN + 1, A, "y", 1);
		}
	}
	assert_int_equal(stats(x).flows_evicted, 2);
	assert_int_equal(stats(x).flows_now, 4);
	assert_int_equal(x->rec->f[1].closed, 0);
	assert_int_equal(x->rec->f[2].closed, 1);
	assert_int_equal(x->rec->f[2].why, REASM_CLOSE_EVICTED);
	assert_int_equal(x->rec->f[3].why, REASM_CLOSE_EVICTED);
	assert_stream(&x->rec->f[1], C2S, "xy", 2);
	fx_free(x);
}

static void
test_idle_eviction(void **state)
{
	struct reasm_limits lim = {0};
	struct fx *x;

	(void)state;
	lim.idle_timeout_us = 5000000;
	x = fx_new_lim(&lim);
	handshake(x, CISN, SISN);
	send_seg(x, C2S, CISN + 1, SISN + 1, A, "x", 1);
	x->ts += 4000000;
	x->cport++;
	handshake(x, CISN, SISN); /* another flow keeps the clock going */
	assert_int_equal(flow1(x)->closed, 0);
	x->ts += 1000000;
	send_seg(x, C2S, CISN + 1, SISN + 1, A, "y", 1);
	assert_int_equal(flow1(x)->closed, 1);
	assert_int_equal(flow1(x)->why, REASM_CLOSE_IDLE);
	assert_int_equal(x->rec->f[2].closed, 0);
	reasm_expire(x->r, x->ts + 6000000);
	assert_int_equal(x->rec->f[2].why, REASM_CLOSE_IDLE);
	assert_int_equal(stats(x).flows_now, 0);
	fx_free(x);
}

static void
test_ipv6_and_ports(void **state)
{
	struct fx *x = fx_new();
	struct pkt_tcp s;
	uint8_t ipver;
	uint16_t cp, sp;
	uint8_t a[16], b[16];
	char name[128];

	(void)state;
	x->ipver = 6;
	handshake(x, CISN, SISN);
	send_seg(x, C2S, CISN + 1, SISN + 1, A, "v6!", 3);
	assert_stream(flow1(x), C2S, "v6!", 3);
	reasm_flow_endpoints(flow1(x)->fp, &ipver, a, &cp, b, &sp);
	assert_int_equal(ipver, 6);
	assert_int_equal(cp, 40000);
	assert_int_equal(sp, SPORT);
	assert_int_equal(a[0], 0xfd);
	assert_int_equal(a[15], 1);
	assert_int_equal(b[15], 2);
	assert_string_equal(reasm_flow_name(flow1(x)->fp, name, sizeof(name)),
			    "[fd00::1]:40000>[fd00::2]:3306");
	/* a segment on neither server port is ignored */
	memset(&s, 0, sizeof(s));
	s.ipver = 4;
	s.sport = 1234;
	s.dport = 5678;
	s.payload = (const uint8_t *)"zz";
	s.len = s.seg_len = 2;
	reasm_segment(x->r, &s, x->ts);
	assert_int_equal(stats(x).no_server_port, 1);
	/* the second server port works too, and the client side is the non-server port */
	s.dport = 15306;
	reasm_segment(x->r, &s, x->ts);
	assert_int_equal(stats(x).flows_opened, 2);
	assert_stream(&x->rec->f[2], C2S, "zz", 2);
	fx_free(x);
}

static void
test_truncated_segment(void **state)
{
	struct fx *x = fx_new();
	struct pkt_tcp s;

	(void)state;
	handshake(x, CISN, SISN);
	memset(&s, 0, sizeof(s));
	s.ipver = 4;
	addr(4, 1, s.src);
	addr(4, 2, s.dst);
	s.sport = x->cport;
	s.dport = SPORT;
	s.seq = CISN + 1;
	s.flags = A;
	s.payload = (const uint8_t *)"abcd";
	s.len = 4;
	s.seg_len = 10; /* the capture kept 4 of 10 bytes */
	s.truncated = true;
	reasm_segment(x->r, &s, x->ts);
	send_seg(x, C2S, CISN + 11, SISN + 1, A, "next", 4);
	assert_stream(flow1(x), C2S, "abcdnext", 8);
	assert_int_equal(flow1(x)->gaps[C2S], 1);
	assert_int_equal(flow1(x)->lost[C2S], 6);
	assert_int_equal(stats(x).truncated, 1);
	fx_free(x);
}

static void
test_ignore_and_reuse(void **state)
{
	struct fx *x = fx_new();

	(void)state;
	handshake(x, CISN, SISN);
	flow1(x)->ignore_after_first = true;
	send_seg(x, C2S, CISN + 1, SISN + 1, A, "not mysql", 9);
	send_seg(x, C2S, CISN + 10, SISN + 1, A, "more", 4);
	send_seg(x, S2C, SISN + 1, CISN + 14, A, "resp", 4);
	assert_stream(flow1(x), C2S, "not mysql", 9);
	assert_int_equal(flow1(x)->len[S2C], 0);
	assert_int_equal(stats(x).ignored_bytes, 8);
	/* a new SYN with another ISN on the same 4-tuple: the old flow is closed */
	handshake(x, CISN + 100000, SISN + 100000);
	assert_int_equal(flow1(x)->closed, 1);
	assert_int_equal(flow1(x)->why, REASM_CLOSE_REUSED);
	send_seg(x, C2S, CISN + 100001, SISN + 100001, A, "new", 3);
	assert_stream(&x->rec->f[2], C2S, "new", 3);
	assert_false(x->rec->f[2].midstream);
	/* a retransmitted SYN with the same ISN is not a reuse */
	send_seg(x, C2S, CISN + 100000, 0, PKT_TCP_SYN, NULL, 0);
	assert_int_equal(stats(x).flows_opened, 2);
	fx_free(x);
}

static void
test_missed_syn_ack(void **state)
{
	struct fx *x = fx_new();

	(void)state;
	send_seg(x, C2S, CISN, 0, PKT_TCP_SYN, NULL, 0);
	/* SYN-ACK not captured; the client's ACK tells the server's ISN */
	send_seg(x, C2S, CISN + 1, SISN + 1, A, NULL, 0);
	send_seg(x, S2C, SISN + 1 + 5, CISN + 1, A, "world", 5);
	send_seg(x, S2C, SISN + 1, CISN + 1, A, "hello", 5);
	assert_false(flow1(x)->midstream);
	assert_stream(flow1(x), S2C, "helloworld", 10);
	fx_free(x);
}

/* ---- property: any permutation within a window, plus duplicates and re-cut overlapping
 * retransmissions, delivers exactly the original bytes ------------------------------- */

struct pseg {
	uint32_t off, len;
};

static uint64_t rng_state = 88172645463325252ull;

static uint32_t
rnd(uint32_t n)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state % n);
}

static size_t
cut_stream(size_t total, struct pseg *out, size_t max)
{
	size_t n = 0, off = 0, len;

	while (off < total && n < max) {
		len = 1 + rnd(1500);
		if (len > total - off) {
			len = total - off;
		}
		out[n].off = (uint32_t)off;
		out[n].len = (uint32_t)len;
		n++;
		off += len;
	}
	return n;
}

static void
shuffle_window(struct pseg *s, size_t n, size_t window)
{
	size_t i, j;
	struct pseg t;

	for (i = 0; i + 1 < n; i++) {
		j = i + rnd((uint32_t)(window < n - i ? window : n - i));
		t = s[i];
		s[i] = s[j];
		s[j] = t;
	}
}

static void
test_property_permutations(void **state)
{
	enum { TOTAL = 200000, MAXS = 4096 };
	static struct pseg segs[2][MAXS * 2];
	uint8_t *data[2];
	size_t n[2], round, i, k, d;

	(void)state;
	data[0] = malloc(TOTAL);
	data[1] = malloc(TOTAL);
	for (round = 0; round < 40; round++) {
		struct fx *x = fx_new();
		uint32_t isn[2] = {rnd(0xffffffffu), rnd(0xffffffffu)};
		size_t total = 1 + rnd(TOTAL);

		for (d = 0; d < 2; d++) {
			for (i = 0; i < total; i++) {
				data[d][i] = (uint8_t)rnd(256);
			}
			n[d] = cut_stream(total, segs[d], MAXS);
			/* duplicates and overlapping re-cuts */
			for (i = 0, k = n[d]; i < n[d] / 4; i++) {
				struct pseg a = segs[d][rnd((uint32_t)n[d])];
				uint32_t extra = rnd(800);
				if (a.off + a.len + extra > total) {
					extra = (uint32_t)(total - a.off - a.len);
				}
				a.len += extra;
				segs[d][k++] = a;
			}
			n[d] = k;
			shuffle_window(segs[d], n[d], 1 + rnd(24));
		}
		handshake(x, isn[0], isn[1]);
		for (i = 0; i < n[0] || i < n[1]; i++) {
			for (d = 0; d < 2; d++) {
				if (i < n[d]) {
					send_seg(x, (enum reasm_dir)d, isn[d] + 1 + segs[d][i].off,
						 isn[!d] + 1, A, data[d] + segs[d][i].off,
						 segs[d][i].len);
				}
			}
		}
		for (d = 0; d < 2; d++) {
			assert_int_equal(flow1(x)->gaps[d], 0);
			assert_stream(flow1(x), (enum reasm_dir)d, data[d], total);
		}
		assert_int_equal(stats(x).overlap_conflicts, 0);
		assert_int_equal(stats(x).held_bytes_now, 0);
		fx_free(x);
	}
	free(data[0]);
	free(data[1]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_in_order),
		cmocka_unit_test(test_reordered),
		cmocka_unit_test(test_retransmission),
		cmocka_unit_test(test_overlap_same_bytes),
		cmocka_unit_test(test_overlap_conflict_first_wins),
		cmocka_unit_test(test_gap_hole_timeout),
		cmocka_unit_test(test_gap_peer_acked),
		cmocka_unit_test(test_rst_closes_after_data),
		cmocka_unit_test(test_fin_out_of_order),
		cmocka_unit_test(test_bytes_past_fin),
		cmocka_unit_test(test_wraparound),
		cmocka_unit_test(test_midstream),
		cmocka_unit_test(test_hold_limit_gap),
		cmocka_unit_test(test_hold_segs_and_global_limit),
		cmocka_unit_test(test_flow_limit_evicts_lru),
		cmocka_unit_test(test_idle_eviction),
		cmocka_unit_test(test_ipv6_and_ports),
		cmocka_unit_test(test_truncated_segment),
		cmocka_unit_test(test_ignore_and_reuse),
		cmocka_unit_test(test_missed_syn_ack),
		cmocka_unit_test(test_property_permutations),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
