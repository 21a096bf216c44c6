//! The size limits on keys, values and peer frames, and values near them.

mod common;

use common::{cluster_with, Node, CONVERGE_TIMEOUT, FAST_SYNC_MS, NO_SYNC_MS};

/// The smallest `--max-frame-bytes`, which keeps the big values small.
const FRAME: usize = 1024 * 1024;

/// The longest value a node accepts with [`FRAME`]: the frame less the
/// longest key and 64 KiB for the rest.
const MAX_VALUE: usize = FRAME - 65535 - 64 * 1024;

#[test]
fn keys_and_values_over_the_limits_are_refused_with_a_reason() {
    let mut node = Node::alone("n1", &["--max-frame-bytes", &FRAME.to_string()]);
    let long_key = "k".repeat(65536);
    assert_eq!(
        node.cmd(&format!("put {long_key} v")),
        "Error: key of 65536 bytes is over the limit of 65535"
    );
    assert_eq!(
        node.cmd(&format!("put k {}", "v".repeat(MAX_VALUE + 1))),
        format!(
            "Error: value of {} bytes is over the limit of {MAX_VALUE}",
            MAX_VALUE + 1
        )
    );
    assert_eq!(node.cmd("get k"), "Key not found.");
    assert_eq!(
        node.cmd(&format!("put {} v", "k".repeat(65535))),
        "Value stored."
    );
    assert_eq!(
        node.cmd(&format!("put k {}", "v".repeat(MAX_VALUE))),
        "Value stored."
    );
    assert_eq!(
        node.cmd("get k"),
        format!("Value: {}", "v".repeat(MAX_VALUE))
    );
}

#[test]
fn a_value_of_the_largest_size_with_the_longest_key_replicates() {
    let mut c = cluster_with(
        2,
        FAST_SYNC_MS,
        &[],
        &["--max-frame-bytes", &FRAME.to_string()],
    );
    let key = "k".repeat(65535);
    let value = "v".repeat(MAX_VALUE);
    assert_eq!(c[0].cmd(&format!("put {key} {value}")), "Value stored.");
    c[1].wait_reply(
        &format!("get {key}"),
        &format!("Value: {value}"),
        CONVERGE_TIMEOUT,
    );
}

#[test]
fn several_large_values_replicate() {
    // Each value fits a frame alone; two of them do not fit one frame.
    let mut c = cluster_with(
        2,
        NO_SYNC_MS,
        &[],
        &["--max-frame-bytes", &FRAME.to_string()],
    );
    let value = "v".repeat(600_000);
    assert_eq!(c[0].cmd(&format!("put big1 {value}")), "Value stored.");
    assert_eq!(c[0].cmd(&format!("put big2 {value}")), "Value stored.");
    assert_eq!(c[0].cmd("sync"), "Synced with 1 of 1 peers.");
    c[1].wait_reply("get big1", &format!("Value: {value}"), CONVERGE_TIMEOUT);
    c[1].wait_reply("get big2", &format!("Value: {value}"), CONVERGE_TIMEOUT);
}
