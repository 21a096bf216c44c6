#!/usr/bin/env bash
# Resident memory per key: a million keys (10-byte keys key:000000 ..
# key:999999, 100-byte values) in a netdb node and in Redis.
#
# netdb: a standalone node reads its stdin from a FIFO. Its RSS (VmRSS in
# /proc/PID/status) is read once it has answered a `get` while empty, and
# again after the million puts and a `get` of the last key have been
# answered (replies come in input order, so that answer means every put
# was applied); the difference over the key count is its cost per key.
# Redis: `INFO memory` (used_memory, what its allocator handed out, and
# used_memory_rss) of a fresh server before and after loading the same
# keys with redis-cli --pipe. Prints both, the medians of RUNS runs and the
# ratios. Target: netdb at most 1.5x Redis.
#
# Usage: benches/memory.sh   (RUNS=1 KEYS=100000 to change the defaults;
#   NETDB_BIN=path/to/netdb to measure that binary and build nothing)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source benches/lib.sh

RUNS=${RUNS:-3}
KEYS=${KEYS:-1000000}
((KEYS <= 1000000)) || die "KEYS is at most 1000000 (keys have six digits)"
LAST_KEY=$(printf 'key:%06d' $((KEYS - 1)))

bench_setup
build_netdb
echo "generating $KEYS puts and SETs..." >&2
gen_puts "$KEYS" padded >"$BENCH_TMP/puts.txt"
gen_sets "$KEYS" padded >"$BENCH_TMP/sets.resp"
machine_notes

# Measures one netdb node; sets PER_KEY (bytes) and prints its numbers.
run_netdb() {
    netdb_memory_per_key "$BENCH_TMP/puts.txt" "$KEYS" "$LAST_KEY"
    printf '  netdb: RSS %d KiB empty, %d KiB with %d keys: %s bytes/key\n' \
        "$MEMORY_EMPTY_KIB" "$MEMORY_FULL_KIB" "$KEYS" "$PER_KEY"
}

# Measures one fresh Redis; sets USED_PER_KEY and RSS_PER_KEY (bytes).
run_redis() {
    redis_memory_per_key "$BENCH_TMP/sets.resp" "$KEYS"
    printf '  redis: %s bytes/key used, %s bytes/key RSS\n' "$USED_PER_KEY" "$RSS_PER_KEY"
}

netdb_per_key=()
redis_used=()
redis_rss=()
for run in $(seq "$RUNS"); do
    echo "run $run:"
    run_netdb
    netdb_per_key+=("$PER_KEY")
    run_redis
    redis_used+=("$USED_PER_KEY")
    redis_rss+=("$RSS_PER_KEY")
done

n=$(median "${netdb_per_key[@]}")
u=$(median "${redis_used[@]}")
r=$(median "${redis_rss[@]}")
printf 'median bytes/key: netdb RSS %.1f   redis used_memory %.1f   redis RSS %.1f\n' "$n" "$u" "$r"
printf 'ratio: netdb RSS / redis RSS %.2f   netdb RSS / redis used_memory %.2f\n' \
    "$(calc '%.4f' "$n / $r")" "$(calc '%.4f' "$n / $u")"
machine_notes
