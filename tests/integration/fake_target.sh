#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Integration test of the fake target server (tests/fakes/target.c): starts
# it on 127.0.0.1 and 127.0.0.2 with kernel-chosen ports and checks with
# curl every behaviour the demo and the lab rely on.  It must never touch a
# process it did not start; it exits 77 when a tool it needs is missing.
set -euo pipefail

B=${B:-build}
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
case $B in
/*) BIN=$B/fakes/target ;;
*) BIN=$TOP/$B/fakes/target ;;
esac

for tool in curl jq awk; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "SKIP: \"$tool\" is not installed (make deps)"
		exit 77
	fi
done
if [ ! -x "$BIN" ]; then
	echo "FAIL: \"$BIN\" does not exist; build it with make $B/fakes/target"
	exit 1
fi

work=$(mktemp -d)
pid=

cleanup() {
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT

fail() {
	echo "FAIL: $*"
	if [ -s "$work/stderr" ]; then
		echo "--- last lines of the server's stderr:"
		tail -n 20 "$work/stderr"
	fi
	exit 1
}

ok() {
	echo "ok - $*"
}

# The rules file the server starts with; rewritten for the SIGHUP check.
cat >"$work/rules.json" <<'EOF'
[ { "path": "/from-file", "action": "answer", "body": "file v1" } ]
EOF

"$BIN" -l 127.0.0.1:0 -l 127.0.0.2:0 -f "$work/rules.json" \
	-p "$work/pid" -q >"$work/stdout" 2>"$work/stderr" &
pid=$!

for _ in $(seq 1 50); do
	[ "$(grep -c '^listening on ' "$work/stdout" 2>/dev/null || true)" -ge 2 ] && break
	kill -0 "$pid" 2>/dev/null || fail "the server exited at start"
	sleep 0.1
done
P1=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$work/stdout")
P2=$(sed -n 's/^listening on 127\.0\.0\.2:\([0-9][0-9]*\)$/\1/p' "$work/stdout")
[ -n "$P1" ] && [ -n "$P2" ] || fail "no \"listening on\" lines: $(cat "$work/stdout")"
[ "$(cat "$work/pid")" = "$pid" ] || fail "pid file holds \"$(cat "$work/pid")\", not $pid"
U1=http://127.0.0.1:$P1
U2=http://127.0.0.2:$P2
ok "listening on 127.0.0.1:$P1 and 127.0.0.2:$P2, pid file written"

# get URL [curl options...]: sets code and body; curl's exit status in rc.
get() {
	local url=$1
	shift
	rc=0
	body=$(curl -s -o - -w '\n%{http_code}' "$@" "$url") || rc=$?
	code=${body##*$'\n'}
	body=${body%$'\n'*}
}

expect() {
	local what=$1 want_code=$2 want_body=$3
	[ "$rc" = 0 ] || fail "$what: curl exited $rc"
	[ "$code" = "$want_code" ] || fail "$what: status $code, expected $want_code"
	[ "$body" = "$want_body" ] || fail "$what: body \"$body\", expected \"$want_body\""
	ok "$what"
}

get "$U1/anything"
expect "unmatched path answers 200 \"ok\"" 200 ok
get "$U1/from-file"
expect "rule from -f applies" 200 "file v1"

rules='[
  { "path": "/down", "action": "fail", "status": 503, "body": "down" },
  { "path": "/slow", "action": "delay", "delay_ms": 400, "body": "slow" },
  { "path": "/hang", "action": "hang" },
  { "path": "/reset", "action": "reset" },
  { "path": "/refuse", "action": "refuse" },
  { "path": "/api", "action": "answer", "body": "api" },
  { "path": "/api/v2", "action": "answer", "body": "v2" },
  { "path": "/region", "action": "answer", "body": "world a" },
  { "path": "/region", "client": "127.0.0.2", "action": "fail", "status": 503, "body": "world b" },
  { "path": "/", "client": "127.0.0.3/32", "action": "answer", "status": 299, "body": "c" },
  { "path": "/count", "action": "answer", "body": "counted" },
  { "path": "/lossy", "action": "answer", "loss_pct": 100 }
]'
get "$U1/_fake/rules" -X PUT --data-binary "$rules"
[ "$code" = 200 ] || fail "PUT /_fake/rules: status $code: $body"
[ "$(jq -r .rules <<<"$body")" = 12 ] || fail "PUT /_fake/rules: reply $body"
get "$U1/_fake/rules"
[ "$(jq length <<<"$body")" = 12 ] || fail "GET /_fake/rules: $body"
get "$U1/from-file"
expect "PUT /_fake/rules replaces the rules at runtime" 200 ok

get "$U1/down"
expect "fail rule answers 503" 503 down

get "$U1/slow"
[ "$rc" = 0 ] && [ "$code" = 200 ] && [ "$body" = slow ] || fail "delay rule: rc $rc, status $code"
elapsed=$(curl -s -o /dev/null -w '%{time_total}' "$U1/slow")
awk -v t="$elapsed" 'BEGIN { exit !(t >= 0.4) }' || fail "delay rule answered after ${elapsed}s, expected >= 0.4s"
ok "delay rule answers after ${elapsed}s >= 0.4s"

get "$U1/hang" -m 1
[ "$rc" = 28 ] || fail "hang rule: curl -m 1 exited $rc, expected 28 (timeout)"
ok "hang rule makes curl time out"
# The hung request must be released once curl has gone.
pending=
for _ in $(seq 1 20); do
	pending=$(curl -s "$U1/_fake/stats" | jq .pending)
	[ "$pending" = 0 ] && break
	sleep 0.1
done
[ "$pending" = 0 ] || fail "hang rule: $pending requests still pending after the client left"
ok "hung request released when the client leaves"

get "$U1/lossy" -m 1
[ "$rc" = 28 ] || fail "loss_pct 100: curl -m 1 exited $rc, expected 28 (timeout)"
[ "$(curl -s "$U1/_fake/stats" | jq .lost)" = 1 ] || fail "loss_pct 100: not counted as lost"
ok "a lost request hangs and is counted as lost"

get "$U1/reset"
[ "$rc" = 56 ] || [ "$rc" = 52 ] || fail "reset rule: curl exited $rc, expected 56 or 52"
ok "reset rule breaks the connection (curl exit $rc)"

get "$U1/refuse"
[ "$rc" = 52 ] || [ "$rc" = 56 ] || fail "refuse rule: curl exited $rc, expected 52 or 56"
ok "refuse rule closes without an answer (curl exit $rc)"

get "$U1/api/v1"
expect "prefix rule matches below it" 200 api
get "$U1/api/v2/x"
expect "longest prefix wins" 200 v2

get "$U1/region" --interface 127.0.0.1
expect "client 127.0.0.1 sees the default world" 200 "world a"
get "$U2/region" --interface 127.0.0.2
expect "client 127.0.0.2 sees its own world" 503 "world b"
get "$U2/region" --interface 127.0.0.1
expect "worlds follow the client address, not the listener" 200 "world a"
get "$U1/region" --interface 127.0.0.3
expect "most specific client rule beats a longer path" 299 c

get "$U1/_fake/rules" -X PUT --data-binary '[{"path": "/x", "action": '
[ "$code" = 400 ] && jq -e .error <<<"$body" >/dev/null || fail "bad JSON: status $code: $body"
get "$U1/_fake/rules" -X PUT --data-binary '[{"path": "/x", "action": "answer", "status": "200"}]'
[ "$code" = 400 ] && jq -e .error <<<"$body" >/dev/null || fail "bad status field: status $code: $body"
get "$U1/_fake/rules" -X PUT --data-binary '[{"path": "/x", "action": "hang", "body": "no"}]'
[ "$code" = 400 ] || fail "body on a hang rule: status $code: $body"
get "$U1/_fake/rules" -X PUT --data-binary '[{"path": "/x", "action": "answer", "colour": "red"}]'
[ "$code" = 400 ] || fail "unknown field: status $code: $body"
get "$U1/_fake/rules"
[ "$(jq length <<<"$body")" = 12 ] || fail "a rejected PUT changed the rules: $body"
ok "invalid rules are rejected with 400 and a JSON error, rules unchanged"

head -c 70000 /dev/zero | tr '\0' ' ' >"$work/big"
get "$U1/_fake/rules" -X PUT --data-binary "@$work/big"
[ "$code" = 413 ] || fail "70000-byte PUT: status $code, expected 413"
ok "control request bodies are limited to 64 KiB"

get "$U1/_fake/reset-stats" -X POST
[ "$code" = 200 ] || fail "POST /_fake/reset-stats: status $code"
for _ in 1 2 3; do curl -s -o /dev/null --interface 127.0.0.1 "$U1/count"; done
for _ in 1 2; do curl -s -o /dev/null --interface 127.0.0.2 "$U2/count"; done
curl -s -o /dev/null --interface 127.0.0.2 "$U2/down"
get "$U1/_fake/stats"
stats=$body
[ "$(jq .requests <<<"$stats")" = 6 ] || fail "stats: requests: $stats"
[ "$(jq '.by_path["/count"]' <<<"$stats")" = 5 ] || fail "stats: by_path: $stats"
[ "$(jq '.by_path["/down"]' <<<"$stats")" = 1 ] || fail "stats: by_path: $stats"
[ "$(jq '.by_client["127.0.0.1"]' <<<"$stats")" = 3 ] || fail "stats: by_client: $stats"
[ "$(jq '.by_client["127.0.0.2"]' <<<"$stats")" = 3 ] || fail "stats: by_client: $stats"
[ "$(jq .by_action.fail <<<"$stats")" = 1 ] || fail "stats: by_action: $stats"
ok "stats count requests per path, client and action"

cat >"$work/rules.json" <<'EOF'
[ { "path": "/from-file", "action": "answer", "body": "file v2" } ]
EOF
kill -HUP "$pid"
for _ in $(seq 1 20); do
	get "$U1/from-file"
	[ "$body" = "file v2" ] && break
	sleep 0.1
done
expect "SIGHUP re-reads the rules file" 200 "file v2"
get "$U1/down"
expect "SIGHUP replaces rules set by PUT" 200 ok

echo '[ { "path": "/from-file", "action": "explode" } ]' >"$work/rules.json"
kill -HUP "$pid"
sleep 0.2
get "$U1/from-file"
expect "SIGHUP with an invalid file keeps the rules in force" 200 "file v2"
grep -q 'unknown action' "$work/stderr" || fail "SIGHUP with an invalid file: no warning logged"

# duration_ms: the window starts at the first request the rule is chosen
# for, not at the PUT, and a spent rule falls through to the next best (or
# to 200 ok).  Times are taken around the requests, so each check holds
# whatever the server's exact start: it began after t_first was read and
# before the first answer arrived.
now_ms() { date +%s%3N; }
blip='[
  { "path": "/blip", "action": "fail", "status": 503, "body": "blip", "duration_ms": 1200 },
  { "path": "/fall", "action": "fail", "duration_ms": 300 },
  { "path": "/fa", "action": "answer", "body": "next best" }
]'
get "$U1/_fake/rules" -X PUT --data-binary "$blip"
[ "$code" = 200 ] || fail "PUT of time-limited rules: status $code: $body"
get "$U1/_fake/rules"
armed=$body
[ "$(jq -c '.[0] | [.duration_ms, has("started_mono_us")]' <<<"$armed")" = '[1200,false]' ] ||
	fail "GET /_fake/rules of an armed rule: $armed"
get "$U1/_fake/rules" -X PUT --data-binary "$armed"
t_put_done=$(now_ms)
get "$U1/_fake/rules"
[ "$body" = "$armed" ] || fail "GET -> PUT of an armed rule changed it: $armed -> $body"
ok "an armed time-limited rule is shown with duration_ms and no start; GET -> PUT keeps it"

sleep 1
t_first=$(now_ms)
get "$U1/blip"
t_first_done=$(now_ms)
expect "1 s after the PUT, the first request gets the time-limited rule" 503 blip
get "$U1/_fake/rules"
running=$body
jq -e '.[0].started_mono_us | type == "number"' <<<"$running" >/dev/null ||
	fail "GET /_fake/rules after the first request shows no started_mono_us: $running"
get "$U1/_fake/rules" -X PUT --data-binary "$running"
get "$U1/_fake/rules"
[ "$body" = "$running" ] || fail "GET -> PUT of a running rule changed it: $running -> $body"
ok "the started window is shown as started_mono_us; GET -> PUT carries it over"

sleep 0.3
t_second=$(now_ms)
get "$U1/blip"
t_second_done=$(now_ms)
[ $((t_second_done - t_first)) -lt 1200 ] ||
	fail "the machine is too slow for this check: $((t_second_done - t_first)) ms between the requests"
[ $((t_second - t_put_done)) -gt 1200 ] || fail "the second request came too early to tell"
expect "$((t_second - t_put_done)) ms after the PUT, $((t_second_done - t_first)) ms after the first request, the rule still applies" 503 blip

sleep "$(awk -v ms=$((t_first_done + 1300 - $(now_ms))) 'BEGIN { print (ms > 0 ? ms / 1000 : 0) }')"
get "$U1/blip"
expect "after duration_ms the spent rule falls through to 200 ok" 200 ok
get "$U1/fall"
expect "a second time-limited rule starts its own window" 503 fail
sleep 0.4
get "$U1/fall"
expect "a spent rule falls through to the next-best rule" 200 "next best"

get "$U1/_fake/rules" -X PUT --data-binary "$blip"
get "$U1/blip"
expect "a PUT without started_mono_us arms the rule again" 503 blip

for bad in '"duration_ms": 0' '"duration_ms": 600001' '"duration_ms": 1.5' \
	'"started_mono_us": 1' '"duration_ms": 100, "started_mono_us": 9223372036854775807' \
	'"duration_ms": 100, "started_mono_us": -1'; do
	get "$U1/_fake/rules" -X PUT --data-binary "[{\"path\": \"/x\", \"action\": \"answer\", $bad}]"
	[ "$code" = 400 ] && jq -e .error <<<"$body" >/dev/null ||
		fail "rule with $bad: status $code: $body"
done
ok "duration_ms outside 1..600000, and started_mono_us without it or in the future, are rejected"

kill -TERM "$pid"
status=0
wait "$pid" || status=$?
pid=
[ "$status" = 0 ] || fail "SIGTERM: the server exited $status"
[ ! -e "$work/pid" ] || fail "SIGTERM: the pid file is still there"
ok "SIGTERM exits 0 and removes the pid file"
