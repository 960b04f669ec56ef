// SPDX-License-Identifier: Apache-2.0
//
// Tests of the rollups and retention of aggregator/sql/004_rollups.sql
// against a real throwaway PostgreSQL cluster (pgembed, migrations through
// store_prepare, so the functions are the ones production runs).  Synthetic
// results for 2 targets x 3 regions over 3 hours of a day three days ago
// (log-normal latencies with a slow half hour, an outage seen by two of
// three regions, ten minutes of agent errors) are inserted with one
// INSERT ... SELECT; the checks compare the rollups with aggregates of
// those raw rows computed independently: counts per minute, idempotence
// (a second run writes the same rows), a late result, p50/p95 of the day
// within 2 % of percentile_disc over the raw UP rows, the up/down/unknown
// seconds, the SQL bucket formula against histogram_bucket() on every
// bucket edge, and retention dropping exactly the old partitions and
// rollup rows.  Skips (exit 77) when no PostgreSQL server is installed;
// the cluster is stopped and its directory removed on every way out.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <libpq-fe.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agg_conf.h"
#include "buf.h"
#include "histogram.h"
#include "log.h"
#include "pgembed.h"
#include "rollup.h"
#include "store_pg.h"
#include "conftest.h"
#include "pgtest.h"

#define MINUTES 180 // of results, from 10:00 UTC three days ago
#define PER_MINUTE 4

static char test_root[] = "/tmp/vantage-rollup-XXXXXX";
static char test_state[sizeof(test_root) + 16];
static struct pgembed *test_pg;
static char *test_conninfo;
static PGconn *test_db;
static int64_t test_target[2];

static void
test_cleanup(void)
{
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

static int64_t
test_value(const char *sql, const int64_t *args, size_t n_args)
{
	return pgtest_value(test_db, sql, args, n_args);
}

static void
test_command(const char *sql, const int64_t *args, size_t n_args)
{
	PQclear(pgtest_query(test_db, sql, args, n_args, PGRES_COMMAND_OK));
}

// The one text value of a query with integer parameters; owned.
static char *
test_text(const char *sql, const int64_t *args, size_t n_args)
{
	PGresult *res = pgtest_query(test_db, sql, args, n_args, PGRES_TUPLES_OK);
	char *text;

	assert_int_equal(PQntuples(res), 1);
	text = strdup(PQgetisnull(res, 0, 0) ? "" : PQgetvalue(res, 0, 0));
	PQclear(res);
	assert_non_null(text);
	return text;
}

#define TEST_VALUE(sql, ...) test_value(sql, PGTEST_ARGS(__VA_ARGS__))
#define TEST_COMMAND(sql, ...) test_command(sql, PGTEST_ARGS(__VA_ARGS__))
#define TEST_TEXT(sql, ...) test_text(sql, PGTEST_ARGS(__VA_ARGS__))

// The start of the synthetic data, as SQL.
#define T0 "((current_date - 3)::timestamp AT TIME ZONE 'UTC' + interval '10 hours')"

// Every minute rollup of the data, as one text, to compare two runs.
static const char sql_snapshot[] =
    "SELECT string_agg(m::text, ';' ORDER BY target_id, region, minute) FROM rollup_minute m";

// Rows whose counts differ from the raw rows' own aggregate.
static const char sql_minute_mismatches[] =
    "SELECT count(*) FROM (SELECT r.target_id, a.region, date_trunc('minute', r.started_at) AS "
    "minute, count(*) AS n, count(*) FILTER (WHERE outcome = 1) AS up, count(*) FILTER (WHERE "
    "outcome = 2) AS down FROM results r JOIN agents a ON a.id = r.agent_id GROUP BY 1, 2, 3) "
    "raw FULL JOIN rollup_minute m USING (target_id, region, minute) WHERE m.n IS DISTINCT "
    "FROM raw.n OR m.up IS DISTINCT FROM raw.up OR m.down IS DISTINCT FROM raw.down OR m.other "
    "IS DISTINCT FROM raw.n - raw.up - raw.down OR (SELECT coalesce(sum(c), 0) FROM "
    "unnest(m.counts) c) IS DISTINCT FROM raw.up";

static void
test_insert_day(void)
{
	test_command("INSERT INTO agents (name, region) VALUES ('a1', 'r1'), ('a2', 'r2'), "
		     "('a3', 'r3')",
	    NULL, 0);
	for (int i = 0; i < 2; i++) {
		char key[] = "t0";

		key[1] = (char)('0' + i);
		test_target[i] = pgtest_value_text(test_db,
		    "INSERT INTO targets (key, spec) VALUES ($1, '{}') RETURNING id",
		    (const char *const[]){ key }, 1);
	}
	assert_true(test_value("SELECT vantage_ensure_partitions(current_date - 3, current_date "
			       "- 3)",
			NULL, 0) >= 0);
	PQclear(pgtest_query(test_db, "SELECT setseed(0.25)", NULL, 0, PGRES_TUPLES_OK));
	// Minutes 30..59 are slow (5x); target 1 is DOWN in r1 and r2 in
	// minutes 60..89 (an outage by majority) and in r3 alone in 90..99
	// (regional, still up by majority); target 0 has agent errors in
	// every region in 120..129 (unknown).
	TEST_COMMAND("INSERT INTO results (started_at, agent_id, target_id, epoch, seq, "
		     "config_version, sched_delay_us, outcome, reason, trigger, agent_state, "
		     "http_status, dns_us, connect_us, tls_us, ttfb_us, total_us, bytes) "
		     "SELECT " T0 " + (m * 60 + k * 15 + a.id) * interval '1 second', a.id, t.id, "
		     "1, row_number() OVER (), 1, 0, "
		     "CASE WHEN t.id = $2 AND a.region IN ('r1', 'r2') AND m BETWEEN 60 AND 89 "
		     "THEN 2 WHEN t.id = $2 AND a.region = 'r3' AND m BETWEEN 90 AND 99 THEN 2 "
		     "WHEN t.id = $1 AND m BETWEEN 120 AND 129 THEN 3 ELSE 1 END, "
		     "0, 0, 0, 200, 0, 0, 0, 0, "
		     "(exp(ln(80000) + 0.5 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * "
		     "random())) * CASE WHEN m BETWEEN 30 AND 59 THEN 5 ELSE 1 END)::integer, 0 "
		     "FROM generate_series(0, $3 - 1) m, generate_series(0, $4 - 1) k, agents a, "
		     "targets t",
	    test_target[0], test_target[1], MINUTES, PER_MINUTE);
}

static int
test_group_setup(void **state)
{
	(void)state;
	if (pgtest_mkdir(test_root, test_state, sizeof(test_state)) != 0)
		return -1;
	test_pg = pgembed_start(test_state, &test_conninfo);
	if (test_pg == NULL)
		return -1;
	if (store_prepare(test_conninfo, 10) != 0)
		return -1;
	test_db = PQconnectdb(test_conninfo);
	if (PQstatus(test_db) != CONNECTION_OK) {
		fprintf(stderr, "could not connect: %s", PQerrorMessage(test_db));
		return -1;
	}
	PQclear(PQexec(test_db, "SET TimeZone = 'UTC'"));
	test_insert_day();
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

// The SQL bucket and midpoint are histogram.c's, on every bucket edge
// (the integers either side of each 1.02^i) and the extremes.
static void
test_bucket_formula_agrees(void **state)
{
	struct buf values;
	int64_t *v = calloc(5 * HISTOGRAM_BUCKETS + 8, sizeof(*v));
	size_t n = 0;
	PGresult *res;

	(void)state;
	assert_non_null(v);
	v[n++] = 0;
	v[n++] = 1;
	v[n++] = INT32_MAX;
	v[n++] = UINT32_MAX;
	for (int i = 1; i < HISTOGRAM_BUCKETS; i++) {
		double edge = pow(HISTOGRAM_RATIO, i);

		for (int64_t d = -1; d <= 1; d++)
			if ((int64_t)floor(edge) + d > 0 && (int64_t)floor(edge) + d <= UINT32_MAX)
				v[n++] = (int64_t)floor(edge) + d;
		if ((int64_t)ceil(edge) + 1 <= UINT32_MAX)
			v[n++] = (int64_t)ceil(edge) + 1;
	}
	buf_init(&values);
	buf_putc(&values, '{');
	for (size_t i = 0; i < n; i++)
		buf_printf(&values, "%s%" PRId64, i ? "," : "", v[i]);
	buf_putc(&values, '}');
	res = pgtest_query_text(test_db,
	    "SELECT vantage_histogram_bucket(v) FROM unnest($1::bigint[]) WITH ORDINALITY AS u(v, "
	    "o) ORDER BY o",
	    (const char *const[]){ buf_cstr(&values) }, 1, PGRES_TUPLES_OK);
	assert_int_equal(PQntuples(res), (int)n);
	for (size_t i = 0; i < n; i++) {
		int sql = (int)strtol(PQgetvalue(res, (int)i, 0), NULL, 10);

		if (sql != histogram_bucket((uint64_t)v[i]))
			fail_msg("value %" PRId64 ": SQL bucket %d, C bucket %d", v[i], sql,
			    histogram_bucket((uint64_t)v[i]));
	}
	printf("%zu edge values: SQL and C buckets agree\n", n);
	PQclear(res);
	res = pgtest_query(test_db,
	    "SELECT vantage_histogram_mid(i) FROM generate_series(0, $1) i ORDER BY i",
	    PGTEST_ARGS(HISTOGRAM_BUCKETS - 1), PGRES_TUPLES_OK);
	for (int i = 0; i < HISTOGRAM_BUCKETS; i++)
		assert_int_equal(strtoll(PQgetvalue(res, i, 0), NULL, 10),
		    llround(histogram_bucket_mid(i)));
	PQclear(res);
	buf_free(&values);
	free(v);
}

// Whole minutes, idempotent, equal to the raw rows' counts; a late result
// is picked up by a run over its minute alone.
static void
test_rollup_minutes(void **state)
{
	char *first, *second;

	(void)state;
	assert_int_equal(TEST_VALUE("SELECT vantage_rollup_minutes(" T0 ", " T0
				    " + $1 * interval '1 minute')",
			     MINUTES),
	    2 * 3 * MINUTES);
	first = test_text(sql_snapshot, NULL, 0);
	// The second run finds every row as it would write it: none changes.
	assert_int_equal(TEST_VALUE("SELECT vantage_rollup_minutes(" T0 ", " T0
				    " + $1 * interval '1 minute')",
			     MINUTES),
	    0);
	second = test_text(sql_snapshot, NULL, 0);
	assert_string_equal(first, second);
	free(first);
	free(second);
	assert_int_equal(TEST_VALUE("SELECT count(*) FROM rollup_minute WHERE n <> $1", PER_MINUTE),
	    0);
	assert_int_equal(test_value(sql_minute_mismatches, NULL, 0), 0);
	assert_int_equal(
	    TEST_VALUE("SELECT sum(down) FROM rollup_minute WHERE target_id = $1", test_target[1]),
	    (2 * 30 + 10) * PER_MINUTE);
	assert_int_equal(
	    TEST_VALUE("SELECT sum(other) FROM rollup_minute WHERE target_id = $1", test_target[0]),
	    3 * 10 * PER_MINUTE);
	// A range inside minutes still recomputes them whole: 10:00:30 to
	// 10:01:10 touches minutes 0 and 1; emptied, they are written again
	// for 2 targets x 3 regions, complete.
	TEST_COMMAND("DELETE FROM rollup_minute WHERE minute < " T0 " + $1 * interval '2 min'", 1);
	assert_int_equal(test_value("SELECT vantage_rollup_minutes(" T0 " + interval '30 s', " T0
				    " + interval '70 s')",
			     NULL, 0),
	    2 * 2 * 3);
	assert_int_equal(test_value(sql_minute_mismatches, NULL, 0), 0);
	// A late result of minute 5, region r1, target 0.
	TEST_COMMAND("INSERT INTO results (started_at, agent_id, target_id, epoch, seq, "
		     "config_version, sched_delay_us, outcome, reason, trigger, agent_state, "
		     "http_status, dns_us, connect_us, tls_us, ttfb_us, total_us, bytes) "
		     "SELECT " T0 " + interval '5 min 59 s', id, $1, 2, 1, 1, 0, 1, 0, 0, 0, 200, "
		     "0, 0, 0, 0, 90000, 0 FROM agents WHERE region = 'r1'",
	    test_target[0]);
	assert_int_equal(test_value("SELECT vantage_rollup_minutes(" T0 " + interval '5 min 59 "
				    "s', " T0 " + interval '6 min')",
			     NULL, 0),
	    1);
	assert_int_equal(TEST_VALUE("SELECT count(*) FROM rollup_minute WHERE n <> $1", PER_MINUTE),
	    1);
	assert_int_equal(test_value(sql_minute_mismatches, NULL, 0), 0);
}

// Nearest-rank percentile of the raw UP latencies of a target's day.
static int64_t
test_raw_percentile(int64_t target, double q)
{
	char sql[256];

	snprintf(sql, sizeof(sql),
	    "SELECT percentile_disc(%.2f) WITHIN GROUP (ORDER BY total_us) FROM results WHERE "
	    "target_id = $1 AND outcome = 1",
	    q);
	return test_value(sql, PGTEST_ARGS(target));
}

// Day rows from minute rows: p50/p95 within 2 % of the raw ones, the same
// as histogram.c's from the stored buckets, and the time by majority.
static void
test_rollup_days(void **state)
{
	static const char sql_day[] = "SELECT %s FROM rollup_day WHERE target_id = $1 AND day = "
				      "current_date - 3";
	char sql[256];

	(void)state;
	test_value("SELECT vantage_rollup_minutes(" T0 ", " T0 " + interval '1 day')", NULL, 0);
	assert_int_equal(test_value("SELECT vantage_rollup_days(current_date - 3, current_date - "
				    "3)",
			     NULL, 0),
	    2);
	assert_int_equal(test_value("SELECT vantage_rollup_days(current_date - 3, current_date - "
				    "3)",
			     NULL, 0),
	    0);
	for (int t = 0; t < 2; t++) {
		static const double qs[] = { 0.50, 0.95 };
		static const char *const cols[] = { "p50_us", "p95_us" };

		for (int i = 0; i < 2; i++) {
			int64_t raw = test_raw_percentile(test_target[t], qs[i]), got;
			double err;

			snprintf(sql, sizeof(sql), sql_day, cols[i]);
			got = test_value(sql, PGTEST_ARGS(test_target[t]));
			err = fabs((double)(got - raw)) / (double)raw;
			printf("target %d %s: raw percentile_disc %" PRId64 " us, from rollups "
			       "%" PRId64 " us, error %.3f %%\n",
			    t, cols[i], raw, got, 100 * err);
			assert_true(err < 0.02);
		}
	}
	// histogram.c reading the stored buckets finds the same p95.
	{
		PGresult *res = pgtest_query(test_db,
		    "SELECT buckets, counts FROM rollup_minute WHERE target_id = $1",
		    PGTEST_ARGS(test_target[0]), PGRES_TUPLES_OK);
		struct histogram *h = histogram_new();

		for (int row = 0; row < PQntuples(res); row++)
			assert_int_equal(histogram_parse_sparse(h, PQgetvalue(res, row, 0),
					     PQgetvalue(res, row, 1)),
			    0);
		PQclear(res);
		snprintf(sql, sizeof(sql), sql_day, "p95_us");
		assert_int_equal(llround(histogram_percentile(h, 0.95)),
		    test_value(sql, PGTEST_ARGS(test_target[0])));
		histogram_free(h);
	}
	// Target 0: up but for the 10 minutes of agent errors; target 1: down
	// for the 30 minutes two regions of three saw it down.
	snprintf(sql, sizeof(sql), sql_day, "up_s");
	assert_int_equal(test_value(sql, PGTEST_ARGS(test_target[0])), (MINUTES - 10) * 60);
	assert_int_equal(test_value(sql, PGTEST_ARGS(test_target[1])), (MINUTES - 30) * 60);
	snprintf(sql, sizeof(sql), sql_day, "down_s");
	assert_int_equal(test_value(sql, PGTEST_ARGS(test_target[0])), 0);
	assert_int_equal(test_value(sql, PGTEST_ARGS(test_target[1])), 30 * 60);
	snprintf(sql, sizeof(sql), sql_day, "unknown_s + up_s + down_s + maintenance_s");
	assert_int_equal(test_value(sql, PGTEST_ARGS(test_target[1])), 86400);
	snprintf(sql, sizeof(sql), sql_day, "n");
	assert_int_equal(test_value(sql, PGTEST_ARGS(test_target[1])), 3 * MINUTES * PER_MINUTE);
}

static int64_t
test_partition_exists(int days_back)
{
	return TEST_VALUE("SELECT (to_regclass('results_' || to_char(current_date - $1::int, "
			  "'YYYYMMDD')) IS NOT NULL)::int",
	    days_back);
}

// Exactly the partitions before the cut go, whole; the rest and their rows
// stay; rollups older than theirs go.
static void
test_drop_partitions(void **state)
{
	int64_t rows;

	(void)state;
	assert_int_equal(test_value("SELECT vantage_ensure_partitions(current_date - 40, "
				    "current_date - 38)",
			     NULL, 0),
	    3);
	TEST_COMMAND("INSERT INTO results (started_at, agent_id, target_id, epoch, seq, "
		     "config_version, sched_delay_us, outcome, reason, trigger, agent_state, "
		     "http_status, dns_us, connect_us, tls_us, ttfb_us, total_us, bytes) "
		     "SELECT current_date - 40, id, $1, 3, 1, 1, 0, 1, 0, 0, 0, 200, 0, 0, 0, 0, "
		     "1000, 0 FROM agents WHERE region = 'r1'",
	    test_target[0]);
	assert_int_equal(test_value("SELECT vantage_ensure_partitions(current_date - 30, "
				    "current_date - 30)",
			     NULL, 0),
	    1);
	rows = test_value("SELECT count(*) FROM results WHERE started_at >= current_date - 30",
	    NULL, 0);
	assert_true(rows > 0);
	assert_int_equal(test_value("SELECT vantage_drop_partitions(current_date - 30)", NULL, 0),
	    3);
	for (int d = 38; d <= 40; d++)
		assert_int_equal(test_partition_exists(d), 0);
	assert_int_equal(test_partition_exists(30), 1);
	assert_int_equal(test_partition_exists(3), 1);
	assert_int_equal(test_partition_exists(0), 1);
	assert_int_equal(test_value("SELECT count(*) FROM results", NULL, 0), rows);
	assert_int_equal(test_value("SELECT vantage_drop_partitions(current_date - 30)", NULL, 0),
	    0);
	assert_int_equal(
	    test_value("SELECT (to_regclass('results_default') IS NOT NULL)::int", NULL, 0), 1);

	TEST_COMMAND("INSERT INTO rollup_minute VALUES ($1, 'r1', current_date - 500, 1, 1, 0, 0, "
		     "'{3}', '{1}')",
	    test_target[0]);
	TEST_COMMAND("INSERT INTO rollup_day VALUES ($1, current_date - 500, 0, 0, 86400, 0, NULL, "
		     "NULL, 0)",
	    test_target[0]);
	rows = test_value("SELECT (SELECT count(*) FROM rollup_minute) + (SELECT count(*) FROM "
			  "rollup_day)",
	    NULL, 0);
	assert_int_equal(test_value("SELECT vantage_drop_rollups(current_date - 400)", NULL, 0), 2);
	assert_int_equal(test_value("SELECT (SELECT count(*) FROM rollup_minute) + (SELECT "
				    "count(*) FROM rollup_day)",
			     NULL, 0),
	    rows - 2);
}

static bool
test_store_idle(const void *arg)
{
	return store_connected(arg) && store_idle(arg);
}

// rollup.c's first pass, queued by rollup_new: the results of the last
// minutes are rolled up, today's day rows written, a partition past
// retention.raw dropped and one inside it kept, with its rows.
static void
test_rollup_first_pass(void **state)
{
	struct agg_conf *conf = conftest_load("security: { insecure: true }\n"
					      "retention: { raw: 10d, rollup: 20d }\n");
	struct event_base *base = event_base_new();
	struct store *store = store_new(base, test_conninfo);
	struct rollup *rollup;
	int64_t kept;

	(void)state;
	test_value("SELECT vantage_ensure_partitions(current_date - 11, current_date - 9)", NULL,
	    0);
	TEST_COMMAND("INSERT INTO results (started_at, agent_id, target_id, epoch, seq, "
		     "config_version, sched_delay_us, outcome, reason, trigger, agent_state, "
		     "http_status, dns_us, connect_us, tls_us, ttfb_us, total_us, bytes) "
		     "SELECT t, a.id, $1, 4, row_number() OVER (), 1, 0, 1, 0, 0, 0, 200, 0, 0, "
		     "0, 0, 70000, 0 FROM agents a, (VALUES (now() - interval '2 min'), "
		     "(current_date - 9), (current_date - 11)) AS v(t)",
	    test_target[1]);
	kept = TEST_VALUE("SELECT count(*) FROM results WHERE started_at >= current_date - $1::int",
	    10);
	TEST_COMMAND("INSERT INTO rollup_day VALUES ($1, current_date - 21, 0, 0, 86400, 0, NULL, "
		     "NULL, 0)",
	    test_target[1]);
	rollup = rollup_new(base, store, conf);
	assert_true(pgtest_run_until(base, test_store_idle, store, 30000));
	assert_int_equal(test_partition_exists(11), 0);
	assert_int_equal(test_partition_exists(10), 1);
	assert_int_equal(test_partition_exists(9), 1);
	assert_int_equal(test_value("SELECT count(*) FROM results", NULL, 0), kept);
	assert_int_equal(TEST_VALUE("SELECT count(*) FROM rollup_day WHERE day < current_date - "
				    "$1::int",
			     20),
	    0);
	assert_int_equal(TEST_VALUE("SELECT sum(n) FROM rollup_minute WHERE target_id = $1 AND "
				    "minute >= now() - interval '10 min'",
			     test_target[1]),
	    3);
	// Today's row (yesterday's too, a minute after midnight).
	assert_true(TEST_VALUE("SELECT count(*) FROM rollup_day WHERE target_id = $1 AND day >= "
			       "current_date - 1 AND n > 0",
			test_target[1]) >= 1);
	rollup_free(rollup);
	store_free(store);
	event_base_free(base);
	agg_conf_free(conf);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bucket_formula_agrees),
		cmocka_unit_test(test_rollup_minutes),
		cmocka_unit_test(test_rollup_days),
		cmocka_unit_test(test_drop_partitions),
		cmocka_unit_test(test_rollup_first_pass),
	};
	const char *why = pgtest_cannot_run();

	if (why != NULL) {
		printf("SKIP: %s\n", why);
		return 77;
	}
	log_init("test_rollup", LOG_LEVEL_INFO);
	atexit(test_cleanup);
	signal(SIGINT, test_on_signal);
	signal(SIGTERM, test_on_signal);
	signal(SIGHUP, test_on_signal);
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, test_group_setup, test_group_teardown);
}
