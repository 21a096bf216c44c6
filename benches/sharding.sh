#!/usr/bin/env bash
# Sharding (issue 14): what `--replicas 3` buys and costs, on six
# in-memory nodes of one machine that join through the first (--join).
#
#   memory:     KEYS keys (1M by default: key:000000 .. key:999999,
#               100-byte values) loaded through n1 with redis-cli --pipe;
#               once the nodes' DBSIZEs add up to 3 x KEYS, each node's
#               RSS (VmRSS), beside the RSS of one node holding the same
#               keys alone (a full copy, which is what every node held
#               before sharding). Target: a node at about half a full
#               copy (3 of 6), plus a small overhead.
#   proxy:      redis-benchmark's SET and GET (-c 50, -r 100000, -d 100)
#               against n1 on keys {TAG}:__rand_int__, once with a hash
#               tag whose slot n1 holds and once with one whose slot it
#               does not (each request then costs one proxy hop); the
#               tags are picked from n1's CLUSTER SLOTS and checked with
#               CLUSTER KEYSLOT. Medians of RUNS runs, the two
#               alternating, and the ratio not held / held.
#   rebalance:  with the memory part's data in place, a seventh node
#               joins; the time from its start until the DBSIZEs add up
#               to 3 x KEYS again and it holds its share (at least
#               SHARE_FRACTION of 3 x KEYS / 7).
#
# Every node this script starts is stopped when it exits, also on an error
# or Ctrl-C (benches/lib.sh).
#
# Usage: bash benches/sharding.sh
#   KEYS=1000000            keys loaded (at most 1000000)
#   RUNS=3                  redis-benchmark runs per case (proxy)
#   PARTS="memory proxy rebalance"  which parts, in that order (proxy and
#                           rebalance run on the memory part's cluster,
#                           which is loaded whatever PARTS says)
#   N_BENCH=200000          requests per redis-benchmark run
#   REPLICAS=3              --replicas of every node
#   SETTLE_TIMEOUT=600      seconds the data may take to be in place
#   SHARE_FRACTION=0.8      the newcomer's least share, of 3 x KEYS / 7
#   PROXY_TAGS="HELD NOT_HELD"  hash tags for the proxy part, instead of
#                           picking them from n1's CLUSTER SLOTS
#   NETDB_BIN=path/to/netdb measure that binary and build nothing
# A short run to try it: KEYS=100000 RUNS=1 N_BENCH=20000. With
# REPLICAS=7 every member holds every key (the layout gives each slot
# min(7, members) members), which exercises the script on a build that
# stores everything everywhere; the proxy part then finds no slot n1
# does not hold and says so.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source benches/lib.sh

KEYS=${KEYS:-1000000}
RUNS=${RUNS:-3}
PARTS=${PARTS:-memory proxy rebalance}
N_BENCH=${N_BENCH:-200000}
REPLICAS=${REPLICAS:-3}
SETTLE_TIMEOUT=${SETTLE_TIMEOUT:-600}
SHARE_FRACTION=${SHARE_FRACTION:-0.8}
((KEYS <= 1000000)) || die "KEYS is at most 1000000 (keys have six digits)"
NODES=6
SYNC_MS=100

need_tools redis-benchmark python3
bench_setup
build_netdb

# The members started so far: their names, pids and ports, in order.
MEMBER_NAMES=()
MEMBER_PIDS=()
MEMBER_PORTS=()
# Each member's RSS right after it started, empty (KiB).
MEMBER_EMPTY_KIB=()

# Starts member NAME (in memory, no console, --replicas REPLICAS),
# joining through the first member if there is one, and waits until it
# answers PING. Usage: start_member NAME
start_member() {
    local name=$1 attempt port pid join=()
    ((${#MEMBER_PORTS[@]} == 0)) || join=(--join "127.0.0.1:${MEMBER_PORTS[0]}")
    for attempt in 1 2 3 4 5; do
        port=$(free_port)
        "$NETDB" "$name" "127.0.0.1:$port" --no-cli --in-memory --replicas "$REPLICAS" \
            --sync-interval-ms "$SYNC_MS" "${join[@]}" 2>"$BENCH_TMP/$name.log" &
        pid=$!
        BENCH_PIDS+=("$pid")
        if await_pong "$pid" "$port"; then
            MEMBER_NAMES+=("$name")
            MEMBER_PIDS+=("$pid")
            MEMBER_PORTS+=("$port")
            MEMBER_EMPTY_KIB+=("$(rss_kib "$pid")")
            return 0
        fi
        echo "$name did not start on port $port (attempt $attempt): $(tail -n 5 "$BENCH_TMP/$name.log")" >&2
        stop_pid "$pid"
    done
    die "cannot start $name"
}

# The DBSIZE of the node on PORT (what it stores itself).
dbsize() {
    timeout 10 redis-cli -p "$1" dbsize
}

# The members' DBSIZEs, one line, in order.
dbsizes() {
    local port sizes=()
    for port in "${MEMBER_PORTS[@]}"; do
        sizes+=("$(dbsize "$port")")
    done
    echo "${sizes[*]}"
}

# How many members hold each key: REPLICAS, or every member when there
# are fewer.
copies() {
    local n=${#MEMBER_PORTS[@]}
    ((REPLICAS < n)) && n=$REPLICAS
    echo "$n"
}

# Waits until the members' DBSIZEs add up to copies x KEYS and the last
# member holds at least MIN_LAST keys; sets SETTLED_SECS to the seconds
# since START_NS (now_ns). Fails after SETTLE_TIMEOUT seconds.
# Usage: await_settled START_NS MIN_LAST
SETTLED_SECS=""
await_settled() {
    local start=$1 min_last=$2 want sizes sum last deadline report
    want=$(($(copies) * TOTAL_KEYS))
    deadline=$((start + SETTLE_TIMEOUT * 1000000000))
    report=$((start + 10000000000))
    while :; do
        sizes=$(dbsizes)
        sum=$(awk '{ for (i = 1; i <= NF; i++) s += $i } END { print s + 0 }' <<<"$sizes")
        last=${sizes##* }
        if ((sum == want && last >= min_last)); then
            SETTLED_SECS=$(calc '%.1f' "($(now_ns) - $start) / 1e9")
            return 0
        fi
        (($(now_ns) < deadline)) ||
            die "after $SETTLE_TIMEOUT s the DBSIZEs are $sizes (sum $sum, want $want; the last at least $min_last)"
        # Every 10 s, where it stands: moving, or stuck.
        if (($(now_ns) >= report)); then
            echo "  $(calc '%.0f' "($(now_ns) - $start) / 1e9") s: DBSIZEs $sizes (sum $sum, want $want)" >&2
            report=$((report + 10000000000))
        fi
        sleep 0.2
    done
}

# Loads the SETs of FILE (KEYS of them) through the node on PORT and
# checks every one was answered OK. Usage: load PORT FILE
load() {
    local report
    report=$(redis-cli -p "$1" --pipe <"$2")
    grep -q "errors: 0, replies: $KEYS" <<<"$report" || die "redis-cli --pipe: $report"
}

# Sets FULL_RSS to the RSS, in KiB, of one node holding the keys of FILE
# alone (a full copy), and FULL_EMPTY_RSS to its RSS before it got them.
# Usage: full_copy_rss FILE
FULL_RSS=""
FULL_EMPTY_RSS=""
full_copy_rss() {
    local keys
    start_node full --in-memory
    FULL_EMPTY_RSS=$(rss_kib "$NODE_PID")
    load "$NODE_PORT" "$1"
    keys=$(dbsize "$NODE_PORT")
    [[ "$keys" == "$KEYS" ]] || die "the full copy holds $keys keys, not $KEYS"
    FULL_RSS=$(rss_kib "$NODE_PID")
    stop_node
}

# Two hash tags for the node on PORT: one whose slot it holds and one
# whose slot it does not, from its CLUSTER SLOTS; prints "HELD NOT_HELD",
# with "-" for one there is none of.
pick_tags() {
    redis-cli -2 -p "$1" --json cluster slots >"$BENCH_TMP/slots.json"
    python3 - "$1" "$BENCH_TMP/slots.json" <<'EOF'
import json, sys

port, path = int(sys.argv[1]), sys.argv[2]
held = set()
for r in json.load(open(path)):
    if any(int(node[1]) == port for node in r[2:]):
        held.update(range(int(r[0]), int(r[1]) + 1))

def crc16(data):
    # CRC16-CCITT (XMODEM), as Redis Cluster's key slots.
    crc = 0
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc

found = {True: "-", False: "-"}
for i in range(100000):
    tag = "bt%d" % i
    h = crc16(tag.encode()) % 16384 in held
    if found[h] == "-":
        found[h] = tag
    if "-" not in found.values():
        break
print(found[True], found[False])
EOF
}

# One redis-benchmark run of COMMAND (SET or GET) against PORT on keys
# {TAG}:__rand_int__; prints its requests per second.
# Usage: bench_once PORT TAG COMMAND
bench_once() {
    local port=$1 tag=$2 cmd=$3 args csv
    if [[ $cmd == SET ]]; then args=(SET "{$tag}:__rand_int__" "$(value100)"); else args=(GET "{$tag}:__rand_int__"); fi
    csv=$(timeout 600 redis-benchmark -h 127.0.0.1 -p "$port" -n "$N_BENCH" -c 50 -r 100000 \
        --csv "${args[@]}" 2>"$BENCH_TMP/benchmark.err") ||
        die "redis-benchmark failed or ran over 600 s: $(cat "$BENCH_TMP/benchmark.err")"
    # "test","rps",...: the one row of the custom command.
    awk -F, 'NR == 2 { gsub(/"/, "", $2); print $2 }' <<<"$csv"
}

part_memory() {
    local i sum=0 grown=0 rss most=0 mean full_data
    echo
    echo "memory: $KEYS keys on $NODES nodes with --replicas $REPLICAS, beside one full copy"
    echo "  keys per node (DBSIZE): $(dbsizes)"
    printf '  RSS per node (empty -> loaded):'
    for i in "${!MEMBER_PIDS[@]}"; do
        rss=$(rss_kib "${MEMBER_PIDS[$i]}")
        printf ' %s %d -> %d KiB;' "${MEMBER_NAMES[$i]}" "${MEMBER_EMPTY_KIB[$i]}" "$rss"
        sum=$((sum + rss))
        grown=$((grown + rss - MEMBER_EMPTY_KIB[i]))
        ((rss > most)) && most=$rss
    done
    echo
    mean=$((sum / NODES))
    full_copy_rss "$BENCH_TMP/sets.resp"
    full_data=$((FULL_RSS - FULL_EMPTY_RSS))
    printf '  one node with every key alone: %d -> %d KiB\n' "$FULL_EMPTY_RSS" "$FULL_RSS"
    printf '  node / full copy: RSS mean %.2f, largest %.2f; growth with the data, mean %.2f\n' \
        "$(calc '%.4f' "$mean / $FULL_RSS")" "$(calc '%.4f' "$most / $FULL_RSS")" \
        "$(calc '%.4f' "$grown / $NODES / $full_data")"
    printf '  (ideal %.2f: %d copies over %d nodes, plus a small overhead)\n' \
        "$(calc '%.4f' "$(copies) / $NODES")" "$(copies)" "$NODES"
}

part_proxy() {
    local port=${MEMBER_PORTS[0]} tags held missing run kind cmd slot stored p tag
    echo
    echo "proxy: redis-benchmark -c 50 -r 100000 -n $N_BENCH against n1, keys of a slot it holds vs one it does not"
    if [[ -n "${PROXY_TAGS:-}" ]]; then
        read -r held missing <<<"$PROXY_TAGS"
    else
        read -r held missing <<<"$(pick_tags "$port")"
    fi
    if [[ $held == - || $missing == - ]]; then
        echo "  skipped: n1 holds every slot or none (held tag '$held', not held tag '$missing'): nothing to compare"
        return 0
    fi
    for tag in "$held" "$missing"; do
        slot=$(redis-cli -p "$port" cluster keyslot "{$tag}")
        echo "  tag {$tag}: slot $slot"
    done
    : >"$BENCH_TMP/proxy.txt"
    for run in $(seq "$RUNS"); do
        if ((run % 2)); then tags=("$held" "$missing"); else tags=("$missing" "$held"); fi
        for tag in "${tags[@]}"; do
            kind=held
            [[ $tag == "$missing" ]] && kind=proxied
            for cmd in SET GET; do
                echo "$kind $cmd $(bench_once "$port" "$tag" "$cmd")" >>"$BENCH_TMP/proxy.txt"
            done
            echo "  run $run/$RUNS: $kind done" >&2
        done
    done
    # The proxied SETs landed on the slot's replicas, not on n1 (tags
    # given by hand may break that: only said).
    slot=$(redis-cli -p "$port" cluster keyslot "{$missing}")
    stored=0
    for p in "${MEMBER_PORTS[@]}"; do
        stored=$((stored + $(redis-cli -p "$p" cluster countkeysinslot "$slot")))
    done
    if [[ "$(redis-cli -p "$port" cluster countkeysinslot "$slot")" != 0 ]]; then
        [[ -n "${PROXY_TAGS:-}" ]] || die "n1 stores keys of slot $slot, which it does not hold"
        echo "  note: n1 stores keys of slot $slot (PROXY_TAGS): that case was not proxied"
    fi
    ((stored > 0)) || die "no member stores the proxied SETs' slot $slot"
    printf '  %-4s %14s %14s %7s\n' "" "held req/s" "proxied req/s" "ratio"
    for cmd in SET GET; do
        local h p
        # shellcheck disable=SC2046 # one number a word
        h=$(median $(awk -v c="$cmd" '$1 == "held" && $2 == c { print $3 }' "$BENCH_TMP/proxy.txt"))
        # shellcheck disable=SC2046 # one number a word
        p=$(median $(awk -v c="$cmd" '$1 == "proxied" && $2 == c { print $3 }' "$BENCH_TMP/proxy.txt"))
        printf '  %-4s %14.0f %14.0f %7.2f\n' "$cmd" "$h" "$p" "$(calc '%.4f' "$p / $h")"
    done
    echo "  (medians of $RUNS runs)"
}

part_rebalance() {
    local start share sum deadline
    # The proxy part's SETs added keys: count them all, once every copy
    # is in place (the sum of the DBSIZEs a multiple of the copies, and
    # still).
    deadline=$((SECONDS + 60))
    while :; do
        sum=$(awk '{ for (i = 1; i <= NF; i++) s += $i } END { print s + 0 }' <<<"$(dbsizes)")
        sleep 1
        if ((sum % $(copies) == 0)) &&
            ((sum == $(awk '{ for (i = 1; i <= NF; i++) s += $i } END { print s + 0 }' <<<"$(dbsizes)"))); then
            break
        fi
        ((SECONDS < deadline)) || die "the copies never settled: DBSIZEs $(dbsizes)"
    done
    TOTAL_KEYS=$((sum / $(copies)))
    echo
    echo "rebalance: a seventh node joins $NODES holding $TOTAL_KEYS keys (x $(copies))"
    start=$(now_ns)
    start_member n7
    share=$(calc '%.0f' "$SHARE_FRACTION * $(copies) * $TOTAL_KEYS / ${#MEMBER_PORTS[@]}")
    await_settled "$start" "$share"
    printf '  settled %s s after n7 started: DBSIZEs %s\n' "$SETTLED_SECS" "$(dbsizes)"
    printf '  n7 holds %s copies, %.2f x its share (%s)\n' "$(dbsize "${MEMBER_PORTS[6]}")" \
        "$(calc '%.4f' "$(dbsize "${MEMBER_PORTS[6]}") * 7 / ($(copies) * $TOTAL_KEYS)")" \
        "$(calc '%.0f' "$(copies) * $TOTAL_KEYS / 7")"
}

TOTAL_KEYS=$KEYS
machine_notes
echo "generating $KEYS SETs..." >&2
gen_sets "$KEYS" padded >"$BENCH_TMP/sets.resp"
for i in $(seq "$NODES"); do
    start_member "n$i"
done
echo "loading $KEYS keys through n1..." >&2
load_start=$(now_ns)
load "${MEMBER_PORTS[0]}" "$BENCH_TMP/sets.resp"
await_settled "$load_start" 0
echo "loaded and placed in $SETTLED_SECS s: DBSIZEs $(dbsizes)"
for part in $PARTS; do
    case "$part" in
        memory) part_memory ;;
        proxy) part_proxy ;;
        rebalance) part_rebalance ;;
        *) die "unknown part '$part' (memory, proxy, rebalance)" ;;
    esac
done
machine_notes
