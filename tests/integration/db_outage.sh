#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Scenario 7, PostgreSQL goes away under a running aggregator.
#
# 1. External database over TCP on 127.0.0.1, stopped with pg_ctl -m fast
#    for about 20 s while three agents keep probing every second: the
#    aggregator stays up, stops acking (agents' spools grow), /healthz
#    answers 503 with "database": "down", API reads answer 503 at once, the
#    log has one warning and one "reconnected after" line, and after the
#    restart every agent's results are stored exactly once, no incident is
#    opened by the agents' silence, and the password in `database:` never
#    reaches the log.  Reports the time to catch up.
# 2. Embedded cluster, its postmaster killed with -9: the aggregator
#    restarts it and nothing is lost.
. "$(dirname "$0")/../lib/common.sh"
vt_setup

PW=s3cret-db-pw
bindir=$(vt_pg_bindir)

http_code() {
	curl -s -o /dev/null -w '%{http_code}' --max-time 3 "http://$VT_HTTP$1"
}

# The sum over agents of one numeric field of /api/v1/agents.
agents_sum() {
	vt_api /api/v1/agents | jq "[.agents[].$1] | add"
}

start_three() {
	rm -rf "$VT_DIR"/spool-*
	vt_start_three_agents
	vt_wait_for 30 "all three agents acked" bash -c \
		"[ \$(curl -sf http://$VT_HTTP/api/v1/agents | jq '[.agents[] | select(.acked_seq > 0)] | length') = 3 ]"
}

check_three() {
	local r
	for r in eu-west us-east ap-south; do
		vt_check_agent "$r"
		vt_ok "$1: agent $r: all $VT_ROWS results stored exactly once"
	done
}

targets=""
for i in 1 2 3; do
	targets+="  - { name: t$i, http: { url: \"http://127.0.0.1:\$PORT/ok/$i\" } }"$'\n'
done

# --- 1. external database stopped for 20 s ---

ext=$VT_DIR/extpg
mkdir -p "$ext"
chown vantage "$ext"
vt_as_pg_user "$bindir/initdb" -D "$ext" -U vantage --auth=trust -E UTF8 --no-locale \
	>"$VT_DIR/initdb.log" 2>&1 || vt_fail "initdb failed: $(tail -n 5 "$VT_DIR/initdb.log")"
pgport=$(vt_free_port)
pg_start() {
	vt_as_pg_user "$bindir/pg_ctl" -D "$ext" -l "$ext/log" -w -o "-c listen_addresses=127.0.0.1 \
		-c port=$pgport -c unix_socket_directories='$ext' -c track_commit_timestamp=on" \
		start >/dev/null || vt_fail "external cluster did not start"
}
pg_start
VT_PGHOST=$ext
VT_PGDB=postgres
export PGPORT=$pgport

vt_start_target
vt_write_conf 1s 2s "${targets//\$PORT/$VT_TARGET_PORT}"
# trust authentication never asks for the password: it is only there to
# prove it is not logged.
echo "database: \"postgresql://vantage:$PW@127.0.0.1:$pgport/postgres?connect_timeout=5\"" \
	>>"$VT_DIR/vantage.yml"
vt_start_aggregator
start_three
sleep 3

vt_as_pg_user "$bindir/pg_ctl" -D "$ext" -m fast -w stop >/dev/null || vt_fail "pg_ctl stop failed"
stopped_at=$(date +%s.%N)
vt_log "database stopped"
vt_wait_for 5 "/healthz to report the database down" bash -c \
	"curl -s http://$VT_HTTP/healthz | jq -e '.database == \"down\"'"
[ "$(http_code /healthz)" = 503 ] || vt_fail "/healthz does not answer 503 while the database is down"
[ "$(http_code /api/v1/incidents)" = 503 ] ||
	vt_fail "an API read does not answer 503 while the database is down"
vt_api /api/v1/status >/dev/null || vt_fail "/api/v1/status (in memory) fails while the database is down"
acked_early=$(agents_sum acked_seq)
spool_early=$(agents_sum spool_depth)
# Heartbeats come every 5 s: wait for the spools to report growth.
vt_wait_for 20 "agents' spools to grow" bash -c \
	"[ \$(curl -sf http://$VT_HTTP/api/v1/agents | jq '[.agents[].spool_depth] | add') -gt $((spool_early + 20)) ]"
acked_late=$(agents_sum acked_seq)
[ "$acked_late" = "$acked_early" ] || vt_fail "acks moved while the database was down ($acked_early -> $acked_late)"
kill -0 "$VT_AGG_PID" 2>/dev/null || vt_fail "the aggregator exited while the database was down"
vt_ok "database down: aggregator up, /healthz 503, API reads 503, no acks, spools grow ($(agents_sum spool_depth) results)"

# About 20 s of outage in all.
while [ "$(echo "$(date +%s.%N) - $stopped_at < 20" | bc)" = 1 ]; do sleep 0.5; done
pg_start
restarted_at=$(date +%s.%N)
vt_log "database started again"
vt_wait_for 30 "/healthz back to 200" bash -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' http://$VT_HTTP/healthz)\" = 200 ]"
vt_wait_for 60 "agents to catch up" bash -c "[ \"\$(curl -sf http://$VT_HTTP/api/v1/agents | jq -r \
	'if all(.agents[]; .acked_seq >= .produced) then 1 else 0 end')\" = 1 ]"
caught_up_at=$(date +%s.%N)
catchup_s=$(echo "$caught_up_at - $restarted_at" | bc)
# Probe start -> COMMIT of results probed during the outage and after.
delay=$(vt_psql "SELECT round(max(extract(epoch FROM pg_xact_commit_timestamp(xmin) - started_at))::numeric, 1)
	FROM results WHERE started_at > to_timestamp($restarted_at)")

grep -q "connected to the database" "$VT_DIR/aggregator.log" || vt_fail "no connection line in the log"
! grep -q "$PW" "$VT_DIR/aggregator.log" || vt_fail "the database password appears in the aggregator log"
lost=$(grep -c "lost the database connection" "$VT_DIR/aggregator.log" || true)
back=$(grep -c "reconnected to the database after" "$VT_DIR/aggregator.log" || true)
[ "$lost" = 1 ] || vt_fail "$lost 'lost the database connection' lines, want 1"
[ "$back" = 1 ] || vt_fail "$back 'reconnected' lines, want 1"
retries=$(grep -c "cannot connect to the database" "$VT_DIR/aggregator.log" || true)
[ "$retries" = 0 ] || vt_fail "$retries 'cannot connect' lines after an outage that was already reported"
vt_wait_for 30 "verdicts to resume" grep -q "verdicts resume" "$VT_DIR/aggregator.log"
check_three "outage of 20 s"
incidents=$(vt_psql "SELECT count(*) FROM incidents")
[ "$incidents" = 0 ] || vt_fail "$incidents incidents opened by a database outage (targets were up)"
vt_ok "one warning, one reconnection line, no password in the log, no incident"
reconnect_s=$(sed -n 's/.*reconnected to the database after \([0-9.]*\) s.*/\1/p' "$VT_DIR/aggregator.log")
resume_s=$(sed -n 's/.*agents caught up \([0-9.]*\) s after the database came back.*/\1/p' "$VT_DIR/aggregator.log")
vt_ok "reconnected ${reconnect_s} s after the loss (backoff), every agent acked through what it produced" \
	"${catchup_s} s after the server started, verdicts resumed ${resume_s} s after reconnection;" \
	"probe-to-commit at most ${delay} s for results probed after the restart"
kill -TERM "$VT_AGG_PID"
wait "$VT_AGG_PID" || vt_fail "aggregator exited non-zero on SIGTERM"
vt_as_pg_user "$bindir/pg_ctl" -D "$ext" -m fast -w stop >/dev/null
unset VT_PGHOST VT_PGDB PGPORT

# --- 2. embedded cluster: postmaster killed with -9 ---

vt_write_conf 1s 2s "${targets//\$PORT/$VT_TARGET_PORT}"
vt_start_aggregator
start_three
sleep 2
pmpid=$(head -n 1 "$VT_DIR/state/pg/postmaster.pid")
kill -KILL "$pmpid"
vt_log "postmaster $pmpid killed"
vt_wait_for 60 "the aggregator to restart the database server" \
	grep -q "database server restarted" "$VT_DIR/aggregator.log"
vt_wait_for 30 "/healthz back to 200" bash -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' http://$VT_HTTP/healthz)\" = 200 ]"
newpid=$(head -n 1 "$VT_DIR/state/pg/postmaster.pid")
[ "$newpid" != "$pmpid" ] || vt_fail "postmaster pid unchanged"
vt_wait_for 60 "agents to catch up" bash -c "[ \"\$(curl -sf http://$VT_HTTP/api/v1/agents | jq -r \
	'if all(.agents[]; .acked_seq >= .produced) then 1 else 0 end')\" = 1 ]"
check_three "postmaster killed"
vt_ok "embedded postmaster killed with -9: restarted by the aggregator ($(grep -o 'database server restarted in [0-9.]* s' "$VT_DIR/aggregator.log"))"
