/* proxy/slot_index.c: hash chains over slot numbers, CLOCK replacement. */
#include "proxy/slot_index.h"

#include <stdlib.h>

#define NIL UINT16_MAX /* no slot: chains end here (so cap <= 65535) */

struct slot_index {
	unsigned cap;
	unsigned used;       /* slots [0, used) have been handed out */
	unsigned hand;       /* CLOCK's hand */
	unsigned shift;      /* 64 - log2(buckets) */
	uint64_t *keys;      /* per slot */
	uint16_t *next;      /* per slot: the next slot in its chain */
	uint8_t *ref;        /* per slot: used since the hand last passed */
	uint16_t *buckets;   /* chain heads */
};

/* Keys are hashes already, but some callers set their low bit (never 0): take the bucket
 * from the top bits of a multiplicative mix. */
static unsigned
bucket_of(const struct slot_index *ix, uint64_t key)
{
	return (unsigned)((key * 0x9e3779b97f4a7c15ULL) >> ix->shift);
}

struct slot_index *
slot_index_new(unsigned cap)
{
	unsigned bits = 1;

	if (cap == 0 || cap > NIL) {
		return NULL;
	}
	while ((1u << bits) < 2 * cap) { /* load factor <= 1/2 */
		bits++;
	}
	struct slot_index *ix = calloc(1, sizeof(*ix));
	if (ix == NULL) {
		return NULL;
	}
	ix->cap = cap;
	ix->shift = 64 - bits;
	ix->keys = calloc(cap, sizeof(*ix->keys));
	ix->next = calloc(cap, sizeof(*ix->next));
	ix->ref = calloc(cap, sizeof(*ix->ref));
	ix->buckets = malloc(((size_t)1 << bits) * sizeof(*ix->buckets));
	if (ix->keys == NULL || ix->next == NULL || ix->ref == NULL || ix->buckets == NULL) {
		slot_index_free(ix);
		return NULL;
	}
	for (size_t b = 0; b < (size_t)1 << bits; b++) {
		ix->buckets[b] = NIL;
	}
	return ix;
}

void
slot_index_free(struct slot_index *ix)
{
	if (ix == NULL) {
		return;
	}
	free(ix->keys);
	free(ix->next);
	free(ix->ref);
	free(ix->buckets);
	free(ix);
}

int
slot_index_next(const struct slot_index *ix, uint64_t key, int after)
{
	unsigned s = after < 0 ? ix->buckets[bucket_of(ix, key)] : ix->next[after];

	while (s != NIL && ix->keys[s] != key) {
		s = ix->next[s];
	}
	return s == NIL ? -1 : (int)s;
}

void
slot_index_touch(struct slot_index *ix, int slot)
{
	ix->ref[slot] = 1;
}

static void
unlink_slot(struct slot_index *ix, unsigned s)
{
	uint16_t *p = &ix->buckets[bucket_of(ix, ix->keys[s])];

	while (*p != s) { /* s is on its key's chain: the walk ends there */
		p = &ix->next[*p];
	}
	*p = ix->next[s];
}

/* CLOCK: the first slot from the hand not used since the hand last passed; the ones
 * passed over lose their mark.  Ends within two turns. */
static unsigned
clock_victim(struct slot_index *ix)
{
	for (;;) {
		unsigned s = ix->hand;
		ix->hand = (ix->hand + 1) % ix->cap;
		if (!ix->ref[s]) {
			return s;
		}
		ix->ref[s] = 0;
	}
}

int
slot_index_claim(struct slot_index *ix, uint64_t key)
{
	unsigned s;

	if (ix->used == ix->cap) {
		s = clock_victim(ix);
		unlink_slot(ix, s);
	} else {
		s = ix->used++;
	}
	uint16_t *head = &ix->buckets[bucket_of(ix, key)];
	ix->keys[s] = key;
	ix->next[s] = *head;
	ix->ref[s] = 1; /* just used: not the next victim */
	*head = (uint16_t)s;
	return (int)s;
}
