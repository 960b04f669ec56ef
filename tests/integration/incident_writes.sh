#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# What people write on an incident, through the API: public updates
# (POST /api/v1/incidents/ID/updates) and the post-mortem (GET/PUT with
# ETag and If-Match, then publish).  The incident is a row the test writes
# itself: nothing here depends on agents or timing.  Checks the answers
# for bad input (400, 401, 403, 404, 412, 413, 428), that two editors
# cannot overwrite each other, and that the first update sets
# first_public_at.
. "$(dirname "$0")/../lib/common.sh"
vt_setup
command -v jq >/dev/null || vt_skip "jq is not installed (make deps)"

VT_INSECURE=1 vt_write_conf 5s 2s "  - { name: shop, http: { url: \"http://127.0.0.1:9/shop\" } }"
printf 'w-%s\n' "$RANDOM$RANDOM$RANDOM" >"$VT_DIR/ops.token"
printf 'r-%s\n' "$RANDOM$RANDOM$RANDOM" >"$VT_DIR/viewer.token"
chmod 600 "$VT_DIR/ops.token" "$VT_DIR/viewer.token"
cat >>"$VT_DIR/vantage.yml" <<YML
api_tokens:
  - { name: ops, token_file: $VT_DIR/ops.token, role: write }
  - { name: viewer, token_file: $VT_DIR/viewer.token, role: read }
YML
vt_start_aggregator
ops="Authorization: Bearer $(cat "$VT_DIR/ops.token")"
viewer="Authorization: Bearer $(cat "$VT_DIR/viewer.token")"
api=http://$VT_HTTP/api/v1
status() { curl -s -o "$VT_DIR/body" -D "$VT_DIR/headers" -w '%{http_code}' "$@"; }
etag() { tr -d '\r' <"$VT_DIR/headers" | sed -n 's/^[Ee][Tt]ag: //p'; }

vt_wait_for 15 "target shop in the database" bash -c "[ -n \"\$(psql -X -q -h $VT_DIR/state/pg \
	-U vantage -d vantage -Atc \"SELECT id FROM targets WHERE key = 'shop'\")\" ]"
id=$(vt_psql "INSERT INTO incidents (target_id, kind, state, started_at, detected_at, resolved_at)
	SELECT id, 'outage', 'resolved', now() - interval '10 min', now() - interval '9 min',
	now() - interval '1 min' FROM targets WHERE key = 'shop' RETURNING id" | head -n 1)

# --- updates ---
body='{"state":"investigating","message":"Checkout fails for some customers; we are on it."}'
[ "$(status -X POST --data "$body" "$api/incidents/$id/updates")" = 401 ] || vt_fail "update without a token: not 401"
[ "$(status -X POST -H "$viewer" --data "$body" "$api/incidents/$id/updates")" = 403 ] ||
	vt_fail "update with a read token: not 403"
[ "$(status -X POST -H "$ops" --data "$body" "$api/incidents/999999/updates")" = 404 ] ||
	vt_fail "update of an unknown incident: not 404"
[ "$(status -X POST -H "$ops" --data '{"state":"fixed","message":"x"}' "$api/incidents/$id/updates")" = 400 ] ||
	vt_fail "unknown state: not 400"
[ "$(status -X POST -H "$ops" --data '{"state":"monitoring","message":""}' "$api/incidents/$id/updates")" = 400 ] ||
	vt_fail "empty message: not 400"
[ "$(status -X POST -H "$ops" --data '{"state":"monitoring","message":"x","by":"me"}' \
	"$api/incidents/$id/updates")" = 400 ] || vt_fail "unknown field: not 400"
[ "$(status -X POST -H "$ops" --data 'not json' "$api/incidents/$id/updates")" = 400 ] || vt_fail "bad JSON: not 400"
[ "$(status -X POST -H "$ops" --data '{}' "$api/incidents/x1/updates")" = 400 ] || vt_fail "bad id: not 400"
[ "$(vt_psql "SELECT count(*) FROM incident_updates")" = 0 ] || vt_fail "a refused update was stored"
[ "$(vt_psql "SELECT first_public_at IS NULL FROM incidents WHERE id = $id")" = t ] ||
	vt_fail "first_public_at set by a refused update"
vt_ok "updates refused without a write token (401/403), for an unknown incident (404) and bad input (400)"

[ "$(status -X POST -H "$ops" --data "$body" "$api/incidents/$id/updates")" = 201 ] ||
	vt_fail "update not accepted: $(cat "$VT_DIR/body")"
[ "$(jq -r '.author + " " + .state' "$VT_DIR/body")" = "ops investigating" ] ||
	vt_fail "update answer: $(cat "$VT_DIR/body")"
first=$(vt_psql "SELECT first_public_at FROM incidents WHERE id = $id")
[ -n "$first" ] || vt_fail "the first update did not set first_public_at"
[ "$(status -X POST -H "$ops" --data '{"state":"resolved","message":"Fixed: a bad deploy was rolled back."}' \
	"$api/incidents/$id/updates")" = 201 ] || vt_fail "second update not accepted"
[ "$(vt_psql "SELECT first_public_at FROM incidents WHERE id = $id")" = "$first" ] ||
	vt_fail "a later update moved first_public_at"
[ "$(vt_api "/api/v1/incidents/$id" | jq -r '[.updates[].state] | join(",")')" = "investigating,resolved" ] ||
	vt_fail "updates not listed in order: $(vt_api "/api/v1/incidents/$id")"
vt_ok "two updates stored in order with their author; first_public_at set once"

# --- post-mortem ---
[ "$(status "$api/incidents/$id/postmortem")" = 200 ] || vt_fail "post-mortem GET"
e0=$(etag)
[ -n "$e0" ] || vt_fail "no ETag on the post-mortem"
[ "$(jq -r .markdown "$VT_DIR/body")" = null ] || vt_fail "an empty post-mortem has markdown"
[ "$(status "$api/incidents/999999/postmortem")" = 404 ] || vt_fail "post-mortem of an unknown incident: not 404"
md='## What happened
Checkout <script>alert(1)</script> failed.'
[ "$(status -X PUT --data-binary "$md" "$api/incidents/$id/postmortem")" = 401 ] || vt_fail "PUT without a token: not 401"
[ "$(status -X PUT -H "$ops" --data-binary "$md" "$api/incidents/$id/postmortem")" = 428 ] ||
	vt_fail "PUT without If-Match: not 428"
[ "$(status -X PUT -H "$ops" -H 'If-Match: "stale"' --data-binary "$md" "$api/incidents/$id/postmortem")" = 412 ] ||
	vt_fail "PUT with a stale ETag: not 412"
printf 'bad \377 byte' >"$VT_DIR/latin1"
[ "$(status -X PUT -H "$ops" -H "If-Match: $e0" --data-binary @"$VT_DIR/latin1" "$api/incidents/$id/postmortem")" = 400 ] ||
	vt_fail "PUT of bytes that are not UTF-8: not 400"
head -c 70000 /dev/zero | tr '\0' 'a' >"$VT_DIR/big"
[ "$(status -X PUT -H "$ops" -H "If-Match: $e0" --data-binary @"$VT_DIR/big" "$api/incidents/$id/postmortem")" = 413 ] ||
	vt_fail "PUT of 70,000 bytes: not 413"
[ "$(vt_psql "SELECT postmortem_md IS NULL FROM incidents WHERE id = $id")" = t ] || vt_fail "a refused PUT changed it"

# Alice and Bob both start from e0; Alice saves first, Bob is refused.
[ "$(status -X PUT -H "$ops" -H "If-Match: $e0" --data-binary "$md" "$api/incidents/$id/postmortem")" = 200 ] ||
	vt_fail "PUT with the current ETag: $(cat "$VT_DIR/body")"
e1=$(etag)
[ -n "$e1" ] && [ "$e1" != "$e0" ] || vt_fail "the ETag did not change with the text"
[ "$(jq -r '.state + " " + .edited_by' "$VT_DIR/body")" = "draft ops" ] || vt_fail "PUT answer: $(cat "$VT_DIR/body")"
[ "$(status -X PUT -H "$ops" -H "If-Match: $e0" --data-binary "Bob's text" "$api/incidents/$id/postmortem")" = 412 ] ||
	vt_fail "the second editor overwrote the first"
[ "$(vt_psql "SELECT postmortem_md FROM incidents WHERE id = $id")" = "$md" ] || vt_fail "the stored text is not Alice's"
[ "$(status "$api/incidents/$id/postmortem")" = 200 ] && [ "$(etag)" = "$e1" ] || vt_fail "GET gives another ETag"
vt_ok "post-mortem PUT needs If-Match (428), a stale one is refused (412), bad bodies 400/413; two editors never overwrite"

[ "$(status -X POST -H "$viewer" "$api/incidents/$id/postmortem/publish")" = 403 ] || vt_fail "publish with a read token: not 403"
[ "$(status -X POST -H "$ops" "$api/incidents/$id/postmortem/publish")" = 200 ] ||
	vt_fail "publish: $(cat "$VT_DIR/body")"
[ "$(vt_psql "SELECT postmortem_state FROM incidents WHERE id = $id")" = published ] || vt_fail "not published"
other=$(vt_psql "INSERT INTO incidents (target_id, kind, state, started_at, detected_at)
	SELECT id, 'outage', 'open', now(), now() FROM targets WHERE key = 'shop' RETURNING id" | head -n 1)
[ "$(status -X POST -H "$ops" "$api/incidents/$other/postmortem/publish")" = 409 ] ||
	vt_fail "publishing an empty post-mortem: not 409"
[ "$(status -X POST -H "$ops" "$api/incidents/999999/postmortem/publish")" = 404 ] || vt_fail "publish unknown: not 404"
# Fixing a typo keeps it published.
[ "$(status -X PUT -H "$ops" -H "If-Match: $e1" --data-binary "$md (fixed)" "$api/incidents/$id/postmortem")" = 200 ] ||
	vt_fail "edit after publishing: $(cat "$VT_DIR/body")"
[ "$(jq -r .state "$VT_DIR/body")" = published ] || vt_fail "an edit unpublished the post-mortem"
grep -q "$(cat "$VT_DIR/ops.token")" "$VT_DIR/aggregator.log" && vt_fail "a token appears in the log"
vt_ok "published once there is text (409 before, 404 unknown); an edit keeps it published; tokens never logged"
