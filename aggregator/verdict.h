// SPDX-License-Identifier: Apache-2.0
//
// Verdict: the glue between live state and the pure quorum code, and the
// second stage of the pipeline ingest -> store -> verdict -> incident ->
// notify.  For each target it gathers the votes of the agents that reported
// on it (with their connection, self-check and clock offset), groups them
// by region and failure domain, runs quorum_eval, and reports every change
// of state to its sink (incidents).  Runs when ingest reports results
// committed, and on a 1 s timer for staleness.  It owns each target's
// struct verdict_target and decides when other agents are asked to probe
// a failing target at once (ProbeNow).
#ifndef VANTAGE_VERDICT_H
#define VANTAGE_VERDICT_H

#include <stdbool.h>
#include <stdint.h>

#include "agents.h"
#include "agg_conf.h"
#include "quorum.h"
#include "targets.h"
#include "verdict_state.h"

// One region's part in a verdict, for incidents and their timeline.
struct verdict_region {
	const char *name;
	enum quorum_vote vote;
	int64_t down_since; // DOWN: first failure of its failing agents
	int64_t up_since;   // UP: probe time of its newest success
	char why[96];       // DOWN: what its latest failure was ("503 http_status")
};

// The next stage of the pipeline (incidents), as main.c connects it.  Any
// callback may be NULL.
struct verdict_sink {
	// The target's state changed, or an outage's recovery settled
	// (out->settled) without a change of state.
	void (*changed)(size_t target_idx, const struct quorum_outcome *out,
	    const struct verdict_region *regions, size_t n_regions, int64_t now, void *arg);
	// A region's vote changed while the target's state did not (a
	// region failing or recovering during an incident).
	void (*region)(size_t target_idx, const struct verdict_region *region,
	    enum quorum_vote previous, void *arg);
	// After every evaluation, changed or not (new results, the 1 s
	// timer): where the next stage's own timers run.
	void (*evaluated)(size_t target_idx, const struct quorum_outcome *out,
	    const struct verdict_region *regions, size_t n_regions, int64_t now, void *arg);
	void *arg;
};

struct verdict;

// All borrowed; the sink is copied.
struct verdict *verdict_new(const struct agg_conf *conf, struct target_table *targets,
    struct agents *agents, const struct verdict_sink *sink);
void verdict_free(struct verdict *v);
void verdict_reconfigure(struct verdict *v, const struct agg_conf *conf,
    struct target_table *targets);
// Until this is called (incidents restored from the database), nothing is
// evaluated: a state change before that could open a duplicate incident.
void verdict_enable(struct verdict *v);
// While held, nothing is evaluated and every state stays as it was: the
// aggregator holds verdicts while agents cannot deliver (database down,
// then their backlog catching up), because their silence then says
// nothing about the targets.
void verdict_hold(struct verdict *v, bool held);
// Ingest's hook: results for these targets were committed.  Marks them
// and evaluates every marked target (those of earlier commits too, when
// judging was held).
void verdict_on_committed(struct verdict *v, const uint32_t *targets, size_t n, int64_t now);
// Ingest's hook: target idx failed from one agent (a DOWN result, or a
// probe that hangs).  True when the other agents probing it should probe
// it now: it is not DOWN already and was not asked for within its
// interval.  That is the fast confirmation of an outage.
bool verdict_probe_now(struct verdict *v, size_t idx, int64_t now);
// What a restart lost of target idx's state, from its incidents
// (incident_restore): an open outage keeps it DOWN and an open regional
// incident DEGRADED until the quorum says otherwise.
void verdict_restore_open(struct verdict *v, size_t idx, enum quorum_state state, bool flapping);
// Its latest outage ended at resolved_at (probe time): it may reopen, and
// its recovery alert is still owed unless it went.
void verdict_restore_resolved(struct verdict *v, size_t idx, int64_t resolved_at, bool flapping,
    bool recovery_owed);
// The verdict's state of target idx (verdict_state.h), for reading.
const struct verdict_target *verdict_state(const struct verdict *v, size_t idx);
// Evaluates every target (staleness timer).
void verdict_eval_all(struct verdict *v, int64_t now);
// First thing of the 1 s timer, held or not: notices when the aggregator
// itself was not running, and then judges nothing for a while (verdict.c).
void verdict_tick(struct verdict *v);
#define VERDICT_MAX_REGIONS 64

// Each region's current part in target idx's verdict (names borrowed from
// the configuration).  Returns how many were written (at most max).
size_t verdict_parts(const struct verdict *v, size_t idx, int64_t now, struct verdict_region *parts,
    size_t max);
// The quorum parameters of a target.
void verdict_params(const struct target_conf *tc, struct quorum_params *p);
// The vote agent_slot currently casts on target idx (for the API).
enum quorum_vote verdict_agent_vote(const struct verdict *v, size_t idx,
    const struct latest_result *l, int64_t now);

#endif
