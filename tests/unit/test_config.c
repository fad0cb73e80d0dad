/* tests/unit/test_config.c: the config key table, JSON loading, error positions,
 * overrides and reload rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "proxy/config.h"

static char path[64];

static const char *
write_conf(const char *text)
{
	FILE *f;
	int fd;

	snprintf(path, sizeof(path), "/tmp/rt-test-config-XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	fputs(text, f);
	fclose(f);
	return path;
}

static struct cfg *
load_text(const char *text, char *err)
{
	struct cfg *c = cfg_load(write_conf(text), NULL, 0, err, CFG_ERRLEN);

	unlink(path);
	return c;
}

static void
test_defaults(void **state)
{
	char err[CFG_ERRLEN] = "";
	struct cfg *c = cfg_load(NULL, NULL, 0, err, sizeof(err));

	(void)state;
	assert_non_null(c);
	assert_int_equal(c->n_listen, 1);
	assert_string_equal(c->listen[0].text, "127.0.0.1:3307");
	assert_int_equal(c->listen[0].family, AF_INET);
	assert_string_equal(c->upstream.text, "127.0.0.1:15306");
	assert_int_equal(c->idle_timeout_s, 0);
	assert_int_equal(c->buffer_high_water, 1048576);
	assert_int_equal(c->client_tls, CFG_TLS_PASSTHROUGH);
	assert_int_equal(c->log_level, LOG_LVL_INFO);
	cfg_unref(c);
}

static void
test_full_file(void **state)
{
	char err[CFG_ERRLEN] = "";
	struct cfg *c = load_text("{\n"
				  "  \"listen\": [\"127.0.0.1:4000\", \"[::1]:4001\", \"unix:/tmp/rt.sock\"],\n"
				  "  \"upstream\": \"unix:/run/vtgate.sock\",\n"
				  "  \"connect_timeout_ms\": 250,\n"
				  "  \"handshake_timeout_ms\": 999,\n"
				  "  \"idle_timeout_s\": 3600,\n"
				  "  \"max_client_connections\": 7,\n"
				  "  \"buffer_high_water\": 65536,\n"
				  "  \"max_inspect_bytes\": 2048,\n"
				  "  \"client_tls\": \"refuse\",\n"
				  "  \"log_level\": \"debug\",\n"
				  "  \"drain_timeout_s\": 0\n"
				  "}\n",
				  err);

	(void)state;
	assert_non_null(c);
	assert_int_equal(c->n_listen, 3);
	assert_int_equal(c->listen[1].family, AF_INET6);
	assert_int_equal(c->listen[2].family, AF_UNIX);
	assert_string_equal(((struct sockaddr_un *)(void *)&c->listen[2].sa)->sun_path, "/tmp/rt.sock");
	assert_int_equal(c->upstream.family, AF_UNIX);
	assert_int_equal(c->connect_timeout_ms, 250);
	assert_int_equal(c->handshake_timeout_ms, 999);
	assert_int_equal(c->idle_timeout_s, 3600);
	assert_int_equal(c->max_client_connections, 7);
	assert_int_equal(c->buffer_high_water, 65536);
	assert_int_equal(c->max_inspect_bytes, 2048);
	assert_int_equal(c->client_tls, CFG_TLS_REFUSE);
	assert_int_equal(c->log_level, LOG_LVL_DEBUG);
	assert_int_equal(c->drain_timeout_s, 0);
	cfg_unref(c);
}

struct err_case {
	const char *text;
	const char *want; /* substring of the error, after the file name */
};

static void
test_errors_name_position_and_key(void **state)
{
	static const struct err_case cases[] = {
		{"{\n  \"listen\": [\"127.0.0.1:1\"],\n  \"nope\": 1\n}\n", ":3:3: key 'nope': unknown key"},
		{"{\"idle_timeout_s\": \"5\"}", ":1:2: key 'idle_timeout_s': must be an integer"},
		{"{\n\n    \"buffer_high_water\": 10}", ":3:5: key 'buffer_high_water': must be an integer from 4096"},
		{"{\"client_tls\": \"maybe\"}", "key 'client_tls': must be one of passthrough, refuse; got 'maybe'"},
		{"{\"log_level\": \"loud\"}", "key 'log_level': must be error, warn, info or debug"},
		{"{\"upstream\": \"localhost\"}", "key 'upstream': 'localhost' is not host:port"},
		{"{\"upstream\": \"127.0.0.1:0\"}", "key 'upstream': '127.0.0.1:0': port must be 1..65535"},
		{"{\"upstream\": \"127.0.0.1:70000\"}", "port must be 1..65535"},
		{"{\"upstream\": \"unix:relative.sock\"}", "unix socket path must be absolute"},
		{"{\"listen\": []}", "key 'listen': must be a non-empty array"},
		{"{\"listen\": [1]}", "key 'listen': element 0 is not a string"},
		{"{\"max_client_connections\": 1, \"max_client_connections\": 2}", "duplicate object key"},
		{"{\"drain_timeout_s\": 1,\n \"x\" 2}", ":2:"},
		{"[1, 2]", ":1:1: the top level must be a JSON object"},
		{"{\"s\": {\"listen\": 1}}", "key 's': unknown key"},
	};
	char err[CFG_ERRLEN];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct cfg *c;

		err[0] = '\0';
		c = load_text(cases[i].text, err);
		if (c != NULL || strstr(err, cases[i].want) == NULL || strstr(err, path) != err)
			fail_msg("case %zu: got '%s', want '%s'", i, err, cases[i].want);
	}
}

static void
test_missing_file(void **state)
{
	char err[CFG_ERRLEN] = "";

	(void)state;
	assert_null(cfg_load("/nonexistent/rt.json", NULL, 0, err, sizeof(err)));
	assert_non_null(strstr(err, "/nonexistent/rt.json: No such file"));
}

static void
test_overrides(void **state)
{
	struct cfg_override ov[] = {
		{"listen", "127.0.0.1:5000"}, {"listen", "unix:/tmp/x.sock"},
		{"idle_timeout_s", "9"},      {"upstream", "[::1]:15306"},
	};
	struct cfg_override bad[] = {{"nope", "1"}};
	struct cfg_override badval[] = {{"connect_timeout_ms", "0"}};
	char err[CFG_ERRLEN] = "", buf[256];
	struct cfg *c;

	(void)state;
	c = cfg_load(write_conf("{\"listen\": [\"127.0.0.1:1\", \"127.0.0.1:2\"], \"idle_timeout_s\": 3}"),
		     ov, 4, err, sizeof(err));
	unlink(path);
	assert_non_null(c);
	/* the flags' list replaces the file's list */
	assert_int_equal(c->n_listen, 2);
	assert_true(cfg_format(c, "listen", buf, sizeof(buf)));
	assert_string_equal(buf, "127.0.0.1:5000,unix:/tmp/x.sock");
	assert_int_equal(c->idle_timeout_s, 9);
	assert_int_equal(c->upstream.family, AF_INET6);
	assert_false(cfg_format(c, "nope", buf, sizeof(buf)));
	cfg_unref(c);
	assert_null(cfg_load(NULL, bad, 1, err, sizeof(err)));
	assert_non_null(strstr(err, "command line: key 'nope': unknown key"));
	assert_null(cfg_load(NULL, badval, 1, err, sizeof(err)));
	assert_non_null(strstr(err, "key 'connect_timeout_ms': must be an integer from 1"));
}

static void
test_reload_keeps_restart_only_keys(void **state)
{
	struct cfg_override o1[] = {{"listen", "127.0.0.1:5000"}, {"idle_timeout_s", "1"}};
	struct cfg_override o2[] = {{"listen", "127.0.0.1:6000"}, {"idle_timeout_s", "2"},
				    {"upstream", "127.0.0.1:9"}};
	char err[CFG_ERRLEN];
	struct cfg *a = cfg_load(NULL, o1, 2, err, sizeof(err));
	struct cfg *b = cfg_load(NULL, o2, 3, err, sizeof(err));

	(void)state;
	assert_non_null(a);
	assert_non_null(b);
	log_set_level(LOG_LVL_ERROR); /* the warning is expected */
	cfg_keep_non_reloadable(a, b);
	assert_string_equal(b->listen[0].text, "127.0.0.1:5000");
	assert_int_equal(b->idle_timeout_s, 2);
	assert_string_equal(b->upstream.text, "127.0.0.1:9");
	assert_ptr_equal(cfg_ref(b), b);
	cfg_unref(b);
	cfg_unref(b);
	cfg_unref(a);
	cfg_unref(NULL);
}

static void
test_key_table(void **state)
{
	const char *name, *doc;
	bool reloadable;
	size_t n = 0;
	char err[CFG_ERRLEN], buf[64];
	struct cfg *c = cfg_load(NULL, NULL, 0, err, sizeof(err));

	(void)state;
	for (; cfg_key_info(n, &name, &reloadable, &doc); n++) {
		assert_true(strlen(doc) > 10);
		/* every key renders, so reload comparison and --check-config cover it */
		assert_true(cfg_format(c, name, buf, sizeof(buf)));
	}
	assert_true(n >= 11);
	cfg_unref(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_full_file),
		cmocka_unit_test(test_errors_name_position_and_key),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_overrides),
		cmocka_unit_test(test_reload_keeps_restart_only_keys),
		cmocka_unit_test(test_key_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
