// SPDX-License-Identifier: Apache-2.0
//
// agent.yml: what one agent is (name, region), where its aggregator is, and
// where it spools.  Parsed once at start with libyaml (through common/yconf);
// every error is reported as "FILE:LINE: message".  The agent gets its target
// list from the aggregator, never from this file.
#ifndef VANTAGE_AGENT_CONF_H
#define VANTAGE_AGENT_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct agent_conf {
	char *path;                  // the file it was read from
	char *name;                  // required; [A-Za-z0-9._-], 1..64 bytes
	char *region;                // required; same charset
	char *aggregator_endpoint;   // required; "tcp://host:port"
	char *aggregator_public_key; // path of the aggregator's public key, or NULL
	char *secret_key;            // path of this agent's secret key, or NULL
	bool insecure;               // plaintext ZeroMQ (dev only); default false
	char *spool_dir;             // default "/var/lib/vantage-agent"
	uint64_t spool_max;          // bytes; default 256 MiB
	bool spool_fsync;            // fsync every spooled batch; default true
	unsigned max_concurrency;    // probes in flight; default 256, 1..65536
	char *source_ip;             // bind probes to this address, or NULL
};

// Reads and validates path.  On error writes "FILE:LINE: message" into err
// and returns NULL.  The caller owns the result (agent_conf_free).
struct agent_conf *agent_conf_load(const char *path, char *err, size_t errlen);
void agent_conf_free(struct agent_conf *conf);

#endif
