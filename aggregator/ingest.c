// SPDX-License-Identifier: Apache-2.0
//
// Agent protocol on the ROUTER socket; see ingest.h.
//
// A *session* is one connection (one ROUTER routing id); a *stream* is one
// (agent, epoch), the unit of seq numbering and progress.  A stream outlives
// its sessions: an agent that reconnects gets a new session on the same
// stream.  For each stream, acked_seq is what is durable (sent in Welcome
// and Ack) and queued_seq what is durable or in a transaction; a result is
// new only above queued_seq.  If a transaction fails, the stream is
// resynchronised from the database before anything else of it is accepted,
// and the agent is told (a fresh Welcome) to resend from there.
//
// With CurveZMQ, a session's agent is the User-Id that the ZAP handler
// (zap.c) gave its key; a Hello naming another agent is refused.  ZeroMQ
// cannot drop one peer of a ROUTER, so revoking a key closes the socket and
// binds a new one: every agent reconnects and resends from its acked_seq,
// and the revoked one is refused at the handshake.
#include "ingest.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "clock.h"
#include "log.h"
#include "wire.h"
#include "xmalloc.h"
#include "zloop.h"

#define INGEST_MAX_RID 256
#define INGEST_SESSION_IDLE_US (120LL * 1000000)
#define INGEST_MAX_SESSIONS 100000
#define INGEST_ACCEPTED 64 // recent connections whose peer address is kept
#define INGEST_REBIND_RETRY_MS 100

struct stream;

struct session {
	uint8_t rid[INGEST_MAX_RID];
	size_t rid_len;
	struct stream *stream; // after Welcome
	size_t agent_slot;
	char addr[64];                   // peer address, for logs
	char user_id[WIRE_MAX_NAME + 1]; // agent named by its key (ZAP), "" without CurveZMQ
	int64_t last_seen_mono;
	unsigned pending; // store operations that point here
	uint64_t bad_frames;
	bool gone;
	struct ingest *in;
	struct session *next;
};

// The targets of one batch's results, until its COMMIT is reported to the
// verdict.  A stream's batches commit in the order they were queued, and
// the store may fold several into one progress step (one callback up to
// the last one's seq).
struct commit {
	struct commit *next;
	uint64_t end_seq; // the batch's last seq
	size_t n;
	uint32_t targets[];
};

struct stream {
	struct commit *commits, **commits_tail; // queued, oldest first
	int agent_id;
	uint64_t epoch;
	uint64_t acked_seq;
	uint64_t queued_seq;
	bool resyncing;
	struct session *peer; // current connection, or NULL
	size_t agent_slot;
	char name[WIRE_MAX_NAME + 1];
	char region[WIRE_MAX_NAME + 1];
	char version[65];
	struct ingest *in;
	struct stream *next;
};

// A connection accepted and not yet closed: the monitor names only its
// descriptor, and a refused handshake is logged with the peer's address.
struct accepted {
	int fd;
	char addr[64];
};

struct ingest {
	struct event_base *base;
	void *zctx;
	char *endpoint;         // the address bound at start (a reload does not move it)
	struct zap *zap;        // NULL without CurveZMQ
	struct curvekey secret; // the server's secret key, with zap
	struct event *rebind;   // retries the bind after a revocation
	unsigned rebind_failures;
	struct accepted accepted[INGEST_ACCEPTED];
	size_t next_accepted;
	uint32_t handshake_error; // protocol error of the connection about to close
	const struct agg_conf *conf;
	struct store *store;
	struct agents *agents;
	struct target_table *targets;
	struct ingest_hooks hooks;
	void *sock;
	struct zloop *z;
	struct event *reaper;
	struct wire_arena *arena;
	struct buf enc;
	struct session *sessions;
	size_t n_sessions;
	struct stream *streams;
	uint64_t config_version;
	struct ingest_stats stats;
};

// --- sending ---

static void
ingest_send(struct ingest *in, struct session *s, const Vantage__AggMsg *m)
{
	const void *data[2];
	size_t len[2];

	if (s == NULL || s->gone || in->z == NULL)
		return;
	if (wire_encode_agg(m, &in->enc) < 0) {
		log_warnx("message to agent exceeds %d bytes: not sent", WIRE_MAX_MSG);
		return;
	}
	data[0] = s->rid;
	len[0] = s->rid_len;
	data[1] = in->enc.data;
	len[1] = in->enc.len;
	if (zloop_send(in->z, data, len, 2) < 0 && errno != EHOSTUNREACH && errno != EAGAIN)
		log_warnx("could not send to an agent: %s", zloop_strerror(errno));
}

static void
ingest_send_welcome(struct ingest *in, struct stream *st)
{
	Vantage__AggMsg m = VANTAGE__AGG_MSG__INIT;
	Vantage__Welcome w = VANTAGE__WELCOME__INIT;

	w.server_time_us = clock_wall_us();
	w.epoch = st->epoch;
	w.acked_seq = st->acked_seq;
	m.msg_case = VANTAGE__AGG_MSG__MSG_WELCOME;
	m.welcome = &w;
	ingest_send(in, st->peer, &m);
}

static void
ingest_send_ack(struct ingest *in, struct stream *st)
{
	Vantage__AggMsg m = VANTAGE__AGG_MSG__INIT;
	Vantage__Ack ack = VANTAGE__ACK__INIT;

	ack.epoch = st->epoch;
	ack.acked_seq = st->acked_seq;
	m.msg_case = VANTAGE__AGG_MSG__MSG_ACK;
	m.ack = &ack;
	ingest_send(in, st->peer, &m);
}

// The Config for one region (targets.c builds it).
static void
ingest_send_config(struct ingest *in, struct session *s, const char *region)
{
	Vantage__AggMsg m = VANTAGE__AGG_MSG__INIT;
	struct targets_config *tc = targets_config_new(in->conf, region, in->config_version);

	m.msg_case = VANTAGE__AGG_MSG__MSG_CONFIG;
	m.config = targets_config_msg(tc);
	ingest_send(in, s, &m);
	targets_config_free(tc);
}

// --- sessions and streams ---

// rid_msg is the routing id frame; body the frame after it, which carries
// the connection's metadata (peer address).
static struct session *
ingest_session(struct ingest *in, const struct zloop_frame *rid_msg, const struct zloop_frame *body,
    bool create)
{
	const uint8_t *rid = zloop_frame_data(rid_msg);
	size_t len = zloop_frame_size(rid_msg);
	struct session *s;

	if (len == 0 || len > INGEST_MAX_RID)
		return NULL;
	for (s = in->sessions; s != NULL; s = s->next)
		if (!s->gone && s->rid_len == len && memcmp(s->rid, rid, len) == 0)
			return s;
	if (!create || in->n_sessions >= INGEST_MAX_SESSIONS)
		return NULL;
	s = xcalloc(1, sizeof(*s));
	memcpy(s->rid, rid, len);
	s->rid_len = len;
	s->in = in;
	{
		const char *addr = body != NULL ? zloop_frame_meta(body, "Peer-Address") : NULL;
		const char *user = body != NULL ? zloop_frame_meta(body, "User-Id") : NULL;

		snprintf(s->addr, sizeof(s->addr), "%s", addr ? addr : "unknown");
		snprintf(s->user_id, sizeof(s->user_id), "%s", user ? user : "");
	}
	s->next = in->sessions;
	in->sessions = s;
	in->n_sessions++;
	return s;
}

static struct stream *
ingest_stream(struct ingest *in, int agent_id, uint64_t epoch)
{
	struct stream *st;

	for (st = in->streams; st != NULL; st = st->next)
		if (st->agent_id == agent_id && st->epoch == epoch)
			return st;
	return NULL;
}

// True when a session other than s, not gone, delivers for a stream of the
// agent: the agent then lives on that connection, so losing s (the reaper,
// a dropped socket) must not mark it disconnected.
static bool
ingest_agent_attached(const struct ingest *in, int agent_id, const struct session *s)
{
	for (const struct stream *st = in->streams; st != NULL; st = st->next)
		if (st->agent_id == agent_id && st->peer != NULL && st->peer != s &&
		    !st->peer->gone)
			return true;
	return false;
}

// An agent delivers over one connection at a time, whatever its epoch: a
// Hello on s detaches every other session from every stream of the agent.
// Otherwise the old epoch's session, idle since its process stopped, stays
// the peer of the old stream, and reaping it marks the agent disconnected
// while it delivers on s (its votes would then abstain).
static void
ingest_detach_others(struct ingest *in, int agent_id, struct session *s)
{
	for (struct stream *st = in->streams; st != NULL; st = st->next) {
		if (st->agent_id != agent_id || st->peer == NULL)
			continue;
		if (st->peer != s)
			st->peer->stream = NULL;
		st->peer = NULL;
	}
}

// Detaches s, which is going (idle or its socket closed), from its stream.
// Returns the agent it delivered for when no other live session of that
// agent is attached, else NULL: only then may the caller take the agent
// for disconnected.
static struct agent_info *
ingest_detach(struct ingest *in, struct session *s)
{
	struct stream *st = s->stream;

	if (st == NULL || st->peer != s)
		return NULL;
	st->peer = NULL;
	if (ingest_agent_attached(in, st->agent_id, s))
		return NULL;
	return agents_get(in->agents, s->agent_slot);
}

static void ingest_on_commit(int status, uint64_t acked_seq, void *arg);

static void
ingest_free_commits(struct commit *c)
{
	while (c != NULL) {
		struct commit *next = c->next;

		free(c);
		c = next;
	}
}
static void ingest_bad(struct ingest *in, struct session *s, const char *why);

static void
ingest_on_resync(int status, int agent_id, uint64_t acked_seq, void *arg)
{
	struct stream *st = arg;
	struct ingest *in = st->in;

	if (status < 0) {
		// Try again: the store retries its connection meanwhile.
		store_hello(in->store, st->name, st->region, st->version, st->epoch,
		    ingest_on_resync, st);
		return;
	}
	st->acked_seq = st->queued_seq = acked_seq;
	st->resyncing = false;
	log_info("agent \"%s\" epoch %llu resynchronised at seq %llu: asking it to resend",
	    st->name, (unsigned long long)st->epoch, (unsigned long long)acked_seq);
	ingest_send_welcome(in, st);
}

static void
ingest_resync(struct stream *st)
{
	if (st->resyncing)
		return;
	st->resyncing = true;
	store_hello(st->in->store, st->name, st->region, st->version, st->epoch, ingest_on_resync,
	    st);
}

static void
ingest_on_commit(int status, uint64_t acked_seq, void *arg)
{
	struct stream *st = arg;
	struct ingest *in = st->in;
	struct agent_info *ai = agents_get(in->agents, st->agent_slot);
	struct commit *done = st->commits, **end = &st->commits;

	// The batches this step covers leave the queue either way.
	while (*end != NULL && (*end)->end_seq <= acked_seq)
		end = &(*end)->next;
	st->commits = *end;
	*end = NULL;
	if (st->commits == NULL)
		st->commits_tail = &st->commits;
	if (status < 0) {
		ingest_free_commits(done);
		ingest_resync(st);
		return;
	}
	if (acked_seq > st->acked_seq)
		st->acked_seq = acked_seq;
	// A late commit of an older epoch's stream says nothing of the epoch
	// the agent is on now.
	if (ai != NULL && ai->epoch == st->epoch)
		ai->acked_seq = st->acked_seq;
	if (!st->resyncing)
		ingest_send_ack(in, st);
	for (struct commit *c = done; c != NULL && in->hooks.committed != NULL; c = c->next)
		in->hooks.committed(c->targets, c->n, clock_wall_us(), in->hooks.arg);
	ingest_free_commits(done);
}

struct hello_ctx {
	struct session *session;
	char name[WIRE_MAX_NAME + 1];
	char region[WIRE_MAX_NAME + 1];
	char version[65];
	uint64_t epoch;
};

static void
ingest_on_hello_done(int status, int agent_id, uint64_t acked_seq, void *arg)
{
	struct hello_ctx *h = arg;
	struct session *s = h->session;
	struct ingest *in = s->in;
	struct stream *st;
	struct agent_info *ai;

	s->pending--;
	if (status < 0 || s->gone) {
		// The agent says Hello again after a few seconds.
		free(h);
		return;
	}
	st = ingest_stream(in, agent_id, h->epoch);
	if (st == NULL) {
		st = xcalloc(1, sizeof(*st));
		st->agent_id = agent_id;
		st->epoch = h->epoch;
		st->acked_seq = st->queued_seq = acked_seq;
		st->in = in;
		st->commits_tail = &st->commits;
		st->next = in->streams;
		in->streams = st;
	}
	snprintf(st->name, sizeof(st->name), "%s", h->name);
	snprintf(st->region, sizeof(st->region), "%s", h->region);
	snprintf(st->version, sizeof(st->version), "%s", h->version);
	// Without CurveZMQ a connection may speak for another agent than
	// before: it no longer delivers for the old one's stream, which must
	// not keep it as its peer (the session is freed when reaped).
	if (s->stream != NULL && s->stream->agent_id != agent_id) {
		struct agent_info *prev = ingest_detach(in, s);

		if (prev != NULL)
			prev->connected = false;
		s->stream = NULL;
	}
	ingest_detach_others(in, agent_id, s);
	st->peer = s;
	st->agent_slot = agents_upsert(in->agents, agent_id, h->name, h->region, h->version);
	s->stream = st;
	s->agent_slot = st->agent_slot;
	ai = agents_get(in->agents, st->agent_slot);
	ai->connected = true;
	ai->connected_since = ai->last_seen = clock_wall_us();
	ai->epoch = st->epoch;
	ai->acked_seq = st->acked_seq;
	log_info(
	    "agent \"%s\" (region \"%s\", %s) connected from %s: epoch %llu, acked through %llu",
	    h->name, h->region, h->version, s->addr, (unsigned long long)h->epoch,
	    (unsigned long long)st->acked_seq);
	free(h);
	if (!st->resyncing)
		ingest_send_welcome(in, st);
	ingest_send_config(in, s, st->region);
}

static bool
ingest_region_known(const struct agg_conf *conf, const char *region)
{
	if (conf->n_regions == 0)
		return true;
	for (size_t i = 0; i < conf->n_regions; i++)
		if (strcmp(conf->regions[i].name, region) == 0)
			return true;
	return false;
}

static void
ingest_on_hello(struct ingest *in, struct session *s, const Vantage__Hello *hello)
{
	struct hello_ctx *h;

	// The key names the agent; the Hello only confirms it.
	if (in->zap != NULL && strcmp(s->user_id, hello->name) != 0) {
		char why[200];

		snprintf(why, sizeof(why),
		    "Hello names agent \"%s\" but the connection's key is that of agent \"%s\"",
		    hello->name, s->user_id[0] ? s->user_id : "(none)");
		in->stats.hello_name_mismatch++;
		ingest_bad(in, s, why);
		return;
	}
	if (!ingest_region_known(in->conf, hello->region)) {
		log_warnx("refusing agent \"%s\" from %s: region \"%s\" is not configured",
		    hello->name, s->addr, hello->region);
		s->bad_frames++;
		in->stats.bad_frames++;
		return;
	}
	if (s->pending > 0)
		return; // a Hello of this session is already being registered
	h = xcalloc(1, sizeof(*h));
	h->session = s;
	snprintf(h->name, sizeof(h->name), "%s", hello->name);
	snprintf(h->region, sizeof(h->region), "%s", hello->region);
	snprintf(h->version, sizeof(h->version), "%s", hello->version ? hello->version : "");
	h->epoch = hello->epoch;
	s->pending++;
	store_hello(in->store, h->name, h->region, h->version, h->epoch, ingest_on_hello_done, h);
}

// Fast confirmation: the first DOWN result for a target makes every other
// connected agent that probes it probe it at once.
static void
ingest_probe_now(struct ingest *in, size_t idx, const struct stream *from, int64_t now)
{
	const struct target_conf *tc = targets_conf(in->targets, idx);
	Vantage__AggMsg m = VANTAGE__AGG_MSG__INIT;
	Vantage__ProbeNow pn = VANTAGE__PROBE_NOW__INIT;
	char *key = tc->key;

	if (in->hooks.probe_now == NULL || !in->hooks.probe_now(idx, now, in->hooks.arg))
		return;
	pn.n_targets = 1;
	pn.targets = &key;
	m.msg_case = VANTAGE__AGG_MSG__MSG_PROBE_NOW;
	m.probe_now = &pn;
	for (struct stream *st = in->streams; st != NULL; st = st->next) {
		if (st == from || st->peer == NULL || st->peer->gone ||
		    !targets_probed_from(tc, st->region))
			continue;
		ingest_send(in, st->peer, &m);
		in->stats.probe_now_sent++;
	}
	log_debug("target \"%s\" failed from \"%s\": asked the other agents to probe it now",
	    tc->key, from->name);
}

static void
ingest_on_batch(struct ingest *in, struct session *s, const Vantage__ResultBatch *b)
{
	struct stream *st = s->stream;
	struct agent_info *ai;
	struct commit *c;
	uint64_t old_seq, new_seq;
	int64_t now = clock_wall_us(), fix;

	if (st == NULL || st->epoch != b->epoch || st->resyncing) {
		// Before Welcome or during a resync: the agent resends after
		// its next Welcome, so dropping loses nothing.
		in->stats.batches_dropped++;
		return;
	}
	ai = agents_get(in->agents, st->agent_slot);
	fix = agents_clock_correction(ai);
	old_seq = new_seq = st->queued_seq;
	c = xmalloc(sizeof(*c) + b->n_results * sizeof(c->targets[0]));
	c->next = NULL;
	c->n = 0;
	// A gap precedes the results of its batch: seqs the agent dropped
	// from its spool.  The part already stored is not missing; the rest
	// counts as delivered, so that the Ack moves past it.
	for (size_t i = 0; i < b->n_gaps; i++) {
		uint64_t first = b->gaps[i]->first_seq, last = b->gaps[i]->last_seq;

		if (last <= new_seq)
			continue;
		if (first <= new_seq)
			first = new_seq + 1;
		log_warnx("agent \"%s\" epoch %llu lost results %llu..%llu (dropped from its full "
			  "spool)",
		    st->name, (unsigned long long)st->epoch, (unsigned long long)first,
		    (unsigned long long)last);
		store_add_gap(in->store, st->agent_id, st->epoch, first, last);
		ai->results_lost += last - first + 1;
		new_seq = last;
	}
	for (size_t i = 0; i < b->n_results; i++) {
		const Vantage__Result *r = b->results[i];
		Vantage__Result fixed;
		int idx;

		if (r->seq <= new_seq) {
			in->stats.results_duplicate++;
			continue;
		}
		// Probe times in the aggregator's clock, so that votes,
		// staleness, incident times and stored rows of all agents
		// compare, however far off one agent's clock is.
		if (fix != 0) {
			fixed = *r;
			fixed.started_at += fix;
			fixed.scheduled_at += fix;
			r = &fixed;
		}
		idx = targets_find(in->targets, r->target);
		if (idx < 0) {
			in->stats.results_unknown++;
			store_add_result(in->store, st->agent_id, st->epoch, 0, r);
		} else {
			store_add_result(in->store, st->agent_id, st->epoch,
			    targets_id(in->targets, (size_t)idx), r);
			c->targets[c->n++] = (uint32_t)idx;
			if (targets_record(in->targets, (size_t)idx, st->agent_slot, r, now) &&
			    r->outcome == VANTAGE__OUTCOME__OUTCOME_DOWN)
				ingest_probe_now(in, (size_t)idx, st, now);
		}
		new_seq = r->seq;
		in->stats.results_received++;
		ai->results_received++;
	}
	if (new_seq > old_seq) {
		st->queued_seq = new_seq;
		c->end_seq = new_seq;
		*st->commits_tail = c;
		st->commits_tail = &c->next;
		store_add_progress(in->store, st->agent_id, st->epoch, old_seq, new_seq,
		    ingest_on_commit, st);
		return;
	}
	free(c);
	if (st->queued_seq == st->acked_seq) {
		// Nothing new and nothing pending: confirm at once so the agent
		// can trim what it resent.
		ingest_send_ack(in, st);
	}
}

// A probe that hangs: confirm from the other regions before it times out.
static void
ingest_on_suspect(struct ingest *in, struct session *s, const Vantage__Suspect *sus)
{
	int64_t now = clock_wall_us();

	if (s->stream == NULL || s->stream->resyncing)
		return;
	for (size_t i = 0; i < sus->n_targets; i++) {
		int idx = targets_find(in->targets, sus->targets[i]);

		if (idx >= 0)
			ingest_probe_now(in, (size_t)idx, s->stream, now);
	}
}

static void
ingest_on_heartbeat(struct ingest *in, struct session *s, const Vantage__Heartbeat *hb)
{
	struct agent_info *ai;
	bool impaired;

	if (s->stream == NULL)
		return;
	ai = agents_get(in->agents, s->agent_slot);
	ai->produced = hb->produced;
	ai->heartbeat_at = clock_wall_us();
	ai->spool_depth = hb->spool_depth;
	ai->spool_bytes = hb->spool_bytes;
	if (agents_set_clock_offset(ai, hb->clock_offset_us)) {
		if (ai->clock_off)
			log_warnx(
			    "agent \"%s\" (region \"%s\"): its clock is %.1f s %s the aggregator's; "
			    "its result times are corrected by that much",
			    ai->name, ai->region, (double)llabs(hb->clock_offset_us) / 1e6,
			    hb->clock_offset_us < 0 ? "ahead of" : "behind");
		else
			log_info(
			    "agent \"%s\" (region \"%s\"): its clock agrees with the aggregator's "
			    "again (%.3f s off)",
			    ai->name, ai->region, (double)hb->clock_offset_us / 1e6);
	}
	impaired = hb->state == VANTAGE__AGENT_STATE__AGENT_STATE_IMPAIRED;
	if (impaired && !ai->impaired)
		log_warnx("agent \"%s\" (region \"%s\") reports its own network impaired: %s; its "
			  "votes abstain until it recovers",
		    ai->name, ai->region, *hb->state_reason ? hb->state_reason : "no reason given");
	else if (!impaired && ai->impaired)
		log_info("agent \"%s\" (region \"%s\") reports its own network healthy again",
		    ai->name, ai->region);
	ai->impaired = impaired;
	snprintf(ai->impaired_reason, sizeof(ai->impaired_reason), "%s",
	    impaired ? hb->state_reason : "");
}

static void
ingest_bad(struct ingest *in, struct session *s, const char *why)
{
	in->stats.bad_frames++;
	if (s != NULL) {
		s->bad_frames++;
		if (s->stream != NULL)
			agents_get(in->agents, s->agent_slot)->bad_messages++;
		// The first few, then every 1000th: a hostile peer must not
		// flood the log.
		if (s->bad_frames <= 3 || s->bad_frames % 1000 == 0)
			log_warnx("dropping a bad message from %s (%llu so far): %s", s->addr,
			    (unsigned long long)s->bad_frames, why);
	} else if (in->stats.bad_frames <= 3 || in->stats.bad_frames % 1000 == 0) {
		log_warnx("dropping a bad message (%llu so far): %s",
		    (unsigned long long)in->stats.bad_frames, why);
	}
}

static void
ingest_on_msg(const struct zloop_frame *parts, int nparts, void *arg)
{
	struct ingest *in = arg;
	struct session *s;
	Vantage__AgentMsg *m;
	char err[256];

	if (nparts != 2) {
		s = nparts >= 1 ? ingest_session(in, &parts[0], NULL, false) : NULL;
		ingest_bad(in, s, nparts < 0 ? "too many frames" : "wrong number of frames");
		return;
	}
	s = ingest_session(in, &parts[0], &parts[1], true);
	if (s == NULL) {
		ingest_bad(in, NULL, "bad routing id or too many sessions");
		return;
	}
	s->last_seen_mono = clock_mono_us();
	m = wire_decode_agent(in->arena, zloop_frame_data(&parts[1]), zloop_frame_size(&parts[1]),
	    clock_wall_us(), err, sizeof(err));
	if (m == NULL) {
		ingest_bad(in, s, err);
		return;
	}
	if (s->stream != NULL)
		agents_get(in->agents, s->agent_slot)->last_seen = clock_wall_us();
	switch (m->msg_case) {
	case VANTAGE__AGENT_MSG__MSG_HELLO:
		ingest_on_hello(in, s, m->hello);
		break;
	case VANTAGE__AGENT_MSG__MSG_BATCH:
		ingest_on_batch(in, s, m->batch);
		break;
	case VANTAGE__AGENT_MSG__MSG_HEARTBEAT:
		ingest_on_heartbeat(in, s, m->heartbeat);
		break;
	case VANTAGE__AGENT_MSG__MSG_SUSPECT:
		ingest_on_suspect(in, s, m->suspect);
		break;
	default:
		break;
	}
	wire_arena_reset(in->arena);
}

// Sessions idle for long are gone (their agent reconnected under a new
// routing id or stopped), and so are those of a closed socket.  Freed only
// when no store operation points there.
static void
ingest_on_reap(evutil_socket_t fd, short what, void *arg)
{
	struct ingest *in = arg;
	int64_t now = clock_mono_us();
	struct session **pp = &in->sessions, *s;

	while ((s = *pp) != NULL) {
		if ((s->gone || now - s->last_seen_mono > INGEST_SESSION_IDLE_US) &&
		    s->pending == 0) {
			struct agent_info *ai = ingest_detach(in, s);

			if (ai != NULL && ai->connected) {
				ai->connected = false;
				log_warnx("agent \"%s\" has been silent for %lld s", ai->name,
				    (long long)(INGEST_SESSION_IDLE_US / 1000000));
			}
			*pp = s->next;
			in->n_sessions--;
			free(s);
			continue;
		}
		pp = &s->next;
	}
}

// Handshakes that fail before ZAP is asked: a client without CurveZMQ, or
// bytes that are not ZMTP.  The monitor says which descriptor a connection
// has when it is accepted and when it closes; a failed handshake is
// reported between the two.
static void
ingest_on_socket_event(uint16_t event, uint32_t value, const char *addr, void *arg)
{
	struct ingest *in = arg;
	struct accepted *a;

	switch (event) {
	case ZLOOP_EVENT_ACCEPTED: {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		const void *ip = NULL;

		a = &in->accepted[in->next_accepted++ % INGEST_ACCEPTED];
		a->fd = (int)value;
		snprintf(a->addr, sizeof(a->addr), "unknown");
		// The descriptor may be closed already if the handshake
		// failed at once: then the address is "unknown".
		if (getpeername(a->fd, (struct sockaddr *)&ss, &len) == 0)
			ip = ss.ss_family == AF_INET ?
			    (const void *)&((struct sockaddr_in *)&ss)->sin_addr :
			    ss.ss_family == AF_INET6 ?
			    (const void *)&((struct sockaddr_in6 *)&ss)->sin6_addr :
			    NULL;
		if (ip != NULL)
			inet_ntop(ss.ss_family, ip, a->addr, sizeof(a->addr));
		break;
	}
	case ZLOOP_EVENT_HANDSHAKE_FAILED_PROTOCOL:
		in->handshake_error = value;
		break;
	case ZLOOP_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
		// A client without CurveZMQ that reads our greeting first sees
		// the mechanism mismatch itself and hangs up before sending its
		// own: we only see the connection end in the handshake (about
		// half of the time, a race inside libzmq).  Counted with the
		// clients that do not use CurveZMQ, which is what it is, unless
		// a protocol error said more.
		if (in->handshake_error == 0)
			in->handshake_error = ZLOOP_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH;
		break;
	case ZLOOP_EVENT_DISCONNECTED: {
		const char *peer = "unknown";

		for (size_t i = 0; i < INGEST_ACCEPTED; i++) {
			a = &in->accepted[i];
			if (a->fd == (int)value && a->addr[0] != '\0') {
				peer = a->addr;
				a->fd = -1;
				break;
			}
		}
		if (in->handshake_error != 0)
			zap_refused(in->zap, peer,
			    in->handshake_error == ZLOOP_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH ?
				ZAP_REFUSED_PLAINTEXT :
				ZAP_REFUSED_HANDSHAKE);
		in->handshake_error = 0;
		break;
	}
	default:
		break;
	}
}

// Creates the ROUTER socket with its options and binds it.  Returns 0, or
// -1 with errno from zloop_bind (the socket is closed again).
static int
ingest_open(struct ingest *in)
{
	in->sock = zloop_socket(in->zctx, ZLOOP_ROUTER, WIRE_MAX_MSG);
	if (in->sock == NULL)
		fatalx("could not create a ZeroMQ socket: %s", zloop_strerror(errno));
	zloop_set_int(in->sock, ZLOOP_ROUTER_MANDATORY, 1);
	// A peer that connects and stalls in the handshake (a plaintext or
	// broken client, a half-dead link) is dropped after 5 s instead of
	// libzmq's default 30 s, so that it reconnects (and is counted and
	// refused again) within a few seconds; agents set the same on their end.
	zloop_set_int(in->sock, ZLOOP_HANDSHAKE_IVL, 5000);
	zloop_set_int(in->sock, ZLOOP_SNDHWM, 10000);
	zloop_set_int(in->sock, ZLOOP_RCVHWM, 10000);
	if (in->zap != NULL) {
		zloop_set_int(in->sock, ZLOOP_CURVE_SERVER, 1);
		// With a domain, ZAP is asked for every handshake; without a
		// handler bound, libzmq would admit any key.
		if (zloop_set_bytes(in->sock, ZLOOP_CURVE_SECRETKEY, in->secret.z85,
			CURVEKEY_Z85_LEN) < 0 ||
		    zloop_set_bytes(in->sock, ZLOOP_ZAP_DOMAIN, ZAP_DOMAIN, strlen(ZAP_DOMAIN)) < 0)
			fatalx("could not set up CurveZMQ on the agent socket: %s",
			    zloop_strerror(errno));
	}
	if (zloop_bind(in->sock, in->endpoint) < 0) {
		int err = errno;

		zloop_close(in->sock);
		in->sock = NULL;
		errno = err;
		return -1;
	}
	in->z = zloop_new(in->base, in->sock, ingest_on_msg, in);
	// Liveness comes from traffic (agents send a heartbeat every few
	// seconds), not from socket events, which name no routing id.
	if (in->z == NULL)
		fatalx("could not watch the ZeroMQ socket: %s", zloop_strerror(errno));
	if (in->zap != NULL &&
	    zloop_monitor(in->z, in->zctx,
		ZLOOP_EVENT_ACCEPTED | ZLOOP_EVENT_HANDSHAKE_FAILED_PROTOCOL |
		    ZLOOP_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZLOOP_EVENT_DISCONNECTED,
		ingest_on_socket_event, in) < 0)
		log_warnx(
		    "could not watch handshakes on the agent socket: refused plaintext clients "
		    "will not be logged: %s",
		    zloop_strerror(errno));
	return 0;
}

static void
ingest_close_socket(struct ingest *in)
{
	zloop_free(in->z);
	if (in->sock != NULL)
		zloop_close(in->sock);
	in->z = NULL;
	in->sock = NULL;
	for (size_t i = 0; i < INGEST_ACCEPTED; i++)
		in->accepted[i].fd = -1;
	in->handshake_error = 0;
}

// The old socket's listener closes in ZeroMQ's I/O thread, so the port
// may still be taken for a moment.
static void
ingest_on_rebind(evutil_socket_t fd, short what, void *arg)
{
	struct ingest *in = arg;
	struct timeval tv = { 0, INGEST_REBIND_RETRY_MS * 1000 };

	if (in->sock != NULL)
		return;
	if (ingest_open(in) == 0) {
		log_info("listening for agents on \"%s\" again", in->endpoint);
		in->rebind_failures = 0;
		return;
	}
	// Logged once (and every 10 s): it is retried ten times a second.
	if (in->rebind_failures++ % 100 == 0)
		log_warnx("cannot listen on \"%s\" again: %s; retrying", in->endpoint,
		    zloop_strerror(errno));
	evtimer_add(in->rebind, &tv);
}

struct ingest *
ingest_new(struct event_base *base, void *zctx, const struct agg_conf *conf, struct store *store,
    struct agents *agents, struct target_table *targets, const struct ingest_hooks *hooks,
    struct zap *zap, const struct curvekey *secret)
{
	struct ingest *in = xcalloc(1, sizeof(*in));
	struct timeval reap = { 10, 0 };

	in->base = base;
	in->zctx = zctx;
	in->conf = conf;
	in->store = store;
	in->agents = agents;
	in->targets = targets;
	if (hooks != NULL)
		in->hooks = *hooks;
	in->zap = zap;
	if (secret != NULL)
		in->secret = *secret;
	in->endpoint = xstrdup(conf->listen_zmq);
	in->config_version = (uint64_t)(clock_wall_us() / 1000000);
	in->arena = wire_arena_new();
	buf_init(&in->enc);
	if (zap == NULL)
		log_warnx(
		    "agents connect WITHOUT encryption or authentication (security: insecure: "
		    "true); anyone who reaches \"%s\" can submit results",
		    conf->listen_zmq);
	if (ingest_open(in) < 0) {
		log_warnx("cannot listen on \"%s\": %s", conf->listen_zmq, zloop_strerror(errno));
		wire_arena_free(in->arena);
		free(in->endpoint);
		explicit_bzero(&in->secret, sizeof(in->secret));
		free(in);
		return NULL;
	}
	in->rebind = evtimer_new(base, ingest_on_rebind, in);
	in->reaper = event_new(base, -1, EV_PERSIST, ingest_on_reap, in);
	event_add(in->reaper, &reap);
	log_info("listening for agents on \"%s\"%s", conf->listen_zmq,
	    zap != NULL ? " with CurveZMQ" : "");
	return in;
}

void
ingest_drop_connections(struct ingest *in)
{
	if (in->z == NULL && !evtimer_pending(in->rebind, NULL))
		return; // closed for shutdown
	ingest_close_socket(in);
	// All gone first: no session of the closed socket counts as live
	// for another one's agent.
	for (struct session *s = in->sessions; s != NULL; s = s->next)
		s->gone = true;
	for (struct session *s = in->sessions; s != NULL; s = s->next) {
		struct agent_info *ai = ingest_detach(in, s);

		// The others are back within a second: marking them
		// disconnected would make every vote abstain meanwhile.
		if (ai != NULL && in->zap != NULL && !zap_admits(in->zap, s->user_id))
			ai->connected = false;
	}
	log_info("dropped every agent connection; agents reconnect and resend what is not "
		 "acknowledged");
	evtimer_del(in->rebind);
	ingest_on_rebind(-1, 0, in);
}

void
ingest_close(struct ingest *in)
{
	if (in == NULL)
		return;
	if (in->rebind != NULL)
		evtimer_del(in->rebind);
	ingest_close_socket(in);
}

void
ingest_free(struct ingest *in)
{
	struct session *s, *sn;
	struct stream *st, *stn;

	if (in == NULL)
		return;
	ingest_close(in);
	event_free(in->reaper);
	event_free(in->rebind);
	for (s = in->sessions; s != NULL; s = sn) {
		sn = s->next;
		free(s);
	}
	for (st = in->streams; st != NULL; st = stn) {
		stn = st->next;
		// Commits the store never reported (it is freed first).
		ingest_free_commits(st->commits);
		free(st);
	}
	wire_arena_free(in->arena);
	buf_free(&in->enc);
	free(in->endpoint);
	explicit_bzero(&in->secret, sizeof(in->secret));
	free(in);
}

void
ingest_reconfigure(struct ingest *in, const struct agg_conf *conf, struct target_table *targets)
{
	// Commits still queued name targets of the old table: translate
	// them by key (a target no longer configured drops out).
	for (struct stream *st = in->streams; st != NULL; st = st->next)
		for (struct commit *c = st->commits; c != NULL; c = c->next) {
			size_t n = 0;

			for (size_t i = 0; i < c->n; i++) {
				int idx = targets_find(targets,
				    targets_conf(in->targets, c->targets[i])->key);

				if (idx >= 0)
					c->targets[n++] = (uint32_t)idx;
			}
			c->n = n;
		}
	in->conf = conf;
	in->targets = targets;
	in->config_version = (uint64_t)(clock_wall_us() / 1000000);
	for (struct stream *st = in->streams; st != NULL; st = st->next)
		if (st->peer != NULL)
			ingest_send_config(in, st->peer, st->region);
}

void
ingest_get_stats(const struct ingest *in, struct ingest_stats *out)
{
	*out = in->stats;
	if (in->zap != NULL)
		zap_get_stats(in->zap, &out->auth);
}
