//! How long the store's slow operations took — each synced write of the
//! txn log, each snapshot saved — kept as ZooKeeper keeps its basic
//! summaries (`fsynctime`, `snapshottime`): a count, a sum, the shortest
//! and the longest, in whole ms, until `srst` starts them afresh.

use std::sync::atomic::{AtomicU64, Ordering};

/// A summary of durations; all 0 before the first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timings {
    pub count: u64,
    pub total_ms: u64,
    pub min_ms: u64,
    pub max_ms: u64,
}

/// Where one thread at a time records and any thread reads; a reset may
/// race a record harmlessly (the figures are for monitoring).
#[derive(Debug)]
pub(crate) struct TimingRecorder {
    count: AtomicU64,
    total_ms: AtomicU64,
    min_ms: AtomicU64,
    max_ms: AtomicU64,
}

impl Default for TimingRecorder {
    fn default() -> Self {
        TimingRecorder {
            count: AtomicU64::new(0),
            total_ms: AtomicU64::new(0),
            min_ms: AtomicU64::new(u64::MAX),
            max_ms: AtomicU64::new(0),
        }
    }
}

impl TimingRecorder {
    pub(crate) fn record(&self, ms: u64) {
        self.count.fetch_add(1, Ordering::Relaxed);
        self.total_ms.fetch_add(ms, Ordering::Relaxed);
        self.min_ms.fetch_min(ms, Ordering::Relaxed);
        self.max_ms.fetch_max(ms, Ordering::Relaxed);
    }

    pub(crate) fn read(&self) -> Timings {
        Timings {
            count: self.count.load(Ordering::Relaxed),
            total_ms: self.total_ms.load(Ordering::Relaxed),
            min_ms: match self.min_ms.load(Ordering::Relaxed) {
                u64::MAX => 0,
                ms => ms,
            },
            max_ms: self.max_ms.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn reset(&self) {
        self.count.store(0, Ordering::Relaxed);
        self.total_ms.store(0, Ordering::Relaxed);
        self.min_ms.store(u64::MAX, Ordering::Relaxed);
        self.max_ms.store(0, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_reads_and_resets() {
        let t = TimingRecorder::default();
        assert_eq!(t.read(), Timings::default());
        for ms in [4, 1, 9] {
            t.record(ms);
        }
        assert_eq!(
            t.read(),
            Timings {
                count: 3,
                total_ms: 14,
                min_ms: 1,
                max_ms: 9
            }
        );
        t.reset();
        assert_eq!(t.read(), Timings::default());
    }
}
