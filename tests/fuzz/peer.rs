//! The peer protocol: frames read from a connection (the magic, then
//! length-prefixed messages), and the postcard messages inside them,
//! including what a decoded batch does to a store.
//!
//! With a cluster secret, the handshake's messages (`Challenge`, `Proof`,
//! `Confirm` and the refusals) travel in plain frames and are generated
//! with the others; every frame after it is sealed (a MAC after the
//! payload), read by [`SEALED`].

use super::harness::Target;
use super::mutate::{self, rng_of, Pieces, Source};
use crate::rng::Rng;
use netdb::replication::auth::{ClusterSecret, Handshake, Role};
use netdb::replication::frame::{
    read_frame, read_magic, read_sealed_frame, write_frame, write_sealed_frame, FrameError,
};
use netdb::replication::wire::{Batch, Bytes, Done, Message, WireEntry, MAGIC};
use netdb::store::{DataDigest, Store};

const TOKENS: &[&[u8]] = &[
    &MAGIC,
    &[0, 0, 0, 0],
    &[0xff, 0xff, 0xff, 0xff],
    &[0],
    &[1],
    &[5],
];

/// The wall clock the decoded batches are checked against, in
/// microseconds (some time in 2023; generated entries are stamped near it).
const NOW_US: u64 = 1_700_000_000_000_000;

/// A connection's bytes after the listener told it is a peer's.
pub const FRAME: Target = Target {
    name: "peer_frame",
    short_inputs: 3_000,
    generate: |rng| {
        mutate::input(
            rng,
            &Source {
                valid: &|rng| {
                    let mut out = if rng.percent(90) {
                        MAGIC.to_vec()
                    } else {
                        Vec::new()
                    };
                    for _ in 0..1 + rng.below(3) {
                        write_frame(&mut out, &message(rng)).expect("writes to a Vec");
                    }
                    out
                },
                tokens: TOKENS,
            },
        )
    },
    check: check_frames,
    max_live: message_max_live,
};

/// The frames of a session after its handshake: each sealed with the MAC
/// of its direction and sequence number, checked before it is decoded.
pub const SEALED: Target = Target {
    name: "peer_sealed",
    short_inputs: 3_000,
    generate: |rng| {
        mutate::input(
            rng,
            &Source {
                valid: &|rng| {
                    let mut session = session(Role::Initiator);
                    let mut out = Vec::new();
                    for _ in 0..1 + rng.below(3) {
                        write_sealed_frame(&mut out, &message(rng), &mut session.sending)
                            .expect("writes to a Vec");
                    }
                    out
                },
                tokens: TOKENS,
            },
        )
    },
    check: check_sealed,
    max_live: message_max_live,
};

/// The session of the side in `role`, from a fixed secret and nonces.
fn session(role: Role) -> netdb::replication::auth::Session {
    let secret = ClusterSecret::from_text("a fuzzing secret, long enough for the rule")
        .expect("a valid secret");
    let handshake = Handshake {
        version: netdb::replication::wire::PROTOCOL_VERSION,
        initiator: [1; 32],
        responder: [2; 32],
    };
    handshake.session(&secret, role)
}

/// Reads sealed frames as the responder until the first error, whole and
/// in pieces: the same messages and the same error; a frame is decoded
/// only after its MAC checks, so mutated input yields only the frames
/// before the first change.
fn check_sealed(input: &[u8]) {
    let mut rng = rng_of(input);
    let max = [64, 4096, netdb::replication::frame::DEFAULT_MAX_FRAME][rng.below(3)];
    let read_all = |r: &mut dyn std::io::Read| {
        let mut mac = session(Role::Responder).receiving;
        let mut messages = Vec::new();
        loop {
            match read_sealed_frame(&mut &mut *r, max, &mut mac) {
                Ok(m) => messages.push(m),
                Err(e) => return (messages, describe(&e)),
            }
        }
    };
    let whole = read_all(&mut &input[..]);
    let pieces = read_all(&mut Pieces::new(input, &mut rng));
    assert_eq!(whole, pieces, "in pieces and whole differ");
}

/// One frame's body.
pub const MESSAGE: Target = Target {
    name: "peer_message",
    short_inputs: 3_000,
    generate: |rng| {
        mutate::input(
            rng,
            &Source {
                valid: &|rng| postcard::to_stdvec(&message(rng)).expect("encodes"),
                tokens: TOKENS,
            },
        )
    },
    check: check_message,
    max_live: message_max_live,
};

/// A message of any kind, with a few names, entries and clocks.
fn message(rng: &mut Rng) -> Message {
    let name = |rng: &mut Rng| -> String {
        let n = rng.below(4);
        let mut s = format!("n{n}");
        if rng.percent(50) {
            s.push_str(&format!("#{}", rng.below(3)));
        }
        s
    };
    let vv = |rng: &mut Rng| -> Vec<(String, u64)> {
        (0..rng.below(4))
            .map(|_| (name(rng), rng.below(100) as u64))
            .collect()
    };
    let digest = |rng: &mut Rng| {
        rng.percent(50).then(|| DataDigest {
            sum: u128::from(rng.next_u64()) << 64 | u128::from(rng.next_u64()),
            live: rng.next_u64() as u32,
        })
    };
    let version = if rng.percent(80) {
        3
    } else {
        rng.below(5) as u16
    };
    let bytes32 = |rng: &mut Rng| -> [u8; 32] {
        let mut b = [0u8; 32];
        for x in &mut b {
            *x = rng.below(256) as u8;
        }
        b
    };
    match rng.below(12) {
        6 => Message::Challenge {
            version,
            nonce: bytes32(rng),
        },
        7 => Message::Proof {
            version,
            nonce: bytes32(rng),
            proof: bytes32(rng),
        },
        8 => Message::Confirm {
            proof: bytes32(rng),
        },
        9 => Message::ProofRefused,
        10 => Message::NoSecret,
        11 => Message::SecretRequired,
        0 => Message::Hello {
            version,
            name: name(rng),
            wall_clock_ms: NOW_US / 1000,
            instance: rng.next_u64(),
            member: String::new(),
            probe: false,
            replicas: 0,
        },
        1 => Message::Welcome {
            version,
            name: name(rng),
            vv: vv(rng),
            instance: rng.next_u64(),
            wall_clock_ms: NOW_US / 1000,
            replicas: 0,
        },
        2 => Message::Push {
            batch: batch(rng),
            done: rng.percent(30).then(|| Done {
                vv: vv(rng),
                digest: digest(rng),
                full: rng.percent(50),
                sent: None,
                serving: None,
            }),
        },
        3 => Message::Next,
        4 => Message::Pull { batch: batch(rng) },
        _ => Message::Ack {
            vv: vv(rng),
            digest: digest(rng),
            sent: None,
            serving: None,
        },
    }
}

/// A batch that a store would mostly take: indices in range, clocks
/// non-zero, timestamps near [`NOW_US`].
fn batch(rng: &mut Rng) -> Batch {
    let names: Vec<String> = (0..1 + rng.below(3))
        .map(|i| format!("w{i}#{}", rng.below(2)))
        .collect();
    let n = names.len() as u32;
    let entries = (0..rng.below(5))
        .map(|_| WireEntry {
            key: Bytes(mutate::some_bytes(rng, 12)),
            value: rng.percent(80).then(|| Bytes(mutate::some_bytes(rng, 20))),
            ts: ((NOW_US / 1000) << 16) - rng.below(1 << 20) as u64,
            writer: rng.below(n as usize) as u32,
            clock: (0..1 + rng.below(3))
                .map(|_| (rng.below(n as usize) as u32, 1 + rng.below(50) as u64))
                .collect(),
            expires: None,
            counter: None,
        })
        .collect();
    Batch {
        names,
        entries,
        groups: Vec::new(),
    }
}

/// A decoded message holds its input a few times over, and serde sets
/// aside room for an announced count before the elements arrive (at most
/// 1 MiB per sequence: `serde::__private::size_hint::cautious`), for each
/// sequence being decoded (a batch's entries, an entry's clock, a version
/// vector); a frame's body buffer starts at up to 64 KiB; a store that
/// takes a batch holds its entries.
fn message_max_live(len: usize) -> usize {
    64 * len + 4 * 1024 * 1024
}

/// Reads the magic and then frames until the first error, from the whole
/// input and again in pieces: the same messages and the same error. Every
/// message must frame and unframe back to itself.
fn check_frames(input: &[u8]) {
    let mut rng = rng_of(input);
    let max = [64, 4096, netdb::replication::frame::DEFAULT_MAX_FRAME][rng.below(3)];
    let whole = frames(&mut &input[..], max);
    let pieces = frames(&mut Pieces::new(input, &mut rng), max);
    assert_eq!(whole, pieces, "in pieces and whole differ");
    let (messages, _) = whole;
    for message in messages {
        let mut framed = Vec::new();
        let n = write_frame(&mut framed, &message).expect("writes to a Vec");
        assert_eq!(n, framed.len());
        let back = read_frame(&mut &framed[..], usize::MAX).expect("reads its own frame");
        assert_eq!(back, message, "a message does not round-trip");
    }
}

/// The messages read, and the error that ended the reading, as text.
fn frames(r: &mut impl std::io::Read, max: usize) -> (Vec<Message>, String) {
    if let Err(e) = read_magic(r) {
        return (Vec::new(), describe(&e));
    }
    let mut messages = Vec::new();
    loop {
        match read_frame(r, max) {
            Ok(message) => messages.push(message),
            Err(e) => return (messages, describe(&e)),
        }
    }
}

fn describe(e: &FrameError) -> String {
    match e {
        FrameError::Io(io) => format!("io {:?}", io.kind()),
        other => other.to_string(),
    }
}

/// Decodes one message; a decoded message must encode and decode back to
/// itself, and a batch in it must be taken or refused by a store, never
/// panic it.
fn check_message(input: &[u8]) {
    let Ok(message) = postcard::from_bytes::<Message>(input) else {
        return;
    };
    let encoded = postcard::to_stdvec(&message).expect("encodes");
    assert_eq!(
        postcard::from_bytes::<Message>(&encoded).expect("decodes its own encoding"),
        message,
        "a message does not round-trip"
    );
    let _ = message.kind().to_string();
    if let Message::Push { batch, .. } | Message::Pull { batch } = &message {
        let mut store = Store::new("fuzz#1", 1 << 20);
        if store.apply_batch(batch, NOW_US).is_ok() {
            // Taken twice: the second time changes nothing.
            let digest = store.data_digest();
            store
                .apply_batch(batch, NOW_US)
                .expect("taken once, taken again");
            assert_eq!(store.data_digest(), digest, "a batch applied twice differs");
        }
    }
}
