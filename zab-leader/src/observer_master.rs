//! A follower hosting observers (ZooKeeper 3.6+'s `ObserverMaster`,
//! started by `Follower.followLeader` once the follower is in sync when
//! `observerMasterPort` is set; seed 000).
//!
//! Observers then sync from and follow a follower instead of the leader,
//! which takes their links off the leader. [`ObserverMaster`] is the
//! follower's side of those links, as one deterministic state machine: the
//! same [`LearnerHandler`](crate::LearnerHandler) and sync selection the leader runs, with what a
//! follower knows in place of the leader's quorum work:
//!
//! * discovery needs no quorum: LEADERINFO carries the follower's current
//!   epoch at once, and the sync starts as soon as ACKEPOCH arrives
//!   (ZooKeeper's `ObserverMaster.getEpochToPropose` and its no-op waits);
//! * the sync sends what the follower has applied — its committed window
//!   and txn log, or a snapshot of its tree — and nothing above it: every
//!   txn it applies later goes to its observers as INFORM;
//! * an observer's REQUEST and REVALIDATE go on to the leader over the
//!   follower's own link, and the leader's SYNC and REVALIDATE answers come
//!   back to the observer that asked;
//! * the sessions an observer's PING replies report are touched on the
//!   follower, which reports them to the leader in its own.
//!
//! Only observers may connect: a follower is refused, as ZooKeeper's
//! `LearnerHandler` refuses "Non observer attempting to connect to
//! ObserverMaster".

use std::collections::VecDeque;

use bytes::Bytes;
use prost::Message;
use zab_wire::proto::{self, PacketType, QuorumPacket};
use zab_wire::{Epoch, SessionId, Zxid};

use crate::leader::{LeaderConfig, LearnerStatus};
use crate::learner_handler::{
    decode, packet, ConnId, FromLearner, HandlerState, Handlers, Outbound, ProtocolError,
};
use crate::sync_mode::{self, CommittedLog, TxnLogView};
use zab_wire::jute::op;

/// What the server must do, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum ObserverMasterAction {
    /// Put this packet on the observer's stream.
    Send { conn: ConnId, packet: QuorumPacket },
    /// Stream the follower's tree, as it is now (it holds exactly the txns
    /// up to `zxid`), as SNAP_CHUNKs then SNAP_END.
    SendSnapshot { conn: ConnId, zxid: Zxid },
    /// Send this observer's packet (REQUEST or REVALIDATE) to the leader
    /// on the follower's own link, as it came.
    ToLeader(QuorumPacket),
    /// Sessions an observer reported active, with their timeouts: touch
    /// them on the follower, which reports them to the leader.
    TouchSessions(Vec<(SessionId, i32)>),
    /// Drop the observer's link.
    CloseObserver { conn: ConnId, reason: String },
}

/// An observer's forwarded sync waiting for the leader's SYNC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct RelayedSync {
    session: i64,
    cxid: i32,
    conn: ConnId,
}

/// An observer's REVALIDATE waiting for the leader's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct RelayedRevalidation {
    session: SessionId,
    timeout: i32,
    conn: ConnId,
}

/// The follower's side of its observers' links; see the module docs.
pub struct ObserverMaster {
    cfg: LeaderConfig,
    /// The follower's current epoch: the epoch of the leader it follows.
    epoch: Epoch,
    handlers: Handlers,
    committed: CommittedLog,
    txn_log: Box<dyn TxnLogView + Send>,
    snapshot_size: u64,
    /// The last txn the follower applied: what a sync brings an observer to.
    last_applied: Zxid,
    syncs: VecDeque<RelayedSync>,
    revalidations: VecDeque<RelayedRevalidation>,
    now_ms: u64,
}

impl ObserverMaster {
    /// Starts hosting observers for a follower in sync with the leader of
    /// `epoch`, whose tree holds every txn up to `last_applied`; `committed`
    /// is the window of its newest applied txns and `txn_log` its log (for
    /// observers behind the window).
    pub fn new(
        cfg: LeaderConfig,
        epoch: Epoch,
        last_applied: Zxid,
        committed: CommittedLog,
        txn_log: Box<dyn TxnLogView + Send>,
        snapshot_size: u64,
        now_ms: u64,
    ) -> ObserverMaster {
        ObserverMaster {
            cfg,
            epoch,
            handlers: Handlers::default(),
            committed,
            txn_log,
            snapshot_size,
            last_applied,
            syncs: VecDeque::new(),
            revalidations: VecDeque::new(),
            now_ms,
        }
    }

    /// The observers connected, in any state.
    pub fn observers(&self) -> Vec<LearnerStatus> {
        self.handlers.values().map(LearnerStatus::of).collect()
    }

    /// ZooKeeper's `getNumActiveObservers` (`mntr`'s `zk_synced_observers`
    /// on a follower): observers past their sync.
    pub fn synced_observers(&self) -> usize {
        self.handlers
            .values()
            .filter(|h| h.state() == HandlerState::Broadcasting)
            .count()
    }

    /// A new snapshot was saved: rule 5 (b) compares against its size.
    pub fn set_snapshot_size(&mut self, bytes: u64) {
        self.snapshot_size = bytes;
    }

    // ------------------------------------------------------------ inputs

    /// An observer opened a link.
    pub fn on_connected(&mut self, conn: ConnId) {
        self.handlers.open(conn, self.now_ms, self.cfg.limits());
    }

    /// The snapshot of a SNAP sync to `conn` has been written to its link
    /// (see [`crate::LearnerHandler::snapshot_sent`]), as of the last tick.
    pub fn on_snapshot_sent(&mut self, conn: ConnId) {
        if let Some(h) = self.handlers.get_mut(&conn) {
            h.snapshot_sent(self.now_ms);
        }
    }

    /// An observer's link ended. Answers still owed to it are dropped when
    /// they come.
    pub fn on_disconnected(&mut self, conn: ConnId) {
        self.handlers.remove(conn);
    }

    fn close(&mut self, conn: ConnId, reason: String, out: &mut Vec<ObserverMasterAction>) {
        if self.handlers.remove(conn).is_some() {
            tracing::warn!(%conn, %reason, "closing observer");
            out.push(ObserverMasterAction::CloseObserver { conn, reason });
        }
    }

    /// One packet from an observer, in stream order.
    pub fn on_packet(&mut self, conn: ConnId, pkt: QuorumPacket) -> Vec<ObserverMasterAction> {
        let mut out = Vec::new();
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
            // LEADERINFO and the sync go out as soon as their turn comes:
            // no state waits for anything else.
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
        out: &mut Vec<ObserverMasterAction>,
    ) -> Result<(), ProtocolError> {
        if pkt.r#type != PacketType::Observerinfo as i32 {
            return Err(ProtocolError::Unexpected {
                expected: "OBSERVERINFO (only observers connect to an observer master)",
                got: pkt.r#type,
            });
        }
        let (me, version, now, epoch) = (
            self.cfg.me,
            self.cfg.config_version,
            self.now_ms,
            self.epoch,
        );
        let Some(h) = self.handlers.get_mut(&conn) else {
            return Ok(());
        };
        let reg = h.on_info(pkt, me, version, now)?;
        let packet = h.leader_info(epoch, now);
        tracing::info!(%conn, sid = %reg.sid, accepted = %reg.accepted_epoch, "observer registered");
        if let Some(old) = self.handlers.register(conn, reg.sid) {
            out.push(ObserverMasterAction::CloseObserver {
                conn: old,
                reason: format!("server {} reconnected", reg.sid),
            });
        }
        out.push(ObserverMasterAction::Send { conn, packet });
        Ok(())
    }

    /// ACKEPOCH: no quorum to wait for, the sync goes out now.
    fn on_ack_epoch(
        &mut self,
        conn: ConnId,
        pkt: &QuorumPacket,
        out: &mut Vec<ObserverMasterAction>,
    ) -> Result<(), ProtocolError> {
        let now = self.now_ms;
        let Some(h) = self.handlers.get_mut(&conn) else {
            return Ok(());
        };
        h.on_ack_epoch(pkt, now)?;
        if h.peer_last() > self.last_applied {
            // An observer holds only committed txns (it learns by INFORM
            // and from committed logs), so one ahead of this follower
            // learned from a server further along, and this follower will
            // apply the same txns soon. ZooKeeper's LearnerHandler sends
            // it a TRUNC here, and the observer reloads a snapshot newer
            // than the TRUNC point and replays txns over it; zab's observer
            // would refuse that snapshot and stop. Refused instead: the
            // observer tries the next voter, or this one again once it
            // has caught up, and never takes back a txn its clients saw.
            out.push(ObserverMasterAction::CloseObserver {
                conn,
                reason: format!(
                    "the observer is ahead of this follower ({} > {}); it will learn elsewhere",
                    h.peer_last(),
                    self.last_applied
                ),
            });
            return Ok(());
        }
        let overrides = sync_mode::Overrides {
            force_snap: self.cfg.force_snap_sync,
            kept: Zxid::ZERO,
        };
        let plan = sync_mode::select_with(
            overrides,
            h.peer_last(),
            self.last_applied,
            &self.committed,
            self.txn_log.as_ref(),
            self.snapshot_size,
            self.cfg.snapshot_size_factor,
        );
        tracing::info!(%conn, sid = ?h.sid(), peer_last = %h.peer_last(), last_applied = %self.last_applied, "syncing observer");
        for item in h.sync_committed(plan, self.epoch, &self.cfg.membership, now) {
            out.push(match item {
                Outbound::Packet(packet) => ObserverMasterAction::Send { conn, packet },
                Outbound::Snapshot { zxid } => ObserverMasterAction::SendSnapshot { conn, zxid },
            });
        }
        Ok(())
    }

    /// The ACK of NEWLEADER: the follower serves already, so UPTODATE
    /// follows at once.
    fn on_newleader_ack(
        &mut self,
        conn: ConnId,
        pkt: &QuorumPacket,
        out: &mut Vec<ObserverMasterAction>,
    ) -> Result<(), ProtocolError> {
        let (now, epoch) = (self.now_ms, self.epoch);
        let Some(h) = self.handlers.get_mut(&conn) else {
            return Ok(());
        };
        if !h.on_newleader_ack(pkt, epoch, now)? {
            tracing::warn!(%conn, zxid = %Zxid(pkt.zxid), %epoch, "NEWLEADER ack from another epoch");
        }
        let packet = h.up_to_date(now);
        out.push(ObserverMasterAction::Send { conn, packet });
        Ok(())
    }

    fn on_broadcast_packet(
        &mut self,
        conn: ConnId,
        pkt: QuorumPacket,
        out: &mut Vec<ObserverMasterAction>,
    ) -> Result<(), ProtocolError> {
        match FromLearner::decode(&pkt)? {
            FromLearner::Touches(sessions) => {
                if !sessions.is_empty() {
                    out.push(ObserverMasterAction::TouchSessions(sessions));
                }
            }
            FromLearner::Revalidate { session, timeout } => {
                self.revalidations.push_back(RelayedRevalidation {
                    session,
                    timeout,
                    conn,
                });
                out.push(ObserverMasterAction::ToLeader(pkt));
            }
            FromLearner::Request(mut r) => {
                if r.op == op::SYNC {
                    self.syncs.push_back(RelayedSync {
                        session: r.session_id,
                        cxid: r.cxid,
                        conn,
                    });
                }
                // The observer answers its client when the txn commits:
                // the txn must name it as its origin, not this follower.
                if let Some(sid) = self.handlers.get(&conn).and_then(|h| h.sid()) {
                    r.origin = sid.0;
                }
                let mut pkt = pkt;
                pkt.data = Bytes::from(r.encode_to_vec());
                out.push(ObserverMasterAction::ToLeader(pkt));
            }
            // The ACK a learner sends after UPTODATE; ZooKeeper's
            // ObserverMaster ignores it too.
            FromLearner::Ack(_) => {}
            FromLearner::Other(kind) => {
                tracing::warn!(%conn, kind, "unexpected packet from an observer ignored")
            }
        }
        Ok(())
    }

    /// The follower applied a committed txn (its encoded `proto::Txn`):
    /// it joins the window for later syncs and goes to every observer in
    /// the broadcast set as INFORM.
    pub fn on_committed(&mut self, zxid: Zxid, data: Bytes) -> Vec<ObserverMasterAction> {
        let out = self
            .handlers
            .values()
            .filter(|h| h.receives_broadcast())
            .map(|h| ObserverMasterAction::Send {
                conn: h.conn(),
                packet: packet(PacketType::Inform, zxid, data.clone()),
            })
            .collect();
        self.committed.push(zxid, data);
        self.last_applied = self.last_applied.max(zxid);
        out
    }

    /// The leader answered a SYNC or REVALIDATE the follower did not ask
    /// for itself: the observer that did gets it. A SYNC comes after the
    /// COMMITs it waited for, so the observer has their INFORMs first.
    pub fn on_leader_reply(&mut self, pkt: QuorumPacket) -> Vec<ObserverMasterAction> {
        let mut out = Vec::new();
        let conn = match PacketType::try_from(pkt.r#type) {
            Ok(PacketType::Sync) => {
                let answered: Option<proto::ForwardedRequest> =
                    decode("ForwardedRequest", &pkt.data).ok();
                // An empty SYNC answers the oldest (the link is FIFO).
                let pos = match &answered {
                    Some(a) if !pkt.data.is_empty() => self
                        .syncs
                        .iter()
                        .position(|s| s.session == a.session_id && s.cxid == a.cxid),
                    _ => (!self.syncs.is_empty()).then_some(0),
                };
                pos.and_then(|i| self.syncs.remove(i)).map(|s| s.conn)
            }
            Ok(PacketType::Revalidate) => {
                let reply: Option<proto::RevalidateReply> =
                    decode("RevalidateReply", &pkt.data).ok();
                let pos = reply.as_ref().and_then(|r| {
                    self.revalidations
                        .iter()
                        .position(|v| v.session.0 == r.session_id)
                });
                match (pos.and_then(|i| self.revalidations.remove(i)), reply) {
                    (Some(v), Some(r)) => {
                        // ZooKeeper's ObserverMaster touches a session it
                        // revalidated, as the leader does.
                        if r.valid {
                            out.push(ObserverMasterAction::TouchSessions(vec![(
                                v.session, v.timeout,
                            )]));
                        }
                        Some(v.conn)
                    }
                    _ => None,
                }
            }
            _ => None,
        };
        match conn {
            Some(conn) if self.handlers.contains_key(&conn) => {
                out.push(ObserverMasterAction::Send { conn, packet: pkt });
            }
            // Its observer has gone: its client is gone with it.
            Some(_) => {}
            None => {
                tracing::warn!(
                    kind = pkt.r#type,
                    "answer from the leader matches no request of an observer"
                );
            }
        }
        out
    }

    /// Every `tickTime / 2`: drops observers silent for longer than their
    /// limit and PINGs the rest (ZooKeeper's ObserverMaster pings at that
    /// rate), so that each observer's own read timeout holds.
    pub fn on_tick(&mut self, now_ms: u64) -> Vec<ObserverMasterAction> {
        let mut out = Vec::new();
        self.now_ms = self.now_ms.max(now_ms);
        let (now, limits) = (self.now_ms, self.cfg.limits());
        let silent: Vec<ConnId> = self
            .handlers
            .values()
            .filter(|h| h.read_timed_out(now, limits))
            .map(|h| h.conn())
            .collect();
        for conn in silent {
            self.close(conn, "read timed out".into(), &mut out);
        }
        for h in self.handlers.values() {
            if h.state() == HandlerState::Broadcasting {
                out.push(ObserverMasterAction::Send {
                    conn: h.conn(),
                    packet: packet(PacketType::Ping, self.last_applied, Bytes::new()),
                });
            }
        }
        out
    }
}
