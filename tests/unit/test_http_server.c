// SPDX-License-Identifier: Apache-2.0
//
// Unit tests for aggregator/http_server.c.  The matcher is pure and tested
// directly: literal and parameter segments, the rest-of-path parameter the
// API's keys and ids use, trailing slashes, ids that are too long or not
// numbers.  Then a real server on 127.0.0.1 (an ephemeral port) with routes
// from two "modules" is driven by libevent's own HTTP client: path
// parameters after percent-decoding, HEAD, 404 and 405 with the Allow
// header and the JSON error bodies the API has always sent, bearer tokens
// for write routes (401 without or with an unknown one, 403 with a
// read-only one), and the bound on requests waiting for a later answer.
// Every loop runs under a deadline, so a lost answer fails in seconds.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#include "agg_conf.h"
#include "auth.h"
#include "http_server.h"
#include "log.h"

#define DEADLINE_S 10

// --- the matcher ---

// Matches and returns the parameter's value (static copy), or NULL when
// the pattern does not match.
static const char *
match1(const char *pattern, const char *path, const char *name)
{
	static char value[256];
	struct http_params p;
	const char *v;

	if (!http_server_match(pattern, path, &p))
		return NULL;
	v = name != NULL ? http_server_param(&p, name) : "";
	assert_non_null(v);
	snprintf(value, sizeof(value), "%s", v);
	http_server_params_clear(&p);
	return value;
}

static void
test_match_literal(void **state)
{
	struct http_params p;

	assert_true(http_server_match("/healthz", "/healthz", &p));
	assert_int_equal(p.count, 0);
	http_server_params_clear(&p);
	// Exact: a trailing slash, a prefix or a longer name is another path.
	assert_false(http_server_match("/healthz", "/healthz/", &p));
	assert_false(http_server_match("/healthz", "/health", &p));
	assert_false(http_server_match("/healthz", "/healthzz", &p));
	assert_false(http_server_match("/healthz", "", &p));
	assert_false(http_server_match("/api/v1/targets", "/api/v1/targets/", &p));
	assert_true(http_server_match("/api/v1/targets/", "/api/v1/targets/", &p));
	http_server_params_clear(&p);
	assert_null(p.text);
}

static void
test_match_segment(void **state)
{
	struct http_params p;

	assert_string_equal(match1("/a/{id}/b", "/a/5/b", "id"), "5");
	assert_string_equal(match1("/a/{id}", "/a/x.y-z", "id"), "x.y-z");
	// One non-empty segment, and the rest must match too.
	assert_null(match1("/a/{id}/b", "/a//b", "id"));
	assert_null(match1("/a/{id}", "/a/", "id"));
	assert_null(match1("/a/{id}", "/a/5/", "id"));
	assert_null(match1("/a/{id}/b", "/a/5/c", "id"));
	assert_null(match1("/a/{id}/b", "/a/5/b/", "id"));
	assert_null(match1("/a/{id}/b", "/a/5", "id"));

	assert_true(http_server_match("/x/{first}/y/{second}", "/x/1/y/two", &p));
	assert_int_equal(p.count, 2);
	assert_string_equal(http_server_param(&p, "first"), "1");
	assert_string_equal(http_server_param(&p, "second"), "two");
	assert_null(http_server_param(&p, "fir"));
	assert_null(http_server_param(&p, "third"));
	http_server_params_clear(&p);
}

static void
test_match_rest(void **state)
{
	// What the API's keys and ids take: the rest, slashes included, also
	// nothing, so that "/incidents/" and "/incidents/5/x" are bad ids (400)
	// rather than unknown paths, as they always were.
	assert_string_equal(match1("/api/v1/targets/{key*}", "/api/v1/targets/web", "key"), "web");
	assert_string_equal(match1("/api/v1/targets/{key*}", "/api/v1/targets/a/b", "key"), "a/b");
	assert_string_equal(match1("/api/v1/incidents/{id*}", "/api/v1/incidents/", "id"), "");
	assert_string_equal(
	    match1("/api/v1/incidents/{id*}", "/api/v1/incidents/5/postmortem", "id"),
	    "5/postmortem");
	assert_null(match1("/api/v1/targets/{key*}", "/api/v1/targets", "key"));
	assert_null(match1("/api/v1/targets/{key*}", "/api/v1/targetsx", "key"));
}

static void
test_match_malformed(void **state)
{
	struct http_params p;

	// Never registered (http_server_route refuses them); never matched.
	assert_false(http_server_match("/a/{id", "/a/{id", &p));
	assert_false(http_server_match("/a/{}", "/a/{}", &p));
	assert_false(http_server_match("/a/x{id}", "/a/x5", &p));
	assert_null(p.text);
}

static void
test_id_parse(void **state)
{
	int64_t id = -1;

	assert_true(http_server_id_parse("1", &id));
	assert_int_equal(id, 1);
	assert_true(http_server_id_parse("007", &id));
	assert_int_equal(id, 7);
	assert_true(http_server_id_parse("999999999999999999", &id));
	assert_int_equal(id, 999999999999999999LL);
	id = -1;
	assert_false(http_server_id_parse("", &id));
	assert_false(http_server_id_parse(NULL, &id));
	assert_false(http_server_id_parse("1234567890123456789", &id)); // 19 digits
	assert_false(http_server_id_parse("-1", &id));
	assert_false(http_server_id_parse("+1", &id));
	assert_false(http_server_id_parse(" 1", &id));
	assert_false(http_server_id_parse("1a", &id));
	assert_false(http_server_id_parse("0x10", &id));
	assert_false(http_server_id_parse("5/postmortem", &id));
	assert_int_equal(id, -1);
}

// --- a real server ---

struct fix {
	struct event_base *base;
	struct http_server *srv;
	struct auth *auth;
	struct event *deadline;
	int timed_out;
	uint16_t port;
	char dir[64];
	char tok_write[128], tok_read[128];
	// The answer last received.
	int code;
	char body[4096];
	char allow[64];
	char www_auth[64];
	char retry_after[16];
	int answers; // answers received by on_answer
	int want;    // answers to wait for
	struct http_wait *waits[HTTP_MAX_WAITING + 1];
	int nwaits;
};

// A handler of the "ping" module: echoes the id it was given.
static void
on_ping(struct http_call *call, void *arg)
{
	int64_t id;

	assert_ptr_equal(arg, (void *)"ping module");
	if (http_server_param_id(call, "id", "a ping id is a number", &id) < 0)
		return;
	http_server_reply_json(call->req, 200, json_pack("{s:I}", "id", (json_int_t)id));
}

// A handler of the "write" module: says which token authorised it.
static void
on_write(struct http_call *call, void *arg)
{
	assert_ptr_equal(arg, (void *)"write module");
	assert_non_null(call->token);
	http_server_reply_json(call->req, 201, json_pack("{s:s}", "who", call->token));
}

// Holds every request until the test ends the waits.
static void
on_wait(struct http_call *call, void *arg)
{
	struct fix *f = arg;
	struct http_wait *w = http_server_wait_new(f->srv, call->req, "too many wait");

	if (w != NULL)
		f->waits[f->nwaits++] = w;
}

static void
on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct fix *f = arg;

	f->timed_out = 1;
	event_base_loopexit(f->base, NULL);
}

static void
copy_header(struct evhttp_request *req, const char *name, char *out, size_t len)
{
	const char *v = evhttp_find_header(evhttp_request_get_input_headers(req), name);

	snprintf(out, len, "%s", v != NULL ? v : "");
}

static void
on_answer(struct evhttp_request *req, void *arg)
{
	struct fix *f = arg;
	struct evbuffer *in;
	size_t n;

	f->answers++;
	if (req == NULL) {
		f->code = -1;
	} else {
		in = evhttp_request_get_input_buffer(req);
		n = evbuffer_get_length(in);
		if (n >= sizeof(f->body))
			n = sizeof(f->body) - 1;
		evbuffer_remove(in, f->body, n);
		f->body[n] = '\0';
		f->code = evhttp_request_get_response_code(req);
		copy_header(req, "Allow", f->allow, sizeof(f->allow));
		copy_header(req, "WWW-Authenticate", f->www_auth, sizeof(f->www_auth));
		copy_header(req, "Retry-After", f->retry_after, sizeof(f->retry_after));
	}
	if (f->answers >= f->want)
		event_base_loopexit(f->base, NULL);
}

// Sends one request on a new connection (freed with the base).
static struct evhttp_connection *
send_request(struct fix *f, enum evhttp_cmd_type method, const char *uri, const char *authorization)
{
	struct evhttp_connection *conn = evhttp_connection_base_new(f->base, NULL, "127.0.0.1",
	    f->port);
	struct evhttp_request *req = evhttp_request_new(on_answer, f);

	assert_non_null(conn);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Host", "127.0.0.1");
	if (authorization != NULL)
		evhttp_add_header(evhttp_request_get_output_headers(req), "Authorization",
		    authorization);
	if (method == EVHTTP_REQ_POST)
		evbuffer_add(evhttp_request_get_output_buffer(req), "{}", 2);
	assert_int_equal(evhttp_make_request(conn, req, method, uri), 0);
	return conn;
}

static void
run_until(struct fix *f, int answers)
{
	struct timeval tv = { DEADLINE_S, 0 };

	f->want = answers;
	event_add(f->deadline, &tv);
	while (f->answers < f->want && !f->timed_out)
		event_base_dispatch(f->base);
	event_del(f->deadline);
	assert_false(f->timed_out);
}

// One request and its answer.
static void
request(struct fix *f, enum evhttp_cmd_type method, const char *uri, const char *authorization)
{
	struct evhttp_connection *conn = send_request(f, method, uri, authorization);

	f->answers = 0;
	f->code = 0;
	run_until(f, 1);
	evhttp_connection_free(conn);
}

static void
write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
	chmod(path, 0600);
}

// Two tokens, "ops" (write) and "viewer" (read), as auth_load reads them.
static struct auth *
load_tokens(struct fix *f)
{
	struct api_token_conf tokens[2] = { 0 };
	struct agg_conf conf = { 0 };
	char path_w[128], path_r[128], err[256];
	struct auth *auth;

	snprintf(path_w, sizeof(path_w), "%s/ops.token", f->dir);
	snprintf(path_r, sizeof(path_r), "%s/viewer.token", f->dir);
	write_file(path_w, "secret-write-token\n");
	write_file(path_r, "secret-read-token\n");
	snprintf(f->tok_write, sizeof(f->tok_write), "Bearer secret-write-token");
	snprintf(f->tok_read, sizeof(f->tok_read), "Bearer secret-read-token");
	tokens[0].name = "ops";
	tokens[0].token_file = path_w;
	tokens[0].role = "write";
	tokens[1].name = "viewer";
	tokens[1].token_file = path_r;
	tokens[1].role = "read";
	conf.tokens = tokens;
	conf.n_tokens = 2;
	auth = auth_load(&conf, err, sizeof(err));
	assert_non_null(auth);
	unlink(path_w);
	unlink(path_r);
	return auth;
}

static int
setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	int fd;

	log_init("test_http_server", LOG_LEVEL_WARN);
	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/vantage-test-http-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	f->base = event_base_new();
	f->deadline = evtimer_new(f->base, on_deadline, f);
	f->srv = http_server_new(f->base, NULL);
	assert_non_null(f->srv);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(fd, 128), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	f->port = ntohs(sin.sin_port);
	assert_int_equal(http_server_accept_fd(f->srv, fd), 0);
	// Two modules register on the one server, each with its own arg.
	http_server_route(f->srv, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD, "/ping/{id*}", on_ping, 0,
	    (void *)"ping module");
	http_server_route(f->srv, EVHTTP_REQ_POST, "/write", on_write, HTTP_WRITE,
	    (void *)"write module");
	http_server_route(f->srv, EVHTTP_REQ_GET, "/wait", on_wait, 0, f);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fix *f = *state;

	http_server_free(f->srv);
	auth_free(f->auth);
	event_free(f->deadline);
	event_base_free(f->base);
	rmdir(f->dir);
	free(f);
	return 0;
}

static void
test_serve_params(void **state)
{
	struct fix *f = *state;

	request(f, EVHTTP_REQ_GET, "/ping/42", NULL);
	assert_int_equal(f->code, 200);
	assert_string_equal(f->body, "{\n  \"id\": 42\n}\n");
	// The path is percent-decoded once, before it is matched.
	request(f, EVHTTP_REQ_GET, "/p%69ng/%34%32", NULL);
	assert_int_equal(f->code, 200);
	assert_string_equal(f->body, "{\n  \"id\": 42\n}\n");
	request(f, EVHTTP_REQ_GET, "/ping/42?x=1", NULL);
	assert_int_equal(f->code, 200);
	request(f, EVHTTP_REQ_HEAD, "/ping/42", NULL);
	assert_int_equal(f->code, 200);
	assert_string_equal(f->body, "");
	// Junk, too long, a decoded slash: 400 from http_server_param_id.
	request(f, EVHTTP_REQ_GET, "/ping/4x", NULL);
	assert_int_equal(f->code, 400);
	assert_string_equal(f->body, "{\n  \"error\": \"a ping id is a number\"\n}\n");
	request(f, EVHTTP_REQ_GET, "/ping/1234567890123456789", NULL);
	assert_int_equal(f->code, 400);
	request(f, EVHTTP_REQ_GET, "/ping/4%2F2", NULL);
	assert_int_equal(f->code, 400);
	request(f, EVHTTP_REQ_GET, "/ping/", NULL);
	assert_int_equal(f->code, 400);
}

static void
test_serve_not_found(void **state)
{
	struct fix *f = *state;

	request(f, EVHTTP_REQ_GET, "/nowhere", NULL);
	assert_int_equal(f->code, 404);
	assert_string_equal(f->body, "{\n  \"error\": \"no such resource\"\n}\n");
	request(f, EVHTTP_REQ_GET, "/ping", NULL);
	assert_int_equal(f->code, 404);
	request(f, EVHTTP_REQ_GET, "/write/", NULL);
	assert_int_equal(f->code, 404);
}

static void
test_serve_not_allowed(void **state)
{
	struct fix *f = *state;

	// A path that takes only GET and HEAD.
	request(f, EVHTTP_REQ_POST, "/ping/42", NULL);
	assert_int_equal(f->code, 405);
	assert_string_equal(f->allow, "GET, HEAD");
	assert_string_equal(f->body, "{\n  \"error\": \"only GET is supported here\"\n}\n");
	// A path that takes something else: no token is asked for.
	request(f, EVHTTP_REQ_GET, "/write", NULL);
	assert_int_equal(f->code, 405);
	assert_string_equal(f->allow, "POST");
	assert_string_equal(f->www_auth, "");
	assert_string_equal(f->body, "{\n  \"error\": \"method not allowed here\"\n}\n");
	// A path no route knows is read-only, as it always was for the API.
	request(f, EVHTTP_REQ_DELETE, "/nowhere", NULL);
	assert_int_equal(f->code, 405);
	assert_string_equal(f->allow, "GET, HEAD");
	assert_string_equal(f->body, "{\n  \"error\": \"only GET is supported here\"\n}\n");
}

static void
test_serve_tokens(void **state)
{
	struct fix *f = *state;

	// No tokens loaded: every write is refused.
	request(f, EVHTTP_REQ_POST, "/write", f->tok_write);
	assert_int_equal(f->code, 401);
	assert_string_equal(f->body, "{\n  \"error\": \"unknown token\"\n}\n");

	f->auth = load_tokens(f);
	http_server_set_auth(f->srv, f->auth);
	request(f, EVHTTP_REQ_POST, "/write", NULL);
	assert_int_equal(f->code, 401);
	assert_string_equal(f->www_auth, "Bearer");
	assert_string_equal(f->body,
	    "{\n  \"error\": \"a bearer token is required to change anything\"\n}\n");
	request(f, EVHTTP_REQ_POST, "/write", "Bearer nope");
	assert_int_equal(f->code, 401);
	assert_string_equal(f->www_auth, "Bearer");
	assert_string_equal(f->body, "{\n  \"error\": \"unknown token\"\n}\n");
	request(f, EVHTTP_REQ_POST, "/write", f->tok_read);
	assert_int_equal(f->code, 403);
	assert_string_equal(f->www_auth, "");
	assert_string_equal(f->body, "{\n  \"error\": \"this token may only read\"\n}\n");
	request(f, EVHTTP_REQ_POST, "/write", f->tok_write);
	assert_int_equal(f->code, 201);
	assert_string_equal(f->body, "{\n  \"who\": \"ops\"\n}\n");
}

static void
test_serve_waiting_bound(void **state)
{
	struct fix *f = *state;
	struct evhttp_connection *conns[HTTP_MAX_WAITING + 1];

	f->answers = 0;
	for (int i = 0; i < HTTP_MAX_WAITING; i++)
		conns[i] = send_request(f, EVHTTP_REQ_GET, "/wait", NULL);
	// Let all of them arrive and wait; then one more is turned away.
	while (f->nwaits < HTTP_MAX_WAITING && !f->timed_out)
		event_base_loop(f->base, EVLOOP_ONCE);
	assert_int_equal(f->nwaits, HTTP_MAX_WAITING);
	assert_int_equal(f->answers, 0);
	conns[HTTP_MAX_WAITING] = send_request(f, EVHTTP_REQ_GET, "/wait", NULL);
	run_until(f, 1);
	assert_int_equal(f->code, 503);
	assert_string_equal(f->retry_after, "1");
	assert_string_equal(f->body, "{\n  \"error\": \"too many wait\"\n}\n");
	assert_int_equal(f->nwaits, HTTP_MAX_WAITING);
	// The waits end: each is answered, and the bound is free again.
	for (int i = 0; i < f->nwaits; i++) {
		struct evhttp_request *req = http_server_wait_end(f->waits[i]);

		assert_non_null(req);
		http_server_error(req, 503, "the database is unavailable");
	}
	f->nwaits = 0;
	run_until(f, HTTP_MAX_WAITING + 1);
	for (int i = 0; i <= HTTP_MAX_WAITING; i++)
		evhttp_connection_free(conns[i]);
	request(f, EVHTTP_REQ_GET, "/ping/1", NULL);
	assert_int_equal(f->code, 200);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_match_literal),
		cmocka_unit_test(test_match_segment),
		cmocka_unit_test(test_match_rest),
		cmocka_unit_test(test_match_malformed),
		cmocka_unit_test(test_id_parse),
		cmocka_unit_test_setup_teardown(test_serve_params, setup, teardown),
		cmocka_unit_test_setup_teardown(test_serve_not_found, setup, teardown),
		cmocka_unit_test_setup_teardown(test_serve_not_allowed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_serve_tokens, setup, teardown),
		cmocka_unit_test_setup_teardown(test_serve_waiting_bound, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
