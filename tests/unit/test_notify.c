// SPDX-License-Identifier: Apache-2.0
//
// Unit tests for aggregator/notify (the formats are test_alert_format.c's):
// the backoff schedule, and real deliveries on a libevent loop without a database --
// exec channels against /bin/sh scripts (stdin, exit status, stderr as the
// reason, a timeout that kills the whole process group, a body larger than
// a pipe) and webhooks against an in-process evhttp server, including one
// that never answers next to one that does.  Every loop runs under a
// deadline, so a lost callback fails in seconds instead of hanging.
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>

#include "alert_format.h"
#include "notify.h"
#include "clock.h"
#include "xmalloc.h"

#define DEADLINE_MS 20000

static const char payload[] =
    "{\"event\":\"outage\",\"target\":\"api\",\"group\":\"Public API\","
    "\"url\":\"https://api.example.com/health\",\"kind\":\"outage\",\"state\":\"open\","
    "\"started_at\":\"2026-11-25T10:00:00.000000Z\",\"detected_at\":\"2026-11-25T10:00:03.000000Z\","
    "\"resolved_at\":null,\"regions_down\":[\"eu-west\",\"us-east\"],\"regions_up\":[\"ap-south\"],"
    "\"regions_abstaining\":[],\"reasons\":{\"eu-west\":\"503 http_status\"},"
    "\"summary\":\"api is down in 2 of 3 regions (eu-west: 503 <b>&</b>)\"}";

static struct alert_conf
channel(const char *name, enum alert_format format)
{
	struct alert_conf ch = { 0 };

	ch.name = (char *)name;
	ch.url = "http://127.0.0.1:9/";
	ch.format = format;
	ch.routing_key = format == ALERT_FORMAT_PAGERDUTY ? "R0UT1NG" : NULL;
	ch.events = ALERT_ON_OUTAGE | ALERT_ON_RECOVERY;
	ch.timeout_ms = 10000;
	return ch;
}

static void
test_backoff(void **state)
{
	(void)state;
	assert_int_equal(notify_backoff_ms(0), 1000);
	assert_int_equal(notify_backoff_ms(1), 2000);
	assert_int_equal(notify_backoff_ms(2), 4000);
	assert_int_equal(notify_backoff_ms(8), 256000);
	assert_int_equal(notify_backoff_ms(9), 300000);
	assert_int_equal(notify_backoff_ms(40), 300000);
	assert_int_equal(notify_backoff_ms(-1), 1000);
}

// --- deliveries on a loop ---

struct outcome {
	int done;
	int status;
	char error[300];
	int64_t at_us;
};

struct fix {
	struct event_base *base;
	struct event *deadline;
	struct agg_conf conf;
	struct notify *notify;
	char dir[64];
	bool timed_out;
	// the webhook receiver
	struct evhttp *http;
	int port;
	int received;
	char last_body[256];
};

static void
on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct fix *f = arg;

	f->timed_out = true;
	event_base_loopbreak(f->base);
}

static void
on_outcome(int status, const char *error, void *arg)
{
	struct outcome *o = arg;

	o->done++;
	o->status = status;
	o->at_us = clock_mono_us();
	snprintf(o->error, sizeof(o->error), "%s", error != NULL ? error : "");
}

// Runs the loop until every outcome is in.
static void
run_until(struct fix *f, struct outcome *const *list, size_t n)
{
	for (;;) {
		size_t done = 0;

		for (size_t i = 0; i < n; i++)
			done += list[i]->done > 0;
		if (done == n)
			return;
		if (f->timed_out)
			fail_msg("deadline passed with %zu of %zu outcomes", done, n);
		event_base_loop(f->base, EVLOOP_ONCE);
	}
}

static void
receiver_handle(struct evhttp_request *req, void *arg)
{
	struct fix *f = arg;
	const char *uri = evhttp_request_get_uri(req);
	struct evbuffer *in = evhttp_request_get_input_buffer(req), *out;
	size_t len = evbuffer_get_length(in);

	f->received++;
	if (len >= sizeof(f->last_body))
		len = sizeof(f->last_body) - 1;
	evbuffer_copyout(in, f->last_body, len);
	f->last_body[len] = '\0';
	if (strcmp(uri, "/hang") == 0)
		return; // never answered; evhttp_free closes it
	out = evbuffer_new();
	if (strcmp(uri, "/fail") == 0) {
		evbuffer_add_printf(out, "{\"error\":\"receiver\"}\nbroken\x01");
		evhttp_send_reply(req, 500, "Internal Server Error", out);
	} else {
		evbuffer_add_printf(out, "{}");
		evhttp_send_reply(req, 202, "Accepted", out);
	}
	evbuffer_free(out);
}

static int
setup(void **state)
{
	struct fix *f = xcalloc(1, sizeof(*f));
	struct timeval tv = clock_tv(DEADLINE_MS * 1000);
	struct evhttp_bound_socket *sock;
	struct sockaddr_in sin;
	socklen_t slen = sizeof(sin);

	f->base = event_base_new();
	assert_non_null(f->base);
	f->deadline = evtimer_new(f->base, on_deadline, f);
	evtimer_add(f->deadline, &tv);
	f->notify = notify_new(f->base, NULL, &f->conf);
	snprintf(f->dir, sizeof(f->dir), "/tmp/vantage-test-alert-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	f->http = evhttp_new(f->base);
	evhttp_set_gencb(f->http, receiver_handle, f);
	sock = evhttp_bind_socket_with_handle(f->http, "127.0.0.1", 0);
	assert_non_null(sock);
	assert_int_equal(
	    getsockname(evhttp_bound_socket_get_fd(sock), (struct sockaddr *)&sin, &slen), 0);
	f->port = ntohs(sin.sin_port);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fix *f = *state;
	char cmd[128];

	notify_free(f->notify);
	evhttp_free(f->http);
	event_free(f->deadline);
	event_base_free(f->base);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static struct alert_conf
exec_channel(const char *script, const char *arg)
{
	static char *argv[5];
	struct alert_conf ch = { 0 };

	argv[0] = "/bin/sh";
	argv[1] = "-c";
	argv[2] = (char *)script;
	argv[3] = (char *)arg;
	argv[4] = NULL;
	ch.name = "exec";
	ch.is_exec = true;
	ch.argv = argv;
	ch.timeout_ms = 5000;
	return ch;
}

static char *
read_file(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "r");
	char *data;
	long size;

	assert_non_null(fp);
	assert_int_equal(fseek(fp, 0, SEEK_END), 0);
	size = ftell(fp);
	rewind(fp);
	data = xmalloc((size_t)size + 1);
	assert_int_equal(fread(data, 1, (size_t)size, fp), (size_t)size);
	data[size] = '\0';
	fclose(fp);
	*len = (size_t)size;
	return data;
}

static void
test_exec_stdin(void **state)
{
	struct fix *f = *state;
	char path[128], err[256];
	struct alert_conf ch;
	struct outcome o = { 0 };
	char *body, *got;
	size_t len;

	snprintf(path, sizeof(path), "%s/stdin.json", f->dir);
	ch = exec_channel("cat > \"$0\"", path);
	body = alert_format_body(&ch, 42, "outage", payload);
	assert_int_equal(notify_deliver(f->notify, &ch, body, on_outcome, &o, err, sizeof(err)), 0);
	run_until(f, (struct outcome *[]){ &o }, 1);
	assert_int_equal(o.status, 0);
	got = read_file(path, &len);
	assert_string_equal(got, body);
	free(got);
	free(body);
}

// More than a pipe holds: the write must wait for the reader, not block.
static void
test_exec_large_body(void **state)
{
	struct fix *f = *state;
	size_t big = 1024 * 1024, len;
	char path[128], err[256];
	struct alert_conf ch;
	struct outcome o = { 0 };
	char *body = xmalloc(big + 1), *got;

	memset(body, 'x', big);
	body[big] = '\0';
	snprintf(path, sizeof(path), "%s/big", f->dir);
	ch = exec_channel("sleep 0.2; cat > \"$0\"", path);
	assert_int_equal(notify_deliver(f->notify, &ch, body, on_outcome, &o, err, sizeof(err)), 0);
	run_until(f, (struct outcome *[]){ &o }, 1);
	assert_int_equal(o.status, 0);
	got = read_file(path, &len);
	assert_int_equal(len, big);
	free(got);
	free(body);
}

// A failure is retried by the sender; here: -1 and the command's own words.
static void
test_exec_failure(void **state)
{
	struct fix *f = *state;
	struct alert_conf ch = exec_channel("cat >/dev/null; echo \"pager is off\" >&2; "
					    "echo second line >&2; exit 1",
	    "x");
	struct outcome o = { 0 };
	char err[256];

	assert_int_equal(notify_deliver(f->notify, &ch, "{}", on_outcome, &o, err, sizeof(err)), 0);
	run_until(f, (struct outcome *[]){ &o }, 1);
	assert_int_equal(o.status, -1);
	assert_string_equal(o.error, "exited with status 1: pager is off");
}

// A command that never reads stdin still succeeds by its exit status
// (the write fails with EPIPE, which must not kill us).
static void
test_exec_ignores_stdin(void **state)
{
	struct fix *f = *state;
	size_t big = 256 * 1024;
	struct alert_conf ch = exec_channel("exit 0", "x");
	struct outcome o = { 0 };
	char *body = xmalloc(big + 1), err[256];

	memset(body, 'y', big);
	body[big] = '\0';
	assert_int_equal(notify_deliver(f->notify, &ch, body, on_outcome, &o, err, sizeof(err)), 0);
	run_until(f, (struct outcome *[]){ &o }, 1);
	assert_int_equal(o.status, 0);
	free(body);
}

static void
test_exec_missing(void **state)
{
	struct fix *f = *state;
	char *argv[] = { "/nonexistent/page-me", NULL };
	struct alert_conf ch = exec_channel("", NULL);
	struct outcome o = { 0 };
	char err[256];

	ch.argv = argv;
	assert_int_equal(notify_deliver(f->notify, &ch, "{}", on_outcome, &o, err, sizeof(err)), 0);
	run_until(f, (struct outcome *[]){ &o }, 1);
	assert_int_equal(o.status, -1);
	assert_string_equal(o.error, "exited with status 127: cannot execute the alert command");
}

static bool
process_gone(pid_t pid)
{
	char path[64], stat[256];
	FILE *fp;
	bool gone;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	fp = fopen(path, "r");
	if (fp == NULL)
		return true;
	// A zombie waiting for init is dead enough.
	gone = fgets(stat, sizeof(stat), fp) != NULL && strstr(stat, ") Z ") != NULL;
	fclose(fp);
	return gone;
}

// The timeout kills the process group: a script's own children too.
static void
test_exec_timeout(void **state)
{
	struct fix *f = *state;
	char path[128], err[256], *text;
	struct alert_conf ch;
	struct outcome o = { 0 };
	int64_t start = clock_mono_us();
	size_t len;
	long grandchild;

	snprintf(path, sizeof(path), "%s/pid", f->dir);
	ch = exec_channel("sleep 60 & echo $! > \"$0\"; wait", path);
	ch.timeout_ms = 1000;
	assert_int_equal(notify_deliver(f->notify, &ch, "{}", on_outcome, &o, err, sizeof(err)), 0);
	run_until(f, (struct outcome *[]){ &o }, 1);
	assert_int_equal(o.status, -1);
	assert_string_equal(o.error, "timed out after 1000 ms; process group killed");
	assert_true(clock_mono_us() - start < 5 * 1000000);
	text = read_file(path, &len);
	grandchild = strtol(text, NULL, 10);
	free(text);
	assert_true(grandchild > 0);
	for (int i = 0; i < 50 && !process_gone((pid_t)grandchild); i++)
		usleep(20000);
	assert_true(process_gone((pid_t)grandchild));
}

static struct alert_conf
hook_channel(struct fix *f, const char *path, char *url, size_t urllen)
{
	struct alert_conf ch = channel("hook", ALERT_FORMAT_JSON);

	snprintf(url, urllen, "http://127.0.0.1:%d%s", f->port, path);
	ch.url = url;
	return ch;
}

static void
test_webhook(void **state)
{
	struct fix *f = *state;
	char url[128], err[256];
	struct alert_conf ok = hook_channel(f, "/ok", url, sizeof(url));
	struct outcome o = { 0 };

	assert_int_equal(
	    notify_deliver(f->notify, &ok, "{\"n\":1}", on_outcome, &o, err, sizeof(err)), 0);
	run_until(f, (struct outcome *[]){ &o }, 1);
	assert_int_equal(o.status, 0);
	assert_int_equal(f->received, 1);
	assert_string_equal(f->last_body, "{\"n\":1}");
}

static void
test_webhook_failure(void **state)
{
	struct fix *f = *state;
	char url[128], err[256];
	struct alert_conf bad = hook_channel(f, "/fail", url, sizeof(url));
	struct outcome o = { 0 }, refused = { 0 };

	assert_int_equal(notify_deliver(f->notify, &bad, "{}", on_outcome, &o, err, sizeof(err)),
	    0);
	// Port 9 (discard) is closed here: connection refused.
	bad.url = "http://127.0.0.1:9/";
	assert_int_equal(
	    notify_deliver(f->notify, &bad, "{}", on_outcome, &refused, err, sizeof(err)), 0);
	run_until(f, (struct outcome *[]){ &o, &refused }, 2);
	assert_int_equal(o.status, -1);
	// The receiver's words, made printable and kept on one line.
	assert_string_equal(o.error, "HTTP 500: {\"error\":\"receiver\"} broken?");
	assert_int_equal(refused.status, -1);
	assert_non_null(strstr(refused.error, "onnect"));
}

// Scenario 18 in small: a receiver that never answers delays nobody else.
static void
test_webhook_hang(void **state)
{
	struct fix *f = *state;
	char url1[128], url2[128], err[256];
	struct alert_conf hang = hook_channel(f, "/hang", url1, sizeof(url1));
	struct alert_conf ok = hook_channel(f, "/ok", url2, sizeof(url2));
	struct outcome hung = { 0 }, fine = { 0 };
	struct notify_stats stats;
	int64_t start;

	hang.timeout_ms = 1500;
	start = clock_mono_us();
	assert_int_equal(
	    notify_deliver(f->notify, &hang, "{}", on_outcome, &hung, err, sizeof(err)), 0);
	assert_int_equal(notify_deliver(f->notify, &ok, "{}", on_outcome, &fine, err, sizeof(err)),
	    0);
	notify_get_stats(f->notify, &stats);
	assert_int_equal(stats.in_flight, 2);
	run_until(f, (struct outcome *[]){ &fine }, 1);
	assert_int_equal(fine.status, 0);
	assert_int_equal(hung.done, 0);
	run_until(f, (struct outcome *[]){ &hung }, 1);
	assert_int_equal(hung.status, -1);
	assert_non_null(strstr(hung.error, "imed out"));
	assert_true(fine.at_us < hung.at_us);
	assert_true(hung.at_us - start >= 1400 * 1000);
	print_message("ok receiver answered in %.1f ms while the other hung for %.1f ms\n",
	    (double)(fine.at_us - start) / 1000, (double)(hung.at_us - start) / 1000);
	notify_get_stats(f->notify, &stats);
	assert_int_equal(stats.in_flight, 0);
}

// notify_free with deliveries in flight: no callbacks, no leaks, no orphans.
static void
test_abandon(void **state)
{
	struct fix *f = *state;
	char url[128], err[256];
	struct alert_conf hang = hook_channel(f, "/hang", url, sizeof(url));
	struct alert_conf sleeper = exec_channel("sleep 60", "x");
	struct outcome a = { 0 }, b = { 0 };

	assert_int_equal(notify_deliver(f->notify, &hang, "{}", on_outcome, &a, err, sizeof(err)),
	    0);
	assert_int_equal(
	    notify_deliver(f->notify, &sleeper, "{}", on_outcome, &b, err, sizeof(err)), 0);
	for (int i = 0; i < 20; i++)
		event_base_loop(f->base, EVLOOP_NONBLOCK);
	notify_free(f->notify);
	f->notify = NULL;
	assert_int_equal(a.done + b.done, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_backoff),
		cmocka_unit_test_setup_teardown(test_exec_stdin, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exec_large_body, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exec_failure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exec_ignores_stdin, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exec_missing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exec_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_webhook, setup, teardown),
		cmocka_unit_test_setup_teardown(test_webhook_failure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_webhook_hang, setup, teardown),
		cmocka_unit_test_setup_teardown(test_abandon, setup, teardown),
	};

	// As in the aggregator: a command that exits without reading its
	// stdin must not take the process down.
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
