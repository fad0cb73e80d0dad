/* proxy/listener.c: evconnlistener per address (on lane 0), sessions handed to the loop
 * lanes in turn, connection limit, drain. */
#include "proxy/listener.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "proxy/log.h"
#include "proxy/loops.h"
#include "proxy/wire.h"

#define BACKLOG 4096
#define REFUSE_TIMEOUT_S 5
#define ACCEPT_PAUSE_MS 200

/* One per loop lane: the sessions that live on that lane's thread. */
struct lane_env {
	struct listener *l;
	unsigned idx;
	struct session_env env;
};

/* Accepted on lane 0, started on the chosen lane. */
struct handoff {
	struct lane_env *le;
	struct cfg *cfg;          /* reference */
	int fd;
	socklen_t peerlen;
	struct sockaddr_storage peer;
};

struct listener {
	struct event_base *base;                  /* lane 0: accepts, timers, drain */
	struct loops *loops;
	struct cfg *cfg;                          /* for new sessions (reference) */
	struct evconnlistener *lev[CFG_MAX_LISTEN];
	char unix_path[CFG_MAX_LISTEN][108];      /* sockets we created, unlinked at close */
	unsigned n;
	struct lane_env *lanes;
	unsigned nlanes, next_lane;
	uint64_t ids;                             /* session ids, all lanes (atomic) */
	uint64_t live, total;                     /* sessions, all lanes (atomic) */
	uint64_t refused;
	struct event *pause_ev;                   /* accept errors (EMFILE): retry later */
	struct event *drain_ev;                   /* drain deadline */
	bool draining;
	void (*drain_done)(void *);
	void *drain_arg;
};

#define ATOMIC_GET(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define ATOMIC_ADD(p, v) __atomic_add_fetch((p), (v), __ATOMIC_ACQ_REL)

static void
refuse_done_cb(struct bufferevent *bev, void *ctx)
{
	(void)ctx;
	bufferevent_free(bev);
}

static void
refuse_event_cb(struct bufferevent *bev, short what, void *ctx)
{
	(void)what;
	(void)ctx;
	bufferevent_free(bev);
}

/* Over the limit: the client gets what MariaDB sends in that case, ERR 1040 in place of
 * the greeting (seq 0), then the close. */
static void
refuse_client(struct listener *l, evutil_socket_t fd)
{
	struct timeval tmo = {REFUSE_TIMEOUT_S, 0};
	struct bufferevent *bev;
	uint8_t pkt[128];
	size_t n;

	l->refused++;
	n = wire_build_err(pkt, sizeof(pkt), 0, 1040, "08004", "Too many connections");
	bev = bufferevent_socket_new(l->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		evutil_closesocket(fd);
		return;
	}
	bufferevent_setcb(bev, NULL, refuse_done_cb, refuse_event_cb, NULL);
	bufferevent_set_timeouts(bev, NULL, &tmo);
	if (n == 0 || bufferevent_write(bev, pkt, n) != 0)
		bufferevent_free(bev);
}

static void drain_check_job(void *arg);

/* A session is gone (any lane's thread).  The last one wakes lane 0: a drain or the
 * final shutdown may be waiting for it. */
static void
session_gone(struct listener *l)
{
	if (ATOMIC_ADD(&l->live, (uint64_t)-1) == 0)
		(void)loops_post(l->loops, 0, drain_check_job, l);
}

static void
handoff_job(void *arg)
{
	struct handoff *h = arg;

	if (!session_start(&h->le->env, h->cfg, h->fd, (struct sockaddr *)&h->peer, h->peerlen))
		session_gone(h->le->l);
	cfg_unref(h->cfg);
	free(h);
}

/* Sessions go to the lanes in turn.  A lane's sessions are all on its thread, so the
 * relay path shares nothing with the other lanes. */
static void
dispatch(struct listener *l, int fd, const struct sockaddr *sa, socklen_t salen)
{
	struct lane_env *le = &l->lanes[l->next_lane++ % l->nlanes];
	struct handoff *h;

	ATOMIC_ADD(&l->live, 1);
	ATOMIC_ADD(&l->total, 1);
	if (le->idx == 0) {
		if (!session_start(&le->env, l->cfg, fd, sa, salen))
			session_gone(l);
		return;
	}
	h = calloc(1, sizeof(*h));
	if (h != NULL && (size_t)salen <= sizeof(h->peer)) {
		h->le = le;
		h->cfg = cfg_ref(l->cfg);
		h->fd = fd;
		h->peerlen = salen;
		memcpy(&h->peer, sa, (size_t)salen);
		if (loops_post(l->loops, le->idx, handoff_job, h))
			return;
		cfg_unref(h->cfg);
	}
	free(h);
	log_error("session: out of memory; client connection dropped");
	evutil_closesocket(fd);
	session_gone(l);
}

static void
accept_cb(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa, int salen,
	  void *ctx)
{
	struct listener *l = ctx;

	(void)lev;
	if (ATOMIC_GET(&l->live) >= (uint64_t)l->cfg->max_client_connections) {
		if (l->refused % 1000 == 0)
			log_warn("max_client_connections (%" PRId64 ") reached: refusing with "
				 "ERR 1040 (%" PRIu64 " refused so far)",
				 l->cfg->max_client_connections, l->refused + 1);
		refuse_client(l, fd);
		return;
	}
	dispatch(l, (int)fd, sa, (socklen_t)salen);
}

static void
resume_cb(evutil_socket_t fd, short what, void *ctx)
{
	struct listener *l = ctx;

	(void)fd;
	(void)what;
	for (unsigned i = 0; i < l->n; i++) {
		if (l->lev[i] != NULL)
			evconnlistener_enable(l->lev[i]);
	}
}

/* accept() failed (typically EMFILE): pause every listener briefly instead of spinning. */
static void
accept_error_cb(struct evconnlistener *lev, void *ctx)
{
	struct listener *l = ctx;
	struct timeval tv = {0, ACCEPT_PAUSE_MS * 1000};
	int err = EVUTIL_SOCKET_ERROR();

	(void)lev;
	log_warn("accept failed: %s; pausing accepts for %d ms", strerror(err), ACCEPT_PAUSE_MS);
	for (unsigned i = 0; i < l->n; i++) {
		if (l->lev[i] != NULL)
			evconnlistener_disable(l->lev[i]);
	}
	evtimer_add(l->pause_ev, &tv);
}

/* Removes a stale Unix socket file left by a previous run (only a socket, never a file). */
static bool
clear_stale_socket(const char *path, char *err, size_t errlen)
{
	struct stat st;

	if (lstat(path, &st) != 0)
		return true;
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "listen unix:%s: exists and is not a socket", path);
		return false;
	}
	if (unlink(path) != 0) {
		snprintf(err, errlen, "listen unix:%s: cannot remove stale socket: %s", path,
			 strerror(errno));
		return false;
	}
	return true;
}

static bool
bind_one(struct listener *l, const struct cfg_addr *a, char *err, size_t errlen)
{
	unsigned flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_REUSEABLE;
	const struct sockaddr_un *un = (const struct sockaddr_un *)(const void *)&a->sa;
	struct evconnlistener *lev;

	if (a->family == AF_UNIX && !clear_stale_socket(un->sun_path, err, errlen))
		return false;
	lev = evconnlistener_new_bind(l->base, accept_cb, l, flags, BACKLOG,
				      (const struct sockaddr *)&a->sa, (int)a->salen);
	if (lev == NULL) {
		snprintf(err, errlen, "listen %s: %s", a->text, strerror(errno));
		return false;
	}
	evconnlistener_set_error_cb(lev, accept_error_cb);
	if (a->family == AF_UNIX) {
		/* Like mysqld's socket: any local user may connect; auth is the server's. */
		(void)chmod(un->sun_path, 0777);
		snprintf(l->unix_path[l->n], sizeof(l->unix_path[l->n]), "%s", un->sun_path);
	}
	l->lev[l->n++] = lev;
	log_info("listening on %s", a->text);
	return true;
}

static void
close_listeners(struct listener *l)
{
	for (unsigned i = 0; i < l->n; i++) {
		if (l->lev[i] != NULL)
			evconnlistener_free(l->lev[i]);
		l->lev[i] = NULL;
		if (l->unix_path[i][0] != '\0')
			(void)unlink(l->unix_path[i]);
		l->unix_path[i][0] = '\0';
	}
}

static void
drain_check(struct listener *l)
{
	void (*done)(void *) = l->drain_done;

	if (!l->draining || ATOMIC_GET(&l->live) > 0 || done == NULL)
		return;
	l->drain_done = NULL;
	log_info("drain complete: no session left");
	done(l->drain_arg);
}

static void
drain_check_job(void *arg)
{
	drain_check(arg);
}

static void
session_freed(struct session_env *env)
{
	struct lane_env *le = env->owner;

	session_gone(le->l);
}

struct shutdown_req {
	struct lane_env *le;
	const char *reason; /* static */
};

static void
shutdown_job(void *arg)
{
	struct shutdown_req *r = arg;

	session_shutdown_all(&r->le->env, r->reason);
	free(r);
}

/* Ends every session of every lane, each on its own thread. */
static void
shutdown_lanes(struct listener *l, const char *reason)
{
	for (unsigned i = 0; i < l->nlanes; i++) {
		struct shutdown_req *r = malloc(sizeof(*r));
		if (r == NULL) {
			log_error("out of memory: lane %u not told to end its sessions", i);
			continue;
		}
		r->le = &l->lanes[i];
		r->reason = reason;
		if (i == 0)
			shutdown_job(r);
		else if (!loops_post(l->loops, i, shutdown_job, r))
			free(r);
	}
}

static void
drain_deadline_cb(evutil_socket_t fd, short what, void *ctx)
{
	struct listener *l = ctx;

	(void)fd;
	(void)what;
	log_warn("drain timeout: ending %" PRIu64 " session(s)", ATOMIC_GET(&l->live));
	shutdown_lanes(l, "proxy shutting down (drain timeout)");
}

struct listener *
listener_new(struct loops *loops, struct cfg *cfg, const struct session_observer *obs,
	     void *const *obs_ctx, char *err, size_t errlen)
{
	struct listener *l = calloc(1, sizeof(*l));

	if (l == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	l->loops = loops;
	l->base = loops_base(loops, 0);
	l->cfg = cfg_ref(cfg);
	l->nlanes = loops_count(loops);
	l->lanes = calloc(l->nlanes, sizeof(*l->lanes));
	l->pause_ev = evtimer_new(l->base, resume_cb, l);
	l->drain_ev = evtimer_new(l->base, drain_deadline_cb, l);
	if (l->lanes == NULL || l->pause_ev == NULL || l->drain_ev == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	for (unsigned i = 0; i < l->nlanes; i++) {
		struct lane_env *le = &l->lanes[i];
		le->l = l;
		le->idx = i;
		le->env.base = loops_base(loops, i);
		le->env.obs = obs;
		le->env.obs_ctx = obs_ctx != NULL ? obs_ctx[i] : NULL;
		le->env.on_free = session_freed;
		le->env.owner = le;
		le->env.id_source = &l->ids;
		le->env.lane = i;
	}
	for (unsigned i = 0; i < cfg->n_listen; i++) {
		if (!bind_one(l, &cfg->listen[i], err, errlen))
			goto fail;
	}
	return l;
fail:
	listener_free(l);
	return NULL;
}

void
listener_set_config(struct listener *l, struct cfg *cfg)
{
	struct cfg *old = l->cfg;

	l->cfg = cfg_ref(cfg);
	cfg_unref(old);
}

void
listener_drain(struct listener *l, void (*done)(void *arg), void *arg)
{
	struct timeval tv = {(time_t)l->cfg->drain_timeout_s, 0};

	if (l->draining)
		return;
	l->draining = true;
	l->drain_done = done;
	l->drain_arg = arg;
	close_listeners(l);
	log_info("draining: stopped accepting; %" PRIu64 " session(s) live, waiting up to %" PRId64
		 " s",
		 ATOMIC_GET(&l->live), l->cfg->drain_timeout_s);
	if (ATOMIC_GET(&l->live) > 0)
		evtimer_add(l->drain_ev, &tv);
	drain_check(l);
}

void
listener_counts(const struct listener *l, uint64_t *active, uint64_t *total, uint64_t *refused)
{
	*active = ATOMIC_GET(&l->live);
	*total = ATOMIC_GET(&l->total);
	*refused = l->refused;
}

void
listener_free(struct listener *l)
{
	if (l == NULL)
		return;
	close_listeners(l);
	l->drain_done = NULL;
	if (l->lanes != NULL) {
		shutdown_lanes(l, "proxy exiting");
		/* Sessions still flushing point at their lane's env: let them finish (bounded
		 * by their linger timer) before it goes away.  The last one wakes this loop. */
		while (ATOMIC_GET(&l->live) > 0 && event_base_loop(l->base, EVLOOP_ONCE) == 0)
			;
		/* The last session's wake-up job holds l: run it (and join the lanes, so no
		 * other can come) before l goes. */
		loops_stop(l->loops);
	}
	if (l->pause_ev != NULL)
		event_free(l->pause_ev);
	if (l->drain_ev != NULL)
		event_free(l->drain_ev);
	cfg_unref(l->cfg);
	free(l->lanes);
	free(l);
}
