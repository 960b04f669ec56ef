// SPDX-License-Identifier: Apache-2.0
//
// The notify outbox: delivers what incident.c writes to alert_outbox in
// the same statement as the state change.  It reads due rows, has each
// formatted for its channel (alert_format.h), hands it to the channel's
// kind -- a webhook POST (libcurl multi on libevent through
// common/http_client) or a command with the body on its stdin
// (common/spawn, with a timeout) -- without blocking the loop, and records
// the outcome: sent_at on success, else attempts+1 and next_attempt_at
// with exponential backoff.  Each channel has its own queue and at most one
// delivery in flight, so a hung receiver delays no other channel.  Kinds
// are a table inside notify.c, so that status-page subscribers (mail,
// webhooks) reuse this queue rather than grow one of their own.
//
// Delivery is at least once: an alert delivered just before a crash, or
// whose outcome could not be recorded, is sent again.  Alerts of one
// incident reach a channel in outbox order (a PagerDuty resolve never
// overtakes its trigger): a later one waits until the earlier one is sent.
// Commands run as children in their own process group; the process must
// ignore SIGPIPE (main does).
#ifndef VANTAGE_NOTIFY_H
#define VANTAGE_NOTIFY_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "agg_conf.h"
#include "store_pg.h"

struct notify;

// All borrowed; conf may be swapped with notify_reconfigure.  store may be
// NULL: no outbox, only notify_deliver (tests).  Returns an owned object
// (notify_free).
struct notify *notify_new(struct event_base *base, struct store *store,
    const struct agg_conf *conf);
// Abandons deliveries in flight (children are killed): their rows stay
// unsent and go out again after a restart.  Accepts NULL.
void notify_free(struct notify *n);
void notify_reconfigure(struct notify *n, const struct agg_conf *conf);
// New rows were written: look for due ones now rather than at the next poll.
// Accepts NULL.
void notify_kick(struct notify *n);

// The wait before the next attempt after a failed one, from the attempts
// made before it: 1 s, 2 s, 4 s ... at most 5 min.
uint32_t notify_backoff_ms(int attempts);

// Delivers body to channel ch now, outside the outbox (tests, and a way to
// try a channel by hand): a POST for a webhook, or the command with body on
// its stdin.  ch is borrowed for the call only, body is copied.  cb runs
// once, from the loop, with 0 (2xx, or exit status 0) or -1 and a printable
// reason.  Returns 0, or -1 with err set when nothing could start (cb never
// runs).
typedef void (*notify_delivery_cb)(int status, const char *error, void *arg);
int notify_deliver(struct notify *n, const struct alert_conf *ch, const char *body,
    notify_delivery_cb cb, void *arg, char *err, size_t errlen);

struct notify_stats {
	uint64_t sent;
	uint64_t failed_attempts;
	uint64_t in_flight;
};
void notify_get_stats(const struct notify *n, struct notify_stats *out);

#endif
