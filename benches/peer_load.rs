//! A peer that pushes writes into a running netdb node, for
//! `benches/durability.sh`: how fast a node takes writes through the peer
//! path (frame decode, merge on the store thread, log record, fsync as the
//! node's `--fsync` says, acknowledgement), without a second node's own
//! costs in the way.
//!
//! It connects as a pusher does (magic, `Hello`, `Welcome`), then runs
//! sync rounds back to back for a fixed time. Each round is what a pusher
//! sends when BATCH writes have happened since its last round: one `Push`
//! of BATCH new versions (10-byte keys, 100-byte values, each a new dot of
//! this writer) carrying the pusher's version vector, answered by the
//! node's `Ack` (with no `Pull` before it: the node holds nothing this
//! writer lacks). The node serves it as a real round: an apply and a
//! version-vector join, each logged before it is answered.
//!
//! Usage: `peer_load ADDR [BATCH] [SECONDS]` (defaults 1000 and 2);
//! prints `<writes per second> <writes> <rounds>` on one line. Run with no
//! address (as `cargo bench` does) it says how to use it and exits.

mod common;

use common::frame::{read_frame, write_frame, DEFAULT_MAX_FRAME};
use common::harness::{greeting, read_until_ack};
use common::wire::{Batch, Bytes, DoneRef, Message, MessageRef, WireEntry, WireVv};
use std::io::{BufReader, BufWriter, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// A wall clock (µs) for the versions' timestamps, raised by one a write.
const START_TS: u64 = 1_700_000_000_000_000;

fn main() -> ExitCode {
    // `cargo bench` passes flags such as `--bench`: only the rest counts.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let Some(addr) = args.first() else {
        eprintln!(
            "peer_load: usage: peer_load ADDR [BATCH] [SECONDS] (run by benches/durability.sh)"
        );
        return ExitCode::SUCCESS;
    };
    let number = |i: usize, default: u64| args.get(i).map_or(Ok(default), |s| s.parse::<u64>());
    let (Ok(batch), Ok(seconds)) = (number(1, 1000), number(2, 2)) else {
        eprintln!("peer_load: BATCH and SECONDS are whole numbers");
        return ExitCode::FAILURE;
    };
    match run(addr, batch.max(1), Duration::from_secs(seconds.max(1))) {
        Ok((rate, writes, rounds)) => {
            println!("{rate:.0} {writes} {rounds}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("peer_load: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Pushes rounds of `batch` writes for `duration`; returns the writes per
/// second, the writes and the rounds.
fn run(addr: &str, batch: u64, duration: Duration) -> Result<(f64, u64, u64), String> {
    let stream = TcpStream::connect(addr).map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    let timeout = Some(Duration::from_secs(30));
    stream
        .set_nodelay(true)
        .and_then(|()| stream.set_read_timeout(timeout))
        .and_then(|()| stream.set_write_timeout(timeout))
        .map_err(|e| e.to_string())?;
    let mut reader =
        BufReader::with_capacity(64 * 1024, stream.try_clone().map_err(|e| e.to_string())?);
    let mut writer = BufWriter::with_capacity(1024 * 1024, stream);
    writer
        .write_all(&greeting("peerload"))
        .and_then(|()| writer.flush())
        .map_err(|e| e.to_string())?;
    match read_frame(&mut reader, DEFAULT_MAX_FRAME).map_err(|e| e.to_string())? {
        Message::Welcome { .. } => {}
        other => return Err(format!("expected Welcome, got {}", other.kind())),
    }

    // A writer of its own each run, so a node that has seen an earlier
    // run does not take these writes for ones it has.
    let writer_name = format!("peerload#{}", std::process::id());
    let value = Bytes(vec![b'v'; 100]);
    let mut counter = 0u64;
    let mut rounds = 0u64;
    let start = Instant::now();
    while start.elapsed() < duration {
        let entries = (0..batch)
            .map(|_| {
                counter += 1;
                WireEntry {
                    key: Bytes(format!("p{:09}", counter % 1_000_000_000).into_bytes()),
                    value: Some(value.clone()),
                    ts: START_TS + counter,
                    writer: 0,
                    clock: vec![(0, counter)],
                    expires: None,
                    counter: None,
                }
            })
            .collect();
        let batch = Batch {
            groups: Vec::new(),
            names: vec![writer_name.clone()],
            entries,
        };
        let vv: WireVv = vec![(writer_name.clone(), counter)];
        write_frame(
            &mut writer,
            &MessageRef::Push {
                batch: &batch,
                done: Some(DoneRef {
                    vv: &vv,
                    digest: None,
                    full: false,
                    sent: None,
                    serving: None,
                }),
            },
        )
        .map_err(|e| e.to_string())?;
        writer.flush().map_err(|e| e.to_string())?;
        let vv = read_until_ack(&mut reader)?;
        // The node's vector must now cover every write pushed.
        if !vv.iter().any(|(n, c)| *n == writer_name && *c >= counter) {
            return Err(format!("the node acknowledged {vv:?}, not {counter}"));
        }
        rounds += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    Ok((counter as f64 / secs, counter, rounds))
}
