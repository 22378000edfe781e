//! Which snapshots and log entries a purge removes (ZooKeeper's
//! `PurgeTxnLog`, driven by `autopurge.snapRetainCount` and
//! `autopurge.purgeInterval`, reference H).
//!
//! Pure planning: [`plan`] picks the snapshots to drop; [`crate::Store::purge`]
//! carries the plan out. The log is cut below the oldest snapshot kept (see
//! `TxnLog::purge_before` for exactly where).

use zab_wire::Zxid;

use crate::{SnapshotInfo, StoreError};

/// The smallest `autopurge.snapRetainCount` ZooKeeper accepts.
pub const MIN_RETAIN: usize = 3;

/// What a purge removed and kept.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PurgeReport {
    /// Zxids of the snapshots deleted, oldest first.
    pub snapshots_removed: Vec<Zxid>,
    /// Zxids of the snapshots kept, oldest first.
    pub snapshots_kept: Vec<Zxid>,
    /// First zxid left in the txn log (`None` if the log is empty).
    pub log_kept_from: Option<Zxid>,
}

/// The snapshots to delete and the oldest one kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PurgePlan {
    pub remove: Vec<Zxid>,
    pub keep: Vec<Zxid>,
}

impl PurgePlan {
    /// The log must be replayable from here on.
    pub fn oldest_kept(&self) -> Option<Zxid> {
        self.keep.first().copied()
    }
}

/// Keeps the newest `retain` snapshots of `snapshots` (any order).
pub(crate) fn plan(snapshots: &[SnapshotInfo], retain: usize) -> Result<PurgePlan, StoreError> {
    if retain < MIN_RETAIN {
        return Err(StoreError::RetainTooSmall(retain));
    }
    let mut zxids: Vec<Zxid> = snapshots.iter().map(|s| s.zxid).collect();
    zxids.sort_unstable();
    zxids.dedup();
    let keep = zxids.split_off(zxids.len().saturating_sub(retain));
    Ok(PurgePlan {
        remove: zxids,
        keep,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snaps(zxids: &[i64]) -> Vec<SnapshotInfo> {
        zxids
            .iter()
            .map(|z| SnapshotInfo {
                zxid: Zxid(*z),
                size: 1,
            })
            .collect()
    }

    #[test]
    fn keeps_the_newest_n() {
        let p = plan(&snaps(&[50, 10, 40, 20, 30]), 3).unwrap();
        assert_eq!(p.remove, [Zxid(10), Zxid(20)]);
        assert_eq!(p.keep, [Zxid(30), Zxid(40), Zxid(50)]);
        assert_eq!(p.oldest_kept(), Some(Zxid(30)));
    }

    #[test]
    fn fewer_than_n_keeps_all() {
        let p = plan(&snaps(&[7, 3]), 3).unwrap();
        assert!(p.remove.is_empty());
        assert_eq!(p.oldest_kept(), Some(Zxid(3)));
        let p = plan(&[], 5).unwrap();
        assert!(p.remove.is_empty() && p.oldest_kept().is_none());
    }

    #[test]
    fn retain_below_three_is_refused() {
        assert!(matches!(
            plan(&snaps(&[1, 2, 3, 4]), 2),
            Err(StoreError::RetainTooSmall(2))
        ));
    }
}
