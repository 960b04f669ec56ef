// SPDX-License-Identifier: Apache-2.0
//
// hookd: the fake webhook receiver that alert tests point channels at.  It
// records every POST (path, time, the status it answered, the body parsed
// as JSON when it is JSON) in memory, for GET /_hook/received, and as JSON
// lines in a file (-o), and answers as its mode says: ok (2xx), fail (an
// error status), hang (never answer) or down (close without answering), so
// a test can play a receiver that accepts, refuses, hangs or is gone, and
// switch between them with PUT /_hook/mode.  One libevent loop; nothing
// may block it, and no request or connection is held beyond the bounds
// below.  The control API has no authentication: loopback or a lab only.
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdnoreturn.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <jansson.h>

#include "clock.h"
#include "log.h"
#include "xmalloc.h"

#define HOOKD_MAX_BODY (1024 * 1024)
#define HOOKD_MAX_HEADERS (16 * 1024)
#define HOOKD_MAX_CTL_BODY 4096
// Records kept for GET /_hook/received; older ones are dropped (and
// counted) past this, the -o file keeps everything.
#define HOOKD_MAX_RECORDS 10000
// A hung request ends when its client goes away; this bounds the ones
// whose client vanished without a FIN.
#define HOOKD_HANG_MAX_SEC 600
#define HOOKD_IO_TIMEOUT_SEC 60
#define HOOKD_CTL_PREFIX "/_hook/"

enum mode { MODE_OK, MODE_FAIL, MODE_HANG, MODE_DOWN };

static const struct mode_desc {
	const char *name;
	int default_status;
	int min_status, max_status; // 0: takes no status
} mode_descs[] = {
	[MODE_OK] = { "ok", 200, 200, 299 },
	[MODE_FAIL] = { "fail", 500, 400, 599 },
	[MODE_HANG] = { "hang", 0, 0, 0 },
	[MODE_DOWN] = { "down", 0, 0, 0 },
};
#define HOOKD_N_MODES (sizeof(mode_descs) / sizeof(mode_descs[0]))

// A request never answered: lives until its client goes away or the hang
// bound passes, and is the close callback argument of its connection.
struct hung {
	struct hookd *hookd;
	struct evhttp_request *req;
	struct evhttp_connection *evcon;
	struct event *timer;
	struct event *watch;
};

struct hookd {
	struct event_base *base;
	struct evhttp *http;
	struct evhttp_bound_socket *sock;
	struct event *signals[2];
	enum mode mode;
	int status;
	json_t *records; // array, oldest first
	json_int_t dropped;
	FILE *out; // -o, or NULL
	const char *out_path;
	size_t nhung;
};

// libevent allocations report failure by NULL; like xmalloc, there is no
// recovery path worth having in a test fake.
static void *
ev_check(void *ptr, const char *what)
{
	if (ptr == NULL)
		fatalx("cannot allocate %s", what);
	return ptr;
}

// Takes the reference to doc.
static void
reply_json(struct evhttp_request *req, int status, json_t *doc)
{
	struct evbuffer *out = evhttp_request_get_output_buffer(req);
	char *text = json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS);

	json_decref(doc);
	if (text == NULL)
		fatalx("cannot encode a JSON reply");
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
	    "application/json");
	evbuffer_add(out, text, strlen(text));
	evbuffer_add(out, "\n", 1);
	free(text);
	evhttp_send_reply(req, status, NULL, NULL);
}

static void reply_error(struct evhttp_request *req, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
reply_error(struct evhttp_request *req, int status, const char *fmt, ...)
{
	char msg[512];
	json_t *doc;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	// Truncation can split a UTF-8 sequence, which jansson refuses.
	doc = json_pack("{s:s}", "error", msg);
	if (doc == NULL)
		doc = ev_check(json_pack("{s:s}", "error", "request rejected"), "error JSON");
	reply_json(req, status, doc);
}

static json_t *
mode_to_json(const struct hookd *h)
{
	json_t *doc = json_pack("{s:s}", "mode", mode_descs[h->mode].name);

	json_object_set_new(doc, "status", h->status > 0 ? json_integer(h->status) : json_null());
	return ev_check(doc, "mode JSON");
}

// The body as JSON when it is JSON, else as a string (when it is UTF-8),
// else null: a test compares what arrived, and a receiver must cope with
// whatever a sender gets wrong.
static json_t *
body_to_json(const char *data, size_t len)
{
	json_t *doc = json_loadb(data, len, JSON_DECODE_ANY, NULL);

	if (doc == NULL)
		doc = json_stringn(data, len);
	return doc != NULL ? doc : json_null();
}

// Records one POST; status 0 means it was not answered.
static void
record(struct hookd *h, const char *path, const char *body, size_t len, int status)
{
	char at[40];
	json_t *rec;
	char *line;

	clock_iso8601(clock_wall_us(), at, sizeof(at));
	rec = json_pack("{s:s,s:s,s:o,s:o}", "path", path, "at", at, "status",
	    status > 0 ? json_integer(status) : json_null(), "body", body_to_json(body, len));
	if (rec == NULL) // a path that is not UTF-8
		rec = ev_check(json_pack("{s:s,s:s,s:o,s:o}", "path", "(invalid)", "at", at,
				   "status", status > 0 ? json_integer(status) : json_null(),
				   "body", body_to_json(body, len)),
		    "record");
	if (h->out != NULL) {
		line = json_dumps(rec, JSON_COMPACT | JSON_SORT_KEYS);
		if (line == NULL || fprintf(h->out, "%s\n", line) < 0 || fflush(h->out) == EOF)
			fatal("cannot write to \"%s\"", h->out_path);
		free(line);
	}
	if (json_array_size(h->records) == HOOKD_MAX_RECORDS) {
		json_array_remove(h->records, 0);
		h->dropped++;
	}
	json_array_append_new(h->records, rec);
}

static evutil_socket_t
conn_fd(struct evhttp_connection *evcon)
{
	struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);

	return bev != NULL ? bufferevent_getfd(bev) : -1;
}

static void
hung_free(struct hung *hg)
{
	hg->hookd->nhung--;
	evhttp_connection_set_closecb(hg->evcon, NULL, NULL);
	event_free(hg->timer);
	if (hg->watch != NULL)
		event_free(hg->watch);
	free(hg);
}

// The connection is going away (client gone, or our own close).  evhttp
// frees the request afterwards unless it already detached it from the
// connection, in which case it is ours to free.
static void
hung_closecb(struct evhttp_connection *evcon, void *arg)
{
	struct hung *hg = arg;
	struct evhttp_request *req = hg->req;
	bool detached = evhttp_request_get_connection(req) == NULL;

	(void)evcon;
	hung_free(hg);
	if (detached)
		evhttp_request_free(req);
}

static void
hung_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct hung *hg = arg;
	struct evhttp_connection *evcon = hg->evcon;

	(void)fd;
	(void)what;
	log_info("closing a connection hung for %d s", HOOKD_HANG_MAX_SEC);
	hung_free(hg);
	evhttp_connection_free(evcon);
}

// evhttp stops reading while a request waits for its answer, so it would
// never notice the client hanging up; this watch does, and drops whatever
// else the client sends meanwhile.
static void
hung_watch_cb(evutil_socket_t fd, short what, void *arg)
{
	struct hung *hg = arg;
	struct evhttp_connection *evcon = hg->evcon;
	char scratch[4096];
	ssize_t n;

	(void)what;
	n = recv(fd, scratch, sizeof(scratch), MSG_DONTWAIT);
	if (n > 0)
		return;
	if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	hung_free(hg);
	evhttp_connection_free(evcon);
}

static void
hung_start(struct hookd *h, struct evhttp_request *req, struct evhttp_connection *evcon)
{
	struct hung *hg = xcalloc(1, sizeof(*hg));
	struct timeval tv = clock_tv((int64_t)HOOKD_HANG_MAX_SEC * 1000000);
	evutil_socket_t fd = conn_fd(evcon);

	hg->hookd = h;
	hg->req = req;
	hg->evcon = evcon;
	hg->timer = ev_check(evtimer_new(h->base, hung_timer_cb, hg), "timer");
	if (fd >= 0) {
		hg->watch = ev_check(
		    event_new(h->base, fd, EV_READ | EV_PERSIST, hung_watch_cb, hg), "event");
		event_add(hg->watch, NULL);
	}
	evtimer_add(hg->timer, &tv);
	evhttp_connection_set_closecb(evcon, hung_closecb, hg);
	h->nhung++;
}

// {"mode": "ok"|"fail"|"hang"|"down", "status": N}; status only for ok and
// fail, within their range.
static void
ctl_put_mode(struct hookd *h, struct evhttp_request *req)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in), i;
	json_t *doc, *jmode, *jstatus;
	const char *key, *name;
	json_error_t jerr;
	json_int_t status;
	json_t *value;

	if (len > HOOKD_MAX_CTL_BODY) {
		reply_error(req, 413, "the body is limited to %d bytes", HOOKD_MAX_CTL_BODY);
		return;
	}
	doc = json_loadb((const char *)evbuffer_pullup(in, -1), len, 0, &jerr);
	if (doc == NULL || !json_is_object(doc)) {
		reply_error(req, 400,
		    "the body must be a JSON object such as "
		    "{\"mode\": \"fail\", \"status\": 503}");
		json_decref(doc);
		return;
	}
	json_object_foreach(doc, key, value) {
		if (strcmp(key, "mode") != 0 && strcmp(key, "status") != 0) {
			reply_error(req, 400,
			    "unknown field \"%.64s\"; there are mode and "
			    "status",
			    key);
			json_decref(doc);
			return;
		}
	}
	jmode = json_object_get(doc, "mode");
	jstatus = json_object_get(doc, "status");
	name = json_string_value(jmode);
	for (i = 0; name != NULL && i < HOOKD_N_MODES; i++)
		if (strcmp(name, mode_descs[i].name) == 0)
			break;
	if (name == NULL || i == HOOKD_N_MODES) {
		reply_error(req, 400, "\"mode\" must be ok, fail, hang or down");
		json_decref(doc);
		return;
	}
	status = mode_descs[i].default_status;
	if (jstatus != NULL && !json_is_null(jstatus)) {
		status = json_is_integer(jstatus) ? json_integer_value(jstatus) : -1;
		if (mode_descs[i].min_status == 0 || status < mode_descs[i].min_status ||
		    status > mode_descs[i].max_status) {
			if (mode_descs[i].min_status == 0)
				reply_error(req, 400, "mode \"%s\" takes no status", name);
			else
				reply_error(req, 400, "mode \"%s\" takes a status from %d to %d",
				    name, mode_descs[i].min_status, mode_descs[i].max_status);
			json_decref(doc);
			return;
		}
	}
	h->mode = (enum mode)i;
	h->status = (int)status;
	json_decref(doc);
	if (h->status > 0)
		log_info("mode %s, answering %d", mode_descs[h->mode].name, h->status);
	else
		log_info("mode %s", mode_descs[h->mode].name);
	reply_json(req, 200, mode_to_json(h));
}

static void
reply_not_allowed(struct evhttp_request *req, const char *allow)
{
	evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", allow);
	reply_error(req, 405, "method not allowed; use %s", allow);
}

static void
ctl_handle(struct hookd *h, struct evhttp_request *req, const char *path)
{
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	json_int_t n;

	if (strcmp(path, HOOKD_CTL_PREFIX "received") == 0) {
		if (cmd == EVHTTP_REQ_GET) {
			reply_json(req, 200, json_incref(h->records));
		} else if (cmd == EVHTTP_REQ_DELETE) {
			n = (json_int_t)json_array_size(h->records);
			json_array_clear(h->records);
			reply_json(req, 200, ev_check(json_pack("{s:I}", "cleared", n), "reply"));
		} else {
			reply_not_allowed(req, "GET, DELETE");
		}
	} else if (strcmp(path, HOOKD_CTL_PREFIX "mode") == 0) {
		if (cmd == EVHTTP_REQ_GET)
			reply_json(req, 200, mode_to_json(h));
		else if (cmd == EVHTTP_REQ_PUT)
			ctl_put_mode(h, req);
		else
			reply_not_allowed(req, "GET, PUT");
	} else if (strcmp(path, HOOKD_CTL_PREFIX "stats") == 0 && cmd == EVHTTP_REQ_GET) {
		reply_json(req, 200,
		    ev_check(json_pack("{s:I,s:I,s:I}", "received",
				 (json_int_t)json_array_size(h->records), "dropped", h->dropped,
				 "hung", (json_int_t)h->nhung),
			"reply"));
	} else {
		reply_error(req, 404,
		    "no control endpoint here; there are received, mode and "
		    "stats");
	}
}

static void
hookd_handle(struct evhttp_request *req, void *arg)
{
	struct hookd *h = arg;
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	const char *body;

	if (path == NULL || path[0] == '\0')
		path = "/";
	if (strncmp(path, HOOKD_CTL_PREFIX, strlen(HOOKD_CTL_PREFIX)) == 0) {
		ctl_handle(h, req, path);
		return;
	}
	if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
		reply_not_allowed(req, "POST");
		return;
	}
	body = len > 0 ? (const char *)evbuffer_pullup(in, -1) : "";
	record(h, path, body, len, h->mode == MODE_OK || h->mode == MODE_FAIL ? h->status : 0);
	log_info("POST \"%.200s\" (%zu bytes): %s", path, len, mode_descs[h->mode].name);
	switch (h->mode) {
	case MODE_OK:
	case MODE_FAIL:
		reply_json(req, h->status,
		    ev_check(json_pack("{s:b}", "ok", h->mode == MODE_OK), "reply"));
		break;
	case MODE_HANG:
		hung_start(h, req, evcon);
		break;
	case MODE_DOWN:
		evhttp_connection_free(evcon);
		break;
	}
}

// Parses "ADDR:PORT" or "[ADDR6]:PORT"; numeric addresses only, so that a
// test never depends on a resolver.
static int
listen_parse(const char *spec, char *addr, size_t addrlen, uint16_t *port)
{
	const char *colon, *host = spec;
	size_t host_len;
	unsigned long value;
	char *end;

	if (spec[0] == '[') {
		const char *close = strchr(spec, ']');

		if (close == NULL || close[1] != ':')
			return -1;
		host = spec + 1;
		host_len = (size_t)(close - host);
		colon = close + 1;
	} else {
		colon = strchr(spec, ':');
		if (colon == NULL || strchr(colon + 1, ':') != NULL)
			return -1;
		host_len = (size_t)(colon - spec);
	}
	if (host_len == 0 || host_len >= addrlen || colon[1] < '0' || colon[1] > '9')
		return -1;
	errno = 0;
	value = strtoul(colon + 1, &end, 10);
	if (errno != 0 || *end != '\0' || value > 65535)
		return -1;
	memcpy(addr, host, host_len);
	addr[host_len] = '\0';
	*port = (uint16_t)value;
	return 0;
}

// Prints "listening on ADDR:PORT" with the port the kernel chose for port
// 0; tests wait for this line.
static void
hookd_announce(struct hookd *h)
{
	struct sockaddr_storage bound;
	socklen_t boundlen = sizeof(bound);
	char text[INET6_ADDRSTRLEN];

	if (getsockname(evhttp_bound_socket_get_fd(h->sock), (struct sockaddr *)&bound,
		&boundlen) == -1)
		fatal("cannot read the listener address");
	if (bound.ss_family == AF_INET6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&bound;

		inet_ntop(AF_INET6, &sin6->sin6_addr, text, sizeof(text));
		printf("listening on [%s]:%u\n", text, ntohs(sin6->sin6_port));
	} else {
		struct sockaddr_in *sin = (struct sockaddr_in *)&bound;

		inet_ntop(AF_INET, &sin->sin_addr, text, sizeof(text));
		printf("listening on %s:%u\n", text, ntohs(sin->sin_port));
	}
	if (fflush(stdout) == EOF)
		fatal("cannot write to standard output");
}

static void
hookd_signal(evutil_socket_t sig, short what, void *arg)
{
	struct hookd *h = arg;

	(void)what;
	log_info("exiting on signal %d", (int)sig);
	event_base_loopexit(h->base, NULL);
}

static noreturn void
usage(FILE *out, int status)
{
	fprintf(out,
	    "usage: hookd -l ADDR:PORT [-o received.jsonl] [-m ok|fail|hang|down] [-q] [-h]\n");
	exit(status);
}

int
main(int argc, char **argv)
{
	static const int signals[] = { SIGTERM, SIGINT };
	struct hookd h;
	const char *spec = NULL, *mode = "ok";
	char addr[INET6_ADDRSTRLEN];
	uint16_t port;
	bool quiet = false;
	size_t i;
	int ch;

	memset(&h, 0, sizeof(h));
	log_init("hookd", LOG_LEVEL_INFO);
	while ((ch = getopt(argc, argv, "hl:m:o:q")) != -1) {
		switch (ch) {
		case 'l':
			spec = optarg;
			break;
		case 'm':
			mode = optarg;
			break;
		case 'o':
			h.out_path = optarg;
			break;
		case 'q':
			quiet = true;
			break;
		case 'h':
			usage(stdout, 0);
			break;
		default:
			usage(stderr, 1);
		}
	}
	if (optind != argc || spec == NULL)
		usage(stderr, 1);
	if (listen_parse(spec, addr, sizeof(addr), &port) == -1)
		fatalx("invalid listen address \"%s\"; expected ADDR:PORT or [ADDR6]:PORT with a "
		       "numeric address",
		    spec);
	for (i = 0; i < HOOKD_N_MODES; i++)
		if (strcmp(mode, mode_descs[i].name) == 0)
			break;
	if (i == HOOKD_N_MODES)
		fatalx("-m must be ok, fail, hang or down");
	h.mode = (enum mode)i;
	h.status = mode_descs[i].default_status;
	if (quiet)
		log_set_level(LOG_LEVEL_WARN);
	// A client that hangs up mid-reply must not kill the server.
	signal(SIGPIPE, SIG_IGN);
	if (h.out_path != NULL) {
		int fd = open(h.out_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

		if (fd == -1 || (h.out = fdopen(fd, "a")) == NULL)
			fatal("cannot open \"%s\"", h.out_path);
	}
	h.records = ev_check(json_array(), "records");

	h.base = ev_check(event_base_new(), "event base");
	h.http = ev_check(evhttp_new(h.base), "HTTP server");
	evhttp_set_timeout(h.http, HOOKD_IO_TIMEOUT_SEC);
	evhttp_set_max_body_size(h.http, HOOKD_MAX_BODY);
	evhttp_set_max_headers_size(h.http, HOOKD_MAX_HEADERS);
	evhttp_set_allowed_methods(h.http,
	    EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
		EVHTTP_REQ_HEAD);
	evhttp_set_gencb(h.http, hookd_handle, &h);
	h.sock = evhttp_bind_socket_with_handle(h.http, addr, port);
	if (h.sock == NULL)
		fatal("cannot listen on \"%s\"", spec);
	for (i = 0; i < 2; i++) {
		h.signals[i] = ev_check(evsignal_new(h.base, signals[i], hookd_signal, &h),
		    "signal event");
		evsignal_add(h.signals[i], NULL);
	}
	log_info("mode %s", mode_descs[h.mode].name);
	hookd_announce(&h);

	if (event_base_dispatch(h.base) == -1)
		log_warnx("the event loop failed");

	// evhttp_free closes every connection, which ends every hung request
	// through its close callback.
	evhttp_free(h.http);
	for (i = 0; i < 2; i++)
		event_free(h.signals[i]);
	event_base_free(h.base);
	libevent_global_shutdown();
	json_decref(h.records);
	if (h.out != NULL && fclose(h.out) == EOF)
		log_warn("cannot close \"%s\"", h.out_path);
	return 0;
}
