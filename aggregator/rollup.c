// SPDX-License-Identifier: Apache-2.0
//
// The rollup and retention passes (rollup.h).  All the work is SQL in the
// database (vantage_rollup_minutes, vantage_rollup_days,
// vantage_drop_partitions, vantage_drop_rollups); this file decides when
// and over what range, with the server's clock out of it: ranges are the
// aggregator's wall clock, sent as parameters.  At most one pass of each
// kind is in the store's queue at a time, so a database outage queues no
// backlog of passes; the minutes that a failed or skipped pass should
// have covered are remembered and covered by the next one (at most a day
// back).  The long re-roll of the last day goes as one-hour statements so
// that no single statement holds the store's queue (and ingest) for long.
#include "rollup.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "clock.h"
#include "log.h"
#include "xmalloc.h"

#define ROLLUP_TICK_S 60
#define ROLLUP_HOURLY_TICKS 60
#define US_MINUTE (60 * INT64_C(1000000))
#define US_HOUR (60 * US_MINUTE)
#define US_DAY (24 * US_HOUR)
// Late results within this long are rolled up by the minute pass; later
// ones by the hourly re-roll of the last day.
#define ROLLUP_LOOKBACK_US (5 * US_MINUTE)
#define ROLLUP_REROLL_US US_DAY
#define MS_DAY (86400 * INT64_C(1000))

struct rollup {
	struct store *store;
	struct event *timer;
	uint64_t retention_raw_ms;
	uint64_t retention_rollup_ms;
	unsigned ticks;
	// Start of the minutes no pass has covered yet, or 0.
	int64_t owed_from;
	// The range of the minute pass in the store's queue (0: none).
	int64_t pass_from;
	// Statements of the hourly pass still in the store's queue.
	int hourly_pending;
};

static const char sql_minutes[] = "SELECT vantage_rollup_minutes($1::timestamptz, $2::timestamptz)";
static const char sql_days[] =
    "SELECT vantage_rollup_days(($1::timestamptz AT TIME ZONE 'UTC')::date, "
    "($2::timestamptz AT TIME ZONE 'UTC')::date)";
static const char sql_drop_partitions[] =
    "SELECT vantage_drop_partitions(($1::timestamptz AT TIME ZONE 'UTC')::date - $2::integer)";
static const char sql_drop_rollups[] =
    "SELECT vantage_drop_rollups(($1::timestamptz AT TIME ZONE 'UTC')::date - $2::integer)";

static int64_t
rollup_min(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

// Queues one statement with two timestamps, or a timestamp and a count.
static void
rollup_send(struct rollup *r, const char *sql, int64_t at_us, const char *second, store_query_cb cb)
{
	char at[32];
	const char *values[2] = { at, second };

	clock_iso8601(at_us, at, sizeof(at));
	store_query(r->store, sql, 2, values, cb, r);
}

static void
rollup_send_range(struct rollup *r, const char *sql, int64_t from_us, int64_t to_us,
    store_query_cb cb)
{
	char to[32];

	clock_iso8601(to_us, to, sizeof(to));
	rollup_send(r, sql, from_us, to, cb);
}

static void
rollup_on_minutes(int status, const struct store_result *res, void *arg)
{
	struct rollup *r = arg;

	if (status < 0) {
		log_warnx("could not roll up the results of the last minutes; retrying in a "
			  "minute");
		r->owed_from = r->owed_from != 0 ? rollup_min(r->owed_from, r->pass_from) :
						   r->pass_from;
	} else if (r->owed_from != 0 && r->pass_from <= r->owed_from) {
		r->owed_from = 0;
	}
	r->pass_from = 0;
}

static void
rollup_on_days(int status, const struct store_result *res, void *arg)
{
	if (status < 0)
		log_warnx("could not roll up the day rows of the last minutes; retrying in a "
			  "minute");
}

static void
rollup_on_hourly(int status, const struct store_result *res, void *arg)
{
	struct rollup *r = arg;

	r->hourly_pending--;
	if (status < 0)
		log_warnx("could not re-roll the results of the last day; retrying in an hour");
}

static void
rollup_on_drop_partitions(int status, const struct store_result *res, void *arg)
{
	struct rollup *r = arg;
	const char *dropped = status < 0 ? NULL : store_result_value(res, 0, 0);

	r->hourly_pending--;
	if (status < 0)
		log_warnx("could not drop the results partitions older than \"retention.raw\"; "
			  "retrying in an hour");
	else if (dropped != NULL && dropped[0] != '0')
		log_info("dropped %s results partitions older than %llu days (retention.raw)",
		    dropped, (unsigned long long)(r->retention_raw_ms / MS_DAY));
}

static void
rollup_on_drop_rollups(int status, const struct store_result *res, void *arg)
{
	struct rollup *r = arg;
	const char *deleted = status < 0 ? NULL : store_result_value(res, 0, 0);

	r->hourly_pending--;
	if (status < 0)
		log_warnx("could not delete the rollups older than \"retention.rollup\"; "
			  "retrying in an hour");
	else if (deleted != NULL && deleted[0] != '0')
		log_info("deleted %s rollup rows older than %llu days (retention.rollup)", deleted,
		    (unsigned long long)(r->retention_rollup_ms / MS_DAY));
}

// The last few minutes, and whatever a failed pass left owed.
static void
rollup_minute_pass(struct rollup *r, int64_t now)
{
	int64_t from = now - ROLLUP_LOOKBACK_US;

	if (r->owed_from != 0)
		from = rollup_min(from, r->owed_from);
	if (from < now - ROLLUP_REROLL_US)
		from = now - ROLLUP_REROLL_US;
	if (r->pass_from != 0) {
		// The previous pass still waits for the database.
		r->owed_from = r->owed_from != 0 ? rollup_min(r->owed_from, from) : from;
		return;
	}
	r->pass_from = from;
	rollup_send_range(r, sql_minutes, from, now, rollup_on_minutes);
	// The day rows of every day the minutes touched.
	rollup_send_range(r, sql_days, from, now, rollup_on_days);
}

// The last day again, an hour per statement, then retention.
static bool
rollup_hourly_pass(struct rollup *r, int64_t now)
{
	char days[24];

	if (r->hourly_pending > 0)
		return false;
	for (int64_t from = now - ROLLUP_REROLL_US; from < now; from += US_HOUR) {
		rollup_send_range(r, sql_minutes, from, rollup_min(from + US_HOUR, now),
		    rollup_on_hourly);
		r->hourly_pending++;
	}
	rollup_send_range(r, sql_days, now - ROLLUP_REROLL_US, now, rollup_on_hourly);
	snprintf(days, sizeof(days), "%llu", (unsigned long long)(r->retention_raw_ms / MS_DAY));
	rollup_send(r, sql_drop_partitions, now, days, rollup_on_drop_partitions);
	snprintf(days, sizeof(days), "%llu", (unsigned long long)(r->retention_rollup_ms / MS_DAY));
	rollup_send(r, sql_drop_rollups, now, days, rollup_on_drop_rollups);
	r->hourly_pending += 3;
	return true;
}

static void
rollup_tick(struct rollup *r)
{
	int64_t now = clock_wall_us();

	// The hourly pass covers the last minutes too; when the previous one
	// is still queued, the minute pass runs (or is owed) as usual.
	if (r->ticks++ % ROLLUP_HOURLY_TICKS != 0 || !rollup_hourly_pass(r, now))
		rollup_minute_pass(r, now);
}

static void
rollup_on_timer(evutil_socket_t fd, short what, void *arg)
{
	rollup_tick(arg);
}

struct rollup *
rollup_new(struct event_base *base, struct store *store, const struct agg_conf *conf)
{
	struct rollup *r = xcalloc(1, sizeof(*r));
	struct timeval tick = { ROLLUP_TICK_S, 0 };

	r->store = store;
	rollup_reconfigure(r, conf);
	r->timer = event_new(base, -1, EV_PERSIST, rollup_on_timer, r);
	if (r->timer == NULL)
		fatalx("could not create the rollup timer");
	event_add(r->timer, &tick);
	rollup_tick(r);
	return r;
}

void
rollup_reconfigure(struct rollup *r, const struct agg_conf *conf)
{
	r->retention_raw_ms = conf->retention_raw_ms;
	r->retention_rollup_ms = conf->retention_rollup_ms;
}

void
rollup_free(struct rollup *r)
{
	if (r == NULL)
		return;
	event_free(r->timer);
	free(r);
}
