// SPDX-License-Identifier: Apache-2.0
//
// The HTTP(S) prober: the ops of VANTAGE__PROBE_KIND__PROBE_KIND_HTTP in
// probe.c's table.  Probes run on the agent's one libevent loop through
// common/curl_ev; each measures a fresh connection (no reuse, no DNS cache)
// so that every phase is really measured every time.  Never blocks and
// never starts a thread.
#ifndef VANTAGE_PROBE_HTTP_H
#define VANTAGE_PROBE_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROBE_HTTP_EXPECT_MAX 16

// What an HTTP probe checks: a copy of the Config's Vantage__HttpSpec, in
// probe_target.spec.http.
struct probe_http_spec {
	char *url;
	char *method;
	uint32_t expect_status[PROBE_HTTP_EXPECT_MAX];
	size_t n_expect;
	char *body_contains; // NULL when not checked
	uint32_t max_latency_ms;
	bool follow_redirects;
	uint32_t tls_min_days;
};

struct probe_ops;
// HTTP's entry in probe.c's kind table (probe.h says what each op does).
extern const struct probe_ops probe_http_ops;

#endif
