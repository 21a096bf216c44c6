#!/usr/bin/env bash
# Redis clients against a netdb node and a redis-server on this machine,
# side by side: redis-benchmark's SET and GET with 100-byte values (-d 100)
# in these rows,
#
#   1 client, no pipelining          (-c 1)
#   50 clients, no pipelining        (-c 50)
#   50 clients, 16 pipelined         (-c 50 -P 16)
#   1000 clients, no pipelining      (-c 1000)
#
# each on redis-benchmark's one default key and on random keys
# (-r 100000: key:000000000000 .. key:000000099999).
#
# Each row runs RUNS times against each server, the two alternating (which
# goes first swaps every run) so that load from elsewhere on the machine
# hits both alike. Prints, per row and command, the medians of requests/s
# and of redis-benchmark's p50 and p99 latencies (--csv, Redis 7's
# redis-benchmark) for both, and the ratio of the medians netdb/redis.
# Targets (issue 10): at least 1.0 in every row of the first two tables;
# stretch 1.3 at 50 and 1,000 clients; at least 1.0 in the third.
#
# Three tables, like against like:
#   memory:  netdb --in-memory          vs redis --save '' --appendonly no
#   durable: netdb --fsync everysec     vs redis --appendonly yes --appendfsync everysec
#   always:  netdb --fsync always       vs redis --appendonly yes --appendfsync always
#            (50 clients, random keys only: where one batch from many
#            clients can be one fsync)
# Both servers may take 10,000 clients (Redis's default maxclients; netdb
# gets --max-clients 10000), and the script raises its open-files limit
# for the 1,000-client rows.
#
# Usage: bash benches/redis_benchmark.sh
#   RUNS=3                        runs per row and server
#   N_ONE=20000 N_MANY=100000 N_PIPE=400000 N_THOUSAND=200000 N_ALWAYS=50000
#                                 requests per test: 1 client, 50, 50 -P 16,
#                                 1000, and the always table's row
#   TABLES="memory durable always"  which tables, in order
#   TESTS=set,get                 redis-benchmark's tests (set, get, incr)
#   CLIENT_ROWS="1 50 50P16 1000" which client rows in the first two tables
#   KEY_MODES="default random"    which key rows in the first two tables
#   RUN_TIMEOUT=300s              the longest one redis-benchmark run may take
#   NETDB_BIN=path/to/netdb       measure that binary and build nothing
# A short run to try it: RUNS=1 N_ONE=2000 N_MANY=10000 N_PIPE=40000
#   N_THOUSAND=20000 N_ALWAYS=5000. Takes about five minutes on 2 busy
# cores with the defaults (the release build not included).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source benches/lib.sh

RUNS=${RUNS:-3}
N_ONE=${N_ONE:-20000}
N_MANY=${N_MANY:-100000}
N_PIPE=${N_PIPE:-400000}
N_THOUSAND=${N_THOUSAND:-200000}
N_ALWAYS=${N_ALWAYS:-50000}
TABLES=${TABLES:-memory durable always}
CLIENT_ROWS=${CLIENT_ROWS:-1 50 50P16 1000}
KEY_MODES=${KEY_MODES:-default random}
RUN_TIMEOUT=${RUN_TIMEOUT:-300s}
# redis-benchmark's tests, as its -t takes them (set, get, incr).
TESTS=${TESTS:-set,get}
read -r -a COMMANDS <<<"$(tr 'a-z,' 'A-Z ' <<<"$TESTS")"
# Random keys are drawn from this many.
KEYSPACE=100000
MAX_CLIENTS=10000

need_tools redis-benchmark
bench_setup
# 1,000 clients: redis-benchmark holds one end of each, the server the
# other.
raise_open_files 1200
build_netdb

# A row is CLIENTS|KEYS: CLIENTS one of 1, 50, 50P16, 1000, ALWAYS (50
# clients, the always table's request count); KEYS default or random.
row_label() {
    local clients=${1%|*} keys=${1#*|} label
    case "$clients" in
        1) label="1 client" ;;
        50 | ALWAYS) label="50 clients" ;;
        50P16) label="50 clients -P 16" ;;
        1000) label="1000 clients" ;;
        *) die "unknown client row '$clients' (1, 50, 50P16, 1000)" ;;
    esac
    [[ $keys == random ]] && label+=", random keys"
    echo "$label"
}

row_opts() {
    local clients=${1%|*} keys=${1#*|} opts
    case "$clients" in
        1) opts="-c 1 -n $N_ONE" ;;
        50) opts="-c 50 -n $N_MANY" ;;
        50P16) opts="-c 50 -P 16 -n $N_PIPE" ;;
        1000) opts="-c 1000 -n $N_THOUSAND" ;;
        ALWAYS) opts="-c 50 -n $N_ALWAYS" ;;
        *) die "unknown client row '$clients'" ;;
    esac
    case "$keys" in
        default) ;;
        random) opts+=" -r $KEYSPACE" ;;
        *) die "unknown key mode '$keys' (default, random)" ;;
    esac
    echo "$opts"
}

# One redis-benchmark run against `port` with row ROW's options; appends
# a line "COMMAND rps p50 p99" per command to the file `into`.
run_benchmark() {
    local port=$1 row=$2 into=$3 csv cmd
    # A server that stops answering must not hang the script.
    # shellcheck disable=SC2046 # the row's options are words on purpose
    csv=$(timeout "$RUN_TIMEOUT" redis-benchmark -h 127.0.0.1 -p "$port" -t "$TESTS" -d 100 \
        $(row_opts "$row") --csv 2>"$BENCH_TMP/benchmark.err") ||
        die "redis-benchmark failed or ran over ${RUN_TIMEOUT}: $(cat "$BENCH_TMP/benchmark.err")"
    # "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms",
    # "p95_latency_ms","p99_latency_ms","max_latency_ms"
    grep -q '"p99_latency_ms"' <<<"$csv" ||
        die "redis-benchmark printed no p99 (Redis 7's redis-benchmark needed): $csv"
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

# Checks that a server holds what the benchmark wrote (so the GETs found
# something, and no SET was refused unseen): the default key's 100-byte
# value, and more keys than that one after random keys.
check_data() {
    local port=$1 who=$2 rows=$3 value keys
    if [[ " $rows " == *"|default "* ]]; then
        value=$(redis-cli -p "$port" get key:__rand_int__)
        [[ ${#value} -eq 100 ]] || die "$who: GET key:__rand_int__ gave '${value:0:40}...', not 100 bytes"
    fi
    if [[ " $rows " == *"|random "* ]]; then
        keys=$(redis-cli -p "$port" dbsize)
        ((keys > 1)) || die "$who: $keys keys after SETs of random keys"
    fi
}

# Runs one table over ROWS: both servers up, every row RUNS times,
# alternating. Usage: run_table TITLE ROW...
run_table() {
    local title=$1 row i run who order
    shift
    local rows=("$@")
    echo >&2
    echo "$title" >&2
    for i in "${!rows[@]}"; do
        : >"$BENCH_TMP/netdb.$i"
        : >"$BENCH_TMP/redis.$i"
    done
    for run in $(seq "$RUNS"); do
        if ((run % 2)); then order=(netdb redis); else order=(redis netdb); fi
        for i in "${!rows[@]}"; do
            echo "  run $run/$RUNS: $(row_label "${rows[$i]}"), ${order[0]} first" >&2
            for who in "${order[@]}"; do
                if [[ $who == netdb ]]; then
                    run_benchmark "$NODE_PORT" "${rows[$i]}" "$BENCH_TMP/netdb.$i"
                else
                    run_benchmark "$REDIS_PORT" "${rows[$i]}" "$BENCH_TMP/redis.$i"
                fi
            done
        done
    done
    check_data "$NODE_PORT" netdb "${rows[*]}"
    check_data "$REDIS_PORT" redis "${rows[*]}"
    print_table "$title" "${rows[@]}"
}

print_table() {
    local title=$1 i cmd n r
    shift
    local rows=("$@")
    echo
    echo "$title"
    echo "medians of $RUNS runs; latencies in ms, p50/p99"
    printf '%-38s %12s %12s %7s %16s %16s\n' \
        "" "netdb req/s" "redis req/s" "ratio" "netdb p50/p99" "redis p50/p99"
    for i in "${!rows[@]}"; do
        for cmd in "${COMMANDS[@]}"; do
            n=$(median_of "$BENCH_TMP/netdb.$i" "$cmd" 2)
            r=$(median_of "$BENCH_TMP/redis.$i" "$cmd" 2)
            printf '%-38s %12.0f %12.0f %7.2f %16s %16s\n' \
                "$cmd $(row_label "${rows[$i]}")" "$n" "$r" "$(calc '%.4f' "$n / $r")" \
                "$(median_of "$BENCH_TMP/netdb.$i" "$cmd" 3)/$(median_of "$BENCH_TMP/netdb.$i" "$cmd" 4)" \
                "$(median_of "$BENCH_TMP/redis.$i" "$cmd" 3)/$(median_of "$BENCH_TMP/redis.$i" "$cmd" 4)"
        done
    done
}

# The rows of the memory and durable tables.
ROWS=()
for keys in $KEY_MODES; do
    for clients in $CLIENT_ROWS; do
        ROWS+=("$clients|$keys")
        row_opts "$clients|$keys" >/dev/null # an unknown row fails here, before any run
    done
done

machine_notes
for table in $TABLES; do
    case "$table" in
        memory)
            start_node bench1 --in-memory --max-clients "$MAX_CLIENTS"
            start_redis
            run_table "in memory: netdb --in-memory vs redis-server --save '' --appendonly no" "${ROWS[@]}"
            ;;
        durable)
            rm -rf "$BENCH_TMP/netdb-data" "$BENCH_TMP/redis-aof"
            mkdir -p "$BENCH_TMP/redis-aof"
            start_node bench1 --data-dir "$BENCH_TMP/netdb-data" --fsync everysec --max-clients "$MAX_CLIENTS"
            start_redis --appendonly yes --appendfsync everysec --dir "$BENCH_TMP/redis-aof"
            run_table "durable: netdb --fsync everysec vs redis-server --appendonly yes --appendfsync everysec" "${ROWS[@]}"
            ;;
        always)
            rm -rf "$BENCH_TMP/netdb-data" "$BENCH_TMP/redis-aof"
            mkdir -p "$BENCH_TMP/redis-aof"
            start_node bench1 --data-dir "$BENCH_TMP/netdb-data" --fsync always --max-clients "$MAX_CLIENTS"
            start_redis --appendonly yes --appendfsync always --dir "$BENCH_TMP/redis-aof"
            run_table "every write on disk: netdb --fsync always vs redis-server --appendonly yes --appendfsync always" "ALWAYS|random"
            ;;
        *) die "unknown table '$table' (memory, durable, always)" ;;
    esac
    stop_node
    stop_redis
done
machine_notes
