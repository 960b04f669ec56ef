#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Detection latency (DESIGN.md §6, fast confirmation): how long after the
# first failing probe of a target its outage is recorded.  Five regions
# r1..r5, one agent each, bound to 127.0.0.1 .. 127.0.0.5 (the fake target
# tells them apart by address); interval 30 s, timeout 3 s, confirm 2,
# confirm_span 2 s, retry_interval 1 s, quorum majority (3 of 5).
# BENCH_REPS targets (default 10) go from healthy to answering 503
# everywhere and BENCH_REPS to hanging everywhere, each on its own path,
# flipped one at a time every 2-3 s after a healthy round, so the
# repetitions run side by side and meet the agents' schedules at different
# phases.  Two healthy targets are controls.
#
# Per target, from the store:
#   latency    incidents.detected_at - the earliest started_at of a failing
#              result of that target (cross-checked with incidents.started_at)
#   from flip  incidents.detected_at - the moment its rule was put in place
# and, to explain the latency, its parts: the first failing probe's duration,
# the wait from its end to the first PROBE_NOW probe, the moment the third
# region had `confirm` failures in a row (the earliest the quorum could
# hold), and the aggregator's lag from there to detected_at.
#
# Prints METRIC lines (min/median/max) and adds a dated row per case to
# tests/bench/RESULTS.md (BENCH_RESULTS=0: do not write it).  Asserts no
# timing: it fails only if an outage is not detected within 2 intervals +
# 30 s of its flip, or the counts are wrong (exactly one outage per failing
# target, no incident for the controls).
. "$(dirname "$0")/../lib/common.sh"
vt_setup

REPS=${BENCH_REPS:-10}
INTERVAL=30
TIMEOUT=3
CONFIRM=2
SPAN=2
RETRY=1
NREGIONS=5
QUORUM=$((NREGIONS / 2 + 1))
BOUND=$((2 * INTERVAL + 30)) # seconds from a flip to its outage, at most
RESULTS_MD=${BENCH_RESULTS_FILE:-$TOP/tests/bench/RESULTS.md}
[ "$REPS" -ge 1 ] 2>/dev/null || vt_fail "BENCH_REPS must be a positive integer"

vt_start_target -q
url=http://127.0.0.1:$VT_TARGET_PORT

fails=() hangs=() controls=(ok-1 ok-2)
targets=""
for i in $(seq -w 1 "$REPS"); do
	[ ${#i} -ge 2 ] || i=0$i
	fails+=("fail-$i")
	hangs+=("hang-$i")
	# Distinct paths, none a prefix of another (rules match by prefix).
	targets+="  - { name: fail-$i, http: { url: \"$url/fail/$i/\" } }"$'\n'
	targets+="  - { name: hang-$i, http: { url: \"$url/hang/$i/\" } }"$'\n'
done
for c in "${controls[@]}"; do
	targets+="  - { name: $c, http: { url: \"$url/$c/\" } }"$'\n'
done
all=("${fails[@]}" "${hangs[@]}" "${controls[@]}")

VT_ZMQ_PORT=$(vt_free_port)
VT_HTTP_PORT=$(vt_free_port)
while [ "$VT_HTTP_PORT" = "$VT_ZMQ_PORT" ]; do
	VT_HTTP_PORT=$(vt_free_port)
done
VT_ZMQ=tcp://127.0.0.1:$VT_ZMQ_PORT
VT_HTTP=127.0.0.1:$VT_HTTP_PORT
cat >"$VT_DIR/vantage.yml" <<YML
listen: { zmq: "$VT_ZMQ", http: "$VT_HTTP" }
state_dir: $VT_DIR/state
security: { insecure: true }
regions:
  - { name: r1, domain: aws }
  - { name: r2, domain: gcp }
  - { name: r3, domain: hetzner }
  - { name: r4, domain: aws }
  - { name: r5, domain: ovh }
defaults: { interval: ${INTERVAL}s, timeout: ${TIMEOUT}s, confirm: $CONFIRM, confirm_span: ${SPAN}s, retry_interval: ${RETRY}s }
targets:
$targets
YML

# -v: the aggregator logs each ProbeNow it sends (kept in the log below).
vt_start aggregator "$BIN/vantage-aggregator" -d -v -f "$VT_DIR/vantage.yml"
VT_AGG_PID=$VT_LAST_PID
vt_wait_for 60 "the aggregator API" bash -c \
	"kill -0 $VT_AGG_PID || exit 0; curl -sf http://$VT_HTTP/healthz"
kill -0 "$VT_AGG_PID" 2>/dev/null || vt_fail "the aggregator exited at start"

for n in $(seq 1 $NREGIONS); do
	cat >"$VT_DIR/agent-a$n.yml" <<YML
name: a$n
region: r$n
aggregator: { endpoint: "$VT_ZMQ" }
insecure: true
spool_dir: $VT_DIR/spool-a$n
source_ip: 127.0.0.$n
YML
	vt_start "agent-a$n" "$BIN/vantage-agent" -d -f "$VT_DIR/agent-a$n.yml"
done

# One healthy round first: every target UP (each agent probes each target
# once per interval, at a phase of its own).
all_up() {
	local k s
	for k in "${all[@]}"; do
		s=$(curl -sf "http://$VT_HTTP/api/v1/targets/$k" | jq -r .state) || return 1
		[ "$s" = up ] || return 1
	done
}
vt_log "waiting for a healthy round of ${#all[@]} targets"
vt_wait_for $((INTERVAL + 45)) "every target to be UP" all_up
vt_ok "all ${#all[@]} targets UP in ${NREGIONS} regions"

# Flip the failing targets one at a time, 503 and hang interleaved, every
# 2, 2.5 or 3 s.  PUT replaces the whole rule set, so it grows by one rule.
rules=()
flips=()
order=()
for i in $(seq 0 $((REPS - 1))); do
	order+=("${fails[$i]}" "${hangs[$i]}")
done
pauses=(2 2.5 3)
# The healthy round ends at a moment set by the agents' grids, so without
# this offset every run would flip at the same phases.
offset=$((RANDOM % 10)).$((RANDOM % 10))
vt_log "flipping ${#order[@]} targets, the first after ${offset}s"
sleep "$offset"
n=0
for k in "${order[@]}"; do
	i=${k#*-}
	case $k in
	fail-*) rules+=("{\"path\":\"/fail/$i/\",\"action\":\"fail\",\"status\":503}") ;;
	hang-*) rules+=("{\"path\":\"/hang/$i/\",\"action\":\"hang\"}") ;;
	esac
	body="[$(
		IFS=,
		echo "${rules[*]}"
	)]"
	t0=$(date +%s.%N)
	vt_target_rules "$body" || vt_fail "PUT /_fake/rules for $k"
	flips+=("('$k', '${k%%-*}', to_timestamp($t0))")
	vt_log "flipped $k"
	n=$((n + 1))
	[ "$n" -lt ${#order[@]} ] && sleep "${pauses[$((n % 3))]}"
done
last_flip=$(date +%s)

# Record the flips next to the results (a throwaway table in the test's
# own cluster) and wait, bounded, for every outage.
vt_psql "CREATE TABLE bench_flip (key text PRIMARY KEY, kind text NOT NULL, flipped_at timestamptz NOT NULL);
	INSERT INTO bench_flip VALUES $(
	IFS=,
	echo "${flips[*]}"
);"
detected_count() {
	vt_psql "SELECT count(DISTINCT i.target_id) FROM incidents i JOIN targets t ON t.id = i.target_id
		JOIN bench_flip f ON f.key = t.key WHERE i.kind = 'outage'"
}
want=${#order[@]}
while [ "$(detected_count)" -lt "$want" ] && [ "$(date +%s)" -le $((last_flip + BOUND)) ]; do
	sleep 0.5
done
got=$(detected_count)
if [ "$got" -lt "$want" ]; then
	missing=$(vt_psql "SELECT string_agg(f.key, ' ' ORDER BY f.key) FROM bench_flip f WHERE NOT EXISTS
		(SELECT 1 FROM incidents i JOIN targets t ON t.id = i.target_id WHERE t.key = f.key AND i.kind = 'outage')")
	vt_fail "outages not detected within ${BOUND}s of their flip: $missing"
fi

# Counts: exactly one outage per failing target, none elsewhere, and no
# incident of any kind for the controls.
outages=$(vt_psql "SELECT count(*) FROM incidents WHERE kind = 'outage'")
[ "$outages" = "$want" ] || vt_fail "$outages outages recorded for $want failing targets: $(vt_psql \
	"SELECT string_agg(t.key || ':' || i.kind || ':' || i.state, ' ') FROM incidents i JOIN targets t ON t.id = i.target_id")"
ctl=$(vt_psql "SELECT count(*) FROM incidents i JOIN targets t ON t.id = i.target_id
	WHERE t.key IN ('ok-1', 'ok-2')")
[ "$ctl" = 0 ] || vt_fail "$ctl incidents for the healthy controls"
late=$(vt_psql "SELECT coalesce(string_agg(f.key, ' '), '') FROM bench_flip f JOIN targets t ON t.key = f.key
	JOIN incidents i ON i.target_id = t.id AND i.kind = 'outage'
	WHERE i.detected_at > f.flipped_at + interval '$BOUND s'")
[ -z "$late" ] || vt_fail "detected more than ${BOUND}s after their flip: $late"
vt_ok "$outages outages for $want failing targets, none for the controls"

# Per target: the figures and their parts (seconds).  A region's vote is
# DOWN once its agent has `confirm` failures in a row spanning
# confirm_span; the quorum could hold from the end of the QUORUM-th
# region's confirming probe.
vt_psql "CREATE VIEW bench_det AS
WITH f AS (
	SELECT f.key, f.kind, f.flipped_at, t.id FROM bench_flip f JOIN targets t ON t.key = f.key
), d AS (
	SELECT f.id, r.agent_id, r.trigger, r.started_at,
		r.started_at + r.total_us * interval '1 microsecond' AS ended_at,
		row_number() OVER (PARTITION BY f.id, r.agent_id ORDER BY r.started_at) AS nth
	FROM f JOIN results r ON r.target_id = f.id
	WHERE r.outcome = 2 AND r.started_at > f.flipped_at - interval '0.5 s'
), first AS (
	SELECT DISTINCT ON (id) id, started_at, ended_at FROM d ORDER BY id, started_at
), confirmed AS (
	SELECT DISTINCT ON (id, agent_id) id, agent_id, ended_at FROM d
	WHERE nth >= $CONFIRM AND started_at >= (SELECT min(s.started_at) FROM d s
		WHERE s.id = d.id AND s.agent_id = d.agent_id) + interval '$SPAN s'
	ORDER BY id, agent_id, started_at
), vote AS (
	SELECT id, (array_agg(ended_at ORDER BY ended_at))[$QUORUM] AS quorum_at
	FROM confirmed GROUP BY id
), pn AS (
	SELECT id, min(started_at) AS pn_at FROM d WHERE trigger = 2 GROUP BY id
), trig AS (
	SELECT d.id, count(*) FILTER (WHERE trigger = 0) AS sched, count(*) FILTER (WHERE trigger = 1) AS retry,
		count(*) FILTER (WHERE trigger = 2) AS pnow
	FROM d JOIN incidents i ON i.target_id = d.id AND i.kind = 'outage'
	WHERE d.started_at <= i.detected_at GROUP BY d.id
)
SELECT f.key, f.kind,
	extract(epoch FROM i.detected_at - first.started_at)::numeric(8,3) AS latency,
	extract(epoch FROM i.detected_at - f.flipped_at)::numeric(8,3) AS from_flip,
	extract(epoch FROM first.started_at - f.flipped_at)::numeric(8,3) AS flip_to_first,
	extract(epoch FROM first.ended_at - first.started_at)::numeric(8,3) AS first_probe,
	extract(epoch FROM pn.pn_at - first.ended_at)::numeric(8,3) AS to_probe_now,
	extract(epoch FROM vote.quorum_at - first.started_at)::numeric(8,3) AS quorum_possible,
	extract(epoch FROM i.detected_at - vote.quorum_at)::numeric(8,3) AS agg_lag,
	abs(extract(epoch FROM i.started_at - first.started_at)) < 0.000002 AS started_ok,
	trig.sched, trig.retry, trig.pnow
FROM f JOIN incidents i ON i.target_id = f.id AND i.kind = 'outage'
	JOIN first ON first.id = f.id LEFT JOIN vote ON vote.id = f.id
	LEFT JOIN pn ON pn.id = f.id LEFT JOIN trig ON trig.id = f.id"

echo "per target (seconds; triggers = failing results up to detection: scheduled/retry/probe_now):"
printf '%-8s %8s %9s %9s %9s %9s %9s %8s %s %s\n' target latency from_flip to_first 1st_probe to_pnow quorum_ok agg_lag \
	started_ok triggers
vt_psql "SELECT key, latency, from_flip, flip_to_first, first_probe, coalesce(to_probe_now::text, '-'),
	coalesce(quorum_possible::text, '-'), coalesce(agg_lag::text, '-'), started_ok, sched || '/' || retry || '/' || pnow
	FROM bench_det ORDER BY kind, key" | tr '|' ' ' |
	while read -r k a b c d e f g h t; do
		printf '%-8s %8s %9s %9s %9s %9s %9s %8s %10s %s\n' "$k" "$a" "$b" "$c" "$d" "$e" "$f" "$g" "$h" "$t"
	done
bad_started=$(vt_psql "SELECT coalesce(string_agg(key, ' '), '') FROM bench_det WHERE NOT started_ok")
[ -z "$bad_started" ] && vt_ok "incidents.started_at is the first failing probe for every target" ||
	echo "NOTE: incidents.started_at differs from the first failing probe for: $bad_started"
pnow_sent=$(grep -c 'asked the other agents to probe it now' "$VT_DIR/aggregator.log" || true)
echo "ProbeNow requests logged by the aggregator: $pnow_sent"

# min/median/max per case, of the latency, the time from the flip, and the parts.
stats() { # COLUMN KIND -> "min median max"
	vt_psql "SELECT min($1)::numeric(8,3), (percentile_cont(0.5) WITHIN GROUP (ORDER BY $1))::numeric(8,3),
		max($1)::numeric(8,3) FROM bench_det WHERE kind = '$2'" | tr '|' ' '
}
declare -A S
for kind in fail hang; do
	for col in latency from_flip first_probe to_probe_now quorum_possible agg_lag; do
		S[$kind.$col]=$(stats "$col" "$kind")
	done
	name=$([ $kind = fail ] && echo 503 || echo hang)
	read -r a b c <<<"${S[$kind.latency]}"
	echo "METRIC detection_${name}_s min=$a median=$b max=$c n=$REPS"
	read -r a b c <<<"${S[$kind.from_flip]}"
	echo "METRIC detection_${name}_from_flip_s min=$a median=$b max=$c"
	read -r a b c <<<"${S[$kind.quorum_possible]}"
	echo "METRIC detection_${name}_quorum_possible_s min=$a median=$b max=$c"
	read -r a b c <<<"${S[$kind.agg_lag]}"
	echo "METRIC detection_${name}_aggregator_lag_s min=$a median=$b max=$c"
done

# tests/bench/RESULTS.md: this script owns the part between its markers
# and keeps the rows of earlier runs (newest first, at most 20).
if [ "${BENCH_RESULTS:-1}" = 1 ]; then
	day=$(date -u '+%Y-%m-%d %H:%M')
	cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n 1 || true)
	machine="$(nproc) cores${cpu:+ ($cpu)}, loopback"
	mm() { read -r a b c <<<"$1"; echo "$a / **$b** / $c"; }
	med() { read -r a b c <<<"$1"; echo "$b"; }
	newrows=""
	for kind in fail hang; do
		if [ $kind = fail ]; then case=503 goal="≤ 3"; else case="hang (timeout ${TIMEOUT} s)" goal="≤ 8"; fi
		newrows+="| $day | $case | $REPS | $(mm "${S[$kind.latency]}") | $goal | $(mm "${S[$kind.from_flip]}") |"
		newrows+=" $(med "${S[$kind.first_probe]}") | $(med "${S[$kind.to_probe_now]}") |"
		newrows+=" $(med "${S[$kind.quorum_possible]}") | $(med "${S[$kind.agg_lag]}") | $machine |"$'\n'
	done
	old=""
	if [ -f "$RESULTS_MD" ]; then
		old=$(sed -n '/^<!-- detection:rows -->$/,/^<!-- detection:end -->$/p' "$RESULTS_MD" | grep '^| 2' || true)
	fi
	rows=$(printf '%s%s\n' "$newrows" "$old" | grep . | head -n 20 || true)
	cat >"$VT_DIR/section.md" <<MD
<!-- detection:begin (written by tests/bench/detection.sh; edit outside the markers) -->
## Detection latency (tests/bench/detection.sh)

Latency = \`incidents.detected_at\` − \`started_at\` of the first failing probe of
the target (DESIGN.md §6). Setup: aggregator with embedded PostgreSQL, 5 regions
(r1..r5, domains aws/gcp/hetzner/aws/ovh), one agent per region bound to
127.0.0.1 .. 127.0.0.5, the fake target (\`build/fakes/target\`) on loopback;
interval 30 s, timeout 3 s, confirm 2, confirm_span 2 s, retry_interval 1 s, quorum
majority (3 of 5).
After one healthy round, $REPS targets are switched to answer 503 to every region and
$REPS to hang, one target every 2–3 s (503 and hang interleaved), so the repetitions
run side by side and meet the agents' schedules at varied phases. Figures in seconds,
min / **median** / max over the targets of one run; the parts are medians:
*1st probe* = duration of the first failing probe, *→ProbeNow* = from its end to the
start of the first PROBE_NOW probe, *quorum possible* = from the first failing probe
to the end of the probe that gave the third region its second failure in a row
spanning 2 s (rows before 2026-12-03: its second failure, no span),
*agg. lag* = from then to \`detected_at\`. *From flip* adds the wait for the first
scheduled probe after the rule was put in place (the earliest of the five agents'
next scheduled probes: at most one interval).

These are timings on a shared machine (other work may run at the same time); they
are measurements, not asserted by the bench.

| date (UTC) | case | n | latency min / **median** / max | goal (median) | from flip min / **median** / max | 1st probe | → ProbeNow | quorum possible | agg. lag | machine |
| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
<!-- detection:rows -->
$rows
<!-- detection:end -->
MD
	if [ -f "$RESULTS_MD" ] && grep -q '^<!-- detection:begin' "$RESULTS_MD"; then
		awk -v sec="$VT_DIR/section.md" '
			/^<!-- detection:begin/ { while ((getline l < sec) > 0) print l; skip = 1; next }
			/^<!-- detection:end -->$/ { if (skip) { skip = 0; next } }
			!skip { print }' "$RESULTS_MD" >"$VT_DIR/RESULTS.md"
	else
		{
			if [ -f "$RESULTS_MD" ]; then
				cat "$RESULTS_MD"
				echo
			else
				printf '# Benchmark results\n\nFigures from `make bench` (tests/bench/*.sh).\n\n'
			fi
			cat "$VT_DIR/section.md"
		} >"$VT_DIR/RESULTS.md"
	fi
	cat "$VT_DIR/RESULTS.md" >"$RESULTS_MD"
	vt_log "wrote $RESULTS_MD"
fi
vt_ok "detection latency measured over $REPS targets per case"
