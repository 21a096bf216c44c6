//! Redis's numbered databases on running nodes: `SELECT`, a client
//! library's `db` setting, `redis-cli -n`, the per-database keyspace
//! commands, `--databases`, the console's view (database 0), and a key
//! of one database replicated into the same database on a peer.

mod common;

use common::{
    cluster, eventually, info_field, missing_tool, netdb_command, redis_cli, redis_connection, run,
    solo, Input, NodeSpec, CONVERGE_TIMEOUT, FAST_SYNC_MS,
};
use redis::Commands;
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

/// How long a client program (redis-cli, `netdb --connect`) may run.
const RUN: Duration = Duration::from_secs(60);

/// A client library connection to database `db`, which the library
/// selects as it connects (redis-py's `db=3`, a `redis://host/3` URL).
fn connection_to(addr: SocketAddr, db: u8) -> redis::Connection {
    let client = redis::Client::open(format!("redis://{addr}/{db}")).expect("url");
    client
        .get_connection_with_timeout(common::RESP_TIMEOUT)
        .unwrap_or_else(|e| panic!("a connection to database {db} of {addr}: {e}"))
}

fn dbsize(con: &mut redis::Connection) -> i64 {
    redis::cmd("DBSIZE").query(con).expect("dbsize")
}

fn sorted_keys(con: &mut redis::Connection) -> Vec<String> {
    let mut keys: Vec<String> = con.keys("*").expect("keys");
    keys.sort();
    keys
}

#[test]
fn a_client_librarys_database_is_its_own() {
    let node = solo(&[]);
    let mut zero = redis_connection(node.addr());
    let mut three = connection_to(node.addr(), 3);
    let () = zero.set("shared", "zero").expect("set");
    let () = zero.set("only-zero", "z").expect("set");
    let () = three.set("shared", "three").expect("set");
    let () = three.set("only-three", "t").expect("set");
    assert_eq!(zero.get::<_, String>("shared").expect("get"), "zero");
    assert_eq!(three.get::<_, String>("shared").expect("get"), "three");
    assert_eq!(sorted_keys(&mut zero), ["only-zero", "shared"]);
    assert_eq!(sorted_keys(&mut three), ["only-three", "shared"]);
    assert_eq!((dbsize(&mut zero), dbsize(&mut three)), (2, 2));
    // INFO keyspace has a line for each database with keys.
    assert_eq!(
        info_field(&mut zero, "keyspace", "db0").as_deref(),
        Some("keys=2,expires=0,avg_ttl=0")
    );
    assert_eq!(
        info_field(&mut zero, "keyspace", "db3").as_deref(),
        Some("keys=2,expires=0,avg_ttl=0")
    );
    assert_eq!(info_field(&mut zero, "keyspace", "db1"), None);
    // SELECT moves a connection; out of range is Redis's error.
    let () = redis::cmd("SELECT")
        .arg(3)
        .query(&mut zero)
        .expect("select");
    assert_eq!(zero.get::<_, String>("only-three").expect("get"), "t");
    let err = redis::cmd("SELECT")
        .arg(16)
        .query::<()>(&mut zero)
        .expect_err("out of range");
    assert!(
        err.to_string().contains("DB index is out of range"),
        "{err}"
    );
    // MOVE and COPY reach another database; FLUSHDB empties one.
    let moved: i64 = redis::cmd("MOVE")
        .arg("only-three")
        .arg(5)
        .query(&mut three)
        .expect("move");
    assert_eq!(moved, 1);
    let copied: i64 = redis::cmd("COPY")
        .arg("shared")
        .arg("copied")
        .arg("DB")
        .arg(5)
        .query(&mut three)
        .expect("copy");
    assert_eq!(copied, 1);
    let mut five = connection_to(node.addr(), 5);
    assert_eq!(sorted_keys(&mut five), ["copied", "only-three"]);
    let () = redis::cmd("FLUSHDB").query(&mut five).expect("flushdb");
    assert_eq!(dbsize(&mut five), 0);
    assert_eq!(dbsize(&mut three), 1);
    let () = redis::cmd("FLUSHALL").query(&mut five).expect("flushall");
    let mut zero = redis_connection(node.addr());
    assert_eq!((dbsize(&mut zero), dbsize(&mut three)), (0, 0));
}

#[test]
fn redis_cli_dash_n_uses_that_database() {
    if missing_tool("redis-cli") {
        return;
    }
    let node = solo(&["--databases", "4"]);
    let addr = node.addr();
    let cli = |args: &[&str]| redis_cli(addr, args);
    assert_eq!(cli(&["-n", "3", "SET", "k", "three"]), "OK\n");
    assert_eq!(cli(&["SET", "k", "zero"]), "OK\n");
    assert_eq!(cli(&["-n", "3", "GET", "k"]), "three\n");
    assert_eq!(cli(&["-n", "0", "GET", "k"]), "zero\n");
    assert_eq!(cli(&["-n", "2", "GET", "k"]), "\n");
    assert_eq!(cli(&["-n", "3", "DBSIZE"]), "1\n");
    assert_eq!(cli(&["-n", "3", "RENAME", "k", "k2"]), "OK\n");
    assert_eq!(cli(&["-n", "3", "--scan"]), "k2\n");
    assert_eq!(cli(&["-n", "3", "RANDOMKEY"]), "k2\n");
    // As redis-cli prints an error from Redis itself.
    assert_eq!(
        cli(&["-n", "3", "RENAME", "nope", "x"]),
        "ERR no such key\n\n"
    );
    assert_eq!(cli(&["KEYS", "*"]), "k\n");
    // With --databases 4 there is no database 4: Redis's error, which
    // redis-cli prints (and then, as against Redis, goes on in database 0).
    let out = run(
        Command::new("redis-cli").args([
            "-h",
            "127.0.0.1",
            "-p",
            &addr.port().to_string(),
            "-n",
            "4",
            "PING",
        ]),
        Input::Null,
        RUN,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("SELECT 4 failed: ERR DB index is out of range"),
        "{stderr}"
    );
}

#[test]
fn a_pipeline_and_a_transaction_write_where_each_command_was_sent() {
    let node = solo(&[]);
    let mut con = redis_connection(node.addr());
    let () = redis::pipe()
        .cmd("SELECT")
        .arg(1)
        .cmd("SET")
        .arg("a")
        .arg(1)
        .cmd("SELECT")
        .arg(2)
        .cmd("SET")
        .arg("a")
        .arg(2)
        .cmd("SELECT")
        .arg(0)
        .query(&mut con)
        .expect("pipeline");
    let () = redis::pipe()
        .atomic()
        .cmd("SET")
        .arg("b")
        .arg(0)
        .cmd("SELECT")
        .arg(7)
        .cmd("SET")
        .arg("b")
        .arg(7)
        .cmd("SELECT")
        .arg(0)
        .query(&mut con)
        .expect("transaction");
    for (db, a, b) in [
        (0, None, Some("0")),
        (1, Some("1"), None),
        (2, Some("2"), None),
        (7, None, Some("7")),
    ] {
        let mut there = connection_to(node.addr(), db);
        let got: Vec<Option<String>> = redis::cmd("MGET")
            .arg("a")
            .arg("b")
            .query(&mut there)
            .expect("mget");
        let want: Vec<Option<String>> = vec![a.map(String::from), b.map(String::from)];
        assert_eq!(got, want, "database {db}");
    }
}

#[test]
fn databases_past_256_or_none_are_refused_at_startup() {
    for bad in ["0", "257"] {
        let exited = NodeSpec::new("n")
            .args(&["--no-cli", "--databases", bad])
            .try_start()
            .err()
            .unwrap_or_else(|| panic!("--databases {bad} started"));
        assert!(!exited.status.success());
        assert!(
            exited
                .stderr
                .iter()
                .any(|l| l.contains("--databases must be between 1 and 256")),
            "{:?}",
            exited.stderr
        );
    }
}

#[test]
fn the_consoles_see_database_0_only() {
    let mut node = common::Node::alone("n", &[]);
    let mut zero = redis_connection(node.addr());
    let mut nine = connection_to(node.addr(), 9);
    let () = zero.set("visible", "v").expect("set");
    let () = nine.set("hidden", "h").expect("set");
    let () = zero.set(b"\xffstarts-with-ff", "w").expect("set");
    // The node's own console lists database 0's keys, as a client of
    // database 0 would see them; nothing of database 9's.
    assert_eq!(
        node.cmd_lines("keys", 2),
        ["visible", "\"\\xffstarts-with-ff\""]
    );
    assert_eq!(node.cmd("get hidden"), "Key not found.");
    assert_eq!(node.cmd("get visible"), "Value: v");
    // A put from the console is database 0's.
    assert_eq!(node.cmd("put typed t"), "Value stored.");
    assert_eq!(zero.get::<_, String>("typed").expect("get"), "t");
    assert_eq!(dbsize(&mut nine), 1);
    // `netdb --connect` is a client of database 0.
    let out = run(
        netdb_command().args(["--connect", &node.addr().to_string()]),
        Input::Bytes(b"keys\nget hidden\n".to_vec()),
        RUN,
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert_eq!(
        text,
        "typed\nvisible\n\"\\xffstarts-with-ff\"\nKey not found.\n"
    );
}

#[test]
fn a_key_of_database_3_reaches_database_3_of_a_peer() {
    let c = cluster(2, FAST_SYNC_MS);
    let mut a3 = connection_to(c[0].addr(), 3);
    let mut b0 = redis_connection(c[1].addr());
    let mut b3 = connection_to(c[1].addr(), 3);
    let () = b0.set("zero", "b").expect("set");
    let () = a3.set("k", "from a").expect("set");
    eventually(CONVERGE_TIMEOUT, "k to reach database 3 of b", || {
        b3.get::<_, Option<String>>("k").expect("get").as_deref() == Some("from a")
    });
    assert_eq!(b0.get::<_, Option<String>>("k").expect("get"), None);
    // b's counts take in what it merged.
    assert_eq!((dbsize(&mut b0), dbsize(&mut b3)), (1, 1));
    assert_eq!(
        info_field(&mut b0, "keyspace", "db3").as_deref(),
        Some("keys=1,expires=0,avg_ttl=0")
    );
    // A FLUSHDB of database 3 on b empties it on a, and leaves database 0.
    let () = redis::cmd("FLUSHDB").query(&mut b3).expect("flushdb");
    eventually(CONVERGE_TIMEOUT, "the flush to reach a", || {
        dbsize(&mut a3) == 0
    });
    let mut a0 = redis_connection(c[0].addr());
    eventually(CONVERGE_TIMEOUT, "b's database 0 key to reach a", || {
        a0.get::<_, Option<String>>("zero").expect("get").as_deref() == Some("b")
    });
    assert_eq!(dbsize(&mut a0), 1);
}
