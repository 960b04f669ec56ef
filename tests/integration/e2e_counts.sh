#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# End to end: fake target -> 3 agents -> aggregator -> PostgreSQL -> API.
# 3 agents x 20 targets x 1 s interval for 30 s.  Afterwards, for every
# agent, the rows stored equal the results it says it produced, with no
# duplicate seq, and the phase timings are present and plausible.  Prints
# the ingest rate and the aggregator's CPU use as METRIC lines.
. "$(dirname "$0")/../lib/common.sh"
vt_setup

RUN_SECONDS=${RUN_SECONDS:-30}
N_TARGETS=20

vt_start_target
vt_target_rules '[{"path":"/fail","action":"fail","status":503,"body":"down"},
                  {"path":"/slow","action":"delay","delay_ms":50,"status":200,"body":"ok"}]'
targets=""
for i in $(seq -w 1 $N_TARGETS); do
	case $i in
	05 | 06) path=/fail/$i ;;
	07 | 08) path=/slow/$i ;;
	*) path=/ok/$i ;;
	esac
	targets+="  - { name: t$i, http: { url: \"http://127.0.0.1:$VT_TARGET_PORT$path\" } }"$'\n'
done
vt_write_conf 1s 2s "$targets"
vt_start_aggregator
cpu0=$(vt_cpu_seconds "$VT_AGG_PID")

regions=(eu-west us-east ap-south)
for r in "${regions[@]}"; do
	vt_start_agent "$r" "$r"
done
# All three regions report within 10 s of starting.
vt_wait_for 10 "results from all three regions" \
	bash -c "curl -sf http://$VT_HTTP/api/v1/targets/t01 | grep -c '\"region\"' | grep -qx 3"
vt_ok "API shows results from all three regions"

sleep "$RUN_SECONDS"
total=0
for r in "${regions[@]}"; do
	vt_check_agent "$r"
	[ "$VT_TARGETS" = $N_TARGETS ] || vt_fail "agent $r: results for $VT_TARGETS targets, want $N_TARGETS"
	# At 1 s for RUN_SECONDS, each target is probed about RUN_SECONDS times.
	[ "$VT_ROWS" -ge $((N_TARGETS * (RUN_SECONDS - 5))) ] ||
		vt_fail "agent $r produced only $VT_ROWS results in ${RUN_SECONDS}s"
	vt_ok "agent $r: produced and stored $VT_ROWS, no duplicates"
	total=$((total + VT_ROWS))
done
cpu1=$(vt_cpu_seconds "$VT_AGG_PID")

bad=$(vt_psql "SELECT count(*) FROM results WHERE total_us <= 0 OR connect_us > total_us
	OR dns_us > total_us OR ttfb_us > total_us OR (outcome = 1 AND (connect_us <= 0 OR ttfb_us <= 0))")
[ "$bad" = 0 ] || vt_fail "$bad results have implausible phase timings"
read -r up down slow <<<"$(vt_psql "SELECT count(*) FILTER (WHERE outcome = 1),
	count(*) FILTER (WHERE outcome = 2 AND reason = 6 AND http_status = 503),
	count(*) FILTER (WHERE outcome = 1 AND total_us >= 50000)
	FROM results" | tr '|' ' ')"
[ "$down" -gt 0 ] && [ "$up" -gt 0 ] && [ "$slow" -gt 0 ] ||
	vt_fail "expected UP, DOWN (503) and slow (>= 50 ms) results, got $up/$down/$slow"
vt_ok "phase timings plausible; $up up, $down down with 503, $slow slow"

# Aggregator-side counters agree with the store.
committed=$(vt_api /healthz | sed -n 's/.*"rows_committed": \([0-9]*\).*/\1/p')
[ "$committed" = "$total" ] || vt_fail "aggregator committed $committed rows, table has $total"

cpu=$(awk "BEGIN { printf \"%.2f\", $cpu1 - $cpu0 }")
echo "METRIC stored_results=$total seconds=$RUN_SECONDS results_per_s=$((total / RUN_SECONDS))"
echo "METRIC aggregator_cpu_s=$cpu cpu_pct=$(awk "BEGIN { printf \"%.1f\", 100 * $cpu / $RUN_SECONDS }")"
vt_ok "end to end counts match"
