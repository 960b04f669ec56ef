// SPDX-License-Identifier: Apache-2.0
//
// ZeroMQ on the libevent loop.  A ZeroMQ socket's ZMQ_FD is edge-triggered:
// it signals only that ZMQ_EVENTS may have changed, so every wake-up (and
// every send, which can swallow an edge) must drain the socket until
// ZMQ_EVENTS has no POLLIN, or messages sit unread forever.  zloop does that
// and hands each complete multipart message to a callback.  It also owns the
// socket options common to both ends and the monitor socket that reports
// connects and disconnects.  Only uplink.c, ingest.c and the aggregator's
// ZAP handler (zap.c) use it for sockets, the two main.c for the context,
// and curvekey.c for CurveZMQ keys.  Outside tests it is the one includer
// of zmq.h: callers see void * sockets and zloop's own names for the few
// ZeroMQ constants they need, each equal to libzmq's (zloop.c checks that
// at compile time), so every wrapper is a plain call.
#ifndef VANTAGE_ZLOOP_H
#define VANTAGE_ZLOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

// A ZAP request (zap.c) has 7 frames, or 8 for PLAIN; agent traffic 1 or 2.
#define ZLOOP_MAX_PARTS 8

// Socket types (ZMQ_*).
enum { ZLOOP_PAIR = 0, ZLOOP_REP = 4, ZLOOP_DEALER = 5, ZLOOP_ROUTER = 6 };

// Socket options (ZMQ_*).
enum {
	ZLOOP_LINGER = 17,
	ZLOOP_RECONNECT_IVL = 18,
	ZLOOP_RECONNECT_IVL_MAX = 21,
	ZLOOP_SNDHWM = 23,
	ZLOOP_RCVHWM = 24,
	ZLOOP_ROUTER_MANDATORY = 33,
	ZLOOP_IMMEDIATE = 39,
	ZLOOP_CURVE_SERVER = 47,
	ZLOOP_CURVE_PUBLICKEY = 48,
	ZLOOP_CURVE_SECRETKEY = 49,
	ZLOOP_CURVE_SERVERKEY = 50,
	ZLOOP_ZAP_DOMAIN = 55,
	ZLOOP_HANDSHAKE_IVL = 66,
	ZLOOP_HEARTBEAT_TTL = 76,
};

// Monitor events (ZMQ_EVENT_*) and the one protocol error callers name.
enum {
	ZLOOP_EVENT_CONNECTED = 0x0001,
	ZLOOP_EVENT_ACCEPTED = 0x0020,
	ZLOOP_EVENT_DISCONNECTED = 0x0200,
	ZLOOP_EVENT_HANDSHAKE_FAILED_NO_DETAIL = 0x0800,
	ZLOOP_EVENT_HANDSHAKE_SUCCEEDED = 0x1000,
	ZLOOP_EVENT_HANDSHAKE_FAILED_PROTOCOL = 0x2000,
	ZLOOP_EVENT_HANDSHAKE_FAILED_AUTH = 0x4000,
};
#define ZLOOP_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH 0x11000002

// One received frame, read with zloop_frame_*: a zmq_msg_t under another
// name (same size and alignment), so that parts[i] indexes a message's
// frames without a copy.
struct zloop_frame {
	_Alignas(sizeof(void *)) unsigned char opaque[64];
};

// The frame's bytes and length; valid as long as the frame.
const void *zloop_frame_data(const struct zloop_frame *f);
size_t zloop_frame_size(const struct zloop_frame *f);
// A metadata property of the connection the frame came on ("Peer-Address",
// "User-Id"), or NULL.
const char *zloop_frame_meta(const struct zloop_frame *f, const char *property);

// parts[i] are valid only during the call.  A message with more than
// ZLOOP_MAX_PARTS frames is dropped and reported with nparts = -1.
typedef void (*zloop_msg_cb)(const struct zloop_frame *parts, int nparts, void *arg);
// Socket monitor events (ZMQ_EVENT_*), with the endpoint or peer address.
typedef void (*zloop_event_cb)(uint16_t event, uint32_t value, const char *addr, void *arg);

struct zloop;

// The process's ZeroMQ context (zmq_ctx_new), or NULL; zloop_ctx_term
// waits until every socket of it is closed.
void *zloop_ctx_new(void);
void zloop_ctx_term(void *zctx);
// Like strerror, and also knows libzmq's own error numbers.
const char *zloop_strerror(int err);

// A ZeroMQ socket with the options both ends share: no linger, ZMTP
// heartbeats every second (a peer silent for 5 s is disconnected), and
// inbound messages capped at max_msg bytes.  Returns NULL with errno.
void *zloop_socket(void *zctx, int type, int64_t max_msg);
// A socket with no option set (an inproc helper such as the ZAP handler's).
void *zloop_socket_plain(void *zctx, int type);
// Sets an int option; a failure is logged (the default stays in force).
void zloop_set_int(void *sock, int opt, int value);
// Sets a bytes option (CurveZMQ keys, ZAP domain).  Returns 0, or -1 with
// errno.
int zloop_set_bytes(void *sock, int opt, const void *value, size_t len);
// zmq_bind, zmq_connect, zmq_disconnect: 0, or -1 with errno.
int zloop_bind(void *sock, const char *endpoint);
int zloop_connect(void *sock, const char *endpoint);
int zloop_disconnect(void *sock, const char *endpoint);
// Closes a socket (after zloop_free of its watcher).  Accepts NULL.
void zloop_close(void *sock);

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

// --- CurveZMQ key arithmetic, for common/curvekey ---

// True if this libzmq has CurveZMQ (it was built with libsodium).
bool zloop_has_curve(void);
// Z85 texts of CURVEKEY_Z85_LEN + 1 bytes.  Return 0, or -1 with errno.
int zloop_curve_keypair(char *pub_z85, char *secret_z85);
int zloop_curve_public(char *pub_z85, const char *secret_z85);
// Z85 text <-> bytes (a multiple of 5 characters, of 4 bytes).
void zloop_z85_decode(uint8_t *out, const char *z85);
void zloop_z85_encode(char *out, const uint8_t *data, size_t len);

#endif
