// SPDX-License-Identifier: Apache-2.0
//
// zsend: a hostile ZeroMQ peer for tests.  Connects a DEALER to an
// aggregator endpoint and sends frames that no real agent sends: random
// bytes, truncated or oversized protobuf, wrong frame counts, messages of
// thousands of frames, valid messages with out-of-range fields or strings
// near the frame limit, results before any Hello, and one frame of 100 MB.
// It checks nothing about the aggregator itself, with one exception: in
// mode "huge" it exits 0 only if the aggregator drops the connection after
// the 100 MB frame (ZMQ_MAXMSGSIZE), which only this side can see.  The
// test checks that the aggregator counted and dropped the rest and kept
// serving.
//
//   zsend ENDPOINT MODE [COUNT]
//   MODE: random | truncated | oversized | frames | manyframes | invalid |
//         hugestrings | nohello | huge | all
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zmq.h>

#include "vantage.pb-c.h"

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

// A string of len copies of c (caller frees).
static char *
zsend_string(char c, size_t len)
{
	char *s = malloc(len + 1);

	if (s == NULL) {
		fprintf(stderr, "zsend: out of memory\n");
		exit(1);
	}
	memset(s, c, len);
	s[len] = '\0';
	return s;
}

// Valid protobuf, each just under the 1 MiB frame limit, that the
// aggregator must decode into its bounded arena and then refuse: a Hello
// whose name is 900 KB, a result whose error text is 900 KB, and a Suspect
// of 300,000 empty target keys (millions of small allocations, each
// charged to the arena's cap).
static void
zsend_huge_strings(void *sock, struct buf *out)
{
	Vantage__AgentMsg m = VANTAGE__AGENT_MSG__INIT;
	Vantage__Hello h = VANTAGE__HELLO__INIT;
	Vantage__Suspect sus = VANTAGE__SUSPECT__INIT;
	char *big = zsend_string('n', 900 * 1024);
	size_t n_keys = 300000;
	char **keys = calloc(n_keys, sizeof(char *));

	h.name = big;
	h.region = (char *)"eu-west";
	h.epoch = 42;
	m.msg_case = VANTAGE__AGENT_MSG__MSG_HELLO;
	m.hello = &h;
	wire_encode_agent(&m, out);
	zsend_frame(sock, out->data, out->len, 0);

	zsend_valid_batch(out, 1, 200, clock_wall_us());
	{
		// The same batch with a 900 KB error text: encoded by hand,
		// since wire_encode_agent is what a real agent uses.
		Vantage__AgentMsg bm = VANTAGE__AGENT_MSG__INIT;
		Vantage__ResultBatch b = VANTAGE__RESULT_BATCH__INIT;
		Vantage__Result r = VANTAGE__RESULT__INIT, *rp = &r;

		r.seq = 1;
		r.target = (char *)"t01";
		r.started_at = r.scheduled_at = clock_wall_us();
		r.outcome = VANTAGE__OUTCOME__OUTCOME_DOWN;
		r.reason = VANTAGE__REASON__REASON_HTTP_STATUS;
		r.error = big;
		b.epoch = 42;
		b.n_results = 1;
		b.results = &rp;
		bm.msg_case = VANTAGE__AGENT_MSG__MSG_BATCH;
		bm.batch = &b;
		wire_encode_agent(&bm, out);
		zsend_frame(sock, out->data, out->len, 0);
	}

	for (size_t i = 0; i < n_keys; i++)
		keys[i] = (char *)"";
	sus.n_targets = n_keys;
	sus.targets = keys;
	m.msg_case = VANTAGE__AGENT_MSG__MSG_SUSPECT;
	m.suspect = &sus;
	wire_encode_agent(&m, out);
	zsend_frame(sock, out->data, out->len, 0);
	free(keys);
	free(big);
}

// One message of 5,000 frames of 1 KiB: more frames than any message has.
static void
zsend_many_frames(void *sock)
{
	static char kib[1024];

	for (int i = 0; i < 5000; i++)
		zsend_frame(sock, kib, sizeof(kib), i < 4999);
}

static void
zsend_free_data(void *data, void *hint)
{
	free(data);
}

// Sends one frame of 100 MB (without copying it; ZeroMQ frees it when done
// with it) and waits up to 10 s for the aggregator to drop the connection.
// Returns 0 if it did.
static int
zsend_huge_frame(void *ctx, void *sock)
{
	size_t size = 100 * 1024 * 1024;
	void *data = calloc(1, size);
	void *mon = zmq_socket(ctx, ZMQ_PAIR);
	zmq_msg_t msg;
	int64_t deadline = clock_mono_us() + 10 * 1000000;

	if (data == NULL || mon == NULL ||
	    zmq_socket_monitor(sock, "inproc://zsend-monitor", ZMQ_EVENT_DISCONNECTED) < 0 ||
	    zmq_connect(mon, "inproc://zsend-monitor") < 0) {
		fprintf(stderr, "zsend: cannot watch the connection: %s\n",
		    zmq_strerror(zmq_errno()));
		return 1;
	}
	zmq_msg_init_data(&msg, data, size, zsend_free_data, NULL);
	if (zmq_msg_send(&msg, sock, 0) < 0) {
		fprintf(stderr, "zsend: cannot send 100 MB: %s\n", zmq_strerror(zmq_errno()));
		zmq_msg_close(&msg);
		return 1;
	}
	while (clock_mono_us() < deadline) {
		zmq_pollitem_t item = { mon, 0, ZMQ_POLLIN, 0 };
		zmq_msg_t ev;

		if (zmq_poll(&item, 1, 200) <= 0)
			continue;
		zmq_msg_init(&ev);
		zmq_msg_recv(&ev, mon, 0);
		// The first frame is the event number (16 bits) and value.
		if (zmq_msg_more(&ev)) {
			uint16_t event;

			memcpy(&event, zmq_msg_data(&ev), sizeof(event));
			zmq_msg_close(&ev);
			zmq_msg_init(&ev);
			zmq_msg_recv(&ev, mon, 0);
			if (event == ZMQ_EVENT_DISCONNECTED) {
				zmq_msg_close(&ev);
				printf("disconnected after the 100 MB frame\n");
				zmq_socket_monitor(sock, NULL, 0);
				zmq_close(mon);
				return 0;
			}
		}
		zmq_msg_close(&ev);
	}
	fprintf(stderr, "zsend: the aggregator kept the connection after a 100 MB frame\n");
	zmq_socket_monitor(sock, NULL, 0);
	zmq_close(mon);
	return 1;
}

int
main(int argc, char **argv)
{
	void *ctx, *sock;
	const char *mode;
	int count, linger = 2000;
	struct buf msg;
	unsigned seed = 12345;
	int rc = 0;

	if (argc < 3) {
		fprintf(stderr,
		    "usage: zsend ENDPOINT random|truncated|oversized|frames|manyframes|"
		    "invalid|hugestrings|nohello|huge|all [COUNT]\n");
		return 2;
	}
	mode = argv[2];
	count = argc > 3 ? (int)strtol(argv[3], NULL, 10) : 10;
	ctx = zmq_ctx_new();
	sock = zmq_socket(ctx, ZMQ_DEALER);
	zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof(linger));
	if (zmq_connect(sock, argv[1]) < 0) {
		fprintf(stderr, "zsend: cannot connect to %s: %s\n", argv[1],
		    zmq_strerror(zmq_errno()));
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
		if (all || strcmp(mode, "manyframes") == 0)
			zsend_many_frames(sock);
		if (all || strcmp(mode, "hugestrings") == 0)
			zsend_huge_strings(sock, &msg);
		if (all || strcmp(mode, "invalid") == 0) {
			zsend_valid_batch(&msg, 1, 42, clock_wall_us()); // bad status
			zsend_frame(sock, msg.data, msg.len, 0);
			zsend_valid_batch(&msg, 0, 200, clock_wall_us()); // seq 0
			zsend_frame(sock, msg.data, msg.len, 0);
			zsend_valid_batch(&msg, 1, 200, 1000000); // 1970
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
	if (strcmp(mode, "huge") == 0)
		rc = zsend_huge_frame(ctx, sock);
	buf_free(&msg);
	zmq_close(sock);
	zmq_ctx_term(ctx);
	return rc;
}
