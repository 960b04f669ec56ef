#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Lab scenario 15 (TESTPLAN.md §3): who may talk to the aggregator.  Five
# admitted agents run over CurveZMQ.  From r1's namespace an agent whose key
# is in no file of agent_keys_dir, and from r2's an agent with
# "insecure: true", are refused at the handshake; then r3's key file is
# removed and the aggregator gets SIGHUP: r3 is disconnected and refused
# from then on while the other regions go on, and nothing of r3 is stored
# while it is refused.  Every refusal is counted (/api/v1/agents
# .handshakes) and logged once per peer address and reason, with that
# region's address.  r3's key put back (SIGHUP), r3 is admitted again and
# delivers what it probed meanwhile; the invariant then holds for every
# agent, and no incident was opened.
. "$(dirname "$0")/lib/lab.sh"

T=s15

lab_up
lab_start_target
lab_write_conf 1s 1s "  - { name: $T, http: { url: \"$LAB_TGT_URL/$T\" } }"
lab_start_aggregator
lab_start_agents

handshakes() { lab_api /api/v1/agents | jq -r ".handshakes.$1"; }
stored() { # REGION: rows stored from the agent of REGION
	lab_psql "SELECT count(*) FROM results r JOIN agents a ON a.id = r.agent_id WHERE a.name = '$1'"
}
agg_refusals() { # PATTERN: aggregator log lines of refusals matching it
	grep -c "refused an agent connection from $1" "$LAB_DIR/aggregator.log" || true
}
at_least() { [ "$(handshakes "$1")" -ge "$2" ]; } # COUNTER N
more_rows() { [ "$(stored "$1")" -gt "$2" ]; }    # REGION ROWS
all_up() { lab_api "/api/v1/targets/$T" | jq -e '([.regions[] | select(.vote == "up")] | length) == 5'; }
lab_wait_for 20 "$T up with votes from all five regions" all_up
[ "$(handshakes keys)" = 5 ] || lab_fail "want 5 keys admitted, the API says $(handshakes keys)"
lab_ok "five agents connected over CurveZMQ with admitted keys"

# ---- an unknown key from r1, a plaintext agent from r2 ----
"$LAB_BIN/vantagectl" keys new rogue --dir "$LAB_DIR/keys" >/dev/null
cat >"$LAB_DIR/agent-rogue.yml" <<YML
name: rogue
region: r1
aggregator: { endpoint: "$LAB_ZMQ", public_key: $LAB_DIR/keys/aggregator.pub }
secret_key: $LAB_DIR/keys/rogue.key
spool_dir: $LAB_DIR/spool-rogue
YML
cat >"$LAB_DIR/agent-plain.yml" <<YML
name: plain
region: r2
aggregator: { endpoint: "$LAB_ZMQ" }
insecure: true
spool_dir: $LAB_DIR/spool-plain
YML
lab_start r1 agent-rogue "$LAB_BIN/vantage-agent" -d -f "$LAB_DIR/agent-rogue.yml"
lab_start r2 agent-plain "$LAB_BIN/vantage-agent" -d -f "$LAB_DIR/agent-plain.yml"
lab_wait_for 20 "three refusals of the unknown key" at_least refused.unknown_key 3
lab_wait_for 20 "three refusals of the plaintext agent" at_least refused.plaintext 3
n=$(agg_refusals "${LAB_IP[r1]}: public key .* is in no file")
[ "$n" = 1 ] || lab_fail "$n log lines for $(handshakes refused.unknown_key) refusals of r1's unknown key, want 1"
n=$(agg_refusals "\(${LAB_IP[r2]}\|unknown\): the client does not use CurveZMQ")
[ "$n" -ge 1 ] && [ "$n" -le 2 ] ||
	lab_fail "$n log lines for $(handshakes refused.plaintext) plaintext refusals from r2, want 1 or 2"
grep -q 'the aggregator refused our key' "$LAB_DIR/agent-rogue.log" ||
	lab_fail "the agent with the unknown key does not say that its key was refused"
grep -q 'requires CurveZMQ and we have "insecure: true"' "$LAB_DIR/agent-plain.log" ||
	lab_fail "the plaintext agent does not say why it cannot connect"
[ "$(lab_psql "SELECT count(*) FROM agents WHERE name IN ('rogue', 'plain')")" = 0 ] ||
	lab_fail "a refused agent got into the agents table"
lab_ok "unknown key from ${LAB_IP[r1]} ($(handshakes refused.unknown_key)×) and plaintext from ${LAB_IP[r2]} ($(handshakes refused.plaintext)×) refused, each logged once"

# ---- revoke r3 ----
rm "$LAB_DIR/keys/agents/r3.pub"
lab_signal aggregator HUP
lab_wait_for 10 "the revocation of r3" grep -q 'revoked the key of agent "r3"' "$LAB_DIR/aggregator.log"
lab_wait_for 10 "r3 to lose its connection" grep -q 'lost the connection to the aggregator' "$LAB_DIR/agent-r3.log"
lab_wait_for 20 "two refusals of r3" at_least refused.revoked_key 2
n=$(agg_refusals "${LAB_IP[r3]}: the key of agent \"r3\" was revoked")
[ "$n" = 1 ] || lab_fail "$n log lines for $(handshakes refused.revoked_key) refusals of r3's revoked key, want 1"
r3_rows=$(stored r3)
r1_rows=$(stored r1)
lab_wait_for 10 "r1 to go on" more_rows r1 $((r1_rows + 3))
[ "$(stored r3)" = "$r3_rows" ] || lab_fail "results of the revoked r3 were stored"
lab_api /api/v1/agents | jq -e '.agents[] | select(.name == "r3") | .connected == false' >/dev/null ||
	lab_fail "the API shows the revoked r3 connected"
lab_ok "r3 revoked: disconnected, refused from ${LAB_IP[r3]} ($(handshakes refused.revoked_key)×, logged once), nothing stored; the others go on"

# ---- r3's key back ----
cp "$LAB_DIR/keys/r3.pub" "$LAB_DIR/keys/agents/r3.pub"
lab_signal aggregator HUP
lab_wait_for 20 "r3 to be admitted and deliver again" more_rows r3 "$r3_rows"
lab_ok "r3 admitted again after its key was put back"

lab_stop_agents r1 r2 r3 r4 r5 rogue plain
lab_expect_no_incidents
lab_invariant
