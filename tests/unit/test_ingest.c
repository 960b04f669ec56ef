// SPDX-License-Identifier: Apache-2.0
//
// Tests of the agent protocol on the aggregator's ROUTER socket
// (aggregator/ingest.c) against a real throwaway PostgreSQL cluster: the
// test plays the agents with DEALER sockets and checks what they are told
// (Welcome, Config, Ack, ProbeNow) against what is in the database,
// through a second, blocking libpq connection.  Exactly-once in the store
// is the promise under test (DESIGN.md §5): a replay, an overlap, a gap, a
// transaction that fails because progress moved under it, a new epoch,
// must each leave every seq stored once and the Ack telling the truth.
// Every wait drives the loop until an expected message arrives or a
// deadline passes, so a broken ingest fails fast instead of hanging.
// Skips (exit 77) without a PostgreSQL server; the cluster is stopped and
// its directory removed on every way out, failures included.
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <zmq.h>

#include "agents.h"
#include "agg_conf.h"
#include "buf.h"
#include "clock.h"
#include "ingest.h"
#include "log.h"
#include "pgembed.h"
#include "store_pg.h"
#include "targets.h"
#include "wire.h"
#include "pgtest.h"

#define TEST_WAIT_MS 10000
#define TEST_MAX_COMMITTED 256
#define TEST_MAX_RESULTS 32

// Target indexes in the table built from the config below (its order).
#define TEST_WEB 0     // probed from every region
#define TEST_EU_ONLY 1 // probed from eu-west only

static char test_root[] = "/tmp/vantage-ingest-XXXXXX";
static char test_state[sizeof(test_root) + 16];
static char test_endpoint[sizeof(test_root) + 32];
static struct pgembed *test_pg;
static char *test_conninfo;
static PGconn *test_db;
static struct agg_conf *test_conf;
static void *test_zctx;

// Per test: a fresh loop, store, registry, target table and ingest.
static struct event_base *test_base;
static struct store *test_store;
static struct agents *test_agents;
static struct target_table *test_targets;
static struct ingest *test_ingest;

// What the hooks saw, and what probe_now answers.
static uint32_t test_committed[TEST_MAX_COMMITTED];
static size_t test_n_committed;
static bool test_probe_answer;
static size_t test_probe_calls;
static size_t test_probe_idx;

// One simulated agent: a DEALER socket and what it says in its Hello.
struct test_agent {
	void *sock;
	const char *name;
	const char *region;
	uint64_t epoch;
	int64_t next_started; // strictly increasing probe times
};

static struct wire_arena *test_arena; // the last message an agent received
static struct buf test_enc;

// Every agent socket still open: a failed assertion leaves its test
// early, and one socket left open would make zmq_ctx_term wait forever.
#define TEST_MAX_SOCKS 16
static void *test_socks[TEST_MAX_SOCKS];

// --- cleanup on every way out ---

static void
test_track(void *sock)
{
	for (size_t i = 0; i < TEST_MAX_SOCKS; i++)
		if (test_socks[i] == NULL) {
			test_socks[i] = sock;
			return;
		}
	fail_msg("more than %d sockets open", TEST_MAX_SOCKS);
}

static void
test_untrack(void *sock)
{
	for (size_t i = 0; i < TEST_MAX_SOCKS; i++)
		if (test_socks[i] == sock)
			test_socks[i] = NULL;
}

static void
test_close_socks(void)
{
	for (size_t i = 0; i < TEST_MAX_SOCKS; i++)
		if (test_socks[i] != NULL) {
			zmq_close(test_socks[i]);
			test_socks[i] = NULL;
		}
}

static void
test_free_loop(void)
{
	test_close_socks();
	ingest_free(test_ingest);
	test_ingest = NULL;
	store_free(test_store);
	test_store = NULL;
	agents_free(test_agents);
	test_agents = NULL;
	targets_free(test_targets);
	test_targets = NULL;
	if (test_base != NULL) {
		event_base_free(test_base);
		test_base = NULL;
	}
}

static void
test_cleanup(void)
{
	test_free_loop();
	if (test_zctx != NULL) {
		zmq_ctx_term(test_zctx);
		test_zctx = NULL;
	}
	if (test_db != NULL) {
		PQfinish(test_db);
		test_db = NULL;
	}
	if (test_pg != NULL) {
		pgembed_stop(test_pg);
		test_pg = NULL;
	}
}

static void
test_on_signal(int sig)
{
	pgtest_die_on_signal(test_state, sig);
}

// --- the verifying connection ---

// A query over one agent's stream: $1 its name, $2 the epoch.
static int64_t
test_stream_value(const char *sql, const struct test_agent *a, uint64_t epoch)
{
	char epoch_text[24];
	const char *params[2] = { a->name, epoch_text };

	snprintf(epoch_text, sizeof(epoch_text), "%" PRIu64, epoch);
	return pgtest_value_text(test_db, sql, params, 2);
}

static int64_t
test_rows(const struct test_agent *a, uint64_t epoch)
{
	return test_stream_value("SELECT count(*) FROM results r JOIN agents g "
				 "ON g.id = r.agent_id WHERE g.name = $1 AND r.epoch = $2",
	    a, epoch);
}

// Rows of seqs stored more than once: 0 is the exactly-once promise.
static int64_t
test_duplicate_rows(const struct test_agent *a, uint64_t epoch)
{
	return test_stream_value("SELECT count(*) - count(DISTINCT r.seq) FROM results r "
				 "JOIN agents g ON g.id = r.agent_id "
				 "WHERE g.name = $1 AND r.epoch = $2",
	    a, epoch);
}

static int64_t
test_rows_in(const struct test_agent *a, uint64_t epoch, uint64_t first, uint64_t last)
{
	char epoch_text[24], first_text[24], last_text[24];
	const char *params[4] = { a->name, epoch_text, first_text, last_text };

	snprintf(epoch_text, sizeof(epoch_text), "%" PRIu64, epoch);
	snprintf(first_text, sizeof(first_text), "%" PRIu64, first);
	snprintf(last_text, sizeof(last_text), "%" PRIu64, last);
	return pgtest_value_text(test_db,
	    "SELECT count(*) FROM results r JOIN agents g ON g.id = r.agent_id "
	    "WHERE g.name = $1 AND r.epoch = $2 AND r.seq BETWEEN $3 AND $4",
	    params, 4);
}

static int64_t
test_db_acked(const struct test_agent *a, uint64_t epoch)
{
	return test_stream_value("SELECT p.acked_seq FROM agent_progress p JOIN agents g "
				 "ON g.id = p.agent_id WHERE g.name = $1 AND p.epoch = $2",
	    a, epoch);
}

static int64_t
test_agent_id(const struct test_agent *a)
{
	const char *params[1] = { a->name };

	return pgtest_value_text(test_db, "SELECT id FROM agents WHERE name = $1", params, 1);
}

// --- driving the loop ---

static void
test_on_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

static bool
test_store_connected(const void *arg)
{
	(void)arg;
	return store_connected(test_store);
}

static bool
test_store_idle(const void *arg)
{
	(void)arg;
	return store_idle(test_store);
}

// Runs the loop until cond(arg) holds or timeout_ms pass; returns whether
// it holds.  The agents' sockets are not on the loop: a tick every 5 ms
// bounds each wait for an event, so an answer is seen as soon as it
// arrives.
static bool
test_run_until(bool (*cond)(const void *), const void *arg, int timeout_ms)
{
	struct event *tick = event_new(test_base, -1, EV_PERSIST, test_on_tick, NULL);
	struct timeval tv = { 0, 5000 };
	bool holds;

	event_add(tick, &tv);
	holds = pgtest_run_until(test_base, cond, arg, timeout_ms);
	event_free(tick);
	return holds;
}

// --- the fake agents ---

static void
test_agent_open(struct test_agent *a, const char *name, const char *region, uint64_t epoch)
{
	int linger = 0;

	a->sock = zmq_socket(test_zctx, ZMQ_DEALER);
	assert_non_null(a->sock);
	test_track(a->sock);
	zmq_setsockopt(a->sock, ZMQ_LINGER, &linger, sizeof(linger));
	assert_int_equal(zmq_connect(a->sock, test_endpoint), 0);
	a->name = name;
	a->region = region;
	a->epoch = epoch;
	a->next_started = clock_wall_us() - 60 * 1000000LL;
}

static void
test_agent_close(struct test_agent *a)
{
	if (a->sock != NULL) {
		test_untrack(a->sock);
		zmq_close(a->sock);
	}
	a->sock = NULL;
}

static void
test_agent_send(struct test_agent *a, const Vantage__AgentMsg *m)
{
	assert_int_equal(wire_encode_agent(m, &test_enc), 0);
	assert_int_equal(zmq_send(a->sock, test_enc.data, test_enc.len, 0), (int)test_enc.len);
}

static void
test_agent_hello(struct test_agent *a)
{
	Vantage__AgentMsg m = VANTAGE__AGENT_MSG__INIT;
	Vantage__Hello h = VANTAGE__HELLO__INIT;

	h.name = (char *)a->name;
	h.region = (char *)a->region;
	h.version = (char *)"0.1-test";
	h.epoch = a->epoch;
	m.msg_case = VANTAGE__AGENT_MSG__MSG_HELLO;
	m.hello = &h;
	test_agent_send(a, &m);
}

// One result per seq first..last (none if first > last), for targets[i %
// n_targets], with outcome; and a gap marker gap_first..gap_last (none if
// gap_first is 0).
static void
test_agent_batch(struct test_agent *a, uint64_t first, uint64_t last, const char *const *targets,
    size_t n_targets, Vantage__Outcome outcome, uint64_t gap_first, uint64_t gap_last)
{
	Vantage__AgentMsg m = VANTAGE__AGENT_MSG__INIT;
	Vantage__ResultBatch b = VANTAGE__RESULT_BATCH__INIT;
	Vantage__Result rs[TEST_MAX_RESULTS], *rp[TEST_MAX_RESULTS];
	Vantage__Gap gap = VANTAGE__GAP__INIT, *gp = &gap;
	size_t n = 0;

	for (uint64_t seq = first; seq <= last; seq++, n++) {
		Vantage__Result *r = &rs[n];

		assert_true(n < TEST_MAX_RESULTS);
		vantage__result__init(r);
		r->seq = seq;
		r->target = (char *)targets[(seq - 1) % n_targets];
		r->started_at = r->scheduled_at = a->next_started;
		a->next_started += 1000000;
		r->outcome = outcome;
		if (outcome == VANTAGE__OUTCOME__OUTCOME_DOWN) {
			r->reason = VANTAGE__REASON__REASON_HTTP_STATUS;
			r->http_status = 503;
		} else {
			r->http_status = 200;
		}
		r->total_us = 1000;
		rp[n] = r;
	}
	b.epoch = a->epoch;
	b.n_results = n;
	b.results = rp;
	if (gap_first != 0) {
		gap.first_seq = gap_first;
		gap.last_seq = gap_last;
		b.n_gaps = 1;
		b.gaps = &gp;
	}
	m.msg_case = VANTAGE__AGENT_MSG__MSG_BATCH;
	m.batch = &b;
	test_agent_send(a, &m);
}

struct test_wait {
	struct test_agent *agent;
	Vantage__AggMsg *msg; // the decoded message, in test_arena
};

static bool
test_received(const void *arg)
{
	struct test_wait *w = (struct test_wait *)arg;
	zmq_msg_t frame;
	char err[256];

	if (w->msg != NULL)
		return true;
	zmq_msg_init(&frame);
	if (zmq_msg_recv(&frame, w->agent->sock, ZMQ_DONTWAIT) < 0) {
		zmq_msg_close(&frame);
		return false;
	}
	wire_arena_reset(test_arena);
	w->msg = wire_decode_agg(test_arena, zmq_msg_data(&frame), zmq_msg_size(&frame), err,
	    sizeof(err));
	zmq_msg_close(&frame);
	if (w->msg == NULL)
		fail_msg("agent \"%s\" received a bad message: %s", w->agent->name, err);
	return true;
}

// The next message the agent receives, which must be of kind want; valid
// until the next call.
static Vantage__AggMsg *
test_expect(struct test_agent *a, Vantage__AggMsg__MsgCase want)
{
	struct test_wait w = { a, NULL };

	if (!test_run_until(test_received, &w, TEST_WAIT_MS))
		fail_msg("agent \"%s\" received nothing within %d ms (waiting for message %d)",
		    a->name, TEST_WAIT_MS, (int)want);
	if (w.msg->msg_case != want)
		fail_msg("agent \"%s\" received message %d, expected %d", a->name,
		    (int)w.msg->msg_case, (int)want);
	return w.msg;
}

static void
test_expect_welcome(struct test_agent *a, uint64_t acked_seq)
{
	Vantage__AggMsg *m = test_expect(a, VANTAGE__AGG_MSG__MSG_WELCOME);

	assert_int_equal(m->welcome->epoch, a->epoch);
	assert_int_equal(m->welcome->acked_seq, acked_seq);
}

static void
test_expect_ack(struct test_agent *a, uint64_t acked_seq)
{
	Vantage__AggMsg *m = test_expect(a, VANTAGE__AGG_MSG__MSG_ACK);

	assert_int_equal(m->ack->epoch, a->epoch);
	assert_int_equal(m->ack->acked_seq, acked_seq);
}

// Hello -> Welcome (acked_seq) + Config.
static void
test_connect(struct test_agent *a, const char *name, const char *region, uint64_t epoch,
    uint64_t acked_seq)
{
	test_agent_open(a, name, region, epoch);
	test_agent_hello(a);
	test_expect_welcome(a, acked_seq);
	test_expect(a, VANTAGE__AGG_MSG__MSG_CONFIG);
}

static struct ingest_stats
test_stats(void)
{
	struct ingest_stats st;

	ingest_get_stats(test_ingest, &st);
	return st;
}

// --- hooks ---

static void
test_on_committed(const uint32_t *targets, size_t n, int64_t now, void *arg)
{
	(void)now;
	(void)arg;
	for (size_t i = 0; i < n; i++) {
		assert_true(test_n_committed < TEST_MAX_COMMITTED);
		test_committed[test_n_committed++] = targets[i];
	}
}

static bool
test_on_probe_now(size_t idx, int64_t now, void *arg)
{
	(void)now;
	(void)arg;
	test_probe_calls++;
	test_probe_idx = idx;
	return test_probe_answer;
}

// How many committed target indexes equal idx.
static size_t
test_committed_count(uint32_t idx)
{
	size_t n = 0;

	for (size_t i = 0; i < test_n_committed; i++)
		n += test_committed[i] == idx;
	return n;
}

// --- fixtures ---

static const char test_yaml[] =
    "listen: { zmq: \"%s\" }\n"
    "state_dir: \"%s\"\n"
    "security: { insecure: true }\n"
    "regions:\n"
    "  - { name: eu-west, domain: aws }\n"
    "  - { name: us-east, domain: gcp }\n"
    "targets:\n"
    "  - { name: web, http: { url: \"http://127.0.0.1:9/\" } }\n"
    "  - { name: eu-only, http: { url: \"http://127.0.0.1:9/eu\" }, regions: [eu-west] }\n";

static int
test_write_conf(void)
{
	char path[sizeof(test_root) + 32], err[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/vantage.yml", test_root);
	f = fopen(path, "w");
	if (f == NULL)
		return -1;
	fprintf(f, test_yaml, test_endpoint, test_state);
	if (fclose(f) != 0)
		return -1;
	test_conf = agg_conf_load(path, err, sizeof(err));
	if (test_conf == NULL) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	return 0;
}

static int
test_group_setup(void **state)
{
	(void)state;
	if (pgtest_mkdir(test_root, test_state, sizeof(test_state)) != 0)
		return -1;
	snprintf(test_endpoint, sizeof(test_endpoint), "ipc://%s/ingest.sock", test_root);
	if (test_write_conf() < 0)
		return -1;
	test_pg = pgembed_start(test_state, &test_conninfo);
	if (test_pg == NULL)
		return -1;
	test_db = PQconnectdb(test_conninfo);
	if (PQstatus(test_db) != CONNECTION_OK) {
		fprintf(stderr, "could not connect: %s", PQerrorMessage(test_db));
		return -1;
	}
	if (store_prepare(test_conninfo, 10) != 0)
		return -1;
	test_zctx = zmq_ctx_new();
	test_arena = wire_arena_new();
	buf_init(&test_enc);
	return test_zctx != NULL ? 0 : -1;
}

static int
test_group_teardown(void **state)
{
	(void)state;
	test_cleanup();
	agg_conf_free(test_conf);
	test_conf = NULL;
	wire_arena_free(test_arena);
	test_arena = NULL;
	buf_free(&test_enc);
	free(test_conninfo);
	test_conninfo = NULL;
	pgtest_remove_tree(test_root);
	return 0;
}

struct test_sync {
	bool done;
	int status;
};

static bool
test_sync_done(const void *arg)
{
	return ((const struct test_sync *)arg)->done;
}

static void
test_on_sync(int status, const int *ids, void *arg)
{
	struct test_sync *sync = arg;

	sync->done = true;
	sync->status = status;
	for (size_t i = 0; status == 0 && i < targets_count(test_targets); i++)
		targets_set_id(test_targets, i, ids[i]);
}

// The targets get their database ids as aggregator/main.c gives them.
static int
test_sync_targets(void)
{
	size_t n = targets_count(test_targets);
	const char *keys[8];
	char *specs[8];
	struct test_sync sync = { false, -1 };

	if (n > 8)
		return -1;
	for (size_t i = 0; i < n; i++) {
		keys[i] = targets_conf(test_targets, i)->key;
		specs[i] = targets_spec_json(targets_conf(test_targets, i));
	}
	store_sync_targets(test_store, keys, (const char *const *)specs, n, test_on_sync, &sync);
	for (size_t i = 0; i < n; i++)
		free(specs[i]);
	if (!test_run_until(test_sync_done, &sync, TEST_WAIT_MS) || sync.status != 0)
		return -1;
	return 0;
}

static int
test_setup(void **state)
{
	struct ingest_hooks hooks = { test_on_committed, test_on_probe_now, NULL };

	(void)state;
	test_n_committed = 0;
	test_probe_calls = 0;
	test_probe_answer = true;
	test_base = event_base_new();
	test_store = store_new(test_base, test_conninfo);
	if (!test_run_until(test_store_connected, NULL, TEST_WAIT_MS)) {
		fprintf(stderr, "the store did not connect within %d ms\n", TEST_WAIT_MS);
		return -1;
	}
	test_targets = targets_new(test_conf);
	if (targets_count(test_targets) != 2 || test_sync_targets() < 0)
		return -1;
	test_agents = agents_new();
	test_ingest = ingest_new(test_base, test_zctx, test_conf, test_store, test_agents,
	    test_targets, &hooks, NULL, NULL);
	return test_ingest != NULL ? 0 : -1;
}

// Stops ingest and lets the store finish what it has before freeing.
static int
test_teardown(void **state)
{
	(void)state;
	ingest_close(test_ingest);
	if (!test_run_until(test_store_idle, NULL, TEST_WAIT_MS))
		fprintf(stderr, "the store did not drain within %d ms\n", TEST_WAIT_MS);
	test_free_loop();
	return 0;
}

// --- tests ---

static const char *const test_web_eu[] = { "web", "eu-only" };
static const char *const test_web[] = { "web" };

static void
test_hello(void **state)
{
	struct test_agent a = { 0 }, b = { 0 };
	Vantage__AggMsg *m;

	(void)state;
	test_agent_open(&a, "hello-eu", "eu-west", 101);
	test_agent_hello(&a);
	test_expect_welcome(&a, 0);
	m = test_expect(&a, VANTAGE__AGG_MSG__MSG_CONFIG);
	assert_int_equal(m->config->n_targets, 2);
	assert_string_equal(m->config->targets[0]->key, "web");
	assert_string_equal(m->config->targets[1]->key, "eu-only");
	assert_int_equal(test_db_acked(&a, 101), 0);

	// Another region's Config lists only the targets probed from there.
	test_agent_open(&b, "hello-us", "us-east", 102);
	test_agent_hello(&b);
	test_expect_welcome(&b, 0);
	m = test_expect(&b, VANTAGE__AGG_MSG__MSG_CONFIG);
	assert_int_equal(m->config->n_targets, 1);
	assert_string_equal(m->config->targets[0]->key, "web");
	test_agent_close(&a);
	test_agent_close(&b);
}

static void
test_dedup(void **state)
{
	struct test_agent a = { 0 };
	struct ingest_stats st;

	(void)state;
	test_connect(&a, "dedup", "eu-west", 201, 0);
	test_agent_batch(&a, 1, 5, test_web_eu, 2, VANTAGE__OUTCOME__OUTCOME_UP, 0, 0);
	test_expect_ack(&a, 5);
	assert_int_equal(test_rows(&a, 201), 5);
	assert_int_equal(test_db_acked(&a, 201), 5);
	// Seqs 1, 3, 5 are "web", 2 and 4 "eu-only".
	assert_int_equal(test_n_committed, 5);
	assert_int_equal(test_committed_count(TEST_WEB), 3);
	assert_int_equal(test_committed_count(TEST_EU_ONLY), 2);

	// A replay: nothing new, acknowledged at once.
	test_agent_batch(&a, 1, 5, test_web_eu, 2, VANTAGE__OUTCOME__OUTCOME_UP, 0, 0);
	test_expect_ack(&a, 5);
	st = test_stats();
	assert_int_equal(st.results_duplicate, 5);
	assert_int_equal(st.results_received, 5);
	assert_int_equal(test_rows(&a, 201), 5);
	assert_int_equal(test_n_committed, 5);

	// An overlap: 4 and 5 are duplicates, 6..8 new (eu-only, web, eu-only).
	test_agent_batch(&a, 4, 8, test_web_eu, 2, VANTAGE__OUTCOME__OUTCOME_UP, 0, 0);
	test_expect_ack(&a, 8);
	st = test_stats();
	assert_int_equal(st.results_duplicate, 7);
	assert_int_equal(st.results_received, 8);
	assert_int_equal(test_rows(&a, 201), 8);
	assert_int_equal(test_rows_in(&a, 201, 6, 8), 3);
	assert_int_equal(test_duplicate_rows(&a, 201), 0);
	assert_int_equal(test_db_acked(&a, 201), 8);
	assert_int_equal(test_n_committed, 8);
	assert_int_equal(test_committed[5], TEST_EU_ONLY);
	assert_int_equal(test_committed[6], TEST_WEB);
	assert_int_equal(test_committed[7], TEST_EU_ONLY);
	assert_int_equal(st.bad_frames, 0);
	test_agent_close(&a);
}

static void
test_gaps(void **state)
{
	struct test_agent a = { 0 };
	int64_t gaps;

	(void)state;
	test_connect(&a, "gappy", "eu-west", 301, 0);
	test_agent_batch(&a, 1, 3, test_web, 1, VANTAGE__OUTCOME__OUTCOME_UP, 0, 0);
	test_expect_ack(&a, 3);

	// The agent dropped 4..10 from its full spool; 11 and 12 follow.
	test_agent_batch(&a, 11, 12, test_web, 1, VANTAGE__OUTCOME__OUTCOME_UP, 4, 10);
	test_expect_ack(&a, 12);
	assert_int_equal(test_rows(&a, 301), 5);
	assert_int_equal(test_db_acked(&a, 301), 12);
	gaps = test_stream_value("SELECT count(*) FROM gaps p JOIN agents g ON g.id = p.agent_id "
				 "WHERE g.name = $1 AND p.epoch = $2 AND p.first_seq = 4 "
				 "AND p.last_seq = 10",
	    &a, 301);
	assert_int_equal(gaps, 1);

	// A gap reaching into what is stored: only 13..14 are missing.
	test_agent_batch(&a, 15, 15, test_web, 1, VANTAGE__OUTCOME__OUTCOME_UP, 2, 14);
	test_expect_ack(&a, 15);
	gaps = test_stream_value("SELECT count(*) FROM gaps p JOIN agents g ON g.id = p.agent_id "
				 "WHERE g.name = $1 AND p.epoch = $2 AND p.first_seq = 13 "
				 "AND p.last_seq = 14",
	    &a, 301);
	assert_int_equal(gaps, 1);
	// Rows stored = distinct seqs sent - seqs in gap markers (DESIGN.md §5).
	assert_int_equal(test_rows(&a, 301), 15 - 7 - 2);
	assert_int_equal(test_duplicate_rows(&a, 301), 0);
	assert_int_equal(agents_get(test_agents, 0)->results_lost, 9);

	// A gap alone (no results) moves the Ack too.
	test_agent_batch(&a, 1, 0, test_web, 1, VANTAGE__OUTCOME__OUTCOME_UP, 16, 20);
	test_expect_ack(&a, 20);
	assert_int_equal(test_db_acked(&a, 301), 20);
	assert_int_equal(test_rows(&a, 301), 6);
	test_agent_close(&a);
}

struct test_commit {
	bool done;
	int status;
	uint64_t acked_seq;
};

static bool
test_commit_done(const void *arg)
{
	return ((const struct test_commit *)arg)->done;
}

static void
test_on_other_commit(int status, uint64_t acked_seq, void *arg)
{
	struct test_commit *c = arg;

	c->done = true;
	c->status = status;
	c->acked_seq = acked_seq;
}

// Another writer of the same stream (a second aggregator, an operator's
// replay) stores seqs first..last and moves the progress row under ingest,
// through its own store and connection.
static void
test_other_writer(const struct test_agent *a, uint64_t first, uint64_t last)
{
	struct store *other = store_new(test_base, test_conninfo);
	struct test_commit c = { false, -1, 0 };
	int agent_id = (int)test_agent_id(a);
	int target_id = targets_id(test_targets, TEST_WEB);

	for (uint64_t seq = first; seq <= last; seq++) {
		Vantage__Result r = VANTAGE__RESULT__INIT;

		r.seq = seq;
		r.target = (char *)"web";
		r.started_at = r.scheduled_at = clock_wall_us() - 30 * 1000000LL;
		r.outcome = VANTAGE__OUTCOME__OUTCOME_UP;
		r.http_status = 200;
		store_add_result(other, agent_id, a->epoch, target_id, &r);
	}
	store_add_progress(other, agent_id, a->epoch, first - 1, last, test_on_other_commit, &c);
	assert_true(test_run_until(test_commit_done, &c, TEST_WAIT_MS));
	assert_int_equal(c.status, 0);
	assert_int_equal(c.acked_seq, last);
	store_free(other);
}

static void
test_resync(void **state)
{
	struct test_agent a = { 0 };
	struct store_stats before, after;
	Vantage__AggMsg *m;

	(void)state;
	test_connect(&a, "resync", "eu-west", 401, 0);
	test_agent_batch(&a, 1, 5, test_web, 1, VANTAGE__OUTCOME__OUTCOME_UP, 0, 0);
	test_expect_ack(&a, 5);
	test_n_committed = 0;

	test_other_writer(&a, 6, 7);
	assert_int_equal(test_db_acked(&a, 401), 7);
	store_get_stats(test_store, &before);

	// Ingest still believes 5: its step 5 -> 8 fails, and it re-reads 7.
	test_agent_batch(&a, 6, 8, test_web, 1, VANTAGE__OUTCOME__OUTCOME_UP, 0, 0);
	m = test_expect(&a, VANTAGE__AGG_MSG__MSG_WELCOME);
	assert_int_equal(m->welcome->epoch, 401);
	assert_int_equal(m->welcome->acked_seq, 7);
	store_get_stats(test_store, &after);
	assert_int_equal(after.txns_failed, before.txns_failed + 1);
	assert_int_equal(test_n_committed, 0); // the failed batch is not reported
	assert_int_equal(test_rows(&a, 401), 7);

	// The agent resends from acked_seq + 1 as a real one does; a resend
	// from further back is deduplicated against 7.
	test_agent_batch(&a, 6, 9, test_web, 1, VANTAGE__OUTCOME__OUTCOME_UP, 0, 0);
	test_expect_ack(&a, 9);
	assert_int_equal(test_rows(&a, 401), 9);
	assert_int_equal(test_duplicate_rows(&a, 401), 0);
	assert_int_equal(test_rows_in(&a, 401, 1, 9), 9);
	assert_int_equal(test_db_acked(&a, 401), 9);
	assert_int_equal(test_n_committed, 2); // 8 and 9
	assert_int_equal(test_stats().results_duplicate, 2);

	// And it goes on as before.
	test_agent_batch(&a, 10, 11, test_web, 1, VANTAGE__OUTCOME__OUTCOME_UP, 0, 0);
	test_expect_ack(&a, 11);
	assert_int_equal(test_rows(&a, 401), 11);
	test_agent_close(&a);
}

// Batches sent on before the failure is known: all of them are refused
// (their transactions fail or they arrive during the resync), the agent
// hears one Welcome, and its resend stores each seq once.
static void
test_resync_pipelined(void **state)
{
	struct test_agent a = { 0 };

	(void)state;
	test_connect(&a, "pipelined", "eu-west", 402, 0);
	test_agent_batch(&a, 1, 5, test_web, 1, VANTAGE__OUTCOME__OUTCOME_UP, 0, 0);
	test_expect_ack(&a, 5);
	test_other_writer(&a, 6, 7);
	test_n_committed = 0;

	test_agent_batch(&a, 6, 8, test_web, 1, VANTAGE__OUTCOME__OUTCOME_UP, 0, 0);
	test_agent_batch(&a, 9, 10, test_web, 1, VANTAGE__OUTCOME__OUTCOME_UP, 0, 0);
	test_agent_batch(&a, 11, 12, test_web, 1, VANTAGE__OUTCOME__OUTCOME_UP, 0, 0);
	test_expect_welcome(&a, 7);
	assert_int_equal(test_rows(&a, 402), 7);
	assert_int_equal(test_n_committed, 0);

	test_agent_batch(&a, 8, 12, test_web, 1, VANTAGE__OUTCOME__OUTCOME_UP, 0, 0);
	test_expect_ack(&a, 12);
	// A replay answered at once: no second Welcome was on its way.
	test_agent_batch(&a, 12, 12, test_web, 1, VANTAGE__OUTCOME__OUTCOME_UP, 0, 0);
	test_expect_ack(&a, 12);
	assert_int_equal(test_rows(&a, 402), 12);
	assert_int_equal(test_duplicate_rows(&a, 402), 0);
	assert_int_equal(test_db_acked(&a, 402), 12);
	assert_int_equal(test_n_committed, 5);
	test_agent_close(&a);
}

static void
test_new_epoch(void **state)
{
	struct test_agent old = { 0 }, restarted = { 0 };

	(void)state;
	test_connect(&old, "epochs", "eu-west", 501, 0);
	test_agent_batch(&old, 1, 3, test_web, 1, VANTAGE__OUTCOME__OUTCOME_UP, 0, 0);
	test_expect_ack(&old, 3);
	test_agent_close(&old);

	// The agent lost its spool: a new epoch starts at 0, its seqs from 1.
	test_connect(&restarted, "epochs", "eu-west", 502, 0);
	test_agent_batch(&restarted, 1, 2, test_web, 1, VANTAGE__OUTCOME__OUTCOME_UP, 0, 0);
	test_expect_ack(&restarted, 2);
	assert_int_equal(test_rows(&restarted, 501), 3);
	assert_int_equal(test_rows(&restarted, 502), 2);
	assert_int_equal(test_db_acked(&restarted, 501), 3);
	assert_int_equal(test_db_acked(&restarted, 502), 2);
	assert_int_equal(test_stats().results_duplicate, 0);
	// A batch of the old epoch on the new session is refused, not stored.
	restarted.epoch = 501;
	test_agent_batch(&restarted, 4, 4, test_web, 1, VANTAGE__OUTCOME__OUTCOME_UP, 0, 0);
	restarted.epoch = 502;
	test_agent_batch(&restarted, 3, 3, test_web, 1, VANTAGE__OUTCOME__OUTCOME_UP, 0, 0);
	test_expect_ack(&restarted, 3);
	assert_int_equal(test_stats().batches_dropped, 1);
	assert_int_equal(test_rows(&restarted, 501), 3);
	assert_int_equal(agents_count(test_agents), 1);
	test_agent_close(&restarted);
}

// Without CurveZMQ nothing ties a connection to one agent: one that says
// Hello for agent x and then for agent y delivers for y, and x coming
// back on a connection of its own must not take that away.
static void
test_hello_switch(void **state)
{
	struct test_agent mux = { 0 }, x = { 0 };

	(void)state;
	test_connect(&mux, "switch-x", "eu-west", 911, 0);
	mux.name = "switch-y";
	mux.epoch = 912;
	test_agent_hello(&mux);
	test_expect_welcome(&mux, 0);
	test_expect(&mux, VANTAGE__AGG_MSG__MSG_CONFIG);
	// Nothing delivers for x now.
	assert_string_equal(agents_get(test_agents, 0)->name, "switch-x");
	assert_false(agents_get(test_agents, 0)->connected);
	assert_true(agents_get(test_agents, 1)->connected);
	test_connect(&x, "switch-x", "eu-west", 911, 0);
	assert_true(agents_get(test_agents, 0)->connected);

	test_agent_batch(&mux, 1, 2, test_web, 1, VANTAGE__OUTCOME__OUTCOME_UP, 0, 0);
	test_expect_ack(&mux, 2);
	test_agent_batch(&x, 1, 1, test_web, 1, VANTAGE__OUTCOME__OUTCOME_UP, 0, 0);
	test_expect_ack(&x, 1);
	assert_int_equal(test_rows(&mux, 912), 2);
	assert_int_equal(test_rows(&x, 911), 1);
	assert_int_equal(test_stats().batches_dropped, 0);
	test_agent_close(&mux);
	test_agent_close(&x);
}

// A fresh ingest (an aggregator restart) tells a returning agent what the
// database holds, not 0.
static void
test_restart(void **state)
{
	struct test_agent a = { 0 };

	(void)state;
	test_connect(&a, "returning", "eu-west", 601, 0);
	test_agent_batch(&a, 1, 4, test_web, 1, VANTAGE__OUTCOME__OUTCOME_UP, 0, 0);
	test_expect_ack(&a, 4);
	test_agent_close(&a);
	assert_int_equal(test_teardown(state), 0);
	assert_int_equal(test_setup(state), 0);
	test_connect(&a, "returning", "eu-west", 601, 4);
	test_agent_batch(&a, 1, 6, test_web, 1, VANTAGE__OUTCOME__OUTCOME_UP, 0, 0);
	test_expect_ack(&a, 6);
	assert_int_equal(test_rows(&a, 601), 6);
	assert_int_equal(test_duplicate_rows(&a, 601), 0);
	test_agent_close(&a);
}

struct test_monitor {
	void *mon;
	bool disconnected;
};

static bool
test_saw_disconnect(const void *arg)
{
	struct test_monitor *m = (struct test_monitor *)arg;
	zmq_msg_t frame;
	uint16_t event;

	zmq_msg_init(&frame);
	while (!m->disconnected && zmq_msg_recv(&frame, m->mon, ZMQ_DONTWAIT) >= 0) {
		// Two frames an event: its number (16 bits) and value, then
		// the endpoint.
		if (zmq_msg_more(&frame) && zmq_msg_size(&frame) >= sizeof(event)) {
			memcpy(&event, zmq_msg_data(&frame), sizeof(event));
			m->disconnected = event == ZMQ_EVENT_DISCONNECTED;
		}
	}
	zmq_msg_close(&frame);
	return m->disconnected;
}

// Sends one frame over the limit from a fresh connection and waits until
// the aggregator's end has dropped it.
static void
test_send_oversize(struct test_agent *big)
{
	struct test_monitor m = { NULL, false };
	uint8_t *huge = calloc(1, WIRE_MAX_MSG + 1);

	assert_non_null(huge);
	test_agent_open(big, "big", "eu-west", 702);
	assert_int_equal(zmq_socket_monitor(big->sock, "inproc://test-big", ZMQ_EVENT_DISCONNECTED),
	    0);
	m.mon = zmq_socket(test_zctx, ZMQ_PAIR);
	assert_non_null(m.mon);
	test_track(m.mon);
	assert_int_equal(zmq_connect(m.mon, "inproc://test-big"), 0);
	assert_int_equal(zmq_send(big->sock, huge, WIRE_MAX_MSG + 1, 0), WIRE_MAX_MSG + 1);
	free(huge);
	assert_true(test_run_until(test_saw_disconnect, &m, TEST_WAIT_MS));
	zmq_socket_monitor(big->sock, NULL, 0);
	test_untrack(m.mon);
	zmq_close(m.mon);
	test_agent_close(big);
}

static void
test_bad_frames(void **state)
{
	struct test_agent a = { 0 }, big = { 0 };
	static const uint8_t garbage[] = { 0xff, 0xff, 0xff, 0xff, 0x0f, 0x12, 0x34, 0x56 };
	const size_t near = WIRE_MAX_MSG - 4096;
	char *name = malloc(near);
	Vantage__AgentMsg m = VANTAGE__AGENT_MSG__INIT;
	Vantage__Hello h = VANTAGE__HELLO__INIT;

	(void)state;
	assert_non_null(name);
	test_connect(&a, "noisy", "eu-west", 701, 0);

	assert_int_equal(zmq_send(a.sock, garbage, sizeof(garbage), 0), (int)sizeof(garbage));
	// Two frames from a DEALER: three at the ROUTER.
	assert_int_equal(zmq_send(a.sock, garbage, 4, ZMQ_SNDMORE), 4);
	assert_int_equal(zmq_send(a.sock, garbage, 4, 0), 4);
	// Valid protobuf under the frame limit whose agent name is ~1 MB.
	memset(name, 'n', near - 1);
	name[near - 1] = '\0';
	h.name = name;
	h.region = (char *)"eu-west";
	h.epoch = 701;
	m.msg_case = VANTAGE__AGENT_MSG__MSG_HELLO;
	m.hello = &h;
	test_agent_send(&a, &m);
	free(name);
	// A Hello for a region that is not configured.
	a.region = "mars";
	test_agent_hello(&a);
	a.region = "eu-west";
	// Messages on one connection arrive in order: when this is
	// acknowledged, everything before it was handled.
	test_agent_batch(&a, 1, 2, test_web, 1, VANTAGE__OUTCOME__OUTCOME_UP, 0, 0);
	test_expect_ack(&a, 2);
	assert_int_equal(test_stats().bad_frames, 4);
	assert_int_equal(agents_get(test_agents, 0)->bad_messages, 3);

	// Over the frame limit: libzmq (ZMQ_MAXMSGSIZE) drops the connection
	// before ingest sees a byte of it, so it is not counted.
	test_send_oversize(&big);
	test_agent_batch(&a, 3, 3, test_web, 1, VANTAGE__OUTCOME__OUTCOME_UP, 0, 0);
	test_expect_ack(&a, 3);

	// Ingest keeps serving old and new connections.
	test_connect(&big, "big", "eu-west", 702, 0);
	test_agent_batch(&big, 1, 1, test_web, 1, VANTAGE__OUTCOME__OUTCOME_UP, 0, 0);
	test_expect_ack(&big, 1);
	test_agent_batch(&a, 4, 4, test_web, 1, VANTAGE__OUTCOME__OUTCOME_UP, 0, 0);
	test_expect_ack(&a, 4);
	assert_int_equal(test_rows(&a, 701), 4);
	assert_int_equal(test_rows(&big, 702), 1);
	assert_int_equal(test_stats().bad_frames, 4);
	test_agent_close(&a);
	test_agent_close(&big);
}

// A round trip of b that proves nothing was sent to it before: a replay
// of what is stored is acknowledged at once, and b's messages arrive in
// the order they were sent.
static void
test_expect_nothing_before_ack(struct test_agent *b, uint64_t acked_seq)
{
	test_agent_batch(b, acked_seq, acked_seq, test_web, 1, VANTAGE__OUTCOME__OUTCOME_UP, 0, 0);
	test_expect_ack(b, acked_seq);
}

static void
test_probe_now(void **state)
{
	struct test_agent eu = { 0 }, us = { 0 };
	static const char *const eu_only[] = { "eu-only" };
	Vantage__AggMsg *m;

	(void)state;
	test_connect(&eu, "probe-eu", "eu-west", 801, 0);
	test_connect(&us, "probe-us", "us-east", 802, 0);
	test_agent_batch(&us, 1, 1, test_web, 1, VANTAGE__OUTCOME__OUTCOME_UP, 0, 0);
	test_expect_ack(&us, 1);
	test_agent_batch(&eu, 1, 1, test_web, 1, VANTAGE__OUTCOME__OUTCOME_UP, 0, 0);
	test_expect_ack(&eu, 1);
	assert_int_equal(test_probe_calls, 0); // UP asks nothing

	// "web" fails from eu-west: us-east is asked, eu-west is not.
	test_agent_batch(&eu, 2, 2, test_web, 1, VANTAGE__OUTCOME__OUTCOME_DOWN, 0, 0);
	test_expect_ack(&eu, 2);
	assert_int_equal(test_probe_calls, 1);
	assert_int_equal(test_probe_idx, TEST_WEB);
	m = test_expect(&us, VANTAGE__AGG_MSG__MSG_PROBE_NOW);
	assert_int_equal(m->probe_now->n_targets, 1);
	assert_string_equal(m->probe_now->targets[0], "web");
	assert_int_equal(test_stats().probe_now_sent, 1);
	test_expect_nothing_before_ack(&us, 1);

	// The verdict says no (asked already this interval): nothing is sent.
	test_probe_answer = false;
	test_agent_batch(&eu, 3, 3, test_web, 1, VANTAGE__OUTCOME__OUTCOME_DOWN, 0, 0);
	test_expect_ack(&eu, 3);
	assert_int_equal(test_probe_calls, 2);
	test_expect_nothing_before_ack(&us, 1);
	assert_int_equal(test_stats().probe_now_sent, 1);

	// A target us-east does not probe: asked, but nobody to send to.
	test_probe_answer = true;
	test_agent_batch(&eu, 4, 4, eu_only, 1, VANTAGE__OUTCOME__OUTCOME_DOWN, 0, 0);
	test_expect_ack(&eu, 4);
	assert_int_equal(test_probe_calls, 3);
	assert_int_equal(test_probe_idx, TEST_EU_ONLY);
	test_expect_nothing_before_ack(&us, 1);
	assert_int_equal(test_stats().probe_now_sent, 1);

	// And the other way round: us-east's failure reaches eu-west only.
	test_agent_batch(&us, 2, 2, test_web, 1, VANTAGE__OUTCOME__OUTCOME_DOWN, 0, 0);
	test_expect_ack(&us, 2);
	m = test_expect(&eu, VANTAGE__AGG_MSG__MSG_PROBE_NOW);
	assert_string_equal(m->probe_now->targets[0], "web");
	assert_int_equal(test_stats().probe_now_sent, 2);

	// A probe that hangs (Suspect) asks the same, before any result.
	{
		Vantage__AgentMsg msg = VANTAGE__AGENT_MSG__INIT;
		Vantage__Suspect sus = VANTAGE__SUSPECT__INIT;
		char *web = (char *)"web";

		sus.n_targets = 1;
		sus.targets = &web;
		msg.msg_case = VANTAGE__AGENT_MSG__MSG_SUSPECT;
		msg.suspect = &sus;
		test_agent_send(&us, &msg);
	}
	m = test_expect(&eu, VANTAGE__AGG_MSG__MSG_PROBE_NOW);
	assert_string_equal(m->probe_now->targets[0], "web");
	assert_int_equal(test_probe_calls, 5);
	assert_int_equal(test_stats().probe_now_sent, 3);
	test_expect_nothing_before_ack(&us, 2);
	test_agent_close(&eu);
	test_agent_close(&us);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_hello, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_dedup, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_gaps, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_resync, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_resync_pipelined, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_new_epoch, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_hello_switch, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_restart, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_bad_frames, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_probe_now, test_setup, test_teardown),
	};
	const char *why = pgtest_cannot_run();

	if (why != NULL) {
		printf("SKIP: %s\n", why);
		return 77;
	}
	log_init("test_ingest", LOG_LEVEL_INFO);
	atexit(test_cleanup);
	signal(SIGINT, test_on_signal);
	signal(SIGTERM, test_on_signal);
	signal(SIGHUP, test_on_signal);
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, test_group_setup, test_group_teardown);
}
