// SPDX-License-Identifier: Apache-2.0
//
// Unit tests for agent/probe's kind table and dispatch, with a fake prober
// registered for TCP in a table of the test's own: the prober is made on
// first use and once, with the source address; start, cancel and fill
// reach it with the target and result they belong to; a finished probe is
// filled before it is reported; a prober that cannot start and a kind
// without a prober end as AGENT_ERROR without a report; free frees the
// prober.  The agent's own table has HTTP only (TCP, DNS and ICMP are
// accepted but not probed), and the target schedule (probe_new) reports a
// probe of such a kind at once as not supported, through the same table.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/event.h>

#include "probe.h"
#include "probe_http.h"

#define TCP VANTAGE__PROBE_KIND__PROBE_KIND_TCP
#define HTTP VANTAGE__PROBE_KIND__PROBE_KIND_HTTP
#define DNS VANTAGE__PROBE_KIND__PROBE_KIND_DNS
#define ICMP VANTAGE__PROBE_KIND__PROBE_KIND_ICMP

// What the fake prober saw, in order.
struct fake {
	int news, frees, starts, cancels, fills, dones;
	char source_ip[64];
	probe_finished_cb finished;
	void *finished_arg;
	const struct probe_target *started_target;
	struct probe_result *started_result;
	struct probe_result *cancelled;
	void *filled_job;
	int fill_rank, done_rank, rank;
	int done_outcome; // outcome the report saw
	int fail_start;   // start returns -1
};

static struct fake fake;
static int fake_job; // the job handle the fake hands out

static void *
fake_new(struct event_base *base, const char *source_ip, probe_finished_cb finished, void *arg)
{
	fake.news++;
	snprintf(fake.source_ip, sizeof(fake.source_ip), "%s", source_ip ? source_ip : "");
	fake.finished = finished;
	fake.finished_arg = arg;
	return &fake;
}

static void
fake_free(void *prober)
{
	assert_ptr_equal(prober, &fake);
	fake.frees++;
}

static int
fake_start(void *prober, const struct probe_target *t, struct probe_result *r)
{
	assert_ptr_equal(prober, &fake);
	fake.starts++;
	fake.started_target = t;
	fake.started_result = r;
	if (fake.fail_start) {
		r->outcome = VANTAGE__OUTCOME__OUTCOME_AGENT_ERROR;
		r->reason = VANTAGE__REASON__REASON_INTERNAL;
		snprintf(r->error, sizeof(r->error), "fake could not start");
		return -1;
	}
	return 0;
}

static void
fake_cancel(void *prober, struct probe_result *r)
{
	assert_ptr_equal(prober, &fake);
	fake.cancels++;
	fake.cancelled = r;
}

static void
fake_fill(void *prober, void *job, struct probe_result *r)
{
	assert_ptr_equal(prober, &fake);
	fake.fills++;
	fake.filled_job = job;
	fake.fill_rank = ++fake.rank;
	r->outcome = VANTAGE__OUTCOME__OUTCOME_UP;
	r->total_us = 1234;
}

static void
fake_spec_copy(struct probe_target *t, const Vantage__Target *src)
{
}

static void
fake_spec_clear(struct probe_target *t)
{
}

static const struct probe_ops fake_ops = {
	.name = "fake-tcp",
	.spec_copy = fake_spec_copy,
	.spec_clear = fake_spec_clear,
	.new = fake_new,
	.free = fake_free,
	.start = fake_start,
	.cancel = fake_cancel,
	.fill = fake_fill,
};

static const struct probe_ops *const fake_table[] = { [TCP] = &fake_ops };

static void
on_done(struct probe_result *r, void *arg)
{
	assert_ptr_equal(arg, &fake);
	fake.dones++;
	fake.done_rank = ++fake.rank;
	fake.done_outcome = r->outcome;
}

static int
setup(void **state)
{
	memset(&fake, 0, sizeof(fake));
	*state = event_base_new();
	return *state == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	event_base_free(*state);
	return 0;
}

static struct probe_target
target(const char *key, int kind)
{
	struct probe_target t;

	memset(&t, 0, sizeof(t));
	t.key = (char *)key;
	t.kind = kind;
	return t;
}

// The fake prober is made on the first probe of its kind, once, and a
// finished probe is filled (by the prober, with its job) before the
// dispatch reports it.
static void
test_dispatch_start_fill_done(void **state)
{
	struct probe_dispatch *d = probe_dispatch_new(*state, "192.0.2.7", fake_table, 3, on_done,
	    &fake);
	struct probe_target t = target("db", TCP);
	struct probe_result r, r2;

	memset(&r, 0, sizeof(r));
	memset(&r2, 0, sizeof(r2));
	r.target = r2.target = &t;
	assert_true(probe_dispatch_supports(d, TCP));
	assert_false(probe_dispatch_supports(d, HTTP)); // not in this table
	assert_int_equal(fake.news, 0);                 // made on first use

	assert_int_equal(probe_dispatch_start(d, &t, &r), 0);
	assert_int_equal(fake.news, 1);
	assert_string_equal(fake.source_ip, "192.0.2.7");
	assert_int_equal(fake.starts, 1);
	assert_ptr_equal(fake.started_target, &t);
	assert_ptr_equal(fake.started_result, &r);
	assert_int_equal(fake.dones, 0); // nothing reported from inside start

	assert_int_equal(probe_dispatch_start(d, &t, &r2), 0);
	assert_int_equal(fake.news, 1); // one instance per kind
	assert_int_equal(fake.starts, 2);

	// The prober says the first probe ended: fill, then the report.
	fake.finished(&r, &fake_job, fake.finished_arg);
	assert_int_equal(fake.fills, 1);
	assert_ptr_equal(fake.filled_job, &fake_job);
	assert_int_equal(fake.dones, 1);
	assert_true(fake.fill_rank < fake.done_rank);
	assert_int_equal(fake.done_outcome, VANTAGE__OUTCOME__OUTCOME_UP);
	assert_int_equal(r.total_us, 1234);

	// The second is abandoned: the prober is told which one.
	probe_dispatch_cancel(d, &r2);
	assert_int_equal(fake.cancels, 1);
	assert_ptr_equal(fake.cancelled, &r2);
	assert_int_equal(fake.dones, 1);

	probe_dispatch_free(d);
	assert_int_equal(fake.frees, 1);
}

// A prober that cannot start fills the result; the dispatch passes its -1
// on and reports nothing.
static void
test_dispatch_start_fails(void **state)
{
	struct probe_dispatch *d = probe_dispatch_new(*state, NULL, fake_table, 3, on_done, &fake);
	struct probe_target t = target("db", TCP);
	struct probe_result r;

	memset(&r, 0, sizeof(r));
	r.target = &t;
	fake.fail_start = 1;
	assert_int_equal(probe_dispatch_start(d, &t, &r), -1);
	assert_int_equal(r.outcome, VANTAGE__OUTCOME__OUTCOME_AGENT_ERROR);
	assert_string_equal(r.error, "fake could not start");
	assert_int_equal(fake.dones, 0);
	assert_int_equal(fake.fills, 0);
	probe_dispatch_free(d);
	assert_int_equal(fake.frees, 1);
}

// A kind without a prober (here DNS, and kinds past the table's end) is
// refused as AGENT_ERROR; no prober is made, nothing is reported, and
// cancelling such a result is harmless.
static void
test_dispatch_unimplemented_kind(void **state)
{
	struct probe_dispatch *d = probe_dispatch_new(*state, NULL, fake_table, 3, on_done, &fake);
	struct probe_target t = target("resolver", DNS);
	struct probe_target far = target("odd", 99);
	struct probe_result r;

	memset(&r, 0, sizeof(r));
	r.target = &t;
	assert_false(probe_dispatch_supports(d, DNS));
	assert_false(probe_dispatch_supports(d, 99));
	assert_false(probe_dispatch_supports(d, -1));
	assert_int_equal(probe_dispatch_start(d, &t, &r), -1);
	assert_int_equal(r.outcome, VANTAGE__OUTCOME__OUTCOME_AGENT_ERROR);
	assert_int_equal(r.reason, VANTAGE__REASON__REASON_INTERNAL);
	assert_string_equal(r.error, "probe kind 3 not supported");
	probe_dispatch_cancel(d, &r);
	memset(&r, 0, sizeof(r));
	r.target = &far;
	assert_int_equal(probe_dispatch_start(d, &far, &r), -1);
	assert_string_equal(r.error, "probe kind 99 not supported");
	assert_int_equal(fake.news, 0);
	assert_int_equal(fake.starts, 0);
	assert_int_equal(fake.cancels, 0);
	assert_int_equal(fake.dones, 0);
	probe_dispatch_free(d);
	assert_int_equal(fake.frees, 0); // never made
}

// The agent's own table: HTTP has a prober; TCP, DNS and ICMP are accepted
// in a Config but not probed.
static void
test_agent_table(void **state)
{
	struct probe_dispatch *d = probe_dispatch_new(*state, NULL, NULL, 0, on_done, &fake);

	assert_ptr_equal(probe_ops_find(HTTP), &probe_http_ops);
	assert_string_equal(probe_ops_find(HTTP)->name, "http");
	assert_null(probe_ops_find(VANTAGE__PROBE_KIND__PROBE_KIND_UNSPECIFIED));
	assert_null(probe_ops_find(TCP));
	assert_null(probe_ops_find(DNS));
	assert_null(probe_ops_find(ICMP));
	assert_null(probe_ops_find(-1));
	assert_null(probe_ops_find(1000));
	assert_true(probe_dispatch_supports(d, HTTP));
	assert_false(probe_dispatch_supports(d, TCP));
	probe_dispatch_free(d);
}

// The HTTP spec is copied by HTTP's ops; a target of a kind without a
// prober gets none (and clearing either frees what it has).
static void
test_target_copy_spec(void **state)
{
	Vantage__HttpSpec http = VANTAGE__HTTP_SPEC__INIT;
	Vantage__Target src = VANTAGE__TARGET__INIT;
	uint32_t expect[2] = { 200, 204 };
	struct probe_target t;

	http.url = "http://127.0.0.1:1/health";
	http.method = "";
	http.n_expect_status = 2;
	http.expect_status = expect;
	http.body_contains = "ok";
	http.max_latency_ms = 1500;
	src.key = "api";
	src.kind = HTTP;
	src.http = &http;
	src.timeout_ms = 2000;
	probe_target_copy(&t, &src);
	assert_string_equal(t.key, "api");
	assert_int_equal(t.timeout_ms, 2000);
	assert_string_equal(t.spec.http.url, "http://127.0.0.1:1/health");
	assert_string_equal(t.spec.http.method, "GET"); // the default
	assert_int_equal(t.spec.http.n_expect, 2);
	assert_int_equal(t.spec.http.expect_status[1], 204);
	assert_string_equal(t.spec.http.body_contains, "ok");
	assert_int_equal(t.spec.http.max_latency_ms, 1500);
	probe_target_clear(&t);
	assert_null(t.key);

	src.kind = TCP;
	probe_target_copy(&t, &src);
	assert_string_equal(t.key, "api");
	assert_null(t.spec.http.url);
	probe_target_clear(&t);
}

struct results {
	int n;
	int outcome, reason, trigger;
	char key[32], error[PROBE_ERROR_MAX + 1];
};

static void
on_result(const struct probe_result *r, void *arg)
{
	struct results *res = arg;

	res->n++;
	res->outcome = r->outcome;
	res->reason = r->reason;
	res->trigger = r->trigger;
	snprintf(res->key, sizeof(res->key), "%s", r->target->key);
	snprintf(res->error, sizeof(res->error), "%s", r->error);
}

// The target schedule goes through the same table: a TCP target is
// reported at once as not supported, with its trigger, and is not left in
// flight.
static void
test_schedule_unimplemented_kind(void **state)
{
	Vantage__Target tcp = VANTAGE__TARGET__INIT;
	Vantage__Target *targets[1] = { &tcp };
	Vantage__Config config = VANTAGE__CONFIG__INIT;
	struct results res;
	const char *keys[1] = { "db-tcp" };
	struct probe *p;

	memset(&res, 0, sizeof(res));
	tcp.key = "db-tcp";
	tcp.kind = TCP;
	tcp.interval_ms = 3600 * 1000; // not due during the test
	tcp.timeout_ms = 1000;
	config.version = 7;
	config.n_targets = 1;
	config.targets = targets;
	p = probe_new(*state, 4, NULL, "agent-1", on_result, &res);
	probe_set_config(p, &config);
	assert_int_equal(probe_target_count(p), 1);
	assert_int_equal(probe_now(p, keys, 1, VANTAGE__TRIGGER__TRIGGER_PROBE_NOW), 1);
	assert_int_equal(res.n, 1);
	assert_string_equal(res.key, "db-tcp");
	assert_int_equal(res.outcome, VANTAGE__OUTCOME__OUTCOME_AGENT_ERROR);
	assert_int_equal(res.reason, VANTAGE__REASON__REASON_INTERNAL);
	assert_int_equal(res.trigger, VANTAGE__TRIGGER__TRIGGER_PROBE_NOW);
	assert_string_equal(res.error, "probe kind 2 not supported");
	assert_int_equal(probe_in_flight(p), 0);
	// Not in flight: a second ProbeNow starts (and ends) again.
	assert_int_equal(probe_now(p, keys, 1, VANTAGE__TRIGGER__TRIGGER_PROBE_NOW), 1);
	assert_int_equal(res.n, 2);
	probe_free(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_dispatch_start_fill_done, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dispatch_start_fails, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dispatch_unimplemented_kind, setup, teardown),
		cmocka_unit_test_setup_teardown(test_agent_table, setup, teardown),
		cmocka_unit_test_setup_teardown(test_target_copy_spec, setup, teardown),
		cmocka_unit_test_setup_teardown(test_schedule_unimplemented_kind, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
