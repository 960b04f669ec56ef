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
declare -A produced epoch
for r in "${regions[@]}"; do
	read -r e p a < <(vt_stop_agent "$r")
	[ -n "${p:-}" ] || vt_fail "agent $r logged no final count"
	[ "$p" = "$a" ] || vt_fail "agent $r: produced $p but only $a acknowledged"
	produced[$r]=$p
	epoch[$r]=$e
done
cpu1=$(vt_cpu_seconds "$VT_AGG_PID")

total=0
for r in "${regions[@]}"; do
	e=${epoch[$r]}
	row=$(vt_psql "SELECT count(*), count(DISTINCT seq), min(seq), max(seq), count(DISTINCT target_id)
		FROM results r JOIN agents a ON a.id = r.agent_id
		WHERE a.name = '$r' AND r.epoch = ($e::numeric - CASE WHEN $e::numeric > 9223372036854775807
			THEN 18446744073709551616 ELSE 0 END)::bigint")
	IFS='|' read -r rows distinct minseq maxseq ntargets <<<"$row"
	[ "$rows" = "${produced[$r]}" ] || vt_fail "agent $r produced ${produced[$r]} results but $rows are stored"
	[ "$distinct" = "$rows" ] || vt_fail "agent $r: $rows rows but $distinct distinct seqs (duplicates)"
	[ "$minseq" = 1 ] && [ "$maxseq" = "$rows" ] || vt_fail "agent $r: seqs $minseq..$maxseq for $rows rows"
	[ "$ntargets" = $N_TARGETS ] || vt_fail "agent $r: results for $ntargets targets, want $N_TARGETS"
	# At 1 s for RUN_SECONDS, each target is probed about RUN_SECONDS times.
	[ "$rows" -ge $((N_TARGETS * (RUN_SECONDS - 5))) ] ||
		vt_fail "agent $r produced only $rows results in ${RUN_SECONDS}s"
	vt_ok "agent $r: produced ${produced[$r]}, stored $rows, no duplicates"
	total=$((total + rows))
done

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

cpu=$(echo "$cpu1 - $cpu0" | bc -l 2>/dev/null || awk "BEGIN { print $cpu1 - $cpu0 }")
echo "METRIC stored_results=$total seconds=$RUN_SECONDS results_per_s=$((total / RUN_SECONDS))"
echo "METRIC aggregator_cpu_s=$cpu cpu_pct=$(awk "BEGIN { printf \"%.1f\", 100 * $cpu / $RUN_SECONDS }")"
vt_ok "end to end counts match"
