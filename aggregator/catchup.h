// SPDX-License-Identifier: Apache-2.0
//
// Catch-up after a database outage.  While PostgreSQL is down the
// aggregator acknowledges nothing, so each agent stops sending once its
// window of unacknowledged batches is full and spools the rest; when the
// database is back the agents resend their backlog, oldest first.  During
// all that time the newest result the aggregator holds from an agent says
// nothing about the target, and judging by it would declare every target
// blind (and a late DOWN would open an incident in the past).  This module
// says when that period is over: the database is up again and every
// connected agent has been acknowledged through what it reported having
// produced in its first heartbeat after the reconnection.
#ifndef VANTAGE_CATCHUP_H
#define VANTAGE_CATCHUP_H

#include <stdbool.h>
#include <stdint.h>

#include "agents.h"

// Gives up waiting for agents that never catch up (a spool much larger
// than the database can absorb quickly): verdicts resume anyway.
#define CATCHUP_MAX_US (300 * 1000000LL)

struct catchup;

// agents is borrowed.
struct catchup *catchup_new(struct agents *agents);
void catchup_free(struct catchup *c);
// Called every second with the database state; returns true while
// verdicts must be held.  now is wall time (µs).
bool catchup_update(struct catchup *c, bool database_up, int64_t now);

#endif
