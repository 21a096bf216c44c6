#!/usr/bin/env bash
# redis-benchmark against several servers side by side, and what each
# server spends per request: its requests/s and the CPU time its process
# took (user + system, from /proc) divided by the requests it answered.
# On a machine shared with other work the rate swings by ±30% from run
# to run; the CPU per request moves much less, and says what a change
# costs or saves whatever the load (issue 12: the hand-off of every
# request between an I/O thread and the store thread).
#
# Servers are given as arguments: `redis` (redis-server --save ''
# --appendonly no) or the path of a netdb binary (run --in-memory), with
# `@N` for `--io-threads N`. Every server is started once, fresh; each
# run goes through all of them, which goes first rotating every run, so
# load from elsewhere on the machine hits each alike. Prints per test the
# median requests/s of each server, its ratio to the first server's,
# and the median CPU microseconds per request (over all the tests of a
# run: the CPU is read around the whole redis-benchmark call). Copy the
# binaries out of target/ first, so that a build during the run cannot
# change them.
#
# Usage: bash benches/cpu_per_request.sh SERVER...
#   e.g. bash benches/cpu_per_request.sh redis /tmp/netdb-old /tmp/netdb-new /tmp/netdb-new@2
#   RUNS=5                runs per server
#   TESTS=set,get,incr    redis-benchmark's tests
#   CLIENTS=50 N=100000   clients and requests per test
#   PIPELINE=1            requests each client sends at once (-P)
#   RUN_TIMEOUT=300s      the longest one redis-benchmark run may take
# About 3 minutes for three servers with the defaults on 2 busy cores.
set -euo pipefail

usage() {
    sed -n '/^# Usage:/,/^# About/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}
(($# >= 1)) || usage
SERVERS=("$@")

cd "$(dirname "${BASH_SOURCE[0]}")/.."
source benches/lib.sh

RUNS=${RUNS:-5}
TESTS=${TESTS:-set,get,incr}
CLIENTS=${CLIENTS:-50}
N=${N:-100000}
PIPELINE=${PIPELINE:-1}
RUN_TIMEOUT=${RUN_TIMEOUT:-300s}

need_tools redis-benchmark
bench_setup
raise_open_files $((CLIENTS + 200))

declare -A PORT PID
start_server() {
    local server=$1 port bin threads=()
    port=$(free_port)
    if [[ $server == redis ]]; then
        redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
            --daemonize no --dir "$BENCH_TMP" --logfile "$BENCH_TMP/redis-$port.log" &
    else
        bin=${server%@*}
        [[ $server == *@* ]] && threads=(--io-threads "${server##*@}")
        [[ -x $bin && ! -d $bin ]] || die "$bin is not an executable file"
        "$bin" "n$port" "127.0.0.1:$port" --in-memory --no-cli "${threads[@]}" \
            2>"$BENCH_TMP/netdb-$port.log" &
    fi
    PID[$server]=$!
    PORT[$server]=$port
    BENCH_PIDS+=("$!")
    await_pong "$!" "$port" || die "$server did not start on port $port"
}

# The CPU time process `pid` has taken so far, in clock ticks.
cpu_ticks() {
    awk '{ print $14 + $15 }' "/proc/$1/stat"
}

for server in "${SERVERS[@]}"; do
    start_server "$server"
done
machine_notes
echo "load before: $(uptime)"
results=$BENCH_TMP/results
ticks_per_sec=$(getconf CLK_TCK)
for run in $(seq "$RUNS"); do
    shift_by=$((run % ${#SERVERS[@]}))
    order=("${SERVERS[@]:shift_by}" "${SERVERS[@]:0:shift_by}")
    for server in "${order[@]}"; do
        before=$(cpu_ticks "${PID[$server]}")
        csv=$(timeout "$RUN_TIMEOUT" redis-benchmark -h 127.0.0.1 -p "${PORT[$server]}" \
            -t "$TESTS" -n "$N" -c "$CLIENTS" -P "$PIPELINE" --csv 2>/dev/null) ||
            die "redis-benchmark against $server failed or ran over $RUN_TIMEOUT"
        after=$(cpu_ticks "${PID[$server]}")
        tests=$(tail -n +2 <<<"$csv" | wc -l)
        us=$(calc '%.2f' "($after - $before) * 1e6 / $ticks_per_sec / ($N * $tests)")
        tail -n +2 <<<"$csv" | tr -d '"' |
            awk -F, -v s="$server" -v us="$us" -v r="$run" '{ print s, $1, $2, us, r }' >>"$results"
    done
done
echo "load after:  $(uptime)"
printf '%-8s' test
for server in "${SERVERS[@]}"; do printf ' %14s' "$(basename "$server")"; done
printf '   ratios to %s\n' "$(basename "${SERVERS[0]}")"
# shellcheck disable=SC2013 # test names are single words
for test in $(awk '{ print $2 }' "$results" | awk '!seen[$0]++'); do
    printf '%-8s' "$test"
    first=""
    ratios=""
    for server in "${SERVERS[@]}"; do
        # shellcheck disable=SC2046 # one number per word
        rate=$(median $(awk -v s="$server" -v t="$test" '$1 == s && $2 == t { print $3 }' "$results"))
        printf ' %14.0f' "$rate"
        if [[ -z $first ]]; then first=$rate; else ratios+=" $(calc '%.2f' "$rate / $first")"; fi
    done
    echo "  $ratios"
done
printf '%-8s' 'CPU us'
for server in "${SERVERS[@]}"; do
    # shellcheck disable=SC2046 # one number per word
    printf ' %14s' "$(median $(awk -v s="$server" '$1 == s && !seen[$5]++ { print $4 }' "$results"))"
done
echo "   (server CPU per request, median over runs)"
