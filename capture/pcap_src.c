/* capture/pcap_src.c: thin libpcap wrapper (open, filter, read, stats, progress). */
#include "capture/pcap_src.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <pcap/pcap.h>

#include "capture/pkt.h"

#define READ_TIMEOUT_MS 100
#define PCAP_SRC_FILE_BUF (1u << 20)
#define RD_BUF (320u << 10) /* own reader: the largest record (16 + 262144) fits; small
                             * enough that what pread copied is still in L2 when parsed */
_Static_assert(RD_BUF >= 16 + PCAP_SRC_SNAPLEN, "a record must fit in the read buffer");
#define CLASSIC_HDR 24        /* pcap file header */
#define CLASSIC_REC 16        /* per-record header */
#define MAGIC_US 0xa1b2c3d4u  /* classic pcap, microsecond stamps */
#define MAGIC_NS 0xa1b23c4du  /* classic pcap, nanosecond stamps */

/* A classic pcap file read by us (see rd_next): one buffer, records parsed in place. */
struct file_rd {
	int fd;              /* the FILE's descriptor: read with pread, libpcap's FILE unused */
	bool swapped;        /* the file's byte order is not ours */
	bool nsec;           /* nanosecond stamps: scaled down to microseconds, as libpcap */
	uint32_t snapshot;   /* libpcap's snapshot length for the file */
	uint8_t *buf;        /* RD_BUF bytes */
	size_t start, end;   /* unread bytes are buf[start..end) */
	uint64_t off;        /* file offset of buf[end] */
};

struct pcap_src {
	pcap_t *p;
	bool live;
	uint64_t file_size;  /* offline: 0 if unknown */
	int fd;              /* live: selectable fd or -1 */
	char *filebuf;       /* offline: the stdio buffer, freed after pcap_close */
	struct file_rd *rd;  /* offline classic pcap read by us; NULL = libpcap reads */
	char err[PCAP_ERRBUF_SIZE + 64];
};

static bool force_libpcap; /* tests: read every file through libpcap */

void
pcap_src_force_libpcap(bool on)
{
	force_libpcap = on;
}

bool
pcap_src_reads_itself(const struct pcap_src *s)
{
	return s->rd != NULL;
}

bool
pcap_src_filter_text(const uint16_t *ports, size_t nports, char *buf, size_t len)
{
	size_t i, off = 0;
	int n;

	if (len == 0 || nports > PCAP_SRC_MAX_PORTS) {
		return false;
	}
	if (nports == 0) {
		n = snprintf(buf, len, "tcp");
		return n > 0 && (size_t)n < len;
	}
	buf[0] = '\0';
	for (i = 0; i < nports; i++) {
		n = snprintf(buf + off, len - off, "%stcp port %u", i ? " or " : "",
			     (unsigned)ports[i]);
		if (n < 0 || (size_t)n >= len - off) {
			return false;
		}
		off += (size_t)n;
	}
	return true;
}

static bool
apply_filter(struct pcap_src *s, const uint16_t *ports, size_t nports, bool offline, char *err,
	     size_t errlen)
{
	char text[PCAP_SRC_MAX_PORTS * 24];
	struct bpf_program prog;

	if (offline && nports == 0) {
		return true;
	}
	if (!pcap_src_filter_text(ports, nports, text, sizeof(text))) {
		snprintf(err, errlen, "too many ports for the capture filter (max %d)",
			 PCAP_SRC_MAX_PORTS);
		return false;
	}
	if (pcap_compile(s->p, &prog, text, 1, PCAP_NETMASK_UNKNOWN) != 0) {
		snprintf(err, errlen, "filter \"%s\": %s", text, pcap_geterr(s->p));
		return false;
	}
	if (pcap_setfilter(s->p, &prog) != 0) {
		snprintf(err, errlen, "setting filter \"%s\": %s", text, pcap_geterr(s->p));
		pcap_freecode(&prog);
		return false;
	}
	pcap_freecode(&prog);
	return true;
}

static bool
live_setup(struct pcap_src *s, const char *iface, int buffer_bytes, char *err, size_t errlen)
{
	int rc;

	if (pcap_set_snaplen(s->p, PCAP_SRC_SNAPLEN) != 0 || pcap_set_promisc(s->p, 0) != 0 ||
	    pcap_set_timeout(s->p, READ_TIMEOUT_MS) != 0 || pcap_set_immediate_mode(s->p, 1) != 0 ||
	    (buffer_bytes > 0 && pcap_set_buffer_size(s->p, buffer_bytes) != 0)) {
		snprintf(err, errlen, "%s: cannot set capture options", iface);
		return false;
	}
	rc = pcap_activate(s->p);
	if (rc < 0) {
		snprintf(err, errlen, "%s: %s%s%s", iface, pcap_statustostr(rc),
			 rc == PCAP_ERROR_PERM_DENIED ? " (needs root or CAP_NET_RAW)" : "",
			 rc == PCAP_ERROR ? pcap_geterr(s->p) : "");
		return false;
	}
	return true;
}

struct pcap_src *
pcap_src_open_live(const char *iface, const uint16_t *ports, size_t nports, int buffer_bytes,
		   char *err, size_t errlen)
{
	char ebuf[PCAP_ERRBUF_SIZE] = "";
	struct pcap_src *s = calloc(1, sizeof(*s));

	if (s == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->live = true;
	s->p = pcap_create(iface, ebuf);
	if (s->p == NULL) {
		snprintf(err, errlen, "%s: %s", iface, ebuf);
		goto fail;
	}
	if (!live_setup(s, iface, buffer_bytes, err, errlen) ||
	    !apply_filter(s, ports, nports, false, err, errlen)) {
		goto fail;
	}
	s->fd = pcap_get_selectable_fd(s->p);
	return s;
fail:
	pcap_src_close(s);
	return NULL;
}

static uint32_t
rd32(const uint8_t *p, bool swapped)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return swapped ? __builtin_bswap32(v) : v;
}

static uint16_t
rd16(const uint8_t *p, bool swapped)
{
	uint16_t v;

	memcpy(&v, p, sizeof(v));
	return swapped ? __builtin_bswap16(v) : v;
}

/* A classic pcap header that rd_next reads exactly as libpcap would: the two standard
 * magics in either byte order, version 2.4 (older versions may have caplen and len
 * swapped; other magics have longer record headers: libpcap keeps those). */
static bool
classic_header(const uint8_t h[CLASSIC_HDR], bool *swapped, bool *nsec)
{
	uint32_t m;

	memcpy(&m, h, sizeof(m));
	*swapped = m == __builtin_bswap32(MAGIC_US) || m == __builtin_bswap32(MAGIC_NS);
	m = *swapped ? __builtin_bswap32(m) : m;
	if (m != MAGIC_US && m != MAGIC_NS) {
		return false;
	}
	*nsec = m == MAGIC_NS;
	uint16_t major = rd16(h + 4, *swapped), minor = rd16(h + 6, *swapped);

	return major == 2 && minor == 4;
}

/* libpcap reads a record with two freads into its own buffer: two copies of every byte
 * (kernel to stdio buffer, stdio buffer to libpcap's) and ~100 ns of calls per packet.
 * A classic pcap file (what tcpdump writes) is simple enough to read here with large
 * preads, handing out packets where they lie in the buffer.  libpcap still opens the
 * file (it validates the header and gives the link type and snapshot length); pcapng,
 * standard input, filtered reads and link types with pseudo-headers libpcap would
 * byte-swap stay with libpcap.  Memory stays one RD_BUF buffer whatever the file size. */
static void
rd_setup(struct pcap_src *s, int fd, const uint8_t hdr[CLASSIC_HDR], bool filtered)
{
	bool swapped, nsec;
	struct file_rd *r;

	if (force_libpcap || filtered || !classic_header(hdr, &swapped, &nsec) ||
	    !pkt_linktype_supported(pcap_datalink(s->p)) || pcap_snapshot(s->p) <= 0) {
		return;
	}
	r = calloc(1, sizeof(*r));
	if (r == NULL || (r->buf = malloc(RD_BUF)) == NULL) {
		free(r);
		return; /* libpcap reads it then */
	}
	r->fd = fd;
	r->swapped = swapped;
	r->nsec = nsec;
	r->snapshot = (uint32_t)pcap_snapshot(s->p); /* may exceed PCAP_SRC_SNAPLEN: caplen may not */
	r->off = CLASSIC_HDR;
	s->rd = r;
}

/* A file is read through a 1 MiB stdio buffer of our own when libpcap reads it: it reads
 * a record as two freads, and with the default (a page) the file cost one read(2) per
 * 4 KiB.  The buffer must be ours: glibc's setvbuf ignores the size when it is given no
 * buffer.  A classic pcap file is read by rd_next instead (libpcap only reads its
 * header, through the default buffer).  "-" is standard input, as libpcap has it. */
static pcap_t *
open_offline(struct pcap_src *s, const char *path, bool filtered, char *ebuf)
{
	uint8_t hdr[CLASSIC_HDR];
	bool swapped, nsec, classic;

	if (strcmp(path, "-") == 0) {
		return pcap_open_offline_with_tstamp_precision(path, PCAP_TSTAMP_PRECISION_MICRO, ebuf);
	}
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		snprintf(ebuf, PCAP_ERRBUF_SIZE, "%s", strerror(errno));
		return NULL;
	}
	classic = !force_libpcap && !filtered &&
		  pread(fileno(f), hdr, sizeof(hdr), 0) == (ssize_t)sizeof(hdr) &&
		  classic_header(hdr, &swapped, &nsec);
	if (!classic) {
		s->filebuf = malloc(PCAP_SRC_FILE_BUF);
	}
	if (s->filebuf != NULL) {
		(void)setvbuf(f, s->filebuf, _IOFBF, PCAP_SRC_FILE_BUF);
	}
	pcap_t *p = pcap_fopen_offline_with_tstamp_precision(f, PCAP_TSTAMP_PRECISION_MICRO, ebuf);
	if (p == NULL) {
		fclose(f); /* libpcap closes it only once it has taken it */
		return NULL;
	}
	s->p = p;
	if (classic) {
		rd_setup(s, fileno(f), hdr, filtered);
	}
	return p;
}

struct pcap_src *
pcap_src_open_file(const char *path, const uint16_t *ports, size_t nports, char *err,
		   size_t errlen)
{
	char ebuf[PCAP_ERRBUF_SIZE] = "";
	struct pcap_src *s = calloc(1, sizeof(*s));
	struct stat st;

	if (s == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->fd = -1;
	s->p = open_offline(s, path, nports > 0, ebuf);
	if (s->p == NULL) {
		snprintf(err, errlen, "%s: %s", path, ebuf);
		goto fail;
	}
	if (!apply_filter(s, ports, nports, true, err, errlen)) {
		goto fail;
	}
	if (strcmp(path, "-") != 0 && stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
		s->file_size = (uint64_t)st.st_size;
	}
	return s;
fail:
	pcap_src_close(s);
	return NULL;
}

void
pcap_src_close(struct pcap_src *s)
{
	if (s == NULL) {
		return;
	}
	if (s->p != NULL) {
		pcap_close(s->p); /* fcloses the file: only then is its buffer free */
	}
	free(s->filebuf);
	if (s->rd != NULL) {
		free(s->rd->buf);
		free(s->rd);
	}
	free(s);
}

int
pcap_src_datalink(const struct pcap_src *s)
{
	return pcap_datalink(s->p);
}

static void
fill_pkt(struct pcap_src_pkt *out, const struct pcap_pkthdr *h, const u_char *data)
{
	out->ts_us = (uint64_t)h->ts.tv_sec * 1000000u + (uint64_t)h->ts.tv_usec;
	out->data = data;
	out->caplen = h->caplen;
	out->len = h->len;
}

/* ---- classic pcap reader (rd_*) ---------------------------------------------------- */

/* Makes at least `need` (<= RD_BUF) unread bytes available if the file has them (rd_fill
 * found fewer); returns how many are (fewer only at end of file or on error: *ioerr =
 * errno). */
static size_t
rd_refill(struct file_rd *r, size_t need, int *ioerr)
{
	if (r->start + need > RD_BUF) {
		memmove(r->buf, r->buf + r->start, r->end - r->start);
		r->end -= r->start;
		r->start = 0;
	}
	while (r->end - r->start < need) {
		ssize_t got = pread(r->fd, r->buf + r->end, RD_BUF - r->end, (off_t)r->off);

		if (got < 0 && errno == EINTR) {
			continue;
		}
		if (got < 0) {
			*ioerr = errno;
			break;
		}
		if (got == 0) {
			break;
		}
		r->end += (size_t)got;
		r->off += (uint64_t)got;
	}
	return r->end - r->start;
}

/* The usual case, bytes already buffered, inline: it is asked twice per packet. */
static inline size_t
rd_fill(struct file_rd *r, size_t need, int *ioerr)
{
	*ioerr = 0;
	if (r->end - r->start >= need) {
		return r->end - r->start;
	}
	return rd_refill(r, need, ioerr);
}

/* The reason libpcap gives for a read that failed or came up short. */
static enum pcap_src_rc
rd_fail(struct pcap_src *s, int ioerr, const char *what, unsigned want, size_t got)
{
	if (ioerr != 0) {
		snprintf(s->err, sizeof(s->err), "error reading dump file: %s", strerror(ioerr));
	} else {
		snprintf(s->err, sizeof(s->err), "truncated dump file; tried to read %u %s, only got %zu",
			 want, what, got);
	}
	return PCAP_SRC_ERROR;
}

/* One record, with libpcap's checks and results (sf-pcap.c pcap_next_packet): a record
 * longer than PCAP_SRC_SNAPLEN is an error, one longer than the file's snapshot length is
 * cut to it, nanoseconds are truncated to microseconds, and a header cut short at the
 * end of the file is an error but no header at all is the end. */
static enum pcap_src_rc
rd_next(struct pcap_src *s, struct pcap_src_pkt *pkt)
{
	struct file_rd *r = s->rd;
	int ioerr;
	size_t have = rd_fill(r, CLASSIC_REC, &ioerr);

	if (have < CLASSIC_REC) {
		if (have == 0 && ioerr == 0) {
			return PCAP_SRC_EOF;
		}
		return rd_fail(s, ioerr, "header bytes", CLASSIC_REC, have);
	}
	const uint8_t *h = r->buf + r->start;
	int32_t sec = (int32_t)rd32(h, r->swapped);
	int32_t frac = (int32_t)rd32(h + 4, r->swapped);
	uint32_t caplen = rd32(h + 8, r->swapped);
	uint32_t len = rd32(h + 12, r->swapped);

	if (caplen > PCAP_SRC_SNAPLEN) {
		if (caplen > r->snapshot) {
			snprintf(s->err, sizeof(s->err), "invalid packet capture length %u, bigger "
				 "than snaplen of %d", caplen, (int)r->snapshot);
		} else {
			snprintf(s->err, sizeof(s->err), "invalid packet capture length %u, bigger "
				 "than maximum of %u", caplen, (unsigned)PCAP_SRC_SNAPLEN);
		}
		return PCAP_SRC_ERROR;
	}
	uint32_t keep = caplen > r->snapshot ? r->snapshot : caplen;

	have = rd_fill(r, CLASSIC_REC + (size_t)caplen, &ioerr);
	if (have < CLASSIC_REC + (size_t)caplen) {
		/* libpcap reads the snapshot part, then discards the rest */
		bool in_keep = keep == caplen || have - CLASSIC_REC < keep;

		return rd_fail(s, ioerr, "captured bytes", in_keep ? keep : caplen,
			       have - CLASSIC_REC);
	}
	int64_t usec = r->nsec ? (int64_t)frac / 1000 : (int64_t)frac;

	/* the arithmetic of fill_pkt on libpcap's struct timeval */
	pkt->ts_us = (uint64_t)(int64_t)sec * 1000000u + (uint64_t)usec;
	pkt->data = r->buf + r->start + CLASSIC_REC;
	pkt->caplen = keep;
	pkt->len = len;
	r->start += CLASSIC_REC + (size_t)caplen;
	return PCAP_SRC_OK;
}

/* pcap_dispatch on a file: up to max packets (max <= 0: to the end), -1 on an error even
 * after some packets, 0 at the end. */
static int
rd_dispatch(struct pcap_src *s, int max, pcap_src_fn cb, void *ctx)
{
	struct pcap_src_pkt pkt;
	int n = 0;

	while (max <= 0 || n < max) {
		enum pcap_src_rc rc = rd_next(s, &pkt);

		if (rc == PCAP_SRC_EOF) {
			break;
		}
		if (rc != PCAP_SRC_OK) {
			return -1;
		}
		cb(ctx, &pkt);
		n++;
	}
	return n;
}

enum pcap_src_rc
pcap_src_next(struct pcap_src *s, struct pcap_src_pkt *pkt)
{
	struct pcap_pkthdr *h;
	const u_char *data;
	int rc;

	if (s->rd != NULL) {
		return rd_next(s, pkt);
	}
	rc = pcap_next_ex(s->p, &h, &data);
	if (rc == 1) {
		fill_pkt(pkt, h, data);
		return PCAP_SRC_OK;
	}
	if (rc == 0) {
		return PCAP_SRC_AGAIN;
	}
	if (rc == PCAP_ERROR_BREAK) {
		return s->live ? PCAP_SRC_AGAIN : PCAP_SRC_EOF;
	}
	snprintf(s->err, sizeof(s->err), "%s", pcap_geterr(s->p));
	return PCAP_SRC_ERROR;
}

struct dispatch_ctx {
	pcap_src_fn cb;
	void *ctx;
};

static void
dispatch_cb(u_char *user, const struct pcap_pkthdr *h, const u_char *data)
{
	struct dispatch_ctx *d = (struct dispatch_ctx *)(void *)user;
	struct pcap_src_pkt pkt;

	fill_pkt(&pkt, h, data);
	d->cb(d->ctx, &pkt);
}

int
pcap_src_dispatch(struct pcap_src *s, int max, pcap_src_fn cb, void *ctx)
{
	struct dispatch_ctx d = {cb, ctx};
	int rc;

	if (s->rd != NULL) {
		return rd_dispatch(s, max, cb, ctx);
	}
	rc = pcap_dispatch(s->p, max, dispatch_cb, (u_char *)(void *)&d);
	if (rc == PCAP_ERROR_BREAK) {
		return 0;
	}
	if (rc < 0) {
		snprintf(s->err, sizeof(s->err), "%s", pcap_geterr(s->p));
		return -1;
	}
	return rc;
}

int
pcap_src_fd(const struct pcap_src *s)
{
	return s->live ? s->fd : -1;
}

int
pcap_src_timeout_ms(const struct pcap_src *s)
{
	(void)s;
	return READ_TIMEOUT_MS;
}

bool
pcap_src_set_nonblock(struct pcap_src *s, bool on, char *err, size_t errlen)
{
	char ebuf[PCAP_ERRBUF_SIZE] = "";

	if (pcap_setnonblock(s->p, on ? 1 : 0, ebuf) != 0) {
		snprintf(err, errlen, "setnonblock: %s", ebuf);
		return false;
	}
	return true;
}

bool
pcap_src_stats(struct pcap_src *s, struct pcap_src_stats *out)
{
	struct pcap_stat ps;

	memset(out, 0, sizeof(*out));
	if (!s->live || pcap_stats(s->p, &ps) != 0) {
		return false;
	}
	out->received = ps.ps_recv;
	out->dropped = ps.ps_drop;
	out->ifdropped = ps.ps_ifdrop;
	return true;
}

bool
pcap_src_progress(struct pcap_src *s, uint64_t *done, uint64_t *total)
{
	FILE *fp;
	long pos;

	if (s->live) {
		return false;
	}
	if (s->rd != NULL) {
		*done = s->rd->off - (s->rd->end - s->rd->start);
		*total = s->file_size;
		return true;
	}
	fp = pcap_file(s->p);
	pos = fp != NULL ? ftell(fp) : -1;
	*done = pos > 0 ? (uint64_t)pos : 0;
	*total = s->file_size;
	return true;
}

const char *
pcap_src_error(struct pcap_src *s)
{
	return s->err;
}
