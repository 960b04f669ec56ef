// SPDX-License-Identifier: Apache-2.0
//
// What the public status page says (DESIGN.md §8), computed from what the
// aggregator knows: a component's state in Statuspage's vocabulary, the
// page's banner and indicator, and uptime over days.  PURE: no I/O, no
// clock reads (times are parameters, µs), no allocation beyond the
// caller's struct buf for texts.  Texts are plain (not HTML): html.c
// escapes them like any other string.
//
// Component state, first rule that holds wins:
//   1. under_maintenance   inside a maintenance window, whatever the quorum
//                          says.  As on Statuspage, the window sets the
//                          component's state; an outage in it is still
//                          recorded (the incident opens, marked as in
//                          maintenance, its alerts muted but kept) and its
//                          time counts as maintenance, not downtime.
//   2. major_outage        the quorum says DOWN (an outage).
//   3. partial_outage      a regional incident is open or the quorum says
//                          DEGRADED: "partial outage: ap-south, eu-west"
//                          names the regions.  Known failures outrank
//                          missing data, so this holds even when too few
//                          regions vote for a verdict.
//   4. no_data             the quorum says UNKNOWN (monitoring blind): we
//                          cannot claim the component is up, slow or not.
//   5. degraded_performance  up, but a quorum of regions sees p95 latency
//                          above the target's degraded_latency.
//   6. operational
#ifndef VANTAGE_STATUS_CALC_H
#define VANTAGE_STATUS_CALC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "quorum.h"

// In order of severity for the banner (see status_calc_banner).
enum status_calc_state {
	STATUS_CALC_OPERATIONAL,
	STATUS_CALC_NO_DATA,
	STATUS_CALC_UNDER_MAINTENANCE,
	STATUS_CALC_DEGRADED_PERFORMANCE,
	STATUS_CALC_PARTIAL_OUTAGE,
	STATUS_CALC_MAJOR_OUTAGE,
};

// What is known of one component now.  Borrowed, not kept.
struct status_calc_input {
	enum quorum_state quorum;
	bool regional_open;         // a regional incident is open
	const char *const *regions; // the regions it names (DOWN regions)
	size_t n_regions;
	bool maintenance; // a maintenance window covering it is in progress
	bool slow;        // a quorum of regions sees p95 above degraded_latency
};

enum status_calc_state status_calc_component(const struct status_calc_input *in);
// "operational", "degraded_performance", "partial_outage", "major_outage",
// "under_maintenance" (Statuspage's component statuses) and "no_data".
const char *status_calc_state_name(enum status_calc_state s);
// Appends the component's state for people: "operational", "degraded
// performance", "partial outage: ap-south, eu-west" (the regions of the
// input, "partial outage" when it names none), "major outage", "under
// maintenance", "no data".
void status_calc_component_label(struct buf *b, const struct status_calc_input *in);

// The banner over all components, as Statuspage's top-level status: the
// worst state decides, and "all" against "some" decides between two
// banners for outages.  Indicator as in Statuspage's status.json.
//   every component major_outage           Major outage        critical
//   some major_outage, or every one
//     partial_outage                        Partial outage      major
//   some partial_outage                     Minor outage        minor
//   some degraded_performance               Degraded performance minor
//   some under_maintenance, rest fine       Under maintenance   maintenance
//   every component no_data                 No data             none
//   some no_data, rest operational          All reporting systems operational  none
//   all operational, or no component        All systems operational  none
// Statuspage documents none/minor/major/critical and its pages answer
// "maintenance" while maintenance is in progress; consumers that know only
// the four treat it as none.  No data has no Statuspage equivalent and
// claims no impact: none, with a banner that does not claim "all".
enum status_calc_banner {
	STATUS_CALC_ALL_OPERATIONAL,
	STATUS_CALC_REPORTING_OPERATIONAL,
	STATUS_CALC_BANNER_NO_DATA,
	STATUS_CALC_BANNER_MAINTENANCE,
	STATUS_CALC_BANNER_DEGRADED,
	STATUS_CALC_BANNER_MINOR_OUTAGE,
	STATUS_CALC_BANNER_PARTIAL_OUTAGE,
	STATUS_CALC_BANNER_MAJOR_OUTAGE,
};
enum status_calc_banner status_calc_banner(const enum status_calc_state *states, size_t n);
const char *status_calc_banner_text(enum status_calc_banner banner);
// "none", "minor", "major", "critical" or "maintenance".
const char *status_calc_banner_indicator(enum status_calc_banner banner);

// One day of a component, from the daily rollup: how long the quorum said
// UP, DOWN, UNKNOWN, and how long a maintenance window covered it (that
// time is maintenance whatever the quorum said: the rollup does not count
// it in the other three).  A duration outside 0 .. 24 h (a bad row) is
// cut to that range.
struct status_calc_day {
	int64_t day; // start of the UTC day, unix µs
	int64_t up_us, down_us, unknown_us, maintenance_us;
};

// Uptime = UP / (UP + DOWN).  Unknown and maintenance time are shown
// apart, counted in neither.  Without UP or DOWN time there is no uptime:
// "no data".
struct status_calc_uptime {
	int64_t up_us, down_us, unknown_us, maintenance_us;
	bool has_data;      // up_us + down_us > 0
	int64_t hundredths; // uptime in hundredths of a percent, rounded down
};
// Sums days (any number, any order) into out.
void status_calc_uptime(const struct status_calc_day *days, size_t n,
    struct status_calc_uptime *out);
// Appends "99.95 %": two decimals, rounded down, so any downtime shows at
// most "99.99 %" and "100.00 %" means none at all; "no data" without data.
void status_calc_uptime_text(struct buf *b, const struct status_calc_uptime *u);
// Minutes for labels: to the nearest minute, but at least 1 for any time
// above zero, so that a 20 s outage is never "0 min down".
int64_t status_calc_minutes(int64_t us);
// Appends "PREFIX: 99.95 % uptime, 1 min down, 12 min unknown" (", N min
// maintenance" added when there was some); without data "PREFIX: no data,
// ...".  prefix NULL: no prefix.
void status_calc_uptime_label(struct buf *b, const char *prefix,
    const struct status_calc_uptime *u);

// A day's cell on the bar, in order of severity.
//   no_data      no UP or DOWN time and no maintenance
//   maintenance  no UP or DOWN time, some maintenance
//   operational  no DOWN time
//   minor        DOWN time below 1 % of UP + DOWN (14 min of a full day)
//   major        DOWN time of 1 % or more
enum status_calc_day_state {
	STATUS_CALC_DAY_NO_DATA,
	STATUS_CALC_DAY_MAINTENANCE,
	STATUS_CALC_DAY_OPERATIONAL,
	STATUS_CALC_DAY_MINOR,
	STATUS_CALC_DAY_MAJOR,
};
enum status_calc_day_state status_calc_day_state(const struct status_calc_uptime *u);
// "nodata", "maintenance", "operational", "minor", "major" (CSS classes).
const char *status_calc_day_state_name(enum status_calc_day_state s);

#define STATUS_CALC_DAY_US (86400LL * 1000000LL)
// Lays the rollup rows (any order, days missing where nothing was
// recorded) out as n_days consecutive UTC days ending with the day that
// starts at last_day: out[n_days - 1] is last_day, out[0] the oldest.  A
// day without a row is all zero (no data); rows outside the window are
// ignored, two rows for one day are added up.
void status_calc_days_window(const struct status_calc_day *rows, size_t n_rows, int64_t last_day,
    struct status_calc_day *out, size_t n_days);

#endif
