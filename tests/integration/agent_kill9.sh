#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Scenario 8 of the lab (TESTPLAN.md §3) on 127.0.0.1, without namespaces:
# an agent probing ten targets every 200 ms is killed with SIGKILL while
# the aggregator is stopped (so its spool holds unacknowledged results), a
# torn record is appended to its newest spool segment, and it is started
# again from the same spool.  It keeps its epoch, truncates the torn tail,
# continues its seqs and resends; every seq of the epoch is then stored
# exactly once.
. "$(dirname "$0")/../lib/common.sh"
vt_setup

vt_start_target
vt_write_conf 1s 1s "$(vt_ok_targets 10 ", interval: 200ms, timeout: 150ms")"
vt_start_aggregator
vt_start_three_agents
spool=$VT_DIR/spool-eu-west
agent() { vt_api /api/v1/agents | jq -e --arg n "$1" '.agents[] | select(.name == $n)'; }
caught_up() { # NAME P0: connected, a heartbeat newer than P0, all of it acked
	agent "$1" | jq -e --argjson p0 "$2" '.connected and .produced > $p0 and .acked_seq >= .produced'
}
vt_wait_for 20 "eu-west acknowledged" caught_up eu-west 0
segs() { find "$spool" -maxdepth 1 -name '[0-9]*.seg' | sort; }
[ -f "$spool/epoch" ] && [ -n "$(segs)" ] ||
	vt_skip "the agent keeps no disk spool (no $spool/epoch and segment files): needs agent/spool.c's spool"
epoch=$(sed -n 's/.*agent "eu-west" in region .*: epoch \([0-9]*\), aggregator.*/\1/p' "$VT_DIR/agent-eu-west.log" | head -n 1)

kill -STOP "$VT_AGG_PID"
sleep 2 # results pile up unacknowledged (an Ack can only come after this)
kill -KILL "$(vt_agent_pid eu-west)"
wait "$(vt_agent_pid eu-west)" 2>/dev/null || true
kill -CONT "$VT_AGG_PID"
last=$(segs | tail -n 1)
# A record header (u32 length 512, u32 CRC) and 40 of its 512 bytes.
{
	printf '\000\002\000\000\336\255\276\357'
	head -c 40 /dev/urandom
} >>"$last"
cp "$VT_DIR/agent-eu-west.log" "$VT_DIR/agent-eu-west.1.log"
vt_log "eu-west killed with SIGKILL, torn record appended to $(basename "$last"); restarting it"
p0=$(agent eu-west | jq .produced)
vt_start_agent eu-west eu-west 127.0.0.1
opened() { grep -q "spool \"$spool\": epoch" "$VT_DIR/agent-eu-west.log"; }
vt_wait_for 10 "the restarted agent to open its spool" opened
line=$(grep "spool \"$spool\": epoch" "$VT_DIR/agent-eu-west.log" | tail -n 1)
grep -q "spool \"$spool\": epoch $epoch," <<<"$line" ||
	vt_fail "the restarted agent did not keep its epoch $epoch: $line"
grep -qi truncated "$VT_DIR/agent-eu-west.log" || vt_fail "the restarted agent did not report truncating the torn record"
unacked=$(sed -n 's/.*epoch [0-9]*, \([0-9]*\) results unacked.*/\1/p' <<<"$line")
[ "${unacked:-0}" -gt 0 ] || vt_fail "the restarted agent holds no unacknowledged results: $line"
vt_ok "eu-west restarted with epoch $epoch, truncated the torn tail, $unacked results to resend"
vt_wait_for 30 "eu-west to catch up" caught_up eu-west "$p0"
# Its final line counts the whole epoch, both processes.
for r in eu-west us-east ap-south; do
	vt_check_agent "$r"
	vt_ok "agent $r: every one of its $VT_ROWS results stored exactly once"
done
