//! Votes, notifications and the total order on votes (reference G).
//!
//! A [`Vote`] names a proposed leader together with what makes it a good
//! leader (its last logged zxid and its `currentEpoch`), the election round
//! it was cast in, and the state of the server that holds it. A
//! [`Notification`] is a vote on the wire, tagged with its sender.

use thiserror::Error;
use zab_wire::proto;
use zab_wire::{Epoch, ServerId, Zxid};

/// A server's role, as carried in every notification (ZooKeeper's
/// `QuorumPeer.ServerState`; wire values LOOKING 0, FOLLOWING 1, LEADING 2,
/// OBSERVING 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ServerState {
    Looking,
    Following,
    Leading,
    Observing,
}

impl From<ServerState> for proto::PeerState {
    fn from(s: ServerState) -> Self {
        match s {
            ServerState::Looking => proto::PeerState::Looking,
            ServerState::Following => proto::PeerState::Following,
            ServerState::Leading => proto::PeerState::Leading,
            ServerState::Observing => proto::PeerState::Observing,
        }
    }
}

impl From<proto::PeerState> for ServerState {
    fn from(s: proto::PeerState) -> Self {
        match s {
            proto::PeerState::Looking => ServerState::Looking,
            proto::PeerState::Following => ServerState::Following,
            proto::PeerState::Leading => ServerState::Leading,
            proto::PeerState::Observing => ServerState::Observing,
        }
    }
}

/// A vote: "`leader`, whose log ends at `zxid` and whose `currentEpoch` is
/// `peer_epoch`, should lead", cast in round `election_epoch` by a server in
/// `state`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Vote {
    pub leader: ServerId,
    pub zxid: Zxid,
    /// The logical clock of the election round the vote belongs to.
    pub election_epoch: u64,
    pub peer_epoch: Epoch,
    pub state: ServerState,
}

impl Vote {
    /// The leader a non-voter (observer) proposes before it has heard
    /// anything: ZooKeeper's `Long.MIN_VALUE` (`getInitId`), which is never a
    /// voter and so never wins the total order.
    pub const NON_VOTER_LEADER: ServerId = ServerId(i64::MIN as u64);
    /// The zxid a non-voter proposes initially (`getInitLastLoggedZxid`).
    pub const NON_VOTER_ZXID: Zxid = Zxid(i64::MIN);

    /// Whether two votes count as the same vote when tallying a quorum
    /// (ZooKeeper's `Vote.equals`).
    ///
    /// If either side is LOOKING, every field of the proposal must match
    /// (leader, zxid, round, peer epoch). Between servers that are out of
    /// the election (FOLLOWING / LEADING / OBSERVING) only the leader and
    /// its epoch are compared: their zxid and round may legitimately differ
    /// (ZOOKEEPER-1805; reference G "compared by leader id and peerEpoch").
    pub fn agrees_with(&self, other: &Vote) -> bool {
        if self.state == ServerState::Looking || other.state == ServerState::Looking {
            self.leader == other.leader
                && self.zxid == other.zxid
                && self.election_epoch == other.election_epoch
                && self.peer_epoch == other.peer_epoch
        } else {
            self.leader == other.leader && self.peer_epoch == other.peer_epoch
        }
    }
}

/// The total order on proposals (ZooKeeper's `totalOrderPredicate`): does
/// the proposal `(new_leader, new_zxid, new_epoch)` beat the current one?
///
/// Higher peer epoch first, then higher zxid, then higher server id. A
/// proposal for a server that is not a voter (`is_voter(new_leader)` false,
/// i.e. weight 0) never wins.
pub fn beats(
    is_voter: impl Fn(ServerId) -> bool,
    new: (ServerId, Zxid, Epoch),
    cur: (ServerId, Zxid, Epoch),
) -> bool {
    let (new_id, new_zxid, new_epoch) = new;
    let (cur_id, cur_zxid, cur_epoch) = cur;
    if !is_voter(new_id) {
        return false;
    }
    (new_epoch, new_zxid, new_id) > (cur_epoch, cur_zxid, cur_id)
}

/// A vote on the wire, tagged with its sender (ZooKeeper's
/// `FastLeaderElection.Notification`). `vote.state` is the *sender's* state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Notification {
    pub sender: ServerId,
    pub vote: Vote,
    /// The version of the sender's membership configuration (the
    /// `version=<hex>` line of the config text ZooKeeper sends).
    pub config_version: i64,
}

/// Why a protobuf notification could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NotificationError {
    /// The state is not one of LOOKING/FOLLOWING/LEADING/OBSERVING;
    /// ZooKeeper's receiver thread drops such a message.
    #[error("notification from {sender} has unknown peer state {state}")]
    UnknownState { sender: ServerId, state: i32 },
    /// A SASL step (`quorum.auth.*`) once the link's exchange was over.
    #[error("a SASL step from {sender} after the link opened")]
    UnexpectedAuth { sender: ServerId },
}

impl TryFrom<proto::Notification> for Notification {
    type Error = NotificationError;

    fn try_from(p: proto::Notification) -> Result<Self, Self::Error> {
        let sender = ServerId(p.sender);
        if p.auth.is_some() {
            return Err(NotificationError::UnexpectedAuth { sender });
        }
        let state = proto::PeerState::try_from(p.state)
            .map_err(|_| NotificationError::UnknownState {
                sender,
                state: p.state,
            })?
            .into();
        Ok(Notification {
            sender,
            vote: Vote {
                leader: ServerId(p.leader),
                zxid: Zxid(p.zxid),
                election_epoch: p.election_epoch,
                peer_epoch: Epoch(p.peer_epoch),
                state,
            },
            config_version: p.config_version,
        })
    }
}

impl From<Notification> for proto::Notification {
    fn from(n: Notification) -> Self {
        proto::Notification {
            state: proto::PeerState::from(n.vote.state) as i32,
            leader: n.vote.leader.0,
            zxid: n.vote.zxid.0,
            election_epoch: n.vote.election_epoch,
            peer_epoch: n.vote.peer_epoch.0,
            sender: n.sender.0,
            config_version: n.config_version,
            auth: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn voters(id: ServerId) -> bool {
        id.0 <= 5
    }

    fn p(id: u64, zxid: i64, epoch: u64) -> (ServerId, Zxid, Epoch) {
        (ServerId(id), Zxid(zxid), Epoch(epoch))
    }

    #[test]
    fn total_order_is_epoch_then_zxid_then_sid() {
        // Higher peer epoch wins even with a lower zxid and sid.
        assert!(beats(voters, p(1, 0, 3), p(5, 100, 2)));
        assert!(!beats(voters, p(5, 100, 2), p(1, 0, 3)));
        // Same epoch: higher zxid wins even with a lower sid.
        assert!(beats(voters, p(1, 10, 2), p(5, 9, 2)));
        assert!(!beats(voters, p(5, 9, 2), p(1, 10, 2)));
        // Same epoch and zxid: the higher sid breaks the tie.
        assert!(beats(voters, p(3, 10, 2), p(2, 10, 2)));
        assert!(!beats(voters, p(2, 10, 2), p(3, 10, 2)));
        // A vote never beats itself.
        assert!(!beats(voters, p(3, 10, 2), p(3, 10, 2)));
    }

    #[test]
    fn non_voter_proposal_never_wins() {
        assert!(!beats(voters, p(9, 1000, 9), p(1, 0, 0)));
        // ...while any voter beats a non-voter's initial proposal.
        assert!(beats(
            voters,
            p(1, 0, 0),
            (Vote::NON_VOTER_LEADER, Vote::NON_VOTER_ZXID, Epoch(0))
        ));
    }

    fn vote(leader: u64, zxid: i64, round: u64, epoch: u64, state: ServerState) -> Vote {
        Vote {
            leader: ServerId(leader),
            zxid: Zxid(zxid),
            election_epoch: round,
            peer_epoch: Epoch(epoch),
            state,
        }
    }

    #[test]
    fn looking_votes_agree_only_on_every_field() {
        use ServerState::*;
        let a = vote(3, 10, 1, 2, Looking);
        assert!(a.agrees_with(&vote(3, 10, 1, 2, Looking)));
        assert!(!a.agrees_with(&vote(3, 11, 1, 2, Looking)));
        assert!(!a.agrees_with(&vote(3, 10, 2, 2, Looking)));
        assert!(!a.agrees_with(&vote(3, 10, 1, 3, Looking)));
        // One LOOKING side is enough to demand the full comparison.
        assert!(!a.agrees_with(&vote(3, 10, 4, 2, Following)));
    }

    #[test]
    fn settled_votes_agree_on_leader_and_epoch() {
        use ServerState::*;
        let a = vote(3, 10, 1, 2, Following);
        assert!(a.agrees_with(&vote(3, 99, 7, 2, Leading)));
        assert!(!a.agrees_with(&vote(3, 10, 1, 3, Leading)));
        assert!(!a.agrees_with(&vote(2, 10, 1, 2, Leading)));
    }

    #[test]
    fn proto_round_trip() {
        let n = Notification {
            sender: ServerId(2),
            vote: vote(3, -1, 7, 4, ServerState::Observing),
            config_version: 0x1_0000_0000,
        };
        let p = proto::Notification::from(n);
        assert_eq!(p.state, 3);
        assert_eq!(Notification::try_from(p), Ok(n));
    }

    #[test]
    fn unknown_state_is_an_error() {
        let p = proto::Notification {
            state: 9,
            sender: 4,
            ..Default::default()
        };
        assert_eq!(
            Notification::try_from(p),
            Err(NotificationError::UnknownState {
                sender: ServerId(4),
                state: 9
            })
        );
    }
}
