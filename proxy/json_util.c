/* proxy/json_util.c: see json_util.h. */
#include "proxy/json_util.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at p (1..4), or 0 if invalid (RFC 3629: no
 * overlongs, no surrogates, nothing above U+10FFFF). */
static size_t
utf8_seq_len(const unsigned char *p, size_t n)
{
	unsigned char c = p[0];
	size_t len;
	uint32_t cp;

	if (c < 0x80) {
		return 1;
	} else if ((c & 0xe0) == 0xc0) {
		len = 2, cp = c & 0x1f;
	} else if ((c & 0xf0) == 0xe0) {
		len = 3, cp = c & 0x0f;
	} else if ((c & 0xf8) == 0xf0) {
		len = 4, cp = c & 0x07;
	} else {
		return 0;
	}
	if (len > n) {
		return 0;
	}
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80) {
			return 0;
		}
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
	if (cp < min_cp[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
		return 0;
	}
	return len;
}

json_t *
json_string_lossy(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, bad = 0;

	while (i < n && p[i] < 0x80 && p[i] != 0) { /* the usual case: plain ASCII */
		i++;
	}
	while (i < n) {
		size_t l = utf8_seq_len(p + i, n - i);
		if (l == 0 || p[i] == 0) {
			bad++;
			l = 1;
		}
		i += l;
	}
	if (bad == 0) {
		return json_stringn_nocheck(s, n);
	}
	char *buf = malloc(n + 2 * bad + 1); /* each bad byte (1) becomes U+FFFD (3) */
	if (buf == NULL) {
		return NULL;
	}
	size_t o = 0;
	for (i = 0; i < n;) {
		size_t l = utf8_seq_len(p + i, n - i);
		if (l == 0 || p[i] == 0) {
			memcpy(buf + o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
			continue;
		}
		memcpy(buf + o, p + i, l);
		o += l;
		i += l;
	}
	json_t *j = json_stringn_nocheck(buf, o);
	free(buf);
	return j;
}

/* ---- jbuf --------------------------------------------------------------------------- */

/* The external definitions of the header's inline writers. */
extern inline bool jbuf_room(struct jbuf *b, size_t n);
extern inline void jbuf_put(struct jbuf *b, const char *s, size_t n);
extern inline void jbuf_puts(struct jbuf *b, const char *s);

bool
jbuf_grow(struct jbuf *b, size_t n)
{
	if (b->failed) {
		return false;
	}
	if (b->cap - b->len >= n) {
		return true;
	}
	size_t cap = b->cap ? b->cap : 256;
	while (cap - b->len < n) {
		cap *= 2;
	}
	char *p = realloc(b->p, cap);
	if (p == NULL) {
		b->failed = true;
		return false;
	}
	b->p = p;
	b->cap = cap;
	return true;
}

void
jbuf_uint(struct jbuf *b, uint64_t v)
{
	char d[20];
	size_t i = sizeof(d);

	do {
		d[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	jbuf_put(b, d + i, sizeof(d) - i);
}

void
jbuf_json(struct jbuf *b, const json_t *v)
{
	const size_t flags = JSON_COMPACT | JSON_ENCODE_ANY;
	size_t room = b->failed || b->p == NULL ? 0 : b->cap - b->len;
	size_t n = v ? json_dumpb(v, room ? b->p + b->len : NULL, room, flags) : 0;

	if (n == 0) {
		b->failed = true;
		return;
	}
	if (n > room) { /* it did not fit: the room was only measured, write it again */
		if (!jbuf_room(b, n)) {
			return;
		}
		n = json_dumpb(v, b->p + b->len, n, flags);
	}
	b->len += n;
}

void
jbuf_members(struct jbuf *b, const json_t *obj)
{
	size_t at = b->len;

	jbuf_json(b, obj);
	if (!b->failed && b->len - at >= 2 && b->p[at] == '{') {
		memmove(b->p + at, b->p + at + 1, b->len - at - 2);
		b->len -= 2;
	}
}

/* Eight bytes at a time (SWAR): true if any byte of w is below 0x20, at or above 0x7f, a
 * quote or a backslash, i.e. would not be copied as is into a JSON string. */
static inline bool
word_needs_escape(uint64_t w)
{
	const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
	uint64_t q = w ^ (ones * '"'), b = w ^ (ones * '\\'), d = w ^ (ones * 0x7f);

	uint64_t hit = ((w - ones * 0x20) & ~w) | ((q - ones) & ~q) | ((b - ones) & ~b) |
		       ((d - ones) & ~d) | w;

	return (hit & high) != 0; /* no byte is missed; a false alarm only takes the byte loop */
}

/* Length of the prefix of p[0..n) that JSON takes as is (see jbuf_string). */
static size_t
plain_prefix(const unsigned char *p, size_t n)
{
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		uint64_t w;
		memcpy(&w, p + i, 8);
		if (word_needs_escape(w)) {
			break;
		}
	}
	while (i < n && p[i] >= 0x20 && p[i] < 0x7f && p[i] != '"' && p[i] != '\\') {
		i++;
	}
	return i;
}

void
jbuf_string(struct jbuf *b, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = plain_prefix(p, n);

	if (i == n) {
		if (jbuf_room(b, n + 2)) {
			b->p[b->len] = '"';
			memcpy(b->p + b->len + 1, s, n);
			b->p[b->len + n + 1] = '"';
			b->len += n + 2;
		}
		return;
	}
	json_t *j = json_string_lossy(s, n);
	jbuf_json(b, j);
	json_decref(j);
}

void
jbuf_free(struct jbuf *b)
{
	free(b->p);
	*b = (struct jbuf){0};
}
