// SPDX-License-Identifier: Apache-2.0
//
// The public status page (DESIGN.md §8), first part: `/` shows the overall
// banner and every component, grouped by `group` in config order, in
// Statuspage's vocabulary (status_calc.h), each with its 90-day uptime bar
// (rollup_day, read every 10 s), and `/status.css` its one style sheet;
// `/api/v2/status.json` and `/badge/KEY.svg|json` from the same snapshot.  Rendered from memory (the verdict's state, never a query), at
// most once a second, so the page answers while everyone refreshes it
// during an outage and while the database is down.  Complete without
// JavaScript; every dynamic string goes through html.h's escaping.
#ifndef VANTAGE_STATUS_PAGE_H
#define VANTAGE_STATUS_PAGE_H

#include "agg_conf.h"
#include <event2/event.h>

#include "http_server.h"
#include "store_pg.h"
#include "targets.h"
#include "verdict.h"

struct status_page;

// All borrowed; registers its routes on srv.  The daily rollups behind the
// uptime bars are read from store at once and every 10 s.
struct status_page *status_page_new(struct http_server *srv, struct event_base *base,
    struct store *store, const struct agg_conf *conf, struct target_table *targets,
    struct verdict *verdict);
void status_page_reconfigure(struct status_page *sp, const struct agg_conf *conf,
    struct target_table *targets);
// Only after the event loop has ended (a query may be in flight before).
void status_page_free(struct status_page *sp);

#endif
