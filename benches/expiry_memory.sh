#!/usr/bin/env bash
# Resident memory per key with and without an expiry, in a netdb node and
# in Redis, side by side: KEYS keys (10-byte keys key:000000 ..., 100-byte
# values) loaded over the Redis protocol with `redis-cli --pipe`, once as
# plain SETs and once as `SET ... EX 86400` (an expiry that does not pass
# during the run).
#
# netdb: its RSS (VmRSS) before and after the load; Redis: used_memory and
# used_memory_rss before and after. Each row runs RUNS times against each
# server, the two alternating, and prints the medians and the ratios.
#
# Usage: bash benches/expiry_memory.sh   (RUNS=3 KEYS=1000000;
#   NETDB_BIN=path/to/netdb to measure that binary and build nothing)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source benches/lib.sh

RUNS=${RUNS:-3}
KEYS=${KEYS:-1000000}
((KEYS <= 1000000)) || die "KEYS is at most 1000000 (keys have six digits)"

need_tools redis-cli redis-server
bench_setup
build_netdb
echo "generating $KEYS SETs, plain and with EX..." >&2
gen_sets "$KEYS" padded >"$BENCH_TMP/plain.resp"
gen_sets "$KEYS" padded same 86400 >"$BENCH_TMP/ttl.resp"
machine_notes

# netdb's bytes per key for one load file; sets PER_KEY.
PER_KEY=""
run_netdb() {
    local file=$1 before after keys
    start_node mem1 --in-memory
    before=$(rss_kib "$NODE_PID")
    REDIS_PORT=$NODE_PORT redis_pipe "$file" "$KEYS"
    keys=$(redis-cli -p "$NODE_PORT" dbsize)
    [[ "$keys" == "$KEYS" ]] || die "netdb holds $keys keys, expected $KEYS"
    after=$(rss_kib "$NODE_PID")
    stop_node
    PER_KEY=$(calc '%.1f' "($after - $before) * 1024 / $KEYS")
}

run_redis() {
    redis_memory_per_key "$1" "$KEYS"
}

for mode in plain ttl; do
    netdb_rows=()
    used_rows=()
    rss_rows=()
    for run in $(seq "$RUNS"); do
        if ((run % 2)); then
            run_netdb "$BENCH_TMP/$mode.resp"
            run_redis "$BENCH_TMP/$mode.resp"
        else
            run_redis "$BENCH_TMP/$mode.resp"
            run_netdb "$BENCH_TMP/$mode.resp"
        fi
        printf '  %s run %d: netdb %s bytes/key RSS; redis %s used, %s RSS\n' \
            "$mode" "$run" "$PER_KEY" "$USED_PER_KEY" "$RSS_PER_KEY"
        netdb_rows+=("$PER_KEY")
        used_rows+=("$USED_PER_KEY")
        rss_rows+=("$RSS_PER_KEY")
    done
    n=$(median "${netdb_rows[@]}")
    u=$(median "${used_rows[@]}")
    r=$(median "${rss_rows[@]}")
    printf '%s: median bytes/key: netdb RSS %.1f   redis used_memory %.1f   redis RSS %.1f   ratio netdb/redis RSS %.2f\n' \
        "$mode" "$n" "$u" "$r" "$(calc '%.4f' "$n / $r")"
done
machine_notes
