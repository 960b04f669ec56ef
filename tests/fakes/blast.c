// SPDX-License-Identifier: Apache-2.0
//
// blast: a load generator that speaks the agent protocol as fast as the
// aggregator acknowledges.  Each of N simulated agents says Hello, waits for
// its Welcome, then keeps WINDOW batches of BATCH results in flight for
// SECONDS, resending nothing (the aggregator is expected to ack everything).
// Prints the results acknowledged per second: acknowledged means committed
// to PostgreSQL, so this is the aggregator's end-to-end ingest rate.
//
//   blast ENDPOINT REGION [AGENTS [SECONDS [BATCH [WINDOW]]]]
//
// With BLAST_KEYS_DIR set, it speaks CurveZMQ: agent blast-N uses
// DIR/blast-N.key and the aggregator's DIR/aggregator.pub (made with
// vantagectl keys new), so the bench measures encryption's cost.
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "buf.h"
#include "clock.h"
#include "curvekey.h"
#include "wire.h"
#include "xmalloc.h"

struct sim {
	void *sock;
	char name[32];
	uint64_t epoch;
	uint64_t next_seq;
	uint64_t acked;
	bool welcomed;
};

static void
blast_send(void *sock, const Vantage__AgentMsg *m, struct buf *enc)
{
	wire_encode_agent(m, enc);
	zmq_send(sock, enc->data, enc->len, 0);
}

static void
blast_batch(struct sim *s, size_t batch, struct buf *enc, Vantage__Result *rs,
    Vantage__Result **ptrs)
{
	Vantage__AgentMsg m = VANTAGE__AGENT_MSG__INIT;
	Vantage__ResultBatch b = VANTAGE__RESULT_BATCH__INIT;
	int64_t now = clock_wall_us();

	for (size_t i = 0; i < batch; i++) {
		rs[i].seq = s->next_seq++;
		rs[i].started_at = now - 1000;
		rs[i].scheduled_at = now - 1500;
	}
	b.epoch = s->epoch;
	b.n_results = batch;
	b.results = ptrs;
	m.msg_case = VANTAGE__AGENT_MSG__MSG_BATCH;
	m.batch = &b;
	blast_send(s->sock, &m, enc);
}

static int
blast_curve(void *sock, const char *dir, const char *name)
{
	struct curvekey secret, pub, server;
	char path[4096], err[4200];

	snprintf(path, sizeof(path), "%s/aggregator.pub", dir);
	if (curvekey_read_public(path, &server, err, sizeof(err)) < 0)
		goto fail;
	snprintf(path, sizeof(path), "%s/%s.key", dir, name);
	if (curvekey_read_secret(path, &secret, &pub, err, sizeof(err)) < 0)
		goto fail;
	zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, server.z85, CURVEKEY_Z85_LEN);
	zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, pub.z85, CURVEKEY_Z85_LEN);
	zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, secret.z85, CURVEKEY_Z85_LEN);
	return 0;
fail:
	fprintf(stderr, "blast: %s\n", err);
	return -1;
}

int
main(int argc, char **argv)
{
	const char *endpoint, *region, *keys_dir = getenv("BLAST_KEYS_DIR");
	int agents, seconds, window;
	size_t batch;
	struct sim *sims;
	struct buf enc;
	struct wire_arena *arena = wire_arena_new();
	Vantage__Result *rs;
	Vantage__Result **ptrs;
	void *ctx = zmq_ctx_new();
	char key[8][8];
	int64_t start, deadline;
	uint64_t total = 0;

	if (argc < 3) {
		fprintf(stderr,
		    "usage: blast ENDPOINT REGION [AGENTS [SECONDS [BATCH [WINDOW]]]]\n");
		return 2;
	}
	endpoint = argv[1];
	region = argv[2];
	agents = argc > 3 ? (int)strtol(argv[3], NULL, 10) : 4;
	seconds = argc > 4 ? (int)strtol(argv[4], NULL, 10) : 10;
	batch = argc > 5 ? (size_t)strtoul(argv[5], NULL, 10) : 1000;
	window = argc > 6 ? (int)strtol(argv[6], NULL, 10) : 4;
	if (agents < 1 || agents > 64 || batch < 1 || batch > WIRE_MAX_RESULTS || window < 1)
		return 2;
	buf_init(&enc);
	rs = xcalloc(batch, sizeof(*rs));
	ptrs = xcalloc(batch, sizeof(*ptrs));
	for (int k = 0; k < 8; k++)
		snprintf(key[k], sizeof(key[k]), "t0%d", k + 1);
	for (size_t i = 0; i < batch; i++) {
		Vantage__Result init = VANTAGE__RESULT__INIT;

		rs[i] = init;
		rs[i].target = key[i % 8];
		rs[i].outcome = VANTAGE__OUTCOME__OUTCOME_UP;
		rs[i].http_status = 200;
		rs[i].dns_us = 10;
		rs[i].connect_us = 80;
		rs[i].ttfb_us = 300;
		rs[i].total_us = 450;
		rs[i].bytes = 2;
		rs[i].peer = (char *)"127.0.0.1";
		rs[i].error = (char *)"";
		ptrs[i] = &rs[i];
	}
	sims = xcalloc((size_t)agents, sizeof(*sims));
	for (int a = 0; a < agents; a++) {
		Vantage__AgentMsg m = VANTAGE__AGENT_MSG__INIT;
		Vantage__Hello h = VANTAGE__HELLO__INIT;
		int linger = 0;

		sims[a].sock = zmq_socket(ctx, ZMQ_DEALER);
		zmq_setsockopt(sims[a].sock, ZMQ_LINGER, &linger, sizeof(linger));
		snprintf(sims[a].name, sizeof(sims[a].name), "blast-%d", a + 1);
		if (keys_dir != NULL && blast_curve(sims[a].sock, keys_dir, sims[a].name) < 0)
			return 1;
		zmq_connect(sims[a].sock, endpoint);
		sims[a].epoch = (uint64_t)clock_wall_us() * 64 + (uint64_t)a;
		sims[a].next_seq = 1;
		h.name = sims[a].name;
		h.region = (char *)region;
		h.version = (char *)"blast";
		h.epoch = sims[a].epoch;
		m.msg_case = VANTAGE__AGENT_MSG__MSG_HELLO;
		m.hello = &h;
		blast_send(sims[a].sock, &m, &enc);
	}
	start = clock_mono_us();
	deadline = start + (int64_t)seconds * 1000000;
	while (clock_mono_us() < deadline) {
		zmq_pollitem_t items[64];

		for (int a = 0; a < agents; a++) {
			struct sim *s = &sims[a];

			items[a] = (zmq_pollitem_t){ s->sock, 0, ZMQ_POLLIN, 0 };
			while (s->welcomed && s->next_seq - 1 - s->acked < (uint64_t)window * batch)
				blast_batch(s, batch, &enc, rs, ptrs);
		}
		if (zmq_poll(items, agents, 100) <= 0)
			continue;
		for (int a = 0; a < agents; a++) {
			zmq_msg_t msg;
			Vantage__AggMsg *m;
			char err[128];

			if (!(items[a].revents & ZMQ_POLLIN))
				continue;
			zmq_msg_init(&msg);
			while (zmq_msg_recv(&msg, sims[a].sock, ZMQ_DONTWAIT) >= 0) {
				m = wire_decode_agg(arena, zmq_msg_data(&msg), zmq_msg_size(&msg),
				    err, sizeof(err));
				if (m != NULL && m->msg_case == VANTAGE__AGG_MSG__MSG_WELCOME) {
					sims[a].welcomed = true;
					sims[a].acked = m->welcome->acked_seq;
				} else if (m != NULL && m->msg_case == VANTAGE__AGG_MSG__MSG_ACK) {
					sims[a].acked = m->ack->acked_seq;
				}
			}
			zmq_msg_close(&msg);
		}
	}
	for (int a = 0; a < agents; a++) {
		total += sims[a].acked;
		printf("agent %s acked %llu\n", sims[a].name, (unsigned long long)sims[a].acked);
		zmq_close(sims[a].sock);
	}
	printf("acked %llu results in %d s: %.0f results/s\n", (unsigned long long)total, seconds,
	    (double)total / seconds);
	zmq_ctx_term(ctx);
	wire_arena_free(arena);
	buf_free(&enc);
	free(rs);
	free(ptrs);
	free(sims);
	return 0;
}
