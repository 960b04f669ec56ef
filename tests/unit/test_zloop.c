// SPDX-License-Identifier: Apache-2.0
//
// Unit tests for common/zloop with a real ZeroMQ context and a real libevent
// base.  ZMQ_FD is edge-triggered, so the failure these tests look for is a
// message left unread: a burst must be delivered whole, also when the
// callbacks send on the socket they are reading (a send can swallow the
// edge).  Every loop runs under a deadline, so a lost message fails the test
// in seconds instead of hanging it.
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <zmq.h>

#include "zloop.h"

#define BURST 1000
#define DEADLINE_MS 10000
#define MAX_SEEN 8

// One ROUTER and one DEALER on one base, with what their callbacks saw.
struct fix {
	void *ctx;
	struct event_base *base;
	struct event *deadline;
	int timed_out;
	void *router;
	void *dealer;
	struct zloop *zr;
	struct zloop *zd;
	char endpoint[256];

	int router_msgs; // messages the ROUTER callback got
	int dealer_msgs;
	int out_of_order;          // payload index different from the count
	int wrong_parts;           // messages with an unexpected frame count
	int sent;                  // messages the DEALER has sent so far
	int nparts_seen[MAX_SEEN]; // nparts of the first messages, in order
	char frames_seen[MAX_SEEN][ZLOOP_MAX_PARTS][16];
	int send_errors;
};

static void
on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct fix *f = arg;

	f->timed_out = 1;
	event_base_loopexit(f->base, NULL);
}

static void
setsockopt_int(void *sock, int option, int value)
{
	assert_int_equal(zmq_setsockopt(sock, option, &value, sizeof(value)), 0);
}

// Binds a ROUTER to endpoint (tcp port 0 picks a free one) and, when asked,
// connects a DEALER with routing id "dealer-1" to it.  High-water marks are raised so
// that only draining, not back-pressure, decides whether a burst arrives.
static void
fix_open(struct fix *f, const char *endpoint, int connect)
{
	size_t len = sizeof(f->endpoint);

	memset(f, 0, sizeof(*f));
	f->ctx = zmq_ctx_new();
	assert_non_null(f->ctx);
	f->base = event_base_new();
	assert_non_null(f->base);
	f->deadline = evtimer_new(f->base, on_deadline, f);
	f->router = zmq_socket(f->ctx, ZMQ_ROUTER);
	f->dealer = zmq_socket(f->ctx, ZMQ_DEALER);
	assert_non_null(f->router);
	assert_non_null(f->dealer);
	setsockopt_int(f->router, ZMQ_LINGER, 0);
	setsockopt_int(f->dealer, ZMQ_LINGER, 0);
	setsockopt_int(f->router, ZMQ_SNDHWM, 10 * BURST);
	setsockopt_int(f->router, ZMQ_RCVHWM, 10 * BURST);
	setsockopt_int(f->dealer, ZMQ_SNDHWM, 10 * BURST);
	setsockopt_int(f->dealer, ZMQ_RCVHWM, 10 * BURST);
	assert_int_equal(zmq_setsockopt(f->dealer, ZMQ_ROUTING_ID, "dealer-1", 8), 0);
	assert_int_equal(zmq_bind(f->router, endpoint), 0);
	assert_int_equal(zmq_getsockopt(f->router, ZMQ_LAST_ENDPOINT, f->endpoint, &len), 0);
	if (connect)
		assert_int_equal(zmq_connect(f->dealer, f->endpoint), 0);
}

static void
fix_close(struct fix *f)
{
	zloop_free(f->zr);
	zloop_free(f->zd);
	if (f->router != NULL)
		zmq_close(f->router);
	if (f->dealer != NULL)
		zmq_close(f->dealer);
	event_free(f->deadline);
	event_base_free(f->base);
	assert_int_equal(zmq_ctx_term(f->ctx), 0);
}

// Runs the loop until a callback breaks it or the deadline passes; fails
// the test on the deadline.
static void
fix_run(struct fix *f, const char *waiting_for)
{
	struct timeval tv = { DEADLINE_MS / 1000, (DEADLINE_MS % 1000) * 1000 };

	f->timed_out = 0;
	evtimer_add(f->deadline, &tv);
	assert_int_equal(event_base_dispatch(f->base), 0);
	evtimer_del(f->deadline);
	if (f->timed_out)
		fail_msg("timed out after %d ms waiting for %s (router got %d, dealer got %d)",
		    DEADLINE_MS, waiting_for, f->router_msgs, f->dealer_msgs);
}

static void
record(struct fix *f, int count, const struct zloop_frame *parts, int nparts)
{
	if (count >= MAX_SEEN)
		return;
	f->nparts_seen[count] = nparts;
	for (int i = 0; i < nparts; i++) {
		size_t len = zloop_frame_size(&parts[i]);

		if (len >= sizeof(f->frames_seen[0][0]))
			len = sizeof(f->frames_seen[0][0]) - 1;
		memcpy(f->frames_seen[count][i], zloop_frame_data(&parts[i]), len);
		f->frames_seen[count][i][len] = '\0';
	}
}

// Payload of message i: its index, so loss and reordering both show.
static int
dealer_send_index(struct fix *f, int i)
{
	const void *data[1] = { &i };
	size_t len[1] = { sizeof(i) };

	return zloop_send(f->zd, data, len, 1);
}

static int
payload_index(const struct zloop_frame *part)
{
	int i = -1;

	if (zloop_frame_size(part) == sizeof(i))
		memcpy(&i, zloop_frame_data(part), sizeof(i));
	return i;
}

static int
send_strings(struct zloop *z, const char *const *frames, int n)
{
	const void *data[16];
	size_t len[16];

	for (int i = 0; i < n; i++) {
		data[i] = frames[i];
		len[i] = strlen(frames[i]);
	}
	return zloop_send(z, data, len, n);
}

static void
router_count(const struct zloop_frame *parts, int nparts, void *arg)
{
	struct fix *f = arg;

	if (nparts != 2)
		f->wrong_parts++;
	else if (payload_index(&parts[1]) != f->router_msgs)
		f->out_of_order++;
	if (++f->router_msgs == BURST)
		event_base_loopbreak(f->base);
}

static void
dealer_ignore(const struct zloop_frame *parts, int nparts, void *arg)
{
}

// BURST messages queued before the loop runs arrive in far fewer edges
// than messages; every one must reach the callback, in order.
static void
burst(const char *endpoint)
{
	struct fix f;

	fix_open(&f, endpoint, 1);
	f.zr = zloop_new(f.base, f.router, router_count, &f);
	f.zd = zloop_new(f.base, f.dealer, dealer_ignore, &f);
	assert_non_null(f.zr);
	assert_non_null(f.zd);
	for (int i = 0; i < BURST; i++)
		assert_int_equal(dealer_send_index(&f, i), 0);
	fix_run(&f, "a burst");
	assert_int_equal(f.router_msgs, BURST);
	assert_int_equal(f.wrong_parts, 0);
	assert_int_equal(f.out_of_order, 0);
	fix_close(&f);
}

static void
test_burst_inproc(void **state)
{
	burst("inproc://zloop-burst");
}

static void
test_burst_tcp(void **state)
{
	burst("tcp://127.0.0.1:*");
}

// The ROUTER echoes every message from inside its callback, and the DEALER
// answers every echo with a new message from inside its own, keeping a
// window of messages in flight both ways: each side reads while sends on
// the same socket keep eating the edges that announced more input.
#define WINDOW 100

static void
router_echo(const struct zloop_frame *parts, int nparts, void *arg)
{
	struct fix *f = arg;
	const void *data[2];
	size_t len[2];

	f->router_msgs++;
	if (nparts != 2) {
		f->wrong_parts++;
		return;
	}
	for (int i = 0; i < 2; i++) {
		data[i] = zloop_frame_data(&parts[i]);
		len[i] = zloop_frame_size(&parts[i]);
	}
	if (zloop_send(f->zr, data, len, 2) < 0)
		f->send_errors++;
}

static void
dealer_refill(const struct zloop_frame *parts, int nparts, void *arg)
{
	struct fix *f = arg;

	if (nparts != 1)
		f->wrong_parts++;
	else if (payload_index(&parts[0]) != f->dealer_msgs)
		f->out_of_order++;
	f->dealer_msgs++;
	if (f->sent < BURST) {
		if (dealer_send_index(f, f->sent) < 0)
			f->send_errors++;
		f->sent++;
	}
	if (f->dealer_msgs == BURST)
		event_base_loopbreak(f->base);
}

static void
echo_window(const char *endpoint)
{
	struct fix f;

	fix_open(&f, endpoint, 1);
	f.zr = zloop_new(f.base, f.router, router_echo, &f);
	f.zd = zloop_new(f.base, f.dealer, dealer_refill, &f);
	for (f.sent = 0; f.sent < WINDOW; f.sent++)
		assert_int_equal(dealer_send_index(&f, f.sent), 0);
	fix_run(&f, "echoes");
	assert_int_equal(f.sent, BURST);
	assert_int_equal(f.router_msgs, BURST);
	assert_int_equal(f.dealer_msgs, BURST);
	assert_int_equal(f.send_errors, 0);
	assert_int_equal(f.wrong_parts, 0);
	assert_int_equal(f.out_of_order, 0);
	fix_close(&f);
}

static void
test_echo_window_inproc(void **state)
{
	echo_window("inproc://zloop-echo");
}

static void
test_echo_window_tcp(void **state)
{
	echo_window("tcp://127.0.0.1:*");
}

// Ping-pong: exactly one message in flight, each sent from the callback
// that consumed the previous one.
static void
dealer_pingpong(const struct zloop_frame *parts, int nparts, void *arg)
{
	struct fix *f = arg;

	if (nparts != 1 || payload_index(&parts[0]) != f->dealer_msgs)
		f->out_of_order++;
	if (++f->dealer_msgs == BURST) {
		event_base_loopbreak(f->base);
		return;
	}
	if (dealer_send_index(f, f->dealer_msgs) < 0)
		f->send_errors++;
}

static void
test_pingpong_tcp(void **state)
{
	struct fix f;

	fix_open(&f, "tcp://127.0.0.1:*", 1);
	f.zr = zloop_new(f.base, f.router, router_echo, &f);
	f.zd = zloop_new(f.base, f.dealer, dealer_pingpong, &f);
	assert_int_equal(dealer_send_index(&f, 0), 0);
	fix_run(&f, "ping-pong replies");
	assert_int_equal(f.dealer_msgs, BURST);
	assert_int_equal(f.router_msgs, BURST);
	assert_int_equal(f.out_of_order, 0);
	assert_int_equal(f.send_errors, 0);
	fix_close(&f);
}

static void
router_count_quietly(const struct zloop_frame *parts, int nparts, void *arg)
{
	struct fix *f = arg;

	f->router_msgs++;
}

static void
dealer_once(const struct zloop_frame *parts, int nparts, void *arg)
{
	struct fix *f = arg;

	record(f, f->dealer_msgs++, parts, nparts);
	event_base_loopbreak(f->base);
}

static void
router_once(const struct zloop_frame *parts, int nparts, void *arg)
{
	struct fix *f = arg;

	record(f, f->router_msgs++, parts, nparts);
	event_base_loopbreak(f->base);
}

// The case zloop_kick exists for, made deterministic with inproc: a
// message reaches the DEALER while the loop is idle, then a send on the
// DEALER processes the socket's commands and clears the descriptor that
// announced it.  Nothing else will ever wake the DEALER, so the message is
// delivered only if zloop_send re-checks the socket.
static void
test_send_eats_edge(void **state)
{
	static const char *const hello[] = { "hello" };
	static const char *const to_dealer[] = { "dealer-1", "pending" };
	static const char *const unrelated[] = { "unrelated" };
	struct fix f;
	const void *data[2];
	size_t len[2];

	fix_open(&f, "inproc://zloop-edge", 1);
	f.zr = zloop_new(f.base, f.router, router_once, &f);
	f.zd = zloop_new(f.base, f.dealer, dealer_once, &f);
	assert_int_equal(send_strings(f.zd, hello, 1), 0);
	fix_run(&f, "the hello");
	assert_int_equal(f.router_msgs, 1);
	// Let both sockets settle: each has found its input empty, so the
	// next arrival is announced by a fresh edge.
	assert_int_equal(event_base_loop(f.base, EVLOOP_NONBLOCK), 0);
	assert_int_equal(f.dealer_msgs, 0);

	for (int i = 0; i < 2; i++) {
		data[i] = to_dealer[i];
		len[i] = strlen(to_dealer[i]);
	}
	// Straight to ZeroMQ, so that no zloop call re-checks the DEALER.
	assert_int_equal(zmq_send(f.router, data[0], len[0], ZMQ_SNDMORE), (int)len[0]);
	assert_int_equal(zmq_send(f.router, data[1], len[1], 0), (int)len[1]);
	zloop_free(f.zr);
	f.zr = zloop_new(f.base, f.router, router_count_quietly, &f);
	// libzmq processes commands on a send only when it last did so more
	// than max_command_delay (about a millisecond) ago; wait so this
	// send does, as one in production eventually will.
	nanosleep(&(struct timespec){ .tv_nsec = 20 * 1000 * 1000 }, NULL);
	assert_int_equal(send_strings(f.zd, unrelated, 1), 0);
	fix_run(&f, "the message whose edge the send consumed");
	assert_int_equal(f.dealer_msgs, 1);
	assert_int_equal(f.nparts_seen[0], 1);
	assert_string_equal(f.frames_seen[0][0], "pending");
	fix_close(&f);
}

// Messages queued before zloop_new, whose edge someone else already
// consumed (here a ZMQ_EVENTS query), are still delivered.
static void
test_input_before_zloop(void **state)
{
	struct fix f;
	int events = 0;
	size_t len = sizeof(events);

	fix_open(&f, "inproc://zloop-early", 1);
	f.zd = zloop_new(f.base, f.dealer, dealer_ignore, &f);
	for (int i = 0; i < 3; i++)
		assert_int_equal(dealer_send_index(&f, i), 0);
	assert_int_equal(zmq_getsockopt(f.router, ZMQ_EVENTS, &events, &len), 0);
	assert_true(events & ZMQ_POLLIN);
	f.zr = zloop_new(f.base, f.router, router_count, &f);
	f.router_msgs = BURST - 3; // router_count stops the loop at BURST
	fix_run(&f, "messages queued before zloop_new");
	assert_int_equal(f.router_msgs, BURST);
	fix_close(&f);
}

static void
router_record(const struct zloop_frame *parts, int nparts, void *arg)
{
	struct fix *f = arg;

	record(f, f->router_msgs, parts, nparts);
	if (++f->router_msgs == 2)
		event_base_loopbreak(f->base);
}

static void
dealer_record(const struct zloop_frame *parts, int nparts, void *arg)
{
	struct fix *f = arg;

	record(f, f->dealer_msgs, parts, nparts);
	if (++f->dealer_msgs == 2)
		event_base_loopbreak(f->base);
}

// Frames of a multipart message arrive together, counted and in order,
// up to ZLOOP_MAX_PARTS.
static void
test_multipart(void **state)
{
	static const char *const two[] = { "a", "bc" };
	static const char *const three[] = { "x", "", "z" };
	static const char *const reply2[] = { "dealer-1", "head", "body" };
	static const char *const reply4[] = { "dealer-1", "1", "2", "3", "4" };
	struct fix f;

	fix_open(&f, "inproc://zloop-multipart", 1);
	f.zr = zloop_new(f.base, f.router, router_record, &f);
	f.zd = zloop_new(f.base, f.dealer, dealer_record, &f);
	assert_int_equal(send_strings(f.zd, two, 2), 0);
	assert_int_equal(send_strings(f.zd, three, 3), 0);
	fix_run(&f, "two multipart messages at the ROUTER");
	// The ROUTER prepends the sender's routing id.
	assert_int_equal(f.nparts_seen[0], 3);
	assert_string_equal(f.frames_seen[0][0], "dealer-1");
	assert_string_equal(f.frames_seen[0][1], "a");
	assert_string_equal(f.frames_seen[0][2], "bc");
	assert_int_equal(f.nparts_seen[1], 4);
	assert_string_equal(f.frames_seen[1][1], "x");
	assert_string_equal(f.frames_seen[1][2], "");
	assert_string_equal(f.frames_seen[1][3], "z");

	memset(f.nparts_seen, 0, sizeof(f.nparts_seen));
	assert_int_equal(send_strings(f.zr, reply2, 3), 0);
	assert_int_equal(send_strings(f.zr, reply4, 5), 0);
	fix_run(&f, "two multipart messages at the DEALER");
	assert_int_equal(f.nparts_seen[0], 2);
	assert_string_equal(f.frames_seen[0][0], "head");
	assert_string_equal(f.frames_seen[0][1], "body");
	assert_int_equal(f.nparts_seen[1], 4);
	assert_string_equal(f.frames_seen[1][0], "1");
	assert_string_equal(f.frames_seen[1][3], "4");
	fix_close(&f);
}

// A message of more frames than ZLOOP_MAX_PARTS is reported as nparts -1,
// read to its end, and does not spoil the message after it, in either
// direction.
static void
test_too_many_parts(void **state)
{
	// One frame more than ZLOOP_MAX_PARTS (8) at the receiver.
	static const char *const nine_to_dealer[] = { "dealer-1", "1", "2", "3", "4", "5", "6", "7",
		"8", "9" };
	static const char *const next_to_dealer[] = { "dealer-1", "next" };
	static const char *const eight_to_router[] = { "1", "2", "3", "4", "5", "6", "7", "8" };
	static const char *const next_to_router[] = { "next" };
	struct fix f;

	fix_open(&f, "inproc://zloop-parts", 1);
	f.zr = zloop_new(f.base, f.router, router_record, &f);
	f.zd = zloop_new(f.base, f.dealer, dealer_record, &f);
	// Eight payload frames plus the routing id make nine at the ROUTER.
	assert_int_equal(send_strings(f.zd, eight_to_router, 8), 0);
	assert_int_equal(send_strings(f.zd, next_to_router, 1), 0);
	fix_run(&f, "the ROUTER's two messages");
	assert_int_equal(f.router_msgs, 2);
	assert_int_equal(f.nparts_seen[0], -1);
	assert_int_equal(f.nparts_seen[1], 2);
	assert_string_equal(f.frames_seen[1][0], "dealer-1");
	assert_string_equal(f.frames_seen[1][1], "next");

	memset(f.nparts_seen, 0, sizeof(f.nparts_seen));
	assert_int_equal(send_strings(f.zr, nine_to_dealer, 10), 0);
	assert_int_equal(send_strings(f.zr, next_to_dealer, 2), 0);
	fix_run(&f, "the DEALER's two messages");
	assert_int_equal(f.dealer_msgs, 2);
	assert_int_equal(f.nparts_seen[0], -1);
	assert_int_equal(f.nparts_seen[1], 1);
	assert_string_equal(f.frames_seen[1][0], "next");
	fix_close(&f);
}

// With ZMQ_ROUTER_MANDATORY a message to a routing id the ROUTER does not
// know fails at once with EHOSTUNREACH instead of vanishing; a known id
// still works.
static void
test_router_mandatory(void **state)
{
	static const char *const hello[] = { "hello" };
	static const char *const to_nobody[] = { "nobody", "x" };
	static const char *const to_dealer[] = { "dealer-1", "welcome" };
	struct fix f;

	fix_open(&f, "tcp://127.0.0.1:*", 1);
	setsockopt_int(f.router, ZMQ_ROUTER_MANDATORY, 1);
	f.zr = zloop_new(f.base, f.router, router_once, &f);
	f.zd = zloop_new(f.base, f.dealer, dealer_record, &f);
	// Until the DEALER has spoken the ROUTER may not know it yet.
	assert_int_equal(send_strings(f.zd, hello, 1), 0);
	fix_run(&f, "the hello");
	assert_string_equal(f.frames_seen[0][0], "dealer-1");

	errno = 0;
	assert_int_equal(send_strings(f.zr, to_nobody, 2), -1);
	assert_int_equal(errno, EHOSTUNREACH);
	assert_int_equal(send_strings(f.zr, to_dealer, 2), 0);
	f.dealer_msgs = 1; // dealer_record breaks the loop at its second message
	fix_run(&f, "the welcome");
	assert_int_equal(f.nparts_seen[1], 1);
	assert_string_equal(f.frames_seen[1][0], "welcome");
	fix_close(&f);
}

struct monitor_log {
	struct event_base *base;
	uint16_t wait_for; // breaks the loop when this event arrives
	int handshakes;
	int disconnects;
	int others;
	char handshake_addr[256];
	char disconnect_addr[256];
};

static void
on_monitor(uint16_t event, uint32_t value, const char *addr, void *arg)
{
	struct monitor_log *log = arg;

	if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
		log->handshakes++;
		snprintf(log->handshake_addr, sizeof(log->handshake_addr), "%s", addr);
	} else if (event == ZMQ_EVENT_DISCONNECTED) {
		log->disconnects++;
		snprintf(log->disconnect_addr, sizeof(log->disconnect_addr), "%s", addr);
	} else {
		log->others++;
	}
	if (event == log->wait_for)
		event_base_loopbreak(log->base);
}

// The DEALER's monitor reports the completed handshake with the endpoint
// it connected to, and the disconnect when the ROUTER goes away; events
// outside the mask are not reported.
static void
test_monitor(void **state)
{
	struct fix f;
	struct monitor_log log;

	// The monitor must be in place before the DEALER connects.
	fix_open(&f, "tcp://127.0.0.1:*", 0);
	memset(&log, 0, sizeof(log));
	log.base = f.base;
	f.zr = zloop_new(f.base, f.router, dealer_ignore, &f);
	f.zd = zloop_new(f.base, f.dealer, dealer_ignore, &f);
	assert_int_equal(zloop_monitor(f.zd, f.ctx,
			     ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED, on_monitor,
			     &log),
	    0);
	assert_int_equal(zmq_connect(f.dealer, f.endpoint), 0);

	log.wait_for = ZMQ_EVENT_HANDSHAKE_SUCCEEDED;
	fix_run(&f, "the handshake");
	assert_int_equal(log.handshakes, 1);
	assert_int_equal(log.disconnects, 0);
	assert_string_equal(log.handshake_addr, f.endpoint);

	zloop_free(f.zr);
	f.zr = NULL;
	zmq_close(f.router);
	f.router = NULL;
	log.wait_for = ZMQ_EVENT_DISCONNECTED;
	fix_run(&f, "the disconnect");
	assert_int_equal(log.disconnects, 1);
	assert_string_equal(log.disconnect_addr, f.endpoint);
	assert_int_equal(log.others, 0);
	fix_close(&f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_burst_inproc),
		cmocka_unit_test(test_burst_tcp),
		cmocka_unit_test(test_echo_window_inproc),
		cmocka_unit_test(test_echo_window_tcp),
		cmocka_unit_test(test_pingpong_tcp),
		cmocka_unit_test(test_send_eats_edge),
		cmocka_unit_test(test_input_before_zloop),
		cmocka_unit_test(test_multipart),
		cmocka_unit_test(test_too_many_parts),
		cmocka_unit_test(test_router_mandatory),
		cmocka_unit_test(test_monitor),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
