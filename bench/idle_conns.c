/* bench/idle_conns.c: open N MySQL sessions through a proxy (full handshake and login on each,
 * with Connector/C's non-blocking API and a bounded window in flight), hold them idle until stdin
 * reaches EOF, then check that every session still answers a ping. bench/idle.sh reads the proxy's
 * RSS while the sessions are held. Loopback benchmarking tool, not part of the proxy. */

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <mysql.h>

#define IDLE_MAX_COUNT 1000000L  /* sanity bound on -n */
#define IDLE_MAX_WINDOW 4096L    /* sanity bound on -w */
#define IDLE_ERRORS_SHOWN 5      /* first failures printed in full, the rest only counted */

enum idle_op {
	IDLE_OP_CONNECT = 0,
	IDLE_OP_PING
};

struct idle_opts {
	const char *host;        /* server or proxy address */
	const char *user;        /* login user */
	const char *pass;        /* its password */
	const char *db;          /* database sent in the handshake, may be NULL */
	unsigned int port;       /* TCP port */
	long count;              /* sessions to open */
	long window;             /* operations in flight at once */
	long hold_max;           /* seconds: the hold ends by itself after this */
	unsigned int timeout;    /* connect/read/write timeout, seconds */
};

struct idle_run {
	const struct idle_opts *o;
	MYSQL **conns;           /* count entries; NULL once a session failed */
	int *status;             /* MYSQL_WAIT_* bits of an operation in flight */
	double *deadline;        /* monotonic time at which MYSQL_WAIT_TIMEOUT fires */
	long *inflight;          /* indexes into conns, window entries */
	struct pollfd *pfd;      /* window entries */
	long ok;                 /* operations that succeeded */
	long failed;             /* operations that failed */
};

static volatile sig_atomic_t idle_stop;

static void
on_signal(int sig)
{
	(void)sig;
	idle_stop = 1;
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
usage(const char *prog)
{
	fprintf(stderr,
		"usage: %s -P PORT [-h HOST] [-u USER] [-p PASS] [-D DB] [-n COUNT] [-w WINDOW]\n"
		"          [-H HOLD_MAX_S] [-t TIMEOUT_S]\n"
		"Opens COUNT sessions (default 10000), prints 'ready connected=N failed=F ...' on\n"
		"stdout, holds them until stdin reaches EOF (or SIGTERM, or HOLD_MAX_S, default 600),\n"
		"then pings every session and prints 'alive=N'. Exit 0 only if all connected and alive.\n",
		prog);
}

/* Raise the open-file limit to the hard limit: each session is one socket. */
static void
raise_nofile(long need)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
		fprintf(stderr, "idle_conns: setrlimit: %s\n", strerror(errno));
	if (rl.rlim_max != RLIM_INFINITY && (rlim_t)need + 16 > rl.rlim_max)
		fprintf(stderr, "idle_conns: warning: %ld sessions need more than the %llu open files allowed\n",
			need, (unsigned long long)rl.rlim_max);
}

static bool
parse_long(const char *s, long lo, long hi, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

static bool
parse_args(int argc, char **argv, struct idle_opts *o)
{
	long v;
	int c;

	*o = (struct idle_opts){ .host = "127.0.0.1", .user = "bench", .pass = "benchpass",
				 .count = 10000, .window = 64, .hold_max = 600, .timeout = 30 };
	while ((c = getopt(argc, argv, "h:P:u:p:D:n:w:H:t:")) != -1) {
		switch (c) {
		case 'h': o->host = optarg; break;
		case 'u': o->user = optarg; break;
		case 'p': o->pass = optarg; break;
		case 'D': o->db = optarg; break;
		case 'P':
			if (!parse_long(optarg, 1, 65535, &v))
				return false;
			o->port = (unsigned int)v;
			break;
		case 'n':
			if (!parse_long(optarg, 1, IDLE_MAX_COUNT, &o->count))
				return false;
			break;
		case 'w':
			if (!parse_long(optarg, 1, IDLE_MAX_WINDOW, &o->window))
				return false;
			break;
		case 'H':
			if (!parse_long(optarg, 1, 86400, &o->hold_max))
				return false;
			break;
		case 't':
			if (!parse_long(optarg, 1, 3600, &v))
				return false;
			o->timeout = (unsigned int)v;
			break;
		default:
			return false;
		}
	}
	return o->port != 0 && optind == argc;
}

static bool
run_alloc(struct idle_run *r, const struct idle_opts *o)
{
	*r = (struct idle_run){ .o = o };
	r->conns = calloc((size_t)o->count, sizeof(*r->conns));
	r->status = calloc((size_t)o->count, sizeof(*r->status));
	r->deadline = calloc((size_t)o->count, sizeof(*r->deadline));
	r->inflight = calloc((size_t)o->window, sizeof(*r->inflight));
	r->pfd = calloc((size_t)o->window, sizeof(*r->pfd));
	return r->conns && r->status && r->deadline && r->inflight && r->pfd;
}

static void
run_free(struct idle_run *r)
{
	long i;

	for (i = 0; r->conns != NULL && i < r->o->count; i++)
		if (r->conns[i] != NULL)
			mysql_close(r->conns[i]);
	free(r->conns);
	free(r->status);
	free(r->deadline);
	free(r->inflight);
	free(r->pfd);
}

static void
note_failure(struct idle_run *r, long i, enum idle_op op)
{
	if (r->failed < IDLE_ERRORS_SHOWN)
		fprintf(stderr, "idle_conns: session %ld %s failed: %s\n", i,
			op == IDLE_OP_CONNECT ? "connect" : "ping", mysql_error(r->conns[i]));
	r->failed++;
	mysql_close(r->conns[i]);
	r->conns[i] = NULL;
}

/* Start operation op on session i; returns the MYSQL_WAIT_* bits, 0 when already finished. */
static int
op_start(struct idle_run *r, long i, enum idle_op op, bool *ok)
{
	const struct idle_opts *o = r->o;
	MYSQL *ret = NULL;
	int st, rc = 1;

	if (op == IDLE_OP_PING) {
		st = mysql_ping_start(&rc, r->conns[i]);
		*ok = rc == 0;
		return st;
	}
	r->conns[i] = mysql_init(NULL);
	if (r->conns[i] == NULL) {
		*ok = false;
		return 0;
	}
	mysql_options(r->conns[i], MYSQL_OPT_NONBLOCK, 0);
	mysql_options(r->conns[i], MYSQL_OPT_CONNECT_TIMEOUT, &o->timeout);
	mysql_options(r->conns[i], MYSQL_OPT_READ_TIMEOUT, &o->timeout);
	mysql_options(r->conns[i], MYSQL_OPT_WRITE_TIMEOUT, &o->timeout);
	st = mysql_real_connect_start(&ret, r->conns[i], o->host, o->user, o->pass, o->db,
				      o->port, NULL, 0);
	*ok = ret != NULL;
	return st;
}

/* Continue operation op on session i after events ev; same return contract as op_start. */
static int
op_cont(struct idle_run *r, long i, enum idle_op op, int ev, bool *ok)
{
	MYSQL *ret = NULL;
	int st, rc = 1;

	if (op == IDLE_OP_PING) {
		st = mysql_ping_cont(&rc, r->conns[i], ev);
		*ok = rc == 0;
		return st;
	}
	st = mysql_real_connect_cont(&ret, r->conns[i], ev);
	*ok = ret != NULL;
	return st;
}

static void
op_done(struct idle_run *r, long i, enum idle_op op, bool ok)
{
	if (ok)
		r->ok++;
	else if (r->conns[i] != NULL)
		note_failure(r, i, op);
	else
		r->failed++;
}

/* Translate poll results (or an expired timeout) into MYSQL_WAIT_* bits for op_cont. */
static int
wait_events(int want, short revents, double deadline, double now)
{
	int ev = 0;

	if (revents & POLLIN)
		ev |= MYSQL_WAIT_READ;
	if (revents & POLLOUT)
		ev |= MYSQL_WAIT_WRITE;
	if (revents & POLLPRI)
		ev |= MYSQL_WAIT_EXCEPT;
	if (revents & (POLLERR | POLLHUP | POLLNVAL))
		ev |= want & (MYSQL_WAIT_READ | MYSQL_WAIT_WRITE);
	if (ev == 0 && (want & MYSQL_WAIT_TIMEOUT) && now >= deadline)
		ev = MYSQL_WAIT_TIMEOUT;
	return ev;
}

static void
arm(struct idle_run *r, long slot, long i, int st)
{
	r->inflight[slot] = i;
	r->status[i] = st;
	r->deadline[i] = now_s() + (st & MYSQL_WAIT_TIMEOUT ?
		(double)mysql_get_timeout_value(r->conns[i]) : 1e9);
}

/* Poll the sessions in flight once and advance those with events; returns how many remain. */
static long
poll_window(struct idle_run *r, enum idle_op op, long n)
{
	double now, first = 1e18;
	long k;
	bool ok;
	int ms;

	for (k = 0; k < n; k++) {
		long i = r->inflight[k];
		int st = r->status[i];

		r->pfd[k].fd = mysql_get_socket(r->conns[i]);
		r->pfd[k].events = (short)((st & MYSQL_WAIT_READ ? POLLIN : 0) |
					   (st & MYSQL_WAIT_WRITE ? POLLOUT : 0) |
					   (st & MYSQL_WAIT_EXCEPT ? POLLPRI : 0));
		r->pfd[k].revents = 0;
		if (r->deadline[i] < first)
			first = r->deadline[i];
	}
	now = now_s();
	ms = first - now > 1.0 ? 1000 : first <= now ? 0 : (int)((first - now) * 1000) + 1;
	if (poll(r->pfd, (nfds_t)n, ms) < 0 && errno != EINTR)
		return -1;
	now = now_s();
	for (k = n - 1; k >= 0; k--) {
		long i = r->inflight[k];
		int ev = wait_events(r->status[i], r->pfd[k].revents, r->deadline[i], now);
		int st;

		if (ev == 0)
			continue;
		st = op_cont(r, i, op, ev, &ok);
		if (st != 0) {
			arm(r, k, i, st);
			continue;
		}
		op_done(r, i, op, ok);
		r->inflight[k] = r->inflight[--n];
	}
	return n;
}

/* Run op on every live session with at most window in flight. Returns false on a poll error. */
static bool
run_all(struct idle_run *r, enum idle_op op)
{
	long next = 0, n = 0;
	bool ok;

	r->ok = r->failed = 0;
	while (next < r->o->count || n > 0) {
		while (n < r->o->window && next < r->o->count) {
			long i = next++;
			int st;

			if (op == IDLE_OP_PING && r->conns[i] == NULL)
				continue;
			st = op_start(r, i, op, &ok);
			if (st == 0)
				op_done(r, i, op, ok);
			else
				arm(r, n++, i, st);
		}
		if (n > 0 && (n = poll_window(r, op, n)) < 0) {
			fprintf(stderr, "idle_conns: poll: %s\n", strerror(errno));
			return false;
		}
	}
	return true;
}

/* Block until stdin reaches EOF, a signal arrives or hold_max seconds pass. */
static void
hold(long hold_max)
{
	double end = now_s() + (double)hold_max;
	char buf[256];

	while (!idle_stop && now_s() < end) {
		struct pollfd p = { .fd = STDIN_FILENO, .events = POLLIN };
		int rc = poll(&p, 1, 1000);

		if (rc < 0 && errno != EINTR)
			return;
		if (rc > 0) {
			ssize_t got = read(STDIN_FILENO, buf, sizeof(buf));

			if (got <= 0 && !(got < 0 && errno == EINTR))
				return;
		}
	}
}

int
main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_signal };
	struct idle_opts o;
	struct idle_run r;
	double t0, t1;
	long connected;
	int rc = 1;

	if (!parse_args(argc, argv, &o)) {
		usage(argv[0]);
		return 2;
	}
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	raise_nofile(o.count);
	if (mysql_library_init(0, NULL, NULL) != 0 || !run_alloc(&r, &o)) {
		fprintf(stderr, "idle_conns: out of memory\n");
		return 1;
	}
	t0 = now_s();
	if (!run_all(&r, IDLE_OP_CONNECT))
		goto out;
	t1 = now_s();
	connected = r.ok;
	printf("ready connected=%ld failed=%ld seconds=%.2f rate=%.0f/s\n", r.ok, r.failed, t1 - t0,
	       (double)r.ok / (t1 - t0 > 0 ? t1 - t0 : 1e-9));
	fflush(stdout);
	hold(o.hold_max);
	if (!run_all(&r, IDLE_OP_PING))
		goto out;
	printf("alive=%ld of %ld dead=%ld\n", r.ok, connected, r.failed);
	fflush(stdout);
	rc = connected == o.count && r.ok == connected ? 0 : 1;
out:
	run_free(&r);
	mysql_library_end();
	return rc;
}
