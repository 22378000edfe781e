//! The learner state machine: one [`Learner`] per connection to a leader,
//! from FOLLOWERINFO / OBSERVERINFO to giving up.
//!
//! It mirrors ZooKeeper's `Learner.registerWithLeader`,
//! `Learner.syncWithLeader`, `Follower.processPacket` and
//! `Observer.processPacket` (seeds 000 and 001, reference F.3–F.9), driven
//! by packets, durability reports and clock ticks instead of blocking reads.
//! It does no I/O: every effect is a [`LearnerAction`] for the caller.

use std::collections::VecDeque;

use bytes::Bytes;
use tracing::{debug, info, warn};
use zab_wire::proto::{
    AckEpoch, ForwardedRequest, Id, LearnerInfo, PacketType, QuorumPacket, Revalidate,
    SessionTouches, StateSummary, TreeDigest,
};
use zab_wire::{Epoch, ServerId, SessionId, Zxid};

use crate::action::gather_appends;
use crate::packet::{decode, decode_txn, encoded, packet, type_name, NO_ZXID, PROTOCOL_VERSION};
use crate::proposals::{HeldProposals, HeldTxn};
use crate::relay::ClientRelay;
use crate::{LearnerAction, LearnerError, Phase, Role, SnapshotChunks, SyncMode};

/// ZooKeeper's timing settings (`tickTime`, `initLimit`, `syncLimit`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    pub tick_ms: u64,
    /// Ticks the leader may stay silent before NEWLEADER is processed.
    pub init_limit: u32,
    /// Ticks the leader may stay silent after NEWLEADER.
    pub sync_limit: u32,
}

impl Default for Timing {
    /// The values of ZooKeeper's sample `zoo.cfg`.
    fn default() -> Self {
        Timing {
            tick_ms: 2000,
            init_limit: 10,
            sync_limit: 5,
        }
    }
}

/// Who this learner is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LearnerConfig {
    pub me: ServerId,
    pub role: Role,
    pub timing: Timing,
    /// The version of the membership this server knows, sent in LearnerInfo
    /// (a leader rejects a learner whose version exceeds its own, F.3 step 1).
    pub config_version: i64,
    /// zoo.cfg's `syncEnabled`: whether an observer logs the txns it
    /// applies. Without it an observer applies them and logs nothing, during
    /// sync as after (`ObserverZooKeeperServer.commitRequest` skips its sync
    /// processor). A follower logs regardless: its ACKs promise its log.
    pub observer_logs: bool,
}

impl LearnerConfig {
    pub fn new(me: ServerId, role: Role) -> Self {
        LearnerConfig {
            me,
            role,
            timing: Timing::default(),
            config_version: 0,
            observer_logs: true,
        }
    }

    /// Whether committed txns go to the log before they are applied.
    fn logs_txns(&self) -> bool {
        self.role == Role::Follower || self.observer_logs
    }
}

/// Fine-grained progress; [`Phase`] is its public summary.
#[derive(Debug)]
enum Stage {
    /// FOLLOWERINFO / OBSERVERINFO sent, waiting for LEADERINFO.
    Registering,
    /// ACKEPOCH sent, waiting for DIFF / TRUNC / SNAP.
    AwaitingSyncMode,
    /// SNAP received, collecting SNAP_CHUNKs up to SNAP_END.
    ReceivingSnapshot { zxid: Zxid, buf: SnapshotChunks },
    /// Sync mode known, receiving the sync txns, waiting for NEWLEADER.
    Syncing,
    /// NEWLEADER received; the synced txns are not all durable yet, so
    /// currentEpoch and the ACK wait (ZOOKEEPER-4646 / 4643).
    PersistingNewLeader { wait_for: Zxid },
    /// NEWLEADER acknowledged, waiting for UPTODATE.
    AwaitingUptodate,
    /// Serving: processing the broadcast.
    Broadcasting,
    /// Gave up on this leader.
    Stopped,
}

impl Stage {
    fn name(&self) -> &'static str {
        match self {
            Stage::Registering => "registering",
            Stage::AwaitingSyncMode => "waiting for DIFF/TRUNC/SNAP",
            Stage::ReceivingSnapshot { .. } => "receiving a snapshot",
            Stage::Syncing => "syncing before NEWLEADER",
            Stage::PersistingNewLeader { .. } => "persisting the NEWLEADER sync",
            Stage::AwaitingUptodate => "waiting for UPTODATE",
            Stage::Broadcasting => "broadcasting",
            Stage::Stopped => "stopped",
        }
    }
}

/// A follower or observer talking to one leader over one connection.
///
/// Feed it every packet from the leader ([`on_packet`](Self::on_packet)), the
/// log's durability reports ([`on_durable`](Self::on_durable)), clock ticks
/// ([`on_tick`](Self::on_tick)) and client-side events
/// ([`forward`](Self::forward), [`revalidate`](Self::revalidate),
/// [`touch`](Self::touch)); execute the returned actions in order.
///
/// Epoch persistence is **synchronous**: the caller makes
/// [`LearnerAction::PersistAcceptedEpoch`] / [`LearnerAction::PersistCurrentEpoch`]
/// durable before executing the next action, which is the `Send` that
/// relies on it. Log appends are asynchronous (group commit) and reported
/// back through `on_durable`.
#[derive(Debug)]
pub struct Learner {
    config: LearnerConfig,
    stage: Stage,
    accepted_epoch: Epoch,
    current_epoch: Epoch,
    /// The last zxid in the log when this connection started (ACKEPOCH).
    last_logged: Zxid,
    /// The epoch of LEADERINFO, once received.
    new_epoch: Option<Epoch>,
    sync_mode: Option<SyncMode>,
    /// Membership text carried by NEWLEADER (empty if none).
    membership: Bytes,
    /// The last proposal / inform queued, for order checks (ZooKeeper's
    /// `lastQueued`).
    last_queued: Zxid,
    /// Proposals received but not committed.
    proposals: HeldProposals,
    /// Txns committed during sync whose logging waits for NEWLEADER (or
    /// UPTODATE, after NEWLEADER; ZooKeeper's `packetsCommitted`).
    committed_unlogged: Vec<HeldTxn>,
    /// A SNAP's snapshot, reassembled and held until NEWLEADER installs it
    /// (zxid, stream).
    snapshot: Option<(Zxid, SnapshotChunks)>,
    /// The highest zxid this learner asked to append.
    last_appended: Option<Zxid>,
    /// The highest zxid the log reported durable.
    durable: Zxid,
    /// Appended proposals not ACKed yet (followers, after UPTODATE).
    unacked: VecDeque<Zxid>,
    /// The highest zxid the leader said its log holds durably
    /// (LEADER_DURABLE): with this follower, a quorum.
    leader_durable: Zxid,
    /// The highest proposal this follower committed on its own, from its
    /// durability and the leader's ([`Learner::commit_early`]); a COMMIT at
    /// or below it has nothing left to do.
    committed_early: Zxid,
    /// The epoch of a NEWLEADER this learner gave up on while its sync's
    /// txns were still becoming durable ([`Learner::epoch_due_after_drain`]).
    epoch_due: Option<Epoch>,
    last_heard_ms: u64,
    relay: ClientRelay,
}

impl Learner {
    /// Starts registering with a freshly connected leader: returns the
    /// learner and the FOLLOWERINFO / OBSERVERINFO to send (zxid =
    /// `acceptedEpoch << 32`, reference F.3 step 1).
    ///
    /// `accepted_epoch` and `current_epoch` are the persisted epochs,
    /// `last_logged` the last zxid in the txn log (or of the snapshot if
    /// the log is empty).
    pub fn new(
        config: LearnerConfig,
        accepted_epoch: Epoch,
        current_epoch: Epoch,
        last_logged: Zxid,
        now_ms: u64,
    ) -> (Learner, Vec<LearnerAction>) {
        let learner = Learner {
            config,
            stage: Stage::Registering,
            accepted_epoch,
            current_epoch,
            last_logged,
            new_epoch: None,
            sync_mode: None,
            membership: Bytes::new(),
            last_queued: last_logged,
            proposals: HeldProposals::default(),
            committed_unlogged: Vec::new(),
            snapshot: None,
            last_appended: None,
            durable: Zxid::ZERO,
            unacked: VecDeque::new(),
            leader_durable: Zxid::ZERO,
            committed_early: Zxid::ZERO,
            epoch_due: None,
            last_heard_ms: now_ms,
            relay: ClientRelay::default(),
        };
        let ty = match config.role {
            Role::Follower => PacketType::Followerinfo,
            Role::Observer => PacketType::Observerinfo,
        };
        let info = LearnerInfo {
            sid: config.me.0,
            protocol_version: PROTOCOL_VERSION,
            config_version: config.config_version,
            accepts_leader_durable: true,
        };
        let hello = packet(ty, Zxid::new(accepted_epoch, 0), encoded(&info));
        (learner, vec![LearnerAction::Send(hello)])
    }

    // ------------------------------------------------------------ inputs

    /// A packet from the leader, in stream order.
    pub fn on_packet(&mut self, now_ms: u64, p: QuorumPacket) -> Vec<LearnerAction> {
        if matches!(self.stage, Stage::Stopped) {
            return Vec::new();
        }
        self.last_heard_ms = now_ms;
        let mut out = Vec::new();
        if let Err(reason) = self.handle_packet(p, &mut out) {
            out.push(self.give_up(reason));
        }
        out
    }

    /// Packets from the leader, in order, as one batch off the wire: the
    /// same as [`Learner::on_packet`] for each, with the appends they ask
    /// for gathered (see `gather_appends`), so a batch of proposals is
    /// logged as one group.
    pub fn on_packets(
        &mut self,
        now_ms: u64,
        packets: impl IntoIterator<Item = QuorumPacket>,
    ) -> Vec<LearnerAction> {
        let mut out = Vec::new();
        for p in packets {
            out.extend(self.on_packet(now_ms, p));
        }
        gather_appends(out)
    }

    /// The log reports every txn up to `zxid` durable (one report may cover
    /// a group-committed batch). A follower that is broadcasting ACKs its
    /// proposals once durable; during sync it completes NEWLEADER.
    pub fn on_durable(&mut self, _now_ms: u64, zxid: Zxid) -> Vec<LearnerAction> {
        self.durable = self.durable.max(zxid);
        let mut out = Vec::new();
        match self.stage {
            Stage::PersistingNewLeader { wait_for } if self.durable >= wait_for => {
                self.ack_new_leader(&mut out);
            }
            Stage::Broadcasting => {
                self.ack_durable(&mut out);
                self.commit_early(&mut out);
            }
            _ => {}
        }
        out
    }

    /// Clock tick: gives up on a leader silent for too long — initLimit
    /// ticks until NEWLEADER is processed, syncLimit ticks after (ZooKeeper
    /// switches the socket timeout there, reference F.6).
    pub fn on_tick(&mut self, now_ms: u64) -> Vec<LearnerAction> {
        let t = self.config.timing;
        let ticks = match self.stage {
            Stage::Stopped => return Vec::new(),
            Stage::AwaitingUptodate | Stage::Broadcasting => t.sync_limit,
            _ => t.init_limit,
        };
        let limit_ms = t.tick_ms.saturating_mul(u64::from(ticks));
        let silent_ms = now_ms.saturating_sub(self.last_heard_ms);
        if silent_ms > limit_ms {
            vec![self.give_up(LearnerError::LeaderSilent {
                silent_ms,
                limit_ms,
            })]
        } else {
            Vec::new()
        }
    }

    /// Forwards a client request to the leader as REQUEST (writes,
    /// createSession, closeSession, sync; reference F.5) with the client's
    /// auth ids. A forwarded sync is answered by [`LearnerAction::SyncDone`];
    /// writes are answered by the `Apply` of their txn. Requests made before
    /// UPTODATE are sent right after it. After giving up this does nothing:
    /// the caller closes its client connections then.
    pub fn forward(&mut self, req: ForwardedRequest, auth: Vec<Id>) -> Vec<LearnerAction> {
        if matches!(self.stage, Stage::Stopped) {
            return Vec::new();
        }
        self.relay.note_forward(&req);
        let mut p = packet(PacketType::Request, NO_ZXID, encoded(&req));
        p.authinfo = auth;
        self.relay.send_or_hold(self.is_serving(), p)
    }

    /// Asks the leader whether a reconnecting client's session is still
    /// valid (and makes this server its owner, reference F.8); answered by
    /// [`LearnerAction::RevalidateResult`].
    pub fn revalidate(&mut self, session: SessionId, timeout_ms: i32) -> Vec<LearnerAction> {
        if matches!(self.stage, Stage::Stopped) {
            return Vec::new();
        }
        self.relay.note_revalidate(session);
        let body = Revalidate {
            session_id: session.0,
            timeout: timeout_ms,
        };
        let p = packet(PacketType::Revalidate, NO_ZXID, encoded(&body));
        self.relay.send_or_hold(self.is_serving(), p)
    }

    /// Sends a packet of an observer this follower hosts (its REQUEST or
    /// REVALIDATE, ZooKeeper's `ObserverMaster` relaying to the leader) on
    /// to the leader as it came. The leader's answers to it come back as
    /// [`LearnerAction::Unclaimed`].
    pub fn relay(&mut self, p: QuorumPacket) -> Vec<LearnerAction> {
        if matches!(self.stage, Stage::Stopped) {
            return Vec::new();
        }
        self.relay.send_or_hold(self.is_serving(), p)
    }

    /// Records client activity on a session; reported to the leader in the
    /// next PING reply so that it keeps the session alive (reference F.8).
    pub fn touch(&mut self, session: SessionId, timeout_ms: i32) {
        self.relay.touch(session, timeout_ms);
    }

    // ------------------------------------------------------------ status

    /// Between NEWLEADER and its ACK, while the sync's txns become
    /// durable: the one stretch in which this server's disk may hold data
    /// of a newer epoch than its currentEpoch (as ZooKeeper's between the
    /// snapshot it takes at NEWLEADER and `setCurrentEpoch`).
    pub fn persisting_new_leader(&self) -> bool {
        matches!(self.stage, Stage::PersistingNewLeader { .. })
    }

    /// The currentEpoch the caller must write once every append queued so
    /// far is durable, when this learner stops (or stopped) between
    /// NEWLEADER and its ACK: the sync's txns are queued for the log and
    /// will land whatever happens to the leader, so the epoch they belong
    /// to must follow them. Left unwritten, the disk would hold data of a
    /// newer epoch than currentEpoch, and the server could not start again.
    /// ZooKeeper 3.9 reaches the same state: its `syncWithLeader` commits
    /// the sync's txns and sets currentEpoch before the ACK that then fails
    /// on a dead link (ZOOKEEPER-4643).
    pub fn epoch_due_after_drain(&self) -> Option<Epoch> {
        match self.stage {
            Stage::PersistingNewLeader { .. } => self.new_epoch,
            _ => self.epoch_due,
        }
    }

    pub fn phase(&self) -> Phase {
        match self.stage {
            Stage::Registering => Phase::Registering,
            Stage::AwaitingSyncMode
            | Stage::ReceivingSnapshot { .. }
            | Stage::Syncing
            | Stage::PersistingNewLeader { .. }
            | Stage::AwaitingUptodate => Phase::Syncing,
            Stage::Broadcasting => Phase::Broadcasting,
            Stage::Stopped => Phase::Stopped,
        }
    }

    pub fn role(&self) -> Role {
        self.config.role
    }

    /// The leader's epoch, once LEADERINFO arrived.
    pub fn leader_epoch(&self) -> Option<Epoch> {
        self.new_epoch
    }

    pub fn accepted_epoch(&self) -> Epoch {
        self.accepted_epoch
    }

    pub fn current_epoch(&self) -> Epoch {
        self.current_epoch
    }

    pub fn sync_mode(&self) -> Option<SyncMode> {
        self.sync_mode
    }

    /// The membership text NEWLEADER carried (empty before or if none).
    pub fn membership(&self) -> &Bytes {
        &self.membership
    }

    /// Proposals held but not committed yet.
    pub fn uncommitted(&self) -> usize {
        self.proposals.len()
    }

    /// The last proposal or inform received.
    pub fn last_queued(&self) -> Zxid {
        self.last_queued
    }

    // ------------------------------------------------------------ packets

    fn handle_packet(
        &mut self,
        p: QuorumPacket,
        out: &mut Vec<LearnerAction>,
    ) -> Result<(), LearnerError> {
        let Ok(ty) = PacketType::try_from(p.r#type) else {
            // ZooKeeper: "Unknown packet type" is logged and skipped.
            warn!(ty = p.r#type, "ignoring a packet of unknown type");
            return Ok(());
        };
        match self.stage {
            Stage::Registering => self.on_registering(ty, &p, out),
            Stage::AwaitingSyncMode => self.on_sync_mode(ty, &p, out),
            Stage::ReceivingSnapshot { .. } => self.on_snapshot_part(ty, p),
            Stage::Syncing | Stage::PersistingNewLeader { .. } | Stage::AwaitingUptodate => {
                self.on_sync_packet(ty, &p, out)
            }
            Stage::Broadcasting => self.on_broadcast(ty, &p, out),
            Stage::Stopped => Ok(()),
        }
    }

    fn unexpected(&self, ty: PacketType) -> LearnerError {
        LearnerError::UnexpectedPacket {
            packet: ty.as_str_name(),
            stage: self.stage.name(),
        }
    }

    /// LEADERINFO: accept the new epoch (persisting it first) and answer
    /// ACKEPOCH (reference F.3 step 3; `Learner.registerWithLeader`).
    fn on_registering(
        &mut self,
        ty: PacketType,
        p: &QuorumPacket,
        out: &mut Vec<LearnerAction>,
    ) -> Result<(), LearnerError> {
        match ty {
            PacketType::Leaderinfo => {}
            PacketType::Ping => return Ok(()),
            _ => return Err(self.unexpected(ty)),
        }
        let proposed = Zxid(p.zxid).epoch();
        let already_accepted = match proposed.cmp(&self.accepted_epoch) {
            std::cmp::Ordering::Greater => {
                out.push(LearnerAction::PersistAcceptedEpoch(proposed));
                self.accepted_epoch = proposed;
                false
            }
            // Equal: we promised this epoch before (e.g. reconnecting to the
            // same leader); sync, but our ack must not count toward the
            // epoch quorum (ZooKeeper sends currentEpoch -1).
            std::cmp::Ordering::Equal => true,
            std::cmp::Ordering::Less => {
                return Err(LearnerError::EpochBelowAccepted {
                    proposed,
                    accepted: self.accepted_epoch,
                })
            }
        };
        info!(
            sid = %self.config.me,
            epoch = %proposed,
            zxid = %self.last_logged,
            already_accepted,
            "leader proposed a new epoch"
        );
        self.new_epoch = Some(proposed);
        let ack = AckEpoch {
            state: Some(StateSummary {
                current_epoch: self.current_epoch.0,
                last_zxid: self.last_logged.0,
            }),
            already_accepted,
        };
        out.push(LearnerAction::Send(packet(
            PacketType::Ackepoch,
            self.last_logged,
            encoded(&ack),
        )));
        self.stage = Stage::AwaitingSyncMode;
        Ok(())
    }

    /// DIFF / TRUNC / SNAP: how the leader brings us up to date (F.4).
    fn on_sync_mode(
        &mut self,
        ty: PacketType,
        p: &QuorumPacket,
        out: &mut Vec<LearnerAction>,
    ) -> Result<(), LearnerError> {
        let zxid = Zxid(p.zxid);
        match ty {
            // DIFF keeps our state: the txns that follow are collected and
            // logged at NEWLEADER.
            PacketType::Diff => {
                self.sync_mode = Some(SyncMode::Diff);
                self.stage = Stage::Syncing;
            }
            PacketType::Trunc => {
                out.push(LearnerAction::TruncateLog { after: zxid });
                self.last_queued = zxid;
                self.sync_mode = Some(SyncMode::Trunc);
                self.stage = Stage::Syncing;
            }
            PacketType::Snap => {
                self.stage = Stage::ReceivingSnapshot {
                    zxid,
                    buf: SnapshotChunks::default(),
                };
            }
            PacketType::Ping => return Ok(()),
            _ => return Err(self.unexpected(ty)),
        }
        info!(sid = %self.config.me, zxid = %zxid, mode = ty.as_str_name(), "sync with leader");
        Ok(())
    }

    /// SNAP_CHUNK* SNAP_END: reassemble the snapshot stream; nothing else
    /// may come in between (ZooKeeper reads it raw off the socket).
    fn on_snapshot_part(&mut self, ty: PacketType, p: QuorumPacket) -> Result<(), LearnerError> {
        match ty {
            PacketType::SnapChunk => {
                if let Stage::ReceivingSnapshot { buf, .. } = &mut self.stage {
                    buf.push(p.data);
                }
                Ok(())
            }
            // Held until NEWLEADER, as ZooKeeper's `syncWithLeader` keeps
            // the snapshot in memory and takes its own at NEWLEADER: a
            // server stopped before then keeps its old, consistent state
            // (installed now, its data would run ahead of its currentEpoch
            // and it could not start again).
            PacketType::SnapEnd => {
                let stage = std::mem::replace(&mut self.stage, Stage::Syncing);
                if let Stage::ReceivingSnapshot { zxid, buf } = stage {
                    self.snapshot = Some((zxid, buf));
                    self.last_queued = zxid;
                }
                self.sync_mode = Some(SyncMode::Snap);
                Ok(())
            }
            PacketType::Ping => Ok(()),
            _ => Err(self.unexpected(ty)),
        }
    }

    /// Packets between the sync mode and UPTODATE (`syncWithLeader`'s loop).
    fn on_sync_packet(
        &mut self,
        ty: PacketType,
        p: &QuorumPacket,
        out: &mut Vec<LearnerAction>,
    ) -> Result<(), LearnerError> {
        match ty {
            PacketType::Proposal => {
                self.enforce_continuous(Zxid(p.zxid))?;
                let held = self.queue_txn(p)?;
                self.proposals.push(held);
            }
            PacketType::Commit => {
                let committed = self.proposals.commit_through(Zxid(p.zxid))?;
                self.committed_unlogged.extend(committed);
            }
            // An already committed txn (observers; ZooKeeper accepts it
            // from any learner during sync).
            PacketType::Inform => {
                let held = self.queue_txn(p)?;
                self.committed_unlogged.push(held);
            }
            PacketType::Newleader => self.on_new_leader(p, out)?,
            PacketType::Uptodate => self.on_uptodate(out)?,
            // ZooKeeper ignores pings during sync; hearing one still counts
            // as hearing from the leader.
            PacketType::Ping => {}
            // Kept for when this follower serves (proposals made after
            // NEWLEADER reach it during sync).
            PacketType::LeaderDurable => self.note_leader_durable(p),
            PacketType::Sync | PacketType::Revalidate => self.on_relay_reply(ty, p, out),
            _ => warn!(packet = ty.as_str_name(), "ignoring packet during sync"),
        }
        Ok(())
    }

    /// NEWLEADER: install a SNAP's snapshot, log and apply the txns
    /// committed during the sync, then — once they are durable — persist
    /// currentEpoch and ACK (reference F.4, F.7; ZOOKEEPER-3911 / 4643 /
    /// 4646 fixed exactly this order). Nothing of the sync reaches the disk
    /// before NEWLEADER but a TRUNC's truncation, as in ZooKeeper: txns
    /// committed during the sync may be of the new epoch, and logged before
    /// currentEpoch is, a server stopped in between could not start again.
    fn on_new_leader(
        &mut self,
        p: &QuorumPacket,
        out: &mut Vec<LearnerAction>,
    ) -> Result<(), LearnerError> {
        if !matches!(self.stage, Stage::Syncing) {
            return Err(self.unexpected(PacketType::Newleader));
        }
        let got = Zxid(p.zxid).epoch();
        let expected = self.new_epoch.unwrap_or_default();
        if got != expected {
            return Err(LearnerError::NewLeaderEpochMismatch { got, expected });
        }
        self.membership = p.data.clone();
        if let Some((zxid, data)) = self.snapshot.take() {
            out.push(LearnerAction::InstallSnapshot { zxid, data });
        }
        let txns = std::mem::take(&mut self.committed_unlogged);
        self.log_and_apply(txns, out);
        match self.last_appended {
            Some(wait_for) if self.durable < wait_for => {
                debug!(zxid = %wait_for, "NEWLEADER waits for the synced txns to be durable");
                self.stage = Stage::PersistingNewLeader { wait_for };
            }
            _ => self.ack_new_leader(out),
        }
        Ok(())
    }

    fn ack_new_leader(&mut self, out: &mut Vec<LearnerAction>) {
        let epoch = self.new_epoch.unwrap_or_default();
        out.push(LearnerAction::PersistCurrentEpoch(epoch));
        self.current_epoch = epoch;
        out.push(LearnerAction::Send(packet(
            PacketType::Ack,
            Zxid::new(epoch, 0),
            Bytes::new(),
        )));
        self.stage = Stage::AwaitingUptodate;
    }

    /// UPTODATE: ACK, log what arrived since NEWLEADER, apply what of it is
    /// committed, start serving (end of `syncWithLeader`).
    fn on_uptodate(&mut self, out: &mut Vec<LearnerAction>) -> Result<(), LearnerError> {
        if !matches!(self.stage, Stage::AwaitingUptodate) {
            return Err(self.unexpected(PacketType::Uptodate));
        }
        let epoch = self.new_epoch.unwrap_or_default();
        // The leader ignores counter-0 ACKs once NEWLEADER has its quorum.
        out.push(LearnerAction::Send(packet(
            PacketType::Ack,
            Zxid::new(epoch, 0),
            Bytes::new(),
        )));
        let committed = std::mem::take(&mut self.committed_unlogged);
        match self.config.role {
            Role::Follower => {
                // Committed and uncommitted alike go to the log, in zxid
                // order (commits only ever take a prefix of the proposals),
                // and are ACKed when durable, as `fzk.logRequest` does.
                let uncommitted = self.proposals.take_all();
                let entries: Vec<(Zxid, Bytes)> = committed
                    .iter()
                    .chain(&uncommitted)
                    .map(|h| (h.zxid, h.raw.clone()))
                    .collect();
                if let Some(&(last, _)) = entries.last() {
                    self.unacked.extend(entries.iter().map(|e| e.0));
                    self.last_appended = Some(last);
                    out.push(LearnerAction::AppendLog(entries));
                }
                if !committed.is_empty() {
                    out.push(LearnerAction::Apply(
                        committed.into_iter().map(|h| h.txn).collect(),
                    ));
                }
                for h in uncommitted {
                    self.proposals.push(h);
                }
            }
            Role::Observer => {
                // Observers never see the commit of an outstanding proposal
                // (they get INFORM instead), so an uncommitted one is
                // dropped, as ZooKeeper's observer does with a warning.
                for h in self.proposals.take_all() {
                    warn!(zxid = %h.zxid, "observer dropping an uncommitted sync proposal");
                }
                self.log_and_apply(committed, out);
            }
        }
        out.push(LearnerAction::StartServing);
        self.stage = Stage::Broadcasting;
        out.extend(self.relay.release_held_back());
        info!(sid = %self.config.me, epoch = %epoch, "up to date with the leader");
        // Anything made durable before UPTODATE that still needs an ACK.
        self.ack_durable(out);
        self.commit_early(out);
        Ok(())
    }

    /// Broadcast (`Follower.processPacket` / `Observer.processPacket`).
    fn on_broadcast(
        &mut self,
        ty: PacketType,
        p: &QuorumPacket,
        out: &mut Vec<LearnerAction>,
    ) -> Result<(), LearnerError> {
        let role = self.config.role;
        match (ty, role) {
            (PacketType::Proposal, Role::Follower) => {
                let held = self.queue_txn(p)?;
                let zxid = held.zxid;
                out.push(LearnerAction::AppendLog(vec![(zxid, held.raw.clone())]));
                self.last_appended = Some(zxid);
                self.unacked.push_back(zxid);
                self.proposals.push(held);
            }
            (PacketType::Commit, Role::Follower) => {
                let zxid = Zxid(p.zxid);
                if zxid <= self.committed_early {
                    return Ok(()); // committed here already
                }
                let committed = self.proposals.commit_through(zxid)?;
                out.push(LearnerAction::Apply(
                    committed.into_iter().map(|h| h.txn).collect(),
                ));
            }
            (PacketType::LeaderDurable, Role::Follower) => {
                self.note_leader_durable(p);
                self.commit_early(out);
            }
            (PacketType::Inform, Role::Observer) => {
                let held = self.queue_txn(p)?;
                self.log_and_apply(vec![held], out);
            }
            (PacketType::Ping, _) => {
                // A leader's PING may carry its tree's digest (zab's own;
                // ZooKeeper's PING is empty). Malformed, it is ignored:
                // the PING still answers.
                if !p.data.is_empty() {
                    match decode::<TreeDigest>(p) {
                        Ok(d) => out.push(LearnerAction::LeaderDigest {
                            zxid: Zxid(d.zxid),
                            digest: d.digest,
                        }),
                        Err(e) => warn!(error = %e, "ignoring a PING's malformed digest"),
                    }
                }
                let touches = SessionTouches {
                    sessions: self.relay.take_touches(),
                };
                out.push(LearnerAction::Send(packet(
                    PacketType::Ping,
                    Zxid(p.zxid),
                    encoded(&touches),
                )));
            }
            (PacketType::Sync | PacketType::Revalidate, _) => self.on_relay_reply(ty, p, out),
            (PacketType::Uptodate, _) => {
                // ZooKeeper: "Received an UPTODATE message after Follower started".
                warn!("ignoring UPTODATE while broadcasting");
            }
            _ => warn!(
                packet = type_name(p.r#type),
                role = ?role,
                "ignoring packet while broadcasting"
            ),
        }
        Ok(())
    }

    /// SYNC and REVALIDATE answers from the leader.
    fn on_relay_reply(&mut self, ty: PacketType, p: &QuorumPacket, out: &mut Vec<LearnerAction>) {
        let action = if ty == PacketType::Sync {
            // An empty payload is accepted: the link is FIFO (ZooKeeper's
            // SYNC carries nothing).
            self.relay
                .on_sync(decode(p).ok().filter(|_| !p.data.is_empty()), p.clone())
        } else {
            match decode(p) {
                Ok(reply) => self.relay.on_revalidate_reply(reply, p.clone()),
                Err(e) => {
                    warn!(error = %e, "ignoring an undecodable REVALIDATE reply");
                    None
                }
            }
        };
        out.extend(action);
    }

    // ------------------------------------------------------------ helpers

    fn is_serving(&self) -> bool {
        matches!(self.stage, Stage::Broadcasting)
    }

    /// A proposal of the sync must follow the last queued txn, or start a
    /// later epoch: a hole within an epoch would leave this learner serving
    /// without a txn, so it gives up and syncs again instead (ZooKeeper's
    /// `Learner.enforceContinuousProposal`: "DIFF sync got proposal …").
    /// In broadcast a gap only warns, as in ZooKeeper (`queue_txn`).
    fn enforce_continuous(&self, zxid: Zxid) -> Result<(), LearnerError> {
        let last = self.last_queued;
        if zxid > last && zxid != last.next() && zxid.epoch() <= last.epoch() {
            return Err(LearnerError::SyncGap {
                zxid,
                expected: last.next(),
            });
        }
        Ok(())
    }

    /// Decodes a PROPOSAL / INFORM and checks its place in the order.
    /// A gap only warns (ZooKeeper's "Got zxid 0x.. expected 0x.."); going
    /// backwards is refused, because the log takes only increasing zxids.
    fn queue_txn(&mut self, p: &QuorumPacket) -> Result<HeldTxn, LearnerError> {
        let held = decode_txn(p)?;
        let zxid = held.zxid;
        let last = self.last_queued;
        if zxid <= last {
            return Err(LearnerError::TxnNotIncreasing {
                zxid,
                last_queued: last,
            });
        }
        let first_of_new_epoch = zxid.epoch() > last.epoch() && zxid.counter() == 1;
        if zxid != last.next() && !first_of_new_epoch {
            warn!(zxid = %zxid, expected = %last.next(), "txn does not follow the last queued one");
        }
        self.last_queued = zxid;
        Ok(held)
    }

    /// Logs committed txns (unless this observer does not log) and
    /// applies them.
    fn log_and_apply(&mut self, txns: Vec<HeldTxn>, out: &mut Vec<LearnerAction>) {
        let Some(last) = txns.last().map(|h| h.zxid) else {
            return;
        };
        if self.config.logs_txns() {
            out.push(LearnerAction::AppendLog(
                txns.iter().map(|h| (h.zxid, h.raw.clone())).collect(),
            ));
            self.last_appended = Some(last);
        }
        out.push(LearnerAction::Apply(
            txns.into_iter().map(|h| h.txn).collect(),
        ));
    }

    /// LEADER_DURABLE: the leader's log holds its proposals up to the
    /// packet's zxid. Only this leader's epoch counts.
    fn note_leader_durable(&mut self, p: &QuorumPacket) {
        let zxid = Zxid(p.zxid);
        if Some(zxid.epoch()) == self.new_epoch {
            self.leader_durable = self.leader_durable.max(zxid);
        } else {
            warn!(zxid = %zxid, epoch = ?self.new_epoch, "ignoring LEADER_DURABLE of another epoch");
        }
    }

    /// Commits the proposals this follower and the leader both hold
    /// durably, without waiting for the COMMIT (zab's own, not
    /// ZooKeeper's). The leader sends LEADER_DURABLE only to a follower
    /// that forms a quorum with it, so a proposal durable on both is
    /// durable on a quorum: ZAB's commit condition, which the leader checks
    /// with the ACKs it receives and the follower here with what it knows.
    /// Every later leader is elected by a quorum that meets this one, and so
    /// holds the proposal (the same argument as for the leader's commits);
    /// the same leader, when this follower reconnects before its ACKs
    /// arrive, keeps what it may have committed (`Leader::sync_learner`).
    /// It saves the ACK's way to the leader and the COMMIT's way back.
    fn commit_early(&mut self, out: &mut Vec<LearnerAction>) {
        if self.config.role != Role::Follower || !self.is_serving() {
            return;
        }
        let through = self.durable.min(self.leader_durable);
        let committed = self.proposals.commit_up_to(through);
        if let Some(last) = committed.last() {
            self.committed_early = last.zxid;
            out.push(LearnerAction::Apply(
                committed.into_iter().map(|h| h.txn).collect(),
            ));
        }
    }

    /// One ACK for the highest durable proposal still unacked: the leader
    /// treats ACK(z) as acking every outstanding proposal ≤ z (shared
    /// protocol), so a group-committed batch costs one packet.
    fn ack_durable(&mut self, out: &mut Vec<LearnerAction>) {
        if self.config.role != Role::Follower {
            return;
        }
        let mut highest = None;
        while let Some(&z) = self.unacked.front() {
            if z > self.durable {
                break;
            }
            highest = Some(z);
            self.unacked.pop_front();
        }
        if let Some(z) = highest {
            out.push(LearnerAction::Send(packet(
                PacketType::Ack,
                z,
                Bytes::new(),
            )));
        }
    }

    fn give_up(&mut self, reason: LearnerError) -> LearnerAction {
        warn!(
            sid = %self.config.me,
            epoch = ?self.new_epoch,
            zxid = %self.last_queued,
            stage = self.stage.name(),
            %reason,
            "giving up on the leader"
        );
        if let Stage::PersistingNewLeader { .. } = self.stage {
            self.epoch_due = self.new_epoch;
        }
        self.stage = Stage::Stopped;
        self.proposals.take_all();
        self.committed_unlogged.clear();
        self.snapshot = None;
        self.unacked.clear();
        LearnerAction::GiveUp { reason }
    }
}

#[cfg(test)]
#[path = "learner_tests.rs"]
mod tests;
