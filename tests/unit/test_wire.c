/* tests/unit/test_wire.c: the MySQL conversation decoder, driven by hand-built packet
 * sequences.  Every scenario is fed whole, in 1-byte chunks and split at every byte
 * position of each flight, and must give the same event log each time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "proxy/wire.h"
#include "tests/unit/wire_script.h"

#define DEPR WIRE_CAP_DEPRECATE_EOF

struct run_opts {
	struct wire_limits lim;
	bool midstream;
	bool close;          /* call wire_conv_close at the end */
	const char *block_prefix;
	bool block_all;
	bool block_notext;
	uint8_t block_cmd;
};

/* Runs the script once; returns the log (NUL-terminated, caller frees). */
static char *
run_once(const struct script *s, const struct run_opts *o, size_t chunk, long split)
{
	struct ev_log l = {0};
	struct wire_conv *c;

	l.block_prefix = o->block_prefix;
	l.block_all = o->block_all;
	l.block_notext = o->block_notext;
	l.block_cmd = o->block_cmd;
	c = o->midstream ? wire_conv_new_midstream(ev_cb, ev_free_user, &l, &o->lim)
			 : wire_conv_new(ev_cb, ev_free_user, &l, &o->lim);
	assert_non_null(c);
	run_script(s, c, &l, chunk, split);
	if (o->close)
		wire_conv_close(c, 99);
	log_line(&l, "STATE user=%s target=%s known=%d status=%x pending=%u anomalies=%llu",
		 wire_conv_user(c), wire_conv_target(c), wire_conv_target_known(c),
		 wire_conv_status(c), wire_conv_pending(c),
		 (unsigned long long)wire_conv_anomalies(c));
	wire_conv_free(c);
	assert_int_equal(l.outstanding, 0); /* every context came back once */
	bb_u8(&l.text, 0);
	return (char *)l.text.p;
}

/* The split-invariance property: whole, 1-byte, and every split point of every flight
 * (sampled for flights over 4 KiB) give the same log.  Returns the log. */
/* WIRE_CORPUS_DIR=dir: also write each scenario as a fuzz_wire seed. */
static void
corpus_write(const struct script *s, const struct run_opts *o, size_t total)
{
	static unsigned n;
	const char *dir = getenv("WIRE_CORPUS_DIR");
	struct bb b = {0};
	char path[512];
	FILE *f;
	uint8_t opts = (uint8_t)((o->midstream ? 1 : 0) | (o->block_prefix ? 2 : 0) |
				 (o->lim.max_inspect == 100 ? 8 : 0) |
				 (o->lim.max_pending ? 16 : 0));

	if (!dir || total > (1u << 20))
		return;
	script_encode(s, opts, &b);
	snprintf(path, sizeof(path), "%s/seed-%03u", dir, n++);
	f = fopen(path, "wb");
	if (f) {
		fwrite(b.p, 1, b.n, f);
		fclose(f);
	}
	bb_free(&b);
}

static char *
run_all(const struct script *s, const struct run_opts *o)
{
	char *whole = run_once(s, o, 0, -1), *other;
	size_t maxn = 0, total = 0;

	for (int i = 0; i < s->n; i++) {
		maxn = s->step[i].n > maxn ? s->step[i].n : maxn;
		total += s->step[i].n;
	}
	corpus_write(s, o, total);
	if (total < (1u << 20)) {
		for (size_t ch = 1; ch < 9; ch += 6) {
			other = run_once(s, o, ch, 0);
			if (strcmp(whole, other) != 0)
				fail_msg("%zu-byte chunks differ:\n--- whole\n%s--- chunked\n%s", ch,
					 whole, other);
			free(other);
		}
	}
	for (size_t k = 1; k < maxn; k++) {
		/* big flights: the edges, around every 0xFFFFFF boundary, and 16 more points */
		if (maxn > 4096 && k > 64 && k < maxn - 64 && (k % (maxn / 16)) != 0 &&
		    (k % 0xFFFFFF) > 8 && (k % 0xFFFFFF) < 0xFFFFF8)
			continue;
		other = run_once(s, o, 0, (long)k);
		if (strcmp(whole, other) != 0)
			fail_msg("split at %zu differs:\n--- whole\n%s--- split\n%s", k, whole, other);
		free(other);
	}
	return whole;
}

/* Each expected substring must occur, in order. */
static void
expect_lines(const char *log, const char *const *want)
{
	const char *at = log;

	for (; *want; want++) {
		const char *h = strstr(at, *want);
		if (!h)
			fail_msg("missing (in order) \"%s\" in log:\n%s", *want, log);
		at = h + strlen(*want);
	}
}

static void
expect_absent(const char *log, const char *what)
{
	if (strstr(log, what))
		fail_msg("unexpected \"%s\" in log:\n%s", what, log);
}

#define EXPECT(log, ...)                                                                           \
	do {                                                                                       \
		const char *const w_[] = {__VA_ARGS__, NULL};                               \
		expect_lines(log, w_);                                                             \
	} while (0)

static const struct run_opts DEF = {{0, 0, 0}, false, false, NULL, false, false, 0};

/* ---- handshake ------------------------------------------------------------------------- */

static void
test_handshake_mysql(void **st)
{
	struct script s = {0};
	char *log;

	(void)st;
	sc_handshake(&s, TCAPS | DEPR, "commerce@replica");
	sc_cmd_bytes(&s, WIRE_COM_PING, NULL);
	srv_ok(&s, 0, 0x0002);
	log = run_all(&s, &DEF);
	EXPECT(log, "GREETING 8.0.31-vitess id=42 caps=13fa289 st=2 plugin=mysql_native_password",
	       "LOGIN user=app db=commerce@replica plugin=mysql_native_password caps=13fa289 coll=45 "
	       "attrs=2",
	       "ATTR _key0=val0", "ATTR _key1=val1", "AUTH_OK",
	       "TARGET commerce@replica <- ", "CMD #1 0x0e", "RESULT #1 u=1 idx=0 err=0",
	       "END #1 u=1 n=1", "STATE user=app target=commerce@replica known=1 status=2");
	expect_absent(log, "ANOMALY");
	free(log);
	sc_free(&s);
}

static void
test_handshake_mariadb_caps(void **st)
{
	struct script s = {0};
	struct bb b = {0};
	uint64_t g = (TCAPS & ~WIRE_CAP_LONG_PASSWORD) | WIRE_CAP_MARIADB_BULK |
		     WIRE_CAP_MARIADB_EXT_METADATA;
	char *log;

	(void)st;
	greeting_payload(&b, g, "5.5.5-10.11.6-MariaDB", "mysql_native_password");
	sc_srv(&s, &b);
	bb_free(&b);
	/* client announces a MariaDB bit the server never offered (progress) and one it did */
	login_payload(&b, (TCAPS & ~WIRE_CAP_LONG_PASSWORD & ~WIRE_CAP_CONNECT_ATTRS) |
			  WIRE_CAP_MARIADB_BULK | WIRE_CAP_MARIADB_PROGRESS, "root", NULL,
		      "client_ed25519", 0);
	sc_cli(&s, &b);
	bb_free(&b);
	srv_ok(&s, 0, 0x0002);
	log = run_all(&s, &DEF);
	/* effective = greeting AND client: bulk kept, progress and attrs dropped */
	EXPECT(log, "GREETING 5.5.5-10.11.6-MariaDB id=42 caps=c003fa288",
	       "LOGIN user=root db= plugin=client_ed25519 caps=4002fa288 coll=45 attrs=0", "AUTH_OK");
	expect_absent(log, "TARGET");
	free(log);
	sc_free(&s);
}

static void
test_greeting_err(void **st)
{
	struct script s = {0};
	char *log;

	(void)st;
	srv_err(&s, 1129, NULL, "Host '10.0.0.1' is blocked");
	log = run_all(&s, &DEF);
	EXPECT(log, "GREETING_ERR 1129 Host '10.0.0.1' is blocked");
	free(log);
	sc_free(&s);
}

static void
test_ssl_request_opaque(void **st)
{
	struct script s = {0};
	struct bb b = {0};
	char *log;

	(void)st;
	sc_greeting(&s, TCAPS | WIRE_CAP_SSL);
	bb_le(&b, (TCAPS | WIRE_CAP_SSL) & 0xFFFFFFFF, 4);
	bb_le(&b, 1 << 24, 4);
	bb_u8(&b, 45);
	bb_le(&b, 0, 23);
	sc_cli(&s, &b);
	bb_free(&b);
	bb_str(&b, "\x16\x03\x01 this is a TLS ClientHello, not MySQL \xff\xff\xff");
	sc_break(&s);
	bb_put(sc_flight(&s, WIRE_C2S), b.p, b.n);
	bb_put(sc_flight(&s, WIRE_S2C), b.p, b.n);
	bb_free(&b);
	log = run_all(&s, &DEF);
	EXPECT(log, "GREETING", "SSL", "STATE user= target= known=1");
	expect_absent(log, "ERROR");
	expect_absent(log, "LOGIN");
	free(log);
	sc_free(&s);
}

/* Auth rounds: native switch, ed25519 switch, caching_sha2 fast path (01 03 then OK in
 * a row), MariaDB raw dialog prompts; then an auth failure. */
static void
auth_script(struct script *s, int kind, bool fail)
{
	struct bb b = {0};

	sc_greeting(s, TCAPS);
	login_payload(&b, TCAPS, "bob", "", "mysql_native_password", 0);
	sc_cli(s, &b);
	bb_free(&b);
	if (kind == 0 || kind == 1) { /* AuthSwitchRequest, then the client's answer */
		bb_u8(&b, 0xFE);
		bb_strz(&b, kind == 0 ? "mysql_native_password" : "client_ed25519");
		bb_str(&b, "0123456789abcdefghijklmnopqrstuv");
		sc_srv(s, &b);
		bb_free(&b);
		bb_put(&b, "signature-bytes-signature-bytes-signature-bytes-signature-bytes!", 64);
		sc_cli(s, &b);
		bb_free(&b);
	} else if (kind == 2) { /* caching_sha2: 01 03 (fast auth ok) then OK */
		bb_u8(&b, 0x01);
		bb_u8(&b, 0x03);
		sc_srv(s, &b);
		bb_free(&b);
	} else { /* MariaDB dialog: raw prompt, answer, second prompt, answer */
		for (int i = 0; i < 2; i++) {
			bb_u8(&b, 0x04);
			bb_str(&b, "Password: ");
			sc_srv(s, &b);
			bb_free(&b);
			bb_strz(&b, "secret");
			sc_cli(s, &b);
			bb_free(&b);
		}
	}
	if (fail)
		srv_err(s, 1045, "28000", "Access denied for user 'bob'");
	else
		srv_ok(s, 0, 0x0002);
}

static void
test_auth_rounds(void **st)
{
	(void)st;
	for (int kind = 0; kind < 4; kind++) {
		for (int fail = 0; fail < 2; fail++) {
			struct script s = {0};
			char *log;

			auth_script(&s, kind, fail);
			if (!fail) {
				sc_cmd_bytes(&s, WIRE_COM_QUERY, "select 1");
				srv_ok(&s, 0, 0x0002);
			}
			log = run_all(&s, &DEF);
			if (fail) {
				EXPECT(log, "LOGIN user=bob", "AUTH_ERR 1045 Access denied");
				expect_absent(log, "AUTH_OK");
			} else {
				EXPECT(log, "LOGIN user=bob", "AUTH_OK", "CMD #1 0x03 text=select 1",
				       "END #1");
			}
			expect_absent(log, "ANOMALY");
			free(log);
			sc_free(&s);
		}
	}
}

static void
test_login_auth_encodings(void **st)
{
	static const uint64_t forms[] = {
		TCAPS,
		TCAPS & ~WIRE_CAP_PLUGIN_AUTH_LENENC,
		TCAPS & ~WIRE_CAP_PLUGIN_AUTH_LENENC & ~WIRE_CAP_SECURE_CONNECTION,
	};

	(void)st;
	for (size_t i = 0; i < 3; i++) {
		struct script s = {0};
		char *log;

		sc_handshake(&s, forms[i], "ks");
		log = run_all(&s, &DEF);
		EXPECT(log, "LOGIN user=app db=ks plugin=mysql_native_password", "attrs=2",
		       "ATTR _key1=val1", "TARGET ks <- ");
		expect_absent(log, "ANOMALY");
		free(log);
		sc_free(&s);
	}
}

/* ---- result sets ------------------------------------------------------------------------- */

static void
test_resultsets(void **st)
{
	(void)st;
	for (int d = 0; d < 2; d++) {
		struct script s = {0};
		char *log;

		sc_handshake(&s, TCAPS | (d ? DEPR : 0), NULL);
		sc_cmd_bytes(&s, WIRE_COM_QUERY, "select a, b, c from t");
		srv_resultset(&s, d, 3, 5, 0x0003);
		sc_cmd_bytes(&s, WIRE_COM_QUERY, "select nothing");
		srv_resultset(&s, d, 1, 0, 0x0002);
		sc_cmd_bytes(&s, WIRE_COM_QUERY, "select broken");
		srv_count(&s, 1);
		srv_coldef(&s, "x");
		if (!d)
			srv_eof(&s, 2);
		srv_text_row(&s, "1");
		srv_err(&s, 1317, "70100", "Query execution was interrupted");
		log = run_all(&s, &DEF);
		EXPECT(log, "CMD #1 0x03 text=select a, b, c from t",
		       "RESULT #1 u=1 idx=0 err=0 code=0 state= msg= rs=1 rows=5 aff=0 st=3 more=0",
		       "END #1 u=1 n=1", "RESULT #2 u=2 idx=0 err=0 code=0 state= msg= rs=1 rows=0",
		       "RESULT #3 u=3 idx=0 err=1 code=1317 state=70100 msg=Query execution was "
		       "interrupted rs=1 rows=1 aff=0 st=2",
		       "END #3 u=3 n=1 err=1", "status=2");
		expect_absent(log, "ANOMALY");
		free(log);
		sc_free(&s);
	}
}

/* A text row whose first byte is 0xFE inside a >= 16 MiB row: not a terminator. */
static void
test_big_fe_row(void **st)
{
	(void)st;
	for (int d = 0; d < 2; d++) {
		struct script s = {0};
		struct bb b = {0};
		size_t n = 0xFFFFFF + 100;
		char *log;

		sc_handshake(&s, TCAPS | (d ? DEPR : 0), NULL);
		sc_cmd_bytes(&s, WIRE_COM_QUERY, "select blob");
		srv_count(&s, 1);
		srv_coldef(&s, "b");
		if (!d)
			srv_eof(&s, 2);
		bb_u8(&b, 0xFE);
		bb_le(&b, n - 9, 8);
		while (b.n < n)
			bb_u8(&b, 'x');
		sc_srv(&s, &b);
		bb_free(&b);
		/* exactly 0xFFFFFF bytes: ends with an empty packet */
		bb_u8(&b, 0xFE);
		bb_le(&b, 0xFFFFFF - 9, 8);
		while (b.n < 0xFFFFFF)
			bb_u8(&b, 'y');
		sc_srv(&s, &b);
		bb_free(&b);
		srv_term(&s, d, 0x0002);
		log = run_all(&s, &DEF);
		EXPECT(log, "CMD #1 0x03 text=select blob", "RESULT #1 u=1 idx=0 err=0", "rows=2",
		       "END #1");
		expect_absent(log, "ANOMALY");
		free(log);
		sc_free(&s);
	}
}

/* A command of exactly 0xFFFFFF payload bytes (empty trailing packet), and one above. */
static void
test_big_command(void **st)
{
	struct script s = {0};
	struct bb b = {0};
	struct run_opts o = DEF;
	char *log;

	(void)st;
	o.lim.max_inspect = 32u << 20;
	sc_handshake(&s, TCAPS | DEPR, NULL);
	bb_u8(&b, WIRE_COM_QUERY);
	bb_str(&b, "insert into t values ('");
	while (b.n < 0xFFFFFF - 2)
		bb_u8(&b, 'z');
	bb_str(&b, "')");
	sc_cmd(&s, &b);
	srv_ok(&s, 1, 0x0002);
	bb_free(&b);
	bb_u8(&b, WIRE_COM_QUERY);
	bb_str(&b, "select '");
	while (b.n < 0xFFFFFF + 5)
		bb_u8(&b, 'w');
	bb_str(&b, "'");
	sc_cmd(&s, &b);
	bb_free(&b);
	srv_ok(&s, 0, 0x0002);
	log = run_all(&s, &o);
	EXPECT(log, "CMD #1 0x03 text=insert into t values ('zzz", "RESULT #1 u=1 idx=0 err=0",
	       "aff=1", "END #1", "CMD #2 0x03 text=select 'www", "END #2");
	expect_absent(log, "TRUNC");
	expect_absent(log, "ANOMALY");
	free(log);
	sc_free(&s);
}

/* Multi-statement COM_QUERY with a CALL, USE inside, and a chain. */
static void
test_multi_results_use(void **st)
{
	(void)st;
	for (int d = 0; d < 2; d++) {
		struct script s = {0};
		char *log;

		sc_handshake(&s, TCAPS | (d ? DEPR : 0), "first");
		sc_cmd_bytes(&s, WIRE_COM_QUERY,
			     "select 1; call p(); use `ks:-80@replica`; update t set a=1");
		srv_resultset(&s, d, 1, 1, 0x000A);
		srv_resultset(&s, d, 2, 3, 0x000A); /* CALL: two result sets, then its OK */
		srv_resultset(&s, d, 1, 2, 0x000A);
		srv_ok(&s, 0, 0x000A);              /* end of CALL */
		srv_ok(&s, 0, 0x000A);              /* USE */
		srv_ok(&s, 4, 0x0003);              /* UPDATE, in a transaction now */
		/* a failed USE: target unchanged */
		sc_cmd_bytes(&s, WIRE_COM_QUERY, "use nosuch");
		srv_err(&s, 1049, "42000", "Unknown database 'nosuch'");
		/* USE after a failing statement in the chain: never applied */
		sc_cmd_bytes(&s, WIRE_COM_QUERY, "select x; use other");
		srv_err(&s, 1054, "42S22", "Unknown column 'x'");
		log = run_all(&s, &DEF);
		EXPECT(log, "TARGET first <- ", "CMD #1",
		       "RESULT #1 u=1 idx=0 err=0 code=0 state= msg= rs=1 rows=1 aff=0 st=a more=1",
		       "RESULT #1 u=1 idx=1 err=0 code=0 state= msg= rs=1 rows=3 aff=0 st=a more=1",
		       "RESULT #1 u=1 idx=2 err=0 code=0 state= msg= rs=1 rows=2",
		       "RESULT #1 u=1 idx=3 err=0 code=0 state= msg= rs=0",
		       "TARGET ks:-80@replica <- first", "RESULT #1 u=1 idx=4",
		       "RESULT #1 u=1 idx=5 err=0 code=0 state= msg= rs=0 rows=0 aff=4 st=3 more=0",
		       "END #1 u=1 n=6", "CMD #2", "RESULT #2 u=2 idx=0 err=1 code=1049",
		       "END #2", "CMD #3", "RESULT #3 u=3 idx=0 err=1 code=1054", "END #3",
		       "STATE user=app target=ks:-80@replica known=1 status=3");
		expect_absent(log, "TARGET nosuch");
		expect_absent(log, "TARGET other");
		expect_absent(log, "ANOMALY");
		free(log);
		sc_free(&s);
	}
}

static void
test_local_infile(void **st)
{
	struct script s = {0};
	struct bb b = {0};
	char *log;

	(void)st;
	sc_handshake(&s, TCAPS | DEPR, NULL);
	sc_cmd_bytes(&s, WIRE_COM_QUERY, "load data local infile 'f' into table t; select 2");
	bb_u8(&b, 0xFB);
	bb_str(&b, "f");
	sc_srv(&s, &b);
	bb_free(&b);
	for (int i = 0; i < 300; i++) { /* seq wraps past 255 to 0 */
		bb_str(&b, i == 7 ? "" : "1,2,3\n");
		if (i == 7)
			bb_u8(&b, 0); /* a one-byte packet (not the end) */
		sc_cli(&s, &b);
		bb_free(&b);
	}
	sc_cli(&s, &b); /* empty packet: end of file */
	srv_ok(&s, 300, 0x000A);
	srv_resultset(&s, true, 1, 1, 0x0002);
	sc_cmd_bytes(&s, WIRE_COM_PING, NULL);
	srv_ok(&s, 0, 0x0002);
	log = run_all(&s, &DEF);
	EXPECT(log, "CMD #1 0x03 text=load data",
	       "RESULT #1 u=1 idx=0 err=0 code=0 state= msg= rs=0 rows=0 aff=300 st=a more=1",
	       "RESULT #1 u=1 idx=1 err=0 code=0 state= msg= rs=1 rows=1", "END #1 u=1 n=2",
	       "CMD #2 0x0e", "END #2");
	expect_absent(log, "ANOMALY");
	free(log);
	sc_free(&s);
}

/* ---- prepared statements ------------------------------------------------------------------- */

static void
srv_prepare_ok(struct script *s, bool deprecate, uint32_t id, unsigned ncols,
	       unsigned nparams)
{
	struct bb b = {0};

	bb_u8(&b, 0);
	bb_le(&b, id, 4);
	bb_le(&b, ncols, 2);
	bb_le(&b, nparams, 2);
	bb_u8(&b, 0);
	bb_le(&b, 0, 2);
	sc_srv(s, &b);
	bb_free(&b);
	for (unsigned i = 0; i < nparams; i++)
		srv_coldef(s, "?");
	if (nparams && !deprecate)
		srv_eof(s, 2);
	for (unsigned i = 0; i < ncols; i++)
		srv_coldef(s, "c");
	if (ncols && !deprecate)
		srv_eof(s, 2);
}

static void
cmd_stmt(struct script *s, uint8_t cmd, uint32_t id, uint8_t flags)
{
	struct bb b = {0};

	bb_u8(&b, cmd);
	bb_le(&b, id, 4);
	if (cmd == WIRE_COM_STMT_EXECUTE) {
		bb_u8(&b, flags);
		bb_le(&b, 1, 4);
		bb_u8(&b, 0); /* null bitmap */
		bb_u8(&b, 1); /* types follow */
		bb_u8(&b, 3);
		bb_u8(&b, 0);
		bb_le(&b, 7, 4);
	} else if (cmd == WIRE_COM_STMT_FETCH) {
		bb_le(&b, 2, 4);
	} else if (cmd == WIRE_COM_STMT_SEND_LONG_DATA) {
		bb_le(&b, 0, 2);
		bb_str(&b, "long data");
	}
	sc_cmd(s, &b);
	bb_free(&b);
}

static void
srv_bin_row(struct script *s)
{
	struct bb b = {0};
	bb_u8(&b, 0);
	bb_u8(&b, 0);
	bb_le(&b, 5, 4);
	sc_srv(s, &b);
	bb_free(&b);
}

static void
test_prepared(void **st)
{
	(void)st;
	for (int d = 0; d < 2; d++) {
		struct script s = {0};
		char *log;

		sc_handshake(&s, TCAPS | (d ? DEPR : 0), NULL);
		sc_cmd_bytes(&s, WIRE_COM_STMT_PREPARE, "select a from t where id = ?");
		srv_prepare_ok(&s, d, 7, 1, 1);
		sc_cmd_bytes(&s, WIRE_COM_STMT_PREPARE, "update t set a = ?, b = ?");
		srv_prepare_ok(&s, d, 8, 0, 2);
		sc_cmd_bytes(&s, WIRE_COM_STMT_PREPARE, "commit");
		srv_prepare_ok(&s, d, 9, 0, 0);
		cmd_stmt(&s, WIRE_COM_STMT_EXECUTE, 7, 0);
		srv_count(&s, 1);
		srv_coldef(&s, "a");
		if (!d)
			srv_eof(&s, 2);
		srv_bin_row(&s);
		srv_bin_row(&s);
		srv_term(&s, d, 0x0002);
		/* cursor: the response ends after the defs; FETCH gets the rows */
		cmd_stmt(&s, WIRE_COM_STMT_EXECUTE, 7, 1);
		srv_count(&s, 1);
		srv_coldef(&s, "a");
		srv_term(&s, d, 0x0042);
		cmd_stmt(&s, WIRE_COM_STMT_FETCH, 7, 0);
		srv_bin_row(&s);
		srv_bin_row(&s);
		srv_term(&s, d, 0x0042);
		cmd_stmt(&s, WIRE_COM_STMT_FETCH, 7, 0);
		srv_bin_row(&s);
		srv_term(&s, d, 0x00C2);
		cmd_stmt(&s, WIRE_COM_STMT_EXECUTE, 8, 0);
		srv_ok(&s, 2, 0x0003);
		cmd_stmt(&s, WIRE_COM_STMT_SEND_LONG_DATA, 8, 0);
		cmd_stmt(&s, WIRE_COM_STMT_RESET, 8, 0);
		srv_ok(&s, 0, 0x0003);
		cmd_stmt(&s, WIRE_COM_STMT_CLOSE, 8, 0);
		cmd_stmt(&s, WIRE_COM_STMT_EXECUTE, 8, 0); /* closed: unknown now */
		srv_err(&s, 1243, "HY000", "Unknown prepared statement handler");
		cmd_stmt(&s, WIRE_COM_STMT_EXECUTE, 0xFFFFFFFF, 0); /* MariaDB: last prepared */
		srv_ok(&s, 0, 0x0002);
		log = run_all(&s, &DEF);
		EXPECT(log, "CMD #1 0x16 text=select a from t where id = ?",
		       "RESULT #1 u=1 idx=0 err=0 code=0 state= msg= rs=0", "END #1",
		       "CMD #2 0x16", "END #2", "CMD #3 0x16 text=commit", "END #3",
		       "CMD #4 0x17 text=select a from t where id = ? stmt=7 known=1",
		       "RESULT #4 u=4 idx=0 err=0 code=0 state= msg= rs=1 rows=2", "END #4",
		       "CMD #5 0x17", "RESULT #5 u=5 idx=0 err=0 code=0 state= msg= rs=1 rows=0 "
		       "aff=0 st=42",
		       "END #5", "CMD #6 0x1c text= stmt=7 known=1",
		       "RESULT #6 u=6 idx=0 err=0 code=0 state= msg= rs=1 rows=2", "END #6",
		       "CMD #7 0x1c", "rows=1 aff=0 st=c2", "END #7",
		       "CMD #8 0x17 text=update t set a = ?, b = ? stmt=8 known=1", "aff=2",
		       "END #8", "CMD #9 0x18 text= stmt=8 known=1 opt=0 resp=0", "END #9",
		       "CMD #10 0x1a", "END #10", "CMD #11 0x19 text= stmt=8 known=1 opt=0 resp=0",
		       "END #11", "CMD #12 0x17 text= stmt=8 known=0", "err=1 code=1243",
		       "END #12", "CMD #13 0x17 text=commit stmt=9 known=1", "END #13");
		expect_absent(log, "ANOMALY");
		free(log);
		sc_free(&s);
	}
}

/* The count of a result, with MariaDB metadata caching's send-metadata byte after it. */
static void
srv_count_cached(struct script *s, uint64_t n, bool defs_follow)
{
	struct bb b = {0};

	bb_lenenc(&b, n);
	bb_u8(&b, defs_follow ? 1 : 0);
	sc_srv(s, &b);
	bb_free(&b);
}

/* MariaDB metadata caching (bit 36) negotiated, as the proxy lets it through: every result
 * count carries a send-metadata byte; 0 = no column definitions follow (an EXECUTE whose
 * metadata the client already has).  The decoder must stay in step either way. */
static void
test_cache_metadata(void **st)
{
	(void)st;
	for (int d = 0; d < 2; d++) {
		uint64_t caps = (TCAPS & ~WIRE_CAP_LONG_PASSWORD) | WIRE_CAP_MARIADB_CACHE_METADATA |
				(d ? DEPR : 0);
		struct script s = {0};
		char *log;

		sc_handshake(&s, caps, NULL);
		sc_cmd_bytes(&s, WIRE_COM_QUERY, "select a from t");
		srv_count_cached(&s, 1, true);
		srv_coldef(&s, "a");
		if (!d)
			srv_eof(&s, 2);
		srv_text_row(&s, "x");
		srv_term(&s, d, 0x0002);
		sc_cmd_bytes(&s, WIRE_COM_STMT_PREPARE, "select a, b from t where id = ?");
		srv_prepare_ok(&s, d, 7, 1, 2);
		for (int k = 0; k < 2; k++) { /* first EXECUTE: defs; the next: none */
			cmd_stmt(&s, WIRE_COM_STMT_EXECUTE, 7, 0);
			srv_count_cached(&s, 2, k == 0);
			if (k == 0) {
				srv_coldef(&s, "a");
				srv_coldef(&s, "b");
			}
			if (!d)
				srv_eof(&s, 2);
			srv_bin_row(&s);
			srv_bin_row(&s);
			srv_term(&s, d, 0x0002);
		}
		sc_cmd_bytes(&s, WIRE_COM_PING, NULL);
		srv_ok(&s, 0, 0x0002);
		log = run_all(&s, &DEF);
		EXPECT(log, "caps=1", "RESULT #1 u=1 idx=0 err=0 code=0 state= msg= rs=1 rows=1",
		       "END #1", "END #2", "CMD #3 0x17 text=select a, b from t where id = ? stmt=7",
		       "rs=1 rows=2", "END #3", "CMD #4 0x17", "rs=1 rows=2", "END #4",
		       "CMD #5 0x0e", "END #5", "pending=0 anomalies=0");
		expect_absent(log, "ANOMALY");
		free(log);
		sc_free(&s);
	}
}

/* MariaDB PREPARE + EXECUTE(-1) in one flight: EXECUTE carries the pending SQL. */
static void
test_prepare_execute_pipelined(void **st)
{
	struct script s = {0};
	struct bb b = {0};
	char *log;

	(void)st;
	sc_handshake(&s, TCAPS | DEPR, NULL);
	bb_u8(&b, WIRE_COM_STMT_PREPARE);
	bb_str(&b, "delete from t");
	sc_msg_seq(&s, WIRE_C2S, 0, b.p, b.n);
	bb_free(&b);
	bb_u8(&b, WIRE_COM_STMT_EXECUTE);
	bb_le(&b, 0xFFFFFFFF, 4);
	bb_u8(&b, 0);
	bb_le(&b, 1, 4);
	sc_msg_seq(&s, WIRE_C2S, 0, b.p, b.n);
	bb_free(&b);
	s.seq[0] = 1;
	srv_prepare_ok(&s, true, 3, 0, 0);
	s.seq[0] = 1;
	srv_ok(&s, 5, 0x0002);
	log = run_all(&s, &DEF);
	EXPECT(log, "CMD #1 0x16 text=delete from t",
	       "CMD #2 0x17 text=delete from t stmt=4294967295 known=0", "END #1",
	       "RESULT #2 u=2 idx=0 err=0 code=0 state= msg= rs=0 rows=0 aff=5", "END #2");
	expect_absent(log, "ANOMALY");
	free(log);
	sc_free(&s);
}

/* ---- other commands ----------------------------------------------------------------------- */

static void
cmd_set_option(struct script *s, uint16_t v)
{
	struct bb b = {0};
	bb_u8(&b, WIRE_COM_SET_OPTION);
	bb_le(&b, v, 2);
	sc_cmd(s, &b);
	bb_free(&b);
}

static void
test_misc_commands(void **st)
{
	(void)st;
	for (int d = 0; d < 2; d++) {
		struct script s = {0};
		struct bb b = {0};
		char *log;

		sc_handshake(&s, TCAPS | (d ? DEPR : 0), NULL);
		sc_cmd_bytes(&s, WIRE_COM_STATISTICS, NULL);
		bb_str(&b, "Uptime: 5  Threads: 1  Questions: 4");
		sc_srv(&s, &b);
		bb_free(&b);
		sc_cmd_bytes(&s, WIRE_COM_FIELD_LIST, "t");
		srv_coldef(&s, "a");
		srv_coldef(&s, "b");
		srv_term(&s, d, 0x0002);
		sc_cmd_bytes(&s, WIRE_COM_FIELD_LIST, "nosuch");
		srv_err(&s, 1047, "08S01", "command handling not implemented yet");
		cmd_set_option(&s, 1);
		srv_eof(&s, 0x0002);
		sc_cmd_bytes(&s, 0x0D, NULL); /* DEBUG: EOF (MariaDB) */
		srv_eof(&s, 0x0002);
		sc_cmd_bytes(&s, 0x33, "??"); /* unknown command: other, generic response */
		srv_err(&s, 1047, "08S01", "Unknown command");
		sc_cmd_bytes(&s, 0x0A, NULL); /* PROCESS_INFO: text result set */
		srv_resultset(&s, d, 2, 2, 0x0002);
		/* MariaDB progress report inside a response is not its end */
		sc_cmd_bytes(&s, WIRE_COM_QUERY, "alter table t add index (a)");
		bb_u8(&b, 0xFF);
		bb_le(&b, 0xFFFF, 2);
		bb_u8(&b, 1);
		bb_u8(&b, 2);
		bb_le(&b, 5000, 3);
		bb_lstr(&b, "copy to tmp table");
		sc_srv(&s, &b);
		bb_free(&b);
		srv_ok(&s, 0, 0x0002);
		sc_cmd_bytes(&s, WIRE_COM_QUIT, NULL);
		log = run_all(&s, &DEF);
		EXPECT(log, "CMD #1 0x09", "RESULT #1 u=1 idx=0 err=0", "END #1",
		       "CMD #2 0x04", "RESULT #2 u=2 idx=0 err=0 code=0 state= msg= rs=1 rows=2",
		       "END #2", "CMD #3 0x04", "err=1 code=1047", "END #3",
		       "CMD #4 0x1b text= stmt=0 known=0 opt=1", "END #4", "CMD #5 0x0d", "END #5",
		       "CMD #6 0x33", "err=1 code=1047", "END #6", "CMD #7 0x0a", "rows=2",
		       "END #7", "CMD #8 0x03", "RESULT #8 u=8 idx=0 err=0", "END #8",
		       "CMD #9 0x01 text= stmt=0 known=0 opt=0 resp=0", "END #9");
		expect_absent(log, "ANOMALY");
		free(log);
		sc_free(&s);
	}
}

static void
test_set_option_state(void **st)
{
	struct script s = {0};
	struct ev_log l = {0};
	struct wire_conv *c = wire_conv_new(ev_cb, ev_free_user, &l, NULL);

	(void)st;
	sc_handshake(&s, TCAPS, NULL);
	cmd_set_option(&s, 1);
	srv_eof(&s, 0x0002);
	run_script(&s, c, &l, 0, -1);
	assert_false(wire_conv_multi_statements(c));
	sc_free(&s);
	memset(&s, 0, sizeof(s));
	cmd_set_option(&s, 0);
	srv_eof(&s, 0x0002);
	run_script(&s, c, &l, 0, -1);
	assert_true(wire_conv_multi_statements(c));
	wire_conv_free(c);
	bb_free(&l.text);
	sc_free(&s);
}

/* ---- session target ------------------------------------------------------------------------ */

static void
cmd_change_user(struct script *s, const char *user, const char *db)
{
	struct bb b = {0};

	bb_u8(&b, WIRE_COM_CHANGE_USER);
	bb_strz(&b, user);
	bb_u8(&b, 20);
	bb_str(&b, "01234567890123456789");
	bb_strz(&b, db);
	bb_le(&b, 45, 2);
	bb_strz(&b, "mysql_native_password");
	sc_cmd(s, &b);
	bb_free(&b);
}

static void
test_target_tracking(void **st)
{
	struct script s = {0};
	struct bb b = {0};
	char *log;

	(void)st;
	sc_handshake(&s, TCAPS | DEPR, "ks1");
	sc_cmd_bytes(&s, WIRE_COM_INIT_DB, "ks2@rdonly");
	srv_ok(&s, 0, 0x0002);
	sc_cmd_bytes(&s, WIRE_COM_INIT_DB, "bad");
	srv_err(&s, 1049, "42000", "Unknown database 'bad'");
	sc_cmd_bytes(&s, WIRE_COM_QUERY, "/* c */ USE `ks3[-80]@replica`");
	srv_ok(&s, 0, 0x0002);
	sc_cmd_bytes(&s, WIRE_COM_QUERY, "use @primary");
	srv_ok(&s, 0, 0x0002);
	sc_cmd_bytes(&s, WIRE_COM_STMT_PREPARE, "select 1");
	srv_prepare_ok(&s, true, 1, 1, 0);
	sc_cmd_bytes(&s, WIRE_COM_RESET_CONNECTION, NULL);
	srv_ok(&s, 0, 0x0002);
	cmd_stmt(&s, WIRE_COM_STMT_EXECUTE, 1, 0); /* forgotten by the reset */
	srv_err(&s, 1243, "HY000", "Unknown prepared statement handler");
	/* CHANGE_USER: auth switch round, then OK: new user and db */
	cmd_change_user(&s, "carol", "ks4");
	bb_u8(&b, 0xFE);
	bb_strz(&b, "mysql_native_password");
	bb_str(&b, "0123456789abcdefghij");
	bb_u8(&b, 0);
	sc_srv(&s, &b);
	bb_free(&b);
	bb_str(&b, "01234567890123456789");
	sc_cli(&s, &b);
	bb_free(&b);
	srv_ok(&s, 0, 0x0002);
	/* a failed CHANGE_USER keeps everything */
	cmd_change_user(&s, "mallory", "ks5");
	srv_err(&s, 1045, "28000", "Access denied");
	log = run_all(&s, &DEF);
	EXPECT(log, "TARGET ks1 <- ", "CMD #1 0x02 text=ks2@rdonly", "TARGET ks2@rdonly <- ks1",
	       "END #1", "CMD #2 0x02 text=bad", "err=1 code=1049", "END #2", "CMD #3",
	       "TARGET ks3[-80]@replica <- ks2@rdonly", "END #3", "CMD #4",
	       "TARGET @primary <- ks3[-80]@replica", "END #4", "CMD #5", "END #5",
	       "CMD #6 0x1f", "TARGET  <- @primary", "END #6",
	       "CMD #7 0x17 text= stmt=1 known=0", "END #7", "CMD #8 0x11 text=carol",
	       "TARGET ks4 <- ", "RESULT #8 u=8 idx=0 err=0", "END #8", "CMD #9 0x11 text=mallory",
	       "err=1 code=1045", "END #9", "STATE user=carol target=ks4 known=1");
	expect_absent(log, "TARGET bad");
	expect_absent(log, "TARGET ks5");
	expect_absent(log, "ANOMALY");
	free(log);
	sc_free(&s);
}

/* ---- pipelining, blocking, status ---------------------------------------------------------- */

static void
test_pipelining(void **st)
{
	struct script s = {0};
	struct bb b = {0};
	char *log;

	(void)st;
	sc_handshake(&s, TCAPS | DEPR, NULL);
	/* four commands in one flight: QUERY, STMT_CLOSE (no response), PING, QUERY */
	bb_u8(&b, WIRE_COM_QUERY);
	bb_str(&b, "begin");
	sc_msg_seq(&s, WIRE_C2S, 0, b.p, b.n);
	bb_free(&b);
	bb_u8(&b, WIRE_COM_STMT_CLOSE);
	bb_le(&b, 5, 4);
	sc_msg_seq(&s, WIRE_C2S, 0, b.p, b.n);
	bb_free(&b);
	bb_u8(&b, WIRE_COM_PING);
	sc_msg_seq(&s, WIRE_C2S, 0, b.p, b.n);
	bb_free(&b);
	bb_u8(&b, WIRE_COM_QUERY);
	bb_str(&b, "select 1");
	sc_msg_seq(&s, WIRE_C2S, 0, b.p, b.n);
	bb_free(&b);
	s.seq[0] = 1;
	srv_ok(&s, 0, 0x0003);
	s.seq[0] = 1;
	srv_ok(&s, 0, 0x0003);
	s.seq[0] = 1;
	srv_resultset(&s, true, 1, 4, 0x0003);
	log = run_all(&s, &DEF);
	EXPECT(log, "CMD #1 0x03 text=begin", "CMD #2 0x19", "END #2", "CMD #3 0x0e",
	       "CMD #4 0x03 text=select 1", "RESULT #1 u=1 idx=0 err=0 code=0 state= msg= rs=0 "
	       "rows=0 aff=0 st=3",
	       "END #1", "RESULT #3", "END #3", "RESULT #4 u=4 idx=0 err=0 code=0 state= msg= "
	       "rs=1 rows=4",
	       "END #4", "STATE user=app target= known=1 status=3 pending=0");
	expect_absent(log, "ANOMALY");
	free(log);
	sc_free(&s);
}

/* The client-direction stop rule: one feed returns right after the first command. */
static void
test_feed_stops_after_command(void **st)
{
	struct script s = {0};
	struct bb b = {0};
	struct ev_log l = {0};
	struct wire_conv *c = wire_conv_new(ev_cb, ev_free_user, &l, NULL);
	size_t used = 0, first;

	(void)st;
	sc_handshake(&s, TCAPS, NULL);
	run_script(&s, c, &l, 0, -1);
	bb_le(&b, 9, 3);
	bb_u8(&b, 0);
	bb_u8(&b, WIRE_COM_QUERY);
	bb_str(&b, "select 1");
	first = b.n;
	bb_le(&b, 1, 3);
	bb_u8(&b, 0);
	bb_u8(&b, WIRE_COM_PING);
	bb_le(&b, 1, 3); /* a partial header of a third command */
	assert_false(wire_conv_c2s_holding(c));
	assert_int_equal(wire_conv_feed(c, WIRE_C2S, b.p, 6, 1, &used), WIRE_OK);
	assert_int_equal(used, 6);
	assert_true(wire_conv_c2s_holding(c)); /* inside a held QUERY */
	assert_int_equal(l.commands, 0);
	assert_int_equal(wire_conv_feed(c, WIRE_C2S, b.p + 6, b.n - 6, 1, &used), WIRE_OK);
	assert_int_equal(used, first - 6);
	assert_int_equal(l.commands, 1);
	assert_false(wire_conv_c2s_holding(c));
	assert_int_equal(wire_conv_feed(c, WIRE_C2S, b.p + first, b.n - first, 1, &used),
			 WIRE_OK);
	assert_int_equal(used, 5);
	assert_int_equal(l.commands, 2);
	assert_int_equal(wire_conv_feed(c, WIRE_C2S, b.p + first + 5, 3, 1, &used), WIRE_OK);
	assert_int_equal(used, 3);
	assert_true(wire_conv_c2s_holding(c)); /* a partial header is held too */
	assert_int_equal(wire_conv_pending(c), 2);
	wire_conv_close(c, 2);
	assert_int_equal(wire_conv_pending(c), 0);
	assert_int_equal(l.outstanding, 0);
	wire_conv_free(c);
	bb_free(&b);
	bb_free(&l.text);
	sc_free(&s);
}

/* Blocked commands: answered at once when nothing is pending; after the earlier
 * responses when something is. */
static void
test_blocking(void **st)
{
	struct script s = {0};
	struct bb b = {0};
	struct run_opts o = DEF;
	char *log;

	(void)st;
	o.block_prefix = "drop";
	sc_handshake(&s, TCAPS | DEPR, NULL);
	sc_cmd_bytes(&s, WIRE_COM_QUERY, "drop table t");
	sc_cmd_bytes(&s, WIRE_COM_QUERY, "select 1");
	srv_resultset(&s, true, 1, 1, 0x0002);
	/* pipelined: QUERY, blocked DROP, PING: BLOCKED comes after the first response */
	bb_u8(&b, WIRE_COM_QUERY);
	bb_str(&b, "select 2");
	sc_msg_seq(&s, WIRE_C2S, 0, b.p, b.n);
	bb_free(&b);
	bb_u8(&b, WIRE_COM_QUERY);
	bb_str(&b, "drop database x");
	sc_msg_seq(&s, WIRE_C2S, 0, b.p, b.n);
	bb_free(&b);
	bb_u8(&b, WIRE_COM_PING);
	sc_msg_seq(&s, WIRE_C2S, 0, b.p, b.n);
	bb_free(&b);
	s.seq[0] = 1;
	srv_resultset(&s, true, 1, 2, 0x0002);
	s.seq[0] = 1;
	srv_ok(&s, 0, 0x0002);
	log = run_all(&s, &o);
	EXPECT(log, "CMD #1 0x03 text=drop table t", "VERDICT block #1", "BLOCKED #1 u=1",
	       "END #1 u=1 n=0", "CMD #2 0x03 text=select 1", "END #2", "CMD #3", "CMD #4",
	       "VERDICT block #4", "CMD #5 0x0e", "RESULT #3", "END #3", "BLOCKED #4 u=4",
	       "END #4 u=4 n=0", "RESULT #5", "END #5", "pending=0");
	expect_absent(log, "ANOMALY");
	free(log);
	sc_free(&s);
}

/* An EXECUTE longer than the prefix it is decided on (CMD_PFX, 16 bytes): the same events
 * whole or split.  Whole, the decoder takes the whole packet with its verdict; cut before
 * the prefix ends, it decides on the prefix and drops the rest.  Either way none of it is
 * forwarded, which is the session's contract. */
static void
test_blocked_execute(void **st)
{
	struct script s = {0};
	struct ev_log l = {0};
	struct wire_conv *c;
	size_t used, n;
	const uint8_t *p;
	char *log;

	(void)st;
	sc_handshake(&s, TCAPS | DEPR, NULL);
	sc_cmd_bytes(&s, WIRE_COM_STMT_PREPARE, "delete from t");
	srv_prepare_ok(&s, true, 7, 0, 1);
	int exec_step = s.n; /* a client flight: the EXECUTE, then a query */
	cmd_stmt(&s, WIRE_COM_STMT_EXECUTE, 7, 0);
	sc_cmd_bytes(&s, WIRE_COM_QUERY, "select 1");
	srv_ok(&s, 0, 0x0002);
	for (int split = 0; split < 2; split++) {
		c = wire_conv_new(ev_cb, ev_free_user, &l, &DEF.lim);
		l.block_cmd = WIRE_COM_STMT_EXECUTE;
		for (int i = 0; i < exec_step; i++)
			assert_true(feed_flight(c, &l, s.dir[i], s.step[i].p, s.step[i].n, 0, 0));
		p = s.step[exec_step].p;
		n = 4 + ((size_t)p[0] | (size_t)p[1] << 8 | (size_t)p[2] << 16);
		assert_true(n > 4 + 16 && p[4] == WIRE_COM_STMT_EXECUTE);
		if (split) {
			assert_int_equal(wire_conv_feed(c, WIRE_C2S, p, 10, 1, &used), WIRE_OK);
			assert_int_equal(used, 10);
			assert_int_equal(wire_conv_feed(c, WIRE_C2S, p + 10, s.step[exec_step].n - 10,
							1, &used), WIRE_OK);
			assert_int_equal(used, 4 + 16 - 10);
			assert_true(wire_conv_c2s_dropping(c));
			p += 4 + 16;
			n -= 4 + 16;
		}
		/* the rest of the flight is there: only the EXECUTE's bytes are taken */
		size_t rest = s.step[exec_step].n - (size_t)(p - s.step[exec_step].p);
		assert_int_equal(wire_conv_feed(c, WIRE_C2S, p, rest, 1, &used), WIRE_OK);
		assert_int_equal(used, n);
		assert_false(wire_conv_c2s_dropping(c));
		assert_int_equal(l.blocked, 1);
		wire_conv_free(c);
		bb_free(&l.text);
		memset(&l, 0, sizeof(l));
	}
	struct run_opts o = DEF;
	o.block_cmd = WIRE_COM_STMT_EXECUTE;
	log = run_all(&s, &o);
	EXPECT(log, "CMD #1 0x16 text=delete from t", "END #1",
	       "CMD #2 0x17 text=delete from t stmt=7", "VERDICT block #2", "BLOCKED #2", "END #2",
	       "CMD #3 0x03 text=select 1", "RESULT #3", "END #3");
	free(log);
	sc_free(&s);
}

/* Over the inspection cap: the event fires on the prefix; a blocked one is dropped. */
static void
test_truncated_inspect(void **st)
{
	struct script s = {0};
	struct bb b = {0};
	struct run_opts o = DEF;
	struct ev_log l = {0};
	struct wire_conv *c;
	size_t used;
	char *log;

	(void)st;
	o.lim.max_inspect = 100;
	o.block_prefix = "drop";
	sc_handshake(&s, TCAPS | DEPR, NULL);
	bb_u8(&b, WIRE_COM_QUERY);
	bb_str(&b, "drop table t /*");
	while (b.n < 300)
		bb_u8(&b, '*');
	bb_str(&b, "/");
	sc_cmd(&s, &b);
	bb_free(&b);
	bb_u8(&b, WIRE_COM_QUERY);
	bb_str(&b, "select '");
	while (b.n < 300)
		bb_u8(&b, 'q');
	bb_str(&b, "'");
	sc_cmd(&s, &b);
	bb_free(&b);
	srv_ok(&s, 0, 0x0002);
	log = run_all(&s, &o);
	EXPECT(log, "CMD #1 0x03 text=drop table t /*****", "[TRUNC]", "BLOCKED #1", "END #1",
	       "CMD #2 0x03 text=select 'qqq", "[TRUNC]", "RESULT #2", "END #2");
	free(log);

	/* the dropping contract, by hand */
	c = wire_conv_new(ev_cb, ev_free_user, &l, &o.lim);
	l.block_prefix = "drop";
	run_script(&s, c, &l, 0, -1);
	sc_free(&s);
	memset(&s, 0, sizeof(s));
	bb_u8(&b, WIRE_COM_QUERY);
	bb_str(&b, "drop table u ");
	while (b.n < 250)
		bb_u8(&b, ' ');
	sc_cmd(&s, &b);
	bb_free(&b);
	assert_int_equal(wire_conv_feed(c, WIRE_C2S, s.step[0].p, s.step[0].n, 1, &used), WIRE_OK);
	assert_int_equal(used, 4 + 100);
	assert_true(wire_conv_c2s_dropping(c));
	assert_int_equal(wire_conv_feed(c, WIRE_C2S, s.step[0].p + used, s.step[0].n - used, 1,
					&used), WIRE_OK);
	assert_int_equal(used, 150);
	assert_false(wire_conv_c2s_dropping(c));
	assert_int_equal(l.blocked, 2);
	wire_conv_free(c);
	bb_free(&l.text);
	sc_free(&s);
}

static void
test_status_tracking(void **st)
{
	struct script s = {0};
	struct ev_log l = {0};
	struct wire_conv *c = wire_conv_new(ev_cb, ev_free_user, &l, NULL);

	(void)st;
	sc_handshake(&s, TCAPS, NULL);
	run_script(&s, c, &l, 0, -1);
	assert_false(wire_conv_in_transaction(c));
	assert_int_equal(wire_conv_status(c), 0x0002);
	sc_free(&s);
	memset(&s, 0, sizeof(s));
	sc_cmd_bytes(&s, WIRE_COM_QUERY, "begin");
	srv_ok(&s, 0, 0x0003);
	run_script(&s, c, &l, 0, -1);
	assert_true(wire_conv_in_transaction(c));
	sc_free(&s);
	memset(&s, 0, sizeof(s));
	sc_cmd_bytes(&s, WIRE_COM_QUERY, "insert oops");
	srv_err(&s, 1064, "42000", "syntax");
	run_script(&s, c, &l, 0, -1);
	assert_true(wire_conv_in_transaction(c)); /* ERR keeps the state */
	sc_free(&s);
	memset(&s, 0, sizeof(s));
	sc_cmd_bytes(&s, WIRE_COM_QUERY, "select 1");
	srv_resultset(&s, false, 1, 1, 0x0000); /* EOF terminator: autocommit off, no trx */
	run_script(&s, c, &l, 0, -1);
	assert_false(wire_conv_in_transaction(c));
	assert_int_equal(wire_conv_status(c), 0);
	wire_conv_free(c);
	bb_free(&l.text);
	sc_free(&s);
}

/* ---- capture: mid-stream and gaps ---------------------------------------------------------- */

static void
test_midstream(void **st)
{
	struct script s = {0};
	struct bb b = {0};
	struct run_opts o = DEF;
	char *log;

	(void)st;
	o.midstream = true;
	/* the tail of an old response and of an old client packet, then a real command */
	bb_str(&b, "\x05\x00\x00\x07garbage rows \xfe\x00\x00\x02\x00");
	bb_put(sc_flight(&s, WIRE_S2C), b.p, b.n);
	bb_free(&b);
	bb_str(&b, "\x10\x00\x00\x03\x03\x01\x02 mid-packet bytes \x00\x00\x00\x00\x05\x00");
	bb_put(sc_flight(&s, WIRE_C2S), b.p, b.n);
	bb_free(&b);
	sc_cmd_bytes(&s, WIRE_COM_QUERY, "select * from t1 where a = 1");
	srv_resultset(&s, true, 1, 2, 0x0002);
	sc_cmd_bytes(&s, WIRE_COM_QUERY, "use ks9");
	srv_ok(&s, 0, 0x0002);
	log = run_all(&s, &o);
	EXPECT(log, "RESYNC", "CMD #1 0x03 text=select * from t1 where a = 1",
	       "RESULT #1 u=1 idx=0 err=0 code=0 state= msg= rs=1 rows=2", "END #1",
	       "CMD #2", "TARGET ks9 <- ", "END #2", "STATE user=unknown target=ks9 known=1");
	free(log);
	sc_free(&s);

	/* before any USE the target stays unknown; a gap forgets it again */
	{
		struct ev_log l = {0};
		struct wire_conv *c = wire_conv_new_midstream(ev_cb, ev_free_user, &l, NULL);

		memset(&s, 0, sizeof(s));
		sc_cmd_bytes(&s, WIRE_COM_PING, NULL);
		run_script(&s, c, &l, 0, -1);
		assert_false(wire_conv_target_known(c));
		assert_string_equal(wire_conv_user(c), "unknown");
		assert_int_equal(wire_conv_pending(c), 1);
		wire_conv_gap(c, WIRE_S2C);
		assert_int_equal(wire_conv_pending(c), 0); /* aborted */
		assert_int_equal(l.outstanding, 0);
		assert_non_null(strstr((char *)l.text.p, "abort=1"));
		wire_conv_free(c);
		bb_free(&l.text);
		sc_free(&s);
	}
}

/* A USE is found wherever it starts in the query (the filter before splitting reads
 * eight bytes at a time), in either case, after decoys that are not "use". */
static void
test_use_at_every_offset(void **st)
{
	static const char *const decoy[] = {"", "u", "us", "uU", "sUs", "select 1;"};

	(void)st;
	for (unsigned k = 0; k < 24; k++) {
		struct script s = {0};
		char q[96], want[32];
		char *log;
		int n;

		n = snprintf(q, sizeof(q), "%*s%s%s ks%u", (int)k, "", decoy[k % 6],
			     (k & 1) ? "; UsE" : "; use", k);
		assert_true(n > 0 && (size_t)n < sizeof(q));
		sc_handshake(&s, TCAPS | DEPR, "ks");
		sc_cmd_bytes(&s, WIRE_COM_QUERY, q);
		srv_ok(&s, 0, 0x000A);
		srv_ok(&s, 0, 0x0002);
		log = run_all(&s, &DEF);
		snprintf(want, sizeof(want), "TARGET ks%u <- ks", k);
		assert_non_null(strstr(log, want));
		free(log);
		sc_free(&s);
	}
	for (unsigned k = 0; k < 12; k++) {
		struct script s = {0};
		char q[64];
		char *log;

		snprintf(q, sizeof(q), "%*sselect u, s, e, us, se from uuse_not", (int)k, "");
		sc_handshake(&s, TCAPS | DEPR, "ks");
		sc_cmd_bytes(&s, WIRE_COM_QUERY, q);
		srv_ok(&s, 0, 0x0002);
		log = run_all(&s, &DEF);
		assert_null(strstr(log, "TARGET ks <- ks"));
		assert_null(strstr(log, "TARGET uuse"));
		free(log);
		sc_free(&s);
	}
}

/* ---- hostile input -------------------------------------------------------------------------- */

static void
expect_error(const struct script *s, const struct run_opts *o, const char *reason)
{
	char *log = run_all(s, o);

	EXPECT(log, "ERROR ", reason);
	free(log);
}

static void
test_hostile(void **st)
{
	struct script s = {0};
	struct bb b = {0};
	struct run_opts o = DEF;

	(void)st;
	/* HTTP instead of MySQL */
	bb_str(&b, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
	bb_put(sc_flight(&s, WIRE_S2C), b.p, b.n);
	bb_free(&b);
	expect_error(&s, &o, "greeting protocol byte");
	sc_free(&s);
	memset(&s, 0, sizeof(s));

	/* client speaks first */
	bb_str(&b, "GET / HTTP/1.0\r\n\r\n");
	bb_put(sc_flight(&s, WIRE_C2S), b.p, b.n);
	bb_free(&b);
	expect_error(&s, &o, "before the server greeting");
	sc_free(&s);
	memset(&s, 0, sizeof(s));

	/* empty command packet */
	sc_handshake(&s, TCAPS, NULL);
	bb_put(sc_flight(&s, WIRE_C2S), "\x00\x00\x00\x00", 4);
	expect_error(&s, &o, "empty command packet");
	sc_free(&s);
	memset(&s, 0, sizeof(s));

	/* pipelining past max_pending */
	o.lim.max_pending = 8;
	sc_handshake(&s, TCAPS, NULL);
	for (int i = 0; i < 20; i++)
		sc_cmd_bytes(&s, WIRE_COM_PING, NULL);
	expect_error(&s, &o, "pipelined without a response");
	sc_free(&s);
	memset(&s, 0, sizeof(s));
	o.lim.max_pending = 0;

	/* an absurd column count */
	sc_handshake(&s, TCAPS, NULL);
	sc_cmd_bytes(&s, WIRE_COM_QUERY, "select 1");
	srv_count(&s, 1ULL << 20);
	expect_error(&s, &o, "implausible column count");
	sc_free(&s);
	memset(&s, 0, sizeof(s));

	/* a short HandshakeResponse41 */
	sc_greeting(&s, TCAPS);
	bb_le(&b, TCAPS, 4);
	bb_str(&b, "abc");
	sc_cli(&s, &b);
	bb_free(&b);
	expect_error(&s, &o, "malformed HandshakeResponse41");
	sc_free(&s);
	memset(&s, 0, sizeof(s));

	/* tolerated: wrong seq, a stray server packet, a huge length that is just streamed */
	{
		char *log;

		sc_handshake(&s, TCAPS | DEPR, NULL);
		sc_cmd_bytes(&s, WIRE_COM_PING, NULL);
		s.seq[0] = 5;
		srv_ok(&s, 0, 0x0002);
		srv_ok(&s, 0, 0x0002); /* stray */
		sc_cmd_bytes(&s, WIRE_COM_QUERY, "select 1");
		srv_count(&s, 1);
		srv_coldef(&s, "a");
		bb_put(sc_flight(&s, WIRE_S2C), "\xff\xff\xfe\x03\x01", 5); /* row of 16 MiB-2, cut */
		log = run_all(&s, &DEF);
		EXPECT(log, "CMD #1", "ANOMALY sequence id mismatch", "END #1",
		       "ANOMALY server packet with no command pending", "CMD #2",
		       "STATE user=app target= known=1 status=2 pending=1 anomalies=2");
		expect_absent(log, "ERROR");
		free(log);
		sc_free(&s);
	}
}

/* ---- close and free -------------------------------------------------------------------------- */

static void
test_close_aborts_pending(void **st)
{
	struct script s = {0};
	struct run_opts o = DEF;
	char *log;

	(void)st;
	o.close = true;
	sc_handshake(&s, TCAPS | DEPR, NULL);
	sc_cmd_bytes(&s, WIRE_COM_QUERY, "select * from big");
	srv_count(&s, 1);
	srv_coldef(&s, "a");
	srv_text_row(&s, "1");
	srv_text_row(&s, "2");
	log = run_all(&s, &o);
	EXPECT(log, "CMD #1", "RESULT #1 u=1 idx=0 err=0 code=0 state= msg= rs=1 rows=2 aff=0 "
			      "st=2 more=0 abort=1",
	       "END #1 u=1 n=1 err=0 abort=1", "pending=0");
	free(log);

	/* without close: free releases the context through the hook */
	{
		struct ev_log l = {0};
		struct wire_conv *c = wire_conv_new(ev_cb, ev_free_user, &l, NULL);

		run_script(&s, c, &l, 0, -1);
		assert_int_equal(l.outstanding, 1);
		wire_conv_free(c);
		assert_int_equal(l.frees, 1);
		assert_int_equal(l.outstanding, 0);
		bb_free(&l.text);
	}
	sc_free(&s);
}

static void
test_more_shapes(void **st)
{
	struct script s = {0};
	struct bb b = {0};
	struct run_opts o = DEF;
	char *log;

	(void)st;
	sc_handshake(&s, TCAPS, NULL);
	sc_cmd_bytes(&s, WIRE_COM_STMT_PREPARE, "selec oops");
	srv_err(&s, 1064, "42000", "You have an error");
	/* BULK_EXECUTE (MariaDB) gets OK/ERR */
	bb_u8(&b, WIRE_COM_STMT_BULK_EXECUTE);
	bb_le(&b, 77, 4);
	bb_le(&b, 0, 2);
	sc_cmd(&s, &b);
	bb_free(&b);
	srv_ok(&s, 3, 0x0002);
	/* BINLOG_DUMP: the conversation becomes opaque */
	bb_u8(&b, WIRE_COM_BINLOG_DUMP);
	bb_le(&b, 4, 4);
	bb_le(&b, 0, 2);
	bb_le(&b, 1, 4);
	bb_str(&b, "binlog.000001");
	sc_cmd(&s, &b);
	bb_free(&b);
	bb_put(sc_flight(&s, WIRE_S2C), "\x20\x00\x00\x01\x00 binlog event bytes ....... \xff\xfe", 36);
	o.close = true;
	log = run_all(&s, &o);
	EXPECT(log, "CMD #1 0x16 text=selec oops", "RESULT #1 u=1 idx=0 err=1 code=1064",
	       "END #1", "CMD #2 0xfa text= stmt=77 known=0", "aff=3", "END #2", "CMD #3 0x12",
	       "RESULT #3 u=3 idx=0 err=0 code=0 state= msg= rs=0 rows=0 aff=0 st=2 more=0 "
	       "abort=1",
	       "END #3 u=3 n=1 err=0 abort=1");
	free(log);
	sc_free(&s);
}

/* Pre-4.1 login (relayed, not decoded) and the old auth switch (0xFE alone). */
static void
test_login320_old_switch(void **st)
{
	struct script s = {0};
	struct bb b = {0};
	struct run_opts o = DEF;
	char *log;

	(void)st;
	o.close = true;
	sc_greeting(&s, TCAPS);
	bb_le(&b, WIRE_CAP_LONG_PASSWORD | WIRE_CAP_CONNECT_WITH_DB, 2);
	bb_le(&b, 0xFFFFFF, 3);
	bb_strz(&b, "old");
	bb_strz(&b, "scramble");
	bb_strz(&b, "db");
	sc_cli(&s, &b);
	bb_free(&b);
	bb_u8(&b, 0xFE);
	sc_srv(&s, &b);
	bb_free(&b);
	bb_strz(&b, "oldpass1");
	sc_cli(&s, &b);
	bb_free(&b);
	srv_ok(&s, 0, 0x0002);
	sc_cmd_bytes(&s, WIRE_COM_QUERY, "select 1");
	srv_resultset(&s, false, 1, 1, 0x0002);
	log = run_all(&s, &o);
	EXPECT(log, "GREETING", "ANOMALY HandshakeResponse320", "AUTH_OK", "CMD #1",
	       "rs=1 rows=1", "END #1");
	expect_absent(log, "LOGIN");
	free(log);
	sc_free(&s);
}

/* Mid-stream with unknown caps: the EOF-or-not question is learned from the packets. */
static void
test_midstream_learns_eof(void **st)
{
	(void)st;
	for (int d = 0; d < 2; d++) {
		struct script s = {0};
		struct run_opts o = DEF;
		char *log;

		o.midstream = true;
		sc_cmd_bytes(&s, WIRE_COM_QUERY, "select a from t");
		srv_resultset(&s, d, 1, 3, 0x0003);
		sc_cmd_bytes(&s, WIRE_COM_QUERY, "select b from t");
		srv_resultset(&s, d, 2, 0, 0x0002);
		sc_cmd_bytes(&s, WIRE_COM_STMT_PREPARE, "select ? from t");
		srv_prepare_ok(&s, d, 1, 1, 1);
		sc_cmd_bytes(&s, WIRE_COM_PING, NULL);
		srv_ok(&s, 0, 0x0002);
		log = run_all(&s, &o);
		EXPECT(log, "RESYNC", "CMD #1", "RESULT #1 u=1 idx=0 err=0 code=0 state= msg= rs=1 "
						  "rows=3 aff=0 st=3",
		       "END #1", "CMD #2", "rs=1 rows=0", "END #2", "CMD #3", "END #3", "CMD #4",
		       "END #4", "STATE user=unknown target= known=0 status=2 pending=0 "
				 "anomalies=0");
		free(log);
		sc_free(&s);
	}
}

/* ---- pure helpers ------------------------------------------------------------------------------ */

static void
test_clear_caps(void **st)
{
	struct bb b = {0};
	uint64_t caps = TCAPS | WIRE_CAP_SSL | WIRE_CAP_COMPRESS | WIRE_CAP_QUERY_ATTRIBUTES |
			WIRE_CAP_MARIADB_PROGRESS | WIRE_CAP_MARIADB_CACHE_METADATA |
			WIRE_CAP_MARIADB_BULK;
	struct ev_log l = {0};
	struct wire_conv *c;
	struct script s = {0};
	size_t used;

	(void)st;
	caps &= ~WIRE_CAP_LONG_PASSWORD; /* MariaDB form: extended caps present */
	greeting_payload(&b, caps, "5.5.5-10.11.6-MariaDB", "mysql_native_password");
	assert_true(wire_greeting_clear_caps(b.p, b.n, WIRE_CAPS_ALWAYS_CLEARED | WIRE_CAP_SSL));
	c = wire_conv_new(ev_cb, ev_free_user, &l, NULL);
	sc_srv(&s, &b);
	assert_int_equal(wire_conv_feed(c, WIRE_S2C, s.step[0].p, s.step[0].n, 0, &used), WIRE_OK);
	/* SSL, compression, attributes and progress cleared; bulk and metadata caching kept */
	EXPECT((bb_u8(&l.text, 0), (char *)l.text.p), "caps=14003fa288");
	wire_conv_free(c);
	bb_free(&l.text);
	sc_free(&s);
	assert_false(wire_greeting_clear_caps(b.p, 10, 0));
	b.p[0] = 0x09;
	assert_false(wire_greeting_clear_caps(b.p, b.n, 0));
	bb_free(&b);

	login_payload(&b, caps | WIRE_CAP_MARIADB_PROGRESS, "u", NULL, "p", 0);
	assert_true(wire_login_clear_caps(b.p, b.n, WIRE_CAPS_ALWAYS_CLEARED | WIRE_CAP_SSL));
	assert_int_equal(b.p[0] | b.p[1] << 8 | b.p[2] << 16 | (uint32_t)b.p[3] << 24,
			 (uint32_t)(caps & ~(WIRE_CAPS_ALWAYS_CLEARED | WIRE_CAP_SSL)));
	assert_int_equal(b.p[28],
			 (uint8_t)((WIRE_CAP_MARIADB_BULK | WIRE_CAP_MARIADB_CACHE_METADATA) >> 32));
	assert_false(wire_login_clear_caps(b.p, 1, 0));
	bb_free(&b);
}

static void
test_build_err(void **st)
{
	uint8_t out[64];
	size_t n;

	(void)st;
	n = wire_build_err(out, sizeof(out), 1, 1105, "HY000", "blocked by routetrace");
	assert_int_equal(n, 4 + 9 + 21);
	assert_memory_equal(out, "\x1e\x00\x00\x01\xff\x51\x04#HY000blocked by routetrace", n);
	n = wire_build_err(out, 20, 1, 1105, "HY000", "a long message that is cut");
	assert_int_equal(n, 20);
	assert_int_equal(out[0], 16);
	assert_memory_equal(out + 13, "a long ", 7);
	assert_int_equal(wire_build_err(out, 12, 1, 1, "HY000", "x"), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_handshake_mysql),
		cmocka_unit_test(test_handshake_mariadb_caps),
		cmocka_unit_test(test_greeting_err),
		cmocka_unit_test(test_ssl_request_opaque),
		cmocka_unit_test(test_auth_rounds),
		cmocka_unit_test(test_login_auth_encodings),
		cmocka_unit_test(test_resultsets),
		cmocka_unit_test(test_big_fe_row),
		cmocka_unit_test(test_big_command),
		cmocka_unit_test(test_multi_results_use),
		cmocka_unit_test(test_local_infile),
		cmocka_unit_test(test_prepared),
		cmocka_unit_test(test_prepare_execute_pipelined),
		cmocka_unit_test(test_cache_metadata),
		cmocka_unit_test(test_misc_commands),
		cmocka_unit_test(test_set_option_state),
		cmocka_unit_test(test_target_tracking),
		cmocka_unit_test(test_use_at_every_offset),
		cmocka_unit_test(test_pipelining),
		cmocka_unit_test(test_feed_stops_after_command),
		cmocka_unit_test(test_blocking),
		cmocka_unit_test(test_blocked_execute),
		cmocka_unit_test(test_truncated_inspect),
		cmocka_unit_test(test_status_tracking),
		cmocka_unit_test(test_midstream),
		cmocka_unit_test(test_hostile),
		cmocka_unit_test(test_close_aborts_pending),
		cmocka_unit_test(test_more_shapes),
		cmocka_unit_test(test_login320_old_switch),
		cmocka_unit_test(test_midstream_learns_eof),
		cmocka_unit_test(test_clear_caps),
		cmocka_unit_test(test_build_err),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
