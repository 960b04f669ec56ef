#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Post-mortem drafts on real agents: three agents bound to 127.0.0.1/.2/.3
# (each its own region to the fake target, which answers per client
# address) probe "shop" every 3 s.  After some healthy results, eu-west gets
# 503s and us-east connection resets while ap-south stays healthy: quorum
# (2 of 3) makes it an outage.  Then the rules are cleared, the target
# recovers, and the draft must be stored with its three sections, the
# target, each failing region with its reason, the healthy region and the
# time to detect.  A second outage then checks that a post-mortem people
# published is never overwritten by a later draft.
. "$(dirname "$0")/../lib/common.sh"
vt_setup
command -v jq >/dev/null || vt_skip "jq is not installed (make deps)"

vt_start_target -l 127.0.0.2:0 -l 127.0.0.3:0
url=http://127.0.0.1:$VT_TARGET_PORT
failing='[{"path":"/shop","client":"127.0.0.1","action":"fail","status":503},
          {"path":"/shop","client":"127.0.0.2","action":"reset"}]'
vt_write_conf 3s 2s "  - { name: shop, http: { url: \"$url/shop\" } }"
vt_start_aggregator
vt_start_three_agents

state_is() { [ "$(curl -sf "http://$VT_HTTP/api/v1/targets/shop" | jq -r .state)" = "$1" ]; }
incident_sql() { # STATE: the newest shop outage in STATE, if any
	echo "SELECT i.id FROM incidents i JOIN targets t ON t.id = i.target_id
	      WHERE t.key = 'shop' AND i.kind = 'outage' AND i.state = '$1' ORDER BY i.id DESC LIMIT 1"
}

vt_wait_for 30 "shop to be UP" state_is up
# Latency "before" needs successful results from every region.
vt_wait_for 30 "two UP results per region" bash -c "[ \"\$(psql -X -q -h $VT_DIR/state/pg -U vantage \
	-d vantage -Atc \"SELECT count(*) FROM (SELECT a.region FROM results r JOIN agents a ON a.id = r.agent_id
	WHERE r.outcome = 1 GROUP BY a.region HAVING count(*) >= 2) s\")\" = 3 ]"
vt_ok "shop is up with healthy results from 3 regions"

vt_target_rules "$failing"
vt_wait_for 30 "shop to be DOWN" state_is down
vt_wait_for 15 "the outage incident" bash -c "[ -n \"\$(psql -X -q -h $VT_DIR/state/pg -U vantage \
	-d vantage -Atc \"$(incident_sql open)\")\" ]"
vt_ok "outage opened (eu-west: 503, us-east: reset, ap-south healthy)"

vt_target_rules '[]'
vt_wait_for 60 "shop to recover" state_is up
vt_wait_for 15 "the outage to be resolved" bash -c "[ -n \"\$(psql -X -q -h $VT_DIR/state/pg -U vantage \
	-d vantage -Atc \"$(incident_sql resolved)\")\" ]"
id=$(vt_psql "$(incident_sql resolved)")
vt_wait_for 15 "the post-mortem draft of incident $id" bash -c "[ \"\$(psql -X -q -h $VT_DIR/state/pg \
	-U vantage -d vantage -Atc \"SELECT postmortem_state FROM incidents WHERE id = $id\")\" = draft ]"
md=$(vt_psql "SELECT postmortem_md FROM incidents WHERE id = $id")
echo "--- post-mortem draft of incident $id"
echo "$md"
echo "---"

has() { grep -qF -- "$1" <<<"$md" || vt_fail "the draft lacks \"$1\""; }
has "# Post-mortem: shop outage $(vt_psql "SELECT to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')
	FROM incidents WHERE id = $id")"
[ "$(grep -c '^## ' <<<"$md")" = 3 ] || vt_fail "the draft does not have exactly three sections"
has "## What happened"
has "## What went right"
has "## What we will do to prevent it"
has "$url/shop"
has "- **eu-west**: "
has "http_status 503"
grep -qE '^- \*\*us-east\*\*: [0-9]+ failing probes, reset' <<<"$md" ||
	vt_fail "us-east is not listed with its connection resets"
has "- **Regions that stayed healthy:** ap-south"
grep -q '^- \*\*ap-south\*\*' <<<"$md" && vt_fail "ap-south is listed as affected"
grep -qE '^\| eu-west \| [0-9.]+ ms \| [0-9.]+ ms \| [0-9.]+ ms \| [0-9.]+ ms \|$' <<<"$md" ||
	vt_fail "no latency before vs during for eu-west"
has "| Time (UTC) | Event |"
grep -qE '^\| [0-9:.]+ \| first failure in "us-east"' <<<"$md" || vt_fail "no us-east first failure in the timeline"
grep -qE '^\| [0-9:.]+ \| recovered: ' <<<"$md" || vt_fail "no recovery in the timeline"
# Time to detect, to the tenth of a second, as the database has it.
ttd=$(vt_psql "SELECT to_char(extract(epoch FROM detected_at - started_at), 'FM999990.0')
	FROM incidents WHERE id = $id")
has "- **Time to detect:** $ttd s"
has "no alerts were sent for this incident"
has "- [ ] "
grep -q "incident $id: post-mortem drafted" "$VT_DIR/aggregator.log" || vt_fail "the draft was not logged"
vt_ok "incident $id: draft with three sections, both failing regions, ap-south healthy, time to detect $ttd s"

# People publish; a later resolution (a reopened flapping outage or a new
# one) must leave what they wrote alone.
vt_psql "UPDATE incidents SET postmortem_md = 'written by people', postmortem_state = 'published'
	WHERE id = $id"
vt_target_rules "$failing"
vt_wait_for 30 "shop to be DOWN again" state_is down
vt_target_rules '[]'
vt_wait_for 60 "shop to recover again" state_is up
vt_wait_for 15 "the second outage to be resolved" bash -c "[ -z \"\$(psql -X -q -h $VT_DIR/state/pg \
	-U vantage -d vantage -Atc \"$(incident_sql open)\")\" ]"
second=$(vt_psql "$(incident_sql resolved)")
if [ "$second" != "$id" ]; then
	vt_wait_for 15 "the draft of incident $second" bash -c "[ \"\$(psql -X -q -h $VT_DIR/state/pg \
		-U vantage -d vantage -Atc \"SELECT postmortem_state FROM incidents WHERE id = $second\")\" = draft ]"
else
	vt_wait_for 15 "the aggregator to decline the draft" grep -q "incident $id: no post-mortem drafted" \
		"$VT_DIR/aggregator.log"
fi
[ "$(vt_psql "SELECT postmortem_state || ':' || postmortem_md FROM incidents WHERE id = $id")" = \
	"published:written by people" ] || vt_fail "the published post-mortem of incident $id was overwritten"
vt_ok "published post-mortem of incident $id kept after a second outage (incident $second)"
