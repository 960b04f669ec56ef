// SPDX-License-Identifier: Apache-2.0
//
// The aggregator's live view of its targets: the configured targets with
// their database ids, a key index for ingest, and the latest result each
// agent reported for each target (what the API shows and, later, what the
// quorum evaluates).  Rebuilt from the config on reload.
#ifndef VANTAGE_TARGETS_H
#define VANTAGE_TARGETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agg_conf.h"
#include "quorum.h"
#include "vantage.pb-c.h"

struct latest_result {
	size_t agent_slot;
	int64_t started_at;  // wall µs, agent clock
	int64_t received_at; // wall µs, aggregator clock
	uint64_t seq;
	int outcome, reason, trigger;
	uint32_t http_status;
	uint32_t dns_us, connect_us, tls_us, ttfb_us, total_us;
	char error[129];       // first bytes of the error text
	bool impaired;         // the agent's self-check state in that result
	struct quorum_agent q; // this agent's vote on the target
};

struct verdict_target;  // verdict_state.h: written by verdict.c only
struct incident_target; // incident_state.h: written by incident.c only

struct target_table;

// conf is borrowed and must outlive the table.
struct target_table *targets_new(const struct agg_conf *conf);
void targets_free(struct target_table *t);
size_t targets_count(const struct target_table *t);
const struct target_conf *targets_conf(const struct target_table *t, size_t idx);
// Index of key, or -1.
int targets_find(const struct target_table *t, const char *key);
void targets_set_id(struct target_table *t, size_t idx, int id);
int targets_id(const struct target_table *t, size_t idx);
// Records r as the latest of agent_slot for target idx and feeds it to
// that agent's vote, unless a result with a later started_at is already
// there (late results never go back).  Returns false for such a late one.
bool targets_record(struct target_table *t, size_t idx, size_t agent_slot, const Vantage__Result *r,
    int64_t now_us);
// The per-target state of the verdict and of incidents, side by side in
// the target's slot; each belongs to its module (see its header).
struct verdict_target *targets_verdict(struct target_table *t, size_t idx);
struct incident_target *targets_incident(struct target_table *t, size_t idx);
const struct latest_result *targets_latest(const struct target_table *t, size_t idx, size_t *n);
// Copies the latest results of targets that exist in both tables (reload).
void targets_adopt_latest(struct target_table *to, const struct target_table *from);
// True when agents of this region probe the target (its `regions:`, or all).
bool targets_probed_from(const struct target_conf *tc, const char *region);
// The target's spec as JSON text (owned by the caller), for the database.
char *targets_spec_json(const struct target_conf *tc);

// The Config message for agents of a region: the targets it probes (of the
// kinds agents implement) and every control, as version.  The message
// points into conf, which must outlive it; freed with targets_config_free.
struct targets_config;
struct targets_config *targets_config_new(const struct agg_conf *conf, const char *region,
    uint64_t version);
Vantage__Config *targets_config_msg(struct targets_config *tc);
void targets_config_free(struct targets_config *tc);

#endif
