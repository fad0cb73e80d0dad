/* proxy/config.h: the proxy's configuration: one JSON file (jansson) plus command-line
 * overrides, described by a key table (name, type, default, bounds, reloadable).  A
 * loaded `struct cfg` is immutable and refcounted: sessions keep the one they started
 * with while SIGHUP swaps in a new one. */
#ifndef RT_PROXY_CONFIG_H
#define RT_PROXY_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "proxy/log.h"

#define CFG_ERRLEN 512
#define CFG_MAX_LISTEN 16
#define CFG_ADDR_TEXT 128
#define CFG_MAX_ALLOW 64
#define CFG_ALLOW_LEN 256
#define CFG_STR_MAX 256 /* string keys (paths, names) */

enum cfg_tls { CFG_TLS_PASSTHROUGH = 0, CFG_TLS_REFUSE };

/* An address as written ("127.0.0.1:3306", "[::1]:3306", "unix:/run/x.sock") and
 * resolved once at load time. */
struct cfg_addr {
	char text[CFG_ADDR_TEXT];   /* as written */
	int family;                 /* AF_INET, AF_INET6 or AF_UNIX */
	struct sockaddr_storage sa; /* resolved address */
	socklen_t salen;            /* its length */
};

/* Read-only after load.  Adding a key: a field here plus one line in config.c's table
 * (types: int64_t with bounds, int-sized enum with names, struct cfg_addr, bool,
 * char[CFG_STR_MAX]). */
struct cfg {
	unsigned refs;                        /* cfg_ref / cfg_unref */
	char source[256];                     /* file it came from, "" = defaults + flags */
	struct cfg_addr listen[CFG_MAX_LISTEN]; /* listen addresses */
	unsigned n_listen;
	struct cfg_addr upstream;             /* vtgate (or a MySQL server) */
	int64_t connect_timeout_ms;           /* upstream connect */
	int64_t handshake_timeout_ms;         /* accept -> auth OK */
	int64_t idle_timeout_s;               /* no traffic and no command pending; 0 = none */
	int64_t max_client_connections;       /* over it: ERR 1040 then close */
	int64_t workers;                      /* session loop threads; 0 = one per CPU */
	int64_t buffer_high_water;            /* bytes queued toward one side before pausing */
	int64_t max_inspect_bytes;            /* cap on a held command payload */
	int64_t drain_timeout_s;              /* SIGTERM: time given to sessions to finish */
	enum cfg_tls client_tls;              /* SSLRequest handling */
	enum log_level log_level;             /* error | warn | info | debug */
	/* tracing, rules mirror, guard, admin (proxy/runtime.h) */
	char rules[CFG_STR_MAX];              /* "file:PATH" | "http://..." | "exec:CMD" | "" */
	char rules_vschema[CFG_STR_MAX];      /* vschema file for a bare rules file, or "" */
	int64_t rules_poll_ms;                /* mirror poll interval */
	int64_t rules_timeout_ms;             /* per fetch */
	char trace[CFG_STR_MAX];              /* trace file, "-" = stdout, "" = none */
	int64_t trace_queue_bytes;            /* bound on queued trace bytes */
	bool redact_literals;                 /* every literal -> '?' in the trace */
	char admin[CFG_STR_MAX];              /* admin HTTP address, "" = none */
	int guard;                            /* 0 off, 1 warn, 2 block (guard_mode order) */
	char guard_allow[CFG_MAX_ALLOW][CFG_ALLOW_LEN]; /* "ks" or "ks.table" let through */
	unsigned n_guard_allow;
	int default_tablet_type;              /* 0 primary, 1 replica, 2 rdonly */
};

/* A command-line override: key name and its value as text (as the flag gave it). */
struct cfg_override {
	const char *key;
	const char *value;
};

/* Loads `path` (NULL: no file, defaults only), then applies the overrides in order
 * (several overrides of a list key build the list; they replace the file's list).
 * Returns a new cfg with one reference, or NULL with a message naming file, line,
 * column and key in err. */
struct cfg *cfg_load(const char *path, const struct cfg_override *ov, size_t n_ov, char *err,
		     size_t errlen);

/* Keeps the non-reloadable keys of `old` in `fresh` (logging a warning for each one that
 * changed), so a SIGHUP never half-applies a restart-only change. */
void cfg_keep_non_reloadable(const struct cfg *old, struct cfg *fresh);

struct cfg *cfg_ref(struct cfg *c);
void cfg_unref(struct cfg *c); /* frees at zero; NULL is fine */

/* Renders a key's value as text into buf (for logs and tests).  False if no such key. */
bool cfg_format(const struct cfg *c, const char *key, char *buf, size_t len);

/* Parses an address ("host:port", "[v6]:port", "unix:/path").  False with err set. */
bool cfg_parse_addr(const char *text, struct cfg_addr *out, char *err, size_t errlen);

/* Iterates the key table: name, whether SIGHUP applies it, a one-line description.
 * Returns false past the last key. */
bool cfg_key_info(size_t i, const char **name, bool *reloadable, const char **doc);

#endif /* RT_PROXY_CONFIG_H */
