// SPDX-License-Identifier: Apache-2.0
//
// libcurl behind one small wrapper (see http_client.h): a blocking GET for
// command-line tools, and non-blocking POSTs on a libevent loop for the
// aggregator's alert sender, on common/curl_ev.  Only this file,
// common/curl_ev.[ch] and agent/probe_http.c include curl.h.
#include "http_client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "curl_ev.h"
#include "xmalloc.h"

_Static_assert(HTTP_CLIENT_ERROR_MAX >= CURL_ERROR_SIZE, "room for libcurl's errors");

int
http_client_global_init(void)
{
	return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

void
http_client_global_cleanup(void)
{
	curl_global_cleanup();
}

char *
http_client_escape(const char *s)
{
	char *escaped = curl_easy_escape(NULL, s, 0), *copy;

	if (escaped == NULL)
		return NULL;
	// Ours to free with free(), not curl_free().
	copy = xstrdup(escaped);
	curl_free(escaped);
	return copy;
}

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
		snprintf(err, errlen, "could not initialise libcurl");
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

// --- non-blocking requests, on common/curl_ev ---

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

struct http_client {
	struct curl_ev *ev;
	struct http_request *requests;
	char *user_agent;
};

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
	curl_ev_remove(hc->ev, req->easy);
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

// curl_ev took req out of the multi handle before this, so the callback
// may start the next request; req is freed only after it: resp points
// into it.
static void
http_client_on_done(CURL *easy, CURLcode result, void *arg)
{
	struct http_client *hc = arg;
	struct http_request *req = NULL;
	struct http_response resp;
	curl_off_t total_us = 0;

	curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&req);
	memset(&resp, 0, sizeof(resp));
	resp.status = -1;
	if (result == CURLE_OK)
		curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &resp.status);
	else
		resp.error = req->errbuf[0] ? req->errbuf : curl_easy_strerror(result);
	curl_easy_getinfo(easy, CURLINFO_TOTAL_TIME_T, &total_us);
	resp.elapsed_ms = (long)(total_us / 1000);
	resp.body = req->body;
	resp.body_len = req->body_len;
	req->cb(&resp, req->arg);
	http_client_release(hc, req);
}

struct http_client *
http_client_new(struct event_base *base, const char *user_agent)
{
	struct http_client *hc = xcalloc(1, sizeof(*hc));

	hc->user_agent = xstrdup(user_agent);
	hc->ev = curl_ev_new(base, http_client_on_done, hc);
	return hc;
}

void
http_client_free(struct http_client *hc)
{
	if (hc == NULL)
		return;
	while (hc->requests != NULL)
		http_client_release(hc, hc->requests);
	curl_ev_free(hc->ev);
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
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_USERAGENT, hc->user_agent);
	if (curl_ev_add(hc->ev, e) < 0) {
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
