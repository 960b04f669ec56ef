// SPDX-License-Identifier: Apache-2.0
//
// Post-mortem drafts; see postmortem.h.  One constant statement gathers the
// whole document (so the draft is one consistent snapshot and one round
// trip), a second stores it; rendering in between is pure and knows nothing
// of the database.  Rendering must never let stored text (error messages,
// channel names, keys) change the Markdown's structure: every such string
// goes through postmortem_escape, and no line of the draft starts with one.
#include "postmortem.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <time.h>

#include "buf.h"
#include "log.h"
#include "wire.h"
#include "xmalloc.h"

#define US_PER_S 1000000LL
#define US_PER_DAY (86400LL * US_PER_S)

struct postmortem_job {
	struct store *store;
	char id[24];
};

// The incident and everything around it as one JSON document (the shape of
// postmortem.h).  Times are rendered AT TIME ZONE 'UTC' so the JSON carries
// UTC whatever the session's TimeZone.  Outcomes are proto values: 1 UP,
// 2 DOWN.  "before" is the hour before the first failure, UP results only
// (the normal latency); "during" is the incident window, every outcome
// (what users saw).  A published post-mortem yields no row at all.
static const char sql_gather[] =
    "WITH i AS ("
    " SELECT i.id, i.target_id, t.key, i.kind, i.started_at, i.detected_at, i.resolved_at,"
    " coalesce(i.resolved_at, now()) AS until, i.regions, i.flapping,"
    " coalesce(t.spec #>> '{http,url}',"
    " (t.spec #>> '{tcp,host}') || ':' || (t.spec #>> '{tcp,port}'),"
    " t.spec #>> '{dns,name}', t.spec #>> '{icmp,host}') AS url"
    " FROM incidents i JOIN targets t ON t.id = i.target_id"
    " WHERE i.id = $1 AND i.postmortem_state IS DISTINCT FROM 'published'),"
    " r AS (SELECT a.region, r.started_at, r.started_at >= i.started_at AS during,"
    " r.outcome, r.reason, r.http_status, r.total_us, r.error"
    " FROM i JOIN results r ON r.target_id = i.target_id"
    " AND r.started_at >= i.started_at - interval '1 hour' AND r.started_at <= i.until"
    " JOIN agents a ON a.id = r.agent_id),"
    " f AS (SELECT region, reason, http_status, count(*) AS n,"
    " (array_agg(error ORDER BY started_at DESC) FILTER (WHERE error <> ''))[1] AS error"
    " FROM r WHERE during AND outcome = 2 GROUP BY region, reason, http_status),"
    " l AS (SELECT region,"
    " percentile_cont(0.5) WITHIN GROUP (ORDER BY total_us)"
    " FILTER (WHERE NOT during AND outcome = 1) AS before_p50,"
    " percentile_cont(0.95) WITHIN GROUP (ORDER BY total_us)"
    " FILTER (WHERE NOT during AND outcome = 1) AS before_p95,"
    " count(*) FILTER (WHERE NOT during AND outcome = 1) AS before_n,"
    " percentile_cont(0.5) WITHIN GROUP (ORDER BY total_us) FILTER (WHERE during) AS during_p50,"
    " percentile_cont(0.95) WITHIN GROUP (ORDER BY total_us) FILTER (WHERE during) AS during_p95,"
    " count(*) FILTER (WHERE during) AS during_n,"
    " count(*) FILTER (WHERE during AND outcome = 2) AS during_down"
    " FROM r GROUP BY region)"
    " SELECT json_build_object("
    " 'incident', json_build_object('id', i.id, 'target', i.key, 'url', i.url, 'kind', i.kind,"
    " 'started_at', i.started_at AT TIME ZONE 'UTC', 'detected_at', i.detected_at AT TIME ZONE 'UTC',"
    " 'resolved_at', i.resolved_at AT TIME ZONE 'UTC', 'regions', i.regions, 'flapping', i.flapping),"
    " 'timeline', (SELECT coalesce(json_agg(json_build_object('at', e.at AT TIME ZONE 'UTC',"
    " 'kind', e.kind, 'region', e.region, 'message', e.message) ORDER BY e.at, e.id), '[]')"
    " FROM incident_events e WHERE e.incident_id = i.id),"
    " 'alerts', (SELECT coalesce(json_agg(json_build_object('channel', a.channel, 'event', a.event,"
    " 'created_at', a.created_at AT TIME ZONE 'UTC', 'sent_at', a.sent_at AT TIME ZONE 'UTC',"
    " 'attempts', a.attempts, 'last_error', a.last_error) ORDER BY a.created_at, a.id), '[]')"
    " FROM alert_outbox a WHERE a.incident_id = i.id),"
    " 'failures', (SELECT coalesce(json_agg(json_build_object('region', region, 'reason', reason,"
    " 'http_status', http_status, 'count', n, 'error', error)"
    " ORDER BY region, n DESC, reason, http_status), '[]') FROM f),"
    " 'latency', (SELECT coalesce(json_agg(json_build_object('region', region,"
    " 'before_p50_us', before_p50, 'before_p95_us', before_p95, 'before_n', before_n,"
    " 'during_p50_us', during_p50, 'during_p95_us', during_p95, 'during_n', during_n,"
    " 'during_down', during_down) ORDER BY region), '[]') FROM l),"
    " 'healthy', (SELECT coalesce(json_agg(region ORDER BY region), '[]') FROM l"
    " WHERE during_n > 0 AND during_down = 0))"
    " FROM i";

// Only an automatic draft is replaced: what people edited (through the
// API) or published stays as they wrote it.
static const char sql_save[] =
    "UPDATE incidents SET postmortem_md = $2, postmortem_state = 'draft'"
    " WHERE id = $1 AND (postmortem_state IS NULL OR postmortem_state = 'draft')"
    " AND postmortem_edited_at IS NULL";

// Backslash-escapes the characters that start inline Markdown constructs
// (emphasis, code, links, images, HTML, entities, strikethrough) and '|',
// which would split a table cell.  Line breaks and other control
// characters become spaces, so outside text can neither end a table row
// nor start a heading or a list.  CommonMark allows a backslash before any
// ASCII punctuation, so the escaped text reads back unchanged.
static void
postmortem_escape(struct buf *b, const char *text)
{
	static const char special[] = "\\`*_[]<>|!~&";

	if (text == NULL)
		return;
	for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++) {
		if (*p < 0x20 || *p == 0x7f) {
			buf_putc(b, ' ');
			continue;
		}
		if (strchr(special, *p) != NULL)
			buf_putc(b, '\\');
		buf_putc(b, (char)*p);
	}
}

static const char *
postmortem_str(const json_t *obj, const char *key)
{
	return json_string_value(json_object_get(obj, key));
}

static long long
postmortem_int(const json_t *obj, const char *key)
{
	return (long long)json_integer_value(json_object_get(obj, key));
}

// "YYYY-MM-DDTHH:MM:SS[.ffffff][Z]", how PostgreSQL renders a timestamp in
// JSON, to microseconds since the epoch.  Returns 0 or -1.
static int
postmortem_parse_time(const char *s, int64_t *out)
{
	static const char shape[] = "dddd-dd-ddTdd:dd:dd";
	int field[6] = { 0 };
	int64_t frac = 0, scale = 100000;
	struct tm tm = { 0 };
	size_t i, f = 0;
	time_t secs;

	if (s == NULL)
		return -1;
	for (i = 0; i < sizeof(shape) - 1; i++) {
		if (shape[i] == 'd') {
			if (s[i] < '0' || s[i] > '9')
				return -1;
			field[f] = field[f] * 10 + (s[i] - '0');
		} else if (s[i] != shape[i]) {
			return -1;
		} else {
			f++;
		}
	}
	s += i;
	if (*s == '.') {
		for (s++; *s >= '0' && *s <= '9'; s++) {
			frac += (*s - '0') * scale;
			scale /= 10;
		}
		if (scale == 100000)
			return -1; // a point without digits
	}
	if (*s == 'Z')
		s++;
	if (*s != '\0' || field[1] < 1 || field[1] > 12 || field[2] < 1 || field[2] > 31 ||
	    field[3] > 23 || field[4] > 59 || field[5] > 60)
		return -1;
	tm.tm_year = field[0] - 1900;
	tm.tm_mon = field[1] - 1;
	tm.tm_mday = field[2];
	tm.tm_hour = field[3];
	tm.tm_min = field[4];
	tm.tm_sec = field[5];
	secs = timegm(&tm);
	if (secs == (time_t)-1)
		return -1;
	*out = (int64_t)secs * US_PER_S + frac;
	return 0;
}

static int64_t
postmortem_time(const json_t *obj, const char *key)
{
	int64_t us;

	return postmortem_parse_time(postmortem_str(obj, key), &us) == 0 ? us : -1;
}

// us in UTC with a strftime format; "unknown" for a time that is not.
static void
postmortem_strftime(struct buf *b, int64_t us, const char *format)
{
	time_t secs = (time_t)(us / US_PER_S);
	struct tm tm;
	char text[32];

	if (us < 0 || gmtime_r(&secs, &tm) == NULL ||
	    strftime(text, sizeof(text), format, &tm) == 0) {
		buf_puts(b, "unknown");
		return;
	}
	buf_puts(b, text);
}

// "10:00:01.250", with the date in front when with_date.
static void
postmortem_clock(struct buf *b, int64_t us, bool with_date)
{
	postmortem_strftime(b, us, with_date ? "%Y-%m-%d %H:%M:%S" : "%H:%M:%S");
	if (us >= 0)
		buf_printf(b, ".%03d", (int)(us % US_PER_S / 1000));
}

// Timeline times show their date only when it differs from the first
// failure's, which the title already gives.
static void
postmortem_clock_near(struct buf *b, int64_t us, int64_t started)
{
	postmortem_clock(b, us, us < 0 || us / US_PER_DAY != started / US_PER_DAY);
}

static void
postmortem_seconds(struct buf *b, int64_t us)
{
	buf_printf(b, "%.1f s", (double)us / US_PER_S);
}

// "4 min 12 s", "2 h 5 min": how people say how long something lasted.
static void
postmortem_duration(struct buf *b, int64_t us)
{
	int64_t s = (us + US_PER_S / 2) / US_PER_S;

	if (us < 60 * US_PER_S)
		postmortem_seconds(b, us);
	else if (s < 3600)
		buf_printf(b, "%" PRId64 " min %" PRId64 " s", s / 60, s % 60);
	else
		buf_printf(b, "%" PRId64 " h %" PRId64 " min", s / 3600, s % 3600 / 60);
}

static void
postmortem_ms(struct buf *b, const json_t *obj, const char *key)
{
	const json_t *v = json_object_get(obj, key);

	if (json_is_number(v))
		buf_printf(b, " %.1f ms |", json_number_value(v) / 1000.0);
	else
		buf_puts(b, " n/a |");
}

static bool
postmortem_has(const json_t *names, const char *name)
{
	size_t i;
	const json_t *v;

	json_array_foreach(names, i, v) {
		if (json_is_string(v) && strcmp(json_string_value(v), name) == 0)
			return true;
	}
	return false;
}

static void
postmortem_add_name(json_t *names, const char *name)
{
	if (name != NULL && !postmortem_has(names, name))
		json_array_append_new(names, json_string(name));
}

// "a, b and c" of escaped names.
static void
postmortem_names(struct buf *b, const json_t *names)
{
	size_t i, n = json_array_size(names);
	const json_t *v;

	json_array_foreach(names, i, v) {
		if (i > 0)
			buf_puts(b, i + 1 == n ? " and " : ", ");
		postmortem_escape(b, json_string_value(v));
	}
}

static void
postmortem_summary(struct buf *b, const json_t *inc, const json_t *affected, size_t n_reporting,
    int64_t started, int64_t resolved)
{
	const char *url = postmortem_str(inc, "url");

	buf_puts(b, "**Summary:** ");
	postmortem_escape(b, postmortem_str(inc, "kind"));
	buf_puts(b, " of **");
	postmortem_escape(b, postmortem_str(inc, "target"));
	buf_puts(b, "**");
	if (url != NULL) {
		buf_puts(b, " (");
		postmortem_escape(b, url);
		buf_putc(b, ')');
	}
	if (resolved >= started) {
		buf_puts(b, " for ");
		postmortem_duration(b, resolved - started);
		buf_puts(b, ", from ");
		postmortem_clock(b, started, true);
		buf_puts(b, " to ");
		postmortem_clock_near(b, resolved, started);
		buf_puts(b, " UTC");
	} else {
		buf_puts(b, " from ");
		postmortem_clock(b, started, true);
		buf_puts(b, " UTC, not resolved when this draft was written");
	}
	buf_puts(b, "; regions affected: ");
	if (json_array_size(affected) == 0)
		buf_puts(b, "none recorded");
	else
		postmortem_names(b, affected);
	buf_printf(b, " (%zu of %zu regions reporting).", json_array_size(affected), n_reporting);
	if (json_is_true(json_object_get(inc, "flapping")))
		buf_puts(b, " The target was flapping, so its alerts were grouped.");
	buf_puts(b, "\n\n");
}

static void
postmortem_timeline(struct buf *b, const json_t *timeline, int64_t started)
{
	size_t i;
	const json_t *ev;

	buf_puts(b, "**Timeline**\n\n");
	if (json_array_size(timeline) == 0) {
		buf_puts(b, "No timeline events were recorded.\n\n");
		return;
	}
	buf_puts(b, "| Time (UTC) | Event |\n|---|---|\n");
	json_array_foreach(timeline, i, ev) {
		const char *message = postmortem_str(ev, "message");

		buf_puts(b, "| ");
		postmortem_clock_near(b, postmortem_time(ev, "at"), started);
		buf_puts(b, " | ");
		postmortem_escape(b,
		    message != NULL && *message != '\0' ? message : postmortem_str(ev, "kind"));
		buf_puts(b, " |\n");
	}
	buf_putc(b, '\n');
}

// One bullet per affected region: how often it failed, and why.
static void
postmortem_reasons(struct buf *b, const json_t *affected, const json_t *failures)
{
	size_t i, j;
	const json_t *name, *f;

	buf_puts(b, "**Regions affected and why**\n\n");
	if (json_array_size(affected) == 0) {
		buf_puts(b, "No region recorded a failing result in the incident window.\n\n");
		return;
	}
	json_array_foreach(affected, i, name) {
		const char *region = json_string_value(name);
		int listed = 0;

		buf_puts(b, "- **");
		postmortem_escape(b, region);
		buf_puts(b, "**:");
		json_array_foreach(failures, j, f) {
			const char *error = postmortem_str(f, "error");
			long long status = postmortem_int(f, "http_status");
			const char *fr = postmortem_str(f, "region");

			if (fr == NULL || strcmp(fr, region) != 0)
				continue;
			buf_printf(b, "%s %lld failing probes, %s", listed > 0 ? ";" : "",
			    postmortem_int(f, "count"),
			    wire_reason_name((int)postmortem_int(f, "reason")));
			listed++;
			if (status > 0)
				buf_printf(b, " %lld", status);
			if (error != NULL) {
				buf_puts(b, " (last error: \"");
				postmortem_escape(b, error);
				buf_puts(b, "\")");
			}
		}
		if (listed == 0)
			buf_puts(b,
			    " voted down, but no failing result is stored for the incident window");
		buf_puts(b, "\n");
	}
	buf_putc(b, '\n');
}

static void
postmortem_latency(struct buf *b, const json_t *latency)
{
	size_t i;
	const json_t *l;

	buf_puts(b,
	    "**Latency before vs during** (total probe time; before: successful probes in "
	    "the hour before the first failure; during: every probe until recovery)\n\n");
	if (json_array_size(latency) == 0) {
		buf_puts(b, "No results were stored for this target around the incident.\n\n");
		return;
	}
	buf_puts(b,
	    "| Region | p50 before | p95 before | p50 during | p95 during |\n"
	    "|---|---:|---:|---:|---:|\n");
	json_array_foreach(latency, i, l) {
		buf_puts(b, "| ");
		postmortem_escape(b, postmortem_str(l, "region"));
		buf_puts(b, " |");
		postmortem_ms(b, l, "before_p50_us");
		postmortem_ms(b, l, "before_p95_us");
		postmortem_ms(b, l, "during_p50_us");
		postmortem_ms(b, l, "during_p95_us");
		buf_putc(b, '\n');
	}
	buf_putc(b, '\n');
}

static void
postmortem_alerts(struct buf *b, const json_t *alerts, int64_t started, int64_t detected)
{
	size_t i;
	const json_t *a;

	if (json_array_size(alerts) == 0) {
		buf_puts(b,
		    "- **Alerts:** no alerts were sent for this incident (no channel is "
		    "subscribed to its events, or the target was silenced).\n");
		return;
	}
	buf_puts(b, "- **Alerts:**\n");
	json_array_foreach(alerts, i, a) {
		int64_t sent = postmortem_time(a, "sent_at");
		long long attempts = postmortem_int(a, "attempts");
		const char *error = postmortem_str(a, "last_error");

		buf_puts(b, "  - ");
		postmortem_escape(b, postmortem_str(a, "event"));
		buf_puts(b, " alert to **");
		postmortem_escape(b, postmortem_str(a, "channel"));
		buf_puts(b, "**: queued at ");
		postmortem_clock_near(b, postmortem_time(a, "created_at"), started);
		buf_puts(b, " UTC");
		if (sent >= 0) {
			buf_puts(b, ", delivered at ");
			postmortem_clock_near(b, sent, started);
			buf_puts(b, " UTC");
			if (sent >= detected) {
				buf_puts(b, " (");
				postmortem_seconds(b, sent - detected);
				buf_puts(b, " after detection)");
			}
		} else if (attempts > 0) {
			buf_printf(b, ", delivery failed after %lld attempt%s", attempts,
			    attempts == 1 ? "" : "s");
			if (error != NULL) {
				buf_puts(b, " (last error: \"");
				postmortem_escape(b, error);
				buf_puts(b, "\")");
			}
		} else {
			buf_puts(b, ", not yet delivered when this draft was written");
		}
		buf_puts(b, "\n");
	}
}

static void
postmortem_went_right(struct buf *b, const json_t *doc, int64_t started, int64_t detected,
    int64_t resolved)
{
	const json_t *healthy = json_object_get(doc, "healthy");

	buf_puts(b, "## What went right\n\n");
	buf_puts(b, "- **Time to detect:** ");
	postmortem_seconds(b, detected - started);
	buf_puts(b, ", from the first failing probe (");
	postmortem_clock_near(b, started, started);
	buf_puts(b, " UTC) to the quorum of regions (");
	postmortem_clock_near(b, detected, started);
	buf_puts(b, " UTC).\n");
	postmortem_alerts(b, json_object_get(doc, "alerts"), started, detected);
	buf_puts(b, "- **Regions that stayed healthy:** ");
	if (json_array_size(healthy) == 0) {
		buf_puts(b, "none; every region that reported saw the target fail.\n");
	} else {
		postmortem_names(b, healthy);
		buf_puts(b, " (results throughout the incident, none of them failing).\n");
	}
	buf_puts(b, "- **Time to resolve:** ");
	if (resolved >= started) {
		postmortem_seconds(b, resolved - started);
		if (resolved - started >= 60 * US_PER_S) {
			buf_puts(b, " (");
			postmortem_duration(b, resolved - started);
			buf_putc(b, ')');
		}
		buf_puts(b, ", from the first failing probe to the recovery quorum.\n\n");
	} else {
		buf_puts(b, "not resolved when this draft was written.\n\n");
	}
}

char *
postmortem_render(const json_t *doc)
{
	const json_t *inc = json_object_get(doc, "incident");
	const json_t *failures = json_object_get(doc, "failures");
	const json_t *latency = json_object_get(doc, "latency");
	const json_t *regions = json_object_get(inc, "regions");
	int64_t started = postmortem_time(inc, "started_at");
	int64_t detected = postmortem_time(inc, "detected_at");
	int64_t resolved = postmortem_time(inc, "resolved_at");
	json_t *affected, *reporting;
	const json_t *v;
	struct buf b;
	char *md;
	size_t i;

	if (!json_is_object(inc) || postmortem_str(inc, "target") == NULL || started < 0 ||
	    detected < 0)
		return NULL;
	// Affected: the regions whose votes opened the outage, and any other
	// that stored a failing result while it lasted.
	affected = json_array();
	reporting = json_array();
	json_array_foreach(regions, i, v) {
		postmortem_add_name(affected, json_string_value(v));
	}
	json_array_foreach(failures, i, v) {
		postmortem_add_name(affected, postmortem_str(v, "region"));
	}
	json_array_foreach(affected, i, v) {
		postmortem_add_name(reporting, json_string_value(v));
	}
	json_array_foreach(latency, i, v) {
		if (postmortem_int(v, "during_n") > 0)
			postmortem_add_name(reporting, postmortem_str(v, "region"));
	}

	buf_init(&b);
	buf_puts(&b, "# Post-mortem: ");
	postmortem_escape(&b, postmortem_str(inc, "target"));
	buf_puts(&b, " ");
	postmortem_escape(&b, postmortem_str(inc, "kind"));
	buf_puts(&b, " ");
	postmortem_strftime(&b, started, "%Y-%m-%d");
	buf_puts(&b, "\n\n");
	postmortem_summary(&b, inc, affected, json_array_size(reporting), started, resolved);

	buf_puts(&b, "## What happened\n\n");
	postmortem_timeline(&b, json_object_get(doc, "timeline"), started);
	postmortem_reasons(&b, affected, failures);
	postmortem_latency(&b, latency);

	postmortem_went_right(&b, doc, started, detected, resolved);

	buf_puts(&b,
	    "## What we will do to prevent it\n\n"
	    "_This section is for the team to fill in: one action per line, each with "
	    "an owner and a date.  Blameless: ask what in our systems and processes "
	    "let this happen, not who._\n\n"
	    "- [ ] \n");
	md = xstrdup(buf_cstr(&b));
	buf_free(&b);
	json_decref(affected);
	json_decref(reporting);
	return md;
}

static void
postmortem_on_saved(int status, const struct store_result *r, void *arg)
{
	struct postmortem_job *job = arg;

	if (status < 0)
		log_warnx("could not store the post-mortem draft of incident %s", job->id);
	else if (store_result_affected(r) == 0)
		log_info("incident %s: post-mortem draft not stored: it was published meanwhile",
		    job->id);
	else
		log_info("incident %s: post-mortem drafted", job->id);
	free(job);
}

static void
postmortem_on_gathered(int status, const struct store_result *r, void *arg)
{
	struct postmortem_job *job = arg;
	const char *text;
	json_error_t jerr;
	json_t *doc = NULL;
	char *md = NULL;

	if (status < 0) {
		log_warnx("could not gather the data for the post-mortem of incident %s", job->id);
		goto fail;
	}
	if (store_result_rows(r) != 1) {
		log_info("incident %s: no post-mortem drafted: the incident is gone or its "
			 "post-mortem is published",
		    job->id);
		goto fail;
	}
	text = store_result_value(r, 0, 0);
	if (text == NULL || (doc = json_loads(text, 0, &jerr)) == NULL) {
		log_warnx("post-mortem data of incident %s is not valid JSON: %s", job->id,
		    text == NULL ? "NULL" : jerr.text);
		goto fail;
	}
	md = postmortem_render(doc);
	if (md == NULL) {
		log_warnx("post-mortem data of incident %s lacks the incident's target or times",
		    job->id);
		goto fail;
	}
	const char *values[2] = { job->id, md };
	store_query(job->store, sql_save, 2, values, postmortem_on_saved, job);
	free(md);
	json_decref(doc);
	return;
fail:
	free(md);
	json_decref(doc);
	free(job);
}

void
postmortem_draft(struct store *store, int64_t incident_id)
{
	struct postmortem_job *job = xcalloc(1, sizeof(*job));
	const char *values[1] = { job->id };

	job->store = store;
	snprintf(job->id, sizeof(job->id), "%" PRId64, incident_id);
	store_query(store, sql_gather, 1, values, postmortem_on_gathered, job);
}
