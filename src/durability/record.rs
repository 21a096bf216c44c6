//! Records of the append-only log, and reading them back after a crash.
//!
//! A record is a 12-byte header and a body, all integers little endian:
//!
//! ```text
//! [len: u32][len_check: u32 = crc32 of the 4 len bytes][body_crc: u32 = crc32 of body][body: len bytes]
//! ```
//!
//! The length has its own checksum so that recovery can tell the two kinds of
//! damage apart. A torn tail (the last write cut short by a crash, or the
//! file's end zero-filled by the file system) is normal: the caller cuts the
//! file there and carries on. Damage with more data after it is not: a flipped
//! bit in a length must never make recovery silently drop every record after
//! it, so [`Reader`] (and [`scan`], its whole-slice form) reports it as
//! [`End::Corrupt`] and leaves the decision to the caller.
//!
//! Sans I/O: works on `impl Read`, byte slices and `impl Write`. It never
//! opens, truncates or syncs a file, never allocates from a length it has
//! not checked, and never returns a body whose checksum does not match.

use std::fmt;
use std::io::{self, Read, Write};
use std::ops::Range;

/// Bytes in a record header: length, length check, body checksum.
pub const HEADER_LEN: usize = 12;

/// A body too long to be written as a record. Refusing it on the write side
/// keeps the log from holding a record that [`scan`] would report as
/// [`CorruptReason::TooLarge`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyTooLarge {
    /// Length of the body offered.
    pub len: usize,
    /// Largest body allowed (the caller's limit, at most `u32::MAX`).
    pub max: usize,
}

impl fmt::Display for BodyTooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "record of {} bytes is over the limit of {}",
            self.len, self.max
        )
    }
}

impl std::error::Error for BodyTooLarge {}

/// Why a record with more data after it could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CorruptReason {
    /// The length does not match its checksum.
    BadHeader,
    /// The length is intact but over the reader's limit.
    TooLarge {
        /// Length in the header.
        len: usize,
        /// Largest body the reader accepts.
        max: usize,
    },
    /// The body does not match its checksum.
    BadChecksum,
}

impl fmt::Display for CorruptReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CorruptReason::BadHeader => write!(f, "bad record header"),
            CorruptReason::TooLarge { len, max } => {
                write!(f, "record of {len} bytes is over the limit of {max}")
            }
            CorruptReason::BadChecksum => write!(f, "checksum mismatch"),
        }
    }
}

impl std::error::Error for CorruptReason {}

/// How the bytes after the last good record look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The data ends exactly after a record, or is empty.
    Clean,
    /// An unfinished last record starts at `offset`: cut the file there
    /// before appending.
    TornTail {
        /// Where the unfinished record starts.
        offset: usize,
    },
    /// A bad record starts at `offset` and more data follows it.
    Corrupt {
        /// Where the bad record starts.
        offset: usize,
        /// What is wrong with it.
        reason: CorruptReason,
    },
}

/// What [`scan`] found: the good records from the start, and how the data
/// past them looks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    /// Body ranges in the scanned data, in order. Records after the first
    /// problem are not included.
    pub records: Vec<Range<usize>>,
    /// How the data past the last good record looks.
    pub end: End,
}

impl Scan {
    /// The bodies of the good records, in order. `data` must be the slice
    /// that was scanned.
    ///
    /// # Panics
    ///
    /// If `data` is shorter than the slice that was scanned.
    pub fn bodies<'a>(&'a self, data: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.records.iter().map(move |r| &data[r.clone()])
    }
}

/// Builds the header for `body`, or refuses a body over `max_body` (or over
/// what a `u32` length can say).
fn header(body: &[u8], max_body: usize) -> Result<[u8; HEADER_LEN], BodyTooLarge> {
    let too_large = BodyTooLarge {
        len: body.len(),
        max: max_body.min(usize::try_from(u32::MAX).unwrap_or(usize::MAX)),
    };
    if body.len() > max_body {
        return Err(too_large);
    }
    let len = u32::try_from(body.len())
        .map_err(|_| too_large)?
        .to_le_bytes();
    let mut h = [0u8; HEADER_LEN];
    h[0..4].copy_from_slice(&len);
    h[4..8].copy_from_slice(&crc32fast::hash(&len).to_le_bytes());
    h[8..12].copy_from_slice(&crc32fast::hash(body).to_le_bytes());
    Ok(h)
}

/// Appends one record holding `body` to `out`. Refuses, appending nothing, a
/// body over `max_body`: use the same limit as [`scan`] so that everything
/// written can be read back.
pub fn encode(body: &[u8], max_body: usize, out: &mut Vec<u8>) -> Result<(), BodyTooLarge> {
    let h = header(body, max_body)?;
    out.reserve(HEADER_LEN + body.len());
    out.extend_from_slice(&h);
    out.extend_from_slice(body);
    Ok(())
}

/// Writes one record holding `body` without copying the body; returns the
/// bytes written. A body over `max_body` is an `InvalidInput` error wrapping
/// [`BodyTooLarge`], and nothing is written.
///
/// This makes two `write_all` calls (header, then body): give it a buffered
/// writer, or [`encode`] into a buffer and write that once, so that a crash
/// tears at most the last write.
pub fn write_record(w: &mut impl Write, body: &[u8], max_body: usize) -> io::Result<usize> {
    let h = header(body, max_body).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    w.write_all(&h)?;
    w.write_all(body)?;
    Ok(HEADER_LEN + body.len())
}

/// What [`Reader::next`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Item<'a> {
    /// A good record.
    Record {
        /// Where the record (its header) starts.
        offset: usize,
        /// Its body, valid until the next call.
        body: &'a [u8],
    },
    /// No more good records, and how the data past them looks. Every
    /// later call says the same.
    End(End),
}

/// Reads records one by one from the start of a file's bytes, holding one
/// body at a time, and stops at the first that is unfinished or damaged.
/// Bodies over `max_body` are refused before anything is sized from their
/// length.
///
/// At a record starting at offset `x`:
/// - fewer than [`HEADER_LEN`] bytes left: torn at `x`;
/// - the length fails its check: torn at `x` if every byte after the header
///   is zero (a header cut short, then zero-filled), else corrupt (bad
///   header);
/// - the length is over `max_body`: corrupt (too large), even at the end of
///   the data, since then the limit, not the file, is wrong;
/// - the body runs past the end of the data: torn at `x`;
/// - the body fails its check: torn at `x` if nothing but zeros follows the
///   record, else corrupt (checksum mismatch).
///
/// Telling torn from corrupt may read on to the end of the data, a piece
/// at a time; nothing past a bad record is kept.
#[derive(Debug)]
pub struct Reader<R> {
    input: R,
    max_body: usize,
    /// Where the next record starts.
    offset: usize,
    body: Vec<u8>,
    end: Option<End>,
}

impl<R: Read> Reader<R> {
    /// A reader of the records in `input`, from its start.
    pub fn new(input: R, max_body: usize) -> Reader<R> {
        Reader {
            input,
            max_body,
            offset: 0,
            body: Vec::new(),
            end: None,
        }
    }

    /// The next good record, or how the data ends. An error is the
    /// input's own (a failed read), never the data's.
    // Not `Iterator::next`: the body borrows the reader.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> io::Result<Item<'_>> {
        if let Some(end) = self.end {
            return Ok(Item::End(end));
        }
        let at = self.offset;
        match self.read_record()? {
            Ok(()) => {
                self.offset = at + HEADER_LEN + self.body.len();
                Ok(Item::Record {
                    offset: at,
                    body: &self.body,
                })
            }
            Err(end) => {
                self.end = Some(end);
                Ok(Item::End(end))
            }
        }
    }

    /// Reads the record at `self.offset`, its body into `self.body`, or
    /// tells how the data ends there.
    fn read_record(&mut self) -> io::Result<Result<(), End>> {
        let at = self.offset;
        let torn = End::TornTail { offset: at };
        let corrupt = |reason| End::Corrupt { offset: at, reason };
        let mut header = [0u8; HEADER_LEN];
        match read_full(&mut self.input, &mut header)? {
            0 => return Ok(Err(End::Clean)),
            HEADER_LEN => {}
            _ => return Ok(Err(torn)),
        }
        let [l0, l1, l2, l3, c0, c1, c2, c3, b0, b1, b2, b3] = header;
        if crc32fast::hash(&[l0, l1, l2, l3]) != u32::from_le_bytes([c0, c1, c2, c3]) {
            // A crash can leave part of a header and then zeros; a bad
            // header with anything else after it may be hiding records, so
            // say so.
            return Ok(Err(if rest_is_zero(&mut self.input)? {
                torn
            } else {
                corrupt(CorruptReason::BadHeader)
            }));
        }
        let len = usize::try_from(u32::from_le_bytes([l0, l1, l2, l3])).unwrap_or(usize::MAX);
        if len > self.max_body {
            return Ok(Err(corrupt(CorruptReason::TooLarge {
                len,
                max: self.max_body,
            })));
        }
        // Read through `take`, so the buffer grows with the bytes that are
        // there, not with the length the header claims.
        self.body.clear();
        let got = (&mut self.input)
            .take(len as u64)
            .read_to_end(&mut self.body)?;
        if got < len {
            return Ok(Err(torn));
        }
        if crc32fast::hash(&self.body) != u32::from_le_bytes([b0, b1, b2, b3]) {
            // Damage confined to the last record looks exactly like a torn
            // write.
            return Ok(Err(if rest_is_zero(&mut self.input)? {
                torn
            } else {
                corrupt(CorruptReason::BadChecksum)
            }));
        }
        Ok(Ok(()))
    }
}

/// Reads records from the start of a whole file's bytes, as [`Reader`]
/// does, and returns where each body is.
pub fn scan(data: &[u8], max_body: usize) -> Scan {
    let mut reader = Reader::new(data, max_body);
    let mut records = Vec::new();
    loop {
        match reader.next() {
            Ok(Item::Record { offset, body }) => {
                let start = offset + HEADER_LEN;
                records.push(start..start + body.len());
            }
            Ok(Item::End(end)) => return Scan { records, end },
            Err(_) => unreachable!("reading a slice cannot fail"),
        }
    }
}

/// Fills `buf` from `input` as far as the input goes; returns how many
/// bytes it holds (fewer than asked only at the end of the input).
fn read_full(input: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Whether everything left in `input` is zero; reads it a piece at a time
/// and stops at the first byte that is not.
fn rest_is_zero(input: &mut impl Read) -> io::Result<bool> {
    let mut piece = [0u8; 8192];
    loop {
        let n = read_full(input, &mut piece)?;
        if piece[..n].iter().any(|&b| b != 0) {
            return Ok(false);
        }
        if n < piece.len() {
            return Ok(true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MAX: usize = 1 << 20;

    /// Encodes `bodies` back to back; returns the bytes and each record's
    /// start offset.
    fn log(bodies: &[&[u8]]) -> (Vec<u8>, Vec<usize>) {
        let mut out = Vec::new();
        let mut starts = Vec::new();
        for body in bodies {
            starts.push(out.len());
            encode(body, MAX, &mut out).expect("under the limit");
        }
        (out, starts)
    }

    fn bodies_of(scan: &Scan, data: &[u8]) -> Vec<Vec<u8>> {
        scan.bodies(data).map(<[u8]>::to_vec).collect()
    }

    #[test]
    fn records_round_trip() {
        let large: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let bodies: [&[u8]; 4] = [b"", b"a", &large, b"last"];
        let (data, starts) = log(&bodies);
        let scan = scan(&data, MAX);
        assert_eq!(scan.end, End::Clean);
        assert_eq!(bodies_of(&scan, &data), bodies.map(<[u8]>::to_vec));
        for (range, start) in scan.records.iter().zip(starts) {
            assert_eq!(range.start, start + HEADER_LEN);
        }
    }

    #[test]
    fn write_record_matches_encode() {
        let mut encoded = Vec::new();
        encode(b"value", MAX, &mut encoded).expect("encodes");
        let mut written = Vec::new();
        let n = write_record(&mut written, b"value", MAX).expect("writes");
        assert_eq!(written, encoded);
        assert_eq!(n, HEADER_LEN + 5);
    }

    #[test]
    fn an_empty_file_is_clean() {
        assert_eq!(
            scan(&[], MAX),
            Scan {
                records: vec![],
                end: End::Clean
            }
        );
    }

    #[test]
    fn every_truncation_of_the_last_record_is_a_torn_tail() {
        let (data, starts) = log(&[b"one", b"", b"three", b"the last record"]);
        let last = starts[3];
        let earlier = scan(&data[..last], MAX);
        assert_eq!(earlier.end, End::Clean);
        assert_eq!(earlier.records.len(), 3);
        for cut in last + 1..data.len() {
            let scan = scan(&data[..cut], MAX);
            assert_eq!(scan.end, End::TornTail { offset: last }, "cut at {cut}");
            assert_eq!(scan.records, earlier.records, "cut at {cut}");
        }
    }

    #[test]
    fn zeros_after_a_torn_record_are_still_a_torn_tail() {
        let (data, starts) = log(&[b"one", b"two", b"the last record"]);
        let last = starts[2];
        let earlier = scan(&data[..last], MAX).records;
        for cut in last + 1..data.len() {
            for zeros in [1, HEADER_LEN, 4096] {
                let mut torn = data[..cut].to_vec();
                torn.resize(cut + zeros, 0);
                let scan = scan(&torn, MAX);
                assert_eq!(
                    scan.end,
                    End::TornTail { offset: last },
                    "cut at {cut}, {zeros} zeros"
                );
                assert_eq!(scan.records, earlier, "cut at {cut}, {zeros} zeros");
            }
        }
    }

    #[test]
    fn zeros_after_whole_records_are_a_torn_tail() {
        let (mut data, _) = log(&[b"one", b"two"]);
        let end = data.len();
        data.resize(end + 4096, 0);
        let scan = scan(&data, MAX);
        assert_eq!(scan.end, End::TornTail { offset: end });
        assert_eq!(scan.records.len(), 2);
    }

    #[test]
    fn no_single_bit_flip_yields_a_damaged_record() {
        let (data, starts) = log(&[b"first", b"second", b"third!"]);
        let good = scan(&data, MAX).records;
        for bit in 0..data.len() * 8 {
            let mut bad = data.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            let damaged = starts
                .iter()
                .rposition(|&s| s <= bit / 8)
                .expect("in a record");
            let offset = starts[damaged];
            let in_length = bit / 8 - offset < 8;
            let expected = match (damaged, in_length) {
                // A bad length with a body after it may be hiding records.
                (_, true) => End::Corrupt {
                    offset,
                    reason: CorruptReason::BadHeader,
                },
                (2, false) => End::TornTail { offset },
                (_, false) => End::Corrupt {
                    offset,
                    reason: CorruptReason::BadChecksum,
                },
            };
            let scan = scan(&bad, MAX);
            assert_eq!(scan.end, expected, "bit {bit}");
            assert_eq!(scan.records, good[..damaged], "bit {bit}");
        }
    }

    #[test]
    fn a_length_over_the_limit_is_corrupt() {
        let (data, starts) = log(&[b"small", &[7; 100], b"after"]);
        let scan = scan(&data, 99);
        assert_eq!(
            scan.end,
            End::Corrupt {
                offset: starts[1],
                reason: CorruptReason::TooLarge { len: 100, max: 99 }
            }
        );
        assert_eq!(bodies_of(&scan, &data), vec![b"small".to_vec()]);
    }

    #[test]
    fn a_huge_valid_length_is_refused_without_allocating() {
        let len = u32::MAX.to_le_bytes();
        let mut data = len.to_vec();
        data.extend_from_slice(&crc32fast::hash(&len).to_le_bytes());
        data.extend_from_slice(&[0; 4]);
        assert!(matches!(
            scan(&data, MAX).end,
            End::Corrupt {
                offset: 0,
                reason: CorruptReason::TooLarge { .. }
            }
        ));
        // With no limit to speak of, it is a body that never arrived.
        assert_eq!(scan(&data, usize::MAX).end, End::TornTail { offset: 0 });
    }

    #[test]
    fn a_body_over_the_limit_is_not_written() {
        let mut out = b"kept".to_vec();
        assert_eq!(
            encode(&[0; 10], 9, &mut out),
            Err(BodyTooLarge { len: 10, max: 9 })
        );
        assert_eq!(out, b"kept");
        let err = write_record(&mut out, &[0; 10], 9).expect_err("refused");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(out, b"kept");
    }

    #[test]
    fn reasons_read_well() {
        assert_eq!(CorruptReason::BadHeader.to_string(), "bad record header");
        assert_eq!(
            CorruptReason::TooLarge { len: 10, max: 9 }.to_string(),
            "record of 10 bytes is over the limit of 9"
        );
        assert_eq!(CorruptReason::BadChecksum.to_string(), "checksum mismatch");
    }

    /// Checks what must hold for any scan: ranges in bounds, back to back
    /// from the start, and the end agreeing with where they stop.
    fn check_shape(scan: &Scan, data: &[u8]) {
        let mut at = 0;
        for r in &scan.records {
            assert_eq!(r.start, at + HEADER_LEN);
            assert!(r.start <= r.end && r.end <= data.len());
            at = r.end;
        }
        match scan.end {
            End::Clean => assert_eq!(at, data.len()),
            End::TornTail { offset } | End::Corrupt { offset, .. } => {
                assert_eq!(offset, at);
                assert!(offset < data.len());
            }
        }
    }

    /// Damages a log as a crash or a bad disk would: cuts it, flips a bit
    /// of what is left, and appends zeros.
    fn damage(
        data: &mut Vec<u8>,
        cut: prop::sample::Index,
        flip: Option<prop::sample::Index>,
        zeros: usize,
    ) {
        data.truncate(cut.index(data.len() + 1));
        if let (Some(flip), false) = (flip, data.is_empty()) {
            let bit = flip.index(data.len() * 8);
            data[bit / 8] ^= 1 << (bit % 8);
        }
        data.resize(data.len() + zeros, 0);
    }

    /// An input that hands out one byte per read, and is interrupted
    /// before each: the reader must not depend on how reads are cut up.
    struct Trickle<'a> {
        data: &'a [u8],
        interrupted: bool,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.interrupted = !self.interrupted;
            if self.interrupted {
                return Err(io::ErrorKind::Interrupted.into());
            }
            let Some((first, rest)) = self.data.split_first() else {
                return Ok(0);
            };
            match buf.first_mut() {
                Some(b) => *b = *first,
                None => return Ok(0),
            }
            self.data = rest;
            Ok(1)
        }
    }

    /// Reads `data` through a [`Trickle`]: each record's offset and body,
    /// and the end.
    fn read_trickling(data: &[u8], max: usize) -> (Vec<(usize, Vec<u8>)>, End) {
        let input = Trickle {
            data,
            interrupted: false,
        };
        let mut reader = Reader::new(input, max);
        let mut records = Vec::new();
        loop {
            match reader.next().expect("a trickle does not fail") {
                Item::Record { offset, body } => records.push((offset, body.to_vec())),
                Item::End(end) => {
                    // And it stays there.
                    assert_eq!(reader.next().expect("no failure"), Item::End(end));
                    return (records, end);
                }
            }
        }
    }

    proptest! {
        #![proptest_config(crate::proptest_config("tests/regressions/record.txt"))]
        #[test]
        fn a_reader_fed_a_byte_at_a_time_finds_what_scan_finds(
            bodies in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..6),
            cut in any::<prop::sample::Index>(),
            flip in proptest::option::of(any::<prop::sample::Index>()),
            zeros in 0usize..100,
            max in 0usize..80,
        ) {
            let refs: Vec<&[u8]> = bodies.iter().map(Vec::as_slice).collect();
            let (mut data, _) = log(&refs);
            damage(&mut data, cut, flip, zeros);
            let scan = scan(&data, max);
            let (records, end) = read_trickling(&data, max);
            prop_assert_eq!(end, scan.end);
            let expected: Vec<(usize, Vec<u8>)> = scan
                .records
                .iter()
                .map(|r| (r.start - HEADER_LEN, data[r.clone()].to_vec()))
                .collect();
            prop_assert_eq!(records, expected);
        }

        #[test]
        fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2048),
                                    max in 0usize..4096) {
            let scan = scan(&data, max);
            check_shape(&scan, &data);
        }

        #[test]
        fn damaged_logs_only_return_records_as_written(
            bodies in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..8),
            cut in any::<prop::sample::Index>(),
            flip in proptest::option::of(any::<prop::sample::Index>()),
            zeros in 0usize..100,
        ) {
            let refs: Vec<&[u8]> = bodies.iter().map(Vec::as_slice).collect();
            let (mut data, _) = log(&refs);
            let written = scan(&data, MAX).records;
            damage(&mut data, cut, flip, zeros);
            let scan = scan(&data, MAX);
            check_shape(&scan, &data);
            for (i, r) in scan.records.iter().enumerate() {
                prop_assert_eq!(r, &written[i]);
                prop_assert_eq!(&data[r.clone()], bodies[i].as_slice());
            }
        }
    }
}
