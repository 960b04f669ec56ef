// SPDX-License-Identifier: Apache-2.0
//
// The registry of agents the aggregator has heard from: identity (database
// id, name, region), liveness and what their heartbeats report.  Read by the
// API; written by ingest.  Slots are stable for the life of the process, so
// other modules may keep a slot number.
#ifndef VANTAGE_AGENTS_H
#define VANTAGE_AGENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct agent_info {
	int id; // agents.id
	char name[65];
	char region[65];
	char version[65];
	bool connected;
	int64_t connected_since; // wall µs
	int64_t last_seen;       // wall µs of the last message
	int64_t heartbeat_at;    // wall µs of the last heartbeat
	uint64_t epoch;
	uint64_t acked_seq;
	uint64_t produced; // from the last heartbeat
	uint64_t spool_depth;
	uint64_t spool_bytes;
	int64_t clock_offset_us;   // aggregator clock minus the agent's (its heartbeat)
	bool clock_off;            // |clock_offset_us| >= AGENTS_CLOCK_OFF_US
	bool impaired;             // its self-check fails (last heartbeat)
	char impaired_reason[257]; // WIRE_MAX_ERROR + 1: its heartbeat's reason, "" when healthy
	uint64_t results_received;
	uint64_t results_lost; // seqs in gap markers it sent (spool full)
	uint64_t bad_messages;
};

struct agents;

struct agents *agents_new(void);
void agents_free(struct agents *a);
// Slot of the agent with this database id, created if new.
size_t agents_upsert(struct agents *a, int id, const char *name, const char *region,
    const char *version);
struct agent_info *agents_get(struct agents *a, size_t slot);
size_t agents_count(const struct agents *a);
// Connected and heard from lately: agents send a heartbeat every 5 s, so
// three missed mean it is gone even if no disconnect was seen.
bool agents_connected(const struct agent_info *ai, int64_t now);

// An agent's clock this far off the aggregator's is reported and corrected.
// Below it, the offset estimate's own error (the one-way network delay of
// the Welcome it is taken from) may be larger than the offset.
#define AGENTS_CLOCK_OFF_US (1000LL * 1000)

// Records the clock offset an agent reported; true when that moved it
// across AGENTS_CLOCK_OFF_US, in either direction.
bool agents_set_clock_offset(struct agent_info *ai, int64_t offset_us);
// What to add to the agent's times (started_at, scheduled_at) to bring them
// into the aggregator's clock: its offset when off, else 0.
int64_t agents_clock_correction(const struct agent_info *ai);

#endif
