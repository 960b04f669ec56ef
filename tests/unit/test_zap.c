// SPDX-License-Identifier: Apache-2.0
//
// Unit tests for aggregator/zap: the ZAP handler answers requests sent the
// way libzmq sends them (a REQ socket on inproc://zeromq.zap.01), on a real
// libevent base.  A key with a file is admitted with User-Id = the file's
// name; an unknown key, another mechanism and a malformed request are
// refused; a file added later is admitted without a reload; a file removed
// is admitted until zap_reload, then refused as revoked, and admitted again
// when it is put back.  Every wait is bounded.
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

#include "curvekey.h"
#include "zap.h"

#define REPLY_WAIT_MS 5000

struct fix {
	char dir[64];
	void *ctx;
	void *req;
	struct event_base *base;
	struct zap *zap;
};

// The reply: status code and user id.
struct reply {
	char code[8];
	char user[80];
	int frames;
};

static void
make_key(struct fix *f, const char *name, struct curvekey *pub)
{
	char err[512], path[256];

	assert_int_equal(curvekey_generate(f->dir, name, err, sizeof(err)), 0);
	snprintf(path, sizeof(path), "%s/%s.pub", f->dir, name);
	assert_int_equal(curvekey_read_public(path, pub, err, sizeof(err)), 0);
}

static void
fix_open(struct fix *f)
{
	snprintf(f->dir, sizeof(f->dir), "/tmp/test-zap.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	f->ctx = zmq_ctx_new();
	f->base = event_base_new();
	f->zap = zap_new(f->base, f->ctx, f->dir);
	assert_non_null(f->zap);
	f->req = zmq_socket(f->ctx, ZMQ_REQ);
	assert_int_equal(zmq_connect(f->req, "inproc://zeromq.zap.01"), 0);
}

static void
fix_close(struct fix *f)
{
	char cmd[128];
	int linger = 0;

	zmq_setsockopt(f->req, ZMQ_LINGER, &linger, sizeof(linger));
	zmq_close(f->req);
	zap_free(f->zap);
	zmq_ctx_term(f->ctx);
	event_base_free(f->base);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
}

// Sends a request of nframes (version "1.0", id "7", domain, address
// 10.0.0.9, routing id, mechanism, credentials...) and runs the loop until
// the reply arrives.
static void
ask(struct fix *f, const char *mechanism, const void *cred, size_t cred_len, int nframes,
    struct reply *r)
{
	const char *head[] = { "1.0", "7", ZAP_DOMAIN, "10.0.0.9", "", mechanism };
	int sent = 0, more = 1;
	size_t len = sizeof(more);

	for (int i = 0; i < 6 && sent < nframes; i++, sent++)
		assert_true(zmq_send(f->req, head[i], strlen(head[i]),
				sent + 1 < nframes ? ZMQ_SNDMORE : 0) >= 0);
	if (sent < nframes)
		assert_true(zmq_send(f->req, cred, cred_len, 0) >= 0);
	for (int waited = 0;; waited += 10) {
		zmq_pollitem_t it = { f->req, 0, ZMQ_POLLIN, 0 };

		event_base_loop(f->base, EVLOOP_NONBLOCK);
		if (zmq_poll(&it, 1, 10) == 1)
			break;
		if (waited > REPLY_WAIT_MS)
			fail_msg("no ZAP reply within %d ms", REPLY_WAIT_MS);
	}
	memset(r, 0, sizeof(*r));
	while (more) {
		zmq_msg_t m;
		size_t n;

		zmq_msg_init(&m);
		assert_true(zmq_msg_recv(&m, f->req, 0) >= 0);
		n = zmq_msg_size(&m);
		if (r->frames == 1)
			assert_true(n == 1 && memcmp(zmq_msg_data(&m), "7", 1) == 0);
		if (r->frames == 2 && n < sizeof(r->code))
			memcpy(r->code, zmq_msg_data(&m), n);
		if (r->frames == 4 && n < sizeof(r->user))
			memcpy(r->user, zmq_msg_data(&m), n);
		r->frames++;
		zmq_msg_close(&m);
		zmq_getsockopt(f->req, ZMQ_RCVMORE, &more, &len);
	}
}

static void
ask_curve(struct fix *f, const struct curvekey *k, struct reply *r)
{
	uint8_t bin[CURVEKEY_BIN_LEN];

	curvekey_binary(k, bin);
	ask(f, "CURVE", bin, sizeof(bin), 7, r);
}

static void
test_admit_and_refuse(void **state)
{
	struct fix f;
	struct curvekey eu, rogue;
	struct zap_stats st;
	struct reply r;
	char path[128];

	fix_open(&f);
	make_key(&f, "eu-west", &eu);
	ask_curve(&f, &eu, &r);
	assert_int_equal(r.frames, 6);
	assert_string_equal(r.code, "200");
	assert_string_equal(r.user, "eu-west");
	assert_true(zap_admits(f.zap, "eu-west"));

	// A key whose public file is not in the directory.
	make_key(&f, "rogue", &rogue);
	snprintf(path, sizeof(path), "%s/rogue.pub", f.dir);
	assert_int_equal(unlink(path), 0);
	ask_curve(&f, &rogue, &r);
	assert_string_equal(r.code, "400");
	assert_string_equal(r.user, "");

	ask(&f, "NULL", NULL, 0, 6, &r);
	assert_string_equal(r.code, "400");
	ask(&f, "CURVE", "short", 5, 7, &r);
	assert_string_equal(r.code, "400");
	ask(&f, "CURVE", NULL, 0, 3, &r);
	assert_string_equal(r.code, "500");

	zap_get_stats(f.zap, &st);
	assert_int_equal(st.admitted, 1);
	assert_int_equal(st.refused_unknown_key, 1);
	assert_int_equal(st.refused_mechanism, 2);
	assert_int_equal(st.keys, 1);
	fix_close(&f);
}

static void
test_revoke_and_readmit(void **state)
{
	struct fix f;
	struct curvekey us;
	struct zap_stats st;
	struct reply r;
	char pub[128], keep[128];

	fix_open(&f);
	// Added after zap_new: admitted without a reload.
	make_key(&f, "us-east", &us);
	ask_curve(&f, &us, &r);
	assert_string_equal(r.code, "200");
	assert_string_equal(r.user, "us-east");

	snprintf(pub, sizeof(pub), "%s/us-east.pub", f.dir);
	snprintf(keep, sizeof(keep), "%s/us-east.pub.kept", f.dir);
	assert_int_equal(rename(pub, keep), 0);
	// Removed but not reloaded: still admitted.
	ask_curve(&f, &us, &r);
	assert_string_equal(r.code, "200");
	assert_int_equal(zap_reload(f.zap, f.dir), 1);
	assert_false(zap_admits(f.zap, "us-east"));
	ask_curve(&f, &us, &r);
	assert_string_equal(r.code, "400");
	// A reload with nothing removed revokes nothing.
	assert_int_equal(zap_reload(f.zap, f.dir), 0);

	assert_int_equal(rename(keep, pub), 0);
	// Revoked stays revoked until a reload sees the file again.
	ask_curve(&f, &us, &r);
	assert_string_equal(r.code, "400");
	assert_int_equal(zap_reload(f.zap, f.dir), 0);
	ask_curve(&f, &us, &r);
	assert_string_equal(r.code, "200");

	zap_get_stats(f.zap, &st);
	assert_int_equal(st.refused_revoked_key, 2);
	assert_int_equal(st.admitted, 3);
	assert_int_equal(zap_reload(f.zap, "/nonexistent/vantage-keys"), -1);
	assert_true(zap_admits(f.zap, "us-east"));
	fix_close(&f);
}

// Files that are no key, or whose name is no agent name, are skipped.
static void
test_bad_files_skipped(void **state)
{
	struct fix f;
	struct curvekey k;
	struct zap_stats st;
	char from[128], to[128];
	FILE *bad;

	fix_open(&f);
	make_key(&f, "good", &k);
	snprintf(from, sizeof(from), "%s/good.pub", f.dir);
	snprintf(to, sizeof(to), "%s/bad name!.pub", f.dir);
	assert_int_equal(link(from, to), 0);
	snprintf(to, sizeof(to), "%s/broken.pub", f.dir);
	bad = fopen(to, "w");
	assert_non_null(bad);
	fputs("not a key\n", bad);
	fclose(bad);
	assert_int_equal(zap_reload(f.zap, f.dir), 0);
	zap_get_stats(f.zap, &st);
	assert_int_equal(st.keys, 1);
	assert_true(zap_admits(f.zap, "good"));
	assert_false(zap_admits(f.zap, "broken"));
	fix_close(&f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_admit_and_refuse),
		cmocka_unit_test(test_revoke_and_readmit),
		cmocka_unit_test(test_bad_files_skipped),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
