// SPDX-License-Identifier: Apache-2.0
//
// Writes the seed corpus of the wire fuzzer: one valid encoding of every
// agent and aggregator message body, built with the generated protobuf-c
// structs and checked by wire.c itself, so the seeds follow the schema and
// the validation rules as they change instead of going stale as committed
// binaries would.  Run by tests/fuzz/build-fuzzers; writes only into the
// directory it is given.
//
//   seeds_wire DIR
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "fuzz_wire.h"
#include "wire.h"

#define SECOND_US INT64_C(1000000)

static const char *seeds_dir;
static struct wire_arena *seeds_arena;

// Encodes, proves that the receiver accepts it, writes DIR/NAME.
static void
seeds_write(const char *name, const ProtobufCMessage *msg, int agent)
{
	char path[4096], err[512];
	struct buf out;
	const void *back;
	FILE *f;

	buf_init(&out);
	if ((agent ? wire_encode_agent((const Vantage__AgentMsg *)msg, &out) :
		     wire_encode_agg((const Vantage__AggMsg *)msg, &out)) < 0) {
		fprintf(stderr, "seeds_wire: could not encode \"%s\"\n", name);
		exit(1);
	}
	back = agent ?
	    (const void *)wire_decode_agent(seeds_arena, out.data, out.len, FUZZ_WIRE_NOW_US, err,
		sizeof(err)) :
	    (const void *)wire_decode_agg(seeds_arena, out.data, out.len, err, sizeof(err));
	if (back == NULL) {
		fprintf(stderr, "seeds_wire: seed \"%s\" is refused by wire.c: %s\n", name, err);
		exit(1);
	}
	snprintf(path, sizeof(path), "%s/%s", seeds_dir, name);
	f = fopen(path, "wb");
	if (f == NULL || fwrite(out.data, 1, out.len, f) != out.len || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
	buf_free(&out);
}

static void
seeds_agent(void)
{
	Vantage__AgentMsg msg = VANTAGE__AGENT_MSG__INIT;
	Vantage__Hello hello = VANTAGE__HELLO__INIT;
	Vantage__Heartbeat heartbeat = VANTAGE__HEARTBEAT__INIT;
	Vantage__ResultBatch batch = VANTAGE__RESULT_BATCH__INIT;
	Vantage__Result up = VANTAGE__RESULT__INIT, down = VANTAGE__RESULT__INIT,
			failed = VANTAGE__RESULT__INIT;
	Vantage__Result *results[] = { &up, &down, &failed };
	Vantage__Gap gap = VANTAGE__GAP__INIT;
	Vantage__Gap *gaps[] = { &gap };

	hello.name = "fra-1";
	hello.region = "eu-west";
	hello.version = "0.1-fuzz";
	hello.epoch = UINT64_C(0x5eed5eed5eed5eed);
	hello.config_version = 7;
	hello.spool_oldest_seq = 40;
	hello.spool_newest_seq = 1234;
	msg.msg_case = VANTAGE__AGENT_MSG__MSG_HELLO;
	msg.hello = &hello;
	seeds_write("agent-hello", &msg.base, 1);

	up.seq = 41;
	up.target = "api";
	up.config_version = 7;
	up.scheduled_at = FUZZ_WIRE_NOW_US - 30 * SECOND_US;
	up.started_at = up.scheduled_at + 1500;
	up.outcome = VANTAGE__OUTCOME__OUTCOME_UP;
	up.http_status = 200;
	up.dns_us = 800;
	up.connect_us = 2100;
	up.tls_us = 9000;
	up.ttfb_us = 15000;
	up.total_us = 16000;
	up.bytes = 1234;
	up.peer = "[2001:db8::1]:443";
	up.tls_expiry = FUZZ_WIRE_NOW_US / SECOND_US + 86400 * 60;

	down = up;
	down.seq = 42;
	down.outcome = VANTAGE__OUTCOME__OUTCOME_DOWN;
	down.reason = VANTAGE__REASON__REASON_HTTP_STATUS;
	down.http_status = 503;
	down.error = "status 503 not in 200-399";
	down.trigger = VANTAGE__TRIGGER__TRIGGER_RETRY;

	failed.seq = 44;
	failed.target = "db-tcp";
	failed.scheduled_at = FUZZ_WIRE_NOW_US - SECOND_US;
	failed.started_at = failed.scheduled_at;
	failed.outcome = VANTAGE__OUTCOME__OUTCOME_AGENT_ERROR;
	failed.reason = VANTAGE__REASON__REASON_INTERNAL;
	failed.error = "control probes failing:\tagent impaired";
	failed.trigger = VANTAGE__TRIGGER__TRIGGER_PROBE_NOW;
	failed.agent_state = VANTAGE__AGENT_STATE__AGENT_STATE_IMPAIRED;

	gap.first_seq = 43;
	gap.last_seq = 43;
	batch.epoch = hello.epoch;
	batch.n_results = sizeof(results) / sizeof(results[0]);
	batch.results = results;
	batch.n_gaps = 1;
	batch.gaps = gaps;
	msg.msg_case = VANTAGE__AGENT_MSG__MSG_BATCH;
	msg.batch = &batch;
	seeds_write("agent-batch", &msg.base, 1);

	heartbeat.spool_depth = 3;
	heartbeat.spool_bytes = 4096;
	heartbeat.oldest_unacked_age_ms = 1500;
	heartbeat.state = VANTAGE__AGENT_STATE__AGENT_STATE_IMPAIRED;
	heartbeat.state_reason = "2 of 3 controls failing";
	heartbeat.clock_offset_us = -250000;
	heartbeat.produced = 99;
	msg.msg_case = VANTAGE__AGENT_MSG__MSG_HEARTBEAT;
	msg.heartbeat = &heartbeat;
	seeds_write("agent-heartbeat", &msg.base, 1);
}

static void
seeds_agg(void)
{
	Vantage__AggMsg msg = VANTAGE__AGG_MSG__INIT;
	Vantage__Welcome welcome = VANTAGE__WELCOME__INIT;
	Vantage__Ack ack = VANTAGE__ACK__INIT;
	Vantage__Config config = VANTAGE__CONFIG__INIT;
	Vantage__ProbeNow probe_now = VANTAGE__PROBE_NOW__INIT;
	Vantage__HttpSpec api_http = VANTAGE__HTTP_SPEC__INIT,
			  control_http = VANTAGE__HTTP_SPEC__INIT;
	Vantage__Target api = VANTAGE__TARGET__INIT, tcp = VANTAGE__TARGET__INIT,
			control = VANTAGE__TARGET__INIT;
	Vantage__Target *targets[] = { &api, &tcp }, *controls[] = { &control };
	uint32_t expect[] = { 200, 204, 301 };
	char *keys[] = { "api", "db-tcp" };

	welcome.server_time_us = FUZZ_WIRE_NOW_US;
	welcome.epoch = UINT64_C(0x5eed5eed5eed5eed);
	welcome.acked_seq = 40;
	msg.msg_case = VANTAGE__AGG_MSG__MSG_WELCOME;
	msg.welcome = &welcome;
	seeds_write("agg-welcome", &msg.base, 0);

	ack.epoch = welcome.epoch;
	ack.acked_seq = 44;
	msg.msg_case = VANTAGE__AGG_MSG__MSG_ACK;
	msg.ack = &ack;
	seeds_write("agg-ack", &msg.base, 0);

	api_http.url = "https://api.example.com/health";
	api_http.method = "GET";
	api_http.n_expect_status = sizeof(expect) / sizeof(expect[0]);
	api_http.expect_status = expect;
	api_http.body_contains = "ok";
	api_http.max_latency_ms = 2000;
	api_http.follow_redirects = 1;
	api_http.tls_min_days = 14;
	api.key = "api";
	api.kind = VANTAGE__PROBE_KIND__PROBE_KIND_HTTP;
	api.interval_ms = 15000;
	api.timeout_ms = 10000;
	api.confirm = 2;
	api.retry_interval_ms = 1000;
	api.http = &api_http;
	tcp = api;
	tcp.key = "db-tcp";
	tcp.kind = VANTAGE__PROBE_KIND__PROBE_KIND_TCP;
	tcp.http = NULL;
	control_http.url = "https://control-1.example/";
	control_http.method = "HEAD";
	control = api;
	control.key = "control-1";
	control.http = &control_http;
	config.version = 7;
	config.n_targets = sizeof(targets) / sizeof(targets[0]);
	config.targets = targets;
	config.n_controls = 1;
	config.controls = controls;
	msg.msg_case = VANTAGE__AGG_MSG__MSG_CONFIG;
	msg.config = &config;
	seeds_write("agg-config", &msg.base, 0);

	probe_now.n_targets = sizeof(keys) / sizeof(keys[0]);
	probe_now.targets = keys;
	msg.msg_case = VANTAGE__AGG_MSG__MSG_PROBE_NOW;
	msg.probe_now = &probe_now;
	seeds_write("agg-probe-now", &msg.base, 0);
}

int
main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: seeds_wire DIR\n");
		return 2;
	}
	seeds_dir = argv[1];
	seeds_arena = wire_arena_new();
	seeds_agent();
	seeds_agg();
	wire_arena_free(seeds_arena);
	return 0;
}
