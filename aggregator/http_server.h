// SPDX-License-Identifier: Apache-2.0
//
// The aggregator's one HTTP server on libevent's evhttp: it listens, turns
// every request's path into a route and its parameters, checks the bearer
// token of routes that change something, bounds how many requests may wait
// for a slow answer, and answers what no route takes (404, 405) itself.
// Modules register routes on it -- the JSON API (api.c) today, the status
// page and /metrics later -- and implement only their handlers.  Errors are
// JSON {"error": "..."} with a proper status code, whoever answers.  It
// must never block the loop, and never hand a handler a path that was not
// percent-decoded and matched first.
#ifndef VANTAGE_HTTP_SERVER_H
#define VANTAGE_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/util.h>

struct auth;
struct event_base;
struct evhttp_request;
struct json_t;
struct http_server;

// Bodies larger than this are refused by evhttp with 413.
#define HTTP_MAX_BODY (64 * 1024)
// Parameters one pattern may have.
#define HTTP_MAX_PARAMS 4
// Requests that may wait for a later answer (http_server_wait_new) at once.
#define HTTP_MAX_WAITING 64

// The parameters a pattern took from a path: names borrowed from the
// route's pattern, values percent-decoded and owned by text.
struct http_params {
	size_t count;
	struct {
		const char *name;
		size_t name_len;
		const char *value;
	} param[HTTP_MAX_PARAMS];
	char *text; // owned: the values, NUL-terminated
};

// One call of a route's handler.  Everything is borrowed for the call.
struct http_call {
	struct evhttp_request *req;
	struct http_params params;
	// The name of the token that authorised an HTTP_WRITE route, else NULL.
	const char *token;
};

typedef void (*http_handler_fn)(struct http_call *call, void *arg);

// Route flags.  HTTP_WRITE: a bearer token with a write role is needed,
// checked before the handler runs: 401 without a valid one, 403 with a
// read-only one.
#define HTTP_WRITE 0x1

// Binds addr ("HOST:PORT", brackets around an IPv6 literal); with addr NULL
// it listens nowhere and serves only what http_server_accept_fd hands it.
// base is borrowed.  NULL after logging why.
struct http_server *http_server_new(struct event_base *base, const char *addr);
// Serves HTTP on the connections accepted from listen_fd, a listening
// stream socket the caller made (any family; the server then owns and
// closes it).  This is how the fuzzer and the unit tests drive the real
// request path.  Returns 0, or -1 (fd not taken).
int http_server_accept_fd(struct http_server *srv, evutil_socket_t listen_fd);
// Tokens for HTTP_WRITE routes (borrowed; swapped on reload).  Without
// any, every write is refused with 401.
void http_server_set_auth(struct http_server *srv, struct auth *auth);
// Adds a route: methods is a mask of EVHTTP_REQ_* (GET and HEAD are
// separate bits), pattern a path whose segments are literal or a
// parameter: "{name}" takes one non-empty segment, "{name*}" (last only)
// the rest of the path, slashes included, possibly empty.  Routes are
// tried in the order they were added; the first whose pattern and method
// match is called, with arg.  A malformed pattern is a programming error
// and fatal.  pattern is copied.
void http_server_route(struct http_server *srv, int methods, const char *pattern,
    http_handler_fn handler, int flags, void *arg);
// Stops listening and closes every connection.  Requests still waiting
// (http_server_wait_new) keep the server's memory until the last of them is done.
// Free the server before the modules whose routes it calls.
void http_server_free(struct http_server *srv);

// Matches a percent-decoded path against a pattern (as http_server_route
// takes it).  On a match, fills params (free with http_server_params_clear) and
// returns true.  Pure.
bool http_server_match(const char *pattern, const char *path, struct http_params *params);
// The value of parameter name, or NULL.
const char *http_server_param(const struct http_params *params, const char *name);
void http_server_params_clear(struct http_params *params);
// A database id: 1 to 18 decimal digits, nothing else.  Pure.
bool http_server_id_parse(const char *text, int64_t *id);
// Parameter name as a database id in *id; else answers 400 with msg and
// returns -1.
int http_server_param_id(struct http_call *call, const char *name, const char *msg, int64_t *id);

// Answers with body as indented JSON with sorted keys, a reference that
// is stolen (NULL: no body).
void http_server_reply_json(struct evhttp_request *req, int code, struct json_t *body);
// Answers {"error": msg}.
void http_server_error(struct evhttp_request *req, int code, const char *msg);

// A request answered later, when a callback (the store's) comes.
struct http_wait;
// Starts waiting for req; NULL after answering 503 with Retry-After and
// busy_msg when HTTP_MAX_WAITING requests already wait.
struct http_wait *http_server_wait_new(struct http_server *srv, struct evhttp_request *req,
    const char *busy_msg);
// Ends the wait and frees w: the request to answer now, or NULL when its
// client has gone away meanwhile.
struct evhttp_request *http_server_wait_end(struct http_wait *w);

#endif
