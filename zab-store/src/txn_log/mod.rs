//! The txn log: appends with group commit, reads from a zxid, truncation.
//!
//! One writer thread owns every write to the `log` column family. Callers
//! queue appends (cheap: a push under a mutex) and are told through a
//! callback when their txns are durable. The writer takes *everything*
//! queued while its previous write was syncing, in groups of at most
//! `GroupCommit::max_batch` txns (zoo.cfg `maxBatchSize`). It syncs each
//! group as one record of the journal (`journal.rs`: a preallocated file
//! overwritten in place, where RocksDB's WAL would grow a file per sync)
//! and puts it into the `log` column family (a `LogGroup` key per
//! `GROUP_BYTES`, see `layout.rs`) without RocksDB's WAL: one fsync
//! covers many txns (group commit,
//! ARCHITECTURE "How a write flows" step 4; under load a group is held open
//! a little longer, see `group_commit`), and no callback runs before the
//! sync that covers its txn returned. Callbacks run on the writer thread in
//! zxid order, so they must be cheap (send on a channel).
//!
//! Truncation (TRUNC sync, reference F.4) and purge go through the same
//! queue, so they are ordered with the appends around them.
//!
//! Readers see single txns: a read from a zxid starts in the group that
//! holds it, truncation rewrites the group holding its zxid without the
//! entries above it, and purge stores the group holding the first kept
//! entry again under that entry's zxid.

mod group_commit;
mod journal;
mod queue;

use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc::sync_channel;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Instant;

use bytes::Bytes;
use rocksdb::{FlushOptions, WriteBatch, WriteOptions, DB};
use zab_wire::Zxid;

use crate::layout::{
    decode_log_key, log_key, LogGroup, CF_LOG, CF_META, CF_SNAPSHOTS, LOG_KEY_END,
};
use crate::timings::{TimingRecorder, Timings};
use crate::{cf, StoreError};
pub use group_commit::GroupCommit;
use journal::Journal;
use queue::{Command, CommandQueue, DurableCallback, Step};

/// Counters of the log writer, for metrics and for checking that group
/// commit actually groups.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogStats {
    /// RocksDB writes of appended txns (each one synced when `forceSync`).
    pub sync_writes: u64,
    /// Txns made durable.
    pub txns: u64,
    /// Txn bytes made durable.
    pub bytes: u64,
    /// The journal's synced writes (under `forceSync`; none without it),
    /// timed as ZooKeeper times its log's `fsync` (`fsynctime`).
    pub sync_times: Timings,
    /// Syncs that took longer than `fsync.warningthresholdms` since the
    /// log opened (ZooKeeper's `fsync_threshold_exceed_count`, which `srst`
    /// does not reset).
    pub syncs_over_threshold: u64,
}

/// A handle on the txn log. Cheap to clone; `Send + Sync`.
///
/// The writer thread stops (after finishing what is queued) when the last
/// handle — including the one inside [`crate::Store`] — is dropped.
#[derive(Clone)]
pub struct TxnLog {
    handle: Arc<Handle>,
}

/// Owns the writer thread; joins it on drop.
struct Handle {
    core: Arc<LogCore>,
    writer: Mutex<Option<JoinHandle<()>>>,
    writer_id: std::thread::ThreadId,
}

/// Shared by the handles and the writer thread.
struct LogCore {
    db: Arc<DB>,
    /// Where appended groups are made durable (see `journal.rs`); only the
    /// writer thread locks it.
    journal: Mutex<Journal>,
    sync: bool,
    group_commit: GroupCommit,
    queue: Mutex<CommandQueue>,
    wake: Condvar,
    /// Last durable zxid (0 when the log is empty).
    last_durable: AtomicI64,
    /// First zxid in the log, or -1 when empty.
    first: AtomicI64,
    /// Bumped before every truncation that removes entries, so a reader can
    /// tell that what it is reading may have been replaced.
    generation: AtomicU64,
    /// Entries below this zxid have been purged.
    purged_below: AtomicI64,
    sync_writes: AtomicU64,
    txns: AtomicU64,
    bytes: AtomicU64,
    /// Timed syncs (see [`LogStats`]); only the writer thread records.
    sync_times: TimingRecorder,
    /// Syncs longer than this many ms are warned of and counted in
    /// `syncs_over_threshold`.
    fsync_warning_ms: u64,
    syncs_over_threshold: AtomicU64,
    /// Lets tests hold the writer so that appends pile up deterministically.
    #[cfg(test)]
    gate: Mutex<()>,
}

/// Entries are read from RocksDB a page at a time, so a long read (DIFF
/// sync) never pins a RocksDB iterator or snapshot for long.
const PAGE_ENTRIES: usize = 1024;
const PAGE_BYTES: usize = 4 << 20;

/// A synced group larger than this is stored under several keys (in the
/// same write).
const GROUP_BYTES: usize = 1 << 20;

/// Size of a journal segment: a round of the journal covers this much of
/// the log before RocksDB is asked to flush it into table files. (Unit
/// tests use small segments, so that their logs go through many rounds.)
const JOURNAL_SEGMENT_BYTES: u64 = if cfg!(test) { 16 << 10 } else { 64 << 20 };

/// Longest the writer waits, at a journal round's end, for RocksDB to
/// finish flushing the round before last (normally done long before).
const FLUSH_WAIT_LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding these locks cannot leave them inconsistent (each
    // critical section is a push or a swap), so poisoning is ignored.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl TxnLog {
    pub(crate) fn open(
        db: Arc<DB>,
        dir: &Path,
        sync: bool,
        group_commit: GroupCommit,
        fsync_warning_ms: u64,
    ) -> Result<TxnLog, StoreError> {
        let journal = recover(&db, dir, sync)?;
        let (first, last) = {
            let cf = cf(&db, CF_LOG)?;
            let mut it = db.raw_iterator_cf(cf);
            it.seek_to_first();
            let first = match it.key() {
                Some(k) => Some(decode_log_key(k)?),
                None => None,
            };
            it.status()?;
            it.seek_to_last();
            let last = match it.item() {
                Some((k, v)) => last_entry(k, v)?,
                None => Zxid::ZERO,
            };
            it.status()?;
            (first, last)
        };
        let core = Arc::new(LogCore {
            db,
            journal: Mutex::new(journal),
            sync,
            group_commit,
            queue: Mutex::new(CommandQueue::new(last)),
            wake: Condvar::new(),
            last_durable: AtomicI64::new(last.0),
            first: AtomicI64::new(first.map_or(-1, |z| z.0)),
            generation: AtomicU64::new(0),
            purged_below: AtomicI64::new(0),
            sync_writes: AtomicU64::new(0),
            sync_times: TimingRecorder::default(),
            fsync_warning_ms,
            syncs_over_threshold: AtomicU64::new(0),
            txns: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            #[cfg(test)]
            gate: Mutex::new(()),
        });
        let writer = {
            let core = Arc::clone(&core);
            std::thread::Builder::new()
                .name("zab-store-log".into())
                .spawn(move || core.run())?
        };
        tracing::debug!(first = ?first, last = %last, "txn log opened");
        Ok(TxnLog {
            handle: Arc::new(Handle {
                core,
                writer_id: writer.thread().id(),
                writer: Mutex::new(Some(writer)),
            }),
        })
    }

    fn core(&self) -> &LogCore {
        &self.handle.core
    }

    /// Blocking calls wait for the writer thread; from a callback (which
    /// runs on it) they would wait forever.
    fn check_not_writer(&self) -> Result<(), StoreError> {
        if std::thread::current().id() == self.handle.writer_id {
            return Err(StoreError::CalledFromCallback);
        }
        Ok(())
    }

    /// Queues `txn` (opaque bytes: an encoded `zab_wire::proto::Txn`) under
    /// `zxid`. Zxids must be strictly increasing across all appends.
    ///
    /// `on_durable` gets `Ok(())` once the write covering this txn is synced
    /// (callbacks run in zxid order on the writer thread), or the error. A
    /// refused append (zxid not increasing, log failed or closed) calls it
    /// right away on the caller's thread.
    pub fn append(
        &self,
        zxid: Zxid,
        txn: Bytes,
        on_durable: impl FnOnce(Result<(), StoreError>) + Send + 'static,
    ) {
        self.append_batch(vec![(zxid, txn)], on_durable)
    }

    /// Same as [`TxnLog::append`] for a batch the caller already has; one
    /// callback for the whole batch, which is durable all or nothing.
    ///
    /// An empty batch is a barrier: its callback runs once everything
    /// queued before it is durable.
    pub fn append_batch(
        &self,
        entries: Vec<(Zxid, Bytes)>,
        on_durable: impl FnOnce(Result<(), StoreError>) + Send + 'static,
    ) {
        let core = self.core();
        let pushed = lock(&core.queue).push_append(entries, Box::new(on_durable));
        match pushed {
            // Only the appends the queue says the writer waits for wake it.
            // (A notify is a futex syscall even with nobody waiting; one per
            // append was ~5,000 per second per server under load.)
            Ok(true) => core.wake.notify_one(),
            Ok(false) => {}
            Err((err, on_durable)) => on_durable(Err(err)),
        }
    }

    /// The last durable zxid (`Zxid::ZERO` if the log is empty).
    pub fn last_zxid(&self) -> Zxid {
        Zxid(self.core().last_durable.load(Ordering::SeqCst))
    }

    /// The first zxid still in the log (purge moves it up).
    pub fn first_zxid(&self) -> Option<Zxid> {
        match self.core().first.load(Ordering::SeqCst) {
            z if z < 0 => None,
            z => Some(Zxid(z)),
        }
    }

    /// Entries with zxid `>= from`, in zxid order.
    ///
    /// The iterator reads in pages. If the log is truncated, or entries it
    /// has yet to read are purged, while it is in use, it yields
    /// [`StoreError::ChangedWhileReading`] and stops rather than silently
    /// mixing two histories.
    pub fn read_from(&self, from: Zxid) -> Result<LogIter, StoreError> {
        let core = Arc::clone(&self.handle.core);
        Ok(LogIter {
            generation: core.generation.load(Ordering::SeqCst),
            purged_below: core.purged_below.load(Ordering::SeqCst),
            core,
            next: Some(Zxid(from.0.max(0))),
            buf: VecDeque::new(),
        })
    }

    /// The last `n` entries with zxid `<= upto`, oldest first: the window a
    /// new leader keeps in memory for DIFF sync (ZooKeeper's committedLog,
    /// rebuilt when a database loads). Reads backwards from `upto`, so it
    /// costs O(n) whatever the size of the log.
    pub fn tail(&self, upto: Zxid, n: usize) -> Result<Vec<(Zxid, Bytes)>, StoreError> {
        let core = self.core();
        let cf = cf(&core.db, CF_LOG)?;
        let mut it = core.db.raw_iterator_cf(cf);
        it.seek_for_prev(log_key(Zxid(upto.0.max(0))));
        let mut out = Vec::with_capacity(n.min(4096));
        while out.len() < n {
            let Some((k, v)) = it.item() else { break };
            let group = LogGroup::decode(k, v)?;
            let wanted = group.into_iter().rev().filter(|(z, _)| *z <= upto);
            out.extend(wanted.take(n - out.len()));
            it.prev();
        }
        it.status()?;
        out.reverse();
        Ok(out)
    }

    /// Removes every entry with zxid `> zxid` (TRUNC sync, reference F.4).
    /// Waits for the appends queued before it, and is synced before it
    /// returns. Appends after it must be above `zxid` (the history the
    /// leader continues from) and may reuse the removed zxids.
    pub fn truncate_after(&self, zxid: Zxid) -> Result<(), StoreError> {
        self.check_not_writer()?;
        let (tx, rx) = sync_channel(1);
        lock(&self.core().queue).push_truncate(zxid, tx)?;
        self.core().wake.notify_one();
        rx.recv().map_err(|_| StoreError::Closed)?
    }

    /// Bytes of the txns with `from <= zxid <= to` (values only), for
    /// ZooKeeper's `snapshotSizeFactor` rule (reference F.4 rule 5 (b)).
    pub fn size_between(&self, from: Zxid, to: Zxid) -> Result<u64, StoreError> {
        self.sum_sizes(from, to, u64::MAX)
    }

    /// Whether the txns with zxid `>= from` take more than `limit` bytes
    /// (values only). It reads no further than the first group past the
    /// limit, so asking of a long log costs what the limit allows, not
    /// what the log holds, as ZooKeeper's `getStorageSize` sums file
    /// lengths without reading them.
    pub fn size_exceeds(&self, from: Zxid, limit: u64) -> Result<bool, StoreError> {
        Ok(self.sum_sizes(from, Zxid(i64::MAX), limit)? > limit)
    }

    /// Σ of the txns' lengths with `from <= zxid <= to`, group by group,
    /// stopping after the group that takes it past `cap`.
    fn sum_sizes(&self, from: Zxid, to: Zxid, cap: u64) -> Result<u64, StoreError> {
        let core = self.core();
        let cf = cf(&core.db, CF_LOG)?;
        let mut it = core.db.raw_iterator_cf(cf);
        seek_group_of(&mut it, Zxid(from.0.max(0)));
        let mut total = 0u64;
        while let Some((k, v)) = it.item() {
            if decode_log_key(k)? > to {
                break;
            }
            for (z, txn) in LogGroup::entries(k, v)? {
                if (from..=to).contains(&z) {
                    total += txn.len() as u64;
                }
            }
            if total > cap {
                return Ok(total);
            }
            it.next();
        }
        it.status()?;
        Ok(total)
    }

    /// Writer counters.
    pub fn stats(&self) -> LogStats {
        let core = self.core();
        LogStats {
            sync_writes: core.sync_writes.load(Ordering::SeqCst),
            txns: core.txns.load(Ordering::SeqCst),
            bytes: core.bytes.load(Ordering::SeqCst),
            sync_times: core.sync_times.read(),
            syncs_over_threshold: core.syncs_over_threshold.load(Ordering::Relaxed),
        }
    }

    /// Starts the sync timings afresh (the `srst` four-letter word, as
    /// ZooKeeper's resets its `fsynctime`).
    pub fn reset_sync_times(&self) {
        self.core().sync_times.reset();
    }

    /// Removes the entries older than the newest entry `<= snapshot`; returns
    /// the first zxid kept. Keeping the entry at (or just before) the
    /// snapshot zxid mirrors ZooKeeper's purge, which keeps the log file
    /// containing it, and lets a DIFF from the log find `peerLastZxid`
    /// exactly (reference F.4 rule 5 (a)).
    pub(crate) fn purge_before(&self, snapshot: Zxid) -> Result<Option<Zxid>, StoreError> {
        self.check_not_writer()?;
        let (tx, rx) = sync_channel(1);
        lock(&self.core().queue).push_purge(snapshot, tx)?;
        self.core().wake.notify_one();
        rx.recv().map_err(|_| StoreError::Closed)?
    }

    /// Whether the writer is holding a group open for more appends.
    #[cfg(test)]
    pub(crate) fn is_holding(&self) -> bool {
        lock(&self.core().queue).is_holding()
    }

    /// Holds the writer before it takes the queue, until the guard drops.
    #[cfg(test)]
    pub(crate) fn hold_writer(&self) -> MutexGuard<'_, ()> {
        lock(&self.core().gate)
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        lock(&self.core.queue).close();
        self.core.wake.notify_all();
        // The last handle may be dropped by a callback, on the writer thread
        // itself: that thread cannot join itself, and exits once drained.
        if std::thread::current().id() == self.writer_id {
            return;
        }
        if let Some(writer) = lock(&self.writer).take() {
            if writer.join().is_err() {
                tracing::error!("txn log writer thread panicked");
            }
        }
    }
}

impl LogCore {
    /// The writer thread: wait for work (and, when busy, for a group worth
    /// a sync), take everything queued, do it, repeat.
    fn run(self: Arc<Self>) {
        // Txns the previous take committed: what `GroupCommit` judges load by.
        let mut previous_group = 0;
        loop {
            {
                let mut q = lock(&self.queue);
                while q.is_empty() && !q.is_closed() {
                    q = self.wake.wait(q).unwrap_or_else(|e| e.into_inner());
                }
                if q.is_empty() {
                    return; // closed and drained
                }
                self.hold_group(q, previous_group);
            }
            #[cfg(test)]
            let _held = lock(&self.gate);
            let steps = lock(&self.queue).take(self.group_commit.max_batch);
            previous_group = 0;
            for step in steps {
                match step {
                    Step::Commit(groups) => {
                        previous_group += groups.iter().map(|(e, _)| e.len()).sum::<usize>();
                        self.commit(groups);
                    }
                    Step::Other(cmd) => self.maintain(cmd),
                }
            }
        }
    }

    /// Waits, up to the policy's delay, until as many txns are queued as the
    /// policy asks for before the next sync (see `group_commit`).
    fn hold_group(&self, mut q: MutexGuard<'_, CommandQueue>, previous_group: usize) {
        if !self.sync {
            return; // without fsync a write is cheap: nothing to save
        }
        let Some(target) = self.group_commit.hold(previous_group, q.pending_txns()) else {
            return;
        };
        let deadline = Instant::now() + self.group_commit.max_delay;
        q.wake_at(target);
        while q.pending_txns() < target && !q.is_closed() {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                break;
            };
            q = self
                .wake
                .wait_timeout(q, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        q.wake_at(usize::MAX);
    }

    fn fail(&self, err: &StoreError) {
        tracing::error!(error = %err, "txn log write failed; refusing further writes");
        lock(&self.queue).fail(err.clone());
    }

    fn check_usable(&self) -> Result<(), StoreError> {
        match lock(&self.queue).failure() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn commit(&self, groups: Vec<(Vec<(Zxid, Bytes)>, DurableCallback)>) {
        let result = self.write_group(&groups);
        if let Err(e) = &result {
            self.fail(e);
        }
        for (_, on_durable) in groups {
            run_callback(on_durable, result.clone());
        }
    }

    /// One synced journal record (under `forceSync`) for every txn of the
    /// group, then the group into the `log` column family (without
    /// RocksDB's WAL: the journal is the group's durable copy until RocksDB
    /// flushes it into a table file). Readers see the txns only once they
    /// are durable.
    fn write_group(
        &self,
        groups: &[(Vec<(Zxid, Bytes)>, DurableCallback)],
    ) -> Result<(), StoreError> {
        self.check_usable()?;
        let cf = cf(&self.db, CF_LOG)?;
        let mut puts: Vec<([u8; 8], Vec<u8>)> = Vec::new();
        let mut value = Vec::new();
        let mut key = None;
        let (mut first, mut last, mut count, mut bytes) = (None, None, 0u64, 0u64);
        for (zxid, txn) in groups.iter().flat_map(|(entries, _)| entries) {
            // Keys of at most ≈ GROUP_BYTES: a reader decodes a whole key to
            // reach any txn in it, and a DIFF sync may queue a huge batch.
            if value.len() >= GROUP_BYTES {
                if let Some(k) = key.take() {
                    puts.push((log_key(k), std::mem::take(&mut value)));
                }
            }
            key.get_or_insert(*zxid);
            LogGroup::push(&mut value, *zxid, txn);
            first.get_or_insert(*zxid);
            last = Some(*zxid);
            count += 1;
            bytes += txn.len() as u64;
        }
        let (Some(first), Some(last), Some(key)) = (first, last, key) else {
            return Ok(()); // only empty batches: nothing to write
        };
        puts.push((log_key(key), value));
        let refs: Vec<(&[u8; 8], &[u8])> = puts.iter().map(|(k, v)| (k, &v[..])).collect();
        {
            let mut journal = lock(&self.journal);
            if !journal.fits(&refs) {
                self.next_round(&mut journal)?;
            }
            let started = Instant::now();
            if journal.append(&refs)? {
                self.record_sync(started.elapsed().as_millis() as u64);
            }
        }
        let mut batch = WriteBatch::default();
        for (k, v) in &puts {
            batch.put_cf(cf, k, v);
        }
        let mut opts = WriteOptions::default();
        opts.disable_wal(true);
        self.db.write_opt(batch, &opts)?;
        self.sync_writes.fetch_add(1, Ordering::SeqCst);
        self.txns.fetch_add(count, Ordering::SeqCst);
        self.bytes.fetch_add(bytes, Ordering::SeqCst);
        let _ = self
            .first
            .compare_exchange(-1, first.0, Ordering::SeqCst, Ordering::SeqCst);
        // Before the callbacks run: whoever hears "durable" sees last_zxid >= it.
        self.last_durable.store(last.0, Ordering::SeqCst);
        Ok(())
    }

    fn record_sync(&self, ms: u64) {
        if ms > self.fsync_warning_ms {
            // ZooKeeper's `FileTxnLog.commit` warning, word for word, for
            // operators who grep for it.
            self.syncs_over_threshold.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                "fsync-ing the write ahead log in {} took {ms}ms which will adversely effect \
                 operation latency. File size is {JOURNAL_SEGMENT_BYTES} bytes. See the \
                 ZooKeeper troubleshooting guide",
                std::thread::current().name().unwrap_or("the log writer"),
            );
        }
        self.sync_times.record(ms);
    }

    fn maintain(&self, cmd: Command) {
        match cmd {
            Command::Truncate { after, done } => {
                let result = self.truncate(after);
                if let Err(e) = &result {
                    self.fail(e);
                }
                let _ = done.send(result);
            }
            Command::PurgeBefore { snapshot, done } => {
                let _ = done.send(self.purge_before(snapshot));
            }
            Command::Append { on_durable, .. } => {
                // `take` groups every append into a commit step; keep the
                // promise of a callback anyway.
                run_callback(
                    on_durable,
                    Err(StoreError::Corrupt("append outside a commit".into())),
                );
            }
        }
    }

    /// The newest entry with zxid `<= zxid`.
    fn last_at_or_below(&self, zxid: Zxid) -> Result<Option<Zxid>, StoreError> {
        Ok(self.group_at_or_below(zxid)?.and_then(|g| {
            g.into_iter()
                .map(|(z, _)| z)
                .take_while(|z| *z <= zxid)
                .last()
        }))
    }

    /// The group holding the newest entry `<= zxid` (it may hold newer ones).
    fn group_at_or_below(&self, zxid: Zxid) -> Result<Option<Vec<(Zxid, Bytes)>>, StoreError> {
        let cf = cf(&self.db, CF_LOG)?;
        let mut it = self.db.raw_iterator_cf(cf);
        it.seek_for_prev(log_key(zxid));
        let found = match it.item() {
            Some((k, v)) => Some(LogGroup::decode(k, v)?),
            None => None,
        };
        it.status()?;
        Ok(found)
    }

    /// Starts the journal's next round in its other segment, whose round
    /// must then be in RocksDB's table files: the flush asked for when
    /// that round ended has to be done (it had a whole round's time).
    fn next_round(&self, journal: &mut Journal) -> Result<(), StoreError> {
        let log = cf(&self.db, CF_LOG)?;
        let deadline = Instant::now() + FLUSH_WAIT_LIMIT;
        while self
            .db
            .property_int_value_cf(log, "rocksdb.num-immutable-mem-table")?
            .unwrap_or(0)
            > 0
        {
            if Instant::now() > deadline {
                // RocksDB stops flushing after a background error: the log
                // fails (and the server with it) rather than overwrite.
                return Err(StoreError::Corrupt(
                    "the txn log's table flush did not finish; not overwriting its journal".into(),
                ));
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        // The round ending now: flushed while the next one is written.
        let mut no_wait = FlushOptions::default();
        no_wait.set_wait(false);
        // RocksDB refuses a flush that does not wait with TryAgain while
        // its writes are stopped (too many level-0 files, until compaction
        // catches up): wait it out like the flush above, not fail the log.
        loop {
            match self.db.flush_cf_opt(log, &no_wait) {
                Err(e) if e.kind() == rocksdb::ErrorKind::TryAgain && Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                done => break done?,
            }
        }
        // So are the column families written through RocksDB's WAL, rarely
        // and a few bytes at a time (`meta`'s epochs, snapshot manifests):
        // a memtable keeps alive every WAL file since its oldest entry,
        // and a flush of `log` begins a new one if the last holds anything.
        // Unflushed, an epoch written at the last election kept alive a
        // WAL file per snapshot (fourteen after 10 s of set 32×8) until
        // the WAL's cap. An empty memtable is not flushed.
        for name in [CF_META, CF_SNAPSHOTS] {
            match self.db.flush_cf_opt(cf(&self.db, name)?, &no_wait) {
                // Writes stopped (see above): the next round flushes them.
                Err(e) if e.kind() == rocksdb::ErrorKind::TryAgain => {}
                flushed => flushed?,
            }
        }
        journal.switch();
        Ok(())
    }

    fn truncate(&self, after: Zxid) -> Result<(), StoreError> {
        self.check_usable()?;
        if after.0 >= self.last_durable.load(Ordering::SeqCst) {
            return Ok(());
        }
        // The journal must not bring back what is removed: everything it
        // holds goes into table files, then it is emptied, and only then
        // is the removal written (a crash in between leaves the log whole,
        // which the TRUNC that follows a restart cuts again).
        self.db.flush_cf(cf(&self.db, CF_LOG)?)?;
        lock(&self.journal).reset()?;
        // Bump first: a reader that still sees the old generation created its
        // RocksDB iterator before the delete below.
        self.generation.fetch_add(1, Ordering::SeqCst);
        let cf = cf(&self.db, CF_LOG)?;
        let mut batch = WriteBatch::default();
        // The group holding `after` keeps its entries up to it...
        if let Some(group) = self.group_at_or_below(after)? {
            if group.last().is_some_and(|(z, _)| *z > after) {
                let kept = group.iter().filter(|(z, _)| *z <= after);
                let value = LogGroup::encode(kept.map(|(z, t)| (*z, &t[..])));
                batch.put_cf(cf, log_key(group[0].0), value);
            }
        }
        // ...and every later group goes.
        batch.delete_range_cf(cf, log_key(after.next()), LOG_KEY_END);
        // Always synced: a learner reloads its state from the truncated log
        // right after TRUNC and must not find the removed txns after a crash.
        let mut opts = WriteOptions::default();
        opts.set_sync(true);
        self.db.write_opt(batch, &opts)?;
        let new_last = self.last_at_or_below(after)?;
        self.last_durable
            .store(new_last.unwrap_or(Zxid::ZERO).0, Ordering::SeqCst);
        if new_last.is_none() {
            self.first.store(-1, Ordering::SeqCst);
        }
        tracing::info!(after = %after, last = ?new_last, "txn log truncated");
        Ok(())
    }

    fn purge_before(&self, snapshot: Zxid) -> Result<Option<Zxid>, StoreError> {
        let first = match self.first.load(Ordering::SeqCst) {
            z if z < 0 => return Ok(None),
            z => Zxid(z),
        };
        let Some(keep) = self.last_at_or_below(snapshot)? else {
            return Ok(Some(first)); // every entry is above the snapshot: all needed
        };
        if keep <= first {
            return Ok(Some(first));
        }
        self.purged_below.fetch_max(keep.0, Ordering::SeqCst);
        let cf = cf(&self.db, CF_LOG)?;
        let mut batch = WriteBatch::default();
        // Every group before the one holding `keep` goes; that one is
        // stored again from `keep` on, under `keep`'s key.
        let group = self
            .group_at_or_below(keep)?
            .ok_or_else(|| StoreError::Corrupt(format!("log entry {keep} vanished")))?;
        let group_key = group[0].0;
        batch.delete_range_cf(cf, log_key(Zxid::ZERO), log_key(group_key));
        if group_key < keep {
            let kept = group.iter().filter(|(z, _)| *z >= keep);
            batch.delete_cf(cf, log_key(group_key));
            batch.put_cf(
                cf,
                log_key(keep),
                LogGroup::encode(kept.map(|(z, t)| (*z, &t[..]))),
            );
        }
        // Unsynced: a purge lost in a crash only leaves old entries behind.
        self.db.write_opt(batch, &WriteOptions::default())?;
        self.first.store(keep.0, Ordering::SeqCst);
        tracing::info!(snapshot = %snapshot, kept_from = %keep, "txn log purged");
        Ok(Some(keep))
    }
}

/// Whether a file in a WAL directory is one of the txn log's journal
/// segments.
pub(crate) fn is_journal_file(name: &std::ffi::OsStr) -> bool {
    journal::SEGMENT_NAMES.iter().any(|n| name == *n)
}

/// Removes the journal's segments from `dir` (after [`recover_journal`]
/// and a flush: nothing in them is needed).
pub(crate) fn remove_journal(dir: &Path) -> Result<(), StoreError> {
    for name in journal::SEGMENT_NAMES {
        match std::fs::remove_file(dir.join(name)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
            _ => {}
        }
    }
    Ok(())
}

/// Replays the journal in `dir` into `db` (see [`recover`]) without
/// opening a log on it: a store moving its WAL directory does this with the
/// old one.
pub(crate) fn recover_journal(db: &DB, dir: &Path, sync: bool) -> Result<(), StoreError> {
    recover(db, dir, sync).map(drop)
}

/// Opens the journal in `dir` and puts back into the `log` column family
/// the groups RocksDB lost in a crash (written without its WAL, not yet
/// flushed): those the journal holds above the column family's last group,
/// through a synced WAL write. Then empties the journal for the appends to
/// come.
fn recover(db: &DB, dir: &Path, sync: bool) -> Result<Journal, StoreError> {
    let cf = cf(db, CF_LOG)?;
    let last_key = {
        let mut it = db.raw_iterator_cf(cf);
        it.seek_to_last();
        let key = it.key().map(decode_log_key).transpose()?;
        it.status()?;
        key
    };
    let lost =
        |key: &[u8; 8]| last_key.is_none_or(|last| decode_log_key(key).is_ok_and(|k| k > last));
    let (mut journal, held) = Journal::open(dir, JOURNAL_SEGMENT_BYTES, sync, &lost)?;
    if !held.is_empty() {
        let mut batch = WriteBatch::default();
        for (key, value) in &held {
            LogGroup::entries(key, value)?; // refuse what does not decode
            batch.put_cf(cf, key, value);
        }
        let mut opts = WriteOptions::default();
        opts.set_sync(true);
        db.write_opt(batch, &opts)?;
        tracing::info!(
            groups = held.len(),
            "txn log: groups replayed from the journal"
        );
    }
    journal.reset()?;
    Ok(journal)
}

/// The zxid of the last txn in a group.
fn last_entry(key: &[u8], value: &[u8]) -> Result<Zxid, StoreError> {
    let entries = LogGroup::entries(key, value)?;
    Ok(entries.last().map_or(Zxid::ZERO, |(z, _)| *z))
}

/// Positions `it` on the group that holds `from` (the newest group starting
/// at or before it), or on the first group after it if there is none.
fn seek_group_of(it: &mut rocksdb::DBRawIteratorWithThreadMode<'_, DB>, from: Zxid) {
    it.seek_for_prev(log_key(from));
    if !it.valid() {
        it.seek(log_key(from));
    }
}

/// Runs a caller's callback on the writer thread. A panicking callback must
/// not take the writer (and every later append) down with it.
fn run_callback(on_durable: DurableCallback, result: Result<(), StoreError>) {
    let call = std::panic::AssertUnwindSafe(move || on_durable(result));
    if std::panic::catch_unwind(call).is_err() {
        tracing::error!("a txn log durable callback panicked");
    }
}

/// Iterator over log entries from a zxid; see [`TxnLog::read_from`].
pub struct LogIter {
    core: Arc<LogCore>,
    /// Where the next page starts; `None` once the end (or an error) was hit.
    next: Option<Zxid>,
    buf: VecDeque<(Zxid, Bytes)>,
    generation: u64,
    purged_below: i64,
}

impl LogIter {
    fn fill(&mut self, from: Zxid) -> Result<Option<Zxid>, StoreError> {
        let cf = cf(&self.core.db, CF_LOG)?;
        let mut it = self.core.db.raw_iterator_cf(cf);
        seek_group_of(&mut it, from);
        // Checked after the iterator (and its implicit snapshot) exists; see
        // `LogCore::truncate` and `LogCore::purge_before` for the other half.
        if self.core.generation.load(Ordering::SeqCst) != self.generation {
            return Err(StoreError::ChangedWhileReading);
        }
        let purged_below = self.core.purged_below.load(Ordering::SeqCst);
        if purged_below != self.purged_below && purged_below > from.0 {
            return Err(StoreError::ChangedWhileReading);
        }
        let mut bytes = 0;
        while let Some((k, v)) = it.item() {
            let group = LogGroup::decode(k, v)?;
            // A page may end inside a group: the next one seeks back to it.
            for (zxid, txn) in group.into_iter().filter(|(z, _)| *z >= from) {
                bytes += txn.len();
                self.buf.push_back((zxid, txn));
                if self.buf.len() >= PAGE_ENTRIES || bytes >= PAGE_BYTES {
                    it.status()?;
                    return Ok(zxid.0.checked_add(1).map(Zxid));
                }
            }
            it.next();
        }
        it.status()?;
        Ok(None)
    }
}

impl Iterator for LogIter {
    type Item = Result<(Zxid, Bytes), StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(entry) = self.buf.pop_front() {
            return Some(Ok(entry));
        }
        let from = self.next.take()?;
        match self.fill(from) {
            Ok(next) => {
                self.next = next;
                self.buf.pop_front().map(Ok)
            }
            Err(e) => {
                self.buf.clear();
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
pub(crate) mod tests_support {
    pub(crate) const PAGE_ENTRIES: usize = super::PAGE_ENTRIES;
}
