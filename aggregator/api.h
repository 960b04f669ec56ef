// SPDX-License-Identifier: Apache-2.0
//
// The aggregator's JSON API of DESIGN.md §8 as far as it is built
// (health, targets with the latest result of every region, agents,
// incidents, silences), as routes on the HTTP server (http_server.h).
// Never blocks: what is in memory is answered at once; what needs the
// database is answered when the store calls back, or at once with 503 when
// the database is not connected or too many requests already wait for it.
// Errors are JSON {"error": "..."} with a proper status code.
#ifndef VANTAGE_API_H
#define VANTAGE_API_H

#include "agents.h"
#include "http_server.h"
#include "ingest.h"
#include "store_pg.h"
#include "targets.h"
#include "verdict.h"

struct api;

// Registers the API's routes on srv.  All pointers borrowed; srv must be
// freed before the API.
struct api *api_new(struct http_server *srv, struct agents *agents, struct target_table *targets,
    struct store *store, struct ingest *ingest, struct verdict *verdict);
void api_set_targets(struct api *api, struct target_table *targets);
void api_free(struct api *api);

#endif
