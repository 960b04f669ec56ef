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
for r in "${regions[@]}"; do
	vt_check_agent "$r"
	vt_ok "agent $r: every one of its $VT_ROWS results stored exactly once after kill -9"
done
resent=$(grep -h 'results to resend' "$VT_DIR"/agent-*.log | sed -n 's/.*, \([0-9]*\) results to resend/\1/p' | sort -n | tail -n 1)
[ "${resent:-0}" -gt 0 ] || vt_fail "no agent had results to resend after the restart: the test did not exercise resend"
vt_ok "agents resent up to $resent results each after the restart"
