// SPDX-License-Identifier: Apache-2.0
//
// The aggregator's HTTP side on libevent's evhttp: health, and the JSON API
// of DESIGN.md §8 as far as it is built (targets with the latest result of
// every region, agents, incidents, silences).  Never blocks: what is in
// memory is answered at once; what needs the database is answered when the
// store calls back, or at once with 503 when the database is not connected
// or too many requests already wait for it.  Errors are JSON
// {"error": "..."} with a proper status code.
#ifndef VANTAGE_API_H
#define VANTAGE_API_H

#include <event2/event.h>

#include "agents.h"
#include "ingest.h"
#include "store_pg.h"
#include "targets.h"
#include "verdict.h"

struct api;

// Binds addr ("HOST:PORT"); with addr NULL it listens nowhere and serves
// only what api_accept_fd hands it.  All pointers borrowed.  NULL after
// logging why.
struct api *api_new(struct event_base *base, const char *addr, struct agents *agents,
    struct target_table *targets, struct store *store, struct ingest *ingest,
    struct verdict *verdict);
// Serves HTTP on the connections accepted from listen_fd, a listening
// stream socket the caller made (any family; the API then owns and closes
// it).  This is how the fuzzer drives the real request path through a
// socket that has no address on any network.  Returns 0, or -1 (fd not
// taken).
int api_accept_fd(struct api *api, evutil_socket_t listen_fd);
void api_set_targets(struct api *api, struct target_table *targets);
// Tokens for writes (borrowed; swapped on reload).
struct auth;
void api_set_auth(struct api *api, struct auth *auth);
void api_free(struct api *api);

#endif
