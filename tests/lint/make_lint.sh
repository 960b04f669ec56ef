#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# `make lint` as one test of `make check`, so that a lint failure shows in
# the runner's summary like any other: banned calls, the layout of every C
# file (clang-format --dry-run against .clang-format) and cppcheck.  Exits
# 77 when clang-format or cppcheck is missing (make deps installs both);
# it never rewrites a file (that is `make format`).
set -euo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$TOP"

for tool in clang-format cppcheck; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "SKIP: needs $tool (make deps installs it)"
		exit 77
	fi
done
# .clang-format was measured with clang-format 14 (Debian 12); another
# version may lay out a few constructs differently.
version=$(clang-format --version)
case $version in
*" version 14."*) ;;
*) echo "note: .clang-format is made for clang-format 14, this is: $version" ;;
esac

exec make --no-print-directory lint
