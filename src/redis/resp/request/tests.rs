//! The request decoder's tests: both request forms, cut anywhere, limits,
//! and Redis's error texts.

use super::*;
use crate::redis::resp::{encode_command, parse_reply};
use proptest::prelude::*;

pub(in crate::redis::resp) fn args(list: &[&[u8]]) -> Request {
    Request {
        args: list.iter().map(|a| a.to_vec()).collect(),
    }
}

pub(in crate::redis::resp) fn parse(buf: &[u8]) -> Result<Option<(Request, usize)>, ProtocolError> {
    parse_request(buf, &Limits::default())
}

/// The whole of `buf` as one request.
pub(in crate::redis::resp) fn one(buf: &[u8]) -> Request {
    match parse(buf) {
        Ok(Some((request, used))) => {
            assert_eq!(used, buf.len(), "{}", buf.escape_ascii());
            request
        }
        other => panic!("{}: {other:?}", buf.escape_ascii()),
    }
}

pub(in crate::redis::resp) fn error(buf: &[u8], limits: &Limits) -> ProtocolError {
    match parse_request(buf, limits) {
        Err(e) => e,
        other => panic!("{}: expected an error, got {other:?}", buf.escape_ascii()),
    }
}

fn small() -> Limits {
    Limits {
        max_args: 4,
        max_bulk_len: 16,
        max_inline_len: 8,
        max_request_len: 64,
    }
}

fn encoded(list: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_command(list, &mut out);
    out
}

#[test]
fn multibulk_requests() {
    assert_eq!(
        one(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"),
        args(&[b"GET", b"k"])
    );
    assert_eq!(one(b"*1\r\n$0\r\n\r\n"), args(&[b""]));
    assert_eq!(
        one(b"*1\r\n$4\r\na\r\nb\r\n"),
        args(&[b"a\r\nb"]),
        "CRLF inside a bulk is data"
    );
    let every_byte: Vec<u8> = (0..=255).collect();
    assert_eq!(
        one(&encoded(&[b"SET", &every_byte])),
        args(&[b"SET", &every_byte])
    );
}

#[test]
fn empty_multibulk_requests_are_consumed_with_nothing_to_run() {
    assert_eq!(parse(b"*0\r\n"), Ok(Some((Request::default(), 4))));
    assert_eq!(parse(b"*-1\r\n"), Ok(Some((Request::default(), 5))));
    assert_eq!(parse(b"*-7\r\nPING"), Ok(Some((Request::default(), 5))));
}

/// draining what it consumes; returns every non-empty request.
fn trickle(stream: &[u8], limits: Limits) -> Result<Vec<Request>, ProtocolError> {
    let mut decoder = RequestDecoder::new(limits);
    let mut buf = Vec::new();
    let mut got = Vec::new();
    for &b in stream {
        buf.push(b);
        while let Some((request, used)) = decoder.decode(&buf)? {
            buf.drain(..used);
            if !request.is_empty() {
                got.push(request);
            }
        }
    }
    assert!(buf.is_empty(), "left over: {}", buf.escape_ascii());
    Ok(got)
}

#[test]
fn a_request_cut_anywhere_waits_for_the_rest() {
    for full in [
        encoded(&[b"SET", b"key", b"a value\r\n"]),
        b"set \"a b\" 'c'\r\n".to_vec(),
        b"*0\r\n".to_vec(),
    ] {
        let whole = parse(&full);
        assert!(matches!(whole, Ok(Some((_, n))) if n == full.len()));
        for cut in 0..full.len() {
            assert_eq!(parse(&full[..cut]), Ok(None), "cut at {cut}");
        }
        let mut decoder = RequestDecoder::new(Limits::default());
        for cut in 0..full.len() {
            assert_eq!(decoder.decode(&full[..cut]), Ok(None), "cut at {cut}");
        }
        assert_eq!(decoder.decode(&full), whole);
    }
}

#[test]
fn a_decoder_keeps_its_progress_between_reads() {
    let list: Vec<Vec<u8>> = (0..20_000u32).map(|n| n.to_string().into_bytes()).collect();
    let refs: Vec<&[u8]> = list.iter().map(Vec::as_slice).collect();
    let stream = encoded(&refs);
    let mut decoder = RequestDecoder::new(Limits::default());
    let half = stream.len() / 2;
    assert_eq!(decoder.decode(&stream[..half]), Ok(None));
    // The first half's arguments are parsed once and kept, not parsed
    // again on every read.
    assert!(decoder.args.len() > 5_000, "{}", decoder.args.len());
    let mut got = None;
    for end in (half..=stream.len()).step_by(1000).chain([stream.len()]) {
        if let Some(done) = decoder.decode(&stream[..end]).expect("valid") {
            got = Some(done);
            break;
        }
    }
    assert_eq!(got, Some((Request { args: list }, stream.len())));
}

#[test]
fn a_pipeline_fed_a_byte_at_a_time_gives_the_same_requests() {
    let mut stream = encoded(&[b"SET", b"k", b"v"]);
    stream.extend_from_slice(b"\r\nGET k\r\n");
    stream.extend(encoded(&[b"DEL", b"k"]));
    stream.extend_from_slice(b"*0\r\nPING\n");
    let want = vec![
        args(&[b"SET", b"k", b"v"]),
        args(&[b"GET", b"k"]),
        args(&[b"DEL", b"k"]),
        args(&[b"PING"]),
    ];
    assert_eq!(trickle(&stream, Limits::default()), Ok(want.clone()));
    let batch = parse_pipeline(&stream, &Limits::default(), 100);
    assert_eq!(
        batch,
        Batch {
            requests: want,
            consumed: stream.len(),
            error: None
        }
    );
}

#[test]
fn a_batch_stops_at_its_size_at_an_incomplete_request_and_at_an_error() {
    let mut stream = b"PING\r\nPING\r\nPING\r\n".to_vec();
    let limits = Limits::default();
    let batch = parse_pipeline(&stream, &limits, 2);
    assert_eq!(batch.requests.len(), 2);
    assert_eq!(batch.consumed, 12);

    stream.extend_from_slice(b"*2\r\n$3\r\nGET\r\n$1");
    let mut decoder = RequestDecoder::new(limits);
    let batch = decoder.decode_batch(&stream, 10);
    assert_eq!((batch.requests.len(), batch.consumed), (3, 18));
    stream.drain(..batch.consumed);
    stream.extend_from_slice(b"\r\nk\r\n");
    let batch = decoder.decode_batch(&stream, 10);
    assert_eq!(batch.requests, vec![args(&[b"GET", b"k"])]);
    assert_eq!(batch.consumed, stream.len());

    let batch = parse_pipeline(b"PING\r\n*1\r\nx\r\nPING\r\n", &limits, 10);
    assert_eq!(batch.requests, vec![args(&[b"PING"])]);
    assert_eq!(batch.consumed, 6);
    assert_eq!(
        batch.error,
        Some(ProtocolError::ExpectedDollar { got: b'x' })
    );
}

#[test]
fn bad_counts_and_lengths() {
    let limits = Limits::default();
    for bad in [
        &b"*abc\r\n"[..],
        b"*1x\r\n",
        b"*01\r\n",
        b"*+1\r\n",
        b"*\r\n",
        b"* 1\r\n",
        b"*-0\r\n",
        b"*99999999999999999999\r\n",
        b"*1048577\r\n",
        b"*1\rX",
    ] {
        assert_eq!(
            error(bad, &limits),
            ProtocolError::InvalidMultibulkLength,
            "{}",
            bad.escape_ascii()
        );
    }
    for bad in [
        &b"*1\r\n$-1\r\n"[..],
        b"*1\r\n$-5\r\n",
        b"*1\r\n$abc\r\n",
        b"*1\r\n$3x\r\n",
        b"*1\r\n$\r\n",
        b"*1\r\n$3\rX",
        b"*1\r\n$536870913\r\n",
    ] {
        assert_eq!(
            error(bad, &limits),
            ProtocolError::InvalidBulkLength,
            "{}",
            bad.escape_ascii()
        );
    }
}

#[test]
fn a_bulk_must_start_with_a_dollar_and_end_with_crlf() {
    let limits = Limits::default();
    assert_eq!(
        error(b"*1\r\nx3\r\n", &limits),
        ProtocolError::ExpectedDollar { got: b'x' }
    );
    assert_eq!(
        error(b"*2\r\n$1\r\na\r\n:1\r\n", &limits),
        ProtocolError::ExpectedDollar { got: b':' }
    );
    assert_eq!(
        error(b"*1\r\n$3\r\nfooXY", &limits),
        ProtocolError::BulkNotTerminated
    );
    assert_eq!(
        error(b"*1\r\n$3\r\nfoo\n\r", &limits),
        ProtocolError::BulkNotTerminated
    );
}

#[test]
fn limits_are_enforced_before_the_bytes_arrive() {
    let limits = small();
    // Lengths over the limits fail on their header alone.
    assert_eq!(
        error(b"*5\r\n", &limits),
        ProtocolError::InvalidMultibulkLength
    );
    assert_eq!(
        error(b"*1\r\n$17\r\n", &limits),
        ProtocolError::InvalidBulkLength
    );
    assert_eq!(
        error(
            b"*4\r\n$16\r\n0123456789abcdef\r\n$16\r\n0123456789abcdef\r\n$16\r\n",
            &limits
        ),
        ProtocolError::TooBigRequest { max: 64 }
    );
    // A huge but allowed count reserves nothing up front.
    let mut decoder = RequestDecoder::new(Limits::default());
    assert_eq!(decoder.decode(b"*1000000\r\n$1000000\r\n"), Ok(None));
    assert!(decoder.args.capacity() <= 64);
    assert_eq!(decoder.bulk_len, Some(1_000_000));
}

#[test]
fn over_long_lines_are_refused_once_they_pass_the_limit() {
    let limits = small();
    // Eight bytes before the '\n' is the most an inline line may hold.
    assert_eq!(
        parse_request(b"GET 1234\n", &limits),
        Ok(Some((args(&[b"GET", b"1234"]), 9)))
    );
    assert_eq!(parse_request(b"GET 1234", &limits), Ok(None));
    assert_eq!(
        error(b"GET 12345", &limits),
        ProtocolError::TooBigInlineRequest
    );
    assert_eq!(
        error(b"GET 1234\r\n", &limits),
        ProtocolError::TooBigInlineRequest,
        "the \\r counts"
    );
    assert_eq!(
        error(b"*111111111", &limits),
        ProtocolError::TooBigMbulkCount
    );
    assert_eq!(
        error(b"*11111111", &limits),
        ProtocolError::TooBigMbulkCount
    );
    assert_eq!(parse_request(b"*1111111", &limits), Ok(None));
    assert_eq!(
        error(b"*1\r\n$111111111", &limits),
        ProtocolError::TooBigBulkCount
    );
    assert_eq!(
        error(
            b"a b c d e\n",
            &Limits {
                max_inline_len: 64,
                ..small()
            }
        ),
        ProtocolError::TooManyInlineArgs { max: 4 }
    );
    assert_eq!(
        parse_request(b"a b c d\n", &limits).map(|r| r.map(|(r, _)| r.len())),
        Ok(Some(4))
    );
}

proptest! {
    #![proptest_config(crate::proptest_config("tests/regressions/resp.txt"))]
    #[test]
    fn encoded_commands_parse_back_whatever_bytes_they_hold(
        list in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let refs: Vec<&[u8]> = list.iter().map(Vec::as_slice).collect();
        let bytes = encoded(&refs);
        let want = Request { args: list.clone() };
        prop_assert_eq!(parse(&bytes), Ok(Some((want.clone(), bytes.len()))));
        let mut again = Vec::new();
        want.encode(&mut again);
        prop_assert_eq!(&again, &bytes);
        // Split in two reads with one decoder: the same request.
        let cut = cut.index(bytes.len());
        let mut decoder = RequestDecoder::new(Limits::default());
        prop_assert_eq!(decoder.decode(&bytes[..cut]), Ok(None));
        prop_assert_eq!(decoder.decode(&bytes), Ok(Some((want, bytes.len()))));
    }

    #[test]
    fn random_bytes_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..200),
        printable in "[*$:+\\-0-9\r\n \"'\\\\xa]{0,80}",
    ) {
        for input in [&bytes[..], printable.as_bytes()] {
            let _ = parse(input);
            let _ = parse_request(input, &small());
            let _ = parse_pipeline(input, &small(), 8);
            let _ = parse_reply(input);
            let _ = trickle_quietly(input, small());
        }
    }
}

/// Like [`trickle`], without insisting the stream is well formed.
fn trickle_quietly(stream: &[u8], limits: Limits) -> Result<(), ProtocolError> {
    let mut decoder = RequestDecoder::new(limits);
    let mut buf = Vec::new();
    for &b in stream {
        buf.push(b);
        while let Some((_, used)) = decoder.decode(&buf)? {
            buf.drain(..used);
        }
    }
    Ok(())
}
