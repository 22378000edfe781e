//! The group-commit queue: the pure part of the txn log writer.
//!
//! Callers push commands under a mutex; the writer thread takes *everything*
//! queued at once and turns consecutive appends into one synced write. This
//! module owns only the bookkeeping — ordering checks, draining, grouping —
//! so it can be tested without RocksDB or threads.

use std::sync::mpsc::SyncSender;

use bytes::Bytes;
use zab_wire::Zxid;

use crate::StoreError;

/// Called once an append is durable (or has failed).
pub(crate) type DurableCallback = Box<dyn FnOnce(Result<(), StoreError>) + Send + 'static>;

/// One request to the writer thread.
pub(crate) enum Command {
    Append {
        entries: Vec<(Zxid, Bytes)>,
        on_durable: DurableCallback,
    },
    /// Remove entries above `after` (TRUNC sync, reference F.4).
    Truncate {
        after: Zxid,
        done: SyncSender<Result<(), StoreError>>,
    },
    /// Remove entries below the newest entry `<= snapshot` (purge).
    /// Replies with the first zxid kept.
    PurgeBefore {
        snapshot: Zxid,
        done: SyncSender<Result<Option<Zxid>, StoreError>>,
    },
}

/// A run of work for the writer: either one group of appends to commit with
/// a single write, or one maintenance command.
pub(crate) enum Step {
    Commit(Vec<(Vec<(Zxid, Bytes)>, DurableCallback)>),
    Other(Command),
}

/// Commands waiting for the writer, plus what is needed to validate new ones.
pub(crate) struct CommandQueue {
    pending: Vec<Command>,
    /// Txns in the queued appends.
    pending_txns: usize,
    /// The writer is holding a group open until this many txns are queued
    /// (see `group_commit`); `usize::MAX` when it is not.
    wake_at: usize,
    /// The highest zxid that is durable or queued: the next append must be above it.
    last_queued: Zxid,
    failed: Option<StoreError>,
    closed: bool,
}

impl CommandQueue {
    pub fn new(last_durable: Zxid) -> Self {
        CommandQueue {
            pending: Vec::new(),
            pending_txns: 0,
            wake_at: usize::MAX,
            last_queued: last_durable,
            failed: None,
            closed: false,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Txns in the queued appends.
    pub fn pending_txns(&self) -> usize {
        self.pending_txns
    }

    /// The writer waits until `txns` are queued: the append that gets
    /// there must wake it. `usize::MAX` clears it.
    pub fn wake_at(&mut self, txns: usize) {
        self.wake_at = txns;
    }

    /// Whether the writer is holding a group open.
    #[cfg(test)]
    pub fn is_holding(&self) -> bool {
        self.wake_at != usize::MAX
    }

    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Refuses everything from now on (the store is shutting down).
    pub fn close(&mut self) {
        self.closed = true;
    }

    /// Marks the log as failed: a write's outcome is unknown, so nothing
    /// may be appended after it (ZooKeeper exits on a txn log I/O error).
    pub fn fail(&mut self, err: StoreError) {
        if self.failed.is_none() {
            self.failed = Some(err);
        }
    }

    /// The error every write gets once the log has failed.
    pub fn failure(&self) -> Option<StoreError> {
        self.failed
            .as_ref()
            .map(|e| StoreError::LogFailed(std::sync::Arc::new(e.clone())))
    }

    fn usable(&self) -> Result<(), StoreError> {
        if let Some(e) = self.failure() {
            return Err(e);
        }
        if self.closed {
            return Err(StoreError::Closed);
        }
        Ok(())
    }

    /// Queues an append; `Ok(true)` when the writer must be woken for it:
    /// the queue was empty, or this append brought it to the size the
    /// writer is waiting for. (Any other append finds a wake-up already on
    /// its way, or a writer that looks at the queue before it waits again.)
    /// On refusal the callback is handed back so the caller can report the
    /// error outside the lock.
    pub fn push_append(
        &mut self,
        entries: Vec<(Zxid, Bytes)>,
        on_durable: DurableCallback,
    ) -> Result<bool, (StoreError, DurableCallback)> {
        if let Err(e) = self.usable() {
            return Err((e, on_durable));
        }
        let mut last = self.last_queued;
        for (zxid, _) in &entries {
            if zxid.0 < 0 {
                return Err((StoreError::InvalidZxid(*zxid), on_durable));
            }
            if *zxid <= last {
                return Err((StoreError::NotIncreasing { zxid: *zxid, last }, on_durable));
            }
            last = *zxid;
        }
        self.last_queued = last;
        let was_empty = self.pending.is_empty();
        let before = self.pending_txns;
        self.pending_txns += entries.len();
        self.pending.push(Command::Append {
            entries,
            on_durable,
        });
        Ok(was_empty || (before < self.wake_at && self.pending_txns >= self.wake_at))
    }

    /// Queues a truncation. Appends queued after it are checked against the
    /// truncated log, so they may reuse zxids above `after`.
    pub fn push_truncate(
        &mut self,
        after: Zxid,
        done: SyncSender<Result<(), StoreError>>,
    ) -> Result<(), StoreError> {
        self.usable()?;
        if after.0 < 0 {
            return Err(StoreError::InvalidZxid(after));
        }
        self.last_queued = self.last_queued.min(after);
        self.pending.push(Command::Truncate { after, done });
        Ok(())
    }

    pub fn push_purge(
        &mut self,
        snapshot: Zxid,
        done: SyncSender<Result<Option<Zxid>, StoreError>>,
    ) -> Result<(), StoreError> {
        self.usable()?;
        self.pending.push(Command::PurgeBefore { snapshot, done });
        Ok(())
    }

    /// Takes everything queued, grouped into steps: consecutive appends form
    /// one commit (group commit), other commands keep their place in order.
    /// Everything queued, as steps for the writer; appends grouped as
    /// [`group`] says.
    pub fn take(&mut self, max_batch: usize) -> Vec<Step> {
        self.pending_txns = 0;
        group(std::mem::take(&mut self.pending), max_batch)
    }
}

/// Consecutive appends become one synced group of at most `max_batch`
/// txns: ZooKeeper's `maxBatchSize` is the most txns one flush of its log
/// covers. An append is never split across syncs (its callback reports
/// the whole of it), so one larger than `max_batch` is a group of its own.
fn group(commands: Vec<Command>, max_batch: usize) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut appends = Vec::new();
    let mut txns = 0;
    for cmd in commands {
        match cmd {
            Command::Append {
                entries,
                on_durable,
            } => {
                if txns > 0 && txns + entries.len() > max_batch {
                    steps.push(Step::Commit(std::mem::take(&mut appends)));
                    txns = 0;
                }
                txns += entries.len();
                appends.push((entries, on_durable));
            }
            other => {
                if !appends.is_empty() {
                    steps.push(Step::Commit(std::mem::take(&mut appends)));
                    txns = 0;
                }
                steps.push(Step::Other(other));
            }
        }
    }
    if !appends.is_empty() {
        steps.push(Step::Commit(appends));
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::sync_channel;

    fn noop() -> DurableCallback {
        Box::new(|_| {})
    }

    fn entry(z: i64) -> (Zxid, Bytes) {
        (Zxid(z), Bytes::from_static(b"t"))
    }

    #[test]
    fn appends_must_strictly_increase() {
        let mut q = CommandQueue::new(Zxid(5));
        assert!(matches!(
            q.push_append(vec![entry(5)], noop()),
            Err((StoreError::NotIncreasing { .. }, _))
        ));
        q.push_append(vec![entry(6), entry(7)], noop())
            .ok()
            .unwrap();
        // Within one batch too.
        assert!(q.push_append(vec![entry(9), entry(8)], noop()).is_err());
        assert!(q.push_append(vec![entry(7)], noop()).is_err());
        assert!(q.push_append(vec![entry(-1)], noop()).is_err());
        // A refused batch leaves no trace: 8 is still free.
        q.push_append(vec![entry(8)], noop()).ok().unwrap();
    }

    #[test]
    fn consecutive_appends_become_one_commit() {
        let mut q = CommandQueue::new(Zxid::ZERO);
        for z in 1..=3 {
            q.push_append(vec![entry(z)], noop()).ok().unwrap();
        }
        let (tx, _rx) = sync_channel(1);
        q.push_truncate(Zxid(2), tx).unwrap();
        // After a queued truncation, zxid 3 may be appended again.
        q.push_append(vec![entry(3)], noop()).ok().unwrap();
        q.push_append(vec![entry(4)], noop()).ok().unwrap();
        let steps = q.take(usize::MAX);
        let shape: Vec<String> = steps
            .iter()
            .map(|s| match s {
                Step::Commit(groups) => format!("commit{}", groups.len()),
                Step::Other(Command::Truncate { after, .. }) => format!("trunc{}", after.0),
                Step::Other(_) => "other".into(),
            })
            .collect();
        assert_eq!(shape, ["commit3", "trunc2", "commit2"]);
        assert!(q.is_empty());
    }

    /// The txns of each commit step, appends kept whole.
    fn commit_sizes(steps: &[Step]) -> Vec<usize> {
        steps
            .iter()
            .filter_map(|s| match s {
                Step::Commit(groups) => Some(groups.iter().map(|(e, _)| e.len()).sum()),
                Step::Other(_) => None,
            })
            .collect()
    }

    #[test]
    fn a_group_holds_at_most_max_batch_txns_and_never_splits_an_append() {
        let mut q = CommandQueue::new(Zxid::ZERO);
        let mut z = 0;
        let mut push = |q: &mut CommandQueue, n: i64| {
            q.push_append((z + 1..=z + n).map(entry).collect(), noop())
                .ok()
                .unwrap();
            z += n;
        };
        // 3 + 3 + 3 + 3: cut before the append that would pass 8.
        for _ in 0..4 {
            push(&mut q, 3);
        }
        assert_eq!(commit_sizes(&q.take(8)), [6, 6]);
        // Exactly the cap in one group; an append larger than it alone.
        push(&mut q, 4);
        push(&mut q, 4);
        push(&mut q, 20);
        push(&mut q, 1);
        assert_eq!(commit_sizes(&q.take(8)), [8, 20, 1]);
        // Without a cap, one group.
        push(&mut q, 5);
        push(&mut q, 5);
        assert_eq!(commit_sizes(&q.take(usize::MAX)), [10]);
    }

    #[test]
    fn wakes_the_writer_on_the_first_append_and_at_the_size_it_waits_for() {
        let mut q = CommandQueue::new(Zxid::ZERO);
        assert!(q.push_append(vec![entry(1)], noop()).ok().unwrap());
        assert!(!q.push_append(vec![entry(2)], noop()).ok().unwrap());
        q.wake_at(5);
        assert!(q.is_holding());
        assert!(!q.push_append(vec![entry(3)], noop()).ok().unwrap());
        // 3 -> 5 txns: reaching the size wakes, even mid-batch.
        assert!(q
            .push_append(vec![entry(4), entry(5)], noop())
            .ok()
            .unwrap());
        assert!(!q.push_append(vec![entry(6)], noop()).ok().unwrap());
        assert_eq!(q.pending_txns(), 6);
        q.wake_at(usize::MAX);
        assert!(!q.is_holding());
        q.take(usize::MAX);
        assert_eq!(q.pending_txns(), 0);
        assert!(q.push_append(vec![entry(7)], noop()).ok().unwrap());
    }

    #[test]
    fn failed_queue_refuses_everything() {
        let mut q = CommandQueue::new(Zxid::ZERO);
        q.fail(StoreError::Corrupt("disk".into()));
        assert!(matches!(
            q.push_append(vec![entry(1)], noop()),
            Err((StoreError::LogFailed(_), _))
        ));
        let (tx, _rx) = sync_channel(1);
        assert!(q.push_truncate(Zxid(0), tx).is_err());
        let mut q = CommandQueue::new(Zxid::ZERO);
        q.close();
        assert!(matches!(
            q.push_append(vec![entry(1)], noop()),
            Err((StoreError::Closed, _))
        ));
    }
}
