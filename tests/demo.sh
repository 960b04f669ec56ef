#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# `make demo`: the whole system on one machine.  Starts the fake target
# server with a healthy, a slow, a failing and a content-checked path, an
# aggregator with its embedded PostgreSQL, and three agents (eu-west,
# us-east, ap-south) connected over CurveZMQ with keys made by vantagectl
# (kept in DEMO_DIR/keys); waits until every target has a result from every
# region, says where to look, and runs until Ctrl-C or DEMO_SECONDS.  Then
# it stops what it started, agents first so that they deliver what they
# hold, and exits 0.
#
# It must never touch a process it did not start: everything is stopped by
# the pid this script got when it started it, never by name.  A second run
# reuses the database in the work dir (results accumulate); DEMO_RESET=1
# wipes the work dir first.
#
# Environment:
#   DEMO_DIR          work dir (default build/demo)
#   DEMO_HTTP_PORT    aggregator API port (default 8080)
#   DEMO_ZMQ_PORT     aggregator ZeroMQ port (default 7500)
#   DEMO_TARGET_PORT  fake target port (default 0: chosen by the kernel)
#   DEMO_SECONDS      stop by itself after this many seconds of running
#   DEMO_WAIT         seconds to wait for results from every region (20)
#   DEMO_STATE_DIR    where the database lives (default DEMO_DIR/state)
#   DEMO_RESET=1      delete the work dir (and its database) first
set -u

top=$(cd "$(dirname "$0")/.." && pwd)
B=${B:-build}
case $B in /*) ;; *) B=$top/$B ;; esac
DEMO_DIR=${DEMO_DIR:-$top/build/demo}
HTTP_PORT=${DEMO_HTTP_PORT:-8080}
ZMQ_PORT=${DEMO_ZMQ_PORT:-7500}
TARGET_PORT=${DEMO_TARGET_PORT:-0}
RUN_SECONDS=${DEMO_SECONDS:-}
WAIT_RESULTS=${DEMO_WAIT:-20}
# The first run creates the database cluster (initdb), which takes a while.
WAIT_HEALTHZ=60
REGIONS="eu-west us-east ap-south"
TARGETS="healthy slow broken content identity-provider"

say() {
	printf 'demo: %s\n' "$*"
}

warn() {
	printf 'demo: %s\n' "$*" >&2
}

is_uint() {
	case $1 in '' | *[!0-9]*) return 1 ;; esac
	return 0
}

# check_number VARIABLE VALUE
check_number() {
	if ! is_uint "$2" || [ "$2" -gt 65535 ]; then
		warn "$1 must be a number from 0 to 65535, not \"$2\""
		exit 2
	fi
}

check_number DEMO_HTTP_PORT "$HTTP_PORT"
check_number DEMO_ZMQ_PORT "$ZMQ_PORT"
check_number DEMO_TARGET_PORT "$TARGET_PORT"
check_number DEMO_WAIT "$WAIT_RESULTS"
if [ "$HTTP_PORT" -eq 0 ] || [ "$ZMQ_PORT" -eq 0 ]; then
	warn "DEMO_HTTP_PORT and DEMO_ZMQ_PORT must not be 0"
	exit 2
fi
if [ -n "$RUN_SECONDS" ] && ! is_uint "$RUN_SECONDS"; then
	warn "DEMO_SECONDS must be a whole number of seconds, not \"$RUN_SECONDS\""
	exit 2
fi
for bin in vantage-aggregator vantage-agent vantagectl fakes/target; do
	if [ ! -x "$B/$bin" ]; then
		warn "\"$B/$bin\" is missing; build it with \"make\" first"
		exit 1
	fi
done
for tool in curl awk; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		warn "\"$tool\" is not installed (make deps installs it)"
		exit 1
	fi
done

case $DEMO_DIR in /*) ;; *) DEMO_DIR=$(pwd)/$DEMO_DIR ;; esac
RUN=$DEMO_DIR/run
LOGS=$DEMO_DIR/logs
API=http://127.0.0.1:$HTTP_PORT
CTL="$B/vantagectl --url $API"
# What to tell the user to type: short when run from the top directory
# with the default port.
CTL_SHOW=$B/vantagectl
[ "$B" = "$top/build" ] && [ "$(pwd)" = "$top" ] && CTL_SHOW=build/vantagectl
[ "$HTTP_PORT" = 8080 ] || CTL_SHOW="$CTL_SHOW --url $API"
MARKER=$DEMO_DIR/.vantage-demo

# ---- the processes this script started ----

started=""	# "name:pid name:pid ...", in start order
stopping=0

pid_of() {
	for entry in $started; do
		[ "${entry%%:*}" = "$1" ] && { echo "${entry#*:}"; return 0; }
	done
	return 1
}

alive() {
	kill -0 "$1" 2>/dev/null
}

# start NAME COMMAND...: in its own session, so that a Ctrl-C on the
# terminal reaches only this script, which then stops everything in order.
# A background child of a shell without job control is no process group
# leader, so setsid(1) calls setsid() and execs without forking: $! is the
# program's own pid.
start() {
	name=$1
	shift
	if command -v setsid >/dev/null 2>&1; then
		setsid "$@" </dev/null >"$LOGS/$name.log" 2>&1 &
	else
		"$@" </dev/null >"$LOGS/$name.log" 2>&1 &
	fi
	pid=$!
	started="$started $name:$pid"
	echo "$pid" >"$RUN/$name.pid"
}

# stop_pids TIMEOUT_S NAME...: SIGTERM to all of them at once, then wait;
# whatever is still running at the deadline gets SIGKILL and is reported.
stop_pids() {
	limit=$1
	shift
	pids=""
	for name in "$@"; do
		pid=$(pid_of "$name") || continue
		if alive "$pid"; then
			kill -TERM "$pid" 2>/dev/null && pids="$pids $name:$pid"
		fi
	done
	[ -n "$pids" ] || return 0
	ticks=$((limit * 5))
	while [ "$ticks" -gt 0 ]; do
		left=""
		for entry in $pids; do
			alive "${entry#*:}" && left="$left $entry"
		done
		[ -n "$left" ] || break
		sleep 0.2
		ticks=$((ticks - 1))
	done
	for entry in $pids; do
		name=${entry%%:*}
		pid=${entry#*:}
		if alive "$pid"; then
			warn "$name (pid $pid) did not stop within ${limit} s; sending SIGKILL"
			kill -KILL "$pid" 2>/dev/null
		fi
		wait "$pid" 2>/dev/null
		rc=$?
		if [ "$rc" -ne 0 ]; then
			warn "$name (pid $pid) exited with status $rc; see $LOGS/$name.log"
		fi
		rm -f "$RUN/$name.pid"
	done
}

stop_all() {
	[ "$stopping" -eq 0 ] || return 0
	stopping=1
	[ -n "$started" ] || return 0
	say "stopping: agents first (they deliver what they hold), then the aggregator, then the target"
	agents=""
	for r in $REGIONS; do
		agents="$agents agent-$r"
	done
	# Agents wait up to 10 s for their last acks, the aggregator up to
	# 10 s for the database and then stops PostgreSQL.
	# shellcheck disable=SC2086
	stop_pids 20 $agents
	for r in $REGIONS; do
		[ -f "$LOGS/agent-$r.log" ] || continue
		line=$(grep 'produced .* results, acknowledged through' "$LOGS/agent-$r.log" | tail -n 1)
		[ -n "$line" ] && say "  ${line#*: }"
	done
	stop_pids 40 aggregator
	stop_pids 5 target
	say "stopped; logs and configs stay in $DEMO_DIR"
}

# shellcheck disable=SC2317 # called from a trap
on_signal() {
	echo
	stop_all
	exit 0
}

# Diagnostics when something we started dies or never gets ready.
fail() {
	warn "$1"
	if [ -n "${2:-}" ] && [ -s "$2" ]; then
		warn "last lines of $2:"
		tail -n 15 "$2" | sed 's/^/    /' >&2
	fi
	stop_all
	exit 1
}

# Output closed (a pager quit, the terminal went away): stop everything
# all the same, without dying of SIGPIPE on our own messages.
# shellcheck disable=SC2317 # called from a trap
on_sigpipe() {
	trap '' PIPE
	stop_all
	exit 1
}

trap on_signal INT TERM HUP
trap on_sigpipe PIPE
trap stop_all EXIT

# ---- a previous demo, busy ports ----

# A demo whose script was killed may have left its processes behind; they
# hold the ports and the database.  Say so rather than kill them: this run
# did not start them.
leftover=""
for name in $(for r in $REGIONS; do echo "agent-$r"; done) aggregator target; do
	f=$RUN/$name.pid
	[ -f "$f" ] || continue
	pid=$(cat "$f" 2>/dev/null)
	if is_uint "$pid" && alive "$pid" &&
	    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$DEMO_DIR"; then
		warn "a previous demo is still running: $name (pid $pid)"
		leftover="$leftover $pid"
	else
		rm -f "$f"
	fi
done
if [ -n "$leftover" ]; then
	warn "stop it with \"kill$leftover\" and run the demo again"
	exit 1
fi

# port_holder PORT: prints who listens on 127.0.0.1:PORT (or *:PORT), if
# anyone; returns 1 when the port is free.
port_holder() {
	if command -v ss >/dev/null 2>&1; then
		out=$(ss -Hltnp "sport = :$1" 2>/dev/null)
		[ -n "$out" ] || return 1
		echo "$out" | awk '{ print $4, $6 }' | head -n 1
		return 0
	fi
	curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$1/"
	[ $? -eq 7 ] && return 1
	echo "something answers on 127.0.0.1:$1"
	return 0
}

busy=0
for spec in "HTTP API:DEMO_HTTP_PORT:$HTTP_PORT" "ZeroMQ:DEMO_ZMQ_PORT:$ZMQ_PORT" \
    "fake target:DEMO_TARGET_PORT:$TARGET_PORT"; do
	what=${spec%%:*}
	rest=${spec#*:}
	var=${rest%%:*}
	port=${rest#*:}
	[ "$port" -ne 0 ] || continue
	if holder=$(port_holder "$port"); then
		warn "port $port ($what) is busy: $holder"
		warn "free it, or choose another port, e.g. $var=$((port + 1)) make demo"
		busy=1
	fi
done
[ "$busy" -eq 0 ] || exit 1

# ---- the work dir ----

if [ "${DEMO_RESET:-0}" = 1 ] && [ -d "$DEMO_DIR" ]; then
	if [ ! -f "$MARKER" ]; then
		warn "not deleting \"$DEMO_DIR\": it was not made by this demo"
		exit 1
	fi
	old_state=$(cat "$MARKER")
	case $old_state in
	"$DEMO_DIR"/* | "") say "DEMO_RESET=1: deleting $DEMO_DIR" ;;
	/?*)
		say "DEMO_RESET=1: deleting $DEMO_DIR and $old_state"
		rm -rf "$old_state"
		;;
	esac
	rm -rf "$DEMO_DIR"
fi
mkdir -p "$RUN" "$LOGS" "$DEMO_DIR/agents" || exit 1
chmod 755 "$DEMO_DIR"

# As root the embedded PostgreSQL runs as user "vantage", which must be able
# to walk down to its data directory: under /root or a 0700 home it cannot,
# so the database then lives under /var/tmp instead.
STATE_DIR=${DEMO_STATE_DIR:-$DEMO_DIR/state}
if [ -z "${DEMO_STATE_DIR:-}" ] && [ "$(id -u)" -eq 0 ] &&
    getent passwd vantage >/dev/null 2>&1 && command -v runuser >/dev/null 2>&1 &&
    ! runuser -u vantage -- test -x "$DEMO_DIR" 2>/dev/null; then
	STATE_DIR=/var/tmp/vantage-demo
	say "user \"vantage\" (who runs the embedded database) cannot reach $DEMO_DIR;"
	say "keeping the database in $STATE_DIR instead (DEMO_STATE_DIR chooses another)"
fi
echo "$STATE_DIR" >"$MARKER"
PGDIR=$STATE_DIR/pg

# ---- the fake target ----

cat >"$DEMO_DIR/rules.json" <<'EOF'
[
  { "path": "/healthy", "action": "answer", "body": "ok" },
  { "path": "/slow",    "action": "delay",  "delay_ms": 1500, "jitter_ms": 200, "body": "ok, eventually" },
  { "path": "/broken",  "action": "fail",   "status": 503, "body": "service unavailable" },
  { "path": "/content", "action": "answer", "body": "{\"status\": \"green\", \"db\": \"ok\"}" }
]
EOF

say "starting the fake target server"
start target "$B/fakes/target" -l "127.0.0.1:$TARGET_PORT" -f "$DEMO_DIR/rules.json"
target_addr=""
i=0
while [ $i -lt 50 ]; do
	target_addr=$(sed -n 's/^listening on \(127\.0\.0\.1:[0-9]*\).*/\1/p' "$LOGS/target.log" | head -n 1)
	[ -n "$target_addr" ] && break
	alive "$(pid_of target)" || fail "the fake target server exited at start" "$LOGS/target.log"
	sleep 0.1
	i=$((i + 1))
done
[ -n "$target_addr" ] || fail "the fake target server did not say where it listens" "$LOGS/target.log"
say "  fake target on http://$target_addr/ (pid $(pid_of target))"

# ---- configuration ----

# CurveZMQ keys, made once and kept across runs (vantagectl never
# overwrites a key): the aggregator's pair, and one per agent whose public
# key goes to the aggregator's agent_keys_dir under the agent's name.
KEYS=$DEMO_DIR/keys
mkdir -p "$KEYS/agents" || exit 1
for name in aggregator $(for r in $REGIONS; do echo "$r-1"; done); do
	[ -f "$KEYS/$name.key" ] || "$B/vantagectl" keys new "$name" --dir "$KEYS" >/dev/null ||
	    fail "vantagectl keys new $name failed"
done
for r in $REGIONS; do
	cp "$KEYS/$r-1.pub" "$KEYS/agents/$r-1.pub" || exit 1
done

cat >"$DEMO_DIR/vantage.yml" <<EOF
# Written by tests/demo.sh; rewritten at every run.
listen: { zmq: "tcp://127.0.0.1:$ZMQ_PORT", http: "127.0.0.1:$HTTP_PORT" }
state_dir: $STATE_DIR
# CurveZMQ: only the agents whose public key is in agent_keys_dir connect.
security: { curve_secret_key: $KEYS/aggregator.key, agent_keys_dir: $KEYS/agents }
regions:
  - { name: eu-west,  domain: aws }
  - { name: us-east,  domain: gcp }
  - { name: ap-south, domain: hetzner }
defaults: { interval: 5s, timeout: 3s }
targets:
  - name: healthy
    group: Demo
    http: { url: "http://$target_addr/healthy", expect_status: [200] }
  - name: slow
    group: Demo
    http: { url: "http://$target_addr/slow", max_latency: 2500ms }
  - name: broken
    group: Demo
    http: { url: "http://$target_addr/broken", expect_status: [200] }
  - name: content
    group: Demo
    http: { url: "http://$target_addr/content", body_contains: '"db": "ok"' }
  # A vendor's service, shown in a group of its own on the status page.
  - name: identity-provider
    group: "Third-party: identity provider"
    http: { url: "http://$target_addr/idp", expect_status: [200] }
EOF

for r in $REGIONS; do
	mkdir -p "$DEMO_DIR/agents/$r"
	cat >"$DEMO_DIR/agents/$r/agent.yml" <<EOF
# Written by tests/demo.sh; rewritten at every run.
name: $r-1
region: $r
aggregator: { endpoint: "tcp://127.0.0.1:$ZMQ_PORT", public_key: $KEYS/aggregator.pub }
secret_key: $KEYS/$r-1.key
spool_dir: $DEMO_DIR/agents/$r/spool
max_concurrency: 16
EOF
done

"$B/vantage-aggregator" -n -f "$DEMO_DIR/vantage.yml" >/dev/null ||
    fail "the generated vantage.yml does not pass -n (a bug in tests/demo.sh)"
for r in $REGIONS; do
	"$B/vantage-agent" -n -f "$DEMO_DIR/agents/$r/agent.yml" >/dev/null ||
	    fail "the generated agent.yml of $r does not pass -n (a bug in tests/demo.sh)"
done

# ---- aggregator ----

if [ -f "$PGDIR/PG_VERSION" ]; then
	say "starting the aggregator (reusing the database in $PGDIR)"
else
	say "starting the aggregator (first run: creating a PostgreSQL cluster in $PGDIR)"
fi
start aggregator "$B/vantage-aggregator" -d -f "$DEMO_DIR/vantage.yml"
agg_pid=$(pid_of aggregator)
i=0
while :; do
	if curl -fsS --max-time 2 -o /dev/null "$API/healthz" 2>/dev/null; then
		break
	fi
	if ! alive "$agg_pid"; then
		if grep -q 'cannot listen' "$LOGS/aggregator.log"; then
			fail "the aggregator could not bind its ports (busy?)" "$LOGS/aggregator.log"
		fi
		fail "the aggregator exited at start" "$LOGS/aggregator.log"
	fi
	i=$((i + 1))
	[ $i -lt $((WAIT_HEALTHZ * 2)) ] ||
	    fail "the aggregator did not answer $API/healthz within $WAIT_HEALTHZ s" \
		"$LOGS/aggregator.log"
	sleep 0.5
done
say "  aggregator ready: $API (pid $agg_pid)"

# ---- agents ----

for r in $REGIONS; do
	start "agent-$r" "$B/vantage-agent" -d -f "$DEMO_DIR/agents/$r/agent.yml"
	say "  agent $r-1 in region $r (pid $(pid_of "agent-$r"))"
done

# ---- wait for a result from every region for every target ----

check_children() {
	for entry in $started; do
		name=${entry%%:*}
		alive "${entry#*:}" || fail "$name (pid ${entry#*:}) exited unexpectedly" "$LOGS/$name.log"
	done
}

# shellcheck disable=SC2086 # split on purpose
n_targets=$(set -- $TARGETS; echo $#)
# shellcheck disable=SC2086
n_regions=$(set -- $REGIONS; echo $#)
want=$((n_targets * n_regions))
say "waiting for results from all $n_regions regions (at most $WAIT_RESULTS s)"
waited=0
last=""
while :; do
	check_children
	# vantagectl prints one line per (target, region) with data, and a
	# line with region "-" for a target nobody has reported yet.
	pairs=$($CTL targets 2>/dev/null | awk 'NR > 1 && $2 != "-" { print $1 " " $2 }' | sort -u)
	have=$(printf '%s\n' "$pairs" | grep -c .)
	seen=$(printf '%s\n' "$pairs" | awk 'NF { print $2 }' | sort -u | paste -s -d ' ' -)
	if [ "$have" != "$last" ]; then
		say "  ${waited} s: $have of $want target/region results; regions seen: ${seen:-none}"
		last=$have
	fi
	[ "$have" -ge "$want" ] && break
	if [ "$waited" -ge "$WAIT_RESULTS" ]; then
		warn "not every region reported within $WAIT_RESULTS s; what the aggregator has:"
		$CTL targets >&2
		fail "no results from every region; see the agents' logs in $LOGS" \
		    "$LOGS/aggregator.log"
	fi
	sleep 1
	waited=$((waited + 1))
done

echo
$CTL targets
echo

PSQL_QUERY="SELECT t.key AS target, a.region, count(*) AS results,
       sum((r.outcome = 1)::int) AS up, round(avg(r.total_us) / 1000.0, 1) AS avg_ms
  FROM results r JOIN targets t ON t.id = r.target_id JOIN agents a ON a.id = r.agent_id
 GROUP BY 1, 2 ORDER BY 1, 2;"

if command -v psql >/dev/null 2>&1; then
	say "stored in PostgreSQL so far (all runs of the demo):"
	PGCONNECT_TIMEOUT=5 psql -X -h "$PGDIR" -U vantage -d vantage -c "$PSQL_QUERY" 2>&1 |
	    sed 's/^/    /; s/^ *$//'
fi

cat <<EOF
The demo is running: 1 fake target, 1 aggregator (+ PostgreSQL), 3 agents.

  Status     $API/             (public status page)
  API        $API/healthz
             $API/api/v1/targets
             $API/api/v1/targets/slow
             $API/api/v1/agents
             $API/api/v1/status        (quorum verdict per target)
             $API/api/v1/incidents     ("broken" fails everywhere: an outage)
  CLI        $CTL_SHOW status
             $CTL_SHOW incidents
             $CTL_SHOW targets
             $CTL_SHOW target broken
             $CTL_SHOW agents
             $CTL_SHOW health
  Database   psql -h $PGDIR -U vantage vantage
             e.g.  SELECT * FROM results ORDER BY started_at DESC LIMIT 5;
  Logs       $LOGS/aggregator.log
             $LOGS/agent-{eu-west,us-east,ap-south}.log
             $LOGS/target.log
             $PGDIR/log   (PostgreSQL)
  Configs    $DEMO_DIR/vantage.yml, $DEMO_DIR/agents/*/agent.yml,
             $DEMO_DIR/rules.json (change the target live: PUT http://$target_addr/_fake/rules)
  Keys       $KEYS (CurveZMQ; revoke an agent: remove keys/agents/NAME.pub, kill -HUP $agg_pid)

EOF

if [ -n "$RUN_SECONDS" ]; then
	say "running for $RUN_SECONDS s (DEMO_SECONDS); Ctrl-C stops it earlier"
else
	say "press Ctrl-C to stop"
fi

# ---- run ----

elapsed=0
while [ -z "$RUN_SECONDS" ] || [ "$elapsed" -lt "$RUN_SECONDS" ]; do
	check_children
	sleep 1
	elapsed=$((elapsed + 1))
done
stop_all
exit 0
