#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Lab scenario 12 (TESTPLAN.md §3): a flapping target.  It answers 503 to
# everyone for DOWN_S seconds every PERIOD_S seconds, CYCLES times, with
# flap_limit 1: the second outage within the hour makes it flapping.  What
# people see must stay calm: ONE outage incident, reopened by every later
# flap (incident.h) and flagged flapping, and grouped alerts: one "outage"
# (the first), at most one "recovery" (before it was known to flap), one
# "flapping", not one per flap.  Every flap still shows in the incident's
# timeline (a quorum and a resolved event per cycle).
. "$(dirname "$0")/lib/lab.sh"

T=s12
INTERVAL_S=2
CYCLES=${CYCLES:-4}
DOWN_S=12
PERIOD_S=30

lab_up
lab_start_target
lab_start_hookd
lab_write_conf ${INTERVAL_S}s 2s "  - { name: $T, http: { url: \"$LAB_TGT_URL/$T\" }, flap_limit: 1 }" "$LAB_ALERTS_YAML"
lab_start_aggregator
lab_start_agents

target() { lab_api "/api/v1/targets/$T"; }
all_up() { target | jq -e '.state == "up" and ([.regions[] | select(.vote == "up")] | length) == 5'; }
lab_wait_for $((INTERVAL_S + 15)) "$T up with an UP vote from all five regions" all_up

outage_is() { [ "$(lab_incident_state "$T" outage)" = "$1" ]; }
id=
for c in $(seq 1 "$CYCLES"); do
	start=$(date +%s)
	lab_target_rules "[{\"path\": \"/$T\", \"action\": \"fail\", \"status\": 503}]"
	lab_wait_for 10 "flap $c: the outage of $T (re)opened" outage_is open
	got=$(lab_incident_id "$T" outage)
	[ -n "$id" ] || id=$got
	[ "$got" = "$id" ] || lab_fail "flap $c opened outage $got instead of reopening $id"
	flapping=$(lab_psql "SELECT flapping FROM incidents WHERE id = $id")
	api_flapping=$(target | jq -r .flapping)
	lab_log "flap $c: outage $id open (flapping: incident $flapping, API $api_flapping)"
	if [ "$c" -ge 2 ]; then
		[ "$flapping" = t ] || lab_fail "flap $c: outage $id is not flagged flapping (flap_limit 1)"
		[ "$api_flapping" = true ] || lab_fail "flap $c: /api/v1/targets/$T says flapping $api_flapping"
	else
		[ "$flapping" = f ] || lab_fail "the first outage is flagged flapping already"
	fi
	lab_sleep $((start + DOWN_S - $(date +%s)))
	lab_target_rules '[]'
	lab_wait_for $((PERIOD_S - DOWN_S)) "flap $c: outage $id to resolve" outage_is resolved
	lab_log "flap $c: outage $id resolved"
	[ "$c" = "$CYCLES" ] || lab_sleep $((start + PERIOD_S - $(date +%s)))
done
lab_wait_for $((INTERVAL_S + 10)) "$T up from all five regions again" all_up

# One incident, every flap in its timeline.
read -r quorums resolveds <<<"$(lab_psql "SELECT count(*) FILTER (WHERE kind = 'quorum'),
	count(*) FILTER (WHERE kind = 'resolved') FROM incident_events WHERE incident_id = $id" | tr '|' ' ')"
[ "$quorums" = "$CYCLES" ] && [ "$resolveds" = "$CYCLES" ] ||
	lab_fail "outage $id has $quorums quorum and $resolveds resolved events in its timeline, want $CYCLES each"
lab_api "/api/v1/incidents/$id" | jq -e '.flapping == true and .state == "resolved"' >/dev/null ||
	lab_fail "API: incident $id is not a resolved flapping outage: $(lab_api "/api/v1/incidents/$id")"
lab_ok "$CYCLES flaps: one outage incident ($id), flagged flapping, reopened and resolved $CYCLES times"
echo "METRIC s12 flaps=$CYCLES outage_incidents=$(lab_psql "SELECT count(*) FROM incidents WHERE kind = 'outage'") alerts_queued=$(lab_psql "SELECT count(*) FROM alert_outbox")"

lab_stop_agents
lab_expect_incident "$T" outage 1
lab_expect_alert "$T" outage 1
lab_expect_alert "$T" recovery 0-1
lab_expect_alert "$T" flapping 1
lab_invariant
