// SPDX-License-Identifier: Apache-2.0
//
// zsend: a hostile ZeroMQ peer for tests.  Connects a DEALER to an
// aggregator endpoint and sends frames that no real agent sends: random
// bytes, truncated or oversized protobuf, wrong frame counts, valid
// messages with out-of-range fields, results before any Hello.  It checks
// nothing itself; the test checks that the aggregator counted and dropped
// them and kept serving.
//
//   zsend ENDPOINT MODE [COUNT]
//   MODE: random | truncated | oversized | frames | invalid | nohello | all
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zmq.h>

#include "buf.h"
#include "clock.h"
#include "wire.h"

static void
zsend_frame(void *sock, const void *data, size_t len, int more)
{
	if (zmq_send(sock, data, len, more ? ZMQ_SNDMORE : 0) < 0)
		fprintf(stderr, "zsend: send failed: %s\n", zmq_strerror(zmq_errno()));
}

// A valid Hello+Batch encoding to mutilate.
static void
zsend_valid_batch(struct buf *out, uint64_t seq, uint32_t http_status, int64_t started)
{
	Vantage__AgentMsg m = VANTAGE__AGENT_MSG__INIT;
	Vantage__ResultBatch b = VANTAGE__RESULT_BATCH__INIT;
	Vantage__Result r = VANTAGE__RESULT__INIT, *rp = &r;

	r.seq = seq;
	r.target = (char *)"t01";
	r.started_at = started;
	r.scheduled_at = started;
	r.outcome = VANTAGE__OUTCOME__OUTCOME_UP;
	r.http_status = http_status;
	r.total_us = 1000;
	b.epoch = 42;
	b.n_results = 1;
	b.results = &rp;
	m.msg_case = VANTAGE__AGENT_MSG__MSG_BATCH;
	m.batch = &b;
	wire_encode_agent(&m, out);
}

int
main(int argc, char **argv)
{
	void *ctx, *sock;
	const char *mode;
	int count, linger = 2000;
	struct buf msg;
	unsigned seed = 12345;

	if (argc < 3) {
		fprintf(stderr, "usage: zsend ENDPOINT random|truncated|oversized|frames|invalid|nohello|all [COUNT]\n");
		return 2;
	}
	mode = argv[2];
	count = argc > 3 ? (int)strtol(argv[3], NULL, 10) : 10;
	ctx = zmq_ctx_new();
	sock = zmq_socket(ctx, ZMQ_DEALER);
	zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof(linger));
	if (zmq_connect(sock, argv[1]) < 0) {
		fprintf(stderr, "zsend: cannot connect to %s: %s\n", argv[1], zmq_strerror(zmq_errno()));
		return 1;
	}
	buf_init(&msg);
	for (int i = 0; i < count; i++) {
		bool all = strcmp(mode, "all") == 0;

		if (all || strcmp(mode, "random") == 0) {
			uint8_t junk[512];
			size_t len = 1 + (size_t)(rand_r(&seed) % sizeof(junk));

			for (size_t k = 0; k < len; k++)
				junk[k] = (uint8_t)rand_r(&seed);
			zsend_frame(sock, junk, len, 0);
		}
		if (all || strcmp(mode, "truncated") == 0) {
			zsend_valid_batch(&msg, 1, 200, clock_wall_us());
			zsend_frame(sock, msg.data, msg.len / 2, 0);
		}
		if (all || strcmp(mode, "frames") == 0) {
			zsend_frame(sock, "a", 1, 1);
			zsend_frame(sock, "b", 1, 0);
			zsend_frame(sock, "", 0, 0);
		}
		if (all || strcmp(mode, "invalid") == 0) {
			zsend_valid_batch(&msg, 1, 42, clock_wall_us());   // bad status
			zsend_frame(sock, msg.data, msg.len, 0);
			zsend_valid_batch(&msg, 0, 200, clock_wall_us());  // seq 0
			zsend_frame(sock, msg.data, msg.len, 0);
			zsend_valid_batch(&msg, 1, 200, 1000000);          // 1970
			zsend_frame(sock, msg.data, msg.len, 0);
		}
		if (all || strcmp(mode, "nohello") == 0) {
			zsend_valid_batch(&msg, (uint64_t)i + 1, 200, clock_wall_us());
			zsend_frame(sock, msg.data, msg.len, 0);
		}
	}
	// Last: a frame over the aggregator's ZMQ_MAXMSGSIZE makes it drop the
	// connection, so it goes after everything else.
	if (strcmp(mode, "oversized") == 0 || strcmp(mode, "all") == 0) {
		size_t big = 2 * 1024 * 1024;
		char *huge = calloc(1, big);

		zsend_frame(sock, huge, big, 0);
		free(huge);
	}
	buf_free(&msg);
	zmq_close(sock);
	zmq_ctx_term(ctx);
	return 0;
}
