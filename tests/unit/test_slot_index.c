/* tests/unit/test_slot_index.c: the caches' slot index against a plain model (an array of
 * slot -> key), CLOCK's choice of victim, colliding keys, and its bounds. */
#include "proxy/slot_index.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

/* The slots next() walks for key, in order, into out; returns how many. */
static unsigned
walk(const struct slot_index *ix, uint64_t key, int *out, unsigned max)
{
	unsigned n = 0;

	for (int i = -1; (i = slot_index_next(ix, key, i)) >= 0;) {
		assert_true(n < max);
		out[n++] = i;
	}
	return n;
}

static void
test_free_slots_first_then_clock(void **state)
{
	(void)state;
	struct slot_index *ix = slot_index_new(4);
	int got[8];

	assert_non_null(ix);
	assert_int_equal(slot_index_next(ix, 7, -1), -1);
	for (int k = 0; k < 4; k++) {
		assert_int_equal(slot_index_claim(ix, 100 + (uint64_t)k), k); /* free ones, in order */
	}
	for (int k = 0; k < 4; k++) {
		assert_int_equal(walk(ix, 100 + (uint64_t)k, got, 8), 1);
		assert_int_equal(got[0], k);
	}
	/* All four are marked (just claimed): the hand clears them all and takes slot 0. */
	assert_int_equal(slot_index_claim(ix, 200), 0);
	assert_int_equal(slot_index_next(ix, 100, -1), -1);
	/* Slots 1..3 are unmarked now; a hit on 1 spares it: 2 goes next, then 3. */
	slot_index_touch(ix, 1);
	assert_int_equal(slot_index_claim(ix, 201), 2);
	assert_int_equal(slot_index_claim(ix, 202), 3);
	assert_int_equal(walk(ix, 101, got, 8), 1);
	assert_int_equal(slot_index_next(ix, 102, -1), -1);
	assert_int_equal(slot_index_next(ix, 103, -1), -1);
	slot_index_free(ix);
}

static void
test_colliding_keys_walk_every_slot(void **state)
{
	(void)state;
	struct slot_index *ix = slot_index_new(8);
	int got[8];

	assert_int_equal(slot_index_claim(ix, 42), 0);
	assert_int_equal(slot_index_claim(ix, 43), 1);
	assert_int_equal(slot_index_claim(ix, 42), 2);
	assert_int_equal(slot_index_claim(ix, 42), 3);
	unsigned n = walk(ix, 42, got, 8);
	assert_int_equal(n, 3);
	int seen = 0;
	for (unsigned i = 0; i < n; i++) {
		seen |= 1 << got[i];
	}
	assert_int_equal(seen, 1 | 4 | 8);
	assert_int_equal(walk(ix, 43, got, 8), 1);
	slot_index_free(ix);
}

static void
test_bounds(void **state)
{
	(void)state;
	assert_null(slot_index_new(0));
	assert_null(slot_index_new(65536));
	struct slot_index *ix = slot_index_new(65535);
	assert_non_null(ix);
	for (unsigned k = 0; k < 65535; k++) {
		assert_int_equal(slot_index_claim(ix, k), (int)k);
	}
	assert_int_equal(slot_index_next(ix, 65534, -1), 65534);
	slot_index_free(ix);
	slot_index_free(NULL);
}

/* A reference model: which key each slot holds, its mark, the hand.  Random claims, hits
 * and lookups, on a few keys (so chains collide) and many (so slots are recycled); after
 * every step next() must list exactly the slots the model holds for the key, and a claim
 * must pick the slot the model's CLOCK picks. */
struct model {
	unsigned cap, used, hand;
	uint64_t key[64];
	unsigned char ref[64];
};

static unsigned
model_claim(struct model *m, uint64_t key)
{
	unsigned s;

	if (m->used < m->cap) {
		s = m->used++;
	} else {
		while (m->ref[m->hand]) {
			m->ref[m->hand] = 0;
			m->hand = (m->hand + 1) % m->cap;
		}
		s = m->hand;
		m->hand = (m->hand + 1) % m->cap;
	}
	m->key[s] = key;
	m->ref[s] = 1;
	return s;
}

static void
check_key(const struct slot_index *ix, const struct model *m, uint64_t key)
{
	int got[64];
	unsigned n = walk(ix, key, got, 64), want = 0;
	uint64_t seen = 0;

	for (unsigned i = 0; i < n; i++) {
		assert_true((unsigned)got[i] < m->used);
		assert_true(m->key[got[i]] == key);
		assert_false(seen & 1ull << got[i]); /* each slot once */
		seen |= 1ull << got[i];
	}
	for (unsigned s = 0; s < m->used; s++) {
		want += m->key[s] == key;
	}
	assert_int_equal(n, want);
}

static void
test_against_model(void **state)
{
	(void)state;
	unsigned seed = 12345;

	for (int round = 0; round < 200; round++) {
		struct model m = {.cap = 1 + (unsigned)(rand_r(&seed) % 64)};
		unsigned nkeys = 1 + (unsigned)(rand_r(&seed) % 200);
		struct slot_index *ix = slot_index_new(m.cap);
		assert_non_null(ix);
		for (int step = 0; step < 2000; step++) {
			uint64_t key = (uint64_t)(rand_r(&seed) % nkeys) * 0x9e3779b97f4a7c15ULL;
			unsigned op = (unsigned)rand_r(&seed) % 3;
			if (op == 0) {
				unsigned want = model_claim(&m, key);
				assert_int_equal(slot_index_claim(ix, key), (int)want);
			} else if (op == 1 && m.used > 0) {
				unsigned s = (unsigned)rand_r(&seed) % m.used;
				slot_index_touch(ix, (int)s);
				m.ref[s] = 1;
			}
			check_key(ix, &m, key);
		}
		for (unsigned s = 0; s < m.used; s++) {
			check_key(ix, &m, m.key[s]);
		}
		slot_index_free(ix);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_free_slots_first_then_clock),
		cmocka_unit_test(test_colliding_keys_walk_every_slot),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_against_model),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
