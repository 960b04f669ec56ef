#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Lab scenario 16 (TESTPLAN.md §3): hostile bytes from a region.  While the
# five real agents probe three healthy targets, a hostile client in r5's
# namespace (tests/fakes/zsend, next to r5's real agent) sends the
# aggregator's ZeroMQ port a 100 MB frame, random frames, truncated
# protobuf, messages of 5,000 frames, 900 KB strings, out-of-range fields
# and results without Hello, and raw bytes straight onto the TCP port; and
# the HTTP API a 1 MB body and a header flood.  The aggregator must drop the
# 100 MB peer, count the rest as bad frames, stay up with its peak RSS under
# 200 MB, answer the API, and the real agents must not notice: every
# target stays UP with five UP votes, their bad_messages stay 0, no
# incident opens, and every result is stored exactly once.
# Plaintext (LAB_INSECURE): with CurveZMQ a hostile peer never gets past
# the handshake (lab_s15_auth.sh); this tests what an admitted peer could
# send.
LAB_INSECURE=1
. "$(dirname "$0")/lib/lab.sh"

TARGETS=(s16a s16b s16c)
INTERVAL_S=2

lab_up
[ -x "$LAB_BIN/fakes/zsend" ] || lab_skip "$LAB_BIN/fakes/zsend is not built (make)"
lab_start_target
targets=""
for t in "${TARGETS[@]}"; do
	targets+="  - { name: $t, http: { url: \"$LAB_TGT_URL/$t\" } }"$'\n'
done
lab_write_conf ${INTERVAL_S}s 2s "$targets"
lab_start_aggregator
lab_start_agents

target() { lab_api "/api/v1/targets/$1"; }
all_up() {
	local t
	for t in "${TARGETS[@]}"; do
		target "$t" | jq -e '.state == "up" and ([.regions[] | select(.vote == "up")] | length) == 5' || return 1
	done
}
bad_frames() { lab_api /healthz | jq .ingest.bad_frames; }
peak_kb() { sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$LAB_AGG_PID/status"; }
lab_wait_for 20 "every target up with five UP votes" all_up
bad0=$(bad_frames)
peak0=$(peak_kb)
lab_ok "every target up from five regions; bad_frames $bad0, aggregator peak RSS $((peak0 / 1024)) MB"

# ---- the hostile client, in r5 ----
zsend() { lab_exec r5 "$LAB_BIN/fakes/zsend" "$LAB_ZMQ" "$@"; }
zsend huge >"$LAB_DIR/zsend-huge.log" 2>&1 ||
	lab_fail "the aggregator kept the connection after a 100 MB frame: $(cat "$LAB_DIR/zsend-huge.log")"
lab_ok "a 100 MB frame from r5: the aggregator dropped that peer"
zsend random 200 || lab_fail "zsend random failed"
zsend manyframes 30 || lab_fail "zsend manyframes failed"
zsend hugestrings 10 || lab_fail "zsend hugestrings failed"
zsend all 20 || lab_fail "zsend all failed"
# Raw bytes onto the ZeroMQ port: not even a ZMTP greeting.
lab_exec r5 bash -c "head -c 1048576 /dev/urandom >/dev/tcp/$LAB_HUB_IP/7500" 2>/dev/null || true
# The API: a body over its 64 KiB limit, and headers over 16 KiB.
code=$(lab_exec r5 bash -c "head -c 1048576 /dev/zero | curl -s -o /dev/null -w '%{http_code}' -m 10 \
	-X POST -H 'Content-Type: application/json' --data-binary @- http://$LAB_HTTP/api/v1/silences" || true)
[ "$code" = 413 ] || lab_fail "a 1 MB API body got HTTP $code, want 413"
code=$(lab_exec r5 curl -s -o /dev/null -w '%{http_code}' -m 10 -H "X-Flood: $(head -c 20000 /dev/zero | tr '\0' a)" \
	"http://$LAB_HTTP/api/v1/status" || true)
[ "$code" != 200 ] || lab_fail "a 20 KB header was accepted"
lab_log "API: 1 MB body refused with 413, 20 KB header with $code"

# ---- a sustained attack while the agents keep probing ----
results() { lab_psql "SELECT count(*) FROM results"; }
stored0=$(results)
end=$(($(date +%s) + 20))
rounds=0
while [ "$(date +%s)" -lt "$end" ]; do
	zsend all 3 || lab_fail "zsend all failed"
	zsend manyframes 3 || lab_fail "zsend manyframes failed"
	all_up >/dev/null || lab_fail "a target left UP during the attack: $(lab_api /api/v1/status)"
	rounds=$((rounds + 1))
done
stored=$(($(results) - stored0))
# 5 agents x 3 targets every 2 s for 20 s is 150; allow for batching.
[ "$stored" -ge 100 ] || lab_fail "only $stored results stored during 20 s of attack, want >= 100"
lab_ok "20 s of attack ($rounds rounds): every target stayed UP, $stored results stored meanwhile"

# 30 many-frame messages + 10 x 3 refused big messages + 20 x "all" (7+
# each) + the sustained rounds, at least; the random frames add more.
enough() { [ "$(bad_frames)" -ge $((bad0 + 200)) ]; }
lab_wait_for 20 "the hostile messages to be counted" enough
kill -0 "$LAB_AGG_PID" || lab_fail "the aggregator died"
peak=$(peak_kb)
[ "$peak" -lt $((200 * 1024)) ] || lab_fail "the aggregator's peak RSS reached $((peak / 1024)) MB (bound 200 MB)"
echo "METRIC s16 bad_frames=$(($(bad_frames) - bad0)) agg_peak_rss_mb=$((peak / 1024))"
lab_ok "aggregator up: $(($(bad_frames) - bad0)) bad frames counted, peak RSS $((peak / 1024)) MB"

# ---- the real agents did not notice ----
lab_wait_for 10 "every target up with five UP votes after the attack" all_up
bad_agents=$(lab_api /api/v1/agents | jq '[.agents[] | select(.bad_messages != 0 or .connected != true)] | length')
[ "$bad_agents" = 0 ] || lab_fail "real agents affected: $(lab_api /api/v1/agents | jq -c '.agents[] | {name, connected, bad_messages}')"
n=$(lab_psql "SELECT count(*) FROM incidents")
[ "$n" = 0 ] || lab_fail "incidents opened during the attack: $(lab_psql "SELECT id, kind, state FROM incidents")"
lab_ok "five agents connected with no bad messages, every target up, no incident"

lab_stop_agents
lab_expect_no_incidents
lab_invariant
