/* tests/unit/test_admin.c: the admin HTTP server on a free loopback port, queried by a
 * raw HTTP/1.1 client running in the same event loop (so the exact bytes on the wire
 * are checked) and by curl; plus the Prometheus text helpers' escaping. */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <jansson.h>

#include "proxy/admin.h"
#include "proxy/mirror.h"

struct resp {
	int status;       /* from the status line, 0 if none */
	char head[4096];  /* status line and headers */
	char body[65536]; /* body as received */
	size_t body_len;  /* its length */
};

struct client {
	struct event_base *base;
	struct evbuffer *in; /* everything received */
	bool done;           /* EOF or error */
};

static void
client_read_cb(struct bufferevent *bev, void *arg)
{
	struct client *c = arg;

	evbuffer_add_buffer(c->in, bufferevent_get_input(bev));
}

static void
client_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct client *c = arg;

	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		evbuffer_add_buffer(c->in, bufferevent_get_input(bev));
		c->done = true;
		event_base_loopbreak(c->base);
	}
}

static void
parse_resp(struct evbuffer *in, struct resp *r)
{
	size_t n = evbuffer_get_length(in);
	char *all = malloc(n + 1);
	char *sep;

	assert_non_null(all);
	evbuffer_remove(in, all, n);
	all[n] = '\0';
	memset(r, 0, sizeof(*r));
	sep = strstr(all, "\r\n\r\n");
	assert_non_null(sep);
	assert_true((size_t)(sep - all) < sizeof(r->head));
	memcpy(r->head, all, (size_t)(sep - all) + 2);
	r->body_len = n - (size_t)(sep + 4 - all);
	assert_true(r->body_len < sizeof(r->body));
	memcpy(r->body, sep + 4, r->body_len);
	assert_int_equal(sscanf(all, "HTTP/1.1 %d ", &r->status), 1);
	free(all);
}

/* Send raw request bytes, read until the server closes; the loop is the test's own. */
static void
raw_http(struct event_base *base, uint16_t port, const char *request, struct resp *r)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	struct client c = {base, evbuffer_new(), false};
	struct timeval limit = {3, 0};
	struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_non_null(bev);
	bufferevent_setcb(bev, client_read_cb, NULL, client_event_cb, &c);
	bufferevent_enable(bev, EV_READ);
	assert_int_equal(bufferevent_socket_connect(bev, (struct sockaddr *)&sa, sizeof(sa)), 0);
	bufferevent_write(bev, request, strlen(request));
	event_base_loopexit(base, &limit);
	event_base_dispatch(base);
	assert_true(c.done);
	bufferevent_free(bev);
	parse_resp(c.in, r);
	evbuffer_free(c.in);
}

static void
get(struct event_base *base, uint16_t port, const char *method, const char *path, struct resp *r)
{
	char req[512];

	snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
	         method, path);
	raw_http(base, port, req, r);
}

/* Value of header name in r->head, copied into out; false if absent. */
static bool
header(const struct resp *r, const char *name, char *out, size_t outlen)
{
	const char *p = r->head;
	size_t nl = strlen(name);

	while ((p = strstr(p, "\r\n")) != NULL) {
		p += 2;
		if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
			const char *v = p + nl + 1, *e;

			v += strspn(v, " ");
			e = strstr(v, "\r\n");
			snprintf(out, outlen, "%.*s", (int)(e ? e - v : (ptrdiff_t)strlen(v)), v);
			return true;
		}
	}
	return false;
}

/* ---- pages used by the tests ------------------------------------------------------ */

struct pages {
	int health_calls; /* how often /health ran */
	bool unhealthy;   /* /health answers 503 when set */
};

static void
page_metrics(void *ctx, struct admin_req *r)
{
	const char *l1[][2] = {{"table", "t1"}, {"keyspace", "targetkeyspace"}};
	const char *l2[][2] = {{"digest", "say \"hi\"\\now\nnext"}};

	(void)ctx;
	admin_req_set_type(r, PROM_CONTENT_TYPE);
	prom_header(admin_req_body(r), "routetrace_statements_total", "counter",
	            "Statements by table and reached keyspace.");
	prom_sample_u64(admin_req_body(r), "routetrace_statements_total", l1, 2, 42);
	prom_header(admin_req_body(r), "routetrace_odd", "gauge", NULL);
	prom_sample(admin_req_body(r), "routetrace_odd", l2, 1, 0.5);
}

static void
page_health(void *ctx, struct admin_req *r)
{
	struct pages *p = ctx;

	p->health_calls++;
	if (p->unhealthy) {
		admin_req_set_status(r, 503);
	}
	admin_reply_json(r,
	                 json_pack("{s:s, s:b}", "status", p->unhealthy ? "stale" : "ok",
	                           "mirror_stale", p->unhealthy),
	                 JSON_SORT_KEYS);
}

static void
page_echo(void *ctx, struct admin_req *r)
{
	const char *v = admin_req_param(r, "v");

	(void)ctx;
	admin_req_add_header(r, "X-Echo-Path", admin_req_path(r));
	evbuffer_add_printf(admin_req_body(r), "v=%s\n", v ? v : "(none)");
}

static void
page_null_json(void *ctx, struct admin_req *r)
{
	(void)ctx;
	evbuffer_add_printf(admin_req_body(r), "partial output that must not be sent");
	assert_false(admin_reply_json(r, NULL, 0));
}

struct fixture {
	struct event_base *base;
	struct admin *a;
	struct pages pages;
};

static int teardown(void **state);

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char err[256];

	*state = f;
	if (f == NULL || (f->base = event_base_new()) == NULL) {
		goto fail;
	}
	f->a = admin_new(f->base, "127.0.0.1:0", err, sizeof(err));
	if (f->a == NULL) {
		fprintf(stderr, "admin_new: %s\n", err);
		goto fail;
	}
	if (!admin_route(f->a, "/metrics", page_metrics, NULL) ||
	    !admin_route(f->a, "/health", page_health, &f->pages) ||
	    !admin_route(f->a, "/echo", page_echo, NULL) ||
	    !admin_route(f->a, "/broken", page_null_json, NULL)) {
		goto fail;
	}
	return 0;
fail:
	if (f != NULL) {
		teardown(state);
	}
	*state = NULL;
	return -1;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	if (f == NULL) {
		return 0;
	}
	admin_free(f->a);
	if (f->base != NULL) {
		event_base_free(f->base);
	}
	free(f);
	return 0;
}

/* ---- tests ---------------------------------------------------------------------------- */

static void
test_metrics_page(void **state)
{
	struct fixture *f = *state;
	struct resp r;
	char v[256];

	get(f->base, admin_port(f->a), "GET", "/metrics", &r);
	assert_int_equal(r.status, 200);
	assert_true(header(&r, "Content-Type", v, sizeof(v)));
	assert_string_equal(v, "text/plain; version=0.0.4; charset=utf-8");
	assert_true(header(&r, "Content-Length", v, sizeof(v)));
	assert_int_equal(atoi(v), (int)r.body_len);
	assert_string_equal(
	    r.body, "# HELP routetrace_statements_total Statements by table and reached keyspace.\n"
	            "# TYPE routetrace_statements_total counter\n"
	            "routetrace_statements_total{table=\"t1\",keyspace=\"targetkeyspace\"} 42\n"
	            "# TYPE routetrace_odd gauge\n"
	            "routetrace_odd{digest=\"say \\\"hi\\\"\\\\now\\nnext\"} 0.5\n");
}

static void
test_json_status_and_head(void **state)
{
	struct fixture *f = *state;
	struct resp r, h;
	json_error_t jerr;
	json_t *j;
	char v[256];

	f->pages.unhealthy = true;
	get(f->base, admin_port(f->a), "GET", "/health", &r);
	assert_int_equal(r.status, 503);
	assert_true(header(&r, "Content-Type", v, sizeof(v)));
	assert_string_equal(v, "application/json");
	assert_string_equal(r.body, "{\"mirror_stale\": true, \"status\": \"stale\"}\n");
	j = json_loadb(r.body, r.body_len, 0, &jerr);
	assert_non_null(j);
	json_decref(j);

	f->pages.unhealthy = false;
	get(f->base, admin_port(f->a), "GET", "/health", &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "{\"mirror_stale\": false, \"status\": \"ok\"}\n");

	/* HEAD: same status and headers, Content-Length of the GET body, no body bytes */
	get(f->base, admin_port(f->a), "HEAD", "/health", &h);
	assert_int_equal(h.status, 200);
	assert_int_equal(h.body_len, 0);
	assert_true(header(&h, "Content-Length", v, sizeof(v)));
	assert_int_equal(atoi(v), (int)r.body_len);
	assert_true(header(&h, "Content-Type", v, sizeof(v)));
	assert_string_equal(v, "application/json");
	assert_int_equal(f->pages.health_calls, 3);
}

static void
test_not_found_lists_paths(void **state)
{
	struct fixture *f = *state;
	struct resp r;

	get(f->base, admin_port(f->a), "GET", "/nope", &r);
	assert_int_equal(r.status, 404);
	assert_string_equal(r.body, "no page /nope; pages:\n/metrics\n/health\n/echo\n/broken\n");
	get(f->base, admin_port(f->a), "GET", "/", &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "/metrics\n/health\n/echo\n/broken\n");
	/* exact match only: a prefix or a trailing slash is another page */
	get(f->base, admin_port(f->a), "GET", "/metrics/", &r);
	assert_int_equal(r.status, 404);
	get(f->base, admin_port(f->a), "GET", "/metric", &r);
	assert_int_equal(r.status, 404);
}

static void
test_methods_and_params(void **state)
{
	struct fixture *f = *state;
	struct resp r;
	char v[64];

	raw_http(
	    f->base, admin_port(f->a),
	    "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi",
	    &r);
	assert_int_equal(r.status, 405);
	assert_true(header(&r, "Allow", v, sizeof(v)));
	assert_string_equal(v, "GET, HEAD");
	get(f->base, admin_port(f->a), "DELETE", "/health", &r);
	assert_int_equal(r.status, 405);
	assert_int_equal(f->pages.health_calls, 0); /* handler never ran */

	get(f->base, admin_port(f->a), "GET", "/echo?x=1&v=a%20b", &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "v=a b\n");
	assert_true(header(&r, "X-Echo-Path", v, sizeof(v)));
	assert_string_equal(v, "/echo");
	get(f->base, admin_port(f->a), "GET", "/echo", &r);
	assert_string_equal(r.body, "v=(none)\n");

	get(f->base, admin_port(f->a), "GET", "/broken", &r);
	assert_int_equal(r.status, 500);
	assert_string_equal(r.body, "cannot serialize the response\n");
}

static void
test_curl_client(void **state)
{
	struct fixture *f = *state;
	char url[64], out[4096];
	struct evbuffer *got = evbuffer_new();
	int pfd[2], status = 0;
	pid_t pid;

	snprintf(url, sizeof(url), "http://127.0.0.1:%u/metrics", admin_port(f->a));
	assert_int_equal(pipe(pfd), 0);
	pid = fork();
	if (pid == 0) {
		dup2(pfd[1], 1);
		close(pfd[0]);
		close(pfd[1]);
		execlp("curl", "curl", "-sS", "--max-time", "3", url, (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	evutil_make_socket_nonblocking(pfd[0]);
	/* serve while curl runs: read its stdout through the loop until EOF */
	for (int i = 0; i < 400; i++) {
		ssize_t n = evbuffer_read(got, pfd[0], 4096);

		if (n == 0) {
			break;
		}
		struct timeval ten = {0, 10000};

		event_base_loopexit(f->base, &ten);
		event_base_dispatch(f->base);
	}
	close(pfd[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	size_t n = evbuffer_get_length(got);

	assert_true(n < sizeof(out));
	evbuffer_remove(got, out, n);
	out[n] = '\0';
	evbuffer_free(got);
	assert_non_null(strstr(
	    out, "routetrace_statements_total{table=\"t1\",keyspace=\"targetkeyspace\"} 42\n"));
}

static bool
mirror_accept(void *ctx, const char *data, size_t len, const char *origin, char *err, size_t errlen)
{
	(void)ctx;
	(void)data;
	(void)len;
	(void)origin;
	(void)err;
	(void)errlen;
	return true;
}

static void
page_mirror(void *ctx, struct admin_req *r)
{
	admin_reply_json(r, mirror_status_json(ctx), 0);
}

/* The mirror's status page served through the admin server: what /health builds on. */
static void
test_mirror_status_page(void **state)
{
	struct fixture *f = *state;
	struct mirror_opts o = {50, 500, 0};
	struct timeval wait = {0, 200000};
	struct mirror *m;
	struct resp r;
	json_error_t jerr;
	json_t *j;
	char err[256];

	m = mirror_new(f->base, "file:/nonexistent/rules.json", &o, mirror_accept, NULL, err,
	               sizeof(err));
	assert_non_null(m);
	assert_true(admin_route(f->a, "/mirror", page_mirror, m));
	event_base_loopexit(f->base, &wait);
	event_base_dispatch(f->base);
	get(f->base, admin_port(f->a), "GET", "/mirror", &r);
	assert_int_equal(r.status, 200);
	j = json_loadb(r.body, r.body_len, 0, &jerr);
	assert_non_null(j);
	assert_true(json_is_true(json_object_get(j, "stale")));
	assert_string_equal(json_string_value(json_object_get(j, "source")),
	                    "file:/nonexistent/rules.json");
	assert_true(json_integer_value(json_object_get(j, "consecutive_failures")) >= 2);
	json_decref(j);
	mirror_free(m);
}

static void
test_prom_helpers(void **state)
{
	struct evbuffer *b = evbuffer_new();
	const char *l[][2] = {
	    {"a", "back\\slash"}, {"b", "q\"uote"}, {"c", "new\nline"}, {"d", NULL}};
	char out[1024];
	size_t n;

	(void)state;
	prom_header(b, "m", "gauge", "help with \\ and\nnewline and \"quotes\"");
	prom_sample(b, "m", l, 4, 1);
	prom_sample(b, "m", NULL, 0, 0.1);
	prom_sample(b, "m", NULL, 0, NAN);
	prom_sample(b, "m", NULL, 0, INFINITY);
	prom_sample(b, "m", NULL, 0, -INFINITY);
	prom_sample(b, "m", NULL, 0, 1e21);
	prom_sample(b, "m", NULL, 0, 1.0 / 3);
	prom_sample_u64(b, "m", NULL, 0, UINT64_MAX);
	n = evbuffer_get_length(b);
	assert_true(n < sizeof(out));
	evbuffer_remove(b, out, n);
	out[n] = '\0';
	assert_string_equal(out,
	                    "# HELP m help with \\\\ and\\nnewline and \"quotes\"\n"
	                    "# TYPE m gauge\n"
	                    "m{a=\"back\\\\slash\",b=\"q\\\"uote\",c=\"new\\nline\",d=\"\"} 1\n"
	                    "m 0.1\n"
	                    "m NaN\n"
	                    "m +Inf\n"
	                    "m -Inf\n"
	                    "m 1e+21\n"
	                    "m 0.33333333333333331\n"
	                    "m 18446744073709551615\n");
	evbuffer_free(b);
}

static void
test_addresses_and_routes(void **state)
{
	static const char *const bad[] = {
	    "", "abc", "127.0.0.1:99999", "[::1", "127.0.0.1:x", "127.0.0.1:-1", "127.0.0.1:"};
	struct event_base *base = event_base_new();
	struct admin *a, *b;
	char err[256], addr[64];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_null(admin_new(base, bad[i], err, sizeof(err)));
		assert_true(err[0] != '\0');
	}
	assert_null(admin_new(base, NULL, err, sizeof(err)));

	/* ":0" means loopback; a second server on the same port fails with a reason */
	a = admin_new(base, ":0", err, sizeof(err));
	assert_non_null(a);
	assert_true(admin_port(a) > 0);
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", admin_port(a));
	b = admin_new(base, addr, err, sizeof(err));
	assert_null(b);
	assert_non_null(strstr(err, "cannot listen on 127.0.0.1"));

	/* route table rules */
	assert_false(admin_route(a, "metrics", page_echo, NULL));
	assert_false(admin_route(a, "/x?y", page_echo, NULL));
	assert_false(admin_route(a, "/x", NULL, NULL));
	for (int i = 0; i < ADMIN_MAX_ROUTES; i++) {
		char p[16];

		snprintf(p, sizeof(p), "/p%d", i);
		assert_true(admin_route(a, p, page_echo, NULL));
	}
	assert_false(admin_route(a, "/one-too-many", page_echo, NULL));
	assert_true(admin_route(a, "/p3", page_metrics, NULL)); /* replace is still fine */

	struct resp r;

	get(base, admin_port(a), "GET", "/p3", &r);
	assert_non_null(strstr(r.body, "routetrace_statements_total"));
	admin_free(a);
	admin_free(NULL);
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_metrics_page, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_json_status_and_head, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_not_found_lists_paths, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_methods_and_params, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_curl_client, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_mirror_status_page, setup, teardown),
	    cmocka_unit_test(test_prom_helpers),
	    cmocka_unit_test(test_addresses_and_routes),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests_name("admin", tests, NULL, NULL);
}
