#!/usr/bin/env bash
# Durability side by side with Redis's append-only file, on one machine in
# one run. Five measurements, each RUNS times with netdb and Redis taking
# turns at going first; every run is printed, then a table of medians and
# ratios. Keys are 10 bytes (key:000000 ...), values 100 bytes that do not
# compress (see value_awk in lib.sh; Redis's RDB compresses repeated bytes).
#
# 1. Bulk writes through the CLI: N `put` lines piped into
#    `netdb --data-dir DIR --fsync P` for P = always, everysec, no, and into
#    `netdb --in-memory`, timed end to end (start, every reply, the final
#    fsync, exit). Redis: the same N SETs through `redis-cli --pipe` into a
#    running redis-server with `--appendonly yes --appendfsync P`, and with
#    no persistence (its start and stop are not timed). Target: everysec
#    costs netdb under 10% of its in-memory rate; also shown by netdb's CPU
#    seconds, which a busy machine disturbs less.
# 2. Concurrent writers over RESP: `redis-benchmark -t set -c 50 -d 100
#    -r N` against a netdb node (--fsync P, and --in-memory) and against
#    Redis (AOF with appendfsync P, and no persistence). Target: netdb
#    always at least 0.67 of Redis always.
# 3. The peer path: benches/peer_load.rs connects as a peer and runs sync
#    rounds back to back for PEER_SECS, each a Push of BATCH new writes
#    with the pusher's version vector, answered by an Ack: what a pusher
#    sends when BATCH writes happened since its last round. The node
#    merges, logs and acknowledges each round as a real one (an apply and
#    a vector join, each logged, and fsynced with always). BATCH = 1000 (a
#    busy peer) and 10 (a trickle, where every round pays its fsyncs); each
#    fsync policy and --in-memory. Redis has no such path: no Redis column.
# 4. Recovery of N keys. netdb: every key written 4 times through the CLI
#    with compaction held off, so the logs hold 4x the live data; started
#    again (no CLI, no minimum compaction size) it compacts into a
#    snapshot; then N/10 more writes (overwrites, over RESP) go into its new
#    log, SIGTERM stops it, and the time from starting it once more until
#    DBSIZE answers N is measured. Redis (AOF everysec): the same N SETs,
#    BGREWRITEAOF (an RDB-preamble base, Redis's default), the same N/10
#    more writes, SIGTERM, and the time from starting it until DBSIZE
#    answers N (it answers -LOADING before), and the CPU seconds each had
#    used by then. Target: netdb at most Redis.
# 5. Disk space right after compaction: every file of netdb's data
#    directory once the snapshot is done (before the N/10 more writes), and
#    Redis's appendonlydir after the rewrite, against the live data,
#    N x 110 bytes. Target: netdb at most 1.5x the live data.
#
# Usage: bash benches/durability.sh
#   N=100000 RUNS=1 to run small (N from 1000 to 1000000, the default;
#   RUNS 3; PEER_SECS 2 per peer-path measurement; BENCH_REQUESTS N/10 per
#   redis-benchmark run). About 6 minutes at full size on 2 cores. Needs
#   redis-server, redis-cli and redis-benchmark. NETDB_BIN=path/to/netdb
#   measures that binary instead of building one (benches/peer_load.rs is
#   still built from this tree).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source benches/lib.sh

RUNS=${RUNS:-3}
N=${N:-1000000}
((N >= 1000 && N <= 1000000)) || die "N is between 1000 and 1000000 (keys have six digits)"
BENCH_REQUESTS=${BENCH_REQUESTS:-$((N / 10))}
PEER_SECS=${PEER_SECS:-2}
MORE=$((N / 10))
LIVE_BYTES=$((N * 110))
POLICIES=(always everysec no mem)

bench_setup
command -v redis-benchmark >/dev/null || die "redis-benchmark is not installed"
build_netdb

# Builds benches/peer_load.rs; sets PEER_LOAD to its binary.
build_peer_load() {
    local json
    echo "building benches/peer_load.rs..." >&2
    json=$(cargo bench --quiet --no-run --bench peer_load --message-format=json) ||
        die "cannot build benches/peer_load.rs (see cargo bench --no-run --bench peer_load)"
    PEER_LOAD=$(sed -n 's/.*"executable":"\([^"]*peer_load[^"]*\)".*/\1/p' <<<"$json" | tail -n 1)
    [[ -x "$PEER_LOAD" ]] || die "no peer_load binary in cargo's output"
}
build_peer_load

echo "generating $N puts and SETs, $MORE more SETs..." >&2
gen_puts "$N" padded varied >"$BENCH_TMP/puts.txt"
gen_sets "$N" padded varied >"$BENCH_TMP/sets.resp"
gen_sets "$MORE" padded varied >"$BENCH_TMP/more.resp"
machine_notes
echo "N=$N RUNS=$RUNS BENCH_REQUESTS=$BENCH_REQUESTS PEER_SECS=$PEER_SECS"

# Results: RESULTS[name] holds one number per run.
declare -A RESULTS
record() {
    RESULTS[$1]="${RESULTS[$1]:-} $2"
}
med() {
    # shellcheck disable=SC2086 # one word per run
    median ${RESULTS[$1]}
}

# A rate from a count and two now_ns readings.
rate() {
    calc '%.0f' "$1 / (($3 - $2) / 1e9)"
}

# Bytes in the files under a directory.
dir_bytes() {
    find "$1" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }'
}

# The options of each configuration, into NETDB_OPTS / REDIS_OPTS.
netdb_opts() {
    case $1 in
        mem) NETDB_OPTS=(--in-memory) ;;
        *) NETDB_OPTS=(--data-dir "$BENCH_TMP/netdb-data" --fsync "$1") ;;
    esac
}
redis_opts() {
    case $1 in
        mem) REDIS_OPTS=(--appendonly no --dir "$BENCH_TMP/redis-data") ;;
        *) REDIS_OPTS=(--appendonly yes --appendfsync "$1" --dir "$BENCH_TMP/redis-data") ;;
    esac
}
fresh_dirs() {
    rm -rf "$BENCH_TMP/netdb-data" "$BENCH_TMP/redis-data"
    mkdir -p "$BENCH_TMP/redis-data"
}


# Sends a file of SETs with redis-cli --pipe to PORT, checking every reply.
pipe_to() {
    local port=$1 file=$2 expected=$3 report
    report=$(redis-cli -p "$port" --pipe <"$file")
    grep -q "errors: 0, replies: $expected" <<<"$report" || die "redis-cli --pipe to $port: $report"
}

# Waits (at most 300 s) until DBSIZE on PORT answers `want`, while PID lives.
await_dbsize() {
    local port=$1 want=$2 pid=$3 deadline=$((SECONDS + 300))
    until [[ "$(timeout 10 redis-cli -p "$port" dbsize 2>/dev/null)" == "$want" ]]; do
        kill -0 "$pid" 2>/dev/null || die "the server on port $port exited while loading"
        ((SECONDS < deadline)) || die "no DBSIZE $want from port $port within 300 s"
        sleep 0.01
    done
}

RATE=""

# --- 1. Bulk writes through the CLI ------------------------------------

# Also sets CPU: the node's user + system seconds, which other work on the
# machine disturbs far less than its elapsed time.
CPU=""
cli_netdb() {
    local start end stored TIMEFORMAT='%3U %3S'
    netdb_opts "$1"
    fresh_dirs
    start=$(now_ns)
    {
        time "$NETDB" cli1 127.0.0.1:0 "${NETDB_OPTS[@]}" <"$BENCH_TMP/puts.txt" \
            >"$BENCH_TMP/cli.out" 2>"$BENCH_TMP/cli.log" || die "netdb failed: $(cat "$BENCH_TMP/cli.log")"
    } 2>"$BENCH_TMP/cli.cpu"
    end=$(now_ns)
    CPU=$(awk '{ print $1 + $2 }' "$BENCH_TMP/cli.cpu")
    stored=$(grep -c '^Value stored\.$' "$BENCH_TMP/cli.out" || true)
    ((stored == N)) || die "netdb stored $stored of $N keys: $(grep -v '^Value stored' "$BENCH_TMP/cli.out" | head -n 3)"
    RATE=$(rate "$N" "$start" "$end")
}

cli_redis() {
    redis_opts "$1"
    fresh_dirs
    start_redis "${REDIS_OPTS[@]}"
    timed_redis_load "$BENCH_TMP/sets.resp" "$N"
    stop_redis
}

echo
echo "1. CLI bulk writes ($N puts / SETs), writes/s"
for run in $(seq "$RUNS"); do
    for p in "${POLICIES[@]}"; do
        if (((run + ${#p}) % 2)); then
            cli_netdb "$p"
            n=$RATE
            cli_redis "$p"
            r=$RATE
        else
            cli_redis "$p"
            r=$RATE
            cli_netdb "$p"
            n=$RATE
        fi
        record "cli.netdb.$p" "$n"
        record "cli.redis.$p" "$r"
        record "cli.cpu.$p" "$CPU"
        printf '  run %d %-8s netdb %8d   redis %8d   netdb/redis %.2f   netdb CPU %5.2f s\n' \
            "$run" "$p" "$n" "$r" "$(calc '%.4f' "$n / $r")" "$CPU"
    done
done

# --- 2. Concurrent writers over RESP --------------------------------------

# redis-benchmark's SET rate against PORT.
benchmark_set() {
    redis-benchmark -h 127.0.0.1 -p "$1" -t set -c 50 -d 100 -r "$N" -n "$BENCH_REQUESTS" --csv |
        awk -F'"' '$2 == "SET" { print $4 }'
}

resp_netdb() {
    netdb_opts "$1"
    fresh_dirs
    start_node resp1 "${NETDB_OPTS[@]}"
    RATE=$(benchmark_set "$NODE_PORT")
    stop_node || die "netdb did not stop cleanly"
}

resp_redis() {
    redis_opts "$1"
    fresh_dirs
    start_redis "${REDIS_OPTS[@]}"
    RATE=$(benchmark_set "$REDIS_PORT")
    stop_redis
}

echo
echo "2. redis-benchmark -t set -c 50 -d 100 -r $N -n $BENCH_REQUESTS, SETs/s"
for run in $(seq "$RUNS"); do
    for p in "${POLICIES[@]}"; do
        if (((run + ${#p}) % 2)); then
            resp_netdb "$p"
            n=$RATE
            resp_redis "$p"
            r=$RATE
        else
            resp_redis "$p"
            r=$RATE
            resp_netdb "$p"
            n=$RATE
        fi
        [[ -n "$n" && -n "$r" ]] || die "redis-benchmark printed no SET rate"
        record "resp.netdb.$p" "$n"
        record "resp.redis.$p" "$r"
        printf '  run %d %-8s netdb %8.0f   redis %8.0f   netdb/redis %.2f\n' \
            "$run" "$p" "$n" "$r" "$(calc '%.4f' "$n / $r")"
    done
done

# --- 3. The peer path ------------------------------------------------------

peer_netdb() {
    local out
    netdb_opts "$1"
    fresh_dirs
    start_node peer1 "${NETDB_OPTS[@]}"
    out=$("$PEER_LOAD" "127.0.0.1:$NODE_PORT" "$2" "$PEER_SECS") || die "peer_load failed"
    stop_node || die "netdb did not stop cleanly"
    RATE=${out%% *}
}

echo
echo "3. peer path: rounds of BATCH writes pushed for $PEER_SECS s, writes/s"
for run in $(seq "$RUNS"); do
    for batch in 1000 10; do
        line=""
        for p in "${POLICIES[@]}"; do
            peer_netdb "$p" "$batch"
            record "peer.$batch.$p" "$RATE"
            line+=$(printf '  %s %8d' "$p" "$RATE")
        done
        printf '  run %d batch %4d:%s\n' "$run" "$batch" "$line"
    done
done

# --- 4 and 5. Recovery, and disk space after compaction --------------------

SIZE=""
SECS=""

# User + system seconds a running process has used so far.
cpu_seconds() {
    awk -v hz="$(getconf CLK_TCK)" '{ printf("%.2f\n", ($14 + $15) / hz) }' "/proc/$1/stat"
}

recovery_netdb() {
    local dir=$BENCH_TMP/netdb-data start end
    fresh_dirs
    # Every key four times with compaction held off: the logs reach 4x the
    # live data, the factor at which a node compacts.
    cat "$BENCH_TMP/puts.txt" "$BENCH_TMP/puts.txt" "$BENCH_TMP/puts.txt" "$BENCH_TMP/puts.txt" |
        "$NETDB" rec1 127.0.0.1:0 --data-dir "$dir" --compact-min-bytes $((1 << 40)) \
            >/dev/null 2>"$BENCH_TMP/cli.log" || die "netdb failed: $(cat "$BENCH_TMP/cli.log")"
    # Restarted with no minimum size, it compacts at its first tick.
    start_node rec1 --data-dir "$dir" --compact-min-bytes 1
    local deadline=$((SECONDS + 300))
    until grep -q 'compaction done' "$NODE_LOG"; do
        if grep -q 'compaction failed\|compaction not started' "$NODE_LOG"; then
            die "netdb: $(grep compaction "$NODE_LOG")"
        fi
        ((SECONDS < deadline)) || die "netdb did not compact within 300 s: $(cat "$NODE_LOG")"
        sleep 0.05
    done
    SIZE=$(dir_bytes "$dir")
    pipe_to "$NODE_PORT" "$BENCH_TMP/more.resp" "$MORE"
    stop_node || die "netdb did not stop cleanly"
    # The timed restart, on a fresh port.
    NODE_PORT=$(free_port)
    start=$(now_ns)
    "$NETDB" rec1 "127.0.0.1:$NODE_PORT" --no-cli --data-dir "$dir" 2>"$NODE_LOG" &
    NODE_PID=$!
    BENCH_PIDS+=("$NODE_PID")
    await_dbsize "$NODE_PORT" "$N" "$NODE_PID"
    end=$(now_ns)
    CPU=$(cpu_seconds "$NODE_PID")
    RECOVERED=$(grep -o 'entries loaded.*' "$NODE_LOG" | head -n 1)
    stop_node || die "netdb did not stop cleanly"
    SECS=$(calc '%.3f' "($end - $start) / 1e9")
}

# A field of INFO persistence.
redis_persistence() {
    redis-cli -p "$REDIS_PORT" info persistence | tr -d '\r' | awk -F: -v f="$1" '$1 == f { print $2 }'
}

recovery_redis() {
    local dir=$BENCH_TMP/redis-data start end deadline=$((SECONDS + 300)) aof
    fresh_dirs
    start_redis --appendonly yes --appendfsync everysec --dir "$dir"
    redis_pipe "$BENCH_TMP/sets.resp" "$N"
    redis-cli -p "$REDIS_PORT" bgrewriteaof >/dev/null
    aof=$dir/appendonlydir
    # Done when no rewrite runs or waits, and the files it replaced are gone.
    until [[ "$(redis_persistence aof_rewrite_in_progress)$(redis_persistence aof_rewrite_scheduled)" == 00 &&
        $(find "$aof" -name '*.incr.aof' | wc -l) == 1 && $(find "$aof" -name '*.base.*' | wc -l) == 1 ]]; do
        ((SECONDS < deadline)) || die "redis did not rewrite its AOF within 300 s"
        sleep 0.05
    done
    [[ "$(redis_persistence aof_last_bgrewrite_status)" == ok ]] || die "redis AOF rewrite failed"
    SIZE=$(dir_bytes "$aof")
    redis_pipe "$BENCH_TMP/more.resp" "$MORE"
    stop_redis
    start=$(now_ns)
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly yes --appendfsync everysec \
        --daemonize no --dir "$dir" --logfile "$BENCH_TMP/redis.log" &
    REDIS_PID=$!
    BENCH_PIDS+=("$REDIS_PID")
    await_dbsize "$REDIS_PORT" "$N" "$REDIS_PID"
    end=$(now_ns)
    CPU=$(cpu_seconds "$REDIS_PID")
    stop_redis
    SECS=$(calc '%.3f' "($end - $start) / 1e9")
}

echo
echo "4/5. recovery of $N keys (snapshot/rewrite + $MORE more writes), s; disk bytes after compaction"
RECOVERED=""
for run in $(seq "$RUNS"); do
    if ((run % 2)); then
        recovery_netdb
        ns=$SECS nb=$SIZE nc=$CPU
        recovery_redis
        rs=$SECS rb=$SIZE rc=$CPU
    else
        recovery_redis
        rs=$SECS rb=$SIZE rc=$CPU
        recovery_netdb
        ns=$SECS nb=$SIZE nc=$CPU
    fi
    record rec.netdb "$ns"
    record rec.redis "$rs"
    record rec.cpu.netdb "$nc"
    record rec.cpu.redis "$rc"
    record disk.netdb "$nb"
    record disk.redis "$rb"
    printf '  run %d recovery netdb %6.3f s (CPU %5.2f s)   redis %6.3f s (CPU %5.2f s)   disk netdb %d   redis %d bytes\n' \
        "$run" "$ns" "$nc" "$rs" "$rc" "$nb" "$rb"
done
echo "  netdb's last restart: $RECOVERED"

# --- The table ---------------------------------------------------------------

# row LABEL NETDB REDIS TARGET_TEXT [RATIO]: medians and netdb/redis.
row() {
    local ratio=${5:-}
    if [[ -z "$ratio" && "$3" != - ]] && awk -v d="$3" 'BEGIN { exit !(d != 0) }'; then
        ratio=$(calc '%.2f' "$2 / $3")
    fi
    printf '%-44s %12s %12s %11s   %s\n' "$1" "$2" "$3" "${ratio:--}" "$4"
}
# verdict RATIO OP LIMIT: "met" or "MISSED".
verdict() {
    awk -v r="$1" -v l="$3" -v op="$2" 'BEGIN {
        ok = (op == ">=") ? (r >= l) : (r <= l)
        print (ok ? "met" : "MISSED")
    }'
}

echo
echo "== medians of $RUNS runs; N=$N; $(machine_notes)"
printf '%-44s %12s %12s %11s   %s\n' measurement netdb redis ratio target
# The row label of a configuration (`short`: netdb only).
label() {
    if [[ $1 != mem ]]; then
        echo "fsync $1"
    elif [[ ${2:-} == short ]]; then
        echo "in-memory"
    else
        echo "in-memory / no persistence"
    fi
}
for p in "${POLICIES[@]}"; do
    row "1. CLI writes/s, $(label "$p")" "$(med "cli.netdb.$p")" "$(med "cli.redis.$p")" ""
done
mem=$(med cli.netdb.mem)
for p in always everysec no; do
    share=$(calc '%.2f' "$(med "cli.netdb.$p") / $mem")
    cost=$(calc '%.1f' "(1 - $share) * 100")
    target=""
    [[ $p == everysec ]] && target="cost < 10%: $(verdict "$cost" '<=' 10)"
    row "   netdb $p / netdb in-memory" "$share" - "$target" "cost $cost%"
done
mem=$(med cli.cpu.mem)
for p in always everysec no; do
    share=$(calc '%.2f' "$mem / $(med "cli.cpu.$p")")
    cost=$(calc '%.1f' "(1 - $share) * 100")
    target="CPU $(med "cli.cpu.$p") s vs $mem s"
    [[ $p == everysec ]] && target+=", cost < 10%: $(verdict "$cost" '<=' 10)"
    row "   the same by netdb's CPU seconds, $p" "$share" - "$target" "cost $cost%"
done
for p in "${POLICIES[@]}"; do
    n=$(med "resp.netdb.$p")
    r=$(med "resp.redis.$p")
    ratio=$(calc '%.2f' "$n / $r")
    target=""
    [[ $p == always ]] && target=">= 0.67: $(verdict "$ratio" '>=' 0.67)"
    row "2. RESP SETs/s, $(label "$p")" "$n" "$r" "$target" "$ratio"
done
for p in always everysec no; do
    share=$(calc '%.2f' "$(med "resp.netdb.$p") / $(med resp.netdb.mem)")
    row "   netdb $p / netdb in-memory" "$share" - "" "cost $(calc '%.1f' "(1 - $share) * 100")%"
done
for batch in 1000 10; do
    for p in "${POLICIES[@]}"; do
        share=$(calc '%.2f' "$(med "peer.$batch.$p") / $(med "peer.$batch.mem")")
        row "3. peer writes/s, batch $batch, $(label "$p" short)" "$(med "peer.$batch.$p")" - "$share of in-memory"
    done
done
n=$(med rec.netdb)
r=$(med rec.redis)
ratio=$(calc '%.2f' "$n / $r")
row "4. recovery of $N keys, s" "$n" "$r" "<= 1.00: $(verdict "$ratio" '<=' 1)" "$ratio"
row "   CPU s used until it answered" "$(med rec.cpu.netdb)" "$(med rec.cpu.redis)" ""
n=$(med disk.netdb)
r=$(med disk.redis)
row "5. disk bytes after compaction" "$n" "$r" ""
row "   live data (keys + values), bytes" "$LIVE_BYTES" "$LIVE_BYTES" ""
share=$(calc '%.2f' "$n / $LIVE_BYTES")
row "   on disk / live data" "$share" "$(calc '%.2f' "$r / $LIVE_BYTES")" \
    "netdb <= 1.5: $(verdict "$share" '<=' 1.5)"
machine_notes
