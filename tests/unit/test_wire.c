// SPDX-License-Identifier: Apache-2.0
//
// Unit tests for common/wire: every message type must survive encode and
// decode with every field intact, and every field check in wire.c must
// reject a message that is valid except for that one field, naming the
// problem in err; the boundaries next to each check must still be accepted,
// so that a check that is off by one or missing fails here.  Hostile input
// (empty, oversized, random and truncated frames, a frame that would unpack
// past the arena cap) must be refused without crashing; run under valgrind
// to see that nothing is read out of bounds or leaked.
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "wire.h"
#include "xmalloc.h"

// A fixed receiver clock, so that timestamps are tested against known edges.
#define NOW_US INT64_C(1700000000000000)
#define SKEW_US WIRE_CLOCK_SKEW_US
#define N_RES 3
#define N_GAPS_MAX 65 // one past the per-batch limit of 64
#define TEXT_MAX 4096

// A valid message of each agent body, built in memory with static storage so
// that a test row can break one field and encode the result.
struct agent_fix {
	Vantage__AgentMsg msg;
	Vantage__Hello hello;
	Vantage__ResultBatch batch;
	Vantage__Result res[N_RES];
	Vantage__Result *res_ptr[N_RES];
	Vantage__Gap gap[N_GAPS_MAX];
	Vantage__Gap *gap_ptr[N_GAPS_MAX];
	Vantage__Heartbeat hb;
	Vantage__Result *many; // heap results for the batch size rows
	Vantage__Result **many_ptr;
	char text[TEXT_MAX]; // long strings made by a row
};

// The same for aggregator bodies: a config of two targets and one control.
struct agg_fix {
	Vantage__AggMsg msg;
	Vantage__Welcome welcome;
	Vantage__Ack ack;
	Vantage__Config config;
	Vantage__Target target[3];
	Vantage__Target *target_ptr[2];
	Vantage__Target *control_ptr[1];
	Vantage__HttpSpec http[3];
	uint32_t expect[17];
	Vantage__ProbeNow probe_now;
	char *probe_keys[3];
	Vantage__Target *many; // heap targets for the count rows
	Vantage__Target **many_ptr;
	char **many_keys;
	char text[TEXT_MAX];
};

static char key_api[] = "api";
static char key_db[] = "db-tcp.example.com";
static char key_idp[] = "IdP_2";
static char key_control[] = "control-1";
static char str_empty[] = "";

// Writes unit n times into dst and returns dst; the rows use it for strings
// just over (or exactly at) a length limit.
static char *
repeat(char *dst, const char *unit, size_t n)
{
	size_t ulen = strlen(unit);

	assert_true(ulen * n < TEXT_MAX);
	for (size_t i = 0; i < n; i++)
		memcpy(dst + i * ulen, unit, ulen);
	dst[ulen * n] = '\0';
	return dst;
}

// Result i of a valid batch: every field set to a distinct value that is not
// the proto3 default, so a field lost in transit cannot compare equal.
static void
fix_result(Vantage__Result *r, size_t i, uint64_t seq)
{
	static char *const keys[] = { key_api, key_db, key_idp };
	static char peer[] = "192.0.2.10:443";
	static char err_503[] = "HTTP 503 from \"api\"\tretry";
	static char err_utf8[] = "résolution: délai dépassé ✓ 😀";

	*r = (Vantage__Result)VANTAGE__RESULT__INIT;
	r->seq = seq;
	r->target = keys[i % 3];
	r->config_version = 7 + i;
	r->scheduled_at = NOW_US - 60000000 + (int64_t)i * 1000;
	r->started_at = r->scheduled_at + 1500 + (int64_t)i;
	switch (i % 3) {
	case 0:
		r->outcome = VANTAGE__OUTCOME__OUTCOME_UP;
		r->reason = VANTAGE__REASON__REASON_NONE;
		r->http_status = 200;
		r->trigger = VANTAGE__TRIGGER__TRIGGER_SCHEDULED;
		r->agent_state = VANTAGE__AGENT_STATE__AGENT_STATE_HEALTHY;
		r->error = str_empty;
		break;
	case 1:
		r->outcome = VANTAGE__OUTCOME__OUTCOME_DOWN;
		r->reason = VANTAGE__REASON__REASON_HTTP_STATUS;
		r->http_status = 503;
		r->trigger = VANTAGE__TRIGGER__TRIGGER_RETRY;
		r->agent_state = VANTAGE__AGENT_STATE__AGENT_STATE_IMPAIRED;
		r->error = err_503;
		break;
	default:
		r->outcome = VANTAGE__OUTCOME__OUTCOME_AGENT_ERROR;
		r->reason = VANTAGE__REASON__REASON_INTERNAL;
		r->http_status = 0;
		r->trigger = VANTAGE__TRIGGER__TRIGGER_PROBE_NOW;
		r->agent_state = VANTAGE__AGENT_STATE__AGENT_STATE_HEALTHY;
		r->error = err_utf8;
		break;
	}
	r->dns_us = 1000 + (uint32_t)i;
	r->connect_us = 2000 + (uint32_t)i;
	r->tls_us = 3000 + (uint32_t)i;
	r->ttfb_us = 4000 + (uint32_t)i;
	r->total_us = 5000 + (uint32_t)i;
	r->bytes = 1234 + i;
	r->peer = peer;
	r->tls_expiry = 1800000000 + (int64_t)i;
}

static void
agent_fix_init(struct agent_fix *f, Vantage__AgentMsg__MsgCase body)
{
	static char name[] = "agent-eu.1";
	static char region[] = "eu-west";
	static char version[] = "0.1-3-gabcdef";
	static char reason[] = "control \"control-1\" failed: timeout";

	memset(f, 0, sizeof(*f));
	f->hello = (Vantage__Hello)VANTAGE__HELLO__INIT;
	f->hello.name = name;
	f->hello.region = region;
	f->hello.version = version;
	f->hello.epoch = UINT64_C(0xfedcba9876543210);
	f->hello.config_version = 12;
	f->hello.spool_oldest_seq = 100;
	f->hello.spool_newest_seq = 250;

	f->batch = (Vantage__ResultBatch)VANTAGE__RESULT_BATCH__INIT;
	f->batch.epoch = UINT64_C(0x0123456789abcdef);
	for (size_t i = 0; i < N_RES; i++) {
		fix_result(&f->res[i], i, 41 + 2 * i); // seqs 41, 43, 45
		f->res_ptr[i] = &f->res[i];
	}
	f->batch.n_results = N_RES;
	f->batch.results = f->res_ptr;
	for (size_t i = 0; i < N_GAPS_MAX; i++) {
		f->gap[i] = (Vantage__Gap)VANTAGE__GAP__INIT;
		f->gap[i].first_seq = 10 + 3 * i;
		f->gap[i].last_seq = 11 + 3 * i;
		f->gap_ptr[i] = &f->gap[i];
	}
	f->gap[0].last_seq = f->gap[0].first_seq; // a one-seq gap is fine
	f->batch.n_gaps = 2;
	f->batch.gaps = f->gap_ptr;

	f->hb = (Vantage__Heartbeat)VANTAGE__HEARTBEAT__INIT;
	f->hb.spool_depth = 17;
	f->hb.spool_bytes = 65536;
	f->hb.oldest_unacked_age_ms = 4200;
	f->hb.state = VANTAGE__AGENT_STATE__AGENT_STATE_IMPAIRED;
	f->hb.state_reason = reason;
	f->hb.clock_offset_us = -250000;
	f->hb.produced = 987654321;

	f->msg = (Vantage__AgentMsg)VANTAGE__AGENT_MSG__INIT;
	f->msg.msg_case = body;
	if (body == VANTAGE__AGENT_MSG__MSG_HELLO)
		f->msg.hello = &f->hello;
	else if (body == VANTAGE__AGENT_MSG__MSG_BATCH)
		f->msg.batch = &f->batch;
	else if (body == VANTAGE__AGENT_MSG__MSG_HEARTBEAT)
		f->msg.heartbeat = &f->hb;
}

// Replaces the batch's results with n valid ones (seqs 1..n).
static void
agent_fix_many(struct agent_fix *f, size_t n)
{
	f->many = xcalloc(n, sizeof(*f->many));
	f->many_ptr = xcalloc(n, sizeof(*f->many_ptr));
	for (size_t i = 0; i < n; i++) {
		fix_result(&f->many[i], i, i + 1);
		// Short texts keep 10001 results inside one frame.
		f->many[i].peer = str_empty;
		f->many[i].error = str_empty;
		f->many_ptr[i] = &f->many[i];
	}
	f->batch.n_results = n;
	f->batch.results = f->many_ptr;
}

static void
agent_fix_free(struct agent_fix *f)
{
	free(f->many);
	free(f->many_ptr);
}

static void
fix_target(Vantage__Target *t, Vantage__HttpSpec *h, char *key, uint32_t *expect, size_t n_expect)
{
	static char url[] = "https://api.example.com/health?full=1";
	static char method[] = "GET";
	static char body[] = "\"status\": \"ok\"";

	*t = (Vantage__Target)VANTAGE__TARGET__INIT;
	t->key = key;
	t->kind = VANTAGE__PROBE_KIND__PROBE_KIND_HTTP;
	t->interval_ms = 15000;
	t->timeout_ms = 10000;
	t->confirm = 2;
	t->retry_interval_ms = 2000;
	*h = (Vantage__HttpSpec)VANTAGE__HTTP_SPEC__INIT;
	h->url = url;
	h->method = method;
	h->n_expect_status = n_expect;
	h->expect_status = expect;
	h->body_contains = body;
	h->max_latency_ms = 2000;
	h->follow_redirects = 1;
	h->tls_min_days = 14;
	t->http = h;
}

static void
agg_fix_init(struct agg_fix *f, Vantage__AggMsg__MsgCase body)
{
	memset(f, 0, sizeof(*f));
	f->welcome = (Vantage__Welcome)VANTAGE__WELCOME__INIT;
	f->welcome.server_time_us = NOW_US + 123;
	f->welcome.epoch = UINT64_C(0x0123456789abcdef);
	f->welcome.acked_seq = 4000000000ULL;

	f->ack = (Vantage__Ack)VANTAGE__ACK__INIT;
	f->ack.epoch = UINT64_C(0x0123456789abcdef);
	f->ack.acked_seq = 77;

	for (size_t i = 0; i < 17; i++)
		f->expect[i] = 200 + (uint32_t)i;
	f->expect[1] = 301;
	fix_target(&f->target[0], &f->http[0], key_api, f->expect, 2);
	fix_target(&f->target[1], &f->http[1], key_db, f->expect, 0);
	f->target[1].kind = VANTAGE__PROBE_KIND__PROBE_KIND_TCP;
	f->target[1].http = NULL; // only http targets carry a spec
	f->target[1].confirm = 10;
	fix_target(&f->target[2], &f->http[2], key_control, f->expect, 1);
	f->target[2].interval_ms = 5000;
	f->http[2].follow_redirects = 0;
	f->target_ptr[0] = &f->target[0];
	f->target_ptr[1] = &f->target[1];
	f->control_ptr[0] = &f->target[2];
	f->config = (Vantage__Config)VANTAGE__CONFIG__INIT;
	f->config.version = 42;
	f->config.n_targets = 2;
	f->config.targets = f->target_ptr;
	f->config.n_controls = 1;
	f->config.controls = f->control_ptr;

	f->probe_keys[0] = key_api;
	f->probe_keys[1] = key_db;
	f->probe_keys[2] = key_idp;
	f->probe_now = (Vantage__ProbeNow)VANTAGE__PROBE_NOW__INIT;
	f->probe_now.n_targets = 3;
	f->probe_now.targets = f->probe_keys;

	f->msg = (Vantage__AggMsg)VANTAGE__AGG_MSG__INIT;
	f->msg.msg_case = body;
	if (body == VANTAGE__AGG_MSG__MSG_WELCOME)
		f->msg.welcome = &f->welcome;
	else if (body == VANTAGE__AGG_MSG__MSG_ACK)
		f->msg.ack = &f->ack;
	else if (body == VANTAGE__AGG_MSG__MSG_CONFIG)
		f->msg.config = &f->config;
	else if (body == VANTAGE__AGG_MSG__MSG_PROBE_NOW)
		f->msg.probe_now = &f->probe_now;
}

static void
agg_fix_free(struct agg_fix *f)
{
	free(f->many);
	free(f->many_ptr);
	free(f->many_keys);
}

static void
assert_result_equal(const Vantage__Result *want, const Vantage__Result *got)
{
	assert_int_equal(got->seq, want->seq);
	assert_string_equal(got->target, want->target);
	assert_int_equal(got->config_version, want->config_version);
	assert_int_equal(got->scheduled_at, want->scheduled_at);
	assert_int_equal(got->started_at, want->started_at);
	assert_int_equal(got->outcome, want->outcome);
	assert_int_equal(got->reason, want->reason);
	assert_int_equal(got->http_status, want->http_status);
	assert_int_equal(got->dns_us, want->dns_us);
	assert_int_equal(got->connect_us, want->connect_us);
	assert_int_equal(got->tls_us, want->tls_us);
	assert_int_equal(got->ttfb_us, want->ttfb_us);
	assert_int_equal(got->total_us, want->total_us);
	assert_int_equal(got->bytes, want->bytes);
	assert_string_equal(got->peer, want->peer);
	assert_int_equal(got->tls_expiry, want->tls_expiry);
	assert_string_equal(got->error, want->error);
	assert_int_equal(got->trigger, want->trigger);
	assert_int_equal(got->agent_state, want->agent_state);
}

static void
assert_target_equal(const Vantage__Target *want, const Vantage__Target *got)
{
	assert_string_equal(got->key, want->key);
	assert_int_equal(got->kind, want->kind);
	assert_int_equal(got->interval_ms, want->interval_ms);
	assert_int_equal(got->timeout_ms, want->timeout_ms);
	assert_int_equal(got->confirm, want->confirm);
	assert_int_equal(got->retry_interval_ms, want->retry_interval_ms);
	if (want->http == NULL) {
		assert_null(got->http);
		return;
	}
	assert_non_null(got->http);
	assert_string_equal(got->http->url, want->http->url);
	assert_string_equal(got->http->method, want->http->method);
	assert_int_equal(got->http->n_expect_status, want->http->n_expect_status);
	for (size_t i = 0; i < want->http->n_expect_status; i++)
		assert_int_equal(got->http->expect_status[i], want->http->expect_status[i]);
	assert_string_equal(got->http->body_contains, want->http->body_contains);
	assert_int_equal(got->http->max_latency_ms, want->http->max_latency_ms);
	assert_int_equal(got->http->follow_redirects, want->http->follow_redirects);
	assert_int_equal(got->http->tls_min_days, want->http->tls_min_days);
}

// Encodes m and decodes it again with the fixed clock.
static Vantage__AgentMsg *
agent_cycle(struct wire_arena *a, const Vantage__AgentMsg *m, struct buf *frame, char *err,
    size_t errlen)
{
	err[0] = '\0';
	assert_int_equal(wire_encode_agent(m, frame), 0);
	assert_true(frame->len > 0);
	return wire_decode_agent(a, frame->data, frame->len, NOW_US, err, errlen);
}

static Vantage__AggMsg *
agg_cycle(struct wire_arena *a, const Vantage__AggMsg *m, struct buf *frame, char *err,
    size_t errlen)
{
	err[0] = '\0';
	assert_int_equal(wire_encode_agg(m, frame), 0);
	assert_true(frame->len > 0);
	return wire_decode_agg(a, frame->data, frame->len, err, errlen);
}

static void
test_roundtrip_hello(void **state)
{
	struct wire_arena *a = wire_arena_new();
	struct agent_fix f;
	struct buf frame;
	char err[256];
	Vantage__AgentMsg *m;

	buf_init(&frame);
	agent_fix_init(&f, VANTAGE__AGENT_MSG__MSG_HELLO);
	m = agent_cycle(a, &f.msg, &frame, err, sizeof(err));
	assert_non_null(m);
	assert_int_equal(m->msg_case, VANTAGE__AGENT_MSG__MSG_HELLO);
	assert_string_equal(m->hello->name, f.hello.name);
	assert_string_equal(m->hello->region, f.hello.region);
	assert_string_equal(m->hello->version, f.hello.version);
	assert_int_equal(m->hello->epoch, f.hello.epoch);
	assert_int_equal(m->hello->config_version, f.hello.config_version);
	assert_int_equal(m->hello->spool_oldest_seq, f.hello.spool_oldest_seq);
	assert_int_equal(m->hello->spool_newest_seq, f.hello.spool_newest_seq);
	buf_free(&frame);
	wire_arena_free(a);
}

static void
test_roundtrip_batch(void **state)
{
	struct wire_arena *a = wire_arena_new();
	struct agent_fix f;
	struct buf frame;
	char err[256];
	Vantage__AgentMsg *m;

	buf_init(&frame);
	agent_fix_init(&f, VANTAGE__AGENT_MSG__MSG_BATCH);
	m = agent_cycle(a, &f.msg, &frame, err, sizeof(err));
	assert_non_null(m);
	assert_int_equal(m->msg_case, VANTAGE__AGENT_MSG__MSG_BATCH);
	assert_int_equal(m->batch->epoch, f.batch.epoch);
	assert_int_equal(m->batch->n_results, N_RES);
	for (size_t i = 0; i < N_RES; i++)
		assert_result_equal(&f.res[i], m->batch->results[i]);
	assert_int_equal(m->batch->n_gaps, 2);
	for (size_t i = 0; i < 2; i++) {
		assert_int_equal(m->batch->gaps[i]->first_seq, f.gap[i].first_seq);
		assert_int_equal(m->batch->gaps[i]->last_seq, f.gap[i].last_seq);
	}
	buf_free(&frame);
	wire_arena_free(a);
}

static void
test_roundtrip_heartbeat(void **state)
{
	struct wire_arena *a = wire_arena_new();
	struct agent_fix f;
	struct buf frame;
	char err[256];
	Vantage__AgentMsg *m;

	buf_init(&frame);
	agent_fix_init(&f, VANTAGE__AGENT_MSG__MSG_HEARTBEAT);
	m = agent_cycle(a, &f.msg, &frame, err, sizeof(err));
	assert_non_null(m);
	assert_int_equal(m->msg_case, VANTAGE__AGENT_MSG__MSG_HEARTBEAT);
	assert_int_equal(m->heartbeat->spool_depth, f.hb.spool_depth);
	assert_int_equal(m->heartbeat->spool_bytes, f.hb.spool_bytes);
	assert_int_equal(m->heartbeat->oldest_unacked_age_ms, f.hb.oldest_unacked_age_ms);
	assert_int_equal(m->heartbeat->state, f.hb.state);
	assert_string_equal(m->heartbeat->state_reason, f.hb.state_reason);
	assert_int_equal(m->heartbeat->clock_offset_us, f.hb.clock_offset_us);
	assert_int_equal(m->heartbeat->produced, f.hb.produced);
	buf_free(&frame);
	wire_arena_free(a);
}

static void
test_roundtrip_welcome_ack(void **state)
{
	struct wire_arena *a = wire_arena_new();
	struct agg_fix f;
	struct buf frame;
	char err[256];
	Vantage__AggMsg *m;

	buf_init(&frame);
	agg_fix_init(&f, VANTAGE__AGG_MSG__MSG_WELCOME);
	m = agg_cycle(a, &f.msg, &frame, err, sizeof(err));
	assert_non_null(m);
	assert_int_equal(m->msg_case, VANTAGE__AGG_MSG__MSG_WELCOME);
	assert_int_equal(m->welcome->server_time_us, f.welcome.server_time_us);
	assert_int_equal(m->welcome->epoch, f.welcome.epoch);
	assert_int_equal(m->welcome->acked_seq, f.welcome.acked_seq);

	agg_fix_init(&f, VANTAGE__AGG_MSG__MSG_ACK);
	m = agg_cycle(a, &f.msg, &frame, err, sizeof(err));
	assert_non_null(m);
	assert_int_equal(m->msg_case, VANTAGE__AGG_MSG__MSG_ACK);
	assert_int_equal(m->ack->epoch, f.ack.epoch);
	assert_int_equal(m->ack->acked_seq, f.ack.acked_seq);
	buf_free(&frame);
	wire_arena_free(a);
}

static void
test_roundtrip_config(void **state)
{
	struct wire_arena *a = wire_arena_new();
	struct agg_fix f;
	struct buf frame;
	char err[256];
	Vantage__AggMsg *m;

	buf_init(&frame);
	agg_fix_init(&f, VANTAGE__AGG_MSG__MSG_CONFIG);
	m = agg_cycle(a, &f.msg, &frame, err, sizeof(err));
	assert_non_null(m);
	assert_int_equal(m->msg_case, VANTAGE__AGG_MSG__MSG_CONFIG);
	assert_int_equal(m->config->version, f.config.version);
	assert_int_equal(m->config->n_targets, 2);
	assert_target_equal(&f.target[0], m->config->targets[0]);
	assert_target_equal(&f.target[1], m->config->targets[1]);
	assert_int_equal(m->config->n_controls, 1);
	assert_target_equal(&f.target[2], m->config->controls[0]);
	buf_free(&frame);
	wire_arena_free(a);
}

static void
test_roundtrip_probe_now(void **state)
{
	struct wire_arena *a = wire_arena_new();
	struct agg_fix f;
	struct buf frame;
	char err[256];
	Vantage__AggMsg *m;

	buf_init(&frame);
	agg_fix_init(&f, VANTAGE__AGG_MSG__MSG_PROBE_NOW);
	m = agg_cycle(a, &f.msg, &frame, err, sizeof(err));
	assert_non_null(m);
	assert_int_equal(m->msg_case, VANTAGE__AGG_MSG__MSG_PROBE_NOW);
	assert_int_equal(m->probe_now->n_targets, 3);
	for (size_t i = 0; i < 3; i++)
		assert_string_equal(m->probe_now->targets[i], f.probe_keys[i]);
	buf_free(&frame);
	wire_arena_free(a);
}

// One arena decodes many messages in turn; a failed decode must not spoil
// the next one.
static void
test_arena_reuse(void **state)
{
	struct wire_arena *a = wire_arena_new();
	struct agent_fix f;
	struct buf frame;
	char err[256];

	buf_init(&frame);
	for (int round = 0; round < 50; round++) {
		Vantage__AgentMsg *m;

		agent_fix_init(&f, VANTAGE__AGENT_MSG__MSG_BATCH);
		if (round % 2 == 1)
			f.res[1].outcome = 0;
		m = agent_cycle(a, &f.msg, &frame, err, sizeof(err));
		if (round % 2 == 1) {
			assert_null(m);
			assert_string_equal(err, "result 43: bad outcome 0");
		} else {
			assert_non_null(m);
			assert_result_equal(&f.res[2], m->batch->results[2]);
		}
	}
	buf_free(&frame);
	wire_arena_free(a);
}

// Rows for agent messages: each starts from a valid message of one body and
// breaks one field.  err is the complete reason wire.c must give, so the
// message is checked to name both the field and (for results) the seq.
struct agent_row {
	const char *what;
	Vantage__AgentMsg__MsgCase body;
	void (*breaks)(struct agent_fix *f);
	const char *err;
};

#define BREAK_AGENT(fn, stmt)               \
	static void fn(struct agent_fix *f) \
	{                                   \
		stmt;                       \
	}

BREAK_AGENT(r_seq_zero, f->res[0].seq = 0)
BREAK_AGENT(r_seq_big, f->res[2].seq = (uint64_t)INT64_MAX + 1)
BREAK_AGENT(r_key_empty, f->res[1].target = str_empty)
BREAK_AGENT(r_key_space, f->res[1].target = repeat(f->text, "a b", 1))
BREAK_AGENT(r_key_slash, f->res[1].target = repeat(f->text, "api/v1", 1))
BREAK_AGENT(r_key_utf8, f->res[1].target = repeat(f->text, "café", 1))
BREAK_AGENT(r_key_long, f->res[1].target = repeat(f->text, "k", WIRE_MAX_KEY + 1))
BREAK_AGENT(r_cfgver_big, f->res[1].config_version = (uint64_t)INT32_MAX + 1)
BREAK_AGENT(r_started_future, f->res[1].started_at = NOW_US + SKEW_US)
BREAK_AGENT(r_started_past, f->res[1].started_at = NOW_US - SKEW_US)
BREAK_AGENT(r_sched_after, f->res[1].scheduled_at = f->res[1].started_at + 1)
BREAK_AGENT(r_sched_past, f->res[1].scheduled_at = NOW_US - SKEW_US)
BREAK_AGENT(r_sched_lag, f->res[1].scheduled_at = f->res[1].started_at - INT32_MAX - 1)
BREAK_AGENT(r_outcome_zero, f->res[1].outcome = 0)
BREAK_AGENT(r_outcome_high, f->res[1].outcome = 4)
BREAK_AGENT(r_outcome_neg, f->res[1].outcome = -1)
BREAK_AGENT(r_reason_high, f->res[1].reason = 14)
BREAK_AGENT(r_reason_neg, f->res[1].reason = -1)
BREAK_AGENT(r_up_with_reason, f->res[0].reason = VANTAGE__REASON__REASON_DNS)
BREAK_AGENT(r_down_without_reason, f->res[1].reason = VANTAGE__REASON__REASON_NONE)
BREAK_AGENT(r_trigger_high, f->res[1].trigger = 3)
BREAK_AGENT(r_trigger_neg, f->res[1].trigger = -1)
BREAK_AGENT(r_state_high, f->res[1].agent_state = 2)
BREAK_AGENT(r_status_50, f->res[1].http_status = 50)
BREAK_AGENT(r_status_99, f->res[1].http_status = 99)
BREAK_AGENT(r_status_1000, f->res[1].http_status = 1000)
BREAK_AGENT(r_dns_gt_total, f->res[1].dns_us = f->res[1].total_us + 1)
BREAK_AGENT(r_connect_gt_total, f->res[1].connect_us = f->res[1].total_us + 1)
BREAK_AGENT(r_tls_gt_total, f->res[1].tls_us = f->res[1].total_us + 1)
BREAK_AGENT(r_ttfb_gt_total, f->res[1].ttfb_us = f->res[1].total_us + 1)
BREAK_AGENT(r_total_over_30min, f->res[1].total_us = 1800U * 1000000U + 1)
BREAK_AGENT(r_total_over_int4, f->res[1].total_us = (uint32_t)INT32_MAX + 1)
BREAK_AGENT(r_bytes_big, f->res[1].bytes = (uint64_t)INT32_MAX + 1)
BREAK_AGENT(r_tls_expiry_neg, f->res[1].tls_expiry = -1)
BREAK_AGENT(r_tls_expiry_y3000, f->res[1].tls_expiry = 32503680000LL)
BREAK_AGENT(r_peer_long, f->res[1].peer = repeat(f->text, "p", 65))
BREAK_AGENT(r_peer_ctrl, f->res[1].peer = repeat(f->text, "192.0.2.1\r", 1))
BREAK_AGENT(r_error_long, f->res[1].error = repeat(f->text, "e", WIRE_MAX_ERROR + 1))
BREAK_AGENT(r_error_long_utf8, f->res[1].error = repeat(f->text, "é", WIRE_MAX_ERROR / 2 + 1))
BREAK_AGENT(r_error_ff, f->res[1].error = repeat(f->text, "bad \xff byte", 1))
BREAK_AGENT(r_error_cont, f->res[1].error = repeat(f->text, "\x80", 1))
BREAK_AGENT(r_error_trunc, f->res[1].error = repeat(f->text, "cut \xc3", 1))
BREAK_AGENT(r_error_trunc3, f->res[1].error = repeat(f->text, "cut \xe2\x9c", 1))
BREAK_AGENT(r_error_overlong2, f->res[1].error = repeat(f->text, "\xc0\xaf", 1))
BREAK_AGENT(r_error_overlong3, f->res[1].error = repeat(f->text, "\xe0\x80\xaf", 1))
BREAK_AGENT(r_error_overlong4, f->res[1].error = repeat(f->text, "\xf0\x80\x80\xaf", 1))
BREAK_AGENT(r_error_surrogate, f->res[1].error = repeat(f->text, "\xed\xa0\x80", 1))
BREAK_AGENT(r_error_above_max, f->res[1].error = repeat(f->text, "\xf4\x90\x80\x80", 1))
BREAK_AGENT(r_error_f5, f->res[1].error = repeat(f->text, "\xf5\x80\x80\x80", 1))
BREAK_AGENT(r_error_newline, f->res[1].error = repeat(f->text, "line\nbreak", 1))
BREAK_AGENT(r_error_escape, f->res[1].error = repeat(f->text, "\x1b[31mred", 1))
BREAK_AGENT(b_epoch_zero, f->batch.epoch = 0)
BREAK_AGENT(b_empty, f->batch.n_results = 0; f->batch.n_gaps = 0)
BREAK_AGENT(b_too_many, agent_fix_many(f, WIRE_MAX_RESULTS + 1))
BREAK_AGENT(b_gaps_too_many, f->batch.n_gaps = 65)
BREAK_AGENT(b_seq_equal, f->res[2].seq = f->res[1].seq)
BREAK_AGENT(b_seq_down, f->res[2].seq = f->res[0].seq)
BREAK_AGENT(b_gap_first_zero, f->gap[0].first_seq = 0)
BREAK_AGENT(b_gap_reversed, f->gap[1].first_seq = f->gap[1].last_seq + 1)
BREAK_AGENT(b_gap_big, f->gap[1].last_seq = (uint64_t)INT64_MAX + 1)
BREAK_AGENT(h_name_empty, f->hello.name = str_empty)
BREAK_AGENT(h_name_space, f->hello.name = repeat(f->text, "agent 1", 1))
BREAK_AGENT(h_name_long, f->hello.name = repeat(f->text, "n", WIRE_MAX_NAME + 1))
BREAK_AGENT(h_region_empty, f->hello.region = str_empty)
BREAK_AGENT(h_region_slash, f->hello.region = repeat(f->text, "eu/west", 1))
BREAK_AGENT(h_region_long, f->hello.region = repeat(f->text, "r", WIRE_MAX_NAME + 1))
BREAK_AGENT(h_version_ctrl, f->hello.version = repeat(f->text, "0.1\x7f\x01", 1))
BREAK_AGENT(h_version_long, f->hello.version = repeat(f->text, "v", 65))
BREAK_AGENT(h_epoch_zero, f->hello.epoch = 0)
BREAK_AGENT(h_spool_reversed, f->hello.spool_oldest_seq = f->hello.spool_newest_seq + 1)
BREAK_AGENT(h_spool_big, f->hello.spool_newest_seq = UINT64_MAX)
BREAK_AGENT(h_cfgver_big, f->hello.config_version = UINT64_MAX)
BREAK_AGENT(hb_state_high, f->hb.state = 2)
BREAK_AGENT(hb_state_neg, f->hb.state = -1)
BREAK_AGENT(hb_reason_long, f->hb.state_reason = repeat(f->text, "s", WIRE_MAX_ERROR + 1))
BREAK_AGENT(hb_reason_utf8, f->hb.state_reason = repeat(f->text, "\xc3(", 1))
BREAK_AGENT(hb_offset_high, f->hb.clock_offset_us = SKEW_US)
BREAK_AGENT(hb_offset_low, f->hb.clock_offset_us = -SKEW_US)
BREAK_AGENT(hb_depth_big, f->hb.spool_depth = (uint64_t)INT64_MAX + 1)
BREAK_AGENT(hb_produced_big, f->hb.produced = UINT64_MAX)

#define BATCH VANTAGE__AGENT_MSG__MSG_BATCH
#define HELLO VANTAGE__AGENT_MSG__MSG_HELLO
#define HEARTBEAT VANTAGE__AGENT_MSG__MSG_HEARTBEAT

static const struct agent_row agent_rejects[] = {
	{ "seq 0", BATCH, r_seq_zero, "result seq is 0" },
	{ "seq > int8", BATCH, r_seq_big, "result seq 9223372036854775808 out of range" },
	{ "empty key", BATCH, r_key_empty, "result 43: bad target key" },
	{ "key with space", BATCH, r_key_space, "result 43: bad target key" },
	{ "key with slash", BATCH, r_key_slash, "result 43: bad target key" },
	{ "key not ascii", BATCH, r_key_utf8, "result 43: bad target key" },
	{ "key 129 bytes", BATCH, r_key_long, "result 43: bad target key" },
	{ "config_version > int32", BATCH, r_cfgver_big, "result 43: config_version out of range" },
	{ "started_at a day ahead", BATCH, r_started_future, "result 43: started_at out of range" },
	{ "started_at a day behind", BATCH, r_started_past, "result 43: started_at out of range" },
	{ "scheduled_at after started_at", BATCH, r_sched_after,
	    "result 43: scheduled_at out of range" },
	{ "scheduled_at a day behind", BATCH, r_sched_past,
	    "result 43: scheduled_at out of range" },
	{ "scheduled_at lag > int32", BATCH, r_sched_lag, "result 43: scheduled_at out of range" },
	{ "outcome 0", BATCH, r_outcome_zero, "result 43: bad outcome 0" },
	{ "outcome 4", BATCH, r_outcome_high, "result 43: bad outcome 4" },
	{ "outcome -1", BATCH, r_outcome_neg, "result 43: bad outcome -1" },
	{ "reason 14", BATCH, r_reason_high, "result 43: bad reason 14" },
	{ "reason -1", BATCH, r_reason_neg, "result 43: bad reason -1" },
	{ "up with a reason", BATCH, r_up_with_reason, "result 41: reason does not match outcome" },
	{ "down without reason", BATCH, r_down_without_reason,
	    "result 43: reason does not match outcome" },
	{ "trigger 3", BATCH, r_trigger_high, "result 43: bad trigger 3" },
	{ "trigger -1", BATCH, r_trigger_neg, "result 43: bad trigger -1" },
	{ "agent_state 2", BATCH, r_state_high, "result 43: bad agent_state" },
	{ "http_status 50", BATCH, r_status_50, "result 43: bad http_status 50" },
	{ "http_status 99", BATCH, r_status_99, "result 43: bad http_status 99" },
	{ "http_status 1000", BATCH, r_status_1000, "result 43: bad http_status 1000" },
	{ "dns > total", BATCH, r_dns_gt_total, "result 43: phase durations inconsistent" },
	{ "connect > total", BATCH, r_connect_gt_total, "result 43: phase durations inconsistent" },
	{ "tls > total", BATCH, r_tls_gt_total, "result 43: phase durations inconsistent" },
	{ "ttfb > total", BATCH, r_ttfb_gt_total, "result 43: phase durations inconsistent" },
	{ "total > 30 min", BATCH, r_total_over_30min, "result 43: phase durations inconsistent" },
	{ "total > int4", BATCH, r_total_over_int4, "result 43: phase durations inconsistent" },
	{ "bytes > int32", BATCH, r_bytes_big, "result 43: bytes out of range" },
	{ "tls_expiry -1", BATCH, r_tls_expiry_neg, "result 43: tls_expiry out of range" },
	{ "tls_expiry year 3000", BATCH, r_tls_expiry_y3000, "result 43: tls_expiry out of range" },
	{ "peer 65 bytes", BATCH, r_peer_long, "result 43: bad peer" },
	{ "peer with CR", BATCH, r_peer_ctrl, "result 43: bad peer" },
	{ "error 257 bytes", BATCH, r_error_long, "result 43: bad error text" },
	{ "error 258 bytes of 2-byte chars", BATCH, r_error_long_utf8,
	    "result 43: bad error text" },
	{ "error with 0xff", BATCH, r_error_ff, "result 43: bad error text" },
	{ "error lone continuation", BATCH, r_error_cont, "result 43: bad error text" },
	{ "error truncated 2-byte", BATCH, r_error_trunc, "result 43: bad error text" },
	{ "error truncated 3-byte", BATCH, r_error_trunc3, "result 43: bad error text" },
	{ "error overlong 2-byte", BATCH, r_error_overlong2, "result 43: bad error text" },
	{ "error overlong 3-byte", BATCH, r_error_overlong3, "result 43: bad error text" },
	{ "error overlong 4-byte", BATCH, r_error_overlong4, "result 43: bad error text" },
	{ "error UTF-16 surrogate", BATCH, r_error_surrogate, "result 43: bad error text" },
	{ "error above U+10FFFF", BATCH, r_error_above_max, "result 43: bad error text" },
	{ "error lead byte 0xf5", BATCH, r_error_f5, "result 43: bad error text" },
	{ "error with newline", BATCH, r_error_newline, "result 43: bad error text" },
	{ "error with ESC", BATCH, r_error_escape, "result 43: bad error text" },
	{ "batch epoch 0", BATCH, b_epoch_zero, "batch epoch is 0" },
	{ "empty batch", BATCH, b_empty, "empty batch" },
	{ "10001 results", BATCH, b_too_many, "batch has 10001 results (max 10000)" },
	{ "65 gaps", BATCH, b_gaps_too_many, "batch has 65 gaps (max 64)" },
	{ "repeated seq", BATCH, b_seq_equal, "batch seqs not strictly increasing at 2" },
	{ "decreasing seq", BATCH, b_seq_down, "batch seqs not strictly increasing at 2" },
	{ "gap from 0", BATCH, b_gap_first_zero, "bad gap 0" },
	{ "gap reversed", BATCH, b_gap_reversed, "bad gap 1" },
	{ "gap past int8", BATCH, b_gap_big, "bad gap 1" },
	{ "hello empty name", HELLO, h_name_empty, "hello: bad agent name" },
	{ "hello name with space", HELLO, h_name_space, "hello: bad agent name" },
	{ "hello name 65 bytes", HELLO, h_name_long, "hello: bad agent name" },
	{ "hello empty region", HELLO, h_region_empty, "hello: bad region name" },
	{ "hello region with slash", HELLO, h_region_slash, "hello: bad region name" },
	{ "hello region 65 bytes", HELLO, h_region_long, "hello: bad region name" },
	{ "hello version with control", HELLO, h_version_ctrl, "hello: bad version" },
	{ "hello version 65 bytes", HELLO, h_version_long, "hello: bad version" },
	{ "hello epoch 0", HELLO, h_epoch_zero, "hello: epoch is 0" },
	{ "hello spool oldest > newest", HELLO, h_spool_reversed, "hello: bad spool range" },
	{ "hello spool past int8", HELLO, h_spool_big, "hello: bad spool range" },
	{ "hello config_version past int8", HELLO, h_cfgver_big,
	    "hello: config_version out of range" },
	{ "heartbeat state 2", HEARTBEAT, hb_state_high, "heartbeat: bad state" },
	{ "heartbeat state -1", HEARTBEAT, hb_state_neg, "heartbeat: bad state" },
	{ "heartbeat reason 257 bytes", HEARTBEAT, hb_reason_long, "heartbeat: bad state reason" },
	{ "heartbeat reason bad UTF-8", HEARTBEAT, hb_reason_utf8, "heartbeat: bad state reason" },
	{ "heartbeat offset +1 day", HEARTBEAT, hb_offset_high, "heartbeat: bad clock offset" },
	{ "heartbeat offset -1 day", HEARTBEAT, hb_offset_low, "heartbeat: bad clock offset" },
	{ "heartbeat spool_depth past int8", HEARTBEAT, hb_depth_big,
	    "heartbeat: counter out of range" },
	{ "heartbeat produced past int8", HEARTBEAT, hb_produced_big,
	    "heartbeat: counter out of range" },
};

// Boundaries next to the checks above, each of which must still decode.
BREAK_AGENT(ok_key_max, f->res[1].target = repeat(f->text, "k", WIRE_MAX_KEY))
BREAK_AGENT(ok_key_chars, f->res[1].target = repeat(f->text, "AZaz09._-", 1))
BREAK_AGENT(ok_cfgver_max, f->res[1].config_version = INT32_MAX)
BREAK_AGENT(ok_started_ahead, f->res[1].started_at = NOW_US + SKEW_US - 1;
	    f->res[1].scheduled_at = f->res[1].started_at - 1000)
BREAK_AGENT(ok_started_behind, f->res[1].started_at = NOW_US - SKEW_US + 2;
	    f->res[1].scheduled_at = NOW_US - SKEW_US + 1)
BREAK_AGENT(ok_sched_equal, f->res[1].scheduled_at = f->res[1].started_at)
BREAK_AGENT(ok_sched_lag_max, f->res[1].scheduled_at = f->res[1].started_at - INT32_MAX)
BREAK_AGENT(ok_status_100, f->res[1].http_status = 100)
BREAK_AGENT(ok_status_999, f->res[1].http_status = 999)
BREAK_AGENT(ok_status_0, f->res[1].http_status = 0)
BREAK_AGENT(ok_phases_max, f->res[1].total_us = 1800U * 1000000U;
	    f->res[1].dns_us = f->res[1].connect_us = f->res[1].tls_us = f->res[1].ttfb_us =
		f->res[1].total_us)
BREAK_AGENT(ok_bytes_max, f->res[1].bytes = INT32_MAX)
BREAK_AGENT(ok_tls_expiry_last, f->res[1].tls_expiry = 32503680000LL - 1)
BREAK_AGENT(ok_peer_max, f->res[1].peer = repeat(f->text, "p", 64))
BREAK_AGENT(ok_error_max, f->res[1].error = repeat(f->text, "e", WIRE_MAX_ERROR))
BREAK_AGENT(ok_error_max_utf8, f->res[1].error = repeat(f->text, "é", WIRE_MAX_ERROR / 2))
BREAK_AGENT(ok_error_edges,
    f->res[1].error = repeat(f->text,
	"\t\xc2\x80\xdf\xbf\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbf"
	"\xf0\x90\x80\x80\xf4\x8f\xbf\xbf",
	1))
BREAK_AGENT(ok_only_gaps, f->batch.n_results = 0)
BREAK_AGENT(ok_no_gaps, f->batch.n_gaps = 0)
BREAK_AGENT(ok_gaps_max, f->batch.n_gaps = 64)
BREAK_AGENT(ok_seq_int8_max, f->res[2].seq = INT64_MAX; f->gap[1].last_seq = INT64_MAX)
BREAK_AGENT(ok_results_max, agent_fix_many(f, WIRE_MAX_RESULTS))
BREAK_AGENT(ok_name_max, f->hello.name = repeat(f->text, "n", WIRE_MAX_NAME))
BREAK_AGENT(ok_version_empty, f->hello.version = str_empty)
BREAK_AGENT(ok_spool_empty, f->hello.spool_oldest_seq = f->hello.spool_newest_seq = 0)
BREAK_AGENT(ok_hb_healthy, f->hb.state = VANTAGE__AGENT_STATE__AGENT_STATE_HEALTHY)
BREAK_AGENT(ok_offset_high, f->hb.clock_offset_us = SKEW_US - 1)
BREAK_AGENT(ok_offset_low, f->hb.clock_offset_us = -SKEW_US + 1)

static const struct agent_row agent_accepts[] = {
	{ "key 128 bytes", BATCH, ok_key_max, NULL },
	{ "key of every allowed class", BATCH, ok_key_chars, NULL },
	{ "config_version int32 max", BATCH, ok_cfgver_max, NULL },
	{ "started_at just under a day ahead", BATCH, ok_started_ahead, NULL },
	{ "started_at just under a day behind", BATCH, ok_started_behind, NULL },
	{ "scheduled_at == started_at", BATCH, ok_sched_equal, NULL },
	{ "scheduled lag int32 max", BATCH, ok_sched_lag_max, NULL },
	{ "http_status 100", BATCH, ok_status_100, NULL },
	{ "http_status 999", BATCH, ok_status_999, NULL },
	{ "http_status 0", BATCH, ok_status_0, NULL },
	{ "every phase 1 h", BATCH, ok_phases_max, NULL },
	{ "bytes int32 max", BATCH, ok_bytes_max, NULL },
	{ "tls_expiry last allowed", BATCH, ok_tls_expiry_last, NULL },
	{ "peer 64 bytes", BATCH, ok_peer_max, NULL },
	{ "error 256 bytes", BATCH, ok_error_max, NULL },
	{ "error 256 bytes of 2-byte chars", BATCH, ok_error_max_utf8, NULL },
	{ "error UTF-8 range edges", BATCH, ok_error_edges, NULL },
	{ "batch of gaps only", BATCH, ok_only_gaps, NULL },
	{ "batch without gaps", BATCH, ok_no_gaps, NULL },
	{ "64 gaps", BATCH, ok_gaps_max, NULL },
	{ "seq and gap at int8 max", BATCH, ok_seq_int8_max, NULL },
	{ "10000 results", BATCH, ok_results_max, NULL },
	{ "hello name 64 bytes", HELLO, ok_name_max, NULL },
	{ "hello empty version", HELLO, ok_version_empty, NULL },
	{ "hello empty spool", HELLO, ok_spool_empty, NULL },
	{ "heartbeat healthy", HEARTBEAT, ok_hb_healthy, NULL },
	{ "heartbeat offset just under +1 day", HEARTBEAT, ok_offset_high, NULL },
	{ "heartbeat offset just under -1 day", HEARTBEAT, ok_offset_low, NULL },
};

// Runs one row through encode and decode; also through wire_check_agent
// alone, which must agree.
static void
run_agent_row(struct wire_arena *a, struct buf *frame, const struct agent_row *row)
{
	struct agent_fix *f = xmalloc(sizeof(*f));
	char err[256];
	Vantage__AgentMsg *m;

	agent_fix_init(f, row->body);
	row->breaks(f);
	m = agent_cycle(a, &f->msg, frame, err, sizeof(err));
	if (row->err == NULL) {
		if (m == NULL)
			fail_msg("row \"%s\": rejected with \"%s\"", row->what, err);
		assert_int_equal(wire_check_agent(&f->msg, NOW_US, err, sizeof(err)), 0);
	} else {
		if (m != NULL)
			fail_msg("row \"%s\": accepted", row->what);
		if (strcmp(err, row->err) != 0)
			fail_msg("row \"%s\": err \"%s\", want \"%s\"", row->what, err, row->err);
		err[0] = '\0';
		assert_int_equal(wire_check_agent(&f->msg, NOW_US, err, sizeof(err)), -1);
		assert_string_equal(err, row->err);
	}
	agent_fix_free(f);
	free(f);
}

static void
test_agent_rejects(void **state)
{
	struct wire_arena *a = wire_arena_new();
	struct buf frame;

	buf_init(&frame);
	for (size_t i = 0; i < sizeof(agent_rejects) / sizeof(agent_rejects[0]); i++)
		run_agent_row(a, &frame, &agent_rejects[i]);
	buf_free(&frame);
	wire_arena_free(a);
}

static void
test_agent_accepts(void **state)
{
	struct wire_arena *a = wire_arena_new();
	struct buf frame;

	buf_init(&frame);
	for (size_t i = 0; i < sizeof(agent_accepts) / sizeof(agent_accepts[0]); i++)
		run_agent_row(a, &frame, &agent_accepts[i]);
	buf_free(&frame);
	wire_arena_free(a);
}

// wire_check_result is public for fuzzers and tests: it must reject on its
// own, without the batch around it.
static void
test_check_result_alone(void **state)
{
	struct agent_fix f;
	char err[256];

	agent_fix_init(&f, VANTAGE__AGENT_MSG__MSG_BATCH);
	assert_int_equal(wire_check_result(&f.res[2], NOW_US, err, sizeof(err)), 0);
	f.res[2].http_status = 1000;
	assert_int_equal(wire_check_result(&f.res[2], NOW_US, err, sizeof(err)), -1);
	assert_string_equal(err, "result 45: bad http_status 1000");
	// The same result is valid for a receiver whose clock is a day later
	// only if its timestamps move with it.
	f.res[2].http_status = 0;
	assert_int_equal(wire_check_result(&f.res[2], NOW_US + SKEW_US, err, sizeof(err)), -1);
	assert_string_equal(err, "result 45: started_at out of range");
}

struct agg_row {
	const char *what;
	Vantage__AggMsg__MsgCase body;
	void (*breaks)(struct agg_fix *f);
	const char *err;
};

#define BREAK_AGG(fn, stmt)               \
	static void fn(struct agg_fix *f) \
	{                                 \
		stmt;                     \
	}

// n empty targets (or n copies of one probe key): the smallest encoding of
// a long list, so the count check is reached within WIRE_MAX_MSG.
static void
agg_fix_many_targets(struct agg_fix *f, size_t n)
{
	f->many = xcalloc(n, sizeof(*f->many));
	f->many_ptr = xcalloc(n, sizeof(*f->many_ptr));
	for (size_t i = 0; i < n; i++) {
		f->many[i] = (Vantage__Target)VANTAGE__TARGET__INIT;
		f->many_ptr[i] = &f->many[i];
	}
	f->config.n_targets = n - 1;
	f->config.targets = f->many_ptr;
	f->config.n_controls = 1;
	f->config.controls = f->many_ptr + n - 1;
}

static void
agg_fix_many_keys(struct agg_fix *f, size_t n)
{
	f->many_keys = xcalloc(n, sizeof(*f->many_keys));
	for (size_t i = 0; i < n; i++)
		f->many_keys[i] = key_api;
	f->probe_now.n_targets = n;
	f->probe_now.targets = f->many_keys;
}

BREAK_AGG(w_epoch_zero, f->welcome.epoch = 0)
BREAK_AGG(a_epoch_zero, f->ack.epoch = 0)
BREAK_AGG(c_key_empty, f->target[0].key = str_empty)
BREAK_AGG(c_key_space, f->target[0].key = repeat(f->text, "my api", 1))
BREAK_AGG(c_key_long, f->target[0].key = repeat(f->text, "k", WIRE_MAX_KEY + 1))
BREAK_AGG(c_kind_zero, f->target[0].kind = VANTAGE__PROBE_KIND__PROBE_KIND_UNSPECIFIED)
BREAK_AGG(c_kind_high, f->target[0].kind = 5)
BREAK_AGG(c_interval_low, f->target[0].interval_ms = 99)
BREAK_AGG(c_interval_high, f->target[0].interval_ms = 86400001)
BREAK_AGG(c_timeout_low, f->target[0].timeout_ms = 9)
BREAK_AGG(c_timeout_high, f->target[0].timeout_ms = 600001)
BREAK_AGG(c_confirm_zero, f->target[0].confirm = 0)
BREAK_AGG(c_confirm_high, f->target[0].confirm = 11)
BREAK_AGG(c_retry_low, f->target[0].retry_interval_ms = 99)
BREAK_AGG(c_retry_high, f->target[0].retry_interval_ms = 3600001)
BREAK_AGG(c_http_missing, f->target[0].http = NULL)
BREAK_AGG(c_url_empty, f->http[0].url = str_empty)
BREAK_AGG(c_url_ftp, f->http[0].url = repeat(f->text, "ftp://api.example.com/", 1))
BREAK_AGG(c_url_no_scheme, f->http[0].url = repeat(f->text, "api.example.com/health", 1))
BREAK_AGG(c_url_ctrl, f->http[0].url = repeat(f->text, "http://a.example/\r\nX: y", 1))
BREAK_AGG(c_url_long, memcpy(repeat(f->text, "a", 2049), "http://", 7); f->http[0].url = f->text)
BREAK_AGG(c_method_empty, f->http[0].method = str_empty)
BREAK_AGG(c_method_space, f->http[0].method = repeat(f->text, "GET /", 1))
BREAK_AGG(c_method_long, f->http[0].method = repeat(f->text, "M", 17))
BREAK_AGG(c_expect_many, f->http[0].n_expect_status = 17)
BREAK_AGG(c_expect_low, f->expect[1] = 99)
BREAK_AGG(c_expect_high, f->expect[1] = 600)
BREAK_AGG(c_body_utf8, f->http[0].body_contains = repeat(f->text, "ok\xff", 1))
BREAK_AGG(c_body_long, f->http[0].body_contains = repeat(f->text, "b", 1025))
BREAK_AGG(c_second_target, f->target[1].interval_ms = 0)
BREAK_AGG(c_control, f->target[2].timeout_ms = 0)
BREAK_AGG(c_control_url, f->http[2].url = str_empty)
BREAK_AGG(c_too_many, agg_fix_many_targets(f, WIRE_MAX_TARGETS + 1))
BREAK_AGG(p_key_empty, f->probe_keys[1] = str_empty)
BREAK_AGG(p_key_bad, f->probe_keys[1] = repeat(f->text, "api;drop", 1))
BREAK_AGG(p_key_long, f->probe_keys[1] = repeat(f->text, "k", WIRE_MAX_KEY + 1))
BREAK_AGG(p_too_many, agg_fix_many_keys(f, WIRE_MAX_TARGETS + 1))

#define WELCOME VANTAGE__AGG_MSG__MSG_WELCOME
#define ACK VANTAGE__AGG_MSG__MSG_ACK
#define CONFIG VANTAGE__AGG_MSG__MSG_CONFIG
#define PROBE_NOW VANTAGE__AGG_MSG__MSG_PROBE_NOW

static const struct agg_row agg_rejects[] = {
	{ "welcome epoch 0", WELCOME, w_epoch_zero, "welcome: epoch is 0" },
	{ "ack epoch 0", ACK, a_epoch_zero, "ack: epoch is 0" },
	{ "empty key", CONFIG, c_key_empty, "config: bad target key" },
	{ "key with space", CONFIG, c_key_space, "config: bad target key" },
	{ "key 129 bytes", CONFIG, c_key_long, "config: bad target key" },
	{ "kind unspecified", CONFIG, c_kind_zero, "config: bad kind for \"api\"" },
	{ "kind 5", CONFIG, c_kind_high, "config: bad kind for \"api\"" },
	{ "interval 99 ms", CONFIG, c_interval_low, "config: bad interval for \"api\"" },
	{ "interval > 1 day", CONFIG, c_interval_high, "config: bad interval for \"api\"" },
	{ "timeout 9 ms", CONFIG, c_timeout_low, "config: bad timeout for \"api\"" },
	{ "timeout > 10 min", CONFIG, c_timeout_high, "config: bad timeout for \"api\"" },
	{ "confirm 0", CONFIG, c_confirm_zero, "config: bad confirm for \"api\"" },
	{ "confirm 11", CONFIG, c_confirm_high, "config: bad confirm for \"api\"" },
	{ "retry 99 ms", CONFIG, c_retry_low, "config: bad retry_interval for \"api\"" },
	{ "retry > 1 h", CONFIG, c_retry_high, "config: bad retry_interval for \"api\"" },
	{ "http without spec", CONFIG, c_http_missing, "config: http target \"api\" without spec" },
	{ "empty url", CONFIG, c_url_empty, "config: bad url for \"api\"" },
	{ "ftp url", CONFIG, c_url_ftp, "config: bad url for \"api\"" },
	{ "url without scheme", CONFIG, c_url_no_scheme, "config: bad url for \"api\"" },
	{ "url with CRLF", CONFIG, c_url_ctrl, "config: bad url for \"api\"" },
	{ "url 2049 bytes", CONFIG, c_url_long, "config: bad url for \"api\"" },
	{ "empty method", CONFIG, c_method_empty, "config: bad method for \"api\"" },
	{ "method with space", CONFIG, c_method_space, "config: bad method for \"api\"" },
	{ "method 17 bytes", CONFIG, c_method_long, "config: bad method for \"api\"" },
	{ "17 expect_status", CONFIG, c_expect_many, "config: too many expect_status for \"api\"" },
	{ "expect_status 99", CONFIG, c_expect_low, "config: bad expect_status for \"api\"" },
	{ "expect_status 600", CONFIG, c_expect_high, "config: bad expect_status for \"api\"" },
	{ "body_contains bad UTF-8", CONFIG, c_body_utf8, "config: bad body_contains for \"api\"" },
	{ "body_contains 1025 bytes", CONFIG, c_body_long,
	    "config: bad body_contains for \"api\"" },
	{ "second target", CONFIG, c_second_target,
	    "config: bad interval for \"db-tcp.example.com\"" },
	{ "control timeout", CONFIG, c_control, "config: bad timeout for \"control-1\"" },
	{ "control url", CONFIG, c_control_url, "config: bad url for \"control-1\"" },
	{ "100001 targets", CONFIG, c_too_many, "config: too many targets" },
	{ "probe_now empty key", PROBE_NOW, p_key_empty, "probe_now: bad target key" },
	{ "probe_now key with ;", PROBE_NOW, p_key_bad, "probe_now: bad target key" },
	{ "probe_now key 129 bytes", PROBE_NOW, p_key_long, "probe_now: bad target key" },
	{ "probe_now 100001 keys", PROBE_NOW, p_too_many, "probe_now: too many targets" },
};

BREAK_AGG(ok_welcome_zeros, f->welcome.server_time_us = 0; f->welcome.acked_seq = 0)
BREAK_AGG(ok_interval_min, f->target[0].interval_ms = 100)
BREAK_AGG(ok_interval_max, f->target[0].interval_ms = 86400000)
BREAK_AGG(ok_timeout_min, f->target[0].timeout_ms = 10)
BREAK_AGG(ok_timeout_max, f->target[0].timeout_ms = 600000)
BREAK_AGG(ok_confirm_min, f->target[0].confirm = 1)
BREAK_AGG(ok_retry_min, f->target[0].retry_interval_ms = 100)
BREAK_AGG(ok_retry_max, f->target[0].retry_interval_ms = 3600000)
BREAK_AGG(ok_kind_icmp, f->target[0].kind = VANTAGE__PROBE_KIND__PROBE_KIND_ICMP;
	  f->target[0].http = NULL)
BREAK_AGG(ok_url_http, f->http[0].url = repeat(f->text, "http://x", 1))
BREAK_AGG(ok_url_max, memcpy(repeat(f->text, "a", 2048), "https://", 8); f->http[0].url = f->text)
BREAK_AGG(ok_method_max, f->http[0].method = repeat(f->text, "M", 16))
BREAK_AGG(ok_expect_16, f->http[0].n_expect_status = 16)
BREAK_AGG(ok_expect_edges, f->expect[0] = 100; f->expect[1] = 599)
BREAK_AGG(ok_body_empty, f->http[0].body_contains = str_empty)
BREAK_AGG(ok_empty_config, f->config.n_targets = 0; f->config.n_controls = 0)
BREAK_AGG(ok_probe_now_empty, f->probe_now.n_targets = 0)

static const struct agg_row agg_accepts[] = {
	{ "welcome with zeros", WELCOME, ok_welcome_zeros, NULL },
	{ "interval 100 ms", CONFIG, ok_interval_min, NULL },
	{ "interval 1 day", CONFIG, ok_interval_max, NULL },
	{ "timeout 10 ms", CONFIG, ok_timeout_min, NULL },
	{ "timeout 10 min", CONFIG, ok_timeout_max, NULL },
	{ "confirm 1", CONFIG, ok_confirm_min, NULL },
	{ "retry 100 ms", CONFIG, ok_retry_min, NULL },
	{ "retry 1 h", CONFIG, ok_retry_max, NULL },
	{ "icmp without spec", CONFIG, ok_kind_icmp, NULL },
	{ "plain http url", CONFIG, ok_url_http, NULL },
	{ "url 2048 bytes", CONFIG, ok_url_max, NULL },
	{ "method 16 bytes", CONFIG, ok_method_max, NULL },
	{ "16 expect_status", CONFIG, ok_expect_16, NULL },
	{ "expect_status 100 and 599", CONFIG, ok_expect_edges, NULL },
	{ "empty body_contains", CONFIG, ok_body_empty, NULL },
	{ "config without targets", CONFIG, ok_empty_config, NULL },
	{ "probe_now without keys", PROBE_NOW, ok_probe_now_empty, NULL },
};

static void
run_agg_row(struct wire_arena *a, struct buf *frame, const struct agg_row *row)
{
	struct agg_fix *f = xmalloc(sizeof(*f));
	char err[256];
	Vantage__AggMsg *m;

	agg_fix_init(f, row->body);
	row->breaks(f);
	m = agg_cycle(a, &f->msg, frame, err, sizeof(err));
	if (row->err == NULL) {
		if (m == NULL)
			fail_msg("row \"%s\": rejected with \"%s\"", row->what, err);
		assert_int_equal(wire_check_agg(&f->msg, err, sizeof(err)), 0);
	} else {
		if (m != NULL)
			fail_msg("row \"%s\": accepted", row->what);
		if (strcmp(err, row->err) != 0)
			fail_msg("row \"%s\": err \"%s\", want \"%s\"", row->what, err, row->err);
		err[0] = '\0';
		assert_int_equal(wire_check_agg(&f->msg, err, sizeof(err)), -1);
		assert_string_equal(err, row->err);
	}
	agg_fix_free(f);
	free(f);
}

static void
test_agg_rejects(void **state)
{
	struct wire_arena *a = wire_arena_new();
	struct buf frame;

	buf_init(&frame);
	for (size_t i = 0; i < sizeof(agg_rejects) / sizeof(agg_rejects[0]); i++)
		run_agg_row(a, &frame, &agg_rejects[i]);
	buf_free(&frame);
	wire_arena_free(a);
}

static void
test_agg_accepts(void **state)
{
	struct wire_arena *a = wire_arena_new();
	struct buf frame;

	buf_init(&frame);
	for (size_t i = 0; i < sizeof(agg_accepts) / sizeof(agg_accepts[0]); i++)
		run_agg_row(a, &frame, &agg_accepts[i]);
	buf_free(&frame);
	wire_arena_free(a);
}

// A message without a body encodes to nothing, which the frame check
// refuses first; on the wire it is a body this version does not know (the
// next oneof number, from a newer peer), which protobuf-c skips and leaves
// the oneof unset.
static void
test_no_body(void **state)
{
	static const uint8_t future_agent[] = { (5 << 3) | 2, 1, 0x08 };
	static const uint8_t future_agg[] = { (5 << 3) | 2, 0 };
	struct wire_arena *a = wire_arena_new();
	Vantage__AgentMsg am = VANTAGE__AGENT_MSG__INIT;
	Vantage__AggMsg gm = VANTAGE__AGG_MSG__INIT;
	struct buf frame;
	char err[256];

	buf_init(&frame);
	assert_int_equal(wire_check_agent(&am, NOW_US, err, sizeof(err)), -1);
	assert_string_equal(err, "agent message has no known body");
	assert_int_equal(wire_encode_agent(&am, &frame), 0);
	assert_int_equal(frame.len, 0);
	assert_null(
	    wire_decode_agent(a, future_agent, sizeof(future_agent), NOW_US, err, sizeof(err)));
	assert_string_equal(err, "agent message has no known body");

	assert_int_equal(wire_check_agg(&gm, err, sizeof(err)), -1);
	assert_string_equal(err, "aggregator message has no known body");
	assert_null(wire_decode_agg(a, future_agg, sizeof(future_agg), err, sizeof(err)));
	assert_string_equal(err, "aggregator message has no known body");
	buf_free(&frame);
	wire_arena_free(a);
}

// Appends a protobuf varint.
static void
put_varint(struct buf *b, uint64_t v)
{
	while (v >= 0x80) {
		buf_putc(b, (char)(v | 0x80));
		v >>= 7;
	}
	buf_putc(b, (char)v);
}

// A valid hello followed by one unknown length-delimited field (number 100)
// sized so the frame is exactly total bytes: protobuf-c skips unknown
// fields, so only the frame size decides acceptance.
static void
padded_hello(struct buf *frame, size_t total)
{
	struct agent_fix f;
	size_t head, pad;

	agent_fix_init(&f, VANTAGE__AGENT_MSG__MSG_HELLO);
	assert_int_equal(wire_encode_agent(&f.msg, frame), 0);
	head = frame->len + 2 + 3; // tag 100/LEN is two bytes, the length three
	assert_true(total > head + (1 << 14) && total - head < (1 << 21));
	pad = total - head;
	put_varint(frame, (100 << 3) | 2);
	put_varint(frame, pad);
	buf_reserve(frame, pad);
	memset(frame->data + frame->len, 'z', pad);
	frame->len += pad;
	assert_int_equal(frame->len, total);
}

static void
test_frame_size(void **state)
{
	struct wire_arena *a = wire_arena_new();
	struct buf frame;
	char err[256];
	uint8_t byte = 0x0a;
	Vantage__AgentMsg *m;

	buf_init(&frame);
	assert_null(wire_decode_agent(a, &byte, 0, NOW_US, err, sizeof(err)));
	assert_string_equal(err, "empty frame");
	assert_null(wire_decode_agg(a, &byte, 0, err, sizeof(err)));
	assert_string_equal(err, "empty frame");

	padded_hello(&frame, WIRE_MAX_MSG);
	m = wire_decode_agent(a, frame.data, frame.len, NOW_US, err, sizeof(err));
	assert_non_null(m);
	assert_string_equal(m->hello->name, "agent-eu.1");

	padded_hello(&frame, WIRE_MAX_MSG + 1);
	assert_null(wire_decode_agent(a, frame.data, frame.len, NOW_US, err, sizeof(err)));
	assert_string_equal(err, "frame of 1048577 bytes exceeds 1048576");
	assert_null(wire_decode_agg(a, frame.data, frame.len, err, sizeof(err)));
	assert_string_equal(err, "frame of 1048577 bytes exceeds 1048576");
	buf_free(&frame);
	wire_arena_free(a);
}

// The encoder refuses what the decoder would refuse for size, and leaves
// nothing half-written in out.
static void
test_encode_too_big(void **state)
{
	struct agent_fix *f = xmalloc(sizeof(*f));
	struct buf frame;

	buf_init(&frame);
	agent_fix_init(f, VANTAGE__AGENT_MSG__MSG_BATCH);
	agent_fix_many(f, WIRE_MAX_RESULTS);
	for (size_t i = 0; i < WIRE_MAX_RESULTS; i++)
		f->many[i].error = repeat(f->text, "e", 200);
	assert_int_equal(wire_encode_agent(&f->msg, &frame), -1);
	assert_int_equal(frame.len, 0);
	assert_true(protobuf_c_message_get_packed_size(&f->msg.base) > WIRE_MAX_MSG);
	buf_free(&frame);
	agent_fix_free(f);
	free(f);
}

// A small deterministic generator (xorshift64*), so that each seed always
// produces the same frames and a failure can be replayed.
static uint64_t
rng_next(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * UINT64_C(2685821657736338717);
}

static void
decode_both(struct wire_arena *a, const uint8_t *data, size_t len)
{
	char err[256];
	Vantage__AgentMsg *am;
	Vantage__AggMsg *gm;

	err[0] = '\0';
	am = wire_decode_agent(a, data, len, NOW_US, err, sizeof(err));
	if (am == NULL)
		assert_true(err[0] != '\0');
	else
		assert_int_equal(wire_check_agent(am, NOW_US, err, sizeof(err)), 0);
	err[0] = '\0';
	gm = wire_decode_agg(a, data, len, err, sizeof(err));
	if (gm == NULL)
		assert_true(err[0] != '\0');
	else
		assert_int_equal(wire_check_agg(gm, err, sizeof(err)), 0);
}

static void
test_garbage(void **state)
{
	static const uint64_t seeds[] = { 1, 2, 42, 0xdeadbeef, 0x9e3779b97f4a7c15ULL };
	struct wire_arena *a = wire_arena_new();
	uint8_t data[4096];

	for (size_t s = 0; s < sizeof(seeds) / sizeof(seeds[0]); s++) {
		uint64_t rng = seeds[s];

		for (int round = 0; round < 400; round++) {
			size_t len = 1 + rng_next(&rng) % sizeof(data);

			for (size_t i = 0; i < len; i++)
				data[i] = (uint8_t)(rng_next(&rng) >> 56);
			decode_both(a, data, len);
		}
	}
	wire_arena_free(a);
}

// Random byte changes in a valid batch reach deeper than random frames:
// the outer fields parse and the damage lands in nested ones.
static void
test_mutated(void **state)
{
	struct wire_arena *a = wire_arena_new();
	struct agent_fix f;
	struct buf frame;
	uint64_t rng = 7;
	uint8_t *copy;

	buf_init(&frame);
	agent_fix_init(&f, VANTAGE__AGENT_MSG__MSG_BATCH);
	assert_int_equal(wire_encode_agent(&f.msg, &frame), 0);
	copy = xmalloc(frame.len);
	for (int round = 0; round < 3000; round++) {
		int changes = 1 + (int)(rng_next(&rng) % 4);

		memcpy(copy, frame.data, frame.len);
		for (int c = 0; c < changes; c++)
			copy[rng_next(&rng) % frame.len] = (uint8_t)(rng_next(&rng) >> 56);
		decode_both(a, copy, frame.len);
	}
	free(copy);
	buf_free(&frame);
	wire_arena_free(a);
}

// Every message is one length-delimited field of AgentMsg or AggMsg that
// spans the whole frame, so every strict prefix is malformed and must be
// refused; the complete frame must still decode.
static void
assert_prefixes_refused(struct wire_arena *a, const struct buf *frame, int agent)
{
	char err[256];

	for (size_t len = 0; len < frame->len; len++) {
		// A private copy of exactly len bytes, so valgrind sees any
		// read past the end.
		uint8_t *copy = xmalloc(len ? len : 1);
		const void *m;

		memcpy(copy, frame->data, len);
		err[0] = '\0';
		if (agent)
			m = wire_decode_agent(a, copy, len, NOW_US, err, sizeof(err));
		else
			m = wire_decode_agg(a, copy, len, err, sizeof(err));
		if (m != NULL)
			fail_msg("prefix of %zu of %zu bytes accepted", len, frame->len);
		assert_true(err[0] != '\0');
		free(copy);
	}
	if (agent)
		assert_non_null(
		    wire_decode_agent(a, frame->data, frame->len, NOW_US, err, sizeof(err)));
	else
		assert_non_null(wire_decode_agg(a, frame->data, frame->len, err, sizeof(err)));
}

static void
test_truncated(void **state)
{
	static const Vantage__AgentMsg__MsgCase agent_bodies[] = { HELLO, BATCH, HEARTBEAT };
	static const Vantage__AggMsg__MsgCase agg_bodies[] = { WELCOME, ACK, CONFIG, PROBE_NOW };
	struct wire_arena *a = wire_arena_new();
	struct agent_fix af;
	struct agg_fix gf;
	struct buf frame;

	buf_init(&frame);
	for (size_t i = 0; i < 3; i++) {
		agent_fix_init(&af, agent_bodies[i]);
		assert_int_equal(wire_encode_agent(&af.msg, &frame), 0);
		assert_prefixes_refused(a, &frame, 1);
	}
	for (size_t i = 0; i < 4; i++) {
		agg_fix_init(&gf, agg_bodies[i]);
		assert_int_equal(wire_encode_agg(&gf.msg, &frame), 0);
		assert_prefixes_refused(a, &frame, 0);
	}
	buf_free(&frame);
	wire_arena_free(a);
}

// A batch of n empty Result submessages: two bytes each on the wire, but
// each unpacks to a whole Vantage__Result.
static void
empty_results_frame(struct buf *frame, size_t n)
{
	buf_reset(frame);
	put_varint(frame, (2 << 3) | 2); // AgentMsg.batch
	put_varint(frame, 2 * n);
	for (size_t i = 0; i < n; i++) {
		buf_putc(frame, (2 << 3) | 2); // ResultBatch.results
		buf_putc(frame, 0);
	}
}

static void
test_arena_cap(void **state)
{
	struct wire_arena *a = wire_arena_new();
	struct buf frame;
	char err[256];

	buf_init(&frame);
	// Control: a thousand empty results unpack fine and fail validation,
	// so the refusal below is the arena's doing, not the parser's.
	empty_results_frame(&frame, 1000);
	assert_null(wire_decode_agent(a, frame.data, frame.len, NOW_US, err, sizeof(err)));
	assert_string_equal(err, "batch epoch is 0");

	empty_results_frame(&frame, 500000);
	assert_true(frame.len <= WIRE_MAX_MSG);
	assert_true(500000 * sizeof(Vantage__Result) > WIRE_ARENA_MAX);
	assert_null(wire_decode_agent(a, frame.data, frame.len, NOW_US, err, sizeof(err)));
	assert_string_equal(err, "malformed protobuf (or over 16777216 bytes unpacked)");

	// The arena is usable again afterwards.
	empty_results_frame(&frame, 10);
	assert_null(wire_decode_agent(a, frame.data, frame.len, NOW_US, err, sizeof(err)));
	assert_string_equal(err, "batch epoch is 0");
	buf_free(&frame);
	wire_arena_free(a);
}

// "OUTCOME_AGENT_ERROR" -> "agent_error": the names the API uses are the
// enum names without their prefix, so the tables in wire.c are checked
// against the schema itself and cannot fall behind a new value.
static void
assert_names_follow_enum(const ProtobufCEnumDescriptor *d, const char *prefix,
    const char *(*name)(int))
{
	size_t plen = strlen(prefix);

	for (unsigned i = 0; i < d->n_values; i++) {
		const char *full = d->values[i].name;
		char want[64];
		size_t j;

		assert_memory_equal(full, prefix, plen);
		for (j = 0; full[plen + j] != '\0' && j + 1 < sizeof(want); j++) {
			char c = full[plen + j];

			want[j] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
		}
		want[j] = '\0';
		assert_string_equal(name(d->values[i].value), want);
	}
	assert_string_equal(name((int)d->n_values), "unknown");
	assert_string_equal(name(-1), "unknown");
	assert_string_equal(name(INT_MAX), "unknown");
	assert_string_equal(name(INT_MIN), "unknown");
}

static void
test_names(void **state)
{
	assert_names_follow_enum(&vantage__outcome__descriptor, "OUTCOME_", wire_outcome_name);
	assert_names_follow_enum(&vantage__reason__descriptor, "REASON_", wire_reason_name);
	assert_names_follow_enum(&vantage__trigger__descriptor, "TRIGGER_", wire_trigger_name);
	assert_string_equal(wire_outcome_name(VANTAGE__OUTCOME__OUTCOME_AGENT_ERROR),
	    "agent_error");
	assert_string_equal(wire_outcome_name(0), "unspecified");
	assert_string_equal(wire_reason_name(VANTAGE__REASON__REASON_HTTP_STATUS), "http_status");
	assert_string_equal(wire_reason_name(13), "internal");
	assert_string_equal(wire_reason_name(14), "unknown");
	assert_string_equal(wire_trigger_name(2), "probe_now");
	assert_string_equal(wire_trigger_name(3), "unknown");
}

// Found by fuzz_wire: a stretched-out tag of field number 0 ("80 00") after
// a valid message was accepted by protobuf-c and re-encoded as an invalid
// "00".  Field number 0 is never valid: the whole frame must be refused.
static void
test_field_number_zero(void **state)
{
	static const uint8_t agent[] = { 0x0a, 0x08, 0x0a, 0x01, 0x61, 0x12, 0x01, 0x72, 0x20, 0x01,
		0x80, 0x00, 0x00 };
	static const uint8_t agg[] = { 0x0a, 0x02, 0x10, 0x01, 0x80, 0x00, 0x00 };
	struct wire_arena *a = wire_arena_new();
	char err[256];

	assert_null(wire_decode_agent(a, agent, sizeof(agent), 0, err, sizeof(err)));
	assert_non_null(strstr(err, "malformed"));
	assert_null(wire_decode_agg(a, agg, sizeof(agg), err, sizeof(err)));
	// The same messages without the bad tail decode.
	assert_non_null(wire_decode_agent(a, agent, sizeof(agent) - 3, 0, err, sizeof(err)));
	assert_non_null(wire_decode_agg(a, agg, sizeof(agg) - 3, err, sizeof(err)));
	wire_arena_free(a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip_hello),
		cmocka_unit_test(test_roundtrip_batch),
		cmocka_unit_test(test_roundtrip_heartbeat),
		cmocka_unit_test(test_roundtrip_welcome_ack),
		cmocka_unit_test(test_roundtrip_config),
		cmocka_unit_test(test_roundtrip_probe_now),
		cmocka_unit_test(test_arena_reuse),
		cmocka_unit_test(test_agent_rejects),
		cmocka_unit_test(test_agent_accepts),
		cmocka_unit_test(test_check_result_alone),
		cmocka_unit_test(test_agg_rejects),
		cmocka_unit_test(test_agg_accepts),
		cmocka_unit_test(test_no_body),
		cmocka_unit_test(test_frame_size),
		cmocka_unit_test(test_encode_too_big),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_mutated),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_arena_cap),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_field_number_zero),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
