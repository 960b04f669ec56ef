// SPDX-License-Identifier: Apache-2.0
//
// Ingest: the aggregator's ROUTER socket.  Speaks the agent protocol
// (Hello -> Welcome + Config, ResultBatch -> rows in the store -> Ack after
// COMMIT, Heartbeat -> registry), drops duplicates by seq against the
// stream's progress, and counts and drops every bad frame without ever
// exiting because of what a peer sent.  The first stage of ingest -> store
// -> verdict -> incident -> notify: after each COMMIT it reports the
// targets that got results (hooks.committed); on a DOWN result or a
// Suspect it asks whether the other agents probing the target should probe
// it now (hooks.probe_now, the verdict's decision), and sends them
// ProbeNow, so an outage is confirmed in seconds.
#ifndef VANTAGE_INGEST_H
#define VANTAGE_INGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "agents.h"
#include "agg_conf.h"
#include "curvekey.h"
#include "store_pg.h"
#include "targets.h"
#include "zap.h"

struct ingest;

// The next stage, as main.c connects it (the verdict).  Either may be NULL.
struct ingest_hooks {
	// Results for these targets (table indexes; repeats possible) are
	// committed.
	void (*committed)(const uint32_t *targets, size_t n, int64_t now, void *arg);
	// Target idx failed from one agent: true to ask the others now.
	bool (*probe_now)(size_t idx, int64_t now, void *arg);
	void *arg;
};

struct ingest_stats {
	uint64_t results_received;    // valid results in valid batches
	uint64_t results_duplicate;   // seq already stored or queued
	uint64_t results_unknown;     // target key not configured (stored with target 0)
	uint64_t batches_dropped;     // valid but refused (no Hello yet, resync)
	uint64_t bad_frames;          // malformed, oversized or invalid
	uint64_t probe_now_sent;      // ProbeNow messages sent to agents
	uint64_t hello_name_mismatch; // Hello naming another agent than the key (also a bad frame)
	struct zap_stats auth;        // handshakes admitted and refused (zeros without CurveZMQ)
};

// All borrowed; hooks and secret are copied.  With zap (CurveZMQ; NULL: insecure) the
// socket is a CurveZMQ server with secret, and zap must be bound already.
// Binds conf->listen_zmq; returns NULL after logging why.
struct ingest *ingest_new(struct event_base *base, void *zctx, const struct agg_conf *conf,
    struct store *store, struct agents *agents, struct target_table *targets,
    const struct ingest_hooks *hooks, struct zap *zap, const struct curvekey *secret);
// Closes the socket and binds a new one: every agent reconnects (and goes
// through ZAP again).  How a revoked key loses its connection.
void ingest_drop_connections(struct ingest *in);
// Stops receiving and sending; streams stay for the store's callbacks
// still to come.  ingest_free after the store is idle.
void ingest_close(struct ingest *in);
void ingest_free(struct ingest *in);
// Switches to a reloaded config and target table and pushes the new Config
// to every connected agent.
void ingest_reconfigure(struct ingest *in, const struct agg_conf *conf,
    struct target_table *targets);
void ingest_get_stats(const struct ingest *in, struct ingest_stats *out);

#endif
