#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The public status page on real agents: three agents bound to
# 127.0.0.1/.2/.3 (each its own region to the fake target, which answers per
# client address).  One target fails everywhere (an outage), one only from
# us-east (a regional incident), one is healthy, and one vendor component
# sits in a group whose name needs escaping.  `/` must show the banner, the
# groups in config order with the ungrouped components last, every
# component's state in words ("partial outage: us-east", never colour
# alone), and escape the group name; `/status.css`, Statuspage's
# `/api/v2/status.json` and per-component badges are served; and the page
# keeps answering from memory while the database is stopped.
. "$(dirname "$0")/../lib/common.sh"
vt_setup

vt_start_target -l 127.0.0.2:0
vt_target_rules '[{"path":"/everywhere","action":"fail","status":503},
                  {"path":"/regional","client":"127.0.0.2","action":"fail","status":503}]'
url=http://127.0.0.1:$VT_TARGET_PORT
vt_write_conf 5s 2s "  - { name: checkout, group: \"Public API\", http: { url: \"$url/everywhere\" } }
  - { name: search, group: \"Public API\", http: { url: \"$url/regional\" } }
  - { name: login, group: \"Third-party: <Identity> & co\", http: { url: \"$url/ok/1\" } }
  - { name: batch, http: { url: \"$url/ok/2\" } }"
vt_start_aggregator
vt_start_three_agents

state_of() { curl -sf "http://$VT_HTTP/api/v1/targets/$1" | jq -r .state; }
vt_wait_for 45 "checkout DOWN" bash -c "[ \"\$(curl -sf http://$VT_HTTP/api/v1/targets/checkout | jq -r .state)\" = down ]"
vt_wait_for 45 "search DEGRADED" bash -c "[ \"\$(curl -sf http://$VT_HTTP/api/v1/targets/search | jq -r .state)\" = degraded ]"
vt_wait_for 45 "login and batch UP" bash -c "[ \"\$(curl -sf http://$VT_HTTP/api/v1/targets/login | jq -r .state)\" = up ] &&
	[ \"\$(curl -sf http://$VT_HTTP/api/v1/targets/batch | jq -r .state)\" = up ]"

page() { curl -s -D "$VT_DIR/headers" -o "$VT_DIR/page.html" -w '%{http_code}' "http://$VT_HTTP/"; }
# The page is rendered at most once a second: wait for one that has all.
vt_wait_for 10 "the page to show the states" bash -c "curl -sf http://$VT_HTTP/ | grep -q 'partial outage: us-east'"
[ "$(page)" = 200 ] || vt_fail "/ did not answer 200"
grep -qi '^content-type: text/html; charset=utf-8' "$VT_DIR/headers" || vt_fail "/ is not text/html"
html=$(cat "$VT_DIR/page.html")
has() { grep -qF -- "$1" <<<"$html" || vt_fail "the page lacks: $1"; }
has '<!DOCTYPE html>'
has '<meta name="viewport"'
has 'Partial outage'
has '<h2>Public API</h2>'
has '<h2>Third-party: &lt;Identity&gt; &amp; co</h2>'
has '<h2>Services</h2>'
grep -q '<Identity>' <<<"$html" && vt_fail "the group name is not escaped"
grep -qi '<script' <<<"$html" && vt_fail "the page has a script"
# Groups in config order, ungrouped last.
order=$(grep -o '<h2>[^<]*</h2>' <<<"$html" | tr '\n' '|')
[ "$order" = "<h2>Public API</h2>|<h2>Third-party: &lt;Identity&gt; &amp; co</h2>|<h2>Services</h2>|" ] ||
	vt_fail "groups out of order: $order"
# Each component with its state in words.
line_of() { grep -o "<li [^>]*><span class=\"name\">$1</span><span [^>]*>[^<]*</span>" <<<"$html"; }
for want in "checkout:major outage" "search:partial outage: us-east" "login:operational" "batch:operational"; do
	key=${want%%:*} label=${want#*:}
	line_of "$key" | grep -qF ">$label</span>" || vt_fail "$key is not \"$label\": $(line_of "$key")"
done
vt_ok "status page: banner, groups in config order, states in words (partial outage names us-east), escaped"

[ "$(curl -s -o "$VT_DIR/css" -w '%{http_code} %{content_type}' "http://$VT_HTTP/status.css")" = \
	"200 text/css; charset=utf-8" ] || vt_fail "/status.css not served as CSS"
grep -q '\.state-major_outage' "$VT_DIR/css" || vt_fail "the style sheet lacks the state classes"
vt_ok "/status.css served"

# Statuspage's status.json, and badges per component.
st=$(curl -sf "http://$VT_HTTP/api/v2/status.json") || vt_fail "/api/v2/status.json did not answer"
[ "$(jq -r '.status.indicator + "|" + .status.description' <<<"$st")" = "major|Partial outage" ] ||
	vt_fail "status.json: $st"
jq -e '.page.name and .page.updated_at' <<<"$st" >/dev/null || vt_fail "status.json has no page: $st"
badge=$(curl -sf "http://$VT_HTTP/badge/search.svg") || vt_fail "/badge/search.svg did not answer"
grep -qF '<title>search: partial outage: us-east</title>' <<<"$badge" || vt_fail "badge: $badge"
[ "$(curl -s -o /dev/null -w '%{content_type}' "http://$VT_HTTP/badge/search.svg")" = image/svg+xml ] ||
	vt_fail "the badge is not image/svg+xml"
[ "$(curl -sf "http://$VT_HTTP/badge/checkout.json" | jq -c .)" = \
	'{"schemaVersion":1,"label":"checkout","message":"major outage","color":"b3261e"}' ] ||
	vt_fail "shields endpoint: $(curl -s "http://$VT_HTTP/badge/checkout.json")"
for bad in nope.svg checkout.png checkout .svg; do
	[ "$(curl -s -o /dev/null -w '%{http_code}' "http://$VT_HTTP/badge/$bad")" = 404 ] || vt_fail "/badge/$bad is not 404"
done
vt_ok "status.json (indicator major), SVG badge with its state in words, shields.io JSON; unknown badges 404"

# The 90-day bar: a day with an hour down, from the daily rollup.
vt_psql "INSERT INTO rollup_day SELECT id, current_date - 10, 82800, 3600, 0, 0, NULL, NULL, 0
	FROM targets WHERE key = 'login'" >/dev/null
day=$(vt_psql "SELECT to_char(current_date - 10, 'YYYY-MM-DD')")
vt_wait_for 30 "the page to show that day" bash -c "curl -sf http://$VT_HTTP/ | grep -qF '<title>$day: 95.83 % uptime, 60 min down'"
page >/dev/null
html=$(cat "$VT_DIR/page.html")
[ "$(grep -o '<svg[^>]*class="uptime"' <<<"$html" | wc -l)" = 4 ] || vt_fail "not one uptime bar per component"
[ "$(grep -o '<rect class="day day-' <<<"$html" | wc -l)" = 360 ] || vt_fail "not 90 days per bar"
grep -qF 'aria-label="login, last 90 days: ' <<<"$html" || vt_fail "login's bar has no label"
grep -qF 'Uptime = time up / (time up + time down)' <<<"$html" || vt_fail "the formula is not on the page"
vt_ok "90-day bars: one per component, 90 labelled days each, the day with 60 min down, the formula stated"

# From memory: the page answers while the database is stopped.
vt_as_pg_user "$(vt_pg_bindir)/pg_ctl" -D "$VT_DIR/state/pg" -m fast -w stop >/dev/null || vt_fail "pg_ctl stop failed"
[ "$(page)" = 200 ] || vt_fail "/ did not answer with the database stopped"
grep -qF 'checkout</span>' "$VT_DIR/page.html" || vt_fail "the page lost its components with the database stopped"
vt_ok "the page answers from memory with the database stopped"
