#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Lab scenario 1 (TESTPLAN.md §3): a target probed every 30 s answers 503
# from every region.  Fast confirmation (DESIGN.md §6) must find the outage
# in seconds, not rounds: the first region's scheduled probe fails, it
# retries after retry_interval, and the aggregator's ProbeNow makes the other
# regions probe at once and retry too.  So the outage is detected from
# RETRY/PROBE_NOW results, before any region's second scheduled probe, and
# its started_at is that first failing probe.  One outage incident, one
# outage alert.  Then the target heals; the outage resolves once the
# recovery quorum (majority UP for recover_for evaluations) holds, with one
# recovery alert, and no other incident or alert on the way in or out.
#
# Timing goals are `make bench`'s business; the figures are printed as
# METRIC lines: detect_s (first failing probe -> quorum), alert_s (quorum ->
# the receiver got the alert), resolve_s (heal -> incident resolved).
. "$(dirname "$0")/lib/lab.sh"

T=s01
# TESTPLAN's 30 s; another interval or timeout can be tried from the
# environment (the regional grace after an outage depends on the timeout).
INTERVAL_S=${S01_INTERVAL_S:-30}
TIMEOUT_S=${S01_TIMEOUT_S:-5}

lab_up
lab_start_target
lab_start_hookd
lab_write_conf ${INTERVAL_S}s ${TIMEOUT_S}s "  - { name: $T, http: { url: \"$LAB_TGT_URL/$T\" } }" "$LAB_ALERTS_YAML"
lab_start_aggregator
lab_start_agents

target() { lab_api "/api/v1/targets/$T"; }
all_up() { target | jq -e '.state == "up" and ([.regions[] | select(.vote == "up")] | length) == 5'; }
lab_wait_for $((INTERVAL_S + 15)) "$T up with an UP vote from all five regions" all_up
lab_log "$T is up from all five regions"

# ---- the outage ----
fault_at=$(lab_psql "SELECT now()")
lab_target_rules "[{\"path\": \"/$T\", \"action\": \"fail\", \"status\": 503, \"body\": \"down\"}]"
lab_log "$T answers 503 to everyone"
outage_open() { [ "$(lab_incident_state "$T" outage)" = open ]; }
lab_wait_for $((INTERVAL_S + 15)) "an outage of $T" outage_open
id=$(lab_incident_id "$T" outage)
lab_log "outage incident $id open"

# The first failing probe: a scheduled one (nothing else probes a healthy target).
IFS='|' read -r first_at first_trigger first_region <<<"$(lab_psql "SELECT r.started_at, r.trigger, a.region
	FROM results r JOIN agents a ON a.id = r.agent_id JOIN targets t ON t.id = r.target_id
	WHERE t.key = '$T' AND r.outcome = 2 AND r.started_at >= '$fault_at' ORDER BY r.started_at LIMIT 1")"
[ "$first_trigger" = 0 ] || lab_fail "the first failing probe of $T has trigger $first_trigger, want 0 (scheduled)"
IFS='|' read -r started detected regions q_first off_ms detect_ms <<<"$(lab_psql "SELECT i.started_at, i.detected_at,
	array_to_string(i.regions, ','), f.first, round(extract(epoch FROM i.started_at - f.first) * 1000, 1),
	round(extract(epoch FROM i.detected_at - '$first_at'::timestamptz) * 1000)
	FROM incidents i, LATERAL (SELECT min(r.started_at) AS first FROM results r
		JOIN agents a ON a.id = r.agent_id WHERE r.target_id = i.target_id AND r.outcome = 2
		AND r.started_at >= '$fault_at' AND a.region = ANY (i.regions)) f WHERE i.id = $id")"
lab_log "first failing probe at $first_at from $first_region; outage of $regions started_at $started, detected_at $detected"
# started_at is the earliest failing probe of the streaks that formed the
# quorum (the regions in the incident), within an interval of the very first.
[ "${off_ms#-}" = 0.0 ] || lab_fail "outage started_at $started is ${off_ms} ms off its regions' first failing probe ($q_first)"
awk -v a="$(lab_psql "SELECT extract(epoch FROM '$started'::timestamptz - '$first_at'::timestamptz)")" \
	-v i="$INTERVAL_S" 'BEGIN { exit !(a >= 0 && a < i) }' ||
	lab_fail "outage started_at $started is not within an interval of the first failing probe ($first_at)"
lab_ok "outage started_at is the first failing probe of its regions ($regions)"
# Structure of fast confirmation: no region needed a second scheduled probe,
# and the quorum's votes rest on RETRY and PROBE_NOW results.
read -r sched_max regions_down retries probenows <<<"$(lab_psql "SELECT
	coalesce(max(n_sched), 0), count(*), sum(n_retry), sum(n_pn) FROM (
	SELECT r.agent_id, count(*) FILTER (WHERE r.trigger = 0) n_sched,
		count(*) FILTER (WHERE r.trigger = 1) n_retry, count(*) FILTER (WHERE r.trigger = 2) n_pn
	FROM results r JOIN targets t ON t.id = r.target_id
	WHERE t.key = '$T' AND r.outcome = 2 AND r.started_at >= '$fault_at'
	AND r.started_at <= '$detected'::timestamptz GROUP BY r.agent_id) x" | tr '|' ' ')"
lab_log "failing results before detection: $regions_down regions, $retries retries, $probenows ProbeNow, at most $sched_max scheduled per region"
[ "$sched_max" -le 1 ] || lab_fail "a region needed $sched_max scheduled probes before the outage was detected"
[ "$regions_down" -ge 3 ] || lab_fail "only $regions_down regions had failed when the outage was detected (quorum 3)"
[ "$retries" -ge 3 ] || lab_fail "only $retries RETRY results before detection: the quorum was not confirmed by retries"
[ "$probenows" -ge 2 ] || lab_fail "only $probenows PROBE_NOW results before detection: ProbeNow did not reach the other regions"
[ "$detect_ms" -lt $((INTERVAL_S * 1000)) ] || lab_fail "detected ${detect_ms} ms after the first failing probe: not before the next round"
lab_ok "outage detected from RETRY/PROBE_NOW results, before any region's second scheduled probe"
echo "METRIC s01 detect_s=$(awk -v m="$detect_ms" 'BEGIN { printf "%.3f", m / 1000 }')"

# The API agrees.
status=$(lab_api /api/v1/status | jq -r .status)
[ "$status" = down ] || lab_fail "/api/v1/status says \"$status\" during the outage"
lab_api /api/v1/incidents?state=open | jq -e --argjson id "$id" \
	'[.incidents[] | select(.id == $id and .kind == "outage" and .target == "'$T'")] | length == 1' >/dev/null ||
	lab_fail "/api/v1/incidents?state=open does not list outage $id"
all_down() { target | jq -e '.state == "down" and ([.regions[] | select(.vote == "down")] | length) == 5'; }
lab_wait_for 10 "every region to vote DOWN" all_down
lab_ok "API: status down, $T down with five DOWN votes, outage $id open"
if [ "$LAB_HOOK_UP" = 1 ]; then
	got_alert() { [ "$(lab_hook_count "$T" outage)" -ge 1 ]; }
	lab_wait_for 15 "the outage alert at the receiver" got_alert
	alert_ms=$(lab_psql "SELECT round(extract(epoch FROM '$(lab_hook_received |
		jq -r '[.[] | select(.body.event == "outage")][0].at')'::timestamptz - detected_at) * 1000)
		FROM incidents WHERE id = $id")
	echo "METRIC s01 alert_s=$(awk -v m="$alert_ms" 'BEGIN { printf "%.3f", m / 1000 }')"
fi
lab_sleep 3

# ---- healing ----
heal_at=$(lab_psql "SELECT now()")
heal_iso=$(date -u +%Y-%m-%dT%H:%M:%SZ)
lab_target_rules '[]'
lab_log "$T healed"
resolved() { [ "$(lab_incident_state "$T" outage)" = resolved ]; }
lab_wait_for $((2 * INTERVAL_S + 15)) "outage $id to resolve" resolved
seen_ms=$(lab_psql "SELECT round(extract(epoch FROM now() - '$heal_at'::timestamptz) * 1000)")
IFS='|' read -r resolved_at res_ms <<<"$(lab_psql "SELECT resolved_at,
	round(extract(epoch FROM resolved_at - '$heal_at'::timestamptz) * 1000) FROM incidents WHERE id = $id")"
[ "$res_ms" -ge 0 ] || lab_fail "outage resolved_at $resolved_at is before the target healed ($heal_at)"
# Recovery needs the recovery quorum: 3 regions UP since healing.
ups=$(lab_psql "SELECT count(DISTINCT r.agent_id) FROM results r JOIN targets t ON t.id = r.target_id
	WHERE t.key = '$T' AND r.outcome = 1 AND r.started_at >= '$heal_at' AND r.started_at <= '$resolved_at'")
[ "$ups" -ge 3 ] || lab_fail "outage resolved with only $ups regions seen UP since healing"
lab_ok "outage $id resolved from $resolved_at, after $ups regions saw $T up again"
echo "METRIC s01 resolve_s=$(awk -v m="$seen_ms" 'BEGIN { printf "%.3f", m / 1000 }') resolved_at_after_heal_s=$(awk -v m="$res_ms" 'BEGIN { printf "%.3f", m / 1000 }')"
lab_wait_for $((INTERVAL_S + 15)) "$T up from all five regions again" all_up
tl=$(lab_api "/api/v1/incidents/$id")
for k in first_failure quorum resolved; do
	jq -e --arg k "$k" '[.timeline[] | select(.kind == $k)] | length > 0' <<<"$tl" >/dev/null ||
		lab_fail "incident $id has no \"$k\" event in its timeline: $tl"
done
lab_api "/api/v1/incidents?state=resolved&since=$heal_iso" | jq -e --argjson id "$id" \
	'[.incidents[] | select(.id == $id and .state == "resolved")] | length == 1' >/dev/null ||
	lab_fail "/api/v1/incidents?state=resolved&since=$heal_iso does not list outage $id"
[ "$(lab_api "/api/v1/incidents?state=open" | jq '.incidents | length')" = 0 ] ||
	lab_fail "/api/v1/incidents?state=open still lists incidents: $(lab_api "/api/v1/incidents?state=open")"
if [ "$LAB_HOOK_UP" = 1 ]; then
	# The recovery alert is queued once the outage has settled (settle_for).
	lab_wait_for 30 "outage $id's recovery to settle" lab_recoveries_settled
	lab_alerts_settle 15
	jq -e '[.alerts[] | select(.channel == "hook" and .sent_at != null) | .event] == ["outage", "recovery"]' \
		<<<"$(lab_api "/api/v1/incidents/$id")" >/dev/null ||
		lab_fail "API: incident $id does not list its outage and recovery alerts as sent: $(lab_api "/api/v1/incidents/$id" | jq -c .alerts)"
fi
lab_ok "API: incident $id resolved with first_failure, quorum and resolved in its timeline, its alerts sent"

lab_stop_agents
lab_expect_incident "$T" outage 1
lab_expect_alert "$T" outage 1
lab_expect_alert "$T" recovery 1
lab_invariant
