/* capture/reasm.h: TCP flow table and stream reassembly for passive capture.
 * Segments (from pkt_parse) go in; each connection's two byte streams come out in
 * order through callbacks, with lost stretches reported as gaps.  Time is the packets'
 * own timestamps (microseconds), never the wall clock.  Memory is bounded: number of
 * flows, out-of-order bytes and segments held per flow, and bytes held overall.
 *
 * Glue sketch (one wire_conv per flow):
 *   open:  f->user = midstream ? wire_conv_new_midstream(..) : wire_conv_new(..)
 *   data:  feed (dir == REASM_C2S ? WIRE_C2S : WIRE_S2C) in a loop until all n used
 *   gap:   wire_conv_gap(user, dir)
 *   close: wire_conv_close(user, ts); wire_conv_free(user)
 * Callbacks may call reasm_flow_set_user / reasm_flow_ignore on the flow they are given,
 * and must not call reasm_segment / reasm_expire / reasm_close_all / reasm_free. */
#ifndef RT_CAPTURE_REASM_H
#define RT_CAPTURE_REASM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "capture/pkt.h"

struct reasm;      /* opaque: the flow table */
struct reasm_flow; /* opaque: one TCP connection, owned by the table */

/* Same numbering as enum wire_dir: client->server is 0. */
enum reasm_dir { REASM_C2S = 0, REASM_S2C = 1 };

enum reasm_close_why {
	REASM_CLOSE_FIN = 0, /* both directions sent FIN and every byte before it came */
	REASM_CLOSE_RST,     /* a reset (data before it delivered first) */
	REASM_CLOSE_IDLE,    /* no packet for idle_timeout_us */
	REASM_CLOSE_EVICTED, /* the flow table was full: least recently seen flow evicted */
	REASM_CLOSE_REUSED,  /* a new SYN with another ISN reused the 4-tuple */
	REASM_CLOSE_END,     /* reasm_close_all / reasm_free (end of capture) */
	REASM_CLOSE_MAX
};

typedef void (*reasm_open_fn)(void *ctx, struct reasm_flow *f, uint64_t ts_us);
/* In-order payload of one direction.  p is valid only during the call (it may point into
 * the captured frame). */
typedef void (*reasm_data_fn)(void *ctx, struct reasm_flow *f, enum reasm_dir dir,
			      const uint8_t *p, size_t n, uint64_t ts_us);
/* `bytes_lost` bytes of `dir` will never be delivered; data resumes after them. */
typedef void (*reasm_gap_fn)(void *ctx, struct reasm_flow *f, enum reasm_dir dir,
			     uint64_t bytes_lost, uint64_t ts_us);
/* Last call for f: free whatever f's user pointer holds.  f is freed on return. */
typedef void (*reasm_close_fn)(void *ctx, struct reasm_flow *f, enum reasm_close_why why,
			       uint64_t ts_us);

struct reasm_callbacks {
	reasm_open_fn open;   /* may be NULL */
	reasm_data_fn data;   /* may be NULL */
	reasm_gap_fn gap;     /* may be NULL */
	reasm_close_fn close; /* may be NULL */
	void *ctx;            /* passed to every callback */
};

struct reasm_limits {
	size_t max_flows;          /* flows in the table (default 65536) */
	size_t flow_hold_bytes;    /* out-of-order bytes held per flow (default 4 MiB) */
	unsigned flow_hold_segs;   /* out-of-order segments held per flow (default 1024) */
	size_t total_hold_bytes;   /* out-of-order bytes held, all flows (default 256 MiB) */
	uint64_t idle_timeout_us;  /* flow idle eviction (default 600 s) */
	uint64_t hole_timeout_us;  /* a hole with data held behind it is given up after this
	                              (default 1 s) */
	uint64_t ack_grace_us;     /* ... or as soon as the peer acked bytes past it, once the
	                              hole is this old (default 20 ms) */
};

/* Counters; all monotonic except the *_now fields. */
struct reasm_stats {
	uint64_t packets;           /* segments given to reasm_segment */
	uint64_t bytes;             /* payload bytes in them */
	uint64_t delivered_bytes;   /* bytes passed to the data callback */
	uint64_t no_server_port;    /* segments with neither port a server port (ignored) */
	uint64_t no_flow;           /* segments without payload/SYN for no known flow (ignored) */
	uint64_t truncated;         /* segments whose payload the capture cut */
	uint64_t bad_segments;      /* segments with impossible lengths (ignored) */
	uint64_t flows_opened;
	uint64_t flows_closed;      /* every close, whatever the reason */
	uint64_t flows_closed_by[REASM_CLOSE_MAX]; /* closes per reason */
	uint64_t flows_evicted;     /* == flows_closed_by[REASM_CLOSE_EVICTED] */
	uint64_t midstream_flows;   /* flows opened without seeing the client's SYN */
	uint64_t ooo_segments;      /* segments that arrived ahead of a hole */
	uint64_t retrans_bytes;     /* bytes already delivered or held that came again */
	uint64_t overlap_conflicts; /* overlaps whose bytes differed from the first seen */
	uint64_t after_fin_bytes;   /* bytes past the FIN of their direction (dropped) */
	uint64_t gaps;              /* gap callbacks */
	uint64_t gap_bytes;         /* bytes they reported lost */
	uint64_t ignored_bytes;     /* bytes of flows the glue set to ignore */
	uint64_t held_bytes_now;    /* out-of-order bytes held now */
	uint64_t held_bytes_hwm;    /* high-water mark of held_bytes_now */
	uint64_t flows_now;         /* flows in the table now */
};

/* Fills *l with the defaults above. */
void reasm_limits_default(struct reasm_limits *l);

/* Creates a table.  `server_ports`: the ports a server listens on (the client direction
 * is the one toward a server port); copied.  limits NULL = defaults; zero fields take
 * defaults too.  NULL on allocation failure or nports == 0. */
struct reasm *reasm_new(const uint16_t *server_ports, size_t nports,
			const struct reasm_limits *limits, const struct reasm_callbacks *cb);

/* Closes every flow (REASM_CLOSE_END callbacks) and frees the table.  NULL is a no-op. */
void reasm_free(struct reasm *r);

/* Feeds one segment seen at ts_us.  Its payload is only read during the call (held
 * out-of-order data is copied).  Runs the callbacks synchronously; also expires idle
 * flows and old holes, by ts_us. */
void reasm_segment(struct reasm *r, const struct pkt_tcp *seg, uint64_t ts_us);

/* Expires idle flows and old holes as of ts_us without a packet (a live capture that
 * went quiet).  Cheap: only flows that are due are touched. */
void reasm_expire(struct reasm *r, uint64_t ts_us);

/* Delivers what every flow holds (reporting holes as gaps) and closes all flows with
 * REASM_CLOSE_END: the end of an offline run. */
void reasm_close_all(struct reasm *r, uint64_t ts_us);

/* Copies the counters into *out. */
void reasm_get_stats(const struct reasm *r, struct reasm_stats *out);

/* Short static name of a close reason ("fin", "rst", ...). */
const char *reasm_close_name(enum reasm_close_why why);

/* --- per flow (f is valid from its open callback to the end of its close callback) --- */

void *reasm_flow_user(const struct reasm_flow *f);
void reasm_flow_set_user(struct reasm_flow *f, void *user);

/* True if the flow was opened without seeing the client's SYN: decoding must start by
 * hunting for a command. */
bool reasm_flow_midstream(const struct reasm_flow *f);

/* 1, 2, ... in opening order. */
uint64_t reasm_flow_id(const struct reasm_flow *f);

/* Client and server endpoints: ipver (4/6), address (network order, v4 in the first 4
 * bytes), port (host order).  Any out pointer may be NULL. */
void reasm_flow_endpoints(const struct reasm_flow *f, uint8_t *ipver, uint8_t client[16],
			  uint16_t *cport, uint8_t server[16], uint16_t *sport);

/* Writes "client_ip:port>server_ip:port" (IPv6 in brackets), NUL-terminated, cut to
 * len; returns buf. */
char *reasm_flow_name(const struct reasm_flow *f, char *buf, size_t len);

/* Stops delivering data and gaps for this flow (e.g. the decoder said "not MySQL");
 * its packets are still tracked and counted, and close still fires. */
void reasm_flow_ignore(struct reasm_flow *f);

#endif /* RT_CAPTURE_REASM_H */
