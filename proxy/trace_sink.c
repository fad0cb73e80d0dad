/* proxy/trace_sink.c: bounded byte ring + one writer thread.  The event loop only
 * copies a line into the ring under a mutex held for a memcpy; all file I/O happens on
 * the writer thread, outside the lock.  The writer wakes every SINK_PERIOD_MS (or when
 * SINK_BATCH bytes or half the ring are queued, or on flush/reopen/stop) and writes
 * everything queued at once: waking it per line would cost a futex wake and a write(2)
 * per statement.  Waking it at a batch rather than at half the ring keeps the bytes in
 * use to a few hundred KiB, still in cache when written, and spares a fast producer
 * (an offline capture) the first touch of every page of a 16 MiB ring.  For the same
 * reason the ring starts again at offset 0 whenever the writer has emptied it: only the
 * bytes queued at once are ever touched, not the whole capacity in turn. */
#include "proxy/trace_sink.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TRACE_SINK_MIN_QUEUE (64 * 1024)
#define SINK_PERIOD_MS 20
#define SINK_BATCH (256 * 1024)

struct trace_sink {
	char *path;              /* "-" = stdout */
	int fd;                  /* owned unless stdout */
	char *ring;              /* queued bytes */
	size_t cap;              /* ring size */
	size_t head;             /* ring offset of the first queued byte */
	size_t used;             /* bytes queued (tail = head + used, wrapped) */
	uint64_t enq_total;      /* bytes ever queued */
	uint64_t wr_total;       /* bytes ever written (or lost to a write error) */
	uint64_t queued_lines;
	uint64_t dropped;
	uint64_t write_errors;
	bool reopen;             /* writer reopens before its next write */
	unsigned flushing;       /* threads waiting in trace_sink_flush */
	bool stop;
	pthread_mutex_t mu;
	pthread_cond_t more;     /* producer -> writer: bytes queued, reopen or stop */
	pthread_cond_t done;     /* writer -> flush(): wr_total advanced */
	pthread_t thread;
};

static int
sink_open_fd(const char *path)
{
	if (strcmp(path, "-") == 0) {
		return STDOUT_FILENO;
	}
	return open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
}

/* Writes all of p, retrying short writes; false on error (the bytes are lost, counted). */
static bool
sink_write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR) {
				continue;
			}
			return false;
		}
		p += w;
		n -= (size_t)w;
	}
	return true;
}

static void
sink_do_reopen(struct trace_sink *s)
{
	int fd;

	if (s->fd == STDOUT_FILENO) {
		return;
	}
	fd = sink_open_fd(s->path);
	if (fd < 0) {
		s->write_errors++; /* keep writing to the old descriptor */
		return;
	}
	close(s->fd);
	s->fd = fd;
}

/* Queued bytes that wake the writer before its period ends. */
static size_t
sink_batch(const struct trace_sink *s)
{
	return s->cap / 2 < SINK_BATCH ? s->cap / 2 : SINK_BATCH;
}

static bool
sink_urgent(const struct trace_sink *s)
{
	uint64_t pending = s->used;

	return s->stop || s->reopen || (pending > 0 && (s->flushing > 0 || pending >= sink_batch(s)));
}

/* Sleeps until something is urgent or the period ends. */
static void
sink_wait(struct trace_sink *s)
{
	struct timespec until;

	if (sink_urgent(s)) {
		return;
	}
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_nsec += SINK_PERIOD_MS * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(&s->more, &s->mu, &until);
}

static void *
sink_writer(void *arg)
{
	struct trace_sink *s = arg;

	pthread_mutex_lock(&s->mu);
	for (;;) {
		sink_wait(s);
		if (s->reopen) {
			s->reopen = false;
			sink_do_reopen(s);
		}
		if (s->used == 0) {
			if (s->stop) {
				break;
			}
			continue;
		}
		/* Write the contiguous run from the head; the producer only touches free space
		 * (the run stays counted in `used` until it is written). */
		size_t head = s->head;
		size_t run = s->used < s->cap - head ? s->used : s->cap - head;
		pthread_mutex_unlock(&s->mu);
		bool ok = sink_write_all(s->fd, s->ring + head, run);
		pthread_mutex_lock(&s->mu);
		if (!ok) {
			s->write_errors++;
		}
		s->used -= run;
		s->head = s->used == 0 || head + run == s->cap ? 0 : head + run;
		s->wr_total += run;
		pthread_cond_broadcast(&s->done);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

struct trace_sink *
trace_sink_open(const char *path, size_t queue_bytes, char *err, size_t errlen)
{
	struct trace_sink *s = calloc(1, sizeof(*s));

	if (s == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->cap = queue_bytes < TRACE_SINK_MIN_QUEUE ? TRACE_SINK_MIN_QUEUE : queue_bytes;
	s->path = strdup(path);
	s->ring = malloc(s->cap);
	s->fd = -1;
	if (s->path == NULL || s->ring == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	s->fd = sink_open_fd(path);
	if (s->fd < 0) {
		snprintf(err, errlen, "trace file %s: %s", path, strerror(errno));
		goto fail;
	}
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->more, NULL);
	pthread_cond_init(&s->done, NULL);
	if (pthread_create(&s->thread, NULL, sink_writer, s) != 0) {
		snprintf(err, errlen, "trace writer thread: %s", strerror(errno));
		pthread_mutex_destroy(&s->mu);
		pthread_cond_destroy(&s->more);
		pthread_cond_destroy(&s->done);
		goto fail;
	}
	return s;
fail:
	if (s->fd > STDOUT_FILENO) {
		close(s->fd);
	}
	free(s->ring);
	free(s->path);
	free(s);
	return NULL;
}

static void
ring_put(struct trace_sink *s, const char *p, size_t n)
{
	size_t tail = s->head + s->used;

	if (tail >= s->cap) {
		tail -= s->cap;
	}
	size_t first = n < s->cap - tail ? n : s->cap - tail;
	memcpy(s->ring + tail, p, first);
	memcpy(s->ring, p + first, n - first);
	s->used += n;
	s->enq_total += n;
}

bool
trace_sink_write(struct trace_sink *s, const char *line, size_t len)
{
	bool ok;

	pthread_mutex_lock(&s->mu);
	ok = len + 1 <= s->cap - s->used;
	if (ok) {
		ring_put(s, line, len);
		ring_put(s, "\n", 1);
		s->queued_lines++;
		if (s->used >= sink_batch(s)) {
			pthread_cond_signal(&s->more); /* don't wait for the period: room is short */
		}
	} else {
		s->dropped++;
	}
	pthread_mutex_unlock(&s->mu);
	return ok;
}

void
trace_sink_reopen(struct trace_sink *s)
{
	pthread_mutex_lock(&s->mu);
	s->reopen = true;
	pthread_cond_signal(&s->more);
	pthread_mutex_unlock(&s->mu);
}

void
trace_sink_flush(struct trace_sink *s)
{
	pthread_mutex_lock(&s->mu);
	uint64_t target = s->enq_total;
	s->flushing++;
	pthread_cond_signal(&s->more);
	while (s->wr_total < target) {
		pthread_cond_wait(&s->done, &s->mu);
	}
	s->flushing--;
	pthread_mutex_unlock(&s->mu);
}

void
trace_sink_get_stats(struct trace_sink *s, struct trace_sink_stats *out)
{
	pthread_mutex_lock(&s->mu);
	out->dropped = s->dropped;
	out->write_errors = s->write_errors;
	out->queued_bytes = s->used;
	out->queue_capacity = s->cap;
	/* Lines are whole in the ring, so "written" = queued lines minus those still queued;
	 * counting newlines still in the ring is exact and cheap enough for a stats call. */
	uint64_t pending = 0;
	for (size_t i = 0, at = s->head; i < s->used; i++, at = at + 1 == s->cap ? 0 : at + 1) {
		pending += s->ring[at] == '\n';
	}
	out->written = s->queued_lines - pending;
	pthread_mutex_unlock(&s->mu);
}

const char *
trace_sink_path(const struct trace_sink *s)
{
	return s->path;
}

void
trace_sink_close(struct trace_sink *s)
{
	if (s == NULL) {
		return;
	}
	pthread_mutex_lock(&s->mu);
	s->stop = true;
	pthread_cond_signal(&s->more);
	pthread_mutex_unlock(&s->mu);
	pthread_join(s->thread, NULL);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->more);
	pthread_cond_destroy(&s->done);
	if (s->fd > STDOUT_FILENO) {
		close(s->fd);
	}
	free(s->ring);
	free(s->path);
	free(s);
}
