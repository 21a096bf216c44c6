#!/usr/bin/env python3
"""What an application does with redis-py (the `redis` package) at startup
and in use, against the server at HOST:PORT: with redis-py's default
protocol (RESP3 since redis-py 8, which sends HELLO 3), then with
`protocol=2` and `protocol=3` asked for.

Every reply is checked against what Redis 7 answers; a wrong one fails the
run with a message and exit status 1. Each step also prints one line, the
same against Redis and against netdb, so two runs can be compared with
`diff`. The server's databases 0 and 1 are flushed.

Usage: python_client.py HOST:PORT
"""

import sys
import time

import redis
from redis.exceptions import ResponseError, WatchError


def show(label, value):
    """Prints one step's result, for comparing runs."""
    print(f"{label}: {value!r}", flush=True)


def expect(label, got, want):
    show(label, got)
    if got != want:
        raise AssertionError(f"{label}: got {got!r}, want {want!r}")


def check(label, condition, detail=""):
    show(label, bool(condition))
    if not condition:
        raise AssertionError(f"{label}: {detail}")


def error_of(label, call):
    """Runs `call`, which must raise the library's ResponseError; returns
    the error's type and message."""
    try:
        got = call()
    except ResponseError as e:
        return (type(e).__name__, str(e))
    raise AssertionError(f"{label}: no error, got {got!r}")


def connect(host, port, protocol, **overrides):
    """A client as an application makes one: `protocol` None is redis-py's
    default."""
    kwargs = {"decode_responses": True, "socket_timeout": 20, "socket_connect_timeout": 20}
    if protocol is not None:
        kwargs["protocol"] = protocol
    kwargs.update(overrides)
    return redis.Redis(host=host, port=port, **kwargs)


def startup(r, protocol):
    """What a connection does first: the handshake, a name, PING."""
    expect("ping", r.ping(), True)
    expect("client_setname", r.client_setname("app"), True)
    expect("client_getname", r.client_getname(), "app")
    info = r.client_info()
    expect("client_info name", info["name"], "app")
    check("client_info id", int(info["id"]) > 0, info)
    # Every field of Redis's line, as numbers where Redis has numbers.
    for field in ("age", "idle", "sub", "psub", "qbuf", "omem", "tot-mem"):
        check(f"client_info {field}", isinstance(info.get(field), int), info)
    # CLIENT SETINFO, which redis-py sends, is Redis 7.2's: a server
    # before it refuses it (redis-py goes on) and shows no lib-name.
    lib = r.client_info().get("lib-name")
    check("client_info lib-name", lib in (None, "redis-py"), lib)
    check("client_id", r.client_id() > 0)
    mine = [c for c in r.client_list() if c["name"] == "app"]
    check("client_list has this client", len(mine) >= 1, r.client_list())
    if protocol == 3:
        hello = r.connection_pool.get_connection().handshake_metadata
        proto = hello.get("proto", hello.get(b"proto"))
        expect("hello proto", proto, 3)
    expect("echo", r.echo("hi"), "hi")


def strings(host, port, protocol, r):
    expect("set", r.set("s:a", "1"), True)
    expect("get", r.get("s:a"), "1")
    expect("get missing", r.get("s:missing"), None)
    expect("set nx existing", r.set("s:a", "2", nx=True), None)
    expect("set nx new", r.set("s:b", "2", nx=True), True)
    expect("set xx missing", r.set("s:c", "3", xx=True), None)
    expect("set xx existing", r.set("s:b", "22", xx=True), True)
    expect("set get", r.set("s:b", "23", get=True), "22")
    expect("set get missing", r.set("s:c", "3", get=True), None)
    expect("set ex", r.set("s:ex", "v", ex=100), True)
    ttl = r.ttl("s:ex")
    check("ttl after set ex", 98 <= ttl <= 100, ttl)
    expect("set px", r.set("s:px", "v", px=100000), True)
    pttl = r.pttl("s:px")
    check("pttl after set px", 98000 <= pttl <= 100000, pttl)
    expect("set keepttl", r.set("s:ex", "w", keepttl=True), True)
    ttl = r.ttl("s:ex")
    check("ttl kept", 98 <= ttl <= 100, ttl)
    expect("set clears ttl", (r.set("s:ex", "x"), r.ttl("s:ex")), (True, -1))
    expect("set exat", r.set("s:exat", "v", exat=int(time.time()) + 100), True)
    check("ttl after exat", 95 <= r.ttl("s:exat") <= 100)
    expect("setnx", (r.setnx("s:nx", "1"), r.setnx("s:nx", "2")), (True, False))
    expect("setex", r.setex("s:setex", 50, "v"), True)
    check("ttl after setex", 48 <= r.ttl("s:setex") <= 50)
    expect("psetex", r.psetex("s:psetex", 50000, "v"), True)
    expect("mset", r.mset({"m:1": "a", "m:2": "b", "m:3": "c"}), True)
    expect("mget", r.mget(["m:1", "m:missing", "m:3"]), ["a", None, "c"])
    expect("msetnx", r.msetnx({"m:1": "z", "m:4": "d"}), False)
    expect("msetnx new", r.msetnx({"m:5": "e", "m:6": "f"}), True)
    expect("exists", r.exists("m:1", "m:2", "m:missing", "m:1"), 3)
    expect("del", r.delete("m:1", "m:2", "m:missing"), 2)
    expect("exists after del", r.exists("m:1"), 0)
    expect("unlink", r.unlink("m:3"), 1)
    expect("type string", r.type("s:a"), "string")
    expect("type none", r.type("s:missing"), "none")
    expect("append new", r.append("s:app", "hello"), 5)
    expect("append", r.append("s:app", " world"), 11)
    expect("strlen", r.strlen("s:app"), 11)
    expect("strlen missing", r.strlen("s:missing"), 0)
    expect("getrange", r.getrange("s:app", 0, 4), "hello")
    expect("getrange negative", r.getrange("s:app", -5, -1), "world")
    expect("setrange", r.setrange("s:app", 6, "WORLD"), 11)
    expect("get after setrange", r.get("s:app"), "hello WORLD")
    expect("setrange pads", r.setrange("s:pad", 3, "x"), 4)
    expect("get padded", r.get("s:pad"), "\x00\x00\x00x")
    expect("getdel", r.getdel("s:a"), "1")
    expect("getdel gone", r.getdel("s:a"), None)
    r.set("s:gx", "v")
    expect("getex ex", r.getex("s:gx", ex=100), "v")
    check("ttl after getex", 98 <= r.ttl("s:gx") <= 100)
    expect("getex persist", r.getex("s:gx", persist=True), "v")
    expect("ttl after persist", r.ttl("s:gx"), -1)
    expect("getex missing", r.getex("s:missing", ex=10), None)
    # Redis judges the time only once the key is found.
    expect("getex missing, bad time", r.getex("s:missing", px=0), None)
    expect(
        "getex bad time",
        error_of("getex bad time", lambda: r.getex("s:gx", px=0)),
        ("ResponseError", "invalid expire time in 'getex' command"),
    )
    expect("getset", r.getset("s:gs", "1"), None)
    expect("getset old", r.getset("s:gs", "2"), "1")
    expect("set bytes", r.set("s:bin", b"\xff\x00\xfe"), True)
    raw = connect(host, port, protocol, decode_responses=False)
    expect("get bytes", raw.get("s:bin"), b"\xff\x00\xfe")
    raw.close()


def counters(r):
    expect("incr new", r.incr("c:n"), 1)
    expect("incr", r.incr("c:n"), 2)
    expect("incrby", r.incrby("c:n", 10), 12)
    expect("decr", r.decr("c:n"), 11)
    expect("decrby", r.decrby("c:n", 5), 6)
    expect("incrby negative", r.incrby("c:n", -10), -4)
    expect("get counter", r.get("c:n"), "-4")
    expect("set then incr", (r.set("c:n", "100"), r.incr("c:n")), (True, 101))
    expect("incrbyfloat", r.incrbyfloat("c:f", 1.5), 1.5)
    expect("incrbyfloat again", r.incrbyfloat("c:f", "0.25"), 1.75)
    expect("incrbyfloat on int", r.incrbyfloat("c:n", 0.5), 101.5)
    r.set("c:bad", "abc")
    expect(
        "incr not an integer",
        error_of("incr not an integer", lambda: r.incr("c:bad")),
        ("ResponseError", "value is not an integer or out of range"),
    )
    expect(
        "incrbyfloat not a float",
        error_of("incrbyfloat not a float", lambda: r.incrbyfloat("c:bad", 1)),
        ("ResponseError", "value is not a valid float"),
    )
    r.set("c:max", str(2**63 - 1))
    expect(
        "incr overflow",
        error_of("incr overflow", lambda: r.incr("c:max")),
        ("ResponseError", "increment or decrement would overflow"),
    )
    r.set("c:ttl", "1", ex=100)
    r.incr("c:ttl")
    check("incr keeps ttl", 98 <= r.ttl("c:ttl") <= 100)


def expiry(r):
    r.set("e:k", "v")
    expect("ttl no expiry", r.ttl("e:k"), -1)
    expect("ttl missing", r.ttl("e:missing"), -2)
    expect("pttl missing", r.pttl("e:missing"), -2)
    expect("expire", r.expire("e:k", 100), True)
    check("ttl", 98 <= r.ttl("e:k") <= 100)
    expect("expire nx", r.expire("e:k", 200, nx=True), False)
    expect("expire gt", r.expire("e:k", 200, gt=True), True)
    expect("expire lt", r.expire("e:k", 300, lt=True), False)
    expect("pexpire", r.pexpire("e:k", 150000), True)
    check("pttl", 148000 <= r.pttl("e:k") <= 150000)
    at = int(time.time()) + 1000
    expect("expireat", r.expireat("e:k", at), True)
    check("expiretime", r.expiretime("e:k") == at)
    expect("persist", r.persist("e:k"), True)
    expect("persist again", r.persist("e:k"), False)
    expect("ttl after persist", r.ttl("e:k"), -1)
    expect("expire missing", r.expire("e:missing", 10), False)
    r.set("e:short", "v", px=1)
    deadline = time.monotonic() + 10
    while r.exists("e:short") and time.monotonic() < deadline:
        pass
    expect("expired key is gone", r.get("e:short"), None)
    expect(
        "set ex 0",
        error_of("set ex 0", lambda: r.set("e:k", "v", ex=0)),
        ("ResponseError", "invalid expire time in 'set' command"),
    )


def pipelines(host, port, protocol, r):
    pipe = r.pipeline(transaction=False)
    pipe.set("p:a", "1").incr("p:a").get("p:a").mget("p:a", "p:missing").delete("p:a")
    expect("pipeline", pipe.execute(), [True, 2, "2", ["2", None], 1])
    pipe = r.pipeline(transaction=True)
    pipe.set("p:t", "1").incr("p:t").incrby("p:t", 5).get("p:t").ttl("p:t")
    expect("transaction", pipe.execute(), [True, 2, 7, "7", -1])
    # Long ones, sent in one write: the server must answer every command
    # without waiting for more bytes.
    pipe = r.pipeline(transaction=True)
    for _ in range(5000):
        pipe.incr("p:long")
    counted = pipe.execute()
    expect("long transaction", (len(counted), counted[-1]), (5000, 5000))
    pipe = r.pipeline(transaction=False)
    for _ in range(5000):
        pipe.ping()
    expect("long pipeline of pings", all(pipe.execute()), True)
    # An error while running one command of the transaction: the others
    # still run, as in Redis, and redis-py raises on the first error.
    pipe = r.pipeline(transaction=True)
    pipe.set("p:x", "abc").incr("p:x").set("p:y", "after")
    got = pipe.execute(raise_on_error=False)
    show("transaction with a failing command", [type(v).__name__ for v in got])
    check("failing command's error", isinstance(got[1], ResponseError), got)
    expect("the rest ran", r.get("p:y"), "after")
    # A command refused while queued: EXEC is aborted.
    pipe = r.pipeline(transaction=True)
    pipe.set("p:z", "1").execute_command("SET", "p:z")
    try:
        pipe.execute()
        raise AssertionError("EXECABORT expected")
    except ResponseError as e:
        show("transaction refused", (type(e).__name__, str(e)))
        check("aborted", "wrong number of arguments" in str(e), e)
    expect("nothing ran", r.exists("p:z"), 0)
    # WATCH, then another connection writes the key: EXEC returns null and
    # redis-py raises WatchError.
    other = connect(host, port, protocol)
    r.set("p:w", "0")
    with r.pipeline() as pipe:
        pipe.watch("p:w")
        value = int(pipe.get("p:w"))
        other.set("p:w", "100")
        pipe.multi()
        pipe.set("p:w", value + 1)
        try:
            pipe.execute()
            raise AssertionError("WatchError expected")
        except WatchError:
            show("watch conflict", "WatchError")
    expect("the other write stands", r.get("p:w"), "100")
    # The same without a conflict commits.
    with r.pipeline() as pipe:
        pipe.watch("p:w")
        value = int(pipe.get("p:w"))
        pipe.multi()
        pipe.set("p:w", value + 1)
        expect("watch no conflict", pipe.execute(), [True])
    expect("committed", r.get("p:w"), "101")

    # The optimistic-lock helper applications use.
    def bump(pipe):
        value = int(pipe.get("p:w"))
        pipe.multi()
        pipe.set("p:w", value + 1)

    expect("transaction helper", r.transaction(bump, "p:w"), [True])
    expect("after helper", r.get("p:w"), "102")
    expect("unwatch", r.execute_command("UNWATCH"), True)
    # A watched key that expires before EXEC aborts it too (Redis 7): a
    # lock whose lease ran out must not commit.
    r.set("p:lease", "mine", px=50)
    with r.pipeline() as pipe:
        pipe.watch("p:lease")
        deadline = time.monotonic() + 10
        while pipe.get("p:lease") is not None and time.monotonic() < deadline:
            pass
        pipe.multi()
        pipe.set("p:done", "1")
        try:
            pipe.execute()
            raise AssertionError("WatchError expected")
        except WatchError:
            show("watched key expired", "WatchError")
    expect("nothing committed", r.get("p:done"), None)
    other.close()


def scanning(r):
    keys = {f"scan:{i}" for i in range(120)}
    r.mset({k: "v" for k in keys})
    r.mset({f"other:{i}": "v" for i in range(30)})
    found = list(r.scan_iter(match="scan:*", count=7))
    check("scan_iter returns every key", set(found) == keys, sorted(set(found) ^ keys))
    show("scan_iter count", len(set(found)))
    found = set(r.scan_iter(match="scan:1?", count=1000))
    expect("scan_iter match", sorted(found), sorted(f"scan:{i}" for i in range(10, 20)))
    cursor, batch = r.scan(0, match="nothing:*", count=10)
    check("scan cursor", isinstance(cursor, int), cursor)
    found = set(r.scan_iter(_type="string", match="other:*"))
    expect("scan_iter type", len(found), 30)
    expect("keys", sorted(r.keys("scan:11*")), ["scan:11", "scan:110", "scan:111", "scan:112", "scan:113", "scan:114", "scan:115", "scan:116", "scan:117", "scan:118", "scan:119"])
    check("randomkey", r.randomkey() is not None)


def databases(host, port, protocol, r):
    r1 = connect(host, port, protocol, db=1)
    expect("db1 flushdb", r1.flushdb(), True)
    r.set("db:k", "zero")
    r1.set("db:k", "one")
    expect("db0 value", r.get("db:k"), "zero")
    expect("db1 value", r1.get("db:k"), "one")
    expect("db1 dbsize", r1.dbsize(), 1)
    expect("move", (r1.set("db:m", "x"), r1.move("db:m", 0)), (True, True))
    expect("moved", (r.get("db:m"), r1.get("db:m")), ("x", None))
    expect("db1 flushdb again", r1.flushdb(), True)
    expect("db1 empty", r1.dbsize(), 0)
    expect("db0 kept", r.get("db:k"), "zero")
    with r1.pipeline(transaction=True) as pipe:
        pipe.set("db:t", "1").get("db:t")
        expect("db1 transaction", pipe.execute(), [True, "1"])
    expect("db1 transaction stayed in db1", r.exists("db:t"), 0)
    r1.close()
    expect(
        "select out of range",
        error_of("select out of range", lambda: r.execute_command("SELECT", 9999)),
        ("ResponseError", "DB index is out of range"),
    )


def server(r):
    seconds, micros = r.time()
    check("time", abs(seconds + micros / 1e6 - time.time()) < 5, (seconds, micros))
    r.flushdb()
    r.mset({"i:1": "a", "i:2": "b"})
    r.set("i:3", "c", ex=100)
    expect("dbsize", r.dbsize(), 3)
    # redis-py parses every line of every section; none may throw.
    for section in (None, "all", "everything", "server", "clients", "memory",
                    "persistence", "stats", "replication", "cpu", "errorstats",
                    "cluster", "keyspace", "commandstats", "latencystats"):
        info = r.info(section) if section else r.info()
        check(f"info {section or 'default'} parses", isinstance(info, dict), info)
    info = r.info()
    check("info redis_version", "redis_version" in info, info.keys())
    check("info connected_clients", int(info["connected_clients"]) >= 1)
    check("info used_memory", int(info["used_memory"]) > 0)
    expect("info keyspace db0 keys", info["db0"]["keys"], 3)
    expect("info keyspace db0 expires", info["db0"]["expires"], 1)
    expect("info section keyspace", r.info("keyspace")["db0"]["keys"], 3)
    expect("info role", (info["role"], info["connected_slaves"]), ("master", 0))
    expect("info replication", r.info("replication")["role"], "master")
    expect("role", r.role(), ["master", 0, []])
    stats = r.info("stats")
    check("info stats counts commands", int(stats["total_commands_processed"]) > 0)
    check("info commandstats", "cmdstat_set" in r.info("commandstats"))
    expect("config get databases", r.config_get("databases"), {"databases": "16"})
    policy = r.config_get("maxmemory-policy")
    expect("config get maxmemory-policy", policy, {"maxmemory-policy": "noeviction"})
    check("config get glob", "maxmemory" in r.config_get("maxmemory*"))
    check("command count", r.command_count() > 10)
    commands = r.command()
    expect("command get", (commands["get"]["arity"], commands["get"]["first_key_pos"]), (2, 1))
    expect("command set", commands["set"]["arity"], -3)
    expect(
        "unknown command",
        error_of("unknown command", lambda: r.execute_command("NOSUCHCOMMAND", "x")),
        ("ResponseError", "unknown command 'NOSUCHCOMMAND', with args beginning with: 'x' "),
    )
    expect(
        "wrong arity",
        error_of("wrong arity", lambda: r.execute_command("GET")),
        ("ResponseError", "wrong number of arguments for 'get' command"),
    )
    expect("flushdb", r.flushdb(), True)
    expect("dbsize after flushdb", r.dbsize(), 0)


def run(host, port, protocol):
    print(f"--- protocol {protocol or 'default'}", flush=True)
    r = connect(host, port, protocol)
    r.flushdb()
    startup(r, protocol)
    strings(host, port, protocol, r)
    counters(r)
    expiry(r)
    pipelines(host, port, protocol, r)
    scanning(r)
    databases(host, port, protocol, r)
    server(r)
    r.close()


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    host, port = sys.argv[1].rsplit(":", 1)
    print(f"redis-py {redis.__version__}", flush=True)
    for protocol in (None, 2, 3):
        run(host, int(port), protocol)
    print("ok", flush=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (AssertionError, redis.RedisError) as e:
        print(f"FAILED: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
