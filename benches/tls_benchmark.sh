#!/usr/bin/env bash
# Redis clients over TLS against a netdb node and a redis-server, side by
# side: `redis-benchmark --tls -t set,get -n N -c 50 -q` against
#
#   netdb --in-memory --tls-cert-file ... --tls-key-file ... --tls-ca-cert-file ...
#   redis-server --port 0 --tls-port P --tls-cert-file ... --tls-key-file ...
#       --tls-ca-cert-file ... --tls-auth-clients no --save '' --appendonly no
#
# RUNS times each, the two alternating (which goes first swaps every run)
# so that load from elsewhere on the machine hits both alike; prints each
# run's requests/s and the medians. The CA and node certificate are made
# for the run with openssl, in the run's temporary directory, removed at
# the end.
#
# Usage: bash benches/tls_benchmark.sh
#   RUNS=3 N=100000 CLIENTS=50
#   NETDB_BIN=path/to/netdb       measure that binary and build nothing
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source benches/lib.sh

RUNS=${RUNS:-3}
N=${N:-100000}
CLIENTS=${CLIENTS:-50}

bench_setup
need_tools redis-benchmark openssl
build_netdb

certs() {
    local d=$BENCH_TMP
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$d/ca.key" -out "$d/ca.crt" \
        -days 2 -subj "/CN=netdb bench CA" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout "$d/node.key" -out "$d/node.csr" \
        -subj "/CN=127.0.0.1" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1\n' >"$d/ext.cnf"
    openssl x509 -req -in "$d/node.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" \
        -CAcreateserial -out "$d/node.crt" -days 2 -extfile "$d/ext.cnf" 2>/dev/null
}
certs
TLS_FILES=(--tls-cert-file "$BENCH_TMP/node.crt" --tls-key-file "$BENCH_TMP/node.key"
    --tls-ca-cert-file "$BENCH_TMP/ca.crt")
TLS_CLI=(--tls --cacert "$BENCH_TMP/ca.crt")

# Starts redis-server with TLS only; sets REDIS_PID and REDIS_PORT.
start_tls_redis() {
    local _
    REDIS_PORT=$(free_port)
    redis-server --port 0 --tls-port "$REDIS_PORT" --bind 127.0.0.1 "${TLS_FILES[@]}" \
        --tls-auth-clients no --save '' --appendonly no --daemonize no \
        --dir "$BENCH_TMP" --logfile "$BENCH_TMP/redis.log" &
    REDIS_PID=$!
    BENCH_PIDS+=("$REDIS_PID")
    for _ in $(seq 200); do
        [[ "$(timeout 5 redis-cli "${TLS_CLI[@]}" -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]] &&
            return 0
        sleep 0.05
    done
    die "redis-server with TLS did not start: $(tail -n 5 "$BENCH_TMP/redis.log")"
}

# requests/s of SET and GET against PORT, as "SET GET".
bench() {
    local port=$1 out
    out=$(timeout 300s redis-benchmark "${TLS_CLI[@]}" -p "$port" -t set,get -n "$N" \
        -c "$CLIENTS" -q 2>/dev/null | tr '\r' '\n')
    echo "$(awk '/^SET:/ { print $2 }' <<<"$out" | tail -n1)" \
        "$(awk '/^GET:/ { print $2 }' <<<"$out" | tail -n1)"
}

NETDB_SET=() NETDB_GET=() REDIS_SET=() REDIS_GET=()
run_netdb() {
    local r
    start_node tls-bench --in-memory "${TLS_FILES[@]}"
    read -r -a r <<<"$(bench "$NODE_PORT")"
    stop_node
    NETDB_SET+=("${r[0]}") NETDB_GET+=("${r[1]}")
    echo "run $1 netdb: SET ${r[0]} GET ${r[1]}"
}
run_redis() {
    local r
    start_tls_redis
    read -r -a r <<<"$(bench "$REDIS_PORT")"
    stop_pid "$REDIS_PID"
    REDIS_SET+=("${r[0]}") REDIS_GET+=("${r[1]}")
    echo "run $1 redis: SET ${r[0]} GET ${r[1]}"
}

machine_notes
for run in $(seq "$RUNS"); do
    if ((run % 2)); then
        run_netdb "$run"
        run_redis "$run"
    else
        run_redis "$run"
        run_netdb "$run"
    fi
done
ns=$(median "${NETDB_SET[@]}") ng=$(median "${NETDB_GET[@]}")
rs=$(median "${REDIS_SET[@]}") rg=$(median "${REDIS_GET[@]}")
echo
echo "| redis-benchmark --tls -c $CLIENTS -n $N | netdb req/s | Redis req/s | netdb/Redis |"
echo "| --- | ---: | ---: | ---: |"
echo "| SET | $ns | $rs | $(calc '%.2f' "$ns / $rs") |"
echo "| GET | $ng | $rg | $(calc '%.2f' "$ng / $rg") |"
