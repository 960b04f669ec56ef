// SPDX-License-Identifier: Apache-2.0
//
// Unit tests for agent/uplink's delivery: the test plays the aggregator on
// a real ROUTER socket over loopback TCP (plaintext, so the handshake and
// its monitor events are real) and the uplink spools into a temporary
// directory.  Checked: nothing is sent before a Welcome of our epoch; at
// most UPLINK_WINDOW batches are in flight without an Ack, and an Ack lets
// exactly as many more go; a new Welcome resends everything after its
// acked_seq and nothing before; acked batches leave the spool (Heartbeat
// spool_depth, Hello spool_oldest_seq); and after a reconnection (the
// aggregator restarted) the agent says Hello again and resends what the
// Welcome says is missing.
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <zmq.h>

#include "agent_conf.h"
#include "buf.h"
#include "clock.h"
#include "uplink.h"
#include "wire.h"

#define MAX_BATCHES 256
#define WAIT_US (10 * 1000000)

struct fix {
	struct event_base *base;
	void *zctx;
	void *router;
	char endpoint[256];
	char spool_dir[4096];
	struct agent_conf conf;
	struct uplink *u;
	struct wire_arena *arena;
	struct buf enc;
	uint8_t rid[256];
	size_t rid_len;
	// What the "aggregator" got.
	int hellos;
	uint64_t hello_epoch, hello_oldest, hello_newest;
	int n_batches;
	uint64_t batch_first[MAX_BATCHES], batch_last[MAX_BATCHES];
	int heartbeats;
	uint64_t hb_depth;
	int hb_state;
};

static void
on_config(const Vantage__Config *config, void *arg)
{
}

static void
on_probe_now(const char *const *keys, size_t n, void *arg)
{
}

static void
router_open(struct fix *f, const char *endpoint)
{
	int linger = 0;
	size_t len = sizeof(f->endpoint);

	f->router = zmq_socket(f->zctx, ZMQ_ROUTER);
	assert_non_null(f->router);
	assert_int_equal(zmq_setsockopt(f->router, ZMQ_LINGER, &linger, sizeof(linger)), 0);
	assert_int_equal(zmq_bind(f->router, endpoint), 0);
	assert_int_equal(zmq_getsockopt(f->router, ZMQ_LAST_ENDPOINT, f->endpoint, &len), 0);
}

static void
router_close(struct fix *f)
{
	zmq_close(f->router);
	f->router = NULL;
	f->rid_len = 0;
}

static int
fix_setup(void **state)
{
	static const struct uplink_handlers handlers = { on_config, on_probe_now, NULL };
	struct fix *f = calloc(1, sizeof(*f));
	const char *tmp = getenv("TMPDIR");

	if (f == NULL)
		return -1;
	snprintf(f->spool_dir, sizeof(f->spool_dir), "%s/test_uplink.XXXXXX",
	    tmp != NULL && *tmp ? tmp : "/tmp");
	*state = f;
	assert_non_null(mkdtemp(f->spool_dir));
	f->base = event_base_new();
	f->zctx = zmq_ctx_new();
	f->arena = wire_arena_new();
	buf_init(&f->enc);
	router_open(f, "tcp://127.0.0.1:*");
	f->conf.name = "agent-1";
	f->conf.region = "eu-west";
	f->conf.aggregator_endpoint = f->endpoint;
	f->conf.insecure = true;
	f->conf.spool_dir = f->spool_dir;
	f->conf.spool_max = 16 * 1024 * 1024;
	f->conf.spool_fsync = false;
	f->u = uplink_new(f->base, f->zctx, &f->conf, &handlers);
	assert_non_null(f->u);
	return 0;
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static int
fix_teardown(void **state)
{
	struct fix *f = *state;

	uplink_free(f->u);
	if (f->router != NULL)
		router_close(f);
	zmq_ctx_term(f->zctx);
	event_base_free(f->base);
	wire_arena_free(f->arena);
	buf_free(&f->enc);
	nftw(f->spool_dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static void
on_agent_msg(struct fix *f, const Vantage__AgentMsg *m)
{
	switch (m->msg_case) {
	case VANTAGE__AGENT_MSG__MSG_HELLO:
		f->hellos++;
		f->hello_epoch = m->hello->epoch;
		f->hello_oldest = m->hello->spool_oldest_seq;
		f->hello_newest = m->hello->spool_newest_seq;
		break;
	case VANTAGE__AGENT_MSG__MSG_BATCH:
		assert_true(f->n_batches < MAX_BATCHES);
		assert_int_equal(m->batch->epoch, f->hello_epoch);
		assert_true(m->batch->n_results > 0);
		f->batch_first[f->n_batches] = m->batch->results[0]->seq;
		f->batch_last[f->n_batches] = m->batch->results[m->batch->n_results - 1]->seq;
		f->n_batches++;
		break;
	case VANTAGE__AGENT_MSG__MSG_HEARTBEAT:
		f->heartbeats++;
		f->hb_depth = m->heartbeat->spool_depth;
		f->hb_state = m->heartbeat->state;
		break;
	default:
		break;
	}
}

// Reads what the agent sent: routing id, then the message.
static void
router_drain(struct fix *f)
{
	for (;;) {
		zmq_msg_t rid, body;
		Vantage__AgentMsg *m;
		char err[256];

		zmq_msg_init(&rid);
		if (zmq_msg_recv(&rid, f->router, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&rid);
			return;
		}
		zmq_msg_init(&body);
		assert_true(zmq_msg_recv(&body, f->router, 0) >= 0);
		assert_true(zmq_msg_size(&rid) <= sizeof(f->rid));
		f->rid_len = zmq_msg_size(&rid);
		memcpy(f->rid, zmq_msg_data(&rid), f->rid_len);
		m = wire_decode_agent(f->arena, zmq_msg_data(&body), zmq_msg_size(&body),
		    clock_wall_us(), err, sizeof(err));
		if (m == NULL)
			fail_msg("the agent sent a bad message: %s", err);
		on_agent_msg(f, m);
		wire_arena_reset(f->arena);
		zmq_msg_close(&rid);
		zmq_msg_close(&body);
	}
}

// One turn: the agent's loop, then the aggregator's socket.
static void
step(struct fix *f)
{
	zmq_pollitem_t item = { f->router, 0, ZMQ_POLLIN, 0 };

	event_base_loop(f->base, EVLOOP_NONBLOCK);
	zmq_poll(&item, 1, 5);
	router_drain(f);
}

// Runs both ends for ms milliseconds.
static void
run_for(struct fix *f, int ms)
{
	int64_t end = clock_mono_us() + (int64_t)ms * 1000;

	while (clock_mono_us() < end)
		step(f);
}

#define WAIT_FOR(f, cond)                                                    \
	do {                                                                 \
		int64_t wait_end_ = clock_mono_us() + WAIT_US;               \
		while (!(cond)) {                                            \
			if (clock_mono_us() > wait_end_)                     \
				fail_msg("timed out waiting for %s", #cond); \
			step(f);                                             \
		}                                                            \
	} while (0)

static void
agg_send(struct fix *f, const Vantage__AggMsg *m)
{
	assert_true(f->rid_len > 0);
	assert_int_equal(wire_encode_agg(m, &f->enc), 0);
	assert_int_equal(zmq_send(f->router, f->rid, f->rid_len, ZMQ_SNDMORE), (int)f->rid_len);
	assert_int_equal(zmq_send(f->router, f->enc.data, f->enc.len, 0), (int)f->enc.len);
}

static void
send_welcome(struct fix *f, uint64_t epoch, uint64_t acked_seq)
{
	Vantage__AggMsg m = VANTAGE__AGG_MSG__INIT;
	Vantage__Welcome w = VANTAGE__WELCOME__INIT;

	w.server_time_us = clock_wall_us();
	w.epoch = epoch;
	w.acked_seq = acked_seq;
	m.msg_case = VANTAGE__AGG_MSG__MSG_WELCOME;
	m.welcome = &w;
	agg_send(f, &m);
}

static void
send_ack(struct fix *f, uint64_t acked_seq)
{
	Vantage__AggMsg m = VANTAGE__AGG_MSG__INIT;
	Vantage__Ack ack = VANTAGE__ACK__INIT;

	ack.epoch = f->hello_epoch;
	ack.acked_seq = acked_seq;
	m.msg_case = VANTAGE__AGG_MSG__MSG_ACK;
	m.ack = &ack;
	agg_send(f, &m);
}

// n results, each sealed into a batch of its own.
static void
add_batches(struct fix *f, int n)
{
	static struct probe_target target = { .key = "api" };

	for (int i = 0; i < n; i++) {
		struct probe_result r;

		memset(&r, 0, sizeof(r));
		r.target = &target;
		r.config_version = 1;
		r.trigger = VANTAGE__TRIGGER__TRIGGER_SCHEDULED;
		r.started_at_us = r.scheduled_at_us = clock_wall_us();
		r.outcome = VANTAGE__OUTCOME__OUTCOME_UP;
		r.reason = VANTAGE__REASON__REASON_NONE;
		uplink_add_result(f->u, &r);
		uplink_flush(f->u);
	}
}

// Batches from..to (indexes) carry seqs first, first + 1, ... in order.
static void
assert_seqs(const struct fix *f, int from, int to, uint64_t first)
{
	for (int i = from; i <= to; i++) {
		assert_int_equal(f->batch_first[i], first + (uint64_t)(i - from));
		assert_int_equal(f->batch_last[i], first + (uint64_t)(i - from));
	}
}

// The agent's state changes: a heartbeat goes at once with the spool's
// depth.
static uint64_t
spool_depth_now(struct fix *f, int state)
{
	int before = f->heartbeats;

	uplink_set_state(f->u, state,
	    state == VANTAGE__AGENT_STATE__AGENT_STATE_IMPAIRED ? "x" : "");
	WAIT_FOR(f, f->heartbeats > before);
	assert_int_equal(f->hb_state, state);
	return f->hb_depth;
}

static void
test_window_ack_and_resend(void **state)
{
	struct fix *f = *state;
	const int total = UPLINK_WINDOW + 4;

	WAIT_FOR(f, f->hellos == 1);
	assert_int_equal(f->hello_epoch, uplink_epoch(f->u));
	assert_int_equal(f->hello_oldest, 0); // a new spool

	// Spooled, but not sent before the Welcome: not one of another epoch.
	add_batches(f, total);
	assert_int_equal(uplink_produced(f->u), total);
	send_welcome(f, f->hello_epoch + 1, 0);
	run_for(f, 300);
	assert_int_equal(f->n_batches, 0);

	// The window: UPLINK_WINDOW batches and no more until an Ack, even
	// across ticks.
	send_welcome(f, f->hello_epoch, 0);
	WAIT_FOR(f, f->n_batches >= UPLINK_WINDOW);
	run_for(f, 1200);
	assert_int_equal(f->n_batches, UPLINK_WINDOW);
	assert_seqs(f, 0, UPLINK_WINDOW - 1, 1);

	// Acking 4 batches lets exactly 4 more go, and nothing is sent twice.
	send_ack(f, 4);
	WAIT_FOR(f, f->n_batches >= total);
	run_for(f, 1200);
	assert_int_equal(f->n_batches, total);
	assert_seqs(f, UPLINK_WINDOW, total - 1, UPLINK_WINDOW + 1);
	assert_int_equal(uplink_acked_seq(f->u), 4);
	// The acked results left the spool.
	assert_int_equal(spool_depth_now(f, VANTAGE__AGENT_STATE__AGENT_STATE_IMPAIRED), total - 4);

	// A new Welcome (the store had 10): 11.. again, 1..10 never.
	send_welcome(f, f->hello_epoch, 10);
	WAIT_FOR(f, f->n_batches >= total + (total - 10));
	run_for(f, 600);
	assert_int_equal(f->n_batches, total + (total - 10));
	assert_seqs(f, total, f->n_batches - 1, 11);
	assert_int_equal(uplink_acked_seq(f->u), 10);

	send_ack(f, total);
	WAIT_FOR(f, uplink_acked_seq(f->u) == (uint64_t)total);
	assert_int_equal(spool_depth_now(f, VANTAGE__AGENT_STATE__AGENT_STATE_HEALTHY), 0);
}

// The aggregator restarts: the agent reconnects, says Hello with what its
// spool holds, and resends what the new Welcome says is missing.
static void
test_resend_after_reconnect(void **state)
{
	struct fix *f = *state;
	char endpoint[256];

	WAIT_FOR(f, f->hellos == 1);
	send_welcome(f, f->hello_epoch, 0);
	add_batches(f, 5);
	WAIT_FOR(f, f->n_batches >= 5);
	assert_seqs(f, 0, 4, 1);
	send_ack(f, 2);
	WAIT_FOR(f, uplink_acked_seq(f->u) == 2);

	// Gone and back on the same address; batches 3..5 are unacked.
	snprintf(endpoint, sizeof(endpoint), "%s", f->endpoint);
	router_close(f);
	run_for(f, 300);
	router_open(f, endpoint);
	WAIT_FOR(f, f->hellos == 2);
	assert_int_equal(f->hello_epoch, uplink_epoch(f->u));
	assert_int_equal(f->hello_oldest, 3); // 1 and 2 left the spool
	assert_int_equal(f->hello_newest, 5);
	// Nothing is sent to the new aggregator before its Welcome.
	run_for(f, 300);
	assert_int_equal(f->n_batches, 5);

	// The new aggregator's store had only 3.
	send_welcome(f, f->hello_epoch, 3);
	WAIT_FOR(f, f->n_batches >= 7);
	run_for(f, 600);
	assert_int_equal(f->n_batches, 7);
	assert_seqs(f, 5, 6, 4);

	// New results go on from there.
	add_batches(f, 1);
	WAIT_FOR(f, f->n_batches >= 8);
	assert_seqs(f, 7, 7, 6);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_window_ack_and_resend, fix_setup,
		    fix_teardown),
		cmocka_unit_test_setup_teardown(test_resend_after_reconnect, fix_setup,
		    fix_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
