#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Retention and rollups in a running aggregator (embedded PostgreSQL).  One
# agent probes a target for a few seconds; then, with the aggregator
# stopped, the test plants a results partition 40 days back with a row in
# it (past retention.raw: 30d), one 29 days back with a row (inside it) and
# a day rollup 401 days back (past retention.rollup: 400d).  The
# aggregator's pass at start must drop the old partition whole (and log
# it), keep the other and every recent result, delete the old rollup, and
# roll up the recent results into rollup_minute and today's rollup_day.
. "$(dirname "$0")/../lib/common.sh"
vt_setup

vt_start_target
vt_write_conf 1s 2s "  - { name: t01, http: { url: \"http://127.0.0.1:$VT_TARGET_PORT/ok/01\" } }"
echo "retention: { raw: 30d, rollup: 400d }" >>"$VT_DIR/vantage.yml"
vt_start_aggregator
vt_start_agent eu-west eu-west
vt_wait_for 20 "results stored" bash -c \
	"[ \$(psql -X -h $VT_DIR/state/pg -U vantage vantage -Atc 'SELECT count(*) FROM results') -ge 5 ]"
vt_stop_agent eu-west >/dev/null
kill -TERM "$VT_AGG_PID"
for _ in $(seq 1 300); do
	kill -0 "$VT_AGG_PID" 2>/dev/null || break
	sleep 0.1
done
kill -0 "$VT_AGG_PID" 2>/dev/null && vt_fail "the aggregator did not exit within 30 s of SIGTERM"
wait "$VT_AGG_PID" 2>/dev/null || true
mv "$VT_DIR/aggregator.log" "$VT_DIR/aggregator-first.log"

# The aggregator stopped its embedded cluster; plant the old data in it
# with a server of our own on the same directory.
pgbin=$(vt_pg_bindir)
vt_as_pg_user "$pgbin/pg_ctl" -D "$VT_DIR/state/pg" -w -t 30 -l "$VT_DIR/state/pg/retention-test.log" \
	-o "-c listen_addresses='' -c unix_socket_directories='$VT_DIR/state/pg'" start >/dev/null
row="SELECT %s, a.id, t.id, 9, 1, 1, 0, 1, 0, 0, 0, 200, 0, 0, 0, 0, 1000, 0
	FROM agents a, targets t WHERE t.key = 't01' LIMIT 1"
cols="started_at, agent_id, target_id, epoch, seq, config_version, sched_delay_us, outcome,
	reason, trigger, agent_state, http_status, dns_us, connect_us, tls_us, ttfb_us, total_us, bytes"
vt_psql "SELECT vantage_ensure_partitions(current_date - 40, current_date - 40),
	vantage_ensure_partitions(current_date - 29, current_date - 29)" >/dev/null
vt_psql "INSERT INTO results ($cols) $(printf "$row" "current_date - 40")" >/dev/null
vt_psql "INSERT INTO results ($cols) $(printf "$row" "current_date - 29")" >/dev/null
vt_psql "INSERT INTO rollup_day SELECT id, current_date - 401, 0, 0, 86400, 0, NULL, NULL, 0
	FROM targets WHERE key = 't01'" >/dev/null
old_part=results_$(vt_psql "SELECT to_char(current_date - 40, 'YYYYMMDD')")
kept_part=results_$(vt_psql "SELECT to_char(current_date - 29, 'YYYYMMDD')")
recent=$(vt_psql "SELECT count(*) FROM results WHERE started_at >= current_date - 1")
[ "$(vt_psql "SELECT count(*) FROM $old_part")" = 1 ] || vt_fail "the old row is not in $old_part"
vt_as_pg_user "$pgbin/pg_ctl" -D "$VT_DIR/state/pg" -w -t 30 -m fast stop >/dev/null
vt_log "planted $old_part and $kept_part with a row each; $recent recent results"

vt_start_aggregator
vt_wait_for 30 "the retention pass" grep -q 'dropped 1 results partitions older than 30 days' \
	"$VT_DIR/aggregator.log"
[ "$(vt_psql "SELECT to_regclass('$old_part') IS NULL")" = t ] || vt_fail "$old_part still exists"
vt_ok "partition $old_part dropped whole at start, and logged"
[ "$(vt_psql "SELECT count(*) FROM $kept_part")" = 1 ] || vt_fail "$kept_part lost its row"
got=$(vt_psql "SELECT count(*) FROM results WHERE started_at >= current_date - 1")
[ "$got" -ge "$recent" ] || vt_fail "recent results: $got, had $recent"
vt_ok "partition $kept_part and all $recent recent results kept"
vt_wait_for 30 "the old rollup deleted" bash -c "[ \"\$(psql -X -h $VT_DIR/state/pg -U vantage \
	vantage -Atc 'SELECT count(*) FROM rollup_day WHERE day < current_date - 400')\" = 0 ]"
vt_ok "rollup_day row 401 days old deleted"
# The recent results are in the minute rollups (which, like the day rows,
# come from the same first pass) and today's (or, just after midnight,
# yesterday's) day row counts them.
vt_wait_for 30 "the recent results rolled up" bash -c "[ \"\$(psql -X -h $VT_DIR/state/pg \
	-U vantage vantage -Atc \"SELECT coalesce(sum(n), 0) FROM rollup_minute m JOIN targets t
	ON t.id = m.target_id WHERE t.key = 't01' AND m.minute >= current_date - 1\")\" -ge $recent ]"
days=$(vt_psql "SELECT coalesce(sum(d.n), 0) FROM rollup_day d JOIN targets t ON t.id = d.target_id
	WHERE t.key = 't01' AND d.day >= current_date - 1")
[ "$days" -ge "$recent" ] || vt_fail "day rollups count $days results, want at least $recent"
vt_ok "recent results rolled up: minute rows and day rows count all $recent"
