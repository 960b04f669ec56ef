// SPDX-License-Identifier: Apache-2.0
//
// ZeroMQ <-> libevent adapter; see zloop.h.  Never blocks: every zmq call is
// made with ZMQ_DONTWAIT, and the number of messages handled per wake-up is
// bounded so one busy socket cannot starve the rest of the loop.
#include "zloop.h"

#include <errno.h>
#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "log.h"
#include "xmalloc.h"

#define ZLOOP_BURST 256 // messages per wake-up before yielding to the loop

// zloop.h's names are libzmq's numbers, so the wrappers pass them through.
_Static_assert(ZLOOP_PAIR == ZMQ_PAIR && ZLOOP_REP == ZMQ_REP && ZLOOP_DEALER == ZMQ_DEALER &&
	ZLOOP_ROUTER == ZMQ_ROUTER,
    "zloop socket types");
_Static_assert(ZLOOP_LINGER == ZMQ_LINGER && ZLOOP_RECONNECT_IVL == ZMQ_RECONNECT_IVL &&
	ZLOOP_RECONNECT_IVL_MAX == ZMQ_RECONNECT_IVL_MAX && ZLOOP_SNDHWM == ZMQ_SNDHWM &&
	ZLOOP_RCVHWM == ZMQ_RCVHWM && ZLOOP_ROUTER_MANDATORY == ZMQ_ROUTER_MANDATORY &&
	ZLOOP_IMMEDIATE == ZMQ_IMMEDIATE && ZLOOP_CURVE_SERVER == ZMQ_CURVE_SERVER &&
	ZLOOP_CURVE_PUBLICKEY == ZMQ_CURVE_PUBLICKEY &&
	ZLOOP_CURVE_SECRETKEY == ZMQ_CURVE_SECRETKEY &&
	ZLOOP_CURVE_SERVERKEY == ZMQ_CURVE_SERVERKEY && ZLOOP_ZAP_DOMAIN == ZMQ_ZAP_DOMAIN &&
	ZLOOP_HANDSHAKE_IVL == ZMQ_HANDSHAKE_IVL && ZLOOP_HEARTBEAT_TTL == ZMQ_HEARTBEAT_TTL,
    "zloop socket options");
_Static_assert(ZLOOP_EVENT_CONNECTED == ZMQ_EVENT_CONNECTED &&
	ZLOOP_EVENT_ACCEPTED == ZMQ_EVENT_ACCEPTED &&
	ZLOOP_EVENT_DISCONNECTED == ZMQ_EVENT_DISCONNECTED &&
	ZLOOP_EVENT_HANDSHAKE_FAILED_NO_DETAIL == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL &&
	ZLOOP_EVENT_HANDSHAKE_SUCCEEDED == ZMQ_EVENT_HANDSHAKE_SUCCEEDED &&
	ZLOOP_EVENT_HANDSHAKE_FAILED_PROTOCOL == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL &&
	ZLOOP_EVENT_HANDSHAKE_FAILED_AUTH == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH &&
	ZLOOP_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH,
    "zloop monitor events");
_Static_assert(sizeof(struct zloop_frame) == sizeof(zmq_msg_t) &&
	alignof(struct zloop_frame) >= alignof(zmq_msg_t),
    "a zloop_frame is a zmq_msg_t");

// The frame as what it is.  zmq_msg_data and friends take a non-const
// message but do not change it.
static zmq_msg_t *
zloop_msg(const struct zloop_frame *f)
{
	return (zmq_msg_t *)(uintptr_t)f;
}

const void *
zloop_frame_data(const struct zloop_frame *f)
{
	return zmq_msg_data(zloop_msg(f));
}

size_t
zloop_frame_size(const struct zloop_frame *f)
{
	return zmq_msg_size(zloop_msg(f));
}

const char *
zloop_frame_meta(const struct zloop_frame *f, const char *property)
{
	return zmq_msg_gets(zloop_msg(f), property);
}

void *
zloop_ctx_new(void)
{
	return zmq_ctx_new();
}

void
zloop_ctx_term(void *zctx)
{
	zmq_ctx_term(zctx);
}

const char *
zloop_strerror(int err)
{
	return zmq_strerror(err);
}

void *
zloop_socket_plain(void *zctx, int type)
{
	return zmq_socket(zctx, type);
}

int
zloop_set_bytes(void *sock, int opt, const void *value, size_t len)
{
	return zmq_setsockopt(sock, opt, value, len);
}

int
zloop_bind(void *sock, const char *endpoint)
{
	return zmq_bind(sock, endpoint);
}

int
zloop_connect(void *sock, const char *endpoint)
{
	return zmq_connect(sock, endpoint);
}

int
zloop_disconnect(void *sock, const char *endpoint)
{
	return zmq_disconnect(sock, endpoint);
}

void
zloop_close(void *sock)
{
	if (sock != NULL)
		zmq_close(sock);
}

bool
zloop_has_curve(void)
{
	return zmq_has("curve") != 0;
}

int
zloop_curve_keypair(char *pub_z85, char *secret_z85)
{
	return zmq_curve_keypair(pub_z85, secret_z85);
}

int
zloop_curve_public(char *pub_z85, const char *secret_z85)
{
	return zmq_curve_public(pub_z85, secret_z85);
}

void
zloop_z85_decode(uint8_t *out, const char *z85)
{
	zmq_z85_decode(out, z85);
}

void
zloop_z85_encode(char *out, const uint8_t *data, size_t len)
{
	zmq_z85_encode(out, data, len);
}

struct zloop_mon {
	void *sock;
	struct event *ev;
	zloop_event_cb cb;
	void *arg;
};

struct zloop {
	void *sock;
	struct event *ev;    // ZMQ_FD readable
	struct event *again; // re-run when a burst stopped with input left
	zloop_msg_cb cb;
	void *arg;
	struct zloop_mon mon;
};

void
zloop_set_int(void *sock, int opt, int value)
{
	if (zmq_setsockopt(sock, opt, &value, sizeof(value)) < 0)
		log_warnx("could not set ZeroMQ option %d: %s", opt, zmq_strerror(errno));
}

void *
zloop_socket(void *zctx, int type, int64_t max_msg)
{
	void *sock = zmq_socket(zctx, type);

	if (sock == NULL)
		return NULL;
	zloop_set_int(sock, ZMQ_LINGER, 0);
	zloop_set_int(sock, ZMQ_HEARTBEAT_IVL, 1000);
	zloop_set_int(sock, ZMQ_HEARTBEAT_TIMEOUT, 5000);
	if (zmq_setsockopt(sock, ZMQ_MAXMSGSIZE, &max_msg, sizeof(max_msg)) < 0)
		log_warnx("could not limit ZeroMQ messages: %s", zmq_strerror(errno));
	return sock;
}

static int
zloop_has_input(void *sock)
{
	int events = 0;
	size_t len = sizeof(events);

	if (zmq_getsockopt(sock, ZMQ_EVENTS, &events, &len) < 0)
		return 0;
	return (events & ZMQ_POLLIN) != 0;
}

// Receives one multipart message into parts; returns the number of frames,
// 0 when nothing is waiting, -1 for a message of too many frames (read to
// its end and discarded).
static int
zloop_recv_multipart(void *sock, zmq_msg_t *parts)
{
	int n = 0, more = 1, overflow = 0;
	size_t len = sizeof(more);

	while (more) {
		zmq_msg_t spill, *m = n < ZLOOP_MAX_PARTS ? &parts[n] : &spill;

		zmq_msg_init(m);
		if (zmq_msg_recv(m, sock, ZMQ_DONTWAIT) < 0) {
			// Frames of one message arrive together, so this only
			// happens when nothing is waiting or the socket closes.
			zmq_msg_close(m);
			break;
		}
		if (m == &spill) {
			zmq_msg_close(m);
			overflow = 1;
		} else {
			n++;
		}
		zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &len);
	}
	if (overflow || more) {
		for (int i = 0; i < n; i++)
			zmq_msg_close(&parts[i]);
		return overflow ? -1 : 0;
	}
	return n;
}

static void
zloop_drain(struct zloop *z)
{
	zmq_msg_t parts[ZLOOP_MAX_PARTS];

	for (int handled = 0; handled < ZLOOP_BURST; handled++) {
		int n;

		if (!zloop_has_input(z->sock))
			return;
		n = zloop_recv_multipart(z->sock, parts);
		if (n == 0)
			return;
		z->cb((const struct zloop_frame *)parts, n, z->arg);
		if (n < 0)
			continue;
		for (int i = 0; i < n; i++)
			zmq_msg_close(&parts[i]);
	}
	// Input left: come back after other events had their turn.
	event_active(z->again, 0, 0);
}

static void
zloop_on_fd(evutil_socket_t fd, short what, void *arg)
{
	zloop_drain(arg);
}

struct zloop *
zloop_new(struct event_base *base, void *sock, zloop_msg_cb cb, void *arg)
{
	struct zloop *z = xcalloc(1, sizeof(*z));
	int fd;
	size_t len = sizeof(fd);

	if (zmq_getsockopt(sock, ZMQ_FD, &fd, &len) < 0) {
		log_warnx("could not get the descriptor of a ZeroMQ socket: %s",
		    zmq_strerror(errno));
		free(z);
		return NULL;
	}
	z->sock = sock;
	z->cb = cb;
	z->arg = arg;
	z->ev = event_new(base, fd, EV_READ | EV_PERSIST, zloop_on_fd, z);
	z->again = event_new(base, -1, 0, zloop_on_fd, z);
	event_add(z->ev, NULL);
	// Messages may already be queued before the first edge.
	event_active(z->again, 0, 0);
	return z;
}

static void
zloop_on_monitor(evutil_socket_t fd, short what, void *arg)
{
	struct zloop *z = arg;

	while (zloop_has_input(z->mon.sock)) {
		zmq_msg_t head, addr;
		char where[256];
		uint16_t event;
		uint32_t value;

		zmq_msg_init(&head);
		zmq_msg_init(&addr);
		if (zmq_msg_recv(&head, z->mon.sock, ZMQ_DONTWAIT) < 0 ||
		    zmq_msg_recv(&addr, z->mon.sock, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&head);
			zmq_msg_close(&addr);
			return;
		}
		if (zmq_msg_size(&head) >= 6) {
			size_t alen = zmq_msg_size(&addr);

			memcpy(&event, zmq_msg_data(&head), sizeof(event));
			memcpy(&value, (char *)zmq_msg_data(&head) + 2, sizeof(value));
			if (alen >= sizeof(where))
				alen = sizeof(where) - 1;
			memcpy(where, zmq_msg_data(&addr), alen);
			where[alen] = '\0';
			z->mon.cb(event, value, where, z->mon.arg);
		}
		zmq_msg_close(&head);
		zmq_msg_close(&addr);
	}
}

int
zloop_monitor(struct zloop *z, void *zctx, uint16_t events, zloop_event_cb cb, void *arg)
{
	// A counter, not z's address: a socket re-created at the same address
	// must not meet the endpoint of its predecessor's monitor.
	static unsigned monitors;
	char endpoint[64];
	int fd, linger = 0;
	size_t len = sizeof(fd);

	snprintf(endpoint, sizeof(endpoint), "inproc://zloop-monitor-%u", ++monitors);
	if (zmq_socket_monitor(z->sock, endpoint, events) < 0)
		return -1;
	z->mon.sock = zmq_socket(zctx, ZMQ_PAIR);
	if (z->mon.sock == NULL)
		return -1;
	zmq_setsockopt(z->mon.sock, ZMQ_LINGER, &linger, sizeof(linger));
	if (zmq_connect(z->mon.sock, endpoint) < 0 ||
	    zmq_getsockopt(z->mon.sock, ZMQ_FD, &fd, &len) < 0) {
		zmq_close(z->mon.sock);
		z->mon.sock = NULL;
		return -1;
	}
	z->mon.cb = cb;
	z->mon.arg = arg;
	z->mon.ev = event_new(event_get_base(z->ev), fd, EV_READ | EV_PERSIST, zloop_on_monitor, z);
	event_add(z->mon.ev, NULL);
	event_active(z->mon.ev, EV_READ, 0);
	return 0;
}

void
zloop_kick(struct zloop *z)
{
	event_active(z->again, 0, 0);
	if (z->mon.ev != NULL)
		event_active(z->mon.ev, EV_READ, 0);
}

int
zloop_send(struct zloop *z, const void *const *data, const size_t *len, int nparts)
{
	int rc = 0;

	for (int i = 0; i < nparts; i++) {
		int flags = ZMQ_DONTWAIT | (i + 1 < nparts ? ZMQ_SNDMORE : 0);

		if (zmq_send(z->sock, data[i], len[i], flags) < 0) {
			rc = -1;
			break;
		}
	}
	zloop_kick(z);
	return rc;
}

void
zloop_free(struct zloop *z)
{
	if (z == NULL)
		return;
	if (z->mon.sock != NULL) {
		zmq_socket_monitor(z->sock, NULL, 0);
		event_free(z->mon.ev);
		zmq_close(z->mon.sock);
	}
	event_free(z->ev);
	event_free(z->again);
	free(z);
}
