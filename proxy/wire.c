/* proxy/wire.c: I/O-free MySQL conversation decoder (see wire.h).
 *
 * Two levels, as STYLE.md 2.5 asks: a resumable framer per direction (header bytes and
 * payload may split anywhere; a logical message is physical packets joined while
 * len == 0xFFFFFF), and a phase machine (greeting, login, auth, command, hunt,
 * opaque, closed) that looks at each logical message when it ends.  Server messages
 * are never held: only their first bytes (64, or 512 for ERR and handshake packets)
 * are copied.  Client commands that need inspection are held up to max_inspect.
 * Responses are decoded against the head of a FIFO of pending commands.
 *
 * Three fast paths stand in for the framer on the usual bytes, each doing exactly what
 * it would (the split-invariance tests and fuzz_wire hold them to that): result rows
 * back to back (row_fast), and a whole server packet or a whole command in the bytes at
 * hand (srv_pkt_whole, cmd_pkt_whole), decoded where they lie instead of being copied
 * into the framer's buffer.  A cut packet, a seq mismatch or anything unusual takes the
 * general path. */
#include "proxy/wire.h"

#include "router/sql_lex.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PKT_MAX 0xFFFFFFu
#define SRV_PFX_SMALL 64  /* OK / EOF / column count / row first bytes */
#define SRV_PFX_BIG 512   /* ERR messages and handshake packets */
#define CMD_PFX 16        /* non-held commands: stmt_id, flags, option */
#define HUNT_LOOK 16      /* payload bytes looked at to accept a resync candidate */
#define TARGET_MAX 256
#define NAME_LEN 128
#define COLS_MAX 65536u   /* more columns than any server allows = not MySQL */
#define HELD_KEEP 16384   /* held buffers above this are released after use */

enum phase { PH_GREETING, PH_LOGIN, PH_AUTH, PH_COMMAND, PH_HUNT, PH_OPAQUE, PH_CLOSED, PH_ERROR };

/* What the bytes of the current logical message are. */
enum mkind {
	MK_NONE = 0,
	MK_SERVER,  /* any server message: prefix collected, decoded at its end */
	MK_COMMAND, /* client command being collected until its event */
	MK_LOGIN,   /* HandshakeResponse / SSLRequest (held) */
	MK_AUTH,    /* client auth data (login or CHANGE_USER): opaque */
	MK_INFILE,  /* LOCAL INFILE file data */
	MK_STREAM,  /* rest of a forwarded command after its event */
	MK_DROP,    /* rest of a blocked command after its event */
	MK_IGNORE
};

/* Response states of a pending command. */
enum rstate {
	RS_FIRST, RS_COLS, RS_COL_EOF, RS_ROWS, RS_INFILE, RS_PREP_FIRST, RS_PREP_PARAMS,
	RS_PREP_PEOF, RS_PREP_COLS, RS_PREP_CEOF, RS_FIELDS, RS_STATS, RS_AUTH
};

struct framer {
	uint8_t hdr[4];
	uint8_t hdr_have;
	bool in_pkt;       /* header read, payload in progress */
	bool cont;         /* the next packet continues the current message */
	bool classified;   /* first payload byte seen */
	uint8_t kind;      /* enum mkind */
	uint8_t seq;       /* seq of the current physical packet */
	uint8_t cmd_seq;   /* command messages: next expected seq */
	uint32_t pkt_len, pkt_left, first_len;
	uint64_t msg_len;
	uint8_t *buf;      /* collected prefix / held payload */
	size_t alloc, have, cap;
};

struct pend {
	struct pend *next;
	uint8_t cmd, st;
	uint8_t seq;       /* next expected seq of this exchange */
	bool blocked, rs, auth_round, sql_trunc, last_err;
	uint64_t seqno;
	void *user;
	uint32_t left, ncols, stmt_id;
	unsigned index;
	uint64_t rows;
	char *sql;         /* PREPARE text, QUERY text (with USE), INIT_DB name, CHANGE_USER user\0db */
	size_t sql_len;
	size_t sp, st_start, st_len; /* QUERY: split position and current statement */
	bool st_valid;
};

struct stmt {
	uint32_t id;
	bool used;
	char *sql;
	size_t len;
};

struct wire_conv {
	wire_event_fn cb;
	wire_user_free_fn free_user;
	void *ctx;
	struct wire_limits lim;
	uint8_t phase;
	bool stop, closing, caps_known, target_known, multi_stmts, have_last_stmt;
	enum wire_dir cur_dir;
	uint64_t ts;
	uint8_t hs_seq;
	uint16_t status;
	uint64_t caps, greet_caps, seqno, anomalies;
	struct framer fr[2];
	struct pend *head, *tail;
	struct pend *spare;  /* one freed entry kept for the next command: no malloc/free each */
	unsigned npend;
	struct stmt *stmts;
	size_t stmt_cap, nstmts;
	uint32_t last_stmt;
	uint8_t hunt[4 + HUNT_LOOK];
	size_t hunt_have;
	char user[NAME_LEN];
	char *login_db;      /* HandshakeResponse41's database until the auth ends (owned) */
	char target[TARGET_MAX];
	char err[160];
};

/* ---- byte helpers (bounds-checked) ------------------------------------------- */

static uint32_t le16(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static uint32_t le24(const uint8_t *p) { return le16(p) | (uint32_t)p[2] << 16; }
static uint32_t le32(const uint8_t *p) { return le24(p) | (uint32_t)p[3] << 24; }

/* Reads a lenenc int at *off; false if it does not fit in n bytes or is 0xFB/0xFF. */
static bool
lenenc(const uint8_t *p, size_t n, size_t *off, uint64_t *v)
{
	size_t o = *off, w;

	if (o >= n)
		return false;
	if (p[o] < 0xFB) {
		*v = p[o];
		*off = o + 1;
		return true;
	}
	w = p[o] == 0xFC ? 2 : p[o] == 0xFD ? 3 : p[o] == 0xFE ? 8 : 0;
	if (w == 0 || n - o - 1 < w)
		return false;
	*v = 0;
	for (size_t i = 0; i < w; i++)
		*v |= (uint64_t)p[o + 1 + i] << (8 * i);
	*off = o + 1 + w;
	return true;
}

/* A NUL-terminated string at *off: sets s and len and moves past the NUL; if there is no
 * NUL, takes the rest (when `eof_ok`) or fails. */
static bool
cstr(const uint8_t *p, size_t n, size_t *off, const uint8_t **s, size_t *len, bool eof_ok)
{
	const uint8_t *z;

	if (*off > n)
		return false;
	z = memchr(p + *off, 0, n - *off);
	if (!z && !eof_ok)
		return false;
	*s = p + *off;
	*len = z ? (size_t)(z - (p + *off)) : n - *off;
	*off += *len + (z ? 1 : 0);
	return true;
}

static void
copy_str(char *dst, size_t cap, const void *src, size_t n)
{
	if (n >= cap)
		n = cap - 1;
	if (n)
		memcpy(dst, src, n);
	dst[n] = '\0';
}

static char *
dup_bytes(const void *p, size_t n)
{
	char *s = malloc(n + 1);

	if (s) {
		if (n)
			memcpy(s, p, n);
		s[n] = '\0';
	}
	return s;
}

/* ---- events ------------------------------------------------------------------- */

static enum wire_verdict
emit(struct wire_conv *c, struct wire_event *ev)
{
	ev->dir = c->cur_dir;
	ev->ts_us = c->ts;
	return c->cb(c->ctx, ev);
}

static void
anomaly(struct wire_conv *c, const char *what)
{
	struct wire_event ev = {.type = WIRE_EV_ANOMALY};

	c->anomalies++;
	ev.u.anomaly.what = what;
	emit(c, &ev);
}

static void
fail(struct wire_conv *c, const char *fmt, unsigned v)
{
	if (c->phase == PH_ERROR)
		return;
	snprintf(c->err, sizeof(c->err), fmt, v);
	c->phase = PH_ERROR;
}

static void
target_set(struct wire_conv *c, const char *t, size_t n)
{
	char nt[TARGET_MAX], prev[TARGET_MAX]; /* the event's strings live for its callback */
	struct wire_event ev = {.type = WIRE_EV_TARGET};

	copy_str(nt, sizeof(nt), t, n);
	if (c->target_known && strcmp(nt, c->target) == 0)
		return;
	memcpy(prev, c->target, sizeof(prev));
	memcpy(c->target, nt, sizeof(c->target));
	c->target_known = true;
	ev.u.target.target = c->target;
	ev.u.target.previous = prev;
	emit(c, &ev);
}

/* ---- prepared statements: open addressing, backward-shift deletion ------------ */

static size_t
stmt_slot(uint32_t id, size_t cap)
{
	return (size_t)((id * 2654435761u) & (uint32_t)(cap - 1));
}

static struct stmt *
stmt_find(struct wire_conv *c, uint32_t id)
{
	if (!c->stmt_cap)
		return NULL;
	for (size_t i = stmt_slot(id, c->stmt_cap);; i = (i + 1) & (c->stmt_cap - 1)) {
		if (!c->stmts[i].used)
			return NULL;
		if (c->stmts[i].id == id)
			return &c->stmts[i];
	}
}

static bool
stmt_grow(struct wire_conv *c)
{
	size_t ncap = c->stmt_cap ? c->stmt_cap * 2 : 16;
	struct stmt *nv = calloc(ncap, sizeof(*nv));

	if (!nv)
		return false;
	for (size_t i = 0; i < c->stmt_cap; i++) {
		size_t j;

		if (!c->stmts[i].used)
			continue;
		for (j = stmt_slot(c->stmts[i].id, ncap); nv[j].used; j = (j + 1) & (ncap - 1))
			;
		nv[j] = c->stmts[i];
	}
	free(c->stmts);
	c->stmts = nv;
	c->stmt_cap = ncap;
	return true;
}

/* Takes ownership of sql. */
static void
stmt_put(struct wire_conv *c, uint32_t id, char *sql, size_t len)
{
	struct stmt *s = stmt_find(c, id);
	size_t i;

	if (s) {
		free(s->sql);
		s->sql = sql;
		s->len = len;
		return;
	}
	if (c->nstmts >= c->lim.max_prepared) {
		anomaly(c, "prepared statement table full: statement not remembered");
		free(sql);
		return;
	}
	if ((c->nstmts + 1) * 2 > c->stmt_cap && !stmt_grow(c)) {
		free(sql);
		return;
	}
	for (i = stmt_slot(id, c->stmt_cap); c->stmts[i].used; i = (i + 1) & (c->stmt_cap - 1))
		;
	c->stmts[i] = (struct stmt){.id = id, .used = true, .sql = sql, .len = len};
	c->nstmts++;
}

static void
stmt_del(struct wire_conv *c, uint32_t id)
{
	struct stmt *s = stmt_find(c, id);
	size_t m = c->stmt_cap - 1, i, j;

	if (!s)
		return;
	free(s->sql);
	i = (size_t)(s - c->stmts);
	for (j = (i + 1) & m; c->stmts[j].used; j = (j + 1) & m) {
		size_t k = stmt_slot(c->stmts[j].id, c->stmt_cap);

		/* move j back to i unless its home slot lies cyclically in (i, j] */
		if ((j > i && (k <= i || k > j)) || (j < i && k <= i && k > j)) {
			c->stmts[i] = c->stmts[j];
			i = j;
		}
	}
	c->stmts[i].used = false;
	c->stmts[i].sql = NULL;
	c->nstmts--;
}

static void
stmt_clear(struct wire_conv *c)
{
	for (size_t i = 0; i < c->stmt_cap; i++)
		free(c->stmts[i].sql);
	free(c->stmts);
	c->stmts = NULL;
	c->stmt_cap = c->nstmts = 0;
	c->have_last_stmt = false;
}

/* ---- pending queue -------------------------------------------------------------- */

static void
pend_free(struct wire_conv *c, struct pend *e)
{
	free(e->sql);
	if (c->spare == NULL) {
		c->spare = e;
		return;
	}
	free(e);
}

/* A zeroed entry: the spare one if there is one. */
static struct pend *
pend_new(struct wire_conv *c)
{
	struct pend *e = c->spare;

	if (e == NULL)
		return calloc(1, sizeof(*e));
	c->spare = NULL;
	memset(e, 0, sizeof(*e));
	return e;
}

static void
pend_push(struct wire_conv *c, struct pend *e)
{
	if (c->tail)
		c->tail->next = e;
	else
		c->head = e;
	c->tail = e;
	c->npend++;
}

static struct pend *
pend_pop(struct wire_conv *c)
{
	struct pend *e = c->head;

	if (e) {
		c->head = e->next;
		if (!c->head)
			c->tail = NULL;
		c->npend--;
	}
	return e;
}

static void
result_init(struct wire_result *r, const struct pend *e, uint16_t status)
{
	memset(r, 0, sizeof(*r));
	r->cmd = e->cmd;
	r->seqno = e->seqno;
	r->index = e->index;
	r->user = e->user;
	r->status = status;
}

/* Blocked commands whose turn came: the caller answers them now. */
static void
drain_blocked(struct wire_conv *c)
{
	while (!c->closing && c->head && c->head->blocked) {
		struct pend *e = pend_pop(c);
		struct wire_event ev = {.type = WIRE_EV_BLOCKED_DUE};

		ev.u.blocked.user = e->user;
		ev.u.blocked.cmd = e->cmd;
		ev.u.blocked.seqno = e->seqno;
		emit(c, &ev);
		ev.type = WIRE_EV_RESPONSE_END;
		result_init(&ev.u.result, e, c->status);
		ev.u.result.index = 0;
		emit(c, &ev);
		pend_free(c, e);
		if (c->cur_dir == WIRE_S2C)
			c->stop = true; /* let the caller relay what came before the ERR it writes */
	}
}

/* The head's response is over. */
static void
resp_end(struct wire_conv *c, bool aborted)
{
	struct pend *e = pend_pop(c);
	struct wire_event ev;

	ev.type = WIRE_EV_RESPONSE_END;
	result_init(&ev.u.result, e, c->status);
	ev.u.result.index = e->index;
	ev.u.result.is_error = e->last_err;
	ev.u.result.aborted = aborted;
	emit(c, &ev);
	pend_free(c, e);
	drain_blocked(c);
}

static void
abort_all(struct wire_conv *c)
{
	c->closing = true;
	while (c->head) {
		struct pend *e = c->head;
		struct wire_event ev = {.type = WIRE_EV_RESULT};

		if (!e->blocked) {
			result_init(&ev.u.result, e, c->status);
			ev.u.result.aborted = true;
			ev.u.result.is_resultset = e->rs;
			ev.u.result.rows = e->rows;
			emit(c, &ev);
			e->index++;
		}
		resp_end(c, true);
	}
	c->closing = false;
}

/* ---- USE tracking inside a COM_QUERY ------------------------------------------------ */

static bool
query_next_stmt(struct pend *e)
{
	e->st_valid = e->sql && sql_split_next(e->sql, e->sql_len, &e->sp, &e->st_start,
					      &e->st_len);
	return e->st_valid;
}

/* CALL produces several results (its result sets, then an OK): the statement only
 * ends at a non-result-set result. */
static bool
stmt_is_call(const char *s, size_t n)
{
	static const char kw[] = "call";
	char d;

	if (n < 4)
		return false;
	for (size_t i = 0; i < 4; i++)
		if ((s[i] | 0x20) != kw[i])
			return false;
	if (n == 4)
		return true;
	d = s[4];
	return !((d >= 'a' && d <= 'z') || (d >= 'A' && d <= 'Z') || (d >= '0' && d <= '9') ||
		 d == '_' || d == '$' || (unsigned char)d >= 0x80);
}

/* One result of a COM_QUERY ended: apply a USE that the server accepted, then move to
 * the statement the next result belongs to. */
static void
query_result(struct wire_conv *c, struct pend *e, bool ok, bool rs)
{
	const char *s;
	char t[TARGET_MAX];

	if (!e->st_valid)
		return;
	s = e->sql + e->st_start;
	/* a statement cut by the inspection cap is not trusted */
	bool cut = e->sql_trunc && e->st_start + e->st_len >= e->sql_len;
	if (ok && !rs && !cut && sql_use_target(s, e->st_len, t, sizeof(t)))
		target_set(c, t, strlen(t));
	if (rs && stmt_is_call(s, e->st_len))
		return;
	query_next_stmt(e);
}

/* ---- server responses -------------------------------------------------------------- */

/* Parses OK (0x00 or 0xFE header): two lenencs, then status if present. */
static void
parse_ok(struct wire_conv *c, const struct framer *f, struct wire_result *r)
{
	size_t off = 1, n = f->have;
	uint64_t a = 0, id = 0;

	if (lenenc(f->buf, n, &off, &a) && lenenc(f->buf, n, &off, &id)) {
		r->affected = a;
		r->last_insert_id = id;
		if (n - off >= 2) {
			c->status = (uint16_t)le16(f->buf + off);
			r->status = c->status;
		}
	}
}

/* A 0xFE terminator: EOF (5 bytes) or OK with a 0xFE header (7 or more). */
static void
parse_term(struct wire_conv *c, const struct framer *f, struct wire_result *r)
{
	if (f->msg_len < 7) {
		if (f->have >= 5) {
			c->status = (uint16_t)le16(f->buf + 3);
			r->status = c->status;
		}
		return;
	}
	parse_ok(c, f, r);
}

static void
parse_err(const struct framer *f, struct wire_result *r)
{
	size_t off = 3;

	if (f->have < 3)
		return;
	r->is_error = true;
	r->err_code = (uint16_t)le16(f->buf + 1);
	if (f->have >= 9 && f->buf[3] == '#') {
		memcpy(r->sqlstate, f->buf + 4, 5);
		r->sqlstate[5] = '\0';
		off = 9;
	}
	r->message = (const char *)f->buf + off;
	r->message_len = f->have - off;
}

static bool
is_progress(const struct framer *f)
{
	return f->have >= 3 && f->buf[0] == 0xFF && le16(f->buf + 1) == 0xFFFF;
}

/* Side effects of a successful single result, by command. */
static void
ok_effects(struct wire_conv *c, struct pend *e, bool rs)
{
	switch (e->cmd) {
	case WIRE_COM_QUERY:
		query_result(c, e, true, rs);
		break;
	case WIRE_COM_INIT_DB:
		if (e->sql)
			target_set(c, e->sql, e->sql_len);
		break;
	case WIRE_COM_RESET_CONNECTION:
		stmt_clear(c);
		target_set(c, "", 0);
		break;
	case WIRE_COM_SET_OPTION:
		if (e->stmt_id <= 1)
			c->multi_stmts = e->stmt_id == 0;
		break;
	default:
		break;
	}
}

/* Emits the RESULT for the head; ends the response unless another result follows. */
static void
result_done(struct wire_conv *c, struct pend *e, struct wire_result *r)
{
	struct wire_event ev; /* not zeroed: a statement's events write only their member */

	if (!r->is_error)
		ok_effects(c, e, r->is_resultset);
	else if (e->cmd == WIRE_COM_QUERY)
		query_result(c, e, false, false);
	r->more = !r->is_error && (r->status & WIRE_STATUS_MORE_RESULTS);
	ev.type = WIRE_EV_RESULT;
	ev.u.result = *r;
	emit(c, &ev);
	e->last_err = r->is_error;
	e->index++;
	if (r->more) {
		e->st = RS_FIRST;
		e->rs = false;
		e->rows = 0;
		return;
	}
	resp_end(c, false);
}

static void
resp_simple(struct wire_conv *c, struct pend *e, const struct framer *f, bool term)
{
	struct wire_result r;

	result_init(&r, e, c->status);
	r.is_resultset = e->rs;
	r.rows = e->rows;
	if (f->have && f->buf[0] == 0xFF && !term)
		parse_err(f, &r);
	else if (term)
		parse_term(c, f, &r);
	else
		parse_ok(c, f, &r);
	result_done(c, e, &r);
}

static void
learn_deprecate(struct wire_conv *c, bool on)
{
	if (c->caps_known)
		return;
	c->caps_known = true;
	if (on)
		c->caps |= WIRE_CAP_DEPRECATE_EOF;
	else
		c->caps &= ~WIRE_CAP_DEPRECATE_EOF;
}

static bool
deprecate_eof(const struct wire_conv *c)
{
	return c->caps_known && (c->caps & WIRE_CAP_DEPRECATE_EOF);
}

static void
prep_after_params(struct wire_conv *c, struct pend *e)
{
	if (e->ncols) {
		e->st = RS_PREP_COLS;
		e->left = e->ncols;
		return;
	}
	struct wire_result r;
	result_init(&r, e, c->status);
	result_done(c, e, &r);
}

static void
prep_ok(struct wire_conv *c, struct pend *e, const struct framer *f)
{
	uint32_t id = le32(f->buf + 1), nparams = le16(f->buf + 7);

	e->ncols = le16(f->buf + 5);
	e->stmt_id = id;
	if (e->sql) {
		stmt_put(c, id, e->sql, e->sql_len);
		e->sql = NULL;
	}
	c->last_stmt = id;
	c->have_last_stmt = true;
	if (nparams) {
		e->st = RS_PREP_PARAMS;
		e->left = nparams;
		return;
	}
	prep_after_params(c, e);
}

static void
change_user_ok(struct wire_conv *c, struct pend *e, const struct framer *f)
{
	struct wire_result r;

	result_init(&r, e, c->status);
	parse_ok(c, f, &r);
	if (e->sql) {
		size_t ul = strlen(e->sql);

		copy_str(c->user, sizeof(c->user), e->sql, ul);
		stmt_clear(c);
		target_set(c, e->sql + ul + 1, strlen(e->sql + ul + 1));
	}
	result_done(c, e, &r);
}

/* A column count; false (and WIRE_ERROR) when it is not a sane one. */
static bool
start_resultset(struct wire_conv *c, struct pend *e, const struct framer *f)
{
	size_t off = 0;
	uint64_t n = 0;

	if (!lenenc(f->buf, f->have, &off, &n) || n == 0 || n > COLS_MAX) {
		fail(c, "implausible column count (first byte 0x%02x)", f->buf[0]);
		return false;
	}
	e->st = RS_COLS;
	e->left = (uint32_t)n;
	e->rs = true;
	e->rows = 0;
	/* MariaDB cache metadata: a flag byte follows the count; 0 = no column definitions */
	if ((c->caps & WIRE_CAP_MARIADB_CACHE_METADATA) && off < f->have && f->buf[off] == 0)
		e->st = deprecate_eof(c) ? RS_ROWS : RS_COL_EOF;
	return true;
}

static void
cols_done(struct wire_conv *c, struct pend *e)
{
	e->st = deprecate_eof(c) ? RS_ROWS : RS_COL_EOF;
}

/* Decodes one server message against the head.  Returns true when the message belongs
 * to the next command (it must be decoded again against the new head). */
static bool
resp_msg(struct wire_conv *c, struct pend *e, const struct framer *f)
{
	uint8_t b = f->have ? f->buf[0] : 0;
	bool term = b == 0xFE && f->first_len < PKT_MAX && f->msg_len > 0;
	bool eof5 = term && f->msg_len < 7;

	if (f->msg_len == 0 && e->st != RS_COLS && e->st != RS_PREP_PARAMS &&
	    e->st != RS_PREP_COLS && e->st != RS_ROWS) {
		anomaly(c, "empty server packet");
		return false;
	}
	if (b == 0xFF && is_progress(f) && e->st != RS_COLS && e->st != RS_PREP_COLS &&
	    e->st != RS_PREP_PARAMS && e->st != RS_AUTH)
		return false; /* MariaDB progress report: not an end */
	switch (e->st) {
	case RS_INFILE:
		anomaly(c, "server packet during LOCAL INFILE upload");
		e->st = RS_FIRST;
		/* fall through */
	case RS_FIRST:
		if (b == 0x00 || b == 0xFF || term)
			resp_simple(c, e, f, term);
		else if (b == 0xFB)
			e->st = RS_INFILE;
		else
			start_resultset(c, e, f);
		return false;
	case RS_COLS:
		if (--e->left == 0)
			cols_done(c, e);
		return false;
	case RS_COL_EOF:
		if (eof5) {
			learn_deprecate(c, false);
			struct wire_result r;
			result_init(&r, e, c->status);
			parse_term(c, f, &r);
			if (r.status & WIRE_STATUS_CURSOR_EXISTS) {
				r.is_resultset = true;
				result_done(c, e, &r);
			} else {
				e->st = RS_ROWS;
			}
			return false;
		}
		if (b == 0xFF) {
			resp_simple(c, e, f, false);
			return false;
		}
		if (c->caps_known)
			anomaly(c, "no EOF after column definitions");
		learn_deprecate(c, true);
		e->st = RS_ROWS; /* this packet is a row or the terminator */
		/* fall through */
	case RS_ROWS:
		if (term || b == 0xFF)
			resp_simple(c, e, f, term);
		else
			e->rows++;
		return false;
	case RS_FIELDS:
		if (term || b == 0xFF)
			resp_simple(c, e, f, term);
		else
			e->rows++;
		return false;
	case RS_STATS: {
		struct wire_result r;
		result_init(&r, e, c->status);
		if (b == 0xFF)
			parse_err(f, &r);
		result_done(c, e, &r);
		return false;
	}
	case RS_AUTH:
		if (b == 0x00)
			change_user_ok(c, e, f);
		else if (b == 0xFF)
			resp_simple(c, e, f, false);
		else
			e->auth_round = true;
		return false;
	case RS_PREP_FIRST:
		if (b == 0x00 && f->have >= 12) {
			prep_ok(c, e, f);
			return false;
		}
		if (b != 0xFF)
			anomaly(c, "unexpected STMT_PREPARE response");
		e->st = RS_FIRST;
		return resp_msg(c, e, f);
	case RS_PREP_PARAMS:
		if (--e->left == 0) {
			if (deprecate_eof(c))
				prep_after_params(c, e);
			else
				e->st = RS_PREP_PEOF;
		}
		return false;
	case RS_PREP_PEOF:
		if (eof5) {
			learn_deprecate(c, false);
			prep_after_params(c, e);
			return false;
		}
		if (c->caps_known)
			anomaly(c, "no EOF after parameter definitions");
		learn_deprecate(c, true);
		if (e->ncols) {
			prep_after_params(c, e);
			return resp_msg(c, e, f); /* it is the first column definition */
		}
		prep_after_params(c, e);
		return true;
	case RS_PREP_COLS:
		if (--e->left == 0) {
			if (deprecate_eof(c)) {
				struct wire_result r;
				result_init(&r, e, c->status);
				result_done(c, e, &r);
			} else {
				e->st = RS_PREP_CEOF;
			}
		}
		return false;
	case RS_PREP_CEOF: {
		struct wire_result r;
		bool mine = eof5;

		if (mine)
			learn_deprecate(c, false);
		else {
			if (c->caps_known)
				anomaly(c, "no EOF after column definitions");
			learn_deprecate(c, true);
		}
		result_init(&r, e, c->status);
		if (mine)
			parse_term(c, f, &r);
		result_done(c, e, &r);
		return !mine;
	}
	default:
		return false;
	}
}

/* ---- handshake ------------------------------------------------------------------------ */

static void
greeting(struct wire_conv *c, const struct framer *f)
{
	const uint8_t *p = f->buf, *ver = NULL, *plug = NULL;
	size_t n = f->have, off = 1, vlen = 0, plen = 0;
	char vbuf[NAME_LEN], pbuf[NAME_LEN];
	struct wire_event ev = {.type = WIRE_EV_GREETING};
	uint64_t caps;

	if (n && p[0] == 0xFF) {
		ev.type = WIRE_EV_GREETING_ERR;
		if (n >= 3) {
			ev.u.err.err_code = (uint16_t)le16(p + 1);
			off = n >= 9 && p[3] == '#' ? 9 : 3;
			ev.u.err.message = (const char *)p + off;
			ev.u.err.message_len = n - off;
		}
		c->phase = PH_CLOSED;
		emit(c, &ev);
		return;
	}
	if (!n || p[0] != 0x0A) {
		fail(c, "not MySQL: greeting protocol byte 0x%02x", n ? p[0] : 0);
		return;
	}
	if (!cstr(p, n, &off, &ver, &vlen, false) || n - off < 15) {
		fail(c, "malformed server greeting (%u bytes)", (unsigned)f->msg_len);
		return;
	}
	ev.u.greeting.conn_id = le32(p + off);
	off += 13;
	caps = le16(p + off);
	off += 2;
	if (n - off >= 16) {
		c->status = (uint16_t)le16(p + off + 1);
		caps |= (uint64_t)le16(p + off + 3) << 16;
		unsigned alen = p[off + 5];
		if (!(caps & WIRE_CAP_LONG_PASSWORD))
			caps |= (uint64_t)le32(p + off + 12) << 32;
		off += 16;
		if (caps & WIRE_CAP_SECURE_CONNECTION)
			off += alen > 21 ? alen - 8 : 13;
		if ((caps & WIRE_CAP_PLUGIN_AUTH) && off < n)
			cstr(p, n, &off, &plug, &plen, true);
	}
	copy_str(vbuf, sizeof(vbuf), ver, vlen);
	ev.u.greeting.version = vbuf;
	if (plug) {
		copy_str(pbuf, sizeof(pbuf), plug, plen);
		ev.u.greeting.plugin = pbuf;
	}
	ev.u.greeting.caps = caps;
	ev.u.greeting.status = c->status;
	c->greet_caps = caps;
	c->phase = PH_LOGIN;
	emit(c, &ev);
}

/* Appends a NUL-terminated copy of s to the scratch area at *w. */
static const char *
scratch_str(char **w, const uint8_t *s, size_t n)
{
	char *r = *w;

	if (n)
		memcpy(r, s, n);
	r[n] = '\0';
	*w += n + 1;
	return r;
}

/* The login fields after user: auth data, db, plugin, attrs.  False if malformed. */
static bool
login_fields(struct wire_conv *c, const uint8_t *p, size_t n, size_t off, char **w,
	     struct wire_login *lg)
{
	const uint8_t *s;
	size_t sl;
	uint64_t v;

	if (c->caps & WIRE_CAP_PLUGIN_AUTH_LENENC) {
		if (!lenenc(p, n, &off, &v) || v > n - off)
			return false;
		off += (size_t)v;
	} else if (c->caps & WIRE_CAP_SECURE_CONNECTION) {
		if (off >= n || p[off] > n - off - 1)
			return false;
		off += 1 + (size_t)p[off];
	} else if (!cstr(p, n, &off, &s, &sl, true)) {
		return false;
	}
	if (c->caps & WIRE_CAP_CONNECT_WITH_DB) {
		if (!cstr(p, n, &off, &s, &sl, true))
			return false;
		lg->db = scratch_str(w, s, sl);
	}
	if ((c->caps & WIRE_CAP_PLUGIN_AUTH) && off < n) {
		cstr(p, n, &off, &s, &sl, true);
		lg->plugin = scratch_str(w, s, sl);
	}
	if ((c->caps & WIRE_CAP_CONNECT_ATTRS) && off < n) {
		size_t end;
		if (!lenenc(p, n, &off, &v) || v > n - off)
			return false;
		end = off + (size_t)v;
		while (off < end) {
			uint64_t kl, vl;
			size_t ko;
			if (!lenenc(p, end, &off, &kl) || kl > end - off)
				return false;
			ko = off;
			off += (size_t)kl;
			if (!lenenc(p, end, &off, &vl) || vl > end - off)
				return false;
			if (lg->attrs < 16) {
				lg->attr_keys[lg->attrs] = scratch_str(w, p + ko, (size_t)kl);
				lg->attr_vals[lg->attrs] = scratch_str(w, p + off, (size_t)vl);
			}
			lg->attrs++;
			off += (size_t)vl;
		}
	}
	return true;
}

static void
login(struct wire_conv *c, const struct framer *f)
{
	const uint8_t *p = f->buf, *us = NULL;
	size_t n = f->have, off = 32, ul = 0;
	struct wire_event ev = {.type = WIRE_EV_LOGIN};
	uint64_t cc;
	char *scratch, *w;

	if (n < 2) {
		fail(c, "malformed HandshakeResponse (%u bytes)", (unsigned)n);
		return;
	}
	cc = n >= 4 ? le32(p) : le16(p);
	if ((cc & WIRE_CAP_SSL) && (f->msg_len == 32 || (f->msg_len == 5 &&
							  !(cc & WIRE_CAP_PROTOCOL_41)))) {
		c->phase = PH_OPAQUE;
		ev.type = WIRE_EV_SSL_REQUEST;
		emit(c, &ev);
		c->stop = true;
		return;
	}
	if (!(cc & WIRE_CAP_PROTOCOL_41)) {
		/* HandshakeResponse320: relayed, not decoded */
		c->caps = c->greet_caps & (uint64_t)le16(p);
		c->caps_known = true;
		c->phase = PH_AUTH;
		anomaly(c, "HandshakeResponse320 (pre-4.1 client): login not decoded");
		return;
	}
	if (n < 32) {
		fail(c, "malformed HandshakeResponse41 (%u bytes)", (unsigned)n);
		return;
	}
	if (!(cc & WIRE_CAP_LONG_PASSWORD))
		cc |= (uint64_t)le32(p + 28) << 32;
	c->caps = c->greet_caps & cc;
	c->caps_known = true;
	c->phase = PH_AUTH;
	scratch = malloc(n + 40);
	if (!scratch) {
		fail(c, "out of memory decoding the login (%u bytes)", (unsigned)n);
		return;
	}
	w = scratch;
	ev.u.login.caps = c->caps;
	ev.u.login.collation = p[8];
	cstr(p, n, &off, &us, &ul, true);
	ev.u.login.user = scratch_str(&w, us, ul);
	copy_str(c->user, sizeof(c->user), us, ul);
	if (!login_fields(c, p, n, off, &w, &ev.u.login))
		anomaly(c, "malformed HandshakeResponse41 fields");
	free(c->login_db);
	c->login_db = NULL;
	if (ev.u.login.db && ev.u.login.db[0] && (c->login_db = strdup(ev.u.login.db)) == NULL) {
		fail(c, "out of memory holding the login database (%u bytes)", (unsigned)strlen(ev.u.login.db));
		free(scratch);
		return;
	}
	emit(c, &ev);
	free(scratch);
	c->stop = true;
}

static void
auth_msg(struct wire_conv *c, const struct framer *f)
{
	struct wire_event ev = {.type = WIRE_EV_AUTH_OK};
	uint8_t b = f->have ? f->buf[0] : 0x01;

	if (b == 0x00) {
		struct wire_result r;
		memset(&r, 0, sizeof(r));
		parse_ok(c, f, &r);
		ev.u.result = r;
		ev.u.result.status = c->status;
		c->phase = PH_COMMAND;
		emit(c, &ev);
		target_set(c, c->login_db ? c->login_db : "", c->login_db ? strlen(c->login_db) : 0);
		free(c->login_db);
		c->login_db = NULL;
	} else if (b == 0xFF) {
		ev.type = WIRE_EV_AUTH_ERR;
		if (f->have >= 3) {
			size_t off = f->have >= 9 && f->buf[3] == '#' ? 9 : 3;
			ev.u.err.err_code = (uint16_t)le16(f->buf + 1);
			ev.u.err.message = (const char *)f->buf + off;
			ev.u.err.message_len = f->have - off;
		}
		c->phase = PH_CLOSED;
		emit(c, &ev);
	}
	/* anything else: an auth round (switch, more data, raw plugin data) */
}

/* ---- client commands ------------------------------------------------------------------- */

static bool
cmd_held(uint8_t cmd)
{
	return cmd == WIRE_COM_QUERY || cmd == WIRE_COM_STMT_PREPARE || cmd == WIRE_COM_INIT_DB ||
	       cmd == WIRE_COM_CHANGE_USER;
}

static bool
cmd_opaque(uint8_t cmd)
{
	return cmd == WIRE_COM_BINLOG_DUMP || cmd == 0x1E || cmd == 0x20 || cmd == 0x21;
}

static uint8_t
cmd_first_state(uint8_t cmd)
{
	switch (cmd) {
	case WIRE_COM_STMT_PREPARE:
		return RS_PREP_FIRST;
	case WIRE_COM_FIELD_LIST:
		return RS_FIELDS;
	case WIRE_COM_STATISTICS:
		return RS_STATS;
	case WIRE_COM_CHANGE_USER:
		return RS_AUTH;
	case WIRE_COM_STMT_FETCH:
		return RS_ROWS;
	default:
		return RS_FIRST;
	}
}

/* True if some byte of the eight in w is 'u' or 'U' (b | 0x20 == 'u' holds for those two
 * only).  The zero-byte test is exact about whether there is one. */
static bool
word_has_u(uint64_t w)
{
	const uint64_t ones = 0x0101010101010101ull;
	uint64_t x = (w | ones * 0x20) ^ (ones * 'u');

	return ((x - ones) & ~x & (ones * 0x80)) != 0;
}

/* Cheap filter before splitting: no "use" anywhere means no USE statement.  Every
 * query goes through it, so blocks of eight bytes without a 'u' are skipped at once. */
static bool
maybe_use(const uint8_t *p, size_t n)
{
	size_t i = 0;

	while (i + 2 < n) {
		size_t end = n - 2;
		uint64_t w;

		if (i + 8 <= n) {
			memcpy(&w, p + i, sizeof(w));
			if (!word_has_u(w)) {
				i += 8;
				continue;
			}
			end = i + 8 < end ? i + 8 : end;
		}
		for (; i < end; i++)
			if ((p[i] | 0x20) == 'u' && (p[i + 1] | 0x20) == 's' &&
			    (p[i + 2] | 0x20) == 'e')
				return true;
	}
	return false;
}

static bool
query_has_use(const uint8_t *p, size_t n)
{
	size_t pos = 0, st, len;
	char t[8];

	if (!maybe_use(p, n))
		return false;
	while (sql_split_next((const char *)p, n, &pos, &st, &len))
		if (sql_use_target((const char *)p + st, len, t, sizeof(t)))
			return true;
	return false;
}

/* CHANGE_USER: user str<NUL>, auth (1-byte len or str<NUL>), db str<NUL>.  Keeps
 * "user\0db\0" in e->sql for the OK. */
static void
change_user_parse(struct wire_conv *c, struct pend *e, const uint8_t *p, size_t n,
		  struct wire_command *wc)
{
	const uint8_t *us = NULL, *db = NULL, *s;
	size_t off = 1, ul = 0, dl = 0, sl;

	if (!cstr(p, n, &off, &us, &ul, true))
		return;
	wc->text = (const char *)us;
	wc->text_len = ul;
	if ((c->caps & WIRE_CAP_SECURE_CONNECTION) || !c->caps_known) {
		if (off < n && p[off] <= n - off - 1)
			off += 1 + (size_t)p[off];
		else
			off = n;
	} else {
		cstr(p, n, &off, &s, &sl, true);
	}
	if (off < n)
		cstr(p, n, &off, &db, &dl, true);
	e->sql = malloc(ul + dl + 2);
	if (!e->sql)
		return;
	memcpy(e->sql, us, ul);
	e->sql[ul] = '\0';
	if (dl)
		memcpy(e->sql + ul + 1, db, dl);
	e->sql[ul + 1 + dl] = '\0';
	e->sql_len = ul + dl + 1;
}

/* stmt_id commands: resolves MariaDB's -1 (the last PREPARE in command order). */
static void
stmt_ref(struct wire_conv *c, struct pend *e, const uint8_t *p, size_t n,
	 struct wire_command *wc)
{
	uint32_t id;
	struct stmt *s;

	if (n < 5)
		return;
	id = le32(p + 1);
	if (id == 0xFFFFFFFFu) {
		const struct pend *pp = NULL;
		for (const struct pend *q = c->head; q; q = q->next)
			if (q->cmd == WIRE_COM_STMT_PREPARE && !q->blocked)
				pp = q;
		if (pp && pp->sql) {
			wc->stmt_id = e->stmt_id = id;
			if (wc->cmd == WIRE_COM_STMT_EXECUTE || wc->cmd == WIRE_COM_STMT_BULK_EXECUTE) {
				wc->text = pp->sql;
				wc->text_len = pp->sql_len;
			}
			return;
		}
		if (c->have_last_stmt)
			id = c->last_stmt;
	}
	wc->stmt_id = e->stmt_id = id;
	s = stmt_find(c, id);
	if (!s)
		return;
	wc->stmt_known = true;
	if (wc->cmd == WIRE_COM_STMT_EXECUTE || wc->cmd == WIRE_COM_STMT_BULK_EXECUTE) {
		wc->text = s->sql;
		wc->text_len = s->len;
	}
}

static void
cmd_decode(struct wire_conv *c, struct pend *e, const uint8_t *p, size_t n, bool truncated,
	   struct wire_command *wc)
{
	switch (p[0]) {
	case WIRE_COM_QUERY:
	case WIRE_COM_STMT_PREPARE:
	case WIRE_COM_INIT_DB:
		wc->text = (const char *)p + 1;
		wc->text_len = n - 1;
		if (p[0] != WIRE_COM_QUERY || query_has_use(p + 1, n - 1)) {
			e->sql = dup_bytes(p + 1, n - 1);
			e->sql_len = e->sql ? n - 1 : 0;
			e->sql_trunc = truncated;
			if (p[0] == WIRE_COM_QUERY)
				query_next_stmt(e);
		}
		break;
	case WIRE_COM_CHANGE_USER:
		change_user_parse(c, e, p, n, wc);
		break;
	case WIRE_COM_STMT_EXECUTE:
	case WIRE_COM_STMT_BULK_EXECUTE:
	case WIRE_COM_STMT_SEND_LONG_DATA:
	case WIRE_COM_STMT_CLOSE:
	case WIRE_COM_STMT_RESET:
	case WIRE_COM_STMT_FETCH:
		stmt_ref(c, e, p, n, wc);
		break;
	case WIRE_COM_SET_OPTION:
		if (n >= 3)
			wc->option = (uint16_t)le16(p + 1);
		e->stmt_id = wc->option;
		break;
	default:
		break;
	}
}

/* A command is complete (or reached its inspection cap): the decision point.  p[0..n) is
 * the command as collected (its prefix when early), in the framer's buffer or, for a whole
 * packet at hand, in the caller's bytes. */
static void
cmd_emit(struct wire_conv *c, const uint8_t *p, size_t n, bool early)
{
	struct framer *f = &c->fr[WIRE_C2S];
	struct wire_command wc;
	struct wire_event ev;
	struct pend *e;
	enum wire_verdict v;

	if (c->npend >= c->lim.max_pending) {
		fail(c, "more than %u commands pipelined without a response", c->lim.max_pending);
		return;
	}
	e = pend_new(c);
	if (!e) {
		fail(c, "out of memory (%u pending commands)", c->npend);
		return;
	}
	memset(&wc, 0, sizeof(wc));
	wc.cmd = e->cmd = p[0];
	wc.seqno = e->seqno = ++c->seqno;
	wc.expects_response = p[0] != WIRE_COM_STMT_CLOSE &&
			      p[0] != WIRE_COM_STMT_SEND_LONG_DATA && p[0] != WIRE_COM_QUIT;
	wc.text_truncated = early && cmd_held(p[0]);
	cmd_decode(c, e, p, n, early, &wc);
	ev.type = WIRE_EV_COMMAND;
	ev.u.command = &wc;
	v = emit(c, &ev);
	e->user = wc.user;
	c->stop = true;
	if (early)
		f->kind = v == WIRE_BLOCK ? MK_DROP : MK_STREAM;
	if (!wc.expects_response) {
		if (v == WIRE_FORWARD && wc.cmd == WIRE_COM_STMT_CLOSE && wc.stmt_known)
			stmt_del(c, e->stmt_id);
		ev.type = WIRE_EV_RESPONSE_END;
		result_init(&ev.u.result, e, c->status);
		emit(c, &ev);
		pend_free(c, e);
		return;
	}
	if (v == WIRE_BLOCK) {
		e->blocked = true;
		pend_push(c, e);
		drain_blocked(c);
		return;
	}
	e->seq = f->cmd_seq;
	e->st = cmd_first_state(e->cmd);
	e->rs = e->st == RS_FIELDS || e->st == RS_ROWS;
	pend_push(c, e);
	if (cmd_opaque(e->cmd))
		c->phase = PH_OPAQUE;
}

/* ---- framing ------------------------------------------------------------------------------ */

#define LOGIN_CAP 65536

static uint8_t
msg_kind(const struct wire_conv *c, enum wire_dir d)
{
	const struct pend *h = c->head;

	if (d == WIRE_S2C)
		return MK_SERVER;
	switch (c->phase) {
	case PH_LOGIN:
		return MK_LOGIN;
	case PH_AUTH:
		return MK_AUTH;
	case PH_COMMAND:
		if (h && !h->blocked && h->st == RS_INFILE)
			return MK_INFILE;
		if (h && !h->blocked && h->st == RS_AUTH && h->auth_round)
			return MK_AUTH;
		return MK_COMMAND;
	default:
		return MK_IGNORE;
	}
}

static uint8_t *
seq_counter(struct wire_conv *c, struct framer *f)
{
	switch (f->kind) {
	case MK_COMMAND:
	case MK_STREAM:
	case MK_DROP:
		return &f->cmd_seq;
	case MK_LOGIN:
		return &c->hs_seq;
	case MK_AUTH:
	case MK_INFILE:
	case MK_SERVER:
		if (c->phase < PH_COMMAND)
			return &c->hs_seq;
		return c->head ? &c->head->seq : NULL;
	default:
		return NULL;
	}
}

static void
msg_reset(struct framer *f)
{
	f->have = 0;
	f->msg_len = 0;
	f->classified = false;
	f->kind = MK_NONE;
	f->cont = false;
	if (f->alloc > HELD_KEEP) {
		free(f->buf);
		f->buf = NULL;
		f->alloc = 0;
	}
}

static void
fr_reset(struct framer *f)
{
	f->hdr_have = 0;
	f->in_pkt = false;
	msg_reset(f);
}

static void
pkt_header(struct wire_conv *c, enum wire_dir d)
{
	struct framer *f = &c->fr[d];
	uint8_t *ctr;

	f->pkt_len = le24(f->hdr);
	f->seq = f->hdr[3];
	f->pkt_left = f->pkt_len;
	f->in_pkt = true;
	f->hdr_have = 0;
	if (!f->cont) {
		if (d == WIRE_C2S && c->phase == PH_GREETING) {
			fail(c, "client sent %u bytes before the server greeting", f->pkt_len);
			return;
		}
		f->first_len = f->pkt_len;
		f->msg_len = 0;
		f->have = 0;
		f->classified = false;
		f->kind = msg_kind(c, d);
		f->cap = f->kind == MK_COMMAND ? CMD_PFX : f->kind == MK_SERVER ? SRV_PFX_SMALL
			 : f->kind == MK_LOGIN ? LOGIN_CAP : 0;
		if (f->kind == MK_COMMAND)
			f->cmd_seq = 0;
	}
	ctr = seq_counter(c, f);
	if (ctr) {
		if (*ctr != f->seq && !(d == WIRE_S2C && c->phase == PH_GREETING))
			anomaly(c, "sequence id mismatch");
		*ctr = (uint8_t)(f->seq + 1);
	}
	if (f->kind == MK_STREAM && c->tail && c->tail->seqno == c->seqno)
		c->tail->seq = f->cmd_seq;
}

static bool
row_like(uint8_t st)
{
	return st == RS_ROWS || st == RS_COLS || st == RS_FIELDS || st == RS_PREP_PARAMS ||
	       st == RS_PREP_COLS;
}

/* The cap classify gives a server packet of the command phase whose first byte is b. */
static size_t
srv_cap(const struct pend *h, uint8_t b)
{
	if (b == 0xFF)
		return SRV_PFX_BIG;
	return b != 0xFE && row_like(h->st) ? 1 : SRV_PFX_SMALL;
}

static void
classify(struct wire_conv *c, struct framer *f, uint8_t b)
{
	f->classified = true;
	if (f->kind == MK_SERVER && c->phase == PH_GREETING && b != 0x0A && b != 0xFF) {
		fail(c, "not MySQL: greeting protocol byte 0x%02x", b);
		return;
	}
	if (f->kind == MK_SERVER && (c->phase != PH_COMMAND || b == 0xFF))
		f->cap = SRV_PFX_BIG;
	else if (f->kind == MK_SERVER && c->head)
		f->cap = srv_cap(c->head, b);
	else if (f->kind == MK_COMMAND && cmd_held(b))
		f->cap = c->lim.max_inspect;
}

static bool
collect(struct wire_conv *c, struct framer *f, const uint8_t *p, size_t n)
{
	size_t k;

	if (!f->classified) {
		classify(c, f, p[0]);
		if (c->phase == PH_ERROR)
			return false;
	}
	k = f->cap - f->have < n ? f->cap - f->have : n;
	if (!k)
		return true;
	if (f->have + k > f->alloc) {
		size_t na = f->alloc ? f->alloc * 2 : 256;
		uint8_t *nb;

		if (f->kind == MK_SERVER && na < SRV_PFX_BIG)
			na = SRV_PFX_BIG;
		if (na < f->have + k)
			na = f->have + k;
		if (na > f->cap)
			na = f->cap;
		nb = realloc(f->buf, na);
		if (!nb) {
			fail(c, "out of memory holding a %u-byte message", (unsigned)(f->have + k));
			return false;
		}
		f->buf = nb;
		f->alloc = na;
	}
	memcpy(f->buf + f->have, p, k);
	f->have += k;
	return true;
}

static void
srv_msg(struct wire_conv *c, const struct framer *f)
{
	unsigned guard = c->npend + 1;

	switch (c->phase) {
	case PH_GREETING:
		greeting(c, f);
		break;
	case PH_LOGIN:
		if (f->have && f->buf[0] == 0xFF)
			auth_msg(c, f);
		else
			anomaly(c, "server packet before the client's login");
		break;
	case PH_AUTH:
		auth_msg(c, f);
		break;
	case PH_COMMAND:
		while (guard--) {
			if (!c->head) {
				anomaly(c, "server packet with no command pending");
				break;
			}
			if (!resp_msg(c, c->head, f) || c->phase != PH_COMMAND)
				break;
		}
		break;
	default:
		break;
	}
}

static void
msg_end(struct wire_conv *c, enum wire_dir d)
{
	struct framer *f = &c->fr[d];

	switch (f->kind) {
	case MK_SERVER:
		srv_msg(c, f);
		break;
	case MK_COMMAND:
		if (f->msg_len == 0)
			fail(c, "empty command packet (seq %u)", f->seq);
		else
			cmd_emit(c, f->buf, f->have, false);
		break;
	case MK_LOGIN:
		login(c, f);
		break;
	case MK_INFILE:
		if (f->msg_len == 0 && c->head && c->head->st == RS_INFILE)
			c->head->st = RS_FIRST;
		break;
	case MK_DROP:
		c->stop = true;
		break;
	default:
		break;
	}
	msg_reset(f);
}

static bool
frame_live(const struct wire_conv *c)
{
	return !c->stop && c->phase != PH_ERROR && c->phase != PH_OPAQUE &&
	       c->phase != PH_CLOSED && c->phase != PH_HUNT;
}

/* The whole result-set rows at p (avail bytes at hand) while their command is in RS_ROWS:
 * does what pkt_header, classify, collect, msg_end and resp_msg would (count the row, advance
 * the exchange's seq) without them; the framer is left between packets, as they leave
 * it.  Rows are most server packets, one or more per segment.  Anything else (a seq
 * mismatch, an empty or 16 MiB packet, a first byte 0xFE or 0xFF that may end the
 * result, a packet cut by the segment) stops the run and is left to the general path.
 * Returns the bytes taken, 0 if none. */
static size_t
row_fast(struct wire_conv *c, const struct framer *f, const uint8_t *p, size_t avail)
{
	struct pend *h = c->head;
	size_t took = 0;

	if (avail < 5 || f->hdr_have != 0 || f->cont || c->phase != PH_COMMAND || h == NULL ||
	    h->blocked || h->st != RS_ROWS)
		return 0;
	/* every row in the segment in one go: a result set is mostly rows back to back
	 * (sequence id and count in registers; len - 1 wraps for an empty packet) */
	uint8_t seq = h->seq;
	uint64_t rows = 0;

	while (avail - took >= 5) {
		const uint8_t *q = p + took;
		uint32_t len = le24(q);

		if (len - 1 >= PKT_MAX - 1 || len > avail - took - 4 || q[3] != seq || q[4] >= 0xFE)
			break;
		seq++;
		rows++;
		took += 4 + (size_t)len;
	}
	h->seq = seq;
	h->rows += rows;
	return took;
}

/* The payload length of the packet at p (avail bytes at hand) when it is whole, neither
 * empty nor 16 MiB, and the framer is between messages: what the whole-packet paths
 * below may take; 0 otherwise. */
static uint32_t
whole_pkt_len(const struct framer *f, const uint8_t *p, size_t avail)
{
	if (avail < 5 || f->hdr_have != 0 || f->cont)
		return 0;
	uint32_t len = le24(p);
	return len - 1 < PKT_MAX - 1 && len <= avail - 4 ? len : 0;
}

/* A whole server packet at p (avail bytes at hand) in the command phase: does what
 * pkt_header, classify, collect and msg_end would, without copying it into the framer's
 * buffer.  The message is decoded through a framer on the stack that views the caller's
 * bytes (the decoding functions take it const: nothing writes through it), and shows no
 * more of them than collect would keep, so the events are the same however the input is
 * chunked.  The responses of the usual statement (OK, column count and definitions, the
 * terminator) are whole packets in one segment; anything else (a seq mismatch, an empty,
 * 16 MiB or cut packet, no command pending or a blocked one) is left to the general path.
 * Returns the bytes taken, 0 if none. */
static size_t
srv_pkt_whole(struct wire_conv *c, const struct framer *f, const uint8_t *p, size_t avail)
{
	struct pend *h = c->head;
	uint32_t len = whole_pkt_len(f, p, avail);

	if (len == 0 || c->phase != PH_COMMAND || h == NULL || h->blocked || p[3] != h->seq)
		return 0;
	size_t cap = srv_cap(h, p[4]);
	const struct framer v = {.kind = MK_SERVER, .seq = p[3], .classified = true,
				 .pkt_len = len, .first_len = len, .msg_len = len,
				 .buf = (uint8_t *)(uintptr_t)(p + 4), .have = len < cap ? len : cap,
				 .cap = cap};

	h->seq++;
	srv_msg(c, &v);
	return 4 + (size_t)len;
}

/* A whole command packet at p (avail bytes at hand), the usual text query or EXECUTE:
 * does what pkt_header, classify, collect and msg_end would, and decides on
 * the caller's bytes without copying them into the framer's buffer (the command event
 * points into them; its consumers copy what they keep).  A held command over its cap
 * (decided early on a truncated text), an empty, 16 MiB or cut packet, a seq other than 0
 * or a client message that is not a command (an upload, auth data) is left to the
 * general path.
 * Returns the bytes taken, 0 if none. */
static size_t
cmd_pkt_whole(struct wire_conv *c, struct framer *f, const uint8_t *p, size_t avail)
{
	uint32_t len = whole_pkt_len(f, p, avail);

	if (len == 0 || c->phase != PH_COMMAND || p[3] != 0 || msg_kind(c, WIRE_C2S) != MK_COMMAND)
		return 0;
	bool held = cmd_held(p[4]);
	size_t cap = held ? c->lim.max_inspect : CMD_PFX;
	if (held && len > cap)
		return 0;
	f->cmd_seq = 1; /* what pkt_header leaves after a command's first packet */
	/* a command that is not held (EXECUTE with its parameters) is decided on its first
	 * CMD_PFX bytes however it comes; whole, its verdict covers the whole packet, as the
	 * stream or drop of its rest would */
	cmd_emit(c, p + 4, len < cap ? len : cap, false);
	return 4 + (size_t)len;
}

/* Frames bytes of one direction; returns how many were consumed. */
static size_t
frame_bytes(struct wire_conv *c, enum wire_dir d, const uint8_t *p, size_t n)
{
	struct framer *f = &c->fr[d];
	size_t i = 0;

	while (i < n && frame_live(c)) {
		if (!f->in_pkt) {
			size_t fast = d == WIRE_S2C ? row_fast(c, f, p + i, n - i) : 0;

			if (fast == 0)
				fast = d == WIRE_S2C ? srv_pkt_whole(c, f, p + i, n - i)
						     : cmd_pkt_whole(c, f, p + i, n - i);
			if (fast != 0) {
				i += fast;
				continue;
			}
			if (f->hdr_have == 0 && n - i >= 4) {
				/* the usual case, a whole header: a fixed-size copy the compiler
				 * inlines, not a memcpy call per packet */
				memcpy(f->hdr, p + i, 4);
				f->hdr_have = 4;
				i += 4;
			} else {
				size_t take = 4u - f->hdr_have < n - i ? 4u - f->hdr_have : n - i;

				memcpy(f->hdr + f->hdr_have, p + i, take);
				f->hdr_have = (uint8_t)(f->hdr_have + take);
				i += take;
				if (f->hdr_have < 4)
					break;
			}
			pkt_header(c, d);
			if (c->phase == PH_ERROR)
				break;
		} else if (f->kind == MK_COMMAND && f->classified && f->have >= f->cap) {
			cmd_emit(c, f->buf, f->have, true); /* over the cap: decide on the prefix */
			continue;
		} else {
			size_t take = f->pkt_left < n - i ? f->pkt_left : n - i;

			if (!f->classified && f->cap) {
				classify(c, f, p[i]);
				if (c->phase == PH_ERROR)
					break;
			}
			/* a command stops at its cap so the event fires at the same byte
			 * however the input is chunked */
			if (f->kind == MK_COMMAND && take > f->cap - f->have)
				take = f->cap - f->have;
			if (f->cap && !collect(c, f, p + i, take))
				break;
			f->msg_len += take;
			f->pkt_left -= (uint32_t)take;
			i += take;
		}
		if (f->in_pkt && f->pkt_left == 0) {
			f->in_pkt = false;
			if (f->pkt_len == PKT_MAX)
				f->cont = true;
			else
				msg_end(c, d);
		}
	}
	return i;
}

/* ---- mid-stream hunting ----------------------------------------------------------------- */

static bool
text_plausible(const uint8_t *p, size_t n)
{
	uint8_t b = p[0];

	if (!((b | 0x20) >= 'a' && (b | 0x20) <= 'z') && b != '(' && b != '/' && b != '-' &&
	    b != '#' && b != ' ' && b != '\t' && b != '\n' && b != '\r' && b != '`')
		return false;
	for (size_t i = 0; i < n; i++)
		if (p[i] < 0x20 && p[i] != '\t' && p[i] != '\n' && p[i] != '\r')
			return false;
	return true;
}

/* p = the first min(len, HUNT_LOOK) payload bytes of a seq-0 packet of length len. */
static bool
cmd_plausible(const uint8_t *p, size_t n, uint32_t len)
{
	switch (p[0]) {
	case WIRE_COM_QUIT:
	case WIRE_COM_STATISTICS:
	case WIRE_COM_PING:
	case WIRE_COM_RESET_CONNECTION:
		return len == 1;
	case WIRE_COM_QUERY:
	case WIRE_COM_STMT_PREPARE:
	case WIRE_COM_INIT_DB:
		return len >= 2 && text_plausible(p + 1, n - 1);
	case WIRE_COM_STMT_EXECUTE:
		return len >= 10 && p[5] < 0x10 && le32(p + 6) == 1;
	case WIRE_COM_STMT_CLOSE:
	case WIRE_COM_STMT_RESET:
		return len == 5;
	case WIRE_COM_STMT_FETCH:
		return len == 9;
	case WIRE_COM_SET_OPTION:
		return len == 3 && p[2] == 0 && p[1] <= 1;
	case WIRE_COM_STMT_SEND_LONG_DATA:
		return len >= 7;
	default:
		return false;
	}
}

/* Consumes client bytes one at a time until a plausible command starts; then feeds the
 * candidate's bytes to the framer.  Returns bytes consumed. */
static size_t
hunt_bytes(struct wire_conv *c, const uint8_t *p, size_t n)
{
	size_t i = 0;

	while (i < n && c->phase == PH_HUNT) {
		c->hunt[c->hunt_have++] = p[i++];
		while (c->hunt_have >= 4) {
			uint32_t len = le24(c->hunt);
			size_t need = 4 + (len < HUNT_LOOK ? len : HUNT_LOOK);
			uint8_t win[sizeof(c->hunt)];
			struct wire_event ev = {.type = WIRE_EV_RESYNC};

			if (c->hunt[3] == 0 && len > 0 && c->hunt_have < need)
				break;
			if (c->hunt[3] != 0 || len == 0 || !cmd_plausible(c->hunt + 4, need - 4, len)) {
				memmove(c->hunt, c->hunt + 1, --c->hunt_have);
				continue;
			}
			memcpy(win, c->hunt, need);
			c->hunt_have = 0;
			c->phase = PH_COMMAND;
			fr_reset(&c->fr[WIRE_C2S]);
			fr_reset(&c->fr[WIRE_S2C]);
			ev.u.anomaly.what = "decoding resumed at a client command";
			emit(c, &ev);
			frame_bytes(c, WIRE_C2S, win, need);
			break;
		}
	}
	return i;
}

/* ---- public API -------------------------------------------------------------------------- */

static struct wire_conv *
conv_new(wire_event_fn cb, wire_user_free_fn free_user, void *ctx,
	 const struct wire_limits *limits)
{
	struct wire_conv *c;

	if (!cb)
		return NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->cb = cb;
	c->free_user = free_user;
	c->ctx = ctx;
	c->lim.max_inspect = 1u << 20;
	c->lim.max_prepared = 16384;
	c->lim.max_pending = 4096;
	if (limits) {
		if (limits->max_inspect)
			c->lim.max_inspect = limits->max_inspect < 64 ? 64 : limits->max_inspect;
		if (limits->max_prepared)
			c->lim.max_prepared = limits->max_prepared;
		if (limits->max_pending)
			c->lim.max_pending = limits->max_pending;
	}
	c->target_known = true;
	c->multi_stmts = true;
	return c;
}

struct wire_conv *
wire_conv_new(wire_event_fn cb, wire_user_free_fn free_user, void *ctx,
	      const struct wire_limits *limits)
{
	return conv_new(cb, free_user, ctx, limits);
}

struct wire_conv *
wire_conv_new_midstream(wire_event_fn cb, wire_user_free_fn free_user, void *ctx,
			const struct wire_limits *limits)
{
	struct wire_conv *c = conv_new(cb, free_user, ctx, limits);

	if (c) {
		c->phase = PH_HUNT;
		c->target_known = false;
		copy_str(c->user, sizeof(c->user), "unknown", 7);
	}
	return c;
}

void
wire_conv_free(struct wire_conv *c)
{
	if (!c)
		return;
	while (c->head) {
		struct pend *e = pend_pop(c);

		if (c->free_user && e->user)
			c->free_user(c->ctx, e->user);
		pend_free(c, e);
	}
	stmt_clear(c);
	free(c->login_db);
	free(c->spare);
	free(c->fr[0].buf);
	free(c->fr[1].buf);
	free(c);
}

enum wire_rc
wire_conv_feed(struct wire_conv *c, enum wire_dir dir, const uint8_t *p, size_t n,
	       uint64_t ts_us, size_t *used)
{
	size_t i = 0;

	*used = 0;
	if (c->phase == PH_ERROR)
		return WIRE_ERROR;
	if (dir != WIRE_C2S && dir != WIRE_S2C) {
		fail(c, "bad direction %u", (unsigned)dir);
		return WIRE_ERROR;
	}
	c->stop = false;
	c->cur_dir = dir;
	c->ts = ts_us;
	while (i < n && !c->stop && c->phase != PH_ERROR) {
		if (c->phase == PH_OPAQUE || c->phase == PH_CLOSED)
			i = n;
		else if (c->phase == PH_HUNT)
			i = dir == WIRE_S2C ? n : i + hunt_bytes(c, p + i, n - i);
		else
			i += frame_bytes(c, dir, p + i, n - i);
	}
	*used = i;
	return c->phase == PH_ERROR ? WIRE_ERROR : WIRE_OK;
}

bool
wire_conv_c2s_holding(const struct wire_conv *c)
{
	const struct framer *f = &c->fr[WIRE_C2S];
	uint8_t k;

	if (f->in_pkt || f->cont)
		k = f->kind;
	else if (f->hdr_have)
		k = msg_kind(c, WIRE_C2S);
	else
		return false;
	return k == MK_COMMAND || k == MK_LOGIN;
}

bool
wire_conv_c2s_dropping(const struct wire_conv *c)
{
	return c->fr[WIRE_C2S].kind == MK_DROP;
}

bool
wire_conv_opaque(const struct wire_conv *c)
{
	return c->phase == PH_OPAQUE;
}

void
wire_conv_gap(struct wire_conv *c, enum wire_dir dir)
{
	if (c->phase == PH_ERROR || c->phase == PH_CLOSED || c->phase == PH_OPAQUE)
		return;
	c->cur_dir = dir;
	abort_all(c);
	fr_reset(&c->fr[WIRE_C2S]);
	fr_reset(&c->fr[WIRE_S2C]);
	if (c->phase < PH_COMMAND)
		copy_str(c->user, sizeof(c->user), "unknown", 7);
	c->phase = PH_HUNT;
	c->hunt_have = 0;
	c->target_known = false;
}

void
wire_conv_close(struct wire_conv *c, uint64_t ts_us)
{
	c->ts = ts_us;
	abort_all(c);
	if (c->phase != PH_ERROR)
		c->phase = PH_CLOSED;
}

const char *wire_conv_user(const struct wire_conv *c) { return c->user; }
const char *wire_conv_target(const struct wire_conv *c) { return c->target_known ? c->target : ""; }
bool wire_conv_target_known(const struct wire_conv *c) { return c->target_known; }
uint16_t wire_conv_status(const struct wire_conv *c) { return c->status; }
uint64_t wire_conv_caps(const struct wire_conv *c) { return c->caps; }
unsigned wire_conv_pending(const struct wire_conv *c) { return c->npend; }
uint64_t wire_conv_anomalies(const struct wire_conv *c) { return c->anomalies; }
bool wire_conv_multi_statements(const struct wire_conv *c) { return c->multi_stmts; }
const char *wire_conv_error(const struct wire_conv *c) { return c->phase == PH_ERROR ? c->err : ""; }

bool
wire_conv_in_transaction(const struct wire_conv *c)
{
	return (c->status & WIRE_STATUS_IN_TRANS) != 0;
}

/* ---- packet helpers -------------------------------------------------------------------- */

bool
wire_greeting_clear_caps(uint8_t *payload, size_t len, uint64_t mask)
{
	const uint8_t *z;
	size_t off;
	uint32_t lo, hi;

	if (!payload || len < 2 || payload[0] != 0x0A)
		return false;
	z = memchr(payload + 1, 0, len - 1);
	if (!z)
		return false;
	off = (size_t)(z - payload) + 1 + 13;
	if (len < off + 2)
		return false;
	lo = le16(payload + off) & ~(uint32_t)(mask & 0xFFFF);
	payload[off] = (uint8_t)lo;
	payload[off + 1] = (uint8_t)(lo >> 8);
	if (len >= off + 7) {
		hi = le16(payload + off + 5) & ~(uint32_t)((mask >> 16) & 0xFFFF);
		payload[off + 5] = (uint8_t)hi;
		payload[off + 6] = (uint8_t)(hi >> 8);
	}
	if (len >= off + 18 && !(lo & WIRE_CAP_LONG_PASSWORD)) {
		uint32_t ext = le32(payload + off + 14) & ~(uint32_t)(mask >> 32);
		for (int i = 0; i < 4; i++)
			payload[off + 14 + i] = (uint8_t)(ext >> (8 * i));
	}
	return true;
}

bool
wire_login_clear_caps(uint8_t *payload, size_t len, uint64_t mask)
{
	uint32_t cc;

	if (!payload || len < 2)
		return false;
	if (len < 4 || !(le16(payload) & WIRE_CAP_PROTOCOL_41)) {
		cc = le16(payload) & ~(uint32_t)(mask & 0xFFFF);
		payload[0] = (uint8_t)cc;
		payload[1] = (uint8_t)(cc >> 8);
		return true;
	}
	cc = le32(payload) & ~(uint32_t)mask;
	for (int i = 0; i < 4; i++)
		payload[i] = (uint8_t)(cc >> (8 * i));
	if (len >= 32 && !(cc & WIRE_CAP_LONG_PASSWORD)) {
		uint32_t ext = le32(payload + 28) & ~(uint32_t)(mask >> 32);
		for (int i = 0; i < 4; i++)
			payload[28 + i] = (uint8_t)(ext >> (8 * i));
	}
	return true;
}

size_t
wire_build_err(uint8_t *out, size_t outlen, uint8_t seq, uint16_t code, const char *sqlstate,
	       const char *message)
{
	size_t ml = message ? strlen(message) : 0, plen;

	if (!out || outlen < 4 + 9)
		return 0;
	if (ml > outlen - 13)
		ml = outlen - 13;
	plen = 9 + ml;
	out[0] = (uint8_t)plen;
	out[1] = (uint8_t)(plen >> 8);
	out[2] = (uint8_t)(plen >> 16);
	out[3] = seq;
	out[4] = 0xFF;
	out[5] = (uint8_t)code;
	out[6] = (uint8_t)(code >> 8);
	out[7] = '#';
	for (size_t i = 0; i < 5; i++)
		out[8 + i] = sqlstate && strlen(sqlstate) > i ? (uint8_t)sqlstate[i] : '0';
	if (!sqlstate)
		memcpy(out + 8, "HY000", 5);
	if (ml)
		memcpy(out + 13, message, ml);
	return 4 + plen;
}
