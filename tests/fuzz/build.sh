#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# Builds the libFuzzer targets into $B/fuzz/ straight from the sources they
# exercise (not from $B/lib*.a, whose objects lack the fuzzer's coverage
# instrumentation), and generates the wire seed corpus into
# $B/fuzz/corpus-wire.  Exits 77 with a "SKIP:" line when clang or its
# libFuzzer runtime is missing, so that the fuzz layer is skipped, never
# passed, on hosts without them.  Writes nothing outside $B.
#
#   B=build tests/fuzz/build.sh      (FUZZ_CC overrides clang)
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
B=${B:-build}
CC=${FUZZ_CC:-clang}
out=$B/fuzz
pkgs=(libprotobuf-c yaml-0.1 jansson libevent)

skip() {
	echo "SKIP: $*"
	exit 77
}

command -v "$CC" >/dev/null 2>&1 || skip "$CC not found (apt-get install clang)"
mkdir -p "$out"
probe=$out/.probe
printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { return 0; }\n' \
	>"$probe.c"
linked=0
"$CC" -fsanitize=fuzzer,address,undefined -o "$probe" "$probe.c" >/dev/null 2>&1 && linked=1
rm -f "$probe" "$probe.c"
[ $linked -eq 1 ] ||
	skip "$CC cannot link -fsanitize=fuzzer (the libFuzzer runtime is missing: apt-get install libclang-rt-dev)"
pkg-config --exists "${pkgs[@]}" || skip "pkg-config cannot find all of: ${pkgs[*]}"

# The generated protobuf-c code is the one input that is not in git.
make -s build/gen/vantage.pb-c.h build/gen/vantage.pb-c.c

read -ra pkg_cflags <<<"$(pkg-config --cflags "${pkgs[@]}")"
read -ra libs <<<"$(pkg-config --libs "${pkgs[@]}") -lm"
base_flags=(-std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer -Wall -Wextra
	-Wno-unused-parameter -fno-sanitize-recover=undefined -Ibuild/gen -Icommon
	-Itests/fuzz "${pkg_cflags[@]}")

wire_src=(common/wire.c common/buf.c common/xmalloc.c common/log.c build/gen/vantage.pb-c.c)
conf_src=(common/yconf.c common/buf.c common/xmalloc.c common/log.c agent/conf.c
	aggregator/conf.c)

"$CC" "${base_flags[@]}" -fsanitize=fuzzer,address,undefined -o "$out/fuzz_wire" \
	tests/fuzz/fuzz_wire.c "${wire_src[@]}" "${libs[@]}"
"$CC" "${base_flags[@]}" -fsanitize=fuzzer,address,undefined -o "$out/fuzz_conf" \
	tests/fuzz/fuzz_conf.c "${conf_src[@]}" "${libs[@]}"

# The seed generator runs under the sanitizers too, but not under libFuzzer,
# whose main() it would otherwise get.
"$CC" "${base_flags[@]}" -fsanitize=address,undefined -o "$out/seeds_wire" \
	tests/fuzz/seeds_wire.c "${wire_src[@]}" "${libs[@]}"
mkdir -p "$out/corpus-wire"
"$out/seeds_wire" "$out/corpus-wire"
echo "built $out/fuzz_wire $out/fuzz_conf; wire seeds in $out/corpus-wire"
