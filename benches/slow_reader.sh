#!/usr/bin/env bash
# A client that asks for big replies and never reads them, against a
# netdb node and a redis-server, each with its default limits (netdb:
# --max-client-output-bytes 256 MiB; Redis: client-output-buffer-limit
# normal 0 0 0, none), each fresh for each case:
#
#   gets: 1,024 pipelined GETs of a 512 KiB value (20 KB sent, 512 MiB
#         of replies)
#   mget: one MGET naming that key 3,000 times (33 KB sent, 1.5 GiB of
#         reply)
#
# The client (benches/raw_clients.py slow) sends its request and reads
# nothing for HOLD seconds, while the script asks the server for PING from
# another client every half second. Then the client reads until the whole
# answer came, the server closed the connection, or nothing came for 10 s.
# Prints per case and server: the server's RSS before, its peak RSS
# (VmHWM in /proc/PID/status: the most it held at any time), the slowest
# PING answer meanwhile, what the client could read in the end (all of
# it, or how much before the server cut it off), and whether the server
# was still up. Target (issue 10): netdb's peak under its output limit
# plus a small constant, others served meanwhile.
#
# Redis buffers everything (with its default limits) and a netdb node
# without an output limit may too: the run may need 2 GiB or more of free
# memory.
#
# Usage: bash benches/slow_reader.sh
#   CASES="gets mget"             which cases, in order
#   HOLD=5                        seconds the client reads nothing
#   GETS=1024 MGET_TIMES=3000     the size of each case
#   DRAIN_TIMEOUT=300             seconds the client may take to read
#   NETDB_BIN=path/to/netdb       measure that binary and build nothing
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source benches/lib.sh

CASES=${CASES:-gets mget}
HOLD=${HOLD:-5}
GETS=${GETS:-1024}
MGET_TIMES=${MGET_TIMES:-3000}
DRAIN_TIMEOUT=${DRAIN_TIMEOUT:-300}
VALUE_BYTES=$((512 * 1024))

need_tools python3
bench_setup
build_netdb
# Base64 of 384 KiB of random bytes: 512 KiB of letters, no line break.
head -c $((VALUE_BYTES * 3 / 4)) /dev/urandom | base64 -w 0 >"$BENCH_TMP/big"

# Mebibytes, one decimal, from KiB.
mib() {
    calc '%.1f' "$1 / 1024"
}

# Runs case CASE against the server PID on PORT; prints its row.
# Usage: run_case WHO PID PORT CASE
run_case() {
    local who=$1 pid=$2 port=$3 case=$4 n before peak slowest=0 start took line end up
    local out=$BENCH_TMP/slow.out client deadline
    case "$case" in
        gets) n=$GETS ;;
        mget) n=$MGET_TIMES ;;
        *) die "unknown case '$case' (gets, mget)" ;;
    esac
    redis-cli -p "$port" -x set big <"$BENCH_TMP/big" >/dev/null
    # (netdb has no STRLEN; redis-cli adds a line break to what GET gives)
    [[ "$(redis-cli -p "$port" get big | wc -c)" == $((VALUE_BYTES + 1)) ]] || die "$who: big not stored"
    before=$(rss_kib "$pid")

    rm -f "$BENCH_TMP/slow.in"
    mkfifo "$BENCH_TMP/slow.in"
    python3 benches/raw_clients.py slow "$port" "$case" "$n" <"$BENCH_TMP/slow.in" >"$out" 2>"$BENCH_TMP/slow.err" &
    client=$!
    BENCH_PIDS+=("$client")
    exec 4>"$BENCH_TMP/slow.in"
    deadline=$(($(now_ns) + 30 * 1000000000))
    until grep -q '^sent' "$out"; do
        kill -0 "$client" 2>/dev/null || die "the slow client failed: $(cat "$BENCH_TMP/slow.err")"
        (($(now_ns) < deadline)) || die "the slow client could not send its request to $who"
        sleep 0.1
    done

    # Others meanwhile: the slowest PING answer (10 s and no answer: 10000).
    deadline=$(($(now_ns) + HOLD * 1000000000))
    while (($(now_ns) < deadline)); do
        kill -0 "$pid" 2>/dev/null || break
        start=$(now_ns)
        if [[ "$(timeout 10 redis-cli -p "$port" ping 2>/dev/null)" == PONG ]]; then
            took=$((($(now_ns) - start) / 1000000))
        else
            took=10000
        fi
        ((took > slowest)) && slowest=$took
        sleep 0.5
    done

    echo "drain $VALUE_BYTES" >&4
    exec 4>&-
    await_exit "$client" "$DRAIN_TIMEOUT" || die "the slow client did not finish reading within $DRAIN_TIMEOUT s"
    wait "$client" || die "the slow client failed: $(cat "$BENCH_TMP/slow.err")"
    line=$(grep '^read' "$out") || die "the slow client said nothing: $(cat "$out")"
    # read BYTES of WHOLE end=...
    read -r _ got _ whole end <<<"$line"
    end=${end#end=}
    if kill -0 "$pid" 2>/dev/null; then
        up=up
        peak=$(mib "$(peak_rss_kib "$pid")")
    else
        up=died
        peak="?"
    fi
    if [[ $end == complete ]]; then
        end="all $(calc '%.1f' "$whole / 1048576") MiB"
    else
        end="$(calc '%.1f' "$got / 1048576") MiB, then $end"
    fi
    printf '%-6s %-6s %12s %12s %14s   %-28s %s\n' "$case" "$who" "$(mib "$before")" \
        "$peak" "$slowest" "$end" "$up"
}

machine_notes
echo "netdb: default limits (--max-client-output-bytes 256 MiB where the build has it);" \
    "redis: default limits (client-output-buffer-limit normal 0 0 0)"
printf '%-6s %-6s %12s %12s %14s   %-28s %s\n' case server "RSS MiB" "peak MiB" "PING max ms" \
    "the client read" server
for case in $CASES; do
    start_node slow1 --in-memory
    run_case netdb "$NODE_PID" "$NODE_PORT" "$case"
    if kill -0 "$NODE_PID" 2>/dev/null; then stop_node; else NODE_PID=""; fi
    # shellcheck disable=SC2119 # no extra redis-server options
    start_redis
    run_case redis "$REDIS_PID" "$REDIS_PORT" "$case"
    if kill -0 "$REDIS_PID" 2>/dev/null; then stop_redis; else REDIS_PID=""; fi
done
machine_notes
