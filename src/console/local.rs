//! The stdin command loop: reads lines, runs them against the node, prints
//! one reply per command on stdout. Piped input is read as it comes;
//! typed input goes through the line editor ([`editor`](super::editor)).
//!
//! Data commands that are already buffered go to the store thread as one
//! batch, so a piped script costs one channel trip per batch rather than
//! per line; replies still come out in input order. stdout is flushed
//! whenever the loop would wait for more input, so an interactive user sees
//! each reply at once.

use crate::console::editor::Editor;
use crate::console::line::{display_key, display_value, parse_line, Command, HELP};
use crate::engine::database::{self, Database};
use crate::engine::{Command as StoreWork, Refusable};
use crate::error::{Error, Result};
use crate::node::Node;
use crate::redis::forward::Item;
use crate::redis::resp::{Protocol, Reply};
use crate::redis::route::Remote;
use crate::status::{format_status, Status};
use crate::store::WriteError;
use std::io::{BufReader, Read, Write};
use std::path::PathBuf;
use std::time::Duration;

/// Most data commands sent to the store thread in one batch.
pub const MAX_BATCH: usize = 1024;

/// How long `quit` and end of input wait for the final push.
pub const FINAL_PUSH_TIMEOUT: Duration = Duration::from_secs(3);

/// How long the `sync` command waits for acknowledgements.
pub const SYNC_TIMEOUT: Duration = Duration::from_secs(5);

/// One reply to come, in input order.
enum Slot {
    /// The answer to the next data command of the batch.
    Store,
    /// A reply known already (a parse error).
    Text(String),
}

/// A data command's reply line, made on the store thread.
struct Line(String);

impl Refusable for Line {
    fn refused(why: &WriteError) -> Line {
        Line(format!("Error: {why}"))
    }
}

/// Commands read but not yet answered.
#[derive(Default)]
struct Batch {
    slots: Vec<Slot>,
    work: Vec<StoreWork<Line>>,
}

/// Runs the command loop on piped input until `quit` or end of input;
/// both make one final push to the peers. Stopping the node is the
/// caller's part. With `interactive`, a `> ` prompt is written before
/// waiting for a line (stdin a terminal, stdout not: the line editor
/// wants both).
pub fn run(node: &Node, input: impl Read, out: impl Write, interactive: bool) -> Result<()> {
    let mut input = BufReader::with_capacity(256 * 1024, input);
    let mut session = Session::new(node, out);
    let mut line = Vec::new();
    loop {
        let prompt = interactive && session.batch.slots.is_empty();
        if !super::next_line(&mut input, &mut session.out, prompt, &mut line)? {
            return session.finish();
        }
        // Keep batching while whole lines wait in the buffer.
        let more_waiting = input.buffer().contains(&b'\n');
        if session.take(&line, more_waiting)? == Flow::Quit {
            return Ok(());
        }
    }
}

/// Runs the command loop on lines typed at the terminal, with line
/// editing, history (in `history`, if given) and completion, until
/// `quit`, end of input (Ctrl-D) or Ctrl-C; each makes one final push to
/// the peers. Stopping the node is the caller's part.
pub fn run_terminal(node: &Node, history: Option<PathBuf>, out: impl Write) -> Result<()> {
    let mut editor = Editor::new(history)?;
    let mut session = Session::new(node, out);
    while let Some(line) = editor.read_line()? {
        if session.take(line.as_bytes(), false)? == Flow::Quit {
            return Ok(());
        }
    }
    session.finish()
}

/// Whether the console goes on after a line.
#[derive(Debug, PartialEq, Eq)]
enum Flow {
    Continue,
    /// `quit`: answered, and the final push made.
    Quit,
}

/// A console session: the node, where replies go, and the commands read
/// but not yet answered.
struct Session<'a, W: Write> {
    node: &'a Node,
    out: W,
    batch: Batch,
}

impl<'a, W: Write> Session<'a, W> {
    fn new(node: &'a Node, out: W) -> Self {
        Session {
            node,
            out,
            batch: Batch::default(),
        }
    }

    /// Takes one line. While `more_waiting` (another whole line is
    /// already read), data commands wait to be sent as one batch;
    /// otherwise everything is answered and stdout flushed, before the
    /// caller waits for input.
    fn take(&mut self, line: &[u8], more_waiting: bool) -> Result<Flow> {
        let (node, out, batch) = (self.node, &mut self.out, &mut self.batch);
        let parsed = parse_line(line);
        if let Ok(command) = &parsed {
            if let Some(text) = forwarded(node, command) {
                // After the replies before it, in input order.
                answer(node, batch, out)?;
                writeln!(out, "{text}").map_err(Error::io("cannot write to stdout"))?;
                if !more_waiting {
                    out.flush().map_err(Error::io("cannot write to stdout"))?;
                }
                return Ok(Flow::Continue);
            }
        }
        match parsed {
            Ok(Command::Nothing) => {}
            Ok(Command::Put { key, value }) => batch.push(Box::new(move |db| {
                Line(match db.put(&key, &value) {
                    Ok(()) => "Value stored.".into(),
                    Err(e) => format!("Error: {e}"),
                })
            })),
            Ok(Command::Get { key }) => batch.push(Box::new(move |db| {
                Line(match db.get(&key) {
                    Some(v) => format!("Value: {}", display_value(v)),
                    None => "Key not found.".into(),
                })
            })),
            Ok(Command::Delete { key }) => batch.push(Box::new(move |db| {
                Line(match db.delete(&key) {
                    Ok(()) => "Key deleted.".into(),
                    Err(e) => format!("Error: {e}"),
                })
            })),
            Err(e) => batch.slots.push(Slot::Text(format!("Error: {e}"))),
            Ok(other) => {
                answer(node, batch, out)?;
                if !run_other(node, other, out)? {
                    out.flush().map_err(Error::io("cannot write to stdout"))?;
                    final_push(node);
                    return Ok(Flow::Quit);
                }
            }
        }
        if !more_waiting || batch.work.len() >= MAX_BATCH {
            answer(node, batch, out)?;
        }
        if !more_waiting {
            out.flush().map_err(Error::io("cannot write to stdout"))?;
        }
        Ok(Flow::Continue)
    }

    /// The end of input: answers what is pending, then the final push.
    fn finish(&mut self) -> Result<()> {
        answer(self.node, &mut self.batch, &mut self.out)?;
        self.out
            .flush()
            .map_err(Error::io("cannot write to stdout"))?;
        final_push(self.node);
        Ok(())
    }
}

impl Batch {
    fn push(&mut self, work: StoreWork<Line>) {
        self.slots.push(Slot::Store);
        self.work.push(work);
    }
}

/// Runs the batch and writes its replies in order.
fn answer(node: &Node, batch: &mut Batch, out: &mut impl Write) -> Result<()> {
    if batch.slots.is_empty() {
        return Ok(());
    }
    let work = std::mem::take(&mut batch.work);
    let mut lines = if work.is_empty() {
        Vec::new()
    } else {
        node.store().run(work)?
    }
    .into_iter();
    for slot in batch.slots.drain(..) {
        let text = match slot {
            Slot::Text(t) => t,
            // One answer per command sent, in order: the store thread's
            // promise.
            Slot::Store => lines.next().expect("one answer per command").0,
        };
        writeln!(out, "{text}").map_err(Error::io("cannot write to stdout"))?;
    }
    Ok(())
}

/// Runs a command that is not a data command; `false` means stop.
fn run_other(node: &Node, cmd: Command, out: &mut impl Write) -> Result<bool> {
    let text = match cmd {
        Command::Quit => {
            writeln!(out, "Goodbye!").map_err(Error::io("cannot write to stdout"))?;
            return Ok(false);
        }
        Command::Help => HELP.to_string(),
        Command::Leave => {
            out.flush().map_err(Error::io("cannot write to stdout"))?;
            let acked = node.leave(crate::node::LEAVE_TIMEOUT)?;
            writeln!(
                out,
                "Left the cluster ({acked} members acknowledged the last push). Goodbye!"
            )
            .map_err(Error::io("cannot write to stdout"))?;
            return Ok(false);
        }
        Command::Keys => {
            // The console is database 0's view, as a Redis client's
            // before SELECT: other databases' keys are left out.
            let mut keys: Vec<Vec<u8>> = node
                .store()
                .keys()?
                .iter()
                .filter_map(|stored| database::key_in(Database::ZERO, stored))
                .map(<[u8]>::to_vec)
                .collect();
            match others_keys(node) {
                Ok(others) => {
                    keys.extend(others);
                    keys.sort_unstable();
                    keys.dedup();
                }
                Err(e) => {
                    writeln!(out, "Error: {e}").map_err(Error::io("cannot write to stdout"))?;
                    return Ok(true);
                }
            }
            if keys.is_empty() {
                "(no keys)".to_string()
            } else {
                keys.iter()
                    .map(|k| display_key(k).into_owned())
                    .collect::<Vec<_>>()
                    .join("\n")
            }
        }
        Command::Status => status(node)?,
        Command::Sync => {
            out.flush().map_err(Error::io("cannot write to stdout"))?;
            let (acked, peers) = node.sync_now(SYNC_TIMEOUT)?;
            if peers == 0 {
                "No peers to sync with.".to_string()
            } else {
                format!("Synced with {acked} of {peers} peers.")
            }
        }
        Command::Put { .. } | Command::Get { .. } | Command::Delete { .. } | Command::Nothing => {
            return Ok(true)
        }
    };
    writeln!(out, "{text}").map_err(Error::io("cannot write to stdout"))?;
    Ok(true)
}

/// The reply line of `command` when it is for a key this node does not
/// hold (a sharded cluster): run on a replica of the key's slot through
/// the node's forwarder (the console may block: it is the main thread).
/// `None` for a key held here, or another command.
fn forwarded(node: &Node, command: &Command) -> Option<String> {
    let forwarder = node.forwarder()?;
    let (key, args): (&[u8], Vec<Vec<u8>>) = match command {
        Command::Put { key, value } => (key, vec![b"SET".to_vec(), key.clone(), value.clone()]),
        Command::Get { key } => (key, vec![b"GET".to_vec(), key.clone()]),
        Command::Delete { key } => (key, vec![b"DEL".to_vec(), key.clone()]),
        _ => return None,
    };
    let slot = crate::placement::key_slot(key);
    let targets = node.routing().targets(slot);
    if targets.is_empty() {
        return None;
    }
    let item = Item {
        remote: Remote {
            slot: Some(slot),
            targets,
            commands: vec![args],
        },
        db: Database::ZERO,
        protocol: Protocol::Resp2,
    };
    let reply = forwarder.run(vec![item]).pop().unwrap_or(Reply::Null);
    Some(match (command, reply) {
        (_, Reply::Error(e)) => format!("Error: {e}"),
        (Command::Put { .. }, _) => "Value stored.".into(),
        (Command::Get { .. }, Reply::Bulk(v)) => format!("Value: {}", display_value(&v)),
        (Command::Get { .. }, _) => "Key not found.".into(),
        _ => "Key deleted.".into(),
    })
}

/// The keys of database 0 on every other member of a sharded cluster
/// (`KEYS *` on each, through the forwarder); none when not sharded.
fn others_keys(node: &Node) -> std::result::Result<Vec<Vec<u8>>, String> {
    let (Some(forwarder), Some(placed)) = (node.forwarder(), node.routing().placed()) else {
        return Ok(Vec::new());
    };
    let ids = crate::routing::placed_ids(&placed.members);
    let items: Vec<Item> = placed
        .members
        .iter()
        .filter(|m| m.id != placed.me && ids.contains(&m.id.as_str()))
        .map(|m| Item {
            remote: Remote {
                slot: None,
                targets: vec![m.addr.clone()],
                commands: vec![vec![b"KEYS".to_vec(), b"*".to_vec()]],
            },
            db: Database::ZERO,
            protocol: Protocol::Resp2,
        })
        .collect();
    let mut keys = Vec::new();
    for reply in forwarder.run(items) {
        match reply {
            Reply::Array(items) => keys.extend(items.into_iter().filter_map(|r| match r {
                Reply::Bulk(k) => Some(k),
                _ => None,
            })),
            Reply::Error(e) => return Err(e),
            _ => {}
        }
    }
    Ok(keys)
}

fn status(node: &Node) -> Result<String> {
    Ok(format_status(&node_status(node)?))
}

fn node_status(node: &Node) -> Result<Status> {
    crate::status::gather::gather_status(
        node.name(),
        node.addr(),
        node.store(),
        &node.peers(),
        None,
    )
}

/// The end of a session: one more push to the peers, so that what was
/// written here is at the peers before the node stops.
fn final_push(node: &Node) {
    if let Ok((acked, peers)) = node.sync_now(FINAL_PUSH_TIMEOUT) {
        if peers > 0 {
            log::info!("final push: {acked} of {peers} peers acknowledged");
        }
    }
}
