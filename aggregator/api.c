// SPDX-License-Identifier: Apache-2.0
//
// HTTP API; see api.h.  Every response is built with jansson; the routes
// are matched by http_server.c, and what they take from the path (target
// keys, ids) is checked against its charset here before lookup, so nothing
// from the URL reaches a format string or the database.
#include "api.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#include "clock.h"
#include "http_server.h"
#include "log.h"
#include "wire.h"
#include "xmalloc.h"
#include "version.h"

#define API_GET (EVHTTP_REQ_GET | EVHTTP_REQ_HEAD)

struct api {
	struct http_server *srv;
	struct agents *agents;
	struct target_table *targets;
	struct store *store;
	struct ingest *ingest;
	struct verdict *verdict;
	int64_t started_wall;
};

static json_t *
api_time(int64_t unix_us)
{
	char iso[40];

	if (unix_us <= 0)
		return json_null();
	clock_iso8601(unix_us, iso, sizeof(iso));
	return json_string(iso);
}

static json_t *
api_text_or_null(const char *s)
{
	return s != NULL && *s ? json_string(s) : json_null();
}

static const char *const api_kind_names[] = { "", "http", "tcp", "dns", "icmp" };

// The quorum verdict of a target, merged into object o.
static void
api_target_state(struct api *api, size_t idx, json_t *o)
{
	const struct verdict_target *tv = verdict_state(api->verdict, idx);

	json_object_set_new(o, "state", json_string(quorum_state_name(tv->last.state)));
	json_object_set_new(o, "state_since", api_time(tv->state_since));
	json_object_set_new(o, "regions_up", json_integer(tv->last.regions_up));
	json_object_set_new(o, "regions_down", json_integer(tv->last.regions_down));
	json_object_set_new(o, "regions_abstaining", json_integer(tv->last.regions_abstain));
	json_object_set_new(o, "quorum", json_integer(tv->last.needed));
	json_object_set_new(o, "flapping", json_boolean(tv->last.flapping));
}

// Overall state: the worst of the targets (down > degraded > unknown > up).
static void
api_status(struct http_call *call, void *arg)
{
	struct api *api = arg;
	static const int rank[] = { [QSTATE_UP] = 0,
		[QSTATE_UNKNOWN] = 1,
		[QSTATE_DEGRADED] = 2,
		[QSTATE_DOWN] = 3 };
	enum quorum_state worst = QSTATE_UP;
	json_t *list = json_array();

	for (size_t i = 0; i < targets_count(api->targets); i++) {
		const struct verdict_target *tv = verdict_state(api->verdict, i);
		const struct target_conf *tc = targets_conf(api->targets, i);
		json_t *t = json_object();

		json_object_set_new(t, "key", json_string(tc->key));
		json_object_set_new(t, "group", api_text_or_null(tc->group));
		api_target_state(api, i, t);
		json_array_append_new(list, t);
		if (rank[tv->last.state] > rank[worst])
			worst = tv->last.state;
	}
	http_server_reply_json(call->req, HTTP_OK,
	    json_pack("{s:s,s:o,s:o}", "status", quorum_state_name(worst), "time",
		api_time(clock_wall_us()), "targets", list));
}

static json_t *
api_target(struct api *api, size_t idx, int64_t now)
{
	const struct target_conf *tc = targets_conf(api->targets, idx);
	const struct latest_result *latest;
	json_t *t = json_object(), *regions = json_array();
	size_t n;

	json_object_set_new(t, "key", json_string(tc->key));
	json_object_set_new(t, "group", api_text_or_null(tc->group));
	json_object_set_new(t, "kind", json_string(api_kind_names[tc->kind]));
	if (tc->kind == PROBE_HTTP)
		json_object_set_new(t, "url", json_string(tc->http.url));
	json_object_set_new(t, "interval_s", json_real(tc->interval_ms / 1000.0));
	json_object_set_new(t, "timeout_s", json_real(tc->timeout_ms / 1000.0));
	api_target_state(api, idx, t);
	latest = targets_latest(api->targets, idx, &n);
	for (size_t i = 0; i < n; i++) {
		const struct latest_result *l = &latest[i];
		const struct agent_info *ai = agents_get(api->agents, l->agent_slot);
		json_t *r = json_object();

		json_object_set_new(r, "region", json_string(ai ? ai->region : "unknown"));
		json_object_set_new(r, "agent", json_string(ai ? ai->name : "unknown"));
		json_object_set_new(r, "outcome", json_string(wire_outcome_name(l->outcome)));
		json_object_set_new(r, "vote",
		    json_string(quorum_vote_name(verdict_agent_vote(api->verdict, idx, l, now))));
		json_object_set_new(r, "reason",
		    l->reason ? json_string(wire_reason_name(l->reason)) : json_null());
		json_object_set_new(r, "trigger", json_string(wire_trigger_name(l->trigger)));
		json_object_set_new(r, "http_status",
		    l->http_status ? json_integer(l->http_status) : json_null());
		json_object_set_new(r, "phases_us",
		    json_pack("{s:I,s:I,s:I,s:I,s:I}", "dns", (json_int_t)l->dns_us, "connect",
			(json_int_t)l->connect_us, "tls", (json_int_t)l->tls_us, "ttfb",
			(json_int_t)l->ttfb_us, "total", (json_int_t)l->total_us));
		json_object_set_new(r, "started_at", api_time(l->started_at));
		json_object_set_new(r, "age_s", json_real((now - l->received_at) / 1e6));
		json_object_set_new(r, "seq", json_integer((json_int_t)l->seq));
		json_object_set_new(r, "error", api_text_or_null(l->error));
		json_array_append_new(regions, r);
	}
	json_object_set_new(t, "regions", regions);
	return t;
}

static void
api_target_list(struct http_call *call, void *arg)
{
	struct api *api = arg;
	int64_t now = clock_wall_us();
	json_t *list = json_array();

	for (size_t i = 0; i < targets_count(api->targets); i++)
		json_array_append_new(list, api_target(api, i, now));
	http_server_reply_json(call->req, HTTP_OK, json_pack("{s:o}", "targets", list));
}

static bool api_key_ok(const char *key);

static void
api_target_one(struct http_call *call, void *arg)
{
	struct api *api = arg;
	const char *key = http_server_param(&call->params, "key");
	int idx;

	if (!api_key_ok(key)) {
		http_server_error(call->req, HTTP_BADREQUEST,
		    "a target key is 1 to 128 characters of A-Z a-z 0-9 . _ -");
		return;
	}
	idx = targets_find(api->targets, key);
	if (idx < 0) {
		char msg[200];

		snprintf(msg, sizeof(msg), "target \"%.128s\" not found", key);
		http_server_error(call->req, HTTP_NOTFOUND, msg);
		return;
	}
	http_server_reply_json(call->req, HTTP_OK, api_target(api, (size_t)idx, clock_wall_us()));
}

// Connections admitted and refused by CurveZMQ (all zero in insecure mode):
// an unknown agent knocking shows here even though it has no entry.
static json_t *
api_handshakes(struct api *api)
{
	struct ingest_stats is;

	ingest_get_stats(api->ingest, &is);
	// One key/value pair a line, nested as in the JSON: clang-format would pack them.
	// clang-format off
	return json_pack("{s:I,s:I,s:{s:I,s:I,s:I,s:I,s:I,s:I},s:I}",
	    "keys", (json_int_t)is.auth.keys, "admitted", (json_int_t)is.auth.admitted,
	    "refused", "unknown_key", (json_int_t)is.auth.refused_unknown_key,
	    "revoked_key", (json_int_t)is.auth.refused_revoked_key,
	    "plaintext", (json_int_t)is.auth.refused_plaintext,
	    "mechanism", (json_int_t)is.auth.refused_mechanism,
	    "handshake", (json_int_t)is.auth.refused_handshake,
	    "hello_name_mismatch", (json_int_t)is.hello_name_mismatch,
	    "refused_total", (json_int_t)(is.auth.refused_unknown_key + is.auth.refused_revoked_key +
		is.auth.refused_plaintext + is.auth.refused_mechanism + is.auth.refused_handshake));
	// clang-format on
}

static void
api_agents(struct http_call *call, void *arg)
{
	struct api *api = arg;
	json_t *list = json_array();
	int64_t now = clock_wall_us();

	for (size_t i = 0; i < agents_count(api->agents); i++) {
		const struct agent_info *ai = agents_get(api->agents, i);
		char epoch[24];

		// The epoch is an unsigned 64-bit number: a string keeps it exact.
		snprintf(epoch, sizeof(epoch), "%llu", (unsigned long long)ai->epoch);
		json_array_append_new(list,
		    json_pack("{s:s,s:s,s:s,s:b,s:o,s:o,s:s,s:I,s:I,s:I,s:I,s:I,s:b,s:o,s:I,s:I}",
			"name", ai->name, "region", ai->region, "version", ai->version, "connected",
			agents_connected(ai, now), "connected_since", api_time(ai->connected_since),
			"last_seen", api_time(ai->last_seen), "epoch", epoch, "acked_seq",
			(json_int_t)ai->acked_seq, "produced", (json_int_t)ai->produced,
			"spool_depth", (json_int_t)ai->spool_depth, "results_received",
			(json_int_t)ai->results_received, "results_lost",
			(json_int_t)ai->results_lost, "impaired", ai->impaired, "impaired_reason",
			ai->impaired ? api_text_or_null(ai->impaired_reason) : json_null(),
			"bad_messages", (json_int_t)ai->bad_messages, "clock_offset_us",
			(json_int_t)ai->clock_offset_us));
	}
	http_server_reply_json(call->req, HTTP_OK,
	    json_pack("{s:o,s:o}", "agents", list, "handshakes", api_handshakes(api)));
}

static void
api_healthz(struct http_call *call, void *arg)
{
	struct api *api = arg;
	struct store_stats ss;
	struct ingest_stats is;

	int64_t down_since = 0;
	bool down = store_down_since(api->store, &down_since);

	store_get_stats(api->store, &ss);
	ingest_get_stats(api->ingest, &is);
	// 503 while the database is away: results are not being stored and
	// API reads fail, whatever the rest of the process does.
	// One key/value pair a line, nested as in the JSON: clang-format would pack them.
	// clang-format off
	http_server_reply_json(call->req, down ? 503 : HTTP_OK, json_pack(
	    "{s:s,s:s,s:s,s:o,s:o,s:{s:I,s:I,s:I,s:I,s:I},s:{s:I,s:I,s:I,s:I,s:I,s:I}}",
	    "status", down ? "degraded" : "ok", "version", vantage_version,
	    "database", down ? "down" : "up",
	    "database_down_s", down && down_since > 0 ?
		json_real((double)(clock_mono_us() - down_since) / 1e6) : json_null(),
	    "started_at", api_time(api->started_wall),
	    "ingest", "results_received", (json_int_t)is.results_received,
	    "results_duplicate", (json_int_t)is.results_duplicate,
	    "results_unknown_target", (json_int_t)is.results_unknown,
	    "batches_dropped", (json_int_t)is.batches_dropped,
	    "bad_frames", (json_int_t)is.bad_frames,
	    "store", "rows_committed", (json_int_t)ss.rows_committed,
	    "transactions", (json_int_t)ss.txns_committed,
	    "transactions_failed", (json_int_t)ss.txns_failed,
	    "reconnects", (json_int_t)ss.reconnects,
	    "last_commit_us", (json_int_t)ss.last_commit_us,
	    "rows_pending", (json_int_t)ss.rows_pending));
	// clang-format on
}

// --- incidents: answered from the database, asynchronously ---

// A request waiting for the store.  If the client goes away first, the
// answer is dropped (http_server_wait_end says so).
struct api_pending {
	struct http_wait *wait;
	const char *wrap;    // list: the key it goes under; NULL: one object
	int ok_code;         // 200, or 201 for a creation
	const char *missing; // the 404 message when no row came back
};

static const char sql_incident_list[] =
    "SELECT coalesce(json_agg(x ORDER BY x.id DESC), '[]')::text FROM ("
    " SELECT i.id, t.key AS target, i.kind, i.state, i.started_at, i.detected_at,"
    " i.resolved_at, i.regions, i.flapping,"
    " round(extract(epoch FROM i.detected_at - i.started_at)::numeric, 3) AS time_to_detect_s,"
    " round(extract(epoch FROM i.resolved_at - i.started_at)::numeric, 3) AS duration_s,"
    " i.postmortem_state"
    " FROM incidents i JOIN targets t ON t.id = i.target_id"
    " WHERE ($1::text IS NULL OR i.state = $1) AND ($2::timestamptz IS NULL OR"
    " coalesce(i.resolved_at, 'infinity') >= $2)"
    " ORDER BY i.id DESC LIMIT 500) x";

static const char sql_incident_one[] =
    "SELECT json_build_object('id', i.id, 'target', t.key, 'kind', i.kind, 'state', i.state,"
    " 'started_at', i.started_at, 'detected_at', i.detected_at, 'resolved_at', i.resolved_at,"
    " 'regions', i.regions, 'flapping', i.flapping,"
    " 'time_to_detect_s', round(extract(epoch FROM i.detected_at - i.started_at)::numeric, 3),"
    " 'duration_s', round(extract(epoch FROM i.resolved_at - i.started_at)::numeric, 3),"
    " 'timeline', (SELECT coalesce(json_agg(json_build_object('at', e.at, 'kind', e.kind,"
    "   'region', e.region, 'message', e.message) ORDER BY e.at, e.id), '[]')"
    "   FROM incident_events e WHERE e.incident_id = i.id),"
    " 'updates', (SELECT coalesce(json_agg(json_build_object('at', u.at, 'state', u.state,"
    "   'message', u.message, 'author', u.author) ORDER BY u.at), '[]')"
    "   FROM incident_updates u WHERE u.incident_id = i.id),"
    " 'alerts', (SELECT coalesce(json_agg(json_build_object('channel', a.channel, 'event', a.event,"
    "   'created_at', a.created_at, 'sent_at', a.sent_at, 'attempts', a.attempts,"
    "   'last_error', a.last_error) ORDER BY a.id), '[]')"
    "   FROM alert_outbox a WHERE a.incident_id = i.id),"
    " 'postmortem', json_build_object('state', i.postmortem_state, 'markdown', i.postmortem_md)"
    " )::text FROM incidents i JOIN targets t ON t.id = i.target_id WHERE i.id = $1";

static void
api_on_rows(int status, const struct store_result *r, void *arg)
{
	struct api_pending *p = arg;
	struct evhttp_request *req = http_server_wait_end(p->wait);
	const char *text = status == 0 ? store_result_value(r, 0, 0) : NULL;
	json_error_t jerr;
	json_t *doc;

	if (req == NULL)
		goto done; // the client left
	if (status < 0) {
		http_server_error(req, 503,
		    "the database is unavailable; try again when /healthz reports it up");
		goto done;
	}
	if (text == NULL) {
		http_server_error(req, HTTP_NOTFOUND, p->missing);
		goto done;
	}
	doc = json_loads(text, 0, &jerr);
	if (doc == NULL) {
		http_server_error(req, HTTP_INTERNAL, "bad JSON from the database");
		goto done;
	}
	http_server_reply_json(req, p->ok_code,
	    p->wrap == NULL ? doc : json_pack("{s:o}", p->wrap, doc));
done:
	free(p);
}

// Runs a statement whose first column is the JSON answer.  wrap: the key a
// list goes under (NULL for one object); missing: the 404 text.  While
// the database is down it fails at once (store_query_now); while it is
// slow, http_server_wait_new bounds how many requests wait.
static void
api_query(struct api *api, struct evhttp_request *req, const char *sql, int n,
    const char *const *values, const char *wrap, int ok_code, const char *missing)
{
	struct http_wait *wait = http_server_wait_new(api->srv, req,
	    "too many requests wait for the database");
	struct api_pending *p;

	if (wait == NULL)
		return;
	p = xcalloc(1, sizeof(*p));
	p->wait = wait;
	p->wrap = wrap;
	p->ok_code = ok_code;
	p->missing = missing;
	store_query_now(api->store, sql, n, values, api_on_rows, p);
}

// An ISO-8601 time as PostgreSQL reads it; anything else is refused here
// so that a bad parameter is a 400, not a database error.
static bool
api_time_ok(const char *s)
{
	size_t n = strlen(s);

	return n >= 10 && n <= 40 && strspn(s, "0123456789") == 4 && s[4] == '-' &&
	    strspn(s, "0123456789-:T.Z+ ") == n;
}

// An id from the path as the text of a statement's parameter, or -1
// after answering 400 with msg.
static int
api_id_param(struct http_call *call, const char *msg, char *text, size_t len)
{
	int64_t id;

	if (http_server_param_id(call, "id", msg, &id) < 0)
		return -1;
	snprintf(text, len, "%" PRId64, id);
	return 0;
}

static void
api_incident_one(struct http_call *call, void *arg)
{
	char id[24];
	const char *v[1] = { id };

	if (api_id_param(call, "an incident id is a number", id, sizeof(id)) == 0)
		api_query(arg, call->req, sql_incident_one, 1, v, NULL, HTTP_OK,
		    "no such incident");
}

static void
api_incident_list(struct http_call *call, void *arg)
{
	struct evhttp_request *req = call->req;
	struct evkeyvalq query;
	const char *state, *since;
	const char *q = strchr(evhttp_request_get_uri(req), '?');

	TAILQ_INIT(&query);
	if (q != NULL && evhttp_parse_query_str(q + 1, &query) < 0) {
		http_server_error(req, HTTP_BADREQUEST, "malformed query string");
		return;
	}
	state = evhttp_find_header(&query, "state");
	since = evhttp_find_header(&query, "since");
	if (state != NULL && strcmp(state, "open") != 0 && strcmp(state, "resolved") != 0) {
		http_server_error(req, HTTP_BADREQUEST, "state must be \"open\" or \"resolved\"");
	} else if (since != NULL && !api_time_ok(since)) {
		http_server_error(req, HTTP_BADREQUEST,
		    "since must be an ISO-8601 time such as 2026-01-31T12:00:00Z");
	} else {
		const char *v[2] = { state, since };

		api_query(arg, req, sql_incident_list, 2, v, "incidents", HTTP_OK, "");
	}
	evhttp_clear_headers(&query);
}

// --- silences: alerts muted for a target (or all) during a time window ---

static const char sql_silence_list[] =
    "SELECT coalesce(json_agg(json_build_object('id', id, 'target', target_key,"
    " 'starts_at', starts_at, 'ends_at', ends_at, 'reason', reason, 'created_by', created_by)"
    " ORDER BY id), '[]')::text FROM silences WHERE ends_at > now()";

static const char sql_silence_add[] =
    "INSERT INTO silences (target_key, starts_at, ends_at, reason, created_by)"
    " VALUES ($1, coalesce($2::timestamptz, now()),"
    " coalesce($2::timestamptz, now()) + make_interval(secs => $3::double precision), $4, $5)"
    " RETURNING json_build_object('id', id, 'target', target_key, 'starts_at', starts_at,"
    " 'ends_at', ends_at, 'reason', reason, 'created_by', created_by)::text";

static const char sql_silence_end[] =
    "UPDATE silences SET ends_at = greatest(starts_at + interval '1 microsecond', now())"
    " WHERE id = $1 AND ends_at > now()"
    " RETURNING json_build_object('id', id, 'target', target_key, 'starts_at', starts_at,"
    " 'ends_at', ends_at, 'reason', reason, 'created_by', created_by)::text";

#define API_MAX_SILENCE_S (30 * 86400)

// The request body as a JSON object, or NULL after answering 400/413.
static json_t *
api_body(struct evhttp_request *req)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	json_error_t jerr;
	json_t *doc;

	if (len > HTTP_MAX_BODY) {
		http_server_error(req, 413, "the body is larger than 64 KiB");
		return NULL;
	}
	doc = json_loadb((const char *)evbuffer_pullup(in, -1), len, JSON_REJECT_DUPLICATES, &jerr);
	if (doc == NULL || !json_is_object(doc)) {
		char msg[256];

		snprintf(msg, sizeof(msg), "the body must be a JSON object: %s",
		    doc == NULL ? jerr.text : "not an object");
		json_decref(doc);
		http_server_error(req, HTTP_BADREQUEST, msg);
		return NULL;
	}
	return doc;
}

static void
api_silence_add(struct http_call *call, void *arg)
{
	struct api *api = arg;
	struct evhttp_request *req = call->req;
	const char *who = call->token;
	json_t *doc = api_body(req), *v;
	const char *field, *target = NULL, *starts = NULL, *reason = "", *bad = NULL;
	double secs = 0;
	char secs_text[32];

	if (doc == NULL)
		return;
	json_object_foreach(doc, field, v) {
		if (strcmp(field, "target") != 0 && strcmp(field, "starts_at") != 0 &&
		    strcmp(field, "duration_s") != 0 && strcmp(field, "reason") != 0)
			bad = "unknown field (allowed: target, starts_at, duration_s, reason)";
	}
	if ((v = json_object_get(doc, "target")) != NULL && !json_is_null(v)) {
		target = json_string_value(v);
		if (target == NULL || !api_key_ok(target) || targets_find(api->targets, target) < 0)
			bad = "target must name a configured target (or be omitted for all)";
	}
	if ((v = json_object_get(doc, "starts_at")) != NULL) {
		starts = json_string_value(v);
		if (starts == NULL || !api_time_ok(starts))
			bad = "starts_at must be an ISO-8601 time";
	}
	v = json_object_get(doc, "duration_s");
	secs = json_is_number(v) ? json_number_value(v) : 0;
	if (!(secs >= 1 && secs <= API_MAX_SILENCE_S))
		bad = "duration_s must be a number of seconds from 1 to 2592000 (30 days)";
	if ((v = json_object_get(doc, "reason")) != NULL) {
		reason = json_string_value(v);
		if (reason == NULL || strlen(reason) > 512)
			bad = "reason must be a string of at most 512 bytes";
	}
	if (bad != NULL) {
		http_server_error(req, HTTP_BADREQUEST, bad);
	} else {
		const char *values[5] = { target, starts, secs_text, reason, who };

		snprintf(secs_text, sizeof(secs_text), "%.3f", secs);
		api_query(api, req, sql_silence_add, 5, values, NULL, 201, "");
		log_info("silence added by token \"%s\" for %s, %.0f s", who,
		    target != NULL ? target : "every target", secs);
	}
	json_decref(doc);
}

static void
api_silence_list(struct http_call *call, void *arg)
{
	api_query(arg, call->req, sql_silence_list, 0, NULL, "silences", HTTP_OK, "");
}

static void
api_silence_end(struct http_call *call, void *arg)
{
	char id[24];
	const char *v[1] = { id };

	if (api_id_param(call, "a silence id is a number", id, sizeof(id)) == 0)
		api_query(arg, call->req, sql_silence_end, 1, v, NULL, HTTP_OK,
		    "no such silence, or it has ended");
}

// --- incident updates and post-mortems: what people write ---

// An update for the customers (the status page shows them newest first);
// the first one of an incident is its first public update.
static const char sql_update_add[] =
    "WITH i AS (UPDATE incidents SET first_public_at = coalesce(first_public_at, now())"
    " WHERE id = $1 RETURNING id),"
    " u AS (INSERT INTO incident_updates (incident_id, state, message, author)"
    " SELECT id, $2, $3, $4 FROM i RETURNING id, incident_id, at, state, message, author)"
    " SELECT json_build_object('id', id, 'incident', incident_id, 'at', at, 'state', state,"
    " 'message', message, 'author', author)::text FROM u";

#define API_MAX_UPDATE 4096

static void
api_update_add(struct http_call *call, void *arg)
{
	struct evhttp_request *req = call->req;
	const char *field, *state = NULL, *message = NULL, *bad = NULL;
	char id[24];
	json_t *doc, *v;

	if (api_id_param(call, "an incident id is a number", id, sizeof(id)) < 0 ||
	    (doc = api_body(req)) == NULL)
		return;
	json_object_foreach(doc, field, v) {
		if (strcmp(field, "state") != 0 && strcmp(field, "message") != 0)
			bad = "unknown field (allowed: state, message)";
	}
	state = json_string_value(json_object_get(doc, "state"));
	message = json_string_value(json_object_get(doc, "message"));
	if (state == NULL ||
	    (strcmp(state, "investigating") != 0 && strcmp(state, "identified") != 0 &&
		strcmp(state, "monitoring") != 0 && strcmp(state, "resolved") != 0))
		bad = "state must be investigating, identified, monitoring or resolved";
	else if (message == NULL || message[0] == '\0' || strlen(message) > API_MAX_UPDATE)
		bad = "message must be a non-empty string of at most 4096 bytes";
	if (bad != NULL) {
		http_server_error(req, HTTP_BADREQUEST, bad);
	} else {
		const char *values[4] = { id, state, message, call->token };

		api_query(arg, req, sql_update_add, 4, values, NULL, 201, "no such incident");
		log_info("incident %s: update \"%s\" posted by token \"%s\"", id, state,
		    call->token);
	}
	json_decref(doc);
}

// A post-mortem's ETag: a hash of its Markdown, quoted.
#define API_PM_ETAG(md) "'\"' || md5(coalesce(" md ", '')) || '\"'"

static const char sql_pm_get[] =
    "SELECT json_build_object('incident', id, 'state', postmortem_state,"
    " 'markdown', postmortem_md, 'edited_at', postmortem_edited_at,"
    " 'edited_by', postmortem_edited_by)::text, " API_PM_ETAG(
	"postmortem_md") " FROM incidents WHERE id = $1";

// $3: the If-Match value ("*": any).  Editing keeps a published
// post-mortem published; anything else becomes (or stays) a draft that
// automatic drafting no longer overwrites.
static const char sql_pm_put[] = "WITH cur AS (SELECT id, " API_PM_ETAG(
    "postmortem_md") " AS etag FROM incidents"
		     " WHERE id = $1 FOR UPDATE),"
		     " up AS (UPDATE incidents i SET postmortem_md = $2,"
		     " postmortem_state = coalesce(i.postmortem_state, 'draft'),"
		     " postmortem_edited_at = now(), postmortem_edited_by = $4"
		     " FROM cur WHERE i.id = cur.id AND ($3 = '*' OR cur.etag = $3)"
		     " RETURNING i.id, i.postmortem_state, i.postmortem_md, i.postmortem_edited_at,"
		     " i.postmortem_edited_by)"
		     " SELECT (SELECT count(*) FROM cur), (SELECT json_build_object('incident', id,"
		     " 'state', postmortem_state, 'markdown', postmortem_md, 'edited_at', postmortem_edited_at,"
		     " 'edited_by', postmortem_edited_by)::text FROM up), " API_PM_ETAG("$2::text");

static const char sql_pm_publish[] =
    "WITH cur AS (SELECT id, postmortem_md FROM incidents WHERE id = $1 FOR UPDATE),"
    " up AS (UPDATE incidents i SET postmortem_state = 'published' FROM cur"
    " WHERE i.id = cur.id AND cur.postmortem_md IS NOT NULL RETURNING i.id, i.postmortem_md)"
    " SELECT (SELECT count(*) FROM cur), (SELECT json_build_object('incident', id,"
    " 'state', 'published', 'markdown', postmortem_md)::text FROM up),"
    " (SELECT " API_PM_ETAG("postmortem_md") " FROM up)";

// The answer of sql_pm_get / sql_pm_put / sql_pm_publish: 404 for an
// unknown incident, 412 (PUT) or 409 (publish) when nothing changed, else
// the post-mortem with its ETag.
struct api_pm {
	struct http_wait *wait;
	bool get;
	int refused_code;
	const char *refused;
};

static void
api_on_pm(int status, const struct store_result *r, void *arg)
{
	struct api_pm *p = arg;
	struct evhttp_request *req = http_server_wait_end(p->wait);
	const char *found, *text, *etag;
	json_t *doc;

	if (req == NULL)
		goto done;
	if (status < 0) {
		http_server_error(req, 503,
		    "the database is unavailable; try again when /healthz reports it up");
		goto done;
	}
	if (store_result_rows(r) == 0) {
		http_server_error(req, HTTP_NOTFOUND, "no such incident");
		goto done;
	}
	found = p->get ? "1" : store_result_value(r, 0, 0);
	text = store_result_value(r, 0, p->get ? 0 : 1);
	etag = store_result_value(r, 0, p->get ? 1 : 2);
	if (found == NULL || strcmp(found, "0") == 0) {
		http_server_error(req, HTTP_NOTFOUND, "no such incident");
		goto done;
	}
	if (text == NULL || (doc = json_loads(text, 0, NULL)) == NULL) {
		http_server_error(req, p->refused_code, p->refused);
		goto done;
	}
	if (etag != NULL)
		evhttp_add_header(evhttp_request_get_output_headers(req), "ETag", etag);
	http_server_reply_json(req, HTTP_OK, doc);
done:
	free(p);
}

static void
api_pm_query(struct api *api, struct evhttp_request *req, const char *sql, int n,
    const char *const *values, bool get, int refused_code, const char *refused)
{
	struct http_wait *wait = http_server_wait_new(api->srv, req,
	    "too many requests wait for the database");
	struct api_pm *p;

	if (wait == NULL)
		return;
	p = xcalloc(1, sizeof(*p));
	p->wait = wait;
	p->get = get;
	p->refused_code = refused_code;
	p->refused = refused;
	store_query_now(api->store, sql, n, values, api_on_pm, p);
}

static void
api_pm_get(struct http_call *call, void *arg)
{
	char id[24];
	const char *v[1] = { id };

	if (api_id_param(call, "an incident id is a number", id, sizeof(id)) == 0)
		api_pm_query(arg, call->req, sql_pm_get, 1, v, true, HTTP_INTERNAL,
		    "bad JSON from the database");
}

// The body is the Markdown itself (text/markdown), at most HTTP_MAX_BODY
// bytes of UTF-8 without NUL; If-Match is required, so that two editors
// never overwrite each other (412 when it is stale, 428 when absent).
static void
api_pm_put(struct http_call *call, void *arg)
{
	struct evhttp_request *req = call->req;
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	const char *match = evhttp_find_header(evhttp_request_get_input_headers(req), "If-Match");
	size_t len = evbuffer_get_length(in);
	json_t *utf8 = NULL;
	char id[24], *md;

	if (api_id_param(call, "an incident id is a number", id, sizeof(id)) < 0)
		return;
	if (len > HTTP_MAX_BODY) {
		http_server_error(req, 413, "the body is larger than 64 KiB");
		return;
	}
	if (match == NULL) {
		http_server_error(req, 428,
		    "If-Match is required: GET the post-mortem and send its ETag back (or \"*\")");
		return;
	}
	md = len > 0 ? xstrndup((const char *)evbuffer_pullup(in, -1), len) : xstrdup("");
	// jansson refuses a string that is not UTF-8 or holds a NUL.
	if (strlen(md) != len || (utf8 = json_stringn(md, len)) == NULL) {
		http_server_error(req, HTTP_BADREQUEST, "the body must be UTF-8 Markdown text");
	} else {
		const char *v[4] = { id, md, match, call->token };

		api_pm_query(arg, req, sql_pm_put, 4, v, false, 412,
		    "the post-mortem changed since that ETag: GET it again and merge");
		log_info("incident %s: post-mortem edited by token \"%s\"", id, call->token);
	}
	json_decref(utf8);
	free(md);
}

static void
api_pm_publish(struct http_call *call, void *arg)
{
	char id[24];
	const char *v[1] = { id };

	if (api_id_param(call, "an incident id is a number", id, sizeof(id)) < 0)
		return;
	api_pm_query(arg, call->req, sql_pm_publish, 1, v, false, 409,
	    "the incident has no post-mortem to publish yet");
	log_info("incident %s: post-mortem published by token \"%s\"", id, call->token);
}

// Target keys are [A-Za-z0-9._-]; anything else cannot name a target.
static bool
api_key_ok(const char *key)
{
	size_t n = strlen(key);

	if (n == 0 || n > WIRE_MAX_KEY)
		return false;
	return strspn(key, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") ==
	    n;
}

// The API's routes.  A key or an id takes the rest of the path: a slash
// in it is a bad key or id (400), as it always was, not an unknown path.
static const struct {
	int methods;
	const char *pattern;
	http_handler_fn handler;
	int flags;
} api_routes[] = {
	{ API_GET, "/healthz", api_healthz, 0 },
	{ API_GET, "/api/v1/status", api_status, 0 },
	{ API_GET, "/api/v1/targets", api_target_list, 0 },
	{ API_GET, "/api/v1/targets/", api_target_list, 0 },
	{ API_GET, "/api/v1/targets/{key*}", api_target_one, 0 },
	{ API_GET, "/api/v1/agents", api_agents, 0 },
	{ API_GET, "/api/v1/incidents", api_incident_list, 0 },
	{ EVHTTP_REQ_POST, "/api/v1/incidents/{id}/updates", api_update_add, HTTP_WRITE },
	{ API_GET, "/api/v1/incidents/{id}/postmortem", api_pm_get, 0 },
	{ EVHTTP_REQ_PUT, "/api/v1/incidents/{id}/postmortem", api_pm_put, HTTP_WRITE },
	{ EVHTTP_REQ_POST, "/api/v1/incidents/{id}/postmortem/publish", api_pm_publish,
	    HTTP_WRITE },
	{ API_GET, "/api/v1/incidents/{id*}", api_incident_one, 0 },
	{ API_GET, "/api/v1/silences", api_silence_list, 0 },
	{ EVHTTP_REQ_POST, "/api/v1/silences", api_silence_add, HTTP_WRITE },
	{ EVHTTP_REQ_DELETE, "/api/v1/silences/{id*}", api_silence_end, HTTP_WRITE },
};

struct api *
api_new(struct http_server *srv, struct agents *agents, struct target_table *targets,
    struct store *store, struct ingest *ingest, struct verdict *verdict)
{
	struct api *api = xcalloc(1, sizeof(*api));

	api->srv = srv;
	api->agents = agents;
	api->targets = targets;
	api->store = store;
	api->ingest = ingest;
	api->verdict = verdict;
	api->started_wall = clock_wall_us();
	for (size_t i = 0; i < sizeof(api_routes) / sizeof(api_routes[0]); i++)
		http_server_route(srv, api_routes[i].methods, api_routes[i].pattern,
		    api_routes[i].handler, api_routes[i].flags, api);
	return api;
}

void
api_set_targets(struct api *api, struct target_table *targets)
{
	api->targets = targets;
}

void
api_free(struct api *api)
{
	free(api);
}
