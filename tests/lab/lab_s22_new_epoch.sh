#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Lab scenario 22 (TESTPLAN.md §3): an agent is re-provisioned during steady
# probing.  r3 is stopped cleanly and started again with its spool dir
# gone (a wiped disk), so it comes back under a new epoch on a new
# connection, while the aggregator still holds the old epoch's stream and
# session.  An agent's liveness follows the connection that delivers its
# results, whatever its epoch (DESIGN.md §6): for 300 s after the restart,
# well past the 120 s after which the aggregator reaps an idle session (the
# old epoch's one went idle at the stop), r3 stays connected in the API,
# its vote on the target counts (UP, never ABSTAIN) and the aggregator never
# calls it silent.  Then the target fails for everyone: one outage, in
# which r3 votes DOWN, one outage alert; healed, it resolves with one
# recovery alert.  Both of r3's epochs are checked by the invariant.
. "$(dirname "$0")/lib/lab.sh"

T=s22
A=r3
INTERVAL_S=2
WATCH_S=300 # after the restart: TESTPLAN's bound, over twice the reaping age

lab_up
lab_start_target
lab_start_hookd
lab_write_conf ${INTERVAL_S}s 1s "  - { name: $T, http: { url: \"$LAB_TGT_URL/$T\" } }" "$LAB_ALERTS_YAML"
lab_start_aggregator
lab_start_agents

target() { lab_api "/api/v1/targets/$T"; }
all_vote() { target | jq -e --arg v "$1" '([.regions[] | select(.vote == $v)] | length) == 5'; }
all_up() { target | jq -e '.state == "up"' && all_vote up; }
lab_wait_for $((INTERVAL_S + 15)) "$T up with an UP vote from all five regions" all_up
acked() { lab_agent_json "$A" | jq -e '.connected and .produced >= 10 and .acked_seq >= .produced'; }
lab_wait_for 30 "$A to have results acknowledged" acked

# ---- re-provisioning: clean stop, the spool wiped, started again ----
# lab_stop, not lab_stop_agent: that one marks the teardown.
lab_stop "agent-$A" 30
read -r e1 p1 a1 < <(lab_agent_final "$A") || true
[ -n "${p1:-}" ] || lab_fail "$A logged no final count at its stop"
[ "$p1" = "$a1" ] || lab_fail "$A epoch $e1: produced $p1 but only $a1 acknowledged at its stop"
rm -rf "$LAB_DIR/spool-$A"
lab_restart_agent "$A"
restarted=$(date +%s.%N)
lab_log "$A stopped at epoch $e1 ($p1 results), its spool removed, started again"
new_epoch() { lab_agent_json "$A" | jq -e --arg e "$e1" '.connected and .epoch != $e'; }
lab_wait_for 20 "$A to connect under a new epoch" new_epoch
e2=$(lab_agent_json "$A" | jq -r .epoch)
lab_wait_for $((3 * INTERVAL_S + 10)) "five UP votes again" all_vote up
lab_ok "$A back under the new epoch $e2 (was $e1), voting UP"

# ---- connected and voting for WATCH_S ----
silent() { grep "agent \"$A\" has been silent" "$LAB_DIR/aggregator.log"; }
checks=0
while :; do
	since=$(lab_seconds_since "$restarted")
	awk -v s="$since" -v w="$WATCH_S" 'BEGIN { exit !(s < w) }' || break
	if line=$(silent); then
		lab_fail "${since}s after the restart the aggregator calls $A silent: ${line#*: }"
	fi
	lab_agent_json "$A" | jq -e '.connected' >/dev/null ||
		lab_fail "${since}s after the restart $A is not connected: $(lab_agent_json "$A" | jq -c '{connected, epoch, last_seen}')"
	vote=$(target | jq -r --arg a "$A" '.regions[] | select(.agent == $a) | .vote')
	[ "$vote" = up ] || lab_fail "${since}s after the restart $A votes \"$vote\" on $T, want up"
	checks=$((checks + 1))
	lab_sleep 2
done
lab_ok "$A connected and voting UP for ${WATCH_S}s after the restart ($checks checks), never called silent"
echo "METRIC s22 watch_s=$WATCH_S checks=$checks"

# ---- an outage that counts its vote ----
lab_target_rules "[{\"path\": \"/$T\", \"action\": \"fail\", \"status\": 503}]"
lab_log "$T answers 503 to everyone"
outage_is() { [ "$(lab_incident_state "$T" outage)" = "$1" ]; }
lab_wait_for $((INTERVAL_S + 15)) "an outage of $T" outage_is open
id=$(lab_incident_id "$T" outage)
a_down() { target | jq -e --arg a "$A" '.state == "down" and ([.regions[] | select(.agent == $a and .vote == "down")] | length) == 1'; }
lab_wait_for $((3 * INTERVAL_S + 10)) "$A to vote DOWN in outage $id" a_down
# In the incident: among the regions that formed the quorum, or a first
# failure of its own in the timeline since.
in_incident() {
	lab_api "/api/v1/incidents/$id" | jq -e --arg a "$A" \
		'(.regions | index($a)) != null or ([.timeline[] | select(.kind == "first_failure" and .region == $a)] | length) > 0'
}
lab_wait_for 10 "$A among the DOWN regions of outage $id" in_incident
lab_ok "outage $id of $T open with $A among its DOWN regions ($(lab_api "/api/v1/incidents/$id" | jq -r '.regions | join(",")') formed the quorum)"
lab_sleep 2

# ---- healing ----
lab_target_rules '[]'
lab_wait_for $((3 * INTERVAL_S + 15)) "outage $id to resolve" outage_is resolved
[ "$(lab_incident_id "$T" outage)" = "$id" ] || lab_fail "a different outage resolved"
lab_wait_for $((INTERVAL_S + 15)) "$T up from all five regions again" all_up
lab_ok "outage $id resolved after healing"
silent >/dev/null && lab_fail "the aggregator called $A silent: $(silent)"

lab_stop_agents
lab_expect_incident "$T" outage 1
lab_expect_alert "$T" outage 1
lab_expect_alert "$T" recovery 1
epochs=$(lab_agent_epochs "$A" | wc -l)
[ "$epochs" = 2 ] || lab_fail "$A logged final counts for $epochs epochs, want 2 (before and after the wipe)"
lab_invariant
