// SPDX-License-Identifier: Apache-2.0
//
// Verdict glue; see verdict.h.  The only place that turns the registry's
// view of agents (connected, impaired) into quorum inputs, so that quorum.c
// itself stays free of I/O and clocks.
//
// Votes go stale when nothing is heard from an agent, but an aggregator that
// was not running (SIGSTOP, a stalled host) heard nothing from anyone, which
// says nothing about the agents or the targets.  When the 1 s timer
// (verdict_tick), or a COMMIT before it, finds that the timer last ran more
// than VERDICT_STALL_US ago, nothing is judged for VERDICT_RESUME_US: the
// agents reconnect and resend what they hold meanwhile, and targets with
// new results keep their dirty flag until then.
#include "verdict.h"

#include <stdlib.h>
#include <string.h>

#include <stdio.h>

#include "clock.h"
#include "log.h"
#include "wire.h"
#include "xmalloc.h"

#define VERDICT_MAX_VOTES 256
#define VERDICT_STALL_US (3LL * 1000000)  // three timer ticks missed
#define VERDICT_RESUME_US (5LL * 1000000) // an agent's heartbeat interval

struct verdict {
	const struct agg_conf *conf;
	struct target_table *targets;
	struct agents *agents;
	struct verdict_sink sink;
	bool enabled;
	bool held;
	int64_t tick_mono;   // the timer's last run
	int64_t resume_mono; // nothing is judged before this
};

struct verdict *
verdict_new(const struct agg_conf *conf, struct target_table *targets, struct agents *agents,
    const struct verdict_sink *sink)
{
	struct verdict *v = xcalloc(1, sizeof(*v));

	v->conf = conf;
	v->targets = targets;
	v->agents = agents;
	if (sink != NULL)
		v->sink = *sink;
	return v;
}

void
verdict_free(struct verdict *v)
{
	free(v);
}

void
verdict_reconfigure(struct verdict *v, const struct agg_conf *conf, struct target_table *targets)
{
	v->conf = conf;
	v->targets = targets;
}

void
verdict_params(const struct target_conf *tc, struct quorum_params *p)
{
	p->quorum = tc->quorum;
	p->recover = tc->recover;
	p->min_voters = tc->min_voters;
	p->distinct_domains = tc->distinct_domains;
	p->recover_for = tc->recover_for;
	p->reopen_window_us = (int64_t)tc->reopen_window_ms * 1000;
	p->settle_for_us = (int64_t)tc->settle_for_ms * 1000;
}

enum quorum_vote
verdict_agent_vote(const struct verdict *v, size_t idx, const struct latest_result *l, int64_t now)
{
	const struct target_conf *tc = targets_conf(v->targets, idx);
	const struct agent_info *ai = agents_get(v->agents, l->agent_slot);
	struct quorum_agent_ctx ctx;

	if (ai == NULL)
		return VOTE_ABSTAIN;
	ctx.connected = agents_connected(ai, now);
	ctx.impaired = ai->impaired || l->impaired;
	// Ingest brought the agent's probe times into our clock (agents.h).
	ctx.now = now;
	ctx.interval_us = (int64_t)tc->interval_ms * 1000;
	return quorum_agent_vote(&l->q, &ctx);
}

static const char *
verdict_domain_of(const struct agg_conf *c, const char *region)
{
	for (size_t k = 0; k < c->n_regions; k++)
		if (strcmp(c->regions[k].name, region) == 0)
			return c->regions[k].domain;
	return NULL;
}

// The regions that judge a target: its own list, else every configured
// region, else (no regions configured) every region an agent reported from.
static size_t
verdict_regions(const struct verdict *v, size_t idx, const char **names, int *domains)
{
	const struct target_conf *tc = targets_conf(v->targets, idx);
	const struct agg_conf *c = v->conf;
	size_t n = 0;

	if (tc->n_regions > 0) {
		for (size_t i = 0; i < tc->n_regions && n < VERDICT_MAX_REGIONS; i++)
			names[n++] = tc->regions[i];
	} else if (c->n_regions > 0) {
		for (size_t i = 0; i < c->n_regions && n < VERDICT_MAX_REGIONS; i++)
			names[n++] = c->regions[i].name;
	} else {
		const struct latest_result *latest;
		size_t nl;

		latest = targets_latest(v->targets, idx, &nl);
		for (size_t i = 0; i < nl && n < VERDICT_MAX_REGIONS; i++) {
			const struct agent_info *ai = agents_get(v->agents, latest[i].agent_slot);
			bool seen = false;

			for (size_t k = 0; ai != NULL && k < n && !seen; k++)
				seen = strcmp(names[k], ai->region) == 0;
			if (ai != NULL && !seen)
				names[n++] = ai->region;
		}
	}
	// Regions share a failure domain id when they name the same domain;
	// a region without one is a domain of its own.
	for (size_t i = 0; i < n; i++) {
		const char *domain = verdict_domain_of(c, names[i]);

		domains[i] = (int)i;
		for (size_t j = 0; j < i && domain != NULL; j++) {
			const char *other = verdict_domain_of(c, names[j]);

			if (other != NULL && strcmp(other, domain) == 0) {
				domains[i] = domains[j];
				break;
			}
		}
	}
	return n;
}

// Gathers each region's vote on target idx at `now`: regions[] for the
// quorum, parts[] (names, reasons) for incidents.  Returns the count.
static size_t
verdict_gather(const struct verdict *v, size_t idx, int64_t now, struct quorum_region *regions,
    struct verdict_region *parts)
{
	const char *names[VERDICT_MAX_REGIONS];
	int domains[VERDICT_MAX_REGIONS];
	enum quorum_vote votes[VERDICT_MAX_VOTES];
	const struct latest_result *latest;
	size_t n, nl;

	n = verdict_regions(v, idx, names, domains);
	latest = targets_latest(v->targets, idx, &nl);
	for (size_t r = 0; r < n; r++) {
		size_t nv = 0;

		regions[r] = (struct quorum_region){ .domain = domains[r] };
		parts[r] = (struct verdict_region){ .name = names[r] };
		for (size_t i = 0; i < nl && nv < VERDICT_MAX_VOTES; i++) {
			const struct agent_info *ai = agents_get(v->agents, latest[i].agent_slot);
			enum quorum_vote vote;

			if (ai == NULL || strcmp(ai->region, names[r]) != 0)
				continue;
			vote = verdict_agent_vote(v, idx, &latest[i], now);
			votes[nv++] = vote;
			if (vote == VOTE_DOWN &&
			    (regions[r].down_since == 0 ||
				latest[i].q.down_since < regions[r].down_since))
				regions[r].down_since = latest[i].q.down_since;
			if (vote == VOTE_DOWN) {
				if (latest[i].http_status != 0)
					snprintf(parts[r].why, sizeof(parts[r].why), "%u %s",
					    latest[i].http_status,
					    wire_reason_name(latest[i].reason));
				else
					snprintf(parts[r].why, sizeof(parts[r].why), "%s",
					    wire_reason_name(latest[i].reason));
			}
			if (vote == VOTE_UP && latest[i].q.last_at > regions[r].up_since)
				regions[r].up_since = latest[i].q.last_at;
		}
		regions[r].vote = quorum_region_vote(votes, nv);
		parts[r].vote = regions[r].vote;
		parts[r].down_since = regions[r].down_since;
		parts[r].up_since = regions[r].up_since;
	}
	return n;
}

size_t
verdict_parts(const struct verdict *v, size_t idx, int64_t now, struct verdict_region *parts,
    size_t max)
{
	struct quorum_region regions[VERDICT_MAX_REGIONS];
	struct verdict_region all[VERDICT_MAX_REGIONS];
	size_t n = verdict_gather(v, idx, now, regions, all);

	if (n > max)
		n = max;
	memcpy(parts, all, n * sizeof(*parts));
	return n;
}

static void
verdict_eval(struct verdict *v, size_t idx, int64_t now, bool new_data)
{
	const struct target_conf *tc = targets_conf(v->targets, idx);
	struct verdict_target *tv = targets_verdict(v->targets, idx);
	struct quorum_region regions[VERDICT_MAX_REGIONS];
	struct verdict_region parts[VERDICT_MAX_REGIONS];
	struct quorum_params params;
	size_t n = verdict_gather(v, idx, now, regions, parts);

	verdict_params(tc, &params);
	quorum_eval(&tv->qt, &params, regions, n, now, new_data, &tv->last);
	tv->dirty = false;
	if (tv->last.changed) {
		tv->state_since = now;
		log_info(
		    "target \"%s\" is now %s (was %s): %u of %u regions down, %u up, %u abstaining%s",
		    tc->key, quorum_state_name(tv->last.state),
		    quorum_state_name(tv->last.previous), tv->last.regions_down, (unsigned)n,
		    tv->last.regions_up, tv->last.regions_abstain,
		    tv->last.flapping ? ", flapping" : "");
	}
	// A settled recovery is news too, without a change of state.
	if ((tv->last.changed || tv->last.settled) && v->sink.changed != NULL)
		v->sink.changed(idx, &tv->last, parts, n, now, v->sink.arg);
	for (size_t r = 0; r < n && r < sizeof(tv->region_votes); r++) {
		enum quorum_vote before = (enum quorum_vote)tv->region_votes[r];

		// A state change already reported every region with it.
		if (before != parts[r].vote && !tv->last.changed && v->sink.region != NULL)
			v->sink.region(idx, &parts[r], before, v->sink.arg);
		tv->region_votes[r] = (uint8_t)parts[r].vote;
	}
	if (v->sink.evaluated != NULL)
		v->sink.evaluated(idx, &tv->last, parts, n, now, v->sink.arg);
}

void
verdict_enable(struct verdict *v)
{
	v->enabled = true;
}

// Whether judging waits after the loop was away (see the top of the file).
static bool
verdict_paused(struct verdict *v)
{
	int64_t mono = clock_mono_us();

	if (v->tick_mono != 0 && mono - v->tick_mono > VERDICT_STALL_US) {
		log_warnx("the aggregator did not run for %.1f s (stopped or starved): judging no "
			  "target for %lld s while the agents reconnect and resend",
		    (double)(mono - v->tick_mono) / 1e6, VERDICT_RESUME_US / 1000000);
		v->resume_mono = mono + VERDICT_RESUME_US;
		v->tick_mono = mono;
	}
	return mono < v->resume_mono;
}

void
verdict_tick(struct verdict *v)
{
	verdict_paused(v);
	v->tick_mono = clock_mono_us();
}

void
verdict_hold(struct verdict *v, bool held)
{
	v->held = held;
}

static void
verdict_eval_dirty(struct verdict *v, int64_t now)
{
	if (!v->enabled || v->held || verdict_paused(v))
		return;
	for (size_t i = 0; i < targets_count(v->targets); i++)
		if (targets_verdict(v->targets, i)->dirty)
			verdict_eval(v, i, now, true);
}

void
verdict_on_committed(struct verdict *v, const uint32_t *targets, size_t n, int64_t now)
{
	for (size_t i = 0; i < n; i++) {
		struct verdict_target *tv = targets_verdict(v->targets, targets[i]);

		if (tv != NULL)
			tv->dirty = true;
	}
	verdict_eval_dirty(v, now);
}

bool
verdict_probe_now(struct verdict *v, size_t idx, int64_t now)
{
	const struct target_conf *tc = targets_conf(v->targets, idx);
	struct verdict_target *tv = targets_verdict(v->targets, idx);

	if (tv == NULL || tv->qt.state == QSTATE_DOWN ||
	    (tv->probe_now_at != 0 && now - tv->probe_now_at < (int64_t)tc->interval_ms * 1000))
		return false;
	tv->probe_now_at = now;
	return true;
}

void
verdict_restore_open(struct verdict *v, size_t idx, enum quorum_state state, bool flapping)
{
	struct verdict_target *tv = targets_verdict(v->targets, idx);

	if (state == QSTATE_DOWN) {
		// The outage continues until the recovery quorum says so.
		quorum_restore_open(&tv->qt, flapping);
		tv->last.state = QSTATE_DOWN;
	} else if (state == QSTATE_DEGRADED && tv->qt.state != QSTATE_DOWN) {
		tv->qt.state = tv->last.state = QSTATE_DEGRADED;
	}
}

void
verdict_restore_resolved(struct verdict *v, size_t idx, int64_t resolved_at, bool flapping,
    bool recovery_owed)
{
	quorum_restore_resolved(&targets_verdict(v->targets, idx)->qt, resolved_at, flapping,
	    recovery_owed);
}

const struct verdict_target *
verdict_state(const struct verdict *v, size_t idx)
{
	return targets_verdict(v->targets, idx);
}

void
verdict_eval_all(struct verdict *v, int64_t now)
{
	if (!v->enabled || v->held || verdict_paused(v))
		return;
	for (size_t i = 0; i < targets_count(v->targets); i++)
		verdict_eval(v, i, now, targets_verdict(v->targets, i)->dirty);
}
