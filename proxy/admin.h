/* proxy/admin.h: the admin HTTP server (libevent evhttp, loopback by default) and a
 * small response API, so modules (stats, trace, mirror, rules) plug their pages in
 * without touching evhttp: a handler gets an opaque request, writes its body into an
 * evbuffer and sets status and content type.  Also the Prometheus text-format and JSON
 * helpers those pages use.  Only GET and HEAD are served. */
#ifndef RT_PROXY_ADMIN_H
#define RT_PROXY_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct event_base;
struct evbuffer;
struct admin;     /* opaque: one server */
struct admin_req; /* opaque: one request being answered; valid during the handler only */

#define ADMIN_MAX_ROUTES 32

/* Fills in the response for one request.  Defaults: status 200, content type
 * "text/plain; charset=utf-8", empty body.  Runs on the loop: must not block. */
typedef void (*admin_handler_fn)(void *ctx, struct admin_req *req);

/* Bind and listen on addr: "HOST:PORT", "[V6]:PORT", or ":PORT" / "PORT" for
 * 127.0.0.1.  Port 0 picks a free port (see admin_port).  Returns NULL with a reason
 * in err (bad address, bind failure).  base is borrowed and must outlive the server. */
struct admin *admin_new(struct event_base *base, const char *addr, char *err, size_t errlen);

/* Register handler for an exact path ("/metrics"; no query part).  path is copied,
 * ctx borrowed.  Re-registering a path replaces its handler.  False when path does not
 * start with '/' or the table is full (ADMIN_MAX_ROUTES). */
bool admin_route(struct admin *a, const char *path, admin_handler_fn fn, void *ctx);

/* The port actually bound (useful with port 0), in host order. */
uint16_t admin_port(const struct admin *a);

/* Stop listening, close connections, free.  NULL is a no-op. */
void admin_free(struct admin *a);

/* ---- inside a handler ----------------------------------------------------------- */

/* The request path: the path part of the URI as sent (not percent-decoded). */
const char *admin_req_path(const struct admin_req *r);

/* The value of query parameter key ("/rules?pretty=1" -> "1", percent-decoded), or
 * NULL when absent or the query is malformed.  Borrowed, valid during the handler. */
const char *admin_req_param(struct admin_req *r, const char *key);

/* True for HEAD: the body written is measured for Content-Length, then not sent. */
bool admin_req_is_head(const struct admin_req *r);

/* The response body; write into it with evbuffer_add / evbuffer_add_printf. */
struct evbuffer *admin_req_body(struct admin_req *r);

/* Status code (default 200) and Content-Type (copied; default text/plain). */
void admin_req_set_status(struct admin_req *r, int code);
void admin_req_set_type(struct admin_req *r, const char *content_type);

/* Add a response header (name and value copied).  False if refused (bad characters). */
bool admin_req_add_header(struct admin_req *r, const char *name, const char *value);

/* Serialize j into the body as application/json (trailing newline), STEALING the
 * reference (so `admin_reply_json(r, json_pack(...))` is leak-free).  j == NULL or a
 * serialization failure answers 500.  flags: jansson JSON_* dump flags (0: compact,
 * keys in insertion order).  False on failure. */
bool admin_reply_json(struct admin_req *r, json_t *j, size_t flags);

/* Answer with status code and a one-line text/plain message (replaces the body). */
void admin_reply_text(struct admin_req *r, int code, const char *msg);

/* ---- Prometheus text exposition format 0.0.4 ------------------------------------- */

/* Content-Type for /metrics. */
#define PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* "# HELP name help" (help escaped: backslash and newline) and "# TYPE name type"
 * (type: "counter", "gauge", "untyped", ...).  help may be NULL (no HELP line). */
void prom_header(struct evbuffer *b, const char *name, const char *type, const char *help);

/* One sample line: name{k="v",...} value.  labels[i][0] is a label name (trusted,
 * written as is), labels[i][1] its value, escaped (backslash, double quote, newline).
 * A NULL value is written as "".  Doubles print in the shortest round-trip form;
 * NaN and infinities as NaN, +Inf, -Inf. */
void prom_sample(struct evbuffer *b, const char *name, const char *labels[][2], size_t nlabels,
                 double value);

/* The same for integer counters (exact above 2^53). */
void prom_sample_u64(struct evbuffer *b, const char *name, const char *labels[][2], size_t nlabels,
                     uint64_t value);

/* Append s as an escaped label value (without quotes). */
void prom_escape_label(struct evbuffer *b, const char *s);

#endif /* RT_PROXY_ADMIN_H */
