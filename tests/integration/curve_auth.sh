#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# CurveZMQ and the ZAP allow-list (TESTPLAN.md scenario 15, on 127.0.0.1).
# Two admitted agents store results.  Then (a) a plaintext agent
# (insecure: true), (b) an agent whose key is in no file of agent_keys_dir
# and (c) an agent presenting another agent's key under its own name are
# refused; (d) removing an agent's key file and sending SIGHUP revokes it:
# the agent is disconnected and refused from then on while the other one
# goes on, and nothing of it is stored while it is refused.  Putting the key
# back admits it again, and every result it produced is then stored exactly
# once.  Each refusal is counted in /api/v1/agents and logged once per peer
# address and reason, however often the refused agent retries.
. "$(dirname "$0")/../lib/common.sh"
vt_setup
command -v jq >/dev/null || vt_skip "jq is not installed"

vt_start_target
vt_write_conf 1s 2s "  - { name: web, http: { url: \"http://127.0.0.1:$VT_TARGET_PORT/ok\" } }"
vt_start_aggregator
vt_start_agent eu-west eu-west
vt_start_agent us-east us-east

refused() { vt_api /api/v1/agents | jq -r ".handshakes.refused.$1"; }
stored() { # NAME: rows stored for agent NAME
	vt_psql "SELECT count(*) FROM results r JOIN agents a ON a.id = r.agent_id WHERE a.name = '$1'"
}
agent_known() { # NAME: the aggregator has a row for agent NAME
	[ "$(vt_psql "SELECT count(*) FROM agents WHERE name = '$1'")" != 0 ]
}
agg_lines() { grep -c -- "$1" "$VT_DIR/aggregator.log" || true; }
export -f refused stored agent_known vt_api vt_psql
export VT_HTTP VT_DIR

vt_wait_for 30 "results of both admitted agents" bash -c \
	'[ "$(stored eu-west)" -gt 0 ] && [ "$(stored us-east)" -gt 0 ]'
[ "$(vt_api /api/v1/agents | jq -r .handshakes.keys)" = 2 ] || vt_fail "want 2 keys admitted"
vt_ok "two agents with admitted keys connect over CurveZMQ and their results are stored"

# (a) plaintext: an agent with insecure: true.
cat >"$VT_DIR/agent-plain.yml" <<YML
name: plain
region: ap-south
aggregator: { endpoint: "$VT_ZMQ" }
insecure: true
spool_dir: $VT_DIR/spool-plain
YML
vt_start agent-plain "$BIN/vantage-agent" -d -f "$VT_DIR/agent-plain.yml"
vt_wait_for 30 "three refusals of the plaintext agent" bash -c '[ "$(refused plaintext)" -ge 3 ]'
grep -q 'requires CurveZMQ and we have "insecure: true"' "$VT_DIR/agent-plain.log" ||
	vt_fail "the plaintext agent did not log why it cannot connect"
[ "$(grep -c 'handshake with the aggregator' "$VT_DIR/agent-plain.log")" = 1 ] ||
	vt_fail "the plaintext agent logged its refusal more than once"
# The address is read when the connection is accepted; a connection
# refused at once may be closed by then ("unknown").
n=$(agg_lines 'refused an agent connection from .*: the client does not use CurveZMQ')
[ "$n" -ge 1 ] && [ "$n" -le 2 ] || vt_fail "$n log lines for $(refused plaintext) plaintext refusals, want 1 or 2"
grep -q 'refused an agent connection from \(127\.0\.0\.1\|unknown\): the client does not use CurveZMQ' \
	"$VT_DIR/aggregator.log" || vt_fail "plaintext refusal logged without the peer address"
agent_known plain && vt_fail "the plaintext agent got into the agents table"
vt_ok "a plaintext agent is refused at the handshake: $(refused plaintext) refusals counted, $n logged"

# (b) a key that is in no file of agent_keys_dir.
vt_keys_new rogue
cat >"$VT_DIR/agent-rogue.yml" <<YML
name: rogue
region: ap-south
$(vt_agent_endpoint)
secret_key: $VT_DIR/keys/rogue.key
spool_dir: $VT_DIR/spool-rogue
YML
vt_start agent-rogue "$BIN/vantage-agent" -d -f "$VT_DIR/agent-rogue.yml"
vt_wait_for 30 "three refusals of the unknown key" bash -c '[ "$(refused unknown_key)" -ge 3 ]'
grep -q 'failed: the aggregator refused our key' "$VT_DIR/agent-rogue.log" ||
	vt_fail "the refused agent did not log that its key was refused"
rogue_pub=$(grep -v '^#' "$VT_DIR/keys/rogue.pub")
n=$(grep -cF "refused an agent connection from 127.0.0.1: public key \"$rogue_pub\" is in no file" \
	"$VT_DIR/aggregator.log" || true)
[ "$n" = 1 ] || vt_fail "$n log lines for $(refused unknown_key) refusals of the unknown key, want 1"
agent_known rogue && vt_fail "the agent with an unknown key got into the agents table"
vt_ok "an unknown key is refused: $(refused unknown_key) refusals counted, one log line with the address"

# (c) an admitted key under another name: the key names the agent.
cat >"$VT_DIR/agent-liar.yml" <<YML
name: liar
region: ap-south
$(vt_agent_endpoint)
secret_key: $VT_DIR/keys/us-east.key
spool_dir: $VT_DIR/spool-liar
YML
vt_start agent-liar "$BIN/vantage-agent" -d -f "$VT_DIR/agent-liar.yml"
vt_wait_for 30 "the refused Hello of agent liar" bash -c '[ "$(refused hello_name_mismatch)" -ge 1 ]'
grep -q 'Hello names agent "liar" but the connection.s key is that of agent "us-east"' \
	"$VT_DIR/aggregator.log" || vt_fail "the refused Hello was not logged"
agent_known liar && vt_fail "agent liar got into the agents table"
kill -TERM "$VT_LAST_PID"
vt_ok "a Hello naming another agent than its key is refused and counted"

# (d) revocation: remove us-east's key and reload.
before_eu=$(stored eu-west)
rm "$VT_DIR/keys/agents/us-east.pub"
kill -HUP "$VT_AGG_PID"
vt_wait_for 15 "the revocation" grep -q 'revoked the key of agent "us-east"' "$VT_DIR/aggregator.log"
vt_wait_for 15 "us-east to lose its connection" \
	grep -q 'lost the connection to the aggregator' "$VT_DIR/agent-us-east.log"
vt_wait_for 30 "us-east to be refused" bash -c '[ "$(refused revoked_key)" -ge 2 ]'
grep -q 'failed: the aggregator refused our key' "$VT_DIR/agent-us-east.log" ||
	vt_fail "us-east did not log that its key was refused"
n=$(agg_lines 'refused an agent connection from 127.0.0.1: the key of agent "us-east" was revoked')
[ "$n" = 1 ] || vt_fail "$n log lines for $(refused revoked_key) refusals of the revoked key, want 1"
us_refused=$(stored us-east)
vt_wait_for 30 "eu-west to go on storing" bash -c "[ \"\$(stored eu-west)\" -gt $((before_eu + 5)) ]"
# us-east retries every few seconds: still refused, nothing stored.
r=$(refused revoked_key)
vt_wait_for 30 "another refusal of us-east" bash -c "[ \"\$(refused revoked_key)\" -gt $r ]"
[ "$(stored us-east)" = "$us_refused" ] || vt_fail "results of the revoked agent were stored"
[ "$(vt_api /api/v1/agents | jq -r '.agents[] | select(.name == "us-east") | .connected')" = false ] ||
	vt_fail "the revoked agent is still shown connected"
vt_ok "a revoked key is disconnected and refused ($(refused revoked_key) times); eu-west went on; nothing of us-east stored since"

# Its key back: admitted again, and all it produced is stored exactly once.
cp "$VT_DIR/keys/us-east.pub" "$VT_DIR/keys/agents/us-east.pub"
kill -HUP "$VT_AGG_PID"
vt_wait_for 30 "us-east to be admitted again" bash -c \
	"[ \"\$(stored us-east)\" -gt $us_refused ]"
vt_check_agent us-east
vt_ok "us-east readmitted: its $VT_ROWS results are stored exactly once"
vt_check_agent eu-west
vt_ok "eu-west: its $VT_ROWS results are stored exactly once, across the reconnection"
"$BIN/vantagectl" --url "http://$VT_HTTP" agents | grep -q '^CurveZMQ: 2 keys admitted; refused: [1-9][0-9]* unknown key, [1-9][0-9]* revoked key, [1-9][0-9]* plaintext' ||
	vt_fail "vantagectl agents does not show the refusals: $("$BIN/vantagectl" --url "http://$VT_HTTP" agents)"
total=$(vt_api /api/v1/agents | jq -r .handshakes.refused_total)
[ "$total" -ge 8 ] || vt_fail "refused_total is $total"
vt_ok "refusals counted in /api/v1/agents: $(vt_api /api/v1/agents | jq -c .handshakes)"
