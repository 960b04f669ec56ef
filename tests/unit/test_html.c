// SPDX-License-Identifier: Apache-2.0
//
// Unit tests of aggregator/html.c, the one module that writes the status
// page's markup.  Expected outputs are written out in full from html.h's
// rules, not read back from the code: every special character in text and
// attribute values, invalid UTF-8 and control characters, a post-mortem
// carrying <script>, URLs that must be dropped (javascript:, data:, ones
// hiding a scheme behind a tab), event-handler attributes, the number and
// time formats, sparklines with gaps (exact SVG for a small case, shape
// counts and tag balance for larger ones) and the uptime bar's labels.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <string.h>

#include <cmocka.h>

#include "html.h"

#define S 1000000LL // one second in µs
#define DAY (86400 * S)
#define T_2026_12_03 (1796320211LL * S) // 2026-12-03T17:50:11Z
#define DAY_2026_12_01 (1796083200LL * S)

struct fixture {
	struct buf b;
};

static int
setup(void **state)
{
	static struct fixture f;

	buf_init(&f.b);
	*state = &f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	buf_free(&f->b);
	return 0;
}

static const char *
out(void **state)
{
	struct fixture *f = *state;

	return buf_cstr(&f->b);
}

static struct buf *
bufp(void **state)
{
	struct fixture *f = *state;

	buf_reset(&f->b);
	return &f->b;
}

// Occurrences of needle in haystack.
static size_t
count_of(const char *haystack, const char *needle)
{
	size_t n = 0;

	for (const char *p = strstr(haystack, needle); p != NULL; p = strstr(p + 1, needle))
		n++;
	return n;
}

// A tag-balance check of markup without text that could hold '<': every
// start tag is closed in order, "<x/>" closes itself, and nothing is left
// open.  Enough to tell a well-formed SVG from a broken one.
static bool
balanced(const char *s)
{
	char stack[32][16];
	size_t depth = 0;

	for (const char *p = strchr(s, '<'); p != NULL; p = strchr(p + 1, '<')) {
		const char *end = strchr(p, '>');
		bool closing = p[1] == '/';
		const char *name = p + 1 + closing;
		size_t len = strcspn(name, " />");

		if (end == NULL || len == 0 || len >= sizeof(stack[0]))
			return false;
		if (closing) {
			if (depth == 0 || strncmp(stack[depth - 1], name, len) != 0 ||
			    stack[depth - 1][len] != '\0')
				return false;
			depth--;
		} else if (end[-1] != '/') {
			if (depth == sizeof(stack) / sizeof(stack[0]))
				return false;
			memcpy(stack[depth], name, len);
			stack[depth++][len] = '\0';
		}
	}
	return depth == 0;
}

static void
test_text_escapes_every_special_character(void **state)
{
	html_text(bufp(state), "a&b<c>d\"e'f");
	assert_string_equal(out(state), "a&amp;b&lt;c&gt;d&quot;e&#39;f");
	html_text(bufp(state), "&amp; stays text: &lt;");
	assert_string_equal(out(state), "&amp;amp; stays text: &amp;lt;");
	html_text(bufp(state), NULL);
	assert_string_equal(out(state), "");
}

static void
test_attr_escapes_every_special_character(void **state)
{
	html_attr(bufp(state), "x\" onmouseover='alert(1)' <>&");
	assert_string_equal(out(state), "x&quot; onmouseover=&#39;alert(1)&#39; &lt;&gt;&amp;");
	html_open(bufp(state), "div", HTML_A("class", "a\"b"), HTML_A("title", "<&'>"));
	assert_string_equal(out(state), "<div class=\"a&quot;b\" title=\"&lt;&amp;&#39;&gt;\">");
}

static void
test_utf8_kept_and_invalid_bytes_replaced(void **state)
{
	// Valid two-, three- and four-byte sequences, tab and newline pass.
	html_text(bufp(state), "Z\xc3\xbcrich \xe6\x9d\xb1\xe4\xba\xac \xf0\x9f\x9a\x80\t\n");
	assert_string_equal(out(state),
	    "Z\xc3\xbcrich \xe6\x9d\xb1\xe4\xba\xac \xf0\x9f\x9a\x80\t\n");
	// A lone continuation byte, a truncated sequence, an overlong '/', a
	// surrogate, a C0 control, DEL and a C1 control: one U+FFFD per byte.
	html_text(bufp(state),
	    "a\x80"
	    "b\xe6\x9d"
	    "c\xc0\xaf"
	    "d\xed\xa0\x80"
	    "e\x01"
	    "f\x7f"
	    "g\xc2\x85");
	assert_string_equal(out(state),
	    "a\xef\xbf\xbd"
	    "b\xef\xbf\xbd\xef\xbf\xbd"
	    "c\xef\xbf\xbd\xef\xbf\xbd"
	    "d\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
	    "e\xef\xbf\xbd"
	    "f\xef\xbf\xbd"
	    "g\xef\xbf\xbd\xef\xbf\xbd");
	// Above U+10FFFF.
	html_text(bufp(state), "\xf4\x90\x80\x80");
	assert_int_equal(count_of(out(state), "\xef\xbf\xbd"), 4);
}

static void
test_postmortem_script_comes_out_as_text(void **state)
{
	const char *postmortem = "What happened: <script>alert('x')</script> and "
				 "<img src=x onerror=alert(1)> & \"quotes\"";

	html_elem(bufp(state), "p", postmortem, HTML_A("class", "postmortem"));
	assert_string_equal(out(state),
	    "<p class=\"postmortem\">What happened: &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; "
	    "and &lt;img src=x onerror=alert(1)&gt; &amp; &quot;quotes&quot;</p>");
	assert_null(strstr(out(state), "<script"));
	assert_null(strstr(out(state), "<img"));
}

static void
test_url_check(void **state)
{
	static const char *const good[] = { "https://example.com/status", "http://example.com",
		"HTTPS://EXAMPLE.COM", "/incidents/7", "incidents/7", "?page=2", "#history", "/a:b",
		"//cdn.example.com/logo.png" };
	static const char *const bad[] = { "javascript:alert(1)", "JavaScript:alert(1)",
		" javascript:alert(1)", "java\tscript:alert(1)", "java\nscript:alert(1)",
		"data:text/html,<script>alert(1)</script>", "vbscript:msgbox",
		"mailto:ops@example.com", "ftp://example.com", "https://exa mple.com", "\\\\evil",
		"", NULL };

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (!html_url_ok(good[i]))
			fail_msg("\"%s\" refused", good[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (html_url_ok(bad[i]))
			fail_msg("\"%s\" accepted", bad[i] ? bad[i] : "(null)");
}

static void
test_javascript_url_attribute_dropped(void **state)
{
	html_elem(bufp(state), "a", "logo", HTML_A("href", "javascript:alert(1)"),
	    HTML_A("class", "logo"));
	assert_string_equal(out(state), "<a class=\"logo\">logo</a>");
	html_open(bufp(state), "img", HTML_A("src", "data:image/png;base64,AAAA"),
	    HTML_A("alt", "logo"));
	assert_string_equal(out(state), "<img alt=\"logo\">");
	html_open(bufp(state), "a", HTML_A("href", "/incidents/7?x=1&y=2"));
	assert_string_equal(out(state), "<a href=\"/incidents/7?x=1&amp;y=2\">");
	html_open(bufp(state), "a", HTML_A("href", "https://example.com/\"><script>"));
	assert_string_equal(out(state),
	    "<a href=\"https://example.com/&quot;&gt;&lt;script&gt;\">");
}

static void
test_attribute_rules(void **state)
{
	struct buf *b;

	// NULL value: omitted; event handlers: dropped, whatever the case.
	html_open(bufp(state), "span", HTML_A("class", NULL), HTML_A("onclick", "x()"),
	    HTML_A("OnLoad", "x()"), HTML_A("aria-label", "ok"), HTML_A("id", ""));
	assert_string_equal(out(state), "<span aria-label=\"ok\" id=\"\">");
	// A name that slipped past the literal rule is refused anyway.
	html_open_(bufp(state), "p",
	    (const struct html_attr[]){ { "x onload", "y" }, { "", "y" }, { "9a", "y" },
		{ "data-x", "1" }, { NULL, NULL } });
	assert_string_equal(out(state), "<p data-x=\"1\">");
	// No tag without a valid name, and never <script>.
	b = bufp(state);
	html_open_(b, "p><script", (const struct html_attr[]){ { NULL, NULL } });
	html_elem(b, "script", "alert(1)");
	html_open(b, "SCRIPT");
	html_close(b, "script");
	assert_string_equal(out(state), "");
}

static void
test_open_close_elem_raw(void **state)
{
	struct buf *b = bufp(state);

	html_raw(b, "<!DOCTYPE html>");
	html_open(b, "html", HTML_A("lang", "en"));
	html_elem(b, "h1", "A & B");
	html_open(b, "br");
	html_close(b, "html");
	assert_string_equal(out(state),
	    "<!DOCTYPE html><html lang=\"en\"><h1>A &amp; B</h1><br></html>");
}

static void
test_iso8601_and_time(void **state)
{
	char iso[HTML_ISO8601_SIZE];

	html_fmt_iso8601(iso, T_2026_12_03 + 999999);
	assert_string_equal(iso, "2026-12-03T17:50:11Z");
	html_fmt_iso8601(iso, 0);
	assert_string_equal(iso, "1970-01-01T00:00:00Z");
	html_fmt_iso8601(iso, -1);
	assert_string_equal(iso, "1969-12-31T23:59:59Z");
	html_fmt_iso8601(iso, INT64_MAX); // year far past 9999
	assert_string_equal(iso, "1970-01-01T00:00:00Z");
	html_time(bufp(state), T_2026_12_03);
	assert_string_equal(out(state),
	    "<time datetime=\"2026-12-03T17:50:11Z\">2026-12-03 17:50 UTC</time>");
}

static void
test_duration(void **state)
{
	static const struct {
		int64_t us;
		const char *text;
	} cases[] = {
		{ -5 * S, "0 s" },
		{ 0, "0 s" },
		{ 999999, "0 s" },
		{ 45 * S, "45 s" },
		{ 59 * S + 999999, "59 s" },
		{ 60 * S, "1 min" },
		{ 725 * S, "12 min 5 s" },
		{ 3600 * S, "1 h" },
		{ 4320 * S, "1 h 12 min" },
		{ 7259 * S, "2 h" },
		{ 86400 * S, "1 d" },
		{ (3 * 86400 + 4 * 3600 + 59) * S, "3 d 4 h" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		html_fmt_duration(bufp(state), cases[i].us);
		assert_string_equal(out(state), cases[i].text);
	}
	html_duration(bufp(state), 4320 * S);
	assert_string_equal(out(state), "<time datetime=\"PT4320S\">1 h 12 min</time>");
}

static void
test_latency_and_int(void **state)
{
	static const struct {
		int64_t us;
		const char *text;
	} cases[] = {
		{ -1, "0 \xc2\xb5s" },
		{ 850, "850 \xc2\xb5s" },
		{ 1000, "1.0 ms" },
		{ 4200, "4.2 ms" },
		{ 9949, "9.9 ms" },
		{ 9950, "10 ms" },
		{ 42400, "42 ms" },
		{ 42500, "43 ms" },
		{ 999499, "999 ms" },
		{ 999500, "1.00 s" },
		{ 1250000, "1.25 s" },
		{ 61 * S, "61.00 s" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		html_fmt_latency(bufp(state), cases[i].us);
		assert_string_equal(out(state), cases[i].text);
	}
	html_int(bufp(state), -1234567890123LL);
	assert_string_equal(out(state), "-1234567890123");
}

#define POLYLINE                                                                \
	"<polyline fill=\"none\" stroke=\"currentColor\" stroke-width=\"1.5\" " \
	"vector-effect=\"non-scaling-stroke\" points=\""

static void
test_sparkline_exact_small_case(void **state)
{
	const struct html_point points[] = {
		{ 0, 1, true },
		{ 10 * S, 3, true },
		{ 20 * S, 0, false }, // no data: the first line ends
		{ 30 * S, 2, true },
		{ 40 * S, 2, true },
		{ 50 * S, 1, true },
		{ 60 * S, 0, false },
		{ 70 * S, 3, true }, // alone: a dot
		{ 80 * S, 0, false },
	};
	struct html_sparkline s = { .points = points,
		.n = sizeof(points) / sizeof(points[0]),
		.from = 0,
		.to = 100 * S,
		.width = 100,
		.height = 10,
		.title = "p95 <latency> & co" };

	// y: 1..3 over 1 + (3 - v) * 8 / 2, the largest value at the top.
	html_sparkline(bufp(state), &s);
	assert_string_equal(out(state),
	    "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"spark\" viewBox=\"0 0 100 10\" "
	    "width=\"100\" height=\"10\" preserveAspectRatio=\"none\" role=\"img\" "
	    "aria-label=\"p95 &lt;latency&gt; &amp; co\"><title>p95 &lt;latency&gt; &amp; "
	    "co</title>" POLYLINE "0.0,9.0 10.0,1.0\"/>" POLYLINE "30.0,5.0 40.0,5.0 50.0,9.0\"/>"
	    "<circle cx=\"70.0\" cy=\"1.0\" r=\"1.5\" fill=\"currentColor\"/></svg>");
	assert_true(balanced(out(state)));
	// The checker itself tells broken markup apart.
	assert_false(balanced("<svg><polyline></svg>"));
	assert_false(balanced("<svg><title>x</svg></title>"));
	assert_false(balanced("<svg>"));
}

// A day of one-minute points with three gaps: no data at 06:00-06:09, a
// NaN at 12:00, missing rows 18:00-18:29 (caught by max_step only).
static void
test_sparkline_gaps_over_a_day(void **state)
{
	static struct html_point points[1440];
	size_t n = 0;
	struct html_sparkline s = { .from = 0, .to = DAY, .title = "API p95, last 24 h" };

	for (int64_t minute = 0; minute < 1440; minute++) {
		if (minute >= 18 * 60 && minute < 18 * 60 + 30)
			continue;
		points[n] = (struct html_point){ .at = minute * 60 * S,
			.value = 40 + (double)(minute % 7),
			.known = !(minute >= 6 * 60 && minute < 6 * 60 + 10) };
		if (minute == 12 * 60)
			points[n].value = NAN;
		n++;
	}
	s.points = points;
	s.n = n;
	html_sparkline(bufp(state), &s);
	assert_int_equal(count_of(out(state), "<polyline"), 3); // the missing rows do not break
	assert_true(balanced(out(state)));
	s.max_step_us = 90 * S;
	html_sparkline(bufp(state), &s);
	assert_int_equal(count_of(out(state), "<polyline"), 4);
	assert_int_equal(count_of(out(state), "<circle"), 0);
	assert_true(balanced(out(state)));
	assert_non_null(strstr(out(state), "<title>API p95, last 24 h</title>"));
	assert_non_null(strstr(out(state), "viewBox=\"0 0 240 40\""));
}

static void
test_sparkline_edge_cases(void **state)
{
	const struct html_point flat[] = { { 0, 5, true }, { 50 * S, 5, true } };
	const struct html_point outside[] = { { -10 * S, 5, true }, { 10 * S, INFINITY, true },
		{ 20 * S, 7, true }, { 200 * S, 5, true } };
	const struct html_point unordered[] = { { 20 * S, 1, true }, { 30 * S, 2, true },
		{ 10 * S, 3, true }, { 40 * S, 4, true } };
	const struct html_point fixed[] = { { 0, 50, true }, { 100 * S, 500, true } };
	struct html_sparkline s = { .points = flat,
		.n = 2,
		.from = 0,
		.to = 100 * S,
		.width = 100,
		.height = 10,
		.title = "t",
		.css_class = "spark big" };

	// One value throughout: a line across the middle.
	html_sparkline(bufp(state), &s);
	assert_non_null(strstr(out(state), "points=\"0.0,5.0 50.0,5.0\""));
	assert_non_null(strstr(out(state), "class=\"spark big\""));
	// Before from, not finite, after to: only the point at 20 s is left.
	s.points = outside;
	s.n = 4;
	html_sparkline(bufp(state), &s);
	assert_int_equal(count_of(out(state), "<polyline"), 0);
	assert_non_null(strstr(out(state), "<circle cx=\"20.0\" cy=\"5.0\""));
	// A step back in time ends a line rather than drawing backwards.
	s.points = unordered;
	html_sparkline(bufp(state), &s);
	assert_int_equal(count_of(out(state), "<polyline"), 2);
	// The caller's y range: values clamped into it.
	s.points = fixed;
	s.n = 2;
	s.y_min = 0;
	s.y_max = 100;
	html_sparkline(bufp(state), &s);
	assert_non_null(strstr(out(state), "points=\"0.0,5.0 100.0,1.0\""));
	// Nothing to draw, or an empty axis: still a labelled, balanced SVG.
	s.n = 0;
	html_sparkline(bufp(state), &s);
	assert_int_equal(count_of(out(state), "<polyline"), 0);
	assert_non_null(strstr(out(state), "<title>t</title></svg>"));
	s.n = 2;
	s.to = s.from;
	html_sparkline(bufp(state), &s);
	assert_int_equal(count_of(out(state), "<polyline") + count_of(out(state), "<circle"), 0);
	assert_true(balanced(out(state)));
}

static void
test_uptime_bar_cells_and_labels(void **state)
{
	const struct status_calc_day days[] = {
		{ DAY_2026_12_01, .up_us = DAY },
		{ DAY_2026_12_01 + DAY, .up_us = DAY - 60 * S, .down_us = 60 * S },
		{ DAY_2026_12_01 + 2 * DAY, .unknown_us = DAY },
		{ DAY_2026_12_01 + 3 * DAY, .maintenance_us = 2 * 3600 * S,
		    .unknown_us = DAY - 7200 * S },
		{ DAY_2026_12_01 + 4 * DAY, .up_us = 12 * 3600 * S, .down_us = 12 * 3600 * S },
	};
	const char *o;

	html_uptime_bar(bufp(state), "API & <web>", days, 5);
	o = out(state);
	assert_true(balanced(o));
	assert_non_null(strstr(o, "viewBox=\"0 0 19 30\""));
	assert_non_null(strstr(o,
	    "role=\"group\" aria-label=\"API &amp; &lt;web&gt;, last 5 days: "
	    "83.31 % uptime, 721 min down, 2760 min unknown, 120 min "
	    "maintenance\"><title>API &amp; &lt;web&gt;, last 5 days: 83.31 % "
	    "uptime, 721 min down, 2760 min unknown, 120 min maintenance</title>"));
	assert_non_null(strstr(o,
	    "<rect class=\"day day-operational\" x=\"0\" y=\"0\" width=\"3\" "
	    "height=\"30\" role=\"img\" aria-label=\"2026-12-01: 100.00 % uptime, 0 "
	    "min down, 0 min unknown\"><title>2026-12-01: 100.00 % uptime, 0 min "
	    "down, 0 min unknown</title></rect>"));
	assert_non_null(strstr(o, "<rect class=\"day day-minor\" x=\"4\""));
	assert_non_null(strstr(o,
	    "<title>2026-12-02: 99.93 % uptime, 1 min down, 0 min "
	    "unknown</title>"));
	assert_non_null(strstr(o, "<rect class=\"day day-nodata\" x=\"8\""));
	assert_non_null(strstr(o,
	    "<title>2026-12-03: no data, 0 min down, 1440 min "
	    "unknown</title>"));
	assert_non_null(strstr(o, "<rect class=\"day day-maintenance\" x=\"12\""));
	assert_non_null(strstr(o,
	    "<title>2026-12-04: no data, 0 min down, 1320 min unknown, 120 "
	    "min maintenance</title>"));
	assert_non_null(strstr(o, "<rect class=\"day day-major\" x=\"16\""));
	assert_non_null(strstr(o,
	    "<title>2026-12-05: 50.00 % uptime, 720 min down, 0 min "
	    "unknown</title>"));
	assert_int_equal(count_of(o, "<rect"), 5);
	// Every cell carries its label twice: <title> and aria-label.
	assert_int_equal(count_of(o, "<title>"), 6);
	assert_int_equal(count_of(o, "aria-label=\""), 6);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_text_escapes_every_special_character, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_attr_escapes_every_special_character, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_utf8_kept_and_invalid_bytes_replaced, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_postmortem_script_comes_out_as_text, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_url_check, setup, teardown),
		cmocka_unit_test_setup_teardown(test_javascript_url_attribute_dropped, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_attribute_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_close_elem_raw, setup, teardown),
		cmocka_unit_test_setup_teardown(test_iso8601_and_time, setup, teardown),
		cmocka_unit_test_setup_teardown(test_duration, setup, teardown),
		cmocka_unit_test_setup_teardown(test_latency_and_int, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sparkline_exact_small_case, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sparkline_gaps_over_a_day, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sparkline_edge_cases, setup, teardown),
		cmocka_unit_test_setup_teardown(test_uptime_bar_cells_and_labels, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
