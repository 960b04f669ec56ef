#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Lab scenario 21 (TESTPLAN.md §3): one region (r2) sees a target down for
# 12 intervals.  Exactly one regional incident, open the whole time and
# resolved after; never an outage.  r2's every DOWN result asks the
# aggregator for ProbeNow, which it sends at most once per target per
# interval: so each other region stores at most one ProbeNow (trigger 2)
# result per elapsed interval (+1 for the window's edges), and two of them
# are never less than an interval apart.
. "$(dirname "$0")/lib/lab.sh"

T=s21
INTERVAL_S=4
INTERVALS=12

lab_up
lab_start_target
lab_start_hookd
lab_write_conf ${INTERVAL_S}s 2s "  - { name: $T, http: { url: \"$LAB_TGT_URL/$T\" } }" "$LAB_ALERTS_YAML"
lab_start_aggregator
lab_start_agents

target() { lab_api "/api/v1/targets/$T"; }
all_up() { target | jq -e '.state == "up" and ([.regions[] | select(.vote == "up")] | length) == 5'; }
lab_wait_for $((INTERVAL_S + 15)) "$T up with an UP vote from all five regions" all_up

fault_at=$(lab_psql "SELECT now()")
lab_target_rules "[{\"path\": \"/$T\", \"client\": \"${LAB_IP[r2]}\", \"action\": \"fail\", \"status\": 500}]"
lab_log "$T answers 500 to r2 for $INTERVALS intervals ($((INTERVALS * INTERVAL_S))s)"
regional_open() { [ "$(lab_incident_state "$T" regional)" = open ]; }
lab_wait_for $((INTERVAL_S + 10)) "a regional incident of $T" regional_open
id=$(lab_incident_id "$T" regional)
lab_log "regional incident $id open"
end=$(($(date +%s) + INTERVALS * INTERVAL_S))
while [ "$(date +%s)" -lt "$end" ]; do
	[ "$(lab_incident_id "$T" regional)" = "$id" ] && [ "$(lab_incident_state "$T" regional)" = open ] ||
		lab_fail "regional incident $id did not stay the one open regional incident of $T"
	[ -z "$(lab_incident_state "$T" outage)" ] || lab_fail "an outage of $T was opened for one region"
	[ "$(target | jq -r .state)" = degraded ] || lab_fail "$T left DEGRADED while r2 failed: $(target)"
	lab_sleep 1
done
lab_target_rules '[]'
healed_at=$(lab_psql "SELECT now()")
lab_ok "one regional incident ($id) open for $INTERVALS intervals, $T DEGRADED throughout, no outage"

# ProbeNow: at most once per interval.
# From r2's first failure (the first reason for a ProbeNow) to the heal.
first_at=$(lab_psql "SELECT min(r.started_at) FROM results r JOIN targets t ON t.id = r.target_id
	WHERE t.key = '$T' AND r.outcome = 2 AND r.started_at >= '$fault_at'")
window_s=$(lab_psql "SELECT round(extract(epoch FROM '$healed_at'::timestamptz - '$first_at'::timestamptz), 3)")
max_pn=$(awk -v w="$window_s" -v i="$INTERVAL_S" 'BEGIN { printf "%d", w / i + 1 }')
total=0
while IFS='|' read -r region n min_gap_ms; do
	lab_log "$region: $n ProbeNow results in ${window_s}s, at least ${min_gap_ms:-none} ms apart"
	echo "METRIC s21 region=$region probe_now_results=$n window_s=$window_s min_gap_ms=${min_gap_ms:-}"
	[ "$n" -le "$max_pn" ] || lab_fail "$region ran $n ProbeNow probes in ${window_s}s: more than one per ${INTERVAL_S}s interval ($max_pn)"
	[ -z "$min_gap_ms" ] || [ "$min_gap_ms" -ge $((INTERVAL_S * 1000 - 250)) ] ||
		lab_fail "$region ran two ProbeNow probes ${min_gap_ms} ms apart, less than an interval"
	total=$((total + n))
done < <(lab_psql "WITH pn AS (SELECT a.region, r.started_at,
		r.started_at - lag(r.started_at) OVER (PARTITION BY r.agent_id ORDER BY r.started_at) AS gap
		FROM results r JOIN agents a ON a.id = r.agent_id JOIN targets t ON t.id = r.target_id
		WHERE t.key = '$T' AND r.trigger = 2 AND r.started_at >= '$first_at'
		AND r.started_at < '$healed_at')
	SELECT region, count(*), round(extract(epoch FROM min(gap)) * 1000)::bigint FROM pn
	GROUP BY region ORDER BY region")
r2_pn=$(lab_psql "SELECT count(*) FROM results r JOIN agents a ON a.id = r.agent_id
	JOIN targets t ON t.id = r.target_id WHERE t.key = '$T' AND a.region = 'r2' AND r.trigger = 2
	AND r.started_at >= '$fault_at'")
[ "$r2_pn" = 0 ] || lab_fail "r2, whose failures asked for ProbeNow, got $r2_pn ProbeNow itself"
[ "$total" -ge 4 ] || lab_fail "only $total ProbeNow results from the other regions: was ProbeNow sent at all?"
lab_ok "ProbeNow at most once per interval: $total results from the four other regions (at most $max_pn each)"

resolved() { [ "$(lab_incident_state "$T" regional)" = resolved ]; }
lab_wait_for $((2 * INTERVAL_S + 10)) "regional incident $id to resolve" resolved
lab_wait_for $((INTERVAL_S + 10)) "$T up from all five regions again" all_up
lab_ok "regional incident $id resolved after r2 saw $T again"

lab_stop_agents
lab_expect_incident "$T" regional 1
lab_expect_alert "$T" regional 1
lab_expect_alert "$T" regional_recovery 1
lab_invariant
