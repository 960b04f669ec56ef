#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Ingest throughput: simulated agents (tests/fakes/blast) push batches as
# fast as the aggregator acknowledges them, i.e. as fast as they are
# committed to the embedded PostgreSQL on this same machine.  Reports
# results/s committed and CPU seconds of the aggregator; checks that the
# table holds exactly what was acknowledged.  A measurement, not a pass/fail
# timing goal (DESIGN.md §9 asks for 50k results/s on 2 cores).  Over
# CurveZMQ like real agents; BENCH_PLAINTEXT=1 measures without it.
[ "${BENCH_PLAINTEXT:-0}" = 1 ] && VT_INSECURE=1
. "$(dirname "$0")/../lib/common.sh"
vt_setup

SECONDS_RUN=${BENCH_SECONDS:-15}
AGENTS=${BENCH_AGENTS:-4}
BATCH=${BENCH_BATCH:-1000}
targets=""
for i in 1 2 3 4 5 6 7 8; do
	targets+="  - { name: t0$i, http: { url: \"http://127.0.0.1:9/\" } }"$'\n'
done
vt_write_conf 1s 1s "$targets"
if [ "$VT_INSECURE" != 1 ]; then
	# blast's agents are blast-1..N, each admitted like a real agent.
	for i in $(seq 1 "$AGENTS"); do
		vt_agent_security "blast-$i" >/dev/null
	done
	export BLAST_KEYS_DIR=$VT_DIR/keys
fi
vt_start_aggregator
sleep 1
cpu0=$(vt_cpu_seconds "$VT_AGG_PID")
"$BIN/fakes/blast" "$VT_ZMQ" eu-west "$AGENTS" "$SECONDS_RUN" "$BATCH" 4 | tee "$VT_DIR/blast.out"
cpu1=$(vt_cpu_seconds "$VT_AGG_PID")
acked=$(sed -n 's/^acked \([0-9]*\) results.*/\1/p' "$VT_DIR/blast.out")
sleep 2
rows=$(vt_psql "SELECT count(*) FROM results")
[ "$rows" -ge "$acked" ] || vt_fail "only $rows rows stored for $acked acknowledged results"
bytes=$(vt_psql "SELECT sum(pg_total_relation_size(inhrelid)) FROM pg_inherits WHERE inhparent = 'results'::regclass")
echo "METRIC ingest_results_per_s=$((acked / SECONDS_RUN)) agents=$AGENTS batch=$BATCH curve=$((1 - VT_INSECURE))"
awk -v c0="$cpu0" -v c1="$cpu1" -v s="$SECONDS_RUN" \
	'BEGIN { printf "METRIC aggregator_cpu_s=%.2f aggregator_cpu_pct=%.0f\n", c1 - c0, 100 * (c1 - c0) / s }'
echo "METRIC bytes_per_result=$((bytes / rows)) rows=$rows"
vt_ok "stored every acknowledged result ($rows rows)"
