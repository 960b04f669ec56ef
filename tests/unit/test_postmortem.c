// SPDX-License-Identifier: Apache-2.0
//
// Unit tests of aggregator/postmortem.c's rendering: a fixed document of the
// shape the gathering query returns (three regions, one of them unaffected;
// two alerts, one delivered and one that failed; failure texts containing
// '|' and line breaks) goes in, and the Markdown is checked for its three
// sections, the times people read first (time to detect, to resolve), the
// alerts, the healthy region, and that no outside text breaks a table.  No
// database: the query itself is exercised by tests/integration/postmortem.sh.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "postmortem.h"

// Times as PostgreSQL renders them in JSON (no zone), one with a "Z" and
// fractions of several lengths, as the parser must take all of them.
static const char fixture[] =
    "{\"incident\": {\"id\": 7, \"target\": \"shop\", \"url\": \"http://shop.example/health\","
    "  \"kind\": \"outage\", \"started_at\": \"2025-03-01T10:00:00\","
    "  \"detected_at\": \"2025-03-01T10:00:01Z\", \"resolved_at\": \"2025-03-01T10:04:12.000000\","
    "  \"regions\": [\"eu-west\", \"us-east\"], \"flapping\": false},"
    " \"timeline\": ["
    "  {\"at\": \"2025-03-01T10:00:00\", \"kind\": \"first_failure\", \"region\": \"eu-west\","
    "   \"message\": \"first failure in \\\"eu-west\\\": 503 http_status\"},"
    "  {\"at\": \"2025-03-01T10:00:00.4\", \"kind\": \"first_failure\", \"region\": \"us-east\","
    "   \"message\": \"first failure in \\\"us-east\\\": timeout | upstream\\nsecond line\"},"
    "  {\"at\": \"2025-03-01T10:00:01\", \"kind\": \"quorum\", \"region\": null,"
    "   \"message\": \"outage: 2 of 3 regions down (quorum 2)\"},"
    "  {\"at\": \"2025-03-01T10:04:12\", \"kind\": \"resolved\", \"region\": null,"
    "   \"message\": \"recovered: 3 of 3 regions up\"}],"
    " \"alerts\": ["
    "  {\"channel\": \"ops-webhook\", \"event\": \"outage\", \"created_at\": \"2025-03-01T10:00:01.1\","
    "   \"sent_at\": \"2025-03-01T10:00:01.300\", \"attempts\": 1, \"last_error\": null},"
    "  {\"channel\": \"pager\", \"event\": \"outage\", \"created_at\": \"2025-03-01T10:00:01.1\","
    "   \"sent_at\": null, \"attempts\": 5, \"last_error\": \"HTTP 500 | gateway *down*\"}],"
    " \"failures\": ["
    "  {\"region\": \"eu-west\", \"reason\": 6, \"http_status\": 503, \"count\": 14,"
    "   \"error\": \"503 Service Unavailable | upstream <b>down</b>\"},"
    "  {\"region\": \"us-east\", \"reason\": 9, \"http_status\": 0, \"count\": 9,"
    "   \"error\": \"timed out | after 3 s\"},"
    "  {\"region\": \"us-east\", \"reason\": 2, \"http_status\": 0, \"count\": 2, \"error\": null}],"
    " \"latency\": ["
    "  {\"region\": \"ap-south\", \"before_p50_us\": 30000, \"before_p95_us\": 45000.5,"
    "   \"before_n\": 60, \"during_p50_us\": 31000, \"during_p95_us\": 47000, \"during_n\": 9,"
    "   \"during_down\": 0},"
    "  {\"region\": \"eu-west\", \"before_p50_us\": 12000, \"before_p95_us\": 20000,"
    "   \"before_n\": 60, \"during_p50_us\": 8100, \"during_p95_us\": 10000, \"during_n\": 14,"
    "   \"during_down\": 14},"
    "  {\"region\": \"us-east\", \"before_p50_us\": null, \"before_p95_us\": null,"
    "   \"before_n\": 0, \"during_p50_us\": 3000000, \"during_p95_us\": 3000000, \"during_n\": 11,"
    "   \"during_down\": 11}],"
    " \"healthy\": [\"ap-south\"]}";

struct rendered {
	json_t *doc;
	char *md;
};

static json_t *
load(const char *text)
{
	json_error_t err;
	json_t *doc = json_loads(text, 0, &err);

	if (doc == NULL)
		fail_msg("fixture is not JSON: %s (line %d)", err.text, err.line);
	return doc;
}

static int
setup(void **state)
{
	struct rendered *r = calloc(1, sizeof(*r));

	r->doc = load(fixture);
	r->md = postmortem_render(r->doc);
	assert_non_null(r->md);
	*state = r;
	return 0;
}

static int
teardown(void **state)
{
	struct rendered *r = *state;

	free(r->md);
	json_decref(r->doc);
	free(r);
	return 0;
}

static const char *
md_of(void **state)
{
	return ((struct rendered *)*state)->md;
}

static void
assert_contains(const char *haystack, const char *needle)
{
	if (strstr(haystack, needle) == NULL)
		fail_msg("missing \"%s\" in:\n%s", needle, haystack);
}

// The first line that starts with prefix (a view up to its newline).
static const char *
line_starting(const char *md, const char *prefix)
{
	for (const char *p = md; p != NULL; p = strchr(p, '\n')) {
		if (*p == '\n')
			p++;
		if (strncmp(p, prefix, strlen(prefix)) == 0)
			return p;
	}
	fail_msg("no line starts with \"%s\" in:\n%s", prefix, md);
	return NULL;
}

static void
test_title_and_three_sections(void **state)
{
	const char *md = md_of(state);
	const char *happened, *right, *prevent;
	int sections = 0;

	assert_true(strncmp(md, "# Post-mortem: shop outage 2025-03-01\n", 38) == 0);
	happened = line_starting(md, "## What happened\n");
	right = line_starting(md, "## What went right\n");
	prevent = line_starting(md, "## What we will do to prevent it\n");
	assert_true(happened < right && right < prevent);
	for (const char *p = md; (p = strstr(p, "\n#")) != NULL; p++)
		sections++;
	assert_int_equal(sections, 3);
	// The summary line: duration and regions affected.
	assert_contains(md, "for 4 min 12 s, from 2025-03-01 10:00:00.000 to 10:04:12.000 UTC");
	assert_contains(md, "regions affected: eu-west and us-east (2 of 3 regions reporting)");
}

static void
test_timeline_table(void **state)
{
	const char *md = md_of(state);

	assert_contains(md, "| Time (UTC) | Event |\n|---|---|\n");
	assert_contains(md, "| 10:00:00.000 | first failure in \"eu-west\": 503 http\\_status |\n");
	assert_contains(md, "| 10:00:00.400 | ");
	assert_contains(md, "| 10:00:01.000 | outage: 2 of 3 regions down (quorum 2) |\n");
	assert_contains(md, "| 10:04:12.000 | recovered: 3 of 3 regions up |\n");
}

static void
test_reasons_per_region(void **state)
{
	const char *md = md_of(state);

	assert_contains(md, "- **eu-west**: 14 failing probes, http_status 503 (last error: ");
	assert_contains(md,
	    "- **us-east**: 9 failing probes, timeout (last error: \"timed out \\| "
	    "after 3 s\"); 2 failing probes, refused\n");
	assert_null(strstr(md, "- **ap-south**"));
}

static void
test_latency_table(void **state)
{
	const char *md = md_of(state);

	assert_contains(md, "| Region | p50 before | p95 before | p50 during | p95 during |\n");
	assert_contains(md, "| ap-south | 30.0 ms | 45.0 ms | 31.0 ms | 47.0 ms |\n");
	assert_contains(md, "| eu-west | 12.0 ms | 20.0 ms | 8.1 ms | 10.0 ms |\n");
	assert_contains(md, "| us-east | n/a | n/a | 3000.0 ms | 3000.0 ms |\n");
}

static void
test_what_went_right(void **state)
{
	const char *md = md_of(state);

	assert_contains(md,
	    "- **Time to detect:** 1.0 s, from the first failing probe "
	    "(10:00:00.000 UTC) to the quorum of regions (10:00:01.000 UTC).\n");
	assert_contains(md,
	    "  - outage alert to **ops-webhook**: queued at 10:00:01.100 UTC, "
	    "delivered at 10:00:01.300 UTC (0.3 s after detection)\n");
	assert_contains(md,
	    "  - outage alert to **pager**: queued at 10:00:01.100 UTC, "
	    "delivery failed after 5 attempts (last error: \"HTTP 500 \\| gateway "
	    "\\*down\\*\")\n");
	assert_contains(md, "- **Regions that stayed healthy:** ap-south (");
	assert_contains(md, "- **Time to resolve:** 252.0 s (4 min 12 s)");
}

static void
test_prevent_is_left_to_people(void **state)
{
	const char *md = md_of(state);
	const char *prevent = line_starting(md, "## What we will do to prevent it\n");

	assert_non_null(strstr(prevent, "for the team to fill in"));
	assert_non_null(strstr(prevent, "\n- [ ] \n"));
	// Nothing follows the placeholder: software proposes no actions.
	assert_string_equal(strstr(prevent, "\n- [ ] \n"), "\n- [ ] \n");
}

// Outside text: '|' escaped, never raw; HTML and emphasis escaped; a line
// break inside a message does not end the table row.
static void
test_escaping(void **state)
{
	const char *md = md_of(state);

	assert_contains(md, "503 Service Unavailable \\| upstream \\<b\\>down\\</b\\>");
	assert_null(strstr(md, "<b>"));
	assert_null(strstr(md, "Unavailable | upstream"));
	assert_contains(md, "first failure in \"us-east\": timeout \\| upstream second line |\n");
	// Every table row has exactly its columns' unescaped pipes.
	for (const char *line = md; line != NULL && *line != '\0';) {
		const char *end = strchr(line, '\n');
		size_t len = end ? (size_t)(end - line) : strlen(line);
		int pipes = 0;

		for (size_t i = 0; i < len; i++)
			if (line[i] == '|' && (i == 0 || line[i - 1] != '\\'))
				pipes++;
		if (len > 0 && line[0] == '|')
			assert_true(pipes == 3 || pipes == 6);
		else
			assert_int_equal(pipes, 0);
		line = end ? end + 1 : NULL;
	}
}

static void
test_key_is_escaped(void **state)
{
	json_t *doc = load(fixture);
	char *md;

	json_object_set_new(json_object_get(doc, "incident"), "target", json_string("shop_api*"));
	md = postmortem_render(doc);
	assert_non_null(md);
	assert_true(strncmp(md, "# Post-mortem: shop\\_api\\* outage", 33) == 0);
	free(md);
	json_decref(doc);
}

static void
test_without_alerts(void **state)
{
	json_t *doc = load(fixture);
	char *md;

	json_object_set_new(doc, "alerts", json_array());
	md = postmortem_render(doc);
	assert_non_null(md);
	assert_contains(md, "- **Alerts:** no alerts were sent for this incident");
	assert_null(strstr(md, "alert to **"));
	free(md);
	json_decref(doc);
}

static void
test_pending_alert_and_no_healthy_region(void **state)
{
	json_t *doc = load(fixture);
	json_t *pager = json_array_get(json_object_get(doc, "alerts"), 1);
	char *md;

	json_object_set_new(pager, "attempts", json_integer(0));
	json_object_set_new(doc, "healthy", json_array());
	md = postmortem_render(doc);
	assert_non_null(md);
	assert_contains(md,
	    "**pager**: queued at 10:00:01.100 UTC, not yet delivered when this draft "
	    "was written\n");
	assert_contains(md, "- **Regions that stayed healthy:** none;");
	free(md);
	json_decref(doc);
}

static void
test_unresolved_and_long(void **state)
{
	json_t *doc = load(fixture);
	json_t *inc = json_object_get(doc, "incident");
	char *md;

	json_object_set_new(inc, "resolved_at", json_null());
	md = postmortem_render(doc);
	assert_non_null(md);
	assert_contains(md, "not resolved when this draft was written");
	free(md);
	// A day boundary inside the incident puts dates into the times.
	json_object_set_new(inc, "resolved_at", json_string("2025-03-02T12:30:00"));
	json_object_set_new(inc, "flapping", json_true());
	md = postmortem_render(doc);
	assert_non_null(md);
	assert_contains(md,
	    "for 26 h 30 min, from 2025-03-01 10:00:00.000 to 2025-03-02 "
	    "12:30:00.000 UTC");
	assert_contains(md, "The target was flapping, so its alerts were grouped.");
	assert_contains(md, "95400.0 s (26 h 30 min)");
	free(md);
	json_decref(doc);
}

static void
test_refuses_unusable_documents(void **state)
{
	static const char *const bad_times[] = { "", "2025-03-01", "2025-03-01 10:00:00",
		"2025-13-01T10:00:00", "2025-03-01T10:00:00.", "2025-03-01T10:00:00+01:00",
		"2025-03-01T10:00:00Zjunk", "20x5-03-01T10:00:00" };
	json_t *doc = load("{}");

	assert_null(postmortem_render(doc));
	json_decref(doc);
	doc = load(fixture);
	json_object_del(json_object_get(doc, "incident"), "target");
	assert_null(postmortem_render(doc));
	json_decref(doc);
	for (size_t i = 0; i < sizeof(bad_times) / sizeof(bad_times[0]); i++) {
		doc = load(fixture);
		json_object_set_new(json_object_get(doc, "incident"), "started_at",
		    json_string(bad_times[i]));
		if (postmortem_render(doc) != NULL)
			fail_msg("accepted started_at \"%s\"", bad_times[i]);
		json_decref(doc);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_title_and_three_sections, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeline_table, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reasons_per_region, setup, teardown),
		cmocka_unit_test_setup_teardown(test_latency_table, setup, teardown),
		cmocka_unit_test_setup_teardown(test_what_went_right, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prevent_is_left_to_people, setup, teardown),
		cmocka_unit_test_setup_teardown(test_escaping, setup, teardown),
		cmocka_unit_test(test_key_is_escaped),
		cmocka_unit_test(test_without_alerts),
		cmocka_unit_test(test_pending_alert_and_no_healthy_region),
		cmocka_unit_test(test_unresolved_and_long),
		cmocka_unit_test(test_refuses_unusable_documents),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
