#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# An agent killed with -9 and restarted while the aggregator is down: it
# finds its spool (same epoch, a torn tail cut at the last valid record),
# probes with the configuration it cached, and once the aggregator is back
# every result of the epoch, from both processes, is stored exactly once.
. "$(dirname "$0")/../lib/common.sh"
vt_setup

vt_start_target
vt_write_conf 1s 2s "$(vt_ok_targets 20)"
vt_start_aggregator
vt_start_agent eu-west eu-west
spool=$VT_DIR/spool-eu-west
vt_wait_for 20 "results stored" bash -c \
	"[ \$(psql -X -h $VT_DIR/state/pg -U vantage vantage -Atc 'SELECT count(*) FROM results') -gt 40 ]"

kill -TERM "$VT_AGG_PID"
wait "$VT_AGG_PID" 2>/dev/null || true
vt_log "aggregator stopped"
# Results the aggregator never sees, only in the spool.
size0=$(cat "$spool"/*.seg | wc -c)
vt_wait_for 20 "the agent to spool results while the aggregator is down" bash -c \
	"[ \$(cat $spool/*.seg | wc -c) -gt $((size0 + 2000)) ]"
pid=$(vt_agent_pid eu-west)
kill -KILL "$pid"
wait "$pid" 2>/dev/null || true
epoch=$(cat "$spool/epoch")
seg=$(ls "$spool"/*.seg | tail -n 1)
# A write torn by the crash: a record header promising more than is there.
printf '\x40\x00\x00\x00\x12\x34' >>"$seg"
vt_log "agent killed with -9, a torn record appended to $(basename "$seg")"

mv "$VT_DIR/agent-eu-west.log" "$VT_DIR/agent-eu-west.first.log"
vt_start_agent eu-west eu-west
vt_wait_for 10 "the torn tail to be cut" grep -q 'truncated a torn or corrupt tail' "$VT_DIR/agent-eu-west.log"
grep -q "epoch $epoch, [0-9]* results unacked" "$VT_DIR/agent-eu-west.log" ||
	vt_fail "the restarted agent did not continue epoch $epoch"
vt_wait_for 10 "probing from the cached configuration" grep -q 'probing with the cached configuration' \
	"$VT_DIR/agent-eu-west.log"
size0=$(cat "$spool"/*.seg | wc -c)
vt_wait_for 20 "the restarted agent to spool new results" bash -c \
	"[ \$(cat $spool/*.seg | wc -c) -gt $((size0 + 2000)) ]"
vt_ok "restarted agent: same epoch, torn tail cut, probing with the cached configuration while the aggregator is down"

vt_start_aggregator
vt_check_agent eu-west
epochs=$(vt_psql "SELECT count(DISTINCT epoch) FROM results r JOIN agents a ON a.id = r.agent_id WHERE a.name = 'eu-west'")
[ "$epochs" = 1 ] || vt_fail "agent eu-west stored results under $epochs epochs, want 1"
vt_ok "agent eu-west: all $VT_ROWS results of epoch $epoch, from both processes, stored exactly once"
