/* tests/fuzz/fuzz_wire.c: split-invariance target for the wire decoder (STYLE.md 2.8,
 * after Suricata's fuzz_tcpsplit).  The input is an interleaving of client and server
 * chunks (format in tests/unit/wire_script.h); it is fed once chunk by chunk, once in
 * 1-byte pieces and once in pieces of 1 + data[0] % 7 bytes, and the three event logs
 * must be identical.  Every command context must come back exactly once. */
#include "proxy/wire.h"
#include "tests/unit/wire_script.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
decode_all(const uint8_t *data, size_t size, size_t piece, struct ev_log *l)
{
	struct wire_limits lim = {0, 0, 0};
	static const size_t inspect[4] = {0, 64, 300, 4096};
	struct wire_conv *c;
	uint8_t opts;
	size_t off = 1;
	bool alive = true;

	if (size == 0)
		return;
	opts = data[0];
	lim.max_inspect = inspect[(opts >> 2) & 3];
	lim.max_pending = (opts & 16) ? 4 : 0;
	lim.max_prepared = 8;
	l->block_prefix = (opts & 2) ? "d" : NULL;
	c = (opts & 1) ? wire_conv_new_midstream(ev_cb, ev_free_user, l, &lim)
		       : wire_conv_new(ev_cb, ev_free_user, l, &lim);
	if (!c)
		abort();
	while (off < size && alive) {
		uint8_t h = data[off++];
		enum wire_dir d = (h & 0x80) ? WIRE_S2C : WIRE_C2S;
		size_t n = (size_t)(h & 0x7F) + 1;

		if ((h & 0x7F) == 0x7F) {
			if (size - off < 2)
				break;
			n = (size_t)data[off] | (size_t)data[off + 1] << 8;
			off += 2;
			if (n == 0) {
				wire_conv_gap(c, d);
				log_line(l, "GAP %d", (int)d);
				continue;
			}
		}
		if (n > size - off)
			n = size - off;
		alive = feed_flight(c, l, d, data + off, n, piece, off);
		off += n;
	}
	wire_conv_close(c, size);
	log_line(l, "STATE user=%s target=%s known=%d status=%x pending=%u anomalies=%llu",
		 wire_conv_user(c), wire_conv_target(c), wire_conv_target_known(c),
		 wire_conv_status(c), wire_conv_pending(c),
		 (unsigned long long)wire_conv_anomalies(c));
	if (wire_conv_pending(c) != 0)
		abort();
	wire_conv_free(c);
	if (l->outstanding != 0)
		abort(); /* a context leaked or came back twice */
}

static bool
ev_log_equal(const struct ev_log *a, const struct ev_log *b)
{
	return a->text.n == b->text.n && (a->text.n == 0 || memcmp(a->text.p, b->text.p, a->text.n) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ev_log whole = {0}, bytes = {0}, pieces = {0};

	decode_all(data, size, 0, &whole);
	decode_all(data, size, 1, &bytes);
	decode_all(data, size, 1 + (size ? data[0] % 7 : 0), &pieces);
	if (!ev_log_equal(&whole, &bytes) || !ev_log_equal(&whole, &pieces))
		abort();
	bb_free(&whole.text);
	bb_free(&bytes.text);
	bb_free(&pieces.text);
	return 0;
}
