#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# With `database:` set the aggregator uses that PostgreSQL instead of its
# embedded cluster: migrations are applied there, results stored there, and
# stopping the aggregator leaves that server running (it is not ours).
. "$(dirname "$0")/../lib/common.sh"
vt_setup

bindir=$(vt_pg_bindir)
ext=$VT_DIR/extpg
mkdir -p "$ext"
[ "$(id -u)" = 0 ] && chown vantage "$ext"
vt_as_pg_user "$bindir/initdb" -D "$ext" -U vantage --auth=trust -E UTF8 --no-locale >"$VT_DIR/initdb.log" 2>&1 ||
	vt_fail "initdb failed: $(tail -n 5 "$VT_DIR/initdb.log")"
vt_as_pg_user "$bindir/pg_ctl" -D "$ext" -l "$ext/log" -w \
	-o "-c listen_addresses='' -c unix_socket_directories='$ext'" start >/dev/null ||
	vt_fail "external cluster did not start"
VT_PGHOST=$ext
VT_PGDB=postgres

vt_start_target
vt_write_conf 1s 2s "  - { name: t01, http: { url: \"http://127.0.0.1:$VT_TARGET_PORT/ok\" } }"
echo "database: \"host=$ext dbname=postgres user=vantage\"" >>"$VT_DIR/vantage.yml"
vt_start_aggregator
[ ! -e "$VT_DIR/state/pg" ] || vt_fail "an embedded cluster was created although database: is set"
vt_start_agent eu-west eu-west
vt_wait_for 15 "results in the external database" bash -c \
	"[ \$(psql -X -h $ext -U vantage postgres -Atc 'SELECT count(*) FROM results') -gt 3 ]"
[ "$(vt_psql 'SELECT max(version) FROM schema_version')" -ge 1 ] || vt_fail "no schema_version"
read -r e p a < <(vt_stop_agent eu-west)
[ "$(vt_psql 'SELECT count(*) FROM results')" = "$p" ] || vt_fail "stored rows differ from produced $p"
kill -TERM "$VT_AGG_PID"
wait "$VT_AGG_PID" || vt_fail "aggregator exited non-zero on SIGTERM"
vt_as_pg_user "$bindir/pg_ctl" -D "$ext" status >/dev/null || vt_fail "the aggregator stopped a database it does not own"
vt_ok "external database used, $p results stored, server left running"
