// SPDX-License-Identifier: Apache-2.0
//
// The aggregator's HTTP side on libevent's evhttp: health, and the JSON API
// of DESIGN.md §8 as far as it is built (targets with the latest result of
// every region, agents).  Reads only; never blocks: everything it shows is in
// memory.  Errors are JSON {"error": "..."} with a proper status code.
#ifndef VANTAGE_HTTP_API_H
#define VANTAGE_HTTP_API_H

#include <event2/event.h>

#include "agents.h"
#include "ingest.h"
#include "store_pg.h"
#include "targets.h"
#include "verdict.h"

struct http_api;

// Binds addr ("HOST:PORT").  All pointers borrowed.  NULL after logging why.
struct http_api *http_api_new(struct event_base *base, const char *addr, struct agents *agents,
    struct target_table *targets, struct store *store, struct ingest *ingest,
    struct verdict *verdict);
void http_api_set_targets(struct http_api *api, struct target_table *targets);
// Tokens for writes (borrowed; swapped on reload).
struct auth;
void http_api_set_auth(struct http_api *api, struct auth *auth);
void http_api_free(struct http_api *api);

#endif
