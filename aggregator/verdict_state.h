// SPDX-License-Identifier: Apache-2.0
//
// What verdict.c keeps of one target across evaluations.  It lives in the
// target's slot of the table (targets.c, so that a reload carries it over
// with the target) but only verdict.c writes it; everyone else reads it
// through verdict_state().
#ifndef VANTAGE_VERDICT_STATE_H
#define VANTAGE_VERDICT_STATE_H

#include <stdbool.h>
#include <stdint.h>

#include "quorum.h"

struct verdict_target {
	struct quorum_target qt;
	struct quorum_outcome last; // of the latest evaluation
	int64_t state_since;        // aggregator time of the last change
	int64_t probe_now_at;       // when ProbeNow was last asked for it
	bool dirty;                 // results committed since the last evaluation
	uint8_t region_votes[64];   // each region's vote at the last evaluation
};

#endif
