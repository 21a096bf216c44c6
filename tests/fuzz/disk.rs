//! What a node reads back from its data directory: the record framing,
//! the changes inside records (log and snapshot files share both), and
//! replaying a whole file into a store as recovery does.

use super::harness::Target;
use super::mutate::{self, rng_of, Pieces, Source};
use crate::rng::Rng;
use netdb::durability::journal::{self, Bytes, Change, Entry, Replayer};
use netdb::durability::record::{self, End, Item, Reader, HEADER_LEN};
use netdb::durability::{DataDir, DiskSettings, FsyncPolicy};
use netdb::store::Store;
use std::path::Path;

const TOKENS: &[&[u8]] = &[
    &[0; HEADER_LEN],
    &[0xff; 4],
    &[0],
    &[1],
    &[2],
    &[3],
    &[4],
    &[5],
];

/// Largest record body the generated files use, and the limit most
/// checks read them under.
const MAX_BODY: usize = 1 << 20;

/// The record framing of log and snapshot files.
pub const RECORD: Target = Target {
    name: "log_record",
    short_inputs: 5_000,
    generate: |rng| {
        mutate::input(
            rng,
            &Source {
                valid: &|rng| file(rng, false),
                tokens: TOKENS,
            },
        )
    },
    check: check_records,
    max_live: |len| 8 * len + 64 * 1024,
};

/// One record's body: a change.
pub const CHANGE: Target = Target {
    name: "journal_change",
    short_inputs: 5_000,
    generate: |rng| {
        mutate::input(
            rng,
            &Source {
                valid: &|rng| {
                    let names = names(rng);
                    change(rng, &names)
                },
                tokens: TOKENS,
            },
        )
    },
    check: check_change,
    // serde sets aside up to 1 MiB for an announced count (a clock, a
    // version vector) before its elements arrive.
    max_live: |len| 64 * len + 2 * 1024 * 1024,
};

/// A whole file, replayed into a store.
pub const RECOVERY: Target = Target {
    name: "recovery",
    short_inputs: 3_000,
    generate: |rng| {
        mutate::input(
            rng,
            &Source {
                valid: &|rng| file(rng, true),
                tokens: TOKENS,
            },
        )
    },
    check: check_recovery,
    max_live: |len| 64 * len + 2 * 1024 * 1024,
};

/// Whole files in a data directory, recovered by `DataDir::open`: what
/// [`RECOVERY`] replays, plus reading a file's first records and its last
/// bytes, and cutting a torn or damaged tail. Each input costs a
/// directory, files and a thread, so far fewer inputs run.
pub const RECOVERY_FILES: Target = Target {
    name: "recovery_files",
    short_inputs: 200,
    generate: RECOVERY.generate,
    check: check_recovery_files,
    max_live: |len| 64 * len + 4 * 1024 * 1024,
};

/// Writer names a file may use.
fn names(rng: &mut Rng) -> Vec<String> {
    (0..1 + rng.below(3))
        .map(|i| format!("{}#{}", ["fuzz", "a", "b"][i], rng.below(3)))
        .collect()
}

/// A file of records: changes as a node writes them (`Writer` first,
/// each id named before use) when `changes`, else random bodies; now and
/// then zeros after the last record, as a crash may leave.
fn file(rng: &mut Rng, changes: bool) -> Vec<u8> {
    let names = names(rng);
    let mut out = Vec::new();
    let body = |out: &mut Vec<u8>, body: &[u8]| {
        record::encode(body, MAX_BODY, out).expect("under the limit");
    };
    if changes {
        let first = postcard::to_stdvec(&Change::Writer { name: &names[0] }).expect("encodes");
        body(&mut out, &first);
        if rng.percent(30) {
            body(&mut out, &[5]); // SyncedEachWrite
        }
        for (id, name) in names.iter().enumerate() {
            let named = Change::Name {
                id: id as u32,
                name,
            };
            body(&mut out, &postcard::to_stdvec(&named).expect("encodes"));
        }
    }
    for _ in 0..rng.below(6) {
        let b = if changes {
            change(rng, &names)
        } else {
            {
                let most = if rng.percent(95) { 40 } else { 5000 };
                mutate::some_bytes(rng, most)
            }
        };
        body(&mut out, &b);
    }
    if changes && rng.percent(2) {
        // Many names with ids that skip ahead (by up to 1,024, the gap
        // replay once reserved room for): each record must cost its own
        // bytes, never room for the ids skipped.
        let mut id = names.len() as u32;
        for _ in 0..2000 {
            id += rng.below(1025) as u32;
            let named = Change::Name { id, name: "x#1" };
            body(&mut out, &postcard::to_stdvec(&named).expect("encodes"));
        }
    }
    if changes && rng.percent(50) {
        body(&mut out, &[4]); // Closed
    }
    if rng.percent(10) {
        out.resize(out.len() + rng.below(100), 0);
    }
    out
}

/// One change's encoding, using ids of `names`.
fn change(rng: &mut Rng, names: &[String]) -> Vec<u8> {
    let id = |rng: &mut Rng| rng.below(names.len()) as u32;
    let key = mutate::some_bytes(rng, 12);
    let value = mutate::some_bytes(rng, 24);
    let clock: Vec<(u32, u64)> = (0..1 + rng.below(3))
        .map(|_| (id(rng), 1 + rng.below(100) as u64))
        .collect();
    let change = match rng.below(8) {
        0 => Change::Writer {
            name: &names[id(rng) as usize],
        },
        1 => Change::Name {
            id: id(rng),
            name: &names[id(rng) as usize],
        },
        2 => Change::Joined { vv: clock },
        3 => Change::Closed,
        4 => Change::SyncedEachWrite,
        _ => Change::Version(Entry {
            key: Bytes(&key),
            value: rng.percent(80).then_some(Bytes(&value)),
            ts: rng.next_u64() >> 2,
            writer: id(rng),
            clock,
        }),
    };
    postcard::to_stdvec(&change).expect("encodes")
}

/// The records and the end one reader finds, with bodies copied out.
fn read_all(r: impl std::io::Read, max: usize) -> (Vec<(usize, Vec<u8>)>, End) {
    let mut reader = Reader::new(r, max);
    let mut records = Vec::new();
    loop {
        match reader.next().expect("reading memory cannot fail") {
            Item::Record { offset, body } => records.push((offset, body.to_vec())),
            Item::End(end) => return (records, end),
        }
    }
}

/// Scans the input as a slice and reads it again in pieces through
/// [`Reader`]: the same records and the same end. Records lie in order
/// inside the input, within the limit; re-encoded, they scan back clean.
fn check_records(input: &[u8]) {
    let mut rng = rng_of(input);
    let max = [0, 16, MAX_BODY][rng.below(3)];
    let scan = record::scan(input, max);
    let mut next = 0;
    for range in &scan.records {
        assert!(range.start >= next + HEADER_LEN && range.end <= input.len());
        assert!(range.len() <= max);
        next = range.end;
    }
    let bodies: Vec<Vec<u8>> = scan.bodies(input).map(<[u8]>::to_vec).collect();

    let (records, end) = read_all(Pieces::new(input, &mut rng), max);
    assert_eq!(end, scan.end, "in pieces and whole differ");
    let offsets: Vec<usize> = scan.records.iter().map(|r| r.start - HEADER_LEN).collect();
    assert_eq!(
        records.iter().map(|(o, _)| *o).collect::<Vec<_>>(),
        offsets,
        "in pieces and whole differ"
    );
    assert!(
        records.iter().map(|(_, b)| b).eq(bodies.iter()),
        "in pieces and whole differ"
    );

    let mut again = Vec::new();
    for body in &bodies {
        record::encode(body, max, &mut again).expect("a body read is within the limit");
    }
    let rescan = record::scan(&again, max);
    assert_eq!(rescan.end, End::Clean);
    assert!(rescan.bodies(&again).eq(bodies.iter().map(Vec::as_slice)));
}

/// Decodes one record body; a change must encode and decode back to
/// itself, and the two questions recovery asks of a first record must
/// agree with the decoded change.
fn check_change(input: &[u8]) {
    let writer = journal::writer_of(input);
    let synced = journal::is_synced_each_write(input);
    let Ok(change) = postcard::from_bytes::<Change>(input) else {
        assert!(writer.is_none() && !synced);
        return;
    };
    let encoded = postcard::to_stdvec(&change).expect("encodes");
    assert_eq!(
        postcard::from_bytes::<Change>(&encoded).expect("decodes its own encoding"),
        change,
        "a change does not round-trip"
    );
    match change {
        Change::Writer { name } => assert_eq!(writer.as_deref(), Some(name)),
        _ => assert!(writer.is_none()),
    }
    assert_eq!(synced, change == Change::SyncedEachWrite);
}

/// Replays the input as one file, read in pieces, into a store of writer
/// `fuzz#1`, as recovery does: record after record until the end or the
/// first record that does not replay.
fn check_recovery(input: &[u8]) {
    let mut rng = rng_of(input);
    let mut store = Store::new("fuzz#1", MAX_BODY);
    let mut replayer = Replayer::new();
    let mut reader = Reader::new(Pieces::new(input, &mut rng), MAX_BODY);
    let mut applied = 0;
    while let Item::Record { body, .. } = reader.next().expect("reading memory cannot fail") {
        if replayer.apply(&mut store, body).is_err() {
            break;
        }
        applied += 1;
    }
    let counts = store.counts();
    assert!(counts.live + counts.tombstones <= applied);
    let _ = (
        replayer.is_complete(),
        store.data_digest(),
        store.canonical(),
    );
}

/// Writes the input into a new data directory (as a log, a snapshot, or a
/// snapshot and a log cut from it) and opens it: it must open or be
/// refused with an error; if it opened, it must open again with the same
/// data.
fn check_recovery_files(input: &[u8]) {
    let mut rng = rng_of(input);
    let shm = Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        tempfile::tempdir_in(shm)
    } else {
        tempfile::tempdir()
    }
    .expect("a temporary directory");
    let name = |kind: &str, gen: u64| dir.path().join(format!("{kind}-{gen:020}"));
    match rng.below(3) {
        0 => std::fs::write(name("log", 1), input),
        1 => std::fs::write(name("snapshot", 1), input),
        _ => {
            let cut = rng.below(input.len() + 1);
            std::fs::write(name("snapshot", 1), &input[..cut])
                .and_then(|()| std::fs::write(name("log", 1), &input[cut..]))
        }
    }
    .expect("write a data file");
    let settings = DiskSettings {
        dir: dir.path().to_owned(),
        fsync: FsyncPolicy::No,
        truncate_corrupt: rng.percent(50),
        compact_factor: 2,
        compact_min_bytes: u64::MAX,
        max_record: MAX_BODY,
    };
    let open = || {
        DataDir::open(settings.clone(), "fuzz", "fuzz#9", |w| {
            Store::new(w, MAX_BODY)
        })
    };
    let Ok((mut disk, store, _)) = open() else {
        return;
    };
    let digest = store.data_digest();
    disk.close().expect("close");
    drop(disk);
    let (mut disk, again, _) = open().expect("a directory that opened once opens again");
    assert_eq!(again.data_digest(), digest, "opened again with other data");
    disk.close().expect("close");
}
