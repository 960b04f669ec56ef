// SPDX-License-Identifier: Apache-2.0
//
// HTTP server and route table; see http_server.h.  Paths are decoded once,
// here, and matched segment by segment against the routes' patterns, so no
// handler ever looks at the raw URI's path or at offsets into it.
#include "http_server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>

#include "auth.h"
#include "log.h"
#include "xmalloc.h"

struct http_route {
	int methods; // EVHTTP_REQ_* bits
	char *pattern;
	http_handler_fn handler;
	int flags;
	void *arg;
};

struct http_server {
	struct evhttp *http;
	struct auth *auth; // borrowed; NULL: no writes possible
	struct http_route *routes;
	size_t nroutes;
	unsigned waiting; // requests in http_wait
	bool closed;      // http_server_free ran; freed by the last wait
};

struct http_wait {
	struct http_server *srv;
	struct evhttp_request *req;
	struct evhttp_connection *conn;
};

// The methods of Allow headers, in the order they are listed.
static const struct {
	int method;
	const char *name;
} http_methods[] = {
	{ EVHTTP_REQ_GET, "GET" },
	{ EVHTTP_REQ_HEAD, "HEAD" },
	{ EVHTTP_REQ_POST, "POST" },
	{ EVHTTP_REQ_PUT, "PUT" },
	{ EVHTTP_REQ_DELETE, "DELETE" },
};

static const char *
http_server_reason(int code)
{
	switch (code) {
	case 200:
		return "OK";
	case 201:
		return "Created";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 413:
		return "Payload Too Large";
	case 503:
		return "Service Unavailable";
	default:
		return code >= 500 ? "Internal Server Error" : "Error";
	}
}

void
http_server_reply_json(struct evhttp_request *req, int code, struct json_t *body)
{
	struct evbuffer *out = evbuffer_new();
	char *text = body != NULL ? json_dumps(body, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;

	json_decref(body);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
	    "application/json; charset=utf-8");
	evhttp_add_header(evhttp_request_get_output_headers(req), "Cache-Control", "no-store");
	if (text != NULL) {
		evbuffer_add(out, text, strlen(text));
		evbuffer_add(out, "\n", 1);
		free(text);
	}
	evhttp_send_reply(req, code, http_server_reason(code), out);
	evbuffer_free(out);
}

void
http_server_error(struct evhttp_request *req, int code, const char *msg)
{
	http_server_reply_json(req, code, json_pack("{s:s}", "error", msg));
}

// --- patterns ---

// A parameter segment "{name}" or "{name*}" at p: its name's length in
// *name_len, whether it takes the rest in *rest.  Returns the length of
// the whole segment, or 0 when p is a literal segment.  -1: malformed.
static long
http_server_param_segment(const char *p, size_t *name_len, bool *rest)
{
	size_t seg = strcspn(p, "/");
	const char *close;

	if (*p != '{')
		return memchr(p, '{', seg) != NULL || memchr(p, '}', seg) != NULL ? -1 : 0;
	close = memchr(p, '}', seg);
	if (close == NULL || (size_t)(close - p) != seg - 1)
		return -1;
	*rest = close[-1] == '*';
	*name_len = (size_t)(close - p) - 1 - *rest;
	if (*name_len == 0 || memchr(p + 1, '{', *name_len) != NULL ||
	    memchr(p + 1, '*', *name_len) != NULL || (*rest && p[seg] != '\0'))
		return -1;
	return (long)seg;
}

// A pattern http_server_route takes: starts with '/', at most
// HTTP_MAX_PARAMS parameters, each a whole segment, "{name*}" only last.
static bool
http_server_pattern_ok(const char *pattern)
{
	size_t params = 0;

	if (pattern[0] != '/')
		return false;
	for (const char *p = pattern + 1;; p++) {
		size_t name_len;
		bool rest;
		long seg = http_server_param_segment(p, &name_len, &rest);

		if (seg < 0 || (seg > 0 && ++params > HTTP_MAX_PARAMS))
			return false;
		p = strchr(p, '/');
		if (p == NULL)
			return true;
	}
}

bool
http_server_match(const char *pattern, const char *path, struct http_params *params)
{
	const char *pp = pattern, *sp = path;
	char *out;

	memset(params, 0, sizeof(*params));
	// Values are copied into text as they are found; never longer than path.
	params->text = out = xmalloc(strlen(path) + 1);
	while (*pp != '\0') {
		size_t name_len = 0, len;
		bool rest = false;
		long seg = *pp == '/' ? 0 : http_server_param_segment(pp, &name_len, &rest);

		if (seg <= 0) {
			// A literal character (or a malformed parameter, never matched).
			if (seg < 0 || *pp != *sp)
				goto fail;
			pp++;
			sp++;
			continue;
		}
		len = rest ? strlen(sp) : strcspn(sp, "/");
		if ((!rest && len == 0) || params->count == HTTP_MAX_PARAMS)
			goto fail;
		params->param[params->count].name = pp + 1;
		params->param[params->count].name_len = name_len;
		params->param[params->count].value = out;
		params->count++;
		memcpy(out, sp, len);
		out[len] = '\0';
		out += len + 1;
		pp += seg;
		sp += len;
	}
	if (*sp == '\0')
		return true;
fail:
	http_server_params_clear(params);
	return false;
}

const char *
http_server_param(const struct http_params *params, const char *name)
{
	size_t n = strlen(name);

	for (size_t i = 0; i < params->count; i++) {
		if (params->param[i].name_len == n && memcmp(params->param[i].name, name, n) == 0)
			return params->param[i].value;
	}
	return NULL;
}

void
http_server_params_clear(struct http_params *params)
{
	free(params->text);
	memset(params, 0, sizeof(*params));
}

bool
http_server_id_parse(const char *text, int64_t *id)
{
	size_t n = text != NULL ? strlen(text) : 0;
	int64_t v = 0;

	if (n == 0 || n > 18 || strspn(text, "0123456789") != n)
		return false;
	for (size_t i = 0; i < n; i++)
		v = v * 10 + (text[i] - '0');
	*id = v;
	return true;
}

int
http_server_param_id(struct http_call *call, const char *name, const char *msg, int64_t *id)
{
	if (http_server_id_parse(http_server_param(&call->params, name), id))
		return 0;
	http_server_error(call->req, HTTP_BADREQUEST, msg);
	return -1;
}

// --- dispatch ---

// The token of a write: its name, or NULL after answering 401 or 403.
static const char *
http_server_writer(struct http_server *srv, struct evhttp_request *req)
{
	const char *who = NULL;
	const char *hdr = evhttp_find_header(evhttp_request_get_input_headers(req),
	    "Authorization");

	switch (srv->auth != NULL ? auth_check_write(srv->auth, hdr, &who) : AUTH_INVALID) {
	case AUTH_OK:
		return who;
	case AUTH_FORBIDDEN:
		http_server_error(req, 403, "this token may only read");
		return NULL;
	case AUTH_MISSING:
		evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
		    "Bearer");
		http_server_error(req, 401, "a bearer token is required to change anything");
		return NULL;
	default:
		evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
		    "Bearer");
		http_server_error(req, 401, "unknown token");
		return NULL;
	}
}

// 405 naming the methods the path allows.  A path no route knows is
// answered as the API always has: everything but GET is refused there.
static void
http_server_not_allowed(struct evhttp_request *req, int allowed)
{
	char allow[64] = "";

	if (allowed == 0)
		allowed = EVHTTP_REQ_GET | EVHTTP_REQ_HEAD;
	for (size_t i = 0; i < sizeof(http_methods) / sizeof(http_methods[0]); i++) {
		if (allowed & http_methods[i].method)
			snprintf(allow + strlen(allow), sizeof(allow) - strlen(allow), "%s%s",
			    allow[0] ? ", " : "", http_methods[i].name);
	}
	evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", allow);
	http_server_error(req, 405,
	    allowed == (EVHTTP_REQ_GET | EVHTTP_REQ_HEAD) ? "only GET is supported here" :
							    "method not allowed here");
}

// The first route for path and method into *call (params filled), or NULL
// with the methods of the routes that take path in *allowed.
static const struct http_route *
http_server_find(struct http_server *srv, const char *path, int method, struct http_call *call,
    int *allowed)
{
	*allowed = 0;
	for (size_t i = 0; i < srv->nroutes; i++) {
		const struct http_route *r = &srv->routes[i];

		if (!http_server_match(r->pattern, path, &call->params))
			continue;
		if (r->methods & method)
			return r;
		*allowed |= r->methods;
		http_server_params_clear(&call->params);
	}
	return NULL;
}

static void
http_server_dispatch(struct evhttp_request *req, void *arg)
{
	struct http_server *srv = arg;
	struct evhttp_uri *parsed = evhttp_uri_parse(evhttp_request_get_uri(req));
	const char *path = parsed ? evhttp_uri_get_path(parsed) : NULL;
	int method = (int)evhttp_request_get_command(req), allowed = 0;
	struct http_call call = { .req = req };
	const struct http_route *route;
	char *decoded;

	if (path == NULL) {
		http_server_error(req, HTTP_BADREQUEST, "malformed request URI");
		goto done;
	}
	decoded = evhttp_uridecode(path, 0, NULL);
	route = decoded != NULL ? http_server_find(srv, decoded, method, &call, &allowed) : NULL;
	free(decoded);
	if (route == NULL) {
		if (allowed == 0 && (method & (EVHTTP_REQ_GET | EVHTTP_REQ_HEAD)))
			http_server_error(req, HTTP_NOTFOUND, "no such resource");
		else
			http_server_not_allowed(req, allowed);
		goto done;
	}
	if ((route->flags & HTTP_WRITE) && (call.token = http_server_writer(srv, req)) == NULL)
		goto done;
	route->handler(&call, route->arg);
done:
	http_server_params_clear(&call.params);
	if (parsed != NULL)
		evhttp_uri_free(parsed);
}

void
http_server_route(struct http_server *srv, int methods, const char *pattern,
    http_handler_fn handler, int flags, void *arg)
{
	struct http_route *r;

	if (!http_server_pattern_ok(pattern))
		fatalx("malformed route pattern \"%s\"", pattern);
	srv->routes = xreallocarray(srv->routes, srv->nroutes + 1, sizeof(*srv->routes));
	r = &srv->routes[srv->nroutes++];
	r->methods = methods;
	r->pattern = xstrdup(pattern);
	r->handler = handler;
	r->flags = flags;
	r->arg = arg;
}

// --- waiting requests ---

static void
http_server_wait_closed(struct evhttp_connection *conn, void *arg)
{
	struct http_wait *w = arg;

	w->req = NULL;
}

struct http_wait *
http_server_wait_new(struct http_server *srv, struct evhttp_request *req, const char *busy_msg)
{
	struct http_wait *w;

	// While the database is slow, or still being connected to, the store
	// queues what it is asked: without a bound a client repeating a
	// request faster than it is answered would grow that queue without end.
	if (srv->waiting >= HTTP_MAX_WAITING) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "1");
		http_server_error(req, 503, busy_msg);
		return NULL;
	}
	w = xcalloc(1, sizeof(*w));
	srv->waiting++;
	w->srv = srv;
	w->req = req;
	w->conn = evhttp_request_get_connection(req);
	// If the client goes away first, the close callback clears req.
	evhttp_connection_set_closecb(w->conn, http_server_wait_closed, w);
	return w;
}

static void
http_server_release(struct http_server *srv)
{
	for (size_t i = 0; i < srv->nroutes; i++)
		free(srv->routes[i].pattern);
	free(srv->routes);
	free(srv);
}

struct evhttp_request *
http_server_wait_end(struct http_wait *w)
{
	struct http_server *srv = w->srv;
	struct evhttp_request *req = w->req;

	// Detached before the answer, which may close the connection.
	if (req != NULL)
		evhttp_connection_set_closecb(w->conn, NULL, NULL);
	if (--srv->waiting == 0 && srv->closed)
		http_server_release(srv);
	free(w);
	return req;
}

// --- the server ---

// Binds addr ("HOST:PORT", brackets around an IPv6 literal).  Returns 0,
// or -1 after logging why.
static int
http_server_listen(struct http_server *srv, const char *addr)
{
	char host[256];
	const char *colon = strrchr(addr, ':');
	long port;
	char *end;

	if (colon == NULL || (size_t)(colon - addr) >= sizeof(host)) {
		log_warnx("bad HTTP listen address \"%s\" (want HOST:PORT)", addr);
		return -1;
	}
	memcpy(host, addr, (size_t)(colon - addr));
	host[colon - addr] = '\0';
	port = strtol(colon + 1, &end, 10);
	if (*end != '\0' || port < 0 || port > 65535) {
		log_warnx("bad port in HTTP listen address \"%s\"", addr);
		return -1;
	}
	// Brackets of an IPv6 literal are not part of the bind address.
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		memmove(host, host + 1, strlen(host));
		host[strlen(host) - 1] = '\0';
	}
	// "cannot listen" is what tests/demo.sh looks for in the log.
	if (evhttp_bind_socket(srv->http, host, (ev_uint16_t)port) < 0) {
		log_warnx("cannot listen for HTTP on \"%s\"", addr);
		return -1;
	}
	log_info("serving the API on http://%s/", addr);
	return 0;
}

struct http_server *
http_server_new(struct event_base *base, const char *addr)
{
	struct http_server *srv = xcalloc(1, sizeof(*srv));

	srv->http = evhttp_new(base);
	evhttp_set_timeout(srv->http, 30);
	evhttp_set_max_headers_size(srv->http, 16 * 1024);
	evhttp_set_max_body_size(srv->http, HTTP_MAX_BODY);
	evhttp_set_allowed_methods(srv->http,
	    EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
		EVHTTP_REQ_DELETE);
	evhttp_set_gencb(srv->http, http_server_dispatch, srv);
	if (addr != NULL && http_server_listen(srv, addr) < 0) {
		evhttp_free(srv->http);
		free(srv);
		return NULL;
	}
	return srv;
}

int
http_server_accept_fd(struct http_server *srv, evutil_socket_t listen_fd)
{
	if (evutil_make_socket_nonblocking(listen_fd) < 0)
		return -1;
	return evhttp_accept_socket(srv->http, listen_fd);
}

void
http_server_set_auth(struct http_server *srv, struct auth *auth)
{
	srv->auth = auth;
}

void
http_server_free(struct http_server *srv)
{
	if (srv == NULL)
		return;
	// Closes every connection (their close callbacks detach the requests
	// still waiting); the last of those to be done frees srv.
	evhttp_free(srv->http);
	srv->http = NULL;
	if (srv->waiting > 0) {
		srv->closed = true;
		return;
	}
	http_server_release(srv);
}
