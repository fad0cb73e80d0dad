/* proxy/loops.h: the proxy's event loops.  Lane 0 is the caller's (main) loop, which
 * also runs the listener, the rules mirror, the admin server and the signals; lanes
 * 1..n-1 each run their own event_base on a thread of their own.  A session lives on one
 * lane from accept to close, so nothing on its path takes a lock.  Lanes talk only by
 * jobs: a function run on the target lane's thread, in the order posted. */
#ifndef RT_PROXY_LOOPS_H
#define RT_PROXY_LOOPS_H

#include <stdbool.h>
#include <stddef.h>

struct event_base;
struct loops;

typedef void (*loops_job_fn)(void *arg);

/* n >= 1 lanes; lane 0 is main_base (not owned).  Threads start at once. */
struct loops *loops_new(struct event_base *main_base, unsigned n, char *err, size_t errlen);

unsigned loops_count(const struct loops *l);
struct event_base *loops_base(const struct loops *l, unsigned lane);

/* Runs fn(arg) on lane's thread, after the jobs posted to it before.  Safe from any
 * thread.  False only when out of memory (fn is then not called). */
bool loops_post(struct loops *l, unsigned lane, loops_job_fn fn, void *arg);

/* From lane 0's thread: ends lanes 1..n-1 (each runs the jobs queued to it first), joins
 * their threads, then runs what is still queued for any lane, lane 0 included.  Jobs
 * posted after that run on the caller's thread, at once. */
void loops_stop(struct loops *l);

/* Stops if needed; frees. */
void loops_free(struct loops *l);

/* The default lane count: one per CPU the process may run on, at most LOOPS_MAX. */
#define LOOPS_MAX 64
unsigned loops_default_count(void);

#endif /* RT_PROXY_LOOPS_H */
