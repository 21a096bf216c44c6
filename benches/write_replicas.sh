#!/usr/bin/env bash
# What `--write-replicas W` costs (issue 14): three in-memory nodes with
# `--replicas 3`, started once with W = 1 and once with W = 2 (and W = 3),
# and redis-benchmark's SET (-c 50, -r 100000, -d 100) against n1, once
# with one request at a time per client and once pipelined (-P 16).
# Medians of RUNS runs per case; the ratio of each W to W = 1.
#
# Every node this script starts is stopped when it exits, also on an error
# or Ctrl-C (benches/lib.sh).
#
# Usage: bash benches/write_replicas.sh
#   RUNS=3                  redis-benchmark runs per case
#   N_BENCH=100000          requests per run
#   WS="1 2 3"              the values of W measured
#   NETDB_BIN=path/to/netdb measure that binary and build nothing
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source benches/lib.sh

RUNS=${RUNS:-3}
N_BENCH=${N_BENCH:-100000}
WS=${WS:-1 2 3}

need_tools redis-benchmark
bench_setup
build_netdb
machine_notes

# Starts three members with `--write-replicas $1`, n2 and n3 joining n1;
# sets PORTS.
start_three() {
    local w=$1 name
    PORTS=()
    start_node n1 --in-memory --replicas 3 --write-replicas "$w" --sync-interval-ms 100
    PORTS+=("$NODE_PORT")
    for name in n2 n3; do
        start_node "$name" --in-memory --replicas 3 --write-replicas "$w" \
            --sync-interval-ms 100 --join "127.0.0.1:${PORTS[0]}"
        PORTS+=("$NODE_PORT")
    done
    local deadline=$((SECONDS + 60)) port ok
    while :; do
        ok=1
        for port in "${PORTS[@]}"; do
            redis-cli -p "$port" cluster info | grep -q 'cluster_known_nodes:3' || ok=0
        done
        ((ok)) && break
        ((SECONDS < deadline)) || die "the three members did not meet"
        sleep 0.2
    done
    deadline=$((SECONDS + 60))
    for port in "${PORTS[@]}"; do
        until redis-cli -p "$port" cluster info | grep -q 'cluster_state:ok'; do
            ((SECONDS < deadline)) || die "cluster_state never ok"
            sleep 0.2
        done
    done
}

# Requests per second of one redis-benchmark SET run against port $1,
# with pipeline $2.
sets_per_sec() {
    redis-benchmark -p "$1" -t set -n "$N_BENCH" -c 50 -r 100000 -d 100 -P "$2" -q 2>/dev/null |
        awk -F'[ :]+' '/requests per second/ { for (i = 1; i <= NF; i++) if ($i == "requests") { print $(i - 1); exit } }'
}

declare -A RESULT
for w in $WS; do
    start_three "$w"
    for pipeline in 1 16; do
        runs=()
        for _ in $(seq "$RUNS"); do
            runs+=("$(sets_per_sec "${PORTS[0]}" "$pipeline")")
        done
        RESULT[$w,$pipeline]=$(median "${runs[@]}")
        echo "W=$w -P $pipeline: ${runs[*]} SETs/s (median ${RESULT[$w,$pipeline]})"
    done
    for pid in "${BENCH_PIDS[@]}"; do
        stop_pid "$pid" || true
    done
    BENCH_PIDS=()
done

echo
echo "| SETs per second, -c 50 | $(for w in $WS; do printf 'W=%s | ' "$w"; done)"
for pipeline in 1 16; do
    row="| -P $pipeline |"
    for w in $WS; do
        row+=" ${RESULT[$w,$pipeline]} ($(calc '%.2f' "${RESULT[$w,$pipeline]} / ${RESULT[1,$pipeline]}")x) |"
    done
    echo "$row"
done
