/* tests/unit/wire_script.h: packet builders, conversation scripts and an event log for
 * the wire decoder's unit test and fuzz target (header-only, static functions). */
#ifndef RT_TESTS_WIRE_SCRIPT_H
#define RT_TESTS_WIRE_SCRIPT_H

#include "proxy/wire.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- growable byte buffer ---------------------------------------------------------- */

struct bb {
	uint8_t *p;
	size_t n, cap;
};

static inline void
bb_put(struct bb *b, const void *p, size_t n)
{
	if (b->n + n > b->cap) {
		size_t nc = b->cap ? b->cap * 2 : 256;
		while (nc < b->n + n)
			nc *= 2;
		b->p = realloc(b->p, nc);
		if (!b->p)
			abort();
		b->cap = nc;
	}
	if (n)
		memcpy(b->p + b->n, p, n);
	b->n += n;
}

static inline void
bb_u8(struct bb *b, unsigned v)
{
	uint8_t x = (uint8_t)v;
	bb_put(b, &x, 1);
}

static inline void
bb_le(struct bb *b, uint64_t v, int w)
{
	for (int i = 0; i < w; i++)
		bb_u8(b, i < 8 ? (unsigned)(v >> (8 * i)) & 0xFF : 0);
}

static inline void
bb_str(struct bb *b, const char *s)
{
	bb_put(b, s, strlen(s));
}

static inline void
bb_strz(struct bb *b, const char *s)
{
	bb_put(b, s, strlen(s) + 1);
}

static inline void
bb_lenenc(struct bb *b, uint64_t v)
{
	if (v < 0xFB) {
		bb_u8(b, (unsigned)v);
	} else if (v <= 0xFFFF) {
		bb_u8(b, 0xFC);
		bb_le(b, v, 2);
	} else if (v <= 0xFFFFFF) {
		bb_u8(b, 0xFD);
		bb_le(b, v, 3);
	} else {
		bb_u8(b, 0xFE);
		bb_le(b, v, 8);
	}
}

static inline void
bb_lstr(struct bb *b, const char *s)
{
	bb_lenenc(b, strlen(s));
	bb_str(b, s);
}

static inline void
bb_free(struct bb *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

/* ---- scripts: flights of bytes per direction ---------------------------------------- */

#define SC_MAX_STEPS 256

struct script {
	int n;
	enum wire_dir dir[SC_MAX_STEPS];
	struct bb step[SC_MAX_STEPS];
	uint8_t seq[2]; /* next seq per direction, for the helpers */
};

static inline struct bb *
sc_flight(struct script *s, enum wire_dir d)
{
	if (s->n == 0 || s->dir[s->n - 1] != d) {
		if (s->n == SC_MAX_STEPS)
			abort();
		s->dir[s->n] = d;
		memset(&s->step[s->n], 0, sizeof(s->step[0]));
		s->n++;
	}
	return &s->step[s->n - 1];
}

/* Starts a new flight even if the direction is the same. */
static inline void
sc_break(struct script *s)
{
	if (s->n == SC_MAX_STEPS)
		abort();
	s->dir[s->n] = s->dir[s->n - 1];
	memset(&s->step[s->n], 0, sizeof(s->step[0]));
	s->n++;
}

/* One logical message with explicit first seq: split into 0xFFFFFF packets (with the
 * trailing empty packet when len is a multiple).  Returns the next seq. */
static inline uint8_t
sc_msg_seq(struct script *s, enum wire_dir d, uint8_t seq, const void *payload, size_t len)
{
	struct bb *b = sc_flight(s, d);
	const uint8_t *p = payload;

	for (;;) {
		size_t k = len > 0xFFFFFF ? 0xFFFFFF : len;
		bb_le(b, k, 3);
		bb_u8(b, seq++);
		bb_put(b, p, k);
		if (k)
			p += k;
		len -= k;
		if (k < 0xFFFFFF)
			break;
	}
	return seq;
}

static inline void
sc_msg(struct script *s, enum wire_dir d, const struct bb *payload)
{
	uint8_t ns = sc_msg_seq(s, d, s->seq[0], payload->p, payload->n);
	s->seq[0] = ns;
}

/* Client command: seq restarts at 0; the response continues from it. */
static inline void
sc_cmd(struct script *s, const struct bb *payload)
{
	s->seq[0] = 0;
	sc_msg(s, WIRE_C2S, payload);
}

static inline void
sc_cmd_bytes(struct script *s, uint8_t cmd, const char *text)
{
	struct bb b = {0};
	bb_u8(&b, cmd);
	if (text)
		bb_str(&b, text);
	sc_cmd(s, &b);
	bb_free(&b);
}

static inline void
sc_srv(struct script *s, const struct bb *payload)
{
	sc_msg(s, WIRE_S2C, payload);
}

static inline void
sc_cli(struct script *s, const struct bb *payload)
{
	sc_msg(s, WIRE_C2S, payload);
}

static inline void
sc_free(struct script *s)
{
	for (int i = 0; i < s->n; i++)
		bb_free(&s->step[i]);
	s->n = 0;
}

/* ---- server payloads ------------------------------------------------------------------ */

static inline void
srv_ok(struct script *s, uint64_t affected, uint16_t status)
{
	struct bb b = {0};
	bb_u8(&b, 0);
	bb_lenenc(&b, affected);
	bb_lenenc(&b, 0);
	bb_le(&b, status, 2);
	bb_le(&b, 0, 2);
	sc_srv(s, &b);
	bb_free(&b);
}

static inline void
srv_err(struct script *s, uint16_t code, const char *state, const char *msg)
{
	struct bb b = {0};
	bb_u8(&b, 0xFF);
	bb_le(&b, code, 2);
	if (state) {
		bb_u8(&b, '#');
		bb_str(&b, state);
	}
	bb_str(&b, msg);
	sc_srv(s, &b);
	bb_free(&b);
}

static inline void
srv_eof(struct script *s, uint16_t status)
{
	struct bb b = {0};
	bb_u8(&b, 0xFE);
	bb_le(&b, 0, 2);
	bb_le(&b, status, 2);
	sc_srv(s, &b);
	bb_free(&b);
}

/* OK with a 0xFE header, with an info string so it is longer than 9 bytes. */
static inline void
srv_okfe(struct script *s, uint16_t status)
{
	struct bb b = {0};
	bb_u8(&b, 0xFE);
	bb_lenenc(&b, 0);
	bb_lenenc(&b, 0);
	bb_le(&b, status, 2);
	bb_le(&b, 0, 2);
	bb_str(&b, "info text");
	sc_srv(s, &b);
	bb_free(&b);
}

/* Result-set terminator in the negotiated form. */
static inline void
srv_term(struct script *s, bool deprecate, uint16_t status)
{
	if (deprecate)
		srv_okfe(s, status);
	else
		srv_eof(s, status);
}

static inline void
srv_coldef(struct script *s, const char *name)
{
	struct bb b = {0};
	bb_lstr(&b, "def");
	bb_lstr(&b, "db");
	bb_lstr(&b, "t");
	bb_lstr(&b, "t");
	bb_lstr(&b, name);
	bb_lstr(&b, name);
	bb_u8(&b, 0x0C);
	bb_le(&b, 33, 2);
	bb_le(&b, 255, 4);
	bb_u8(&b, 0xFD);
	bb_le(&b, 0, 2);
	bb_u8(&b, 0);
	bb_le(&b, 0, 2);
	sc_srv(s, &b);
	bb_free(&b);
}

static inline void
srv_count(struct script *s, uint64_t n)
{
	struct bb b = {0};
	bb_lenenc(&b, n);
	sc_srv(s, &b);
	bb_free(&b);
}

static inline void
srv_text_row(struct script *s, const char *v)
{
	struct bb b = {0};
	if (v)
		bb_lstr(&b, v);
	else
		bb_u8(&b, 0xFB);
	sc_srv(s, &b);
	bb_free(&b);
}

/* A text result set: ncols columns, nrows rows, terminator status. */
static inline void
srv_resultset(struct script *s, bool deprecate, unsigned ncols, unsigned nrows,
	      uint16_t status)
{
	srv_count(s, ncols);
	for (unsigned i = 0; i < ncols; i++)
		srv_coldef(s, "c");
	if (!deprecate)
		srv_eof(s, 0x0002);
	for (unsigned r = 0; r < nrows; r++)
		srv_text_row(s, r % 3 == 2 ? NULL : "value");
	srv_term(s, deprecate, status);
}

/* ---- handshake payloads ------------------------------------------------------------------ */

#define TCAPS                                                                                      \
	(WIRE_CAP_LONG_PASSWORD | WIRE_CAP_CONNECT_WITH_DB | WIRE_CAP_LOCAL_FILES |                \
	 WIRE_CAP_PROTOCOL_41 | WIRE_CAP_TRANSACTIONS | WIRE_CAP_SECURE_CONNECTION |               \
	 WIRE_CAP_MULTI_STATEMENTS | WIRE_CAP_MULTI_RESULTS | WIRE_CAP_PS_MULTI_RESULTS |          \
	 WIRE_CAP_PLUGIN_AUTH | WIRE_CAP_CONNECT_ATTRS | WIRE_CAP_PLUGIN_AUTH_LENENC)

static inline void
greeting_payload(struct bb *b, uint64_t caps, const char *version, const char *plugin)
{
	bb_u8(b, 0x0A);
	bb_strz(b, version);
	bb_le(b, 42, 4);
	bb_str(b, "abcdefgh");
	bb_u8(b, 0);
	bb_le(b, caps & 0xFFFF, 2);
	bb_u8(b, 33);
	bb_le(b, 0x0002, 2);
	bb_le(b, (caps >> 16) & 0xFFFF, 2);
	bb_u8(b, 21);
	bb_le(b, 0, 6);
	bb_le(b, caps >> 32, 4);
	bb_str(b, "ijklmnopqrst");
	bb_u8(b, 0);
	bb_strz(b, plugin);
}

static inline void
sc_greeting(struct script *s, uint64_t caps)
{
	struct bb b = {0};
	greeting_payload(&b, caps, "8.0.31-vitess", "mysql_native_password");
	s->seq[0] = 0;
	sc_srv(s, &b);
	bb_free(&b);
}

static inline void
login_payload(struct bb *b, uint64_t caps, const char *user, const char *db,
	      const char *plugin, int nattrs)
{
	bb_le(b, caps & 0xFFFFFFFF, 4);
	bb_le(b, 1 << 24, 4);
	bb_u8(b, 45);
	bb_le(b, 0, 19);
	bb_le(b, caps >> 32, 4);
	bb_strz(b, user);
	if (caps & WIRE_CAP_PLUGIN_AUTH_LENENC) {
		bb_lenenc(b, 20);
		bb_str(b, "01234567890123456789");
	} else if (caps & WIRE_CAP_SECURE_CONNECTION) {
		bb_u8(b, 20);
		bb_str(b, "01234567890123456789");
	} else {
		bb_strz(b, "pass");
	}
	if (caps & WIRE_CAP_CONNECT_WITH_DB)
		bb_strz(b, db ? db : "");
	if (caps & WIRE_CAP_PLUGIN_AUTH)
		bb_strz(b, plugin);
	if (caps & WIRE_CAP_CONNECT_ATTRS) {
		struct bb a = {0};
		for (int i = 0; i < nattrs; i++) {
			char k[16], v[16];
			snprintf(k, sizeof(k), "_key%d", i);
			snprintf(v, sizeof(v), "val%d", i);
			bb_lstr(&a, k);
			bb_lstr(&a, v);
		}
		bb_lenenc(b, a.n);
		bb_put(b, a.p, a.n);
		bb_free(&a);
	}
}

/* Greeting, login (user app, db), OK. */
static inline void
sc_handshake(struct script *s, uint64_t caps, const char *db)
{
	struct bb b = {0};

	sc_greeting(s, caps);
	login_payload(&b, caps | (db ? WIRE_CAP_CONNECT_WITH_DB : 0), "app", db,
		      "mysql_native_password", 2);
	sc_cli(s, &b);
	bb_free(&b);
	srv_ok(s, 0, 0x0002);
}

/* ---- event log ---------------------------------------------------------------------------- */

struct ev_log {
	struct bb text;
	unsigned commands, results, ends, frees, blocked;
	int outstanding;       /* user contexts handed out and not yet seen at RESPONSE_END */
	const char *block_prefix; /* block commands whose text starts with this */
	bool block_all;
	bool block_notext;     /* block commands without text too (with block_all) */
	uint8_t block_cmd;     /* block commands of this type (0, COM_SLEEP: none) */
};

static inline void
log_line(struct ev_log *l, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int k;

	va_start(ap, fmt);
	k = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (k < 0)
		return;
	bb_put(&l->text, line, (size_t)k < sizeof(line) ? (size_t)k : sizeof(line) - 1);
	bb_u8(&l->text, '\n');
}

static inline const char *
ev_name(enum wire_ev_type t)
{
	static const char *n[] = {"GREETING", "GREETING_ERR", "SSL", "LOGIN", "AUTH_OK",
				  "AUTH_ERR", "CMD", "RESULT", "END", "TARGET", "BLOCKED",
				  "ANOMALY", "RESYNC"};
	return (unsigned)t < sizeof(n) / sizeof(n[0]) ? n[t] : "?";
}

static inline enum wire_verdict
ev_cb(void *ctx, const struct wire_event *ev)
{
	struct ev_log *l = ctx;
	const struct wire_result *r = &ev->u.result;
	enum wire_verdict v = WIRE_FORWARD;

	switch (ev->type) {
	case WIRE_EV_GREETING:
		log_line(l, "GREETING %s id=%u caps=%llx st=%x plugin=%s", ev->u.greeting.version,
			 ev->u.greeting.conn_id, (unsigned long long)ev->u.greeting.caps,
			 ev->u.greeting.status,
			 ev->u.greeting.plugin ? ev->u.greeting.plugin : "-");
		break;
	case WIRE_EV_LOGIN: {
		const struct wire_login *g = &ev->u.login;
		log_line(l, "LOGIN user=%s db=%s plugin=%s caps=%llx coll=%u attrs=%u", g->user,
			 g->db ? g->db : "-", g->plugin ? g->plugin : "-",
			 (unsigned long long)g->caps, g->collation, g->attrs);
		for (unsigned i = 0; i < g->attrs && i < 16; i++)
			log_line(l, "ATTR %s=%s", g->attr_keys[i], g->attr_vals[i]);
		break;
	}
	case WIRE_EV_GREETING_ERR:
	case WIRE_EV_AUTH_ERR:
		log_line(l, "%s %u %.*s", ev_name(ev->type), ev->u.err.err_code,
			 (int)ev->u.err.message_len, ev->u.err.message ? ev->u.err.message : "");
		break;
	case WIRE_EV_COMMAND: {
		struct wire_command *c = ev->u.command;
		int *u = malloc(sizeof(int));
		if (!u)
			abort();
		*u = (int)c->seqno;
		c->user = u;
		l->outstanding++;
		l->commands++;
		log_line(l, "CMD #%llu 0x%02x text=%.*s%s stmt=%u known=%d opt=%u resp=%d",
			 (unsigned long long)c->seqno, c->cmd, (int)(c->text_len > 200 ? 200 : c->text_len),
			 c->text ? c->text : "", c->text_truncated ? "[TRUNC]" : "", c->stmt_id,
			 c->stmt_known, c->option, c->expects_response);
		if (l->block_all && (c->text || l->block_notext))
			v = WIRE_BLOCK;
		if (l->block_prefix && c->text && c->text_len >= strlen(l->block_prefix) &&
		    memcmp(c->text, l->block_prefix, strlen(l->block_prefix)) == 0)
			v = WIRE_BLOCK;
		if (l->block_cmd && c->cmd == l->block_cmd)
			v = WIRE_BLOCK;
		if (v == WIRE_BLOCK)
			log_line(l, "VERDICT block #%llu", (unsigned long long)c->seqno);
		break;
	}
	case WIRE_EV_RESULT:
		l->results++;
		log_line(l, "RESULT #%llu u=%d idx=%u err=%d code=%u state=%s msg=%.*s rs=%d rows=%llu "
			    "aff=%llu st=%x more=%d abort=%d",
			 (unsigned long long)r->seqno, r->user ? *(int *)r->user : -1, r->index,
			 r->is_error, r->err_code, r->sqlstate, (int)r->message_len,
			 r->message ? r->message : "", r->is_resultset, (unsigned long long)r->rows,
			 (unsigned long long)r->affected, r->status, r->more, r->aborted);
		break;
	case WIRE_EV_RESPONSE_END:
		l->ends++;
		log_line(l, "END #%llu u=%d n=%u err=%d abort=%d", (unsigned long long)r->seqno,
			 r->user ? *(int *)r->user : -1, r->index, r->is_error, r->aborted);
		if (r->user) {
			free(r->user);
			l->outstanding--;
		}
		break;
	case WIRE_EV_TARGET:
		log_line(l, "TARGET %s <- %s", ev->u.target.target, ev->u.target.previous);
		break;
	case WIRE_EV_BLOCKED_DUE:
		l->blocked++;
		log_line(l, "BLOCKED #%llu u=%d", (unsigned long long)ev->u.blocked.seqno,
			 ev->u.blocked.user ? *(int *)ev->u.blocked.user : -1);
		break;
	case WIRE_EV_ANOMALY:
	case WIRE_EV_RESYNC:
		log_line(l, "%s %s", ev_name(ev->type), ev->u.anomaly.what);
		break;
	default:
		log_line(l, "%s", ev_name(ev->type));
		break;
	}
	return v;
}

static inline void
ev_free_user(void *ctx, void *user)
{
	struct ev_log *l = ctx;
	l->frees++;
	l->outstanding--;
	free(user);
}

/* Feeds one flight in chunks of `chunk` bytes (0 = whole), looping on early stops, and
 * checks the feed contract: progress, and `dropping` consumption stops at its end. */
static inline bool
feed_flight(struct wire_conv *c, struct ev_log *l, enum wire_dir d, const uint8_t *p,
	    size_t n, size_t chunk, uint64_t ts)
{
	size_t off = 0;
	int idle = 0;

	while (off < n) {
		size_t k = chunk && chunk < n - off ? chunk : n - off, used = 0;
		enum wire_rc rc = wire_conv_feed(c, d, p + off, k, ts, &used);

		if (used > k)
			abort();
		if (rc != WIRE_OK) {
			log_line(l, "ERROR %s", wire_conv_error(c));
			return false;
		}
		off += used;
		idle = used ? 0 : idle + 1;
		if (idle > 2)
			abort(); /* no progress */
	}
	return true;
}

/* Feeds a whole script: `split` < 0 = whole flights; 0 = `chunk`-byte chunks;
 * otherwise each flight is fed as [0, split) then [split, n). */
static inline void
run_script(const struct script *s, struct wire_conv *c, struct ev_log *l, size_t chunk,
	   long split)
{
	for (int i = 0; i < s->n; i++) {
		const struct bb *b = &s->step[i];
		bool ok;

		if (split > 0 && (size_t)split < b->n) {
			ok = feed_flight(c, l, s->dir[i], b->p, (size_t)split, 0, (uint64_t)i) &&
			     feed_flight(c, l, s->dir[i], b->p + split, b->n - (size_t)split, 0,
					 (uint64_t)i);
		} else {
			ok = feed_flight(c, l, s->dir[i], b->p, b->n, split < 0 ? 0 : chunk,
					 (uint64_t)i);
		}
		if (!ok)
			break;
	}
}

/* ---- fuzz input format (tests/fuzz/fuzz_wire.c) -------------------------------------------
 * byte 0: options (bit0 mid-stream, bit1 block texts starting with 'd', bits 2-3 max_inspect
 * default/64/300/4096, bit4 max_pending 4).  Then chunks: h = [dir:1][n:7]; n < 127: n + 1
 * bytes follow; n == 127: a 16-bit LE length follows, then that many bytes (0 = a gap in
 * that direction). */

static inline void
script_encode(const struct script *s, uint8_t opts, struct bb *out)
{
	bb_u8(out, opts);
	for (int i = 0; i < s->n; i++) {
		const struct bb *b = &s->step[i];
		size_t off = 0;

		while (off < b->n) {
			size_t k = b->n - off > 65535 ? 65535 : b->n - off;

			bb_u8(out, (s->dir[i] == WIRE_S2C ? 0x80u : 0) | 0x7F);
			bb_le(out, k, 2);
			bb_put(out, b->p + off, k);
			off += k;
		}
	}
}

#endif /* RT_TESTS_WIRE_SCRIPT_H */
