/* tests/unit/test_mirror.c: the rules mirror against real sources: files replaced and
 * rewritten on disk, a real python3 HTTP server on a loopback port (normal, error,
 * hanging and truncating endpoints), and real child commands.  Every child started
 * here is killed and reaped by pid. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <jansson.h>

#include "proxy/mirror.h"

#define POLL_MS 50
#define FETCH_MS 6000 /* fetch timeout where no timeout is expected (loaded CI boxes) */
#define WAIT_MS 8000  /* upper bound for a condition; tests only wait that long when failing */

struct tctx {
	struct event_base *base;
	struct mirror *m;
	int deliveries;     /* times the callback ran */
	int want;           /* threshold for the conditions below */
	char last[300000];  /* copy of the last delivered bytes */
	size_t last_len;    /* their length */
	int64_t last_us;    /* when the callback last ran */
	const char *reject; /* reject content containing this marker */
	bool parse_json;    /* parse with jansson, as the router's loader will */
	uint64_t at_fetch;  /* number of the fetch that made the last delivery */
};

static char tmpdir[256];
static pid_t http_pid;
static int http_port;

static int64_t
mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static bool
on_bytes(void *ctx, const char *data, size_t len, const char *origin, char *err, size_t errlen)
{
	struct tctx *t = ctx;

	assert_non_null(origin);
	assert_int_equal(data[len], '\0');
	struct mirror_status st;

	mirror_status(t->m, &st); /* fetches already counts the fetch delivering now */
	t->at_fetch = st.fetches;
	t->deliveries++;
	t->last_us = mono_us();
	t->last_len = len < sizeof(t->last) ? len : sizeof(t->last) - 1;
	memcpy(t->last, data, t->last_len);
	t->last[t->last_len] = '\0';
	if (t->parse_json) {
		json_error_t jerr;
		json_t *j = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);

		if (j == NULL) {
			snprintf(err, errlen, "line %d column %d: %s", jerr.line, jerr.column,
			         jerr.text);
			return false;
		}
		json_decref(j);
	}
	if (t->reject != NULL && strstr(t->last, t->reject) != NULL) {
		snprintf(err, errlen, "parse error at byte 3 (marker %s)", t->reject);
		return false;
	}
	return true;
}

typedef bool (*cond_fn)(struct tctx *t);

static bool
cond_deliveries(struct tctx *t)
{
	return t->deliveries >= t->want;
}

static bool
cond_fetches(struct tctx *t)
{
	struct mirror_status st;

	mirror_status(t->m, &st);
	return st.fetches >= (uint64_t)t->want;
}

static bool
cond_stale(struct tctx *t)
{
	struct mirror_status st;

	mirror_status(t->m, &st);
	return st.stale;
}

static bool
cond_fresh(struct tctx *t)
{
	struct mirror_status st;

	mirror_status(t->m, &st);
	return !st.stale && st.fetches > 0;
}

struct runner {
	struct tctx *t;
	cond_fn cond;
	int ticks;       /* how often the 5 ms check timer fired */
	int64_t last;    /* when it last fired */
	int64_t max_gap; /* longest stretch without a tick: how long the loop was stuck */
};

static void
check_cb(evutil_socket_t fd, short what, void *arg)
{
	struct runner *r = arg;
	int64_t now = mono_us();

	(void)fd;
	(void)what;
	r->ticks++;
	if (now - r->last > r->max_gap) {
		r->max_gap = now - r->last;
	}
	r->last = now;
	if (r->cond(r->t)) {
		event_base_loopbreak(r->t->base);
	}
}

/* Run the loop until cond holds or timeout_ms passed; returns cond's final value.
 * *max_gap_us (optional) gets the longest time the loop went without running a 5 ms
 * timer: a fetch that blocked the loop shows up there. */
static bool
run_until(struct tctx *t, cond_fn cond, int timeout_ms, int64_t *max_gap_us)
{
	struct runner r = {t, cond, 0, mono_us(), 0};
	struct timeval five = {0, 5000}, limit = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
	struct event *chk = event_new(t->base, -1, EV_PERSIST, check_cb, &r);

	assert_non_null(chk);
	event_add(chk, &five);
	event_base_loopexit(t->base, &limit);
	if (!cond(t)) {
		event_base_dispatch(t->base);
	}
	event_free(chk);
	/* a pending loopexit would end the next run early: drain it */
	event_base_loopexit(t->base, &(struct timeval){0, 0});
	event_base_loop(t->base, EVLOOP_NONBLOCK);
	if (max_gap_us != NULL) {
		*max_gap_us = r.max_gap;
	}
	return cond(t);
}

static void
run_for(struct tctx *t, int ms)
{
	t->want = 1 << 30;
	run_until(t, cond_deliveries, ms, NULL);
}

/* Contexts still alive: a failed assertion skips tctx_free, so the group teardown
 * frees what is left (mirror_free kills and reaps a running command). */
static struct tctx *live[8];

static struct tctx *
tctx_new(void)
{
	struct tctx *t = calloc(1, sizeof(*t));

	assert_non_null(t);
	t->base = event_base_new();
	assert_non_null(t->base);
	for (size_t i = 0; i < sizeof(live) / sizeof(live[0]); i++) {
		if (live[i] == NULL) {
			live[i] = t;
			break;
		}
	}
	return t;
}

static void
tctx_free(struct tctx *t)
{
	for (size_t i = 0; i < sizeof(live) / sizeof(live[0]); i++) {
		if (live[i] == t) {
			live[i] = NULL;
		}
	}
	mirror_free(t->m);
	event_base_free(t->base);
	free(t);
}

static struct mirror *
start(struct tctx *t, const char *spec, uint32_t poll_ms, uint32_t timeout_ms, size_t max)
{
	struct mirror_opts o = {poll_ms, timeout_ms, max};
	char err[256];

	t->m = mirror_new(t->base, spec, &o, on_bytes, t, err, sizeof(err));
	if (t->m == NULL) {
		fail_msg("mirror_new(%s): %s", spec, err);
	}
	return t->m;
}

static void
path_in_tmp(char *dst, size_t n, const char *name)
{
	snprintf(dst, n, "%s/%s", tmpdir, name);
}

static void
write_file(const char *path, const char *content)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fputs(content, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

/* write tmp + rename: what an operator's script or a config manager does */
static void
replace_file(const char *path, const char *content)
{
	char tmp[600];

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	write_file(tmp, content);
	assert_int_equal(rename(tmp, path), 0);
}

static void
status(struct tctx *t, struct mirror_status *st)
{
	mirror_status(t->m, st);
}

/* "Within one poll interval", independent of machine load: a change made now must be
 * delivered by the first fetch that STARTS after now, i.e. by the running fetch (if
 * any, it may or may not have read the old bytes) or the next one.  Returns the
 * highest fetch number allowed to deliver it. */
static uint64_t
deadline_fetch(struct tctx *t)
{
	struct mirror_status st;

	mirror_status(t->m, &st);
	return st.fetches + (st.busy ? 2 : 1);
}

/* ---- spec validation ---------------------------------------------------------------- */

static void
test_spec_check(void **state)
{
	static const struct {
		const char *spec;
		bool ok;
		enum mirror_kind kind;
		const char *why;
	} cases[] = {
	    {"file:/etc/rules.json", true, MIRROR_FILE, NULL},
	    {"file:rel/rules.json", true, MIRROR_FILE, NULL},
	    {"http://127.0.0.1:15001/debug/vschema", true, MIRROR_HTTP, NULL},
	    {"http://localhost/debug/vschema?x=1", true, MIRROR_HTTP, NULL},
	    {"HTTP://[::1]:15001/", true, MIRROR_HTTP, NULL},
	    {"exec:vtctldclient --server 127.0.0.1:15999 GetSrvVSchema zone1", true, MIRROR_EXEC,
	     NULL},
	    {"file:", false, MIRROR_FILE, "empty file path"},
	    {"exec:   ", false, MIRROR_FILE, "empty command"},
	    {"https://vtgate:15001/debug/vschema", false, MIRROR_FILE, "https"},
	    {"http:///debug/vschema", false, MIRROR_FILE, "host"},
	    {"http://u:p@127.0.0.1:1/x", false, MIRROR_FILE, "user info"},
	    {"http://127.0.0.1:notaport/x", false, MIRROR_FILE, "http"},
	    {"/etc/rules.json", false, MIRROR_FILE, "expected file:PATH"},
	    {"ftp://x/y", false, MIRROR_FILE, "expected file:PATH"},
	    {"", false, MIRROR_FILE, "expected"},
	};
	char err[256];
	enum mirror_kind k;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err[0] = '\0';
		bool ok = mirror_spec_check(cases[i].spec, &k, err, sizeof(err));

		if (ok != cases[i].ok) {
			fail_msg("spec '%s': got %d (%s)", cases[i].spec, ok, err);
		}
		if (ok) {
			assert_int_equal(k, cases[i].kind);
		} else if (strstr(err, cases[i].why) == NULL) {
			fail_msg("spec '%s': error '%s' lacks '%s'", cases[i].spec, err,
			         cases[i].why);
		}
	}
	assert_false(mirror_spec_check(NULL, &k, err, sizeof(err)));

	/* mirror_new refuses the same specs, with the reason */
	struct tctx *t = tctx_new();

	assert_null(mirror_new(t->base, "gopher://x", NULL, on_bytes, t, err, sizeof(err)));
	assert_non_null(strstr(err, "gopher://x"));
	tctx_free(t);
}

/* ---- file: ------------------------------------------------------------------------------- */

static void
test_file_replace_and_rewrite(void **state)
{
	struct tctx *t = tctx_new();
	struct mirror_status st;
	char path[512], spec[600];
	uint64_t by;

	(void)state;
	path_in_tmp(path, sizeof(path), "rules.json");
	write_file(path, "{\"rules\": [{\"from_table\": \"t1\", \"to_tables\": [\"s.t1\"]}]}");
	snprintf(spec, sizeof(spec), "file:%s", path);
	start(t, spec, POLL_MS, FETCH_MS, 0);

	t->want = 1;
	assert_true(run_until(t, cond_deliveries, WAIT_MS, NULL));
	assert_string_equal(t->last,
	                    "{\"rules\": [{\"from_table\": \"t1\", \"to_tables\": [\"s.t1\"]}]}");

	/* atomic replacement: new inode */
	by = deadline_fetch(t);
	replace_file(path, "{\"rules\": [{\"from_table\": \"t1\", \"to_tables\": [\"T.t1\"]}]}");
	t->want = 2;
	assert_true(run_until(t, cond_deliveries, WAIT_MS, NULL));
	assert_true(t->at_fetch <= by);
	assert_non_null(strstr(t->last, "T.t1"));

	/* in-place rewrite, same inode */
	by = deadline_fetch(t);
	write_file(path, "{\"rules\": []}");
	t->want = 3;
	assert_true(run_until(t, cond_deliveries, WAIT_MS, NULL));
	assert_true(t->at_fetch <= by);
	assert_string_equal(t->last, "{\"rules\": []}");

	/* same size, mtime forced back to the old value: only the content hash sees it */
	struct stat sb;

	assert_int_equal(stat(path, &sb), 0);
	write_file(path, "{\"rulez\": []}");
	struct timespec times[2] = {sb.st_atim, sb.st_mtim};

	assert_int_equal(utimensat(AT_FDCWD, path, times, 0), 0);
	t->want = 4;
	assert_true(run_until(t, cond_deliveries, WAIT_MS, NULL));
	assert_string_equal(t->last, "{\"rulez\": []}");

	/* unchanged: polls keep happening, nothing is delivered */
	status(t, &st);
	t->want = (int)st.fetches + 5;
	assert_true(run_until(t, cond_fetches, WAIT_MS, NULL));
	assert_int_equal(t->deliveries, 4);
	status(t, &st);
	assert_int_equal(st.changes, 4);
	if (st.stale || st.failures != 0) {
		fail_msg("unexpected failure: %s", st.last_error);
	}
	assert_true(st.has_content);
	assert_int_equal(st.content_len, strlen("{\"rulez\": []}"));
	tctx_free(t);
}

/* Files over 1 MiB are not re-read while their identity is unchanged; replacing them
 * is still seen. */
static void
test_file_big_identity(void **state)
{
	struct tctx *t = tctx_new();
	struct mirror_status st;
	char path[512], spec[600];
	size_t n = (size_t)2 << 20;
	char *big = malloc(n + 1);

	(void)state;
	assert_non_null(big);
	memset(big, ' ', n);
	big[0] = '{';
	big[n - 1] = '}';
	big[n] = '\0';
	path_in_tmp(path, sizeof(path), "big2m.json");
	replace_file(path, big);
	snprintf(spec, sizeof(spec), "file:%s", path);
	start(t, spec, POLL_MS, FETCH_MS, 0);
	t->want = 1;
	assert_true(run_until(t, cond_deliveries, WAIT_MS, NULL));
	status(t, &st);
	assert_int_equal(st.content_len, n);
	t->want = (int)st.fetches + 3;
	assert_true(run_until(t, cond_fetches, WAIT_MS, NULL));
	assert_int_equal(t->deliveries, 1);
	status(t, &st);
	assert_false(st.stale);
	assert_int_equal(st.content_len, n);

	big[1] = 'x';
	replace_file(path, big);
	t->want = 2;
	assert_true(run_until(t, cond_deliveries, WAIT_MS, NULL));
	assert_int_equal(t->last[1], 'x');
	free(big);
	tctx_free(t);
}

struct transitions {
	int n;                     /* callbacks seen */
	bool stale[8];             /* the stale flag each one reported */
	char error[MIRROR_ERRLEN]; /* last_error at the last one */
};

static void
on_state(void *ctx, const struct mirror_status *st)
{
	struct transitions *tr = ctx;

	if (tr->n < 8) {
		tr->stale[tr->n] = st->stale;
	}
	tr->n++;
	snprintf(tr->error, sizeof(tr->error), "%s", st->last_error);
	assert_true(st->stale ? st->stale_since_us > 0 : st->stale_since_us == 0);
}

static void
test_file_missing_then_recovers(void **state)
{
	struct tctx *t = tctx_new();
	struct transitions tr = {0};
	struct mirror_status st;
	char path[512], spec[600];

	(void)state;
	path_in_tmp(path, sizeof(path), "missing.json");
	unlink(path);
	snprintf(spec, sizeof(spec), "file:%s", path);
	start(t, spec, POLL_MS, FETCH_MS, 0);
	mirror_on_state(t->m, on_state, &tr);

	assert_true(run_until(t, cond_stale, WAIT_MS, NULL));
	status(t, &st);
	assert_true(st.stale);
	assert_true(st.stale_since_us > 0);
	assert_int_equal(st.last_success_us, 0);
	assert_false(st.has_content);
	assert_non_null(strstr(st.last_error, "No such file"));
	assert_non_null(strstr(st.last_error, path));
	int64_t since = st.stale_since_us;

	t->want = 3;
	assert_true(run_until(t, cond_fetches, WAIT_MS, NULL));
	status(t, &st);
	assert_true(st.consecutive_failures >= 3);
	assert_int_equal(st.stale_since_us, since); /* since the FIRST failure of the run */
	assert_int_equal(t->deliveries, 0);

	json_t *j = mirror_status_json(t->m);

	assert_non_null(j);
	assert_true(json_is_true(json_object_get(j, "stale")));
	assert_true(json_is_string(json_object_get(j, "stale_since")));
	assert_true(json_is_null(json_object_get(j, "last_success")));
	assert_string_equal(json_string_value(json_object_get(j, "kind")), "file");
	assert_non_null(strstr(json_string_value(json_object_get(j, "last_error")), "No such"));
	json_decref(j);

	/* the file appears: delivered, no longer stale */
	replace_file(path, "{\"keyspaces\": {}}");
	t->want = 1;
	assert_true(run_until(t, cond_deliveries, WAIT_MS, NULL));
	status(t, &st);
	assert_false(st.stale);
	assert_int_equal(st.stale_since_us, 0);
	assert_int_equal(st.consecutive_failures, 0);
	assert_true(st.last_success_us >= since);
	assert_non_null(strstr(st.last_error, "No such file")); /* history kept */

	/* removed again: stale, the caller keeps its last good content */
	unlink(path);
	assert_true(run_until(t, cond_stale, WAIT_MS, NULL));
	assert_int_equal(t->deliveries, 1);

	/* one callback per transition, not per failed poll */
	t->want = (int)st.fetches + 3;
	assert_true(run_until(t, cond_fetches, WAIT_MS, NULL));
	assert_int_equal(tr.n, 3);
	assert_true(tr.stale[0]);
	assert_false(tr.stale[1]);
	assert_true(tr.stale[2]);
	assert_non_null(strstr(tr.error, "No such file"));
	tctx_free(t);
}

static void
test_file_rejected_not_reparsed(void **state)
{
	struct tctx *t = tctx_new();
	struct mirror_status st;
	char path[512], spec[600];

	(void)state;
	path_in_tmp(path, sizeof(path), "reject.json");
	write_file(path, "{\"good\": 1}");
	snprintf(spec, sizeof(spec), "file:%s", path);
	t->reject = "GARBAGE";
	start(t, spec, POLL_MS, FETCH_MS, 0);
	t->want = 1;
	assert_true(run_until(t, cond_deliveries, WAIT_MS, NULL));

	/* a half-written file: rejected by the parser once, then not offered again */
	write_file(path, "{\"go GARBAGE");
	t->want = 2;
	assert_true(run_until(t, cond_deliveries, WAIT_MS, NULL));
	status(t, &st);
	assert_true(st.stale);
	assert_int_equal(st.rejects, 1);
	assert_non_null(strstr(st.last_error, "parse error at byte 3"));
	t->want = (int)st.fetches + 4;
	assert_true(run_until(t, cond_fetches, WAIT_MS, NULL));
	assert_int_equal(t->deliveries, 2);
	status(t, &st);
	assert_true(st.stale);
	assert_true(st.consecutive_failures >= 5);
	assert_int_equal(st.changes, 1);

	/* SIGHUP-style force: the same bytes are parsed again */
	mirror_force(t->m);
	t->want = 3;
	assert_true(run_until(t, cond_deliveries, WAIT_MS, NULL));
	assert_non_null(strstr(t->last, "GARBAGE"));

	/* back to the accepted content: nothing to deliver, but no longer stale */
	write_file(path, "{\"good\": 1}");
	assert_true(run_until(t, cond_fresh, WAIT_MS, NULL));
	assert_int_equal(t->deliveries, 3);

	/* the writer finishes a new file: delivered and accepted */
	write_file(path, "{\"good\": 2}");
	t->want = 4;
	assert_true(run_until(t, cond_deliveries, WAIT_MS, NULL));
	status(t, &st);
	assert_false(st.stale);
	assert_int_equal(st.changes, 2);
	assert_int_equal(st.rejects, 2);
	tctx_free(t);
}

static void
test_file_too_big_and_not_regular(void **state)
{
	struct tctx *t = tctx_new();
	struct mirror_status st;
	char path[512], spec[600], big[300];

	(void)state;
	path_in_tmp(path, sizeof(path), "big.json");
	memset(big, 'x', 100);
	big[100] = '\0';
	write_file(path, big); /* exactly the maximum: fine */
	snprintf(spec, sizeof(spec), "file:%s", path);
	start(t, spec, POLL_MS, FETCH_MS, 100);
	t->want = 1;
	assert_true(run_until(t, cond_deliveries, WAIT_MS, NULL));
	assert_int_equal(t->last_len, 100);
	memset(big, 'y', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	write_file(path, big);
	assert_true(run_until(t, cond_stale, WAIT_MS, NULL));
	status(t, &st);
	assert_non_null(strstr(st.last_error, "maximum of 100 bytes"));
	assert_int_equal(t->deliveries, 1);
	mirror_free(t->m);
	t->m = NULL;

	/* a FIFO at the path: must neither block the loop in open() nor be read */
	path_in_tmp(path, sizeof(path), "fifo");
	unlink(path);
	assert_int_equal(mkfifo(path, 0600), 0);
	snprintf(spec, sizeof(spec), "file:%s", path);
	start(t, spec, POLL_MS, FETCH_MS, 0);
	assert_true(run_until(t, cond_stale, WAIT_MS, NULL));
	status(t, &st);
	assert_non_null(strstr(st.last_error, "not a regular file"));
	unlink(path);
	tctx_free(t);
}

/* ---- http:// ------------------------------------------------------------------------------ */

/* A threaded server so that a hanging request does not hold up the next test. */
static const char http_script[] =
    "import http.server, os, sys, time\n"
    "root = sys.argv[1]\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    protocol_version = 'HTTP/1.1'\n"
    "    def log_message(self, *a):\n"
    "        pass\n"
    "    def reply(self, code, body, length=None):\n"
    "        self.send_response(code)\n"
    "        self.send_header('Content-Type', 'application/json')\n"
    "        self.send_header('Content-Length', str(len(body) if length is None else length))\n"
    "        self.send_header('Connection', 'close')\n"
    "        self.end_headers()\n"
    "        self.wfile.write(body)\n"
    "        self.wfile.flush()\n"
    "        self.close_connection = True\n"
    "    def do_GET(self):\n"
    "        p = self.path\n"
    "        if p.startswith('/status/'):\n"
    "            code = int(p.split('/')[2])\n"
    "            return self.reply(code, b'{\"error\": \"status %d\"}' % code)\n"
    "        if p == '/hang':\n"
    "            time.sleep(60)\n"
    "            return\n"
    "        if p == '/truncate':\n"
    "            return self.reply(200, b'{\"routing_rules\": {', length=5000)\n"
    "        name = os.path.join(root, p.strip('/').replace('/', '_'))\n"
    "        try:\n"
    "            body = open(name, 'rb').read()\n"
    "        except OSError:\n"
    "            return self.reply(404, b'{\"error\": \"no such page\"}')\n"
    "        self.reply(200, body)\n"
    "srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), H)\n"
    "srv.daemon_threads = True\n"
    "print(srv.server_address[1], flush=True)\n"
    "srv.serve_forever()\n";

static int
http_group_setup(void **state)
{
	char script[512], line[32];
	int pfd[2];
	ssize_t n;
	size_t got = 0;

	(void)state;
	path_in_tmp(script, sizeof(script), "server.py");
	write_file(script, http_script);
	if (pipe(pfd) != 0) {
		return -1;
	}
	http_pid = fork();
	if (http_pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive a crashed test */
		dup2(pfd[1], 1);
		close(pfd[0]);
		close(pfd[1]);
		execlp("python3", "python3", script, tmpdir, (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	/* the server prints its port once it listens; a blocking read is fine in a test */
	while (got < sizeof(line) - 1 && (n = read(pfd[0], line + got, 1)) == 1 &&
	       line[got] != '\n') {
		got++;
	}
	line[got] = '\0';
	close(pfd[0]);
	http_port = atoi(line);
	return http_port > 0 ? 0 : -1;
}

static int
http_group_teardown(void **state)
{
	(void)state;
	if (http_pid > 0) {
		kill(http_pid, SIGKILL);
		waitpid(http_pid, NULL, 0);
		http_pid = 0;
	}
	return 0;
}

static void
http_spec(char *dst, size_t n, const char *path)
{
	snprintf(dst, n, "http://127.0.0.1:%d%s", http_port, path);
}

static void
test_http_delivers_and_follows_changes(void **state)
{
	static const char v1[] =
	    "{\n \"routing_rules\": {\n  \"t1\": [\"sourcekeyspace.t1\"]\n }\n}";
	static const char v2[] =
	    "{\n \"routing_rules\": {\n  \"t1\": [\"targetkeyspace.t1\"]\n }\n}";
	struct tctx *t = tctx_new();
	struct mirror_status st;
	char file[512], spec[256];
	uint64_t by;

	(void)state;
	path_in_tmp(file, sizeof(file), "debug_vschema");
	replace_file(file, v1);
	http_spec(spec, sizeof(spec), "/debug/vschema");
	start(t, spec, POLL_MS, FETCH_MS, 0);
	t->want = 1;
	assert_true(run_until(t, cond_deliveries, WAIT_MS, NULL));
	assert_string_equal(t->last, v1);

	status(t, &st);
	t->want = (int)st.fetches + 3;
	assert_true(run_until(t, cond_fetches, WAIT_MS, NULL));
	assert_int_equal(t->deliveries, 1); /* unchanged: not delivered again */

	by = deadline_fetch(t);
	replace_file(file, v2);
	t->want = 2;
	assert_true(run_until(t, cond_deliveries, WAIT_MS, NULL));
	assert_string_equal(t->last, v2);
	assert_true(t->at_fetch <= by);
	status(t, &st);
	if (st.stale || st.failures != 0) {
		fail_msg("unexpected failure: %s", st.last_error);
	}
	assert_int_equal(st.kind, MIRROR_HTTP);
	tctx_free(t);
}

static void
expect_http_failure(const char *path, uint32_t timeout_ms, size_t max, const char *want)
{
	struct tctx *t = tctx_new();
	struct mirror_status st;
	char spec[256];

	http_spec(spec, sizeof(spec), path);
	start(t, spec, POLL_MS, timeout_ms, max);
	assert_true(run_until(t, cond_stale, WAIT_MS, NULL));
	status(t, &st);
	if (strstr(st.last_error, want) == NULL) {
		fail_msg("GET %s: error '%s' lacks '%s'", path, st.last_error, want);
	}
	assert_int_equal(t->deliveries, 0);
	assert_true(st.consecutive_failures >= 1);
	tctx_free(t);
}

static void
test_http_errors(void **state)
{
	(void)state;
	expect_http_failure("/status/404", FETCH_MS, 0, "HTTP status 404");
	expect_http_failure("/status/500", FETCH_MS, 0, "HTTP status 500");
	expect_http_failure("/status/500", FETCH_MS, 0, "status 500\"}"); /* body excerpt */
	expect_http_failure("/truncate", FETCH_MS, 0, "no complete response");

	/* body larger than the maximum */
	char file[512], big[5000];

	path_in_tmp(file, sizeof(file), "big");
	memset(big, ' ', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	write_file(file, big);
	expect_http_failure("/big", FETCH_MS, 1000, "larger than the maximum of 1000");
}

static void
test_http_refused(void **state)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sa);
	struct tctx *t = tctx_new();
	struct mirror_status st;
	char spec[256];
	int fd;

	(void)state;
	/* a port that was free a moment ago and has no listener */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	close(fd);
	snprintf(spec, sizeof(spec), "http://127.0.0.1:%d/debug/vschema", ntohs(sa.sin_port));
	start(t, spec, POLL_MS, FETCH_MS, 0);
	assert_true(run_until(t, cond_stale, WAIT_MS, NULL));
	status(t, &st);
	assert_non_null(strstr(st.last_error, spec));
	assert_non_null(strstr(st.last_error, "connection failed"));
	assert_null(strstr(st.last_error, "timed out"));
	/* it keeps retrying */
	t->want = 3;
	assert_true(run_until(t, cond_fetches, WAIT_MS, NULL));
	status(t, &st);
	assert_true(st.consecutive_failures >= 3);
	tctx_free(t);
}

static void
test_http_hang_times_out_loop_alive(void **state)
{
	struct tctx *t = tctx_new();
	struct mirror_status st;
	char spec[256];
	int64_t gap = 0;
	int64_t t0 = mono_us(), took;

	(void)state;
	http_spec(spec, sizeof(spec), "/hang");
	start(t, spec, POLL_MS, 600, 0);
	assert_true(run_until(t, cond_stale, WAIT_MS, &gap));
	took = mono_us() - t0;
	status(t, &st);
	assert_non_null(strstr(st.last_error, "timed out after 600 ms"));
	assert_true(took >= 550 * 1000);
	assert_true(took <= 3000 * 1000);
	/* the 5 ms timer kept firing during the hang: the loop was never blocked */
	/* the loop kept running during the hang: never stuck for anything like the
	 * 600 ms the fetch took (a blocking fetch would show a gap of >= 600 ms) */
	assert_true(gap < 400 * 1000);
	assert_int_equal(st.fetches, 1);
	tctx_free(t);
}

/* ---- exec: ------------------------------------------------------------------------------- */

static pid_t
read_pid(const char *path)
{
	FILE *f = fopen(path, "r");
	int pid = 0;

	if (f == NULL) {
		return 0;
	}
	if (fscanf(f, "%d", &pid) != 1) {
		pid = 0;
	}
	fclose(f);
	return pid;
}

/* Reaped: not even a zombie; kill(pid, 0) fails with ESRCH. */
static bool
pid_gone(pid_t pid)
{
	for (int i = 0; i < 100; i++) {
		if (kill(pid, 0) != 0 && errno == ESRCH) {
			return true;
		}
		usleep(10000);
	}
	return false;
}

/* Dead: gone, or a zombie waiting for ITS parent (a grandchild re-parented to init,
 * which in some sandboxes reaps late). */
static bool
pid_dead(pid_t pid)
{
	char path[64], buf[256];
	FILE *f;

	for (int i = 0; i < 100; i++) {
		snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
		f = fopen(path, "r");
		if (f == NULL) {
			return true;
		}
		size_t n = fread(buf, 1, sizeof(buf) - 1, f);

		fclose(f);
		buf[n] = '\0';
		char *rp = strrchr(buf, ')'); /* "pid (comm) S ..." */

		if (rp != NULL && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X')) {
			return true;
		}
		usleep(10000);
	}
	return false;
}

static void
test_exec_delivers(void **state)
{
	struct tctx *t = tctx_new();
	struct mirror_status st;
	char file[512], spec[700];

	(void)state;
	path_in_tmp(file, sizeof(file), "srvvschema.json");
	write_file(
	    file,
	    "{\"keyspaces\": {\"sourcekeyspace\": {}}, \"routing_rules\": {\"rules\": []}}\n");
	/* stderr chatter from a successful command is not an error */
	snprintf(spec, sizeof(spec), "exec:echo warming up >&2; cat '%s'", file);
	start(t, spec, POLL_MS, FETCH_MS, 0);
	t->want = 1;
	assert_true(run_until(t, cond_deliveries, WAIT_MS, NULL));
	assert_string_equal(
	    t->last,
	    "{\"keyspaces\": {\"sourcekeyspace\": {}}, \"routing_rules\": {\"rules\": []}}\n");
	status(t, &st);
	t->want = (int)st.fetches + 3;
	assert_true(run_until(t, cond_fetches, WAIT_MS, NULL));
	assert_int_equal(t->deliveries, 1);

	replace_file(file, "{\"keyspaces\": {}}\n"); /* atomic: a cat may be running */
	t->want = 2;
	assert_true(run_until(t, cond_deliveries, WAIT_MS, NULL));
	assert_string_equal(t->last, "{\"keyspaces\": {}}\n");
	status(t, &st);
	if (st.stale || st.failures != 0) {
		fail_msg("unexpected failure: %s", st.last_error);
	}
	tctx_free(t);
}

/* The command starts clean: no signal ignored (the proxy ignores SIGPIPE, which would
 * break pipelines in the command), no inherited descriptors beyond 0-2. */
static void
test_exec_child_environment(void **state)
{
	struct tctx *t = tctx_new();
	int leak = open("/dev/null", O_RDONLY); /* deliberately without O_CLOEXEC */

	(void)state;
	char spec[200];

	assert_true(leak > 2);
	/* probe the descriptor by number: listing a directory would itself open one */
	snprintf(spec, sizeof(spec),
	         "exec:grep '^SigIgn:' /proc/self/status; test -e /proc/$$/fd/%d && echo leaked %d;"
	         " echo end",
	         leak, leak);
	start(t, spec, POLL_MS, FETCH_MS, 0);
	t->want = 1;
	assert_true(run_until(t, cond_deliveries, WAIT_MS, NULL));
	/* Signals 1..31 must all be at their default.  Bits 31 and up are glibc's
	 * reserved real-time signals (32, 33), which no program can reset and which a
	 * parent such as make may leave ignored. */
	unsigned long long ign = 0;
	char tail[16] = "";
	assert_int_equal(sscanf(t->last, "SigIgn:\t%llx\n%15s", &ign, tail), 2);
	assert_int_equal(ign & 0x7fffffffULL, 0);
	assert_string_equal(tail, "end");
	close(leak);
	tctx_free(t);
}

static void
test_exec_nonzero_exit(void **state)
{
	struct tctx *t = tctx_new();
	struct mirror_status st;

	(void)state;
	start(t, "exec:echo '{\"partial\":'; echo 'rpc error: code = Unavailable' >&2; exit 3",
	      POLL_MS, 2000, 0);
	assert_true(run_until(t, cond_stale, WAIT_MS, NULL));
	status(t, &st);
	assert_non_null(strstr(st.last_error, "exit status 3"));
	assert_non_null(strstr(st.last_error, "rpc error: code = Unavailable"));
	assert_int_equal(t->deliveries, 0);
	tctx_free(t);

	t = tctx_new();
	start(t, "exec:kill -TERM $$", POLL_MS, FETCH_MS, 0);
	assert_true(run_until(t, cond_stale, WAIT_MS, NULL));
	status(t, &st);
	assert_non_null(strstr(st.last_error, "killed by signal 15"));
	tctx_free(t);

	t = tctx_new();
	start(t, "exec:/nonexistent/vtctldclient GetSrvVSchema zone1", POLL_MS, FETCH_MS, 0);
	assert_true(run_until(t, cond_stale, WAIT_MS, NULL));
	status(t, &st);
	assert_non_null(strstr(st.last_error, "exit status 127"));
	assert_non_null(strstr(st.last_error, "not found"));
	tctx_free(t);
}

static void
test_exec_hang_killed_and_reaped(void **state)
{
	struct tctx *t = tctx_new();
	struct mirror_status st;
	char pidf[512], gpidf[512], spec[1300];
	int64_t gap = 0;
	int64_t t0 = mono_us(), took;

	(void)state;
	path_in_tmp(pidf, sizeof(pidf), "hang.pid");
	path_in_tmp(gpidf, sizeof(gpidf), "hang.gpid");
	unlink(pidf);
	unlink(gpidf);
	/* the shell and a grandchild both hang, holding stdout open */
	snprintf(spec, sizeof(spec), "exec:echo $$ > '%s'; sleep 60 & echo $! > '%s'; wait", pidf,
	         gpidf);
	start(t, spec, POLL_MS, 600, 0);
	assert_true(run_until(t, cond_stale, WAIT_MS, &gap));
	took = mono_us() - t0;
	status(t, &st);
	assert_non_null(strstr(st.last_error, "timed out after 600 ms"));
	assert_true(took >= 550 * 1000 && took <= 3000 * 1000);
	/* the loop kept running during the hang: never stuck for anything like the
	 * 600 ms the fetch took (a blocking fetch would show a gap of >= 600 ms) */
	assert_true(gap < 400 * 1000);
	pid_t pid = read_pid(pidf), gpid = read_pid(gpidf);

	assert_true(pid > 0 && gpid > 0);
	assert_true(pid_gone(pid));  /* reaped by the mirror, not a zombie */
	assert_true(pid_dead(gpid)); /* the process group was killed */
	tctx_free(t);
}

static void
test_exec_output_too_big(void **state)
{
	struct tctx *t = tctx_new();
	struct mirror_status st;
	char pidf[512], spec[700];

	(void)state;
	path_in_tmp(pidf, sizeof(pidf), "big.pid");
	unlink(pidf);
	/* endless output: stopped at the limit, not read into memory */
	snprintf(spec, sizeof(spec), "exec:echo $$ > '%s'; exec yes '{\"routing_rules\": {}}'",
	         pidf);
	start(t, spec, POLL_MS, FETCH_MS, 100000);
	assert_true(run_until(t, cond_stale, WAIT_MS, NULL));
	status(t, &st);
	assert_non_null(strstr(st.last_error, "larger than the maximum of 100000 bytes"));
	assert_int_equal(t->deliveries, 0);
	pid_t pid = read_pid(pidf);

	assert_true(pid > 0);
	assert_true(pid_gone(pid));
	tctx_free(t);

	/* exactly the maximum is fine */
	t = tctx_new();
	start(t, "exec:printf '%0100d' 7", POLL_MS, FETCH_MS, 100);
	t->want = 1;
	assert_true(run_until(t, cond_deliveries, WAIT_MS, NULL));
	assert_int_equal(t->last_len, 100);
	assert_int_equal(t->last[99], '7');
	tctx_free(t);
}

static void
test_exec_free_while_running(void **state)
{
	struct tctx *t = tctx_new();
	char pidf[512], spec[700];
	pid_t pid = 0;

	(void)state;
	path_in_tmp(pidf, sizeof(pidf), "free.pid");
	unlink(pidf);
	snprintf(spec, sizeof(spec), "exec:echo $$ > '%s'; exec sleep 60", pidf);
	start(t, spec, POLL_MS, 10000, 0);
	for (int i = 0; i < 200 && (pid = read_pid(pidf)) == 0; i++) {
		run_for(t, 10);
	}
	assert_true(pid > 0);
	int64_t t0 = mono_us();

	mirror_free(t->m);
	t->m = NULL;
	assert_true(mono_us() - t0 < 1000 * 1000);
	assert_true(pid_gone(pid));
	tctx_free(t);
}

static void
test_exec_reject_and_force(void **state)
{
	struct tctx *t = tctx_new();
	struct mirror_status st;

	(void)state;
	t->reject = "BROKEN";
	start(t, "exec:printf '{\"BROKEN'", POLL_MS, FETCH_MS, 0);
	t->want = 1;
	assert_true(run_until(t, cond_deliveries, WAIT_MS, NULL));
	t->want = 5;
	assert_true(run_until(t, cond_fetches, WAIT_MS, NULL));
	assert_int_equal(t->deliveries, 1);
	status(t, &st);
	assert_true(st.stale);
	assert_non_null(strstr(st.last_error, "rejected: parse error"));
	mirror_force(t->m);
	t->want = 2;
	assert_true(run_until(t, cond_deliveries, WAIT_MS, NULL));
	tctx_free(t);
}

/* ---- the project's MoveTables fixtures, through each source ------------------------ */

static const char *const states[] = {"00-before",           "01-created",  "02-rdonly-switched",
                                     "03-replica-switched", "04-switched", "05-reversed",
                                     "06-completed",        "07-cancelled"};

/* Reads tests/fixtures/movetables/<state>.<format>.json (tests run from the repo root;
 * RT_FIXTURES overrides the directory).  Caller frees. */
static char *
fixture(const char *state, const char *format)
{
	const char *dir =
	    getenv("RT_FIXTURES") ? getenv("RT_FIXTURES") : "tests/fixtures/movetables";
	char path[512];
	char *buf = malloc(65536);
	size_t n;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s.%s.json", dir, state, format);
	f = fopen(path, "r");
	if (f == NULL) {
		free(buf);
		fail_msg("fixture %s: %s (run from the repository root)", path, strerror(errno));
	}
	assert_non_null(buf);
	n = fread(buf, 1, 65535, f);
	fclose(f);
	buf[n] = '\0';
	return buf;
}

/* Step the source through every state: each change arrives within one poll interval
 * (plus slack), byte for byte, and parses; a state identical to the previous one is
 * not delivered again. */
static void
walk_states(const char *spec, const char *dest, const char *format)
{
	struct tctx *t = tctx_new();
	struct mirror_status st;
	char *prev = NULL;

	t->parse_json = true;
	start(t, spec, 50, FETCH_MS, 0);
	for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++) {
		char *cur = fixture(states[i], format);
		uint64_t by = deadline_fetch(t);

		replace_file(dest, cur);
		if (prev != NULL && strcmp(prev, cur) == 0) {
			status(t, &st);
			t->want = (int)st.fetches + 2;
			assert_true(run_until(t, cond_fetches, WAIT_MS, NULL));
			assert_int_equal(t->deliveries, (int)st.changes);
		} else {
			t->want = t->deliveries + 1;
			if (!run_until(t, cond_deliveries, WAIT_MS, NULL)) {
				fail_msg("%s: state %s not delivered", spec, states[i]);
			}
			assert_true(t->at_fetch <= by);
			assert_string_equal(t->last, cur);
		}
		status(t, &st);
		assert_false(st.stale);
		assert_int_equal(st.rejects, 0);
		free(prev);
		prev = cur;
	}
	free(prev);
	tctx_free(t);
}

static void
test_fixtures_through_every_source(void **state)
{
	char dest[512], spec[700];

	(void)state;
	path_in_tmp(dest, sizeof(dest), "lifecycle.rules.json");
	snprintf(spec, sizeof(spec), "file:%s", dest);
	walk_states(spec, dest, "rules");

	path_in_tmp(dest, sizeof(dest), "debug_vschema");
	http_spec(spec, sizeof(spec), "/debug/vschema");
	walk_states(spec, dest, "debug-vschema");

	path_in_tmp(dest, sizeof(dest), "lifecycle.srvvschema.json");
	snprintf(spec, sizeof(spec), "exec:cat '%s'", dest);
	walk_states(spec, dest, "srvvschema");
}

/* ---- main ------------------------------------------------------------------------------ */

static void
rm_tree(void)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0) {
		fprintf(stderr, "could not remove %s\n", tmpdir);
	}
}

static int
group_setup(void **state)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/rt-mirror-XXXXXX");
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return -1;
	}
	return http_group_setup(state);
}

static int
group_teardown(void **state)
{
	for (size_t i = 0; i < sizeof(live) / sizeof(live[0]); i++) {
		if (live[i] != NULL) {
			tctx_free(live[i]);
		}
	}
	http_group_teardown(state);
	rm_tree();
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_spec_check),
	    cmocka_unit_test(test_file_replace_and_rewrite),
	    cmocka_unit_test(test_file_big_identity),
	    cmocka_unit_test(test_file_missing_then_recovers),
	    cmocka_unit_test(test_file_rejected_not_reparsed),
	    cmocka_unit_test(test_file_too_big_and_not_regular),
	    cmocka_unit_test(test_http_delivers_and_follows_changes),
	    cmocka_unit_test(test_http_errors),
	    cmocka_unit_test(test_http_refused),
	    cmocka_unit_test(test_http_hang_times_out_loop_alive),
	    cmocka_unit_test(test_exec_delivers),
	    cmocka_unit_test(test_exec_child_environment),
	    cmocka_unit_test(test_exec_nonzero_exit),
	    cmocka_unit_test(test_exec_hang_killed_and_reaped),
	    cmocka_unit_test(test_exec_output_too_big),
	    cmocka_unit_test(test_exec_free_while_running),
	    cmocka_unit_test(test_exec_reject_and_force),
	    cmocka_unit_test(test_fixtures_through_every_source),
	};

	signal(SIGPIPE, SIG_IGN); /* as the proxy does; the mirror must reset it for children */
	return cmocka_run_group_tests_name("mirror", tests, group_setup, group_teardown);
}
