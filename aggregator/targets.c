// SPDX-License-Identifier: Apache-2.0
//
// Target table and latest results; see targets.h.  Keys are found through
// an open-addressing hash so that ingest costs O(1) per result whatever the
// number of targets.
#include "targets.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "incident_state.h"
#include "verdict_state.h"
#include "xmalloc.h"

struct target_slot {
	const struct target_conf *conf;
	int id;
	struct latest_result *latest;
	size_t n_latest, cap_latest;
	struct verdict_target verdict;
	struct incident_target incident;
};

struct target_table {
	struct target_slot *slots;
	size_t n;
	int *index;       // hash -> slot index, -1 empty
	size_t index_cap; // power of two
};

static uint64_t
targets_hash(const char *key)
{
	uint64_t h = 1469598103934665603ULL;

	for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
		h ^= *p;
		h *= 1099511628211ULL;
	}
	return h;
}

struct target_table *
targets_new(const struct agg_conf *conf)
{
	struct target_table *t = xcalloc(1, sizeof(*t));

	t->n = conf->n_targets;
	t->slots = xcalloc(t->n ? t->n : 1, sizeof(*t->slots));
	t->index_cap = 16;
	while (t->index_cap < t->n * 2)
		t->index_cap *= 2;
	t->index = xmalloc(t->index_cap * sizeof(int));
	memset(t->index, 0xff, t->index_cap * sizeof(int));
	for (size_t i = 0; i < t->n; i++) {
		size_t h = targets_hash(conf->targets[i].key) & (t->index_cap - 1);

		t->slots[i].conf = &conf->targets[i];
		while (t->index[h] >= 0)
			h = (h + 1) & (t->index_cap - 1);
		t->index[h] = (int)i;
	}
	return t;
}

void
targets_free(struct target_table *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->n; i++)
		free(t->slots[i].latest);
	free(t->slots);
	free(t->index);
	free(t);
}

size_t
targets_count(const struct target_table *t)
{
	return t->n;
}

const struct target_conf *
targets_conf(const struct target_table *t, size_t idx)
{
	return idx < t->n ? t->slots[idx].conf : NULL;
}

int
targets_find(const struct target_table *t, const char *key)
{
	size_t h = targets_hash(key) & (t->index_cap - 1);

	for (; t->index[h] >= 0; h = (h + 1) & (t->index_cap - 1))
		if (strcmp(t->slots[t->index[h]].conf->key, key) == 0)
			return t->index[h];
	return -1;
}

void
targets_set_id(struct target_table *t, size_t idx, int id)
{
	if (idx < t->n)
		t->slots[idx].id = id;
}

int
targets_id(const struct target_table *t, size_t idx)
{
	return idx < t->n ? t->slots[idx].id : 0;
}

bool
targets_record(struct target_table *t, size_t idx, size_t agent_slot, const Vantage__Result *r,
    int64_t now_us)
{
	struct target_slot *ts = &t->slots[idx];
	struct latest_result *l = NULL;

	for (size_t i = 0; i < ts->n_latest; i++)
		if (ts->latest[i].agent_slot == agent_slot)
			l = &ts->latest[i];
	if (l == NULL) {
		if (ts->n_latest == ts->cap_latest) {
			ts->cap_latest = ts->cap_latest ? ts->cap_latest * 2 : 4;
			ts->latest = xreallocarray(ts->latest, ts->cap_latest, sizeof(*ts->latest));
		}
		l = &ts->latest[ts->n_latest++];
		memset(l, 0, sizeof(*l));
		l->agent_slot = agent_slot;
	} else if (l->started_at >= r->started_at) {
		return false;
	}
	l->started_at = r->started_at;
	l->received_at = now_us;
	l->seq = r->seq;
	l->outcome = r->outcome;
	l->reason = r->reason;
	l->trigger = r->trigger;
	l->http_status = r->http_status;
	l->dns_us = r->dns_us;
	l->connect_us = r->connect_us;
	l->tls_us = r->tls_us;
	l->ttfb_us = r->ttfb_us;
	l->total_us = r->total_us;
	snprintf(l->error, sizeof(l->error), "%s", r->error ? r->error : "");
	l->impaired = r->agent_state == VANTAGE__AGENT_STATE__AGENT_STATE_IMPAIRED;
	// An agent error says nothing about the target: no vote either way.
	if (r->outcome == VANTAGE__OUTCOME__OUTCOME_UP ||
	    r->outcome == VANTAGE__OUTCOME__OUTCOME_DOWN)
		quorum_agent_result(&l->q, r->outcome == VANTAGE__OUTCOME__OUTCOME_UP,
		    r->started_at, ts->conf->confirm, (int64_t)ts->conf->confirm_span_ms * 1000);
	return true;
}

struct verdict_target *
targets_verdict(struct target_table *t, size_t idx)
{
	return idx < t->n ? &t->slots[idx].verdict : NULL;
}

struct incident_target *
targets_incident(struct target_table *t, size_t idx)
{
	return idx < t->n ? &t->slots[idx].incident : NULL;
}

const struct latest_result *
targets_latest(const struct target_table *t, size_t idx, size_t *n)
{
	*n = idx < t->n ? t->slots[idx].n_latest : 0;
	return idx < t->n ? t->slots[idx].latest : NULL;
}

bool
targets_probed_from(const struct target_conf *tc, const char *region)
{
	if (tc->n_regions == 0)
		return true;
	for (size_t i = 0; i < tc->n_regions; i++)
		if (strcmp(tc->regions[i], region) == 0)
			return true;
	return false;
}

static const char *const targets_kind_names[] = { "", "http", "tcp", "dns", "icmp" };

char *
targets_spec_json(const struct target_conf *tc)
{
	json_t *o = json_object(), *spec = json_object();
	char *text;

	json_object_set_new(o, "kind", json_string(targets_kind_names[tc->kind]));
	if (tc->group != NULL)
		json_object_set_new(o, "group", json_string(tc->group));
	json_object_set_new(o, "interval_ms", json_integer(tc->interval_ms));
	json_object_set_new(o, "timeout_ms", json_integer(tc->timeout_ms));
	json_object_set_new(o, "confirm", json_integer(tc->confirm));
	switch (tc->kind) {
	case PROBE_HTTP: {
		json_t *expect = json_array();

		json_object_set_new(spec, "url", json_string(tc->http.url));
		json_object_set_new(spec, "method",
		    json_string(tc->http.method ? tc->http.method : "GET"));
		for (size_t i = 0; i < tc->http.n_expect; i++)
			json_array_append_new(expect, json_integer(tc->http.expect_status[i]));
		json_object_set_new(spec, "expect_status", expect);
		if (tc->http.body_contains != NULL)
			json_object_set_new(spec, "body_contains",
			    json_string(tc->http.body_contains));
		break;
	}
	case PROBE_TCP:
		json_object_set_new(spec, "host", json_string(tc->tcp.host));
		json_object_set_new(spec, "port", json_integer(tc->tcp.port));
		break;
	case PROBE_DNS:
		json_object_set_new(spec, "name", json_string(tc->dns.name));
		break;
	case PROBE_ICMP:
		json_object_set_new(spec, "host", json_string(tc->icmp.host));
		break;
	}
	json_object_set_new(o, targets_kind_names[tc->kind], spec);
	text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	if (text == NULL)
		return xstrdup("{}");
	// jansson allocates with malloc by default, so free() releases it.
	return text;
}

void
targets_adopt_latest(struct target_table *to, const struct target_table *from)
{
	for (size_t i = 0; i < to->n; i++) {
		int j = targets_find(from, to->slots[i].conf->key);
		const struct target_slot *src;

		if (j < 0)
			continue;
		src = &from->slots[j];
		free(to->slots[i].latest);
		to->slots[i].latest = xcalloc(src->cap_latest ? src->cap_latest : 1,
		    sizeof(*src->latest));
		if (src->n_latest > 0)
			memcpy(to->slots[i].latest, src->latest,
			    src->n_latest * sizeof(*src->latest));
		to->slots[i].n_latest = src->n_latest;
		to->slots[i].cap_latest = src->cap_latest;
		to->slots[i].verdict = src->verdict;
		to->slots[i].incident = src->incident;
	}
}

// --- the Config message for agents ---

// Scratch for the entries of one Config (targets or controls): they point
// into the configuration and live only until the message is encoded.
struct config_entries {
	Vantage__Target *targets;
	Vantage__HttpSpec *specs;
	Vantage__Target **ptrs;
	uint32_t (*expect)[CONF_MAX_EXPECT];
	size_t n;
};

static void
targets_entries_init(struct config_entries *e, size_t cap)
{
	cap = cap ? cap : 1;
	e->targets = xcalloc(cap, sizeof(*e->targets));
	e->specs = xcalloc(cap, sizeof(*e->specs));
	e->ptrs = xcalloc(cap, sizeof(*e->ptrs));
	e->expect = xcalloc(cap, sizeof(*e->expect));
	e->n = 0;
}

static void
targets_entries_free(struct config_entries *e)
{
	free(e->targets);
	free(e->specs);
	free(e->ptrs);
	free(e->expect);
}

// Appends tc, an HTTP target or control, to e (which has room for it).
static void
targets_entries_add(struct config_entries *e, const struct target_conf *tc)
{
	Vantage__Target ti = VANTAGE__TARGET__INIT;
	Vantage__HttpSpec hi = VANTAGE__HTTP_SPEC__INIT;
	Vantage__Target *t = &e->targets[e->n];
	Vantage__HttpSpec *h = &e->specs[e->n];

	*t = ti;
	*h = hi;
	t->key = tc->key;
	t->kind = VANTAGE__PROBE_KIND__PROBE_KIND_HTTP;
	t->interval_ms = tc->interval_ms;
	t->timeout_ms = tc->timeout_ms;
	t->confirm = tc->confirm;
	t->retry_interval_ms = tc->retry_interval_ms;
	t->confirm_span_ms = tc->confirm_span_ms;
	h->url = tc->http.url;
	h->method = tc->http.method ? tc->http.method : (char *)"GET";
	for (size_t k = 0; k < tc->http.n_expect; k++)
		e->expect[e->n][k] = tc->http.expect_status[k];
	h->n_expect_status = tc->http.n_expect;
	h->expect_status = e->expect[e->n];
	h->body_contains = tc->http.body_contains ? tc->http.body_contains : (char *)"";
	h->max_latency_ms = tc->http.max_latency_ms;
	h->follow_redirects = tc->http.follow_redirects;
	h->tls_min_days = tc->http.tls_min_days;
	t->http = h;
	e->ptrs[e->n] = t;
	e->n++;
}

struct targets_config {
	Vantage__Config config;
	struct config_entries targets, controls;
};

// A region's targets that this agent version can probe, and every control
// (each agent judges its own network by them, whatever its region).
struct targets_config *
targets_config_new(const struct agg_conf *c, const char *region, uint64_t version)
{
	struct targets_config *tc = xcalloc(1, sizeof(*tc));
	Vantage__Config init = VANTAGE__CONFIG__INIT;

	targets_entries_init(&tc->targets, c->n_targets);
	targets_entries_init(&tc->controls, c->n_controls);
	for (size_t i = 0; i < c->n_targets; i++)
		if (c->targets[i].kind == PROBE_HTTP && targets_probed_from(&c->targets[i], region))
			targets_entries_add(&tc->targets, &c->targets[i]);
	for (size_t i = 0; i < c->n_controls; i++)
		if (c->controls[i].kind == PROBE_HTTP)
			targets_entries_add(&tc->controls, &c->controls[i]);
	tc->config = init;
	tc->config.version = version;
	tc->config.n_targets = tc->targets.n;
	tc->config.targets = tc->targets.ptrs;
	tc->config.n_controls = tc->controls.n;
	tc->config.controls = tc->controls.ptrs;
	return tc;
}

Vantage__Config *
targets_config_msg(struct targets_config *tc)
{
	return &tc->config;
}

void
targets_config_free(struct targets_config *tc)
{
	if (tc == NULL)
		return;
	targets_entries_free(&tc->targets);
	targets_entries_free(&tc->controls);
	free(tc);
}
