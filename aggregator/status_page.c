// SPDX-License-Identifier: Apache-2.0
//
// Status page rendering; see status_page.h.
#include "status_page.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <jansson.h>

#include "buf.h"
#include "clock.h"
#include "html.h"
#include "log.h"
#include "status_calc.h"
#include "wire.h"
#include "xmalloc.h"

#define STATUS_PAGE_MAX_AGE_US 1000000 // a rendering serves for a second
#define STATUS_PAGE_TITLE "Service status"
#define STATUS_PAGE_DAYS 90
#define STATUS_PAGE_LOAD_S 10 // the daily rollups are read again this often

// One row of rollup_day, as the page keeps it.
struct status_page_day {
	char key[WIRE_MAX_KEY + 1];
	struct status_calc_day d;
};

struct status_page_component;

struct status_page {
	const struct agg_conf *conf;
	struct target_table *targets;
	struct verdict *verdict;
	struct store *store;
	struct event *load_timer;
	bool loading;
	// The last STATUS_PAGE_DAYS days of every target (rollup_day), as last
	// read: ordered by key, then day.  Kept while the database is down.
	struct status_page_day *days;
	size_t n_days;
	// The latest snapshot and its renderings, at most a second old.
	int64_t rendered_at; // monotonic µs, 0: none yet
	int64_t as_of;       // wall µs of the snapshot
	struct status_page_component *cs;
	size_t n;
	enum status_calc_banner banner;
	struct buf html;
	struct buf status_json;
};

// Light and dark text on backgrounds that keep WCAG AA contrast (4.5:1 or
// more); every state is also written out, never shown by colour alone.
static const char status_page_css[] =
    ":root{color-scheme:light}\n"
    "body{margin:0;font:16px/1.5 system-ui,-apple-system,\"Segoe UI\",Roboto,sans-serif;"
    "color:#1b1f24;background:#f6f7f9}\n"
    "main{max-width:56rem;margin:0 auto;padding:1rem}\n"
    "h1{font-size:1.6rem;margin:.5rem 0 1rem}\n"
    "h2{font-size:1.1rem;margin:1.5rem 0 .5rem}\n"
    ".banner{padding:1rem 1.25rem;border-radius:.5rem;font-weight:600;font-size:1.2rem;"
    "border:2px solid}\n"
    ".banner p{margin:0}\n"
    ".banner .asof{font-weight:400;font-size:.9rem;margin-top:.25rem}\n"
    ".banner-none{background:#dff3e4;color:#0b3d1a;border-color:#2e7d46}\n"
    ".banner-minor{background:#fff4d6;color:#4a3600;border-color:#b38600}\n"
    ".banner-major{background:#ffe3cc;color:#5a2300;border-color:#c25e00}\n"
    ".banner-critical{background:#fde0e0;color:#5c0b0b;border-color:#b3261e}\n"
    ".banner-maintenance{background:#e1ecff;color:#0d2b5c;border-color:#2f5fb3}\n"
    "ul.components{list-style:none;margin:0;padding:0;background:#fff;border:1px solid #d4d8de;"
    "border-radius:.5rem}\n"
    "ul.components li{display:flex;flex-wrap:wrap;justify-content:space-between;gap:.25rem 1rem;"
    "padding:.75rem 1rem;border-top:1px solid #e3e6ea}\n"
    "ul.components li:first-child{border-top:0}\n"
    ".name{font-weight:600;overflow-wrap:anywhere}\n"
    ".state{padding:0 .5rem;border-radius:.25rem;font-size:.95rem}\n"
    ".state-operational{background:#dff3e4;color:#0b3d1a}\n"
    ".state-degraded_performance{background:#fff4d6;color:#4a3600}\n"
    ".state-partial_outage{background:#ffe3cc;color:#5a2300}\n"
    ".state-major_outage{background:#fde0e0;color:#5c0b0b}\n"
    ".state-under_maintenance{background:#e1ecff;color:#0d2b5c}\n"
    ".state-no_data{background:#eceef1;color:#33393f}\n"
    ".history{flex-basis:100%}\n"
    "svg.uptime{display:block;width:100%;height:1.75rem}\n"
    ".day-operational{fill:#2e7d46}.day-minor{fill:#c28a00}.day-major{fill:#b3261e}"
    ".day-maintenance{fill:#2f5fb3}.day-nodata{fill:#c9ced4}\n"
    ".uptime-text{display:flex;justify-content:space-between;font-size:.85rem;color:#4a5159}\n"
    "footer{margin:2rem 0 1rem;font-size:.9rem;color:#4a5159}\n";

struct status_page_component {
	size_t idx;
	size_t first_day, n_days; // its rows in status_page.days
	enum status_calc_state state;
	struct status_calc_input in;
	const char *regions[VERDICT_MAX_REGIONS];
};

// The component of target idx now: its quorum state and, when only some
// regions see it down, their names.
static void
status_page_component(struct status_page *sp, size_t idx, int64_t now,
    struct status_page_component *c)
{
	const struct verdict_target *vt = verdict_state(sp->verdict, idx);
	struct verdict_region parts[VERDICT_MAX_REGIONS];
	size_t n = 0;

	memset(c, 0, sizeof(*c));
	c->idx = idx;
	c->in.quorum = vt->last.state;
	if (vt->last.state == QSTATE_DEGRADED) {
		size_t np = verdict_parts(sp->verdict, idx, now, parts, VERDICT_MAX_REGIONS);

		for (size_t i = 0; i < np; i++)
			if (parts[i].vote == VOTE_DOWN)
				c->regions[n++] = parts[i].name;
	}
	c->in.regions = c->regions;
	c->in.n_regions = n;
	c->state = status_calc_component(&c->in);
}

// The component's last STATUS_PAGE_DAYS days: one cell per day, each with
// its label, and the uptime over them with the formula it follows.
static void
status_page_history(struct status_page *sp, struct buf *b, const struct status_page_component *c)
{
	struct status_calc_day rows[STATUS_PAGE_DAYS], window[STATUS_PAGE_DAYS];
	struct status_calc_uptime u;
	int64_t today = sp->as_of - sp->as_of % STATUS_CALC_DAY_US;
	size_t n = c->n_days < STATUS_PAGE_DAYS ? c->n_days : STATUS_PAGE_DAYS;
	const struct target_conf *tc = targets_conf(sp->targets, c->idx);

	for (size_t i = 0; i < n; i++)
		rows[i] = sp->days[c->first_day + c->n_days - n + i].d;
	status_calc_days_window(rows, n, today, window, STATUS_PAGE_DAYS);
	status_calc_uptime(window, STATUS_PAGE_DAYS, &u);
	html_open(b, "div", HTML_A("class", "history"));
	html_uptime_bar(b, tc->key, window, STATUS_PAGE_DAYS);
	html_open(b, "div", HTML_A("class", "uptime-text"));
	html_elem(b, "span", "90 days ago");
	html_open(b, "span");
	status_calc_uptime_text(b, &u);
	if (u.has_data)
		html_raw(b, " uptime");
	html_close(b, "span");
	html_elem(b, "span", "today");
	html_close(b, "div");
	html_close(b, "div");
}

static void
status_page_list(struct status_page *sp, struct buf *b, const char *group,
    const struct status_page_component *cs, size_t n)
{
	html_elem(b, "h2", group != NULL ? group : "Services");
	html_open(b, "ul", HTML_A("class", "components"));
	for (size_t i = 0; i < n; i++) {
		const struct target_conf *tc = targets_conf(sp->targets, cs[i].idx);
		const char *g = tc->group;
		struct buf label;
		char cls[64];

		if ((g == NULL) != (group == NULL) || (g != NULL && strcmp(g, group) != 0))
			continue;
		buf_init(&label);
		status_calc_component_label(&label, &cs[i].in);
		snprintf(cls, sizeof(cls), "component component-%s",
		    status_calc_state_name(cs[i].state));
		html_open(b, "li", HTML_A("class", cls),
		    HTML_A("data-state", status_calc_state_name(cs[i].state)));
		html_elem(b, "span", tc->key, HTML_A("class", "name"));
		snprintf(cls, sizeof(cls), "state state-%s", status_calc_state_name(cs[i].state));
		html_elem(b, "span", buf_cstr(&label), HTML_A("class", cls));
		status_page_history(sp, b, &cs[i]);
		html_close(b, "li");
		buf_free(&label);
	}
	html_close(b, "ul");
}

static void
status_page_render_html(struct status_page *sp, int64_t now)
{
	size_t n = sp->n;
	const struct status_page_component *cs = sp->cs;
	enum status_calc_banner banner = sp->banner;
	struct buf *b = &sp->html;
	char cls[64];
	bool ungrouped = false;

	for (size_t i = 0; i < n; i++)
		ungrouped = ungrouped || targets_conf(sp->targets, i)->group == NULL;
	buf_reset(b);
	html_raw(b,
	    "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
	    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
	html_elem(b, "title", STATUS_PAGE_TITLE);
	html_raw(b, "\n<link rel=\"stylesheet\" href=\"/status.css\">\n</head>\n<body>\n<main>\n");
	html_elem(b, "h1", STATUS_PAGE_TITLE);
	snprintf(cls, sizeof(cls), "banner banner-%s", status_calc_banner_indicator(banner));
	html_open(b, "section", HTML_A("class", cls), HTML_A("aria-label", "overall status"));
	html_elem(b, "p", status_calc_banner_text(banner));
	html_open(b, "p", HTML_A("class", "asof"));
	html_raw(b, "As of ");
	html_time(b, now);
	html_close(b, "p");
	html_close(b, "section");
	// Groups in the order their first component appears in the config.
	for (size_t i = 0; i < n; i++) {
		const char *g = targets_conf(sp->targets, i)->group;
		bool seen = false;

		for (size_t j = 0; j < i && g != NULL && !seen; j++) {
			const char *h = targets_conf(sp->targets, j)->group;

			seen = h != NULL && strcmp(h, g) == 0;
		}
		if (g != NULL && !seen)
			status_page_list(sp, b, g, cs, n);
	}
	if (ungrouped)
		status_page_list(sp, b, NULL, cs, n);
	html_open(b, "footer");
	html_raw(b,
	    "States are decided by a quorum of probing regions, not by one probe. "
	    "Uptime = time up / (time up + time down), per UTC day from the regions' "
	    "results; time without data and maintenance time are shown apart and "
	    "counted in neither.");
	html_close(b, "footer");
	html_raw(b, "\n</main>\n</body>\n</html>\n");
}

// Statuspage's /api/v2/status.json: the page and its indicator.
static void
status_page_render_status(struct status_page *sp)
{
	char at[HTML_ISO8601_SIZE];
	json_t *doc;
	char *text;

	html_fmt_iso8601(at, sp->as_of);
	doc = json_pack("{s:{s:s,s:s},s:{s:s,s:s}}", "page", "name", STATUS_PAGE_TITLE,
	    "updated_at", at, "status", "indicator", status_calc_banner_indicator(sp->banner),
	    "description", status_calc_banner_text(sp->banner));
	text = json_dumps(doc, JSON_INDENT(2));
	buf_reset(&sp->status_json);
	buf_puts(&sp->status_json, text);
	buf_putc(&sp->status_json, '\n');
	free(text);
	json_decref(doc);
}

// A new snapshot of every component when the last is a second old.
static void
status_page_refresh(struct status_page *sp)
{
	int64_t mono = clock_mono_us();
	enum status_calc_state *states;

	if (sp->rendered_at != 0 && mono - sp->rendered_at < STATUS_PAGE_MAX_AGE_US)
		return;
	sp->rendered_at = mono;
	sp->as_of = clock_wall_us();
	sp->n = targets_count(sp->targets);
	free(sp->cs);
	sp->cs = xcalloc(sp->n ? sp->n : 1, sizeof(*sp->cs));
	states = xcalloc(sp->n ? sp->n : 1, sizeof(*states));
	for (size_t i = 0; i < sp->n; i++) {
		status_page_component(sp, i, sp->as_of, &sp->cs[i]);
		states[i] = sp->cs[i].state;
	}
	// Each target's run of rows (they come ordered by key).
	for (size_t r = 0; r < sp->n_days;) {
		size_t end = r + 1;
		int idx;

		while (end < sp->n_days && strcmp(sp->days[end].key, sp->days[r].key) == 0)
			end++;
		idx = targets_find(sp->targets, sp->days[r].key);
		if (idx >= 0) {
			sp->cs[idx].first_day = r;
			sp->cs[idx].n_days = end - r;
		}
		r = end;
	}
	sp->banner = status_calc_banner(states, sp->n);
	free(states);
	status_page_render_html(sp, sp->as_of);
	status_page_render_status(sp);
}

static void
status_page_send(struct evhttp_request *req, const char *type, const void *data, size_t len)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	struct evbuffer *out = evbuffer_new();

	evhttp_add_header(h, "Content-Type", type);
	evhttp_add_header(h, "Cache-Control", "public, max-age=5");
	evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
	evhttp_add_header(h, "Content-Security-Policy",
	    "default-src 'none'; style-src 'self'; img-src 'self'");
	evbuffer_add(out, data, len);
	evhttp_send_reply(req, HTTP_OK, "OK", out);
	evbuffer_free(out);
}

static void
status_page_index(struct http_call *call, void *arg)
{
	struct status_page *sp = arg;

	status_page_refresh(sp);
	status_page_send(call->req, "text/html; charset=utf-8", sp->html.data, sp->html.len);
}

static void
status_page_status_json(struct http_call *call, void *arg)
{
	struct status_page *sp = arg;

	status_page_refresh(sp);
	status_page_send(call->req, "application/json", sp->status_json.data, sp->status_json.len);
}

// The colours of a badge's right half (white text on them keeps 4.5:1).
static const char *
status_page_badge_colour(enum status_calc_state st)
{
	switch (st) {
	case STATUS_CALC_OPERATIONAL:
		return "#1e7b34";
	case STATUS_CALC_DEGRADED_PERFORMANCE:
		return "#8a6100";
	case STATUS_CALC_PARTIAL_OUTAGE:
		return "#a84b00";
	case STATUS_CALC_MAJOR_OUTAGE:
		return "#b3261e";
	case STATUS_CALC_UNDER_MAINTENANCE:
		return "#2f5fb3";
	default:
		return "#5b636b";
	}
}

// /badge/KEY.svg (a flat badge: the key, then its state in words) and
// /badge/KEY.json (shields.io's endpoint format).  404 for an unknown key.
static void
status_page_badge(struct http_call *call, void *arg)
{
	struct status_page *sp = arg;
	const char *file = http_server_param(&call->params, "file");
	size_t len = file != NULL ? strlen(file) : 0;
	bool svg = len > 4 && strcmp(file + len - 4, ".svg") == 0;
	bool json = len > 5 && strcmp(file + len - 5, ".json") == 0;
	char key[WIRE_MAX_KEY + 1];
	const struct status_page_component *c = NULL;
	struct buf label, b;
	size_t klen = svg ? len - 4 : json ? len - 5 : 0;

	if ((!svg && !json) || klen == 0 || klen > WIRE_MAX_KEY) {
		http_server_error(call->req, HTTP_NOTFOUND,
		    "a badge is /badge/KEY.svg or /badge/KEY.json");
		return;
	}
	memcpy(key, file, klen);
	key[klen] = '\0';
	status_page_refresh(sp);
	for (size_t i = 0; i < sp->n && c == NULL; i++)
		if (strcmp(targets_conf(sp->targets, sp->cs[i].idx)->key, key) == 0)
			c = &sp->cs[i];
	if (c == NULL) {
		http_server_error(call->req, HTTP_NOTFOUND, "no such component");
		return;
	}
	buf_init(&label);
	buf_init(&b);
	status_calc_component_label(&label, &c->in);
	if (json) {
		json_t *doc = json_pack("{s:i,s:s,s:s,s:s}", "schemaVersion", 1, "label", key,
		    "message", buf_cstr(&label), "color", status_page_badge_colour(c->state) + 1);
		char *text = json_dumps(doc, JSON_COMPACT);

		status_page_send(call->req, "application/json", text, strlen(text));
		free(text);
		json_decref(doc);
	} else {
		// About 7 px a character at 11 px Verdana, 10 px of padding each.
		int lw = (int)klen * 7 + 10, rw = (int)label.len * 7 + 10;
		char num[32];

		html_raw(&b,
		    "<svg xmlns=\"http://www.w3.org/2000/svg\" height=\"20\" role=\"img\" width=\"");
		snprintf(num, sizeof(num), "%d", lw + rw);
		html_text(&b, num);
		html_raw(&b, "\" aria-label=\"");
		html_attr(&b, key);
		html_raw(&b, ": ");
		html_attr(&b, buf_cstr(&label));
		html_raw(&b, "\"><title>");
		html_text(&b, key);
		html_raw(&b, ": ");
		html_text(&b, buf_cstr(&label));
		html_raw(&b, "</title><rect width=\"");
		snprintf(num, sizeof(num), "%d", lw);
		html_text(&b, num);
		html_raw(&b, "\" height=\"20\" fill=\"#454b52\"/><rect x=\"");
		html_text(&b, num);
		html_raw(&b, "\" width=\"");
		snprintf(num, sizeof(num), "%d", rw);
		html_text(&b, num);
		html_raw(&b, "\" height=\"20\" fill=\"");
		html_attr(&b, status_page_badge_colour(c->state));
		html_raw(&b,
		    "\"/><g fill=\"#fff\" font-family=\"Verdana,DejaVu Sans,sans-serif\" "
		    "font-size=\"11\"><text x=\"5\" y=\"14\">");
		html_text(&b, key);
		html_raw(&b, "</text><text x=\"");
		snprintf(num, sizeof(num), "%d", lw + 5);
		html_text(&b, num);
		html_raw(&b, "\" y=\"14\">");
		html_text(&b, buf_cstr(&label));
		html_raw(&b, "</text></g></svg>\n");
		status_page_send(call->req, "image/svg+xml", b.data, b.len);
	}
	buf_free(&label);
	buf_free(&b);
}

static void
status_page_style(struct http_call *call, void *arg)
{
	status_page_send(call->req, "text/css; charset=utf-8", status_page_css,
	    sizeof(status_page_css) - 1);
}

static const char sql_days[] =
    "SELECT t.key, (extract(epoch FROM d.day::timestamp) * 1000000)::bigint,"
    " d.up_s, d.down_s, d.unknown_s, d.maintenance_s"
    " FROM rollup_day d JOIN targets t ON t.id = d.target_id"
    " WHERE d.day > current_date - "
    "90"
    " AND t.retired_at IS NULL"
    " ORDER BY t.key COLLATE \"C\", d.day";

static int64_t
status_page_seconds(const struct store_result *r, int row, int col)
{
	const char *v = store_result_value(r, row, col);

	return v != NULL ? strtoll(v, NULL, 10) : 0;
}

static void
status_page_on_days(int status, const struct store_result *r, void *arg)
{
	struct status_page *sp = arg;
	int rows;

	sp->loading = false;
	if (status < 0)
		return; // the database is down: the page keeps the days it has
	rows = store_result_rows(r);
	free(sp->days);
	sp->days = xcalloc(rows > 0 ? (size_t)rows : 1, sizeof(*sp->days));
	sp->n_days = 0;
	for (int i = 0; i < rows; i++) {
		struct status_page_day *d = &sp->days[sp->n_days];
		const char *key = store_result_value(r, i, 0);

		if (key == NULL || strlen(key) > WIRE_MAX_KEY)
			continue;
		snprintf(d->key, sizeof(d->key), "%s", key);
		d->d.day = status_page_seconds(r, i, 1);
		d->d.up_us = status_page_seconds(r, i, 2) * 1000000;
		d->d.down_us = status_page_seconds(r, i, 3) * 1000000;
		d->d.unknown_us = status_page_seconds(r, i, 4) * 1000000;
		d->d.maintenance_us = status_page_seconds(r, i, 5) * 1000000;
		sp->n_days++;
	}
	sp->rendered_at = 0; // the next request renders the new days
}

static void
status_page_load(evutil_socket_t fd, short what, void *arg)
{
	struct status_page *sp = arg;

	if (sp->loading)
		return;
	sp->loading = true;
	store_query(sp->store, sql_days, 0, NULL, status_page_on_days, sp);
}

struct status_page *
status_page_new(struct http_server *srv, struct event_base *base, struct store *store,
    const struct agg_conf *conf, struct target_table *targets, struct verdict *verdict)
{
	struct status_page *sp = xcalloc(1, sizeof(*sp));
	struct timeval every = { STATUS_PAGE_LOAD_S, 0 };

	sp->conf = conf;
	sp->targets = targets;
	sp->verdict = verdict;
	buf_init(&sp->html);
	buf_init(&sp->status_json);
	sp->store = store;
	sp->load_timer = event_new(base, -1, EV_PERSIST, status_page_load, sp);
	if (sp->load_timer == NULL)
		fatalx("could not create the status page's timer");
	event_add(sp->load_timer, &every);
	status_page_load(-1, 0, sp);
	http_server_route(srv, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD, "/", status_page_index, 0, sp);
	http_server_route(srv, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD, "/status.css", status_page_style,
	    0, sp);
	http_server_route(srv, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD, "/api/v2/status.json",
	    status_page_status_json, 0, sp);
	http_server_route(srv, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD, "/badge/{file}", status_page_badge,
	    0, sp);
	return sp;
}

void
status_page_reconfigure(struct status_page *sp, const struct agg_conf *conf,
    struct target_table *targets)
{
	sp->conf = conf;
	sp->targets = targets;
	sp->rendered_at = 0;
}

void
status_page_free(struct status_page *sp)
{
	if (sp == NULL)
		return;
	// After the loop ended: the store never calls back a query in flight.
	event_free(sp->load_timer);
	buf_free(&sp->html);
	buf_free(&sp->status_json);
	free(sp->cs);
	free(sp->days);
	free(sp);
}
