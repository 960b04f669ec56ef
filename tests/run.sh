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
#
# With SAN=1 (binaries from `make SAN=1`, in build/san) every sanitizer
# report of every process the tests start -- daemons at exit included, where
# LeakSanitizer runs -- ends up in $B/test-logs/san/, and any report there
# fails the run even when the test itself passed.  ASan and LeakSanitizer
# write there themselves (log_path); GCC's UBSan ignores log_path next to
# ASan and prints to the process's stderr, so the logs of the tests and of
# the daemons they start (tests/lib/common.sh, SAN_REPORTS) are searched
# for its "runtime error:" lines too.  The lab and fuzz
# layers are skipped then: the lab's timings assume optimised binaries, and
# the fuzz layer builds its own sanitized targets.
#
#   tests/run.sh all|lint|unit|integration|lab|fuzz|bench
set -u
B=${B:-build}
SAN=${SAN:-0}
layer=${1:-all}
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
logs=$B/test-logs
mkdir -p "$logs"
if [ "$SAN" = 1 ]; then
	sanlogs=$top/$logs/san
	rm -rf "$sanlogs"
	mkdir -p "$sanlogs"
	supp=$top/tests/lsan.supp
	export ASAN_OPTIONS="log_path=$sanlogs/asan:detect_leaks=1:abort_on_error=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
	export UBSAN_OPTIONS="log_path=$sanlogs/ubsan:print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
	export LSAN_OPTIONS="suppressions=$supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
	export SAN_REPORTS=$sanlogs
fi
san_markers='runtime error:|ERROR: AddressSanitizer|ERROR: LeakSanitizer|SUMMARY: UndefinedBehaviorSanitizer'

# san_collect NAME LOG: with SAN=1, keeps LOG among the reports if a
# sanitizer wrote into it.
san_collect() {
	[ "$SAN" = 1 ] && grep -qE "$san_markers" "$2" && cp "$2" "$sanlogs/$1.log"
	return 0
}
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
	san_collect "$(echo "$name" | tr '/ ' '__')" "$log"
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
	if [ "$SAN" = 1 ] && { [ "$dir" = tests/lab ] || [ "$dir" = tests/fuzz ]; }; then
		skipped=$((skipped + 1))
		reason="not run with SAN=1 (run \"make $(basename "$dir")\" without SAN)"
		skips="$skips
  $(basename "$dir"): $reason"
		printf 'SKIP  %-40s %s\n' "$(basename "$dir")/*" "$reason"
		return
	fi
	for t in "$dir"/*.sh; do
		[ -f "$t" ] || continue
		run "$(basename "$dir")/$(basename "$t" .sh)" "$limit" bash "$t"
	done
}

case $layer in
all)
	run_scripts tests/lint 300
	run_unit
	run_scripts tests/integration 600
	run_scripts tests/lab 1200
	run_scripts tests/fuzz 900
	;;
lint) run_scripts tests/lint 300 ;;
unit) run_unit ;;
integration) run_scripts tests/integration 600 ;;
lab) run_scripts tests/lab 1200 ;;
fuzz) run_scripts tests/fuzz 900 ;;
bench) run_scripts tests/bench 1800 ;;
*)
	echo "usage: tests/run.sh all|lint|unit|integration|lab|fuzz|bench" >&2
	exit 2
	;;
esac

# Reports from processes whose test passed anyway (a leak at a daemon's
# exit, a UBSan finding in a child) still fail the run.
if [ "$SAN" = 1 ]; then
	for report in "$sanlogs"/*; do
		[ -f "$report" ] || continue
		failed=$((failed + 1))
		fails="$fails $(basename "$report")"
		printf 'FAIL  sanitizer report %s:\n' "$report"
		grep -m 5 -E "$san_markers" "$report" | sed 's/^/      /'
	done
fi

if [ -n "$skips" ]; then
	echo "skipped:$skips"
fi
[ -n "$fails" ] && echo "failed:$fails"
echo "$passed passed, $failed failed, $skipped skipped" | tee "$logs/summary"
[ "$failed" -eq 0 ]
