// SPDX-License-Identifier: Apache-2.0
//
// Unit tests of aggregator/quorum.c.  The exhaustive tables walk every
// combination of UP / DOWN / ABSTAIN / STALE for 3 and 5 regions through
// the whole pipeline (results -> agent vote -> region vote -> target) and
// compare with an oracle written from DESIGN.md §6, not from the code.
// The scenario tests cover confirm and confirm_span (blips), hysteresis,
// flapping (reopen_window, settle_for, restore), distinct_domains,
// min_voters, multi-agent regions and late data.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "quorum.h"

#define S 1000000LL // one second in µs
#define INTERVAL (30 * S)
#define T0 (1790000000LL * S)

enum cell { C_UP, C_DOWN, C_ABSTAIN, C_STALE_UP, C_STALE_DOWN, C_COUNT };

static const struct quorum_params majority = {
	.quorum = { QUORUM_MAJORITY, 0 },
	.recover = { QUORUM_MAJORITY, 0 },
};

// Gives agent a a settled vote: `confirm` results of the outcome at `at`.
static void
settle(struct quorum_agent *a, bool up, int64_t at, unsigned confirm)
{
	for (unsigned i = 0; i < confirm; i++)
		assert_true(
		    quorum_agent_result(a, up, at - (int64_t)(confirm - 1 - i) * S, confirm, 0));
}

static struct quorum_agent_ctx
ctx_at(int64_t now)
{
	return (struct quorum_agent_ctx){ .connected = true, .now = now, .interval_us = INTERVAL };
}

// Builds a one-agent region for a cell of the table.
static struct quorum_region
region_of(enum cell c, int64_t now, int domain)
{
	struct quorum_agent a = { 0 };
	struct quorum_agent_ctx ctx = ctx_at(now);
	enum quorum_vote v;

	switch (c) {
	case C_UP:
		settle(&a, true, now - 5 * S, 2);
		break;
	case C_DOWN:
		settle(&a, false, now - 5 * S, 2);
		break;
	case C_ABSTAIN:
		settle(&a, false, now - 5 * S, 2);
		ctx.impaired = true;
		break;
	case C_STALE_UP:
		settle(&a, true, now - 3 * INTERVAL, 2);
		break;
	case C_STALE_DOWN:
		settle(&a, false, now - 3 * INTERVAL, 2);
		break;
	default:
		break;
	}
	v = quorum_agent_vote(&a, &ctx);
	enum quorum_vote votes[1] = { v };
	return (struct quorum_region){ .vote = quorum_region_vote(votes, 1),
		.domain = domain,
		.down_since = a.down_since,
		.up_since = a.last_at };
}

// The oracle: DESIGN.md §6 with quorum = majority = min_voters.
static enum quorum_state
oracle(const enum cell *cells, size_t n)
{
	unsigned up = 0, down = 0, need = (unsigned)n / 2 + 1;

	for (size_t i = 0; i < n; i++) {
		if (cells[i] == C_UP)
			up++;
		else if (cells[i] == C_DOWN)
			down++;
	}
	if (up + down < need)
		return QSTATE_UNKNOWN;
	if (down >= need)
		return QSTATE_DOWN;
	return down > 0 ? QSTATE_DEGRADED : QSTATE_UP;
}

static void
exhaustive(size_t n)
{
	size_t combos = 1, checked = 0, by_state[4] = { 0 };
	enum cell cells[8];
	struct quorum_region regions[8];
	int64_t now = T0;

	for (size_t i = 0; i < n; i++)
		combos *= C_COUNT;
	for (size_t code = 0; code < combos; code++) {
		struct quorum_target t = { 0 };
		struct quorum_outcome out;
		size_t rest = code;

		for (size_t i = 0; i < n; i++) {
			cells[i] = (enum cell)(rest % C_COUNT);
			rest /= C_COUNT;
			regions[i] = region_of(cells[i], now, (int)i);
		}
		quorum_eval(&t, &majority, regions, n, now, true, &out);
		if (out.state != oracle(cells, n)) {
			char desc[64];

			for (size_t i = 0; i < n; i++)
				desc[i] = "UDAud"[cells[i]];
			desc[n] = '\0';
			fail_msg("regions %s: got %s, want %s", desc, quorum_state_name(out.state),
			    quorum_state_name(oracle(cells, n)));
		}
		assert_int_equal(out.needed, n / 2 + 1);
		if (out.state == QSTATE_DOWN)
			assert_int_equal(out.started_at, now - 6 * S); // first of 2 failures
		by_state[out.state]++;
		checked++;
	}
	assert_int_equal(checked, combos);
	// Every state is reachable in the table.
	for (int s = 0; s < 4; s++)
		assert_true(by_state[s] > 0);
}

static void
test_exhaustive_3(void **state)
{
	exhaustive(3);
}

static void
test_exhaustive_5(void **state)
{
	exhaustive(5);
}

static void
test_confirm_keeps_previous_vote(void **state)
{
	struct quorum_agent a = { 0 };
	struct quorum_agent_ctx c = ctx_at(T0 + 10 * S);

	// A first failure with no vote yet: abstain, not DOWN.
	assert_true(quorum_agent_result(&a, false, T0, 2, 0));
	assert_int_equal(quorum_agent_vote(&a, &c), VOTE_ABSTAIN);
	assert_true(quorum_agent_result(&a, false, T0 + S, 2, 0));
	assert_int_equal(quorum_agent_vote(&a, &c), VOTE_DOWN);
	assert_int_equal(a.down_since, T0);
	// One success flips back to UP at once.
	assert_true(quorum_agent_result(&a, true, T0 + 2 * S, 2, 0));
	assert_int_equal(quorum_agent_vote(&a, &c), VOTE_UP);
	// A single failure never flips an UP vote.
	assert_true(quorum_agent_result(&a, false, T0 + 3 * S, 2, 0));
	assert_int_equal(quorum_agent_vote(&a, &c), VOTE_UP);
	assert_true(quorum_agent_result(&a, false, T0 + 4 * S, 2, 0));
	assert_int_equal(quorum_agent_vote(&a, &c), VOTE_DOWN);
	assert_int_equal(a.down_since, T0 + 3 * S);
	// confirm 3: two failures keep UP.
	struct quorum_agent b = { 0 };

	settle(&b, true, T0, 1);
	quorum_agent_result(&b, false, T0 + S, 3, 0);
	quorum_agent_result(&b, false, T0 + 2 * S, 3, 0);
	assert_int_equal(quorum_agent_vote(&b, &c), VOTE_UP);
	quorum_agent_result(&b, false, T0 + 3 * S, 3, 0);
	assert_int_equal(quorum_agent_vote(&b, &c), VOTE_DOWN);
}

static void
test_late_results_ignored(void **state)
{
	struct quorum_agent a = { 0 };
	struct quorum_agent_ctx c = ctx_at(T0 + 10 * S);

	settle(&a, true, T0 + 5 * S, 1);
	// Older and equal probe times are late: they change nothing.
	assert_false(quorum_agent_result(&a, false, T0 + 4 * S, 1, 0));
	assert_false(quorum_agent_result(&a, false, T0 + 5 * S, 1, 0));
	assert_int_equal(quorum_agent_vote(&a, &c), VOTE_UP);
	assert_int_equal(a.fails, 0);
	assert_int_equal(a.last_at, T0 + 5 * S);
	// A replayed backlog newer than the vote moves it, but while it is
	// older than 2.5 intervals the vote abstains: no incident for the past.
	struct quorum_agent_ctx later = ctx_at(T0 + 5 * S + 200 * S);

	assert_true(quorum_agent_result(&a, false, T0 + 6 * S, 1, 0));
	assert_int_equal(quorum_agent_vote(&a, &later), VOTE_ABSTAIN);
}

static void
test_abstain_reasons(void **state)
{
	struct quorum_agent a = { 0 };
	struct quorum_agent_ctx c = ctx_at(T0);

	settle(&a, false, T0 - S, 2);
	assert_int_equal(quorum_agent_vote(&a, &c), VOTE_DOWN);
	c.impaired = true;
	assert_int_equal(quorum_agent_vote(&a, &c), VOTE_ABSTAIN);
	c.impaired = false;
	c.connected = false;
	assert_int_equal(quorum_agent_vote(&a, &c), VOTE_ABSTAIN);
	c.connected = true;
	// Exactly 2.5 intervals old is still fresh; a microsecond more is not.
	c.now = a.last_at + INTERVAL * 5 / 2;
	assert_int_equal(quorum_agent_vote(&a, &c), VOTE_DOWN);
	c.now++;
	assert_int_equal(quorum_agent_vote(&a, &c), VOTE_ABSTAIN);
}

static void
test_region_vote(void **state)
{
	enum quorum_vote v1[] = { VOTE_UP, VOTE_DOWN };
	enum quorum_vote v2[] = { VOTE_DOWN, VOTE_DOWN, VOTE_UP };
	enum quorum_vote v3[] = { VOTE_ABSTAIN, VOTE_ABSTAIN, VOTE_UP };
	enum quorum_vote v4[] = { VOTE_ABSTAIN, VOTE_DOWN, VOTE_UP, VOTE_ABSTAIN };

	assert_int_equal(quorum_region_vote(v1, 2), VOTE_ABSTAIN);
	assert_int_equal(quorum_region_vote(v2, 3), VOTE_DOWN);
	assert_int_equal(quorum_region_vote(v3, 3), VOTE_UP);
	assert_int_equal(quorum_region_vote(v4, 4), VOTE_ABSTAIN);
	assert_int_equal(quorum_region_vote(NULL, 0), VOTE_ABSTAIN);
}

static void
test_needed(void **state)
{
	assert_int_equal(quorum_needed((struct quorum_need){ QUORUM_MAJORITY, 0 }, 3), 2);
	assert_int_equal(quorum_needed((struct quorum_need){ QUORUM_MAJORITY, 0 }, 4), 3);
	assert_int_equal(quorum_needed((struct quorum_need){ QUORUM_MAJORITY, 0 }, 5), 3);
	assert_int_equal(quorum_needed((struct quorum_need){ QUORUM_COUNT, 2 }, 5), 2);
	assert_int_equal(quorum_needed((struct quorum_need){ QUORUM_COUNT, 9 }, 5), 5);
	assert_int_equal(quorum_needed((struct quorum_need){ QUORUM_PERCENT, 60 }, 5), 3);
	assert_int_equal(quorum_needed((struct quorum_need){ QUORUM_PERCENT, 50 }, 5), 3);
	assert_int_equal(quorum_needed((struct quorum_need){ QUORUM_PERCENT, 100 }, 3), 3);
	assert_int_equal(quorum_needed((struct quorum_need){ QUORUM_PERCENT, 1 }, 3), 1);
	assert_int_equal(quorum_needed((struct quorum_need){ QUORUM_MAJORITY, 0 }, 0), 1);
}

static void
set_regions(struct quorum_region *r, const char *votes, int64_t at)
{
	for (size_t i = 0; votes[i]; i++) {
		r[i].vote = votes[i] == 'U' ? VOTE_UP : votes[i] == 'D' ? VOTE_DOWN : VOTE_ABSTAIN;
		r[i].down_since = votes[i] == 'D' ? at : 0;
		r[i].up_since = votes[i] == 'U' ? at : 0;
		r[i].domain = (int)i;
	}
}

static void
test_hysteresis(void **state)
{
	struct quorum_target t = { 0 };
	struct quorum_region r[3];
	struct quorum_outcome out;
	int64_t now = T0;

	set_regions(r, "DDD", now);
	quorum_eval(&t, &majority, r, 3, now, true, &out);
	assert_int_equal(out.state, QSTATE_DOWN);
	assert_true(out.changed);
	// One region back: below the recovery quorum, still an outage.
	set_regions(r, "UDD", now += S);
	quorum_eval(&t, &majority, r, 3, now, true, &out);
	assert_int_equal(out.state, QSTATE_DOWN);
	assert_false(out.changed);
	// Recovery quorum holds for one evaluation: not yet.
	set_regions(r, "UUD", now += S);
	int64_t first_held = now;
	quorum_eval(&t, &majority, r, 3, now, true, &out);
	assert_int_equal(out.state, QSTATE_DOWN);
	// Timer evaluations without new data do not count.
	for (int i = 0; i < 5; i++) {
		quorum_eval(&t, &majority, r, 3, now += S, false, &out);
		assert_int_equal(out.state, QSTATE_DOWN);
	}
	// The second evaluation with data ends it; resolved at the first.
	quorum_eval(&t, &majority, r, 3, now += S, true, &out);
	assert_int_equal(out.state, QSTATE_DEGRADED);
	assert_true(out.changed);
	assert_int_equal(out.previous, QSTATE_DOWN);
	assert_int_equal(out.resolved_at, first_held);
	// A break in the recovery quorum resets the streak.
	struct quorum_target t2 = { 0 };

	set_regions(r, "DDD", now);
	quorum_eval(&t2, &majority, r, 3, now, true, &out);
	set_regions(r, "UUD", now += S);
	quorum_eval(&t2, &majority, r, 3, now, true, &out);
	set_regions(r, "UDD", now += S);
	quorum_eval(&t2, &majority, r, 3, now, true, &out);
	set_regions(r, "UUD", now += S);
	quorum_eval(&t2, &majority, r, 3, now, true, &out);
	assert_int_equal(out.state, QSTATE_DOWN);
	quorum_eval(&t2, &majority, r, 3, now += S, true, &out);
	assert_int_equal(out.state, QSTATE_DEGRADED);
}

static void
test_stricter_recover_rule(void **state)
{
	struct quorum_params p = { .quorum = { QUORUM_MAJORITY, 0 },
		.recover = { QUORUM_COUNT, 3 },
		.recover_for = 1 };
	struct quorum_target t = { 0 };
	struct quorum_region r[3];
	struct quorum_outcome out;

	set_regions(r, "DDU", T0);
	quorum_eval(&t, &p, r, 3, T0, true, &out);
	assert_int_equal(out.state, QSTATE_DOWN);
	set_regions(r, "UUA", T0 + S);
	quorum_eval(&t, &p, r, 3, T0 + S, true, &out);
	assert_int_equal(out.state, QSTATE_DOWN); // only 2 of the 3 needed UP
	set_regions(r, "UUU", T0 + 2 * S);
	quorum_eval(&t, &p, r, 3, T0 + 2 * S, true, &out);
	assert_int_equal(out.state, QSTATE_UP);
}

#define SPAN (2 * S) // the default confirm_span
#define MS (S / 1000)

static void
test_confirm_span(void **state)
{
	struct quorum_agent a = { 0 };
	struct quorum_agent_ctx c = ctx_at(T0 + 10 * S);

	settle(&a, true, T0 - 5 * S, 1);
	// confirm 2 is reached at the retry, 1 s after the first failure: the
	// failures do not span 2 s yet, the vote stays UP.
	assert_true(quorum_agent_result(&a, false, T0, 2, SPAN));
	assert_true(quorum_agent_result(&a, false, T0 + S, 2, SPAN));
	assert_int_equal(quorum_agent_vote(&a, &c), VOTE_UP);
	// The third attempt, 2 s after the first, confirms it.
	assert_true(quorum_agent_result(&a, false, T0 + 2 * S, 2, SPAN));
	assert_int_equal(quorum_agent_vote(&a, &c), VOTE_DOWN);
	assert_int_equal(a.down_since, T0);

	// A hang: the retry starts when the first attempt timed out (3 s):
	// two failures spanning 3 s are enough.
	struct quorum_agent h = { 0 };

	settle(&h, true, T0 - 5 * S, 1);
	assert_true(quorum_agent_result(&h, false, T0, 2, SPAN));
	assert_int_equal(quorum_agent_vote(&h, &c), VOTE_UP);
	assert_true(quorum_agent_result(&h, false, T0 + 3 * S, 2, SPAN));
	assert_int_equal(quorum_agent_vote(&h, &c), VOTE_DOWN);

	// confirm 1 still waits for the span: a single failure is a blip.
	struct quorum_agent one = { 0 };

	settle(&one, true, T0 - 5 * S, 1);
	assert_true(quorum_agent_result(&one, false, T0, 1, SPAN));
	assert_int_equal(quorum_agent_vote(&one, &c), VOTE_UP);
	assert_true(quorum_agent_result(&one, false, T0 + S, 1, SPAN));
	assert_int_equal(quorum_agent_vote(&one, &c), VOTE_UP);
	assert_true(quorum_agent_result(&one, false, T0 + 2 * S, 1, SPAN));
	assert_int_equal(quorum_agent_vote(&one, &c), VOTE_DOWN);

	// A success restarts the span.
	struct quorum_agent r = { 0 };

	settle(&r, true, T0 - 5 * S, 1);
	assert_true(quorum_agent_result(&r, false, T0, 2, SPAN));
	assert_true(quorum_agent_result(&r, true, T0 + S, 2, SPAN));
	assert_true(quorum_agent_result(&r, false, T0 + 2 * S, 2, SPAN));
	assert_true(quorum_agent_result(&r, false, T0 + 3 * S, 2, SPAN));
	assert_int_equal(quorum_agent_vote(&r, &c), VOTE_UP);
	assert_true(quorum_agent_result(&r, false, T0 + 4 * S, 2, SPAN));
	assert_int_equal(quorum_agent_vote(&r, &c), VOTE_DOWN);
	assert_int_equal(r.down_since, T0 + 2 * S);
}

// One agent probing with the agent's retry rule (retry_interval 1 s,
// confirm 2, confirm_span 2 s) from its first attempt at `first`, against
// a target failing in [blip_at, blip_at + blip): whether its vote turns
// DOWN.  Attempts end at the first success or when the vote is settled,
// as the agent's retries do.
static bool
blip_flips_vote(int64_t first, int64_t blip_at, int64_t blip)
{
	struct quorum_agent a = { 0 };
	struct quorum_agent_ctx c = ctx_at(first + 10 * S);

	settle(&a, true, first - 5 * S, 1);
	for (int64_t at = first; at < first + 10 * S; at += S) {
		bool up = at < blip_at || at >= blip_at + blip;

		quorum_agent_result(&a, up, at, 2, SPAN);
		if (up || quorum_agent_vote(&a, &c) == VOTE_DOWN)
			break;
	}
	return quorum_agent_vote(&a, &c) == VOTE_DOWN;
}

// Wherever the attempts fall in it, a failure shorter than confirm_span
// never flips a vote (so no region, and no outage, however the regions'
// probes and ProbeNow land); one that covers three attempts does.
static void
test_blip_shorter_than_span(void **state)
{
	unsigned flipped = 0, cases = 0;

	for (int64_t blip = 100 * MS; blip < SPAN; blip += 100 * MS)
		for (int64_t offset = 0; offset < blip; offset += 50 * MS) {
			assert_false(blip_flips_vote(T0 + offset, T0, blip));
			cases++;
		}
	// TESTPLAN #20: a 1.5 s blip met 0.3 s after it began, and the
	// ProbeNow attempts of the others a few ms later.
	assert_false(blip_flips_vote(T0 + 300 * MS, T0, 1500 * MS));
	assert_false(blip_flips_vote(T0 + 303 * MS, T0, 1500 * MS));
	// A 3 s failure met 0.3 s after it began covers three attempts: DOWN.
	assert_true(blip_flips_vote(T0 + 300 * MS, T0, 3 * S));
	for (int64_t offset = 0; offset + SPAN < 3 * S; offset += 50 * MS)
		flipped += blip_flips_vote(T0 + offset, T0, 3 * S);
	assert_int_equal(flipped, (3 * S - SPAN) / (50 * MS));
	assert_true(cases > 100);
}

static const struct quorum_params flappy = {
	.quorum = { QUORUM_MAJORITY, 0 },
	.recover = { QUORUM_MAJORITY, 0 },
	.recover_for = 1,
	.reopen_window_us = 600 * S,
	.settle_for_us = 60 * S,
};

struct pages {
	unsigned outages, reopens, flapping_pages, recoveries, resolutions;
	int64_t last_recovery_at;
};

// Evaluates three regions all UP or all DOWN at `now`, counting what the
// incidents would page for.
static void
flap_eval(struct quorum_target *t, const struct quorum_params *p, bool down, int64_t now,
    struct pages *pg)
{
	struct quorum_region r[3];
	struct quorum_outcome out;

	set_regions(r, down ? "DDD" : "UUU", now);
	quorum_eval(t, p, r, 3, now, true, &out);
	if (out.changed && out.state == QSTATE_DOWN) {
		if (!out.reopened)
			pg->outages++;
		else
			pg->reopens++;
		if (out.reopened && out.page_reopen)
			pg->flapping_pages++;
		assert_int_equal(out.flapping, out.reopened);
	}
	if (out.changed && out.previous == QSTATE_DOWN)
		pg->resolutions++;
	if (out.settled) {
		pg->recoveries++;
		pg->last_recovery_at = now;
	}
}

// Down `down_s` every `period_s` for `for_s`, then up; evaluated every second.
static void
flap(struct quorum_target *t, const struct quorum_params *p, int64_t start, int down_s,
    int period_s, int for_s, int then_up_s, struct pages *pg)
{
	for (int sec = 0; sec < for_s + then_up_s; sec++)
		flap_eval(t, p, sec < for_s && sec % period_s < down_s, start + sec * S, pg);
}

static void
test_flapping(void **state)
{
	struct quorum_target t = { 0 };
	struct pages pg = { 0 };

	// TESTPLAN #12: down 10 s every 30 s for 5 minutes.  One outage page,
	// one "flapping" page at the first reopening, and one recovery once
	// it stayed up for settle_for.
	flap(&t, &flappy, T0, 10, 30, 300, 120, &pg);
	assert_int_equal(pg.outages, 1);
	assert_int_equal(pg.reopens, 9);
	assert_int_equal(pg.flapping_pages, 1);
	assert_int_equal(pg.resolutions, 10);
	assert_int_equal(pg.recoveries, 1);
	// The last outage ended at 280 s (recover_for 1): announced 60 s later.
	assert_int_equal(pg.last_recovery_at, T0 + 280 * S + 60 * S);
	assert_false(t.flapping);

	// Down 15 s every 45 s for 10 minutes: the same, and the recovery
	// comes, a minute after the flapping stopped (not an hour).
	struct quorum_target t2 = { 0 };
	struct pages pg2 = { 0 };

	flap(&t2, &flappy, T0, 15, 45, 600, 120, &pg2);
	assert_int_equal(pg2.outages + pg2.flapping_pages, 2);
	assert_int_equal(pg2.recoveries, 1);
	assert_true(pg2.last_recovery_at <= T0 + 600 * S + 60 * S);
}

// Two outages two hours apart are two incidents, each paged and each
// recovered, with no "flapping" in between.
static void
test_outages_hours_apart(void **state)
{
	struct quorum_target t = { 0 };
	struct pages pg = { 0 };

	flap(&t, &flappy, T0, 20, 1000, 20, 100, &pg);
	flap(&t, &flappy, T0 + 7200 * S, 20, 1000, 20, 100, &pg);
	assert_int_equal(pg.outages, 2);
	assert_int_equal(pg.reopens, 0);
	assert_int_equal(pg.flapping_pages, 0);
	assert_int_equal(pg.recoveries, 2);
}

static void
test_reopen_after_recovery_announced(void **state)
{
	struct quorum_target t = { 0 };
	struct pages pg = { 0 };

	// An outage, 3 minutes up (its recovery announced at 60 s), down
	// again within the reopen window: the same incident, and a page,
	// since the pager was told it had recovered.
	flap(&t, &flappy, T0, 20, 1000, 20, 180, &pg);
	assert_int_equal(pg.recoveries, 1);
	flap(&t, &flappy, T0 + 200 * S, 10, 20, 30, 0, &pg);
	assert_int_equal(pg.outages, 1);
	assert_int_equal(pg.reopens, 2);
	// The first reopening pages; the second, before the recovery of the
	// first was announced, is grouped.
	assert_int_equal(pg.flapping_pages, 1);

	// settle_for 0 announces a recovery with the resolution.
	struct quorum_params now = flappy;
	struct quorum_target t0 = { 0 };
	struct pages pg0 = { 0 };

	now.settle_for_us = 0;
	flap(&t0, &now, T0, 5, 1000, 5, 1, &pg0);
	assert_int_equal(pg0.resolutions, 1);
	assert_int_equal(pg0.recoveries, 1);
	assert_int_equal(pg0.last_recovery_at, T0 + 5 * S);

	// reopen_window 0: every outage is a new one.
	struct quorum_params never = flappy;
	struct quorum_target tn = { 0 };
	struct pages pgn = { 0 };

	never.reopen_window_us = 0;
	flap(&tn, &never, T0, 10, 30, 90, 0, &pgn);
	assert_int_equal(pgn.outages, 3);
	assert_int_equal(pgn.reopens, 0);
}

// After an aggregator restart the state comes from the incidents table.
static void
test_restore(void **state)
{
	struct quorum_target t = { 0 };
	struct pages pg = { 0 };

	// A flapping outage resolved 20 s ago whose recovery is still owed:
	// going down again is a grouped reopening, and the recovery comes
	// settle_for after the next end.
	quorum_restore_resolved(&t, T0 - 20 * S, true, true);
	flap(&t, &flappy, T0, 10, 1000, 10, 90, &pg);
	assert_int_equal(pg.outages, 0);
	assert_int_equal(pg.reopens, 1);
	assert_int_equal(pg.flapping_pages, 0);
	assert_int_equal(pg.recoveries, 1);

	// An owed recovery is announced after a restart too.
	struct quorum_target r = { 0 };
	struct pages pgr = { 0 };

	quorum_restore_resolved(&r, T0 - 50 * S, false, true);
	flap(&r, &flappy, T0, 0, 1000, 0, 15, &pgr);
	assert_int_equal(pgr.recoveries, 1);
	assert_int_equal(pgr.last_recovery_at, T0 + 10 * S);

	// An open outage keeps the target DOWN: no new outage on restart.
	struct quorum_target o = { 0 };
	struct pages pgo = { 0 };

	quorum_restore_open(&o, false);
	flap(&o, &flappy, T0, 5, 1000, 5, 70, &pgo);
	assert_int_equal(pgo.outages, 0);
	assert_int_equal(pgo.resolutions, 1);
	assert_int_equal(pgo.recoveries, 1);
}

static void
test_distinct_domains(void **state)
{
	struct quorum_params p = majority;
	struct quorum_target t = { 0 };
	struct quorum_region r[5];
	struct quorum_outcome out;
	const int domains[5] = { 1, 1, 2, 2, 3 }; // aws aws gcp gcp hetzner

	set_regions(r, "DDUUU", T0);
	for (int i = 0; i < 5; i++)
		r[i].domain = domains[i];
	r[2].vote = VOTE_DOWN; // three DOWN: two in aws, one in gcp
	p.distinct_domains = 2;
	quorum_eval(&t, &p, r, 5, T0, true, &out);
	assert_int_equal(out.state, QSTATE_DOWN);
	struct quorum_target t3 = { 0 };

	p.distinct_domains = 3;
	quorum_eval(&t3, &p, r, 5, T0, true, &out);
	assert_int_equal(out.state, QSTATE_DEGRADED);
	// Three DOWN in one domain only (a provider's network) is not an outage at K=2.
	const int same[5] = { 1, 1, 1, 2, 3 };
	struct quorum_target t4 = { 0 };

	for (int i = 0; i < 5; i++)
		r[i].domain = same[i];
	p.distinct_domains = 2;
	quorum_eval(&t4, &p, r, 5, T0, true, &out);
	assert_int_equal(out.state, QSTATE_DEGRADED);
}

static void
test_min_voters_and_percent(void **state)
{
	struct quorum_params p = majority;
	struct quorum_target t = { 0 };
	struct quorum_region r[5];
	struct quorum_outcome out;

	p.min_voters = 4;
	set_regions(r, "DDDAA", T0);
	quorum_eval(&t, &p, r, 5, T0, true, &out);
	assert_int_equal(out.state, QSTATE_UNKNOWN);
	assert_true(out.blind);
	set_regions(r, "DDDUA", T0 + S);
	quorum_eval(&t, &p, r, 5, T0 + S, true, &out);
	assert_int_equal(out.state, QSTATE_DOWN);
	struct quorum_target t2 = { 0 };

	p = majority;
	p.quorum = (struct quorum_need){ QUORUM_PERCENT, 80 };
	set_regions(r, "DDDUU", T0);
	quorum_eval(&t2, &p, r, 5, T0, true, &out);
	assert_int_equal(out.needed, 4);
	assert_int_equal(out.state, QSTATE_DEGRADED);
}

static void
test_started_at_is_earliest_failure(void **state)
{
	struct quorum_target t = { 0 };
	struct quorum_region r[3];
	struct quorum_outcome out;

	set_regions(r, "DDU", T0);
	r[0].down_since = T0 - 7 * S;
	r[1].down_since = T0 - 3 * S;
	quorum_eval(&t, &majority, r, 3, T0, true, &out);
	assert_int_equal(out.state, QSTATE_DOWN);
	assert_int_equal(out.started_at, T0 - 7 * S);
	assert_int_equal(out.regions_down, 2);
	assert_int_equal(out.regions_up, 1);
}

static void
test_multi_agent_region_tie_abstains(void **state)
{
	struct quorum_agent a = { 0 }, b = { 0 };
	struct quorum_agent_ctx c = ctx_at(T0);
	enum quorum_vote votes[2];

	settle(&a, true, T0 - S, 2);
	settle(&b, false, T0 - S, 2);
	votes[0] = quorum_agent_vote(&a, &c);
	votes[1] = quorum_agent_vote(&b, &c);
	assert_int_equal(quorum_region_vote(votes, 2), VOTE_ABSTAIN);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exhaustive_3),
		cmocka_unit_test(test_exhaustive_5),
		cmocka_unit_test(test_confirm_keeps_previous_vote),
		cmocka_unit_test(test_late_results_ignored),
		cmocka_unit_test(test_abstain_reasons),
		cmocka_unit_test(test_region_vote),
		cmocka_unit_test(test_needed),
		cmocka_unit_test(test_hysteresis),
		cmocka_unit_test(test_stricter_recover_rule),
		cmocka_unit_test(test_confirm_span),
		cmocka_unit_test(test_blip_shorter_than_span),
		cmocka_unit_test(test_flapping),
		cmocka_unit_test(test_outages_hours_apart),
		cmocka_unit_test(test_reopen_after_recovery_announced),
		cmocka_unit_test(test_restore),
		cmocka_unit_test(test_distinct_domains),
		cmocka_unit_test(test_min_voters_and_percent),
		cmocka_unit_test(test_started_at_is_earliest_failure),
		cmocka_unit_test(test_multi_agent_region_tie_abstains),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
