// SPDX-License-Identifier: Apache-2.0
//
// Verdict: the glue between live state and the pure quorum code.  For each
// target it gathers the votes of the agents that reported on it (with their
// connection, self-check and clock offset), groups them by region and
// failure domain, runs quorum_eval, and reports every change of state to a
// callback (where incidents are opened and closed).  Runs after the COMMIT
// that stored new results, and on a 1 s timer for staleness.
#ifndef VANTAGE_VERDICT_H
#define VANTAGE_VERDICT_H

#include <stdbool.h>
#include <stdint.h>

#include "agents.h"
#include "agg_conf.h"
#include "quorum.h"
#include "targets.h"

// One region's part in a verdict, for incidents and their timeline.
struct verdict_region {
	const char *name;
	enum quorum_vote vote;
	int64_t down_since; // DOWN: first failure of its failing agents
	int64_t up_since;   // UP: probe time of its newest success
	char why[96];       // DOWN: what its latest failure was ("503 http_status")
};

typedef void (*verdict_change_cb)(size_t target_idx, const struct quorum_outcome *out,
    const struct verdict_region *regions, size_t n_regions, void *arg);

// A region's vote changed while the target's state did not (a region
// failing or recovering during an incident).
typedef void (*verdict_region_cb)(size_t target_idx, const struct verdict_region *region,
    enum quorum_vote previous, void *arg);

struct verdict;

// All borrowed.
struct verdict *verdict_new(const struct agg_conf *conf, struct target_table *targets,
    struct agents *agents, verdict_change_cb cb, verdict_region_cb region_cb, void *arg);
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
// Evaluates the targets with new results (after their COMMIT).
void verdict_eval_dirty(struct verdict *v, int64_t now);
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
// True when the agent in agent_slot probes target idx (its region is one
// of the target's regions).
bool verdict_agent_probes(const struct verdict *v, size_t idx, const char *region);

#endif
