/* tests/unit/test_pcap_src.c: offline reads (capture/pcap_src.c).  Classic pcap files are
 * read by pcap_src itself; every case here is read both that way and through libpcap
 * (pcap_src_force_libpcap) and the two must agree packet for packet: stamps, lengths,
 * bytes, where the file ends and why (the error text included). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "capture/pcap_src.h"

#define MAX_PKTS 4096

/* A pcap file being built in memory. */
struct pfile {
	uint8_t *b;
	size_t n, cap;
	bool swap; /* written in the other byte order */
};

/* What a read saw. */
struct got {
	size_t npkts;
	uint64_t ts[MAX_PKTS];
	size_t caplen[MAX_PKTS], len[MAX_PKTS];
	uint32_t sum[MAX_PKTS]; /* FNV-1a of the bytes */
	enum pcap_src_rc end;
	char err[512];
	int batches;
	bool own;     /* pcap_src read it itself */
};

static void
put(struct pfile *f, const void *p, size_t n)
{
	if (f->n + n > f->cap) {
		f->cap = (f->n + n) * 2;
		f->b = realloc(f->b, f->cap);
		assert_non_null(f->b);
	}
	memcpy(f->b + f->n, p, n);
	f->n += n;
}

static void
put32(struct pfile *f, uint32_t v)
{
	if (f->swap) {
		v = __builtin_bswap32(v);
	}
	put(f, &v, 4);
}

static void
put16(struct pfile *f, uint16_t v)
{
	if (f->swap) {
		v = __builtin_bswap16(v);
	}
	put(f, &v, 2);
}

static void
file_header(struct pfile *f, uint32_t magic, uint16_t minor, uint32_t snaplen, uint32_t lt)
{
	put32(f, magic);
	put16(f, 2);
	put16(f, minor);
	put32(f, 0);
	put32(f, 0);
	put32(f, snaplen);
	put32(f, lt);
}

/* A record of caplen bytes (a pattern from seed), claiming len on the wire. */
static void
record(struct pfile *f, uint32_t sec, uint32_t frac, uint32_t caplen, uint32_t len, unsigned seed)
{
	put32(f, sec);
	put32(f, frac);
	put32(f, caplen);
	put32(f, len);
	for (uint32_t i = 0; i < caplen; i++) {
		uint8_t b = (uint8_t)(i * 7u + seed);
		put(f, &b, 1);
	}
}

static char *
file_write(const struct pfile *f)
{
	char *path = strdup("/tmp/test_pcap_src.XXXXXX");
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, f->b, f->n), (ssize_t)f->n);
	close(fd);
	return path;
}

static uint32_t
fnv(const uint8_t *p, size_t n)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < n; i++) {
		h = (h ^ p[i]) * 16777619u;
	}
	return h;
}

static void
note(void *ctx, const struct pcap_src_pkt *pk)
{
	struct got *g = ctx;

	if (g->npkts < MAX_PKTS) {
		g->ts[g->npkts] = pk->ts_us;
		g->caplen[g->npkts] = pk->caplen;
		g->len[g->npkts] = pk->len;
		g->sum[g->npkts] = fnv(pk->data, pk->caplen);
	}
	g->npkts++;
}

/* Reads path to its end with pcap_src_next (batch 0) or dispatch batches of `batch`. */
static void
read_all(const char *path, bool libpcap, int batch, struct got *g)
{
	char err[256];
	struct pcap_src *s;
	struct pcap_src_pkt pk;
	int n;

	memset(g, 0, sizeof(*g));
	pcap_src_force_libpcap(libpcap);
	s = pcap_src_open_file(path, NULL, 0, err, sizeof(err));
	pcap_src_force_libpcap(false);
	assert_non_null(s);
	g->own = pcap_src_reads_itself(s);
	assert_true(!libpcap || !g->own);
	if (batch == 0) {
		while ((g->end = pcap_src_next(s, &pk)) == PCAP_SRC_OK) {
			note(g, &pk);
		}
	} else {
		while ((n = pcap_src_dispatch(s, batch, note, g)) > 0) {
			assert_true(batch < 0 || n <= batch);
			g->batches++;
		}
		g->end = n < 0 ? PCAP_SRC_ERROR : PCAP_SRC_EOF;
	}
	if (g->end == PCAP_SRC_ERROR) {
		snprintf(g->err, sizeof(g->err), "%s", pcap_src_error(s));
	}
	pcap_src_close(s);
}

static void
same(const struct got *a, const struct got *b)
{
	assert_int_equal(a->npkts, b->npkts);
	for (size_t i = 0; i < a->npkts && i < MAX_PKTS; i++) {
		assert_int_equal(a->ts[i], b->ts[i]);
		assert_int_equal(a->caplen[i], b->caplen[i]);
		assert_int_equal(a->len[i], b->len[i]);
		assert_int_equal(a->sum[i], b->sum[i]);
	}
	assert_int_equal(a->end, b->end);
	assert_string_equal(a->err, b->err);
	assert_int_equal(a->batches, b->batches);
}

/* Both readers, both read calls; returns what pcap_src's own reader saw (in *out). */
static void
check_file(struct pfile *f, struct got *out)
{
	static struct got a, b;
	char *path = file_write(f);
	static const int batches[] = {0, 1, 3, 4096, -1};

	for (size_t i = 0; i < sizeof(batches) / sizeof(batches[0]); i++) {
		read_all(path, false, batches[i], &a);
		read_all(path, true, batches[i], &b);
		same(&a, &b);
	}
	if (out != NULL) {
		*out = a;
	}
	unlink(path);
	free(path);
	free(f->b);
	memset(f, 0, sizeof(*f));
}

static void
test_micro_and_nano(void **state)
{
	static struct got g;
	struct pfile f = {0};

	(void)state;
	file_header(&f, 0xa1b2c3d4u, 4, 65535, 1);
	record(&f, 1700000000u, 123456, 60, 60, 1);
	record(&f, 1700000001u, 999999, 0, 0, 2);
	record(&f, 1700000002u, 5, 1514, 1514, 3);
	check_file(&f, &g);
	assert_true(g.own);
	assert_int_equal(g.npkts, 3);
	assert_int_equal(g.ts[0], 1700000000123456ull);
	assert_int_equal(g.end, PCAP_SRC_EOF);

	file_header(&f, 0xa1b23c4du, 4, 65535, 1);
	record(&f, 1700000000u, 123456789, 60, 64, 1);
	record(&f, 1700000000u, 999999999, 61, 61, 2);
	check_file(&f, &g);
	assert_true(g.own);
	assert_int_equal(g.ts[0], 1700000000123456ull); /* truncated, not rounded */
	assert_int_equal(g.ts[1], 1700000000999999ull);
	assert_int_equal(g.len[0], 64);
}

static void
test_other_byte_order(void **state)
{
	static struct got g;
	struct pfile f = {.swap = true};

	(void)state;
	file_header(&f, 0xa1b2c3d4u, 4, 262144, 113);
	record(&f, 1700000000u, 42, 80, 90, 9);
	record(&f, 1700000003u, 43, 81, 81, 10);
	check_file(&f, &g);
	assert_true(g.own);
	assert_int_equal(g.npkts, 2);
	assert_int_equal(g.ts[1], 1700000003000043ull);

	f.swap = true;
	file_header(&f, 0xa1b23c4du, 4, 262144, 1);
	record(&f, 1700000000u, 42000, 80, 90, 9);
	check_file(&f, &g);
	assert_true(g.own);
	assert_int_equal(g.ts[0], 1700000000000042ull);
}

/* Records crossing the 1 MiB buffer, big and small, past several refills. */
static void
test_many_records_across_buffers(void **state)
{
	static struct got g;
	struct pfile f = {0};

	(void)state;
	file_header(&f, 0xa1b2c3d4u, 4, 262144, 1);
	for (unsigned i = 0; i < 3000; i++) {
		uint32_t n = i % 97 == 0 ? 200000 + i : 54 + (i * 131) % 1500;

		record(&f, 1700000000u + i / 1000, i * 13, n, n + (i & 1), i);
	}
	check_file(&f, &g);
	assert_true(g.own);
	assert_int_equal(g.npkts, 3000);
}

/* caplen above the file's snapshot length: cut to it (libpcap's rule); above the
 * largest snapshot libpcap accepts: an error. */
static void
test_snapshot_rules(void **state)
{
	static struct got g;
	struct pfile f = {0};

	(void)state;
	file_header(&f, 0xa1b2c3d4u, 4, 100, 1);
	record(&f, 1, 1, 150, 150, 1);
	record(&f, 2, 2, 100, 100, 2);
	record(&f, 3, 3, 99, 150, 3);
	check_file(&f, &g);
	assert_int_equal(g.npkts, 3);
	assert_int_equal(g.caplen[0], 100);

	file_header(&f, 0xa1b2c3d4u, 4, 0, 1); /* no snapshot: libpcap's maximum */
	record(&f, 1, 1, 70000, 70000, 1);
	record(&f, 2, 2, 262145, 262145, 2);
	record(&f, 3, 3, 10, 10, 3);
	check_file(&f, &g);
	assert_int_equal(g.npkts, 1);
	assert_int_equal(g.end, PCAP_SRC_ERROR);
	assert_non_null(strstr(g.err, "invalid packet capture length"));
}

/* A file cut short (tcpdump killed): in a record header, in the data, in the part past
 * the snapshot length; a file with no record at all. */
static void
test_truncated_files(void **state)
{
	static struct got g;
	struct pfile f = {0};
	static const size_t cuts[] = {1, 8, 15, 16, 17, 40, 59};

	(void)state;
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		file_header(&f, 0xa1b2c3d4u, 4, 65535, 1);
		record(&f, 1, 1, 60, 60, 1);
		size_t keep = f.n;
		record(&f, 2, 2, 60, 60, 2);
		f.n = keep + cuts[i];
		check_file(&f, &g);
		assert_int_equal(g.npkts, cuts[i] == 16 + 60 ? 2 : 1);
		assert_int_equal(g.end, PCAP_SRC_ERROR);
		assert_non_null(strstr(g.err, "truncated dump file"));
	}
	file_header(&f, 0xa1b2c3d4u, 4, 100, 1);
	record(&f, 1, 1, 150, 150, 1);
	f.n -= 20; /* inside the bytes past the snapshot */
	check_file(&f, &g);
	assert_int_equal(g.end, PCAP_SRC_ERROR);
	file_header(&f, 0xa1b2c3d4u, 4, 100, 1);
	record(&f, 1, 1, 150, 150, 1);
	f.n -= 120; /* inside the snapshot part */
	check_file(&f, &g);
	assert_int_equal(g.end, PCAP_SRC_ERROR);

	file_header(&f, 0xa1b2c3d4u, 4, 65535, 1);
	check_file(&f, &g);
	assert_int_equal(g.npkts, 0);
	assert_int_equal(g.end, PCAP_SRC_EOF);
}

/* What pcap_src leaves to libpcap reads the same too: version 2.3, a link type with no
 * parser (its pseudo-header may be swapped), and progress is reported either way. */
static void
test_left_to_libpcap(void **state)
{
	static struct got g;
	struct pfile f = {0};
	char err[256], *path;
	struct pcap_src *s;
	struct pcap_src_pkt pk;
	uint64_t done = 0, total = 0;

	(void)state;
	file_header(&f, 0xa1b2c3d4u, 3, 65535, 1);
	record(&f, 1, 1, 60, 60, 1);
	check_file(&f, &g);
	assert_false(g.own);
	assert_int_equal(g.npkts, 1);
	f.swap = true;
	file_header(&f, 0xa1b2c3d4u, 4, 65535, 189); /* DLT_USB_LINUX */
	record(&f, 1, 1, 64, 64, 1);
	check_file(&f, &g);
	assert_false(g.own);
	assert_int_equal(g.npkts, 1);

	file_header(&f, 0xa1b2c3d4u, 4, 65535, 1);
	record(&f, 1, 1, 60, 60, 1);
	record(&f, 2, 2, 60, 60, 2);
	path = file_write(&f);
	s = pcap_src_open_file(path, NULL, 0, err, sizeof(err));
	assert_non_null(s);
	assert_int_equal(pcap_src_next(s, &pk), PCAP_SRC_OK);
	assert_true(pcap_src_progress(s, &done, &total));
	assert_int_equal(done, 24 + 16 + 60);
	assert_int_equal(total, f.n);
	pcap_src_close(s);
	unlink(path);
	free(path);
	free(f.b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_micro_and_nano),
		cmocka_unit_test(test_other_byte_order),
		cmocka_unit_test(test_many_records_across_buffers),
		cmocka_unit_test(test_snapshot_rules),
		cmocka_unit_test(test_truncated_files),
		cmocka_unit_test(test_left_to_libpcap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
