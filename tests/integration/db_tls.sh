#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# A remote PostgreSQL over TLS with sslmode=verify-full.  A throwaway
# cluster on 127.0.0.1 accepts only TLS with a password (hostssl +
# scram-sha-256) and presents a certificate for "localhost" signed by a CA
# made here.  (1) With database: naming host localhost, the CA as
# sslrootcert and verify-full, the aggregator migrates, stores an agent's
# results exactly once, and its connections are encrypted (pg_stat_ssl).
# (2) The same URL naming the server as 127.0.0.1, which the certificate
# does not cover, is refused: the aggregator exits 1 saying why.  The
# password never reaches the aggregator's log in either case.
. "$(dirname "$0")/../lib/common.sh"
vt_setup
command -v openssl >/dev/null || vt_skip "openssl is not installed (make deps)"

PW=tls-db-pw-$RANDOM$RANDOM
bindir=$(vt_pg_bindir)
ext=$VT_DIR/tlspg
tls=$VT_DIR/tls
mkdir -p "$ext" "$tls"

# A CA, and a server certificate for localhost only, signed by it.
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=vantage test CA" \
	-keyout "$tls/ca.key" -out "$tls/ca.pem" 2>"$VT_DIR/openssl.log" &&
	openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
		-keyout "$tls/server.key" -out "$tls/server.csr" 2>>"$VT_DIR/openssl.log" &&
	openssl x509 -req -days 2 -in "$tls/server.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" \
		-CAcreateserial -extfile <(echo "subjectAltName=DNS:localhost") \
		-out "$tls/server.crt" 2>>"$VT_DIR/openssl.log" ||
	vt_fail "making the test certificates failed: $(tail -n 3 "$VT_DIR/openssl.log")"

echo "$PW" >"$VT_DIR/pwfile"
if [ "$(id -u)" = 0 ]; then
	chown vantage "$ext" "$VT_DIR/pwfile"
fi
vt_as_pg_user "$bindir/initdb" -D "$ext" -U vantage --pwfile="$VT_DIR/pwfile" --auth-local=trust \
	--auth-host=scram-sha-256 -E UTF8 --no-locale >"$VT_DIR/initdb.log" 2>&1 ||
	vt_fail "initdb failed: $(tail -n 5 "$VT_DIR/initdb.log")"
rm -f "$VT_DIR/pwfile"
install -m 0600 "$tls/server.crt" "$tls/server.key" "$ext/"
[ "$(id -u)" = 0 ] && chown vantage "$ext/server.crt" "$ext/server.key"
# TCP only with TLS and a password; the unix socket (for this test's psql) trusts.
cat >"$ext/pg_hba.conf" <<HBA
local   all all                trust
hostssl all all 127.0.0.1/32   scram-sha-256
HBA
pgport=$(vt_free_port)
vt_as_pg_user "$bindir/pg_ctl" -D "$ext" -l "$ext/log" -w -o "-c listen_addresses=127.0.0.1 \
	-c port=$pgport -c unix_socket_directories='$ext' -c ssl=on \
	-c ssl_cert_file=server.crt -c ssl_key_file=server.key" start >/dev/null ||
	vt_fail "the TLS cluster did not start: $(tail -n 5 "$ext/log")"
VT_PGHOST=$ext
VT_PGDB=postgres
export PGPORT=$pgport

url() { # HOST: the database URL naming the server as HOST
	echo "postgresql://vantage:$PW@$1:$pgport/postgres?hostaddr=127.0.0.1&sslmode=verify-full&sslrootcert=$tls/ca.pem&connect_timeout=5"
}

# --- (2) first, in the background: the name the certificate does not cover.
mkdir -p "$VT_DIR/wrong"
cat >"$VT_DIR/wrong/vantage.yml" <<YML
listen: { zmq: "tcp://127.0.0.1:$(vt_free_port)", http: "127.0.0.1:$(vt_free_port)" }
state_dir: $VT_DIR/wrong/state
security: { insecure: true }
regions: [ { name: eu-west, domain: aws } ]
targets: [ { name: t01, http: { url: "http://127.0.0.1:9/" } } ]
database: "$(url 127.0.0.1)"
YML
vt_start aggregator-wrong "$BIN/vantage-aggregator" -d -f "$VT_DIR/wrong/vantage.yml"
wrong_pid=$VT_LAST_PID

# --- (1) the right name: verified, encrypted, stored.
vt_start_target
vt_write_conf 1s 2s "  - { name: t01, http: { url: \"http://127.0.0.1:$VT_TARGET_PORT/ok\" } }"
echo "database: \"$(url localhost)\"" >>"$VT_DIR/vantage.yml"
vt_start_aggregator
vt_start_agent eu-west eu-west
stored() { [ "$(vt_psql 'SELECT count(*) FROM results')" -gt 3 ]; }
vt_wait_for 30 "results in the TLS database" stored
ssl=$(vt_psql "SELECT count(*) FILTER (WHERE s.ssl), count(*) FROM pg_stat_ssl s
	JOIN pg_stat_activity a USING (pid) WHERE a.usename = 'vantage' AND a.client_addr IS NOT NULL")
[ "${ssl%%|*}" -ge 1 ] && [ "${ssl%%|*}" = "${ssl##*|}" ] ||
	vt_fail "the aggregator's connections are not all encrypted (encrypted|all: $ssl)"
vt_check_agent eu-west
vt_ok "verify-full with the CA: $VT_ROWS results stored exactly once, ${ssl%%|*} TLS connection(s) and no plaintext one"

exited() { ! kill -0 "$wrong_pid" 2>/dev/null; }
vt_wait_for 60 "the aggregator with the wrong server name to give up" exited
rc=0
wait "$wrong_pid" || rc=$?
[ "$rc" = 1 ] || vt_fail "the aggregator with the wrong server name exited $rc, not 1"
grep -q 'cannot connect to the database: .*does not match host name "127.0.0.1"' \
	"$VT_DIR/aggregator-wrong.log" ||
	vt_fail "the aggregator did not say the certificate does not match: $(grep -m 1 'database' "$VT_DIR/aggregator-wrong.log")"
vt_ok "verify-full refuses a certificate for another name: $(grep -m 1 -o 'cannot connect to the database: .*' "$VT_DIR/aggregator-wrong.log")"

for log in aggregator aggregator-wrong; do
	! grep -q -- "$PW" "$VT_DIR/$log.log" || vt_fail "the database password is in $log.log"
done
vt_ok "the password is in neither aggregator's log"
