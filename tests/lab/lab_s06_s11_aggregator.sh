#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Lab scenarios 6 and 11 (TESTPLAN.md §3): the aggregator goes away while
# five agents stream results and an outage is open, in two phases of one run
# (both concern the whole aggregator, so they cannot run side by side).
#
# 6: SIGKILL during ingest, started again 30 s later.  Nothing is lost and
# nothing duplicated (the agents resend from the acked_seq of the Welcome,
# the store skips what it already has), and the open outage is restored
# from the database: the same incident continues.
#
# 11: SIGSTOP for 30 s, then SIGCONT.  The agents stop sending once their
# window of unacknowledged batches is full and hold their results: their
# memory stays bounded and they do not spin.  After SIGCONT they resume,
# everything is stored once, and the outage is still the same incident
# (30 s of silence must not read as the agents, or the target, gone).
. "$(dirname "$0")/lib/lab.sh"

T=s06
INTERVAL_S=1
LOAD_N=10 # targets that keep ingest busy, every 500 ms from every region
AWAY_S=30
AGENT_RSS_GROWTH_KB=$((32 * 1024)) # generous: 30 s of results are ~100 kB
AGG_RSS_GROWTH_KB=$((64 * 1024))
AGENT_CPU_MAX_S=10 # CPU an agent may use in the 30 s the aggregator is stopped

lab_up
lab_start_target "[{\"path\": \"/$T\", \"action\": \"fail\", \"status\": 503}]"
targets="  - { name: $T, http: { url: \"$LAB_TGT_URL/$T\" } }"
for i in $(seq -w 1 $LOAD_N); do
	targets+=$'\n'"  - { name: load-$i, http: { url: \"$LAB_TGT_URL/load/$i\" }, interval: 500ms, timeout: 400ms }"
done
lab_write_conf ${INTERVAL_S}s 1s "$targets"
lab_start_aggregator
lab_start_agents

outage_is() { [ "$(lab_incident_state "$T" outage)" = "$1" ]; }
lab_wait_for 30 "an outage of $T" outage_is open
id=$(lab_incident_id "$T" outage)
lab_log "outage $id of $T open"
all_caught_up() { lab_caught_up "${LAB_REGIONS[@]}"; }
lab_wait_for 20 "every agent acknowledged" all_caught_up
# The outage continues as incident $id, nothing else opened.
same_outage() {
	local what=$1 state
	state=$(lab_api "/api/v1/targets/$T" | jq -r .state)
	[ "$state" = down ] || lab_fail "$what: $T is \"$state\", want down (outage $id continues)"
	[ "$(lab_psql "SELECT count(*) FROM incidents WHERE id <> $id")" = 0 ] ||
		lab_fail "$what: incidents besides outage $id: $(lab_psql "SELECT id, kind, state FROM incidents")"
	outage_is open || lab_fail "$what: outage $id is $(lab_incident_state "$T" outage), want open"
}
all_down() { lab_api "/api/v1/targets/$T" | jq -e '.state == "down" and ([.regions[] | select(.vote == "down")] | length) == 5'; }

# ---- scenario 6: SIGKILL during ingest, back after 30 s ----
ingesting() {
	local a b
	a=$(lab_psql "SELECT count(*) FROM results")
	lab_sleep 0.5
	b=$(lab_psql "SELECT count(*) FROM results")
	[ "$b" -gt "$a" ]
}
lab_wait_for 10 "s06: results being stored" ingesting
rows_before=$(lab_psql "SELECT count(*) FROM results")
# The restarted aggregator knows no heartbeat yet: caught up is then
# whatever the agents report after reconnecting.
LAB_P0=()
lab_signal aggregator KILL
wait "$LAB_AGG_PID" 2>/dev/null || true
t_kill=$(date +%s.%N)
lab_log "s06: aggregator killed with SIGKILL during ingest ($rows_before rows stored); back in ${AWAY_S}s"
declare -A W=()
for r in "${LAB_REGIONS[@]}"; do
	W[$r]=$(lab_welcomes "$r")
done
lab_sleep "$AWAY_S"
lab_start_aggregator
t_back=$(date +%s.%N)
grep -q 'open incidents restored' "$LAB_DIR/aggregator.log" ||
	lab_fail "s06: the restarted aggregator did not log restoring the open incident"
all_welcomed() {
	local r
	for r in "${LAB_REGIONS[@]}"; do
		[ "$(lab_welcomes "$r")" -gt "${W[$r]}" ] || return 1
	done
}
lab_wait_for 30 "s06: every agent to reconnect" all_welcomed
lab_wait_for 60 "s06: every agent's backlog to be acknowledged" all_caught_up
catch6=$(lab_seconds_since "$t_back")
resent6=$(for r in "${LAB_REGIONS[@]}"; do
	grep 'aggregator welcomed us' "$LAB_DIR/agent-$r.log" | tail -n 1 | sed -n 's/.*, \([0-9]*\) results to resend/\1/p'
done | awk '{ s += $1 } END { print s + 0 }')
# 30 s at 20 results/s per agent, and the failing target's retries.
[ "$resent6" -ge $((5 * AWAY_S * 2 * LOAD_N * 8 / 10)) ] ||
	lab_fail "s06: the agents had only $resent6 results to resend after ${AWAY_S}s without the aggregator"
lab_wait_for $((3 * INTERVAL_S + 10)) "s06: five fresh DOWN votes after the restart" all_down
same_outage "s06"
lab_ok "s06: after SIGKILL and ${AWAY_S}s away, $resent6 results resent and acknowledged in ${catch6}s; outage $id continues"
echo "METRIC s06 away_s=$AWAY_S rows_before_kill=$rows_before resent=$resent6 catch_up_s=$catch6"

# ---- scenario 11: SIGSTOP 30 s, SIGCONT ----
declare -A RSS0=() CPU0=() RSSMAX=()
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f\n", ($14 + $15) / hz }' "/proc/${LAB_PID[$1]}/stat"; }
for r in "${LAB_REGIONS[@]}"; do
	RSS0[$r]=$(lab_rss_kb "agent-$r")
	RSSMAX[$r]=${RSS0[$r]}
	CPU0[$r]=$(cpu_s "agent-$r")
done
agg_rss0=$(lab_rss_kb aggregator)
lab_mark_produced "${LAB_REGIONS[@]}"
lab_signal aggregator STOP
t_stop=$(date +%s.%N)
lab_log "s11: aggregator stopped (SIGSTOP) for ${AWAY_S}s"
end=$(($(date +%s) + AWAY_S))
while [ "$(date +%s)" -lt "$end" ]; do
	for r in "${LAB_REGIONS[@]}"; do
		kill -0 "${LAB_PID[agent-$r]}" 2>/dev/null || lab_fail "s11: agent $r exited while the aggregator was stopped"
		rss=$(lab_rss_kb "agent-$r")
		[ "$rss" -le "${RSSMAX[$r]}" ] || RSSMAX[$r]=$rss
	done
	lab_sleep 1
done
cpu_max=0
for r in "${LAB_REGIONS[@]}"; do
	growth=$((RSSMAX[$r] - RSS0[$r]))
	cpu=$(awk -v a="${CPU0[$r]}" -v b="$(cpu_s "agent-$r")" 'BEGIN { printf "%.2f", b - a }')
	echo "METRIC s11 agent=$r rss_before_kb=${RSS0[$r]} rss_max_kb=${RSSMAX[$r]} cpu_while_stopped_s=$cpu"
	[ "$growth" -le "$AGENT_RSS_GROWTH_KB" ] ||
		lab_fail "s11: agent $r grew by ${growth} kB while the aggregator was stopped (bound ${AGENT_RSS_GROWTH_KB} kB)"
	awk -v c="$cpu" -v m="$AGENT_CPU_MAX_S" 'BEGIN { exit !(c <= m) }' ||
		lab_fail "s11: agent $r used ${cpu}s of CPU in ${AWAY_S}s while the aggregator was stopped (a retry loop?)"
done
lab_ok "s11: while the aggregator was stopped every agent kept running, memory bounded (growth within ${AGENT_RSS_GROWTH_KB} kB), CPU within ${AGENT_CPU_MAX_S}s"
lab_signal aggregator CONT
t_cont=$(date +%s.%N)
lab_log "s11: aggregator continued (SIGCONT)"
# Still the same outage, also in the first evaluations after 30 s of silence.
for i in 1 2 3 4 5; do
	same_outage "s11 after SIGCONT"
	lab_sleep 0.5
done
grep -q 'the aggregator did not run for' "$LAB_DIR/aggregator.log" ||
	lab_fail "s11: the aggregator did not notice that it was stopped"
lab_wait_for 60 "s11: every agent's backlog to be acknowledged" all_caught_up
catch11=$(lab_seconds_since "$t_cont")
lab_wait_for $((3 * INTERVAL_S + 10)) "s11: five fresh DOWN votes" all_down
same_outage "s11"
agg_rss1=$(lab_rss_kb aggregator)
[ $((agg_rss1 - agg_rss0)) -le "$AGG_RSS_GROWTH_KB" ] ||
	lab_fail "s11: the aggregator grew from $agg_rss0 to $agg_rss1 kB across the stop"
lab_ok "s11: after SIGCONT every agent caught up in ${catch11}s; outage $id continues"
echo "METRIC s11 stopped_s=$AWAY_S catch_up_s=$catch11 aggregator_rss_kb=$agg_rss0..$agg_rss1"

lab_stop_agents
lab_expect_incident "$T" outage 1
lab_invariant
