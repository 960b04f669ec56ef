// SPDX-License-Identifier: Apache-2.0
//
// Incidents from verdict changes; see incident.h.  Every change is one SQL
// statement (CTEs) that updates the incident, appends its timeline and
// queues its alerts together.  All values travel as parameters; the
// statements are constants.
#include "incident.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "buf.h"
#include "clock.h"
#include "log.h"
#include "xmalloc.h"

#define INCIDENT_REGIONAL_SLACK_US (2 * 1000000LL)

static void incident_defer_regional(struct incidents *ins, size_t idx, int64_t now,
    bool after_outage);
static void incident_change(struct incidents *ins, size_t idx, const struct quorum_outcome *out,
    const struct verdict_region *regions, size_t n, int64_t now);
static void incident_settled(struct incidents *ins, size_t idx, const struct quorum_outcome *out,
    const struct verdict_region *regions, size_t n, int64_t now);

struct incidents {
	struct store *store;
	const struct agg_conf *conf;
	struct target_table *targets;
	struct incident_hooks hooks;
	void (*restored)(void *arg);
	void *restored_arg;
};

// What one statement changes, kept until its callback.
struct incident_op {
	struct incidents *ins;
	char key[129];
	const char *kind;
	bool open;
};

// The timeline and the alerts of every change go through one SQL function,
// incident_record (sql/003_incident_record.sql), called from the statement
// that changes the incident: they commit with it or not at all.
static const char sql_open[] =
    "WITH i AS ("
    " INSERT INTO incidents (target_id, kind, started_at, detected_at, regions)"
    " VALUES ($1, $2, $3::timestamptz, $4::timestamptz, $5::text[])"
    " ON CONFLICT (target_id, kind) WHERE state = 'open' DO NOTHING RETURNING id)"
    " SELECT id, false, incident_record(id, $6::jsonb, $7::jsonb, $8) FROM i";

// An outage that the quorum found soon after the last one ended ($9)
// reopens that one instead of opening another, with the alerts the quorum
// chose for the reopening ($10: "flapping", or none); a new outage sends
// the outage alerts ($7).
static const char sql_open_outage[] =
    "WITH prev AS ("
    " SELECT id FROM incidents WHERE target_id = $1 AND kind = 'outage'"
    " AND state = 'resolved' AND $9::boolean ORDER BY id DESC LIMIT 1),"
    " re AS (UPDATE incidents x SET state = 'open', resolved_at = NULL, flapping = true"
    " FROM prev WHERE x.id = prev.id RETURNING x.id),"
    " ins AS (INSERT INTO incidents (target_id, kind, started_at, detected_at, regions)"
    " SELECT $1, $2, $3::timestamptz, $4::timestamptz, $5::text[]"
    " WHERE NOT EXISTS (SELECT 1 FROM re)"
    " ON CONFLICT (target_id, kind) WHERE state = 'open' DO NOTHING RETURNING id),"
    " i AS (SELECT id, true AS reopened FROM re UNION ALL SELECT id, false FROM ins)"
    " SELECT id, reopened, incident_record(id, CASE WHEN reopened THEN $6::jsonb"
    " ELSE jsonb_path_query_array($6::jsonb, '$[*] ? (@.kind != \"reopened\")') END,"
    " CASE WHEN reopened THEN $10::jsonb ELSE $7::jsonb END, $8) FROM i";

#define INCIDENT_ISO "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'"
// The times of incident row i, merged into the payload of the alerts
// that end it: the outcome that ends it knows neither.
#define INCIDENT_TIMES                                                                            \
	"jsonb_build_object('started_at', to_char(i.started_at AT TIME ZONE 'UTC', " INCIDENT_ISO \
	"), 'resolved_at', to_char(i.resolved_at AT TIME ZONE 'UTC', " INCIDENT_ISO "))"

// An outage's recovery alert waits until it has settled (incident_settled),
// so resolving one queues no alert ($5 is empty then).
static const char sql_resolve[] =
    "WITH i AS (UPDATE incidents SET state = 'resolved',"
    " resolved_at = GREATEST($3::timestamptz, started_at)"
    " WHERE target_id = $1 AND kind = $2 AND state = 'open' RETURNING id, flapping, started_at,"
    " resolved_at)"
    " SELECT id, flapping, incident_record(id, $4::jsonb, $5::jsonb, $6, " INCIDENT_TIMES ")"
    " FROM i";

// Whether the recovery of outage `id` went: a "settled" entry in its
// timeline after its latest reopening.  An outage reopened after its
// recovery was announced paged again (flapping), so its next end must be
// announced again.
#define INCIDENT_SETTLED(id)                                                                   \
	"EXISTS (SELECT 1 FROM incident_events e WHERE e.incident_id = " id                    \
	" AND e.kind = 'settled' AND e.id > coalesce((SELECT max(r.id) FROM incident_events r" \
	" WHERE r.incident_id = " id " AND r.kind = 'reopened'), 0))"
#define INCIDENT_SETTLED_SELF INCIDENT_SETTLED("incidents.id")
#define INCIDENT_SETTLED_I INCIDENT_SETTLED("i.id")

// The target stayed out of DOWN for settle_for since its latest outage
// ended: that outage's recovery alert, once (INCIDENT_SETTLED), with the
// incident's own times in the payload.
static const char sql_settled[] =
    "WITH i AS (SELECT id, started_at, resolved_at FROM incidents WHERE target_id = $1"
    " AND kind = 'outage' AND state = 'resolved' AND NOT " INCIDENT_SETTLED_SELF
    " AND id = (SELECT max(id) FROM incidents WHERE target_id = $1 AND kind = 'outage'))"
    " SELECT id, incident_record(id,"
    " jsonb_build_array(jsonb_build_object('at', now(), 'kind', 'settled', 'message', $4::text)),"
    " $2::jsonb, $3, " INCIDENT_TIMES ") FROM i";

// A region's entry is skipped when its previous one says the same (after
// an aggregator restart the votes are rebuilt and would repeat it).
static const char sql_region_event[] =
    "INSERT INTO incident_events (incident_id, at, kind, region, message)"
    " SELECT i.id, $3::timestamptz, $4, $5, $6 FROM incidents i"
    " WHERE i.target_id = $1 AND i.kind = $2 AND i.state = 'open'"
    " AND coalesce((SELECT e.kind FROM incident_events e WHERE e.incident_id = i.id"
    " AND e.region = $5 ORDER BY e.id DESC LIMIT 1), '') <> $4";

// The open incidents, and each target's latest outage of the last day if
// resolved: it may still be reopened, and its recovery may be owed.
static const char sql_restore[] =
    "SELECT t.key, i.kind, i.state, i.flapping,"
    " (extract(epoch FROM i.resolved_at) * 1000000)::bigint,"
    " " INCIDENT_SETTLED_I " FROM incidents i JOIN targets t ON t.id = i.target_id"
    " WHERE i.state = 'open' OR (i.kind = 'outage' AND i.resolved_at > now() - interval '1 day'"
    " AND i.id = (SELECT max(m.id) FROM incidents m WHERE m.target_id = i.target_id"
    " AND m.kind = 'outage'))";

struct incidents *
incident_new(struct store *store, const struct agg_conf *conf, struct target_table *targets,
    const struct incident_hooks *hooks)
{
	struct incidents *ins = xcalloc(1, sizeof(*ins));

	ins->store = store;
	ins->conf = conf;
	ins->targets = targets;
	if (hooks != NULL)
		ins->hooks = *hooks;
	return ins;
}

void
incident_free(struct incidents *ins)
{
	free(ins);
}

void
incident_reconfigure(struct incidents *ins, const struct agg_conf *conf,
    struct target_table *targets)
{
	ins->conf = conf;
	ins->targets = targets;
}

static json_t *
incident_time(int64_t us)
{
	char iso[40];

	if (us <= 0)
		return json_null();
	clock_iso8601(us, iso, sizeof(iso));
	return json_string(iso);
}

static const char *
incident_kind_name(unsigned kind)
{
	return kind == INCIDENT_OUTAGE ? "outage" :
	    kind == INCIDENT_REGIONAL  ? "regional" :
					 "blind";
}

// The neutral event of incident.h.
static json_t *
incident_payload(struct incidents *ins, size_t idx, const struct quorum_outcome *out,
    const struct verdict_region *regions, size_t n, const char *event, unsigned kind, bool resolved,
    int64_t now)
{
	const struct target_conf *tc = targets_conf(ins->targets, idx);
	json_t *down = json_array(), *up = json_array(), *abstain = json_array();
	json_t *reasons = json_object();
	struct buf summary;
	json_t *p;

	buf_init(&summary);
	for (size_t i = 0; i < n; i++) {
		if (regions[i].vote == VOTE_DOWN) {
			json_array_append_new(down, json_string(regions[i].name));
			json_object_set_new(reasons, regions[i].name, json_string(regions[i].why));
		} else if (regions[i].vote == VOTE_UP) {
			json_array_append_new(up, json_string(regions[i].name));
		} else {
			json_array_append_new(abstain, json_string(regions[i].name));
		}
	}
	if (kind == INCIDENT_BLIND)
		buf_printf(&summary,
		    "%s: monitoring blind, only %u of %zu regions report (%u needed)", tc->key,
		    out->regions_up + out->regions_down, n, out->needed);
	else
		buf_printf(&summary, "%s is %s: down in %u of %zu regions, up in %u", tc->key,
		    resolved                    ? "back up" :
			kind == INCIDENT_OUTAGE ? "DOWN" :
						  "degraded",
		    out->regions_down, n, out->regions_up);
	for (size_t i = 0, k = 0; i < n; i++)
		if (regions[i].vote == VOTE_DOWN)
			buf_printf(&summary, "%s%s: %s", k++ == 0 ? " (" : ", ", regions[i].name,
			    regions[i].why);
	if (out->regions_down > 0)
		buf_putc(&summary, ')');
	p = json_pack("{s:s,s:s,s:o,s:o,s:s,s:s,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:s%}", "event", event,
	    "target", tc->key, "group", tc->group ? json_string(tc->group) : json_null(), "url",
	    tc->kind == PROBE_HTTP ? json_string(tc->http.url) : json_null(), "kind",
	    incident_kind_name(kind), "state", resolved ? "resolved" : "open", "started_at",
	    incident_time(out->started_at > 0 ? out->started_at : now), "detected_at",
	    incident_time(now), "resolved_at",
	    incident_time(resolved ? (out->resolved_at > 0 ? out->resolved_at : now) : 0),
	    "regions_down", down, "regions_up", up, "regions_abstaining", abstain, "reasons",
	    reasons, "summary", summary.data, summary.len);
	buf_free(&summary);
	return p;
}

// [{channel, event, payload}] for the channels subscribed to this event.
static char *
incident_alerts(struct incidents *ins, const char *event, unsigned on_bit, json_t *payload)
{
	json_t *list = json_array();
	char *text;

	for (size_t i = 0; i < ins->conf->n_alerts; i++) {
		const struct alert_conf *ch = &ins->conf->alerts[i];

		if (!(ch->events & on_bit))
			continue;
		json_array_append_new(list,
		    json_pack("{s:s,s:s,s:O}", "channel", ch->name, "event", event, "payload",
			payload));
	}
	text = json_dumps(list, JSON_COMPACT);
	json_decref(list);
	return text;
}

static void incident_event(json_t *events, int64_t at, const char *kind, const char *region,
    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void
incident_event(json_t *events, int64_t at, const char *kind, const char *region, const char *fmt,
    ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_array_append_new(events,
	    json_pack("{s:o,s:s,s:o,s:s}", "at", incident_time(at), "kind", kind, "region",
		region ? json_string(region) : json_null(), "message", msg));
}

static char *
incident_regions_array(const struct verdict_region *regions, size_t n, enum quorum_vote vote)
{
	struct buf b;
	char *out;

	buf_init(&b);
	buf_putc(&b, '{');
	for (size_t i = 0; i < n; i++) {
		if (regions[i].vote != vote)
			continue;
		// Region names are [A-Za-z0-9._-]: nothing to escape inside quotes.
		buf_printf(&b, "%s\"%s\"", b.len > 1 ? "," : "", regions[i].name);
	}
	buf_putc(&b, '}');
	out = xstrdup(buf_cstr(&b));
	buf_free(&b);
	return out;
}

static void
incident_on_done(int status, const struct store_result *r, void *arg)
{
	struct incident_op *op = arg;
	struct incidents *ins = op->ins;

	if (status < 0) {
		log_warnx(
		    "could not record the %s %s of target \"%s\"; the database keeps the last "
		    "recorded state",
		    op->kind, op->open ? "opening" : "resolution", op->key);
	} else if (store_result_rows(r) == 1) {
		const char *id = store_result_value(r, 0, 0);
		const char *flag = store_result_value(r, 0, 1);

		if (op->open)
			log_info("incident %s: %s of target \"%s\" %s", id, op->kind, op->key,
			    flag != NULL && strcmp(flag, "t") == 0 ? "reopened (flapping)" :
								     "opened");
		else
			log_info("incident %s: %s of target \"%s\" resolved", id, op->kind,
			    op->key);
		if (ins->hooks.queued != NULL)
			ins->hooks.queued(ins->hooks.arg);
		if (!op->open && strcmp(op->kind, "outage") == 0 && ins->hooks.resolved != NULL)
			ins->hooks.resolved(strtoll(id, NULL, 10), ins->hooks.arg);
	}
	free(op);
}

static void
incident_open(struct incidents *ins, size_t idx, unsigned kind, const struct quorum_outcome *out,
    const struct verdict_region *regions, size_t n, int64_t now)
{
	const struct target_conf *tc = targets_conf(ins->targets, idx);
	struct incident_target *it = targets_incident(ins->targets, idx);
	const char *event = kind == INCIDENT_OUTAGE ? "outage" : incident_kind_name(kind);
	unsigned bit = kind == INCIDENT_OUTAGE ? ALERT_ON_OUTAGE :
	    kind == INCIDENT_REGIONAL          ? ALERT_ON_REGIONAL :
						 ALERT_ON_BLIND;
	json_t *payload = incident_payload(ins, idx, out, regions, n, event, kind, false, now);
	json_t *events = json_array();
	struct incident_op *op = xcalloc(1, sizeof(*op));
	char id[24], started[40], detected[40], *regions_text, *events_text, *alerts_text,
	    *flap_text = NULL;

	for (size_t i = 0; i < n; i++)
		if (regions[i].vote == VOTE_DOWN)
			incident_event(events, regions[i].down_since, "first_failure",
			    regions[i].name, "first failure in \"%s\": %s", regions[i].name,
			    regions[i].why);
	if (kind == INCIDENT_BLIND)
		incident_event(events, now, "blind", NULL, "only %u of %zu regions report",
		    out->regions_up + out->regions_down, n);
	else
		incident_event(events, now, "quorum", NULL,
		    "%s: %u of %zu regions down (quorum %u)", event, out->regions_down, n,
		    out->needed);
	if (kind == INCIDENT_OUTAGE && out->reopened)
		incident_event(events, now, "reopened", NULL,
		    "down again %.0f s after it recovered: the same outage continues (flapping)%s",
		    (double)out->reopened_after_us / 1e6,
		    out->page_reopen ? "" : "; alerts grouped");
	snprintf(id, sizeof(id), "%d", targets_id(ins->targets, idx));
	clock_iso8601(out->started_at > 0 ? out->started_at : now, started, sizeof(started));
	clock_iso8601(now, detected, sizeof(detected));
	regions_text = incident_regions_array(regions, n,
	    kind == INCIDENT_BLIND ? VOTE_ABSTAIN : VOTE_DOWN);
	events_text = json_dumps(events, JSON_COMPACT);
	alerts_text = incident_alerts(ins, event, bit, payload);
	op->ins = ins;
	snprintf(op->key, sizeof(op->key), "%s", tc->key);
	op->kind = incident_kind_name(kind);
	op->open = true;
	if (kind == INCIDENT_OUTAGE) {
		json_t *flap = json_deep_copy(payload);

		json_object_set_new(flap, "event", json_string("flapping"));
		flap_text = out->page_reopen ?
		    incident_alerts(ins, "flapping", ALERT_ON_FLAPPING, flap) :
		    xstrdup("[]");
		json_decref(flap);
		const char *v[10] = { id, "outage", started, detected, regions_text, events_text,
			alerts_text, tc->key, out->reopened ? "true" : "false", flap_text };
		store_query(ins->store, sql_open_outage, 10, v, incident_on_done, op);
	} else {
		const char *v[8] = { id, op->kind, started, detected, regions_text, events_text,
			alerts_text, tc->key };
		store_query(ins->store, sql_open, 8, v, incident_on_done, op);
	}
	it->open |= kind;
	json_decref(payload);
	json_decref(events);
	free(regions_text);
	free(events_text);
	free(alerts_text);
	free(flap_text);
}

static void
incident_resolve(struct incidents *ins, size_t idx, unsigned kind, const struct quorum_outcome *out,
    const struct verdict_region *regions, size_t n, int64_t now)
{
	const struct target_conf *tc = targets_conf(ins->targets, idx);
	struct incident_target *it = targets_incident(ins->targets, idx);
	const char *event = kind == INCIDENT_OUTAGE ? "recovery" :
	    kind == INCIDENT_REGIONAL               ? "regional_recovery" :
						      "blind_recovery";
	unsigned bit = kind == INCIDENT_OUTAGE ? ALERT_ON_RECOVERY :
	    kind == INCIDENT_REGIONAL          ? ALERT_ON_REGIONAL :
						 ALERT_ON_BLIND;
	int64_t resolved_at = kind == INCIDENT_OUTAGE && out->resolved_at > 0 ? out->resolved_at :
										now;
	json_t *events, *payload;
	struct incident_op *op;
	char id[24], resolved[40], *events_text, *alerts_text;

	if (!(it->open & kind))
		return;
	events = json_array();
	incident_event(events, resolved_at, "resolved", NULL, "%s: %u of %zu regions up",
	    kind == INCIDENT_BLIND ? "monitoring restored" : "recovered", out->regions_up, n);
	snprintf(id, sizeof(id), "%d", targets_id(ins->targets, idx));
	clock_iso8601(resolved_at, resolved, sizeof(resolved));
	events_text = json_dumps(events, JSON_COMPACT);
	// An outage's recovery is announced once it has settled
	// (incident_settled), not here.
	if (kind == INCIDENT_OUTAGE) {
		alerts_text = xstrdup("[]");
	} else {
		payload = incident_payload(ins, idx, out, regions, n, event, kind, true, now);
		alerts_text = incident_alerts(ins, event, bit, payload);
		json_decref(payload);
	}
	op = xcalloc(1, sizeof(*op));
	op->ins = ins;
	snprintf(op->key, sizeof(op->key), "%s", tc->key);
	op->kind = incident_kind_name(kind);
	const char *v[6] = { id, op->kind, resolved, events_text, alerts_text, tc->key };
	store_query(ins->store, sql_resolve, 6, v, incident_on_done, op);
	it->open &= ~kind;
	json_decref(events);
	free(events_text);
	free(alerts_text);
}

void
incident_verdict_changed(size_t idx, const struct quorum_outcome *out,
    const struct verdict_region *regions, size_t n, int64_t now, void *arg)
{
	struct incidents *ins = arg;

	if (targets_id(ins->targets, idx) <= 0)
		return; // not yet recorded in the database
	if (out->changed)
		incident_change(ins, idx, out, regions, n, now);
	// After the resolution when settle_for is 0: statements run in order.
	if (out->settled)
		incident_settled(ins, idx, out, regions, n, now);
}

static void
incident_change(struct incidents *ins, size_t idx, const struct quorum_outcome *out,
    const struct verdict_region *regions, size_t n, int64_t now)
{
	if (out->previous == QSTATE_DOWN)
		incident_resolve(ins, idx, INCIDENT_OUTAGE, out, regions, n, now);
	if (out->previous == QSTATE_DEGRADED)
		incident_resolve(ins, idx, INCIDENT_REGIONAL, out, regions, n, now);
	if (out->previous == QSTATE_UNKNOWN)
		incident_resolve(ins, idx, INCIDENT_BLIND, out, regions, n, now);
	targets_incident(ins->targets, idx)->regional_due = 0;
	if (out->state == QSTATE_DOWN)
		incident_open(ins, idx, INCIDENT_OUTAGE, out, regions, n, now);
	else if (out->state == QSTATE_DEGRADED)
		incident_defer_regional(ins, idx, now, out->previous == QSTATE_DOWN);
	else if (out->state == QSTATE_UNKNOWN)
		incident_open(ins, idx, INCIDENT_BLIND, out, regions, n, now);
}

// An outage starts as DEGRADED for the second or so the other regions
// take to confirm it.  A regional incident is opened only when DEGRADED
// outlasts that confirmation (confirm attempts of timeout + retry_interval
// each, plus slack), so an outage is never preceded by a stray one.  After
// an outage, a region that has not probed since still holds its DOWN vote
// until its next scheduled probe: one interval more before it counts.
static void
incident_defer_regional(struct incidents *ins, size_t idx, int64_t now, bool after_outage)
{
	const struct target_conf *tc = targets_conf(ins->targets, idx);
	int64_t grace = (int64_t)tc->confirm * ((int64_t)tc->timeout_ms + tc->retry_interval_ms) *
		1000 +
	    INCIDENT_REGIONAL_SLACK_US;

	if (after_outage)
		grace += (int64_t)tc->interval_ms * 1000;
	targets_incident(ins->targets, idx)->regional_due = now + grace;
}

// One row per recovery alert queued (none without subscribed channels).
static void
incident_on_settled(int status, const struct store_result *r, void *arg)
{
	struct incident_op *op = arg;
	struct incidents *ins = op->ins;

	if (status < 0) {
		log_warnx("could not announce the recovery of the outage of target \"%s\"; no "
			  "recovery alert is sent for it",
		    op->key);
	} else if (store_result_rows(r) > 0 && strcmp(store_result_value(r, 0, 1), "0") != 0) {
		log_info("incident %s: outage of target \"%s\" settled, %s recovery alerts queued",
		    store_result_value(r, 0, 0), op->key, store_result_value(r, 0, 1));
		if (ins->hooks.queued != NULL)
			ins->hooks.queued(ins->hooks.arg);
	}
	free(op);
}

static void
incident_settled(struct incidents *ins, size_t idx, const struct quorum_outcome *out,
    const struct verdict_region *regions, size_t n, int64_t now)
{
	const struct target_conf *tc = targets_conf(ins->targets, idx);
	json_t *payload = incident_payload(ins, idx, out, regions, n, "recovery", INCIDENT_OUTAGE,
	    true, now);
	char *alerts = incident_alerts(ins, "recovery", ALERT_ON_RECOVERY, payload);
	struct incident_op *op = xcalloc(1, sizeof(*op));
	char id[24], msg[128];

	snprintf(id, sizeof(id), "%d", targets_id(ins->targets, idx));
	snprintf(msg, sizeof(msg), "up for %.0f s since the outage ended: recovery announced",
	    (double)tc->settle_for_ms / 1e3);
	op->ins = ins;
	snprintf(op->key, sizeof(op->key), "%s", tc->key);
	op->kind = "outage";
	const char *values[4] = { id, alerts, tc->key, msg };
	store_query(ins->store, sql_settled, 4, values, incident_on_settled, op);
	json_decref(payload);
	free(alerts);
}

void
incident_verdict_evaluated(size_t idx, const struct quorum_outcome *out,
    const struct verdict_region *regions, size_t n, int64_t now, void *arg)
{
	struct incidents *ins = arg;
	struct incident_target *it = targets_incident(ins->targets, idx);

	if (it->regional_due == 0 || now < it->regional_due)
		return;
	it->regional_due = 0;
	if (out->state != QSTATE_DEGRADED || (it->open & INCIDENT_REGIONAL) ||
	    targets_id(ins->targets, idx) <= 0)
		return;
	incident_open(ins, idx, INCIDENT_REGIONAL, out, regions, n, now);
}

static void
incident_on_region_done(int status, const struct store_result *r, void *arg)
{
	if (status < 0)
		log_warnx("could not record a region change in an incident timeline");
}

void
incident_verdict_region(size_t idx, const struct verdict_region *region, enum quorum_vote previous,
    void *arg)
{
	struct incidents *ins = arg;
	struct incident_target *it = targets_incident(ins->targets, idx);
	unsigned kind = it->open & INCIDENT_OUTAGE ? INCIDENT_OUTAGE :
	    it->open & INCIDENT_REGIONAL           ? INCIDENT_REGIONAL :
						     0;
	char id[24], at[40], msg[256];
	const char *event;

	if (kind == 0 || targets_id(ins->targets, idx) <= 0)
		return;
	if (region->vote == VOTE_DOWN) {
		event = "first_failure";
		clock_iso8601(region->down_since, at, sizeof(at));
		snprintf(msg, sizeof(msg), "first failure in \"%s\": %s", region->name,
		    region->why);
	} else if (region->vote == VOTE_UP && previous == VOTE_DOWN) {
		event = "recovering";
		// Probe time, like every other timeline entry.
		clock_iso8601(region->up_since > 0 ? region->up_since : clock_wall_us(), at,
		    sizeof(at));
		snprintf(msg, sizeof(msg), "\"%s\" sees the target up again", region->name);
	} else {
		return;
	}
	snprintf(id, sizeof(id), "%d", targets_id(ins->targets, idx));
	const char *v[6] = { id, incident_kind_name(kind), at, event, region->name, msg };
	store_query(ins->store, sql_region_event, 6, v, incident_on_region_done, NULL);
}

static bool
incident_flag(const char *value)
{
	return value != NULL && strcmp(value, "t") == 0;
}

static void
incident_on_restore(int status, const struct store_result *r, void *arg)
{
	struct incidents *ins = arg;
	int restored = 0;

	if (status < 0) {
		log_warnx("could not read open incidents; retrying");
		store_query(ins->store, sql_restore, 0, NULL, incident_on_restore, ins);
		return;
	}
	for (int row = 0; row < store_result_rows(r); row++) {
		int idx = targets_find(ins->targets, store_result_value(r, row, 0));
		const char *kind = store_result_value(r, row, 1);
		const char *state = store_result_value(r, row, 2);
		bool flapping = incident_flag(store_result_value(r, row, 3));
		const struct incident_hooks *h = &ins->hooks;
		struct incident_target *it;

		if (idx < 0 || kind == NULL || state == NULL)
			continue; // a target no longer configured keeps its incident open
		it = targets_incident(ins->targets, (size_t)idx);
		if (strcmp(state, "open") != 0) {
			const char *ended = store_result_value(r, row, 4);

			// Aggregator time of the end is not kept; its probe time
			// is within seconds of it.
			if (ended != NULL && h->restore_resolved != NULL)
				h->restore_resolved((size_t)idx, strtoll(ended, NULL, 10), flapping,
				    !incident_flag(store_result_value(r, row, 5)), h->arg);
			continue;
		}
		if (strcmp(kind, "outage") == 0) {
			it->open |= INCIDENT_OUTAGE;
			if (h->restore_open != NULL)
				h->restore_open((size_t)idx, QSTATE_DOWN, flapping, h->arg);
		} else if (strcmp(kind, "regional") == 0) {
			it->open |= INCIDENT_REGIONAL;
			if (h->restore_open != NULL)
				h->restore_open((size_t)idx, QSTATE_DEGRADED, flapping, h->arg);
		} else {
			it->open |= INCIDENT_BLIND;
		}
		restored++;
	}
	if (restored > 0)
		log_info("%d open incidents restored", restored);
	ins->restored(ins->restored_arg);
}

void
incident_restore(struct incidents *ins, void (*done)(void *arg), void *arg)
{
	ins->restored = done;
	ins->restored_arg = arg;
	store_query(ins->store, sql_restore, 0, NULL, incident_on_restore, ins);
}
