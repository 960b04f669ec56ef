#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# Installs the Debian 12 packages vantage needs to build, test and run its
# embedded PostgreSQL, and creates the unprivileged system user "vantage"
# that the embedded cluster runs as when the aggregator starts as root.
# Run by `make deps` and therefore before every `make check`: when nothing is
# missing it must print one line and exit 0 without touching the network.
# It never runs apt-get unless a package is actually missing, and as a
# normal user it only prints the command to run, because it must never
# escalate privileges on its own.
# Package lists are split on spaces on purpose:
# shellcheck disable=SC2086
set -eu

PKGS="build-essential pkg-config libevent-dev libzmq3-dev libprotobuf-c-dev \
protobuf-c-compiler libpq-dev libcurl4-openssl-dev libyaml-dev libjansson-dev \
libcmark-dev libcmocka-dev postgresql-15 postgresql-client-15 clang \
libclang-rt-14-dev clang-format cppcheck curl jq iproute2 procps psmisc openssl"
NPKGS=$(set -- $PKGS; echo $#)

if ! command -v dpkg-query >/dev/null 2>&1; then
	# Not Debian: the Makefile's pkg-config calls will say what is missing.
	echo "install-deps: dpkg-query not found; install the equivalents of: $PKGS" >&2
	exit 0
fi

# One dpkg-query for all packages: unknown ones print nothing (their error
# goes to /dev/null), and a package counts as present only when its status
# is exactly "install ok installed" (not "deinstall ok config-files").
missing_pkgs() {
	dpkg-query -W -f='${Package} ${Status}\n' $PKGS 2>/dev/null |
		awk -v want="$PKGS" '
			$2 == "install" && $3 == "ok" && $4 == "installed" { ok[$1] = 1 }
			END {
				n = split(want, w, " ")
				sep = ""
				for (i = 1; i <= n; i++)
					if (!(w[i] in ok)) { printf "%s%s", sep, w[i]; sep = " " }
			}'
}

is_root=0
[ "$(id -u)" -eq 0 ] && is_root=1

ensure_user() {
	[ "$is_root" -eq 1 ] || return 0
	getent passwd vantage >/dev/null 2>&1 && return 0
	echo "install-deps: creating system user \"vantage\" for the embedded database"
	useradd --system --no-create-home --shell /usr/sbin/nologin vantage
}

missing=$(missing_pkgs)
if [ -z "$missing" ]; then
	ensure_user
	echo "install-deps: all $NPKGS packages present"
	exit 0
fi

if [ "$is_root" -ne 1 ]; then
	echo "install-deps: missing packages: $missing" >&2
	echo "install-deps: run \"sudo make deps\", or install them yourself with:" >&2
	echo "sudo apt-get install --no-install-recommends $missing" >&2
	exit 1
fi

echo "install-deps: installing $missing"
apt-get update
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing

still=$(missing_pkgs)
if [ -n "$still" ]; then
	echo "install-deps: still missing after apt-get install: $still" >&2
	exit 1
fi
ensure_user
echo "install-deps: all $NPKGS packages present"
