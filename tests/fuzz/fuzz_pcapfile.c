/* tests/fuzz/fuzz_pcapfile.c: libFuzzer target for offline reads (capture/pcap_src.c).
 * The input is a capture file, read twice: by pcap_src's own classic pcap reader and by
 * libpcap (pcap_src_force_libpcap).  Both must give the same packets (stamp, lengths,
 * bytes) and end the same way, error text included; neither may crash or read outside
 * what it was given.
 *
 * Input: [ctl] then the file.  ctl bit 0: prepend a valid classic pcap header (Ethernet,
 * bit 1 nanosecond magic, bit 2 the other byte order, bit 3 snaplen 128) so the fuzzer
 * spends its time on records; bits 4-5 pick the dispatch batch (1, 3, 4096, all). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "capture/pcap_src.h"

#define MAX_PKTS 512

#define CHECK(x)                                                                                   \
	do {                                                                                       \
		if (!(x)) {                                                                        \
			fprintf(stderr, "fuzz_pcapfile: check failed: %s (line %d)\n", #x, __LINE__); \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

struct got {
	size_t npkts;
	uint64_t ts[MAX_PKTS];
	size_t caplen[MAX_PKTS], len[MAX_PKTS];
	uint32_t sum[MAX_PKTS];
	int end;             /* 0 end of file, -1 error, -2 could not open */
	char err[600];
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
note(void *ctx, const struct pcap_src_pkt *pk)
{
	struct got *g = ctx;
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < pk->caplen; i++) {
		h = (h ^ pk->data[i]) * 16777619u;
	}
	if (g->npkts < MAX_PKTS) {
		g->ts[g->npkts] = pk->ts_us;
		g->caplen[g->npkts] = pk->caplen;
		g->len[g->npkts] = pk->len;
		g->sum[g->npkts] = h;
	}
	g->npkts++;
}

static void
read_file(const char *path, bool libpcap, int batch, struct got *g)
{
	char err[512];
	struct pcap_src *s;
	int n;

	memset(g, 0, sizeof(*g));
	pcap_src_force_libpcap(libpcap);
	s = pcap_src_open_file(path, NULL, 0, err, sizeof(err));
	pcap_src_force_libpcap(false);
	if (s == NULL) {
		g->end = -2;
		snprintf(g->err, sizeof(g->err), "%s", err);
		return;
	}
	while ((n = pcap_src_dispatch(s, batch, note, g)) > 0) {
	}
	g->end = n;
	if (n < 0) {
		snprintf(g->err, sizeof(g->err), "%s", pcap_src_error(s));
	}
	pcap_src_close(s);
}

static void
put32(uint8_t *p, uint32_t v, bool swap)
{
	v = swap ? __builtin_bswap32(v) : v;
	memcpy(p, &v, 4);
}

static size_t
header(uint8_t *h, uint8_t ctl)
{
	bool swap = (ctl & 4) != 0;

	put32(h, (ctl & 2) ? 0xa1b23c4du : 0xa1b2c3d4u, swap);
	put32(h + 4, swap ? 0x00020004u : 0x00040002u, false); /* 2.4 in the file's order */
	put32(h + 8, 0, swap);
	put32(h + 12, 0, swap);
	put32(h + 16, (ctl & 8) ? 128 : 65535, swap);
	put32(h + 20, 1, swap);
	return 24;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct got a, b;
	static const int batches[4] = {1, 3, 4096, -1};
	uint8_t hdr[24];
	char path[64];
	size_t hn = 0;
	int fd;

	if (size == 0) {
		return 0;
	}
	if (data[0] & 1) {
		hn = header(hdr, data[0]);
	}
	fd = memfd_create("fuzz_pcapfile", 0);
	CHECK(fd >= 0);
	CHECK(write(fd, hdr, hn) == (ssize_t)hn);
	CHECK(write(fd, data + 1, size - 1) == (ssize_t)(size - 1));
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	read_file(path, false, batches[(data[0] >> 4) & 3], &a);
	read_file(path, true, batches[(data[0] >> 4) & 3], &b);
	close(fd);
	CHECK(a.npkts == b.npkts);
	for (size_t i = 0; i < a.npkts && i < MAX_PKTS; i++) {
		CHECK(a.ts[i] == b.ts[i]);
		CHECK(a.caplen[i] == b.caplen[i]);
		CHECK(a.len[i] == b.len[i]);
		CHECK(a.sum[i] == b.sum[i]);
	}
	if (a.end != b.end || strcmp(a.err, b.err) != 0) {
		fprintf(stderr, "fuzz_pcapfile: pcap_src ended %d \"%s\", libpcap %d \"%s\"\n", a.end,
			a.err, b.end, b.err);
	}
	CHECK(a.end == b.end);
	CHECK(strcmp(a.err, b.err) == 0);
	return 0;
}
