#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Lab scenario 12 (TESTPLAN.md §3): a flapping target.  It answers 503 to
# everyone for DOWN_S seconds every PERIOD_S seconds, CYCLES times (10 s
# every 30 s for 5 minutes, at a 5 s interval), under the product's own
# defaults (reopen_window 10 min, settle_for 60 s here).  What people see
# must stay calm: ONE outage incident, reopened by every later flap and
# flagged flapping from the first reopening, and at most two outage-type
# alerts -- "outage" for the first flap, "flapping" for the second -- then
# ONE "recovery", once the target has stayed up for settle_for after the
# last flap, not one per flap and not an hour later.  Every flap shows in
# the incident's timeline (quorum and resolved per flap, "reopened" for
# each but the first, one "settled").
. "$(dirname "$0")/lib/lab.sh"

T=s12
INTERVAL_S=5
CYCLES=${CYCLES:-10}
DOWN_S=10
PERIOD_S=30
SETTLE_S=60 # settle_for's default at this interval: the larger of 60 s and 2 intervals

lab_up
lab_start_target
lab_start_hookd
LAB_DEFAULTS=""
lab_write_conf ${INTERVAL_S}s 2s "  - { name: $T, http: { url: \"$LAB_TGT_URL/$T\" } }" "$LAB_ALERTS_YAML"
lab_start_aggregator
lab_start_agents

target() { lab_api "/api/v1/targets/$T"; }
all_up() { target | jq -e '.state == "up" and ([.regions[] | select(.vote == "up")] | length) == 5'; }
lab_wait_for $((2 * INTERVAL_S + 15)) "$T up with an UP vote from all five regions" all_up

outage_is() { [ "$(lab_incident_state "$T" outage)" = "$1" ]; }
sent_alerts() { # EVENT: alerts of EVENT queued for $T
	lab_psql "SELECT count(*) FROM alert_outbox o JOIN incidents i ON i.id = o.incident_id
		JOIN targets t ON t.id = i.target_id WHERE t.key = '$T' AND o.event = '$1'"
}
id=
for c in $(seq 1 "$CYCLES"); do
	start=$(date +%s)
	lab_target_rules "[{\"path\": \"/$T\", \"action\": \"fail\", \"status\": 503}]"
	lab_wait_for $DOWN_S "flap $c: the outage of $T (re)opened" outage_is open
	got=$(lab_incident_id "$T" outage)
	[ -n "$id" ] || id=$got
	[ "$got" = "$id" ] || lab_fail "flap $c opened outage $got instead of reopening $id"
	flapping=$(lab_psql "SELECT flapping FROM incidents WHERE id = $id")
	api_flapping=$(target | jq -r .flapping)
	lab_log "flap $c: outage $id open (flapping: incident $flapping, API $api_flapping)"
	if [ "$c" -ge 2 ]; then
		[ "$flapping" = t ] || lab_fail "flap $c: outage $id is not flagged flapping"
		[ "$api_flapping" = true ] || lab_fail "flap $c: /api/v1/targets/$T says flapping $api_flapping"
	else
		[ "$flapping" = f ] || lab_fail "the first outage is flagged flapping already"
	fi
	# While it flaps, no recovery is announced.
	[ "$(sent_alerts recovery)" = 0 ] || lab_fail "flap $c: a recovery alert was queued while $T flaps"
	lab_sleep $((start + DOWN_S - $(date +%s)))
	lab_target_rules '[]'
	lab_wait_for $((PERIOD_S - DOWN_S)) "flap $c: outage $id to resolve" outage_is resolved
	lab_log "flap $c: outage $id resolved"
	[ "$c" = "$CYCLES" ] || lab_sleep $((start + PERIOD_S - $(date +%s)))
done
resolved_at=$(lab_psql "SELECT resolved_at FROM incidents WHERE id = $id")
lab_wait_for $((2 * INTERVAL_S + 10)) "$T up from all five regions again" all_up
[ "$(sent_alerts recovery)" = 0 ] || lab_fail "a recovery alert was queued before $T settled"

# The one recovery: settle_for after the last resolution.
recovered() { [ "$(sent_alerts recovery)" = 1 ]; }
lab_wait_for $((SETTLE_S + 20)) "the recovery alert of outage $id" recovered
after_s=$(lab_psql "SELECT round(extract(epoch FROM o.created_at - i.resolved_at)::numeric, 1)
	FROM alert_outbox o JOIN incidents i ON i.id = o.incident_id WHERE i.id = $id AND o.event = 'recovery'")
lab_log "recovery alert queued ${after_s} s after the last resolution ($resolved_at)"
awk -v s="$after_s" -v w=$SETTLE_S 'BEGIN { exit !(s >= w - 6 && s <= w + 10) }' ||
	lab_fail "the recovery alert came ${after_s} s after the resolution, want about settle_for ($SETTLE_S s)"
echo "METRIC s12 recovery_after_resolution_s=$after_s"

# One incident, every flap in its timeline.
read -r quorums resolveds reopens settled <<<"$(lab_psql "SELECT count(*) FILTER (WHERE kind = 'quorum'),
	count(*) FILTER (WHERE kind = 'resolved'), count(*) FILTER (WHERE kind = 'reopened'),
	count(*) FILTER (WHERE kind = 'settled') FROM incident_events WHERE incident_id = $id" | tr '|' ' ')"
[ "$quorums" = "$CYCLES" ] && [ "$resolveds" = "$CYCLES" ] ||
	lab_fail "outage $id has $quorums quorum and $resolveds resolved events in its timeline, want $CYCLES each"
[ "$reopens" = $((CYCLES - 1)) ] || lab_fail "outage $id has $reopens reopened events, want $((CYCLES - 1))"
[ "$settled" = 1 ] || lab_fail "outage $id has $settled settled events, want 1"
lab_api "/api/v1/incidents/$id" | jq -e --argjson n $((CYCLES - 1)) \
	'.state == "resolved" and ([.timeline[] | select(.kind == "reopened")] | length) == $n' >/dev/null ||
	lab_fail "API: incident $id is not a resolved outage with its reopenings: $(lab_api "/api/v1/incidents/$id")"
[ "$(lab_api "/api/v1/incidents" | jq '[.incidents[] | select(.kind == "outage")] | length')" = 1 ] ||
	lab_fail "the API lists more than one outage: $(lab_api /api/v1/incidents)"
lab_ok "$CYCLES flaps: one outage incident ($id), reopened $reopens times, resolved $resolveds times, one recovery after it settled"
lab_alerts_settle 15
echo "METRIC s12 flaps=$CYCLES outage_incidents=$(lab_psql "SELECT count(*) FROM incidents WHERE kind = 'outage'") alerts_queued=$(lab_psql "SELECT count(*) FROM alert_outbox")"

lab_stop_agents
lab_expect_incident "$T" outage 1
lab_expect_alert "$T" outage 1
lab_expect_alert "$T" flapping 1
lab_expect_alert "$T" recovery 1
lab_invariant
