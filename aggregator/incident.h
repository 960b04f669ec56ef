// SPDX-License-Identifier: Apache-2.0
//
// Incidents: what the verdict's state changes mean to people; the third
// stage of ingest -> store -> verdict -> incident -> notify.  An outage
// (target DOWN: quorum of regions), a regional incident (DEGRADED) and
// monitoring blind (UNKNOWN) each open and resolve an incident row, with
// timeline events and, for every alert channel subscribed to the event and
// not silenced, an alert_outbox row -- all in ONE statement, so a crash
// loses none and never alerts for a change that was not recorded.  The one
// open incident of a kind per target is found in the database by
// (target, kind), never by an id held in memory, so an aggregator restart
// continues the same incident: on start, open outages are restored into
// the quorum state and no second "opened" alert is sent.  An outage soon
// after the last one (quorum.c, reopen_window) reopens it with one
// "flapping" alert instead of an outage alert per flap, and an outage's
// recovery alert goes out once the target has settled (settle_for).
//
// Outbox payload (the neutral event every channel formats from), JSON:
//   { "event": "outage"|"recovery"|"regional"|"regional_recovery"|"blind"|
//              "blind_recovery"|"flapping",
//     "target": KEY, "group": TEXT|null, "url": TEXT|null,
//     "kind": "outage"|"regional"|"blind",
//     "state": "open"|"resolved",
//     "started_at": ISO8601, "detected_at": ISO8601,
//     "resolved_at": ISO8601|null,
//     "regions_down": [NAME...], "regions_up": [NAME...],
//     "regions_abstaining": [NAME...],
//     "reasons": { REGION: "503 http_status", ... },
//     "summary": "api is down in 3 of 3 regions (eu-west: 503, ...)" }
#ifndef VANTAGE_INCIDENT_H
#define VANTAGE_INCIDENT_H

#include <stdbool.h>
#include <stdint.h>

#include "agg_conf.h"
#include "quorum.h"
#include "store_pg.h"
#include "incident_state.h"
#include "targets.h"
#include "verdict.h"

struct incidents;

// The stages around incidents, as main.c connects them.  queued() after a
// statement that may have queued alerts (to wake the notify outbox);
// resolved() after an outage was resolved (to draft its post-mortem);
// restore_open() and restore_resolved() give what incident_restore found
// to the verdict (verdict_restore_open, verdict_restore_resolved), whose
// state it is.  Any may be NULL.
struct incident_hooks {
	void (*queued)(void *arg);
	void (*resolved)(int64_t incident_id, void *arg);
	void (*restore_open)(size_t target_idx, enum quorum_state state, bool flapping, void *arg);
	void (*restore_resolved)(size_t target_idx, int64_t resolved_at, bool flapping,
	    bool recovery_owed, void *arg);
	void *arg;
};

// All borrowed.
struct incidents *incident_new(struct store *store, const struct agg_conf *conf,
    struct target_table *targets, const struct incident_hooks *hooks);
void incident_free(struct incidents *ins);
void incident_reconfigure(struct incidents *ins, const struct agg_conf *conf,
    struct target_table *targets);
// Reads the open incidents (and each target's latest outage of the last
// day) and hands them to the restore hooks: an open outage keeps its
// target DOWN until it recovers.  done runs once that is in place; the
// verdict must not evaluate before.
void incident_restore(struct incidents *ins, void (*done)(void *arg), void *arg);

// The verdict's sink (verdict.h, struct verdict_sink), arg the incidents.
// changed: opens, resolves and settles incidents.
void incident_verdict_changed(size_t target_idx, const struct quorum_outcome *out,
    const struct verdict_region *regions, size_t n_regions, int64_t now, void *arg);
// region: a region failing or recovering while an outage or regional
// incident is open goes into its timeline.
void incident_verdict_region(size_t target_idx, const struct verdict_region *region,
    enum quorum_vote previous, void *arg);
// evaluated: opens a regional incident once its grace period ended
// (DEGRADED lasted longer than confirming an outage would take).
void incident_verdict_evaluated(size_t target_idx, const struct quorum_outcome *out,
    const struct verdict_region *regions, size_t n_regions, int64_t now, void *arg);

#endif
