//! When the log writer syncs: at once, or after holding a group open for
//! more appends.
//!
//! A synced write costs about the same whether it covers one txn or a
//! hundred, and under load most of that cost is CPU the requests need too
//! (on the benchmark VM a `write` + `fdatasync` costs ≈ 90 µs of CPU, nearly
//! all of it kernel time and the virtual disk's notifications). Syncing as
//! soon as anything is queued therefore spends the most CPU exactly when
//! it is scarcest. ZooKeeper offers the same trade as `flushDelay` (default
//! off, "ensembles with high write rates may see throughput improved").
//!
//! zab holds a group only when the log is busy — the previous group had at
//! least [`GroupCommit::busy_group`] txns — and only until as many txns as
//! that group had are queued again, or [`GroupCommit::max_delay`] has
//! passed, whichever comes first. A lone client never waits (its groups
//! are one txn), and a closed loop of clients is synced as soon as its
//! whole cohort of requests is back, not after a fixed delay.

use std::time::Duration;

/// The group commit policy of a [`crate::TxnLog`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupCommit {
    /// Longest a group is held open; zero syncs whatever is queued at once.
    /// (zoo.cfg `flushDelay`.)
    pub max_delay: Duration,
    /// A group is held only when the previous one had at least this many
    /// txns.
    pub busy_group: usize,
    /// A held group is synced once this many txns are queued, however large
    /// the previous group was, and no sync covers more than this many (an
    /// append larger than it is synced alone). (zoo.cfg `maxBatchSize`,
    /// ZooKeeper's default 1000: the most txns one flush of its log covers.)
    pub max_batch: usize,
}

impl Default for GroupCommit {
    /// Hold busy groups for up to 1 ms. Measured on the benchmark VM
    /// (BENCHMARKS.md): 32 sessions × 8 writes in flight went from ≈ 50 to
    /// ≈ 110 txns per sync and +13 % writes/s; 32 × 1 from 9 to 31 txns per
    /// sync and +25 % with a lower p50; one client alone unchanged.
    fn default() -> Self {
        GroupCommit {
            max_delay: Duration::from_millis(1),
            busy_group: 16,
            max_batch: 1000,
        }
    }
}

impl GroupCommit {
    /// Sync whatever is queued at once (ZooKeeper's default, `flushDelay=0`).
    pub const IMMEDIATE: GroupCommit = GroupCommit {
        max_delay: Duration::ZERO,
        busy_group: usize::MAX,
        max_batch: usize::MAX,
    };

    /// How many queued txns the writer waits for (for at most `max_delay`)
    /// before its next sync, given the size of its previous group and how
    /// many txns are queued now; `None` means sync now.
    pub(crate) fn hold(&self, previous_group: usize, queued: usize) -> Option<usize> {
        if self.max_delay.is_zero() || previous_group < self.busy_group {
            return None;
        }
        let target = previous_group.min(self.max_batch);
        (queued < target).then_some(target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> GroupCommit {
        GroupCommit {
            max_delay: Duration::from_millis(1),
            busy_group: 16,
            max_batch: 100,
        }
    }

    #[test]
    fn a_quiet_log_syncs_at_once() {
        assert_eq!(policy().hold(0, 1), None);
        assert_eq!(policy().hold(15, 1), None);
    }

    #[test]
    fn a_busy_log_waits_for_a_group_as_large_as_the_last() {
        assert_eq!(policy().hold(16, 1), Some(16));
        assert_eq!(policy().hold(40, 39), Some(40));
        assert_eq!(policy().hold(40, 40), None);
    }

    #[test]
    fn max_batch_caps_the_wait() {
        assert_eq!(policy().hold(500, 10), Some(100));
        assert_eq!(policy().hold(500, 100), None);
    }

    #[test]
    fn no_delay_never_holds() {
        let p = GroupCommit {
            max_delay: Duration::ZERO,
            ..policy()
        };
        assert_eq!(p.hold(1000, 1), None);
        assert_eq!(GroupCommit::IMMEDIATE.hold(usize::MAX - 1, 0), None);
    }
}
