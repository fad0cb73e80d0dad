/* proxy/log.h: leveled logging to stderr, one line per call, UTC timestamps.
 * The level is checked before any formatting, so disabled levels cost one compare. */
#ifndef RT_PROXY_LOG_H
#define RT_PROXY_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum log_level { LOG_LVL_ERROR = 0, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG, LOG_LVL_MAX };

/* Current threshold: messages above it are dropped.  Default LOG_LVL_INFO. */
extern enum log_level log_threshold;

void log_set_level(enum log_level lvl);

/* Parses "error", "warn", "info", "debug" (case-sensitive).  False on anything else. */
bool log_parse_level(const char *name, enum log_level *out);

/* "error", "warn", "info", "debug". */
const char *log_level_name(enum log_level lvl);

/* Copies peer-controlled text (user names, targets, server messages) into buf with control
 * bytes, quotes, backslashes and bytes >= 0x7f shown as \xNN, so a log line stays one line
 * and cannot be forged.  Cut to fit; returns buf. */
const char *log_safe(const char *in, size_t n, char *buf, size_t len);

/* Writes one line: "<ISO-8601 UTC ms> <LEVEL> [<prefix>] <message>".  `prefix` may be NULL
 * (no brackets).  Callers use the macros below, which skip formatting when disabled. */
void log_write(enum log_level lvl, const char *prefix, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define log_at(lvl, prefix, ...)                                                                   \
	do {                                                                                       \
		if ((lvl) <= log_threshold)                                                        \
			log_write((lvl), (prefix), __VA_ARGS__);                                   \
	} while (0)

#define log_error(...) log_at(LOG_LVL_ERROR, NULL, __VA_ARGS__)
#define log_warn(...) log_at(LOG_LVL_WARN, NULL, __VA_ARGS__)
#define log_info(...) log_at(LOG_LVL_INFO, NULL, __VA_ARGS__)
#define log_debug(...) log_at(LOG_LVL_DEBUG, NULL, __VA_ARGS__)

/* Per-session variants: `tag` is the session's "s=<id> <peer>" prefix (session_tag()). */
#define slog_error(tag, ...) log_at(LOG_LVL_ERROR, (tag), __VA_ARGS__)
#define slog_warn(tag, ...) log_at(LOG_LVL_WARN, (tag), __VA_ARGS__)
#define slog_info(tag, ...) log_at(LOG_LVL_INFO, (tag), __VA_ARGS__)
#define slog_debug(tag, ...) log_at(LOG_LVL_DEBUG, (tag), __VA_ARGS__)

#endif /* RT_PROXY_LOG_H */
