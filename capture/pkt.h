/* capture/pkt.h: pure, bounds-checked parser from one captured frame (link type, bytes,
 * caplen) to a view of its TCP segment.  Link layers: Ethernet (stacked 802.1Q/802.1ad
 * tags), Linux cooked SLL and SLL2, BSD loopback NULL/LOOP (either byte order), raw IP.
 * IPv4 and IPv6 (extension headers skipped); fragments are counted and skipped.
 * No allocation, no I/O; the view points into the caller's buffer. */
#ifndef RT_CAPTURE_PKT_H
#define RT_CAPTURE_PKT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Link types (values of pcap_datalink(), which are DLT_* numbers; LINKTYPE_* file
 * values that differ from them are accepted too). */
#define PKT_LINK_NULL 0        /* DLT_NULL: 4-byte address family, sender's byte order */
#define PKT_LINK_EN10MB 1      /* DLT_EN10MB: Ethernet II */
#define PKT_LINK_RAW 12        /* DLT_RAW (Linux value) */
#define PKT_LINK_RAW_BSD 14    /* DLT_RAW on OpenBSD */
#define PKT_LINK_RAW_FILE 101  /* LINKTYPE_RAW as stored in files */
#define PKT_LINK_LOOP 108      /* DLT_LOOP: 4-byte address family, network byte order */
#define PKT_LINK_LINUX_SLL 113 /* DLT_LINUX_SLL: 16-byte cooked header */
#define PKT_LINK_IPV4 228      /* DLT_IPV4 */
#define PKT_LINK_IPV6 229      /* DLT_IPV6 */
#define PKT_LINK_LINUX_SLL2 276 /* DLT_LINUX_SLL2: 20-byte cooked header */

/* TCP flag bits, as on the wire (RFC 9293 section 3.1). */
#define PKT_TCP_FIN 0x01
#define PKT_TCP_SYN 0x02
#define PKT_TCP_RST 0x04
#define PKT_TCP_PSH 0x08
#define PKT_TCP_ACK 0x10

/* Outcome of parsing one frame: PKT_OK or the reason it was skipped. */
enum pkt_rc {
	PKT_OK = 0,          /* a TCP segment: the view is filled */
	PKT_BAD_LINKTYPE,    /* link type not supported */
	PKT_LINK_TRUNC,      /* captured bytes end inside the link header (or VLAN tags) */
	PKT_NOT_IP,          /* link payload is not IPv4/IPv6 (ARP, LLC, other family) */
	PKT_IP_TRUNC,        /* captured bytes end inside the IP header or its options */
	PKT_IP_BAD,          /* bad IP version, IHL, total/payload length */
	PKT_IP6_EXT_BAD,     /* IPv6 extension header chain truncated or too long */
	PKT_FRAGMENT,        /* IPv4/IPv6 fragment (not reassembled) */
	PKT_NOT_TCP,         /* IP payload is another protocol */
	PKT_TCP_TRUNC,       /* captured bytes end inside the TCP header or its options */
	PKT_TCP_BAD,         /* TCP data offset < 5 words or beyond the IP payload */
	PKT_RC_MAX
};

/* A TCP segment, as seen in one frame.  Addresses are in network byte order; an IPv4
 * address fills the first 4 bytes and the other 12 are zero. */
struct pkt_tcp {
	uint8_t ipver;          /* 4 or 6 */
	uint8_t src[16];        /* source address */
	uint8_t dst[16];        /* destination address */
	uint16_t sport;         /* source port, host order */
	uint16_t dport;         /* destination port, host order */
	uint32_t seq;           /* sequence number */
	uint32_t ack;           /* acknowledgment number (meaningful with PKT_TCP_ACK) */
	uint8_t flags;          /* PKT_TCP_* bits */
	const uint8_t *payload; /* first captured payload byte; borrowed from the frame */
	size_t len;             /* payload bytes captured (what *payload holds) */
	size_t seg_len;         /* payload bytes the IP length says were sent (>= len) */
	bool truncated;         /* len < seg_len: the capture cut the payload */
};

/* Parses one frame of link type `linktype` (PKT_LINK_*), `caplen` bytes at `p`.
 * Returns PKT_OK and fills *out (pointing into p) for a TCP segment; otherwise the
 * reason, with *out unspecified.  Ethernet padding beyond the IP length is ignored.
 * Never reads outside p[0..caplen). */
enum pkt_rc pkt_parse(int linktype, const uint8_t *p, size_t caplen, struct pkt_tcp *out);

/* Short static name of a pkt_rc ("ok", "link_trunc", ...); "?" when out of range. */
const char *pkt_rc_name(enum pkt_rc rc);

/* True if pkt_parse knows this link type. */
bool pkt_linktype_supported(int linktype);

/* Per-reason frame counters kept by the caller: n[rc]++ after each pkt_parse. */
struct pkt_counts {
	uint64_t n[PKT_RC_MAX]; /* frames per outcome */
};

/* Parses like pkt_parse and counts the outcome in *c. */
enum pkt_rc pkt_parse_count(int linktype, const uint8_t *p, size_t caplen, struct pkt_tcp *out,
			    struct pkt_counts *c);

#endif /* RT_CAPTURE_PKT_H */
