/* tests/integ/rt_client.c: a MariaDB Connector/C client for the integration tests.
 * Every mode prints a canonical dump of what the client saw (result metadata, row bytes,
 * OK/ERR fields), so a run through the proxy can be diffed against a direct run.
 *
 *   rt_client login  HOST PORT USER PW [DB]        -> "OK user db" | "ERR code state msg"
 *   rt_client script HOST PORT USER PW DB FILE     -> dump of each line of FILE:
 *        Q <sql>            text protocol, every result of a multi-result response
 *        P <sql>            prepared + executed (no params), binary rows
 *        S <scenario> [arg] ps_types | big_rows | load_data FILE | change_user U PW |
 *                           reset_connection
 *   rt_client stress HOST PORT USER PW CLIENTS QUERIES  -> "stress ok=N failed=N"
 *   rt_client abandon HOST PORT USER PW ROWS       -> starts a big result, reads ROWS
 *                                                     rows, then drops the socket
 *   rt_client killed HOST PORT USER PW SECONDS     -> runs SLEEP(SECONDS); prints the
 *                                                     error it gets and its connection id
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mysql.h>

#define BIG (20u << 20) /* a row over 16 MiB: two physical packets */

static const char *host, *user, *pw, *db;
static unsigned port;

static uint64_t
fnv64(const void *p, size_t n)
{
	const unsigned char *b = p;
	uint64_t h = 1469598103934665603ULL;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 1099511628211ULL;
	return h;
}

/* A value: small ones in hex, big ones as length + hash. */
static void
dump_value(const char *v, unsigned long len)
{
	if (v == NULL) {
		printf(" NULL");
		return;
	}
	if (len > 64) {
		printf(" [%lu:%016" PRIx64 "]", len, fnv64(v, len));
		return;
	}
	printf(" ");
	for (unsigned long i = 0; i < len; i++)
		printf("%02x", (unsigned char)v[i]);
	if (len == 0)
		printf("''");
}

static void
dump_fields(MYSQL_FIELD *f, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		printf("field %s|%s|%s|%s|%s|%s len=%lu max=%lu type=%d flags=%u dec=%u cs=%u\n",
		       f[i].name, f[i].org_name, f[i].table, f[i].org_table, f[i].db, f[i].catalog,
		       f[i].length, f[i].max_length, (int)f[i].type, f[i].flags, f[i].decimals,
		       f[i].charsetnr);
}

static void
dump_err(MYSQL *m)
{
	printf("ERR %u %s %s\n", mysql_errno(m), mysql_sqlstate(m), mysql_error(m));
}

static void
dump_ok(MYSQL *m)
{
	unsigned status = 0;

	mariadb_get_infov(m, MARIADB_CONNECTION_SERVER_STATUS, &status);
	printf("OK affected=%llu insert_id=%llu warnings=%u status=0x%04x info=%s\n",
	       (unsigned long long)mysql_affected_rows(m), (unsigned long long)mysql_insert_id(m),
	       mysql_warning_count(m), status & ~0x4000u, mysql_info(m) ? mysql_info(m) : "");
}

static void
dump_result(MYSQL_RES *r)
{
	unsigned n = mysql_num_fields(r);
	MYSQL_ROW row;

	printf("result fields=%u rows=%llu\n", n, (unsigned long long)mysql_num_rows(r));
	dump_fields(mysql_fetch_fields(r), n);
	while ((row = mysql_fetch_row(r)) != NULL) {
		unsigned long *len = mysql_fetch_lengths(r);

		printf("row");
		for (unsigned i = 0; i < n; i++)
			dump_value(row[i], len[i]);
		printf("\n");
	}
}

/* Text protocol: every result of the response (multi-statements, CALL). */
static void
run_query(MYSQL *m, const char *sql, size_t len)
{
	int rc = mysql_real_query(m, sql, (unsigned long)len);

	for (;;) {
		if (rc != 0) {
			dump_err(m);
			return;
		}
		MYSQL_RES *r = mysql_store_result(m);

		if (r != NULL) {
			dump_result(r);
			mysql_free_result(r);
		} else if (mysql_field_count(m) == 0) {
			dump_ok(m);
		} else {
			dump_err(m);
			return;
		}
		rc = mysql_next_result(m);
		if (rc == -1)
			return;
		rc = rc > 0 ? 1 : 0;
	}
}

static void
runq(MYSQL *m, const char *sql)
{
	run_query(m, sql, strlen(sql));
}

/* Binary protocol rows of an executed statement, every column fetched as bytes. */
static void
dump_stmt_rows(MYSQL_STMT *st)
{
	MYSQL_RES *meta = mysql_stmt_result_metadata(st);
	unsigned n;
	MYSQL_BIND *b;
	unsigned long *lens;
	my_bool *nulls;
	bool on = true;

	if (meta == NULL) {
		printf("stmt OK affected=%llu insert_id=%llu\n",
		       (unsigned long long)mysql_stmt_affected_rows(st),
		       (unsigned long long)mysql_stmt_insert_id(st));
		return;
	}
	n = mysql_num_fields(meta);
	mysql_stmt_attr_set(st, STMT_ATTR_UPDATE_MAX_LENGTH, &on);
	if (mysql_stmt_store_result(st) != 0) {
		printf("ERR %u %s\n", mysql_stmt_errno(st), mysql_stmt_error(st));
		mysql_free_result(meta);
		return;
	}
	printf("stmt result fields=%u rows=%llu\n", n, (unsigned long long)mysql_stmt_num_rows(st));
	dump_fields(mysql_fetch_fields(meta), n);
	b = calloc(n, sizeof(*b));
	lens = calloc(n, sizeof(*lens));
	nulls = calloc(n, sizeof(*nulls));
	for (unsigned i = 0; i < n; i++) {
		MYSQL_FIELD *f = mysql_fetch_field_direct(meta, i);

		b[i].buffer_type = MYSQL_TYPE_STRING;
		b[i].buffer_length = f->max_length + 1;
		b[i].buffer = malloc(b[i].buffer_length);
		b[i].length = &lens[i];
		b[i].is_null = &nulls[i];
	}
	mysql_stmt_bind_result(st, b);
	while (mysql_stmt_fetch(st) == 0) {
		printf("row");
		for (unsigned i = 0; i < n; i++)
			dump_value(nulls[i] ? NULL : b[i].buffer, lens[i]);
		printf("\n");
	}
	for (unsigned i = 0; i < n; i++)
		free(b[i].buffer);
	free(b);
	free(lens);
	free(nulls);
	mysql_free_result(meta);
}

static MYSQL_STMT *
prepare(MYSQL *m, const char *sql)
{
	MYSQL_STMT *st = mysql_stmt_init(m);

	if (mysql_stmt_prepare(st, sql, (unsigned long)strlen(sql)) != 0) {
		printf("ERR prepare %u %s\n", mysql_stmt_errno(st), mysql_stmt_error(st));
		mysql_stmt_close(st);
		return NULL;
	}
	printf("prepared params=%lu fields=%u\n", mysql_stmt_param_count(st),
	       mysql_stmt_field_count(st));
	return st;
}

static void
run_prepared(MYSQL *m, const char *sql)
{
	MYSQL_STMT *st = prepare(m, sql);

	if (st == NULL)
		return;
	if (mysql_stmt_execute(st) != 0)
		printf("ERR execute %u %s\n", mysql_stmt_errno(st), mysql_stmt_error(st));
	else
		dump_stmt_rows(st);
	mysql_stmt_close(st);
}

/* Prepared INSERT with every common parameter type, then both protocols read it back. */
static void
scenario_ps_types(MYSQL *m)
{
	signed char t8 = -7;
	short i16 = -1234;
	int i32 = 2000000001;
	long long i64 = -9000000000000000001LL;
	float f = 1.5f;
	double d = 3.141592653589793;
	char dec[] = "12345.6789", str[] = "h\xc3\xa9llo 'q' \"d\" \\", blob[300];
	MYSQL_TIME date = {.year = 2024, .month = 2, .day = 29, .time_type = MYSQL_TIMESTAMP_DATE};
	MYSQL_TIME tm = {.hour = 23, .minute = 59, .second = 58, .second_part = 123456,
			 .time_type = MYSQL_TIMESTAMP_TIME};
	MYSQL_TIME dt = {.year = 1999, .month = 12, .day = 31, .hour = 1, .minute = 2,
			 .second = 3, .second_part = 450000, .time_type = MYSQL_TIMESTAMP_DATETIME};
	my_bool isnull = 1;
	unsigned long declen = strlen(dec), strl = strlen(str), blobl = sizeof(blob);
	MYSQL_STMT *st;

	for (size_t i = 0; i < sizeof(blob); i++)
		blob[i] = (char)(i * 37);
	runq(m, "DROP TABLE IF EXISTS ps_types");
	runq(m, "CREATE TABLE ps_types (id INT AUTO_INCREMENT PRIMARY KEY, a TINYINT, "
		     "b SMALLINT, c INT, e BIGINT, f FLOAT, g DOUBLE, h DECIMAL(12,4), "
		     "i VARCHAR(64) CHARACTER SET utf8mb4, j BLOB, k DATE, l TIME(6), "
		     "m DATETIME(6), n INT NULL)");
	st = prepare(m, "INSERT INTO ps_types (a,b,c,e,f,g,h,i,j,k,l,m,n) "
			"VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)");
	if (st == NULL)
		return;
	MYSQL_BIND all[13];
	memset(all, 0, sizeof(all));
	all[0] = (MYSQL_BIND){.buffer_type = MYSQL_TYPE_TINY, .buffer = &t8};
	all[1] = (MYSQL_BIND){.buffer_type = MYSQL_TYPE_SHORT, .buffer = &i16};
	all[2] = (MYSQL_BIND){.buffer_type = MYSQL_TYPE_LONG, .buffer = &i32};
	all[3] = (MYSQL_BIND){.buffer_type = MYSQL_TYPE_LONGLONG, .buffer = &i64};
	all[4] = (MYSQL_BIND){.buffer_type = MYSQL_TYPE_FLOAT, .buffer = &f};
	all[5] = (MYSQL_BIND){.buffer_type = MYSQL_TYPE_DOUBLE, .buffer = &d};
	all[6] = (MYSQL_BIND){.buffer_type = MYSQL_TYPE_NEWDECIMAL, .buffer = dec,
			      .buffer_length = declen, .length = &declen};
	all[7] = (MYSQL_BIND){.buffer_type = MYSQL_TYPE_STRING, .buffer = str,
			      .buffer_length = strl, .length = &strl};
	all[8] = (MYSQL_BIND){.buffer_type = MYSQL_TYPE_BLOB, .buffer = blob,
			      .buffer_length = blobl, .length = &blobl};
	all[9] = (MYSQL_BIND){.buffer_type = MYSQL_TYPE_DATE, .buffer = &date};
	all[10] = (MYSQL_BIND){.buffer_type = MYSQL_TYPE_TIME, .buffer = &tm};
	all[11] = (MYSQL_BIND){.buffer_type = MYSQL_TYPE_DATETIME, .buffer = &dt};
	all[12] = (MYSQL_BIND){.buffer_type = MYSQL_TYPE_LONG, .is_null = &isnull};
	if (mysql_stmt_bind_param(st, all) != 0 || mysql_stmt_execute(st) != 0)
		printf("ERR insert %u %s\n", mysql_stmt_errno(st), mysql_stmt_error(st));
	else
		dump_stmt_rows(st);
	/* Same statement again with other values: re-execution reuses the statement id. */
	i32 = -5;
	isnull = 0;
	if (mysql_stmt_execute(st) != 0)
		printf("ERR insert2 %u %s\n", mysql_stmt_errno(st), mysql_stmt_error(st));
	else
		dump_stmt_rows(st);
	mysql_stmt_close(st);
	runq(m, "SELECT * FROM ps_types ORDER BY id");
	run_prepared(m, "SELECT * FROM ps_types ORDER BY id");
}

/* Rows over 16 MiB both ways: a 20 MiB COM_QUERY literal, a 20 MiB parameter sent with
 * SEND_LONG_DATA, and reading them back with both protocols. */
static void
scenario_big_rows(MYSQL *m)
{
	static const char pre[] = "INSERT INTO big (v) VALUES ('";
	size_t prel = sizeof(pre) - 1;
	char *q = malloc(prel + BIG + 3);
	char *chunk = malloc(1 << 20);
	MYSQL_STMT *st;
	MYSQL_BIND b;

	runq(m, "DROP TABLE IF EXISTS big");
	runq(m, "CREATE TABLE big (id INT AUTO_INCREMENT PRIMARY KEY, v LONGBLOB)");
	memcpy(q, pre, prel);
	for (size_t i = 0; i < BIG; i++)
		q[prel + i] = (char)('a' + (i * 7 + i / 4093) % 26);
	memcpy(q + prel + BIG, "')", 2);
	run_query(m, q, prel + BIG + 2);
	st = prepare(m, "INSERT INTO big (v) VALUES (?)");
	if (st != NULL) {
		memset(&b, 0, sizeof(b));
		b.buffer_type = MYSQL_TYPE_LONG_BLOB;
		mysql_stmt_bind_param(st, &b);
		for (int i = 0; i < 21; i++) {
			for (int j = 0; j < (1 << 20); j++)
				chunk[j] = (char)(i + j * 13);
			if (mysql_stmt_send_long_data(st, 0, chunk, 1 << 20) != 0)
				printf("ERR long_data %s\n", mysql_stmt_error(st));
		}
		if (mysql_stmt_execute(st) != 0)
			printf("ERR execute %s\n", mysql_stmt_error(st));
		else
			dump_stmt_rows(st);
		mysql_stmt_close(st);
	}
	runq(m, "SELECT id, LENGTH(v), MD5(v) FROM big ORDER BY id");
	runq(m, "SELECT id, v FROM big ORDER BY id");
	run_prepared(m, "SELECT id, v FROM big ORDER BY id");
	runq(m, "SELECT REPEAT('x', 16777215) AS exact, REPEAT('y', 16777211) AS edge");
	free(q);
	free(chunk);
}

static void
run_script_line(MYSQL *m, char *line)
{
	char *arg = line + 2;

	if (line[0] == 'Q') {
		printf("## %.70s\n", arg);
		run_query(m, arg, strlen(arg));
	} else if (line[0] == 'P') {
		printf("## P %.70s\n", arg);
		run_prepared(m, arg);
	} else if (strncmp(line, "S ps_types", 10) == 0) {
		scenario_ps_types(m);
	} else if (strncmp(line, "S big_rows", 10) == 0) {
		scenario_big_rows(m);
	} else if (strncmp(line, "S change_user ", 14) == 0) {
		char u[64], p[64];

		if (sscanf(line + 14, "%63s %63s", u, p) == 2) {
			if (mysql_change_user(m, u, p, db) != 0)
				dump_err(m);
			else
				printf("change_user ok\n");
		}
	} else if (strncmp(line, "S reset_connection", 18) == 0) {
		if (mysql_reset_connection(m) != 0)
			dump_err(m);
		else
			printf("reset ok\n");
	} else if (line[0] != '#' && line[0] != '\0') {
		printf("?? %s\n", line);
	}
}

static MYSQL *
connect_to(const char *database, unsigned long flags)
{
	MYSQL *m = mysql_init(NULL);
	unsigned tmo = 60;
	my_bool off = 0, on = 1;

	mysql_options(m, MYSQL_OPT_READ_TIMEOUT, &tmo);
	mysql_options(m, MYSQL_OPT_WRITE_TIMEOUT, &tmo);
	mysql_options(m, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &off);
	mysql_options(m, MYSQL_OPT_LOCAL_INFILE, &on);
	if (mysql_real_connect(m, host, user, pw, database, port, NULL, flags) == NULL) {
		dump_err(m);
		mysql_close(m);
		return NULL;
	}
	return m;
}

static int
mode_script(const char *file)
{
	MYSQL *m = connect_to(db, CLIENT_MULTI_STATEMENTS | CLIENT_MULTI_RESULTS);
	FILE *f = fopen(file, "r");
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;

	if (m == NULL || f == NULL)
		return 1;
	while ((n = getline(&line, &cap, f)) > 0) {
		if (line[n - 1] == '\n')
			line[n - 1] = '\0';
		run_script_line(m, line);
		fflush(stdout);
	}
	free(line);
	fclose(f);
	mysql_close(m);
	return 0;
}

static int
mode_login(void)
{
	MYSQL *m = connect_to(db, 0);
	MYSQL_RES *r;
	MYSQL_ROW row;

	if (m == NULL)
		return 1;
	if (mysql_query(m, "SELECT CURRENT_USER(), IFNULL(DATABASE(), '-')") != 0 ||
	    (r = mysql_store_result(m)) == NULL) {
		dump_err(m);
		mysql_close(m);
		return 1;
	}
	row = mysql_fetch_row(r);
	printf("OK %s %s\n", row[0], row[1]);
	mysql_free_result(r);
	mysql_close(m);
	return 0;
}

struct stress_arg {
	int queries;
	int ok, failed;
	pthread_barrier_t *bar;
};

static void *
stress_thread(void *p)
{
	struct stress_arg *a = p;
	MYSQL *m;
	char q[128];

	mysql_thread_init();
	m = connect_to(db, 0);
	pthread_barrier_wait(a->bar); /* all connected at once before querying */
	for (int i = 0; m != NULL && i < a->queries; i++) {
		MYSQL_RES *r;
		MYSQL_ROW row;
		long want = (long)(i * 31 + 7);

		snprintf(q, sizeof(q), "SELECT %ld + 0, REPEAT('z', %d)", want, i % 50);
		if (mysql_query(m, q) != 0 || (r = mysql_store_result(m)) == NULL) {
			a->failed++;
			continue;
		}
		row = mysql_fetch_row(r);
		if (row != NULL && atol(row[0]) == want && strlen(row[1]) == (size_t)(i % 50))
			a->ok++;
		else
			a->failed++;
		mysql_free_result(r);
	}
	if (m == NULL)
		a->failed += a->queries;
	else
		mysql_close(m);
	mysql_thread_end();
	return NULL;
}

static int
mode_stress(int clients, int queries)
{
	pthread_t *t = calloc((size_t)clients, sizeof(*t));
	struct stress_arg *a = calloc((size_t)clients, sizeof(*a));
	pthread_barrier_t bar;
	pthread_attr_t attr;
	int ok = 0, failed = 0;

	pthread_barrier_init(&bar, NULL, (unsigned)clients);
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	for (int i = 0; i < clients; i++) {
		a[i].queries = queries;
		a[i].bar = &bar;
		if (pthread_create(&t[i], &attr, stress_thread, &a[i]) != 0) {
			fprintf(stderr, "pthread_create failed at %d\n", i);
			return 1;
		}
	}
	for (int i = 0; i < clients; i++) {
		pthread_join(t[i], NULL);
		ok += a[i].ok;
		failed += a[i].failed;
	}
	printf("stress ok=%d failed=%d\n", ok, failed);
	free(t);
	free(a);
	return failed == 0 ? 0 : 1;
}

/* Starts a large result, reads a few rows, then closes the socket under the library. */
static int
mode_abandon(int rows)
{
	MYSQL *m = connect_to(db, 0);
	MYSQL_RES *r;

	if (m == NULL)
		return 1;
	if (mysql_query(m, "SELECT seq, REPEAT('r', 1000) FROM seq_1_to_2000000") != 0) {
		dump_err(m);
		return 1;
	}
	r = mysql_use_result(m);
	for (int i = 0; r != NULL && i < rows; i++)
		mysql_fetch_row(r);
	printf("abandoning after %d rows\n", rows);
	fflush(stdout);
	close(mysql_get_socket(m));
	_exit(0);
}

static int
mode_killed(int seconds)
{
	MYSQL *m = connect_to(db, 0);
	char q[64];

	if (m == NULL)
		return 1;
	printf("conn_id %lu\n", mysql_thread_id(m));
	fflush(stdout);
	snprintf(q, sizeof(q), "SELECT SLEEP(%d)", seconds);
	if (mysql_query(m, q) != 0) {
		dump_err(m);
		mysql_close(m);
		return 0;
	}
	printf("query finished without error\n");
	mysql_close(m);
	return 1;
}

int
main(int argc, char **argv)
{
	int rc;

	if (argc < 6) {
		fprintf(stderr, "usage: rt_client MODE HOST PORT USER PW ... (see source)\n");
		return 2;
	}
	host = argv[2];
	port = (unsigned)atoi(argv[3]);
	user = argv[4];
	pw = argv[5];
	setvbuf(stdout, NULL, _IOFBF, 1 << 16);
	mysql_library_init(0, NULL, NULL);
	if (strcmp(argv[1], "login") == 0) {
		db = argc > 6 ? argv[6] : NULL;
		rc = mode_login();
	} else if (strcmp(argv[1], "script") == 0 && argc > 7) {
		db = argv[6];
		rc = mode_script(argv[7]);
	} else if (strcmp(argv[1], "stress") == 0 && argc > 7) {
		db = "rt_test";
		rc = mode_stress(atoi(argv[6]), atoi(argv[7]));
	} else if (strcmp(argv[1], "abandon") == 0 && argc > 6) {
		db = "rt_test";
		rc = mode_abandon(atoi(argv[6]));
	} else if (strcmp(argv[1], "killed") == 0 && argc > 6) {
		db = "rt_test";
		rc = mode_killed(atoi(argv[6]));
	} else {
		fprintf(stderr, "rt_client: bad mode or arguments\n");
		rc = 2;
	}
	fflush(stdout);
	mysql_library_end();
	return rc;
}
