#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The alert sender against real receivers (TESTPLAN scenario 18): outbox
# rows are inserted with psql, as incident.c would write them, and the
# aggregator delivers them to fake webhook receivers (tests/fakes/hookd) and
# an exec script.  Checked by order and by what arrived, not by wall-clock
# limits:
#   (a) a receiver that hangs delays no other channel;
#   (b) a receiver that is down gets retries with growing spacing, and after
#       it comes back every alert arrives exactly once;
#   (c) an exec channel gets the event JSON on stdin;
#   (d) the PagerDuty format carries routing_key and dedup_key, and the
#       resolve follows its trigger;
#   (e) a row for a channel that is not configured is kept, marked, and
#       delivered after a reload adds the channel.
. "$(dirname "$0")/../lib/common.sh"
vt_setup
command -v jq >/dev/null || vt_skip "jq is not installed (make deps)"

vt_start_hookd fast ok
vt_start_hookd slow hang
vt_start_hookd flaky down

cat >"$VT_DIR/alert.sh" <<'SH'
#!/bin/sh
# Appends the alert (stdin) to $1 as one line; a temp file keeps a partial
# write from ever looking like an alert.
tmp="$1.tmp.$$"
cat >"$tmp" && { cat "$tmp"; echo; } >>"$1"
rm -f "$tmp"
SH

vt_write_conf 30s 3s ""
# on: [outage] everywhere: the sender delivers whatever the outbox holds; the
# subscription only keeps incident.c from adding rows of its own.
cat >>"$VT_DIR/vantage.yml" <<YML
alerts:
  - { name: fast, webhook: { url: "http://127.0.0.1:$HOOK_PORT_fast/fast" }, on: [outage] }
  - { name: slow, webhook: { url: "http://127.0.0.1:$HOOK_PORT_slow/slow" }, on: [outage], timeout: 5s }
  - { name: flaky, webhook: { url: "http://127.0.0.1:$HOOK_PORT_flaky/flaky" }, on: [outage], timeout: 2s }
  - name: pd
    webhook: { url: "http://127.0.0.1:$HOOK_PORT_fast/pd", format: pagerduty, routing_key: TESTKEY }
    on: [outage]
  - { name: script, exec: { command: "/bin/sh $VT_DIR/alert.sh $VT_DIR/exec.out" }, on: [outage] }
YML
vt_start_aggregator

target=$(vt_psql "INSERT INTO targets (key, spec) VALUES ('alert-test', '{}') RETURNING id")
# new_incident : prints the id of a fresh (resolved) outage incident.
new_incident() {
	vt_psql "INSERT INTO incidents (target_id, kind, state, started_at, detected_at, resolved_at, regions)
		VALUES ($target, 'outage', 'resolved', now() - interval '5 min', now() - interval '299 s',
		now(), '{eu-west,us-east}') RETURNING id"
}
# add_alert INCIDENT CHANNEL EVENT MARK : queues one alert, prints its id.
# MARK goes into the payload's summary so each arrival can be traced to
# its row.
add_alert() {
	vt_psql "INSERT INTO alert_outbox (incident_id, channel, event, payload) VALUES ($1, '$2', '$3',
		jsonb_build_object('event', '$3', 'target', 'alert-test', 'group', NULL, 'url', NULL,
		'kind', 'outage', 'state', 'open', 'started_at', '2026-11-25T10:00:00.000000Z',
		'detected_at', '2026-11-25T10:00:03.000000Z', 'resolved_at', NULL,
		'regions_down', jsonb_build_array('eu-west', 'us-east'), 'regions_up', jsonb_build_array('ap-south'),
		'regions_abstaining', jsonb_build_array(), 'reasons', jsonb_build_object('eu-west', '503 http_status'),
		'summary', '$4')) RETURNING id"
}
row() { vt_psql "SELECT $2 FROM alert_outbox WHERE id = $1"; }
unsent() { vt_psql "SELECT count(*) FROM alert_outbox WHERE sent_at IS NULL AND id IN ($1)"; }

# --- (a) a hung receiver delays no other channel ---
inc_a=$(new_incident)
slow_ids=()
fast_ids=()
for i in 1 2 3; do
	slow_ids+=("$(add_alert "$inc_a" slow outage "slow-$i")")
	fast_ids+=("$(add_alert "$inc_a" fast outage "fast-$i")")
done
fast_list=$(IFS=,; echo "${fast_ids[*]}")
slow_list=$(IFS=,; echo "${slow_ids[*]}")
vt_wait_for 15 "the fast channel's alerts" bash -c "[ \"\$(psql -X -q -h $VT_DIR/state/pg -U vantage -d vantage -Atc \
	\"SELECT count(*) FROM alert_outbox WHERE sent_at IS NULL AND id IN ($fast_list)\")\" = 0 ]"
# By order: all three went out while the first slow attempt (5 s timeout)
# was still hanging -- it has neither failed nor been retried yet.
[ "$(row "${slow_ids[0]}" attempts)" = 0 ] ||
	vt_fail "the slow channel's first attempt ended before the fast channel was done"
[ "$(vt_psql "SELECT count(*) FROM incident_events WHERE incident_id = $inc_a AND kind = 'alert_failed'")" = 0 ] ||
	vt_fail "a failure was recorded before the fast channel was done"
got=$(vt_hook_received fast | jq -r '[.[] | select(.path == "/fast") | .body.summary] | join(",")')
[ "$got" = "fast-1,fast-2,fast-3" ] || vt_fail "fast receiver got \"$got\", wanted fast-1,fast-2,fast-3 in order"
[ "$(vt_hook_received slow | jq length)" = 1 ] || vt_fail "the hung receiver got more than the first alert"
fast_ms=$(vt_psql "SELECT round(max(extract(epoch FROM sent_at - created_at)) * 1000) FROM alert_outbox WHERE id IN ($fast_list)")
vt_ok "a hung receiver delays no other channel (fast alerts sent within ${fast_ms} ms of being queued; poll every 1 s)"

# The hung attempt times out, is recorded once in the timeline, and the
# next attempt (after the receiver recovers) delivers all three in order.
vt_wait_for 20 "the slow channel's first failure" bash -c "[ \"\$(psql -X -q -h $VT_DIR/state/pg -U vantage -d vantage -Atc \
	'SELECT attempts FROM alert_outbox WHERE id = ${slow_ids[0]}')\" -ge 1 ]"
err=$(row "${slow_ids[0]}" last_error)
case $err in *"imed out"*) ;; *) vt_fail "slow channel last_error: \"$err\"" ;; esac
vt_hook_mode slow ok
vt_wait_for 30 "the slow channel's alerts after recovery" bash -c "[ \"\$(psql -X -q -h $VT_DIR/state/pg -U vantage -d vantage -Atc \
	\"SELECT count(*) FROM alert_outbox WHERE sent_at IS NULL AND id IN ($slow_list)\")\" = 0 ]"
got=$(vt_hook_received slow | jq -r '[.[] | select(.status == 200) | .body.summary] | join(",")')
[ "$got" = "slow-1,slow-2,slow-3" ] || vt_fail "slow receiver accepted \"$got\""
vt_ok "the hung channel delivered all three, in order, once it answered ($err)"

# --- (b) a receiver down for ~20 s: backoff, then exactly once ---
flaky_ids=()
inc_b1=$(new_incident)
inc_b2=$(new_incident)
for i in 1 2 3; do
	flaky_ids+=("$(add_alert "$inc_b1" flaky outage "flaky-$i")")
done
flaky_ids+=("$(add_alert "$inc_b2" flaky outage "flaky-4")")
flaky_ids+=("$(add_alert "$inc_b2" flaky recovery "flaky-5")")
flaky_list=$(IFS=,; echo "${flaky_ids[*]}")
head=${flaky_ids[0]}
# Every next_attempt_at the head row gets while the receiver is down.
declare -a next_at=()
down_until=$(($(date +%s) + 20))
while [ "$(date +%s)" -lt "$down_until" ]; do
	n=$(vt_psql "SELECT extract(epoch FROM next_attempt_at) FROM alert_outbox WHERE id = $head AND attempts > 0")
	if [ -n "$n" ] && { [ ${#next_at[@]} -eq 0 ] || [ "${next_at[-1]}" != "$n" ]; }; then
		next_at+=("$n")
	fi
	sleep 0.1
done
attempts=$(row "$head" attempts)
[ "$attempts" -ge 4 ] || vt_fail "only $attempts attempts in 20 s of downtime"
[ ${#next_at[@]} -ge 4 ] || vt_fail "saw only ${#next_at[@]} retry times: ${next_at[*]}"
spacing=$(printf '%s\n' "${next_at[@]}" | awk 'NR > 1 { printf "%s%.2f", sep, $1 - prev; sep = " " } { prev = $1 }')
awk -v s="$spacing" 'BEGIN { n = split(s, d, " "); for (i = 2; i <= n; i++) if (d[i] <= d[i - 1]) exit 1 }' ||
	vt_fail "retry spacing does not grow: $spacing s"
[ "$(vt_psql "SELECT count(*) FROM incident_events WHERE incident_id = $inc_b1 AND kind = 'alert_failed'")" = 1 ] ||
	vt_fail "the timeline must hold one alert_failed for the head row, not one per attempt"
# The rows behind the head in the same incident waited; the other incident's
# first row was tried on its own schedule.
[ "$(row "${flaky_ids[1]}" attempts)" = 0 ] || vt_fail "a later alert of the incident overtook its head"
[ "$(row "${flaky_ids[3]}" attempts)" -ge 1 ] || vt_fail "the second incident's alert was never tried"
vt_ok "receiver down 20 s: $attempts attempts, spacing between retries ${spacing} s"

vt_hook_mode flaky ok
vt_wait_for 60 "the flaky channel's alerts after recovery" bash -c "[ \"\$(psql -X -q -h $VT_DIR/state/pg -U vantage -d vantage -Atc \
	\"SELECT count(*) FROM alert_outbox WHERE sent_at IS NULL AND id IN ($flaky_list)\")\" = 0 ]"
accepted=$(vt_hook_received flaky | jq -r '[.[] | select(.status == 200) | .body.summary] | sort | join(",")')
[ "$accepted" = "flaky-1,flaky-2,flaky-3,flaky-4,flaky-5" ] ||
	vt_fail "after recovery the receiver accepted \"$accepted\"; wanted each of the 5 alerts exactly once"
order=$(vt_hook_received flaky | jq -r '[.[] | select(.status == 200) | .body.summary | select(. == "flaky-4" or . == "flaky-5")] | join(",")')
[ "$order" = "flaky-4,flaky-5" ] || vt_fail "the recovery overtook its outage: $order"
[ "$(vt_psql "SELECT count(*) FROM incident_events WHERE incident_id IN ($inc_b1, $inc_b2) AND kind = 'alert_sent'")" = 5 ] ||
	vt_fail "the timeline does not hold one alert_sent per delivered alert"
[ "$(vt_psql "SELECT count(*) FROM alert_outbox WHERE id IN ($flaky_list) AND last_error IS NOT NULL")" = 0 ] ||
	vt_fail "last_error kept after a successful delivery"
vt_ok "after recovery all 5 alerts delivered exactly once, each incident in order"

# --- (c) exec channel ---
inc_c=$(new_incident)
exec_id=$(add_alert "$inc_c" script outage "exec-1")
vt_wait_for 15 "the exec alert" test -s "$VT_DIR/exec.out"
line=$(head -n 1 "$VT_DIR/exec.out")
[ "$(jq -r .channel <<<"$line")" = script ] || vt_fail "exec stdin: $line"
[ "$(jq -r .incident_id <<<"$line")" = "$inc_c" ] || vt_fail "exec stdin: $line"
[ "$(jq -r .summary <<<"$line")" = exec-1 ] || vt_fail "exec stdin: $line"
vt_wait_for 10 "the exec alert marked sent" bash -c "[ -n \"\$(psql -X -q -h $VT_DIR/state/pg -U vantage -d vantage -Atc \
	'SELECT sent_at FROM alert_outbox WHERE id = $exec_id')\" ]"
vt_ok "exec channel got the event JSON on stdin"

# --- (d) PagerDuty format ---
inc_d=$(new_incident)
add_alert "$inc_d" pd outage "pd-1" >/dev/null
pd_last=$(add_alert "$inc_d" pd recovery "pd-2")
vt_wait_for 15 "the PagerDuty alerts" bash -c "[ -n \"\$(psql -X -q -h $VT_DIR/state/pg -U vantage -d vantage -Atc \
	'SELECT sent_at FROM alert_outbox WHERE id = $pd_last')\" ]"
pd=$(vt_hook_received fast | jq -c '[.[] | select(.path == "/pd") | .body]')
[ "$(jq length <<<"$pd")" = 2 ] || vt_fail "PagerDuty receiver got: $pd"
[ "$(jq -r '.[0].event_action' <<<"$pd")" = trigger ] || vt_fail "first PagerDuty event: $pd"
[ "$(jq -r '.[0].dedup_key' <<<"$pd")" = "vantage-incident-$inc_d" ] || vt_fail "dedup_key: $pd"
[ "$(jq -r '.[0].routing_key' <<<"$pd")" = TESTKEY ] || vt_fail "routing_key: $pd"
[ "$(jq -r '.[0].payload.severity' <<<"$pd")" = critical ] || vt_fail "severity: $pd"
[ "$(jq -r '.[0].payload.custom_details.summary' <<<"$pd")" = pd-1 ] || vt_fail "custom_details: $pd"
[ "$(jq -r '.[1].event_action' <<<"$pd")" = resolve ] || vt_fail "second PagerDuty event: $pd"
[ "$(jq -r '.[1].dedup_key' <<<"$pd")" = "vantage-incident-$inc_d" ] || vt_fail "resolve dedup_key: $pd"
vt_ok "PagerDuty trigger then resolve with dedup_key vantage-incident-$inc_d"

# --- (e) a channel that is not configured, then added by a reload ---
inc_e=$(new_incident)
ghost_id=$(add_alert "$inc_e" ghost outage "ghost-1")
vt_wait_for 15 "the ghost alert marked" bash -c "[ \"\$(psql -X -q -h $VT_DIR/state/pg -U vantage -d vantage -Atc \
	'SELECT last_error FROM alert_outbox WHERE id = $ghost_id')\" = 'channel not configured' ]"
[ "$(row "$ghost_id" attempts)" = 0 ] || vt_fail "an unconfigured channel counted as an attempt"
[ -z "$(row "$ghost_id" sent_at)" ] || vt_fail "an alert for an unconfigured channel was marked sent"
grep -q 'for channel "ghost"' "$VT_DIR/aggregator.log" || vt_fail "no warning about channel \"ghost\""
cat >>"$VT_DIR/vantage.yml" <<YML
  - { name: ghost, webhook: { url: "http://127.0.0.1:$HOOK_PORT_fast/ghost" }, on: [outage] }
YML
kill -HUP "$VT_AGG_PID"
vt_wait_for 15 "the ghost alert after the reload" bash -c "[ -n \"\$(psql -X -q -h $VT_DIR/state/pg -U vantage -d vantage -Atc \
	'SELECT sent_at FROM alert_outbox WHERE id = $ghost_id')\" ]"
[ "$(vt_hook_received fast | jq '[.[] | select(.path == "/ghost")] | length')" = 1 ] || vt_fail "ghost receiver"
vt_ok "an alert for a missing channel waits, and goes out when a reload adds the channel"

kill -0 "$VT_AGG_PID" || vt_fail "the aggregator died"
! grep -q 'database error' "$VT_DIR/aggregator.log" || vt_fail "database errors in the log: $(grep 'database error' "$VT_DIR/aggregator.log" | head -n 3)"
echo "METRIC alert_fast_ms_with_hung_neighbour=$fast_ms retry_spacing_s=\"$spacing\" attempts_in_20s=$attempts"
