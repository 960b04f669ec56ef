// SPDX-License-Identifier: Apache-2.0
//
// Unit tests for agent/spool, the disk spool: records come back in seq
// order and byte for byte, also after a reopen; the epoch is created once
// and kept; acks delete whole segments; a torn tail is cut at the last
// valid record whatever byte the write stopped at; a damaged CRC cuts there
// and leaves a hole the uplink reports as a gap; a full spool drops its
// oldest segments and counts every dropped seq; two agents never share one
// spool.  Each test works in its own temporary directory.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "buf.h"
#include "crc32c.h"
#include "spool.h"

#define KIB 1024u

struct spool {
	char dir[64];
	struct spool *o;
};

static int
setup(void **state)
{
	struct spool *s = calloc(1, sizeof(*s));

	assert_non_null(s);
	snprintf(s->dir, sizeof(s->dir), "/tmp/vantage-spool.XXXXXX");
	assert_non_null(mkdtemp(s->dir));
	*state = s;
	return 0;
}

static int
teardown(void **state)
{
	struct spool *s = *state;
	char cmd[128];

	spool_free(s->o);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", s->dir);
	assert_int_equal(system(cmd), 0);
	free(s);
	return 0;
}

static struct spool *
reopen(struct spool *s, uint64_t max_bytes)
{
	char err[256] = "";

	spool_free(s->o);
	s->o = spool_open(s->dir, max_bytes, SPOOL_SYNC_BATCH, err, sizeof(err));
	if (s->o == NULL)
		fail_msg("spool_open: %s", err);
	return s->o;
}

// A batch's bytes: derived from its first seq, so that a record read back
// with another's data, or cut short, is noticed.
static void
fill(uint8_t *p, uint64_t first_seq, size_t len)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(first_seq * 31 + i);
}

static void
append(struct spool *o, uint64_t first_seq, uint64_t last_seq, size_t len)
{
	uint8_t *p = malloc(len ? len : 1);

	assert_non_null(p);
	fill(p, first_seq, len);
	spool_append(o, first_seq, last_seq, p, len, (int64_t)first_seq * 1000);
	free(p);
}

// Checks every record after `after`: contiguous from first_seq in spans of
// `span`, each of `len` bytes with the right contents.  Returns the count.
static size_t
check_records_n(struct spool *o, uint64_t after, uint64_t first_seq, uint64_t span, size_t len,
    size_t limit)
{
	const struct spool_rec *r;
	uint8_t *want = malloc(len ? len : 1);
	struct buf b;
	size_t n = 0;

	assert_non_null(want);
	buf_init(&b);
	for (r = spool_after(o, after); r != NULL && n < limit; r = spool_next(o, r), n++) {
		assert_int_equal(r->first_seq, first_seq + n * span);
		assert_int_equal(r->last_seq, first_seq + n * span + span - 1);
		assert_int_equal(r->added_at_us, (int64_t)r->first_seq * 1000);
		spool_load(o, r, &b);
		fill(want, r->first_seq, len);
		assert_int_equal(b.len, len);
		assert_memory_equal(b.data, want, len);
	}
	buf_free(&b);
	free(want);
	return n;
}

static size_t
check_records(struct spool *o, uint64_t after, uint64_t first_seq, uint64_t span, size_t len)
{
	return check_records_n(o, after, first_seq, span, len, SIZE_MAX);
}

static size_t
count_segments(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		n += strlen(de->d_name) == 24 && strcmp(de->d_name + 20, ".seg") == 0;
	closedir(d);
	return n;
}

// The newest segment file's path.
static void
last_segment(const char *dir, char *path, size_t size)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char best[32] = "";

	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		if (strlen(de->d_name) == 24 && strcmp(de->d_name + 20, ".seg") == 0 &&
		    strcmp(de->d_name, best) > 0)
			snprintf(best, sizeof(best), "%s", de->d_name);
	closedir(d);
	assert_true(best[0] != '\0');
	snprintf(path, size, "%s/%s", dir, best);
}

static uint8_t *
read_file(const char *path, size_t *len)
{
	struct stat st;
	uint8_t *p;
	int fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	p = malloc((size_t)st.st_size + 1);
	assert_non_null(p);
	assert_int_equal(read(fd, p, (size_t)st.st_size), st.st_size);
	close(fd);
	*len = (size_t)st.st_size;
	return p;
}

static void
write_file(const char *path, const uint8_t *p, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, p, len), (ssize_t)len);
	close(fd);
}

static void
test_crc32c(void **state)
{
	(void)state;
	// The check value of CRC-32C (RFC 3720 and every implementation).
	assert_int_equal(crc32c(0, "123456789", 9), 0xE3069283u);
	assert_int_equal(crc32c(crc32c(0, "1234", 4), "56789", 5), 0xE3069283u);
	assert_int_equal(crc32c(0, "", 0), 0);
}

static void
test_roundtrip_and_reopen(void **state)
{
	struct spool *s = *state;
	struct spool *o = reopen(s, 1u << 20);
	uint64_t epoch = spool_epoch(o);

	assert_true(epoch != 0);
	assert_int_equal(spool_next_seq(o), 1);
	assert_int_equal(spool_depth(o), 0);
	assert_null(spool_after(o, 0));
	for (uint64_t i = 0; i < 20; i++)
		append(o, 1 + i * 5, 5 + i * 5, 100 + i);
	assert_int_equal(spool_depth(o), 100);
	assert_int_equal(spool_oldest_seq(o), 1);
	assert_int_equal(spool_newest_seq(o), 100);
	assert_int_equal(spool_next_seq(o), 101);
	assert_int_equal(spool_oldest_added(o), 1000);
	// spool_after finds the record holding seq+1.
	assert_int_equal(spool_after(o, 0)->first_seq, 1);
	assert_int_equal(spool_after(o, 7)->first_seq, 6);
	assert_int_equal(spool_after(o, 10)->first_seq, 11);
	assert_null(spool_after(o, 100));

	// The same epoch and records after a reopen (a restarted agent).
	o = reopen(s, 1u << 20);
	assert_int_equal(spool_epoch(o), epoch);
	assert_int_equal(spool_next_seq(o), 101);
	assert_int_equal(spool_depth(o), 100);
	{
		const struct spool_rec *r;
		struct buf b;
		uint8_t want[200];
		uint64_t i = 0;

		buf_init(&b);
		for (r = spool_after(o, 0); r != NULL; r = spool_next(o, r), i++) {
			assert_int_equal(r->first_seq, 1 + i * 5);
			spool_load(o, r, &b);
			assert_int_equal(b.len, 100 + i);
			fill(want, r->first_seq, b.len);
			assert_memory_equal(b.data, want, b.len);
		}
		assert_int_equal(i, 20);
		buf_free(&b);
	}
	append(o, 101, 101, 10);
	assert_int_equal(spool_next_seq(o), 102);
}

static void
test_ack_deletes_segments(void **state)
{
	struct spool *s = *state;
	// 1 MiB: 64 KiB segments, so 4 KiB records fill one in 16.
	struct spool *o = reopen(s, 1u << 20);

	for (uint64_t seq = 1; seq <= 100; seq++)
		append(o, seq, seq, 4 * KIB);
	assert_true(count_segments(s->dir) >= 6);
	assert_int_equal(spool_depth(o), 100);

	spool_ack(o, 50);
	assert_int_equal(spool_depth(o), 50);
	assert_int_equal(spool_oldest_seq(o), 51);
	assert_int_equal(check_records(o, 0, 51, 1, 4 * KIB), 50);
	// Only segments holding nothing unacked are gone: seq 51's is kept.
	o = reopen(s, 1u << 20);
	assert_true(spool_oldest_seq(o) <= 51);
	assert_true(spool_oldest_seq(o) > 1);
	assert_int_equal(spool_newest_seq(o), 100);

	// Acking everything leaves only the segment being written.
	spool_ack(o, 100);
	assert_int_equal(spool_depth(o), 0);
	assert_null(spool_after(o, 0));
	assert_int_equal(count_segments(s->dir), 1);
	o = reopen(s, 1u << 20);
	// Its acked records are still there (the aggregator's Welcome trims
	// them), and seqs continue after them.
	assert_int_equal(spool_next_seq(o), 101);
	spool_ack(o, 100);
	assert_int_equal(spool_depth(o), 0);
}

// A partial acknowledgement inside a record keeps the record (it is resent
// whole) but counts only its unacked seqs.
static void
test_partial_ack(void **state)
{
	struct spool *s = *state;
	struct spool *o = reopen(s, 1u << 20);

	append(o, 1, 10, 50);
	append(o, 11, 20, 50);
	spool_ack(o, 14);
	assert_int_equal(spool_depth(o), 6);
	assert_int_equal(spool_after(o, 14)->first_seq, 11);
}

static void
test_epoch_file(void **state)
{
	struct spool *s = *state;
	char path[128], err[256];
	uint64_t epoch;

	epoch = spool_epoch(reopen(s, 1u << 20));
	spool_free(s->o);
	s->o = NULL;
	// The epoch is kept across reopens.
	assert_int_equal(spool_epoch(reopen(s, 1u << 20)), epoch);
	spool_free(s->o);
	s->o = NULL;
	snprintf(path, sizeof(path), "%s/epoch", s->dir);
	write_file(path, (const uint8_t *)"12x\n", 4);
	assert_null(spool_open(s->dir, 1u << 20, SPOOL_SYNC_BATCH, err, sizeof(err)));
	assert_non_null(strstr(err, "corrupt"));
	write_file(path, (const uint8_t *)"0\n", 2);
	assert_null(spool_open(s->dir, 1u << 20, SPOOL_SYNC_BATCH, err, sizeof(err)));
	// Segments without their epoch must not be resent under a new one.
	snprintf(path, sizeof(path), "%s/epoch", s->dir);
	{
		char text[32];
		int n = snprintf(text, sizeof(text), "%llu\n", (unsigned long long)epoch);

		write_file(path, (const uint8_t *)text, (size_t)n);
	}
	append(reopen(s, 1u << 20), 1, 1, 10);
	spool_free(s->o);
	s->o = NULL;
	assert_int_equal(unlink(path), 0);
	assert_null(spool_open(s->dir, 1u << 20, SPOOL_SYNC_BATCH, err, sizeof(err)));
	assert_non_null(strstr(err, "no epoch file"));
}

static void
test_lock(void **state)
{
	struct spool *s = *state;
	char err[256];

	reopen(s, 1u << 20);
	assert_null(spool_open(s->dir, 1u << 20, SPOOL_SYNC_BATCH, err, sizeof(err)));
	assert_non_null(strstr(err, "in use"));
}

// Cut the newest segment at every byte of its last record: the reopened
// spool holds exactly the records before it and takes new ones after them.
static void
test_torn_tail_every_offset(void **state)
{
	struct spool *s = *state;
	char seg[160];
	uint8_t *full;
	size_t full_len, last_start;
	struct spool *o = reopen(s, 1u << 20);

	for (uint64_t i = 0; i < 5; i++)
		append(o, 1 + i * 3, 3 + i * 3, 40);
	spool_free(s->o);
	s->o = NULL;
	last_segment(s->dir, seg, sizeof(seg));
	full = read_file(seg, &full_len);
	last_start = full_len - (SPOOL_REC_HEADER + SPOOL_REC_META + 40);
	assert_int_equal(spool_segment_scan(full, full_len, NULL, NULL), full_len);
	for (size_t cut = last_start; cut <= full_len; cut++) {
		struct stat st;
		bool whole = cut == full_len;

		write_file(seg, full, cut);
		o = reopen(s, 1u << 20);
		assert_int_equal(check_records(o, 0, 1, 3, 40), whole ? 5 : 4);
		assert_int_equal(spool_next_seq(o), whole ? 16 : 13);
		assert_int_equal(stat(seg, &st), 0);
		assert_int_equal((size_t)st.st_size, whole ? full_len : last_start);
		// A new record goes right after the last valid one.
		append(o, whole ? 16 : 13, whole ? 18 : 15, 40);
		assert_int_equal(check_records(o, 0, 1, 3, 40), whole ? 6 : 5);
		spool_free(s->o);
		s->o = NULL;
	}
	free(full);
}

// A flipped byte anywhere in a record (header, seqs, batch) ends the valid
// prefix there; records in later segments survive, leaving a hole.
static void
test_crc_damage(void **state)
{
	struct spool *s = *state;
	char seg[160];
	uint8_t *full;
	size_t full_len, rec = SPOOL_REC_HEADER + SPOOL_REC_META + 40;
	struct spool *o = reopen(s, 1u << 20);

	for (uint64_t seq = 1; seq <= 10; seq++)
		append(o, seq, seq, 40);
	spool_free(s->o);
	s->o = NULL;
	last_segment(s->dir, seg, sizeof(seg));
	full = read_file(seg, &full_len);
	assert_int_equal(full_len, 10 * rec);
	for (size_t at = 6 * rec; at < 7 * rec; at += 7) {
		full[at] ^= 0x40;
		write_file(seg, full, full_len);
		o = reopen(s, 1u << 20);
		assert_int_equal(check_records(o, 0, 1, 1, 40), 6);
		assert_int_equal(spool_next_seq(o), 7);
		spool_free(s->o);
		s->o = NULL;
		full[at] ^= 0x40;
	}
	free(full);
}

static void
test_damage_in_older_segment(void **state)
{
	struct spool *s = *state;
	char path[160];
	uint8_t *full;
	size_t len, rec = SPOOL_REC_HEADER + SPOOL_REC_META + 4 * KIB;
	const struct spool_rec *r;
	struct spool *o = reopen(s, 1u << 20);

	// 64 KiB segments: seqs 1..15 in the first, 16.. in the next.
	for (uint64_t seq = 1; seq <= 40; seq++)
		append(o, seq, seq, 4 * KIB);
	spool_free(s->o);
	s->o = NULL;
	snprintf(path, sizeof(path), "%s/%020d.seg", s->dir, 1);
	full = read_file(path, &len);
	assert_int_equal(len, 15 * rec);
	full[3 * rec + SPOOL_REC_HEADER + 30] ^= 1;
	write_file(path, full, len);
	free(full);
	o = reopen(s, 1u << 20);
	// Seqs 1..3, then a hole 4..15, then 16..40.
	assert_int_equal(check_records_n(o, 0, 1, 1, 4 * KIB, 3), 3);
	r = spool_after(o, 3);
	assert_non_null(r);
	assert_int_equal(r->first_seq, 16);
	assert_int_equal(check_records(o, 15, 16, 1, 4 * KIB), 25);
	assert_int_equal(spool_depth(o), 28);
}

static void
test_full_spool_drops_oldest(void **state)
{
	struct spool *s = *state;
	const uint64_t max = 256 * KIB; // 64 KiB segments
	uint64_t oldest;
	struct spool *o = reopen(s, max);

	for (uint64_t seq = 1; seq <= 200; seq++) {
		append(o, seq, seq, 2 * KIB);
		assert_true(spool_bytes(o) <= max);
	}
	oldest = spool_oldest_seq(o);
	assert_true(oldest > 1);
	// Every seq before the oldest kept was counted as dropped, once.
	assert_int_equal(spool_dropped(o), oldest - 1);
	assert_int_equal(spool_depth(o), 200 - oldest + 1);
	assert_int_equal(check_records(o, 0, oldest, 1, 2 * KIB), 200 - oldest + 1);

	// Acked seqs are not lost when their segment goes.
	spool_ack(o, 150);
	for (uint64_t seq = 201; seq <= 230; seq++)
		append(o, seq, seq, 2 * KIB);
	assert_int_equal(spool_dropped(o), oldest - 1);

	// A reopen finds the same hole: seqs before the oldest are gone.
	o = reopen(s, max);
	assert_true(spool_oldest_seq(o) > oldest);
	assert_int_equal(spool_newest_seq(o), 230);
	assert_true(spool_bytes(o) <= max);
}

// A single batch bigger than the whole spool is still kept: dropping the
// newest data could never make room.
static void
test_oversized_record_kept(void **state)
{
	struct spool *s = *state;
	struct spool *o = reopen(s, 256 * KIB);

	append(o, 1, 1, 10 * KIB);
	append(o, 2, 2, 300 * KIB);
	assert_int_equal(spool_newest_seq(o), 2);
	assert_int_equal(check_records(o, 1, 2, 1, 300 * KIB), 1);
	assert_int_equal(spool_dropped(o), 1);
}

static void
test_scan_rejects(void **state)
{
	uint8_t rec[SPOOL_REC_HEADER + SPOOL_REC_META + 4];
	uint32_t crc;

	(void)state;
	memset(rec, 0, sizeof(rec));
	// first_seq 5, last_seq 3: out of order.
	rec[0] = SPOOL_REC_META + 4;
	rec[SPOOL_REC_HEADER] = 5;
	rec[SPOOL_REC_HEADER + 8] = 3;
	crc = crc32c(0, rec + SPOOL_REC_HEADER, SPOOL_REC_META + 4);
	memcpy(rec + 4, &crc, 4); // little-endian host
	assert_int_equal(spool_segment_scan(rec, sizeof(rec), NULL, NULL), 0);
	// Fixed, it is valid.
	rec[SPOOL_REC_HEADER + 8] = 5;
	crc = crc32c(0, rec + SPOOL_REC_HEADER, SPOOL_REC_META + 4);
	memcpy(rec + 4, &crc, 4);
	assert_int_equal(spool_segment_scan(rec, sizeof(rec), NULL, NULL), sizeof(rec));
	// A last_seq past INT64_MAX is no seq the agent makes (and next_seq,
	// last + 1, would wrap to 0 and let any record through after it).
	memset(rec + SPOOL_REC_HEADER + 8, 0xff, 8);
	crc = crc32c(0, rec + SPOOL_REC_HEADER, SPOOL_REC_META + 4);
	memcpy(rec + 4, &crc, 4);
	assert_int_equal(spool_segment_scan(rec, sizeof(rec), NULL, NULL), 0);
	memset(rec + SPOOL_REC_HEADER + 8, 0xff, 7);
	rec[SPOOL_REC_HEADER + 15] = 0x7f;
	crc = crc32c(0, rec + SPOOL_REC_HEADER, SPOOL_REC_META + 4);
	memcpy(rec + 4, &crc, 4);
	assert_int_equal(spool_segment_scan(rec, sizeof(rec), NULL, NULL), sizeof(rec));
	// A length running past the end, or absurdly long, is a torn tail.
	rec[0] = SPOOL_REC_META + 5;
	assert_int_equal(spool_segment_scan(rec, sizeof(rec), NULL, NULL), 0);
	rec[0] = 0;
	rec[3] = 0x80;
	assert_int_equal(spool_segment_scan(rec, sizeof(rec), NULL, NULL), 0);
	assert_int_equal(spool_segment_scan(rec, 3, NULL, NULL), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc32c),
		cmocka_unit_test(test_scan_rejects),
		cmocka_unit_test_setup_teardown(test_roundtrip_and_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ack_deletes_segments, setup, teardown),
		cmocka_unit_test_setup_teardown(test_partial_ack, setup, teardown),
		cmocka_unit_test_setup_teardown(test_epoch_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lock, setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_tail_every_offset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crc_damage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_damage_in_older_segment, setup, teardown),
		cmocka_unit_test_setup_teardown(test_full_spool_drops_oldest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_oversized_record_kept, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
