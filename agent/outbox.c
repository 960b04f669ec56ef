// SPDX-License-Identifier: Apache-2.0
//
// In-memory outbox: a FIFO of encoded batches; see outbox.h.  Records are in
// seq order because the agent appends them in seq order.
#include "outbox.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "xmalloc.h"

struct outbox {
	struct outbox_rec *head;
	struct outbox_rec *tail;
	uint64_t bytes;
	uint64_t depth;
	uint64_t max_bytes;
	outbox_gap_cb gap;
	void *gap_arg;
};

struct outbox *
outbox_new(uint64_t max_bytes, outbox_gap_cb gap, void *arg)
{
	struct outbox *o = xcalloc(1, sizeof(*o));

	o->max_bytes = max_bytes;
	o->gap = gap;
	o->gap_arg = arg;
	return o;
}

static void
outbox_pop(struct outbox *o)
{
	struct outbox_rec *r = o->head;

	o->head = r->next;
	if (o->head == NULL)
		o->tail = NULL;
	o->bytes -= r->len;
	o->depth -= r->last_seq - r->first_seq + 1;
	free(r);
}

void
outbox_free(struct outbox *o)
{
	if (o == NULL)
		return;
	while (o->head != NULL)
		outbox_pop(o);
	free(o);
}

void
outbox_append(struct outbox *o, uint64_t first_seq, uint64_t last_seq, const uint8_t *data,
    size_t len, int64_t now_mono_us)
{
	struct outbox_rec *r = xmalloc(sizeof(*r) + len);

	r->first_seq = first_seq;
	r->last_seq = last_seq;
	r->added_mono_us = now_mono_us;
	r->len = len;
	r->next = NULL;
	memcpy(r->data, data, len);
	if (o->tail != NULL)
		o->tail->next = r;
	else
		o->head = r;
	o->tail = r;
	o->bytes += len;
	o->depth += last_seq - first_seq + 1;
	// Never drop the record just added: a single batch may exceed a tiny cap.
	while (o->bytes > o->max_bytes && o->head != r) {
		uint64_t lo = o->head->first_seq, hi = o->head->last_seq;

		log_warnx("outbox full (%llu bytes, limit %llu): dropping results %llu..%llu",
		    (unsigned long long)o->bytes, (unsigned long long)o->max_bytes,
		    (unsigned long long)lo, (unsigned long long)hi);
		outbox_pop(o);
		if (o->gap != NULL)
			o->gap(lo, hi, o->gap_arg);
	}
}

void
outbox_ack(struct outbox *o, uint64_t acked_seq)
{
	while (o->head != NULL && o->head->last_seq <= acked_seq)
		outbox_pop(o);
}

const struct outbox_rec *
outbox_after(const struct outbox *o, uint64_t seq)
{
	const struct outbox_rec *r;

	for (r = o->head; r != NULL && r->last_seq <= seq; r = r->next)
		;
	return r;
}

uint64_t
outbox_bytes(const struct outbox *o)
{
	return o->bytes;
}

uint64_t
outbox_depth(const struct outbox *o)
{
	return o->depth;
}

int64_t
outbox_oldest_mono(const struct outbox *o)
{
	return o->head != NULL ? o->head->added_mono_us : 0;
}

uint64_t
outbox_oldest_seq(const struct outbox *o)
{
	return o->head != NULL ? o->head->first_seq : 0;
}

uint64_t
outbox_newest_seq(const struct outbox *o)
{
	return o->tail != NULL ? o->tail->last_seq : 0;
}
