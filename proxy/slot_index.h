/* proxy/slot_index.h: which slot of a fixed-size cache holds a key, and which slot a new
 * entry takes.
 *
 * The tracer's caches (statement shapes, prepared texts, record fragments) keep their
 * entries in arrays of `cap` slots.  The index maps a 64-bit key to the slots bound to
 * it (hash chains), and on a miss hands out a never-used slot, else the one CLOCK picks
 * (second chance: a slot used since the hand last passed is spared once).  So a cache
 * misses only when more than `cap` keys are live, whatever their hashes: a set-
 * associative layout of the same size thrashed on a few dozen keys whenever three or
 * five of them shared a set.  Keys may collide: callers compare their entry and walk on.
 * No I/O, no locks (one index per loop lane). */
#ifndef ROUTETRACE_SLOT_INDEX_H
#define ROUTETRACE_SLOT_INDEX_H

#include <stdbool.h>
#include <stdint.h>

struct slot_index;

/* An index of cap slots (1 .. 65535), all free; NULL when cap is out of range or memory
 * is short. */
struct slot_index *slot_index_new(unsigned cap);
void slot_index_free(struct slot_index *ix);

/* The next slot bound to key after slot `after` (-1: the first); -1 when there is none. */
int slot_index_next(const struct slot_index *ix, uint64_t key, int after);

/* Notes that slot was used (a hit): CLOCK passes it over once. */
void slot_index_touch(struct slot_index *ix, int slot);

/* Binds a slot to key and returns it: a never-used slot while there is one, else CLOCK's
 * victim, whose entry (and its old key) the caller replaces. */
int slot_index_claim(struct slot_index *ix, uint64_t key);

#endif
