#!/usr/bin/env bash
# Resident memory per idle client connection: 10,000 connections that
# have each been answered one PING and then stay open and silent, held by
# a small Python client (benches/raw_clients.py idle), against a netdb
# node (--in-memory) and a redis-server (no persistence), one after the
# other, each fresh.
#
# For each server: its RSS (VmRSS in /proc/PID/status) once it has
# answered a PING with no client connected, and again once every idle
# connection has had its PONG and the server counts them all in `INFO
# clients`; the difference over the connection count is its cost per
# connection. Also netdb's thread count with them open. Prints the
# medians of RUNS runs and the ratio netdb/redis. Target (issue 10): a
# few KiB per connection, no thread per connection.
#
# Both servers may take IDLE + 100 clients (--max-clients, --maxclients);
# the script raises its open-files limit to the hard limit (the client
# and the servers inherit it; each holds one end of every connection) and
# fails if that is under what IDLE connections need.
#
# Usage: bash benches/idle_memory.sh
#   IDLE=10000                    idle connections
#   RUNS=3                        runs per server
#   IDLE_TIMEOUT=120              seconds the connections may take to open
#   NETDB_BIN=path/to/netdb       measure that binary and build nothing
# A short run to try it: RUNS=1 IDLE=2000.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source benches/lib.sh

IDLE=${IDLE:-10000}
RUNS=${RUNS:-3}
IDLE_TIMEOUT=${IDLE_TIMEOUT:-120}

need_tools python3
bench_setup
raise_open_files $((IDLE + 200))
build_netdb

# Opens IDLE connections to the server PID on PORT and measures it; sets
# PER_CONN (bytes) and prints its numbers. Usage: measure WHO PID PORT
PER_CONN=""
measure() {
    local who=$1 pid=$2 port=$3 before after threads clients deadline out=$BENCH_TMP/idle.out
    before=$(rss_kib "$pid")
    rm -f "$BENCH_TMP/idle.in"
    mkfifo "$BENCH_TMP/idle.in"
    python3 benches/raw_clients.py idle "$port" "$IDLE" <"$BENCH_TMP/idle.in" >"$out" 2>"$BENCH_TMP/idle.err" &
    local client=$!
    BENCH_PIDS+=("$client")
    exec 4>"$BENCH_TMP/idle.in"
    deadline=$(($(now_ns) + IDLE_TIMEOUT * 1000000000))
    until grep -q '^ready' "$out"; do
        kill -0 "$client" 2>/dev/null || die "the idle clients failed: $(cat "$BENCH_TMP/idle.err")"
        kill -0 "$pid" 2>/dev/null || die "$who exited with $IDLE clients opening"
        (($(now_ns) < deadline)) || die "$IDLE connections to $who not open within $IDLE_TIMEOUT s"
        sleep 0.1
    done
    # Each has been served; the server also counts them (one more: the
    # redis-cli asking).
    until clients=$(info_clients "$port" connected_clients) && ((${clients:-0} > IDLE)); do
        (($(now_ns) < deadline)) || die "$who counts ${clients:-no} clients, not $IDLE, after $IDLE_TIMEOUT s"
        sleep 0.1
    done
    after=$(rss_kib "$pid")
    threads=$(threads_of "$pid")
    exec 4>&- # end of input: the clients close and exit
    await_exit "$client" "$IDLE_TIMEOUT" || die "the idle clients did not exit"
    wait "$client" || die "the idle clients failed: $(cat "$BENCH_TMP/idle.err")"
    PER_CONN=$(calc '%.0f' "($after - $before) * 1024 / $IDLE")
    printf '  %-5s RSS %d KiB -> %d KiB with %d idle clients: %s bytes each; %d threads\n' \
        "$who" "$before" "$after" "$IDLE" "$PER_CONN" "$threads"
}

netdb_per=()
redis_per=()
machine_notes
for run in $(seq "$RUNS"); do
    echo "run $run:"
    start_node idle1 --in-memory --max-clients $((IDLE + 100))
    measure netdb "$NODE_PID" "$NODE_PORT"
    netdb_per+=("$PER_CONN")
    stop_node
    start_redis --maxclients $((IDLE + 100))
    measure redis "$REDIS_PID" "$REDIS_PORT"
    redis_per+=("$PER_CONN")
    stop_redis
done

n=$(median "${netdb_per[@]}")
r=$(median "${redis_per[@]}")
printf 'median RSS per idle client connection (%d of them): netdb %.0f bytes (%.1f KiB), redis %.0f bytes (%.1f KiB); netdb/redis %.2f\n' \
    "$IDLE" "$n" "$(calc '%.4f' "$n / 1024")" "$r" "$(calc '%.4f' "$r / 1024")" "$(calc '%.4f' "$n / $r")"
machine_notes
