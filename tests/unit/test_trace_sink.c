/* tests/unit/test_trace_sink.c: the bounded trace queue writes every line it accepted,
 * counts every line it refused, and follows a logrotate-style rename + reopen. */
#include "proxy/trace_sink.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *
slurp(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	char *buf;

	assert_non_null(f);
	buf = malloc(1 << 22);
	*n = fread(buf, 1, (1 << 22) - 1, f);
	buf[*n] = 0;
	fclose(f);
	return buf;
}

static unsigned
count_lines(const char *s)
{
	unsigned n = 0;

	for (; *s; s++) {
		n += *s == '\n';
	}
	return n;
}

static void
test_lines_written_in_order(void **state)
{
	(void)state;
	char path[] = "/tmp/rt_sink_XXXXXX";
	int fd = mkstemp(path);
	char err[128], line[64];
	struct trace_sink_stats st;
	size_t n;

	close(fd);
	struct trace_sink *s = trace_sink_open(path, 1 << 20, err, sizeof(err));
	assert_non_null(s);
	for (int i = 0; i < 1000; i++) {
		int len = snprintf(line, sizeof(line), "{\"n\":%d}", i);
		assert_true(trace_sink_write(s, line, (size_t)len));
	}
	trace_sink_flush(s);
	trace_sink_get_stats(s, &st);
	assert_int_equal(st.written, 1000);
	assert_int_equal(st.dropped, 0);
	trace_sink_close(s);

	char *buf = slurp(path, &n);
	assert_int_equal(count_lines(buf), 1000);
	assert_true(strncmp(buf, "{\"n\":0}\n{\"n\":1}\n", 16) == 0);
	assert_non_null(strstr(buf, "{\"n\":999}\n"));
	free(buf);
	unlink(path);
}

/* Lines of many lengths through the smallest ring while the writer drains it: the ring
 * wraps and starts again at offset 0 whenever it runs empty; the file must still be the
 * exact concatenation of the accepted lines, in order. */
static void
test_wrap_and_rewind_keep_every_byte(void **state)
{
	(void)state;
	char path[] = "/tmp/rt_sink_XXXXXX";
	int fd = mkstemp(path);
	char err[128], line[4096];
	size_t total = 0, n;
	unsigned refused = 0;

	close(fd);
	struct trace_sink *s = trace_sink_open(path, 64 * 1024, err, sizeof(err));
	assert_non_null(s);
	for (unsigned i = 0; i < 2000; i++) {
		size_t len = 10 + (i * 7919u) % 3000;
		memset(line, 'a' + (int)(i % 26), len);
		snprintf(line, 12, "%010u", i); /* the number first; its NUL is overwritten */
		line[10] = ':';
		while (!trace_sink_write(s, line, len)) {
			refused++;
			usleep(100);
		}
		total += len + 1;
		usleep(5); /* slower than the writer: it wakes at a batch while lines keep coming */
		if (i % 500 == 499) {
			trace_sink_flush(s); /* empties the ring: the next line goes to offset 0 */
		}
	}
	trace_sink_close(s);

	char *buf = slurp(path, &n);
	assert_int_equal(n, total);
	const char *at = buf;
	for (unsigned i = 0; i < 2000; i++) {
		size_t len = 10 + (i * 7919u) % 3000;
		char want[12];
		snprintf(want, sizeof(want), "%010u", i);
		assert_memory_equal(at, want, 10);
		for (size_t k = 11; k < len; k++) {
			assert_int_equal(at[k], 'a' + (int)(i % 26));
		}
		assert_int_equal(at[len], '\n');
		at += len + 1;
	}
	free(buf);
	unlink(path);
	(void)refused;
}

/* A reader that does not read: the pipe fills, the writer thread blocks in write(2),
 * the queue fills, and further lines are refused and counted without blocking us. */
static void
test_full_queue_drops_and_counts(void **state)
{
	(void)state;
	int pfd[2];
	char path[64], err[128], line[1024];
	struct trace_sink_stats st;
	unsigned accepted = 0, refused = 0;

	assert_int_equal(pipe(pfd), 0);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", pfd[1]);
	struct trace_sink *s = trace_sink_open(path, 64 * 1024, err, sizeof(err));
	assert_non_null(s);
	memset(line, 'x', sizeof(line));
	for (int i = 0; i < 1000; i++) {
		if (trace_sink_write(s, line, sizeof(line) - 1)) {
			accepted++;
		} else {
			refused++;
		}
	}
	assert_true(refused > 0);
	trace_sink_get_stats(s, &st);
	assert_int_equal(st.dropped, refused);

	/* Drain the pipe while the sink finishes; every accepted line arrives whole. */
	fcntl(pfd[0], F_SETFL, O_NONBLOCK);
	size_t got = 0;
	for (int spins = 0; spins < 2000 && got < (size_t)accepted * sizeof(line); spins++) {
		char buf[65536];
		ssize_t r = read(pfd[0], buf, sizeof(buf));
		if (r > 0) {
			got += (size_t)r;
		} else {
			usleep(1000);
		}
	}
	trace_sink_flush(s);
	trace_sink_close(s);
	close(pfd[1]);
	close(pfd[0]);
	assert_int_equal(got, (size_t)accepted * sizeof(line));
}

static void
test_reopen_after_rename(void **state)
{
	(void)state;
	char path[] = "/tmp/rt_sink_XXXXXX";
	char rotated[64], err[128];
	int fd = mkstemp(path);
	size_t n;

	close(fd);
	snprintf(rotated, sizeof(rotated), "%s.1", path);
	struct trace_sink *s = trace_sink_open(path, 1 << 16, err, sizeof(err));
	assert_non_null(s);
	assert_true(trace_sink_write(s, "before", 6));
	trace_sink_flush(s);
	assert_int_equal(rename(path, rotated), 0);
	trace_sink_reopen(s);
	assert_true(trace_sink_write(s, "after", 5));
	trace_sink_flush(s);
	trace_sink_close(s);

	char *a = slurp(rotated, &n);
	char *b = slurp(path, &n);
	assert_string_equal(a, "before\n");
	assert_string_equal(b, "after\n");
	free(a);
	free(b);
	unlink(path);
	unlink(rotated);
}

static void
test_open_failure_reports_reason(void **state)
{
	(void)state;
	char err[128] = "";

	assert_null(trace_sink_open("/nonexistent-dir/x/trace.jsonl", 1 << 16, err, sizeof(err)));
	assert_non_null(strstr(err, "/nonexistent-dir/x/trace.jsonl"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lines_written_in_order),
		cmocka_unit_test(test_wrap_and_rewind_keep_every_byte),
		cmocka_unit_test(test_full_queue_drops_and_counts),
		cmocka_unit_test(test_reopen_after_rename),
		cmocka_unit_test(test_open_failure_reports_reason),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
