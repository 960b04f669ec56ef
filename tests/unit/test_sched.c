// SPDX-License-Identifier: Apache-2.0
//
// Unit tests for agent/sched.  The scheduler is pure, so time here is just a
// number the test advances: a million ticks take milliseconds, and every due
// time can be checked exactly against the grid phase + k * interval that
// keeps probes from drifting.  Also checked: phases spread a thousand keys
// over the interval, late serving skips slots instead of running twice, and
// the heap always hands out the earliest entry.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sched.h"
#include "xmalloc.h"

#define SEC INT64_C(1000000)
// An arbitrary monotonic origin, not a multiple of any interval used here.
#define T0 (INT64_C(7777) * SEC + 123457)

// The reference grid, computed independently of sched.c: the first point
// phase + k * interval at or after at.
static int64_t
grid_at_or_after(int64_t at, int64_t phase, int64_t interval)
{
	int64_t k;

	if (at <= phase)
		return phase - ((phase - at) / interval) * interval;
	k = (at - phase + interval - 1) / interval;
	return phase + k * interval;
}

static void
test_empty(void **state)
{
	struct sched *s = sched_new();
	size_t id = 99;
	int64_t due = 99;

	assert_int_equal(sched_count(s), 0);
	assert_true(sched_next_due(s) == INT64_MAX);
	assert_int_equal(sched_pop_due(s, INT64_MAX - 1, &id, &due), 0);
	assert_int_equal(id, 99);
	assert_int_equal(due, 99);
	sched_free(s);
	sched_free(NULL);
}

// The phase depends on the key alone: the same on every call, every
// machine and every restart (FNV-1a of "a" is 0xaf63dc4c8601ec8c), within
// [0, interval), and different keys land apart.
static void
test_phase_stable(void **state)
{
	const int64_t interval = 30 * SEC;

	assert_int_equal(sched_phase("a", 1000003), 0xaf63dc4c8601ec8cULL % 1000003);
	assert_int_equal(sched_phase("", 1000003), 14695981039346656037ULL % 1000003);
	assert_int_equal(sched_phase("api", interval), sched_phase("api", interval));
	assert_true(sched_phase("api", interval) != sched_phase("apj", interval));
	for (int i = 0; i < 1000; i++) {
		char key[32];
		int64_t p;

		snprintf(key, sizeof(key), "target-%d", i);
		p = sched_phase(key, interval);
		assert_true(p >= 0 && p < interval);
		assert_int_equal(p, sched_phase(key, interval));
	}
	assert_int_equal(sched_phase("api", 1), 0);
	assert_int_equal(sched_phase("api", 0), 0);
}

// 1000 keys on a 30 s interval: no one-second bucket gets more than three
// times its share, and (almost) no two keys share a phase.
static void
test_phase_spread(void **state)
{
	const int64_t interval = 30 * SEC;
	const int keys = 1000, buckets = 30;
	int count[30] = { 0 };
	int64_t *phases = xcalloc((size_t)keys, sizeof(*phases));
	int same = 0, empty = 0, max = 0;

	for (int i = 0; i < keys; i++) {
		char key[32];

		snprintf(key, sizeof(key), "target-%04d", i);
		phases[i] = sched_phase(key, interval);
		count[phases[i] / SEC]++;
	}
	for (int b = 0; b < buckets; b++) {
		if (count[b] > max)
			max = count[b];
		if (count[b] == 0)
			empty++;
	}
	if (max > 3 * keys / buckets)
		fail_msg("a one-second bucket holds %d of %d keys (mean %d)", max, keys,
		    keys / buckets);
	assert_int_equal(empty, 0);
	for (int i = 0; i < keys; i++)
		for (int j = i + 1; j < keys; j++)
			if (phases[i] == phases[j])
				same++;
	assert_true(same <= 1);
	free(phases);
}

// sched_add returns the first grid point at or after now, for the entry
// just added, whatever the heap did to place it.
static void
test_add_returns_own_due(void **state)
{
	static const char *const keys[] = { "web-3", "api", "db-tcp", "idp", "edge", "dns",
		"control-1", "control-2", "x" };
	static const int64_t intervals[] = { 30 * SEC, 5 * SEC, 60 * SEC, SEC, 15 * SEC, 2 * SEC,
		10 * SEC, 10 * SEC, 100 * SEC };
	struct sched *s = sched_new();

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		int64_t phase = sched_phase(keys[i], intervals[i]);
		int64_t due = sched_add(s, i, keys[i], intervals[i], T0);

		assert_int_equal(due, grid_at_or_after(T0, phase, intervals[i]));
		assert_true(due >= T0 && due < T0 + intervals[i]);
		assert_int_equal((due - phase) % intervals[i], 0);
		assert_int_equal(sched_count(s), i + 1);
	}
	sched_free(s);
}

// Now exactly on a grid point is due now, not one interval later; and a
// start before the phase (now = 0) is due at the phase itself.
static void
test_add_on_grid(void **state)
{
	struct sched *s = sched_new();
	int64_t interval = 10 * SEC, phase = sched_phase("api", interval);
	int64_t on_grid = phase + 1000 * interval;

	assert_int_equal(sched_add(s, 0, "api", interval, on_grid), on_grid);
	assert_int_equal(sched_add(s, 1, "api", interval, on_grid + 1), on_grid + interval);
	assert_int_equal(sched_add(s, 2, "api", interval, 0), phase);
	sched_free(s);
}

// A million ticks of one entry, serving each at exactly its due time:
// every due time is phase + k * interval for consecutive k, and nothing is
// lost or repeated.  Interval 1.5 s is not a divisor of anything nearby,
// so rounding errors would show.
static void
test_no_drift(void **state)
{
	const int64_t interval = 1500000;
	const long ticks = 1000000;
	struct sched *s = sched_new();
	int64_t phase = sched_phase("drift", interval);
	int64_t first = sched_add(s, 7, "drift", interval, T0);
	int64_t now = first;
	long served = 0;

	while (served < ticks) {
		size_t id;
		int64_t due;

		now = sched_next_due(s);
		assert_int_equal(sched_pop_due(s, now, &id, &due), 1);
		assert_int_equal(id, 7);
		if (due != first + served * interval || (due - phase) % interval != 0)
			fail_msg("tick %ld due at %lld, want %lld", served, (long long)due,
			    (long long)(first + served * interval));
		assert_int_equal(sched_pop_due(s, now, &id, &due), 0);
		served++;
	}
	assert_int_equal(sched_next_due(s), first + ticks * interval);
	sched_free(s);
}

// Three entries with unrelated intervals over a million pops in total: each
// entry's due times stay on its own grid, and the number of runs of each
// equals the number of its grid points in the time covered.
static void
test_no_drift_mixed(void **state)
{
	static const char *const keys[] = { "a.example", "b.example", "c.example" };
	static const int64_t intervals[] = { 1000003, 7 * SEC + 1, 29999999 };
	struct sched *s = sched_new();
	int64_t first[3], last[3];
	long runs[3] = { 0 }, total = 0;
	int64_t now = T0;

	for (size_t i = 0; i < 3; i++) {
		first[i] = sched_add(s, i, keys[i], intervals[i], T0);
		last[i] = first[i] - intervals[i];
	}
	while (total < 1000000) {
		size_t id;
		int64_t due;

		now = sched_next_due(s);
		while (sched_pop_due(s, now, &id, &due)) {
			assert_true(id < 3);
			assert_int_equal(due, last[id] + intervals[id]);
			assert_true(due <= now);
			last[id] = due;
			runs[id]++;
			total++;
		}
	}
	for (size_t i = 0; i < 3; i++) {
		long want = (long)((now - first[i]) / intervals[i]) + 1;

		assert_int_equal(runs[i], want);
		assert_int_equal((last[i] - sched_phase(keys[i], intervals[i])) % intervals[i], 0);
	}
	sched_free(s);
}

// Served 3.5 intervals late, an entry reports the slot it was due at, runs
// once, and is next due at the first grid point after now: the missed
// slots are skipped, not caught up.
static void
test_late_skips(void **state)
{
	const int64_t interval = 10 * SEC;
	struct sched *s = sched_new();
	int64_t due0 = sched_add(s, 3, "late", interval, T0);
	size_t id;
	int64_t due;

	assert_int_equal(sched_pop_due(s, due0 - 1, &id, &due), 0);
	assert_int_equal(sched_pop_due(s, due0 + 35 * SEC, &id, &due), 1);
	assert_int_equal(id, 3);
	assert_int_equal(due, due0);
	assert_int_equal(sched_next_due(s), due0 + 4 * interval);
	assert_int_equal(sched_pop_due(s, due0 + 35 * SEC, &id, &due), 0);

	// Late by exactly whole intervals: the slot being served now is not
	// run a second time either.
	assert_int_equal(sched_pop_due(s, due0 + 6 * interval, &id, &due), 1);
	assert_int_equal(due, due0 + 4 * interval);
	assert_int_equal(sched_next_due(s), due0 + 7 * interval);
	assert_int_equal(sched_pop_due(s, due0 + 6 * interval, &id, &due), 0);

	// Back on time afterwards.
	assert_int_equal(sched_pop_due(s, due0 + 7 * interval, &id, &due), 1);
	assert_int_equal(due, due0 + 7 * interval);
	sched_free(s);
}

// Many entries with mixed intervals: every pop hands out an entry whose due
// time is the minimum of all (tracked here by brute force), due times come
// out in non-decreasing order, and each entry runs once per grid point of
// its own in the ten minutes covered.
static void
test_interleave(void **state)
{
	enum { N = 200 };
	static const int64_t intervals[] = { SEC / 2, SEC, 2500000, 7 * SEC, 30 * SEC, 60 * SEC };
	struct sched *s = sched_new();
	int64_t next[N], interval[N], first[N];
	long runs[N] = { 0 };
	int64_t end = T0 + 600 * SEC, prev_due = INT64_MIN;

	for (size_t i = 0; i < N; i++) {
		char key[32];

		snprintf(key, sizeof(key), "t%zu", i);
		interval[i] = intervals[i % 6];
		first[i] = grid_at_or_after(T0, sched_phase(key, interval[i]), interval[i]);
		next[i] = sched_add(s, i, key, interval[i], T0);
		assert_int_equal(next[i], first[i]);
	}
	for (;;) {
		size_t id;
		int64_t due, min = INT64_MAX;

		for (size_t i = 0; i < N; i++)
			if (next[i] < min)
				min = next[i];
		assert_int_equal(sched_next_due(s), min);
		if (min > end)
			break;
		assert_int_equal(sched_pop_due(s, min, &id, &due), 1);
		assert_true(id < N);
		assert_int_equal(due, min);
		assert_int_equal(due, next[id]);
		assert_true(due >= prev_due);
		prev_due = due;
		next[id] += interval[id];
		runs[id]++;
	}
	for (size_t i = 0; i < N; i++)
		assert_int_equal(runs[i], (end - first[i]) / interval[i] + 1);
	assert_int_equal(sched_count(s), N);
	sched_free(s);
}

// sched_clear forgets every entry, and the scheduler works normally after.
static void
test_clear(void **state)
{
	struct sched *s = sched_new();
	size_t id = 0;
	int64_t due = 0;

	for (size_t i = 0; i < 100; i++) {
		char key[16];

		snprintf(key, sizeof(key), "k%zu", i);
		sched_add(s, i, key, SEC, T0);
	}
	assert_int_equal(sched_count(s), 100);
	sched_clear(s);
	assert_int_equal(sched_count(s), 0);
	assert_true(sched_next_due(s) == INT64_MAX);
	assert_int_equal(sched_pop_due(s, T0 + 3600 * SEC, &id, &due), 0);

	due = sched_add(s, 42, "again", SEC, T0);
	assert_int_equal(sched_count(s), 1);
	assert_int_equal(sched_next_due(s), due);
	assert_int_equal(sched_pop_due(s, due, &id, &due), 1);
	assert_int_equal(id, 42);
	sched_free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_phase_stable),
		cmocka_unit_test(test_phase_spread),
		cmocka_unit_test(test_add_returns_own_due),
		cmocka_unit_test(test_add_on_grid),
		cmocka_unit_test(test_no_drift),
		cmocka_unit_test(test_no_drift_mixed),
		cmocka_unit_test(test_late_skips),
		cmocka_unit_test(test_interleave),
		cmocka_unit_test(test_clear),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
