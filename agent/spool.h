// SPDX-License-Identifier: Apache-2.0
//
// The agent's spool: a disk spool of encoded result batches, kept until the
// aggregator acks them, so that no result is lost when the connection drops,
// the aggregator restarts or the agent itself is killed (DESIGN.md §5).
//
// On disk, spool_dir holds:
//   epoch             the spool's epoch in decimal, created once (fsync'd)
//   lock              flock'd while an agent uses the spool
//   NNNN...NNNN.seg   append-only segments, named by the 20-digit first seq
//                     they hold (or would hold, while still empty)
// A segment is a sequence of records: u32 payload length, u32 CRC-32C of the
// payload, payload, all little endian.  The payload is u64 first_seq, u64
// last_seq, i64 added_at (unix µs), then one encoded AgentMsg{batch}.
//
// A record is written (and by default fsync'd) before its batch is sent.  On
// open, a torn or corrupt tail is truncated at the last valid record and
// logged.  Acked segments are deleted whole.  When the spool would exceed
// max_bytes, its oldest segments are deleted: their unacked results are
// lost, and the hole in the seqs is what the uplink reports as a gap marker
// (the hole itself is durable, so the marker cannot be lost).  A failed
// write or fsync is fatal: continuing would lose results silently.
#ifndef VANTAGE_SPOOL_H
#define VANTAGE_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define SPOOL_REC_HEADER 8 // u32 length, u32 crc
#define SPOOL_REC_META 24  // u64 first_seq, u64 last_seq, i64 added_at
// Longest payload a reader accepts: one batch of at most WIRE_MAX_MSG.
#define SPOOL_PAYLOAD_MAX ((1u << 20) + SPOOL_REC_META)

enum spool_sync {
	SPOOL_SYNC_BATCH, // fdatasync after every record (default)
	SPOOL_SYNC_NONE,  // leave it to the kernel: survives a crash of
			  // the agent, not of the machine
};

// One record, as indexed in memory (the batch bytes stay on disk).
struct spool_rec {
	uint64_t first_seq;
	uint64_t last_seq;
	int64_t added_at_us; // wall clock when it was spooled
	uint64_t off;        // of the payload's batch bytes in its segment
	uint32_t len;        // of the batch bytes
	uint32_t seg;        // segment index (internal)
};

// Called by spool_segment_scan for every valid record, in file order.
typedef void (*spool_scan_cb)(uint64_t first_seq, uint64_t last_seq, int64_t added_at_us,
    const uint8_t *batch, size_t len, size_t rec_off, void *arg);

// Scans one segment's bytes: calls cb (may be NULL) for each valid record in
// order and returns the length of the valid prefix, where a torn or corrupt
// tail starts.  A record is valid when its length is within
// SPOOL_PAYLOAD_MAX, its CRC matches and 0 < first_seq <= last_seq <=
// INT64_MAX.  Never reads outside data[0..len).  Pure: no I/O.
size_t spool_segment_scan(const uint8_t *data, size_t len, spool_scan_cb cb, void *arg);

struct spool;

// Opens (creating if needed) the spool in dir: takes its lock, reads or
// creates its epoch, indexes every segment, truncating a torn tail.  Returns
// NULL with a message in err on failure (unreadable directory, spool in use,
// corrupt epoch file, ...).  The caller owns the result (spool_free).
struct spool *spool_open(const char *dir, uint64_t max_bytes, enum spool_sync sync, char *err,
    size_t errlen);
void spool_free(struct spool *o);

uint64_t spool_epoch(const struct spool *o);
// The seq the next result should get: one past the newest spooled, so a
// restarted agent continues its epoch.
uint64_t spool_next_seq(const struct spool *o);

// Spools one batch covering seqs first..last (first must exceed every seq
// spooled before).  Deletes the oldest segments first while the spool would
// exceed max_bytes.  Exits the process on a write or fsync error.
void spool_append(struct spool *o, uint64_t first_seq, uint64_t last_seq, const uint8_t *data,
    size_t len, int64_t now_wall_us);
// Forgets every record whose last_seq <= acked_seq; deletes segments that
// hold nothing else (never the one being written).
void spool_ack(struct spool *o, uint64_t acked_seq);

// First record with last_seq > seq, or NULL; the next one after rec, or NULL.
const struct spool_rec *spool_after(const struct spool *o, uint64_t seq);
const struct spool_rec *spool_next(const struct spool *o, const struct spool_rec *rec);
// Reads rec's batch bytes into out (reset first).  Exits on an I/O error.
void spool_load(struct spool *o, const struct spool_rec *rec, struct buf *out);

// Bytes on disk; results not yet acked; the oldest unacked record's
// added_at (0 if none); the oldest and newest seq held (0 if none).
uint64_t spool_bytes(const struct spool *o);
uint64_t spool_depth(const struct spool *o);
int64_t spool_oldest_added(const struct spool *o);
uint64_t spool_oldest_seq(const struct spool *o);
uint64_t spool_newest_seq(const struct spool *o);
// Results dropped because the spool was full, since open.
uint64_t spool_dropped(const struct spool *o);

#endif
