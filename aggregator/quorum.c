// SPDX-License-Identifier: Apache-2.0
//
// Quorum logic; see quorum.h.  Must stay pure: no I/O, no clock, no
// allocation, no globals, so that unit tests can enumerate every case and
// `vantagectl replay` can rerun history through exactly this code.
#include "quorum.h"

bool
quorum_agent_result(struct quorum_agent *a, bool up, int64_t started_at, unsigned confirm,
    int64_t confirm_span_us)
{
	if (a->last_at != 0 && started_at <= a->last_at)
		return false;
	a->last_at = started_at;
	if (up) {
		a->fails = 0;
		a->has_vote = true;
		a->vote = VOTE_UP;
		return true;
	}
	if (a->fails == 0)
		a->streak_start = started_at;
	a->fails++;
	// Both, so that neither a quick run of retries inside a short blip
	// nor a single long-spaced failure flips the vote.
	if (a->fails >= (confirm > 0 ? confirm : 1) &&
	    started_at - a->streak_start >= confirm_span_us) {
		if (!a->has_vote || a->vote != VOTE_DOWN)
			a->down_since = a->streak_start;
		a->has_vote = true;
		a->vote = VOTE_DOWN;
	}
	return true;
}

enum quorum_vote
quorum_agent_vote(const struct quorum_agent *a, const struct quorum_agent_ctx *c)
{
	if (c->impaired || !c->connected || !a->has_vote)
		return VOTE_ABSTAIN;
	// Stale: more than 2.5 intervals since the newest result.
	if ((c->now - a->last_at) * 2 > c->interval_us * 5)
		return VOTE_ABSTAIN;
	return a->vote;
}

enum quorum_vote
quorum_region_vote(const enum quorum_vote *agent_votes, size_t n)
{
	size_t up = 0, down = 0;

	for (size_t i = 0; i < n; i++) {
		if (agent_votes[i] == VOTE_UP)
			up++;
		else if (agent_votes[i] == VOTE_DOWN)
			down++;
	}
	if (up > down)
		return VOTE_UP;
	if (down > up)
		return VOTE_DOWN;
	return VOTE_ABSTAIN;
}

unsigned
quorum_needed(struct quorum_need need, size_t n_regions)
{
	unsigned n = (unsigned)n_regions, k;

	switch (need.mode) {
	case QUORUM_COUNT:
		k = need.value;
		break;
	case QUORUM_PERCENT:
		k = (n * need.value + 99) / 100;
		break;
	case QUORUM_MAJORITY:
	default:
		k = n / 2 + 1;
		break;
	}
	if (k > n)
		k = n;
	return k > 0 ? k : 1;
}

static unsigned
quorum_distinct_down_domains(const struct quorum_region *regions, size_t n)
{
	unsigned distinct = 0;

	for (size_t i = 0; i < n; i++) {
		bool seen = false;

		if (regions[i].vote != VOTE_DOWN)
			continue;
		for (size_t j = 0; j < i && !seen; j++)
			seen = regions[j].vote == VOTE_DOWN &&
			    regions[j].domain == regions[i].domain;
		if (!seen)
			distinct++;
	}
	return distinct;
}

// Entering DOWN: an outage soon after the last one ended continues it.
static void
quorum_enter_down(struct quorum_target *t, const struct quorum_params *p, int64_t now,
    struct quorum_outcome *out)
{
	if (t->left_down_at != 0 && p->reopen_window_us > 0 &&
	    now - t->left_down_at < p->reopen_window_us) {
		out->reopened = true;
		out->reopened_after_us = now - t->left_down_at;
		// Once flapping, a reopening pages again only if the pager was
		// told the target had recovered.
		out->page_reopen = !t->flapping || !t->recovery_owed;
		t->flapping = true;
	} else {
		t->flapping = false;
	}
	t->recovery_owed = false;
}

// Outside DOWN: the last outage's recovery is announced once it held.
static void
quorum_check_settled(struct quorum_target *t, const struct quorum_params *p, int64_t now,
    struct quorum_outcome *out)
{
	if (t->recovery_owed && now - t->left_down_at >= p->settle_for_us) {
		t->recovery_owed = false;
		t->flapping = false; // it has settled
		out->settled = true;
	}
}

void
quorum_eval(struct quorum_target *t, const struct quorum_params *p,
    const struct quorum_region *regions, size_t n_regions, int64_t now, bool new_data,
    struct quorum_outcome *out)
{
	unsigned need = quorum_needed(p->quorum, n_regions);
	unsigned min_voters = p->min_voters > 0 ? p->min_voters : need;
	unsigned recover_for = p->recover_for > 0 ? p->recover_for : 2;
	enum quorum_state candidate;
	int64_t newest_up = 0;

	*out = (struct quorum_outcome){ .previous = t->state, .needed = need };
	for (size_t i = 0; i < n_regions; i++) {
		switch (regions[i].vote) {
		case VOTE_UP:
			out->regions_up++;
			if (regions[i].up_since > newest_up)
				newest_up = regions[i].up_since;
			break;
		case VOTE_DOWN:
			out->regions_down++;
			if (out->started_at == 0 || regions[i].down_since < out->started_at)
				out->started_at = regions[i].down_since;
			break;
		default:
			out->regions_abstain++;
		}
	}

	if (out->regions_up + out->regions_down < min_voters)
		candidate = QSTATE_UNKNOWN;
	else if (out->regions_down >= need &&
	    (p->distinct_domains <= 1 ||
		quorum_distinct_down_domains(regions, n_regions) >= p->distinct_domains))
		candidate = QSTATE_DOWN;
	else if (out->regions_down > 0)
		candidate = QSTATE_DEGRADED;
	else
		candidate = QSTATE_UP;
	out->blind = candidate == QSTATE_UNKNOWN;

	if (t->state == QSTATE_DOWN && candidate != QSTATE_DOWN) {
		// Leaving an outage is stricter than entering one.
		if (out->regions_up >= quorum_needed(p->recover, n_regions)) {
			if (new_data) {
				if (t->recover_streak == 0)
					t->recover_since = newest_up;
				t->recover_streak++;
			}
			if (t->recover_streak >= recover_for) {
				out->resolved_at = t->recover_since;
				t->state = candidate;
				t->recover_streak = 0;
			}
		} else {
			t->recover_streak = 0;
		}
	} else {
		if (candidate == QSTATE_DOWN && t->state != QSTATE_DOWN)
			quorum_enter_down(t, p, now, out);
		t->recover_streak = 0;
		t->state = candidate;
	}
	if (out->previous == QSTATE_DOWN && t->state != QSTATE_DOWN) {
		t->left_down_at = now;
		t->recovery_owed = true;
	}
	if (t->state != QSTATE_DOWN)
		quorum_check_settled(t, p, now, out);
	out->state = t->state;
	out->changed = out->state != out->previous;
	out->flapping = t->flapping;
	// A regional incident starts at its regions' first failure too.
	if (out->regions_down == 0)
		out->started_at = 0;
}

void
quorum_restore_open(struct quorum_target *t, bool flapping)
{
	t->state = QSTATE_DOWN;
	t->recover_streak = 0;
	t->flapping = flapping;
	t->recovery_owed = false;
}

void
quorum_restore_resolved(struct quorum_target *t, int64_t left_down_at, bool flapping,
    bool recovery_owed)
{
	if (t->state == QSTATE_DOWN)
		return; // an open outage of the target says more
	t->left_down_at = left_down_at;
	t->flapping = flapping;
	t->recovery_owed = recovery_owed;
}

const char *
quorum_state_name(enum quorum_state s)
{
	switch (s) {
	case QSTATE_UP:
		return "up";
	case QSTATE_DEGRADED:
		return "degraded";
	case QSTATE_DOWN:
		return "down";
	default:
		return "unknown";
	}
}

const char *
quorum_vote_name(enum quorum_vote v)
{
	switch (v) {
	case VOTE_UP:
		return "up";
	case VOTE_DOWN:
		return "down";
	default:
		return "abstain";
	}
}
