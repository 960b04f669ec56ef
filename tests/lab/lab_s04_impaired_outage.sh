#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Lab scenario 4 (TESTPLAN.md §3): two of the five agents are impaired (the
# control targets fail for r1 and r3 only) and then the target really goes
# down for everyone.  Impaired agents abstain, but they must not hide a real
# outage: r2, r4 and r5 are still a quorum (3 of 5) and min_voters (3), so
# the outage is detected by them alone, with exactly those three regions
# and one outage alert.  After healing it resolves on the same three
# regions' UP votes (recovery quorum 3), with one recovery alert.
. "$(dirname "$0")/lib/lab.sh"

T=s04
INTERVAL_S=2
IMPAIRED=(r1 r3)

lab_up
need=$(lab_need_selfcheck)
[ -z "$need" ] || lab_skip "$need"
lab_start_target
lab_start_hookd
# Controls every 4 s: the impaired agents notice without waiting for a failure.
lab_write_conf ${INTERVAL_S}s 2s "  - { name: $T, http: { url: \"$LAB_TGT_URL/$T\" } }" "$LAB_ALERTS_YAML
controls:
  - { name: ctl-1, http: { url: \"$LAB_TGT_URL/ctl-1\" }, interval: 4s, timeout: 2s }
  - { name: ctl-2, http: { url: \"$LAB_TGT_URL/ctl-2\" }, interval: 4s, timeout: 2s }"
lab_start_aggregator
lab_start_agents

target() { lab_api "/api/v1/targets/$T"; }
agent() { lab_api /api/v1/agents | jq -r --arg n "$1" ".agents[] | select(.name == \$n) | .$2"; }
all_up() { target | jq -e '.state == "up" and ([.regions[] | select(.vote == "up")] | length) == 5'; }
lab_wait_for 20 "$T up with an UP vote from all five regions" all_up

# ---- r1 and r3 impaired: their controls fail ----
ctl_rules=""
for r in "${IMPAIRED[@]}"; do
	ctl_rules+="{\"path\": \"/ctl-\", \"client\": \"${LAB_IP[$r]}\", \"action\": \"fail\", \"status\": 503},"
done
lab_target_rules "[${ctl_rules%,}]"
impaired() { [ "$(agent r1 impaired)" = true ] && [ "$(agent r3 impaired)" = true ]; }
lab_wait_for 20 "r1 and r3 to report themselves impaired" impaired
abstain2() { target | jq -e '([.regions[] | select(.vote == "abstain")] | map(.region) | sort) == ["r1", "r3"] and .state == "up"'; }
lab_wait_for 10 "r1 and r3 to abstain while $T is up" abstain2
lab_ok "r1 and r3 impaired and abstaining; $T up on r2, r4 and r5"

# ---- the target really goes down ----
fault_at=$(lab_psql "SELECT now()")
lab_target_rules "[${ctl_rules} {\"path\": \"/$T\", \"action\": \"fail\", \"status\": 503}]"
lab_log "$T answers 503 to everyone"
outage_is() { [ "$(lab_incident_state "$T" outage)" = "$1" ]; }
lab_wait_for $((INTERVAL_S + 10)) "an outage of $T" outage_is open
id=$(lab_incident_id "$T" outage)
IFS='|' read -r regions detect_ms <<<"$(lab_psql "SELECT array_to_string(regions, ','),
	round(extract(epoch FROM detected_at - (SELECT min(r.started_at) FROM results r
		JOIN targets t ON t.id = r.target_id WHERE t.key = '$T' AND r.outcome = 2
		AND r.started_at >= '$fault_at')) * 1000) FROM incidents WHERE id = $id")"
[ "$regions" = r2,r4,r5 ] || lab_fail "outage $id names regions \"$regions\", want r2,r4,r5 (r1 and r3 abstain)"
lab_ok "outage $id detected by r2, r4 and r5 alone"
echo "METRIC s04 detect_s=$(awk -v m="$detect_ms" 'BEGIN { printf "%.3f", m / 1000 }')"
votes() {
	target | jq -e '.state == "down" and .regions_down == 3 and .regions_abstaining == 2 and
		([.regions[] | select(.vote == "abstain")] | map(.region) | sort) == ["r1", "r3"]'
}
lab_wait_for 5 "$T down with r1 and r3 abstaining" votes
[ "$(lab_api /api/v1/status | jq -r .status)" = down ] || lab_fail "/api/v1/status is not down"
lab_sleep $((2 * INTERVAL_S))
n=$(lab_psql "SELECT count(*) FROM incidents WHERE kind IN ('outage', 'blind') AND id <> $id")
[ "$n" = 0 ] || lab_fail "another outage or a blind incident was opened: $(lab_psql "SELECT id, kind, state FROM incidents")"
lab_ok "API: $T down, 3 regions down, r1 and r3 abstaining"

# ---- the target heals, r1 and r3 still impaired ----
heal_at=$(lab_psql "SELECT now()")
lab_target_rules "[${ctl_rules%,}]"
lab_wait_for $((3 * INTERVAL_S + 10)) "outage $id to resolve" outage_is resolved
res_ms=$(lab_psql "SELECT round(extract(epoch FROM resolved_at - '$heal_at'::timestamptz) * 1000) FROM incidents WHERE id = $id")
[ "$res_ms" -ge 0 ] || lab_fail "outage $id resolved_at is before the target healed"
lab_wait_for 10 "$T up on r2, r4 and r5, r1 and r3 still abstaining" abstain2
lab_ok "outage $id resolved on the three healthy regions"
lab_target_rules '[]'
lab_wait_for 20 "$T up with an UP vote from all five regions again" all_up

lab_stop_agents
lab_expect_incident "$T" outage 1
lab_expect_alert "$T" outage 1
lab_expect_alert "$T" recovery 1
lab_invariant
