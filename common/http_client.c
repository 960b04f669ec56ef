// SPDX-License-Identifier: Apache-2.0
//
// libcurl behind one small wrapper (see http_client.h): a blocking GET for
// command-line tools, and non-blocking POSTs on a libevent loop for the
// aggregator's alert sender.  Only this file and agent/probe_http.c include
// curl.h.
#include "http_client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "log.h"
#include "xmalloc.h"

static size_t
http_client_write(char *data, size_t size, size_t nmemb, void *userp)
{
	struct buf *body = userp;
	size_t len = size * nmemb;

	if (body->len + len > HTTP_CLIENT_MAX_BODY)
		return 0; // curl fails the transfer with CURLE_WRITE_ERROR
	buf_append(body, data, len);
	return len;
}

long
http_client_get(const char *url, const char *token, long timeout_ms, struct buf *body, char *err,
    size_t errlen)
{
	char errbuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *headers = NULL;
	CURL *easy = curl_easy_init();
	long status = -1;
	CURLcode rc;

	buf_reset(body);
	if (easy == NULL) {
		snprintf(err, errlen, "cannot initialise libcurl");
		return -1;
	}
	if (token != NULL) {
		char auth[512];

		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
		headers = curl_slist_append(headers, auth);
	}
	headers = curl_slist_append(headers, "Accept: application/json");
	curl_easy_setopt(easy, CURLOPT_URL, url);
	curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, http_client_write);
	curl_easy_setopt(easy, CURLOPT_WRITEDATA, body);
	curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
	rc = curl_easy_perform(easy);
	if (rc != CURLE_OK)
		snprintf(err, errlen, "%s", errbuf[0] ? errbuf : curl_easy_strerror(rc));
	else
		curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(headers);
	curl_easy_cleanup(easy);
	return status;
}

// --- non-blocking requests (curl's docs/examples/multi-event.c pattern) ---

struct http_request {
	struct http_client *owner;
	CURL *easy;
	struct curl_slist *headers;
	http_client_done_cb cb;
	void *arg;
	char errbuf[CURL_ERROR_SIZE];
	char body[HTTP_CLIENT_KEEP_BODY];
	size_t body_len;
	struct http_request *prev, *next; // in flight, for cleanup
};

struct http_sock {
	struct event *ev;
};

struct http_client {
	struct event_base *base;
	CURLM *multi;
	struct event *timer;
	// Watched sockets by descriptor.  The table, not curl's socketp, is
	// the truth: it lets the close callback drop a socket's event before
	// the descriptor is closed and its number reused (epoll would
	// otherwise lose the registration of the next socket with that
	// number; see agent/probe_http.c).
	struct http_sock **socks;
	size_t n_socks;
	struct http_request *requests;
	char *user_agent;
};

static void http_client_check_done(struct http_client *hc);

static void
http_client_on_socket(evutil_socket_t fd, short what, void *arg)
{
	struct http_client *hc = arg;
	int flags = 0, running;

	if (what & EV_READ)
		flags |= CURL_CSELECT_IN;
	if (what & EV_WRITE)
		flags |= CURL_CSELECT_OUT;
	curl_multi_socket_action(hc->multi, fd, flags, &running);
	http_client_check_done(hc);
}

static void
http_client_on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct http_client *hc = arg;
	int running;

	curl_multi_socket_action(hc->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	http_client_check_done(hc);
}

static void
http_client_sock_drop(struct http_client *hc, curl_socket_t s)
{
	if (s < 0 || (size_t)s >= hc->n_socks || hc->socks[s] == NULL)
		return;
	event_free(hc->socks[s]->ev);
	free(hc->socks[s]);
	hc->socks[s] = NULL;
}

static int
http_client_socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct http_client *hc = userp;
	struct http_sock *sock;
	short kind;

	if (s < 0)
		return -1;
	if (what == CURL_POLL_REMOVE) {
		http_client_sock_drop(hc, s);
		return 0;
	}
	if ((size_t)s >= hc->n_socks) {
		size_t n = hc->n_socks ? hc->n_socks : 64;

		while (n <= (size_t)s)
			n *= 2;
		hc->socks = xreallocarray(hc->socks, n, sizeof(*hc->socks));
		memset(hc->socks + hc->n_socks, 0, (n - hc->n_socks) * sizeof(*hc->socks));
		hc->n_socks = n;
	}
	kind = EV_PERSIST | ((what & CURL_POLL_IN) ? EV_READ : 0) |
	    ((what & CURL_POLL_OUT) ? EV_WRITE : 0);
	sock = hc->socks[s];
	if (sock == NULL) {
		sock = xcalloc(1, sizeof(*sock));
		hc->socks[s] = sock;
	} else {
		event_free(sock->ev);
	}
	sock->ev = event_new(hc->base, s, kind, http_client_on_socket, hc);
	if (sock->ev == NULL)
		fatalx("cannot watch an HTTP client socket");
	event_add(sock->ev, NULL);
	return 0;
}

static int
http_client_close_cb(void *clientp, curl_socket_t s)
{
	http_client_sock_drop(clientp, s);
	return close(s);
}

static int
http_client_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct http_client *hc = userp;
	struct timeval tv;

	if (timeout_ms < 0) {
		evtimer_del(hc->timer);
		return 0;
	}
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	evtimer_add(hc->timer, &tv);
	return 0;
}

// Keeps the start of the answer for error messages; drops the rest (a
// chatty receiver costs bandwidth up to the timeout, never memory).
static size_t
http_client_keep_cb(char *data, size_t size, size_t nmemb, void *userp)
{
	struct http_request *req = userp;
	size_t len = size * nmemb, room = sizeof(req->body) - req->body_len;

	memcpy(req->body + req->body_len, data, len < room ? len : room);
	req->body_len += len < room ? len : room;
	return len;
}

// Unlinks and frees req; its callback is not called here.
static void
http_client_release(struct http_client *hc, struct http_request *req)
{
	curl_multi_remove_handle(hc->multi, req->easy);
	curl_easy_cleanup(req->easy);
	curl_slist_free_all(req->headers);
	if (req->prev != NULL)
		req->prev->next = req->next;
	else
		hc->requests = req->next;
	if (req->next != NULL)
		req->next->prev = req->prev;
	free(req);
}

static void
http_client_check_done(struct http_client *hc)
{
	struct http_request *req = NULL;
	struct http_response resp;
	curl_off_t total_us = 0;
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(hc->multi, &left)) != NULL) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&req);
		memset(&resp, 0, sizeof(resp));
		resp.status = -1;
		if (msg->data.result == CURLE_OK)
			curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &resp.status);
		else
			resp.error = req->errbuf[0] ? req->errbuf :
						      curl_easy_strerror(msg->data.result);
		curl_easy_getinfo(req->easy, CURLINFO_TOTAL_TIME_T, &total_us);
		resp.elapsed_ms = (long)(total_us / 1000);
		resp.body = req->body;
		resp.body_len = req->body_len;
		// Out of the multi handle before the callback, which may start
		// the next request, but freed only after it: resp points into it.
		curl_multi_remove_handle(hc->multi, req->easy);
		req->cb(&resp, req->arg);
		http_client_release(hc, req);
	}
}

struct http_client *
http_client_new(struct event_base *base, const char *user_agent)
{
	struct http_client *hc = xcalloc(1, sizeof(*hc));

	hc->base = base;
	hc->user_agent = xstrdup(user_agent);
	hc->multi = curl_multi_init();
	if (hc->multi == NULL)
		fatalx("cannot initialise libcurl");
	hc->timer = evtimer_new(base, http_client_on_timer, hc);
	if (hc->timer == NULL)
		fatalx("cannot create the HTTP client timer");
	curl_multi_setopt(hc->multi, CURLMOPT_SOCKETFUNCTION, http_client_socket_cb);
	curl_multi_setopt(hc->multi, CURLMOPT_SOCKETDATA, hc);
	curl_multi_setopt(hc->multi, CURLMOPT_TIMERFUNCTION, http_client_timer_cb);
	curl_multi_setopt(hc->multi, CURLMOPT_TIMERDATA, hc);
	return hc;
}

void
http_client_free(struct http_client *hc)
{
	if (hc == NULL)
		return;
	while (hc->requests != NULL)
		http_client_release(hc, hc->requests);
	// Closes cached connections through http_client_close_cb, which
	// needs the socket table: freed after.
	curl_multi_cleanup(hc->multi);
	for (size_t i = 0; i < hc->n_socks; i++)
		http_client_sock_drop(hc, (curl_socket_t)i);
	free(hc->socks);
	event_free(hc->timer);
	free(hc->user_agent);
	free(hc);
}

struct http_request *
http_client_post(struct http_client *hc, const char *url, const char *content_type,
    const char *body, size_t len, long timeout_ms, http_client_done_cb cb, void *arg)
{
	struct http_request *req = xcalloc(1, sizeof(*req));
	char header[128];
	CURL *e;

	req->owner = hc;
	req->cb = cb;
	req->arg = arg;
	req->easy = e = curl_easy_init();
	if (e == NULL) {
		free(req);
		return NULL;
	}
	snprintf(header, sizeof(header), "Content-Type: %s", content_type);
	req->headers = curl_slist_append(req->headers, header);
	// No "Expect: 100-continue" round trip: many webhook receivers never
	// answer it, which would add a second to every large alert.
	req->headers = curl_slist_append(req->headers, "Expect:");
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_PRIVATE, req);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, req->headers);
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, body);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, req->errbuf);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, http_client_keep_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, req);
	curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, http_client_close_cb);
	curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, hc);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_USERAGENT, hc->user_agent);
	if (curl_multi_add_handle(hc->multi, e) != CURLM_OK) {
		curl_slist_free_all(req->headers);
		curl_easy_cleanup(e);
		free(req);
		return NULL;
	}
	req->next = hc->requests;
	if (hc->requests != NULL)
		hc->requests->prev = req;
	hc->requests = req;
	return req;
}

void
http_client_cancel(struct http_client *hc, struct http_request *req)
{
	if (req != NULL)
		http_client_release(hc, req);
}
