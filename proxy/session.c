/* proxy/session.c: the inline session (see session.h).
 *
 * The usual read, in either direction, with nothing held, queued or staged, is decoded
 * and relayed straight from the lane's read buffer (c2s_direct, s2c_direct): no input
 * evbuffer is touched.  Everything else takes the general path below, which the direct
 * paths hand over to with the exact state it keeps.
 * Client -> server: bytes are framed per physical packet and fed to the decoder one
 * packet at a time; bytes of a command the decoder holds stay in the client input
 * buffer until WIRE_EV_COMMAND gave a verdict, then are moved (or dropped).
 * Server -> client: fed a read at a time (the decoder frames them and stops right after
 * a blocked command's turn, so its synthetic ERR lands between two responses), without
 * copying: the decoder reads the evbuffer's own chains through evbuffer_peek, then the
 * bytes are moved with evbuffer_remove_buffer.  Backpressure is libevent's le-proxy
 * pattern. */
#include "proxy/session.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "proxy/clock.h"
#include "proxy/log.h"

#define HDR_LEN 4
#define PKT_MAX 0xFFFFFFu       /* a payload this long continues in the next packet */
#define GREETING_MAX 16384     /* a HandshakeV10 is ~100 bytes; more is not MySQL */
#define LOGIN_MAX 65536        /* first client packet (HandshakeResponse41 / SSLRequest) */
#define PRE_GREETING_MAX 65536 /* client bytes tolerated before the greeting */
#define LINGER_S 5             /* flushing queued bytes at close */
#define IOV_BATCH 16
#define SEND_IOV_MAX 16        /* chunks per speculative send */
#define SEND_GATHER_MAX 1024   /* several chunks up to this many bytes are copied, one send */
#define READ_MAX 16384         /* bytes per read, as libevent's bufferevents read */
#define SMALL_READ 2048        /* a client read up to this size is copied, not read in place */

enum sess_phase {
	SP_CONNECTING = 0, /* upstream connect in progress */
	SP_HANDSHAKE,      /* greeting / login / auth */
	SP_COMMAND,        /* command phase */
	SP_OPAQUE,         /* TLS passthrough: bytes only */
	SP_CLOSING         /* flushing, then freed */
};

struct session {
	struct session_env *env;
	struct session *prev, *next; /* env->head list */
	struct cfg *cfg;             /* reference held */
	uint64_t id;
	char peer[80];               /* client address */
	char tag[112];               /* log prefix */
	struct bufferevent *cli;     /* client socket */
	struct bufferevent *up;      /* upstream socket */
	int cli_fd, up_fd;           /* their descriptors (-1: none), read without the
	                                bufferevent's lock on every recv and send */
	struct event *cli_rd, *up_rd; /* their read events (see "reading") */
	struct wire_conv *conv;
	struct event *timer;         /* connect / handshake / idle / linger */
	enum sess_phase phase;
	bool greeting_seen;          /* first server packet passed */
	bool login_seen;             /* first client packet passed (patched) */
	bool cli_paused;             /* client reads off: upstream output above high water */
	bool up_paused;              /* upstream reads off: client output above high water */
	bool cli_bulk;               /* the last client read was large (an upload) */
	bool verdict_ready;          /* a COMMAND event fired during the current feed */
	enum wire_verdict verdict;
	size_t c2s_held;             /* client bytes fed but not yet forwarded */
	size_t c2s_rem;              /* bytes left of the current client packet (0 = header) */
	struct evbuffer *errq;       /* synthetic ERRs waiting for their turn */
	uint64_t c2s_bytes, s2c_bytes;
	uint64_t t_open_ms, t_last_ms; /* monotonic */
	uint64_t commands, anomalies;
	char fail[200];              /* set from a decoder callback: end after the feed */
	char auth_err[120];          /* last AUTH_ERR message, for the close reason */
	bool quit_seen;              /* client sent COM_QUIT */
	bool opaque;                 /* TLS passthrough: nothing inspected */
	void *obs_data;              /* the observer's per-session state */
};

static void session_end(struct session *s, const char *reason);
static bool side_read(struct session *s, bool cli, bool on);
static void side_free(struct session *s, bool cli);
static bool process_c2s(struct session *s);
static bool process_s2c(struct session *s);
static void arm_timer(struct session *s);

static uint32_t
rd_u24le(const uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16);
}

static void
format_peer(const struct sockaddr *sa, socklen_t len, char *out, size_t outlen)
{
	char host[INET6_ADDRSTRLEN] = "?";

	if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;

		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		snprintf(out, outlen, "%s:%u", host, ntohs(in->sin_port));
	} else if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;

		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		snprintf(out, outlen, "[%s]:%u", host, ntohs(in6->sin6_port));
	} else {
		snprintf(out, outlen, "unix");
	}
}

/* ---- decoder events: the one dispatch point ----------------------------------------- */

static void
queue_blocked_err(struct session *s, const struct wire_event *ev)
{
	const struct session_observer *o = s->env->obs;
	char msg[256];
	uint8_t pkt[300];
	size_t n = 0, len;

	if (o != NULL && o->block_message != NULL)
		n = o->block_message(s->env->obs_ctx, s, ev->u.blocked.user, msg, sizeof(msg));
	if (n == 0 || n >= sizeof(msg))
		snprintf(msg, sizeof(msg), "routetrace: statement blocked");
	/* seq 1: the answer to a command the client sent with seq 0 (STYLE 2.3). */
	len = wire_build_err(pkt, sizeof(pkt), 1, 1105, "HY000", msg);
	if (s->errq == NULL)
		s->errq = evbuffer_new();
	if (s->errq == NULL || len == 0 || evbuffer_add(s->errq, pkt, len) != 0)
		snprintf(s->fail, sizeof(s->fail), "cannot queue the ERR of a blocked command");
}

/* Peer-controlled NUL-terminated text made safe for a log line (NULL -> ""). */
#define SAFE(str, buf) log_safe((str), SIZE_MAX, (buf), sizeof(buf))

static void
note_event(struct session *s, const struct wire_event *ev)
{
	char a[100], b[100], c[100];

	switch (ev->type) {
	case WIRE_EV_SSL_REQUEST:
		if (s->cfg->client_tls == CFG_TLS_REFUSE)
			snprintf(s->fail, sizeof(s->fail), "client sent SSLRequest; client_tls=refuse");
		else
			slog_info(s->tag, "client requested TLS: relaying opaque bytes, session "
					  "not inspectable (client_tls=passthrough)");
		break;
	case WIRE_EV_LOGIN:
		if (LOG_LVL_DEBUG <= log_threshold)
			slog_debug(s->tag, "login user=%s db=%s plugin=%s",
				   SAFE(ev->u.login.user, a), SAFE(ev->u.login.db, b),
				   SAFE(ev->u.login.plugin, c));
		break;
	case WIRE_EV_AUTH_OK:
		s->phase = SP_COMMAND;
		slog_info(s->tag, "session login id=%" PRIu64 " client=%s user=%s target=%s", s->id,
			  s->peer, SAFE(wire_conv_user(s->conv), a), SAFE(wire_conv_target(s->conv), b));
		arm_timer(s);
		break;
	case WIRE_EV_AUTH_ERR:
	case WIRE_EV_GREETING_ERR:
		snprintf(s->auth_err, sizeof(s->auth_err), "%s %u: %s",
			 ev->type == WIRE_EV_AUTH_ERR ? "authentication failed" : "upstream refused",
			 ev->u.err.err_code,
			 log_safe(ev->u.err.message, ev->u.err.message_len, a, sizeof(a)));
		slog_info(s->tag, "%s", s->auth_err);
		break;
	case WIRE_EV_COMMAND:
		s->commands++;
		if (ev->u.command->cmd == WIRE_COM_QUIT)
			s->quit_seen = true;
		break;
	case WIRE_EV_TARGET:
		if (LOG_LVL_DEBUG <= log_threshold)
			slog_debug(s->tag, "target '%s' -> '%s'", SAFE(ev->u.target.previous, a),
				   SAFE(ev->u.target.target, b));
		break;
	case WIRE_EV_BLOCKED_DUE:
		queue_blocked_err(s, ev);
		break;
	case WIRE_EV_ANOMALY:
		if (s->anomalies++ == 0)
			slog_warn(s->tag, "protocol anomaly: %s (further ones counted)",
				  ev->u.anomaly.what);
		break;
	default:
		break;
	}
}

/* The decoder callback.  Never ends the session from here (the decoder is on the stack):
 * problems are recorded in s->fail and acted on after the feed returns. */
static enum wire_verdict
on_wire_event(void *ctx, const struct wire_event *ev)
{
	struct session *s = ctx;
	const struct session_observer *o = s->env->obs;
	enum wire_verdict v = WIRE_FORWARD;

	if (o != NULL && o->on_event != NULL)
		v = o->on_event(s->env->obs_ctx, s, ev);
	note_event(s, ev);
	if (ev->type != WIRE_EV_COMMAND)
		return WIRE_FORWARD;
	s->verdict_ready = true;
	s->verdict = v;
	return v;
}

static void
on_wire_free_user(void *ctx, void *user)
{
	struct session *s = ctx;
	const struct session_observer *o = s->env->obs;

	if (o != NULL && o->free_user != NULL)
		o->free_user(s->env->obs_ctx, s, user);
}

/* ---- feeding ------------------------------------------------------------------------ */

/* Feeds n bytes of `in` starting at offset off to the decoder, straight from the
 * evbuffer's chains.  *used = bytes consumed (less than n when the decoder stops: a
 * client command ended, or a blocked command's turn came in the server's stream).
 * False on WIRE_ERROR. */
static bool
feed_range(struct session *s, enum wire_dir dir, struct evbuffer *in, size_t off, size_t n,
	   size_t *used)
{
	struct evbuffer_iovec v[IOV_BATCH];
	struct evbuffer_ptr ptr;
	uint64_t ts = clock_wall_us();

	*used = 0;
	while (*used < n) {
		size_t want = n - *used;
		int nv;

		/* from the front (the usual case) needs no walk of the chains to find off */
		if (off + *used > 0 &&
		    evbuffer_ptr_set(in, &ptr, off + *used, EVBUFFER_PTR_SET) != 0)
			return true;
		nv = evbuffer_peek(in, (ev_ssize_t)want, off + *used > 0 ? &ptr : NULL, v,
				   IOV_BATCH);
		if (nv <= 0)
			return true;
		for (int i = 0; i < nv && i < IOV_BATCH && *used < n; i++) {
			size_t len = v[i].iov_len < n - *used ? v[i].iov_len : n - *used;
			size_t u = 0;

			/* The rest of a blocked command is fed alone: the caller drops exactly
			 * those bytes, and the next command must not ride along in this call. */
			bool dropping = dir == WIRE_C2S && wire_conv_c2s_dropping(s->conv);

			if (wire_conv_feed(s->conv, dir, v[i].iov_base, len, ts, &u) != WIRE_OK)
				return false;
			*used += u;
			if (u < len || dropping)
				return true; /* stop rule: a command ended here */
		}
	}
	return true;
}

/* Reads the 3-byte length of the packet header at offset off.  False if incomplete. */
static bool
peek_pkt_len(struct evbuffer *in, size_t off, size_t *pktlen)
{
	struct evbuffer_ptr ptr;
	uint8_t hdr[HDR_LEN];

	if (evbuffer_get_length(in) < off + HDR_LEN)
		return false;
	if (evbuffer_ptr_set(in, &ptr, off, EVBUFFER_PTR_SET) != 0 ||
	    evbuffer_copyout_from(in, &ptr, hdr, HDR_LEN) != HDR_LEN)
		return false;
	*pktlen = HDR_LEN + rd_u24le(hdr);
	return true;
}

static void
decoder_failed(struct session *s)
{
	char why[240];

	snprintf(why, sizeof(why), "protocol error: %s", wire_conv_error(s->conv));
	session_end(s, why);
}

/* ---- backpressure (le-proxy.c) ---------------------------------------------------- */

static void
check_pressure(struct session *s, struct bufferevent *src, struct bufferevent *dst)
{
	size_t hw = (size_t)s->cfg->buffer_high_water;
	bool *paused = src == s->cli ? &s->cli_paused : &s->up_paused;

	if (*paused || evbuffer_get_length(bufferevent_get_output(dst)) < hw)
		return;
	*paused = true;
	side_read(s, src == s->cli, false);
	bufferevent_setwatermark(dst, EV_WRITE, hw / 2, 0);
}

/* dst's output fell to its low watermark: resume the side that writes into it. */
static bool
release_pressure(struct session *s, struct bufferevent *dst)
{
	struct bufferevent *src = dst == s->up ? s->cli : s->up;
	bool *paused = src == s->cli ? &s->cli_paused : &s->up_paused;

	if (!*paused || src == NULL)
		return true;
	*paused = false;
	bufferevent_setwatermark(dst, EV_WRITE, 0, 0);
	side_read(s, src == s->cli, true);
	/* Bytes may already sit in src's input (read before the pause): process them. */
	return src == s->cli ? process_c2s(s) : process_s2c(s);
}

/* ---- client -> server ----------------------------------------------------------- */

/* Socket I/O of our own reads and speculative writes goes through recv/send (recvmsg/
 * sendmsg for several chunks), not readv/writev as libevent's: those take the VFS path
 * (file position checks, fsnotify) on every call, twice per query each way. */
static ssize_t
sock_recv(int fd, struct evbuffer_iovec *v, int nv)
{
	if (nv == 1)
		return recv(fd, v[0].iov_base, v[0].iov_len, 0);
	/* evbuffer_iovec has struct iovec's layout (libevent documents it for Unix) */
	struct msghdr m = {.msg_iov = (struct iovec *)v, .msg_iovlen = (size_t)nv};
	return recvmsg(fd, &m, 0);
}

/* Writes up to n bytes from the front of src (not drained); -1 with errno as send's. */
static ssize_t
sock_send(int fd, struct evbuffer *src, size_t n)
{
	struct evbuffer_iovec v[SEND_IOV_MAX];
	int nv = evbuffer_peek(src, (ev_ssize_t)n, NULL, v, SEND_IOV_MAX);
	size_t total = 0;

	if (nv > SEND_IOV_MAX)
		nv = SEND_IOV_MAX; /* the rest is queued by the caller */
	for (int i = 0; i < nv; i++) {
		if (v[i].iov_len > n - total)
			v[i].iov_len = n - total;
		total += v[i].iov_len;
	}
	if (nv == 1)
		return send(fd, v[0].iov_base, v[0].iov_len, MSG_NOSIGNAL);
	if (nv > 1 && total <= SEND_GATHER_MAX) {
		/* A command split over chains (an EXECUTE decided before its last bytes came):
		 * gathered here, it is one plain send, cheaper than sendmsg's iovec import. */
		uint8_t buf[SEND_GATHER_MAX];
		size_t k = 0;

		for (int i = 0; i < nv; i++) {
			memcpy(buf + k, v[i].iov_base, v[i].iov_len);
			k += v[i].iov_len;
		}
		return send(fd, buf, k, MSG_NOSIGNAL);
	}
	struct msghdr m = {.msg_iov = (struct iovec *)v, .msg_iovlen = (size_t)nv};
	return nv > 0 ? sendmsg(fd, &m, MSG_NOSIGNAL) : 0;
}

static int
side_fd(const struct session *s, const struct bufferevent *bev)
{
	return bev == s->cli ? s->cli_fd : s->up_fd;
}

/* Moves n bytes from src toward dst's socket.  When nothing is queued for dst yet, the
 * bytes are written at once (haproxy's speculative send): a query or a small result then
 * costs no epoll_ctl to arm and disarm dst's write event.  What the socket does not
 * take (EAGAIN, a connect in progress, an error the bufferevent will report) is queued
 * as usual, after the bytes written, so order is kept. */
static void
relay_bytes(struct session *s, struct bufferevent *dst, struct evbuffer *src, size_t n)
{
	struct evbuffer *out = bufferevent_get_output(dst);

	if (evbuffer_get_length(out) == 0) {
		ssize_t w = sock_send(side_fd(s, dst), src, n);
		if (w > 0) {
			evbuffer_drain(src, (size_t)w);
			n -= (size_t)w;
		}
	}
	if (n > 0)
		evbuffer_remove_buffer(src, out, n);
}

/* Client bytes a pass of process_c2s forwards are gathered in the env's c2s_stage (chains
 * are moved, not copied) and written once at the end of the pass: a COM_STMT_EXECUTE
 * decided before its last bytes were fed, or pipelined commands, cost one write, not one
 * each.  One stage serves every session of the loop: it is empty between passes. */
static void
c2s_move(struct session *s, size_t n, bool forward)
{
	struct evbuffer *in = bufferevent_get_input(s->cli);

	if (n == 0)
		return;
	if (!forward) {
		evbuffer_drain(in, n);
		return;
	}
	s->c2s_bytes += n;
	struct session_env *env = s->env;
	if (env->c2s_stage == NULL && (env->c2s_stage = evbuffer_new()) == NULL)
		relay_bytes(s, s->up, in, n); /* no stage: write now, order is the same */
	else
		evbuffer_remove_buffer(in, env->c2s_stage, n);
}

static void
c2s_flush(struct session *s)
{
	struct evbuffer *stage = s->env->c2s_stage;
	size_t n = stage != NULL ? evbuffer_get_length(stage) : 0;

	if (n == 0)
		return;
	if (s->up != NULL)
		relay_bytes(s, s->up, stage, n); /* leaves the stage empty (the rest is queued) */
	else
		evbuffer_drain(stage, n); /* no upstream any more: never another session's */
}

/* Drops n bytes that follow the first `held` bytes of the client input (held bytes
 * stay queued in front of them).  Normally held is 0 here. */
static void
c2s_move_at(struct session *s, size_t held, size_t n)
{
	struct evbuffer *in = bufferevent_get_input(s->cli);

	if (n == 0)
		return;
	if (held == 0) {
		evbuffer_drain(in, n);
		return;
	}
	struct evbuffer *keep = evbuffer_new();
	if (keep == NULL) {
		snprintf(s->fail, sizeof(s->fail), "out of memory");
		return;
	}
	evbuffer_remove_buffer(in, keep, held);
	evbuffer_drain(in, n);
	evbuffer_prepend_buffer(in, keep);
	evbuffer_free(keep);
}

/* Patches the first client packet (HandshakeResponse41 or SSLRequest) in place: the same
 * capabilities the greeting lost are cleared here (clients send bits never offered).
 * False: wait for more bytes.  Sets s->fail if the packet is not acceptable. */
static bool
patch_login(struct session *s, size_t pktlen)
{
	struct evbuffer *in = bufferevent_get_input(s->cli);
	uint64_t mask = WIRE_CAPS_ALWAYS_CLEARED;
	uint8_t *p;

	if (pktlen > LOGIN_MAX) {
		snprintf(s->fail, sizeof(s->fail), "first client packet is %zu bytes: not MySQL",
			 pktlen);
		return true;
	}
	if (evbuffer_get_length(in) < pktlen)
		return false;
	p = evbuffer_pullup(in, (ev_ssize_t)pktlen);
	if (p == NULL) {
		snprintf(s->fail, sizeof(s->fail), "out of memory");
		return true;
	}
	/* In refuse mode a full login with CLIENT_SSL set loses it too; an SSLRequest
	 * (32-byte payload) keeps it so the decoder reports it and we refuse clearly. */
	if (s->cfg->client_tls == CFG_TLS_REFUSE && pktlen - HDR_LEN != 32)
		mask |= WIRE_CAP_SSL;
	if (!wire_login_clear_caps(p + HDR_LEN, pktlen - HDR_LEN, mask))
		slog_debug(s->tag, "first client packet not patchable (pre-4.1 login?)");
	s->login_seen = true;
	return true;
}

static bool
flush_errq_to_client(struct session *s)
{
	if (s->errq == NULL || evbuffer_get_length(s->errq) == 0)
		return true;
	return evbuffer_add_buffer(bufferevent_get_output(s->cli), s->errq) == 0;
}

/* Starts the next client packet: flushes bytes no longer held, patches the login.
 * Returns false when the caller must stop (need more bytes, or s->fail set). */
static bool
c2s_packet_start(struct session *s, struct evbuffer *in)
{
	size_t pktlen;

	if (!peek_pkt_len(in, s->c2s_held, &pktlen))
		return false;
	if (s->c2s_held > 0 && !wire_conv_c2s_holding(s->conv)) {
		c2s_move(s, s->c2s_held, true);
		s->c2s_held = 0;
	}
	if (!s->login_seen && (!patch_login(s, pktlen) || s->fail[0] != '\0'))
		return false;
	s->c2s_rem = pktlen;
	return true;
}

/* The decoder saw TLS start: from now on bytes only. */
static void
enter_opaque(struct session *s)
{
	s->phase = SP_OPAQUE;
	s->opaque = true;
	arm_timer(s);
}

/* After a feed: act on a verdict, switch to opaque mode.  False if the loop must stop. */
static bool
c2s_after_feed(struct session *s)
{
	if (s->verdict_ready) {
		s->verdict_ready = false;
		c2s_move(s, s->c2s_held, s->verdict == WIRE_FORWARD);
		s->c2s_held = 0;
	}
	if (!flush_errq_to_client(s)) {
		snprintf(s->fail, sizeof(s->fail), "out of memory");
		return false;
	}
	if (wire_conv_opaque(s->conv) && s->phase != SP_OPAQUE) {
		c2s_move(s, s->c2s_held, true);
		s->c2s_held = 0;
		enter_opaque(s);
	}
	return s->phase != SP_OPAQUE;
}

/* Processes all client input.  Returns false if the session ended (s may be freed). */
static bool
process_c2s(struct session *s)
{
	struct evbuffer *in;

	if (s->phase == SP_CLOSING || s->up == NULL || s->cli == NULL)
		return true;
	in = bufferevent_get_input(s->cli);
	if (!s->greeting_seen) {
		if (evbuffer_get_length(in) > PRE_GREETING_MAX) {
			session_end(s, "client sent data before the server greeting");
			return false;
		}
		return true;
	}
	while (s->phase != SP_OPAQUE) {
		size_t avail = evbuffer_get_length(in) - s->c2s_held, chunk, used;

		if (avail == 0)
			break;
		if (s->c2s_rem == 0 && !c2s_packet_start(s, in))
			break;
		chunk = avail < s->c2s_rem ? avail : s->c2s_rem;
		bool dropping = wire_conv_c2s_dropping(s->conv);
		if (!feed_range(s, WIRE_C2S, in, s->c2s_held, chunk, &used)) {
			c2s_flush(s);
			decoder_failed(s);
			return false;
		}
		s->c2s_rem -= used;
		if (dropping) {
			/* rest of a blocked command (its prefix was dropped at the verdict) */
			c2s_move_at(s, s->c2s_held, used);
		} else {
			s->c2s_held += used;
		}
		if (!c2s_after_feed(s) || (used == 0 && !s->verdict_ready))
			break;
	}
	if (s->fail[0] != '\0') {
		c2s_flush(s);
		session_end(s, s->fail);
		return false;
	}
	if (s->phase == SP_OPAQUE)
		c2s_move(s, evbuffer_get_length(in), true);
	else if (s->c2s_held > 0 && !wire_conv_c2s_holding(s->conv)) {
		c2s_move(s, s->c2s_held, true);
		s->c2s_held = 0;
	}
	c2s_flush(s);
	check_pressure(s, s->cli, s->up);
	return true;
}

/* ---- server -> client ----------------------------------------------------------- */

static void
send_err_and_end(struct session *s, uint8_t seq, const char *msg)
{
	uint8_t pkt[400];
	size_t n = wire_build_err(pkt, sizeof(pkt), seq, 1105, "HY000", msg);

	if (s->cli != NULL && n > 0)
		bufferevent_write(s->cli, pkt, n);
	session_end(s, msg);
}

/* The greeting: complete, small, patched in place before anyone sees it.  Returns false
 * when the caller must stop (waiting, or the session ended). */
static bool
handle_greeting(struct session *s, struct evbuffer *in, bool *ended)
{
	char msg[300];
	size_t pktlen;
	uint8_t *p;
	uint64_t mask = WIRE_CAPS_ALWAYS_CLEARED;

	*ended = false;
	if (!peek_pkt_len(in, 0, &pktlen))
		return false;
	if (pktlen > GREETING_MAX || pktlen <= HDR_LEN) {
		snprintf(msg, sizeof(msg), "routetrace: upstream %s did not send a MySQL greeting "
			 "(first packet length %zu)", s->cfg->upstream.text, pktlen - HDR_LEN);
		goto bad;
	}
	if (evbuffer_get_length(in) < pktlen)
		return false;
	p = evbuffer_pullup(in, (ev_ssize_t)pktlen);
	if (p == NULL) {
		snprintf(msg, sizeof(msg), "routetrace: out of memory");
		goto bad;
	}
	if (s->cfg->client_tls == CFG_TLS_REFUSE)
		mask |= WIRE_CAP_SSL;
	if (p[HDR_LEN] == 0x0a && !wire_greeting_clear_caps(p + HDR_LEN, pktlen - HDR_LEN, mask)) {
		snprintf(msg, sizeof(msg), "routetrace: upstream %s sent a malformed greeting",
			 s->cfg->upstream.text);
		goto bad;
	}
	if (p[HDR_LEN] != 0x0a && p[HDR_LEN] != 0xff) {
		snprintf(msg, sizeof(msg), "routetrace: upstream %s did not send a MySQL greeting "
			 "(first byte 0x%02x)", s->cfg->upstream.text, p[HDR_LEN]);
		goto bad;
	}
	s->greeting_seen = true;
	return true;
bad:
	*ended = true;
	send_err_and_end(s, 0, msg);
	return false;
}

static void
s2c_move(struct session *s, size_t n)
{
	if (n == 0)
		return;
	relay_bytes(s, s->cli, bufferevent_get_input(s->up), n);
	s->s2c_bytes += n;
}

/* Processes all upstream input.  Returns false if the session ended. */
static bool
process_s2c(struct session *s)
{
	struct evbuffer *in;
	size_t off = 0, used;
	bool ended;

	if (s->phase == SP_CLOSING || s->cli == NULL || s->up == NULL)
		return true;
	in = bufferevent_get_input(s->up);
	if (!s->greeting_seen && !handle_greeting(s, in, &ended))
		return !ended;
	if (s->phase == SP_OPAQUE) {
		s2c_move(s, evbuffer_get_length(in));
		check_pressure(s, s->up, s->cli);
		return true;
	}
	/* Everything at hand goes to the decoder at once: it frames the packets itself, and
	 * stops right after a blocked command's turn so its ERR lands in stream order. */
	for (;;) {
		size_t avail = evbuffer_get_length(in) - off;

		if (avail == 0)
			break;
		if (!feed_range(s, WIRE_S2C, in, off, avail, &used)) {
			s2c_move(s, off); /* what the decoder accepted still reaches the client */
			decoder_failed(s);
			return false;
		}
		off += used;
		if (s->errq != NULL && evbuffer_get_length(s->errq) > 0) {
			s2c_move(s, off); /* responses before the blocked command's ERR */
			off = 0;
			flush_errq_to_client(s);
		}
		if (used == 0 || s->fail[0] != '\0')
			break;
	}
	s2c_move(s, off);
	if (s->fail[0] != '\0') {
		session_end(s, s->fail);
		return false;
	}
	/* The greeting changed the session's state: client bytes may be waiting. */
	if (!process_c2s(s))
		return false;
	check_pressure(s, s->up, s->cli);
	return true;
}

/* ---- server -> client, straight from the read buffer ------------------------------- */

/* The usual server read, a whole response or a run of rows, with nothing queued either
 * way, is decoded and relayed from the lane's read buffer: no input chain is allocated,
 * peeked, drained and freed for it.  Only when the client's socket does not take it all
 * is the rest copied, once, into the client's output, so a slow client puts the next
 * reads back on the evbuffer path (rows are never copied twice). */
static __thread uint8_t read_scratch[READ_MAX]; /* a lane's reads; never held past one */

static bool
s2c_direct_ok(const struct session *s)
{
	return s->greeting_seen && s->phase != SP_OPAQUE && s->phase != SP_CLOSING &&
	       s->cli != NULL && !s->up_paused &&
	       evbuffer_get_length(bufferevent_get_input(s->up)) == 0 &&
	       evbuffer_get_length(bufferevent_get_output(s->cli)) == 0 &&
	       (s->errq == NULL || evbuffer_get_length(s->errq) == 0);
}

/* Relays p[0..n) to dst (the client or the upstream) after whatever is queued for it,
 * written at once when nothing is; false if out of memory. */
static bool
relay_mem(struct session *s, struct bufferevent *dst, const uint8_t *p, size_t n)
{
	struct evbuffer *out = bufferevent_get_output(dst);

	*(dst == s->cli ? &s->s2c_bytes : &s->c2s_bytes) += n;
	if (n > 0 && evbuffer_get_length(out) == 0) {
		ssize_t w = send(side_fd(s, dst), p, n, MSG_NOSIGNAL);
		if (w > 0) {
			p += w;
			n -= (size_t)w;
		}
	}
	return n == 0 || evbuffer_add(out, p, n) == 0;
}

/* process_s2c for bytes that are not in the upstream input.  s may be freed. */
static void
s2c_direct(struct session *s, const uint8_t *p, size_t n)
{
	uint64_t ts = clock_wall_us();
	size_t off = 0, sent = 0, used;
	bool fed = true;

	while (off < n) {
		if (wire_conv_feed(s->conv, WIRE_S2C, p + off, n - off, ts, &used) != WIRE_OK) {
			fed = false;
			break;
		}
		off += used;
		if (s->errq != NULL && evbuffer_get_length(s->errq) > 0) {
			if (!relay_mem(s, s->cli, p + sent, off - sent)) /* answers before the ERR */
				snprintf(s->fail, sizeof(s->fail), "out of memory");
			sent = off;
			flush_errq_to_client(s);
		}
		if (used == 0 || s->fail[0] != '\0')
			break;
	}
	if (!relay_mem(s, s->cli, p + sent, off - sent) && s->fail[0] == '\0')
		snprintf(s->fail, sizeof(s->fail), "out of memory");
	if (!fed) {
		decoder_failed(s); /* what the decoder accepted reached the client */
		return;
	}
	if (off < n && s->fail[0] == '\0') { /* not taken: left as process_s2c leaves it */
		struct evbuffer *in = bufferevent_get_input(s->up);
		evbuffer_unfreeze(in, 0);
		if (evbuffer_add(in, p + off, n - off) != 0)
			snprintf(s->fail, sizeof(s->fail), "out of memory");
		evbuffer_freeze(in, 0);
	}
	if (s->fail[0] != '\0') {
		session_end(s, s->fail);
		return;
	}
	/* client bytes waiting on this response (pipelined, or read while paused) */
	if (evbuffer_get_length(bufferevent_get_input(s->cli)) > 0 && !process_c2s(s))
		return;
	check_pressure(s, s->up, s->cli);
}

/* ---- client -> server, straight from the read buffer ------------------------------ */

/* The usual client read, one or more whole command packets with nothing held, queued or
 * staged, is decoded and relayed from the lane's read buffer the same way.  It keeps
 * process_c2s' bookkeeping over plain offsets: [fwd, und) is decided and goes upstream,
 * [und, pos) was fed but awaits its verdict, [pos, n) is not fed yet.  At the first packet
 * it cannot take whole (cut by the read, 16 MiB and more), or a decoder state it does not
 * expect, it hands over: the decided bytes are relayed, the rest is put in the client
 * input exactly as process_c2s would have left it, and process_c2s carries on.  A change
 * to how a verdict moves bytes belongs in both. */
static bool
c2s_direct_ok(const struct session *s)
{
	return s->phase == SP_COMMAND && s->login_seen && s->up != NULL && s->cli != NULL &&
	       !s->cli_bulk && s->c2s_held == 0 && s->c2s_rem == 0 &&
	       evbuffer_get_length(bufferevent_get_input(s->cli)) == 0 &&
	       !wire_conv_c2s_holding(s->conv) && !wire_conv_c2s_dropping(s->conv);
}

/* Hands [und, n) over to process_c2s: [und, pos) fed and held, pos inside a packet
 * ending at pkt_end, or at a packet start when pos == pkt_end.  False on out of memory. */
static bool
c2s_direct_rest(struct session *s, const uint8_t *p, size_t n, size_t und, size_t pos,
		size_t pkt_end)
{
	struct evbuffer *in = bufferevent_get_input(s->cli);
	bool ok;

	evbuffer_unfreeze(in, 0);
	ok = evbuffer_add(in, p + und, n - und) == 0;
	evbuffer_freeze(in, 0);
	s->c2s_held = pos - und;
	s->c2s_rem = pkt_end - pos;
	return ok;
}

/* process_c2s for bytes that are not in the client input.  s may be freed. */
static void
c2s_direct(struct session *s, const uint8_t *p, size_t n)
{
	uint64_t ts = clock_wall_us();
	size_t fwd = 0, und = 0, pos = 0, pkt_end = 0, used;

	while (pos < n && s->fail[0] == '\0') {
		if (pos == pkt_end) {
			size_t len = n - pos >= HDR_LEN ? rd_u24le(p + pos) : 0;
			if (n - pos < HDR_LEN || len >= PKT_MAX || len > n - pos - HDR_LEN)
				break; /* cut by the read, or 16 MiB and more */
			pkt_end = pos + HDR_LEN + len;
		}
		bool dropping = wire_conv_c2s_dropping(s->conv);
		if (wire_conv_feed(s->conv, WIRE_C2S, p + pos, pkt_end - pos, ts, &used) != WIRE_OK) {
			relay_mem(s, s->up, p + fwd, und - fwd);
			decoder_failed(s);
			return;
		}
		if (dropping) { /* the rest of a command blocked on its prefix */
			if (!relay_mem(s, s->up, p + fwd, und - fwd))
				snprintf(s->fail, sizeof(s->fail), "out of memory");
			fwd = und = pos + used;
		} else if (s->verdict_ready) {
			s->verdict_ready = false;
			if (s->verdict != WIRE_FORWARD) {
				if (!relay_mem(s, s->up, p + fwd, und - fwd))
					snprintf(s->fail, sizeof(s->fail), "out of memory");
				fwd = pos + used;
			}
			und = pos + used;
		} else if (!wire_conv_c2s_holding(s->conv)) {
			und = pos + used; /* not a command (auth data, an upload): forwarded */
		}
		pos += used;
		if (!flush_errq_to_client(s))
			snprintf(s->fail, sizeof(s->fail), "out of memory");
		if (wire_conv_opaque(s->conv) || (used == 0 && pos < pkt_end))
			break;
	}
	if (wire_conv_opaque(s->conv) && s->fail[0] == '\0') {
		und = pos; /* what was fed is forwarded, the rest as opaque bytes */
		enter_opaque(s);
	}
	if (!relay_mem(s, s->up, p + fwd, und - fwd) && s->fail[0] == '\0')
		snprintf(s->fail, sizeof(s->fail), "out of memory");
	if (s->fail[0] != '\0') {
		session_end(s, s->fail);
		return;
	}
	if (und < n) {
		if (!c2s_direct_rest(s, p, n, und, pos, pkt_end > pos ? pkt_end : pos)) {
			session_end(s, "out of memory");
			return;
		}
		if (!process_c2s(s))
			return;
	}
	check_pressure(s, s->cli, s->up);
}

/* ---- reading ---------------------------------------------------------------------- */

/* The sockets are read here; the bufferevents only write.  libevent's reader asks the
 * kernel how many bytes are waiting (ioctl FIONREAD) before every read: on a query's path
 * that was one system call in five.  We read up to READ_MAX at a time: a read with
 * nothing queued or held goes straight from the lane's buffer (s2c_direct, c2s_direct),
 * another small client read is copied from it into the input, anything else is read into
 * the bufferevent's input as libevent would; then the same callbacks run. */

static void cli_event_cb(struct bufferevent *bev, short what, void *ctx);
static void up_event_cb(struct bufferevent *bev, short what, void *ctx);
static void cli_read_cb(struct bufferevent *bev, void *ctx);
static void up_read_cb(struct bufferevent *bev, void *ctx);

/* One read into bev's input: a small client read through the lane's buffer (copied into
 * a small chain, malloc's fast path, rather than a fresh READ_MAX one the next drain
 * frees), anything else in place.  Returns recv's result, its errno in *err. */
static ssize_t
read_into_input(struct session *s, struct bufferevent *bev, bool cli, int *err)
{
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer_iovec v[2];
	ssize_t n = -1;
	int nv;

	*err = ENOMEM;
	/* A socket bufferevent keeps its input's end frozen outside its own reads. */
	evbuffer_unfreeze(in, 0);
	if (cli && !s->cli_bulk) {
		n = recv(side_fd(s, bev), read_scratch, sizeof(read_scratch), 0);
		*err = errno;
		if (n > 0 && evbuffer_add(in, read_scratch, (size_t)n) != 0) {
			n = -1;
			*err = ENOMEM;
		}
	} else if ((nv = evbuffer_reserve_space(in, READ_MAX, v, 2)) > 0) {
		/* evbuffer_iovec has struct iovec's layout (libevent documents it for Unix) */
		n = sock_recv(side_fd(s, bev), v, nv);
		*err = errno;
		if (n > 0) {
			size_t left = (size_t)n;
			int used = 0;
			for (; used < nv && left > 0; used++) {
				if (v[used].iov_len > left)
					v[used].iov_len = left;
				left -= v[used].iov_len;
			}
			evbuffer_commit_space(in, v, used);
		}
	}
	evbuffer_freeze(in, 0);
	return n;
}

/* One read from bev's socket.  s may be freed when this returns. */
static void
side_readable(struct session *s, struct bufferevent *bev, bool cli)
{
	bool direct = cli ? c2s_direct_ok(s) : s2c_direct_ok(s);
	ssize_t n;
	int err;

	if (direct) {
		n = recv(side_fd(s, bev), read_scratch, sizeof(read_scratch), 0);
		err = errno;
	} else {
		n = read_into_input(s, bev, cli, &err);
	}
	if (n > 0) {
		if (cli)
			s->cli_bulk = n > (ssize_t)SMALL_READ; /* an upload: read in place from now on */
		if (!direct) {
			(cli ? cli_read_cb : up_read_cb)(bev, s);
			return;
		}
		s->t_last_ms = clock_mono_ms();
		(cli ? c2s_direct : s2c_direct)(s, read_scratch, (size_t)n);
		return;
	}
	if (n < 0 && (err == EAGAIN || err == EWOULDBLOCK || err == EINTR))
		return;
	errno = err; /* describe_event reports it */
	(cli ? cli_event_cb : up_event_cb)(
		bev, BEV_EVENT_READING | (n == 0 ? BEV_EVENT_EOF : BEV_EVENT_ERROR), s);
}

static void
cli_readable(evutil_socket_t fd, short what, void *ctx)
{
	struct session *s = ctx;

	(void)fd;
	(void)what;
	side_readable(s, s->cli, true);
}

static void
up_readable(evutil_socket_t fd, short what, void *ctx)
{
	struct session *s = ctx;

	(void)fd;
	(void)what;
	side_readable(s, s->up, false);
}

/* Starts or stops reading the client (cli) or upstream side.  False if its event could
 * not be made. */
static bool
side_read(struct session *s, bool cli, bool on)
{
	struct bufferevent *bev = cli ? s->cli : s->up;
	struct event **ev = cli ? &s->cli_rd : &s->up_rd;

	if (!on) {
		if (*ev != NULL)
			event_del(*ev);
		return true;
	}
	if (*ev == NULL) {
		*ev = event_new(s->env->base, bufferevent_getfd(bev), EV_READ | EV_PERSIST,
				cli ? cli_readable : up_readable, s);
		if (*ev == NULL)
			return false;
	}
	return event_add(*ev, NULL) == 0;
}

/* Frees the client (cli) or upstream side: its bufferevent and its read event. */
static void
side_free(struct session *s, bool cli)
{
	struct bufferevent **bev = cli ? &s->cli : &s->up;
	struct event **ev = cli ? &s->cli_rd : &s->up_rd;

	if (*ev != NULL) {
		event_free(*ev);
		*ev = NULL;
	}
	if (*bev != NULL) {
		bufferevent_free(*bev);
		*bev = NULL;
		*(cli ? &s->cli_fd : &s->up_fd) = -1;
	}
}

/* ---- bufferevent callbacks ----------------------------------------------------------- */

static void
maybe_free(struct session *s);

static void
cli_read_cb(struct bufferevent *bev, void *ctx)
{
	struct session *s = ctx;

	(void)bev;
	s->t_last_ms = clock_mono_ms();
	process_c2s(s);
}

static void
up_read_cb(struct bufferevent *bev, void *ctx)
{
	struct session *s = ctx;

	(void)bev;
	s->t_last_ms = clock_mono_ms();
	process_s2c(s);
}

static void
write_cb(struct bufferevent *bev, void *ctx)
{
	struct session *s = ctx;

	if (s->phase == SP_CLOSING) {
		if (evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
			side_free(s, bev == s->cli);
			maybe_free(s);
		}
		return;
	}
	release_pressure(s, bev);
}

static void
describe_event(short what, const char *who, char *out, size_t len)
{
	int err = EVUTIL_SOCKET_ERROR();

	if (what & BEV_EVENT_EOF)
		snprintf(out, len, "%s closed the connection", who);
	else if (what & BEV_EVENT_TIMEOUT)
		snprintf(out, len, "%s timed out", who);
	else
		snprintf(out, len, "%s socket error: %s", who, err ? strerror(err) : "unknown");
}

static void
cli_event_cb(struct bufferevent *bev, short what, void *ctx)
{
	struct session *s = ctx;
	char why[200];
	unsigned pending = s->conv ? wire_conv_pending(s->conv) : 0;

	/* The client is gone: its socket can take no more bytes. */
	(void)bev;
	side_free(s, true);
	if (s->phase == SP_CLOSING) {
		maybe_free(s);
		return;
	}
	if ((what & BEV_EVENT_EOF) && s->quit_seen)
		snprintf(why, sizeof(why), "client quit");
	else if (s->auth_err[0] != '\0')
		snprintf(why, sizeof(why), "%s", s->auth_err);
	else if (pending > 0 && s->phase == SP_COMMAND)
		snprintf(why, sizeof(why), "client went away mid-response (%u command%s pending)",
			 pending, pending == 1 ? "" : "s");
	else
		describe_event(what, "client", why, sizeof(why));
	session_end(s, why);
}

static void
connect_failed(struct session *s, short what)
{
	char msg[300];
	int err = EVUTIL_SOCKET_ERROR();

	snprintf(msg, sizeof(msg), "routetrace: cannot connect to upstream %s: %s",
		 s->cfg->upstream.text,
		 (what & BEV_EVENT_TIMEOUT) ? "connect timed out" : (err ? strerror(err) : "error"));
	side_free(s, false);
	/* seq 0: no greeting was sent, this ERR stands in for it. */
	send_err_and_end(s, 0, msg);
}

static void
set_nodelay(struct bufferevent *bev)
{
	int fd = (int)bufferevent_getfd(bev), one = 1;

	if (fd >= 0)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static void
up_event_cb(struct bufferevent *bev, short what, void *ctx)
{
	struct session *s = ctx;
	char why[240];

	if (s->phase == SP_CONNECTING) {
		if (what & BEV_EVENT_CONNECTED) {
			if (s->cfg->upstream.family != AF_UNIX)
				set_nodelay(bev);
			if (!s->up_paused && !side_read(s, false, true)) {
				connect_failed(s, BEV_EVENT_ERROR);
				return;
			}
			s->phase = SP_HANDSHAKE;
			arm_timer(s);
			return;
		}
		connect_failed(s, what);
		return;
	}
	/* Bytes that arrived with the close (an auth ERR, a last result) still reach the client. */
	if (s->phase != SP_CLOSING && evbuffer_get_length(bufferevent_get_input(bev)) > 0 &&
	    !process_s2c(s))
		return;
	side_free(s, false);
	if (s->phase == SP_CLOSING) {
		maybe_free(s);
		return;
	}
	if (s->auth_err[0] != '\0')
		snprintf(why, sizeof(why), "%s", s->auth_err);
	else if (s->quit_seen)
		snprintf(why, sizeof(why), "client quit");
	else
		describe_event(what, "upstream", why, sizeof(why));
	session_end(s, why);
}

/* ---- timers ---------------------------------------------------------------------- */

static void
timer_cb(evutil_socket_t fd, short what, void *ctx)
{
	struct session *s = ctx;
	uint64_t now = clock_mono_ms(), idle_ms = (uint64_t)s->cfg->idle_timeout_s * 1000u;
	char why[120];

	(void)fd;
	(void)what;
	switch (s->phase) {
	case SP_CONNECTING:
		connect_failed(s, BEV_EVENT_TIMEOUT);
		return;
	case SP_HANDSHAKE:
		snprintf(why, sizeof(why), "handshake not finished within %" PRId64 " ms",
			 s->cfg->handshake_timeout_ms);
		session_end(s, why);
		return;
	case SP_COMMAND:
	case SP_OPAQUE:
		if (now - s->t_last_ms >= idle_ms &&
		    (s->phase == SP_OPAQUE || wire_conv_pending(s->conv) == 0)) {
			snprintf(why, sizeof(why), "idle for %" PRId64 " s", s->cfg->idle_timeout_s);
			session_end(s, why);
			return;
		}
		arm_timer(s);
		return;
	case SP_CLOSING:
		side_free(s, true);
		side_free(s, false);
		maybe_free(s);
		return;
	}
}

static void
arm_timer(struct session *s)
{
	uint64_t ms = 0, now = clock_mono_ms(), elapsed = now - s->t_open_ms;
	struct timeval tv;

	switch (s->phase) {
	case SP_CONNECTING:
		ms = (uint64_t)s->cfg->connect_timeout_ms;
		break;
	case SP_HANDSHAKE: {
		uint64_t hs = (uint64_t)s->cfg->handshake_timeout_ms;

		ms = elapsed < hs ? hs - elapsed : 1;
		break;
	}
	case SP_COMMAND:
	case SP_OPAQUE: {
		uint64_t idle = (uint64_t)s->cfg->idle_timeout_s * 1000u, since = now - s->t_last_ms;

		if (idle == 0) {
			evtimer_del(s->timer);
			return;
		}
		ms = since < idle ? idle - since : idle;
		break;
	}
	case SP_CLOSING:
		ms = LINGER_S * 1000u;
		break;
	}
	tv.tv_sec = (time_t)(ms / 1000u);
	tv.tv_usec = (suseconds_t)((ms % 1000u) * 1000u);
	evtimer_add(s->timer, &tv);
}

/* ---- lifecycle -------------------------------------------------------------------- */

static void
session_free(struct session *s)
{
	struct session_env *env = s->env;

	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		env->head = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	env->active--;
	side_free(s, true);
	side_free(s, false);
	if (s->timer != NULL)
		event_free(s->timer);
	if (s->conv != NULL)
		wire_conv_free(s->conv);
	if (s->errq != NULL)
		evbuffer_free(s->errq);
	if (env->active == 0 && env->c2s_stage != NULL) {
		evbuffer_free(env->c2s_stage);
		env->c2s_stage = NULL;
	}
	cfg_unref(s->cfg);
	free(s);
	if (env->on_free != NULL)
		env->on_free(env);
}

static void
maybe_free(struct session *s)
{
	if (s->phase == SP_CLOSING && s->cli == NULL && s->up == NULL)
		session_free(s);
}

/* Keeps bev open only while it still has queued output to deliver. */
static void
close_side(struct session *s, bool cli)
{
	struct bufferevent *bev = cli ? s->cli : s->up;

	if (bev == NULL)
		return;
	side_read(s, cli, false);
	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
		side_free(s, cli);
	} else {
		bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
		bufferevent_enable(bev, EV_WRITE);
	}
}

static void
session_end(struct session *s, const char *reason)
{
	const struct session_observer *o = s->env->obs;
	uint64_t dur = clock_mono_ms() - s->t_open_ms;
	char u[100], t[100];

	if (s->phase == SP_CLOSING)
		return;
	s->phase = SP_CLOSING;
	wire_conv_close(s->conv, clock_wall_us());
	slog_info(s->tag,
		  "session close id=%" PRIu64 " client=%s user=%s target=%s c2s_bytes=%" PRIu64
		  " s2c_bytes=%" PRIu64 " commands=%" PRIu64 " duration_ms=%" PRIu64
		  "%s reason=\"%s\"",
		  s->id, s->peer, SAFE(wire_conv_user(s->conv), u), SAFE(wire_conv_target(s->conv), t),
		  s->c2s_bytes, s->s2c_bytes, s->commands,
		  dur, s->opaque ? " inspectable=no" : "", reason);
	if (o != NULL && o->on_close != NULL)
		o->on_close(s->env->obs_ctx, s, reason);
	/* Nothing is decoded while closing: release the decoder (and the command contexts
	 * it still holds) now, then the observer's per-session state. */
	wire_conv_free(s->conv);
	s->conv = NULL;
	if (o != NULL && o->on_free != NULL)
		o->on_free(s->env->obs_ctx, s);
	close_side(s, true);
	close_side(s, false);
	if (s->cli == NULL && s->up == NULL) {
		session_free(s);
		return;
	}
	arm_timer(s);
}

void
session_shutdown(struct session *s, const char *reason)
{
	session_end(s, reason);
}

void
session_shutdown_all(struct session_env *env, const char *reason)
{
	struct session *s = env->head, *next;

	for (; s != NULL; s = next) {
		next = s->next;
		session_end(s, reason);
	}
}

static bool
start_upstream(struct session *s)
{
	struct cfg_addr *ua = &s->cfg->upstream;

	s->up = bufferevent_socket_new(s->env->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (s->up == NULL)
		return false;
	bufferevent_setcb(s->up, NULL, write_cb, up_event_cb, s);
	bufferevent_enable(s->up, EV_WRITE); /* reading starts once connected */
	arm_timer(s);
	int rc = bufferevent_socket_connect(s->up, (struct sockaddr *)&ua->sa, (int)ua->salen);
	s->up_fd = (int)bufferevent_getfd(s->up); /* the socket connect made */
	if (rc != 0) {
		/* Immediate failure (e.g. ENOENT on a unix path): the event callback is not
		 * called for it by every libevent version, so report here. */
		connect_failed(s, BEV_EVENT_ERROR);
		return true;
	}
	return true;
}

static struct session *
session_alloc(struct session_env *env, struct cfg *cfg, int fd, const struct sockaddr *peer,
	      socklen_t peerlen)
{
	struct wire_limits lim = {.max_inspect = (size_t)cfg->max_inspect_bytes,
				  .max_prepared = 16384, .max_pending = 4096};
	struct session *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	s->env = env;
	s->cfg = cfg_ref(cfg);
	s->id = env->id_source != NULL ? __atomic_add_fetch(env->id_source, 1, __ATOMIC_RELAXED)
				       : ++env->next_id;
	format_peer(peer, peerlen, s->peer, sizeof(s->peer));
	snprintf(s->tag, sizeof(s->tag), "s=%" PRIu64 " %s", s->id, s->peer);
	s->t_open_ms = s->t_last_ms = clock_mono_ms();
	s->conv = wire_conv_new(on_wire_event, on_wire_free_user, s, &lim);
	s->timer = evtimer_new(env->base, timer_cb, s);
	s->cli = bufferevent_socket_new(env->base, fd, BEV_OPT_CLOSE_ON_FREE);
	s->cli_fd = fd;
	s->up_fd = -1;
	if (s->conv == NULL || s->timer == NULL || s->cli == NULL) {
		if (s->cli == NULL)
			close(fd);
		else
			bufferevent_free(s->cli);
		if (s->timer != NULL)
			event_free(s->timer);
		if (s->conv != NULL)
			wire_conv_free(s->conv);
		cfg_unref(s->cfg);
		free(s);
		return NULL;
	}
	return s;
}

bool
session_start(struct session_env *env, struct cfg *cfg, int fd, const struct sockaddr *peer,
	      socklen_t peerlen)
{
	const struct session_observer *o = env->obs;
	struct session *s = session_alloc(env, cfg, fd, peer, peerlen);

	if (s == NULL) {
		log_error("session: out of memory; client connection dropped");
		return false;
	}
	s->next = env->head;
	if (env->head != NULL)
		env->head->prev = s;
	env->head = s;
	env->active++;
	env->total++;
	if (peer->sa_family != AF_UNIX)
		set_nodelay(s->cli);
	bufferevent_setcb(s->cli, NULL, write_cb, cli_event_cb, s);
	bufferevent_enable(s->cli, EV_WRITE);
	if (!side_read(s, true, true)) {
		session_end(s, "out of memory");
		return true;
	}
	slog_info(s->tag, "session open id=%" PRIu64 " client=%s upstream=%s lane=%u", s->id,
		  s->peer, cfg->upstream.text, env->lane);
	if (o != NULL && o->on_open != NULL)
		o->on_open(env->obs_ctx, s);
	if (!start_upstream(s))
		send_err_and_end(s, 0, "routetrace: out of memory");
	return true;
}

uint64_t
session_id(const struct session *s)
{
	return s->id;
}

const char *
session_peer(const struct session *s)
{
	return s->peer;
}

const char *
session_tag(const struct session *s)
{
	return s->tag;
}

struct wire_conv *
session_conv(const struct session *s)
{
	return s->conv;
}

void
session_bytes(const struct session *s, uint64_t *c2s, uint64_t *s2c)
{
	*c2s = s->c2s_bytes;
	*s2c = s->s2c_bytes;
}

const struct cfg *
session_cfg(const struct session *s)
{
	return s->cfg;
}

void *
session_obs_data(const struct session *s)
{
	return s->obs_data;
}

void
session_set_obs_data(struct session *s, void *data)
{
	s->obs_data = data;
}
