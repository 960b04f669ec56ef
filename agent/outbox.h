// SPDX-License-Identifier: Apache-2.0
//
// The agent's outbox: encoded result batches kept until the aggregator acks
// them, so that nothing is lost when the connection drops or the aggregator
// restarts; after a reconnect everything after acked_seq is sent again.
// This version keeps records in memory only (bounded by max_bytes); the disk
// spool of DESIGN.md §5 replaces the storage behind this same interface.
// When full, the oldest records are dropped and their seq range is reported
// as a gap, never silently.
#ifndef VANTAGE_OUTBOX_H
#define VANTAGE_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

struct outbox_rec {
	uint64_t first_seq;
	uint64_t last_seq;
	int64_t added_mono_us;
	size_t len;
	struct outbox_rec *next;
	uint8_t data[];            // one encoded AgentMsg{batch}
};

typedef void (*outbox_gap_cb)(uint64_t first_seq, uint64_t last_seq, void *arg);

struct outbox;

struct outbox *outbox_new(uint64_t max_bytes, outbox_gap_cb gap, void *arg);
void outbox_free(struct outbox *o);
// Copies a record covering seqs first..last.  Drops the oldest records (and
// reports them through the gap callback) while over max_bytes.
void outbox_append(struct outbox *o, uint64_t first_seq, uint64_t last_seq,
    const uint8_t *data, size_t len, int64_t now_mono_us);
// Frees every record whose last_seq <= acked_seq.
void outbox_ack(struct outbox *o, uint64_t acked_seq);
// First record with last_seq > seq, or NULL; walk on with rec->next.
const struct outbox_rec *outbox_after(const struct outbox *o, uint64_t seq);
uint64_t outbox_bytes(const struct outbox *o);
// Results held (sum of record seq spans) and the oldest record's age.
uint64_t outbox_depth(const struct outbox *o);
int64_t outbox_oldest_mono(const struct outbox *o);
uint64_t outbox_oldest_seq(const struct outbox *o);
uint64_t outbox_newest_seq(const struct outbox *o);

#endif
