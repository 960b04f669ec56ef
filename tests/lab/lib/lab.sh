# SPDX-License-Identifier: Apache-2.0
#
# The lab (TESTPLAN.md §3): vantage in real "regions" made of network
# namespaces.  A scenario (tests/lab/*.sh, run with bash) sources this file,
# calls lab_up, starts what it needs with the lab_start_* functions, injects
# faults, and ends with lab_invariant.  lab_down runs on EXIT, also on
# failure or Ctrl-C: it stops every process the scenario started (by PID),
# the embedded PostgreSQL if one is left running, deletes every namespace of
# this run and the work directory.  See tests/lab/README.md.
#
# Topology (one run; PREFIX is "vt<pid>-"):
#
#   PREFIXsw: bridge br0, one port per host (named after the host)
#   PREFIXhub  10.77.0.1   aggregator + embedded PostgreSQL
#   PREFIXtgt  10.77.0.2   fake target server (tests/fakes/target)
#   PREFIXr1   10.77.0.11  agent, region r1, domain aws
#   PREFIXr2   10.77.0.12  agent, region r2, domain aws
#   PREFIXr3   10.77.0.13  agent, region r3, domain gcp
#   PREFIXr4   10.77.0.14  agent, region r4, domain gcp
#   PREFIXr5   10.77.0.15  agent, region r5, domain hetzner
#
# Every host has lo up and eth0 (a veth whose peer is the bridge port in sw)
# with its address in 10.77.0.0/24.  Nothing is created in, or routed
# through, the root namespace; only the filesystem is shared (the work dir,
# the PostgreSQL unix socket).
set -euo pipefail

LAB_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
B=${B:-build}
case $B in
/*) LAB_BIN=$B ;;
*) LAB_BIN=$LAB_TOP/$B ;;
esac

LAB_HOSTS=(hub tgt r1 r2 r3 r4 r5)
LAB_REGIONS=(r1 r2 r3 r4 r5)
declare -A LAB_IP=([hub]=10.77.0.1 [tgt]=10.77.0.2 [r1]=10.77.0.11 [r2]=10.77.0.12
	[r3]=10.77.0.13 [r4]=10.77.0.14 [r5]=10.77.0.15)
declare -A LAB_DOMAIN=([r1]=aws [r2]=aws [r3]=gcp [r4]=gcp [r5]=hetzner)
LAB_HUB_IP=${LAB_IP[hub]}
LAB_TGT_IP=${LAB_IP[tgt]}
LAB_ZMQ=tcp://$LAB_HUB_IP:7500
LAB_HTTP=$LAB_HUB_IP:8080
LAB_TGT_PORT=80
LAB_TGT_URL=http://$LAB_TGT_IP:$LAB_TGT_PORT

LAB_PREFIX=
LAB_DIR=
LAB_KEEP=${LAB_KEEP:-0}
LAB_UP=0
LAB_T0=$(date +%s)
LAB_PIDS=()              # every PID lab_start started, in start order
declare -A LAB_PID=()    # NAME -> PID of its latest start
declare -A LAB_NAME_OF=() # PID -> NAME
LAB_LAST_PID=

lab_log() { printf '%s [%3ss] %s\n' "$(date +%H:%M:%S)" "$(($(date +%s) - LAB_T0))" "$*"; }
lab_ok() { printf 'ok - %s\n' "$*"; }
lab_fail() {
	printf 'FAIL: %s\n' "$*"
	exit 1
}
# lab_check_fail MSG: a failed check that lets the others run first;
# lab_invariant fails at its end if there was any.
LAB_CHECK_FAILS=()
lab_check_fail() {
	printf 'not ok - %s\n' "$*"
	LAB_CHECK_FAILS+=("$*")
}
lab_skip() {
	printf 'SKIP: %s\n' "$*"
	exit 77
}

# lab_ns HOST: the namespace name of HOST in this run.
lab_ns() { echo "$LAB_PREFIX$1"; }

# lab_exec HOST CMD...: runs CMD inside HOST's namespace (foreground).
lab_exec() {
	local host=$1
	shift
	ip netns exec "$LAB_PREFIX$host" "$@"
}

# ---- setup and teardown ----------------------------------------------------

lab_preflight() {
	local bin tool
	[ "$(id -u)" = 0 ] || lab_skip "the lab needs root (network namespaces)"
	for tool in ip curl jq psql; do
		command -v "$tool" >/dev/null 2>&1 || lab_skip "\"$tool\" is not installed (make deps)"
	done
	for bin in vantage-aggregator vantage-agent fakes/target; do
		[ -x "$LAB_BIN/$bin" ] || lab_skip "$LAB_BIN/$bin is not built (make)"
	done
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null ||
		lab_skip "PostgreSQL server binaries are not installed (make deps)"
	id vantage >/dev/null 2>&1 ||
		lab_skip "no system user \"vantage\" to run the embedded PostgreSQL (make deps)"
}

# lab_up: checks the machine (exit 77 when the lab cannot run here), makes
# the work dir and the topology above, and installs the EXIT trap.
lab_up() {
	local h i ns
	lab_preflight
	LAB_PREFIX=vt$$-
	# A namespace left by an earlier run that had our PID (killed with -9):
	# never reuse or delete it, take another prefix.
	while ip netns list 2>/dev/null | awk '{ print $1 }' | grep -q "^$LAB_PREFIX"; do
		LAB_PREFIX=vt$$r$RANDOM-
	done
	LAB_DIR=$(mktemp -d /tmp/vantage-lab.XXXXXX)
	chmod 0711 "$LAB_DIR" # the embedded PostgreSQL runs as "vantage"
	trap lab_down EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	if ! ip netns add "${LAB_PREFIX}sw" 2>"$LAB_DIR/netns.err"; then
		lab_skip "cannot create a network namespace: $(head -n 1 "$LAB_DIR/netns.err")"
	fi
	LAB_UP=1
	ip -n "${LAB_PREFIX}sw" link set dev lo up
	ip -n "${LAB_PREFIX}sw" link add name br0 type bridge
	ip -n "${LAB_PREFIX}sw" link set dev br0 up
	for h in "${LAB_HOSTS[@]}"; do
		ns=$LAB_PREFIX$h
		ip netns add "$ns"
		# Both ends are born inside namespaces: the root namespace never
		# sees them.
		ip -n "${LAB_PREFIX}sw" link add name "$h" type veth peer name eth0 netns "$ns"
		ip -n "${LAB_PREFIX}sw" link set dev "$h" master br0 up
		ip -n "$ns" link set dev lo up
		ip -n "$ns" addr add "${LAB_IP[$h]}/24" dev eth0
		ip -n "$ns" link set dev eth0 up
	done
	# The bridge forwards at once (no STP); wait for carrier on every eth0.
	for h in "${LAB_HOSTS[@]}"; do
		for i in $(seq 1 50); do
			ip -n "$LAB_PREFIX$h" link show dev eth0 | grep -q LOWER_UP && break
			sleep 0.1
		done
	done
	lab_log "lab up: prefix $LAB_PREFIX, work dir $LAB_DIR"
}

# Stops PID: SIGTERM, up to SECS seconds (default 10), then SIGKILL.
lab_kill_wait() {
	local pid=$1 secs=${2:-10} i
	kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null
	for i in $(seq 1 $((secs * 10))); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	echo "lab: PID $pid did not stop within ${secs}s of SIGTERM; SIGKILL" >&2
	kill -KILL "$pid" 2>/dev/null
	return 0
}

# lab_term_all SECS NAME_PREFIX: SIGTERM to every live process started under
# a NAME beginning with NAME_PREFIX; after SECS a second SIGTERM, after 5 s
# more SIGKILL.
lab_term_all() {
	local secs=$1 prefix=$2 i n pid name live=()
	for ((i = ${#LAB_PIDS[@]} - 1; i >= 0; i--)); do
		pid=${LAB_PIDS[$i]}
		name=${LAB_NAME_OF[$pid]}
		[ "${name#"$prefix"}" != "$name" ] || [ -z "$prefix" ] || continue
		if kill -0 "$pid" 2>/dev/null; then
			kill -CONT "$pid" 2>/dev/null
			kill -TERM "$pid" 2>/dev/null
			live+=("$pid")
		fi
	done
	for i in $(seq 1 $(((secs + 5) * 10))); do
		n=0
		for pid in "${live[@]}"; do
			kill -0 "$pid" 2>/dev/null && n=$((n + 1))
		done
		[ "$n" = 0 ] && break
		if [ "$i" = $((secs * 10)) ]; then
			for pid in "${live[@]}"; do
				kill -TERM "$pid" 2>/dev/null
			done
		fi
		sleep 0.1
	done
	for pid in "${live[@]}"; do
		if kill -0 "$pid" 2>/dev/null; then
			echo "lab: ${LAB_NAME_OF[$pid]} (PID $pid) ignored SIGTERM; SIGKILL" >&2
			kill -KILL "$pid" 2>/dev/null
		fi
		wait "$pid" 2>/dev/null
	done
}

lab_down() {
	local rc=$? i pid pidfile pgpid ns f
	set +e
	trap - EXIT INT TERM
	# Every process by the PID we got when starting it (SIGCONT first, in
	# case one is SIGSTOPped).  Agents first, all at once: a second SIGTERM
	# after 1 s makes an agent exit without waiting for its last Acks (a
	# scenario that wants an orderly stop does lab_stop_agents itself);
	# then the rest, newest first: the aggregator stops its PostgreSQL.
	lab_term_all 1 agent-
	lab_term_all 15 ""
	# An aggregator killed with -9 leaves its embedded cluster running.
	if [ -n "$LAB_DIR" ]; then
		while read -r pidfile; do
			pgpid=$(head -n 1 "$pidfile" 2>/dev/null)
			if [ -n "$pgpid" ] && kill -0 "$pgpid" 2>/dev/null; then
				kill -INT "$pgpid"
				for i in $(seq 1 100); do
					kill -0 "$pgpid" 2>/dev/null || break
					sleep 0.1
				done
			fi
		done < <(find "$LAB_DIR" -maxdepth 4 -name postmaster.pid 2>/dev/null)
	fi
	if [ -n "$LAB_PREFIX" ] && [ "$LAB_UP" = 1 ]; then
		for ns in $(ip netns list 2>/dev/null | awk '{ print $1 }' | grep "^$LAB_PREFIX"); do
			# Anything still inside a namespace of this run descends
			# from this scenario; say so, it is a leak to fix.
			for pid in $(ip netns pids "$ns" 2>/dev/null); do
				echo "lab: PID $pid ($(cat /proc/"$pid"/comm 2>/dev/null)) still in $ns; SIGKILL" >&2
				kill -KILL "$pid" 2>/dev/null
			done
			ip netns del "$ns" 2>/dev/null || echo "lab: cannot delete namespace $ns" >&2
		done
	fi
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ] && [ -n "$LAB_DIR" ]; then
		for f in "$LAB_DIR"/*.log; do
			[ -f "$f" ] || continue
			echo "--- last lines of $(basename "$f")"
			tail -n 20 "$f"
		done
	fi
	if [ -n "$LAB_DIR" ]; then
		if [ "$LAB_KEEP" = 1 ]; then
			echo "lab: work dir kept: $LAB_DIR"
		else
			rm -rf "$LAB_DIR"
		fi
	fi
	# A skip's last line must stay its "SKIP:" line.
	[ "$rc" = 77 ] || lab_log "lab down (exit $rc)"
	exit "$rc"
}

# ---- processes ---------------------------------------------------------------

# lab_start HOST NAME CMD...: runs CMD in HOST's namespace in the background,
# output appended to $LAB_DIR/NAME.log (a restart under the same NAME keeps
# the earlier lines).  Sets LAB_LAST_PID and LAB_PID[NAME].
lab_start() {
	local host=$1 name=$2
	shift 2
	# ip netns exec execs CMD in place: $! is CMD's own PID.
	ip netns exec "$LAB_PREFIX$host" "$@" </dev/null >>"$LAB_DIR/$name.log" 2>&1 &
	LAB_LAST_PID=$!
	LAB_PIDS+=("$LAB_LAST_PID")
	LAB_PID[$name]=$LAB_LAST_PID
	LAB_NAME_OF[$LAB_LAST_PID]=$name
}

# lab_signal NAME SIG: sends SIG to the process started as NAME.
lab_signal() {
	kill -"$2" "${LAB_PID[$1]}"
}

# lab_stop NAME [SECS]: SIGTERM, wait up to SECS (10), then SIGKILL; reaps it.
lab_stop() {
	local pid=${LAB_PID[$1]}
	lab_kill_wait "$pid" "${2:-10}"
	wait "$pid" 2>/dev/null || true
}

# lab_sleep SECONDS: like sleep, but a SIGTERM/SIGINT to the scenario runs
# the cleanup at once instead of after the sleep (bash defers traps while a
# foreground child runs, but not during wait).
lab_sleep() {
	sleep "$1" &
	wait $! || true
}

# lab_wait_for SECONDS DESCRIPTION CMD...: polls CMD every 0.2 s; fails the
# scenario when it never succeeds.
lab_wait_for() {
	local limit=$1 what=$2 i
	shift 2
	for i in $(seq 1 $((limit * 5))); do
		if "$@" >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.2
	done
	lab_fail "timed out after ${limit}s waiting for $what"
}

# ---- faults --------------------------------------------------------------------

# lab_link_down HOST / lab_link_up HOST: ip link set down/up on HOST's own
# end of its veth (eth0 in HOST's namespace): HOST loses its route to
# 10.77.0.0/24, its sends fail at once (ENETUNREACH), its peers time out.
# lab_link_up brings it back; the kernel restores the subnet route.
lab_link_down() {
	ip -n "$LAB_PREFIX$1" link set dev eth0 down
}
lab_link_up() {
	ip -n "$LAB_PREFIX$1" link set dev eth0 up
}

# lab_port_down HOST / lab_port_up HOST: the bridge's end instead; HOST keeps
# its route and sees NO-CARRIER: its packets vanish silently, like a cut
# cable further away (timeouts rather than immediate errors).
lab_port_down() {
	ip -n "${LAB_PREFIX}sw" link set dev "$1" down
}
lab_port_up() {
	ip -n "${LAB_PREFIX}sw" link set dev "$1" up
}

# lab_blackhole HOST DEST_IP / lab_unblackhole HOST DEST_IP: a blackhole
# route in HOST for DEST_IP/32: HOST's packets to DEST_IP are discarded
# (new connects fail at once, an open connection stalls and times out),
# while every other path, and DEST_IP's packets to HOST, still work.
lab_blackhole() {
	ip -n "$LAB_PREFIX$1" route add blackhole "$2/32"
}
lab_unblackhole() {
	ip -n "$LAB_PREFIX$1" route del blackhole "$2/32"
}

# ---- the fake target -----------------------------------------------------------

# lab_start_target [RULES_JSON]: the fake target in tgt on 10.77.0.2:80.
lab_start_target() {
	lab_start tgt target "$LAB_BIN/fakes/target" -q -l "$LAB_TGT_IP:$LAB_TGT_PORT"
	lab_wait_for 10 "the fake target" grep -q '^listening on' "$LAB_DIR/target.log"
	[ $# -eq 0 ] || lab_target_rules "$1"
}

# lab_target_rules JSON: replaces the target's rules (see tests/fakes/README.md).
lab_target_rules() {
	local out
	out=$(lab_exec tgt curl -sS -X PUT --data "$1" -w ' %{http_code}' \
		"$LAB_TGT_URL/_fake/rules") || lab_fail "cannot reach the fake target: $out"
	case $out in
	*' 200') ;;
	*) lab_fail "the fake target refused the rules: $out" ;;
	esac
}

lab_target_stats() {
	lab_exec tgt curl -sf "$LAB_TGT_URL/_fake/stats"
}

# ---- aggregator and agents ---------------------------------------------------

# lab_write_conf INTERVAL TIMEOUT TARGETS_YAML [EXTRA_YAML]: $LAB_DIR/vantage.yml
# with the five regions; EXTRA_YAML is appended (alerts, controls, ...).
# CurveZMQ with keys made by vantagectl in $LAB_DIR/keys (agents' public
# keys in $LAB_DIR/keys/agents), or plaintext with LAB_INSECURE=1.
# Defaults hold settle_for 5 s, so that a recovery alert follows its
# resolution within seconds; a scenario about settling itself sets
# LAB_DEFAULTS to "" (the product's defaults) or to ", key: value...".
lab_write_conf() {
	local r security="{ insecure: true }"
	if [ "${LAB_INSECURE:-0}" != 1 ]; then
		mkdir -p "$LAB_DIR/keys/agents"
		[ -f "$LAB_DIR/keys/aggregator.key" ] ||
			"$LAB_BIN/vantagectl" keys new aggregator --dir "$LAB_DIR/keys" >/dev/null ||
			lab_fail "vantagectl keys new aggregator failed"
		security="{ curve_secret_key: $LAB_DIR/keys/aggregator.key, agent_keys_dir: $LAB_DIR/keys/agents }"
	fi
	{
		cat <<YML
listen: { zmq: "$LAB_ZMQ", http: "$LAB_HTTP" }
state_dir: $LAB_DIR/state
security: $security
regions:
YML
		for r in "${LAB_REGIONS[@]}"; do
			echo "  - { name: $r, domain: ${LAB_DOMAIN[$r]} }"
		done
		cat <<YML
defaults: { interval: $1, timeout: $2${LAB_DEFAULTS-, settle_for: 5s} }
targets:
$3
${4:-}
YML
	} >"$LAB_DIR/vantage.yml"
}

# lab_start_aggregator: in hub, with its embedded PostgreSQL under
# $LAB_DIR/state; waits for the API (initdb on the first start is slow).
lab_start_aggregator() {
	lab_start hub aggregator "$LAB_BIN/vantage-aggregator" -d -f "$LAB_DIR/vantage.yml"
	LAB_AGG_PID=$LAB_LAST_PID
	lab_wait_for 90 "the aggregator API" lab_api /healthz
}

# lab_api PATH: GET http://10.77.0.1:8080PATH from inside hub; prints the body.
lab_api() {
	lab_exec hub curl -sf -m 5 "http://$LAB_HTTP$1"
}

# lab_start_agent REGION [NAME]: an agent named NAME (default: the region)
# in REGION's namespace; log in $LAB_DIR/agent-NAME.log.  Without
# LAB_INSECURE=1 it gets a key pair ($LAB_DIR/keys/NAME.*, made once) whose
# public key is admitted by the aggregator (copied to keys/agents).
lab_start_agent() {
	local region=$1 name=${2:-$1} security="insecure: true"
	local endpoint="aggregator: { endpoint: \"$LAB_ZMQ\" }"
	if [ "${LAB_INSECURE:-0}" != 1 ]; then
		mkdir -p "$LAB_DIR/keys/agents"
		[ -f "$LAB_DIR/keys/$name.key" ] ||
			"$LAB_BIN/vantagectl" keys new "$name" --dir "$LAB_DIR/keys" >/dev/null ||
			lab_fail "vantagectl keys new $name failed"
		cp "$LAB_DIR/keys/$name.pub" "$LAB_DIR/keys/agents/$name.pub"
		security="secret_key: $LAB_DIR/keys/$name.key"
		endpoint="aggregator: { endpoint: \"$LAB_ZMQ\", public_key: $LAB_DIR/keys/aggregator.pub }"
	fi
	cat >"$LAB_DIR/agent-$name.yml" <<YML
name: $name
region: $region
$endpoint
$security
spool_dir: $LAB_DIR/spool-$name
YML
	lab_start "$region" "agent-$name" "$LAB_BIN/vantage-agent" -d -f "$LAB_DIR/agent-$name.yml"
}

# lab_start_agents: one agent per region, named after the region.
lab_start_agents() {
	local r
	for r in "${LAB_REGIONS[@]}"; do
		lab_start_agent "$r"
	done
}

# The last final line `agent "NAME" epoch E: produced N results,
# acknowledged through M` of agent NAME, as "E N M".
lab_agent_final() {
	sed -n 's/.*agent "'"$1"'" epoch \([0-9]*\): produced \([0-9]*\) results, acknowledged through \([0-9]*\).*/\1 \2 \3/p' \
		"$LAB_DIR/agent-$1.log" | tail -n 1
}

# lab_stop_agent NAME: SIGTERM (the agent flushes and waits up to 10 s for
# its last Acks), waits for it to exit and prints "EPOCH PRODUCED ACKED".
lab_stop_agent() {
	lab_stop_agents "$1"
	lab_agent_final "$1"
}

# lab_stop_agents [NAME...] (default: r1..r5): SIGTERM to all at once, then
# waits for each; fails if one does not exit within 30 s, logs no final
# count, or exits with results the aggregator never acknowledged (with a
# healthy aggregator the agent's drain gets every Ack).  A scenario whose
# aggregator is down on purpose sets LAB_ALLOW_UNACKED=1: then it is only
# reported, and lab_invariant decides whether they are missing from the store.
lab_stop_agents() {
	local names=("$@") n pid i e p a
	[ ${#names[@]} -gt 0 ] || names=("${LAB_REGIONS[@]}")
	LAB_TEARDOWN_AT=$(date +%s.%N)
	for n in "${names[@]}"; do
		kill -TERM "${LAB_PID[agent-$n]}" 2>/dev/null || true
	done
	for n in "${names[@]}"; do
		pid=${LAB_PID[agent-$n]}
		for i in $(seq 1 300); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -0 "$pid" 2>/dev/null && lab_fail "agent $n did not exit within 30 s of SIGTERM"
		wait "$pid" 2>/dev/null || true
		read -r e p a < <(lab_agent_final "$n") || true
		[ -n "${p:-}" ] || lab_fail "agent $n logged no final count"
		if [ "$p" != "$a" ]; then
			[ "${LAB_ALLOW_UNACKED:-0}" = 1 ] ||
				lab_fail "agent $n epoch $e: produced $p results but the aggregator acknowledged only through $a"
			echo "note: agent $n epoch $e: produced $p, acknowledged through $a" >&2
		fi
	done
}

# ---- features the binaries under test may lack ---------------------------------

# lab_need_alerts: empty when the binaries under test can deliver alerts
# (the aggregator's alert sender and tests/fakes/hookd), else the reason.
lab_need_alerts() {
	if [ ! -x "$LAB_BIN/fakes/hookd" ]; then
		echo "needs tests/fakes/hookd (the webhook receiver), not built in $LAB_BIN"
	elif ! grep -aq alert_format_body "$LAB_BIN/vantage-aggregator"; then
		echo "needs alert delivery in the aggregator (aggregator/notify.c, alerts: webhook channels)"
	fi
}

# lab_need_selfcheck: empty when the agent under test has the self-check
# (controls: in vantage.yml make it IMPAIRED), else the reason.
lab_need_selfcheck() {
	grep -aq selfcheck_judge "$LAB_BIN/vantage-agent" ||
		echo "needs the agent self-check (agent/selfcheck.c: controls make an agent IMPAIRED)"
}

# ---- alerts: the webhook receiver ------------------------------------------------

LAB_HOOK_PORT=9000
LAB_HOOK_URL=http://$LAB_TGT_IP:$LAB_HOOK_PORT/hook
LAB_HOOK_UP=0
# The alerts: section for lab_write_conf's EXTRA_YAML: one JSON webhook
# channel "hook" to hookd, subscribed to every event.
LAB_ALERTS_YAML="alerts:
  - { name: hook, webhook: { url: \"$LAB_HOOK_URL\", format: json }, on: [outage, recovery, regional, blind, flapping] }"

# lab_start_hookd: the webhook receiver in tgt on 10.77.0.2:9000, every POST
# also in $LAB_DIR/hook.jsonl.  Without alert delivery (not built) it does
# nothing: lab_invariant then skips the alert checks with the reason.
lab_start_hookd() {
	[ -z "$(lab_need_alerts)" ] || return 0
	lab_start tgt hookd "$LAB_BIN/fakes/hookd" -l "$LAB_TGT_IP:$LAB_HOOK_PORT" -o "$LAB_DIR/hook.jsonl"
	lab_wait_for 10 "the webhook receiver" grep -q '^listening on' "$LAB_DIR/hookd.log"
	LAB_HOOK_UP=1
}

# lab_hook_received: what hookd received, a JSON array of
# {path, at, status, body} (body: the alert as JSON).
lab_hook_received() {
	lab_exec tgt curl -sf -m 5 "http://$LAB_TGT_IP:$LAB_HOOK_PORT/_hook/received"
}

# lab_hook_count TARGET EVENT: alerts of EVENT for TARGET hookd accepted.
lab_hook_count() {
	[ "$LAB_HOOK_UP" = 1 ] || {
		echo 0
		return 0
	}
	lab_hook_received | jq --arg t "$1" --arg e "$2" \
		'[.[] | select(.status != null and .status < 300 and .body.target == $t and .body.event == $e)] | length'
}

# ---- expected incidents and alerts (checked by lab_invariant) ----------------

# When lab_stop_agents last began.  Agents stopped at the end leave their
# targets without voters, and the aggregator rightly opens a blind incident
# for each once their votes are stale (2.5 intervals: 0.5 s for a 200 ms
# target, sooner than the checks below finish).  Blind incidents opened
# from then on are the teardown's, not the scenario's: they are reported,
# not checked.
LAB_TEARDOWN_AT=

# lab_teardown_blind: SQL condition on incidents i for those incidents.
lab_teardown_blind() {
	if [ -n "$LAB_TEARDOWN_AT" ]; then
		echo "(i.kind = 'blind' AND i.started_at >= to_timestamp($LAB_TEARDOWN_AT))"
	else
		echo "false"
	fi
}

declare -A LAB_EXPECT_INC=()   # "TARGET KIND" -> count
declare -A LAB_EXPECT_ALERT=() # "TARGET EVENT" -> N or MIN-MAX
LAB_EXPECT_DECLARED=0
LAB_ALERT_EVENTS=(outage recovery regional regional_recovery blind blind_recovery flapping)

# lab_expect_incident TARGET KIND [N]: the run ends with exactly N (1)
# incidents of KIND (outage, regional, blind) for TARGET.  Any incident not
# declared fails lab_invariant.
lab_expect_incident() {
	LAB_EXPECT_INC["$1 $2"]=${3:-1}
	LAB_EXPECT_DECLARED=1
}

# lab_expect_no_incidents: declares that nothing is expected (so far).
lab_expect_no_incidents() { LAB_EXPECT_DECLARED=1; }

# lab_expect_alert TARGET EVENT N|MIN-MAX: alerts of EVENT (outage, recovery,
# regional, regional_recovery, blind, blind_recovery, flapping) for TARGET,
# in the outbox and received by hookd.  Every other (target, event): none.
lab_expect_alert() {
	LAB_EXPECT_ALERT["$1 $2"]=$3
	LAB_EXPECT_DECLARED=1
}

lab_in_range() { # VALUE N|MIN-MAX
	local lo=${2%-*} hi=${2#*-}
	[ "$1" -ge "$lo" ] && [ "$1" -le "$hi" ]
}

# lab_incident_id TARGET KIND: the id of TARGET's newest incident of KIND.
lab_incident_id() {
	lab_psql "SELECT i.id FROM incidents i JOIN targets t ON t.id = i.target_id
		WHERE t.key = '$1' AND i.kind = '$2' ORDER BY i.id DESC LIMIT 1"
}

# lab_incident_state TARGET KIND: state of that newest incident ("" if none).
lab_incident_state() {
	lab_psql "SELECT i.state FROM incidents i JOIN targets t ON t.id = i.target_id
		WHERE t.key = '$1' AND i.kind = '$2' ORDER BY i.id DESC LIMIT 1"
}

# lab_print_incidents: every incident and its timeline, for the log.
lab_print_incidents() {
	lab_psql "SELECT i.id, t.key, i.kind, i.state, i.flapping, i.started_at, i.detected_at,
		i.resolved_at, i.regions FROM incidents i JOIN targets t ON t.id = i.target_id ORDER BY i.id" |
		sed 's/^/  incident: /'
	lab_psql "SELECT e.incident_id, e.at, e.kind, e.region, e.message FROM incident_events e
		ORDER BY e.incident_id, e.at, e.id" | sed 's/^/  event: /'
	lab_psql "SELECT o.incident_id, o.channel, o.event, o.created_at, o.sent_at, o.attempts
		FROM alert_outbox o ORDER BY o.id" | sed 's/^/  alert: /'
}

# lab_check_incidents: the incidents table holds exactly the declared
# incidents, and each expected outage or regional incident started at the
# earliest failing probe of its regions' failure streaks (± one interval of
# the target).  Prints METRIC started_at_offset_ms for each.
lab_check_incidents() {
	local got key want n t k id started first off interval fails=${#LAB_CHECK_FAILS[@]}
	n=$(lab_psql "SELECT count(*) FROM incidents i WHERE $(lab_teardown_blind)")
	[ "$n" = 0 ] || echo "note: $n blind incident(s) opened after the agents were stopped: not checked"
	got=$(lab_psql "SELECT t.key || ' ' || i.kind, count(*) FROM incidents i
		JOIN targets t ON t.id = i.target_id WHERE NOT $(lab_teardown_blind) GROUP BY 1 ORDER BY 1")
	while IFS='|' read -r key n; do
		[ -n "$key" ] || continue
		want=${LAB_EXPECT_INC[$key]:-0}
		[ "$n" = "$want" ] || lab_check_fail "incidents: $n \"$key\" incident(s), expected $want"
	done <<<"$got"
	for key in "${!LAB_EXPECT_INC[@]}"; do
		n=$(awk -F'|' -v k="$key" '$1 == k { print $2 }' <<<"$got")
		[ "${n:-0}" = "${LAB_EXPECT_INC[$key]}" ] ||
			lab_check_fail "incidents: ${n:-0} \"$key\" incident(s), expected ${LAB_EXPECT_INC[$key]}"
	done
	# The start of each region's failure streak as of detection: its first
	# DOWN result after its last UP result before detected_at.
	while IFS='|' read -r id t k started first off interval; do
		[ -n "$id" ] || continue
		echo "METRIC incident=$id target=$t kind=$k started_at_offset_ms=${off:-}"
		# An incident nobody expected has failed above already.
		[ -n "${LAB_EXPECT_INC["$t $k"]:-}" ] || continue
		if [ -z "$first" ]; then
			lab_check_fail "incident $id ($t $k): no failing probe of its regions before it was detected"
			continue
		fi
		[ "${off#-}" -le "$interval" ] ||
			lab_check_fail "incident $id ($t $k): started_at $started, but its regions' failures started at $first (${off} ms off, more than one interval)"
	done < <(lab_psql "WITH inc AS (SELECT i.id, t.key, i.kind, i.started_at, i.detected_at,
			i.regions, i.target_id, (t.spec->>'interval_ms')::bigint AS interval_ms
			FROM incidents i JOIN targets t ON t.id = i.target_id
			WHERE i.kind IN ('outage', 'regional')),
		per_agent AS (SELECT inc.id, a.id AS agent_id,
			(SELECT max(r.started_at) FROM results r WHERE r.target_id = inc.target_id
				AND r.agent_id = a.id AND r.outcome = 1 AND r.started_at <= inc.detected_at) AS last_up
			FROM inc JOIN agents a ON a.region = ANY (inc.regions)),
		streak AS (SELECT p.id, (SELECT min(r.started_at) FROM results r, inc
				WHERE inc.id = p.id AND r.target_id = inc.target_id AND r.agent_id = p.agent_id
				AND r.outcome = 2 AND r.started_at <= inc.detected_at
				AND r.started_at > coalesce(p.last_up, '-infinity')) AS first_fail
			FROM per_agent p)
		SELECT inc.id, inc.key, inc.kind, inc.started_at, min(s.first_fail),
			round(extract(epoch FROM inc.started_at - min(s.first_fail)) * 1000)::bigint,
			inc.interval_ms
		FROM inc LEFT JOIN streak s ON s.id = inc.id
		GROUP BY inc.id, inc.key, inc.kind, inc.started_at, inc.interval_ms ORDER BY inc.id")
	[ ${#LAB_CHECK_FAILS[@]} != "$fails" ] ||
		lab_ok "incidents: exactly the expected ones ($(lab_psql "SELECT count(*) FROM incidents i WHERE NOT $(lab_teardown_blind)") in all), each started at its first failing probe (± one interval)"
}

# lab_alerts_delivered: every outbox row is sent and hookd has accepted at
# least as many alerts as the outbox says were sent to it.
lab_alerts_delivered() {
	local unsent sent got
	unsent=$(lab_psql "SELECT count(*) FROM alert_outbox WHERE sent_at IS NULL")
	sent=$(lab_psql "SELECT count(*) FROM alert_outbox WHERE channel = 'hook' AND sent_at IS NOT NULL")
	got=$(lab_hook_received | jq '[.[] | select(.status != null and .status < 300)] | length')
	[ "$unsent" = 0 ] && [ "$got" -ge "$sent" ]
}

# lab_recoveries_settled: every resolved outage has had its recovery
# announced (its "settled" timeline entry).
lab_recoveries_settled() {
	# Settled after its latest reopening, as incident.c counts it: an
	# outage reopened after its recovery went is announced again.
	[ "$(lab_psql "SELECT count(*) FROM incidents i WHERE i.kind = 'outage' AND i.state = 'resolved'
		AND NOT EXISTS (SELECT 1 FROM incident_events e WHERE e.incident_id = i.id AND e.kind = 'settled'
		AND e.id > coalesce((SELECT max(r.id) FROM incident_events r
			WHERE r.incident_id = i.id AND r.kind = 'reopened'), 0))")" = 0 ]
}

# lab_alerts_settle [SECS]: waits up to SECS (30) for lab_alerts_delivered.
lab_alerts_settle() {
	lab_wait_for "${1:-30}" "every queued alert to be delivered" lab_alerts_delivered
}

# lab_check_alerts: for every target and event, the alerts in the outbox
# (channel "hook") and those hookd accepted are the declared count (0 when
# not declared), and the outbox and the receiver agree.  METRIC alert_delay_ms
# for each received one (receiver time - time the alert was queued).
lab_check_alerts() {
	local recv outbox t e key want n_out n_recv targets fails=${#LAB_CHECK_FAILS[@]}
	# An outage's recovery alert is queued once it settled (settle_for
	# after its resolution, 5 s with lab_write_conf's defaults).
	lab_wait_for 30 "the recovery of every resolved outage to settle" lab_recoveries_settled
	lab_alerts_settle 30
	# Without the alerts of the teardown's blind incidents.
	recv=$(lab_hook_received | jq --argjson skip "$(lab_psql "SELECT coalesce(json_agg(i.id), '[]')
		FROM incidents i WHERE $(lab_teardown_blind)")" \
		'[.[] | select(.body.incident_id as $id | $skip | index($id) | not)]')
	outbox=$(lab_psql "SELECT t.key, o.event, count(*) FROM alert_outbox o
		JOIN incidents i ON i.id = o.incident_id JOIN targets t ON t.id = i.target_id
		WHERE o.channel = 'hook' AND NOT $(lab_teardown_blind) GROUP BY 1, 2")
	targets=$(lab_psql "SELECT key FROM targets ORDER BY key")
	for t in $targets; do
		for e in "${LAB_ALERT_EVENTS[@]}"; do
			key="$t $e"
			want=${LAB_EXPECT_ALERT[$key]:-0}
			n_out=$(awk -F'|' -v t="$t" -v e="$e" '$1 == t && $2 == e { print $3 }' <<<"$outbox")
			n_out=${n_out:-0}
			n_recv=$(jq --arg t "$t" --arg e "$e" \
				'[.[] | select(.status != null and .status < 300 and .body.target == $t and .body.event == $e)] | length' <<<"$recv")
			if ! lab_in_range "$n_out" "$want" || ! lab_in_range "$n_recv" "$want"; then
				lab_check_fail "alerts \"$e\" for $t: $n_out in the outbox, $n_recv received; expected $want"
			elif [ "$n_out" != "$n_recv" ]; then
				lab_check_fail "alerts \"$e\" for $t: $n_out in the outbox but $n_recv received"
			elif [ "$n_recv" != 0 ]; then
				lab_ok "alerts: $n_recv \"$e\" for $t (expected $want), in the outbox and received"
			fi
		done
	done
	# Every alert names the incident of its target, on channel "hook".
	n_out=$(jq '[.[] | select(.status != null and .status < 300) | .body |
		select(.channel != "hook" or (.incident_id | type) != "number")] | length' <<<"$recv")
	[ "$n_out" = 0 ] || lab_check_fail "$n_out received alerts lack channel \"hook\" or an incident_id"
	while IFS='|' read -r t e n_out; do
		[ -n "$t" ] || continue
		echo "METRIC alert target=$t event=$e alert_delay_ms=$n_out"
	done < <(jq -r '.[] | select(.status != null and .status < 300) |
		"\(.body.incident_id)|\(.body.event)|\(.at)"' <<<"$recv" |
		while IFS='|' read -r id e at; do
			lab_psql "SELECT t.key, o.event, round(extract(epoch FROM '$at'::timestamptz - o.created_at) * 1000)
				FROM alert_outbox o JOIN incidents i ON i.id = o.incident_id JOIN targets t ON t.id = i.target_id
				WHERE o.incident_id = $id AND o.event = '$e' AND o.channel = 'hook' ORDER BY o.id LIMIT 1"
		done)
	[ ${#LAB_CHECK_FAILS[@]} != "$fails" ] ||
		lab_ok "alerts: exactly the expected ones ($(jq length <<<"$recv") received), each queued once and delivered"
}

# ---- database and invariant ----------------------------------------------------

# lab_psql SQL: runs SQL on the embedded cluster (unix socket under the work
# dir, reachable from the root namespace); unaligned, tuples only, "|" between columns.
lab_psql() {
	psql -X -q -h "$LAB_DIR/state/pg" -U vantage -d vantage -v ON_ERROR_STOP=1 -Atc "$1"
}

# An unsigned 64-bit epoch as logged, as the signed bigint the table holds.
lab_epoch_sql() {
	echo "($1::numeric - CASE WHEN $1::numeric > 9223372036854775807
		THEN 18446744073709551616 ELSE 0 END)::bigint"
}

# lab_check_stream NAME EPOCH PRODUCED: every seq 1..PRODUCED of (NAME, EPOCH)
# is stored exactly once or covered by a gap marker (never both), nothing
# else is stored.
lab_check_stream() {
	local name=$1 e=$2 p=$3 row rows distinct outside missing dropped both
	row=$(lab_psql "WITH a AS (SELECT id FROM agents WHERE name = '$name'),
		r AS MATERIALIZED (SELECT seq FROM results WHERE agent_id = (SELECT id FROM a)
			AND epoch = $(lab_epoch_sql "$e")),
		g AS MATERIALIZED (SELECT first_seq, last_seq FROM gaps WHERE agent_id = (SELECT id FROM a)
			AND epoch = $(lab_epoch_sql "$e")),
		s AS MATERIALIZED (SELECT s, EXISTS (SELECT 1 FROM r WHERE r.seq = s) AS stored,
			EXISTS (SELECT 1 FROM g WHERE s BETWEEN g.first_seq AND g.last_seq) AS gap
			FROM generate_series(1, $p::bigint) s)
		SELECT (SELECT count(*) FROM r), (SELECT count(DISTINCT seq) FROM r),
			(SELECT count(*) FROM r WHERE seq < 1 OR seq > $p),
			(SELECT count(*) FROM s WHERE NOT stored AND NOT gap),
			(SELECT count(*) FROM s WHERE NOT stored AND gap),
			(SELECT count(*) FROM s WHERE stored AND gap)")
	IFS='|' read -r rows distinct outside missing dropped both <<<"$row"
	[ "$distinct" = "$rows" ] ||
		lab_fail "agent $name epoch $e: $rows rows but $distinct distinct seqs (duplicates)"
	[ "$outside" = 0 ] || lab_fail "agent $name epoch $e: $outside rows with seqs outside 1..$p"
	[ "$missing" = 0 ] ||
		lab_fail "agent $name epoch $e: produced $p, stored $rows; $missing seqs neither stored nor in a gap marker"
	[ "$both" = 0 ] || lab_fail "agent $name epoch $e: $both seqs both stored and in a gap marker"
	lab_ok "agent $name epoch $e: produced $p, stored $rows, $dropped in gap markers, no duplicates"
}

# lab_invariant: for every agent epoch that logged a final count (every
# agent-*.log), the stream's rows match; and no (agent, epoch, seq) is stored
# twice anywhere.  An epoch lives as long as the agent's spool: a restarted
# agent (also after kill -9) continues it and logs a final line per process,
# each counting the whole epoch, so the largest count of an epoch is checked.
# Call it after the agents have stopped.  An epoch that never logged a final
# count (its only process was killed with -9) is reported; it cannot be
# checked from the log.  If the scenario declared expectations
# (lab_expect_incident, lab_expect_alert, lab_expect_no_incidents), then
# also: exactly the expected incidents, each started at its first failing
# probe (lab_check_incidents), and exactly the expected alerts, queued and
# received (lab_check_alerts, when hookd runs).  Those checks all run before
# the first failure is reported.  When alert delivery is not built, every
# other check still runs and the scenario then exits 77 (SKIP) naming what
# it needs.
lab_invariant() {
	local f name e p n=0 dups finals
	for f in "$LAB_DIR"/agent-*.log; do
		[ -f "$f" ] || continue
		name=$(basename "$f" .log)
		name=${name#agent-}
		finals=$(lab_agent_epochs "$name")
		while read -r e p; do
			[ -n "$e" ] || continue
			lab_check_stream "$name" "$e" "$p"
			n=$((n + 1))
		done <<<"$finals"
		for e in $(sed -n 's/.*agent "'"$name"'" in region .*: epoch \([0-9]*\), aggregator.*/\1/p' "$f" | sort -u); do
			grep -q "^$e " <<<"$finals" ||
				echo "note: agent $name epoch $e logged no final count (killed?): not checked"
		done
	done
	[ "$n" -gt 0 ] || lab_fail "lab_invariant: no agent logged a final count"
	dups=$(lab_psql "SELECT count(*) FROM (SELECT 1 FROM results
		GROUP BY agent_id, epoch, seq HAVING count(*) > 1) d")
	[ "$dups" = 0 ] || lab_fail "$dups (agent, epoch, seq) are stored more than once"
	lab_ok "invariant: $n agent epochs checked, every result stored exactly once"
	if [ "$LAB_EXPECT_DECLARED" = 0 ]; then
		echo "note: incidents and alerts not checked (the scenario declared no expectations)"
		return 0
	fi
	lab_check_incidents
	if [ "$LAB_HOOK_UP" = 1 ]; then
		lab_check_alerts
	elif [ -z "$(lab_need_alerts)" ]; then
		echo "note: alerts not checked (the scenario started no webhook receiver)"
	fi
	if [ ${#LAB_CHECK_FAILS[@]} -gt 0 ]; then
		lab_print_incidents
		[ "$LAB_HOOK_UP" = 1 ] && lab_hook_received |
			jq -c '.[] | {at, status, event: .body.event, target: .body.target, incident_id: .body.incident_id}' |
			sed 's/^/  received: /'
		for f in "${LAB_CHECK_FAILS[@]}"; do
			echo "FAIL: $f"
		done
		lab_fail "${#LAB_CHECK_FAILS[@]} checks failed"
	fi
	[ -z "$(lab_need_alerts)" ] || lab_skip "$(lab_need_alerts); every other check passed"
}

# ---- restarts, memory, connections (scenarios 5-13) ----------------------------

# lab_restart_agent NAME [EXTRA_YAML]: starts agent NAME again from its own
# config (after SIGTERM to a running one, waiting up to 30 s for it to
# drain), with EXTRA_YAML (e.g. "spool_max: 1048576") appended to that
# config first.  Nothing else changes: the same spool_dir, so with the disk
# spool the restarted agent continues its epoch.
lab_restart_agent() {
	local name=$1 conf=$LAB_DIR/agent-$1.yml region
	region=$(sed -n 's/^region: *//p' "$conf")
	[ -n "$region" ] || lab_fail "no region in $conf"
	if kill -0 "${LAB_PID[agent-$name]}" 2>/dev/null; then
		lab_stop "agent-$name" 30
	else
		wait "${LAB_PID[agent-$name]}" 2>/dev/null || true
	fi
	[ -z "${2:-}" ] || printf '%s\n' "$2" >>"$conf"
	lab_start "$region" "agent-$name" "$LAB_BIN/vantage-agent" -d -f "$conf"
}

# lab_rss_kb NAME: resident memory (VmRSS, kB) of the process started as NAME.
lab_rss_kb() {
	awk '$1 == "VmRSS:" { print $2 }' "/proc/${LAB_PID[$1]}/status"
}

# lab_welcomes NAME: how often agent NAME has been welcomed by an aggregator
# (one per connection that completed its Hello).
lab_welcomes() {
	grep -c 'aggregator welcomed us' "$LAB_DIR/agent-$1.log" || true
}

# lab_agent_json NAME: agent NAME's entry in /api/v1/agents.
lab_agent_json() {
	lab_api /api/v1/agents | jq -e --arg n "$1" '.agents[] | select(.name == $n)'
}

declare -A LAB_P0=() # NAME -> produced, as its heartbeat said at lab_mark_produced

# lab_mark_produced NAME...: remembers what each agent's latest heartbeat
# said it had produced (before a fault), for lab_caught_up.
lab_mark_produced() {
	local n
	for n in "$@"; do
		LAB_P0[$n]=$(lab_agent_json "$n" | jq -r .produced)
	done
}

# lab_caught_up NAME...: each agent is connected, has sent a heartbeat since
# lab_mark_produced (it produced more), and the aggregator has acknowledged
# everything that heartbeat said it had produced.  An agent sends its
# heartbeat before the results it resends after a Welcome, so this means
# its backlog is stored.
lab_caught_up() {
	local n
	for n in "$@"; do
		lab_agent_json "$n" | jq -e --argjson p0 "${LAB_P0[$n]:-0}" \
			'.connected and .produced > $p0 and .acked_seq >= .produced' >/dev/null || return 1
	done
}

# lab_zmq_conns HOST: established TCP connections to or from the aggregator's
# ZeroMQ port, seen in HOST's namespace.
lab_zmq_conns() {
	local port=${LAB_ZMQ##*:}
	lab_exec "$1" ss -Htn state established "( sport = :$port or dport = :$port )" | grep -c . || true
}

# lab_zmq_reset HOST: destroys (ss -K, as a TCP reset would) every
# established connection to or from the aggregator's ZeroMQ port in HOST's
# namespace; prints how many there were.
lab_zmq_reset() {
	local port=${LAB_ZMQ##*:}
	lab_exec "$1" ss -HKtn state established "( sport = :$port or dport = :$port )" | grep -c . || true
}

# lab_seconds_since T0: seconds (one decimal) since T0 (date +%s.%N).
lab_seconds_since() {
	awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'
}

# lab_agent_epochs NAME: "EPOCH PRODUCED" for every epoch agent NAME logged a
# final count for, with the largest count of each (a restarted agent logs
# one line per process; each counts the whole epoch so far).
lab_agent_epochs() {
	sed -n 's/.*agent "'"$1"'" epoch \([0-9]*\): produced \([0-9]*\) results, acknowledged through \([0-9]*\).*/\1 \2/p' \
		"$LAB_DIR/agent-$1.log" | sort -k1,1 -k2,2n | awk '{ max[$1] = $2 } END { for (e in max) print e, max[e] }'
}
