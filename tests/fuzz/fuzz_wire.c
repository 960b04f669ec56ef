// SPDX-License-Identifier: Apache-2.0
//
// libFuzzer target for the wire codec (common/wire.c): every input is
// decoded as an agent message and as an aggregator message, exactly as the
// aggregator's ROUTER socket and the agent's uplink would receive it.  A
// message that decodes must survive a round trip: re-encoded, it decodes
// again, and encoding that gives the same bytes.  Anything else aborts, so
// libFuzzer keeps the input.  Must never touch the network or the clock: the
// receiver's "now" is FUZZ_WIRE_NOW_US, so crash inputs replay exactly.
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "fuzz_wire.h"
#include "wire.h"

// One arena for the whole run, as the daemons keep one per socket: reuse
// after wire_arena_reset is part of what is being tested.
static struct wire_arena *fuzz_arena;
static struct buf fuzz_first, fuzz_second;

typedef const void *(*fuzz_decode_fn)(const uint8_t *data, size_t len, char *err, size_t errlen);
typedef int (*fuzz_encode_fn)(const void *msg, struct buf *out);

static const void *
fuzz_decode_agent(const uint8_t *data, size_t len, char *err, size_t errlen)
{
	return wire_decode_agent(fuzz_arena, data, len, FUZZ_WIRE_NOW_US, err, errlen);
}

static const void *
fuzz_decode_agg(const uint8_t *data, size_t len, char *err, size_t errlen)
{
	return wire_decode_agg(fuzz_arena, data, len, err, errlen);
}

static int
fuzz_encode_agent(const void *msg, struct buf *out)
{
	return wire_encode_agent(msg, out);
}

static int
fuzz_encode_agg(const void *msg, struct buf *out)
{
	return wire_encode_agg(msg, out);
}

static void __attribute__((noreturn, format(printf, 1, 2))) fuzz_fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("fuzz_wire: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	abort();
}

// Decodes data; if it is accepted, checks that the round trip holds.  The
// second decode resets the arena, which is why the first message is only
// used before it.
static void
fuzz_roundtrip(const char *what, fuzz_decode_fn decode, fuzz_encode_fn encode, const uint8_t *data,
    size_t size)
{
	char err[512];
	const void *msg;

	msg = decode(data, size, err, sizeof(err));
	if (msg == NULL)
		return;
	if (encode(msg, &fuzz_first) < 0)
		fuzz_fail("%s message of %zu bytes decoded but could not be re-encoded", what,
		    size);
	msg = decode(fuzz_first.data, fuzz_first.len, err, sizeof(err));
	if (msg == NULL)
		fuzz_fail("%s message decoded, but its re-encoding (%zu bytes) was refused: %s",
		    what, fuzz_first.len, err);
	if (encode(msg, &fuzz_second) < 0)
		fuzz_fail("%s message could not be encoded a second time", what);
	if (fuzz_second.len != fuzz_first.len ||
	    memcmp(fuzz_second.data, fuzz_first.data, fuzz_first.len) != 0)
		fuzz_fail("%s message: re-encoding is not stable (%zu bytes, then %zu)", what,
		    fuzz_first.len, fuzz_second.len);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (fuzz_arena == NULL) {
		fuzz_arena = wire_arena_new();
		buf_init(&fuzz_first);
		buf_init(&fuzz_second);
	}
	fuzz_roundtrip("agent", fuzz_decode_agent, fuzz_encode_agent, data, size);
	fuzz_roundtrip("aggregator", fuzz_decode_agg, fuzz_encode_agg, data, size);
	return 0;
}
