//! Which snapshots and log entries a purge removes (ZooKeeper's
//! `PurgeTxnLog`, driven by `autopurge.snapRetainCount` and
//! `autopurge.purgeInterval`, reference H).
//!
//! Pure planning: [`plan`] picks the snapshots to drop; [`crate::Store::purge`]
//! carries the plan out. The log is cut below the oldest snapshot kept (see
//! `TxnLog::purge_before` for exactly where).

use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use rocksdb::DB;
use zab_wire::Zxid;

use crate::layout::{chunk_range, log_key, CF_LOG, CF_SNAPSHOTS};
use crate::{cf, SnapshotInfo, SnapshotStore, StoreError, TxnLog};

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

/// What a purge needs of the store; cheap to clone into a thread.
pub(crate) struct Purger {
    pub db: Arc<DB>,
    pub log: TxnLog,
    pub snapshots: SnapshotStore,
}

impl Purger {
    pub fn purge(&self, retain: usize) -> Result<PurgeReport, StoreError> {
        let plan = plan(&self.snapshots.list()?, retain)?;
        let mut removed_ids = Vec::new();
        for zxid in &plan.remove {
            removed_ids.extend(self.snapshots.delete_returning_id(*zxid)?);
        }
        let first_before = self.log.first_zxid();
        let log_kept_from = match plan.oldest_kept() {
            Some(oldest) => self.log.purge_before(oldest)?,
            None => first_before,
        };
        // Reclaim the space now rather than at some later compaction, so
        // `disk_usage` reflects the purge. Only the deleted key ranges are
        // compacted: the snapshots kept are not rewritten. Save ids grow
        // with time, so every removed snapshot's chunks sort below `end`.
        if let Some(max_id) = removed_ids.iter().max() {
            let (_, end) = chunk_range(*max_id);
            self.db
                .compact_range_cf(cf(&self.db, CF_SNAPSHOTS)?, None::<&[u8]>, Some(end));
        }
        if let (Some(kept), true) = (log_kept_from, log_kept_from != first_before) {
            self.db
                .compact_range_cf(cf(&self.db, CF_LOG)?, None::<&[u8]>, Some(log_key(kept)));
        }
        tracing::info!(
            removed = plan.remove.len(),
            kept = plan.keep.len(),
            log_kept_from = ?log_kept_from,
            "purged"
        );
        Ok(PurgeReport {
            snapshots_removed: plan.remove,
            snapshots_kept: plan.keep,
            log_kept_from,
        })
    }
}

/// A running autopurge thread; see [`crate::Store::start_autopurge`].
pub struct AutoPurge {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl AutoPurge {
    pub(crate) fn start(
        purger: Purger,
        retain: usize,
        interval: Duration,
    ) -> Result<Option<AutoPurge>, StoreError> {
        if retain < MIN_RETAIN {
            return Err(StoreError::RetainTooSmall(retain));
        }
        if interval.is_zero() {
            return Ok(None);
        }
        let (stop, stopped) = channel::<()>();
        let thread = std::thread::Builder::new()
            .name("zab-store-purge".into())
            .spawn(move || loop {
                match stopped.recv_timeout(interval) {
                    Err(RecvTimeoutError::Timeout) => {
                        if let Err(e) = purger.purge(retain) {
                            // Like ZooKeeper's PurgeTask: log and try again
                            // at the next interval.
                            tracing::warn!(error = %e, "autopurge failed");
                        }
                    }
                    Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
                }
            })?;
        Ok(Some(AutoPurge {
            stop: Some(stop),
            thread: Some(thread),
        }))
    }
}

impl Drop for AutoPurge {
    fn drop(&mut self) {
        // Dropping the sender wakes the thread at once.
        self.stop.take();
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                tracing::error!("autopurge thread panicked");
            }
        }
    }
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
