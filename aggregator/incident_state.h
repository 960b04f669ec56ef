// SPDX-License-Identifier: Apache-2.0
//
// What incident.c keeps of one target: the kinds of incident open now and
// the grace period of a regional one.  It lives in the target's slot of the
// table, beside the verdict's state (verdict_state.h); only incident.c
// writes or reads it.
#ifndef VANTAGE_INCIDENT_STATE_H
#define VANTAGE_INCIDENT_STATE_H

#include <stdint.h>

#define INCIDENT_OUTAGE (1u << 0)
#define INCIDENT_REGIONAL (1u << 1)
#define INCIDENT_BLIND (1u << 2)

struct incident_target {
	unsigned open;        // INCIDENT_* bits of the kinds open now
	int64_t regional_due; // DEGRADED: when it becomes a regional incident
};

#endif
