//! The server commands against a real node, as Redis 7 answers them:
//! `TIME`, `SLOWLOG`, `WAIT`, `CONFIG GET`/`RESETSTAT`, `COMMAND
//! GETKEYS`/`LIST`, and `INFO`'s stats, memory, `commandstats`,
//! `errorstats` and `latencystats`; through the `redis` crate and, where the machine has it,
//! redis-cli.

mod common;

use common::{
    cluster_with, dead_addr, info_field, missing_tool, redis_cli, redis_connection, solo,
    FAST_SYNC_MS,
};
use redis::{Commands, Value};
use std::io::{Read, Write};
use std::time::{Duration, SystemTime};

fn info(con: &mut redis::Connection, sections: &[&str]) -> String {
    redis::cmd("INFO").arg(sections).query(con).expect("INFO")
}

fn number(con: &mut redis::Connection, section: &str, name: &str) -> u64 {
    info_field(con, section, name)
        .unwrap_or_else(|| panic!("{name} in INFO {section}"))
        .parse()
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn bulk_text(v: &Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        other => panic!("a bulk string, not {other:?}"),
    }
}

#[test]
fn time_answers_the_wall_clock_in_seconds_and_microseconds() {
    let node = solo(&[]);
    let mut con = redis_connection(node.addr());
    let (secs, micros): (u64, u64) = redis::cmd("TIME").query(&mut con).expect("TIME");
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    assert!(secs.abs_diff(now) < 60, "{secs} vs {now}");
    assert!(micros < 1_000_000);
    let e = redis::cmd("TIME")
        .arg("x")
        .query::<Value>(&mut con)
        .expect_err("arity");
    assert!(e
        .to_string()
        .contains("wrong number of arguments for 'time'"));
}

#[test]
fn the_slow_log_keeps_what_redis_keeps() {
    let node = solo(&["--slowlog-log-slower-than", "0", "--slowlog-max-len", "3"]);
    let mut con = redis_connection(node.addr());
    let config: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("slowlog-*")
        .query(&mut con)
        .expect("CONFIG GET");
    assert_eq!(
        config,
        ["slowlog-log-slower-than", "0", "slowlog-max-len", "3"]
    );
    let () = redis::cmd("CLIENT")
        .arg("SETNAME")
        .arg("worker")
        .query(&mut con)
        .expect("setname");
    let long = "x".repeat(200);
    let () = con.set("k", &long).expect("set");
    let _: Option<String> = con.get("k").expect("get");
    let entries: Vec<Value> = redis::cmd("SLOWLOG")
        .arg("GET")
        .query(&mut con)
        .expect("SLOWLOG GET");
    assert_eq!(entries.len(), 3, "--slowlog-max-len 3: {entries:?}");
    let Value::Array(newest) = &entries[0] else {
        panic!("an entry: {:?}", entries[0])
    };
    assert_eq!(newest.len(), 6, "{newest:?}");
    let Value::Int(first_id) = newest[0] else {
        panic!("an id")
    };
    assert!(matches!(newest[1], Value::Int(t) if t > 1_600_000_000));
    assert!(matches!(newest[2], Value::Int(us) if us >= 0));
    let Value::Array(args) = &newest[3] else {
        panic!("arguments")
    };
    assert_eq!(args.iter().map(bulk_text).collect::<Vec<_>>(), ["GET", "k"]);
    assert!(bulk_text(&newest[4]).starts_with("127.0.0.1:"));
    assert_eq!(bulk_text(&newest[5]), "worker");
    let Value::Array(set) = &entries[1] else {
        panic!("an entry")
    };
    let Value::Array(args) = &set[3] else {
        panic!("arguments")
    };
    assert_eq!(
        bulk_text(&args[2]),
        format!("{}... (72 more bytes)", "x".repeat(128))
    );
    assert!(matches!(set[0], Value::Int(id) if id == first_id - 1));

    let len: i64 = redis::cmd("SLOWLOG")
        .arg("LEN")
        .query(&mut con)
        .expect("LEN");
    assert_eq!(len, 3);
    let () = redis::cmd("SLOWLOG")
        .arg("RESET")
        .query(&mut con)
        .expect("RESET");
    // The reset is itself logged once it has run, as in Redis.
    let len: i64 = redis::cmd("SLOWLOG")
        .arg("LEN")
        .query(&mut con)
        .expect("LEN");
    assert_eq!(len, 1);
    let one: Vec<Value> = redis::cmd("SLOWLOG")
        .arg("GET")
        .arg(1)
        .query(&mut con)
        .expect("GET 1");
    assert_eq!(one.len(), 1);
    let e = redis::cmd("SLOWLOG")
        .arg("GET")
        .arg(-2)
        .query::<Value>(&mut con)
        .expect_err("count below -1");
    assert!(e
        .to_string()
        .contains("count should be greater than or equal to -1"));
}

#[test]
fn the_slow_log_is_off_below_zero_and_quiet_by_default() {
    let off = solo(&["--slowlog-log-slower-than", "-1"]);
    let mut con = redis_connection(off.addr());
    let () = con.set("k", "v").expect("set");
    let len: i64 = redis::cmd("SLOWLOG")
        .arg("LEN")
        .query(&mut con)
        .expect("LEN");
    assert_eq!(len, 0);
    let by_default = solo(&[]);
    let mut con = redis_connection(by_default.addr());
    let config: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("slowlog-*")
        .query(&mut con)
        .expect("CONFIG GET");
    assert_eq!(
        config,
        ["slowlog-log-slower-than", "10000", "slowlog-max-len", "128"]
    );
}

#[test]
fn info_counts_commands_errors_hits_and_bytes() {
    let node = solo(&[]);
    let mut con = redis_connection(node.addr());
    let _: Option<String> = con.get("missing").expect("get");
    let () = con.set("k", "v").expect("set");
    let _: Option<String> = con.get("k").expect("get");
    let _ = redis::cmd("GET")
        .query::<Value>(&mut con)
        .expect_err("arity");
    let _ = redis::cmd("INCR")
        .arg("k")
        .query::<Value>(&mut con)
        .expect_err("not a number");
    let _ = redis::cmd("NOPE")
        .query::<Value>(&mut con)
        .expect_err("unknown");

    let stats = info(&mut con, &["commandstats"]);
    assert!(stats.starts_with("# Commandstats\r\n"), "{stats}");
    let line = |name: &str| {
        stats
            .lines()
            .find_map(|l| l.strip_prefix(&format!("cmdstat_{name}:")))
            .unwrap_or_else(|| panic!("cmdstat_{name}: {stats}"))
            .to_owned()
    };
    let get = line("get");
    assert!(get.starts_with("calls=2,usec="), "{get}");
    assert!(get.ends_with(",rejected_calls=1,failed_calls=0"), "{get}");
    assert!(get.contains(",usec_per_call="), "{get}");
    assert!(line("incr").ends_with("rejected_calls=0,failed_calls=1"));
    assert!(line("set").starts_with("calls=1,"));

    let errors = info(&mut con, &["errorstats"]);
    assert_eq!(errors, "# Errorstats\r\nerrorstat_ERR:count=3\r\n");

    assert_eq!(number(&mut con, "stats", "keyspace_hits"), 1);
    assert_eq!(number(&mut con, "stats", "keyspace_misses"), 1);
    assert!(number(&mut con, "stats", "total_commands_processed") >= 8);
    assert!(number(&mut con, "stats", "total_net_input_bytes") > 50);
    assert!(number(&mut con, "stats", "total_net_output_bytes") > 50);
    assert!(number(&mut con, "stats", "total_connections_received") >= 1);
    info_field(&mut con, "stats", "instantaneous_ops_per_sec").expect("the rate");

    // As in Redis 7: errorstats is in the default INFO, commandstats only
    // in all, everything, or by name.
    let default = info(&mut con, &[]);
    assert!(default.contains("# Errorstats\r\n"));
    assert!(!default.contains("# Commandstats"));
    let all = info(&mut con, &["all"]);
    assert!(all.contains("# Commandstats\r\n") && all.contains("# Netdb\r\n"));

    let () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query(&mut con)
        .expect("RESETSTAT");
    let stats = info(&mut con, &["commandstats", "errorstats"]);
    let lines: Vec<&str> = stats.lines().collect();
    assert_eq!(lines.len(), 4, "{stats}");
    assert_eq!(lines[0], "# Commandstats");
    assert!(
        lines[1].starts_with("cmdstat_config|resetstat:calls=1,")
            && lines[1].ends_with(",rejected_calls=0,failed_calls=0"),
        "only the reset itself since: {stats}"
    );
    assert_eq!(lines[2..], ["", "# Errorstats"]);
    assert_eq!(number(&mut con, "stats", "keyspace_hits"), 0);
}

#[test]
fn a_transactions_commands_are_counted_and_timed_one_by_one() {
    let node = solo(&[]);
    let mut con = redis_connection(node.addr());
    // Raw RESP: the redis crate turns an EXEC with an error in it into
    // an error.
    let mut raw = std::net::TcpStream::connect(node.addr()).expect("connect");
    raw.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    raw.write_all(b"SET word hello\r\nMULTI\r\nINCR n\r\nINCR word\r\nGET n\r\nEXEC\r\n")
        .expect("write");
    let want = "+OK\r\n+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n\
                *3\r\n:1\r\n-ERR value is not an integer or out of range\r\n$1\r\n1\r\n";
    let mut got = vec![0; want.len()];
    raw.read_exact(&mut got).expect("the replies");
    assert_eq!(String::from_utf8_lossy(&got), want);

    let stats = info(&mut con, &["commandstats"]);
    let line = |name: &str| {
        stats
            .lines()
            .find_map(|l| l.strip_prefix(&format!("cmdstat_{name}:")))
            .unwrap_or_else(|| panic!("cmdstat_{name}: {stats}"))
            .to_owned()
    };
    // As in Redis 7: EXEC counts, and so does each command it ran.
    assert!(line("exec").starts_with("calls=1,"), "{stats}");
    assert!(line("multi").starts_with("calls=1,"), "{stats}");
    assert!(line("get").starts_with("calls=1,"), "{stats}");
    let incr = line("incr");
    assert!(incr.starts_with("calls=2,"), "{incr}");
    assert!(incr.ends_with(",rejected_calls=0,failed_calls=1"), "{incr}");
    assert_eq!(
        info(&mut con, &["errorstats"]),
        "# Errorstats\r\nerrorstat_ERR:count=1\r\n"
    );

    // Redis 7's latencystats: each command that ran, at p50, p99, p99.9.
    let latency = info(&mut con, &["latencystats"]);
    assert!(latency.starts_with("# Latencystats\r\n"), "{latency}");
    let mut names = Vec::new();
    for line in latency.lines().skip(1) {
        let (name, values) = line
            .strip_prefix("latency_percentiles_usec_")
            .and_then(|l| l.split_once(':'))
            .unwrap_or_else(|| panic!("a latency line: {line}"));
        names.push(name.to_owned());
        let values: Vec<(&str, f64)> = values
            .split(',')
            .map(|v| {
                let (p, us) = v.split_once('=').expect("p=value");
                let (_, decimals) = us.split_once('.').expect("three decimals");
                assert_eq!(decimals.len(), 3, "{line}");
                (p, us.parse().expect("microseconds"))
            })
            .collect();
        let percentiles: Vec<&str> = values.iter().map(|(p, _)| *p).collect();
        assert_eq!(percentiles, ["p50", "p99", "p99.9"], "{line}");
        assert!(
            values[0].1 <= values[1].1 && values[1].1 <= values[2].1,
            "{line}"
        );
    }
    for name in ["exec", "get", "incr", "multi", "set"] {
        assert!(names.iter().any(|n| n == name), "{name}: {latency}");
    }
    assert!(
        !info(&mut con, &[]).contains("# Latencystats"),
        "not a default section"
    );

    let () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query(&mut con)
        .expect("RESETSTAT");
    let latency = info(&mut con, &["latencystats"]);
    let lines: Vec<&str> = latency.lines().collect();
    assert_eq!(lines.len(), 2, "only the reset since: {latency}");
    assert!(lines[1].starts_with("latency_percentiles_usec_config|resetstat:p50="));
}

#[test]
fn info_memory_has_redis_fields() {
    let node = solo(&[]);
    let mut con = redis_connection(node.addr());
    let used = number(&mut con, "memory", "used_memory");
    let rss = number(&mut con, "memory", "used_memory_rss");
    let peak = number(&mut con, "memory", "used_memory_peak");
    assert!(used > 0 && rss > 0);
    assert!(peak >= used, "{peak} < {used}");
    // used_memory is what the allocator handed out, as in Redis: below
    // the resident set (which also holds the code, the stacks and the
    // allocator's own pages), and it grows by at least the data written.
    assert!(
        used < rss,
        "used_memory {used} not below used_memory_rss {rss}"
    );
    let value = "v".repeat(1000);
    let mut pipe = redis::pipe();
    for i in 0..10_000 {
        pipe.cmd("SET").arg(format!("key{i}")).arg(&value).ignore();
    }
    let () = pipe.query(&mut con).expect("SETs");
    let grown = number(&mut con, "memory", "used_memory");
    assert!(
        grown >= used + 10_000 * 1000,
        "used_memory {used} then {grown} after 10 MB of values"
    );
    let memory = info(&mut con, &["memory"]);
    for field in [
        "used_memory_human:",
        "used_memory_rss_human:",
        "used_memory_peak_human:",
        "mem_fragmentation_ratio:",
        "maxmemory:0\r\n",
        "maxmemory_human:0B\r\n",
        "maxmemory_policy:noeviction\r\n",
    ] {
        assert!(memory.contains(field), "{field}: {memory}");
    }
}

/// `WAIT replicas timeout_ms` on `con`: its answer and how long it took.
fn wait(con: &mut redis::Connection, replicas: i64, timeout_ms: u64) -> (i64, Duration) {
    let start = std::time::Instant::now();
    let n: i64 = redis::cmd("WAIT")
        .arg(replicas)
        .arg(timeout_ms)
        .query(con)
        .expect("WAIT");
    (n, start.elapsed())
}

#[test]
fn wait_never_claims_a_peer_that_has_not_acknowledged() {
    let alone = solo(&[]);
    let mut con = redis_connection(alone.addr());
    let () = con.set("k", "v").expect("set");
    assert_eq!(wait(&mut con, 0, 0).0, 0, "none asked for: at once");
    // One asked for, none there: it blocks until its timeout, as Redis's.
    let (n, took) = wait(&mut con, 1, 200);
    assert_eq!(n, 0, "no peers");
    assert!(
        took >= Duration::from_millis(200),
        "answered after {took:?}"
    );
    let e = redis::cmd("WAIT")
        .arg(0)
        .arg(-1)
        .query::<Value>(&mut con)
        .expect_err("negative timeout");
    assert!(e.to_string().contains("timeout is negative"));

    // A node whose one peer never answers: nothing is acknowledged.
    let lonely = cluster_with(1, FAST_SYNC_MS, &[dead_addr()], &["--no-cli"]);
    let mut con = redis_connection(lonely[0].addr());
    let () = con.set("k", "v").expect("set");
    let (n, took) = wait(&mut con, 1, 300);
    assert_eq!(n, 0);
    assert!(
        took >= Duration::from_millis(300),
        "answered after {took:?}"
    );
}

#[test]
fn wait_blocks_until_a_peer_has_acknowledged_the_write() {
    let nodes = cluster_with(2, FAST_SYNC_MS, &[], &["--no-cli"]);
    let mut a = redis_connection(nodes[0].addr());
    let mut b = redis_connection(nodes[1].addr());
    let () = a.set("k", "v").expect("set");
    // One call: it answers once the peer has acknowledged the write.
    let (n, _) = wait(&mut a, 1, 20_000);
    assert_eq!(n, 1);
    assert_eq!(
        b.get::<_, Option<String>>("k").expect("GET"),
        Some("v".into())
    );
    // Pipelined: the commands after a WAIT run after it, in order.
    let (set, acked, got): ((), i64, String) = redis::pipe()
        .set("k2", "v2")
        .cmd("WAIT")
        .arg(1)
        .arg(20_000)
        .get("k2")
        .query(&mut a)
        .expect("pipeline");
    let () = set;
    assert_eq!((acked, got.as_str()), (1, "v2"));
    assert_eq!(
        b.get::<_, Option<String>>("k2").expect("GET"),
        Some("v2".into())
    );
}

#[test]
fn redis_cli_reads_the_server_commands() {
    if missing_tool("redis-cli") {
        return;
    }
    let node = solo(&["--slowlog-log-slower-than", "0"]);
    let addr = node.addr();
    assert_eq!(
        redis_cli(addr, &["COMMAND", "GETKEYS", "MSET", "a", "1", "b", "2"]),
        "a\nb\n"
    );
    assert_eq!(
        redis_cli(addr, &["COMMAND", "GETKEYS", "PING", "x"]),
        "ERR The command has no key arguments\n\n"
    );
    let list = redis_cli(
        addr,
        &["COMMAND", "LIST", "FILTERBY", "PATTERN", "slowlog*"],
    );
    let mut names: Vec<&str> = list.lines().collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "slowlog",
            "slowlog|get",
            "slowlog|help",
            "slowlog|len",
            "slowlog|reset"
        ]
    );
    let time = redis_cli(addr, &["-3", "TIME"]);
    assert_eq!(time.lines().count(), 2, "{time}");
    let log = redis_cli(addr, &["SLOWLOG", "GET", "1"]);
    assert!(log.contains("TIME"), "{log}");
    let info = redis_cli(addr, &["-3", "INFO", "errorstats"]);
    assert!(info.contains("errorstat_ERR:count=1"), "{info}");
}

#[test]
fn wait_counts_this_clients_writes_not_those_other_clients_make_after_it() {
    let nodes = cluster_with(2, FAST_SYNC_MS, &[], &["--no-cli"]);
    let mut a = redis_connection(nodes[0].addr());
    let mut busy = redis_connection(nodes[0].addr());
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Another client writes without pause the whole time.
    let writer = {
        let stop = std::sync::Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let () = busy.set(format!("busy{}", i % 100), i).expect("SET");
                i += 1;
            }
        })
    };
    let () = a.set("mine", "v").expect("set");
    let (n, _) = wait(&mut a, 1, 20_000);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().expect("the writer");
    assert_eq!(n, 1, "the peer has this client's write");
}
