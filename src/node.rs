//! A running node: the threads of the shell wired together.
//!
//! [`Node::start`] starts the store thread, the listener, one pusher per
//! peer and the sync thread, and returns a handle that the CLI (or a test)
//! uses to talk to them. [`Node::shutdown`] stops them.

use crate::config::Config;
use crate::durability::disk::DataDir;
use crate::engine::service::{self, StoreHandle};
use crate::error::Result;
use crate::listener::{self, ServerSettings};
use crate::redis::client::{self, ClientSettings};
use crate::replication::pusher::{PushSettings, Pushers};
use crate::replication::status::{Answering, PeerTable, WriteRefusal};
use crate::replication::ticker;
use crate::store::Store;
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
        // A node that starts without its data writes under a new writer
        // identity (see `Store::new`); one with a data directory keeps the
        // identity its files hold.
        let new_writer = format!("{}#{}", config.name, service::wall_clock_us());
        let (max_value, peers) = (config.max_value(), config.peers.len());
        let refusal = WriteRefusal::default();
        let make_store = |writer: &str| {
            let refusal = refusal.clone();
            let gate = Box::new(move || refusal.why());
            Store::new(writer, max_value)
                .with_peers(peers)
                .with_write_gate(gate)
        };
        let (store, disk) = match &config.disk {
            None => (make_store(&new_writer), None),
            Some(settings) => {
                let (disk, store, found) =
                    DataDir::open(settings.clone(), &config.name, &new_writer, make_store)?;
                crate::log!(
                    "data directory {}: {} entries loaded ({}{} log records), fsync {}",
                    disk.path().display(),
                    found.entries,
                    if found.snapshot {
                        "a snapshot and "
                    } else {
                        ""
                    },
                    found.log_records,
                    disk.fsync_policy(),
                );
                (store, Some(disk))
            }
        };
        let (written_tx, written_rx) = bounded(1);
        let (store, store_thread) = service::spawn(store, disk, written_tx)?;
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
        let answering = Arc::new(Answering::default());
        threads.push(listener::spawn_listener(
            listener,
            config.name.clone(),
            store.clone(),
            ServerSettings {
                max_frame: config.max_frame,
                max_connections: config.max_connections,
                handshake_timeout: config.io_timeout,
                idle_timeout: config.idle_timeout,
                answering: Arc::clone(&answering),
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
                answering,
                refusal,
            },
        )?;
        threads.extend(pusher_threads);
        let pushers = Arc::new(pushers);
        clients.set_peers(pushers.table());
        let (stop_tx, stop_rx) = bounded(1);
        threads.push(ticker::spawn_ticker(
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

    /// Writes and fsyncs everything pending and stops the store thread: the
    /// last step before the process exits. The node answers no more
    /// commands after it.
    pub fn stop_store(&self) -> Result<()> {
        match self.store.stop() {
            Ok(Ok(())) | Err(_) => Ok(()),
            Ok(Err(why)) => Err(crate::error::Error::Config(why)),
        }
    }

    /// Stops the node: the sync thread and the listener (waiting for
    /// them), then the store thread after writing and fsyncing what is
    /// pending. Pushers and connection threads end as their channels and
    /// sockets close. For tests and embedding; the binary exits instead.
    pub fn shutdown(mut self) -> Result<()> {
        self.shutdown.store(true, Ordering::SeqCst);
        self.stop_ticker.take();
        listener::wake(self.addr);
        for t in std::mem::take(&mut self.threads) {
            let name = t.thread().name().unwrap_or("").to_owned();
            if name == "netdb-sync" || name == "netdb-listen" {
                let _ = t.join();
            }
        }
        self.stop_store()
    }
}
