// SPDX-License-Identifier: Apache-2.0
//
// Agent registry; see agents.h.  A plain array: a deployment has tens of
// agents, not millions, and the API lists them all anyway.
#include "agents.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xmalloc.h"

struct agents {
	struct agent_info *v;
	size_t n, cap;
};

struct agents *
agents_new(void)
{
	return xcalloc(1, sizeof(struct agents));
}

void
agents_free(struct agents *a)
{
	if (a == NULL)
		return;
	free(a->v);
	free(a);
}

size_t
agents_upsert(struct agents *a, int id, const char *name, const char *region, const char *version)
{
	struct agent_info *ai;
	size_t i;

	for (i = 0; i < a->n; i++)
		if (a->v[i].id == id)
			break;
	if (i == a->n) {
		if (a->n == a->cap) {
			a->cap = a->cap ? a->cap * 2 : 16;
			a->v = xreallocarray(a->v, a->cap, sizeof(*a->v));
		}
		memset(&a->v[i], 0, sizeof(a->v[i]));
		a->v[i].id = id;
		a->n++;
	}
	ai = &a->v[i];
	snprintf(ai->name, sizeof(ai->name), "%s", name);
	snprintf(ai->region, sizeof(ai->region), "%s", region);
	snprintf(ai->version, sizeof(ai->version), "%s", version);
	return i;
}

struct agent_info *
agents_get(struct agents *a, size_t slot)
{
	return slot < a->n ? &a->v[slot] : NULL;
}

size_t
agents_count(const struct agents *a)
{
	return a->n;
}

bool
agents_set_clock_offset(struct agent_info *ai, int64_t offset_us)
{
	bool off = llabs(offset_us) >= AGENTS_CLOCK_OFF_US;
	bool changed = off != ai->clock_off;

	ai->clock_offset_us = offset_us;
	ai->clock_off = off;
	return changed;
}

int64_t
agents_clock_correction(const struct agent_info *ai)
{
	return ai->clock_off ? ai->clock_offset_us : 0;
}

#define AGENTS_SILENT_US (15LL * 1000000)

bool
agents_connected(const struct agent_info *ai, int64_t now)
{
	return ai->connected && now - ai->last_seen < AGENTS_SILENT_US;
}
