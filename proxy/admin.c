/* proxy/admin.c: the admin HTTP server.  One generic evhttp callback dispatches on the
 * exact path to registered handlers; everything evhttp-specific stays in this file. */
#include "proxy/admin.h"

#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h> /* TAILQ_INIT for evkeyvalq */
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/util.h>

#define ADMIN_TIMEOUT_S 10      /* idle connection / slow client limit */
#define ADMIN_MAX_HEADERS 16384 /* request header bytes */
#define ADMIN_MAX_BODY 4096     /* request body bytes (we serve GET/HEAD only) */

struct admin_route_ent {
	char *path;          /* exact path, owned */
	admin_handler_fn fn; /* handler */
	void *ctx;           /* its context, borrowed */
};

struct admin {
	struct event_base *base;                         /* borrowed */
	struct evhttp *http;                             /* the server */
	uint16_t port;                                   /* bound port */
	struct admin_route_ent routes[ADMIN_MAX_ROUTES]; /* registered pages */
	size_t nroutes;                                  /* used entries */
};

struct admin_req {
	struct evhttp_request *req; /* evhttp's request */
	const char *path;           /* path part of the URI */
	const char *query;          /* query part, or NULL */
	struct evkeyvalq params;    /* parsed query, on demand */
	bool params_parsed;         /* params is initialised */
	struct evbuffer *body;      /* response body */
	int status;                 /* response status */
	char type[128];             /* Content-Type */
	bool head;                  /* HEAD request */
};

/* ---- address parsing and setup -------------------------------------------------------- */

/* "HOST:PORT", "[V6]:PORT", ":PORT", "PORT" -> host (127.0.0.1 when empty) and port. */
static bool
parse_addr(const char *addr, char *host, size_t hostlen, uint16_t *port, char *err, size_t errlen)
{
	const char *colon, *p;
	size_t hl;
	char *end;
	long v;

	if (addr == NULL || addr[0] == '\0') {
		snprintf(err, errlen, "admin address is empty (expected HOST:PORT)");
		return false;
	}
	if (addr[0] == '[') {
		colon = strstr(addr, "]:");
		if (colon == NULL) {
			snprintf(err, errlen, "admin address '%s': expected [IPV6]:PORT", addr);
			return false;
		}
		hl = (size_t)(colon - addr - 1);
		p = colon + 2;
		addr++;
	} else if ((colon = strrchr(addr, ':')) != NULL) {
		hl = (size_t)(colon - addr);
		p = colon + 1;
	} else {
		hl = 0;
		p = addr;
	}
	if (hl >= hostlen) {
		snprintf(err, errlen, "admin address: host too long");
		return false;
	}
	memcpy(host, addr, hl);
	host[hl] = '\0';
	if (hl == 0) {
		snprintf(host, hostlen, "127.0.0.1"); /* loopback unless told otherwise */
	}
	errno = 0;
	v = strtol(p, &end, 10);
	if (p[0] < '0' || p[0] > '9' || *end != '\0' || errno != 0 || v < 0 || v > 65535) {
		snprintf(err, errlen, "admin address '%s': bad port '%s'", addr, p);
		return false;
	}
	*port = (uint16_t)v;
	return true;
}

static uint16_t
bound_port(struct evhttp_bound_socket *s)
{
	struct sockaddr_storage ss = {0};
	socklen_t sl = sizeof(ss);
	evutil_socket_t fd = evhttp_bound_socket_get_fd(s);

	if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) {
		return 0;
	}
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in sin;

		memcpy(&sin, &ss, sizeof(sin));
		return ntohs(sin.sin_port);
	}
	if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 sin6;

		memcpy(&sin6, &ss, sizeof(sin6));
		return ntohs(sin6.sin6_port);
	}
	return 0;
}

static void admin_dispatch(struct evhttp_request *req, void *arg);

struct admin *
admin_new(struct event_base *base, const char *addr, char *err, size_t errlen)
{
	struct timeval tv = {ADMIN_TIMEOUT_S, 0};
	struct evhttp_bound_socket *sock;
	struct admin *a;
	char host[256];
	uint16_t port;

	if (!parse_addr(addr, host, sizeof(host), &port, err, errlen)) {
		return NULL;
	}
	a = calloc(1, sizeof(*a));
	if (a == NULL || (a->http = evhttp_new(base)) == NULL) {
		snprintf(err, errlen, "out of memory");
		free(a);
		return NULL;
	}
	a->base = base;
	/* every method reaches our callback, which answers 405 itself with an Allow header */
	evhttp_set_allowed_methods(a->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
	                                        EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
	                                        EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
	evhttp_set_timeout_tv(a->http, &tv);
	evhttp_set_max_headers_size(a->http, ADMIN_MAX_HEADERS);
	evhttp_set_max_body_size(a->http, ADMIN_MAX_BODY);
	evhttp_set_gencb(a->http, admin_dispatch, a);
	sock = evhttp_bind_socket_with_handle(a->http, host, port);
	if (sock == NULL) {
		snprintf(err, errlen, "admin: cannot listen on %s:%u: %s", host, port,
		         strerror(errno));
		admin_free(a);
		return NULL;
	}
	a->port = bound_port(sock);
	return a;
}

bool
admin_route(struct admin *a, const char *path, admin_handler_fn fn, void *ctx)
{
	size_t i;

	if (path == NULL || path[0] != '/' || fn == NULL || strchr(path, '?') != NULL) {
		return false;
	}
	for (i = 0; i < a->nroutes; i++) {
		if (strcmp(a->routes[i].path, path) == 0) {
			a->routes[i].fn = fn;
			a->routes[i].ctx = ctx;
			return true;
		}
	}
	if (a->nroutes == ADMIN_MAX_ROUTES) {
		return false;
	}
	a->routes[i].path = strdup(path);
	if (a->routes[i].path == NULL) {
		return false;
	}
	a->routes[i].fn = fn;
	a->routes[i].ctx = ctx;
	a->nroutes++;
	return true;
}

uint16_t
admin_port(const struct admin *a)
{
	return a->port;
}

void
admin_free(struct admin *a)
{
	if (a == NULL) {
		return;
	}
	if (a->http != NULL) {
		evhttp_free(a->http);
	}
	for (size_t i = 0; i < a->nroutes; i++) {
		free(a->routes[i].path);
	}
	free(a);
}

/* ---- dispatch ------------------------------------------------------------------------------ */

static const char *
reason_phrase(int code)
{
	switch (code) {
	case 200:
		return "OK";
	case 204:
		return "No Content";
	case 400:
		return "Bad Request";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 500:
		return "Internal Server Error";
	case 503:
		return "Service Unavailable";
	default:
		return code < 400 ? "OK" : "Error";
	}
}

static void
list_paths(const struct admin *a, struct evbuffer *b)
{
	for (size_t i = 0; i < a->nroutes; i++) {
		evbuffer_add_printf(b, "%s\n", a->routes[i].path);
	}
}

static const struct admin_route_ent *
find_route(const struct admin *a, const char *path)
{
	for (size_t i = 0; i < a->nroutes; i++) {
		if (strcmp(a->routes[i].path, path) == 0) {
			return &a->routes[i];
		}
	}
	return NULL;
}

static void
send_reply(struct admin_req *r)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(r->req);
	char len[32];

	evhttp_add_header(h, "Content-Type", r->type);
	evhttp_add_header(h, "Cache-Control", "no-store");
	if (r->head) {
		/* HEAD: the headers a GET would get, no body (RFC 9110 9.3.2) */
		snprintf(len, sizeof(len), "%zu", evbuffer_get_length(r->body));
		evhttp_add_header(h, "Content-Length", len);
		evbuffer_drain(r->body, evbuffer_get_length(r->body));
	}
	evhttp_send_reply(r->req, r->status, reason_phrase(r->status), r->body);
}

static void
admin_dispatch(struct evhttp_request *req, void *arg)
{
	struct admin *a = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	const struct admin_route_ent *route;
	struct admin_req r;

	memset(&r, 0, sizeof(r));
	r.req = req;
	r.status = 200;
	snprintf(r.type, sizeof(r.type), "text/plain; charset=utf-8");
	r.head = cmd == EVHTTP_REQ_HEAD;
	r.path = uri ? evhttp_uri_get_path(uri) : NULL;
	r.path = (r.path == NULL || r.path[0] == '\0') ? "/" : r.path;
	r.query = uri ? evhttp_uri_get_query(uri) : NULL;
	r.body = evbuffer_new();
	if (r.body == NULL) {
		evhttp_send_error(req, 500, NULL);
		return;
	}
	if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
		admin_reply_text(&r, 405, "only GET and HEAD are served");
	} else if ((route = find_route(a, r.path)) != NULL) {
		route->fn(route->ctx, &r);
	} else if (strcmp(r.path, "/") == 0) {
		list_paths(a, r.body);
	} else {
		r.status = 404;
		evbuffer_add_printf(r.body, "no page %s; pages:\n", r.path);
		list_paths(a, r.body);
	}
	send_reply(&r);
	if (r.params_parsed) {
		evhttp_clear_headers(&r.params);
	}
	evbuffer_free(r.body);
}

/* ---- handler API --------------------------------------------------------------------- */

const char *
admin_req_path(const struct admin_req *r)
{
	return r->path;
}

const char *
admin_req_param(struct admin_req *r, const char *key)
{
	if (r->query == NULL) {
		return NULL;
	}
	if (!r->params_parsed) { /* parsed once, on first use */
		TAILQ_INIT(&r->params);
		if (evhttp_parse_query_str(r->query, &r->params) != 0) {
			evhttp_clear_headers(&r->params); /* malformed query: no params */
			TAILQ_INIT(&r->params);
		}
		r->params_parsed = true;
	}
	return evhttp_find_header(&r->params, key);
}

bool
admin_req_is_head(const struct admin_req *r)
{
	return r->head;
}

struct evbuffer *
admin_req_body(struct admin_req *r)
{
	return r->body;
}

void
admin_req_set_status(struct admin_req *r, int code)
{
	r->status = (code >= 100 && code <= 599) ? code : 500;
}

void
admin_req_set_type(struct admin_req *r, const char *content_type)
{
	snprintf(r->type, sizeof(r->type), "%s", content_type);
}

bool
admin_req_add_header(struct admin_req *r, const char *name, const char *value)
{
	if (strcasecmp(name, "Content-Type") == 0) {
		admin_req_set_type(r, value);
		return true;
	}
	return evhttp_add_header(evhttp_request_get_output_headers(r->req), name, value) == 0;
}

void
admin_reply_text(struct admin_req *r, int code, const char *msg)
{
	evbuffer_drain(r->body, evbuffer_get_length(r->body));
	admin_req_set_status(r, code);
	admin_req_set_type(r, "text/plain; charset=utf-8");
	evbuffer_add_printf(r->body, "%s\n", msg);
}

static int
dump_to_evbuffer(const char *buf, size_t size, void *data)
{
	return evbuffer_add(data, buf, size);
}

/* json_dump_callback rather than json_dumpb: one pass, no size probe, no temporary. */
bool
admin_reply_json(struct admin_req *r, json_t *j, size_t flags)
{
	bool ok;

	evbuffer_drain(r->body, evbuffer_get_length(r->body));
	ok = j != NULL && json_dump_callback(j, dump_to_evbuffer, r->body, flags) == 0 &&
	     evbuffer_add(r->body, "\n", 1) == 0;
	json_decref(j);
	if (!ok) {
		admin_reply_text(r, 500, "cannot serialize the response");
		return false;
	}
	admin_req_set_type(r, "application/json");
	return true;
}

/* ---- Prometheus text format -------------------------------------------------------- */

static void
prom_escape(struct evbuffer *b, const char *s, bool quote)
{
	const char *run = s;

	for (; *s != '\0'; s++) {
		const char *rep = NULL;

		if (*s == '\\') {
			rep = "\\\\";
		} else if (*s == '\n') {
			rep = "\\n";
		} else if (*s == '"' && quote) {
			rep = "\\\"";
		}
		if (rep != NULL) {
			evbuffer_add(b, run, (size_t)(s - run));
			evbuffer_add(b, rep, 2);
			run = s + 1;
		}
	}
	evbuffer_add(b, run, (size_t)(s - run));
}

void
prom_escape_label(struct evbuffer *b, const char *s)
{
	prom_escape(b, s ? s : "", true);
}

void
prom_header(struct evbuffer *b, const char *name, const char *type, const char *help)
{
	if (help != NULL) {
		evbuffer_add_printf(b, "# HELP %s ", name);
		prom_escape(b, help, false);
		evbuffer_add(b, "\n", 1);
	}
	evbuffer_add_printf(b, "# TYPE %s %s\n", name, type);
}

static void
prom_name_labels(struct evbuffer *b, const char *name, const char *labels[][2], size_t n)
{
	evbuffer_add_printf(b, "%s", name);
	if (n == 0) {
		return;
	}
	evbuffer_add(b, "{", 1);
	for (size_t i = 0; i < n; i++) {
		evbuffer_add_printf(b, "%s%s=\"", i ? "," : "", labels[i][0]);
		prom_escape_label(b, labels[i][1]);
		evbuffer_add(b, "\"", 1);
	}
	evbuffer_add(b, "}", 1);
}

void
prom_sample(struct evbuffer *b, const char *name, const char *labels[][2], size_t nlabels,
            double value)
{
	char num[40];

	prom_name_labels(b, name, labels, nlabels);
	if (isnan(value)) {
		snprintf(num, sizeof(num), "NaN");
	} else if (isinf(value)) {
		snprintf(num, sizeof(num), "%s", value > 0 ? "+Inf" : "-Inf");
	} else {
		/* shortest of %.15g / %.17g that reads back as the same double */
		snprintf(num, sizeof(num), "%.15g", value);
		if (strtod(num, NULL) != value) {
			snprintf(num, sizeof(num), "%.17g", value);
		}
	}
	evbuffer_add_printf(b, " %s\n", num);
}

void
prom_sample_u64(struct evbuffer *b, const char *name, const char *labels[][2], size_t nlabels,
                uint64_t value)
{
	prom_name_labels(b, name, labels, nlabels);
	evbuffer_add_printf(b, " %llu\n", (unsigned long long)value);
}
