// SPDX-License-Identifier: Apache-2.0
//
// Unit tests of aggregator/verdict.c: the glue between the live view
// (target table, agent registry) and the pure quorum.  A loaded
// vantage.yml, a target table, three connected agents in three regions
// and a verdict whose sink records every call; results go in through
// targets_record as ingest feeds them, and verdict_on_committed /
// verdict_eval_all judge at chosen times.  What is checked is what the
// next stage (incidents) relies on: each change of state reported once
// with its regions, a region's vote change reported without a state
// change, staleness after 2.5 intervals, nothing judged before
// verdict_enable or while held, ProbeNow at most once per interval, and
// the state restored from incidents (no duplicate change, reopening).
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "agents.h"
#include "agg_conf.h"
#include "clock.h"
#include "log.h"
#include "targets.h"
#include "verdict.h"
#include "conftest.h"

#define S 1000000LL // one second in µs
#define INTERVAL (10 * S)
#define N_AGENTS 3

// Three regions, one agent each; a majority (2) is an outage.  confirm 1
// and no confirm_span, so one failure turns an agent's vote DOWN.
static const char test_conf_text[] =
    "security: { insecure: true }\n"
    "regions: [ { name: r1 }, { name: r2 }, { name: r3 } ]\n"
    "targets:\n"
    "  - { name: api, http: { url: \"http://127.0.0.1:1/health\" }, interval: 10s,\n"
    "      timeout: 2s, confirm: 1, confirm_span: 0s, recover_for: 2,\n"
    "      reopen_window: 10m, settle_for: 0 }\n";

// What the sink was told.
struct test_sink_log {
	int changed, region, evaluated;
	struct quorum_outcome changed_out, evaluated_out;
	size_t n_regions;
	char names[VERDICT_MAX_REGIONS][16];
	enum quorum_vote votes[VERDICT_MAX_REGIONS];
	char why[VERDICT_MAX_REGIONS][96];
	int64_t down_since[VERDICT_MAX_REGIONS];
	int64_t changed_now;
	char region_name[16];
	enum quorum_vote region_vote, region_previous;
};

struct test_fixture {
	struct agg_conf *conf;
	struct target_table *targets;
	struct agents *agents;
	struct verdict *verdict;
	struct test_sink_log log;
	size_t slots[N_AGENTS];
	uint64_t seq;
	int64_t t0; // wall-clock-like start of every scenario
};

static struct test_fixture fx;

// The monotonic clock verdict.c reads (clock_mono_us) runs this far ahead
// of the real one: a test makes the aggregator "stall" by moving it, with
// no sleep.  This definition of clock_gettime takes the place of libc's
// for the whole test binary (common/clock.c calls it); the real clock is
// read through the system call.
static int64_t test_mono_ahead_us;

int
clock_gettime(clockid_t id, struct timespec *ts)
{
	int64_t ns;

	if (syscall(SYS_clock_gettime, id, ts) != 0)
		return -1;
	if (id != CLOCK_MONOTONIC || test_mono_ahead_us == 0)
		return 0;
	ns = (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec + test_mono_ahead_us * 1000;
	ts->tv_sec = (time_t)(ns / 1000000000);
	ts->tv_nsec = (long)(ns % 1000000000);
	return 0;
}

// --- the sink ---

static void
test_on_changed(size_t idx, const struct quorum_outcome *out, const struct verdict_region *regions,
    size_t n, int64_t now, void *arg)
{
	struct test_sink_log *log = arg;

	assert_int_equal(idx, 0);
	log->changed++;
	log->changed_out = *out;
	log->changed_now = now;
	log->n_regions = n;
	for (size_t i = 0; i < n && i < VERDICT_MAX_REGIONS; i++) {
		snprintf(log->names[i], sizeof(log->names[i]), "%s", regions[i].name);
		log->votes[i] = regions[i].vote;
		snprintf(log->why[i], sizeof(log->why[i]), "%s", regions[i].why);
		log->down_since[i] = regions[i].down_since;
	}
}

static void
test_on_region(size_t idx, const struct verdict_region *region, enum quorum_vote previous,
    void *arg)
{
	struct test_sink_log *log = arg;

	assert_int_equal(idx, 0);
	log->region++;
	snprintf(log->region_name, sizeof(log->region_name), "%s", region->name);
	log->region_vote = region->vote;
	log->region_previous = previous;
}

static void
test_on_evaluated(size_t idx, const struct quorum_outcome *out,
    const struct verdict_region *regions, size_t n, int64_t now, void *arg)
{
	struct test_sink_log *log = arg;

	assert_int_equal(idx, 0);
	assert_int_equal(n, N_AGENTS);
	log->evaluated++;
	log->evaluated_out = *out;
}

// --- fixtures ---

// A fresh table, registry and verdict (not enabled) over the loaded conf.
static void
test_fresh(bool enable)
{
	static const char *const regions[N_AGENTS] = { "r1", "r2", "r3" };
	const struct verdict_sink sink = { test_on_changed, test_on_region, test_on_evaluated,
		&fx.log };

	verdict_free(fx.verdict);
	targets_free(fx.targets);
	agents_free(fx.agents);
	memset(&fx.log, 0, sizeof(fx.log));
	fx.targets = targets_new(fx.conf);
	fx.agents = agents_new();
	fx.t0 = clock_wall_us();
	for (size_t i = 0; i < N_AGENTS; i++) {
		char name[16];
		struct agent_info *ai;

		snprintf(name, sizeof(name), "agent-%s", regions[i]);
		fx.slots[i] = agents_upsert(fx.agents, 100 + (int)i, name, regions[i], "test");
		ai = agents_get(fx.agents, fx.slots[i]);
		ai->connected = true;
		ai->connected_since = ai->last_seen = fx.t0;
	}
	fx.verdict = verdict_new(fx.conf, fx.targets, fx.agents, &sink);
	if (enable)
		verdict_enable(fx.verdict);
}

static int
test_setup(void **state)
{
	(void)state;
	memset(&fx, 0, sizeof(fx));
	test_mono_ahead_us = 0;
	fx.conf = conftest_load(test_conf_text);
	assert_int_equal(fx.conf->n_targets, 1);
	test_fresh(true);
	return 0;
}

static int
test_teardown(void **state)
{
	(void)state;
	verdict_free(fx.verdict);
	targets_free(fx.targets);
	agents_free(fx.agents);
	agg_conf_free(fx.conf);
	memset(&fx, 0, sizeof(fx));
	return 0;
}

// --- feeding results ---

// Every agent was heard from at now (heartbeats): connected, not silent.
static void
test_heartbeat(int64_t now)
{
	for (size_t i = 0; i < N_AGENTS; i++)
		agents_get(fx.agents, fx.slots[i])->last_seen = now;
}

// One result of agent i on "api", probed at started_at, as ingest records it.
static void
test_result(size_t i, bool up, int64_t started_at)
{
	Vantage__Result r = VANTAGE__RESULT__INIT;

	r.seq = ++fx.seq;
	r.target = "api";
	r.scheduled_at = r.started_at = started_at;
	r.outcome = up ? VANTAGE__OUTCOME__OUTCOME_UP : VANTAGE__OUTCOME__OUTCOME_DOWN;
	r.reason = up ? VANTAGE__REASON__REASON_NONE : VANTAGE__REASON__REASON_HTTP_STATUS;
	r.http_status = up ? 200 : 503;
	r.error = up ? "" : "503 Service Unavailable";
	assert_true(targets_record(fx.targets, 0, fx.slots[i], &r, started_at));
}

// One round of results probed at `at` and committed then: votes[i] is
// 'U' (up), 'D' (down) or '-' (no result) for the agent of region r<i+1>.
static void
test_round(const char *votes, int64_t at)
{
	const uint32_t idx = 0;

	assert_int_equal(strlen(votes), N_AGENTS);
	for (size_t i = 0; i < N_AGENTS; i++)
		if (votes[i] != '-')
			test_result(i, votes[i] == 'U', at);
	test_heartbeat(at);
	verdict_tick(fx.verdict);
	verdict_on_committed(fx.verdict, &idx, 1, at);
}

// The staleness timer at now.
static void
test_timer(int64_t now)
{
	test_heartbeat(now);
	verdict_tick(fx.verdict);
	verdict_eval_all(fx.verdict, now);
}

static enum quorum_state
test_state(void)
{
	return verdict_state(fx.verdict, 0)->qt.state;
}

// --- tests ---

// ProbeNow is asked for at most once per interval, and never for a
// target already DOWN (its outage needs no faster confirmation).
static void
test_probe_now_once_per_interval(void **state)
{
	int64_t t0 = fx.t0;

	(void)state;
	assert_true(verdict_probe_now(fx.verdict, 0, t0));
	assert_false(verdict_probe_now(fx.verdict, 0, t0 + 1));
	assert_false(verdict_probe_now(fx.verdict, 0, t0 + INTERVAL - 1));
	assert_true(verdict_probe_now(fx.verdict, 0, t0 + INTERVAL));
	assert_false(verdict_probe_now(fx.verdict, 0, t0 + INTERVAL + 5 * S));
	assert_true(verdict_probe_now(fx.verdict, 0, t0 + 3 * INTERVAL));

	test_round("DDD", t0 + 4 * INTERVAL);
	assert_int_equal(test_state(), QSTATE_DOWN);
	assert_false(verdict_probe_now(fx.verdict, 0, t0 + 6 * INTERVAL));
	assert_false(verdict_probe_now(fx.verdict, 0, t0 + 60 * INTERVAL));
	// An unknown target is never probed at once.
	assert_false(verdict_probe_now(fx.verdict, 1, t0 + 60 * INTERVAL));
}

// UNKNOWN -> UP -> DOWN -> UP, each change reported once with every
// region; region votes changing under an unchanged state go to
// sink.region; sink.evaluated sees every evaluation.
static void
test_changes_reach_sink(void **state)
{
	int64_t t0 = fx.t0;

	(void)state;
	test_round("UUU", t0);
	assert_int_equal(fx.log.changed, 1);
	assert_int_equal(fx.log.changed_out.previous, QSTATE_UNKNOWN);
	assert_int_equal(fx.log.changed_out.state, QSTATE_UP);
	assert_int_equal(fx.log.evaluated, 1);
	assert_int_equal(fx.log.region, 0);

	test_round("DDU", t0 + INTERVAL);
	assert_int_equal(fx.log.changed, 2);
	assert_int_equal(fx.log.changed_out.previous, QSTATE_UP);
	assert_int_equal(fx.log.changed_out.state, QSTATE_DOWN);
	assert_true(fx.log.changed_out.changed);
	assert_int_equal(fx.log.changed_out.regions_down, 2);
	assert_int_equal(fx.log.changed_out.regions_up, 1);
	assert_int_equal(fx.log.changed_out.needed, 2);
	assert_int_equal(fx.log.changed_out.started_at, t0 + INTERVAL);
	assert_false(fx.log.changed_out.reopened);
	assert_int_equal(fx.log.changed_now, t0 + INTERVAL);
	assert_int_equal(fx.log.n_regions, 3);
	assert_string_equal(fx.log.names[0], "r1");
	assert_string_equal(fx.log.names[1], "r2");
	assert_string_equal(fx.log.names[2], "r3");
	assert_int_equal(fx.log.votes[0], VOTE_DOWN);
	assert_int_equal(fx.log.votes[1], VOTE_DOWN);
	assert_int_equal(fx.log.votes[2], VOTE_UP);
	assert_string_equal(fx.log.why[0], "503 http_status");
	assert_int_equal(fx.log.down_since[1], t0 + INTERVAL);
	assert_string_equal(fx.log.why[2], "");
	assert_int_equal(verdict_state(fx.verdict, 0)->state_since, t0 + INTERVAL);
	assert_int_equal(fx.log.evaluated, 2);
	// The change carried the regions: no separate region calls.
	assert_int_equal(fx.log.region, 0);

	// r3 fails too: no change of state, one region call.
	test_round("--D", t0 + 2 * INTERVAL);
	assert_int_equal(fx.log.changed, 2);
	assert_int_equal(fx.log.region, 1);
	assert_string_equal(fx.log.region_name, "r3");
	assert_int_equal(fx.log.region_vote, VOTE_DOWN);
	assert_int_equal(fx.log.region_previous, VOTE_UP);
	assert_int_equal(fx.log.evaluated, 3);
	assert_int_equal(fx.log.evaluated_out.state, QSTATE_DOWN);
	assert_false(fx.log.evaluated_out.changed);

	// Recovery needs recover_for 2 evaluations with new data: the first
	// only moves the regions.
	test_round("UUU", t0 + 3 * INTERVAL);
	assert_int_equal(fx.log.changed, 2);
	assert_int_equal(test_state(), QSTATE_DOWN);
	assert_int_equal(fx.log.region, 4);
	assert_string_equal(fx.log.region_name, "r3");
	assert_int_equal(fx.log.region_vote, VOTE_UP);
	assert_int_equal(fx.log.region_previous, VOTE_DOWN);
	assert_int_equal(fx.log.evaluated, 4);

	// A timer tick in between brings no new data and does not count.
	test_timer(t0 + 3 * INTERVAL + 5 * S);
	assert_int_equal(fx.log.changed, 2);
	assert_int_equal(fx.log.evaluated, 5);

	test_round("UUU", t0 + 4 * INTERVAL);
	assert_int_equal(fx.log.changed, 3);
	assert_int_equal(fx.log.changed_out.previous, QSTATE_DOWN);
	assert_int_equal(fx.log.changed_out.state, QSTATE_UP);
	// Probe time the recovery quorum first held, not the evaluation's.
	assert_int_equal(fx.log.changed_out.resolved_at, t0 + 3 * INTERVAL);
	// settle_for 0: its recovery is announced with the change.
	assert_true(fx.log.changed_out.settled);
	assert_int_equal(fx.log.region, 4);
	assert_int_equal(fx.log.evaluated, 6);

	test_round("UUU", t0 + 5 * INTERVAL);
	assert_int_equal(fx.log.changed, 3);
	assert_int_equal(fx.log.evaluated, 7);
}

// A vote older than 2.5 intervals abstains (quorum_agent_vote); with
// fewer voting regions than the quorum count (min_voters defaults to it)
// the target is UNKNOWN: monitoring blind.
static void
test_staleness(void **state)
{
	int64_t t0 = fx.t0;
	int64_t fresh = t0 + 2 * INTERVAL;

	(void)state;
	test_round("UUU", t0);
	assert_int_equal(test_state(), QSTATE_UP);
	test_round("UU-", fresh);
	assert_int_equal(fx.log.changed, 1);

	// Exactly 2.5 intervals old is not stale yet.
	test_timer(t0 + 25 * S);
	assert_int_equal(fx.log.evaluated_out.regions_up, 3);
	assert_int_equal(fx.log.region, 0);

	test_timer(t0 + 25 * S + 1);
	assert_int_equal(fx.log.changed, 1);
	assert_int_equal(fx.log.evaluated_out.state, QSTATE_UP);
	assert_int_equal(fx.log.evaluated_out.regions_up, 2);
	assert_int_equal(fx.log.evaluated_out.regions_abstain, 1);
	assert_int_equal(fx.log.region, 1);
	assert_string_equal(fx.log.region_name, "r3");
	assert_int_equal(fx.log.region_vote, VOTE_ABSTAIN);
	assert_int_equal(fx.log.region_previous, VOTE_UP);

	test_timer(fresh + 25 * S);
	assert_int_equal(fx.log.changed, 1);
	assert_int_equal(test_state(), QSTATE_UP);

	test_timer(fresh + 25 * S + 1);
	assert_int_equal(fx.log.changed, 2);
	assert_int_equal(fx.log.changed_out.previous, QSTATE_UP);
	assert_int_equal(fx.log.changed_out.state, QSTATE_UNKNOWN);
	assert_true(fx.log.changed_out.blind);
	assert_int_equal(fx.log.changed_out.regions_abstain, 3);
	assert_int_equal(fx.log.changed_out.regions_up, 0);

	// A fresh result brings the region back.
	test_round("U--", fresh + 30 * S);
	assert_int_equal(fx.log.changed, 2);
	assert_int_equal(fx.log.evaluated_out.regions_up, 1);
	test_round("-U-", fresh + 31 * S);
	assert_int_equal(fx.log.changed, 3);
	assert_int_equal(fx.log.changed_out.state, QSTATE_UP);
	assert_false(fx.log.changed_out.blind);
}

// An agent that is disconnected, or silent for 15 s, abstains whatever
// its latest result said.
static void
test_disconnected_abstains(void **state)
{
	int64_t t0 = fx.t0;

	(void)state;
	test_round("DDD", t0);
	assert_int_equal(test_state(), QSTATE_DOWN);
	agents_get(fx.agents, fx.slots[0])->connected = false;
	test_timer(t0 + 1 * S);
	assert_int_equal(fx.log.evaluated_out.regions_down, 2);
	assert_int_equal(fx.log.evaluated_out.regions_abstain, 1);
	assert_int_equal(fx.log.region_vote, VOTE_ABSTAIN);
	assert_string_equal(fx.log.region_name, "r1");

	// r2 heard from 15 s ago is gone too; r3 alone cannot keep a verdict.
	verdict_tick(fx.verdict);
	agents_get(fx.agents, fx.slots[1])->last_seen = t0 + 1 * S;
	agents_get(fx.agents, fx.slots[2])->last_seen = t0 + 16 * S;
	verdict_eval_all(fx.verdict, t0 + 16 * S);
	assert_int_equal(fx.log.evaluated_out.regions_down, 1);
	assert_int_equal(fx.log.evaluated_out.regions_abstain, 2);
	// Leaving DOWN needs the recovery quorum: blind, it stays DOWN.
	assert_int_equal(fx.log.evaluated_out.state, QSTATE_DOWN);
	assert_true(fx.log.evaluated_out.blind);
	assert_int_equal(fx.log.changed, 1);
}

// Nothing is judged before verdict_enable or while held; what was
// committed meanwhile stays marked and is judged once allowed.
static void
test_hold_and_enable(void **state)
{
	int64_t t0 = fx.t0;

	(void)state;
	test_fresh(false);
	test_round("DDD", t0);
	test_timer(t0 + 1 * S);
	assert_int_equal(fx.log.evaluated, 0);
	assert_int_equal(fx.log.changed, 0);
	assert_int_equal(test_state(), QSTATE_UNKNOWN);
	assert_true(verdict_state(fx.verdict, 0)->dirty);

	verdict_enable(fx.verdict);
	verdict_hold(fx.verdict, true);
	test_round("DDD", t0 + 2 * S);
	test_timer(t0 + 3 * S);
	assert_int_equal(fx.log.evaluated, 0);
	assert_int_equal(test_state(), QSTATE_UNKNOWN);

	verdict_hold(fx.verdict, false);
	verdict_tick(fx.verdict);
	verdict_on_committed(fx.verdict, NULL, 0, t0 + 4 * S);
	assert_int_equal(fx.log.evaluated, 1);
	assert_int_equal(fx.log.changed, 1);
	assert_int_equal(fx.log.changed_out.state, QSTATE_DOWN);
	assert_false(verdict_state(fx.verdict, 0)->dirty);

	// Held again during the outage: its recovery waits too.
	verdict_hold(fx.verdict, true);
	test_round("UUU", t0 + 5 * S);
	test_round("UUU", t0 + 6 * S);
	test_timer(t0 + 7 * S);
	assert_int_equal(fx.log.evaluated, 1);
	assert_int_equal(test_state(), QSTATE_DOWN);
}

// After the loop did not run for more than 3 s (SIGSTOP, a starved host)
// nothing is judged for 5 s: silence then says nothing about the agents.
// Results committed meanwhile stay marked and are judged after.
static void
test_stall_pauses_judging(void **state)
{
	int64_t t0 = fx.t0;

	(void)state;
	test_round("UUU", t0);
	assert_int_equal(fx.log.evaluated, 1);

	// Just under 3 s between ticks (the test's own run time adds to it)
	// is not a stall yet.
	test_mono_ahead_us += 29 * S / 10;
	test_timer(t0 + 3 * S);
	assert_int_equal(fx.log.evaluated, 2);

	// Away 3.5 s: every result is stale at the next tick, which would
	// make the target UNKNOWN, but nothing is judged.
	test_mono_ahead_us += 3 * S + S / 2;
	test_timer(t0 + 40 * S);
	assert_int_equal(fx.log.evaluated, 2);
	assert_int_equal(test_state(), QSTATE_UP);
	test_round("DDD", t0 + 41 * S);
	assert_int_equal(fx.log.evaluated, 2);
	assert_true(verdict_state(fx.verdict, 0)->dirty);

	// The timer goes on every second meanwhile; still nothing judged.
	for (int k = 1; k <= 4; k++) {
		test_mono_ahead_us += S;
		test_timer(t0 + 41 * S + k * S);
		assert_int_equal(fx.log.evaluated, 2);
	}

	// 5 s after the stall was noticed, judging resumes, marks included.
	test_mono_ahead_us += S;
	verdict_tick(fx.verdict);
	verdict_on_committed(fx.verdict, NULL, 0, t0 + 46 * S);
	assert_int_equal(fx.log.evaluated, 3);
	assert_int_equal(fx.log.changed, 2);
	assert_int_equal(fx.log.changed_out.state, QSTATE_DOWN);
}

// An outage restored from the database keeps the target DOWN without a
// change reported (incidents has it open already), and its recovery is
// then exactly one change DOWN -> UP.
static void
test_restore_open(void **state)
{
	int64_t t0 = fx.t0;

	(void)state;
	verdict_restore_open(fx.verdict, 0, QSTATE_DOWN, false);
	assert_int_equal(test_state(), QSTATE_DOWN);
	assert_int_equal(verdict_state(fx.verdict, 0)->last.state, QSTATE_DOWN);
	assert_int_equal(fx.log.changed, 0);
	assert_false(verdict_probe_now(fx.verdict, 0, t0));

	test_round("UUU", t0);
	assert_int_equal(fx.log.changed, 0);
	assert_int_equal(test_state(), QSTATE_DOWN);
	test_round("UUU", t0 + INTERVAL);
	assert_int_equal(fx.log.changed, 1);
	assert_int_equal(fx.log.changed_out.previous, QSTATE_DOWN);
	assert_int_equal(fx.log.changed_out.state, QSTATE_UP);
	assert_int_equal(fx.log.changed_out.resolved_at, t0);
	test_round("UUU", t0 + 2 * INTERVAL);
	test_timer(t0 + 2 * INTERVAL + S);
	assert_int_equal(fx.log.changed, 1);
	assert_int_equal(fx.log.evaluated, 4);
}

// A restored regional incident keeps the target DEGRADED; it never
// overrides a restored outage.
static void
test_restore_degraded(void **state)
{
	(void)state;
	verdict_restore_open(fx.verdict, 0, QSTATE_DEGRADED, false);
	assert_int_equal(test_state(), QSTATE_DEGRADED);
	test_round("DUU", fx.t0);
	assert_int_equal(fx.log.changed, 0);
	assert_int_equal(fx.log.evaluated_out.state, QSTATE_DEGRADED);

	test_fresh(true);
	verdict_restore_open(fx.verdict, 0, QSTATE_DOWN, true);
	verdict_restore_open(fx.verdict, 0, QSTATE_DEGRADED, false);
	assert_int_equal(test_state(), QSTATE_DOWN);
	assert_true(verdict_state(fx.verdict, 0)->qt.flapping);
}

// The latest outage restored as resolved: a new one within reopen_window
// (10 min) continues it, paged once unless it was flapping with its
// recovery not yet announced; one after the window is a new outage.
static void
test_restore_resolved(void **state)
{
	static const struct {
		int64_t ended_ago;
		bool flapping, recovery_owed;
		bool reopened, page_reopen;
	} cases[] = {
		{ 60 * S, false, true, true, true },
		{ 60 * S, false, false, true, true },
		{ 60 * S, true, true, true, false },
		{ 60 * S, true, false, true, true },
		{ 11 * 60 * S, false, true, false, false },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t t0;

		test_fresh(true);
		t0 = fx.t0;
		verdict_restore_resolved(fx.verdict, 0, t0 - cases[i].ended_ago, cases[i].flapping,
		    cases[i].recovery_owed);
		assert_int_equal(fx.log.changed, 0);
		test_round("DDD", t0);
		assert_int_equal(fx.log.changed, 1);
		assert_int_equal(fx.log.changed_out.state, QSTATE_DOWN);
		if (fx.log.changed_out.reopened != cases[i].reopened ||
		    fx.log.changed_out.page_reopen != cases[i].page_reopen)
			fail_msg("case %zu: reopened %d page_reopen %d, expected %d %d", i,
			    fx.log.changed_out.reopened, fx.log.changed_out.page_reopen,
			    cases[i].reopened, cases[i].page_reopen);
		assert_int_equal(fx.log.changed_out.flapping, cases[i].reopened);
		if (cases[i].reopened)
			assert_int_equal(fx.log.changed_out.reopened_after_us, cases[i].ended_ago);
	}
}

// A recovery still owed after a restart is announced (settled) at the
// next evaluation out of DOWN, once; with settle_for 0 that is at once.
static void
test_restore_recovery_owed(void **state)
{
	int64_t t0 = fx.t0;

	(void)state;
	verdict_restore_resolved(fx.verdict, 0, t0 - 60 * S, false, true);
	test_round("UUU", t0);
	assert_int_equal(fx.log.changed, 1);
	assert_true(fx.log.changed_out.settled);
	test_round("UUU", t0 + INTERVAL);
	assert_int_equal(fx.log.changed, 1);
	assert_false(fx.log.evaluated_out.settled);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_probe_now_once_per_interval, test_setup,
		    test_teardown),
		cmocka_unit_test_setup_teardown(test_changes_reach_sink, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_staleness, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_disconnected_abstains, test_setup,
		    test_teardown),
		cmocka_unit_test_setup_teardown(test_hold_and_enable, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_stall_pauses_judging, test_setup,
		    test_teardown),
		cmocka_unit_test_setup_teardown(test_restore_open, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_restore_degraded, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_restore_resolved, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_restore_recovery_owed, test_setup,
		    test_teardown),
	};

	log_init("test_verdict", LOG_LEVEL_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
