#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# The one test runner behind `make check` (and unit/integration/lab/fuzz/
# bench).  Runs every test of the chosen layers, each with a time limit,
# keeps each test's output in build/test-logs/, shows the output of failures,
# and ends with one line: "N passed, N failed, N skipped".  A test that exits
# 77 is skipped; its last line starting with "SKIP:" is the reason, and every
# skip is listed by name before the summary.  Exits 1 if anything failed.
#
# Tests of a layer run side by side: unit and integration tests -j at a time
# (default: the number of cores), lab scenarios -l at a time (default 3:
# they mostly sleep, each in a lab of its own), bench one at a time (they
# measure).  Every test has its own temporary directory, its own free ports
# (tests/lib/common.sh) or its own namespaces (tests/lab/lib/lab.sh), so
# nothing they use collides.  The longest tests start first, as their last
# run here took ($B/test-logs/times), else as tests/lab/README.md's runtime
# column says; a test known to neither starts before all others.  Lab
# scenarios named in heavy_labs below never run beside one another.  Each
# PASS/FAIL/SKIP line is printed when its test ends; the skip and failure
# lists are in the order of the tests' names, as are the layers; the ten
# slowest tests come just before them.  In the `all` layer (make check) the
# fuzz targets fuzz FUZZ_SECONDS (default 10) each; `fuzz` alone keeps
# tests/fuzz/fuzz.sh's 60 s.
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
#   tests/run.sh [-j JOBS] [-l LAB_JOBS] all|lint|unit|integration|lab|fuzz|bench
#
# Still started as `sh tests/run.sh` by older scripts: bash is needed (wait -n).
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -u
B=${B:-build}
SAN=${SAN:-0}
jobs=${JOBS:-$(nproc 2>/dev/null || echo 1)}
lab_jobs=${LAB_JOBS:-3}
usage() {
	echo "usage: tests/run.sh [-j JOBS] [-l LAB_JOBS] all|lint|unit|integration|lab|fuzz|bench" >&2
	exit 2
}
while getopts j:l: opt; do
	case $opt in
	j) jobs=$OPTARG ;;
	l) lab_jobs=$OPTARG ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))
for n in "$jobs" "$lab_jobs"; do
	case $n in
	'' | *[!0-9]* | 0*) usage ;;
	esac
done
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

# Scenarios that load both cores (reset storms, floods of hostile frames):
# beside one another they would disturb each other's timing.
heavy_labs="lab/lab_s10_reset_storm lab/lab_s16_hostile"

# san_collect NAME LOG: with SAN=1, keeps LOG among the reports if a
# sanitizer wrote into it.
san_collect() {
	[ "$SAN" = 1 ] && grep -qE "$san_markers" "$2" && cp "$2" "$sanlogs/$1.log"
	return 0
}
passed=0
failed=0
skipped=0
# In the order the tests were queued (by name), whatever order they end in.
order=()
declare -A result=() # NAME -> "pass", "skip REASON" or "fail"
declare -A took=()   # NAME -> seconds
# Each running test's files: $state/FILE.pid (its timeout's PID) and, once
# it has ended, $state/FILE.done ("EXIT SECONDS").
state=$(mktemp -d "${TMPDIR:-/tmp}/vantage-run.XXXXXX") || exit 1

file_of() { echo "$1" | tr '/ ' '__'; }

# On Ctrl-C or SIGTERM, the running tests get SIGTERM from their timeout
# (which passes it on to the test's process group): their own traps clean
# up their processes, namespaces and directories.
stop_all() {
	local f
	for f in "$state"/*.pid; do
		[ -f "$f" ] && [ ! -f "${f%.pid}.done" ] && kill -TERM "$(cat "$f")" 2>/dev/null
	done
	wait
	rm -rf "$state"
	exit "$1"
}
trap 'stop_all 130' INT
trap 'stop_all 143' TERM

# report NAME LIMIT: prints the line of a test that has ended, as the
# sequential runner did.
report() {
	local name=$1 limit=$2 f rc secs reason log
	f=$(file_of "$name")
	log=$logs/$f.log
	read -r rc secs <"$state/$f.done"
	san_collect "$f" "$log"
	took[$name]=$secs
	case $rc in
	0)
		passed=$((passed + 1))
		result[$name]=pass
		printf 'PASS  %-40s %4ss\n' "$name" "$secs"
		;;
	77)
		skipped=$((skipped + 1))
		reason=$(grep '^SKIP:' "$log" | tail -n 1 | sed 's/^SKIP: *//')
		[ -n "$reason" ] || reason="(no reason given)"
		result[$name]="skip $reason"
		printf 'SKIP  %-40s %s\n' "$name" "$reason"
		;;
	*)
		failed=$((failed + 1))
		result[$name]=fail
		[ "$rc" -eq 124 ] && echo "test timed out after ${limit}s" >>"$log"
		printf 'FAIL  %-40s %4ss (exit %d), last lines of %s:\n' "$name" "$secs" "$rc" "$log"
		tail -n 30 "$log" | sed 's/^/      /'
		;;
	esac
}

# launch NAME LIMIT COMMAND...: starts the test in the background, output
# to its log, stdin from /dev/null (tests run side by side).
launch() {
	local name=$1 limit=$2 f
	shift 2
	f=$(file_of "$name")
	(
		start=$(date +%s)
		B=$B timeout -k 10 "$limit" "$@" >"$logs/$f.log" 2>&1 </dev/null &
		echo $! >"$state/$f.pid"
		wait $!
		rc=$?
		echo "$rc $(($(date +%s) - start))" >"$state/$f.tmp"
		mv "$state/$f.tmp" "$state/$f.done"
	) &
}

# estimate NAME: seconds the test is expected to take: its last run here,
# else the lab README's runtime column, else unknown (it goes first).
estimate() {
	local name=$1 base secs=
	[ -f "$logs/times" ] && secs=$(awk -v n="$name" '$2 == n { s = $1 } END { print s }' "$logs/times")
	if [ -z "$secs" ] && [ "${name%%/*}" = lab ]; then
		base=${name#lab/}
		secs=$(sed -n "s/^| \`$base\\.sh\` |.*| ~\\([0-9][0-9]*\\) s |\$/\\1/p" tests/lab/README.md | head -n 1)
	fi
	echo "${secs:-999999}"
}

# Per layer, for run_queue: how many of its tests may run at once (unset:
# no limit of its own) and each one's time limit.
declare -A layer_jobs=()
declare -A layer_limit=([unit]=300 [lint]=300 [integration]=600 [lab]=1200 [fuzz]=900 [bench]=1800)

# layer_running LAYER NAME...: how many of the NAMEs are of LAYER.
layer_running() {
	local layer=$1 name n=0
	shift
	for name in "$@"; do
		[ "${name%%/*}" = "$layer" ] && n=$((n + 1))
	done
	echo "$n"
}

# run_queue JOBS NAME:COMMAND...: runs the tests, JOBS at a time (and no
# more of a layer than layer_jobs says), longest first; each COMMAND is
# one word (a path run with bash, or a binary).  Returns when all have
# ended.
run_queue() {
	local max=$1 limit spec name cmd i f n started heavy_running cap
	shift
	local pending=() running=() still=()
	i=0
	for spec in "$@"; do
		order+=("${spec%%:*}")
	done
	for spec in "$@"; do
		echo "$(estimate "${spec%%:*}") $((i++)) $spec"
	done | sort -k1,1nr -k2,2n >"$state/queue"
	while read -r _ _ spec; do
		pending+=("$spec")
	done <"$state/queue"
	while [ ${#pending[@]} -gt 0 ] || [ ${#running[@]} -gt 0 ]; do
		# Start what fits, in queue order; a heavy lab scenario waits
		# while another one runs.
		while [ ${#running[@]} -lt "$max" ] && [ ${#pending[@]} -gt 0 ]; do
			heavy_running=0
			for name in "${running[@]}"; do
				case " $heavy_labs " in *" $name "*) heavy_running=1 ;; esac
			done
			started=
			for i in "${!pending[@]}"; do
				name=${pending[$i]%%:*}
				if [ "$heavy_running" = 1 ]; then
					case " $heavy_labs " in *" $name "*) continue ;; esac
				fi
				cap=${layer_jobs[${name%%/*}]:-}
				[ -z "$cap" ] || [ "$(layer_running "${name%%/*}" "${running[@]}")" -lt "$cap" ] ||
					continue
				cmd=${pending[$i]#*:}
				limit=${layer_limit[${name%%/*}]}
				case $cmd in
				*.sh) launch "$name" "$limit" bash "$cmd" ;;
				*) launch "$name" "$limit" "$cmd" ;;
				esac
				running+=("$name")
				unset 'pending[i]'
				pending=("${pending[@]}")
				started=1
				break
			done
			[ -n "$started" ] || break
		done
		# Wait for one to end (any test's subshell), then report all
		# that have.
		n=0
		for name in "${running[@]}"; do
			[ -f "$state/$(file_of "$name").done" ] || n=$((n + 1))
		done
		[ "$n" -eq 0 ] || wait -n
		still=()
		for name in "${running[@]}"; do
			f=$(file_of "$name")
			if [ -f "$state/$f.done" ]; then
				report "$name" "${layer_limit[${name%%/*}]}"
			else
				still+=("$name")
			fi
		done
		running=("${still[@]}")
	done
	wait
}

run_unit() {
	local t src specs=()
	# One test per source in tests/unit/: a binary left in $B by a test
	# since renamed or removed is not run.
	for src in tests/unit/test_*.c; do
		t="$B/tests/$(basename "$src" .c)"
		[ -x "$t" ] || continue
		specs+=("unit/$(basename "$t"):$t")
	done
	[ ${#specs[@]} -eq 0 ] || run_queue "$jobs" "${specs[@]}"
}

# script_specs DIR...: NAME:PATH of every script of the layers in DIR...,
# into the array specs (a layer not run with SAN=1 is reported skipped).
script_specs() {
	local dir t reason
	specs=()
	for dir in "$@"; do
		if [ "$SAN" = 1 ] && { [ "$dir" = tests/lab ] || [ "$dir" = tests/fuzz ]; }; then
			skipped=$((skipped + 1))
			reason="not run with SAN=1 (run \"make $(basename "$dir")\" without SAN)"
			order+=("$(basename "$dir")")
			result[$(basename "$dir")]="skip $reason"
			printf 'SKIP  %-40s %s\n' "$(basename "$dir")/*" "$reason"
			continue
		fi
		for t in "$dir"/*.sh; do
			[ -f "$t" ] || continue
			specs+=("$(basename "$dir")/$(basename "$t" .sh):$t")
		done
	done
}

# run_scripts JOBS DIR...: the scripts of those layers in one queue.
run_scripts() {
	local max=$1 specs=()
	shift
	script_specs "$@"
	[ ${#specs[@]} -eq 0 ] || run_queue "$max" "${specs[@]}"
}

case $layer in
all)
	run_scripts 1 tests/lint
	run_unit
	# Integration tests and lab scenarios in one queue, each layer with
	# its own number at once: the long lab scenarios, which mostly wait,
	# start at once beside the integration tests instead of after them.
	layer_jobs=([integration]=$jobs [lab]=$lab_jobs)
	run_scripts $((jobs + lab_jobs)) tests/integration tests/lab
	layer_jobs=()
	# A short pass in make check; `make fuzz` fuzzes 60 s per target.
	FUZZ_SECONDS=${FUZZ_SECONDS:-10} run_scripts 1 tests/fuzz
	;;
lint) run_scripts 1 tests/lint ;;
unit) run_unit ;;
integration) run_scripts "$jobs" tests/integration ;;
lab) run_scripts "$lab_jobs" tests/lab ;;
fuzz) run_scripts 1 tests/fuzz ;;
bench) run_scripts 1 tests/bench ;;
*) usage ;;
esac

# Reports from processes whose test passed anyway (a leak at a daemon's
# exit, a UBSan finding in a child) still fail the run.
fails=""
if [ "$SAN" = 1 ]; then
	for report in "$sanlogs"/*; do
		[ -f "$report" ] || continue
		failed=$((failed + 1))
		order+=("$(basename "$report")")
		result[$(basename "$report")]=fail
		printf 'FAIL  sanitizer report %s:\n' "$report"
		grep -m 5 -E "$san_markers" "$report" | sed 's/^/      /'
	done
fi

# What each test took, for the next run's order and for the list below.
if [ ${#took[@]} -gt 0 ]; then
	{
		[ -f "$logs/times" ] && awk 'NF == 2' "$logs/times"
		for name in "${!took[@]}"; do
			echo "${took[$name]} $name"
		done
	} | awk '{ s[$2] = $1 } END { for (n in s) print s[n], n }' | sort -k2 >"$state/times" &&
		mv "$state/times" "$logs/times"
	echo "slowest:"
	for name in "${!took[@]}"; do
		echo "${took[$name]} $name"
	done | sort -k1,1nr -k2,2 | head -n 10 | while read -r secs name; do
		printf '  %5ss  %s\n' "$secs" "$name"
	done
fi
rm -rf "$state"

skips=""
for name in "${order[@]}"; do
	case ${result[$name]:-} in
	skip\ *)
		skips="$skips
  $name: ${result[$name]#skip }"
		;;
	fail) fails="$fails $name" ;;
	esac
done
if [ -n "$skips" ]; then
	echo "skipped:$skips"
fi
[ -n "$fails" ] && echo "failed:$fails"
echo "$passed passed, $failed failed, $skipped skipped" | tee "$logs/summary"
[ "$failed" -eq 0 ]
