// SPDX-License-Identifier: Apache-2.0
//
// Unit tests for aggregator/alert_format: what each channel format puts on
// the wire, parsed back with jansson and checked field by field, because a
// receiver that ignores a malformed alert is a silent outage of the pager.
// Pure functions: no loop, no database, no clock.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "alert_format.h"
#include "xmalloc.h"

static const char payload[] =
    "{\"event\":\"outage\",\"target\":\"api\",\"group\":\"Public API\","
    "\"url\":\"https://api.example.com/health\",\"kind\":\"outage\",\"state\":\"open\","
    "\"started_at\":\"2026-11-25T10:00:00.000000Z\",\"detected_at\":\"2026-11-25T10:00:03.000000Z\","
    "\"resolved_at\":null,\"regions_down\":[\"eu-west\",\"us-east\"],\"regions_up\":[\"ap-south\"],"
    "\"regions_abstaining\":[],\"reasons\":{\"eu-west\":\"503 http_status\"},"
    "\"summary\":\"api is down in 2 of 3 regions (eu-west: 503 <b>&</b>)\"}";

static struct alert_conf
channel(const char *name, enum alert_format format)
{
	struct alert_conf ch = { 0 };

	ch.name = (char *)name;
	ch.url = "http://127.0.0.1:9/";
	ch.format = format;
	ch.routing_key = format == ALERT_FORMAT_PAGERDUTY ? "R0UT1NG" : NULL;
	ch.events = ALERT_ON_OUTAGE | ALERT_ON_RECOVERY;
	ch.timeout_ms = 10000;
	return ch;
}

static json_t *
format(const struct alert_conf *ch, int64_t incident, const char *event, const char *json)
{
	char *text = alert_format_body(ch, incident, event, json);
	json_error_t jerr;
	json_t *doc;

	assert_non_null(text);
	doc = json_loads(text, 0, &jerr);
	if (doc == NULL)
		fail_msg("not JSON: %s: %s", jerr.text, text);
	free(text);
	return doc;
}

static const char *
str(const json_t *obj, const char *path)
{
	const char *s = json_string_value(json_object_get(obj, path));

	if (s == NULL)
		fail_msg("no string \"%s\"", path);
	return s;
}

static void
test_format_json(void **state)
{
	struct alert_conf ch = channel("hook", ALERT_FORMAT_JSON);
	json_t *doc = format(&ch, 42, "outage", payload);

	(void)state;
	assert_int_equal(json_integer_value(json_object_get(doc, "incident_id")), 42);
	assert_string_equal(str(doc, "channel"), "hook");
	assert_string_equal(str(doc, "event"), "outage");
	assert_string_equal(str(doc, "target"), "api");
	assert_string_equal(str(doc, "started_at"), "2026-11-25T10:00:00.000000Z");
	assert_int_equal(json_array_size(json_object_get(doc, "regions_down")), 2);
	assert_true(json_is_null(json_object_get(doc, "resolved_at")));
	json_decref(doc);

	// The outbox row's event wins over the payload's, and exec channels
	// get the same JSON whatever their format field says.
	ch.is_exec = true;
	ch.format = ALERT_FORMAT_SLACK;
	doc = format(&ch, 7, "flapping", payload);
	assert_string_equal(str(doc, "event"), "flapping");
	assert_int_equal(json_integer_value(json_object_get(doc, "incident_id")), 7);
	json_decref(doc);
}

static void
test_format_slack(void **state)
{
	struct alert_conf ch = channel("slack", ALERT_FORMAT_SLACK);
	json_t *doc = format(&ch, 42, "outage", payload);
	const char *text = str(doc, "text");

	(void)state;
	assert_int_equal(json_object_size(doc), 1);
	assert_non_null(strstr(text, "OUTAGE"));
	assert_non_null(strstr(text, "api"));
	assert_non_null(strstr(text, "eu-west, us-east"));
	assert_non_null(strstr(text, "ap-south"));
	assert_non_null(strstr(text, "2026-11-25T10:00:00"));
	assert_non_null(strstr(text, "incident 42"));
	// Slack markup characters are escaped, and it stays one line.
	assert_non_null(strstr(text, "&lt;b&gt;&amp;&lt;/b&gt;"));
	assert_null(strchr(text, '<'));
	assert_null(strchr(text, '\n'));
	json_decref(doc);

	doc = format(&ch, 42, "recovery", "{\"target\":\"api\",\"regions_up\":[\"eu-west\"]}");
	text = str(doc, "text");
	assert_non_null(strstr(text, "RESOLVED"));
	assert_non_null(strstr(text, "up in eu-west"));
	json_decref(doc);
}

static void
test_format_pagerduty(void **state)
{
	struct alert_conf ch = channel("pd", ALERT_FORMAT_PAGERDUTY);
	json_t *doc = format(&ch, 42, "outage", payload), *p;

	(void)state;
	assert_string_equal(str(doc, "routing_key"), "R0UT1NG");
	assert_string_equal(str(doc, "event_action"), "trigger");
	assert_string_equal(str(doc, "dedup_key"), "vantage-incident-42");
	p = json_object_get(doc, "payload");
	assert_non_null(p);
	assert_string_equal(str(p, "source"), "vantage");
	assert_string_equal(str(p, "severity"), "critical");
	assert_string_equal(str(p, "timestamp"), "2026-11-25T10:00:00.000000Z");
	assert_non_null(strstr(str(p, "summary"), "api"));
	assert_true(strlen(str(p, "summary")) <= 1024);
	assert_string_equal(str(json_object_get(p, "custom_details"), "target"), "api");
	json_decref(doc);

	doc = format(&ch, 42, "regional", payload);
	assert_string_equal(str(json_object_get(doc, "payload"), "severity"), "warning");
	json_decref(doc);
	doc = format(&ch, 42, "flapping", payload);
	assert_string_equal(str(json_object_get(doc, "payload"), "severity"), "critical");
	json_decref(doc);

	// Resolves carry the same key as their trigger, and nothing else.
	static const char *const resolves[] = { "recovery", "regional_recovery", "blind_recovery" };
	for (size_t i = 0; i < 3; i++) {
		doc = format(&ch, 42, resolves[i], payload);
		assert_string_equal(str(doc, "event_action"), "resolve");
		assert_string_equal(str(doc, "dedup_key"), "vantage-incident-42");
		assert_string_equal(str(doc, "routing_key"), "R0UT1NG");
		assert_null(json_object_get(doc, "payload"));
		json_decref(doc);
	}
}

static void
test_format_bad_payload(void **state)
{
	struct alert_conf ch = channel("hook", ALERT_FORMAT_JSON);

	(void)state;
	assert_null(alert_format_body(&ch, 1, "outage", "[1,2]"));
	assert_null(alert_format_body(&ch, 1, "outage", "{\"a\":"));
	assert_null(alert_format_body(&ch, 1, "outage", ""));
}

// The whole line, so that a change of wording is a decision, not an accident.
static void
test_format_slack_line(void **state)
{
	struct alert_conf ch = channel("slack", ALERT_FORMAT_SLACK);
	json_t *doc = format(&ch, 42, "outage", payload);

	(void)state;
	assert_string_equal(str(doc, "text"),
	    "[OUTAGE] api (Public API): down in eu-west, us-east; up in ap-south; started "
	    "2026-11-25T10:00:00.000000Z, detected 2026-11-25T10:00:03.000000Z (incident 42) - "
	    "api is down in 2 of 3 regions (eu-west: 503 &lt;b&gt;&amp;&lt;/b&gt;)");
	json_decref(doc);

	// Fields missing or of the wrong type are left out, not printed as junk.
	doc = format(&ch, 5, "outage",
	    "{\"target\":42,\"regions_down\":[1,null],\"started_at\":\"\",\"summary\":null}");
	assert_string_equal(str(doc, "text"), "[OUTAGE] (unknown target): (incident 5)");
	json_decref(doc);

	// A resolved incident says when; an event without a label keeps its name.
	doc = format(&ch, 6, "regional_recovery",
	    "{\"target\":\"db\",\"resolved_at\":\"2026-11-25T11:00:00Z\"}");
	assert_string_equal(str(doc, "text"),
	    "[RESOLVED regional incident] db:, resolved 2026-11-25T11:00:00Z (incident 6)");
	json_decref(doc);
	doc = format(&ch, 7, "custom", "{\"target\":\"db\"}");
	assert_string_equal(str(doc, "text"), "[custom] db: (incident 7)");
	json_decref(doc);
}

// A line break in outside text would split Slack's one line; a very long
// summary is cut, as Slack truncates messages past its limit anyway.
static void
test_format_slack_limits(void **state)
{
	struct alert_conf ch = channel("slack", ALERT_FORMAT_SLACK);
	size_t big = 10000;
	char *summary = xmalloc(big + 1), *json = xmalloc(big + 64);
	json_t *doc;
	const char *text;

	(void)state;
	doc = format(&ch, 1, "outage", "{\"target\":\"a\\nb\",\"summary\":\"x\\ty\"}");
	text = str(doc, "text");
	assert_non_null(strstr(text, "a b"));
	assert_non_null(strstr(text, "x y"));
	assert_null(strchr(text, '\n'));
	json_decref(doc);

	memset(summary, 'z', big);
	summary[big] = '\0';
	snprintf(json, big + 64, "{\"target\":\"api\",\"summary\":\"%s\"}", summary);
	doc = format(&ch, 1, "outage", json);
	text = str(doc, "text");
	assert_true(strlen(text) <= 3000);
	assert_true(strlen(text) >= 2900);
	json_decref(doc);
	free(summary);
	free(json);
}

// One incident, one PagerDuty alert: the key follows the incident, so a
// retried trigger deduplicates and the resolve closes exactly that alert.
static void
test_format_pagerduty_dedup(void **state)
{
	struct alert_conf ch = channel("pd", ALERT_FORMAT_PAGERDUTY);
	json_t *a = format(&ch, 1, "outage", payload), *b = format(&ch, 2, "outage", payload);
	json_t *again = format(&ch, 1, "outage", payload),
	       *resolve = format(&ch, 1, "recovery", "{}");

	(void)state;
	assert_string_equal(str(a, "dedup_key"), "vantage-incident-1");
	assert_string_equal(str(b, "dedup_key"), "vantage-incident-2");
	assert_string_equal(str(again, "dedup_key"), str(a, "dedup_key"));
	assert_string_equal(str(resolve, "dedup_key"), str(a, "dedup_key"));
	assert_string_equal(str(a, "event_action"), "trigger");
	assert_string_equal(str(resolve, "event_action"), "resolve");
	assert_string_equal(str(a, "client"), "vantage");
	assert_int_equal(json_object_size(resolve), 3);
	json_decref(a);
	json_decref(b);
	json_decref(again);
	json_decref(resolve);
}

// Events API v2 rejects a summary over 1024 bytes; the cut must not split
// a UTF-8 sequence (format() fails if the text is not valid JSON).  No
// routing key configured: an empty one, which PagerDuty answers with an
// error that lands in last_error, rather than no field at all.
static void
test_format_pagerduty_limits(void **state)
{
	struct alert_conf ch = channel("pd", ALERT_FORMAT_PAGERDUTY);
	struct buf_like {
		char text[4096];
	} in;
	size_t len = 0;
	const char *summary;
	json_t *doc, *p;

	(void)state;
	len += (size_t)snprintf(in.text, sizeof(in.text), "{\"target\":\"api\",\"summary\":\"");
	for (int i = 0; i < 1000; i++) {
		memcpy(in.text + len, "\xc3\xa9", 2); // é: two bytes
		len += 2;
	}
	snprintf(in.text + len, sizeof(in.text) - len, "\"}");
	ch.routing_key = NULL;
	doc = format(&ch, 3, "outage", in.text);
	assert_string_equal(str(doc, "routing_key"), "");
	p = json_object_get(doc, "payload");
	summary = str(p, "summary");
	assert_true(strlen(summary) <= 1024);
	assert_true(strlen(summary) >= 1000);
	// No started_at: no timestamp (PagerDuty then uses its receive time).
	assert_null(json_object_get(p, "timestamp"));
	json_decref(doc);
}

// The generic document carries the row's identity whatever the payload
// says, and keeps every other field as it came.
static void
test_format_json_identity(void **state)
{
	struct alert_conf ch = channel("hook", ALERT_FORMAT_JSON);
	json_t *doc = format(&ch, 9, "recovery",
	    "{\"event\":\"outage\",\"incident_id\":1,\"channel\":\"other\",\"extra\":{\"k\":[1]}}");

	(void)state;
	assert_string_equal(str(doc, "event"), "recovery");
	assert_int_equal(json_integer_value(json_object_get(doc, "incident_id")), 9);
	assert_string_equal(str(doc, "channel"), "hook");
	assert_int_equal(json_integer_value(json_array_get(
			     json_object_get(json_object_get(doc, "extra"), "k"), 0)),
	    1);
	assert_int_equal(json_object_size(doc), 4);
	json_decref(doc);
}

// Bad event JSON yields no body in every format, never a half-filled one.
static void
test_format_bad_payload_every_format(void **state)
{
	static const char *const bad[] = { "[1,2]", "{\"a\":", "", "null", "\"text\"", "{} x" };
	struct alert_conf chans[] = {
		channel("hook", ALERT_FORMAT_JSON),
		channel("slack", ALERT_FORMAT_SLACK),
		channel("pd", ALERT_FORMAT_PAGERDUTY),
		channel("exec", ALERT_FORMAT_JSON),
	};

	(void)state;
	chans[3].is_exec = true;
	for (size_t c = 0; c < sizeof(chans) / sizeof(chans[0]); c++)
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			char *body = alert_format_body(&chans[c], 1, "outage", bad[i]);

			if (body != NULL)
				fail_msg("channel \"%s\" formatted \"%s\" as %s", chans[c].name,
				    bad[i], body);
		}
	// Invalid UTF-8 is refused by the parser, not passed on to a receiver.
	assert_null(alert_format_body(&chans[1], 1, "outage", "{\"target\":\"\xff\"}"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format_json),
		cmocka_unit_test(test_format_slack),
		cmocka_unit_test(test_format_pagerduty),
		cmocka_unit_test(test_format_bad_payload),
		cmocka_unit_test(test_format_slack_line),
		cmocka_unit_test(test_format_slack_limits),
		cmocka_unit_test(test_format_pagerduty_dedup),
		cmocka_unit_test(test_format_pagerduty_limits),
		cmocka_unit_test(test_format_json_identity),
		cmocka_unit_test(test_format_bad_payload_every_format),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
