/* proxy/mirror.c: the rules mirror.  One source, fetched whole on every poll through
 * the event loop (files in bounded chunks, HTTP with evhttp's client, commands through
 * nonblocking pipes), hashed, and offered to the caller's parser only when it changed.
 * One fetch at a time: the next poll is scheduled when the previous fetch completed. */
#include "proxy/mirror.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/util.h>

#define FILE_CHUNK (1u << 20)                   /* bytes read from a file per loop turn */
#define FILE_REHASH_MAX (1u << 20)              /* files up to this size are re-read every poll */
#define STDERR_KEEP 1024                        /* bytes of a command's stderr kept for the error */
#define EXEC_READ_TURN (1u << 20)               /* bytes read from a command per loop turn */
#define EXEC_READ_CHUNK ((size_t)64 << 10)      /* bytes per read() from a command */
#define HTTP_MAX_HEADERS ((ev_ssize_t)64 << 10) /* response header bytes */
#define REAP_FIRST_MS 2                         /* first waitpid retry after the pipes closed */
#define REAP_MAX_MS 100                         /* waitpid retry interval cap */

struct mbuf {
	char *p;    /* content, NUL-terminated when len > 0 or p != NULL */
	size_t len; /* bytes used */
	size_t cap; /* bytes allocated (one more than the max content for the NUL) */
};

struct file_id {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
	struct timespec ctime;
};

struct mirror {
	struct event_base *base;   /* borrowed */
	char *spec;                /* source spec as given */
	enum mirror_kind kind;     /* which source */
	struct mirror_opts opts;   /* effective options */
	mirror_bytes_fn on_bytes;  /* caller's parser */
	void *ctx;                 /* its context */
	mirror_state_fn on_state;  /* staleness transitions, optional */
	void *state_ctx;           /* its context */
	char *target;              /* file path, command, or HTTP host */
	char *http_path;           /* HTTP request path with query */
	int http_port;             /* HTTP port */
	bool http_numeric;         /* host is an IP literal: no resolver needed */
	struct event *poll_ev;     /* timer: start the next fetch */
	struct event *deadline_ev; /* timer: the running fetch's deadline */
	struct event *step_ev;     /* timer: next file chunk / next waitpid try */
	bool busy;                 /* a fetch is running */
	bool force_pending;        /* mirror_force() during a fetch: refetch at once */
	bool unchanged;            /* the fetch saw the accepted content unchanged, unread */
	struct mbuf body;          /* the content being fetched */
	/* file source */
	int file_fd;             /* open file being read, or -1 */
	struct file_id file_cur; /* identity of the file being read */
	struct file_id file_ok;  /* identity of the last file fetched successfully */
	bool file_ok_valid;      /* file_ok is meaningful */
	/* http source */
	struct evdns_base *dns;               /* resolver for non-literal hosts, created lazily */
	struct evhttp_connection *evcon;      /* connection of the running fetch */
	struct evhttp_connection *evcon_dead; /* finished connection, freed outside its cbs */
	enum evhttp_request_error http_err;   /* reason given by evhttp's error callback */
	bool http_err_set;                    /* http_err is meaningful */
	int http_errno;                       /* errno when the request callback ran */
	/* exec source */
	pid_t pid;                     /* running child (its own process group), or 0 */
	int out_fd, err_fd;            /* read ends of its stdout / stderr pipes, or -1 */
	struct event *out_ev, *err_ev; /* read events on them */
	char errtxt[STDERR_KEEP];      /* first bytes of its stderr */
	size_t errtxt_len;             /* bytes used in errtxt */
	uint32_t reap_delay_ms;        /* current waitpid retry interval */
	bool exec_failed;              /* a reason was set in exec_reason (timeout, size) */
	char exec_reason[160];         /* why the child was killed */
	/* outcome */
	bool has_accepted;           /* acc_* valid */
	uint64_t acc_hash;           /* hash of the accepted content */
	size_t acc_len;              /* its length */
	bool has_rejected;           /* rej_* valid */
	uint64_t rej_hash;           /* hash of the last rejected content */
	size_t rej_len;              /* its length */
	char rej_err[MIRROR_ERRLEN]; /* the parser's error for it */
	struct mirror_status st;     /* counters and times */
};

static void fetch_start(struct mirror *m);
static void fetch_finish(struct mirror *m, bool ok, const char *err);

/* ---- small helpers -------------------------------------------------------------- */

static int64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static struct timeval
ms_tv(uint32_t ms)
{
	struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (suseconds_t)(ms % 1000) * 1000};

	return tv;
}

/* 64-bit FNV-1a: cheap, and with the length compared too, good enough to notice change. */
static uint64_t
fnv1a64(const char *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* Make room for `more` bytes (plus a NUL) without exceeding limit content bytes. */
static bool
mbuf_reserve(struct mbuf *b, size_t more, size_t limit)
{
	size_t need, cap;
	char *p;

	if (more > limit || b->len > limit - more) {
		return false;
	}
	need = b->len + more + 1;
	if (need <= b->cap) {
		return true;
	}
	cap = b->cap ? b->cap : 4096;
	while (cap < need) {
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	}
	if (cap > limit + 1) {
		cap = limit + 1;
	}
	p = realloc(b->p, cap);
	if (p == NULL) {
		return false;
	}
	b->p = p;
	b->cap = cap;
	return true;
}

static void
mbuf_reset(struct mbuf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

/* read() at most want bytes from fd into b without letting it pass limit.  At the
 * limit, a 1-byte probe tells EOF (returns 0) from "too big" (returns -1, errno EFBIG),
 * so content of exactly limit bytes is accepted.  Otherwise read()'s result. */
static ssize_t
read_bounded(int fd, struct mbuf *b, size_t want, size_t limit)
{
	size_t room = limit - b->len;
	ssize_t n;
	char probe;

	if (room == 0) {
		n = read(fd, &probe, 1);
		if (n > 0) {
			errno = EFBIG;
			return -1;
		}
		return n;
	}
	if (want > room) {
		want = room;
	}
	if (!mbuf_reserve(b, want, limit)) {
		errno = ENOMEM;
		return -1;
	}
	n = read(fd, b->p + b->len, want);
	if (n > 0) {
		b->len += (size_t)n;
		b->p[b->len] = '\0';
	}
	return n;
}

/* Copy at most n bytes of s into dst as printable text (controls become '.'). */
static void
excerpt(char *dst, size_t dstlen, const char *s, size_t n)
{
	size_t i, j = 0;

	if (dstlen == 0) {
		return;
	}
	for (i = 0; i < n && j + 1 < dstlen; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c == 0x7f) {
			dst[j++] = c == '\n' ? ' ' : '.';
		} else {
			dst[j++] = (char)c;
		}
	}
	while (j > 0 && dst[j - 1] == ' ') {
		j--;
	}
	dst[j] = '\0';
}

/* snprintf for messages built from other bounded messages: truncation is intended,
 * and going through vsnprintf keeps -Wformat-truncation from flagging it. */
static void __attribute__((format(printf, 3, 4))) errf(char *dst, size_t n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(dst, n, fmt, ap);
	va_end(ap);
}

void
mirror_opts_default(struct mirror_opts *o)
{
	o->poll_ms = 1000;
	o->timeout_ms = 5000;
	o->max_bytes = (size_t)64 << 20;
}

/* ---- spec parsing ----------------------------------------------------------------- */

static bool
parse_http(struct mirror *m, const char *spec, char *err, size_t errlen)
{
	struct evhttp_uri *u = evhttp_uri_parse_with_flags(spec, 0);
	const char *host, *path, *query;
	unsigned char addr[16];
	size_t plen;
	bool ok = false;

	if (u == NULL) {
		snprintf(err, errlen, "rules source '%s': not a valid http URL", spec);
		return false;
	}
	host = evhttp_uri_get_host(u);
	if (host == NULL || host[0] == '\0') {
		snprintf(err, errlen, "rules source '%s': no host in the URL", spec);
		goto out;
	}
	if (evhttp_uri_get_userinfo(u) != NULL) {
		snprintf(err, errlen, "rules source '%s': user info in URLs is not supported",
		         spec);
		goto out;
	}
	path = evhttp_uri_get_path(u);
	query = evhttp_uri_get_query(u);
	path = (path == NULL || path[0] == '\0') ? "/" : path;
	plen = strlen(path) + (query ? strlen(query) + 1 : 0) + 1;
	if (m != NULL) {
		size_t hl = strlen(host);

		/* libevent keeps the brackets of an IPv6 literal; connect wants it bare */
		if (hl > 2 && host[0] == '[' && host[hl - 1] == ']') {
			m->target = strndup(host + 1, hl - 2);
		} else {
			m->target = strdup(host);
		}
		m->http_path = malloc(plen);
		if (m->target == NULL || m->http_path == NULL) {
			snprintf(err, errlen, "out of memory");
			goto out;
		}
		snprintf(m->http_path, plen, "%s%s%s", path, query ? "?" : "", query ? query : "");
		m->http_port = evhttp_uri_get_port(u) < 0 ? 80 : evhttp_uri_get_port(u);
		m->http_numeric = evutil_inet_pton(AF_INET, m->target, addr) == 1 ||
		                  evutil_inet_pton(AF_INET6, m->target, addr) == 1;
	}
	ok = true;
out:
	evhttp_uri_free(u);
	return ok;
}

/* Validates spec; when m is non-NULL also fills its target fields. */
static bool
parse_spec(struct mirror *m, const char *spec, enum mirror_kind *kind, char *err, size_t errlen)
{
	const char *rest;

	if (strncmp(spec, "file:", 5) == 0) {
		rest = spec + 5;
		if (rest[0] == '\0') {
			snprintf(err, errlen, "rules source '%s': empty file path", spec);
			return false;
		}
		*kind = MIRROR_FILE;
	} else if (strncmp(spec, "exec:", 5) == 0) {
		rest = spec + 5;
		if (rest[strspn(rest, " \t")] == '\0') {
			snprintf(err, errlen, "rules source '%s': empty command", spec);
			return false;
		}
		*kind = MIRROR_EXEC;
	} else if (strncasecmp(spec, "http://", 7) == 0) {
		*kind = MIRROR_HTTP;
		return parse_http(m, spec, err, errlen);
	} else if (strncasecmp(spec, "https://", 8) == 0) {
		snprintf(err, errlen,
		         "rules source '%s': https is not supported (use exec: with a client)",
		         spec);
		return false;
	} else {
		snprintf(
		    err, errlen,
		    "rules source '%s': expected file:PATH, http://HOST:PORT/PATH or exec:COMMAND",
		    spec);
		return false;
	}
	if (m != NULL && (m->target = strdup(rest)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return false;
	}
	return true;
}

bool
mirror_spec_check(const char *spec, enum mirror_kind *kind, char *err, size_t errlen)
{
	enum mirror_kind k;

	if (spec == NULL) {
		snprintf(err, errlen, "no rules source given");
		return false;
	}
	if (!parse_spec(NULL, spec, &k, err, errlen)) {
		return false;
	}
	if (kind != NULL) {
		*kind = k;
	}
	return true;
}

/* ---- file: source ------------------------------------------------------------------ */

static void
file_id_of(const struct stat *sb, struct file_id *id)
{
	id->dev = sb->st_dev;
	id->ino = sb->st_ino;
	id->size = sb->st_size;
	id->mtime = sb->st_mtim;
	id->ctime = sb->st_ctim;
}

static bool
file_id_eq(const struct file_id *a, const struct file_id *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec &&
	       a->ctime.tv_sec == b->ctime.tv_sec && a->ctime.tv_nsec == b->ctime.tv_nsec;
}

static void
file_close(struct mirror *m)
{
	if (m->file_fd >= 0) {
		close(m->file_fd);
		m->file_fd = -1;
	}
}

/* One chunk per loop turn: a local read of at most FILE_CHUNK bytes is the only
 * potentially blocking I/O the mirror does (page cache or disk, never the network). */
static void
file_step(struct mirror *m)
{
	char err[MIRROR_ERRLEN];
	struct stat sb;
	ssize_t n;

	n = read_bounded(m->file_fd, &m->body, FILE_CHUNK, m->opts.max_bytes);
	if (n < 0 && errno == EINTR) {
		goto again;
	}
	if (n < 0 && errno == EFBIG) {
		snprintf(err, sizeof(err), "%s: larger than the maximum of %zu bytes", m->target,
		         m->opts.max_bytes);
		goto fail;
	}
	if (n < 0) {
		snprintf(err, sizeof(err), "read %s: %s", m->target, strerror(errno));
		goto fail;
	}
	if (n > 0) {
		goto again;
	}
	/* Remember the identity only if the file did not change while we read it, so a
	 * torn read is never mistaken for the settled content of that identity. */
	if (fstat(m->file_fd, &sb) == 0) {
		struct file_id after;

		file_id_of(&sb, &after);
		m->file_ok_valid = file_id_eq(&after, &m->file_cur);
	}
	file_close(m);
	fetch_finish(m, true, NULL);
	return;
again:
	event_active(m->step_ev, EV_TIMEOUT, 0);
	return;
fail:
	file_close(m);
	fetch_finish(m, false, err);
}

static void
file_start(struct mirror *m)
{
	char err[MIRROR_ERRLEN];
	struct stat sb;

	/* O_NONBLOCK: opening a FIFO placed at the path must not hang the loop. */
	m->file_fd = open(m->target, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (m->file_fd < 0) {
		snprintf(err, sizeof(err), "open %s: %s", m->target, strerror(errno));
		goto fail;
	}
	if (fstat(m->file_fd, &sb) != 0) {
		snprintf(err, sizeof(err), "stat %s: %s", m->target, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(sb.st_mode)) {
		snprintf(err, sizeof(err), "%s: not a regular file", m->target);
		goto fail;
	}
	if ((uint64_t)sb.st_size > m->opts.max_bytes) {
		snprintf(err, sizeof(err), "%s: %lld bytes, larger than the maximum of %zu bytes",
		         m->target, (long long)sb.st_size, m->opts.max_bytes);
		goto fail;
	}
	file_id_of(&sb, &m->file_cur);
	/* Small files are re-read and hashed every poll, so even a rewrite that keeps
	 * size and timestamps is seen; big ones are trusted unchanged if their identity
	 * (inode, size, mtime, ctime in ns) is that of the last good fetch. */
	if (sb.st_size > (off_t)FILE_REHASH_MAX && m->file_ok_valid &&
	    file_id_eq(&m->file_cur, &m->file_ok) && !m->st.stale && m->has_accepted) {
		file_close(m);
		m->unchanged = true;
		fetch_finish(m, true, NULL);
		return;
	}
	m->file_ok_valid = false;
	m->file_ok = m->file_cur;
	file_step(m);
	return;
fail:
	file_close(m);
	m->file_ok_valid = false;
	fetch_finish(m, false, err);
}

/* ---- http:// source -------------------------------------------------------------- */

static const char *
http_err_text(enum evhttp_request_error e)
{
	switch (e) {
	case EVREQ_HTTP_TIMEOUT:
		return "timed out";
	case EVREQ_HTTP_EOF:
		return "no complete response (connection refused or closed early, or host not "
		       "resolved)";
	case EVREQ_HTTP_INVALID_HEADER:
		return "invalid response header";
	case EVREQ_HTTP_BUFFER_ERROR:
		return "connection failed (refused, reset or unreachable)";
	case EVREQ_HTTP_REQUEST_CANCEL:
		return "request cancelled";
	case EVREQ_HTTP_DATA_TOO_LONG:
		return "response larger than the maximum size";
	}
	return "request failed";
}

/* Connections are freed outside evhttp's callbacks (freeing one from inside its own
 * request callback is not safe in libevent 2.1's failure path). */
static void
http_reap(struct mirror *m)
{
	if (m->evcon_dead != NULL) {
		evhttp_connection_free(m->evcon_dead);
		m->evcon_dead = NULL;
	}
}

static void
http_error_cb(enum evhttp_request_error e, void *arg)
{
	struct mirror *m = arg;

	m->http_err = e;
	m->http_err_set = true;
}

/* libevent hands failures over with errno set to the socket error only on some
 * paths; show it only when it is one a connect can really produce. */
static bool
sock_errno_meaningful(int e)
{
	return e == ECONNREFUSED || e == ECONNRESET || e == ETIMEDOUT || e == EHOSTUNREACH ||
	       e == ENETUNREACH || e == EADDRNOTAVAIL;
}

static void
http_fail_text(struct mirror *m, struct evhttp_request *req, char *err, size_t errlen)
{
	int code = req ? evhttp_request_get_response_code(req) : 0;

	if (m->http_err_set && m->http_err == EVREQ_HTTP_TIMEOUT) {
		snprintf(err, errlen, "GET %s: timed out after %u ms", m->spec, m->opts.timeout_ms);
	} else if (m->http_err_set && m->http_err == EVREQ_HTTP_DATA_TOO_LONG) {
		snprintf(err, errlen, "GET %s: response larger than the maximum of %zu bytes",
		         m->spec, m->opts.max_bytes);
	} else if (m->http_err_set) {
		snprintf(err, errlen, "GET %s: %s", m->spec, http_err_text(m->http_err));
	} else if (code == 0 && sock_errno_meaningful(m->http_errno)) {
		snprintf(err, errlen, "GET %s: connection failed: %s", m->spec,
		         strerror(m->http_errno));
	} else if (code == 0) {
		snprintf(err, errlen, "GET %s: connection failed (refused, reset or no response)",
		         m->spec);
	} else {
		char body[120] = "";
		struct evbuffer *in = evhttp_request_get_input_buffer(req);
		char raw[119];
		ev_ssize_t n = evbuffer_copyout(in, raw, sizeof(raw));

		excerpt(body, sizeof(body), raw, n > 0 ? (size_t)n : 0);
		snprintf(err, errlen, "GET %s: HTTP status %d%s%s", m->spec, code,
		         body[0] ? ": " : "", body);
	}
}

static void
http_done_cb(struct evhttp_request *req, void *arg)
{
	struct mirror *m = arg;
	char err[MIRROR_ERRLEN];
	struct evbuffer *in;
	size_t n;

	if (!m->http_err_set) {
		m->http_errno = errno; /* the connect error, on libevent's connect-failure path */
	}
	m->evcon_dead = m->evcon;
	m->evcon = NULL;
	if (req == NULL || evhttp_request_get_response_code(req) != 200 || m->http_err_set) {
		http_fail_text(m, req, err, sizeof(err));
		fetch_finish(m, false, err);
		return;
	}
	in = evhttp_request_get_input_buffer(req);
	n = evbuffer_get_length(in);
	if (!mbuf_reserve(&m->body, n, m->opts.max_bytes)) {
		snprintf(err, sizeof(err), "GET %s: response of %zu bytes, maximum %zu", m->spec, n,
		         m->opts.max_bytes);
		fetch_finish(m, false, err);
		return;
	}
	evbuffer_remove(in, m->body.p, n);
	m->body.len = n;
	m->body.p[n] = '\0';
	fetch_finish(m, true, NULL);
}

static bool
http_headers(struct mirror *m, struct evhttp_request *req)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	char host[300];
	bool v6 = strchr(m->target, ':') != NULL;

	if (m->http_port == 80) {
		snprintf(host, sizeof(host), v6 ? "[%s]" : "%s", m->target);
	} else {
		snprintf(host, sizeof(host), v6 ? "[%s]:%d" : "%s:%d", m->target, m->http_port);
	}
	return evhttp_add_header(h, "Host", host) == 0 &&
	       evhttp_add_header(h, "Connection", "close") == 0 &&
	       evhttp_add_header(h, "Accept", "application/json") == 0 &&
	       evhttp_add_header(h, "User-Agent", "routetrace-mirror") == 0;
}

static void
http_start(struct mirror *m)
{
	struct timeval tv = ms_tv(m->opts.timeout_ms);
	struct evhttp_request *req;
	char err[MIRROR_ERRLEN];

	http_reap(m);
	m->http_err_set = false;
	if (!m->http_numeric && m->dns == NULL) {
		/* Reads resolv.conf and /etc/hosts once; lookups then go through the loop. */
		m->dns = evdns_base_new(m->base, EVDNS_BASE_INITIALIZE_NAMESERVERS);
	}
	m->evcon = evhttp_connection_base_new(m->base, m->dns, m->target, (uint16_t)m->http_port);
	if (m->evcon == NULL) {
		snprintf(err, sizeof(err), "GET %s: cannot create a connection", m->spec);
		goto fail;
	}
	evhttp_connection_set_timeout_tv(m->evcon, &tv);
	evhttp_connection_set_retries(m->evcon, 0);
	evhttp_connection_set_max_body_size(m->evcon, (ev_ssize_t)m->opts.max_bytes);
	evhttp_connection_set_max_headers_size(m->evcon, HTTP_MAX_HEADERS);
	req = evhttp_request_new(http_done_cb, m);
	if (req == NULL) {
		snprintf(err, sizeof(err), "GET %s: out of memory", m->spec);
		goto fail;
	}
	evhttp_request_set_error_cb(req, http_error_cb);
	if (!http_headers(m, req)) {
		evhttp_request_free(req);
		snprintf(err, sizeof(err), "GET %s: out of memory", m->spec);
		goto fail;
	}
	if (evhttp_make_request(m->evcon, req, EVHTTP_REQ_GET, m->http_path) != 0) {
		/* libevent 2.1 returns -1 when it cannot create the socket (e.g. EMFILE),
		 * having unqueued but not freed req.  (Its other -1 path, strdup of the
		 * path failing, frees req: out of memory there is not survivable anyway.) */
		evhttp_request_free(req);
		snprintf(err, sizeof(err), "GET %s: cannot start the request", m->spec);
		goto fail;
	}
	return;
fail:
	if (m->evcon != NULL) {
		evhttp_connection_free(m->evcon);
		m->evcon = NULL;
	}
	fetch_finish(m, false, err);
}

/* ---- exec: source ------------------------------------------------------------------ */

static void
exec_close_pipes(struct mirror *m)
{
	if (m->out_ev != NULL) {
		event_free(m->out_ev);
		m->out_ev = NULL;
	}
	if (m->err_ev != NULL) {
		event_free(m->err_ev);
		m->err_ev = NULL;
	}
	if (m->out_fd >= 0) {
		close(m->out_fd);
		m->out_fd = -1;
	}
	if (m->err_fd >= 0) {
		close(m->err_fd);
		m->err_fd = -1;
	}
}

/* Kill the child's whole process group (it called setpgid(0, 0)), so the grandchildren
 * of `sh -c` die too, and stop reading: reaping continues in exec_try_reap. */
static void
exec_kill(struct mirror *m, const char *reason)
{
	if (!m->exec_failed) {
		m->exec_failed = true;
		snprintf(m->exec_reason, sizeof(m->exec_reason), "%s", reason);
	}
	if (m->pid > 0) {
		kill(-m->pid, SIGKILL);
		kill(m->pid, SIGKILL);
	}
	exec_close_pipes(m);
	m->reap_delay_ms = REAP_FIRST_MS;
	event_active(m->step_ev, EV_TIMEOUT, 0);
}

static void
exec_status_text(struct mirror *m, int status, char *err, size_t errlen)
{
	char what[200], serr[STDERR_KEEP + 1];

	excerpt(serr, sizeof(serr), m->errtxt, m->errtxt_len);
	if (m->exec_failed) {
		snprintf(what, sizeof(what), "%s", m->exec_reason);
	} else if (WIFEXITED(status)) {
		snprintf(what, sizeof(what), "exit status %d", WEXITSTATUS(status));
	} else if (WIFSIGNALED(status)) {
		snprintf(what, sizeof(what), "killed by signal %d", WTERMSIG(status));
	} else {
		snprintf(what, sizeof(what), "wait status 0x%x", (unsigned)status);
	}
	errf(err, errlen, "%s: %s%s%s", m->spec, what, serr[0] ? "; stderr: " : "", serr);
}

/* No SIGCHLD handler: we poll waitpid() on our own pid only, so children that other
 * parts of the process start are never reaped (or missed) here. */
static void
exec_try_reap(struct mirror *m)
{
	char err[MIRROR_ERRLEN];
	int status = 0;
	pid_t r;

	do {
		r = waitpid(m->pid, &status, WNOHANG);
	} while (r < 0 && errno == EINTR);
	if (r == 0) {
		struct timeval tv = ms_tv(m->reap_delay_ms);

		m->reap_delay_ms =
		    m->reap_delay_ms * 2 > REAP_MAX_MS ? REAP_MAX_MS : m->reap_delay_ms * 2;
		evtimer_add(m->step_ev, &tv);
		return;
	}
	m->pid = 0;
	if (r < 0) {
		snprintf(err, sizeof(err), "%s: exit status lost (waitpid: %s)", m->spec,
		         strerror(errno));
		fetch_finish(m, false, err);
		return;
	}
	if (!m->exec_failed && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		fetch_finish(m, true, NULL);
		return;
	}
	exec_status_text(m, status, err, sizeof(err));
	fetch_finish(m, false, err);
}

static void
exec_maybe_done(struct mirror *m)
{
	if (m->out_fd < 0 && m->err_fd < 0) {
		m->reap_delay_ms = REAP_FIRST_MS;
		exec_try_reap(m);
	}
}

static void
exec_stdout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct mirror *m = arg;
	size_t turn = 0;
	ssize_t n;

	(void)what;
	while (turn < EXEC_READ_TURN) {
		n = read_bounded(fd, &m->body, EXEC_READ_CHUNK, m->opts.max_bytes);
		if (n < 0 && (errno == EFBIG || errno == ENOMEM)) {
			char why[160];

			snprintf(why, sizeof(why), "output larger than the maximum of %zu bytes%s",
			         m->opts.max_bytes, errno == ENOMEM ? " (out of memory)" : "");
			exec_kill(m, why);
			return;
		}
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			return;
		}
		if (n <= 0) { /* EOF, or an error we treat as EOF */
			event_free(m->out_ev);
			m->out_ev = NULL;
			close(m->out_fd);
			m->out_fd = -1;
			exec_maybe_done(m);
			return;
		}
		turn += (size_t)n;
	}
}

static void
exec_stderr_cb(evutil_socket_t fd, short what, void *arg)
{
	struct mirror *m = arg;
	char buf[4096];
	ssize_t n;

	(void)what;
	for (;;) {
		n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			return;
		}
		if (n <= 0) {
			event_free(m->err_ev);
			m->err_ev = NULL;
			close(m->err_fd);
			m->err_fd = -1;
			exec_maybe_done(m);
			return;
		}
		/* keep the head (usually the actual message), drain the rest */
		if (m->errtxt_len < sizeof(m->errtxt)) {
			size_t k = sizeof(m->errtxt) - m->errtxt_len;

			k = (size_t)n < k ? (size_t)n : k;
			memcpy(m->errtxt + m->errtxt_len, buf, k);
			m->errtxt_len += k;
		}
	}
}

/* In the child, between fork and exec: only async-signal-safe calls (the proxy may
 * have other threads), hence execve with an argv built before the fork. */
static void
exec_child(char *const argv[], int in_fd, int out_fd, int err_fd)
{
	struct sigaction sa;
	sigset_t none;
	int sig;

	setpgid(0, 0);
	if (dup2(in_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(err_fd, 2) < 0) {
		_exit(126);
	}
	close_range(3, ~0u, 0); /* listeners and client sockets must not leak into it */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	for (sig = 1; sig < NSIG; sig++) {
		sigaction(sig, &sa, NULL); /* the proxy ignores SIGPIPE; the command must not */
	}
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	execve("/bin/sh", argv, environ);
	_exit(127);
}

static bool
exec_spawn(struct mirror *m, char *err, size_t errlen)
{
	int outp[2] = {-1, -1}, errp[2] = {-1, -1}, devnull = -1;
	char sh[] = "sh", dash_c[] = "-c";
	char *argv[] = {sh, dash_c, m->target, NULL};
	bool ok = false;

	if (pipe2(outp, O_CLOEXEC) != 0 || pipe2(errp, O_CLOEXEC) != 0 ||
	    (devnull = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
		snprintf(err, errlen, "%s: cannot create pipes: %s", m->spec, strerror(errno));
		goto out;
	}
	m->pid = fork();
	if (m->pid < 0) {
		m->pid = 0;
		snprintf(err, errlen, "%s: fork: %s", m->spec, strerror(errno));
		goto out;
	}
	if (m->pid == 0) {
		exec_child(argv, devnull, outp[1], errp[1]);
	}
	setpgid(m->pid, m->pid); /* also here: no window where a kill misses the group */
	m->out_fd = outp[0];
	m->err_fd = errp[0];
	outp[0] = errp[0] = -1;
	/* only our read ends are nonblocking: the child's ends stay ordinary */
	fcntl(m->out_fd, F_SETFL, fcntl(m->out_fd, F_GETFL) | O_NONBLOCK);
	fcntl(m->err_fd, F_SETFL, fcntl(m->err_fd, F_GETFL) | O_NONBLOCK);
	ok = true;
out:
	for (int i = 0; i < 2; i++) {
		if (outp[i] >= 0) {
			close(outp[i]);
		}
		if (errp[i] >= 0) {
			close(errp[i]);
		}
	}
	if (devnull >= 0) {
		close(devnull);
	}
	return ok;
}

static void
exec_start(struct mirror *m)
{
	char err[MIRROR_ERRLEN];

	m->errtxt_len = 0;
	m->exec_failed = false;
	m->exec_reason[0] = '\0';
	if (!exec_spawn(m, err, sizeof(err))) {
		fetch_finish(m, false, err);
		return;
	}
	m->out_ev = event_new(m->base, m->out_fd, EV_READ | EV_PERSIST, exec_stdout_cb, m);
	m->err_ev = event_new(m->base, m->err_fd, EV_READ | EV_PERSIST, exec_stderr_cb, m);
	if (m->out_ev == NULL || m->err_ev == NULL || event_add(m->out_ev, NULL) != 0 ||
	    event_add(m->err_ev, NULL) != 0) {
		exec_kill(m, "cannot watch the command's output (out of memory)");
	}
}

/* ---- fetch lifecycle ----------------------------------------------------------------- */

static void
record_success(struct mirror *m, int64_t now)
{
	m->st.last_success_us = now;
	m->st.consecutive_failures = 0;
	m->st.stale = false;
	m->st.stale_since_us = 0;
}

static void
record_failure(struct mirror *m, int64_t now, const char *err)
{
	m->st.failures++;
	m->st.consecutive_failures++;
	if (!m->st.stale) {
		m->st.stale = true;
		m->st.stale_since_us = now;
	}
	snprintf(m->st.last_error, sizeof(m->st.last_error), "%s", err ? err : "unknown error");
}

/* Compare the fetched bytes with what the caller has (accepted) and with what it
 * refused last time; only new bytes are offered to the parser. */
static void
deliver(struct mirror *m, int64_t now)
{
	const char *data = m->body.p ? m->body.p : "";
	uint64_t h = fnv1a64(data, m->body.len);
	char cerr[MIRROR_ERRLEN - 64];

	if (m->unchanged || (m->has_accepted && h == m->acc_hash && m->body.len == m->acc_len)) {
		record_success(m, now);
		return;
	}
	if (m->has_rejected && h == m->rej_hash && m->body.len == m->rej_len) {
		record_failure(m, now, m->rej_err);
		return;
	}
	cerr[0] = '\0';
	if (m->on_bytes(m->ctx, data, m->body.len, m->spec, cerr, sizeof(cerr))) {
		m->has_accepted = true;
		m->acc_hash = h;
		m->acc_len = m->body.len;
		m->has_rejected = false;
		m->st.changes++;
		m->st.last_change_us = now;
		m->st.has_content = true;
		m->st.content_hash = h;
		m->st.content_len = m->body.len;
		record_success(m, now);
		return;
	}
	cerr[sizeof(cerr) - 1] = '\0';
	/* the spec is not repeated here: the rules file path is in the caller's message */
	snprintf(m->rej_err, sizeof(m->rej_err), "rejected: %s", cerr[0] ? cerr : "(no reason)");
	m->has_rejected = true;
	m->rej_hash = h;
	m->rej_len = m->body.len;
	m->st.rejects++;
	record_failure(m, now, m->rej_err);
}

/* Exactly once per fetch, from whichever source path completes it. */
static void
fetch_finish(struct mirror *m, bool ok, const char *err)
{
	int64_t now = now_us();
	bool was_stale = m->st.stale;
	struct timeval tv;

	evtimer_del(m->deadline_ev);
	event_del(m->step_ev);
	m->st.fetches++;
	m->st.last_attempt_us = now;
	if (ok) {
		deliver(m, now);
	} else {
		record_failure(m, now, err);
	}
	mbuf_reset(&m->body);
	m->unchanged = false;
	m->busy = false;
	tv = ms_tv(m->force_pending ? 0 : m->opts.poll_ms);
	m->force_pending = false;
	evtimer_add(m->poll_ev, &tv);
	if (m->on_state != NULL && m->st.stale != was_stale) {
		struct mirror_status st;

		mirror_status(m, &st);
		m->on_state(m->state_ctx, &st);
	}
}

static void
fetch_start(struct mirror *m)
{
	struct timeval tv = ms_tv(m->opts.timeout_ms);

	m->busy = true;
	mbuf_reset(&m->body);
	evtimer_add(m->deadline_ev, &tv);
	switch (m->kind) {
	case MIRROR_FILE:
		file_start(m);
		break;
	case MIRROR_HTTP:
		http_start(m);
		break;
	case MIRROR_EXEC:
		exec_start(m);
		break;
	}
}

static void
poll_cb(evutil_socket_t fd, short what, void *arg)
{
	struct mirror *m = arg;

	(void)fd;
	(void)what;
	if (!m->busy) {
		fetch_start(m);
	}
}

static void
step_cb(evutil_socket_t fd, short what, void *arg)
{
	struct mirror *m = arg;

	(void)fd;
	(void)what;
	if (!m->busy) {
		return;
	}
	if (m->kind == MIRROR_FILE && m->file_fd >= 0) {
		file_step(m);
	} else if (m->kind == MIRROR_EXEC && m->pid > 0 && m->out_fd < 0 && m->err_fd < 0) {
		exec_try_reap(m);
	}
}

static void
deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct mirror *m = arg;
	char err[MIRROR_ERRLEN];

	(void)fd;
	(void)what;
	if (!m->busy) {
		return;
	}
	snprintf(err, sizeof(err), "%s: timed out after %u ms", m->spec, m->opts.timeout_ms);
	switch (m->kind) {
	case MIRROR_FILE:
		file_close(m);
		fetch_finish(m, false, err);
		break;
	case MIRROR_HTTP:
		if (m->evcon != NULL) { /* frees the pending request without calling back */
			evhttp_connection_free(m->evcon);
			m->evcon = NULL;
		}
		fetch_finish(m, false, err);
		break;
	case MIRROR_EXEC: {
		char why[160];

		snprintf(why, sizeof(why), "timed out after %u ms, killed", m->opts.timeout_ms);
		evtimer_del(m->step_ev);
		exec_kill(m, why);
		break;
	}
	}
}

/* ---- public API ---------------------------------------------------------------------- */

struct mirror *
mirror_new(struct event_base *base, const char *spec, const struct mirror_opts *opts,
           mirror_bytes_fn on_bytes, void *ctx, char *err, size_t errlen)
{
	struct mirror *m;
	struct timeval now = {0, 0};

	if (spec == NULL || on_bytes == NULL || base == NULL) {
		snprintf(err, errlen, "mirror_new: missing %s",
		         spec == NULL ? "source" : "argument");
		return NULL;
	}
	m = calloc(1, sizeof(*m));
	if (m == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	m->base = base;
	m->file_fd = m->out_fd = m->err_fd = -1;
	m->on_bytes = on_bytes;
	m->ctx = ctx;
	mirror_opts_default(&m->opts);
	if (opts != NULL) {
		m->opts.poll_ms = opts->poll_ms ? opts->poll_ms : m->opts.poll_ms;
		m->opts.timeout_ms = opts->timeout_ms ? opts->timeout_ms : m->opts.timeout_ms;
		m->opts.max_bytes = opts->max_bytes ? opts->max_bytes : m->opts.max_bytes;
	}
	if (!parse_spec(m, spec, &m->kind, err, errlen)) {
		goto fail;
	}
	m->spec = strdup(spec);
	m->poll_ev = evtimer_new(base, poll_cb, m);
	m->deadline_ev = evtimer_new(base, deadline_cb, m);
	m->step_ev = evtimer_new(base, step_cb, m);
	if (m->spec == NULL || m->poll_ev == NULL || m->deadline_ev == NULL || m->step_ev == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	m->st.source = m->spec;
	m->st.kind = m->kind;
	evtimer_add(m->poll_ev, &now);
	return m;
fail:
	mirror_free(m);
	return NULL;
}

void
mirror_force(struct mirror *m)
{
	struct timeval now = {0, 0};

	m->has_rejected = false;
	m->file_ok_valid = false;
	if (m->busy) {
		m->force_pending = true;
		return;
	}
	evtimer_add(m->poll_ev, &now);
}

void
mirror_on_state(struct mirror *m, mirror_state_fn fn, void *ctx)
{
	m->on_state = fn;
	m->state_ctx = ctx;
}

void
mirror_status(const struct mirror *m, struct mirror_status *st)
{
	*st = m->st;
	st->busy = m->busy;
}

static json_t *
time_json(int64_t us)
{
	char date[32], buf[48];
	struct tm tm;
	time_t s;

	if (us <= 0) {
		return json_null();
	}
	s = (time_t)(us / 1000000);
	if (gmtime_r(&s, &tm) == NULL ||
	    strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
		return json_null();
	}
	snprintf(buf, sizeof(buf), "%s.%06dZ", date, (int)(us % 1000000));
	return json_string(buf);
}

json_t *
mirror_status_json(const struct mirror *m)
{
	static const char *const kinds[] = {"file", "http", "exec"};
	struct mirror_status st;
	char hash[17];

	mirror_status(m, &st);
	snprintf(hash, sizeof(hash), "%016llx", (unsigned long long)st.content_hash);
	return json_pack("{s:s, s:s, s:b, s:o, s:b, s:b, s:o, s:o, s:o, s:I, s:I, s:I, s:I, s:I, "
	                 "s:s?, s:I, s:s?}",
	                 "source", st.source, "kind", kinds[st.kind], "stale", st.stale,
	                 "stale_since", time_json(st.stale_since_us), "has_content", st.has_content,
	                 "busy", st.busy, "last_attempt", time_json(st.last_attempt_us),
	                 "last_success", time_json(st.last_success_us), "last_change",
	                 time_json(st.last_change_us), "fetches", (json_int_t)st.fetches, "changes",
	                 (json_int_t)st.changes, "rejects", (json_int_t)st.rejects, "failures",
	                 (json_int_t)st.failures, "consecutive_failures",
	                 (json_int_t)st.consecutive_failures, "last_error",
	                 st.last_error[0] ? st.last_error : NULL, "content_bytes",
	                 (json_int_t)st.content_len, "content_hash", st.has_content ? hash : NULL);
}

/* The child was started by us; after SIGKILL the wait is short (it cannot ignore it). */
static void
exec_abort(struct mirror *m)
{
	exec_close_pipes(m);
	if (m->pid > 0) {
		kill(-m->pid, SIGKILL);
		kill(m->pid, SIGKILL);
		while (waitpid(m->pid, NULL, 0) < 0 && errno == EINTR) {
		}
		m->pid = 0;
	}
}

void
mirror_free(struct mirror *m)
{
	if (m == NULL) {
		return;
	}
	exec_abort(m);
	file_close(m);
	if (m->evcon != NULL) {
		evhttp_connection_free(m->evcon);
	}
	http_reap(m);
	if (m->dns != NULL) {
		evdns_base_free(m->dns, 0);
	}
	if (m->poll_ev != NULL) {
		event_free(m->poll_ev);
	}
	if (m->deadline_ev != NULL) {
		event_free(m->deadline_ev);
	}
	if (m->step_ev != NULL) {
		event_free(m->step_ev);
	}
	mbuf_reset(&m->body);
	free(m->target);
	free(m->http_path);
	free(m->spec);
	free(m);
}
