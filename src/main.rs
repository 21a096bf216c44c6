//! The `netdb` binary: parse the command line, start a node, run the stdin
//! CLI. Every error is one line on stderr and a non-zero exit.

use clap::Parser;
use netdb::config::{configure, Args};
use netdb::error::{Error, Result};
use netdb::logging::{self, Filter};
use netdb::node::Node;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set by the signal thread before it stops the store: from then on the
/// store refusing a command is the stop under way, not a failure.
static STOPPING: AtomicBool = AtomicBool::new(false);

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if STOPPING.load(Ordering::SeqCst) {
                // The signal thread exits the process (0, or 1 if the final
                // fsync failed) once the store has written what is pending.
                loop {
                    std::thread::park();
                }
            }
            eprintln!("netdb: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// SIGTERM and SIGINT stop the node cleanly: the store thread writes and
/// fsyncs what is pending, then the process exits 0.
fn catch_signals(node: &Node) -> Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let io = |source| Error::Io {
        context: "cannot catch signals",
        source,
    };
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT]).map_err(io)?;
    let store = node.store().clone();
    std::thread::Builder::new()
        .name("netdb-signals".into())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                let name = if signal == SIGTERM {
                    "SIGTERM"
                } else {
                    "SIGINT"
                };
                log::info!("{name}: stopping");
                STOPPING.store(true, Ordering::SeqCst);
                if let Ok(Err(why)) = store.stop() {
                    log::error!("stopping: {why}");
                    std::process::exit(1);
                }
                std::process::exit(0);
            }
        })
        .map_err(io)?;
    Ok(())
}

/// The log filter: `--log-level`, else `RUST_LOG`, else `info`.
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
    let args = Args::parse();
    if let Some(addr) = &args.connect {
        let stdin = std::io::stdin();
        let interactive = stdin.is_terminal();
        let stdout = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout().lock());
        return netdb::console::remote::run(addr, stdin.lock(), stdout, interactive);
    }
    logging::init(
        args.name.as_deref().unwrap_or("netdb"),
        log_filter(args.log_level),
    );
    let (config, listener) = configure(&args)?;
    let (peers, interval) = (config.peers.len(), config.sync_interval);
    let node = Node::start(config, listener)?;
    log::info!(
        "listening on {} with {peers} peer(s), syncing every {} ms",
        node.addr(),
        interval.as_millis()
    );
    catch_signals(&node)?;
    if args.no_cli {
        loop {
            std::thread::park();
        }
    }
    let stdin = std::io::stdin();
    let interactive = stdin.is_terminal();
    let stdout = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout().lock());
    netdb::console::local::run(&node, stdin.lock(), stdout, interactive)
}
