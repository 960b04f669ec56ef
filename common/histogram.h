// SPDX-License-Identifier: Apache-2.0
//
// A mergeable latency summary: counts in fixed log-scale buckets of ratio
// 1.02 over microseconds.  Bucket i holds the values v with
// floor(ln(max(v, 1)) / ln(1.02)) = i, so [1.02^i, 1.02^(i+1)), and
// HISTOGRAM_BUCKETS of them cover every uint32 value (1 µs to 71 min):
// nothing is ever clamped.  A percentile answers with its bucket's
// geometric midpoint 1.02^(i+0.5), within 1 % of every value in the
// bucket; and since the buckets are fixed, merging two histograms is
// adding counts, exact in any order (minutes -> hours -> days).  The
// database computes the same index in SQL (aggregator/sql/004_rollups.sql,
// vantage_histogram_bucket) and keeps only non-zero buckets, as two integer
// arrays; the sparse functions below read and write that form.  Pure: no
// I/O, no clock.
#ifndef VANTAGE_HISTOGRAM_H
#define VANTAGE_HISTOGRAM_H

#include <stddef.h>
#include <stdint.h>

#define HISTOGRAM_RATIO 1.02
// floor(ln(UINT32_MAX) / ln(1.02)) = 1120 is the highest index.
#define HISTOGRAM_BUCKETS 1121

struct histogram;

// An empty histogram, owned by the caller (histogram_free accepts NULL).
struct histogram *histogram_new(void);
void histogram_free(struct histogram *h);
void histogram_reset(struct histogram *h);

// The bucket index of a value in µs (0 and 1 are both bucket 0).
int histogram_bucket(uint64_t value_us);
// The geometric midpoint of bucket index, in µs.
double histogram_bucket_mid(int index);

void histogram_add(struct histogram *h, uint64_t value_us);
// Adds count values to bucket index; -1 if index is out of range.
int histogram_add_bucket(struct histogram *h, int index, uint64_t count);
// dst += src.
void histogram_merge(struct histogram *dst, const struct histogram *src);
uint64_t histogram_count(const struct histogram *h);
// The count of bucket index (0 when out of range).
uint64_t histogram_bucket_count(const struct histogram *h, int index);
// The q-quantile (0 < q <= 1) by nearest rank, as PostgreSQL's
// percentile_disc ranks: the midpoint of the bucket holding the
// ceil(q * count)-th smallest value.  -1 when the histogram is empty.
double histogram_percentile(const struct histogram *h, double q);

// The non-zero buckets as PostgreSQL integer array literals ("{3,17}" and
// "{5,2}"), owned by the caller; both are "{}" when the histogram is empty.
// Counts above INT32_MAX (the database's int) are refused with -1.
int histogram_format_sparse(const struct histogram *h, char **buckets, char **counts);
// Adds the buckets of two such literals (database rows: outside bytes, so
// every index and count is checked); 0, or -1 with h unchanged on
// malformed text, mismatched lengths, an index out of range or a negative
// count.
int histogram_parse_sparse(struct histogram *h, const char *buckets, const char *counts);

#endif
