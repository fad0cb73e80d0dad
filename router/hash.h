/* hash_bytes: a fast 64-bit hash of a byte string, eight bytes a step, for picking a
 * cache set or slot.  Callers compare the bytes they find there, so all it must do is
 * spread; it is not stable across versions and never reaches a record, a metric or a
 * log (the digest hash, which users see, is FNV-1a: sql_digest.h). */
#ifndef ROUTETRACE_HASH_H
#define ROUTETRACE_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline uint64_t
hash_bytes(uint64_t seed, const void *p, size_t n)
{
	const unsigned char *s = p;
	uint64_t h = (seed ^ 0xcbf29ce484222325ULL ^ n) * 0x100000001b3ULL, w;
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		memcpy(&w, s + i, 8);
		h = (h ^ w) * 0x9e3779b97f4a7c15ULL;
		h ^= h >> 29;
	}
	if (i < n) {
		w = 0;
		memcpy(&w, s + i, n - i);
		h = (h ^ w) * 0x9e3779b97f4a7c15ULL;
	}
	/* murmur3's finaliser: every input bit reaches the low bits a set index takes */
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	return h ^ (h >> 33);
}

#endif
