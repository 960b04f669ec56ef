// SPDX-License-Identifier: Apache-2.0
//
// The wire codec: the only module that touches protobuf-c.  Decoding is
// bounded twice: the frame may be at most WIRE_MAX_MSG bytes, and the
// unpacked message is built in a caller-owned arena with a hard cap, so a
// hostile frame can neither exhaust memory nor cause per-field malloc storms.
// After decoding, every field from outside is validated; a message that fails
// is rejected whole with a reason, never partly used.
#ifndef VANTAGE_WIRE_H
#define VANTAGE_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "vantage.pb-c.h"

#define WIRE_MAX_MSG (1024 * 1024)        // largest frame accepted
#define WIRE_ARENA_MAX (16 * 1024 * 1024) // largest unpacked message
#define WIRE_MAX_RESULTS 10000            // results per batch
#define WIRE_MAX_KEY 128                  // target key bytes
#define WIRE_MAX_NAME 64                  // agent / region name bytes
#define WIRE_MAX_ERROR 256                // error text bytes
#define WIRE_MAX_TARGETS 100000           // targets in one Config
#define WIRE_CLOCK_SKEW_US (86400LL * 1000000)

// Memory for one decoded message.  Reused: wire_arena_reset keeps its chunks.
struct wire_arena;
struct wire_arena *wire_arena_new(void);
void wire_arena_free(struct wire_arena *a);
void wire_arena_reset(struct wire_arena *a);

// Decode and validate.  now_us is the receiver's wall clock (already
// corrected by the known clock offset of the sender); timestamps must lie
// within WIRE_CLOCK_SKEW_US of it.  The result lives in the arena until its
// next reset.  On failure returns NULL and a reason in err.
Vantage__AgentMsg *wire_decode_agent(struct wire_arena *a, const uint8_t *data, size_t len,
    int64_t now_us, char *err, size_t errlen);
Vantage__AggMsg *wire_decode_agg(struct wire_arena *a, const uint8_t *data, size_t len, char *err,
    size_t errlen);

// Validation alone, for messages built in memory (tests, fuzzers).
int wire_check_agent(const Vantage__AgentMsg *m, int64_t now_us, char *err, size_t errlen);
int wire_check_agg(const Vantage__AggMsg *m, char *err, size_t errlen);
int wire_check_result(const Vantage__Result *r, int64_t now_us, char *err, size_t errlen);
// Agent, region and target names: [A-Za-z0-9._-], 1..max bytes.
bool wire_name_ok(const char *s, size_t max);

// Encode into out (reset first).  Returns 0, or -1 when the encoded message
// would exceed WIRE_MAX_MSG.
int wire_encode_agent(const Vantage__AgentMsg *m, struct buf *out);
int wire_encode_agg(const Vantage__AggMsg *m, struct buf *out);

// Names for logs and the API ("up", "down", "agent_error"; "http_status"...).
const char *wire_outcome_name(int outcome);
const char *wire_reason_name(int reason);
const char *wire_trigger_name(int trigger);

#endif
