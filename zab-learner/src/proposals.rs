//! The learner's FIFO of proposals it holds but that are not committed yet
//! (ZooKeeper's `packetsNotLogged` during sync and
//! `FollowerZooKeeperServer.pendingTxns` afterwards).
//!
//! Zxids in the queue are strictly increasing, so a COMMIT can be matched
//! by binary search. zab's leader may send one COMMIT for a batch (shared
//! quorum protocol: "COMMIT(z) commits every txn ≤ z the follower holds"),
//! so a COMMIT releases the whole prefix up to the txn it names.

use std::collections::VecDeque;

use bytes::Bytes;
use zab_wire::proto::Txn;
use zab_wire::Zxid;

use crate::LearnerError;

/// A txn as received: the encoded bytes go to the log untouched, the
/// decoded form goes to the tree.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct HeldTxn {
    pub zxid: Zxid,
    pub raw: Bytes,
    pub txn: Txn,
}

#[derive(Debug, Default)]
pub(crate) struct HeldProposals {
    queue: VecDeque<HeldTxn>,
}

impl HeldProposals {
    /// Queues a proposal. The caller has checked that `held.zxid` is above
    /// everything queued before.
    pub fn push(&mut self, held: HeldTxn) {
        debug_assert!(self.queue.back().is_none_or(|b| b.zxid < held.zxid));
        self.queue.push_back(held);
    }

    /// The oldest uncommitted zxid.
    pub fn head(&self) -> Option<Zxid> {
        self.queue.front().map(|h| h.zxid)
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// COMMIT `zxid`: removes and returns every held proposal up to and
    /// including `zxid`, which must be one of them. Anything else means the
    /// leader and this learner disagree on history: ZooKeeper's follower
    /// exits on a COMMIT that is not its head (reference F.5).
    pub fn commit_through(&mut self, zxid: Zxid) -> Result<Vec<HeldTxn>, LearnerError> {
        match self.queue.binary_search_by_key(&zxid, |h| h.zxid) {
            Ok(i) => Ok(self.queue.drain(..=i).collect()),
            Err(_) => Err(LearnerError::UnexpectedCommit {
                zxid,
                head: self.head(),
            }),
        }
    }

    /// Removes and returns every held proposal up to and including `zxid`,
    /// which need not be one of them (a bound, not a COMMIT).
    pub fn commit_up_to(&mut self, zxid: Zxid) -> Vec<HeldTxn> {
        let n = self.queue.partition_point(|h| h.zxid <= zxid);
        self.queue.drain(..n).collect()
    }

    /// Everything still held, oldest first.
    pub fn take_all(&mut self) -> Vec<HeldTxn> {
        self.queue.drain(..).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zab_wire::Epoch;

    fn held(counter: u32) -> HeldTxn {
        let zxid = Zxid::new(Epoch(1), counter);
        HeldTxn {
            zxid,
            raw: Bytes::new(),
            txn: Txn {
                zxid: zxid.0,
                ..Txn::default()
            },
        }
    }

    fn zxids(v: &[HeldTxn]) -> Vec<u32> {
        v.iter().map(|h| h.zxid.counter()).collect()
    }

    #[test]
    fn commit_of_the_head_releases_only_the_head() {
        let mut p = HeldProposals::default();
        (1..=3).for_each(|c| p.push(held(c)));
        assert_eq!(
            zxids(&p.commit_through(Zxid::new(Epoch(1), 1)).unwrap()),
            [1]
        );
        assert_eq!(p.head(), Some(Zxid::new(Epoch(1), 2)));
    }

    #[test]
    fn commit_names_a_batch() {
        let mut p = HeldProposals::default();
        (1..=4).for_each(|c| p.push(held(c)));
        assert_eq!(
            zxids(&p.commit_through(Zxid::new(Epoch(1), 3)).unwrap()),
            [1, 2, 3]
        );
        assert_eq!(p.len(), 1);
    }

    #[test]
    fn commit_of_an_unknown_zxid_is_refused_and_keeps_the_queue() {
        let mut p = HeldProposals::default();
        (2..=3).for_each(|c| p.push(held(c)));
        for bad in [1, 4] {
            let err = p.commit_through(Zxid::new(Epoch(1), bad)).unwrap_err();
            assert_eq!(
                err,
                LearnerError::UnexpectedCommit {
                    zxid: Zxid::new(Epoch(1), bad),
                    head: Some(Zxid::new(Epoch(1), 2)),
                }
            );
        }
        assert_eq!(p.len(), 2);
        assert!(matches!(
            HeldProposals::default().commit_through(Zxid::new(Epoch(1), 1)),
            Err(LearnerError::UnexpectedCommit { head: None, .. })
        ));
    }
}
