//! The console as a person types in it: line editing, a history kept
//! across sessions, completion of command names, and log lines printed
//! above the prompt rather than through it.
//!
//! Used only when stdin and stdout are both terminals; piped input never
//! comes here, so scripts see no prompt and no terminal codes.

use crate::error::{Error, Result};
use crossbeam_channel::bounded;
use nix::sys::termios::{self, SetArg, Termios};
use rustyline::completion::Completer;
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{CompletionType, Config, Context, ExternalPrinter, Helper};
use std::io::IsTerminal;
use std::path::PathBuf;

/// The command words, as completion offers them.
pub const COMMAND_NAMES: &[&str] = &[
    "delete", "get", "help", "keys", "put", "quit", "status", "sync",
];

/// Lines kept in the history file.
pub const HISTORY_SIZE: usize = 1000;

/// Log lines waiting for the editor to print them; past that they go to
/// stderr directly rather than hold up the thread that logs.
const LOG_QUEUE: usize = 256;

/// The prompt.
const PROMPT: &str = "> ";

/// Where a completion starts in `line` (the cursor at `pos`) and the
/// command names it may become: only the first word is completed, and
/// only while the cursor is in it.
pub fn complete_command(line: &str, pos: usize) -> (usize, Vec<&'static str>) {
    let before = line.get(..pos).unwrap_or(line);
    let start = before.len() - before.trim_start().len();
    let word = &before[start..];
    if word.contains([' ', '\t']) {
        return (pos, Vec::new());
    }
    let word = word.to_ascii_lowercase();
    let names = COMMAND_NAMES
        .iter()
        .copied()
        .filter(|name| name.starts_with(&word))
        .collect();
    (start, names)
}

/// Completes command names; no hints, colours or multi-line input.
struct CommandNames;

impl Completer for CommandNames {
    type Candidate = String;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        let (start, names) = complete_command(line, pos);
        // A single match gets its space, ready for the argument.
        let one = names.len() == 1;
        Ok((
            start,
            names
                .into_iter()
                .map(|name| if one { format!("{name} ") } else { name.into() })
                .collect(),
        ))
    }
}

impl Hinter for CommandNames {
    type Hint = String;
}

impl Highlighter for CommandNames {}

impl Validator for CommandNames {}

impl Helper for CommandNames {}

/// The line editor at the terminal, with its history file.
pub struct Editor {
    editor: rustyline::Editor<CommandNames, DefaultHistory>,
    history: Option<PathBuf>,
}

fn editor_err(e: ReadlineError) -> Error {
    Error::Io {
        context: "cannot read the terminal",
        source: std::io::Error::other(e.to_string()),
    }
}

impl Editor {
    /// Opens the editor on the terminal and loads the history from
    /// `history` (a missing file is an empty history). While stderr is
    /// the terminal too, log lines go through the editor from now on,
    /// until it is dropped.
    pub fn new(history: Option<PathBuf>) -> Result<Editor> {
        let config = Config::builder()
            .auto_add_history(true)
            .history_ignore_space(true)
            .history_ignore_dups(true)
            .and_then(|c| c.max_history_size(HISTORY_SIZE))
            .map_err(editor_err)?
            .completion_type(CompletionType::List)
            .build();
        let mut editor =
            rustyline::Editor::with_history(config, DefaultHistory::new()).map_err(editor_err)?;
        editor.set_helper(Some(CommandNames));
        if let Some(path) = &history {
            match editor.load_history(path) {
                Ok(()) => {}
                Err(ReadlineError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => log::warn!("cannot read the history {}: {e}", path.display()),
            }
        }
        if std::io::stderr().is_terminal() {
            match editor.create_external_printer() {
                Ok(printer) => print_logs_through(printer)?,
                Err(e) => log::debug!("log lines go to stderr: {e}"),
            }
        }
        Ok(Editor { editor, history })
    }

    /// The next line typed; `None` at the end of the session: Ctrl-D on
    /// an empty line, or Ctrl-C.
    pub fn read_line(&mut self) -> Result<Option<String>> {
        loop {
            match self.editor.readline(PROMPT) {
                Ok(line) => {
                    self.save(&line);
                    return Ok(Some(line));
                }
                Err(ReadlineError::Eof | ReadlineError::Interrupted) => return Ok(None),
                Err(ReadlineError::Signal(_)) => {}
                Err(e) => return Err(editor_err(e)),
            }
        }
    }

    /// Appends the new history entry to the file at once, so that a
    /// session stopped by a signal keeps its history too.
    fn save(&mut self, line: &str) {
        let Some(path) = &self.history else { return };
        if line.trim().is_empty() {
            return;
        }
        if let Err(e) = self.editor.append_history(path) {
            log::warn!("cannot write the history {}: {e}", path.display());
            self.history = None;
        }
    }
}

impl Drop for Editor {
    fn drop(&mut self) {
        crate::logging::print_to_stderr();
    }
}

/// Starts a thread that prints log lines through `printer`, above the
/// prompt, and sends log lines to it. A thread of its own, so that a
/// thread that logs never waits for the editor.
fn print_logs_through(mut printer: impl ExternalPrinter + Send + 'static) -> Result<()> {
    let (lines, queue) = bounded::<String>(LOG_QUEUE);
    std::thread::Builder::new()
        .name("netdb-log-print".into())
        .spawn(move || {
            for mut line in queue {
                line.push('\n');
                if let Err(e) = printer.print(line.clone()) {
                    eprint!("{line}");
                    log::debug!("the editor cannot print log lines: {e}");
                }
            }
        })
        .map_err(|source| Error::Io {
            context: "cannot start the log printer thread",
            source,
        })?;
    crate::logging::print_through(lines);
    Ok(())
}

/// The terminal's modes as they were before the editor changed them, to
/// put back when the process ends while the editor is waiting for a key
/// (a signal stops the node): the editor puts them back only when it
/// returns a line.
pub struct TerminalModes(Termios);

impl TerminalModes {
    /// The modes of the terminal on stdin; `None` if it is not one.
    pub fn save() -> Option<TerminalModes> {
        termios::tcgetattr(std::io::stdin()).ok().map(TerminalModes)
    }

    /// Puts the modes back, and leaves the prompt's line (on stderr:
    /// the console may hold stdout).
    pub fn restore(&self) {
        crate::logging::print_to_stderr();
        let _ = termios::tcsetattr(std::io::stdin(), SetArg::TCSADRAIN, &self.0);
        eprintln!();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completes_the_first_word_only() {
        assert_eq!(complete_command("", 0), (0, COMMAND_NAMES.to_vec()));
        assert_eq!(complete_command("s", 1), (0, vec!["status", "sync"]));
        assert_eq!(complete_command("  ST", 4), (2, vec!["status"]));
        assert_eq!(complete_command("g", 1), (0, vec!["get"]));
        assert_eq!(complete_command("get k", 5), (5, vec![]));
        assert_eq!(complete_command("x", 1), (0, vec![]));
        // The cursor back in the first word: complete what is before it.
        assert_eq!(complete_command("de key", 2), (0, vec!["delete"]));
    }
}
