# shellcheck shell=bash
# Helpers shared by the shell benches (cli_vs_redis.sh, memory.sh,
# redis_benchmark.sh, durability.sh, versus.sh, idle_memory.sh,
# slow_reader.sh); sourced, not run. Needs bash, coreutils, awk and the
# redis-server and redis-tools packages (idle_memory.sh and slow_reader.sh
# python3 as well), nothing else.
#
# The sourcing script sets `set -euo pipefail`, cds to the repo root and
# calls `bench_setup` once; everything it starts is stopped, and the
# temporary directory removed, when it exits.

# The temporary directory of this run.
BENCH_TMP=""
# Processes to stop on exit (pids, each started by this script).
BENCH_PIDS=()
# The running redis-server's pid and port (see start_redis).
REDIS_PID=""
REDIS_PORT=""
# The running background netdb node's pid and port (see start_node).
NODE_PID=""
NODE_PORT=""

die() {
    echo "error: $*" >&2
    exit 1
}

bench_cleanup() {
    local pid
    for pid in "${BENCH_PIDS[@]}"; do
        stop_pid "$pid"
    done
    if [[ -n "$BENCH_TMP" ]]; then
        rm -rf "$BENCH_TMP"
    fi
}

# Stops a process this script started: SIGTERM, then SIGKILL if it is
# still there after 5 s (a hung server must not hang the script's exit).
# Sets STOPPED_STATUS to its exit status.
stop_pid() {
    local pid=$1 _
    kill "$pid" 2>/dev/null || return 0
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "process $pid ignored SIGTERM for 5 s; killing it" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    STOPPED_STATUS=0
    wait "$pid" 2>/dev/null || STOPPED_STATUS=$?
}

# The Debian package that installs TOOL, if one does.
package_of() {
    case "$1" in
        redis-server) echo redis-server ;;
        redis-cli | redis-benchmark) echo redis-tools ;;
        python3) echo python3 ;;
        awk) echo gawk ;;
        *) echo "" ;;
    esac
}

# Makes sure every TOOL is installed: a missing one is installed with
# apt-get where this runs as root on a machine that has it (as .ci/run
# does), and is an error otherwise. Usage: need_tools TOOL...
need_tools() {
    local tool package missing=() packages=()
    for tool in "$@"; do
        command -v "$tool" >/dev/null && continue
        package=$(package_of "$tool")
        [[ -n "$package" ]] || die "$tool is not installed"
        missing+=("$tool")
        packages+=("$package")
    done
    ((${#missing[@]} == 0)) && return 0
    if command -v apt-get >/dev/null && [[ "$(id -u)" == 0 ]]; then
        echo "installing ${packages[*]} for ${missing[*]}" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null
    fi
    for tool in "${missing[@]}"; do
        command -v "$tool" >/dev/null || die "$tool is not installed (package $(package_of "$tool"))"
    done
}

# Makes the temporary directory and arranges the cleanup.
bench_setup() {
    need_tools cargo redis-server redis-cli awk
    BENCH_TMP=$(mktemp -d "${TMPDIR:-/tmp}/netdb-bench.XXXXXX")
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM
}

# Builds netdb in release mode; sets NETDB to the binary. With NETDB_BIN
# set (a path, absolute or from the repository root), uses that binary
# and builds nothing: to measure a given commit's build, or one binary
# against another (versus.sh).
build_netdb() {
    if [[ -n "${NETDB_BIN:-}" ]]; then
        NETDB=$NETDB_BIN
        [[ -x "$NETDB" && ! -d "$NETDB" ]] || die "NETDB_BIN=$NETDB is not an executable file"
        echo "using $NETDB (NETDB_BIN); not building" >&2
        return 0
    fi
    echo "building netdb (release)..." >&2
    cargo build --release --quiet
    NETDB="${CARGO_TARGET_DIR:-target}/release/netdb"
    [[ -x "$NETDB" ]] || die "no binary at $NETDB"
}

# A 100-byte value, the same for every key.
value100() {
    local v
    printf -v v '%100s' ''
    echo "${v// /v}"
}

# 100-byte values for the writes, as an awk function `value(i)`: with
# `same`, every value is value100; with `varied`, value i is a 100-byte
# window, starting at i % 100, of a fixed random string of letters and
# digits, so that no value compresses (as Redis's RDB files compress
# strings) while every run writes the same bytes.
value_awk() {
    case "$1" in
        same) echo "function value(i) { return \"$(value100)\" }" ;;
        varied) echo 'function value(i) {
                if (!base) {
                    srand(42)
                    a = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                    for (j = 0; j < 200; j++) base = base substr(a, int(rand() * 62) + 1, 1)
                }
                return substr(base, i % 100 + 1, 100)
            }' ;;
        *) die "value kind '$1'" ;;
    esac
}

# `put KEY VALUE` lines for keys key:0 .. key:N-1 (or, with `padded`,
# key:000000 .. key:999999, ten bytes each).
# Usage: gen_puts N padded|plain [same|varied] > file (values: see value_awk)
gen_puts() {
    awk -v n="$1" -v fmt="$(key_format "$2")" "$(value_awk "${3:-same}")"'
        BEGIN { for (i = 0; i < n; i++) printf("put " fmt " %s\n", i, value(i)) }'
}

# The same writes as gen_puts, as SET commands in the Redis protocol, for
# `redis-cli --pipe`; with a fourth argument, `SET ... EX SECONDS`.
# Usage: gen_sets N padded|plain [same|varied] [SECONDS] > file
gen_sets() {
    awk -v n="$1" -v fmt="$(key_format "$2")" -v ex="${4:-}" "$(value_awk "${3:-same}")"'
        BEGIN {
            for (i = 0; i < n; i++) {
                k = sprintf(fmt, i)
                v = value(i)
                if (ex == "") {
                    printf("*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", length(k), k, length(v), v)
                } else {
                    printf("*5\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n$2\r\nEX\r\n$%d\r\n%s\r\n",
                        length(k), k, length(v), v, length(ex), ex)
                }
            }
        }'
}

key_format() {
    case "$1" in
        padded) echo 'key:%06d' ;;
        plain) echo 'key:%d' ;;
        *) die "key format '$1'" ;;
    esac
}

# A TCP port on 127.0.0.1 that nothing listens on, below the kernel's
# ephemeral range so no outgoing connection holds it. Whoever binds it
# next may still race us: start_redis retries.
free_port() {
    local port _
    for _ in $(seq 100); do
        port=$((20000 + RANDOM % 12000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    die "no free port found"
}

# Starts an empty redis-server without persistence on a free port and waits
# until it answers; sets REDIS_PID and REDIS_PORT. Arguments are passed on
# to redis-server after the defaults, so they win over them (e.g.
# `start_redis --appendonly yes --appendfsync everysec`).
# shellcheck disable=SC2120 # the scripts that source this pass them
start_redis() {
    local attempt
    for attempt in 1 2 3 4 5; do
        REDIS_PORT=$(free_port)
        redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
            --daemonize no --dir "$BENCH_TMP" --logfile "$BENCH_TMP/redis.log" "$@" &
        REDIS_PID=$!
        BENCH_PIDS+=("$REDIS_PID")
        if await_pong "$REDIS_PID" "$REDIS_PORT"; then
            return 0
        fi
        echo "redis-server did not start on port $REDIS_PORT (attempt $attempt)" >&2
        stop_redis
    done
    die "cannot start redis-server; see its log above"
}

# Waits (up to 10 s) until the server `pid` answers PING on `port`; fails
# if it exits or stays silent.
await_pong() {
    local pid=$1 port=$2 _
    for _ in $(seq 200); do
        if ! kill -0 "$pid" 2>/dev/null; then
            return 1
        fi
        # A server that accepts but never answers must not hang us.
        if [[ "$(timeout 5 redis-cli -p "$port" ping 2>/dev/null)" == PONG ]]; then
            return 0
        fi
        sleep 0.05
    done
    return 1
}

stop_redis() {
    if [[ -n "$REDIS_PID" ]]; then
        stop_pid "$REDIS_PID"
    fi
    REDIS_PID=""
}

# Starts a standalone netdb node named NAME without a console on a free
# port and waits until it answers PING; sets NODE_PID and NODE_PORT. The
# other arguments are netdb options (e.g. `--in-memory`); without
# `--in-memory` give it a `--data-dir` under $BENCH_TMP. Its log, of this
# start only, is $NODE_LOG.
NODE_LOG=""
start_node() {
    local name=$1 attempt
    shift
    NODE_LOG=$BENCH_TMP/node.log
    for attempt in 1 2 3 4 5; do
        NODE_PORT=$(free_port)
        "$NETDB" "$name" "127.0.0.1:$NODE_PORT" --no-cli "$@" 2>"$NODE_LOG" &
        NODE_PID=$!
        BENCH_PIDS+=("$NODE_PID")
        if await_pong "$NODE_PID" "$NODE_PORT"; then
            return 0
        fi
        echo "netdb did not start on port $NODE_PORT (attempt $attempt): $(tail -n 5 "$NODE_LOG")" >&2
        stop_node || true
    done
    die "cannot start netdb"
}

# Stops the node with SIGTERM; fails unless it exits 0 (a clean stop).
stop_node() {
    [[ -n "$NODE_PID" ]] || return 0
    stop_pid "$NODE_PID"
    NODE_PID=""
    ((STOPPED_STATUS == 0)) ||
        { echo "netdb exited with status $STOPPED_STATUS: $(tail -n 3 "$NODE_LOG")" >&2; return 1; }
}

# Pipes FILE, N SETs in RESP, into the running redis-server with
# `redis-cli --pipe`, checks that it then holds N keys, and sets RATE to
# the writes per second.
timed_redis_load() {
    local file=$1 n=$2 start end keys
    start=$(now_ns)
    redis_pipe "$file" "$n"
    end=$(now_ns)
    keys=$(redis-cli -p "$REDIS_PORT" dbsize)
    [[ "$keys" == "$n" ]] || die "redis holds $keys keys, expected $n"
    # shellcheck disable=SC2034 # read by the sourcing script
    RATE=$(calc '%.0f' "$n / (($end - $start) / 1e9)")
}

# A field of `INFO memory`, e.g. `redis_info_memory used_memory`.
redis_info_memory() {
    redis-cli -p "$REDIS_PORT" info memory | tr -d '\r' | awk -F: -v f="$1" '$1 == f { print $2 }'
}

# A fresh redis-server's memory per key once FILE (N SETs in RESP) is
# loaded with redis-cli --pipe: sets USED_PER_KEY (used_memory) and
# RSS_PER_KEY (used_memory_rss), in bytes.
# Usage: redis_memory_per_key FILE N
USED_PER_KEY=""
RSS_PER_KEY=""
redis_memory_per_key() {
    local file=$1 n=$2 used0 rss0 used1 rss1 keys
    # shellcheck disable=SC2119 # no extra redis-server options
    start_redis
    used0=$(redis_info_memory used_memory)
    rss0=$(redis_info_memory used_memory_rss)
    redis_pipe "$file" "$n"
    keys=$(redis-cli -p "$REDIS_PORT" dbsize)
    [[ "$keys" == "$n" ]] || die "redis holds $keys keys, expected $n"
    used1=$(redis_info_memory used_memory)
    rss1=$(redis_info_memory used_memory_rss)
    stop_redis
    # shellcheck disable=SC2034 # read by the sourcing script
    USED_PER_KEY=$(calc '%.1f' "($used1 - $used0) / $n")
    # shellcheck disable=SC2034 # read by the sourcing script
    RSS_PER_KEY=$(calc '%.1f' "($rss1 - $rss0) / $n")
}

# Loads a file of protocol commands with redis-cli --pipe and checks that
# every one of `expected` commands was answered without error.
redis_pipe() {
    local file=$1 expected=$2 report
    report=$(redis-cli -p "$REDIS_PORT" --pipe <"$file")
    if ! grep -q "errors: 0, replies: $expected" <<<"$report"; then
        die "redis-cli --pipe: $report"
    fi
}

now_ns() {
    date +%s%N
}

# The median of the numbers given as arguments.
median() {
    printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END {
        if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2
    }'
}

# Floating-point arithmetic: `calc '%.2f' 'a / b'`.
calc() {
    awk "BEGIN { printf(\"$1\n\", $2) }"
}

machine_notes() {
    echo "machine: $(nproc) cores ($(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo))," \
        "$(awk '/MemTotal/ { printf("%.1f GiB", $2 / 1048576) }' /proc/meminfo)," \
        "load average $(cut -d' ' -f1-3 /proc/loadavg)"
}

# Resident memory of a standalone node per key (memory.sh, versus.sh): a
# node of $NETDB reading a FIFO; its RSS once it has answered a `get` of
# LAST_KEY while empty, and once it has answered it after the puts in
# PUTS_FILE (replies come in input order, so that answer means every put
# was applied). A node that stops reading or answering cannot hang the
# script (MEMORY_TIMEOUT seconds, 120 by default, each step). Sets
# MEMORY_EMPTY_KIB, MEMORY_FULL_KIB and PER_KEY (bytes).
# Usage: netdb_memory_per_key PUTS_FILE KEYS LAST_KEY
MEMORY_PID=""
# shellcheck disable=SC2034 # read by the sourcing script
MEMORY_EMPTY_KIB=""
# shellcheck disable=SC2034 # read by the sourcing script
MEMORY_FULL_KIB=""
PER_KEY=""
netdb_memory_per_key() {
    local puts=$1 keys=$2 last=$3 fifo=$BENCH_TMP/netdb.in stored
    local limit=${MEMORY_TIMEOUT:-120}
    rm -f "$fifo" "$BENCH_TMP/netdb.out"
    mkfifo "$fifo"
    "$NETDB" mem1 127.0.0.1:0 --in-memory <"$fifo" >"$BENCH_TMP/netdb.out" 2>"$BENCH_TMP/netdb.log" &
    MEMORY_PID=$!
    BENCH_PIDS+=("$MEMORY_PID")
    exec 3>"$fifo"

    echo "get $last" >&3
    await_last_line 'Key not found.' "$limit"
    MEMORY_EMPTY_KIB=$(rss_kib "$MEMORY_PID")

    timeout -k 5 "$limit" cat "$puts" >&3 ||
        die "$NETDB did not read its input within $limit s"
    echo "get $last" >&3
    await_last_line 'Value: *' "$limit"
    MEMORY_FULL_KIB=$(rss_kib "$MEMORY_PID")
    stored=$(grep -c '^Value stored\.$' "$BENCH_TMP/netdb.out" || true)
    ((stored == keys)) || die "$NETDB stored $stored of $keys keys"

    exec 3>&- # end of input: the node exits
    await_exit "$MEMORY_PID" "$limit" || die "$NETDB did not exit within $limit s of the end of its input"
    wait "$MEMORY_PID" || die "$NETDB failed: $(tail -n 5 "$BENCH_TMP/netdb.log")"
    # shellcheck disable=SC2034 # read by the sourcing script
    PER_KEY=$(calc '%.1f' "($MEMORY_FULL_KIB - $MEMORY_EMPTY_KIB) * 1024 / $keys")
}

# Waits up to LIMIT seconds until the memory node's last output line
# matches the glob PATTERN. Usage: await_last_line PATTERN LIMIT
await_last_line() {
    local pattern=$1 limit=$2 out=$BENCH_TMP/netdb.out deadline
    deadline=$(($(now_ns) + limit * 1000000000))
    while (($(now_ns) < deadline)); do
        # shellcheck disable=SC2053 # the pattern is a glob on purpose
        if [[ -s "$out" && "$(tail -n 1 "$out")" == $pattern ]]; then
            return 0
        fi
        kill -0 "$MEMORY_PID" 2>/dev/null || die "$NETDB exited: $(tail -n 5 "$BENCH_TMP/netdb.log")"
        sleep 0.05
    done
    die "no '$pattern' from $NETDB within $limit s"
}

# Waits up to LIMIT seconds for process PID to exit by itself; fails if
# it does not (the exit trap then stops it). Usage: await_exit PID LIMIT
await_exit() {
    local pid=$1 limit=$2 deadline
    deadline=$(($(now_ns) + limit * 1000000000))
    while kill -0 "$pid" 2>/dev/null; do
        (($(now_ns) < deadline)) || return 1
        sleep 0.05
    done
}

# Resident set of process PID, in KiB.
rss_kib() {
    awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"
}

# Peak resident set of process PID since it started (VmHWM), in KiB.
peak_rss_kib() {
    awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"
}

# How many threads process PID runs.
threads_of() {
    awk '/^Threads:/ { print $2 }' "/proc/$1/status"
}

# Raises this shell's soft open-files limit to the hard limit (what it
# starts inherits it: servers, redis-benchmark, client scripts) and fails
# unless that allows at least NEEDED files. Usage: raise_open_files NEEDED
raise_open_files() {
    local needed=$1 hard
    hard=$(ulimit -Hn)
    if [[ "$hard" == unlimited ]]; then
        ulimit -Sn unlimited
        return 0
    fi
    ulimit -Sn "$hard"
    ((hard >= needed)) ||
        die "$needed open files needed but the hard limit is $hard (raise it, e.g. in /etc/security/limits.conf, or ask for fewer clients)"
}

# A field of the `INFO clients` of the server on PORT (netdb or Redis),
# e.g. `info_clients PORT connected_clients`.
info_clients() {
    timeout 5 redis-cli -p "$1" info clients | tr -d '\r' | awk -F: -v f="$2" '$1 == f { print $2 }'
}
