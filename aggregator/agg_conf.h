// SPDX-License-Identifier: Apache-2.0
//
// vantage.yml: the source of truth for targets and rules (DESIGN.md §3).
// Parsed with libyaml through common/yconf; every error is "FILE:LINE:
// message".  A loaded agg_conf is immutable; SIGHUP loads a new one and swaps.
#ifndef VANTAGE_AGG_CONF_H
#define VANTAGE_AGG_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "quorum.h"

enum probe_kind { PROBE_HTTP = 1, PROBE_TCP, PROBE_DNS, PROBE_ICMP };

#define CONF_MAX_EXPECT 16

struct http_spec {
	char *url;                               // required, http:// or https://
	char *method;                            // default "GET"
	uint32_t expect_status[CONF_MAX_EXPECT]; // default {200..399 => n=0 means 2xx/3xx}
	size_t n_expect;
	char *body_contains;     // or NULL
	uint32_t max_latency_ms; // 0 = no limit
	bool follow_redirects;   // default false
	uint32_t tls_min_days;   // 0 = no check
};
struct tcp_spec {
	char *host;
	uint16_t port;
};
struct dns_spec {
	char *name;
	char *type;
	char *server;
	char **expect;
	size_t n_expect;
};
struct icmp_spec {
	char *host;
};

struct target_conf {
	char *key;            // "name", required, unique, [A-Za-z0-9._-] 1..128
	char *group;          // or NULL
	enum probe_kind kind; // exactly one of http/tcp/dns/icmp
	struct http_spec http;
	struct tcp_spec tcp;
	struct dns_spec dns;
	struct icmp_spec icmp;
	uint32_t interval_ms; // default from defaults
	uint32_t timeout_ms;
	uint32_t confirm;
	uint32_t retry_interval_ms;
	struct quorum_need quorum;
	struct quorum_need recover;
	uint32_t min_voters;       // 0 = the quorum count
	uint32_t distinct_domains; // 0 = not required
	uint32_t recover_for;      // evaluations; default 2
	// A vote turns DOWN only when its failures span this long; default 2 s,
	// 0 = off.
	uint32_t confirm_span_ms;
	// An outage within this long of the last one's end reopens it; after
	// parsing a target always holds a number (CONF_AUTO only in defaults:
	// the larger of 10 min and 10 intervals).
	uint32_t reopen_window_ms;
	// A recovery is announced once the target stayed out of DOWN this long
	// (CONF_AUTO: the larger of 60 s and 2 intervals); 0 = at once.
	uint32_t settle_for_ms;
	char **regions; // NULL/0 = all regions; each must be a known region
	size_t n_regions;
	int line; // line of the entry, for later messages
};

#define CONF_AUTO UINT32_MAX

struct region_conf {
	char *name;
	char *domain;
};

// Alert events a channel subscribes to (`on:`); default: outage, recovery,
// blind, flapping.  Regional incidents are opt-in.
#define ALERT_ON_OUTAGE (1u << 0)   // outage opened
#define ALERT_ON_RECOVERY (1u << 1) // outage resolved
#define ALERT_ON_REGIONAL (1u << 2) // regional incident opened and resolved
#define ALERT_ON_BLIND (1u << 3)    // monitoring blind opened and resolved
#define ALERT_ON_FLAPPING (1u << 4) // target started flapping (alerts grouped)

enum alert_format { ALERT_FORMAT_JSON, ALERT_FORMAT_SLACK, ALERT_FORMAT_PAGERDUTY };

struct alert_conf {
	char *name;               // channel name, unique, [A-Za-z0-9._-]
	bool is_exec;             // exec: { command } instead of webhook: { url }
	char *url;                // webhook URL (http:// or https://)
	enum alert_format format; // webhook format: json (default), slack, pagerduty
	char *routing_key;        // pagerduty: integration key (or NULL)
	char **argv;              // exec: command split on spaces, NULL-terminated
	unsigned events;          // ALERT_ON_* bits
	uint32_t timeout_ms;      // per delivery attempt; default 10 s
	int line;
};

struct api_token_conf {
	char *name;
	char *token_file;
	char *role;
};

struct agg_conf {
	char *path;
	char *listen_zmq;       // default "tcp://127.0.0.1:7500"
	char *listen_http;      // default "127.0.0.1:8080"
	char *database;         // NULL => embedded cluster in state_dir/pg
	char *state_dir;        // default "/var/lib/vantage"
	bool insecure;          // security: { insecure: true }
	char *curve_secret_key; // security.curve_secret_key, or NULL
	char *agent_keys_dir;   // security.agent_keys_dir, or NULL
	struct api_token_conf *tokens;
	size_t n_tokens;
	struct region_conf *regions;
	size_t n_regions;
	// defaults: interval 30s, timeout 10s, confirm 2, retry_interval 1s,
	// quorum majority, recover majority
	struct target_conf defaults;
	struct target_conf *controls;
	size_t n_controls;
	struct target_conf *targets;
	size_t n_targets;
	struct alert_conf *alerts;
	size_t n_alerts;
	// retention: results partitions of days older than raw are dropped
	// (default 30d, at least 2d so that the rollups have read them),
	// rollup rows older than rollup (default 400d, at least raw).
	uint64_t retention_raw_ms;
	uint64_t retention_rollup_ms;
};

// Reads and validates path.  On error writes "FILE:LINE: message" into err
// and returns NULL.  The caller owns the result (agg_conf_free).
struct agg_conf *agg_conf_load(const char *path, char *err, size_t errlen);
void agg_conf_free(struct agg_conf *conf);
// Index of the target with this key, or -1.
int agg_conf_target_index(const struct agg_conf *conf, const char *key);

#endif
