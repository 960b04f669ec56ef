#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# The one test runner behind `make check` (and unit/integration/lab/fuzz/
# bench).  Runs every test of the chosen layers, each with a time limit,
# keeps each test's output in build/test-logs/, shows the output of failures,
# and ends with one line: "N passed, N failed, N skipped".  A test that exits
# 77 is skipped; its last line starting with "SKIP:" is the reason, and every
# skip is listed by name before the summary.  Exits 1 if anything failed.
#
#   tests/run.sh all|unit|integration|lab|fuzz|bench
set -u
B=${B:-build}
layer=${1:-all}
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
logs=$B/test-logs
mkdir -p "$logs"
passed=0
failed=0
skipped=0
skips=""
fails=""

# run NAME TIMEOUT_S COMMAND...
run() {
	name=$1
	limit=$2
	shift 2
	log=$logs/$(echo "$name" | tr '/ ' '__').log
	start=$(date +%s)
	B=$B timeout -k 10 "$limit" "$@" >"$log" 2>&1
	rc=$?
	secs=$(($(date +%s) - start))
	case $rc in
	0)
		passed=$((passed + 1))
		printf 'PASS  %-40s %4ss\n' "$name" "$secs"
		;;
	77)
		skipped=$((skipped + 1))
		reason=$(grep '^SKIP:' "$log" | tail -n 1 | sed 's/^SKIP: *//')
		[ -n "$reason" ] || reason="(no reason given)"
		skips="$skips
  $name: $reason"
		printf 'SKIP  %-40s %s\n' "$name" "$reason"
		;;
	*)
		failed=$((failed + 1))
		fails="$fails $name"
		[ $rc -eq 124 ] && echo "test timed out after ${limit}s" >>"$log"
		printf 'FAIL  %-40s %4ss (exit %d), last lines of %s:\n' "$name" "$secs" "$rc" "$log"
		tail -n 30 "$log" | sed 's/^/      /'
		;;
	esac
}

run_unit() {
	for t in "$B"/tests/test_*; do
		[ -x "$t" ] || continue
		run "unit/$(basename "$t")" 300 "$t"
	done
}

run_scripts() {
	dir=$1
	limit=$2
	for t in "$dir"/*.sh; do
		[ -f "$t" ] || continue
		run "$(basename "$dir")/$(basename "$t" .sh)" "$limit" bash "$t"
	done
}

case $layer in
all)
	run_unit
	run_scripts tests/integration 600
	run_scripts tests/lab 1200
	run_scripts tests/fuzz 900
	;;
unit) run_unit ;;
integration) run_scripts tests/integration 600 ;;
lab) run_scripts tests/lab 1200 ;;
fuzz) run_scripts tests/fuzz 900 ;;
bench) run_scripts tests/bench 1800 ;;
*)
	echo "usage: tests/run.sh all|unit|integration|lab|fuzz|bench" >&2
	exit 2
	;;
esac

if [ -n "$skips" ]; then
	echo "skipped:$skips"
fi
[ -n "$fails" ] && echo "failed:$fails"
echo "$passed passed, $failed failed, $skipped skipped" | tee "$logs/summary"
[ "$failed" -eq 0 ]
