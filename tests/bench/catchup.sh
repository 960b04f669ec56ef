#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Catch-up against live results (DESIGN.md §5, backpressure): while one
# agent resends a large backlog, how late are the other agents' live
# results stored, and how fast is the backlog drained?
#
# Two live agents (eu-west, us-east) probe 10 targets every second.  A third
# agent, "bulk" (ap-south), probes 200 targets of its own every 250 ms.
# Its key is not admitted: refused at every handshake, it probes from a
# cached configuration and spools everything for BENCH_BACKLOG_S (default
# 60 s).  Then its key is admitted; it connects and resends its backlog
# while the live agents go on.
#
# Sampled every 0.1 s, for 10 s before the admission and during the
# catch-up:
#   live lag   now() - the newest started_at of a live target in the store,
#              which includes the 1 s interval itself and the 200 ms batch
#              delay: compare during against before, not against zero
#   api        time of GET /api/v1/status (the aggregator's loop is free)
# and the catch-up: the backlog (bulk results probed while cut off), the
# time from its connection until its newest stored result is less than
# 1.5 s old (its live results flow again), and results/s.
# Prints METRIC lines; asserts no timing.  It fails only if the bulk agent
# does not catch up within 120 s, or a result is lost or stored twice.
. "$(dirname "$0")/../lib/common.sh"
vt_setup
[ "$VT_INSECURE" != 1 ] || vt_skip "the bench holds the backlog back by refusing a key: needs CurveZMQ"

BACKLOG_S=${BENCH_BACKLOG_S:-60}
N_BULK=200

vt_start_target -q
url=http://127.0.0.1:$VT_TARGET_PORT
targets=""
for i in $(seq -w 1 10); do
	targets+="  - { name: live-$i, http: { url: \"$url/live/$i/\" }, regions: [eu-west, us-east] }"$'\n'
done
for i in $(seq -w 1 $N_BULK); do
	targets+="  - { name: bulk-$i, http: { url: \"$url/bulk/$i/\" }, interval: 250ms, regions: [ap-south] }"$'\n'
done
vt_write_conf 1s 1s "$targets"
vt_start_aggregator
vt_start_agent eu-west eu-west 127.0.0.1
vt_start_agent us-east us-east 127.0.0.2
# The bulk agent must probe while it is refused, from a configuration it
# never received: an admitted agent of its region ("seed") receives it,
# and its cache (config.pb in the spool) is copied into bulk's new spool.
# (Revoking a key instead would make every agent reconnect, at the cut-off
# and again at the re-admission: the aggregator rebinds.)
vt_start_agent seed ap-south 127.0.0.3
cached() { [ -s "$VT_DIR/spool-seed/config.pb" ]; }
vt_wait_for 30 "the seed agent's configuration" cached
mkdir -m 0700 "$VT_DIR/spool-bulk"
cp "$VT_DIR/spool-seed/config.pb" "$VT_DIR/spool-bulk/"
vt_stop_agent seed >/dev/null
VT_AGENT_ADMIT=0 vt_start_agent bulk ap-south 127.0.0.3
t_cut=$(date +%s.%N)
refused() { grep -q 'handshake with the aggregator .* failed' "$VT_DIR/agent-bulk.log"; }
vt_wait_for 30 "the bulk agent to be refused" refused

# lag_ms PATTERN: how old the newest stored result of those targets is.
lag_ms() {
	vt_psql "SELECT (extract(epoch FROM now() - max(r.started_at)) * 1000)::bigint
		FROM results r JOIN targets t ON t.id = r.target_id WHERE t.key LIKE '$1'"
}
fresh() { local l; l=$(lag_ms "$1"); [ -n "$l" ] && [ "$l" -lt "$2" ]; }
live_fresh() { fresh 'live-%' 3000; }
api_ms() {
	curl -s -o /dev/null -w '%{time_total}' --max-time 10 "http://$VT_HTTP/api/v1/status" |
		awk '{ printf "%d\n", $1 * 1000 }'
}
# sample SECONDS FILE [UNTIL-COMMAND]: "lag_ms api_ms" lines every 0.1 s.
sample() {
	local end=$((SECONDS + $1))
	while [ $SECONDS -lt $end ]; do
		echo "$(lag_ms 'live-%') $(api_ms)" >>"$2"
		[ -n "${3:-}" ] && $3 && break
		sleep 0.1
	done
}
# stats FILE COLUMN NAME: p50, p95 and max of a column.
stats() {
	cut -d' ' -f"$2" "$1" | grep -E '^[0-9]+$' | sort -n | awk -v name="$3" \
		'{ v[NR] = $1 } END { if (NR == 0) { print "METRIC " name " samples=0"; exit }
		  printf "METRIC %s_p50=%d %s_p95=%d %s_max=%d samples=%d\n", name, v[int((NR + 1) / 2)],
		  name, v[int(NR * 0.95 + 0.999)], name, v[NR], NR }'
}
vt_wait_for 30 "live results in the store" live_fresh
vt_log "bulk agent refused; it spools for ${BACKLOG_S} s"
sleep $((BACKLOG_S - 10))
sample 10 "$VT_DIR/before"

cp "$VT_DIR/keys/bulk.pub" "$VT_DIR/keys/agents/bulk.pub"
t_admit=$(date +%s.%N)
connected() { grep -q 'connected to the aggregator at' "$VT_DIR/agent-bulk.log"; }
vt_wait_for 30 "the bulk agent to connect" connected
t_conn=$(date -d "$(grep -m 1 'connected to the aggregator at' "$VT_DIR/agent-bulk.log" | cut -c1-27)" +%s.%N)
vt_log "bulk key admitted; it connected"
bulk_fresh() { fresh 'bulk-%' 1500; }
sample 120 "$VT_DIR/during" bulk_fresh
bulk_fresh || vt_fail "the bulk agent's newest results were not stored within 120 s of its connection"
t_done=$(date +%s.%N)
backlog=$(vt_psql "SELECT count(*) FROM results r JOIN agents a ON a.id = r.agent_id
	WHERE a.name = 'bulk' AND r.started_at BETWEEN to_timestamp($t_cut) AND to_timestamp($t_conn)")

stats "$VT_DIR/before" 1 live_lag_before_ms
stats "$VT_DIR/during" 1 live_lag_during_ms
stats "$VT_DIR/before" 2 api_before_ms
stats "$VT_DIR/during" 2 api_during_ms
awk -v a="$t_admit" -v b="$t_conn" -v c="$t_done" -v n="$backlog" 'BEGIN {
	printf "METRIC catchup_backlog=%d connect_after_admit_s=%.1f catchup_s=%.1f catchup_results_per_s=%d\n",
	    n, b - a, c - b, n / (c - b) }'
vt_check_agent bulk
vt_ok "bulk: all $VT_ROWS results stored exactly once (a backlog of $backlog)"
for r in eu-west us-east; do
	vt_check_agent "$r"
	vt_ok "$r: all $VT_ROWS results stored exactly once"
done
