//! A node's disk: what survives a crash. It stands in for zab-store.
//!
//! * the txn log — an append is durable only once its (simulated, group
//!   committed, in order) fsync completed; a crash loses the un-synced tail;
//! * acceptedEpoch / currentEpoch — written synchronously, as the cores
//!   require (reference F.7);
//! * the latest snapshot, with the history it holds (simulation metadata
//!   used by the checks, not something a real snapshot carries).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use zab_leader::TxnLogView;
use zab_wire::{Epoch, Zxid};

use super::history::History;

type Log = BTreeMap<Zxid, Bytes>;

#[derive(Clone, Debug)]
pub struct Snapshot {
    pub zxid: Zxid,
    pub bytes: Bytes,
    pub history: History,
}

pub struct Disk {
    accepted: Option<Epoch>,
    current: Option<Epoch>,
    /// Shared with the leader's [`LogView`] (the leader reads its own log
    /// to sync learners behind its committed window, rule 5).
    log: Arc<Mutex<Log>>,
    /// Appended, fsync not completed yet: lost by a crash.
    unsynced: BTreeSet<Zxid>,
    pub snapshot: Option<Snapshot>,
    /// Bumped by every crash: a durability report of an earlier life is void.
    pub incarnation: u64,
    /// Group commit: the latest fsync batch, (start, completion). Appends
    /// made while a batch runs join the next one.
    batch: (u64, u64),
}

fn lock(log: &Mutex<Log>) -> MutexGuard<'_, Log> {
    // Nothing panics while holding the lock; a poisoned lock still holds
    // a consistent map.
    log.lock().unwrap_or_else(|e| e.into_inner())
}

impl Disk {
    pub fn new() -> Disk {
        Disk {
            accepted: None,
            current: None,
            log: Arc::new(Mutex::new(Log::new())),
            unsynced: BTreeSet::new(),
            snapshot: None,
            incarnation: 0,
            batch: (0, 0),
        }
    }

    pub fn accepted_epoch(&self) -> Epoch {
        self.accepted.unwrap_or(Epoch(0))
    }

    pub fn current_epoch(&self) -> Epoch {
        self.current.unwrap_or(Epoch(0))
    }

    /// acceptedEpoch as recorded, `None` if it never was.
    pub fn recorded_accepted_epoch(&self) -> Option<Epoch> {
        self.accepted
    }

    /// currentEpoch as recorded, `None` if it never was (a server then
    /// takes its data's epoch, as zab-store and ZooKeeper do).
    pub fn recorded_current_epoch(&self) -> Option<Epoch> {
        self.current
    }

    /// Epochs only grow (ARCHITECTURE "Invariants").
    pub fn set_accepted_epoch(&mut self, e: Epoch) -> Result<(), String> {
        if e < self.accepted_epoch() {
            return Err(format!(
                "acceptedEpoch would go back from {} to {e}",
                self.accepted_epoch()
            ));
        }
        self.accepted = Some(e);
        Ok(())
    }

    pub fn set_current_epoch(&mut self, e: Epoch) -> Result<(), String> {
        if e < self.current_epoch() {
            return Err(format!(
                "currentEpoch would go back from {} to {e}",
                self.current_epoch()
            ));
        }
        if e > self.accepted_epoch() {
            return Err(format!(
                "currentEpoch {e} above acceptedEpoch {}",
                self.accepted_epoch()
            ));
        }
        self.current = Some(e);
        Ok(())
    }

    /// Appends without syncing; returns when the fsync covering it will
    /// complete. As zab-store's group commit: one fsync runs at a time and
    /// covers every append made before it started, so completions are in
    /// append order.
    pub fn append(&mut self, zxid: Zxid, bytes: Bytes, now: u64, latency: u64) -> u64 {
        lock(&self.log).insert(zxid, bytes);
        self.unsynced.insert(zxid);
        let (start, done) = self.batch;
        if done <= now {
            // Idle: an fsync starts now.
            self.batch = (now, now + latency);
        } else if start <= now {
            // One is running: this append waits for the next batch.
            self.batch = (done, done + latency);
        }
        // Else the next batch is queued already: join it.
        self.batch.1
    }

    /// The fsync of everything appended up to `zxid` completed.
    pub fn synced(&mut self, zxid: Zxid) {
        self.unsynced.retain(|z| *z > zxid);
    }

    /// Waits until every append made so far is durable: the empty batch
    /// quorum.rs queues as a barrier before it reads the log back
    /// (`Peer::drain_log`). The simulation takes the wait as instant; the
    /// fsyncs' own reports still come when they were due.
    pub fn drain(&mut self) {
        self.unsynced.clear();
    }

    /// A crash: of the un-synced tail, the first `keep` appends survive
    /// (the OS had written them: all of them after a `kill -9`, whose page
    /// cache outlives the process; any prefix after a power loss) and the
    /// rest are gone.
    pub fn crash(&mut self, keep: usize) {
        let mut log = lock(&self.log);
        for z in self.unsynced.iter().skip(keep) {
            log.remove(z);
        }
        self.unsynced.clear();
        self.incarnation += 1;
        self.batch = (0, 0);
    }

    /// zab-store's `truncate_after`: waits for the appends queued before
    /// it and is synced before it returns, so what it keeps is durable.
    pub fn truncate_after(&mut self, after: Zxid) {
        lock(&self.log).retain(|z, _| *z <= after);
        self.unsynced.clear();
    }

    /// The newest zxid a crash now would leave: the snapshot's, or the
    /// last durable txn's.
    pub fn durable_last(&self) -> Zxid {
        let logged = lock(&self.log)
            .keys()
            .rev()
            .find(|z| !self.unsynced.contains(z))
            .copied()
            .unwrap_or(Zxid::ZERO);
        self.snapshot
            .as_ref()
            .map_or(logged, |s| s.zxid.max(logged))
    }

    /// Appends not durable yet.
    pub fn unsynced_len(&self) -> usize {
        self.unsynced.len()
    }

    pub fn last_logged(&self) -> Zxid {
        lock(&self.log)
            .keys()
            .next_back()
            .copied()
            .unwrap_or(Zxid::ZERO)
    }

    pub fn log_from(&self, from: Zxid) -> Vec<(Zxid, Bytes)> {
        lock(&self.log)
            .range(from..)
            .map(|(z, b)| (*z, b.clone()))
            .collect()
    }

    /// Is `zxid` durably held, with these bytes?
    pub fn holds_durably(&self, zxid: Zxid, bytes_digest: u64) -> bool {
        if let Some(b) = lock(&self.log).get(&zxid) {
            return !self.unsynced.contains(&zxid) && super::history::digest(b) == bytes_digest;
        }
        self.snapshot.as_ref().is_some_and(|s| {
            s.history
                .entries()
                .iter()
                .any(|e| e.zxid == zxid && e.digest == bytes_digest)
        })
    }

    /// The newest `window` durable txns up to `last` (quorum.rs's
    /// `committed_window`: ZooKeeper's committedLog as rebuilt on load).
    /// zab-store's readers see a txn only once it is durable, so neither
    /// does this.
    pub fn window(&self, last: Zxid, window: usize) -> Vec<(Zxid, Bytes)> {
        let log = lock(&self.log);
        let mut v: Vec<(Zxid, Bytes)> = log
            .range(..=last)
            .rev()
            .filter(|(z, _)| !self.unsynced.contains(z))
            .take(window)
            .map(|(z, b)| (*z, b.clone()))
            .collect();
        v.reverse();
        v
    }

    pub fn view(&self) -> LogView {
        LogView(self.log.clone())
    }
}

/// The leader's view of its own txn log (zab-server's `StoreTxnLog` over
/// zab-store in production).
pub struct LogView(Arc<Mutex<Log>>);

impl TxnLogView for LogView {
    fn read_from(&self, from: Zxid) -> Result<Vec<(Zxid, Bytes)>, String> {
        Ok(lock(&self.0)
            .range(from..)
            .map(|(z, b)| (*z, b.clone()))
            .collect())
    }

    fn size_between(&self, from: Zxid, to: Zxid) -> Result<u64, String> {
        if from > to {
            return Ok(0);
        }
        Ok(lock(&self.0)
            .range(from..=to)
            .map(|(_, b)| b.len() as u64)
            .sum())
    }

    fn read_between(&self, from: Zxid, to: Zxid) -> Result<Vec<(Zxid, Bytes)>, String> {
        if from > to {
            return Ok(Vec::new());
        }
        Ok(lock(&self.0)
            .range(from..=to)
            .map(|(z, b)| (*z, b.clone()))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn z(c: u32) -> Zxid {
        Zxid::new(Epoch(1), c)
    }

    #[test]
    fn a_crash_loses_exactly_the_unsynced_tail() {
        let mut d = Disk::new();
        let b = Bytes::from_static(b"txn");
        let first = d.append(z(1), b.clone(), 0, 3);
        d.synced(z(1));
        let second = d.append(z(2), b.clone(), first, 3);
        assert!(second > first);
        d.crash(0);
        assert_eq!(d.last_logged(), z(1));
        assert!(d.holds_durably(z(1), crate::sim::history::digest(&b)));
        assert!(!d.holds_durably(z(2), crate::sim::history::digest(&b)));
    }

    #[test]
    fn the_window_holds_only_durable_txns_until_a_drain() {
        let mut d = Disk::new();
        let b = Bytes::from_static(b"txn");
        d.append(z(1), b.clone(), 0, 3);
        d.synced(z(1));
        d.append(z(2), b.clone(), 1, 3);
        let zxids = |d: &Disk| {
            d.window(z(2), 10)
                .into_iter()
                .map(|e| e.0)
                .collect::<Vec<_>>()
        };
        assert_eq!(zxids(&d), vec![z(1)], "z(2) is not durable yet");
        d.drain();
        assert_eq!(zxids(&d), vec![z(1), z(2)]);
        d.crash(0);
        assert_eq!(d.last_logged(), z(2), "a drained append survives a crash");
    }

    #[test]
    fn a_crash_may_leave_a_prefix_of_the_unsynced_tail() {
        let mut d = Disk::new();
        let b = Bytes::from_static(b"txn");
        for c in 1..=4 {
            d.append(z(c), b.clone(), 0, 3);
        }
        d.synced(z(1));
        d.crash(2);
        assert_eq!(d.last_logged(), z(3));
        assert!(d.holds_durably(z(3), crate::sim::history::digest(&b)));
        assert_eq!(d.unsynced_len(), 0);
    }

    #[test]
    fn group_commit_batches_appends_made_during_an_fsync() {
        let mut d = Disk::new();
        let b = Bytes::from_static(b"txn");
        let t1 = d.append(z(1), b.clone(), 10, 5); // runs 10..15
        let t2 = d.append(z(2), b.clone(), 11, 5); // next batch 15..20
        let t3 = d.append(z(3), b.clone(), 12, 9); // joins it
        assert_eq!((t1, t2, t3), (15, 20, 20));
        let t4 = d.append(z(4), b, 30, 2); // idle again
        assert_eq!(t4, 32);
    }

    #[test]
    fn epochs_never_go_back() {
        let mut d = Disk::new();
        d.set_accepted_epoch(Epoch(2)).expect("grows");
        assert!(d.set_accepted_epoch(Epoch(1)).is_err());
        assert!(d.set_current_epoch(Epoch(3)).is_err(), "above accepted");
        d.set_current_epoch(Epoch(2)).expect("grows");
        assert!(d.set_current_epoch(Epoch(1)).is_err());
    }
}
