// SPDX-License-Identifier: Apache-2.0
//
// The status page's arithmetic (see status_calc.h): component state,
// banner and uptime.  Pure: inputs in, values or plain text out; it must
// never read a clock, touch the store or write HTML (html.c escapes what
// it writes).  Uptime is computed in integers so that the rounding rules
// ("never 100.00 % when there was downtime") hold exactly, not up to a
// floating-point error.
#include "status_calc.h"

#include <inttypes.h>

enum status_calc_state
status_calc_component(const struct status_calc_input *in)
{
	if (in->maintenance)
		return STATUS_CALC_UNDER_MAINTENANCE;
	if (in->quorum == QSTATE_DOWN)
		return STATUS_CALC_MAJOR_OUTAGE;
	if (in->regional_open || in->quorum == QSTATE_DEGRADED)
		return STATUS_CALC_PARTIAL_OUTAGE;
	if (in->quorum != QSTATE_UP)
		return STATUS_CALC_NO_DATA;
	if (in->slow)
		return STATUS_CALC_DEGRADED_PERFORMANCE;
	return STATUS_CALC_OPERATIONAL;
}

static const struct {
	const char *name, *label;
} status_calc_states[] = {
	[STATUS_CALC_OPERATIONAL] = { "operational", "operational" },
	[STATUS_CALC_NO_DATA] = { "no_data", "no data" },
	[STATUS_CALC_UNDER_MAINTENANCE] = { "under_maintenance", "under maintenance" },
	[STATUS_CALC_DEGRADED_PERFORMANCE] = { "degraded_performance", "degraded performance" },
	[STATUS_CALC_PARTIAL_OUTAGE] = { "partial_outage", "partial outage" },
	[STATUS_CALC_MAJOR_OUTAGE] = { "major_outage", "major outage" },
};

const char *
status_calc_state_name(enum status_calc_state s)
{
	if ((unsigned)s >= sizeof(status_calc_states) / sizeof(status_calc_states[0]))
		return "no_data";
	return status_calc_states[s].name;
}

void
status_calc_component_label(struct buf *b, const struct status_calc_input *in)
{
	enum status_calc_state s = status_calc_component(in);

	buf_puts(b, status_calc_states[s].label);
	if (s != STATUS_CALC_PARTIAL_OUTAGE)
		return;
	for (size_t i = 0; i < in->n_regions; i++) {
		buf_puts(b, i == 0 ? ": " : ", ");
		buf_puts(b, in->regions[i]);
	}
}

enum status_calc_banner
status_calc_banner(const enum status_calc_state *states, size_t n)
{
	size_t count[STATUS_CALC_MAJOR_OUTAGE + 1] = { 0 };

	for (size_t i = 0; i < n; i++)
		if ((unsigned)states[i] <= STATUS_CALC_MAJOR_OUTAGE)
			count[states[i]]++;
	if (n > 0 && count[STATUS_CALC_MAJOR_OUTAGE] == n)
		return STATUS_CALC_BANNER_MAJOR_OUTAGE;
	if (count[STATUS_CALC_MAJOR_OUTAGE] > 0 ||
	    (n > 0 && count[STATUS_CALC_PARTIAL_OUTAGE] == n))
		return STATUS_CALC_BANNER_PARTIAL_OUTAGE;
	if (count[STATUS_CALC_PARTIAL_OUTAGE] > 0)
		return STATUS_CALC_BANNER_MINOR_OUTAGE;
	if (count[STATUS_CALC_DEGRADED_PERFORMANCE] > 0)
		return STATUS_CALC_BANNER_DEGRADED;
	if (count[STATUS_CALC_UNDER_MAINTENANCE] > 0)
		return STATUS_CALC_BANNER_MAINTENANCE;
	if (n > 0 && count[STATUS_CALC_NO_DATA] == n)
		return STATUS_CALC_BANNER_NO_DATA;
	if (count[STATUS_CALC_NO_DATA] > 0)
		return STATUS_CALC_REPORTING_OPERATIONAL;
	return STATUS_CALC_ALL_OPERATIONAL;
}

static const struct {
	const char *text, *indicator;
} status_calc_banners[] = {
	[STATUS_CALC_ALL_OPERATIONAL] = { "All systems operational", "none" },
	[STATUS_CALC_REPORTING_OPERATIONAL] = { "All reporting systems operational", "none" },
	[STATUS_CALC_BANNER_NO_DATA] = { "No data", "none" },
	[STATUS_CALC_BANNER_MAINTENANCE] = { "Under maintenance", "maintenance" },
	[STATUS_CALC_BANNER_DEGRADED] = { "Degraded performance", "minor" },
	[STATUS_CALC_BANNER_MINOR_OUTAGE] = { "Minor outage", "minor" },
	[STATUS_CALC_BANNER_PARTIAL_OUTAGE] = { "Partial outage", "major" },
	[STATUS_CALC_BANNER_MAJOR_OUTAGE] = { "Major outage", "critical" },
};

static unsigned
status_calc_banner_index(enum status_calc_banner banner)
{
	if ((unsigned)banner >= sizeof(status_calc_banners) / sizeof(status_calc_banners[0]))
		return STATUS_CALC_BANNER_NO_DATA;
	return (unsigned)banner;
}

const char *
status_calc_banner_text(enum status_calc_banner banner)
{
	return status_calc_banners[status_calc_banner_index(banner)].text;
}

const char *
status_calc_banner_indicator(enum status_calc_banner banner)
{
	return status_calc_banners[status_calc_banner_index(banner)].indicator;
}

// A duration of a day's row as counted: a bad row's value outside
// 0 .. 24 h is cut to that range, which also keeps every sum far from
// overflowing.
static int64_t
status_calc_clamp(int64_t us)
{
	if (us < 0)
		return 0;
	return us < STATUS_CALC_DAY_US ? us : STATUS_CALC_DAY_US;
}

// up * 10000 / total without overflow: a total that large (more than 29
// years in µs) loses its sub-millisecond part first.
static int64_t
status_calc_hundredths(int64_t up, int64_t total)
{
	if (up > INT64_MAX / 10000) {
		up /= 1000;
		total /= 1000;
	}
	return up * 10000 / total;
}

void
status_calc_uptime(const struct status_calc_day *days, size_t n, struct status_calc_uptime *out)
{
	*out = (struct status_calc_uptime){ 0 };
	for (size_t i = 0; i < n; i++) {
		out->up_us += status_calc_clamp(days[i].up_us);
		out->down_us += status_calc_clamp(days[i].down_us);
		out->unknown_us += status_calc_clamp(days[i].unknown_us);
		out->maintenance_us += status_calc_clamp(days[i].maintenance_us);
	}
	out->has_data = out->up_us + out->down_us > 0;
	if (out->has_data)
		out->hundredths = status_calc_hundredths(out->up_us, out->up_us + out->down_us);
	// Integer division already rounds down; this keeps the promise even
	// if the scaling above rounded a sliver of downtime away.
	if (out->down_us > 0 && out->hundredths > 9999)
		out->hundredths = 9999;
}

void
status_calc_uptime_text(struct buf *b, const struct status_calc_uptime *u)
{
	if (!u->has_data) {
		buf_puts(b, "no data");
		return;
	}
	buf_printf(b, "%" PRId64 ".%02" PRId64 " %%", u->hundredths / 100, u->hundredths % 100);
}

int64_t
status_calc_minutes(int64_t us)
{
	const int64_t minute = 60 * 1000000LL;
	int64_t minutes;

	if (us <= 0)
		return 0;
	minutes = (us + minute / 2) / minute;
	return minutes > 0 ? minutes : 1;
}

void
status_calc_uptime_label(struct buf *b, const char *prefix, const struct status_calc_uptime *u)
{
	if (prefix != NULL) {
		buf_puts(b, prefix);
		buf_puts(b, ": ");
	}
	status_calc_uptime_text(b, u);
	if (u->has_data)
		buf_puts(b, " uptime");
	buf_printf(b, ", %" PRId64 " min down, %" PRId64 " min unknown",
	    status_calc_minutes(u->down_us), status_calc_minutes(u->unknown_us));
	if (u->maintenance_us > 0)
		buf_printf(b, ", %" PRId64 " min maintenance",
		    status_calc_minutes(u->maintenance_us));
}

enum status_calc_day_state
status_calc_day_state(const struct status_calc_uptime *u)
{
	if (!u->has_data)
		return u->maintenance_us > 0 ? STATUS_CALC_DAY_MAINTENANCE :
					       STATUS_CALC_DAY_NO_DATA;
	if (u->down_us == 0)
		return STATUS_CALC_DAY_OPERATIONAL;
	if (u->down_us * 100 < u->up_us + u->down_us)
		return STATUS_CALC_DAY_MINOR;
	return STATUS_CALC_DAY_MAJOR;
}

const char *
status_calc_day_state_name(enum status_calc_day_state s)
{
	static const char *const names[] = {
		[STATUS_CALC_DAY_NO_DATA] = "nodata",
		[STATUS_CALC_DAY_MAINTENANCE] = "maintenance",
		[STATUS_CALC_DAY_OPERATIONAL] = "operational",
		[STATUS_CALC_DAY_MINOR] = "minor",
		[STATUS_CALC_DAY_MAJOR] = "major",
	};

	if ((unsigned)s >= sizeof(names) / sizeof(names[0]))
		return "nodata";
	return names[s];
}

void
status_calc_days_window(const struct status_calc_day *rows, size_t n_rows, int64_t last_day,
    struct status_calc_day *out, size_t n_days)
{
	int64_t first_day;

	if (n_days == 0)
		return;
	first_day = last_day - (int64_t)(n_days - 1) * STATUS_CALC_DAY_US;
	for (size_t i = 0; i < n_days; i++)
		out[i] = (struct status_calc_day){ .day = first_day +
			    (int64_t)i * STATUS_CALC_DAY_US };
	for (size_t r = 0; r < n_rows; r++) {
		int64_t offset = rows[r].day - first_day;
		struct status_calc_day *d;

		if (offset < 0 || offset >= (int64_t)n_days * STATUS_CALC_DAY_US)
			continue;
		d = &out[offset / STATUS_CALC_DAY_US];
		d->up_us += status_calc_clamp(rows[r].up_us);
		d->down_us += status_calc_clamp(rows[r].down_us);
		d->unknown_us += status_calc_clamp(rows[r].unknown_us);
		d->maintenance_us += status_calc_clamp(rows[r].maintenance_us);
	}
}
