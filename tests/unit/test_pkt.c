/* tests/unit/test_pkt.c: link layer / IP / TCP parsing (capture/pkt.c) on hand-built
 * frames, including every truncation point. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "capture/pkt.h"

static const uint8_t PAYLOAD[] = "SELECT 1 FROM dual";
#define PLEN (sizeof(PAYLOAD) - 1)

struct frame {
	uint8_t b[512];
	size_t n;        /* whole frame */
	size_t link;     /* link header bytes */
	size_t ip;       /* IP header bytes incl. options / extension headers */
	size_t tcp;      /* TCP header bytes incl. options */
};

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

/* TCP header (with `optw` 4-byte words of NOP options) + payload at p. */
static size_t
tcp_hdr(uint8_t *p, unsigned optw, uint8_t flags)
{
	size_t h = 20 + 4 * (size_t)optw;

	memset(p, 0, h);
	put16(p, 40001);
	put16(p + 2, 3306);
	put32(p + 4, 0x11223344);
	put32(p + 8, 0x55667788);
	p[12] = (uint8_t)((h / 4) << 4);
	p[13] = flags;
	memset(p + 20, 1, h - 20); /* NOP options */
	memcpy(p + h, PAYLOAD, PLEN);
	return h;
}

/* IPv4 (ihl words) + TCP at f->b + f->link. */
static void
ip4_tcp(struct frame *f, unsigned ihl, unsigned tcp_optw)
{
	uint8_t *p = f->b + f->link;

	f->ip = 4 * (size_t)ihl;
	memset(p, 0, f->ip);
	p[0] = (uint8_t)(0x40 | ihl);
	p[8] = 64;
	p[9] = 6;
	p[12] = 192, p[13] = 0, p[14] = 2, p[15] = 1;
	p[16] = 192, p[17] = 0, p[18] = 2, p[19] = 2;
	memset(p + 20, 1, f->ip - 20); /* NOP options */
	f->tcp = tcp_hdr(p + f->ip, tcp_optw, PKT_TCP_ACK | PKT_TCP_PSH);
	put16(p + 2, (unsigned)(f->ip + f->tcp + PLEN));
	f->n = f->link + f->ip + f->tcp + PLEN;
}

/* IPv6 + the extension headers listed in ext (0-terminated... use n) + TCP. */
static void
ip6_tcp(struct frame *f, const uint8_t *ext, size_t next_count)
{
	uint8_t *p = f->b + f->link, *e;
	size_t i;

	memset(p, 0, 40);
	p[0] = 0x60;
	p[6] = next_count ? ext[0] : 6;
	p[7] = 64;
	p[8] = 0xfd, p[23] = 1;
	p[24] = 0xfd, p[39] = 2;
	f->ip = 40;
	for (i = 0; i < next_count; i++) {
		e = p + f->ip;
		memset(e, 0, 16);
		e[0] = i + 1 < next_count ? ext[i + 1] : 6;
		if (ext[i] == 51) { /* AH: length in 4-byte units minus 2 */
			e[1] = 2;
			f->ip += 16;
		} else {
			e[1] = 1; /* 16 bytes */
			f->ip += 16;
		}
	}
	f->tcp = tcp_hdr(p + f->ip, 3, PKT_TCP_ACK);
	put16(p + 4, (unsigned)(f->ip - 40 + f->tcp + PLEN));
	f->n = f->link + f->ip + f->tcp + PLEN;
}

static void
ether(struct frame *f, const unsigned *tags, size_t ntags, unsigned et)
{
	size_t i;

	memset(f->b, 0xaa, 12);
	for (i = 0; i < ntags; i++) {
		put16(f->b + 12 + 4 * i, tags[i]);
		put16(f->b + 14 + 4 * i, 100 + (unsigned)i);
	}
	put16(f->b + 12 + 4 * ntags, et);
	f->link = 14 + 4 * ntags;
}

static void
assert_view(const struct pkt_tcp *t, unsigned ipver)
{
	assert_int_equal(t->ipver, ipver);
	assert_int_equal(t->sport, 40001);
	assert_int_equal(t->dport, 3306);
	assert_int_equal(t->seq, 0x11223344);
	assert_int_equal(t->ack, 0x55667788);
	assert_true(t->flags & PKT_TCP_ACK);
	assert_int_equal(t->len, PLEN);
	assert_int_equal(t->seg_len, PLEN);
	assert_false(t->truncated);
	assert_memory_equal(t->payload, PAYLOAD, PLEN);
	if (ipver == 4) {
		assert_int_equal(t->src[3], 1);
		assert_int_equal(t->dst[3], 2);
		assert_int_equal(t->src[4], 0);
	} else {
		assert_int_equal(t->src[15], 1);
		assert_int_equal(t->dst[15], 2);
	}
}

/* Parses f whole (must succeed), then cut at every byte: each cut gives the reason of
 * the layer it falls in, or a truncated view once the TCP header is complete. */
static void
check_frame(int linktype, const struct frame *f, unsigned ipver)
{
	struct pkt_counts cnt;
	struct pkt_tcp t;
	enum pkt_rc rc, want;
	size_t cut, hdrs = f->link + f->ip + f->tcp;
	uint8_t *copy;

	memset(&cnt, 0, sizeof(cnt));
	assert_int_equal(pkt_parse_count(linktype, f->b, f->n, &t, &cnt), PKT_OK);
	assert_view(&t, ipver);
	for (cut = 0; cut < f->n; cut++) {
		copy = malloc(cut ? cut : 1); /* exact size: ASan catches any overread */
		memcpy(copy, f->b, cut);
		rc = pkt_parse_count(linktype, copy, cut, &t, &cnt);
		if (cut < f->link) {
			want = PKT_LINK_TRUNC;
		} else if (cut < f->link + f->ip) {
			want = PKT_IP_TRUNC;
		} else if (cut < hdrs) {
			want = PKT_TCP_TRUNC;
		} else {
			want = PKT_OK;
		}
		if (rc != want) {
			print_error("linktype %d cut %zu: got %s want %s\n", linktype, cut,
				    pkt_rc_name(rc), pkt_rc_name(want));
		}
		assert_int_equal(rc, want);
		if (rc == PKT_OK) {
			assert_true(t.truncated);
			assert_int_equal(t.len, cut - hdrs);
			assert_int_equal(t.seg_len, PLEN);
		}
		free(copy);
	}
	assert_int_equal(cnt.n[PKT_LINK_TRUNC], f->link);
	assert_int_equal(cnt.n[PKT_IP_TRUNC], f->ip);
	assert_int_equal(cnt.n[PKT_TCP_TRUNC], f->tcp);
	assert_int_equal(cnt.n[PKT_OK], 1 + PLEN);
}

static void
test_ethernet(void **state)
{
	struct frame f;

	(void)state;
	ether(&f, NULL, 0, 0x0800);
	ip4_tcp(&f, 5, 0);
	check_frame(PKT_LINK_EN10MB, &f, 4);
	ether(&f, NULL, 0, 0x86dd);
	ip6_tcp(&f, NULL, 0);
	check_frame(PKT_LINK_EN10MB, &f, 6);
}

static void
test_vlan_stacked(void **state)
{
	static const unsigned one[] = {0x8100};
	static const unsigned qinq[] = {0x88a8, 0x8100};
	static const unsigned three[] = {0x9100, 0x88a8, 0x8100};
	struct frame f;

	(void)state;
	ether(&f, one, 1, 0x0800);
	ip4_tcp(&f, 5, 2);
	check_frame(PKT_LINK_EN10MB, &f, 4);
	ether(&f, qinq, 2, 0x86dd);
	ip6_tcp(&f, NULL, 0);
	check_frame(PKT_LINK_EN10MB, &f, 6);
	ether(&f, three, 3, 0x0800);
	ip4_tcp(&f, 5, 0);
	check_frame(PKT_LINK_EN10MB, &f, 4);
}

static void
test_linux_sll_sll2(void **state)
{
	struct frame f;

	(void)state;
	memset(f.b, 0, 16);
	put16(f.b + 14, 0x0800);
	f.link = 16;
	ip4_tcp(&f, 5, 0);
	check_frame(PKT_LINK_LINUX_SLL, &f, 4);
	memset(f.b, 0, 20);
	put16(f.b, 0x86dd);
	f.link = 20;
	ip6_tcp(&f, NULL, 0);
	check_frame(PKT_LINK_LINUX_SLL2, &f, 6);
}

static void
test_loopback_both_orders(void **state)
{
	static const uint32_t v6fams[] = {10, 24, 28, 30};
	struct frame f;
	size_t i;

	(void)state;
	f.link = 4;
	put32(f.b, 2); /* network order */
	ip4_tcp(&f, 5, 0);
	check_frame(PKT_LINK_LOOP, &f, 4);
	f.b[0] = 2, f.b[1] = f.b[2] = f.b[3] = 0; /* little-endian host */
	check_frame(PKT_LINK_NULL, &f, 4);
	for (i = 0; i < 4; i++) {
		memset(f.b, 0, 4);
		f.b[0] = (uint8_t)v6fams[i]; /* little-endian */
		ip6_tcp(&f, NULL, 0);
		check_frame(PKT_LINK_NULL, &f, 6);
		put32(f.b, v6fams[i]);
		check_frame(PKT_LINK_LOOP, &f, 6);
	}
}

static void
test_raw_types(void **state)
{
	static const int v4types[] = {PKT_LINK_RAW, PKT_LINK_RAW_BSD, PKT_LINK_RAW_FILE, PKT_LINK_IPV4};
	static const int v6types[] = {PKT_LINK_RAW, PKT_LINK_RAW_FILE, PKT_LINK_IPV6};
	struct frame f;
	size_t i;

	(void)state;
	f.link = 0;
	ip4_tcp(&f, 5, 0);
	for (i = 0; i < 4; i++) {
		check_frame(v4types[i], &f, 4);
	}
	ip6_tcp(&f, NULL, 0);
	for (i = 0; i < 3; i++) {
		check_frame(v6types[i], &f, 6);
	}
}

static void
test_ipv4_options_and_padding(void **state)
{
	struct frame f;
	struct pkt_tcp t;

	(void)state;
	ether(&f, NULL, 0, 0x0800);
	ip4_tcp(&f, 8, 3); /* 12 bytes of IP options, 12 of TCP options */
	check_frame(PKT_LINK_EN10MB, &f, 4);
	/* Ethernet padding after the IP packet is not payload */
	memset(f.b + f.n, 0, 20);
	assert_int_equal(pkt_parse(PKT_LINK_EN10MB, f.b, f.n + 20, &t), PKT_OK);
	assert_int_equal(t.len, PLEN);
	/* total length 0 (TSO on the capturing host): the captured length is used */
	put16(f.b + f.link + 2, 0);
	assert_int_equal(pkt_parse(PKT_LINK_EN10MB, f.b, f.n, &t), PKT_OK);
	assert_int_equal(t.len, PLEN);
}

static void
test_ipv6_extension_headers(void **state)
{
	static const uint8_t chain[] = {0, 43, 60, 51}; /* hop-by-hop, routing, dest, AH */
	struct frame f;

	(void)state;
	ether(&f, NULL, 0, 0x86dd);
	ip6_tcp(&f, chain, 4);
	assert_int_equal(f.ip, 40 + 4 * 16);
	check_frame(PKT_LINK_EN10MB, &f, 6);
}

static void
test_fragments_and_other_protocols(void **state)
{
	static const uint8_t frag[] = {0, 44};
	struct frame f;
	struct pkt_tcp t;
	struct pkt_counts c;

	(void)state;
	memset(&c, 0, sizeof(c));
	ether(&f, NULL, 0, 0x0800);
	ip4_tcp(&f, 5, 0);
	put16(f.b + f.link + 6, 0x2000); /* MF: first fragment */
	assert_int_equal(pkt_parse_count(PKT_LINK_EN10MB, f.b, f.n, &t, &c), PKT_FRAGMENT);
	put16(f.b + f.link + 6, 0x0010); /* offset 128: a later fragment */
	assert_int_equal(pkt_parse_count(PKT_LINK_EN10MB, f.b, f.n, &t, &c), PKT_FRAGMENT);
	put16(f.b + f.link + 6, 0x4000); /* DF only: fine */
	assert_int_equal(pkt_parse_count(PKT_LINK_EN10MB, f.b, f.n, &t, &c), PKT_OK);
	f.b[f.link + 9] = 17; /* UDP */
	assert_int_equal(pkt_parse_count(PKT_LINK_EN10MB, f.b, f.n, &t, &c), PKT_NOT_TCP);
	ether(&f, NULL, 0, 0x86dd);
	ip6_tcp(&f, frag, 2);
	assert_int_equal(pkt_parse_count(PKT_LINK_EN10MB, f.b, f.n, &t, &c), PKT_FRAGMENT);
	ether(&f, NULL, 0, 0x0806); /* ARP */
	assert_int_equal(pkt_parse_count(PKT_LINK_EN10MB, f.b, 60, &t, &c), PKT_NOT_IP);
	assert_int_equal(pkt_parse_count(147, f.b, 60, &t, &c), PKT_BAD_LINKTYPE);
	assert_int_equal(c.n[PKT_FRAGMENT], 3);
	assert_int_equal(c.n[PKT_NOT_TCP], 1);
	assert_int_equal(c.n[PKT_NOT_IP], 1);
	assert_int_equal(c.n[PKT_BAD_LINKTYPE], 1);
	assert_false(pkt_linktype_supported(147));
	assert_true(pkt_linktype_supported(PKT_LINK_LINUX_SLL2));
	assert_string_equal(pkt_rc_name(PKT_FRAGMENT), "fragment");
}

static void
test_bad_headers(void **state)
{
	struct frame f;
	struct pkt_tcp t;

	(void)state;
	f.link = 0;
	ip4_tcp(&f, 5, 0);
	f.b[0] = 0x44; /* IHL 4 words < 20 bytes */
	assert_int_equal(pkt_parse(PKT_LINK_IPV4, f.b, f.n, &t), PKT_IP_BAD);
	f.b[0] = 0x45;
	put16(f.b + 2, 10); /* total length < header */
	assert_int_equal(pkt_parse(PKT_LINK_IPV4, f.b, f.n, &t), PKT_IP_BAD);
	put16(f.b + 2, 30); /* room for 10 bytes of TCP only */
	assert_int_equal(pkt_parse(PKT_LINK_IPV4, f.b, f.n, &t), PKT_TCP_BAD);
	ip4_tcp(&f, 5, 0);
	f.b[20 + 12] = 0x40; /* data offset 4 words */
	assert_int_equal(pkt_parse(PKT_LINK_IPV4, f.b, f.n, &t), PKT_TCP_BAD);
	f.b[20 + 12] = 0xf0; /* 60 bytes: beyond the IP payload */
	assert_int_equal(pkt_parse(PKT_LINK_IPV4, f.b, 40, &t), PKT_TCP_BAD);
	f.b[0] = 0x65; /* version 6 in a DLT_IPV4 frame */
	assert_int_equal(pkt_parse(PKT_LINK_IPV4, f.b, f.n, &t), PKT_IP_BAD);
	f.b[0] = 0x25; /* version 2 on raw */
	assert_int_equal(pkt_parse(PKT_LINK_RAW, f.b, f.n, &t), PKT_NOT_IP);
	assert_int_equal(pkt_parse(PKT_LINK_RAW, NULL, 0, &t), PKT_IP_TRUNC);
}

static void
test_garbage_never_crashes(void **state)
{
	static const int types[] = {0, 1, 12, 14, 101, 108, 113, 228, 229, 276};
	uint64_t s = 0x9e3779b97f4a7c15ull;
	struct pkt_counts c;
	struct pkt_tcp t;
	size_t i, k, n;
	uint8_t *b;

	(void)state;
	memset(&c, 0, sizeof(c));
	for (i = 0; i < 20000; i++) {
		n = (size_t)(s >> 58) * 2;
		b = malloc(n ? n : 1);
		for (k = 0; k < n; k++) {
			s ^= s << 13, s ^= s >> 7, s ^= s << 17;
			b[k] = (uint8_t)s;
		}
		if (n > 0) { /* steer some frames to plausible IP versions */
			b[0] = (uint8_t)((b[0] & 0x0f) | ((i & 1) ? 0x40 : 0x60));
		}
		if (pkt_parse_count(types[i % 10], b, n, &t, &c) == PKT_OK) {
			assert_true(t.payload >= b && t.payload + t.len <= b + n);
		}
		free(b);
		s ^= s << 13, s ^= s >> 7, s ^= s << 17;
	}
	for (i = 0, n = 0; i < PKT_RC_MAX; i++) {
		n += c.n[i];
	}
	assert_int_equal(n, 20000);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ethernet),
		cmocka_unit_test(test_vlan_stacked),
		cmocka_unit_test(test_linux_sll_sll2),
		cmocka_unit_test(test_loopback_both_orders),
		cmocka_unit_test(test_raw_types),
		cmocka_unit_test(test_ipv4_options_and_padding),
		cmocka_unit_test(test_ipv6_extension_headers),
		cmocka_unit_test(test_fragments_and_other_protocols),
		cmocka_unit_test(test_bad_headers),
		cmocka_unit_test(test_garbage_never_crashes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
