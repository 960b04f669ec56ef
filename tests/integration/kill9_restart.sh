#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The aggregator is killed with SIGKILL mid-run and restarted after a pause
# while agents keep probing.  Agents hold unacked results in memory, say
# Hello again after reconnecting and resend from the aggregator's acked_seq;
# the store drops duplicates by seq.  Afterwards the rows of every agent
# equal what it produced, with no duplicates.
. "$(dirname "$0")/../lib/common.sh"
vt_setup

vt_start_target
vt_target_rules '[{"path":"/fail","action":"fail","status":503}]'
targets=""
for i in $(seq -w 1 10); do
	path=/ok/$i
	[ "$i" = 03 ] && path=/fail/$i
	targets+="  - { name: t$i, http: { url: \"http://127.0.0.1:$VT_TARGET_PORT$path\" } }"$'\n'
done
vt_write_conf 1s 2s "$targets"
vt_start_aggregator
regions=(eu-west us-east ap-south)
for r in "${regions[@]}"; do
	vt_start_agent "$r" "$r"
done
vt_wait_for 15 "results stored" bash -c "[ \$(psql -X -h $VT_DIR/state/pg -U vantage vantage -Atc 'SELECT count(*) FROM results') -gt 50 ]"
sleep 5
before=$(vt_psql "SELECT count(*) FROM results")
kill -KILL "$VT_AGG_PID"
wait "$VT_AGG_PID" 2>/dev/null || true
vt_log "aggregator killed with $before rows stored; agents keep probing"
sleep 8
vt_start_aggregator
vt_log "aggregator restarted"
# Agents reconnect, resend and are acked: progress catches up with them.
sleep 10
declare -A produced epoch
for r in "${regions[@]}"; do
	read -r e p a < <(vt_stop_agent "$r")
	[ -n "${p:-}" ] || vt_fail "agent $r logged no final count"
	[ "$p" = "$a" ] || vt_fail "agent $r: produced $p but only $a acknowledged"
	produced[$r]=$p
	epoch[$r]=$e
done
for r in "${regions[@]}"; do
	e=${epoch[$r]}
	row=$(vt_psql "SELECT count(*), count(DISTINCT seq), max(seq)
		FROM results r JOIN agents a ON a.id = r.agent_id
		WHERE a.name = '$r' AND r.epoch = ($e::numeric - CASE WHEN $e::numeric > 9223372036854775807
			THEN 18446744073709551616 ELSE 0 END)::bigint")
	IFS='|' read -r rows distinct maxseq <<<"$row"
	[ "$rows" = "${produced[$r]}" ] || vt_fail "agent $r produced ${produced[$r]} results but $rows are stored"
	[ "$distinct" = "$rows" ] || vt_fail "agent $r: $rows rows but $distinct distinct seqs (duplicates)"
	[ "$maxseq" = "$rows" ] || vt_fail "agent $r: max seq $maxseq for $rows rows"
	vt_ok "agent $r: produced ${produced[$r]}, stored $rows after kill -9, no duplicates"
done
resent=$(grep -h 'results to resend' "$VT_DIR"/agent-*.log | sed -n 's/.*, \([0-9]*\) results to resend/\1/p' | sort -n | tail -n 1)
[ "${resent:-0}" -gt 0 ] || vt_fail "no agent had results to resend after the restart: the test did not exercise resend"
vt_ok "agents resent up to $resent results each after the restart"
