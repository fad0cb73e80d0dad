/* capture/pkt.c: link layer -> IP -> TCP parsing.  Every read is checked against the
 * captured length; the IP length (not the frame length) bounds the TCP payload. */
#include "capture/pkt.h"

#include <string.h>

#define ETHERTYPE_IPV4 0x0800
#define ETHERTYPE_IPV6 0x86dd
#define ETHERTYPE_VLAN 0x8100   /* 802.1Q */
#define ETHERTYPE_QINQ 0x88a8   /* 802.1ad */
#define ETHERTYPE_QINQ_OLD 0x9100
#define MAX_VLAN_TAGS 8
#define MAX_IP6_EXT 8

#define IPPROTO_NUM_TCP 6
#define IP6_EXT_HOPOPTS 0
#define IP6_EXT_ROUTING 43
#define IP6_EXT_FRAGMENT 44
#define IP6_EXT_AH 51
#define IP6_EXT_DSTOPTS 60

/* Address family values seen in NULL/LOOP headers: AF_INET is 2 everywhere, AF_INET6
 * differs per OS (Linux 10, NetBSD/OpenBSD 24, FreeBSD 28, macOS 30). */
#define LOOP_AF_INET 2

/* A bounded window over the frame: all reads go through it. */
struct cur {
	const uint8_t *p;
	size_t n;
};

static uint16_t
rd_u16be(const uint8_t *p)
{
	return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static uint32_t
rd_u32be(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint32_t
rd_u32le(const uint8_t *p)
{
	return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

static bool
loop_af_inet6(uint32_t af)
{
	return af == 10 || af == 24 || af == 28 || af == 30;
}

/* Loopback header: the family word may be in either byte order (DLT_NULL is the
 * capturing host's order, DLT_LOOP network order, and files travel). */
static enum pkt_rc
link_loop(struct cur *c, unsigned *ipver)
{
	uint32_t be, le;

	if (c->n < 4) {
		return PKT_LINK_TRUNC;
	}
	be = rd_u32be(c->p);
	le = rd_u32le(c->p);
	c->p += 4;
	c->n -= 4;
	if (be == LOOP_AF_INET || le == LOOP_AF_INET) {
		*ipver = 4;
	} else if (loop_af_inet6(be) || loop_af_inet6(le)) {
		*ipver = 6;
	} else {
		return PKT_NOT_IP;
	}
	return PKT_OK;
}

static enum pkt_rc
ethertype_ipver(uint16_t et, unsigned *ipver)
{
	if (et == ETHERTYPE_IPV4) {
		*ipver = 4;
	} else if (et == ETHERTYPE_IPV6) {
		*ipver = 6;
	} else {
		return PKT_NOT_IP;
	}
	return PKT_OK;
}

static enum pkt_rc
link_ether(struct cur *c, unsigned *ipver)
{
	size_t off = 12;
	uint16_t et;
	int tags = 0;

	if (c->n < 14) {
		return PKT_LINK_TRUNC;
	}
	et = rd_u16be(c->p + off);
	while (et == ETHERTYPE_VLAN || et == ETHERTYPE_QINQ || et == ETHERTYPE_QINQ_OLD) {
		if (++tags > MAX_VLAN_TAGS) {
			return PKT_NOT_IP;
		}
		off += 4;
		if (c->n < off + 2) {
			return PKT_LINK_TRUNC;
		}
		et = rd_u16be(c->p + off);
	}
	c->p += off + 2;
	c->n -= off + 2;
	return ethertype_ipver(et, ipver);
}

/* Linux cooked headers: SLL has the protocol at offset 14 of 16, SLL2 at 0 of 20. */
static enum pkt_rc
link_sll(struct cur *c, unsigned *ipver, size_t hdr, size_t proto_off)
{
	uint16_t et;

	if (c->n < hdr) {
		return PKT_LINK_TRUNC;
	}
	et = rd_u16be(c->p + proto_off);
	c->p += hdr;
	c->n -= hdr;
	return ethertype_ipver(et, ipver);
}

static enum pkt_rc
link_raw(struct cur *c, unsigned *ipver)
{
	if (c->n < 1) {
		return PKT_IP_TRUNC; /* no link header: nothing of the IP header arrived */
	}
	*ipver = c->p[0] >> 4;
	return (*ipver == 4 || *ipver == 6) ? PKT_OK : PKT_NOT_IP;
}

static enum pkt_rc
link_strip(int linktype, struct cur *c, unsigned *ipver)
{
	switch (linktype) {
	case PKT_LINK_NULL:
	case PKT_LINK_LOOP:
		return link_loop(c, ipver);
	case PKT_LINK_EN10MB:
		return link_ether(c, ipver);
	case PKT_LINK_LINUX_SLL:
		return link_sll(c, ipver, 16, 14);
	case PKT_LINK_LINUX_SLL2:
		return link_sll(c, ipver, 20, 0);
	case PKT_LINK_RAW:
	case PKT_LINK_RAW_BSD:
	case PKT_LINK_RAW_FILE:
		return link_raw(c, ipver);
	case PKT_LINK_IPV4:
		*ipver = 4;
		return PKT_OK;
	case PKT_LINK_IPV6:
		*ipver = 6;
		return PKT_OK;
	default:
		return PKT_BAD_LINKTYPE;
	}
}

bool
pkt_linktype_supported(int linktype)
{
	struct cur c = {(const uint8_t *)"", 0};
	unsigned v;

	return link_strip(linktype, &c, &v) != PKT_BAD_LINKTYPE;
}

/* IPv4: on return *c is the IP payload, cut to the total length (or to what was
 * captured, with *wire_len the length the header claims). */
static enum pkt_rc
ip4(struct cur *c, struct pkt_tcp *out, size_t *wire_len)
{
	size_t ihl, tot;
	uint16_t frag;

	if (c->n < 20) {
		return PKT_IP_TRUNC;
	}
	if (c->p[0] >> 4 != 4) {
		return PKT_IP_BAD;
	}
	ihl = (size_t)(c->p[0] & 0x0f) * 4;
	tot = rd_u16be(c->p + 2);
	if (tot == 0) {
		tot = c->n; /* TSO on the capturing host leaves 0: trust the capture */
	}
	if (ihl < 20 || tot < ihl) {
		return PKT_IP_BAD;
	}
	if (c->n < ihl) {
		return PKT_IP_TRUNC;
	}
	frag = rd_u16be(c->p + 6);
	if ((frag & 0x3fff) != 0) { /* MF set or a non-zero offset */
		return PKT_FRAGMENT;
	}
	if (c->p[9] != IPPROTO_NUM_TCP) {
		return PKT_NOT_TCP;
	}
	out->ipver = 4;
	memcpy(out->src, c->p + 12, 4);
	memcpy(out->dst, c->p + 16, 4);
	*wire_len = tot - ihl;
	c->n = (tot < c->n ? tot : c->n) - ihl;
	c->p += ihl;
	return PKT_OK;
}

/* Skips IPv6 extension headers up to the upper-layer header; *nh is its number. */
static enum pkt_rc
ip6_ext(struct cur *c, uint8_t *nh, size_t *wire_len)
{
	int i;
	size_t len;

	for (i = 0; i <= MAX_IP6_EXT; i++) {
		switch (*nh) {
		case IP6_EXT_HOPOPTS:
		case IP6_EXT_ROUTING:
		case IP6_EXT_DSTOPTS:
		case IP6_EXT_AH:
			break;
		case IP6_EXT_FRAGMENT:
			return PKT_FRAGMENT;
		default:
			return PKT_OK;
		}
		if (c->n < 8) {
			return *wire_len < 8 ? PKT_IP6_EXT_BAD : PKT_IP_TRUNC;
		}
		len = *nh == IP6_EXT_AH ? ((size_t)c->p[1] + 2) * 4 : ((size_t)c->p[1] + 1) * 8;
		if (*wire_len < len) {
			return PKT_IP6_EXT_BAD;
		}
		if (c->n < len) {
			return PKT_IP_TRUNC;
		}
		*nh = c->p[0];
		c->p += len;
		c->n -= len;
		*wire_len -= len;
	}
	return PKT_IP6_EXT_BAD;
}

static enum pkt_rc
ip6(struct cur *c, struct pkt_tcp *out, size_t *wire_len)
{
	size_t plen;
	uint8_t nh;
	enum pkt_rc rc;

	if (c->n < 40) {
		return PKT_IP_TRUNC;
	}
	if (c->p[0] >> 4 != 6) {
		return PKT_IP_BAD;
	}
	plen = rd_u16be(c->p + 4);
	if (plen == 0) {
		plen = c->n - 40; /* jumbogram or offload: trust the capture */
	}
	nh = c->p[6];
	out->ipver = 6;
	memcpy(out->src, c->p + 8, 16);
	memcpy(out->dst, c->p + 24, 16);
	c->p += 40;
	c->n -= 40;
	if (plen < c->n) {
		c->n = plen;
	}
	*wire_len = plen;
	rc = ip6_ext(c, &nh, wire_len);
	if (rc != PKT_OK) {
		return rc;
	}
	return nh == IPPROTO_NUM_TCP ? PKT_OK : PKT_NOT_TCP;
}

static enum pkt_rc
tcp(struct cur *c, size_t wire_len, struct pkt_tcp *out)
{
	size_t doff;

	if (c->n < 20) {
		return wire_len < 20 ? PKT_TCP_BAD : PKT_TCP_TRUNC;
	}
	doff = (size_t)(c->p[12] >> 4) * 4;
	if (doff < 20 || doff > wire_len) {
		return PKT_TCP_BAD;
	}
	if (c->n < doff) {
		return PKT_TCP_TRUNC;
	}
	out->sport = rd_u16be(c->p);
	out->dport = rd_u16be(c->p + 2);
	out->seq = rd_u32be(c->p + 4);
	out->ack = rd_u32be(c->p + 8);
	out->flags = c->p[13] & (PKT_TCP_FIN | PKT_TCP_SYN | PKT_TCP_RST | PKT_TCP_PSH | PKT_TCP_ACK);
	out->payload = c->p + doff;
	out->len = c->n - doff;
	out->seg_len = wire_len - doff;
	out->truncated = out->len < out->seg_len;
	return PKT_OK;
}

enum pkt_rc
pkt_parse(int linktype, const uint8_t *p, size_t caplen, struct pkt_tcp *out)
{
	struct cur c = {p, caplen};
	unsigned ipver = 0;
	size_t wire_len = 0;
	enum pkt_rc rc;

	memset(out, 0, sizeof(*out));
	if (p == NULL) {
		c.n = 0;
	}
	rc = link_strip(linktype, &c, &ipver);
	if (rc != PKT_OK) {
		return rc;
	}
	if (c.n < 1) {
		return PKT_IP_TRUNC;
	}
	if (ipver == 4) {
		rc = ip4(&c, out, &wire_len);
	} else {
		rc = ip6(&c, out, &wire_len);
	}
	if (rc != PKT_OK) {
		return rc;
	}
	return tcp(&c, wire_len, out);
}

enum pkt_rc
pkt_parse_count(int linktype, const uint8_t *p, size_t caplen, struct pkt_tcp *out,
		struct pkt_counts *cnt)
{
	enum pkt_rc rc = pkt_parse(linktype, p, caplen, out);

	cnt->n[rc]++;
	return rc;
}

const char *
pkt_rc_name(enum pkt_rc rc)
{
	static const char *const names[PKT_RC_MAX] = {
		[PKT_OK] = "ok",
		[PKT_BAD_LINKTYPE] = "bad_linktype",
		[PKT_LINK_TRUNC] = "link_trunc",
		[PKT_NOT_IP] = "not_ip",
		[PKT_IP_TRUNC] = "ip_trunc",
		[PKT_IP_BAD] = "ip_bad",
		[PKT_IP6_EXT_BAD] = "ip6_ext_bad",
		[PKT_FRAGMENT] = "fragment",
		[PKT_NOT_TCP] = "not_tcp",
		[PKT_TCP_TRUNC] = "tcp_trunc",
		[PKT_TCP_BAD] = "tcp_bad",
	};

	return (unsigned)rc < PKT_RC_MAX ? names[rc] : "?";
}
