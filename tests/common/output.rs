//! The lines a child process writes on stdout or stderr, read by a thread
//! of their own (so the child never blocks on a full pipe) into a list
//! that waits can watch.

use std::io::{BufRead, BufReader, Read};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Every line read so far from one stream, and whether it has ended.
#[derive(Default)]
pub struct Output {
    state: Mutex<State>,
    grew: Condvar,
}

#[derive(Default)]
struct State {
    lines: Vec<String>,
    closed: bool,
}

/// What [`Output::line`] found at an index.
pub enum Line {
    /// The line.
    Here(String),
    /// The stream ended before that line.
    Closed,
    /// Neither within the time given.
    TimedOut,
}

impl Output {
    /// Starts the thread (named `thread_name`) that reads `from` into a
    /// new output, one line at a time, without its line end; bytes that
    /// are not UTF-8 are replaced.
    pub fn collect(from: impl Read + Send + 'static, thread_name: String) -> Arc<Output> {
        let output = Arc::new(Output::default());
        let sink = Arc::clone(&output);
        std::thread::Builder::new()
            .name(thread_name)
            .spawn(move || {
                let mut reader = BufReader::new(from);
                let mut line = Vec::new();
                loop {
                    line.clear();
                    match reader.read_until(b'\n', &mut line) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {
                            let text = String::from_utf8_lossy(&line)
                                .trim_end_matches(['\n', '\r'])
                                .to_owned();
                            sink.state().lines.push(text);
                            sink.grew.notify_all();
                        }
                    }
                }
                sink.state().closed = true;
                sink.grew.notify_all();
            })
            .expect("start a reader thread");
        output
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("output lock")
    }

    /// Waits, at most until `deadline`, while `waiting` holds.
    fn wait_while(
        &self,
        deadline: Instant,
        mut waiting: impl FnMut(&State) -> bool,
    ) -> MutexGuard<'_, State> {
        let mut state = self.state();
        loop {
            let now = Instant::now();
            if !waiting(&state) || now >= deadline {
                return state;
            }
            state = self
                .grew
                .wait_timeout(state, deadline - now)
                .expect("output lock")
                .0;
        }
    }

    /// Every line so far.
    pub fn lines(&self) -> Vec<String> {
        self.state().lines.clone()
    }

    /// The lines from index `from` on, without waiting.
    pub fn lines_from(&self, from: usize) -> Vec<String> {
        self.state().lines.get(from..).unwrap_or_default().to_vec()
    }

    /// Line number `index` (from 0), waiting for it at most `within`.
    pub fn line(&self, index: usize, within: Duration) -> Line {
        let state = self.wait_while(Instant::now() + within, |s| {
            s.lines.len() <= index && !s.closed
        });
        match state.lines.get(index) {
            Some(line) => Line::Here(line.clone()),
            None if state.closed => Line::Closed,
            None => Line::TimedOut,
        }
    }

    /// The first line that satisfies `wanted`, waiting for it at most
    /// `within`; `None` if the stream ends or the time passes first.
    pub fn wait_for(
        &self,
        within: Duration,
        mut wanted: impl FnMut(&str) -> bool,
    ) -> Option<String> {
        let mut seen = 0;
        let mut found = None;
        let state = self.wait_while(Instant::now() + within, |s| {
            found = s.lines[seen..].iter().find(|l| wanted(l)).cloned();
            seen = s.lines.len();
            found.is_none() && !s.closed
        });
        drop(state);
        found
    }

    /// Whether the stream has ended.
    pub fn is_closed(&self) -> bool {
        self.state().closed
    }

    /// Waits at most `within` for the stream to end (the process is gone);
    /// returns every line, and whether it ended.
    pub fn wait_closed(&self, within: Duration) -> (Vec<String>, bool) {
        let state = self.wait_while(Instant::now() + within, |s| !s.closed);
        (state.lines.clone(), state.closed)
    }
}

/// A process's stderr lines framed for a panic message.
pub fn show(lines: &[String]) -> String {
    let mut out = String::from("--- stderr ---\n");
    for l in lines {
        out.push_str(l);
        out.push('\n');
    }
    out.push_str("--------------");
    out
}
