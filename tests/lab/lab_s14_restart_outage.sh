#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Lab scenario 14 (TESTPLAN.md §3): the aggregator is killed with SIGKILL
# during an open outage and started again.  The open incident is found in
# the database (incident.h), so the outage continues as the SAME incident:
# the target stays DOWN, no second incident is opened and no second outage
# alert is sent.  After the target heals the incident resolves as usual,
# with one recovery alert.  The agents keep probing through the restart and
# resend; every result is stored exactly once.
. "$(dirname "$0")/lib/lab.sh"

T=s14
INTERVAL_S=2
AWAY_S=6 # the aggregator is gone this long

lab_up
lab_start_target
lab_start_hookd
lab_write_conf ${INTERVAL_S}s 2s "  - { name: $T, http: { url: \"$LAB_TGT_URL/$T\" } }" "$LAB_ALERTS_YAML"
lab_start_aggregator
lab_start_agents

target() { lab_api "/api/v1/targets/$T"; }
all_up() { target | jq -e '.state == "up" and ([.regions[] | select(.vote == "up")] | length) == 5'; }
lab_wait_for $((INTERVAL_S + 15)) "$T up with an UP vote from all five regions" all_up

lab_target_rules "[{\"path\": \"/$T\", \"action\": \"fail\", \"status\": 503}]"
outage_is() { [ "$(lab_incident_state "$T" outage)" = "$1" ]; }
lab_wait_for $((INTERVAL_S + 10)) "an outage of $T" outage_is open
id=$(lab_incident_id "$T" outage)
lab_log "outage $id open"
# Its alert is out before the kill: a delivery cut short by SIGKILL would be
# sent again after the restart (at least once), which is not what this tests.
alert_out() { [ "$(lab_psql "SELECT count(*) FROM alert_outbox WHERE sent_at IS NULL")" = 0 ]; }
lab_wait_for 15 "the outage alert to be delivered" alert_out
if [ "$LAB_HOOK_UP" = 1 ]; then
	[ "$(lab_hook_count "$T" outage)" = 1 ] || lab_fail "the receiver did not get the outage alert"
fi
lab_sleep 2

# ---- SIGKILL and restart ----
lab_signal aggregator KILL
wait "$LAB_AGG_PID" 2>/dev/null || true # bash reports "Killed"
killed_at=$(date +%s.%N)
lab_log "aggregator killed with SIGKILL during outage $id; agents keep probing"
lab_sleep "$AWAY_S"
lab_start_aggregator
lab_log "aggregator restarted"
grep -q 'open incidents restored' "$LAB_DIR/aggregator.log" ||
	lab_fail "the restarted aggregator did not log restoring the open incident"
connected() { lab_api /api/v1/agents | jq -e '[.agents[] | select(.connected)] | length == 5'; }
lab_wait_for 30 "all five agents to reconnect" connected
back_s=$(awk -v a="$killed_at" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
echo "METRIC s14 kill_to_all_agents_back_s=$back_s"
state=$(target | jq -r .state)
[ "$state" = down ] || lab_fail "after the restart $T is \"$state\", want down (the outage continues)"
# Several intervals with fresh DOWN votes: still the one incident.
all_down() { target | jq -e '.state == "down" and ([.regions[] | select(.vote == "down")] | length) == 5'; }
lab_wait_for $((3 * INTERVAL_S + 10)) "five fresh DOWN votes after the restart" all_down
lab_sleep $((2 * INTERVAL_S))
n=$(lab_psql "SELECT count(*) FROM incidents WHERE id > $id OR (kind = 'outage' AND id <> $id)")
[ "$n" = 0 ] || lab_fail "$n incidents opened besides outage $id: $(lab_psql "SELECT id, kind, state FROM incidents")"
lab_api "/api/v1/incidents?state=open" | jq -e --argjson id "$id" '[.incidents[].id] == [$id]' >/dev/null ||
	lab_fail "API: the open incidents after the restart are not just $id: $(lab_api "/api/v1/incidents?state=open")"
[ "$(lab_api /api/v1/status | jq -r .status)" = down ] || lab_fail "/api/v1/status is not down after the restart"
lab_ok "after kill -9 and restart outage $id continues: $T down, no other incident"

# ---- healing ----
heal_at=$(lab_psql "SELECT now()")
lab_target_rules '[]'
lab_wait_for $((3 * INTERVAL_S + 10)) "outage $id to resolve" outage_is resolved
[ "$(lab_incident_id "$T" outage)" = "$id" ] || lab_fail "a different outage resolved"
res_ms=$(lab_psql "SELECT round(extract(epoch FROM resolved_at - '$heal_at'::timestamptz) * 1000) FROM incidents WHERE id = $id")
[ "$res_ms" -ge 0 ] || lab_fail "outage $id resolved_at is before the target healed"
lab_wait_for $((INTERVAL_S + 10)) "$T up from all five regions again" all_up
lab_ok "outage $id resolved after healing"

lab_stop_agents
lab_expect_incident "$T" outage 1
lab_expect_alert "$T" outage 1
lab_expect_alert "$T" recovery 1
lab_invariant
