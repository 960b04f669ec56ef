#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Lab scenario 13 (TESTPLAN.md §3): agents whose clocks are 10 minutes off.
# Namespaces share the kernel's wall clock, so the shim skewclock.so
# (tests/fakes/skewclock.c, LD_PRELOAD) moves it for one process: r4's
# agent runs 10 min ahead, r5's 10 min behind.
#
# Pass when the aggregator detects and reports the offsets (clock_offset_us
# in /api/v1/agents, a warning in its log, none for the other agents), the
# skewed agents' votes are still right (UP while the target is up: no false
# incident; DOWN when it fails for r3, r4 and r5 only, which is an outage
# only if both skewed agents' votes count), and the outage's started_at is
# its first failing probe in the aggregator's clock, not 10 minutes off.
. "$(dirname "$0")/lib/lab.sh"

T=s13
INTERVAL_S=2
SKEW_US=600000000 # 10 min
SLACK_US=2000000  # the offset estimate: network delay and our polling

[ -f "$LAB_BIN/fakes/skewclock.so" ] || lab_skip "$LAB_BIN/fakes/skewclock.so is not built (make)"
lab_up
lab_start_target
lab_start_hookd
lab_write_conf ${INTERVAL_S}s 2s "  - { name: $T, http: { url: \"$LAB_TGT_URL/$T\" } }" "$LAB_ALERTS_YAML"
lab_start_aggregator
for r in r1 r2 r3; do
	lab_start_agent "$r"
done
LD_PRELOAD=$LAB_BIN/fakes/skewclock.so VANTAGE_SKEW_US=$SKEW_US lab_start_agent r4
LD_PRELOAD=$LAB_BIN/fakes/skewclock.so VANTAGE_SKEW_US=-$SKEW_US lab_start_agent r5

target() { lab_api "/api/v1/targets/$T"; }
all_up() { target | jq -e '.state == "up" and ([.regions[] | select(.vote == "up")] | length) == 5'; }
lab_wait_for $((INTERVAL_S + 15)) "$T up with an UP vote from all five regions (two of them skewed)" all_up
# Several intervals: a skewed agent's vote must not go stale (10 min behind)
# or read as from the future (10 min ahead).
end=$(($(date +%s) + 4 * INTERVAL_S))
while [ "$(date +%s)" -lt "$end" ]; do
	all_up >/dev/null || lab_fail "s13: $T lost an UP vote while healthy: $(target | jq -c '[.regions[] | {region, vote}]')"
	lab_sleep 0.5
done
lab_ok "s13: the skewed agents vote UP like the others, for $((4 * INTERVAL_S))s"

# ---- the offsets, detected and reported ----
offset() { lab_agent_json "$1" | jq -r .clock_offset_us; }
skew_known() { [ "$(offset r5)" -gt 0 ] && [ "$(offset r4)" -lt 0 ]; }
lab_wait_for 15 "the skewed agents' heartbeats" skew_known
for r in "${LAB_REGIONS[@]}"; do
	off=$(offset "$r")
	case $r in
	r4) want=-$SKEW_US ;; # its clock ahead: the aggregator's minus its own is negative
	r5) want=$SKEW_US ;;
	*) want=0 ;;
	esac
	d=$((off - want))
	[ "${d#-}" -le "$SLACK_US" ] ||
		lab_fail "s13: /api/v1/agents says agent $r's clock_offset_us is $off, want $want ± $SLACK_US"
	echo "METRIC s13 agent=$r clock_offset_us=$off"
	if [ "$want" = 0 ]; then
		! grep -q "agent \"$r\" (region \"$r\"): its clock is" "$LAB_DIR/aggregator.log" ||
			lab_fail "s13: the aggregator warned about agent $r's clock, which is right"
	else
		grep -q "warning: agent \"$r\" (region \"$r\"): its clock is 60[0-9]\.[0-9] s" "$LAB_DIR/aggregator.log" ||
			lab_fail "s13: the aggregator logged no warning about agent $r's clock being 600 s off"
	fi
done
lab_ok "s13: offsets reported in /api/v1/agents (r4 $(offset r4) µs, r5 $(offset r5) µs) and warned about in the log; none for r1-r3"
# Stored in the aggregator's clock: the skewed agents' latest results are
# as recent as everyone else's.
spread=$(lab_psql "SELECT round(extract(epoch FROM max(m) - min(m)))::int FROM (SELECT a.region, max(r.started_at) AS m
	FROM results r JOIN agents a ON a.id = r.agent_id GROUP BY a.region) x")
[ "$spread" -le $((2 * INTERVAL_S + 2)) ] ||
	lab_fail "s13: the regions' newest stored results are ${spread}s apart: the skewed ones are not in the aggregator's clock"
lab_ok "s13: results stored in the aggregator's clock (newest of each region within ${spread}s)"

# ---- a real outage that needs both skewed votes ----
fault_at=$(lab_psql "SELECT now()")
rules=$(for r in r3 r4 r5; do
	echo "{\"path\": \"/$T\", \"client\": \"${LAB_IP[$r]}\", \"action\": \"fail\", \"status\": 503}"
done | jq -sc .)
lab_target_rules "$rules"
lab_log "s13: $T fails for r3, r4 and r5 only"
outage_is() { [ "$(lab_incident_state "$T" outage)" = "$1" ]; }
lab_wait_for $((INTERVAL_S + 15)) "s13: an outage of $T (quorum 3: r3 and both skewed agents)" outage_is open
id=$(lab_incident_id "$T" outage)
IFS='|' read -r regions off_s <<<"$(lab_psql "SELECT array_to_string(regions, ','),
	round(extract(epoch FROM started_at - '$fault_at'::timestamptz), 1) FROM incidents WHERE id = $id")"
[ "$regions" = r3,r4,r5 ] || lab_fail "s13: outage $id names regions \"$regions\", want r3,r4,r5"
awk -v o="$off_s" -v i="$INTERVAL_S" 'BEGIN { exit !(o >= -0.5 && o <= i + 1) }' ||
	lab_fail "s13: outage $id started_at is ${off_s}s from the fault, want within one interval after it"
lab_ok "s13: outage $id of r3,r4,r5 detected, started_at ${off_s}s after the fault (aggregator clock)"
echo "METRIC s13 started_at_after_fault_s=$off_s"
lab_target_rules '[]'
lab_wait_for $((3 * INTERVAL_S + 15)) "s13: outage $id to resolve" outage_is resolved
lab_wait_for $((INTERVAL_S + 10)) "$T up from all five regions again" all_up
lab_ok "s13: outage $id resolved; $T up from all five regions"

lab_stop_agents
lab_expect_incident "$T" outage 1
lab_expect_alert "$T" outage 1
lab_expect_alert "$T" recovery 1
lab_invariant
