/* tests/integ/reasm_dump.c: reads a pcap/pcapng file (or captures live) through
 * pcap_src + pkt + reasm and writes each flow's reassembled streams to DIR/<id>.c2s and
 * DIR/<id>.s2c, then prints one line per flow and the counters.  Used by
 * t_capture_reasm.sh.  Live mode runs the way an event loop would: non-blocking source,
 * poll() on its selectable fd with the read timeout as the timer.
 *   reasm_dump (-r FILE | -i IFACE -t SECONDS) -p PORT[,PORT...] -o DIR
 *              [-H hold_bytes] [-T hole_timeout_ms] */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "capture/pcap_src.h"
#include "capture/pkt.h"
#include "capture/reasm.h"

struct flow_out {
	FILE *fp[2];
	uint64_t bytes[2], gaps[2], lost[2];
};

struct dump {
	const char *dir;
	struct reasm *r;
	struct pkt_counts pc;
	int linktype;
	int failed;
};

static void
on_open(void *ctx, struct reasm_flow *f, uint64_t ts)
{
	struct dump *d = ctx;
	struct flow_out *o = calloc(1, sizeof(*o));
	static const char *const ext[2] = {"c2s", "s2c"};
	char path[4096];
	int i;

	(void)ts;
	if (o == NULL) {
		d->failed = 1;
		return;
	}
	for (i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/%" PRIu64 ".%s", d->dir, reasm_flow_id(f), ext[i]);
		o->fp[i] = fopen(path, "wb");
		if (o->fp[i] == NULL) {
			fprintf(stderr, "%s: %s\n", path, strerror(errno));
			d->failed = 1;
		}
	}
	reasm_flow_set_user(f, o);
}

static void
on_data(void *ctx, struct reasm_flow *f, enum reasm_dir dir, const uint8_t *p, size_t n,
	uint64_t ts)
{
	struct flow_out *o = reasm_flow_user(f);

	(void)ctx;
	(void)ts;
	if (o != NULL && o->fp[dir] != NULL) {
		fwrite(p, 1, n, o->fp[dir]);
		o->bytes[dir] += n;
	}
}

static void
on_gap(void *ctx, struct reasm_flow *f, enum reasm_dir dir, uint64_t lost, uint64_t ts)
{
	struct flow_out *o = reasm_flow_user(f);

	(void)ctx;
	(void)ts;
	if (o != NULL) {
		o->gaps[dir]++;
		o->lost[dir] += lost;
	}
}

static void
on_close(void *ctx, struct reasm_flow *f, enum reasm_close_why why, uint64_t ts)
{
	struct flow_out *o = reasm_flow_user(f);
	char name[128];
	int i;

	(void)ctx;
	(void)ts;
	if (o == NULL) {
		return;
	}
	printf("flow %" PRIu64 " %s midstream=%d close=%s c2s=%" PRIu64 " s2c=%" PRIu64
	       " gaps_c2s=%" PRIu64 " lost_c2s=%" PRIu64 " gaps_s2c=%" PRIu64 " lost_s2c=%" PRIu64
	       "\n",
	       reasm_flow_id(f), reasm_flow_name(f, name, sizeof(name)), reasm_flow_midstream(f),
	       reasm_close_name(why), o->bytes[0], o->bytes[1], o->gaps[0], o->lost[0], o->gaps[1],
	       o->lost[1]);
	for (i = 0; i < 2; i++) {
		if (o->fp[i] != NULL) {
			fclose(o->fp[i]);
		}
	}
	free(o);
}

static void
on_packet(void *ctx, const struct pcap_src_pkt *pkt)
{
	struct dump *d = ctx;
	struct pkt_tcp seg;

	if (pkt_parse_count(d->linktype, pkt->data, pkt->caplen, &seg, &d->pc) == PKT_OK) {
		reasm_segment(d->r, &seg, pkt->ts_us);
	}
}

static size_t
parse_ports(char *s, uint16_t *ports, size_t max)
{
	size_t n = 0;
	char *tok, *save = NULL;

	for (tok = strtok_r(s, ",", &save); tok != NULL && n < max; tok = strtok_r(NULL, ",", &save)) {
		ports[n++] = (uint16_t)strtoul(tok, NULL, 10);
	}
	return n;
}

static void
print_stats(const struct dump *d)
{
	struct reasm_stats st;
	int i;

	reasm_get_stats(d->r, &st);
	printf("stats packets=%" PRIu64 " bytes=%" PRIu64 " delivered=%" PRIu64 " flows=%" PRIu64
	       " midstream=%" PRIu64 " ooo=%" PRIu64 " retrans_bytes=%" PRIu64
	       " conflicts=%" PRIu64 " gaps=%" PRIu64 " gap_bytes=%" PRIu64 " held_hwm=%" PRIu64
	       "\n",
	       st.packets, st.bytes, st.delivered_bytes, st.flows_opened, st.midstream_flows,
	       st.ooo_segments, st.retrans_bytes, st.overlap_conflicts, st.gaps, st.gap_bytes,
	       st.held_bytes_hwm);
	printf("frames");
	for (i = 0; i < PKT_RC_MAX; i++) {
		printf(" %s=%" PRIu64, pkt_rc_name((enum pkt_rc)i), d->pc.n[i]);
	}
	printf("\n");
}

static double
mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Live capture for `secs` seconds, event-loop style. */
static int
live_loop(struct pcap_src *src, struct dump *d, double secs)
{
	struct pcap_src_stats ps;
	struct pollfd pfd;
	double end = mono_s() + secs;
	char err[256];
	int n;

	if (!pcap_src_set_nonblock(src, true, err, sizeof(err))) {
		fprintf(stderr, "reasm_dump: %s\n", err);
		return -1;
	}
	pfd.fd = pcap_src_fd(src);
	pfd.events = POLLIN;
	if (pfd.fd < 0) {
		fprintf(stderr, "reasm_dump: no selectable fd\n");
		return -1;
	}
	fprintf(stderr, "reasm_dump: listening\n");
	while (mono_s() < end) {
		if (poll(&pfd, 1, pcap_src_timeout_ms(src)) < 0 && errno != EINTR) {
			return -1;
		}
		do {
			n = pcap_src_dispatch(src, -1, on_packet, d);
		} while (n > 0);
		if (n < 0) {
			fprintf(stderr, "reasm_dump: %s\n", pcap_src_error(src));
			return -1;
		}
	}
	if (pcap_src_stats(src, &ps)) {
		printf("live received=%" PRIu64 " dropped=%" PRIu64 " ifdropped=%" PRIu64 "\n",
		       ps.received, ps.dropped, ps.ifdropped);
	}
	return 0;
}

int
main(int argc, char **argv)
{
	struct dump d = {0};
	struct reasm_limits lim;
	struct reasm_callbacks cb = {on_open, on_data, on_gap, on_close, &d};
	struct pcap_src *src;
	uint16_t ports[PCAP_SRC_MAX_PORTS];
	size_t nports = 0;
	const char *file = NULL, *iface = NULL;
	double secs = 0;
	uint64_t done, total;
	char err[512];
	int c, n = 0;

	reasm_limits_default(&lim);
	while ((c = getopt(argc, argv, "r:i:t:p:o:H:T:")) != -1) {
		switch (c) {
		case 'r': file = optarg; break;
		case 'i': iface = optarg; break;
		case 't': secs = strtod(optarg, NULL); break;
		case 'p': nports = parse_ports(optarg, ports, PCAP_SRC_MAX_PORTS); break;
		case 'o': d.dir = optarg; break;
		case 'H': lim.flow_hold_bytes = strtoul(optarg, NULL, 10); break;
		case 'T': lim.hole_timeout_us = strtoull(optarg, NULL, 10) * 1000; break;
		default: goto usage;
		}
	}
	if ((file == NULL) == (iface == NULL) || nports == 0 || d.dir == NULL) {
		goto usage;
	}
	if (file != NULL) {
		src = pcap_src_open_file(file, ports, nports, err, sizeof(err));
	} else {
		src = pcap_src_open_live(iface, ports, nports, 4 << 20, err, sizeof(err));
	}
	if (src == NULL) {
		fprintf(stderr, "reasm_dump: %s\n", err);
		return 1;
	}
	d.linktype = pcap_src_datalink(src);
	d.r = reasm_new(ports, nports, &lim, &cb);
	if (d.r == NULL) {
		fprintf(stderr, "reasm_dump: reasm_new failed\n");
		pcap_src_close(src);
		return 1;
	}
	if (iface != NULL) {
		n = live_loop(src, &d, secs);
	} else {
		while ((n = pcap_src_dispatch(src, -1, on_packet, &d)) > 0) {
		}
	}
	if (n < 0) {
		fprintf(stderr, "reasm_dump: %s\n", pcap_src_error(src));
		d.failed = 1;
	}
	reasm_close_all(d.r, 0);
	print_stats(&d);
	if (pcap_src_progress(src, &done, &total)) {
		printf("progress done=%" PRIu64 " total=%" PRIu64 " linktype=%d\n", done, total,
		       d.linktype);
	}
	reasm_free(d.r);
	pcap_src_close(src);
	return d.failed;
usage:
	fprintf(stderr, "usage: reasm_dump (-r FILE | -i IFACE -t SECS) -p PORT[,PORT] -o DIR "
			"[-H hold] [-T ms]\n");
	return 2;
}
