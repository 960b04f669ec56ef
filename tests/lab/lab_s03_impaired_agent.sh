#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Lab scenario 3 (TESTPLAN.md §3): one agent's own network is impaired.
# r3 gets a blackhole route to 10.77.0.2, where both its control targets
# (canaries, `controls:`) and the three real targets live: to r3 everything
# fails, to everyone else nothing does.  r3's self-check finds its controls
# failing, it reports itself IMPAIRED, and its votes count as abstentions:
# the targets stay UP (four regions vote UP), no incident of any kind is
# opened and no alert sent.  The confirming retries of r3's failures wait
# for the self-check's verdict, so they carry agent_state IMPAIRED.  When
# the route is removed r3 is healthy again and votes UP.
. "$(dirname "$0")/lib/lab.sh"

TARGETS=(s03a s03b s03c)
INTERVAL_S=2
HOLD_S=12

lab_up
need=$(lab_need_selfcheck)
[ -z "$need" ] || lab_skip "$need"
lab_start_target
lab_start_hookd
targets=""
for t in "${TARGETS[@]}"; do
	targets+="  - { name: $t, http: { url: \"$LAB_TGT_URL/$t\" } }"$'\n'
done
lab_write_conf ${INTERVAL_S}s 2s "$targets" "$LAB_ALERTS_YAML
controls:
  - { name: ctl-1, http: { url: \"$LAB_TGT_URL/ctl-1\" }, interval: 30s, timeout: 2s }
  - { name: ctl-2, http: { url: \"$LAB_TGT_URL/ctl-2\" }, interval: 30s, timeout: 2s }"
lab_start_aggregator
lab_start_agents

target() { lab_api "/api/v1/targets/$1"; }
agent() { lab_api /api/v1/agents | jq -r --arg n "$1" ".agents[] | select(.name == \$n) | .$2"; }
all_up() {
	local t
	for t in "${TARGETS[@]}"; do
		target "$t" | jq -e '.state == "up" and ([.regions[] | select(.vote == "up")] | length) == 5' || return 1
	done
}
lab_wait_for 20 "every target up with five UP votes" all_up
for r in "${LAB_REGIONS[@]}"; do
	[ "$(agent "$r" impaired)" = false ] || lab_fail "agent $r is impaired before anything broke"
done
lab_ok "every target up from five regions, no agent impaired"

# ---- r3's network breaks ----
break_at=$(lab_psql "SELECT now()")
lab_blackhole r3 "$LAB_TGT_IP"
lab_log "r3 cannot reach $LAB_TGT_IP (blackhole route)"
impaired() { [ "$(agent r3 impaired)" = true ]; }
lab_wait_for 20 "r3 to report itself impaired" impaired
took=$(lab_psql "SELECT round(extract(epoch FROM now() - '$break_at'::timestamptz), 1)")
reason=$(agent r3 impaired_reason)
lab_log "r3 impaired after ${took}s: $reason"
echo "METRIC s03 impaired_after_s=$took"
abstains() {
	local t
	for t in "${TARGETS[@]}"; do
		target "$t" | jq -e '.state == "up" and ([.regions[] | select(.region == "r3" and .vote == "abstain")] | length) == 1 and
			([.regions[] | select(.region != "r3" and .vote == "up")] | length) == 4' || return 1
	done
}
lab_wait_for 10 "r3 to abstain on every target" abstains
end=$(($(date +%s) + HOLD_S))
while [ "$(date +%s)" -lt "$end" ]; do
	abstains >/dev/null || lab_fail "r3's broken network moved a target: $(lab_api /api/v1/status)"
	n=$(lab_psql "SELECT count(*) FROM incidents")
	[ "$n" = 0 ] || lab_fail "incidents opened while only r3's network was broken: $(lab_psql "SELECT id, kind, state FROM incidents")"
	lab_sleep 1
done
[ "$(lab_api /api/v1/status | jq -r .status)" = up ] || lab_fail "/api/v1/status is not up"
for r in r1 r2 r4 r5; do
	[ "$(agent "$r" impaired)" = false ] || lab_fail "agent $r is impaired too"
done
lab_ok "for ${HOLD_S}s every target stayed UP with r3 abstaining; no incident"

# r3's failures are stored; every confirming one carries IMPAIRED: only the
# first failure per target (which started the self-check) may predate it.
read -r downs healthy healthy_retries <<<"$(lab_psql "SELECT count(*), count(*) FILTER (WHERE r.agent_state = 0),
	count(*) FILTER (WHERE r.agent_state = 0 AND r.trigger = 1)
	FROM results r JOIN agents a ON a.id = r.agent_id
	WHERE a.name = 'r3' AND r.outcome = 2 AND r.started_at >= '$break_at'" | tr '|' ' ')"
lab_log "r3: $downs failures stored, $healthy not marked impaired ($healthy_retries of them retries)"
[ "$downs" -ge ${#TARGETS[@]} ] || lab_fail "r3 stored only $downs failures"
[ "$healthy_retries" = 0 ] || lab_fail "$healthy_retries retries of r3 confirmed a failure before its self-check's verdict"
[ "$healthy" -le ${#TARGETS[@]} ] || lab_fail "$healthy of r3's $downs failures are not marked impaired (at most one per target may be)"
lab_ok "r3's $downs failures stored, $((downs - healthy)) of them marked impaired, no unmarked retry"

# ---- r3's network heals ----
heal_at=$(lab_psql "SELECT now()")
lab_unblackhole r3 "$LAB_TGT_IP"
healthy_again() { [ "$(agent r3 impaired)" = false ]; }
lab_wait_for 20 "r3 to report itself healthy" healthy_again
took=$(lab_psql "SELECT round(extract(epoch FROM now() - '$heal_at'::timestamptz), 1)")
echo "METRIC s03 healthy_after_heal_s=$took"
lab_wait_for 15 "every target up with five UP votes again" all_up
lab_ok "r3 healthy again ${took}s after its network healed; five UP votes"

lab_stop_agents
unknown=$(lab_api /healthz | jq .ingest.results_unknown_target)
[ "$unknown" = 0 ] || lab_fail "$unknown results for unknown targets (control results sent as results?)"
lab_expect_no_incidents
lab_invariant
