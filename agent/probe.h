// SPDX-License-Identifier: Apache-2.0
//
// The probe table and dispatch: holds the targets the aggregator sent,
// runs them on the scheduler's grid with the libevent loop, hands each to
// the prober of its kind through the ops table below (HTTP: probe_http.c),
// and reports every finished probe as one probe_result.  Never blocks and
// never starts a thread per probe; at most max_concurrency probes are in
// flight, and a target whose previous probe is still running is not
// started again.  Fast confirmation (DESIGN.md §6): after a failure the
// target is retried every retry_interval until it has `confirm`
// consecutive failures spanning `confirm_span`, or one success, so a
// region's vote is settled in seconds whatever the interval.  While the
// agent's self-check is deciding whether the agent's own network is at
// fault (selfcheck.h), those retries are held back, so the result that
// confirms a failure carries the self-check's verdict.
#ifndef VANTAGE_PROBE_H
#define VANTAGE_PROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "probe_http.h"
#include "vantage.pb-c.h"

#define PROBE_ERROR_MAX 256

struct probe_target {
	char *key;
	int kind; // VANTAGE__PROBE_KIND__*
	uint32_t interval_ms;
	uint32_t timeout_ms;
	uint32_t confirm;
	uint32_t retry_interval_ms;
	uint32_t confirm_span_ms; // retries go on until the failures span this long
	// The spec of the target's kind (declared in the kind's header);
	// copied only for a kind with a prober.
	union {
		struct probe_http_spec http;
	} spec;
	bool in_flight;            // set by probe.c while a probe runs
	unsigned fails;            // consecutive DOWN results
	int64_t streak_started_us; // wall start of the first of them
	int64_t retry_at;          // monotonic µs of the pending retry, 0 if none
	int64_t started_mono;      // start of the running (or last) probe
	bool suspect_sent;         // the running probe was reported as hanging
};

// One finished probe; valid only during the done callback.
struct probe_result {
	const struct probe_target *target;
	uint64_t config_version;
	int trigger;             // VANTAGE__TRIGGER__*
	int64_t scheduled_at_us; // wall clock
	int64_t started_at_us;   // wall clock
	int outcome;             // VANTAGE__OUTCOME__*
	int reason;              // VANTAGE__REASON__*
	uint32_t http_status;
	uint32_t dns_us, connect_us, tls_us, ttfb_us, total_us;
	uint64_t bytes;
	int64_t tls_expiry; // unix seconds, 0 if none
	char peer[64];
	char error[PROBE_ERROR_MAX + 1];
};

// --- probers: one ops table per probe kind ---
//
// A prober runs probes of one kind on the agent's loop.  Its instance is
// made by the dispatch below (one per kind and dispatch, on first use).
// A probe ends in two steps, so that the prober's per-probe state lives
// until the result is written: the prober calls finished(r, job, arg) from
// the loop, and the dispatch then calls fill(prober, job, r), which writes
// the outcome into r and releases job.

// Called by a prober when the probe that fills r ended; job is the
// prober's own handle for it, passed back to fill.
typedef void (*probe_finished_cb)(struct probe_result *r, void *job, void *arg);

struct probe_ops {
	const char *name; // "http"
	// Copies the kind's spec from src into t->spec; spec_clear frees it.
	void (*spec_copy)(struct probe_target *t, const Vantage__Target *src);
	void (*spec_clear)(struct probe_target *t);
	// base is borrowed; source_ip may be NULL.  Never returns NULL.
	void *(*new)(struct event_base *base, const char *source_ip, probe_finished_cb finished,
	    void *arg);
	// Abandons probes in flight: finished is not called for them.
	void (*free)(void *prober);
	// Starts a probe of t (borrowed, like r, until it is filled or
	// cancelled).  Returns 0, or -1 after filling r as an AGENT_ERROR
	// (finished is not called).  Never calls finished from inside.
	int (*start)(void *prober, const struct probe_target *t, struct probe_result *r);
	// Abandons the probe that fills r: finished is not called for it.
	void (*cancel)(void *prober, struct probe_result *r);
	// Writes the outcome of the finished probe job into r; job is gone
	// after.
	void (*fill)(void *prober, void *job, struct probe_result *r);
};

// The probe kinds this agent implements: the table where a new kind
// registers.  NULL for a kind it does not probe (accepted in a Config, but
// never probed).
const struct probe_ops *probe_ops_find(int kind);

// Runs probes of every kind through its ops: the one way probes start,
// for the target schedule (probe_new) and the self-check alike.
struct probe_dispatch;
// Called once r is filled; r stays the caller's.
typedef void (*probe_dispatch_done_cb)(struct probe_result *r, void *arg);

// table, indexed by VANTAGE__PROBE_KIND__* with n_kinds entries, is
// borrowed; NULL means the agent's own (probe_ops_find).  base is borrowed.
struct probe_dispatch *probe_dispatch_new(struct event_base *base, const char *source_ip,
    const struct probe_ops *const *table, size_t n_kinds, probe_dispatch_done_cb done, void *arg);
// Abandons probes in flight (no done).  Accepts NULL.
void probe_dispatch_free(struct probe_dispatch *d);
bool probe_dispatch_supports(const struct probe_dispatch *d, int kind);
// Starts a probe of t into r.  Returns 0, or -1 after filling r as an
// AGENT_ERROR (a kind without a prober, or the prober could not start);
// done is not called then.
int probe_dispatch_start(struct probe_dispatch *d, const struct probe_target *t,
    struct probe_result *r);
// Abandons the running probe that fills r; done is not called for it.
void probe_dispatch_cancel(struct probe_dispatch *d, struct probe_result *r);

typedef void (*probe_done_cb)(const struct probe_result *r, void *arg);
// True while retries must wait (a self-check round runs).
typedef bool (*probe_hold_cb)(void *arg);

// Copies a Config entry into t, which then owns its strings;
// probe_target_clear frees them.  Also used for the self-check's controls.
void probe_target_copy(struct probe_target *t, const Vantage__Target *src);
void probe_target_clear(struct probe_target *t);

struct probe;

// base is borrowed.  source_ip may be NULL.  phase_salt (the agent name)
// is mixed into each target's phase, so agents in different regions probe
// a target at different moments of its interval: the load on the target is
// spread, and a failure seen by one agent is confirmed by the others
// through ProbeNow rather than by their own schedule.
struct probe *probe_new(struct event_base *base, unsigned max_concurrency, const char *source_ip,
    const char *phase_salt, probe_done_cb done, void *arg);
// Finishes nothing: probes in flight are abandoned without results.
void probe_free(struct probe *p);
// Replaces the target table with the Config's targets (copied).  Probes in
// flight for a target that survives keep their result.
void probe_set_config(struct probe *p, const Vantage__Config *config);
// Probes these targets at once with the given trigger (ProbeNow, retry).
// Unknown keys are ignored and counted.  Returns how many were started.
int probe_now(struct probe *p, const char *const *keys, size_t n, int trigger);
// While hold(arg) is true, pending retries wait, and a scheduled or
// ProbeNow probe of a target with a retry pending is skipped (the retry
// follows).  Call probe_kick when the hold ends.
void probe_set_hold(struct probe *p, probe_hold_cb hold, void *arg);
// Runs what the hold kept back (the retries that are due by now).
void probe_kick(struct probe *p);
// Stops scheduling new probes (shutdown); in-flight ones still finish.
void probe_stop(struct probe *p);
size_t probe_in_flight(const struct probe *p);
// Probes running longer than their retry_interval are reported once each
// (keys valid during the call), so the aggregator can have the other
// regions probe before this one times out.
typedef void (*probe_suspect_cb)(const char *const *keys, size_t n, void *arg);
void probe_set_suspect(struct probe *p, probe_suspect_cb cb, void *arg);
size_t probe_target_count(const struct probe *p);

#endif
