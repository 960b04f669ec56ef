// SPDX-License-Identifier: Apache-2.0
//
// Alert delivery from the durable outbox (alert_outbox, written by
// incident.c in the same statement as the state change).  The sender reads
// due rows, formats each for its channel (generic JSON webhook, Slack,
// PagerDuty Events v2, or exec of a command with the event JSON on stdin),
// delivers without blocking the loop (libcurl multi on libevent through
// common/http_client, or a child process with a timeout), and records the
// outcome: sent_at on success, else attempts+1 and next_attempt_at with
// exponential backoff.  Each channel has its own queue and at most one
// delivery in flight, so a hung receiver delays no other channel.
//
// Delivery is at least once: an alert delivered just before a crash, or
// whose outcome could not be recorded, is sent again.  Alerts of one
// incident reach a channel in outbox order (a PagerDuty resolve never
// overtakes its trigger): a later one waits until the earlier one is sent.
// Exec channels run as children in their own process group; the process
// must ignore SIGPIPE (main does), and alert_new watches SIGCHLD on base.
#ifndef VANTAGE_ALERT_H
#define VANTAGE_ALERT_H

#include <stdint.h>

#include <event2/event.h>

#include "agg_conf.h"
#include "store_pg.h"

struct alert;

// All borrowed; conf may be swapped with alert_reconfigure.  store may be
// NULL: no outbox, only alert_deliver (tests).
struct alert *alert_new(struct event_base *base, struct store *store, const struct agg_conf *conf);
// Abandons deliveries in flight (children are killed): their rows stay
// unsent and go out again after a restart.
void alert_free(struct alert *a);
void alert_reconfigure(struct alert *a, const struct agg_conf *conf);
// New rows were written: look for due ones now rather than at the next poll.
void alert_kick(struct alert *a);

// The request body a webhook channel receives for an event (JSON text,
// owned by the caller).  event_json is the outbox row's payload: the
// neutral event description built by incident.c (see incident.h).
char *alert_format_body(const struct alert_conf *ch, int64_t incident_id, const char *event,
    const char *event_json);

// The wait before the next attempt after a failed one, from the attempts
// made before it: 1 s, 2 s, 4 s ... at most 5 min.
uint32_t alert_backoff_ms(int attempts);

// Delivers body to channel ch now, outside the outbox (tests, and a way to
// try a channel by hand): a POST for a webhook, or the command with body on
// its stdin.  ch is borrowed for the call only.  cb runs once, from the
// loop, with 0 (2xx, or exit status 0) or -1 and a printable reason.
// Returns 0, or -1 with err set when nothing could start (cb never runs).
typedef void (*alert_delivery_cb)(int status, const char *error, void *arg);
int alert_deliver(struct alert *a, const struct alert_conf *ch, const char *body,
    alert_delivery_cb cb, void *arg, char *err, size_t errlen);

struct alert_stats {
	uint64_t sent;
	uint64_t failed_attempts;
	uint64_t in_flight;
};
void alert_get_stats(const struct alert *a, struct alert_stats *out);

#endif
