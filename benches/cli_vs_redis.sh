#!/usr/bin/env bash
# Bulk writes through the CLI: a million `put key:N <100-byte value>` lines
# piped into a standalone netdb node, against the same million SETs piped
# into a fresh local Redis with `redis-cli --pipe`. Both are timed end to
# end (netdb: start, apply every line, answer each on stdout, exit at end
# of input; Redis: redis-cli connects, sends, reads every reply), side by
# side in each round, the order alternating. Prints each rate, the medians
# and the ratio netdb/redis. Target: netdb at least Redis's rate.
#
# Usage: benches/cli_vs_redis.sh   (RUNS=5 KEYS=100000 to change the defaults;
#   NETDB_BIN=path/to/netdb to measure that binary and build nothing)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source benches/lib.sh

RUNS=${RUNS:-3}
KEYS=${KEYS:-1000000}

bench_setup
build_netdb
echo "generating $KEYS puts and SETs..." >&2
gen_puts "$KEYS" plain >"$BENCH_TMP/puts.txt"
gen_sets "$KEYS" plain >"$BENCH_TMP/sets.resp"

machine_notes
echo "input: $KEYS writes, $(wc -c <"$BENCH_TMP/puts.txt") bytes of puts," \
    "$(wc -c <"$BENCH_TMP/sets.resp") bytes of RESP"

# Each run sets RATE (ops/s); they run in this shell, not in $(...), so
# that the exit trap knows every process they start.
RATE=""

# Runs netdb over the puts.
run_netdb() {
    local start end
    start=$(now_ns)
    # Port 0: the kernel picks a free one.
    "$NETDB" bench1 127.0.0.1:0 --in-memory <"$BENCH_TMP/puts.txt" >/dev/null 2>"$BENCH_TMP/netdb.log" ||
        die "netdb failed: $(cat "$BENCH_TMP/netdb.log")"
    end=$(now_ns)
    RATE=$(calc '%.0f' "$KEYS / (($end - $start) / 1e9)")
}

# Runs the SETs through redis-cli --pipe into a fresh server; its start and
# stop are not timed.
run_redis() {
    # shellcheck disable=SC2119 # no extra redis-server options
    start_redis
    timed_redis_load "$BENCH_TMP/sets.resp" "$KEYS"
    stop_redis
}

netdb_rates=()
redis_rates=()
for run in $(seq "$RUNS"); do
    if ((run % 2)); then
        run_netdb
        n=$RATE
        run_redis
        r=$RATE
    else
        run_redis
        r=$RATE
        run_netdb
        n=$RATE
    fi
    netdb_rates+=("$n")
    redis_rates+=("$r")
    printf 'run %d: netdb %9d ops/s   redis %9d ops/s   netdb/redis %.2f\n' \
        "$run" "$n" "$r" "$(calc '%.4f' "$n / $r")"
done

netdb_median=$(median "${netdb_rates[@]}")
redis_median=$(median "${redis_rates[@]}")
printf 'median: netdb %9.0f ops/s   redis %9.0f ops/s   netdb/redis %.2f\n' \
    "$netdb_median" "$redis_median" "$(calc '%.4f' "$netdb_median / $redis_median")"
machine_notes
