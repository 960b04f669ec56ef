// SPDX-License-Identifier: Apache-2.0
//
// ZeroMQ on the libevent loop.  A ZeroMQ socket's ZMQ_FD is edge-triggered:
// it signals only that ZMQ_EVENTS may have changed, so every wake-up (and
// every send, which can swallow an edge) must drain the socket until
// ZMQ_EVENTS has no POLLIN, or messages sit unread forever.  zloop does that
// and hands each complete multipart message to a callback.  It also owns the
// socket options common to both ends and the monitor socket that reports
// connects and disconnects.  Only uplink.c, ingest.c and the aggregator's
// ZAP handler (zap.c) use it.
#ifndef VANTAGE_ZLOOP_H
#define VANTAGE_ZLOOP_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <zmq.h>

// A ZAP request (zap.c) has 7 frames, or 8 for PLAIN; agent traffic 1 or 2.
#define ZLOOP_MAX_PARTS 8

// parts[i] are valid only during the call.  A message with more than
// ZLOOP_MAX_PARTS frames is dropped and reported with nparts = -1.
typedef void (*zloop_msg_cb)(zmq_msg_t *parts, int nparts, void *arg);
// Socket monitor events (ZMQ_EVENT_*), with the endpoint or peer address.
typedef void (*zloop_event_cb)(uint16_t event, uint32_t value, const char *addr, void *arg);

struct zloop;

// A ZeroMQ socket with the options both ends share: no linger, ZMTP
// heartbeats every second (a peer silent for 5 s is disconnected), and
// inbound messages capped at max_msg bytes.  Returns NULL with errno.
void *zloop_socket(void *zctx, int type, int64_t max_msg);
// Sets an int option; a failure is logged (the default stays in force).
void zloop_set_int(void *sock, int opt, int value);

// Watches sock (not owned) on base.  The callback runs for every message.
struct zloop *zloop_new(struct event_base *base, void *sock, zloop_msg_cb cb, void *arg);
// Also reports monitor events of sock (connected, disconnected, handshake).
int zloop_monitor(struct zloop *z, void *zctx, uint16_t events, zloop_event_cb cb, void *arg);
// Re-checks the socket after the caller sent on it (a send can consume the
// edge that announced pending input).
void zloop_kick(struct zloop *z);
// Stops watching; does not close the socket.  Accepts NULL.
void zloop_free(struct zloop *z);

// Sends nparts frames without blocking.  Returns 0, or -1 with errno
// (EAGAIN at the high-water mark, EHOSTUNREACH for a gone ROUTER peer).
int zloop_send(struct zloop *z, const void *const *data, const size_t *len, int nparts);

#endif
