// SPDX-License-Identifier: Apache-2.0
//
// libFuzzer target for the aggregator's HTTP API: the input is the byte
// stream a client sends (one request, or several pipelined), fed to the real
// HTTP server of aggregator/http_server.c with the routes of
// aggregator/api.c through a connected socket, so that libevent's request
// parsing, the URI and query decoding, the route table and its path
// parameters, the bearer-token check, the JSON body validation and every
// handler run exactly as they do for a network client.  The socket is a Unix socket in the abstract
// namespace: no file, no address on any network.  The API gets a real
// agent registry and target table (two targets, results from two regions),
// a real ingest bound to an inproc endpoint, and a real store whose
// database cannot be reached, so every handler that needs PostgreSQL gets
// the store's failure callback and answers 503.  Each input runs the event
// loop for a bounded number of turns; a callback still due when the input
// ends arrives during the next one, after the server and the API it
// belonged to were freed, which is what the aggregator's exit does too.  Besides what ASan and UBSan catch, it checks
// that whatever comes back is HTTP and that no request gets a 500.
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/event.h>
#include <zmq.h>

#include "agents.h"
#include "auth.h"
#include "clock.h"
#include "agg_conf.h"
#include "api.h"
#include "http_server.h"
#include "ingest.h"
#include "log.h"
#include "store_pg.h"
#include "targets.h"
#include "verdict.h"

// Turns of the loop per input, and how many in a row may pass without a
// byte moving before the exchange is taken as finished.
#define FUZZ_MAX_TURNS 200
#define FUZZ_QUIET_TURNS 3
// Responses are read up to this much; the rest is discarded unread.
#define FUZZ_MAX_REPLY (1024 * 1024)

static struct event_base *fuzz_base;
static struct agents *fuzz_agents;
static struct target_table *fuzz_targets;
static struct store *fuzz_store;
static struct ingest *fuzz_ingest;
static struct verdict *fuzz_verdict;
static struct auth *fuzz_auth;
static struct sockaddr_un fuzz_addr;
static socklen_t fuzz_addr_len;
static char *fuzz_reply;

static void __attribute__((__noreturn__, format(printf, 1, 2))) fuzz_fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("fuzz_http: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	abort();
}

// A file with this text that exists only in memory; its path (through
// /proc) is written to path.
static void
fuzz_memfile(const char *name, const char *text, char *path, size_t pathlen)
{
	int fd = memfd_create(name, 0);

	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		fuzz_fail("could not make the in-memory file \"%s\": %s", name, strerror(errno));
	fchmod(fd, 0600);
	snprintf(path, pathlen, "/proc/self/fd/%d", fd);
}

// One result of agent_slot for target idx, as ingest records it.
static void
fuzz_result(size_t idx, size_t agent_slot, uint64_t seq, int outcome, int reason, const char *error)
{
	Vantage__Result r = VANTAGE__RESULT__INIT;
	int64_t now = clock_wall_us();

	r.seq = seq;
	r.target = (char *)targets_conf(fuzz_targets, idx)->key;
	r.started_at = r.scheduled_at = now - 1000000;
	r.outcome = outcome;
	r.reason = reason;
	r.http_status = outcome == VANTAGE__OUTCOME__OUTCOME_UP ? 200 : 503;
	r.total_us = r.ttfb_us = 12000;
	r.error = (char *)error;
	targets_record(fuzz_targets, idx, agent_slot, &r, now);
}

static void
fuzz_init(void)
{
	char conf_path[64], admin_path[64], reader_path[64], conf_text[2048], err[512];
	struct agg_conf *conf;
	size_t eu, us;
	void *zctx;

	log_init("fuzz_http", LOG_LEVEL_WARN);
	fuzz_memfile("admin.token", "fuzz-admin-token\n", admin_path, sizeof(admin_path));
	fuzz_memfile("reader.token", "fuzz-reader-token\n", reader_path, sizeof(reader_path));
	snprintf(conf_text, sizeof(conf_text),
	    "security: { insecure: true }\n"
	    "database: \"host=/nonexistent/vantage-fuzz connect_timeout=1\"\n"
	    "api_tokens:\n"
	    "  - { name: ops, token_file: %s, role: admin }\n"
	    "  - { name: viewer, token_file: %s, role: read }\n"
	    "regions: [ { name: eu-west, domain: aws }, { name: us-east, domain: gcp } ]\n"
	    "targets:\n"
	    "  - { name: api, group: \"Public API\", http: { url: \"http://127.0.0.1:1/health\" } }\n"
	    "  - { name: db.tcp_1, tcp: { host: 127.0.0.1, port: 1 } }\n",
	    admin_path, reader_path);
	fuzz_memfile("vantage.yml", conf_text, conf_path, sizeof(conf_path));
	conf = agg_conf_load(conf_path, err, sizeof(err));
	if (conf == NULL)
		fuzz_fail("the fixed configuration does not load: %s", err);
	// In-process only: the fuzzer listens on no network.
	free(conf->listen_zmq);
	conf->listen_zmq = strdup("inproc://vantage-fuzz-http");
	fuzz_auth = auth_load(conf, err, sizeof(err));
	if (fuzz_auth == NULL)
		fuzz_fail("the fixed tokens do not load: %s", err);

	fuzz_base = event_base_new();
	zctx = zmq_ctx_new();
	fuzz_agents = agents_new();
	fuzz_targets = targets_new(conf);
	fuzz_store = store_new(fuzz_base, conf->database);
	fuzz_verdict = verdict_new(conf, fuzz_targets, fuzz_agents, NULL);
	fuzz_ingest = ingest_new(fuzz_base, zctx, conf, fuzz_store, fuzz_agents, fuzz_targets, NULL,
	    NULL, NULL);
	if (fuzz_base == NULL || fuzz_ingest == NULL)
		fuzz_fail("could not set up the aggregator's modules");
	eu = agents_upsert(fuzz_agents, 1, "eu-1", "eu-west", "0.1");
	us = agents_upsert(fuzz_agents, 2, "us-1", "us-east", "0.1");
	agents_get(fuzz_agents, eu)->connected = true;
	agents_get(fuzz_agents, eu)->last_seen = clock_wall_us();
	agents_get(fuzz_agents, us)->impaired = true;
	snprintf(agents_get(fuzz_agents, us)->impaired_reason,
	    sizeof(agents_get(fuzz_agents, us)->impaired_reason), "controls fail");
	fuzz_result(0, eu, 7, VANTAGE__OUTCOME__OUTCOME_UP, VANTAGE__REASON__REASON_NONE, "");
	fuzz_result(0, us, 9, VANTAGE__OUTCOME__OUTCOME_DOWN, VANTAGE__REASON__REASON_HTTP_STATUS,
	    "503 \"Service Unavailable\"");
	verdict_enable(fuzz_verdict);
	verdict_eval_all(fuzz_verdict, clock_wall_us());

	fuzz_addr.sun_family = AF_UNIX;
	// Abstract namespace: a leading NUL, then a name no other process uses.
	snprintf(fuzz_addr.sun_path + 1, sizeof(fuzz_addr.sun_path) - 1, "vantage-fuzz-http-%d",
	    (int)getpid());
	fuzz_addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
	    strlen(fuzz_addr.sun_path + 1));
	fuzz_reply = malloc(FUZZ_MAX_REPLY + 1);
	// The configuration is borrowed by the modules for the whole run.
}

// A status line: "HTTP/" version " " three digits.  The version is not
// checked: evhttp answers in the one the request named, as sscanf read it
// (HTTP/0.1, HTTP/1.11, even HTTP/-1.1 for a number too long).  Returns
// the code, or -1.
static int
fuzz_status(const char *p, const char *end)
{
	const char *space;

	if (end - p < 5 || strncmp(p, "HTTP/", 5) != 0)
		return -1;
	space = memchr(p, ' ', (size_t)(end - p));
	if (space == NULL || end - space < 4 || memchr(p, '\n', (size_t)(space - p)) != NULL ||
	    strspn(space + 1, "0123456789") < 3)
		return -1;
	return (space[1] - '0') * 100 + (space[2] - '0') * 10 + (space[3] - '0');
}

// What came back starts with a status line, and every status line (at the
// start of a line) has a code from 100 to 599 that is not 500: nothing a
// client sends may be an internal error.
static void
fuzz_check_reply(const char *reply, size_t len)
{
	const char *end = reply + len;

	if (len == 0)
		return;
	if (fuzz_status(reply, end) < 0)
		fuzz_fail("the reply does not start with an HTTP status line: \"%.40s\"", reply);
	for (const char *p = reply; p != NULL && p < end; p = memchr(p, '\n', (size_t)(end - p))) {
		int code;

		p += *p == '\n';
		code = fuzz_status(p, end);
		if (code < 0)
			continue;
		if (code < 100 || code > 599)
			fuzz_fail("status %d in a reply", code);
		if (code == 500)
			fuzz_fail("a request got 500 Internal Server Error");
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_server *srv;
	struct api *api;
	int listener, client;
	size_t sent = 0, got = 0;
	int quiet = 0;
	bool shut = false;

	if (fuzz_base == NULL)
		fuzz_init();
	srv = http_server_new(fuzz_base, NULL);
	if (srv == NULL)
		fuzz_fail("http_server_new without an address failed");
	http_server_set_auth(srv, fuzz_auth);
	api = api_new(srv, fuzz_agents, fuzz_targets, fuzz_store, fuzz_ingest, fuzz_verdict);
	listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (listener < 0 || bind(listener, (struct sockaddr *)&fuzz_addr, fuzz_addr_len) < 0 ||
	    listen(listener, 4) < 0 || http_server_accept_fd(srv, listener) < 0)
		fuzz_fail("could not listen on the abstract socket: %s", strerror(errno));
	client = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (client < 0 || connect(client, (struct sockaddr *)&fuzz_addr, fuzz_addr_len) < 0)
		fuzz_fail("could not connect to the abstract socket: %s", strerror(errno));

	// Send what fits, let the server run, read what it answered; until
	// everything is sent, the input ended, and nothing moves for a few
	// turns.
	for (int turn = 0; turn < FUZZ_MAX_TURNS && quiet < FUZZ_QUIET_TURNS; turn++) {
		bool moved = false;
		ssize_t n;

		if (sent < size) {
			n = send(client, data + sent, size - sent, MSG_NOSIGNAL);
			if (n > 0) {
				sent += (size_t)n;
				moved = true;
			} else if (n < 0 && errno != EAGAIN) {
				sent = size; // the server closed: stop sending
			}
		}
		event_base_loop(fuzz_base, EVLOOP_NONBLOCK);
		for (;;) {
			char sink[4096];
			char *into = got < FUZZ_MAX_REPLY ? fuzz_reply + got : sink;
			size_t room = got < FUZZ_MAX_REPLY ? FUZZ_MAX_REPLY - got : sizeof(sink);

			n = recv(client, into, room, 0);
			if (n <= 0)
				break;
			if (into != sink)
				got += (size_t)n;
			moved = true;
		}
		quiet = moved || sent < size ? 0 : quiet + 1;
		// The end of the input only once the answers have stopped:
		// evhttp drops the requests pipelined behind one when it reads
		// EOF, and a body that runs to EOF still gets one.
		if (sent == size && !shut && quiet > 0) {
			shutdown(client, SHUT_WR);
			shut = true;
			quiet = 0;
		}
	}
	fuzz_reply[got] = '\0';
	// FUZZ_HTTP_SHOW=1 prints the exchange: for looking at seeds and crashes.
	if (getenv("FUZZ_HTTP_SHOW") != NULL)
		fprintf(stderr, "---- %zu bytes sent, %zu received:\n%s\n", sent, got, fuzz_reply);
	fuzz_check_reply(fuzz_reply, got);
	close(client);
	// Frees the listener and every connection still open.
	http_server_free(srv);
	api_free(api);
	return 0;
}
