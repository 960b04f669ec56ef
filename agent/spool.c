// SPDX-License-Identifier: Apache-2.0
//
// The agent's disk spool; see spool.h for the format and the rules.  The
// batch bytes live only on disk; memory holds an index of the records (seq
// range, segment, offset) so that resending reads them back with pread.
// Every path that could lose a spooled result either fails loudly (write,
// fsync) or reports it (segments dropped when full, a truncated tail).
#include "spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "atomic_file.h"
#include "crc32c.h"
#include "log.h"
#include "xmalloc.h"

#define SPOOL_SEG_MIN (UINT64_C(64) << 10)
#define SPOOL_SEG_MAX (UINT64_C(8) << 20)
#define SPOOL_SEG_NAME_DIGITS 20

struct spool_seg {
	uint64_t id;       // position in the spool's history, never reused
	uint64_t name_seq; // from the file name
	uint64_t last_seq; // newest seq in it, 0 while empty
	uint64_t size;
	int fd;
};

struct spool {
	char *dir;
	int dir_fd;
	int lock_fd;
	enum spool_sync sync;
	uint64_t max_bytes;
	uint64_t seg_max;
	uint64_t epoch;
	uint64_t next_seq;
	uint64_t acked_seq;

	struct spool_seg *segs; // oldest first; the last one is written
	size_t n_segs, cap_segs;
	uint64_t next_seg_id;

	struct spool_rec *recs; // live records are recs[rec_head..n_recs)
	size_t rec_head, n_recs, cap_recs;

	uint64_t bytes;
	uint64_t held; // sum of the live records' seq spans
	uint64_t dropped;
};

static uint32_t
spool_get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t
spool_get64(const uint8_t *p)
{
	return (uint64_t)spool_get32(p) | (uint64_t)spool_get32(p + 4) << 32;
}

static void
spool_put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void
spool_put64(uint8_t *p, uint64_t v)
{
	spool_put32(p, (uint32_t)v);
	spool_put32(p + 4, (uint32_t)(v >> 32));
}

size_t
spool_segment_scan(const uint8_t *data, size_t len, spool_scan_cb cb, void *arg)
{
	size_t off = 0;

	while (len - off >= SPOOL_REC_HEADER) {
		uint32_t plen = spool_get32(data + off);
		uint32_t crc = spool_get32(data + off + 4);
		const uint8_t *payload = data + off + SPOOL_REC_HEADER;
		uint64_t first, last;

		if (plen < SPOOL_REC_META || plen > SPOOL_PAYLOAD_MAX ||
		    plen > len - off - SPOOL_REC_HEADER || crc32c(0, payload, plen) != crc)
			break;
		first = spool_get64(payload);
		last = spool_get64(payload + 8);
		// Seqs are positive int8 everywhere (wire.c, the database);
		// a larger last_seq would also wrap next_seq to 0.
		if (first == 0 || first > last || last > INT64_MAX)
			break;
		if (cb != NULL)
			cb(first, last, (int64_t)spool_get64(payload + 16),
			    payload + SPOOL_REC_META, plen - SPOOL_REC_META, off, arg);
		off += SPOOL_REC_HEADER + plen;
	}
	return off;
}

// ---- the in-memory index ---------------------------------------------------

static struct spool_seg *
spool_active(struct spool *o)
{
	return o->n_segs > 0 ? &o->segs[o->n_segs - 1] : NULL;
}

static void
spool_index(struct spool *o, const struct spool_seg *seg, uint64_t first, uint64_t last,
    int64_t added_at, uint64_t batch_off, size_t len)
{
	struct spool_rec *r;

	if (o->n_recs == o->cap_recs) {
		// Reclaim the acked front before growing.
		if (o->rec_head > 0) {
			memmove(o->recs, o->recs + o->rec_head,
			    (o->n_recs - o->rec_head) * sizeof(*o->recs));
			o->n_recs -= o->rec_head;
			o->rec_head = 0;
		}
		if (o->n_recs == o->cap_recs) {
			o->cap_recs = o->cap_recs ? o->cap_recs * 2 : 256;
			o->recs = xreallocarray(o->recs, o->cap_recs, sizeof(*o->recs));
		}
	}
	r = &o->recs[o->n_recs++];
	r->first_seq = first;
	r->last_seq = last;
	r->added_at_us = added_at;
	r->off = batch_off;
	r->len = (uint32_t)len;
	r->seg = (uint32_t)(seg->id - o->segs[0].id);
	o->held += last - first + 1;
}

static void
spool_pop_rec(struct spool *o)
{
	struct spool_rec *r = &o->recs[o->rec_head++];

	o->held -= r->last_seq - r->first_seq + 1;
	if (o->rec_head == o->n_recs)
		o->rec_head = o->n_recs = 0;
}

static void
spool_fsync_dir(struct spool *o)
{
	if (fsync(o->dir_fd) < 0)
		fatal("could not fsync spool directory \"%s\"", o->dir);
}

static void
spool_seg_path(const struct spool *o, uint64_t name_seq, char *path, size_t size)
{
	snprintf(path, size, "%s/%0*" PRIu64 ".seg", o->dir, SPOOL_SEG_NAME_DIGITS, name_seq);
}

// Deletes the oldest segment, with its records.
static void
spool_drop_seg(struct spool *o)
{
	struct spool_seg *seg = &o->segs[0];
	char path[4096];

	while (o->rec_head < o->n_recs && o->recs[o->rec_head].seg == 0)
		spool_pop_rec(o);
	// Record segment numbers are relative to segs[0]: shift them.
	for (size_t i = o->rec_head; i < o->n_recs; i++)
		o->recs[i].seg--;
	spool_seg_path(o, seg->name_seq, path, sizeof(path));
	if (unlink(path) < 0 && errno != ENOENT)
		fatal("could not delete spool segment \"%s\"", path);
	close(seg->fd);
	o->bytes -= seg->size;
	memmove(o->segs, o->segs + 1, (o->n_segs - 1) * sizeof(*o->segs));
	o->n_segs--;
}

static struct spool_seg *
spool_add_seg(struct spool *o, uint64_t name_seq, int fd, uint64_t size)
{
	struct spool_seg *seg;

	if (o->n_segs == o->cap_segs) {
		o->cap_segs = o->cap_segs ? o->cap_segs * 2 : 16;
		o->segs = xreallocarray(o->segs, o->cap_segs, sizeof(*o->segs));
	}
	seg = &o->segs[o->n_segs++];
	seg->id = o->next_seg_id++;
	seg->name_seq = name_seq;
	seg->last_seq = 0;
	seg->size = size;
	seg->fd = fd;
	o->bytes += size;
	return seg;
}

// ---- open: epoch, lock, segments -------------------------------------------

static int
spool_read_epoch(struct spool *o, bool have_segments, char *err, size_t errlen)
{
	char text[32], *end;
	ssize_t n;
	int fd;

	fd = openat(o->dir_fd, "epoch", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, text, sizeof(text) - 1);
		close(fd);
		if (n < 0) {
			snprintf(err, errlen, "could not read \"%s/epoch\": %s", o->dir,
			    strerror(errno));
			return -1;
		}
		text[n] = '\0';
		errno = 0;
		o->epoch = strtoull(text, &end, 10);
		if (errno != 0 || end == text || (*end != '\n' && *end != '\0') || o->epoch == 0 ||
		    text[0] == '-') {
			snprintf(err, errlen, "\"%s/epoch\" is corrupt: expected a decimal number",
			    o->dir);
			return -1;
		}
		return 0;
	}
	if (errno != ENOENT) {
		snprintf(err, errlen, "could not open \"%s/epoch\": %s", o->dir, strerror(errno));
		return -1;
	}
	if (have_segments) {
		// Resending those seqs under a new epoch would store them twice.
		snprintf(err, errlen,
		    "spool \"%s\" has segments but no epoch file; move the "
		    "segments away to start a new spool",
		    o->dir);
		return -1;
	}
	while (o->epoch == 0 || o->epoch > INT64_MAX)
		if (getrandom(&o->epoch, sizeof(o->epoch), 0) != sizeof(o->epoch)) {
			snprintf(err, errlen, "could not read random bytes for the epoch: %s",
			    strerror(errno));
			return -1;
		}
	n = snprintf(text, sizeof(text), "%" PRIu64 "\n", o->epoch);
	if (atomic_file_write(o->dir_fd, "epoch", text, (size_t)n, NULL) < 0) {
		snprintf(err, errlen, "could not write \"%s/epoch\": %s", o->dir, strerror(errno));
		return -1;
	}
	log_info("spool \"%s\": new epoch %" PRIu64, o->dir, o->epoch);
	return 0;
}

static int
spool_seg_name(const char *name, uint64_t *seq)
{
	size_t i;

	for (i = 0; i < SPOOL_SEG_NAME_DIGITS; i++)
		if (name[i] < '0' || name[i] > '9')
			return -1;
	if (strcmp(name + i, ".seg") != 0)
		return -1;
	*seq = strtoull(name, NULL, 10);
	return *seq > 0 ? 0 : -1;
}

static int
spool_cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

// Names of the segment files, sorted; the caller frees *out.
static int
spool_list(struct spool *o, uint64_t **out, size_t *n, char *err, size_t errlen)
{
	DIR *d;
	struct dirent *de;
	size_t cap = 0;
	int fd = dup(o->dir_fd);

	*out = NULL;
	*n = 0;
	if (fd < 0 || (d = fdopendir(fd)) == NULL) {
		snprintf(err, errlen, "could not list \"%s\": %s", o->dir, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		uint64_t seq;

		if (spool_seg_name(de->d_name, &seq) < 0)
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			*out = xreallocarray(*out, cap, sizeof(**out));
		}
		(*out)[(*n)++] = seq;
	}
	closedir(d);
	// An empty spool has no array: qsort's pointer must not be NULL.
	if (*n > 0)
		qsort(*out, *n, sizeof(**out), spool_cmp_u64);
	return 0;
}

struct spool_load_ctx {
	struct spool *o;
	struct spool_seg *seg;
	size_t bad_off; // first record out of seq order, or SIZE_MAX
};

static void
spool_on_loaded(uint64_t first, uint64_t last, int64_t added_at, const uint8_t *batch, size_t len,
    size_t rec_off, void *arg)
{
	struct spool_load_ctx *c = arg;
	struct spool *o = c->o;

	if (c->bad_off != SIZE_MAX)
		return;
	// Seqs only grow across the spool: anything else is damage.
	if (first < o->next_seq || first < c->seg->name_seq) {
		c->bad_off = rec_off;
		return;
	}
	spool_index(o, c->seg, first, last, added_at, rec_off + SPOOL_REC_HEADER + SPOOL_REC_META,
	    len);
	c->seg->last_seq = last;
	o->next_seq = last + 1;
}

// Indexes one segment; truncates it after its last valid record.
static int
spool_load_seg(struct spool *o, uint64_t name_seq, char *err, size_t errlen)
{
	struct spool_load_ctx c = { o, NULL, SIZE_MAX };
	char path[4096];
	struct stat st;
	size_t valid = 0;
	void *map = NULL;
	int fd;

	spool_seg_path(o, name_seq, path, sizeof(path));
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		snprintf(err, errlen, "could not open spool segment \"%s\": %s", path,
		    strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	c.seg = spool_add_seg(o, name_seq, fd, (uint64_t)st.st_size);
	if (name_seq > o->next_seq)
		o->next_seq = name_seq;
	if (st.st_size > 0) {
		map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (map == MAP_FAILED) {
			snprintf(err, errlen, "could not map spool segment \"%s\": %s", path,
			    strerror(errno));
			return -1;
		}
		valid = spool_segment_scan(map, (size_t)st.st_size, spool_on_loaded, &c);
		munmap(map, (size_t)st.st_size);
	}
	if (c.bad_off < valid)
		valid = c.bad_off;
	if (valid < (uint64_t)st.st_size) {
		log_warnx("spool segment \"%s\": truncated a torn or corrupt tail at byte %zu "
			  "(%llu bytes dropped)",
		    path, valid, (unsigned long long)((uint64_t)st.st_size - valid));
		if (ftruncate(fd, (off_t)valid) < 0 || fsync(fd) < 0) {
			snprintf(err, errlen, "could not truncate spool segment \"%s\": %s", path,
			    strerror(errno));
			return -1;
		}
		o->bytes -= (uint64_t)st.st_size - valid;
		c.seg->size = valid;
	}
	return 0;
}

struct spool *
spool_open(const char *dir, uint64_t max_bytes, enum spool_sync sync, char *err, size_t errlen)
{
	struct spool *o = xcalloc(1, sizeof(*o));
	uint64_t *names = NULL;
	size_t n_names = 0;

	o->dir = xstrdup(dir);
	o->dir_fd = o->lock_fd = -1;
	o->sync = sync;
	o->max_bytes = max_bytes;
	o->seg_max = max_bytes / 16;
	if (o->seg_max < SPOOL_SEG_MIN)
		o->seg_max = SPOOL_SEG_MIN;
	if (o->seg_max > SPOOL_SEG_MAX)
		o->seg_max = SPOOL_SEG_MAX;
	o->next_seq = 1;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "could not create spool directory \"%s\": %s", dir,
		    strerror(errno));
		goto fail;
	}
	o->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (o->dir_fd < 0) {
		snprintf(err, errlen, "could not open spool directory \"%s\": %s", dir,
		    strerror(errno));
		goto fail;
	}
	o->lock_fd = openat(o->dir_fd, "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (o->lock_fd < 0 || flock(o->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		snprintf(err, errlen,
		    errno == EWOULDBLOCK ? "spool \"%s\" is in use by another agent process" :
					   "could not lock spool \"%s\": %s",
		    dir, strerror(errno));
		goto fail;
	}
	if (spool_list(o, &names, &n_names, err, errlen) < 0 ||
	    spool_read_epoch(o, n_names > 0, err, errlen) < 0)
		goto fail;
	for (size_t i = 0; i < n_names; i++)
		if (spool_load_seg(o, names[i], err, errlen) < 0)
			goto fail;
	free(names);
	// Segments left empty by a crash, or emptied by a truncation, hold
	// nothing; only the newest may still be written to.
	while (o->n_segs > 1 && o->segs[0].last_seq == 0)
		spool_drop_seg(o);
	if (o->n_recs > 0)
		log_info("spool \"%s\": epoch %" PRIu64 ", %" PRIu64 " results unacked "
			 "(seqs %" PRIu64 "..%" PRIu64 "), next seq %" PRIu64,
		    dir, o->epoch, spool_depth(o), spool_oldest_seq(o), spool_newest_seq(o),
		    o->next_seq);
	else
		log_info("spool \"%s\": epoch %" PRIu64 ", 0 results unacked, next seq %" PRIu64,
		    dir, o->epoch, o->next_seq);
	return o;
fail:
	free(names);
	spool_free(o);
	return NULL;
}

void
spool_free(struct spool *o)
{
	if (o == NULL)
		return;
	for (size_t i = 0; i < o->n_segs; i++)
		close(o->segs[i].fd);
	if (o->lock_fd >= 0)
		close(o->lock_fd);
	if (o->dir_fd >= 0)
		close(o->dir_fd);
	free(o->segs);
	free(o->recs);
	free(o->dir);
	free(o);
}

uint64_t
spool_epoch(const struct spool *o)
{
	return o->epoch;
}

uint64_t
spool_next_seq(const struct spool *o)
{
	return o->next_seq;
}

// ---- append, ack -----------------------------------------------------------

static void
spool_new_seg(struct spool *o, uint64_t name_seq)
{
	char path[4096];
	int fd;

	spool_seg_path(o, name_seq, path, sizeof(path));
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		fatal("could not create spool segment \"%s\"", path);
	spool_add_seg(o, name_seq, fd, 0);
	spool_fsync_dir(o);
}

// Deletes the oldest segments until `need` more bytes fit, never the one
// being written.  What they held unacked is lost: log it and count it.
static void
spool_make_room(struct spool *o, uint64_t need)
{
	while (o->bytes + need > o->max_bytes && o->n_segs > 1) {
		const struct spool_seg *seg = &o->segs[0];
		uint64_t lo = o->acked_seq + 1;

		if (o->rec_head < o->n_recs && o->recs[o->rec_head].seg == 0 &&
		    o->recs[o->rec_head].first_seq > lo)
			lo = o->recs[o->rec_head].first_seq;
		if (seg->last_seq >= lo) {
			log_warnx(
			    "spool \"%s\" is full (%llu bytes held, %llu to add, limit %llu): "
			    "dropping unacked results %llu..%llu",
			    o->dir, (unsigned long long)o->bytes, (unsigned long long)need,
			    (unsigned long long)o->max_bytes, (unsigned long long)lo,
			    (unsigned long long)seg->last_seq);
			o->dropped += seg->last_seq - lo + 1;
		}
		spool_drop_seg(o);
	}
}

// Moves the two-part vector past n written bytes.
static void
spool_iov_advance(struct iovec iov[2], size_t n)
{
	for (int i = 0; i < 2; i++) {
		size_t step = n < iov[i].iov_len ? n : iov[i].iov_len;

		iov[i].iov_base = (uint8_t *)iov[i].iov_base + step;
		iov[i].iov_len -= step;
		n -= step;
	}
}

void
spool_append(struct spool *o, uint64_t first_seq, uint64_t last_seq, const uint8_t *data,
    size_t len, int64_t now_wall_us)
{
	uint8_t head[SPOOL_REC_HEADER + SPOOL_REC_META];
	struct iovec iov[2] = { { head, sizeof(head) }, { (void *)data, len } };
	uint64_t need = sizeof(head) + len;
	struct spool_seg *seg = spool_active(o);
	ssize_t n;

	if (first_seq < o->next_seq || first_seq > last_seq ||
	    len > SPOOL_PAYLOAD_MAX - SPOOL_REC_META)
		fatalx("spool \"%s\": record %llu..%llu (%zu bytes) out of order or too big",
		    o->dir, (unsigned long long)first_seq, (unsigned long long)last_seq, len);
	// A full or overflowing segment is closed so that the oldest can go.
	if (seg == NULL ||
	    (seg->size > 0 && (seg->size + need > o->seg_max || o->bytes + need > o->max_bytes)))
		spool_new_seg(o, first_seq);
	spool_make_room(o, need);
	seg = spool_active(o);

	spool_put32(head, (uint32_t)(SPOOL_REC_META + len));
	spool_put64(head + SPOOL_REC_HEADER, first_seq);
	spool_put64(head + SPOOL_REC_HEADER + 8, last_seq);
	spool_put64(head + SPOOL_REC_HEADER + 16, (uint64_t)now_wall_us);
	spool_put32(head + 4,
	    crc32c(crc32c(0, head + SPOOL_REC_HEADER, SPOOL_REC_META), data, len));
	// A short write (a filling disk) is continued, so that the error that
	// stops it (ENOSPC, EIO) is the one reported.  The agent exits: its
	// results may not be kept in memory only.  What was written of the
	// record is a torn tail, truncated at the next start.
	for (size_t done = 0; done < need; done += (size_t)n) {
		do
			n = pwritev(seg->fd, iov, 2, (off_t)(seg->size + done));
		while (n < 0 && errno == EINTR);
		if (n <= 0) {
			if (n == 0)
				errno = ENOSPC;
			fatal("cannot write to spool \"%s\" (%zu of %llu bytes written; results "
			      "%llu..%llu would be lost)",
			    o->dir, done, (unsigned long long)need, (unsigned long long)first_seq,
			    (unsigned long long)last_seq);
		}
		spool_iov_advance(iov, (size_t)n);
	}
	if (o->sync == SPOOL_SYNC_BATCH && fdatasync(seg->fd) < 0)
		fatal("could not fsync spool \"%s\" (results %llu..%llu would not be durable)",
		    o->dir, (unsigned long long)first_seq, (unsigned long long)last_seq);
	spool_index(o, seg, first_seq, last_seq, now_wall_us, seg->size + sizeof(head), len);
	seg->size += need;
	seg->last_seq = last_seq;
	o->bytes += need;
	o->next_seq = last_seq + 1;
}

void
spool_ack(struct spool *o, uint64_t acked_seq)
{
	if (acked_seq <= o->acked_seq)
		return;
	o->acked_seq = acked_seq;
	while (o->rec_head < o->n_recs && o->recs[o->rec_head].last_seq <= acked_seq)
		spool_pop_rec(o);
	while (o->n_segs > 1 && o->segs[0].last_seq <= acked_seq)
		spool_drop_seg(o);
}

// ---- reading ---------------------------------------------------------------

const struct spool_rec *
spool_after(const struct spool *o, uint64_t seq)
{
	size_t lo = o->rec_head, hi = o->n_recs;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (o->recs[mid].last_seq <= seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < o->n_recs ? &o->recs[lo] : NULL;
}

const struct spool_rec *
spool_next(const struct spool *o, const struct spool_rec *rec)
{
	return rec + 1 < o->recs + o->n_recs ? rec + 1 : NULL;
}

void
spool_load(struct spool *o, const struct spool_rec *rec, struct buf *out)
{
	const struct spool_seg *seg = &o->segs[rec->seg];
	ssize_t n;

	buf_reset(out);
	buf_reserve(out, rec->len);
	n = pread(seg->fd, out->data, rec->len, (off_t)rec->off);
	if (n < 0)
		fatal("could not read spool segment %llu of \"%s\"",
		    (unsigned long long)seg->name_seq, o->dir);
	if ((size_t)n != rec->len)
		fatalx("spool segment %llu of \"%s\" is shorter than its index: changed behind "
		       "the agent's back?",
		    (unsigned long long)seg->name_seq, o->dir);
	out->len = rec->len;
}

uint64_t
spool_bytes(const struct spool *o)
{
	return o->bytes;
}

uint64_t
spool_depth(const struct spool *o)
{
	const struct spool_rec *head;

	if (o->rec_head == o->n_recs)
		return 0;
	head = &o->recs[o->rec_head];
	// The head record may be acked in part.
	return head->first_seq <= o->acked_seq ? o->held - (o->acked_seq - head->first_seq + 1) :
						 o->held;
}

int64_t
spool_oldest_added(const struct spool *o)
{
	return o->rec_head < o->n_recs ? o->recs[o->rec_head].added_at_us : 0;
}

uint64_t
spool_oldest_seq(const struct spool *o)
{
	return o->rec_head < o->n_recs ? o->recs[o->rec_head].first_seq : 0;
}

uint64_t
spool_newest_seq(const struct spool *o)
{
	return o->rec_head < o->n_recs ? o->recs[o->n_recs - 1].last_seq : 0;
}

uint64_t
spool_dropped(const struct spool *o)
{
	return o->dropped;
}
