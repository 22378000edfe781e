//! The ensemble-wide invariants (ARCHITECTURE "Invariants"), checked as
//! events happen.
//!
//! The checker keeps the *committed history*: the history of the leader
//! that was last established, extended by each txn a leader commits. A
//! leader's history at establishment is committed by ZAB (a quorum acked
//! NEWLEADER for it), so:
//!
//! * a newly established leader must hold the committed history as a
//!   prefix of its own — else a committed txn was lost or reordered;
//! * a commit must extend the committed history by exactly one txn, or be
//!   one a follower committed first;
//! * a follower may commit on its own (zab's LEADER_DURABLE): what it
//!   applies beyond the committed history must extend it, and is then
//!   checked to be durable on a quorum like a leader's commit;
//! * an observer's history must always be a prefix of it;
//! * at most one server is ever established as leader of an epoch.

use std::collections::BTreeMap;

use zab_wire::{Epoch, ServerId, Zxid};

use super::history::History;

#[derive(Default)]
pub struct Checker {
    pub committed: History,
    leaders: BTreeMap<Epoch, ServerId>,
    /// Commits to verify against every disk once the current event is done
    /// (the leader's own durability and a quorum's).
    pub to_verify: Vec<(ServerId, Zxid, u64)>,
    pub commits: u64,
    /// The last txn each leader committed, to check that a leader cut off
    /// from a quorum commits nothing it proposed after the cut.
    pub last_commit_by: BTreeMap<ServerId, Zxid>,
    /// Txns a follower committed before its leader did (`commits` counts
    /// the leaders').
    pub early_commits: u64,
    /// Forwarded `sync`s by cxid (unique in a run): what the leader had
    /// proposed when it took the sync. Its answer may reach the learner
    /// only once the learner applied that far (reference D.8, ZooKeeper's
    /// `Leader.processSync`).
    pub sync_floors: BTreeMap<i32, Zxid>,
}

impl Checker {
    pub fn established(&mut self, sid: ServerId, epoch: Epoch, h: &History) -> Result<(), String> {
        if let Some(&other) = self.leaders.get(&epoch) {
            if other != sid {
                return Err(format!(
                    "two leaders established in epoch {epoch}: {other} and {sid}"
                ));
            }
        }
        if let Some((&newest, _)) = self.leaders.iter().next_back() {
            if epoch < newest {
                return Err(format!(
                    "{sid} established in epoch {epoch} after epoch {newest}"
                ));
            }
        }
        self.leaders.insert(epoch, sid);
        if !self.committed.is_prefix_of(h) {
            return Err(format!(
                "leader {sid} of epoch {epoch} lost committed txns: {}",
                self.committed.divergence(h)
            ));
        }
        self.committed = h.clone();
        Ok(())
    }

    pub fn commit(&mut self, sid: ServerId, h: &History) -> Result<(), String> {
        let Some(&last) = h.last() else {
            return Err(format!("{sid} committed with an empty history"));
        };
        // A follower committed it first: the leader's history must agree.
        if h.len() <= self.committed.len() && h.is_prefix_of(&self.committed) {
            self.commits += 1;
            self.last_commit_by.insert(sid, last.zxid);
            self.to_verify.push((sid, last.zxid, last.digest));
            return Ok(());
        }
        if h.len() != self.committed.len() + 1 || !self.committed_prefix_of_all_but_last(h) {
            return Err(format!(
                "{sid} committed {} which does not extend the committed history: {}",
                last.zxid,
                self.committed.divergence(h)
            ));
        }
        self.committed.push_entry(last)?;
        self.commits += 1;
        self.last_commit_by.insert(sid, last.zxid);
        self.to_verify.push((sid, last.zxid, last.digest));
        Ok(())
    }

    fn committed_prefix_of_all_but_last(&self, h: &History) -> bool {
        let n = self.committed.len();
        n == 0 || h.entries()[n - 1].chain == self.committed.entries()[n - 1].chain
    }

    /// A serving follower applied: what it applied beyond the committed
    /// history it committed itself, which must extend that history; each
    /// such txn is then checked to be durable on a quorum.
    pub fn follower_applied(&mut self, sid: ServerId, h: &History) -> Result<(), String> {
        if h.len() <= self.committed.len() {
            return self.serving(sid, h);
        }
        if !self.committed.is_prefix_of(h) {
            return Err(format!(
                "follower {sid} committed txns that do not extend the committed history: {}",
                self.committed.divergence(h)
            ));
        }
        for &entry in &h.entries()[self.committed.len()..] {
            self.committed.push_entry(entry)?;
            self.early_commits += 1;
            self.to_verify.push((sid, entry.zxid, entry.digest));
        }
        Ok(())
    }

    /// A serving learner (past UPTODATE) applied, or just started serving.
    pub fn serving(&self, sid: ServerId, h: &History) -> Result<(), String> {
        if h.is_prefix_of(&self.committed) {
            return Ok(());
        }
        Err(format!(
            "serving learner {sid} holds a history that is not committed: {}",
            h.divergence(&self.committed)
        ))
    }
}

/// The checker itself must be able to fail.
#[cfg(test)]
mod tests {
    use super::*;

    fn z(e: u64, c: u32) -> Zxid {
        Zxid::new(Epoch(e), c)
    }

    fn history(txns: &[(Zxid, u64)]) -> History {
        let mut h = History::default();
        for &(zxid, d) in txns {
            h.push(zxid, d).expect("increasing zxids");
        }
        h
    }

    #[test]
    fn two_leaders_in_one_epoch_are_refused() {
        let mut c = Checker::default();
        let h = History::default();
        assert!(c.established(ServerId(1), Epoch(1), &h).is_ok());
        assert!(c.established(ServerId(2), Epoch(1), &h).is_err());
    }

    #[test]
    fn a_leader_without_a_committed_txn_is_refused() {
        let mut c = Checker::default();
        let h1 = history(&[(z(1, 1), 10), (z(1, 2), 20)]);
        c.established(ServerId(1), Epoch(1), &history(&[(z(1, 1), 10)]))
            .expect("first leader");
        c.commit(ServerId(1), &h1).expect("extends by one");
        // The next leader holds only the first txn.
        let short = history(&[(z(1, 1), 10)]);
        assert!(c.established(ServerId(2), Epoch(2), &short).is_err());
        // Or holds a different second txn.
        let other = history(&[(z(1, 1), 10), (z(1, 2), 99)]);
        assert!(c.established(ServerId(2), Epoch(2), &other).is_err());
    }

    #[test]
    fn commits_must_extend_the_history_by_one() {
        let mut c = Checker::default();
        c.established(ServerId(1), Epoch(1), &History::default())
            .expect("leader");
        let skip = history(&[(z(1, 1), 1), (z(1, 2), 2)]);
        assert!(c.commit(ServerId(1), &skip).is_err());
        let one = history(&[(z(1, 1), 1)]);
        assert!(c.commit(ServerId(1), &one).is_ok());
        assert_eq!(c.to_verify, vec![(ServerId(1), z(1, 1), 1)]);
    }

    /// A follower's own commit extends the history (and is verified like
    /// a leader's); the leader's later commit of it agrees; a follower's
    /// history that departs from the committed one is refused.
    #[test]
    fn followers_may_commit_first_but_only_by_extending() {
        let mut c = Checker::default();
        c.established(ServerId(1), Epoch(1), &History::default())
            .expect("leader");
        let two = history(&[(z(1, 1), 1), (z(1, 2), 2)]);
        c.follower_applied(ServerId(2), &two).expect("extends");
        assert_eq!(c.early_commits, 2);
        assert_eq!(c.to_verify.len(), 2);
        c.commit(ServerId(1), &history(&[(z(1, 1), 1)]))
            .expect("the leader agrees");
        c.commit(ServerId(1), &two).expect("the leader agrees");
        assert!(c
            .commit(ServerId(1), &history(&[(z(1, 1), 1), (z(1, 2), 9)]))
            .is_err());
        assert!(c
            .follower_applied(
                ServerId(3),
                &history(&[(z(1, 1), 1), (z(1, 2), 9), (z(1, 3), 3)])
            )
            .is_err());
    }

    #[test]
    fn serving_learners_hold_a_prefix() {
        let mut c = Checker::default();
        c.established(
            ServerId(1),
            Epoch(1),
            &history(&[(z(1, 1), 1), (z(1, 2), 2)]),
        )
        .expect("leader");
        assert!(c.serving(ServerId(2), &history(&[(z(1, 1), 1)])).is_ok());
        assert!(c.serving(ServerId(2), &history(&[(z(1, 1), 7)])).is_err());
        assert!(c
            .serving(
                ServerId(2),
                &history(&[(z(1, 1), 1), (z(1, 2), 2), (z(1, 3), 3)])
            )
            .is_err());
    }

    #[test]
    fn histories_refuse_duplicates_and_reordering() {
        let mut h = history(&[(z(1, 1), 1), (z(1, 2), 2)]);
        assert!(h.push(z(1, 2), 2).is_err());
        assert!(h.push(z(1, 1), 1).is_err());
    }
}
