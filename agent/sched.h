// SPDX-License-Identifier: Apache-2.0
//
// The probe scheduler: which target is due next.  Pure: no I/O and no clock
// reads, time is always a parameter (monotonic microseconds), which is what
// makes it testable over millions of ticks.  Each target runs on a fixed grid
// `phase + k * interval`, so runs never drift however late they are served;
// the phase is spread over the interval by a hash of the target key, so a
// thousand targets with one interval do not all fire in the same
// millisecond.  A min-heap keeps next_due and pop at O(log n).
#ifndef VANTAGE_SCHED_H
#define VANTAGE_SCHED_H

#include <stddef.h>
#include <stdint.h>

struct sched;

struct sched *sched_new(void);
void sched_free(struct sched *s);
// Drops every entry.
void sched_clear(struct sched *s);
// Adds entry id (a caller's index; any id once) running every interval_us,
// first at the next grid point at or after now_us for the phase given by
// key.  Returns that first due time.
int64_t sched_add(struct sched *s, size_t id, const char *key, int64_t interval_us, int64_t now_us);
// Earliest due time, or INT64_MAX when empty.
int64_t sched_next_due(const struct sched *s);
// When an entry is due at now_us, stores its id and the grid time it was due
// (the result's scheduled_at), moves it to its next grid point after now_us
// (skipped slots are not run twice), and returns 1; otherwise returns 0.
int sched_pop_due(struct sched *s, int64_t now_us, size_t *id, int64_t *due_us);
// Number of entries.
size_t sched_count(const struct sched *s);
// The phase of key within interval_us (0 <= phase < interval_us).
int64_t sched_phase(const char *key, int64_t interval_us);

#endif
