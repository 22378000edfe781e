//! Vocabulary types shared by every zab crate.

use std::collections::BTreeSet;
use std::fmt;

/// A ZooKeeper transaction id: `epoch << 32 | counter`.
///
/// Counter 0 never names a txn: `Zxid::new(e, 0)` marks "epoch `e`
/// established" (ZooKeeper's NEWLEADER zxid).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Zxid(pub i64);

impl Zxid {
    pub const ZERO: Zxid = Zxid(0);

    /// The zxid of `counter` in `epoch`. An epoch takes a zxid's top 32
    /// bits: one past `u32::MAX` cannot be written in a zxid (ZooKeeper's
    /// `ZxidUtils.makeZxid` loses its high bits alike).
    pub const fn new(epoch: Epoch, counter: u32) -> Zxid {
        debug_assert!(epoch.0 <= u32::MAX as u64, "an epoch past 32 bits");
        Zxid(((epoch.0 as i64) << 32) | counter as i64)
    }
    pub const fn epoch(self) -> Epoch {
        Epoch((self.0 >> 32) as u32 as u64)
    }
    pub const fn counter(self) -> u32 {
        (self.0 & 0xFFFF_FFFF) as u32
    }
    /// True for `epoch << 32`: the zxid that marks an epoch start.
    pub const fn is_epoch_start(self) -> bool {
        self.counter() == 0
    }
    /// The next zxid: the counter's successor. At counter `u32::MAX` that
    /// is the next epoch's start, which a leader must never propose
    /// (ZooKeeper's leader steps down first, and so does zab-leader's).
    pub const fn next(self) -> Zxid {
        Zxid(self.0 + 1)
    }
}

impl fmt::Display for Zxid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:x}", self.0)
    }
}

/// A leader epoch (the top 32 bits of a zxid).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Epoch(pub u64);

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A server's id: the `N` of `server.N` in zoo.cfg and the content of `myid`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServerId(pub u64);

impl fmt::Display for ServerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A client session id. The top byte is the id of the server that created it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SessionId(pub i64);

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:x}", self.0)
    }
}

/// Decides whether a set of servers is a quorum (ZooKeeper's `QuorumMaj`):
/// a set is a quorum iff it holds more than half of the voters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuorumVerifier {
    voters: BTreeSet<ServerId>,
    observers: BTreeSet<ServerId>,
}

impl QuorumVerifier {
    pub fn new(
        voters: impl IntoIterator<Item = ServerId>,
        observers: impl IntoIterator<Item = ServerId>,
    ) -> Self {
        QuorumVerifier {
            voters: voters.into_iter().collect(),
            observers: observers.into_iter().collect(),
        }
    }
    pub fn voters(&self) -> &BTreeSet<ServerId> {
        &self.voters
    }
    pub fn observers(&self) -> &BTreeSet<ServerId> {
        &self.observers
    }
    pub fn is_voter(&self, id: ServerId) -> bool {
        self.voters.contains(&id)
    }
    /// Counts only voters, each once: acks from observers or strangers,
    /// or one voter named twice, never make a quorum (ZooKeeper's
    /// `QuorumMaj.containsQuorum` takes a set).
    pub fn contains_quorum<'a>(&self, ids: impl IntoIterator<Item = &'a ServerId>) -> bool {
        // Called for every commit: the first 64 voters are marked in a
        // word, so the common case allocates nothing.
        let mut seen = 0u64;
        let mut beyond = BTreeSet::new();
        let mut n = 0;
        for id in ids {
            let Some(pos) = self.voters.iter().position(|v| v == id) else {
                continue;
            };
            let new = if pos < 64 {
                let bit = 1u64 << pos;
                let new = seen & bit == 0;
                seen |= bit;
                new
            } else {
                beyond.insert(id)
            };
            n += usize::from(new);
        }
        n > self.voters.len() / 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quorum_counts_each_voter_once() {
        let v = QuorumVerifier::new([ServerId(1), ServerId(2), ServerId(3)], [ServerId(4)]);
        assert!(!v.contains_quorum(&[ServerId(1), ServerId(1)]));
        assert!(!v.contains_quorum(&[ServerId(1), ServerId(4), ServerId(9)]));
        assert!(v.contains_quorum(&[ServerId(1), ServerId(3)]));
        // Past 64 voters too.
        let many = QuorumVerifier::new((1..=100).map(ServerId), []);
        let ids: Vec<ServerId> = (40..=90).map(ServerId).collect();
        assert!(many.contains_quorum(&ids));
        let twice: Vec<ServerId> = (66..=90).chain(66..=90).map(ServerId).collect();
        assert!(!many.contains_quorum(&twice));
    }

    #[test]
    fn zxid_parts() {
        let z = Zxid::new(Epoch(3), 7);
        assert_eq!(z.0, 0x3_0000_0007);
        assert_eq!(z.epoch(), Epoch(3));
        assert_eq!(z.counter(), 7);
        assert!(!z.is_epoch_start());
        assert!(Zxid::new(Epoch(4), 0).is_epoch_start());
        assert!(Zxid::new(Epoch(4), 0) > Zxid::new(Epoch(3), u32::MAX));
    }

    #[test]
    fn majority_quorum() {
        let qv = QuorumVerifier::new([1, 2, 3].map(ServerId), [ServerId(4)]);
        assert!(!qv.contains_quorum(&[ServerId(1)]));
        assert!(!qv.contains_quorum(&[ServerId(1), ServerId(4)]));
        assert!(qv.contains_quorum(&[ServerId(1), ServerId(3)]));
        let qv4 = QuorumVerifier::new([1, 2, 3, 4].map(ServerId), []);
        assert!(!qv4.contains_quorum(&[ServerId(1), ServerId(2)]));
        assert!(qv4.contains_quorum(&[ServerId(1), ServerId(2), ServerId(3)]));
    }
}
