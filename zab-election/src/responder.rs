//! What a server that is not LOOKING answers to election traffic
//! (ZooKeeper's `WorkerReceiver` while the peer is FOLLOWING, LEADING or
//! OBSERVING).
//!
//! A settled server runs no election, but it must still tell LOOKING peers
//! who leads: that is how a server joining an established ensemble (or
//! restarting into one) learns the leader, and how observers find it.

use zab_wire::{Epoch, QuorumVerifier, ServerId};

use crate::vote::{Notification, ServerState, Vote};

/// The current vote of a settled server and the replies it makes.
#[derive(Clone, Debug)]
pub struct Responder {
    me: ServerId,
    qv: QuorumVerifier,
    state: ServerState,
    vote: Vote,
    config_version: i64,
}

impl Responder {
    /// `vote` is the vote the election ended on; its `state` is replaced by
    /// `state`, the role this server now plays.
    pub fn new(
        me: ServerId,
        qv: QuorumVerifier,
        state: ServerState,
        vote: Vote,
        config_version: i64,
    ) -> Responder {
        Responder {
            me,
            qv,
            state,
            vote: Vote { state, ..vote },
            config_version,
        }
    }

    /// The reply to `n`, if any (reference G, "Replies from the receiver
    /// thread"): a LOOKING voter is told our current vote; a non-voter is
    /// told it whatever its state, because observers learn the leader only
    /// from such replies. Settled voters talking among themselves get no
    /// answer, which keeps two settled servers from echoing forever.
    pub fn on_notification(&self, n: &Notification) -> Option<Notification> {
        if n.sender == self.me {
            return None;
        }
        let voter = self.qv.is_voter(n.sender);
        if voter && n.vote.state != ServerState::Looking {
            return None;
        }
        Some(self.current())
    }

    /// Our current vote as a notification (state = our state).
    pub fn current(&self) -> Notification {
        Notification {
            sender: self.me,
            vote: self.vote,
            config_version: self.config_version,
        }
    }

    pub fn state(&self) -> ServerState {
        self.state
    }

    pub fn vote(&self) -> &Vote {
        &self.vote
    }

    /// After leader sync completes the role loop moves the vote's peer epoch
    /// to the new epoch (ZooKeeper's `QuorumPeer.updateElectionVote`), so
    /// that servers joining later compare epochs that agree with the ones
    /// the rest of the ensemble reports.
    pub fn set_peer_epoch(&mut self, epoch: Epoch) {
        self.vote.peer_epoch = epoch;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zab_wire::Zxid;

    fn qv() -> QuorumVerifier {
        QuorumVerifier::new([1, 2, 3].map(ServerId), [ServerId(4)])
    }

    fn decided() -> Vote {
        Vote {
            leader: ServerId(3),
            zxid: Zxid(0x1_0000_0005),
            election_epoch: 2,
            peer_epoch: Epoch(1),
            state: ServerState::Looking,
        }
    }

    fn from(sender: u64, state: ServerState) -> Notification {
        Notification {
            sender: ServerId(sender),
            vote: Vote {
                leader: ServerId(sender),
                zxid: Zxid(0),
                election_epoch: 1,
                peer_epoch: Epoch(0),
                state,
            },
            config_version: 0,
        }
    }

    #[test]
    fn settled_server_answers_looking_voter_with_its_vote_and_state() {
        let r = Responder::new(ServerId(1), qv(), ServerState::Following, decided(), 0);
        let reply = r.on_notification(&from(2, ServerState::Looking));
        let Some(reply) = reply else {
            panic!("a LOOKING voter must be answered");
        };
        assert_eq!(reply.sender, ServerId(1));
        assert_eq!(reply.vote.state, ServerState::Following);
        assert_eq!(reply.vote.leader, ServerId(3));
        assert_eq!(reply.vote.election_epoch, 2);
    }

    #[test]
    fn settled_voters_do_not_answer_each_other() {
        let r = Responder::new(ServerId(1), qv(), ServerState::Following, decided(), 0);
        assert_eq!(r.on_notification(&from(2, ServerState::Following)), None);
        assert_eq!(r.on_notification(&from(3, ServerState::Leading)), None);
    }

    #[test]
    fn non_voters_are_always_answered() {
        let r = Responder::new(ServerId(3), qv(), ServerState::Leading, decided(), 0);
        for state in [ServerState::Looking, ServerState::Observing] {
            let reply = r.on_notification(&from(4, state));
            assert_eq!(reply.map(|n| n.vote.state), Some(ServerState::Leading));
        }
    }

    #[test]
    fn peer_epoch_moves_after_sync() {
        let mut r = Responder::new(ServerId(3), qv(), ServerState::Leading, decided(), 0);
        r.set_peer_epoch(Epoch(2));
        let reply = r.on_notification(&from(1, ServerState::Looking));
        assert_eq!(reply.map(|n| n.vote.peer_epoch), Some(Epoch(2)));
    }
}
