// SPDX-License-Identifier: Apache-2.0
//
// The HTML builder (see html.h).  Everything that reaches the page from
// outside -- target names, incident updates, post-mortems, region names,
// URLs from the configuration -- passes through html_escape, which decides
// byte by byte what may stand as it is.  This file must never write a
// dynamic string any other way, and never read a clock or do I/O: the
// status page is rendered in memory and served from there.
#include "html.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define HTML_REPLACEMENT "\xef\xbf\xbd" // U+FFFD

// Length of the valid UTF-8 sequence at s (1..4), or 0 when it is not one:
// overlong forms, surrogates and code points above U+10FFFF are refused.
static size_t
html_utf8_len(const unsigned char *s)
{
	unsigned c = s[0];
	size_t len;
	uint32_t cp, min;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2, cp = c & 0x1f, min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3, cp = c & 0x0f, min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4, cp = c & 0x07, min = 0x10000;
	} else {
		return 0;
	}
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80) // also stops at the NUL
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	// C1 controls (U+0080..U+009F) are not allowed in HTML text either.
	if (cp <= 0x9f)
		return 0;
	return len;
}

// The one escaping routine for text and attribute values.
static void
html_escape(struct buf *b, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	if (s == NULL)
		return;
	while (*p != '\0') {
		size_t len;

		switch (*p) {
		case '&':
			buf_puts(b, "&amp;");
			p++;
			continue;
		case '<':
			buf_puts(b, "&lt;");
			p++;
			continue;
		case '>':
			buf_puts(b, "&gt;");
			p++;
			continue;
		case '"':
			buf_puts(b, "&quot;");
			p++;
			continue;
		case '\'':
			buf_puts(b, "&#39;");
			p++;
			continue;
		case '\t':
		case '\n':
		case '\r':
			buf_putc(b, (char)*p++);
			continue;
		default:
			break;
		}
		len = *p < 0x20 || *p == 0x7f ? 0 : html_utf8_len(p);
		if (len == 0) {
			buf_puts(b, HTML_REPLACEMENT);
			p++;
		} else {
			buf_append(b, p, len);
			p += len;
		}
	}
}

void
html_text(struct buf *b, const char *s)
{
	html_escape(b, s);
}

void
html_attr(struct buf *b, const char *s)
{
	html_escape(b, s);
}

// Tag and attribute names: letters first, then letters, digits, '-' and
// ':' (SVG's viewBox, aria-label, xlink:href).  The macros make them
// literals; this keeps a mistaken one from breaking the markup anyway.
static bool
html_name_ok(const char *name)
{
	if (name == NULL || !((*name >= 'a' && *name <= 'z') || (*name >= 'A' && *name <= 'Z')))
		return false;
	for (const char *p = name; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			(*p >= '0' && *p <= '9') || *p == '-' || *p == ':'))
			return false;
	return true;
}

static bool
html_tag_ok(const char *tag)
{
	// The page runs no script, so no builder call may start one.
	return html_name_ok(tag) && strcasecmp(tag, "script") != 0;
}

static bool
html_is_url_attr(const char *name)
{
	static const char *const url_attrs[] = { "href", "src", "action", "formaction", "cite",
		"poster", "background", "xlink:href", "srcset", "data", "codebase", "longdesc",
		"manifest", "ping", "usemap" };

	for (size_t i = 0; i < sizeof(url_attrs) / sizeof(url_attrs[0]); i++)
		if (strcasecmp(name, url_attrs[i]) == 0)
			return true;
	return false;
}

bool
html_url_ok(const char *url)
{
	const char *p;

	if (url == NULL || *url == '\0')
		return false;
	// Browsers strip or skip spaces, tabs and newlines inside URLs
	// ("java\tscript:"), so a URL with any of them is refused outright.
	for (p = url; *p != '\0'; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f || *p == '\\')
			return false;
	if (strncasecmp(url, "http://", 7) == 0 || strncasecmp(url, "https://", 8) == 0)
		return true;
	// Relative: no scheme, that is no ':' before the first '/', '?' or '#'.
	for (p = url; *p != '\0' && *p != '/' && *p != '?' && *p != '#'; p++)
		if (*p == ':')
			return false;
	return true;
}

static bool
html_attr_ok(const struct html_attr *a)
{
	if (a->value == NULL || !html_name_ok(a->name))
		return false;
	if (strncasecmp(a->name, "on", 2) == 0) // event handlers: no JS
		return false;
	return !html_is_url_attr(a->name) || html_url_ok(a->value);
}

void
html_open_(struct buf *b, const char *tag, const struct html_attr *attrs)
{
	if (!html_tag_ok(tag))
		return;
	buf_putc(b, '<');
	buf_puts(b, tag);
	for (const struct html_attr *a = attrs; a->name != NULL; a++) {
		if (!html_attr_ok(a))
			continue;
		buf_putc(b, ' ');
		buf_puts(b, a->name);
		buf_puts(b, "=\"");
		html_escape(b, a->value);
		buf_putc(b, '"');
	}
	buf_putc(b, '>');
}

void
html_close_(struct buf *b, const char *tag)
{
	if (!html_tag_ok(tag))
		return;
	buf_puts(b, "</");
	buf_puts(b, tag);
	buf_putc(b, '>');
}

void
html_elem_(struct buf *b, const char *tag, const char *text, const struct html_attr *attrs)
{
	if (!html_tag_ok(tag))
		return;
	html_open_(b, tag, attrs);
	html_escape(b, text);
	html_close_(b, tag);
}

void
html_raw_(struct buf *b, const char *literal)
{
	buf_puts(b, literal);
}

// Seconds since the epoch rounded towards minus infinity, so that an
// instant before 1970 still lands in its own second.
static time_t
html_secs(int64_t at_us)
{
	int64_t secs = at_us / 1000000;

	if (at_us % 1000000 < 0)
		secs--;
	return (time_t)secs;
}

static bool
html_gmtime(int64_t at_us, struct tm *tm)
{
	time_t secs = html_secs(at_us);

	// Four-digit years only: the text is cut to fixed positions.
	return gmtime_r(&secs, tm) != NULL && tm->tm_year + 1900 >= 1000 &&
	    tm->tm_year + 1900 <= 9999;
}

void
html_fmt_iso8601(char out[HTML_ISO8601_SIZE], int64_t at_us)
{
	struct tm tm;

	if (!html_gmtime(at_us, &tm)) // out of range: the epoch, not garbage
		tm = (struct tm){ .tm_year = 70, .tm_mday = 1 };
	if (strftime(out, HTML_ISO8601_SIZE, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		out[0] = '\0';
}

void
html_fmt_duration(struct buf *b, int64_t us)
{
	static const struct {
		int64_t secs;
		const char *unit;
	} units[] = { { 86400, "d" }, { 3600, "h" }, { 60, "min" }, { 1, "s" } };
	int64_t secs = us > 0 ? us / 1000000 : 0;
	size_t n = sizeof(units) / sizeof(units[0]), first = n - 1;

	for (size_t i = 0; i < n; i++)
		if (secs >= units[i].secs) {
			first = i;
			break;
		}
	buf_printf(b, "%" PRId64 " %s", secs / units[first].secs, units[first].unit);
	if (first + 1 < n) {
		int64_t rest = secs % units[first].secs / units[first + 1].secs;

		if (rest > 0)
			buf_printf(b, " %" PRId64 " %s", rest, units[first + 1].unit);
	}
}

void
html_fmt_latency(struct buf *b, int64_t us)
{
	if (us < 0)
		us = 0;
	if (us < 1000) {
		buf_printf(b, "%" PRId64 " \xc2\xb5s", us);
	} else if (us < 9950) {
		int64_t tenths = (us + 50) / 100;

		buf_printf(b, "%" PRId64 ".%" PRId64 " ms", tenths / 10, tenths % 10);
	} else if (us < 999500) {
		buf_printf(b, "%" PRId64 " ms", (us + 500) / 1000);
	} else {
		int64_t centis = (us + 5000) / 10000;

		buf_printf(b, "%" PRId64 ".%02" PRId64 " s", centis / 100, centis % 100);
	}
}

void
html_time(struct buf *b, int64_t at_us)
{
	char iso[HTML_ISO8601_SIZE];

	html_fmt_iso8601(iso, at_us);
	html_open(b, "time", HTML_A("datetime", iso));
	// "2026-12-03 17:50 UTC": the ISO form with its seconds cut.
	buf_append(b, iso, 10);
	buf_putc(b, ' ');
	buf_append(b, iso + 11, 5);
	buf_puts(b, " UTC");
	html_close(b, "time");
}

void
html_duration(struct buf *b, int64_t us)
{
	buf_printf(b, "<time datetime=\"PT%" PRId64 "S\">", us > 0 ? us / 1000000 : 0);
	html_fmt_duration(b, us);
	html_close(b, "time");
}

void
html_int(struct buf *b, long long v)
{
	buf_printf(b, "%lld", v);
}

// Opens an <svg> with its viewBox, default size, role and label, and its
// <title>: what the sparkline and the uptime bar share.
static void
html_svg_open(struct buf *b, const char *css_class, unsigned width, unsigned height,
    const char *role, const char *label)
{
	buf_puts(b, "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"");
	html_escape(b, css_class);
	buf_printf(b, "\" viewBox=\"0 0 %u %u\" width=\"%u\" height=\"%u\"", width, height, width,
	    height);
	buf_printf(b, " preserveAspectRatio=\"none\" role=\"%s\" aria-label=\"", role);
	html_escape(b, label);
	buf_puts(b, "\"><title>");
	html_escape(b, label);
	buf_puts(b, "</title>");
}

static bool
html_point_usable(const struct html_sparkline *s, const struct html_point *p)
{
	return p->known && isfinite(p->value) && p->at >= s->from && p->at <= s->to;
}

// Where the usable points of s lie on the y axis: the caller's range, or
// the data's when it gave none.  False when there is no usable point.
static bool
html_spark_range(const struct html_sparkline *s, double *lo, double *hi)
{
	bool any = false;

	*lo = s->y_min;
	*hi = s->y_max;
	if (s->y_max > s->y_min)
		return true;
	for (size_t i = 0; i < s->n; i++) {
		const struct html_point *p = &s->points[i];

		if (!html_point_usable(s, p))
			continue;
		if (!any || p->value < *lo)
			*lo = p->value;
		if (!any || p->value > *hi)
			*hi = p->value;
		any = true;
	}
	return any;
}

struct html_spark_geom {
	int64_t from, span;
	double lo, hi, width, height;
};

#define HTML_SPARK_PAD 1.0 // keeps a stroke at the top or bottom inside the box

static void
html_spark_xy(const struct html_spark_geom *g, const struct html_point *p, double *x, double *y)
{
	double v = p->value;

	*x = (double)(p->at - g->from) * g->width / (double)g->span;
	if (!(g->hi > g->lo)) {
		*y = g->height / 2;
		return;
	}
	if (v < g->lo)
		v = g->lo;
	if (v > g->hi)
		v = g->hi;
	*y = HTML_SPARK_PAD + (g->hi - v) * (g->height - 2 * HTML_SPARK_PAD) / (g->hi - g->lo);
}

// Writes points[start .. start + count) as one shape.
static void
html_spark_run(struct buf *b, const struct html_sparkline *s, const struct html_spark_geom *g,
    size_t start, size_t count)
{
	double x, y;

	if (count == 1) {
		html_spark_xy(g, &s->points[start], &x, &y);
		buf_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"1.5\" fill=\"currentColor\"/>",
		    x, y);
		return;
	}
	buf_puts(b,
	    "<polyline fill=\"none\" stroke=\"currentColor\" stroke-width=\"1.5\" "
	    "vector-effect=\"non-scaling-stroke\" points=\"");
	for (size_t i = start; i < start + count; i++) {
		html_spark_xy(g, &s->points[i], &x, &y);
		buf_printf(b, "%s%.1f,%.1f", i == start ? "" : " ", x, y);
	}
	buf_puts(b, "\"/>");
}

void
html_sparkline(struct buf *b, const struct html_sparkline *s)
{
	struct html_spark_geom g = { .from = s->from, .span = s->to - s->from };
	unsigned width = s->width ? s->width : 240, height = s->height ? s->height : 40;
	size_t start = 0, count = 0;
	bool any = g.span > 0 && html_spark_range(s, &g.lo, &g.hi);

	g.width = width;
	g.height = height;
	html_svg_open(b, s->css_class ? s->css_class : "spark", width, height, "img", s->title);
	for (size_t i = 0; any && i < s->n; i++) {
		const struct html_point *p = &s->points[i];
		bool usable = html_point_usable(s, p);

		if (count > 0 &&
		    (!usable || p->at < s->points[i - 1].at ||
			(s->max_step_us > 0 && p->at - s->points[i - 1].at > s->max_step_us))) {
			html_spark_run(b, s, &g, start, count);
			count = 0;
		}
		if (!usable)
			continue;
		if (count++ == 0)
			start = i;
	}
	if (count > 0)
		html_spark_run(b, s, &g, start, count);
	buf_puts(b, "</svg>");
}

#define HTML_BAR_CELL 3 // a day's width in viewBox units
#define HTML_BAR_GAP 1  // between days
#define HTML_BAR_HEIGHT 30

void
html_uptime_bar(struct buf *b, const char *name, const struct status_calc_day *days, size_t n)
{
	struct buf label, prefix;
	struct status_calc_uptime u;
	unsigned width = n > 0 ? (unsigned)n * (HTML_BAR_CELL + HTML_BAR_GAP) - HTML_BAR_GAP : 0;

	buf_init(&label);
	buf_init(&prefix);
	buf_printf(&prefix, "%s, last %zu days", name ? name : "uptime", n);
	status_calc_uptime(days, n, &u);
	status_calc_uptime_label(&label, buf_cstr(&prefix), &u);
	html_svg_open(b, "uptime", width, HTML_BAR_HEIGHT, "group", buf_cstr(&label));
	for (size_t i = 0; i < n; i++) {
		char iso[HTML_ISO8601_SIZE];

		status_calc_uptime(&days[i], 1, &u);
		html_fmt_iso8601(iso, days[i].day);
		iso[10] = '\0'; // the date alone
		buf_reset(&label);
		status_calc_uptime_label(&label, iso, &u);
		buf_printf(b,
		    "<rect class=\"day day-%s\" x=\"%zu\" y=\"0\" width=\"%d\" height=\"%d\" ",
		    status_calc_day_state_name(status_calc_day_state(&u)),
		    i * (HTML_BAR_CELL + HTML_BAR_GAP), HTML_BAR_CELL, HTML_BAR_HEIGHT);
		buf_puts(b, "role=\"img\" aria-label=\"");
		html_escape(b, buf_cstr(&label));
		buf_puts(b, "\"><title>");
		html_escape(b, buf_cstr(&label));
		buf_puts(b, "</title></rect>");
	}
	buf_puts(b, "</svg>");
	buf_free(&label);
	buf_free(&prefix);
}
