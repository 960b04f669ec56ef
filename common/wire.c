// SPDX-License-Identifier: Apache-2.0
//
// Protobuf encode/decode with a bounded arena allocator and full validation
// of every field that comes from outside; see wire.h.  Must never trust a
// length, an enum value or a string from a frame before checking it here.
#include "wire.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "xmalloc.h"

#define ARENA_CHUNK (64 * 1024)

struct arena_chunk {
	struct arena_chunk *next;
	size_t cap;
	size_t used;
	max_align_t data[];
};

struct wire_arena {
	struct arena_chunk *chunks; // current chunk first
	size_t total;               // bytes handed out since the last reset
	ProtobufCAllocator alloc;
};

static void *
arena_alloc(void *opaque, size_t size)
{
	struct wire_arena *a = opaque;
	struct arena_chunk *c = a->chunks;
	size_t need = (size + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);

	if (need < size || a->total + need > WIRE_ARENA_MAX)
		return NULL; // protobuf-c turns this into a decode failure
	if (c == NULL || c->cap - c->used < need) {
		size_t cap = need > ARENA_CHUNK ? need : ARENA_CHUNK;
		struct arena_chunk *fresh = xmalloc(sizeof(*fresh) + cap);

		// The chunk kept by wire_arena_reset is the current one, so a
		// new chunk is only ever needed when that one is full.
		fresh->cap = cap;
		fresh->used = 0;
		fresh->next = c;
		a->chunks = c = fresh;
	}
	void *p = (char *)c->data + c->used;
	c->used += need;
	a->total += need;
	return p;
}

static void
arena_free_noop(void *opaque, void *ptr)
{
	// Memory returns to the arena as a whole at wire_arena_reset.
}

struct wire_arena *
wire_arena_new(void)
{
	struct wire_arena *a = xcalloc(1, sizeof(*a));

	a->alloc.alloc = arena_alloc;
	a->alloc.free = arena_free_noop;
	a->alloc.allocator_data = a;
	return a;
}

void
wire_arena_reset(struct wire_arena *a)
{
	struct arena_chunk *c, *next, *keep = NULL;

	// Keep one standard chunk for the next message; large ones go back.
	for (c = a->chunks; c != NULL; c = next) {
		next = c->next;
		if (keep == NULL && c->cap == ARENA_CHUNK) {
			keep = c;
			keep->used = 0;
			keep->next = NULL;
		} else {
			free(c);
		}
	}
	a->chunks = keep;
	a->total = 0;
}

void
wire_arena_free(struct wire_arena *a)
{
	if (a == NULL)
		return;
	wire_arena_reset(a);
	free(a->chunks);
	free(a);
}

#define CHECK(cond, ...)                                    \
	do {                                                \
		if (!(cond)) {                              \
			snprintf(err, errlen, __VA_ARGS__); \
			return -1;                          \
		}                                           \
	} while (0)

// Valid UTF-8 without NUL or C0 controls other than tab, at most max bytes.
static bool
wire_text_ok(const char *s, size_t max, bool allow_empty)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t len = 0;

	if (s == NULL)
		return allow_empty;
	while (*p) {
		unsigned char c = *p;
		int extra;

		if (c < 0x80) {
			if (c < 0x20 && c != '\t')
				return false;
			extra = 0;
		} else if ((c & 0xe0) == 0xc0 && c >= 0xc2) {
			extra = 1;
		} else if ((c & 0xf0) == 0xe0) {
			extra = 2;
		} else if ((c & 0xf8) == 0xf0 && c <= 0xf4) {
			extra = 3;
		} else {
			return false;
		}
		// Overlong forms, UTF-16 surrogates and code points past U+10FFFF
		// are not UTF-8 (RFC 3629); PostgreSQL refuses them, which would
		// fail the whole COPY of every batch committed with this one.
		if ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] > 0x9f) ||
		    (c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] > 0x8f))
			return false;
		p++;
		len++;
		for (int i = 0; i < extra; i++, p++, len++)
			if ((*p & 0xc0) != 0x80)
				return false;
		if (len > max)
			return false;
	}
	return allow_empty || len > 0;
}

bool
wire_name_ok(const char *s, size_t max)
{
	size_t len;

	if (s == NULL || *s == '\0')
		return false;
	for (len = 0; s[len]; len++) {
		char c = s[len];

		if (len >= max)
			return false;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

static bool
wire_time_ok(int64_t t, int64_t now_us)
{
	return t > now_us - WIRE_CLOCK_SKEW_US && t < now_us + WIRE_CLOCK_SKEW_US;
}

// Longer than any probe may run (timeouts stop at 10 minutes), and within
// the int4 columns of `results`: a value PostgreSQL refuses would fail the
// COPY of every batch that shares the transaction, not just this one.
#define PHASE_MAX_US (1800U * 1000000U)
// Seqs and counters are bigint in the database and JSON integers in
// the API: both are signed 64-bit.
#define WIRE_MAX_U63 ((uint64_t)INT64_MAX)

int
wire_check_result(const Vantage__Result *r, int64_t now_us, char *err, size_t errlen)
{
	CHECK(r->seq > 0, "result seq is 0");
	CHECK(r->seq <= WIRE_MAX_U63, "result seq %llu out of range", (unsigned long long)r->seq);
	CHECK(wire_name_ok(r->target, WIRE_MAX_KEY), "result %llu: bad target key",
	    (unsigned long long)r->seq);
	CHECK(r->config_version <= INT32_MAX, "result %llu: config_version out of range",
	    (unsigned long long)r->seq);
	CHECK(wire_time_ok(r->started_at, now_us), "result %llu: started_at out of range",
	    (unsigned long long)r->seq);
	CHECK(wire_time_ok(r->scheduled_at, now_us) && r->scheduled_at <= r->started_at &&
		r->started_at - r->scheduled_at <= INT32_MAX,
	    "result %llu: scheduled_at out of range", (unsigned long long)r->seq);
	CHECK(r->outcome >= VANTAGE__OUTCOME__OUTCOME_UP &&
		r->outcome <= VANTAGE__OUTCOME__OUTCOME_AGENT_ERROR,
	    "result %llu: bad outcome %d", (unsigned long long)r->seq, (int)r->outcome);
	CHECK(r->reason >= VANTAGE__REASON__REASON_NONE &&
		r->reason <= VANTAGE__REASON__REASON_INTERNAL,
	    "result %llu: bad reason %d", (unsigned long long)r->seq, (int)r->reason);
	CHECK((r->outcome == VANTAGE__OUTCOME__OUTCOME_UP) ==
		(r->reason == VANTAGE__REASON__REASON_NONE),
	    "result %llu: reason does not match outcome", (unsigned long long)r->seq);
	CHECK(r->trigger >= VANTAGE__TRIGGER__TRIGGER_SCHEDULED &&
		r->trigger <= VANTAGE__TRIGGER__TRIGGER_PROBE_NOW,
	    "result %llu: bad trigger %d", (unsigned long long)r->seq, (int)r->trigger);
	CHECK(r->agent_state == VANTAGE__AGENT_STATE__AGENT_STATE_HEALTHY ||
		r->agent_state == VANTAGE__AGENT_STATE__AGENT_STATE_IMPAIRED,
	    "result %llu: bad agent_state", (unsigned long long)r->seq);
	CHECK(r->http_status == 0 || (r->http_status >= 100 && r->http_status <= 999),
	    "result %llu: bad http_status %u", (unsigned long long)r->seq, r->http_status);
	CHECK(r->total_us <= PHASE_MAX_US && r->dns_us <= r->total_us &&
		r->connect_us <= r->total_us && r->tls_us <= r->total_us &&
		r->ttfb_us <= r->total_us,
	    "result %llu: phase durations inconsistent", (unsigned long long)r->seq);
	CHECK(r->bytes <= INT32_MAX, "result %llu: bytes out of range", (unsigned long long)r->seq);
	CHECK(r->tls_expiry >= 0 && r->tls_expiry < 32503680000LL,
	    "result %llu: tls_expiry out of range", (unsigned long long)r->seq);
	CHECK(wire_text_ok(r->peer, 64, true), "result %llu: bad peer", (unsigned long long)r->seq);
	CHECK(wire_text_ok(r->error, WIRE_MAX_ERROR, true), "result %llu: bad error text",
	    (unsigned long long)r->seq);
	return 0;
}

static int
wire_check_batch(const Vantage__ResultBatch *b, int64_t now_us, char *err, size_t errlen)
{
	CHECK(b->epoch != 0, "batch epoch is 0");
	CHECK(b->n_results + b->n_gaps > 0, "empty batch");
	CHECK(b->n_results <= WIRE_MAX_RESULTS, "batch has %zu results (max %d)", b->n_results,
	    WIRE_MAX_RESULTS);
	CHECK(b->n_gaps <= 64, "batch has %zu gaps (max 64)", b->n_gaps);
	for (size_t i = 0; i < b->n_results; i++) {
		if (wire_check_result(b->results[i], now_us, err, errlen) < 0)
			return -1;
		CHECK(i == 0 || b->results[i]->seq > b->results[i - 1]->seq,
		    "batch seqs not strictly increasing at %zu", i);
	}
	for (size_t i = 0; i < b->n_gaps; i++)
		CHECK(b->gaps[i]->first_seq > 0 && b->gaps[i]->first_seq <= b->gaps[i]->last_seq &&
			b->gaps[i]->last_seq <= WIRE_MAX_U63,
		    "bad gap %zu", i);
	return 0;
}

int
wire_check_agent(const Vantage__AgentMsg *m, int64_t now_us, char *err, size_t errlen)
{
	switch (m->msg_case) {
	case VANTAGE__AGENT_MSG__MSG_HELLO: {
		const Vantage__Hello *h = m->hello;

		CHECK(wire_name_ok(h->name, WIRE_MAX_NAME), "hello: bad agent name");
		CHECK(wire_name_ok(h->region, WIRE_MAX_NAME), "hello: bad region name");
		CHECK(wire_text_ok(h->version, 64, true), "hello: bad version");
		CHECK(h->epoch != 0, "hello: epoch is 0");
		CHECK(h->spool_oldest_seq <= h->spool_newest_seq &&
			h->spool_newest_seq <= WIRE_MAX_U63,
		    "hello: bad spool range");
		CHECK(h->config_version <= WIRE_MAX_U63, "hello: config_version out of range");
		return 0;
	}
	case VANTAGE__AGENT_MSG__MSG_BATCH:
		return wire_check_batch(m->batch, now_us, err, errlen);
	case VANTAGE__AGENT_MSG__MSG_SUSPECT:
		CHECK(m->suspect->n_targets > 0 && m->suspect->n_targets <= WIRE_MAX_TARGETS,
		    "suspect: %zu targets", m->suspect->n_targets);
		for (size_t i = 0; i < m->suspect->n_targets; i++)
			CHECK(wire_name_ok(m->suspect->targets[i], WIRE_MAX_KEY),
			    "suspect: bad target key");
		return 0;
	case VANTAGE__AGENT_MSG__MSG_HEARTBEAT: {
		const Vantage__Heartbeat *hb = m->heartbeat;

		CHECK(hb->state == VANTAGE__AGENT_STATE__AGENT_STATE_HEALTHY ||
			hb->state == VANTAGE__AGENT_STATE__AGENT_STATE_IMPAIRED,
		    "heartbeat: bad state");
		CHECK(wire_text_ok(hb->state_reason, WIRE_MAX_ERROR, true),
		    "heartbeat: bad state reason");
		CHECK(hb->clock_offset_us > -WIRE_CLOCK_SKEW_US &&
			hb->clock_offset_us < WIRE_CLOCK_SKEW_US,
		    "heartbeat: bad clock offset");
		CHECK(hb->spool_depth <= WIRE_MAX_U63 && hb->spool_bytes <= WIRE_MAX_U63 &&
			hb->oldest_unacked_age_ms <= WIRE_MAX_U63 && hb->produced <= WIRE_MAX_U63,
		    "heartbeat: counter out of range");
		return 0;
	}
	default:
		CHECK(0, "agent message has no known body");
	}
}

static int
wire_check_target(const Vantage__Target *t, char *err, size_t errlen)
{
	CHECK(wire_name_ok(t->key, WIRE_MAX_KEY), "config: bad target key");
	CHECK(t->kind >= VANTAGE__PROBE_KIND__PROBE_KIND_HTTP &&
		t->kind <= VANTAGE__PROBE_KIND__PROBE_KIND_ICMP,
	    "config: bad kind for \"%s\"", t->key);
	CHECK(t->interval_ms >= 100 && t->interval_ms <= 86400000,
	    "config: bad interval for \"%s\"", t->key);
	CHECK(t->timeout_ms >= 10 && t->timeout_ms <= 600000, "config: bad timeout for \"%s\"",
	    t->key);
	CHECK(t->confirm >= 1 && t->confirm <= 10, "config: bad confirm for \"%s\"", t->key);
	CHECK(t->retry_interval_ms >= 100 && t->retry_interval_ms <= 3600000,
	    "config: bad retry_interval for \"%s\"", t->key);
	CHECK(t->confirm_span_ms <= 3600000, "config: bad confirm_span for \"%s\"", t->key);
	if (t->kind == VANTAGE__PROBE_KIND__PROBE_KIND_HTTP) {
		const Vantage__HttpSpec *h = t->http;

		CHECK(h != NULL, "config: http target \"%s\" without spec", t->key);
		CHECK(wire_text_ok(h->url, 2048, false) &&
			(strncmp(h->url, "http://", 7) == 0 || strncmp(h->url, "https://", 8) == 0),
		    "config: bad url for \"%s\"", t->key);
		CHECK(wire_name_ok(h->method, 16), "config: bad method for \"%s\"", t->key);
		CHECK(h->n_expect_status <= 16, "config: too many expect_status for \"%s\"",
		    t->key);
		for (size_t i = 0; i < h->n_expect_status; i++)
			CHECK(h->expect_status[i] >= 100 && h->expect_status[i] <= 599,
			    "config: bad expect_status for \"%s\"", t->key);
		CHECK(wire_text_ok(h->body_contains, 1024, true),
		    "config: bad body_contains for \"%s\"", t->key);
	}
	return 0;
}

int
wire_check_agg(const Vantage__AggMsg *m, char *err, size_t errlen)
{
	switch (m->msg_case) {
	case VANTAGE__AGG_MSG__MSG_WELCOME:
		CHECK(m->welcome->epoch != 0, "welcome: epoch is 0");
		return 0;
	case VANTAGE__AGG_MSG__MSG_ACK:
		CHECK(m->ack->epoch != 0, "ack: epoch is 0");
		return 0;
	case VANTAGE__AGG_MSG__MSG_CONFIG:
		CHECK(m->config->n_targets + m->config->n_controls <= WIRE_MAX_TARGETS,
		    "config: too many targets");
		for (size_t i = 0; i < m->config->n_targets; i++)
			if (wire_check_target(m->config->targets[i], err, errlen) < 0)
				return -1;
		for (size_t i = 0; i < m->config->n_controls; i++)
			if (wire_check_target(m->config->controls[i], err, errlen) < 0)
				return -1;
		return 0;
	case VANTAGE__AGG_MSG__MSG_PROBE_NOW:
		CHECK(m->probe_now->n_targets <= WIRE_MAX_TARGETS, "probe_now: too many targets");
		for (size_t i = 0; i < m->probe_now->n_targets; i++)
			CHECK(wire_name_ok(m->probe_now->targets[i], WIRE_MAX_KEY),
			    "probe_now: bad target key");
		return 0;
	default:
		CHECK(0, "aggregator message has no known body");
	}
}

// protobuf-c keeps fields it does not know as unknown fields, and checks
// only the first byte of a tag against 0: a stretched-out tag 0 ("80 00")
// gets through, is stored, and would be re-encoded as an invalid "00".
// Field number 0 is never valid, so such a message is refused whole.
static bool
wire_unknown_ok(const ProtobufCMessage *m, int depth)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;

	if (depth > 8)
		return false; // the schema has no recursion; deeper is hostile
	for (unsigned i = 0; i < m->n_unknown_fields; i++)
		if (m->unknown_fields[i].tag == 0)
			return false;
	for (unsigned f = 0; f < d->n_fields; f++) {
		const ProtobufCFieldDescriptor *fd = &d->fields[f];
		const char *base = (const char *)m;

		if (fd->type != PROTOBUF_C_TYPE_MESSAGE)
			continue;
		if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)(base + fd->quantifier_offset);
			ProtobufCMessage *const *v = *(
			    ProtobufCMessage *const *const *)(base + fd->offset);

			for (size_t k = 0; k < n; k++)
				if (!wire_unknown_ok(v[k], depth + 1))
					return false;
		} else {
			const ProtobufCMessage *sub = *(
			    ProtobufCMessage *const *)(base + fd->offset);

			// A oneof member that is not the chosen case shares the
			// pointer of the chosen one: check only the chosen case.
			if (fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
				uint32_t chosen = *(const uint32_t *)(base + fd->quantifier_offset);

				if (chosen != fd->id)
					continue;
			}
			if (sub != NULL && !wire_unknown_ok(sub, depth + 1))
				return false;
		}
	}
	return true;
}

static int
wire_precheck(size_t len, char *err, size_t errlen)
{
	CHECK(len > 0, "empty frame");
	CHECK(len <= WIRE_MAX_MSG, "frame of %zu bytes exceeds %d", len, WIRE_MAX_MSG);
	return 0;
}

Vantage__AgentMsg *
wire_decode_agent(struct wire_arena *a, const uint8_t *data, size_t len, int64_t now_us, char *err,
    size_t errlen)
{
	Vantage__AgentMsg *m;

	wire_arena_reset(a);
	if (wire_precheck(len, err, errlen) < 0)
		return NULL;
	m = vantage__agent_msg__unpack(&a->alloc, len, data);
	if (m == NULL || !wire_unknown_ok(&m->base, 0)) {
		snprintf(err, errlen, "malformed protobuf (or over %d bytes unpacked)",
		    WIRE_ARENA_MAX);
		return NULL;
	}
	if (wire_check_agent(m, now_us, err, errlen) < 0)
		return NULL;
	return m;
}

Vantage__AggMsg *
wire_decode_agg(struct wire_arena *a, const uint8_t *data, size_t len, char *err, size_t errlen)
{
	Vantage__AggMsg *m;

	wire_arena_reset(a);
	if (wire_precheck(len, err, errlen) < 0)
		return NULL;
	m = vantage__agg_msg__unpack(&a->alloc, len, data);
	if (m == NULL || !wire_unknown_ok(&m->base, 0)) {
		snprintf(err, errlen, "malformed protobuf (or over %d bytes unpacked)",
		    WIRE_ARENA_MAX);
		return NULL;
	}
	if (wire_check_agg(m, err, errlen) < 0)
		return NULL;
	return m;
}

static int
wire_pack(const ProtobufCMessage *m, struct buf *out)
{
	size_t size = protobuf_c_message_get_packed_size(m);

	buf_reset(out);
	if (size > WIRE_MAX_MSG)
		return -1;
	buf_reserve(out, size);
	out->len = protobuf_c_message_pack(m, out->data);
	return 0;
}

int
wire_encode_agent(const Vantage__AgentMsg *m, struct buf *out)
{
	return wire_pack(&m->base, out);
}

int
wire_encode_agg(const Vantage__AggMsg *m, struct buf *out)
{
	return wire_pack(&m->base, out);
}

static const char *const wire_outcome_names[] = { "unspecified", "up", "down", "agent_error" };
static const char *const wire_reason_names[] = { "none", "dns", "refused", "connect_timeout", "tls",
	"cert_expiring", "http_status", "body_mismatch", "too_slow", "timeout", "reset", "network",
	"protocol", "internal" };
static const char *const wire_trigger_names[] = { "scheduled", "retry", "probe_now" };

#define WIRE_NAME(table, v) \
	((v) >= 0 && (size_t)(v) < sizeof(table) / sizeof(table[0]) ? table[v] : "unknown")

const char *
wire_outcome_name(int outcome)
{
	return WIRE_NAME(wire_outcome_names, outcome);
}

const char *
wire_reason_name(int reason)
{
	return WIRE_NAME(wire_reason_names, reason);
}

const char *
wire_trigger_name(int trigger)
{
	return WIRE_NAME(wire_trigger_names, trigger);
}
