/* proxy/wire.h: I/O-free MySQL conversation decoder.  Fed the bytes of one
 * client<->server conversation per direction (by the inline session, or by capture's
 * TCP reassembly), it frames packets, follows the handshake, the command phase and
 * every response shape, tracks status flags, prepared statements and the session's
 * Vitess target, and reports what it sees as events.  It never reads a socket or a
 * clock (time is passed in) and never copies result rows: on the server side only
 * packet headers and the first bytes of each packet are looked at. */
#ifndef RT_PROXY_WIRE_H
#define RT_PROXY_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct wire_conv; /* opaque: one conversation */

enum wire_dir { WIRE_C2S = 0, WIRE_S2C = 1 };

/* Capability bits (MYSQL_WIRE_NOTES.md section 10); MariaDB's extended bits are 32..63. */
#define WIRE_CAP_LONG_PASSWORD 0x00000001ULL /* MariaDB: CLIENT_MYSQL */
#define WIRE_CAP_CONNECT_WITH_DB 0x00000008ULL
#define WIRE_CAP_COMPRESS 0x00000020ULL
#define WIRE_CAP_LOCAL_FILES 0x00000080ULL
#define WIRE_CAP_PROTOCOL_41 0x00000200ULL
#define WIRE_CAP_SSL 0x00000800ULL
#define WIRE_CAP_TRANSACTIONS 0x00002000ULL
#define WIRE_CAP_SECURE_CONNECTION 0x00008000ULL
#define WIRE_CAP_MULTI_STATEMENTS 0x00010000ULL
#define WIRE_CAP_MULTI_RESULTS 0x00020000ULL
#define WIRE_CAP_PS_MULTI_RESULTS 0x00040000ULL
#define WIRE_CAP_PLUGIN_AUTH 0x00080000ULL
#define WIRE_CAP_CONNECT_ATTRS 0x00100000ULL
#define WIRE_CAP_PLUGIN_AUTH_LENENC 0x00200000ULL
#define WIRE_CAP_SESSION_TRACK 0x00800000ULL
#define WIRE_CAP_DEPRECATE_EOF 0x01000000ULL
#define WIRE_CAP_OPTIONAL_METADATA 0x02000000ULL
#define WIRE_CAP_ZSTD 0x04000000ULL
#define WIRE_CAP_QUERY_ATTRIBUTES 0x08000000ULL
#define WIRE_CAP_PROGRESS_OLD 0x20000000ULL /* MySQL CAPABILITY_EXTENSION = MariaDB progress */
#define WIRE_CAP_MARIADB_PROGRESS (1ULL << 32)
#define WIRE_CAP_MARIADB_BULK (1ULL << 34)
#define WIRE_CAP_MARIADB_EXT_METADATA (1ULL << 35)
#define WIRE_CAP_MARIADB_CACHE_METADATA (1ULL << 36)

/* What the proxy never lets through the greeting and the client's answer: the decoder
 * cannot follow these (compression, query attributes, optional metadata, progress
 * packets).  MariaDB metadata caching is followed (the send-metadata byte of a result
 * count), so it stays: without it MariaDB re-sends every column definition with every
 * EXECUTE.  SSL is added to the mask by `client_tls = refuse`. */
#define WIRE_CAPS_ALWAYS_CLEARED                                                                   \
	(WIRE_CAP_COMPRESS | WIRE_CAP_ZSTD | WIRE_CAP_QUERY_ATTRIBUTES |                           \
	 WIRE_CAP_OPTIONAL_METADATA | WIRE_CAP_PROGRESS_OLD | WIRE_CAP_MARIADB_PROGRESS)

/* Server status flags. */
#define WIRE_STATUS_IN_TRANS 0x0001
#define WIRE_STATUS_AUTOCOMMIT 0x0002
#define WIRE_STATUS_MORE_RESULTS 0x0008
#define WIRE_STATUS_CURSOR_EXISTS 0x0040
#define WIRE_STATUS_LAST_ROW_SENT 0x0080
#define WIRE_STATUS_NO_BACKSLASH_ESCAPES 0x0200

/* Command bytes (MYSQL_WIRE_NOTES.md section 5). */
enum wire_com {
	WIRE_COM_SLEEP = 0x00,
	WIRE_COM_QUIT = 0x01,
	WIRE_COM_INIT_DB = 0x02,
	WIRE_COM_QUERY = 0x03,
	WIRE_COM_FIELD_LIST = 0x04,
	WIRE_COM_STATISTICS = 0x09,
	WIRE_COM_PING = 0x0e,
	WIRE_COM_CHANGE_USER = 0x11,
	WIRE_COM_BINLOG_DUMP = 0x12,
	WIRE_COM_STMT_PREPARE = 0x16,
	WIRE_COM_STMT_EXECUTE = 0x17,
	WIRE_COM_STMT_SEND_LONG_DATA = 0x18,
	WIRE_COM_STMT_CLOSE = 0x19,
	WIRE_COM_STMT_RESET = 0x1a,
	WIRE_COM_SET_OPTION = 0x1b,
	WIRE_COM_STMT_FETCH = 0x1c,
	WIRE_COM_RESET_CONNECTION = 0x1f,
	WIRE_COM_STMT_BULK_EXECUTE = 0xfa
};

enum wire_ev_type {
	WIRE_EV_GREETING = 0,  /* server HandshakeV10 decoded */
	WIRE_EV_GREETING_ERR,  /* ERR sent instead of a greeting; server will close */
	WIRE_EV_SSL_REQUEST,   /* client asked for TLS: the conversation is opaque from here */
	WIRE_EV_LOGIN,         /* HandshakeResponse41 decoded (user, db, caps, plugin, attrs) */
	WIRE_EV_AUTH_OK,       /* authentication ended with OK: command phase (u.result.status) */
	WIRE_EV_AUTH_ERR,      /* authentication ended with ERR */
	WIRE_EV_COMMAND,       /* a client command is complete: the decision point (see below) */
	WIRE_EV_RESULT,        /* one result of a response ended (one per statement of a chain) */
	WIRE_EV_RESPONSE_END,  /* the whole response to a command ended (or it had none) */
	WIRE_EV_TARGET,        /* the session target changed (server said OK) */
	WIRE_EV_BLOCKED_DUE,   /* a blocked command's turn came: the caller answers it now */
	WIRE_EV_ANOMALY,       /* tolerated oddity (seq mismatch, stray packet): log and count */
	WIRE_EV_RESYNC,        /* capture: decoding (re)started at a command after a gap */
	WIRE_EV_TYPE_MAX
};

enum wire_verdict {
	WIRE_FORWARD = 0, /* forward the command (capture: always) */
	WIRE_BLOCK        /* the caller answers it itself; the server never sees it */
};

/* A complete client command.  Strings point into decoder memory, valid only during the
 * callback, not NUL-terminated.  `user` is the caller's per-command context: set it in
 * the WIRE_EV_COMMAND callback; it comes back in every RESULT / RESPONSE_END /
 * BLOCKED_DUE event of that command and is released with the free hook. */
struct wire_command {
	uint8_t cmd;          /* enum wire_com (any byte: unknown ones are "other") */
	uint64_t seqno;       /* 1, 2, ... commands of this conversation */
	const char *text;     /* QUERY / PREPARE SQL, EXECUTE's prepared SQL, INIT_DB name,
	                         CHANGE_USER user; NULL when none */
	size_t text_len;
	bool text_truncated;  /* held payload hit the inspection cap: text is a prefix */
	uint32_t stmt_id;     /* EXECUTE / SEND_LONG_DATA / CLOSE / RESET / FETCH */
	bool stmt_known;      /* stmt_id maps to a PREPARE this decoder saw answered */
	uint16_t option;      /* SET_OPTION value */
	bool expects_response; /* false for STMT_CLOSE, SEND_LONG_DATA, QUIT: their
	                          RESPONSE_END follows the COMMAND event at once, and a
	                          WIRE_BLOCK verdict gets no BLOCKED_DUE (nothing to answer) */
	void *user;           /* caller context, set by the callback */
};

/* One result (one statement's outcome).  For COM_QUERY with several statements there
 * is one per result in the SERVER_MORE_RESULTS_EXISTS chain, index 0, 1, ... */
struct wire_result {
	uint8_t cmd;
	uint64_t seqno;
	unsigned index;       /* position in the chain */
	bool is_error;
	uint16_t err_code;
	char sqlstate[6];     /* NUL-terminated; "" when the ERR had none */
	const char *message;  /* ERR message (not NUL-terminated) */
	size_t message_len;
	bool is_resultset;    /* rows were returned (text, binary or FIELD_LIST) */
	uint64_t rows;        /* rows in a result set */
	uint64_t affected;    /* OK: affected rows */
	uint64_t last_insert_id;
	uint16_t status;      /* status flags of the terminator (previous ones after ERR) */
	bool more;            /* another result follows */
	bool aborted;         /* response cut short (connection closed mid-response) */
	void *user;
};

struct wire_login {
	const char *user;     /* NUL-terminated, decoder memory */
	const char *db;       /* handshake database or NULL */
	const char *plugin;   /* client auth plugin or NULL */
	uint64_t caps;        /* effective: greeting caps AND client caps */
	uint8_t collation;
	unsigned attrs;       /* number of connect attributes */
	const char *attr_keys[16]; /* first connect attributes (key/value), NUL-terminated */
	const char *attr_vals[16];
};

struct wire_greeting {
	const char *version;  /* NUL-terminated */
	uint32_t conn_id;
	uint64_t caps;        /* as the client saw them (after any caller rewrite) */
	uint16_t status;
	const char *plugin;   /* NULL if none */
};

struct wire_event {
	enum wire_ev_type type;
	enum wire_dir dir;    /* direction whose bytes produced it */
	uint64_t ts_us;       /* time passed to wire_conv_feed */
	union {
		struct wire_greeting greeting;
		struct wire_login login;
		struct wire_command *command; /* COMMAND: the callback may set ->user */
		struct wire_result result;    /* RESULT, RESPONSE_END (index = results seen) */
		struct {
			const char *target;   /* raw Vitess target string, NUL-terminated, "" = none */
			const char *previous; /* both valid during the callback only */
		} target;
		struct {
			uint16_t err_code;    /* AUTH_ERR / GREETING_ERR */
			const char *message;
			size_t message_len;
		} err;
		struct {
			const char *what;     /* ANOMALY / RESYNC: static text */
		} anomaly;
		struct {
			void *user;           /* BLOCKED_DUE */
			uint8_t cmd;
			uint64_t seqno;
		} blocked;
	} u;
};

/* The callback.  For WIRE_EV_COMMAND its return value is the verdict; for every other
 * event it is ignored (return WIRE_FORWARD). */
typedef enum wire_verdict (*wire_event_fn)(void *ctx, const struct wire_event *ev);
typedef void (*wire_user_free_fn)(void *ctx, void *user);

struct wire_limits {
	size_t max_inspect;   /* cap on a held command payload (default 1 MiB) */
	unsigned max_prepared; /* prepared statements remembered per conversation (default 16384) */
	unsigned max_pending; /* commands awaiting a response (pipelining) before the stream is
	                         declared hostile (default 4096) */
};

/* Creates a conversation that starts at the server greeting (inline, or a capture that
 * saw the SYN).  NULL on allocation failure.  `free_user` (may be NULL) releases
 * command contexts still pending at free time. */
struct wire_conv *wire_conv_new(wire_event_fn cb, wire_user_free_fn free_user, void *ctx,
				const struct wire_limits *limits);

/* Creates a conversation whose start was not seen (capture joined mid-stream): it hunts
 * for the next client packet that decodes as a command, user and target unknown. */
struct wire_conv *wire_conv_new_midstream(wire_event_fn cb, wire_user_free_fn free_user,
					  void *ctx, const struct wire_limits *limits);

void wire_conv_free(struct wire_conv *c);

enum wire_rc {
	WIRE_OK = 0, /* bytes consumed (see *used) */
	WIRE_ERROR   /* not MySQL or hostile: the caller closes; reason in wire_conv_error() */
};

/* Feeds bytes of one direction, in order.  Consumes all `n` bytes, except that in the
 * client direction it stops right after the last byte of a command that produced a
 * WIRE_EV_COMMAND, so the caller can act on that command's bytes (forward them, or
 * drop them when the verdict was WIRE_BLOCK).  *used = bytes consumed.  Events fire
 * synchronously from inside this call.  Callers loop until all bytes are consumed;
 * the other early stops are:
 *  - client: right after the login packet (WIRE_EV_LOGIN / WIRE_EV_SSL_REQUEST), and at
 *    the end of the rest of a blocked command (see wire_conv_c2s_dropping);
 *  - client: when the COMMAND event fires before the command's end (inspection cap), it
 *    stops there; the rest is forwarded (or dropped) as it comes;
 *  - server: right after the message that ended the response before a blocked command,
 *    when WIRE_EV_BLOCKED_DUE fired: relay the consumed bytes, then the ERR. */
enum wire_rc wire_conv_feed(struct wire_conv *c, enum wire_dir dir, const uint8_t *p, size_t n,
			    uint64_t ts_us, size_t *used);

/* True while the client bytes fed so far end inside a command that the decoder holds for
 * inspection (COM_QUERY, PREPARE, INIT_DB, CHANGE_USER, the login packet, ...): the
 * inline caller must not forward them yet.  False when they may be forwarded now. */
bool wire_conv_c2s_holding(const struct wire_conv *c);

/* True while the next client bytes are the rest of a BLOCKED command whose
 * WIRE_EV_COMMAND fired early (its payload passed limits.max_inspect, or a non-held
 * command passed its 16-byte prefix).  wire_conv_feed then consumes only those bytes,
 * stopping at the command's end, and the caller drops them. */
bool wire_conv_c2s_dropping(const struct wire_conv *c);

/* True once an SSLRequest made the conversation opaque (or BINLOG_DUMP took it over). */
bool wire_conv_opaque(const struct wire_conv *c);

/* Capture: bytes were lost in `dir`; drop partial state and hunt for the next command. */
void wire_conv_gap(struct wire_conv *c, enum wire_dir dir);

/* The connection ended: pending commands get RESULT (aborted) + RESPONSE_END events. */
void wire_conv_close(struct wire_conv *c, uint64_t ts_us);

/* Current state, for trace records and logs. */
const char *wire_conv_user(const struct wire_conv *c);   /* "" until known; "unknown" mid-stream */
const char *wire_conv_target(const struct wire_conv *c); /* raw target, "" = none or unknown */
bool wire_conv_target_known(const struct wire_conv *c);
uint16_t wire_conv_status(const struct wire_conv *c);    /* last server status flags */
bool wire_conv_in_transaction(const struct wire_conv *c);
uint64_t wire_conv_caps(const struct wire_conv *c);      /* effective capabilities */
unsigned wire_conv_pending(const struct wire_conv *c);   /* commands awaiting a response */
const char *wire_conv_error(const struct wire_conv *c);  /* reason after WIRE_ERROR */
uint64_t wire_conv_anomalies(const struct wire_conv *c); /* WIRE_EV_ANOMALY events so far */
bool wire_conv_multi_statements(const struct wire_conv *c); /* SET_OPTION state (default on) */

/* Packet helpers for the inline caller (pure, bounds-checked). */

/* Clears capability bits in a HandshakeV10 payload (both the low/high 16-bit halves and
 * MariaDB's extended caps).  False if the payload is not a well-formed greeting. */
bool wire_greeting_clear_caps(uint8_t *payload, size_t len, uint64_t mask);

/* Clears capability bits in a HandshakeResponse41 / SSLRequest payload. */
bool wire_login_clear_caps(uint8_t *payload, size_t len, uint64_t mask);

/* Writes a whole ERR packet (4-byte header + payload) into out: code, SQLSTATE (5 chars),
 * message; returns its length, or 0 if outlen is too small.  The message is cut to fit. */
size_t wire_build_err(uint8_t *out, size_t outlen, uint8_t seq, uint16_t code,
		      const char *sqlstate, const char *message);

#endif /* RT_PROXY_WIRE_H */
