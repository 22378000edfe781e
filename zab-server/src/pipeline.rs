//! The client request pipeline, as a pure state machine: inputs (a frame decoded, a txn made durable, a clock tick) go in,
//! actions (send these bytes, close that connection, log this txn, take a
//! snapshot) come out. The async shell in [`crate::server`] moves bytes and
//! timers around it; tests drive it directly.
//!
//! It reproduces ZooKeeper's standalone chain
//! (`PrepRequestProcessor → SyncRequestProcessor → FinalRequestProcessor`):
//! a write is prepared against the tree plus the writes still in flight,
//! given the next zxid, logged (group commit), and applied in zxid order once
//! durable; only then is its reply sent. Per connection, replies leave in
//! request order: a read that arrives behind an unapplied write of its
//! session waits for that write (reference D.6), and watch events of a txn are
//! queued before any reply that could reveal the txn's effect (behaviour 23).
//!
//! In a replicated ensemble the same pipeline serves clients in every role
//! ([`Mode`]): a leader prepares writes (its clients' and those learners
//! forward) and "durable" means committed by a quorum; a learner forwards its
//! clients' writes to the leader and applies what the leader commits,
//! answering its own clients when their txns come back (reference F.5).

use std::collections::VecDeque;
use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use foldhash::{HashMap, HashMapExt};
use prost::Message;
use zab_tree::acl::{self, AuthConfig, AuthInfo};
use zab_tree::session_tracker::{
    negotiate_timeout, session_password, SessionOwner, SessionTracker,
};
use zab_tree::watch_manager::{ConnectionId, WatchKind, WatchManager};
use zab_tree::MultiReadStop;
use zab_tree::{DataTree, PrepareConfig, Preparer, RequestContext, TreeSnapshot, WatchEvent};
use zab_wire::jute::Id;
use zab_wire::jute::{
    self, add_watch_mode, op, watcher_type, xid, Acl, ConnectRequest, ConnectResponse, DecodeError,
    ErrorCode, ErrorResponse, Jute, PathRequest, ReplyHeader, Request, RequestHeader, Response,
    SaslToken, SyncResponse, WatcherEvent, WhoAmIResponse, Writer,
};
use zab_wire::proto::{txn_body, ErrorTxn, ForwardedRequest, Txn, TxnBody};
use zab_wire::{Epoch, ServerId, SessionId, Zxid};

use crate::four_letter::BufferSizes;
use crate::latency_summary::LatencySummary;
use crate::sasl::SaslConfig;
use zab_wire::digest_md5::{self, ServerExchange};

/// First capacity of a reply frame or a forwarded request: a setData's
/// reply (88 bytes), a small getData's or a create's fits, where 64 bytes
/// made most of them grow once or twice while being written (issue 4).
const FRAME_CAPACITY: usize = 256;

/// Size of the buffers txns are encoded into (`Pipeline::log`): ≈ 300
/// txns of the bench's size, one allocation where each txn had its own
/// (issue 4: ≈ 2 % of the leader's runtime thread).
const TXN_BUF_CAPACITY: usize = 64 << 10;

/// What a pipeline in `mode` over `tree` reports as its last processed
/// zxid (see [`Pipeline::last_processed_zxid`]).
fn last_processed(mode: Mode, tree: &DataTree) -> Zxid {
    match mode {
        Mode::Leader { epoch } => Zxid::new(epoch, 0).max(tree.last_zxid()),
        Mode::Standalone | Mode::Learner | Mode::ReadOnly => tree.last_zxid(),
    }
}

/// The role the pipeline serves clients in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Prepares, logs and applies writes itself.
    Standalone,
    /// Prepares writes with zxids of `epoch`; `Input::Durable` means committed.
    Leader { epoch: Epoch },
    /// Forwards writes to the leader and applies what it commits.
    Learner,
    /// No quorum (`readonlymode.enabled`): serves reads to clients that
    /// allow a read-only server, refuses writes with NOTREADONLY, and
    /// keeps its sessions to itself (ZooKeeper's `ReadOnlyZooKeeperServer`).
    ReadOnly,
}

/// Settings the pipeline needs from zoo.cfg.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    pub server_id: ServerId,
    pub tick_time_ms: i64,
    pub min_session_timeout_ms: i32,
    pub max_session_timeout_ms: i32,
    /// ZooKeeper snapshots after `snapCount/2 + random(snapCount/2)` txns.
    pub snap_count: u64,
    /// `snapSizeLimitInKb` in bytes, 0 = off: ZooKeeper also snapshots once
    /// the txns logged since the last snapshot pass `limit/2 +
    /// random(limit/2)` bytes (`SyncRequestProcessor.shouldSnapshot`).
    pub snap_size_limit_bytes: u64,
    /// Whether the two triggers above take snapshots at all: an observer
    /// with `syncEnabled=false` takes none, as ZooKeeper's, whose snapshots
    /// come from the sync processor it then does not run.
    pub periodic_snapshots: bool,
    pub container_check_interval_ms: i64,
    pub container_max_per_minute: usize,
    pub prepare: PrepareConfig,
    pub auth: AuthConfig,
    /// SASL users and super user; `None` when no JAAS file is configured.
    pub sasl: Option<std::sync::Arc<SaslConfig>>,
    /// Kerberos: set when the JAAS section logs in with `Krb5LoginModule`,
    /// and then clients authenticate with GSSAPI instead of DIGEST-MD5.
    pub kerberos: Option<std::sync::Arc<crate::sasl_gssapi::Acceptor>>,
    /// `zookeeper.allowSaslFailedClients`.
    pub allow_sasl_failed_clients: bool,
    /// `zookeeper.enforce.auth.*`: the schemes one of which a connection
    /// must hold before any request but auth and SASL.
    pub enforce_auth: Option<Vec<String>>,
    /// `localSessionsEnabled` (quorum servers only): new sessions live on
    /// the server that made them, with no txn, until they create an
    /// ephemeral node.
    pub local_sessions: bool,
    /// `localSessionsUpgradingEnabled`: a local session that creates an
    /// ephemeral is made global first; without it the create fails with
    /// EPHEMERALONLOCALSESSION.
    pub local_sessions_upgrading: bool,
}

/// The time as the pipeline reads it, from two clocks (ZOOKEEPER-1366):
/// the wall clock for what txns record (ctime, mtime, and so TTLs) and for
/// the figures the four-letter words show; a monotonic clock for session
/// deadlines, so that a step of the system clock (a VM resumed, NTP
/// stepping) neither expires every session at once nor keeps dead ones,
/// as ZooKeeper's `ExpiryQueue` reads `Time.currentElapsedTime()`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Now {
    /// Milliseconds since the Unix epoch.
    pub wall_ms: i64,
    /// Milliseconds of a clock that never steps (`CLOCK_MONOTONIC`).
    pub elapsed_ms: i64,
}

impl Now {
    /// Both clocks reading `ms`: for tests and simulations, whose one
    /// clock never steps.
    pub fn at(ms: i64) -> Now {
        Now {
            wall_ms: ms,
            elapsed_ms: ms,
        }
    }
}

/// Something that happened to the server.
#[derive(Debug)]
pub enum Input {
    /// A TCP connection was accepted. `identities` are those its TLS
    /// handshake proved (a client certificate's `x509` id), added after
    /// the connection's `ip` id as ZooKeeper adds them.
    Accepted {
        conn: ConnectionId,
        remote: SocketAddr,
        identities: Vec<Id>,
    },
    /// The connection's first frame.
    Connect {
        conn: ConnectionId,
        request: ConnectRequest,
    },
    /// A later frame: its header and its decoded body (or why it did not decode).
    Request {
        conn: ConnectionId,
        header: RequestHeader,
        body: Result<Request, DecodeError>,
    },
    /// The peer closed the connection, or it failed.
    Disconnected { conn: ConnectionId },
    /// The connection's reader is paused for its reply backlog, and its
    /// client still reads what it is sent: its session is touched, as
    /// ZooKeeper, which keeps reading such a client, would see its pings.
    Alive { conn: ConnectionId },
    /// Every txn up to and including `zxid` is durable in the log.
    Durable { zxid: Zxid },
    /// Time passed: expire sessions, reap containers.
    Tick,
    /// Learner: a txn the leader committed, to apply (in zxid order).
    Committed { txn: Txn },
    /// Learner: the leader answered the forwarded sync `cxid` of `session`.
    SyncDone { session: SessionId, cxid: i32 },
    /// Learner: the leader's answer to a revalidation (reference F.8).
    Revalidated { session: SessionId, valid: bool },
    /// Leader: a request a learner forwarded for one of its clients;
    /// `from` names the learner's link (the session's owner if it created
    /// or revalidated the session there).
    Forwarded {
        request: ForwardedRequest,
        auth: Vec<Id>,
        from: SessionOwner,
        /// The learner's id, which the txn carries as its `origin`.
        origin: ServerId,
    },
}

/// What the shell must do.
#[derive(Debug)]
pub enum Action {
    /// Write this frame (length prefix included) to the connection.
    Send { conn: ConnectionId, frame: Bytes },
    /// Close the connection once what was sent before is flushed.
    Close { conn: ConnectionId },
    /// Append this encoded txn to the log; report `Input::Durable` once it
    /// is synced (standalone) or committed (leader: it is also proposed).
    Append { zxid: Zxid, txn: Bytes },
    /// Write this snapshot to the store (off the request path).
    Snapshot(TreeSnapshot),
    /// Learner: send this request to the leader.
    Forward {
        request: ForwardedRequest,
        auth: Vec<Id>,
    },
    /// Learner: ask the leader whether a resumed session is alive.
    Revalidate { session: SessionId, timeout_ms: i32 },
}

/// A request held back until an earlier write of the same connection applies.
#[derive(Debug)]
enum Queued {
    /// A write (or, on a learner, a forwarded sync) awaiting its txn.
    Write {
        xid: i32,
        op: i32,
        received_ms: i64,
        /// The path a forwarded sync echoes.
        sync_path: Option<String>,
        /// An ephemeral create of a local session that could not be made
        /// global: the leader's SESSIONEXPIRED is answered as
        /// EPHEMERALONLOCALSESSION, as ZooKeeper's learner answers it.
        ephemeral_on_local: bool,
    },
    Other {
        header: RequestHeader,
        body: Result<Request, DecodeError>,
        received_ms: i64,
        /// The connection's identities when the request came, once they
        /// have changed since (`None`: they have not). ZooKeeper's
        /// `Request` carries a copy of them from its submission.
        auth: Option<Box<AuthInfo>>,
    },
    /// A write (or forwarded sync) of the session's earlier connection on
    /// this server, still in flight when that connection went: nothing
    /// answers it, but the session's later requests wait for it, as
    /// ZooKeeper's `CommitProcessor` queues a session's requests by
    /// session, not by connection.
    Earlier { xid: i32 },
}

#[derive(Debug, PartialEq, Eq)]
enum ConnState {
    AwaitingConnect,
    /// The createSession txn is in flight.
    CreatingSession,
    /// Learner: waiting for the leader to revalidate the resumed session.
    Revalidating,
    Established,
}

/// Per-connection counters for `cons`, `stat` and `srvr`, kept as
/// ZooKeeper's `ServerCnxn` keeps them: the `last_*` fields and latencies
/// change only when a request that went the whole request path is answered
/// (`FinalRequestProcessor.updateStats`), a new session's createSession
/// included; a connection starts with Java's field defaults (so a resumed
/// session shows `lop=null,lcxid=0x0,lzxid=0x0` until its first answer)
/// and `crst` sets the values of `ServerCnxn.resetStats`.
#[derive(Debug, Clone)]
pub struct ConnectionStats {
    pub received: u64,
    pub sent: u64,
    pub established_ms: i64,
    pub last_op: &'static str,
    /// The last non-negative xid answered: pings (-2) and set-watches (-8)
    /// leave it alone.
    pub last_cxid: i64,
    pub last_zxid: i64,
    /// On this pipeline's clock; `cons` shows it on the monotonic clock,
    /// as ZooKeeper's `Time.currentElapsedTime()`.
    pub last_response_ms: i64,
    pub last_latency_ms: i64,
    /// `i64::MAX` (shown as 0) after `crst`; 0 on a new connection, where,
    /// as in ZooKeeper, no latency is below it.
    pub min_latency_ms: i64,
    pub max_latency_ms: i64,
    pub total_latency_ms: i64,
    pub latency_count: u64,
}

impl ConnectionStats {
    /// A new connection's, accepted at `established_ms`.
    fn new(established_ms: i64) -> ConnectionStats {
        ConnectionStats {
            received: 0,
            sent: 0,
            established_ms,
            last_op: "null",
            last_cxid: 0,
            last_zxid: 0,
            last_response_ms: 0,
            last_latency_ms: 0,
            min_latency_ms: 0,
            max_latency_ms: 0,
            total_latency_ms: 0,
            latency_count: 0,
        }
    }

    /// After `crst`.
    fn reset(&mut self) {
        *self = ConnectionStats {
            last_op: "NA",
            last_cxid: -1,
            last_zxid: -1,
            min_latency_ms: i64::MAX,
            ..ConnectionStats::new(self.established_ms)
        };
    }

    /// `ServerCnxn.updateStatsForResponse`.
    fn answered(&mut self, op: &'static str, cxid: i64, zxid: i64, now_ms: i64, latency_ms: i64) {
        if cxid >= 0 {
            self.last_cxid = cxid;
        }
        self.last_op = op;
        self.last_zxid = zxid;
        self.last_response_ms = now_ms;
        self.last_latency_ms = latency_ms;
        self.min_latency_ms = self.min_latency_ms.min(latency_ms);
        self.max_latency_ms = self.max_latency_ms.max(latency_ms);
        self.total_latency_ms += latency_ms;
        self.latency_count += 1;
    }
}

/// A reply to a request that went the whole request path, which the
/// connection's and the server's statistics record.
#[derive(Clone, Copy, Debug)]
struct Answered {
    /// What `cons` shows as `lop`.
    op: &'static str,
    received_ms: i64,
    /// Answered by a txn: an update for the latency summaries (ZooKeeper's
    /// `request.getHdr() != null`), else a read.
    update: bool,
}

impl Answered {
    fn new(op: i32, received_ms: i64) -> Answered {
        Answered {
            op: crate::four_letter::op_tag(op),
            received_ms,
            update: false,
        }
    }

    /// As [`Answered::new`], for a reply to a txn.
    fn update(op: i32, received_ms: i64) -> Answered {
        Answered {
            update: true,
            ..Answered::new(op, received_ms)
        }
    }

    /// A write answered by an error txn: ZooKeeper's
    /// `FinalRequestProcessor` throws before it names the op, so `lop`
    /// stays `NA` (checked on 3.8.0).
    fn failed_write(received_ms: i64) -> Answered {
        Answered {
            op: "NA",
            received_ms,
            update: true,
        }
    }
}

#[derive(Debug)]
struct Connection {
    remote: SocketAddr,
    state: ConnState,
    session: Option<SessionId>,
    timeout_ms: i32,
    /// `Some` if the client sent the trailing readOnly byte (reference B).
    read_only: Option<bool>,
    auth: AuthInfo,
    queue: VecDeque<Queued>,
    /// Requests that arrived before the session was established.
    parked: Vec<(RequestHeader, Result<Request, DecodeError>, i64)>,
    /// When the ConnectRequest arrived: a new session's latency counts
    /// from it.
    connect_ms: i64,
    stats: ConnectionStats,
    /// The connection's SASL exchange, from its first SASL request on.
    sasl: Option<SaslExchange>,
}

/// A connection's SASL exchange, by the server's mechanism.
enum SaslExchange {
    DigestMd5(ServerExchange),
    Gssapi(crate::sasl_gssapi::GssapiExchange),
}

impl std::fmt::Debug for SaslExchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SaslExchange::DigestMd5(_) => "DigestMd5",
            SaslExchange::Gssapi(_) => "Gssapi",
        })
    }
}

/// A txn that is logged but not yet applied.
#[derive(Debug)]
struct InFlight {
    txn: Txn,
    origin: Option<(ConnectionId, i32 /* xid */)>,
}

/// Server-wide counters for `srvr`/`mntr`.
#[derive(Debug, Clone, Default)]
pub struct ServerStats {
    pub packets_received: u64,
    pub packets_sent: u64,
    pub min_latency_ms: i64,
    pub max_latency_ms: i64,
    pub total_latency_ms: i64,
    pub latency_count: u64,
    /// Each txn a leader proposes, by the size ZooKeeper would give it
    /// (`crate::proposal_size`).
    pub proposal_sizes: BufferSizes,
    /// Each reply and event sent to a client, without its length prefix
    /// (`ServerCnxn.serialize`); the ConnectResponse is not one.
    pub response_sizes: BufferSizes,
    /// Latencies of requests answered without a txn (`readlatency`).
    pub read_latency: LatencySummary,
    /// Latencies of requests answered by a txn (`updatelatency`).
    pub update_latency: LatencySummary,
}

/// What touching a connection's session found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Touched {
    /// A session local to this server.
    Local,
    /// A global session (a learner reports it to the leader).
    Global,
    /// The session is closing or gone (on a leader or standalone server,
    /// which track its deadline).
    Gone,
}

/// What a server's metrics count across its roles (see
/// [`Pipeline::into_parts`]).
#[derive(Debug, Default)]
pub struct LifetimeFigures {
    read_latency: LatencySummary,
    update_latency: LatencySummary,
    quota_exceeded: std::collections::BTreeMap<String, u64>,
}

/// The standalone request pipeline. See the module docs.
pub struct Pipeline {
    /// Where `mntr`'s `zk_uptime` counts from, on the monotonic clock: when
    /// this pipeline began to serve, or its role began
    /// ([`Pipeline::count_uptime_from`]), as ZooKeeper's `ServerStats` is
    /// made with each role's server.
    uptime_from_ms: i64,
    cfg: PipelineConfig,
    mode: Mode,
    /// Learner: sessions touched since the leader last asked (PING).
    touched: HashMap<SessionId, i32>,
    tree: DataTree,
    preparer: Preparer,
    watches: WatchManager,
    sessions: SessionTracker,
    /// Local sessions (`localSessionsEnabled`): this server's alone, with
    /// their own expiry; never in the tree.
    local: SessionTracker,
    connections: HashMap<ConnectionId, Connection>,
    /// Which connection holds each session on this server.
    session_owner: HashMap<SessionId, ConnectionId>,
    in_flight: VecDeque<InFlight>,
    /// Per session, the xids of writes its connections that went left in
    /// flight, oldest first, until they apply or the session's next
    /// connection here takes them over (as `Queued::Earlier`).
    earlier: HashMap<SessionId, VecDeque<i32>>,
    /// Txns are encoded into this buffer and cut from it, so that a group
    /// of them shares one allocation instead of one each (see `log`).
    txn_buf: BytesMut,
    last_assigned: Zxid,
    txns_since_snapshot: u64,
    snapshot_threshold: u64,
    /// Bytes of the txns applied since the last snapshot, as zab encodes
    /// them (ZooKeeper counts its log file's bytes).
    bytes_since_snapshot: u64,
    snapshot_size_threshold: u64,
    last_reap_ms: i64,
    now_ms: i64,
    /// `Now::elapsed_ms` of the input being handled: the sessions' clock.
    elapsed_ms: i64,
    stats: ServerStats,
}

impl Pipeline {
    /// A pipeline over a recovered tree. `last_logged` is the last zxid in the
    /// txn log (the tree has applied it already).
    pub fn new(cfg: PipelineConfig, tree: DataTree, now: Now) -> Pipeline {
        Pipeline::with_mode(cfg, Mode::Standalone, tree, now)
    }

    /// How long this pipeline has served, in ms (`mntr`'s `zk_uptime`).
    pub fn uptime_ms(&self, now_elapsed_ms: i64) -> i64 {
        now_elapsed_ms - self.uptime_from_ms
    }

    /// Counts `zk_uptime` from `elapsed_ms` rather than from when the
    /// pipeline was made: the start of its role (ZooKeeper makes a
    /// leader's or follower's server, and its `ServerStats`, before it
    /// syncs).
    pub fn count_uptime_from(&mut self, elapsed_ms: i64) {
        self.uptime_from_ms = elapsed_ms;
    }

    /// A pipeline serving clients in `mode`.
    pub fn with_mode(cfg: PipelineConfig, mode: Mode, tree: DataTree, now: Now) -> Pipeline {
        // Session ids start from a clock as in ZooKeeper's
        // `initializeNextSessionId`, but the wall clock where it takes
        // `Time.currentElapsedTime` (time since boot on Linux): after a
        // reboot that one starts over, and a server could hand out ids it
        // handed out before. Deadlines run on the monotonic clock.
        let now_ms = now.wall_ms;
        let mut sessions = SessionTracker::new(cfg.server_id, now_ms, cfg.tick_time_ms);
        // Sessions survive a restart (behaviour 40): every session in the
        // recovered tree gets a fresh timeout from now.
        for (id, timeout) in tree.sessions() {
            sessions.add(id, timeout, now.elapsed_ms);
        }
        // A new leader proposes from `epoch << 32 | 1` (reference F.1).
        let last_assigned = last_processed(mode, &tree);
        let count_threshold = snapshot_threshold(cfg.snap_count, last_assigned);
        let size_threshold = snapshot_threshold(cfg.snap_size_limit_bytes, last_assigned);
        let local = SessionTracker::new(cfg.server_id, now_ms, cfg.tick_time_ms);
        Pipeline {
            uptime_from_ms: now.elapsed_ms,
            mode,
            touched: HashMap::new(),
            preparer: Preparer::new(cfg.prepare),
            cfg,
            tree,
            watches: WatchManager::new(),
            sessions,
            local,
            connections: HashMap::new(),
            session_owner: HashMap::new(),
            in_flight: VecDeque::new(),
            earlier: HashMap::new(),
            txn_buf: BytesMut::new(),
            last_assigned,
            txns_since_snapshot: 0,
            snapshot_threshold: count_threshold,
            bytes_since_snapshot: 0,
            snapshot_size_threshold: size_threshold,
            last_reap_ms: now_ms,
            now_ms,
            elapsed_ms: now.elapsed_ms,
            stats: ServerStats::default(),
        }
    }

    pub fn tree(&self) -> &DataTree {
        &self.tree
    }
    /// The zxid this server answers with: in read replies, in `srvr` and
    /// `stat`, and against a connecting client's `lastZxidSeen`. The
    /// tree's last txn, except on a leader that has not committed a txn of
    /// its epoch yet: ZooKeeper's leader sets its last processed zxid to
    /// `epoch << 32` once a quorum is in sync (`Leader.startZkServer`), so
    /// its `srvr` shows the new epoch before the first write.
    pub fn last_processed_zxid(&self) -> Zxid {
        last_processed(self.mode, &self.tree)
    }
    pub fn watches(&self) -> &WatchManager {
        &self.watches
    }
    pub fn sessions(&self) -> &SessionTracker {
        &self.sessions
    }
    pub fn stats(&self) -> &ServerStats {
        &self.stats
    }
    pub fn reset_stats(&mut self) {
        self.stats = ServerStats::default();
        self.preparer.reset_quota_exceeded();
    }
    /// Writes refused for a hard quota, by namespace (see
    /// [`Preparer::quota_exceeded`]).
    pub fn quota_exceeded(&self) -> &std::collections::BTreeMap<String, u64> {
        self.preparer.quota_exceeded()
    }
    /// Counts a four-letter word as a received packet: ZooKeeper counts
    /// them like any other (`NIOServerCnxn.checkFourLetterWord`'s
    /// `packetReceived(4)`).
    pub fn count_four_letter_word(&mut self) {
        self.stats.packets_received += 1;
    }
    /// Counts a four-letter word's answer of `len` bytes as the packets
    /// ZooKeeper sends it in: its `PrintWriter` writes through an
    /// 8192-char `BufferedWriter`, and each block that reaches the socket
    /// is a `packetSent()` (`NIOServerCnxn.sendBufferSync`).
    pub fn count_four_letter_answer(&mut self, len: usize) {
        const WRITER_BUFFER: usize = 8192;
        self.stats.packets_sent += len.div_ceil(WRITER_BUFFER) as u64;
    }
    /// `(connection, remote address, session, timeout, queued, stats)` for `cons`.
    pub fn connections(
        &self,
    ) -> impl Iterator<
        Item = (
            ConnectionId,
            SocketAddr,
            Option<SessionId>,
            i32,
            usize,
            &ConnectionStats,
        ),
    > {
        self.connections.iter().map(|(id, c)| {
            (
                *id,
                c.remote,
                c.session,
                c.timeout_ms,
                c.queue.len(),
                &c.stats,
            )
        })
    }
    pub fn reset_connection_stats(&mut self) {
        for c in self.connections.values_mut() {
            c.stats.reset();
        }
    }
    /// Sessions this server keeps to itself (local sessions, read-only
    /// mode's): mntr's `zk_local_sessions`.
    pub fn local_session_count(&self) -> usize {
        self.local.len()
    }

    /// The local sessions' tracker, when this server keeps local sessions
    /// (`dump` lists them apart, as ZooKeeper's `localSessionTracker`).
    pub fn local_sessions_tracker(&self) -> Option<&SessionTracker> {
        self.local_sessions().then_some(&self.local)
    }

    pub fn session_of(&self, conn: ConnectionId) -> Option<SessionId> {
        self.connections.get(&conn).and_then(|c| c.session)
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Gives the tree back, e.g. when the server changes role.
    pub fn into_tree(self) -> DataTree {
        self.tree
    }

    /// The tree back, and the figures ZooKeeper keeps for the process's
    /// life rather than a role's (its `ServerMetrics`: `readlatency`,
    /// `updatelatency`, `quota_exceeded_error_per_namespace`), for the
    /// pipeline of the next role ([`Pipeline::carry`]).
    pub fn into_parts(mut self) -> (DataTree, LifetimeFigures) {
        let figures = LifetimeFigures {
            read_latency: std::mem::take(&mut self.stats.read_latency),
            update_latency: std::mem::take(&mut self.stats.update_latency),
            quota_exceeded: self.preparer.take_quota_exceeded(),
        };
        (self.tree, figures)
    }

    /// Takes the figures the previous role's pipeline kept.
    pub fn carry(&mut self, figures: LifetimeFigures) {
        self.stats.read_latency = figures.read_latency;
        self.stats.update_latency = figures.update_latency;
        self.preparer.carry_quota_exceeded(figures.quota_exceeded);
    }

    /// Leader: a learner asks whether a resumed session is alive; answering
    /// touches it and, if it is, makes `from` its owner (ZooKeeper's
    /// `Leader.revalidateSession`), so requests still coming through its
    /// old server are SESSIONMOVED.
    pub fn revalidate(&mut self, session: SessionId, timeout_ms: i32, from: SessionOwner) -> bool {
        let valid = self
            .sessions
            .touch_for(session, timeout_ms, self.elapsed_ms);
        if valid {
            self.sessions.set_owner(session, from);
        }
        valid
    }

    /// Leader: sessions a learner's clients touched since its last ping.
    pub fn touch_sessions(&mut self, now: Now, sessions: &[(SessionId, i32)]) {
        for &(id, timeout_ms) in sessions {
            self.sessions.touch_for(id, timeout_ms, now.elapsed_ms);
        }
    }

    /// Learner: the sessions touched since the last call, for the PING reply.
    pub fn take_touched(&mut self) -> Vec<(SessionId, i32)> {
        self.touched.drain().collect()
    }

    /// Feeds one input; appends the resulting actions to `out`.
    pub fn handle(&mut self, now: Now, input: Input, out: &mut Vec<Action>) {
        let now_ms = now.wall_ms;
        self.now_ms = now_ms;
        self.elapsed_ms = now.elapsed_ms;
        match input {
            Input::Accepted {
                conn,
                remote,
                identities,
            } => {
                let mut auth = AuthInfo::new(remote.ip());
                for id in identities {
                    auth.add(id);
                }
                self.connections.insert(
                    conn,
                    Connection {
                        remote,
                        state: ConnState::AwaitingConnect,
                        session: None,
                        timeout_ms: 0,
                        read_only: None,
                        auth,
                        queue: VecDeque::new(),
                        parked: Vec::new(),
                        connect_ms: now_ms,
                        stats: ConnectionStats::new(now_ms),
                        sasl: None,
                    },
                );
            }
            Input::Connect { conn, request } => self.on_connect(now_ms, conn, request, out),
            Input::Request { conn, header, body } => {
                self.on_request(now_ms, conn, header, body, out)
            }
            Input::Disconnected { conn } => self.drop_connection(conn),
            Input::Alive { conn } => {
                let c = self.connections.get(&conn);
                if let Some((session, timeout)) = c.and_then(|c| Some((c.session?, c.timeout_ms))) {
                    self.touch_session(session, timeout);
                }
            }
            Input::Durable { zxid } => self.on_durable(now_ms, zxid, out),
            Input::Tick => self.on_tick(now_ms, out),
            Input::Committed { txn } => self.apply(now_ms, InFlight { txn, origin: None }, out),
            Input::SyncDone { session, cxid } => self.on_sync_done(now_ms, session, cxid, out),
            Input::Revalidated { session, valid } => {
                self.on_revalidated(now_ms, session, valid, out)
            }
            Input::Forwarded {
                request,
                auth,
                from,
                origin,
            } => self.on_forwarded(now_ms, request, auth, from, origin, out),
        }
    }

    fn on_connect(
        &mut self,
        now_ms: i64,
        conn: ConnectionId,
        req: ConnectRequest,
        out: &mut Vec<Action>,
    ) {
        self.stats.packets_received += 1;
        let Some(c) = self.connections.get_mut(&conn) else {
            return;
        };
        if c.state != ConnState::AwaitingConnect {
            return;
        }
        c.stats.received += 1;
        c.connect_ms = now_ms;
        // The client has seen a newer state than ours: it must try another
        // server. ZooKeeper closes without answering (reference B step 2).
        let ours = last_processed(self.mode, &self.tree);
        if req.last_zxid_seen > ours.0 {
            tracing::info!(
                client_zxid = %Zxid(req.last_zxid_seen), our_zxid = %ours,
                "refusing a client that has seen a newer zxid"
            );
            out.push(Action::Close { conn });
            return;
        }
        c.read_only = req.read_only;
        if self.mode == Mode::ReadOnly
            && (req.read_only != Some(true)
                || self
                    .tree
                    .session_timeout(SessionId(req.session_id))
                    .is_some())
        {
            // `ReadOnlyZooKeeperServer`: a client that does not allow a
            // read-only server, or a global session, is closed unanswered.
            tracing::info!(
                conn = conn.0,
                "read-only mode: closing a client it may not serve"
            );
            out.push(Action::Close { conn });
            return;
        }
        let timeout = negotiate_timeout(
            req.time_out,
            self.cfg.min_session_timeout_ms,
            self.cfg.max_session_timeout_ms,
        );
        c.timeout_ms = timeout;
        // Field by field: `c` still borrows `connections`.
        let local_sessions = (self.cfg.local_sessions && self.mode != Mode::Standalone)
            || self.mode == Mode::ReadOnly;
        if req.session_id == 0 && local_sessions {
            // A local session: no txn, answered at once
            // (`QuorumZooKeeperServer.setLocalSessionFlag`).
            let id = self.sessions.next_session_id();
            c.session = Some(id);
            self.local.add(id, timeout, self.elapsed_ms);
            self.session_owner.insert(id, conn);
            let zxid = self.last_processed_zxid();
            self.session_created(conn, zxid, now_ms);
            self.establish(now_ms, conn, out);
            return;
        }
        if req.session_id == 0 {
            // The session id carries this server's id in its top byte, on
            // a learner too (reference F.8).
            let id = self.sessions.next_session_id();
            c.session = Some(id);
            c.state = ConnState::CreatingSession;
            self.session_owner.insert(id, conn);
            if self.mode == Mode::Learner {
                let request = ForwardedRequest {
                    session_id: id.0,
                    cxid: 0,
                    op: op::CREATE_SESSION,
                    body: Bytes::copy_from_slice(&timeout.to_be_bytes()),
                    origin: 0,
                };
                out.push(Action::Forward {
                    request,
                    auth: Vec::new(),
                });
                return;
            }
            self.sessions.add(id, timeout, self.elapsed_ms);
            self.sessions.set_owner(id, SessionOwner::Local);
            // Field-wise so `c` (borrowed from `connections`) stays usable.
            self.last_assigned = self.last_assigned.next();
            let zxid = self.last_assigned;
            let ctx = context(id, 0, zxid, now_ms, &c.auth, false);
            let txn = self
                .preparer
                .prepare_create_session(&self.tree, &ctx, timeout);
            self.log(txn, Some((conn, 0)), out);
            return;
        }
        let id = SessionId(req.session_id);
        // A session has one connection per server: a new one closes the
        // old, even before the password is checked (behaviours 35, 36).
        if let Some(old) = self.session_owner.remove(&id) {
            if old != conn {
                self.drop_connection(old);
                out.push(Action::Close { conn: old });
            }
        }
        let password_ok = req.passwd.as_ref() == session_password(id).as_slice();
        if password_ok && self.local_sessions() && self.local.touch(id, self.elapsed_ms) {
            // A local session resumed where it lives
            // (`LearnerZooKeeperServer.revalidateSession`).
            if let Some(c) = self.connections.get_mut(&conn) {
                c.session = Some(id);
            }
            self.session_owner.insert(id, conn);
            self.establish(now_ms, conn, out);
            return;
        }
        if password_ok && self.mode == Mode::Learner {
            // Only the leader knows whether the session is alive: ask it.
            if let Some(c) = self.connections.get_mut(&conn) {
                c.session = Some(id);
                c.state = ConnState::Revalidating;
            }
            self.session_owner.insert(id, conn);
            out.push(Action::Revalidate {
                session: id,
                timeout_ms: timeout,
            });
            return;
        }
        let valid = password_ok && self.sessions.touch_for(id, timeout, self.elapsed_ms);
        if !valid {
            self.refuse_session(conn, out);
            return;
        }
        // ZooKeeper's `revalidateSession` on the leader (or standalone):
        // the session is now this server's.
        self.sessions.set_owner(id, SessionOwner::Local);
        if let Some(c) = self.connections.get_mut(&conn) {
            c.session = Some(id);
        }
        self.session_owner.insert(id, conn);
        self.establish(now_ms, conn, out);
    }

    /// `timeOut = 0`: the client takes its session as expired (reference B).
    fn refuse_session(&mut self, conn: ConnectionId, out: &mut Vec<Action>) {
        let Some(c) = self.connections.get_mut(&conn) else {
            return;
        };
        let resp = ConnectResponse {
            protocol_version: 0,
            time_out: 0,
            session_id: 0,
            passwd: Bytes::from_static(&[0; 16]),
            read_only: c.read_only.map(|_| false),
        };
        c.state = ConnState::Established;
        c.session = None;
        out.push(Action::Send {
            conn,
            frame: frame(&resp),
        });
        out.push(Action::Close { conn });
    }

    fn on_revalidated(
        &mut self,
        now_ms: i64,
        session: SessionId,
        valid: bool,
        out: &mut Vec<Action>,
    ) {
        let Some(&conn) = self.session_owner.get(&session) else {
            return;
        };
        let waiting = self
            .connections
            .get(&conn)
            .is_some_and(|c| c.state == ConnState::Revalidating);
        if !waiting {
            return;
        }
        if valid {
            self.establish(now_ms, conn, out);
        } else {
            self.session_owner.remove(&session);
            self.refuse_session(conn, out);
        }
    }

    /// Sends the ConnectResponse and runs the requests the client pipelined
    /// behind its ConnectRequest.
    fn establish(&mut self, now_ms: i64, conn: ConnectionId, out: &mut Vec<Action>) {
        let mode = self.mode;
        let Some(c) = self.connections.get_mut(&conn) else {
            return;
        };
        let Some(id) = c.session else { return };
        c.state = ConnState::Established;
        // The session's writes its earlier connections here left in
        // flight come first: its requests on this connection wait for them.
        if let Some(xids) = self.earlier.remove(&id) {
            c.queue
                .extend(xids.into_iter().map(|xid| Queued::Earlier { xid }));
        }
        let resp = ConnectResponse {
            protocol_version: 0,
            time_out: c.timeout_ms,
            session_id: id.0,
            passwd: Bytes::copy_from_slice(&session_password(id)),
            read_only: c.read_only.map(|_| mode == Mode::ReadOnly),
        };
        c.stats.sent += 1;
        self.stats.packets_sent += 1;
        out.push(Action::Send {
            conn,
            frame: frame(&resp),
        });
        let parked = std::mem::take(&mut c.parked);
        for (header, body, received) in parked {
            self.on_request_at(now_ms, received, conn, header, body, out);
        }
    }

    fn on_request(
        &mut self,
        now_ms: i64,
        conn: ConnectionId,
        header: RequestHeader,
        body: Result<Request, DecodeError>,
        out: &mut Vec<Action>,
    ) {
        self.stats.packets_received += 1;
        let Some(c) = self.connections.get_mut(&conn) else {
            return;
        };
        c.stats.received += 1;
        match c.state {
            ConnState::AwaitingConnect => {
                // A request before any ConnectRequest: ZooKeeper would take
                // its bytes for a ConnectRequest; we refuse it plainly.
                out.push(Action::Close { conn });
            }
            ConnState::CreatingSession | ConnState::Revalidating => {
                c.parked.push((header, body, now_ms))
            }
            ConnState::Established => self.on_request_at(now_ms, now_ms, conn, header, body, out),
        }
    }

    fn on_request_at(
        &mut self,
        now_ms: i64,
        received_ms: i64,
        conn: ConnectionId,
        header: RequestHeader,
        body: Result<Request, DecodeError>,
        out: &mut Vec<Action>,
    ) {
        // Before the touch: ZooKeeper touches the session when it submits
        // the request, after this check.
        if !self.authenticated_enough(conn, header.op) {
            // `AuthenticationHelper.enforceAuthentication`: the error, then
            // the close; the session stays until it expires.
            tracing::info!(conn = conn.0, "request before authentication; closing");
            let code = ErrorCode::SessionClosedRequireSaslAuth.code();
            self.send_reply(conn, header.xid, 0, code, &Response::Empty, None, out);
            self.drop_connection(conn);
            out.push(Action::Close { conn });
            return;
        }
        let c = self.connections.get(&conn);
        let Some((session, timeout)) = c.and_then(|c| Some((c.session?, c.timeout_ms))) else {
            return;
        };
        // Any packet from the client keeps its session alive (reference B).
        let touched = self.touch_session(session, timeout);
        let local = touched == Touched::Local;
        if touched == Touched::Gone && !matches!(body, Ok(Request::Auth(_) | Request::Sasl(_))) {
            // A session being closed (its closeSession is under way) or
            // gone: ZooKeeper's `submitRequest` drops the request
            // ("Dropping request"), unanswered; the connection closes when
            // the close applies. Auth and SASL packets never reach it.
            tracing::debug!(
                conn = conn.0,
                xid = header.xid,
                "request on a closing session dropped"
            );
            return;
        }

        if self.mode == Mode::ReadOnly && refused_when_read_only(header.op) {
            // `ReadOnlyRequestProcessor`: answered at once, the connection
            // stays.
            let zxid = self.last_processed_zxid().0;
            let code = ErrorCode::NotReadOnly.code();
            self.send_reply(conn, header.xid, zxid, code, &Response::Empty, None, out);
            return;
        }
        let request = match body {
            Err(DecodeError::UnknownOpcode(code)) => {
                // Behaviour 17: UNIMPLEMENTED, then close.
                tracing::info!(
                    conn = conn.0,
                    op = code,
                    "unknown opcode; closing the connection"
                );
                self.unimplemented(conn, header.xid, out);
                return;
            }
            Ok(Request::Sasl(sasl)) => {
                self.on_sasl(conn, header.xid, sasl.token.unwrap_or_default(), out);
                return;
            }
            Ok(Request::Check(_)) | Ok(Request::DeleteContainer(_)) => {
                // A bare `check` (ZooKeeper ≥ 3.8.5 refuses it: 3.8.0 logged
                // it and could not restart, behaviour 19) and the reaper's
                // internal deleteContainer are not for clients.
                self.unimplemented(conn, header.xid, out);
                return;
            }
            // ZooKeeper reads auth and SASL packets in `processPacket`,
            // where a body that does not decode throws and closes the
            // connection unanswered.
            Err(e) if header.op == op::AUTH || header.op == op::SASL => {
                tracing::info!(conn = conn.0, op = header.op, error = %e, "undecodable auth packet; closing");
                self.drop_connection(conn);
                out.push(Action::Close { conn });
                return;
            }
            Err(e) if Request::is_write_op(header.op) => {
                tracing::debug!(conn = conn.0, xid = header.xid, error = %e, "undecodable write");
                self.undecodable_write(now_ms, received_ms, conn, session, header, out);
                return;
            }
            Ok(Request::Auth(auth)) => {
                // Auth is answered at once, outside the request order, with
                // zxid 0 (reference D.9).
                let Some(c) = self.connections.get_mut(&conn) else {
                    return;
                };
                keep_queued_identities(c);
                match acl::authenticate(&mut c.auth, &self.cfg.auth, &auth.scheme, &auth.auth) {
                    Ok(()) => self.send_reply(conn, header.xid, 0, 0, &Response::Empty, None, out),
                    Err(code) => {
                        self.send_reply(
                            conn,
                            header.xid,
                            0,
                            code.code(),
                            &Response::Empty,
                            None,
                            out,
                        );
                        // Nothing the client sent after it runs: ZooKeeper's
                        // `processPacket` calls `disableRecv` on AUTHFAILED.
                        self.drop_connection(conn);
                        out.push(Action::Close { conn });
                    }
                }
                return;
            }
            other => other,
        };
        // A local session's close is this server's alone: answered in
        // order with the other requests, no txn.
        let is_write = matches!(&request, Ok(r) if r.is_write())
            && !(local && matches!(request, Ok(Request::CloseSession)));
        // On a learner a sync goes through the leader, in order with the
        // session's writes (reference D.8).
        let forwarded_sync = self.mode == Mode::Learner && matches!(&request, Ok(Request::Sync(_)));
        if is_write || forwarded_sync {
            let Ok(request) = request else {
                unreachable!("is_write implies Ok")
            };
            if matches!(request, Request::CloseSession) {
                // ZooKeeper marks the session closing when it prepares the
                // close, so it is neither touched nor expired again.
                self.sessions.set_closing(session);
            }
            let mut ephemeral_on_local = false;
            if local && creates_ephemeral(&request) {
                if self.cfg.local_sessions_upgrading {
                    self.upgrade(now_ms, session, out);
                } else {
                    ephemeral_on_local = true;
                }
            }
            // closeSession is not checked: the expirer submits it too,
            // with no owner (ZooKeeper's `PrepRequestProcessor`).
            let moved = !matches!(request, Request::CloseSession)
                && !owned_here(self.mode, &mut self.sessions, session);
            let Some(c) = self.connections.get_mut(&conn) else {
                return;
            };
            let sync_path = match &request {
                Request::Sync(p) => Some(p.path.clone()),
                _ => None,
            };
            c.queue.push_back(Queued::Write {
                xid: header.xid,
                op: header.op,
                received_ms,
                sync_path,
                ephemeral_on_local,
            });
            if self.mode == Mode::Learner {
                // Sized for a typical write (a path and a short value) so
                // that encoding does not grow the buffer two or three times.
                let mut w = Writer::with_capacity(FRAME_CAPACITY);
                request.write_body(&mut w);
                let forwarded = ForwardedRequest {
                    session_id: session.0,
                    cxid: header.xid,
                    op: header.op,
                    body: w.into_bytes(),
                    origin: 0,
                };
                out.push(Action::Forward {
                    request: forwarded,
                    auth: c.auth.ids().to_vec(),
                });
                return;
            }
            self.last_assigned = self.last_assigned.next();
            let zxid = self.last_assigned;
            let mut ctx = context(session, header.xid, zxid, now_ms, &c.auth, moved);
            ctx.session_local = local;
            let txn = self.preparer.prepare(&self.tree, &ctx, &request);
            self.log(txn, Some((conn, header.xid)), out);
        } else {
            let Some(c) = self.connections.get_mut(&conn) else {
                return;
            };
            if c.queue.is_empty() {
                self.execute(now_ms, received_ms, conn, header, request, out);
            } else {
                c.queue.push_back(Queued::Other {
                    header,
                    body: request,
                    received_ms,
                    auth: None,
                });
            }
        }
    }

    /// `localSessionsEnabled` applies: quorum servers only, as ZooKeeper's
    /// standalone server has no local sessions.
    fn local_sessions(&self) -> bool {
        (self.cfg.local_sessions && self.mode != Mode::Standalone) || self.mode == Mode::ReadOnly
    }

    /// Makes a local session global before its first ephemeral create
    /// (`makeUpgradeRequest`): a createSession with its timeout, cxid 0,
    /// answered to nobody. The session stops being local at once.
    fn upgrade(&mut self, now_ms: i64, session: SessionId, out: &mut Vec<Action>) {
        let Some(timeout) = self.local.timeout(session) else {
            return;
        };
        self.local.remove(session);
        tracing::info!(%session, "upgrading a local session to a global one");
        if self.mode == Mode::Learner {
            out.push(Action::Forward {
                request: ForwardedRequest {
                    session_id: session.0,
                    cxid: 0,
                    op: op::CREATE_SESSION,
                    body: Bytes::copy_from_slice(&timeout.to_be_bytes()),
                    origin: 0,
                },
                auth: Vec::new(),
            });
            return;
        }
        self.sessions.add(session, timeout, self.elapsed_ms);
        self.sessions.set_owner(session, SessionOwner::Local);
        let zxid = self.next_zxid();
        let auth = AuthInfo::new(std::net::Ipv4Addr::LOCALHOST.into());
        let ctx = context(session, 0, zxid, now_ms, &auth, false);
        let txn = self
            .preparer
            .prepare_create_session(&self.tree, &ctx, timeout);
        self.log(txn, None, out);
    }

    /// A local session's closeSession: removed here, answered, and the
    /// connection closed; no txn (`setLocalSessionFlag`).
    fn close_local(
        &mut self,
        conn: ConnectionId,
        xid: i32,
        received_ms: i64,
        out: &mut Vec<Action>,
    ) {
        if let Some(session) = self.session_of(conn) {
            self.local.remove(session);
        }
        let zxid = self.last_processed_zxid().0;
        let answered = Answered::new(op::CLOSE_SESSION, received_ms);
        self.send_reply(conn, xid, zxid, 0, &Response::Empty, Some(answered), out);
        self.drop_connection(conn);
        out.push(Action::Close { conn });
    }

    /// Whether `op` may run on the connection under `enforce.auth`: auth
    /// and SASL always may, anything else once the connection holds an id
    /// of an enforced scheme.
    fn authenticated_enough(&self, conn: ConnectionId, op: i32) -> bool {
        let Some(schemes) = &self.cfg.enforce_auth else {
            return true;
        };
        if op == op::AUTH || op == op::SASL {
            return true;
        }
        self.connections
            .get(&conn)
            .is_some_and(|c| c.auth.ids().iter().any(|id| schemes.contains(&id.scheme)))
    }

    /// A SASL token (ZooKeeper's `processSasl`): answered at once with zxid
    /// 0, outside the request order, as `auth` is. A completed exchange
    /// adds `sasl:<user>`, and `super:` for `zookeeper.superUser`.
    fn on_sasl(&mut self, conn: ConnectionId, xid: i32, token: Bytes, out: &mut Vec<Action>) {
        let answer = |token: Option<Vec<u8>>| {
            Response::Sasl(SaslToken {
                token: token.map(Bytes::from),
            })
        };
        let Some(cfg) = self.cfg.sasl.clone() else {
            // No JAAS configuration: ZooKeeper's connection has no SASL
            // server, its NullPointerException is caught, and the answer
            // is OK with a null token.
            self.send_reply(conn, xid, 0, 0, &answer(None), None, out);
            return;
        };
        let Some(c) = self.connections.get_mut(&conn) else {
            return;
        };
        let kerberos = self.cfg.kerberos.clone();
        let exchange = c.sasl.get_or_insert_with(|| match &kerberos {
            Some(k) => SaslExchange::Gssapi(k.exchange()),
            None => SaslExchange::DigestMd5(ServerExchange::new(
                digest_md5::CLIENT_PORT,
                digest_md5::nonce(),
            )),
        });
        // (the token to answer with, the id once authenticated)
        let stepped = match exchange {
            SaslExchange::DigestMd5(d) => d
                .step(&token, &cfg.users)
                .map(|s| (Some(s.token), s.authenticated)),
            SaslExchange::Gssapi(g) => g.step(&token).map(|s| {
                let id = s
                    .principal
                    .zip(kerberos.as_ref())
                    .map(|(p, k)| k.authorized_id(&p));
                (s.token, id)
            }),
        };
        match stepped {
            Ok((reply, authenticated)) => {
                if let Some(user) = authenticated {
                    tracing::info!(conn = conn.0, user, "SASL authenticated");
                    keep_queued_identities(c);
                    c.auth.add(Id::new("sasl", &user));
                    if cfg.super_users.contains(&user) {
                        c.auth.add(Id::new("super", ""));
                    }
                }
                self.send_reply(conn, xid, 0, 0, &answer(reply), None, out);
            }
            Err(why) => {
                tracing::warn!(conn = conn.0, why, "SASL authentication failed");
                // `processSasl`: a server that requires SASL
                // (`enforce.auth.schemes` with sasl) closes a failed client
                // even with `allowSaslFailedClients`, with -124.
                let required = self
                    .cfg
                    .enforce_auth
                    .as_ref()
                    .is_some_and(|schemes| schemes.iter().any(|s| s == "sasl"));
                if self.cfg.allow_sasl_failed_clients && !required {
                    self.send_reply(conn, xid, 0, 0, &answer(None), None, out);
                } else {
                    let code = if required {
                        ErrorCode::SessionClosedRequireSaslAuth
                    } else {
                        ErrorCode::AuthFailed
                    };
                    self.send_reply(conn, xid, 0, code.code(), &answer(None), None, out);
                    self.drop_connection(conn);
                    out.push(Action::Close { conn });
                }
            }
        }
    }

    /// A write whose body does not decode: ZooKeeper has taken a zxid for it
    /// before reading the body, and logs an error txn (MARSHALLINGERROR) in
    /// its place, answered in the session's order like any write.
    fn undecodable_write(
        &mut self,
        now_ms: i64,
        received_ms: i64,
        conn: ConnectionId,
        session: SessionId,
        header: RequestHeader,
        out: &mut Vec<Action>,
    ) {
        let Some(c) = self.connections.get_mut(&conn) else {
            return;
        };
        c.queue.push_back(Queued::Write {
            xid: header.xid,
            op: header.op,
            received_ms,
            sync_path: None,
            ephemeral_on_local: false,
        });
        if self.mode == Mode::Learner {
            // The leader logs it: an empty body decodes for none of these
            // ops, so its `on_forwarded` makes the same error txn.
            out.push(Action::Forward {
                request: ForwardedRequest {
                    session_id: session.0,
                    cxid: header.xid,
                    op: header.op,
                    body: Bytes::new(),
                    origin: 0,
                },
                auth: c.auth.ids().to_vec(),
            });
            return;
        }
        // Field-wise so `c` (borrowed from `connections`) stays usable.
        self.last_assigned = self.last_assigned.next();
        let ctx = context(
            session,
            header.xid,
            self.last_assigned,
            now_ms,
            &c.auth,
            false,
        );
        let txn = error_txn(&ctx, ErrorCode::MarshallingError);
        self.log(txn, Some((conn, header.xid)), out);
    }

    /// Leader: prepares a learner's forwarded request as if its client were
    /// connected here; the learner answers the client when the txn commits.
    fn on_forwarded(
        &mut self,
        now_ms: i64,
        req: ForwardedRequest,
        auth: Vec<Id>,
        from: SessionOwner,
        origin: ServerId,
        out: &mut Vec<Action>,
    ) {
        let session = SessionId(req.session_id);
        let zxid = self.next_zxid();
        let auth = AuthInfo::from_ids(auth);
        let mut ctx = context(session, req.cxid, zxid, now_ms, &auth, false);
        let txn = if req.op == op::CREATE_SESSION {
            let timeout = req
                .body
                .get(..4)
                .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
                .unwrap_or(self.cfg.min_session_timeout_ms);
            self.sessions.add(session, timeout, self.elapsed_ms);
            self.sessions.set_owner(session, from);
            self.preparer
                .prepare_create_session(&self.tree, &ctx, timeout)
        } else {
            match Request::decode(req.op, req.body) {
                Ok(request) if request.is_write() => {
                    if matches!(request, Request::CloseSession) {
                        self.sessions.set_closing(session);
                    } else {
                        ctx.session_moved = !self.sessions.check_owner(session, from);
                    }
                    // `LeaderSessionTracker.checkSession`: a session this
                    // leader does not know, made by another server, may be
                    // that server's local session.
                    ctx.session_local = self.local_sessions()
                        && session_server(session) != self.cfg.server_id
                        && !self.sessions.is_active(session);
                    self.preparer.prepare(&self.tree, &ctx, &request)
                }
                // A body that does not decode still gets a txn, as
                // ZooKeeper logs an error txn for it (reference C): the
                // learner's client then sees MARSHALLINGERROR.
                other => {
                    let code = match other {
                        Err(e) => e.reply_code(),
                        Ok(_) => ErrorCode::Unimplemented,
                    };
                    error_txn(&ctx, code)
                }
            }
        };
        // Only the learner that forwarded it answers its client (see
        // `apply`).
        let txn = Txn {
            origin: origin.0,
            ..txn
        };
        self.log(txn, None, out);
    }

    /// Learner: the leader answered a forwarded sync; reply in session order.
    fn on_sync_done(&mut self, now_ms: i64, session: SessionId, cxid: i32, out: &mut Vec<Action>) {
        let conn = self.session_owner.get(&session).copied();
        self.finish_write(now_ms, conn, session, cxid, None, out);
    }

    /// Gives the txn its place in the log.
    fn log(&mut self, txn: Txn, origin: Option<(ConnectionId, i32)>, out: &mut Vec<Action>) {
        let zxid = Zxid(txn.zxid);
        let len = txn.encoded_len();
        if self.txn_buf.capacity() < len {
            // The old buffer lives on in the txns cut from it (the log's
            // queue, the leader's committed window) and goes with the last.
            self.txn_buf = BytesMut::with_capacity(len.max(TXN_BUF_CAPACITY));
        }
        let bytes = match txn.encode(&mut self.txn_buf) {
            Ok(()) => self.txn_buf.split().freeze(),
            // Refused only by a buffer that cannot grow, which BytesMut
            // is not; kept correct regardless.
            Err(_) => Bytes::from(txn.encode_to_vec()),
        };
        if matches!(self.mode, Mode::Leader { .. }) {
            self.stats
                .proposal_sizes
                .record(crate::proposal_size::proposal_size(&txn));
        }
        out.push(Action::Append { zxid, txn: bytes });
        self.in_flight.push_back(InFlight { txn, origin });
    }

    fn next_zxid(&mut self) -> Zxid {
        self.last_assigned = self.last_assigned.next();
        self.last_assigned
    }

    fn on_durable(&mut self, now_ms: i64, zxid: Zxid, out: &mut Vec<Action>) {
        while self.in_flight.front().is_some_and(|f| f.txn.zxid <= zxid.0) {
            let Some(f) = self.in_flight.pop_front() else {
                break;
            };
            self.apply(now_ms, f, out);
        }
    }

    fn apply(&mut self, now_ms: i64, f: InFlight, out: &mut Vec<Action>) {
        // While no connection watches anything there is nothing to deliver,
        // and the tree need not hand over an ACL per event.
        let watching = self.watches.total_watch_count() > 0;
        let applied = self.tree.apply_with(&f.txn, watching);
        self.preparer.applied(applied.zxid);

        // Events before replies: a client sees the notification before any
        // response that reveals the change (behaviour 23, reference D.6).
        for (event, acl) in applied.events.iter().zip(&applied.event_acls) {
            self.notify(event, acl, applied.zxid.0, out);
        }

        // The connection to answer: known on the server that prepared the
        // txn; on a learner, the local connection holding the session, if
        // this learner forwarded the request. Another server's txn of the
        // same session can carry the same cxid: a client that moved its
        // session here left a connection elsewhere that sent a write with
        // it (its SESSIONMOVED error txn would close this connection).
        let origin = f.origin.map(|(conn, _)| conn).or_else(|| {
            (self.mode == Mode::Learner && f.txn.origin == self.cfg.server_id.0)
                .then(|| {
                    self.session_owner
                        .get(&SessionId(f.txn.session_id))
                        .copied()
                })
                .flatten()
        });
        if let Some(conn) = origin {
            let is_create_session = matches!(
                f.txn.body.as_ref().and_then(|b| b.op.as_ref()),
                Some(txn_body::Op::CreateSession(_))
            );
            let creating = self
                .connections
                .get(&conn)
                .is_some_and(|c| c.state == ConnState::CreatingSession);
            if is_create_session {
                if creating {
                    self.session_created(conn, applied.zxid, now_ms);
                    self.establish(now_ms, conn, out);
                }
            } else {
                let session = SessionId(f.txn.session_id);
                let result = Some(&applied.result);
                self.finish_write(now_ms, Some(conn), session, f.txn.cxid, result, out);
            }
        }

        if let Some(closed) = applied.closed_session {
            self.sessions.remove(closed);
            if let Some(conn) = self.session_owner.remove(&closed) {
                self.drop_connection(conn);
                out.push(Action::Close { conn });
            }
            self.earlier.remove(&closed);
        }

        self.txns_since_snapshot += 1;
        let size_limited = self.cfg.snap_size_limit_bytes > 0;
        if size_limited {
            self.bytes_since_snapshot += f.txn.encoded_len() as u64;
        }
        let due = self.txns_since_snapshot >= self.snapshot_threshold
            || (size_limited && self.bytes_since_snapshot > self.snapshot_size_threshold);
        if due && self.cfg.periodic_snapshots {
            self.txns_since_snapshot = 0;
            self.bytes_since_snapshot = 0;
            self.snapshot_threshold = snapshot_threshold(self.cfg.snap_count, applied.zxid);
            self.snapshot_size_threshold =
                snapshot_threshold(self.cfg.snap_size_limit_bytes, applied.zxid);
            out.push(Action::Snapshot(self.tree.snapshot()));
        }
    }

    /// Replies to the write (or forwarded sync) `xid` of `session` at the
    /// head of the queue of `conn`, the connection that sent it, then runs
    /// what queued behind it. `result` is `None` for a sync. A write of a
    /// connection that has gone is answered by nobody; the session's
    /// connection here now, or its list of earlier writes, stops waiting
    /// for it.
    fn finish_write(
        &mut self,
        now_ms: i64,
        conn: Option<ConnectionId>,
        session: SessionId,
        xid: i32,
        result: Option<&Result<Response, ErrorCode>>,
        out: &mut Vec<Action>,
    ) {
        let at_head = |c: &Connection| match c.queue.front() {
            Some(Queued::Write { xid: x, .. } | Queued::Earlier { xid: x }) => *x == xid,
            _ => false,
        };
        // Another connection of the session matches only an earlier
        // connection's write, never one of its own with the same xid
        // (clients such as kazoo count xids from 1 on every connection).
        let earlier_at_head = |c: &Connection| matches!(c.queue.front(), Some(Queued::Earlier { xid: x }) if *x == xid);
        let sender = conn.filter(|c| self.connections.get(c).is_some_and(at_head));
        let Some(conn) = sender.or_else(|| {
            self.session_owner
                .get(&session)
                .copied()
                .filter(|c| self.connections.get(c).is_some_and(earlier_at_head))
        }) else {
            match self.earlier.get_mut(&session) {
                Some(xids) if xids.front() == Some(&xid) => {
                    xids.pop_front();
                    if xids.is_empty() {
                        self.earlier.remove(&session);
                    }
                }
                // On a learner, a txn of this session prepared for another
                // server's connection (the session moved): nothing to answer.
                _ if self.mode == Mode::Learner || conn.is_none() => {}
                _ => tracing::error!(
                    session = %session,
                    xid,
                    "applied write is not at the head of its connection queue"
                ),
            }
            return;
        };
        let Some(c) = self.connections.get_mut(&conn) else {
            return;
        };
        if matches!(c.queue.front(), Some(Queued::Earlier { .. })) {
            c.queue.pop_front();
            self.drain_queue(now_ms, conn, out);
            return;
        }
        let mut ephemeral_answer = None;
        let (op, received_ms, sync_path) = match c.queue.front() {
            Some(Queued::Write { xid: x, .. }) if *x == xid => match c.queue.pop_front() {
                Some(Queued::Write {
                    op,
                    received_ms,
                    sync_path,
                    ephemeral_on_local,
                    ..
                }) => {
                    if ephemeral_on_local
                        && result.is_some_and(|r| *r == Err(ErrorCode::SessionExpired))
                    {
                        ephemeral_answer = Some(Err(ErrorCode::EphemeralOnLocalSession));
                    }
                    (op, received_ms, sync_path)
                }
                _ => return,
            },
            _ => return,
        };
        let result = ephemeral_answer.as_ref().or(result);
        if result.is_some_and(is_session_moved) {
            self.close_moved(conn, out);
            return;
        }
        let (err, body) = match (result, sync_path) {
            (Some(Ok(r)), _) => (0, r.clone()),
            (Some(Err(e)), _) => (e.code(), Response::Empty),
            (None, path) => (
                0,
                Response::Sync(SyncResponse {
                    path: path.unwrap_or_default(),
                }),
            ),
        };
        self.send_reply(
            conn,
            xid,
            self.last_processed_zxid().0,
            err,
            &body,
            Some(match result {
                Some(Err(_)) => Answered::failed_write(received_ms),
                Some(Ok(_)) => Answered::update(op, received_ms),
                // A sync carries no txn.
                None => Answered::new(op, received_ms),
            }),
            out,
        );
        if op == op::CLOSE_SESSION {
            // The txn's `closed_session` closes the connection, after this reply.
            return;
        }
        self.drain_queue(now_ms, conn, out);
    }

    /// Runs the connection's queued requests up to its next unapplied write.
    fn drain_queue(&mut self, now_ms: i64, conn: ConnectionId, out: &mut Vec<Action>) {
        loop {
            let Some(c) = self.connections.get_mut(&conn) else {
                return;
            };
            match c.queue.front() {
                Some(Queued::Other { .. }) => {}
                _ => return,
            }
            let Some(Queued::Other {
                header,
                body,
                received_ms,
                auth,
            }) = c.queue.pop_front()
            else {
                return;
            };
            match auth {
                None => self.execute(now_ms, received_ms, conn, header, body, out),
                Some(then) => {
                    // Run with the identities it came with, then restore
                    // the connection's own.
                    let now = std::mem::replace(&mut c.auth, *then);
                    self.execute(now_ms, received_ms, conn, header, body, out);
                    if let Some(c) = self.connections.get_mut(&conn) {
                        c.auth = now;
                    }
                }
            }
        }
    }

    /// Answers a request that is not a write: reads, ping, sync, watches.
    fn execute(
        &mut self,
        now_ms: i64,
        received_ms: i64,
        conn: ConnectionId,
        header: RequestHeader,
        body: Result<Request, DecodeError>,
        out: &mut Vec<Action>,
    ) {
        let _ = now_ms;
        if let Some(session) = self.connections.get(&conn).and_then(|c| c.session) {
            if !owned_here(self.mode, &mut self.sessions, session) {
                self.close_moved(conn, out);
                return;
            }
        }
        let zxid = self.last_processed_zxid().0;
        let request = match body {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(conn = conn.0, xid = header.xid, error = %e, "undecodable request");
                self.send_reply(
                    conn,
                    header.xid,
                    zxid,
                    ErrorCode::MarshallingError.code(),
                    &Response::Empty,
                    Some(Answered::new(header.op, received_ms)),
                    out,
                );
                return;
            }
        };
        let Some(c) = self.connections.get(&conn) else {
            return;
        };
        let Some(session) = c.session else { return };
        let result: Result<Response, ErrorCode> = match &request {
            // Only a local session's close comes here (see `on_request_at`).
            Request::CloseSession => {
                self.close_local(conn, header.xid, received_ms, out);
                return;
            }
            Request::Ping => Ok(Response::Empty),
            // Standalone: every txn is applied before its reply, so a sync
            // has nothing to wait for (reference D.8).
            Request::Sync(PathRequest { path }) => {
                Ok(Response::Sync(SyncResponse { path: path.clone() }))
            }
            Request::SetWatches(sw) => {
                let events = self.watches.set_watches(
                    conn,
                    sw.relative_zxid,
                    &sw.data_watches,
                    &sw.exist_watches,
                    &sw.child_watches,
                    &[],
                    &[],
                    |p| self.tree.stat(p).map(|s| (s.mzxid, s.pzxid)),
                );
                self.send_events(conn, &events, -1, out);
                Ok(Response::Empty)
            }
            Request::SetWatches2(sw) => {
                let events = self.watches.set_watches(
                    conn,
                    sw.relative_zxid,
                    &sw.data_watches,
                    &sw.exist_watches,
                    &sw.child_watches,
                    &sw.persistent_watches,
                    &sw.persistent_recursive_watches,
                    |p| self.tree.stat(p).map(|s| (s.mzxid, s.pzxid)),
                );
                self.send_events(conn, &events, -1, out);
                Ok(Response::Empty)
            }
            Request::AddWatch(req) => {
                let kind = match req.mode {
                    add_watch_mode::PERSISTENT => Some(WatchKind::Persistent),
                    add_watch_mode::PERSISTENT_RECURSIVE => Some(WatchKind::PersistentRecursive),
                    _ => None,
                };
                match kind {
                    Some(kind) => {
                        self.watches.add(conn, &req.path, kind);
                        Ok(Response::AddWatch(ErrorResponse { err: 0 }))
                    }
                    // `WatcherMode.fromZooDef` throws, and ZooKeeper answers
                    // any exception of a request's processing with
                    // MARSHALLINGERROR (checked on 3.8.0).
                    None => Err(ErrorCode::MarshallingError),
                }
            }
            // `WatcherType.fromInt` throws for a type outside 1–5: the same.
            Request::CheckWatches(req) | Request::RemoveWatches(req)
                if !(watcher_type::CHILDREN..=watcher_type::PERSISTENT_RECURSIVE)
                    .contains(&req.watcher_type) =>
            {
                Err(ErrorCode::MarshallingError)
            }
            Request::CheckWatches(req) => {
                if self.watches.contains(conn, &req.path, req.watcher_type) {
                    Ok(Response::Empty)
                } else {
                    Err(ErrorCode::NoWatcher)
                }
            }
            Request::RemoveWatches(req) => {
                if self.watches.remove(conn, &req.path, req.watcher_type) {
                    Ok(Response::Empty)
                } else {
                    Err(ErrorCode::NoWatcher)
                }
            }
            Request::WhoAmI => Ok(Response::WhoAmI(WhoAmIResponse {
                client_info: acl::who_am_i(&c.auth),
            })),
            Request::Exists(r) => {
                let res = self.tree.read(&request, session, &c.auth);
                // exists sets a watch on a missing node too (reference D.5).
                if r.watch {
                    match &res {
                        Ok(_) => self.watches.add(conn, &r.path, WatchKind::Data),
                        Err(ErrorCode::NoNode) => self.watches.add(conn, &r.path, WatchKind::Exist),
                        Err(_) => {}
                    }
                }
                res
            }
            Request::GetData(r) => {
                let res = self.tree.read(&request, session, &c.auth);
                // A failed read leaves no watch (behaviour 27).
                if r.watch && res.is_ok() {
                    self.watches.add(conn, &r.path, WatchKind::Data);
                }
                res
            }
            Request::GetChildren(r) | Request::GetChildren2(r) => {
                let res = self.tree.read(&request, session, &c.auth);
                if r.watch && res.is_ok() {
                    self.watches.add(conn, &r.path, WatchKind::Child);
                }
                res
            }
            Request::GetAcl(_) | Request::GetAllChildrenNumber(_) | Request::GetEphemerals(_) => {
                self.tree.read(&request, session, &c.auth)
            }
            Request::MultiRead(ops) => {
                match self
                    .tree
                    .multi_read(ops, &c.auth, zab_tree::MULTI_READ_MAX_BYTES)
                {
                    Ok(results) => Ok(Response::Multi(results)),
                    Err(MultiReadStop::TooLarge { bytes }) => {
                        tracing::warn!(
                            conn = conn.0,
                            ops = ops.len(),
                            bytes,
                            "multiRead answer too large; closing the connection"
                        );
                        out.push(Action::Close { conn });
                        return;
                    }
                    // The one error answer with a body (see `DataTree::multi_read`).
                    Err(MultiReadStop::Write(before)) => {
                        let zxid = self.last_processed_zxid().0;
                        let code = ErrorCode::MarshallingError.code();
                        let body = Response::Multi(before);
                        let answered = Answered::new(header.op, received_ms);
                        self.send_reply(conn, header.xid, zxid, code, &body, Some(answered), out);
                        return;
                    }
                }
            }
            // Writes never reach here; Auth, Check, DeleteContainer and Sasl
            // were answered in `on_request_at`.
            _ => Err(ErrorCode::Unimplemented),
        };
        let zxid = self.last_processed_zxid().0;
        let (err, body) = match result {
            Ok(r) => (0, r),
            Err(e) => (e.code(), Response::Empty),
        };
        let answered = Answered::new(header.op, received_ms);
        self.send_reply(conn, header.xid, zxid, err, &body, Some(answered), out);
    }

    /// Sends `event` to the connections watching for it that may READ
    /// under `acl`. The others' one-shot watches are used up all the same,
    /// as in ZooKeeper, which triggers the watch and then filters the
    /// delivery (`ServerCnxn.process`, 3.8.4+ and 3.9.2+; checked on
    /// Debian's 3.8.0, which carries that fix).
    fn notify(&mut self, event: &WatchEvent, acl: &[Acl], zxid: i64, out: &mut Vec<Action>) {
        let targets = self.watches.trigger(event);
        if targets.is_empty() {
            return;
        }
        let f = event_frame(event, zxid);
        for conn in targets {
            if let Some(c) = self.connections.get_mut(&conn) {
                if !self.tree.may_read(acl, &c.auth) {
                    continue;
                }
                c.stats.sent += 1;
                self.stats.packets_sent += 1;
                self.stats.response_sizes.record(f.len() - 4);
                out.push(Action::Send {
                    conn,
                    frame: f.clone(),
                });
            }
        }
    }

    fn send_events(
        &mut self,
        conn: ConnectionId,
        events: &[WatchEvent],
        zxid: i64,
        out: &mut Vec<Action>,
    ) {
        for e in events {
            // Every event is a packet sent, as ZooKeeper counts them.
            if let Some(c) = self.connections.get_mut(&conn) {
                c.stats.sent += 1;
            }
            let frame = event_frame(e, zxid);
            self.stats.packets_sent += 1;
            self.stats.response_sizes.record(frame.len() - 4);
            out.push(Action::Send { conn, frame });
        }
    }

    /// Touches `session`, as a packet from its client does: a learner
    /// reports the touch to the leader with its next ping, unless the
    /// session is local.
    fn touch_session(&mut self, session: SessionId, timeout_ms: i32) -> Touched {
        let local = ((self.cfg.local_sessions && self.mode != Mode::Standalone)
            || self.mode == Mode::ReadOnly)
            && self.local.touch(session, self.elapsed_ms);
        if local {
            return Touched::Local;
        }
        if self.mode == Mode::Learner {
            // Only the leader tracks global sessions' deadlines, as
            // ZooKeeper's `LearnerSessionTracker` keeps a touch table alone
            // (scheduling them here kept an emptied bucket per tick for as
            // long as a session lived).
            self.touched.insert(session, timeout_ms);
            return Touched::Global;
        }
        match self
            .sessions
            .touch_for(session, timeout_ms, self.elapsed_ms)
        {
            true => Touched::Global,
            false => Touched::Gone,
        }
    }

    /// UNIMPLEMENTED, then close, as `UnimplementedRequestProcessor`: its
    /// zxid is the request's, which nothing set (-1), so the client keeps
    /// the last zxid it saw.
    fn unimplemented(&mut self, conn: ConnectionId, xid: i32, out: &mut Vec<Action>) {
        let code = ErrorCode::Unimplemented.code();
        self.send_reply(conn, xid, -1, code, &Response::Empty, None, out);
        out.push(Action::Close { conn });
    }

    #[allow(clippy::too_many_arguments)]
    fn send_reply(
        &mut self,
        conn: ConnectionId,
        xid: i32,
        zxid: i64,
        err: i32,
        body: &Response,
        answered: Option<Answered>,
        out: &mut Vec<Action>,
    ) {
        let mut w = Writer::with_capacity(FRAME_CAPACITY);
        w.write_i32(0); // length, patched below
        ReplyHeader { xid, zxid, err }.write(&mut w);
        // An error's body is `Response::Empty` but for one case that
        // ZooKeeper answers with a body (`DataTree::multi_read`).
        body.write_body(&mut w);
        let frame = finish_frame(w);
        self.stats.packets_sent += 1;
        self.stats.response_sizes.record(frame.len() - 4);
        if let Some(c) = self.connections.get_mut(&conn) {
            c.stats.sent += 1;
            if let Some(a) = answered {
                let latency = (self.now_ms - a.received_ms).max(0);
                c.stats
                    .answered(a.op, i64::from(xid), zxid, self.now_ms, latency);
                self.stats.record_latency(latency, a.update);
            }
        }
        out.push(Action::Send { conn, frame });
    }

    /// A new session's createSession is answered by the ConnectResponse;
    /// ZooKeeper records it as op `SESS`, cxid 0, at the txn's zxid, its
    /// latency counted from the ConnectRequest (`FinalRequestProcessor`).
    fn session_created(&mut self, conn: ConnectionId, zxid: Zxid, now_ms: i64) {
        if let Some(c) = self.connections.get_mut(&conn) {
            let latency = (now_ms - c.connect_ms).max(0);
            c.stats.answered("SESS", 0, zxid.0, now_ms, latency);
            // A createSession txn.
            self.stats.record_latency(latency, true);
        }
    }

    fn on_tick(&mut self, now_ms: i64, out: &mut Vec<Action>) {
        // Every server expires its own local sessions: their connections
        // close, and there is no txn.
        for id in self.local.expire(self.elapsed_ms) {
            tracing::info!(session = %id, "local session expired");
            self.local.remove(id);
            if let Some(conn) = self.session_owner.remove(&id) {
                self.drop_connection(conn);
                out.push(Action::Close { conn });
            }
        }
        // Only the standalone server or the leader expires sessions and
        // reaps containers; expiry is a closeSession txn like a client's own
        // (reference B, D.4).
        if matches!(self.mode, Mode::Learner | Mode::ReadOnly) {
            return;
        }
        for id in self.sessions.expire(self.elapsed_ms) {
            tracing::info!(session = %id, "session expired");
            let zxid = self.next_zxid();
            let auth = AuthInfo::new(std::net::Ipv4Addr::LOCALHOST.into());
            let ctx = context(id, 0, zxid, now_ms, &auth, false);
            let txn = self
                .preparer
                .prepare(&self.tree, &ctx, &Request::CloseSession);
            self.log(txn, None, out);
        }
        if now_ms - self.last_reap_ms >= self.cfg.container_check_interval_ms {
            self.last_reap_ms = now_ms;
            let auth = AuthInfo::new(std::net::Ipv4Addr::LOCALHOST.into());
            for path in self
                .tree
                .reapable(now_ms, self.cfg.prepare.container_max_never_used_ms)
                .into_iter()
                .take(self.cfg.container_max_per_minute)
            {
                let zxid = self.next_zxid();
                let ctx = context(SessionId(0), 0, zxid, now_ms, &auth, false);
                let txn = self.preparer.prepare(
                    &self.tree,
                    &ctx,
                    &Request::DeleteContainer(PathRequest { path }),
                );
                self.log(txn, None, out);
            }
        }
    }

    /// SESSIONMOVED is an error of the connection, not of the request:
    /// ZooKeeper closes the connection without an answer
    /// (`FinalRequestProcessor`, ZOOKEEPER-710), and the session lives on
    /// where the client took it.
    fn close_moved(&mut self, conn: ConnectionId, out: &mut Vec<Action>) {
        tracing::info!(
            conn = conn.0,
            "session moved to another server; closing the connection it left"
        );
        self.drop_connection(conn);
        out.push(Action::Close { conn });
    }

    fn drop_connection(&mut self, conn: ConnectionId) {
        if let Some(c) = self.connections.remove(&conn) {
            if let Some(s) = c.session {
                // Its writes still in flight: the session's next connection
                // here waits for them (its reads queued behind them go).
                let xids = c.queue.iter().filter_map(|q| match q {
                    Queued::Write { xid, .. } | Queued::Earlier { xid } => Some(*xid),
                    Queued::Other { .. } => None,
                });
                let mut xids = xids.peekable();
                if xids.peek().is_some() {
                    self.earlier.entry(s).or_default().extend(xids);
                }
                if self.session_owner.get(&s) == Some(&conn) {
                    self.session_owner.remove(&s);
                }
            }
            self.watches.remove_connection(conn);
        }
    }
}

/// Before the connection's identities change: its requests queued until
/// then keep the ones they came with.
fn keep_queued_identities(c: &mut Connection) {
    for q in &mut c.queue {
        if let Queued::Other {
            auth: kept @ None, ..
        } = q
        {
            *kept = Some(Box::new(c.auth.clone()));
        }
    }
}

fn context(
    session: SessionId,
    cxid: i32,
    zxid: Zxid,
    now_ms: i64,
    auth: &AuthInfo,
    session_moved: bool,
) -> RequestContext<'_> {
    RequestContext {
        session_id: session,
        cxid,
        zxid,
        time_ms: now_ms,
        auth,
        session_moved,
        session_local: false,
    }
}

/// The ops a read-only server refuses with NOTREADONLY
/// (`ReadOnlyRequestProcessor`): every write, sync and check.
fn refused_when_read_only(code: i32) -> bool {
    matches!(
        code,
        op::SYNC
            | op::CREATE
            | op::CREATE2
            | op::CREATE_TTL
            | op::CREATE_CONTAINER
            | op::DELETE
            | op::DELETE_CONTAINER
            | op::SET_DATA
            | op::RECONFIG
            | op::SET_ACL
            | op::MULTI
            | op::CHECK
    )
}

/// Whether a write creates an ephemeral node, so that a local session must
/// become global first (`QuorumZooKeeperServer.checkUpgradeSession`: a
/// create, create2 or multi with an ephemeral mode).
fn creates_ephemeral(req: &Request) -> bool {
    let ephemeral =
        |flags: i32| jute::CreateMode::from_flags(flags).is_some_and(|m| m.is_ephemeral());
    match req {
        Request::Create { req, .. } => ephemeral(req.flags),
        Request::Multi(ops) => ops.iter().any(|o| match o {
            jute::MultiOp::Create { req, .. } => ephemeral(req.flags),
            _ => false,
        }),
        _ => false,
    }
}

/// The server a session id was made by: its top byte (reference B).
fn session_server(s: SessionId) -> ServerId {
    ServerId((s.0 as u64) >> 56)
}

/// True for a write's result that is SESSIONMOVED, for a multi in any of
/// its ops (ZooKeeper's `FinalRequestProcessor` throws it from the op's
/// error result).
fn is_session_moved(result: &Result<Response, ErrorCode>) -> bool {
    let moved = ErrorCode::SessionMoved;
    match result {
        Err(e) => *e == moved,
        Ok(Response::Multi(m)) => m
            .results
            .iter()
            .any(|r| *r == jute::MultiResult::Error(moved.code())),
        Ok(_) => false,
    }
}

/// False if a request from one of this server's own connections comes for
/// a session the leader knows to be owned by a learner now: the client
/// moved and this is a connection it left (ZooKeeper's `checkSession`,
/// which a leader runs on every request; learners check nothing and a
/// standalone server owns every session).
fn owned_here(mode: Mode, sessions: &mut SessionTracker, session: SessionId) -> bool {
    !matches!(mode, Mode::Leader { .. }) || sessions.check_owner(session, SessionOwner::Local)
}

/// A txn that only reports `code` to the client (ZooKeeper's error txn).
fn error_txn(ctx: &RequestContext<'_>, code: ErrorCode) -> Txn {
    Txn {
        origin: 0,
        session_id: ctx.session_id.0,
        cxid: ctx.cxid,
        zxid: ctx.zxid.0,
        time: ctx.time_ms,
        body: Some(TxnBody {
            op: Some(txn_body::Op::Error(ErrorTxn { err: code.code() })),
        }),
    }
}

impl ServerStats {
    fn record_latency(&mut self, lat: i64, update: bool) {
        if self.latency_count == 0 || lat < self.min_latency_ms {
            self.min_latency_ms = lat;
        }
        self.max_latency_ms = self.max_latency_ms.max(lat);
        self.total_latency_ms += lat;
        self.latency_count += 1;
        if update {
            self.update_latency.record(lat);
        } else {
            self.read_latency.record(lat);
        }
    }
}

/// ZooKeeper's `limit/2 + random(limit/2)` for `snapCount` (`randRoll`)
/// and `snapSizeLimitInKb` (`randSize`), with the randomness derived from
/// the zxid so the pipeline stays deterministic.
fn snapshot_threshold(limit: u64, zxid: Zxid) -> u64 {
    let half = (limit / 2).max(1);
    let mut x = zxid.0 as u64 ^ 0x9E37_79B9_7F4A_7C15;
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    half + x % half
}

fn frame<T: Jute>(record: &T) -> Bytes {
    let mut w = Writer::with_capacity(64);
    w.write_i32(0);
    record.write(&mut w);
    finish_frame(w)
}

fn finish_frame(w: Writer) -> Bytes {
    let mut buf: BytesMut = w.into_bytes().into();
    let len = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    buf.freeze()
}

/// A notification frame. ZooKeeper ≥ 3.9 puts the firing txn's zxid in the
/// header (-1 for events generated by SetWatches; reference §0).
fn event_frame(event: &WatchEvent, zxid: i64) -> Bytes {
    let mut w = Writer::with_capacity(32 + event.path.len());
    w.write_i32(0);
    ReplyHeader {
        xid: xid::NOTIFICATION,
        zxid,
        err: 0,
    }
    .write(&mut w);
    WatcherEvent {
        event_type: event.event_type,
        state: jute::STATE_SYNC_CONNECTED,
        path: event.path.clone(),
    }
    .write(&mut w);
    finish_frame(w)
}

#[cfg(test)]
#[path = "pipeline_tests.rs"]
mod tests;
