//! The stdin commands: exact replies, quoting of keys and values that
//! round-trips any bytes (also through replication), mistakes, and how the
//! loop ends.

mod common;

use common::{assert_no_panic, cluster, Node, CONVERGE_TIMEOUT, FAST_SYNC_MS, HELP};
use std::time::Duration;

/// (what is typed after `put k `, what `get k` prints after `Value: `)
const ROUND_TRIPS: &[(&str, &str)] = &[
    // The rest of the line, inner blanks kept, outer blanks dropped.
    ("hello world", "hello world"),
    ("  a  b  ", "a  b"),
    ("say \"hi\"", "say \"hi\""),
    ("it's", "it's"),
    ("héllo wörld ✓", "héllo wörld ✓"),
    ("back\\slash", "back\\slash"),
    ("\\x41", "\\x41"), // unquoted: no escapes
    // Quoted: escapes, and quotes only where needed to read back the same.
    ("\"say \\\"hi\\\"\"", "say \"hi\""),
    ("\"\\\"quoted\\\"\"", "\"\\\"quoted\\\"\""),
    ("\"  padded  \"", "\"  padded  \""),
    ("\"\"", "\"\""),
    ("\"\\x41\\x42C\"", "ABC"),
    ("\"a\\tb\\r\\n\\\\\"", "\"a\\tb\\r\\n\\\\\""),
    ("\"\\0\\x01\\x7f\\xff\"", "\"\\0\\x01\\x7f\\xff\""),
    ("\"\\xc3\\x28\"", "\"\\xc3(\""),
    ("\"\\xC3\\xA9\"", "é"),
    ("\"# not a comment\"", "# not a comment"),
];

#[test]
fn values_round_trip_exactly_and_replicate_exactly() {
    let mut c = cluster(2, FAST_SYNC_MS);
    for (i, (typed, printed)) in ROUND_TRIPS.iter().enumerate() {
        let key = format!("k{i}");
        assert_eq!(
            c[0].cmd(&format!("put {key} {typed}")),
            "Value stored.",
            "{typed}"
        );
        let want = format!("Value: {printed}");
        assert_eq!(c[0].cmd(&format!("get {key}")), want, "{typed}");
        // What was printed can be typed back for the same bytes.
        assert_eq!(
            c[0].cmd(&format!("put again{i} {printed}")),
            "Value stored."
        );
        assert_eq!(c[0].cmd(&format!("get again{i}")), want, "{printed}");
    }
    // The other node holds the same bytes.
    for (i, (_, printed)) in ROUND_TRIPS.iter().enumerate() {
        let want = format!("Value: {printed}");
        c[1].wait_reply(&format!("get k{i}"), &want, CONVERGE_TIMEOUT);
        c[1].wait_reply(&format!("get again{i}"), &want, CONVERGE_TIMEOUT);
    }
}

#[test]
fn binary_keys_round_trip_and_list_quoted() {
    let mut c = cluster(2, FAST_SYNC_MS);
    let keys = [
        ("\"a key\"", "\"a key\""),
        ("\"\\x00\\xff\"", "\"\\0\\xff\""),
        ("\"tab\\there\"", "\"tab\\there\""),
        ("plain", "plain"),
        ("\"\\x71uoted\"", "quoted"),
    ];
    for (typed, _) in keys {
        assert_eq!(
            c[0].cmd(&format!("put {typed} v")),
            "Value stored.",
            "{typed}"
        );
    }
    for (typed, printed) in keys {
        assert_eq!(c[0].cmd(&format!("get {typed}")), "Value: v", "{typed}");
        // The printed form reads back as the same key.
        assert_eq!(c[0].cmd(&format!("get {printed}")), "Value: v", "{printed}");
    }
    // Sorted by bytes.
    let listed = [
        "\"\\0\\xff\"",
        "\"a key\"",
        "plain",
        "quoted",
        "\"tab\\there\"",
    ];
    assert_eq!(c[0].cmd_lines("keys", 5), listed);
    let n2 = &mut c[1];
    common::eventually(CONVERGE_TIMEOUT, "n2 holds the five keys", || {
        keys.iter()
            .all(|(typed, _)| n2.cmd(&format!("get {typed}")) == "Value: v")
    });
    assert_eq!(n2.cmd_lines("keys", 5), listed);
    assert_eq!(n2.cmd("delete \"a key\""), "Key deleted.");
    assert_eq!(n2.cmd("get \"a key\""), "Key not found.");
    c[0].wait_reply("get \"a key\"", "Key not found.", CONVERGE_TIMEOUT);
}

#[test]
fn mistakes_get_one_error_line_each_and_change_nothing() {
    let mut node = Node::alone("n1", &[]);
    let cases = [
        ("put", "Error: missing key (usage: put <key> <value>)"),
        ("put k", "Error: missing value (usage: put <key> <value>)"),
        ("put k   ", "Error: missing value (usage: put <key> <value>)"),
        ("get", "Error: missing key (usage: get <key>)"),
        ("get a b", "Error: too many arguments (usage: get <key>)"),
        ("delete", "Error: missing key (usage: delete <key>)"),
        ("delete a b", "Error: too many arguments (usage: delete <key>)"),
        (
            "put k \"open",
            "Error: missing closing quote (usage: put <key> <value>)",
        ),
        (
            "put k \"a\" b",
            "Error: text after the closing quote of the value (usage: put <key> <value>)",
        ),
        (
            "put \"k\"x v",
            "Error: a closing quote must be followed by a space (usage: put <key> <value>)",
        ),
        (
            "put k \"\\q\"",
            "Error: unknown escape \\q (usage: put <key> <value>)",
        ),
        (
            "put k \"\\x4\"",
            "Error: \\x needs two hex digits (usage: put <key> <value>)",
        ),
        (
            "put k \"\\xzz\"",
            "Error: \\x needs two hex digits (usage: put <key> <value>)",
        ),
        (
            "put k \"trailing\\",
            "Error: unfinished escape at end of line (usage: put <key> <value>)",
        ),
        ("keys now", "Error: keys takes no arguments"),
        ("quit now", "Error: quit takes no arguments"),
        (
            "frobnicate x",
            "Error: unknown command 'frobnicate' (commands: put, get, delete, keys, status, sync, help, quit)",
        ),
    ];
    for (line, want) in cases {
        assert_eq!(node.cmd(line), want, "{line}");
    }
    assert_eq!(node.cmd("keys"), "(no keys)");
    assert_eq!(
        node.status()[1],
        "keys: 0 live, 0 tombstones",
        "a refused command wrote something"
    );
}

#[test]
fn commands_are_case_blind_and_have_short_forms() {
    let mut node = Node::alone("n1", &[]);
    assert_eq!(node.cmd("PUT k v"), "Value stored.");
    assert_eq!(node.cmd("Get k"), "Value: v");
    assert_eq!(node.cmd("set k w"), "Value stored.");
    assert_eq!(node.cmd("  get   k  "), "Value: w");
    assert_eq!(node.cmd("\tget\tk"), "Value: w");
    assert_eq!(node.cmd("get k\r"), "Value: w");
    assert_eq!(node.cmd("del k"), "Key deleted.");
    assert_eq!(node.cmd("DELETE k"), "Key deleted.");
    assert_eq!(node.cmd("get k"), "Key not found.");
    // Keys are not case-blind.
    assert_eq!(node.cmd("put K upper"), "Value stored.");
    assert_eq!(node.cmd("get k"), "Key not found.");
    assert_eq!(node.cmd("get K"), "Value: upper");
    assert_eq!(node.cmd("delete never-written"), "Key deleted.");
    assert_eq!(node.cmd("get never-written"), "Key not found.");
}

#[test]
fn blank_lines_and_comments_get_no_reply() {
    let mut node = Node::alone("n1", &[]);
    node.send("");
    node.send("   ");
    node.send("# put k v");
    node.send("   # indented comment");
    // The next line read is the reply to this get, not to the lines above.
    assert_eq!(node.cmd("get k"), "Key not found.");
}

#[test]
fn help_prints_the_commands() {
    let mut node = Node::alone("n1", &[]);
    let help: Vec<&str> = HELP.lines().collect();
    assert_eq!(help.len(), 11);
    assert_eq!(help[0], "Commands:");
    assert_eq!(node.cmd_lines("help", help.len()), help);
    // Nothing more than those lines.
    assert_eq!(node.cmd("get k"), "Key not found.");
}

#[test]
fn keys_lists_the_live_keys_sorted() {
    let mut node = Node::alone("n1", &[]);
    assert_eq!(node.cmd("keys"), "(no keys)");
    for k in ["b", "a", "c", "a"] {
        assert_eq!(node.cmd(&format!("put {k} v")), "Value stored.");
    }
    assert_eq!(node.cmd_lines("keys", 3), ["a", "b", "c"]);
    assert_eq!(node.cmd("delete b"), "Key deleted.");
    assert_eq!(node.cmd_lines("keys", 2), ["a", "c"]);
    assert_eq!(node.status()[1], "keys: 2 live, 1 tombstones");
}

#[test]
fn quit_says_goodbye_and_exits_0() {
    let mut node = Node::alone("n1", &[]);
    assert_eq!(node.cmd("put k v"), "Value stored.");
    // Lines after quit are not run, even when they are already there.
    node.send_raw(b"quit\nput k w\nget k\n");
    assert_eq!(node.read_line(Duration::from_secs(10)), "Goodbye!");
    assert!(node.wait_exit().status.success());
    assert_eq!(
        node.rest_of_stdout(Duration::from_secs(5)),
        Vec::<String>::new()
    );
    assert_no_panic(&node.stderr_lines());

    let mut node = Node::alone("n1", &[]);
    assert_eq!(node.cmd("EXIT"), "Goodbye!");
    assert!(node.wait_exit().status.success());
}

#[test]
fn end_of_input_exits_0_without_a_word() {
    let mut node = Node::alone("n1", &[]);
    assert_eq!(node.cmd("put k v"), "Value stored.");
    // The last line has no newline: it is still a command.
    node.send_raw(b"get k");
    node.close_stdin();
    assert_eq!(node.rest_of_stdout(Duration::from_secs(10)), ["Value: v"]);
    assert!(node.wait_exit().status.success());
    assert_no_panic(&node.stderr_lines());
}

#[test]
fn raw_bytes_that_are_not_utf8_are_kept_and_printed_quoted() {
    // Raw bytes that are not UTF-8, typed without quotes, are kept as
    // they are and printed quoted.
    let mut node = Node::alone("n1", &[]);
    node.send_raw(b"put k caf\xe9 au lait\n");
    assert_eq!(node.read_line(Duration::from_secs(10)), "Value stored.");
    assert_eq!(node.cmd("get k"), "Value: \"caf\\xe9 au lait\"");
}
