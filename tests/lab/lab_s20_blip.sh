#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Lab scenario 20 (TESTPLAN.md §3): a blip.  The target fails for a moment:
# the first region whose scheduled probe lands in it fails, the aggregator's
# ProbeNow makes the four others probe at once and fail too, and the target
# is healthy again before anyone's retry (retry_interval later).  Every
# region has failed exactly one probe, below `confirm` (2): no vote flips,
# no incident of any kind, no alert.  The retries (trigger 1, UP) and the
# ProbeNow results (trigger 2, DOWN) are stored like any other.
#
# The blip is ended by the scenario as soon as all five regions have failed
# once (it polls the database every 50 ms); retry_interval is 2 s so that
# ending it in time is easy.  A region whose scheduled probe fell into those
# few hundred milliseconds would fail twice: the check on every region's
# failures says so (the phases of this target's key are spread, see
# METRIC phase lines; see T below).
. "$(dirname "$0")/lib/lab.sh"

# Phases are FNV-1a("NAME/KEY") mod interval: for "blip" at 5 s the five
# regions are at least 740 ms apart.
T=blip
INTERVAL_S=5
RETRY_S=2

lab_up
lab_start_target
lab_start_hookd
lab_write_conf ${INTERVAL_S}s 2s \
	"  - { name: $T, http: { url: \"$LAB_TGT_URL/$T\" }, retry_interval: ${RETRY_S}s, confirm: 2 }" \
	"$LAB_ALERTS_YAML"
lab_start_aggregator
lab_start_agents

target() { lab_api "/api/v1/targets/$T"; }
all_up() { target | jq -e '.state == "up" and ([.regions[] | select(.vote == "up")] | length) == 5'; }
lab_wait_for $((INTERVAL_S + 15)) "$T up with an UP vote from all five regions" all_up
# Where in the interval each region probes (its phase, from the agent's name).
lab_psql "SELECT a.region, round((extract(epoch FROM min(r.started_at))::numeric * 1000) % ($INTERVAL_S * 1000))
	FROM results r JOIN agents a ON a.id = r.agent_id GROUP BY a.region ORDER BY 2" |
	while IFS='|' read -r region ms; do echo "METRIC s20 phase region=$region ms=$ms"; done

# ---- the blip ----
fault_at=$(lab_psql "SELECT now()")
lab_target_rules "[{\"path\": \"/$T\", \"action\": \"fail\", \"status\": 503}]"
failed_regions() {
	lab_psql "SELECT count(DISTINCT agent_id) FROM results r JOIN targets t ON t.id = r.target_id
		WHERE t.key = '$T' AND r.outcome = 2 AND r.started_at >= '$fault_at'"
}
for _ in $(seq 1 $((INTERVAL_S * 40))); do
	[ "$(failed_regions)" = 5 ] && break
	sleep 0.05
done
lab_target_rules '[]'
healed_at=$(lab_psql "SELECT now()")
n=$(failed_regions)
[ "$n" = 5 ] || lab_fail "only $n regions failed during the blip"
IFS='|' read -r first_at blip_ms <<<"$(lab_psql "SELECT min(started_at),
	round(extract(epoch FROM '$healed_at'::timestamptz - min(started_at)) * 1000)
	FROM results r JOIN targets t ON t.id = r.target_id
	WHERE t.key = '$T' AND r.outcome = 2 AND r.started_at >= '$fault_at'")"
lab_log "blip: first failure at $first_at, healed ${blip_ms} ms later"
echo "METRIC s20 blip_ms=$blip_ms"
[ "$blip_ms" -lt $((RETRY_S * 1000)) ] || lab_fail "the blip lasted ${blip_ms} ms, not shorter than retry_interval"

# For two intervals (every region retries, with success) the target stays up.
end=$(($(date +%s) + 2 * INTERVAL_S))
while [ "$(date +%s)" -lt "$end" ]; do
	state=$(target | jq -r .state)
	[ "$state" = up ] || lab_fail "$T is \"$state\" after a blip: $(target | jq -c '[.regions[] | {region, vote}]')"
	lab_sleep 0.5
done
# Per region: exactly one failure, and the next probe after it (a retry,
# or a scheduled one that came first) succeeded.
while IFS='|' read -r region downs next_outcome next_trigger probenows; do
	lab_log "$region: $downs failed; next probe: trigger $next_trigger, outcome $next_outcome; $probenows ProbeNow results"
	[ "$downs" = 1 ] || lab_fail "$region failed $downs probes in the blip, want exactly 1 (phase too close to the first region's?)"
	[ "$next_outcome" = 1 ] || lab_fail "$region: the probe after its failure has outcome \"$next_outcome\", want 1 (up)"
done < <(lab_psql "WITH x AS (SELECT a.region, r.started_at, r.outcome, r.trigger
		FROM results r JOIN agents a ON a.id = r.agent_id JOIN targets t ON t.id = r.target_id
		WHERE t.key = '$T' AND r.started_at >= '$fault_at'),
	f AS (SELECT region, min(started_at) AS at FROM x WHERE outcome = 2 GROUP BY region)
	SELECT f.region, (SELECT count(*) FROM x WHERE x.region = f.region AND x.outcome = 2),
		n.outcome, n.trigger, (SELECT count(*) FROM x WHERE x.region = f.region AND x.trigger = 2)
	FROM f LEFT JOIN LATERAL (SELECT outcome, trigger FROM x WHERE x.region = f.region
		AND x.started_at > f.at ORDER BY x.started_at LIMIT 1) n ON true ORDER BY f.region")
first_region=$(lab_psql "SELECT a.region FROM results r JOIN agents a ON a.id = r.agent_id
	JOIN targets t ON t.id = r.target_id WHERE t.key = '$T' AND r.outcome = 2
	AND r.started_at >= '$fault_at' ORDER BY r.started_at LIMIT 1")
retries=$(lab_psql "SELECT count(*) FILTER (WHERE r.outcome = 1) || '|' || count(*) FROM results r
	JOIN targets t ON t.id = r.target_id WHERE t.key = '$T' AND r.trigger = 1 AND r.started_at >= '$fault_at'")
first_retried=$(lab_psql "SELECT count(*) FROM results r JOIN agents a ON a.id = r.agent_id
	JOIN targets t ON t.id = r.target_id WHERE t.key = '$T' AND a.region = '$first_region'
	AND r.trigger = 1 AND r.outcome = 1 AND r.started_at >= '$fault_at'")
[ "$first_retried" -ge 1 ] || lab_fail "$first_region, the first to fail, has no successful retry stored"
[ "${retries%|*}" = "${retries#*|}" ] || lab_fail "retries after the blip (up|all): $retries, want all up"
pn=$(lab_psql "SELECT count(*) FROM results r JOIN targets t ON t.id = r.target_id
	WHERE t.key = '$T' AND r.trigger = 2 AND r.outcome = 2 AND r.started_at >= '$fault_at'")
[ "$pn" -ge 4 ] || lab_fail "only $pn failed ProbeNow results stored, want 4 (one per other region)"
lab_ok "every region failed exactly one probe, then succeeded; $pn ProbeNow results (DOWN) and ${retries#*|} retries (UP) stored"
state=$(target | jq -r .state)
[ "$state" = up ] || lab_fail "$T is \"$state\" after the blip"
[ "$(lab_api /api/v1/status | jq -r .status)" = up ] || lab_fail "/api/v1/status is not up after the blip"
n=$(lab_api /api/v1/incidents | jq '.incidents | length')
[ "$n" = 0 ] || lab_fail "the API lists $n incidents after a blip"
lab_ok "$T stayed up: no incident in the API"

lab_stop_agents
lab_expect_no_incidents
lab_invariant
