// SPDX-License-Identifier: Apache-2.0
//
// libcurl multi_socket <-> libevent; see curl_ev.h.  Watched sockets are
// kept in a table by descriptor.  The table, not curl's socketp, is the
// truth: it lets the close callback stop watching a socket before the
// descriptor is closed and its number reused (epoll would otherwise lose
// the registration of the next socket with that number).
#include "curl_ev.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "xmalloc.h"

// One descriptor's slot.  ev is made the first time the number is seen and
// kept (unwatched) when the socket goes, for the next socket of that number.
struct curl_ev_sock {
	struct event *ev;
	bool watched;
};

struct curl_ev {
	struct event_base *base;
	CURLM *multi;
	struct event *timer;
	struct curl_ev_sock *socks; // by descriptor
	size_t n_socks;
	curl_ev_done_cb done;
	void *arg;
};

// Hands every finished transfer to done.  The message is read out before
// the handle is removed (removal invalidates it), and the handle is removed
// before done, which may reuse or free it.
static void
curl_ev_check_done(struct curl_ev *ce)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(ce->multi, &left)) != NULL) {
		CURL *easy = msg->easy_handle;
		CURLcode result = msg->data.result;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_multi_remove_handle(ce->multi, easy);
		ce->done(easy, result, ce->arg);
	}
}

static void
curl_ev_on_socket(evutil_socket_t fd, short what, void *arg)
{
	struct curl_ev *ce = arg;
	int flags = 0, running;

	if (what & EV_READ)
		flags |= CURL_CSELECT_IN;
	if (what & EV_WRITE)
		flags |= CURL_CSELECT_OUT;
	curl_multi_socket_action(ce->multi, fd, flags, &running);
	curl_ev_check_done(ce);
}

static void
curl_ev_on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct curl_ev *ce = arg;
	int running;

	curl_multi_socket_action(ce->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	curl_ev_check_done(ce);
}

static void
curl_ev_unwatch(struct curl_ev *ce, curl_socket_t s)
{
	if (s < 0 || (size_t)s >= ce->n_socks || !ce->socks[s].watched)
		return;
	event_del(ce->socks[s].ev);
	ce->socks[s].watched = false;
}

static int
curl_ev_socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct curl_ev *ce = userp;
	struct curl_ev_sock *sock;
	short kind;

	if (s < 0)
		return -1;
	if (what == CURL_POLL_REMOVE) {
		curl_ev_unwatch(ce, s);
		return 0;
	}
	if ((size_t)s >= ce->n_socks) {
		size_t n = ce->n_socks ? ce->n_socks : 64;

		while (n <= (size_t)s)
			n *= 2;
		ce->socks = xreallocarray(ce->socks, n, sizeof(*ce->socks));
		memset(ce->socks + ce->n_socks, 0, (n - ce->n_socks) * sizeof(*ce->socks));
		ce->n_socks = n;
	}
	kind = EV_PERSIST | ((what & CURL_POLL_IN) ? EV_READ : 0) |
	    ((what & CURL_POLL_OUT) ? EV_WRITE : 0);
	sock = &ce->socks[s];
	if (sock->ev == NULL) {
		sock->ev = event_new(ce->base, s, kind, curl_ev_on_socket, ce);
		if (sock->ev == NULL)
			fatalx("could not watch a libcurl socket");
	} else {
		// event_assign wants an event that is not pending.
		event_del(sock->ev);
		if (event_assign(sock->ev, ce->base, s, kind, curl_ev_on_socket, ce) < 0)
			fatalx("could not watch a libcurl socket");
	}
	if (event_add(sock->ev, NULL) < 0)
		fatalx("could not watch a libcurl socket");
	sock->watched = true;
	return 0;
}

static int
curl_ev_close_cb(void *clientp, curl_socket_t s)
{
	curl_ev_unwatch(clientp, s);
	return close(s);
}

static int
curl_ev_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct curl_ev *ce = userp;
	struct timeval tv;

	if (timeout_ms < 0) {
		evtimer_del(ce->timer);
		return 0;
	}
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	evtimer_add(ce->timer, &tv);
	return 0;
}

struct curl_ev *
curl_ev_new(struct event_base *base, curl_ev_done_cb done, void *arg)
{
	struct curl_ev *ce = xcalloc(1, sizeof(*ce));

	ce->base = base;
	ce->done = done;
	ce->arg = arg;
	ce->multi = curl_multi_init();
	if (ce->multi == NULL)
		fatalx("could not initialise libcurl");
	ce->timer = evtimer_new(base, curl_ev_on_timer, ce);
	if (ce->timer == NULL)
		fatalx("could not create the libcurl timer");
	curl_multi_setopt(ce->multi, CURLMOPT_SOCKETFUNCTION, curl_ev_socket_cb);
	curl_multi_setopt(ce->multi, CURLMOPT_SOCKETDATA, ce);
	curl_multi_setopt(ce->multi, CURLMOPT_TIMERFUNCTION, curl_ev_timer_cb);
	curl_multi_setopt(ce->multi, CURLMOPT_TIMERDATA, ce);
	return ce;
}

void
curl_ev_free(struct curl_ev *ce)
{
	if (ce == NULL)
		return;
	// Closes cached connections through curl_ev_close_cb, which needs
	// the socket table: freed after.
	curl_multi_cleanup(ce->multi);
	for (size_t i = 0; i < ce->n_socks; i++)
		if (ce->socks[i].ev != NULL)
			event_free(ce->socks[i].ev);
	free(ce->socks);
	event_free(ce->timer);
	free(ce);
}

int
curl_ev_add(struct curl_ev *ce, CURL *easy)
{
	curl_easy_setopt(easy, CURLOPT_CLOSESOCKETFUNCTION, curl_ev_close_cb);
	curl_easy_setopt(easy, CURLOPT_CLOSESOCKETDATA, ce);
	return curl_multi_add_handle(ce->multi, easy) == CURLM_OK ? 0 : -1;
}

void
curl_ev_remove(struct curl_ev *ce, CURL *easy)
{
	curl_multi_remove_handle(ce->multi, easy);
}
