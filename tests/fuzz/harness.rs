//! The runner every fuzz target shares: the corpus first, then generated
//! inputs, each checked for a panic, a hang and its peak memory.
//!
//! Input `i` of a run is made by a generator seeded from the run's seed
//! and `i` alone, so any input can be made again from the two numbers the
//! failure message prints.

use super::alloc;
use crate::rng::Rng;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The variable that sets the number of generated inputs per target.
pub const INPUTS_VAR: &str = "NETDB_FUZZ_INPUTS";
/// The variable that replays a seed (the one every random test uses).
pub use crate::rng::SEED_VAR;

/// Longest one input may take before it counts as a hang. Generous: a
/// debug build on a loaded machine is slow, and a real hang is forever.
const PER_INPUT: Duration = Duration::from_secs(2);
/// No progress for this long and the watchdog reports the input and
/// aborts the process (a loop that never returns cannot be timed after).
const STUCK: Duration = Duration::from_secs(30);

/// A long run prints a line after this many generated inputs.
const PROGRESS: u64 = 1_000_000;

/// One decoder under test.
pub struct Target {
    /// Its name: the test's, and its corpus folder's under `tests/fuzz_corpus/`.
    pub name: &'static str,
    /// Generated inputs in the default (short) run.
    pub short_inputs: u64,
    /// Makes one input.
    pub generate: fn(&mut Rng) -> Vec<u8>,
    /// Runs the decoder on one input and asserts what must hold; a panic
    /// is a failure.
    pub check: fn(&[u8]),
    /// The most bytes an input of this length may have live at once while
    /// it is checked (the check's own copies included).
    pub max_live: fn(usize) -> usize,
}

/// What a run did, for its closing line.
#[derive(Default)]
struct Totals {
    corpus: u64,
    generated: u64,
    peak: usize,
    slowest: Duration,
}

/// Runs `target`: its corpus, then `NETDB_FUZZ_INPUTS` (or its short
/// count of) generated inputs. Panics with the seed and the input at the
/// first failure, after saving the input to a file.
pub fn run(target: &Target) {
    let inputs = match std::env::var(INPUTS_VAR) {
        Ok(n) => n
            .replace('_', "")
            .parse()
            .unwrap_or_else(|_| panic!("{INPUTS_VAR}={n:?} is not a count")),
        Err(_) => target.short_inputs,
    };
    let seed = crate::rng::seed_from_env();
    eprintln!(
        "fuzz {}: seed {seed} (replay with {SEED_VAR}={seed}), {inputs} inputs",
        target.name
    );
    let corpus = corpus(target.name);
    let progress = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let watchdog = watchdog(target, seed, &corpus, &progress, &done);
    let started = Instant::now();
    let mut totals = Totals::default();
    for (i, path) in corpus.iter().enumerate() {
        progress.store(i as u64, Ordering::Relaxed);
        let input = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        check_one(target, &input, &mut totals, || {
            format!("corpus file {}", path.display())
        });
        totals.corpus += 1;
    }
    let base = corpus.len() as u64;
    for i in 0..inputs {
        progress.store(base + i, Ordering::Relaxed);
        let input = (target.generate)(&mut input_rng(seed, i));
        check_one(target, &input, &mut totals, || {
            let saved = save_failure(target.name, seed, i, &input);
            format!(
                "input {i} of seed {seed} (replay with {SEED_VAR}={seed}; saved to {}: \
                 once fixed, move it to tests/fuzz_corpus/{}/)",
                saved.display(),
                target.name
            )
        });
        totals.generated += 1;
        if totals.generated % PROGRESS == 0 {
            eprintln!(
                "fuzz {}: {} inputs in {:.0?}",
                target.name,
                totals.generated,
                started.elapsed()
            );
        }
    }
    done.store(true, Ordering::Relaxed);
    watchdog.thread().unpark();
    let _ = watchdog.join();
    eprintln!(
        "fuzz {}: {} corpus + {} generated inputs in {:.1?}; peak {} bytes live, slowest input {:.1?}",
        target.name,
        totals.corpus,
        totals.generated,
        started.elapsed(),
        totals.peak,
        totals.slowest
    );
}

/// The generator that makes input `i` of the run seeded `seed`.
fn input_rng(seed: u64, i: u64) -> Rng {
    let mut mix = Rng::from_seed(seed ^ i.wrapping_mul(0xd1b5_4a32_d192_ed03));
    Rng::from_seed(mix.next_u64())
}

/// Checks one input: no panic, no hang, memory within the target's bound.
fn check_one(target: &Target, input: &[u8], totals: &mut Totals, what: impl FnOnce() -> String) {
    let baseline = alloc::reset_peak();
    let started = Instant::now();
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| (target.check)(input)));
    let took = started.elapsed();
    let peak = alloc::peak_since(baseline);
    let failure = if outcome.is_err() {
        Some("panicked (message above)".to_owned())
    } else if took > PER_INPUT {
        Some(format!("took {took:?}, over the {PER_INPUT:?} allowed"))
    } else if peak > (target.max_live)(input.len()) {
        Some(format!(
            "had {peak} bytes live at its peak, over the {} allowed for {} input bytes",
            (target.max_live)(input.len()),
            input.len()
        ))
    } else {
        None
    };
    if let Some(failure) = failure {
        panic!(
            "fuzz {}: {} {failure}\ninput ({} bytes): \"{}\"",
            target.name,
            what(),
            input.len(),
            shown(input)
        );
    }
    totals.peak = totals.peak.max(peak);
    totals.slowest = totals.slowest.max(took);
}

/// An input as printable text, cut short if long.
fn shown(input: &[u8]) -> String {
    const SHOWN: usize = 2048;
    let text = input[..input.len().min(SHOWN)].escape_ascii().to_string();
    if input.len() > SHOWN {
        format!("{text}...")
    } else {
        text
    }
}

/// The corpus folder of a target.
fn corpus_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz_corpus")
        .join(name)
}

/// The corpus files of a target, in name order (none if it has no folder).
fn corpus(name: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(corpus_dir(name)) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Writes a failing input where the failure message says.
fn save_failure(name: &str, seed: u64, i: u64, input: &[u8]) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz-failures");
    let path = dir.join(format!("{name}-{seed}-{i}"));
    if let Err(e) = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, input)) {
        eprintln!("could not save the input to {}: {e}", path.display());
    }
    path
}

/// A thread that aborts the process, naming the input, if the run makes
/// no progress for [`STUCK`]: an input that never returns cannot be timed.
fn watchdog(
    target: &Target,
    seed: u64,
    corpus: &[PathBuf],
    progress: &Arc<AtomicU64>,
    done: &Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    let (name, generate) = (target.name, target.generate);
    let corpus = corpus.to_vec();
    let (progress, done) = (Arc::clone(progress), Arc::clone(done));
    std::thread::Builder::new()
        .name(format!("watchdog-{name}"))
        .spawn(move || {
            let mut last = (u64::MAX, Instant::now());
            while !done.load(Ordering::Relaxed) {
                std::thread::park_timeout(Duration::from_secs(1));
                let now = progress.load(Ordering::Relaxed);
                if now != last.0 {
                    last = (now, Instant::now());
                    continue;
                }
                if last.1.elapsed() < STUCK || done.load(Ordering::Relaxed) {
                    continue;
                }
                let what = match corpus.get(now as usize) {
                    Some(path) => format!("corpus file {}", path.display()),
                    None => {
                        let i = now - corpus.len() as u64;
                        let input = generate(&mut input_rng(seed, i));
                        let saved = save_failure(name, seed, i, &input);
                        format!(
                            "input {i} of seed {seed} (saved to {})\ninput: \"{}\"",
                            saved.display(),
                            shown(&input)
                        )
                    }
                };
                eprintln!("fuzz {name}: stuck for {STUCK:?} on {what}");
                std::process::abort();
            }
        })
        .expect("start the watchdog thread")
}
