#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Lab scenario 7 (TESTPLAN.md §3): PostgreSQL stops answering for 60 s.
# The hub's embedded server (postmaster and every backend) is frozen with
# SIGSTOP: the processes are alive, so the aggregator does not restart the
# server, and nothing answers, so only the store's watchdog (15 s per
# transaction, 10 s per connection attempt) can tell; this is the
# blackholed-database case.  While frozen: the aggregator stays up, stops
# acking, /healthz answers 503 "database": "down", the agents' spools grow.
# After SIGCONT: the aggregator reconnects, the agents catch up, verdicts
# resume, no incident is opened by the agents' silence, and every result
# is stored exactly once (lab_invariant).
. "$(dirname "$0")/lib/lab.sh"

T=s07
INTERVAL_S=1
FROZEN_S=60

lab_up
FROZEN=()
# Never leave a frozen server behind: the cleanup could not stop it.
s07_thaw() {
	local rc=$? pid
	for pid in "${FROZEN[@]}"; do
		kill -CONT "$pid" 2>/dev/null
	done
	FROZEN=()
	return $rc
}
trap 's07_thaw; lab_down' EXIT

lab_start_target
lab_write_conf ${INTERVAL_S}s 2s "  - { name: $T, http: { url: \"$LAB_TGT_URL/$T\" } }"
lab_start_aggregator
lab_start_agents

target() { lab_api "/api/v1/targets/$T"; }
all_up() { target | jq -e '.state == "up" and ([.regions[] | select(.vote == "up")] | length) == 5'; }
lab_wait_for $((INTERVAL_S + 15)) "$T up with an UP vote from all five regions" all_up
agents_sum() { lab_api /api/v1/agents | jq "[.agents[].$1] | add"; }
health_code() { lab_exec hub curl -s -o /dev/null -w '%{http_code}' -m 5 "http://$LAB_HTTP/healthz"; }

# ---- freeze ----
pm=$(head -n 1 "$LAB_DIR/state/pg/postmaster.pid")
FROZEN=("$pm" $(ps -o pid= --ppid "$pm"))
kill -STOP "${FROZEN[@]}"
frozen_at=$(date +%s.%N)
lab_log "database frozen: postmaster $pm and ${#FROZEN[@]} processes in all"
db_down() { [ "$(health_code)" = 503 ]; }
lab_wait_for 30 "/healthz to answer 503 (the watchdog)" db_down
lab_api_raw() { lab_exec hub curl -s -m 5 "http://$LAB_HTTP$1"; }
[ "$(lab_api_raw /healthz | jq -r .database)" = down ] || lab_fail "/healthz does not say the database is down"
noticed_s=$(awk -v a="$frozen_at" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
echo "METRIC s07 frozen_to_noticed_s=$noticed_s"
acked=$(agents_sum acked_seq)
spool=$(agents_sum spool_depth)
lab_sleep 15
[ "$(agents_sum acked_seq)" = "$acked" ] || lab_fail "acks moved while the database was frozen"
[ "$(agents_sum spool_depth)" -gt "$spool" ] || lab_fail "the agents' spools did not grow while the database was frozen"
kill -0 "$LAB_AGG_PID" || lab_fail "the aggregator exited while the database was frozen"
lab_ok "database frozen: noticed in ${noticed_s} s, aggregator up, no acks, spools at $(agents_sum spool_depth) results"
while [ "$(awk -v a="$frozen_at" -v b="$(date +%s.%N)" 'BEGIN { print (b - a < '$FROZEN_S') }')" = 1 ]; do
	lab_sleep 0.5
done

# ---- thaw ----
kill -CONT "${FROZEN[@]}"
FROZEN=()
thawed_at=$(date +%s.%N)
lab_log "database running again"
db_up() { [ "$(health_code)" = 200 ]; }
lab_wait_for 30 "/healthz to answer 200" db_up
resumed() { grep -q "verdicts resume" "$LAB_DIR/aggregator.log"; }
lab_wait_for 60 "the agents to catch up and verdicts to resume" resumed
caught_s=$(awk -v a="$thawed_at" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
echo "METRIC s07 thaw_to_verdicts_resumed_s=$caught_s"
[ "$(grep -c 'lost the database connection' "$LAB_DIR/aggregator.log")" = 1 ] ||
	lab_fail "not exactly one 'lost the database connection' warning"
[ "$(grep -c 'reconnected to the database after' "$LAB_DIR/aggregator.log")" = 1 ] ||
	lab_fail "not exactly one 'reconnected' line"
lab_wait_for $((INTERVAL_S + 15)) "$T up from all five regions again" all_up
lab_ok "database back: caught up and verdicts resumed ${caught_s} s after the thaw, $T up"

lab_stop_agents
lab_expect_no_incidents
lab_invariant
