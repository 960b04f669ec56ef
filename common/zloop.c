// SPDX-License-Identifier: Apache-2.0
//
// ZeroMQ <-> libevent adapter; see zloop.h.  Never blocks: every zmq call is
// made with ZMQ_DONTWAIT, and the number of messages handled per wake-up is
// bounded so one busy socket cannot starve the rest of the loop.
#include "zloop.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "xmalloc.h"

#define ZLOOP_BURST 256 // messages per wake-up before yielding to the loop

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
		log_warnx("cannot set ZeroMQ option %d: %s", opt, zmq_strerror(errno));
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
		log_warnx("cannot limit ZeroMQ messages: %s", zmq_strerror(errno));
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
		z->cb(parts, n, z->arg);
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
		log_warnx("cannot get the descriptor of a ZeroMQ socket: %s", zmq_strerror(errno));
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
