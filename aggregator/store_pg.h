// SPDX-License-Identifier: Apache-2.0
//
// The aggregator's PostgreSQL access: one libpq connection in non-blocking
// mode on the libevent loop, and a FIFO of operations run one at a time.
// Results are appended as COPY text to the open transaction while the
// previous one commits, so batches from many agents share one COMMIT (group
// commit).  Each transaction also advances agent_progress for every stream
// it covers, guarded by the value it expects, which is what makes replays
// idempotent.  Callbacks run only after the outcome is known; a transaction
// whose COMMIT may or may not have happened (connection lost) is reported as
// failed, and the caller re-reads progress before trusting anything.
// A lost connection is retried with backoff (0.5 s doubling to 10 s) on
// the loop; other operations wait queued meanwhile, and run again from
// scratch if the connection broke under them.  An operation unfinished
// after 15 s is taken as a dead server: the connection is dropped.
#ifndef VANTAGE_STORE_PG_H
#define VANTAGE_STORE_PG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "vantage.pb-c.h"

struct store;

// Called once per progress entry with 0 (committed: acked_seq is now
// durable) or -1 (not stored).
typedef void (*store_commit_cb)(int status, uint64_t acked_seq, void *arg);
// Agent registration: agent_id and acked_seq of (agent, epoch), or status -1.
typedef void (*store_hello_cb)(int status, int agent_id, uint64_t acked_seq, void *arg);
// Target sync: ids[i] is the id of keys[i]; status -1 on failure.
typedef void (*store_targets_cb)(int status, const int *ids, void *arg);

// Before the loop runs (blocking): waits up to wait_s seconds for the
// database, applies migrations and creates the results partitions around
// today.  Returns 0, or -1 after logging why.
int store_prepare(const char *conninfo, int wait_s);

struct store *store_new(struct event_base *base, const char *conninfo);
void store_free(struct store *s);
bool store_connected(const struct store *s);

// Upserts the agent row and its (agent, epoch) progress row.
void store_hello(struct store *s, const char *name, const char *region, const char *version,
    uint64_t epoch, store_hello_cb cb, void *arg);
// Upserts targets (key, spec JSON text) and un-retires them; keys not listed
// are marked retired.  keys and specs are copied.
void store_sync_targets(struct store *s, const char *const *keys, const char *const *specs,
    size_t n, store_targets_cb cb, void *arg);

// Creates results partitions ahead (run hourly) and other upkeep.
void store_maintain(struct store *s);
// True when no operation is queued or running (used to drain at exit).
bool store_idle(const struct store *s);

// Appends one result row (already validated) to the open transaction.
void store_add_result(struct store *s, int agent_id, uint64_t epoch, int target_id,
    const Vantage__Result *r);
void store_add_gap(struct store *s, int agent_id, uint64_t epoch, uint64_t first_seq,
    uint64_t last_seq);
// Adds the progress step of one stream to the open transaction: acked_seq
// moves from old_seq to new_seq, or the transaction fails.  cb runs after.
void store_add_progress(struct store *s, int agent_id, uint64_t epoch, uint64_t old_seq,
    uint64_t new_seq, store_commit_cb cb, void *arg);

// One parameterised statement, run in its own implicit transaction in
// queue order (after everything queued before it).  values are copied; a
// NULL value is SQL NULL.  The callback gets the rows (valid only during
// the call) or status -1.  The SQL must be a constant string: values go
// only through parameters.
struct store_result;
typedef void (*store_query_cb)(int status, const struct store_result *r, void *arg);
void store_query(struct store *s, const char *sql, int n, const char *const *values,
    store_query_cb cb, void *arg);
// Like store_query, but for an answer someone waits for (an API request):
// while the database is down, or if it goes away before the statement
// ran, the callback gets status -1 at once (from the loop) instead of
// waiting for the reconnection.  Writes that must not be lost use
// store_query, which keeps them queued until the database is back.
void store_query_now(struct store *s, const char *sql, int n, const char *const *values,
    store_query_cb cb, void *arg);
// True while there is no usable connection; *since_mono (may be NULL)
// receives when it was lost (0 if it never connected).
bool store_down_since(const struct store *s, int64_t *since_mono);
int store_result_rows(const struct store_result *r);
// Text of a value, or NULL for SQL NULL or out of range.
const char *store_result_value(const struct store_result *r, int row, int col);
// Rows affected by an INSERT/UPDATE/DELETE.
long long store_result_affected(const struct store_result *r);

struct store_stats {
	uint64_t rows_committed;
	uint64_t txns_committed;
	uint64_t txns_failed;
	uint64_t reconnects;
	int64_t last_commit_us; // duration of the last transaction
	size_t rows_pending;    // in the open transaction
};
void store_get_stats(const struct store *s, struct store_stats *out);

#endif
