#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# The fuzz layer of `make check` (TESTPLAN.md §4): builds the libFuzzer
# targets with ASan+UBSan, replays every saved regression input, then fuzzes
# each target for FUZZ_SECONDS (default 60) from a corpus kept in
# $B/fuzz/corpus-TARGET, seeded from tests/fuzz/seeds/TARGET/ and the
# generated wire seeds.  Exits 1 if any target crashes, leaks, times out or
# runs out of memory, naming the input that did it; 77 ("SKIP: ...") when
# clang or its libFuzzer runtime is missing.  Writes nothing outside $B but
# the one temporary file fuzz_conf makes (and unlinks at once).
#
#   B=build FUZZ_SECONDS=60 bash tests/fuzz/fuzz.sh
#
# A crash input belongs in tests/fuzz/regressions/TARGET/ (any file name;
# names starting with "." are ignored) until a unit test covers it.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1
B=${B:-build}
seconds=${FUZZ_SECONDS:-60}
out=$B/fuzz

# TARGET:MAX_LEN.  wire.c itself refuses frames over 1 MiB; 64 KiB inputs
# reach every check far faster.  Configs beyond 16 KiB only repeat structure.
# HTTP requests: evhttp refuses headers over 16 KiB and bodies over 64 KiB,
# and 16 KiB covers a request line, headers and a body past every check.
# Spool segments: records up to 1 MiB exist, but 64 KiB holds dozens of
# records and every way for one to be torn.
targets="wire:65536 conf:16384 spool:65536 http:16384"

bash tests/fuzz/build-fuzzers
rc=$?
[ $rc -eq 77 ] && exit 77
if [ $rc -ne 0 ]; then
	echo "FAIL: building the fuzz targets failed (exit $rc)"
	exit 1
fi

# Symbolized stacks in the report, and a stack for UBSan findings too.
symbolizer=$(${FUZZ_CC:-clang} -print-prog-name=llvm-symbolizer 2>/dev/null)
[ -x "$symbolizer" ] && export ASAN_SYMBOLIZER_PATH=$symbolizer
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}

# libFuzzer's own failure exit code is 77, which tests/run.sh would take for
# a skip; every failure is made 1.
common_flags=(-rss_limit_mb=2048 -timeout=30 -error_exitcode=1 -timeout_exitcode=1)

# final_stat LOG NAME: a number from libFuzzer's -print_final_stats output.
final_stat() {
	sed -n "s/^stat::$2: *//p" "$1" | tail -n 1
}

# failure TARGET LOG WHAT: shows the report and stack now, and keeps a
# summary for the end, where tests/run.sh's tail of the output will show it.
failures=""
failure() {
	local headline

	echo "---- fuzz_$1: $3"
	grep -v '^#[0-9]*[[:space:]]*\(NEW\|REDUCE\|pulse\|INITED\)' "$2" | tail -n 80
	headline=$(grep -m 1 -E "^fuzz_$1: |ERROR: [A-Za-z]+Sanitizer|runtime error:|ERROR: libFuzzer" "$2")
	failures="$failures
FAIL: fuzz_$1 $3
      ${headline:-(no sanitizer report; see $2)}"
}

for spec in $targets; do
	target=${spec%%:*}
	max_len=${spec#*:}
	bin=$out/fuzz_$target
	corpus=$out/corpus-$target
	artifacts=$out/artifacts-$target/
	log=$out/fuzz_$target.log
	mkdir -p "$corpus" "$artifacts"
	[ -d "tests/fuzz/seeds/$target" ] && cp -p "tests/fuzz/seeds/$target"/* "$corpus"/
	dict=()
	[ -f "tests/fuzz/$target.dict" ] && dict=(-dict="tests/fuzz/$target.dict")

	# Known crashers first: a fix that regresses fails here, within seconds.
	mapfile -t regressions < <(find "tests/fuzz/regressions/$target" -type f ! -name '.*' 2>/dev/null | sort)
	if [ ${#regressions[@]} -gt 0 ]; then
		if ! "$bin" "${common_flags[@]}" "${regressions[@]}" >"$log" 2>&1; then
			input=$(sed -n 's/^Running: //p' "$log" | tail -n 1)
			failure "$target" "$log" "crashes on regression input $input"
			continue
		fi
		echo "fuzz_$target: ${#regressions[@]} regression inputs pass"
	fi

	"$bin" "${common_flags[@]}" "${dict[@]}" -max_len="$max_len" -max_total_time="$seconds" \
		-print_final_stats=1 -artifact_prefix="$artifacts" "$corpus" >"$log" 2>&1
	rc=$?
	if [ $rc -ne 0 ]; then
		input=$(sed -n 's/.*Test unit written to //p' "$log" | tail -n 1)
		failure "$target" "$log" "crashed (exit $rc); input: ${input:-(none written, see $log)}"
		continue
	fi
	done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1)
	cov=$(echo "$done_line" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
	ft=$(echo "$done_line" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
	corp=$(echo "$done_line" | sed -n 's/.* corp: \([^ ]*\).*/\1/p')
	edges=$(sed -n 's/.*(\([0-9]*\) inline 8-bit counters).*/\1/p' "$log" | head -n 1)
	printf 'fuzz_%s: %s runs in %ss (%s/s), cov %s of %s edges, ft %s, corpus %s (+%s new), peak rss %s MB\n' \
		"$target" "$(final_stat "$log" number_of_executed_units)" "$seconds" \
		"$(final_stat "$log" average_exec_per_sec)" "$cov" "$edges" "$ft" "$corp" \
		"$(final_stat "$log" new_units_added)" "$(final_stat "$log" peak_rss_mb)"
done
if [ -n "$failures" ]; then
	echo "$failures"
	exit 1
fi
exit 0
