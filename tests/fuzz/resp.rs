//! RESP, both directions: the requests a client sends (multibulk and
//! inline), and the replies `netdb --connect` reads from a node.

use super::harness::Target;
use super::mutate::{self, rng_of, Source};
use crate::rng::Rng;
use netdb::redis::resp::{
    encode_command, parse_pipeline, parse_reply, parse_request, Limits, Protocol, ProtocolError,
    Reply, ReplyDecoder, Request, RequestDecoder,
};

const REQUEST_TOKENS: &[&[u8]] = &[
    b"\r\n",
    b"\r",
    b"\n",
    b"*",
    b"$",
    b"*1\r\n",
    b"$0\r\n\r\n",
    b"*-1\r\n",
    b"*0\r\n",
    b"$-1\r\n",
    b"*2147483647\r\n",
    b"$2147483647\r\n",
    b"\"",
    b"'",
    b"\\x",
    b"\\",
    b" ",
    b"\t",
    b"\0",
    b"PING",
    b"SET",
];

/// Small limits, so that every limit is reached by short inputs too.
const SMALL: Limits = Limits {
    max_args: 4,
    max_bulk_len: 32,
    max_inline_len: 48,
    max_request_len: 128,
};

/// Multibulk requests, mostly: what client libraries send.
pub const REQUEST: Target = Target {
    name: "resp_request",
    short_inputs: 5_000,
    generate: |rng| {
        mutate::input(
            rng,
            &Source {
                valid: &|rng| pipeline(rng, 80),
                tokens: REQUEST_TOKENS,
            },
        )
    },
    check: check_requests,
    max_live: request_max_live,
};

/// Inline requests, mostly: what a person types into telnet.
pub const INLINE: Target = Target {
    name: "resp_inline",
    short_inputs: 5_000,
    generate: |rng| {
        mutate::input(
            rng,
            &Source {
                valid: &|rng| pipeline(rng, 15),
                tokens: REQUEST_TOKENS,
            },
        )
    },
    check: check_requests,
    max_live: request_max_live,
};

/// A pipeline of a few requests, `multibulk` percent of them multibulk,
/// the others inline (with quoting) or blank.
fn pipeline(rng: &mut Rng, multibulk: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..1 + rng.below(4) {
        if rng.percent(multibulk) {
            let args: Vec<Vec<u8>> = (0..rng.below(6)).map(|_| arg(rng)).collect();
            match rng.below(20) {
                0 => out.extend_from_slice(b"*0\r\n"),
                1 => out.extend_from_slice(b"*-1\r\n"),
                _ => Request::from(args).encode(&mut out),
            }
        } else {
            inline(rng, &mut out);
        }
    }
    out
}

fn arg(rng: &mut Rng) -> Vec<u8> {
    let len = match rng.below(10) {
        0 => 0,
        1 => rng.below(200),
        _ => rng.below(12),
    };
    if rng.percent(50) {
        rng.bytes(len)
    } else {
        (0..len).map(|_| b'a' + rng.below(26) as u8).collect()
    }
}

/// An inline line: bare words, `"..."` with escapes, `'...'`.
fn inline(rng: &mut Rng, out: &mut Vec<u8>) {
    const ESCAPES: &[&[u8]] = &[
        b"\\n", b"\\r", b"\\t", b"\\b", b"\\a", b"\\\\", b"\\\"", b"\\x41", b"\\xZZ", b"\\x4",
        b"\\q",
    ];
    for w in 0..rng.below(5) {
        if w > 0 || rng.percent(10) {
            out.extend_from_slice([&b" "[..], b"\t", b"  "][rng.below(3)]);
        }
        match rng.below(4) {
            0 => {
                out.push(b'"');
                for _ in 0..rng.below(6) {
                    if rng.percent(30) {
                        out.extend_from_slice(ESCAPES[rng.below(ESCAPES.len())]);
                    } else {
                        out.push(b'a' + rng.below(26) as u8);
                    }
                }
                out.push(b'"');
            }
            1 => {
                out.push(b'\'');
                for _ in 0..rng.below(6) {
                    if rng.percent(20) {
                        out.extend_from_slice(b"\\'");
                    } else {
                        out.push(b' ' + rng.below(90) as u8);
                    }
                }
                out.push(b'\'');
            }
            _ => {
                for _ in 0..1 + rng.below(8) {
                    out.push(b'!' + rng.below(90) as u8);
                }
            }
        }
    }
    out.extend_from_slice(if rng.percent(80) { b"\r\n" } else { b"\n" });
}

/// Request decoding holds its input twice (one-shot and fed in pieces)
/// and every request decoded, twice. A request costs more than its bytes:
/// `a\n` (two bytes) is a request in the batch (24 bytes, in a vector
/// that doubles), its argument vector (room for 4, 96 bytes) and the
/// argument (8), about 80 bytes per input byte, held twice. A multibulk
/// header sets aside at most 64 argument slots before they arrive, and an
/// announced length nothing: what must never show is memory that follows
/// a length or count instead of the bytes that arrived.
fn request_max_live(len: usize) -> usize {
    160 * len + 64 * 1024
}

/// Decodes `input` as one buffer and again fed in pieces: both must find
/// the same requests and the same error, within the limits; every request
/// must encode and decode back to itself.
fn check_requests(input: &[u8]) {
    let mut rng = rng_of(input);
    let limits = if rng.percent(30) {
        SMALL
    } else {
        Limits::default()
    };
    let whole = parse_pipeline(input, &limits, usize::MAX);
    assert!(whole.consumed <= input.len());

    let mut decoder = RequestDecoder::new(limits);
    let mut buf = Vec::new();
    let mut requests = Vec::new();
    let mut error = None;
    let mut fed = 0;
    'feed: for size in mutate::Sizes::new(&mut rng, input.len()) {
        buf.extend_from_slice(&input[fed..fed + size]);
        fed += size;
        loop {
            let batch = decoder.decode_batch(&buf, 1 + rng.below(3));
            requests.extend(batch.requests);
            buf.drain(..batch.consumed);
            if let Some(e) = batch.error {
                error = Some(e);
                break 'feed;
            }
            if batch.consumed == 0 {
                break;
            }
        }
    }
    assert_eq!(requests, whole.requests, "in pieces and whole differ");
    assert_eq!(error, whole.error, "in pieces and whole differ");
    if error.is_none() {
        assert_eq!(buf, input[whole.consumed..], "different bytes left over");
    }

    for request in &whole.requests {
        assert!(request.len() <= limits.max_args, "{} args", request.len());
        assert!(!request.is_empty(), "an empty request in a batch");
        // Under the default limits: an inline argument may be longer
        // than a bulk one may (Redis's limits are so too).
        let mut encoded = Vec::new();
        request.encode(&mut encoded);
        assert_eq!(
            parse_request(&encoded, &Limits::default()),
            Ok(Some((request.clone(), encoded.len()))),
            "a request does not round-trip"
        );
        let args: Vec<&[u8]> = request.args.iter().map(Vec::as_slice).collect();
        let mut command = Vec::new();
        encode_command(&args, &mut command);
        assert_eq!(command, encoded);
    }
    if let Some(e) = &whole.error {
        // Every error has Redis's text for the client.
        assert!(!format!("{e}").is_empty());
    }
}

const REPLY_TOKENS: &[&[u8]] = &[
    b"\r\n",
    b"+",
    b"-",
    b":",
    b"$",
    b"*",
    b"*1\r\n",
    b"$-1\r\n",
    b"*-1\r\n",
    b"*0\r\n",
    b"$2147483647\r\n",
    b"*2147483647\r\n",
    b":9223372036854775807\r\n",
    b"+OK\r\n",
];

/// The replies `netdb --connect` reads.
pub const REPLY: Target = Target {
    name: "resp_reply",
    short_inputs: 5_000,
    generate: |rng| {
        mutate::input(
            rng,
            &Source {
                valid: &|rng| {
                    let mut out = Vec::new();
                    for _ in 0..1 + rng.below(3) {
                        let depth = if rng.percent(3) { 200 } else { 4 };
                        reply(rng, depth).write_to(&mut out);
                    }
                    out
                },
                tokens: REPLY_TOKENS,
            },
        )
    },
    check: check_replies,
    max_live: reply_max_live,
};

fn reply(rng: &mut Rng, depth: usize) -> Reply {
    let text = |rng: &mut Rng| -> String {
        (0..rng.below(10))
            .map(|_| char::from(b' ' + rng.below(95) as u8))
            .collect()
    };
    match rng.below(if depth == 0 { 6 } else { 8 }) {
        0 => Reply::Simple(text(rng)),
        1 => Reply::Error(text(rng)),
        2 => Reply::Integer(rng.next_u64() as i64 >> rng.below(64)),
        3 => Reply::Bulk(arg(rng)),
        4 => Reply::Null,
        5 => Reply::NullArray,
        _ if depth > 10 => Reply::Array(vec![reply(rng, depth - 1)]),
        _ => Reply::Array((0..rng.below(5)).map(|_| reply(rng, depth - 1)).collect()),
    }
}

/// Reply decoding holds its input twice and the replies in it; an array
/// header of a few bytes sets aside up to 64 slots, at each of up to
/// `MAX_REPLY_DEPTH` levels.
fn reply_max_live(len: usize) -> usize {
    let per_header = 64 * std::mem::size_of::<Reply>();
    (per_header / 4 + 32) * len + 64 * 1024
}

/// Decodes `input` one reply at a time from the whole buffer and again
/// fed in pieces: the same replies and the same error; every reply must
/// encode and decode back to itself.
fn check_replies(input: &[u8]) {
    let mut whole = Vec::new();
    let mut whole_error = None;
    let mut at = 0;
    loop {
        match parse_reply(&input[at..]) {
            Ok(Some((reply, used))) => {
                assert!(used > 0 && at + used <= input.len());
                at += used;
                whole.push(reply);
            }
            Ok(None) => break,
            Err(e) => {
                whole_error = Some(e);
                break;
            }
        }
    }

    let mut rng = rng_of(input);
    let mut decoder = ReplyDecoder::new();
    let mut buf = Vec::new();
    let mut replies = Vec::new();
    let mut error: Option<ProtocolError> = None;
    let mut fed = 0;
    'feed: for size in mutate::Sizes::new(&mut rng, input.len()) {
        buf.extend_from_slice(&input[fed..fed + size]);
        fed += size;
        loop {
            match decoder.decode(&buf) {
                Ok(Some((reply, used))) => {
                    buf.drain(..used);
                    replies.push(reply);
                }
                Ok(None) => break,
                Err(e) => {
                    error = Some(e);
                    break 'feed;
                }
            }
        }
    }
    assert_eq!(replies, whole, "in pieces and whole differ");
    assert_eq!(error, whole_error, "in pieces and whole differ");

    // Every reply encodes to bytes that decode to a reply which encodes
    // to the same bytes again, in both protocols. (Compared as bytes: RESP3
    // writes a null array as a plain null, RESP2 a double as a bulk, and a
    // NaN is not equal to itself.)
    for reply in &whole {
        for proto in [Protocol::Resp2, Protocol::Resp3] {
            let encoded = reply.to_bytes_as(proto);
            let (again, used) = match parse_reply(&encoded) {
                Ok(Some(decoded)) => decoded,
                other => panic!("a reply does not decode after encoding as {proto:?}: {other:?}"),
            };
            assert_eq!(used, encoded.len(), "a reply does not round-trip");
            assert_eq!(
                again.to_bytes_as(proto),
                encoded,
                "a reply does not round-trip as {proto:?}"
            );
        }
    }
}
