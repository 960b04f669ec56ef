// SPDX-License-Identifier: Apache-2.0
//
// Unit tests for common/curl_ev with real transfers to an evhttp server on
// the same libevent base (loopback, a free port).  Checked: every transfer
// ends in exactly one completion, with the easy handle already out of the
// adapter so the callback can add it again; many transfers at once all
// complete (on fresh connections, so descriptor numbers are reused);
// curl's timeouts fire through the adapter's timer; a refused connection
// is reported, not lost; and a removed transfer never completes.  Not
// covered: a socket curl closes without CURL_POLL_REMOVE first (the close
// callback's case), which these transfers do not provoke.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>

#include "clock.h"
#include "curl_ev.h"

#define MAX_EASY 64

struct fix {
	struct event_base *base;
	struct evhttp *http;
	struct evhttp_bound_socket *bound;
	int port;
	struct curl_ev *ce;
	CURL *easy[MAX_EASY];
	int n_easy;
	int dones;
	int done_of[MAX_EASY]; // completions per handle
	CURLcode last_rc;
	long last_status;
	int readd; // handles the callback adds again, once each
	int expect;
};

// "/" answers 200 "ok"; "/hang" never answers.
static void
on_request(struct evhttp_request *req, void *arg)
{
	struct evbuffer *body;

	if (strcmp(evhttp_request_get_uri(req), "/hang") == 0)
		return;
	body = evbuffer_new();
	evbuffer_add(body, "ok", 2);
	evhttp_send_reply(req, 200, "OK", body);
	evbuffer_free(body);
}

static int
easy_index(const struct fix *f, CURL *easy)
{
	for (int i = 0; i < f->n_easy; i++)
		if (f->easy[i] == easy)
			return i;
	return -1;
}

static void
on_done(CURL *easy, CURLcode rc, void *arg)
{
	struct fix *f = arg;
	int i = easy_index(f, easy);

	assert_true(i >= 0);
	f->dones++;
	f->done_of[i]++;
	f->last_rc = rc;
	f->last_status = 0;
	curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &f->last_status);
	// Out of the adapter already: adding it again must work.
	if (f->readd > 0 && f->done_of[i] == 1) {
		f->readd--;
		assert_int_equal(curl_ev_add(f->ce, easy), 0);
	}
	if (f->dones >= f->expect)
		event_base_loopbreak(f->base);
}

static int
setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));
	evutil_socket_t fd;
	struct sockaddr_storage ss;
	ev_socklen_t len = sizeof(ss);

	if (f == NULL)
		return -1;
	*state = f;
	f->base = event_base_new();
	f->http = evhttp_new(f->base);
	assert_non_null(f->http);
	evhttp_set_gencb(f->http, on_request, f);
	f->bound = evhttp_bind_socket_with_handle(f->http, "127.0.0.1", 0);
	assert_non_null(f->bound);
	fd = evhttp_bound_socket_get_fd(f->bound);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
	f->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	f->ce = curl_ev_new(f->base, on_done, f);
	return 0;
}

static int
teardown(void **state)
{
	struct fix *f = *state;

	for (int i = 0; i < f->n_easy; i++)
		curl_ev_remove(f->ce, f->easy[i]);
	for (int i = 0; i < f->n_easy; i++)
		curl_easy_cleanup(f->easy[i]);
	curl_ev_free(f->ce);
	evhttp_free(f->http);
	event_base_free(f->base);
	free(f);
	return 0;
}

static size_t
discard(char *data, size_t size, size_t nmemb, void *userp)
{
	return size * nmemb;
}

static CURL *
new_easy(struct fix *f, const char *path, long timeout_ms, int port)
{
	char url[128];
	CURL *e = curl_easy_init();

	assert_non_null(e);
	assert_true(f->n_easy < MAX_EASY);
	f->easy[f->n_easy++] = e;
	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	// A new connection each time, as the agent's probes make: sockets
	// come and go, and their numbers are reused.
	curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
	return e;
}

// Runs the loop until f->expect completions, or fails after 10 s.
static void
run(struct fix *f)
{
	struct timeval limit = { 10, 0 };

	event_base_loopexit(f->base, &limit);
	event_base_dispatch(f->base);
	if (f->dones < f->expect)
		fail_msg("%d of %d transfers completed in 10 s", f->dones, f->expect);
}

// Runs the loop for ms milliseconds whatever happens.
static void
run_for(struct fix *f, int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	f->expect = 1 << 30;
	event_base_loopexit(f->base, &tv);
	event_base_dispatch(f->base);
}

static void
test_one_transfer(void **state)
{
	struct fix *f = *state;

	assert_int_equal(curl_ev_add(f->ce, new_easy(f, "/", 5000, f->port)), 0);
	f->expect = 1;
	run(f);
	assert_int_equal(f->dones, 1);
	assert_int_equal(f->last_rc, CURLE_OK);
	assert_int_equal(f->last_status, 200);
	// Nothing more comes for it.
	run_for(f, 200);
	assert_int_equal(f->dones, 1);
}

// 40 at once, each added again from its callback: 80 completions, two per
// handle, all 200.
static void
test_many_and_readd(void **state)
{
	struct fix *f = *state;
	const int n = 40;

	for (int i = 0; i < n; i++)
		assert_int_equal(curl_ev_add(f->ce, new_easy(f, "/", 5000, f->port)), 0);
	f->readd = n;
	f->expect = 2 * n;
	run(f);
	assert_int_equal(f->dones, 2 * n);
	for (int i = 0; i < n; i++)
		assert_int_equal(f->done_of[i], 2);
	assert_int_equal(f->last_rc, CURLE_OK);
	assert_int_equal(f->last_status, 200);
}

// curl's own timeout reaches it through the adapter's timer.
static void
test_timeout(void **state)
{
	struct fix *f = *state;
	int64_t start = clock_mono_us(), took_ms;

	assert_int_equal(curl_ev_add(f->ce, new_easy(f, "/hang", 300, f->port)), 0);
	f->expect = 1;
	run(f);
	took_ms = (clock_mono_us() - start) / 1000;
	assert_int_equal(f->last_rc, CURLE_OPERATION_TIMEDOUT);
	assert_true(took_ms >= 250 && took_ms < 5000);
}

// A refused connection is a completion too.
static void
test_refused(void **state)
{
	struct fix *f = *state;
	int port = f->port;

	// The server's port, closed.
	evhttp_del_accept_socket(f->http, f->bound);
	assert_int_equal(curl_ev_add(f->ce, new_easy(f, "/", 5000, port)), 0);
	f->expect = 1;
	run(f);
	assert_int_equal(f->last_rc, CURLE_COULDNT_CONNECT);
}

// A removed transfer never completes, and the adapter goes on serving
// others.
static void
test_remove(void **state)
{
	struct fix *f = *state;
	CURL *hung = new_easy(f, "/hang", 400, f->port);

	assert_int_equal(curl_ev_add(f->ce, hung), 0);
	run_for(f, 100);
	curl_ev_remove(f->ce, hung);
	run_for(f, 600); // past its timeout
	assert_int_equal(f->dones, 0);
	assert_int_equal(curl_ev_add(f->ce, new_easy(f, "/", 5000, f->port)), 0);
	f->expect = 1;
	run(f);
	assert_int_equal(f->done_of[0], 0);
	assert_int_equal(f->done_of[1], 1);
	assert_int_equal(f->last_rc, CURLE_OK);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_one_transfer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_and_readd, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_remove, setup, teardown),
	};
	int rc;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return rc;
}
