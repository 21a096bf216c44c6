//! Real Redis client libraries against a real node, as an application uses
//! them: the programs in `tests/clients/` (redis-py, node-redis and
//! ioredis, each in RESP2 and RESP3, and their cluster clients) check
//! every reply themselves and exit non-zero on the first wrong one; these
//! tests start a node (or two) and run them.
//!
//! The libraries are not vendored: `.ci/run` installs the versions
//! `tests/clients/requirements.txt` and `tests/clients/package-lock.json`
//! pin under the clients directory, which is `$NETDB_CLIENTS_DIR` if set,
//! else `clients/` in the cargo target directory:
//!
//! - `venv/`: a Python virtual environment with redis-py;
//! - `node/node_modules/`: node-redis and ioredis (`npm ci`).
//!
//! Without them (no network when `.ci/run` ran, no node, no python3) a
//! test prints `skipped: ...` and returns. redis-py is also taken from the
//! system's `python3` when the clients directory has no venv.

mod common;

use common::{cluster_with, dead_addr, run, skip, solo, Input, FAST_SYNC_MS};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// How long one client program may take: it runs its steps in three
/// protocols (or four, for node), against a debug build, on a busy machine.
const RUN: Duration = Duration::from_secs(120);

/// Where `.ci/run` installs the client libraries (see the module doc).
fn clients_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("NETDB_CLIENTS_DIR") {
        return PathBuf::from(dir);
    }
    // The test binary is target/<profile>/deps/clients-<hash>: the
    // target directory is three levels up.
    let exe = std::env::current_exe().expect("the test binary's path");
    let target = exe
        .ancestors()
        .nth(3)
        .expect("the test binary lies in the target directory");
    target.join("clients")
}

/// The folder of the client programs.
fn programs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients")
}

/// Whether `cmd` runs and exits 0 (its output dropped).
fn succeeds(cmd: &mut Command) -> bool {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs a client program to its end and fails the test, with everything
/// it printed, unless it exits 0.
fn run_program(name: &str, cmd: &mut Command) {
    let done = run(cmd, Input::Null, RUN);
    let stdout = String::from_utf8_lossy(&done.stdout);
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(
        done.status.success(),
        "{name} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        done.status
    );
    assert!(
        stdout.lines().last() == Some("ok"),
        "{name} did not finish:\n{stdout}"
    );
    // The versions tested, in the test's output with --nocapture.
    println!("{}", stdout.lines().next().unwrap_or_default());
}

/// Runs the Python program `script` of `tests/clients/` with `python`
/// against the node at `addr` (see [`run_program`]).
fn run_python(python: &Path, script: &str, addr: SocketAddr) {
    run_program(
        script,
        Command::new(python)
            .arg("-W")
            .arg("ignore::DeprecationWarning")
            .arg(programs().join(script))
            .arg(addr.to_string()),
    );
}

/// Runs the Node program `script` of `tests/clients/` with the libraries
/// in `modules` against the node at `addr` (see [`run_program`]).
fn run_node(modules: &Path, script: &str, addr: SocketAddr) {
    run_program(
        script,
        Command::new("node")
            .arg(programs().join(script))
            .arg(addr.to_string())
            .env("NODE_PATH", modules),
    );
}

/// The Python interpreter with redis-py importable: the clients
/// directory's venv, else the system's `python3`; `None` (and a skip
/// line) if neither has it.
fn python_with_redis() -> Option<PathBuf> {
    let venv = clients_dir().join("venv/bin/python3");
    let python = if venv.exists() {
        venv
    } else {
        PathBuf::from("python3")
    };
    if succeeds(Command::new(&python).args(["-c", "import redis"])) {
        Some(python)
    } else {
        skip(format!(
            "redis-py not importable by {} (.ci/run installs it, or set NETDB_CLIENTS_DIR)",
            python.display()
        ));
        None
    }
}

/// The `NODE_PATH` holding node-redis and ioredis; `None` (and a skip
/// line) if node or either library is missing.
fn node_modules() -> Option<PathBuf> {
    let modules = clients_dir().join("node/node_modules");
    let found = succeeds(
        Command::new("node")
            .args(["-e", "require('redis'); require('ioredis')"])
            .env("NODE_PATH", &modules),
    );
    if !found {
        skip(format!(
            "node, node-redis or ioredis missing (looked in {}; .ci/run installs them)",
            modules.display()
        ));
        return None;
    }
    Some(modules)
}

/// redis-py, with its default protocol and with RESP2 and RESP3, against
/// a node that has a live peer and a dead one, so that `INFO` has every
/// kind of line a running cluster writes (members, peers, a peer's error)
/// and redis-py must parse them all.
#[test]
fn redis_py_runs_against_a_node_as_against_redis() {
    let Some(python) = python_with_redis() else {
        return;
    };
    let cluster = cluster_with(2, FAST_SYNC_MS, &[dead_addr()], &[]);
    let addr: SocketAddr = cluster.nodes[0].addr();
    run_python(&python, "python_client.py", addr);
}

/// Waits until the node at `addr` lists both members of its 2-node
/// cluster in `CLUSTER SLOTS` (its range, then two node entries), so a
/// cluster client sees both.
fn wait_for_both_members(addr: SocketAddr) {
    let mut con = common::redis_connection(addr);
    common::eventually(RUN, "both members in CLUSTER SLOTS", || {
        let v: redis::Value = redis::cmd("CLUSTER")
            .arg("SLOTS")
            .query(&mut con)
            .expect("CLUSTER SLOTS");
        matches!(&v, redis::Value::Array(r) if matches!(&r[0], redis::Value::Array(n) if n.len() == 4))
    });
}

/// redis-py's cluster client (`RedisCluster`) through one node of a
/// 2-node cluster, in RESP2 and RESP3: `CLUSTER SLOTS` lists every
/// member, and every key, pipeline and one-slot `MGET` is answered.
#[test]
fn redis_py_s_cluster_client_runs_against_a_cluster() {
    let Some(python) = python_with_redis() else {
        return;
    };
    let cluster = cluster_with(2, FAST_SYNC_MS, &[], &[]);
    let addr: SocketAddr = cluster.nodes[0].addr();
    wait_for_both_members(addr);
    run_python(&python, "python_cluster.py", addr);
}

/// node-redis and ioredis, each with its default protocol (RESP3, after
/// `HELLO 3`) and with RESP2.
#[test]
fn node_redis_and_ioredis_run_against_a_node_as_against_redis() {
    let Some(modules) = node_modules() else {
        return;
    };
    let node = solo(&[]);
    run_node(&modules, "node_client.js", node.addr());
}

/// The cluster clients of node-redis (`createCluster`) and ioredis
/// (`Redis.Cluster`) through one node of a 2-node cluster.
#[test]
fn node_cluster_clients_run_against_a_cluster() {
    let Some(modules) = node_modules() else {
        return;
    };
    let cluster = cluster_with(2, FAST_SYNC_MS, &[], &[]);
    let addr: SocketAddr = cluster.nodes[0].addr();
    wait_for_both_members(addr);
    run_node(&modules, "node_cluster.js", addr);
}

/// Waits until the node at `addr` knows the `n` members of its sharded
/// cluster and serves every slot, so a cluster client sees the whole
/// layout in `CLUSTER SLOTS`.
fn wait_for_layout(addr: SocketAddr, n: usize) {
    let mut con = common::redis_connection(addr);
    common::eventually(RUN, "every member in the layout", || {
        let text: String = redis::cmd("CLUSTER")
            .arg("INFO")
            .query(&mut con)
            .expect("CLUSTER INFO");
        text.contains(&format!("cluster_known_nodes:{n}\r")) && text.contains("cluster_state:ok")
    });
}

/// redis-py's `RedisCluster` against a sharded cluster (`--replicas 1`):
/// it routes by the layout's `CLUSTER SLOTS`, and whatever reaches a node
/// that does not hold its key is proxied.
#[test]
fn redis_py_s_cluster_client_runs_against_a_sharded_cluster() {
    let Some(python) = python_with_redis() else {
        return;
    };
    let cluster = cluster_with(3, FAST_SYNC_MS, &[], &["--replicas", "1"]);
    let addr: SocketAddr = cluster.nodes[0].addr();
    wait_for_layout(addr, 3);
    run_python(&python, "python_cluster.py", addr);
}

/// node-redis's and ioredis's cluster clients against a sharded cluster
/// (`--replicas 1`).
#[test]
fn node_cluster_clients_run_against_a_sharded_cluster() {
    let Some(modules) = node_modules() else {
        return;
    };
    let cluster = cluster_with(3, FAST_SYNC_MS, &[], &["--replicas", "1"]);
    let addr: SocketAddr = cluster.nodes[0].addr();
    wait_for_layout(addr, 3);
    run_node(&modules, "node_cluster.js", addr);
}
