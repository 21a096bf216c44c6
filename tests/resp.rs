//! Redis clients against running nodes: a Redis client library, raw
//! sockets, redis-cli and redis-benchmark where the machine has them, and
//! `netdb --connect`.

mod common;

use common::resp::{encode_command, Reply};
use common::{
    cluster_with, dead_addr, debug_digest, eventually, missing_tool, netdb_command, raw, read_n,
    read_to_close, redis_cli, redis_connection, run, solo, Input, NodeSpec, FAST_SYNC_MS,
};
use redis::Commands;
use std::io::Write;
use std::process::Command;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

/// How long a client program (redis-cli, `netdb --connect` ...) may run.
const RUN: Duration = Duration::from_secs(60);

#[test]
fn a_set_on_one_node_is_read_on_another() {
    let nodes = cluster_with(2, FAST_SYNC_MS, &[], &["--no-cli"]);
    let mut a = redis_connection(nodes[0].addr());
    let mut b = redis_connection(nodes[1].addr());
    let () = a.set("greeting", "hello from n1").expect("set");
    eventually(WAIT, "the value to reach n2", || {
        b.get::<_, Option<String>>("greeting").expect("get") == Some("hello from n1".into())
    });
    // A delete through RESP replicates like any other write.
    let deleted: i64 = b.del("greeting").expect("del");
    assert_eq!(deleted, 1);
    eventually(WAIT, "the delete to reach n1", || {
        a.get::<_, Option<String>>("greeting")
            .expect("get")
            .is_none()
    });
    // INFO shows the peer and its sync state.
    let info: String = redis::cmd("INFO").arg("netdb").query(&mut a).expect("info");
    assert!(info.contains("peers:1\r\n"), "{info}");
    assert!(
        info.contains(&format!("peer0:addr={}", nodes[1].addr())),
        "{info}"
    );
    eventually(WAIT, "n1 to report n2 reachable", || {
        let info: String = redis::cmd("INFO").arg("netdb").query(&mut a).expect("info");
        info.contains("state=reachable")
    });
}

#[test]
fn binary_keys_and_values_with_every_byte_value() {
    let node = solo(&[]);
    let mut con = redis_connection(node.addr());
    let every: Vec<u8> = (0..=255).collect();
    let key: Vec<u8> = every.iter().rev().copied().collect();
    let () = con.set(&key, &every).expect("set");
    let got: Vec<u8> = con.get(&key).expect("get");
    assert_eq!(got, every);
    let () = con.set(b"empty", b"").expect("set empty");
    let both: Vec<Option<Vec<u8>>> = con.mget(&[&key[..], b"empty", b"none"]).expect("mget");
    assert_eq!(both, vec![Some(every.clone()), Some(Vec::new()), None]);
    let keys: Vec<Vec<u8>> = con.keys("*").expect("keys");
    assert_eq!(keys.len(), 2);
    assert!(keys.contains(&key));
}

#[test]
fn the_client_library_sees_redis_replies() {
    let node = solo(&[]);
    let mut con = redis_connection(node.addr());
    assert_eq!(
        redis::cmd("PING").query::<String>(&mut con).expect("ping"),
        "PONG"
    );
    let () = redis::cmd("MSET")
        .arg("user:1")
        .arg("a")
        .arg("user:2")
        .arg("b")
        .arg("other")
        .arg("c")
        .query(&mut con)
        .expect("mset");
    let n: i64 = con.exists(&["user:1", "user:2", "nope"]).expect("exists");
    assert_eq!(n, 2);
    let size: i64 = redis::cmd("DBSIZE").query(&mut con).expect("dbsize");
    assert_eq!(size, 3);
    let mut users: Vec<String> = con.keys("user:*").expect("keys");
    users.sort();
    assert_eq!(users, ["user:1", "user:2"]);
    let err = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .arg("EX")
        .arg("soon")
        .query::<()>(&mut con)
        .expect_err("EX soon");
    assert!(
        err.to_string()
            .contains("value is not an integer or out of range"),
        "{err}"
    );
    let err = redis::cmd("LPUSH")
        .arg("l")
        .arg("x")
        .query::<()>(&mut con)
        .expect_err("unknown");
    assert!(
        err.to_string()
            .contains("unknown command 'LPUSH', with args beginning with: 'l' 'x'"),
        "{err}"
    );
    let err = redis::cmd("GET").query::<()>(&mut con).expect_err("arity");
    assert!(
        err.to_string()
            .contains("wrong number of arguments for 'get' command"),
        "{err}"
    );
    // Database 1 is another keyspace; database 16 does not exist.
    let () = redis::cmd("SELECT")
        .arg(1)
        .query(&mut con)
        .expect("select 1");
    assert_eq!(con.get::<_, Option<String>>("other").expect("get"), None);
    let err = redis::cmd("SELECT")
        .arg(16)
        .query::<()>(&mut con)
        .expect_err("select 16");
    assert!(
        err.to_string().contains("DB index is out of range"),
        "{err}"
    );
    let () = redis::cmd("SELECT")
        .arg(0)
        .query(&mut con)
        .expect("select 0");
    let v: String = con.get("other").expect("get");
    assert_eq!(v, "c");
}

#[test]
fn scan_visits_every_key_while_keys_change() {
    let node = solo(&[]);
    let mut con = redis_connection(node.addr());
    let mut pipe = redis::pipe();
    for i in 0..2000 {
        pipe.cmd("SET").arg(format!("key:{i}")).arg(i).ignore();
    }
    let () = pipe.query(&mut con).expect("load");
    let mut writer = redis_connection(node.addr());
    let mut cursor = 0u64;
    let mut seen = std::collections::HashSet::new();
    let mut steps = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg("key:*")
            .arg("COUNT")
            .arg(50)
            .query(&mut con)
            .expect("scan");
        for k in keys {
            assert!(seen.insert(k), "a key returned twice");
        }
        // Other writes go on meanwhile: new keys, deletes of others.
        let () = writer
            .set(format!("new:{steps}"), steps)
            .expect("write meanwhile");
        let _: i64 = writer
            .del(format!("new:{}", steps / 2))
            .expect("delete meanwhile");
        steps += 1;
        if next == 0 {
            break;
        }
        cursor = next;
    }
    assert!(steps > 10, "{steps} steps");
    assert_eq!(seen.len(), 2000);
    // The library's own iterator agrees.
    let all: Vec<String> = con
        .scan_match::<_, String>("key:1*")
        .expect("scan")
        .map(|k| k.expect("key"))
        .collect();
    assert_eq!(all.len(), 1111);
}

#[test]
fn inline_commands_are_understood() {
    let node = solo(&[]);
    let mut s = raw(node.addr());
    s.write_all(b"PING\r\nSET k \"a b\"\r\nget k\nECHO 'x y'\r\nDEL k nope\r\n")
        .expect("write");
    let want = b"+PONG\r\n+OK\r\n$3\r\na b\r\n$3\r\nx y\r\n:1\r\n";
    assert_eq!(read_n(&mut s, want.len()), want);
}

#[test]
fn a_pipeline_gets_every_reply_in_order() {
    let node = solo(&[]);
    let mut s = raw(node.addr());
    let mut w = s.try_clone().expect("clone");
    let n = 20_000;
    let writer = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        for i in 0..n {
            let key = format!("k{i}");
            let value = format!("v{i}");
            encode_command(&[b"SET", key.as_bytes(), value.as_bytes()], &mut bytes);
            // Commands answered without the store, in between.
            encode_command(&[b"ECHO", key.as_bytes()], &mut bytes);
            encode_command(&[b"GET", key.as_bytes()], &mut bytes);
        }
        w.write_all(&bytes).expect("write pipeline");
    });
    let mut want = Vec::new();
    for i in 0..n {
        let key = format!("k{i}");
        let value = format!("v{i}");
        want.extend_from_slice(b"+OK\r\n");
        Reply::Bulk(key.into_bytes()).write_to(&mut want);
        Reply::Bulk(value.into_bytes()).write_to(&mut want);
    }
    let got = read_n(&mut s, want.len());
    writer.join().expect("writer");
    assert!(got == want, "replies differ or are out of order");
    // The same through the client library's pipeline.
    let mut con = redis_connection(node.addr());
    let mut pipe = redis::pipe();
    for i in 0..1000 {
        pipe.cmd("GET").arg(format!("k{i}"));
    }
    let values: Vec<String> = pipe.query(&mut con).expect("pipeline");
    assert_eq!(values.len(), 1000);
    assert_eq!(values[999], "v999");
}

/// A pipeline of thousands of commands that the store thread has no part
/// in (`PING`, and the `QUEUED` of a long `MULTI`, as node-redis sends a
/// 5,000-command `multi().exec()` in one write) is answered whole: each
/// batch of decoded requests is followed by the next without waiting for
/// more bytes from the client, which sends none until it has its replies.
#[test]
fn a_long_pipeline_answered_without_the_store_is_answered_whole() {
    let node = solo(&[]);
    let n = 5_000;
    let mut pings = Vec::new();
    for _ in 0..n {
        encode_command(&[b"PING"], &mut pings);
    }
    let mut s = raw(node.addr());
    s.write_all(&pings).expect("write the PINGs");
    let want = b"+PONG\r\n".repeat(n);
    assert!(read_n(&mut s, want.len()) == want, "every PONG, in order");

    let mut transaction = Vec::new();
    encode_command(&[b"MULTI"], &mut transaction);
    for _ in 0..n {
        encode_command(&[b"INCR", b"counter"], &mut transaction);
    }
    encode_command(&[b"EXEC"], &mut transaction);
    s.write_all(&transaction).expect("write the transaction");
    let mut want = b"+OK\r\n".to_vec();
    want.extend(b"+QUEUED\r\n".repeat(n));
    want.extend(format!("*{n}\r\n").bytes());
    for i in 1..=n {
        want.extend(format!(":{i}\r\n").bytes());
    }
    assert!(
        read_n(&mut s, want.len()) == want,
        "QUEUED n times, then EXEC's array"
    );
}

#[test]
fn malformed_input_closes_only_that_connection() {
    let mut node = solo(&[]);
    let mut good = redis_connection(node.addr());
    let () = good.set("k", "v").expect("set");
    let mut bad = raw(node.addr());
    // The good request before the bad bytes is answered first.
    bad.write_all(b"PING\r\n*1\r\nx3\r\nGET k\r\n")
        .expect("write");
    assert_eq!(
        read_to_close(&mut bad),
        b"+PONG\r\n-ERR Protocol error: expected '$', got 'x'\r\n"
    );
    let mut bad = raw(node.addr());
    bad.write_all(b"SET \"unclosed\r\n").expect("write");
    assert_eq!(
        read_to_close(&mut bad),
        b"-ERR Protocol error: unbalanced quotes in request\r\n"
    );
    let mut bad = raw(node.addr());
    bad.write_all(b"*1\r\n$999999999999\r\n").expect("write");
    assert_eq!(
        read_to_close(&mut bad),
        b"-ERR Protocol error: invalid bulk length\r\n"
    );
    assert!(node.is_running());
    let v: String = good.get("k").expect("the other connection goes on");
    assert_eq!(v, "v");
    let mut fresh = redis_connection(node.addr());
    let v: String = fresh.get("k").expect("new connections work");
    assert_eq!(v, "v");
    eventually(WAIT, "a log line for the bad client", || {
        node.stderr_lines()
            .iter()
            .any(|l| l.contains("protocol error"))
    });
}

#[test]
fn a_request_over_the_size_limit_is_refused() {
    let node = solo(&["--max-request-bytes", "1048576"]);
    let refused = |args: &[&[u8]], error: &str| {
        let mut s = raw(node.addr());
        let mut big = Vec::new();
        encode_command(args, &mut big);
        // The error comes from a header; the rest may never be read.
        let _ = s.write_all(&big);
        let got = read_to_close(&mut s);
        assert_eq!(got, format!("-ERR Protocol error: {error}\r\n").as_bytes());
    };
    let chunk = vec![b'x'; 600 * 1024];
    refused(&[b"SET", b"k", &vec![b'x'; 2 << 20]], "invalid bulk length");
    refused(
        &[b"MSET", b"a", &chunk, b"b", &chunk],
        "request over the limit of 1048576 bytes",
    );
    let mut con = redis_connection(node.addr());
    let () = con
        .set("small", &chunk)
        .expect("smaller requests still work");
}

#[test]
fn clients_over_the_limit_are_told_and_closed() {
    let node = solo(&["--max-clients", "2"]);
    let mut first = redis_connection(node.addr());
    let mut second = redis_connection(node.addr());
    let mut third = raw(node.addr());
    third.write_all(b"PING\r\n").expect("write");
    assert_eq!(
        read_to_close(&mut third),
        b"-ERR max number of clients reached\r\n"
    );
    let () = first.set("a", 1).expect("first still served");
    let () = second.set("b", 2).expect("second still served");
    drop(first);
    eventually(WAIT, "a free slot after a client left", || {
        let mut s = raw(node.addr());
        s.write_all(b"PING\r\n").expect("write");
        read_n(&mut s, 7) == b"+PONG\r\n"
    });
}

#[test]
fn idle_clients_are_closed() {
    let node = solo(&["--client-idle-timeout-secs", "1"]);
    let mut s = raw(node.addr());
    s.write_all(b"PING\r\n").expect("write");
    assert_eq!(read_n(&mut s, 7), b"+PONG\r\n");
    // Then silence: the node closes the connection on its own.
    assert_eq!(read_to_close(&mut s), b"");
    // And one that never says a word.
    let mut silent = raw(node.addr());
    assert_eq!(read_to_close(&mut silent), b"");
}

#[test]
fn redis_cli_works_and_pipes_100k_keys() {
    if missing_tool("redis-cli") {
        return;
    }
    let node = solo(&[]);
    let addr = node.addr();
    let cli = |args: &[&str]| redis_cli(addr, args);
    assert_eq!(cli(&["PING"]), "PONG\n");
    assert_eq!(cli(&["SET", "a key", "a value"]), "OK\n");
    assert_eq!(cli(&["GET", "a key"]), "a value\n");

    let mut script = Vec::new();
    for i in 0..100_000 {
        encode_command(
            &[
                b"SET",
                format!("bulk:{i}").as_bytes(),
                format!("value {i}").as_bytes(),
            ],
            &mut script,
        );
    }
    let out = run(
        Command::new("redis-cli").args([
            "-h",
            "127.0.0.1",
            "-p",
            &addr.port().to_string(),
            "--pipe",
        ]),
        Input::Bytes(script),
        RUN,
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("errors: 0, replies: 100000"), "{text}");
    assert_eq!(cli(&["DBSIZE"]), "100001\n");
    assert_eq!(cli(&["GET", "bulk:99999"]), "value 99999\n");
    let scanned = cli(&["--scan", "--pattern", "bulk:1234*"]);
    assert_eq!(scanned.lines().count(), 11, "{scanned}");
}

/// `printf 'SET a 1\nGET a\n' | redis-cli`: reading commands from stdin,
/// redis-cli first asks `COMMAND DOCS` and builds its help from the
/// answer without checking it; a malformed entry crashed it.
#[test]
fn redis_cli_reads_commands_from_stdin() {
    if missing_tool("redis-cli") {
        return;
    }
    let node = solo(&[]);
    let mut lines = String::new();
    for i in 0..50 {
        lines.push_str(&format!("SET piped:{i} v{i}\n"));
    }
    lines.push_str("INCR counter\nGET piped:49\nDBSIZE\n");
    let out = run(
        Command::new("redis-cli").args(["-h", "127.0.0.1", "-p", &node.addr().port().to_string()]),
        Input::Bytes(lines.into_bytes()),
        RUN,
    );
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success(),
        "redis-cli exited {:?}: {stderr}",
        out.status
    );
    let replies: Vec<&str> = stdout.lines().collect();
    let mut want = vec!["OK"; 50];
    want.extend(["1", "v49", "51"]);
    assert_eq!(replies, want, "{stderr}");
}

#[test]
fn redis_benchmark_runs_without_warnings() {
    if missing_tool("redis-benchmark") {
        return;
    }
    let node = solo(&[]);
    let out = run(
        Command::new("redis-benchmark")
            .args(["-h", "127.0.0.1", "-p", &node.addr().port().to_string()])
            .args(["-t", "ping,set,get,mset", "-n", "2000", "-c", "4", "-q"]),
        Input::Null,
        RUN,
    );
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(!stderr.contains("WARNING"), "{stderr}");
    assert!(!stdout.contains("WARNING"), "{stdout}");
    assert!(stdout.contains("SET: "), "{stdout}");
}

#[test]
fn the_connect_client_runs_a_piped_script() {
    let node = solo(&[]);
    let script = "put greeting hello world\n\
                  get greeting\n\
                  put \"two words\" \"a\\nb\"\n\
                  get \"two words\"\n\
                  keys\n\
                  # a comment\n\
                  \n\
                  get missing\n\
                  delete greeting\n\
                  get greeting\n\
                  bogus\n\
                  status\n\
                  quit\n\
                  get never-sent\n";
    let out = run(
        netdb_command().args(["--connect", &node.addr().to_string()]),
        Input::Bytes(script.into()),
        RUN,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let want = format!(
        "Value stored.\n\
         Value: hello world\n\
         Value stored.\n\
         Value: \"a\\nb\"\n\
         greeting\n\
         \"two words\"\n\
         Key not found.\n\
         Key deleted.\n\
         Key not found.\n\
         Error: unknown command 'bogus' (commands: put, get, delete, keys, status, sync, help, quit)\n\
         node solo listening on {}\n\
         keys: 1 live, 1 tombstones\n\
         peers: none\n\
         digest: {}\n\
         Goodbye!\n",
        node.addr(),
        debug_digest(&mut redis_connection(node.addr()))
    );
    assert_eq!(stdout, want);

    // Without a node to talk to: one line on stderr, a non-zero exit.
    let dead = dead_addr();
    let out = run(
        netdb_command().args(["--connect", &dead.to_string()]),
        Input::Null,
        RUN,
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(&format!("netdb: error: node {dead}: cannot connect: ")),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn the_connect_client_pipes_many_lines() {
    let node = solo(&[]);
    let mut script = String::new();
    for i in 0..20_000 {
        script.push_str(&format!("put k{i} value number {i}\n"));
    }
    for i in (0..20_000).step_by(1000) {
        script.push_str(&format!("get k{i}\n"));
    }
    let out = run(
        netdb_command().args(["--connect", &node.addr().to_string()]),
        Input::Bytes(script.into()),
        RUN,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 20_020);
    assert!(lines[..20_000].iter().all(|l| *l == "Value stored."));
    assert_eq!(lines[20_000], "Value: value number 0");
    assert_eq!(lines[20_019], "Value: value number 19000");
}

fn config_get(con: &mut redis::Connection, names: &[&str]) -> Vec<String> {
    redis::cmd("CONFIG")
        .arg("GET")
        .arg(names)
        .query(con)
        .expect("config get")
}

fn info(con: &mut redis::Connection, section: &str) -> String {
    redis::cmd("INFO").arg(section).query(con).expect("info")
}

#[test]
fn info_and_config_say_an_in_memory_node_keeps_nothing_on_disk() {
    let node = solo(&[]);
    let mut con = redis_connection(node.addr());
    let text = info(&mut con, "persistence");
    for line in ["aof_enabled:0", "netdb_persistence:in-memory", "loading:0"] {
        assert!(text.contains(&format!("{line}\r\n")), "{line}: {text}");
    }
    assert!(!text.contains("netdb_data_dir"), "{text}");
    assert_eq!(
        config_get(&mut con, &["appendonly", "appendfsync", "dir", "save"]),
        ["save", "", "appendonly", "no"]
    );
}

#[test]
fn info_and_config_say_a_node_with_a_data_dir_logs_to_it() {
    let dir = common::temp_dir();
    let node = NodeSpec::new("solo")
        .args(&["--no-cli"])
        .data_dir(dir.path())
        .fsync("always")
        .start();
    let dir = std::fs::canonicalize(dir.path()).expect("the data dir exists");
    let dir = dir.display().to_string();
    let mut con = redis_connection(node.addr());
    let text = info(&mut con, "persistence");
    for line in [
        "aof_enabled:1".to_string(),
        "aof_rewrite_in_progress:0".to_string(),
        "netdb_persistence:disk".to_string(),
        "netdb_appendfsync:always".to_string(),
        format!("netdb_data_dir:{dir}"),
    ] {
        assert!(text.contains(&format!("{line}\r\n")), "{line}: {text}");
    }
    assert_eq!(
        config_get(&mut con, &["appendonly", "appendfsync", "dir"]),
        ["appendonly", "yes", "appendfsync", "always", "dir", &dir]
    );
    // The same facts, for machines.
    let mut raw = raw(node.addr());
    let mut request = Vec::new();
    encode_command(&[b"NETDB.STATUS"], &mut request);
    raw.write_all(&request).expect("send");
    let mut got = Vec::new();
    let reply = loop {
        let mut buf = [0u8; 4096];
        let n = std::io::Read::read(&mut raw, &mut buf).expect("read");
        assert!(n > 0, "closed");
        got.extend_from_slice(&buf[..n]);
        if let Some((reply, _)) = common::resp::parse_reply(&got).expect("RESP") {
            break reply;
        }
    };
    let status = netdb::redis::cmd::netdb::decode_status(reply).expect("a status");
    assert_eq!(status.addr, node.addr().to_string());
    assert_eq!(
        status.persistence,
        Some(netdb::status::Persistence::Disk(
            netdb::status::DiskStatus {
                dir,
                fsync: netdb::durability::FsyncPolicy::Always,
                compaction: Some(netdb::status::CompactionStatus {
                    in_progress: false,
                    last: None,
                }),
                log: None,
            }
        ))
    );
    assert!(status.server.expect("server stats").connected_clients >= 2);
}
