// SPDX-License-Identifier: Apache-2.0
//
// Tests of aggregator/incident.c, the state machine from verdict changes
// to incidents, timelines and alerts, against a real throwaway PostgreSQL
// cluster (pgembed, migrations through store_prepare, so incident_record()
// of sql/003 is the one production runs).  The verdict is played by hand:
// each test calls the sink functions (incident_verdict_changed, _region,
// _evaluated) with made-up outcomes and regions, runs the store's loop
// until its queue is empty (bounded), and checks the rows in incidents,
// incident_events and alert_outbox through a second, blocking connection,
// and the hooks main.c connects.  One alert channel subscribes to every
// event, so each alert the code queues is visible.  Skips (exit 77) when
// no PostgreSQL server is installed; the cluster is stopped and its
// directory removed on every way out, failures and signals included.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "agg_conf.h"
#include "clock.h"
#include "incident.h"
#include "log.h"
#include "pgembed.h"
#include "store_pg.h"
#include "targets.h"
#include "verdict.h"
#include "xmalloc.h"
#include "conftest.h"
#include "pgtest.h"

#define S 1000000LL // one second in µs
#define TEST_WAIT_MS 10000
#define API 0 // target indexes in the configuration below
#define WEB 1

// Regional grace of "api": confirm 2 x (timeout 2 s + retry_interval 1 s)
// + 2 s of slack (incident_defer_regional).
#define API_GRACE (8 * S)

static const char test_conf_text[] =
    "security: { insecure: true }\n"
    "regions: [ { name: r1 }, { name: r2 }, { name: r3 } ]\n"
    "alerts:\n"
    "  - { name: ops, webhook: { url: \"http://127.0.0.1:9/hook\" },\n"
    "      on: [outage, recovery, regional, blind, flapping] }\n"
    "targets:\n"
    "  - { name: api, http: { url: \"http://127.0.0.1:1/health\" }, interval: 10s,\n"
    "      timeout: 2s, confirm: 2, retry_interval: 1s, settle_for: 60s }\n"
    "  - { name: web, http: { url: \"http://127.0.0.1:1/\" }, interval: 10s }\n";

static char test_root[] = "/tmp/vantage-incident-XXXXXX";
static char test_state[sizeof(test_root) + 16];
static struct pgembed *test_pg;
static char *test_conninfo;
static PGconn *test_db;
static struct agg_conf *test_conf;
static struct event_base *test_base;
static struct store *test_store;
static struct target_table *test_targets;
static struct incidents *test_ins;

// What the hooks were told.
static struct {
	int queued, resolved;
	int64_t resolved_id;
	int restored;
	// Per target index (API, WEB).
	int restore_open[2], restore_resolved[2];
	enum quorum_state open_state[2];
	bool open_flapping[2], resolved_flapping[2], recovery_owed[2];
	int64_t resolved_at[2];
} hooks_log;

// --- cleanup on every way out ---

static void
test_close(void)
{
	incident_free(test_ins);
	test_ins = NULL;
	targets_free(test_targets);
	test_targets = NULL;
	store_free(test_store);
	test_store = NULL;
	if (test_base != NULL) {
		event_base_free(test_base);
		test_base = NULL;
	}
}

static void
test_cleanup(void)
{
	test_close();
	if (test_db != NULL) {
		PQfinish(test_db);
		test_db = NULL;
	}
	if (test_pg != NULL) {
		pgembed_stop(test_pg);
		test_pg = NULL;
	}
}

static void
test_on_signal(int sig)
{
	pgtest_die_on_signal(test_state, sig);
}

#define TEST_VALUE(sql, ...) pgtest_value(test_db, sql, PGTEST_ARGS(__VA_ARGS__))

// --- hooks ---

static void
test_on_queued(void *arg)
{
	(void)arg;
	hooks_log.queued++;
}

static void
test_on_resolved(int64_t incident_id, void *arg)
{
	(void)arg;
	hooks_log.resolved++;
	hooks_log.resolved_id = incident_id;
}

static void
test_on_restore_open(size_t idx, enum quorum_state state, bool flapping, void *arg)
{
	(void)arg;
	assert_true(idx <= WEB);
	hooks_log.restore_open[idx]++;
	hooks_log.open_state[idx] = state;
	hooks_log.open_flapping[idx] = flapping;
}

static void
test_on_restore_resolved(size_t idx, int64_t resolved_at, bool flapping, bool recovery_owed,
    void *arg)
{
	(void)arg;
	assert_true(idx <= WEB);
	hooks_log.restore_resolved[idx]++;
	hooks_log.resolved_at[idx] = resolved_at;
	hooks_log.resolved_flapping[idx] = flapping;
	hooks_log.recovery_owed[idx] = recovery_owed;
}

static void
test_on_restored(void *arg)
{
	(void)arg;
	hooks_log.restored++;
}

// --- driving the loop ---

static bool
test_is_connected(const void *arg)
{
	(void)arg;
	return store_connected(test_store);
}

static bool
test_is_idle(const void *arg)
{
	(void)arg;
	return store_idle(test_store);
}

static bool
test_is_restored(const void *arg)
{
	(void)arg;
	return hooks_log.restored > 0;
}

// Every statement queued so far has run and its callback returned.
static void
test_drain(void)
{
	assert_true(pgtest_run_until(test_base, test_is_idle, NULL, TEST_WAIT_MS));
}

static void
test_on_targets(int status, const int *ids, void *arg)
{
	assert_int_equal(status, 0);
	for (size_t i = 0; i < targets_count(test_targets); i++) {
		assert_true(ids[i] > 0);
		targets_set_id(test_targets, i, ids[i]);
	}
	*(bool *)arg = true;
}

static bool
test_is_true(const void *arg)
{
	return *(const bool *)arg;
}

// A new target table, with the ids of the database (as main.c syncs
// them), and incidents over it: what an aggregator (re)starting has.
static void
test_open(void)
{
	const struct incident_hooks hooks = { test_on_queued, test_on_resolved,
		test_on_restore_open, test_on_restore_resolved, NULL };
	size_t n;
	const char **keys;
	char **specs;
	bool synced = false;

	incident_free(test_ins);
	targets_free(test_targets);
	test_targets = targets_new(test_conf);
	n = targets_count(test_targets);
	keys = xcalloc(n, sizeof(*keys));
	specs = xcalloc(n, sizeof(*specs));
	for (size_t i = 0; i < n; i++) {
		keys[i] = targets_conf(test_targets, i)->key;
		specs[i] = targets_spec_json(targets_conf(test_targets, i));
	}
	store_sync_targets(test_store, keys, (const char *const *)specs, n, test_on_targets,
	    &synced);
	for (size_t i = 0; i < n; i++)
		free(specs[i]);
	free(specs);
	free(keys);
	assert_true(pgtest_run_until(test_base, test_is_true, &synced, TEST_WAIT_MS));
	test_ins = incident_new(test_store, test_conf, test_targets, &hooks);
	memset(&hooks_log, 0, sizeof(hooks_log));
}

// --- fixtures ---

static int
test_group_setup(void **state)
{
	(void)state;
	if (pgtest_mkdir(test_root, test_state, sizeof(test_state)) != 0)
		return -1;
	test_pg = pgembed_start(test_state, &test_conninfo);
	if (test_pg == NULL)
		return -1;
	test_db = PQconnectdb(test_conninfo);
	if (PQstatus(test_db) != CONNECTION_OK) {
		fprintf(stderr, "could not connect: %s", PQerrorMessage(test_db));
		return -1;
	}
	if (store_prepare(test_conninfo, 10) != 0)
		return -1;
	// pg_temp.us(t): a time as unix µs, to compare with what was sent,
	// for the life of the checking session.
	PQclear(pgtest_query(test_db,
	    "CREATE FUNCTION pg_temp.us(t timestamptz) RETURNS bigint LANGUAGE sql IMMUTABLE AS "
	    "$$ SELECT (extract(epoch FROM t) * 1000000)::bigint $$",
	    NULL, 0, PGRES_COMMAND_OK));
	return 0;
}

static int
test_group_teardown(void **state)
{
	(void)state;
	test_cleanup();
	free(test_conninfo);
	test_conninfo = NULL;
	pgtest_remove_tree(test_root);
	return 0;
}

// Each test starts with no incidents, alerts or silences, a connected
// store on a fresh loop, and incidents over freshly synced targets.
static int
test_setup(void **state)
{
	(void)state;
	PQclear(pgtest_query(test_db,
	    "TRUNCATE alert_outbox, incident_events, incident_updates, incidents, silences", NULL,
	    0, PGRES_COMMAND_OK));
	test_conf = conftest_load(test_conf_text);
	test_base = event_base_new();
	test_store = store_new(test_base, test_conninfo);
	if (!pgtest_run_until(test_base, test_is_connected, NULL, TEST_WAIT_MS)) {
		fprintf(stderr, "the store did not connect within %d ms\n", TEST_WAIT_MS);
		return -1;
	}
	test_open();
	return 0;
}

static int
test_teardown(void **state)
{
	(void)state;
	test_close();
	agg_conf_free(test_conf);
	test_conf = NULL;
	return 0;
}

// --- what the verdict would say ---

// The regions r1..r3 with votes[i] 'D' (down since down_since), 'U' (up
// since up_since) or '-' (abstaining).
struct test_view {
	struct verdict_region regions[3];
	struct quorum_outcome out;
};

static void
test_view(struct test_view *tv, const char *votes, enum quorum_state previous,
    enum quorum_state state, int64_t down_since, int64_t up_since)
{
	static const char *const names[3] = { "r1", "r2", "r3" };

	memset(tv, 0, sizeof(*tv));
	tv->out.previous = previous;
	tv->out.state = state;
	tv->out.changed = previous != state;
	tv->out.needed = 2;
	for (size_t i = 0; i < 3; i++) {
		struct verdict_region *r = &tv->regions[i];

		r->name = names[i];
		if (votes[i] == 'D') {
			r->vote = VOTE_DOWN;
			r->down_since = down_since;
			snprintf(r->why, sizeof(r->why), "503 http_status");
			tv->out.regions_down++;
			tv->out.started_at = down_since;
		} else if (votes[i] == 'U') {
			r->vote = VOTE_UP;
			r->up_since = up_since;
			tv->out.regions_up++;
		} else {
			tv->out.regions_abstain++;
		}
	}
}

static void
test_changed(size_t idx, const struct test_view *tv, int64_t now)
{
	incident_verdict_changed(idx, &tv->out, tv->regions, 3, now, test_ins);
	test_drain();
}

static void
test_evaluated(size_t idx, const struct test_view *tv, int64_t now)
{
	incident_verdict_evaluated(idx, &tv->out, tv->regions, 3, now, test_ins);
	test_drain();
}

// The target goes DOWN in r1 and r2 (failing since down_since) at now.
static void
test_outage(size_t idx, int64_t down_since, int64_t now)
{
	struct test_view tv;

	test_view(&tv, "DDU", QSTATE_UP, QSTATE_DOWN, down_since, 0);
	test_changed(idx, &tv, now);
}

// The outage ends: recovery held from resolved_at, announced at once
// (settled) or not.
static void
test_recovery(size_t idx, int64_t resolved_at, bool settled, int64_t now)
{
	struct test_view tv;

	test_view(&tv, "UUU", QSTATE_DOWN, QSTATE_UP, 0, resolved_at);
	tv.out.resolved_at = resolved_at;
	tv.out.settled = settled;
	test_changed(idx, &tv, now);
}

// The recovery of the last outage is due, with no change of state.
static void
test_settled(size_t idx, int64_t now)
{
	struct test_view tv;

	test_view(&tv, "UUU", QSTATE_UP, QSTATE_UP, 0, now);
	tv.out.settled = true;
	test_changed(idx, &tv, now);
}

// --- what the database holds ---

// Counts of rows of target idx's incidents, their events and their
// alerts that match `where` ($1 is the target id, $2.. the extra args).
#define TEST_INCIDENTS(idx, where, ...)                                                  \
	TEST_VALUE("SELECT count(*) FROM incidents i WHERE i.target_id = $1 AND " where, \
	    targets_id(test_targets, idx), ##__VA_ARGS__)
#define TEST_EVENTS(idx, where, ...)                                                    \
	TEST_VALUE("SELECT count(*) FROM incident_events e JOIN incidents i ON i.id = " \
		   "e.incident_id WHERE i.target_id = $1 AND " where,                   \
	    targets_id(test_targets, idx), ##__VA_ARGS__)
#define TEST_ALERTS(idx, where, ...)                                                 \
	TEST_VALUE("SELECT count(*) FROM alert_outbox a JOIN incidents i ON i.id = " \
		   "a.incident_id WHERE i.target_id = $1 AND " where,                \
	    targets_id(test_targets, idx), ##__VA_ARGS__)

// The id of the target's newest incident of this kind ('outage', ...).
#define TEST_INCIDENT_ID(idx, kind)                                                            \
	TEST_VALUE("SELECT max(id) FROM incidents WHERE target_id = $1 AND kind = '" kind "'", \
	    targets_id(test_targets, idx))

// --- tests ---

// Outage -> one incident with its first failures and quorum, and one
// "outage" alert; resolved -> a resolved event and no alert; settled ->
// one "recovery" alert and a 'settled' event; settled again -> nothing.
static void
test_outage_lifecycle(void **state)
{
	int64_t t0 = clock_wall_us() - 300 * S;
	int64_t id;

	(void)state;
	test_outage(API, t0 - 3 * S, t0);
	assert_int_equal(TEST_INCIDENTS(API, "true"), 1);
	assert_int_equal(TEST_INCIDENTS(API,
			     "kind = 'outage' AND state = 'open' AND resolved_at IS NULL AND NOT "
			     "flapping AND regions = '{r1,r2}' AND pg_temp.us(started_at) = $2 "
			     "AND pg_temp.us(detected_at) = $3",
			     t0 - 3 * S, t0),
	    1);
	id = TEST_INCIDENT_ID(API, "outage");
	assert_int_equal(TEST_EVENTS(API, "true"), 3);
	assert_int_equal(
	    TEST_EVENTS(API,
		"e.kind = 'first_failure' AND e.region IN ('r1', 'r2') AND pg_temp.us(e.at) = $2 "
		"AND e.message LIKE '%503 http_status'",
		t0 - 3 * S),
	    2);
	assert_int_equal(TEST_EVENTS(API,
			     "e.kind = 'quorum' AND e.region IS NULL AND pg_temp.us(e.at) = $2",
			     t0),
	    1);
	assert_int_equal(TEST_ALERTS(API, "true"), 1);
	assert_int_equal(TEST_ALERTS(API,
			     "a.channel = 'ops' AND a.event = 'outage' AND a.sent_at IS NULL AND "
			     "a.payload->>'event' = 'outage' AND a.payload->>'target' = 'api' AND "
			     "a.payload->>'kind' = 'outage' AND a.payload->>'state' = 'open' AND "
			     "a.payload->'regions_down' = '[\"r1\", \"r2\"]' AND "
			     "a.payload->'reasons'->>'r1' = '503 http_status'"),
	    1);
	assert_int_equal(hooks_log.queued, 1);
	assert_int_equal(hooks_log.resolved, 0);

	test_recovery(API, t0 + 60 * S, false, t0 + 70 * S);
	assert_int_equal(TEST_INCIDENTS(API, "true"), 1);
	assert_int_equal(TEST_INCIDENTS(API,
			     "id = $2 AND state = 'resolved' AND pg_temp.us(resolved_at) = $3", id,
			     t0 + 60 * S),
	    1);
	assert_int_equal(
	    TEST_EVENTS(API, "e.kind = 'resolved' AND pg_temp.us(e.at) = $2", t0 + 60 * S), 1);
	assert_int_equal(TEST_ALERTS(API, "true"), 1);
	assert_int_equal(hooks_log.resolved, 1);
	assert_int_equal(hooks_log.resolved_id, id);
	assert_int_equal(hooks_log.queued, 2);

	test_settled(API, t0 + 130 * S);
	assert_int_equal(TEST_ALERTS(API, "true"), 2);
	assert_int_equal(
	    TEST_ALERTS(API,
		"a.event = 'recovery' AND a.incident_id = $2 AND a.channel = 'ops' AND "
		"a.payload->>'event' = 'recovery' AND a.payload->>'state' = 'resolved' "
		"AND a.payload->>'resolved_at' = to_char(i.resolved_at AT TIME ZONE "
		"'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')",
		id),
	    1);
	assert_int_equal(TEST_EVENTS(API, "e.kind = 'settled'"), 1);
	assert_int_equal(hooks_log.queued, 3);

	test_settled(API, t0 + 140 * S);
	assert_int_equal(TEST_ALERTS(API, "true"), 2);
	assert_int_equal(TEST_EVENTS(API, "e.kind = 'settled'"), 1);
	assert_int_equal(hooks_log.queued, 3);
	// Nothing of it touched the other target.
	assert_int_equal(TEST_INCIDENTS(WEB, "true"), 0);
}

// With settle_for 0 the verdict reports the change and the settling in
// one call: the resolution runs first, so the recovery alert goes out.
static void
test_recovery_settled_at_once(void **state)
{
	int64_t t0 = clock_wall_us() - 300 * S;

	(void)state;
	test_outage(API, t0 - 3 * S, t0);
	test_recovery(API, t0 + 60 * S, true, t0 + 70 * S);
	assert_int_equal(TEST_INCIDENTS(API, "state = 'resolved'"), 1);
	assert_int_equal(TEST_ALERTS(API, "a.event = 'recovery'"), 1);
	assert_int_equal(TEST_EVENTS(API, "e.kind = 'settled'"), 1);
}

// A reopened outage continues the same row, paging ("flapping") only when
// the quorum says so; one not reopened is a new incident.
static void
test_reopen(void **state)
{
	int64_t t0 = clock_wall_us() - 600 * S;
	struct test_view tv;
	int64_t id;

	(void)state;
	test_outage(API, t0, t0 + 3 * S);
	id = TEST_INCIDENT_ID(API, "outage");
	test_recovery(API, t0 + 20 * S, false, t0 + 30 * S);

	test_view(&tv, "DDD", QSTATE_UP, QSTATE_DOWN, t0 + 50 * S, 0);
	tv.out.reopened = tv.out.page_reopen = tv.out.flapping = true;
	tv.out.reopened_after_us = 25 * S;
	test_changed(API, &tv, t0 + 55 * S);
	assert_int_equal(TEST_INCIDENTS(API, "true"), 1);
	assert_int_equal(TEST_INCIDENTS(API,
			     "id = $2 AND state = 'open' AND resolved_at IS NULL AND flapping", id),
	    1);
	assert_int_equal(TEST_EVENTS(API, "e.kind = 'reopened' AND e.message LIKE '%25 s%'"), 1);
	assert_int_equal(TEST_ALERTS(API,
			     "a.event = 'flapping' AND a.payload->>'event' = "
			     "'flapping'"),
	    1);
	assert_int_equal(TEST_ALERTS(API, "a.event = 'outage'"), 1);
	assert_int_equal(TEST_ALERTS(API, "true"), 2);

	// Flapping on, recovery not announced: grouped, no page.
	test_recovery(API, t0 + 70 * S, false, t0 + 80 * S);
	tv.out.page_reopen = false;
	test_changed(API, &tv, t0 + 100 * S);
	assert_int_equal(TEST_INCIDENTS(API, "true"), 1);
	assert_int_equal(TEST_INCIDENTS(API, "id = $2 AND state = 'open'", id), 1);
	assert_int_equal(TEST_EVENTS(API, "e.kind = 'reopened'"), 2);
	assert_int_equal(TEST_EVENTS(API,
			     "e.kind = 'reopened' AND e.message LIKE "
			     "'%alerts grouped'"),
	    1);
	assert_int_equal(TEST_ALERTS(API, "true"), 2);

	// Past the reopen window: a new incident with its own outage alert.
	test_recovery(API, t0 + 120 * S, false, t0 + 130 * S);
	test_outage(API, t0 + 400 * S, t0 + 403 * S);
	assert_int_equal(TEST_INCIDENTS(API, "true"), 2);
	assert_int_equal(TEST_INCIDENTS(API, "id <> $2 AND state = 'open' AND NOT flapping", id),
	    1);
	assert_int_equal(TEST_ALERTS(API, "a.event = 'outage'"), 2);
	assert_int_equal(TEST_EVENTS(API, "e.kind = 'reopened' AND e.incident_id <> $2", id), 0);
}

// An outage reopened after its recovery was announced pages again
// ("flapping": the quorum's page_reopen), so its end must be announced
// again once it settles, or the pager is left with the target flapping.
static void
test_reopen_after_settled(void **state)
{
	int64_t t0 = clock_wall_us() - 600 * S;
	struct test_view tv;

	(void)state;
	test_outage(API, t0, t0 + 3 * S);
	test_recovery(API, t0 + 20 * S, false, t0 + 30 * S);
	test_settled(API, t0 + 90 * S);
	assert_int_equal(TEST_ALERTS(API, "a.event = 'recovery'"), 1);

	test_view(&tv, "DDD", QSTATE_UP, QSTATE_DOWN, t0 + 120 * S, 0);
	tv.out.reopened = tv.out.page_reopen = tv.out.flapping = true;
	tv.out.reopened_after_us = 95 * S;
	test_changed(API, &tv, t0 + 125 * S);
	assert_int_equal(TEST_INCIDENTS(API, "true"), 1);
	assert_int_equal(TEST_ALERTS(API, "a.event = 'flapping'"), 1);
	test_recovery(API, t0 + 140 * S, false, t0 + 150 * S);

	// Restarted before it settled: its recovery is owed.
	test_open();
	incident_restore(test_ins, test_on_restored, NULL);
	assert_true(pgtest_run_until(test_base, test_is_restored, NULL, TEST_WAIT_MS));
	assert_int_equal(hooks_log.restore_resolved[API], 1);
	assert_true(hooks_log.recovery_owed[API]);

	test_settled(API, t0 + 210 * S);
	assert_int_equal(TEST_ALERTS(API, "a.event = 'recovery'"), 2);
	assert_int_equal(TEST_EVENTS(API, "e.kind = 'settled'"), 2);
	test_settled(API, t0 + 220 * S);
	assert_int_equal(TEST_ALERTS(API, "a.event = 'recovery'"), 2);

	test_open();
	incident_restore(test_ins, test_on_restored, NULL);
	assert_true(pgtest_run_until(test_base, test_is_restored, NULL, TEST_WAIT_MS));
	assert_false(hooks_log.recovery_owed[API]);
}

// DEGRADED opens a regional incident only after its grace period, from
// the evaluation timer; region changes go into its timeline; an outage
// resolves it.
static void
test_regional(void **state)
{
	int64_t t0 = clock_wall_us() - 300 * S;
	struct test_view tv;

	(void)state;
	test_view(&tv, "DUU", QSTATE_UP, QSTATE_DEGRADED, t0 - 2 * S, t0 - 30 * S);
	test_changed(API, &tv, t0);
	test_view(&tv, "DUU", QSTATE_DEGRADED, QSTATE_DEGRADED, t0 - 2 * S, t0 - 30 * S);
	test_evaluated(API, &tv, t0 + API_GRACE - 1);
	assert_int_equal(TEST_INCIDENTS(API, "true"), 0);
	assert_int_equal(hooks_log.queued, 0);

	test_evaluated(API, &tv, t0 + API_GRACE);
	assert_int_equal(TEST_INCIDENTS(API, "true"), 1);
	assert_int_equal(TEST_INCIDENTS(API,
			     "kind = 'regional' AND state = 'open' AND regions = '{r1}' AND "
			     "pg_temp.us(started_at) = $2",
			     t0 - 2 * S),
	    1);
	assert_int_equal(TEST_EVENTS(API, "e.kind = 'first_failure' AND e.region = 'r1'"), 1);
	assert_int_equal(TEST_EVENTS(API, "e.kind = 'quorum'"), 1);
	assert_int_equal(TEST_ALERTS(API, "true"), 1);
	assert_int_equal(TEST_ALERTS(API,
			     "a.event = 'regional' AND a.payload->>'kind' = "
			     "'regional' AND a.payload->>'event' = 'regional'"),
	    1);
	assert_int_equal(hooks_log.queued, 1);

	// Only once.
	test_evaluated(API, &tv, t0 + API_GRACE + 1 * S);
	assert_int_equal(TEST_INCIDENTS(API, "true"), 1);

	// r2 fails too (below quorum still): into the timeline, once.
	tv.regions[1].vote = VOTE_DOWN;
	tv.regions[1].down_since = t0 + 10 * S;
	snprintf(tv.regions[1].why, sizeof(tv.regions[1].why), "timeout");
	incident_verdict_region(API, &tv.regions[1], VOTE_UP, test_ins);
	incident_verdict_region(API, &tv.regions[1], VOTE_UP, test_ins);
	test_drain();
	assert_int_equal(TEST_EVENTS(API,
			     "e.kind = 'first_failure' AND e.region = 'r2' AND e.message LIKE "
			     "'%timeout' AND pg_temp.us(e.at) = $2",
			     t0 + 10 * S),
	    1);

	// r1 recovers, as a region of the open incident.
	tv.regions[0].vote = VOTE_UP;
	tv.regions[0].up_since = t0 + 12 * S;
	incident_verdict_region(API, &tv.regions[0], VOTE_DOWN, test_ins);
	test_drain();
	assert_int_equal(TEST_EVENTS(API,
			     "e.kind = 'recovering' AND e.region = 'r1' AND pg_temp.us(e.at) = $2",
			     t0 + 12 * S),
	    1);

	// The outage's change resolves the regional incident and opens one.
	test_view(&tv, "DDU", QSTATE_DEGRADED, QSTATE_DOWN, t0 - 2 * S, 0);
	test_changed(API, &tv, t0 + 20 * S);
	assert_int_equal(TEST_INCIDENTS(API, "kind = 'regional' AND state = 'resolved'"), 1);
	assert_int_equal(TEST_INCIDENTS(API, "kind = 'outage' AND state = 'open'"), 1);
	assert_int_equal(TEST_ALERTS(API, "a.event = 'regional_recovery' AND i.kind = 'regional'"),
	    1);
	// Its recovery alert tells when the regional incident started.
	assert_int_equal(TEST_ALERTS(API,
			     "a.event = 'regional_recovery' AND a.payload->>'started_at' = "
			     "to_char(i.started_at AT TIME ZONE 'UTC', "
			     "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') AND a.payload->>'state' = "
			     "'resolved'"),
	    1);
	assert_int_equal(TEST_ALERTS(API, "a.event = 'outage' AND i.kind = 'outage'"), 1);
	// Resolving a regional incident is not an outage's end.
	assert_int_equal(hooks_log.resolved, 0);
}

// A regional incident ends with the target UP: one regional_recovery
// alert, saying when the incident started and ended.
static void
test_regional_recovery(void **state)
{
	int64_t t0 = clock_wall_us() - 300 * S;
	struct test_view tv;

	(void)state;
	test_view(&tv, "DUU", QSTATE_UP, QSTATE_DEGRADED, t0 - 2 * S, t0 - 30 * S);
	test_changed(API, &tv, t0);
	test_view(&tv, "DUU", QSTATE_DEGRADED, QSTATE_DEGRADED, t0 - 2 * S, t0 - 30 * S);
	test_evaluated(API, &tv, t0 + API_GRACE);
	test_view(&tv, "UUU", QSTATE_DEGRADED, QSTATE_UP, 0, t0 + 50 * S);
	test_changed(API, &tv, t0 + 60 * S);
	assert_int_equal(TEST_INCIDENTS(API,
			     "kind = 'regional' AND state = 'resolved' AND "
			     "pg_temp.us(started_at) = $2 AND pg_temp.us(resolved_at) = $3",
			     t0 - 2 * S, t0 + 60 * S),
	    1);
	assert_int_equal(TEST_ALERTS(API, "a.event = 'regional_recovery'"), 1);
	assert_int_equal(
	    TEST_ALERTS(API,
		"a.event = 'regional_recovery' AND a.payload->>'state' = 'resolved' AND "
		"a.payload->>'started_at' = to_char(i.started_at AT TIME ZONE 'UTC', "
		"'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') AND a.payload->>'resolved_at' = "
		"to_char(i.resolved_at AT TIME ZONE 'UTC', "
		"'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"),
	    1);
	assert_int_equal(hooks_log.resolved, 0);
}

// A DEGRADED spell shorter than the grace (the outage confirming) opens
// no regional incident at all.
static void
test_regional_grace_cancelled(void **state)
{
	int64_t t0 = clock_wall_us() - 300 * S;
	struct test_view tv;

	(void)state;
	test_view(&tv, "DUU", QSTATE_UP, QSTATE_DEGRADED, t0 - 2 * S, t0 - 30 * S);
	test_changed(API, &tv, t0);
	test_view(&tv, "DDU", QSTATE_DEGRADED, QSTATE_DOWN, t0 - 2 * S, 0);
	test_changed(API, &tv, t0 + 2 * S);
	test_view(&tv, "DDU", QSTATE_DOWN, QSTATE_DOWN, t0 - 2 * S, 0);
	test_evaluated(API, &tv, t0 + API_GRACE + 1 * S);
	assert_int_equal(TEST_INCIDENTS(API, "kind = 'regional'"), 0);
	assert_int_equal(TEST_INCIDENTS(API, "kind = 'outage'"), 1);
}

// Out of an outage into DEGRADED: a region that has not probed since
// still holds its DOWN vote, so the grace is one interval (10 s) longer.
static void
test_regional_after_outage(void **state)
{
	int64_t t0 = clock_wall_us() - 300 * S;
	int64_t t1 = t0 + 60 * S;
	struct test_view tv;

	(void)state;
	test_outage(API, t0 - 3 * S, t0);
	test_view(&tv, "DUU", QSTATE_DOWN, QSTATE_DEGRADED, t0 - 3 * S, t1 - 5 * S);
	tv.out.resolved_at = t1 - 5 * S;
	test_changed(API, &tv, t1);
	assert_int_equal(TEST_INCIDENTS(API, "kind = 'outage' AND state = 'resolved'"), 1);
	test_view(&tv, "DUU", QSTATE_DEGRADED, QSTATE_DEGRADED, t0 - 3 * S, t1 - 5 * S);
	test_evaluated(API, &tv, t1 + API_GRACE);
	test_evaluated(API, &tv, t1 + API_GRACE + 10 * S - 1);
	assert_int_equal(TEST_INCIDENTS(API, "kind = 'regional'"), 0);
	test_evaluated(API, &tv, t1 + API_GRACE + 10 * S);
	assert_int_equal(TEST_INCIDENTS(API, "kind = 'regional' AND state = 'open'"), 1);
}

// UNKNOWN opens a "blind" incident over the abstaining regions; back to
// UP resolves it with a blind_recovery alert.
static void
test_blind(void **state)
{
	int64_t t0 = clock_wall_us() - 300 * S;
	struct test_view tv;

	(void)state;
	test_view(&tv, "U--", QSTATE_UP, QSTATE_UNKNOWN, 0, t0 - 10 * S);
	tv.out.blind = true;
	test_changed(API, &tv, t0);
	assert_int_equal(TEST_INCIDENTS(API,
			     "kind = 'blind' AND state = 'open' AND regions = "
			     "'{r2,r3}'"),
	    1);
	assert_int_equal(TEST_EVENTS(API, "e.kind = 'blind'"), 1);
	assert_int_equal(TEST_ALERTS(API, "a.event = 'blind'"), 1);
	test_view(&tv, "UUU", QSTATE_UNKNOWN, QSTATE_UP, 0, t0 + 5 * S);
	test_changed(API, &tv, t0 + 10 * S);
	assert_int_equal(TEST_INCIDENTS(API, "kind = 'blind' AND state = 'resolved'"), 1);
	assert_int_equal(TEST_ALERTS(API,
			     "a.event = 'blind_recovery' AND pg_temp.us(i.started_at) = $2 AND "
			     "a.payload->>'started_at' = to_char(i.started_at AT TIME ZONE 'UTC', "
			     "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')",
			     t0),
	    1);
}

// A silence suppresses the alerts of the targets it covers, not their
// incidents or timelines.
static void
test_silence(void **state)
{
	int64_t t0 = clock_wall_us() - 300 * S;

	(void)state;
	PQclear(pgtest_query(test_db,
	    "INSERT INTO silences (target_key, starts_at, ends_at, reason) VALUES ('api', now() - "
	    "interval '1 minute', now() + interval '1 hour', 'maintenance')",
	    NULL, 0, PGRES_COMMAND_OK));
	test_outage(API, t0 - 3 * S, t0);
	test_outage(WEB, t0 - 3 * S, t0);
	assert_int_equal(TEST_INCIDENTS(API, "kind = 'outage' AND state = 'open'"), 1);
	assert_int_equal(TEST_EVENTS(API, "true"), 3);
	assert_int_equal(TEST_ALERTS(API, "true"), 0);
	assert_int_equal(TEST_ALERTS(WEB, "a.event = 'outage'"), 1);

	test_recovery(API, t0 + 60 * S, true, t0 + 70 * S);
	assert_int_equal(TEST_INCIDENTS(API, "state = 'resolved'"), 1);
	assert_int_equal(TEST_EVENTS(API, "e.kind = 'settled'"), 1);
	assert_int_equal(TEST_ALERTS(API, "true"), 0);

	// An expired silence no longer holds anything back.
	PQclear(pgtest_query(test_db, "UPDATE silences SET ends_at = now() - interval '1 second'",
	    NULL, 0, PGRES_COMMAND_OK));
	test_outage(API, t0 + 200 * S, t0 + 203 * S);
	assert_int_equal(TEST_ALERTS(API, "a.event = 'outage'"), 1);
}

// Restart: the open outage of "api" goes to restore_open (DOWN) and is
// the one a later recovery resolves; the resolved outage of "web" goes to
// restore_resolved, its recovery owed until it settled.
static void
test_restore(void **state)
{
	int64_t t0 = clock_wall_us() - 600 * S;

	(void)state;
	test_outage(API, t0 - 3 * S, t0);
	test_outage(WEB, t0 - 3 * S, t0);
	test_recovery(WEB, t0 + 60 * S, false, t0 + 70 * S);

	test_open();
	incident_restore(test_ins, test_on_restored, NULL);
	assert_true(pgtest_run_until(test_base, test_is_restored, NULL, TEST_WAIT_MS));
	assert_int_equal(hooks_log.restored, 1);
	assert_int_equal(hooks_log.restore_open[API], 1);
	assert_int_equal(hooks_log.open_state[API], QSTATE_DOWN);
	assert_false(hooks_log.open_flapping[API]);
	assert_int_equal(hooks_log.restore_resolved[API], 0);
	assert_int_equal(hooks_log.restore_open[WEB], 0);
	assert_int_equal(hooks_log.restore_resolved[WEB], 1);
	assert_int_equal(hooks_log.resolved_at[WEB], t0 + 60 * S);
	assert_false(hooks_log.resolved_flapping[WEB]);
	assert_true(hooks_log.recovery_owed[WEB]);

	// The restored outage is the one resolved: no second incident.
	test_recovery(API, t0 + 100 * S, false, t0 + 110 * S);
	assert_int_equal(TEST_INCIDENTS(API, "true"), 1);
	assert_int_equal(TEST_INCIDENTS(API, "state = 'resolved'"), 1);
	assert_int_equal(hooks_log.resolved, 1);

	test_settled(WEB, t0 + 130 * S);
	assert_int_equal(TEST_ALERTS(WEB, "a.event = 'recovery'"), 1);
	test_open();
	incident_restore(test_ins, test_on_restored, NULL);
	assert_true(pgtest_run_until(test_base, test_is_restored, NULL, TEST_WAIT_MS));
	assert_int_equal(hooks_log.restore_open[API] + hooks_log.restore_open[WEB], 0);
	// Both latest outages are resolved now; web's recovery went, api's not.
	assert_int_equal(hooks_log.restore_resolved[API], 1);
	assert_int_equal(hooks_log.resolved_at[API], t0 + 100 * S);
	assert_true(hooks_log.recovery_owed[API]);
	assert_int_equal(hooks_log.restore_resolved[WEB], 1);
	assert_false(hooks_log.recovery_owed[WEB]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_outage_lifecycle, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_recovery_settled_at_once, test_setup,
		    test_teardown),
		cmocka_unit_test_setup_teardown(test_reopen, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_reopen_after_settled, test_setup,
		    test_teardown),
		cmocka_unit_test_setup_teardown(test_regional, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_regional_recovery, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_regional_grace_cancelled, test_setup,
		    test_teardown),
		cmocka_unit_test_setup_teardown(test_regional_after_outage, test_setup,
		    test_teardown),
		cmocka_unit_test_setup_teardown(test_blind, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_silence, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_restore, test_setup, test_teardown),
	};
	const char *why = pgtest_cannot_run();

	if (why != NULL) {
		printf("SKIP: %s\n", why);
		return 77;
	}
	log_init("test_incident", LOG_LEVEL_WARN);
	atexit(test_cleanup);
	signal(SIGINT, test_on_signal);
	signal(SIGTERM, test_on_signal);
	signal(SIGHUP, test_on_signal);
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, test_group_setup, test_group_teardown);
}
