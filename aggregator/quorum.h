// SPDX-License-Identifier: Apache-2.0
//
// Quorum: from per-agent probe results to one state per target (DESIGN.md
// §6).  PURE: no I/O, no clock reads, no allocation; every time is a
// parameter (unix µs).  That is what lets tests walk every combination.
//
// Three layers:
//   agent vote   UP / DOWN (after `confirm` consecutive failures that span
//                at least `confirm_span`, first failing attempt to the
//                latest) / ABSTAIN (impaired, disconnected, no or stale
//                result); short of that an agent keeps the vote it had, so
//                a single failure, or a blip shorter than confirm_span,
//                never flips it; a result not newer than the one the vote
//                rests on is ignored (late data never moves a vote
//                backwards).
//   region vote  majority of the region's non-abstaining agents; a tie
//                abstains.
//   target       UP; DEGRADED (some region DOWN, below quorum: a regional
//                incident); DOWN (quorum of regions DOWN, spanning
//                `distinct_domains` failure domains: an outage); UNKNOWN
//                (fewer than `min_voters` regions voting: monitoring blind).
//                Leaving DOWN needs `recover` UP regions for `recover_for`
//                consecutive evaluations with new data.
//   flapping     an outage that starts within `reopen_window` of the last
//                one's end continues it (reopened) and marks it flapping;
//                the recovery of an outage is announced only once the
//                target has stayed out of DOWN for `settle_for`, so a
//                target that flaps pages for its first outage, once more
//                when it starts flapping, and once when it has settled.
#ifndef VANTAGE_QUORUM_H
#define VANTAGE_QUORUM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum quorum_vote { VOTE_ABSTAIN, VOTE_UP, VOTE_DOWN };
enum quorum_state { QSTATE_UNKNOWN, QSTATE_UP, QSTATE_DEGRADED, QSTATE_DOWN };

// One agent's view of one target.  Zero-initialise; feed results in.
struct quorum_agent {
	bool has_vote;         // a settled UP or DOWN vote exists
	enum quorum_vote vote; // VOTE_UP or VOTE_DOWN when has_vote
	unsigned fails;        // consecutive DOWN results
	int64_t last_at;       // started_at of the newest result taken
	int64_t streak_start;  // started_at of the first failure of the streak
	int64_t down_since;    // started_at of the streak that made the vote DOWN
};

// What the caller knows about the agent right now.
struct quorum_agent_ctx {
	bool impaired; // its self-check fails
	bool connected;
	int64_t now;         // evaluation time in the agent's clock (µs)
	int64_t interval_us; // the target's interval
};

// Takes one result.  Returns false when it was ignored as late data.  The
// vote turns DOWN at the failure that makes `confirm` in a row spanning at
// least confirm_span_us (0: any span) from the streak's first failure.
bool quorum_agent_result(struct quorum_agent *a, bool up, int64_t started_at, unsigned confirm,
    int64_t confirm_span_us);
enum quorum_vote quorum_agent_vote(const struct quorum_agent *a, const struct quorum_agent_ctx *c);
// Majority of the non-abstaining votes; a tie (or no vote) abstains.
enum quorum_vote quorum_region_vote(const enum quorum_vote *agent_votes, size_t n);

// "majority", an absolute count, or a percentage of the regions: the
// quorum and recover rules of vantage.yml, parsed by agg_conf.c.
enum quorum_mode { QUORUM_MAJORITY, QUORUM_COUNT, QUORUM_PERCENT };
struct quorum_need {
	enum quorum_mode mode;
	unsigned value; // count for QUORUM_COUNT, 1..100 for QUORUM_PERCENT
};
// Regions needed out of n_regions (at least 1, at most n_regions).
unsigned quorum_needed(struct quorum_need need, size_t n_regions);

struct quorum_params {
	struct quorum_need quorum;  // DOWN regions for an outage
	struct quorum_need recover; // UP regions to recover
	unsigned min_voters;        // 0: same as the quorum count
	unsigned distinct_domains;  // 0 or 1: off
	unsigned recover_for;       // 0: 2
	int64_t reopen_window_us;   // 0: never reopen
	int64_t settle_for_us;      // 0: announce a recovery at once
};

// One region's vote as the target evaluation sees it.
struct quorum_region {
	enum quorum_vote vote;
	int domain;         // failure domain id
	int64_t down_since; // earliest down_since of its DOWN agents
	int64_t up_since;   // newest last_at among its UP agents
};

// A target's state across evaluations.  Zero-initialise (UNKNOWN).
struct quorum_target {
	enum quorum_state state;
	unsigned recover_streak;
	int64_t recover_since; // probe time the recovery quorum first held
	int64_t left_down_at;  // aggregator time the last outage ended, 0 if none
	bool recovery_owed;    // that end is not yet announced (settle_for)
	bool flapping;         // the latest outage was reopened
};

struct quorum_outcome {
	enum quorum_state state; // after this evaluation
	enum quorum_state previous;
	bool changed;
	unsigned regions_up, regions_down, regions_abstain;
	unsigned needed;     // quorum count
	int64_t started_at;  // earliest failure of the DOWN regions, 0 if none
	int64_t resolved_at; // left DOWN: probe time recovery first held
	bool flapping;       // the latest outage was reopened
	// Entered DOWN within reopen_window of the last outage's end: the same
	// outage continues.  page_reopen: this reopening is worth a page (the
	// first one, or one after the recovery was announced).
	bool reopened, page_reopen;
	int64_t reopened_after_us; // reopened: time since the last outage ended
	// The last outage's recovery is due to be announced now: the target
	// has stayed out of DOWN for settle_for.
	bool settled;
	bool blind; // too few voters (state UNKNOWN, or kept DOWN)
};

// Evaluates the target at `now` (aggregator time).  new_data says whether a
// result arrived since the last evaluation: only those count toward
// recover_for, so a 1 s staleness timer cannot hurry a recovery.
void quorum_eval(struct quorum_target *t, const struct quorum_params *p,
    const struct quorum_region *regions, size_t n_regions, int64_t now, bool new_data,
    struct quorum_outcome *out);

// After an aggregator restart, from the incidents in the database: an open
// outage keeps the target DOWN until the recovery quorum holds; a resolved
// one (left_down_at in aggregator time) can still be reopened, and its
// recovery announced if it was not (recovery_owed).
void quorum_restore_open(struct quorum_target *t, bool flapping);
void quorum_restore_resolved(struct quorum_target *t, int64_t left_down_at, bool flapping,
    bool recovery_owed);

const char *quorum_state_name(enum quorum_state s);
const char *quorum_vote_name(enum quorum_vote v);

#endif
