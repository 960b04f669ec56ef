// SPDX-License-Identifier: Apache-2.0
//
// Fixed log-scale latency histogram (histogram.h).  The bucket index is
// computed with the same double arithmetic PostgreSQL's ln() and floor()
// do on float8, so the C and SQL indexes agree value for value (tested on
// the bucket edges in tests/unit/test_histogram.c).  It must never read a
// clock or do I/O, and never trust a sparse text it is given.
#include "histogram.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "xmalloc.h"

struct histogram {
	uint64_t counts[HISTOGRAM_BUCKETS];
	uint64_t total;
};

struct histogram *
histogram_new(void)
{
	return xcalloc(1, sizeof(struct histogram));
}

void
histogram_free(struct histogram *h)
{
	free(h);
}

void
histogram_reset(struct histogram *h)
{
	memset(h, 0, sizeof(*h));
}

int
histogram_bucket(uint64_t value_us)
{
	double index = floor(log((double)(value_us > 1 ? value_us : 1)) / log(HISTOGRAM_RATIO));

	return index < HISTOGRAM_BUCKETS - 1 ? (int)index : HISTOGRAM_BUCKETS - 1;
}

double
histogram_bucket_mid(int index)
{
	return pow(HISTOGRAM_RATIO, index + 0.5);
}

void
histogram_add(struct histogram *h, uint64_t value_us)
{
	h->counts[histogram_bucket(value_us)]++;
	h->total++;
}

int
histogram_add_bucket(struct histogram *h, int index, uint64_t count)
{
	if (index < 0 || index >= HISTOGRAM_BUCKETS)
		return -1;
	h->counts[index] += count;
	h->total += count;
	return 0;
}

void
histogram_merge(struct histogram *dst, const struct histogram *src)
{
	for (int i = 0; i < HISTOGRAM_BUCKETS; i++)
		dst->counts[i] += src->counts[i];
	dst->total += src->total;
}

uint64_t
histogram_count(const struct histogram *h)
{
	return h->total;
}

uint64_t
histogram_bucket_count(const struct histogram *h, int index)
{
	return index >= 0 && index < HISTOGRAM_BUCKETS ? h->counts[index] : 0;
}

double
histogram_percentile(const struct histogram *h, double q)
{
	uint64_t rank, seen = 0;

	if (h->total == 0 || !(q > 0))
		return -1;
	if (q > 1)
		q = 1;
	rank = (uint64_t)ceil(q * (double)h->total);
	if (rank < 1)
		rank = 1;
	for (int i = 0; i < HISTOGRAM_BUCKETS; i++) {
		seen += h->counts[i];
		if (seen >= rank)
			return histogram_bucket_mid(i);
	}
	return histogram_bucket_mid(HISTOGRAM_BUCKETS - 1);
}

int
histogram_format_sparse(const struct histogram *h, char **buckets, char **counts)
{
	struct buf b, c;
	const char *sep = "";

	buf_init(&b);
	buf_init(&c);
	buf_putc(&b, '{');
	buf_putc(&c, '{');
	for (int i = 0; i < HISTOGRAM_BUCKETS; i++) {
		if (h->counts[i] == 0)
			continue;
		if (h->counts[i] > INT32_MAX)
			goto fail;
		buf_printf(&b, "%s%d", sep, i);
		buf_printf(&c, "%s%" PRIu64, sep, h->counts[i]);
		sep = ",";
	}
	buf_putc(&b, '}');
	buf_putc(&c, '}');
	*buckets = xstrdup(buf_cstr(&b));
	*counts = xstrdup(buf_cstr(&c));
	buf_free(&b);
	buf_free(&c);
	return 0;
fail:
	buf_free(&b);
	buf_free(&c);
	return -1;
}

// Reads the next element of an integer array literal at *p (after '{' or
// ','): a decimal in [0, max], then ',' or '}'.  Sets *done at '}'.
static int
histogram_next_int(const char **p, long long max, long long *out, int *done)
{
	const char *s = *p;
	char *end;

	if (*s == '}') {
		*done = 1;
		*p = s + 1;
		return 0;
	}
	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	*out = strtoll(s, &end, 10);
	if (errno != 0 || *out > max || (*end != ',' && *end != '}'))
		return -1;
	*done = 0;
	*p = *end == ',' ? end + 1 : end;
	return 1;
}

int
histogram_parse_sparse(struct histogram *h, const char *buckets, const char *counts)
{
	struct histogram *add;
	const char *pb = buckets, *pc = counts;
	long long index, count;
	int done_b = 0, done_c = 0, rb, rc;

	if (buckets == NULL || counts == NULL || *pb++ != '{' || *pc++ != '{')
		return -1;
	add = histogram_new();
	for (;;) {
		rb = histogram_next_int(&pb, HISTOGRAM_BUCKETS - 1, &index, &done_b);
		rc = histogram_next_int(&pc, INT32_MAX, &count, &done_c);
		if (rb < 0 || rc < 0 || done_b != done_c)
			goto fail;
		if (done_b)
			break;
		histogram_add_bucket(add, (int)index, (uint64_t)count);
	}
	// "{}" alone ends an empty array; "{1,}" or trailing bytes do not pass.
	if (*pb != '\0' || *pc != '\0' || pb[-2] == ',' || pc[-2] == ',')
		goto fail;
	histogram_merge(h, add);
	histogram_free(add);
	return 0;
fail:
	histogram_free(add);
	return -1;
}
