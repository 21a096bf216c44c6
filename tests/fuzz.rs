//! Fuzzing every decoder that reads bytes a node did not write itself:
//! structured random inputs, seeded and replayable.
//!
//! Each target makes valid encodings, then damages them (bit flips,
//! truncation, splices with another input, repeated pieces, huge lengths
//! and counts, deep nesting) or replaces them by raw bytes, and checks on
//! every input that the decoder does not panic, does not hang (a time
//! bound per input, and a watchdog for an input that never returns) and
//! does not allocate beyond what the input and the decoder's limits allow
//! (the counting allocator below measures the peak of live bytes). Where
//! a decoder keeps state between reads, the input is also fed in pieces
//! and must decode the same; what decodes must encode and decode back to
//! itself.
//!
//! A target's corpus, `tests/fuzz_corpus/<target>/` (inputs that once
//! failed, and others worth keeping), runs first on every run.
//!
//! ```text
//! cargo test --test fuzz                     # the short run: a few thousand inputs each
//! NETDB_FUZZ_INPUTS=10000000 cargo test --release --test fuzz -- --nocapture --test-threads 1
//! NETDB_TEST_SEED=<seed> cargo test --test fuzz <target>   # replays a failure
//! ```
//!
//! Coverage-guided fuzzing (cargo-fuzz, cargo-afl) needs a nightly
//! compiler or a compiler plugin; these targets need neither, and run
//! with the other tests. Each target's `check` takes plain bytes, so a
//! coverage-guided harness could call the same functions.

mod fuzz {
    pub mod alloc;
    pub mod disk;
    pub mod harness;
    pub mod mutate;
    pub mod peer;
    pub mod resp;
    pub mod text;
}

#[path = "common/rng.rs"]
#[allow(dead_code)]
mod rng;

use fuzz::{disk, harness, peer, resp, text};

#[global_allocator]
static ALLOCATOR: fuzz::alloc::Counting = fuzz::alloc::Counting;

/// One test per target; the list of every decoder fuzzed.
macro_rules! targets {
    ($($test:ident => $target:expr,)*) => {
        $(
            #[test]
            fn $test() {
                harness::run(&$target);
            }
        )*
    };
}

targets! {
    // RESP from clients: multibulk, and inline with quoting.
    resp_request => resp::REQUEST,
    resp_inline => resp::INLINE,
    // RESP from a node, read by `netdb --connect`.
    resp_reply => resp::REPLY,
    // The peer protocol: framing over a connection, and the messages.
    // The handshake's messages are among peer_message's; peer_sealed
    // reads the MAC'd frames that follow it.
    peer_frame => peer::FRAME,
    peer_sealed => peer::SEALED,
    peer_message => peer::MESSAGE,
    // The data directory: record framing, record bodies, whole files.
    log_record => disk::RECORD,
    journal_change => disk::CHANGE,
    recovery => disk::RECOVERY,
    recovery_files => disk::RECOVERY_FILES,
    // Text: console lines, the config file, the peers file.
    console_line => text::CONSOLE_LINE,
    config_file => text::CONFIG_FILE,
    peers_file => text::PEERS_FILE,
}
