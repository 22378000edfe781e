//! Fills the four-letter words' [`ServerStatus`] from the running server.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use zab_store::Store;
use zab_wire::jute::frame::FourLetterWord;
use zab_wire::{ServerId, SessionId, Zxid};

use crate::config::Config;
use crate::four_letter::{
    self, ConnectionSession, ConnectionStatus, Environment, ExpiryBucket, Latency, ProviderMetrics,
    ServerMode, ServerStatus, SessionDump,
};
use crate::pipeline::Pipeline;
use crate::server::{elapsed_ms, now_ms};

/// What only a quorum member reports (`mntr`'s peer state and leader keys).
#[derive(Debug, Default)]
pub struct QuorumStatus {
    /// e.g. `following - broadcast` (ZooKeeper's `detailedPeerState`).
    pub peer_state: Option<String>,
    /// The ZAB phase, as ZooKeeper's `ZabState` in lower case (`election`,
    /// `synchronization`, `broadcast`); empty when standalone.
    pub zab_state: &'static str,
    pub leader: Option<crate::four_letter::LeaderStatus>,
    /// On an observer, the id of the server it learns from.
    pub observer_master: Option<ServerId>,
    /// On a follower hosting observers, how many are in sync with it.
    pub hosted_observers: Option<u64>,
    /// The leader followed or led (the admin server's `leader`).
    pub leader_id: Option<ServerId>,
    /// On a leader, its observers.
    pub observers: Vec<crate::admin::LearnerHandlerInfo>,
    /// The quorum's counters (`looking_count`, `election_time`, …); the
    /// txn log's `fsynctime` is added from the store.
    pub provider: ProviderMetrics,
}

/// What a status answer reads: the server's pipeline (`None` while it is
/// not serving: election, sync), its role and quorum figures, its config
/// and store, and when it started.
pub struct StatusSource<'a> {
    pub pipeline: Option<&'a mut Pipeline>,
    /// The server's client requests read and not yet answered (see
    /// [`crate::client_flow::ServerFlow::in_process`]).
    pub requests_in_process: i64,
    pub mode: ServerMode,
    pub quorum: QuorumStatus,
    pub cfg: &'a Config,
    pub store: &'a Store,
    /// When the process started (wall clock): `process_start_time_seconds`.
    pub started_ms: i64,
}

impl StatusSource<'_> {
    /// The status of a server that is not serving: its role alone.
    fn not_serving(mode: ServerMode, quorum: QuorumStatus) -> ServerStatus {
        ServerStatus {
            serving: false,
            mode,
            peer_state: quorum.peer_state,
            // `envi` answers in every state, with the real environment.
            environment: Environment::from_process(),
            ..ServerStatus::default()
        }
    }
}

/// Answers a four-letter word asked on the connection from `asker`;
/// `srst` and `crst` also reset the counters. `pipeline` is `None` while
/// the server is not serving (election, sync).
///
/// As in ZooKeeper (checked on 3.8.0), the word is a packet received
/// before the answer is built and the answer a packet sent after it (one
/// per 8192 bytes, the blocks ZooKeeper's writer sends it in), and
/// the asking connection is one of the server's connections: `srvr` on an
/// idle server shows `Connections: 1`, `cons` and `stat` list it in the
/// brief form with interest ops 0 (`/127.0.0.1:46774[0](queued=0,recved=1,sent=0)`).
pub fn four_letter(word: FourLetterWord, asker: SocketAddr, src: StatusSource<'_>) -> String {
    let StatusSource {
        pipeline,
        requests_in_process,
        mode,
        quorum,
        cfg,
        store,
        started_ms: _,
    } = src;
    let Some(pipeline) = pipeline else {
        let status = StatusSource::not_serving(mode, quorum);
        return four_letter::render(word, &status, cfg);
    };
    pipeline.count_four_letter_word();
    // Words that read nothing the server keeps answer without a copy of
    // its watches, sessions and connections, as ZooKeeper's `RuokCommand`
    // does no work: a liveness probe every few seconds must not stall the
    // clients of a server with a million watches.
    use FourLetterWord as W;
    if matches!(
        word,
        W::Ruok | W::Isro | W::Envi | W::Gtmk | W::Stmk | W::TelnetClose
    ) {
        let status = ServerStatus {
            serving: true,
            ..StatusSource::not_serving(mode, quorum)
        };
        let text = four_letter::render(word, &status, cfg);
        pipeline.count_four_letter_answer(text.len());
        return text;
    }
    match word {
        FourLetterWord::Srst => reset_stats(pipeline, store),
        FourLetterWord::Crst => pipeline.reset_connection_stats(),
        _ => {}
    }
    let need = Need {
        watches: matches!(word, W::Wchc | W::Wchp | W::Wchs),
        dump: word == W::Dump,
    };
    let mut status = collect(pipeline, cfg, store, requests_in_process, need);
    // The asking connection is one of the server's (not so for the admin
    // server's HTTP connections).
    status.connections.push(ConnectionStatus {
        remote: asker,
        // ZooKeeper cancels the asking connection's selection key before
        // it runs the command.
        interest_ops: 0,
        queued: 0,
        recved: 1,
        sent: 0,
        session: None,
    });
    status.connections.sort_by_key(|c| c.remote);
    complete(&mut status, pipeline, mode, quorum, cfg, need);
    let text = four_letter::render(word, &status, cfg);
    pipeline.count_four_letter_answer(text.len());
    text
}

/// Answers an HTTP request: an admin server command (any of its names,
/// with `args` from the URL's query) with its JSON document, after the
/// resets and trace mask it asks for; `/metrics` with the Prometheus
/// exposition. `pipeline` is `None` while the server is not serving.
/// Unlike a four-letter word, neither is a client packet: they move none
/// of the packet counters.
pub fn admin(request: &crate::admin_server::AdminRequest, src: StatusSource<'_>) -> String {
    use crate::admin::{self, AdminView, Effect};
    use crate::admin_server::AdminRequest;
    let StatusSource {
        pipeline,
        requests_in_process,
        mode,
        quorum,
        cfg,
        store,
        started_ms,
    } = src;
    let (command, args) = match request {
        AdminRequest::Command { name, args } => (name.as_str(), args),
        AdminRequest::Metrics { names } => {
            // The counters and summaries are ZooKeeper's `ServerMetrics`,
            // served whether or not the server serves (an election's
            // `looking_count` and `election_time` above all).
            let provider = with_store_timings(quorum.provider, store);
            let status = pipeline.map(|pipeline| {
                let need = Need {
                    watches: false,
                    dump: false,
                };
                let mut status = collect(pipeline, cfg, store, requests_in_process, need);
                complete(&mut status, pipeline, mode, quorum, cfg, need);
                status
            });
            let process = cfg.prometheus.export_process_info.then(|| {
                crate::prometheus::ProcessMetrics::read(started_ms, open_fds(), max_fds())
            });
            return crate::prometheus::render(status.as_ref(), &provider, process.as_ref(), names);
        }
    };
    let view = AdminView {
        leader_id: quorum.leader_id,
        zab_state: quorum.zab_state,
        last_snapshot: store
            .snapshots()
            .list()
            .ok()
            .and_then(|l| l.iter().map(|i| i.zxid).max())
            .map(|zxid| (zxid, store.snapshots().saved_at(zxid).ok().flatten())),
        observers: quorum.observers.clone(),
    };
    let effect = admin::find(command).map_or(Effect::None, |c| admin::effect(c, args));
    if let Effect::SetTraceMask(mask) = effect {
        four_letter::set_trace_mask(mask);
    }
    let Some(pipeline) = pipeline else {
        let status = StatusSource::not_serving(mode, quorum);
        return admin::render(command, args, &status, &view, cfg);
    };
    match effect {
        Effect::ResetStats => reset_stats(pipeline, store),
        Effect::ResetConnectionStats => pipeline.reset_connection_stats(),
        Effect::SetTraceMask(_) | Effect::None => {}
    }
    let primary = admin::find(command).map(admin::Command::primary);
    let need = Need {
        watches: matches!(
            primary,
            Some("watches" | "watches_by_path" | "watch_summary")
        ),
        dump: primary == Some("dump"),
    };
    let mut status = collect(pipeline, cfg, store, requests_in_process, need);
    complete(&mut status, pipeline, mode, quorum, cfg, need);
    // `dump`'s keys are the expiry queues' own times, on the monotonic
    // clock (`Now::elapsed_ms`) as ZooKeeper's `Time.currentElapsedTime()`.
    admin::render(command, args, &status, &view, cfg)
}

/// `srst` (as a four-letter word or `stat_reset`): the server's counters
/// and the store's timings start afresh, as ZooKeeper's `ServerStats.reset`
/// resets its metrics.
fn reset_stats(pipeline: &mut Pipeline, store: &Store) {
    pipeline.reset_stats();
    store.log().reset_sync_times();
    store.snapshots().reset_save_times();
}

/// Whether `packet` opens a sync without a snapshot (DIFF or TRUNC), the
/// syncs `mntr`'s `zk_diff_count` counts, as ZooKeeper's `LearnerHandler`
/// counts every sync that is not a SNAP.
pub(crate) fn is_diff_sync(packet: &zab_wire::proto::QuorumPacket) -> bool {
    use zab_wire::proto::PacketType;
    packet.r#type == PacketType::Diff as i32 || packet.r#type == PacketType::Trunc as i32
}

/// Whether `request` is the admin server's `stat_reset` (by any name),
/// which resets the quorum's counters too.
pub fn resets_stats(request: &crate::admin_server::AdminRequest) -> bool {
    use crate::admin::{effect, find, Effect};
    match request {
        crate::admin_server::AdminRequest::Command { name, args } => {
            find(name).is_some_and(|c| effect(c, args) == Effect::ResetStats)
        }
        crate::admin_server::AdminRequest::Metrics { .. } => false,
    }
}

/// `provider` with the store's own timings: its log's syncs and its
/// snapshots' saves.
fn with_store_timings(provider: ProviderMetrics, store: &Store) -> ProviderMetrics {
    ProviderMetrics {
        fsync_time: store.log().stats().sync_times.into(),
        snapshot_time: store.snapshots().save_times().into(),
        ..provider
    }
}

/// What [`collect`] leaves to the role: its mode, the sessions a learner
/// lists, the quorum's figures.
fn complete(
    status: &mut ServerStatus,
    pipeline: &Pipeline,
    mode: ServerMode,
    quorum: QuorumStatus,
    cfg: &Config,
    need: Need,
) {
    status.provider = ProviderMetrics {
        fsync_time: status.provider.fsync_time,
        snapshot_time: status.provider.snapshot_time,
        ..quorum.provider
    };
    if need.dump && matches!(mode, ServerMode::Follower | ServerMode::Observer) {
        // A learner's `LearnerSessionTracker` dumps the global sessions with
        // their timeouts instead of an expiry queue, and its map is the
        // database's own: every session a committed createSession opened
        // and no closeSession ended, whichever server the client is on
        // (reference E, checked on ZooKeeper 3.8.0).
        status.sessions = SessionDump::Global(pipeline.tree().sessions().collect());
    }
    status.mode = mode;
    status.peer_state = quorum.peer_state;
    status.leader = quorum.leader.map(|mut l| {
        l.proposal_sizes = pipeline.stats().proposal_sizes;
        l
    });
    status.observer_master_id = quorum.observer_master;
    status.hosted_observers = quorum.hosted_observers;
    if mode != ServerMode::Standalone {
        status.server_id = cfg.my_id.unwrap_or_default();
        status.quorum_size = Some(cfg.voters().count() as u64);
    }
}

/// What an answer lists beyond counters: each costs a copy of something
/// as large as the server's clients make it, on the task that serves them.
#[derive(Clone, Copy)]
struct Need {
    /// Every data watch by session (`wchc`, `wchp`, `wchs`).
    watches: bool,
    /// The sessions' expiry queue and every ephemeral (`dump`).
    dump: bool,
}

fn collect(
    pipeline: &Pipeline,
    cfg: &Config,
    store: &Store,
    requests_in_process: i64,
    need: Need,
) -> ServerStatus {
    let tree = pipeline.tree();
    let stats = pipeline.stats();
    let watches = pipeline.watches();

    // `lresp` is on ZooKeeper's `Time.currentElapsedTime()`, the monotonic
    // clock, where the pipeline keeps wall-clock milliseconds.
    let (wall_now, monotonic_now) = (now_ms(), elapsed_ms());
    let mut connections = Vec::new();
    for (_, remote, session, timeout, queued, s) in pipeline.connections() {
        let avg = if s.latency_count > 0 {
            s.total_latency_ms / s.latency_count as i64
        } else {
            0
        };
        connections.push(ConnectionStatus {
            remote,
            interest_ops: 1,
            queued: queued as u64,
            recved: s.received,
            sent: s.sent,
            session: session.map(|session_id| ConnectionSession {
                session_id,
                last_op: s.last_op.to_string(),
                established_ms: s.established_ms,
                timeout_ms: timeout,
                last_cxid: s.last_cxid,
                last_zxid: Zxid(s.last_zxid),
                last_response_ms: match s.last_response_ms {
                    0 => 0,
                    wall => monotonic_now - (wall_now - wall),
                },
                last_latency_ms: s.last_latency_ms,
                min_latency_ms: if s.min_latency_ms == i64::MAX {
                    0
                } else {
                    s.min_latency_ms
                },
                avg_latency_ms: avg,
                max_latency_ms: s.max_latency_ms,
            }),
        });
    }
    connections.sort_by_key(|c| c.remote);

    let mut data_watches: BTreeMap<SessionId, BTreeSet<String>> = BTreeMap::new();
    if need.watches {
        for (conn, paths) in watches.data_watches_by_connection() {
            if let Some(session) = pipeline.session_of(conn) {
                data_watches.entry(session).or_default().extend(paths);
            }
        }
    }
    let (sessions, local_sessions_dump, ephemerals) = match need.dump {
        true => (
            SessionDump::Expiry(expiry_buckets(pipeline.sessions())),
            pipeline.local_sessions_tracker().map(expiry_buckets),
            tree.ephemerals().collect(),
        ),
        false => (SessionDump::default(), None, BTreeMap::new()),
    };

    let disk = store.disk_usage();
    let avg = if stats.latency_count > 0 {
        stats.total_latency_ms as f64 / stats.latency_count as f64
    } else {
        0.0
    };
    ServerStatus {
        mode: ServerMode::Standalone,
        last_zxid: pipeline.last_processed_zxid(),
        node_count: tree.node_count() as u64,
        latency: Latency {
            min: stats.min_latency_ms,
            avg,
            max: stats.max_latency_ms,
        },
        packets_received: stats.packets_received,
        packets_sent: stats.packets_sent,
        // ZooKeeper's `requestsInProcess`: this server's clients' requests,
        // not the txns its pipeline has in flight (on a follower most of
        // those are other servers' clients').
        outstanding_requests: requests_in_process.max(0) as u64,
        connections,
        data_watches,
        watch_count: watches.total_watch_count() as u64,
        sessions,
        local_sessions_dump,
        ephemerals,
        ephemerals_count: tree.ephemeral_count() as u64,
        // `zkDb.getSessionCount()` in ZooKeeper: the sessions in the data
        // tree, so a learner counts the sessions on other servers too.
        global_sessions: tree.session_count() as u64,
        local_sessions: pipeline.local_session_count() as u64,
        client_port: cfg.client_port,
        data_dir: store.dir().to_path_buf(),
        data_dir_size: disk,
        log_dir: store.wal_dir().to_path_buf(),
        log_dir_size: store.wal_disk_usage(),
        approximate_data_size: tree.approximate_data_size(),
        digests: tree
            .digest_log()
            .iter()
            .map(|d| (d.zxid, d.digest))
            .collect(),
        open_file_descriptor_count: open_fds(),
        max_file_descriptor_count: max_fds(),
        uptime_ms: pipeline.uptime_ms(elapsed_ms()),
        client_response_sizes: stats.response_sizes,
        fsync_threshold_exceed_count: store.log().stats().syncs_over_threshold,
        provider: with_store_timings(ProviderMetrics::default(), store),
        read_latency: stats.read_latency.clone(),
        update_latency: stats.update_latency.clone(),
        quota: tree.quota_gauges(),
        quota_exceeded: pipeline.quota_exceeded().clone(),
        environment: Environment::from_process(),
        elapsed_to_wall_ms: wall_now - monotonic_now,
        ..ServerStatus::default()
    }
}

/// A session tracker's expiry queue, for `dump`.
fn expiry_buckets(
    tracker: &zab_tree::session_tracker::SessionTracker,
) -> Vec<ExpiryBucket<SessionId>> {
    tracker
        .expiry_buckets()
        .into_iter()
        .map(|(expire_at_ms, elements)| ExpiryBucket {
            expire_at_ms,
            elements,
        })
        .collect()
}

fn open_fds() -> i64 {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count() as i64)
        .unwrap_or(-1)
}

fn max_fds() -> i64 {
    // "Max open files  <soft>  <hard>  files" in /proc/self/limits.
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(-1)
}

#[cfg(test)]
mod tests {
    use zab_wire::proto::{PacketType, QuorumPacket};

    /// `envi` answers in every state (`EnvCommand` never asks whether a
    /// server runs), so a server that does not serve has its environment
    /// too.
    #[test]
    fn a_server_not_serving_has_its_environment() {
        let s = super::StatusSource::not_serving(
            crate::four_letter::ServerMode::Follower,
            super::QuorumStatus::default(),
        );
        assert_eq!(s.environment.os_name, "Linux");
        assert!(!s.environment.host_name.is_empty());
    }

    #[test]
    fn diff_count_counts_diff_and_trunc_syncs_not_snap() {
        let packet = |t: PacketType| QuorumPacket {
            r#type: t as i32,
            ..Default::default()
        };
        assert!(super::is_diff_sync(&packet(PacketType::Diff)));
        assert!(super::is_diff_sync(&packet(PacketType::Trunc)));
        assert!(!super::is_diff_sync(&packet(PacketType::Snap)));
        assert!(!super::is_diff_sync(&packet(PacketType::Proposal)));
    }
}
