//! The client-facing side of a learner's link to its leader: forwarded
//! writes and syncs, session revalidations, and the session touches
//! reported in every PING reply (reference F.5, F.8).
//!
//! Requests made before UPTODATE are held back and sent once the learner is
//! broadcasting: ZooKeeper's `LearnerHandler` only reads REQUEST and
//! REVALIDATE packets after the sync, and a learner does not serve clients
//! before then anyway.

use std::collections::{BTreeMap, VecDeque};

use zab_wire::jute::op;
use zab_wire::proto::{ForwardedRequest, QuorumPacket, RevalidateReply, SessionEntry};
use zab_wire::SessionId;

use crate::LearnerAction;

#[derive(Debug, Default)]
pub(crate) struct ClientRelay {
    /// Sessions touched since the last PING reply, with their timeout
    /// (ZooKeeper's `LearnerSessionTracker.touchTable`).
    touches: BTreeMap<SessionId, i32>,
    /// Forwarded syncs waiting for the leader's SYNC, in forwarding order.
    syncs: VecDeque<ForwardedRequest>,
    /// Revalidations waiting for the leader's REVALIDATE, by session.
    revalidations: BTreeMap<SessionId, usize>,
    /// Packets held back until UPTODATE.
    held_back: Vec<QuorumPacket>,
}

impl ClientRelay {
    pub fn touch(&mut self, session: SessionId, timeout_ms: i32) {
        self.touches.insert(session, timeout_ms);
    }

    /// The touches to report in a PING reply; the table starts afresh.
    pub fn take_touches(&mut self) -> Vec<SessionEntry> {
        std::mem::take(&mut self.touches)
            .into_iter()
            .map(|(id, timeout)| SessionEntry {
                session_id: id.0,
                timeout,
            })
            .collect()
    }

    /// Records a request about to be forwarded; syncs wait for their SYNC.
    pub fn note_forward(&mut self, req: &ForwardedRequest) {
        if req.op == op::SYNC {
            self.syncs.push_back(req.clone());
        }
    }

    pub fn note_revalidate(&mut self, session: SessionId) {
        *self.revalidations.entry(session).or_default() += 1;
    }

    /// Sends now, or holds back until UPTODATE.
    pub fn send_or_hold(&mut self, serving: bool, p: QuorumPacket) -> Vec<LearnerAction> {
        if serving {
            vec![LearnerAction::Send(p)]
        } else {
            self.held_back.push(p);
            Vec::new()
        }
    }

    /// The packets held back before UPTODATE, in request order.
    pub fn release_held_back(&mut self) -> impl Iterator<Item = LearnerAction> + '_ {
        self.held_back.drain(..).map(LearnerAction::Send)
    }

    /// The leader's SYNC. It carries the forwarded request; if it does not
    /// (an empty or undecodable payload) the oldest pending sync is the one
    /// answered, as ZooKeeper's `FollowerZooKeeperServer.sync` assumes (the
    /// link is FIFO).
    /// A SYNC that answers none of this server's own syncs is handed back
    /// as [`LearnerAction::Unclaimed`]: an observer's, when this follower
    /// relays for observers.
    pub fn on_sync(
        &mut self,
        answered: Option<ForwardedRequest>,
        packet: QuorumPacket,
    ) -> Option<LearnerAction> {
        let pos = match &answered {
            Some(a) => self
                .syncs
                .iter()
                .position(|s| s.session_id == a.session_id && s.cxid == a.cxid),
            None => (!self.syncs.is_empty()).then_some(0),
        };
        match pos.and_then(|i| self.syncs.remove(i)) {
            Some(req) => Some(LearnerAction::SyncDone { req }),
            None => Some(LearnerAction::Unclaimed(packet)),
        }
    }

    /// The answer to a REVALIDATE; one for a session this server did not
    /// revalidate itself is handed back as [`LearnerAction::Unclaimed`].
    pub fn on_revalidate_reply(
        &mut self,
        reply: RevalidateReply,
        packet: QuorumPacket,
    ) -> Option<LearnerAction> {
        let session = SessionId(reply.session_id);
        match self.revalidations.get_mut(&session) {
            Some(n) => {
                *n -= 1;
                if *n == 0 {
                    self.revalidations.remove(&session);
                }
                Some(LearnerAction::RevalidateResult {
                    session,
                    valid: reply.valid,
                })
            }
            None => Some(LearnerAction::Unclaimed(packet)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn sync_req(session: i64, cxid: i32) -> ForwardedRequest {
        ForwardedRequest {
            session_id: session,
            cxid,
            op: op::SYNC,
            body: Bytes::from_static(b"\0\0\0\x01/"),
            origin: 0,
        }
    }

    #[test]
    fn touches_keep_the_latest_timeout_and_reset_after_a_ping() {
        let mut r = ClientRelay::default();
        r.touch(SessionId(2), 4000);
        r.touch(SessionId(1), 3000);
        r.touch(SessionId(2), 5000);
        let t = r.take_touches();
        assert_eq!(
            t.iter()
                .map(|e| (e.session_id, e.timeout))
                .collect::<Vec<_>>(),
            [(1, 3000), (2, 5000)]
        );
        assert!(r.take_touches().is_empty());
    }

    #[test]
    fn sync_answers_match_by_session_and_cxid_or_fall_back_to_fifo() {
        let mut r = ClientRelay::default();
        for (s, c) in [(1, 10), (2, 20), (3, 30)] {
            r.note_forward(&sync_req(s, c));
        }
        // Non-sync requests are not waited for.
        r.note_forward(&ForwardedRequest {
            op: op::CREATE,
            ..sync_req(9, 9)
        });
        let sync = QuorumPacket::default;
        assert_eq!(
            r.on_sync(Some(sync_req(2, 20)), sync()),
            Some(LearnerAction::SyncDone {
                req: sync_req(2, 20)
            })
        );
        assert_eq!(
            r.on_sync(None, sync()),
            Some(LearnerAction::SyncDone {
                req: sync_req(1, 10)
            })
        );
        // Not this server's: handed back, e.g. for an observer it hosts.
        let other = QuorumPacket {
            zxid: 99,
            ..QuorumPacket::default()
        };
        assert_eq!(
            r.on_sync(Some(sync_req(9, 9)), other.clone()),
            Some(LearnerAction::Unclaimed(other.clone()))
        );
        assert_eq!(
            r.on_sync(None, sync()),
            Some(LearnerAction::SyncDone {
                req: sync_req(3, 30)
            })
        );
        assert_eq!(
            r.on_sync(None, other.clone()),
            Some(LearnerAction::Unclaimed(other))
        );
    }

    #[test]
    fn revalidate_replies_for_pending_sessions_and_the_rest_handed_back() {
        let mut r = ClientRelay::default();
        r.note_revalidate(SessionId(7));
        let reply = |valid| RevalidateReply {
            session_id: 7,
            valid,
        };
        let p = QuorumPacket {
            zxid: 5,
            ..QuorumPacket::default()
        };
        assert_eq!(
            r.on_revalidate_reply(reply(false), p.clone()),
            Some(LearnerAction::RevalidateResult {
                session: SessionId(7),
                valid: false
            })
        );
        assert_eq!(
            r.on_revalidate_reply(reply(true), p.clone()),
            Some(LearnerAction::Unclaimed(p))
        );
    }
}
