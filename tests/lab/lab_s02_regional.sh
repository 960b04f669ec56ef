#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Lab scenario 2 (TESTPLAN.md §3): a target is down from one region only
# (r3 gets 503, everyone else 200).  That is a regional incident: the target
# is DEGRADED, r3 votes DOWN, the others UP (their ProbeNow results say so),
# and no outage is ever opened or alerted, however long it lasts.  After r3
# sees the target again the regional incident resolves.  Alerts: one
# "regional" and one "regional_recovery" (the channel subscribes to regional
# events), no "outage".
. "$(dirname "$0")/lib/lab.sh"

T=s02
INTERVAL_S=2
HOLD_S=12 # six intervals of r3 failing

lab_up
lab_start_target
lab_start_hookd
lab_write_conf ${INTERVAL_S}s 2s "  - { name: $T, http: { url: \"$LAB_TGT_URL/$T\" } }" "$LAB_ALERTS_YAML"
lab_start_aggregator
lab_start_agents

target() { lab_api "/api/v1/targets/$T"; }
all_up() { target | jq -e '.state == "up" and ([.regions[] | select(.vote == "up")] | length) == 5'; }
lab_wait_for 20 "$T up with an UP vote from all five regions" all_up

fault_at=$(lab_psql "SELECT now()")
lab_target_rules "[{\"path\": \"/$T\", \"client\": \"${LAB_IP[r3]}\", \"action\": \"fail\", \"status\": 503}]"
lab_log "$T answers 503 to r3 only"
regional_open() { [ "$(lab_incident_state "$T" regional)" = open ]; }
lab_wait_for $((INTERVAL_S + 10)) "a regional incident of $T" regional_open
id=$(lab_incident_id "$T" regional)
IFS='|' read -r regions detect_ms <<<"$(lab_psql "SELECT array_to_string(regions, ','),
	round(extract(epoch FROM detected_at - (SELECT min(r.started_at) FROM results r
		JOIN targets t ON t.id = r.target_id WHERE t.key = '$T' AND r.outcome = 2
		AND r.started_at >= '$fault_at')) * 1000) FROM incidents WHERE id = $id")"
[ "$regions" = r3 ] || lab_fail "regional incident $id names regions \"$regions\", want r3"
lab_ok "regional incident $id open for r3"
echo "METRIC s02 detect_s=$(awk -v m="$detect_ms" 'BEGIN { printf "%.3f", m / 1000 }')"

# It stays regional: DEGRADED, r3 DOWN, the others UP, never an outage.
degraded() {
	target | jq -e '.state == "degraded" and
		([.regions[] | select(.region == "r3" and .vote == "down")] | length) == 1 and
		([.regions[] | select(.region != "r3" and .vote == "up")] | length) == 4'
}
lab_wait_for 5 "$T degraded with only r3 voting DOWN" degraded
end=$(($(date +%s) + HOLD_S))
while [ "$(date +%s)" -lt "$end" ]; do
	degraded >/dev/null || lab_fail "$T left DEGRADED while r3 alone failed: $(target)"
	[ -z "$(lab_incident_state "$T" outage)" ] || lab_fail "an outage of $T was opened for one region"
	lab_sleep 0.5
done
status=$(lab_api /api/v1/status | jq -r .status)
[ "$status" = degraded ] || lab_fail "/api/v1/status says \"$status\" while $T is degraded"
lab_ok "$T stayed DEGRADED for ${HOLD_S}s (r3 DOWN, four regions UP), no outage"
# The other regions were asked (ProbeNow) and answered UP.
pn=$(lab_psql "SELECT count(*) FILTER (WHERE r.outcome = 1), count(*) FROM results r
	JOIN agents a ON a.id = r.agent_id JOIN targets t ON t.id = r.target_id
	WHERE t.key = '$T' AND r.trigger = 2 AND a.region <> 'r3' AND r.started_at >= '$fault_at'")
[ "${pn%|*}" -ge 4 ] && [ "${pn%|*}" = "${pn#*|}" ] ||
	lab_fail "ProbeNow results of the other regions (up|all): $pn, want at least 4, all UP"
lab_ok "the other regions' ProbeNow results: ${pn#*|}, all UP"

# ---- healing ----
lab_target_rules '[]'
lab_log "$T healed for r3"
resolved() { [ "$(lab_incident_state "$T" regional)" = resolved ]; }
lab_wait_for $((2 * INTERVAL_S + 10)) "regional incident $id to resolve" resolved
lab_wait_for 10 "$T up from all five regions again" all_up
lab_api "/api/v1/incidents/$id" | jq -e '.state == "resolved" and .kind == "regional" and
	([.timeline[] | select(.kind == "first_failure" and .region == "r3")] | length) >= 1' >/dev/null ||
	lab_fail "API: incident $id is not a resolved regional incident with r3's first failure: $(lab_api "/api/v1/incidents/$id")"
lab_ok "regional incident $id resolved; $T up again"

lab_stop_agents
lab_expect_incident "$T" regional 1
lab_expect_alert "$T" regional 1
lab_expect_alert "$T" regional_recovery 1
lab_invariant
