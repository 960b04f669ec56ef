// SPDX-License-Identifier: Apache-2.0
//
// The HTTP(S) prober: the ops of VANTAGE__PROBE_KIND__PROBE_KIND_HTTP in
// probe.c's table.  Probes run on the agent's one libevent loop through
// common/curl_ev; each measures a fresh connection (no reuse, no DNS cache)
// so that every phase is really measured every time.  Never blocks and
// never starts a thread.
#ifndef VANTAGE_PROBE_HTTP_H
#define VANTAGE_PROBE_HTTP_H

#include "probe.h"

extern const struct probe_ops probe_http_ops;

#endif
