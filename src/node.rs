//! A running node: the threads of the shell wired together.
//!
//! [`Node::start`] starts the store thread, the listener, one pusher per
//! peer and the sync thread, and returns a handle that the CLI (or a test)
//! uses to talk to them. [`Node::shutdown`] stops them.

use crate::client::{self, ClientSettings};
use crate::config::Config;
use crate::error::Result;
use crate::server::{self, ServerSettings};
use crate::service::{self, StoreHandle};
use crate::store::Store;
use crate::sync::{self, PeerTable, PushSettings, Pushers};
use crossbeam_channel::{bounded, Sender};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// A running node.
pub struct Node {
    name: String,
    addr: SocketAddr,
    store: StoreHandle,
    pushers: Arc<Pushers>,
    shutdown: Arc<AtomicBool>,
    stop_ticker: Option<Sender<()>>,
    threads: Vec<JoinHandle<()>>,
}

impl Node {
    /// Starts every thread of a node listening on `listener`.
    pub fn start(config: Config, listener: TcpListener) -> Result<Node> {
        let addr = listener
            .local_addr()
            .map_err(|source| crate::error::Error::Io {
                context: "cannot read the listen address",
                source,
            })?;
        let mut threads = Vec::new();
        // A node without persistence starts without its data, so it writes
        // under a new writer identity each run (see `Store::new`).
        let writer = format!("{}#{}", config.name, service::wall_clock_us());
        let (written_tx, written_rx) = bounded(1);
        let (store, store_thread) = service::spawn(
            Store::new(&writer, config.max_value()).with_peers(config.peers.len()),
            written_tx,
        )?;
        threads.push(store_thread);
        let shutdown = Arc::new(AtomicBool::new(false));
        let clients = Arc::new(client::Context::new(
            &config.name,
            addr,
            store.clone(),
            ClientSettings {
                max_clients: config.max_clients,
                idle_timeout: config.client_idle_timeout,
                limits: client::limits(config.max_request),
            },
        ));
        threads.push(server::spawn_listener(
            listener,
            config.name.clone(),
            store.clone(),
            ServerSettings {
                max_frame: config.max_frame,
                max_connections: config.max_connections,
                handshake_timeout: config.io_timeout,
                idle_timeout: config.idle_timeout,
            },
            Arc::clone(&shutdown),
            Arc::clone(&clients),
        )?);
        let (pushers, pusher_threads) = Pushers::spawn(
            &config.name,
            config.peers.clone(),
            store.clone(),
            PushSettings {
                connect_timeout: config.connect_timeout,
                io_timeout: config.io_timeout,
                max_frame: config.max_frame,
            },
        )?;
        threads.extend(pusher_threads);
        let pushers = Arc::new(pushers);
        clients.set_peers(pushers.table());
        let (stop_tx, stop_rx) = bounded(1);
        threads.push(sync::spawn_ticker(
            Arc::clone(&pushers),
            store.clone(),
            config.sync_interval,
            written_rx,
            stop_rx,
        )?);
        Ok(Node {
            name: config.name,
            addr,
            store,
            pushers,
            shutdown,
            stop_ticker: Some(stop_tx),
            threads,
        })
    }

    /// The node's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The address the node listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A handle to the store thread.
    pub fn store(&self) -> &StoreHandle {
        &self.store
    }

    /// The peers' status.
    pub fn peers(&self) -> PeerTable {
        self.pushers.table()
    }

    /// Pushes to every peer now; returns (acknowledged, peers), waiting at
    /// most `timeout`.
    pub fn sync_now(&self, timeout: Duration) -> Result<(usize, usize)> {
        Ok((self.pushers.sync_now(timeout)?, self.pushers.len()))
    }

    /// Stops the sync thread and the listener and waits for them. Pushers
    /// and connection threads end when their channels and sockets close.
    pub fn shutdown(mut self) {
        self.shutdown.store(true, Ordering::SeqCst);
        self.stop_ticker.take();
        server::wake(self.addr);
        // The store thread and pushers end once every handle is dropped,
        // which includes connection threads still serving a peer: do not
        // wait for those.
        let Node { threads, .. } = self;
        for t in threads {
            let name = t.thread().name().unwrap_or("").to_owned();
            if name == "netdb-sync" || name == "netdb-listen" {
                let _ = t.join();
            }
        }
    }
}
