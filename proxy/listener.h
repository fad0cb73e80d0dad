/* proxy/listener.h: accepts clients on every configured address (TCP and Unix sockets),
 * enforces max_client_connections (ERR 1040, never a bare close), starts sessions, and
 * drains on shutdown. */
#ifndef RT_PROXY_LISTENER_H
#define RT_PROXY_LISTENER_H

#include <stddef.h>
#include <stdint.h>

#include "proxy/config.h"
#include "proxy/session.h"

struct listener;
struct loops;

/* Binds every address of cfg->listen on lane 0 of `loops` (takes a reference on cfg);
 * accepted clients go to the lanes in turn.  `obs` (may be NULL) is handed to every
 * session, with obs_ctx[lane] (an array of loops_count() entries, or NULL): calls for a
 * session are made on its lane's thread.  NULL with err set if any address cannot be
 * bound. */
struct listener *listener_new(struct loops *loops, struct cfg *cfg,
			      const struct session_observer *obs, void *const *obs_ctx,
			      char *err, size_t errlen);

/* New sessions use cfg from now on (takes a reference; the old one is released when its
 * last session ends).  Listen addresses are not changed (restart-only key). */
void listener_set_config(struct listener *l, struct cfg *cfg);

/* Stops accepting (closes the listening sockets), lets live sessions finish for up to
 * cfg->drain_timeout_s, then ends the rest; calls done(arg) once no session is left.
 * Returns at once; done may be called before it returns. */
void listener_drain(struct listener *l, void (*done)(void *arg), void *arg);

/* Live sessions, sessions started, clients refused over the limit. */
void listener_counts(const struct listener *l, uint64_t *active, uint64_t *total,
		     uint64_t *refused);

/* Frees the listener; live sessions are ended first, then the loop lanes are stopped
 * (loops_stop). */
void listener_free(struct listener *l);

#endif /* RT_PROXY_LISTENER_H */
