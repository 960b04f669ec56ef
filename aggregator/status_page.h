// SPDX-License-Identifier: Apache-2.0
//
// The public status page (DESIGN.md §8), first part: `/` shows the overall
// banner and every component, grouped by `group` in config order, in
// Statuspage's vocabulary (status_calc.h), and `/status.css` its one style
// sheet.  Rendered from memory (the verdict's state, never a query), at
// most once a second, so the page answers while everyone refreshes it
// during an outage and while the database is down.  Complete without
// JavaScript; every dynamic string goes through html.h's escaping.
#ifndef VANTAGE_STATUS_PAGE_H
#define VANTAGE_STATUS_PAGE_H

#include "agg_conf.h"
#include "http_server.h"
#include "targets.h"
#include "verdict.h"

struct status_page;

// All borrowed; registers its routes on srv.
struct status_page *status_page_new(struct http_server *srv, const struct agg_conf *conf,
    struct target_table *targets, struct verdict *verdict);
void status_page_reconfigure(struct status_page *sp, const struct agg_conf *conf,
    struct target_table *targets);
void status_page_free(struct status_page *sp);

#endif
