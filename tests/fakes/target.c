// SPDX-License-Identifier: Apache-2.0
//
// target: the fake HTTP server that the demo, the integration tests and the
// network-namespace lab probe.  What it does is chosen per path prefix and,
// optionally, per client network -- answer, delay, fail, hang, reset or
// refuse, with simulated loss and jitter, for good or for a window that
// the first request starts -- because this kernel has no netem and the lab
// needs one target to look different from different regions.
// Rules come from a JSON file (-f, re-read on SIGHUP) or from the control API
// under /_fake/ on the same listeners.  Everything runs on one libevent loop:
// nothing here may block it, hold a request or a connection beyond the bounds
// below, or use a byte of a request or a rules document before checking it.
// The control API has no authentication, so this must never listen anywhere
// but on loopback or inside a lab network.
#include <arpa/inet.h>
#include <dirent.h>
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
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
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

// Bounds.  Rule bodies and control request bodies share one limit so that a
// rules document that was accepted by PUT is always accepted from a file.
#define TARGET_MAX_LISTENERS 16
#define TARGET_MAX_RULES 1024
#define TARGET_MAX_PATH 1024
#define TARGET_MAX_BODY (64 * 1024)
#define TARGET_MAX_HEADERS (16 * 1024)
#define TARGET_MAX_RULES_FILE (1024 * 1024)
#define TARGET_MAX_WAIT_MS 600000
#define TARGET_MAX_CONNS 1000000
#define TARGET_DEFAULT_CONNS 4096
#define TARGET_DEFAULT_TIMEOUT 30
#define TARGET_BACKLOG 1024
#define TARGET_ACCEPT_PAUSE_MS 100
// A hung request ends when its client goes away; this bounds the ones whose
// client vanished without a FIN (a namespace link set down), which would
// otherwise be held forever.
#define TARGET_HANG_MAX_SEC 600
// Paths and client addresses come from the network; past this many distinct
// keys the rest are counted under "(other)" so stats memory stays bounded.
#define TARGET_STATS_MAX_KEYS 4096
#define TARGET_CTL_PREFIX "/_fake/"

enum action { ACT_ANSWER, ACT_DELAY, ACT_FAIL, ACT_HANG, ACT_RESET, ACT_REFUSE, ACT_COUNT };

// What each action accepts: `replies` actions take status and body, `waits`
// actions take delay_ms, jitter_ms and loss_pct.  A hang never ends by
// itself, so waiting and loss mean nothing for it and are rejected.
static const struct action_desc {
	const char *name;
	bool replies;
	bool waits;
	int default_status;
	int min_status;
	const char *default_body;
} action_descs[ACT_COUNT] = {
	[ACT_ANSWER] = { "answer", true, true, 200, 200, "ok" },
	[ACT_DELAY] = { "delay", true, true, 200, 200, "ok" },
	[ACT_FAIL] = { "fail", true, true, 503, 400, "fail" },
	[ACT_HANG] = { "hang", false, false, 0, 0, NULL },
	[ACT_RESET] = { "reset", false, true, 0, 0, NULL },
	[ACT_REFUSE] = { "refuse", false, true, 0, 0, NULL },
};

struct ipaddr {
	int family;        // AF_INET or AF_INET6
	uint8_t bytes[16]; // network order; the first 4 for AF_INET
};

struct cidr {
	struct ipaddr net;
	unsigned bits;
};

struct rule {
	char *path;
	size_t path_len;
	bool has_client;
	struct cidr client;
	enum action action;
	int status;
	char *body;
	size_t body_len;
	int delay_ms;
	int jitter_ms;
	double loss_pct;
	// A time-limited rule (duration_ms > 0) is armed until the first
	// request it is chosen for, which starts its window; once the window
	// is over it is spent and matches nothing.
	int duration_ms;
	bool started;
	int64_t started_us; // monotonic clock at that first request
};

struct ruleset {
	struct rule *rules;
	size_t count;
};

struct stats {
	json_t *by_path;   // path -> count
	json_t *by_client; // client address -> count
	json_int_t requests;
	json_int_t lost;
	json_int_t by_action[ACT_COUNT];
	int64_t since_us;
};

// A request whose answer waits: delayed, jittered or hung.  It lives until
// its timer fires or its connection goes away, whichever comes first, and
// is the close callback argument of its connection meanwhile.
struct pending {
	struct target *target;
	struct evhttp_request *req;
	struct evhttp_connection *evcon;
	struct event *timer;
	struct event *watch;
	enum action action;
	int status;
	char *body;
	size_t body_len;
};

struct target {
	struct event_base *base;
	struct evhttp *http;
	struct evconnlistener *listeners[TARGET_MAX_LISTENERS];
	size_t nlisteners;
	struct event *signals[3];
	struct ruleset *rules;
	struct stats stats;
	const char *rules_path;
	const char *pid_path;
	uint64_t rng_state;
	size_t max_conns;
	long base_fds; // descriptors open before any connection
	int spare_fd;  // see spare_release
	size_t npending;
};

static void errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

// libevent allocations report failure by NULL; like xmalloc, there is no
// recovery path worth having in a test fake.
static void *
ev_check(void *ptr, const char *what)
{
	if (ptr == NULL)
		fatalx("cannot allocate %s", what);
	return ptr;
}

// Copies text for a log line or an error message, replacing anything that
// is not printable ASCII so that request bytes cannot forge log lines.
static const char *
text_safe(const char *in, char *out, size_t outlen)
{
	size_t i;

	for (i = 0; in[i] != '\0' && i + 1 < outlen; i++)
		out[i] = in[i] > 0x20 && in[i] < 0x7f ? in[i] : '?';
	out[i] = '\0';
	return out;
}

static bool
text_is_token(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (s[i] <= 0x20 || s[i] >= 0x7f)
			return false;
	return true;
}

// Parses a decimal number with nothing around it; 0 or -1.
static int
parse_ulong(const char *s, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	if (s[0] < '0' || s[0] > '9')
		return -1;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v > max)
		return -1;
	*out = v;
	return 0;
}

// splitmix64: seeded so that a scenario that loses "30 %" loses the same
// requests on every run.
static uint64_t
rng_next(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

// Uniform in [0, 1).
static double
rng_unit(uint64_t *state)
{
	return (double)(rng_next(state) >> 11) * 0x1.0p-53;
}

static size_t
ipaddr_len(int family)
{
	return family == AF_INET ? 4 : 16;
}

// Clients on a dual-stack socket show up as ::ffff:a.b.c.d; they are matched
// and counted as the IPv4 address they are.
static int
ipaddr_from_sockaddr(const struct sockaddr *sa, struct ipaddr *out)
{
	static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	const struct sockaddr_in *sin;
	const struct sockaddr_in6 *sin6;

	memset(out, 0, sizeof(*out));
	switch (sa->sa_family) {
	case AF_INET:
		sin = (const struct sockaddr_in *)sa;
		out->family = AF_INET;
		memcpy(out->bytes, &sin->sin_addr, 4);
		return 0;
	case AF_INET6:
		sin6 = (const struct sockaddr_in6 *)sa;
		if (memcmp(sin6->sin6_addr.s6_addr, v4mapped, sizeof(v4mapped)) == 0) {
			out->family = AF_INET;
			memcpy(out->bytes, sin6->sin6_addr.s6_addr + 12, 4);
		} else {
			out->family = AF_INET6;
			memcpy(out->bytes, sin6->sin6_addr.s6_addr, 16);
		}
		return 0;
	default:
		return -1;
	}
}

static void
ipaddr_format(const struct ipaddr *addr, char *out, size_t outlen)
{
	if (inet_ntop(addr->family, addr->bytes, out, (socklen_t)outlen) == NULL)
		errf(out, outlen, "?");
}

// Accepts "ADDR" (a single host) or "ADDR/BITS" with no host bits set, so
// that a typo like 10.0.1.5/24 is reported instead of silently widened.
static int
cidr_parse(const char *text, struct cidr *out, char *err, size_t errlen)
{
	char addr[INET6_ADDRSTRLEN];
	const char *slash = strchr(text, '/');
	size_t addr_len = slash != NULL ? (size_t)(slash - text) : strlen(text);
	unsigned long bits;
	size_t max_bits, i;

	memset(out, 0, sizeof(*out));
	if (addr_len == 0 || addr_len >= sizeof(addr)) {
		errf(err, errlen, "\"%.64s\" is not an IP address or CIDR network", text);
		return -1;
	}
	memcpy(addr, text, addr_len);
	addr[addr_len] = '\0';
	if (inet_pton(AF_INET, addr, out->net.bytes) == 1) {
		out->net.family = AF_INET;
	} else if (inet_pton(AF_INET6, addr, out->net.bytes) == 1) {
		out->net.family = AF_INET6;
		if (IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)out->net.bytes)) {
			errf(err, errlen,
			    "write the IPv4-mapped address \"%.64s\" as "
			    "plain IPv4: clients are matched as IPv4",
			    text);
			return -1;
		}
	} else {
		errf(err, errlen, "\"%.64s\" is not an IP address or CIDR network", text);
		return -1;
	}
	max_bits = ipaddr_len(out->net.family) * 8;
	if (slash == NULL) {
		bits = max_bits;
	} else if (parse_ulong(slash + 1, max_bits, &bits) == -1) {
		errf(err, errlen, "prefix length in \"%.64s\" must be 0 to %zu", text, max_bits);
		return -1;
	}
	out->bits = (unsigned)bits;
	for (i = 0; i < max_bits; i++) {
		if (i >= bits && (out->net.bytes[i / 8] & (0x80 >> (i % 8)))) {
			errf(err, errlen,
			    "\"%.64s\" has host bits set after the "
			    "prefix",
			    text);
			return -1;
		}
	}
	return 0;
}

static bool
cidr_contains(const struct cidr *c, const struct ipaddr *addr)
{
	unsigned whole = c->bits / 8, rest = c->bits % 8;
	uint8_t mask;

	if (c->net.family != addr->family)
		return false;
	if (memcmp(c->net.bytes, addr->bytes, whole) != 0)
		return false;
	if (rest == 0)
		return true;
	mask = (uint8_t)(0xff << (8 - rest));
	return (c->net.bytes[whole] & mask) == (addr->bytes[whole] & mask);
}

static void
cidr_format(const struct cidr *c, char *out, size_t outlen)
{
	char addr[INET6_ADDRSTRLEN];

	ipaddr_format(&c->net, addr, sizeof(addr));
	errf(out, outlen, "%s/%u", addr, c->bits);
}

static void
rule_clear(struct rule *r)
{
	free(r->path);
	free(r->body);
	memset(r, 0, sizeof(*r));
}

static void
ruleset_free(struct ruleset *rs)
{
	size_t i;

	if (rs == NULL)
		return;
	for (i = 0; i < rs->count; i++)
		rule_clear(&rs->rules[i]);
	free(rs->rules);
	free(rs);
}

static const char *const rule_fields[] = { "path", "client", "action", "status", "body", "delay_ms",
	"jitter_ms", "loss_pct", "duration_ms", "started_mono_us", NULL };

// Reads an optional integer field; 1 if present, 0 if absent, -1 if wrong.
static int
rule_int(json_t *obj, const char *name, int min, int max, int *out, char *err, size_t errlen)
{
	json_t *v = json_object_get(obj, name);

	if (v == NULL)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
		errf(err, errlen, "field \"%s\" must be an integer from %d to %d", name, min, max);
		return -1;
	}
	*out = (int)json_integer_value(v);
	return 1;
}

// started_mono_us is what GET /_fake/rules writes for a time-limited rule
// whose window has started, so that a PUT of that document carries the
// window over instead of arming it again.  A start in the future would be
// a window that no request began.
static int
rule_started(json_t *obj, struct rule *r, char *err, size_t errlen)
{
	json_t *v = json_object_get(obj, "started_mono_us");
	int64_t now_us = clock_mono_us();

	if (v == NULL)
		return 0;
	if (r->duration_ms == 0) {
		errf(err, errlen, "field \"started_mono_us\" needs field \"duration_ms\"");
		return -1;
	}
	if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > now_us) {
		errf(err, errlen,
		    "field \"started_mono_us\" must be an integer from 0 "
		    "to the monotonic clock now (%lld)",
		    (long long)now_us);
		return -1;
	}
	r->started = true;
	r->started_us = (int64_t)json_integer_value(v);
	return 0;
}

static int
rule_parse(json_t *obj, struct rule *r, char *err, size_t errlen)
{
	const struct action_desc *desc;
	const char *key, *text;
	json_t *v;
	size_t i;
	int got;

	memset(r, 0, sizeof(*r));
	if (!json_is_object(obj)) {
		errf(err, errlen, "must be an object");
		return -1;
	}
	json_object_foreach(obj, key, v) {
		for (i = 0; rule_fields[i] != NULL; i++)
			if (strcmp(key, rule_fields[i]) == 0)
				break;
		if (rule_fields[i] == NULL) {
			errf(err, errlen, "unknown field \"%.64s\"", key);
			return -1;
		}
	}

	v = json_object_get(obj, "path");
	if (!json_is_string(v)) {
		errf(err, errlen, "field \"path\" is required and must be a string");
		return -1;
	}
	text = json_string_value(v);
	r->path_len = json_string_length(v);
	if (r->path_len == 0 || r->path_len > TARGET_MAX_PATH || text[0] != '/' ||
	    !text_is_token(text, r->path_len)) {
		errf(err, errlen,
		    "field \"path\" must start with \"/\" and be 1 to %d "
		    "bytes of printable ASCII without spaces",
		    TARGET_MAX_PATH);
		return -1;
	}
	if (strncmp(text, TARGET_CTL_PREFIX, strlen(TARGET_CTL_PREFIX)) == 0) {
		errf(err, errlen, "path \"%.64s\" is inside the control API \"%s\"", text,
		    TARGET_CTL_PREFIX);
		return -1;
	}
	r->path = xstrdup(text);

	v = json_object_get(obj, "client");
	if (v != NULL) {
		if (!json_is_string(v)) {
			errf(err, errlen, "field \"client\" must be a string");
			goto fail;
		}
		if (cidr_parse(json_string_value(v), &r->client, err, errlen) == -1)
			goto fail;
		r->has_client = true;
	}

	v = json_object_get(obj, "action");
	if (!json_is_string(v)) {
		errf(err, errlen, "field \"action\" is required and must be a string");
		goto fail;
	}
	for (i = 0; i < ACT_COUNT; i++)
		if (strcmp(json_string_value(v), action_descs[i].name) == 0)
			break;
	if (i == ACT_COUNT) {
		errf(err, errlen,
		    "unknown action \"%.64s\"; expected answer, delay, "
		    "fail, hang, reset or refuse",
		    json_string_value(v));
		goto fail;
	}
	r->action = (enum action)i;
	desc = &action_descs[i];

	for (i = 0; rule_fields[i] != NULL; i++) {
		bool reply_field = strcmp(rule_fields[i], "status") == 0 ||
		    strcmp(rule_fields[i], "body") == 0;
		bool wait_field = strcmp(rule_fields[i], "delay_ms") == 0 ||
		    strcmp(rule_fields[i], "jitter_ms") == 0 ||
		    strcmp(rule_fields[i], "loss_pct") == 0;

		if (json_object_get(obj, rule_fields[i]) == NULL)
			continue;
		if ((reply_field && !desc->replies) || (wait_field && !desc->waits)) {
			errf(err, errlen,
			    "field \"%s\" means nothing for action "
			    "\"%s\"",
			    rule_fields[i], desc->name);
			goto fail;
		}
	}

	r->status = desc->default_status;
	if (desc->replies &&
	    rule_int(obj, "status", desc->min_status, 599, &r->status, err, errlen) == -1)
		goto fail;

	if (desc->replies) {
		v = json_object_get(obj, "body");
		if (v != NULL && !json_is_string(v)) {
			errf(err, errlen, "field \"body\" must be a string");
			goto fail;
		}
		if (v != NULL && json_string_length(v) > TARGET_MAX_BODY) {
			errf(err, errlen, "field \"body\" is longer than %d bytes",
			    TARGET_MAX_BODY);
			goto fail;
		}
		text = v != NULL ? json_string_value(v) : desc->default_body;
		r->body = xstrdup(text);
		r->body_len = strlen(text);
	}

	got = rule_int(obj, "delay_ms", 0, TARGET_MAX_WAIT_MS, &r->delay_ms, err, errlen);
	if (got == -1)
		goto fail;
	if (got == 0 && r->action == ACT_DELAY) {
		errf(err, errlen, "action \"delay\" needs field \"delay_ms\"");
		goto fail;
	}
	if (rule_int(obj, "jitter_ms", 0, TARGET_MAX_WAIT_MS, &r->jitter_ms, err, errlen) == -1)
		goto fail;

	v = json_object_get(obj, "loss_pct");
	if (v != NULL) {
		if (!json_is_number(v) || json_number_value(v) < 0 || json_number_value(v) > 100) {
			errf(err, errlen,
			    "field \"loss_pct\" must be a number from 0 "
			    "to 100");
			goto fail;
		}
		r->loss_pct = json_number_value(v);
	}

	if (rule_int(obj, "duration_ms", 1, TARGET_MAX_WAIT_MS, &r->duration_ms, err, errlen) ==
		-1 ||
	    rule_started(obj, r, err, errlen) == -1)
		goto fail;
	return 0;

fail:
	rule_clear(r);
	return -1;
}

static bool
rule_same_match(const struct rule *a, const struct rule *b)
{
	if (a->path_len != b->path_len || memcmp(a->path, b->path, a->path_len) != 0)
		return false;
	if (a->has_client != b->has_client)
		return false;
	return !a->has_client ||
	    (a->client.bits == b->client.bits && a->client.net.family == b->client.net.family &&
		memcmp(a->client.net.bytes, b->client.net.bytes, 16) == 0);
}

// Parses a whole rules document; nothing of it is used unless all of it is
// valid, which is what makes PUT and SIGHUP replace rules atomically.  On
// error, *line is the document line for a syntax error and 0 otherwise.
static struct ruleset *
ruleset_parse(const char *text, size_t len, int *line, char *err, size_t errlen)
{
	struct ruleset *rs = NULL;
	json_error_t jerr;
	json_t *doc, *item;
	char why[256];
	size_t i, j;

	*line = 0;
	doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (doc == NULL) {
		*line = jerr.line;
		errf(err, errlen, "invalid JSON: %s", jerr.text);
		return NULL;
	}
	if (!json_is_array(doc)) {
		errf(err, errlen, "rules must be a JSON array of objects");
		goto fail;
	}
	if (json_array_size(doc) > TARGET_MAX_RULES) {
		errf(err, errlen, "%zu rules is more than the limit of %d", json_array_size(doc),
		    TARGET_MAX_RULES);
		goto fail;
	}
	rs = xcalloc(1, sizeof(*rs));
	rs->rules = xcalloc(json_array_size(doc) + 1, sizeof(*rs->rules));
	json_array_foreach(doc, i, item) {
		if (rule_parse(item, &rs->rules[i], why, sizeof(why)) == -1) {
			errf(err, errlen, "rule %zu: %s", i + 1, why);
			goto fail;
		}
		rs->count++;
		for (j = 0; j < i; j++) {
			if (rule_same_match(&rs->rules[j], &rs->rules[i])) {
				errf(err, errlen,
				    "rule %zu: same path and client as "
				    "rule %zu",
				    i + 1, j + 1);
				goto fail;
			}
		}
	}
	json_decref(doc);
	return rs;

fail:
	ruleset_free(rs);
	json_decref(doc);
	return NULL;
}

// The canonical form: every default written out, clients as networks.  It
// parses back to the same rules, so GET then PUT is a no-op.
static json_t *
ruleset_to_json(const struct ruleset *rs)
{
	json_t *arr = json_array();
	char client[INET6_ADDRSTRLEN + 8];
	size_t i;

	for (i = 0; i < rs->count; i++) {
		const struct rule *r = &rs->rules[i];
		json_t *obj = json_object();

		json_object_set_new(obj, "path", json_string(r->path));
		if (r->has_client) {
			cidr_format(&r->client, client, sizeof(client));
			json_object_set_new(obj, "client", json_string(client));
		}
		json_object_set_new(obj, "action", json_string(action_descs[r->action].name));
		if (action_descs[r->action].replies) {
			json_object_set_new(obj, "status", json_integer(r->status));
			json_object_set_new(obj, "body", json_stringn(r->body, r->body_len));
		}
		if (r->delay_ms > 0 || r->action == ACT_DELAY)
			json_object_set_new(obj, "delay_ms", json_integer(r->delay_ms));
		if (r->jitter_ms > 0)
			json_object_set_new(obj, "jitter_ms", json_integer(r->jitter_ms));
		if (r->loss_pct > 0)
			json_object_set_new(obj, "loss_pct", json_real(r->loss_pct));
		if (r->duration_ms > 0)
			json_object_set_new(obj, "duration_ms", json_integer(r->duration_ms));
		if (r->started)
			json_object_set_new(obj, "started_mono_us",
			    json_integer((json_int_t)r->started_us));
		json_array_append_new(arr, obj);
	}
	return ev_check(arr, "rules JSON");
}

static bool
rule_spent(const struct rule *r, int64_t now_us)
{
	return r->duration_ms > 0 && r->started &&
	    now_us - r->started_us >= (int64_t)r->duration_ms * 1000;
}

// The most specific client network wins, then the longest path prefix, then
// the earlier rule: a region-specific rule for "/" beats a catch-all rule for
// "/health", which is what lets each region see its own world.  A spent
// time-limited rule is passed over as if it were absent.
static struct rule *
ruleset_match(struct ruleset *rs, const struct ipaddr *client, const char *path, int64_t now_us)
{
	struct rule *best = NULL;
	long best_bits = -2;
	size_t best_len = 0, i;

	for (i = 0; i < rs->count; i++) {
		struct rule *r = &rs->rules[i];
		long bits = -1;

		if (rule_spent(r, now_us))
			continue;
		if (r->has_client) {
			if (client == NULL || !cidr_contains(&r->client, client))
				continue;
			bits = r->client.bits;
		}
		if (strncmp(path, r->path, r->path_len) != 0)
			continue;
		if (bits > best_bits || (bits == best_bits && r->path_len > best_len)) {
			best = r;
			best_bits = bits;
			best_len = r->path_len;
		}
	}
	return best;
}

static void
stats_init(struct stats *s)
{
	memset(s, 0, sizeof(*s));
	s->by_path = ev_check(json_object(), "stats");
	s->by_client = ev_check(json_object(), "stats");
	s->since_us = clock_wall_us();
}

static void
stats_free(struct stats *s)
{
	json_decref(s->by_path);
	json_decref(s->by_client);
	memset(s, 0, sizeof(*s));
}

static void
stats_bump(json_t *map, const char *key)
{
	json_t *count = json_object_get(map, key);

	if (count == NULL && json_object_size(map) >= TARGET_STATS_MAX_KEYS) {
		key = "(other)";
		count = json_object_get(map, key);
	}
	if (count != NULL)
		json_integer_set(count, json_integer_value(count) + 1);
	else if (json_object_set_new(map, key, json_integer(1)) == -1)
		log_warnx("cannot count a request under \"%s\"", key);
}

// path and client are already printable ASCII (see target_handle).
static void
stats_count(struct stats *s, const char *path, const char *client, enum action action, bool lost)
{
	s->requests++;
	s->by_action[action]++;
	if (lost)
		s->lost++;
	stats_bump(s->by_path, path);
	stats_bump(s->by_client, client);
}

// The descriptor limit is what bounds connections (see
// target_limit_descriptors), so the few moments that need a descriptor of
// their own -- reading the rules file, counting descriptors, a placeholder
// for a reset -- borrow this spare one instead of taking a connection's.
// They are synchronous, so one spare is enough.
static void
spare_release(struct target *t)
{
	if (t->spare_fd >= 0)
		close(t->spare_fd);
	t->spare_fd = -1;
}

static void
spare_reserve(struct target *t)
{
	if (t->spare_fd < 0)
		t->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (t->spare_fd < 0)
		log_warn("cannot reopen the spare descriptor");
}

static int
int_cmp(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	return (x > y) - (x < y);
}

// Lists the open descriptors, the spare included, in ascending order into
// *out (the caller frees it); returns how many, or -1 without /proc.
static long
descriptors_list(struct target *t, int **out)
{
	struct dirent *de;
	unsigned long fd;
	size_t count = 0, cap = 16;
	int *fds = xreallocarray(NULL, cap, sizeof(*fds));
	DIR *dir;

	spare_release(t);
	dir = opendir("/proc/self/fd");
	while (dir != NULL && (de = readdir(dir)) != NULL) {
		if (parse_ulong(de->d_name, INT_MAX, &fd) == -1 || (int)fd == dirfd(dir))
			continue;
		if (count + 1 >= cap) {
			cap *= 2;
			fds = xreallocarray(fds, cap, sizeof(*fds));
		}
		fds[count++] = (int)fd;
	}
	if (dir != NULL)
		closedir(dir);
	spare_reserve(t);
	if (dir == NULL) {
		free(fds);
		*out = NULL;
		return -1;
	}
	if (t->spare_fd >= 0)
		fds[count++] = t->spare_fd;
	qsort(fds, count, sizeof(*fds), int_cmp);
	*out = fds;
	return (long)count;
}

static json_t *
stats_to_json(struct target *t)
{
	const struct stats *s = &t->stats;
	json_t *actions = json_object();
	int *fd_list;
	long fds = descriptors_list(t, &fd_list);
	char since[40];
	size_t i;

	for (i = 0; i < ACT_COUNT; i++)
		json_object_set_new(actions, action_descs[i].name, json_integer(s->by_action[i]));
	free(fd_list);
	clock_iso8601(s->since_us, since, sizeof(since));
	// One key/value pair a line: clang-format would pack them.
	// clang-format off
	return ev_check(json_pack("{s:s, s:I, s:I, s:o, s:O, s:O, s:I, s:I, s:I}",
	    "since", since,
	    "requests", (json_int_t)s->requests,
	    "lost", (json_int_t)s->lost,
	    "by_action", actions,
	    "by_path", s->by_path,
	    "by_client", s->by_client,
	    "pending", (json_int_t)t->npending,
	    "connections", (json_int_t)(fds >= 0 ? fds - t->base_fds : -1),
	    "connections_max", (json_int_t)t->max_conns), "stats JSON");
	// clang-format on
}

static void
reply_text(struct evhttp_request *req, int status, const char *body, size_t len)
{
	struct evbuffer *out = evhttp_request_get_output_buffer(req);

	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
	    "text/plain; charset=utf-8");
	evbuffer_add(out, body, len);
	evhttp_send_reply(req, status, NULL, NULL);
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

static void
target_set_rules(struct target *t, struct ruleset *rs, const char *origin)
{
	ruleset_free(t->rules);
	t->rules = rs;
	log_info("rules from %s: %zu rules in force", origin, rs->count);
}

// A small local file read with blocking I/O: acceptable on the loop because
// it happens only at start and on SIGHUP.
static struct ruleset *
target_read_rules(struct target *t, const char *path, char *err, size_t errlen)
{
	struct ruleset *rs = NULL;
	struct stat st;
	char why[512];
	char *text = NULL;
	size_t got = 0;
	ssize_t n;
	int fd, line;

	spare_release(t);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd == -1) {
		errf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		spare_reserve(t);
		return NULL;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) || st.st_size > TARGET_MAX_RULES_FILE) {
		errf(err, errlen, "%s: not a regular file of at most %d bytes", path,
		    TARGET_MAX_RULES_FILE);
		goto done;
	}
	text = xmalloc((size_t)st.st_size + 1);
	while (got < (size_t)st.st_size) {
		n = read(fd, text + got, (size_t)st.st_size - got);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			errf(err, errlen, "%s: cannot read: %s", path,
			    n == 0 ? "file shrank while reading" : strerror(errno));
			goto done;
		}
		got += (size_t)n;
	}
	rs = ruleset_parse(text, got, &line, why, sizeof(why));
	if (rs == NULL && line > 0)
		errf(err, errlen, "%s:%d: %s", path, line, why);
	else if (rs == NULL)
		errf(err, errlen, "%s: %s", path, why);
done:
	free(text);
	close(fd);
	spare_reserve(t);
	return rs;
}

static void
listener_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	evconnlistener_enable(arg);
}

// accept() failed for a reason that waiting may cure: out of descriptors
// (the -c bound, see target_limit_descriptors) or kernel memory.  The
// listening socket stays readable, so it must pause or the loop would spin;
// the kernel's backlog holds new clients meanwhile.
static void
listener_error_cb(struct evconnlistener *lev, void *arg)
{
	static int64_t last_warned_us;
	struct timeval tv = clock_tv(TARGET_ACCEPT_PAUSE_MS * 1000);
	int err = EVUTIL_SOCKET_ERROR();
	int64_t now_us = clock_mono_us();

	(void)arg;
	if (now_us - last_warned_us >= 10 * 1000000) {
		log_warnx("cannot accept connections: %s; pausing for %d ms (warned "
			  "at most every 10 s)",
		    evutil_socket_error_to_string(err), TARGET_ACCEPT_PAUSE_MS);
		last_warned_us = now_us;
	}
	evconnlistener_disable(lev);
	if (event_base_once(evconnlistener_get_base(lev), -1, EV_TIMEOUT, listener_resume_cb, lev,
		&tv) == -1)
		fatalx("cannot schedule resuming a listener");
}

// libevent 2.1's evhttp has no connection limit and no hook on connection
// close, but every connection is a descriptor.  RLIMIT_NOFILE caps
// descriptor numbers, not their count, so the limit is placed where exactly
// -c numbers below it are free; listener_error_cb then pauses accepting at
// the bound.
static void
target_limit_descriptors(struct target *t, bool explicit_limit)
{
	struct rlimit rl;
	rlim_t want = t->max_conns;
	int *fds;
	long i;

	t->base_fds = descriptors_list(t, &fds);
	if (t->base_fds < 0)
		fatal("cannot list open descriptors in /proc/self/fd");
	for (i = 0; i < t->base_fds; i++)
		if ((rlim_t)fds[i] < want)
			want++;
	free(fds);
	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		fatal("cannot read the descriptor limit");
	if (rl.rlim_max != RLIM_INFINITY && want > rl.rlim_max) {
		if (explicit_limit || want - t->max_conns >= rl.rlim_max)
			fatalx("-c %zu needs a descriptor limit of %llu, more than "
			       "the hard limit of %llu",
			    t->max_conns, (unsigned long long)want,
			    (unsigned long long)rl.rlim_max);
		t->max_conns -= (size_t)(want - rl.rlim_max);
		want = rl.rlim_max;
		log_info("at most %zu connections: the hard descriptor limit is "
			 "%llu",
		    t->max_conns, (unsigned long long)rl.rlim_max);
	}
	rl.rlim_cur = want;
	if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
		fatal("cannot set the descriptor limit to %llu", (unsigned long long)want);
}

static evutil_socket_t
conn_fd(struct evhttp_connection *evcon)
{
	struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);

	return bev != NULL ? bufferevent_getfd(bev) : -1;
}

// Closing with SO_LINGER 0 sends an RST; but evhttp would first shutdown()
// the socket (a FIN) and close it later.  Putting a placeholder socket on
// the same descriptor number closes the real one at once, and leaves evhttp
// a harmless descriptor to shut down and close instead of a number that a
// new connection may have reused.
static void
conn_reset(struct target *t, struct evhttp_connection *evcon)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	evutil_socket_t fd = conn_fd(evcon);

	if (fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) == 0) {
		int placeholder;

		spare_release(t);
		placeholder = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (placeholder == -1) {
			log_warn("cannot make a placeholder socket; the reset "
				 "follows a FIN");
		} else {
			if (dup3(placeholder, fd, O_CLOEXEC) == -1)
				log_warn("cannot reset the connection at once");
			close(placeholder);
		}
		spare_reserve(t);
	} else if (fd >= 0) {
		log_warn("cannot set SO_LINGER for a reset");
	}
	evhttp_connection_free(evcon);
}

static void
action_perform(struct target *t, struct evhttp_request *req, struct evhttp_connection *evcon,
    enum action action, int status, const char *body, size_t body_len)
{
	switch (action) {
	case ACT_ANSWER:
	case ACT_DELAY:
	case ACT_FAIL:
		reply_text(req, status, body, body_len);
		break;
	case ACT_RESET:
		conn_reset(t, evcon);
		break;
	case ACT_HANG:
	case ACT_REFUSE:
	case ACT_COUNT:
		evhttp_connection_free(evcon);
		break;
	}
}

static void
pending_free(struct pending *p)
{
	p->target->npending--;
	evhttp_connection_set_closecb(p->evcon, NULL, NULL);
	event_free(p->timer);
	if (p->watch != NULL)
		event_free(p->watch);
	free(p->body);
	free(p);
}

// The connection is going away (client gone, shutdown, or our own close).
// evhttp frees the request afterwards unless it already detached it from
// the connection, in which case it is ours to free.
static void
pending_closecb(struct evhttp_connection *evcon, void *arg)
{
	struct pending *p = arg;
	struct evhttp_request *req = p->req;
	bool detached = evhttp_request_get_connection(req) == NULL;

	(void)evcon;
	pending_free(p);
	if (detached)
		evhttp_request_free(req);
}

static void
pending_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pending *p = arg;
	struct target *t = p->target;
	struct evhttp_request *req = p->req;
	struct evhttp_connection *evcon = p->evcon;
	enum action action = p->action;
	int status = p->status;
	size_t body_len = p->body_len;
	char *body = p->body;

	(void)fd;
	(void)what;
	p->body = NULL;
	pending_free(p);
	if (action == ACT_HANG)
		log_info("closing a connection hung for %d s", TARGET_HANG_MAX_SEC);
	action_perform(t, req, evcon, action, status, body, body_len);
	free(body);
}

// evhttp stops reading while a request waits for its answer, so it would
// never notice the client hanging up; this watch does.  A hung request
// drains and drops whatever else the client sends; a delayed one stops
// watching if the client pipelines, because evhttp needs those bytes and
// the delay ends by itself.
static void
pending_watch_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pending *p = arg;
	struct evhttp_connection *evcon = p->evcon;
	char scratch[4096];
	ssize_t n;
	int flags = MSG_DONTWAIT | (p->action == ACT_HANG ? 0 : MSG_PEEK);

	(void)what;
	n = recv(fd, scratch, sizeof(scratch), flags);
	if (n > 0) {
		if (p->action != ACT_HANG)
			event_del(p->watch);
		return;
	}
	if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	pending_free(p);
	evhttp_connection_free(evcon);
}

static void
pending_start(struct target *t, struct evhttp_request *req, struct evhttp_connection *evcon,
    const struct rule *r, enum action action, int64_t wait_ms)
{
	struct pending *p = xcalloc(1, sizeof(*p));
	struct timeval tv;
	evutil_socket_t fd = conn_fd(evcon);

	p->target = t;
	p->req = req;
	p->evcon = evcon;
	p->action = action;
	if (action_descs[action].replies) {
		p->status = r != NULL ? r->status : 200;
		p->body = xstrdup(r != NULL ? r->body : "ok");
		p->body_len = r != NULL ? r->body_len : 2;
	}
	p->timer = ev_check(evtimer_new(t->base, pending_timer_cb, p), "timer");
	if (fd >= 0) {
		p->watch = ev_check(
		    event_new(t->base, fd, EV_READ | EV_PERSIST, pending_watch_cb, p), "event");
		event_add(p->watch, NULL);
	}
	tv = clock_tv(action == ACT_HANG ? (int64_t)TARGET_HANG_MAX_SEC * 1000000 : wait_ms * 1000);
	evtimer_add(p->timer, &tv);
	evhttp_connection_set_closecb(evcon, pending_closecb, p);
	t->npending++;
}

static void
ctl_put_rules(struct target *t, struct evhttp_request *req)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	struct ruleset *rs;
	char err[512];
	int line;

	if (len > TARGET_MAX_BODY) {
		reply_error(req, 413, "rules are limited to %d bytes", TARGET_MAX_BODY);
		return;
	}
	if (len == 0) {
		reply_error(req, 400, "the body must be a JSON array of rules");
		return;
	}
	rs = ruleset_parse((const char *)evbuffer_pullup(in, -1), len, &line, err, sizeof(err));
	if (rs == NULL) {
		if (line > 0)
			reply_error(req, 400, "line %d: %s", line, err);
		else
			reply_error(req, 400, "%s", err);
		return;
	}
	target_set_rules(t, rs, "PUT " TARGET_CTL_PREFIX "rules");
	reply_json(req, 200,
	    ev_check(json_pack("{s:I}", "rules", (json_int_t)rs->count), "reply JSON"));
}

static void
reply_not_allowed(struct evhttp_request *req, const char *allow)
{
	evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", allow);
	reply_error(req, 405, "method not allowed; use %s", allow);
}

static void
ctl_handle(struct target *t, struct evhttp_request *req, const char *path)
{
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	char safe[128];

	if (strcmp(path, TARGET_CTL_PREFIX "rules") == 0) {
		if (cmd == EVHTTP_REQ_GET)
			reply_json(req, 200, ruleset_to_json(t->rules));
		else if (cmd == EVHTTP_REQ_PUT)
			ctl_put_rules(t, req);
		else
			reply_not_allowed(req, "GET, PUT");
	} else if (strcmp(path, TARGET_CTL_PREFIX "stats") == 0) {
		if (cmd == EVHTTP_REQ_GET)
			reply_json(req, 200, stats_to_json(t));
		else
			reply_not_allowed(req, "GET");
	} else if (strcmp(path, TARGET_CTL_PREFIX "reset-stats") == 0) {
		if (cmd == EVHTTP_REQ_POST) {
			stats_free(&t->stats);
			stats_init(&t->stats);
			reply_json(req, 200, ev_check(json_pack("{s:b}", "ok", 1), "reply JSON"));
		} else {
			reply_not_allowed(req, "POST");
		}
	} else {
		reply_error(req, 404,
		    "no control endpoint \"%s\"; there are "
		    "rules, stats and reset-stats",
		    text_safe(path, safe, sizeof(safe)));
	}
}

static const char *
method_name(enum evhttp_cmd_type cmd)
{
	switch (cmd) {
	case EVHTTP_REQ_GET:
		return "GET";
	case EVHTTP_REQ_POST:
		return "POST";
	case EVHTTP_REQ_HEAD:
		return "HEAD";
	case EVHTTP_REQ_PUT:
		return "PUT";
	case EVHTTP_REQ_DELETE:
		return "DELETE";
	case EVHTTP_REQ_OPTIONS:
		return "OPTIONS";
	case EVHTTP_REQ_PATCH:
		return "PATCH";
	default:
		return "?";
	}
}

static void
target_handle(struct evhttp_request *req, void *arg)
{
	struct target *t = arg;
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);
	struct ipaddr client;
	bool have_client = false, lost = false;
	char client_text[INET6_ADDRSTRLEN], path_key[TARGET_MAX_PATH + 1];
	struct rule *r;
	enum action action;
	int64_t wait_ms = 0, now_us = clock_mono_us();

	if (path == NULL || path[0] == '\0')
		path = "/";
	if (strncmp(path, TARGET_CTL_PREFIX, strlen(TARGET_CTL_PREFIX)) == 0) {
		ctl_handle(t, req, path);
		return;
	}

	if (getpeername(conn_fd(evcon), (struct sockaddr *)&ss, &sslen) == 0 &&
	    ipaddr_from_sockaddr((struct sockaddr *)&ss, &client) == 0) {
		have_client = true;
		ipaddr_format(&client, client_text, sizeof(client_text));
	} else {
		errf(client_text, sizeof(client_text), "(unknown)");
	}

	r = ruleset_match(t->rules, have_client ? &client : NULL, path, now_us);
	// The window starts at the request, not when the rule was set, so a
	// test can arm a blip and let the first probe to arrive begin it.
	if (r != NULL && r->duration_ms > 0 && !r->started) {
		r->started = true;
		r->started_us = now_us;
		log_info("rule for \"%.200s\" applies for the next %d ms", r->path, r->duration_ms);
	}
	action = r != NULL ? r->action : ACT_ANSWER;
	if (r != NULL && r->loss_pct > 0 && rng_unit(&t->rng_state) * 100 < r->loss_pct) {
		lost = true;
		action = ACT_HANG;
	}
	if (r != NULL && action != ACT_HANG) {
		wait_ms = r->delay_ms;
		if (r->jitter_ms > 0)
			wait_ms += (int64_t)(rng_next(&t->rng_state) %
			    ((uint64_t)r->jitter_ms + 1));
	}

	if (strlen(path) > TARGET_MAX_PATH || !text_is_token(path, strlen(path)))
		errf(path_key, sizeof(path_key), "(invalid)");
	else
		errf(path_key, sizeof(path_key), "%s", path);
	stats_count(&t->stats, path_key, client_text, action, lost);
	log_info("%s \"%.200s\" from %s: %s%s", method_name(evhttp_request_get_command(req)),
	    path_key, client_text, action_descs[action].name, lost ? " (lost)" : "");

	if (action == ACT_HANG || wait_ms > 0)
		pending_start(t, req, evcon, r, action, wait_ms);
	else if (r != NULL)
		action_perform(t, req, evcon, action, r->status, r->body, r->body_len);
	else
		action_perform(t, req, evcon, action, 200, "ok", 2);
}

// Parses "ADDR:PORT" or "[ADDR6]:PORT"; numeric addresses only, so that a
// test never depends on a resolver.
static int
listen_parse(const char *spec, struct sockaddr_storage *ss, socklen_t *sslen)
{
	char addr[INET6_ADDRSTRLEN];
	const char *colon, *host = spec;
	size_t host_len;
	unsigned long port;
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
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
	if (host_len == 0 || host_len >= sizeof(addr) || parse_ulong(colon + 1, 65535, &port) == -1)
		return -1;
	memcpy(addr, host, host_len);
	addr[host_len] = '\0';
	if (spec[0] != '[' && inet_pton(AF_INET, addr, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		*sslen = sizeof(*sin);
		return 0;
	}
	if (spec[0] == '[' && inet_pton(AF_INET6, addr, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		*sslen = sizeof(*sin6);
		return 0;
	}
	return -1;
}

static void
target_listen(struct target *t, const char *spec)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	struct evconnlistener *lev;
	unsigned flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_REUSEABLE;

	if (t->nlisteners == TARGET_MAX_LISTENERS)
		fatalx("more than %d listeners", TARGET_MAX_LISTENERS);
	if (listen_parse(spec, &ss, &sslen) == -1)
		fatalx("invalid listen address \"%s\"; expected ADDR:PORT or "
		       "[ADDR6]:PORT with a numeric address",
		    spec);
	// One address family per socket: a client's family then never depends
	// on how the listener was bound.
	if (ss.ss_family == AF_INET6)
		flags |= LEV_OPT_BIND_IPV6ONLY;
	lev = evconnlistener_new_bind(t->base, NULL, NULL, flags, TARGET_BACKLOG,
	    (struct sockaddr *)&ss, (int)sslen);
	if (lev == NULL)
		fatal("cannot listen on \"%s\"", spec);
	if (evhttp_bind_listener(t->http, lev) == NULL) {
		evconnlistener_free(lev);
		fatalx("cannot serve HTTP on \"%s\"", spec);
	}
	evconnlistener_set_error_cb(lev, listener_error_cb);
	t->listeners[t->nlisteners++] = lev;
}

// Prints one "listening on ADDR:PORT" line per listener, with the port the
// kernel chose for port 0; tests wait for these lines, so they come only
// after every listener is bound and the pid file is written.
static void
target_announce(struct target *t)
{
	struct sockaddr_storage bound;
	socklen_t boundlen;
	char text[INET6_ADDRSTRLEN];
	struct ipaddr addr;
	size_t i;

	for (i = 0; i < t->nlisteners; i++) {
		boundlen = sizeof(bound);
		if (getsockname(evconnlistener_get_fd(t->listeners[i]), (struct sockaddr *)&bound,
			&boundlen) == -1)
			fatal("cannot read a listener address");
		ipaddr_from_sockaddr((struct sockaddr *)&bound, &addr);
		ipaddr_format(&addr, text, sizeof(text));
		if (bound.ss_family == AF_INET6)
			printf("listening on [%s]:%u\n", text,
			    ntohs(((struct sockaddr_in6 *)&bound)->sin6_port));
		else
			printf("listening on %s:%u\n", text,
			    ntohs(((struct sockaddr_in *)&bound)->sin_port));
	}
	if (fflush(stdout) == EOF)
		fatal("cannot write to standard output");
}

static void
target_write_pidfile(const char *path)
{
	FILE *f = fopen(path, "we");

	if (f == NULL)
		fatal("cannot create pid file \"%s\"", path);
	fprintf(f, "%ld\n", (long)getpid());
	if (fclose(f) == EOF)
		fatal("cannot write pid file \"%s\"", path);
}

static void
target_signal(evutil_socket_t sig, short what, void *arg)
{
	struct target *t = arg;
	struct ruleset *rs;
	char err[768];

	(void)what;
	if (sig != SIGHUP) {
		log_info("exiting on signal %d", (int)sig);
		event_base_loopexit(t->base, NULL);
		return;
	}
	if (t->rules_path == NULL) {
		log_warnx("ignoring SIGHUP: no rules file was given with -f");
		return;
	}
	rs = target_read_rules(t, t->rules_path, err, sizeof(err));
	if (rs == NULL) {
		log_warnx("keeping the rules in force: %s", err);
		return;
	}
	target_set_rules(t, rs, t->rules_path);
}

static noreturn void
usage(FILE *out, int status)
{
	fprintf(out,
	    "usage: target -l ADDR:PORT [-l ADDR:PORT ...] [-f rules.json] "
	    "[-p pidfile] [-q]\n"
	    "              [-c max_connections] [-t io_timeout_s] [-s seed] [-h]\n");
	exit(status);
}

int
main(int argc, char **argv)
{
	static const int signals[] = { SIGHUP, SIGTERM, SIGINT };
	const char *specs[TARGET_MAX_LISTENERS];
	struct target t;
	unsigned long num, timeout_sec = TARGET_DEFAULT_TIMEOUT;
	size_t nspecs = 0, i;
	bool quiet = false, explicit_limit = false;
	char err[768];
	int ch;

	memset(&t, 0, sizeof(t));
	t.spare_fd = -1;
	t.max_conns = TARGET_DEFAULT_CONNS;
	t.rng_state = 1;
	log_init("target", LOG_LEVEL_INFO);
	while ((ch = getopt(argc, argv, "c:f:hl:p:qs:t:")) != -1) {
		switch (ch) {
		case 'c':
			if (parse_ulong(optarg, TARGET_MAX_CONNS, &num) == -1 || num == 0)
				fatalx("-c must be 1 to %d", TARGET_MAX_CONNS);
			t.max_conns = num;
			explicit_limit = true;
			break;
		case 'f':
			t.rules_path = optarg;
			break;
		case 'l':
			if (nspecs == TARGET_MAX_LISTENERS)
				fatalx("at most %d -l options", TARGET_MAX_LISTENERS);
			specs[nspecs++] = optarg;
			break;
		case 'p':
			t.pid_path = optarg;
			break;
		case 'q':
			quiet = true;
			break;
		case 's':
			if (parse_ulong(optarg, ULONG_MAX, &num) == -1)
				fatalx("-s must be a decimal number");
			t.rng_state = num;
			break;
		case 't':
			if (parse_ulong(optarg, 3600, &num) == -1 || num == 0)
				fatalx("-t must be 1 to 3600 seconds");
			timeout_sec = num;
			break;
		case 'h':
			usage(stdout, 0);
			break;
		default:
			usage(stderr, 1);
		}
	}
	if (optind != argc || nspecs == 0)
		usage(stderr, 1);
	if (quiet)
		log_set_level(LOG_LEVEL_WARN);
	// A client that hangs up mid-reply must not kill the server.
	signal(SIGPIPE, SIG_IGN);

	stats_init(&t.stats);
	if (t.rules_path != NULL) {
		t.rules = target_read_rules(&t, t.rules_path, err, sizeof(err));
		if (t.rules == NULL)
			fatalx("%s", err);
	} else {
		t.rules = xcalloc(1, sizeof(*t.rules));
	}

	// libevent's default monotonic clock is CLOCK_MONOTONIC_COARSE (4 ms
	// steps here): delays could end early and tests measure them.
	{
		struct event_config *cfg = ev_check(event_config_new(), "event config");

		event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
		t.base = ev_check(event_base_new_with_config(cfg), "event base");
		event_config_free(cfg);
	}
	t.http = ev_check(evhttp_new(t.base), "HTTP server");
	evhttp_set_timeout(t.http, (int)timeout_sec);
	evhttp_set_max_body_size(t.http, TARGET_MAX_BODY);
	evhttp_set_max_headers_size(t.http, TARGET_MAX_HEADERS);
	evhttp_set_allowed_methods(t.http,
	    EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT |
		EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
	evhttp_set_gencb(t.http, target_handle, &t);
	for (i = 0; i < nspecs; i++)
		target_listen(&t, specs[i]);
	for (i = 0; i < 3; i++) {
		t.signals[i] = ev_check(evsignal_new(t.base, signals[i], target_signal, &t),
		    "signal event");
		evsignal_add(t.signals[i], NULL);
	}
	if (t.pid_path != NULL)
		target_write_pidfile(t.pid_path);
	spare_reserve(&t);
	if (t.spare_fd < 0)
		fatal("cannot open the spare descriptor");
	target_limit_descriptors(&t, explicit_limit);
	log_info("rules: %zu, max connections: %zu, I/O timeout: %lu s", t.rules->count,
	    t.max_conns, timeout_sec);
	target_announce(&t);

	if (event_base_dispatch(t.base) == -1)
		log_warnx("the event loop failed");

	// evhttp_free closes every connection, which ends every pending
	// request through its close callback.
	evhttp_free(t.http);
	for (i = 0; i < 3; i++)
		event_free(t.signals[i]);
	event_base_free(t.base);
	libevent_global_shutdown();
	if (t.npending != 0)
		log_warnx("exiting with %zu pending requests unaccounted for", t.npending);
	ruleset_free(t.rules);
	stats_free(&t.stats);
	spare_release(&t);
	if (t.pid_path != NULL && unlink(t.pid_path) == -1)
		log_warn("cannot remove pid file \"%s\"", t.pid_path);
	return 0;
}
