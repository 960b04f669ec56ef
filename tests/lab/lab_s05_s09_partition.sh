#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Lab scenarios 5 and 9 (TESTPLAN.md §3), side by side on two regions.
#
# 5: r1 is cut off (its link down) for 60 s.  Its probes fail meanwhile
# (its only network is gone) and the aggregator hears nothing from it, so
# its votes abstain: no incident.  It keeps its results (spool) and, after
# the heal, resends them; they are stored exactly once, and these late
# DOWN results must not open an incident for the past.
#
# 9: r2 runs with the smallest spool the agent accepts (spool_max 256 KiB)
# and many fast targets, and stays cut off until its spool overflows.  The
# oldest results are dropped, the dropped range arrives as a gap marker
# (table gaps), and the counts are exact: stored + gap seqs = produced.
# The fast targets are also probed by r3 (min_voters 1), so that losing r2
# leaves them judged, not blind.
. "$(dirname "$0")/lib/lab.sh"

T5=s05
INTERVAL_S=1
CUT_S=60         # scenario 5's partition
FLOOD_N=10       # scenario 9's targets, r2 and r3 only
FLOOD_INTERVAL=200ms
SPOOL_MIN=262144 # agent/agent_conf.c AGENT_CONF_SPOOL_MIN
OVERFLOW_MAX_S=150 # r2 stays cut at most this long waiting for the overflow

lab_up
lab_start_target
targets="  - { name: $T5, http: { url: \"$LAB_TGT_URL/$T5\" } }"
for i in $(seq -w 1 $FLOOD_N); do
	targets+=$'\n'"  - { name: s09-$i, http: { url: \"$LAB_TGT_URL/s09/$i\" }, interval: $FLOOD_INTERVAL, timeout: 150ms, regions: [r2, r3], min_voters: 1 }"
done
lab_write_conf ${INTERVAL_S}s 1s "$targets"
# r2 gets its small spool before it ever hears of a target: its first
# process, started before the aggregator, has nothing to drain.
lab_start_agent r2
lab_restart_agent r2 "spool_max: $SPOOL_MIN"
lab_start_aggregator
for r in r1 r3 r4 r5; do
	lab_start_agent "$r"
done

target() { lab_api "/api/v1/targets/$1"; }
all_up() { target $T5 | jq -e '.state == "up" and ([.regions[] | select(.vote == "up")] | length) == 5'; }
lab_wait_for 20 "$T5 up with an UP vote from all five regions" all_up
flood_up() { lab_api /api/v1/status | jq -e '[.targets[] | select(.state == "up")] | length == '$((FLOOD_N + 1)); }
lab_wait_for 20 "every target up" flood_up
lab_wait_for 15 "r1 and r2 acknowledged" lab_caught_up r1 r2
lab_expect_no_incidents

# ---- the cut ----
lab_mark_produced r1 r2
cut_at=$(lab_psql "SELECT now()")
w1=$(lab_welcomes r1)
w2=$(lab_welcomes r2)
lab_link_down r1
lab_link_down r2
t_cut=$(date +%s.%N)
lab_log "r1 and r2 cut off (links down)"
# While cut off, nothing else changes: the others keep every target up.
end=$(($(date +%s) + CUT_S))
while [ "$(date +%s)" -lt "$end" ]; do
	n=$(lab_psql "SELECT count(*) FROM incidents")
	[ "$n" = 0 ] || lab_fail "s05/s09: an incident opened during the partition: $(lab_psql "SELECT id, kind, state FROM incidents")"
	lab_sleep 2
done
heal5_at=$(lab_psql "SELECT now()")
lab_link_up r1
t_heal5=$(date +%s.%N)
lab_log "s05: r1 healed after ${CUT_S}s"

# ---- scenario 9: r2 stays cut until its spool overflows ----
overflowed() { grep -Eiq 'full.*dropp|dropp.*results' "$LAB_DIR/agent-r2.log"; }
lab_wait_for $OVERFLOW_MAX_S "s09: r2's spool to overflow" overflowed
lab_sleep 3
heal9_at=$(lab_psql "SELECT now()")
lab_link_up r2
t_heal9=$(date +%s.%N)
lab_log "s09: r2 healed after $(lab_seconds_since "$t_cut")s cut off, its spool having overflowed"

# ---- scenario 5: r1 resends, exactly once, no incident ----
welcomed() { [ "$(lab_welcomes "$1")" -gt "$2" ]; }
lab_wait_for 30 "s05: r1 to reconnect" welcomed r1 "$w1"
lab_wait_for 60 "s05: r1's backlog to be acknowledged" lab_caught_up r1
catch5=$(lab_seconds_since "$t_heal5")
resend5=$(grep 'aggregator welcomed us' "$LAB_DIR/agent-r1.log" | tail -n 1 |
	sed -n 's/.*, \([0-9]*\) results to resend/\1/p')
spooled5=$(lab_psql "SELECT count(*) FROM results r JOIN agents a ON a.id = r.agent_id
	WHERE a.name = 'r1' AND r.started_at > '$cut_at'::timestamptz + interval '1 second'
	AND r.started_at < '$heal5_at'")
# One result per second at least (s05), more with retries and 20 fast
# targets it does not probe: the partition's results all came back.
[ "${resend5:-0}" -ge $((CUT_S - 5)) ] ||
	lab_fail "s05: r1 had ${resend5:-no} results to resend after ${CUT_S}s cut off, want at least $((CUT_S - 5))"
[ "$spooled5" -ge $((CUT_S - 5)) ] ||
	lab_fail "s05: only $spooled5 of r1's results from the partition are stored"
lab_ok "s05: r1 kept $resend5 results through the ${CUT_S}s partition and resent them; $spooled5 from inside it stored"
lab_wait_for 10 "s05: $T5 up from all five regions again" all_up
echo "METRIC s05 cut_s=$CUT_S resent=$resend5 stored_from_partition=$spooled5 catch_up_s=$catch5"

# ---- scenario 9: r2's gap ----
lab_wait_for 30 "s09: r2 to reconnect" welcomed r2 "$w2"
lab_wait_for 60 "s09: r2's backlog to be acknowledged" lab_caught_up r2
catch9=$(lab_seconds_since "$t_heal9")
IFS='|' read -r n_gaps gap_seqs gap_lo gap_hi <<<"$(lab_psql "SELECT count(*), coalesce(sum(g.last_seq - g.first_seq + 1), 0),
	min(g.first_seq), max(g.last_seq) FROM gaps g JOIN agents a ON a.id = g.agent_id WHERE a.name = 'r2'")"
[ "$n_gaps" -gt 0 ] || lab_fail "s09: r2's spool overflowed but no gap marker is stored"
# The oldest were dropped: every result r2 produced while cut off that is
# stored is newer than everything dropped.
newer=$(lab_psql "SELECT count(*) FROM results r JOIN agents a ON a.id = r.agent_id
	WHERE a.name = 'r2' AND r.started_at > '$cut_at'::timestamptz + interval '1 second' AND r.seq <= $gap_hi")
[ "$newer" = 0 ] || lab_fail "s09: $newer results from the partition older than the gap's end ($gap_hi) are stored: the newest were dropped, not the oldest"
kept9=$(lab_psql "SELECT count(*) FROM results r JOIN agents a ON a.id = r.agent_id
	WHERE a.name = 'r2' AND r.started_at > '$cut_at'::timestamptz AND r.started_at < '$heal9_at'")
[ "$kept9" -gt 0 ] || lab_fail "s09: none of r2's results from the partition were kept"
lab_ok "s09: r2 dropped its oldest results, seqs $gap_lo..$gap_hi ($gap_seqs in $n_gaps gap markers), kept the newest $kept9"
grep -q "agent \"r2\" epoch [0-9]* lost results" "$LAB_DIR/aggregator.log" ||
	lab_fail "s09: the aggregator did not log r2's lost results"
echo "METRIC s09 spool_max=$SPOOL_MIN cut_s=$(awk -v a="$t_cut" -v b="$t_heal9" 'BEGIN { printf "%.1f", b - a }') gap_markers=$n_gaps dropped=$gap_seqs kept_from_partition=$kept9 catch_up_s=$catch9"

lab_sleep 3 # late results had their chance to move a vote
lab_stop_agents
lab_invariant
