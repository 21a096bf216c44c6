//! Starting a node wrongly: every mistake is one line on stderr naming
//! what was wrong, a non-zero exit, no panic and no backtrace (even with
//! `RUST_BACKTRACE=1`, which the helpers set).

mod common;

use common::{assert_no_panic, dead_addr, run_netdb, temp_dir, write_peers_file, Finished, Input};
use std::ffi::OsStr;
use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

fn run(args: &[&dyn AsRef<OsStr>]) -> Finished {
    run_netdb(args, Input::Null, Duration::from_secs(20))
}

/// Asserts a failed start with exit status 1 and exactly the stderr line
/// `want`, and returns nothing else.
fn assert_fails_with(done: &Finished, want: &str) {
    assert_eq!(done.stderr, [want], "stderr");
    assert_eq!(
        done.status.code(),
        Some(1),
        "exit status; stderr {:?}",
        done.stderr
    );
    assert!(done.stdout.is_empty(), "stdout: {:?}", done.stdout);
}

/// Like [`assert_fails_with`], for messages that end in an OS-specific
/// reason: the line must start with `prefix`.
fn assert_fails_starting(done: &Finished, prefix: &str) {
    assert_eq!(done.stderr.len(), 1, "stderr: {:?}", done.stderr);
    assert!(
        done.stderr[0].starts_with(prefix),
        "stderr {:?} does not start with {prefix:?}",
        done.stderr[0]
    );
    assert_no_panic(&done.stderr);
    assert_eq!(done.status.code(), Some(1), "exit status");
    assert!(done.stdout.is_empty(), "stdout: {:?}", done.stdout);
}

/// An address that always binds: the OS picks the port, so no test can
/// fail because another took it.
fn any_port() -> &'static str {
    "127.0.0.1:0"
}

#[test]
fn unparsable_addresses() {
    for (addr, why) in [
        ("nonsense", "invalid socket address"),
        ("127.0.0.1", "invalid socket address"),
        ("localhost", "invalid socket address"),
        ("", "invalid socket address"),
        ("127.0.0.1:99999", "invalid port value"),
        ("127.0.0.1:", "invalid port value"),
        ("127.0.0.1:-1", "invalid port value"),
    ] {
        let done = run(&[&"n1", &addr]);
        assert_fails_with(
            &done,
            &format!("netdb: error: bad address '{addr}': expected host:port ({why})"),
        );
    }
}

#[test]
fn an_address_that_is_not_this_machine() {
    // TEST-NET-1: never assigned to a local interface.
    let done = run(&[&"n1", &"192.0.2.1:7000"]);
    assert_fails_starting(&done, "netdb: error: cannot listen on 192.0.2.1:7000: ");
}

#[test]
fn a_port_in_use() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let done = run(&[&"n1", &addr]);
    assert_fails_with(
        &done,
        &format!("netdb: error: cannot listen on {addr}: the port is in use"),
    );
}

#[test]
fn a_missing_peers_file() {
    let dir = temp_dir();
    let missing = dir.path().join("missing.txt");
    let done = run(&[&"n1", &any_port(), &missing]);
    assert_fails_with(
        &done,
        &format!(
            "netdb: error: cannot read peers file {}: No such file or directory (os error 2)",
            missing.display()
        ),
    );
    // A directory is not a peers file either.
    let done = run(&[&"n1", &any_port(), &dir.path()]);
    assert_fails_starting(
        &done,
        &format!(
            "netdb: error: cannot read peers file {}: ",
            dir.path().display()
        ),
    );
}

fn peers_file_error(dir: &Path, text: &str) -> Finished {
    let path = dir.join("peers.txt");
    std::fs::write(&path, text).expect("write peers file");
    run(&[&"n1", &any_port(), &path])
}

#[test]
fn a_peers_file_with_a_bad_line_names_the_file_and_the_line() {
    let dir = temp_dir();
    let path = dir.path().join("peers.txt");
    let p = path.display();
    for (text, want) in [
        (
            "127.0.0.1:7001\n# a comment\nnonsense\n",
            format!("peers file {p}, line 3: expected host:port, found 'nonsense'"),
        ),
        (
            "\n\n\n\n127.0.0.1:99999 # too big\n",
            format!("peers file {p}, line 5: bad port '99999' in '127.0.0.1:99999' (1 to 65535)"),
        ),
        (
            "127.0.0.1:0\n",
            format!("peers file {p}, line 1: bad port '0' in '127.0.0.1:0' (1 to 65535)"),
        ),
        (
            "127.0.0.1:7001\n127.0.0.1:\n",
            format!("peers file {p}, line 2: bad port '' in '127.0.0.1:' (1 to 65535)"),
        ),
        (
            ":7001\n",
            format!("peers file {p}, line 1: missing host in ':7001'"),
        ),
        (
            "127.0.0.1:7001 127.0.0.1:7002\n",
            format!(
                "peers file {p}, line 1: expected one host:port, found '127.0.0.1:7001 127.0.0.1:7002'"
            ),
        ),
    ] {
        let done = peers_file_error(dir.path(), text);
        assert_fails_with(&done, &format!("netdb: error: {want}"));
    }
}

#[test]
fn a_peers_file_with_a_host_that_does_not_resolve() {
    let dir = temp_dir();
    let done = peers_file_error(dir.path(), "127.0.0.1:7001\nno-such-host.invalid:7002\n");
    let p = dir.path().join("peers.txt");
    assert_fails_starting(
        &done,
        &format!(
            "netdb: error: peers file {}, line 2: cannot resolve 'no-such-host.invalid:7002': ",
            p.display()
        ),
    );
}

#[test]
fn bad_node_names() {
    let long = "x".repeat(256);
    for (name, shown) in [
        ("a b", "a b".to_string()),
        ("", String::new()),
        ("tab\there", "tab\\there".to_string()),
        ("new\nline", "new\\nline".to_string()),
        ("a#1", "a#1".to_string()),
        (long.as_str(), long.clone()),
    ] {
        let done = run(&[&name, &any_port()]);
        assert_fails_with(
            &done,
            &format!("netdb: error: bad node name '{shown}': 1 to 255 bytes, no spaces or #"),
        );
    }
}

#[test]
fn bad_option_values() {
    let done = run(&[&"n1", &any_port(), &"--sync-interval-ms", &"0"]);
    assert_fails_with(&done, "netdb: error: --sync-interval-ms must be at least 1");
    for bytes in ["1048575", "4294967296"] {
        let done = run(&[&"n1", &any_port(), &"--max-frame-bytes", &bytes]);
        assert_fails_with(
            &done,
            "netdb: error: --max-frame-bytes must be between 1048576 and 4294967295",
        );
    }
    let done = run(&[
        &"n1",
        &any_port(),
        &"--replicas",
        &"2",
        &"--write-replicas",
        &"3",
    ]);
    assert_fails_with(
        &done,
        "netdb: error: --write-replicas must be between 1 and --replicas (2): a write cannot \
         reach more replicas than its key has",
    );
    let done = run(&[&"n1", &any_port(), &"--write-replicas", &"0"]);
    assert_fails_with(
        &done,
        "netdb: error: --write-replicas must be between 1 and 16",
    );
}

#[test]
fn usage_mistakes_exit_2_with_clap_s_message() {
    for args in [
        vec![],
        vec!["n1"],
        vec!["n1", "127.0.0.1:0", "peers.txt", "extra"],
        vec!["n1", "127.0.0.1:0", "--sync-interval-ms", "abc"],
        vec!["n1", "127.0.0.1:0", "--bogus"],
    ] {
        let done = run_netdb(&args, Input::Null, Duration::from_secs(20));
        assert_eq!(done.status.code(), Some(2), "{args:?}: {:?}", done.stderr);
        assert!(
            done.stderr
                .first()
                .is_some_and(|l| l.starts_with("error: ")),
            "{args:?}: {:?}",
            done.stderr
        );
        assert!(
            done.stderr.iter().any(|l| l.contains("--help")),
            "{args:?}: {:?}",
            done.stderr
        );
        assert_no_panic(&done.stderr);
        assert!(done.stdout.is_empty());
    }
}

#[test]
fn help_and_version_exit_0() {
    let done = run(&[&"--help"]);
    assert!(done.status.success(), "{:?}", done.stderr);
    assert!(done.stderr.is_empty(), "{:?}", done.stderr);
    assert!(
        done.stdout
            .iter()
            .any(|l| l == "Usage: netdb [OPTIONS] <NAME> <ADDR> [PEERS_FILE]"),
        "{:?}",
        done.stdout
    );
    for option in [
        "--sync-interval-ms",
        "--no-cli",
        "--max-frame-bytes",
        "--max-connections",
    ] {
        assert!(
            done.stdout.iter().any(|l| l.contains(option)),
            "--help does not mention {option}"
        );
    }
    let short = run(&[&"-h"]);
    assert!(short.status.success());

    for flag in ["--version", "-V"] {
        let done = run(&[&flag]);
        assert!(done.status.success(), "{:?}", done.stderr);
        assert_eq!(
            done.stdout,
            [format!("netdb {}", env!("CARGO_PKG_VERSION"))]
        );
        assert!(done.stderr.is_empty(), "{:?}", done.stderr);
    }
}

#[test]
fn a_good_start_logs_where_it_listens_and_exits_0_at_end_of_input() {
    let dir = temp_dir();
    let peers = dir.path().join("peers.txt");
    write_peers_file(&peers, &[dead_addr()]);
    let done = run(&[&"n1", &any_port(), &peers, &"--sync-interval-ms", &"250"]);
    assert!(done.status.success(), "{:?}", done.stderr);
    assert!(done.stdout.is_empty(), "{:?}", done.stdout);
    // A log line: an RFC 3339 UTC timestamp with milliseconds, the
    // level, the node's name, the message.
    let first = &done.stderr[0];
    let (time, rest) = first.split_at(first.len().min(24));
    assert!(
        time.len() == 24 && time.as_bytes()[10] == b'T' && time.ends_with('Z'),
        "{first}"
    );
    assert!(
        rest.starts_with(" INFO  [n1] listening on 127.0.0.1:")
            && rest.ends_with(" with 1 peer(s), syncing every 250 ms"),
        "{first}"
    );
    // The peer is down: the final push fails quickly and says so.
    let last = done.stderr.last().map_or("", String::as_str);
    assert!(
        last.ends_with(" INFO  [n1] final push: 0 of 1 peers acknowledged"),
        "{last}"
    );
    assert_no_panic(&done.stderr);
}
