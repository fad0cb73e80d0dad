/* capture/reasm.c: flow table (hash + LRU list) and per-direction TCP reassembly.
 * In-order payload is handed to the data callback straight from the captured frame;
 * only out-of-order bytes are copied (into `held` runs, sorted and non-overlapping).
 * A hole is given up (gap callback, skip to the earliest held byte) when the holding
 * bounds are hit, when it is older than hole_timeout, or when the peer has acknowledged
 * bytes past it (then they were received and will never be retransmitted). */
#include "capture/reasm.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define SEQ_LT(a, b) ((int32_t)((uint32_t)(a) - (uint32_t)(b)) < 0)
#define SEQ_LEQ(a, b) ((int32_t)((uint32_t)(a) - (uint32_t)(b)) <= 0)
#define SEQ_GT(a, b) SEQ_LT(b, a)
#define SEQ_GEQ(a, b) SEQ_LEQ(b, a)
#define MAX_SEG_LEN (1u << 30) /* keeps every seq difference well inside int32 */

/* Our own invariants only (never peer input): always on, so the fuzzer sees them. */
#define REASM_ASSERT(x)                                                                            \
	do {                                                                                       \
		if (!(x)) {                                                                        \
			fprintf(stderr, "%s:%d: assertion failed: %s\n", __FILE__, __LINE__, #x);  \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

struct held {              /* one run of out-of-order bytes */
	struct held *next; /* next run, higher seq */
	uint32_t seq;      /* seq of data[0] */
	uint32_t len;      /* bytes in data */
	uint8_t data[];
};

struct half {                      /* one direction of a flow */
	struct held *head;         /* held runs, sorted, non-overlapping, all > next */
	struct half *hprev, *hnext; /* table's list of halves with a hole, oldest first */
	struct reasm_flow *flow;
	uint64_t hole_since;       /* when the current first hole was noticed */
	uint32_t next;             /* next seq to deliver */
	uint32_t isn;              /* SYN's seq (valid with syn_seen) */
	uint32_t fin_seq;          /* seq of the FIN (valid with fin_seen) */
	uint32_t peer_ack;         /* highest ack the other side sent (valid with ack_valid) */
	uint8_t dir;               /* enum reasm_dir */
	bool init;                 /* next is meaningful */
	bool syn_seen;
	bool fin_seen;
	bool fin_done;             /* every byte before the FIN delivered */
	bool ack_valid;
	bool in_holes;             /* linked in the table's hole list */
};

struct flow_key {         /* laid out without implicit padding: memcmp/hash safe */
	uint8_t caddr[16];
	uint8_t saddr[16];
	uint16_t cport;
	uint16_t sport;
	uint8_t ipver;
	uint8_t pad[3];
};

struct reasm_flow {
	struct flow_key key;
	struct reasm_flow *chain;        /* hash bucket chain */
	struct reasm_flow *lprev, *lnext; /* LRU list, least recently seen first */
	struct half half[2];             /* indexed by enum reasm_dir */
	uint64_t id;
	uint64_t last_ts;
	void *user;                      /* the glue's */
	size_t held_bytes;               /* both halves */
	unsigned held_segs;
	bool midstream;
	bool ignore;
};

struct reasm {
	struct reasm_limits lim;
	struct reasm_callbacks cb;
	struct reasm_flow **buckets;
	size_t mask;                      /* buckets - 1 */
	struct reasm_flow *lru_head, *lru_tail;
	struct half *holes_head, *holes_tail;
	struct reasm_stats st;
	uint64_t next_id;
	uint64_t seed;                    /* hash seed: crafted tuples cannot pick a bucket */
	uint8_t ports[65536 / 8];         /* server port bitmap */
};

/* ---- small helpers ---------------------------------------------------------------- */

void
reasm_limits_default(struct reasm_limits *l)
{
	l->max_flows = 65536;
	l->flow_hold_bytes = 4u << 20;
	l->flow_hold_segs = 1024;
	l->total_hold_bytes = 256u << 20;
	l->idle_timeout_us = 600ull * 1000000;
	l->hole_timeout_us = 1000000;
	l->ack_grace_us = 20000;
}

static bool
is_server_port(const struct reasm *r, uint16_t port)
{
	return (r->ports[port >> 3] >> (port & 7)) & 1;
}

static uint64_t
key_hash(const struct flow_key *k, uint64_t seed)
{
	uint8_t b[sizeof(*k)];
	uint64_t h = 0x243f6a8885a308d3ull ^ seed, w;
	size_t i;

	memcpy(b, k, sizeof(b));
	for (i = 0; i + 8 <= sizeof(b); i += 8) {
		memcpy(&w, b + i, 8);
		h ^= w;
		h *= 0x9e3779b97f4a7c15ull;
		h ^= h >> 29;
	}
	return h ^ (h >> 32);
}

static void
stat_held(struct reasm *r, struct reasm_flow *f, long long dbytes, int dsegs)
{
	r->st.held_bytes_now = (uint64_t)((long long)r->st.held_bytes_now + dbytes);
	f->held_bytes = (size_t)((long long)f->held_bytes + dbytes);
	f->held_segs = (unsigned)((int)f->held_segs + dsegs);
	if (r->st.held_bytes_now > r->st.held_bytes_hwm) {
		r->st.held_bytes_hwm = r->st.held_bytes_now;
	}
}

/* ---- hole list: halves that wait for bytes, oldest first ---------------------------- */

static void
holes_unlink(struct reasm *r, struct half *h)
{
	if (!h->in_holes) {
		return;
	}
	if (h->hprev != NULL) {
		h->hprev->hnext = h->hnext;
	} else {
		r->holes_head = h->hnext;
	}
	if (h->hnext != NULL) {
		h->hnext->hprev = h->hprev;
	} else {
		r->holes_tail = h->hprev;
	}
	h->hprev = h->hnext = NULL;
	h->in_holes = false;
}

static void
holes_append(struct reasm *r, struct half *h, uint64_t ts)
{
	h->hole_since = ts;
	h->hprev = r->holes_tail;
	h->hnext = NULL;
	if (r->holes_tail != NULL) {
		r->holes_tail->hnext = h;
	} else {
		r->holes_head = h;
	}
	r->holes_tail = h;
	h->in_holes = true;
}

/* Where this half waits to jump to if it gives up its first hole: the first held byte,
 * or a FIN seen ahead of next.  False when it is not waiting for anything. */
static bool
half_target(const struct half *h, uint32_t *t)
{
	if (h->head != NULL) {
		*t = h->head->seq;
		return true;
	}
	if (h->init && h->fin_seen && !h->fin_done && SEQ_GT(h->fin_seq, h->next)) {
		*t = h->fin_seq;
		return true;
	}
	return false;
}

/* Keeps the hole list in step after an operation on h; `moved` = next advanced. */
static void
half_sync_holes(struct reasm *r, struct half *h, bool moved, uint64_t ts)
{
	uint32_t t;

	if (!half_target(h, &t)) {
		holes_unlink(r, h);
	} else if (!h->in_holes) {
		holes_append(r, h, ts);
	} else if (moved) {
		holes_unlink(r, h);
		holes_append(r, h, ts);
	}
}

static void
half_check_fin(struct half *h)
{
	if (h->fin_seen && !h->fin_done && SEQ_GEQ(h->next, h->fin_seq)) {
		h->fin_done = true;
		if (SEQ_GT(h->fin_seq + 1, h->next)) { /* never backwards: the hole list relies on it */
			h->next = h->fin_seq + 1;
		}
	}
}

/* ---- delivery ------------------------------------------------------------------------ */

static void
deliver(struct reasm *r, struct half *h, const uint8_t *p, size_t n, uint64_t ts)
{
	struct reasm_flow *f = h->flow;

	h->next += (uint32_t)n;
	if (n == 0) {
		return;
	}
	if (f->ignore) {
		r->st.ignored_bytes += n;
		return;
	}
	r->st.delivered_bytes += n;
	if (r->cb.data != NULL) {
		r->cb.data(r->cb.ctx, f, (enum reasm_dir)h->dir, p, n, ts);
	}
}

static void
report_gap(struct reasm *r, struct half *h, uint32_t lost, uint64_t ts)
{
	if (lost == 0) {
		return;
	}
	h->next += lost;
	r->st.gaps++;
	r->st.gap_bytes += lost;
	if (!h->flow->ignore && r->cb.gap != NULL) {
		r->cb.gap(r->cb.ctx, h->flow, (enum reasm_dir)h->dir, lost, ts);
	}
}

static void
held_pop(struct reasm *r, struct half *h)
{
	struct held *x = h->head;

	h->head = x->next;
	stat_held(r, h->flow, -(long long)x->len, -1);
	free(x);
}

/* Delivers held runs that next has reached (trimming any part already delivered). */
static void
half_drain(struct reasm *r, struct half *h, uint64_t ts)
{
	struct held *x;
	uint32_t skip;

	while ((x = h->head) != NULL && SEQ_LEQ(x->seq, h->next)) {
		skip = h->next - x->seq;
		if (skip < x->len) {
			deliver(r, h, x->data + skip, x->len - skip, ts);
		}
		held_pop(r, h);
	}
	half_check_fin(h);
}

/* A FIN ends the stream: bytes held past it were never sent by a real peer. */
static void
half_drop_past_fin(struct reasm *r, struct half *h)
{
	struct held **pp = &h->head, *x;
	uint32_t cut;

	while ((x = *pp) != NULL) {
		if (SEQ_GEQ(x->seq, h->fin_seq)) {
			*pp = x->next;
			r->st.after_fin_bytes += x->len;
			stat_held(r, h->flow, -(long long)x->len, -1);
			free(x);
			continue;
		}
		if (SEQ_GT(x->seq + x->len, h->fin_seq)) {
			cut = x->seq + x->len - h->fin_seq;
			x->len -= cut;
			r->st.after_fin_bytes += cut;
			stat_held(r, h->flow, -(long long)cut, 0);
		}
		pp = &x->next;
	}
}

/* Gives up the bytes between next and `target` (gap), then delivers what follows. */
static void
half_skip_to(struct reasm *r, struct half *h, uint32_t target, uint64_t ts)
{
	if (SEQ_GT(target, h->next)) {
		report_gap(r, h, target - h->next, ts);
	}
	half_drain(r, h, ts);
	half_sync_holes(r, h, true, ts);
}

/* Gives up every hole of h, delivering all it holds. */
static void
half_flush_all(struct reasm *r, struct half *h, uint64_t ts)
{
	uint32_t t;

	while (h->init && half_target(h, &t)) {
		half_skip_to(r, h, t, ts);
	}
	holes_unlink(r, h);
}

/* ---- flow table ---------------------------------------------------------------------- */

static struct reasm_flow **
bucket_of(struct reasm *r, const struct flow_key *k)
{
	return &r->buckets[key_hash(k, r->seed) & r->mask];
}

static struct reasm_flow *
flow_find(struct reasm *r, const struct flow_key *k)
{
	struct reasm_flow *f;

	for (f = *bucket_of(r, k); f != NULL; f = f->chain) {
		if (memcmp(&f->key, k, sizeof(*k)) == 0) {
			return f;
		}
	}
	return NULL;
}

static void
lru_unlink(struct reasm *r, struct reasm_flow *f)
{
	if (f->lprev != NULL) {
		f->lprev->lnext = f->lnext;
	} else {
		r->lru_head = f->lnext;
	}
	if (f->lnext != NULL) {
		f->lnext->lprev = f->lprev;
	} else {
		r->lru_tail = f->lprev;
	}
	f->lprev = f->lnext = NULL;
}

static void
lru_append(struct reasm *r, struct reasm_flow *f)
{
	f->lprev = r->lru_tail;
	f->lnext = NULL;
	if (r->lru_tail != NULL) {
		r->lru_tail->lnext = f;
	} else {
		r->lru_head = f;
	}
	r->lru_tail = f;
}

static void
flow_touch(struct reasm *r, struct reasm_flow *f, uint64_t ts)
{
	if (ts > f->last_ts) {
		f->last_ts = ts;
	}
	if (r->lru_tail != f) {
		lru_unlink(r, f);
		lru_append(r, f);
	}
}

/* Delivers what f holds (holes become gaps), runs the close callback, frees f. */
static void
flow_close(struct reasm *r, struct reasm_flow *f, enum reasm_close_why why, uint64_t ts)
{
	struct reasm_flow **pp;
	int d;

	for (d = 0; d < 2; d++) {
		half_flush_all(r, &f->half[d], ts);
	}
	if (r->cb.close != NULL) {
		r->cb.close(r->cb.ctx, f, why, ts);
	}
	for (pp = bucket_of(r, &f->key); *pp != f; pp = &(*pp)->chain) {
		REASM_ASSERT(*pp != NULL);
	}
	*pp = f->chain;
	lru_unlink(r, f);
	for (d = 0; d < 2; d++) {
		holes_unlink(r, &f->half[d]);
		while (f->half[d].head != NULL) {
			held_pop(r, &f->half[d]);
		}
	}
	REASM_ASSERT(f->held_bytes == 0 && f->held_segs == 0);
	r->st.flows_closed++;
	r->st.flows_closed_by[why]++;
	if (why == REASM_CLOSE_EVICTED) {
		r->st.flows_evicted++;
	}
	r->st.flows_now--;
	free(f);
}

static struct reasm_flow *
flow_open(struct reasm *r, const struct flow_key *k, bool midstream, uint64_t ts)
{
	struct reasm_flow *f, **b;
	int d;

	while (r->st.flows_now >= r->lim.max_flows && r->lru_head != NULL) {
		flow_close(r, r->lru_head, REASM_CLOSE_EVICTED, ts);
	}
	f = calloc(1, sizeof(*f));
	if (f == NULL) {
		return NULL;
	}
	f->key = *k;
	f->id = ++r->next_id;
	f->last_ts = ts;
	f->midstream = midstream;
	for (d = 0; d < 2; d++) {
		f->half[d].flow = f;
		f->half[d].dir = (uint8_t)d;
	}
	b = bucket_of(r, k);
	f->chain = *b;
	*b = f;
	lru_append(r, f);
	r->st.flows_opened++;
	r->st.flows_now++;
	if (midstream) {
		r->st.midstream_flows++;
	}
	if (r->cb.open != NULL) {
		r->cb.open(r->cb.ctx, f, ts);
	}
	return f;
}

static void
flow_maybe_fin(struct reasm *r, struct reasm_flow *f, uint64_t ts)
{
	if (f->half[0].fin_done && f->half[1].fin_done) {
		flow_close(r, f, REASM_CLOSE_FIN, ts);
	}
}

/* Gives up the oldest hole in the table (another flow's, possibly closing it). */
static void
flush_oldest_hole(struct reasm *r, const struct reasm_flow *cur, uint64_t ts)
{
	struct half *h = r->holes_head;
	uint32_t t;

	if (h == NULL) {
		return;
	}
	if (!half_target(h, &t)) { /* resolved since it was listed (a drain reached its FIN) */
		holes_unlink(r, h);
		return;
	}
	half_skip_to(r, h, t, ts);
	if (h->flow != cur) {
		flow_maybe_fin(r, h->flow, ts);
	}
}

void
reasm_expire(struct reasm *r, uint64_t ts)
{
	struct reasm_flow *f;
	struct half *h;
	uint32_t t;

	while ((f = r->lru_head) != NULL && ts > f->last_ts &&
	       ts - f->last_ts >= r->lim.idle_timeout_us) {
		flow_close(r, f, REASM_CLOSE_IDLE, ts);
	}
	while ((h = r->holes_head) != NULL && ts > h->hole_since &&
	       ts - h->hole_since >= r->lim.hole_timeout_us) {
		if (!half_target(h, &t)) {
			holes_unlink(r, h);
			continue;
		}
		half_skip_to(r, h, t, ts);
		flow_maybe_fin(r, h->flow, ts);
	}
}

/* ---- one direction's bytes ----------------------------------------------------------- */

static unsigned
overlapping_runs(const struct half *h, uint32_t seq, uint32_t end)
{
	const struct held *x;
	unsigned n = 0;

	for (x = h->head; x != NULL && SEQ_LT(x->seq, end); x = x->next) {
		if (SEQ_GT(x->seq + x->len, seq)) {
			n++;
		}
	}
	return n;
}

/* Copies [seq, seq+len) into h's held runs, around the runs already there: where they
 * overlap, the bytes seen first win and a difference counts as a conflict. */
static void
hold(struct reasm *r, struct half *h, uint32_t seq, const uint8_t *p, uint32_t len)
{
	struct held **pp = &h->head, *cur, *x;
	uint32_t end = seq + len, cend, n;

	while (len > 0) {
		cur = *pp;
		cend = cur != NULL ? cur->seq + cur->len : 0;
		if (cur == NULL || SEQ_LEQ(end, cur->seq)) {
			n = len; /* no run left to overlap: the rest goes in before cur */
		} else if (SEQ_LEQ(cend, seq)) {
			pp = &cur->next;
			continue;
		} else if (SEQ_GEQ(seq, cur->seq)) {
			n = (SEQ_LT(end, cend) ? end : cend) - seq;
			if (memcmp(p, cur->data + (seq - cur->seq), n) != 0) {
				r->st.overlap_conflicts++;
			}
			r->st.retrans_bytes += n;
			seq += n;
			p += n;
			len -= n;
			pp = &cur->next;
			continue;
		} else {
			n = cur->seq - seq;
		}
		x = malloc(sizeof(*x) + n);
		if (x == NULL) {
			return; /* the hole stays; its timeout will give it up */
		}
		x->seq = seq;
		x->len = n;
		memcpy(x->data, p, n);
		x->next = *pp;
		*pp = x;
		stat_held(r, h->flow, n, 1);
		pp = &x->next;
		seq += n;
		p += n;
		len -= n;
	}
}

/* Makes room to hold `len` bytes in `pieces` runs.  True when they fit; false when it
 * had to give up h's first hole instead (h->next moved: the caller starts over). */
static bool
make_room(struct reasm *r, struct half *h, uint32_t seq, uint32_t len, unsigned pieces,
	  uint64_t ts)
{
	struct reasm_flow *f = h->flow;
	struct half *o = &f->half[!h->dir];
	bool flow_full, all_full;
	uint32_t before;

	for (;;) {
		flow_full = f->held_bytes + len > r->lim.flow_hold_bytes ||
			    f->held_segs + pieces > r->lim.flow_hold_segs;
		all_full = r->st.held_bytes_now + len > r->lim.total_hold_bytes;
		if (!flow_full && !all_full) {
			return true;
		}
		if (h->head != NULL) {
			half_skip_to(r, h, SEQ_LT(seq, h->head->seq) ? seq : h->head->seq, ts);
			return false;
		}
		if (flow_full && o->head != NULL) {
			half_skip_to(r, o, o->head->seq, ts);
		} else if (!flow_full && r->holes_head != NULL) {
			before = h->next;
			flush_oldest_hole(r, f, ts);
			if (h->next != before) { /* that was h's own FIN wait */
				return false;
			}
		} else {
			half_skip_to(r, h, seq, ts);
			return false;
		}
	}
}

/* Payload [seq, seq+seg_len) of which the first len bytes were captured. */
static void
half_data(struct reasm *r, struct half *h, uint32_t seq, const uint8_t *p, uint32_t len,
	  uint32_t seg_len, uint64_t ts)
{
	uint32_t start = h->next, d, n, lim;

	if (h->fin_seen && SEQ_GT(seq + seg_len, h->fin_seq)) { /* nothing follows a FIN */
		d = SEQ_GT(h->fin_seq, seq) ? h->fin_seq - seq : 0;
		r->st.after_fin_bytes += seg_len - d;
		seg_len = d;
		len = len < d ? len : d;
	}
	if (SEQ_GT(seq, h->next)) {
		r->st.ooo_segments++;
	}
	while (seg_len > 0) {
		if (SEQ_LT(seq, h->next)) { /* already delivered: drop that part */
			d = h->next - seq;
			r->st.retrans_bytes += d < seg_len ? d : seg_len;
			if (d >= seg_len) {
				break;
			}
			seq += d;
			seg_len -= d;
			n = d < len ? d : len;
			p += n;
			len -= n;
		}
		if (seg_len == 0) {
			break;
		}
		if (seq != h->next) { /* ahead: hold what was captured */
			if (len == 0 || !make_room(r, h, seq, len,
						   overlapping_runs(h, seq, seq + len) + 1, ts)) {
				if (len == 0) {
					break;
				}
				continue;
			}
			hold(r, h, seq, p, len);
			break;
		}
		lim = h->head != NULL ? h->head->seq - seq : seg_len;
		if (len > 0) {
			n = len < lim ? len : lim;
			deliver(r, h, p, n, ts);
			p += n;
			len -= n;
		} else { /* the capture cut this segment: those bytes are lost */
			n = seg_len < lim ? seg_len : lim;
			report_gap(r, h, n, ts);
		}
		seq += n;
		seg_len -= n;
		if (h->head != NULL && h->head->seq == h->next) {
			n = len < h->head->len ? len : h->head->len;
			if (n > 0 && memcmp(p, h->head->data, n) != 0) {
				r->st.overlap_conflicts++;
			}
			half_drain(r, h, ts);
			half_sync_holes(r, h, true, ts); /* make_room may walk the list next */
		}
	}
	half_check_fin(h);
	half_sync_holes(r, h, h->next != start, ts);
}

/* An ack from the other side for half o: bytes below it were received, so a hole below
 * it will never be filled by a retransmission. */
static void
peer_ack(struct reasm *r, struct reasm_flow *f, struct half *o, uint32_t ack, uint64_t ts)
{
	uint32_t t;

	if (!o->init) {
		if (!f->midstream) { /* its SYN was missed but the handshake was seen */
			o->init = true;
			o->next = ack;
		}
		return;
	}
	if (!o->ack_valid || SEQ_GT(ack, o->peer_ack)) {
		o->peer_ack = ack;
		o->ack_valid = true;
	}
	/* The grace period: a capture can reorder packets of the two directions a little
	 * (per-CPU queues), so an ack may be seen just before the data it acknowledges. */
	if (!f->ignore && half_target(o, &t) && SEQ_LEQ(t, o->peer_ack) && o->in_holes &&
	    ts >= o->hole_since + r->lim.ack_grace_us) {
		half_skip_to(r, o, t, ts);
	}
}

static void
flow_segment(struct reasm *r, struct reasm_flow *f, enum reasm_dir dir,
	     const struct pkt_tcp *seg, uint64_t ts)
{
	struct half *h = &f->half[dir];
	uint32_t dseq = seg->seq;

	if (seg->flags & PKT_TCP_ACK) {
		peer_ack(r, f, &f->half[!dir], seg->ack, ts);
	}
	if (seg->flags & PKT_TCP_SYN) {
		if (!h->init) {
			h->init = h->syn_seen = true;
			h->isn = seg->seq;
			h->next = seg->seq + 1;
		}
		dseq++; /* SYN takes one sequence number; any data follows it */
	}
	if (!h->init && (seg->seg_len > 0 || (seg->flags & PKT_TCP_FIN))) {
		h->init = true; /* joining mid-stream: start at the first byte seen */
		h->next = dseq;
	}
	if (f->ignore) {
		r->st.ignored_bytes += seg->len;
	} else if (seg->seg_len > 0) {
		half_data(r, h, dseq, seg->payload, (uint32_t)seg->len, (uint32_t)seg->seg_len, ts);
	}
	if ((seg->flags & PKT_TCP_FIN) && h->init && !h->fin_seen) {
		h->fin_seen = true;
		h->fin_seq = dseq + (uint32_t)seg->seg_len;
		half_drop_past_fin(r, h);
		if (f->ignore) {
			h->fin_done = true;
		}
		half_check_fin(h);
		half_sync_holes(r, h, false, ts);
	}
	if (seg->flags & PKT_TCP_RST) {
		flow_close(r, f, REASM_CLOSE_RST, ts);
		return;
	}
	flow_maybe_fin(r, f, ts);
}

/* ---- entry points -------------------------------------------------------------------- */

static bool
orient(const struct reasm *r, const struct pkt_tcp *s, enum reasm_dir *dir)
{
	bool to_server = is_server_port(r, s->dport), from_server = is_server_port(r, s->sport);

	if (to_server && from_server) { /* any fixed rule works, if both directions agree */
		if (s->dport != s->sport) {
			to_server = s->dport < s->sport;
		} else {
			to_server = memcmp(s->dst, s->src, sizeof(s->dst)) <= 0;
		}
	} else if (!to_server && !from_server) {
		return false;
	}
	*dir = to_server ? REASM_C2S : REASM_S2C;
	return true;
}

static void
key_build(const struct pkt_tcp *s, enum reasm_dir dir, struct flow_key *k)
{
	bool c2s = dir == REASM_C2S;

	memset(k, 0, sizeof(*k));
	k->ipver = s->ipver;
	memcpy(k->caddr, c2s ? s->src : s->dst, 16);
	memcpy(k->saddr, c2s ? s->dst : s->src, 16);
	k->cport = c2s ? s->sport : s->dport;
	k->sport = c2s ? s->dport : s->sport;
}

/* A client SYN that cannot belong to f: the 4-tuple is being reused. */
static bool
flow_reused(const struct reasm_flow *f, const struct pkt_tcp *s, enum reasm_dir dir)
{
	const struct half *c = &f->half[REASM_C2S];

	if (dir != REASM_C2S || (s->flags & (PKT_TCP_SYN | PKT_TCP_ACK)) != PKT_TCP_SYN) {
		return false;
	}
	return c->syn_seen ? s->seq != c->isn : f->midstream;
}

void
reasm_segment(struct reasm *r, const struct pkt_tcp *seg, uint64_t ts)
{
	struct flow_key k;
	struct reasm_flow *f;
	enum reasm_dir dir;

	r->st.packets++;
	r->st.bytes += seg->len;
	if (seg->truncated) {
		r->st.truncated++;
	}
	reasm_expire(r, ts);
	if (!orient(r, seg, &dir)) {
		r->st.no_server_port++;
		return;
	}
	if (seg->seg_len > MAX_SEG_LEN || seg->len > seg->seg_len ||
	    (seg->len > 0 && seg->payload == NULL)) {
		r->st.bad_segments++;
		return;
	}
	key_build(seg, dir, &k);
	f = flow_find(r, &k);
	if (f != NULL && flow_reused(f, seg, dir)) {
		flow_close(r, f, REASM_CLOSE_REUSED, ts);
		f = NULL;
	}
	if (f == NULL) {
		if ((seg->flags & PKT_TCP_RST) || (seg->seg_len == 0 && !(seg->flags & PKT_TCP_SYN))) {
			r->st.no_flow++;
			return;
		}
		f = flow_open(r, &k, !(seg->flags & PKT_TCP_SYN), ts);
		if (f == NULL) {
			return;
		}
	}
	flow_touch(r, f, ts);
	flow_segment(r, f, dir, seg, ts);
}

struct reasm *
reasm_new(const uint16_t *server_ports, size_t nports, const struct reasm_limits *limits,
	  const struct reasm_callbacks *cb)
{
	struct reasm_limits def;
	struct reasm *r;
	size_t i, nb = 16;

	if (server_ports == NULL || nports == 0) {
		return NULL;
	}
	r = calloc(1, sizeof(*r));
	if (r == NULL) {
		return NULL;
	}
	reasm_limits_default(&def);
	r->lim = limits != NULL ? *limits : def;
#define LIM_DEFAULT(x)                                                                             \
	if (r->lim.x == 0) {                                                                       \
		r->lim.x = def.x;                                                                  \
	}
	LIM_DEFAULT(max_flows)
	LIM_DEFAULT(flow_hold_bytes)
	LIM_DEFAULT(flow_hold_segs)
	LIM_DEFAULT(total_hold_bytes)
	LIM_DEFAULT(idle_timeout_us)
	LIM_DEFAULT(hole_timeout_us)
	LIM_DEFAULT(ack_grace_us)
#undef LIM_DEFAULT
	if (cb != NULL) {
		r->cb = *cb;
	}
	for (i = 0; i < nports; i++) {
		r->ports[server_ports[i] >> 3] |= (uint8_t)(1u << (server_ports[i] & 7));
	}
	while (nb < 2 * r->lim.max_flows && nb < ((size_t)1 << 24)) {
		nb <<= 1;
	}
	r->buckets = calloc(nb, sizeof(*r->buckets));
	if (r->buckets == NULL) {
		free(r);
		return NULL;
	}
	r->mask = nb - 1;
	if (getrandom(&r->seed, sizeof(r->seed), GRND_NONBLOCK) != (ssize_t)sizeof(r->seed)) {
		r->seed = (uint64_t)(uintptr_t)r; /* any value works; random only hardens */
	}
	return r;
}

void
reasm_close_all(struct reasm *r, uint64_t ts)
{
	while (r->lru_head != NULL) {
		flow_close(r, r->lru_head, REASM_CLOSE_END, ts);
	}
}

void
reasm_free(struct reasm *r)
{
	uint64_t ts = 0;

	if (r == NULL) {
		return;
	}
	if (r->lru_tail != NULL) {
		ts = r->lru_tail->last_ts;
	}
	reasm_close_all(r, ts);
	free(r->buckets);
	free(r);
}

void
reasm_get_stats(const struct reasm *r, struct reasm_stats *out)
{
	*out = r->st;
}

const char *
reasm_close_name(enum reasm_close_why why)
{
	static const char *const names[REASM_CLOSE_MAX] = {
		[REASM_CLOSE_FIN] = "fin",         [REASM_CLOSE_RST] = "rst",
		[REASM_CLOSE_IDLE] = "idle",       [REASM_CLOSE_EVICTED] = "evicted",
		[REASM_CLOSE_REUSED] = "reused",   [REASM_CLOSE_END] = "end",
	};

	return (unsigned)why < REASM_CLOSE_MAX ? names[why] : "?";
}

/* ---- per flow ------------------------------------------------------------------------ */

void *
reasm_flow_user(const struct reasm_flow *f)
{
	return f->user;
}

void
reasm_flow_set_user(struct reasm_flow *f, void *user)
{
	f->user = user;
}

bool
reasm_flow_midstream(const struct reasm_flow *f)
{
	return f->midstream;
}

uint64_t
reasm_flow_id(const struct reasm_flow *f)
{
	return f->id;
}

void
reasm_flow_ignore(struct reasm_flow *f)
{
	f->ignore = true;
}

void
reasm_flow_endpoints(const struct reasm_flow *f, uint8_t *ipver, uint8_t client[16],
		     uint16_t *cport, uint8_t server[16], uint16_t *sport)
{
	if (ipver != NULL) {
		*ipver = f->key.ipver;
	}
	if (client != NULL) {
		memcpy(client, f->key.caddr, 16);
	}
	if (server != NULL) {
		memcpy(server, f->key.saddr, 16);
	}
	if (cport != NULL) {
		*cport = f->key.cport;
	}
	if (sport != NULL) {
		*sport = f->key.sport;
	}
}

static void
fmt_ep(uint8_t ipver, const uint8_t *a, uint16_t port, char *out, size_t len)
{
	char ip[INET6_ADDRSTRLEN] = "?";

	inet_ntop(ipver == 6 ? AF_INET6 : AF_INET, a, ip, sizeof(ip));
	snprintf(out, len, ipver == 6 ? "[%s]:%u" : "%s:%u", ip, (unsigned)port);
}

char *
reasm_flow_name(const struct reasm_flow *f, char *buf, size_t len)
{
	char c[64], s[64];

	fmt_ep(f->key.ipver, f->key.caddr, f->key.cport, c, sizeof(c));
	fmt_ep(f->key.ipver, f->key.saddr, f->key.sport, s, sizeof(s));
	if (len > 0) {
		snprintf(buf, len, "%s>%s", c, s);
	}
	return buf;
}
