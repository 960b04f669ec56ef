#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The HTTP API contract (status codes, JSON errors, per-region latest
# results, agents) and configuration reload: SIGHUP with a new target makes
# every connected agent probe it; SIGHUP with a broken file keeps the old
# configuration and says why.
. "$(dirname "$0")/../lib/common.sh"
vt_setup

vt_start_target
vt_target_rules '[{"path":"/fail","action":"fail","status":503}]'
vt_write_conf 1s 2s "  - { name: web, group: \"Public\", http: { url: \"http://127.0.0.1:$VT_TARGET_PORT/ok\" } }
  - { name: broken, http: { url: \"http://127.0.0.1:$VT_TARGET_PORT/fail\" } }"
vt_start_aggregator
vt_start_agent eu-west eu-west
vt_start_agent us-east us-east
for key in broken web; do
	vt_wait_for 15 "results for $key from two regions" bash -c \
		"curl -sf http://$VT_HTTP/api/v1/targets/$key | grep -c '\"region\"' | grep -qx 2"
done

status() { curl -s -o "$VT_DIR/body" -w '%{http_code}' "$@"; }
[ "$(status "http://$VT_HTTP/healthz")" = 200 ] || vt_fail "/healthz"
[ "$(status "http://$VT_HTTP/api/v1/targets/nope")" = 404 ] || vt_fail "unknown target is not 404"
grep -q '"error": "target \\"nope\\" not found"' "$VT_DIR/body" || vt_fail "404 body: $(cat "$VT_DIR/body")"
[ "$(status "http://$VT_HTTP/api/v1/targets/a%27%3B%20DROP")" = 400 ] || vt_fail "bad key is not 400"
[ "$(status -X POST "http://$VT_HTTP/api/v1/targets/web")" = 405 ] || vt_fail "POST is not 405"
[ "$(status "http://$VT_HTTP/nowhere")" = 404 ] || vt_fail "unknown path is not 404"
vt_ok "status codes and JSON errors"

b=$(vt_api /api/v1/targets/broken)
grep -q '"outcome": "down"' <<<"$b" && grep -q '"reason": "http_status"' <<<"$b" &&
	grep -q '"http_status": 503' <<<"$b" || vt_fail "broken target not reported down/503: $b"
w=$(vt_api /api/v1/targets/web)
grep -q '"outcome": "up"' <<<"$w" && grep -q '"group": "Public"' <<<"$w" || vt_fail "web target: $w"
a=$(vt_api /api/v1/agents)
[ "$(grep -c '"connected": true' <<<"$a")" = 2 ] || vt_fail "agents: $a"
"$BIN/vantagectl" --url "http://$VT_HTTP" targets | grep -q '^broken .*down .*503' ||
	vt_fail "vantagectl targets: $("$BIN/vantagectl" --url "http://$VT_HTTP" targets)"
"$BIN/vantagectl" --url "http://$VT_HTTP" --json target web | grep -q '"key": "web"' || vt_fail "vantagectl --json target"
rc=0
"$BIN/vantagectl" --url "http://$VT_HTTP" target nope 2>"$VT_DIR/ctl.err" || rc=$?
[ "$rc" = 1 ] && grep -q 'not found (HTTP 404)' "$VT_DIR/ctl.err" || vt_fail "vantagectl on a missing target: rc $rc"
vt_ok "per-region results, agents and vantagectl agree"

# Reload: add a target; both agents probe it.
cp "$VT_DIR/vantage.yml" "$VT_DIR/vantage.yml.orig"
echo "  - { name: added, http: { url: \"http://127.0.0.1:$VT_TARGET_PORT/ok/added\" } }" >>"$VT_DIR/vantage.yml"
kill -HUP "$VT_AGG_PID"
vt_wait_for 15 "the added target probed from both regions" bash -c \
	"curl -sf http://$VT_HTTP/api/v1/targets/added | grep -c '\"region\"' | grep -qx 2"
grep -q 'configuration reloaded: 3 targets' "$VT_DIR/aggregator.log" || vt_fail "reload not logged"
[ "$(vt_psql "SELECT count(*) FROM targets WHERE key = 'added' AND retired_at IS NULL")" = 1 ] ||
	vt_fail "added target not recorded"
vt_ok "SIGHUP pushed the new target to every agent"

# A broken file is refused and the running configuration kept.
echo "  - { name: added, http: { url: \"http://dup/\" } }" >>"$VT_DIR/vantage.yml"
kill -HUP "$VT_AGG_PID"
vt_wait_for 10 "the reload refusal" grep -q 'configuration not reloaded: .*vantage.yml:[0-9]*: ' "$VT_DIR/aggregator.log"
kill -0 "$VT_AGG_PID" || vt_fail "aggregator died on a bad reload"
vt_api /api/v1/targets/added >/dev/null || vt_fail "old configuration lost"
vt_ok "a bad file on SIGHUP is reported with FILE:LINE and the old configuration kept"

# Removing a target retires it.
cp "$VT_DIR/vantage.yml.orig" "$VT_DIR/vantage.yml"
kill -HUP "$VT_AGG_PID"
vt_wait_for 10 "the target retired" bash -c \
	"[ \"\$(psql -X -h $VT_DIR/state/pg -U vantage vantage -Atc \"SELECT retired_at IS NOT NULL FROM targets WHERE key = 'added'\")\" = t ]"
[ "$(status "http://$VT_HTTP/api/v1/targets/added")" = 404 ] || vt_fail "removed target still served"
vt_ok "a removed target is retired, its rows kept"
for r in eu-west us-east; do
	read -r e p a < <(vt_stop_agent "$r")
	[ "$p" = "$a" ] || vt_fail "agent $r: produced $p, acknowledged $a"
done

# Writes need a bearer token with a write role (silences as the example).
printf 'w-%s\n' "$RANDOM$RANDOM$RANDOM" >"$VT_DIR/ops.token"
printf 'r-%s\n' "$RANDOM$RANDOM$RANDOM" >"$VT_DIR/viewer.token"
chmod 600 "$VT_DIR/ops.token" "$VT_DIR/viewer.token"
cat >>"$VT_DIR/vantage.yml" <<YML
api_tokens:
  - { name: ops, token_file: $VT_DIR/ops.token, role: write }
  - { name: viewer, token_file: $VT_DIR/viewer.token, role: read }
YML
kill -HUP "$VT_AGG_PID"
vt_wait_for 10 "the reload with tokens" bash -c "[ \$(grep -c 'configuration reloaded' $VT_DIR/aggregator.log) -ge 3 ]"
ops="Authorization: Bearer $(cat "$VT_DIR/ops.token")"
viewer="Authorization: Bearer $(cat "$VT_DIR/viewer.token")"
body='{"target":"web","duration_s":3600,"reason":"planned maintenance"}'
[ "$(status -X POST --data "$body" "http://$VT_HTTP/api/v1/silences")" = 401 ] || vt_fail "no token: not 401"
[ "$(status -X POST -H "Authorization: Bearer nope" --data "$body" "http://$VT_HTTP/api/v1/silences")" = 401 ] ||
	vt_fail "wrong token: not 401"
[ "$(status -X POST -H "$viewer" --data "$body" "http://$VT_HTTP/api/v1/silences")" = 403 ] || vt_fail "read token: not 403"
[ "$(status -X POST -H "$ops" --data '{"target":"x'"'"'; DROP TABLE silences;--","duration_s":60}' \
	"http://$VT_HTTP/api/v1/silences")" = 400 ] || vt_fail "SQL-ish target: not 400"
[ "$(status -X POST -H "$ops" --data '{"duration_s":1e9}' "http://$VT_HTTP/api/v1/silences")" = 400 ] ||
	vt_fail "huge duration: not 400"
[ "$(status -X POST -H "$ops" --data 'not json' "http://$VT_HTTP/api/v1/silences")" = 400 ] || vt_fail "bad JSON: not 400"
head -c 70000 /dev/zero | tr '\0' 'a' >"$VT_DIR/big"
code=$(status -X POST -H "$ops" --data-binary @"$VT_DIR/big" "http://$VT_HTTP/api/v1/silences")
[ "$code" = 413 ] || [ "$code" = 400 ] || vt_fail "oversized body gave $code"
[ "$(vt_psql 'SELECT count(*) FROM silences')" = 0 ] || vt_fail "a refused request changed something"
vt_ok "writes refused without a write token (401/403) and for bad input (400/413); nothing changed"
[ "$(status -X POST -H "$ops" --data "$body" "http://$VT_HTTP/api/v1/silences")" = 201 ] ||
	vt_fail "silence not created: $(cat "$VT_DIR/body")"
sid=$(jq -r .id "$VT_DIR/body")
[ "$(jq -r .created_by "$VT_DIR/body")" = ops ] || vt_fail "created_by: $(cat "$VT_DIR/body")"
[ "$(vt_api /api/v1/silences | jq '.silences | length')" = 1 ] || vt_fail "silence not listed"
[ "$(status -X DELETE -H "$ops" "http://$VT_HTTP/api/v1/silences/$sid")" = 200 ] || vt_fail "silence not ended"
[ "$(vt_api /api/v1/silences | jq '.silences | length')" = 0 ] || vt_fail "ended silence still listed"
[ "$(status -X DELETE -H "$ops" "http://$VT_HTTP/api/v1/silences/$sid")" = 404 ] || vt_fail "ending twice is not 404"
grep -q "$(cat "$VT_DIR/ops.token")" "$VT_DIR/aggregator.log" && vt_fail "a token appears in the log"
vt_ok "silence created, listed and ended with a write token; tokens never logged"
