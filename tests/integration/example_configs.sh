#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Every example in deploy/examples/ must pass its program's own check (-n),
# and so must every optional key it documents as a commented-out line such
# as "#   spool_max: 64MiB": a key the parser rejects (a typo, a renamed key)
# fails here with the example's file:line instead of at a user's first
# start.  A commented key line is a comment whose text, after "# ", starts
# with "key:", "- key:" or "- { key:"; the commented lines right after it
# that are indented deeper belong to it (a list, a wrapped comment).  Each
# such block is uncommented on its own, in place (line numbers stay), in a
# copy of the example, and the copy is checked; a block must therefore be
# valid YAML once "# " is removed.  Which program reads an example is taken
# from its header ("example configuration of vantage-agent(8)").  The
# aggregator's -n reads its secret key and API token files, so they are
# made in the copy's directory (absolute paths are moved under it).  Never
# touches anything outside its temporary directory.
set -euo pipefail

B=${B:-build}
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
case $B in
/*) BIN=$B ;;
*) BIN=$TOP/$B ;;
esac
cd "$TOP"

for prog in vantage-agent vantage-aggregator vantagectl; do
	if [ ! -x "$BIN/$prog" ]; then
		echo "FAIL: \"$BIN/$prog\" does not exist; build it with make"
		exit 1
	fi
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0

fail() {
	echo "FAIL: $*"
	failures=$((failures + 1))
}

ok() {
	echo "ok - $*"
}

# blocks FILE: one "FIRST LAST" line per commented key block.
blocks() {
	awk '
		function flush() { if (first) print first, last; first = 0 }
		{
			if (!match($0, /^[ \t]*#/)) { flush(); next }
			text = substr($0, RLENGTH + 1)
			sub(/^ /, "", text)
			match(text, /^ */)
			indent = RLENGTH
			iskey = text ~ /^ *(- +)?(\{ *)?[a-z_][a-z0-9_]*:( |$)/
			if (first && indent > block_indent && text !~ /^ *$/) {
				last = NR
			} else {
				flush()
				if (iskey) { first = last = NR; block_indent = indent }
			}
		}
		END { flush() }' "$1"
}

# uncomment FILE FIRST LAST: FILE with "# " removed from lines FIRST..LAST.
uncomment() {
	awk -v first="$2" -v last="$3" '
		NR >= first && NR <= last { sub(/#( |$)/, "") }
		{ print }' "$1"
}

# program FILE: the daemon that reads this example, from its header.
program() {
	sed -n '1,10s/.*example configuration of \(vantage-[a-z]*\)(8).*/\1/p' "$1" | head -n 1
}

# fixtures DIR: make the files that -n opens, as named in DIR/conf.yml.
fixtures() {
	local dir=$1 path name
	sed -E -i 's#((curve_secret_key|token_file|agent_keys_dir):[ ]*"?)/#\1root/#' "$dir/conf.yml"
	grep -oE '(curve_secret_key|token_file|agent_keys_dir):[ ]*"?[^ ,}"]+' "$dir/conf.yml" |
		while read -r key path; do
			path=${path#\"}
			mkdir -p "$dir/$(dirname "$path")"
			case $key in
			curve_secret_key:)
				name=$(basename "$path" .key)
				mkdir -p "$dir/gen"
				"$BIN/vantagectl" keys new "$name" --dir "$dir/gen" >/dev/null
				mv "$dir/gen/$name.key" "$dir/$path"
				;;
			token_file:)
				(umask 077 && head -c 32 /dev/urandom | base64 >"$dir/$path")
				;;
			agent_keys_dir:)
				mkdir -p "$dir/$path"
				;;
			esac
		done
}

# check EXAMPLE PROG WHAT FIRST LAST: uncomment FIRST..LAST (none when 0)
# in a copy of EXAMPLE and check it with PROG -n.
check() {
	local example=$1 prog=$2 what=$3 first=$4 last=$5 dir out
	dir=$(mktemp -d "$work/check.XXXXXX")
	if [ "$first" = 0 ]; then
		cp "$example" "$dir/conf.yml"
	else
		uncomment "$example" "$first" "$last" >"$dir/conf.yml"
	fi
	fixtures "$dir"
	if out=$("$BIN/$prog" -n -f "$dir/conf.yml" 2>&1); then
		ok "$what"
		return 0
	fi
	if [ "$first" = 0 ]; then
		fail "$example: $prog -n rejects it: ${out//$dir\/conf.yml/$example}"
	else
		fail "$example:$first: the commented-out lines $first-$last, uncommented, are" \
			"rejected by $prog -n: ${out//$dir\/conf.yml/$example}"
		sed -n "${first},${last}p" "$example" | sed 's/^/    /'
	fi
	return 1
}

n_examples=0
for example in deploy/examples/*.yml deploy/examples/*.yaml; do
	[ -e "$example" ] || continue
	n_examples=$((n_examples + 1))
	prog=$(program "$example")
	if [ -z "$prog" ] || [ ! -x "$BIN/$prog" ]; then
		fail "$example: its header does not say \"example configuration of" \
			"vantage-agent(8)\" or \"... of vantage-aggregator(8)\", so no program checks it"
		continue
	fi
	# Its commented lines would only repeat the error.
	check "$example" "$prog" "$example passes $prog -n" 0 0 || continue
	n_blocks=0
	while read -r first last; do
		n_blocks=$((n_blocks + 1))
		check "$example" "$prog" "$example:$first-$last uncommented passes $prog -n" \
			"$first" "$last" || true
	done < <(blocks "$example")
	[ "$n_blocks" -gt 0 ] || echo "note: $example has no commented-out key lines"
done
[ "$n_examples" -gt 0 ] || fail "no examples in deploy/examples/"

if [ "$failures" -gt 0 ]; then
	echo "FAIL: $failures checks of the examples in deploy/examples/ failed"
	exit 1
fi
