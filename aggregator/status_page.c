// SPDX-License-Identifier: Apache-2.0
//
// Status page rendering; see status_page.h.
#include "status_page.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>

#include "buf.h"
#include "clock.h"
#include "html.h"
#include "status_calc.h"
#include "xmalloc.h"

#define STATUS_PAGE_MAX_AGE_US 1000000 // a rendering serves for a second
#define STATUS_PAGE_TITLE "Service status"

struct status_page {
	const struct agg_conf *conf;
	struct target_table *targets;
	struct verdict *verdict;
	struct buf html;     // the latest rendering
	int64_t rendered_at; // monotonic µs, 0: none yet
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
    "footer{margin:2rem 0 1rem;font-size:.9rem;color:#4a5159}\n";

struct status_page_component {
	size_t idx;
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
		html_close(b, "li");
		buf_free(&label);
	}
	html_close(b, "ul");
}

static void
status_page_render(struct status_page *sp, int64_t now)
{
	size_t n = targets_count(sp->targets);
	struct status_page_component *cs = xcalloc(n ? n : 1, sizeof(*cs));
	enum status_calc_state *states = xcalloc(n ? n : 1, sizeof(*states));
	enum status_calc_banner banner;
	struct buf *b = &sp->html;
	char cls[64];
	bool ungrouped = false;

	for (size_t i = 0; i < n; i++) {
		status_page_component(sp, i, now, &cs[i]);
		states[i] = cs[i].state;
		ungrouped = ungrouped || targets_conf(sp->targets, i)->group == NULL;
	}
	banner = status_calc_banner(states, n);
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
	html_raw(b, "States are decided by a quorum of probing regions, not by one probe.");
	html_close(b, "footer");
	html_raw(b, "\n</main>\n</body>\n</html>\n");
	free(cs);
	free(states);
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
	int64_t mono = clock_mono_us();

	if (sp->rendered_at == 0 || mono - sp->rendered_at >= STATUS_PAGE_MAX_AGE_US) {
		status_page_render(sp, clock_wall_us());
		sp->rendered_at = mono;
	}
	status_page_send(call->req, "text/html; charset=utf-8", sp->html.data, sp->html.len);
}

static void
status_page_style(struct http_call *call, void *arg)
{
	status_page_send(call->req, "text/css; charset=utf-8", status_page_css,
	    sizeof(status_page_css) - 1);
}

struct status_page *
status_page_new(struct http_server *srv, const struct agg_conf *conf, struct target_table *targets,
    struct verdict *verdict)
{
	struct status_page *sp = xcalloc(1, sizeof(*sp));

	sp->conf = conf;
	sp->targets = targets;
	sp->verdict = verdict;
	buf_init(&sp->html);
	http_server_route(srv, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD, "/", status_page_index, 0, sp);
	http_server_route(srv, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD, "/status.css", status_page_style,
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
	buf_free(&sp->html);
	free(sp);
}
