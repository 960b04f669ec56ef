#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Lab scenario 10 (TESTPLAN.md §3): a reconnect storm.  In the hub's
# namespace `ss -K` destroys every agent's ZeroMQ connection, 100 times, as
# soon as they are all back each time (a bounded loop with short pauses).
# Each agent sees its connection reset, reconnects, says Hello, and resends
# what was not acknowledged.  Passes when nothing is lost or duplicated (the
# invariant), every target stays up with no incident, and memory stays
# bounded: the RSS of the aggregator and of every agent after the storm is
# within a generous bound of before (a leak per connection would show).
. "$(dirname "$0")/lib/lab.sh"

T=s10
INTERVAL_S=1
RESETS=100
BACK_MAX_S=15                      # each time, all five must be back within this
AGENT_RSS_GROWTH_KB=$((16 * 1024)) # generous: a leak of 160 kB per reconnect would pass
AGG_RSS_GROWTH_KB=$((32 * 1024))

lab_up
lab_start_target
targets=""
for i in 1 2 3 4 5; do
	targets+="  - { name: $T-$i, http: { url: \"$LAB_TGT_URL/$T/$i\" }, interval: 500ms, timeout: 400ms }"$'\n'
done
lab_write_conf ${INTERVAL_S}s 1s "$targets"
lab_start_aggregator
lab_start_agents
lab_expect_no_incidents

all_up() { lab_api /api/v1/status | jq -e '[.targets[] | select(.state == "up")] | length == 5'; }
lab_wait_for 20 "every target up" all_up
five_conns() { [ "$(lab_zmq_conns hub)" = 5 ]; }
lab_wait_for 20 "five agent connections" five_conns
n=$(lab_zmq_reset hub)
[ "$n" -gt 0 ] || lab_skip "ss -K destroys no socket here (needs a kernel with CONFIG_INET_DIAG_DESTROY)"
lab_wait_for "$BACK_MAX_S" "the agents to come back after the first reset" five_conns
all_welcomed() { lab_caught_up "${LAB_REGIONS[@]}"; }
lab_wait_for 20 "every agent acknowledged" all_welcomed
lab_sleep 2
declare -A RSS0=() W0=()
for r in "${LAB_REGIONS[@]}"; do
	RSS0[$r]=$(lab_rss_kb "agent-$r")
	W0[$r]=$(lab_welcomes "$r")
done
agg_rss0=$(lab_rss_kb aggregator)

# ---- the storm ----
t0=$(date +%s.%N)
killed=$n
for i in $(seq 2 $RESETS); do
	killed=$((killed + $(lab_zmq_reset hub)))
	lab_wait_for "$BACK_MAX_S" "the agents to come back after reset $i" five_conns
	lab_sleep "0.$((RANDOM % 3))"
done
storm_s=$(lab_seconds_since "$t0")
lab_log "s10: $RESETS resets ($killed connections destroyed) in ${storm_s}s"
welcomes=0
for r in "${LAB_REGIONS[@]}"; do
	welcomes=$((welcomes + $(lab_welcomes "$r") - W0[$r]))
done
# Every reset after the first of this loop made every agent connect again;
# most of them got as far as a Welcome (a reset may beat the Hello).
[ "$welcomes" -ge $((5 * (RESETS - 1) / 2)) ] ||
	lab_fail "s10: only $welcomes Welcomes after $RESETS resets of five agents: the storm did not reach them"
lab_mark_produced "${LAB_REGIONS[@]}"
t1=$(date +%s.%N)
lab_wait_for 30 "every agent's results to be acknowledged after the storm" all_welcomed
catch=$(lab_seconds_since "$t1")
lab_wait_for 10 "every target up" all_up

# ---- memory ----
for r in "${LAB_REGIONS[@]}"; do
	rss=$(lab_rss_kb "agent-$r")
	echo "METRIC s10 agent=$r rss_before_kb=${RSS0[$r]} rss_after_kb=$rss"
	[ $((rss - RSS0[$r])) -le "$AGENT_RSS_GROWTH_KB" ] ||
		lab_fail "s10: agent $r grew from ${RSS0[$r]} to $rss kB in the storm"
done
agg_rss1=$(lab_rss_kb aggregator)
echo "METRIC s10 aggregator_rss_before_kb=$agg_rss0 aggregator_rss_after_kb=$agg_rss1"
[ $((agg_rss1 - agg_rss0)) -le "$AGG_RSS_GROWTH_KB" ] ||
	lab_fail "s10: the aggregator grew from $agg_rss0 to $agg_rss1 kB in the storm"
lab_ok "s10: $RESETS resets, $welcomes Welcomes; memory within bounds (agents +$((AGENT_RSS_GROWTH_KB / 1024)) MB, aggregator +$((AGG_RSS_GROWTH_KB / 1024)) MB)"
echo "METRIC s10 resets=$RESETS connections_destroyed=$killed welcomes=$welcomes storm_s=$storm_s catch_up_s=$catch"

lab_stop_agents
lab_invariant
