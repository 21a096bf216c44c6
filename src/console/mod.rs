//! The line console: parsing the line commands, running them on this node
//! (stdin), or on another one over RESP (`netdb --connect`).
//!
//! Replies go to stdout and nothing else does; log lines go to stderr.

pub mod editor;
pub mod line;
pub mod local;
pub mod remote;

use crate::error::{Error, Result};
use std::io::{BufRead, Write};

/// Reads the next line of piped input into `line` (cleared first),
/// writing a `> ` prompt before it when `prompt`; `false` at the end of
/// input.
pub(crate) fn next_line(
    input: &mut impl BufRead,
    out: &mut impl Write,
    prompt: bool,
    line: &mut Vec<u8>,
) -> Result<bool> {
    if prompt {
        out.write_all(b"> ")
            .and_then(|()| out.flush())
            .map_err(Error::io("cannot write to stdout"))?;
    }
    line.clear();
    let n = input
        .read_until(b'\n', line)
        .map_err(Error::io("cannot read stdin"))?;
    Ok(n > 0)
}
