// SPDX-License-Identifier: Apache-2.0
//
// Fixed-grid probe scheduler on a binary min-heap; see sched.h.  Must never
// read a clock or do I/O.
#include "sched.h"

#include <stdlib.h>

#include "xmalloc.h"

struct sched_entry {
	int64_t due_us;
	int64_t interval_us;
	int64_t phase_us;
	size_t id;
};

struct sched {
	struct sched_entry *heap;
	size_t count;
	size_t cap;
};

struct sched *
sched_new(void)
{
	return xcalloc(1, sizeof(struct sched));
}

void
sched_free(struct sched *s)
{
	if (s == NULL)
		return;
	free(s->heap);
	free(s);
}

void
sched_clear(struct sched *s)
{
	s->count = 0;
}

size_t
sched_count(const struct sched *s)
{
	return s->count;
}

// FNV-1a: stable across runs and machines, so a target keeps its phase
// when an agent restarts or its config is reloaded.
int64_t
sched_phase(const char *key, int64_t interval_us)
{
	uint64_t h = 14695981039346656037ULL; // the FNV-1a 64-bit offset basis

	for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
		h ^= *p;
		h *= 1099511628211ULL;
	}
	return interval_us > 0 ? (int64_t)(h % (uint64_t)interval_us) : 0;
}

// First grid point phase + k * interval that is >= at.
static int64_t
sched_grid_at_or_after(int64_t at, int64_t phase, int64_t interval)
{
	int64_t k = (at - phase) / interval;
	int64_t t = phase + k * interval;

	while (t < at)
		t += interval;
	while (t - interval >= at)
		t -= interval;
	return t;
}

static void
sched_swap(struct sched_entry *a, struct sched_entry *b)
{
	struct sched_entry t = *a;

	*a = *b;
	*b = t;
}

static void
sched_sift_up(struct sched *s, size_t i)
{
	while (i > 0) {
		size_t parent = (i - 1) / 2;

		if (s->heap[parent].due_us <= s->heap[i].due_us)
			break;
		sched_swap(&s->heap[parent], &s->heap[i]);
		i = parent;
	}
}

static void
sched_sift_down(struct sched *s, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, min = i;

		if (l < s->count && s->heap[l].due_us < s->heap[min].due_us)
			min = l;
		if (r < s->count && s->heap[r].due_us < s->heap[min].due_us)
			min = r;
		if (min == i)
			return;
		sched_swap(&s->heap[min], &s->heap[i]);
		i = min;
	}
}

int64_t
sched_add(struct sched *s, size_t id, const char *key, int64_t interval_us, int64_t now_us)
{
	struct sched_entry *e;
	int64_t due_us;

	if (interval_us <= 0)
		interval_us = 1;
	if (s->count == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 64;
		s->heap = xreallocarray(s->heap, s->cap, sizeof(*s->heap));
	}
	e = &s->heap[s->count];
	e->id = id;
	e->interval_us = interval_us;
	e->phase_us = sched_phase(key, interval_us);
	e->due_us = due_us = sched_grid_at_or_after(now_us, e->phase_us, interval_us);
	s->count++;
	// Not e->due_us: sifting up may move another entry into that slot.
	sched_sift_up(s, s->count - 1);
	return due_us;
}

int64_t
sched_next_due(const struct sched *s)
{
	return s->count > 0 ? s->heap[0].due_us : INT64_MAX;
}

int
sched_pop_due(struct sched *s, int64_t now_us, size_t *id, int64_t *due_us)
{
	struct sched_entry *top;

	if (s->count == 0 || s->heap[0].due_us > now_us)
		return 0;
	top = &s->heap[0];
	*id = top->id;
	*due_us = top->due_us;
	top->due_us = sched_grid_at_or_after(now_us + 1, top->phase_us, top->interval_us);
	sched_sift_down(s, 0);
	return 1;
}
