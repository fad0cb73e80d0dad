/* bench/bench_router.c: router micro-benchmark.
 *   1. classify + resolve a mixed corpus (sysbench-style point/range selects, updates,
 *      deletes, inserts, joins, DDL, transaction control) in a loop: ns/statement and
 *      statements/s on one core;
 *   2. heap allocations on that path, counted by interposing malloc/calloc/realloc in
 *      this binary (glibc's __libc_* underneath), expected 0;
 *   3. the lexer's per-statement helpers on a sysbench oltp_read_write mix (10 point
 *      selects, 4 range selects, 2 updates, delete, insert with long quoted strings,
 *      BEGIN, COMMIT): sql_split_next (one full pass), sql_digest, sql_has_secret,
 *      ns/statement;
 *   4. time to load a generated rules document with 10,000 rules, from memory and from
 *      a file.
 * All times are thread CPU time (CLOCK_THREAD_CPUTIME_ID).
 * Usage: bench_router [seconds-per-phase, default 2] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "router/classify.h"
#include "router/resolve.h"
#include "router/rules.h"
#include "router/sql_digest.h"
#include "router/sql_lex.h"
#include "router/target.h"

/* --- allocation counter (not under ASan, which owns malloc) ------------------------- */

#if defined(__SANITIZE_ADDRESS__)
#define BENCH_NO_HOOK 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define BENCH_NO_HOOK 1
#endif
#endif

static unsigned long alloc_calls;

#ifndef BENCH_NO_HOOK
extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t a, size_t b);
extern void *__libc_realloc(void *p, size_t n);

void *
malloc(size_t n)
{
	alloc_calls++;
	return __libc_malloc(n);
}

void *
calloc(size_t a, size_t b)
{
	alloc_calls++;
	return __libc_calloc(a, b);
}

void *
realloc(void *p, size_t n)
{
	alloc_calls++;
	return __libc_realloc(p, n);
}
#endif

/* CPU time of this thread: the figure that matters ("one core"), and robust against a
 * busy machine, where wall time mostly measures waiting for the CPU. */
static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *const corpus[] = {
    "SELECT c FROM sbtest1 WHERE id=5032",
    "SELECT c FROM sbtest2 WHERE id=17",
    "SELECT c FROM sbtest3 WHERE id BETWEEN 4021 AND 4120",
    "SELECT SUM(k) FROM sbtest4 WHERE id BETWEEN 100 AND 199",
    "SELECT c FROM sbtest5 WHERE id BETWEEN 77 AND 176 ORDER BY c",
    "SELECT DISTINCT c FROM sbtest6 WHERE id BETWEEN 9 AND 108 ORDER BY c",
    "UPDATE sbtest7 SET k=k+1 WHERE id=501",
    "UPDATE sbtest8 SET c='38218461204-03942394029-59420342983-92384023984' WHERE id=44",
    "DELETE FROM sbtest1 WHERE id=9931",
    "INSERT INTO sbtest1 (id, k, c, pad) VALUES (9931, 4123, '6837-9283-1234', '9283-1234')",
    "SELECT a.c, b.k FROM sbtest1 a JOIN sourcekeyspace.sbtest2 b ON a.id = b.id WHERE a.k > 5",
    "SELECT * FROM t1 WHERE id IN (SELECT id FROM t2 WHERE k = 3) /* app=x */",
    "SELECT 1",
    "BEGIN",
    "COMMIT",
    "ALTER TABLE targetkeyspace.t1 ADD COLUMN x INT",
    "DROP TABLE IF EXISTS t3",
    "SELECT /*+ MAX_EXECUTION_TIME(100) */ `c` FROM `sourcekeyspace`.`sbtest3` WHERE `id` = ?",
};
#define NCORPUS (sizeof(corpus) / sizeof(corpus[0]))

/* A MoveTables "created" state for sbtest1..8 and t1..t3: 9 keys per table. */
static char *
make_vschema(void)
{
	size_t cap = 64 * 1024, w = 0;
	char *b = malloc(cap);
	static const char *const names[] = {"sbtest1", "sbtest2", "sbtest3", "sbtest4", "sbtest5",
					    "sbtest6", "sbtest7", "sbtest8", "t1", "t2", "t3"};
	static const char *const quals[] = {"", "sourcekeyspace.", "targetkeyspace."};
	static const char *const sfx[] = {"", "@replica", "@rdonly"};
	size_t i, q, s;

	if (b == NULL)
		exit(1);
	w += (size_t)snprintf(b + w, cap - w, "{\"keyspaces\": {\"sourcekeyspace\": {\"tables\": {");
	for (i = 0; i < 11; i++)
		w += (size_t)snprintf(b + w, cap - w, "%s\"%s\": {}", i ? "," : "", names[i]);
	w += (size_t)snprintf(b + w, cap - w, "}}, \"targetkeyspace\": {\"tables\": {");
	for (i = 0; i < 11; i++)
		w += (size_t)snprintf(b + w, cap - w, "%s\"%s\": {}", i ? "," : "", names[i]);
	w += (size_t)snprintf(b + w, cap - w, "}}}, \"routing_rules\": {\"rules\": [");
	for (i = 0; i < 11; i++)
		for (q = 0; q < 3; q++)
			for (s = 0; s < 3; s++)
				w += (size_t)snprintf(b + w, cap - w,
						      "%s{\"from_table\": \"%s%s%s\", \"to_tables\": "
						      "[\"sourcekeyspace.%s\"]}",
						      (i | q | s) ? "," : "", quals[q], names[i],
						      sfx[s], names[i]);
	snprintf(b + w, cap - w, "]}}");
	return b;
}

static void
bench_statements(double secs)
{
	static struct sql_stmt st;
	static struct route_result res;
	struct vt_target sess[2];
	char err[RULES_ERRLEN], *vs = make_vschema();
	struct rules *r = rules_load_buffer(vs, strlen(vs), "bench", NULL, 0, NULL, err, sizeof(err));
	unsigned long n = 0, allocs0, allocs, errors = 0;
	size_t lens[NCORPUS], i;
	double t0, t1;

	if (r == NULL) {
		fprintf(stderr, "bench: %s\n", err);
		exit(1);
	}
	free(vs);
	vt_target_parse("", 0, VT_TT_PRIMARY, &sess[0], err, sizeof(err));
	vt_target_parse("@replica", 8, VT_TT_PRIMARY, &sess[1], err, sizeof(err));
	for (i = 0; i < NCORPUS; i++)
		lens[i] = strlen(corpus[i]);
	allocs0 = alloc_calls;
	t0 = now_s();
	do {
		for (i = 0; i < 1000; i++) {
			size_t k = (n + i) % NCORPUS;

			sql_classify(corpus[k], lens[k], 0, &st);
			route_resolve(r, &sess[0], false, &st, &res);
			errors += res.error != NULL;
		}
		n += 1000;
		t1 = now_s();
	} while (t1 - t0 < secs);
	allocs = alloc_calls - allocs0; /* before any printf (stdout's buffer is malloc'd) */
	printf("classify+resolve: %lu statements in %.3f s CPU: %.1f ns/statement, %.0f statements/s"
	       " (%lu with errors)\n",
	       n, t1 - t0, (t1 - t0) * 1e9 / (double)n, (double)n / (t1 - t0), errors);
#ifdef BENCH_NO_HOOK
	(void)allocs;
	printf("heap allocations on the statement path: not counted (sanitizer build)\n");
#else
	printf("heap allocations on the statement path: %lu in %lu statements\n",
	       allocs, n);
#endif
	/* replica sessions too (different rule keys) */
	n = 0;
	t0 = now_s();
	do {
		for (i = 0; i < 1000; i++) {
			size_t k = (n + i) % NCORPUS;

			sql_classify(corpus[k], lens[k], 0, &st);
			route_resolve(r, &sess[1], false, &st, &res);
		}
		n += 1000;
		t1 = now_s();
	} while (t1 - t0 < secs);
	printf("classify+resolve (@replica session): %.1f ns/statement, %.0f statements/s\n",
	       (t1 - t0) * 1e9 / (double)n, (double)n / (t1 - t0));
	rules_unref(r);
}

/* One sysbench oltp_read_write transaction, in the proportions sysbench sends it (the
 * statements the capture profile was taken on). */
static const char *const sysbench[] = {
    "BEGIN",
    "SELECT c FROM sbtest1 WHERE id=5021",
    "SELECT c FROM sbtest3 WHERE id=49917",
    "SELECT c FROM sbtest2 WHERE id=502",
    "SELECT c FROM sbtest4 WHERE id=7",
    "SELECT c FROM sbtest1 WHERE id=38812",
    "SELECT c FROM sbtest2 WHERE id=4990",
    "SELECT c FROM sbtest3 WHERE id=1024",
    "SELECT c FROM sbtest4 WHERE id=50000",
    "SELECT c FROM sbtest1 WHERE id=313",
    "SELECT c FROM sbtest2 WHERE id=2718",
    "SELECT c FROM sbtest3 WHERE id BETWEEN 4021 AND 4120",
    "SELECT SUM(k) FROM sbtest4 WHERE id BETWEEN 100 AND 199",
    "SELECT c FROM sbtest1 WHERE id BETWEEN 77 AND 176 ORDER BY c",
    "SELECT DISTINCT c FROM sbtest2 WHERE id BETWEEN 9 AND 108 ORDER BY c",
    "UPDATE sbtest3 SET k=k+1 WHERE id=501",
    "UPDATE sbtest4 SET c='38218461204-03942394029-59420342983-92384023984-12839283746-"
    "00192837465-91827364501-28374650192-83746501928-37465019283' WHERE id=44",
    "DELETE FROM sbtest1 WHERE id=9931",
    "INSERT INTO sbtest1 (id, k, c, pad) VALUES (9931, 4123, '68487932199-96439406143-"
    "93774651418-41631865787-96406072701-20604855487-25459966574-28203206787-41238978918-"
    "19503783441', '22195207048-70116052123-74140395089-76317954521-98694025897')",
    "COMMIT",
};
#define NSYSBENCH (sizeof(sysbench) / sizeof(sysbench[0]))

/* ns per statement of fn over the sysbench mix for about secs of CPU; *sink keeps the
 * results alive (the compiler may not drop the calls). */
static double
bench_mix(double secs, unsigned long (*fn)(const char *, size_t), unsigned long *sink)
{
	size_t lens[NSYSBENCH], i;
	unsigned long n = 0;
	double t0, t1;

	for (i = 0; i < NSYSBENCH; i++)
		lens[i] = strlen(sysbench[i]);
	t0 = now_s();
	do {
		for (i = 0; i < 1000; i++) {
			size_t k = (n + i) % NSYSBENCH;

			*sink += fn(sysbench[k], lens[k]);
		}
		n += 1000;
		t1 = now_s();
	} while (t1 - t0 < secs);
	return (t1 - t0) * 1e9 / (double)n;
}

/* One full splitter pass, as each of the tracer's two passes over a COM_QUERY does. */
static unsigned long
run_split(const char *sql, size_t n)
{
	size_t pos = 0, start, len;
	unsigned long r = 0;

	while (sql_split_next(sql, n, &pos, &start, &len))
		r += start + len;
	return r;
}

static unsigned long
run_digest(const char *sql, size_t n)
{
	char d[SQL_DIGEST_MAX];

	return (unsigned long)sql_digest(sql, n, 0, d, sizeof(d));
}

static unsigned long
run_has_secret(const char *sql, size_t n)
{
	return sql_has_secret(sql, n, 0);
}

static void
bench_lexer(double secs)
{
	unsigned long sink = 0;
	double split = bench_mix(secs, run_split, &sink);
	double digest = bench_mix(secs, run_digest, &sink);
	double secret = bench_mix(secs, run_has_secret, &sink);

	printf("sysbench mix (%zu statements): split %.1f ns/statement (one pass), digest %.1f "
	       "ns/statement, has_secret %.1f ns/statement (checksum %lu)\n",
	       NSYSBENCH, split, digest, secret, sink % 1000);
}

static char *
make_10k(size_t *len)
{
	size_t n = 10000, cap = n * 100 + 1024, w = 0, i;
	char *b = malloc(cap);

	if (b == NULL)
		exit(1);
	w += (size_t)snprintf(b + w, cap - w, "{\"keyspaces\": {\"src\": {\"tables\": {");
	for (i = 0; i < 3334; i++)
		w += (size_t)snprintf(b + w, cap - w, "%s\"tbl%zu\": {}", i ? "," : "", i);
	w += (size_t)snprintf(b + w, cap - w, "}}, \"dst\": {}}, \"routing_rules\": {\"rules\": [");
	for (i = 0; i < n; i++)
		w += (size_t)snprintf(b + w, cap - w,
				      "%s{\"from_table\": \"%stbl%zu%s\", \"to_tables\": [\"dst.tbl%zu\"]}",
				      i ? "," : "", i % 3 == 1 ? "src." : "", i / 3,
				      i % 3 == 2 ? "@replica" : "", i / 3);
	w += (size_t)snprintf(b + w, cap - w, "]}}");
	*len = w;
	return b;
}

static void
bench_load(void)
{
	char err[RULES_ERRLEN], path[] = "/tmp/bench_router_rulesXXXXXX";
	size_t len, i;
	char *doc = make_10k(&len);
	double best = 1e9, sum = 0, fbest = 1e9;
	int fd;

	for (i = 0; i < 10; i++) {
		double t0 = now_s(), dt;
		struct rules *r = rules_load_buffer(doc, len, "gen", NULL, 0, NULL, err, sizeof(err));

		dt = now_s() - t0;
		if (r == NULL || rules_count(r) != 10000) {
			fprintf(stderr, "bench: load failed: %s\n", r ? "count" : err);
			exit(1);
		}
		rules_unref(r);
		sum += dt;
		if (dt < best)
			best = dt;
	}
	fd = mkstemp(path);
	if (fd >= 0 && write(fd, doc, len) == (ssize_t)len) {
		for (i = 0; i < 5; i++) {
			double t0 = now_s(), dt;
			struct rules *r = rules_load_file(path, NULL, err, sizeof(err));

			dt = now_s() - t0;
			rules_unref(r);
			if (dt < fbest)
				fbest = dt;
		}
	}
	if (fd >= 0) {
		close(fd);
		unlink(path);
	}
	printf("load 10,000 rules (%zu bytes): best %.2f ms, mean %.2f ms from memory; "
	       "best %.2f ms from a file\n",
	       len, best * 1e3, sum / 10 * 1e3, fbest * 1e3);
	free(doc);
}

int
main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 2.0;

	if (secs <= 0)
		secs = 2.0;
	bench_statements(secs);
	bench_lexer(secs);
	bench_load();
	return 0;
}
