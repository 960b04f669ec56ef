// SPDX-License-Identifier: Apache-2.0
//
// libFuzzer target for the agent's spool segment reader,
// spool_segment_scan (agent/spool.c): the bytes of one segment file as a
// crash, a full disk or a stray editor may leave them.  Random bytes almost
// never carry a matching CRC-32C, so the first input byte picks how the
// rest is used: as the segment itself (even), or (odd) as a list of records
// that the target frames with correct lengths and CRCs, and then damages at
// a chosen byte, so that the checks behind the CRC get fuzzed too.
// Besides what ASan and UBSan catch, it checks the contract of spool.h:
// the valid prefix is within the data and ends exactly after the last
// record reported, records come in file order inside that prefix, each has
// 0 < first_seq <= last_seq <= INT64_MAX, and scanning the prefix alone (what the agent
// keeps after truncating a torn tail) finds the same records again.
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "spool.h"

#define FUZZ_MAX_RECORDS 4096

struct fuzz_scan {
	const uint8_t *data;
	size_t len;
	size_t n;
	size_t next_off; // where the next record must start
	uint64_t sums[FUZZ_MAX_RECORDS];
};

static void __attribute__((__noreturn__, format(printf, 1, 2))) fuzz_fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("fuzz_spool: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	abort();
}

static void
fuzz_on_record(uint64_t first, uint64_t last, int64_t added_at, const uint8_t *batch, size_t len,
    size_t rec_off, void *arg)
{
	struct fuzz_scan *s = arg;
	size_t rec_len = SPOOL_REC_HEADER + SPOOL_REC_META + len;

	if (rec_off != s->next_off)
		fuzz_fail("record %zu at offset %zu, want %zu", s->n, rec_off, s->next_off);
	if (first == 0 || first > last || last > INT64_MAX)
		fuzz_fail("record %zu has seqs %llu..%llu", s->n, (unsigned long long)first,
		    (unsigned long long)last);
	if (batch != s->data + rec_off + SPOOL_REC_HEADER + SPOOL_REC_META ||
	    rec_len > s->len - rec_off || len > SPOOL_PAYLOAD_MAX - SPOOL_REC_META)
		fuzz_fail("record %zu (offset %zu, %zu bytes) is not inside the segment", s->n,
		    rec_off, len);
	if (s->n < FUZZ_MAX_RECORDS) {
		uint64_t sum = first ^ (last << 1) ^ (uint64_t)added_at ^ len;

		// Reading every batch byte lets ASan see any read past the data.
		s->sums[s->n] = sum ^ crc32c(0, batch, len);
	}
	s->n++;
	s->next_off = rec_off + rec_len;
}

static size_t
fuzz_scan(struct fuzz_scan *s, const uint8_t *data, size_t len)
{
	size_t valid;

	memset(s, 0, sizeof(*s));
	s->data = data;
	s->len = len;
	valid = spool_segment_scan(data, len, fuzz_on_record, s);
	if (valid > len)
		fuzz_fail("valid prefix %zu is longer than the %zu bytes scanned", valid, len);
	if (valid != s->next_off)
		fuzz_fail("valid prefix %zu, but the last record ends at %zu", valid, s->next_off);
	return valid;
}

static void
fuzz_put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

// Frames the input as records: each is a length byte L, then L+META bytes
// of payload (seqs, time, batch), CRC computed here.  The last two bytes
// name one byte of the result to flip (0xffff: none).
static size_t
fuzz_frame(const uint8_t *in, size_t n, uint8_t *out)
{
	size_t used = 0, len = 0;
	size_t damage = SIZE_MAX;

	if (n >= 2) {
		damage = (size_t)in[n - 2] << 8 | in[n - 1];
		n -= 2;
	}
	while (used < n) {
		size_t plen = SPOOL_REC_META + in[used++];

		if (plen > n - used)
			plen = n - used;
		fuzz_put32(out + len, (uint32_t)plen);
		fuzz_put32(out + len + 4, crc32c(0, in + used, plen));
		memcpy(out + len + SPOOL_REC_HEADER, in + used, plen);
		len += SPOOL_REC_HEADER + plen;
		used += plen;
	}
	if (damage != 0xffff && damage < len)
		out[damage] ^= 0x5a;
	return len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fuzz_scan whole, prefix;
	const uint8_t *seg = data + 1;
	uint8_t *framed = NULL;
	size_t seg_len, valid;

	if (size == 0)
		return 0;
	seg_len = size - 1;
	if (data[0] & 1) {
		// At most one 8-byte header per input byte, plus the input.
		framed = malloc(seg_len * (SPOOL_REC_HEADER + 1) + 1);
		seg_len = fuzz_frame(data + 1, seg_len, framed);
		seg = framed;
	}
	// An exact-size copy, so that ASan catches a read one byte past it.
	{
		uint8_t *copy = malloc(seg_len ? seg_len : 1);

		memcpy(copy, seg, seg_len);
		valid = fuzz_scan(&whole, copy, seg_len);
		// What the agent keeps after truncating reads the same again.
		if (fuzz_scan(&prefix, copy, valid) != valid || prefix.n != whole.n ||
		    memcmp(prefix.sums, whole.sums,
			(whole.n < FUZZ_MAX_RECORDS ? whole.n : FUZZ_MAX_RECORDS) *
			    sizeof(whole.sums[0])) != 0)
			fuzz_fail("the %zu-byte valid prefix does not scan to the same %zu records",
			    valid, whole.n);
		free(copy);
	}
	free(framed);
	return 0;
}
