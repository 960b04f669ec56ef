// SPDX-License-Identifier: Apache-2.0
//
// Keeps the rollups of aggregator/sql/004_rollups.sql current and applies
// retention, all through store_query on the loop: every minute it has the
// database recompute the minute rollups of the last few minutes (so late
// results are covered; idempotent) and the day rows those minutes belong
// to; every hour, and once at start, it re-rolls the last day hour by hour
// (results replayed from agents' spools arrive hours late), drops results
// partitions older than retention.raw and rollup rows older than
// retention.rollup.  It must never touch the ingest path: nothing here runs
// per result.
#ifndef VANTAGE_ROLLUP_H
#define VANTAGE_ROLLUP_H

#include <event2/event.h>

#include "agg_conf.h"
#include "store_pg.h"

struct rollup;

// Starts the minute timer on base and queues the first hourly pass at
// once.  store must outlive the rollup; conf is read, not kept.  Owned by
// the caller (rollup_free accepts NULL).
struct rollup *rollup_new(struct event_base *base, struct store *store,
    const struct agg_conf *conf);
// Takes the retention of a reloaded configuration.
void rollup_reconfigure(struct rollup *r, const struct agg_conf *conf);
void rollup_free(struct rollup *r);

#endif
