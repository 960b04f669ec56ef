// SPDX-License-Identifier: Apache-2.0
//
// What a channel receives for an alert: the request body of a webhook
// (generic JSON, Slack, PagerDuty Events v2) or the stdin of an exec
// command (the generic JSON).  Pure functions of the channel's settings and
// the outbox row; the notify outbox (notify.h) delivers what they return.
#ifndef VANTAGE_ALERT_FORMAT_H
#define VANTAGE_ALERT_FORMAT_H

#include <stdint.h>

#include "agg_conf.h"

// The body for channel ch (borrowed) of the event "event" of incident
// incident_id.  event_json is the outbox row's payload: the neutral event
// description built by incident.c (see incident.h).  Returns owned JSON
// text, or NULL when event_json is not a JSON object.
//   json, exec: event_json with "event", "incident_id" and "channel" set
//               from the row (the row's event wins over the payload's);
//   slack:      {"text": one summary line, Slack's &, <, > escaped};
//   pagerduty:  a trigger with dedup_key "vantage-incident-ID" and a
//               summary of at most 1024 bytes, or for *recovery events a
//               resolve with the same dedup_key and nothing else.
char *alert_format_body(const struct alert_conf *ch, int64_t incident_id, const char *event,
    const char *event_json);

#endif
