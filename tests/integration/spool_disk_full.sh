#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The agent's disk fills up under its spool.  Its spool is on a 1 MiB tmpfs
# and the aggregator is stopped (SIGSTOP), so the spool holds unacknowledged
# results; then a file fills the tmpfs.  The agent must not go on probing
# results it cannot keep: it exits with status 1 and a message naming the
# spool and the results at stake.  Started again while the disk is still
# full, it fails the same way (what a service manager's restart loop sees).
# Once space is freed and the aggregator resumes, the restarted agent keeps
# its epoch, truncates any record a failed write left torn, resends what
# was unacknowledged, and every seq of its epoch is stored exactly once,
# with no gap marker.  Needs root to mount the tmpfs (else exit 77).
. "$(dirname "$0")/../lib/common.sh"
vt_setup

[ "$(id -u)" = 0 ] || vt_skip "mounting a small tmpfs for the spool needs root"
fs=$VT_DIR/fs
mkdir "$fs"
mount -t tmpfs -o size=1m,mode=0700 vantage-test-spool "$fs" 2>/dev/null ||
	vt_skip "cannot mount a tmpfs here (no CAP_SYS_ADMIN?)"
vt_at_exit "umount -l '$fs'"

vt_start_target
vt_write_conf 1s 1s "$(vt_ok_targets 10 ", interval: 200ms, timeout: 150ms")"
vt_start_aggregator
spool=$fs/spool
agent_log=$VT_DIR/agent-full.log
start_agent() {
	VT_AGENT_SPOOL=$spool VT_AGENT_EXTRA="spool_max: 256KiB" vt_start_agent full eu-west 127.0.0.1
}
start_agent
acked() { vt_api /api/v1/agents | jq -e '.agents[] | select(.name == "full" and .acked_seq > 0)'; }
vt_wait_for 20 "the agent's first results acknowledged" acked
epoch=$(sed -n 's/.*spool ".*": epoch \([0-9]*\),.*/\1/p' "$agent_log" | head -n 1)
[ -n "$epoch" ] || vt_fail "the agent logged no spool epoch"

kill -STOP "$VT_AGG_PID"
sleep 2 # results pile up unacknowledged (no Ack can come while stopped)
dd if=/dev/zero of="$fs/filler" bs=4k >/dev/null 2>&1 || true
vt_log "tmpfs filled: $(df -k --output=avail "$fs" | tail -n 1 | tr -d ' ') KiB left"

exited() { ! kill -0 "$1" 2>/dev/null; }
# expect_fatal PID WHAT: the agent PID exits with status 1 and says why.
expect_fatal() {
	local pid=$1 what=$2 rc=0
	vt_wait_for 30 "the agent to exit on the full disk ($what)" exited "$pid"
	wait "$pid" 2>/dev/null || rc=$?
	[ "$rc" = 1 ] || vt_fail "the agent exited with status $rc on the full disk ($what), not 1"
	grep "cannot write to spool \"$spool\".*No space left on device" "$agent_log" >/dev/null ||
		vt_fail "the agent's log does not say it could not write to its spool ($what)"
	vt_ok "agent exited with status 1 ($what): $(grep "write to spool" "$agent_log" | tail -n 1 | sed "s/.*fatal: //")"
}
expect_fatal "$VT_AGENT_PID_full" "first run"
cp "$agent_log" "$VT_DIR/agent-full.1.log"

start_agent
expect_fatal "$VT_AGENT_PID_full" "restarted with the disk still full"
cp "$agent_log" "$VT_DIR/agent-full.2.log"

rm -f "$fs/filler"
kill -CONT "$VT_AGG_PID"
vt_log "space freed, aggregator resumed; restarting the agent"
p0=$(vt_api /api/v1/agents | jq '.agents[] | select(.name == "full") | .produced')
start_agent
opened() { grep -q "spool \"$spool\": epoch" "$agent_log"; }
vt_wait_for 10 "the restarted agent to open its spool" opened
grep -q "spool \"$spool\": epoch $epoch," "$agent_log" ||
	vt_fail "the restarted agent did not keep epoch $epoch: $(grep 'spool "' "$agent_log" | head -n 1)"
caught_up() {
	vt_api /api/v1/agents | jq -e --argjson p0 "$p0" \
		'.agents[] | select(.name == "full") | .connected and .produced > $p0 and .acked_seq >= .produced'
}
vt_wait_for 30 "the agent to catch up" caught_up
vt_check_agent full
vt_ok "agent full: epoch $epoch over three processes, all $VT_ROWS results stored exactly once, no gap"
