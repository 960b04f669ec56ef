// SPDX-License-Identifier: Apache-2.0
//
// The one module that writes HTML (DESIGN.md §8, the public status page):
// a small builder over common/buf in which every dynamic string is escaped
// unless the code says otherwise at compile time.  PURE: no I/O, no clock
// reads (every time is a parameter, unix µs, UTC), no libevent, no store;
// it only appends to a caller's struct buf, which keeps ownership of it.
//
// The rules that keep it safe, each enforced here rather than by review:
//   - Text and attribute values are escaped (& < > " '), invalid UTF-8 and
//     control characters become U+FFFD: html_text, html_attr, html_elem.
//   - Tag and attribute names are string literals: html_open, html_close,
//     html_elem and HTML_A splice them between "" and "", so a
//     variable there does not compile.  A name that is not [a-z][a-z0-9-]*
//     is refused anyway (the attribute is dropped, the tag not written),
//     and so is <script>: the page runs no JS.
//   - Event-handler attributes (on*) are dropped: the page runs no JS.
//   - URL attributes (href, src, action, formaction, cite, poster, ...)
//     keep only http:// or https:// URLs or relative references
//     (html_url_ok); anything else -- javascript:, data:, vbscript:, a
//     URL with control characters or spaces -- drops the attribute.
//   - html_raw writes markup unescaped and takes ONLY a string literal: it
//     is a macro that splices its argument between "" and "", so
//     html_raw(b, s) with a variable does not compile.  Never write around
//     it (html_raw_ is not part of the API).  Markup from another producer
//     (a Markdown renderer) gets its own function here, next to the code
//     that makes it safe, not a way through html_raw.
#ifndef VANTAGE_HTML_H
#define VANTAGE_HTML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "status_calc.h"

// An attribute of html_open / html_elem.  A NULL value omits
// the attribute (handy for optional ones); "" writes name="".
struct html_attr {
	const char *name;
	const char *value;
};
#define HTML_A(name, value) ((struct html_attr){ "" name "", (value) })

// Appends s escaped for text content: & < > " ' as entities, invalid UTF-8
// and control characters (other than tab, LF, CR) as U+FFFD.  NULL: nothing.
void html_text(struct buf *b, const char *s);
// The same for a double-quoted attribute value (the builder always quotes).
void html_attr(struct buf *b, const char *s);

// <tag a="v" ...>; attributes are HTML_A(name, value), values escaped,
// URL attributes checked (see above).  Void elements (meta, link, img, br)
// are written with it too and simply not closed.
#define html_open(b, tag, ...)     \
	html_open_((b), "" tag "", \
	    (const struct html_attr[]){ { NULL, NULL }, ##__VA_ARGS__, { NULL, NULL } } + 1)
// </tag>
#define html_close(b, tag) html_close_((b), "" tag "")
// <tag ...>text</tag>, text escaped.
#define html_elem(b, tag, text, ...)       \
	html_elem_((b), "" tag "", (text), \
	    (const struct html_attr[]){ { NULL, NULL }, ##__VA_ARGS__, { NULL, NULL } } + 1)
// Markup written as is: a string literal only (see the header comment).
#define html_raw(b, literal) html_raw_((b), "" literal "")

// True for an http:// or https:// URL (scheme in any case) or a relative
// reference (no scheme: "/incidents/7", "?page=2", "#history"), with no
// space or control character anywhere; false for "" and everything else.
bool html_url_ok(const char *url);

// Number and time formatting.  The text helpers write plain text (nothing
// to escape); the html_ ones write markup.
#define HTML_ISO8601_SIZE 21 // "2026-12-03T17:50:11Z" and its NUL
// at_us as an HTML/ISO 8601 UTC date and time to the second.
void html_fmt_iso8601(char out[HTML_ISO8601_SIZE], int64_t at_us);
// A duration for people, truncated to its two largest units, zero units
// omitted: "45 s", "12 min 5 s", "1 h 12 min", "2 h", "3 d 4 h".  Negative:
// "0 s".
void html_fmt_duration(struct buf *b, int64_t us);
// A latency: "850 µs", "4.2 ms" (below 10 ms), "42 ms", "1.25 s".
void html_fmt_latency(struct buf *b, int64_t us);
// <time datetime="2026-12-03T17:50:11Z">2026-12-03 17:50 UTC</time>
void html_time(struct buf *b, int64_t at_us);
// <time datetime="PT4320S">1 h 12 min</time>
void html_duration(struct buf *b, int64_t us);
// A decimal integer.
void html_int(struct buf *b, long long v);

// A sparkline: N points in time order, with gaps.  A point that is not
// `known` (no data) ends a line, and so does a step between known points
// longer than max_step_us (0: only unknown points break lines).  Each
// contiguous run is one <polyline>; a run of one point is a <circle>, as a
// one-point polyline draws nothing.  Points outside [from, to] and values
// that are not finite are treated as unknown.
struct html_point {
	int64_t at; // unix µs
	double value;
	bool known;
};
struct html_sparkline {
	const struct html_point *points;
	size_t n;
	int64_t from, to;       // the x axis, unix µs (to > from)
	double y_min, y_max;    // the y axis; y_max <= y_min: the data's range
	int64_t max_step_us;    // see above
	unsigned width, height; // viewBox units (0: 240 x 40)
	const char *title;      // text label: <title> and aria-label, escaped
	const char *css_class;  // NULL: "spark"
};
// <svg viewBox="0 0 W H" role="img" aria-label="title"><title>..</title>
// <polyline points=".."/>..</svg>; coordinates with one decimal, y grows
// downwards (the largest value at the top).  No script, no style.
void html_sparkline(struct buf *b, const struct html_sparkline *s);

// A 90-day (or n-day) uptime bar, oldest day first: an <svg> whose <title>
// and aria-label say the whole range ("NAME, last 90 days: 99.95 % uptime,
// ..."), with one <rect> per day whose <title> and aria-label say that day
// (status_calc_uptime_label: uptime %, minutes down, minutes unknown,
// minutes of maintenance) and whose class is "day day-STATE" with STATE
// from status_calc_day_state_name: the label, not the colour, carries the
// state.  days[i].day is the start of the UTC day.  name is escaped.
void html_uptime_bar(struct buf *b, const char *name, const struct status_calc_day *days, size_t n);

// Not for callers: reached through the macros above, which check that the
// names and literals are literals.
void html_open_(struct buf *b, const char *tag, const struct html_attr *attrs);
void html_close_(struct buf *b, const char *tag);
void html_elem_(struct buf *b, const char *tag, const char *text, const struct html_attr *attrs);
void html_raw_(struct buf *b, const char *literal);

#endif
