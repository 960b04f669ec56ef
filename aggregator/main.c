// SPDX-License-Identifier: Apache-2.0
//
// vantage-aggregator: receives results from agents, stores them in
// PostgreSQL and serves the API.  main owns the one libevent base, starts
// the embedded PostgreSQL cluster when no `database:` is configured, applies
// migrations before anything listens, and wires store -> ingest -> API.
// SIGHUP reloads vantage.yml (a bad file is reported and the old one kept)
// and the agent keys (a removed key is revoked: its agent is disconnected);
// SIGTERM/SIGINT stop ingest, let the store finish what it holds, then stop
// the embedded cluster.
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "agents.h"
#include "auth.h"
#include "notify.h"
#include "catchup.h"
#include "clock.h"
#include "curvekey.h"
#include "daemon.h"
#include "agg_conf.h"
#include "api.h"
#include "status_page.h"
#include "incident.h"
#include "ingest.h"
#include "log.h"
#include "pgembed.h"
#include "postmortem.h"
#include "rollup.h"
#include "store_pg.h"
#include "targets.h"
#include "verdict.h"
#include "xmalloc.h"
#include "zap.h"
#include "zloop.h"
#include "version.h"

#define DRAIN_TIMEOUT_US (10 * 1000000)
#define MAINTAIN_INTERVAL_S 3600

struct aggregator {
	const char *conf_path;
	struct event_base *base;
	struct agg_conf *conf;
	struct target_table *targets;
	// A reload in progress: installed once its targets have ids.
	struct agg_conf *next_conf;
	struct target_table *next_targets;
	struct store *store;
	struct agents *agents;
	struct ingest *ingest;
	struct http_server *http; // serves the API's routes
	struct api *api;
	struct status_page *status;
	struct auth *auth; // API tokens of the running configuration
	struct verdict *verdict;
	struct incidents *incidents;
	struct notify *notify;
	struct zap *zap;    // NULL in insecure mode
	struct pgembed *pg; // the embedded cluster, NULL with `database:`
	struct catchup *catchup;
	struct rollup *rollup; // rollups and retention, on their own timer
	bool database_seen_up;
	struct event *verdict_timer;
	struct event *drain_timer;
	struct event *maintain_timer;
	int64_t drain_deadline;
	bool stopping;
};

// Starts the target sync of conf; on_synced installs the table.
static void agg_sync_targets(struct aggregator *agg, struct target_table *t,
    void (*cb)(int, const int *, void *));

static void
agg_on_initial_sync(int status, const int *ids, void *arg)
{
	struct aggregator *agg = arg;

	if (status < 0) {
		log_warnx("could not record targets in the database; retrying");
		agg_sync_targets(agg, agg->targets, agg_on_initial_sync);
		return;
	}
	for (size_t i = 0; i < targets_count(agg->targets); i++)
		targets_set_id(agg->targets, i, ids[i]);
	log_info("%zu targets recorded in the database", targets_count(agg->targets));
}

static void
agg_on_reload_sync(int status, const int *ids, void *arg)
{
	struct aggregator *agg = arg;

	if (status < 0 || agg->stopping) {
		if (status < 0)
			log_warnx("could not record reloaded targets in the database; keeping the "
				  "old configuration");
		targets_free(agg->next_targets);
		agg_conf_free(agg->next_conf);
		agg->next_targets = NULL;
		agg->next_conf = NULL;
		return;
	}
	for (size_t i = 0; i < targets_count(agg->next_targets); i++)
		targets_set_id(agg->next_targets, i, ids[i]);
	targets_adopt_latest(agg->next_targets, agg->targets);
	ingest_reconfigure(agg->ingest, agg->next_conf, agg->next_targets);
	verdict_reconfigure(agg->verdict, agg->next_conf, agg->next_targets);
	incident_reconfigure(agg->incidents, agg->next_conf, agg->next_targets);
	notify_reconfigure(agg->notify, agg->next_conf);
	rollup_reconfigure(agg->rollup, agg->next_conf);
	api_set_targets(agg->api, agg->next_targets);
	status_page_reconfigure(agg->status, agg->next_conf, agg->next_targets);
	targets_free(agg->targets);
	agg_conf_free(agg->conf);
	agg->targets = agg->next_targets;
	agg->conf = agg->next_conf;
	agg->next_targets = NULL;
	agg->next_conf = NULL;
	log_info("configuration reloaded: %zu targets", targets_count(agg->targets));
}

static void
agg_sync_targets(struct aggregator *agg, struct target_table *t,
    void (*cb)(int, const int *, void *))
{
	size_t n = targets_count(t);
	const char **keys = xcalloc(n ? n : 1, sizeof(char *));
	char **specs = xcalloc(n ? n : 1, sizeof(char *));

	for (size_t i = 0; i < n; i++) {
		keys[i] = targets_conf(t, i)->key;
		specs[i] = targets_spec_json(targets_conf(t, i));
	}
	store_sync_targets(agg->store, keys, (const char *const *)specs, n, cb, agg);
	for (size_t i = 0; i < n; i++)
		free(specs[i]);
	free(specs);
	free(keys);
}

static void
agg_warn_unsupported(const struct agg_conf *conf)
{
	for (size_t i = 0; i < conf->n_targets; i++)
		if (conf->targets[i].kind != PROBE_HTTP)
			log_warnx("target \"%s\" (line %d) is not probed: only HTTP(S) probes are "
				  "implemented in this version",
			    conf->targets[i].key, conf->targets[i].line);
}

static void
agg_on_sighup(evutil_socket_t sig, short what, void *arg)
{
	struct aggregator *agg = arg;
	struct agg_conf *conf;
	char err[512];

	if (agg->stopping) {
		// The HTTP server and the API are gone already.
		log_warnx("configuration not reloaded: the aggregator is stopping");
		return;
	}
	if (agg->next_conf != NULL) {
		log_warnx("a reload is already in progress");
		return;
	}
	conf = agg_conf_load(agg->conf_path, err, sizeof(err));
	if (conf == NULL) {
		log_warnx("configuration not reloaded: %s", err);
		return;
	}
	agg_warn_unsupported(conf);
	{
		// Token files are re-read: a rotated token works after SIGHUP.
		struct auth *auth = auth_load(conf, err, sizeof(err));

		if (auth == NULL) {
			log_warnx("configuration not reloaded: %s", err);
			agg_conf_free(conf);
			return;
		}
		http_server_set_auth(agg->http, auth);
		auth_free(agg->auth);
		agg->auth = auth;
	}
	if (conf->insecure != agg->conf->insecure)
		log_warnx("a change of \"security: insecure\" takes effect only at restart");
	// Revocation: ZeroMQ cannot drop one agent, so all reconnect and the
	// revoked one is refused at its handshake.
	if (agg->zap != NULL && conf->agent_keys_dir != NULL &&
	    zap_reload(agg->zap, conf->agent_keys_dir) > 0)
		ingest_drop_connections(agg->ingest);
	agg->next_conf = conf;
	agg->next_targets = targets_new(conf);
	agg_sync_targets(agg, agg->next_targets, agg_on_reload_sync);
}

static void
agg_on_drain(evutil_socket_t fd, short what, void *arg)
{
	struct aggregator *agg = arg;

	if (store_idle(agg->store)) {
		event_base_loopbreak(agg->base);
	} else if (clock_mono_us() >= agg->drain_deadline) {
		log_warnx("exiting with database work unfinished; agents will resend it");
		event_base_loopbreak(agg->base);
	}
}

static void
agg_on_stop(evutil_socket_t sig, short what, void *arg)
{
	struct aggregator *agg = arg;
	struct timeval tv = { 0, 50000 };

	if (agg->stopping) {
		event_base_loopbreak(agg->base);
		return;
	}
	log_info("received signal %d: finishing database work and exiting", (int)sig);
	agg->stopping = true;
	// No new results: what is not acked is resent by the agents later.
	ingest_close(agg->ingest);
	http_server_free(agg->http);
	agg->http = NULL;
	api_free(agg->api);
	agg->api = NULL;
	agg->drain_deadline = clock_mono_us() + DRAIN_TIMEOUT_US;
	agg->drain_timer = event_new(agg->base, -1, EV_PERSIST, agg_on_drain, agg);
	event_add(agg->drain_timer, &tv);
}

// incident.c queued alerts: wake the sender instead of waiting for its poll.
static void
agg_on_alerts_queued(void *arg)
{
	struct aggregator *agg = arg;

	notify_kick(agg->notify);
}

// An outage was resolved: draft its post-mortem while the data is fresh.
static void
agg_on_outage_resolved(int64_t incident_id, void *arg)
{
	struct aggregator *agg = arg;

	postmortem_draft(agg->store, incident_id);
}

// The pipeline's joints: ingest -> verdict, and what incidents restore
// into the verdict's state.
static void
agg_on_committed(const uint32_t *targets, size_t n, int64_t now, void *arg)
{
	struct aggregator *agg = arg;

	verdict_on_committed(agg->verdict, targets, n, now);
}

static bool
agg_on_probe_now(size_t idx, int64_t now, void *arg)
{
	struct aggregator *agg = arg;

	return verdict_probe_now(agg->verdict, idx, now);
}

static void
agg_on_restore_open(size_t idx, enum quorum_state state, bool flapping, void *arg)
{
	struct aggregator *agg = arg;

	verdict_restore_open(agg->verdict, idx, state, flapping);
}

static void
agg_on_restore_resolved(size_t idx, int64_t resolved_at, bool flapping, bool recovery_owed,
    void *arg)
{
	struct aggregator *agg = arg;

	verdict_restore_resolved(agg->verdict, idx, resolved_at, flapping, recovery_owed);
}

static void
agg_on_restored(void *arg)
{
	struct aggregator *agg = arg;

	verdict_enable(agg->verdict);
}

static void
agg_on_verdict_timer(evutil_socket_t fd, short what, void *arg)
{
	struct aggregator *agg = arg;
	int64_t now = clock_wall_us();
	bool up = store_connected(agg->store), held;

	verdict_tick(agg->verdict);
	// Every second, not only while the store is down: the pg_ctl of a
	// restart is reaped after the store has already reconnected.
	pgembed_supervise(agg->pg);
	// Only an outage seen while running holds verdicts, not the first
	// connection.
	agg->database_seen_up = agg->database_seen_up || up;
	held = agg->database_seen_up && catchup_update(agg->catchup, up, now);
	verdict_hold(agg->verdict, held);
	if (held)
		return;
	verdict_eval_all(agg->verdict, now);
}

static void
agg_on_maintain(evutil_socket_t fd, short what, void *arg)
{
	struct aggregator *agg = arg;

	store_maintain(agg->store);
}

int
main(int argc, char **argv)
{
	struct aggregator agg = { .conf_path = "/etc/vantage/vantage.yml" };
	struct event *sighup, *sigterm, *sigint;
	struct timeval maintain = { MAINTAIN_INTERVAL_S, 0 };
	struct daemon_opts opts;
	bool check_only, verbose;
	char *conninfo = NULL;
	struct curvekey secret, public;
	char err[4200];
	void *zctx;
	int status, rc = 1;

	if (daemon_parse_args(argc, argv, "vantage-aggregator", "/etc/vantage/vantage.yml", &opts,
		&status) < 0)
		return status;
	agg.conf_path = opts.conf_path;
	check_only = opts.check_only;
	verbose = opts.verbose;
	log_init("vantage-aggregator", verbose ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO);
	agg.conf = agg_conf_load(agg.conf_path, err, sizeof(err));
	if (agg.conf == NULL) {
		fprintf(stderr, "%s\n", err);
		return 2;
	}
	if (agg.conf->insecure) {
		log_warnx("security: insecure is true: agents connect WITHOUT encryption or "
			  "authentication; use it for development only");
	} else if (curvekey_read_secret(agg.conf->curve_secret_key, &secret, &public, err,
		       sizeof(err)) < 0) {
		fprintf(stderr, "%s: %s\n", agg.conf_path, err);
		agg_conf_free(agg.conf);
		return 2;
	}
	agg.auth = auth_load(agg.conf, err, sizeof(err));
	if (agg.auth == NULL) {
		fprintf(stderr, "%s: %s\n", agg.conf_path, err);
		agg_conf_free(agg.conf);
		return 2;
	}
	if (check_only) {
		printf("%s: configuration is valid\n", agg.conf_path);
		auth_free(agg.auth);
		agg_conf_free(agg.conf);
		return 0;
	}
	daemon_warn_root();
	signal(SIGPIPE, SIG_IGN);
	// Every time the database renders (API JSON, post-mortems) is UTC,
	// whatever the server's or the user's default: libpq sends PGTZ as
	// the session TimeZone.
	setenv("PGTZ", "UTC", 1);
	agg_warn_unsupported(agg.conf);

	if (agg.conf->database == NULL) {
		agg.pg = pgembed_start(agg.conf->state_dir, &conninfo);
		if (agg.pg == NULL)
			goto out;
	} else {
		conninfo = xstrdup(agg.conf->database);
	}
	if (store_prepare(conninfo, 30) < 0)
		goto out;

	agg.base = event_base_new();
	zctx = zloop_ctx_new();
	if (agg.base == NULL || zctx == NULL)
		fatalx("could not create the event loop");
	agg.agents = agents_new();
	agg.catchup = catchup_new(agg.agents);
	agg.targets = targets_new(agg.conf);
	agg.store = store_new(agg.base, conninfo);
	// Queued first: every batch is written after targets have ids.
	agg_sync_targets(&agg, agg.targets, agg_on_initial_sync);
	agg.notify = notify_new(agg.base, agg.store, agg.conf);
	// ingest -> store -> verdict -> incident -> notify, each stage
	// calling only the next, through the hooks given here.
	agg.incidents = incident_new(agg.store, agg.conf, agg.targets,
	    &(struct incident_hooks){ .queued = agg_on_alerts_queued,
		.resolved = agg_on_outage_resolved,
		.restore_open = agg_on_restore_open,
		.restore_resolved = agg_on_restore_resolved,
		.arg = &agg });
	agg.verdict = verdict_new(agg.conf, agg.targets, agg.agents,
	    &(struct verdict_sink){ .changed = incident_verdict_changed,
		.region = incident_verdict_region,
		.evaluated = incident_verdict_evaluated,
		.arg = agg.incidents });
	// Queued after the target sync: verdicts start once open incidents
	// are back in the quorum state, so a restart opens no duplicate.
	incident_restore(agg.incidents, agg_on_restored, &agg);
	if (!agg.conf->insecure) {
		// Before the ROUTER binds: no handshake may find no handler.
		agg.zap = zap_new(agg.base, zctx, agg.conf->agent_keys_dir);
		if (agg.zap == NULL)
			goto out_loop;
		log_info("aggregator public key (for the agents' aggregator.public_key): %s",
		    public.z85);
	}
	agg.ingest = ingest_new(agg.base, zctx, agg.conf, agg.store, agg.agents, agg.targets,
	    &(struct ingest_hooks){ .committed = agg_on_committed,
		.probe_now = agg_on_probe_now,
		.arg = &agg },
	    agg.zap, agg.zap != NULL ? &secret : NULL);
	explicit_bzero(&secret, sizeof(secret));
	if (agg.ingest == NULL)
		goto out_loop;
	agg.http = http_server_new(agg.base, agg.conf->listen_http);
	if (agg.http == NULL)
		goto out_loop;
	http_server_set_auth(agg.http, agg.auth);
	agg.api = api_new(agg.http, agg.agents, agg.targets, agg.store, agg.ingest, agg.verdict);
	agg.status = status_page_new(agg.http, agg.base, agg.store, agg.conf, agg.targets,
	    agg.verdict);
	sighup = evsignal_new(agg.base, SIGHUP, agg_on_sighup, &agg);
	sigterm = evsignal_new(agg.base, SIGTERM, agg_on_stop, &agg);
	sigint = evsignal_new(agg.base, SIGINT, agg_on_stop, &agg);
	event_add(sighup, NULL);
	event_add(sigterm, NULL);
	event_add(sigint, NULL);
	agg.maintain_timer = event_new(agg.base, -1, EV_PERSIST, agg_on_maintain, &agg);
	event_add(agg.maintain_timer, &maintain);
	// Its first pass (retention included) is queued now, after the
	// partitions store_prepare made.
	agg.rollup = rollup_new(agg.base, agg.store, agg.conf);
	agg.verdict_timer = event_new(agg.base, -1, EV_PERSIST, agg_on_verdict_timer, &agg);
	event_add(agg.verdict_timer, &(struct timeval){ 1, 0 });
	log_info("aggregator ready");

	event_base_dispatch(agg.base);

	event_free(sighup);
	event_free(sigterm);
	event_free(sigint);
	rc = 0;
out_loop:
	if (agg.maintain_timer != NULL)
		event_free(agg.maintain_timer);
	rollup_free(agg.rollup);
	if (agg.verdict_timer != NULL)
		event_free(agg.verdict_timer);
	verdict_free(agg.verdict);
	incident_free(agg.incidents);
	// Before the store: deliveries in flight are abandoned (sent again
	// after a restart), and no store callback may reach a freed sender.
	notify_free(agg.notify);
	if (agg.drain_timer != NULL)
		event_free(agg.drain_timer);
	http_server_free(agg.http);
	api_free(agg.api);
	status_page_free(agg.status);
	ingest_free(agg.ingest);
	zap_free(agg.zap);
	store_free(agg.store);
	targets_free(agg.targets);
	targets_free(agg.next_targets);
	agg_conf_free(agg.next_conf);
	catchup_free(agg.catchup);
	agents_free(agg.agents);
	zloop_ctx_term(zctx);
	event_base_free(agg.base);
out:
	pgembed_stop(agg.pg);
	free(conninfo);
	auth_free(agg.auth);
	agg_conf_free(agg.conf);
	log_info("aggregator stopped");
	return rc;
}
