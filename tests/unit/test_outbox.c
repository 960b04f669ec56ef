// SPDX-License-Identifier: Apache-2.0
//
// Unit tests for agent/outbox: records come back in seq order and
// byte-for-byte, acks free exactly the records they cover, the depth and
// byte counters match the records held, and when max_bytes is exceeded the
// oldest records go first and every dropped seq range reaches the gap
// callback exactly once, because those gaps are how the aggregator learns
// what is missing.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "outbox.h"

#define MAX_GAPS 16

// What the gap callback saw, and the outbox as it was at each call.
struct gap_log {
	struct outbox *o;
	int n;
	uint64_t first[MAX_GAPS];
	uint64_t last[MAX_GAPS];
	uint64_t oldest_at_call[MAX_GAPS];
	uint64_t bytes_at_call[MAX_GAPS];
};

static void
on_gap(uint64_t first_seq, uint64_t last_seq, void *arg)
{
	struct gap_log *log = arg;

	assert_true(log->n < MAX_GAPS);
	log->first[log->n] = first_seq;
	log->last[log->n] = last_seq;
	log->oldest_at_call[log->n] = outbox_oldest_seq(log->o);
	log->bytes_at_call[log->n] = outbox_bytes(log->o);
	log->n++;
}

// A record's payload: len bytes derived from its first seq, so that a
// record returned with another's data, or cut short, is noticed.
static uint8_t *
payload(uint64_t first_seq, size_t len)
{
	uint8_t *p = malloc(len ? len : 1);

	assert_non_null(p);
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(first_seq * 31 + i);
	return p;
}

static void
append(struct outbox *o, uint64_t first_seq, uint64_t last_seq, size_t len, int64_t mono)
{
	uint8_t *p = payload(first_seq, len);

	outbox_append(o, first_seq, last_seq, p, len, mono);
	// The outbox must keep its own copy.
	memset(p, 0xee, len);
	free(p);
}

static void
assert_record(const struct outbox_rec *r, uint64_t first_seq, uint64_t last_seq, size_t len,
    int64_t mono)
{
	uint8_t *want = payload(first_seq, len);

	assert_non_null(r);
	assert_int_equal(r->first_seq, first_seq);
	assert_int_equal(r->last_seq, last_seq);
	assert_int_equal(r->len, len);
	assert_int_equal(r->added_mono_us, mono);
	assert_memory_equal(r->data, want, len);
	free(want);
}

static void
assert_counters(const struct outbox *o, uint64_t bytes, uint64_t depth, uint64_t oldest,
    uint64_t newest, int64_t oldest_mono)
{
	assert_int_equal(outbox_bytes(o), bytes);
	assert_int_equal(outbox_depth(o), depth);
	assert_int_equal(outbox_oldest_seq(o), oldest);
	assert_int_equal(outbox_newest_seq(o), newest);
	assert_int_equal(outbox_oldest_mono(o), oldest_mono);
}

static void
test_empty(void **state)
{
	struct outbox *o = outbox_new(1000, NULL, NULL);

	assert_counters(o, 0, 0, 0, 0, 0);
	assert_null(outbox_after(o, 0));
	outbox_ack(o, 100);
	assert_counters(o, 0, 0, 0, 0, 0);
	outbox_free(o);
	outbox_free(NULL);
}

// Records come back in append order; outbox_after starts at the first
// record not wholly at or below seq, also inside a record's span.
static void
test_append_after(void **state)
{
	struct outbox *o = outbox_new(1 << 20, NULL, NULL);
	const struct outbox_rec *r;

	append(o, 1, 3, 10, 1000);
	append(o, 4, 4, 20, 2000);
	append(o, 5, 9, 30, 3000);
	assert_counters(o, 60, 9, 1, 9, 1000);

	r = outbox_after(o, 0);
	assert_record(r, 1, 3, 10, 1000);
	assert_record(r->next, 4, 4, 20, 2000);
	assert_record(r->next->next, 5, 9, 30, 3000);
	assert_null(r->next->next->next);

	assert_int_equal(outbox_after(o, 2)->first_seq, 1);
	assert_int_equal(outbox_after(o, 3)->first_seq, 4);
	assert_int_equal(outbox_after(o, 4)->first_seq, 5);
	assert_int_equal(outbox_after(o, 8)->first_seq, 5);
	assert_null(outbox_after(o, 9));
	assert_null(outbox_after(o, UINT64_MAX));
	outbox_free(o);
}

// An ack frees exactly the records whose last seq it covers; a record it
// only partly covers stays whole, to be resent whole.
static void
test_ack(void **state)
{
	struct outbox *o = outbox_new(1 << 20, NULL, NULL);

	append(o, 1, 3, 10, 1000);
	append(o, 4, 4, 20, 2000);
	append(o, 5, 9, 30, 3000);

	outbox_ack(o, 0);
	assert_counters(o, 60, 9, 1, 9, 1000);
	outbox_ack(o, 2); // inside the first record
	assert_counters(o, 60, 9, 1, 9, 1000);
	outbox_ack(o, 3);
	assert_counters(o, 50, 6, 4, 9, 2000);
	assert_record(outbox_after(o, 0), 4, 4, 20, 2000);
	outbox_ack(o, 1); // an old ack again changes nothing
	assert_counters(o, 50, 6, 4, 9, 2000);
	outbox_ack(o, 6); // frees 4..4, keeps all of 5..9
	assert_counters(o, 30, 5, 5, 9, 3000);
	assert_record(outbox_after(o, 6), 5, 9, 30, 3000);
	outbox_ack(o, 9);
	assert_counters(o, 0, 0, 0, 0, 0);
	assert_null(outbox_after(o, 0));

	// Emptied by acks, the outbox takes new records normally.
	append(o, 10, 12, 5, 4000);
	append(o, 13, 13, 6, 5000);
	assert_counters(o, 11, 4, 10, 13, 4000);
	assert_record(outbox_after(o, 9), 10, 12, 5, 4000);
	assert_record(outbox_after(o, 9)->next, 13, 13, 6, 5000);
	outbox_ack(o, UINT64_MAX);
	assert_counters(o, 0, 0, 0, 0, 0);
	outbox_free(o);
}

// Over max_bytes the oldest records are dropped, one gap per record with
// its exact seq range, in order; the callback already sees the outbox
// without the dropped record.  At exactly max_bytes nothing is dropped.
static void
test_overflow_gaps(void **state)
{
	struct gap_log log = { 0 };
	struct outbox *o = outbox_new(100, on_gap, &log);

	log.o = o;
	append(o, 1, 2, 40, 1000);
	append(o, 3, 5, 40, 2000);
	append(o, 6, 6, 20, 3000); // exactly 100 bytes
	assert_int_equal(log.n, 0);
	assert_counters(o, 100, 6, 1, 6, 1000);

	append(o, 7, 7, 1, 4000); // 101: the oldest goes
	assert_int_equal(log.n, 1);
	assert_int_equal(log.first[0], 1);
	assert_int_equal(log.last[0], 2);
	assert_int_equal(log.oldest_at_call[0], 3);
	assert_int_equal(log.bytes_at_call[0], 61);
	assert_counters(o, 61, 5, 3, 7, 2000);

	append(o, 8, 11, 80, 5000); // 141: drops 3..5 (101), then 6..6 (81)
	assert_int_equal(log.n, 3);
	assert_int_equal(log.first[1], 3);
	assert_int_equal(log.last[1], 5);
	assert_int_equal(log.first[2], 6);
	assert_int_equal(log.last[2], 6);
	assert_int_equal(log.bytes_at_call[2], 81);
	assert_counters(o, 81, 5, 7, 11, 4000);
	assert_record(outbox_after(o, 0), 7, 7, 1, 4000);
	assert_record(outbox_after(o, 0)->next, 8, 11, 80, 5000);
	assert_null(outbox_after(o, 0)->next->next);
	outbox_free(o);
}

// A record larger than max_bytes evicts everything else but is itself
// kept, so a single oversized batch is still delivered; the next append
// then evicts it in turn.
static void
test_never_drops_newest(void **state)
{
	struct gap_log log = { 0 };
	struct outbox *o = outbox_new(100, on_gap, &log);

	log.o = o;
	append(o, 1, 1, 30, 1000);
	append(o, 2, 3, 30, 2000);
	append(o, 4, 20, 500, 3000);
	assert_int_equal(log.n, 2);
	assert_int_equal(log.first[0], 1);
	assert_int_equal(log.last[0], 1);
	assert_int_equal(log.first[1], 2);
	assert_int_equal(log.last[1], 3);
	assert_counters(o, 500, 17, 4, 20, 3000);
	assert_record(outbox_after(o, 0), 4, 20, 500, 3000);

	append(o, 21, 21, 10, 4000);
	assert_int_equal(log.n, 3);
	assert_int_equal(log.first[2], 4);
	assert_int_equal(log.last[2], 20);
	assert_counters(o, 10, 1, 21, 21, 4000);

	// With max_bytes 0 every append keeps only the record just added.
	outbox_free(o);
	memset(&log, 0, sizeof(log));
	o = outbox_new(0, on_gap, &log);
	log.o = o;
	append(o, 1, 1, 8, 1);
	append(o, 2, 2, 8, 2);
	assert_int_equal(log.n, 1);
	assert_int_equal(log.first[0], 1);
	assert_counters(o, 8, 1, 2, 2, 2);
	outbox_free(o);
}

// Without a gap callback drops still keep the counters right.
static void
test_overflow_without_callback(void **state)
{
	struct outbox *o = outbox_new(50, NULL, NULL);

	for (uint64_t seq = 1; seq <= 100; seq++)
		append(o, seq, seq, 10, (int64_t)seq);
	assert_counters(o, 50, 5, 96, 100, 96);
	outbox_free(o);
}

// A long run of appends and acks against a simple model of what the
// outbox must hold, with overflow drops along the way: every counter,
// every record and every gap must match the model at every step.
static void
test_model(void **state)
{
	enum { STEPS = 5000, MODEL_MAX = 128 };
	struct model_rec {
		uint64_t first, last;
		size_t len;
		int64_t mono;
	} model[MODEL_MAX];
	struct gap_log log = { 0 };
	const uint64_t max_bytes = 2000;
	struct outbox *o = outbox_new(max_bytes, on_gap, &log);
	uint64_t rng = 12345, next_seq = 1;
	int head = 0, count = 0;

	log.o = o;
	for (int step = 0; step < STEPS; step++) {
		uint64_t bytes = 0, depth = 0;
		const struct outbox_rec *r;
		int i;

		rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
		if ((rng >> 33) % 4 != 0) {
			uint64_t span = 1 + (rng >> 40) % 5;
			size_t len = 20 + (size_t)((rng >> 20) % 281);
			struct model_rec *m;
			uint64_t total = len;

			for (i = 0; i < count; i++)
				total += model[(head + i) % MODEL_MAX].len;
			log.n = 0;
			append(o, next_seq, next_seq + span - 1, len, step);
			// The model drops from the head while over, never the new one.
			assert_true(count < MODEL_MAX);
			m = &model[(head + count) % MODEL_MAX];
			*m = (struct model_rec){ next_seq, next_seq + span - 1, len, step };
			count++;
			for (i = 0; total > max_bytes && count > 1; i++) {
				assert_true(i < log.n);
				assert_int_equal(log.first[i], model[head].first);
				assert_int_equal(log.last[i], model[head].last);
				total -= model[head].len;
				head = (head + 1) % MODEL_MAX;
				count--;
			}
			assert_int_equal(log.n, i);
			next_seq += span;
		} else if (count > 0) {
			// Ack somewhere inside the held range.
			uint64_t lo = model[head].first - 1;
			uint64_t acked = lo + (rng >> 40) % (next_seq - lo);

			outbox_ack(o, acked);
			while (count > 0 && model[head].last <= acked) {
				head = (head + 1) % MODEL_MAX;
				count--;
			}
		}
		r = outbox_after(o, 0);
		for (i = 0; i < count; i++, r = r->next) {
			const struct model_rec *m = &model[(head + i) % MODEL_MAX];

			assert_non_null(r);
			assert_int_equal(r->first_seq, m->first);
			assert_int_equal(r->last_seq, m->last);
			assert_int_equal(r->len, m->len);
			bytes += m->len;
			depth += m->last - m->first + 1;
		}
		assert_null(r);
		assert_int_equal(outbox_bytes(o), bytes);
		assert_int_equal(outbox_depth(o), depth);
		assert_int_equal(outbox_oldest_seq(o), count ? model[head].first : 0);
		assert_int_equal(outbox_oldest_mono(o), count ? model[head].mono : 0);
		assert_int_equal(outbox_newest_seq(o),
		    count ? model[(head + count - 1) % MODEL_MAX].last : 0);
	}
	outbox_free(o);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_append_after),
		cmocka_unit_test(test_ack),
		cmocka_unit_test(test_overflow_gaps),
		cmocka_unit_test(test_never_drops_newest),
		cmocka_unit_test(test_overflow_without_callback),
		cmocka_unit_test(test_model),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
