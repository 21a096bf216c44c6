//! What the client side counts as commands run: per-command calls and
//! time (`INFO commandstats`), the spread of each command's durations
//! (`INFO latencystats`), errors by their code (`INFO errorstats`),
//! the recent rate of commands (`instantaneous_ops_per_sec`), the memory
//! peak, and the slow log (`SLOWLOG`).
//!
//! Counting is on every command's path, so it is lock-free there: one
//! array of atomics per counter, indexed by the command's slot in the
//! table (see [`crate::redis::command::slot_of`]). Locks are taken only
//! for what is rare: an error reply, a command slower than the slow-log
//! threshold, a rate sample every 100 ms.
//!
//! Pure apart from atomics and locks: no clock is read here (every `now`
//! is passed in), no file, no socket. The shell
//! ([`crate::redis::client`]) times the commands and reads the memory.

use parking_lot::Mutex;
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::OnceLock;

/// Most distinct error codes `errorstats` tracks; later codes are not
/// counted (Redis stops at 128 too, so that a client sending made-up
/// error codes cannot grow the table without limit).
pub const MAX_ERROR_CODES: usize = 128;

/// Per-command counters, one slot per command of the table.
#[derive(Debug)]
pub struct CommandCounters {
    calls: Box<[AtomicU64]>,
    nanos: Box<[AtomicU64]>,
    rejected: Box<[AtomicU64]>,
    failed: Box<[AtomicU64]>,
    /// Each command's durations, made at its first call (most commands
    /// of the table never run, and a histogram is a few KiB).
    latencies: Box<[OnceLock<Box<Histogram>>]>,
    errors: Mutex<BTreeMap<String, u64>>,
}

/// The percentiles `INFO latencystats` shows, as Redis's default
/// `latency-tracking-info-percentiles "50 99 99.9"`.
pub const LATENCY_PERCENTILES: [f64; 3] = [50.0, 99.0, 99.9];

/// Sub-buckets per power of two of a [`Histogram`]: 2^4, so a bucket is
/// at most 1/16 (6.25%) of the values it holds wide.
const SUB_BITS: u32 = 4;
const SUB: usize = 1 << SUB_BITS;
/// Durations from 2^36 ns (about 69 s) up share the last bucket.
const TOP_BIT: u32 = 36;
/// Buckets: exact below [`SUB`], then [`SUB`] per power of two.
const BUCKETS: usize = (TOP_BIT - SUB_BITS + 1) as usize * SUB;

/// A command's durations in nanoseconds, counted in log-linear buckets
/// (exact below 16 ns, then 16 buckets per power of two): recording is
/// one atomic add, with no lock and no allocation, so it can be on every
/// command's path; a percentile is read off the counts to within a
/// bucket's width (at most 6.25% of the value), as Redis's
/// HdrHistogram reads its own.
pub struct Histogram {
    counts: [AtomicU64; BUCKETS],
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram").finish_non_exhaustive()
    }
}

impl Default for Histogram {
    fn default() -> Histogram {
        Histogram {
            counts: [const { AtomicU64::new(0) }; BUCKETS],
        }
    }
}

impl Histogram {
    /// The bucket of `nanos`.
    fn bucket(nanos: u64) -> usize {
        let v = nanos.min((1 << TOP_BIT) - 1);
        if v < SUB as u64 {
            return v as usize;
        }
        let top = 63 - v.leading_zeros();
        let sub = (v >> (top - SUB_BITS)) as usize & (SUB - 1);
        (top - SUB_BITS + 1) as usize * SUB + sub
    }

    /// The largest duration bucket `index` holds, in nanoseconds (what
    /// HdrHistogram calls the highest equivalent value).
    fn highest(index: usize) -> u64 {
        if index < SUB {
            return index as u64;
        }
        let shift = (index / SUB) as u32 - 1;
        let low = ((SUB + index % SUB) as u64) << shift;
        low + (1 << shift) - 1
    }

    /// Counts one duration.
    pub fn record(&self, nanos: u64) {
        self.counts[Self::bucket(nanos)].fetch_add(1, Ordering::Relaxed);
    }

    /// The duration at or under which `percentile` per cent of those
    /// recorded are (the highest of its bucket), in nanoseconds; `None`
    /// if none is.
    pub fn percentile(&self, percentile: f64) -> Option<u64> {
        let counts: Vec<u64> = self
            .counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        let wanted = ((percentile / 100.0 * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (index, n) in counts.iter().enumerate() {
            seen += n;
            if seen >= wanted {
                return Some(Self::highest(index));
            }
        }
        Some(Self::highest(BUCKETS - 1))
    }

    /// Back to zero.
    fn reset(&self) {
        for n in &self.counts {
            n.store(0, Ordering::Relaxed);
        }
    }
}

/// One command's counts, as `cmdstat_<name>` shows them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommandStat {
    /// Times it ran (its handler was called).
    pub calls: u64,
    /// Nanoseconds it took, in all (see the README for what is timed);
    /// `INFO` shows microseconds.
    pub nanos: u64,
    /// Times it was refused before running (arity, authentication).
    pub rejected_calls: u64,
    /// Times it ran and answered an error.
    pub failed_calls: u64,
}

impl CommandStat {
    /// Whether there is anything to show.
    pub fn is_zero(&self) -> bool {
        *self == CommandStat::default()
    }
}

fn zeros(n: usize) -> Box<[AtomicU64]> {
    (0..n).map(|_| AtomicU64::new(0)).collect()
}

impl CommandCounters {
    /// Counters for `slots` commands, all zero.
    pub fn new(slots: usize) -> CommandCounters {
        CommandCounters {
            calls: zeros(slots),
            nanos: zeros(slots),
            rejected: zeros(slots),
            failed: zeros(slots),
            latencies: (0..slots).map(|_| OnceLock::new()).collect(),
            errors: Mutex::new(BTreeMap::new()),
        }
    }

    /// Counts one run of the command in `slot`, which took `nanos`.
    pub fn record_call(&self, slot: usize, nanos: u64) {
        if let (Some(calls), Some(total), Some(latency)) = (
            self.calls.get(slot),
            self.nanos.get(slot),
            self.latencies.get(slot),
        ) {
            calls.fetch_add(1, Ordering::Relaxed);
            total.fetch_add(nanos, Ordering::Relaxed);
            latency.get_or_init(Box::default).record(nanos);
        }
    }

    /// The durations of the command in `slot` at [`LATENCY_PERCENTILES`],
    /// in nanoseconds; `None` if it has not run since the start or the
    /// last reset.
    pub fn latency(&self, slot: usize) -> Option<[u64; 3]> {
        let histogram = self.latencies.get(slot)?.get()?;
        let mut out = [0; 3];
        for (value, p) in out.iter_mut().zip(LATENCY_PERCENTILES) {
            *value = histogram.percentile(p)?;
        }
        Some(out)
    }

    /// Counts a refusal of the command in `slot` before it ran.
    pub fn record_rejected(&self, slot: usize) {
        if let Some(n) = self.rejected.get(slot) {
            n.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts an error answered by the command in `slot`, which ran.
    pub fn record_failed(&self, slot: usize) {
        if let Some(n) = self.failed.get(slot) {
            n.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts an error reply under its code: the text's first word
    /// (`ERR`, `WRONGTYPE`, `NOAUTH` ...), as Redis's `errorstats` does.
    pub fn record_error(&self, text: &str) {
        let code = error_code(text);
        let mut errors = self.errors.lock();
        if let Some(n) = errors.get_mut(code) {
            *n += 1;
        } else if errors.len() < MAX_ERROR_CODES {
            errors.insert(code.to_owned(), 1);
        }
    }

    /// The counts of the command in `slot`.
    pub fn stat(&self, slot: usize) -> CommandStat {
        let load = |a: &[AtomicU64]| a.get(slot).map_or(0, |n| n.load(Ordering::Relaxed));
        CommandStat {
            calls: load(&self.calls),
            nanos: load(&self.nanos),
            rejected_calls: load(&self.rejected),
            failed_calls: load(&self.failed),
        }
    }

    /// Every error code seen and its count, by code.
    pub fn errors(&self) -> Vec<(String, u64)> {
        self.errors
            .lock()
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }

    /// Back to zero (`CONFIG RESETSTAT`).
    pub fn reset(&self) {
        for counters in [&self.calls, &self.nanos, &self.rejected, &self.failed] {
            for n in counters.iter() {
                n.store(0, Ordering::Relaxed);
            }
        }
        for histogram in self.latencies.iter().filter_map(OnceLock::get) {
            histogram.reset();
        }
        self.errors.lock().clear();
    }
}

/// An error reply's code: its first word.
pub fn error_code(text: &str) -> &str {
    text.split(' ').next().unwrap_or(text)
}

/// How many rate samples are kept, and how far apart: the rate is over
/// the last 16 × 100 ms, as Redis's `instantaneous_ops_per_sec`.
pub const RATE_SAMPLES: usize = 16;
/// Milliseconds between two rate samples.
pub const RATE_SAMPLE_MS: u64 = 100;

/// The recent rate of commands, from samples of the running total taken
/// at least [`RATE_SAMPLE_MS`] apart. Samples are taken by whoever runs
/// commands ([`OpsRate::tick`]), so a node with no commands takes none;
/// the rate is over the samples of the last 1.6 s.
#[derive(Debug, Default)]
pub struct OpsRate {
    last_ms: AtomicU64,
    samples: Mutex<VecDeque<(u64, u64)>>,
}

impl OpsRate {
    /// Takes a sample of `total` at `now_ms` (milliseconds from any fixed
    /// start), unless one was taken in the last [`RATE_SAMPLE_MS`].
    /// Cheap when there is nothing to do: one atomic load.
    pub fn tick(&self, now_ms: u64, total: u64) -> bool {
        let last = self.last_ms.load(Ordering::Relaxed);
        if now_ms < last.saturating_add(RATE_SAMPLE_MS)
            || self
                .last_ms
                .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return false;
        }
        let mut samples = self.samples.lock();
        if samples.len() > RATE_SAMPLES {
            samples.pop_front();
        }
        samples.push_back((now_ms, total));
        true
    }

    /// Commands per second over the samples of the last
    /// `RATE_SAMPLES × RATE_SAMPLE_MS` before `now_ms`, `total` being the
    /// count now; 0 without two samples in that window.
    pub fn per_sec(&self, now_ms: u64, total: u64) -> u64 {
        let window = RATE_SAMPLES as u64 * RATE_SAMPLE_MS;
        let samples = self.samples.lock();
        let Some(&(first_ms, first_total)) = samples
            .iter()
            .find(|(t, _)| now_ms.saturating_sub(*t) <= window)
        else {
            return 0;
        };
        let elapsed = now_ms.saturating_sub(first_ms);
        if elapsed < RATE_SAMPLE_MS {
            return 0;
        }
        total.saturating_sub(first_total).saturating_mul(1000) / elapsed
    }

    /// Forgets the samples (`CONFIG RESETSTAT`).
    pub fn reset(&self) {
        self.samples.lock().clear();
    }
}

/// The largest memory use seen.
#[derive(Debug, Default)]
pub struct Peak(AtomicU64);

impl Peak {
    /// Takes `bytes` in; returns the peak.
    pub fn see(&self, bytes: u64) -> u64 {
        self.0.fetch_max(bytes, Ordering::Relaxed).max(bytes)
    }

    /// Starts again from `bytes` (`CONFIG RESETSTAT`).
    pub fn reset(&self, bytes: u64) {
        self.0.store(bytes, Ordering::Relaxed);
    }
}

/// Longest argument kept whole in a slow-log entry, in bytes.
pub const SLOWLOG_MAX_STRING: usize = 128;
/// Most arguments kept in a slow-log entry.
pub const SLOWLOG_MAX_ARGC: usize = 32;

/// A command's arguments as a slow-log entry keeps them: at most
/// [`SLOWLOG_MAX_ARGC`], each cut at [`SLOWLOG_MAX_STRING`] bytes. Made
/// for every command while the slow log is on (its arguments are gone by
/// the time it is known to be slow), so a short request's are kept
/// inline, with no allocation of their own, and a longer one's in one
/// buffer: never a copy of the whole request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlowArgs {
    /// Per kept argument: its full length (4 bytes, little-endian,
    /// saturated), then its first `min(len, SLOWLOG_MAX_STRING)` bytes.
    packed: Packed,
    argc: usize,
}

/// Bytes kept inline; `GET key` and `SET key value` of up to about 150
/// bytes fit (a heap buffer per command, allocated on an I/O thread and
/// freed on the store thread, cost pipelined SETs of 100-byte values a
/// tenth of their rate).
const INLINE: usize = 192;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Packed {
    Inline { bytes: [u8; INLINE], len: u8 },
    Heap(Vec<u8>),
}

impl Default for SlowArgs {
    fn default() -> SlowArgs {
        SlowArgs {
            packed: Packed::Inline {
                bytes: [0; INLINE],
                len: 0,
            },
            argc: 0,
        }
    }
}

impl SlowArgs {
    /// What a slow-log entry keeps of `args`.
    pub fn of(args: &[Vec<u8>]) -> SlowArgs {
        let kept = &args[..args.len().min(SLOWLOG_MAX_ARGC)];
        let size: usize = kept
            .iter()
            .map(|a| 4 + a.len().min(SLOWLOG_MAX_STRING))
            .sum();
        let pack = |out: &mut [u8]| {
            let mut at = 0;
            for a in kept {
                let len = u32::try_from(a.len()).unwrap_or(u32::MAX).to_le_bytes();
                out[at..at + 4].copy_from_slice(&len);
                at += 4;
                let head = &a[..a.len().min(SLOWLOG_MAX_STRING)];
                out[at..at + head.len()].copy_from_slice(head);
                at += head.len();
            }
        };
        let packed = if size <= INLINE {
            let mut bytes = [0; INLINE];
            pack(&mut bytes[..size]);
            Packed::Inline {
                bytes,
                len: u8::try_from(size).unwrap_or(u8::MAX),
            }
        } else {
            let mut heap = vec![0; size];
            pack(&mut heap);
            Packed::Heap(heap)
        };
        SlowArgs {
            packed,
            argc: args.len(),
        }
    }

    fn packed(&self) -> &[u8] {
        match &self.packed {
            Packed::Inline { bytes, len } => &bytes[..usize::from(*len)],
            Packed::Heap(heap) => heap,
        }
    }

    /// The arguments as Redis shows them: over [`SLOWLOG_MAX_ARGC`], the
    /// last shown is `... (N more arguments)`; an argument over
    /// [`SLOWLOG_MAX_STRING`] bytes ends with `... (N more bytes)`.
    pub fn shown(&self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut rest = self.packed();
        while rest.len() >= 4 {
            let (len, tail) = rest.split_at(4);
            let len = u32::from_le_bytes(len.try_into().unwrap_or_default()) as usize;
            let kept = len.min(SLOWLOG_MAX_STRING).min(tail.len());
            let (bytes, tail) = tail.split_at(kept);
            let mut arg = bytes.to_vec();
            if len > kept {
                arg.extend_from_slice(format!("... ({} more bytes)", len - kept).as_bytes());
            }
            out.push(arg);
            rest = tail;
        }
        if self.argc > SLOWLOG_MAX_ARGC {
            out.truncate(SLOWLOG_MAX_ARGC - 1);
            let more = self.argc - (SLOWLOG_MAX_ARGC - 1);
            out.push(format!("... ({more} more arguments)").into_bytes());
        }
        out
    }
}

/// One slow-log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlowEntry {
    /// Unique, increasing from 0 since the node started.
    pub id: u64,
    /// When the command ran, in Unix seconds.
    pub unix_secs: u64,
    /// How long it took, in microseconds.
    pub usec: u64,
    /// Its arguments, as kept.
    pub args: SlowArgs,
    /// The client's address.
    pub addr: String,
    /// The client's name (empty for none).
    pub name: Vec<u8>,
}

/// The slow log: the latest commands that took at least the threshold,
/// newest first, at most `max_len` of them.
#[derive(Debug)]
pub struct SlowLog {
    /// Microseconds; negative: the log is off.
    slower_than: AtomicI64,
    max_len: AtomicUsize,
    next_id: AtomicU64,
    entries: Mutex<VecDeque<SlowEntry>>,
}

impl SlowLog {
    /// A log of commands taking `slower_than` µs or more (negative: none),
    /// keeping `max_len`.
    pub fn new(slower_than: i64, max_len: usize) -> SlowLog {
        SlowLog {
            slower_than: AtomicI64::new(slower_than),
            max_len: AtomicUsize::new(max_len),
            next_id: AtomicU64::new(0),
            entries: Mutex::new(VecDeque::new()),
        }
    }

    /// Whether commands are logged at all (their arguments must then be
    /// kept until they are timed).
    pub fn is_on(&self) -> bool {
        self.slower_than.load(Ordering::Relaxed) >= 0
    }

    /// Whether a command that took `usec` goes in the log.
    pub fn is_slow(&self, usec: u64) -> bool {
        let threshold = self.slower_than.load(Ordering::Relaxed);
        threshold >= 0 && usec >= threshold.unsigned_abs()
    }

    /// The threshold, in microseconds.
    pub fn slower_than(&self) -> i64 {
        self.slower_than.load(Ordering::Relaxed)
    }

    /// How many entries are kept.
    pub fn max_len(&self) -> usize {
        self.max_len.load(Ordering::Relaxed)
    }

    /// Logs a command that took `usec` at `unix_secs`, if it is slow
    /// enough; the oldest entry goes once the log is full.
    pub fn offer(
        &self,
        unix_secs: u64,
        usec: u64,
        args: SlowArgs,
        addr: &str,
        name: Option<&[u8]>,
    ) {
        if !self.is_slow(usec) {
            return;
        }
        let max_len = self.max_len();
        let mut entries = self.entries.lock();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        entries.push_front(SlowEntry {
            id,
            unix_secs,
            usec,
            args,
            addr: addr.to_owned(),
            name: name.unwrap_or_default().to_vec(),
        });
        entries.truncate(max_len);
    }

    /// The newest `count` entries (all of them for `None`), newest first.
    pub fn newest(&self, count: Option<usize>) -> Vec<SlowEntry> {
        let entries = self.entries.lock();
        let n = count.unwrap_or(entries.len()).min(entries.len());
        entries.iter().take(n).cloned().collect()
    }

    /// How many entries there are.
    pub fn len(&self) -> usize {
        self.entries.lock().len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Empties the log (`SLOWLOG RESET`); ids go on from where they were.
    pub fn reset(&self) {
        self.entries.lock().clear();
    }
}

/// What `INFO` shows beyond the [`super::Status`]: the client side's
/// counts of commands and errors, the recent rate, network bytes and the
/// memory peak.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Activity {
    /// `cmdstat_<name>` lines: commands with anything counted, by name.
    pub commands: Vec<(String, CommandStat)>,
    /// `latency_percentiles_usec_<name>` lines: the commands that ran, by
    /// name, with their durations in nanoseconds at
    /// [`LATENCY_PERCENTILES`].
    pub latencies: Vec<(String, [u64; 3])>,
    /// `errorstat_<code>` lines, by code.
    pub errors: Vec<(String, u64)>,
    /// Commands per second lately.
    pub ops_per_sec: u64,
    /// Bytes read from clients.
    pub net_input_bytes: u64,
    /// Bytes of replies queued for clients.
    pub net_output_bytes: u64,
    /// The most memory seen in use (`used_memory_peak`).
    pub memory_peak: Option<u64>,
    /// Whether keys are sharded (`--replicas`): `cluster_enabled:1`, as
    /// cluster clients need to route themselves.
    pub cluster_enabled: bool,
    /// Command parts forwarded to other members since the start
    /// (`netdb_proxied_commands`), so operators and tests see proxying.
    pub proxied_commands: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_counters_count_by_slot_and_reset() {
        let c = CommandCounters::new(3);
        c.record_call(1, 10);
        c.record_call(1, 5);
        c.record_failed(1);
        c.record_rejected(2);
        c.record_call(9, 1); // out of the table: ignored
        assert_eq!(
            c.stat(1),
            CommandStat {
                calls: 2,
                nanos: 15,
                rejected_calls: 0,
                failed_calls: 1
            }
        );
        assert_eq!(c.stat(2).rejected_calls, 1);
        assert!(c.stat(0).is_zero());
        c.record_error("ERR syntax error");
        c.record_error("WRONGTYPE Operation against a key");
        c.record_error("ERR other");
        assert_eq!(c.errors(), vec![("ERR".into(), 2), ("WRONGTYPE".into(), 1)]);
        c.reset();
        assert!(c.stat(1).is_zero());
        assert!(c.errors().is_empty());
    }

    #[test]
    fn latency_percentiles_are_within_a_bucket_of_the_durations() {
        let c = CommandCounters::new(2);
        assert_eq!(c.latency(0), None, "never ran");
        // 1..=1000 microseconds, once each.
        for us in 1..=1000u64 {
            c.record_call(0, us * 1000);
        }
        let [p50, p99, p999] = c.latency(0).expect("ran");
        for (got, want) in [(p50, 500_000), (p99, 990_000), (p999, 999_000)] {
            assert!(got >= want, "{got} under {want}");
            assert!(got <= want + want / 16, "{got} too far over {want}");
        }
        // Small durations are exact.
        c.record_call(1, 7);
        assert_eq!(c.latency(1), Some([7, 7, 7]));
        c.reset();
        assert_eq!(c.latency(1), None, "reset");
    }

    #[test]
    fn every_duration_is_in_the_bucket_whose_range_holds_it() {
        let mut low = 0;
        for index in 0..BUCKETS {
            let highest = Histogram::highest(index);
            assert!(highest >= low, "bucket {index}");
            assert_eq!(Histogram::bucket(low), index, "{low}");
            assert_eq!(Histogram::bucket(highest), index, "{highest}");
            low = highest + 1;
        }
        assert_eq!(Histogram::bucket(u64::MAX), BUCKETS - 1);
        // Wide buckets are at most a sixteenth of their values.
        for index in SUB..BUCKETS {
            let low = Histogram::highest(index - 1) + 1;
            let width = Histogram::highest(index) - low + 1;
            assert!(width * SUB as u64 <= low, "bucket {index}: {low} + {width}");
        }
    }

    #[test]
    fn error_codes_are_bounded() {
        let c = CommandCounters::new(1);
        for i in 0..MAX_ERROR_CODES + 10 {
            c.record_error(&format!("E{i} x"));
        }
        c.record_error("E0 again");
        let errors = c.errors();
        assert_eq!(errors.len(), MAX_ERROR_CODES);
        assert!(errors.contains(&("E0".into(), 2)));
    }

    #[test]
    fn the_rate_is_over_the_recent_samples() {
        let rate = OpsRate::default();
        assert_eq!(rate.per_sec(0, 0), 0);
        // 1000 commands a second for two seconds, sampled as they run.
        for step in 1..=20 {
            rate.tick(step * 100, step * 100);
        }
        assert!(!rate.tick(2050, 2050), "too soon after the last sample");
        assert_eq!(rate.per_sec(2000, 2000), 1000);
        // Then nothing for a while: the old samples are out of the window.
        assert_eq!(rate.per_sec(10_000, 2000), 0);
        rate.tick(10_000, 2000);
        rate.tick(10_500, 2500);
        assert_eq!(rate.per_sec(10_500, 2500), 1000);
        rate.reset();
        assert_eq!(rate.per_sec(10_500, 2500), 0);
    }

    #[test]
    fn the_peak_only_grows_until_reset() {
        let peak = Peak::default();
        assert_eq!(peak.see(10), 10);
        assert_eq!(peak.see(5), 10);
        peak.reset(5);
        assert_eq!(peak.see(6), 6);
    }

    fn args(list: &[&[u8]]) -> Vec<Vec<u8>> {
        list.iter().map(|a| a.to_vec()).collect()
    }

    #[test]
    fn slow_args_are_cut_as_redis_cuts_them() {
        assert_eq!(
            SlowArgs::of(&args(&[b"SET", b"k", b"v"])).shown(),
            args(&[b"SET", b"k", b"v"])
        );
        let long = vec![b'x'; 200];
        let shown = SlowArgs::of(&args(&[b"SET", b"k", &long])).shown();
        assert_eq!(
            shown[2],
            [&[b'x'; 128][..], b"... (72 more bytes)"].concat()
        );
        let many: Vec<Vec<u8>> = (0..40).map(|i| i.to_string().into_bytes()).collect();
        let shown = SlowArgs::of(&many).shown();
        assert_eq!(shown.len(), 32);
        assert_eq!(shown[30], b"30");
        assert_eq!(shown[31], b"... (9 more arguments)");
        let exactly: Vec<Vec<u8>> = (0..32).map(|i| i.to_string().into_bytes()).collect();
        assert_eq!(SlowArgs::of(&exactly).shown(), exactly);
        // Inline up to 192 bytes packed, on the heap past them.
        let small = args(&[b"SET", b"key:000000000042", &[b'v'; 100]]);
        assert!(matches!(SlowArgs::of(&small).packed, Packed::Inline { .. }));
        assert_eq!(SlowArgs::of(&small).shown(), small);
        let larger = args(&[b"SET", &[b'k'; 100], &[b'v'; 100]]);
        assert!(matches!(SlowArgs::of(&larger).packed, Packed::Heap(_)));
        assert_eq!(SlowArgs::of(&larger).shown(), larger);
        assert!(SlowArgs::default().shown().is_empty());
    }

    #[test]
    fn the_slow_log_keeps_the_newest_slow_commands() {
        let log = SlowLog::new(100, 2);
        let a = SlowArgs::of(&args(&[b"GET", b"a"]));
        log.offer(1, 99, a.clone(), "c:1", None);
        assert!(log.is_empty(), "faster than the threshold");
        log.offer(1, 100, a.clone(), "c:1", None);
        log.offer(2, 300, a.clone(), "c:2", Some(b"worker"));
        log.offer(3, 200, a.clone(), "c:3", None);
        let newest = log.newest(None);
        assert_eq!(newest.len(), 2);
        assert_eq!((newest[0].id, newest[0].unix_secs), (2, 3));
        assert_eq!(
            (newest[1].id, newest[1].name.as_slice()),
            (1, &b"worker"[..])
        );
        assert_eq!(log.newest(Some(1)).len(), 1);
        log.reset();
        assert_eq!(log.len(), 0);
        log.offer(4, 100, a.clone(), "c:1", None);
        assert_eq!(log.newest(None)[0].id, 3, "ids go on after a reset");
        let everything = SlowLog::new(0, 10);
        everything.offer(1, 0, a.clone(), "c:1", None);
        assert_eq!(everything.len(), 1, "0 logs every command");
        let off = SlowLog::new(-1, 10);
        assert!(!off.is_on());
        off.offer(1, u64::MAX, a, "c:1", None);
        assert!(off.is_empty());
    }
}
