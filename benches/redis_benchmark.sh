#!/usr/bin/env bash
# Redis clients against a netdb node and a redis-server on this machine,
# side by side: redis-benchmark's SET and GET with 100-byte values
# (-d 100, all on redis-benchmark's one default key) in three rows,
#
#   1 client, no pipelining       (-c 1)
#   50 clients, no pipelining     (-c 50)
#   50 clients, 16 pipelined      (-c 50 -P 16)
#
# Each row runs RUNS times against each server, the two alternating (which
# goes first swaps every run) so that load from elsewhere on the machine
# hits both alike. Prints, per row and command, the medians of requests/s
# and of redis-benchmark's p50 and p99 latencies (--csv) for both, and the
# ratio of the medians netdb/redis. Target: at least 1.0 in every row.
#
# Two tables, like against like:
#   in memory: netdb --in-memory            vs redis --save '' --appendonly no
#   durable:   netdb (--fsync everysec)     vs redis --appendonly yes --appendfsync everysec
#
# Usage: bash benches/redis_benchmark.sh
#   RUNS=3                        runs per row and server
#   N_ONE=20000 N_MANY=100000 N_PIPE=400000
#                                 requests per test in rows 1, 2 and 3
#   TABLES="memory durable"       which tables, in order
#   RUN_TIMEOUT=120s              the longest one redis-benchmark run may take
#   NETDB_BIN=path/to/netdb       measure that binary and build nothing
# Takes about a minute and a half on 2 busy cores with the defaults (the
# release build not included).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source benches/lib.sh

RUNS=${RUNS:-3}
N_ONE=${N_ONE:-20000}
N_MANY=${N_MANY:-100000}
N_PIPE=${N_PIPE:-400000}
TABLES=${TABLES:-memory durable}
RUN_TIMEOUT=${RUN_TIMEOUT:-120s}

# The rows: a label, redis-benchmark's options, the request count.
ROW_LABELS=("1 client" "50 clients" "50 clients -P 16")
ROW_OPTS=("-c 1" "-c 50" "-c 50 -P 16")
ROW_N=("$N_ONE" "$N_MANY" "$N_PIPE")
COMMANDS=(SET GET)

command -v redis-benchmark >/dev/null || die "redis-benchmark is not installed"
bench_setup
build_netdb

# One redis-benchmark run against `port` with row `row`'s options; appends
# a line "COMMAND rps p50 p99" per command to the file `into`.
run_benchmark() {
    local port=$1 row=$2 into=$3 csv cmd
    # shellcheck disable=SC2086 # the row's options are words on purpose
    # A server that stops answering must not hang the script.
    csv=$(timeout "$RUN_TIMEOUT" redis-benchmark -h 127.0.0.1 -p "$port" -t set,get -d 100 \
        -n "${ROW_N[$row]}" ${ROW_OPTS[$row]} --csv 2>"$BENCH_TMP/benchmark.err") ||
        die "redis-benchmark failed or ran over ${RUN_TIMEOUT}: $(cat "$BENCH_TMP/benchmark.err")"
    # "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms",
    # "p95_latency_ms","p99_latency_ms","max_latency_ms"
    for cmd in "${COMMANDS[@]}"; do
        grep -q "^\"$cmd\"," <<<"$csv" || die "redis-benchmark printed no $cmd result: $csv"
    done
    awk -F, 'NR > 1 { gsub(/"/, ""); print $1, $2, $5, $7 }' <<<"$csv" >>"$into"
}

# The median of field `field` (2 rps, 3 p50, 4 p99) of command `cmd` in
# the result file `from`.
median_of() {
    local from=$1 cmd=$2 field=$3
    # shellcheck disable=SC2046 # one number a word
    median $(awk -v c="$cmd" -v f="$field" '$1 == c { print $f }' "$from")
}

# Checks that a server holds the benchmark's value (so the GETs found
# something, and no SET was refused unseen).
check_value() {
    local port=$1 who=$2 value
    value=$(redis-cli -p "$port" get key:__rand_int__)
    [[ ${#value} -eq 100 ]] || die "$who: GET key:__rand_int__ gave '${value:0:40}...', not 100 bytes"
}

# Runs one table: both servers up, every row RUNS times, alternating.
run_table() {
    local title=$1 row run who order
    echo >&2
    echo "$title" >&2
    for row in "${!ROW_OPTS[@]}"; do
        : >"$BENCH_TMP/netdb.$row"
        : >"$BENCH_TMP/redis.$row"
    done
    for run in $(seq "$RUNS"); do
        if ((run % 2)); then order=(netdb redis); else order=(redis netdb); fi
        for row in "${!ROW_OPTS[@]}"; do
            echo "  run $run/$RUNS: ${ROW_LABELS[$row]}, ${order[0]} first" >&2
            for who in "${order[@]}"; do
                if [[ $who == netdb ]]; then
                    run_benchmark "$NODE_PORT" "$row" "$BENCH_TMP/netdb.$row"
                else
                    run_benchmark "$REDIS_PORT" "$row" "$BENCH_TMP/redis.$row"
                fi
            done
        done
    done
    check_value "$NODE_PORT" netdb
    check_value "$REDIS_PORT" redis
    print_table "$title"
}

print_table() {
    local title=$1 row cmd n r
    echo
    echo "$title"
    echo "medians of $RUNS runs; latencies in ms, p50/p99"
    printf '%-22s %12s %12s %8s %16s %16s\n' \
        "" "netdb req/s" "redis req/s" "ratio" "netdb p50/p99" "redis p50/p99"
    for row in "${!ROW_OPTS[@]}"; do
        for cmd in "${COMMANDS[@]}"; do
            n=$(median_of "$BENCH_TMP/netdb.$row" "$cmd" 2)
            r=$(median_of "$BENCH_TMP/redis.$row" "$cmd" 2)
            printf '%-22s %12.0f %12.0f %8.2f %16s %16s\n' \
                "$cmd ${ROW_LABELS[$row]}" "$n" "$r" "$(calc '%.4f' "$n / $r")" \
                "$(median_of "$BENCH_TMP/netdb.$row" "$cmd" 3)/$(median_of "$BENCH_TMP/netdb.$row" "$cmd" 4)" \
                "$(median_of "$BENCH_TMP/redis.$row" "$cmd" 3)/$(median_of "$BENCH_TMP/redis.$row" "$cmd" 4)"
        done
    done
}

machine_notes
for table in $TABLES; do
    case "$table" in
        memory)
            start_node bench1 --in-memory
            start_redis
            run_table "in memory: netdb --in-memory vs redis-server --save '' --appendonly no"
            ;;
        durable)
            mkdir -p "$BENCH_TMP/redis-aof"
            start_node bench1 --data-dir "$BENCH_TMP/netdb-data" --fsync everysec
            start_redis --appendonly yes --appendfsync everysec --dir "$BENCH_TMP/redis-aof"
            run_table "durable: netdb --fsync everysec vs redis-server --appendonly yes --appendfsync everysec"
            ;;
        *) die "unknown table '$table' (memory, durable)" ;;
    esac
    stop_node
    stop_redis
done
machine_notes
