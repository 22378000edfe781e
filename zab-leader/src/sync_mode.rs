//! Per-learner sync selection: DIFF, TRUNC or SNAP.
//!
//! This module owns the decision ZooKeeper's `LearnerHandler.syncFollower`
//! and `queueCommittedProposals` make when a learner has sent ACKEPOCH
//! (reference F.4): given the learner's last logged zxid, the leader's last
//! processed zxid, the in-memory window of recently committed proposals
//! ([`CommittedLog`]) and the on-disk txn log ([`TxnLogView`]), which sync
//! packet to send and which committed txns follow it. It is a pure function
//! of its inputs: the caller turns the [`SyncPlan`] into packets.

use std::collections::VecDeque;

use bytes::Bytes;
use zab_wire::Zxid;

/// ZooKeeper's `zookeeper.commitLogCount` default and minimum (reference F.4).
pub const MIN_COMMIT_LOG_COUNT: usize = 500;

/// ZooKeeper's default `zookeeper.snapshotSizeFactor` (reference F.4 rule 5).
pub const DEFAULT_SNAPSHOT_SIZE_FACTOR: f64 = 0.33;

/// The in-memory window of the last `commitLogCount` committed proposals
/// (ZooKeeper's `ZKDatabase.committedLog`): zxid → encoded `proto::Txn`.
///
/// Entries are appended in zxid order as txns are applied; the oldest is
/// dropped once the window is full.
#[derive(Clone, Debug)]
pub struct CommittedLog {
    capacity: usize,
    entries: VecDeque<(Zxid, Bytes)>,
}

impl CommittedLog {
    /// An empty window holding at most `capacity` proposals (at least
    /// [`MIN_COMMIT_LOG_COUNT`], as ZooKeeper enforces).
    pub fn new(capacity: usize) -> Self {
        CommittedLog {
            capacity: capacity.max(MIN_COMMIT_LOG_COUNT),
            entries: VecDeque::new(),
        }
    }

    /// A window filled from `entries` (in zxid order), e.g. the tail of the
    /// txn log replayed at start-up: ZooKeeper adds every replayed txn,
    /// including uncommitted ones of earlier epochs (reference F.3).
    pub fn from_entries(capacity: usize, entries: impl IntoIterator<Item = (Zxid, Bytes)>) -> Self {
        let mut log = CommittedLog::new(capacity);
        for (zxid, data) in entries {
            log.push(zxid, data);
        }
        log
    }

    /// Appends a committed proposal. Returns false (and keeps the window
    /// unchanged) if `zxid` is not above the newest entry: the window must
    /// stay sorted for the walk in [`select`].
    pub fn push(&mut self, zxid: Zxid, data: Bytes) -> bool {
        if self.max().is_some_and(|max| zxid <= max) {
            return false;
        }
        self.entries.push_back((zxid, data));
        while self.entries.len() > self.capacity {
            self.entries.pop_front();
        }
        true
    }

    /// ZooKeeper's `minCommittedLog`.
    pub fn min(&self) -> Option<Zxid> {
        self.entries.front().map(|(z, _)| *z)
    }

    /// ZooKeeper's `maxCommittedLog`.
    pub fn max(&self) -> Option<Zxid> {
        self.entries.back().map(|(z, _)| *z)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Entries in zxid order.
    pub fn iter(&self) -> impl Iterator<Item = (Zxid, &Bytes)> + '_ {
        self.entries.iter().map(|(z, d)| (*z, d))
    }
}

/// Read access to the leader's on-disk txn log, for syncing a learner that
/// fell behind the [`CommittedLog`] window (reference F.4 rule 5). Errors
/// are plain text: any failure makes the leader fall back to SNAP, as
/// ZooKeeper does.
pub trait TxnLogView {
    /// Every logged txn with zxid `>= from`, in zxid order.
    fn read_from(&self, from: Zxid) -> Result<Vec<(Zxid, Bytes)>, String>;

    /// Bytes of the logged txns with `from <= zxid <= to`.
    fn size_between(&self, from: Zxid, to: Zxid) -> Result<u64, String>;

    /// Whether the logged txns with zxid `>= from` take more than `limit`
    /// bytes. A store-backed view stops reading once they do: a learner
    /// that was away for hours must not make the leader read hours of log
    /// to learn it gets a SNAP.
    fn size_exceeds(&self, from: Zxid, limit: u64) -> Result<bool, String> {
        Ok(self.size_between(from, Zxid(i64::MAX))? > limit)
    }

    /// Logged txns with `from <= zxid <= to`, in zxid order. The default
    /// filters [`TxnLogView::read_from`]; a store-backed view stops reading
    /// at `to` instead.
    fn read_between(&self, from: Zxid, to: Zxid) -> Result<Vec<(Zxid, Bytes)>, String> {
        let mut txns = self.read_from(from)?;
        txns.retain(|(z, _)| *z <= to);
        Ok(txns)
    }
}

/// A txn log with nothing in it (a leader that has no log to read, or a
/// test). Every rule-5 attempt against it falls back to SNAP.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoTxnLog;

impl TxnLogView for NoTxnLog {
    fn read_from(&self, _from: Zxid) -> Result<Vec<(Zxid, Bytes)>, String> {
        Ok(Vec::new())
    }
    fn size_between(&self, _from: Zxid, _to: Zxid) -> Result<u64, String> {
        Ok(0)
    }
}

/// A log held in memory, in zxid order (a test's or a simulation's); a
/// txn's size is its encoding's.
impl TxnLogView for Vec<(Zxid, Bytes)> {
    fn read_from(&self, from: Zxid) -> Result<Vec<(Zxid, Bytes)>, String> {
        Ok(self.iter().filter(|(z, _)| *z >= from).cloned().collect())
    }
    fn size_between(&self, from: Zxid, to: Zxid) -> Result<u64, String> {
        Ok(self
            .iter()
            .filter(|(z, _)| (from..=to).contains(z))
            .map(|(_, d)| d.len() as u64)
            .sum())
    }
}

/// How a learner is brought up to date, and the committed txns that follow
/// the sync packet (each sent as PROPOSAL then COMMIT).
#[derive(Clone, Debug, PartialEq)]
pub enum SyncPlan {
    /// `DIFF(to)`: the learner keeps its state and receives `txns`.
    Diff { to: Zxid, txns: Vec<(Zxid, Bytes)> },
    /// `TRUNC(to)`: the learner drops every txn above `to`, then receives
    /// `then`.
    Trunc { to: Zxid, then: Vec<(Zxid, Bytes)> },
    /// `SNAP(zxid)`: the learner replaces its state with the leader's
    /// snapshot at its last processed zxid.
    Snap { zxid: Zxid },
}

impl SyncPlan {
    /// The zxid the learner holds once the plan has been sent: ZooKeeper's
    /// `currentZxid`, handed to `startForwarding` so that proposals above
    /// it, and only those, follow (reference F.4).
    pub fn last_queued(&self) -> Zxid {
        match self {
            // An empty DIFF/TRUNC leaves the learner exactly at `to`:
            // rule 2 sends DIFF(peerLastZxid), rule 4 "equal" sends
            // DIFF(maxCommittedLog) == peerLastZxid, rule 3 TRUNC(maxCommittedLog).
            SyncPlan::Diff { to, txns } | SyncPlan::Trunc { to, then: txns } => {
                txns.last().map_or(*to, |(z, _)| *z)
            }
            SyncPlan::Snap { zxid } => *zxid,
        }
    }
}

/// Chooses how to sync a learner (reference F.4 rules 2–6; see
/// [`select_with`] for rule 1).
///
/// * `peer_last`: the learner's last logged zxid (ACKEPOCH's zxid);
/// * `leader_last`: the leader's last processed zxid (`epoch << 32` right
///   after the leader was established);
/// * `snapshot_size`: bytes of the leader's newest snapshot;
/// * `size_factor`: `zookeeper.snapshotSizeFactor`; negative disables txn-log
///   sync (rule 5).
pub fn select(
    peer_last: Zxid,
    leader_last: Zxid,
    committed: &CommittedLog,
    txn_log: &dyn TxnLogView,
    snapshot_size: u64,
    size_factor: f64,
) -> SyncPlan {
    select_with(
        Overrides::default(),
        peer_last,
        leader_last,
        committed,
        txn_log,
        snapshot_size,
        size_factor,
    )
}

/// What may override [`select`]'s rules for one learner.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Overrides {
    /// ZooKeeper's test-only `forceSnapSync` (rule 1).
    pub force_snap: bool,
    /// What of the learner's log must stay whatever the leader has
    /// committed (zab's own: a follower may have committed the leader's
    /// proposals up to there on its own, see `Leader::sync_learner`;
    /// `Zxid::ZERO` for nothing). Rule 3 then truncates no lower, and sends
    /// DIFF instead when nothing would go.
    pub kept: Zxid,
}

/// [`select`] with [`Overrides`].
pub fn select_with(
    overrides: Overrides,
    peer_last: Zxid,
    leader_last: Zxid,
    committed: &CommittedLog,
    txn_log: &dyn TxnLogView,
    snapshot_size: u64,
    size_factor: f64,
) -> SyncPlan {
    let snap = SyncPlan::Snap { zxid: leader_last };
    // An empty window reads as [lastProcessed, lastProcessed], which routes
    // every case to rule 2, 3 or 5 (ZooKeeper's comment in syncFollower).
    let (min, max) = match (committed.min(), committed.max()) {
        (Some(min), Some(max)) => (min, max),
        _ => (leader_last, leader_last),
    };
    let peer_new_epoch = peer_last.is_epoch_start();

    let Overrides { force_snap, kept } = overrides;
    // Rule 1.
    if force_snap {
        return snap;
    }
    // Rule 2: already in sync, empty DIFF.
    if peer_last == leader_last {
        return SyncPlan::Diff {
            to: peer_last,
            txns: Vec::new(),
        };
    }
    // Rule 3: the peer has txns this leader never committed (an old leader).
    // A new-epoch zxid names no txn, so there is nothing to truncate.
    if peer_last > max && !peer_new_epoch {
        let to = max.max(kept.min(peer_last));
        if to == peer_last {
            return SyncPlan::Diff {
                to,
                txns: Vec::new(),
            };
        }
        return SyncPlan::Trunc {
            to,
            then: Vec::new(),
        };
    }
    // Rule 4: the peer is inside the committed window.
    if min <= peer_last && peer_last <= max {
        let mut queue = Queue::default();
        return match queue.committed(committed.iter(), peer_last, None, max) {
            Ok(_) => queue.into_plan().unwrap_or(snap),
            Err(CannotTrunc) => snap,
        };
    }
    // Rule 5: behind the window; replay the txn log, then the window.
    if peer_last < min && size_factor >= 0.0 {
        if let Some(plan) = from_txn_log(
            peer_last,
            min,
            max,
            committed,
            txn_log,
            snapshot_size,
            size_factor,
        ) {
            return plan;
        }
    }
    // Rule 6.
    snap
}

/// Rule 5, ZooKeeper's `getProposalsFromTxnLog` plus the two
/// `queueCommittedProposals` passes. `None` means SNAP.
fn from_txn_log(
    peer_last: Zxid,
    min: Zxid,
    max: Zxid,
    committed: &CommittedLog,
    txn_log: &dyn TxnLogView,
    snapshot_size: u64,
    size_factor: f64,
) -> Option<SyncPlan> {
    // `calculateTxnLogSizeLimit`: (long)(snapSize * factor). A limit of 0
    // (no snapshot yet, or factor 0) means "unlimited" in ZooKeeper.
    let limit = (snapshot_size as f64 * size_factor) as u64;
    if limit > 0 {
        // ZooKeeper compares the storage size of the log from peerLastZxid
        // to its end; the view weighs the bytes of those txns.
        match txn_log.size_exceeds(peer_last, limit) {
            Ok(false) => {}
            Ok(true) => {
                tracing::info!(limit, "txn log too large to sync from, sending SNAP");
                return None;
            }
            Err(err) => {
                tracing::error!(%err, "cannot size the txn log, sending SNAP");
                return None;
            }
        }
    }
    let txns = match txn_log.read_between(peer_last, min) {
        Ok(txns) => txns,
        Err(err) => {
            tracing::error!(%err, "cannot read the txn log, sending SNAP");
            return None;
        }
    };
    // (a) the log must hold peerLastZxid itself: if its first txn at or
    // after peerLastZxid is later, the learner's history cannot be proven
    // to be a prefix of ours. An empty read has nothing to offer either.
    match txns.first() {
        Some((first, _)) if *first == peer_last => {}
        _ => return None,
    }
    let mut queue = Queue::default();
    let reached = queue
        .committed(txns.iter().map(|(z, d)| (*z, d)), peer_last, Some(min), max)
        .ok()?;
    if reached < min {
        tracing::info!(%reached, %min, "gap between the txn log and the committed log, sending SNAP");
        return None;
    }
    queue.committed(committed.iter(), reached, None, max).ok()?;
    queue.into_plan()
}

/// The peer holds txns of another epoch that this leader lacks: TRUNC
/// cannot cross an epoch boundary, so the learner gets a SNAP.
#[derive(Debug)]
struct CannotTrunc;

#[derive(Clone, Copy, Debug)]
enum Op {
    Diff(Zxid),
    Trunc(Zxid),
}

/// The packets `queueCommittedProposals` queues: the op packet (once) and
/// the committed txns after it.
#[derive(Default)]
struct Queue {
    op: Option<Op>,
    txns: Vec<(Zxid, Bytes)>,
}

impl Queue {
    /// Walks `entries` (zxid order), deciding the op packet at the first
    /// entry `>= peer_last` and queueing every later entry up to `max_zxid`.
    /// Returns the last queued zxid (`peer_last` if none).
    fn committed<'a>(
        &mut self,
        entries: impl Iterator<Item = (Zxid, &'a Bytes)>,
        peer_last: Zxid,
        max_zxid: Option<Zxid>,
        last_committed: Zxid,
    ) -> Result<Zxid, CannotTrunc> {
        let peer_new_epoch = peer_last.is_epoch_start();
        let mut queued = peer_last;
        let mut prev: Option<Zxid> = None;
        for (zxid, data) in entries {
            if max_zxid.is_some_and(|max| zxid > max) {
                break;
            }
            if zxid < peer_last {
                prev = Some(zxid);
                continue;
            }
            if self.op.is_none() {
                if zxid == peer_last {
                    // The peer's last txn is in our history: DIFF from it.
                    self.op = Some(Op::Diff(last_committed));
                    continue;
                }
                if peer_new_epoch {
                    self.op = Some(Op::Diff(last_committed));
                } else {
                    // zxid > peer_last: the peer has txns we never saw (it
                    // may have been a leader). Truncate to the proposal
                    // before, unless that would cross an epoch.
                    if zxid.epoch() != peer_last.epoch() {
                        tracing::warn!(%peer_last, %zxid, "cannot TRUNC across an epoch");
                        return Err(CannotTrunc);
                    }
                    // `prev` is set whenever this is reached from rules 4
                    // and 5 (the walk starts at or below peer_last); with
                    // nothing before, ZooKeeper would send TRUNC(-1).
                    let Some(prev) = prev else {
                        return Err(CannotTrunc);
                    };
                    self.op = Some(Op::Trunc(prev));
                }
            }
            if zxid <= queued {
                continue;
            }
            self.txns.push((zxid, data.clone()));
            queued = zxid;
        }
        if self.op.is_none() && peer_new_epoch {
            // Our history is older than the learner's new-epoch zxid and
            // nothing newer exists: an empty DIFF.
            self.op = Some(Op::Diff(last_committed));
        }
        Ok(queued)
    }

    /// `None` when no op packet was decided: ZooKeeper's "unhandled
    /// scenario", which falls back to SNAP.
    fn into_plan(self) -> Option<SyncPlan> {
        match self.op? {
            Op::Diff(to) => Some(SyncPlan::Diff {
                to,
                txns: self.txns,
            }),
            Op::Trunc(to) => Some(SyncPlan::Trunc {
                to,
                then: self.txns,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use zab_wire::Epoch;

    fn z(epoch: u64, counter: u32) -> Zxid {
        Zxid::new(Epoch(epoch), counter)
    }

    fn data(zxid: Zxid) -> Bytes {
        Bytes::from(format!("txn-{zxid}"))
    }

    fn window(zxids: &[Zxid]) -> CommittedLog {
        CommittedLog::from_entries(500, zxids.iter().map(|z| (*z, data(*z))))
    }

    fn txns(zxids: &[Zxid]) -> Vec<(Zxid, Bytes)> {
        zxids.iter().map(|z| (*z, data(*z))).collect()
    }

    /// An in-memory txn log; counts reads so tests can prove a branch did
    /// or did not consult it.
    struct MemLog {
        entries: Vec<(Zxid, Bytes)>,
        bytes_per_txn: u64,
        reads: Cell<u32>,
        fail: bool,
    }

    impl MemLog {
        fn new(zxids: &[Zxid]) -> Self {
            MemLog {
                entries: txns(zxids),
                bytes_per_txn: 100,
                reads: Cell::new(0),
                fail: false,
            }
        }
    }

    impl TxnLogView for MemLog {
        fn read_from(&self, from: Zxid) -> Result<Vec<(Zxid, Bytes)>, String> {
            self.reads.set(self.reads.get() + 1);
            if self.fail {
                return Err("disk on fire".into());
            }
            Ok(self
                .entries
                .iter()
                .filter(|(z, _)| *z >= from)
                .cloned()
                .collect())
        }
        fn size_between(&self, from: Zxid, to: Zxid) -> Result<u64, String> {
            let n = self
                .entries
                .iter()
                .filter(|(z, _)| *z >= from && *z <= to)
                .count() as u64;
            Ok(n * self.bytes_per_txn)
        }
    }

    #[test]
    fn committed_log_keeps_the_newest_window_in_order() {
        let mut log = CommittedLog::new(1);
        assert_eq!(log.capacity(), MIN_COMMIT_LOG_COUNT);
        for c in 1..=600 {
            assert!(log.push(z(1, c), data(z(1, c))));
        }
        assert_eq!(log.len(), 500);
        assert_eq!(log.min(), Some(z(1, 101)));
        assert_eq!(log.max(), Some(z(1, 600)));
        assert!(
            !log.push(z(1, 600), Bytes::new()),
            "a repeated zxid is refused"
        );
        assert!(!log.push(z(1, 3), Bytes::new()), "an older zxid is refused");
        assert_eq!(log.max(), Some(z(1, 600)));
    }

    #[test]
    fn rule1_forced_snapshot_even_when_in_sync() {
        let w = window(&[z(1, 1), z(1, 2)]);
        let force = Overrides {
            force_snap: true,
            kept: Zxid::ZERO,
        };
        let plan = select_with(force, z(1, 2), z(1, 2), &w, &NoTxnLog, 0, 0.33);
        assert_eq!(plan, SyncPlan::Snap { zxid: z(1, 2) });
    }

    #[test]
    fn rule2_in_sync_gets_an_empty_diff_of_its_own_zxid() {
        let w = window(&[z(1, 1), z(1, 2)]);
        // The leader just established epoch 2: lastProcessed = 2 << 32, the
        // window still ends in epoch 1.
        let plan = select(z(2, 0), z(2, 0), &w, &NoTxnLog, 0, 0.33);
        assert_eq!(
            plan,
            SyncPlan::Diff {
                to: z(2, 0),
                txns: vec![]
            }
        );
        assert_eq!(plan.last_queued(), z(2, 0));
    }

    #[test]
    fn rule3_peer_ahead_of_the_window_is_truncated_to_max() {
        let w = window(&[z(1, 1), z(1, 2), z(1, 3)]);
        let plan = select(z(1, 7), z(1, 3), &w, &NoTxnLog, 0, 0.33);
        assert_eq!(
            plan,
            SyncPlan::Trunc {
                to: z(1, 3),
                then: vec![]
            }
        );
        assert_eq!(plan.last_queued(), z(1, 3));
    }

    /// zab's `kept`: rule 3 truncates no lower than what the learner may
    /// have committed on its own, and keeps everything (DIFF) when that is
    /// all it has.
    #[test]
    fn rule3_keeps_what_the_learner_may_have_committed() {
        let w = window(&[z(1, 1), z(1, 2), z(1, 3)]);
        let with = |kept| Overrides {
            force_snap: false,
            kept,
        };
        let plan = |kept| select_with(with(kept), z(1, 7), z(1, 3), &w, &NoTxnLog, 0, 0.33);
        let trunc = |to| SyncPlan::Trunc { to, then: vec![] };
        assert_eq!(plan(z(1, 5)), trunc(z(1, 5)));
        assert_eq!(plan(z(1, 5)).last_queued(), z(1, 5));
        assert_eq!(
            plan(z(1, 2)),
            trunc(z(1, 3)),
            "below the window: as ZooKeeper"
        );
        assert_eq!(plan(Zxid::ZERO), trunc(z(1, 3)));
        for all in [z(1, 7), z(1, 9)] {
            assert_eq!(
                plan(all),
                SyncPlan::Diff {
                    to: z(1, 7),
                    txns: vec![]
                }
            );
        }
    }

    #[test]
    fn rule3_does_not_apply_to_a_new_epoch_zxid() {
        // (5,0) > max but names no txn: no TRUNC. It is not in the window
        // either, so ZooKeeper's "unhandled scenario" sends a SNAP.
        let w = window(&[z(4, 1), z(4, 2)]);
        let plan = select(z(5, 0), z(4, 2), &w, &NoTxnLog, 0, 0.33);
        assert_eq!(plan, SyncPlan::Snap { zxid: z(4, 2) });
    }

    #[test]
    fn rule4_peer_zxid_found_diffs_the_rest() {
        let w = window(&[z(1, 1), z(1, 2), z(1, 3), z(1, 4)]);
        let plan = select(z(1, 2), z(1, 4), &w, &NoTxnLog, 0, 0.33);
        assert_eq!(
            plan,
            SyncPlan::Diff {
                to: z(1, 4),
                txns: txns(&[z(1, 3), z(1, 4)])
            }
        );
        assert_eq!(plan.last_queued(), z(1, 4));
    }

    #[test]
    fn rule4_peer_at_max_gets_an_empty_diff_of_max() {
        // Leader established epoch 2 (lastProcessed 2<<32), peer at max.
        let w = window(&[z(1, 1), z(1, 2)]);
        let plan = select(z(1, 2), z(2, 0), &w, &NoTxnLog, 0, 0.33);
        assert_eq!(
            plan,
            SyncPlan::Diff {
                to: z(1, 2),
                txns: vec![]
            }
        );
    }

    #[test]
    fn rule4_new_epoch_peer_gets_a_diff_of_everything_after() {
        let w = window(&[z(1, 1), z(1, 2), z(2, 1), z(2, 2)]);
        let plan = select(z(2, 0), z(2, 2), &w, &NoTxnLog, 0, 0.33);
        assert_eq!(
            plan,
            SyncPlan::Diff {
                to: z(2, 2),
                txns: txns(&[z(2, 1), z(2, 2)])
            }
        );
    }

    #[test]
    fn rule4_peer_with_unseen_txns_in_the_same_epoch_is_truncated_to_the_preceding_proposal() {
        // The peer logged (1,3), which this leader never saw: the leader's
        // history goes (1,2) → (1,4), so (1,3) was never committed.
        let w = window(&[z(1, 1), z(1, 2), z(1, 4), z(1, 5)]);
        let plan = select(z(1, 3), z(1, 5), &w, &NoTxnLog, 0, 0.33);
        assert_eq!(
            plan,
            SyncPlan::Trunc {
                to: z(1, 2),
                then: txns(&[z(1, 4), z(1, 5)])
            }
        );
        assert_eq!(plan.last_queued(), z(1, 5));
    }

    #[test]
    fn rule4_peer_with_unseen_txns_of_another_epoch_gets_a_snapshot() {
        // Peer was leader of epoch 2 and logged (2,5) that nobody else saw;
        // the new leader's history goes (2,3) → (3,1).
        let w = window(&[z(2, 2), z(2, 3), z(3, 1), z(3, 2)]);
        let plan = select(z(2, 5), z(3, 2), &w, &NoTxnLog, 0, 0.33);
        assert_eq!(plan, SyncPlan::Snap { zxid: z(3, 2) });
    }

    fn long_history() -> (CommittedLog, MemLog) {
        // Log (1,1)..(1,1000); the window holds the newest 500.
        let all: Vec<Zxid> = (1..=1000).map(|c| z(1, c)).collect();
        let w = window(&all[500..]);
        (w, MemLog::new(&all))
    }

    #[test]
    fn rule5_txn_log_then_committed_log() {
        let (w, log) = long_history();
        assert_eq!(w.min(), Some(z(1, 501)));
        let plan = select(z(1, 300), z(1, 1000), &w, &log, 1_000_000, 0.33);
        let SyncPlan::Diff { to, txns } = &plan else {
            panic!("expected DIFF, got {plan:?}");
        };
        assert_eq!(*to, z(1, 1000));
        let zxids: Vec<Zxid> = txns.iter().map(|(z, _)| *z).collect();
        let expected: Vec<Zxid> = (301..=1000).map(|c| z(1, c)).collect();
        assert_eq!(zxids, expected, "each txn once, in order, nothing skipped");
        assert_eq!(txns[0].1, data(z(1, 301)));
        assert_eq!(log.reads.get(), 1);
    }

    #[test]
    fn rule5a_log_without_the_peer_zxid_snaps() {
        let (w, _) = long_history();
        // The log was purged below (1,400): peer (1,300) is not provable.
        let all: Vec<Zxid> = (400..=1000).map(|c| z(1, c)).collect();
        let log = MemLog::new(&all);
        let plan = select(z(1, 300), z(1, 1000), &w, &log, 1_000_000, 0.33);
        assert_eq!(plan, SyncPlan::Snap { zxid: z(1, 1000) });
    }

    #[test]
    fn rule5b_log_larger_than_the_snapshot_factor_snaps_without_reading() {
        let (w, log) = long_history();
        // 700 txns × 100 B = 70 000 B to replay; 0.33 × 100 000 = 33 000.
        let plan = select(z(1, 300), z(1, 1000), &w, &log, 100_000, 0.33);
        assert_eq!(plan, SyncPlan::Snap { zxid: z(1, 1000) });
        assert_eq!(log.reads.get(), 0);
        // And just within the limit it syncs from the log: 0.33 × 220 000 = 72 600.
        let plan = select(z(1, 300), z(1, 1000), &w, &log, 220_000, 0.33);
        assert!(matches!(plan, SyncPlan::Diff { .. }), "{plan:?}");
    }

    #[test]
    fn rule5_zero_limit_is_unlimited_and_negative_factor_disables() {
        let (w, log) = long_history();
        // No snapshot yet: limit 0 means unlimited in ZooKeeper.
        let plan = select(z(1, 300), z(1, 1000), &w, &log, 0, 0.33);
        assert!(matches!(plan, SyncPlan::Diff { .. }), "{plan:?}");
        let plan = select(z(1, 300), z(1, 1000), &w, &log, 1_000_000, -1.0);
        assert_eq!(plan, SyncPlan::Snap { zxid: z(1, 1000) });
    }

    #[test]
    fn rule5_gap_between_log_and_window_snaps() {
        // The log ends at (1,450) but the window starts at (1,501).
        let log = MemLog::new(&(1..=450).map(|c| z(1, c)).collect::<Vec<_>>());
        let w = window(&(501..=1000).map(|c| z(1, c)).collect::<Vec<_>>());
        let plan = select(z(1, 300), z(1, 1000), &w, &log, 0, 0.33);
        assert_eq!(plan, SyncPlan::Snap { zxid: z(1, 1000) });
    }

    #[test]
    fn rule5_read_error_snaps() {
        let (w, mut log) = long_history();
        log.fail = true;
        let plan = select(z(1, 300), z(1, 1000), &w, &log, 0, 0.33);
        assert_eq!(plan, SyncPlan::Snap { zxid: z(1, 1000) });
    }

    #[test]
    fn rule6_empty_peer_with_no_usable_log_snaps() {
        let w = window(&[z(1, 10), z(1, 11)]);
        let plan = select(Zxid::ZERO, z(1, 11), &w, &NoTxnLog, 0, 0.33);
        assert_eq!(plan, SyncPlan::Snap { zxid: z(1, 11) });
    }

    #[test]
    fn empty_window_reads_as_last_processed() {
        let empty = CommittedLog::new(500);
        // Peer ahead → TRUNC to the leader's last processed zxid.
        assert_eq!(
            select(z(1, 9), z(1, 5), &empty, &NoTxnLog, 0, 0.33),
            SyncPlan::Trunc {
                to: z(1, 5),
                then: vec![]
            }
        );
        // Peer behind → txn log only.
        let log = MemLog::new(&(1..=5).map(|c| z(1, c)).collect::<Vec<_>>());
        assert_eq!(
            select(z(1, 3), z(1, 5), &empty, &log, 0, 0.33),
            SyncPlan::Diff {
                to: z(1, 5),
                txns: txns(&[z(1, 4), z(1, 5)])
            }
        );
    }
}
