#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# An agent re-provisioned with a fresh spool (a wiped disk): stopped
# cleanly, started again from an empty spool dir, so it comes back under a
# new epoch on a new connection.  Its liveness follows that connection
# (DESIGN.md §6): well past the aggregator's 120 s reaping of idle sessions
# (the old epoch's session goes idle at the stop) it stays connected in the
# API, its votes count, and it is never called silent.  A 503 for everyone
# then makes an outage with its region voting DOWN.  The old epoch's results
# are stored exactly once, and so are the new epoch's.
. "$(dirname "$0")/../lib/common.sh"
vt_setup

A=us-east            # the re-provisioned agent
WATCH_S=145          # after the restart: 120 s idle + the reaper's 10 s period + slack
TARGETS="ep-a ep-b"

vt_start_target
url=http://127.0.0.1:$VT_TARGET_PORT
# A 2 s interval: a vote goes stale (abstains) 5 s after its latest result,
# which a loaded machine does not reach by accident.
vt_write_conf 2s 1s "  - { name: ep-a, http: { url: \"$url/ep/a\" } }
  - { name: ep-b, http: { url: \"$url/ep/b\" } }"
vt_start_aggregator
vt_start_three_agents

agent() { vt_api /api/v1/agents | jq -e --arg n "$1" '.agents[] | select(.name == $n)'; }
# vote AGENT TARGET: the agent's vote on the target in the API.
vote() { vt_api "/api/v1/targets/$2" | jq -r --arg n "$1" '.regions[] | select(.agent == $n) | .vote'; }
all_vote() { # VOTE: every agent votes VOTE on every target
	local t
	for t in $TARGETS; do
		vt_api "/api/v1/targets/$t" |
			jq -e --arg v "$1" '[.regions[] | select(.vote == $v)] | length == 3' || return 1
	done
}
vt_wait_for 30 "an UP vote from every agent on every target" all_vote up
acked() { agent "$A" | jq -e '.connected and .produced >= 10 and .acked_seq >= .produced'; }
vt_wait_for 20 "$A acknowledged" acked

# ---- clean stop, restart with an empty spool ----
read -r e1 p1 a1 < <(vt_stop_agent "$A")
[ -n "${p1:-}" ] || vt_fail "agent $A logged no final count"
[ "$p1" = "$a1" ] || vt_fail "agent $A epoch $e1: produced $p1 but only $a1 acknowledged"
mv "$VT_DIR/agent-$A.log" "$VT_DIR/agent-$A.epoch1.log"
VT_AGENT_SPOOL=$VT_DIR/spool-$A-new vt_start_agent "$A" "$A" 127.0.0.2
restarted=$(date +%s)
vt_log "$A stopped at epoch $e1 ($p1 results) and restarted with an empty spool"
new_epoch() { agent "$A" | jq -e --arg e "$e1" '.connected and .epoch != $e'; }
vt_wait_for 20 "$A to connect under a new epoch" new_epoch
e2=$(agent "$A" | jq -r .epoch)
vt_wait_for 20 "an UP vote from every agent on every target again" all_vote up
vt_ok "$A connected under the new epoch $e2 (was $e1) and votes again"

# ---- connected and voting past the reaping of the old session ----
silent() { grep "agent \"$A\" has been silent" "$VT_DIR/aggregator.log"; }
checks=0
while [ $(($(date +%s) - restarted)) -lt "$WATCH_S" ]; do
	since=$(($(date +%s) - restarted))
	if line=$(silent); then
		vt_fail "${since}s after the restart the aggregator calls $A silent: $line"
	fi
	agent "$A" | jq -e '.connected' >/dev/null ||
		vt_fail "${since}s after the restart $A is not connected: $(agent "$A" | jq -c '{connected, epoch, last_seen}')"
	for t in $TARGETS; do
		v=$(vote "$A" "$t")
		[ "$v" = up ] || vt_fail "${since}s after the restart $A votes \"$v\" on $t, want up"
	done
	checks=$((checks + 1))
	sleep 2
done
vt_ok "$A connected and voting UP for ${WATCH_S}s after the restart ($checks checks), never called silent"

# ---- an outage counts its vote ----
vt_target_rules '[{"path": "/ep/", "action": "fail", "status": 503}]'
outage() {
	local t
	for t in $TARGETS; do
		vt_api "/api/v1/targets/$t" | jq -e --arg n "$A" \
			'.state == "down" and ([.regions[] | select(.agent == $n and .vote == "down")] | length) == 1' ||
			return 1
	done
}
vt_wait_for 30 "an outage of every target with $A voting DOWN" outage
# In each incident: among the regions that formed the quorum, or with a
# first failure of its own in the timeline since.
in_incident() {
	vt_api "/api/v1/incidents/$1" | jq -e --arg r "$A" '(.regions | index($r)) != null or
		([.timeline[] | select(.kind == "first_failure" and .region == $r)] | length) > 0'
}
for t in $TARGETS; do
	ids=$(vt_psql "SELECT i.id FROM incidents i JOIN targets t ON t.id = i.target_id
		WHERE t.key = '$t' AND i.kind = 'outage'")
	[ "$(wc -w <<<"$ids")" = 1 ] || vt_fail "$t: outage incidents \"$ids\", want one"
	vt_wait_for 10 "$A's region in outage $ids of $t" in_incident "$ids"
done
silent >/dev/null && vt_fail "the aggregator called $A silent: $(silent)"
vt_ok "outage of $TARGETS detected with $A's region voting DOWN"

# ---- exactly once, both epochs ----
row=$(vt_psql "SELECT count(*), count(DISTINCT seq), coalesce(min(seq), 0), coalesce(max(seq), 0)
	FROM results r JOIN agents a ON a.id = r.agent_id WHERE a.name = '$A' AND r.epoch = $e1")
[ "$row" = "$p1|$p1|1|$p1" ] ||
	vt_fail "agent $A old epoch $e1 produced $p1: rows|distinct seqs|min|max = $row, want $p1|$p1|1|$p1"
gaps=$(vt_psql "SELECT count(*) FROM gaps g JOIN agents a ON a.id = g.agent_id WHERE a.name = '$A'")
[ "$gaps" = 0 ] || vt_fail "agent $A: $gaps gap markers, but its spool never filled"
vt_ok "agent $A old epoch $e1: all $p1 results stored exactly once"
for r in eu-west us-east ap-south; do
	vt_check_agent "$r"
	vt_ok "agent $r: every one of its $VT_ROWS results (latest epoch) stored exactly once"
done
dups=$(vt_psql "SELECT count(*) FROM (SELECT 1 FROM results GROUP BY agent_id, epoch, seq HAVING count(*) > 1) d")
[ "$dups" = 0 ] || vt_fail "$dups (agent, epoch, seq) stored more than once"
