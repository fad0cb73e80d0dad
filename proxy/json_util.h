/* proxy/json_util.h: jansson helpers shared by the trace, /stats and /rules. */
#ifndef RT_PROXY_JSON_UTIL_H
#define RT_PROXY_JSON_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <jansson.h>

/* A JSON string from arbitrary bytes: valid UTF-8 is kept, every byte of an invalid
 * sequence becomes U+FFFD.  Never NULL unless out of memory.  (jansson refuses invalid
 * UTF-8, and SQL text routinely holds binary literals.) */
json_t *json_string_lossy(const char *s, size_t n);

/* A growing text buffer that JSON is written into piece by piece (the trace's records).
 * Any failure to grow sets `failed` and makes later writes no-ops: check it once at the
 * end.  A zeroed struct is an empty buffer. */
struct jbuf {
	char *p;
	size_t len, cap;
	bool failed;
};

/* Makes room for n more bytes (the slow path of the inline writers below).  False if the
 * buffer has failed or cannot grow. */
bool jbuf_grow(struct jbuf *b, size_t n);

/* Inline: a record is built from ~20 short pieces, mostly string constants whose strlen
 * the compiler then folds; the call per piece was most of their cost.  C99 inline
 * definitions: json_util.c also emits them as ordinary functions (objects built against
 * the earlier header still link). */
inline bool
jbuf_room(struct jbuf *b, size_t n)
{
	return (!b->failed && b->cap - b->len >= n) || jbuf_grow(b, n);
}

inline void
jbuf_put(struct jbuf *b, const char *s, size_t n)
{
	if (n > 0 && jbuf_room(b, n)) {
		memcpy(b->p + b->len, s, n);
		b->len += n;
	}
}

inline void
jbuf_puts(struct jbuf *b, const char *s)
{
	jbuf_put(b, s, strlen(s));
}

void jbuf_uint(struct jbuf *b, uint64_t v);

/* The JSON text of v (any value), as jansson writes it with JSON_COMPACT. */
void jbuf_json(struct jbuf *b, const json_t *v);

/* The members of object obj without its braces ("" for an empty object). */
void jbuf_members(struct jbuf *b, const json_t *obj);

/* s[0..n) as a JSON string, as json_string_lossy() + jbuf_json() would write it.  Text of
 * printable ASCII with no quote or backslash (most SQL) needs no escaping: jansson would
 * copy it as is, and so does this, without building a json_t; anything else goes through
 * jansson. */
void jbuf_string(struct jbuf *b, const char *s, size_t n);

void jbuf_free(struct jbuf *b);

#endif /* RT_PROXY_JSON_UTIL_H */
