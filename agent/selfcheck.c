// SPDX-License-Identifier: Apache-2.0
//
// Agent self-check; see selfcheck.h.  One round at a time: it holds a
// reference to the control table it started with, so a Config that
// arrives meanwhile never frees a control a running probe still reads.
// Rounds are short (each probe is bounded by its control's timeout) and
// rare (every control interval, or at most once per retry_interval after
// target failures), so a plain array and a linear scan are enough.
#include "selfcheck.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "probe.h"
#include "wire.h"
#include "xmalloc.h"

#define SELFCHECK_HEALTHY VANTAGE__AGENT_STATE__AGENT_STATE_HEALTHY
#define SELFCHECK_IMPAIRED VANTAGE__AGENT_STATE__AGENT_STATE_IMPAIRED

// One Config's controls, shared by the driver and the round running.
struct selfcheck_table {
	struct probe_target *controls;
	size_t n_controls;
	uint32_t interval_ms; // smallest control interval
	unsigned refs;
};

struct selfcheck_round {
	struct selfcheck_table *table; // referenced
	struct probe_result *results;  // one per control, filled by its prober
	size_t pending;                // probes still running
	bool on_demand;
};

struct selfcheck {
	struct event_base *base;
	struct probe_dispatch *dispatch;
	struct event *timer; // the next periodic round
	selfcheck_done_cb done;
	void *arg;
	struct selfcheck_table *table; // current; never NULL
	struct selfcheck_round *round; // running, or NULL
	int state;
	int64_t last_done_mono; // end of the last round, 0 before the first
	bool configured;        // a Config arrived
	bool stopped;
	uint64_t rounds;
	uint64_t rounds_on_demand;
};

// --- judging a round (pure) ---

// Appends to buf unless that would leave less than `reserve` bytes (plus
// the NUL) free; then leaves buf as it was and returns false.
static bool selfcheck_put(char *buf, size_t len, size_t *off, size_t reserve, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static bool
selfcheck_put(char *buf, size_t len, size_t *off, size_t reserve, const char *fmt, ...)
{
	char piece[SELFCHECK_REASON_MAX + 1];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(piece, sizeof(piece), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(piece) || *off + (size_t)n + reserve >= len)
		return false;
	memcpy(buf + *off, piece, (size_t)n + 1);
	*off += (size_t)n;
	return true;
}

int
selfcheck_judge(const struct selfcheck_sample *samples, size_t n, int prev_state, char *reason,
    size_t reason_len)
{
	static const char more[] = " ...";
	size_t failed = 0, listed = 0, off = 0;
	bool dns = false, majority_failed;
	int state;

	for (size_t i = 0; i < n; i++) {
		if (samples[i].outcome == VANTAGE__OUTCOME__OUTCOME_UP)
			continue;
		failed++;
		// The agent could not even resolve a name: every DOWN it
		// would report says more about its resolver than the target.
		if (samples[i].reason == VANTAGE__REASON__REASON_DNS)
			dns = true;
	}
	majority_failed = failed * 2 > n;
	if (n == 0)
		state = SELFCHECK_HEALTHY;
	else if (majority_failed || dns)
		state = SELFCHECK_IMPAIRED;
	else if ((n - failed) * 2 > n)
		state = SELFCHECK_HEALTHY;
	else
		state = prev_state; // a tie decides nothing

	if (reason_len == 0)
		return state;
	reason[0] = '\0';
	if (failed == 0)
		return state;
	// Whole entries only, and " ..." when the rest does not fit: the text
	// must stay valid for the wire (WIRE_MAX_ERROR) whatever the keys.
	if (!selfcheck_put(reason, reason_len, &off, sizeof(more) - 1,
		"%s%zu of %zu controls failed:",
		dns && !majority_failed ? "dns resolution failed; " : "", failed, n))
		return state;
	for (size_t i = 0; i < n; i++) {
		const char *why;

		if (samples[i].outcome == VANTAGE__OUTCOME__OUTCOME_UP)
			continue;
		why = samples[i].outcome == VANTAGE__OUTCOME__OUTCOME_DOWN ?
		    wire_reason_name(samples[i].reason) :
		    wire_outcome_name(samples[i].outcome);
		if (!selfcheck_put(reason, reason_len, &off,
			listed + 1 < failed ? sizeof(more) - 1 : 0, "%s %s %s",
			listed > 0 ? "," : "", samples[i].key, why)) {
			selfcheck_put(reason, reason_len, &off, 0, "%s", more);
			break;
		}
		listed++;
	}
	return state;
}

// --- the driver ---

static void
selfcheck_table_unref(struct selfcheck_table *tb)
{
	if (tb == NULL || --tb->refs > 0)
		return;
	for (size_t i = 0; i < tb->n_controls; i++)
		probe_target_clear(&tb->controls[i]);
	free(tb->controls);
	free(tb);
}

static void
selfcheck_round_free(struct selfcheck_round *rd)
{
	if (rd == NULL)
		return;
	selfcheck_table_unref(rd->table);
	free(rd->results);
	free(rd);
}

// Periodic rounds: every control interval, and while impaired at least
// every SELFCHECK_IMPAIRED_RECHECK_MS, counted from the end of the last
// round (an on-demand round also counts).
static void
selfcheck_arm(struct selfcheck *sc)
{
	uint32_t period_ms = sc->table->interval_ms;
	struct timeval tv;

	evtimer_del(sc->timer);
	if (sc->stopped || sc->table->n_controls == 0)
		return;
	if (sc->state == SELFCHECK_IMPAIRED && period_ms > SELFCHECK_IMPAIRED_RECHECK_MS)
		period_ms = SELFCHECK_IMPAIRED_RECHECK_MS;
	tv = clock_tv((int64_t)period_ms * 1000);
	evtimer_add(sc->timer, &tv);
}

static void
selfcheck_set_state(struct selfcheck *sc, int state, const char *reason)
{
	if (state == sc->state)
		return;
	if (state == SELFCHECK_IMPAIRED)
		log_warnx("self-check failed: this agent's own network looks impaired (%s); its "
			  "results are marked impaired and count as abstentions",
		    reason);
	else
		log_info("self-check passed: this agent's network looks healthy again%s%s%s",
		    *reason ? " (" : "", reason, *reason ? ")" : "");
	sc->state = state;
}

static void
selfcheck_finish(struct selfcheck *sc)
{
	struct selfcheck_round *rd = sc->round;
	struct selfcheck_sample *samples;
	char reason[SELFCHECK_REASON_MAX + 1];
	size_t n = rd->table->n_controls;
	int state;

	samples = xcalloc(n ? n : 1, sizeof(*samples));
	for (size_t i = 0; i < n; i++) {
		samples[i].key = rd->table->controls[i].key;
		samples[i].outcome = rd->results[i].outcome;
		samples[i].reason = rd->results[i].reason;
		if (rd->results[i].outcome != VANTAGE__OUTCOME__OUTCOME_UP)
			log_debug("control \"%s\" failed: %s", samples[i].key,
			    rd->results[i].error);
	}
	// Controls removed meanwhile: nothing left to be impaired by.
	state = selfcheck_judge(samples, sc->table->n_controls ? n : 0, sc->state, reason,
	    sizeof(reason));
	free(samples);
	log_debug("self-check round (%s) done: %s%s%s", rd->on_demand ? "on demand" : "periodic",
	    state == SELFCHECK_IMPAIRED ? "impaired" : "healthy", *reason ? ": " : "", reason);
	sc->round = NULL;
	selfcheck_round_free(rd);
	sc->last_done_mono = clock_mono_us();
	selfcheck_set_state(sc, state, reason);
	selfcheck_arm(sc);
	sc->done(state, reason, sc->arg);
}

static void
selfcheck_on_probe_done(struct probe_result *r, void *arg)
{
	struct selfcheck *sc = arg;

	// Only the running round has probes in flight (free abandons them
	// without calling back).
	if (sc->round == NULL || sc->round->pending == 0) {
		log_warnx("self-check: result of control \"%s\" outside a round ignored",
		    r->target->key);
		return;
	}
	if (--sc->round->pending == 0)
		selfcheck_finish(sc);
}

static void
selfcheck_start(struct selfcheck *sc, bool on_demand)
{
	struct selfcheck_table *tb = sc->table;
	struct selfcheck_round *rd;
	int64_t wall = clock_wall_us();

	if (sc->round != NULL || sc->stopped || tb->n_controls == 0)
		return;
	rd = xcalloc(1, sizeof(*rd));
	rd->table = tb;
	tb->refs++;
	rd->results = xcalloc(tb->n_controls, sizeof(*rd->results));
	rd->pending = tb->n_controls;
	rd->on_demand = on_demand;
	sc->round = rd;
	sc->rounds++;
	if (on_demand)
		sc->rounds_on_demand++;
	evtimer_del(sc->timer);
	for (size_t i = 0; i < tb->n_controls; i++) {
		struct probe_result *r = &rd->results[i];

		r->target = &tb->controls[i];
		r->config_version = 0;
		r->trigger = VANTAGE__TRIGGER__TRIGGER_SCHEDULED;
		r->scheduled_at_us = r->started_at_us = wall;
		// A probe that cannot start was filled in as AGENT_ERROR.
		if (probe_dispatch_start(sc->dispatch, &tb->controls[i], r) < 0)
			rd->pending--;
	}
	if (rd->pending == 0)
		selfcheck_finish(sc);
}

static void
selfcheck_on_timer(evutil_socket_t fd, short what, void *arg)
{
	selfcheck_start(arg, false);
}

struct selfcheck *
selfcheck_new(struct event_base *base, const char *source_ip, selfcheck_done_cb done, void *arg)
{
	struct selfcheck *sc = xcalloc(1, sizeof(*sc));

	sc->base = base;
	sc->done = done;
	sc->arg = arg;
	sc->state = SELFCHECK_HEALTHY;
	sc->table = xcalloc(1, sizeof(*sc->table));
	sc->table->refs = 1;
	sc->timer = evtimer_new(base, selfcheck_on_timer, sc);
	// Its own prober, bound to the same source address as the targets'
	// so that controls travel the same network path.
	sc->dispatch = probe_dispatch_new(base, source_ip, NULL, 0, selfcheck_on_probe_done, sc);
	return sc;
}

void
selfcheck_free(struct selfcheck *sc)
{
	if (sc == NULL)
		return;
	probe_dispatch_free(sc->dispatch);
	selfcheck_round_free(sc->round);
	selfcheck_table_unref(sc->table);
	event_free(sc->timer);
	free(sc);
}

void
selfcheck_set_config(struct selfcheck *sc, const Vantage__Config *config)
{
	struct selfcheck_table *tb = xcalloc(1, sizeof(*tb));
	size_t skipped = 0, had = sc->table->n_controls;
	bool first = !sc->configured;

	tb->refs = 1;
	tb->controls = xcalloc(config->n_controls ? config->n_controls : 1, sizeof(*tb->controls));
	for (size_t i = 0; i < config->n_controls; i++) {
		const Vantage__Target *src = config->controls[i];

		// A control this agent cannot probe would look like a
		// failing one and make it impaired for nothing.
		if (!probe_dispatch_supports(sc->dispatch, src->kind)) {
			skipped++;
			continue;
		}
		probe_target_copy(&tb->controls[tb->n_controls], src);
		if (tb->interval_ms == 0 || src->interval_ms < tb->interval_ms)
			tb->interval_ms = src->interval_ms;
		tb->n_controls++;
	}
	if (skipped > 0)
		log_warnx("self-check: ignoring %zu controls of a kind this agent cannot probe",
		    skipped);
	selfcheck_table_unref(sc->table);
	sc->table = tb;
	sc->configured = true;
	if (tb->n_controls == 0) {
		// Said once, not on every reconnect's Config.
		if (first || had > 0)
			log_info("no control targets configured: the self-check always reports "
				 "healthy");
		if (sc->round == NULL && sc->state != SELFCHECK_HEALTHY) {
			selfcheck_set_state(sc, SELFCHECK_HEALTHY, "");
			sc->done(sc->state, "", sc->arg);
		}
		evtimer_del(sc->timer);
		return;
	}
	log_info("self-check uses %zu control targets, every %u ms", tb->n_controls,
	    (unsigned)tb->interval_ms);
	// Judge the network now rather than an interval from now; if a round
	// runs, its end arms the next one.
	selfcheck_start(sc, false);
}

void
selfcheck_on_failure(struct selfcheck *sc, uint32_t max_age_ms)
{
	if (sc->round != NULL || sc->stopped || sc->table->n_controls == 0)
		return;
	if (sc->last_done_mono != 0 &&
	    clock_mono_us() - sc->last_done_mono < (int64_t)max_age_ms * 1000)
		return;
	log_debug("a target failed: running the self-check now");
	selfcheck_start(sc, true);
}

bool
selfcheck_running(const struct selfcheck *sc)
{
	return sc->round != NULL;
}

void
selfcheck_stop(struct selfcheck *sc)
{
	sc->stopped = true;
	evtimer_del(sc->timer);
}

int
selfcheck_state(const struct selfcheck *sc)
{
	return sc->state;
}
