//! One learner connection as the leader sees it (ZooKeeper's
//! `LearnerHandler`).
//!
//! A [`LearnerHandler`] owns the per-connection state machine
//! (awaiting FOLLOWERINFO/OBSERVERINFO → awaiting the epoch → awaiting
//! ACKEPOCH → awaiting the epoch quorum → syncing, awaiting the NEWLEADER
//! ack → awaiting start-up → broadcasting), turns a [`SyncPlan`] plus the
//! pipeline's in-flight proposals into the packets that bring the learner up
//! to date (ZooKeeper's `syncFollower` + `startForwarding`), and keeps the
//! liveness bookkeeping: when it last heard from the learner and which
//! proposals it has not acknowledged (reference F.6). Decisions that span
//! learners (quorums, commits) belong to [`crate::Leader`].

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;
use prost::Message;
use zab_wire::proto::{self, PacketType, QuorumPacket};
use zab_wire::{Epoch, ServerId, SessionId, Zxid};

use crate::broadcast::Proposals;
use crate::discovery::StateSummary;
use crate::sync_mode::SyncPlan;

/// The caller's name for one learner connection (one `Learn` stream).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub u64);

impl std::fmt::Display for ConnId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "conn#{}", self.0)
    }
}

/// How the learner registered: FOLLOWERINFO or OBSERVERINFO. Followers get
/// PROPOSAL/COMMIT; observers get INFORM (reference F.9). Whether its acks
/// count is the [`zab_wire::QuorumVerifier`]'s business, not this.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LearnerKind {
    Follower,
    Observer,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandlerState {
    /// Connected; the first packet must be FOLLOWERINFO or OBSERVERINFO.
    AwaitingInfo,
    /// Registered; waiting for a quorum to fix the epoch (no LEADERINFO yet).
    AwaitingEpoch,
    /// LEADERINFO sent; the next packet must be ACKEPOCH.
    AwaitingAckEpoch,
    /// ACKEPOCH received; waiting for a quorum of epoch acks.
    AwaitingEpochQuorum,
    /// Sync packets and NEWLEADER sent; the next packet must be an ACK.
    AwaitingNewLeaderAck,
    /// NEWLEADER acked; UPTODATE follows once the leader is established.
    AwaitingStartup,
    /// UPTODATE sent: normal traffic.
    Broadcasting,
}

/// What FOLLOWERINFO/OBSERVERINFO told us.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Registration {
    pub sid: ServerId,
    pub kind: LearnerKind,
    pub accepted_epoch: Epoch,
    /// From LearnerInfo: the learner understands LEADER_DURABLE (an
    /// earlier zab's learner does not say so).
    pub accepts_leader_durable: bool,
}

/// Something to put on the learner's stream, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum Outbound {
    Packet(QuorumPacket),
    /// The leader's snapshot as SNAP_CHUNK packets then SNAP_END, right
    /// here in the stream (after the SNAP packet).
    Snapshot {
        zxid: Zxid,
    },
}

/// Learner timeouts in milliseconds (`initLimit`/`syncLimit` × `tickTime`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub init_ms: u64,
    pub sync_ms: u64,
}

/// A learner broke the protocol or cannot be served: the connection closes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("expected {expected}, got packet type {got}")]
    Unexpected { expected: &'static str, got: i32 },
    #[error("malformed {what} payload: {reason}")]
    Malformed { what: &'static str, reason: String },
    #[error("learner config version {learner} is ahead of the leader's {leader}")]
    ConfigAhead { learner: i64, leader: i64 },
    #[error("learner claims the leader's own id {0}")]
    SidIsLeader(ServerId),
    #[error("{0}")]
    Discovery(#[from] crate::discovery::DiscoveryError),
}

pub(crate) fn packet(kind: PacketType, zxid: Zxid, data: Bytes) -> QuorumPacket {
    QuorumPacket {
        r#type: kind as i32,
        zxid: zxid.0,
        data,
        authinfo: Vec::new(),
    }
}

/// A committed txn as the sync sends it: PROPOSAL then COMMIT.
fn committed_pair(out: &mut Vec<Outbound>, zxid: Zxid, data: &Bytes) {
    out.push(Outbound::Packet(packet(
        PacketType::Proposal,
        zxid,
        data.clone(),
    )));
    out.push(Outbound::Packet(packet(
        PacketType::Commit,
        zxid,
        Bytes::new(),
    )));
}

pub(crate) fn decode<M: Message + Default>(
    what: &'static str,
    data: &Bytes,
) -> Result<M, ProtocolError> {
    M::decode(data.clone()).map_err(|e| ProtocolError::Malformed {
        what,
        reason: e.to_string(),
    })
}

fn expect(
    pkt: &QuorumPacket,
    kind: PacketType,
    expected: &'static str,
) -> Result<(), ProtocolError> {
    if pkt.r#type == kind as i32 {
        Ok(())
    } else {
        Err(ProtocolError::Unexpected {
            expected,
            got: pkt.r#type,
        })
    }
}

/// What a learner says once it is in sync (ZooKeeper's `LearnerHandler`
/// main loop), decoded.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum FromLearner {
    Ack(Zxid),
    /// A PING reply: the sessions its clients touched, with their timeouts.
    Touches(Vec<(SessionId, i32)>),
    Revalidate {
        session: SessionId,
        timeout: i32,
    },
    Request(proto::ForwardedRequest),
    /// Any other packet type: ZooKeeper logs it and carries on.
    Other(i32),
}

impl FromLearner {
    pub(crate) fn decode(pkt: &QuorumPacket) -> Result<FromLearner, ProtocolError> {
        Ok(match PacketType::try_from(pkt.r#type) {
            Ok(PacketType::Ack) => FromLearner::Ack(Zxid(pkt.zxid)),
            Ok(PacketType::Ping) => {
                let touches: proto::SessionTouches = decode("SessionTouches", &pkt.data)?;
                FromLearner::Touches(
                    touches
                        .sessions
                        .iter()
                        .map(|s| (SessionId(s.session_id), s.timeout))
                        .collect(),
                )
            }
            Ok(PacketType::Revalidate) => {
                let r: proto::Revalidate = decode("Revalidate", &pkt.data)?;
                FromLearner::Revalidate {
                    session: SessionId(r.session_id),
                    timeout: r.timeout,
                }
            }
            Ok(PacketType::Request) => FromLearner::Request(decode("ForwardedRequest", &pkt.data)?),
            _ => FromLearner::Other(pkt.r#type),
        })
    }
}

/// One master's learner connections — the leader's, or a follower's
/// observers' — by connection, and which connection is each server's.
#[derive(Debug, Default)]
pub(crate) struct Handlers {
    by_conn: BTreeMap<ConnId, LearnerHandler>,
    by_sid: BTreeMap<ServerId, ConnId>,
}

impl Handlers {
    /// A learner opened a connection (a second call changes nothing).
    pub(crate) fn open(&mut self, conn: ConnId, now_ms: u64, limits: Limits) {
        self.by_conn
            .entry(conn)
            .or_insert_with(|| LearnerHandler::new(conn, now_ms, limits));
    }

    pub(crate) fn get(&self, conn: &ConnId) -> Option<&LearnerHandler> {
        self.by_conn.get(conn)
    }

    pub(crate) fn get_mut(&mut self, conn: &ConnId) -> Option<&mut LearnerHandler> {
        self.by_conn.get_mut(conn)
    }

    pub(crate) fn contains_key(&self, conn: &ConnId) -> bool {
        self.by_conn.contains_key(conn)
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = &LearnerHandler> {
        self.by_conn.values()
    }

    pub(crate) fn values_mut(&mut self) -> impl Iterator<Item = &mut LearnerHandler> {
        self.by_conn.values_mut()
    }

    /// Drops a connection. The server it was the connection of, if it
    /// still was, comes back with it.
    pub(crate) fn remove(&mut self, conn: ConnId) -> Option<(LearnerHandler, Option<ServerId>)> {
        let h = self.by_conn.remove(&conn)?;
        let current = h.sid().filter(|sid| self.by_sid.get(sid) == Some(&conn));
        if let Some(sid) = current {
            self.by_sid.remove(&sid);
        }
        Some((h, current))
    }

    /// `conn` registered as `sid`. One connection per server: a new one
    /// means the old is dead, so the old one, if any, is dropped and
    /// returned.
    pub(crate) fn register(&mut self, conn: ConnId, sid: ServerId) -> Option<ConnId> {
        let old = self.by_sid.insert(sid, conn).filter(|&old| old != conn)?;
        self.by_conn.remove(&old).map(|_| old)
    }

    /// The connections whose read timed out.
    pub(crate) fn silent(&self, now_ms: u64, limits: Limits) -> Vec<ConnId> {
        self.by_conn
            .values()
            .filter(|h| h.read_timed_out(now_ms, limits))
            .map(|h| h.conn())
            .collect()
    }
}

/// The leader's side of one learner connection.
#[derive(Clone, Debug)]
pub struct LearnerHandler {
    conn: ConnId,
    registration: Option<Registration>,
    state: HandlerState,
    /// When the current state began: waits (epoch, epoch quorum) are bounded
    /// by initLimit from there, as ZooKeeper's blocking waits are.
    state_since_ms: u64,
    last_heard_ms: u64,
    /// ZooKeeper's `tickOfNextAckDeadline`: the learner counts as synced
    /// (for the leader's quorum check) until then.
    ack_deadline_ms: u64,
    peer_last: Zxid,
    sync_mode: Option<PacketType>,
    /// Proposals sent and not yet acked, with when they were sent
    /// (followers only; observers never ack). The in-flight window.
    in_flight: VecDeque<(Zxid, u64)>,
    /// Acks are only expected once UPTODATE is sent: before that a
    /// proposal's age counts from here (ZooKeeper's `syncLimitCheck.start`).
    up_to_date_ms: Option<u64>,
}

impl LearnerHandler {
    pub fn new(conn: ConnId, now_ms: u64, limits: Limits) -> Self {
        LearnerHandler {
            conn,
            registration: None,
            state: HandlerState::AwaitingInfo,
            state_since_ms: now_ms,
            last_heard_ms: now_ms,
            // ZooKeeper's getTickOfInitialAckDeadline: initLimit + syncLimit.
            ack_deadline_ms: now_ms + limits.init_ms + limits.sync_ms,
            peer_last: Zxid::ZERO,
            sync_mode: None,
            in_flight: VecDeque::new(),
            up_to_date_ms: None,
        }
    }

    pub fn conn(&self) -> ConnId {
        self.conn
    }

    pub fn state(&self) -> HandlerState {
        self.state
    }

    pub fn sid(&self) -> Option<ServerId> {
        self.registration.map(|r| r.sid)
    }

    pub fn kind(&self) -> Option<LearnerKind> {
        self.registration.map(|r| r.kind)
    }

    /// Whether LEADER_DURABLE may be sent to this learner.
    pub fn accepts_leader_durable(&self) -> bool {
        self.registration.is_some_and(|r| r.accepts_leader_durable)
    }

    /// The learner's last logged zxid from ACKEPOCH.
    pub fn peer_last(&self) -> Zxid {
        self.peer_last
    }

    /// DIFF, TRUNC or SNAP, once synced.
    pub fn sync_mode(&self) -> Option<PacketType> {
        self.sync_mode
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    fn set_state(&mut self, state: HandlerState, now_ms: u64) {
        self.state = state;
        self.state_since_ms = now_ms;
    }

    /// Any packet arrived.
    pub fn heard(&mut self, now_ms: u64, limits: Limits) {
        self.last_heard_ms = now_ms;
        // ZooKeeper moves the deadline only in its main loop, i.e. after
        // the NEWLEADER ack.
        if matches!(
            self.state,
            HandlerState::AwaitingStartup | HandlerState::Broadcasting
        ) {
            self.ack_deadline_ms = now_ms + limits.sync_ms;
        }
    }

    /// True once the learner is in the broadcast set (ZooKeeper adds it in
    /// `startForwarding`, right after the sync packets are queued).
    pub fn receives_broadcast(&self) -> bool {
        matches!(
            self.state,
            HandlerState::AwaitingNewLeaderAck
                | HandlerState::AwaitingStartup
                | HandlerState::Broadcasting
        )
    }

    /// FOLLOWERINFO / OBSERVERINFO (reference F.3 step 1).
    pub fn on_info(
        &mut self,
        pkt: &QuorumPacket,
        leader: ServerId,
        leader_config_version: i64,
        now_ms: u64,
    ) -> Result<Registration, ProtocolError> {
        let kind = if pkt.r#type == PacketType::Followerinfo as i32 {
            LearnerKind::Follower
        } else if pkt.r#type == PacketType::Observerinfo as i32 {
            LearnerKind::Observer
        } else {
            return Err(ProtocolError::Unexpected {
                expected: "FOLLOWERINFO or OBSERVERINFO",
                got: pkt.r#type,
            });
        };
        let info: proto::LearnerInfo = decode("LearnerInfo", &pkt.data)?;
        if info.config_version > leader_config_version {
            return Err(ProtocolError::ConfigAhead {
                learner: info.config_version,
                leader: leader_config_version,
            });
        }
        let sid = ServerId(info.sid);
        if sid == leader {
            return Err(ProtocolError::SidIsLeader(sid));
        }
        let reg = Registration {
            sid,
            kind,
            accepted_epoch: Zxid(pkt.zxid).epoch(),
            accepts_leader_durable: info.accepts_leader_durable,
        };
        self.registration = Some(reg);
        self.set_state(HandlerState::AwaitingEpoch, now_ms);
        Ok(reg)
    }

    /// LEADERINFO(newEpoch << 32); data empty (the protocol version lives
    /// in LearnerInfo on zab's wire).
    pub fn leader_info(&mut self, epoch: Epoch, now_ms: u64) -> QuorumPacket {
        self.set_state(HandlerState::AwaitingAckEpoch, now_ms);
        packet(PacketType::Leaderinfo, Zxid::new(epoch, 0), Bytes::new())
    }

    /// ACKEPOCH. Returns the summary that counts toward the epoch quorum, or
    /// `None` when the learner had already accepted the epoch (ZooKeeper's
    /// epoch -1). The learner's last logged zxid is the packet's zxid.
    pub fn on_ack_epoch(
        &mut self,
        pkt: &QuorumPacket,
        now_ms: u64,
    ) -> Result<Option<StateSummary>, ProtocolError> {
        expect(pkt, PacketType::Ackepoch, "ACKEPOCH")?;
        let ack: proto::AckEpoch = decode("AckEpoch", &pkt.data)?;
        self.peer_last = Zxid(pkt.zxid);
        self.set_state(HandlerState::AwaitingEpochQuorum, now_ms);
        if ack.already_accepted {
            return Ok(None);
        }
        let state = ack.state.ok_or(ProtocolError::Malformed {
            what: "AckEpoch",
            reason: "no state summary".into(),
        })?;
        Ok(Some(StateSummary {
            current_epoch: Epoch(state.current_epoch),
            last_zxid: Zxid(pkt.zxid),
        }))
    }

    /// Everything that brings the learner up to date, in stream order:
    /// the sync packet and its txns (PROPOSAL + COMMIT each), the snapshot
    /// for SNAP, then `startForwarding` — committed-but-unapplied txns above
    /// the sync point as PROPOSAL + COMMIT and, for followers, outstanding
    /// proposals above it as PROPOSAL — then NEWLEADER. The learner joins
    /// the broadcast set here, so every later proposal and commit follows
    /// on the same stream: nothing is missed or sent twice.
    pub fn sync<S>(
        &mut self,
        plan: SyncPlan,
        pipeline: &Proposals<S>,
        epoch: Epoch,
        membership: &Bytes,
        now_ms: u64,
    ) -> Vec<Outbound> {
        let mut out = Vec::new();
        let last_queued = self.queue_sync(&plan, &mut out);
        // startForwarding(lastQueued).
        if pipeline.last_proposed() > last_queued {
            for (zxid, data) in pipeline.to_be_applied_above(last_queued) {
                committed_pair(&mut out, zxid, data);
            }
            if self.kind() == Some(LearnerKind::Follower) {
                for (zxid, data) in pipeline.outstanding_above(last_queued) {
                    out.push(Outbound::Packet(packet(
                        PacketType::Proposal,
                        zxid,
                        data.clone(),
                    )));
                    self.in_flight.push_back((zxid, now_ms));
                }
            }
        }
        self.queue_newleader(epoch, membership, now_ms, &mut out);
        out
    }

    /// [`LearnerHandler::sync`] for a master whose every txn is applied
    /// when it syncs a learner: a follower hosting observers
    /// ([`crate::ObserverMaster`]) sends only what it has committed, so
    /// nothing waits above the plan's last txn.
    pub fn sync_committed(
        &mut self,
        plan: SyncPlan,
        epoch: Epoch,
        membership: &Bytes,
        now_ms: u64,
    ) -> Vec<Outbound> {
        let mut out = Vec::new();
        self.queue_sync(&plan, &mut out);
        self.queue_newleader(epoch, membership, now_ms, &mut out);
        out
    }

    /// The sync packet and what follows it; returns the last zxid queued.
    fn queue_sync(&mut self, plan: &SyncPlan, out: &mut Vec<Outbound>) -> Zxid {
        match plan {
            SyncPlan::Diff { to, txns } | SyncPlan::Trunc { to, then: txns } => {
                let kind = if matches!(plan, SyncPlan::Diff { .. }) {
                    PacketType::Diff
                } else {
                    PacketType::Trunc
                };
                self.sync_mode = Some(kind);
                out.push(Outbound::Packet(packet(kind, *to, Bytes::new())));
                for (zxid, data) in txns {
                    committed_pair(out, *zxid, data);
                }
            }
            SyncPlan::Snap { zxid } => {
                self.sync_mode = Some(PacketType::Snap);
                out.push(Outbound::Packet(packet(
                    PacketType::Snap,
                    *zxid,
                    Bytes::new(),
                )));
                out.push(Outbound::Snapshot { zxid: *zxid });
            }
        }
        plan.last_queued()
    }

    fn queue_newleader(
        &mut self,
        epoch: Epoch,
        membership: &Bytes,
        now_ms: u64,
        out: &mut Vec<Outbound>,
    ) {
        out.push(Outbound::Packet(packet(
            PacketType::Newleader,
            Zxid::new(epoch, 0),
            membership.clone(),
        )));
        self.set_state(HandlerState::AwaitingNewLeaderAck, now_ms);
    }

    /// The last of a SNAP's snapshot went out on the link. The initLimit
    /// wait for the NEWLEADER ack starts over here: ZooKeeper's handler
    /// writes the whole snapshot before its blocking read of the ack, whose
    /// socket timeout is initLimit, so streaming a large snapshot to a slow
    /// learner does not eat into the time the learner has to ack.
    pub fn snapshot_sent(&mut self, now_ms: u64) {
        if self.state == HandlerState::AwaitingNewLeaderAck {
            self.state_since_ms = self.state_since_ms.max(now_ms);
        }
    }

    /// The first packet after NEWLEADER must be an ACK. Returns whether it
    /// acks this epoch's NEWLEADER; an ACK naming another zxid is not
    /// counted, but (as in ZooKeeper) the learner still proceeds.
    pub fn on_newleader_ack(
        &mut self,
        pkt: &QuorumPacket,
        epoch: Epoch,
        now_ms: u64,
    ) -> Result<bool, ProtocolError> {
        expect(pkt, PacketType::Ack, "ACK of NEWLEADER")?;
        self.set_state(HandlerState::AwaitingStartup, now_ms);
        Ok(Zxid(pkt.zxid) == Zxid::new(epoch, 0))
    }

    /// UPTODATE: the learner may serve clients.
    pub fn up_to_date(&mut self, now_ms: u64) -> QuorumPacket {
        self.set_state(HandlerState::Broadcasting, now_ms);
        self.up_to_date_ms = Some(now_ms);
        // Its read timeout starts over: the next read is the first of the
        // broadcast phase.
        self.last_heard_ms = now_ms;
        packet(PacketType::Uptodate, Zxid(-1), Bytes::new())
    }

    /// A PROPOSAL went out to this (follower) learner.
    pub fn proposal_sent(&mut self, zxid: Zxid, now_ms: u64) {
        self.in_flight.push_back((zxid, now_ms));
    }

    /// ACK(zxid) covers every proposal `<= zxid`.
    pub fn acked(&mut self, zxid: Zxid) {
        while self.in_flight.front().is_some_and(|(z, _)| *z <= zxid) {
            self.in_flight.pop_front();
        }
    }

    /// The socket read timeout: initLimit before the NEWLEADER ack (the
    /// epoch waits included), syncLimit after UPTODATE. While waiting for
    /// the leader to start, ZooKeeper's handler is not reading; the leader's
    /// own NEWLEADER wait bounds that.
    pub fn read_timed_out(&self, now_ms: u64, limits: Limits) -> bool {
        let limit = match self.state {
            HandlerState::AwaitingStartup => return false,
            HandlerState::Broadcasting => limits.sync_ms,
            _ => limits.init_ms,
        };
        let since = self.last_heard_ms.max(self.state_since_ms);
        now_ms.saturating_sub(since) > limit
    }

    /// The oldest unacked proposal is older than syncLimit (checked at ping
    /// time; ZooKeeper's `SyncLimitCheck`). Age counts from UPTODATE at the
    /// earliest: the learner cannot ack before.
    pub fn transaction_timed_out(&self, now_ms: u64, limits: Limits) -> bool {
        let (Some(front), Some(start)) = (self.in_flight.front(), self.up_to_date_ms) else {
            return false;
        };
        now_ms.saturating_sub(front.1.max(start)) >= limits.sync_ms
    }

    /// ZooKeeper's `LearnerHandler.synced()`: counts toward the leader's
    /// quorum check.
    pub fn is_synced(&self, now_ms: u64) -> bool {
        now_ms <= self.ack_deadline_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zab_wire::QuorumVerifier;

    const LIMITS: Limits = Limits {
        init_ms: 10_000,
        sync_ms: 5_000,
    };

    fn info(kind: PacketType, sid: u64, accepted: u64, config_version: i64) -> QuorumPacket {
        let li = proto::LearnerInfo {
            sid,
            protocol_version: 0x10000,
            config_version,
            accepts_leader_durable: true,
        };
        packet(
            kind,
            Zxid::new(Epoch(accepted), 0),
            Bytes::from(li.encode_to_vec()),
        )
    }

    fn ack_epoch(last: Zxid, current: u64, already: bool) -> QuorumPacket {
        let ack = proto::AckEpoch {
            state: Some(proto::StateSummary {
                current_epoch: current,
                last_zxid: last.0,
            }),
            already_accepted: already,
        };
        packet(PacketType::Ackepoch, last, Bytes::from(ack.encode_to_vec()))
    }

    fn kinds(out: &[Outbound]) -> Vec<(i32, Zxid)> {
        out.iter()
            .map(|o| match o {
                Outbound::Packet(p) => (p.r#type, Zxid(p.zxid)),
                Outbound::Snapshot { zxid } => (-1, *zxid),
            })
            .collect()
    }

    fn z(e: u64, c: u32) -> Zxid {
        Zxid::new(Epoch(e), c)
    }

    #[test]
    fn registration_reads_learner_info_and_the_accepted_epoch() {
        let mut h = LearnerHandler::new(ConnId(1), 0, LIMITS);
        let reg = h
            .on_info(&info(PacketType::Observerinfo, 7, 4, 0), ServerId(1), 0, 0)
            .unwrap();
        assert_eq!(
            reg,
            Registration {
                sid: ServerId(7),
                kind: LearnerKind::Observer,
                accepted_epoch: Epoch(4),
                accepts_leader_durable: true,
            }
        );
        assert_eq!(h.state(), HandlerState::AwaitingEpoch);
        assert!(h.accepts_leader_durable());
    }

    /// An earlier zab's learner sends LearnerInfo without the field; the
    /// handler reads it as "does not understand LEADER_DURABLE".
    #[test]
    fn an_earlier_learner_does_not_accept_leader_durable() {
        let mut h = LearnerHandler::new(ConnId(1), 0, LIMITS);
        assert!(!h.accepts_leader_durable(), "unregistered");
        let li = proto::LearnerInfo {
            sid: 2,
            protocol_version: 0x10000,
            config_version: 0,
            ..Default::default()
        };
        let pkt = packet(
            PacketType::Followerinfo,
            Zxid::new(Epoch(1), 0),
            Bytes::from(li.encode_to_vec()),
        );
        let reg = h.on_info(&pkt, ServerId(1), 0, 0).unwrap();
        assert!(!reg.accepts_leader_durable);
        assert!(!h.accepts_leader_durable());
    }

    #[test]
    fn registration_refusals() {
        let mut h = LearnerHandler::new(ConnId(1), 0, LIMITS);
        let ping = packet(PacketType::Ping, Zxid::ZERO, Bytes::new());
        assert!(matches!(
            h.on_info(&ping, ServerId(1), 0, 0),
            Err(ProtocolError::Unexpected { .. })
        ));
        let garbage = packet(
            PacketType::Followerinfo,
            Zxid::ZERO,
            Bytes::from_static(&[0xff, 0xff, 0xff]),
        );
        assert!(matches!(
            h.on_info(&garbage, ServerId(1), 0, 0),
            Err(ProtocolError::Malformed { .. })
        ));
        assert_eq!(
            h.on_info(&info(PacketType::Followerinfo, 2, 1, 5), ServerId(1), 4, 0),
            Err(ProtocolError::ConfigAhead {
                learner: 5,
                leader: 4
            })
        );
        assert_eq!(
            h.on_info(&info(PacketType::Followerinfo, 1, 1, 0), ServerId(1), 0, 0),
            Err(ProtocolError::SidIsLeader(ServerId(1)))
        );
        assert_eq!(h.state(), HandlerState::AwaitingInfo);
    }

    #[test]
    fn ack_epoch_summary_and_already_accepted() {
        let mut h = LearnerHandler::new(ConnId(1), 0, LIMITS);
        let s = h.on_ack_epoch(&ack_epoch(z(3, 9), 3, false), 0).unwrap();
        assert_eq!(
            s,
            Some(StateSummary {
                current_epoch: Epoch(3),
                last_zxid: z(3, 9)
            })
        );
        assert_eq!(h.peer_last(), z(3, 9));
        let s = h.on_ack_epoch(&ack_epoch(z(3, 2), 3, true), 0).unwrap();
        assert_eq!(s, None);
        assert_eq!(h.peer_last(), z(3, 2));
        let wrong = packet(PacketType::Ack, z(3, 2), Bytes::new());
        assert!(h.on_ack_epoch(&wrong, 0).is_err());
    }

    fn registered(kind: PacketType) -> LearnerHandler {
        let mut h = LearnerHandler::new(ConnId(1), 0, LIMITS);
        h.on_info(&info(kind, 2, 1, 0), ServerId(1), 0, 0).unwrap();
        h.leader_info(Epoch(2), 0);
        h.on_ack_epoch(&ack_epoch(z(1, 3), 1, false), 0).unwrap();
        h
    }

    fn pipeline() -> Proposals<()> {
        let qv = QuorumVerifier::new([1, 2, 3].map(ServerId), []);
        let mut p = Proposals::new(qv, z(2, 0));
        for c in 1..=4 {
            p.propose(z(2, c), Bytes::from(vec![c as u8])).unwrap();
        }
        // 1 and 2 committed (2 not applied yet, 1 applied), 3 and 4 outstanding.
        p.ack(ServerId(1), z(2, 4));
        p.ack(ServerId(3), z(2, 2));
        p.applied(z(2, 1)).for_each(drop);
        p
    }

    #[test]
    fn diff_then_start_forwarding_then_newleader() {
        let mut h = registered(PacketType::Followerinfo);
        let plan = SyncPlan::Diff {
            to: z(2, 1),
            txns: vec![(z(1, 4), Bytes::new()), (z(2, 1), Bytes::new())],
        };
        let out = h.sync(plan, &pipeline(), Epoch(2), &Bytes::new(), 10);
        let (p, c, n) = (
            PacketType::Proposal as i32,
            PacketType::Commit as i32,
            PacketType::Newleader as i32,
        );
        assert_eq!(
            kinds(&out),
            vec![
                (PacketType::Diff as i32, z(2, 1)),
                (p, z(1, 4)),
                (c, z(1, 4)),
                (p, z(2, 1)),
                (c, z(2, 1)),
                // toBeApplied above the sync point: committed pair
                (p, z(2, 2)),
                (c, z(2, 2)),
                // outstanding: PROPOSAL only
                (p, z(2, 3)),
                (p, z(2, 4)),
                (n, z(2, 0)),
            ]
        );
        assert_eq!(h.state(), HandlerState::AwaitingNewLeaderAck);
        assert!(h.receives_broadcast());
        assert_eq!(h.in_flight(), 2);
        assert_eq!(h.sync_mode(), Some(PacketType::Diff));
    }

    #[test]
    fn observers_get_committed_txns_but_no_outstanding_proposals() {
        let mut h = registered(PacketType::Observerinfo);
        let out = h.sync(
            SyncPlan::Snap { zxid: z(2, 1) },
            &pipeline(),
            Epoch(2),
            &Bytes::new(),
            10,
        );
        assert_eq!(
            kinds(&out),
            vec![
                (PacketType::Snap as i32, z(2, 1)),
                (-1, z(2, 1)),
                (PacketType::Proposal as i32, z(2, 2)),
                (PacketType::Commit as i32, z(2, 2)),
                (PacketType::Newleader as i32, z(2, 0)),
            ]
        );
        assert_eq!(h.in_flight(), 0);
    }

    #[test]
    fn nothing_is_forwarded_twice_when_the_sync_point_covers_it() {
        let mut h = registered(PacketType::Followerinfo);
        // A TRUNC that already ends at the last proposal.
        let plan = SyncPlan::Trunc {
            to: z(2, 4),
            then: vec![],
        };
        let out = h.sync(plan, &pipeline(), Epoch(2), &Bytes::new(), 10);
        assert_eq!(
            kinds(&out),
            vec![
                (PacketType::Trunc as i32, z(2, 4)),
                (PacketType::Newleader as i32, z(2, 0))
            ]
        );
    }

    #[test]
    fn newleader_ack_and_uptodate() {
        let mut h = registered(PacketType::Followerinfo);
        h.sync(
            SyncPlan::Diff {
                to: z(1, 3),
                txns: vec![],
            },
            &pipeline(),
            Epoch(2),
            &Bytes::new(),
            0,
        );
        let ping = packet(PacketType::Ping, z(2, 0), Bytes::new());
        assert!(h.on_newleader_ack(&ping, Epoch(2), 0).is_err());
        let stale = packet(PacketType::Ack, z(1, 0), Bytes::new());
        assert_eq!(h.on_newleader_ack(&stale, Epoch(2), 0), Ok(false));
        let good = packet(PacketType::Ack, z(2, 0), Bytes::new());
        assert_eq!(h.on_newleader_ack(&good, Epoch(2), 0), Ok(true));
        let up = h.up_to_date(5);
        assert_eq!(up.r#type, PacketType::Uptodate as i32);
        assert_eq!(up.zxid, -1);
        assert_eq!(h.state(), HandlerState::Broadcasting);
    }

    #[test]
    fn liveness_rules() {
        let mut h = LearnerHandler::new(ConnId(1), 0, LIMITS);
        // Before the NEWLEADER ack: initLimit.
        assert!(!h.read_timed_out(10_000, LIMITS));
        assert!(h.read_timed_out(10_001, LIMITS));
        h.heard(9_000, LIMITS);
        assert!(!h.read_timed_out(15_000, LIMITS));
        // Initially synced for initLimit + syncLimit.
        assert!(h.is_synced(15_000));
        assert!(!h.is_synced(15_001));

        let mut h = registered(PacketType::Followerinfo);
        h.sync(
            SyncPlan::Diff {
                to: z(1, 3),
                txns: vec![],
            },
            &pipeline(),
            Epoch(2),
            &Bytes::new(),
            100,
        );
        h.on_newleader_ack(
            &packet(PacketType::Ack, z(2, 0), Bytes::new()),
            Epoch(2),
            200,
        )
        .unwrap();
        assert!(
            !h.read_timed_out(1_000_000, LIMITS),
            "not reading while the leader starts"
        );
        h.up_to_date(1_000);
        h.heard(1_000, LIMITS);
        assert!(h.is_synced(6_000) && !h.is_synced(6_001));
        assert!(!h.read_timed_out(6_000, LIMITS));
        assert!(h.read_timed_out(6_001, LIMITS));
        // Two proposals forwarded at sync (sent at 100): their age counts
        // from UPTODATE (1 000).
        assert_eq!(h.in_flight(), 2);
        assert!(!h.transaction_timed_out(5_999, LIMITS));
        assert!(h.transaction_timed_out(6_000, LIMITS));
        h.proposal_sent(z(2, 5), 4_000);
        h.acked(z(2, 4));
        assert_eq!(h.in_flight(), 1);
        assert!(!h.transaction_timed_out(8_999, LIMITS));
        assert!(h.transaction_timed_out(9_000, LIMITS));
        h.acked(z(2, 9));
        assert_eq!(h.in_flight(), 0);
        assert!(!h.transaction_timed_out(1_000_000, LIMITS));
    }

    /// A SNAP's initLimit wait for the ack counts from when the snapshot
    /// was written out, not from when the sync was queued: ZooKeeper reads
    /// the ack only after `serializeSnapshot` returned.
    #[test]
    fn the_newleader_ack_wait_restarts_once_the_snapshot_is_written() {
        let mut h = registered(PacketType::Followerinfo);
        h.sync(
            SyncPlan::Snap { zxid: z(2, 1) },
            &pipeline(),
            Epoch(2),
            &Bytes::new(),
            100,
        );
        assert_eq!(h.state(), HandlerState::AwaitingNewLeaderAck);
        // Streaming the snapshot took 9 s.
        h.snapshot_sent(9_100);
        assert!(!h.read_timed_out(19_100, LIMITS));
        assert!(h.read_timed_out(19_101, LIMITS));
        // Once acked, a late report changes nothing.
        h.on_newleader_ack(
            &packet(PacketType::Ack, z(2, 0), Bytes::new()),
            Epoch(2),
            19_000,
        )
        .unwrap();
        h.snapshot_sent(50_000);
        assert!(!h.read_timed_out(1_000_000, LIMITS));
    }

    /// One connection per server: a second registration of a server drops
    /// its first connection, and only the current connection's removal
    /// names the server (whose acks then stop counting).
    #[test]
    fn handlers_keep_one_connection_per_server() {
        let mut hs = Handlers::default();
        for c in [1, 2, 3] {
            hs.open(ConnId(c), 0, LIMITS);
        }
        let register = |hs: &mut Handlers, c: u64, sid: u64| {
            let h = hs.get_mut(&ConnId(c)).unwrap();
            h.on_info(
                &info(PacketType::Followerinfo, sid, 1, 0),
                ServerId(9),
                0,
                0,
            )
            .unwrap();
            hs.register(ConnId(c), ServerId(sid))
        };
        assert_eq!(register(&mut hs, 1, 5), None);
        assert_eq!(register(&mut hs, 3, 6), None);
        // Server 5 again, on connection 2: connection 1 is dead.
        assert_eq!(register(&mut hs, 2, 5), Some(ConnId(1)));
        assert!(!hs.contains_key(&ConnId(1)));
        let (_, current) = hs.remove(ConnId(2)).unwrap();
        assert_eq!(current, Some(ServerId(5)));
        assert!(hs.remove(ConnId(2)).is_none());
        // Silent past initLimit before the sync: connection 3.
        assert_eq!(hs.silent(10_001, LIMITS), [ConnId(3)]);
        assert!(hs.silent(10_000, LIMITS).is_empty());
    }

    #[test]
    fn what_a_learner_says_in_sync_is_decoded_or_refused() {
        let touches = proto::SessionTouches {
            sessions: vec![proto::SessionEntry {
                session_id: 7,
                timeout: 4000,
            }],
        };
        let ping = packet(
            PacketType::Ping,
            z(2, 3),
            Bytes::from(touches.encode_to_vec()),
        );
        assert_eq!(
            FromLearner::decode(&ping),
            Ok(FromLearner::Touches(vec![(SessionId(7), 4000)]))
        );
        let ack = packet(PacketType::Ack, z(2, 3), Bytes::new());
        assert_eq!(FromLearner::decode(&ack), Ok(FromLearner::Ack(z(2, 3))));
        let revalidate = proto::Revalidate {
            session_id: 8,
            timeout: 3000,
        };
        let p = packet(
            PacketType::Revalidate,
            Zxid(-1),
            Bytes::from(revalidate.encode_to_vec()),
        );
        assert_eq!(
            FromLearner::decode(&p),
            Ok(FromLearner::Revalidate {
                session: SessionId(8),
                timeout: 3000
            })
        );
        let uptodate = packet(PacketType::Uptodate, Zxid(-1), Bytes::new());
        assert_eq!(
            FromLearner::decode(&uptodate),
            Ok(FromLearner::Other(PacketType::Uptodate as i32))
        );
        let garbage = packet(
            PacketType::Request,
            Zxid(-1),
            Bytes::from_static(b"\xff\xff"),
        );
        assert!(matches!(
            FromLearner::decode(&garbage),
            Err(ProtocolError::Malformed { .. })
        ));
    }
}
