#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Lab scenario 20 (TESTPLAN.md §3): blips, at the product's timing defaults
# (confirm 2, retry_interval 1 s, confirm_span 2 s) and a 5 s interval.
#
# 1. A 1.5 s global blip that one region's scheduled probe meets 0.3 s
#    after it began: the fake target arms a 1.2 s failure window (the rest
#    of the blip) at the first request that reaches it, so the blip is
#    caught near its start without a race against this script.  That
#    region fails, the aggregator's ProbeNow makes the four others probe
#    at once and fail too, and the retries 1 s later are still inside the
#    blip: `confirm` failures in a row -- the case that opened an outage
#    before confirm_span -- but they span 1 s, not 2 s, and the attempts 2 s
#    after the first succeed.  No vote turns DOWN, no incident, no alert;
#    the retries and ProbeNow results are stored like any other.
# 2. A 3 s blip met the same way (a 2.7 s window) lasts through three
#    attempts 2 s apart from first to last: a failure of confirm_span or
#    more is an outage by the rule, so it opens one (one outage alert) and
#    resolves (one recovery alert).  Which of the two a blip between 2 and
#    3 s becomes depends on where the attempts fall in it; below 2 s never.
. "$(dirname "$0")/lib/lab.sh"

T=blip
INTERVAL_S=5

lab_up
lab_start_target
lab_start_hookd
lab_write_conf ${INTERVAL_S}s 2s "  - { name: $T, http: { url: \"$LAB_TGT_URL/$T\" } }" "$LAB_ALERTS_YAML"
lab_start_aggregator
lab_start_agents

target() { lab_api "/api/v1/targets/$T"; }
all_up() { target | jq -e '.state == "up" and ([.regions[] | select(.vote == "up")] | length) == 5'; }
lab_wait_for $((2 * INTERVAL_S + 15)) "$T up with an UP vote from all five regions" all_up

# blip WINDOW_MS: arms the failure window; waits until the first request
# started it and the rule is spent; sets fault_at (when armed) and
# first_at (the first failing probe's start).
blip() {
	local spent
	fault_at=$(lab_psql "SELECT now()")
	lab_target_rules "[{\"path\": \"/$T\", \"action\": \"fail\", \"status\": 503, \"duration_ms\": $1}]"
	started() { lab_exec tgt curl -sf "$LAB_TGT_URL/_fake/rules" | jq -e '.[0].started_mono_us != null'; }
	lab_wait_for $((INTERVAL_S + 5)) "the first probe of $T to start the blip" started
	lab_sleep $((${1} / 1000 + 2))
	lab_target_rules '[]'
	first_at=$(lab_psql "SELECT min(started_at) FROM results r JOIN targets t ON t.id = r.target_id
		WHERE t.key = '$T' AND r.outcome = 2 AND r.started_at >= '$fault_at'")
	[ -n "$first_at" ] || lab_fail "no failing probe stored for the blip"
}

# ---- 1: a 1.5 s blip, met 0.3 s after it began ----
blip 1200
# Per region: failures in the blip, their span, ProbeNow and retry results.
fails_by_region() {
	lab_psql "WITH x AS (SELECT a.region, r.started_at, r.outcome, r.trigger
		FROM results r JOIN agents a ON a.id = r.agent_id JOIN targets t ON t.id = r.target_id
		WHERE t.key = '$T' AND r.started_at >= '$fault_at'
		AND r.started_at < '$first_at'::timestamptz + interval '4 s'),
	f AS (SELECT region, count(*) AS downs, min(started_at) AS first, max(started_at) AS last
		FROM x WHERE outcome = 2 GROUP BY region)
	SELECT f.region, f.downs, round(extract(epoch FROM f.last - f.first) * 1000),
		(SELECT count(*) FROM x WHERE x.region = f.region AND x.trigger = 2), n.outcome
	FROM f LEFT JOIN LATERAL (SELECT outcome FROM x WHERE x.region = f.region
		AND x.started_at > f.last ORDER BY x.started_at LIMIT 1) n ON true ORDER BY f.region"
}
region_results() {
	lab_psql "SELECT r.started_at, r.trigger, r.outcome FROM results r JOIN agents a ON a.id = r.agent_id
		JOIN targets t ON t.id = r.target_id WHERE t.key = '$T' AND a.region = '$1'
		AND r.started_at >= '$fault_at' ORDER BY r.started_at LIMIT 8" | tr '\n' ' '
}
# For two intervals after it (every region retries, with success) the target stays up.
end=$(($(date +%s) + 2 * INTERVAL_S))
while [ "$(date +%s)" -lt "$end" ]; do
	state=$(target | jq -r .state)
	[ "$state" = up ] || lab_fail "$T is \"$state\" after a 1.5 s blip: $(target | jq -c '[.regions[] | {region, vote}]')"
	lab_sleep 0.5
done
first_region=$(lab_psql "SELECT a.region FROM results r JOIN agents a ON a.id = r.agent_id
	JOIN targets t ON t.id = r.target_id WHERE t.key = '$T' AND r.outcome = 2
	AND r.started_at >= '$fault_at' ORDER BY r.started_at LIMIT 1")
confirmed=0
failed=0
while IFS='|' read -r region downs span_ms probenows next_outcome; do
	lab_log "$region: $downs failed over ${span_ms:-0} ms; $probenows ProbeNow results; next probe outcome ${next_outcome:-none}"
	echo "METRIC s20 blip1500 region=$region fails=$downs span_ms=${span_ms:-0}"
	[ "$downs" -ge 1 ] && failed=$((failed + 1))
	[ "$downs" -ge 2 ] && confirmed=$((confirmed + 1))
	[ "${span_ms:-0}" -lt 2000 ] || lab_fail "$region: failures spanning $span_ms ms inside a 1.5 s blip"
	# The attempt after its last failure (a retry, or a scheduled probe
	# that came first) succeeded.
	[ "$next_outcome" = 1 ] ||
		lab_fail "$region: the probe after its failures has outcome \"$next_outcome\", want 1 (up): $(region_results "$region")"
	if [ "$region" = "$first_region" ]; then
		# Its retry came 1 s into the 1.2 s window: two failures, the
		# old rule's outage.
		[ "$downs" = 2 ] || lab_fail "$region met the blip first and failed $downs probes, want 2 (its retry is inside the blip)"
	fi
done < <(fails_by_region)
[ "$failed" = 5 ] || lab_fail "only $failed regions failed in the blip: ProbeNow did not reach the others"
pn=$(lab_psql "SELECT count(*) FROM results r JOIN targets t ON t.id = r.target_id
	WHERE t.key = '$T' AND r.trigger = 2 AND r.outcome = 2 AND r.started_at >= '$fault_at'")
[ "$pn" -ge 4 ] || lab_fail "only $pn failed ProbeNow results stored, want 4 (one per other region)"
retries=$(lab_psql "SELECT count(*) FROM results r JOIN targets t ON t.id = r.target_id
	WHERE t.key = '$T' AND r.trigger = 1 AND r.started_at >= '$fault_at'
	AND r.started_at < '$first_at'::timestamptz + interval '4 s'")
[ "$retries" -ge 5 ] || lab_fail "only $retries retries stored, want one at least per region"
lab_ok "1.5 s blip: $failed regions failed, $confirmed of them $((2)) times in a row (confirm), none over confirm_span; $pn ProbeNow results and $retries retries stored"
echo "METRIC s20 blip1500 regions_confirm_reached=$confirmed"
[ "$(lab_api "/api/v1/incidents" | jq '.incidents | length')" = 0 ] || lab_fail "the API lists incidents after a 1.5 s blip: $(lab_api /api/v1/incidents)"
[ "$(lab_psql "SELECT count(*) FROM alert_outbox")" = 0 ] || lab_fail "alerts queued after a 1.5 s blip"
lab_ok "$T stayed up through a 1.5 s blip: no incident, no alert"

# ---- 2: a 3 s blip, met 0.3 s after it began: an outage by the rule ----
# ProbeNow goes at most once per interval per target: begin an interval on.
lab_sleep $INTERVAL_S
blip 2700
open_or_resolved() { [ -n "$(lab_incident_state "$T" outage)" ]; }
lab_wait_for 10 "the outage of the 3 s blip" open_or_resolved
id=$(lab_incident_id "$T" outage)
off_ms=$(lab_psql "SELECT round(extract(epoch FROM started_at - '$first_at'::timestamptz) * 1000) FROM incidents WHERE id = $id")
detect_ms=$(lab_psql "SELECT round(extract(epoch FROM detected_at - '$first_at'::timestamptz) * 1000) FROM incidents WHERE id = $id")
lab_log "3 s blip: outage $id, started_at $off_ms ms from the first failure, detected after $detect_ms ms"
echo "METRIC s20 blip3000 detect_ms=$detect_ms"
[ "$off_ms" = 0 ] || lab_fail "outage $id started_at is $off_ms ms from the first failing probe"
resolved() { [ "$(lab_incident_state "$T" outage)" = resolved ]; }
lab_wait_for $((3 * INTERVAL_S + 15)) "outage $id to resolve" resolved
lab_wait_for $((2 * INTERVAL_S + 15)) "$T up from all five regions again" all_up
recovered() { [ "$(lab_psql "SELECT count(*) FROM alert_outbox WHERE event = 'recovery'")" = 1 ]; }
lab_wait_for 30 "the recovery alert of outage $id" recovered
lab_alerts_settle 15
lab_ok "3 s blip: one outage ($id), resolved, its outage and recovery alerts sent"

lab_stop_agents
lab_expect_incident "$T" outage 1
lab_expect_alert "$T" outage 1
lab_expect_alert "$T" recovery 1
lab_invariant
