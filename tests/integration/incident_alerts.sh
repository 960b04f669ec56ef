#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# An outage from start to post-mortem with real agents and a real webhook
# receiver: exactly one outage alert; the aggregator killed with SIGKILL and
# restarted while the outage is open continues the same incident and sends
# no second "opened" alert; the receiver is down for 60 s when the target
# recovers and still gets the recovery alert, once, when it is back; no
# regional incident precedes the outage.
. "$(dirname "$0")/../lib/common.sh"
vt_setup

vt_start_target -l 127.0.0.2:0 -l 127.0.0.3:0
vt_start_hookd pager ok
url=http://127.0.0.1:$VT_TARGET_PORT
vt_write_conf 5s 2s "  - { name: api, http: { url: \"$url/api\" } }
  - { name: web, http: { url: \"$url/web\" } }"
cat >>"$VT_DIR/vantage.yml" <<YML
alerts:
  - { name: pager, webhook: { url: "http://127.0.0.1:$HOOK_PORT_pager/hook" }, on: [outage, recovery, regional, blind, flapping] }
YML
vt_start_aggregator
vt_start_three_agents
state() { vt_api "/api/v1/targets/$1" | jq -r .state; }
vt_wait_for 30 "api up" bash -c "[ \"\$(curl -sf http://$VT_HTTP/api/v1/targets/api | jq -r .state)\" = up ]"

alerts_of() { vt_hook_received pager | jq -r --arg e "$1" '[.[] | select(.status == 200 and .body.event == $e)] | length'; }
vt_target_rules '[{"path":"/api","action":"fail","status":503}]'
vt_wait_for 30 "the outage alert" bash -c "[ \"\$(curl -sf http://127.0.0.1:$HOOK_PORT_pager/_hook/received | jq '[.[] | select(.body.event == \"outage\")] | length')\" = 1 ]"
id=$(vt_psql "SELECT id FROM incidents WHERE kind = 'outage' AND state = 'open'")
[ -n "$id" ] || vt_fail "no open outage"
body=$(vt_hook_received pager | jq -c '[.[] | select(.body.event == "outage")][0].body')
[ "$(jq -r .target <<<"$body")" = api ] && [ "$(jq -r .incident_id <<<"$body")" = "$id" ] ||
	vt_fail "outage alert body: $body"
vt_ok "one outage alert for incident $id: $(jq -r .summary <<<"$body")"

# SIGKILL and restart while the outage is open.
kill -KILL "$VT_AGG_PID"
wait "$VT_AGG_PID" 2>/dev/null || true
sleep 3
vt_start_aggregator
grep -q '1 open incidents restored' "$VT_DIR/aggregator.log" || vt_fail "open incident not restored"
# Agents reconnect and keep reporting the failure for a few intervals.
sleep 12
[ "$(state api)" = down ] || vt_fail "after the restart api is $(state api)"
[ "$(vt_psql "SELECT count(*) FROM incidents WHERE kind = 'outage'")" = 1 ] || vt_fail "a second outage was opened"
[ "$(vt_psql "SELECT id FROM incidents WHERE kind = 'outage' AND state = 'open'")" = "$id" ] ||
	vt_fail "the outage is not the same incident"
[ "$(alerts_of outage)" = 1 ] || vt_fail "$(alerts_of outage) outage alerts after the restart"
vt_ok "after kill -9 and restart: same incident $id, still one outage alert"

# The receiver is down for 60 s while the target recovers.
vt_hook_mode pager down
vt_target_rules '[]'
vt_wait_for 40 "the outage resolved" bash -c "[ \"\$(psql -X -h $VT_DIR/state/pg -U vantage vantage -Atc \"SELECT state FROM incidents WHERE id = $id\")\" = resolved ]"
sleep 60
read -r attempts sent <<<"$(vt_psql "SELECT attempts, sent_at IS NOT NULL FROM alert_outbox
	WHERE incident_id = $id AND event = 'recovery'" | tr '|' ' ')"
[ "${attempts:-0}" -ge 3 ] && [ "$sent" = f ] || vt_fail "recovery alert: attempts ${attempts:-none}, sent $sent"
vt_hook_mode pager ok
vt_wait_for 60 "the recovery alert" bash -c "[ \"\$(curl -sf http://127.0.0.1:$HOOK_PORT_pager/_hook/received | jq '[.[] | select(.status == 200 and .body.event == \"recovery\")] | length')\" = 1 ]"
sleep 2
[ "$(alerts_of recovery)" = 1 ] || vt_fail "$(alerts_of recovery) recovery alerts delivered"
[ "$(vt_psql "SELECT count(*) FROM alert_outbox WHERE sent_at IS NULL")" = 0 ] || vt_fail "alerts left unsent"
vt_ok "receiver down 60 s: recovery alert retried $attempts times, then delivered once"

[ "$(vt_psql "SELECT count(*) FROM incidents WHERE kind = 'regional'")" = 0 ] ||
	vt_fail "a regional incident was opened around the outage"
[ "$(vt_psql "SELECT postmortem_state FROM incidents WHERE id = $id")" = draft ] || vt_fail "no post-mortem draft"
[ "$(state web)" = up ] && [ "$(vt_psql "SELECT count(*) FROM incidents i JOIN targets t ON t.id = i.target_id WHERE t.key = 'web'")" = 0 ] ||
	vt_fail "the healthy target got an incident"
for r in eu-west us-east ap-south; do
	vt_check_agent "$r"
done
vt_ok "no regional or stray incident, post-mortem drafted, every result stored once"
