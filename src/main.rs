//! The `netdb` binary: parse the command line, start a node, run the stdin
//! CLI. Every error is one line on stderr and a non-zero exit.

use clap::Parser;
use netdb::config::{configure, Args};
use netdb::error::Result;
use netdb::node::Node;
use std::io::IsTerminal;
use std::process::ExitCode;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("netdb: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let args = Args::parse();
    if let Some(addr) = &args.connect {
        let stdin = std::io::stdin();
        let interactive = stdin.is_terminal();
        let stdout = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout().lock());
        return netdb::connect::run(addr, stdin.lock(), stdout, interactive);
    }
    netdb::log::set_node_name(args.name.as_deref().unwrap_or_default());
    let (config, listener) = configure(&args)?;
    let (peers, interval) = (config.peers.len(), config.sync_interval);
    let node = Node::start(config, listener)?;
    netdb::log!(
        "listening on {} with {peers} peer(s), syncing every {} ms",
        node.addr(),
        interval.as_millis()
    );
    if args.no_cli {
        loop {
            std::thread::park();
        }
    }
    let stdin = std::io::stdin();
    let interactive = stdin.is_terminal();
    let stdout = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout().lock());
    netdb::console::run(&node, stdin.lock(), stdout, interactive)
}
