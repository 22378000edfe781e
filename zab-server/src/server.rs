//! The async shell of a standalone server: the client listener, one task
//! per connection, and the core task that owns the [`Pipeline`] and carries
//! out its actions (sockets, the txn log, snapshots, timers).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use bytes::BytesMut;
use prost::Message;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use zab_store::{Store, StoreOptions};
use zab_tree::watch_manager::ConnectionId;
use zab_tree::{DataTree, TreeSnapshot};
use zab_wire::jute::frame::{four_letter_word, FourLetterWord, FrameDecoder};
use zab_wire::jute::{ConnectRequest, Id, Jute, Reader, Request, RequestHeader};
use zab_wire::proto::Txn;
use zab_wire::Zxid;

use crate::admin_server::AdminServer;
use crate::client_flow::{ConnFlow, Outgoing, ReplySender, ServerFlow, ServingRole};
use crate::config::Config;
use crate::durable_mark::DurableMark;
use crate::exit_code::ExitCode;
use crate::pipeline::{Action, Input, Now, Pipeline, PipelineConfig};
use crate::status;
use crate::tls::ClientTls;

/// Messages to the core task.
pub(crate) enum CoreMsg {
    Input(Input),
    /// The requests one read of a client connection brought, in order.
    Inputs(Vec<Input>),
    Register {
        conn: ConnectionId,
        out: ReplySender,
    },
    FourLetter {
        word: FourLetterWord,
        /// The asking connection, which the answer lists and counts.
        asker: SocketAddr,
        reply: oneshot::Sender<String>,
    },
    /// An HTTP request of the admin server or the metrics endpoint: the
    /// reply is the response's body.
    Admin {
        request: crate::admin_server::AdminRequest,
        reply: oneshot::Sender<String>,
    },
    LogFailed(String),
    Shutdown(oneshot::Sender<()>),
    /// The local log made more txns durable: read them from the core's
    /// [`DurableMark`]. In quorum mode `gen` names the role instance that
    /// appended them; a standalone server has one, 0.
    Durable {
        gen: u64,
    },
    /// Quorum mode: an election notification arrived.
    Election(zab_election::Notification),
    /// Quorum mode (leader): a learner link event.
    Link {
        gen: u64,
        event: crate::quorum_transport::LinkEvent,
    },
    /// Quorum mode (leader): a learner's snapshot was serialized onto its
    /// link (`Ok` with its size), or failed to be.
    SnapshotQueued {
        gen: u64,
        link: crate::quorum_transport::LinkId,
        zxid: zab_wire::Zxid,
        result: Result<u64, String>,
    },
    /// Quorum mode (learner): the link to the leader is up.
    LeaderLinkUp {
        gen: u64,
        out: mpsc::UnboundedSender<zab_wire::proto::QuorumPacket>,
    },
    /// Quorum mode (learner): a batch of packets from the leader, in order.
    LeaderPackets {
        gen: u64,
        packets: Vec<zab_wire::proto::QuorumPacket>,
    },
    /// Quorum mode (learner): the link to the leader is gone (or never came up).
    LeaderLinkDown {
        gen: u64,
        reason: String,
    },
    /// Quorum mode: the clock moved (every few tens of ms).
    Clock,
}

const SESSIONLESS_TIMEOUT: Duration = Duration::from_secs(10);

/// The wall clock: milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Milliseconds on `CLOCK_MONOTONIC`, which Java's `System.nanoTime` (and
/// so ZooKeeper's `Time.currentElapsedTime()`) reads on Linux: the clock of
/// every timer (session deadlines, election and liveness timeouts), which
/// a step of the wall clock must not move.
pub fn elapsed_ms() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the call's duration.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    // `time_t` and `c_long` are narrower than i64 on some targets.
    #[allow(clippy::unnecessary_cast)]
    let ms = ts.tv_sec as i64 * 1000 + ts.tv_nsec as i64 / 1_000_000;
    ms
}

/// Both clocks, for the pipeline.
pub fn now() -> Now {
    Now {
        wall_ms: now_ms(),
        elapsed_ms: elapsed_ms(),
    }
}

/// How long rebuilding the tree took, and what it replayed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    pub total_ms: u64,
    pub snapshot_ms: u64,
    pub txns_replayed: u64,
    pub txns_ms: u64,
}

impl Recovery {
    /// The metrics ZooKeeper records when it loads its database at
    /// start-up (`ZKDatabase.loadDataBase`, `FileTxnSnapLog.restore`).
    pub fn startup_metrics(&self) -> crate::four_letter::ProviderMetrics {
        let mut m = crate::four_letter::ProviderMetrics::default();
        m.db_init_time.record(self.total_ms);
        m.startup_snap_load_time.record(self.snapshot_ms);
        if self.txns_replayed > 0 {
            m.startup_txns_loaded.record(self.txns_replayed);
            m.startup_txns_load_time.record(self.txns_ms);
        }
        m
    }
}

/// Opens the store and rebuilds the tree: the newest snapshot, then every
/// logged txn after it (ZooKeeper's `FileTxnSnapLog.restore`).
pub fn recover(store: &Store) -> anyhow::Result<(DataTree, Recovery)> {
    let started = std::time::Instant::now();
    let ms = |since: std::time::Instant| since.elapsed().as_millis() as u64;
    let mut tree = newest_restorable_snapshot(store)?;
    let snapshot_ms = ms(started);
    // A log that ends below the snapshot holds nothing the snapshot lacks,
    // and may hold what its history replaced or a gap below it: a SNAP's
    // install cut by a crash between publishing the leader's snapshot and
    // wiping the old log, or a snapshot published before this server's
    // own log had synced every txn in it (a leader applies on a quorum of
    // other servers' ACKs). Such a log must not seed a DIFF window or a
    // TRUNC, so it goes, as the SNAP's wipe would have done.
    let last_logged = store.log().last_zxid();
    if last_logged != Zxid::ZERO && last_logged < tree.last_zxid() {
        tracing::warn!(
            snapshot = %tree.last_zxid(),
            %last_logged,
            "the txn log ends below the snapshot; dropping it"
        );
        store
            .log()
            .truncate_after(Zxid::ZERO)
            .context("dropping a txn log that ends below the snapshot")?;
    }
    let replay_started = std::time::Instant::now();
    let from = tree.last_zxid().next();
    let mut replayed = 0u64;
    for entry in store.log().read_from(from).context("reading the txn log")? {
        let (zxid, bytes) = entry.context("reading the txn log")?;
        let txn = Txn::decode(bytes).with_context(|| format!("decoding logged txn {zxid}"))?;
        if txn.zxid != zxid.0 {
            anyhow::bail!("txn log entry {zxid} holds txn {}", Zxid(txn.zxid));
        }
        tree.apply(&txn);
        replayed += 1;
    }
    tracing::info!(zxid = %tree.last_zxid(), replayed, "recovered");
    let recovery = Recovery {
        total_ms: ms(started),
        snapshot_ms,
        txns_replayed: replayed,
        txns_ms: ms(replay_started),
    };
    Ok((tree, recovery))
}

/// The tree of the newest snapshot that restores. One that does not
/// gives way to the one before, as ZooKeeper's `FileSnap.deserialize`
/// tries up to 100 (logging "problem reading snap file"), but only to one
/// the txn log still covers: the log must hold a txn at or below it, or
/// the replay after it would skip what a SNAP's wipe or a purge removed,
/// and the server would serve less than it acknowledged.
fn newest_restorable_snapshot(store: &Store) -> anyhow::Result<DataTree> {
    const TRIED: usize = 100;
    let snapshots = store.snapshots().list().context("listing snapshots")?;
    let first_logged = store.log().first_zxid();
    let mut refused = Vec::new();
    for (i, info) in snapshots.iter().rev().take(TRIED).enumerate() {
        if i > 0 && first_logged.is_none_or(|first| first > info.zxid) {
            refused.push(format!("{}: the txn log no longer covers it", info.zxid));
            continue;
        }
        let Some((_, mut reader)) = store
            .snapshots()
            .read(info.zxid)
            .with_context(|| format!("reading snapshot {}", info.zxid))?
        else {
            continue;
        };
        match DataTree::restore(&mut reader) {
            Ok(tree) => {
                tracing::info!(zxid = %info.zxid, nodes = tree.node_count(), "loaded snapshot");
                return Ok(tree);
            }
            Err(e) => {
                tracing::error!(zxid = %info.zxid, error = %e, "problem reading snapshot; trying an older one");
                refused.push(format!("{}: {e}", info.zxid));
            }
        }
    }
    if snapshots.is_empty() {
        return Ok(DataTree::new());
    }
    anyhow::bail!("no snapshot restores ({})", refused.join("; "))
}

/// `autopurge.purgeInterval` (hours; 0 = off) keeping
/// `autopurge.snapRetainCount` snapshots and the log they need.
pub(crate) fn start_autopurge(store: &Store, cfg: &Config) -> Option<zab_store::AutoPurge> {
    let every = Duration::from_secs(cfg.autopurge_purge_interval_hours as u64 * 3600);
    match store.start_autopurge(cfg.autopurge_snap_retain_count as usize, every) {
        Ok(handle) => handle,
        Err(e) => {
            tracing::warn!(error = %e, "autopurge not started");
            None
        }
    }
}

/// Opens the store under `dataDir/zab` (its write-ahead log under
/// `dataLogDir/zab` when that is another directory) and rebuilds the tree
/// from it.
pub(crate) fn open_state(cfg: &Config) -> anyhow::Result<(Arc<Store>, DataTree, Recovery)> {
    let store_dir = cfg.data_dir.join("zab");
    let wal_dir = (cfg.data_log_dir != cfg.data_dir).then(|| cfg.data_log_dir.join("zab"));
    if !store_dir.exists() {
        refuse_unimported_zookeeper_data(cfg).context(ExitCode::UnableToAccessDataDir)?;
    }
    // A store an import left half-written would serve part of the data.
    if crate::zookeeper_import::unfinished_import_marker(cfg).exists() {
        return Err(
            anyhow::anyhow!(crate::zookeeper_import::unfinished_import(cfg))
                .context(ExitCode::UnableToAccessDataDir),
        );
    }
    for dir in std::iter::once(&store_dir).chain(&wal_dir) {
        // `FileTxnSnapLog`: "Missing data directory …, automatic data
        // directory creation is disabled".
        if !cfg.datadir_autocreate && !dir.is_dir() {
            return Err(anyhow::anyhow!(
                "Missing data directory {}, automatic data directory creation is disabled \
                 (datadir.autocreate is false). Please create this directory with proper \
                 permissions.",
                dir.display()
            )
            .context(ExitCode::UnableToAccessDataDir));
        }
        writable_dir(dir).context(ExitCode::UnableToAccessDataDir)?;
    }
    let store = Store::open(
        &store_dir,
        StoreOptions {
            sync: cfg.force_sync,
            group_commit: cfg.group_commit(),
            fsync_warning_threshold_ms: cfg.fsync_warning_threshold_ms,
            wal_dir,
            ..Default::default()
        },
    )
    .with_context(|| format!("opening the store in {}", store_dir.display()))?;
    tracing::info!(
        dir = %store.dir().display(),
        txn_log = %store.wal_dir().display(),
        "store opened"
    );
    let store = Arc::new(store);
    let (mut tree, recovery) = blocking(|| recover(&store))?;
    // An empty database gets its first snapshot at once, as ZooKeeper's
    // `FileTxnSnapLog.restore` saves `snapshot.0` when it finds neither
    // snapshot nor log (with `zookeeper.db.autocreate`, its default).
    if tree.last_zxid() == Zxid::ZERO && store.snapshots().list()?.is_empty() {
        trust_empty_database(cfg)?;
        let mut bytes = Vec::new();
        tree.snapshot().write_to(&mut bytes)?;
        store
            .snapshots()
            .save_untimed(Zxid::ZERO, &mut &bytes[..])?;
    }
    // Reads check ACLs in the tree itself; writes in the preparer.
    tree.set_acl_checks(cfg.skip_acl, cfg.providers());
    Ok((store, tree, recovery))
}

/// Whether a server may start on an empty database: always with
/// `db.autocreate` (the default); without it only once, when the file
/// `initialize` in the txn log's directory says so, as
/// `FileTxnSnapLog.restore` decides (it looks beside the log's
/// `version-2`: `dataLogDir`, which is `dataDir` unless set apart, where
/// ZooKeeper's `zkServer-initialize.sh` writes it). ZooKeeper then runs
/// on, taking no part in elections until a leader syncs it; zab does not
/// start, so a server whose data was lost cannot help elect a leader
/// without the committed txns.
fn trust_empty_database(cfg: &Config) -> anyhow::Result<()> {
    if cfg.db_autocreate {
        return Ok(());
    }
    let initialize = cfg.data_log_dir.join("initialize");
    match std::fs::remove_file(&initialize) {
        Ok(()) => {
            tracing::info!(
                "Initialize file found, an empty database will not block voting participation"
            );
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => anyhow::bail!(
            "the database is empty and db.autocreate is false: this server's data may \
             have been lost. To start it empty, create {}",
            initialize.display()
        ),
        Err(e) => Err(e).with_context(|| format!("removing {}", initialize.display())),
    }
}

/// Creates `dir` if it is missing and checks that this process may write
/// in it, as ZooKeeper's `FileTxnSnapLog` does for its `version-2`
/// directories ("Unable to create data directory", "Cannot write to data
/// directory"): a server that cannot write its data exits at start-up,
/// not at its first write.
fn writable_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::ffi::OsStrExt as _;
    std::fs::create_dir_all(dir)
        .with_context(|| format!("Unable to create data directory {}", dir.display()))?;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .with_context(|| format!("{} holds a NUL byte", dir.display()))?;
    // SAFETY: `path` is a NUL-terminated string that outlives the call.
    if unsafe { libc::access(path.as_ptr(), libc::W_OK | libc::X_OK) } != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("Cannot write to data directory {}", dir.display()));
    }
    Ok(())
}

/// A new store on a `dataDir` (or `dataLogDir`) where ZooKeeper left its
/// data (`version-2/snapshot.*` or `log.*`): zab does not read ZooKeeper's
/// files, and starting empty there would serve an empty tree to clients
/// that expect theirs (and, in an ensemble, elect a leader without it).
/// Refused, naming the import that moves the data over.
fn refuse_unimported_zookeeper_data(cfg: &Config) -> anyhow::Result<()> {
    for dir in [&cfg.data_dir, &cfg.data_log_dir] {
        let version2 = dir.join("version-2");
        let Ok(entries) = std::fs::read_dir(&version2) else {
            continue;
        };
        let zookeeper_file = entries.flatten().any(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with("snapshot.") || name.starts_with("log.")
        });
        if zookeeper_file {
            // Snapshots from the dataDir, logs from the dataLogDir.
            let dirs = if cfg.data_log_dir == cfg.data_dir {
                cfg.data_dir.display().to_string()
            } else {
                format!("{} {}", cfg.data_dir.display(), cfg.data_log_dir.display())
            };
            anyhow::bail!(
                "{} holds ZooKeeper's data, which zab does not read: import it first \
                 (zab-server --import-zookeeper {dirs} <zoo.cfg>), or move it away to start empty",
                version2.display(),
            );
        }
    }
    Ok(())
}

/// A running standalone server.
pub struct Server {
    pub local_addr: SocketAddr,
    _purge: Option<zab_store::AutoPurge>,
    /// The admin server, when `admin.enableServer` (the default).
    pub admin: Option<AdminServer>,
    /// The Prometheus `/metrics` endpoint, when configured.
    pub metrics: Option<AdminServer>,
    core: mpsc::UnboundedSender<CoreMsg>,
    accept: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Recovers state from `cfg.data_dir` and starts serving on the client port.
    pub async fn start(cfg: Config) -> anyhow::Result<Server> {
        let cfg = Arc::new(cfg);
        let (store, tree, recovery) = open_state(&cfg)?;
        // ZooKeeper's `startdata` → `loadData` takes a snapshot of the
        // recovered tree before serving ("Make a clean snapshot"); zab
        // writes it in the background from a cheap copy of the tree.
        spawn_snapshot(store.clone(), tree.snapshot());
        let purge = start_autopurge(&store, &cfg);

        let listeners = ClientListeners::bind(&cfg).await?;
        let local_addr = listeners.local_addr;

        let pipeline_cfg = PipelineConfig::from_config(&cfg);
        let pipeline = Pipeline::new(pipeline_cfg, tree, now());
        let (core_tx, core_rx) = mpsc::unbounded_channel();
        let started = now_ms();
        tokio::spawn(core_loop(
            pipeline,
            store,
            cfg.clone(),
            (core_rx, core_tx.clone()),
            started,
            recovery.startup_metrics(),
            listeners.flow.clone(),
        ));
        spawn_ticker(core_tx.clone(), cfg.tick_time_ms as u64);

        // A standalone ZooKeeper that cannot start its admin server exits
        // ("Unable to start AdminServer, exiting abnormally",
        // `ZooKeeperServerMain`); a quorum member only warns.
        let admin = match cfg.admin.enabled {
            true => Some(
                AdminServer::start(&cfg.admin, core_tx.clone())
                    .await
                    .with_context(|| {
                        format!(
                            "Unable to start AdminServer on {}:{} (admin.enableServer=false \
                             turns it off)",
                            cfg.admin.address, cfg.admin.port
                        )
                    })
                    .context(ExitCode::ErrorStartingAdminServer)?,
            ),
            false => None,
        };
        let metrics = start_metrics(&cfg, &core_tx).await?;
        let accept = listeners.spawn(&cfg, &core_tx);
        Ok(Server {
            local_addr,
            _purge: purge,
            admin,
            metrics,
            core: core_tx,
            accept,
        })
    }

    /// Stops accepting, lets logged txns finish, closes every connection.
    pub async fn shutdown(self) {
        self.accept.abort();
        let (tx, rx) = oneshot::channel();
        if self.core.send(CoreMsg::Shutdown(tx)).is_ok() {
            let _ = rx.await;
        }
    }
}

/// What a standalone server's status answers read.
fn standalone_source<'a>(
    pipeline: &'a mut Pipeline,
    cfg: &'a Config,
    store: &'a Store,
    started_ms: i64,
    provider: crate::four_letter::ProviderMetrics,
    flow: &ServerFlow,
) -> status::StatusSource<'a> {
    status::StatusSource {
        pipeline: Some(pipeline),
        requests_in_process: flow.in_process(),
        mode: crate::four_letter::ServerMode::Standalone,
        quorum: status::QuorumStatus {
            provider,
            ..status::QuorumStatus::default()
        },
        cfg,
        store,
        started_ms,
    }
}

/// Starts the Prometheus endpoint when `metricsProvider.className` names
/// it. ZooKeeper does not start without a metrics provider it was asked
/// for ("Cannot boot MetricsProvider"), standalone or not: neither does
/// zab.
pub(crate) async fn start_metrics(
    cfg: &Config,
    core: &mpsc::UnboundedSender<CoreMsg>,
) -> anyhow::Result<Option<AdminServer>> {
    if !cfg.prometheus.enabled {
        return Ok(None);
    }
    let p = &cfg.prometheus;
    AdminServer::start_metrics(p, core.clone())
        .await
        .map(Some)
        .with_context(|| format!("Cannot start /metrics on {}:{}", p.host, p.port))
}

/// The address a host name in this server's own line's client address
/// (`server.N=…;zk1-internal:2181`) resolves to, which the client port
/// binds, as ZooKeeper binds it: never every interface for a name that
/// was meant to limit them. `None` when the line names no host, or a
/// wildcard.
async fn named_client_host(cfg: &Config) -> anyhow::Result<Option<IpAddr>> {
    let Some(named) = cfg.my_server().and_then(|s| s.client_addr.clone()) else {
        return Ok(None);
    };
    let host = named.host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_unspecified()) {
        return Ok(None);
    }
    let resolved = zab_election::PeerAddr::new(host, named.port)
        .resolve()
        .await
        .with_context(|| format!("resolving the client address {}", named.host))?;
    Ok(Some(resolved.ip()))
}

/// The client ports: `clientPort`, `secureClientPort`, or both.
pub(crate) struct ClientListeners {
    plain: Option<(TcpListener, ClientPortTls)>,
    secure: Option<(TcpListener, Arc<ClientTls>)>,
    /// The plain port's address, else the secure one's.
    pub local_addr: SocketAddr,
    /// Both ports count into one server-wide limit, as ZooKeeper's
    /// connection factories share one ZooKeeperServer; the core reads it
    /// for `mntr` and sets its limit when the server's role changes.
    pub flow: Arc<ServerFlow>,
}

impl ClientListeners {
    /// Binds the configured ports; the TLS stores are read here, so a bad
    /// one stops the server at start-up.
    pub async fn bind(cfg: &Config) -> anyhow::Result<ClientListeners> {
        let any = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        // `clientPortListenBacklog`; unset (-1) or not positive, zab's
        // default where Java's is 50.
        let backlog = match cfg.client_port_listen_backlog {
            n if n > 0 => n,
            _ => crate::listen::BACKLOG,
        };
        let plain = match cfg.client_port {
            Some(port) => {
                let tls = if cfg.tls.port_unification {
                    let tls = client_tls(cfg).context("client.portUnification")?;
                    ClientPortTls::Unified(tls)
                } else {
                    ClientPortTls::None
                };
                let ip = match cfg.client_port_address {
                    Some(ip) => ip,
                    None => named_client_host(cfg).await?.unwrap_or(any),
                };
                let addr = SocketAddr::new(ip, port);
                let l = crate::listen::bind_with_backlog(addr, backlog)
                    .with_context(|| format!("binding {addr}"))?;
                tracing::info!(
                    local_addr = %l.local_addr()?,
                    tls_too = cfg.tls.port_unification,
                    "client port"
                );
                Some((l, tls))
            }
            None => None,
        };
        let secure = match cfg.tls.secure_client_port {
            Some(port) => {
                let tls = client_tls(cfg).context("secureClientPort")?;
                let addr = SocketAddr::new(cfg.tls.secure_client_port_address.unwrap_or(any), port);
                let l = crate::listen::bind_with_backlog(addr, backlog)
                    .with_context(|| format!("binding {addr}"))?;
                tracing::info!(local_addr = %l.local_addr()?, "secure client port (TLS)");
                Some((l, tls))
            }
            None => None,
        };
        let local_addr = match (&plain, &secure) {
            (Some((l, _)), _) | (None, Some((l, _))) => l.local_addr()?,
            (None, None) => anyhow::bail!("neither clientPort nor secureClientPort is set"),
        };
        Ok(ClientListeners {
            plain,
            secure,
            local_addr,
            flow: ServerFlow::new(ServerFlow::limit_for(cfg, ServingRole::Configured)),
        })
    }

    /// Starts accepting on every port; the handle stops them all.
    pub fn spawn(
        self,
        cfg: &Arc<Config>,
        core: &mpsc::UnboundedSender<CoreMsg>,
    ) -> tokio::task::JoinHandle<()> {
        let cfg = cfg.clone();
        let core = core.clone();
        let flow = self.flow;
        tokio::spawn(async move {
            let plain = self
                .plain
                .map(|(l, tls)| accept_loop(l, tls, cfg.clone(), core.clone(), flow.clone()));
            let secure = self.secure.map(|(l, tls)| {
                let only = ClientPortTls::Only(tls);
                accept_loop(l, only, cfg.clone(), core.clone(), flow.clone())
            });
            match (plain, secure) {
                (Some(p), Some(s)) => {
                    tokio::join!(p, s);
                }
                (Some(p), None) => p.await,
                (None, Some(s)) => s.await,
                (None, None) => {}
            }
        })
    }
}

pub(crate) fn spawn_ticker(core: mpsc::UnboundedSender<CoreMsg>, tick_ms: u64) {
    tokio::spawn(async move {
        // The session expirer wakes once per half tick (reference B).
        let mut every = tokio::time::interval(Duration::from_millis((tick_ms / 2).max(1)));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            every.tick().await;
            if core.send(CoreMsg::Input(Input::Tick)).is_err() {
                return;
            }
        }
    });
}

/// The standalone server's core: `provider` holds what of ZooKeeper's
/// provider metrics a standalone server has (the start-up load's).
async fn core_loop(
    mut pipeline: Pipeline,
    store: Arc<Store>,
    cfg: Arc<Config>,
    (mut rx, tx): (
        mpsc::UnboundedReceiver<CoreMsg>,
        mpsc::UnboundedSender<CoreMsg>,
    ),
    started_ms: i64,
    mut provider: crate::four_letter::ProviderMetrics,
    flow: Arc<ServerFlow>,
) {
    let log = store.log();
    let durable = Arc::new(DurableMark::default());
    let mut writers: HashMap<ConnectionId, ReplySender> = HashMap::new();
    let mut actions = Vec::new();
    while let Some(msg) = rx.recv().await {
        match msg {
            CoreMsg::Input(input) => {
                if let Input::Disconnected { conn } = &input {
                    writers.remove(conn);
                }
                pipeline.handle(now(), input, &mut actions);
            }
            CoreMsg::Inputs(inputs) => {
                let now = now();
                for input in inputs {
                    pipeline.handle(now, input, &mut actions);
                }
            }
            CoreMsg::Durable { .. } => {
                if let Some(zxid) = durable.take() {
                    pipeline.handle(now(), Input::Durable { zxid }, &mut actions);
                }
            }
            CoreMsg::Register { conn, out } => {
                writers.insert(conn, out);
            }
            CoreMsg::FourLetter { word, asker, reply } => {
                let src =
                    standalone_source(&mut pipeline, &cfg, &store, started_ms, provider, &flow);
                let _ = reply.send(status::four_letter(word, asker, src));
                if word == zab_wire::jute::frame::FourLetterWord::Srst {
                    provider = Default::default();
                }
            }
            CoreMsg::Admin { request, reply } => {
                let src =
                    standalone_source(&mut pipeline, &cfg, &store, started_ms, provider, &flow);
                let _ = reply.send(status::admin(&request, src));
                if status::resets_stats(&request) {
                    provider = Default::default();
                }
            }
            CoreMsg::LogFailed(e) => {
                // ZooKeeper exits when it cannot write its log: a server that
                // cannot make txns durable must not acknowledge any.
                tracing::error!(error = %e, "txn log write failed; stopping");
                ExitCode::UnexpectedError.exit();
            }
            CoreMsg::Shutdown(done) => {
                for (_, w) in writers.drain() {
                    w.send(Outgoing::Close);
                }
                let _ = done.send(());
                return;
            }
            // Quorum messages never reach a standalone core.
            CoreMsg::Election(_)
            | CoreMsg::Link { .. }
            | CoreMsg::SnapshotQueued { .. }
            | CoreMsg::LeaderLinkUp { .. }
            | CoreMsg::LeaderPackets { .. }
            | CoreMsg::LeaderLinkDown { .. }
            | CoreMsg::Clock => {}
        }
        for action in actions.drain(..) {
            match action {
                Action::Send { conn, frame } => {
                    if let Some(w) = writers.get(&conn) {
                        w.send(Outgoing::Frame(frame));
                    }
                }
                Action::Close { conn } => {
                    if let Some(w) = writers.remove(&conn) {
                        w.send(Outgoing::Close);
                    }
                }
                Action::Append { zxid, txn } => {
                    let tx = tx.clone();
                    let mark = Arc::clone(&durable);
                    log.append(zxid, txn, move |res| match res {
                        Ok(()) => {
                            if mark.raise(zxid) {
                                let _ = tx.send(CoreMsg::Durable { gen: 0 });
                            }
                        }
                        Err(e) => {
                            let _ = tx.send(CoreMsg::LogFailed(e.to_string()));
                        }
                    });
                }
                Action::Snapshot(snap) => {
                    spawn_periodic_snapshot(store.clone(), snap);
                }
                Action::Forward { .. } | Action::Revalidate { .. } => {
                    tracing::error!("a standalone pipeline asked to talk to a leader");
                }
            }
        }
    }
}

/// Bytes the snapshot serializer hands the pipe at a time: a pipe's whole
/// default capacity on Linux.
const SNAPSHOT_PIPE_BUFFER: usize = 64 << 10;

/// Writes a snapshot off the request path: the tree handed over a cheap
/// copy, serialized here through a pipe into the store.
pub(crate) fn spawn_snapshot(store: Arc<Store>, snap: TreeSnapshot) {
    spawn_snapshot_claimed(store, snap, None);
}

/// [`spawn_snapshot`] for the snapshot `snapCount` calls for, unless the
/// last such one is still being written: then none, as ZooKeeper's
/// `SyncRequestProcessor` skips it. Whether one was started.
pub(crate) fn spawn_periodic_snapshot(store: Arc<Store>, snap: TreeSnapshot) -> bool {
    let Some(claim) = store.snapshots().claim_periodic() else {
        // ZooKeeper's words, for operators who grep for them.
        tracing::warn!(zxid = %snap.zxid(), "Too busy to snap, skipping");
        return false;
    };
    spawn_snapshot_claimed(store, snap, Some(claim));
    true
}

fn spawn_snapshot_claimed(
    store: Arc<Store>,
    snap: TreeSnapshot,
    claim: Option<zab_store::PeriodicClaim>,
) {
    tokio::task::spawn_blocking(move || {
        // Held until this snapshot is written, then the next may start.
        let _claim = claim;
        let zxid = snap.zxid();
        match write_snapshot(&store, snap) {
            Ok(()) => tracing::info!(%zxid, "snapshot written"),
            // ZooKeeper's `takeSnapshot` exits on an I/O error ("Severe
            // unrecoverable error"): a server that cannot snapshot cannot
            // purge either, and its log would grow until the disk is full.
            Err(e) => {
                tracing::error!(%zxid, error = %e, "snapshot failed; stopping");
                ExitCode::TxnLogErrorTakingSnapshot.exit();
            }
        }
    });
}

/// Serializes `snap` on a thread of its own into a pipe that the store
/// saves from, so the tree is never held as one buffer.
fn write_snapshot(store: &Store, snap: TreeSnapshot) -> anyhow::Result<()> {
    let zxid = snap.zxid();
    let (reader, writer) = std::io::pipe()?;
    let finished = Arc::new(AtomicBool::new(false));
    let mut reader = WholeStream {
        inner: reader,
        finished: finished.clone(),
    };
    // The tree writes one small record per znode: unbuffered, each
    // is a write syscall here and a short read at the other end
    // (measured: ≈ 10,000 writes per snapshot of the bench's
    // 10,000 znodes, a snapshot a second under load).
    let producer = std::thread::spawn(move || -> std::io::Result<()> {
        let mut writer = std::io::BufWriter::with_capacity(SNAPSHOT_PIPE_BUFFER, writer);
        snap.write_to(&mut writer)?;
        let pipe = writer.into_inner().map_err(|e| e.into_error())?;
        finished.store(true, Ordering::Release);
        drop(pipe);
        Ok(())
    });
    let saved = store.snapshots().save(zxid, &mut reader);
    // A save that failed part-way left the writer blocked on a full pipe:
    // closing the reading end ends it (a broken pipe) before it is joined.
    drop(reader);
    let produced = producer
        .join()
        .map_err(|_| anyhow::anyhow!("snapshot writer panicked"))?;
    saved?;
    produced?;
    Ok(())
}

/// The snapshot pipe's reading end, which reports the writer's end as an
/// error unless the writer says it finished: a writer that failed or
/// panicked part-way closes the pipe too, and the store must not publish
/// the part it read as the newest snapshot.
struct WholeStream {
    inner: std::io::PipeReader,
    finished: Arc<AtomicBool>,
}

impl std::io::Read for WholeStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = std::io::Read::read(&mut self.inner, buf)?;
        if n == 0 && !buf.is_empty() && !self.finished.load(Ordering::Acquire) {
            return Err(std::io::Error::other(
                "the snapshot writer stopped part-way",
            ));
        }
        Ok(n)
    }
}

/// Accepts client connections on one port, the plain one or (with `tls`)
/// the secure one. Each port counts its own connections against
/// `maxClientCnxns` and `maxCnxns`, as each of ZooKeeper's connection
/// factories does.
/// What a client port does with TLS.
#[derive(Clone)]
pub(crate) enum ClientPortTls {
    /// Plain connections only (`clientPort`).
    None,
    /// TLS only (`secureClientPort`).
    Only(Arc<ClientTls>),
    /// Both, told apart by the first byte (`client.portUnification`).
    Unified(Arc<ClientTls>),
}

/// The TLS of the client ports, read from the `ssl.*` keys; a bad key or
/// trust store stops the server at start-up. With `client.certReload` it
/// is read again whenever the stores change.
fn client_tls(cfg: &Config) -> anyhow::Result<Arc<ClientTls>> {
    let tls = ClientTls::new(&cfg.tls)?;
    if !tls.unsupported_suites.is_empty() {
        tracing::warn!(
            suites = tls.unsupported_suites.join(","),
            "ssl.ciphersuites names suites zab does not have; they are not offered"
        );
    }
    let tls = Arc::new(tls);
    tls.reload_on_change(&cfg.tls);
    Ok(tls)
}

/// A TLS record of type handshake: the first byte of every TLS client's
/// first message, and never of a ZooKeeper client's (a frame length of
/// 0x16xxxxxx is far above `jute.maxbuffer`) or of a four-letter word.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

pub(crate) async fn accept_loop(
    listener: TcpListener,
    tls: ClientPortTls,
    cfg: Arc<Config>,
    core: mpsc::UnboundedSender<CoreMsg>,
    flow: Arc<ServerFlow>,
) {
    static NEXT_CONN: AtomicU64 = AtomicU64::new(1);
    let open = Arc::new(AtomicUsize::new(0));
    let per_ip: Arc<Mutex<HashMap<IpAddr, usize>>> = Arc::default();
    loop {
        let (stream, remote) = match listener.accept().await {
            Ok((stream, remote)) => (stream, crate::listen::canonical(remote)),
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let limit = cfg.max_client_cnxns as usize;
        if cfg.max_cnxns > 0 && open.load(Ordering::Relaxed) >= cfg.max_cnxns as usize {
            tracing::warn!(%remote, limit = cfg.max_cnxns, "too many connections (maxCnxns); closing");
            drop(stream);
            continue;
        }
        {
            let mut counts = per_ip.lock().unwrap_or_else(|e| e.into_inner());
            let n = counts.entry(remote.ip()).or_default();
            if limit > 0 && *n >= limit {
                tracing::warn!(%remote, limit, "too many connections from this address (maxClientCnxns); closing");
                drop(stream);
                continue;
            }
            *n += 1;
        }
        let conn = ConnectionId(NEXT_CONN.fetch_add(1, Ordering::Relaxed));
        let core = core.clone();
        let cfg = cfg.clone();
        let per_ip = per_ip.clone();
        open.fetch_add(1, Ordering::Relaxed);
        let open = open.clone();
        let tls = tls.clone();
        let flow = ConnFlow::new(&flow);
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            let tls = match tls {
                ClientPortTls::None => None,
                ClientPortTls::Only(tls) => Some(tls),
                ClientPortTls::Unified(tls) => {
                    // As Netty's `DualModeSslHandler` decides: by the first
                    // byte the client sends.
                    let mut first = [0u8; 1];
                    // A client that closed or failed before sending a
                    // byte is served as plain, which reads its end; one
                    // that stays silent is served as plain too, whose
                    // sessionless timeout closes it (the plain port's rule,
                    // so a silent connection holds no slot for ever).
                    match tokio::time::timeout(SESSIONLESS_TIMEOUT, stream.peek(&mut first)).await {
                        Ok(Ok(1)) if first[0] == TLS_HANDSHAKE_RECORD => Some(tls),
                        _ => None,
                    }
                }
            };
            match tls {
                None => {
                    let (rd, wr) = stream.into_split();
                    let id = (remote, conn);
                    serve_connection(rd, wr, id, Vec::new(), cfg, core, &flow).await;
                }
                Some(tls) => match tls.accept(stream).await {
                    Ok((stream, identities)) => {
                        let (rd, wr) = tokio::io::split(stream);
                        let id = (remote, conn);
                        serve_connection(rd, wr, id, identities, cfg, core, &flow).await;
                    }
                    Err(e) => tracing::info!(%remote, error = %e, "closing TLS connection"),
                },
            }
            flow.closed();
            open.fetch_sub(1, Ordering::Relaxed);
            let mut counts = per_ip.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(n) = counts.get_mut(&remote.ip()) {
                *n -= 1;
                if *n == 0 {
                    counts.remove(&remote.ip());
                }
            }
        });
    }
}

/// Serves one client connection, plain or TLS, from its first bytes on;
/// `identities` are those its TLS handshake proved.
async fn serve_connection<R, W>(
    mut rd: R,
    mut wr: W,
    (remote, conn): (SocketAddr, ConnectionId),
    identities: Vec<Id>,
    cfg: Arc<Config>,
    core: mpsc::UnboundedSender<CoreMsg>,
    flow: &Arc<ConnFlow>,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let mut buf = BytesMut::with_capacity(READ_BUFFER);

    // A connection that never sends a ConnectRequest is closed after
    // ZooKeeper's `zookeeper.nio.sessionlessCnxnTimeout` (reference B).
    let handshake_deadline = tokio::time::Instant::now() + SESSIONLESS_TIMEOUT;

    // The first bytes may be a four-letter word instead of a frame length
    // (reference A, E).
    while buf.len() < 4 {
        match tokio::time::timeout_at(handshake_deadline, rd.read_buf(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => {}
            _ => return,
        }
    }
    let first4 = [buf[0], buf[1], buf[2], buf[3]];
    if let Some(word) = four_letter_word(first4) {
        let allowed = cfg.four_letter_whitelist.allows(word.as_str());
        // `stmk` carries the new trace mask: 8 bytes, big-endian, read only
        // once the word is allowed (`NIOServerCnxn.checkFourLetterWord`
        // answers a word off the whitelist at once).
        if word == FourLetterWord::Stmk && allowed {
            while buf.len() < 12 {
                match tokio::time::timeout_at(handshake_deadline, rd.read_buf(&mut buf)).await {
                    Ok(Ok(n)) if n > 0 => {}
                    _ => return,
                }
            }
            let mut mask = [0u8; 8];
            mask.copy_from_slice(&buf[4..12]);
            crate::four_letter::set_trace_mask(i64::from_be_bytes(mask));
        }
        let text = if allowed {
            let (tx, rx) = oneshot::channel();
            let msg = CoreMsg::FourLetter {
                word,
                asker: remote,
                reply: tx,
            };
            if core.send(msg).is_err() {
                return;
            }
            rx.await.unwrap_or_default()
        } else {
            format!(
                "{} is not executed because it is not in the whitelist.\n",
                word.as_str()
            )
        };
        let _ = wr.write_all(text.as_bytes()).await;
        let _ = wr.shutdown().await;
        return;
    }

    let (out_tx, out_rx) = mpsc::unbounded_channel();
    let out = ReplySender::new(out_tx, Arc::clone(flow));
    if core.send(CoreMsg::Register { conn, out }).is_err() {
        return;
    }
    let _ = core.send(CoreMsg::Input(Input::Accepted {
        conn,
        remote,
        identities,
    }));
    let (closed_tx, mut closed_rx) = oneshot::channel::<()>();
    tokio::spawn(write_loop(wr, out_rx, closed_tx, Arc::clone(flow)));

    let decoder = FrameDecoder::new(cfg.jute_max_buffer as usize);
    let mut connected = false;
    'conn: loop {
        // The requests of one read go to the core as one message: one
        // trip through its queue, and the writes among them are proposed
        // and logged in one step of the core.
        let mut inputs = Vec::new();
        let mut requests = 0;
        // A rule of `client_flow` stopped the decoding with frames left.
        let mut held_back = false;
        let closing = loop {
            if connected && flow.holds_back(requests) {
                held_back = true;
                break false;
            }
            let payload = match decoder.decode(&mut buf) {
                Ok(Some(p)) => p,
                Ok(None) => break false,
                Err(e) => {
                    // Behaviour 16: an oversized frame closes the connection;
                    // the session survives and nothing is written.
                    tracing::warn!(%remote, error = %e, "closing connection: bad frame length");
                    break true;
                }
            };
            let input = if !connected {
                match ConnectRequest::decode(payload) {
                    Ok(request) => {
                        connected = true;
                        Input::Connect { conn, request }
                    }
                    Err(e) => {
                        tracing::info!(%remote, error = %e, "closing connection: bad ConnectRequest");
                        break true;
                    }
                }
            } else {
                let mut r = Reader::new(payload);
                let header = match RequestHeader::read(&mut r) {
                    Ok(h) => h,
                    Err(e) => {
                        tracing::info!(%remote, error = %e, "closing connection: bad request header");
                        break true;
                    }
                };
                let body = Request::decode(header.op, r.rest());
                // Only these are answered by xid (see `client_flow`).
                requests += i64::from(header.xid > 0);
                Input::Request { conn, header, body }
            };
            inputs.push(input);
        };
        // Counted before the core can answer them.
        flow.requests_read(requests);
        // What came before a bad frame is still served, as it was when
        // each request went to the core on its own.
        if !inputs.is_empty() && core.send(CoreMsg::Inputs(inputs)).is_err() {
            break 'conn;
        }
        if closing {
            break 'conn;
        }
        if flow.must_pause() {
            // While paused, a client that still takes its replies is alive:
            // its session is touched (`Input::Alive`), though its pings sit
            // unread behind the pause.
            let mut written = flow.written_total();
            let mut look =
                tokio::time::interval_at(tokio::time::Instant::now() + ALIVE_EVERY, ALIVE_EVERY);
            loop {
                tokio::select! {
                    () = flow.wait_until_readable() => break,
                    _ = &mut closed_rx => break 'conn,
                    _ = look.tick() => {
                        let now = flow.written_total();
                        if now != written {
                            written = now;
                            if core.send(CoreMsg::Input(Input::Alive { conn })).is_err() {
                                break 'conn;
                            }
                        }
                    }
                }
            }
        }
        if held_back {
            continue; // decode what is already buffered before reading more
        }
        release_if_large(&mut buf, READ_BUFFER);
        tokio::select! {
            n = rd.read_buf(&mut buf) => match n {
                Ok(0) | Err(_) => break 'conn,
                Ok(_) => {}
            },
            _ = &mut closed_rx => break 'conn,
            _ = tokio::time::sleep_until(handshake_deadline), if !connected => {
                tracing::info!(%remote, "closing connection: no ConnectRequest in time");
                break 'conn;
            }
        }
    }
    let _ = core.send(CoreMsg::Input(Input::Disconnected { conn }));
}

/// What a connection's read and write buffers start at.
const READ_BUFFER: usize = 4096;
const WRITE_BUFFER: usize = 16 * 1024;

/// Gives back an empty buffer's memory once one large frame or burst has
/// grown it past 64 KiB, so ten thousand connections that each read one
/// 1 MiB node once do not keep 10 GiB: ZooKeeper's buffers are per
/// response. (Frames of that size are allocated whole either way.)
fn release_if_large(buf: &mut BytesMut, start: usize) {
    if buf.is_empty() && buf.capacity() > 64 * 1024 {
        *buf = BytesMut::with_capacity(start);
    }
}

/// How often a paused reader looks whether its client still takes its
/// replies (a fraction of the shortest session timeout a test uses).
const ALIVE_EVERY: Duration = Duration::from_millis(100);

/// Writes frames as they come, many per syscall when they queue up.
async fn write_loop(
    mut wr: impl AsyncWrite + Unpin,
    mut rx: mpsc::UnboundedReceiver<Outgoing>,
    closed: oneshot::Sender<()>,
    flow: Arc<ConnFlow>,
) {
    let mut batch = BytesMut::with_capacity(WRITE_BUFFER);
    'outer: while let Some(first) = rx.recv().await {
        let mut close = false;
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                Outgoing::Frame(f) => batch.extend_from_slice(&f),
                Outgoing::Close => {
                    close = true;
                    break;
                }
            }
            if batch.len() >= 256 * 1024 {
                break;
            }
            next = rx.try_recv().ok();
        }
        if !batch.is_empty() {
            // A TLS stream holds records until flushed; a TCP flush is free.
            let written = async { wr.write_all(&batch).await.and(wr.flush().await) };
            tokio::select! {
                r = written => if r.is_err() {
                    break 'outer;
                },
                // A close the core asked for does not wait on a client that
                // does not read (`CLOSE_LINGER`).
                () = flow.close_lingered() => break 'outer,
            }
            flow.written(batch.len());
            batch.clear();
            release_if_large(&mut batch, WRITE_BUFFER);
        }
        if close {
            break;
        }
    }
    // A TLS stream's close_notify is a write too: bounded as well.
    let _ = tokio::time::timeout(crate::client_flow::CLOSE_LINGER, wr.shutdown()).await;
    let _ = closed.send(());
}

impl PipelineConfig {
    pub fn from_config(cfg: &Config) -> PipelineConfig {
        PipelineConfig {
            // Standalone ZooKeeper ignores myid: its session ids start with 0x01.
            server_id: zab_wire::ServerId(1),
            tick_time_ms: cfg.tick_time_ms as i64,
            min_session_timeout_ms: cfg.min_session_timeout_ms,
            max_session_timeout_ms: cfg.max_session_timeout_ms,
            snap_count: cfg.snap_count as u64,
            // ≤ 0 turns the size trigger off, as in ZooKeeper.
            snap_size_limit_bytes: u64::try_from(cfg.snap_size_limit_kb)
                .unwrap_or(0)
                .saturating_mul(1024),
            periodic_snapshots: true,
            container_check_interval_ms: cfg.container_check_interval_ms as i64,
            container_max_per_minute: cfg.container_max_per_minute as usize,
            prepare: zab_tree::PrepareConfig {
                extended_types_enabled: cfg.extended_types_enabled,
                skip_acl: cfg.skip_acl,
                providers: cfg.providers(),
                enforce_quota: cfg.enforce_quota,
                container_max_never_used_ms: i64::try_from(
                    cfg.container_max_never_used_interval_ms,
                )
                .unwrap_or(i64::MAX),
            },
            auth: zab_tree::acl::AuthConfig {
                super_digest: cfg.super_digest.clone(),
                digest_alg: cfg.digest_alg,
            },
            sasl: cfg
                .sasl
                .for_clients
                .then(|| Arc::new(cfg.sasl.server.clone())),
            kerberos: crate::sasl_gssapi::installed(),
            allow_sasl_failed_clients: cfg.sasl.allow_failed_clients,
            enforce_auth: cfg.sasl.enforce_auth.clone(),
            local_sessions: cfg.local_sessions,
            local_sessions_upgrading: cfg.local_sessions_upgrading,
        }
    }
}

/// The async runtime for `zab.workerThreads` (`Config::worker_threads`):
/// one thread runs everything on a current-thread runtime (no work
/// stealing to pay for and one thread fewer to wake: +3 to +5 % writes in
/// interleaved A/B runs of three servers on two CPUs, BENCHMARKS.md); 0
/// means one worker per CPU.
pub fn runtime(worker_threads: usize) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = match worker_threads {
        1 => tokio::runtime::Builder::new_current_thread(),
        _ => tokio::runtime::Builder::new_multi_thread(),
    };
    if worker_threads > 1 {
        builder.worker_threads(worker_threads);
    }
    builder.enable_all().build()
}

/// Runs `f`, which blocks, on this runtime thread: through
/// `block_in_place` on a multi-thread runtime (its other tasks move to
/// another worker meanwhile), directly on a current-thread runtime, where
/// there is no other worker and `block_in_place` would panic.
pub(crate) fn blocking<T>(f: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

#[cfg(test)]
mod tests {
    use super::blocking;

    /// `block_in_place` panics on a current-thread runtime
    /// (`zab.workerThreads=1`): `blocking` must run the closure there too.
    #[tokio::test(flavor = "current_thread")]
    async fn blocking_runs_on_a_current_thread_runtime() {
        assert_eq!(blocking(|| 6 * 7), 42);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn blocking_runs_on_a_multi_thread_runtime() {
        assert_eq!(blocking(|| 6 * 7), 42);
    }

    #[test]
    fn a_connection_buffer_grown_by_a_large_frame_is_given_back_once_empty() {
        let mut buf = bytes::BytesMut::with_capacity(4096);
        buf.extend_from_slice(&vec![7; 1 << 20]);
        super::release_if_large(&mut buf, 4096);
        assert_eq!(buf.len(), 1 << 20, "never while it holds bytes");
        buf.clear();
        super::release_if_large(&mut buf, 4096);
        assert!(buf.capacity() < 64 * 1024, "{}", buf.capacity());
        // A buffer in its usual range keeps its memory.
        buf.extend_from_slice(&[1; 40_000]);
        buf.clear();
        let cap = buf.capacity();
        super::release_if_large(&mut buf, 4096);
        assert_eq!(buf.capacity(), cap);
    }

    #[test]
    fn blocking_runs_outside_a_runtime() {
        assert_eq!(blocking(|| 6 * 7), 42);
    }

    /// A save that fails part-way (here: its store's directory is gone)
    /// ends with an error, which stops the server, instead of leaving the
    /// tree's writer blocked on a full pipe and the periodic snapshots'
    /// claim held for good.
    #[test]
    fn a_snapshot_save_that_fails_part_way_ends_with_an_error() {
        use zab_wire::proto::{txn_body::Op, CreateTxn, Txn, TxnBody};
        let dir = tempfile::tempdir().unwrap();
        let store =
            zab_store::Store::open(&dir.path().join("s"), zab_store::StoreOptions::default())
                .unwrap();
        // Several MiB: more than the pipe and the save's first read hold.
        let mut tree = zab_tree::DataTree::new();
        for i in 1..=48 {
            tree.apply(&Txn {
                zxid: i,
                body: Some(TxnBody {
                    op: Some(Op::Create(CreateTxn {
                        path: format!("/n{i}"),
                        data: Some(vec![7u8; 100_000].into()),
                        op: 1,
                        parent_cversion: -1,
                        ..Default::default()
                    })),
                }),
                ..Default::default()
            });
        }
        std::fs::remove_dir_all(dir.path().join("s")).unwrap();
        let snap = tree.snapshot();
        let store = std::sync::Arc::new(store);
        let (tx, rx) = std::sync::mpsc::channel();
        let writing = {
            let store = store.clone();
            std::thread::spawn(move || tx.send(super::write_snapshot(&store, snap)))
        };
        let result = rx
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("the failed save returned");
        assert!(result.is_err(), "{result:?}");
        // Closed here, before the test ends, not by the thread at exit.
        writing.join().unwrap().unwrap();
        drop(store);
    }

    /// A periodic snapshot due while the last one is still being written
    /// is skipped, not queued ("Too busy to snap, skipping"); the next one
    /// due after it is written is taken.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_periodic_snapshot_is_skipped_while_the_last_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let store = std::sync::Arc::new(
            zab_store::Store::open(dir.path(), zab_store::StoreOptions::default()).unwrap(),
        );
        let tree = zab_tree::DataTree::new();
        let writing = store.snapshots().claim_periodic().expect("free");
        assert!(!super::spawn_periodic_snapshot(
            store.clone(),
            tree.snapshot()
        ));
        drop(writing);
        assert!(super::spawn_periodic_snapshot(
            store.clone(),
            tree.snapshot()
        ));
        // Its claim is held until it is written, then released.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while store.snapshots().claim_periodic().is_none() {
            assert!(std::time::Instant::now() < deadline, "never released");
            tokio::task::yield_now().await;
        }
        assert!(store.snapshots().latest().unwrap().is_some(), "written");
        // The store closes here, not on the writer's thread as the test
        // process exits.
        while std::sync::Arc::strong_count(&store) > 1 {
            assert!(std::time::Instant::now() < deadline, "store still held");
            tokio::task::yield_now().await;
        }
    }

    /// A store whose newest snapshot does not restore falls back to the
    /// one before while the txn log covers it, as ZooKeeper's
    /// `FileSnap.deserialize` does, and refuses to start when it does not.
    use zab_store::{Store, StoreOptions};
    use zab_tree::DataTree;
    use zab_wire::Zxid;

    /// A createSession txn at `zxid` (of the session numbered as it).
    fn session_txn(zxid: Zxid) -> zab_wire::proto::Txn {
        use zab_wire::proto::{txn_body::Op, CreateSessionTxn, Txn, TxnBody};
        Txn {
            session_id: zxid.0,
            zxid: zxid.0,
            body: Some(TxnBody {
                op: Some(Op::CreateSession(CreateSessionTxn { timeout: 30_000 })),
            }),
            ..Default::default()
        }
    }

    /// Saves the tree of `txns` applied in order as a snapshot.
    fn save_snapshot_of(store: &Store, txns: impl IntoIterator<Item = Zxid>) {
        let mut tree = DataTree::new();
        for zxid in txns {
            tree.apply(&session_txn(zxid));
        }
        let mut bytes = Vec::new();
        tree.snapshot().write_to(&mut bytes).unwrap();
        store
            .snapshots()
            .save(tree.last_zxid(), &mut &bytes[..])
            .unwrap();
    }

    /// Logs `txns` and waits until they are durable.
    fn log_synced(store: &Store, txns: impl IntoIterator<Item = Zxid>) {
        use prost::Message;
        for zxid in txns {
            let (tx, rx) = std::sync::mpsc::channel();
            let bytes = session_txn(zxid).encode_to_vec().into();
            store
                .log()
                .append(zxid, bytes, move |r| tx.send(r).unwrap());
            rx.recv().unwrap().unwrap();
        }
    }

    #[test]
    fn a_snapshot_that_does_not_restore_gives_way_to_one_the_log_covers() {
        use zab_wire::Epoch;
        let z = |n| Zxid::new(Epoch(1), n);
        // A good snapshot at 1:2, a damaged newest one at 1:4, and the txns
        // `logged` in the log.
        let store_with = |logged: std::ops::RangeInclusive<u32>| {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
            save_snapshot_of(&store, [z(1), z(2)]);
            store
                .snapshots()
                .save(z(4), &mut &b"not a snapshot"[..])
                .unwrap();
            log_synced(&store, logged.map(z));
            (dir, store)
        };
        let (_dir, store) = store_with(1..=6);
        let (recovered, _) = super::recover(&store).expect("falls back to 1:2");
        assert_eq!(recovered.last_zxid(), z(6));
        assert_eq!(recovered.sessions().count(), 6);
        // A log that starts after 1:2 (as after a SNAP's wipe) does not
        // cover it: replaying it onto 1:2 would skip 1:3 and 1:4.
        let (_dir, store) = store_with(5..=6);
        let err = super::recover(&store).expect_err("refused");
        assert!(err.to_string().contains("no longer covers"), "{err:#}");
    }

    /// A txn log that ends below the newest snapshot is dropped at start-up:
    /// the txns of an old epoch that a SNAP replaced (its install cut by a
    /// crash before the wipe), or a log with a gap below a snapshot
    /// published before the log synced. Kept, either would seed a DIFF or a
    /// TRUNC from a history that is not the snapshot's.
    #[test]
    fn a_log_that_ends_below_the_snapshot_is_dropped() {
        use zab_wire::Epoch;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        // Epoch 1's 1:1..1:3 logged; 1:3 was never committed, and the
        // leader of epoch 2 sent a snapshot of 1:1, 1:2, 2:1, 2:2.
        let (e1, e2) = (|n| Zxid::new(Epoch(1), n), |n| Zxid::new(Epoch(2), n));
        log_synced(&store, [e1(1), e1(2), e1(3)]);
        save_snapshot_of(&store, [e1(1), e1(2), e2(1), e2(2)]);
        let (tree, _) = super::recover(&store).unwrap();
        assert_eq!(tree.last_zxid(), e2(2));
        assert_eq!(tree.sessions().count(), 4);
        assert_eq!(store.log().last_zxid(), Zxid::ZERO);
        assert_eq!(store.log().first_zxid(), None);
        // New txns go on from the snapshot, and the next start replays them.
        log_synced(&store, [e2(3)]);
        let (tree, _) = super::recover(&store).unwrap();
        assert_eq!((tree.last_zxid(), tree.sessions().count()), (e2(3), 5));

        // A log that reaches the snapshot is kept, whatever the snapshot.
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        log_synced(&store, [e1(1), e1(2), e1(3)]);
        save_snapshot_of(&store, [e1(1), e1(2)]);
        let (tree, _) = super::recover(&store).unwrap();
        assert_eq!(tree.last_zxid(), e1(3));
        assert_eq!(store.log().first_zxid(), Some(e1(1)));
    }

    /// A host name as this server's client address is bound as what it
    /// resolves to, or not at all: never every interface, which a name
    /// meant to limit. (A literal address is bound as it is.)
    #[tokio::test]
    async fn a_named_client_address_is_resolved_not_widened() {
        let cfg = |client: &str| {
            crate::config::Config::parse(
                &format!(
                    "dataDir=/d\ninitLimit=10\nsyncLimit=5\nserver.1=127.0.0.1:2888:3888;{client}\n\
                     server.2=127.0.0.2:2888:3888\nserver.3=127.0.0.3:2888:3888\n"
                ),
                Some("1"),
            )
            .unwrap()
        };
        let unresolvable = cfg("zk-internal.invalid:2181");
        assert!(super::named_client_host(&unresolvable).await.is_err());
        assert!(super::ClientListeners::bind(&unresolvable).await.is_err());
        assert_eq!(
            super::named_client_host(&cfg("0.0.0.0:2181"))
                .await
                .unwrap(),
            None
        );
        assert_eq!(super::named_client_host(&cfg("2181")).await.unwrap(), None);
    }

    /// A close the core asks for ends the writer within CLOSE_LINGER even
    /// when the client has stopped reading and the frames queued before
    /// the close can never be written; the reader is told, so the socket
    /// and its connection slots go, as ZooKeeper closes at once.
    #[tokio::test]
    async fn a_close_does_not_wait_on_a_client_that_does_not_read() {
        use crate::client_flow::{ConnFlow, Outgoing, ReplySender, ServerFlow, CLOSE_LINGER};
        let (_client, server_end) = tokio::io::duplex(1024);
        let (_rd, wr) = tokio::io::split(server_end);
        let flow = ConnFlow::new(&ServerFlow::new(0));
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let (closed_tx, closed_rx) = tokio::sync::oneshot::channel();
        let writer = tokio::spawn(super::write_loop(wr, rx, closed_tx, flow.clone()));
        let replies = ReplySender::new(tx, flow);
        for _ in 0..64 {
            replies.send(Outgoing::Frame(bytes::Bytes::from(vec![0u8; 1024])));
        }
        replies.send(Outgoing::Close);
        tokio::time::timeout(CLOSE_LINGER * 10, writer)
            .await
            .expect("the writer ended")
            .expect("the writer did not panic");
        closed_rx.await.expect("the reader is told to close");
    }

    /// `datadir.autocreate=false`: a missing store directory (a data disk
    /// that did not mount) stops the server with exit 3, as ZooKeeper's
    /// `FileTxnSnapLog` does for its `version-2`; once made, it opens.
    #[test]
    fn without_datadir_autocreate_a_missing_store_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = crate::config::Config::parse(
            &format!(
                "dataDir={}\nclientPort=2181\ndatadir.autocreate=false\n",
                dir.path().display()
            ),
            None,
        )
        .unwrap();
        let err = super::open_state(&cfg).err().expect("refused");
        assert!(
            format!("{err:#}").contains("automatic data directory creation is disabled"),
            "{err:#}"
        );
        assert_eq!(
            crate::exit_code::ExitCode::of(&err),
            crate::exit_code::ExitCode::UnableToAccessDataDir
        );
        assert!(!dir.path().join("zab").exists(), "nothing was made");
        std::fs::create_dir(dir.path().join("zab")).unwrap();
        assert!(super::open_state(&cfg).is_ok());
    }

    /// `db.autocreate=false`: an empty database is not trusted unless
    /// `dataDir/initialize` says to start it empty; that file is used up,
    /// and the database then holds its first snapshot and opens again.
    #[test]
    fn without_db_autocreate_an_empty_database_needs_the_initialize_file() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = crate::config::Config::parse(
            &format!(
                "dataDir={}\nclientPort=2181\ndb.autocreate=false\n",
                dir.path().display()
            ),
            None,
        )
        .unwrap();
        let err = super::open_state(&cfg).err().expect("refused");
        assert!(format!("{err:#}").contains("initialize"), "{err:#}");
        let initialize = dir.path().join("initialize");
        std::fs::write(&initialize, b"").unwrap();
        drop(super::open_state(&cfg).expect("trusted once"));
        assert!(!initialize.exists(), "the file is used up");
        assert!(super::open_state(&cfg).is_ok(), "no longer empty");
    }

    /// A new store where ZooKeeper left its data is refused until that data
    /// is imported (or moved away); ZooKeeper's other files are no reason.
    #[test]
    fn a_new_store_on_zookeepers_data_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = crate::config::Config::parse(
            &format!("dataDir={}\nclientPort=2181\n", dir.path().display()),
            None,
        )
        .unwrap();
        let version2 = dir.path().join("version-2");
        std::fs::create_dir(&version2).unwrap();
        std::fs::write(version2.join("acceptedEpoch"), "1").unwrap();
        assert!(super::refuse_unimported_zookeeper_data(&cfg).is_ok());
        std::fs::write(version2.join("log.100000001"), b"ZKLG").unwrap();
        let err = super::refuse_unimported_zookeeper_data(&cfg).unwrap_err();
        assert!(err.to_string().contains("--import-zookeeper"), "{err}");
        let err = super::open_state(&cfg).err().expect("refused");
        assert!(format!("{err:#}").contains("import it first"), "{err:#}");
        assert_eq!(
            crate::exit_code::ExitCode::of(&err),
            crate::exit_code::ExitCode::UnableToAccessDataDir
        );
        assert!(!dir.path().join("zab").exists(), "no store was made");
    }

    /// A snapshot writer that stops part-way closes the pipe as one that
    /// finished does: only the one that finished may end the stream, so a
    /// store never publishes a truncated snapshot as the newest.
    #[test]
    fn a_snapshot_stream_ends_cleanly_only_when_its_writer_finished() {
        use std::io::{Read, Write};
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;
        for finished in [false, true] {
            let (reader, mut writer) = std::io::pipe().unwrap();
            let flag = Arc::new(AtomicBool::new(false));
            let mut stream = super::WholeStream {
                inner: reader,
                finished: flag.clone(),
            };
            writer.write_all(b"part").unwrap();
            flag.store(finished, Ordering::Release);
            drop(writer);
            let mut got = Vec::new();
            let read = stream.read_to_end(&mut got);
            assert_eq!(got, b"part");
            assert_eq!(read.is_ok(), finished, "{read:?}");
        }
    }
}
