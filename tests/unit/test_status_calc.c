// SPDX-License-Identifier: Apache-2.0
//
// Unit tests of aggregator/status_calc.c.  The component state is checked
// over every combination of quorum state, regional incident, maintenance
// and slowness against the precedence list of status_calc.h, written here
// as its own table; the banner over mixed sets of components, including
// the "all" against "some" cases Statuspage distinguishes; uptime with
// unknown and maintenance time kept apart, the rounding rules (99.999 %
// shows as 99.99 %, never 100.00 % with downtime), minute labels, no-data
// days and the 90-day window over sparse rollup rows.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "status_calc.h"

#define S 1000000LL // one second in µs
#define MIN (60 * S)
#define DAY STATUS_CALC_DAY_US
#define DAY_2026_12_01 (1796083200LL * S)

// The precedence list of status_calc.h, as a table: the first row whose
// condition holds gives the state.
static enum status_calc_state
oracle(enum quorum_state q, bool regional, bool maintenance, bool slow)
{
	const struct {
		bool holds;
		enum status_calc_state state;
	} rules[] = {
		{ maintenance, STATUS_CALC_UNDER_MAINTENANCE },
		{ q == QSTATE_DOWN, STATUS_CALC_MAJOR_OUTAGE },
		{ regional || q == QSTATE_DEGRADED, STATUS_CALC_PARTIAL_OUTAGE },
		{ q == QSTATE_UNKNOWN, STATUS_CALC_NO_DATA },
		{ slow, STATUS_CALC_DEGRADED_PERFORMANCE },
		{ true, STATUS_CALC_OPERATIONAL },
	};
	size_t i = 0;

	while (!rules[i].holds)
		i++;
	return rules[i].state;
}

static void
test_component_every_combination(void **state)
{
	const enum quorum_state qs[] = { QSTATE_UNKNOWN, QSTATE_UP, QSTATE_DEGRADED, QSTATE_DOWN };
	bool seen[STATUS_CALC_MAJOR_OUTAGE + 1] = { false };

	(void)state;
	for (size_t q = 0; q < 4; q++)
		for (int bits = 0; bits < 8; bits++) {
			struct status_calc_input in = { .quorum = qs[q],
				.regional_open = bits & 1,
				.maintenance = bits & 2,
				.slow = bits & 4 };
			enum status_calc_state want = oracle(in.quorum, in.regional_open,
			    in.maintenance, in.slow);

			if (status_calc_component(&in) != want)
				fail_msg(
				    "quorum %s regional %d maintenance %d slow %d: %s, want %s",
				    quorum_state_name(in.quorum), in.regional_open, in.maintenance,
				    in.slow, status_calc_state_name(status_calc_component(&in)),
				    status_calc_state_name(want));
			seen[want] = true;
		}
	for (size_t s = 0; s <= STATUS_CALC_MAJOR_OUTAGE; s++)
		assert_true(seen[s]);
}

static void
test_component_precedence_cases(void **state)
{
	(void)state;
	// Maintenance over an outage: shown as maintenance (the outage is
	// recorded elsewhere, as status_calc.h says).
	assert_int_equal(status_calc_component(&(struct status_calc_input){ .quorum = QSTATE_DOWN,
			     .maintenance = true }),
	    STATUS_CALC_UNDER_MAINTENANCE);
	assert_int_equal(
	    status_calc_component(
		&(struct status_calc_input){ .quorum = QSTATE_UNKNOWN, .maintenance = true }),
	    STATUS_CALC_UNDER_MAINTENANCE);
	// An outage over the regional incident that preceded it.
	assert_int_equal(status_calc_component(&(struct status_calc_input){ .quorum = QSTATE_DOWN,
			     .regional_open = true,
			     .slow = true }),
	    STATUS_CALC_MAJOR_OUTAGE);
	// A regional incident still open while the quorum is back UP, or while
	// too few regions vote: the known failure shows.
	assert_int_equal(status_calc_component(&(struct status_calc_input){ .quorum = QSTATE_UP,
			     .regional_open = true }),
	    STATUS_CALC_PARTIAL_OUTAGE);
	assert_int_equal(
	    status_calc_component(
		&(struct status_calc_input){ .quorum = QSTATE_UNKNOWN, .regional_open = true }),
	    STATUS_CALC_PARTIAL_OUTAGE);
	// Slow but blind: we cannot say it is up.
	assert_int_equal(status_calc_component(
			     &(struct status_calc_input){ .quorum = QSTATE_UNKNOWN, .slow = true }),
	    STATUS_CALC_NO_DATA);
	assert_int_equal(
	    status_calc_component(&(struct status_calc_input){ .quorum = QSTATE_UP, .slow = true }),
	    STATUS_CALC_DEGRADED_PERFORMANCE);
	assert_int_equal(status_calc_component(&(struct status_calc_input){ .quorum = QSTATE_UP }),
	    STATUS_CALC_OPERATIONAL);
}

static void
test_state_names_and_labels(void **state)
{
	const char *const one[] = { "ap-south" };
	const char *const two[] = { "ap-south", "eu-west" };
	const struct {
		struct status_calc_input in;
		const char *name, *label;
	} cases[] = {
		{ { .quorum = QSTATE_UP }, "operational", "operational" },
		{ { .quorum = QSTATE_UP, .slow = true }, "degraded_performance",
		    "degraded performance" },
		{ { .quorum = QSTATE_DEGRADED,
		      .regional_open = true,
		      .regions = one,
		      .n_regions = 1 },
		    "partial_outage", "partial outage: ap-south" },
		{ { .quorum = QSTATE_DEGRADED,
		      .regional_open = true,
		      .regions = two,
		      .n_regions = 2 },
		    "partial_outage", "partial outage: ap-south, eu-west" },
		{ { .quorum = QSTATE_DEGRADED }, "partial_outage", "partial outage" },
		{ { .quorum = QSTATE_DOWN, .regions = two, .n_regions = 2 }, "major_outage",
		    "major outage" },
		{ { .quorum = QSTATE_DEGRADED,
		      .regional_open = true,
		      .regions = one,
		      .n_regions = 1,
		      .maintenance = true },
		    "under_maintenance", "under maintenance" },
		{ { .quorum = QSTATE_UNKNOWN }, "no_data", "no data" },
	};
	struct buf b;

	(void)state;
	buf_init(&b);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		buf_reset(&b);
		status_calc_component_label(&b, &cases[i].in);
		assert_string_equal(buf_cstr(&b), cases[i].label);
		assert_string_equal(status_calc_state_name(status_calc_component(&cases[i].in)),
		    cases[i].name);
	}
	assert_string_equal(status_calc_state_name((enum status_calc_state)42), "no_data");
	buf_free(&b);
}

#define OP STATUS_CALC_OPERATIONAL
#define ND STATUS_CALC_NO_DATA
#define UM STATUS_CALC_UNDER_MAINTENANCE
#define DP STATUS_CALC_DEGRADED_PERFORMANCE
#define PO STATUS_CALC_PARTIAL_OUTAGE
#define MO STATUS_CALC_MAJOR_OUTAGE

static void
test_banner_mixed_sets(void **state)
{
	const struct {
		enum status_calc_state states[4];
		size_t n;
		const char *text, *indicator;
	} cases[] = {
		{ { OP }, 0, "All systems operational", "none" },
		{ { OP, OP, OP }, 3, "All systems operational", "none" },
		{ { MO }, 1, "Major outage", "critical" },
		{ { MO, MO, MO }, 3, "Major outage", "critical" },
		{ { MO, OP, OP }, 3, "Partial outage", "major" },
		{ { MO, PO, PO }, 3, "Partial outage", "major" },
		{ { MO, UM }, 2, "Partial outage", "major" },
		{ { PO, PO }, 2, "Partial outage", "major" },
		{ { PO }, 1, "Partial outage", "major" },
		{ { PO, OP, OP }, 3, "Minor outage", "minor" },
		{ { PO, DP, UM, ND }, 4, "Minor outage", "minor" },
		{ { DP, OP }, 2, "Degraded performance", "minor" },
		{ { DP, DP }, 2, "Degraded performance", "minor" },
		{ { DP, UM }, 2, "Degraded performance", "minor" },
		{ { UM }, 1, "Under maintenance", "maintenance" },
		{ { UM, OP, OP }, 3, "Under maintenance", "maintenance" },
		{ { UM, ND }, 2, "Under maintenance", "maintenance" },
		{ { ND, ND }, 2, "No data", "none" },
		{ { ND, OP, OP }, 3, "All reporting systems operational", "none" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum status_calc_banner banner = status_calc_banner(cases[i].states, cases[i].n);

		if (strcmp(status_calc_banner_text(banner), cases[i].text) != 0 ||
		    strcmp(status_calc_banner_indicator(banner), cases[i].indicator) != 0)
			fail_msg("case %zu: \"%s\" / %s, want \"%s\" / %s", i,
			    status_calc_banner_text(banner), status_calc_banner_indicator(banner),
			    cases[i].text, cases[i].indicator);
	}
}

// The uptime text of one day.
static const char *
uptime_text(struct buf *b, struct status_calc_day d)
{
	struct status_calc_uptime u;

	status_calc_uptime(&d, 1, &u);
	buf_reset(b);
	status_calc_uptime_text(b, &u);
	return buf_cstr(b);
}

static void
test_uptime_rounding(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b);
	assert_string_equal(uptime_text(&b, (struct status_calc_day){ .up_us = DAY }), "100.00 %");
	// 99.999 %: rounded down, never up to 100.00 %.
	assert_string_equal(
	    uptime_text(&b, (struct status_calc_day){ .up_us = 99999 * S, .down_us = 1 * S }),
	    "99.99 %");
	// One µs down in a day is still downtime.
	assert_string_equal(
	    uptime_text(&b, (struct status_calc_day){ .up_us = DAY - 1, .down_us = 1 }), "99.99 %");
	assert_string_equal(
	    uptime_text(&b, (struct status_calc_day){ .up_us = 9995 * S, .down_us = 5 * S }),
	    "99.95 %");
	// 99.956 % is 99.95, not 99.96: rounded down.
	assert_string_equal(
	    uptime_text(&b,
		(struct status_calc_day){ .up_us = 99956 * S / 10, .down_us = 44 * S / 10 }),
	    "99.95 %");
	assert_string_equal(uptime_text(&b, (struct status_calc_day){ .down_us = DAY }), "0.00 %");
	assert_string_equal(
	    uptime_text(&b, (struct status_calc_day){ .up_us = 1, .down_us = 3 * S }), "0.00 %");
	buf_free(&b);
}

static void
test_uptime_unknown_and_maintenance_apart(void **state)
{
	struct status_calc_day d = { .up_us = 3600 * S,
		.down_us = 3600 * S,
		.unknown_us = 20 * 3600 * S,
		.maintenance_us = 2 * 3600 * S };
	struct status_calc_uptime u;
	struct buf b;

	(void)state;
	buf_init(&b);
	status_calc_uptime(&d, 1, &u);
	assert_true(u.has_data);
	assert_int_equal(u.hundredths, 5000); // 1 h / (1 h + 1 h): the other 22 h count in neither
	assert_int_equal(u.unknown_us, 20 * 3600 * S);
	assert_int_equal(u.maintenance_us, 2 * 3600 * S);
	status_calc_uptime_label(&b, "2026-12-01", &u);
	assert_string_equal(buf_cstr(&b),
	    "2026-12-01: 50.00 % uptime, 60 min down, 1200 min unknown, 120 min maintenance");
	assert_int_equal(status_calc_day_state(&u), STATUS_CALC_DAY_MAJOR);

	// Unknown or maintenance alone: no uptime at all, "no data".
	d = (struct status_calc_day){ .unknown_us = DAY };
	status_calc_uptime(&d, 1, &u);
	assert_false(u.has_data);
	buf_reset(&b);
	status_calc_uptime_label(&b, NULL, &u);
	assert_string_equal(buf_cstr(&b), "no data, 0 min down, 1440 min unknown");
	assert_int_equal(status_calc_day_state(&u), STATUS_CALC_DAY_NO_DATA);
	d = (struct status_calc_day){ .maintenance_us = 4 * 3600 * S, .unknown_us = 20 * 3600 * S };
	status_calc_uptime(&d, 1, &u);
	assert_false(u.has_data);
	assert_int_equal(status_calc_day_state(&u), STATUS_CALC_DAY_MAINTENANCE);
	d = (struct status_calc_day){ 0 };
	status_calc_uptime(&d, 1, &u);
	assert_false(u.has_data);
	buf_reset(&b);
	status_calc_uptime_text(&b, &u);
	assert_string_equal(buf_cstr(&b), "no data");
	assert_int_equal(status_calc_day_state(&u), STATUS_CALC_DAY_NO_DATA);
	buf_free(&b);
}

static void
test_minutes_for_labels(void **state)
{
	(void)state;
	assert_int_equal(status_calc_minutes(-5 * MIN), 0);
	assert_int_equal(status_calc_minutes(0), 0);
	assert_int_equal(status_calc_minutes(1), 1); // any downtime is at least a minute
	assert_int_equal(status_calc_minutes(20 * S), 1);
	assert_int_equal(status_calc_minutes(89 * S), 1);
	assert_int_equal(status_calc_minutes(90 * S), 2);
	assert_int_equal(status_calc_minutes(150 * S), 3);
	assert_int_equal(status_calc_minutes(DAY), 1440);
}

static void
test_day_states(void **state)
{
	const struct {
		struct status_calc_day d;
		enum status_calc_day_state want;
		const char *name;
	} cases[] = {
		{ { .up_us = DAY }, STATUS_CALC_DAY_OPERATIONAL, "operational" },
		{ { .up_us = 60 * S, .unknown_us = DAY - 60 * S }, STATUS_CALC_DAY_OPERATIONAL,
		    "operational" },
		{ { .up_us = 991 * S, .down_us = 9 * S }, STATUS_CALC_DAY_MINOR, "minor" }, // 0.9 %
		{ { .up_us = 990 * S, .down_us = 10 * S }, STATUS_CALC_DAY_MAJOR, "major" }, // 1 %
		{ { .down_us = 60 * S }, STATUS_CALC_DAY_MAJOR, "major" },
		{ { .maintenance_us = DAY }, STATUS_CALC_DAY_MAINTENANCE, "maintenance" },
		{ { .unknown_us = DAY }, STATUS_CALC_DAY_NO_DATA, "nodata" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct status_calc_uptime u;

		status_calc_uptime(&cases[i].d, 1, &u);
		assert_int_equal(status_calc_day_state(&u), cases[i].want);
		assert_string_equal(status_calc_day_state_name(status_calc_day_state(&u)),
		    cases[i].name);
	}
}

static void
test_ninety_days_from_sparse_rows(void **state)
{
	const int64_t last = DAY_2026_12_01 + 89 * DAY, first = DAY_2026_12_01;
	const struct status_calc_day rows[] = {
		{ last, .up_us = DAY - 10 * MIN, .down_us = 10 * MIN },
		{ first - DAY, .down_us = DAY }, // before the window
		{ last + DAY, .down_us = DAY },  // after it
		{ first, .up_us = DAY / 2, .unknown_us = DAY / 2 },
		{ first + 30 * DAY, .up_us = 3600 * S }, // two rows for one day
		{ first + 30 * DAY + 3600 * S, .up_us = 3600 * S, .maintenance_us = 3600 * S },
		{ first + 31 * DAY, .up_us = -5 * S, .down_us = INT64_MAX }, // a bad row
	};
	struct status_calc_day days[90];
	struct status_calc_uptime u;
	struct buf b;

	(void)state;
	buf_init(&b);
	status_calc_days_window(rows, sizeof(rows) / sizeof(rows[0]), last, days, 90);
	for (size_t i = 0; i < 90; i++)
		assert_int_equal(days[i].day, first + (int64_t)i * DAY);
	assert_int_equal(days[0].up_us, DAY / 2);
	assert_int_equal(days[0].unknown_us, DAY / 2);
	assert_int_equal(days[30].up_us, 2 * 3600 * S);
	assert_int_equal(days[30].maintenance_us, 3600 * S);
	assert_int_equal(days[89].down_us, 10 * MIN);
	assert_int_equal(days[31].up_us, 0);
	assert_int_equal(days[31].down_us, DAY); // cut to one day
	for (size_t i = 1; i < 89; i++) {
		if (i == 30 || i == 31)
			continue;
		status_calc_uptime(&days[i], 1, &u);
		assert_false(u.has_data);
	}

	// Over the 90 days: up 12 h + 2 h + 23 h 50 min, down 24 h 10 min.
	status_calc_uptime(days, 90, &u);
	assert_true(u.has_data);
	assert_int_equal(u.up_us, 12 * 3600 * S + 2 * 3600 * S + DAY - 10 * MIN);
	assert_int_equal(u.down_us, DAY + 10 * MIN);
	status_calc_uptime_label(&b, "last 90 days", &u);
	// 136200 s / 223200 s = 61.02 %
	assert_string_equal(buf_cstr(&b),
	    "last 90 days: 61.02 % uptime, 1450 min down, 720 min unknown, 60 min maintenance");
	buf_free(&b);

	// An empty window writes nothing.
	status_calc_days_window(rows, 1, last, days, 0);
}

static void
test_long_range_does_not_overflow(void **state)
{
	static struct status_calc_day days[20000];
	struct status_calc_uptime u;

	(void)state;
	// 55 years in µs times 10000 would overflow: the sums are scaled down,
	// and a 1 µs outage that the scaling loses is still no 100.00 %.
	for (size_t i = 0; i < 20000; i++)
		days[i] = (struct status_calc_day){ .up_us = DAY, .down_us = i == 0 ? 1 : 0 };
	status_calc_uptime(days, 20000, &u);
	assert_int_equal(u.hundredths, 9999);
	days[0].down_us = DAY;
	status_calc_uptime(days, 20000, &u);
	assert_int_equal(u.hundredths, 9999); // 20000 / 20001 days = 99.995 %
	days[0].down_us = 0;
	status_calc_uptime(days, 20000, &u);
	assert_int_equal(u.hundredths, 10000);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_component_every_combination),
		cmocka_unit_test(test_component_precedence_cases),
		cmocka_unit_test(test_state_names_and_labels),
		cmocka_unit_test(test_banner_mixed_sets),
		cmocka_unit_test(test_uptime_rounding),
		cmocka_unit_test(test_uptime_unknown_and_maintenance_apart),
		cmocka_unit_test(test_minutes_for_labels),
		cmocka_unit_test(test_day_states),
		cmocka_unit_test(test_ninety_days_from_sparse_rows),
		cmocka_unit_test(test_long_range_does_not_overflow),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
