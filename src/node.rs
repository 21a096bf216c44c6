//! A running node: the threads of the shell wired together.
//!
//! [`Node::start`] starts the store thread, the listener, one pusher per
//! peer and the sync thread, and returns a handle that the CLI (or a test)
//! uses to talk to them. [`Node::stop`] stops them: it is the one way a
//! node stops, whether its input ended, it was signalled, or a test or an
//! embedding program is done with it.

use crate::config::Config;
use crate::durability::DataDir;
use crate::engine::{service, StoreHandle};
use crate::error::Result;
use crate::ioloop::IoThreads;
use crate::listener::{self, ServerSettings};
use crate::membership::{Membership, State};
use crate::redis::auth::ClientAuth;
use crate::redis::client::{self, ClientSettings};
use crate::redis::forward::{ForwardSettings, Forwarder};
use crate::replication::anti_entropy::AntiEntropy;
use crate::replication::pusher::{PushSettings, Pushers};
use crate::replication::status::{Answering, PeerTable, WriteRefusal};
use crate::replication::ticker;
use crate::routing::Routing;
use crate::store::Store;
use crate::tls::ServerTls;
use crossbeam_channel::{bounded, Sender};
use parking_lot::Mutex;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A running node. It can be shared between threads: one may stop it
/// while another is still using it (whose requests then fail with
/// [`Error::Stopped`](crate::error::Error::Stopped)).
pub struct Node {
    name: String,
    addr: SocketAddr,
    store: StoreHandle,
    pushers: Arc<Pushers>,
    shutdown: Arc<AtomicBool>,
    /// Which keys this node holds, and where the others are served.
    routing: Arc<Routing>,
    /// Forwards what this node does not hold (a sharded node only).
    forwarder: Option<Arc<Forwarder>>,
    /// Taken by the first [`Node::stop`].
    running: Mutex<Option<Running>>,
}

/// The threads [`Node::stop`] waits for, and how it tells the sync thread
/// to end.
struct Running {
    stop_ticker: Sender<()>,
    ticker: JoinHandle<()>,
    listener: JoinHandle<()>,
    io: Arc<IoThreads>,
    store: JoinHandle<()>,
}

/// Forwarding threads of a sharded node: each waits on one connection's
/// forwarded commands at a time, so a few cover many clients' pipelines
/// while a slow member holds only the connections that wait on it.
const FORWARDING_THREADS: usize = 4;

/// How long [`Node::stop`] keeps waking the listener before it leaves the
/// thread to end with the process.
const LISTENER_STOP_TIMEOUT: Duration = Duration::from_secs(2);

impl Node {
    /// Starts every thread of a node listening on `listener`.
    pub fn start(config: Config, listener: TcpListener) -> Result<Node> {
        #[cfg(feature = "failpoints")]
        crate::durability::datadir::configure_fail_points();
        let addr = listener
            .local_addr()
            .map_err(|source| crate::error::Error::Io {
                context: "cannot read the listen address",
                source,
            })?;
        // A node that starts without its data writes under a new writer
        // identity (see `Store::new`); one with a data directory keeps the
        // identity its files hold.
        let new_writer = format!("{}#{}", config.name, service::wall_clock_us());
        let (max_value, peers) = (config.max_value(), config.peers.len());
        let max_clock_offset_ms = config.max_clock_offset_ms;
        let refusal = WriteRefusal::default();
        // The member list is loaded once the data directory is open; until
        // then (and for ever, unless this node is expelled) it refuses
        // nothing.
        let members_late: Arc<OnceLock<Membership>> = Arc::default();
        let sharded = config.replicas.is_some();
        let make_store = |writer: &str| {
            let refusal = refusal.clone();
            let members = Arc::clone(&members_late);
            // A node that was forgotten or left takes no writes: nothing it
            // takes would reach the others.
            let gate = Box::new(move || {
                refusal.why().or_else(|| {
                    members
                        .get()
                        .and_then(Membership::expelled)
                        .map(|why| format!("writes refused: {why}"))
                })
            });
            let store = Store::new(writer, max_value)
                .with_peers(peers)
                .with_max_clock_offset_ms(max_clock_offset_ms)
                .with_write_gate(gate);
            if sharded {
                store.sharded()
            } else {
                store
            }
        };
        let (store, disk) = match &config.disk {
            None => (make_store(&new_writer), None),
            Some(settings) => {
                let (disk, store, found) =
                    DataDir::open(settings.clone(), &config.name, &new_writer, make_store)?;
                log::info!(
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
        // With a data directory, the members file beside the data: a
        // restarted node rejoins the members it knew.
        let membership = Membership::load(
            &config.name,
            &config.announce,
            config.disk.as_ref().map(|d| d.dir.clone()),
            !config.join.is_empty(),
            config.failure_timeout,
        )
        .map_err(crate::error::Error::Config)?;
        if let Some(why) = membership.expelled() {
            return Err(crate::error::Error::Config(why));
        }
        let _ = members_late.set(membership.clone());
        let routing = Arc::new(Routing::new(
            membership.clone(),
            config.replicas,
            !config.join.is_empty(),
        ));
        log::debug!(
            "member id {} ({} members known)",
            membership.my_id(),
            membership.others().len() + 1
        );
        // The pushers start after the store thread (they need its handle);
        // until then a write has no one to push to.
        let pushers_late: Arc<OnceLock<Arc<Pushers>>> = Arc::default();
        let on_write = {
            let pushers = Arc::clone(&pushers_late);
            Box::new(move |written: &crate::store::PartitionSet| {
                if let Some(pushers) = pushers.get() {
                    // Never blocks: a pusher with a round queued already
                    // takes this write in it.
                    let _ = pushers.start_round_for(written);
                }
            })
        };
        let (store, store_thread) = service::spawn(store, disk, on_write)?;
        let shutdown = Arc::new(AtomicBool::new(false));
        let clients = Arc::new(client::Context::new(
            &config.name,
            addr,
            store.clone(),
            ClientSettings {
                max_clients: config.max_clients,
                idle_timeout: config.client_idle_timeout,
                limits: client::limits(config.max_request),
                persistence: client::persistence(config.disk.as_ref()),
                auth: ClientAuth::new(config.requirepass.clone()),
                protected_mode: config.protected_mode,
                max_output: config.max_client_output,
                databases: config.databases,
                slowlog: config.slowlog,
                write_quorum: client::WriteQuorum {
                    replicas: config.write_replicas,
                    timeout: config.write_timeout,
                },
            },
        ));
        clients.set_routing(Arc::clone(&routing));
        let forwarder = if routing.is_sharded() {
            let forwarder = Arc::new(Forwarder::spawn(
                FORWARDING_THREADS,
                ForwardSettings {
                    connect_timeout: config.connect_timeout,
                    // A forwarded write's reply waits for its replicas
                    // (`--write-replicas`) at the member that runs it.
                    io_timeout: if config.write_replicas > 1 {
                        config.io_timeout + config.write_timeout
                    } else {
                        config.io_timeout
                    },
                    password: config.requirepass.as_ref().map(|p| p.reveal().to_owned()),
                    tls: config.tls.as_ref().and_then(ServerTls::peer_dialing),
                },
            )?);
            clients.set_forwarder(Arc::clone(&forwarder));
            Some(forwarder)
        } else {
            None
        };
        let answering = Arc::new(Answering::default());
        let anti_entropy = AntiEntropy::default();
        let dialing = PushSettings {
            // Writes that wait for other replicas are pushed at once.
            push_gap: if config.write_replicas > 1 {
                std::time::Duration::ZERO
            } else {
                crate::replication::pusher::PUSH_GAP
            },
            connect_timeout: config.connect_timeout,
            io_timeout: config.io_timeout,
            max_frame: config.max_frame,
            answering: Arc::clone(&answering),
            refusal: refusal.clone(),
            max_clock_offset_ms,
            anti_entropy: anti_entropy.clone(),
            secret: config.cluster_secret.clone(),
            tls: config.tls.as_ref().and_then(ServerTls::peer_dialing),
            membership: membership.clone(),
            routing: Arc::clone(&routing),
        };
        let server = ServerSettings {
            max_frame: config.max_frame,
            max_connections: config.max_connections,
            handshake_timeout: config.io_timeout,
            idle_timeout: config.idle_timeout,
            answering: Arc::clone(&answering),
            max_clock_offset_ms,
            anti_entropy: anti_entropy.clone(),
            protected_mode: config.protected_mode,
            secret: config.cluster_secret.clone(),
            peer_tls: config.tls.as_ref().is_some_and(ServerTls::peers_use_tls),
            refusal: refusal.clone(),
            membership: membership.clone(),
            routing: Arc::clone(&routing),
            dialing: Some(dialing.clone()),
        };
        warn_about_exposure(&config, addr);
        let peers_in = listener::peer_handoff(config.name.clone(), store.clone(), &server);
        let io = Arc::new(IoThreads::spawn(
            config.io_threads,
            Arc::clone(&clients),
            config.tls.clone(),
            peers_in,
        )?);
        let listener = listener::spawn_listener(listener, Arc::clone(&io), Arc::clone(&shutdown))?;
        // The pushers are not waited for at a stop: each ends once its job
        // channel closes or the store thread is gone, and one that is in
        // the middle of a push to a slow peer would hold the stop up to
        // its I/O timeout for nothing (a push after the stop sends nothing
        // new).
        // Every peer came from --join (or there is none): the peer set
        // follows the member list. A peers file without --join fixes it,
        // except on a sharded node: the layout comes from the member list,
        // and a partition's holders must reach each other (a member that
        // joins later gets its partitions from every holder, and a holder
        // hands one off only once the new holders have it).
        let dynamic = sharded || config.peers.iter().all(|p| config.join.contains(p));
        let pushers = Pushers::spawn(
            &config.name,
            config.peers.clone(),
            dynamic,
            store.clone(),
            dialing,
        )?;
        let pushers = Arc::new(pushers);
        // Weak: the list must not keep the pushers alive after the node.
        let following = Arc::downgrade(&pushers);
        membership.on_change(Box::new(move || {
            if let Some(pushers) = following.upgrade() {
                pushers.follow_members();
            }
        }));
        pushers.follow_members();
        // NETDB.LEAVE: the same leave as the console's, then the node
        // stops as on SIGTERM.
        let leaving = Arc::downgrade(&pushers);
        membership.on_leave(Box::new(move || {
            let pushers = leaving.upgrade().ok_or("the node is stopping")?;
            leave_cluster(&pushers, LEAVE_TIMEOUT).map_err(|e| e.to_string())?;
            signal_hook::low_level::raise(signal_hook::consts::SIGTERM)
                .map_err(|e| format!("left, but cannot stop: {e}"))
        }));
        let _ = pushers_late.set(Arc::clone(&pushers));
        clients.set_peers(pushers.table());
        let (stop_tx, stop_rx) = bounded(1);
        let ticker = ticker::spawn_ticker(
            Arc::clone(&pushers),
            store.clone(),
            config.sync_interval,
            stop_rx,
            Arc::clone(&routing),
        )?;
        Ok(Node {
            name: config.name,
            addr,
            store,
            pushers,
            shutdown,
            routing,
            forwarder,
            running: Mutex::new(Some(Running {
                stop_ticker: stop_tx,
                ticker,
                listener,
                io,
                store: store_thread,
            })),
        })
    }

    /// The node's routing: which keys it holds, and where the others are
    /// served (the console asks it).
    pub fn routing(&self) -> &Arc<Routing> {
        &self.routing
    }

    /// The forwarder of a sharded node, for the console's commands on
    /// keys it does not hold.
    pub fn forwarder(&self) -> Option<&Arc<Forwarder>> {
        self.forwarder.as_ref()
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

    /// The member list.
    pub fn membership(&self) -> Option<&Membership> {
        self.pushers.table_membership()
    }

    /// Leaves the cluster gracefully: pushes what the others lack (one
    /// round to each, waiting at most `timeout`), marks this node left,
    /// and tells every member so. The caller then stops the node; it can
    /// never rejoin under its member id (see the README's "Membership").
    /// Returns how many members acknowledged the last push.
    pub fn leave(&self, timeout: Duration) -> Result<usize> {
        leave_cluster(&self.pushers, timeout)
    }

    /// Stops the node: the sync thread and the listener first (waiting
    /// for them), so no new round or connection starts; then the store
    /// thread, after it has written and fsynced everything pending. Fails
    /// only if that last write or fsync failed.
    ///
    /// Returns at once if the node is stopped already. It makes no push
    /// of its own: a caller that wants its writes at the peers first
    /// (the console at the end of its input) calls [`Node::sync_now`]
    /// before. Pushers and peer threads end by themselves as their
    /// channels and sockets close.
    pub fn stop(&self) -> Result<()> {
        let Some(running) = self.running.lock().take() else {
            return Ok(());
        };
        log::debug!("stopping: the sync thread and the listener");
        self.shutdown.store(true, Ordering::SeqCst);
        drop(running.stop_ticker);
        let _ = running.ticker.join();
        self.join_listener(running.listener);
        running.io.stop();
        if let Some(forwarder) = &self.forwarder {
            forwarder.stop();
        }
        log::debug!("stopping: writing what is pending");
        let result = match self.store.stop() {
            Ok(Ok(())) | Err(_) => Ok(()),
            Ok(Err(why)) => Err(crate::error::Error::Config(why)),
        };
        let _ = running.store.join();
        log::debug!("stopped");
        result
    }

    /// Wakes the listener (blocked in `accept`) until it sees the shutdown
    /// flag; gives up after [`LISTENER_STOP_TIMEOUT`], should every
    /// connection attempt fail (a full backlog), rather than hang the stop.
    fn join_listener(&self, listener: JoinHandle<()>) {
        let deadline = Instant::now() + LISTENER_STOP_TIMEOUT;
        while !listener.is_finished() {
            if Instant::now() >= deadline {
                log::debug!("stopping: the listener did not wake; leaving it");
                return;
            }
            listener::wake(self.addr);
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = listener.join();
    }
}

/// How long a leave waits for each member's last push and gossip.
pub const LEAVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Leaves the cluster: this node is `leaving` while it pushes what the
/// others lack (one round to each, waiting at most `timeout`), then
/// `left`, which it tells every member at once (gossip would too, but
/// the node is about to stop). Returns how many members acknowledged
/// the last push.
fn leave_cluster(pushers: &Pushers, timeout: Duration) -> Result<usize> {
    let membership = pushers
        .table_membership()
        .ok_or_else(|| crate::error::Error::Config("no member list".into()))?
        .clone();
    membership.set_my_state(State::Leaving);
    let acked = pushers.sync_now(timeout)?;
    membership.set_my_state(State::Left);
    pushers.gossip_now(timeout);
    log::info!(
        "left the cluster: {acked} of {} members acknowledged the last push",
        pushers.len()
    );
    Ok(acked)
}

/// Says at startup what a node listening beyond loopback lets in.
fn warn_about_exposure(config: &Config, addr: SocketAddr) {
    if config.tls.as_ref().is_some_and(|tls| !tls.peers_use_tls()) {
        log::warn!(
            "TLS serves Redis clients only: peers talk plain TCP until every node also has \
             --tls-ca-cert-file to check the others' certificates against"
        );
    }
    if crate::redis::client::is_loopback(&addr) {
        return;
    }
    if !config.protected_mode {
        log::warn!(
            "protected mode is off: anyone who reaches {addr} can read and write every key \
             {}",
            if config.requirepass.is_none() {
                "(no client password is set)"
            } else {
                "with the client password, and any peer can connect"
            }
        );
        return;
    }
    if config.requirepass.is_none() {
        log::warn!(
            "protected mode: listening on {addr} with no client password, so Redis clients \
             from other machines are refused; set --requirepass-file to let them in"
        );
    }
    if config.cluster_secret.is_none() {
        log::warn!(
            "protected mode: no cluster secret, so peers on other machines are refused; give \
             every node the same --cluster-secret-file"
        );
    }
}

/// Raises this process's open-files limit to its hard limit: each
/// client connection is a file descriptor, and the usual soft limit
/// (1,024) is far below `--max-clients`. Says so if even the hard limit
/// is below `want`, or it could not be raised.
pub fn raise_open_files_limit(want: u64) -> Option<String> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    if hard > soft {
        if let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            return Some(format!(
                "cannot raise the open-files limit from {soft}: {e}"
            ));
        }
    }
    let now = hard.max(soft);
    (now < want).then(|| {
        format!(
            "the open-files limit is {now}: fewer clients than --max-clients can connect; \
             raise it with ulimit -n"
        )
    })
}

impl Drop for Node {
    /// A node dropped without [`Node::stop`] stops all the same.
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            log::error!("stopping: {e}");
        }
    }
}
