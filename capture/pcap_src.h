/* capture/pcap_src.h: a libpcap packet source, live (an interface) or offline (a pcap or
 * pcapng file), filtered to TCP on the server ports.
 *
 * Event-loop use (live): pcap_src_set_nonblock(s, true, ...), then watch
 * pcap_src_fd(s) for EV_READ (libevent event_new(base, fd, EV_READ|EV_PERSIST, ...)) and
 * call pcap_src_dispatch(s, -1, ...) from the callback until it returns 0; add a timer of
 * pcap_src_timeout_ms() so packets the kernel still holds in a TPACKET block are not
 * left waiting (libpcap's documented caveat for select()-based loops), and call
 * reasm_expire() from that timer too.  Offline files are read with pcap_src_next or a
 * blocking dispatch loop. */
#ifndef RT_CAPTURE_PCAP_SRC_H
#define RT_CAPTURE_PCAP_SRC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pcap_src; /* opaque */

#define PCAP_SRC_SNAPLEN 262144
#define PCAP_SRC_MAX_PORTS 64

struct pcap_src_pkt {
	uint64_t ts_us;        /* capture time, microseconds since the epoch */
	const uint8_t *data;   /* valid until the next read from this source */
	size_t caplen;         /* bytes captured */
	size_t len;            /* bytes on the wire */
};

enum pcap_src_rc {
	PCAP_SRC_OK = 0,  /* *pkt filled */
	PCAP_SRC_AGAIN,   /* live: no packet now (timeout or non-blocking) */
	PCAP_SRC_EOF,     /* offline: end of file */
	PCAP_SRC_ERROR    /* read error: pcap_src_error() says why */
};

struct pcap_src_stats {
	uint64_t received;   /* live: packets the kernel passed the filter (ps_recv) */
	uint64_t dropped;    /* live: dropped for lack of buffer space (ps_drop) */
	uint64_t ifdropped;  /* live: dropped by the interface/driver (ps_ifdrop) */
};

/* Opens `iface` for live capture: snaplen PCAP_SRC_SNAPLEN, promiscuous mode off,
 * immediate mode, kernel buffer `buffer_bytes` (0 = libpcap default), read timeout
 * 100 ms, filter "tcp port A or tcp port B ..." from `ports` (nports 0 = all TCP).
 * NULL with a reason in err (e.g. permission: needs CAP_NET_RAW) on failure. */
struct pcap_src *pcap_src_open_live(const char *iface, const uint16_t *ports, size_t nports,
				    int buffer_bytes, char *err, size_t errlen);

/* Opens a pcap or pcapng file ("-" = stdin) and applies the same port filter
 * (nports 0 = no filter).  NULL with a reason in err on failure. */
struct pcap_src *pcap_src_open_file(const char *path, const uint16_t *ports, size_t nports,
				    char *err, size_t errlen);

/* Tests: true makes later pcap_src_open_file calls read every file through libpcap
 * (classic pcap files are otherwise read by pcap_src itself, same packets). */
void pcap_src_force_libpcap(bool on);

/* Tests: true if pcap_src reads the file itself rather than through libpcap. */
bool pcap_src_reads_itself(const struct pcap_src *s);

/* Closes and frees.  NULL is a no-op. */
void pcap_src_close(struct pcap_src *s);

/* Link type of the packets (a DLT_* value, as pkt_parse wants). */
int pcap_src_datalink(const struct pcap_src *s);

/* Reads one packet.  Blocks up to the read timeout when live and blocking. */
enum pcap_src_rc pcap_src_next(struct pcap_src *s, struct pcap_src_pkt *pkt);

typedef void (*pcap_src_fn)(void *ctx, const struct pcap_src_pkt *pkt);

/* Runs cb for up to `max` packets (-1 = all in one buffer, as pcap_dispatch).  Returns
 * the number processed (0 = none available / end of file), or -1 on error. */
int pcap_src_dispatch(struct pcap_src *s, int max, pcap_src_fn cb, void *ctx);

/* Live: a descriptor to poll for readability, or -1 (offline, or not selectable). */
int pcap_src_fd(const struct pcap_src *s);

/* Live: the read timeout to use as a poll timer, in milliseconds. */
int pcap_src_timeout_ms(const struct pcap_src *s);

/* Switches non-blocking mode.  False with a reason in err on failure. */
bool pcap_src_set_nonblock(struct pcap_src *s, bool on, char *err, size_t errlen);

/* Live: kernel counters.  False (and *out zeroed) offline or on error. */
bool pcap_src_stats(struct pcap_src *s, struct pcap_src_stats *out);

/* Offline: bytes of the file read so far and its size (0 if unknown, e.g. a pipe).
 * False when live. */
bool pcap_src_progress(struct pcap_src *s, uint64_t *done, uint64_t *total);

/* Reason for the last PCAP_SRC_ERROR (static until the next call). */
const char *pcap_src_error(struct pcap_src *s);

/* Writes the BPF filter for ports into buf ("tcp" when nports is 0).  False if it does
 * not fit or nports > PCAP_SRC_MAX_PORTS. */
bool pcap_src_filter_text(const uint16_t *ports, size_t nports, char *buf, size_t len);

#endif /* RT_CAPTURE_PCAP_SRC_H */
