//! The leader as one deterministic state machine.
//!
//! [`Leader`] owns a leadership attempt from election to step-down
//! (reference F.3–F.9, ZooKeeper's `Leader.lead`): the epoch agreement, one
//! [`LearnerHandler`] per connection, the proposal pipeline, the committed
//! log window used for DIFF, pings and the quorum check. The server drives
//! it with inputs — learner packets, its own proposals, durable and applied
//! notifications, ticks — and executes the [`LeaderAction`]s it returns.
//!
//! # Contract with the caller
//!
//! * Execute the actions of one call **in order**. `PersistAcceptedEpoch`
//!   and `PersistCurrentEpoch` must be durable before the next action runs
//!   (they precede the packets that reveal them, reference F.7).
//! * `Send`s to one connection go out in order on that stream; everything
//!   one call returns for a connection may travel as one `QuorumBatch`.
//! * `SendSnapshot` is streamed in its place in the connection's order as
//!   SNAP_CHUNKs then SNAP_END (see [`crate::SnapChunks`]), from the tree as
//!   it is when the action runs: it must reflect exactly the txns reported
//!   through [`Leader::on_applied`] (`applied_through`). With the copy-on-write
//!   tree, taking it is O(1) and serializing it happens on the connection's
//!   writer, so the leader's writes do not stall.
//! * Commits are applied in the order given; after applying, call
//!   [`Leader::on_applied`] with the zxid, before feeding any other input
//!   that might sync a learner.
//! * The caller appends each txn it proposes to its own log and reports
//!   durability with [`Leader::on_local_durable`] (the leader's own ack).
//! * Call [`Leader::on_tick`] every `tickTime / 2` (ZooKeeper's leader loop
//!   wakes twice a tick). The core has no clock: every other input is
//!   stamped with the time of the latest tick, as ZooKeeper measures learner
//!   deadlines in ticks.
//! * After `StepDown`, every input is ignored: the caller closes all learner
//!   and client connections and goes back to LOOKING.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use prost::Message;
use zab_wire::proto::{self, PacketType, QuorumPacket};
use zab_wire::{Epoch, QuorumVerifier, ServerId, SessionId, Zxid};

use crate::broadcast::{BroadcastError, Committed, Proposals};
use crate::discovery::{AckDecision, EpochAgreement, EpochDecision, StateSummary};
use crate::learner_handler::{
    packet, ConnId, FromLearner, HandlerState, Handlers, LearnerHandler, LearnerKind, Limits,
    Outbound, ProtocolError,
};
use crate::sync_mode::{self, CommittedLog, TxnLogView, DEFAULT_SNAPSHOT_SIZE_FACTOR};

/// Static settings of a leadership attempt (from zoo.cfg).
#[derive(Clone, Debug)]
pub struct LeaderConfig {
    pub me: ServerId,
    pub verifier: QuorumVerifier,
    /// The membership's version; a learner with a later one is refused.
    pub config_version: i64,
    pub tick_ms: u64,
    pub init_limit: u32,
    pub sync_limit: u32,
    /// Sent with NEWLEADER (may be empty).
    pub membership: Bytes,
    /// `zookeeper.snapshotSizeFactor`; negative disables txn-log sync.
    pub snapshot_size_factor: f64,
    /// ZooKeeper's test-only `forceSnapSync`.
    pub force_snap_sync: bool,
}

impl LeaderConfig {
    pub fn new(
        me: ServerId,
        verifier: QuorumVerifier,
        tick_ms: u64,
        init_limit: u32,
        sync_limit: u32,
    ) -> Self {
        LeaderConfig {
            me,
            verifier,
            config_version: 0,
            tick_ms,
            init_limit,
            sync_limit,
            membership: Bytes::new(),
            snapshot_size_factor: DEFAULT_SNAPSHOT_SIZE_FACTOR,
            force_snap_sync: false,
        }
    }

    pub(crate) fn limits(&self) -> Limits {
        Limits {
            init_ms: self.tick_ms.saturating_mul(self.init_limit as u64),
            sync_ms: self.tick_ms.saturating_mul(self.sync_limit as u64),
        }
    }
}

/// What the leader's own store holds when it starts leading (after loading
/// its database: the whole txn log replayed, reference F.3).
pub struct LeaderStart {
    pub accepted_epoch: Epoch,
    pub current_epoch: Epoch,
    /// The last txn applied to the tree.
    pub last_processed: Zxid,
    /// The newest committed proposals (ZooKeeper's committedLog).
    pub committed: CommittedLog,
    /// The on-disk txn log for syncing learners behind the window.
    pub txn_log: Box<dyn TxnLogView + Send>,
    /// Bytes of the newest snapshot (rule 5 (b)); see
    /// [`Leader::set_snapshot_size`].
    pub snapshot_size: u64,
}

/// A forwarded sync waiting for its answer.
#[derive(Clone, Debug, PartialEq)]
pub struct PendingSync {
    pub conn: ConnId,
    pub request: proto::ForwardedRequest,
}

/// What the server must do, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum LeaderAction {
    /// Put `packet` on the learner's stream.
    Send { conn: ConnId, packet: QuorumPacket },
    /// Stream the snapshot (SNAP_CHUNK*, SNAP_END) here in the stream.
    /// `zxid` is the SNAP packet's; the snapshot must reflect exactly the
    /// txns applied through `applied_through`.
    SendSnapshot {
        conn: ConnId,
        zxid: Zxid,
        applied_through: Zxid,
    },
    /// Durably record acceptedEpoch before going on.
    PersistAcceptedEpoch(Epoch),
    /// Durably record currentEpoch before going on.
    PersistCurrentEpoch(Epoch),
    /// A quorum acked NEWLEADER: start serving clients and proposing.
    Established { epoch: Epoch },
    /// The txn committed: apply it locally and answer its client, then
    /// call [`Leader::on_applied`].
    Commit { zxid: Zxid },
    /// A learner forwarded a client request: prepare it in the session's
    /// order and [`Leader::propose`] the txn; for a sync (op 9), call
    /// [`Leader::sync_request`] when the pipeline reaches it.
    ForwardedRequest {
        conn: ConnId,
        from: ServerId,
        request: proto::ForwardedRequest,
        auth: Vec<proto::Id>,
    },
    /// A learner asks whether a session is still valid: touch it, make
    /// that learner its owner, answer with [`Leader::revalidate_reply`].
    Revalidate {
        conn: ConnId,
        from: ServerId,
        session_id: SessionId,
        timeout: i32,
    },
    /// Sessions a learner's clients touched since its last ping.
    TouchSessions {
        from: ServerId,
        sessions: Vec<(SessionId, i32)>,
    },
    /// Close this learner's connection (the handler is already gone).
    CloseLearner { conn: ConnId, reason: String },
    /// Stop leading (reference F.6): close everything, go LOOKING.
    StepDown { reason: String },
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LeaderError {
    #[error("not established yet: no quorum has acked NEWLEADER")]
    NotEstablished,
    #[error("this leader has stepped down")]
    SteppedDown,
    #[error("txn {zxid} is not of this leader's epoch {epoch}")]
    WrongEpoch { zxid: Zxid, epoch: Epoch },
    #[error(transparent)]
    Broadcast(#[from] BroadcastError),
}

/// Where the leadership attempt stands. Every waiting phase is bounded by
/// initLimit from its start (ZooKeeper's blocking waits in `lead()`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for a quorum of voters to report their acceptedEpoch.
    EpochProposal {
        since_ms: u64,
    },
    /// Epoch fixed; waiting for a quorum of ACKEPOCH.
    EpochAck {
        since_ms: u64,
    },
    /// Syncing; waiting for a quorum of NEWLEADER acks.
    NewLeaderAck {
        since_ms: u64,
    },
    /// Established: serving and proposing.
    Broadcast,
    SteppedDown,
}

/// A learner as reported for monitoring (`mntr`, logs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LearnerStatus {
    pub conn: ConnId,
    pub sid: Option<ServerId>,
    pub kind: Option<LearnerKind>,
    pub state: HandlerState,
    pub sync_mode: Option<PacketType>,
    pub in_flight: usize,
}

impl LearnerStatus {
    pub(crate) fn of(h: &LearnerHandler) -> LearnerStatus {
        LearnerStatus {
            conn: h.conn(),
            sid: h.sid(),
            kind: h.kind(),
            state: h.state(),
            sync_mode: h.sync_mode(),
            in_flight: h.in_flight(),
        }
    }
}

/// The leader state machine; see the module docs for the contract.
pub struct Leader {
    cfg: LeaderConfig,
    phase: Phase,
    agreement: EpochAgreement,
    epoch: Option<Epoch>,
    handlers: Handlers,
    proposals: Proposals<PendingSync>,
    /// The highest LEADER_DURABLE sent to each follower, over all its
    /// connections: it may have committed this leader's proposals up to
    /// there on its own (see [`Leader::sync_learner`]).
    told_durable: BTreeMap<ServerId, Zxid>,
    newleader_acks: BTreeSet<ServerId>,
    committed: CommittedLog,
    txn_log: Box<dyn TxnLogView + Send>,
    snapshot_size: u64,
    /// ZooKeeper's lastProcessedZxid: the last applied txn, or `epoch << 32`
    /// once established with nothing applied since.
    last_processed: Zxid,
    /// The last txn actually applied to the tree.
    last_applied: Zxid,
    now_ms: u64,
    /// The quorum check runs every other tick call (once per tickTime).
    tick_skip: bool,
    /// The tree's digest after a recent zxid, which PINGs carry.
    digest: Option<proto::TreeDigest>,
}

impl Leader {
    /// Starts leading: the leader reports its own acceptedEpoch, which
    /// fixes the epoch at once when it alone is a quorum.
    pub fn start(
        cfg: LeaderConfig,
        start: LeaderStart,
        now_ms: u64,
    ) -> (Leader, Vec<LeaderAction>) {
        let summary = StateSummary {
            current_epoch: start.current_epoch,
            last_zxid: start.last_processed,
        };
        let agreement = EpochAgreement::new(cfg.me, cfg.verifier.clone(), summary);
        let proposals = Proposals::new(cfg.verifier.clone(), start.last_processed);
        let mut leader = Leader {
            phase: Phase::EpochProposal { since_ms: now_ms },
            agreement,
            epoch: None,
            handlers: Handlers::default(),
            proposals,
            told_durable: BTreeMap::new(),
            newleader_acks: BTreeSet::new(),
            committed: start.committed,
            txn_log: start.txn_log,
            snapshot_size: start.snapshot_size,
            last_processed: start.last_processed,
            last_applied: start.last_processed,
            now_ms,
            tick_skip: true,
            digest: None,
            cfg,
        };
        let mut out = Vec::new();
        let me = leader.cfg.me;
        let decision = leader.agreement.on_epoch(me, start.accepted_epoch);
        if let EpochDecision::JustFixed(epoch) = decision {
            leader.epoch_fixed(epoch, &mut out);
        }
        tracing::info!(sid = %me, accepted = %start.accepted_epoch, last = %start.last_processed, "leading");
        (leader, out)
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The new epoch, once fixed.
    pub fn epoch(&self) -> Option<Epoch> {
        self.epoch
    }

    /// No quorum of voters has registered yet: LEADERINFO has gone to
    /// nobody (ZooKeeper's leader blocked in `getEpochToPropose`), so the
    /// election's promise of a quorum is all this leader has.
    pub fn is_gathering_quorum(&self) -> bool {
        matches!(self.phase, Phase::EpochProposal { .. })
    }

    pub fn is_established(&self) -> bool {
        self.phase == Phase::Broadcast
    }

    pub fn last_proposed(&self) -> Zxid {
        self.proposals.last_proposed()
    }

    pub fn last_committed(&self) -> Zxid {
        self.proposals.last_committed()
    }

    pub fn last_processed(&self) -> Zxid {
        self.last_processed
    }

    pub fn outstanding(&self) -> usize {
        self.proposals.outstanding_len()
    }

    /// `mntr`'s `zk_pending_syncs`: proposals with syncs waiting on them.
    pub fn pending_syncs(&self) -> usize {
        self.proposals.pending_syncs()
    }

    pub fn learners(&self) -> Vec<LearnerStatus> {
        self.handlers.values().map(LearnerStatus::of).collect()
    }

    /// A new snapshot was saved: rule 5 (b) compares against its size.
    pub fn set_snapshot_size(&mut self, bytes: u64) {
        self.snapshot_size = bytes;
    }

    fn stopped(&self) -> bool {
        self.phase == Phase::SteppedDown
    }

    // ------------------------------------------------------------ inputs

    /// A learner opened a stream.
    pub fn on_learner_connected(&mut self, conn: ConnId) -> Vec<LeaderAction> {
        if self.stopped() {
            return vec![LeaderAction::CloseLearner {
                conn,
                reason: "leader stepped down".into(),
            }];
        }
        self.handlers.open(conn, self.now_ms, self.cfg.limits());
        Vec::new()
    }

    /// The snapshot of a SNAP sync to `conn` has been written to its link
    /// (the caller streams it; see [`LearnerHandler::snapshot_sent`]). On
    /// the core's clock, as of the last tick, as every input without one.
    pub fn on_snapshot_sent(&mut self, conn: ConnId) {
        if let Some(h) = self.handlers.get_mut(&conn) {
            h.snapshot_sent(self.now_ms);
        }
    }

    /// A learner's stream ended. Its acks no longer count (see
    /// [`Proposals::forget`]).
    pub fn on_learner_disconnected(&mut self, conn: ConnId) -> Vec<LeaderAction> {
        self.remove(conn);
        Vec::new()
    }

    fn remove(&mut self, conn: ConnId) -> Option<LearnerHandler> {
        let (h, current) = self.handlers.remove(conn)?;
        if let Some(sid) = current {
            self.proposals.forget(sid);
        }
        Some(h)
    }

    fn close(&mut self, conn: ConnId, reason: String, out: &mut Vec<LeaderAction>) {
        if self.remove(conn).is_some() {
            tracing::warn!(%conn, %reason, "closing learner");
            out.push(LeaderAction::CloseLearner { conn, reason });
        }
    }

    /// One packet from a learner, in stream order.
    pub fn on_packet(&mut self, conn: ConnId, pkt: QuorumPacket) -> Vec<LeaderAction> {
        let mut out = Vec::new();
        if self.stopped() {
            return out;
        }
        let (now, limits) = (self.now_ms, self.cfg.limits());
        let Some(h) = self.handlers.get_mut(&conn) else {
            return out;
        };
        h.heard(now, limits);
        let result = match h.state() {
            HandlerState::AwaitingInfo => self.on_info(conn, &pkt, &mut out),
            HandlerState::AwaitingAckEpoch => self.on_ack_epoch(conn, &pkt, &mut out),
            HandlerState::AwaitingNewLeaderAck => self.on_newleader_ack(conn, &pkt, &mut out),
            HandlerState::AwaitingStartup | HandlerState::Broadcasting => {
                self.on_broadcast_packet(conn, pkt, &mut out)
            }
            // The learner has nothing to say until it hears from us.
            HandlerState::AwaitingEpoch | HandlerState::AwaitingEpochQuorum => {
                Err(ProtocolError::Unexpected {
                    expected: "nothing before LEADERINFO / the sync",
                    got: pkt.r#type,
                })
            }
        };
        if let Err(err) = result {
            self.close(conn, err.to_string(), &mut out);
        }
        out
    }

    fn on_info(
        &mut self,
        conn: ConnId,
        pkt: &QuorumPacket,
        out: &mut Vec<LeaderAction>,
    ) -> Result<(), ProtocolError> {
        let (me, version, now) = (self.cfg.me, self.cfg.config_version, self.now_ms);
        let Some(h) = self.handlers.get_mut(&conn) else {
            return Ok(());
        };
        let reg = h.on_info(pkt, me, version, now)?;
        tracing::info!(%conn, sid = %reg.sid, kind = ?reg.kind, accepted = %reg.accepted_epoch, "learner registered");
        if let Some(old) = self.handlers.register(conn, reg.sid) {
            out.push(LeaderAction::CloseLearner {
                conn: old,
                reason: format!("server {} reconnected", reg.sid),
            });
            self.proposals.forget(reg.sid);
        }
        match self.agreement.on_epoch(reg.sid, reg.accepted_epoch) {
            EpochDecision::Pending => {}
            EpochDecision::JustFixed(epoch) => self.epoch_fixed(epoch, out),
            EpochDecision::Fixed(epoch) => {
                if let Some(h) = self.handlers.get_mut(&conn) {
                    let packet = h.leader_info(epoch, now);
                    out.push(LeaderAction::Send { conn, packet });
                }
            }
        }
        Ok(())
    }

    /// Persist acceptedEpoch, release every learner waiting for LEADERINFO,
    /// then the leader acks the epoch itself.
    fn epoch_fixed(&mut self, epoch: Epoch, out: &mut Vec<LeaderAction>) {
        tracing::info!(%epoch, "new epoch fixed");
        out.push(LeaderAction::PersistAcceptedEpoch(epoch));
        self.epoch = Some(epoch);
        self.proposals = Proposals::new(self.cfg.verifier.clone(), Zxid::new(epoch, 0));
        self.phase = Phase::EpochAck {
            since_ms: self.now_ms,
        };
        for h in self.handlers.values_mut() {
            if h.state() == HandlerState::AwaitingEpoch {
                let packet = h.leader_info(epoch, self.now_ms);
                out.push(LeaderAction::Send {
                    conn: h.conn(),
                    packet,
                });
            }
        }
        let (me, summary) = (self.cfg.me, self.agreement.leader_summary());
        if let Ok(AckDecision::JustAcked(epoch)) = self.agreement.on_ack_epoch(me, Some(summary)) {
            self.epoch_acked(epoch, out);
        }
    }

    fn on_ack_epoch(
        &mut self,
        conn: ConnId,
        pkt: &QuorumPacket,
        out: &mut Vec<LeaderAction>,
    ) -> Result<(), ProtocolError> {
        let now = self.now_ms;
        let Some(h) = self.handlers.get_mut(&conn) else {
            return Ok(());
        };
        let summary = h.on_ack_epoch(pkt, now)?;
        let Some(sid) = h.sid() else {
            return Ok(());
        };
        match self.agreement.on_ack_epoch(sid, summary)? {
            AckDecision::Pending => {}
            AckDecision::JustAcked(epoch) => self.epoch_acked(epoch, out),
            AckDecision::Acked(_) => self.sync_learner(conn, out),
        }
        Ok(())
    }

    /// Persist currentEpoch, then sync every learner that acked the epoch
    /// (in connection order); the leader acks its own NEWLEADER.
    fn epoch_acked(&mut self, epoch: Epoch, out: &mut Vec<LeaderAction>) {
        tracing::info!(%epoch, "epoch acked by a quorum");
        out.push(LeaderAction::PersistCurrentEpoch(epoch));
        self.phase = Phase::NewLeaderAck {
            since_ms: self.now_ms,
        };
        self.newleader_acks.insert(self.cfg.me);
        let waiting: Vec<ConnId> = self
            .handlers
            .values()
            .filter(|h| h.state() == HandlerState::AwaitingEpochQuorum)
            .map(|h| h.conn())
            .collect();
        for conn in waiting {
            self.sync_learner(conn, out);
        }
        self.check_newleader_quorum(out);
    }

    /// Sync selection (F.4) and startForwarding for one learner.
    ///
    /// A follower that this leader told of its durability may have
    /// committed its proposals on its own, up to the lower of the last
    /// zxid it logged and the highest LEADER_DURABLE it was sent. Those are
    /// durable on it and here, a quorum, so they are committed: its ACK for
    /// them counts now, and its log is never truncated below them (ZooKeeper
    /// truncates a learner to the leader's committed log, which is safe only
    /// when no follower applies past it).
    fn sync_learner(&mut self, conn: ConnId, out: &mut Vec<LeaderAction>) {
        let Some(epoch) = self.epoch else { return };
        let Some(h) = self.handlers.get(&conn) else {
            return;
        };
        let (sid, peer_last) = (h.sid(), h.peer_last());
        let kept = sid
            .filter(|_| peer_last.epoch() == epoch)
            .and_then(|sid| Some((sid, (*self.told_durable.get(&sid)?).min(peer_last))));
        if let Some((sid, kept)) = kept {
            let committed = self.proposals.ack(sid, kept);
            self.emit_commits(committed, out);
        }
        let Some(h) = self.handlers.get_mut(&conn) else {
            return;
        };
        let overrides = sync_mode::Overrides {
            force_snap: self.cfg.force_snap_sync,
            kept: kept.map_or(Zxid::ZERO, |(_, k)| k),
        };
        let plan = sync_mode::select_with(
            overrides,
            h.peer_last(),
            self.last_processed,
            &self.committed,
            self.txn_log.as_ref(),
            self.snapshot_size,
            self.cfg.snapshot_size_factor,
        );
        tracing::info!(%conn, sid = ?h.sid(), peer_last = %h.peer_last(), leader_last = %self.last_processed, mode = plan_kind(&plan), "syncing learner");
        for item in h.sync(
            plan,
            &self.proposals,
            epoch,
            &self.cfg.membership,
            self.now_ms,
        ) {
            out.push(match item {
                Outbound::Packet(packet) => LeaderAction::Send { conn, packet },
                Outbound::Snapshot { zxid } => LeaderAction::SendSnapshot {
                    conn,
                    zxid,
                    applied_through: self.last_applied,
                },
            });
        }
    }

    fn on_newleader_ack(
        &mut self,
        conn: ConnId,
        pkt: &QuorumPacket,
        out: &mut Vec<LeaderAction>,
    ) -> Result<(), ProtocolError> {
        let (now, established) = (self.now_ms, self.is_established());
        let Some(epoch) = self.epoch else {
            return Ok(());
        };
        let Some(h) = self.handlers.get_mut(&conn) else {
            return Ok(());
        };
        let counts = h.on_newleader_ack(pkt, epoch, now)?;
        if !counts {
            tracing::error!(%conn, zxid = %Zxid(pkt.zxid), %epoch, "NEWLEADER ack from another epoch ignored");
        }
        if established {
            let packet = h.up_to_date(now);
            out.push(LeaderAction::Send { conn, packet });
        } else if counts {
            if let Some(sid) = h.sid() {
                if self.cfg.verifier.is_voter(sid) {
                    self.newleader_acks.insert(sid);
                }
            }
            self.check_newleader_quorum(out);
        }
        Ok(())
    }

    fn check_newleader_quorum(&mut self, out: &mut Vec<LeaderAction>) {
        if !matches!(self.phase, Phase::NewLeaderAck { .. })
            || !self.newleader_acks.contains(&self.cfg.me)
            || !self.cfg.verifier.contains_quorum(&self.newleader_acks)
        {
            return;
        }
        let Some(epoch) = self.epoch else { return };
        tracing::info!(%epoch, acks = ?self.newleader_acks, "established");
        self.phase = Phase::Broadcast;
        // ZooKeeper's startZkServer: lastProcessedZxid = epoch << 32.
        self.last_processed = Zxid::new(epoch, 0);
        out.push(LeaderAction::Established { epoch });
        let now = self.now_ms;
        for h in self.handlers.values_mut() {
            if h.state() == HandlerState::AwaitingStartup {
                let packet = h.up_to_date(now);
                out.push(LeaderAction::Send {
                    conn: h.conn(),
                    packet,
                });
            }
        }
    }

    fn on_broadcast_packet(
        &mut self,
        conn: ConnId,
        pkt: QuorumPacket,
        out: &mut Vec<LeaderAction>,
    ) -> Result<(), ProtocolError> {
        let Some(h) = self.handlers.get_mut(&conn) else {
            return Ok(());
        };
        let Some(from) = h.sid() else { return Ok(()) };
        match FromLearner::decode(&pkt)? {
            FromLearner::Ack(zxid) => {
                h.acked(zxid);
                if h.kind() == Some(LearnerKind::Observer) {
                    tracing::debug!(%from, %zxid, "ACK from an observer ignored");
                }
                let committed = self.proposals.ack(from, zxid);
                self.emit_commits(committed, out);
            }
            FromLearner::Touches(sessions) => {
                if !sessions.is_empty() {
                    out.push(LeaderAction::TouchSessions { from, sessions });
                }
            }
            FromLearner::Revalidate { session, timeout } => {
                out.push(LeaderAction::Revalidate {
                    conn,
                    from,
                    session_id: session,
                    timeout,
                });
            }
            FromLearner::Request(request) => {
                out.push(LeaderAction::ForwardedRequest {
                    conn,
                    from,
                    request,
                    auth: pkt.authinfo,
                });
            }
            FromLearner::Other(kind) => {
                // ZooKeeper logs and carries on.
                tracing::warn!(%from, kind, "unexpected quorum packet ignored");
            }
        }
        Ok(())
    }

    /// Propose a prepared txn (its zxid already assigned: the next one).
    /// PROPOSAL goes to every follower in the broadcast set; the caller logs
    /// the txn itself and reports it with [`Leader::on_local_durable`].
    pub fn propose(&mut self, txn: proto::Txn) -> Result<Vec<LeaderAction>, LeaderError> {
        let zxid = Zxid(txn.zxid);
        self.propose_encoded(zxid, Bytes::from(txn.encode_to_vec()))
    }

    /// [`Leader::propose`] for a txn the caller has already encoded (it
    /// encodes it once for its own log; the PROPOSALs share those bytes).
    /// `data` must be the prost encoding of a `proto::Txn` whose zxid is
    /// `zxid`.
    pub fn propose_encoded(
        &mut self,
        zxid: Zxid,
        data: Bytes,
    ) -> Result<Vec<LeaderAction>, LeaderError> {
        match self.phase {
            Phase::Broadcast => {}
            Phase::SteppedDown => return Err(LeaderError::SteppedDown),
            _ => return Err(LeaderError::NotEstablished),
        }
        let epoch = self.epoch.ok_or(LeaderError::NotEstablished)?;
        if zxid.epoch() != epoch {
            return Err(LeaderError::WrongEpoch { zxid, epoch });
        }
        if zxid.counter() == u32::MAX {
            // Reference F.1: abdicate so the next leader starts a new epoch.
            return Ok(
                self.step_down("zxid lower 32 bits have rolled over, forcing re-election".into())
            );
        }
        self.proposals.propose(zxid, data.clone())?;
        let mut out = Vec::new();
        for h in self.handlers.values_mut() {
            if h.receives_broadcast() && h.kind() == Some(LearnerKind::Follower) {
                h.proposal_sent(zxid, self.now_ms);
                out.push(LeaderAction::Send {
                    conn: h.conn(),
                    packet: packet(PacketType::Proposal, zxid, data.clone()),
                });
            }
        }
        Ok(out)
    }

    /// The leader's own log holds every proposal `<= zxid` durably: its ack.
    pub fn on_local_durable(&mut self, zxid: Zxid) -> Vec<LeaderAction> {
        let mut out = Vec::new();
        if self.phase != Phase::Broadcast {
            return out;
        }
        let committed = self.proposals.ack(self.cfg.me, zxid);
        self.emit_commits(committed, &mut out);
        self.tell_durable(zxid, &mut out);
        out
    }

    /// LEADER_DURABLE (zab's own) to every follower that forms a quorum
    /// with this leader: such a follower commits what both hold durably as
    /// soon as its own log has it, instead of after its ACK's way here and
    /// the COMMIT's way back (see zab-learner's `commit_early`). With more
    /// than three voters no single follower does, and nothing is sent; nor
    /// to a follower of an earlier zab, whose LearnerInfo does not say it
    /// understands the packet (it would log each as of an unknown type).
    fn tell_durable(&mut self, zxid: Zxid, out: &mut Vec<LeaderAction>) {
        // `forceSnapSync` (a test setting) syncs every learner with a
        // snapshot of what this leader applied, which would take from a
        // reconnecting follower what it committed on its own: tell nobody.
        if self.cfg.force_snap_sync {
            return;
        }
        for h in self.handlers.values() {
            let Some(sid) = h.sid() else { continue };
            if !h.receives_broadcast()
                || h.kind() != Some(LearnerKind::Follower)
                || !h.accepts_leader_durable()
            {
                continue;
            }
            if self.cfg.verifier.contains_quorum(&[self.cfg.me, sid]) {
                out.push(LeaderAction::Send {
                    conn: h.conn(),
                    packet: packet(PacketType::LeaderDurable, zxid, Bytes::new()),
                });
                let told = self.told_durable.entry(sid).or_insert(zxid);
                *told = (*told).max(zxid);
            }
        }
    }

    /// Commits in zxid order: each applied locally and INFORMed to
    /// observers, one COMMIT of the highest to every follower (it commits
    /// everything up to it), then the syncs these commits released — after
    /// the COMMIT, so the learner applies before it answers (D.8).
    fn emit_commits(
        &mut self,
        committed: Vec<Committed<PendingSync>>,
        out: &mut Vec<LeaderAction>,
    ) {
        let Some(last) = committed.last().map(|c| c.zxid) else {
            return;
        };
        for c in &committed {
            out.push(LeaderAction::Commit { zxid: c.zxid });
            for h in self.handlers.values() {
                if h.receives_broadcast() && h.kind() == Some(LearnerKind::Observer) {
                    out.push(LeaderAction::Send {
                        conn: h.conn(),
                        packet: packet(PacketType::Inform, c.zxid, c.data.clone()),
                    });
                }
            }
        }
        for h in self.handlers.values() {
            if h.receives_broadcast() && h.kind() == Some(LearnerKind::Follower) {
                out.push(LeaderAction::Send {
                    conn: h.conn(),
                    packet: packet(PacketType::Commit, last, Bytes::new()),
                });
            }
        }
        for sync in committed.into_iter().flat_map(|c| c.syncs) {
            self.answer_sync(sync, out);
        }
    }

    fn answer_sync(&self, sync: PendingSync, out: &mut Vec<LeaderAction>) {
        // The learner may have gone: its client is gone with it.
        if self.handlers.contains_key(&sync.conn) {
            out.push(LeaderAction::Send {
                conn: sync.conn,
                packet: packet(
                    PacketType::Sync,
                    Zxid::ZERO,
                    Bytes::from(sync.request.encode_to_vec()),
                ),
            });
        }
    }

    /// The leader's tree applied every committed txn `<= zxid`: they move
    /// from toBeApplied into the committed log used for DIFF.
    pub fn on_applied(&mut self, zxid: Zxid) {
        for (z, data) in self.proposals.applied(zxid) {
            self.committed.push(z, data);
            self.last_applied = z;
            self.last_processed = self.last_processed.max(z);
        }
    }

    /// A forwarded sync reached its turn in the leader's pipeline (D.8):
    /// answered now if nothing is outstanding, else when the last
    /// outstanding proposal commits.
    pub fn sync_request(
        &mut self,
        conn: ConnId,
        request: proto::ForwardedRequest,
    ) -> Vec<LeaderAction> {
        let mut out = Vec::new();
        if self.phase != Phase::Broadcast {
            return out;
        }
        if let Some(sync) = self.proposals.sync(PendingSync { conn, request }) {
            self.answer_sync(sync, &mut out);
        }
        out
    }

    /// The answer to a learner's REVALIDATE.
    pub fn revalidate_reply(
        &mut self,
        conn: ConnId,
        session_id: SessionId,
        valid: bool,
    ) -> Vec<LeaderAction> {
        if !self.handlers.contains_key(&conn) {
            return Vec::new();
        }
        let reply = proto::RevalidateReply {
            session_id: session_id.0,
            valid,
        };
        vec![LeaderAction::Send {
            conn,
            packet: packet(
                PacketType::Revalidate,
                Zxid(-1),
                Bytes::from(reply.encode_to_vec()),
            ),
        }]
    }

    /// The leader's tree had `digest` after `zxid` (see `zab_tree::digest`):
    /// the next PINGs carry it, so that each learner compares its own tree
    /// once it has applied `zxid`, as ZooKeeper's followers compare the
    /// digest logged with each txn.
    pub fn note_digest(&mut self, zxid: Zxid, digest: i64) {
        self.digest = Some(proto::TreeDigest {
            zxid: zxid.0,
            digest,
        });
    }

    /// Every `tickTime / 2`: phase timeouts (initLimit) before the leader is
    /// established; learner read timeouts; once established, the quorum
    /// check every full tick and a PING to every up-to-date learner, dropping
    /// those with a proposal unacked for syncLimit (reference F.6).
    pub fn on_tick(&mut self, now_ms: u64) -> Vec<LeaderAction> {
        let mut out = Vec::new();
        self.now_ms = self.now_ms.max(now_ms);
        let now = self.now_ms;
        let limits = self.cfg.limits();
        let waiting = match self.phase {
            Phase::SteppedDown => return out,
            Phase::Broadcast => None,
            Phase::EpochProposal { since_ms } => {
                Some((since_ms, "Timeout while waiting for epoch from quorum"))
            }
            Phase::EpochAck { since_ms } => Some((
                since_ms,
                "Timeout while waiting for epoch to be acked by quorum",
            )),
            Phase::NewLeaderAck { since_ms } => Some((
                since_ms,
                "Timeout while waiting for NEWLEADER to be acked by quorum",
            )),
        };
        if let Some((since, reason)) = waiting {
            if now.saturating_sub(since) >= limits.init_ms {
                return self.step_down(reason.into());
            }
        }
        for conn in self.handlers.silent(now, limits) {
            self.close(conn, "read timed out".into(), &mut out);
        }
        if self.phase != Phase::Broadcast {
            return out;
        }
        if !self.tick_skip {
            let mut synced: BTreeSet<ServerId> = BTreeSet::from([self.cfg.me]);
            synced.extend(
                self.handlers
                    .values()
                    .filter(|h| h.is_synced(now))
                    .filter_map(|h| h.sid()),
            );
            if !self.cfg.verifier.contains_quorum(&synced) {
                let sids: Vec<String> = synced.iter().map(|s| s.to_string()).collect();
                let reason = format!(
                    "Not sufficient followers synced, only synced with sids: [ {} ]",
                    sids.join(",")
                );
                out.extend(self.step_down(reason));
                return out;
            }
        }
        self.tick_skip = !self.tick_skip;
        let stale: Vec<ConnId> = self
            .handlers
            .values()
            .filter(|h| {
                h.state() == HandlerState::Broadcasting && h.transaction_timed_out(now, limits)
            })
            .map(|h| h.conn())
            .collect();
        for conn in stale {
            self.close(
                conn,
                "transaction timeout: proposal unacked for syncLimit".into(),
                &mut out,
            );
        }
        let last_proposed = self.proposals.last_proposed();
        let digest = self
            .digest
            .as_ref()
            .map_or_else(Bytes::new, |d| Bytes::from(d.encode_to_vec()));
        for h in self.handlers.values() {
            // Only learners past UPTODATE are pinged: one still syncing is
            // not expecting PINGs yet.
            if h.state() == HandlerState::Broadcasting {
                out.push(LeaderAction::Send {
                    conn: h.conn(),
                    packet: packet(PacketType::Ping, last_proposed, digest.clone()),
                });
            }
        }
        out
    }

    fn step_down(&mut self, reason: String) -> Vec<LeaderAction> {
        tracing::warn!(%reason, "stepping down");
        self.phase = Phase::SteppedDown;
        vec![LeaderAction::StepDown { reason }]
    }
}

fn plan_kind(plan: &sync_mode::SyncPlan) -> &'static str {
    match plan {
        sync_mode::SyncPlan::Diff { .. } => "DIFF",
        sync_mode::SyncPlan::Trunc { .. } => "TRUNC",
        sync_mode::SyncPlan::Snap { .. } => "SNAP",
    }
}
