//! The `netdb` binary: read the command line (and config file), start a
//! node, run the console. Every error is one line on stderr and a
//! non-zero exit.
//!
//! The main thread starts the node and then waits for the one event that
//! ends the process: the console's input ended (`quit`, end of input), or
//! SIGTERM/SIGINT arrived. Either way it calls [`Node::stop`], which
//! writes and fsyncs what is pending, and returns. The console runs on a
//! thread of its own, so a console blocked reading stdin never holds up a
//! stop asked for by a signal.

use crossbeam_channel::{bounded, Sender};
use netdb::config::{configure, parse_command_line};
use netdb::console::editor::TerminalModes;
use netdb::error::{Error, Result};
use netdb::logging::{self, Filter};
use netdb::node::Node;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// jemalloc, for its statistics (`INFO`'s `used_memory`, see
/// `status::gather::allocated_bytes`) and its footprint: a million keys
/// took 1.9% less resident memory than with the system allocator.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("netdb: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// What ends a running node.
enum Event {
    /// The console is done: `quit` or end of input (after its final push),
    /// or it failed.
    InputEnded(Result<()>),
    /// SIGTERM or SIGINT, by name.
    Signal(&'static str),
}

/// SIGTERM and SIGINT become an [`Event::Signal`] for the main thread,
/// which stops the node as it would at the end of input (but without the
/// final push).
fn catch_signals(events: Sender<Event>) -> Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT])
        .map_err(Error::io("cannot catch signals"))?;
    std::thread::Builder::new()
        .name("netdb-signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                let name = if signal == SIGTERM {
                    "SIGTERM"
                } else {
                    "SIGINT"
                };
                if events.send(Event::Signal(name)).is_err() {
                    return;
                }
            }
        })
        .map_err(Error::io("cannot start the signal thread"))?;
    Ok(())
}

/// Starts the console on its own thread: the line editor when stdin and
/// stdout are terminals (keeping its history in `history`), otherwise
/// lines read as they come. Returns the terminal's modes to put back if
/// the process ends while the editor has the terminal.
fn start_console(
    node: Arc<Node>,
    history: Option<PathBuf>,
    events: Sender<Event>,
) -> Result<Option<TerminalModes>> {
    let typed = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let modes = if typed { TerminalModes::save() } else { None };
    std::thread::Builder::new()
        .name("netdb-console".into())
        .spawn(move || {
            let ended = if typed {
                netdb::console::local::run_terminal(&node, history, std::io::stdout())
            } else {
                let stdin = std::io::stdin();
                let prompt = stdin.is_terminal();
                let stdout = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout().lock());
                netdb::console::local::run(&node, stdin.lock(), stdout, prompt)
            };
            let _ = events.send(Event::InputEnded(ended));
        })
        .map_err(Error::io("cannot start the console thread"))?;
    Ok(modes)
}

/// The log filter: `--log-level` (on the command line, or in the config
/// file when `RUST_LOG` is not set), else `RUST_LOG`, else `info`.
fn log_filter(level: Option<log::LevelFilter>) -> Filter {
    if let Some(level) = level {
        return Filter::level(level);
    }
    match std::env::var("RUST_LOG") {
        Ok(spec) => {
            let (filter, complaints) = Filter::parse(&spec);
            for complaint in complaints {
                eprintln!("netdb: RUST_LOG: {complaint}; left out");
            }
            filter
        }
        Err(_) => Filter::level(log::LevelFilter::Info),
    }
}

fn run() -> Result<()> {
    let args = parse_command_line()?;
    let node_name = args.name.as_deref().unwrap_or("netdb");
    logging::init(node_name, log_filter(args.log_level));
    if let Some(addr) = &args.connect {
        let stdin = std::io::stdin();
        let interactive = stdin.is_terminal();
        let stdout = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout().lock());
        // The environment keeps the password out of the process list.
        let password = args
            .password
            .clone()
            .or_else(|| std::env::var("NETDB_PASSWORD").ok())
            .filter(|p| !p.is_empty());
        return netdb::console::remote::run(
            addr,
            password.as_deref(),
            stdin.lock(),
            stdout,
            interactive,
        );
    }
    let (config, listener) = configure(&args)?;
    // Room for every client, every peer, the logs and a margin.
    let files = (config.max_clients + config.max_connections) as u64 + 64;
    if let Some(warning) = netdb::node::raise_open_files_limit(files) {
        log::warn!("{warning}");
    }
    let (peers, interval) = (config.peers.len(), config.sync_interval);
    let history = (config.disk.as_ref()).map(|disk| disk.dir.join("console_history"));
    let node = Arc::new(Node::start(config, listener)?);
    log::info!(
        "listening on {} with {peers} peer(s), syncing every {} ms",
        node.addr(),
        interval.as_millis()
    );
    let (events, event) = bounded(4);
    catch_signals(events.clone())?;
    let modes = if args.no_cli {
        None
    } else {
        start_console(Arc::clone(&node), history, events)?
    };
    // The signal thread keeps a sender for as long as the process runs.
    let ended = match event.recv() {
        Ok(Event::InputEnded(ended)) => ended,
        Ok(Event::Signal(name)) => {
            if let Some(modes) = &modes {
                modes.restore();
            }
            log::info!("{name}: stopping");
            Ok(())
        }
        Err(_) => Ok(()),
    };
    let stopped = node.stop();
    ended.and(stopped)
}
