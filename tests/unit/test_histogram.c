// SPDX-License-Identifier: Apache-2.0
//
// Unit tests of common/histogram.c.  The accuracy test builds a synthetic
// day the way the rollups see it: 1440 minute histograms of log-normal
// latencies (median 80 ms, with one slow hour at 5x), merges them as the
// day rollup does, and compares p50/p95/p99 with the nearest-rank
// percentile of the raw values sorted (what percentile_disc returns): each
// must be within 2 % (the bucket scheme promises 1 %).  Also: merging is
// exactly the histogram of the union, every value is within 1 % of its
// bucket's midpoint, the edge values 0, 1 and the largest, and the sparse
// array form round-trips and refuses malformed text.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "histogram.h"

#define MINUTES 1440
#define PER_MINUTE 30
#define SLOW_FIRST 600 // minutes 600..659 are the slow hour
#define SLOW_LAST 659

// splitmix64: deterministic, so a failure is reproducible.
static uint64_t test_seed = 0x9e3779b97f4a7c15u;

static uint64_t
test_rand(void)
{
	uint64_t z = (test_seed += 0x9e3779b97f4a7c15u);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

static double
test_uniform(void)
{
	return ((double)(test_rand() >> 11) + 0.5) / 9007199254740992.0;
}

// A log-normal latency in µs with the given median (Box-Muller).
static uint64_t
test_lognormal(double median_us, double sigma)
{
	double z = sqrt(-2 * log(test_uniform())) * cos(2 * M_PI * test_uniform());

	return (uint64_t)llround(median_us * exp(sigma * z));
}

static int
test_cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

// Nearest rank, as percentile_disc: the ceil(q * n)-th smallest.
static uint64_t
test_raw_percentile(const uint64_t *sorted, size_t n, double q)
{
	size_t rank = (size_t)ceil(q * (double)n);

	return sorted[(rank < 1 ? 1 : rank) - 1];
}

static void
test_synthetic_day(void **state)
{
	static const double qs[] = { 0.50, 0.95, 0.99 };
	size_t n = (size_t)MINUTES * PER_MINUTE, k = 0;
	uint64_t *raw = calloc(n, sizeof(*raw));
	struct histogram *day = histogram_new();

	(void)state;
	assert_non_null(raw);
	for (int m = 0; m < MINUTES; m++) {
		struct histogram *minute = histogram_new();
		bool slow = m >= SLOW_FIRST && m <= SLOW_LAST;

		for (int i = 0; i < PER_MINUTE; i++) {
			raw[k] = test_lognormal(slow ? 400000 : 80000, slow ? 0.8 : 0.5);
			histogram_add(minute, raw[k++]);
		}
		histogram_merge(day, minute);
		histogram_free(minute);
	}
	qsort(raw, n, sizeof(*raw), test_cmp_u64);
	assert_int_equal(histogram_count(day), n);
	for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
		double want = (double)test_raw_percentile(raw, n, qs[i]);
		double got = histogram_percentile(day, qs[i]);
		double err = fabs(got - want) / want;

		printf("p%02.0f: raw %.0f us, from 1440 merged minutes %.0f us, error %.3f %%\n",
		    qs[i] * 100, want, got, err * 100);
		assert_true(err < 0.02);
		// The bucket scheme's own promise, tighter than the 2 % asked.
		assert_true(err <= sqrt(HISTOGRAM_RATIO) - 1 + 1e-12);
	}
	free(raw);
	histogram_free(day);
}

static void
test_merge_is_exact(void **state)
{
	struct histogram *a = histogram_new(), *b = histogram_new(), *both = histogram_new();

	(void)state;
	for (int i = 0; i < 5000; i++) {
		uint64_t v = test_lognormal(50000, 1.5);

		histogram_add(i % 3 == 0 ? a : b, v);
		histogram_add(both, v);
	}
	histogram_merge(a, b);
	assert_int_equal(histogram_count(a), histogram_count(both));
	for (int i = 0; i < HISTOGRAM_BUCKETS; i++)
		assert_int_equal(histogram_bucket_count(a, i), histogram_bucket_count(both, i));
	for (double q = 0.01; q <= 1.0; q += 0.01)
		assert_true(histogram_percentile(a, q) == histogram_percentile(both, q));
	histogram_free(a);
	histogram_free(b);
	histogram_free(both);
}

// Every value is within sqrt(1.02) - 1 < 1 % of its bucket's midpoint,
// and the bucket is the one whose range holds it.
static void
test_midpoint_within_one_percent(void **state)
{
	(void)state;
	for (uint64_t v = 1; v < UINT32_MAX; v = v < 100000 ? v + 1 : v + v / 997) {
		int i = histogram_bucket(v);
		double mid = histogram_bucket_mid(i);

		assert_true(i >= 0 && i < HISTOGRAM_BUCKETS);
		assert_true(fabs(mid - (double)v) / (double)v <= sqrt(HISTOGRAM_RATIO) - 1 + 1e-12);
		assert_true(pow(HISTOGRAM_RATIO, i) <= (double)v * (1 + 1e-12));
		assert_true(pow(HISTOGRAM_RATIO, i + 1) > (double)v * (1 - 1e-12));
	}
}

static void
test_edges(void **state)
{
	struct histogram *h = histogram_new();

	(void)state;
	assert_int_equal(histogram_bucket(0), 0);
	assert_int_equal(histogram_bucket(1), 0);
	assert_int_equal(histogram_bucket(2), 35);
	assert_int_equal(histogram_bucket(600000000), 1020); // 10 minutes
	assert_int_equal(histogram_bucket(INT32_MAX), 1085);
	assert_int_equal(histogram_bucket(UINT32_MAX), HISTOGRAM_BUCKETS - 1);
	assert_int_equal(histogram_bucket(UINT64_MAX), HISTOGRAM_BUCKETS - 1);
	assert_true(histogram_percentile(h, 0.5) == -1);
	histogram_add(h, 0);
	assert_int_equal(histogram_count(h), 1);
	assert_true(fabs(histogram_percentile(h, 0.5) - sqrt(HISTOGRAM_RATIO)) < 1e-9);
	assert_true(histogram_percentile(h, 0) == -1);
	histogram_reset(h);
	histogram_add(h, UINT32_MAX);
	assert_true(fabs(histogram_percentile(h, 1.0) - UINT32_MAX) / UINT32_MAX < 0.01);
	assert_int_equal(histogram_add_bucket(h, HISTOGRAM_BUCKETS, 1), -1);
	assert_int_equal(histogram_add_bucket(h, -1, 1), -1);
	assert_int_equal(histogram_count(h), 1);
	histogram_free(h);
	histogram_free(NULL);
}

static void
test_sparse_round_trip(void **state)
{
	struct histogram *h = histogram_new(), *back = histogram_new();
	char *buckets, *counts;

	(void)state;
	assert_int_equal(histogram_format_sparse(h, &buckets, &counts), 0);
	assert_string_equal(buckets, "{}");
	assert_string_equal(counts, "{}");
	assert_int_equal(histogram_parse_sparse(back, buckets, counts), 0);
	assert_int_equal(histogram_count(back), 0);
	free(buckets);
	free(counts);
	histogram_add(h, 1);
	histogram_add(h, 2);
	histogram_add(h, 2);
	histogram_add(h, UINT32_MAX);
	assert_int_equal(histogram_format_sparse(h, &buckets, &counts), 0);
	assert_string_equal(buckets, "{0,35,1120}");
	assert_string_equal(counts, "{1,2,1}");
	assert_int_equal(histogram_parse_sparse(back, buckets, counts), 0);
	for (int i = 0; i < HISTOGRAM_BUCKETS; i++)
		assert_int_equal(histogram_bucket_count(back, i), histogram_bucket_count(h, i));
	free(buckets);
	free(counts);
	histogram_free(h);
	histogram_free(back);
}

static void
test_sparse_refuses_malformed(void **state)
{
	static const char *const bad[][2] = {
		{ "{1,2}", "{1}" }, // lengths differ
		{ "{1}", "{1,2}" },
		{ "{1121}", "{1}" }, // index out of range
		{ "{-1}", "{1}" },   // negative index
		{ "{1}", "{-1}" },   // negative count
		{ "{1}", "{2147483648}" },
		{ "{1,}", "{1,}" }, // empty element
		{ "{1}x", "{1}" },  // trailing bytes
		{ "1", "1" },       // not an array
		{ "{a}", "{1}" },
		{ "", "" },
	};
	struct histogram *h = histogram_new();

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(histogram_parse_sparse(h, bad[i][0], bad[i][1]), -1);
		assert_int_equal(histogram_count(h), 0);
	}
	assert_int_equal(histogram_parse_sparse(h, NULL, "{}"), -1);
	histogram_free(h);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_synthetic_day),
		cmocka_unit_test(test_merge_is_exact),
		cmocka_unit_test(test_midpoint_within_one_percent),
		cmocka_unit_test(test_edges),
		cmocka_unit_test(test_sparse_round_trip),
		cmocka_unit_test(test_sparse_refuses_malformed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
