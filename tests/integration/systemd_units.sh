#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The systemd units of deploy/systemd: `systemd-analyze verify` accepts
# them (with ExecStart pointed at the binaries of this build), and
# `systemd-analyze security --offline` rates each one's exposure at most
# MAX_EXPOSURE (of 10; below 2 is systemd's "OK"): DynamicUser, no
# capabilities, a read-only system, and the other sandboxing they set.
# No unit is loaded or started.  Needs systemd-analyze (systemd 250 or
# later for --offline), else exit 77.
set -euo pipefail
TOP=$(cd "$(dirname "$0")/../.." && pwd)
B=${B:-build}
MAX_EXPOSURE=2.0

command -v systemd-analyze >/dev/null || { echo "SKIP: systemd-analyze is not installed"; exit 77; }
systemd-analyze security --help 2>/dev/null | grep -q -- --offline ||
	{ echo "SKIP: this systemd-analyze has no security --offline (systemd < 250)"; exit 77; }
dir=$(mktemp -d /tmp/vantage-units.XXXXXX)
trap 'rm -rf "$dir"' EXIT

for unit in "$TOP"/deploy/systemd/*.service; do
	name=$(basename "$unit")
	sed "s|/usr/local/bin/|$TOP/$B/|g" "$unit" >"$dir/$name"
	if ! out=$(systemd-analyze verify --man=no "$dir/$name" 2>&1) || [ -n "$out" ]; then
		echo "$out"
		echo "FAIL: systemd-analyze verify $name"
		exit 1
	fi
	level=$(systemd-analyze security --offline=yes "$dir/$name" 2>&1 |
		sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
	[ -n "$level" ] || { echo "FAIL: no exposure level for $name"; exit 1; }
	awk -v l="$level" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(l <= m) }' ||
		{ echo "FAIL: $name exposure $level, want at most $MAX_EXPOSURE"; exit 1; }
	echo "ok - $name: verified, exposure $level (at most $MAX_EXPOSURE)"
done
