// SPDX-License-Identifier: Apache-2.0
//
// Unit tests for common/yconf, agent/conf and aggregator/conf: the DESIGN.md
// §3 example must load with the documented values, and every kind of bad
// input must be refused with "FILE:LINE: message" pointing at the right line,
// because that line is all an operator gets to go on.  Files are written
// under /tmp with mkstemp and removed after each check.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent_conf.h"
#include "agg_conf.h"
#include "xmalloc.h"
#include "yconf.h"

#define MIB (UINT64_C(1) << 20)

static const char design_example[] =
    "listen:   { zmq: \"tcp://0.0.0.0:7500\", http: \"127.0.0.1:8080\" }\n"
    "database: \"postgresql://vantage@db/vantage?sslmode=verify-full\"  # omit => embedded\n"
    "state_dir: /var/lib/vantage\n"
    "security: { curve_secret_key: keys/aggregator.key, agent_keys_dir: keys/agents/ }\n"
    "api_tokens: [ { name: ops, token_file: keys/ops.token, role: admin } ]\n"
    "regions:                 # known regions; failure domain = provider/network\n"
    "  - { name: eu-west,  domain: aws }\n"
    "  - { name: us-east,  domain: gcp }\n"
    "  - { name: ap-south, domain: hetzner }\n"
    "defaults: { interval: 30s, timeout: 10s, confirm: 2, quorum: majority, recover: majority }\n"
    "controls:                # canaries every agent probes to judge its own health\n"
    "  - { url: \"https://control-1.example/\", kind: http }\n"
    "targets:\n"
    "  - name: api\n"
    "    group: \"Public API\"\n"
    "    http: { url: \"https://api.example.com/health\", method: GET, expect_status: [200],\n"
    "            body_contains: \"ok\", max_latency: 2s, follow_redirects: false, tls_min_days: 14 }\n"
    "    interval: 15s\n"
    "    regions: [eu-west, us-east, ap-south]   # default: all regions\n"
    "  - { name: db-tcp, tcp: { host: db.example.com, port: 5432 } }\n"
    "  - { name: idp, group: \"Third-party: identity provider\", http: { url: \"https://idp.example/\" } }\n"
    "  - { name: dns, dns: { name: example.com, type: A, server: 1.1.1.1, expect: [93.184.216.34] } }\n"
    "  - { name: edge, icmp: { host: edge.example.com } }\n"
    "alerts:\n"
    "  - { name: oncall, webhook: { url: \"https://hooks.example/x\", format: slack }, on: [outage, recovery] }\n"
    "  - { name: log, exec: { command: /usr/local/bin/page-me } }\n"
    "status_page: { title: \"Example status\", public: true, history_days: 90, auto_publish: true }\n"
    "retention: { raw: 30d, rollup: 400d }\n";

// Writes text to a fresh file under /tmp; the caller unlinks and frees the
// returned path.
static char *
write_temp(const char *text, size_t len)
{
	char *path = xstrdup("/tmp/vantage-test-conf-XXXXXX");
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
	return path;
}

static struct agg_conf *
load_agg(const char *text, char *err, size_t errlen)
{
	char *path = write_temp(text, strlen(text));
	struct agg_conf *conf = agg_conf_load(path, err, errlen);

	unlink(path);
	free(path);
	return conf;
}

// Whether err is exactly "<path>:<line>: ..." and contains want; says what
// it got if not.
static bool
error_matches(const char *err, const char *path, int line, const char *want)
{
	char prefix[256];

	snprintf(prefix, sizeof(prefix), "%s:%d: ", path, line);
	if (strncmp(err, prefix, strlen(prefix)) == 0 && strstr(err, want) != NULL)
		return true;
	print_error("got    \"%s\"\nwanted \"%s...%s...\"\n", err, prefix, want);
	return false;
}

static void
assert_error(const char *err, const char *path, int line, const char *want)
{
	assert_true(error_matches(err, path, line, want));
}

static void
test_design_example(void **state)
{
	char err[512] = "";
	struct agg_conf *conf = load_agg(design_example, err, sizeof(err));
	const struct target_conf *t;

	(void)state;
	if (conf == NULL)
		fail_msg("%s", err);
	assert_string_equal(conf->listen_zmq, "tcp://0.0.0.0:7500");
	assert_string_equal(conf->listen_http, "127.0.0.1:8080");
	assert_string_equal(conf->database, "postgresql://vantage@db/vantage?sslmode=verify-full");
	assert_string_equal(conf->state_dir, "/var/lib/vantage");
	assert_false(conf->insecure);
	// Relative paths are taken from the config file's directory.
	assert_string_equal(conf->curve_secret_key, "/tmp/keys/aggregator.key");
	assert_string_equal(conf->agent_keys_dir, "/tmp/keys/agents/");

	assert_int_equal(conf->n_tokens, 1);
	assert_string_equal(conf->tokens[0].name, "ops");
	assert_string_equal(conf->tokens[0].token_file, "/tmp/keys/ops.token");
	assert_string_equal(conf->tokens[0].role, "admin");

	assert_int_equal(conf->n_regions, 3);
	assert_string_equal(conf->regions[0].name, "eu-west");
	assert_string_equal(conf->regions[0].domain, "aws");
	assert_string_equal(conf->regions[2].name, "ap-south");
	assert_string_equal(conf->regions[2].domain, "hetzner");

	assert_int_equal(conf->defaults.interval_ms, 30000);
	assert_int_equal(conf->defaults.timeout_ms, 10000);
	assert_int_equal(conf->retention_raw_ms, 30 * 86400000ULL);
	assert_int_equal(conf->retention_rollup_ms, 400 * 86400000ULL);
	assert_int_equal(conf->defaults.confirm, 2);
	assert_int_equal(conf->defaults.retry_interval_ms, 1000);
	assert_int_equal(conf->defaults.quorum.mode, QUORUM_MAJORITY);
	assert_int_equal(conf->defaults.recover.mode, QUORUM_MAJORITY);

	assert_int_equal(conf->n_controls, 1);
	t = &conf->controls[0];
	assert_string_equal(t->key, "control-1");
	assert_int_equal(t->kind, PROBE_HTTP);
	assert_string_equal(t->http.url, "https://control-1.example/");
	assert_string_equal(t->http.method, "GET");
	assert_int_equal(t->interval_ms, 30000);
	assert_int_equal(t->line, 12);

	assert_int_equal(conf->n_targets, 5);
	t = &conf->targets[0];
	assert_string_equal(t->key, "api");
	assert_int_equal(t->line, 14);
	assert_string_equal(t->group, "Public API");
	assert_int_equal(t->kind, PROBE_HTTP);
	assert_string_equal(t->http.url, "https://api.example.com/health");
	assert_string_equal(t->http.method, "GET");
	assert_int_equal(t->http.n_expect, 1);
	assert_int_equal(t->http.expect_status[0], 200);
	assert_string_equal(t->http.body_contains, "ok");
	assert_int_equal(t->http.max_latency_ms, 2000);
	assert_false(t->http.follow_redirects);
	assert_int_equal(t->http.tls_min_days, 14);
	assert_int_equal(t->interval_ms, 15000);
	assert_int_equal(t->timeout_ms, 10000);
	assert_int_equal(t->confirm, 2);
	assert_int_equal(t->quorum.mode, QUORUM_MAJORITY);
	assert_int_equal(t->n_regions, 3);
	assert_string_equal(t->regions[0], "eu-west");
	assert_string_equal(t->regions[1], "us-east");
	assert_string_equal(t->regions[2], "ap-south");

	t = &conf->targets[1];
	assert_string_equal(t->key, "db-tcp");
	assert_int_equal(t->kind, PROBE_TCP);
	assert_string_equal(t->tcp.host, "db.example.com");
	assert_int_equal(t->tcp.port, 5432);
	assert_int_equal(t->n_regions, 0);
	assert_null(t->group);
	assert_int_equal(t->interval_ms, 30000);

	t = &conf->targets[2];
	assert_string_equal(t->group, "Third-party: identity provider");
	assert_int_equal(t->http.n_expect, 0);
	assert_null(t->http.body_contains);

	t = &conf->targets[3];
	assert_int_equal(t->kind, PROBE_DNS);
	assert_string_equal(t->dns.name, "example.com");
	assert_string_equal(t->dns.type, "A");
	assert_string_equal(t->dns.server, "1.1.1.1");
	assert_int_equal(t->dns.n_expect, 1);
	assert_string_equal(t->dns.expect[0], "93.184.216.34");

	t = &conf->targets[4];
	assert_int_equal(t->kind, PROBE_ICMP);
	assert_string_equal(t->icmp.host, "edge.example.com");

	assert_int_equal(conf->n_alerts, 2);
	assert_string_equal(conf->alerts[0].name, "oncall");
	assert_int_equal(conf->alerts[0].line, 25);
	assert_false(conf->alerts[0].is_exec);
	assert_string_equal(conf->alerts[0].url, "https://hooks.example/x");
	assert_int_equal(conf->alerts[0].format, ALERT_FORMAT_SLACK);
	assert_null(conf->alerts[0].routing_key);
	assert_int_equal(conf->alerts[0].events, ALERT_ON_OUTAGE | ALERT_ON_RECOVERY);
	assert_int_equal(conf->alerts[0].timeout_ms, 10000);
	assert_string_equal(conf->alerts[1].name, "log");
	assert_true(conf->alerts[1].is_exec);
	assert_null(conf->alerts[1].url);
	assert_string_equal(conf->alerts[1].argv[0], "/usr/local/bin/page-me");
	assert_null(conf->alerts[1].argv[1]);
	assert_int_equal(conf->alerts[1].events,
	    ALERT_ON_OUTAGE | ALERT_ON_RECOVERY | ALERT_ON_BLIND | ALERT_ON_FLAPPING);

	assert_int_equal(agg_conf_target_index(conf, "api"), 0);
	assert_int_equal(agg_conf_target_index(conf, "edge"), 4);
	assert_int_equal(agg_conf_target_index(conf, "control-1"), -1);
	assert_int_equal(agg_conf_target_index(conf, "nope"), -1);
	agg_conf_free(conf);
}

static void
test_overrides_and_defaults(void **state)
{
	static const char text[] =
	    "security: { insecure: yes }\n"
	    "regions: [ { name: a }, { name: b }, { name: c }, { name: d } ]\n"
	    "defaults: { interval: 1m, timeout: 500ms, confirm: 3, retry_interval: 2s,\n"
	    "            quorum: 3, recover: 75% }\n"
	    "controls:\n"
	    "  - { name: canary, tcp: { host: 10.0.0.1, port: 53 } }\n"
	    "  - { kind: icmp, host: 10.0.0.2 }\n"
	    "  - { kind: tcp, host: 10.0.0.3, port: 80, interval: 5s }\n"
	    "targets:\n"
	    "  - { name: x, http: { url: \"http://x/\", expect_status: [200, 204, 301],\n"
	    "      method: HEAD, follow_redirects: true }, quorum: 2, recover: 1,\n"
	    "      confirm: 1, interval: 2h, timeout: 1d, retry_interval: 100ms, regions: [a, b],\n"
	    "      confirm_span: 0s, reopen_window: 30m, settle_for: 0 }\n"
	    "  - { name: y, http: { url: \"https://y/\", expect_status: 503 } }\n"
	    "  - { name: z, dns: { name: example.org, type: aaaa, expect: \"::1\" } }\n";
	char err[512] = "";
	struct agg_conf *conf = load_agg(text, err, sizeof(err));
	const struct target_conf *t;

	(void)state;
	if (conf == NULL)
		fail_msg("%s", err);
	assert_true(conf->insecure);
	assert_null(conf->curve_secret_key);
	assert_null(conf->database);
	assert_string_equal(conf->listen_zmq, "tcp://127.0.0.1:7500");
	assert_string_equal(conf->listen_http, "127.0.0.1:8080");
	assert_string_equal(conf->state_dir, "/var/lib/vantage");
	assert_null(conf->regions[0].domain);

	assert_int_equal(conf->n_controls, 3);
	assert_string_equal(conf->controls[0].key, "canary");
	assert_int_equal(conf->controls[0].kind, PROBE_TCP);
	assert_string_equal(conf->controls[1].key, "control-2");
	assert_int_equal(conf->controls[1].kind, PROBE_ICMP);
	assert_string_equal(conf->controls[1].icmp.host, "10.0.0.2");
	assert_int_equal(conf->controls[1].interval_ms, 60000);
	assert_string_equal(conf->controls[2].key, "control-3");
	assert_int_equal(conf->controls[2].tcp.port, 80);
	assert_int_equal(conf->controls[2].interval_ms, 5000);

	t = &conf->targets[0];
	assert_string_equal(t->http.method, "HEAD");
	assert_true(t->http.follow_redirects);
	assert_int_equal(t->http.n_expect, 3);
	assert_int_equal(t->http.expect_status[2], 301);
	assert_int_equal(t->interval_ms, 2 * 3600 * 1000);
	assert_int_equal(t->timeout_ms, 86400000);
	assert_int_equal(t->retry_interval_ms, 100);
	assert_int_equal(t->confirm, 1);
	assert_int_equal(t->quorum.mode, QUORUM_COUNT);
	assert_int_equal(t->quorum.value, 2);
	assert_int_equal(t->recover.mode, QUORUM_COUNT);
	assert_int_equal(t->recover.value, 1);
	assert_int_equal(t->confirm_span_ms, 0);
	assert_int_equal(t->reopen_window_ms, 30 * 60000);
	assert_int_equal(t->settle_for_ms, 0);
	// Controls vote in no quorum: no span to wait for.
	assert_int_equal(conf->controls[0].confirm_span_ms, 0);

	t = &conf->targets[1];
	// The defaults: 2 s span; reopen within the larger of 10 min and 10
	// intervals (1 m here), settle for the larger of 60 s and 2 intervals.
	assert_int_equal(t->confirm_span_ms, 2000);
	assert_int_equal(t->reopen_window_ms, 10 * 60000);
	assert_int_equal(t->settle_for_ms, 2 * 60000);
	assert_int_equal(conf->targets[0].interval_ms, 2 * 3600 * 1000);
	assert_int_equal(t->http.n_expect, 1);
	assert_int_equal(t->http.expect_status[0], 503);
	assert_int_equal(t->interval_ms, 60000);
	assert_int_equal(t->timeout_ms, 500);
	assert_int_equal(t->confirm, 3);
	assert_int_equal(t->retry_interval_ms, 2000);
	assert_int_equal(t->quorum.mode, QUORUM_COUNT);
	assert_int_equal(t->quorum.value, 3);
	assert_int_equal(t->recover.mode, QUORUM_PERCENT);
	assert_int_equal(t->recover.value, 75);

	t = &conf->targets[2];
	assert_string_equal(t->dns.type, "AAAA");
	assert_int_equal(t->dns.n_expect, 1);
	assert_string_equal(t->dns.expect[0], "::1");
	agg_conf_free(conf);
}

static void
test_alerts(void **state)
{
	static const char text[] =
	    "security: { insecure: true }\n"
	    "alerts:\n"
	    "  - name: pd.primary\n"
	    "    webhook: { url: \"https://events.pagerduty.com/v2/enqueue\", format: pagerduty,\n"
	    "               routing_key: R0UT1NG }\n"
	    "    on: [outage, recovery, regional, blind, flapping]\n"
	    "    timeout: 30s\n"
	    "  - { name: hook_2, webhook: { url: \"http://127.0.0.1:9/x\" }, on: regional, timeout: 1s }\n"
	    "  - { name: logger, exec: { command: \"/usr/bin/logger  -t vantage alert \" } }\n"
	    "  - name: page\n"
	    "    exec:\n"
	    "      command: [/usr/local/bin/page, --message, \"two words\"]\n"
	    "    timeout: 2m\n";
	char err[512] = "";
	struct agg_conf *conf = load_agg(text, err, sizeof(err));
	const struct alert_conf *ch;

	(void)state;
	if (conf == NULL)
		fail_msg("%s", err);
	assert_int_equal(conf->n_alerts, 4);
	ch = &conf->alerts[0];
	assert_string_equal(ch->name, "pd.primary");
	assert_int_equal(ch->line, 3);
	assert_int_equal(ch->format, ALERT_FORMAT_PAGERDUTY);
	assert_string_equal(ch->routing_key, "R0UT1NG");
	assert_int_equal(ch->events,
	    ALERT_ON_OUTAGE | ALERT_ON_RECOVERY | ALERT_ON_REGIONAL | ALERT_ON_BLIND |
		ALERT_ON_FLAPPING);
	assert_int_equal(ch->timeout_ms, 30000);
	assert_null(ch->argv);

	ch = &conf->alerts[1];
	assert_string_equal(ch->url, "http://127.0.0.1:9/x");
	assert_int_equal(ch->format, ALERT_FORMAT_JSON);
	assert_int_equal(ch->events, ALERT_ON_REGIONAL);
	assert_int_equal(ch->timeout_ms, 1000);

	ch = &conf->alerts[2];
	assert_true(ch->is_exec);
	assert_string_equal(ch->argv[0], "/usr/bin/logger");
	assert_string_equal(ch->argv[1], "-t");
	assert_string_equal(ch->argv[2], "vantage");
	assert_string_equal(ch->argv[3], "alert");
	assert_null(ch->argv[4]);
	assert_int_equal(ch->timeout_ms, 10000);

	ch = &conf->alerts[3];
	assert_string_equal(ch->argv[0], "/usr/local/bin/page");
	assert_string_equal(ch->argv[1], "--message");
	assert_string_equal(ch->argv[2], "two words");
	assert_null(ch->argv[3]);
	assert_int_equal(ch->timeout_ms, 120000);
	agg_conf_free(conf);
}

static void
test_empty_aggregator_file(void **state)
{
	char err[512] = "";
	char *path = write_temp("", 0);

	(void)state;
	assert_null(agg_conf_load(path, err, sizeof(err)));
	assert_error(err, path, 1, "missing required key \"security\"");
	unlink(path);
	free(path);
}

static void
test_retention_defaults(void **state)
{
	static const char text[] = "security: { insecure: true }\nretention: { raw: 2d }\n";
	char err[512] = "";
	struct agg_conf *conf = load_agg("security: { insecure: true }\n", err, sizeof(err));

	(void)state;
	if (conf == NULL)
		fail_msg("%s", err);
	assert_int_equal(conf->retention_raw_ms, 30 * 86400000ULL);
	assert_int_equal(conf->retention_rollup_ms, 400 * 86400000ULL);
	agg_conf_free(conf);
	conf = load_agg(text, err, sizeof(err));
	if (conf == NULL)
		fail_msg("%s", err);
	assert_int_equal(conf->retention_raw_ms, 2 * 86400000ULL);
	assert_int_equal(conf->retention_rollup_ms, 400 * 86400000ULL);
	agg_conf_free(conf);
}

static void
test_file_too_large(void **state)
{
	size_t len = YCONF_MAX_BYTES + 1;
	char *text = xmalloc(len);
	char err[512] = "";
	char *path;

	(void)state;
	memset(text, '#', len);
	text[len - 1] = '\n';
	path = write_temp(text, len);
	assert_null(agg_conf_load(path, err, sizeof(err)));
	assert_error(err, path, 1, "file is too large");
	unlink(path);
	free(path);
	free(text);
}

static void
test_missing_file(void **state)
{
	char err[512] = "";

	(void)state;
	assert_null(agg_conf_load("/nonexistent/vantage.yml", err, sizeof(err)));
	assert_error(err, "/nonexistent/vantage.yml", 1, "could not open file");
	assert_null(agent_conf_load("/nonexistent/agent.yml", err, sizeof(err)));
	assert_error(err, "/nonexistent/agent.yml", 1, "could not open file");
}

struct bad_case {
	const char *what;
	bool agent; // agent.yml rather than vantage.yml
	const char *text;
	int line;
	const char *message;
};

#define SEC "security: { insecure: true }\n"
#define REGIONS "regions: [ { name: eu }, { name: us }, { name: ap } ]\n"
#define AGG_OK "aggregator: { endpoint: \"tcp://agg:7500\" }\ninsecure: true\n"

static const struct bad_case bad_cases[] = {
	{ "syntax error", false, SEC "targets:\n  - name: a\n   b: c\n", 4,
	    "invalid YAML: did not find expected '-' indicator" },
	{ "bad indentation", false, SEC "state_dir: /x\n  database: y\n", 3,
	    "invalid YAML: mapping values are not allowed" },
	{ "unknown top-level key", false, SEC "\nlisen: {}\n", 3, "unknown key \"lisen\"" },
	{ "confirm_span too long", false, SEC REGIONS "defaults:\n  confirm_span: 2h\n", 4,
	    "confirm_span" },
	{ "settle_for not a duration", false,
	    SEC REGIONS
	    "targets:\n  - { name: a, http: { url: \"http://a/\" },\n      settle_for: soon }\n",
	    5, "settle_for" },
	{ "flap_limit is gone", false, SEC REGIONS "defaults: { flap_limit: 4 }\n", 3,
	    "unknown key \"flap_limit\"" },
	{ "unknown key", false, SEC "listen:\n  zmq: \"tcp://127.0.0.1:1\"\n  foo: 1\n", 4,
	    "unknown key \"foo\" in \"listen\"" },
	{ "duplicate key", false, SEC "state_dir: /a\ndatabase: x\nstate_dir: /b\n", 4,
	    "duplicate key \"state_dir\" (first at line 2)" },
	{ "duplicate nested key", false,
	    SEC "targets:\n  - name: a\n    icmp: { host: a }\n    name: b\n", 5,
	    "duplicate key \"name\" in \"targets\" (first at line 3)" },
	{ "bad duration", false,
	    SEC "targets:\n  - name: a\n    icmp: { host: a }\n    interval: 5x\n", 5,
	    "\"interval\" must be a duration" },
	{ "interval too short", false, SEC "defaults:\n  interval: 50ms\n", 3,
	    "\"interval\" must be between 100ms and 1d" },
	{ "timeout too short", false, SEC "defaults: { timeout: 5ms }\n", 2,
	    "\"timeout\" must be between 10ms and 1d" },
	{ "confirm out of range", false, SEC "defaults:\n  confirm: 11\n", 3,
	    "\"confirm\" must be between 1 and 10" },
	{ "missing target name", false,
	    SEC "targets:\n  - icmp: { host: a }\n  - http:\n      url: \"http://x/\"\n", 3,
	    "missing required key \"name\" in \"targets\"" },
	{ "missing target name, block form", false,
	    SEC
	    "targets:\n  - name: a\n    icmp: { host: a }\n  -\n    group: g\n    icmp: { host: b }\n",
	    6, "missing required key \"name\"" },
	{ "duplicate target name", false,
	    SEC "targets:\n  - { name: a, icmp: { host: a } }\n  - { name: b, icmp: { host: b } }\n"
		"  - { name: a, icmp: { host: c } }\n",
	    5, "duplicate target name \"a\" (first at line 3)" },
	{ "control and target share a name", false,
	    SEC
	    "controls:\n  - { kind: icmp, host: c }\ntargets:\n  - { name: control-1, icmp: { host: a } }\n",
	    5, "duplicate target name \"control-1\" (first at line 3)" },
	{ "bad target name", false, SEC "targets:\n  - { name: \"a b\", icmp: { host: a } }\n", 3,
	    "\"name\" must be 1 to 128 characters" },
	{ "unknown region", false,
	    SEC REGIONS
	    "targets:\n  - name: a\n    icmp: { host: a }\n    regions:\n      - eu\n      - mars\n",
	    8, "unknown region \"mars\"" },
	{ "region listed twice", false,
	    SEC REGIONS "targets:\n  - { name: a, icmp: { host: a }, regions: [eu, us, eu] }\n", 4,
	    "region \"eu\" is listed twice" },
	{ "duplicate region", false, SEC "regions:\n  - name: eu\n  - name: us\n  - name: eu\n", 5,
	    "duplicate region \"eu\" (first at line 3)" },
	{ "bad quorum", false,
	    SEC "targets:\n  - name: a\n    icmp: { host: a }\n    quorum: most\n", 5,
	    "\"quorum\" must be \"majority\", a number of regions or a percentage" },
	{ "bad quorum percentage", false, SEC "defaults: { recover: 120% }\n", 2,
	    "\"recover\" percentage must be between 1% and 100%" },
	{ "zero quorum", false, SEC "defaults:\n  quorum: 0\n", 3, "\"quorum\" must be between 1" },
	{ "quorum above regions", false,
	    SEC REGIONS
	    "targets:\n  - name: a\n    icmp: { host: a }\n    regions: [eu, us]\n    quorum: 3\n",
	    7, "quorum 3 is more than the 2 regions probing target \"a\"" },
	{ "two kinds", false,
	    SEC
	    "targets:\n  - name: a\n    http: { url: \"http://a/\" }\n    tcp: { host: a, port: 1 }\n",
	    5, "target has more than one probe kind (\"http\" and \"tcp\")" },
	{ "kind and long form", false,
	    SEC "controls:\n  - kind: http\n    http: { url: \"http://a/\" }\n", 3,
	    "control has more than one probe kind" },
	{ "no kind", false, SEC "targets:\n  - name: a\n    group: g\n", 3,
	    "target needs one of \"http\", \"tcp\", \"dns\" or \"icmp\"" },
	{ "bad url", false, SEC "targets:\n  - name: a\n    http:\n      url: ftp://a/\n", 5,
	    "\"url\" must be an http:// or https:// URL, not \"ftp://a/\"" },
	{ "missing url", false, SEC "targets:\n  - name: a\n    http:\n      method: GET\n", 5,
	    "missing required key \"url\" in \"http\"" },
	{ "unknown http key", false,
	    SEC "targets:\n  - name: a\n    http:\n      url: http://a/\n      expect: [200]\n", 6,
	    "unknown key \"expect\" in \"http\"" },
	{ "bad status", false,
	    SEC
	    "targets:\n  - name: a\n    http:\n      url: http://a/\n      expect_status: [200,\n"
	    "        600]\n",
	    7, "\"expect_status\" must be between 100 and 599, not 600" },
	{ "too many statuses", false,
	    SEC
	    "targets:\n  - name: a\n    http:\n      url: http://a/\n      expect_status: [200, 201,\n"
	    "        202, 203, 204, 205, 206, 207, 208, 209, 210, 211, 212, 213, 214, 215,\n"
	    "        216]\n",
	    8, "\"expect_status\" has more than 16 entries" },
	{ "bad port", false, SEC "targets:\n  - { name: a, tcp: { host: a, port: 70000 } }\n", 3,
	    "\"port\" must be between 1 and 65535" },
	{ "bad dns type", false, SEC "targets:\n  - { name: a, dns: { name: a, type: BOGUS } }\n",
	    3, "\"type\" must be a DNS record type" },
	{ "dns short form", false, SEC "controls:\n  - { kind: dns, name: example.com }\n", 3,
	    "\"kind\" must be http, tcp or icmp" },
	{ "short form key on long form", false,
	    SEC "targets:\n  - { name: a, icmp: { host: a }, url: \"http://x/\" }\n", 3,
	    "unknown key \"url\" in \"targets\"" },
	{ "regions on a control", false,
	    SEC REGIONS "controls:\n  - { kind: icmp, host: a, regions: [eu] }\n", 4,
	    "unknown key \"regions\" in \"controls\"" },
	{ "bad listen endpoint", false, SEC "listen: { zmq: \"udp://0.0.0.0:1\" }\n", 2,
	    "\"zmq\" must be \"tcp://HOST:PORT\" or \"ipc://PATH\"" },
	{ "bad listen http", false, SEC "listen: { http: \"8080\" }\n", 2,
	    "\"http\" must be \"HOST:PORT\"" },
	{ "missing security", false, "state_dir: /x\n", 1, "missing required key \"security\"" },
	{ "missing curve key", false, "state_dir: /x\nsecurity:\n  agent_keys_dir: k/\n", 3,
	    "missing required key \"curve_secret_key\" in \"security\"" },
	{ "bad bool", false, "security: { insecure: maybe }\n", 1,
	    "\"insecure\" must be true or false, not \"maybe\"" },
	{ "bad role", false, SEC "api_tokens:\n  - { name: a, token_file: t, role: root }\n", 3,
	    "\"role\" must be admin, write or read" },
	{ "alerts not a sequence", false, SEC "alerts: { a: 1 }\n", 2,
	    "\"alerts\" must be a sequence, not a map" },
	{ "alert not a map", false, SEC "alerts:\n  - oncall\n", 3,
	    "\"alerts\" must be a map, not a string" },
	{ "alert without name", false,
	    SEC
	    "alerts:\n  - { name: a, exec: { command: /bin/true } }\n  - webhook: { url: \"http://h/\" }\n",
	    4, "missing required key \"name\" in \"alerts\"" },
	{ "bad alert name", false,
	    SEC "alerts:\n  - { name: \"on call\", exec: { command: /bin/true } }\n", 3,
	    "\"name\" must be 1 to 64 characters" },
	{ "duplicate alert channel", false,
	    SEC
	    "alerts:\n  - { name: a, exec: { command: /bin/true } }\n"
	    "  - { name: b, exec: { command: /bin/true } }\n  - name: a\n    exec: { command: /bin/false }\n",
	    5, "duplicate alert channel \"a\" (first at line 3)" },
	{ "webhook and exec", false,
	    SEC
	    "alerts:\n  - name: a\n    webhook: { url: \"http://h/\" }\n    exec: { command: /bin/true }\n",
	    5, "alert channel \"a\" has both \"webhook\" and \"exec\"" },
	{ "neither webhook nor exec", false, SEC "alerts:\n  - name: a\n    on: [outage]\n", 3,
	    "alert channel \"a\" needs \"webhook\" or \"exec\"" },
	{ "unknown alert key", false,
	    SEC "alerts:\n  - name: a\n    exec: { command: /bin/true }\n    retries: 3\n", 5,
	    "unknown key \"retries\" in \"alerts\"" },
	{ "unknown webhook key", false,
	    SEC "alerts:\n  - name: a\n    webhook:\n      url: \"http://h/\"\n      method: PUT\n",
	    6, "unknown key \"method\" in \"webhook\"" },
	{ "webhook without url", false,
	    SEC "alerts:\n  - name: a\n    webhook:\n      format: slack\n", 5,
	    "missing required key \"url\" in \"webhook\"" },
	{ "webhook url not http", false,
	    SEC "alerts:\n  - name: a\n    webhook:\n      url: \"mailto:ops@example.com\"\n", 5,
	    "\"url\" must be an http:// or https:// URL" },
	{ "bad webhook format", false,
	    SEC
	    "alerts:\n  - name: a\n    webhook:\n      url: \"http://h/\"\n      format: teams\n",
	    6, "\"format\" must be json, slack or pagerduty, not \"teams\"" },
	{ "pagerduty without routing key", false,
	    SEC
	    "alerts:\n  - name: a\n    webhook:\n      url: \"https://events.pagerduty.com/v2/enqueue\"\n"
	    "      format: pagerduty\n",
	    5, "missing required key \"routing_key\" in \"webhook\"" },
	{ "routing key without pagerduty", false,
	    SEC
	    "alerts:\n  - name: a\n    webhook:\n      url: \"http://h/\"\n      routing_key: k\n",
	    6, "\"routing_key\" is only used with \"format: pagerduty\"" },
	{ "relative command", false,
	    SEC "alerts:\n  - name: a\n    exec:\n      command: page-me now\n", 5,
	    "\"command\" must start with the absolute path of a program" },
	{ "command of spaces", false, SEC "alerts:\n  - name: a\n    exec: { command: \"   \" }\n",
	    4, "\"command\" must not be empty" },
	{ "empty command list", false, SEC "alerts:\n  - name: a\n    exec: { command: [] }\n", 4,
	    "\"command\" must have 1 to 64 words, not 0" },
	{ "command with a tab", false,
	    SEC "alerts:\n  - name: a\n    exec: { command: \"/bin/x\\ty\" }\n", 4,
	    "\"command\" must not contain control characters" },
	{ "exec without command", false, SEC "alerts:\n  - name: a\n    exec: {}\n", 4,
	    "missing required key \"command\" in \"exec\"" },
	{ "unknown alert event", false,
	    SEC
	    "alerts:\n  - name: a\n    exec: { command: /bin/true }\n    on:\n      - outage\n      - resolved\n",
	    7, "unknown alert event \"resolved\"" },
	{ "alert event twice", false,
	    SEC
	    "alerts:\n  - name: a\n    exec: { command: /bin/true }\n    on: [outage, blind, outage]\n",
	    5, "event \"outage\" is listed twice" },
	{ "no alert events", false,
	    SEC "alerts:\n  - name: a\n    exec: { command: /bin/true }\n    on: []\n", 5,
	    "\"on\" must name at least one event" },
	{ "alert timeout too long", false,
	    SEC "alerts:\n  - name: a\n    exec: { command: /bin/true }\n    timeout: 5m\n", 5,
	    "\"timeout\" must be between 1s and 2m" },
	{ "alert timeout too short", false,
	    SEC "alerts:\n  - { name: a, exec: { command: /bin/true }, timeout: 500ms }\n", 3,
	    "\"timeout\" must be between 1s and 2m" },
	{ "targets not a sequence", false, SEC "targets: api\n", 2,
	    "\"targets\" must be a sequence, not a string" },
	{ "top level not a map", false, "- a\n- b\n", 1, "the top level must be a map" },
	{ "alias", false, SEC "defaults: &d { confirm: 2 }\nx: *d\n", 3,
	    "YAML aliases are not supported" },
	{ "two documents", false, SEC "---\n" SEC, 2, "more than one YAML document" },
	{ "nesting too deep", false,
	    SEC
	    "alerts:\n  - x: [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n",
	    3, "nesting is too deep" },
	{ "NUL in string", false, SEC "state_dir: \"/a\\0b\"\n", 2, "NUL character in string" },
	{ "invalid UTF-8", false, SEC "state_dir: /a\xff\n", 2, "invalid YAML" },

	{ "agent: empty file", true, "", 1, "missing required key \"name\"" },
	{ "agent: missing name", true, "region: eu\n" AGG_OK, 1, "missing required key \"name\"" },
	{ "agent: bad name", true, "name: \"a/b\"\nregion: eu\n" AGG_OK, 1,
	    "\"name\" must be 1 to 64 characters" },
	{ "agent: name too long", true,
	    "region: eu\nname: a12345678901234567890123456789012345678901234567890123456789012345\n" AGG_OK,
	    2, "\"name\" must be 1 to 64 characters" },
	{ "agent: missing endpoint", true,
	    "name: a\nregion: eu\ninsecure: true\naggregator:\n  public_key: k\n", 5,
	    "missing required key \"endpoint\" in \"aggregator\"" },
	{ "retention: raw under 2 days", false, SEC "retention:\n  raw: 1d\n", 3,
	    "\"raw\" must be between 2d and" },
	{ "retention: rollup shorter than raw", false,
	    SEC "retention:\n  raw: 60d\n  rollup: 40d\n", 4,
	    "\"retention.rollup\" (40d) must be at least \"retention.raw\" (60d)" },
	{ "retention: raw beyond the default rollup", false, SEC "retention: { raw: 500d }\n", 2,
	    "\"retention.rollup\" (400d) must be at least \"retention.raw\" (500d)" },
	{ "retention: not a duration", false, SEC "retention: { rollup: forever }\n", 2,
	    "\"rollup\" must be a duration" },
	{ "retention: unknown key", false, SEC "retention: { rows: 30d }\n", 2,
	    "unknown key \"rows\" in \"retention\"" },
	{ "agent: bad endpoint", true,
	    "name: a\nregion: eu\ninsecure: true\naggregator:\n  endpoint: \"http://agg:7500\"\n",
	    5, "\"endpoint\" must be \"tcp://HOST:PORT\" or \"ipc://PATH\"" },
	{ "agent: endpoint without port", true,
	    "name: a\nregion: eu\ninsecure: true\naggregator: { endpoint: \"tcp://agg\" }\n", 4,
	    "\"endpoint\" must be" },
	{ "agent: bad spool_max", true, "name: a\nregion: eu\n" AGG_OK "spool_max: 12XB\n", 5,
	    "\"spool_max\" must be a size" },
	{ "agent: spool_max too small", true, "name: a\nregion: eu\n" AGG_OK "spool_max: 1000\n", 5,
	    "\"spool_max\" must be between 262144 and" },
	{ "agent: bad concurrency", true, "name: a\nregion: eu\n" AGG_OK "max_concurrency: 0\n", 5,
	    "\"max_concurrency\" must be between 1 and 65536" },
	{ "agent: bad source_ip", true, "name: a\nregion: eu\n" AGG_OK "source_ip: eth0\n", 5,
	    "\"source_ip\" must be an IPv4 or IPv6 address" },
	{ "agent: unknown key", true, "name: a\nregion: eu\n" AGG_OK "spool: /x\n", 5,
	    "unknown key \"spool\"" },
	{ "agent: missing secret key", true,
	    "name: a\nregion: eu\naggregator: { endpoint: \"tcp://agg:7500\", public_key: k }\n", 1,
	    "missing required key \"secret_key\"" },
	{ "agent: missing public key", true,
	    "name: a\nregion: eu\nsecret_key: s\naggregator:\n  endpoint: \"tcp://agg:7500\"\n", 5,
	    "missing required key \"public_key\" in \"aggregator\"" },
};

// Runs every case before failing, so one run lists all the wrong lines.
static void
test_bad_inputs(void **state)
{
	char err[512];
	size_t i, failures = 0;

	(void)state;
	for (i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *c = &bad_cases[i];
		char *path = write_temp(c->text, strlen(c->text));
		struct agent_conf *agent = NULL;
		struct agg_conf *agg = NULL;

		err[0] = '\0';
		if (c->agent)
			agent = agent_conf_load(path, err, sizeof(err));
		else
			agg = agg_conf_load(path, err, sizeof(err));
		if (agent != NULL || agg != NULL) {
			print_error("case \"%s\" was accepted\n", c->what);
			failures++;
		} else if (!error_matches(err, path, c->line, c->message)) {
			print_error("in case \"%s\"\n", c->what);
			failures++;
		}
		agent_conf_free(agent);
		agg_conf_free(agg);
		unlink(path);
		free(path);
	}
	assert_int_equal(failures, 0);
}

static void
test_agent_valid(void **state)
{
	static const char text[] = "# a probe agent\n"
				   "name: fra-1\n"
				   "region: eu-west\n"
				   "aggregator:\n"
				   "  endpoint: \"tcp://agg.example.com:7500\"\n"
				   "  public_key: /etc/vantage/aggregator.pub\n"
				   "secret_key: keys/agent.key\n"
				   "spool_dir: /var/spool/vantage\n"
				   "spool_max: 1GiB\n"
				   "max_concurrency: 512\n"
				   "source_ip: \"2001:db8::1\"\n";
	char err[512] = "";
	char *path = write_temp(text, strlen(text));
	struct agent_conf *conf = agent_conf_load(path, err, sizeof(err));

	(void)state;
	if (conf == NULL)
		fail_msg("%s", err);
	assert_string_equal(conf->path, path);
	assert_string_equal(conf->name, "fra-1");
	assert_string_equal(conf->region, "eu-west");
	assert_string_equal(conf->aggregator_endpoint, "tcp://agg.example.com:7500");
	assert_string_equal(conf->aggregator_public_key, "/etc/vantage/aggregator.pub");
	assert_string_equal(conf->secret_key, "/tmp/keys/agent.key");
	assert_false(conf->insecure);
	assert_string_equal(conf->spool_dir, "/var/spool/vantage");
	assert_int_equal(conf->spool_max, UINT64_C(1) << 30);
	assert_int_equal(conf->max_concurrency, 512);
	assert_string_equal(conf->source_ip, "2001:db8::1");
	agent_conf_free(conf);
	unlink(path);
	free(path);
}

static void
test_agent_defaults(void **state)
{
	static const char text[] =
	    "name: a\nregion: r\naggregator: { endpoint: \"ipc:///run/agg\" }\n"
	    "insecure: true\n";
	char err[512] = "";
	char *path = write_temp(text, strlen(text));
	struct agent_conf *conf = agent_conf_load(path, err, sizeof(err));

	(void)state;
	if (conf == NULL)
		fail_msg("%s", err);
	assert_true(conf->insecure);
	assert_string_equal(conf->aggregator_endpoint, "ipc:///run/agg");
	assert_null(conf->aggregator_public_key);
	assert_null(conf->secret_key);
	assert_string_equal(conf->spool_dir, "/var/lib/vantage-agent");
	assert_int_equal(conf->spool_max, 256 * MIB);
	assert_int_equal(conf->max_concurrency, 256);
	assert_null(conf->source_ip);
	agent_conf_free(conf);
	unlink(path);
	free(path);
}

static void
test_parse_duration(void **state)
{
	static const struct {
		const char *text;
		int rc;
		uint64_t ms;
	} cases[] = {
		{ "500ms", 0, 500 },
		{ "30s", 0, 30000 },
		{ "2m", 0, 120000 },
		{ "1h", 0, 3600000 },
		{ "1d", 0, 86400000 },
		{ "400d", 0, 34560000000 },
		{ "45", 0, 45000 },
		{ "0", 0, 0 },
		{ "", -1, 0 },
		{ "s", -1, 0 },
		{ "-1s", -1, 0 },
		{ "+1s", -1, 0 },
		{ "1.5s", -1, 0 },
		{ "1 s", -1, 0 },
		{ "1S", -1, 0 },
		{ "1w", -1, 0 },
		{ "10sec", -1, 0 },
		{ "0x10", -1, 0 },
		{ "18446744073709551615ms", 0, UINT64_MAX },
		{ "18446744073709551616ms", -1, 0 },
		{ "18446744073709552s", -1, 0 },
	};
	uint64_t ms;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ms = 0;
		if (yconf_parse_duration(cases[i].text, &ms) != cases[i].rc || ms != cases[i].ms)
			fail_msg("duration \"%s\"", cases[i].text);
	}
}

static void
test_parse_size(void **state)
{
	static const struct {
		const char *text;
		int rc;
		uint64_t bytes;
	} cases[] = {
		{ "1000", 0, 1000 },
		{ "1000B", 0, 1000 },
		{ "512KiB", 0, 512 * 1024 },
		{ "256MiB", 0, 256 * MIB },
		{ "1GiB", 0, UINT64_C(1) << 30 },
		{ "2TiB", 0, UINT64_C(2) << 40 },
		{ "5KB", 0, 5000 },
		{ "5kB", 0, 5000 },
		{ "3MB", 0, 3000000 },
		{ "1GB", 0, 1000000000 },
		{ "1TB", 0, 1000000000000 },
		{ "", -1, 0 },
		{ "MiB", -1, 0 },
		{ "1.5GiB", -1, 0 },
		{ "1 GiB", -1, 0 },
		{ "-1", -1, 0 },
		{ "1PB", -1, 0 },
		{ "20000000TiB", -1, 0 },
	};
	uint64_t bytes;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bytes = 0;
		if (yconf_parse_size(cases[i].text, &bytes) != cases[i].rc ||
		    bytes != cases[i].bytes)
			fail_msg("size \"%s\"", cases[i].text);
	}
}

// The tree itself: lines, names and nulls, independent of either schema.
static void
test_yconf_tree(void **state)
{
	static const char text[] = "a: 1\n"
				   "b:\n"
				   "  - x\n"
				   "  - { y: \"\" }\n"
				   "c: ~\n"
				   "d:\n"
				   "e: 'null'\n";
	char err[512] = "";
	char *path = write_temp(text, strlen(text));
	struct yconf_doc *doc = yconf_load(path, err, sizeof(err));
	const struct yconf_node *b, *item;
	char *s = NULL;

	(void)state;
	if (doc == NULL)
		fail_msg("%s", err);
	assert_int_equal(doc->root->kind, YCONF_MAP);
	assert_int_equal(doc->root->n_pairs, 5);
	b = yconf_get(doc->root, "b");
	assert_non_null(b);
	assert_int_equal(b->kind, YCONF_SEQ);
	assert_int_equal(b->line, 3);
	assert_int_equal(b->n_items, 2);
	item = b->items[1];
	assert_int_equal(item->line, 4);
	assert_string_equal(item->name, "b");
	assert_int_equal(yconf_str(doc, yconf_get(item, "y"), &s), -1);
	assert_error(err, path, 4, "\"y\" must not be empty");
	assert_null(yconf_get(doc->root, "c"));
	assert_null(yconf_get(doc->root, "d"));
	assert_non_null(yconf_get(doc->root, "e"));
	assert_int_equal(yconf_str(doc, yconf_get(doc->root, "e"), &s), 0);
	assert_string_equal(s, "null");
	free(s);
	assert_null(yconf_require(doc, doc->root, "zz"));
	assert_error(err, path, 1, "missing required key \"zz\"");
	yconf_free(doc);
	unlink(path);
	free(path);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_design_example),
		cmocka_unit_test(test_overrides_and_defaults),
		cmocka_unit_test(test_alerts),
		cmocka_unit_test(test_empty_aggregator_file),
		cmocka_unit_test(test_retention_defaults),
		cmocka_unit_test(test_file_too_large),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_bad_inputs),
		cmocka_unit_test(test_agent_valid),
		cmocka_unit_test(test_agent_defaults),
		cmocka_unit_test(test_parse_duration),
		cmocka_unit_test(test_parse_size),
		cmocka_unit_test(test_yconf_tree),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
