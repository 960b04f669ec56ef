// SPDX-License-Identifier: Apache-2.0
//
// Blameless post-mortem drafts (DESIGN.md §6).  When an outage resolves,
// one query gathers everything the draft needs -- the incident, its
// timeline, its alerts and the per-region result statistics around it --
// as a single JSON document; postmortem_render turns that document into
// Markdown with three sections (What happened / What went right / What we
// will do to prevent it), and the draft is stored in incidents.postmortem_md
// with postmortem_state 'draft'.  A post-mortem that people have published
// is never overwritten, and the third section is never filled in by
// software: it is for the team.  Everything from outside (keys, reasons,
// error texts, channel names) is escaped, so no stored text can change
// the document's structure.
#ifndef VANTAGE_POSTMORTEM_H
#define VANTAGE_POSTMORTEM_H

#include <stdint.h>

#include "store_pg.h"

// Queues the gathering query and, once it returns, the write of the draft.
// Returns at once; failures are logged (the incident simply has no draft).
// store is borrowed and must outlive the queued statements.
void postmortem_draft(struct store *store, int64_t incident_id);

// The Markdown of a gathered document (owned by the caller, free()), or
// NULL when doc has no usable "incident" object.  Pure: no I/O, no clock.
// The document, with times as ISO 8601 UTC ("2025-03-01T10:00:00.25",
// a trailing "Z" allowed) and durations in microseconds:
//   { "incident": { "id", "target", "url"|null, "kind", "started_at",
//                   "detected_at", "resolved_at"|null, "regions": [NAME],
//                   "flapping" },
//     "timeline": [ { "at", "kind", "region"|null, "message" } ],
//     "alerts":   [ { "channel", "event", "created_at", "sent_at"|null,
//                     "attempts", "last_error"|null } ],
//     "failures": [ { "region", "reason" (proto Reason), "http_status",
//                     "count", "error"|null } ],
//     "latency":  [ { "region", "before_p50_us"|null, "before_p95_us"|null,
//                     "before_n", "during_p50_us"|null,
//                     "during_p95_us"|null, "during_n", "during_down" } ],
//     "healthy":  [ NAME ] }
struct json_t; // jansson's json_t: callers that build a doc include jansson.h
char *postmortem_render(const struct json_t *doc);

#endif
