//! Inputs from valid encodings: each target's generator makes a valid
//! encoding, and [`input`] hands it back as it is, damaged, spliced with
//! another, or replaced by raw bytes.

use crate::rng::Rng;

/// Lengths and counts that break careless decoders, as decimal text.
const NUMBERS: &[&[u8]] = &[
    b"0",
    b"-1",
    b"-2",
    b"1",
    b"64",
    b"65",
    b"1024",
    b"65536",
    b"1048577",
    b"2147483647",
    b"4294967295",
    b"4294967296",
    b"9223372036854775807",
    b"-9223372036854775808",
    b"9223372036854775808",
    b"18446744073709551615",
    b"18446744073709551616",
    b"00",
    b"01",
    b"-0",
    b"+1",
    b"1e9",
];

/// 32-bit values to write over four bytes (a length prefix, a checksum).
const WORDS: &[u32] = &[
    0,
    1,
    0x7f,
    0x80,
    0xffff,
    0x1_0000,
    0x7fff_ffff,
    0x8000_0000,
    u32::MAX,
];

/// Postcard varints: a huge length or count in a few bytes.
const VARINTS: &[&[u8]] = &[
    &[0x80, 0x80, 0x80, 0x80, 0x08],
    &[0xff, 0xff, 0xff, 0xff, 0x0f],
    &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
    &[
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
    ],
    &[0x80, 0x80, 0x04],
    &[0x80],
    &[0x7f],
];

/// What a target's generator gives [`input`].
pub struct Source<'a> {
    /// A valid encoding.
    pub valid: &'a dyn Fn(&mut Rng) -> Vec<u8>,
    /// Bytes that mean something to the decoder (`\r\n`, `*`, `"` ...).
    pub tokens: &'a [&'a [u8]],
}

/// Up to `max - 1` random bytes.
pub fn some_bytes(rng: &mut Rng, max: usize) -> Vec<u8> {
    let n = rng.below(max);
    rng.bytes(n)
}

/// One input: 10% raw bytes, 30% a valid encoding as it is, 60% a valid
/// encoding after one or more mutations.
pub fn input(rng: &mut Rng, source: &Source<'_>) -> Vec<u8> {
    match rng.below(10) {
        0 => raw(rng, source.tokens),
        1..=3 => (source.valid)(rng),
        _ => {
            let mut data = (source.valid)(rng);
            let rounds = 1 + rng.below(4) * rng.below(4);
            for _ in 0..rounds {
                mutate(rng, &mut data, source);
            }
            data
        }
    }
}

/// Random bytes, or random tokens and bytes run together.
fn raw(rng: &mut Rng, tokens: &[&[u8]]) -> Vec<u8> {
    let len = if rng.percent(90) {
        rng.below(64)
    } else {
        rng.below(4096)
    };
    if rng.percent(50) || tokens.is_empty() {
        return rng.bytes(len);
    }
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        if rng.percent(50) {
            out.extend_from_slice(tokens[rng.below(tokens.len())]);
        } else {
            out.push(rng.next_u64() as u8);
        }
    }
    out
}

/// One mutation of `data`.
pub fn mutate(rng: &mut Rng, data: &mut Vec<u8>, source: &Source<'_>) {
    let len = data.len();
    let at = rng.below(len + 1);
    match rng.below(13) {
        0 if len > 0 => {
            let i = rng.below(len);
            data[i] ^= 1 << rng.below(8);
        }
        1 if len > 0 => {
            let i = rng.below(len);
            data[i] = rng.next_u64() as u8;
        }
        2 => data.truncate(at),
        3 if len > 0 => {
            let end = (at + 1 + rng.below(16)).min(len);
            data.drain(at.min(end)..end);
        }
        4 => {
            let extra = some_bytes(rng, 8);
            data.splice(at..at, extra);
        }
        5 if !source.tokens.is_empty() => {
            let token = source.tokens[rng.below(source.tokens.len())];
            data.splice(at..at, token.iter().copied());
        }
        6 if len > 0 => {
            // A piece of the input again, elsewhere: repeated fields,
            // frames, records.
            let from = rng.below(len);
            let end = (from + 1 + rng.below(64)).min(len);
            let piece = data[from..end].to_vec();
            let times = if rng.percent(10) {
                1 + rng.below(50)
            } else {
                1
            };
            for _ in 0..times {
                data.splice(at..at, piece.iter().copied());
            }
        }
        7 => {
            // The front of this input and the back of another.
            let other = (source.valid)(rng);
            let from = rng.below(other.len() + 1);
            data.truncate(at);
            data.extend_from_slice(&other[from..]);
        }
        8 if len >= 4 => {
            let i = rng.below(len - 3);
            let word = WORDS[rng.below(WORDS.len())];
            let bytes = if rng.percent(50) {
                word.to_le_bytes()
            } else {
                word.to_be_bytes()
            };
            data[i..i + 4].copy_from_slice(&bytes);
        }
        9 => replace_number(rng, data),
        10 => {
            let varint = VARINTS[rng.below(VARINTS.len())];
            if rng.percent(50) && len > 0 {
                let i = rng.below(len);
                let end = (i + varint.len()).min(len);
                data.splice(i..end, varint.iter().copied());
            } else {
                data.splice(at..at, varint.iter().copied());
            }
        }
        11 => {
            let number = NUMBERS[rng.below(NUMBERS.len())];
            data.splice(at..at, number.iter().copied());
        }
        _ if len > 0 => {
            // A byte the decoder looks for, in place of another.
            let i = rng.below(len);
            let token = source.tokens.get(rng.below(source.tokens.len().max(1)));
            data[i] = token.and_then(|t| t.first()).copied().unwrap_or(0);
        }
        _ => data.push(rng.next_u64() as u8),
    }
}

/// Replaces a run of decimal digits (with its sign) by one of [`NUMBERS`].
fn replace_number(rng: &mut Rng, data: &mut Vec<u8>) {
    let digits: Vec<usize> = (0..data.len())
        .filter(|&i| data[i].is_ascii_digit() && (i == 0 || !data[i - 1].is_ascii_digit()))
        .collect();
    if digits.is_empty() {
        return;
    }
    let mut start = digits[rng.below(digits.len())];
    if start > 0 && data[start - 1] == b'-' {
        start -= 1;
    }
    let mut end = start + 1;
    while end < data.len() && data[end].is_ascii_digit() {
        end += 1;
    }
    let number = NUMBERS[rng.below(NUMBERS.len())];
    data.splice(start..end, number.iter().copied());
}

/// A deterministic generator for a check's own choices (how to cut an
/// input into reads, which limits to use), from the input alone, so a
/// saved input replays exactly.
pub fn rng_of(input: &[u8]) -> Rng {
    Rng::from_seed(xxhash_rust::xxh3::xxh3_64(input))
}

/// The sizes of successive reads of `len` bytes: mostly small, sometimes
/// one byte at a time, sometimes all at once. Made as they are asked for,
/// so that cutting a long input costs no memory.
pub struct Sizes {
    rng: Rng,
    style: usize,
    left: usize,
}

impl Sizes {
    /// Reads of `len` bytes in all, cut as `rng` chooses.
    pub fn new(rng: &mut Rng, len: usize) -> Sizes {
        Sizes {
            style: rng.below(4),
            rng: Rng::from_seed(rng.next_u64()),
            left: len,
        }
    }
}

impl Iterator for Sizes {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        if self.left == 0 {
            return None;
        }
        let n = match self.style {
            0 => 1,
            1 => self.left,
            _ => {
                let most = if self.rng.percent(80) { 16 } else { 512 };
                1 + self.rng.below(most)
            }
        }
        .min(self.left);
        self.left -= n;
        Some(n)
    }
}

/// A reader that hands out its bytes in the given read sizes, and now and
/// then an `Interrupted` error first, as a socket may.
pub struct Pieces<'a> {
    data: &'a [u8],
    sizes: Sizes,
    interrupt: bool,
    /// What is left of the current piece.
    piece: usize,
}

impl<'a> Pieces<'a> {
    /// `data`, read in the pieces `rng` chooses.
    pub fn new(data: &'a [u8], rng: &mut Rng) -> Pieces<'a> {
        Pieces {
            data,
            sizes: Sizes::new(rng, data.len()),
            interrupt: rng.percent(20),
            piece: 0,
        }
    }
}

impl std::io::Read for Pieces<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.piece == 0 {
            match self.sizes.next() {
                Some(n) => self.piece = n,
                None => return Ok(0),
            }
            if self.interrupt {
                return Err(std::io::ErrorKind::Interrupted.into());
            }
        }
        let n = self.piece.min(buf.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        self.piece -= n;
        Ok(n)
    }
}
