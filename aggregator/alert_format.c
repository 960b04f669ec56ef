// SPDX-License-Identifier: Apache-2.0
//
// Channel payloads (see alert_format.h): the generic JSON document, Slack's
// {"text": ...} and PagerDuty Events v2 trigger/resolve, built from the
// neutral event JSON that incident.c writes to the outbox.  Pure: no I/O,
// no clock, no loop, no store -- text in, text out -- so that every format
// is checked field by field in tests/unit/test_alert_format.c.  It must
// never trust the event JSON: a malformed row yields NULL, and every
// string it copies into a payload is cut to the receiver's limits without
// splitting a UTF-8 sequence.
#include "alert_format.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "buf.h"
#include "xmalloc.h"

#define SLACK_TEXT_MAX 3000
#define PD_SUMMARY_MAX 1024 // Events API v2 limit

static bool
alert_format_is_recovery(const char *event)
{
	size_t len = strlen(event);

	return strcmp(event, "recovery") == 0 ||
	    (len > 9 && strcmp(event + len - 9, "_recovery") == 0);
}

static const char *
alert_format_label(const char *event)
{
	static const struct {
		const char *event, *label;
	} labels[] = {
		{ "outage", "OUTAGE" },
		{ "recovery", "RESOLVED outage" },
		{ "regional", "REGIONAL incident" },
		{ "regional_recovery", "RESOLVED regional incident" },
		{ "blind", "MONITORING BLIND" },
		{ "blind_recovery", "RESOLVED monitoring blind" },
		{ "flapping", "FLAPPING" },
	};

	for (size_t i = 0; i < sizeof(labels) / sizeof(labels[0]); i++)
		if (strcmp(event, labels[i].event) == 0)
			return labels[i].label;
	return event;
}

static const char *
alert_format_str(const json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));

	return s != NULL && s[0] != '\0' ? s : NULL;
}

// "eu-west, us-east" from a JSON array of names; false if it is empty.
static bool
alert_format_list(struct buf *b, const char *what, const json_t *list)
{
	size_t i, n = 0;
	json_t *item;

	json_array_foreach(list, i, item) {
		if (!json_is_string(item))
			continue;
		buf_printf(b, "%s%s", n++ == 0 ? what : ", ", json_string_value(item));
	}
	return n > 0;
}

// One line for people: what, which target, where, since when.  Plain text,
// emoji-free, the same for Slack and the PagerDuty summary.
static void
alert_format_summary(struct buf *b, const json_t *p, const char *event, int64_t incident_id)
{
	const char *target = alert_format_str(p, "target"), *group = alert_format_str(p, "group");
	const char *started = alert_format_str(p, "started_at"),
		   *detected = alert_format_str(p, "detected_at");
	const char *resolved = alert_format_str(p, "resolved_at"),
		   *summary = alert_format_str(p, "summary");
	bool down, up;

	buf_printf(b, "[%s] %s", alert_format_label(event),
	    target != NULL ? target : "(unknown target)");
	if (group != NULL)
		buf_printf(b, " (%s)", group);
	buf_puts(b, ":");
	down = alert_format_list(b, " down in ", json_object_get(p, "regions_down"));
	up = alert_format_list(b, down ? "; up in " : " up in ", json_object_get(p, "regions_up"));
	if (down || up)
		buf_puts(b, ";");
	if (started != NULL)
		buf_printf(b, " started %s", started);
	if (detected != NULL)
		buf_printf(b, "%s detected %s", started != NULL ? "," : "", detected);
	if (resolved != NULL)
		buf_printf(b, ", resolved %s", resolved);
	buf_printf(b, " (incident %" PRId64 ")", incident_id);
	if (summary != NULL)
		buf_printf(b, " - %s", summary);
}

// Slack renders &, < and > as markup; a line break would split the line.
static char *
alert_format_slack_text(const char *line, size_t max)
{
	struct buf b;
	char *out;

	buf_init(&b);
	for (const char *p = line; *p != '\0' && b.len < max; p++) {
		if (*p == '&')
			buf_puts(&b, "&amp;");
		else if (*p == '<')
			buf_puts(&b, "&lt;");
		else if (*p == '>')
			buf_puts(&b, "&gt;");
		else if ((unsigned char)*p < 0x20)
			buf_putc(&b, ' ');
		else
			buf_putc(&b, *p);
	}
	out = xstrdup(buf_cstr(&b));
	buf_free(&b);
	return out;
}

// Cuts at most max bytes without splitting a UTF-8 sequence (jansson
// refuses a string that does).
static void
alert_format_utf8_cut(char *s, size_t max)
{
	size_t len = strlen(s);

	if (len <= max)
		return;
	while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
		max--;
	s[max] = '\0';
}

static json_t *
alert_format_pagerduty(const struct alert_conf *ch, int64_t incident_id, const char *event,
    json_t *p)
{
	char dedup[64];
	char *summary;
	struct buf line;
	const char *ts = alert_format_str(p, "started_at");
	bool critical = strcmp(event, "outage") == 0 || strcmp(event, "flapping") == 0;
	json_t *doc, *payload;

	snprintf(dedup, sizeof(dedup), "vantage-incident-%" PRId64, incident_id);
	// Events API v2: a resolve needs only the key of what it resolves.
	if (alert_format_is_recovery(event))
		return json_pack("{s:s,s:s,s:s}", "routing_key",
		    ch->routing_key ? ch->routing_key : "", "event_action", "resolve", "dedup_key",
		    dedup);
	buf_init(&line);
	alert_format_summary(&line, p, event, incident_id);
	summary = xstrdup(buf_cstr(&line));
	buf_free(&line);
	alert_format_utf8_cut(summary, PD_SUMMARY_MAX);
	payload = json_pack("{s:s,s:s,s:s,s:O}", "summary", summary, "source", "vantage",
	    "severity", critical ? "critical" : "warning", "custom_details", p);
	free(summary);
	if (payload == NULL)
		return NULL;
	if (ts != NULL)
		json_object_set_new(payload, "timestamp", json_string(ts));
	doc = json_pack("{s:s,s:s,s:s,s:s,s:o}", "routing_key",
	    ch->routing_key ? ch->routing_key : "", "event_action", "trigger", "dedup_key", dedup,
	    "client", "vantage", "payload", payload);
	return doc;
}

char *
alert_format_body(const struct alert_conf *ch, int64_t incident_id, const char *event,
    const char *event_json)
{
	json_t *p, *doc = NULL;
	json_error_t jerr;
	struct buf line;
	char *text = NULL, *slack;

	p = json_loads(event_json, 0, &jerr);
	if (p == NULL || !json_is_object(p))
		goto out;
	if (ch->is_exec || ch->format == ALERT_FORMAT_JSON) {
		// The outbox row's event is authoritative.
		json_object_set_new(p, "event", json_string(event));
		json_object_set_new(p, "incident_id", json_integer(incident_id));
		json_object_set_new(p, "channel", json_string(ch->name));
		doc = json_incref(p);
	} else if (ch->format == ALERT_FORMAT_SLACK) {
		buf_init(&line);
		alert_format_summary(&line, p, event, incident_id);
		slack = alert_format_slack_text(buf_cstr(&line), SLACK_TEXT_MAX);
		alert_format_utf8_cut(slack, SLACK_TEXT_MAX);
		buf_free(&line);
		doc = json_pack("{s:s}", "text", slack);
		free(slack);
	} else {
		doc = alert_format_pagerduty(ch, incident_id, event, p);
	}
	if (doc != NULL)
		text = json_dumps(doc, JSON_COMPACT);
out:
	json_decref(doc);
	json_decref(p);
	return text;
}
