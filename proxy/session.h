/* proxy/session.h: one inline client session: the client bufferevent and the upstream
 * bufferevent, owned together, with the wire decoder between them.  Client commands are
 * held until the decoder has seen them whole (the decision point); server bytes stream
 * through after their headers are looked at.  Every decoder event goes through one
 * function, which hands it to the observer (the tracing/guard hook). */
#ifndef RT_PROXY_SESSION_H
#define RT_PROXY_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "proxy/config.h"
#include "proxy/wire.h"

struct event_base;
struct evbuffer;
struct session;

/* The hook for tracing and the guard.  Every member may be NULL.  Calls are made from the
 * event loop; `s` is valid for the duration of the call. */
struct session_observer {
	/* A session was accepted (user unknown yet). */
	void (*on_open)(void *octx, struct session *s);
	/* Every decoder event, in order.  For WIRE_EV_COMMAND the return value is the
	 * verdict (WIRE_FORWARD when absent); ignored otherwise. */
	enum wire_verdict (*on_event)(void *octx, struct session *s, const struct wire_event *ev);
	/* Releases a command context set in on_event(WIRE_EV_COMMAND) (ev->u.command->user)
	 * that the decoder still held when the session ended. */
	void (*free_user)(void *octx, struct session *s, void *user);
	/* Fills the message of the ERR sent for a blocked command (WIRE_EV_BLOCKED_DUE);
	 * absent or returning 0 gives a generic message. */
	size_t (*block_message)(void *octx, struct session *s, void *cmd_user, char *buf,
				size_t len);
	/* The session ended; the decoder is still readable here.  Pending commands got their
	 * aborted RESULT / RESPONSE_END events just before. */
	void (*on_close)(void *octx, struct session *s, const char *reason);
	/* After on_close, once the decoder is gone (its free_user calls are done): release
	 * the per-session data here. */
	void (*on_free)(void *octx, struct session *s);
};

/* State shared by all sessions of one proxy, owned by the caller (the listener).  The
 * caller fills base, observer and on_free; session.c maintains the rest. */
struct session_env {
	struct event_base *base;
	const struct session_observer *obs; /* may be NULL */
	void *obs_ctx;
	void (*on_free)(struct session_env *env); /* after a session is freed (drain) */
	void *owner;                        /* caller's context for on_free */
	unsigned lane;                      /* the loop lane (thread) it runs on, for logs */
	struct session *head;               /* live sessions (session.c) */
	uint64_t next_id;                   /* last id given (session.c) */
	uint64_t *id_source;                /* if set: ids from this counter, shared by the
	                                       envs of several threads (atomic) */
	uint64_t active;                    /* live sessions (session.c) */
	uint64_t total;                     /* sessions started (session.c) */
	struct evbuffer *c2s_stage;         /* scratch of a client pass (session.c) */
};

/* Starts a session for an accepted client socket: takes ownership of fd (closed on
 * failure too) and a reference on cfg, and connects to cfg->upstream.  False on
 * allocation failure.  The session frees itself when it ends (env->on_free is called). */
bool session_start(struct session_env *env, struct cfg *cfg, int fd,
			      const struct sockaddr *peer, socklen_t peerlen);

/* Ends a session now (drain timeout, shutdown): logs `reason`, closes both sockets after
 * flushing what is already queued for a bounded time. */
void session_shutdown(struct session *s, const char *reason);

/* Ends every live session of env (see session_shutdown). */
void session_shutdown_all(struct session_env *env, const char *reason);

uint64_t session_id(const struct session *s);
const char *session_peer(const struct session *s); /* "127.0.0.1:5555", "unix" */
const char *session_tag(const struct session *s);  /* log prefix "s=<id> <peer>" */
/* The session's decoder (user, target, status, pending commands); NULL once it ended. */
struct wire_conv *session_conv(const struct session *s);
/* Bytes relayed client->server and server->client so far. */
void session_bytes(const struct session *s, uint64_t *c2s, uint64_t *s2c);
/* Per-session data of the observer (e.g. its connection state): set it in on_open,
 * release it in on_close.  NULL until set. */
void *session_obs_data(const struct session *s);
void session_set_obs_data(struct session *s, void *data);
/* The config this session started with. */
const struct cfg *session_cfg(const struct session *s);

#endif /* RT_PROXY_SESSION_H */
