//! One round of FastLeaderElection (ZooKeeper's `lookForLeader`) as a pure
//! state machine: notifications and timer ticks in, messages to send and
//! the decision out. No clock is read and nothing is random: time is the
//! `now_ms` the caller passes in.

use std::collections::BTreeMap;

use zab_wire::{Epoch, QuorumVerifier, ServerId, Zxid};

use crate::responder::Responder;
use crate::vote::{beats, Notification, ServerState, Vote};

/// How long a server that sees a quorum for its proposal keeps listening
/// for a better vote before deciding (`finalizeWait`). It is also the first
/// notification timeout (`minNotificationInterval`).
pub const FINALIZE_WAIT_MS: u64 = 200;
/// Cap on the doubling notification timeout
/// (`zookeeper.fastleader.maxNotificationInterval`).
pub const MAX_NOTIFICATION_INTERVAL_MS: u64 = 60_000;

/// What the core asks its shell to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Send `n` to server `to`.
    Send { to: ServerId, n: Notification },
    /// The round is over: this server now plays `state` under `vote.leader`.
    /// Emitted once; `vote.state` equals `state`.
    Decided { state: ServerState, vote: Vote },
}

/// The proposal a LOOKING server currently backs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Proposal {
    leader: ServerId,
    zxid: Zxid,
    peer_epoch: Epoch,
}

impl Proposal {
    fn key(self) -> (ServerId, Zxid, Epoch) {
        (self.leader, self.zxid, self.peer_epoch)
    }
}

/// One election round of one server.
#[derive(Clone, Debug)]
pub struct Election {
    me: ServerId,
    qv: QuorumVerifier,
    config_version: i64,
    /// This server's own vote for itself (or the non-voter placeholder).
    init: Proposal,
    proposal: Proposal,
    logical_clock: u64,
    /// Votes of the current round, by sender (`recvset`).
    recv_set: BTreeMap<ServerId, Vote>,
    /// Votes of settled (FOLLOWING / LEADING) servers from any round
    /// (`outofelection`).
    out_of_election: BTreeMap<ServerId, Vote>,
    /// The vote non-voters are answered with while we look (ZooKeeper's
    /// `QuorumPeer.getCurrentVote`, the last vote this server settled on).
    current_vote: Vote,
    /// Current notification timeout, doubling on every expiry.
    not_timeout_ms: u64,
    /// When the current wait for a notification expires.
    poll_deadline_ms: u64,
    /// Set while a quorum backs the proposal and we wait for a better vote.
    finalize_deadline_ms: Option<u64>,
    decided: Option<Responder>,
}

impl Election {
    /// Starts a round (reference G "Logical clock", "Initial vote"): bumps
    /// `logical_clock`, votes for itself — a non-voter votes for nobody — and
    /// sends that vote to every voter. The membership's config version is 0;
    /// see [`Election::with_config_version`].
    pub fn new(
        me: ServerId,
        qv: QuorumVerifier,
        last_logged_zxid: Zxid,
        current_epoch: Epoch,
        logical_clock: u64,
        now_ms: u64,
    ) -> (Election, Vec<Output>) {
        Election::with_config_version(
            me,
            qv,
            0,
            last_logged_zxid,
            current_epoch,
            logical_clock,
            now_ms,
        )
    }

    /// [`Election::new`] for a membership whose config version is
    /// `config_version` (carried in every notification sent).
    pub fn with_config_version(
        me: ServerId,
        qv: QuorumVerifier,
        config_version: i64,
        last_logged_zxid: Zxid,
        current_epoch: Epoch,
        logical_clock: u64,
        now_ms: u64,
    ) -> (Election, Vec<Output>) {
        // Observers propose Long.MIN_VALUE for the leader and zxid
        // (`getInitId`, `getInitLastLoggedZxid`), so that any voter's vote
        // beats theirs.
        let init = if qv.is_voter(me) {
            Proposal {
                leader: me,
                zxid: last_logged_zxid,
                peer_epoch: current_epoch,
            }
        } else {
            Proposal {
                leader: Vote::NON_VOTER_LEADER,
                zxid: Vote::NON_VOTER_ZXID,
                peer_epoch: Epoch(0),
            }
        };
        let clock = logical_clock.wrapping_add(1);
        let mut e = Election {
            me,
            qv,
            config_version,
            init,
            proposal: init,
            logical_clock: clock,
            recv_set: BTreeMap::new(),
            out_of_election: BTreeMap::new(),
            current_vote: Vote {
                leader: me,
                zxid: last_logged_zxid,
                election_epoch: clock,
                peer_epoch: current_epoch,
                state: ServerState::Looking,
            },
            not_timeout_ms: FINALIZE_WAIT_MS,
            poll_deadline_ms: now_ms.saturating_add(FINALIZE_WAIT_MS),
            finalize_deadline_ms: None,
            decided: None,
        };
        let mut out = Vec::new();
        e.send_notifications(now_ms, &mut out);
        (e, out)
    }

    /// Sets the vote this server last settled on (ZooKeeper's
    /// `currentVote`); a LOOKING server answers non-voters with it. Defaults
    /// to the server's own vote for itself.
    pub fn set_current_vote(&mut self, vote: Vote) {
        self.current_vote = vote;
    }

    /// The round's logical clock; pass it to the next round's
    /// [`Election::new`].
    pub fn logical_clock(&self) -> u64 {
        self.logical_clock
    }

    /// This server's current proposal, as sent to its peers.
    pub fn proposal(&self) -> Vote {
        self.proposal_vote()
    }

    /// Once decided, what this server answers LOOKING peers; the role loop
    /// keeps it for as long as it follows, leads or observes.
    pub fn responder(&self) -> Option<&Responder> {
        self.decided.as_ref()
    }

    /// When [`Election::on_timer`] must next be called, or `None` once the
    /// round has decided.
    pub fn next_deadline(&self) -> Option<u64> {
        if self.decided.is_some() {
            return None;
        }
        Some(self.finalize_deadline_ms.unwrap_or(self.poll_deadline_ms))
    }

    /// Handles a notification from a peer.
    pub fn on_notification(&mut self, now_ms: u64, n: Notification) -> Vec<Output> {
        let mut out = Vec::new();
        if n.sender == self.me {
            // Our own vote is recorded directly when we send it.
            return out;
        }
        if let Some(r) = &self.decided {
            if let Some(reply) = r.on_notification(&n) {
                out.push(Output::Send {
                    to: n.sender,
                    n: reply,
                });
            }
            return out;
        }

        // ---- the receiver thread (`WorkerReceiver`) ----
        if !self.qv.is_voter(n.sender) {
            // A non-voter's vote counts for nothing; answer it right away
            // with our current vote, our clock and our state.
            out.push(self.send(
                n.sender,
                Vote {
                    election_epoch: self.logical_clock,
                    state: ServerState::Looking,
                    ..self.current_vote
                },
            ));
            return out;
        }
        if n.vote.state == ServerState::Looking
            && n.vote.election_epoch < self.logical_clock
            && self.is_voter()
        {
            // A LOOKING voter in an older round gets our proposal so it can
            // catch up; its notification is otherwise ignored below.
            // (ZooKeeper's observers also answer here; voters never read a
            // non-voter's vote, so we skip it and avoid an observer and a
            // lagging voter answering each other until the voter settles.)
            out.push(self.send(n.sender, self.proposal_vote()));
        }

        // ---- the finalize wait (inner loop of `lookForLeader`) ----
        if let Some(_deadline) = self.finalize_deadline_ms {
            if beats(
                |id| self.qv.is_voter(id),
                (n.vote.leader, n.vote.zxid, n.vote.peer_epoch),
                self.proposal.key(),
            ) {
                // A better vote: stop waiting and handle it as usual.
                self.finalize_deadline_ms = None;
            } else {
                // Anything else is consumed and dropped; the 200 ms wait
                // restarts, since ZooKeeper polls afresh after each message.
                // A vote that agrees with ours is still remembered, for
                // [`Election::decide_if_all_reachable_agree`]; counting it
                // cannot change the tally's outcome (it already holds).
                let mine = self.proposal_vote();
                if n.vote.state == ServerState::Looking && mine.agrees_with(&n.vote) {
                    self.recv_set.insert(n.sender, n.vote);
                }
                self.finalize_deadline_ms = Some(now_ms.saturating_add(FINALIZE_WAIT_MS));
                return out;
            }
        }

        // ---- the main loop of `lookForLeader` ----
        self.poll_deadline_ms = now_ms.saturating_add(self.not_timeout_ms);
        if !self.qv.is_voter(n.vote.leader) {
            // A vote for a non-member is ignored.
            return out;
        }
        match n.vote.state {
            ServerState::Looking => self.on_looking_sender(now_ms, n, &mut out),
            ServerState::Observing => {}
            ServerState::Following | ServerState::Leading => {
                self.on_settled_sender(n, &mut out);
            }
        }
        out
    }

    /// Handles the expiry of [`Election::next_deadline`].
    pub fn on_timer(&mut self, now_ms: u64) -> Vec<Output> {
        let mut out = Vec::new();
        if self.decided.is_some() {
            return out;
        }
        if let Some(deadline) = self.finalize_deadline_ms {
            if now_ms >= deadline {
                // 200 ms passed without a better vote: the quorum stands.
                self.decide(self.role_under_proposal(), self.proposal_vote(), &mut out);
            }
            return out;
        }
        if now_ms >= self.poll_deadline_ms {
            // No notification within the timeout: send our vote again (our
            // transport reconnects by itself, so ZooKeeper's "connectAll
            // when something is undelivered" is left to it) and back off.
            self.send_notifications(now_ms, &mut out);
            if self.decided.is_none() {
                self.not_timeout_ms = self
                    .not_timeout_ms
                    .saturating_mul(2)
                    .min(MAX_NOTIFICATION_INTERVAL_MS);
                self.poll_deadline_ms = now_ms.saturating_add(self.not_timeout_ms);
            }
        }
        out
    }

    /// Ends the finalize wait early when it can no longer change anything:
    /// a quorum backs our proposal and every other voter that `may_vote`
    /// says may still vote has already voted for it in this round.
    ///
    /// ZooKeeper always waits the full `finalizeWait` (200 ms) for a better
    /// vote. A better vote can only come from a voter that has not yet told
    /// us its proposal, or from one that will switch after hearing a better
    /// vote than ours, which no connected voter has; so when the only
    /// voters left unheard are ones that cannot vote (the leader that just
    /// died: its link was up and went down), the wait can only end the same
    /// way, 200 ms later. A voter never linked to may still vote: in a
    /// cluster started all at once it may be a moment from voting, and
    /// deciding without it elects a second leader that then waits out
    /// `initLimit` alone (seen with `cargo xtask cluster`: one node out of
    /// service for 20 s). Safety does not rest on the wait: an elected
    /// leader holds every committed txn because its voters form a quorum
    /// that meets every commit quorum, and each of them voted for a log at
    /// least as long as its own. zab's addition, to fail over faster
    /// (issue 4).
    pub fn decide_if_all_reachable_agree(
        &mut self,
        may_vote: impl Fn(ServerId) -> bool,
    ) -> Vec<Output> {
        let mut out = Vec::new();
        if self.decided.is_some() || self.finalize_deadline_ms.is_none() {
            return out;
        }
        let mine = self.proposal_vote();
        let all_heard = self
            .qv
            .voters()
            .iter()
            .filter(|&&v| v != self.me && may_vote(v))
            .all(|v| {
                self.recv_set
                    .get(v)
                    .is_some_and(|seen| mine.agrees_with(seen))
            });
        if all_heard && self.tally(&self.recv_set, &mine) {
            self.decide(self.role_under_proposal(), mine, &mut out);
        }
        out
    }

    /// A LOOKING sender (reference G, "Sender LOOKING").
    fn on_looking_sender(&mut self, now_ms: u64, n: Notification, out: &mut Vec<Output>) {
        // A server with an empty log (-1) neither counts nor is counted.
        if (self.is_voter() && self.init.zxid == Zxid(-1)) || n.vote.zxid == Zxid(-1) {
            return;
        }
        let theirs = (n.vote.leader, n.vote.zxid, n.vote.peer_epoch);
        let is_voter = |id| self.qv.is_voter(id);
        if n.vote.election_epoch > self.logical_clock {
            // A newer round: join it, forgetting the old round's votes, and
            // back the better of their vote and our own initial vote.
            self.logical_clock = n.vote.election_epoch;
            self.recv_set.clear();
            self.proposal = if beats(is_voter, theirs, self.init.key()) {
                Proposal {
                    leader: n.vote.leader,
                    zxid: n.vote.zxid,
                    peer_epoch: n.vote.peer_epoch,
                }
            } else {
                self.init
            };
            self.send_notifications(now_ms, out);
        } else if n.vote.election_epoch < self.logical_clock {
            // An older round: already answered above, otherwise ignored.
            return;
        } else if beats(is_voter, theirs, self.proposal.key()) {
            self.proposal = Proposal {
                leader: n.vote.leader,
                zxid: n.vote.zxid,
                peer_epoch: n.vote.peer_epoch,
            };
            self.send_notifications(now_ms, out);
        } else if theirs != self.proposal.key()
            && self
                .recv_set
                .get(&n.sender)
                .map(|v| (v.leader, v.zxid, v.peer_epoch))
                != Some(theirs)
        {
            // zab, not ZooKeeper: tell a peer that backs a worse vote what
            // we back. ZooKeeper stays silent, and the peer hears our vote
            // only when one of us times out and re-sends (200 ms, then
            // doubling). After a leader dies that wait is the common case:
            // our first notification reaches a survivor still FOLLOWING,
            // which answers with its old vote, then goes LOOKING backing
            // itself, and both sides wait. A notification is only ever
            // information (a re-send is one), so this is safe; answering a
            // given vote of a peer once keeps two servers that rank votes
            // differently (mismatched configs) from answering each other
            // forever.
            out.push(self.send(n.sender, self.proposal_vote()));
        }
        self.recv_set.insert(
            n.sender,
            Vote {
                state: ServerState::Looking,
                ..n.vote
            },
        );
        self.check_quorum(now_ms);
    }

    /// A FOLLOWING or LEADING sender: an ensemble that has already settled
    /// (reference G, "Sender FOLLOWING or LEADING").
    fn on_settled_sender(&mut self, n: Notification, out: &mut Vec<Output>) {
        let role = if n.vote.leader == self.me {
            ServerState::Leading
        } else {
            self.learning_state()
        };
        if n.vote.election_epoch == self.logical_clock {
            // Settled in our own round: count it with this round's votes.
            self.recv_set.insert(n.sender, n.vote);
            if self.tally(&self.recv_set, &n.vote)
                && self.check_leader(&self.recv_set, n.vote.leader, n.vote.election_epoch)
            {
                self.decide(role, n.vote, out);
                return;
            }
        }
        // Whatever its round, remember it: a late joiner follows a leader a
        // quorum already follows, once that leader says it leads
        // (ZOOKEEPER-1732).
        self.out_of_election.insert(n.sender, n.vote);
        if self.tally(&self.out_of_election, &n.vote)
            && self.check_leader(&self.out_of_election, n.vote.leader, n.vote.election_epoch)
        {
            self.logical_clock = n.vote.election_epoch;
            self.decide(role, n.vote, out);
        }
    }

    /// After recording a LOOKING vote: does a quorum back our proposal? If
    /// so, start (or keep) the finalize wait.
    fn check_quorum(&mut self, now_ms: u64) {
        let mine = self.proposal_vote();
        if self.tally(&self.recv_set, &mine) && self.finalize_deadline_ms.is_none() {
            self.finalize_deadline_ms = Some(now_ms.saturating_add(FINALIZE_WAIT_MS));
        }
    }

    /// Whether the votes agreeing with `vote` form a quorum of voters.
    fn tally(&self, votes: &BTreeMap<ServerId, Vote>, vote: &Vote) -> bool {
        let agreeing = votes
            .iter()
            .filter(|(_, v)| vote.agrees_with(v))
            .map(|(id, _)| id);
        self.qv.contains_quorum(agreeing)
    }

    /// ZooKeeper's `checkLeader`: a quorum for `leader` is not enough, the
    /// leader must confirm it — by its own vote saying LEADING, or, if the
    /// leader is us, by the round being ours. This keeps peers from electing
    /// over and over a leader that crashed.
    fn check_leader(
        &self,
        votes: &BTreeMap<ServerId, Vote>,
        leader: ServerId,
        election_epoch: u64,
    ) -> bool {
        if leader != self.me {
            votes
                .get(&leader)
                .is_some_and(|v| v.state == ServerState::Leading)
        } else {
            self.logical_clock == election_epoch
        }
    }

    fn decide(&mut self, state: ServerState, vote: Vote, out: &mut Vec<Output>) {
        let vote = Vote { state, ..vote };
        self.finalize_deadline_ms = None;
        // The voters whose LOOKING votes of this round agree with ours: if
        // enough of them later turn out to back a better vote, the role
        // decided here has lost its quorum (`Responder::lost_quorum_after`).
        let supporters: Vec<ServerId> = self
            .recv_set
            .iter()
            .filter(|(_, v)| vote.agrees_with(v))
            .map(|(&id, _)| id)
            .collect();
        self.decided = Some(
            Responder::new(self.me, self.qv.clone(), state, vote, self.config_version)
                .with_supporters(self.logical_clock, supporters),
        );
        out.push(Output::Decided { state, vote });
    }

    /// Sends our proposal to every voter (`sendNotifications`). ZooKeeper
    /// also sends it to itself through its own queue; we record our own vote
    /// directly instead.
    fn send_notifications(&mut self, now_ms: u64, out: &mut Vec<Output>) {
        let vote = self.proposal_vote();
        for &to in self.qv.voters() {
            if to != self.me {
                out.push(self.send(to, vote));
            }
        }
        if self.is_voter() && self.init.zxid != Zxid(-1) {
            self.recv_set.insert(self.me, vote);
            self.check_quorum(now_ms);
        }
    }

    fn send(&self, to: ServerId, vote: Vote) -> Output {
        Output::Send {
            to,
            n: Notification {
                sender: self.me,
                vote,
                config_version: self.config_version,
            },
        }
    }

    fn proposal_vote(&self) -> Vote {
        Vote {
            leader: self.proposal.leader,
            zxid: self.proposal.zxid,
            election_epoch: self.logical_clock,
            peer_epoch: self.proposal.peer_epoch,
            state: ServerState::Looking,
        }
    }

    fn is_voter(&self) -> bool {
        self.qv.is_voter(self.me)
    }

    /// What this server becomes if its proposal wins.
    fn role_under_proposal(&self) -> ServerState {
        if self.proposal.leader == self.me {
            ServerState::Leading
        } else {
            self.learning_state()
        }
    }

    fn learning_state(&self) -> ServerState {
        if self.is_voter() {
            ServerState::Following
        } else {
            ServerState::Observing
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ServerState::*;

    fn qv(voters: &[u64], observers: &[u64]) -> QuorumVerifier {
        QuorumVerifier::new(
            voters.iter().copied().map(ServerId),
            observers.iter().copied().map(ServerId),
        )
    }

    fn three() -> QuorumVerifier {
        qv(&[1, 2, 3], &[4])
    }

    fn five() -> QuorumVerifier {
        qv(&[1, 2, 3, 4, 5], &[])
    }

    /// A notification from `sender` in `state`, backing `leader` with `zxid`
    /// in round `round`, peer epoch 1.
    fn note(sender: u64, state: ServerState, leader: u64, zxid: i64, round: u64) -> Notification {
        Notification {
            sender: ServerId(sender),
            vote: Vote {
                leader: ServerId(leader),
                zxid: Zxid(zxid),
                election_epoch: round,
                peer_epoch: Epoch(1),
                state,
            },
            config_version: 0,
        }
    }

    /// Server `me` with `zxid` and peer epoch 1, starting from clock
    /// `clock - 1` at time 0 (so its round is `clock`).
    fn start(me: u64, qv: QuorumVerifier, zxid: i64, clock: u64) -> (Election, Vec<Output>) {
        Election::new(ServerId(me), qv, Zxid(zxid), Epoch(1), clock - 1, 0)
    }

    fn sends(out: &[Output]) -> Vec<(u64, Vote)> {
        out.iter()
            .filter_map(|o| match o {
                Output::Send { to, n } => Some((to.0, n.vote)),
                Output::Decided { .. } => None,
            })
            .collect()
    }

    fn decision(out: &[Output]) -> Option<(ServerState, Vote)> {
        out.iter().find_map(|o| match o {
            Output::Decided { state, vote } => Some((*state, *vote)),
            Output::Send { .. } => None,
        })
    }

    #[test]
    fn new_round_bumps_clock_and_sends_own_vote_to_every_other_voter() {
        let (e, out) = Election::new(ServerId(1), three(), Zxid(7), Epoch(2), 4, 0);
        assert_eq!(e.logical_clock(), 5);
        let expected = Vote {
            leader: ServerId(1),
            zxid: Zxid(7),
            election_epoch: 5,
            peer_epoch: Epoch(2),
            state: Looking,
        };
        // Voters 2 and 3; never ourselves, never the observer 4.
        assert_eq!(sends(&out), vec![(2, expected), (3, expected)]);
        assert_eq!(e.next_deadline(), Some(FINALIZE_WAIT_MS));
    }

    #[test]
    fn observer_starts_with_the_non_voter_vote_sent_to_voters() {
        let (e, out) = start(4, three(), 50, 1);
        let s = sends(&out);
        assert_eq!(s.iter().map(|(to, _)| *to).collect::<Vec<_>>(), [1, 2, 3]);
        assert!(s.iter().all(|(_, v)| v.leader == Vote::NON_VOTER_LEADER));
        assert_eq!(e.proposal().zxid, Vote::NON_VOTER_ZXID);
    }

    #[test]
    fn higher_round_is_joined_with_better_of_its_vote_and_our_initial_vote() {
        // Server 2 (zxid 5) first adopts 3 (zxid 9) in round 1.
        let (mut e, _) = start(2, five(), 5, 1);
        let out = e.on_notification(10, note(3, Looking, 3, 9, 1));
        assert_eq!(e.proposal().leader, ServerId(3));
        assert_eq!(sends(&out).len(), 4);

        // Round 3 arrives backing 1 (zxid 0): worse than our own initial
        // vote, so we fall back to voting for ourselves, not for 3.
        let out = e.on_notification(20, note(1, Looking, 1, 0, 3));
        assert_eq!(e.logical_clock(), 3);
        let p = e.proposal();
        assert_eq!(
            (p.leader, p.zxid, p.election_epoch),
            (ServerId(2), Zxid(5), 3)
        );
        let s = sends(&out);
        assert_eq!(s.len(), 4);
        assert!(s.iter().all(|(_, v)| *v == p));

        // Round 4 backing 4 (zxid 6) beats our initial vote: adopt it.
        e.on_notification(30, note(5, Looking, 4, 6, 4));
        let p = e.proposal();
        assert_eq!((p.leader, p.election_epoch), (ServerId(4), 4));
    }

    #[test]
    fn votes_of_an_earlier_round_never_count_towards_a_quorum() {
        // Server 1 backs 5 in round 1 together with 5 itself; then round 2
        // starts.
        let (mut e, _) = start(1, five(), 0, 1);
        e.on_notification(0, note(5, Looking, 5, 9, 1));
        e.on_notification(1, note(3, Looking, 5, 9, 2));
        assert_eq!(e.logical_clock(), 2);
        // Round 2 so far: 1 and 3 — no quorum, so the timer only re-sends.
        let out = e.on_timer(201);
        assert!(decision(&out).is_none());
        assert_eq!(sends(&out).len(), 4);
        assert!(sends(&out).iter().all(|(_, v)| v.election_epoch == 2));
        // One more round-2 vote makes a quorum, then the finalize wait.
        e.on_notification(300, note(4, Looking, 5, 9, 2));
        assert_eq!(e.next_deadline(), Some(300 + FINALIZE_WAIT_MS));
        let out = e.on_timer(500);
        assert_eq!(
            decision(&out).map(|(s, v)| (s, v.leader)),
            Some((Following, ServerId(5)))
        );
    }

    #[test]
    fn older_round_is_answered_with_our_proposal_and_otherwise_ignored() {
        let (mut e, _) = start(1, three(), 0, 3);
        let out = e.on_notification(5, note(2, Looking, 3, 99, 1));
        // The reply carries our proposal and our clock...
        assert_eq!(sends(&out), vec![(2, e.proposal())]);
        assert_eq!(e.proposal().election_epoch, 3);
        // ...and the better vote of the old round is not adopted.
        assert_eq!(e.proposal().leader, ServerId(1));
    }

    #[test]
    fn better_vote_in_same_round_is_adopted_and_broadcast() {
        let (mut e, _) = start(1, five(), 3, 1);
        let out = e.on_notification(5, note(2, Looking, 2, 4, 1));
        assert_eq!(e.proposal().leader, ServerId(2));
        let s = sends(&out);
        assert_eq!(
            s.iter().map(|(to, _)| *to).collect::<Vec<_>>(),
            [2, 3, 4, 5]
        );
        assert!(s.iter().all(|(_, v)| v.leader == ServerId(2)));
        // A worse vote changes nothing; its sender alone hears what we back
        // (zab's reply, where ZooKeeper stays silent), and only once.
        let out = e.on_notification(6, note(3, Looking, 3, 1, 1));
        assert_eq!(sends(&out), vec![(3, e.proposal())]);
        assert_eq!(e.proposal().leader, ServerId(2));
        let out = e.on_notification(7, note(3, Looking, 3, 1, 1));
        assert!(sends(&out).is_empty());
    }

    /// The failover race the reply above is for: a survivor that was still
    /// FOLLOWING when our first notification came backs itself once it is
    /// LOOKING. Answered at once, it switches to our vote and both decide
    /// without a 200 ms re-send timeout.
    #[test]
    fn a_peer_backing_a_worse_vote_hears_ours_and_both_decide() {
        let (mut a, _) = start(1, three(), 9, 4);
        let (mut b, _) = start(2, three(), 8, 4);
        // b's notification for itself reaches a; a answers with its own.
        let out = a.on_notification(1, note(2, Looking, 2, 8, 4));
        let [(to, vote)] = sends(&out)[..] else {
            panic!("one answer expected: {out:?}")
        };
        assert_eq!((to, vote.leader), (2, ServerId(1)));
        // b adopts it and tells everyone; a hears b agree: a quorum.
        let out = b.on_notification(
            2,
            Notification {
                sender: ServerId(1),
                vote,
                config_version: 0,
            },
        );
        assert_eq!(b.proposal().leader, ServerId(1));
        let to_a = sends(&out)
            .into_iter()
            .find(|(to, _)| *to == 1)
            .expect("b tells a");
        a.on_notification(
            3,
            Notification {
                sender: ServerId(2),
                vote: to_a.1,
                config_version: 0,
            },
        );
        // Server 3 is dead: nobody else to wait for.
        let linked = |s: ServerId| s == ServerId(2);
        assert!(decision(&a.decide_if_all_reachable_agree(linked)).is_some());
    }

    #[test]
    fn ties_on_epoch_and_zxid_go_to_the_higher_sid() {
        let (mut e, _) = start(1, five(), 8, 1);
        e.on_notification(1, note(3, Looking, 3, 8, 1));
        assert_eq!(e.proposal().leader, ServerId(3));
        let out = e.on_notification(2, note(2, Looking, 2, 8, 1));
        assert_eq!(e.proposal().leader, ServerId(3));
        // Only the answer to server 2's worse vote goes out.
        assert_eq!(sends(&out), vec![(2, e.proposal())]);
    }

    #[test]
    fn higher_peer_epoch_beats_higher_zxid() {
        let (mut e, _) = start(1, three(), 0x1_0000_0009, 1);
        let mut n = note(2, Looking, 2, 0x2_0000_0000, 1);
        n.vote.peer_epoch = Epoch(2);
        e.on_notification(1, n);
        assert_eq!(e.proposal().leader, ServerId(2));
        let mut n = note(3, Looking, 3, 0x1_0000_00ff, 1);
        n.vote.peer_epoch = Epoch(1);
        e.on_notification(2, n);
        assert_eq!(e.proposal().leader, ServerId(2));
    }

    #[test]
    fn quorum_decides_after_the_finalize_wait() {
        let (mut e, _) = start(1, three(), 0, 1);
        e.on_notification(100, note(3, Looking, 3, 5, 1));
        // 1 and 3 back 3: a quorum of 3 voters; wait 200 ms for better news.
        assert_eq!(e.next_deadline(), Some(100 + FINALIZE_WAIT_MS));
        assert!(e.on_timer(299).is_empty());
        let out = e.on_timer(300);
        let (state, vote) = decision(&out).expect("decided after the wait");
        assert_eq!(state, Following);
        assert_eq!(
            (vote.leader, vote.zxid, vote.election_epoch),
            (ServerId(3), Zxid(5), 1)
        );
        assert_eq!(vote.state, Following);
        assert_eq!(e.next_deadline(), None);
        // Decided: further timers do nothing.
        assert!(e.on_timer(10_000).is_empty());
    }

    #[test]
    fn the_wait_ends_early_once_every_reachable_voter_agrees() {
        // 2 has died; 1 and 3 are linked and both back 3.
        let (mut e, _) = start(1, three(), 0, 1);
        let linked = |s: ServerId| s == ServerId(3);
        assert!(e.decide_if_all_reachable_agree(linked).is_empty());
        e.on_notification(100, note(3, Looking, 3, 5, 1));
        assert_eq!(e.next_deadline(), Some(100 + FINALIZE_WAIT_MS));
        let out = e.decide_if_all_reachable_agree(linked);
        let (state, vote) = decision(&out).expect("nothing left to wait for");
        assert_eq!((state, vote.leader), (Following, ServerId(3)));
        assert_eq!(e.next_deadline(), None);
        // The same round with 2 still linked but silent waits the 200 ms.
        let (mut e, _) = start(1, three(), 0, 1);
        e.on_notification(100, note(3, Looking, 3, 5, 1));
        assert!(decision(&e.decide_if_all_reachable_agree(|_| true)).is_none());
        assert!(decision(&e.on_timer(300)).is_some());
    }

    #[test]
    fn the_wait_does_not_end_early_while_a_linked_voter_disagrees() {
        let (mut e, _) = start(3, five(), 5, 1);
        for s in [1, 2] {
            e.on_notification(0, note(s, Looking, 3, 5, 1));
        }
        // 4 backs itself with a lower zxid: not better, dropped, wait restarts.
        e.on_notification(50, note(4, Looking, 4, 1, 1));
        assert_eq!(e.next_deadline(), Some(250));
        let linked = |s: ServerId| s != ServerId(5);
        assert!(decision(&e.decide_if_all_reachable_agree(linked)).is_none());
        // Once 4 switches to 3 (an agreeing vote, recorded during the wait)
        // nobody linked is left unheard: 3 leads at once.
        e.on_notification(60, note(4, Looking, 3, 5, 1));
        let out = e.decide_if_all_reachable_agree(linked);
        assert_eq!(
            decision(&out).map(|(s, v)| (s, v.leader)),
            Some((Leading, ServerId(3)))
        );
    }

    #[test]
    fn the_proposed_leader_decides_to_lead() {
        let (mut e, _) = start(3, three(), 5, 1);
        e.on_notification(0, note(1, Looking, 3, 5, 1));
        let out = e.on_timer(FINALIZE_WAIT_MS);
        assert_eq!(
            decision(&out).map(|(s, v)| (s, v.leader)),
            Some((Leading, ServerId(3)))
        );
    }

    #[test]
    fn a_better_vote_interrupts_the_finalize_wait() {
        let (mut e, _) = start(1, three(), 0, 1);
        e.on_notification(0, note(2, Looking, 2, 5, 1));
        assert_eq!(e.next_deadline(), Some(200));
        // 3 turns up with a better log before the wait is over.
        let out = e.on_notification(150, note(3, Looking, 3, 9, 1));
        assert_eq!(e.proposal().leader, ServerId(3));
        assert_eq!(sends(&out).len(), 2);
        // The quorum {1, 3} for 3 starts a new wait.
        assert_eq!(e.next_deadline(), Some(350));
        assert!(decision(&e.on_timer(200)).is_none());
        let out = e.on_timer(350);
        assert_eq!(decision(&out).map(|(_, v)| v.leader), Some(ServerId(3)));
    }

    #[test]
    fn any_other_notification_during_the_finalize_wait_restarts_it() {
        let (mut e, _) = start(1, five(), 0, 1);
        for s in [2, 3] {
            e.on_notification(0, note(s, Looking, 5, 9, 1));
        }
        assert_eq!(e.next_deadline(), Some(200));
        // Not better: dropped, but ZooKeeper polls afresh after it.
        let out = e.on_notification(150, note(4, Looking, 4, 1, 1));
        assert!(out.is_empty());
        assert_eq!(e.next_deadline(), Some(350));
        assert!(decision(&e.on_timer(200)).is_none());
        assert!(decision(&e.on_timer(350)).is_some());
    }

    #[test]
    fn settled_servers_in_our_round_are_followed_once_the_leader_confirms() {
        // Server 5 joins late (same round 1) an ensemble that chose 2.
        let (mut e, _) = start(5, five(), 0, 1);
        for s in [1, 3, 4] {
            let out = e.on_notification(1, note(s, Following, 2, 7, 1));
            // A quorum follows 2, but 2 has not said it leads.
            assert!(decision(&out).is_none());
        }
        let out = e.on_notification(2, note(2, Leading, 2, 7, 1));
        let (state, vote) = decision(&out).expect("joins the settled ensemble");
        assert_eq!(
            (state, vote.leader, vote.election_epoch),
            (Following, ServerId(2), 1)
        );
        assert_eq!(e.logical_clock(), 1);
    }

    #[test]
    fn settled_servers_of_an_older_round_are_followed_via_out_of_election() {
        // Our clock (7) is ahead of the round (2) that chose leader 3.
        let (mut e, _) = start(1, three(), 0, 7);
        assert!(decision(&e.on_notification(1, note(2, Following, 3, 7, 2))).is_none());
        let out = e.on_notification(2, note(3, Leading, 3, 7, 2));
        let (state, vote) = decision(&out).expect("learns the leader from replies");
        assert_eq!((state, vote.leader), (Following, ServerId(3)));
        // Our clock moves to the round that chose the leader.
        assert_eq!(e.logical_clock(), 2);
    }

    #[test]
    fn out_of_election_needs_the_leader_to_say_it_leads() {
        let (mut e, _) = start(5, five(), 0, 9);
        for s in [1, 2, 4] {
            assert!(decision(&e.on_notification(1, note(s, Following, 3, 7, 2))).is_none());
        }
        // 3 crashed: nobody says LEADING, so we keep looking.
        assert!(e.next_deadline().is_some());
    }

    #[test]
    fn we_lead_when_settled_servers_follow_us_in_our_own_round() {
        let (mut e, _) = start(2, three(), 7, 1);
        let out = e.on_notification(1, note(1, Following, 2, 7, 1));
        assert_eq!(
            decision(&out).map(|(s, v)| (s, v.leader)),
            Some((Leading, ServerId(2)))
        );

        // In another round we are not confirmed by our own clock.
        let (mut e, _) = start(2, three(), 7, 4);
        let out = e.on_notification(1, note(1, Following, 2, 7, 1));
        assert!(decision(&out).is_none());
        let out = e.on_notification(1, note(3, Following, 2, 7, 1));
        assert!(decision(&out).is_none());
    }

    #[test]
    fn observers_are_answered_but_never_counted() {
        let (mut e, _) = start(1, three(), 0, 1);
        let out = e.on_notification(1, note(4, Looking, 3, 99, 1));
        // Answered with our current vote (our own, before any settlement).
        assert_eq!(sends(&out).len(), 1);
        assert_eq!(sends(&out)[0].0, 4);
        assert_eq!(sends(&out)[0].1.leader, ServerId(1));
        // Its vote for 3 was not adopted, nor counted.
        assert_eq!(e.proposal().leader, ServerId(1));
        // Nor did it restart our wait for notifications.
        assert_eq!(e.next_deadline(), Some(FINALIZE_WAIT_MS));
    }

    #[test]
    fn observer_learns_the_leader_from_settled_voters() {
        let (mut e, _) = start(4, three(), 0, 1);
        assert!(decision(&e.on_notification(1, note(1, Following, 3, 7, 1))).is_none());
        let out = e.on_notification(2, note(3, Leading, 3, 7, 1));
        assert_eq!(
            decision(&out).map(|(s, v)| (s, v.leader)),
            Some((Observing, ServerId(3)))
        );
    }

    #[test]
    fn observing_senders_and_votes_for_non_members_are_ignored() {
        let (mut e, _) = start(1, three(), 0, 1);
        assert!(e.on_notification(1, note(2, Observing, 3, 9, 1)).is_empty());
        assert!(e.on_notification(1, note(2, Looking, 9, 9, 1)).is_empty());
        assert_eq!(e.proposal().leader, ServerId(1));
    }

    #[test]
    fn empty_logs_neither_count_nor_are_counted() {
        let (mut e, _) = start(1, three(), 0, 1);
        assert!(e.on_notification(1, note(2, Looking, 2, -1, 1)).is_empty());
        assert_eq!(e.proposal().leader, ServerId(1));
        let (mut e, _) = start(1, three(), -1, 1);
        assert!(e.on_notification(1, note(2, Looking, 2, 5, 1)).is_empty());
    }

    #[test]
    fn notification_timeout_resends_and_doubles_up_to_the_cap() {
        let (mut e, _) = start(1, three(), 10, 1);
        let mut expected_timeout = FINALIZE_WAIT_MS;
        let mut now = 0;
        let mut timeouts = Vec::new();
        for _ in 0..12 {
            let deadline = e.next_deadline().expect("still looking");
            assert_eq!(deadline - now, expected_timeout);
            timeouts.push(expected_timeout);
            now = deadline;
            let out = e.on_timer(now);
            assert_eq!(
                sends(&out).iter().map(|(to, _)| *to).collect::<Vec<_>>(),
                [2, 3]
            );
            expected_timeout = (expected_timeout * 2).min(MAX_NOTIFICATION_INTERVAL_MS);
        }
        assert_eq!(&timeouts[..3], &[200, 400, 800]);
        assert_eq!(&timeouts[9..], &[MAX_NOTIFICATION_INTERVAL_MS; 3]);
        // A notification restarts the wait without resetting the interval.
        // (A worse vote: recorded, no quorum.)
        e.on_notification(now + 5, note(2, Looking, 2, 3, 1));
        assert_eq!(
            e.next_deadline(),
            Some(now + 5 + MAX_NOTIFICATION_INTERVAL_MS)
        );
    }

    #[test]
    fn early_timer_does_nothing() {
        let (mut e, _) = start(1, three(), 0, 1);
        assert!(e.on_timer(199).is_empty());
        assert_eq!(e.next_deadline(), Some(200));
    }

    #[test]
    fn a_decided_round_answers_like_a_responder() {
        let (mut e, _) = start(3, three(), 5, 1);
        e.on_notification(0, note(1, Looking, 3, 5, 1));
        e.on_timer(FINALIZE_WAIT_MS);
        let out = e.on_notification(300, note(2, Looking, 2, 1, 1));
        assert_eq!(sends(&out).len(), 1);
        assert_eq!(sends(&out)[0].1.state, Leading);
        assert_eq!(e.responder().map(|r| r.state()), Some(Leading));
    }

    /// The split `Responder::lost_quorum_after` detects: 2 decides to lead
    /// on 1's vote (3 is gone), then 1, still looking, switches to a better
    /// vote for 3 (3 restarted and reached 1 first).
    #[test]
    fn a_supporter_switching_to_a_better_vote_takes_the_quorum_away() {
        let (mut e, _) = start(2, three(), 5, 1);
        e.on_notification(0, note(1, Looking, 2, 5, 1));
        let out = e.decide_if_all_reachable_agree(|s| s != ServerId(3));
        assert_eq!(decision(&out).map(|(s, _)| s), Some(Leading));
        let mut r = e.responder().cloned().expect("decided");
        // 3 itself, back and looking, was not counted.
        assert!(!r.lost_quorum_after(&note(3, Looking, 3, 5, 1)));
        assert!(r.lost_quorum_after(&note(1, Looking, 3, 5, 1)));
    }

    #[test]
    fn single_voter_decides_alone() {
        let (mut e, out) = start(1, qv(&[1], &[]), 0, 1);
        assert!(sends(&out).is_empty());
        let out = e.on_timer(FINALIZE_WAIT_MS);
        assert_eq!(decision(&out).map(|(s, _)| s), Some(Leading));
    }
}
