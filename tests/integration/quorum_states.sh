#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Quorum on real agents: three agents bound to 127.0.0.1/.2/.3 (each its own
# "region" to the fake target, which answers per client address), probing
# every 30 s with confirm 2.  A target failing everywhere becomes DOWN; one
# failing from one region only becomes DEGRADED; a healthy one stays UP.
# Fast confirmation is checked by what is stored, not by a clock: the DOWN
# verdict is reached from RETRY and PROBE_NOW results before any agent ran
# a second scheduled probe of that target.
. "$(dirname "$0")/../lib/common.sh"
vt_setup

vt_start_target -l 127.0.0.2:0
vt_target_rules '[{"path":"/everywhere","action":"fail","status":503},
                  {"path":"/regional","client":"127.0.0.2","action":"fail","status":503}]'
url=http://127.0.0.1:$VT_TARGET_PORT
vt_write_conf 30s 3s "  - { name: healthy, http: { url: \"$url/ok\" } }
  - { name: outage, http: { url: \"$url/everywhere\" } }
  - { name: regional, http: { url: \"$url/regional\" } }"
vt_start_aggregator
vt_start_three_agents

state_of() { vt_api "/api/v1/targets/$1" | jq -r .state; }
# Each target is probed once per 30 s; its phase decides when.  Wait for the
# first verdicts (bounded by one interval plus slack).
vt_wait_for 45 "outage to be DOWN" bash -c "[ \"\$(curl -sf http://$VT_HTTP/api/v1/targets/outage | jq -r .state)\" = down ]"
vt_wait_for 45 "regional to be DEGRADED" bash -c "[ \"\$(curl -sf http://$VT_HTTP/api/v1/targets/regional | jq -r .state)\" = degraded ]"
vt_wait_for 45 "healthy to be UP" bash -c "[ \"\$(curl -sf http://$VT_HTTP/api/v1/targets/healthy | jq -r .state)\" = up ]"
vt_ok "outage DOWN, regional DEGRADED, healthy UP"

out=$(vt_api /api/v1/targets/outage)
[ "$(jq .regions_down <<<"$out")" = 3 ] || vt_fail "outage: $(jq -c '{regions_down, regions_up}' <<<"$out")"
reg=$(vt_api /api/v1/targets/regional)
[ "$(jq -r '.regions[] | select(.region == "us-east") | .vote' <<<"$reg")" = down ] ||
	vt_fail "regional: us-east does not vote down: $reg"
[ "$(jq -r '[.regions[] | select(.vote == "up")] | length' <<<"$reg")" = 2 ] || vt_fail "regional: $reg"
[ "$(vt_api /api/v1/status | jq -r .status)" = down ] || vt_fail "overall status is not down"

# How the outage was confirmed: by retries and ProbeNow, not by waiting
# for the next scheduled round.
grep -q 'target "outage" is now down' "$VT_DIR/aggregator.log" || vt_fail "no state change logged"
read -r sched retry pnow <<<"$(vt_psql "SELECT count(*) FILTER (WHERE trigger = 0),
	count(*) FILTER (WHERE trigger = 1), count(*) FILTER (WHERE trigger = 2)
	FROM results r JOIN targets t ON t.id = r.target_id WHERE t.key = 'outage'" | tr '|' ' ')"
[ "$pnow" -ge 1 ] || vt_fail "no PROBE_NOW result stored for the outage (scheduled $sched, retry $retry)"
[ "$retry" -ge 1 ] || vt_fail "no RETRY result stored for the outage"
per_agent=$(vt_psql "SELECT max(n) FROM (SELECT count(*) AS n FROM results r JOIN targets t ON t.id = r.target_id
	WHERE t.key = 'outage' AND trigger = 0 GROUP BY agent_id) s")
detected=$(grep 'target "outage" is now down' "$VT_DIR/aggregator.log" | head -n 1 | cut -c1-23)
first_fail=$(vt_psql "SELECT min(started_at) FROM results r JOIN targets t ON t.id = r.target_id WHERE t.key = 'outage'")
echo "METRIC outage_first_failure=\"$first_fail\" detected=\"$detected UTC\" scheduled_per_agent_max=$per_agent"
sched_before=$(vt_psql "SELECT count(*) FROM results r JOIN targets t ON t.id = r.target_id
	WHERE t.key = 'outage' AND trigger = 0 AND r.started_at > (SELECT min(started_at) FROM results r2
	JOIN targets t2 ON t2.id = r2.target_id WHERE t2.key = 'outage') + interval '29 s'
	AND r.started_at < '$detected UTC'::timestamptz")
[ "$sched_before" = 0 ] || vt_fail "a second scheduled round ran before the outage was detected"
vt_ok "confirmed by $retry retries and $pnow ProbeNow probes within the first round"

# A regional incident opens once DEGRADED outlasts the time an outage takes
# to be confirmed (so an outage never starts with a stray regional one).
vt_wait_for 30 "the regional incident" bash -c "[ \"\$(psql -X -h $VT_DIR/state/pg -U vantage vantage -Atc \"SELECT count(*) FROM incidents WHERE kind = 'regional'\")\" = 1 ]"
for r in eu-west us-east ap-south; do
	vt_check_agent "$r"
done

# Incidents: one outage and one regional incident, none for the healthy target.
rows=$(vt_psql "SELECT t.key || ':' || i.kind || ':' || i.state FROM incidents i JOIN targets t ON t.id = i.target_id ORDER BY 1")
[ "$rows" = "outage:outage:open
regional:regional:open" ] || vt_fail "incidents: $rows"
read -r started detected <<<"$(vt_psql "SELECT extract(epoch FROM i.started_at), extract(epoch FROM i.detected_at)
	FROM incidents i JOIN targets t ON t.id = i.target_id WHERE t.key = 'outage'" | tr '|' ' ')"
# started_at is the earliest failing probe of the streaks that formed the
# quorum (DESIGN.md §6): the very first failing probe, or, when its region
# had not confirmed yet as the other two did, one of theirs a moment later
# (their ProbeNow probes follow it within milliseconds; one run saw 2.2 ms).
first=$(vt_psql "SELECT extract(epoch FROM min(started_at)) FROM results r JOIN targets t ON t.id = r.target_id WHERE t.key = 'outage'")
is_probe=$(vt_psql "SELECT count(*) FROM results r JOIN targets t ON t.id = r.target_id
	WHERE t.key = 'outage' AND r.outcome = 2 AND extract(epoch FROM r.started_at) = $started")
[ "$is_probe" -ge 1 ] || vt_fail "outage started_at $started is the time of no failing probe"
awk -v s="$started" -v f="$first" 'BEGIN { exit !(s >= f && s - f <= 1.0) }' ||
	vt_fail "outage started_at $started, first failing probe $first: more than one retry_interval (1 s) apart"
awk -v s="$started" -v d="$detected" 'BEGIN { exit !(d >= s) }' || vt_fail "detected before started"
events=$(vt_psql "SELECT string_agg(e.kind || '/' || coalesce(e.region, '-'), ' ' ORDER BY e.kind, e.region)
	FROM incident_events e JOIN incidents i ON i.id = e.incident_id JOIN targets t ON t.id = i.target_id WHERE t.key = 'outage'")
[ "$events" = "first_failure/ap-south first_failure/eu-west first_failure/us-east quorum/-" ] ||
	vt_fail "outage timeline: $events"
vt_ok "incidents recorded: outage (started at a failing probe, $(awk -v s="$started" -v f="$first" 'BEGIN { printf "%.1f", (s - f) * 1000 }') ms after the first) and regional; timeline $events"

# The incidents API agrees with the table.
list=$(vt_api "/api/v1/incidents?state=open")
[ "$(jq '.incidents | length' <<<"$list")" = 2 ] || vt_fail "open incidents: $list"
id=$(jq -r '.incidents[] | select(.target == "outage") | .id' <<<"$list")
one=$(vt_api "/api/v1/incidents/$id")
[ "$(jq -r .kind <<<"$one")" = outage ] && [ "$(jq '.timeline | length' <<<"$one")" -ge 3 ] ||
	vt_fail "incident $id: $one"
[ "$(vt_api "/api/v1/incidents?state=resolved" | jq '.incidents | length')" = 0 ] || vt_fail "resolved list not empty"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://$VT_HTTP/api/v1/incidents/999999")
[ "$code" = 404 ] || vt_fail "missing incident gave $code"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://$VT_HTTP/api/v1/incidents?state=bogus")
[ "$code" = 400 ] || vt_fail "bad state gave $code"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://$VT_HTTP/api/v1/incidents?since=yesterday%27;--")
[ "$code" = 400 ] || vt_fail "bad since gave $code"
[ "$(vt_api "/api/v1/incidents?since=2000-01-01T00:00:00Z" | jq '.incidents | length')" = 2 ] || vt_fail "since filter"
vt_ok "incidents API: list, filters, one incident with its timeline, 400/404"
ctl() { "$BIN/vantagectl" --url "http://$VT_HTTP" "$@"; }
ctl status | grep -q '^overall: down' || vt_fail "vantagectl status: $(ctl status)"
ctl status | grep -q '^regional  *degraded' || vt_fail "vantagectl status lacks the regional target"
[ "$(ctl incidents --open | tail -n +2 | wc -l)" = 2 ] || vt_fail "vantagectl incidents --open: $(ctl incidents --open)"
ctl incident "$id" | grep -q 'first_failure' || vt_fail "vantagectl incident: $(ctl incident "$id")"
ctl --json incidents | jq -e '.incidents | length == 2' >/dev/null || vt_fail "vantagectl --json incidents"
vt_ok "vantagectl status, incidents --open, incident ID"
