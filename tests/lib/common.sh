# SPDX-License-Identifier: Apache-2.0
#
# Shared helpers for the integration tests (bash).  Each test sources this,
# calls vt_setup, starts what it needs with the vt_start_* functions (which
# remember every PID they start), and relies on the EXIT trap to stop those
# processes (and the embedded PostgreSQL they started) and remove the work
# directory, even when the test fails.  Nothing here touches a process the
# test did not start.
set -euo pipefail

B=${B:-build}
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN=$TOP/$B
VT_PIDS=()
VT_DIR=
VT_KEEP=${VT_KEEP:-0}
VT_AT_EXIT=()

vt_log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*"; }
vt_fail() { printf 'FAIL: %s\n' "$*"; exit 1; }
vt_skip() { printf 'SKIP: %s\n' "$*"; exit 77; }
vt_ok() { printf 'ok - %s\n' "$*"; }

vt_cleanup() {
	local rc=$? pid pgpid i
	set +e
	for pid in "${VT_PIDS[@]}"; do
		kill -TERM "$pid" 2>/dev/null
	done
	for pid in "${VT_PIDS[@]}"; do
		for _ in $(seq 1 100); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null
	done
	# What a test registered with vt_at_exit (an unmount, say), newest first,
	# once its processes are gone.
	for ((i = ${#VT_AT_EXIT[@]} - 1; i >= 0; i--)); do
		eval "${VT_AT_EXIT[i]}"
	done
	# An aggregator killed with -9 leaves its embedded cluster running;
	# a test may also have started a cluster of its own.
	for pidfile in $( [ -n "$VT_DIR" ] && find "$VT_DIR" -maxdepth 3 -name postmaster.pid); do
		pgpid=$(head -n 1 "$pidfile")
		if [ -n "$pgpid" ] && kill -0 "$pgpid" 2>/dev/null; then
			kill -INT "$pgpid"
			for _ in $(seq 1 100); do
				kill -0 "$pgpid" 2>/dev/null || break
				sleep 0.1
			done
		fi
	done
	# make check SAN=1 (tests/run.sh): keep every daemon log a sanitizer
	# wrote into, leaks reported at exit included.
	if [ -n "${SAN_REPORTS:-}" ] && [ -n "$VT_DIR" ]; then
		for f in "$VT_DIR"/*.log; do
			[ -f "$f" ] || continue
			grep -qE 'runtime error:|ERROR: AddressSanitizer|ERROR: LeakSanitizer' "$f" &&
				cp "$f" "$SAN_REPORTS/$(basename "$0" .sh)-$(basename "$f")"
		done
	fi
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ] && [ -n "$VT_DIR" ]; then
		for f in "$VT_DIR"/*.log; do
			[ -f "$f" ] || continue
			echo "--- last lines of $(basename "$f")"
			tail -n 15 "$f"
		done
	fi
	if [ -n "$VT_DIR" ] && [ "$VT_KEEP" != 1 ]; then
		rm -rf "$VT_DIR"
	fi
	exit "$rc"
}

# vt_at_exit COMMAND: run by the EXIT trap after the test's processes are
# stopped and before its directory is removed, pass or fail.
vt_at_exit() {
	VT_AT_EXIT+=("$1")
}

vt_setup() {
	[ -x "$BIN/vantage-aggregator" ] || vt_fail "$BIN/vantage-aggregator not built"
	command -v psql >/dev/null || vt_skip "psql is not installed (make deps)"
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null ||
		vt_skip "PostgreSQL server binaries are not installed (make deps)"
	if [ "$(id -u)" = 0 ] && ! id vantage >/dev/null 2>&1; then
		vt_skip "running as root without the system user \"vantage\" for PostgreSQL (make deps)"
	fi
	VT_DIR=$(mktemp -d /tmp/vantage-test.XXXXXX)
	chmod 0711 "$VT_DIR"
	trap vt_cleanup EXIT
	trap 'exit 130' INT TERM
}

# A TCP port on 127.0.0.1 that no socket uses now.  Below the kernel's
# ephemeral range (32768+), so a client connection cannot take it between
# this check and the bind.  Tests run side by side (tests/run.sh -j), and
# one may pick a port that another picked but has not bound yet (an
# aggregator binds after its initdb): every pick is claimed by a file
# port-N in the test's directory, and a port claimed by any test is not
# picked again.
vt_free_port() {
	local port
	for _ in $(seq 1 50); do
		port=$((20000 + RANDOM % 12000))
		compgen -G "/tmp/vantage-test.*/port-$port" >/dev/null && continue
		if ! ss -Htan "sport = :$port" | grep -q .; then
			[ -z "$VT_DIR" ] || : >"$VT_DIR/port-$port"
			echo "$port"
			return 0
		fi
	done
	vt_fail "no free port found"
}

# vt_start NAME CMD... : starts CMD in the background with output to
# $VT_DIR/NAME.log and records its PID in VT_LAST_PID.
vt_start() {
	local name=$1
	shift
	"$@" >"$VT_DIR/$name.log" 2>&1 &
	VT_LAST_PID=$!
	VT_PIDS+=("$VT_LAST_PID")
}

# vt_wait_for SECONDS DESCRIPTION COMMAND... : polls COMMAND every 0.1 s.
vt_wait_for() {
	local limit=$1 what=$2 i
	shift 2
	for i in $(seq 1 $((limit * 10))); do
		if "$@" >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.1
	done
	vt_fail "timed out after ${limit}s waiting for $what"
}

# Starts the fake target on a free port; sets VT_TARGET_PORT.
vt_start_target() {
	vt_start target "$BIN/fakes/target" -l 127.0.0.1:0 "$@"
	VT_TARGET_PID=$VT_LAST_PID
	vt_wait_for 10 "the fake target" grep -q '^listening on' "$VT_DIR/target.log"
	VT_TARGET_PORT=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$VT_DIR/target.log" | head -n 1)
}

vt_target_rules() {
	curl -sf -X PUT --data "$1" "http://127.0.0.1:$VT_TARGET_PORT/_fake/rules" >/dev/null
}

# The fake webhook receiver.  vt_start_hookd NAME MODE sets HOOK_PORT_<NAME>;
# MODE is ok, fail, hang or down (tests/fakes/hookd.c).
vt_start_hookd() {
	vt_start "hookd-$1" "$BIN/fakes/hookd" -l 127.0.0.1:0 -m "$2" -o "$VT_DIR/hookd-$1.jsonl"
	vt_wait_for 10 "hookd $1" grep -q '^listening on' "$VT_DIR/hookd-$1.log"
	eval "HOOK_PORT_$1=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$VT_DIR/hookd-$1.log")"
}

vt_hook_mode() { # NAME MODE
	local port="HOOK_PORT_$1"
	curl -sf -X PUT --data "{\"mode\":\"$2\"}" "http://127.0.0.1:${!port}/_hook/mode" >/dev/null
}

vt_hook_received() { # NAME
	local port="HOOK_PORT_$1"
	curl -sf "http://127.0.0.1:${!port}/_hook/received"
}

# CurveZMQ keys, made with vantagectl like an operator would: the
# aggregator's pair in $VT_DIR/keys, each agent's pair in $VT_DIR/keys/NAME.*
# with its public key copied into the aggregator's agent_keys_dir
# ($VT_DIR/keys/agents).  VT_INSECURE=1 runs both sides in plaintext instead
# (for the tests of hostile plaintext peers).
VT_INSECURE=${VT_INSECURE:-0}

vt_keys_new() { # NAME: $VT_DIR/keys/NAME.key and .pub, made once
	mkdir -p "$VT_DIR/keys/agents"
	[ -f "$VT_DIR/keys/$1.key" ] ||
		"$BIN/vantagectl" keys new "$1" --dir "$VT_DIR/keys" >/dev/null ||
		vt_fail "vantagectl keys new $1 failed"
}

# The security lines of agent NAME's agent.yml (its key admitted by the
# aggregator unless VT_AGENT_ADMIT=0), or "insecure: true" with
# VT_INSECURE=1.
vt_agent_security() {
	if [ "$VT_INSECURE" = 1 ]; then
		echo "insecure: true"
		return
	fi
	vt_keys_new "$1"
	[ "${VT_AGENT_ADMIT:-1}" = 0 ] || cp "$VT_DIR/keys/$1.pub" "$VT_DIR/keys/agents/$1.pub"
	echo "secret_key: $VT_DIR/keys/$1.key"
}

# vt_agent_endpoint: the "aggregator:" map of an agent.yml.
vt_agent_endpoint() {
	if [ "$VT_INSECURE" = 1 ]; then
		echo "aggregator: { endpoint: \"$VT_ZMQ\" }"
	else
		echo "aggregator: { endpoint: \"$VT_ZMQ\", public_key: $VT_DIR/keys/aggregator.pub }"
	fi
}

# vt_write_conf INTERVAL TIMEOUT TARGETS_YAML : vantage.yml in $VT_DIR with
# free ports; sets VT_ZMQ, VT_HTTP.  Defaults hold settle_for 5 s (a
# recovery alert within seconds of its resolution) unless VT_DEFAULTS is
# set ("" for the product's defaults, or ", key: value...").
vt_write_conf() {
	local security="{ insecure: true }"
	if [ "$VT_INSECURE" != 1 ]; then
		vt_keys_new aggregator
		security="{ curve_secret_key: $VT_DIR/keys/aggregator.key, agent_keys_dir: $VT_DIR/keys/agents }"
	fi
	VT_ZMQ_PORT=$(vt_free_port)
	# Nothing listens on the first port yet: it could be picked again.
	VT_HTTP_PORT=$(vt_free_port)
	while [ "$VT_HTTP_PORT" = "$VT_ZMQ_PORT" ]; do
		VT_HTTP_PORT=$(vt_free_port)
	done
	VT_ZMQ=tcp://127.0.0.1:$VT_ZMQ_PORT
	VT_HTTP=127.0.0.1:$VT_HTTP_PORT
	cat >"$VT_DIR/vantage.yml" <<YML
listen: { zmq: "$VT_ZMQ", http: "$VT_HTTP" }
state_dir: $VT_DIR/state
security: $security
regions:
  - { name: eu-west, domain: aws }
  - { name: us-east, domain: gcp }
  - { name: ap-south, domain: hetzner }
defaults: { interval: $1, timeout: $2${VT_DEFAULTS-, settle_for: 5s} }
targets:
$3
YML
}

# vt_ok_targets COUNT [YAML]: targets t01..tCOUNT on the fake target's
# /ok/NN, each with the extra flow-map entries YAML (", interval: 200ms").
vt_ok_targets() {
	local i
	for i in $(seq -w 1 "$1"); do
		echo "  - { name: t$i, http: { url: \"http://127.0.0.1:$VT_TARGET_PORT/ok/$i\" }${2:-} }"
	done
}

vt_start_aggregator() {
	vt_start aggregator "$BIN/vantage-aggregator" -d -f "$VT_DIR/vantage.yml"
	VT_AGG_PID=$VT_LAST_PID
	# Fails at once if the aggregator exits instead of serving.
	vt_wait_for 60 "the aggregator API" bash -c \
		"kill -0 $VT_AGG_PID || exit 0; curl -sf http://$VT_HTTP/healthz"
	kill -0 "$VT_AGG_PID" 2>/dev/null || vt_fail "the aggregator exited at start"
}

# vt_start_agent NAME REGION [SOURCE_IP]: with a source address (any of
# 127.0.0.0/8), the fake target can answer this agent differently.
# VT_AGENT_EXTRA, when set, is appended to its agent.yml; VT_AGENT_SPOOL
# replaces its spool_dir ($VT_DIR/spool-NAME).
vt_start_agent() {
	cat >"$VT_DIR/agent-$1.yml" <<YML
name: $1
region: $2
$(vt_agent_endpoint)
$(vt_agent_security "$1")
spool_dir: ${VT_AGENT_SPOOL:-$VT_DIR/spool-$1}
${3:+source_ip: $3}
${VT_AGENT_EXTRA:-}
YML
	vt_start "agent-$1" "$BIN/vantage-agent" -d -f "$VT_DIR/agent-$1.yml"
	eval "VT_AGENT_PID_$(echo "$1" | tr -c 'A-Za-z0-9\n' _)=$VT_LAST_PID"
}

# The three regions of vt_write_conf, one agent each, on 127.0.0.1, .2, .3.
vt_start_three_agents() {
	vt_start_agent eu-west eu-west 127.0.0.1
	vt_start_agent us-east us-east 127.0.0.2
	vt_start_agent ap-south ap-south 127.0.0.3
}

vt_agent_pid() {
	local var
	var="VT_AGENT_PID_$(echo "$1" | tr -c 'A-Za-z0-9\n' _)"
	echo "${!var}"
}

# Stops an agent with SIGTERM (it flushes and waits for its last Acks) and
# prints "EPOCH PRODUCED ACKED" from its final log line.
vt_stop_agent() {
	local pid
	pid=$(vt_agent_pid "$1")
	kill -TERM "$pid"
	for _ in $(seq 1 300); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$pid" 2>/dev/null && vt_fail "agent $1 did not exit within 30 s of SIGTERM"
	wait "$pid" 2>/dev/null || true
	sed -n 's/.*agent "'"$1"'" epoch \([0-9]*\): produced \([0-9]*\) results, acknowledged through \([0-9]*\).*/\1 \2 \3/p' \
		"$VT_DIR/agent-$1.log" | tail -n 1
}

# Queries the embedded cluster, or VT_PGHOST/VT_PGDB when a test set them.
# The exactly-once check of one agent stream: stops agent NAME (SIGTERM,
# it flushes), then asserts that every result it produced was acknowledged
# and that each seq 1..N of its epoch is stored exactly once or (only if
# its spool overflowed) covered by a gap marker, never both.  Sets VT_ROWS
# (rows stored), VT_GAPS (seqs in gap markers) and VT_TARGETS (distinct
# targets in the rows).  Gaps fail the check unless the second argument is
# "gaps-ok".
vt_check_agent() {
	local name=$1 e p a row distinct outside missing both
	read -r e p a < <(vt_stop_agent "$name")
	[ -n "${p:-}" ] || vt_fail "agent $name logged no final count"
	[ "$p" = "$a" ] || vt_fail "agent $name: produced $p but only $a acknowledged"
	row=$(vt_psql "WITH a AS (SELECT id FROM agents WHERE name = '$name'),
		r AS MATERIALIZED (SELECT seq, target_id FROM results WHERE agent_id = (SELECT id FROM a)
			AND epoch = ($e::numeric - CASE WHEN $e::numeric > 9223372036854775807
			THEN 18446744073709551616 ELSE 0 END)::bigint),
		g AS MATERIALIZED (SELECT first_seq, last_seq FROM gaps WHERE agent_id = (SELECT id FROM a)
			AND epoch = ($e::numeric - CASE WHEN $e::numeric > 9223372036854775807
			THEN 18446744073709551616 ELSE 0 END)::bigint),
		s AS MATERIALIZED (SELECT s, EXISTS (SELECT 1 FROM r WHERE r.seq = s) AS stored,
			EXISTS (SELECT 1 FROM g WHERE s BETWEEN g.first_seq AND g.last_seq) AS gap
			FROM generate_series(1, $p::bigint) s)
		SELECT (SELECT count(*) FROM r), (SELECT count(DISTINCT seq) FROM r),
			(SELECT count(*) FROM r WHERE seq < 1 OR seq > $p),
			(SELECT count(*) FROM s WHERE NOT stored AND NOT gap),
			(SELECT count(*) FROM s WHERE stored AND gap),
			(SELECT count(*) FROM s WHERE gap), (SELECT count(DISTINCT target_id) FROM r)")
	IFS='|' read -r VT_ROWS distinct outside missing both VT_GAPS VT_TARGETS <<<"$row"
	[ "$distinct" = "$VT_ROWS" ] || vt_fail "agent $name: $VT_ROWS rows but $distinct distinct seqs (duplicates)"
	[ "$outside" = 0 ] || vt_fail "agent $name: $outside rows with seqs outside 1..$p"
	[ "$missing" = 0 ] ||
		vt_fail "agent $name produced $p results: $VT_ROWS stored, $missing neither stored nor in a gap marker"
	[ "$both" = 0 ] || vt_fail "agent $name: $both seqs are both stored and in a gap marker"
	[ "$VT_GAPS" = 0 ] || [ "${2:-}" = gaps-ok ] ||
		vt_fail "agent $name: $VT_GAPS seqs in gap markers, but its spool should never have filled"
}

vt_psql() {
	psql -X -q -h "${VT_PGHOST:-$VT_DIR/state/pg}" -U vantage -d "${VT_PGDB:-vantage}" \
		-v ON_ERROR_STOP=1 -Atc "$1"
}

# Runs a PostgreSQL server binary as the user the cluster belongs to.
vt_as_pg_user() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u vantage -- "$@"
	else
		"$@"
	fi
}

# A PostgreSQL bin directory with initdb and pg_ctl.
vt_pg_bindir() {
	local d
	d=$(pg_config --bindir 2>/dev/null)
	if [ -n "$d" ] && [ -x "$d/initdb" ]; then
		echo "$d"
		return
	fi
	ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1
}

vt_api() {
	curl -sf "http://$VT_HTTP$1"
}

# CPU seconds (user + system) used so far by PID.
vt_cpu_seconds() {
	awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f\n", ($14 + $15) / hz }' "/proc/$1/stat"
}
