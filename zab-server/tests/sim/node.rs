//! One simulated server: `zab-server/src/quorum.rs`'s `Peer` with the
//! sockets, tokio tasks and RocksDB replaced by the simulated [`Io`] and
//! [`Disk`]. Every action of the cores is carried out as `Peer` carries it
//! out — epochs persisted synchronously, TRUNC truncates the log and
//! rebuilds the tree from snapshot + log, SNAP replaces tree and log, the
//! leader proposes then appends locally and learns of its own durability
//! later, a Commit is applied and reported with `on_applied`, a learner's
//! Apply is applied — so that the checks judge the production composition.
//! Leaving a role replays logged-but-unapplied txns into the tree
//! (`Peer::fast_forward`, ZooKeeper's `fastForwardDataBase`). With
//! `observerMasterPort`, a follower in sync hosts observers through
//! zab-leader's `ObserverMaster` (quorum.rs's `hosted_observers`), and an
//! observer learns from a voter in turn.

use bytes::Bytes;
use prost::Message;
use zab_election::{Election, Notification, Output, Responder, ServerState, Vote};
use zab_leader::{
    CommittedLog, ConnId, Leader, LeaderAction, LeaderConfig, LeaderStart, ObserverMaster,
    ObserverMasterAction, SnapChunks,
};
use zab_learner::{
    Learner, LearnerAction, LearnerConfig, Phase as LearnerPhase, Role as LearnerRole, SyncMode,
    Timing,
};
use zab_tree::digest::{DigestComparison, DigestVerdict, ZxidDigest};
use zab_tree::{AuthInfo, DataTree, PrepareConfig, Preparer, RequestContext};
use zab_wire::jute::{op, Acl, CreateRequest, Request};
use zab_wire::proto::{PacketType, QuorumPacket, Txn};
use zab_wire::{Epoch, QuorumVerifier, ServerId, SessionId, Zxid};

use super::disk::{Disk, Snapshot};
use super::history::{digest, History};
use super::net::{Event, Io, StreamId};

/// quorum.rs's `CLOCK_MS`.
pub const CLOCK_MS: u64 = 25;
/// ZooKeeper's learner retries its connection every 100 ms within initLimit.
const CONNECT_RETRY_MS: u64 = 100;

#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub tick_ms: u64,
    pub init_limit: u32,
    pub sync_limit: u32,
    /// `commitLogCount` (ZooKeeper keeps at least 500).
    pub commit_window: usize,
    /// `zookeeper.snapshotSizeFactor`; negative disables txn-log DIFF.
    pub snapshot_size_factor: f64,
    /// A serving node saves a snapshot after this many applied txns
    /// (ZooKeeper's snapCount).
    pub snapshot_every: usize,
    /// fsync latency bounds (ms).
    pub fsync_ms: (u64, u64),
    /// `syncEnabled`: with false an observer neither logs nor snapshots
    /// (what it applies lives in memory only until its next SNAP).
    pub observer_logs: bool,
    /// `observerMasterPort`: followers host observers, observers learn
    /// from a voter in turn instead of from the leader.
    pub observer_masters: bool,
    /// This server's learner registers as one of an earlier zab: its
    /// FOLLOWERINFO does not say it understands LEADER_DURABLE (the only
    /// difference on the wire), so it must commit on COMMITs alone and
    /// never be sent a LEADER_DURABLE.
    pub earlier_zab: Option<ServerId>,
}

/// Counters the seed sweep asserts on (every sync mode must be exercised).
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub diff: u64,
    pub trunc: u64,
    pub snap: u64,
    pub established: u64,
    pub step_downs: u64,
    pub proposed: u64,
    /// Syncs of an observer that does not log (`syncEnabled=false`).
    pub unlogged_observer_syncs: u64,
    /// TRUNCs that reloaded less than they truncate to, so the learner
    /// synced again (only an observer that does not log can get there).
    pub trunc_resyncs: u64,
    /// Syncs of an observer by a follower (`observerMasterPort`).
    pub observer_master_syncs: u64,
    /// Txns a follower committed before its leader (LEADER_DURABLE).
    pub early_commits: u64,
    /// Syncs of a follower registered as one of an earlier zab.
    pub earlier_zab_syncs: u64,
    /// Restarts production refuses (a crash between NEWLEADER and its ACK).
    pub refused_starts: u64,
    /// Logs dropped at start for ending below the snapshot.
    pub dropped_logs: u64,
    /// Appends whose durability reached the core only as part of a higher
    /// zxid of their fsync group (quorum.rs's `DurableMark`).
    pub coalesced_durable: u64,
    /// Partitions that held packets instead of breaking streams.
    pub blackholes: u64,
    /// Forwarded `sync`s answered, each after the txns it had to wait for.
    pub syncs_answered: u64,
    /// Un-synced appends that survived a crash.
    pub unsynced_kept: u64,
}

pub enum Role {
    Down,
    Looking(Box<Election>),
    Leading(Box<Leading>),
    Learning(Box<Learning>),
}

pub struct Leading {
    pub leader: Leader,
    streams: std::collections::BTreeSet<StreamId>,
    /// Proposed txns waiting for their commit (the pipeline's pending
    /// writes in production).
    proposed: std::collections::BTreeMap<Zxid, Txn>,
    preparer: Preparer,
    session: Option<SessionId>,
    cxid: i32,
}

pub struct Learning {
    /// The elected leader.
    pub leader_sid: ServerId,
    pub role: LearnerRole,
    /// The server learned from: the leader, or the follower an observer
    /// learns from through its observer master port (`to_master`).
    pub learn_from: ServerId,
    pub to_master: bool,
    learner: Option<Learner>,
    stream: Option<StreamId>,
    connect_deadline: u64,
    /// A follower's observers, once it is in sync (`observer_masters`).
    observers: Option<Hosted>,
    /// The leader's tree digests, from its PINGs, against this tree's.
    digests: DigestComparison,
}

/// quorum.rs's `HostedObservers`: the master core and its streams.
pub struct Hosted {
    master: ObserverMaster,
    streams: std::collections::BTreeSet<StreamId>,
}

pub struct Node {
    pub sid: ServerId,
    verifier: QuorumVerifier,
    cfg: NodeConfig,
    pub disk: Disk,
    pub up: bool,
    /// quorum.rs's `gen`: bumped at every role change so that late events
    /// of an old role are dropped.
    pub gen: u64,
    pub role: Role,
    tree: DataTree,
    /// The txns `tree` holds, in apply order.
    pub history: History,
    logical_clock: u64,
    last_vote: Option<Vote>,
    responder: Option<Responder>,
    last_tick_ms: u64,
    /// Serving clients: an established leader, or a learner after UPTODATE.
    pub serving: bool,
    applied_since_snapshot: usize,
    /// Crashed between NEWLEADER and its ACK (see [`Node::start`]).
    crashed_persisting: bool,
    /// The highest zxid appended to each fsync group, by completion time
    /// and role generation: the group reports it once, as quorum.rs's
    /// `DurableMark` hands the core only the highest durable zxid.
    durable_reports: std::collections::BTreeMap<(u64, u64), Zxid>,
    /// An observer's turn through the voters for its observer master.
    next_master: usize,
}

impl Node {
    pub fn new(sid: ServerId, verifier: QuorumVerifier, cfg: NodeConfig) -> Node {
        Node {
            sid,
            verifier,
            cfg,
            disk: Disk::new(),
            up: false,
            gen: 0,
            role: Role::Down,
            tree: DataTree::new(),
            history: History::default(),
            logical_clock: 0,
            last_vote: None,
            responder: None,
            last_tick_ms: 0,
            serving: false,
            applied_since_snapshot: 0,
            crashed_persisting: false,
            durable_reports: std::collections::BTreeMap::new(),
            next_master: 0,
        }
    }

    pub fn tree(&self) -> &DataTree {
        &self.tree
    }

    pub fn is_established_leader(&self) -> bool {
        matches!(&self.role, Role::Leading(l) if l.leader.is_established())
    }

    pub fn leader_epoch(&self) -> Option<Epoch> {
        match &self.role {
            Role::Leading(l) => l.leader.epoch(),
            _ => None,
        }
    }

    /// The last txn this leader proposed, if it leads.
    pub fn last_proposed(&self) -> Option<Zxid> {
        match &self.role {
            Role::Leading(l) => Some(l.leader.last_proposed()),
            _ => None,
        }
    }

    pub fn role_name(&self) -> String {
        match &self.role {
            Role::Down => "down".into(),
            Role::Looking(_) => "looking".into(),
            Role::Leading(l) => format!("leading({:?})", l.leader.phase()),
            Role::Learning(l) if l.to_master => format!(
                "following {} via {} ({:?})",
                l.leader_sid,
                l.learn_from,
                l.learner.as_ref().map(|x| x.phase())
            ),
            Role::Learning(l) => format!(
                "following {} ({:?})",
                l.leader_sid,
                l.learner.as_ref().map(|x| x.phase())
            ),
        }
    }

    /// A learner between NEWLEADER and its ACK (see `full_check`).
    pub fn persisting_new_leader(&self) -> bool {
        matches!(&self.role, Role::Learning(l) if l.learner.as_ref().is_some_and(|x| x.persisting_new_leader()))
    }

    // ------------------------------------------------------------ life

    /// Process start: recover the tree from the disk, then LOOKING.
    pub fn start(&mut self, io: &mut Io) {
        self.up = true;
        self.logical_clock = 0;
        self.last_vote = None;
        self.responder = None;
        self.serving = false;
        self.last_tick_ms = 0;
        io.node_up(self.sid);
        if let Err(e) = self.recover(io) {
            io.violation(format!("{} cannot recover: {e}", self.sid));
        }
        self.recover_epochs(io);
        io.log(format!(
            "{} starts: snapshot {:?} zxid {} log {} epochs {}/{}",
            self.sid,
            self.disk.snapshot.as_ref().map(|s| s.zxid),
            self.tree.last_zxid(),
            self.disk.last_logged(),
            self.disk.accepted_epoch(),
            self.disk.current_epoch()
        ));
        let first_tick = io.rng.range(1, CLOCK_MS);
        io.schedule(
            first_tick,
            Event::Clock {
                sid: self.sid,
                incarnation: self.disk.incarnation,
            },
        );
        self.look(io);
    }

    /// zab-store's `recover_epochs` (ZooKeeper's `loadDataBase`): a missing
    /// epoch is the data's, and data newer than currentEpoch is refused.
    /// Production then exits; a crash between NEWLEADER's install and its
    /// ACK, a stretch ZooKeeper shares, gets there, so that one is counted
    /// and repaired as an operator repairs ZooKeeper's "current epoch is
    /// older than the last zxid": currentEpoch is set to the data's (which
    /// acceptedEpoch covers). Any other refusal is a violation: a state
    /// production cannot start from.
    fn recover_epochs(&mut self, io: &mut Io) {
        let of_data = self.tree.last_zxid().epoch();
        let current = self.disk.recorded_current_epoch().unwrap_or(of_data);
        if of_data > current {
            let what = format!(
                "{} holds {} under currentEpoch {current}: production refuses to start",
                self.sid,
                self.tree.last_zxid()
            );
            if self.crashed_persisting {
                io.log(format!(
                    "{what} (crashed persisting NEWLEADER's sync); repaired to {of_data}"
                ));
                io.stats.refused_starts += 1;
                if let Err(e) = self.disk.set_current_epoch(of_data) {
                    io.violation(format!("{}: repairing currentEpoch: {e}", self.sid));
                }
                return;
            }
            io.violation(what);
            return;
        }
        let accepted = self.disk.recorded_accepted_epoch().unwrap_or(of_data);
        if accepted < current {
            io.violation(format!(
                "{}: acceptedEpoch {accepted} below currentEpoch {current}: production refuses to start",
                self.sid
            ));
            return;
        }
        let (write_accepted, write_current) = (
            self.disk.recorded_accepted_epoch().is_none(),
            self.disk.recorded_current_epoch().is_none(),
        );
        if write_accepted {
            if let Err(e) = self.disk.set_accepted_epoch(accepted) {
                io.violation(format!("{}: {e}", self.sid));
            }
        }
        if write_current {
            if let Err(e) = self.disk.set_current_epoch(current) {
                io.violation(format!("{}: {e}", self.sid));
            }
        }
    }

    /// `kill -9` or a power loss: memory is gone, and of the un-synced log
    /// tail all but its first `keep` appends (see [`Disk::crash`]).
    pub fn crash(&mut self, io: &mut Io, keep: usize) {
        io.log(format!("{} crashes ({})", self.sid, self.role_name()));
        self.crashed_persisting = self.persisting_new_leader();
        self.up = false;
        self.gen += 1;
        self.role = Role::Down;
        self.serving = false;
        self.durable_reports.clear();
        self.disk.crash(keep);
        io.node_down(self.sid);
    }

    /// server.rs's `recover`: the latest snapshot, then the whole log.
    fn recover(&mut self, io: &mut Io) -> Result<(), String> {
        let (mut tree, mut history) = match &self.disk.snapshot {
            Some(s) => (
                DataTree::restore(&mut &s.bytes[..]).map_err(|e| e.to_string())?,
                s.history.clone(),
            ),
            None => (DataTree::new(), History::default()),
        };
        // A log that ends below the snapshot is dropped, as server.rs's
        // `recover` drops it.
        let last_logged = self.disk.last_logged();
        if last_logged != Zxid::ZERO && last_logged < tree.last_zxid() {
            io.log(format!(
                "{}: the log ends at {last_logged}, below the snapshot's {}: dropped",
                self.sid,
                tree.last_zxid()
            ));
            io.stats.dropped_logs += 1;
            self.disk.truncate_after(Zxid::ZERO);
        }
        for (zxid, bytes) in self.disk.log_from(tree.last_zxid().next()) {
            let txn = Txn::decode(bytes.clone()).map_err(|e| e.to_string())?;
            if txn.zxid != zxid.0 {
                return Err(format!("log entry {zxid} holds txn {}", Zxid(txn.zxid)));
            }
            tree.apply(&txn);
            history.push(zxid, digest(&bytes))?;
        }
        self.tree = tree;
        self.history = history;
        self.applied_since_snapshot = 0;
        Ok(())
    }

    /// quorum.rs's `fast_forward` (ZooKeeper's `fastForwardDataBase`):
    /// apply what the log holds beyond the tree — proposals acked but never
    /// committed under the old leader, which this server's vote offers.
    fn fast_forward(&mut self, io: &mut Io) {
        self.disk.drain();
        for (zxid, bytes) in self.disk.log_from(self.tree.last_zxid().next()) {
            match Txn::decode(bytes.clone()) {
                Ok(txn) => {
                    self.tree.apply(&txn);
                    if let Err(e) = self.history.push(zxid, digest(&bytes)) {
                        io.violation(format!("{} fast-forward: {e}", self.sid));
                    }
                }
                Err(e) => io.violation(format!("{} fast-forward: {e}", self.sid)),
            }
        }
    }

    fn apply(&mut self, io: &mut Io, txn: &Txn) {
        let bytes = txn.encode_to_vec();
        self.tree.apply(txn);
        if let Err(e) = self.history.push(Zxid(txn.zxid), digest(&bytes)) {
            io.violation(format!("{}: {e}", self.sid));
        }
        if self.serving && self.logs() {
            self.applied_since_snapshot += 1;
            if self.applied_since_snapshot >= self.cfg.snapshot_every {
                self.take_snapshot(io);
            }
        }
    }

    /// Whether this node logs and snapshots what it applies (quorum.rs:
    /// all but an observer with `syncEnabled=false`).
    fn logs(&self) -> bool {
        let observing = matches!(&self.role, Role::Learning(l) if l.role == LearnerRole::Observer);
        self.cfg.observer_logs || !observing
    }

    /// The pipeline's periodic snapshot (taken only while serving: the tree
    /// then holds committed txns only).
    fn take_snapshot(&mut self, io: &mut Io) {
        self.applied_since_snapshot = 0;
        let mut bytes = Vec::new();
        if let Err(e) = self.tree.snapshot().write_to(&mut bytes) {
            io.violation(format!("{} cannot write a snapshot: {e}", self.sid));
            return;
        }
        let size = bytes.len() as u64;
        self.disk.snapshot = Some(Snapshot {
            zxid: self.tree.last_zxid(),
            bytes: Bytes::from(bytes),
            history: self.history.clone(),
        });
        if let Role::Leading(l) = &mut self.role {
            l.leader.set_snapshot_size(size);
        }
        if let Some(h) = self.hosted() {
            h.master.set_snapshot_size(size);
        }
    }

    // ------------------------------------------------------------ roles

    fn leave_role(&mut self, io: &mut Io, reason: &str) {
        self.gen += 1;
        io.log(format!(
            "{} leaves {}: {reason}",
            self.sid,
            self.role_name()
        ));
        if matches!(self.role, Role::Leading(_) | Role::Learning(_)) {
            io.close_streams_of(self.sid);
        }
        let epoch_due = match &self.role {
            Role::Learning(l) => l.learner.as_ref().and_then(|x| x.epoch_due_after_drain()),
            _ => None,
        };
        self.role = Role::Down;
        self.serving = false;
        self.responder = None;
        self.fast_forward(io);
        // quorum.rs: the drain made the NEWLEADER sync durable; its epoch
        // follows.
        if let Some(epoch) = epoch_due {
            if let Err(e) = self.disk.set_current_epoch(epoch) {
                io.violation(format!("{} writing the due currentEpoch: {e}", self.sid));
            }
        }
    }

    fn look(&mut self, io: &mut Io) {
        self.gen += 1;
        let last_logged = self.disk.last_logged().max(self.tree.last_zxid());
        let current = self.disk.current_epoch();
        let (mut election, outputs) = Election::new(
            self.sid,
            self.verifier.clone(),
            last_logged,
            current,
            self.logical_clock,
            io.now,
        );
        if let Some(v) = self.last_vote {
            election.set_current_vote(v);
        }
        self.role = Role::Looking(Box::new(election));
        self.election_outputs(io, outputs);
    }

    pub fn on_notification(&mut self, io: &mut Io, n: Notification) {
        match &mut self.role {
            Role::Looking(e) => {
                let mut out = e.on_notification(io.now, n);
                let me = self.sid;
                out.extend(e.decide_if_all_reachable_agree(|s| io.may_still_vote(me, s)));
                self.election_outputs(io, out);
            }
            Role::Down => {}
            _ => {
                let awaiting_quorum = self.awaiting_quorum();
                let Some(r) = self.responder.as_mut() else {
                    return;
                };
                if let Some(reply) = r.on_notification(&n) {
                    io.notify(self.sid, n.sender, reply);
                }
                if awaiting_quorum && r.lost_quorum_after(&n) {
                    let reason = format!("{} now backs a better vote", n.sender);
                    self.leave_role(io, &reason);
                    self.look(io);
                }
            }
        }
    }

    /// As in quorum.rs: a leader before a quorum reported its epoch, a
    /// learner its leader has not answered yet.
    fn awaiting_quorum(&self) -> bool {
        match &self.role {
            Role::Leading(l) => l.leader.is_gathering_quorum(),
            Role::Learning(l) => l
                .learner
                .as_ref()
                .is_none_or(|x| x.phase() == LearnerPhase::Registering),
            Role::Looking(_) | Role::Down => false,
        }
    }

    fn election_outputs(&mut self, io: &mut Io, outputs: Vec<Output>) {
        for o in outputs {
            match o {
                Output::Send { to, n } => io.notify(self.sid, to, n),
                Output::Decided { state, vote } => {
                    let Role::Looking(e) = &self.role else { return };
                    self.logical_clock = e.logical_clock();
                    self.responder = e.responder().cloned().or_else(|| {
                        Some(Responder::new(
                            self.sid,
                            self.verifier.clone(),
                            state,
                            vote,
                            0,
                        ))
                    });
                    self.last_vote = Some(vote);
                    io.log(format!(
                        "{} decided {state:?}, leader {}",
                        self.sid, vote.leader
                    ));
                    match state {
                        ServerState::Leading => self.lead(io),
                        ServerState::Following => {
                            self.follow(io, vote.leader, LearnerRole::Follower)
                        }
                        ServerState::Observing => {
                            self.follow(io, vote.leader, LearnerRole::Observer)
                        }
                        ServerState::Looking => self.look(io),
                    }
                    return;
                }
            }
        }
    }

    /// What a master of learners starts from, as a leader or as a follower
    /// hosting observers: its settings, the window of its newest applied
    /// txns, and the size of its newest snapshot.
    fn learner_master_start(&self) -> (LeaderConfig, CommittedLog, u64) {
        let last = self.tree.last_zxid();
        let window = self.cfg.commit_window.max(500);
        let committed = CommittedLog::from_entries(window, self.disk.window(last, window));
        let snapshot_size = self
            .disk
            .snapshot
            .as_ref()
            .map_or(0, |s| s.bytes.len() as u64);
        let mut lc = LeaderConfig::new(
            self.sid,
            self.verifier.clone(),
            self.cfg.tick_ms,
            self.cfg.init_limit,
            self.cfg.sync_limit,
        );
        lc.snapshot_size_factor = self.cfg.snapshot_size_factor;
        (lc, committed, snapshot_size)
    }

    fn lead(&mut self, io: &mut Io) {
        self.gen += 1;
        let last_processed = self.tree.last_zxid();
        let (lc, committed, snapshot_size) = self.learner_master_start();
        let start = LeaderStart {
            accepted_epoch: self.disk.accepted_epoch(),
            current_epoch: self.disk.current_epoch(),
            last_processed,
            committed,
            txn_log: Box::new(self.disk.view()),
            snapshot_size,
        };
        let (leader, actions) = Leader::start(lc, start, io.now);
        self.role = Role::Leading(Box::new(Leading {
            leader,
            streams: Default::default(),
            proposed: Default::default(),
            preparer: Preparer::new(PrepareConfig {
                extended_types_enabled: false,
                skip_acl: true,
                ..PrepareConfig::default()
            }),
            session: None,
            cxid: 0,
        }));
        self.leader_actions(io, actions);
    }

    fn follow(&mut self, io: &mut Io, leader_sid: ServerId, role: LearnerRole) {
        self.gen += 1;
        let limit = self.cfg.tick_ms * u64::from(self.cfg.init_limit.max(1));
        // quorum.rs's `next_observer_master`: the voters in turn from a
        // random start, a second for each.
        let master = (role == LearnerRole::Observer && self.cfg.observer_masters).then(|| {
            let voters: Vec<ServerId> = self.verifier.voters().iter().copied().collect();
            if self.next_master == 0 {
                self.next_master = io.rng.range(1, 1 << 16) as usize;
            }
            self.next_master += 1;
            voters[self.next_master % voters.len()]
        });
        let (learn_from, limit) = match master {
            Some(sid) => (sid, limit.min(1_000)),
            None => (leader_sid, limit),
        };
        self.role = Role::Learning(Box::new(Learning {
            leader_sid,
            role,
            learn_from,
            to_master: master.is_some(),
            learner: None,
            stream: None,
            connect_deadline: io.now + limit,
            observers: None,
            digests: DigestComparison::default(),
        }));
        let dial = io.rng.range(0, 5);
        io.schedule(
            dial,
            Event::Connect {
                sid: self.sid,
                gen: self.gen,
            },
        );
    }

    /// Is this node accepting learners: on its quorum port (a leader), or
    /// on its observer master port (a follower in sync hosting observers)?
    pub fn accepts_learners(&self, to_master: bool) -> bool {
        match &self.role {
            Role::Leading(_) => !to_master,
            Role::Learning(l) => to_master && l.observers.is_some(),
            _ => false,
        }
    }

    /// A connect attempt failed (the leader is not listening or not
    /// reachable): retry within initLimit, else LOOKING again.
    pub fn connect_failed(&mut self, io: &mut Io) {
        let Role::Learning(l) = &self.role else {
            return;
        };
        if io.now + CONNECT_RETRY_MS <= l.connect_deadline {
            io.schedule(
                CONNECT_RETRY_MS,
                Event::Connect {
                    sid: self.sid,
                    gen: self.gen,
                },
            );
        } else {
            let reason = format!("cannot connect to {}", l.learn_from);
            self.leave_role(io, &reason);
            self.look(io);
        }
    }

    /// Wants to connect: following, no stream yet, same role generation.
    /// Also says whether to the target's observer master port.
    pub fn wants_connect(&self, gen: u64) -> Option<(ServerId, bool)> {
        match &self.role {
            Role::Learning(l) if gen == self.gen && l.stream.is_none() => {
                Some((l.learn_from, l.to_master))
            }
            _ => None,
        }
    }

    // ------------------------------------------------------------ leader

    pub fn learner_connected(&mut self, io: &mut Io, stream: StreamId) {
        if let Some(h) = self.hosted() {
            h.streams.insert(stream);
            h.master.on_connected(ConnId(stream));
            return;
        }
        let Role::Leading(l) = &mut self.role else {
            return;
        };
        l.streams.insert(stream);
        let actions = l.leader.on_learner_connected(ConnId(stream));
        self.leader_actions(io, actions);
    }

    pub fn packet_from_learner(&mut self, io: &mut Io, stream: StreamId, packet: QuorumPacket) {
        if let Some(h) = self.hosted() {
            if h.streams.contains(&stream) {
                let actions = h.master.on_packet(ConnId(stream), packet);
                self.observer_master_actions(io, actions);
            }
            return;
        }
        let Role::Leading(l) = &mut self.role else {
            return;
        };
        if !l.streams.contains(&stream) {
            return;
        }
        let actions = l.leader.on_packet(ConnId(stream), packet);
        self.leader_actions(io, actions);
    }

    pub fn learner_gone(&mut self, io: &mut Io, stream: StreamId) {
        if let Some(h) = self.hosted() {
            if h.streams.remove(&stream) {
                h.master.on_disconnected(ConnId(stream));
            }
            return;
        }
        let Role::Leading(l) = &mut self.role else {
            return;
        };
        if !l.streams.remove(&stream) {
            return;
        }
        let actions = l.leader.on_learner_disconnected(ConnId(stream));
        self.leader_actions(io, actions);
    }

    fn leader_actions(&mut self, io: &mut Io, actions: Vec<LeaderAction>) {
        let mut queue: std::collections::VecDeque<LeaderAction> = actions.into();
        while let Some(a) = queue.pop_front() {
            let Role::Leading(l) = &mut self.role else {
                return;
            };
            match a {
                LeaderAction::Send { conn, packet } => {
                    check_epochs_before(io, self.sid, &self.disk, &packet, None);
                    if l.streams.contains(&conn.0) {
                        io.stream_send(conn.0, false, packet);
                    }
                }
                LeaderAction::SendSnapshot {
                    conn,
                    zxid,
                    applied_through,
                } => {
                    let open = l.streams.contains(&conn.0);
                    self.send_snapshot(io, conn.0, open, zxid, applied_through);
                }
                LeaderAction::PersistAcceptedEpoch(e) => {
                    if let Err(err) = self.disk.set_accepted_epoch(e) {
                        io.violation(format!("{}: {err}", self.sid));
                    }
                }
                LeaderAction::PersistCurrentEpoch(e) => {
                    if let Err(err) = self.disk.set_current_epoch(e) {
                        io.violation(format!("{}: {err}", self.sid));
                    }
                }
                LeaderAction::Established { epoch } => {
                    io.log(format!(
                        "{} LEADING epoch {epoch} at {} ({} txns)",
                        self.sid,
                        self.tree.last_zxid(),
                        self.history.len()
                    ));
                    io.stats.established += 1;
                    if let Some(r) = self.responder.as_mut() {
                        r.set_peer_epoch(epoch);
                    }
                    self.serving = true;
                    if let Err(e) = io.check.established(self.sid, epoch, &self.history) {
                        io.violation(e);
                    }
                    // quorum.rs: the lead's snapshot, once a quorum holds
                    // the history.
                    self.take_snapshot(io);
                }
                LeaderAction::Commit { zxid } => {
                    let Some(txn) = l.proposed.remove(&zxid) else {
                        io.violation(format!(
                            "{} commits {zxid}, which it never proposed",
                            self.sid
                        ));
                        continue;
                    };
                    l.preparer.applied(zxid);
                    self.apply(io, &txn);
                    if let Role::Leading(l) = &mut self.role {
                        l.leader.on_applied(zxid);
                    }
                    if let Err(e) = io.check.commit(self.sid, &self.history) {
                        io.violation(e);
                    }
                }
                LeaderAction::ForwardedRequest { conn, request, .. } if request.op == op::SYNC => {
                    // As quorum.rs: a sync goes to the core as it arrives.
                    // Its floor: every txn proposed or applied so far (a
                    // new epoch's `(e, 0)` is no proposal).
                    let proposed = l.leader.last_proposed();
                    let applied = self.history.last_zxid();
                    let floor = if proposed.counter() == 0 {
                        applied
                    } else {
                        proposed.max(applied)
                    };
                    io.check.sync_floors.insert(request.cxid, floor);
                    io.log(format!(
                        "{} takes sync {} at {floor}",
                        self.sid, request.cxid
                    ));
                    queue.extend(l.leader.sync_request(conn, request));
                }
                LeaderAction::ForwardedRequest { .. } | LeaderAction::Revalidate { .. } => {
                    // The simulated clients write to the leader directly.
                    io.violation(format!("{}: unexpected {a:?}", self.sid));
                }
                LeaderAction::TouchSessions { .. } => {}
                LeaderAction::CloseLearner { conn, reason } => {
                    io.log(format!("{} drops conn {}: {reason}", self.sid, conn.0));
                    l.streams.remove(&conn.0);
                    io.kill_stream(conn.0, 5);
                }
                LeaderAction::StepDown { reason } => {
                    io.stats.step_downs += 1;
                    self.leave_role(io, &format!("step down: {reason}"));
                    self.look(io);
                    return;
                }
            }
        }
    }

    /// A client's `sync` on a serving learner (reference D.8): forwarded
    /// to the leader (through its observer master, for an observer that
    /// has one); checked when it is answered (`SyncDone`).
    pub fn client_sync(&mut self, io: &mut Io, cxid: i32) {
        if !self.serving {
            return;
        }
        let Role::Learning(l) = &mut self.role else {
            return;
        };
        let Some(learner) = l.learner.as_mut() else {
            return;
        };
        let req = zab_wire::proto::ForwardedRequest {
            session_id: i64::from(cxid) << 8 | self.sid.0 as i64,
            cxid,
            op: op::SYNC,
            body: Bytes::new(),
            origin: 0,
        };
        io.log(format!("{} forwards sync {cxid}", self.sid));
        let actions = learner.forward(req, Vec::new());
        self.learner_actions(io, actions);
    }

    /// The client driver's write: prepared against the leader's tree (a
    /// createSession first, then creates of fresh paths), proposed, and
    /// logged locally. quorum.rs sends the proposals first and queues the
    /// append once the core's message is handled; appending first here
    /// changes nothing, since no ACK and no reader of the log comes between.
    pub fn client_write(&mut self, io: &mut Io, key: u64) {
        let now = io.now;
        let Role::Leading(l) = &mut self.role else {
            return;
        };
        if !l.leader.is_established() {
            return;
        }
        let zxid = l.leader.last_proposed().next();
        let auth = AuthInfo::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
        let txn = match l.session {
            None => {
                let session = SessionId(((zxid.epoch().0 as i64) << 16) | self.sid.0 as i64);
                l.session = Some(session);
                let ctx = RequestContext {
                    session_id: session,
                    cxid: 0,
                    zxid,
                    time_ms: now as i64,
                    auth: &auth,
                    session_moved: false,
                    session_local: false,
                };
                l.preparer.prepare_create_session(&self.tree, &ctx, 30_000)
            }
            Some(session) => {
                l.cxid += 1;
                let ctx = RequestContext {
                    session_id: session,
                    cxid: l.cxid,
                    zxid,
                    time_ms: now as i64,
                    auth: &auth,
                    session_moved: false,
                    session_local: false,
                };
                let req = Request::Create {
                    op: op::CREATE,
                    req: CreateRequest {
                        path: format!("/k{key}"),
                        data: Some(Bytes::from(format!("value {key} from {}", self.sid))),
                        acl: Some(Acl::open_unsafe()),
                        flags: 0,
                    },
                };
                l.preparer.prepare(&self.tree, &ctx, &req)
            }
        };
        let actions = match l.leader.propose(txn.clone()) {
            Ok(a) => a,
            Err(e) => {
                io.violation(format!("{} cannot propose {zxid}: {e}", self.sid));
                return;
            }
        };
        io.stats.proposed += 1;
        // As quorum.rs: a leader that stepped down instead (its zxid
        // counter rolled over) does not log the txn.
        if l.leader.is_established() {
            let bytes = Bytes::from(txn.encode_to_vec());
            l.proposed.insert(zxid, txn);
            self.append(io, zxid, bytes);
        }
        self.leader_actions(io, actions);
    }

    /// quorum.rs's `stream_snapshot`: the tree as it is, which must hold
    /// exactly the txns through `applied_through`, to the learner on
    /// `stream` (if still `open`) as SNAP_CHUNKs and SNAP_END.
    fn send_snapshot(
        &self,
        io: &mut Io,
        stream: StreamId,
        open: bool,
        zxid: Zxid,
        applied_through: Zxid,
    ) {
        if applied_through != self.tree.last_zxid() {
            io.violation(format!(
                "{}: a snapshot applied through {applied_through} but the tree is at {}",
                self.sid,
                self.tree.last_zxid()
            ));
        }
        let mut bytes = Vec::new();
        if let Err(e) = self.tree.snapshot().write_to(&mut bytes) {
            io.violation(format!("{}: serializing a snapshot: {e}", self.sid));
            return;
        }
        io.snapshot_sent(digest(&bytes), self.history.clone());
        io.log(format!(
            "{} sends a snapshot at {zxid} to conn {stream}",
            self.sid
        ));
        if open {
            // Small chunks: the stream and its reassembly are exercised
            // with several packets.
            for chunk in SnapChunks::with_chunk_size(&bytes[..], 4096) {
                match chunk {
                    Ok(p) => io.stream_send(stream, false, p),
                    Err(_) => break,
                }
            }
        }
    }

    fn append(&mut self, io: &mut Io, zxid: Zxid, bytes: Bytes) {
        let latency = io.rng.range(self.cfg.fsync_ms.0, self.cfg.fsync_ms.1);
        let at = self.disk.append(zxid, bytes, io.now, latency);
        let top = self.durable_reports.entry((at, self.gen)).or_default();
        *top = (*top).max(zxid);
        io.schedule(
            at - io.now,
            Event::Synced {
                sid: self.sid,
                incarnation: self.disk.incarnation,
                gen: self.gen,
                zxid,
            },
        );
    }

    // ------------------------------------------------------------ learner

    pub fn link_up(&mut self, io: &mut Io, stream: StreamId) {
        let last_logged = self.disk.last_logged().max(self.tree.last_zxid());
        let (accepted, current) = (self.disk.accepted_epoch(), self.disk.current_epoch());
        let Role::Learning(l) = &mut self.role else {
            return;
        };
        let mut config = LearnerConfig::new(self.sid, l.role);
        config.timing = Timing {
            tick_ms: self.cfg.tick_ms,
            init_limit: self.cfg.init_limit,
            sync_limit: self.cfg.sync_limit,
        };
        config.observer_logs = self.cfg.observer_logs;
        let (learner, actions) = Learner::new(config, accepted, current, last_logged, io.now);
        l.learner = Some(learner);
        l.stream = Some(stream);
        self.learner_actions(io, actions);
    }

    pub fn packets_from_leader(
        &mut self,
        io: &mut Io,
        stream: StreamId,
        packets: Vec<QuorumPacket>,
    ) {
        let Role::Learning(l) = &mut self.role else {
            return;
        };
        if l.stream != Some(stream) {
            return;
        }
        let Some(learner) = l.learner.as_mut() else {
            return;
        };
        if self.cfg.earlier_zab == Some(self.sid)
            && packets
                .iter()
                .any(|p| p.r#type == PacketType::LeaderDurable as i32)
        {
            io.violation(format!(
                "{}: LEADER_DURABLE sent to a follower of an earlier zab",
                self.sid
            ));
        }
        let actions = learner.on_packets(io.now, packets);
        self.learner_actions(io, actions);
    }

    pub fn leader_gone(&mut self, io: &mut Io, stream: StreamId) {
        let Role::Learning(l) = &self.role else {
            return;
        };
        if l.stream != Some(stream) {
            return;
        }
        self.leave_role(io, "lost the leader: stream closed");
        self.look(io);
    }

    /// The learner's tree against the leader's digest: replicas that
    /// applied the same txns hold the same tree, Stat for Stat.
    fn digest_verdict(&self, io: &mut Io, verdict: Option<DigestVerdict>) {
        if let Some(DigestVerdict::Mismatch { zxid, ours, theirs }) = verdict {
            io.violation(format!(
                "{}: tree digest {ours} after {zxid}, the leader's {theirs}",
                self.sid
            ));
        }
    }

    fn learner_actions(&mut self, io: &mut Io, actions: Vec<LearnerAction>) {
        for a in actions {
            let Role::Learning(l) = &mut self.role else {
                return;
            };
            match a {
                LearnerAction::Send(mut p) => {
                    let accepted = l.learner.as_ref().and_then(|x| x.leader_epoch());
                    check_epochs_before(io, self.sid, &self.disk, &p, accepted);
                    if p.r#type == PacketType::Followerinfo as i32
                        && self.cfg.earlier_zab == Some(self.sid)
                    {
                        p.data = as_earlier_zab(&p.data);
                    }
                    if let Some(s) = l.stream {
                        io.stream_send(s, true, p);
                    }
                }
                LearnerAction::PersistAcceptedEpoch(e) => {
                    if let Err(err) = self.disk.set_accepted_epoch(e) {
                        io.violation(format!("{}: {err}", self.sid));
                    }
                }
                LearnerAction::PersistCurrentEpoch(e) => {
                    if let Err(err) = self.disk.set_current_epoch(e) {
                        io.violation(format!("{}: {err}", self.sid));
                    }
                }
                LearnerAction::TruncateLog { after } => {
                    io.log(format!("{} TRUNC after {after}", self.sid));
                    self.disk.truncate_after(after);
                    if let Err(e) = self.recover(io) {
                        io.violation(format!("{} TRUNC: {e}", self.sid));
                    } else if self.tree.last_zxid() > after {
                        // quorum.rs stops the process here.
                        io.violation(format!(
                            "{} cannot truncate to {after} below its snapshot at {}",
                            self.sid,
                            self.tree.last_zxid()
                        ));
                    } else if self.tree.last_zxid() < after {
                        if self.logs() {
                            // Its log held everything it had applied.
                            io.violation(format!(
                                "{} reloaded {} for a TRUNC to {after}",
                                self.sid,
                                self.tree.last_zxid()
                            ));
                        }
                        // quorum.rs: an observer that does not log had
                        // applied what its disk lacks; it syncs again from
                        // what the disk holds.
                        io.stats.trunc_resyncs += 1;
                        self.leave_role(io, "TRUNC below what the disk holds");
                        self.look(io);
                        return;
                    }
                }
                LearnerAction::InstallSnapshot { zxid, data } => {
                    let data = data.to_bytes();
                    io.log(format!("{} SNAP at {zxid}, {} bytes", self.sid, data.len()));
                    let Some(history) = io.snapshot_history(digest(&data)) else {
                        io.violation(format!("{} installs a snapshot no leader sent", self.sid));
                        continue;
                    };
                    match DataTree::restore(&mut &data[..]) {
                        Ok(tree) => {
                            self.tree = tree;
                            self.history = history.clone();
                            self.disk.snapshot = Some(Snapshot {
                                zxid,
                                bytes: data,
                                history,
                            });
                            self.disk.truncate_after(Zxid::ZERO);
                        }
                        Err(e) => io.violation(format!("{} SNAP restore: {e}", self.sid)),
                    }
                }
                LearnerAction::AppendLog(entries) => {
                    for (zxid, bytes) in entries {
                        self.append(io, zxid, bytes);
                    }
                }
                LearnerAction::Apply(txns) => {
                    let follower = l.role == LearnerRole::Follower;
                    for txn in txns {
                        // As quorum.rs: its observers first, then the tree.
                        if let Some(h) = self.hosted() {
                            let bytes = Bytes::from(txn.encode_to_vec());
                            let actions = h.master.on_committed(Zxid(txn.zxid), bytes);
                            self.observer_master_actions(io, actions);
                        }
                        self.apply(io, &txn);
                    }
                    if self.serving {
                        // A follower may commit before its leader does
                        // (LEADER_DURABLE); an observer never.
                        let checked = if follower {
                            io.check.follower_applied(self.sid, &self.history)
                        } else {
                            io.check.serving(self.sid, &self.history)
                        };
                        if let Err(e) = checked {
                            io.violation(e);
                        }
                    }
                    if let Role::Learning(l) = &mut self.role {
                        let verdict = l.digests.applied(&self.tree);
                        self.digest_verdict(io, verdict);
                    }
                }
                LearnerAction::LeaderDigest { zxid, digest } => {
                    let verdict = l.digests.reported(ZxidDigest { zxid, digest }, &self.tree);
                    self.digest_verdict(io, verdict);
                }
                LearnerAction::SyncDone { req } => {
                    let applied = self.history.last_zxid();
                    match io.check.sync_floors.remove(&req.cxid) {
                        Some(floor) if applied < floor => io.violation(format!(
                            "{} answered sync {} at {applied}, below the leader's {floor} when it took it",
                            self.sid, req.cxid
                        )),
                        Some(_) => io.stats.syncs_answered += 1,
                        None => io.violation(format!(
                            "{} answered sync {} that no leader took",
                            self.sid, req.cxid
                        )),
                    }
                }
                LearnerAction::RevalidateResult { .. } => {}
                LearnerAction::Unclaimed(p) => {
                    if let Some(h) = self.hosted() {
                        let actions = h.master.on_leader_reply(p);
                        self.observer_master_actions(io, actions);
                    }
                }
                LearnerAction::StartServing => {
                    let Some(learner) = l.learner.as_ref() else {
                        continue;
                    };
                    match learner.sync_mode() {
                        Some(SyncMode::Diff) => io.stats.diff += 1,
                        Some(SyncMode::Trunc) => io.stats.trunc += 1,
                        Some(SyncMode::Snap) => io.stats.snap += 1,
                        None => {}
                    }
                    if l.role == LearnerRole::Observer && !self.cfg.observer_logs {
                        io.stats.unlogged_observer_syncs += 1;
                    }
                    if l.to_master {
                        io.stats.observer_master_syncs += 1;
                    }
                    if l.role == LearnerRole::Follower && self.cfg.earlier_zab == Some(self.sid) {
                        io.stats.earlier_zab_syncs += 1;
                    }
                    io.log(format!(
                        "{} serving under {} after {:?}, at {}",
                        self.sid,
                        l.learn_from,
                        learner.sync_mode(),
                        self.tree.last_zxid()
                    ));
                    if let (Some(r), Some(e)) = (self.responder.as_mut(), learner.leader_epoch()) {
                        r.set_peer_epoch(e);
                    }
                    let epoch = learner.leader_epoch();
                    let follower = l.role == LearnerRole::Follower;
                    self.serving = true;
                    if let Err(e) = io.check.serving(self.sid, &self.history) {
                        io.violation(e);
                    }
                    if let (true, true, Some(epoch)) = (follower, self.cfg.observer_masters, epoch)
                    {
                        self.host_observers(io, epoch);
                    }
                }
                LearnerAction::GiveUp { reason } => {
                    self.leave_role(io, &reason.to_string());
                    self.look(io);
                    return;
                }
            }
        }
    }

    // ------------------------------------------------------------ shared

    /// An fsync group completed (`World` marked it durable on the disk).
    /// The first of its events reports the group's highest zxid to the
    /// core, once; the others find nothing left to report.
    pub fn synced(&mut self, io: &mut Io, gen: u64) {
        let Some(zxid) = self.durable_reports.remove(&(io.now, gen)) else {
            io.stats.coalesced_durable += 1;
            return;
        };
        self.disk.synced(zxid);
        if gen != self.gen {
            return;
        }
        match &mut self.role {
            Role::Leading(l) => {
                let actions = l.leader.on_local_durable(zxid);
                self.leader_actions(io, actions);
            }
            Role::Learning(l) => {
                let Some(learner) = l.learner.as_mut() else {
                    return;
                };
                let actions = learner.on_durable(io.now, zxid);
                self.learner_actions(io, actions);
            }
            _ => {}
        }
    }

    /// quorum.rs's `on_clock`.
    pub fn clock(&mut self, io: &mut Io) {
        let now = io.now;
        if let Role::Looking(e) = &mut self.role {
            // As quorum.rs: a link that dropped since the last notification
            // may leave nobody to wait for.
            let me = self.sid;
            let mut out = e.decide_if_all_reachable_agree(|s| io.may_still_vote(me, s));
            if out.is_empty() && e.next_deadline().is_some_and(|d| d <= now) {
                out = e.on_timer(now);
            }
            self.election_outputs(io, out);
            return;
        }
        if now.saturating_sub(self.last_tick_ms) < self.cfg.tick_ms / 2 {
            return;
        }
        self.last_tick_ms = now;
        match &mut self.role {
            Role::Leading(l) => {
                if let Some(d) = self.tree.digest_log().newest() {
                    l.leader.note_digest(d.zxid, d.digest);
                }
                let actions = l.leader.on_tick(now);
                self.leader_actions(io, actions);
            }
            Role::Learning(l) => {
                if let Some(learner) = l.learner.as_mut() {
                    let actions = learner.on_tick(now);
                    self.learner_actions(io, actions);
                }
                if let Some(h) = self.hosted() {
                    let actions = h.master.on_tick(now);
                    self.observer_master_actions(io, actions);
                }
            }
            _ => {}
        }
    }

    // ------------------------------------------------------------ observer master

    fn hosted(&mut self) -> Option<&mut Hosted> {
        match &mut self.role {
            Role::Learning(l) => l.observers.as_mut(),
            _ => None,
        }
    }

    /// quorum.rs's `host_observers`: a follower now in sync.
    fn host_observers(&mut self, io: &mut Io, epoch: Epoch) {
        // As hosted_observers.rs: the window is read once the appends of
        // the UPTODATE step are durable.
        self.disk.drain();
        let last = self.tree.last_zxid();
        let (lc, committed, snapshot_size) = self.learner_master_start();
        let master = ObserverMaster::new(
            lc,
            epoch,
            last,
            committed,
            Box::new(self.disk.view()),
            snapshot_size,
            io.now,
        );
        io.log(format!("{} hosts observers at {last}", self.sid));
        if let Role::Learning(l) = &mut self.role {
            l.observers = Some(Hosted {
                master,
                streams: Default::default(),
            });
        }
    }

    fn observer_master_actions(&mut self, io: &mut Io, actions: Vec<ObserverMasterAction>) {
        for a in actions {
            let Role::Learning(l) = &mut self.role else {
                return;
            };
            let Some(h) = l.observers.as_mut() else {
                return;
            };
            match a {
                ObserverMasterAction::Send { conn, packet } => {
                    if h.streams.contains(&conn.0) {
                        io.stream_send(conn.0, false, packet);
                    }
                }
                ObserverMasterAction::SendSnapshot { conn, zxid } => {
                    // The follower's tree holds exactly what it applied.
                    let open = h.streams.contains(&conn.0);
                    self.send_snapshot(io, conn.0, open, zxid, zxid);
                }
                ObserverMasterAction::ToLeader(p) => {
                    if let Some(learner) = l.learner.as_mut() {
                        let actions = learner.relay(p);
                        self.learner_actions(io, actions);
                    }
                }
                ObserverMasterAction::TouchSessions(sessions) => {
                    if let Some(learner) = l.learner.as_mut() {
                        for (session, timeout) in sessions {
                            learner.touch(session, timeout);
                        }
                    }
                }
                ObserverMasterAction::CloseObserver { conn, reason } => {
                    io.log(format!(
                        "{} drops observer conn {}: {reason}",
                        self.sid, conn.0
                    ));
                    h.streams.remove(&conn.0);
                    io.kill_stream(conn.0, 5);
                }
            }
        }
    }
}

/// FOLLOWERINFO's LearnerInfo as a follower of an earlier zab sends it:
/// without `accepts_leader_durable`.
fn as_earlier_zab(data: &Bytes) -> Bytes {
    let mut info =
        zab_wire::proto::LearnerInfo::decode(data.clone()).expect("our learner's LearnerInfo");
    info.accepts_leader_durable = false;
    Bytes::from(info.encode_to_vec())
}

/// ARCHITECTURE: acceptedEpoch and currentEpoch are durable before they
/// are acted on. Each core asks for the write before the packet that
/// reveals the epoch, so the packet must find it on the disk: LEADERINFO
/// and ACKEPOCH (for `accepted`, the learner's accepted leader epoch) the
/// accepted epoch; NEWLEADER and the learner's epoch ACK (counter 0) the
/// current one.
fn check_epochs_before(
    io: &mut Io,
    sid: ServerId,
    disk: &Disk,
    p: &QuorumPacket,
    accepted: Option<Epoch>,
) {
    let zxid = Zxid(p.zxid);
    let (needed, what, on_disk) = match PacketType::try_from(p.r#type) {
        Ok(PacketType::Leaderinfo) => (zxid.epoch(), "acceptedEpoch", disk.accepted_epoch()),
        Ok(PacketType::Ackepoch) => match accepted {
            Some(e) => (e, "acceptedEpoch", disk.accepted_epoch()),
            None => return,
        },
        Ok(PacketType::Newleader) => (zxid.epoch(), "currentEpoch", disk.current_epoch()),
        Ok(PacketType::Ack) if zxid.counter() == 0 && p.zxid > 0 => {
            (zxid.epoch(), "currentEpoch", disk.current_epoch())
        }
        _ => return,
    };
    if on_disk < needed {
        io.violation(format!(
            "{sid} sends {:?} for epoch {needed} with {what} {on_disk} on its disk",
            PacketType::try_from(p.r#type)
        ));
    }
}
