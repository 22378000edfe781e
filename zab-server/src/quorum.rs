//! The replicated server: ZooKeeper's `QuorumPeer.run` role loop
//! (LOOKING → LEADING / FOLLOWING / OBSERVING → LOOKING …) as one event
//! loop around the pure cores of `zab-election`, `zab-leader`,
//! `zab-learner` and the client [`Pipeline`].
//!
//! Everything that happens — client frames, election notifications,
//! learner and leader packets, log durability, the clock — arrives as a
//! `CoreMsg` on one channel and is handled in order by `Peer`, which
//! feeds the cores and carries out the actions they return. Clients are
//! served only while the server is in a role that serves (the leader once a
//! quorum acked NEWLEADER; a learner after UPTODATE); leaving a role closes
//! every client connection, as ZooKeeper does, and clients reconnect —
//! their sessions, which live in the replicated tree, survive.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use foldhash::{HashMap, HashMapExt};
use prost::Message;
use tokio::sync::mpsc;
use zab_election::{
    Election, ElectionTransport, Notification, Output, PeerAddr, PeerSecurity, Responder,
    ServerState,
};
use zab_leader::{
    CommittedLog, ConnId, HandlerState, Leader, LeaderAction, LeaderConfig, LeaderStart,
    LearnerKind,
};
use zab_learner::{
    Learner, LearnerAction, LearnerConfig, Phase as LearnerPhase, Role as LearnerRole, Timing,
};
use zab_store::Store;
use zab_tree::digest::{DigestComparison, DigestVerdict, ZxidDigest};
use zab_tree::session_tracker::SessionOwner;
use zab_tree::watch_manager::ConnectionId;
use zab_tree::DataTree;
use zab_wire::jute::op;
use zab_wire::proto::{PacketType, QuorumPacket, Txn};
use zab_wire::{Epoch, QuorumVerifier, ServerId, SessionId, Zxid};

use crate::client_flow::{Outgoing, ReplySender, ServerFlow, ServingRole};
use crate::config::Config;
use crate::durable_mark::DurableMark;
use crate::exit_code::ExitCode;
use crate::four_letter::{LeaderStatus, ServerMode};
use crate::held_clients::{HeldClients, Hold};
use crate::pipeline::{Action, Input, LifetimeFigures, Mode, Now, Pipeline, PipelineConfig};
use crate::quorum_transport::{self, LinkEvent, LinkId};
use crate::server::{
    elapsed_ms, now_ms, open_state, recover, spawn_periodic_snapshot, spawn_snapshot,
    start_autopurge, ClientListeners, CoreMsg,
};
use crate::snap_link::{ChunkCredit, ChunkSink, CHUNKS_IN_FLIGHT};
use crate::stage_trace::{self, Stage};
use crate::status;
use crate::store_txn_log::StoreTxnLog;

mod hosted_observers;
use hosted_observers::HostedObservers;

/// How often the event loop looks at the clock (election timers need
/// better than `tickTime / 2`).
const CLOCK_MS: u64 = 25;

/// A running replicated server.
pub struct QuorumServer {
    pub client_addr: SocketAddr,
    _purge: Option<zab_store::AutoPurge>,
    /// The admin server, when `admin.enableServer` (the default) and its
    /// port could be bound.
    pub admin: Option<crate::admin_server::AdminServer>,
    /// The Prometheus `/metrics` endpoint, when configured.
    pub metrics: Option<crate::admin_server::AdminServer>,
    core: mpsc::UnboundedSender<CoreMsg>,
    accept: tokio::task::JoinHandle<()>,
}

impl QuorumServer {
    pub async fn start(cfg: Config) -> anyhow::Result<QuorumServer> {
        let cfg = Arc::new(cfg);
        let me = cfg
            .my_id
            .context("myid is required in a replicated ensemble")?;
        let my_line = cfg
            .servers
            .get(&me)
            .with_context(|| format!("myid {me} has no server.{me} line"))?
            .clone();
        let verifier =
            QuorumVerifier::new(cfg.voters().map(|s| s.id), cfg.observers().map(|s| s.id));

        let (store, tree, recovery) = open_state(&cfg)?;
        let purge = start_autopurge(&store, &cfg);
        let epochs = store
            .recover_epochs(tree.last_zxid())
            .context("checking currentEpoch/acceptedEpoch against the data")?;
        tracing::info!(sid = %me, current = %epochs.current, accepted = %epochs.accepted, zxid = %tree.last_zxid(), "starting in quorum mode");

        let (tx, rx) = mpsc::unbounded_channel();

        let mut election_peers = BTreeMap::new();
        let mut quorum_addrs = BTreeMap::new();
        // Resolved at every dial, as ZooKeeper does (`PeerAddr`): a peer
        // whose name does not resolve yet is no reason not to start.
        for s in cfg.servers.values() {
            election_peers.insert(s.id, PeerAddr::new(&s.host, s.election_port));
            quorum_addrs.insert(s.id, PeerAddr::new(&s.host, s.quorum_port));
        }
        let election_listen = listen_addr(&cfg, &my_line.host, my_line.election_port)?;
        let tls = crate::tls::peer_tls(&cfg.quorum_tls).context("sslQuorum")?;
        let peer_security = PeerSecurity {
            tls: tls.clone().filter(|_| cfg.quorum_tls.enabled),
            unified: tls.filter(|_| cfg.quorum_tls.port_unification),
            sasl: cfg.quorum_sasl.clone(),
        };
        if let Some(tls) = peer_security.accepting_tls() {
            crate::tls::reload_peer_tls_on_change(tls, &cfg.quorum_tls);
        }
        let (election, mut notifications) = ElectionTransport::start_secured(
            me,
            bind_election_port(election_listen).await?,
            election_peers,
            peer_security.clone(),
        )
        .with_context(|| format!("election port {election_listen}"))?;
        let fwd = tx.clone();
        tokio::spawn(async move {
            while let Some(n) = notifications.recv().await {
                if fwd.send(CoreMsg::Election(n)).is_err() {
                    return;
                }
            }
        });

        let listeners = ClientListeners::bind(&cfg).await?;
        let client_addr = listeners.local_addr;
        let flow = listeners.flow.clone();

        let clock = tx.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_millis(CLOCK_MS));
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                every.tick().await;
                if clock.send(CoreMsg::Clock).is_err() {
                    return;
                }
            }
        });

        let peer = Peer {
            me,
            verifier,
            quorum_listen: listen_addr(&cfg, &my_line.host, my_line.quorum_port)?,
            quorum_addrs,
            peer_security,
            cfg: cfg.clone(),
            store,
            election,
            tx: tx.clone(),
            started_ms: now_ms(),
            logical_clock: 0,
            last_vote: None,
            responder: None,
            gen: 0,
            role: Role::Stopped,
            state: State::Idle(Box::new(tree)),
            writers: HashMap::new(),
            held: HeldClients::new(cfg.connect_hold_ms),
            durable: Arc::new(DurableMark::default()),
            durable_gen: 0,
            proposals: Vec::new(),
            now: None,
            last_tick_ms: 0,
            looking_since_ms: elapsed_ms(),
            provider: recovery.startup_metrics(),
            flow,
            next_observer_master: random_start(),
            lifetime: LifetimeFigures::default(),
            role_since_ms: None,
        };
        tokio::spawn(peer.run(rx));
        // A quorum member whose admin server cannot start serves without it
        // (`QuorumPeer.start`: "Problem starting AdminServer").
        let admin = match cfg.admin.enabled {
            true => match crate::admin_server::AdminServer::start(&cfg.admin, tx.clone()).await {
                Ok(a) => Some(a),
                Err(e) => {
                    tracing::warn!(
                        address = %cfg.admin.address,
                        port = cfg.admin.port,
                        error = %e,
                        "Problem starting AdminServer; serving without it"
                    );
                    None
                }
            },
            false => None,
        };
        let metrics = crate::server::start_metrics(&cfg, &tx).await?;
        let accept = listeners.spawn(&cfg, &tx);
        tracing::info!(%client_addr, "serving clients when in a serving role");
        Ok(QuorumServer {
            client_addr,
            _purge: purge,
            admin,
            metrics,
            core: tx,
            accept,
        })
    }

    pub async fn shutdown(self) {
        self.accept.abort();
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.core.send(CoreMsg::Shutdown(tx)).is_ok() {
            let _ = rx.await;
        }
    }
}

fn resolve(host: &str, port: u16) -> anyhow::Result<SocketAddr> {
    (host, port)
        .to_socket_addrs()
        .with_context(|| format!("resolving {host}:{port}"))?
        .next()
        .with_context(|| format!("{host}:{port} resolves to nothing"))
}

/// Binds the election port, trying three times a second apart, as
/// ZooKeeper's `QuorumCnxManager.Listener` does (ZOOKEEPER-3320: the port
/// of a server just restarted may still be held for a moment). A server
/// that cannot bind it could never take part in an election, and exits
/// with ZooKeeper's UNABLE_TO_BIND_QUORUM_PORT.
async fn bind_election_port(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    const TRIES: u32 = 3;
    let mut tried = 0;
    loop {
        match crate::listen::bind(addr) {
            Ok(listener) => return Ok(listener),
            Err(e) => {
                tried += 1;
                tracing::error!(%addr, error = %e, tried, "cannot bind the election port");
                if tried == TRIES {
                    return Err(e)
                        .with_context(|| format!("binding the election port {addr}"))
                        .context(ExitCode::UnableToBindQuorumPort);
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// The address to bind a quorum or election port on: this server's own
/// host, or every interface with `quorumListenOnAllIPs`.
fn listen_addr(cfg: &Config, host: &str, port: u16) -> anyhow::Result<SocketAddr> {
    if cfg.quorum_listen_on_all_ips {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port));
    }
    resolve(host, port)
}

enum Role {
    /// Before the first election, and after shutdown.
    Stopped,
    Looking(Box<Election>),
    Leading(Box<Leading>),
    Learning(Box<Learning>),
}

struct Leading {
    leader: Leader,
    links: HashMap<LinkId, LearnerLink>,
    listener: tokio::task::JoinHandle<()>,
    /// When a quorum got in sync and this leader began serving: `mntr`'s
    /// `zk_leader_uptime` counts from here, as ZooKeeper's
    /// (`Leader.startZkServer` sets `leaderStartTime`).
    established_ms: Option<i64>,
}

/// The leader's end of one learner's link.
struct LearnerLink {
    out: mpsc::UnboundedSender<QuorumPacket>,
    /// Dropped with this link: its socket closes (`LinkEvent::Opened`).
    _keep: tokio::sync::oneshot::Sender<()>,
    /// For the admin server's `observers` (ZooKeeper's `LearnerHandler`
    /// info): the peer's address, when the link opened, packets each way,
    /// REQUEST packets among those received, the last zxid sent.
    remote: Option<SocketAddr>,
    established_ms: i64,
    packets_sent: u64,
    packets_received: u64,
    requests: u64,
    last_zxid: i64,
    /// While a snapshot for this learner is serialized off the core: what
    /// the leader sends it meanwhile, held to go out after SNAP_END.
    held: Option<Vec<QuorumPacket>>,
    /// Set once the leader drops the link: stops a snapshot serializer
    /// waiting for the link to take its chunks.
    dropped: Arc<AtomicBool>,
}

impl Drop for LearnerLink {
    fn drop(&mut self) {
        self.dropped.store(true, Ordering::SeqCst);
    }
}

impl LearnerLink {
    fn new(
        out: mpsc::UnboundedSender<QuorumPacket>,
        remote: Option<SocketAddr>,
        keep: tokio::sync::oneshot::Sender<()>,
    ) -> LearnerLink {
        LearnerLink {
            out,
            _keep: keep,
            remote,
            established_ms: now_ms(),
            packets_sent: 0,
            packets_received: 0,
            requests: 0,
            last_zxid: -1,
            held: None,
            dropped: Arc::new(AtomicBool::new(false)),
        }
    }

    fn send(&mut self, packet: QuorumPacket) {
        match &mut self.held {
            Some(held) => held.push(packet),
            None => self.hand_over(packet),
        }
    }

    /// Gives `packet` to the link, counted as ZooKeeper's `LearnerHandler`
    /// counts what its sender thread writes.
    fn hand_over(&mut self, packet: QuorumPacket) {
        self.packets_sent += 1;
        if packet.zxid > 0 {
            self.last_zxid = packet.zxid;
        }
        let _ = self.out.send(packet);
    }

    fn received(&mut self, packets: &[QuorumPacket]) {
        self.packets_received += packets.len() as u64;
        let request = PacketType::Request as i32;
        self.requests += packets.iter().filter(|p| p.r#type == request).count() as u64;
    }

    fn info(&self, sid: ServerId) -> crate::admin::LearnerHandlerInfo {
        let held = self.held.as_deref().unwrap_or_default();
        crate::admin::LearnerHandlerInfo {
            remote_socket_address: self
                .remote
                .map_or_else(|| "<null>".to_owned(), |a| format!("/{a}")),
            sid,
            established_ms: self.established_ms,
            queued_packets: held.len() as u64,
            // `LearnerHandler.packetSize`: int, long and two references,
            // and the data.
            queued_packets_size: held.iter().map(|p| 28 + p.data.len() as u64).sum(),
            packets_received: self.packets_received,
            packets_sent: self.packets_sent,
            requests: self.requests,
            last_zxid: self.last_zxid,
        }
    }
}

struct Learning {
    role: LearnerRole,
    /// The server learned from: the leader, or for an observer with
    /// `observerMasterPort` the follower hosting it (ZooKeeper's observer
    /// records its learner master as its leader, `setLeaderAddressAndId`).
    leader_sid: ServerId,
    learner: Option<Learner>,
    out: Option<mpsc::UnboundedSender<QuorumPacket>>,
    link_task: tokio::task::JoinHandle<()>,
    /// A follower's observers, with `observerMasterPort`, once it is in sync.
    observers: Option<Box<HostedObservers>>,
    /// The leader's tree digests (from its PINGs) against this tree's.
    /// Per role: a new leader's history may differ from the last one's
    /// above what it truncates.
    digests: DigestComparison,
}

/// Where the replicated tree lives: idle while no role serves clients
/// (election, sync), handed to a [`Pipeline`] while one does.
enum State {
    Idle(Box<DataTree>),
    Serving(Box<Pipeline>),
}

impl State {
    fn tree(&self) -> &DataTree {
        match self {
            State::Idle(t) => t,
            State::Serving(p) => p.tree(),
        }
    }

    fn is_serving(&self) -> bool {
        matches!(self, State::Serving(_))
    }

    /// The serving pipeline's mode.
    fn mode(&self) -> Option<Mode> {
        match self {
            State::Serving(p) => Some(p.mode()),
            State::Idle(_) => None,
        }
    }

    fn pipeline(&mut self) -> Option<&mut Pipeline> {
        match self {
            State::Serving(p) => Some(p),
            State::Idle(_) => None,
        }
    }

    /// The tree, if no pipeline owns it (sync may change it directly).
    fn idle_tree(&mut self) -> Option<&mut DataTree> {
        match self {
            State::Idle(t) => Some(t),
            State::Serving(_) => None,
        }
    }

    /// TRUNC / SNAP rebuilt the tree while syncing.
    fn replace_idle_tree(&mut self, tree: DataTree) {
        if let State::Idle(t) = self {
            **t = tree;
        }
    }

    /// Hands the tree to a pipeline (no-op when one serves already).
    fn start_serving(&mut self, make: impl FnOnce(DataTree) -> Pipeline) {
        if self.is_serving() {
            return;
        }
        if let State::Idle(tree) = std::mem::replace(self, State::Idle(Box::default())) {
            *self = State::Serving(Box::new(make(*tree)));
        }
    }

    /// Takes the tree back from the pipeline, and the figures it counted
    /// for the process's life.
    fn stop_serving(&mut self) -> Option<LifetimeFigures> {
        if !self.is_serving() {
            return None;
        }
        match std::mem::replace(self, State::Idle(Box::default())) {
            State::Serving(p) => {
                let (tree, figures) = p.into_parts();
                *self = State::Idle(Box::new(tree));
                Some(figures)
            }
            idle => {
                *self = idle;
                None
            }
        }
    }
}

struct Peer {
    me: ServerId,
    verifier: QuorumVerifier,
    quorum_listen: SocketAddr,
    quorum_addrs: BTreeMap<ServerId, PeerAddr>,
    /// TLS (`sslQuorum`) and SASL (`quorum.auth.*`) on the leader ⇄
    /// learner links.
    peer_security: PeerSecurity,
    cfg: Arc<Config>,
    store: Arc<Store>,
    election: ElectionTransport,
    tx: mpsc::UnboundedSender<CoreMsg>,
    started_ms: i64,
    logical_clock: u64,
    last_vote: Option<zab_election::Vote>,
    responder: Option<Responder>,
    /// Bumped at every role change, so that late messages of an old role
    /// (durability callbacks, link events) are recognised and dropped.
    gen: u64,
    role: Role,
    /// The replicated tree, idle or serving clients.
    state: State,
    writers: HashMap<ConnectionId, ReplySender>,
    /// Clients that connected while not serving, waiting for it.
    held: HeldClients,
    /// What the log made durable for the role `durable_gen`.
    durable: Arc<DurableMark>,
    durable_gen: u64,
    last_tick_ms: i64,
    /// When this server last started LOOKING: read-only mode starts a
    /// grace period after it (`readonlymode.enabled`).
    looking_since_ms: i64,
    /// ZooKeeper's quorum counters (`looking_count`, `election_time`,
    /// `proposal_count`, `diff_count`, `snap_count`); `srst` resets them.
    provider: crate::four_letter::ProviderMetrics,
    /// The leader's proposals of the message being handled, in zxid order:
    /// logged as one append when it is done (`append_proposals`), so the
    /// writes of a batch a follower forwarded take one trip through the
    /// log's queue and one durability report.
    proposals: Vec<(Zxid, Bytes)>,
    /// The clocks as first read while handling the current message (see
    /// `now`).
    now: Option<Now>,
    /// The client connections' shared flow control: its count answers
    /// `mntr`, its limit follows the role served (see `serve_clients`).
    flow: Arc<ServerFlow>,
    /// An observer's turn through the voters for its observer master
    /// (`observerMasterPort`); starts at random.
    next_observer_master: usize,
    /// What the metrics count across roles, between two of them.
    lifetime: LifetimeFigures,
    /// When this server began leading or following (monotonic), which
    /// `zk_uptime` counts from; `None` while looking.
    role_since_ms: Option<i64>,
}

impl Peer {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<CoreMsg>) {
        self.look();
        while let Some(msg) = rx.recv().await {
            if let CoreMsg::Shutdown(done) = msg {
                self.leave_role("shutting down");
                self.role = Role::Stopped;
                let _ = done.send(());
                return;
            }
            self.now = None;
            let started = stage_trace::ENABLED.then(std::time::Instant::now);
            self.handle(msg);
            self.append_proposals();
            if let Some(started) = started {
                stage_trace::record(Stage::Step, started.elapsed().as_nanos() as i64, 0);
            }
        }
    }

    fn handle(&mut self, msg: CoreMsg) {
        match msg {
            CoreMsg::Input(input) => self.client_input(input),
            CoreMsg::Inputs(inputs) => {
                for input in inputs {
                    self.client_input(input);
                }
            }
            CoreMsg::Register { conn, out } => {
                self.writers.insert(conn, out);
            }
            CoreMsg::FourLetter { word, asker, reply } => {
                let takes_clients = self.takes_clients();
                let mut source = self.status_source();
                if !takes_clients {
                    // Its admin server still serves (ZooKeeper sets it up
                    // either way).
                    source.pipeline = None;
                }
                let serving = source.pipeline.is_some();
                let _ = reply.send(status::four_letter(word, asker, source));
                // A server that does not serve answers `srst` that it does
                // not, and resets nothing (ZooKeeper's `ZK_NOT_SERVING`).
                if word == zab_wire::jute::frame::FourLetterWord::Srst && serving {
                    self.provider = Default::default();
                }
            }
            CoreMsg::Admin { request, reply } => {
                let source = self.status_source();
                let serving = source.pipeline.is_some();
                let _ = reply.send(status::admin(&request, source));
                if status::resets_stats(&request) && serving {
                    self.provider = Default::default();
                }
            }
            CoreMsg::LogFailed(e) => {
                tracing::error!(error = %e, "txn log write failed; stopping");
                ExitCode::UnexpectedError.exit();
            }
            CoreMsg::Shutdown(_) => {}
            CoreMsg::Durable { gen } if gen == self.gen => {
                if let Some(zxid) = self.durable.take() {
                    self.on_durable(zxid);
                }
            }
            CoreMsg::Durable { .. } => {}
            CoreMsg::Election(n) => self.on_notification(n),
            CoreMsg::Link { gen, event } if gen == self.gen => self.on_link(event),
            CoreMsg::Link { .. } => {}
            CoreMsg::SnapshotQueued {
                gen,
                link,
                zxid,
                result,
            } if gen == self.gen => self.on_snapshot_queued(link, zxid, result),
            CoreMsg::SnapshotQueued { .. } => {}
            CoreMsg::LeaderLinkUp { gen, out } if gen == self.gen => self.on_leader_link_up(out),
            CoreMsg::LeaderPackets { gen, packets } if gen == self.gen => {
                self.on_leader_packets(packets)
            }
            CoreMsg::LeaderLinkDown { gen, reason } if gen == self.gen => {
                self.leave_role(&format!("lost the leader: {reason}"));
                self.look();
            }
            CoreMsg::LeaderLinkUp { .. }
            | CoreMsg::LeaderPackets { .. }
            | CoreMsg::LeaderLinkDown { .. } => {}
            CoreMsg::Clock => self.on_clock(),
        }
    }

    fn server_mode(&self) -> ServerMode {
        if self.state.mode() == Some(Mode::ReadOnly) {
            return ServerMode::ReadOnly;
        }
        match &self.role {
            Role::Leading(_) => ServerMode::Leader,
            Role::Learning(l) if l.role == LearnerRole::Observer => ServerMode::Observer,
            _ => ServerMode::Follower,
        }
    }

    /// What the status answers (four-letter words, admin commands,
    /// `/metrics`) read of this server.
    fn status_source(&mut self) -> status::StatusSource<'_> {
        let mode = self.server_mode();
        let quorum = self.quorum_status();
        status::StatusSource {
            pipeline: self.state.pipeline(),
            requests_in_process: self.flow.in_process(),
            mode,
            quorum,
            cfg: &self.cfg,
            store: &self.store,
            started_ms: self.started_ms,
        }
    }

    fn quorum_status(&self) -> status::QuorumStatus {
        let phase = if self.state.is_serving() {
            "broadcast"
        } else {
            "synchronization"
        };
        match &self.role {
            Role::Leading(l) => {
                let learners = l.leader.learners();
                let synced = |kind| {
                    learners
                        .iter()
                        .filter(|s| s.kind == Some(kind) && s.state == HandlerState::Broadcasting)
                        .count() as u64
                };
                status::QuorumStatus {
                    zab_state: phase,
                    provider: self.provider,
                    leader_id: Some(self.me),
                    observers: learners
                        .iter()
                        .filter(|s| {
                            s.kind == Some(LearnerKind::Observer)
                                && s.state == HandlerState::Broadcasting
                        })
                        .filter_map(|s| Some(l.links.get(&LinkId(s.conn.0))?.info(s.sid?)))
                        .collect(),
                    peer_state: Some(format!("leading - {phase}")),
                    leader: Some(LeaderStatus {
                        leader_uptime_ms: l.established_ms.map_or(0, |t| now_ms() - t),
                        learners: learners.len() as u64,
                        synced_followers: synced(LearnerKind::Follower),
                        synced_observers: synced(LearnerKind::Observer),
                        pending_syncs: l.leader.pending_syncs() as u64,
                        ..LeaderStatus::default()
                    }),
                    observer_master: None,
                    hosted_observers: None,
                }
            }
            Role::Learning(l) => status::QuorumStatus {
                zab_state: phase,
                provider: self.provider,
                peer_state: Some(format!(
                    "{} - {phase}",
                    if l.role == LearnerRole::Observer {
                        "observing"
                    } else {
                        "following"
                    }
                )),
                leader: None,
                observer_master: (l.role == LearnerRole::Observer).then_some(l.leader_sid),
                leader_id: Some(l.leader_sid),
                observers: l.observers.as_ref().map(|h| h.synced()).unwrap_or_default(),
                hosted_observers: l
                    .observers
                    .as_ref()
                    .map(|h| h.master.synced_observers() as u64),
            },
            _ => status::QuorumStatus {
                peer_state: Some("looking - election".into()),
                zab_state: "election",
                provider: self.provider,
                ..status::QuorumStatus::default()
            },
        }
    }

    fn pipeline_config(&self) -> PipelineConfig {
        let mut c = PipelineConfig::from_config(&self.cfg);
        c.server_id = self.me;
        c.periodic_snapshots = self.cfg.sync_enabled || !self.is_observer();
        c
    }

    /// Whether this server observes a leader (and so may skip its log,
    /// `syncEnabled=false`).
    fn is_observer(&self) -> bool {
        matches!(&self.role, Role::Learning(l) if l.role == LearnerRole::Observer)
    }

    // ------------------------------------------------------------ roles

    /// Closes client connections, stops the role's links, takes the tree
    /// back from the pipeline.
    fn leave_role(&mut self, reason: &str) {
        // The old role's proposals reach the log before anything else.
        self.append_proposals();
        self.gen += 1;
        let epoch_due = match &self.role {
            Role::Learning(l) => l.learner.as_ref().and_then(Learner::epoch_due_after_drain),
            _ => None,
        };
        match std::mem::replace(&mut self.role, Role::Stopped) {
            Role::Leading(l) => {
                l.listener.abort();
                tracing::info!(sid = %self.me, reason, "stopped leading");
            }
            Role::Learning(l) => {
                l.link_task.abort();
                tracing::info!(sid = %self.me, reason, "stopped following");
            }
            Role::Looking(_) | Role::Stopped => {}
        }
        self.stop_serving();
        // Clients first, as `Learner.shutdown` and `Leader.shutdown` close
        // every connection before the server waits on its disk: a log
        // that stalls must not leave them without replies or pings.
        self.close_unheld_clients();
        self.fast_forward();
        // Left between NEWLEADER and its ACK: the drain above made the
        // sync's txns durable, so their epoch follows, as the ACK would
        // have written it (`Learner::epoch_due_after_drain`).
        if let Some(epoch) = epoch_due {
            tracing::info!(%epoch, "the NEWLEADER sync is durable: writing its currentEpoch");
            if let Err(err) = self.store.set_current_epoch(epoch) {
                tracing::error!(error = %err, "cannot persist currentEpoch");
                ExitCode::UnexpectedError.exit();
            }
        }
        self.responder = None;
    }

    /// Applies the txns this server logged but has not applied (proposals
    /// it acked that never committed under the old leader): ZooKeeper's
    /// `fastForwardDataBase` when a role ends. They are part of this
    /// server's history — its vote offers them, and as the next leader it
    /// commits them in the new epoch (reference F.3) — and a sync (DIFF,
    /// TRUNC) starts from the last *logged* zxid, which the tree must hold.
    fn fast_forward(&mut self) {
        // First let the appends still queued for group commit land: a
        // proposal this server acked (or is about to report in its vote)
        // must be in the tree too. ZooKeeper drains its SyncRequestProcessor
        // before fastForwardDataBase.
        self.drain_log();
        let Some(tree) = self.state.idle_tree() else {
            return;
        };
        let from = tree.last_zxid().next();
        let entries = match self.store.log().read_from(from) {
            Ok(iter) => iter,
            Err(e) => {
                tracing::error!(error = %e, "reading the txn log to fast-forward; stopping");
                ExitCode::UnexpectedError.exit();
            }
        };
        let mut applied = 0u64;
        for entry in entries {
            match entry
                .map_err(anyhow::Error::from)
                .and_then(|(zxid, bytes)| {
                    Txn::decode(bytes).with_context(|| format!("decoding logged txn {zxid}"))
                }) {
                Ok(txn) => {
                    tree.apply(&txn);
                    applied += 1;
                }
                Err(e) => {
                    tracing::error!(error = %e, "fast-forwarding from the txn log; stopping");
                    ExitCode::UnexpectedError.exit();
                }
            }
        }
        if applied > 0 {
            tracing::info!(applied, zxid = %tree.last_zxid(), "applied logged txns that had not been committed yet");
        }
    }

    /// Waits until every append queued so far is durable, and so visible
    /// to the log's readers (zab-store shows a txn only once it is
    /// durable). An empty batch is a barrier.
    fn drain_log(&self) {
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        self.store.log().append_batch(Vec::new(), move |r| {
            let _ = done_tx.send(r);
        });
        match crate::server::blocking(|| done_rx.recv_timeout(Duration::from_secs(60))) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::error!(error = %e, "txn log failed while draining; stopping");
                ExitCode::UnexpectedError.exit();
            }
            Err(e) => {
                tracing::error!(error = %e, "txn log did not drain; stopping");
                ExitCode::UnexpectedError.exit();
            }
        }
    }

    /// Starts an election round (ZooKeeper's `lookForLeader`).
    fn look(&mut self) {
        self.gen += 1;
        let last_logged = self
            .store
            .log()
            .last_zxid()
            .max(self.state.tree().last_zxid());
        let current = self
            .store
            .current_epoch()
            .ok()
            .flatten()
            .unwrap_or(Epoch(0));
        let (mut election, outputs) = Election::new(
            self.me,
            self.verifier.clone(),
            last_logged,
            current,
            self.logical_clock,
            elapsed_ms() as u64,
        );
        if let Some(v) = self.last_vote {
            election.set_current_vote(v);
        }
        tracing::info!(sid = %self.me, clock = election.logical_clock(), %last_logged, "LOOKING");
        self.looking_since_ms = elapsed_ms();
        self.provider.looking_count += 1;
        self.role = Role::Looking(Box::new(election));
        self.role_since_ms = None;
        self.election_outputs(outputs);
    }

    fn on_notification(&mut self, n: Notification) {
        match &mut self.role {
            Role::Looking(e) => {
                let mut out = e.on_notification(elapsed_ms() as u64, n);
                let transport = &self.election;
                out.extend(e.decide_if_all_reachable_agree(|s| transport.may_still_vote(s)));
                self.election_outputs(out);
            }
            _ => {
                let awaiting_quorum = self.awaiting_quorum();
                let Some(r) = self.responder.as_mut() else {
                    return;
                };
                if let Some(reply) = r.on_notification(&n) {
                    self.election.send(n.sender, reply);
                }
                if awaiting_quorum && r.lost_quorum_after(&n) {
                    // See `Responder::lost_quorum_after`: without this the
                    // role would wait out initLimit (a leader) or its
                    // connect attempts (a learner) for a quorum that went
                    // to a better vote.
                    let reason = format!(
                        "{} now backs a better vote than the one this role was elected on",
                        n.sender
                    );
                    self.leave_role(&reason);
                    self.look();
                }
            }
        }
    }

    /// Whether the role is still waiting for the quorum its election
    /// counted on: a leader before a quorum has reported its epoch, a
    /// learner its leader has not answered yet (a leader answers
    /// FOLLOWERINFO only once a quorum has registered).
    fn awaiting_quorum(&self) -> bool {
        match &self.role {
            Role::Leading(l) => l.leader.is_gathering_quorum(),
            Role::Learning(l) => l
                .learner
                .as_ref()
                .is_none_or(|x| x.phase() == LearnerPhase::Registering),
            Role::Looking(_) | Role::Stopped => false,
        }
    }

    fn election_outputs(&mut self, outputs: Vec<Output>) {
        for o in outputs {
            match o {
                Output::Send { to, n } => self.election.send(to, n),
                Output::Decided { state, vote } => {
                    let Role::Looking(e) = &self.role else { return };
                    self.logical_clock = e.logical_clock();
                    self.responder = e.responder().cloned().or_else(|| {
                        Some(Responder::new(
                            self.me,
                            self.verifier.clone(),
                            state,
                            vote,
                            0,
                        ))
                    });
                    self.last_vote = Some(vote);
                    tracing::info!(sid = %self.me, ?state, leader = %vote.leader, "election decided");
                    let took = (elapsed_ms() - self.looking_since_ms).max(0) as u64;
                    self.provider.election_time.record(took);
                    self.stop_read_only();
                    match state {
                        ServerState::Leading => self.lead(),
                        ServerState::Following => self.follow(vote.leader, LearnerRole::Follower),
                        ServerState::Observing => self.follow(vote.leader, LearnerRole::Observer),
                        ServerState::Looking => self.look(),
                    }
                    return;
                }
            }
        }
    }

    fn lead(&mut self) {
        self.gen += 1;
        let gen = self.gen;
        let last_processed = self.state.tree().last_zxid();
        let epochs = match (self.store.accepted_epoch(), self.store.current_epoch()) {
            (Ok(a), Ok(c)) => (a.unwrap_or(Epoch(0)), c.unwrap_or(Epoch(0))),
            _ => {
                tracing::error!("cannot read epochs; looking again");
                return self.look();
            }
        };
        let window = self.cfg.commit_log_count.max(500) as usize;
        let committed = committed_window(&self.store, last_processed, window);
        let snapshot_size = newest_snapshot_size(&self.store);
        let lc = self.learner_master_config();
        let start = LeaderStart {
            accepted_epoch: epochs.0,
            current_epoch: epochs.1,
            last_processed,
            committed,
            txn_log: Box::new(StoreTxnLog::new(self.store.log())),
            snapshot_size,
        };
        let (leader, actions) = Leader::start(lc, start, elapsed_ms() as u64);
        // Link events go straight to the core, tagged with this role.
        let to_core = self.tx.clone();
        let events = move |event| to_core.send(CoreMsg::Link { gen, event }).is_ok();
        let listen = self.quorum_listen;
        let max_message = quorum_transport::max_message_bytes(self.cfg.jute_max_buffer);
        let fail = self.tx.clone();
        let security = self.peer_security.clone();
        let listener = tokio::spawn(async move {
            match quorum_transport::listen(listen, events, max_message, &security).await {
                // Aborting this task drops the server and frees the port.
                Ok(server) => server.await,
                Err(e) => {
                    tracing::error!(%listen, error = %e, "cannot listen for learners");
                    let _ = fail.send(CoreMsg::LeaderLinkDown {
                        gen,
                        reason: format!("quorum port {listen}: {e}"),
                    });
                }
            }
        });
        self.role_since_ms = Some(elapsed_ms());
        self.role = Role::Leading(Box::new(Leading {
            leader,
            links: HashMap::new(),
            listener,
            established_ms: None,
        }));
        self.leader_actions(actions);
    }

    /// The settings a master of learners runs with, as a leader or as a
    /// follower hosting observers.
    fn learner_master_config(&self) -> LeaderConfig {
        let mut lc = LeaderConfig::new(
            self.me,
            self.verifier.clone(),
            self.cfg.tick_time_ms as u64,
            self.cfg.init_limit as u32,
            self.cfg.sync_limit as u32,
        );
        lc.snapshot_size_factor = self.cfg.snapshot_size_factor;
        lc.membership = Bytes::from(self.cfg.membership_text());
        lc
    }

    fn follow(&mut self, leader_sid: ServerId, role: LearnerRole) {
        self.gen += 1;
        let gen = self.gen;
        let master = match role {
            LearnerRole::Observer => self.next_observer_master(),
            LearnerRole::Follower => None,
        };
        let (learn_from, addr, limit) = match master {
            Some((sid, addr)) => {
                let limit = self.cfg.leader_connect_limit();
                (sid, addr, limit.min(hosted_observers::MASTER_CONNECT_LIMIT))
            }
            None => {
                let Some(addr) = self.quorum_addrs.get(&leader_sid).cloned() else {
                    tracing::error!(%leader_sid, "elected leader has no server line; looking again");
                    return self.look();
                };
                (leader_sid, addr, self.cfg.leader_connect_limit())
            }
        };
        let tx = self.tx.clone();
        let security = self.peer_security.clone();
        let max_message = quorum_transport::max_message_bytes(self.cfg.jute_max_buffer);
        // ZooKeeper retries every 100 ms within initLimit. The elected
        // leader binds its quorum port only once it has decided, usually a
        // moment after its followers do, so zab retries sooner at first
        // (10 ms, doubling up to 100 ms): a refused first attempt then costs
        // ~10 ms of failover instead of 100.
        let shown = addr.to_string();
        let link_task = tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + limit;
            let mut last_err = String::new();
            let mut pause = Duration::from_millis(10);
            for _ in 0..60 {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                if left.is_zero() {
                    break;
                }
                // Resolved for each attempt: the leader's name may point
                // elsewhere than when this server started.
                let resolved = match addr.resolve().await {
                    Ok(resolved) => resolved,
                    Err(e) => {
                        last_err = e.to_string();
                        tokio::time::sleep(pause).await;
                        pause = (pause * 2).min(Duration::from_millis(100));
                        continue;
                    }
                };
                match quorum_transport::connect(
                    learn_from,
                    &addr.host,
                    resolved,
                    left,
                    max_message,
                    &security,
                )
                .await
                {
                    Ok(mut link) => {
                        if tx
                            .send(CoreMsg::LeaderLinkUp { gen, out: link.out })
                            .is_err()
                        {
                            return;
                        }
                        let reason = loop {
                            match link.inbound.recv_batch().await {
                                Ok(packets) => {
                                    if tx.send(CoreMsg::LeaderPackets { gen, packets }).is_err() {
                                        return;
                                    }
                                }
                                Err(reason) => break reason,
                            }
                        };
                        let _ = tx.send(CoreMsg::LeaderLinkDown { gen, reason });
                        return;
                    }
                    Err(e) => {
                        last_err = e.to_string();
                        tokio::time::sleep(pause).await;
                        pause = (pause * 2).min(Duration::from_millis(100));
                    }
                }
            }
            let _ = tx.send(CoreMsg::LeaderLinkDown {
                gen,
                reason: format!("cannot connect to {addr}: {last_err}"),
            });
        });
        tracing::info!(sid = %self.me, %leader_sid, %learn_from, addr = %shown, ?role, "following");
        self.role_since_ms = Some(elapsed_ms());
        self.role = Role::Learning(Box::new(Learning {
            role,
            leader_sid: learn_from,
            learner: None,
            out: None,
            link_task,
            observers: None,
            digests: DigestComparison::default(),
        }));
    }

    // ------------------------------------------------------------ leader

    fn on_link(&mut self, event: LinkEvent) {
        if matches!(self.role, Role::Learning(_)) {
            return self.on_observer_link(event);
        }
        let Role::Leading(l) = &mut self.role else {
            return;
        };
        let actions = match event {
            LinkEvent::Opened {
                link,
                out,
                remote,
                keep,
            } => {
                // DIFF or SNAP weighs the log against the newest snapshot
                // as it is when the learner syncs (ZooKeeper reads its size
                // for every sync), not as it was when this server began
                // leading: a leader that started before its first snapshot
                // had a limit of 0, "unlimited", for its whole term, and
                // read its entire log into memory for each far-behind
                // learner.
                l.leader
                    .set_snapshot_size(newest_snapshot_size(&self.store));
                l.links.insert(link, LearnerLink::new(out, remote, keep));
                l.leader.on_learner_connected(ConnId(link.0))
            }
            LinkEvent::Packets { link, packets } => {
                // Each packet's actions before the next packet: as if they
                // had come one by one, but in one step of the core, so the
                // writes forwarded in one batch are logged as one append.
                if let Some(counted) = l.links.get_mut(&link) {
                    counted.received(&packets);
                }
                for packet in packets {
                    if packet.r#type == PacketType::Ack as i32 {
                        stage_trace::record(Stage::AckHandled, link.0 as i64, packet.zxid);
                    }
                    let Role::Leading(l) = &mut self.role else {
                        return;
                    };
                    let actions = l.leader.on_packet(ConnId(link.0), packet);
                    self.leader_actions(actions);
                }
                return;
            }
            LinkEvent::Closed { link } => {
                l.links.remove(&link);
                l.leader.on_learner_disconnected(ConnId(link.0))
            }
        };
        self.leader_actions(actions);
    }

    /// A learner's snapshot is on its stream (or failed to be): release
    /// what was held behind it.
    fn on_snapshot_queued(&mut self, id: LinkId, zxid: Zxid, result: Result<u64, String>) {
        let conn = ConnId(id.0);
        let sent = result.is_ok();
        let links = match &mut self.role {
            Role::Leading(l) => {
                if sent {
                    l.leader.on_snapshot_sent(conn);
                }
                &mut l.links
            }
            Role::Learning(l) => match l.observers.as_deref_mut() {
                Some(h) => {
                    if sent {
                        h.master.on_snapshot_sent(conn);
                    }
                    &mut h.links
                }
                None => return,
            },
            _ => return,
        };
        match result {
            Ok(bytes) => {
                tracing::info!(conn = id.0, %zxid, bytes, "sent snapshot");
                if let Some(link) = links.get_mut(&id) {
                    for packet in link.held.take().unwrap_or_default() {
                        link.hand_over(packet);
                    }
                }
            }
            Err(e) => {
                // No SNAP_END: the learner must not take a torn snapshot;
                // dropping the link ends its stream.
                tracing::error!(conn = id.0, error = %e, "streaming a snapshot to a learner");
                links.remove(&id);
            }
        }
    }

    fn leader_actions(&mut self, actions: Vec<LeaderAction>) {
        let mut queue: std::collections::VecDeque<LeaderAction> = actions.into();
        while let Some(a) = queue.pop_front() {
            let Role::Leading(l) = &mut self.role else {
                return;
            };
            match a {
                LeaderAction::Send { conn, packet } => {
                    if crate::status::is_diff_sync(&packet) {
                        self.provider.diff_count += 1;
                    }
                    if let Some(link) = l.links.get_mut(&LinkId(conn.0)) {
                        link.send(packet);
                    }
                }
                LeaderAction::SendSnapshot {
                    conn,
                    zxid,
                    applied_through,
                } => {
                    // The snapshot is the tree as it is now, which must be
                    // exactly what the core reported applied (zab-leader's
                    // contract): a learner would otherwise install it as
                    // `zxid` holding other txns. Drop the link rather than
                    // send it; the learner reconnects and syncs again.
                    let at = self.state.tree().last_zxid();
                    if at != applied_through {
                        tracing::error!(conn = conn.0, %at, %applied_through, "the tree is not at the applied zxid; not sending a snapshot");
                        l.links.remove(&LinkId(conn.0));
                        queue.extend(l.leader.on_learner_disconnected(conn));
                        continue;
                    }
                    self.provider.snap_count += 1;
                    // The copy-on-write tree makes taking the snapshot O(1);
                    // it is serialized on a blocking thread, chunk by chunk
                    // onto the learner's stream as fast as the link takes
                    // them (`snap_link`; at 1M znodes serializing takes
                    // ≈ 0.5 s the core would otherwise stall for; ZooKeeper
                    // does it in the learner's LearnerHandler thread). What
                    // the leader sends this learner meanwhile is held and
                    // follows SNAP_END.
                    let id = LinkId(conn.0);
                    let Some(link) = l.links.get_mut(&id) else {
                        continue;
                    };
                    let snap = self.state.tree().snapshot();
                    stream_snapshot(link, id, zxid, snap, self.tx.clone(), self.gen);
                }
                LeaderAction::PersistAcceptedEpoch(e) => {
                    if let Err(err) = self.store.set_accepted_epoch(e) {
                        tracing::error!(error = %err, "cannot persist acceptedEpoch");
                        ExitCode::UnexpectedError.exit();
                    }
                }
                LeaderAction::PersistCurrentEpoch(e) => {
                    if let Err(err) = self.store.set_current_epoch(e) {
                        tracing::error!(error = %err, "cannot persist currentEpoch");
                        ExitCode::UnexpectedError.exit();
                    }
                }
                LeaderAction::Established { epoch } => {
                    tracing::info!(sid = %self.me, %epoch, "LEADING: a quorum is in sync");
                    if let Some(r) = self.responder.as_mut() {
                        r.set_peer_epoch(epoch);
                    }
                    if let Role::Leading(l) = &mut self.role {
                        l.established_ms.get_or_insert_with(now_ms);
                    }
                    // ZooKeeper's `Leader.lead` takes a snapshot as it
                    // starts (`loadData`). zab takes it here instead, once
                    // a quorum holds the leader's history: before that the
                    // tree may hold txns only this server logged, which a
                    // leader elected without it would truncate, and a
                    // snapshot holding them would leave this server unable
                    // to truncate below it at every restart (ZooKeeper
                    // reloads such a snapshot and keeps the txns,
                    // ZOOKEEPER-1549). Written in the background from the
                    // tree's copy, so serving waits for none of it.
                    spawn_snapshot(self.store.clone(), self.state.tree().snapshot());
                    self.serve_clients(Mode::Leader { epoch });
                    if self.takes_clients() {
                        self.release_held_clients();
                    } else {
                        for conn in self.held.drop_all() {
                            self.close_client(conn);
                        }
                    }
                }
                LeaderAction::Commit { zxid } => {
                    self.provider.commit_count += 1;
                    if stage_trace::sampled(zxid) {
                        stage_trace::record(Stage::Committed, zxid.0, 0);
                    }
                    self.pipeline_input(Input::Durable { zxid });
                    if let Role::Leading(l) = &mut self.role {
                        l.leader.on_applied(zxid);
                    }
                }
                LeaderAction::ForwardedRequest {
                    conn,
                    from: learner,
                    request,
                    auth,
                } => {
                    let from = SessionOwner::Learner(conn.0);
                    if request.op == op::SYNC {
                        let more = l.leader.sync_request(conn, request);
                        queue.extend(more);
                    } else {
                        let auth = auth
                            .into_iter()
                            .map(|id| zab_wire::jute::Id {
                                scheme: id.scheme,
                                id: id.id,
                            })
                            .collect();
                        // A follower relaying for its observers names the
                        // observer, whose client the txn answers.
                        let origin = match request.origin {
                            0 => learner,
                            sid => ServerId(sid),
                        };
                        self.pipeline_input(Input::Forwarded {
                            request,
                            auth,
                            from,
                            origin,
                        });
                    }
                }
                LeaderAction::Revalidate {
                    conn,
                    session_id,
                    timeout,
                    ..
                } => {
                    let valid = self.state.pipeline().is_some_and(|p| {
                        p.revalidate(session_id, timeout, SessionOwner::Learner(conn.0))
                    });
                    if let Role::Leading(l) = &mut self.role {
                        queue.extend(l.leader.revalidate_reply(conn, session_id, valid));
                    }
                }
                LeaderAction::TouchSessions { sessions, .. } => {
                    if let Some(p) = self.state.pipeline() {
                        p.touch_sessions(crate::server::now(), &sessions);
                    }
                }
                LeaderAction::CloseLearner { conn, reason } => {
                    tracing::info!(%conn, reason, "dropping learner");
                    l.links.remove(&LinkId(conn.0));
                }
                LeaderAction::StepDown { reason } => {
                    self.leave_role(&reason);
                    self.look();
                    return;
                }
            }
        }
    }

    // ------------------------------------------------------------ learner

    fn on_leader_link_up(&mut self, out: mpsc::UnboundedSender<QuorumPacket>) {
        let (current, accepted) = match (self.store.current_epoch(), self.store.accepted_epoch()) {
            (Ok(c), Ok(a)) => (c.unwrap_or(Epoch(0)), a.unwrap_or(Epoch(0))),
            _ => {
                self.leave_role("cannot read epochs");
                return self.look();
            }
        };
        let last_logged = self
            .store
            .log()
            .last_zxid()
            .max(self.state.tree().last_zxid());
        let Role::Learning(l) = &mut self.role else {
            return;
        };
        let mut config = LearnerConfig::new(self.me, l.role);
        config.timing = Timing {
            tick_ms: self.cfg.tick_time_ms as u64,
            init_limit: self.cfg.init_limit as u32,
            sync_limit: self.cfg.sync_limit as u32,
        };
        config.observer_logs = self.cfg.sync_enabled;
        let (learner, actions) =
            Learner::new(config, accepted, current, last_logged, elapsed_ms() as u64);
        l.learner = Some(learner);
        l.out = Some(out);
        self.learner_actions(actions);
    }

    fn on_leader_packets(&mut self, packets: Vec<QuorumPacket>) {
        let now = self.now();
        let Role::Learning(l) = &mut self.role else {
            return;
        };
        let Some(learner) = l.learner.as_mut() else {
            return;
        };
        let traced = stage_trace::ENABLED.then(|| stage_trace::newest(&packets));
        for p in &packets {
            if p.r#type == PacketType::Proposal as i32 {
                self.provider.learner_proposals_received += 1;
            } else if p.r#type == PacketType::Commit as i32 {
                self.provider.learner_commits_received += 1;
            }
        }
        let actions = learner.on_packets(now.elapsed_ms as u64, packets);
        if let Some(newest) = traced {
            stage_trace::handled(newest);
        }
        self.learner_actions(actions);
    }

    /// A learner's tree against the leader's: a mismatch is logged as an
    /// error (at most one per PING, each zxid judged once) and counted, as
    /// ZooKeeper's `DataTree.reportDigestMismatch` counts
    /// `digest_mismatches_count`.
    fn digest_verdict(&mut self, verdict: Option<DigestVerdict>) {
        if let Some(DigestVerdict::Mismatch { zxid, ours, theirs }) = verdict {
            self.provider.digest_mismatches += 1;
            tracing::error!(
                %zxid,
                ours,
                leader = theirs,
                count = self.provider.digest_mismatches,
                "Digests are not matching: this server's tree differs from the leader's"
            );
        }
    }

    fn learner_actions(&mut self, actions: Vec<LearnerAction>) {
        for a in actions {
            let Role::Learning(l) = &mut self.role else {
                return;
            };
            match a {
                LearnerAction::Send(p) => {
                    if p.r#type == PacketType::Ack as i32 {
                        stage_trace::record(Stage::AckQueued, p.zxid, 0);
                    }
                    if let Some(out) = &l.out {
                        let _ = out.send(p);
                    }
                }
                LearnerAction::PersistAcceptedEpoch(e) => {
                    if let Err(err) = self.store.set_accepted_epoch(e) {
                        tracing::error!(error = %err, "cannot persist acceptedEpoch");
                        ExitCode::UnexpectedError.exit();
                    }
                }
                LearnerAction::PersistCurrentEpoch(e) => {
                    if let Err(err) = self.store.set_current_epoch(e) {
                        tracing::error!(error = %err, "cannot persist currentEpoch");
                        ExitCode::UnexpectedError.exit();
                    }
                }
                LearnerAction::TruncateLog { after } => {
                    tracing::info!(%after, "TRUNC: truncating the txn log");
                    let result = self
                        .store
                        .log()
                        .truncate_after(after)
                        .map_err(anyhow::Error::from)
                        // A reload after TRUNC: no start-up metrics, as
                        // ZooKeeper's learner truncates in place.
                        .and_then(|()| crate::server::blocking(|| recover(&self.store)))
                        .map(|(tree, _)| tree);
                    match result {
                        Ok(mut tree) if tree.last_zxid() <= after => {
                            let behind = tree.last_zxid() < after;
                            tree.set_acl_checks(self.cfg.skip_acl, self.cfg.providers());
                            self.state.replace_idle_tree(tree);
                            if behind {
                                // An observer that does not log
                                // (`syncEnabled=false`) had applied txns its
                                // disk lacks; the server it learns from
                                // would go on after `after` without them.
                                // Syncing again from what the disk holds
                                // gets them back. (It gets here when it had
                                // learned more from one follower than the
                                // next one has applied: `observerMasterPort`.)
                                tracing::warn!(%after, "TRUNC below what the disk holds; syncing again");
                                self.leave_role("TRUNC below what the disk holds");
                                self.look();
                                return;
                            }
                        }
                        Ok(tree) => {
                            // A snapshot newer than the truncation point.
                            // ZooKeeper reloads it and replays the txns after
                            // the TRUNC over it; zab does not apply a txn
                            // twice. A leader never truncates a follower
                            // below what it committed, and a follower
                            // hosting observers refuses one ahead of it
                            // (`ObserverMaster`), so only a broken peer gets
                            // here.
                            tracing::error!(snapshot = %tree.last_zxid(), %after, "cannot truncate below a snapshot; stopping");
                            ExitCode::QuorumPacketError.exit();
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "TRUNC failed; stopping");
                            ExitCode::QuorumPacketError.exit();
                        }
                    }
                }
                LearnerAction::InstallSnapshot { zxid, data } => {
                    tracing::info!(%zxid, bytes = data.len(), "SNAP: installing the leader's snapshot");
                    // Restored before anything is written: a snapshot this
                    // server cannot read leaves its disk as it was, as
                    // ZooKeeper deserializes the leader's in memory first.
                    let mut tree = match DataTree::restore(&mut data.reader()) {
                        Ok(tree) => tree,
                        Err(e) => {
                            tracing::error!(error = %e, "SNAP: the leader's snapshot does not restore; stopping with the disk untouched");
                            ExitCode::QuorumPacketError.exit();
                        }
                    };
                    let saved = self.store.snapshots().save(zxid, &mut data.reader());
                    // The old log may hold txns the new history replaced:
                    // drop it all; the snapshot covers everything up to zxid.
                    let wiped = saved
                        .as_ref()
                        .ok()
                        .map(|_| self.store.log().truncate_after(Zxid::ZERO));
                    match (saved, wiped) {
                        (Ok(_), Some(Ok(()))) => {
                            tree.set_acl_checks(self.cfg.skip_acl, self.cfg.providers());
                            self.state.replace_idle_tree(tree);
                        }
                        (s, w) => {
                            tracing::error!(save = ?s.err(), truncate = ?w.and_then(Result::err), "SNAP install failed; stopping");
                            ExitCode::UnexpectedError.exit();
                        }
                    }
                }
                LearnerAction::AppendLog(entries) => {
                    let Some(&(last, _)) = entries.last() else {
                        continue;
                    };
                    let on_durable = self.durable_callback(last);
                    self.store.log().append_batch(entries, on_durable);
                }
                LearnerAction::Apply(txns) => {
                    if let Some(last) = txns.last() {
                        stage_trace::record(Stage::Applied, last.zxid, 0);
                    }
                    for txn in txns {
                        match self.state.idle_tree() {
                            Some(tree) => {
                                tree.apply(&txn);
                            }
                            None => {
                                // Committed: its observers may have it
                                // before this server's tree does.
                                self.inform_observers(&txn);
                                self.pipeline_input(Input::Committed { txn });
                            }
                        }
                    }
                    if let Role::Learning(l) = &mut self.role {
                        let verdict = l.digests.applied(self.state.tree());
                        self.digest_verdict(verdict);
                    }
                }
                LearnerAction::LeaderDigest { zxid, digest } => {
                    let theirs = ZxidDigest { zxid, digest };
                    let verdict = l.digests.reported(theirs, self.state.tree());
                    self.digest_verdict(verdict);
                }
                LearnerAction::SyncDone { req } => self.pipeline_input(Input::SyncDone {
                    session: SessionId(req.session_id),
                    cxid: req.cxid,
                }),
                LearnerAction::RevalidateResult { session, valid } => {
                    self.pipeline_input(Input::Revalidated { session, valid })
                }
                LearnerAction::Unclaimed(p) => self.answer_observer(p),
                LearnerAction::StartServing => {
                    let epoch = l.learner.as_ref().and_then(|x| x.leader_epoch());
                    tracing::info!(sid = %self.me, leader = %l.leader_sid, ?epoch, "in sync with the leader: serving clients");
                    if let (Some(r), Some(e)) = (self.responder.as_mut(), epoch) {
                        r.set_peer_epoch(e);
                    }
                    let follower = l.role == LearnerRole::Follower;
                    self.serve_clients(Mode::Learner);
                    self.release_held_clients();
                    if follower {
                        self.host_observers();
                    }
                }
                LearnerAction::GiveUp { reason } => {
                    self.leave_role(&reason.to_string());
                    self.look();
                    return;
                }
            }
        }
    }

    // ------------------------------------------------------------ shared

    /// The clocks, read once per message the core handles: a batch of
    /// requests takes one clock read, not one each (the reads were ≈ 1 %
    /// of the machine's CPU under write load), and they all see the same
    /// time, as if they had arrived together — which they did. Timers
    /// (the cores', held clients', sessions') run on `elapsed_ms`, so a
    /// step of the wall clock moves none of them (ZOOKEEPER-1366).
    fn now(&mut self) -> Now {
        *self.now.get_or_insert_with(crate::server::now)
    }

    /// Queues the leader's gathered proposals on its log (its own ack comes
    /// with their durability). Called after every message the core
    /// handles and before a role ends, so nothing reads the log or waits
    /// on it without them.
    fn append_proposals(&mut self) {
        let Some(&(last, _)) = self.proposals.last() else {
            return;
        };
        let entries = std::mem::take(&mut self.proposals);
        let on_durable = self.durable_callback(last);
        self.store.log().append_batch(entries, on_durable);
    }

    /// The log callback for an append ending at `zxid`: raises this role's
    /// durable mark and wakes the core if nothing else already will.
    fn durable_callback(
        &mut self,
        zxid: Zxid,
    ) -> impl FnOnce(Result<(), zab_store::StoreError>) + Send + 'static {
        if self.durable_gen != self.gen {
            // A new role: marks raised by the old one's appends stay with it.
            self.durable = Arc::new(DurableMark::default());
            self.durable_gen = self.gen;
        }
        let mark = Arc::clone(&self.durable);
        let (tx, gen) = (self.tx.clone(), self.gen);
        move |res| match res {
            Ok(()) => {
                stage_trace::record(Stage::Synced, zxid.0, 0);
                if mark.raise(zxid) {
                    let _ = tx.send(CoreMsg::Durable { gen });
                }
            }
            Err(e) => {
                let _ = tx.send(CoreMsg::LogFailed(e.to_string()));
            }
        }
    }

    /// Hands the tree to a pipeline serving clients in `mode`, with
    /// `/zookeeper/config` holding the ensemble's membership: ZooKeeper
    /// keeps it there on every quorum member (`ZKDatabase.
    /// initConfigInZKDatabase`, at start-up and after a SNAP; reference D.3).
    /// The node is local, not a txn, so every server sets its own. The
    /// clients' `globalOutstandingLimit` becomes the one of the ZooKeeper
    /// server that serves in this role (see `ServerFlow::limit_for`).
    fn serve_clients(&mut self, mode: Mode) {
        let role = if mode == Mode::ReadOnly || self.is_observer() {
            ServingRole::ObserverOrAlone
        } else {
            ServingRole::Voter
        };
        self.flow.set_limit(ServerFlow::limit_for(&self.cfg, role));
        let cfg = self.pipeline_config();
        let membership = Bytes::from(self.cfg.membership_text());
        let version = self.cfg.membership_version as i64;
        let figures = std::mem::take(&mut self.lifetime);
        let role_since = self.role_since_ms;
        self.state.start_serving(|mut tree| {
            tree.set_config(membership, version, now_ms());
            let mut pipeline = Pipeline::with_mode(cfg, mode, tree, crate::server::now());
            pipeline.carry(figures);
            if let Some(since) = role_since {
                pipeline.count_uptime_from(since);
            }
            pipeline
        });
    }

    /// Ends the pipeline of the role that served, keeping what the
    /// server's metrics count across roles.
    fn stop_serving(&mut self) {
        if let Some(figures) = self.state.stop_serving() {
            self.lifetime = figures;
        }
    }

    fn on_durable(&mut self, zxid: Zxid) {
        stage_trace::record(Stage::Durable, zxid.0, 0);
        match &mut self.role {
            Role::Leading(l) => {
                let actions = l.leader.on_local_durable(zxid);
                self.leader_actions(actions);
            }
            Role::Learning(l) => {
                let Some(learner) = l.learner.as_mut() else {
                    return;
                };
                let actions = learner.on_durable(elapsed_ms() as u64, zxid);
                self.learner_actions(actions);
            }
            _ => {}
        }
    }

    fn on_clock(&mut self) {
        let now = elapsed_ms();
        for conn in self.held.expire(now) {
            self.close_client(conn);
        }
        if let Role::Looking(e) = &mut self.role {
            // A link that dropped since the last notification (the dead
            // leader's, often noticed a little after its quorum stream) may
            // leave nobody to wait for.
            let transport = &self.election;
            let mut out = e.decide_if_all_reachable_agree(|s| transport.may_still_vote(s));
            if out.is_empty() && e.next_deadline().is_some_and(|d| d <= now as u64) {
                out = e.on_timer(now as u64);
            }
            self.election_outputs(out);
            if !matches!(self.role, Role::Looking(_)) {
                return;
            }
            self.maybe_read_only(now);
            if !self.state.is_serving() {
                return;
            }
        }
        // Everything else runs on ZooKeeper's half-tick beat.
        if now - self.last_tick_ms < self.cfg.tick_time_ms as i64 / 2 {
            return;
        }
        self.last_tick_ms = now;
        match &mut self.role {
            Role::Leading(l) => {
                if let Some(d) = self.state.tree().digest_log().newest() {
                    l.leader.note_digest(d.zxid, d.digest);
                }
                let actions = l.leader.on_tick(now as u64);
                self.leader_actions(actions);
            }
            Role::Learning(l) => {
                if let Some(learner) = l.learner.as_mut() {
                    let actions = learner.on_tick(now as u64);
                    self.learner_actions(actions);
                }
                self.observers_tick(now as u64);
            }
            _ => {}
        }
        if self.state.is_serving() {
            self.pipeline_input(Input::Tick);
        }
    }

    /// A client event: served by the pipeline, or refused while no role
    /// serves (ZooKeeper closes connections when its server is not running).
    fn client_input(&mut self, input: Input) {
        if let Input::Disconnected { conn } = &input {
            self.writers.remove(conn);
        }
        if !self.state.is_serving() {
            let now = self.now().elapsed_ms;
            if let Hold::Close(conn) = self.held.hold(now, input) {
                self.close_client(conn);
            }
            return;
        }
        if !self.takes_clients() {
            // Closed on its first frame, as ZooKeeper closes it on the
            // ConnectRequest it cannot serve.
            if let Input::Connect { conn, .. } | Input::Request { conn, .. } = input {
                self.close_client(conn);
            }
            return;
        }
        self.pipeline_input(input);
    }

    /// `leaderServes=no`: a leader runs its pipeline for the requests its
    /// learners forward, but closes its own client connections, as
    /// ZooKeeper's leader does when it leaves its server off its connection
    /// factory (`Leader.lead`; a client sees "ZooKeeperServer not
    /// running"), and its four-letter words say it is not serving.
    fn takes_clients(&self) -> bool {
        self.cfg.leader_serves || !matches!(self.role, Role::Leading(_))
    }

    fn close_client(&mut self, conn: ConnectionId) {
        if let Some(w) = self.writers.remove(&conn) {
            w.send(Outgoing::Close);
        }
    }

    /// `readonlymode.enabled`: a server still LOOKING after a grace period
    /// of max(2 s, tickTime) takes itself for partitioned and serves
    /// read-only clients from the data it has (ZooKeeper's `QuorumPeer`
    /// starts its `ReadOnlyZooKeeperServer` so).
    fn maybe_read_only(&mut self, now: i64) {
        let grace = (self.cfg.tick_time_ms as i64).max(2_000);
        if !self.cfg.read_only_mode
            || self.state.is_serving()
            || now - self.looking_since_ms < grace
        {
            return;
        }
        tracing::info!(sid = %self.me, "no quorum: serving read-only clients");
        self.serve_clients(Mode::ReadOnly);
        self.release_held_clients();
    }

    /// Read-only mode ends with the election: its clients are closed (they
    /// reconnect to a server that serves writes) and the tree comes back.
    fn stop_read_only(&mut self) {
        if self.state.mode() != Some(Mode::ReadOnly) {
            return;
        }
        tracing::info!(sid = %self.me, "leaving read-only mode");
        self.stop_serving();
        self.close_unheld_clients();
    }

    /// Clients of the ended role go; clients held for the next one stay.
    fn close_unheld_clients(&mut self) {
        let held = &self.held;
        self.writers.retain(|conn, w| {
            let keep = held.contains(*conn);
            if !keep {
                w.send(Outgoing::Close);
            }
            keep
        });
    }

    /// Now serving: the clients held meanwhile get their answers.
    fn release_held_clients(&mut self) {
        if !self.held.is_empty() {
            tracing::debug!(sid = %self.me, clients = self.held.len(), "serving held clients");
        }
        for input in self.held.release() {
            self.pipeline_input(input);
        }
    }

    fn pipeline_input(&mut self, input: Input) {
        let now = self.now();
        let Some(p) = self.state.pipeline() else {
            return;
        };
        let mut actions = Vec::new();
        p.handle(now, input, &mut actions);
        let touched = p.take_touched();
        if !touched.is_empty() {
            if let Role::Learning(l) = &mut self.role {
                if let Some(learner) = l.learner.as_mut() {
                    for (s, t) in touched {
                        learner.touch(s, t);
                    }
                }
            }
        }
        for a in actions {
            self.pipeline_action(a);
        }
    }

    fn pipeline_action(&mut self, action: Action) {
        match action {
            Action::Send { conn, frame } => {
                if let Some(w) = self.writers.get(&conn) {
                    w.send(Outgoing::Frame(frame));
                }
            }
            Action::Close { conn } => {
                if let Some(w) = self.writers.remove(&conn) {
                    w.send(Outgoing::Close);
                }
            }
            Action::Snapshot(snap) => {
                spawn_periodic_snapshot(self.store.clone(), snap);
            }
            Action::Append { zxid, txn } => {
                // Leader: propose, and log locally (its own ack).
                let Role::Leading(l) = &mut self.role else {
                    tracing::error!(%zxid, "only a leader appends client txns");
                    return;
                };
                let actions = match l.leader.propose_encoded(zxid, txn.clone()) {
                    Ok(a) => {
                        self.provider.proposal_count += 1;
                        a
                    }
                    Err(e) => {
                        tracing::error!(error = %e, %zxid, "cannot propose");
                        return;
                    }
                };
                if stage_trace::sampled(zxid) {
                    stage_trace::record(Stage::Proposed, zxid.0, 0);
                }
                // A leader whose zxid counter rolled over steps down instead
                // of proposing (reference F.1): the txn is not logged either,
                // as ZooKeeper's `Leader.propose` throws before it logs.
                if l.leader.is_established() {
                    self.proposals.push((zxid, txn));
                }
                self.leader_actions(actions);
            }
            Action::Forward { request, auth } => {
                let Role::Learning(l) = &mut self.role else {
                    return;
                };
                let Some(learner) = l.learner.as_mut() else {
                    return;
                };
                let auth = auth
                    .into_iter()
                    .map(|id| zab_wire::proto::Id {
                        scheme: id.scheme,
                        id: id.id,
                    })
                    .collect();
                let actions = learner.forward(request, auth);
                self.learner_actions(actions);
            }
            Action::Revalidate {
                session,
                timeout_ms,
            } => {
                let Role::Learning(l) = &mut self.role else {
                    return;
                };
                let Some(learner) = l.learner.as_mut() else {
                    return;
                };
                let actions = learner.revalidate(session, timeout_ms);
                self.learner_actions(actions);
            }
        }
    }
}

/// Streams `snap` onto a learner's link off the core, chunk by chunk as
/// fast as the link takes them; what is sent to the learner meanwhile is
/// held and follows SNAP_END (`CoreMsg::SnapshotQueued`).
fn stream_snapshot(
    link: &mut LearnerLink,
    id: LinkId,
    zxid: Zxid,
    snap: zab_tree::snapshot::TreeSnapshot,
    tx: mpsc::UnboundedSender<CoreMsg>,
    gen: u64,
) {
    link.held.get_or_insert_with(Vec::new);
    let out = link.out.clone();
    let credit = ChunkCredit::new(CHUNKS_IN_FLIGHT, Arc::clone(&link.dropped));
    tokio::task::spawn_blocking(move || {
        let mut chunks = ChunkSink::new(&out, credit);
        let result = snap
            .write_to(&mut chunks)
            .and_then(|()| chunks.finish())
            .map_err(|e| e.to_string());
        let _ = tx.send(CoreMsg::SnapshotQueued {
            gen,
            link: id,
            zxid,
            result,
        });
    });
}

/// A start that differs between servers and runs, without a random
/// number generator: the clock's nanoseconds mixed with the process id.
fn random_start() -> usize {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    (nanos ^ std::process::id().rotate_left(16)) as usize
}

/// Bytes of the newest snapshot in the store (0 if none).
fn newest_snapshot_size(store: &Store) -> u64 {
    store
        .snapshots()
        .list()
        .ok()
        .and_then(|l| l.last().map(|s| s.size))
        .unwrap_or(0)
}

/// The newest `window` logged txns up to `last`: ZooKeeper's committedLog
/// as rebuilt when a database is loaded.
fn committed_window(store: &Store, last: Zxid, window: usize) -> CommittedLog {
    match store.log().tail(last, window) {
        Ok(entries) => CommittedLog::from_entries(window, entries),
        Err(e) => {
            // Without the window every learner behind gets a SNAP: slower,
            // never wrong.
            tracing::warn!(error = %e, "cannot read the txn log tail for DIFF sync");
            CommittedLog::new(window)
        }
    }
}
