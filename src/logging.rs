//! Log lines on stderr: a small logger behind the `log` facade.
//!
//! Each line is `TIMESTAMP LEVEL [NODE] message`, the timestamp in UTC
//! (RFC 3339, milliseconds), for example
//! `2025-06-01T09:30:00.250Z INFO  [n1] listening on 127.0.0.1:9001 ...`.
//! Which lines are written is set by a [`Filter`]: one level for
//! everything, or `RUST_LOG`-style directives per module.
//!
//! stdout carries command replies only; this module never writes to it.
//! While a person types at the console, log lines go to the line editor
//! (see [`print_through`]) so that they appear above the prompt instead of
//! through it.

use crossbeam_channel::{Sender, TrySendError};
use log::{Level, LevelFilter, Log, Metadata, Record};
use parking_lot::Mutex;
use std::io::Write;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Which log lines are written: a default level, and levels for modules
/// (a module's setting covers the modules inside it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    default: LevelFilter,
    /// Module path and level, longest path first.
    modules: Vec<(String, LevelFilter)>,
}

impl Filter {
    /// Lines at `level` and more severe, from every module.
    pub fn level(level: LevelFilter) -> Filter {
        Filter {
            default: level,
            modules: Vec::new(),
        }
    }

    /// Parses `RUST_LOG`-style directives, separated by commas: `LEVEL`
    /// (every module), `MODULE=LEVEL`, or `MODULE` (all its lines), for
    /// example `warn,netdb::replication=debug`. Lines not covered by any
    /// directive are written from `error` up. Returns the filter and one
    /// complaint per directive that could not be read (and was left out).
    pub fn parse(spec: &str) -> (Filter, Vec<String>) {
        let mut filter = Filter::level(LevelFilter::Error);
        let mut complaints = Vec::new();
        for directive in spec.split(',').map(str::trim).filter(|d| !d.is_empty()) {
            let (module, level) = match directive.split_once('=') {
                Some((module, level)) => (Some(module.trim()), level.trim().parse().ok()),
                None => match directive.parse::<LevelFilter>() {
                    Ok(level) => (None, Some(level)),
                    Err(_) => (Some(directive), Some(LevelFilter::Trace)),
                },
            };
            match (module, level) {
                (_, None) => complaints.push(format!(
                    "'{directive}': the level must be one of off, error, warn, info, debug, trace"
                )),
                (None, Some(level)) => filter.default = level,
                (Some(""), Some(_)) => complaints.push(format!("'{directive}': no module named")),
                (Some(module), Some(level)) => {
                    filter.modules.retain(|(m, _)| m != module);
                    filter.modules.push((module.to_owned(), level));
                }
            }
        }
        filter
            .modules
            .sort_by_key(|(m, _)| std::cmp::Reverse(m.len()));
        (filter, complaints)
    }

    /// The most detailed level written for lines from `target` (a module
    /// path such as `netdb::replication::sync`).
    pub fn level_for(&self, target: &str) -> LevelFilter {
        self.modules
            .iter()
            .find(|(module, _)| {
                target
                    .strip_prefix(module.as_str())
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
            })
            .map_or(self.default, |(_, level)| *level)
    }

    /// The most detailed level written for any module.
    pub fn max_level(&self) -> LevelFilter {
        self.modules
            .iter()
            .map(|(_, level)| *level)
            .fold(self.default, Ord::max)
    }
}

/// `since_epoch` as an RFC 3339 UTC timestamp with milliseconds,
/// `1970-01-01T00:00:00.000Z`.
pub fn format_timestamp(since_epoch: Duration) -> String {
    let secs = since_epoch.as_secs();
    let (days, of_day) = (secs / 86_400, secs % 86_400);
    // Days to a civil date (Howard Hinnant's `civil_from_days`), for days
    // on or after 1970-01-01, in 400-year eras of 146,097 days from
    // 0000-03-01.
    let z = days + 719_468;
    let (era, doe) = (z / 146_097, z % 146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60,
        since_epoch.subsec_millis()
    )
}

/// One log line, without its line ending.
pub fn format_line(
    now: SystemTime,
    level: Level,
    node: &str,
    message: &std::fmt::Arguments,
) -> String {
    let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    format!(
        "{} {level:<5} [{node}] {message}",
        format_timestamp(since_epoch)
    )
}

struct Logger {
    node: String,
    filter: Filter,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

/// Where log lines go instead of stderr while the line editor has the
/// terminal; `None` for stderr.
static EDITOR: Mutex<Option<Sender<String>>> = Mutex::new(None);

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= self.filter.level_for(metadata.target())
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = format_line(SystemTime::now(), record.level(), &self.node, record.args());
        // The line editor's own debug lines go straight to stderr: through
        // the editor, each would make it log another.
        let line = if record.target().starts_with("rustyline") {
            line
        } else {
            match EDITOR.lock().as_ref() {
                None => line,
                Some(editor) => match editor.try_send(line) {
                    Ok(()) => return,
                    // A full or closed queue to the editor: never hold up
                    // the thread that logs; stderr is the same terminal.
                    Err(TrySendError::Full(line) | TrySendError::Disconnected(line)) => line,
                },
            }
        };
        let _ = writeln!(std::io::stderr().lock(), "{line}");
    }

    fn flush(&self) {}
}

/// Installs the logger for this process: lines name `node` and pass
/// `filter`. Later calls change nothing.
pub fn init(node: &str, filter: Filter) {
    let max = filter.max_level();
    let logger = LOGGER.get_or_init(|| Logger {
        node: node.to_owned(),
        filter,
    });
    if log::set_logger(logger).is_ok() {
        log::set_max_level(max);
    }
}

/// Sends every later log line to `editor` (the line editor prints it
/// above its prompt) instead of stderr, until [`print_to_stderr`].
pub fn print_through(editor: Sender<String>) {
    *EDITOR.lock() = Some(editor);
}

/// Log lines go to stderr again.
pub fn print_to_stderr() {
    EDITOR.lock().take();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc_with_milliseconds() {
        let at = |secs: u64, millis: u64| {
            format_timestamp(Duration::from_secs(secs) + Duration::from_millis(millis))
        };
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(951_782_400, 5), "2000-02-29T00:00:00.005Z");
        assert_eq!(at(1_700_000_000, 123), "2023-11-14T22:13:20.123Z");
        assert_eq!(at(1_709_251_199, 999), "2024-02-29T23:59:59.999Z");
        assert_eq!(at(4_102_444_800, 0), "2100-01-01T00:00:00.000Z");
    }

    #[test]
    fn a_line_is_time_level_node_message() {
        let at = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        assert_eq!(
            format_line(
                at,
                Level::Warn,
                "n1",
                &format_args!("peer {} is unreachable", "b:1")
            ),
            "2023-11-14T22:13:20.123Z WARN  [n1] peer b:1 is unreachable"
        );
    }

    #[test]
    fn directives_set_levels_by_module() {
        let (filter, complaints) = Filter::parse("warn, netdb::replication=debug,netdb::store");
        assert!(complaints.is_empty(), "{complaints:?}");
        assert_eq!(filter.level_for("netdb::listener"), LevelFilter::Warn);
        assert_eq!(filter.level_for("netdb::replication"), LevelFilter::Debug);
        assert_eq!(
            filter.level_for("netdb::replication::sync"),
            LevelFilter::Debug
        );
        assert_eq!(filter.level_for("netdb::replicationx"), LevelFilter::Warn);
        assert_eq!(filter.level_for("netdb::store::map"), LevelFilter::Trace);
        assert_eq!(filter.max_level(), LevelFilter::Trace);

        let (filter, _) = Filter::parse("netdb=debug,netdb::replication=off");
        assert_eq!(filter.level_for("netdb::node"), LevelFilter::Debug);
        assert_eq!(
            filter.level_for("netdb::replication::sync"),
            LevelFilter::Off
        );
        assert_eq!(filter.level_for("rustyline"), LevelFilter::Error);

        assert_eq!(Filter::parse("INFO").0, Filter::level(LevelFilter::Info));
    }

    #[test]
    fn bad_directives_are_named_and_left_out() {
        let (filter, complaints) = Filter::parse("info,netdb=loud,=debug");
        assert_eq!(filter, Filter::level(LevelFilter::Info));
        assert_eq!(
            complaints,
            [
                "'netdb=loud': the level must be one of off, error, warn, info, debug, trace",
                "'=debug': no module named"
            ]
        );
    }
}
