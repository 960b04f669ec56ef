// SPDX-License-Identifier: Apache-2.0
//
// Tests of the SQL batch writer (store_pg.c) against a real throwaway
// PostgreSQL cluster, started once for the whole group with pgembed: the
// store runs on its own event_base, and everything it claims is checked
// through a second, blocking libpq connection, because a store that reports
// success for rows it did not write (or wrote twice) breaks the exactly-once
// promise of DESIGN.md §5 without any visible error.  Every wait on the loop
// is bounded by a timer so a broken store fails fast instead of hanging.
// Skips (exit 77) when no PostgreSQL server is installed; the cluster is
// stopped and its directory removed on every way out, failures included.
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "clock.h"
#include "log.h"
#include "migrate.h"
#include "pgembed.h"
#include "store_pg.h"
#include "pgtest.h"

#define TEST_WAIT_MS 10000
// The store retries with a backoff of at most 5 s after the server is back.
#define TEST_RECONNECT_WAIT_MS 20000
#define TEST_ROWS 1000

static char test_root[] = "/tmp/vantage-store-XXXXXX";
static char test_state[sizeof(test_root) + 16];
static struct pgembed *test_pg;
static char *test_conninfo;
static PGconn *test_db;
static struct event_base *test_base;
static struct store *test_store;

// --- cleanup on every way out ---

static void
test_cleanup(void)
{
	store_free(test_store);
	test_store = NULL;
	if (test_base != NULL) {
		event_base_free(test_base);
		test_base = NULL;
	}
	if (test_db != NULL) {
		PQfinish(test_db);
		test_db = NULL;
	}
	if (test_pg != NULL) {
		pgembed_stop(test_pg);
		test_pg = NULL;
	}
}

// A runner's timeout or ^C skips atexit: ask the postmaster for a fast
// shutdown with async-signal-safe calls only, then die of the same signal.
static void
test_on_signal(int sig)
{
	pgtest_die_on_signal(test_state, sig);
}

// --- the verifying connection ---

static void
test_db_connect(void)
{
	if (test_db != NULL)
		PQfinish(test_db);
	test_db = PQconnectdb(test_conninfo);
	if (PQstatus(test_db) != CONNECTION_OK)
		fail_msg("could not connect with \"%s\": %s", test_conninfo,
		    PQerrorMessage(test_db));
}

// Runs sql with integer parameters; the caller clears the result.
static PGresult *
test_query(const char *sql, const int64_t *args, size_t n_args, ExecStatusType want)
{
	return pgtest_query(test_db, sql, args, n_args, want);
}

// The one value of a one-row, one-column query (NULL reads as -1).
static int64_t
test_value(const char *sql, const int64_t *args, size_t n_args)
{
	return pgtest_value(test_db, sql, args, n_args);
}

static void
test_command(const char *sql, const int64_t *args, size_t n_args)
{
	PQclear(test_query(sql, args, n_args, PGRES_COMMAND_OK));
}

#define TEST_ARGS PGTEST_ARGS
#define TEST_VALUE(sql, ...) test_value(sql, TEST_ARGS(__VA_ARGS__))
#define TEST_COMMAND(sql, ...) test_command(sql, TEST_ARGS(__VA_ARGS__))

static int64_t
test_rows(int agent_id, uint64_t epoch)
{
	return TEST_VALUE("SELECT count(*) FROM results WHERE agent_id = $1 AND epoch = $2",
	    agent_id, (int64_t)epoch);
}

static int64_t
test_acked(int agent_id, uint64_t epoch)
{
	return TEST_VALUE("SELECT acked_seq FROM agent_progress WHERE agent_id = $1 "
			  "AND epoch = $2",
	    agent_id, (int64_t)epoch);
}

// --- driving the loop ---

// Runs the store's loop until cond(arg) holds or timeout_ms pass; returns
// whether it holds.
static bool
test_run_until(bool (*cond)(const void *), const void *arg, int timeout_ms)
{
	return pgtest_run_until(test_base, cond, arg, timeout_ms);
}

static bool
test_is_connected(const void *arg)
{
	(void)arg;
	return store_connected(test_store);
}

static bool
test_is_disconnected(const void *arg)
{
	(void)arg;
	return !store_connected(test_store);
}

static bool
test_is_idle(const void *arg)
{
	(void)arg;
	return store_idle(test_store);
}

// What one callback reported.
struct test_reply {
	int calls;
	int status;
	int agent_id;
	uint64_t acked_seq;
	size_t n_ids; // set by the caller: how many keys were synced
	int ids[8];
};

static bool
test_was_called(const void *arg)
{
	return ((const struct test_reply *)arg)->calls > 0;
}

static void
test_on_commit(int status, uint64_t acked_seq, void *arg)
{
	struct test_reply *reply = arg;

	reply->calls++;
	reply->status = status;
	reply->acked_seq = acked_seq;
}

static void
test_on_hello(int status, int agent_id, uint64_t acked_seq, void *arg)
{
	struct test_reply *reply = arg;

	reply->calls++;
	reply->status = status;
	reply->agent_id = agent_id;
	reply->acked_seq = acked_seq;
}

static void
test_on_targets(int status, const int *ids, void *arg)
{
	struct test_reply *reply = arg;

	reply->calls++;
	reply->status = status;
	// ids is only valid during the call.
	assert_true(reply->n_ids <= sizeof(reply->ids) / sizeof(reply->ids[0]));
	for (size_t i = 0; status == 0 && i < reply->n_ids; i++)
		reply->ids[i] = ids[i];
}

static void
test_wait_reply(struct test_reply *reply)
{
	assert_true(test_run_until(test_was_called, reply, TEST_WAIT_MS));
	assert_int_equal(reply->calls, 1);
}

// Registers (name, epoch) and returns its agent_id.
static int
test_hello(const char *name, uint64_t epoch, uint64_t want_acked)
{
	struct test_reply reply = { 0 };

	store_hello(test_store, name, "eu-west", "0.1-test", epoch, test_on_hello, &reply);
	test_wait_reply(&reply);
	assert_int_equal(reply.status, 0);
	assert_true(reply.agent_id > 0);
	assert_int_equal(reply.acked_seq, want_acked);
	return reply.agent_id;
}

static int
test_target_id(const char *key)
{
	const char *const keys[] = { key };
	const char *const specs[] = { "{\"url\": \"https://api.example/health\"}" };
	struct test_reply reply = { .n_ids = 1 };

	store_sync_targets(test_store, keys, specs, 1, test_on_targets, &reply);
	test_wait_reply(&reply);
	assert_int_equal(reply.status, 0);
	assert_true(reply.ids[0] > 0);
	return reply.ids[0];
}

// --- results as an agent would send them ---

static Vantage__Result test_results[TEST_ROWS];
static char test_errors[TEST_ROWS][200];

// Every byte COPY text treats specially, quotes, "\N" (NULL in COPY) and
// "\." (end of data in COPY), and multi-byte UTF-8.
static const char test_nasty[] =
    "TLS handshake with \"api.example\" failed: C:\\certs\\ca.pem\t"
    "line 2\nline 3\r\\N \\. 'quoted' \u00fcber caf\u00e9 \u65e5\u672c \u2713";

// Fills test_results[0..n) with seqs first_seq.. of a probe every second
// since start_us, every column varying with the seq, so that a batch made
// again for the same seqs is the same batch.
static void
test_make_results(uint64_t first_seq, size_t n, int64_t start_us)
{
	assert_true(n <= TEST_ROWS);
	for (size_t i = 0; i < n; i++) {
		Vantage__Result *r = &test_results[i];
		size_t k = first_seq - 1 + i;

		vantage__result__init(r);
		r->seq = k + 1;
		r->target = "api";
		r->config_version = 3 + k % 2;
		r->scheduled_at = start_us + (int64_t)k * 1000003;
		r->started_at = r->scheduled_at + (int64_t)((k * 37) % 5000) +
		    (k % 3 == 0 ? 123456 : 0);
		r->trigger = k % 97 == 0 ? VANTAGE__TRIGGER__TRIGGER_PROBE_NOW :
		    k % 5 == 0           ? VANTAGE__TRIGGER__TRIGGER_RETRY :
					   VANTAGE__TRIGGER__TRIGGER_SCHEDULED;
		r->agent_state = k % 13 == 0 ? VANTAGE__AGENT_STATE__AGENT_STATE_IMPAIRED :
					       VANTAGE__AGENT_STATE__AGENT_STATE_HEALTHY;
		r->dns_us = 100 + (uint32_t)k;
		r->connect_us = 2000 + (uint32_t)k * 3;
		r->tls_us = k % 4 != 0 ? 5000 + (uint32_t)k : 0;
		r->ttfb_us = 20000 + (uint32_t)k * 11;
		r->total_us = r->dns_us + r->connect_us + r->tls_us + r->ttfb_us + 17;
		r->bytes = 512 + k * 17;
		r->tls_expiry = k % 4 != 0 ? 1798761600 + (int64_t)k : 0;
		r->peer = k % 2 != 0 ? "203.0.113.7:443" : "[2001:db8::17]:443";
		if (k % 10 == 3) {
			r->outcome = VANTAGE__OUTCOME__OUTCOME_DOWN;
			r->reason = k % 20 == 3 ? VANTAGE__REASON__REASON_TLS :
						  VANTAGE__REASON__REASON_HTTP_STATUS;
			r->http_status = r->reason == VANTAGE__REASON__REASON_HTTP_STATUS ? 503 : 0;
			snprintf(test_errors[i], sizeof(test_errors[i]), "%s #%zu", test_nasty, k);
			r->error = test_errors[i];
			r->peer = "";
		} else if (k % 50 == 7) {
			r->outcome = VANTAGE__OUTCOME__OUTCOME_AGENT_ERROR;
			r->reason = VANTAGE__REASON__REASON_INTERNAL;
			r->http_status = 0;
			r->error = "out of sockets: \"EMFILE\"\t\\";
		} else {
			r->outcome = VANTAGE__OUTCOME__OUTCOME_UP;
			r->reason = VANTAGE__REASON__REASON_NONE;
			r->http_status = 200;
			r->error = "";
		}
	}
}

static void
test_add_results(int agent_id, uint64_t epoch, int target_id, size_t n)
{
	for (size_t i = 0; i < n; i++)
		store_add_result(test_store, agent_id, epoch, target_id, &test_results[i]);
}

// A start time that keeps all TEST_ROWS probes inside the partitions
// store_prepare creates around today.
static int64_t
test_recent_us(void)
{
	return clock_wall_us() - 1800 * INT64_C(1000000) + 654321;
}

static void
test_expect_int(PGresult *res, int row, int col, int64_t want)
{
	const char *name = PQfname(res, col);

	if (PQgetisnull(res, row, col))
		fail_msg("row %d: \"%s\" is NULL, expected %" PRId64, row, name, want);
	if (strtoll(PQgetvalue(res, row, col), NULL, 10) != want)
		fail_msg("row %d: \"%s\" is %s, expected %" PRId64, row, name,
		    PQgetvalue(res, row, col), want);
}

// Empty text was sent as NULL; anything else must come back byte for byte.
static void
test_expect_text(PGresult *res, int row, int col, const char *want)
{
	const char *name = PQfname(res, col);

	if (*want == '\0') {
		if (!PQgetisnull(res, row, col))
			fail_msg("row %d: \"%s\" is \"%s\", expected NULL", row, name,
			    PQgetvalue(res, row, col));
		return;
	}
	if (PQgetisnull(res, row, col))
		fail_msg("row %d: \"%s\" is NULL, expected \"%s\"", row, name, want);
	if ((size_t)PQgetlength(res, row, col) != strlen(want) ||
	    memcmp(PQgetvalue(res, row, col), want, strlen(want)) != 0)
		fail_msg("row %d: \"%s\" is \"%s\", expected \"%s\"", row, name,
		    PQgetvalue(res, row, col), want);
}

// Every column of the n stored rows of (agent_id, epoch) equals
// test_results[0..n).
static void
test_expect_results(int agent_id, uint64_t epoch, int target_id, size_t n)
{
	PGresult *res = test_query(
	    "SELECT (extract(epoch FROM started_at) * 1000000)::bigint, agent_id, target_id, "
	    "epoch, seq, config_version, sched_delay_us, outcome, reason, trigger, "
	    "agent_state, http_status, dns_us, connect_us, tls_us, ttfb_us, total_us, bytes, "
	    "(extract(epoch FROM tls_expiry) * 1000000)::bigint, peer, error "
	    "FROM results WHERE agent_id = $1 AND epoch = $2 ORDER BY seq",
	    TEST_ARGS(agent_id, (int64_t)epoch), PGRES_TUPLES_OK);

	assert_int_equal(PQntuples(res), (int)n);
	for (int row = 0; row < (int)n; row++) {
		const Vantage__Result *r = &test_results[row];

		test_expect_int(res, row, 0, r->started_at);
		test_expect_int(res, row, 1, agent_id);
		test_expect_int(res, row, 2, target_id);
		test_expect_int(res, row, 3, (int64_t)epoch);
		test_expect_int(res, row, 4, (int64_t)r->seq);
		test_expect_int(res, row, 5, (int64_t)r->config_version);
		test_expect_int(res, row, 6, r->started_at - r->scheduled_at);
		test_expect_int(res, row, 7, r->outcome);
		test_expect_int(res, row, 8, r->reason);
		test_expect_int(res, row, 9, r->trigger);
		test_expect_int(res, row, 10, r->agent_state);
		test_expect_int(res, row, 11, r->http_status);
		test_expect_int(res, row, 12, r->dns_us);
		test_expect_int(res, row, 13, r->connect_us);
		test_expect_int(res, row, 14, r->tls_us);
		test_expect_int(res, row, 15, r->ttfb_us);
		test_expect_int(res, row, 16, r->total_us);
		test_expect_int(res, row, 17, (int64_t)r->bytes);
		if (r->tls_expiry > 0)
			test_expect_int(res, row, 18, r->tls_expiry * 1000000);
		else
			assert_true(PQgetisnull(res, row, 18));
		test_expect_text(res, row, 19, r->peer);
		test_expect_text(res, row, 20, r->error);
	}
	PQclear(res);
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

// Each test gets a fresh loop and a store that is connected and idle, so
// that the first operation a test adds meets an idle connection.
static int
test_setup(void **state)
{
	(void)state;
	if (store_prepare(test_conninfo, 10) != 0)
		return -1;
	test_base = event_base_new();
	test_store = store_new(test_base, test_conninfo);
	if (!test_run_until(test_is_connected, NULL, TEST_WAIT_MS)) {
		fprintf(stderr, "the store did not connect within %d ms\n", TEST_WAIT_MS);
		return -1;
	}
	return 0;
}

static int
test_teardown(void **state)
{
	(void)state;
	store_free(test_store);
	test_store = NULL;
	event_base_free(test_base);
	test_base = NULL;
	return 0;
}

// --- tests ---

static void
test_prepare_idempotent(void **state)
{
	int64_t partitions;

	(void)state;
	assert_int_equal(test_value("SELECT count(*) FROM pg_class "
				    "WHERE relname = 'schema_version'",
			     NULL, 0),
	    0);
	assert_int_equal(store_prepare(test_conninfo, 10), 0);
	assert_int_equal(test_value("SELECT count(*) FROM schema_version", NULL, 0),
	    (int64_t)sql_migrations_count);
	// Yesterday to three days ahead, plus the default partition.
	partitions = test_value("SELECT count(*) FROM pg_inherits "
				"WHERE inhparent = 'results'::regclass",
	    NULL, 0);
	assert_int_equal(partitions, 6);

	assert_int_equal(store_prepare(test_conninfo, 10), 0);
	assert_int_equal(test_value("SELECT count(*) FROM schema_version", NULL, 0),
	    (int64_t)sql_migrations_count);
	assert_int_equal(test_value("SELECT count(*) FROM pg_inherits "
				    "WHERE inhparent = 'results'::regclass",
			     NULL, 0),
	    partitions);
}

static int64_t
test_target_retired(const char *key)
{
	const char *params[] = { key };
	PGresult *res = PQexecParams(test_db,
	    "SELECT retired_at IS NOT NULL FROM targets WHERE key = $1", 1, NULL, params, NULL,
	    NULL, 0);
	int64_t retired = -1;

	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
		retired = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	return retired;
}

static void
test_sync(const char *const *keys, const char *const *specs, size_t n, int *ids)
{
	struct test_reply reply = { .n_ids = n };

	store_sync_targets(test_store, keys, specs, n, test_on_targets, &reply);
	test_wait_reply(&reply);
	assert_int_equal(reply.status, 0);
	for (size_t i = 0; i < n; i++) {
		assert_true(reply.ids[i] > 0);
		ids[i] = reply.ids[i];
	}
}

static void
test_sync_targets(void **state)
{
	// Keys and specs that need escaping inside an array literal.
	const char *const keys[] = { "web", "api \"v2\" {a,b}", "C:\\dns", "NULL" };
	const char *const specs[] = {
		"{\"url\": \"https://www.example/\"}",
		"{\"url\": \"https://api.example/v2?q=\\\"x\\\"\", \"kind\": \"http\"}",
		"{\"host\": \"dns.example\", \"note\": \"\u00fcber\"}",
		"{}",
	};
	const char *const keys_without_1[] = { keys[0], keys[2], keys[3] };
	const char *const specs_without_1[] = { specs[0], specs[2], specs[3] };
	int ids[4], again[4];
	const char *params[2];
	PGresult *res;

	(void)state;
	test_sync(keys, specs, 4, ids);
	for (int i = 0; i < 4; i++) {
		for (int j = 0; j < i; j++)
			assert_int_not_equal(ids[i], ids[j]);
		params[0] = keys[i];
		params[1] = specs[i];
		res = PQexecParams(test_db,
		    "SELECT id, spec = $2::jsonb, retired_at IS NULL "
		    "FROM targets WHERE key = $1",
		    2, NULL, params, NULL, NULL, 0);
		assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
		assert_int_equal(PQntuples(res), 1);
		assert_int_equal(strtol(PQgetvalue(res, 0, 0), NULL, 10), ids[i]);
		assert_string_equal(PQgetvalue(res, 0, 1), "t");
		assert_string_equal(PQgetvalue(res, 0, 2), "t");
		PQclear(res);
	}

	test_sync(keys_without_1, specs_without_1, 3, again);
	assert_int_equal(again[0], ids[0]);
	assert_int_equal(again[1], ids[2]);
	assert_int_equal(again[2], ids[3]);
	assert_int_equal(test_target_retired(keys[1]), 1);
	assert_int_equal(test_target_retired(keys[0]), 0);
	assert_int_equal(test_target_retired(keys[2]), 0);
	assert_int_equal(test_target_retired(keys[3]), 0);

	test_sync(keys, specs, 4, again);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(again[i], ids[i]);
		assert_int_equal(test_target_retired(keys[i]), 0);
	}
	// Whatever other tests synced before is retired now.
	assert_int_equal(
	    test_value("SELECT count(*) FROM targets WHERE retired_at IS NULL", NULL, 0), 4);
}

static void
test_hello_progress(void **state)
{
	int agent_id, again;

	(void)state;
	agent_id = test_hello("hello-a", 1001, 0);
	assert_int_equal(TEST_VALUE("SELECT count(*) FROM agents WHERE id = $1 AND "
				    "name = 'hello-a' AND region = 'eu-west'",
			     agent_id),
	    1);
	assert_int_equal(test_acked(agent_id, 1001), 0);

	// A reconnecting agent learns where it left off.
	TEST_COMMAND("UPDATE agent_progress SET acked_seq = 42 WHERE agent_id = $1", agent_id);
	again = test_hello("hello-a", 1001, 42);
	assert_int_equal(again, agent_id);
	assert_int_equal(test_acked(agent_id, 1001), 42);

	// A new spool starts its own stream; the old one keeps its progress.
	again = test_hello("hello-a", 1002, 0);
	assert_int_equal(again, agent_id);
	assert_int_equal(
	    TEST_VALUE("SELECT count(*) FROM agent_progress WHERE agent_id = $1", agent_id), 2);
	assert_int_equal(test_acked(agent_id, 1001), 42);
	assert_int_equal(test_acked(agent_id, 1002), 0);
	assert_int_equal(test_value("SELECT count(*) FROM agents WHERE name = 'hello-a'", NULL, 0),
	    1);
}

static void
test_transaction_1000(void **state)
{
	const uint64_t epoch = 2001;
	struct test_reply reply = { 0 };
	struct store_stats before, after;
	int agent_id, target_id;
	int64_t start;

	(void)state;
	agent_id = test_hello("txn-a", epoch, 0);
	target_id = test_target_id("api");
	test_make_results(1, TEST_ROWS, test_recent_us());
	store_get_stats(test_store, &before);

	start = clock_mono_us();
	test_add_results(agent_id, epoch, target_id, TEST_ROWS);
	store_add_progress(test_store, agent_id, epoch, 0, TEST_ROWS, test_on_commit, &reply);
	test_wait_reply(&reply);
	store_get_stats(test_store, &after);
	printf("%d rows stored in %.1f ms (transaction %.1f ms)\n", TEST_ROWS,
	    (double)(clock_mono_us() - start) / 1e3, (double)after.last_commit_us / 1e3);
	assert_int_equal(reply.status, 0);
	assert_int_equal(reply.acked_seq, TEST_ROWS);

	assert_int_equal(after.txns_committed, before.txns_committed + 1);
	assert_int_equal(after.rows_committed, before.rows_committed + TEST_ROWS);
	assert_int_equal(after.txns_failed, before.txns_failed);
	assert_int_equal(after.rows_pending, 0);
	assert_true(store_idle(test_store));

	assert_int_equal(test_rows(agent_id, epoch), TEST_ROWS);
	test_expect_results(agent_id, epoch, target_id, TEST_ROWS);
	assert_int_equal(test_acked(agent_id, epoch), TEST_ROWS);
}

static void
test_group_commit(void **state)
{
	const uint64_t epoch = 3001;
	struct test_reply reply_a = { 0 }, reply_b = { 0 };
	struct store_stats before, after;
	int agent_a, agent_b, target_id;
	int64_t start_us = test_recent_us();

	(void)state;
	agent_a = test_hello("group-a", epoch, 0);
	agent_b = test_hello("group-b", epoch, 0);
	target_id = test_target_id("api");
	store_get_stats(test_store, &before);

	// Two batches of a and one of b arrive within one turn of the loop.
	test_make_results(1, 10, start_us);
	test_add_results(agent_a, epoch, target_id, 10);
	store_add_progress(test_store, agent_a, epoch, 0, 10, test_on_commit, &reply_a);
	test_make_results(1, 25, start_us);
	test_add_results(agent_b, epoch, target_id, 25);
	store_add_gap(test_store, agent_b, epoch, 26, 30);
	test_make_results(31, 10, start_us);
	test_add_results(agent_b, epoch, target_id, 10);
	store_add_progress(test_store, agent_b, epoch, 0, 40, test_on_commit, &reply_b);
	test_make_results(11, 5, start_us);
	test_add_results(agent_a, epoch, target_id, 5);
	store_add_progress(test_store, agent_a, epoch, 10, 15, test_on_commit, &reply_a);

	store_get_stats(test_store, &after);
	assert_int_equal(after.rows_pending, 50);
	assert_true(test_run_until(test_is_idle, NULL, TEST_WAIT_MS));
	// The second batch of a extends the first: one callback up to 15.
	assert_int_equal(reply_a.calls, 1);
	assert_int_equal(reply_a.status, 0);
	assert_int_equal(reply_a.acked_seq, 15);
	assert_int_equal(reply_b.calls, 1);
	assert_int_equal(reply_b.status, 0);
	assert_int_equal(reply_b.acked_seq, 40);

	store_get_stats(test_store, &after);
	assert_int_equal(after.txns_committed, before.txns_committed + 1);
	assert_int_equal(after.rows_committed, before.rows_committed + 50);
	test_make_results(1, 15, start_us);
	test_expect_results(agent_a, epoch, target_id, 15);
	assert_int_equal(test_rows(agent_b, epoch), 35);
	assert_int_equal(test_acked(agent_a, epoch), 15);
	assert_int_equal(test_acked(agent_b, epoch), 40);
	assert_int_equal(TEST_VALUE("SELECT count(*) FROM gaps WHERE agent_id = $1 AND "
				    "epoch = $2 AND first_seq = 26 AND last_seq = 30",
			     agent_b, (int64_t)epoch),
	    1);
}

static void
test_progress_guard(void **state)
{
	const uint64_t epoch = 4001;
	struct test_reply reply_good = { 0 }, reply_stale = { 0 }, reply_replay = { 0 };
	struct store_stats before, after;
	int agent_good, agent_stale, target_id;
	int64_t start_us = test_recent_us();

	(void)state;
	agent_good = test_hello("guard-good", epoch, 0);
	agent_stale = test_hello("guard-stale", epoch, 0);
	target_id = test_target_id("api");
	// Another aggregator (or a lost COMMIT that did happen) moved it on.
	TEST_COMMAND("UPDATE agent_progress SET acked_seq = 1000 WHERE agent_id = $1 "
		     "AND epoch = $2",
	    agent_stale, (int64_t)epoch);
	store_get_stats(test_store, &before);

	test_make_results(1, 5, start_us);
	test_add_results(agent_good, epoch, target_id, 5);
	store_add_progress(test_store, agent_good, epoch, 0, 5, test_on_commit, &reply_good);
	test_make_results(6, 10, start_us);
	test_add_results(agent_stale, epoch, target_id, 10);
	store_add_gap(test_store, agent_stale, epoch, 1, 5);
	store_add_progress(test_store, agent_stale, epoch, 5, 15, test_on_commit, &reply_stale);
	assert_true(test_run_until(test_is_idle, NULL, TEST_WAIT_MS));

	// The whole transaction is gone, the innocent batch included.
	assert_int_equal(reply_stale.calls, 1);
	assert_int_equal(reply_stale.status, -1);
	assert_int_equal(reply_good.calls, 1);
	assert_int_equal(reply_good.status, -1);
	assert_int_equal(test_rows(agent_good, epoch), 0);
	assert_int_equal(test_rows(agent_stale, epoch), 0);
	assert_int_equal(TEST_VALUE("SELECT count(*) FROM gaps WHERE agent_id = $1", agent_stale),
	    0);
	assert_int_equal(test_acked(agent_good, epoch), 0);
	assert_int_equal(test_acked(agent_stale, epoch), 1000);
	store_get_stats(test_store, &after);
	assert_int_equal(after.txns_failed, before.txns_failed + 1);
	assert_int_equal(after.txns_committed, before.txns_committed);
	assert_int_equal(after.rows_committed, before.rows_committed);

	// The connection is still usable, and a replay of the good batch lands.
	assert_true(store_connected(test_store));
	test_make_results(1, 5, start_us);
	test_add_results(agent_good, epoch, target_id, 5);
	store_add_progress(test_store, agent_good, epoch, 0, 5, test_on_commit, &reply_replay);
	test_wait_reply(&reply_replay);
	assert_int_equal(reply_replay.status, 0);
	assert_int_equal(test_rows(agent_good, epoch), 5);
	test_expect_results(agent_good, epoch, target_id, 5);
	assert_int_equal(test_acked(agent_good, epoch), 5);
}

static void
test_gaps(void **state)
{
	const uint64_t epoch = 5001;
	struct store_stats before, after;
	PGresult *res;
	int agent_id;

	(void)state;
	agent_id = test_hello("gaps-a", epoch, 0);
	store_get_stats(test_store, &before);

	// A duplicate within one transaction...
	store_add_gap(test_store, agent_id, epoch, 1, 5);
	store_add_gap(test_store, agent_id, epoch, 10, 12);
	store_add_gap(test_store, agent_id, epoch, 1, 5);
	assert_true(test_run_until(test_is_idle, NULL, TEST_WAIT_MS));
	// ...and one resent later, after a reconnect of the agent.
	store_add_gap(test_store, agent_id, epoch, 10, 12);
	store_add_gap(test_store, agent_id, epoch, 20, 20);
	assert_true(test_run_until(test_is_idle, NULL, TEST_WAIT_MS));

	store_get_stats(test_store, &after);
	assert_int_equal(after.txns_failed, before.txns_failed);
	assert_true(after.txns_committed >= before.txns_committed + 2);
	res = test_query("SELECT first_seq, last_seq, recorded_at IS NOT NULL FROM gaps "
			 "WHERE agent_id = $1 AND epoch = $2 ORDER BY first_seq",
	    TEST_ARGS(agent_id, (int64_t)epoch), PGRES_TUPLES_OK);
	assert_int_equal(PQntuples(res), 3);
	test_expect_int(res, 0, 0, 1);
	test_expect_int(res, 0, 1, 5);
	test_expect_int(res, 1, 0, 10);
	test_expect_int(res, 1, 1, 12);
	test_expect_int(res, 2, 0, 20);
	test_expect_int(res, 2, 1, 20);
	for (int row = 0; row < 3; row++)
		assert_string_equal(PQgetvalue(res, row, 2), "t");
	PQclear(res);
}

static bool
test_never(const void *arg)
{
	(void)arg;
	return false;
}

// What one store_query callback saw: calls, status and the first value.
struct test_query_reply {
	int calls;
	int status;
	char value[32];
};

static void
test_on_query(int status, const struct store_result *r, void *arg)
{
	struct test_query_reply *q = arg;
	const char *v = status == 0 ? store_result_value(r, 0, 0) : NULL;

	q->calls++;
	q->status = status;
	snprintf(q->value, sizeof(q->value), "%s", v != NULL ? v : "");
}

static bool
test_query_called(const void *arg)
{
	return ((const struct test_query_reply *)arg)->calls > 0;
}

// The server goes away under an idle store: a transaction queued before the
// store noticed is cut off (or kept), one queued after waits; nothing is
// reported stored while the server is down, the store reconnects by
// itself, and after the replay every seq is stored exactly once.
static void
test_reconnect(void **state)
{
	const uint64_t epoch = 6001;
	struct test_reply cut = { 0 }, waiting = { 0 }, replay = { 0 }, later = { 0 };
	struct test_query_reply read_now = { 0 }, write_later = { 0 };
	struct store_stats before, after;
	int agent_a, agent_b, target_id;
	int64_t start_us = test_recent_us(), down_at;
	char *conninfo = NULL;

	(void)state;
	agent_a = test_hello("reconnect-a", epoch, 0);
	agent_b = test_hello("reconnect-b", epoch, 0);
	target_id = test_target_id("api");
	store_get_stats(test_store, &before);

	pgembed_stop(test_pg);
	test_pg = NULL;
	down_at = clock_mono_us();
	test_make_results(1, 10, start_us);
	test_add_results(agent_a, epoch, target_id, 10);
	store_add_progress(test_store, agent_a, epoch, 0, 10, test_on_commit, &cut);
	assert_true(test_run_until(test_is_disconnected, NULL, TEST_WAIT_MS));
	test_add_results(agent_b, epoch, target_id, 10);
	store_add_progress(test_store, agent_b, epoch, 0, 10, test_on_commit, &waiting);
	// Long enough for several failed reconnection attempts.
	test_run_until(test_never, NULL, 1500);
	assert_true(cut.calls == 0 || (cut.calls == 1 && cut.status == -1));
	assert_int_equal(waiting.calls, 0);
	assert_false(store_connected(test_store));
	assert_false(store_idle(test_store));
	// An API read fails at once, from the loop; a write waits for the server.
	store_query_now(test_store, "SELECT 1", 0, NULL, test_on_query, &read_now);
	store_query(test_store, "SELECT 2", 0, NULL, test_on_query, &write_later);
	assert_int_equal(read_now.calls, 0);
	assert_true(test_run_until(test_query_called, &read_now, 500));
	assert_int_equal(read_now.status, -1);
	assert_int_equal(write_later.calls, 0);
	assert_true(store_down_since(test_store, NULL));

	test_pg = pgembed_start(test_state, &conninfo);
	assert_non_null(test_pg);
	assert_string_equal(conninfo, test_conninfo);
	free(conninfo);
	test_db_connect();
	assert_true(test_run_until(test_is_connected, NULL, TEST_RECONNECT_WAIT_MS));
	printf("store reconnected %.2f s after the server stopped\n",
	    (double)(clock_mono_us() - down_at) / 1e6);

	test_wait_reply(&waiting);
	assert_int_equal(waiting.status, 0);
	assert_int_equal(waiting.acked_seq, 10);
	assert_true(test_run_until(test_query_called, &write_later, TEST_WAIT_MS));
	assert_int_equal(write_later.status, 0);
	assert_string_equal(write_later.value, "2");
	assert_int_equal(read_now.calls, 1);
	// A transaction cut off is replayed by the caller, as ingest does.
	if (cut.calls == 0) {
		test_wait_reply(&cut);
		assert_int_equal(cut.status, 0);
	} else {
		assert_int_equal(test_rows(agent_a, epoch), 0);
		assert_int_equal(test_acked(agent_a, epoch), 0);
		test_add_results(agent_a, epoch, target_id, 10);
		store_add_progress(test_store, agent_a, epoch, 0, 10, test_on_commit, &replay);
		test_wait_reply(&replay);
		assert_int_equal(replay.status, 0);
	}
	test_make_results(11, 10, start_us);
	test_add_results(agent_a, epoch, target_id, 10);
	store_add_progress(test_store, agent_a, epoch, 10, 20, test_on_commit, &later);
	test_wait_reply(&later);
	assert_int_equal(later.status, 0);
	assert_int_equal(later.acked_seq, 20);

	test_make_results(1, 20, start_us);
	test_expect_results(agent_a, epoch, target_id, 20);
	test_expect_results(agent_b, epoch, target_id, 10);
	assert_int_equal(test_acked(agent_a, epoch), 20);
	assert_int_equal(test_acked(agent_b, epoch), 10);
	store_get_stats(test_store, &after);
	// One connection was lost; failed attempts to reconnect are not losses.
	assert_int_equal(after.reconnects, before.reconnects + 1);
}

static void
test_maintain(void **state)
{
	static const char sql_exists[] =
	    "SELECT count(*) FROM unnest(ARRAY[current_date, current_date + 3]) AS d(day) "
	    "WHERE to_regclass('results_' || to_char(day, 'YYYYMMDD')) IS NOT NULL";
	PGresult *res;

	(void)state;
	// Today's partition goes too: its rows would otherwise keep the
	// default partition from being split again, so start from none.
	res = test_query("SELECT format('DROP TABLE %I, %I', "
			 "'results_' || to_char(current_date, 'YYYYMMDD'), "
			 "'results_' || to_char(current_date + 3, 'YYYYMMDD'))",
	    NULL, 0, PGRES_TUPLES_OK);
	PQclear(test_query(PQgetvalue(res, 0, 0), NULL, 0, PGRES_COMMAND_OK));
	PQclear(res);
	assert_int_equal(test_value(sql_exists, NULL, 0), 0);

	store_maintain(test_store);
	assert_false(store_idle(test_store));
	assert_true(test_run_until(test_is_idle, NULL, TEST_WAIT_MS));
	assert_int_equal(test_value(sql_exists, NULL, 0), 2);
	assert_true(store_connected(test_store));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_prepare_idempotent),
		cmocka_unit_test_setup_teardown(test_sync_targets, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_hello_progress, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_transaction_1000, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_group_commit, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_progress_guard, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_gaps, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_reconnect, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_maintain, test_setup, test_teardown),
	};
	const char *why = pgtest_cannot_run();

	if (why != NULL) {
		printf("SKIP: %s\n", why);
		return 77;
	}
	log_init("test_store", LOG_LEVEL_INFO);
	atexit(test_cleanup);
	signal(SIGINT, test_on_signal);
	signal(SIGTERM, test_on_signal);
	signal(SIGHUP, test_on_signal);
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, test_group_setup, test_group_teardown);
}
