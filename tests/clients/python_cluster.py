#!/usr/bin/env python3
"""redis-py's cluster client (RedisCluster) against a netdb cluster.

Usage: python_cluster.py HOST:PORT

Connects through the node given, in RESP2 and RESP3, writes and reads
keys of many slots, a pipeline and a multi-key command of one slot, and
checks that the client sees every member. Prints one line per step and
`ok` at the end; exits 1 on the first wrong answer. (Not run against
redis-server: a Redis without cluster mode refuses CLUSTER SLOTS.)
"""

import sys

import redis
from redis.cluster import RedisCluster


def expect(label, got, want):
    print(f"{label}: {got!r}", flush=True)
    if got != want:
        raise AssertionError(f"{label}: got {got!r}, want {want!r}")


def run(host, port, protocol):
    print(f"--- protocol {protocol}", flush=True)
    rc = RedisCluster(host=host, port=port, protocol=protocol)
    keys = [f"cluster-key-{i}" for i in range(40)]
    for i, key in enumerate(keys):
        rc.set(key, i)
    expect("values", [rc.get(k) for k in keys], [str(i).encode() for i in range(40)])
    expect("slots", len({rc.keyslot(k) for k in keys}) > 20, True)
    rc.mset({"{tag}a": "1", "{tag}b": "2"})
    expect("mget of one slot", rc.mget("{tag}a", "{tag}b"), [b"1", b"2"])
    pipe = rc.pipeline()
    pipe.set("cluster-counter", 1)
    pipe.incr("cluster-counter")
    pipe.get("cluster-counter")
    expect("pipeline", pipe.execute(), [True, 2, b"2"])
    expect("every member known", len(rc.get_nodes()) >= 2, True)
    rc.delete(*keys, "{tag}a", "{tag}b", "cluster-counter")
    expect("deleted", rc.exists(*keys), 0)
    rc.close()


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    host, port = sys.argv[1].rsplit(":", 1)
    print(f"redis-py {redis.__version__} RedisCluster", flush=True)
    for protocol in (2, 3):
        run(host, int(port), protocol)
    print("ok", flush=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (AssertionError, redis.RedisError) as e:
        print(f"FAILED: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
