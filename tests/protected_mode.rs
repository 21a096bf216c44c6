//! Protected mode (issue 11), against the real binary: a node with no
//! client password refuses Redis clients from other machines with Redis's
//! `-DENIED` reply, and a node with no cluster secret refuses peers from
//! other machines, while loopback (the README's local cluster) works as
//! ever. "Another machine" is a network namespace of the test's own on
//! TEST-NET addresses (see `common::Netns`); the tests skip, saying why,
//! where one cannot be made (not root, no `ip`).

mod common;

use common::{missing_tool, skip, Netns, NodeSpec, REPLY_TIMEOUT};
use std::net::SocketAddr;
use std::time::Duration;

/// `redis-cli` run inside `ns` against `addr`; its stdout.
fn redis_cli(ns: &Netns, addr: SocketAddr, args: &[&str]) -> String {
    let out = ns
        .command("redis-cli")
        .args(["-h", &addr.ip().to_string(), "-p", &addr.port().to_string()])
        .args(args)
        .output()
        .expect("redis-cli runs");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A namespace, or the reason to skip.
fn namespace(slot: u8) -> Option<Netns> {
    if missing_tool("redis-cli") {
        return None;
    }
    match Netns::create(slot) {
        Ok(ns) => Some(ns),
        Err(why) => {
            skip(why);
            None
        }
    }
}

fn listen_on(ns: &Netns) -> SocketAddr {
    format!("{}:0", ns.host_ip).parse().expect("address")
}

#[test]
fn without_a_password_clients_from_other_machines_are_denied_and_loopback_is_not() {
    let Some(ns) = namespace(1) else { return };
    let mut node = NodeSpec::new("guarded").listen(listen_on(&ns)).start();
    let reply = redis_cli(&ns, node.addr(), &["PING"]);
    assert!(
        reply.starts_with("DENIED netdb is running in protected mode"),
        "a client from {} got: {reply}",
        ns.inner_ip
    );
    node.wait_log("refused client 192.0.2.", REPLY_TIMEOUT);
    assert!(node
        .stderr_lines()
        .iter()
        .any(|l| l.contains("protected mode") && l.contains("no client password")));
    // The node's own console, and nothing written by the refused client.
    assert_eq!(node.cmd("keys"), "(no keys)");
}

#[test]
fn a_password_lets_clients_from_other_machines_in_after_auth() {
    let Some(ns) = namespace(2) else { return };
    let node = NodeSpec::new("guarded")
        .listen(listen_on(&ns))
        .args(&["--requirepass", "a long enough password"])
        .start();
    let addr = node.addr();
    assert!(redis_cli(&ns, addr, &["PING"]).starts_with("NOAUTH"));
    let reply = redis_cli(
        &ns,
        addr,
        &[
            "--no-auth-warning",
            "-a",
            "a long enough password",
            "SET",
            "k",
            "v",
        ],
    );
    assert_eq!(reply, "OK");
}

#[test]
fn protected_mode_no_lets_anyone_in_and_says_so_at_startup() {
    let Some(ns) = namespace(3) else { return };
    let node = NodeSpec::new("open")
        .listen(listen_on(&ns))
        .args(&["--protected-mode", "no"])
        .start();
    assert_eq!(redis_cli(&ns, node.addr(), &["PING"]), "PONG");
    node.wait_log("protected mode is off", REPLY_TIMEOUT);
}

#[test]
fn without_a_cluster_secret_peers_from_other_machines_are_refused() {
    let Some(ns) = namespace(4) else { return };
    let mut node = NodeSpec::new("guarded").listen(listen_on(&ns)).start();
    let addr = node.addr();
    // A peer's opening from the namespace: the magic, then a greeting the
    // node must never read.
    assert_eq!(
        ns.peer_opening_answer(addr),
        "0",
        "the node answered a peer from another machine"
    );
    let line = node.wait_log(
        "refused peer connection from 192.0.2.",
        Duration::from_secs(5),
    );
    assert!(line.contains("protected mode"), "{line}");
    assert_eq!(node.cmd("keys"), "(no keys)");
}
