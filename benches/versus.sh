#!/usr/bin/env bash
# One netdb build against another, side by side in one run: to show that a
# change (a restructuring, say) leaves the benchmarks within noise of the
# commit before it. The machine is shared, so the two binaries take turns:
# in every round each measurement runs once with each binary, back to
# back, and which goes first swaps every round, so load from elsewhere on
# the machine hits both alike. Measurements, as the single-binary scripts
# take them:
#
#   bulk load   KEYS `put key:N <100-byte value>` lines on stdin of a
#               standalone `--in-memory` node, timed from start to exit
#               (cli_vs_redis.sh): writes/s
#   memory      RSS per key with KEYS keys (key:000000 ..., 100-byte
#               values) less that of the empty node (memory.sh): bytes/key
#   SET, GET    redis-benchmark -d 100 against a fresh `--in-memory` node,
#               1 client, 50 clients, 50 clients -P 16 (redis_benchmark.sh,
#               its in-memory table): req/s
#
# Prints every round, then a table: the old and new medians, new/old, and
# each side's range over the rounds (a ratio inside the ranges' overlap is
# noise). Higher is better but for memory. With CRITERION=1 it then runs
# `cargo bench --bench store` in OLD_SRC (saving criterion's baseline
# `old`) and in NEW_SRC (against that baseline), one after the other, not
# alternated; both share one CARGO_TARGET_DIR, so criterion compares them,
# and the script prints criterion's change lines. Each tree builds its own
# benches/store.rs against its own library; the benchmark names must match.
# Neither tree is written to (cargo runs --locked, output goes to the
# target directory).
#
# Usage: bash benches/versus.sh OLD_BIN NEW_BIN   (paths to netdb release
#   binaries; copy a binary out of target/ first, so that a build during
#   the run cannot change it)
#   RUNS=3                    rounds
#   KEYS=1000000              keys for the bulk load and memory (at most 1M)
#   N_ONE=10000 N_MANY=50000 N_PIPE=200000
#                             redis-benchmark requests in its three rows
#                             (half redis_benchmark.sh's: on a loaded
#                             machine one client can fall to ~1k req/s)
#   RUN_TIMEOUT=120           seconds one load, memory or redis-benchmark
#                             run may take
#   CRITERION=1 OLD_SRC=dir NEW_SRC=dir [CARGO_TARGET_DIR=dir]
#                             also the criterion comparison (without
#                             CARGO_TARGET_DIR, a temporary one: two full
#                             builds)
#   CRITERION_TIMEOUT=40m     the longest one tree's cargo bench may take
# About 2 minutes with the defaults on 2 busy cores; with CRITERION=1,
# add two release builds and about 3 minutes of criterion per tree.
set -euo pipefail

usage() {
    sed -n '/^# Usage:/,/^# About/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}
(($# == 2)) || usage
# Absolute paths: the script runs from the repository root.
OLD_BIN=$(realpath -e -- "$1") || usage
NEW_BIN=$(realpath -e -- "$2") || usage

cd "$(dirname "${BASH_SOURCE[0]}")/.."
source benches/lib.sh

RUNS=${RUNS:-3}
KEYS=${KEYS:-1000000}
N_ONE=${N_ONE:-10000}
N_MANY=${N_MANY:-50000}
N_PIPE=${N_PIPE:-200000}
RUN_TIMEOUT=${RUN_TIMEOUT:-120}
CRITERION=${CRITERION:-0}
CRITERION_TIMEOUT=${CRITERION_TIMEOUT:-40m}
[[ "$RUN_TIMEOUT" =~ ^[0-9]+$ ]] || die "RUN_TIMEOUT is a number of seconds"
((KEYS >= 1 && KEYS <= 1000000)) || die "KEYS is from 1 to 1000000 (memory's keys have six digits)"
LAST_KEY=$(printf 'key:%06d' $((KEYS - 1)))

for bin in "$OLD_BIN" "$NEW_BIN"; do
    [[ -x "$bin" && ! -d "$bin" ]] || die "$bin is not an executable file"
done
if [[ "$CRITERION" == 1 ]]; then
    for src in "${OLD_SRC:-}" "${NEW_SRC:-}"; do
        [[ -f "$src/Cargo.toml" ]] || die "CRITERION=1 needs OLD_SRC and NEW_SRC, two netdb source trees"
    done
fi

# The redis-benchmark rows: a label, redis-benchmark's options, requests.
ROW_LABELS=("1 client" "50 clients" "50 clients -P 16")
ROW_OPTS=("-c 1" "-c 50" "-c 50 -P 16")
ROW_N=("$N_ONE" "$N_MANY" "$N_PIPE")

command -v redis-benchmark >/dev/null || die "redis-benchmark is not installed"
bench_setup
echo "generating $KEYS puts, twice..." >&2
gen_puts "$KEYS" plain >"$BENCH_TMP/load.txt"
gen_puts "$KEYS" padded >"$BENCH_TMP/memory.txt"

machine_notes
echo "old: $OLD_BIN ($(stat -c '%y' "$OLD_BIN" | cut -d. -f1))"
echo "new: $NEW_BIN ($(stat -c '%y' "$NEW_BIN" | cut -d. -f1))"
echo "RUNS=$RUNS KEYS=$KEYS N_ONE=$N_ONE N_MANY=$N_MANY N_PIPE=$N_PIPE"

# Every result is a line "measurement<TAB>old|new<TAB>value" in this file;
# MEASUREMENTS keeps the table's order.
RESULTS=$BENCH_TMP/results
: >"$RESULTS"
MEASUREMENTS=("bulk load, writes/s" "memory, bytes/key")
for row in "${!ROW_LABELS[@]}"; do
    MEASUREMENTS+=("SET ${ROW_LABELS[$row]}, req/s" "GET ${ROW_LABELS[$row]}, req/s")
done

# Records one result and prints it.
record() {
    local measurement=$1 who=$2 value=$3
    printf '%s\t%s\t%s\n' "$measurement" "$who" "$value" >>"$RESULTS"
    printf '  %-3s %-28s %12s\n' "$who" "$measurement" "$value"
}

# The values of one measurement for one side, one a line.
values_of() {
    awk -F'\t' -v m="$1" -v w="$2" '$1 == m && $2 == w { print $3 }' "$RESULTS"
}

# (a) The bulk load, as cli_vs_redis.sh's: pipes the puts into a node that
# exits at the end of its input; sets RATE.
RATE=""
bulk_load() {
    local start end
    start=$(now_ns)
    # Port 0: the kernel picks a free one.
    timeout -k 5 "$RUN_TIMEOUT" "$NETDB" bench1 127.0.0.1:0 --in-memory \
        <"$BENCH_TMP/load.txt" >/dev/null 2>"$BENCH_TMP/netdb.log" ||
        die "$NETDB failed or ran over $RUN_TIMEOUT s: $(tail -n 5 "$BENCH_TMP/netdb.log")"
    end=$(now_ns)
    RATE=$(calc '%.0f' "$KEYS / (($end - $start) / 1e9)")
}

# (b) Memory per key, as memory.sh measures it (see lib.sh); sets
# PER_KEY.
memory_per_key() {
    MEMORY_TIMEOUT=$RUN_TIMEOUT netdb_memory_per_key "$BENCH_TMP/memory.txt" "$KEYS" "$LAST_KEY"
}

# (c) redis-benchmark's three rows against a fresh in-memory node, as
# redis_benchmark.sh's; records each row's SET and GET req/s for `who`.
redis_rows() {
    local who=$1 row csv value cmd
    start_node bench1 --in-memory
    for row in "${!ROW_OPTS[@]}"; do
        # shellcheck disable=SC2086 # the row's options are words on purpose
        csv=$(timeout -k 5 "$RUN_TIMEOUT" redis-benchmark -h 127.0.0.1 -p "$NODE_PORT" -t set,get \
            -d 100 -n "${ROW_N[$row]}" ${ROW_OPTS[$row]} --csv 2>"$BENCH_TMP/benchmark.err") ||
            die "redis-benchmark against $NETDB failed or ran over $RUN_TIMEOUT s: $(cat "$BENCH_TMP/benchmark.err")"
        # "test","rps",...: one line per command after the header.
        for cmd in SET GET; do
            value=$(awk -F, -v c="\"$cmd\"" '$1 == c { gsub(/"/, "", $2); print $2 }' <<<"$csv")
            [[ -n "$value" ]] || die "redis-benchmark printed no $cmd result: $csv"
            record "$cmd ${ROW_LABELS[$row]}, req/s" "$who" "$(calc '%.0f' "$value")"
        done
    done
    # The GETs found the value, and no SET was refused unseen.
    value=$(timeout 5 redis-cli -p "$NODE_PORT" get key:__rand_int__) || die "$NETDB: no answer to GET"
    [[ ${#value} -eq 100 ]] || die "$NETDB: GET key:__rand_int__ gave '${value:0:40}...', not 100 bytes"
    stop_node || die "$NETDB did not stop cleanly"
}

# Runs measurement `what` (load, memory or redis) with one binary.
measure() {
    local what=$1 who=$2
    if [[ $who == old ]]; then NETDB=$OLD_BIN; else NETDB=$NEW_BIN; fi
    case "$what" in
        load)
            bulk_load
            record "bulk load, writes/s" "$who" "$RATE"
            ;;
        memory)
            memory_per_key
            record "memory, bytes/key" "$who" "$PER_KEY"
            ;;
        redis) redis_rows "$who" ;;
    esac
}

for run in $(seq "$RUNS"); do
    if ((run % 2)); then order=(old new); else order=(new old); fi
    echo "round $run/$RUNS, ${order[0]} first:"
    for what in load memory redis; do
        for who in "${order[@]}"; do
            measure "$what" "$who"
        done
    done
done

echo
echo "old: $OLD_BIN"
echo "new: $NEW_BIN"
echo "medians of $RUNS rounds, alternating; range = lowest..highest round"
printf '%-28s %12s %12s %8s %25s %25s\n' measurement "old median" "new median" new/old "old range" "new range"
for measurement in "${MEASUREMENTS[@]}"; do
    mapfile -t old < <(values_of "$measurement" old)
    mapfile -t new < <(values_of "$measurement" new)
    o=$(median "${old[@]}")
    n=$(median "${new[@]}")
    if [[ $measurement == memory* ]]; then format=%12.1f; else format=%12.0f; fi
    printf "%-28s $format $format %8.3f %25s %25s\n" "$measurement" "$o" "$n" "$(calc '%.4f' "$n / $o")" \
        "$(printf '%s\n' "${old[@]}" | sort -g | sed -n '1p;$p' | paste -sd' ' | sed 's/ /../')" \
        "$(printf '%s\n' "${new[@]}" | sort -g | sed -n '1p;$p' | paste -sd' ' | sed 's/ /../')"
done
machine_notes

[[ "$CRITERION" == 1 ]] || exit 0

# Criterion: `cargo bench --bench store` in one tree, its output (the
# bench binary's) in the file `into` and on stderr as it runs.
criterion_bench() {
    local src=$1 into=$2
    shift 2
    echo >&2
    echo "cargo bench --bench store in $src ($(git -C "$src" describe --always --dirty 2>/dev/null || echo 'not a git tree'))" \
        "-- $*" >&2
    (cd "$src" && timeout -k 10s "$CRITERION_TIMEOUT" cargo bench --locked --bench store -- "$@") |
        tee "$into" >&2 ||
        die "cargo bench --bench store in $src failed or ran over $CRITERION_TIMEOUT (see above)"
}

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$BENCH_TMP/target}
echo
echo "criterion: target directory $CARGO_TARGET_DIR"
criterion_bench "$OLD_SRC" "$BENCH_TMP/criterion.old" --save-baseline old
criterion_bench "$NEW_SRC" "$BENCH_TMP/criterion.new" --baseline old
echo
echo "criterion, $NEW_SRC against $OLD_SRC (baseline old), run one after the other:"
# A benchmark's name starts its line (its "time:" on the same line or the
# next); a comparison follows "change:". A benchmark without one had no
# baseline: OLD_SRC has no benchmark of that name.
awk '
    /^(Benchmarking|Found|Warning|WARNING|Gnuplot|Running)/ { next }
    /^[^ ]/ { name = $1; if (!(name in seen)) { seen[name] = 1; order[++n] = name } next }
    /^ +change:/ { in_change = 1; next }
    in_change && /time:/ { sub(/^ +/, ""); printf("%-24s %s\n", name, $0); compared[name] = 1; next }
    in_change && /(No change|within noise|improved|regressed)/ {
        sub(/^ +/, ""); printf("%-24s %s\n", "", $0); in_change = 0
    }
    END {
        for (i = 1; i <= n; i++)
            if (!(order[i] in compared)) printf("%-24s no baseline: not in OLD_SRC?\n", order[i])
    }' "$BENCH_TMP/criterion.new"
machine_notes
