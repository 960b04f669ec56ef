// SPDX-License-Identifier: Apache-2.0
//
// The one small HTTP client wrapper around libcurl outside the probes
// (DESIGN.md §1).  Two faces: a blocking GET for command-line tools
// (vantagectl), and non-blocking POSTs driven by a daemon's libevent loop
// through common/curl_ev, for the aggregator's alert sender.  The
// non-blocking side must never block the loop and never call back from
// inside the call that started a request: outcomes arrive from the loop.
#ifndef VANTAGE_HTTP_CLIENT_H
#define VANTAGE_HTTP_CLIENT_H

#include <stddef.h>

#include <event2/event.h>

#include "buf.h"

#define HTTP_CLIENT_MAX_BODY (16 * 1024 * 1024)
// Bytes of a response body kept for the caller (error messages); the rest
// is read and dropped.
#define HTTP_CLIENT_KEEP_BODY 512
// Room for the longest error libcurl reports (CURL_ERROR_SIZE).
#define HTTP_CLIENT_ERROR_MAX 256

// Once per process, before any other call and before threads (libcurl's
// global state).  Returns 0 or -1.
int http_client_global_init(void);
void http_client_global_cleanup(void);
// s percent-encoded for one URL path segment or query value; the caller
// frees it.  NULL if libcurl could not encode it.
char *http_client_escape(const char *s);

// GETs url into body (reset first).  Returns the HTTP status, or -1 with a
// reason in err.  token, when not NULL, is sent as a bearer token.
long http_client_get(const char *url, const char *token, long timeout_ms, struct buf *body,
    char *err, size_t errlen);

// --- non-blocking requests on a libevent loop ---

struct http_client;
struct http_request;

// How a request ended.  status is the HTTP status, or -1 when no response
// arrived (error says why: connection refused, timeout, ...).  body holds
// the first HTTP_CLIENT_KEEP_BODY bytes of the response (not
// NUL-terminated, may be any bytes).  All valid only during the callback.
struct http_response {
	long status;
	const char *error;
	const char *body;
	size_t body_len;
	long elapsed_ms;
};
typedef void (*http_client_done_cb)(const struct http_response *resp, void *arg);

// base is borrowed and must outlive the client.
struct http_client *http_client_new(struct event_base *base, const char *user_agent);
// Abandons requests in flight: their callbacks never run.  Not to be called
// from a callback.
void http_client_free(struct http_client *hc);

// Starts a POST of body (copied) with the given Content-Type, ending with
// cb after at most timeout_ms (connection included).  Redirects are not
// followed: a receiver that moved is an error to fix, not to chase.
// Returns a handle valid until cb runs (or http_client_cancel), or NULL if
// the request could not be started (nothing will be called back).
struct http_request *http_client_post(struct http_client *hc, const char *url,
    const char *content_type, const char *body, size_t len, long timeout_ms, http_client_done_cb cb,
    void *arg);
// Abandons one request; its callback never runs.
void http_client_cancel(struct http_client *hc, struct http_request *req);

#endif
