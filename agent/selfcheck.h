// SPDX-License-Identifier: Apache-2.0
//
// The agent's self-check (DESIGN.md §4, §6): it probes the aggregator's
// control targets -- canaries that are up from everywhere -- to tell "this
// target is down" from "my own network is broken".  A round probes every
// control at once; when most of them fail, or a control's name cannot even
// be resolved, the agent is IMPAIRED, and its heartbeats and results say so,
// so that the aggregator counts its votes as abstentions instead of DOWN.
// Rounds run every control interval and on demand after a target failure;
// while a round runs, probe.c holds back the retries that would confirm
// that failure, so a confirming result always carries a fresh verdict.
// Control results are never sent as results.  Never blocks: probes go
// through its own probe dispatch (probe.h) on the agent's one loop, bounded
// by each control's timeout; controls of a kind without a prober are
// skipped.
#ifndef VANTAGE_SELFCHECK_H
#define VANTAGE_SELFCHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "vantage.pb-c.h"

#define SELFCHECK_REASON_MAX 256 // WIRE_MAX_ERROR: it travels in Heartbeat.state_reason
// While impaired, rounds come at least this often, so that a healed
// network is noticed (and the agent's votes count again) within seconds
// even when controls are probed rarely.
#define SELFCHECK_IMPAIRED_RECHECK_MS 5000

// --- the pure part: judging one round (no I/O, no clock) ---

struct selfcheck_sample {
	const char *key; // control key, borrowed
	int outcome;     // VANTAGE__OUTCOME__*
	int reason;      // VANTAGE__REASON__*
};

// The state after a round with these control results: IMPAIRED when a
// majority failed or any failed to resolve (dns), HEALTHY when a majority
// succeeded, and prev_state on a tie (one round that cannot decide does not
// flip the state).  No controls: HEALTHY.  Writes into reason (at most
// reason_len - 1 bytes, cut at a whole entry) a summary such as "2 of 2
// controls failed: control-1 timeout, control-2 refused", or "" when all
// succeeded.  Returns VANTAGE__AGENT_STATE__*.
int selfcheck_judge(const struct selfcheck_sample *samples, size_t n, int prev_state, char *reason,
    size_t reason_len);

// --- the driver ---

// Called at the end of every round with the state it decided (changed or
// not); reason is valid only during the call.
typedef void (*selfcheck_done_cb)(int state, const char *reason, void *arg);

struct selfcheck;

// base is borrowed; source_ip may be NULL and is the one the probes use.
struct selfcheck *selfcheck_new(struct event_base *base, const char *source_ip,
    selfcheck_done_cb done, void *arg);
// Abandons a running round without calling done.  Accepts NULL.
void selfcheck_free(struct selfcheck *sc);
// Takes the Config's controls (copied) and starts a round at once.  A
// round already running finishes with the controls it had.
void selfcheck_set_config(struct selfcheck *sc, const Vantage__Config *config);
// A target probe failed: start a round now, unless one is running or the
// last one ended less than max_age_ms ago (its verdict is fresh enough).
void selfcheck_on_failure(struct selfcheck *sc, uint32_t max_age_ms);
// True while a round runs: retries wait for its verdict.
bool selfcheck_running(const struct selfcheck *sc);
// No more rounds (shutdown); a running one is abandoned at free.
void selfcheck_stop(struct selfcheck *sc);
int selfcheck_state(const struct selfcheck *sc);

#endif
