//! What an application written for Redis needs of a node, against the real
//! binary: RESP3 (`HELLO 3` and its reply types), client passwords,
//! transactions (`MULTI`/`EXEC`, `WATCH`), the string commands and
//! counters, and the tools' `TYPE`, `MEMORY USAGE` and `INFO memory`;
//! through the `redis` crate in RESP2 and RESP3, raw sockets (for the
//! exact bytes), redis-cli and redis-benchmark where the machine has them,
//! and `netdb --connect`.

mod common;

use common::resp::{parse_reply, Reply};
use common::{
    cluster_with, eventually, missing_tool, netdb_command, raw, read_n, redis_cli,
    redis_connection, run, solo, temp_dir, Input, Process, Stream, FAST_SYNC_MS, RESP_TIMEOUT,
};
use redis::{Commands, Value};
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

/// How long a client program (redis-cli, `netdb --connect` ...) may run.
const RUN: Duration = Duration::from_secs(60);

/// A `redis` crate connection to `addr` with these URL settings
/// (`?protocol=resp3`, a password), or the error connecting.
fn connect(url: &str) -> redis::RedisResult<redis::Connection> {
    let con = redis::Client::open(url)?.get_connection_with_timeout(RESP_TIMEOUT)?;
    con.set_read_timeout(Some(RESP_TIMEOUT))?;
    Ok(con)
}

fn resp3(addr: SocketAddr) -> redis::Connection {
    connect(&format!("redis://{addr}/?protocol=resp3")).expect("a RESP3 connection")
}

/// Sends `request` on a fresh socket and reads exactly the bytes `want`
/// has (so a longer or shorter answer fails too).
fn exchange(addr: SocketAddr, request: &[u8], want: &[u8]) {
    let mut s = raw(addr);
    s.write_all(request).expect("write");
    let got = read_n(&mut s, want.len());
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(want),
        "for {:?}",
        String::from_utf8_lossy(request)
    );
}

/// Reads one whole reply from `s`, keeping what follows it in `buf`: the
/// reply and its bytes.
fn read_reply(s: &mut TcpStream, buf: &mut Vec<u8>) -> (Reply, Vec<u8>) {
    loop {
        match parse_reply(buf) {
            Ok(Some((reply, used))) => {
                let bytes = buf.drain(..used).collect();
                return (reply, bytes);
            }
            Ok(None) => buf.extend(read_n(s, 1)),
            Err(e) => panic!("not RESP: {e}: {:?}", String::from_utf8_lossy(buf)),
        }
    }
}

/// `HELLO`'s reply to connection `id` in `proto` (2 or 3), as Redis 7
/// sends it.
fn hello_bytes(id: i64, proto: u8) -> String {
    let head = if proto == 3 { "%7" } else { "*14" };
    format!(
        "{head}\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$5\r\n7.0.0\r\n\
         $5\r\nproto\r\n:{proto}\r\n$2\r\nid\r\n:{id}\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n\
         $4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n"
    )
}

#[test]
fn hello_3_switches_the_connection_to_resp3_bytes() {
    let node = solo(&[]);
    let mut s = raw(node.addr());
    let mut buf = Vec::new();
    s.write_all(b"CLIENT ID\r\n").expect("write");
    let (Reply::Integer(id), _) = read_reply(&mut s, &mut buf) else {
        panic!("an id")
    };
    // One pipelined batch: each reply in the protocol its own command
    // left the connection in.
    s.write_all(
        b"HELLO 3\r\nGET nope\r\nCONFIG GET databases\r\nMGET a b\r\nINFO server\r\n\
          COMMAND INFO get nope\r\nHELLO 2\r\nGET nope\r\nHELLO 4\r\n",
    )
    .expect("write");
    let mut next = || String::from_utf8_lossy(&read_reply(&mut s, &mut buf).1).into_owned();
    assert_eq!(next(), hello_bytes(id, 3));
    // Nulls, maps, sets and verbatim text are RESP3's from then on ...
    assert_eq!(next(), "_\r\n");
    assert_eq!(next(), "%1\r\n$9\r\ndatabases\r\n$2\r\n16\r\n");
    assert_eq!(next(), "*2\r\n_\r\n_\r\n");
    let info = next();
    assert!(
        info.starts_with('=') && info.contains("\r\ntxt:# Server\r\n"),
        "{info}"
    );
    let command = next();
    assert!(
        command.starts_with("*2\r\n*10\r\n$3\r\nget\r\n:2\r\n~2\r\n+readonly\r\n+fast\r\n")
            && command.ends_with("~0\r\n~0\r\n~0\r\n_\r\n"),
        "{command}"
    );
    // ... until HELLO 2, whose own reply is RESP2's flat array.
    assert_eq!(next(), hello_bytes(id, 2));
    assert_eq!(next(), "$-1\r\n");
    assert_eq!(next(), "-NOPROTO unsupported protocol version\r\n");
}

#[test]
fn the_client_library_speaks_resp3() {
    let node = solo(&[]);
    let mut con = resp3(node.addr());
    let hello: Value = redis::cmd("HELLO").arg("3").query(&mut con).expect("hello");
    let Value::Map(fields) = hello else {
        panic!("a map: {hello:?}")
    };
    assert!(fields.contains(&(Value::BulkString(b"proto".to_vec()), Value::Int(3))));
    let () = con.set("k", "v").expect("set");
    assert_eq!(
        con.get::<_, Option<String>>("k").expect("get"),
        Some("v".into())
    );
    let missing: Value = redis::cmd("GET").arg("nope").query(&mut con).expect("get");
    assert_eq!(missing, Value::Nil);
    let config: Value = redis::cmd("CONFIG")
        .arg("GET")
        .arg("databases")
        .query(&mut con)
        .expect("config get");
    assert_eq!(
        config,
        Value::Map(vec![(
            Value::BulkString(b"databases".to_vec()),
            Value::BulkString(b"16".to_vec())
        )])
    );
    let info: Value = redis::cmd("INFO")
        .arg("server")
        .query(&mut con)
        .expect("info");
    assert!(
        matches!(&info, Value::VerbatimString { text, .. } if text.starts_with("# Server")),
        "{info:?}"
    );
    // Typed reads still work on RESP3 types.
    let info: String = redis::cmd("INFO")
        .arg("server")
        .query(&mut con)
        .expect("info");
    assert!(info.contains("redis_version:7.0.0"), "{info}");
    let docs: Value = redis::cmd("COMMAND")
        .arg("DOCS")
        .arg("get")
        .query(&mut con)
        .expect("docs");
    let Value::Map(docs) = docs else {
        panic!("a map of docs: {docs:?}")
    };
    assert!(matches!(&docs[..], [(Value::BulkString(name), Value::Map(_))] if name == b"get"));
    let counter: i64 = con.incr("n", 5).expect("incr");
    assert_eq!(counter, 5);
}

#[test]
fn redis_cli_dash_3_reads_the_replies() {
    if missing_tool("redis-cli") {
        return;
    }
    let node = solo(&[]);
    let addr = node.addr();
    assert_eq!(
        redis_cli(addr, &["-3", "--no-raw", "CONFIG", "GET", "databases"]),
        "1# \"databases\" => \"16\"\n"
    );
    assert_eq!(
        redis_cli(addr, &["-3", "--no-raw", "GET", "nope"]),
        "(nil)\n"
    );
    let hello = redis_cli(addr, &["-3", "--no-raw", "HELLO", "3"]);
    assert!(hello.contains("3# \"proto\" => (integer) 3"), "{hello}");
    let info = redis_cli(addr, &["-3", "INFO", "server"]);
    assert!(info.starts_with("# Server"), "{info}");
    let flags = redis_cli(addr, &["-3", "--no-raw", "COMMAND", "INFO", "get"]);
    assert!(flags.contains("1~ readonly"), "{flags}");
    // And RESP2, where a map is a flat list.
    assert_eq!(
        redis_cli(addr, &["--no-raw", "CONFIG", "GET", "databases"]),
        "1) \"databases\"\n2) \"16\"\n"
    );
}

#[test]
fn a_client_password_keeps_everything_out_until_auth() {
    let dir = temp_dir();
    let file = dir.path().join("client-password");
    std::fs::write(&file, "  s3cret-pass \n").expect("password file");
    let node = solo(&["--requirepass-file", file.to_str().expect("utf-8 path")]);
    let addr = node.addr();
    exchange(
        addr,
        b"GET k\r\nPING\r\nAUTH wrong\r\nAUTH admin s3cret-pass\r\nHELLO 3\r\nAUTH s3cret-pass\r\nPING\r\n",
        b"-NOAUTH Authentication required.\r\n\
          -NOAUTH Authentication required.\r\n\
          -WRONGPASS invalid username-password pair or user is disabled.\r\n\
          -WRONGPASS invalid username-password pair or user is disabled.\r\n\
          -NOAUTH HELLO must be called with the client already authenticated, otherwise the \
          HELLO AUTH <user> <pass> option can be used to authenticate the client and select \
          the RESP protocol version at the same time\r\n\
          +OK\r\n+PONG\r\n",
    );
    // The library authenticates from the URL, in RESP2 and in RESP3.
    let mut con = connect(&format!("redis://:s3cret-pass@{addr}/")).expect("RESP2 with AUTH");
    let () = con.set("k", "v").expect("set");
    let mut con3 = connect(&format!(
        "redis://default:s3cret-pass@{addr}/?protocol=resp3"
    ))
    .expect("HELLO AUTH");
    assert_eq!(con3.get::<_, String>("k").expect("get"), "v");
    let refused = connect(&format!("redis://:guess@{addr}/?protocol=resp3"))
        .err()
        .expect("a wrong password is refused");
    assert!(refused.to_string().contains("WRONGPASS"), "{refused}");
    // Failed attempts are counted, as Redis counts them.
    let info: String = redis::cmd("INFO")
        .arg("stats")
        .query(&mut con)
        .expect("info");
    assert!(info.contains("acl_access_denied_auth:3\r\n"), "{info}");
    // An authenticated client may read it, as in Redis.
    let shown: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("requirepass")
        .query(&mut con)
        .expect("config get");
    assert_eq!(shown, ["requirepass", "s3cret-pass"]);
    // The password is never in the log.
    assert!(
        node.stderr_lines().iter().all(|l| !l.contains("s3cret")),
        "{:?}",
        node.stderr_lines()
    );
    if !missing_tool("redis-cli") {
        assert_eq!(
            redis_cli(
                addr,
                &["--no-auth-warning", "-a", "s3cret-pass", "GET", "k"]
            ),
            "v\n"
        );
        assert_eq!(
            redis_cli(
                addr,
                &["--no-auth-warning", "-3", "-a", "s3cret-pass", "GET", "k"]
            ),
            "v\n"
        );
    }
}

#[test]
fn netdb_connect_sends_the_password_first() {
    let node = solo(&["--requirepass", "pw-for-connect"]);
    let addr = node.addr().to_string();
    let script = "put a 1\nget a\nquit\n";
    let from_env = run(
        netdb_command()
            .args(["--connect", &addr])
            .env("NETDB_PASSWORD", "pw-for-connect"),
        Input::Bytes(script.into()),
        RUN,
    );
    let stdout = String::from_utf8_lossy(&from_env.stdout);
    assert!(from_env.status.success(), "{stdout}");
    assert_eq!(stdout, "Value stored.\nValue: 1\nGoodbye!\n");
    let from_flag = run(
        netdb_command()
            .args(["--connect", &addr, "--password", "pw-for-connect"])
            .env_remove("NETDB_PASSWORD"),
        Input::Bytes("get a\n".into()),
        RUN,
    );
    assert_eq!(String::from_utf8_lossy(&from_flag.stdout), "Value: 1\n");
    let wrong = run(
        netdb_command()
            .args(["--connect", &addr, "--password", "nope"])
            .env_remove("NETDB_PASSWORD"),
        Input::Bytes("get a\n".into()),
        RUN,
    );
    let stderr = String::from_utf8_lossy(&wrong.stderr);
    assert!(!wrong.status.success());
    assert!(stderr.contains("AUTH refused: WRONGPASS"), "{stderr}");
    let none = run(
        netdb_command()
            .args(["--connect", &addr])
            .env_remove("NETDB_PASSWORD"),
        Input::Bytes("get a\n".into()),
        RUN,
    );
    assert_eq!(
        String::from_utf8_lossy(&none.stdout),
        "Error: NOAUTH Authentication required.\n"
    );
}

#[test]
fn transactions_run_whole_and_answer_as_redis_does() {
    let node = solo(&[]);
    let addr = node.addr();
    let mut con = redis_connection(addr);
    // The crate's atomic pipeline: MULTI, the commands, EXEC.
    let (set, n, value): (String, i64, String) = redis::pipe()
        .atomic()
        .cmd("SET")
        .arg("k")
        .arg("1")
        .cmd("INCRBY")
        .arg("k")
        .arg(41)
        .cmd("GET")
        .arg("k")
        .query(&mut con)
        .expect("an atomic pipeline");
    assert_eq!((set.as_str(), n, value.as_str()), ("OK", 42, "42"));
    let mut con3 = resp3(addr);
    let (n,): (i64,) = redis::pipe()
        .atomic()
        .incr("k", 1)
        .query(&mut con3)
        .expect("an atomic pipeline in RESP3");
    assert_eq!(n, 43);
    // The exact replies, and EXECABORT after a queuing error.
    exchange(
        addr,
        b"MULTI\r\nSET t 1\r\nGET\r\nEXEC\r\nGET t\r\nEXEC\r\nDISCARD\r\nMULTI\r\nMULTI\r\nINCR t\r\nINCR t\r\nEXEC\r\n",
        b"+OK\r\n+QUEUED\r\n-ERR wrong number of arguments for 'get' command\r\n\
          -EXECABORT Transaction discarded because of previous errors.\r\n$-1\r\n\
          -ERR EXEC without MULTI\r\n-ERR DISCARD without MULTI\r\n\
          +OK\r\n-ERR MULTI calls can not be nested\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n:1\r\n:2\r\n",
    );
}

#[test]
fn watch_aborts_exec_after_another_clients_write() {
    let node = solo(&[]);
    let mut mine = redis_connection(node.addr());
    let mut other = redis_connection(node.addr());
    let () = mine.set("balance", 10).expect("set");
    let () = redis::cmd("WATCH")
        .arg("balance")
        .query(&mut mine)
        .expect("watch");
    let () = other
        .set("balance", 10)
        .expect("the same value, still a write");
    let result: Option<(String,)> = redis::pipe()
        .atomic()
        .set("balance", 0)
        .query(&mut mine)
        .expect("exec");
    assert_eq!(result, None, "EXEC answers null when a watched key changed");
    assert_eq!(mine.get::<_, i64>("balance").expect("get"), 10);
    // The crate's optimistic transaction helper retries until it runs.
    let (after,): (i64,) = redis::transaction(&mut mine, &["balance"], |con, pipe| {
        let now: i64 = con.get("balance")?;
        pipe.set("balance", now + 5)
            .ignore()
            .get("balance")
            .query(con)
    })
    .expect("a transaction");
    assert_eq!(after, 15);
}

#[test]
fn watch_sees_a_write_merged_from_a_peer() {
    let nodes = cluster_with(2, FAST_SYNC_MS, &[], &["--no-cli"]);
    let mut a = redis_connection(nodes[0].addr());
    let mut b = redis_connection(nodes[1].addr());
    let () = a.set("k", "from a").expect("set");
    eventually(WAIT, "n2 to have k", || {
        b.get::<_, Option<String>>("k").expect("get") == Some("from a".into())
    });
    let () = redis::cmd("WATCH").arg("k").query(&mut a).expect("watch");
    let () = b.set("k", "from b").expect("set on the peer");
    eventually(WAIT, "n1 to merge n2's write", || {
        a.get::<_, Option<String>>("k").expect("get") == Some("from b".into())
    });
    let result: Option<(String,)> = redis::pipe()
        .atomic()
        .set("k", "lost")
        .query(&mut a)
        .expect("exec");
    assert_eq!(result, None);
    assert_eq!(a.get::<_, String>("k").expect("get"), "from b");
}

#[test]
fn string_commands_and_the_tools_commands() {
    let node = solo(&[]);
    let mut con = redis_connection(node.addr());
    assert!(con.set_nx::<_, _, bool>("lock", "me").expect("setnx"));
    assert!(!con.set_nx::<_, _, bool>("lock", "you").expect("setnx"));
    let old: Option<String> = con.getset("lock", "you").expect("getset");
    assert_eq!(old.as_deref(), Some("me"));
    assert_eq!(con.append::<_, _, i64>("lock", "!").expect("append"), 4);
    assert_eq!(con.strlen::<_, i64>("lock").expect("strlen"), 4);
    assert_eq!(
        con.getrange::<_, String>("lock", 1, -1).expect("getrange"),
        "ou!"
    );
    assert_eq!(con.decr::<_, _, i64>("n", 3).expect("decrby"), -3);
    let f: f64 = con.incr("f", 2.5).expect("incrbyfloat");
    assert_eq!(f, 2.5);
    let err = con.incr::<_, _, i64>("lock", 1).expect_err("not a counter");
    assert_eq!(
        err.detail(),
        Some("value is not an integer or out of range")
    );
    let () = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .arg("EX")
        .arg(10)
        .query(&mut con)
        .expect("SET EX");
    assert_eq!(con.ttl::<_, i64>("k").expect("TTL"), 10);
    let err = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .arg("EX")
        .arg(0)
        .query::<()>(&mut con)
        .expect_err("EX 0");
    assert!(
        err.to_string()
            .contains("invalid expire time in 'set' command"),
        "{err}"
    );
    let kind: String = redis::cmd("TYPE")
        .arg("lock")
        .query(&mut con)
        .expect("type");
    assert_eq!(kind, "string");
    let usage: i64 = redis::cmd("MEMORY")
        .arg("USAGE")
        .arg("lock")
        .query(&mut con)
        .expect("memory usage");
    assert!(usage > 4, "{usage}");
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query(&mut con)
        .expect("info");
    let used: i64 = info
        .lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .expect("used_memory")
        .parse()
        .expect("a number");
    assert!(used > 0, "{info}");
    assert!(info.contains("used_memory_human:"), "{info}");
}

#[test]
fn redis_cli_stat_and_memkeys_and_the_benchmark_run() {
    if missing_tool("redis-cli") || missing_tool("redis-benchmark") {
        return;
    }
    let node = solo(&[]);
    let addr = node.addr();
    let out = run(
        Command::new("redis-benchmark")
            .args(["-h", &addr.ip().to_string(), "-p", &addr.port().to_string()])
            .args(["-t", "ping,set,get,incr,mset", "-n", "2000", "-q"]),
        Input::Null,
        RUN,
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(!text.contains("ERR") && text.contains("INCR"), "{text}");
    let memkeys = redis_cli(addr, &["--memkeys"]);
    assert!(memkeys.contains("Biggest string found"), "{memkeys}");
    // --stat never ends: read its first line of figures, then stop it.
    let stat = Process::spawn(
        "redis-cli --stat",
        Command::new("redis-cli").args([
            "-h",
            &addr.ip().to_string(),
            "-p",
            &addr.port().to_string(),
            "--stat",
            "-i",
            "0.1",
        ]),
    );
    let line = stat
        .wait_line(Stream::Stdout, WAIT, |l| {
            l.split_whitespace()
                .nth(1)
                .is_some_and(|mem| mem.ends_with(['B', 'K', 'M', 'G']))
        })
        .unwrap_or_else(|| panic!("a line of figures: {:?}", stat.stdout_lines()));
    let mem = line.split_whitespace().nth(1).unwrap_or_default();
    assert!(!mem.starts_with('-'), "no negative memory: {line}");
}
