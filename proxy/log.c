/* proxy/log.c: leveled stderr logging (see log.h). */
#include "proxy/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

enum log_level log_threshold = LOG_LVL_INFO;

static const char *const level_names[LOG_LVL_MAX] = {"error", "warn", "info", "debug"};
static const char *const level_tags[LOG_LVL_MAX] = {"ERROR", "WARN", "INFO", "DEBUG"};

void
log_set_level(enum log_level lvl)
{
	if (lvl < LOG_LVL_MAX)
		log_threshold = lvl;
}

bool
log_parse_level(const char *name, enum log_level *out)
{
	for (int i = 0; i < LOG_LVL_MAX; i++) {
		if (strcmp(name, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return true;
		}
	}
	return false;
}

const char *
log_level_name(enum log_level lvl)
{
	return lvl < LOG_LVL_MAX ? level_names[lvl] : "?";
}

const char *
log_safe(const char *in, size_t n, char *buf, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	if (len == 0)
		return buf;
	for (size_t i = 0; in != NULL && i < n && in[i] != '\0'; i++) {
		unsigned char ch = (unsigned char)in[i];
		bool plain = ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\';

		if (o + (plain ? 1 : 4) >= len)
			break;
		if (plain) {
			buf[o++] = (char)ch;
		} else {
			buf[o++] = '\\';
			buf[o++] = 'x';
			buf[o++] = hex[ch >> 4];
			buf[o++] = hex[ch & 15];
		}
	}
	buf[o] = '\0';
	return buf;
}

void
log_write(enum log_level lvl, const char *prefix, const char *fmt, ...)
{
	char line[2048], ts[40];
	struct timeval tv;
	struct tm tm;
	va_list ap;
	int n;

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	n = snprintf(line, sizeof(line), "%s.%03dZ %s %s%s%s", ts, (int)(tv.tv_usec / 1000),
		     lvl < LOG_LVL_MAX ? level_tags[lvl] : "?", prefix ? "[" : "",
		     prefix ? prefix : "", prefix ? "] " : "");
	if (n < 0 || (size_t)n >= sizeof(line))
		n = 0;
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	/* One fputs of a whole line keeps lines from interleaving with other writers. */
	fprintf(stderr, "%s\n", line);
}
