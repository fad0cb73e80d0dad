/* proxy/config.c: key table, JSON loading with positions in every error, overrides. */
#include "proxy/config.h"

#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include <jansson.h>

#include "proxy/fileio.h"

/* Value types.  ENUM fields are `int`-sized enums (index into choices), STR fields are
 * `char [CFG_STR_MAX]`, BOOL fields are `bool`. */
enum cfg_type {
	CFG_T_INT = 0,
	CFG_T_ENUM,
	CFG_T_ADDR,
	CFG_T_ADDR_LIST,
	CFG_T_LOGLEVEL,
	CFG_T_STR,
	CFG_T_BOOL,
	CFG_T_STR_LIST /* guard_allow */
};

struct cfg_key {
	const char *name;
	enum cfg_type type;
	size_t off;                 /* field in struct cfg */
	const char *def;            /* default, parsed like a flag value; NULL = empty list */
	long long min, max;         /* CFG_T_INT bounds */
	bool reloadable;            /* applied by SIGHUP */
	const char *const *choices; /* CFG_T_ENUM names, index = value */
	const char *doc;
};

static const char *const tls_choices[] = {"passthrough", "refuse", NULL};
static const char *const guard_choices[] = {"off", "warn", "block", NULL};
static const char *const tt_choices[] = {"primary", "replica", "rdonly", NULL};

#define OFF(f) offsetof(struct cfg, f)
#define DAY 86400LL

static const struct cfg_key keys[] = {
	{"listen", CFG_T_ADDR_LIST, OFF(listen), "127.0.0.1:3307", 0, 0, false, NULL,
	 "addresses to accept clients on: host:port, [v6]:port, unix:/path"},
	{"upstream", CFG_T_ADDR, OFF(upstream), "127.0.0.1:15306", 0, 0, true, NULL,
	 "vtgate's MySQL address: host:port or unix:/path (new sessions)"},
	{"connect_timeout_ms", CFG_T_INT, OFF(connect_timeout_ms), "3000", 1, 600000, true, NULL,
	 "upstream connect timeout"},
	{"handshake_timeout_ms", CFG_T_INT, OFF(handshake_timeout_ms), "10000", 1, 600000, true,
	 NULL, "time from accept to the server's auth OK"},
	{"idle_timeout_s", CFG_T_INT, OFF(idle_timeout_s), "0", 0, 30 * DAY, true, NULL,
	 "close a session idle this long with no command pending (0 = never)"},
	{"max_client_connections", CFG_T_INT, OFF(max_client_connections), "10000", 1, 1000000,
	 true, NULL, "client sessions at once; beyond it ERR 1040"},
	{"workers", CFG_T_INT, OFF(workers), "0", 0, 64, false, NULL,
	 "event-loop threads that run the sessions; 0 = one per CPU the process may use"},
	{"buffer_high_water", CFG_T_INT, OFF(buffer_high_water), "1048576", 4096, 1LL << 30, true,
	 NULL, "bytes queued toward one side before reading the other pauses"},
	{"max_inspect_bytes", CFG_T_INT, OFF(max_inspect_bytes), "1048576", 1024, 1LL << 30, true,
	 NULL, "cap on the command payload held for inspection"},
	{"client_tls", CFG_T_ENUM, OFF(client_tls), "passthrough", 0, 0, true, tls_choices,
	 "passthrough: TLS sessions relayed opaque; refuse: SSL cleared from the greeting"},
	{"log_level", CFG_T_LOGLEVEL, OFF(log_level), "info", 0, 0, true, NULL,
	 "error | warn | info | debug"},
	{"drain_timeout_s", CFG_T_INT, OFF(drain_timeout_s), "30", 0, DAY, true, NULL,
	 "SIGTERM/SIGINT: seconds sessions get to finish"},
	{"rules", CFG_T_STR, OFF(rules), "", 0, 0, false, NULL,
	 "routing rules source: file:PATH, http://vtgate:15001/..., exec:CMD; empty = none"},
	{"rules_vschema", CFG_T_STR, OFF(rules_vschema), "", 0, 0, false, NULL,
	 "vschema file to pair with a bare GetRoutingRules file source"},
	{"rules_poll_ms", CFG_T_INT, OFF(rules_poll_ms), "1000", 10, 3600000, false, NULL,
	 "rules mirror poll interval"},
	{"rules_timeout_ms", CFG_T_INT, OFF(rules_timeout_ms), "5000", 10, 600000, false, NULL,
	 "rules fetch timeout"},
	{"trace", CFG_T_STR, OFF(trace), "", 0, 0, false, NULL,
	 "trace file (JSON lines; reopened on SIGHUP), - = stdout, empty = no trace"},
	{"trace_queue_bytes", CFG_T_INT, OFF(trace_queue_bytes), "16777216", 65536, 1LL << 32,
	 false, NULL, "bound on trace bytes queued for the writer"},
	{"redact_literals", CFG_T_BOOL, OFF(redact_literals), "false", 0, 0, true, NULL,
	 "replace every literal in traced SQL with ?"},
	{"admin", CFG_T_STR, OFF(admin), "", 0, 0, false, NULL,
	 "admin HTTP address (/health /stats /metrics /rules), empty = none"},
	{"guard", CFG_T_ENUM, OFF(guard), "block", 0, 0, true, guard_choices,
	 "DDL guard: off | warn | block (needs a rules source)"},
	{"guard_allow", CFG_T_STR_LIST, OFF(guard_allow), "", 0, 0, true, NULL,
	 "keyspaces (\"ks\") or tables (\"ks.table\") the guard lets through; repeatable flag"},
	{"default_tablet_type", CFG_T_ENUM, OFF(default_tablet_type), "primary", 0, 0, true,
	 tt_choices, "vtgate's --default-tablet-type: primary | replica | rdonly"},
};

#define N_KEYS (sizeof(keys) / sizeof(keys[0]))

static const struct cfg_key *
key_find(const char *name)
{
	for (size_t i = 0; i < N_KEYS; i++) {
		if (strcmp(keys[i].name, name) == 0)
			return &keys[i];
	}
	return NULL;
}

bool
cfg_key_info(size_t i, const char **name, bool *reloadable, const char **doc)
{
	if (i >= N_KEYS)
		return false;
	*name = keys[i].name;
	*reloadable = keys[i].reloadable;
	*doc = keys[i].doc;
	return true;
}

static bool
parse_unix(const char *path, struct cfg_addr *out, char *err, size_t errlen)
{
	struct sockaddr_un *un = (struct sockaddr_un *)&out->sa;

	if (path[0] != '/' || strlen(path) >= sizeof(un->sun_path)) {
		snprintf(err, errlen, "unix socket path must be absolute and under %zu bytes",
			 sizeof(un->sun_path));
		return false;
	}
	un->sun_family = AF_UNIX;
	memcpy(un->sun_path, path, strlen(path) + 1);
	out->family = AF_UNIX;
	out->salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1);
	return true;
}

static bool
split_host_port(const char *text, char *host, size_t hostlen, const char **port)
{
	const char *colon;
	size_t hl;

	if (text[0] == '[') {
		const char *rb = strchr(text, ']');

		if (rb == NULL || rb[1] != ':')
			return false;
		hl = (size_t)(rb - text - 1);
		text++;
		colon = rb + 1;
	} else {
		colon = strrchr(text, ':');
		if (colon == NULL || memchr(text, ':', (size_t)(colon - text)) != NULL)
			return false;
		hl = (size_t)(colon - text);
	}
	if (hl == 0 || hl >= hostlen)
		return false;
	memcpy(host, text, hl);
	host[hl] = '\0';
	*port = colon + 1;
	return true;
}

bool
cfg_parse_addr(const char *text, struct cfg_addr *out, char *err, size_t errlen)
{
	struct addrinfo hints = {0}, *res = NULL;
	char host[CFG_ADDR_TEXT];
	const char *port;
	char *end;
	long pn;
	int rc;

	memset(out, 0, sizeof(*out));
	if (strlen(text) >= sizeof(out->text)) {
		snprintf(err, errlen, "address too long");
		return false;
	}
	snprintf(out->text, sizeof(out->text), "%s", text);
	if (strncmp(text, "unix:", 5) == 0)
		return parse_unix(text + 5, out, err, errlen);
	if (!split_host_port(text, host, sizeof(host), &port)) {
		snprintf(err, errlen, "'%s' is not host:port, [v6]:port or unix:/path", text);
		return false;
	}
	errno = 0;
	pn = strtol(port, &end, 10);
	if (*port == '\0' || *end != '\0' || errno != 0 || pn < 1 || pn > 65535) {
		snprintf(err, errlen, "'%s': port must be 1..65535", text);
		return false;
	}
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0 || res == NULL) {
		snprintf(err, errlen, "'%s': %s", text, gai_strerror(rc));
		return false;
	}
	memcpy(&out->sa, res->ai_addr, res->ai_addrlen);
	out->salen = res->ai_addrlen;
	out->family = res->ai_family;
	freeaddrinfo(res);
	return true;
}

/* Applies one textual value (default or flag) to a key.  `append` adds to a list
 * instead of replacing it. */
static bool
set_from_text(struct cfg *c, const struct cfg_key *k, const char *v, bool append, char *err,
	      size_t errlen)
{
	char *base = (char *)c + k->off;

	switch (k->type) {
	case CFG_T_INT: {
		char *end;
		long long x;

		errno = 0;
		x = strtoll(v, &end, 10);
		if (*v == '\0' || *end != '\0' || errno != 0 || x < k->min || x > k->max) {
			snprintf(err, errlen, "must be an integer from %lld to %lld, got '%s'",
				 k->min, k->max, v);
			return false;
		}
		memcpy(base, &(int64_t){x}, sizeof(int64_t));
		return true;
	}
	case CFG_T_ENUM: {
		size_t used = 0;

		for (int i = 0; k->choices[i] != NULL; i++) {
			if (strcmp(v, k->choices[i]) == 0) {
				memcpy(base, &i, sizeof(int));
				return true;
			}
		}
		used = (size_t)snprintf(err, errlen, "must be one of");
		for (int i = 0; k->choices[i] != NULL && used < errlen; i++)
			used += (size_t)snprintf(err + used, errlen - used, "%s %s", i ? "," : "",
						 k->choices[i]);
		if (used < errlen)
			snprintf(err + used, errlen - used, "; got '%s'", v);
		return false;
	}
	case CFG_T_STR:
		if (strlen(v) >= CFG_STR_MAX) {
			snprintf(err, errlen, "longer than %d bytes", CFG_STR_MAX - 1);
			return false;
		}
		memcpy(base, v, strlen(v) + 1);
		return true;
	case CFG_T_BOOL:
		if (strcmp(v, "true") != 0 && strcmp(v, "false") != 0) {
			snprintf(err, errlen, "must be true or false, got '%s'", v);
			return false;
		}
		memcpy(base, &(bool){v[0] == 't'}, sizeof(bool));
		return true;
	case CFG_T_LOGLEVEL: {
		enum log_level lvl;

		if (!log_parse_level(v, &lvl)) {
			snprintf(err, errlen, "must be error, warn, info or debug; got '%s'", v);
			return false;
		}
		memcpy(base, &lvl, sizeof(lvl));
		return true;
	}
	case CFG_T_ADDR:
		return cfg_parse_addr(v, (struct cfg_addr *)(void *)base, err, errlen);
	case CFG_T_STR_LIST:
		if (!append)
			c->n_guard_allow = 0;
		if (*v == '\0')
			return true; /* "" = the empty list */
		if (c->n_guard_allow >= CFG_MAX_ALLOW || strlen(v) >= CFG_ALLOW_LEN) {
			snprintf(err, errlen, "at most %d entries of at most %d bytes", CFG_MAX_ALLOW,
				 CFG_ALLOW_LEN - 1);
			return false;
		}
		memcpy(c->guard_allow[c->n_guard_allow++], v, strlen(v) + 1);
		return true;
	case CFG_T_ADDR_LIST:
		if (!append)
			c->n_listen = 0;
		if (c->n_listen >= CFG_MAX_LISTEN) {
			snprintf(err, errlen, "at most %d addresses", CFG_MAX_LISTEN);
			return false;
		}
		if (!cfg_parse_addr(v, &c->listen[c->n_listen], err, errlen))
			return false;
		c->n_listen++;
		return true;
	}
	return false;
}

/* Line and column (1-based) of top-level key `name` in JSON text, found by a small
 * scan that skips strings and tracks nesting (jansson keeps no value positions). */
static void
key_position(const char *text, size_t n, const char *name, int *line, int *col)
{
	int depth = 0, ln = 1, cl = 1;
	size_t nl = strlen(name);

	*line = 0;
	*col = 0;
	for (size_t i = 0; i < n; i++) {
		char ch = text[i];

		if (ch == '"') {
			size_t start = i, j = i + 1;

			while (j < n && text[j] != '"')
				j += (text[j] == '\\') ? 2 : 1;
			if (depth == 1 && j - start - 1 == nl &&
			    memcmp(text + start + 1, name, nl) == 0) {
				size_t k = j + 1;

				while (k < n && (text[k] == ' ' || text[k] == '\t' ||
						 text[k] == '\r' || text[k] == '\n'))
					k++;
				if (k < n && text[k] == ':') {
					*line = ln;
					*col = cl;
					return;
				}
			}
			cl += (int)(j - i);
			i = j;
		} else if (ch == '{' || ch == '[') {
			depth++;
		} else if (ch == '}' || ch == ']') {
			depth--;
		} else if (ch == '\n') {
			ln++;
			cl = 0;
		}
		cl++;
	}
}

static bool
set_from_json(struct cfg *c, const struct cfg_key *k, json_t *v, char *err, size_t errlen)
{
	char num[32];

	switch (k->type) {
	case CFG_T_INT:
		if (!json_is_integer(v)) {
			snprintf(err, errlen, "must be an integer");
			return false;
		}
		snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		return set_from_text(c, k, num, false, err, errlen);
	case CFG_T_BOOL:
		if (!json_is_boolean(v)) {
			snprintf(err, errlen, "must be true or false");
			return false;
		}
		return set_from_text(c, k, json_is_true(v) ? "true" : "false", false, err, errlen);
	case CFG_T_STR_LIST:
	case CFG_T_ADDR_LIST: {
		size_t i;
		json_t *e;

		if (json_is_string(v))
			return set_from_text(c, k, json_string_value(v), false, err, errlen);
		if (!json_is_array(v) || (k->type == CFG_T_ADDR_LIST && json_array_size(v) == 0)) {
			snprintf(err, errlen, "must be a %sarray of strings",
				 k->type == CFG_T_ADDR_LIST ? "non-empty " : "");
			return false;
		}
		set_from_text(c, k, "", false, err, errlen); /* start empty */
		c->n_listen = k->type == CFG_T_ADDR_LIST ? 0 : c->n_listen;
		json_array_foreach (v, i, e) {
			if (!json_is_string(e)) {
				snprintf(err, errlen, "element %zu is not a string", i);
				return false;
			}
			if (!set_from_text(c, k, json_string_value(e), true, err, errlen))
				return false;
		}
		return true;
	}
	default:
		if (!json_is_string(v)) {
			snprintf(err, errlen, "must be a string");
			return false;
		}
		return set_from_text(c, k, json_string_value(v), false, err, errlen);
	}
}

static bool
apply_file(struct cfg *c, const char *path, char *err, size_t errlen)
{
	char msg[CFG_ERRLEN];
	json_error_t jerr;
	const char *name;
	json_t *root, *v;
	size_t len = 0;
	int line, col;
	bool ok = false;
	char *text;

	text = fileio_read(path, 1u << 24, &len, err, errlen);
	if (text == NULL)
		return false;
	root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		snprintf(err, errlen, "%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
		goto out;
	}
	if (!json_is_object(root)) {
		snprintf(err, errlen, "%s:1:1: the top level must be a JSON object", path);
		goto out;
	}
	json_object_foreach (root, name, v) {
		const struct cfg_key *k = key_find(name);

		key_position(text, len, name, &line, &col);
		if (k == NULL) {
			snprintf(err, errlen, "%s:%d:%d: key '%s': unknown key", path, line, col,
				 name);
			goto out;
		}
		if (!set_from_json(c, k, v, msg, sizeof(msg))) {
			snprintf(err, errlen, "%s:%d:%d: key '%s': %s", path, line, col, name,
				 msg);
			goto out;
		}
	}
	ok = true;
out:
	json_decref(root);
	free(text);
	return ok;
}

static bool
apply_overrides(struct cfg *c, const struct cfg_override *ov, size_t n, char *err,
		size_t errlen)
{
	char msg[CFG_ERRLEN];
	bool list_started[N_KEYS] = {false};

	for (size_t i = 0; i < n; i++) {
		const struct cfg_key *k = key_find(ov[i].key);
		size_t ki;

		if (k == NULL) {
			snprintf(err, errlen, "command line: key '%s': unknown key", ov[i].key);
			return false;
		}
		ki = (size_t)(k - keys);
		if (!set_from_text(c, k, ov[i].value, list_started[ki], msg, sizeof(msg))) {
			snprintf(err, errlen, "command line: key '%s': %s", k->name, msg);
			return false;
		}
		list_started[ki] = true;
	}
	return true;
}

struct cfg *
cfg_load(const char *path, const struct cfg_override *ov, size_t n_ov, char *err, size_t errlen)
{
	struct cfg *c = calloc(1, sizeof(*c));
	char msg[CFG_ERRLEN];

	if (c == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	c->refs = 1;
	for (size_t i = 0; i < N_KEYS; i++) {
		if (!set_from_text(c, &keys[i], keys[i].def, false, msg, sizeof(msg))) {
			snprintf(err, errlen, "default of '%s': %s", keys[i].name, msg);
			goto fail;
		}
	}
	if (path != NULL) {
		snprintf(c->source, sizeof(c->source), "%s", path);
		if (!apply_file(c, path, err, errlen))
			goto fail;
	}
	if (!apply_overrides(c, ov, n_ov, err, errlen))
		goto fail;
	return c;
fail:
	free(c);
	return NULL;
}

bool
cfg_format(const struct cfg *c, const char *key, char *buf, size_t len)
{
	const struct cfg_key *k = key_find(key);
	const char *base;
	size_t used = 0;

	if (k == NULL || len == 0)
		return false;
	base = (const char *)c + k->off;
	buf[0] = '\0';
	switch (k->type) {
	case CFG_T_INT: {
		int64_t x;

		memcpy(&x, base, sizeof(x));
		snprintf(buf, len, "%" PRId64, x);
		break;
	}
	case CFG_T_ENUM: {
		int x;

		memcpy(&x, base, sizeof(x));
		snprintf(buf, len, "%s", k->choices[x]);
		break;
	}
	case CFG_T_LOGLEVEL: {
		enum log_level lvl;

		memcpy(&lvl, base, sizeof(lvl));
		snprintf(buf, len, "%s", log_level_name(lvl));
		break;
	}
	case CFG_T_ADDR:
		snprintf(buf, len, "%s", ((const struct cfg_addr *)(const void *)base)->text);
		break;
	case CFG_T_STR:
		snprintf(buf, len, "%s", base);
		break;
	case CFG_T_BOOL:
		snprintf(buf, len, "%s", *(const bool *)(const void *)base ? "true" : "false");
		break;
	case CFG_T_STR_LIST:
		for (unsigned i = 0; i < c->n_guard_allow && used < len; i++) {
			int w = snprintf(buf + used, len - used, "%s%s", i ? "," : "",
					 c->guard_allow[i]);
			if (w < 0)
				break;
			used += (size_t)w;
		}
		break;
	case CFG_T_ADDR_LIST:
		for (unsigned i = 0; i < c->n_listen && used < len; i++) {
			int w = snprintf(buf + used, len - used, "%s%s", i ? "," : "",
					 c->listen[i].text);
			if (w < 0)
				break;
			used += (size_t)w;
		}
		break;
	}
	return true;
}

static size_t
field_size(const struct cfg_key *k)
{
	switch (k->type) {
	case CFG_T_INT: return sizeof(int64_t);
	case CFG_T_ENUM: return sizeof(int);
	case CFG_T_ADDR: return sizeof(struct cfg_addr);
	case CFG_T_LOGLEVEL: return sizeof(enum log_level);
	case CFG_T_STR: return CFG_STR_MAX;
	case CFG_T_BOOL: return sizeof(bool);
	case CFG_T_ADDR_LIST: break;
	case CFG_T_STR_LIST: break;
	}
	return 0;
}

void
cfg_keep_non_reloadable(const struct cfg *old, struct cfg *fresh)
{
	char a[1024], b[1024];

	for (size_t i = 0; i < N_KEYS; i++) {
		const struct cfg_key *k = &keys[i];

		if (k->reloadable)
			continue;
		cfg_format(old, k->name, a, sizeof(a));
		cfg_format(fresh, k->name, b, sizeof(b));
		if (strcmp(a, b) == 0)
			continue;
		log_warn("config reload: '%s' changed to %s but needs a restart; keeping %s",
			 k->name, b, a);
		if (k->type == CFG_T_ADDR_LIST) {
			memcpy(fresh->listen, old->listen, sizeof(old->listen));
			fresh->n_listen = old->n_listen;
		} else {
			memcpy((char *)fresh + k->off, (const char *)old + k->off, field_size(k));
		}
	}
}

struct cfg *
cfg_ref(struct cfg *c)
{
	__atomic_add_fetch(&c->refs, 1, __ATOMIC_RELAXED); /* sessions of several threads */
	return c;
}

void
cfg_unref(struct cfg *c)
{
	if (c != NULL && __atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) == 0)
		free(c);
}
