//! Temporary directories, and the files of a node's data directory as the
//! durability tests inspect and damage them.

use super::record;
use std::ops::Range;
use std::path::{Path, PathBuf};
use tempfile::TempDir;

/// A fresh temporary directory, removed when dropped.
pub fn temp_dir() -> TempDir {
    tempfile::Builder::new()
        .prefix("netdb-test-")
        .tempdir()
        .expect("create a temporary directory")
}

/// The kinds of file in a data directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// `snapshot-<gen>`
    Snapshot,
    /// `log-<gen>`
    Log,
}

/// The `log-<gen>` and `snapshot-<gen>` files of `dir`, by generation.
pub fn data_files(dir: &Path) -> Vec<(u64, Kind, PathBuf)> {
    let mut files: Vec<(u64, Kind, PathBuf)> = file_names(dir)
        .into_iter()
        .filter_map(|name| {
            let (kind, gen) = if let Some(g) = name.strip_prefix("log-") {
                (Kind::Log, g)
            } else {
                (Kind::Snapshot, name.strip_prefix("snapshot-")?)
            };
            let gen = gen.parse().ok()?;
            Some((gen, kind, dir.join(&name)))
        })
        .collect();
    files.sort();
    files
}

/// Every file name in `dir`, sorted.
pub fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("list the data directory")
        .map(|e| {
            e.expect("directory entry")
                .file_name()
                .into_string()
                .expect("utf-8 file name")
        })
        .collect();
    names.sort();
    names
}

/// The newest `log-<gen>` of `dir`.
pub fn last_log(dir: &Path) -> (u64, PathBuf) {
    data_files(dir)
        .into_iter()
        .filter(|(_, k, _)| *k == Kind::Log)
        .map(|(g, _, p)| (g, p))
        .next_back()
        .expect("a log file")
}

/// The highest generation of any log or snapshot in `dir`.
pub fn max_gen(dir: &Path) -> u64 {
    data_files(dir)
        .iter()
        .map(|(g, _, _)| *g)
        .max()
        .unwrap_or(0)
}

/// Whole records of a log's bytes, as ranges including the header; panics
/// if the bytes do not end with a whole record.
pub fn record_spans(data: &[u8]) -> Vec<Range<usize>> {
    let scan = record::scan(data, usize::MAX);
    assert_eq!(scan.end, record::End::Clean, "a clean log");
    scan.records
        .into_iter()
        .map(|r| r.start - record::HEADER_LEN..r.end)
        .collect()
}

/// Whether `haystack` contains `needle`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
