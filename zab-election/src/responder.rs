//! What a server that is not LOOKING answers to election traffic
//! (ZooKeeper's `WorkerReceiver` while the peer is FOLLOWING, LEADING or
//! OBSERVING).
//!
//! A settled server runs no election, but it must still tell LOOKING peers
//! who leads: that is how a server joining an established ensemble (or
//! restarting into one) learns the leader, and how observers find it.

use std::collections::BTreeSet;

use zab_wire::{Epoch, QuorumVerifier, ServerId, Zxid};

use crate::vote::{beats, Notification, ServerState, Vote};

/// The current vote of a settled server and the replies it makes.
#[derive(Clone, Debug)]
pub struct Responder {
    me: ServerId,
    qv: QuorumVerifier,
    state: ServerState,
    vote: Vote,
    config_version: i64,
    /// The vote decided (leader, zxid, peer epoch), as it was before any
    /// [`Responder::set_peer_epoch`]; the round it was decided in and the
    /// voters whose LOOKING votes of that round backed it and have not
    /// deserted since (see [`Responder::lost_quorum_after`]).
    decided: (ServerId, Zxid, Epoch),
    round: u64,
    supporters: BTreeSet<ServerId>,
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
            decided: (vote.leader, vote.zxid, vote.peer_epoch),
            round: vote.election_epoch,
            supporters: BTreeSet::new(),
        }
    }

    /// Records that the decision was made in round `round` on the LOOKING
    /// votes of `supporters` (other voters whose vote agreed with ours).
    pub fn with_supporters(
        mut self,
        round: u64,
        supporters: impl IntoIterator<Item = ServerId>,
    ) -> Responder {
        self.round = round;
        self.supporters = supporters
            .into_iter()
            .filter(|&s| s != self.me && self.qv.is_voter(s))
            .collect();
        self
    }

    /// Takes `n` into account and says whether the decision has lost its
    /// quorum: the voters still backing it (this server and the supporters
    /// that have not deserted) no longer form one.
    ///
    /// A supporter deserts when it says it is still LOOKING in the round
    /// of the decision and backs a better vote than the one decided. Votes
    /// within a round only ever get better, and a voter that had decided
    /// for our leader would say FOLLOWING or LEADING, not LOOKING; so it
    /// heard a better vote before it decided and will not join us. A role
    /// that is not yet established (a leader still gathering its quorum, a
    /// learner not yet accepted by its leader) should then look again
    /// rather than wait out `initLimit` alone.
    ///
    /// zab, not ZooKeeper: ZooKeeper's unconditional finalize wait makes
    /// this split rare, and when it happens the server waits out its
    /// timeouts. zab cuts the wait short when the only voters unheard are
    /// gone (a crashed leader), which leaves a window: the crashed server
    /// restarts and reaches one survivor, whose vote switches to its better
    /// one just after the other survivor decided.
    pub fn lost_quorum_after(&mut self, n: &Notification) -> bool {
        let deserts = n.vote.state == ServerState::Looking
            && n.vote.election_epoch == self.round
            && beats(
                |id| self.qv.is_voter(id),
                (n.vote.leader, n.vote.zxid, n.vote.peer_epoch),
                self.decided,
            );
        if !deserts || !self.supporters.remove(&n.sender) {
            return false;
        }
        let backing = self.supporters.iter().chain([&self.me]);
        !self.qv.contains_quorum(backing)
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

    fn looking(sender: u64, leader: u64, zxid: i64, round: u64) -> Notification {
        let mut n = from(sender, ServerState::Looking);
        n.vote = Vote {
            leader: ServerId(leader),
            zxid: Zxid(zxid),
            election_epoch: round,
            peer_epoch: Epoch(1),
            state: ServerState::Looking,
        };
        n
    }

    #[test]
    fn only_a_counted_voter_backing_a_better_vote_in_the_same_round_deserts() {
        // Decided for 3 at zxid 0x1_0000_0005 in round 2 on the votes of 1
        // and 3; observer 4 cannot be a supporter.
        let supporters = [ServerId(1), ServerId(3), ServerId(4)];
        let fresh = || {
            Responder::new(ServerId(3), qv(), ServerState::Leading, decided(), 0)
                .with_supporters(2, supporters)
        };
        let better = 0x1_0000_0006;
        for (n, why) in [
            (looking(2, 2, better, 2), "2 was not counted"),
            (looking(4, 2, better, 2), "an observer"),
            (looking(1, 2, better, 3), "another round"),
            (looking(1, 2, 0x1_0000_0004, 2), "a worse vote"),
            (looking(1, 3, 0x1_0000_0005, 2), "our own vote"),
        ] {
            let mut r = fresh();
            assert!(!r.lost_quorum_after(&n), "{why}");
            // 1 still backs us: its desertion now still counts.
            assert!(r.lost_quorum_after(&looking(1, 2, better, 2)), "{why}");
        }
        let mut r = fresh();
        let mut following = looking(1, 2, better, 2);
        following.vote.state = ServerState::Following;
        assert!(!r.lost_quorum_after(&following), "a settled sender");
    }

    #[test]
    fn the_quorum_is_lost_only_when_too_few_backers_are_left() {
        let five = QuorumVerifier::new([1, 2, 3, 4, 5].map(ServerId), []);
        // 3 decided on the votes of 1, 2 and 4: four of five backing.
        let mut r = Responder::new(ServerId(3), five, ServerState::Leading, decided(), 0)
            .with_supporters(2, [1, 2, 4].map(ServerId));
        let better = 0x1_0000_0006;
        assert!(
            !r.lost_quorum_after(&looking(1, 2, better, 2)),
            "3 of 5 left"
        );
        assert!(!r.lost_quorum_after(&looking(1, 2, better, 2)), "1 again");
        assert!(
            r.lost_quorum_after(&looking(4, 2, better, 2)),
            "2 of 5 left"
        );
    }

    #[test]
    fn a_responder_without_supporters_never_loses_its_quorum() {
        let mut r = Responder::new(ServerId(1), qv(), ServerState::Following, decided(), 0);
        assert!(!r.lost_quorum_after(&looking(2, 2, 0x2_0000_0000, 2)));
    }

    #[test]
    fn desertion_compares_with_the_vote_decided_not_the_synced_epoch() {
        let mut r = Responder::new(ServerId(3), qv(), ServerState::Leading, decided(), 0)
            .with_supporters(2, [ServerId(1)]);
        r.set_peer_epoch(Epoch(2));
        // Peer epoch 1 and a higher zxid still beats the decided vote.
        assert!(r.lost_quorum_after(&looking(1, 2, 0x1_0000_0006, 2)));
    }

    #[test]
    fn peer_epoch_moves_after_sync() {
        let mut r = Responder::new(ServerId(3), qv(), ServerState::Leading, decided(), 0);
        r.set_peer_epoch(Epoch(2));
        let reply = r.on_notification(&from(1, ServerState::Looking));
        assert_eq!(reply.map(|n| n.vote.peer_epoch), Some(Epoch(2)));
    }
}
