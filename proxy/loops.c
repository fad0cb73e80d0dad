/* proxy/loops.c: worker event loops and the job queues between them.  A queue is a
 * mutex-guarded list with an eventfd that is written only when the list goes from empty
 * to not empty: one wake-up per burst of jobs, not per job. */
#include "proxy/loops.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <event2/event.h>

#include "proxy/log.h"

struct job {
	loops_job_fn fn;
	void *arg;
	struct job *next;
};

struct lane {
	struct event_base *base;
	bool own_base;
	pthread_t thread;
	bool started;
	pthread_mutex_t mu;
	struct job *head, *tail;
	bool closed;            /* joined: posts run inline */
	bool quit;              /* under mu: leave the loop after the queued jobs */
	int efd;
	struct event *ev;
};

struct loops {
	unsigned n;
	bool stopped;
	struct lane lane[];
};

/* The CPUs this process may run on (taskset, cpusets), as haproxy counts them. */
unsigned
loops_default_count(void)
{
	cpu_set_t set;
	long n;

	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		n = CPU_COUNT(&set);
	else
		n = sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1u : n > LOOPS_MAX ? LOOPS_MAX : (unsigned)n;
}

static struct job *
take_all(struct lane *ln)
{
	pthread_mutex_lock(&ln->mu);
	struct job *j = ln->head;
	ln->head = ln->tail = NULL;
	pthread_mutex_unlock(&ln->mu);
	return j;
}

static void
run_jobs(struct job *j)
{
	while (j != NULL) {
		struct job *next = j->next;
		j->fn(j->arg);
		free(j);
		j = next;
	}
}

/* The eventfd is read before the list is taken: a job pushed after the take finds the
 * list empty and writes the eventfd again, so none is left behind. */
static void
wake_cb(evutil_socket_t fd, short what, void *ctx)
{
	struct lane *ln = ctx;
	uint64_t v;

	(void)what;
	while (read(fd, &v, sizeof(v)) < 0 && errno == EINTR)
		;
	run_jobs(take_all(ln));
	pthread_mutex_lock(&ln->mu);
	bool quit = ln->quit;
	pthread_mutex_unlock(&ln->mu);
	if (quit)
		event_base_loopbreak(ln->base);
}

static void
lane_wake(struct lane *ln)
{
	uint64_t one = 1;

	while (write(ln->efd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
}

/* Signals belong to the main loop (libevent's signal events live there). */
static void *
lane_main(void *arg)
{
	struct lane *ln = arg;
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	if (event_base_loop(ln->base, EVLOOP_NO_EXIT_ON_EMPTY) < 0)
		log_error("worker loop failed");
	return NULL;
}

static bool
lane_init(struct lane *ln, struct event_base *base, bool own, char *err, size_t errlen)
{
	pthread_mutex_init(&ln->mu, NULL);
	ln->base = base;
	ln->own_base = own;
	ln->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (ln->base == NULL || ln->efd < 0) {
		snprintf(err, errlen, "worker loop: %s", ln->efd < 0 ? strerror(errno) : "no base");
		return false;
	}
	ln->ev = event_new(base, ln->efd, EV_READ | EV_PERSIST, wake_cb, ln);
	if (ln->ev == NULL || event_add(ln->ev, NULL) != 0) {
		snprintf(err, errlen, "worker loop: cannot watch its eventfd");
		return false;
	}
	return true;
}

struct loops *
loops_new(struct event_base *main_base, unsigned n, char *err, size_t errlen)
{
	struct loops *l;

	if (n < 1 || n > LOOPS_MAX) {
		snprintf(err, errlen, "workers: %u is out of range 1..%d", n, LOOPS_MAX);
		return NULL;
	}
	l = calloc(1, sizeof(*l) + n * sizeof(struct lane));
	if (l == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	l->n = n;
	for (unsigned i = 0; i < n; i++)
		l->lane[i].efd = -1;
	for (unsigned i = 0; i < n; i++) {
		struct event_base *b = i == 0 ? main_base : event_base_new();
		if (!lane_init(&l->lane[i], b, i > 0, err, errlen))
			goto fail;
	}
	for (unsigned i = 1; i < n; i++) {
		int rc = pthread_create(&l->lane[i].thread, NULL, lane_main, &l->lane[i]);
		if (rc != 0) {
			snprintf(err, errlen, "worker thread: %s", strerror(rc));
			goto fail;
		}
		l->lane[i].started = true;
	}
	return l;
fail:
	loops_free(l);
	return NULL;
}

unsigned
loops_count(const struct loops *l)
{
	return l->n;
}

struct event_base *
loops_base(const struct loops *l, unsigned lane)
{
	return l->lane[lane].base;
}

bool
loops_post(struct loops *l, unsigned lane, loops_job_fn fn, void *arg)
{
	struct lane *ln = &l->lane[lane];
	struct job *j = malloc(sizeof(*j));
	bool was_empty;

	if (j == NULL)
		return false;
	j->fn = fn;
	j->arg = arg;
	j->next = NULL;
	pthread_mutex_lock(&ln->mu);
	if (ln->closed) {
		pthread_mutex_unlock(&ln->mu);
		free(j);
		fn(arg);
		return true;
	}
	was_empty = ln->head == NULL;
	if (was_empty)
		ln->head = j;
	else
		ln->tail->next = j;
	ln->tail = j;
	pthread_mutex_unlock(&ln->mu);
	if (was_empty)
		lane_wake(ln);
	return true;
}

void
loops_stop(struct loops *l)
{
	if (l->stopped)
		return;
	l->stopped = true;
	for (unsigned i = 1; i < l->n; i++) {
		struct lane *ln = &l->lane[i];
		if (!ln->started)
			continue;
		pthread_mutex_lock(&ln->mu);
		ln->quit = true;
		pthread_mutex_unlock(&ln->mu);
		lane_wake(ln);
		pthread_join(ln->thread, NULL);
		ln->started = false;
	}
	for (unsigned i = 0; i < l->n; i++) {
		struct lane *ln = &l->lane[i];
		pthread_mutex_lock(&ln->mu);
		ln->closed = true;
		pthread_mutex_unlock(&ln->mu);
		run_jobs(take_all(ln));
	}
}

void
loops_free(struct loops *l)
{
	if (l == NULL)
		return;
	loops_stop(l);
	for (unsigned i = 0; i < l->n; i++) {
		struct lane *ln = &l->lane[i];
		if (ln->ev != NULL)
			event_free(ln->ev);
		if (ln->efd >= 0)
			close(ln->efd);
		if (ln->own_base && ln->base != NULL)
			event_base_free(ln->base);
		pthread_mutex_destroy(&ln->mu);
	}
	free(l);
}
