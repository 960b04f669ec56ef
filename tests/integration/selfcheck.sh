#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# TESTPLAN scenario 3 on real agents: one agent's own network is impaired,
# so it must abstain rather than vote DOWN.  Three agents bound to
# 127.0.0.1/.2/.3 (each its own region to the fake target, which answers per
# client address) probe a target every 5 s and two controls (canaries) every
# 60 s.  Then, for 127.0.0.2 only, both controls and the target break at
# once, as they would if that agent's network failed.  The target's first
# failure triggers a self-check at once, and the retry that would confirm
# the failure waits for its verdict, so every confirming result is already
# marked impaired: the agent shows as impaired in the API, its vote is
# "abstain", the target stays UP and no incident is opened.  When the
# network heals, the agent recovers within the impaired recheck period (5 s)
# rather than the 60 s control interval.  Last, scenario 4 in small: with
# that agent impaired again and the target really down everywhere, the two
# healthy regions still open the outage.
. "$(dirname "$0")/../lib/common.sh"
vt_setup

vt_start_target
url=http://127.0.0.1:$VT_TARGET_PORT
vt_write_conf 5s 2s "  - { name: web, http: { url: \"$url/web\" } }
controls:
  - { name: control-1, http: { url: \"$url/control-1\" }, interval: 60s, timeout: 2s }
  - { name: control-2, http: { url: \"$url/control-2\" }, interval: 60s, timeout: 2s }"
vt_start_aggregator
vt_start_three_agents

agent_field() { vt_api /api/v1/agents | jq -r --arg n "$1" ".agents[] | select(.name == \$n) | .$2"; }
web_field() { vt_api /api/v1/targets/web | jq -r "$1"; }
us_vote() { web_field '.regions[] | select(.region == "us-east") | .vote'; }
export -f agent_field web_field us_vote vt_api
export VT_HTTP

# --- healthy start: three agents vote UP, none impaired ---
vt_wait_for 30 "three connected agents" bash -c \
	'[ "$(vt_api /api/v1/agents | jq "[.agents[] | select(.connected)] | length")" = 3 ]'
vt_wait_for 30 "web to be UP from all three regions" bash -c \
	'[ "$(web_field .state)" = up ] && [ "$(web_field .regions_up)" = 3 ]'
for r in eu-west us-east ap-south; do
	[ "$(agent_field "$r" impaired)" = false ] || vt_fail "agent $r impaired at start"
	[ "$(agent_field "$r" impaired_reason)" = null ] || vt_fail "agent $r has an impaired_reason at start"
done
grep -q 'self-check uses 2 control targets' "$VT_DIR/agent-us-east.log" ||
	vt_fail "the agent did not get the controls from its Config"
vt_ok "healthy start: web UP from 3 regions, no agent impaired"

# --- us-east's network breaks: controls hang or are cut, the target fails ---
break_at=$(date -u +'%Y-%m-%d %H:%M:%S.%N')
vt_target_rules '[{"path":"/control-1","client":"127.0.0.2","action":"hang"},
                  {"path":"/control-2","client":"127.0.0.2","action":"refuse"},
                  {"path":"/web","client":"127.0.0.2","action":"fail","status":503}]'
vt_wait_for 20 "us-east to report itself impaired" bash -c '[ "$(agent_field us-east impaired)" = true ]'
reason=$(agent_field us-east impaired_reason)
case $reason in
"2 of 2 controls failed: control-1 timeout, control-2 "*) ;;
*) vt_fail "impaired_reason: $reason" ;;
esac
vt_wait_for 15 "us-east's vote on web to abstain" bash -c '[ "$(us_vote)" = abstain ]'
vt_ok "us-east impaired ($reason), its vote abstains"

# Its failures are stored, and the ones that would make it vote DOWN carry
# agent_state 1.  At most the very first failure (which triggered the
# self-check) predates the verdict.
us_results() {
	vt_psql "SELECT $1 FROM results r JOIN agents a ON a.id = r.agent_id
		JOIN targets t ON t.id = r.target_id
		WHERE a.name = 'us-east' AND t.key = 'web' AND r.outcome = 2
		AND r.started_at >= '$break_at'::timestamp AT TIME ZONE 'UTC'"
}
export -f us_results vt_psql
export VT_DIR break_at
vt_wait_for 20 "a confirming retry from us-east" bash -c \
	'[ "$(us_results "count(*) FILTER (WHERE trigger = 1)")" -ge 1 ]'
read -r down healthy retry_healthy <<<"$(us_results "count(*), count(*) FILTER (WHERE agent_state = 0),
	count(*) FILTER (WHERE agent_state = 0 AND trigger = 1)" | tr '|' ' ')"
[ "$retry_healthy" = 0 ] || vt_fail "$retry_healthy retries confirmed the failure before the self-check's verdict"
[ "$healthy" -le 1 ] || vt_fail "$healthy of $down failures of us-east are not marked impaired"
# The retry is due retry_interval (1 s) after the first failure, but the
# self-check it triggered lasts the hanging control's timeout (2 s).
held=$(us_results "round(extract(epoch FROM min(started_at) FILTER (WHERE trigger = 1)
	- min(started_at))::numeric, 2)")
awk -v h="$held" 'BEGIN { exit !(h >= 1.9) }' ||
	vt_fail "the first retry came ${held}s after the first failure, before the self-check ended"
vt_ok "$down failures stored, $((down - healthy)) marked impaired; the confirming retry waited ${held}s for the self-check"

# Two more probe intervals: still UP, us-east still abstaining, no incident.
for _ in $(seq 1 12); do
	st=$(web_field .state)
	[ "$st" = up ] || vt_fail "web is $st while only the impaired agent sees it fail"
	sleep 1
done
[ "$(us_vote)" = abstain ] || vt_fail "us-east votes $(us_vote) while impaired"
[ "$(web_field .regions_up)" = 2 ] || vt_fail "web: $(vt_api /api/v1/targets/web | jq -c '{regions_up, regions_down, regions_abstaining}')"
[ "$(vt_psql 'SELECT count(*) FROM incidents')" = 0 ] || vt_fail "incidents opened: $(vt_psql 'SELECT kind, state FROM incidents')"
for r in eu-west ap-south; do
	[ "$(agent_field "$r" impaired)" = false ] || vt_fail "agent $r impaired too"
done
grep -q 'agent "us-east" (region "us-east") reports its own network impaired: 2 of 2 controls failed' \
	"$VT_DIR/aggregator.log" || vt_fail "the aggregator did not log the impairment"
grep -q "self-check failed: this agent's own network looks impaired" "$VT_DIR/agent-us-east.log" ||
	vt_fail "the agent did not log its state change"
vt_ok "web stays UP with us-east abstaining; no incident"

# --- the network heals: the agent notices within seconds ---
heal=$(date +%s.%N)
vt_target_rules '[]'
vt_wait_for 20 "us-east to report itself healthy" bash -c '[ "$(agent_field us-east impaired)" = false ]'
took=$(awk -v a="$heal" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
[ "$(agent_field us-east impaired_reason)" = null ] || vt_fail "impaired_reason after healing: $(agent_field us-east impaired_reason)"
vt_wait_for 15 "us-east's vote on web to be UP" bash -c '[ "$(us_vote)" = up ]'
[ "$(web_field .regions_up)" = 3 ] || vt_fail "web is not UP from 3 regions after healing"
grep -q 'agent "us-east" (region "us-east") reports its own network healthy again' "$VT_DIR/aggregator.log" ||
	vt_fail "the aggregator did not log the recovery"
grep -q "self-check passed: this agent's network looks healthy again" "$VT_DIR/agent-us-east.log" ||
	vt_fail "the agent did not log its recovery"
echo "METRIC selfcheck_retry_held_s=$held healthy_after_heal_s=$took"
vt_ok "us-east healthy again ${took}s after the network healed, votes UP"

[ "$(vt_psql 'SELECT count(*) FROM incidents')" = 0 ] || vt_fail "incidents opened"

# --- scenario 4 in small: an impaired agent does not hide a real outage ---
# us-east is impaired again while web fails for everyone: the two healthy
# regions are a quorum (2 of 3) on their own.
vt_target_rules '[{"path":"/control-1","client":"127.0.0.2","action":"hang"},
                  {"path":"/control-2","client":"127.0.0.2","action":"refuse"},
                  {"path":"/web","action":"fail","status":503}]'
vt_wait_for 20 "web to be DOWN" bash -c '[ "$(web_field .state)" = down ]'
vt_wait_for 20 "us-east to be impaired again" bash -c '[ "$(agent_field us-east impaired)" = true ]'
vt_wait_for 10 "us-east to abstain on the outage" bash -c '[ "$(us_vote)" = abstain ]'
[ "$(web_field .regions_down)" = 2 ] || vt_fail "web: $(vt_api /api/v1/targets/web | jq -c '{regions_up, regions_down, regions_abstaining}')"
# The regions confirm a second apart, so the onset may pass through
# DEGRADED (a regional incident, resolved when the outage opens); what
# matters here is the one open outage.
rows=$(vt_psql "SELECT i.kind || ':' || i.state FROM incidents i WHERE i.kind = 'outage' OR i.state = 'open'")
[ "$rows" = "outage:open" ] || vt_fail "incidents: $(vt_psql "SELECT i.kind || ':' || i.state FROM incidents i")"
vt_ok "with us-east impaired, the outage is still detected by the two healthy regions"

# Control probes are never sent as results, and nothing was lost or doubled.
unknown=$(curl -sf "http://$VT_HTTP/healthz" | jq .ingest.results_unknown_target)
[ "$unknown" = 0 ] || vt_fail "$unknown results for unknown targets (control results sent?)"
for r in eu-west us-east ap-south; do
	vt_check_agent "$r"
	[ "$VT_TARGETS" = 1 ] || vt_fail "agent $r stored results for $VT_TARGETS targets, not only web"
done
vt_ok "every agent's results stored exactly once, none for a control"
