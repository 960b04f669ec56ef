// SPDX-License-Identifier: Apache-2.0
//
// Agent uplink; see uplink.h.  Delivery is at-least-once: a batch stays in
// the spool until an Ack covers it, and after every new connection the
// agent says Hello, learns acked_seq from the Welcome and resends everything
// after it.  The aggregator drops duplicates by seq, so the store sees each
// result once.  Never blocks: sends use ZMQ_DONTWAIT, and what the socket
// refuses stays in the spool for the next tick.
#include "uplink.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "atomic_file.h"
#include "buf.h"
#include "clock.h"
#include "curvekey.h"
#include "log.h"
#include "spool.h"
#include "wire.h"
#include "xmalloc.h"
#include "zloop.h"
#include "version.h"

#define UPLINK_TICK_MS 500
#define UPLINK_HELLO_RETRY_US 3000000
#define UPLINK_HEARTBEAT_US 5000000
#define UPLINK_CONFIG_CACHE "config.pb"
// After a refused handshake: 1 s, doubling to 3 s.  A handshake costs both
// ends next to nothing, and a key admitted or put back (or an aggregator
// fixed) should work within seconds, as each refusal should reach the
// aggregator's counters and log soon.
#define UPLINK_REFUSED_RETRY_MIN_MS 1000
#define UPLINK_REFUSED_RETRY_MAX_MS 3000
#define UPLINK_HANDSHAKE_IVL_MS 5000

struct pending_result {
	Vantage__Result msg;
	char target[WIRE_MAX_KEY + 1];
	char peer[64];
	char error[WIRE_MAX_ERROR + 1];
};

struct uplink {
	struct event_base *base;
	const struct agent_conf *conf;
	struct uplink_handlers h;
	void *sock;
	struct zloop *z;
	struct event *tick;
	struct event *flush_timer;
	struct wire_arena *arena;
	struct buf enc;
	struct buf spooled; // one batch read back from the spool

	uint64_t epoch;
	uint64_t next_seq; // seq the next result gets
	uint64_t acked_seq;
	uint64_t sent_upto; // highest seq handed to the socket this session
	uint64_t config_version;
	int64_t clock_offset_us; // aggregator wall clock minus ours

	bool connected; // handshake done, no disconnect since
	bool welcomed;  // Welcome received on this connection
	int64_t hello_sent_mono;
	int64_t heartbeat_mono;
	int state; // self-check: VANTAGE__AGENT_STATE__*
	char state_reason[WIRE_MAX_ERROR + 1];

	struct spool *spool;
	struct pending_result *pending;
	Vantage__Result **pending_ptrs;
	size_t n_pending;

	uint64_t gap_logged; // newest gap seq already logged
	uint64_t bad_messages;
	// Handshake failures since the last success: logged once per streak,
	// not at every reconnect attempt.
	uint64_t handshake_failures;
	// libzmq gives up an endpoint whose handshake was refused; we do not.
	struct event *retry_timer;
	int retry_ms;
};

static void uplink_pump(struct uplink *u);

static int
uplink_send_msg(struct uplink *u, const Vantage__AgentMsg *m)
{
	const void *data[1];
	size_t len[1];

	if (wire_encode_agent(m, &u->enc) < 0) {
		log_warnx("message to the aggregator exceeds %d bytes", WIRE_MAX_MSG);
		return -1;
	}
	data[0] = u->enc.data;
	len[0] = u->enc.len;
	return zloop_send(u->z, data, len, 1);
}

static void
uplink_send_hello(struct uplink *u)
{
	Vantage__AgentMsg m = VANTAGE__AGENT_MSG__INIT;
	Vantage__Hello hello = VANTAGE__HELLO__INIT;

	hello.name = u->conf->name;
	hello.region = u->conf->region;
	hello.version = (char *)vantage_version;
	hello.epoch = u->epoch;
	hello.config_version = u->config_version;
	hello.spool_oldest_seq = spool_oldest_seq(u->spool);
	hello.spool_newest_seq = spool_newest_seq(u->spool);
	m.msg_case = VANTAGE__AGENT_MSG__MSG_HELLO;
	m.hello = &hello;
	u->hello_sent_mono = clock_mono_us();
	if (uplink_send_msg(u, &m) < 0)
		log_debug("hello not sent yet: %s", zloop_strerror(errno));
}

static void
uplink_send_heartbeat(struct uplink *u, int64_t now_mono)
{
	Vantage__AgentMsg m = VANTAGE__AGENT_MSG__INIT;
	Vantage__Heartbeat hb = VANTAGE__HEARTBEAT__INIT;
	int64_t oldest = spool_oldest_added(u->spool), now_wall = clock_wall_us();

	hb.spool_depth = spool_depth(u->spool);
	hb.spool_bytes = spool_bytes(u->spool);
	hb.oldest_unacked_age_ms = oldest > 0 && now_wall > oldest ?
	    (uint64_t)(now_wall - oldest) / 1000 :
	    0;
	hb.state = u->state;
	hb.state_reason = u->state_reason;
	hb.clock_offset_us = u->clock_offset_us;
	hb.produced = u->next_seq - 1;
	m.msg_case = VANTAGE__AGENT_MSG__MSG_HEARTBEAT;
	m.heartbeat = &hb;
	u->heartbeat_mono = now_mono;
	uplink_send_msg(u, &m);
}

// Seals pending results into one batch and spools it (durably, before it
// is sent).
static void
uplink_seal(struct uplink *u)
{
	Vantage__AgentMsg m = VANTAGE__AGENT_MSG__INIT;
	Vantage__ResultBatch batch = VANTAGE__RESULT_BATCH__INIT;

	if (u->n_pending == 0)
		return;
	batch.epoch = u->epoch;
	batch.n_results = u->n_pending;
	batch.results = u->pending_ptrs;
	m.msg_case = VANTAGE__AGENT_MSG__MSG_BATCH;
	m.batch = &batch;
	if (wire_encode_agent(&m, &u->enc) < 0)
		fatalx("a batch of %zu results exceeds %d bytes", u->n_pending, WIRE_MAX_MSG);
	spool_append(u->spool, u->pending[0].msg.seq, u->pending[u->n_pending - 1].msg.seq,
	    u->enc.data, u->enc.len, clock_wall_us());
	u->n_pending = 0;
}

// Seqs first..last are in neither the store nor the spool (dropped when
// the spool was full, or cut with a corrupt tail): say so, so that the
// store knows exactly what is missing.  The hole in the spool is durable,
// so this marker is sent again until an Ack covers it.
static int
uplink_send_gap(struct uplink *u, uint64_t first_seq, uint64_t last_seq)
{
	Vantage__AgentMsg m = VANTAGE__AGENT_MSG__INIT;
	Vantage__ResultBatch batch = VANTAGE__RESULT_BATCH__INIT;
	Vantage__Gap gap = VANTAGE__GAP__INIT;
	Vantage__Gap *gaps[1] = { &gap };

	gap.first_seq = first_seq;
	gap.last_seq = last_seq;
	batch.epoch = u->epoch;
	batch.n_gaps = 1;
	batch.gaps = gaps;
	m.msg_case = VANTAGE__AGENT_MSG__MSG_BATCH;
	m.batch = &batch;
	if (uplink_send_msg(u, &m) < 0)
		return -1;
	if (u->gap_logged < last_seq) {
		log_warnx("results %llu..%llu of epoch %llu were dropped from the spool; telling "
			  "the aggregator",
		    (unsigned long long)first_seq, (unsigned long long)last_seq,
		    (unsigned long long)u->epoch);
		u->gap_logged = last_seq;
	}
	return 0;
}

static void
uplink_pump(struct uplink *u)
{
	const struct spool_rec *rec;
	unsigned in_flight = 0;

	if (!u->connected || !u->welcomed)
		return;
	for (rec = spool_after(u->spool, u->acked_seq);
	     rec != NULL && rec->last_seq <= u->sent_upto; rec = spool_next(u->spool, rec))
		in_flight++;
	for (; rec != NULL && in_flight < UPLINK_WINDOW;
	     rec = spool_next(u->spool, rec), in_flight++) {
		const void *data[1];
		size_t len[1];

		if (rec->first_seq > u->sent_upto + 1) {
			if (uplink_send_gap(u, u->sent_upto + 1, rec->first_seq - 1) < 0)
				goto busy;
			u->sent_upto = rec->first_seq - 1;
		}
		spool_load(u->spool, rec, &u->spooled);
		data[0] = u->spooled.data;
		len[0] = u->spooled.len;
		if (zloop_send(u->z, data, len, 1) < 0)
			goto busy;
		u->sent_upto = rec->last_seq;
	}
	return;
busy:
	if (errno != EAGAIN)
		log_warnx("could not send a batch: %s", zloop_strerror(errno));
	// the tick retries
}

void
uplink_flush(struct uplink *u)
{
	uplink_seal(u);
	uplink_pump(u);
}

static void
uplink_on_flush_timer(evutil_socket_t fd, short what, void *arg)
{
	uplink_flush(arg);
}

static void
uplink_copy_text(char *dst, size_t size, const char *src)
{
	size_t n = strnlen(src, size - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
}

void
uplink_add_result(struct uplink *u, const struct probe_result *r)
{
	struct pending_result *p;
	Vantage__Result init = VANTAGE__RESULT__INIT;
	bool urgent;

	if (u->n_pending == UPLINK_BATCH_MAX)
		uplink_seal(u);
	p = &u->pending[u->n_pending];
	u->pending_ptrs[u->n_pending] = &p->msg;
	u->n_pending++;
	p->msg = init;
	p->msg.seq = u->next_seq++;
	uplink_copy_text(p->target, sizeof(p->target), r->target->key);
	uplink_copy_text(p->peer, sizeof(p->peer), r->peer);
	uplink_copy_text(p->error, sizeof(p->error), r->error);
	p->msg.target = p->target;
	p->msg.peer = p->peer;
	p->msg.error = p->error;
	p->msg.config_version = r->config_version;
	p->msg.scheduled_at = r->scheduled_at_us;
	p->msg.started_at = r->started_at_us;
	p->msg.outcome = r->outcome;
	p->msg.reason = r->reason;
	p->msg.http_status = r->http_status;
	p->msg.dns_us = r->dns_us;
	p->msg.connect_us = r->connect_us;
	p->msg.tls_us = r->tls_us;
	p->msg.ttfb_us = r->ttfb_us;
	p->msg.total_us = r->total_us;
	p->msg.bytes = r->bytes;
	p->msg.tls_expiry = r->tls_expiry;
	p->msg.trigger = r->trigger;
	p->msg.agent_state = u->state;

	// Failures and confirmations decide incidents: they leave in this
	// turn of the loop, together with every other result of the turn, so
	// that a burst of failures costs one spool write and fsync, not one
	// each.
	urgent = r->outcome != VANTAGE__OUTCOME__OUTCOME_UP ||
	    r->trigger != VANTAGE__TRIGGER__TRIGGER_SCHEDULED;
	if (u->n_pending == UPLINK_BATCH_MAX) {
		uplink_flush(u);
	} else if (urgent) {
		struct timeval now = { 0, 0 };

		evtimer_add(u->flush_timer, &now);
	} else if (!evtimer_pending(u->flush_timer, NULL)) {
		struct timeval tv = { 0, UPLINK_BATCH_DELAY_MS * 1000 };

		evtimer_add(u->flush_timer, &tv);
	}
}

void
uplink_set_state(struct uplink *u, int state, const char *reason)
{
	bool changed = state != u->state;

	u->state = state;
	uplink_copy_text(u->state_reason, sizeof(u->state_reason), reason);
	// The aggregator judges votes by it: tell it now, not in 5 s.
	if (changed && u->connected && u->welcomed)
		uplink_send_heartbeat(u, clock_mono_us());
}

// Gives the pending (not yet spooled) results seqs from next on.
static void
uplink_renumber(struct uplink *u, uint64_t next)
{
	for (size_t i = 0; i < u->n_pending; i++)
		u->pending[i].msg.seq = next + i;
	u->next_seq = next + u->n_pending;
}

static void
uplink_on_agg_msg(struct uplink *u, const Vantage__AggMsg *m)
{
	switch (m->msg_case) {
	case VANTAGE__AGG_MSG__MSG_WELCOME:
		if (m->welcome->epoch != u->epoch) {
			u->bad_messages++;
			return;
		}
		u->clock_offset_us = m->welcome->server_time_us - clock_wall_us();
		if (m->welcome->acked_seq > u->acked_seq)
			u->acked_seq = m->welcome->acked_seq;
		if (u->acked_seq >= u->next_seq) {
			// Only a spool that lost fsync'd data (spool_fsync: none and
			// a machine crash) can be behind the store: never reuse seqs.
			log_warnx(
			    "the aggregator stored results of epoch %llu through %llu, but the "
			    "spool ends at %llu; continuing after %llu",
			    (unsigned long long)u->epoch, (unsigned long long)u->acked_seq,
			    (unsigned long long)u->next_seq - 1, (unsigned long long)u->acked_seq);
			uplink_renumber(u, u->acked_seq + 1);
		}
		spool_ack(u->spool, u->acked_seq);
		u->sent_upto = u->acked_seq;
		u->welcomed = true;
		// A restarted aggregator knows nothing of our state yet.
		uplink_send_heartbeat(u, clock_mono_us());
		log_info(
		    "aggregator welcomed us: epoch %llu acked through %llu, %llu results to resend",
		    (unsigned long long)u->epoch, (unsigned long long)u->acked_seq,
		    (unsigned long long)spool_depth(u->spool));
		uplink_pump(u);
		break;
	case VANTAGE__AGG_MSG__MSG_ACK:
		if (m->ack->epoch != u->epoch) {
			u->bad_messages++;
			return;
		}
		if (m->ack->acked_seq > u->acked_seq) {
			u->acked_seq = m->ack->acked_seq;
			spool_ack(u->spool, u->acked_seq);
		}
		uplink_pump(u);
		break;
	case VANTAGE__AGG_MSG__MSG_CONFIG:
		u->config_version = m->config->version;
		u->h.config(m->config, u->h.arg);
		break;
	case VANTAGE__AGG_MSG__MSG_PROBE_NOW:
		u->h.probe_now((const char *const *)m->probe_now->targets, m->probe_now->n_targets,
		    u->h.arg);
		break;
	default:
		break;
	}
}

static void
uplink_cache_path(const struct uplink *u, char *path, size_t size, const char *suffix)
{
	snprintf(path, size, "%s/" UPLINK_CONFIG_CACHE "%s", u->conf->spool_dir, suffix);
}

// Keeps the aggregator's last Config (the whole AggMsg) in spool_dir, so
// that a restarted agent probes while the aggregator is unreachable.  Only
// a cache: failing to write it is logged, not fatal.
static void
uplink_cache_config(struct uplink *u, const void *data, size_t len)
{
	char path[4096];

	uplink_cache_path(u, path, sizeof(path), "");
	if (atomic_file_write(AT_FDCWD, path, data, len, NULL) < 0)
		log_warn("could not cache the aggregator's configuration in \"%s\"", path);
}

void
uplink_start(struct uplink *u)
{
	char path[4096], err[256];
	struct buf b;
	Vantage__AggMsg *m;
	ssize_t n;
	int fd;

	uplink_cache_path(u, path, sizeof(path), "");
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno != ENOENT)
			log_warn("could not read the cached configuration \"%s\"", path);
		return;
	}
	buf_init(&b);
	buf_reserve(&b, WIRE_MAX_MSG + 1);
	while ((n = read(fd, b.data + b.len, WIRE_MAX_MSG + 1 - b.len)) > 0)
		b.len += (size_t)n;
	close(fd);
	m = n < 0 ? NULL : wire_decode_agg(u->arena, b.data, b.len, err, sizeof(err));
	if (n < 0)
		log_warn("could not read the cached configuration \"%s\"", path);
	else if (m == NULL || m->msg_case != VANTAGE__AGG_MSG__MSG_CONFIG)
		log_warnx("ignoring the cached configuration \"%s\": %s", path,
		    m == NULL ? err : "not a configuration");
	else {
		log_info("probing with the cached configuration version %llu until the "
			 "aggregator sends its own",
		    (unsigned long long)m->config->version);
		uplink_on_agg_msg(u, m);
	}
	wire_arena_reset(u->arena);
	buf_free(&b);
}

static void
uplink_on_msg(const struct zloop_frame *parts, int nparts, void *arg)
{
	struct uplink *u = arg;
	Vantage__AggMsg *m;
	char err[256];

	if (nparts != 1) {
		u->bad_messages++;
		log_warnx("dropping a message of %d frames from the aggregator", nparts);
		return;
	}
	m = wire_decode_agg(u->arena, zloop_frame_data(&parts[0]), zloop_frame_size(&parts[0]), err,
	    sizeof(err));
	if (m == NULL) {
		u->bad_messages++;
		log_warnx("dropping a bad message from the aggregator: %s", err);
		return;
	}
	uplink_on_agg_msg(u, m);
	if (m->msg_case == VANTAGE__AGG_MSG__MSG_CONFIG)
		uplink_cache_config(u, zloop_frame_data(&parts[0]), zloop_frame_size(&parts[0]));
	wire_arena_reset(u->arena);
}

// Why a handshake failed, for the operator (ZLOOP_EVENT_HANDSHAKE_FAILED_*).
// An aggregator that finds something wrong mostly just closes the
// connection, so our own configuration is the best hint.
static const char *
uplink_handshake_failure(const struct uplink *u, uint16_t event, uint32_t value)
{
	if (event == ZLOOP_EVENT_HANDSHAKE_FAILED_AUTH)
		return "the aggregator refused our key: is this agent's public key in its "
		       "agent_keys_dir, named after the agent?";
	if (event == ZLOOP_EVENT_HANDSHAKE_FAILED_PROTOCOL &&
	    value == ZLOOP_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH)
		return u->conf->insecure ?
		    "the aggregator requires CurveZMQ and we have \"insecure: true\"" :
		    "the aggregator does not use CurveZMQ (it has \"insecure: true\")";
	if (u->conf->insecure)
		return "the aggregator closed the connection during the handshake: it probably "
		       "requires CurveZMQ and we have \"insecure: true\"";
	return "the aggregator closed the connection during the handshake: is "
	       "\"aggregator.public_key\" the aggregator's public key?";
}

static void
uplink_on_event(uint16_t event, uint32_t value, const char *addr, void *arg)
{
	struct uplink *u = arg;

	switch (event) {
	case ZLOOP_EVENT_HANDSHAKE_SUCCEEDED:
		if (u->handshake_failures > 0)
			log_info(
			    "connected to the aggregator at \"%s\" after %llu failed handshakes",
			    addr, (unsigned long long)u->handshake_failures);
		else
			log_info("connected to the aggregator at \"%s\"", addr);
		u->handshake_failures = 0;
		u->retry_ms = 0;
		u->connected = true;
		u->welcomed = false;
		uplink_send_hello(u);
		break;
	case ZLOOP_EVENT_DISCONNECTED:
		if (u->connected)
			log_warnx("lost the connection to the aggregator at \"%s\"", addr);
		u->connected = false;
		u->welcomed = false;
		break;
	case ZLOOP_EVENT_HANDSHAKE_FAILED_AUTH:
	case ZLOOP_EVENT_HANDSHAKE_FAILED_PROTOCOL:
	case ZLOOP_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
		// Once per streak: the same failure repeats at every retry.
		if (u->handshake_failures++ == 0)
			log_warnx("handshake with the aggregator at \"%s\" failed: %s; retrying, "
				  "without saying so again until it connects",
			    addr, uplink_handshake_failure(u, event, value));
		// A refusal (auth) or a protocol error ends libzmq's own
		// reconnecting; a revoked key may be admitted again, and an
		// aggregator being fixed comes back, so keep trying.
		if (event != ZLOOP_EVENT_HANDSHAKE_FAILED_NO_DETAIL &&
		    !evtimer_pending(u->retry_timer, NULL)) {
			struct timeval tv;

			u->retry_ms = u->retry_ms == 0 ? UPLINK_REFUSED_RETRY_MIN_MS :
							 u->retry_ms * 2;
			if (u->retry_ms > UPLINK_REFUSED_RETRY_MAX_MS)
				u->retry_ms = UPLINK_REFUSED_RETRY_MAX_MS;
			tv.tv_sec = u->retry_ms / 1000;
			tv.tv_usec = (u->retry_ms % 1000) * 1000;
			evtimer_add(u->retry_timer, &tv);
		}
		break;
	default:
		break;
	}
}

static void
uplink_on_retry(evutil_socket_t fd, short what, void *arg)
{
	struct uplink *u = arg;

	// The endpoint may be gone already (libzmq dropped it): no error.
	zloop_disconnect(u->sock, u->conf->aggregator_endpoint);
	if (zloop_connect(u->sock, u->conf->aggregator_endpoint) < 0)
		log_warnx("could not connect to \"%s\": %s", u->conf->aggregator_endpoint,
		    zloop_strerror(errno));
}

// CurveZMQ client: our key pair and the aggregator's public key.  Returns
// -1 after logging which file is wrong.
static int
uplink_set_keys(struct uplink *u)
{
	struct curvekey secret, pub, server;
	char err[4200];
	int rc = 0;

	if (curvekey_read_secret(u->conf->secret_key, &secret, &pub, err, sizeof(err)) < 0 ||
	    curvekey_read_public(u->conf->aggregator_public_key, &server, err, sizeof(err)) < 0) {
		log_warnx("%s", err);
		explicit_bzero(&secret, sizeof(secret));
		return -1;
	}
	if (zloop_set_bytes(u->sock, ZLOOP_CURVE_SERVERKEY, server.z85, CURVEKEY_Z85_LEN) < 0 ||
	    zloop_set_bytes(u->sock, ZLOOP_CURVE_PUBLICKEY, pub.z85, CURVEKEY_Z85_LEN) < 0 ||
	    zloop_set_bytes(u->sock, ZLOOP_CURVE_SECRETKEY, secret.z85, CURVEKEY_Z85_LEN) < 0) {
		log_warnx("could not set up CurveZMQ: %s", zloop_strerror(errno));
		rc = -1;
	}
	explicit_bzero(&secret, sizeof(secret));
	return rc;
}

static void
uplink_on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct uplink *u = arg;
	int64_t now = clock_mono_us();

	if (u->connected && !u->welcomed && now - u->hello_sent_mono >= UPLINK_HELLO_RETRY_US)
		uplink_send_hello(u);
	if (u->connected && u->welcomed && now - u->heartbeat_mono >= UPLINK_HEARTBEAT_US)
		uplink_send_heartbeat(u, now);
	uplink_pump(u);
}

struct uplink *
uplink_new(struct event_base *base, void *zctx, const struct agent_conf *conf,
    const struct uplink_handlers *handlers)
{
	struct uplink *u = xcalloc(1, sizeof(*u));
	struct timeval tick = { 0, UPLINK_TICK_MS * 1000 };
	char err[512];

	u->base = base;
	u->conf = conf;
	u->h = *handlers;
	buf_init(&u->enc);
	buf_init(&u->spooled);
	u->arena = wire_arena_new();
	u->pending = xcalloc(UPLINK_BATCH_MAX, sizeof(*u->pending));
	u->pending_ptrs = xcalloc(UPLINK_BATCH_MAX, sizeof(*u->pending_ptrs));
	// The epoch names the spool, created once with it: a restarted agent
	// continues its seqs, and resends what the aggregator has not acked.
	u->spool = spool_open(conf->spool_dir, conf->spool_max,
	    conf->spool_fsync ? SPOOL_SYNC_BATCH : SPOOL_SYNC_NONE, err, sizeof(err));
	if (u->spool == NULL)
		fatalx("%s", err);
	u->epoch = spool_epoch(u->spool);
	u->next_seq = spool_next_seq(u->spool);

	u->retry_timer = evtimer_new(base, uplink_on_retry, u);
	u->sock = zloop_socket(zctx, ZLOOP_DEALER, WIRE_MAX_MSG);
	if (u->sock == NULL)
		fatalx("could not create a ZeroMQ socket: %s", zloop_strerror(errno));
	zloop_set_int(u->sock, ZLOOP_IMMEDIATE, 1);
	zloop_set_int(u->sock, ZLOOP_HEARTBEAT_TTL, 10000);
	zloop_set_int(u->sock, ZLOOP_RECONNECT_IVL, 200);
	// A handshake that stalls (the aggregator refused us and the close
	// got lost, or it is too busy to answer) holds the connection until
	// this expires, and only then does libzmq reconnect: its default of
	// 30 s kept a refused agent silent for half a minute.  A handshake
	// takes milliseconds; 5 s, like the aggregator's, retries soon.
	zloop_set_int(u->sock, ZLOOP_HANDSHAKE_IVL, UPLINK_HANDSHAKE_IVL_MS);
	zloop_set_int(u->sock, ZLOOP_RECONNECT_IVL_MAX, 5000);
	zloop_set_int(u->sock, ZLOOP_SNDHWM, 1000);
	if (conf->insecure) {
		log_warnx("connection to the aggregator is NOT encrypted or authenticated "
			  "(insecure: true); use it for development only");
	} else if (uplink_set_keys(u) < 0) {
		uplink_free(u);
		return NULL;
	}
	u->z = zloop_new(base, u->sock, uplink_on_msg, u);
	if (u->z == NULL ||
	    zloop_monitor(u->z, zctx,
		ZLOOP_EVENT_HANDSHAKE_SUCCEEDED | ZLOOP_EVENT_DISCONNECTED |
		    ZLOOP_EVENT_HANDSHAKE_FAILED_AUTH | ZLOOP_EVENT_HANDSHAKE_FAILED_PROTOCOL |
		    ZLOOP_EVENT_HANDSHAKE_FAILED_NO_DETAIL,
		uplink_on_event, u) < 0)
		fatalx("could not watch the ZeroMQ socket: %s", zloop_strerror(errno));
	if (zloop_connect(u->sock, conf->aggregator_endpoint) < 0) {
		log_warnx("could not connect to \"%s\": %s", conf->aggregator_endpoint,
		    zloop_strerror(errno));
		uplink_free(u);
		return NULL;
	}
	u->tick = event_new(base, -1, EV_PERSIST, uplink_on_tick, u);
	event_add(u->tick, &tick);
	u->flush_timer = evtimer_new(base, uplink_on_flush_timer, u);
	log_info("agent \"%s\" in region \"%s\": epoch %llu, aggregator \"%s\"", conf->name,
	    conf->region, (unsigned long long)u->epoch, conf->aggregator_endpoint);
	return u;
}

void
uplink_free(struct uplink *u)
{
	if (u == NULL)
		return;
	zloop_free(u->z);
	zloop_close(u->sock);
	if (u->tick != NULL)
		event_free(u->tick);
	if (u->flush_timer != NULL)
		event_free(u->flush_timer);
	if (u->retry_timer != NULL)
		event_free(u->retry_timer);
	spool_free(u->spool);
	wire_arena_free(u->arena);
	buf_free(&u->enc);
	buf_free(&u->spooled);
	free(u->pending);
	free(u->pending_ptrs);
	free(u);
}

void
uplink_send_suspect(struct uplink *u, const char *const *keys, size_t n)
{
	Vantage__AgentMsg m = VANTAGE__AGENT_MSG__INIT;
	Vantage__Suspect sus = VANTAGE__SUSPECT__INIT;

	if (!u->connected || !u->welcomed || n == 0)
		return;
	sus.n_targets = n;
	sus.targets = (char **)keys;
	m.msg_case = VANTAGE__AGENT_MSG__MSG_SUSPECT;
	m.suspect = &sus;
	uplink_send_msg(u, &m);
}

uint64_t
uplink_produced(const struct uplink *u)
{
	return u->next_seq - 1;
}

uint64_t
uplink_acked_seq(const struct uplink *u)
{
	return u->acked_seq;
}

uint64_t
uplink_epoch(const struct uplink *u)
{
	return u->epoch;
}
