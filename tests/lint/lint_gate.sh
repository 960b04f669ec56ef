#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The layout gate of `make lint` fails on a badly laid out file and passes
# on a well laid out one.  Works on copies in a temporary directory, with
# the command `make lint` runs (clang-format --dry-run --Werror) and the
# repository's .clang-format: a source file in that layout must pass (the
# layout is stable: formatting a formatted file changes nothing), and the
# same file with its indentation mangled must fail and be named.  Exits 77
# when clang-format is missing; never touches the tree.
set -euo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$TOP"

if ! command -v clang-format >/dev/null 2>&1; then
	echo "SKIP: needs clang-format (make deps installs it)"
	exit 77
fi

src=common/buf.c
[ -f "$src" ] || src=$(ls common/*.c | head -n 1)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
style=--style=file:$TOP/.clang-format

# In the layout of .clang-format, whether or not the tree is formatted
# yet (lint/make_lint reports that).
clang-format "$style" "$src" >"$work/good.c"
if ! clang-format "$style" --dry-run --Werror "$work/good.c" >"$work/good.log" 2>&1; then
	cat "$work/good.log"
	echo "FAIL: $src formatted by clang-format does not pass clang-format --dry-run"
	exit 1
fi
echo "ok: $src in the layout of .clang-format passes"

# Two leading tabs become four spaces: the commonest slip of an editor.
sed 's/^\t\t/    /' "$work/good.c" >"$work/bad.c"
if cmp -s "$work/good.c" "$work/bad.c"; then
	echo "FAIL: $src has no line indented by two tabs to mangle"
	exit 1
fi
if clang-format "$style" --dry-run --Werror "$work/bad.c" >"$work/bad.log" 2>&1; then
	echo "FAIL: clang-format --dry-run --Werror passed a file indented with spaces"
	exit 1
fi
if ! grep -q "bad.c:.*error: code should be clang-formatted" "$work/bad.log"; then
	cat "$work/bad.log"
	echo "FAIL: clang-format failed on the mangled file without naming it"
	exit 1
fi
echo "ok: the mangled copy fails: $(grep -c 'error: code should be clang-formatted' "$work/bad.log") lines flagged"
