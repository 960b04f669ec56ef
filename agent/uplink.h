// SPDX-License-Identifier: Apache-2.0
//
// The agent's link to its aggregator: one DEALER socket (through
// common/zloop), the Hello/Welcome handshake on every (re)connection, result
// batching, the send window over the spool, cumulative Acks, heartbeats, and
// the Config and ProbeNow messages coming back.  Every result gets its seq
// here, in the order probes finish.  A DOWN result or any retry/ProbeNow
// result is sent at once; others wait at most UPLINK_BATCH_DELAY_MS to fill
// a batch.
#ifndef VANTAGE_UPLINK_H
#define VANTAGE_UPLINK_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/event.h>

#include "agent_conf.h"
#include "probe.h"
#include "vantage.pb-c.h"

#define UPLINK_BATCH_MAX 1000
#define UPLINK_BATCH_DELAY_MS 200
#define UPLINK_WINDOW 16 // batches in flight without an Ack

struct uplink_handlers {
	// A new Config (valid only during the call).
	void (*config)(const Vantage__Config *config, void *arg);
	// ProbeNow: probe these targets at once.
	void (*probe_now)(const char *const *keys, size_t n, void *arg);
	void *arg;
};

struct uplink;

// conf, base and zctx are borrowed.  Returns NULL after logging why.
struct uplink *uplink_new(struct event_base *base, void *zctx, const struct agent_conf *conf,
    const struct uplink_handlers *handlers);
void uplink_free(struct uplink *u);
// Applies the configuration cached by an earlier run (if any), so that
// probing starts before the aggregator is reached.  Call once the config
// handler can take it.
void uplink_start(struct uplink *u);
// Assigns the next seq and queues the result, marked with the agent
// state set last (the state when the probe completed).
void uplink_add_result(struct uplink *u, const struct probe_result *r);
// The self-check's state (VANTAGE__AGENT_STATE__*) and its reason (copied,
// cut at WIRE_MAX_ERROR bytes).  A change is reported by a heartbeat at
// once rather than at the next 5 s tick.
void uplink_set_state(struct uplink *u, int state, const char *reason);
// Seals the pending batch into the spool and sends what the window allows.
void uplink_flush(struct uplink *u);
// Reports probes that hang (advisory: dropped when not connected).
void uplink_send_suspect(struct uplink *u, const char *const *keys, size_t n);
uint64_t uplink_produced(const struct uplink *u);
uint64_t uplink_acked_seq(const struct uplink *u);
uint64_t uplink_epoch(const struct uplink *u);

#endif
