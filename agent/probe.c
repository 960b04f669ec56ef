// SPDX-License-Identifier: Apache-2.0
//
// Probe table and dispatch; see probe.h.  Owns the scheduler and one timer
// set to the scheduler's next due time.  Copies every target it gets from a
// Config, so nothing here points into a decoded message.
#include "probe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "probe_http.h"
#include "sched.h"
#include "xmalloc.h"

// The kinds this agent probes, by VANTAGE__PROBE_KIND__*.  TCP, DNS and
// ICMP targets are accepted in a Config but have no prober yet: their
// probes end as AGENT_ERROR, and the self-check skips such controls.
static const struct probe_ops *const probe_kinds[] = {
	[VANTAGE__PROBE_KIND__PROBE_KIND_HTTP] = &probe_http_ops,
};
#define PROBE_N_KINDS (sizeof(probe_kinds) / sizeof(probe_kinds[0]))
// Room for every kind of the wire protocol (vantage.proto has 5).
#define PROBE_DISPATCH_MAX_KINDS 8

// One Config's targets.  Probes in flight hold a reference, so a reload
// never frees a target a running probe still reads.
struct probe_table {
	struct probe_target *targets;
	size_t n_targets;
	uint64_t config_version;
	unsigned refs;
};

// A probe that is running: the result it will fill and where it came from.
struct probe_slot {
	struct probe_table *table;
	size_t target; // index in table
	struct probe_result result;
	struct probe_slot *next_free;
};

struct probe {
	struct event_base *base;
	struct event *timer;
	struct sched *sched;
	struct probe_dispatch *dispatch;
	probe_done_cb done;
	void *arg;
	probe_hold_cb hold;
	void *hold_arg;
	probe_suspect_cb suspect;
	void *suspect_arg;
	unsigned max_concurrency;
	size_t in_flight;
	size_t retrying; // targets with a retry pending
	char *phase_salt;
	bool stopped;
	struct probe_table *table; // current; never NULL
	struct probe_slot *free_slots;
	uint64_t skipped_busy; // due while the previous probe still ran
	uint64_t skipped_held; // due while its retry waited for the hold
	uint64_t unknown_keys;
};

static void probe_arm(struct probe *p);

const struct probe_ops *
probe_ops_find(int kind)
{
	if (kind < 0 || (size_t)kind >= PROBE_N_KINDS)
		return NULL;
	return probe_kinds[kind];
}

void
probe_target_clear(struct probe_target *t)
{
	const struct probe_ops *ops = probe_ops_find(t->kind);

	if (ops != NULL)
		ops->spec_clear(t);
	free(t->key);
	memset(t, 0, sizeof(*t));
}

void
probe_target_copy(struct probe_target *t, const Vantage__Target *src)
{
	const struct probe_ops *ops = probe_ops_find(src->kind);

	memset(t, 0, sizeof(*t));
	t->key = xstrdup(src->key);
	t->kind = src->kind;
	t->interval_ms = src->interval_ms;
	t->timeout_ms = src->timeout_ms;
	t->confirm = src->confirm;
	t->retry_interval_ms = src->retry_interval_ms;
	t->confirm_span_ms = src->confirm_span_ms;
	if (ops != NULL)
		ops->spec_copy(t, src);
}

// --- the dispatch: one prober instance per kind ---

struct probe_dispatch {
	struct event_base *base;
	char *source_ip;
	const struct probe_ops *const *table;
	size_t n_kinds;
	void *probers[PROBE_DISPATCH_MAX_KINDS]; // made on first use
	probe_dispatch_done_cb done;
	void *arg;
};

static const struct probe_ops *
probe_dispatch_ops(const struct probe_dispatch *d, int kind)
{
	if (kind < 0 || (size_t)kind >= d->n_kinds)
		return NULL;
	return d->table[kind];
}

static void
probe_dispatch_on_finished(struct probe_result *r, void *job, void *arg)
{
	struct probe_dispatch *d = arg;
	int kind = r->target->kind;

	probe_dispatch_ops(d, kind)->fill(d->probers[kind], job, r);
	d->done(r, d->arg);
}

struct probe_dispatch *
probe_dispatch_new(struct event_base *base, const char *source_ip,
    const struct probe_ops *const *table, size_t n_kinds, probe_dispatch_done_cb done, void *arg)
{
	struct probe_dispatch *d = xcalloc(1, sizeof(*d));

	d->base = base;
	d->source_ip = source_ip != NULL ? xstrdup(source_ip) : NULL;
	d->table = table != NULL ? table : probe_kinds;
	d->n_kinds = table != NULL ? n_kinds : PROBE_N_KINDS;
	if (d->n_kinds > PROBE_DISPATCH_MAX_KINDS)
		d->n_kinds = PROBE_DISPATCH_MAX_KINDS;
	d->done = done;
	d->arg = arg;
	return d;
}

void
probe_dispatch_free(struct probe_dispatch *d)
{
	if (d == NULL)
		return;
	for (size_t kind = 0; kind < d->n_kinds; kind++)
		if (d->probers[kind] != NULL)
			d->table[kind]->free(d->probers[kind]);
	free(d->source_ip);
	free(d);
}

bool
probe_dispatch_supports(const struct probe_dispatch *d, int kind)
{
	return probe_dispatch_ops(d, kind) != NULL;
}

int
probe_dispatch_start(struct probe_dispatch *d, const struct probe_target *t, struct probe_result *r)
{
	const struct probe_ops *ops = probe_dispatch_ops(d, t->kind);

	if (ops == NULL) {
		// Other kinds are filtered out by the aggregator until this
		// agent supports them; report rather than pretend.
		r->outcome = VANTAGE__OUTCOME__OUTCOME_AGENT_ERROR;
		r->reason = VANTAGE__REASON__REASON_INTERNAL;
		snprintf(r->error, sizeof(r->error), "probe kind %d not supported", t->kind);
		return -1;
	}
	if (d->probers[t->kind] == NULL)
		d->probers[t->kind] = ops->new (d->base, d->source_ip, probe_dispatch_on_finished,
		    d);
	return ops->start(d->probers[t->kind], t, r);
}

void
probe_dispatch_cancel(struct probe_dispatch *d, struct probe_result *r)
{
	const struct probe_ops *ops = probe_dispatch_ops(d, r->target->kind);

	if (ops != NULL && d->probers[r->target->kind] != NULL)
		ops->cancel(d->probers[r->target->kind], r);
}

// --- the target table and schedule ---

static void
probe_table_unref(struct probe_table *tb)
{
	if (tb == NULL || --tb->refs > 0)
		return;
	for (size_t i = 0; i < tb->n_targets; i++)
		probe_target_clear(&tb->targets[i]);
	free(tb->targets);
	free(tb);
}

static struct probe_slot *
probe_slot_get(struct probe *p)
{
	struct probe_slot *s = p->free_slots;

	if (s != NULL)
		p->free_slots = s->next_free;
	else
		s = xmalloc(sizeof(*s));
	memset(s, 0, sizeof(*s));
	s->table = p->table;
	s->table->refs++;
	return s;
}

static void
probe_slot_put(struct probe *p, struct probe_slot *s)
{
	probe_table_unref(s->table);
	s->table = NULL;
	s->next_free = p->free_slots;
	p->free_slots = s;
}

static bool
probe_held(const struct probe *p)
{
	return p->hold != NULL && p->hold(p->hold_arg);
}

// A target whose retry waits for the hold is not probed otherwise either:
// that probe would confirm the failure before the self-check has spoken.
static bool
probe_skip_held(struct probe *p, const struct probe_target *t)
{
	if (t->retry_at == 0 || !probe_held(p))
		return false;
	p->skipped_held++;
	log_debug("target \"%s\" is due but its retry waits for the self-check", t->key);
	return true;
}

static void
probe_retry_clear(struct probe *p, struct probe_target *t)
{
	if (t->retry_at != 0) {
		t->retry_at = 0;
		p->retrying--;
	}
}

// The retry rule: after a failure, again in retry_interval, until one
// success, or `confirm` failures in a row that span confirm_span from the
// first (the aggregator's rule for a DOWN vote, on the same start times).
static void
probe_follow_up(struct probe *p, struct probe_target *t, const struct probe_result *r)
{
	unsigned confirm = t->confirm > 0 ? t->confirm : 1;

	if (r->outcome == VANTAGE__OUTCOME__OUTCOME_UP) {
		t->fails = 0;
		probe_retry_clear(p, t);
	} else if (r->outcome == VANTAGE__OUTCOME__OUTCOME_DOWN) {
		if (t->fails++ == 0)
			t->streak_started_us = r->started_at_us;
		if ((t->fails < confirm ||
			r->started_at_us - t->streak_started_us <
			    (int64_t)t->confirm_span_ms * 1000) &&
		    !p->stopped) {
			int64_t now = clock_mono_us();

			if (t->retry_at == 0)
				p->retrying++;
			// Attempts start retry_interval apart; one that took longer
			// (a timeout) is followed at once.
			t->retry_at = t->started_mono + (int64_t)t->retry_interval_ms * 1000;
			if (t->retry_at < now)
				t->retry_at = now;
		} else {
			probe_retry_clear(p, t);
		}
	}
}

static void
probe_on_done(struct probe_result *r, void *arg)
{
	struct probe *p = arg;
	struct probe_slot *s = (struct probe_slot *)((char *)r -
	    offsetof(struct probe_slot, result));

	p->in_flight--;
	s->table->targets[s->target].in_flight = false;
	p->done(r, p->arg);
	if (s->table == p->table)
		probe_follow_up(p, &p->table->targets[s->target], r);
	probe_slot_put(p, s);
	probe_arm(p);
}

static void
probe_start(struct probe *p, size_t idx, int trigger, int64_t scheduled_mono, int64_t now_mono)
{
	struct probe_target *t = &p->table->targets[idx];
	struct probe_slot *s;
	int64_t wall = clock_wall_us();

	s = probe_slot_get(p);
	s->target = idx;
	s->result.target = t;
	s->result.config_version = p->table->config_version;
	s->result.trigger = trigger;
	s->result.started_at_us = wall;
	s->result.scheduled_at_us = wall - (now_mono - scheduled_mono);
	t->started_mono = now_mono;
	t->suspect_sent = false;
	t->in_flight = true;
	p->in_flight++;
	if (probe_dispatch_start(p->dispatch, t, &s->result) < 0) {
		t->in_flight = false;
		p->in_flight--;
		p->done(&s->result, p->arg);
		probe_slot_put(p, s);
	}
}

#define PROBE_SUSPECT_BATCH 64

// Running probes past their retry_interval without an answer are reported
// once each (batched): the aggregator may then have the other regions
// probe before this one times out.
static void
probe_report_suspects(struct probe *p, int64_t now)
{
	const char *keys[PROBE_SUSPECT_BATCH];
	size_t n = 0;

	if (p->suspect == NULL || p->in_flight == 0)
		return;
	for (size_t i = 0; i < p->table->n_targets; i++) {
		struct probe_target *t = &p->table->targets[i];

		if (!t->in_flight || t->suspect_sent ||
		    now - t->started_mono < (int64_t)t->retry_interval_ms * 1000)
			continue;
		t->suspect_sent = true;
		keys[n++] = t->key;
		if (n == PROBE_SUSPECT_BATCH) {
			p->suspect(keys, n, p->suspect_arg);
			n = 0;
		}
	}
	if (n > 0)
		p->suspect(keys, n, p->suspect_arg);
}

// When the next running probe becomes suspect, or INT64_MAX.
static int64_t
probe_next_suspect(const struct probe *p)
{
	int64_t next = INT64_MAX;

	if (p->suspect == NULL || p->in_flight == 0)
		return next;
	for (size_t i = 0; i < p->table->n_targets; i++) {
		const struct probe_target *t = &p->table->targets[i];
		int64_t at = t->started_mono + (int64_t)t->retry_interval_ms * 1000;

		if (t->in_flight && !t->suspect_sent && at < next)
			next = at;
	}
	return next;
}

static void
probe_on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct probe *p = arg;
	int64_t now = clock_mono_us();
	size_t idx;
	int64_t due;

	while (!p->stopped && p->in_flight < p->max_concurrency &&
	    sched_pop_due(p->sched, now, &idx, &due)) {
		if (idx >= p->table->n_targets)
			continue;
		if (p->table->targets[idx].in_flight) {
			p->skipped_busy++;
			log_debug("target \"%s\" is due but its previous probe still runs",
			    p->table->targets[idx].key);
			continue;
		}
		if (probe_skip_held(p, &p->table->targets[idx]))
			continue;
		probe_start(p, idx, VANTAGE__TRIGGER__TRIGGER_SCHEDULED, due, now);
	}
	probe_report_suspects(p, now);
	for (size_t i = 0; p->retrying > 0 && !probe_held(p) && i < p->table->n_targets; i++) {
		struct probe_target *t = &p->table->targets[i];

		if (p->stopped || p->in_flight >= p->max_concurrency)
			break;
		if (t->retry_at == 0 || t->retry_at > now || t->in_flight)
			continue;
		probe_retry_clear(p, t);
		probe_start(p, i, VANTAGE__TRIGGER__TRIGGER_RETRY, now, now);
	}
	probe_arm(p);
}

// Earliest pending retry, or INT64_MAX (also while held: probe_kick
// re-arms when the hold ends).
static int64_t
probe_next_retry(const struct probe *p)
{
	int64_t next = INT64_MAX;

	for (size_t i = 0; p->retrying > 0 && !probe_held(p) && i < p->table->n_targets; i++) {
		const struct probe_target *t = &p->table->targets[i];

		if (t->retry_at != 0 && !t->in_flight && t->retry_at < next)
			next = t->retry_at;
	}
	return next;
}

static void
probe_arm(struct probe *p)
{
	int64_t next = sched_next_due(p->sched), retry = probe_next_retry(p);
	int64_t suspect = probe_next_suspect(p);
	int64_t now = clock_mono_us();
	struct timeval tv;

	if (retry < next)
		next = retry;
	if (suspect < next)
		next = suspect;
	if (p->stopped || next == INT64_MAX)
		return;
	// At the concurrency limit, a finishing probe re-arms us.
	if (p->in_flight >= p->max_concurrency)
		return;
	tv = clock_tv(next > now ? next - now : 0);
	evtimer_add(p->timer, &tv);
}

struct probe *
probe_new(struct event_base *base, unsigned max_concurrency, const char *source_ip,
    const char *phase_salt, probe_done_cb done, void *arg)
{
	struct probe *p = xcalloc(1, sizeof(*p));

	p->phase_salt = xstrdup(phase_salt != NULL ? phase_salt : "");
	p->base = base;
	p->done = done;
	p->arg = arg;
	p->max_concurrency = max_concurrency ? max_concurrency : 256;
	p->sched = sched_new();
	p->timer = evtimer_new(base, probe_on_timer, p);
	p->table = xcalloc(1, sizeof(*p->table));
	p->table->refs = 1;
	p->dispatch = probe_dispatch_new(base, source_ip, NULL, 0, probe_on_done, p);
	return p;
}

void
probe_free(struct probe *p)
{
	struct probe_slot *s, *next;

	if (p == NULL)
		return;
	probe_dispatch_free(p->dispatch);
	for (s = p->free_slots; s != NULL; s = next) {
		next = s->next_free;
		free(s);
	}
	probe_table_unref(p->table);
	sched_free(p->sched);
	event_free(p->timer);
	free(p->phase_salt);
	free(p);
}

void
probe_set_config(struct probe *p, const Vantage__Config *config)
{
	struct probe_table *tb = xcalloc(1, sizeof(*tb));
	int64_t now = clock_mono_us();

	tb->refs = 1;
	tb->n_targets = config->n_targets;
	tb->targets = xcalloc(tb->n_targets ? tb->n_targets : 1, sizeof(*tb->targets));
	tb->config_version = config->version;
	sched_clear(p->sched);
	for (size_t i = 0; i < tb->n_targets; i++) {
		probe_target_copy(&tb->targets[i], config->targets[i]);
		char phase_key[256];

		snprintf(phase_key, sizeof(phase_key), "%s/%s", p->phase_salt, tb->targets[i].key);
		sched_add(p->sched, i, phase_key, (int64_t)tb->targets[i].interval_ms * 1000, now);
	}
	probe_table_unref(p->table);
	p->table = tb;
	p->retrying = 0;
	log_info("probing %zu targets (config version %llu)", tb->n_targets,
	    (unsigned long long)config->version);
	evtimer_del(p->timer);
	probe_arm(p);
}

int
probe_now(struct probe *p, const char *const *keys, size_t n, int trigger)
{
	int64_t now = clock_mono_us();
	int started = 0;

	for (size_t k = 0; k < n; k++) {
		size_t i;

		for (i = 0; i < p->table->n_targets; i++)
			if (strcmp(p->table->targets[i].key, keys[k]) == 0)
				break;
		if (i == p->table->n_targets) {
			p->unknown_keys++;
			continue;
		}
		if (p->table->targets[i].in_flight || p->stopped ||
		    probe_skip_held(p, &p->table->targets[i]))
			continue;
		probe_start(p, i, trigger, now, now);
		started++;
	}
	return started;
}

void
probe_set_suspect(struct probe *p, probe_suspect_cb cb, void *arg)
{
	p->suspect = cb;
	p->suspect_arg = arg;
}

void
probe_set_hold(struct probe *p, probe_hold_cb hold, void *arg)
{
	p->hold = hold;
	p->hold_arg = arg;
}

void
probe_kick(struct probe *p)
{
	evtimer_del(p->timer);
	probe_arm(p);
}

void
probe_stop(struct probe *p)
{
	p->stopped = true;
	evtimer_del(p->timer);
}

size_t
probe_in_flight(const struct probe *p)
{
	return p->in_flight;
}

size_t
probe_target_count(const struct probe *p)
{
	return p->table->n_targets;
}
