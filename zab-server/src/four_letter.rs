//! Four-letter words: the text answers to `ruok`, `srvr`, `stat`, `mntr` …
//!
//! This module owns the exact output formats of ZooKeeper 3.8's four-letter
//! commands (reference E). It is pure rendering: the server fills a
//! [`ServerStatus`] snapshot when a word arrives and [`render`] turns it into
//! the bytes to write before closing the connection. Resetting statistics
//! (`srst`, `crst`) and setting the trace mask (`stmk`) are the server's job;
//! this module only prints their replies.
//!
//! The version line reads `3.8.0-zab-<crate version>, built on <date>`:
//! tools split ZooKeeper's `3.8.0-<git sha>, built on <yyyy-MM-dd HH:mm zz>`
//! at `-` and `,`, so zab keeps that shape and the 3.8.0 protocol level it
//! reproduces.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;

use zab_wire::jute::FourLetterWord;
use zab_wire::types::{ServerId, SessionId, Zxid};

use crate::config::{Config, PeerType};
use crate::latency_summary::{BasicSummary, LatencySummary};

/// ZooKeeper's reply for most words while no server is running (during
/// election, for instance), without its line end.
pub const NOT_SERVING: &str = "This ZooKeeper instance is not currently serving requests";

/// `ZooTrace`'s default mask: client requests, server packets, sessions and
/// warnings (`gtmk` prints it).
pub const DEFAULT_TRACE_MASK: i64 = (1 << 1) | (1 << 4) | (1 << 5) | (1 << 8);

/// The trace mask `stmk` sets and `gtmk` prints: one per process, as
/// ZooKeeper's static `ZooTrace` level. zab traces nothing by it; it is
/// kept so that tools which set it read back what they set.
static TRACE_MASK: std::sync::atomic::AtomicI64 =
    std::sync::atomic::AtomicI64::new(DEFAULT_TRACE_MASK);

/// The process's trace mask (see [`set_trace_mask`]).
pub fn trace_mask() -> i64 {
    TRACE_MASK.load(std::sync::atomic::Ordering::Relaxed)
}

/// `ZooTrace.setTextTraceLevel`.
pub fn set_trace_mask(mask: i64) {
    TRACE_MASK.store(mask, std::sync::atomic::Ordering::Relaxed);
}

/// The ZooKeeper release whose client protocol and outputs zab reproduces.
pub const ZOOKEEPER_VERSION: &str = "3.8.0";

/// The full version string for `srvr`, `stat`, `envi` and `mntr`:
/// `3.8.0-zab-<crate version>, built on <date>`. The date is the
/// `ZAB_BUILD_DATE` environment variable at compile time, written as
/// ZooKeeper's build writes it (`yyyy-MM-dd HH:mm UTC`); else the source's
/// date that build.rs found (`SOURCE_DATE_EPOCH`, or the commit's time), so
/// that a build never reads the clock and stays reproducible; else the Unix
/// epoch.
pub fn full_version() -> String {
    let date = match option_env!("ZAB_BUILD_DATE") {
        Some(date) => date.to_owned(),
        None => build_date(
            option_env!("ZAB_SOURCE_DATE_EPOCH")
                .and_then(|s| s.parse().ok())
                .unwrap_or(0),
        ),
    };
    format!(
        "{ZOOKEEPER_VERSION}-zab-{}, built on {date}",
        env!("CARGO_PKG_VERSION"),
    )
}

/// Seconds since the Unix epoch as ZooKeeper's build stamps its version:
/// `2022-02-25 08:49 UTC`.
fn build_date(secs: i64) -> String {
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        sod / 3600,
        sod % 3600 / 60
    )
}

/// The reply to a known word that is not in `4lw.commands.whitelist`.
pub fn not_whitelisted(word: FourLetterWord) -> String {
    format!(
        "{} is not executed because it is not in the whitelist.\n",
        word.as_str()
    )
}

/// The role the server is in, as `srvr` and `mntr` name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerMode {
    Standalone,
    Leader,
    Follower,
    Observer,
    ReadOnly,
}

impl ServerMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ServerMode::Standalone => "standalone",
            ServerMode::Leader => "leader",
            ServerMode::Follower => "follower",
            ServerMode::Observer => "observer",
            ServerMode::ReadOnly => "read-only",
        }
    }
    fn is_quorum(self) -> bool {
        self != ServerMode::Standalone
    }
}

/// Request latency in ms (`ServerStats`): min and max are integers, the
/// average a double rounded to 4 decimals when printed.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Latency {
    pub min: i64,
    pub avg: f64,
    pub max: i64,
}

/// Last/min/max sizes in bytes (`BufferStats`): proposals on a leader,
/// client responses everywhere; -1 until the first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BufferSizes {
    pub last: i64,
    pub min: i64,
    pub max: i64,
}

impl Default for BufferSizes {
    fn default() -> Self {
        BufferSizes {
            last: -1,
            min: -1,
            max: -1,
        }
    }
}

impl BufferSizes {
    /// `BufferStats.setLastBufferSize`.
    pub fn record(&mut self, size: usize) {
        let size = i64::try_from(size).unwrap_or(i64::MAX);
        self.last = size;
        if self.min == -1 || size < self.min {
            self.min = size;
        }
        self.max = self.max.max(size);
    }
}

/// One client connection (`ServerCnxn.dumpConnectionInfo`).
#[derive(Clone, Debug, PartialEq)]
pub struct ConnectionStatus {
    pub remote: SocketAddr,
    /// The selector interest ops; printed in hex, 0 when none.
    pub interest_ops: u32,
    /// Requests received and not yet answered.
    pub queued: u64,
    pub recved: u64,
    pub sent: u64,
    /// `None` before the handshake: then even `cons` prints the brief form.
    pub session: Option<ConnectionSession>,
}

/// The per-session part of a `cons` line.
#[derive(Clone, Debug, PartialEq)]
pub struct ConnectionSession {
    pub session_id: SessionId,
    /// Four-letter op tag of the last request ([`op_tag`]), `NA` before any.
    pub last_op: String,
    /// Wall-clock ms when the connection was established.
    pub established_ms: i64,
    pub timeout_ms: i32,
    /// Negative before the first request: then omitted.
    pub last_cxid: i64,
    /// -1 before the first reply.
    pub last_zxid: Zxid,
    /// Wall-clock ms of the last reply (ZooKeeper prints its raw value).
    pub last_response_ms: i64,
    pub last_latency_ms: i64,
    /// Integer latencies (`ServerCnxn` keeps them as longs).
    pub min_latency_ms: i64,
    pub avg_latency_ms: i64,
    pub max_latency_ms: i64,
}

/// One bucket of an expiry queue (`ExpiryQueue.dump`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpiryBucket<T> {
    /// Wall-clock ms at which the bucket's elements expire.
    pub expire_at_ms: i64,
    pub elements: Vec<T>,
}

/// The session part of `dump`: a leader or standalone server prints its
/// expiry queue; a follower or observer its global sessions and timeouts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionDump {
    Expiry(Vec<ExpiryBucket<SessionId>>),
    Global(BTreeMap<SessionId, i32>),
}

impl Default for SessionDump {
    fn default() -> Self {
        SessionDump::Expiry(Vec::new())
    }
}

/// The host/OS part of `envi`; Java-only keys print `n/a`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Environment {
    pub host_name: String,
    pub os_name: String,
    pub os_arch: String,
    pub os_version: String,
    pub user_name: String,
    pub user_home: String,
    pub user_dir: String,
    pub tmp_dir: String,
    /// Memory in MiB: free and total of the machine, max = total (zab has
    /// no heap limit).
    pub memory_free_mb: u64,
    pub memory_max_mb: u64,
    pub memory_total_mb: u64,
}

impl Environment {
    /// Best-effort values for this process: environment variables and, on
    /// Linux, `/proc`. Missing values print as `<NA>` as Java's do.
    pub fn from_process() -> Environment {
        let var = |k: &str| std::env::var(k).unwrap_or_else(|_| "<NA>".to_owned());
        let proc = |p: &str| {
            std::fs::read_to_string(p)
                .map(|s| s.trim().to_owned())
                .unwrap_or_else(|_| "<NA>".to_owned())
        };
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let mem_mb = |key: &str| {
            meminfo
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|rest| {
                    rest.trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<u64>()
                        .ok()
                })
                .map_or(0, |kb| kb / 1024)
        };
        let total = mem_mb("MemTotal:");
        Environment {
            host_name: proc("/proc/sys/kernel/hostname"),
            // Java's names: `Linux`, `amd64`.
            os_name: match std::env::consts::OS {
                "linux" => "Linux".to_owned(),
                "macos" => "Mac OS X".to_owned(),
                other => other.to_owned(),
            },
            os_arch: match std::env::consts::ARCH {
                "x86_64" => "amd64".to_owned(),
                other => other.to_owned(),
            },
            os_version: proc("/proc/sys/kernel/osrelease"),
            // Java's `user.name` is the passwd entry of the process's uid.
            user_name: std::fs::read_to_string("/proc/self/status")
                .ok()
                .and_then(|status| real_uid(&status))
                .and_then(|uid| {
                    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
                    passwd_name(&passwd, uid)
                })
                .unwrap_or_else(|| var("USER")),
            user_home: var("HOME"),
            user_dir: std::env::current_dir()
                .map(|d| d.display().to_string())
                .unwrap_or_else(|_| "<NA>".to_owned()),
            tmp_dir: std::env::temp_dir().display().to_string(),
            memory_free_mb: mem_mb("MemAvailable:"),
            memory_max_mb: total,
            memory_total_mb: total,
        }
    }
}

/// The real uid on the `Uid:` line of `/proc/self/status`.
fn real_uid(status: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The name of `uid` in `/etc/passwd` (`name:password:uid:…` lines).
fn passwd_name(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let id = fields.nth(1)?.parse::<u32>().ok()?;
        (id == uid && !name.is_empty()).then(|| name.to_owned())
    })
}

/// A value of an extra `mntr` metric.
#[derive(Clone, Debug, PartialEq)]
pub enum Metric {
    Int(i64),
    Double(f64),
    Text(String),
}

impl Metric {
    fn render(&self) -> String {
        match self {
            Metric::Int(i) => i.to_string(),
            Metric::Double(d) => java_double(*d),
            Metric::Text(t) => t.clone(),
        }
    }
}

/// Figures of ZooKeeper's metrics provider (`ServerMetrics`) that zab
/// measures the same way; `mntr`, `monitor` and `/metrics` list them on
/// every server, 0 where they do not apply, as ZooKeeper does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProviderMetrics {
    /// Times the server started looking for a leader (`looking_count`).
    pub looking_count: u64,
    /// Txns this server proposed as leader (`proposal_count`), and
    /// committed (`commit_count`).
    pub proposal_count: u64,
    pub commit_count: u64,
    /// PROPOSAL and COMMIT packets this follower received
    /// (`learner_proposal_received_count`, `learner_commit_received_count`).
    pub learner_proposals_received: u64,
    pub learner_commits_received: u64,
    /// Learners this leader synced without and with a snapshot
    /// (`diff_count`, `snap_count`: a TRUNC counts as a DIFF, as
    /// ZooKeeper's `LearnerHandler` counts every sync that is not a SNAP).
    pub diff_count: u64,
    pub snap_count: u64,
    /// Times this learner's tree digest differed from the leader's
    /// (`digest_mismatches_count`).
    pub digest_mismatches: u64,
    /// ms from looking to a decided election (`election_time`).
    pub election_time: BasicSummary,
    /// ms per synced write of the txn log (`fsynctime`).
    pub fsync_time: BasicSummary,
    /// ms per snapshot saved (`snapshottime`).
    pub snapshot_time: BasicSummary,
    /// At start-up: ms to load the data (`dbinittime`), of that the
    /// snapshot's part (`startup_snap_load_time`), and the txns replayed
    /// after it and their ms (`startup_txns_loaded`,
    /// `startup_txns_load_time`, only when there were any, as in
    /// ZooKeeper's `FileTxnSnapLog.fastForwardFromEdits`).
    pub db_init_time: BasicSummary,
    pub startup_snap_load_time: BasicSummary,
    pub startup_txns_loaded: BasicSummary,
    pub startup_txns_load_time: BasicSummary,
}

impl ProviderMetrics {
    /// The counters, then the basic summaries, as `mntr` lists them.
    pub fn values(&self) -> Vec<(String, Metric)> {
        let int = |v: u64| Metric::Int(i64::try_from(v).unwrap_or(i64::MAX));
        let mut values = vec![
            ("looking_count".to_owned(), int(self.looking_count)),
            ("proposal_count".to_owned(), int(self.proposal_count)),
            ("commit_count".to_owned(), int(self.commit_count)),
            (
                "learner_proposal_received_count".to_owned(),
                int(self.learner_proposals_received),
            ),
            (
                "learner_commit_received_count".to_owned(),
                int(self.learner_commits_received),
            ),
            ("diff_count".to_owned(), int(self.diff_count)),
            ("snap_count".to_owned(), int(self.snap_count)),
            (
                "digest_mismatches_count".to_owned(),
                int(self.digest_mismatches),
            ),
        ];
        for (name, summary) in self.basic_summaries() {
            values.extend(summary.metrics(name));
        }
        values
    }

    /// The basic summaries by their metric names.
    pub fn basic_summaries(&self) -> [(&'static str, &BasicSummary); 7] {
        [
            ("election_time", &self.election_time),
            ("fsynctime", &self.fsync_time),
            ("snapshottime", &self.snapshot_time),
            ("dbinittime", &self.db_init_time),
            ("startup_snap_load_time", &self.startup_snap_load_time),
            ("startup_txns_loaded", &self.startup_txns_loaded),
            ("startup_txns_load_time", &self.startup_txns_load_time),
        ]
    }
}

/// Leader-only figures for `mntr`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeaderStatus {
    pub learners: u64,
    pub synced_followers: u64,
    pub synced_non_voting_followers: u64,
    pub synced_observers: u64,
    pub pending_syncs: u64,
    pub leader_uptime_ms: i64,
    pub proposal_sizes: BufferSizes,
}

/// Everything the four-letter words report, filled by the server when a
/// word arrives.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerStatus {
    /// False while no ZooKeeper server runs (election): most words then
    /// answer [`NOT_SERVING`].
    pub serving: bool,
    /// Usually [`full_version`].
    pub version: String,
    pub mode: ServerMode,
    /// The id printed by `conf` (`serverId`): 0 when standalone.
    pub server_id: ServerId,
    /// `detailedPeerState` for `mntr` on quorum members, e.g.
    /// `following - broadcast`.
    pub peer_state: Option<String>,
    /// On an observer, the server it learns from (`zk_observer_master_id`).
    pub observer_master_id: Option<ServerId>,
    pub last_zxid: Zxid,
    pub node_count: u64,
    pub latency: Latency,
    pub packets_received: u64,
    pub packets_sent: u64,
    pub outstanding_requests: u64,
    /// Sizes of the responses sent to clients.
    pub client_response_sizes: BufferSizes,
    /// `readlatency` and `updatelatency` (see [`crate::latency_summary`]).
    pub read_latency: LatencySummary,
    pub update_latency: LatencySummary,
    /// Counters and basic summaries of ZooKeeper's metrics provider that
    /// zab keeps too.
    pub provider: ProviderMetrics,
    /// The quota gauge sets, by namespace.
    pub quota: zab_tree::quota::QuotaGauges,
    /// `quota_exceeded_error_per_namespace`: writes this server (as
    /// leader or standalone) refused for a hard quota.
    pub quota_exceeded: BTreeMap<String, u64>,
    /// Log syncs slower than `fsync.warningthresholdms` since start-up.
    pub fsync_threshold_exceed_count: u64,
    /// Failed authentications (`zk_auth_failed_count`).
    pub auth_failed_count: u64,
    /// Every open client connection, the one asking included (as in
    /// ZooKeeper); its length is what `srvr`/`stat` print as
    /// `Connections:` and `mntr` as `zk_num_alive_connections`.
    pub connections: Vec<ConnectionStatus>,
    /// `Some` on a leader.
    pub leader: Option<LeaderStatus>,
    /// On a follower hosting observers (`observerMasterPort`), how many
    /// are in sync with it: ZooKeeper's follower reports
    /// `zk_synced_observers` only then (its `ObserverMaster` exists).
    pub hosted_observers: Option<u64>,
    /// Voters in the quorum (`zk_quorum_size`), quorum members only.
    pub quorum_size: Option<u64>,
    /// Data/exists watches per session (behaviour 32: child watches are not
    /// listed by `wchs`/`wchc`/`wchp`).
    pub data_watches: BTreeMap<SessionId, BTreeSet<String>>,
    /// Every watch, data and child (`zk_watch_count`).
    pub watch_count: u64,
    pub sessions: SessionDump,
    /// The local sessions' expiry queue, when the server keeps local
    /// sessions (`localSessionsEnabled`, read-only mode).
    pub local_sessions_dump: Option<Vec<ExpiryBucket<SessionId>>>,
    /// Sessions with their ephemeral node paths (collected for `dump`
    /// alone).
    pub ephemerals: BTreeMap<SessionId, Vec<String>>,
    /// How many ephemerals there are, listed or not.
    pub ephemerals_count: u64,
    /// Connections by expiry time; `None` prints nothing under
    /// `Connections dump:` (ZooKeeper's Netty factory).
    pub connection_expiry: Option<Vec<ExpiryBucket<(SocketAddr, SessionId)>>>,
    pub global_sessions: u64,
    pub local_sessions: u64,
    /// The port the client listener is bound to (`conf`: -1 when none).
    pub client_port: Option<u16>,
    /// Where snapshots live and their size in bytes.
    pub data_dir: PathBuf,
    pub data_dir_size: u64,
    /// Where the txn log lives and its size in bytes.
    pub log_dir: PathBuf,
    pub log_dir_size: u64,
    pub approximate_data_size: u64,
    pub open_file_descriptor_count: i64,
    pub max_file_descriptor_count: i64,
    pub uptime_ms: i64,
    pub trace_mask: i64,
    /// `hash`: recent tree digests by zxid.
    pub digests: Vec<(Zxid, i64)>,
    pub environment: Environment,
    /// The wall clock less the monotonic one, in ms: session deadlines
    /// run on the monotonic clock, and `dump` prints them as dates
    /// (`ExpiryQueue.dump` through `Time.elapsedTimeToDate`).
    pub elapsed_to_wall_ms: i64,
}

impl Default for ServerStatus {
    fn default() -> Self {
        ServerStatus {
            serving: true,
            version: full_version(),
            mode: ServerMode::Standalone,
            server_id: ServerId(0),
            peer_state: None,
            observer_master_id: None,
            hosted_observers: None,
            last_zxid: Zxid::ZERO,
            node_count: 0,
            latency: Latency::default(),
            packets_received: 0,
            packets_sent: 0,
            outstanding_requests: 0,
            client_response_sizes: BufferSizes::default(),
            read_latency: LatencySummary::default(),
            update_latency: LatencySummary::default(),
            provider: ProviderMetrics::default(),
            quota: Default::default(),
            quota_exceeded: BTreeMap::new(),
            fsync_threshold_exceed_count: 0,
            auth_failed_count: 0,
            connections: Vec::new(),
            leader: None,
            quorum_size: None,
            data_watches: BTreeMap::new(),
            watch_count: 0,
            sessions: SessionDump::default(),
            local_sessions_dump: None,
            ephemerals: BTreeMap::new(),
            ephemerals_count: 0,
            connection_expiry: None,
            global_sessions: 0,
            local_sessions: 0,
            client_port: None,
            data_dir: PathBuf::new(),
            data_dir_size: 0,
            log_dir: PathBuf::new(),
            log_dir_size: 0,
            approximate_data_size: 0,
            open_file_descriptor_count: 0,
            max_file_descriptor_count: 0,
            uptime_ms: 0,
            trace_mask: trace_mask(),
            digests: Vec::new(),
            environment: Environment::default(),
            elapsed_to_wall_ms: 0,
        }
    }
}

/// The four-letter tag `cons` shows as `lop` for an opcode
/// (`FinalRequestProcessor`); `NA` for anything without one.
pub fn op_tag(opcode: i32) -> &'static str {
    match opcode {
        11 => "PING",
        -10 => "SESS",
        14 => "MULT",
        22 => "MLTR",
        1 | 15 | 19 | 21 => "CREA",
        2 | 20 => "DELE",
        5 => "SETD",
        16 => "RECO",
        7 => "SETA",
        -11 => "CLOS",
        9 => "SYNC",
        13 => "CHEC",
        3 => "EXIS",
        4 => "GETD",
        101 => "SETW",
        105 => "STW2",
        106 => "ADDW",
        6 => "GETA",
        8 | 12 => "GETC",
        104 => "GETACN",
        17 => "CHKW",
        18 => "REMW",
        107 => "HOMI",
        103 => "GETE",
        _ => "NA",
    }
}

/// The answer to `word`: everything written before the server closes.
pub fn render(word: FourLetterWord, status: &ServerStatus, cfg: &Config) -> String {
    use FourLetterWord as W;
    // Words that answer whether or not a server runs.
    match word {
        W::Ruok => return "imok".to_owned(),
        W::Envi => return envi(status),
        W::Gtmk | W::Stmk => return status.trace_mask.to_string(),
        W::TelnetClose => return String::new(),
        W::Isro => {
            return match (status.serving, status.mode) {
                (false, _) => "null",
                (true, ServerMode::ReadOnly) => "ro",
                (true, _) => "rw",
            }
            .to_owned()
        }
        _ => {}
    }
    if !status.serving {
        // `hash` alone prints it without a line end (`DigestCommand`).
        return if word == W::Hash {
            NOT_SERVING.to_owned()
        } else {
            format!("{NOT_SERVING}\n")
        };
    }
    let mut out = String::new();
    match word {
        W::Srvr => stat(&mut out, status, false),
        W::Stat => stat(&mut out, status, true),
        W::Cons => {
            for c in &status.connections {
                connection_line(&mut out, c, false);
                out.push('\n');
            }
            out.push('\n');
        }
        W::Conf => conf(&mut out, status, cfg),
        W::Mntr => mntr(&mut out, status),
        W::Wchs => {
            let paths: BTreeSet<&String> = status.data_watches.values().flatten().collect();
            let total: usize = status.data_watches.values().map(BTreeSet::len).sum();
            let _ = writeln!(
                out,
                "{} connections watching {} paths\nTotal watches:{}",
                status.data_watches.len(),
                paths.len(),
                total
            );
        }
        W::Wchc => {
            for (session, paths) in &status.data_watches {
                let _ = writeln!(out, "0x{:x}", session.0);
                for p in paths {
                    let _ = writeln!(out, "\t{p}");
                }
            }
            out.push('\n');
        }
        W::Wchp => {
            let mut by_path: BTreeMap<&str, Vec<SessionId>> = BTreeMap::new();
            for (session, paths) in &status.data_watches {
                for p in paths {
                    by_path.entry(p).or_default().push(*session);
                }
            }
            for (path, sessions) in by_path {
                let _ = writeln!(out, "{path}");
                for s in sessions {
                    let _ = writeln!(out, "\t0x{:x}", s.0);
                }
            }
            out.push('\n');
        }
        W::Dump => dump(&mut out, status),
        W::Dirs => {
            let _ = writeln!(out, "datadir_size: {}", status.data_dir_size);
            let _ = writeln!(out, "logdir_size: {}", status.log_dir_size);
        }
        W::Srst => out.push_str("Server stats reset.\n"),
        W::Crst => out.push_str("Connection stats reset.\n"),
        W::Hash => {
            for (zxid, digest) in &status.digests {
                let _ = writeln!(out, "{:x}: {digest}", zxid.0);
            }
        }
        W::Ruok | W::Envi | W::Gtmk | W::Stmk | W::TelnetClose | W::Isro => {}
    }
    out
}

/// `srvr` and `stat` (`StatCommand`, `ServerStats.toString`).
fn stat(out: &mut String, s: &ServerStatus, with_clients: bool) {
    let _ = writeln!(out, "Zookeeper version: {}", s.version);
    if s.mode == ServerMode::ReadOnly {
        out.push_str("READ-ONLY mode; serving only read-only clients\n");
    }
    if with_clients {
        out.push_str("Clients:\n");
        for c in &s.connections {
            connection_line(out, c, true);
            out.push('\n');
        }
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "Latency min/avg/max: {}/{}/{}",
        s.latency.min,
        java_double(round4(s.latency.avg)),
        s.latency.max
    );
    let _ = writeln!(out, "Received: {}", s.packets_received);
    let _ = writeln!(out, "Sent: {}", s.packets_sent);
    let _ = writeln!(out, "Connections: {}", s.connections.len());
    let _ = writeln!(out, "Outstanding: {}", s.outstanding_requests);
    let _ = writeln!(out, "Zxid: 0x{:x}", s.last_zxid.0);
    let _ = writeln!(out, "Mode: {}", s.mode.as_str());
    let _ = writeln!(out, "Node count: {}", s.node_count);
    if let Some(leader) = &s.leader {
        let p = leader.proposal_sizes;
        let _ = writeln!(
            out,
            "Proposal sizes last/min/max: {}/{}/{}",
            p.last, p.min, p.max
        );
    }
}

/// `ServerCnxn.dumpConnectionInfo`, without the line end.
fn connection_line(out: &mut String, c: &ConnectionStatus, brief: bool) {
    let _ = write!(
        out,
        " /{}[{:x}](queued={},recved={},sent={}",
        c.remote, c.interest_ops, c.queued, c.recved, c.sent
    );
    if let (false, Some(s)) = (brief, &c.session) {
        let _ = write!(
            out,
            ",sid=0x{:x},lop={},est={},to={}",
            s.session_id.0, s.last_op, s.established_ms, s.timeout_ms
        );
        if s.last_cxid >= 0 {
            let _ = write!(out, ",lcxid=0x{:x}", s.last_cxid);
        }
        let _ = write!(
            out,
            ",lzxid=0x{:x},lresp={},llat={},minlat={},avglat={},maxlat={}",
            s.last_zxid.0,
            s.last_response_ms,
            s.last_latency_ms,
            s.min_latency_ms,
            s.avg_latency_ms,
            s.max_latency_ms
        );
    }
    out.push(')');
}

/// `ZooKeeperServer.dumpConf` plus `QuorumZooKeeperServer.dumpConf`.
fn conf(out: &mut String, s: &ServerStatus, cfg: &Config) {
    let port = s.client_port.map_or(-1, i32::from);
    let _ = writeln!(out, "clientPort={port}");
    let secure = cfg.tls.secure_client_port.map_or(-1, i32::from);
    let _ = writeln!(out, "secureClientPort={secure}");
    let _ = writeln!(out, "dataDir={}", s.data_dir.display());
    let _ = writeln!(out, "dataDirSize={}", s.data_dir_size);
    let _ = writeln!(out, "dataLogDir={}", s.log_dir.display());
    let _ = writeln!(out, "dataLogSize={}", s.log_dir_size);
    let _ = writeln!(out, "tickTime={}", cfg.tick_time_ms);
    let _ = writeln!(out, "maxClientCnxns={}", cfg.max_client_cnxns);
    let _ = writeln!(out, "minSessionTimeout={}", cfg.min_session_timeout_ms);
    let _ = writeln!(out, "maxSessionTimeout={}", cfg.max_session_timeout_ms);
    let _ = writeln!(
        out,
        "clientPortListenBacklog={}",
        cfg.client_port_listen_backlog
    );
    let _ = writeln!(out, "serverId={}", s.server_id);
    if !s.mode.is_quorum() {
        return;
    }
    let me = cfg.my_server();
    let _ = writeln!(out, "initLimit={}", cfg.init_limit);
    let _ = writeln!(out, "syncLimit={}", cfg.sync_limit);
    let _ = writeln!(out, "electionAlg={}", cfg.election_alg);
    let _ = writeln!(
        out,
        "electionPort={}",
        me.map_or(-1, |m| i32::from(m.election_port))
    );
    let _ = writeln!(
        out,
        "quorumPort={}",
        me.map_or(-1, |m| i32::from(m.quorum_port))
    );
    let peer_type = me.map_or(cfg.peer_type, |m| m.peer_type);
    let _ = writeln!(out, "peerType={}", PeerType::ordinal(peer_type));
    // `ReadOnlyZooKeeperServer.dumpConf` ends here; only the quorum
    // servers' `QuorumZooKeeperServer.dumpConf` lists the membership.
    if s.mode == ServerMode::ReadOnly {
        return;
    }
    out.push_str("membership: \n");
    // QuorumMaj.toString ends with `version=<hex>` and no line end.
    out.push_str(&cfg.membership_text());
}

/// `EnvCommand` over `Environment.list`.
fn envi(s: &ServerStatus) -> String {
    let mut out = String::from("Environment:\n");
    for (k, v) in environment_entries(s) {
        let _ = writeln!(out, "{k}={v}");
    }
    out
}

/// ZooKeeper's `Environment.list`: what `envi` prints and the admin
/// server's `environment` lists.
pub fn environment_entries(s: &ServerStatus) -> Vec<(String, String)> {
    let e = &s.environment;
    let na = "n/a";
    let entries: [(&str, &str); 15] = [
        ("zookeeper.version", &s.version),
        ("host.name", &e.host_name),
        ("java.version", na),
        ("java.vendor", na),
        ("java.home", na),
        ("java.class.path", na),
        ("java.library.path", na),
        ("java.io.tmpdir", &e.tmp_dir),
        ("java.compiler", na),
        ("os.name", &e.os_name),
        ("os.arch", &e.os_arch),
        ("os.version", &e.os_version),
        ("user.name", &e.user_name),
        ("user.home", &e.user_home),
        ("user.dir", &e.user_dir),
    ];
    let mut list: Vec<(String, String)> = entries
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    list.push(("os.memory.free".into(), format!("{}MB", e.memory_free_mb)));
    list.push(("os.memory.max".into(), format!("{}MB", e.memory_max_mb)));
    list.push(("os.memory.total".into(), format!("{}MB", e.memory_total_mb)));
    list
}

/// `MonitorCommand`: `zk_<key>\t<value>` lines, `zk_version` and
/// `zk_server_state` first, integers as integers, other numbers as Java
/// doubles.
fn mntr(out: &mut String, s: &ServerStatus) {
    for (key, value) in monitor_values(s) {
        let _ = writeln!(out, "zk_{key}\t{}", value.render());
    }
}

/// The figures `mntr` prints and the admin server's `monitor` lists
/// (ZooKeeper's `dumpMonitorValues`, then its metrics provider's
/// summaries), keys without `zk_`, in order.
pub fn monitor_values(s: &ServerStatus) -> Vec<(String, Metric)> {
    let mut values = gauge_values(s);
    // The default metrics provider names a set's values `<key>_<set>`.
    for (set, by_namespace) in quota_gauge_sets(&s.quota) {
        for (ns, v) in by_namespace {
            values.push((format!("{ns}_{set}"), Metric::Int(*v)));
        }
    }
    values.extend(s.provider.values());
    for (ns, n) in &s.quota_exceeded {
        values.push((
            format!("{ns}_{QUOTA_EXCEEDED}"),
            Metric::Int(i64::try_from(*n).unwrap_or(i64::MAX)),
        ));
    }
    values.extend(s.read_latency.metrics("readlatency"));
    values.extend(s.update_latency.metrics("updatelatency"));
    values
}

/// The counter set of writes refused for a hard quota, by namespace.
pub const QUOTA_EXCEEDED: &str = "quota_exceeded_error_per_namespace";

/// ZooKeeper's four quota gauge sets (`QuotaMetricsUtils`), by name.
pub fn quota_gauge_sets(
    q: &zab_tree::quota::QuotaGauges,
) -> [(&'static str, &BTreeMap<String, i64>); 4] {
    [
        ("quota_count_limit_per_namespace", &q.count_limit),
        ("quota_bytes_limit_per_namespace", &q.bytes_limit),
        ("quota_count_usage_per_namespace", &q.count_usage),
        ("quota_bytes_usage_per_namespace", &q.bytes_usage),
    ]
}

/// The single-valued figures of [`monitor_values`]: ZooKeeper's
/// `dumpMonitorValues` and registered gauges, without the summaries.
pub fn gauge_values(s: &ServerStatus) -> Vec<(String, Metric)> {
    let mut values = Vec::new();
    let mut line = |key: &str, value: Metric| values.push((key.to_owned(), value));
    let int = |v: u64| Metric::Int(i64::try_from(v).unwrap_or(i64::MAX));
    line("version", Metric::Text(s.version.clone()));
    line("server_state", Metric::Text(s.mode.as_str().to_owned()));
    if let Some(peer_state) = &s.peer_state {
        line("peer_state", Metric::Text(peer_state.clone()));
    }
    if let Some(master) = s.observer_master_id {
        // `ObserverZooKeeperServer.dumpMonitorValues` adds it to the rest.
        line("observer_master_id", Metric::Int(master.0 as i64));
    }
    line("avg_latency", Metric::Double(round4(s.latency.avg)));
    line("max_latency", Metric::Int(s.latency.max));
    line("min_latency", Metric::Int(s.latency.min));
    line("packets_received", int(s.packets_received));
    line("packets_sent", int(s.packets_sent));
    line("num_alive_connections", int(s.connections.len() as u64));
    line("outstanding_requests", int(s.outstanding_requests));
    line("znode_count", int(s.node_count));
    line("watch_count", int(s.watch_count));
    line("ephemerals_count", int(s.ephemerals_count));
    line("approximate_data_size", int(s.approximate_data_size));
    line(
        "open_file_descriptor_count",
        Metric::Int(s.open_file_descriptor_count),
    );
    line(
        "max_file_descriptor_count",
        Metric::Int(s.max_file_descriptor_count),
    );
    line("uptime", Metric::Int(s.uptime_ms));
    line("global_sessions", int(s.global_sessions));
    line("local_sessions", int(s.local_sessions));
    // zab never drops connections at random, and it does not count TLS
    // handshakes in flight or TLS connections without a client
    // certificate: those gauges stay 0.
    line("connection_drop_probability", Metric::Double(0.0));
    line(
        "last_client_response_size",
        Metric::Int(s.client_response_sizes.last),
    );
    line(
        "max_client_response_size",
        Metric::Int(s.client_response_sizes.max),
    );
    line(
        "min_client_response_size",
        Metric::Int(s.client_response_sizes.min),
    );
    line("outstanding_tls_handshake", Metric::Int(0));
    line("auth_failed_count", int(s.auth_failed_count));
    line("non_mtls_remote_conn_count", Metric::Int(0));
    line("non_mtls_local_conn_count", Metric::Int(0));
    if let Some(q) = s.quorum_size {
        line("quorum_size", int(q));
    }
    if let Some(n) = s.hosted_observers {
        line("synced_observers", int(n));
    }
    if let Some(l) = &s.leader {
        line("learners", int(l.learners));
        line("synced_followers", int(l.synced_followers));
        line(
            "synced_non_voting_followers",
            int(l.synced_non_voting_followers),
        );
        line("synced_observers", int(l.synced_observers));
        line("pending_syncs", int(l.pending_syncs));
        line("leader_uptime", Metric::Int(l.leader_uptime_ms));
        line("last_proposal_size", Metric::Int(l.proposal_sizes.last));
        line("max_proposal_size", Metric::Int(l.proposal_sizes.max));
        line("min_proposal_size", Metric::Int(l.proposal_sizes.min));
    }
    values
}

/// `DumpCommand`: sessions, ephemerals, connections.
fn dump(out: &mut String, s: &ServerStatus) {
    out.push_str("SessionTracker dump:\n");
    // With local sessions, ZooKeeper's leader and learner session trackers
    // print the local tracker's queue first, as `Local Session Sets …`,
    // and the leader's global one after `Global `.
    if let Some(local) = &s.local_sessions_dump {
        out.push_str("Local Session ");
        expiry_queue(out, local, s.elapsed_to_wall_ms, |id| {
            format!("0x{:x}", id.0)
        });
    }
    match &s.sessions {
        SessionDump::Expiry(buckets) => {
            if s.local_sessions_dump.is_some() {
                out.push_str("Global ");
            }
            out.push_str("Session ");
            expiry_queue(out, buckets, s.elapsed_to_wall_ms, |id| {
                format!("0x{:x}", id.0)
            });
        }
        SessionDump::Global(sessions) => {
            let _ = writeln!(out, "Global Sessions({}):", sessions.len());
            for (id, timeout) in sessions {
                let _ = writeln!(out, "0x{:x}\t{timeout}ms", id.0);
            }
        }
    }
    out.push_str("ephemeral nodes dump:\n");
    let _ = writeln!(out, "Sessions with Ephemerals ({}):", s.ephemerals.len());
    for (id, paths) in &s.ephemerals {
        let _ = writeln!(out, "0x{:x}:", id.0);
        for p in paths {
            let _ = writeln!(out, "\t{p}");
        }
    }
    out.push_str("Connections dump:\n");
    if let Some(buckets) = &s.connection_expiry {
        out.push_str("Connections ");
        expiry_queue(out, buckets, s.elapsed_to_wall_ms, |(addr, id)| {
            format!("ip: /{addr} sessionId: 0x{:x}", id.0)
        });
    }
}

/// `ExpiryQueue.dump`: `Sets (buckets)/(elements):`, then per bucket in
/// time order `<n> expire at <date>:` and one tab-indented line per element;
/// a bucket's time plus `to_wall_ms` is its date.
fn expiry_queue<T>(
    out: &mut String,
    buckets: &[ExpiryBucket<T>],
    to_wall_ms: i64,
    show: impl Fn(&T) -> String,
) {
    let elements: usize = buckets.iter().map(|b| b.elements.len()).sum();
    let _ = writeln!(out, "Sets ({})/({}):", buckets.len(), elements);
    let mut sorted: Vec<&ExpiryBucket<T>> = buckets.iter().collect();
    sorted.sort_by_key(|b| b.expire_at_ms);
    for b in sorted {
        let _ = writeln!(
            out,
            "{} expire at {}:",
            b.elements.len(),
            java_date_utc(b.expire_at_ms + to_wall_ms)
        );
        for e in &b.elements {
            let _ = writeln!(out, "\t{}", show(e));
        }
    }
}

/// `BigDecimal.setScale(4, HALF_UP)` as `AvgMinMaxCounter.getAvg` does.
fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

/// Java's `Double.toString`: `0.0`, `2.5528`, `1.0E7`, `1.0E-4`.
pub fn java_double(x: f64) -> String {
    if x.is_nan() {
        return "NaN".to_owned();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.to_owned();
    }
    let abs = x.abs();
    if x == 0.0 || (1e-3..1e7).contains(&abs) {
        let s = format!("{x}");
        if s.contains('.') {
            s
        } else {
            format!("{s}.0")
        }
    } else {
        // Rust writes `1e7` / `1.5e-5`; Java `1.0E7` / `1.5E-5`.
        let s = format!("{x:e}");
        let (mantissa, exponent) = s.split_once('e').unwrap_or((&s, "0"));
        if mantissa.contains('.') {
            format!("{mantissa}E{exponent}")
        } else {
            format!("{mantissa}.0E{exponent}")
        }
    }
}

/// Java's `Date.toString` in UTC: `Mon Nov 23 12:17:36 UTC 2026`.
pub fn java_date_utc(ms: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{} {} {:02} {:02}:{:02}:{:02} UTC {}",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(month - 1) as usize],
        day,
        sod / 3600,
        sod % 3600 / 60,
        sod % 60,
        year
    )
}

/// Days since 1970-01-01 to (year, month 1–12, day 1–31) in the proleptic
/// Gregorian calendar (Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr};

    const VERSION: &str = "3.8.0-zab-0.1.0, built on 2026-11-23 10:00 UTC";

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)
    }

    fn standalone_cfg() -> Config {
        Config::parse(
            "tickTime=2000\ndataDir=/var/lib/zookeeper\nclientPort=2181\n",
            None,
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn quorum_cfg() -> Config {
        Config::parse(
            "tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir=/d\nclientPort=2182\n\
             server.1=127.0.0.1:2888:3888\nserver.2=127.0.0.1:2889:3889;2182\n\
             server.3=127.0.0.1:2890:3890:observer\n",
            Some("2"),
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    /// A standalone server with two connections, one of them without a
    /// session yet, watches, ephemerals and expiry buckets.
    fn status() -> ServerStatus {
        let s1 = SessionId(0x1000008e9f70012);
        let s2 = SessionId(0x1000008e9f70011);
        ServerStatus {
            serving: true,
            version: VERSION.to_owned(),
            mode: ServerMode::Standalone,
            server_id: ServerId(0),
            peer_state: None,
            observer_master_id: None,
            hosted_observers: None,
            last_zxid: Zxid(0x54),
            node_count: 5,
            latency: Latency {
                min: 0,
                avg: 2.55284,
                max: 9,
            },
            packets_received: 12,
            packets_sent: 11,
            outstanding_requests: 1,
            provider: ProviderMetrics {
                looking_count: 1,
                election_time: BasicSummary {
                    count: 1,
                    sum: 212,
                    min: 212,
                    max: 212,
                },
                ..ProviderMetrics::default()
            },
            quota: Default::default(),
            quota_exceeded: BTreeMap::new(),
            fsync_threshold_exceed_count: 0,
            read_latency: LatencySummary::default(),
            // What ZooKeeper 3.8.0 printed after three writes of 1, 4 and
            // 6 ms (see `latency_summary`).
            update_latency: {
                let mut s = LatencySummary::default();
                for ms in [6, 1, 4] {
                    s.record(ms);
                }
                s
            },
            client_response_sizes: BufferSizes {
                last: 16,
                min: 16,
                max: 100,
            },
            auth_failed_count: 1,
            connections: vec![
                ConnectionStatus {
                    remote: addr(47940),
                    interest_ops: 1,
                    queued: 0,
                    recved: 3,
                    sent: 3,
                    session: Some(ConnectionSession {
                        session_id: s1,
                        last_op: op_tag(106).to_owned(),
                        established_ms: 1795436244345,
                        timeout_ms: 10000,
                        last_cxid: 2,
                        last_zxid: Zxid(0x54),
                        last_response_ms: 732334,
                        last_latency_ms: 0,
                        min_latency_ms: 0,
                        avg_latency_ms: 1,
                        max_latency_ms: 3,
                    }),
                },
                ConnectionStatus {
                    remote: addr(47941),
                    interest_ops: 0,
                    queued: 0,
                    recved: 1,
                    sent: 0,
                    session: None,
                },
            ],
            leader: None,
            quorum_size: None,
            data_watches: BTreeMap::from([
                (s2, BTreeSet::from(["/a".to_owned()])),
                (s1, BTreeSet::from(["/a".to_owned(), "/b".to_owned()])),
            ]),
            watch_count: 4,
            sessions: SessionDump::Expiry(vec![ExpiryBucket {
                expire_at_ms: 1795436256000,
                elements: vec![s1, s2],
            }]),
            local_sessions_dump: None,
            ephemerals: BTreeMap::from([(s2, vec!["/e1".to_owned()])]),
            ephemerals_count: 1,
            connection_expiry: Some(vec![ExpiryBucket {
                expire_at_ms: 1795436262000,
                elements: vec![(addr(47940), s1)],
            }]),
            global_sessions: 2,
            local_sessions: 0,
            client_port: Some(2181),
            data_dir: PathBuf::from("/var/lib/zookeeper/version-2"),
            data_dir_size: 1024,
            log_dir: PathBuf::from("/var/lib/zookeeper/version-2"),
            log_dir_size: 67108880,
            approximate_data_size: 44,
            open_file_descriptor_count: 60,
            max_file_descriptor_count: 1048576,
            uptime_ms: 5000,
            trace_mask: DEFAULT_TRACE_MASK,
            digests: vec![(Zxid(0x54), 123456789)],
            environment: Environment {
                host_name: "zk1".into(),
                os_name: "Linux".into(),
                os_arch: "amd64".into(),
                os_version: "6.1.0".into(),
                user_name: "zookeeper".into(),
                user_home: "/var/lib/zookeeper".into(),
                user_dir: "/".into(),
                tmp_dir: "/tmp".into(),
                memory_free_mb: 370,
                memory_max_mb: 1024,
                memory_total_mb: 512,
            },
            elapsed_to_wall_ms: 0,
        }
    }

    fn leader_status() -> ServerStatus {
        ServerStatus {
            mode: ServerMode::Leader,
            server_id: ServerId(2),
            peer_state: Some("leading - broadcast".into()),
            quorum_size: Some(2),
            connections: Vec::new(),
            latency: Latency::default(),
            leader: Some(LeaderStatus {
                learners: 2,
                synced_followers: 1,
                synced_non_voting_followers: 0,
                synced_observers: 1,
                pending_syncs: 0,
                leader_uptime_ms: 4000,
                proposal_sizes: BufferSizes::default(),
            }),
            ..status()
        }
    }

    fn words(w: FourLetterWord) -> String {
        render(w, &status(), &standalone_cfg())
    }

    #[test]
    fn ruok_isro_gtmk() {
        assert_eq!(words(FourLetterWord::Ruok), "imok");
        assert_eq!(words(FourLetterWord::Isro), "rw");
        assert_eq!(words(FourLetterWord::Gtmk), "306");
        let ro = ServerStatus {
            mode: ServerMode::ReadOnly,
            ..status()
        };
        assert_eq!(render(FourLetterWord::Isro, &ro, &standalone_cfg()), "ro");
    }

    #[test]
    fn srvr() {
        assert_eq!(
            words(FourLetterWord::Srvr),
            "Zookeeper version: 3.8.0-zab-0.1.0, built on 2026-11-23 10:00 UTC\n\
             Latency min/avg/max: 0/2.5528/9\n\
             Received: 12\n\
             Sent: 11\n\
             Connections: 2\n\
             Outstanding: 1\n\
             Zxid: 0x54\n\
             Mode: standalone\n\
             Node count: 5\n"
        );
    }

    #[test]
    fn srvr_on_a_leader_and_read_only() {
        let text = render(FourLetterWord::Srvr, &leader_status(), &quorum_cfg());
        assert_eq!(
            text,
            format!(
                "Zookeeper version: {VERSION}\nLatency min/avg/max: 0/0.0/0\nReceived: 12\nSent: 11\n\
                 Connections: 0\nOutstanding: 1\nZxid: 0x54\nMode: leader\nNode count: 5\n\
                 Proposal sizes last/min/max: -1/-1/-1\n"
            )
        );
        let ro = ServerStatus {
            mode: ServerMode::ReadOnly,
            ..status()
        };
        let text = render(FourLetterWord::Srvr, &ro, &standalone_cfg());
        assert!(text.starts_with(&format!(
            "Zookeeper version: {VERSION}\nREAD-ONLY mode; serving only read-only clients\nLatency"
        )));
        assert!(text.contains("\nMode: read-only\n"));
    }

    #[test]
    fn stat() {
        assert_eq!(
            words(FourLetterWord::Stat),
            "Zookeeper version: 3.8.0-zab-0.1.0, built on 2026-11-23 10:00 UTC\n\
             Clients:\n \
             /127.0.0.1:47940[1](queued=0,recved=3,sent=3)\n \
             /127.0.0.1:47941[0](queued=0,recved=1,sent=0)\n\
             \n\
             Latency min/avg/max: 0/2.5528/9\n\
             Received: 12\n\
             Sent: 11\n\
             Connections: 2\n\
             Outstanding: 1\n\
             Zxid: 0x54\n\
             Mode: standalone\n\
             Node count: 5\n"
        );
    }

    #[test]
    fn cons() {
        assert_eq!(
            words(FourLetterWord::Cons),
            " /127.0.0.1:47940[1](queued=0,recved=3,sent=3,sid=0x1000008e9f70012,lop=ADDW,\
             est=1795436244345,to=10000,lcxid=0x2,lzxid=0x54,lresp=732334,llat=0,minlat=0,\
             avglat=1,maxlat=3)\n \
             /127.0.0.1:47941[0](queued=0,recved=1,sent=0)\n\n"
        );
    }

    #[test]
    fn cons_omits_negative_cxid_and_prints_unset_zxid_as_java_does() {
        let mut s = status();
        s.connections.truncate(1);
        if let Some(sess) = s.connections[0].session.as_mut() {
            sess.last_cxid = -1;
            sess.last_zxid = Zxid(-1);
            sess.last_op = "NA".into();
        }
        s.connections[0].interest_ops = 0x15;
        let text = render(FourLetterWord::Cons, &s, &standalone_cfg());
        assert_eq!(
            text,
            " /127.0.0.1:47940[15](queued=0,recved=3,sent=3,sid=0x1000008e9f70012,lop=NA,\
             est=1795436244345,to=10000,lzxid=0xffffffffffffffff,lresp=732334,llat=0,minlat=0,\
             avglat=1,maxlat=3)\n\n"
        );
    }

    #[test]
    fn conf_standalone() {
        assert_eq!(
            words(FourLetterWord::Conf),
            "clientPort=2181\n\
             secureClientPort=-1\n\
             dataDir=/var/lib/zookeeper/version-2\n\
             dataDirSize=1024\n\
             dataLogDir=/var/lib/zookeeper/version-2\n\
             dataLogSize=67108880\n\
             tickTime=2000\n\
             maxClientCnxns=60\n\
             minSessionTimeout=4000\n\
             maxSessionTimeout=40000\n\
             clientPortListenBacklog=-1\n\
             serverId=0\n"
        );
    }

    #[test]
    fn conf_quorum() {
        let s = ServerStatus {
            client_port: Some(2182),
            data_dir: PathBuf::from("/d/version-2"),
            log_dir: PathBuf::from("/d/version-2"),
            ..leader_status()
        };
        assert_eq!(
            render(FourLetterWord::Conf, &s, &quorum_cfg()),
            "clientPort=2182\n\
             secureClientPort=-1\n\
             dataDir=/d/version-2\n\
             dataDirSize=1024\n\
             dataLogDir=/d/version-2\n\
             dataLogSize=67108880\n\
             tickTime=2000\n\
             maxClientCnxns=60\n\
             minSessionTimeout=4000\n\
             maxSessionTimeout=40000\n\
             clientPortListenBacklog=-1\n\
             serverId=2\n\
             initLimit=10\n\
             syncLimit=5\n\
             electionAlg=3\n\
             electionPort=3889\n\
             quorumPort=2889\n\
             peerType=0\n\
             membership: \n\
             server.1=127.0.0.1:2888:3888:participant\n\
             server.2=127.0.0.1:2889:3889:participant;0.0.0.0:2182\n\
             server.3=127.0.0.1:2890:3890:observer\n\
             version=0"
        );
    }

    #[test]
    fn envi() {
        assert_eq!(
            words(FourLetterWord::Envi),
            "Environment:\n\
             zookeeper.version=3.8.0-zab-0.1.0, built on 2026-11-23 10:00 UTC\n\
             host.name=zk1\n\
             java.version=n/a\n\
             java.vendor=n/a\n\
             java.home=n/a\n\
             java.class.path=n/a\n\
             java.library.path=n/a\n\
             java.io.tmpdir=/tmp\n\
             java.compiler=n/a\n\
             os.name=Linux\n\
             os.arch=amd64\n\
             os.version=6.1.0\n\
             user.name=zookeeper\n\
             user.home=/var/lib/zookeeper\n\
             user.dir=/\n\
             os.memory.free=370MB\n\
             os.memory.max=1024MB\n\
             os.memory.total=512MB\n"
        );
    }

    #[test]
    fn mntr_standalone() {
        assert_eq!(
            words(FourLetterWord::Mntr),
            "zk_version\t3.8.0-zab-0.1.0, built on 2026-11-23 10:00 UTC\n\
             zk_server_state\tstandalone\n\
             zk_avg_latency\t2.5528\n\
             zk_max_latency\t9\n\
             zk_min_latency\t0\n\
             zk_packets_received\t12\n\
             zk_packets_sent\t11\n\
             zk_num_alive_connections\t2\n\
             zk_outstanding_requests\t1\n\
             zk_znode_count\t5\n\
             zk_watch_count\t4\n\
             zk_ephemerals_count\t1\n\
             zk_approximate_data_size\t44\n\
             zk_open_file_descriptor_count\t60\n\
             zk_max_file_descriptor_count\t1048576\n\
             zk_uptime\t5000\n\
             zk_global_sessions\t2\n\
             zk_local_sessions\t0\n\
             zk_connection_drop_probability\t0.0\n\
             zk_last_client_response_size\t16\n\
             zk_max_client_response_size\t100\n\
             zk_min_client_response_size\t16\n\
             zk_outstanding_tls_handshake\t0\n\
             zk_auth_failed_count\t1\n\
             zk_non_mtls_remote_conn_count\t0\n\
             zk_non_mtls_local_conn_count\t0\n\
             zk_looking_count\t1\n\
             zk_proposal_count\t0\n\
             zk_commit_count\t0\n\
             zk_learner_proposal_received_count\t0\n\
             zk_learner_commit_received_count\t0\n\
             zk_diff_count\t0\n\
             zk_snap_count\t0\n\
             zk_digest_mismatches_count\t0\n\
             zk_avg_election_time\t212.0\n\
             zk_min_election_time\t212\n\
             zk_max_election_time\t212\n\
             zk_cnt_election_time\t1\n\
             zk_sum_election_time\t212\n\
             zk_avg_fsynctime\t0.0\n\
             zk_min_fsynctime\t0\n\
             zk_max_fsynctime\t0\n\
             zk_cnt_fsynctime\t0\n\
             zk_sum_fsynctime\t0\n\
             zk_avg_snapshottime\t0.0\n\
             zk_min_snapshottime\t0\n\
             zk_max_snapshottime\t0\n\
             zk_cnt_snapshottime\t0\n\
             zk_sum_snapshottime\t0\n\
             zk_avg_dbinittime\t0.0\n\
             zk_min_dbinittime\t0\n\
             zk_max_dbinittime\t0\n\
             zk_cnt_dbinittime\t0\n\
             zk_sum_dbinittime\t0\n\
             zk_avg_startup_snap_load_time\t0.0\n\
             zk_min_startup_snap_load_time\t0\n\
             zk_max_startup_snap_load_time\t0\n\
             zk_cnt_startup_snap_load_time\t0\n\
             zk_sum_startup_snap_load_time\t0\n\
             zk_avg_startup_txns_loaded\t0.0\n\
             zk_min_startup_txns_loaded\t0\n\
             zk_max_startup_txns_loaded\t0\n\
             zk_cnt_startup_txns_loaded\t0\n\
             zk_sum_startup_txns_loaded\t0\n\
             zk_avg_startup_txns_load_time\t0.0\n\
             zk_min_startup_txns_load_time\t0\n\
             zk_max_startup_txns_load_time\t0\n\
             zk_cnt_startup_txns_load_time\t0\n\
             zk_sum_startup_txns_load_time\t0\n\
             zk_avg_readlatency\t0.0\n\
             zk_min_readlatency\t0\n\
             zk_max_readlatency\t0\n\
             zk_cnt_readlatency\t0\n\
             zk_sum_readlatency\t0\n\
             zk_p50_readlatency\t0\n\
             zk_p95_readlatency\t0\n\
             zk_p99_readlatency\t0\n\
             zk_p999_readlatency\t0\n\
             zk_avg_updatelatency\t3.6667\n\
             zk_min_updatelatency\t1\n\
             zk_max_updatelatency\t6\n\
             zk_cnt_updatelatency\t3\n\
             zk_sum_updatelatency\t11\n\
             zk_p50_updatelatency\t4\n\
             zk_p95_updatelatency\t6\n\
             zk_p99_updatelatency\t6\n\
             zk_p999_updatelatency\t6\n"
        );
    }

    /// ZooKeeper 3.8 with a quota on /app (`setquota -N 3 /app`, one
    /// create refused): the gauge sets after the gauges, the counter set
    /// after the counters, each named `<namespace>_<set>`.
    #[test]
    fn mntr_names_quota_sets_by_namespace() {
        let mut s = status();
        s.quota.count_limit.insert("app".into(), 3);
        s.quota.bytes_limit.insert("app".into(), -1);
        s.quota.count_usage.insert("app".into(), 3);
        s.quota.bytes_usage.insert("app".into(), 5);
        s.quota_exceeded.insert("app".into(), 1);
        let values = monitor_values(&s);
        let keys: Vec<&str> = values.iter().map(|(k, _)| k.as_str()).collect();
        let at = |k: &str| {
            keys.iter()
                .position(|x| *x == k)
                .unwrap_or_else(|| panic!("{k}"))
        };
        assert!(at("app_quota_count_limit_per_namespace") > at("max_latency"));
        assert!(at("app_quota_bytes_usage_per_namespace") < at("looking_count"));
        assert!(at("app_quota_exceeded_error_per_namespace") > at("snap_count"));
        let text = render(FourLetterWord::Mntr, &s, &standalone_cfg());
        for line in [
            "zk_app_quota_count_limit_per_namespace\t3\n",
            "zk_app_quota_bytes_limit_per_namespace\t-1\n",
            "zk_app_quota_count_usage_per_namespace\t3\n",
            "zk_app_quota_bytes_usage_per_namespace\t5\n",
            "zk_app_quota_exceeded_error_per_namespace\t1\n",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
    }

    #[test]
    fn mntr_leader_adds_quorum_and_leader_keys() {
        let text = render(FourLetterWord::Mntr, &leader_status(), &quorum_cfg());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], format!("zk_version\t{VERSION}"));
        assert_eq!(lines[1], "zk_server_state\tleader");
        assert_eq!(lines[2], "zk_peer_state\tleading - broadcast");
        assert_eq!(lines[3], "zk_avg_latency\t0.0");
        // The leader's keys end the gauges; the provider's counters and
        // basic summaries (8 + 7 × 5 lines) and the two latency summaries
        // (nine lines each) follow.
        let gauges = &lines[..lines.len() - 43 - 18];
        let tail = &gauges[gauges.len() - 10..];
        assert_eq!(
            tail,
            [
                "zk_quorum_size\t2",
                "zk_learners\t2",
                "zk_synced_followers\t1",
                "zk_synced_non_voting_followers\t0",
                "zk_synced_observers\t1",
                "zk_pending_syncs\t0",
                "zk_leader_uptime\t4000",
                "zk_last_proposal_size\t-1",
                "zk_max_proposal_size\t-1",
                "zk_min_proposal_size\t-1",
            ]
        );
        for line in &lines {
            assert_eq!(line.matches('\t').count(), 1, "{line}");
        }
    }

    /// `BufferStats`: -1 until the first size, then last, least, largest.
    #[test]
    fn buffer_sizes_record_last_min_and_max() {
        let mut b = BufferSizes::default();
        assert_eq!((b.last, b.min, b.max), (-1, -1, -1));
        for size in [48, 387, 51] {
            b.record(size);
        }
        assert_eq!((b.last, b.min, b.max), (51, 48, 387));
    }

    /// An observer names the server it learns from, as
    /// `ObserverZooKeeperServer` does; no other mode has the key.
    #[test]
    fn mntr_observer_names_the_server_it_learns_from() {
        let observer = ServerStatus {
            mode: ServerMode::Observer,
            peer_state: Some("observing - broadcast".into()),
            observer_master_id: Some(ServerId(3)),
            leader: None,
            ..leader_status()
        };
        let text = render(FourLetterWord::Mntr, &observer, &quorum_cfg());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[1], "zk_server_state\tobserver");
        assert_eq!(lines[2], "zk_peer_state\tobserving - broadcast");
        assert_eq!(lines[3], "zk_observer_master_id\t3");
        let leader = render(FourLetterWord::Mntr, &leader_status(), &quorum_cfg());
        assert!(!leader.contains("observer_master_id"), "{leader}");
    }

    /// A follower reports its synced observers only when it hosts them
    /// (`observerMasterPort`), as ZooKeeper's follower gauge does.
    #[test]
    fn mntr_follower_counts_its_observers_only_when_it_hosts_them() {
        let follower = |hosted| ServerStatus {
            mode: ServerMode::Follower,
            peer_state: Some("following - broadcast".into()),
            hosted_observers: hosted,
            leader: None,
            ..leader_status()
        };
        let text = render(FourLetterWord::Mntr, &follower(Some(2)), &quorum_cfg());
        let synced: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("zk_synced_observers"))
            .collect();
        assert_eq!(synced, ["zk_synced_observers\t2"]);
        let text = render(FourLetterWord::Mntr, &follower(None), &quorum_cfg());
        assert!(!text.contains("synced_observers"), "{text}");
    }

    #[test]
    fn watches() {
        assert_eq!(
            words(FourLetterWord::Wchs),
            "2 connections watching 2 paths\nTotal watches:3\n"
        );
        assert_eq!(
            words(FourLetterWord::Wchc),
            "0x1000008e9f70011\n\t/a\n0x1000008e9f70012\n\t/a\n\t/b\n\n"
        );
        assert_eq!(
            words(FourLetterWord::Wchp),
            "/a\n\t0x1000008e9f70011\n\t0x1000008e9f70012\n/b\n\t0x1000008e9f70012\n\n"
        );
        let none = ServerStatus {
            data_watches: BTreeMap::new(),
            ..status()
        };
        let cfg = standalone_cfg();
        assert_eq!(
            render(FourLetterWord::Wchs, &none, &cfg),
            "0 connections watching 0 paths\nTotal watches:0\n"
        );
        assert_eq!(render(FourLetterWord::Wchc, &none, &cfg), "\n");
        assert_eq!(render(FourLetterWord::Wchp, &none, &cfg), "\n");
    }

    #[test]
    fn dump_standalone() {
        assert_eq!(
            words(FourLetterWord::Dump),
            "SessionTracker dump:\n\
             Session Sets (1)/(2):\n\
             2 expire at Mon Nov 23 12:17:36 UTC 2026:\n\
             \t0x1000008e9f70012\n\
             \t0x1000008e9f70011\n\
             ephemeral nodes dump:\n\
             Sessions with Ephemerals (1):\n\
             0x1000008e9f70011:\n\
             \t/e1\n\
             Connections dump:\n\
             Connections Sets (1)/(1):\n\
             1 expire at Mon Nov 23 12:17:42 UTC 2026:\n\
             \tip: /127.0.0.1:47940 sessionId: 0x1000008e9f70012\n"
        );
    }

    /// Session deadlines run on the monotonic clock; `dump` prints them
    /// as wall-clock dates, as `Time.elapsedTimeToDate` does.
    #[test]
    fn dump_dates_deadlines_on_the_wall_clock() {
        let s = ServerStatus {
            sessions: SessionDump::Expiry(vec![ExpiryBucket {
                expire_at_ms: 5_000,
                elements: vec![SessionId(0x11)],
            }]),
            ephemerals: BTreeMap::new(),
            connection_expiry: None,
            elapsed_to_wall_ms: 1_795_436_251_000,
            ..status()
        };
        let out = render(FourLetterWord::Dump, &s, &standalone_cfg());
        assert!(
            out.contains("1 expire at Mon Nov 23 12:17:36 UTC 2026:\n\t0x11\n"),
            "{out}"
        );
    }

    /// `ReadOnlyZooKeeperServer.dumpConf` stops after `peerType`.
    #[test]
    fn conf_read_only_lists_no_membership() {
        let s = ServerStatus {
            mode: ServerMode::ReadOnly,
            ..leader_status()
        };
        let out = render(FourLetterWord::Conf, &s, &quorum_cfg());
        assert!(out.ends_with("quorumPort=2889\npeerType=0\n"), "{out}");
    }

    #[test]
    fn dump_follower_sorts_buckets_and_lists_global_sessions() {
        let s = ServerStatus {
            mode: ServerMode::Follower,
            sessions: SessionDump::Global(BTreeMap::from([
                (SessionId(0x200000000000002), 30000),
                (SessionId(0x100000000000001), 4000),
            ])),
            ephemerals: BTreeMap::new(),
            connection_expiry: Some(vec![
                ExpiryBucket {
                    expire_at_ms: 1795436262000,
                    elements: vec![(addr(1), SessionId(1))],
                },
                ExpiryBucket {
                    expire_at_ms: 1795436256000,
                    elements: vec![(addr(2), SessionId(2)), (addr(3), SessionId(3))],
                },
            ]),
            ..status()
        };
        assert_eq!(
            render(FourLetterWord::Dump, &s, &quorum_cfg()),
            "SessionTracker dump:\n\
             Global Sessions(2):\n\
             0x100000000000001\t4000ms\n\
             0x200000000000002\t30000ms\n\
             ephemeral nodes dump:\n\
             Sessions with Ephemerals (0):\n\
             Connections dump:\n\
             Connections Sets (2)/(3):\n\
             2 expire at Mon Nov 23 12:17:36 UTC 2026:\n\
             \tip: /127.0.0.1:2 sessionId: 0x2\n\
             \tip: /127.0.0.1:3 sessionId: 0x3\n\
             1 expire at Mon Nov 23 12:17:42 UTC 2026:\n\
             \tip: /127.0.0.1:1 sessionId: 0x1\n"
        );
        let netty = ServerStatus {
            connection_expiry: None,
            ..s
        };
        assert!(
            render(FourLetterWord::Dump, &netty, &quorum_cfg()).ends_with("Connections dump:\n")
        );
    }

    /// With local sessions, as Debian's ZooKeeper 3.8.0 printed with
    /// `localSessionsEnabled=true` and one kazoo session per server.
    #[test]
    fn dump_lists_local_sessions_first() {
        let local = Some(vec![
            ExpiryBucket {
                expire_at_ms: 1795436262000,
                elements: vec![SessionId(0x10003f5f7d20000)],
            },
            ExpiryBucket {
                expire_at_ms: 1795436256000,
                elements: vec![],
            },
        ]);
        let follower = ServerStatus {
            mode: ServerMode::Follower,
            sessions: SessionDump::Global(BTreeMap::new()),
            local_sessions_dump: local.clone(),
            ephemerals: BTreeMap::new(),
            connection_expiry: None,
            ..status()
        };
        let local_text = "SessionTracker dump:\n\
                          Local Session Sets (2)/(1):\n\
                          0 expire at Mon Nov 23 12:17:36 UTC 2026:\n\
                          1 expire at Mon Nov 23 12:17:42 UTC 2026:\n\
                          \t0x10003f5f7d20000\n";
        assert_eq!(
            render(FourLetterWord::Dump, &follower, &quorum_cfg()),
            format!(
                "{local_text}Global Sessions(0):\nephemeral nodes dump:\n\
                 Sessions with Ephemerals (0):\nConnections dump:\n"
            )
        );
        let leader = ServerStatus {
            mode: ServerMode::Leader,
            sessions: SessionDump::Expiry(Vec::new()),
            ..follower
        };
        assert_eq!(
            render(FourLetterWord::Dump, &leader, &quorum_cfg()),
            format!(
                "{local_text}Global Session Sets (0)/(0):\nephemeral nodes dump:\n\
                 Sessions with Ephemerals (0):\nConnections dump:\n"
            )
        );
    }

    #[test]
    fn dirs_resets_hash() {
        assert_eq!(
            words(FourLetterWord::Dirs),
            "datadir_size: 1024\nlogdir_size: 67108880\n"
        );
        assert_eq!(words(FourLetterWord::Srst), "Server stats reset.\n");
        assert_eq!(words(FourLetterWord::Crst), "Connection stats reset.\n");
        assert_eq!(words(FourLetterWord::Hash), "54: 123456789\n");
        assert_eq!(words(FourLetterWord::TelnetClose), "");
    }

    #[test]
    fn not_serving() {
        let s = ServerStatus {
            serving: false,
            ..status()
        };
        let cfg = standalone_cfg();
        for w in FourLetterWord::ALL {
            let text = render(w, &s, &cfg);
            let expected = match w {
                FourLetterWord::Ruok => "imok".to_owned(),
                FourLetterWord::Isro => "null".to_owned(),
                FourLetterWord::Gtmk | FourLetterWord::Stmk => "306".to_owned(),
                FourLetterWord::Envi => render(w, &status(), &cfg),
                FourLetterWord::TelnetClose => String::new(),
                FourLetterWord::Hash => NOT_SERVING.to_owned(),
                _ => format!("{NOT_SERVING}\n"),
            };
            assert_eq!(text, expected, "{w}");
        }
    }

    #[test]
    fn whitelist_refusal() {
        assert_eq!(
            not_whitelisted(FourLetterWord::Mntr),
            "mntr is not executed because it is not in the whitelist.\n"
        );
    }

    #[test]
    fn version_shape() {
        let v = full_version();
        assert!(v.starts_with("3.8.0-zab-"), "{v}");
        let (head, date) = v.split_once(", built on ").unwrap_or_default();
        assert_eq!(head, format!("3.8.0-zab-{}", env!("CARGO_PKG_VERSION")));
        assert!(date.ends_with(" UTC"), "{v}");
    }

    #[test]
    fn build_date_as_zookeeper_writes_it() {
        assert_eq!(build_date(0), "1970-01-01 00:00 UTC");
        // ZooKeeper 3.8.0's own: "built on 2022-02-25 08:49 UTC".
        assert_eq!(build_date(1_645_778_940), "2022-02-25 08:49 UTC");
        assert_eq!(build_date(1_645_778_999), "2022-02-25 08:49 UTC");
        assert_eq!(build_date(951_782_400), "2000-02-29 00:00 UTC");
    }

    #[test]
    fn op_tags() {
        for (op, tag) in [
            (4, "GETD"),
            (5, "SETD"),
            (1, "CREA"),
            (19, "CREA"),
            (2, "DELE"),
            (3, "EXIS"),
            (8, "GETC"),
            (12, "GETC"),
            (9, "SYNC"),
            (11, "PING"),
            (14, "MULT"),
            (106, "ADDW"),
            (-10, "SESS"),
            (-11, "CLOS"),
            (999, "NA"),
        ] {
            assert_eq!(op_tag(op), tag, "{op}");
        }
    }

    #[test]
    fn java_doubles() {
        for (x, s) in [
            (0.0, "0.0"),
            (1.0, "1.0"),
            (2.5528, "2.5528"),
            (0.001, "0.001"),
            (1234567.5, "1234567.5"),
            (1e7, "1.0E7"),
            (1.5e-4, "1.5E-4"),
            (-3.0, "-3.0"),
            (f64::NAN, "NaN"),
        ] {
            assert_eq!(java_double(x), s, "{x}");
        }
        assert_eq!(round4(2.55284), 2.5528);
        assert_eq!(round4(2.55285001), 2.5529);
    }

    #[test]
    fn java_dates() {
        assert_eq!(java_date_utc(1795436256000), "Mon Nov 23 12:17:36 UTC 2026");
        assert_eq!(java_date_utc(951782400000), "Tue Feb 29 00:00:00 UTC 2000");
        assert_eq!(java_date_utc(0), "Thu Jan 01 00:00:00 UTC 1970");
        assert_eq!(java_date_utc(-1000), "Wed Dec 31 23:59:59 UTC 1969");
    }

    #[test]
    fn environment_from_process_fills_something() {
        let e = Environment::from_process();
        assert!(!e.os_name.is_empty());
        assert!(!e.tmp_dir.is_empty());
        assert!(e.memory_free_mb <= e.memory_total_mb || e.memory_total_mb == 0);
    }

    #[test]
    fn user_name_is_the_passwd_entry_of_the_real_uid() {
        let status = "Name:\tzab-server\nUid:\t107\t0\t0\t0\nGid:\t0\t0\t0\t0\n";
        assert_eq!(real_uid(status), Some(107));
        assert_eq!(real_uid("Name:\tx\n"), None);
        let passwd = "root:x:0:0:root:/root:/bin/bash\n# comment\n\nzookeeper:x:107:113::/var/lib/zookeeper:/bin/false\n";
        assert_eq!(passwd_name(passwd, 107).as_deref(), Some("zookeeper"));
        assert_eq!(passwd_name(passwd, 0).as_deref(), Some("root"));
        assert_eq!(passwd_name(passwd, 5), None);
    }
}
