#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Lab scenario 8 (TESTPLAN.md §3): an agent is killed with SIGKILL while it
# writes its spool, and the spool's last segment ends in a torn record.
#
# r1 probes 20 targets every 200 ms (about 100 results a second, a batch
# sealed and written every ~100 ms).  Its path to the hub is blackholed for
# a few seconds first, so that its spool holds results the aggregator has
# not acknowledged; then it is killed with -9, and a torn record (a header
# promising more bytes than follow) is appended to its newest segment, as a
# write cut short by a crash leaves it.  Restarted from the same spool, the
# agent keeps its epoch, truncates the torn tail (and says so), continues
# its seqs and resends what was not acknowledged: the invariant holds for
# the epoch across both processes.  The targets are also probed by r2
# (min_voters 1), so that r1's absence leaves them judged, not blind.
. "$(dirname "$0")/lib/lab.sh"

N=20
HOLD_S=3 # r1's results pile up unacknowledged this long before the kill

lab_up
lab_start_target
targets=""
for i in $(seq -w 1 $N); do
	targets+="  - { name: s08-$i, http: { url: \"$LAB_TGT_URL/s08/$i\" }, interval: 200ms, timeout: 150ms, regions: [r1, r2], min_voters: 1 }"$'\n'
done
lab_write_conf 1s 1s "$targets"
lab_start_aggregator
lab_start_agent r1
lab_start_agent r2
lab_expect_no_incidents
spool=$LAB_DIR/spool-r1
all_up() { lab_api /api/v1/status | jq -e '[.targets[] | select(.state == "up")] | length == '$N; }
lab_wait_for 20 "every target up" all_up
lab_wait_for 20 "r1 acknowledged" lab_caught_up r1
segs() { find "$spool" -maxdepth 1 -name '[0-9]*.seg' | sort; }
[ -f "$spool/epoch" ] && [ -n "$(segs)" ] ||
	lab_skip "the agent keeps no disk spool (no $spool/epoch and segment files): needs agent/spool.c's spool"
epoch=$(sed -n 's/.*agent "r1" in region .*: epoch \([0-9]*\), aggregator.*/\1/p' "$LAB_DIR/agent-r1.log" | head -n 1)

# ---- kill -9 mid-write, with results unacknowledged ----
lab_blackhole r1 "$LAB_HUB_IP"
lab_sleep "$HOLD_S"
lab_signal agent-r1 KILL
wait "${LAB_PID[agent-r1]}" 2>/dev/null || true
lab_unblackhole r1 "$LAB_HUB_IP"
last=$(segs | tail -n 1)
size=$(stat -c %s "$last")
# A record header (u32 length 512, u32 CRC) and 40 of its 512 bytes.
{
	printf '\000\002\000\000\336\255\276\357'
	head -c 40 /dev/urandom
} >>"$last"
lab_log "s08: r1 killed with SIGKILL; torn record appended to $(basename "$last") ($size -> $(stat -c %s "$last") bytes)"

# ---- restart from the same spool ----
opened() { grep -c "spool \"$spool\": epoch" "$LAB_DIR/agent-r1.log" || true; }
n_open=$(opened)
lab_restart_agent r1
reopened() { [ "$(opened)" -gt "$n_open" ]; }
lab_wait_for 10 "s08: r1 to open its spool again" reopened
line=$(grep "spool \"$spool\": epoch" "$LAB_DIR/agent-r1.log" | tail -n 1)
lab_log "s08: r1 says: ${line#*info: }"
grep -q "spool \"$spool\": epoch $epoch," <<<"$line" ||
	lab_fail "s08: the restarted r1 did not keep its epoch $epoch: $line"
grep -qi 'truncated' "$LAB_DIR/agent-r1.log" ||
	lab_fail "s08: the restarted r1 did not report truncating the torn record"
unacked=$(sed -n 's/.*epoch [0-9]*, \([0-9]*\) results unacked.*/\1/p' <<<"$line")
[ "${unacked:-0}" -gt 0 ] ||
	lab_fail "s08: the restarted r1 holds no unacknowledged results after ${HOLD_S}s without Acks"
lab_ok "s08: r1 restarted with its epoch, truncated the torn tail, $unacked results to resend"
lab_mark_produced r1
lab_wait_for 30 "s08: r1's backlog to be acknowledged" lab_caught_up r1
lab_wait_for 10 "every target up" all_up
echo "METRIC s08 unacked_at_restart=$unacked"

lab_stop_agents r1 r2
lab_invariant
