// SPDX-License-Identifier: Apache-2.0
//
// vantage-agent: probes the targets its aggregator assigns and streams the
// results back.  main owns the one libevent base and wires the modules:
// probe (what runs when) -> uplink (seq, batches, delivery), with selfcheck
// (is our own network the problem?) marking results and holding back the
// retries that would confirm a failure until it has spoken.  SIGTERM and
// SIGINT stop probing, wait for running probes, flush, wait a bounded time
// for the last Acks, then log how many results this process produced and
// how many the aggregator acknowledged (tests compare that with the store).
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "clock.h"
#include "daemon.h"
#include "agent_conf.h"
#include "http_client.h"
#include "log.h"
#include "probe.h"
#include "selfcheck.h"
#include "uplink.h"
#include "version.h"
#include "zloop.h"

#define DRAIN_TIMEOUT_US (10 * 1000000)

struct agent {
	struct event_base *base;
	struct agent_conf *conf;
	struct probe *probe;
	struct selfcheck *selfcheck;
	struct uplink *uplink;
	struct event *drain_timer;
	int64_t drain_deadline;
	bool stopping;
};

static void
agent_on_result(const struct probe_result *r, void *arg)
{
	struct agent *a = arg;

	// The result carries the state it completed under; a failure then
	// asks whether the network at our end is the cause, and its retry
	// waits for the answer (probe_set_hold).
	uplink_add_result(a->uplink, r);
	if (r->outcome == VANTAGE__OUTCOME__OUTCOME_DOWN)
		selfcheck_on_failure(a->selfcheck, r->target->retry_interval_ms);
}

static bool
agent_selfcheck_running(void *arg)
{
	struct agent *a = arg;

	return selfcheck_running(a->selfcheck);
}

static void
agent_on_selfcheck(int state, const char *reason, void *arg)
{
	struct agent *a = arg;

	uplink_set_state(a->uplink, state, reason);
	probe_kick(a->probe);
}

static void
agent_on_config(const Vantage__Config *config, void *arg)
{
	struct agent *a = arg;

	if (a->stopping)
		return;
	probe_set_config(a->probe, config);
	selfcheck_set_config(a->selfcheck, config);
}

static void
agent_on_suspect(const char *const *keys, size_t n, void *arg)
{
	struct agent *a = arg;

	uplink_send_suspect(a->uplink, keys, n);
}

static void
agent_on_probe_now(const char *const *keys, size_t n, void *arg)
{
	struct agent *a = arg;

	if (!a->stopping)
		probe_now(a->probe, keys, n, VANTAGE__TRIGGER__TRIGGER_PROBE_NOW);
}

// Shutdown: once no probe runs and everything is acked (or the deadline
// passed), leave the loop.
static void
agent_on_drain(evutil_socket_t fd, short what, void *arg)
{
	struct agent *a = arg;
	int64_t now = clock_mono_us();

	uplink_flush(a->uplink);
	if (probe_in_flight(a->probe) == 0 &&
	    uplink_acked_seq(a->uplink) >= uplink_produced(a->uplink)) {
		event_base_loopbreak(a->base);
		return;
	}
	if (now >= a->drain_deadline) {
		log_warnx("shutting down with %llu results not acknowledged by the aggregator",
		    (unsigned long long)(uplink_produced(a->uplink) - uplink_acked_seq(a->uplink)));
		event_base_loopbreak(a->base);
	}
}

static void
agent_on_sighup(evutil_socket_t sig, short what, void *arg)
{
	// Targets come from the aggregator (reloaded there); agent.yml holds
	// identity and transport, which only a restart may change.
	log_info("SIGHUP ignored: targets are reloaded on the aggregator; restart the agent to "
		 "apply changes to its own configuration");
}

static void
agent_on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct agent *a = arg;
	struct timeval tv = { 0, 100000 };

	if (a->stopping) {
		log_info("second signal: exiting at once");
		event_base_loopbreak(a->base);
		return;
	}
	log_info("received signal %d: finishing running probes and delivering results", (int)sig);
	a->stopping = true;
	a->drain_deadline = clock_mono_us() + DRAIN_TIMEOUT_US;
	probe_stop(a->probe);
	selfcheck_stop(a->selfcheck);
	a->drain_timer = event_new(a->base, -1, EV_PERSIST, agent_on_drain, a);
	event_add(a->drain_timer, &tv);
}

int
main(int argc, char **argv)
{
	struct daemon_opts opts;
	const char *path;
	struct agent a = { 0 };
	struct uplink_handlers handlers = { agent_on_config, agent_on_probe_now, &a };
	struct event *sigterm, *sigint, *sighup;
	bool check_only, verbose;
	char err[512];
	void *zctx;
	int status;

	if (daemon_parse_args(argc, argv, "vantage-agent", "/etc/vantage/agent.yml", &opts,
		&status) < 0)
		return status;
	path = opts.conf_path;
	check_only = opts.check_only;
	verbose = opts.verbose;
	log_init("vantage-agent", verbose ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO);
	a.conf = agent_conf_load(path, err, sizeof(err));
	if (a.conf == NULL) {
		fprintf(stderr, "%s\n", err);
		return 2;
	}
	if (check_only) {
		printf("%s: configuration is valid\n", path);
		agent_conf_free(a.conf);
		return 0;
	}
	daemon_warn_root();
	signal(SIGPIPE, SIG_IGN);
	if (http_client_global_init() < 0)
		fatalx("could not initialise libcurl");
	a.base = event_base_new();
	zctx = zloop_ctx_new();
	if (a.base == NULL || zctx == NULL)
		fatalx("could not create the event loop");
	a.probe = probe_new(a.base, a.conf->max_concurrency, a.conf->source_ip, a.conf->name,
	    agent_on_result, &a);
	a.uplink = uplink_new(a.base, zctx, a.conf, &handlers);
	if (a.uplink == NULL)
		return 1;
	probe_set_suspect(a.probe, agent_on_suspect, &a);
	a.selfcheck = selfcheck_new(a.base, a.conf->source_ip, agent_on_selfcheck, &a);
	probe_set_hold(a.probe, agent_selfcheck_running, &a);
	uplink_start(a.uplink);
	sigterm = evsignal_new(a.base, SIGTERM, agent_on_signal, &a);
	sigint = evsignal_new(a.base, SIGINT, agent_on_signal, &a);
	event_add(sigterm, NULL);
	event_add(sigint, NULL);
	sighup = evsignal_new(a.base, SIGHUP, agent_on_sighup, &a);
	event_add(sighup, NULL);

	event_base_dispatch(a.base);

	log_info("agent \"%s\" epoch %llu: produced %llu results, acknowledged through %llu",
	    a.conf->name, (unsigned long long)uplink_epoch(a.uplink),
	    (unsigned long long)uplink_produced(a.uplink),
	    (unsigned long long)uplink_acked_seq(a.uplink));
	event_free(sigterm);
	event_free(sigint);
	event_free(sighup);
	if (a.drain_timer != NULL)
		event_free(a.drain_timer);
	selfcheck_free(a.selfcheck);
	probe_free(a.probe);
	uplink_free(a.uplink);
	zloop_ctx_term(zctx);
	event_base_free(a.base);
	agent_conf_free(a.conf);
	http_client_global_cleanup();
	return 0;
}
