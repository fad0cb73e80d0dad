/* capture/pcap_src.c: thin libpcap wrapper (open, filter, read, stats, progress). */
#include "capture/pcap_src.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <pcap/pcap.h>

#define READ_TIMEOUT_MS 100
#define PCAP_SRC_FILE_BUF (1u << 20)

struct pcap_src {
	pcap_t *p;
	bool live;
	uint64_t file_size;  /* offline: 0 if unknown */
	int fd;              /* live: selectable fd or -1 */
	char *filebuf;       /* offline: the stdio buffer, freed after pcap_close */
	char err[PCAP_ERRBUF_SIZE + 64];
};

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

/* A file is read through a 1 MiB stdio buffer of our own: libpcap reads a record as two
 * freads, and with the default (a page) the file cost one read(2) per 4 KiB.  The buffer
 * must be ours: glibc's setvbuf ignores the size when it is given no buffer.  "-" is
 * standard input, as libpcap has it. */
static pcap_t *
open_offline(struct pcap_src *s, const char *path, char *ebuf)
{
	if (strcmp(path, "-") == 0) {
		return pcap_open_offline_with_tstamp_precision(path, PCAP_TSTAMP_PRECISION_MICRO, ebuf);
	}
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		snprintf(ebuf, PCAP_ERRBUF_SIZE, "%s", strerror(errno));
		return NULL;
	}
	s->filebuf = malloc(PCAP_SRC_FILE_BUF);
	if (s->filebuf != NULL) {
		(void)setvbuf(f, s->filebuf, _IOFBF, PCAP_SRC_FILE_BUF);
	}
	pcap_t *p = pcap_fopen_offline_with_tstamp_precision(f, PCAP_TSTAMP_PRECISION_MICRO, ebuf);
	if (p == NULL) {
		fclose(f); /* libpcap closes it only once it has taken it */
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
	s->p = open_offline(s, path, ebuf);
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

enum pcap_src_rc
pcap_src_next(struct pcap_src *s, struct pcap_src_pkt *pkt)
{
	struct pcap_pkthdr *h;
	const u_char *data;
	int rc = pcap_next_ex(s->p, &h, &data);

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
	int rc = pcap_dispatch(s->p, max, dispatch_cb, (u_char *)(void *)&d);

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
