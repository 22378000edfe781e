use std::sync::mpsc::{channel, Receiver};
use std::time::Duration;

use bytes::Bytes;
use zab_wire::{Epoch, Zxid};

use crate::{Store, StoreError, StoreOptions, TxnLog};

const WAIT: Duration = Duration::from_secs(20);

fn open(dir: &std::path::Path) -> Store {
    Store::open(dir, StoreOptions::default()).unwrap()
}

fn txn(z: Zxid) -> Bytes {
    Bytes::from(format!("txn-{}", z.0))
}

/// Appends and returns the receiver of its callback's result.
fn append(log: &TxnLog, z: Zxid) -> Receiver<Result<(), StoreError>> {
    let (tx, rx) = channel();
    log.append(z, txn(z), move |r| {
        let _ = tx.send(r);
    });
    rx
}

fn durable(log: &TxnLog, z: Zxid) {
    append(log, z).recv_timeout(WAIT).unwrap().unwrap();
}

fn read_all(log: &TxnLog, from: Zxid) -> Vec<(Zxid, Bytes)> {
    log.read_from(from)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

fn zxids(entries: &[(Zxid, Bytes)]) -> Vec<Zxid> {
    entries.iter().map(|(z, _)| *z).collect()
}

#[test]
fn append_read_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let written: Vec<Zxid> = (1..=5)
        .map(|c| Zxid::new(Epoch(1), c))
        .chain((1..=3).map(|c| Zxid::new(Epoch(2), c)))
        .collect();
    {
        let store = open(dir.path());
        let log = store.log();
        assert_eq!(log.last_zxid(), Zxid::ZERO);
        assert_eq!(log.first_zxid(), None);
        for z in &written {
            durable(&log, *z);
            assert_eq!(log.last_zxid(), *z);
        }
        assert_eq!(log.first_zxid(), Some(written[0]));
    }
    let store = open(dir.path());
    let log = store.log();
    assert_eq!(log.last_zxid(), *written.last().unwrap());
    assert_eq!(log.first_zxid(), Some(written[0]));
    let all = read_all(&log, Zxid::ZERO);
    assert_eq!(zxids(&all), written);
    for (z, b) in &all {
        assert_eq!(*b, txn(*z));
    }
    // From a zxid in the middle, and from one that is not in the log.
    assert_eq!(zxids(&read_all(&log, written[3])), written[3..]);
    assert_eq!(zxids(&read_all(&log, Zxid::new(Epoch(1), 6))), written[5..]);
    assert!(read_all(&log, Zxid::new(Epoch(3), 0)).is_empty());
}

#[test]
fn non_increasing_zxids_are_refused_through_the_callback() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let log = store.log();
    durable(&log, Zxid(10));
    for z in [Zxid(10), Zxid(9), Zxid(-3)] {
        let r = append(&log, z).recv_timeout(WAIT).unwrap();
        assert!(
            matches!(
                r,
                Err(StoreError::NotIncreasing { .. }) | Err(StoreError::InvalidZxid(_))
            ),
            "{z}: {r:?}"
        );
    }
    // A refused append does not poison the log.
    durable(&log, Zxid(11));
    assert_eq!(zxids(&read_all(&log, Zxid::ZERO)), [Zxid(10), Zxid(11)]);
}

#[test]
fn callbacks_run_in_zxid_order_after_last_zxid_moves() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let log = store.log();
    let (tx, rx) = channel();
    for c in 1..=200 {
        let z = Zxid(c);
        let (tx, probe) = (tx.clone(), log.clone());
        log.append(z, txn(z), move |r| {
            let _ = tx.send((z, r.is_ok(), probe.last_zxid() >= z));
        });
    }
    let order: Vec<(Zxid, bool, bool)> = (0..200).map(|_| rx.recv_timeout(WAIT).unwrap()).collect();
    assert_eq!(
        order.iter().map(|o| o.0).collect::<Vec<_>>(),
        (1..=200).map(Zxid).collect::<Vec<_>>()
    );
    assert!(order.iter().all(|o| o.1 && o.2));
}

#[test]
fn group_commit_covers_everything_queued_with_one_write() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let log = store.log();
    let before = log.stats();
    let (tx, rx) = channel();
    let n = 1000u64;
    {
        // While the writer is held (as if busy syncing), appends pile up...
        let _held = log.hold_writer();
        let next = std::sync::Arc::new(std::sync::Mutex::new(0i64));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (log, tx, next) = (log.clone(), tx.clone(), next.clone());
                std::thread::spawn(move || loop {
                    let mut g = next.lock().unwrap();
                    if *g as u64 == n {
                        return;
                    }
                    *g += 1;
                    let z = Zxid(*g);
                    let tx = tx.clone();
                    log.append(z, txn(z), move |r| {
                        let _ = tx.send((z, r));
                    });
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        // ...and nothing is reported durable before its write.
        assert!(rx.try_recv().is_err());
        assert_eq!(log.last_zxid(), Zxid::ZERO);
    }
    for want in 1..=n as i64 {
        let (z, r) = rx.recv_timeout(WAIT).unwrap();
        assert_eq!(z, Zxid(want));
        r.unwrap();
    }
    let after = log.stats();
    assert_eq!(after.txns - before.txns, n);
    // ...then one write covers them all.
    assert_eq!(after.sync_writes - before.sync_writes, 1);
    assert_eq!(zxids(&read_all(&log, Zxid::ZERO)).len(), n as usize);
}

#[test]
fn no_sync_covers_more_than_max_batch_txns() {
    // ZooKeeper's `maxBatchSize`: the most txns one flush covers.
    let dir = tempfile::tempdir().unwrap();
    let opts = StoreOptions {
        group_commit: crate::GroupCommit {
            max_batch: 100,
            ..crate::GroupCommit::default()
        },
        ..StoreOptions::default()
    };
    let store = Store::open(dir.path(), opts).unwrap();
    let log = store.log();
    let before = log.stats();
    let rxs: Vec<_> = {
        // 250 single appends pile up while the writer is held.
        let _held = log.hold_writer();
        (1..=250).map(|c| append(&log, Zxid(c))).collect()
    };
    for rx in rxs {
        rx.recv_timeout(WAIT).unwrap().unwrap();
    }
    let after = log.stats();
    assert_eq!(after.txns - before.txns, 250);
    assert_eq!(after.sync_writes - before.sync_writes, 3, "100 + 100 + 50");
    assert_eq!(zxids(&read_all(&log, Zxid::ZERO)).len(), 250);
    // Each synced write is timed (`fsynctime`); a reset starts afresh.
    let (t, t0) = (after.sync_times, before.sync_times);
    assert_eq!(t.count - t0.count, 3);
    assert!(t.min_ms <= t.max_ms);
    assert!(t.total_ms >= t.max_ms);
    log.reset_sync_times();
    let reset = log.stats();
    assert_eq!(reset.sync_times, crate::Timings::default());
}

/// ZooKeeper counts (and warns of) every sync slower than
/// `fsync.warningthresholdms`, 1000 ms by default, and `srst` leaves the
/// count alone.
#[test]
fn syncs_past_the_warning_threshold_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let log = store.log();
    for ms in [0, 1000, 1001, 5000] {
        log.core().record_sync(ms);
    }
    assert_eq!(log.stats().syncs_over_threshold, 2);
    assert_eq!(log.stats().sync_times.count, 4);
    log.reset_sync_times();
    assert_eq!(log.stats().syncs_over_threshold, 2);
}

#[test]
fn append_batch_is_one_unit() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let log = store.log();
    let (tx, rx) = channel();
    let batch: Vec<_> = (1..=10).map(|c| (Zxid(c), txn(Zxid(c)))).collect();
    log.append_batch(batch, move |r| {
        let _ = tx.send(r);
    });
    rx.recv_timeout(WAIT).unwrap().unwrap();
    assert_eq!(log.last_zxid(), Zxid(10));
    // A batch that is out of order anywhere is refused whole.
    let (tx, rx) = channel();
    log.append_batch(
        vec![(Zxid(11), txn(Zxid(11))), (Zxid(11), txn(Zxid(11)))],
        move |r| {
            let _ = tx.send(r);
        },
    );
    assert!(rx.recv_timeout(WAIT).unwrap().is_err());
    assert_eq!(read_all(&log, Zxid::ZERO).len(), 10);
}

#[test]
fn truncate_after_removes_the_tail_and_allows_reuse() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        let log = store.log();
        for c in 1..=10 {
            durable(&log, Zxid::new(Epoch(1), c));
        }
        log.truncate_after(Zxid::new(Epoch(1), 6)).unwrap();
        assert_eq!(log.last_zxid(), Zxid::new(Epoch(1), 6));
        // Truncating above the end is a no-op.
        log.truncate_after(Zxid::new(Epoch(9), 0)).unwrap();
        assert_eq!(log.last_zxid(), Zxid::new(Epoch(1), 6));
        // The leader's history continues from there, in a new epoch.
        durable(&log, Zxid::new(Epoch(2), 1));
    }
    let store = open(dir.path());
    let log = store.log();
    let want: Vec<Zxid> = (1..=6)
        .map(|c| Zxid::new(Epoch(1), c))
        .chain([Zxid::new(Epoch(2), 1)])
        .collect();
    assert_eq!(zxids(&read_all(&log, Zxid::ZERO)), want);
    assert_eq!(log.last_zxid(), Zxid::new(Epoch(2), 1));
    // Truncating everything empties the log.
    log.truncate_after(Zxid::ZERO).unwrap();
    assert_eq!(log.last_zxid(), Zxid::ZERO);
    assert_eq!(log.first_zxid(), None);
    assert!(read_all(&log, Zxid::ZERO).is_empty());
}

#[test]
fn truncate_waits_for_queued_appends() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let log = store.log();
    let pending: Vec<_> = {
        let _held = log.hold_writer();
        (1..=5).map(|c| append(&log, Zxid(c))).collect()
    };
    log.truncate_after(Zxid(3)).unwrap();
    for rx in pending {
        rx.recv_timeout(WAIT).unwrap().unwrap();
    }
    assert_eq!(
        zxids(&read_all(&log, Zxid::ZERO)),
        (1..=3).map(Zxid).collect::<Vec<_>>()
    );
}

#[test]
fn a_reader_notices_truncation_under_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let log = store.log();
    let n = 3 * super::PAGE_ENTRIES as i64;
    let (tx, rx) = channel();
    log.append_batch(
        (1..=n).map(|c| (Zxid(c), txn(Zxid(c)))).collect(),
        move |r| {
            let _ = tx.send(r);
        },
    );
    rx.recv_timeout(WAIT).unwrap().unwrap();
    // Paging: a full read crosses several pages and sees everything once.
    assert_eq!(
        zxids(&read_all(&log, Zxid::ZERO)),
        (1..=n).map(Zxid).collect::<Vec<_>>()
    );

    let mut it = log.read_from(Zxid::ZERO).unwrap();
    assert_eq!(it.next().unwrap().unwrap().0, Zxid(1));
    log.truncate_after(Zxid(10)).unwrap();
    durable(&log, Zxid(11)); // a different zxid 11 now
    let rest: Vec<_> = it.collect();
    assert!(
        matches!(rest.last(), Some(Err(StoreError::ChangedWhileReading))),
        "a reader must not splice two histories"
    );
}

#[test]
fn size_between_counts_txn_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let log = store.log();
    for c in 1..=20 {
        durable(&log, Zxid(c));
    }
    let want = |a: i64, b: i64| (a..=b).map(|c| txn(Zxid(c)).len() as u64).sum::<u64>();
    assert_eq!(log.size_between(Zxid(1), Zxid(20)).unwrap(), want(1, 20));
    assert_eq!(log.size_between(Zxid(5), Zxid(12)).unwrap(), want(5, 12));
    assert_eq!(log.size_between(Zxid(21), Zxid(30)).unwrap(), 0);
    assert_eq!(log.size_between(Zxid(9), Zxid(3)).unwrap(), 0);
}

/// The leader asks whether a learner's gap passes the DIFF limit; the
/// answer is `size_between`'s, and it is found without reading past the
/// limit: a damaged group beyond it is never decoded.
#[test]
fn size_exceeds_reads_no_further_than_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let log = store.log();
    for c in 1..=20 {
        durable(&log, Zxid(c));
    }
    let size = |from: i64| log.size_between(Zxid(from), Zxid(i64::MAX)).unwrap();
    for from in [1, 7, 20, 21] {
        for limit in [
            0,
            1,
            size(from).saturating_sub(1),
            size(from),
            size(from) + 1,
        ] {
            assert_eq!(
                log.size_exceeds(Zxid(from), limit).unwrap(),
                size(from) > limit,
                "from {from}, limit {limit}"
            );
        }
    }
    // Each txn is its own group here; damage the one of zxid 15.
    let core = log.core();
    let cf = crate::cf(&core.db, crate::layout::CF_LOG).unwrap();
    core.db
        .put_cf(cf, crate::layout::log_key(Zxid(15)), b"not a group")
        .unwrap();
    assert!(log.size_between(Zxid(1), Zxid(i64::MAX)).is_err());
    assert!(
        log.size_exceeds(Zxid(1), 10).unwrap(),
        "answered before zxid 15"
    );
    assert!(log.size_exceeds(Zxid(1), 10_000).is_err(), "reads on to it");
}

#[test]
fn unsynced_mode_still_logs() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(
            dir.path(),
            StoreOptions {
                sync: false,
                ..StoreOptions::default()
            },
        )
        .unwrap();
        for c in 1..=3 {
            durable(&store.log(), Zxid(c));
        }
    }
    let store = open(dir.path());
    assert_eq!(store.log().last_zxid(), Zxid(3));
}

#[test]
fn a_panicking_callback_does_not_stop_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let log = store.log();
    log.append(Zxid(1), txn(Zxid(1)), |_| panic!("caller bug"));
    durable(&log, Zxid(2));
    log.truncate_after(Zxid(1)).unwrap();
    assert_eq!(zxids(&read_all(&log, Zxid::ZERO)), [Zxid(1)]);
}

mod model {
    //! The log against a model: a `BTreeMap` driven by the same appends,
    //! truncations and reopens.
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    #[derive(Clone, Debug)]
    enum Op {
        /// Append `n` entries, each `gap` above the previous.
        Append {
            n: u8,
            gap: u8,
        },
        /// Truncate after the entry at this fraction of the log (or above it).
        Truncate {
            at: u8,
        },
        /// Purge before the entry at this fraction of the log.
        Purge {
            at: u8,
        },
        Reopen,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (1u8..20, 1u8..4).prop_map(|(n, gap)| Op::Append { n, gap }),
            1 => any::<u8>().prop_map(|at| Op::Truncate { at }),
            1 => any::<u8>().prop_map(|at| Op::Purge { at }),
            1 => Just(Op::Reopen),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn log_matches_model(ops in proptest::collection::vec(op(), 1..12)) {
            let dir = tempfile::tempdir().unwrap();
            let mut store = open(dir.path());
            let mut model: BTreeMap<Zxid, Bytes> = BTreeMap::new();
            // After `truncate_after(z)` appends must be above z, even when
            // no entry is left at z.
            let mut floor = Zxid::ZERO;
            for op in ops {
                match op {
                    Op::Append { n, gap } => {
                        let mut z = model.keys().next_back().copied().unwrap_or(Zxid::ZERO).max(floor);
                        let mut batch = Vec::new();
                        for _ in 0..n {
                            z = Zxid(z.0 + gap as i64);
                            batch.push((z, txn(z)));
                        }
                        model.extend(batch.iter().cloned());
                        let (tx, rx) = channel();
                        store.log().append_batch(batch, move |r| { let _ = tx.send(r); });
                        rx.recv_timeout(WAIT).unwrap().unwrap();
                    }
                    Op::Truncate { at } => {
                        let last = model.keys().next_back().map_or(0, |z| z.0);
                        let after = Zxid(last * at as i64 / 200);
                        let queued = model.keys().next_back().copied().unwrap_or(Zxid::ZERO).max(floor);
                        floor = after.min(queued);
                        model.retain(|z, _| *z <= after);
                        store.log().truncate_after(after).unwrap();
                    }
                    Op::Purge { at } => {
                        let last = model.keys().next_back().map_or(0, |z| z.0);
                        let snapshot = Zxid(last * at as i64 / 255);
                        // Keeps the newest entry <= the snapshot and all after.
                        if let Some(keep) = model.range(..=snapshot).next_back().map(|(z, _)| *z) {
                            model.retain(|z, _| *z >= keep);
                        }
                        store.log().purge_before(snapshot).unwrap();
                    }
                    Op::Reopen => {
                        drop(store);
                        store = open(dir.path());
                    }
                }
                let log = store.log();
                let got = read_all(&log, Zxid::ZERO);
                let want: Vec<_> = model.iter().map(|(z, b)| (*z, b.clone())).collect();
                prop_assert_eq!(got, want);
                prop_assert_eq!(log.last_zxid(), model.keys().next_back().copied().unwrap_or(Zxid::ZERO));
                prop_assert_eq!(log.first_zxid(), model.keys().next().copied());
                // Reads from any point, the tail window and sizes agree with
                // the model too (entries live in groups on disk).
                let last = model.keys().next_back().map_or(0, |z| z.0);
                for from in [1, last / 3, last / 2, last, last + 1].map(Zxid) {
                    let want: Vec<_> = model.range(from..).map(|(z, b)| (*z, b.clone())).collect();
                    prop_assert_eq!(read_all(&log, from), want);
                    let mut want_tail: Vec<_> = model.range(..=from).rev().take(5).map(|(z, b)| (*z, b.clone())).collect();
                    want_tail.reverse();
                    prop_assert_eq!(log.tail(from, 5).unwrap(), want_tail);
                    let lo = Zxid((last / 4).min(from.0));
                    let want_size: u64 = model.range(lo..=from).map(|(_, b)| b.len() as u64).sum();
                    prop_assert_eq!(log.size_between(lo, from).unwrap(), want_size);
                }
            }
        }
    }
}

#[test]
fn an_empty_batch_is_a_durability_barrier() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let log = store.log();
    let (tx, rx) = channel();
    {
        let _held = log.hold_writer();
        for c in 1..=50 {
            log.append(Zxid(c), txn(Zxid(c)), |_| {});
        }
        let probe = log.clone();
        log.append_batch(Vec::new(), move |r| {
            let _ = tx.send((r, probe.last_zxid()));
        });
        assert!(rx.try_recv().is_err());
    }
    let (r, last) = rx.recv_timeout(WAIT).unwrap();
    r.unwrap();
    assert_eq!(last, Zxid(50));
}

#[test]
fn truncating_from_a_callback_is_refused_not_deadlocked() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let log = store.log();
    let (tx, rx) = channel();
    let inner = log.clone();
    log.append(Zxid(1), txn(Zxid(1)), move |_| {
        let _ = tx.send(inner.truncate_after(Zxid::ZERO));
    });
    assert!(matches!(
        rx.recv_timeout(WAIT).unwrap(),
        Err(StoreError::CalledFromCallback)
    ));
    durable(&log, Zxid(2));
}

#[test]
fn the_last_handle_may_be_dropped_by_a_callback() {
    let dir = tempfile::tempdir().unwrap();
    let (tx, rx) = channel();
    {
        let store = open(dir.path());
        let log = store.log();
        let keep = log.clone();
        drop(store);
        let (go, wait) = channel::<()>();
        log.append(Zxid(1), txn(Zxid(1)), move |r| {
            let _ = wait.recv(); // until `log` is gone
            drop(keep);
            let _ = tx.send(r);
        });
        drop(log);
        go.send(()).unwrap();
        // `keep`, now the last handle, goes in the callback.
    }
    rx.recv_timeout(WAIT).unwrap().unwrap();
    // The writer exits and releases RocksDB's lock: poll until it opens.
    let deadline = std::time::Instant::now() + WAIT;
    let store = loop {
        match Store::open(dir.path(), StoreOptions::default()) {
            Ok(s) => break s,
            Err(e) => {
                assert!(std::time::Instant::now() < deadline, "never released: {e}");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    };
    assert_eq!(store.log().last_zxid(), Zxid(1));
}

#[test]
fn tail_reads_the_last_entries_up_to_a_zxid_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let log = store.log();
    let written: Vec<Zxid> = (1..=6)
        .map(|c| Zxid::new(Epoch(1), c))
        .chain((1..=4).map(|c| Zxid::new(Epoch(2), c)))
        .collect();
    for z in &written {
        durable(&log, *z);
    }
    let tail = log.tail(Zxid::new(Epoch(2), 2), 4).unwrap();
    assert_eq!(
        zxids(&tail),
        vec![
            Zxid::new(Epoch(1), 5),
            Zxid::new(Epoch(1), 6),
            Zxid::new(Epoch(2), 1),
            Zxid::new(Epoch(2), 2)
        ]
    );
    assert_eq!(tail[3].1, txn(Zxid::new(Epoch(2), 2)));
    // Fewer entries than asked for, and an upper bound between entries.
    assert_eq!(
        zxids(&log.tail(Zxid::new(Epoch(1), 2), 10).unwrap()),
        written[..2].to_vec()
    );
    assert_eq!(
        zxids(&log.tail(Zxid(i64::MAX), 2).unwrap()),
        written[8..].to_vec()
    );
    assert!(log.tail(Zxid::ZERO, 3).unwrap().is_empty());
}

/// A log whose busy groups are held for `max_delay`; "busy" is a group of
/// at least 4 txns.
fn open_holding(dir: &std::path::Path, max_delay: Duration) -> Store {
    let group_commit = crate::GroupCommit {
        max_delay,
        busy_group: 4,
        max_batch: 1000,
    };
    Store::open(
        dir,
        StoreOptions {
            group_commit,
            ..StoreOptions::default()
        },
    )
    .unwrap()
}

/// Makes the writer's last group `n` txns (1..=n), all durable.
fn busy_group(log: &TxnLog, n: i64) {
    let pending: Vec<_> = {
        let _held = log.hold_writer();
        (1..=n).map(|c| append(log, Zxid(c))).collect()
    };
    for rx in pending {
        rx.recv_timeout(WAIT).unwrap().unwrap();
    }
}

#[test]
fn a_busy_log_holds_its_next_group_until_it_is_as_large_as_the_last() {
    let dir = tempfile::tempdir().unwrap();
    // Longer than WAIT: only reaching the group size can release it here.
    let store = open_holding(dir.path(), WAIT * 3);
    let log = store.log();
    busy_group(&log, 4);
    let before = log.stats();
    let mut pending = vec![append(&log, Zxid(5))];
    // Wait for the writer to hold that txn open, so the next three find it
    // waiting and the last of them must wake it.
    let deadline = std::time::Instant::now() + WAIT;
    while !log.is_holding() {
        assert!(std::time::Instant::now() < deadline, "writer never held");
        std::thread::yield_now();
    }
    pending.extend((6..=8).map(|c| append(&log, Zxid(c))));
    for rx in pending {
        rx.recv_timeout(WAIT).unwrap().unwrap();
    }
    let after = log.stats();
    assert_eq!(after.txns - before.txns, 4);
    assert_eq!(after.sync_writes - before.sync_writes, 1, "one held group");
}

#[test]
fn a_held_group_is_synced_when_the_delay_runs_out() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_holding(dir.path(), Duration::from_millis(20));
    let log = store.log();
    busy_group(&log, 4);
    // One txn of the four the writer waits for: the delay releases it.
    durable(&log, Zxid(5));
    assert_eq!(log.last_zxid(), Zxid(5));
}

/// Under `forceSync` (the default) every group's record is synced before
/// its appends are called back durable; with `forceSync=no` none is, and
/// they are called back all the same, as ZooKeeper acks without syncing.
#[test]
fn a_group_is_synced_before_it_is_called_back_durable() {
    for sync in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(
            dir.path(),
            StoreOptions {
                sync,
                ..StoreOptions::default()
            },
        )
        .unwrap();
        let log = store.log();
        for c in 1..=3 {
            let (tx, rx) = channel();
            let seen = log.clone();
            log.append(Zxid(c), txn(Zxid(c)), move |r| {
                let _ = tx.send(r.map(|()| seen.stats().sync_times.count));
            });
            let synced_when_called = rx.recv_timeout(WAIT).unwrap().unwrap();
            let expected = if sync { c as u64 } else { 0 };
            assert_eq!(synced_when_called, expected, "sync={sync}, txn {c}");
        }
    }
}

#[test]
fn a_quiet_log_is_never_held() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_holding(dir.path(), WAIT * 3);
    let log = store.log();
    // Groups of one never make the log busy: each is synced at once.
    for c in 1..=10 {
        durable(&log, Zxid(c));
    }
    assert_eq!(log.stats().sync_writes, 10);
}

#[test]
fn closing_the_log_ends_a_held_group() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_holding(dir.path(), WAIT * 3);
    let log = store.log();
    busy_group(&log, 4);
    let held = append(&log, Zxid(5));
    let (done_tx, done_rx) = channel();
    std::thread::spawn(move || {
        drop(log);
        drop(store); // joins the writer, which must stop holding
        let _ = done_tx.send(());
    });
    done_rx
        .recv_timeout(WAIT)
        .expect("store closed while a group was held");
    held.recv_timeout(WAIT).unwrap().unwrap();
}

#[test]
fn a_large_group_is_split_over_several_keys() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let log = store.log();
    // 3 MiB in one append: one synced write, several keys of ≈ 1 MiB.
    let big = Bytes::from(vec![7u8; 1024]);
    let entries: Vec<_> = (1..=3072).map(|c| (Zxid(c), big.clone())).collect();
    let (tx, rx) = channel();
    log.append_batch(entries, move |r| {
        let _ = tx.send(r);
    });
    rx.recv_timeout(WAIT).unwrap().unwrap();
    assert_eq!(log.stats().sync_writes, 1);
    let db = &log.handle.core.db;
    let mut it = db.raw_iterator_cf(crate::cf(db, crate::layout::CF_LOG).unwrap());
    it.seek_to_first();
    let mut keys = 0;
    while it.valid() {
        assert!(it.value().unwrap().len() <= super::GROUP_BYTES + 1024 + 12);
        keys += 1;
        it.next();
    }
    assert!(keys >= 3, "{keys} keys");
    let all = read_all(&log, Zxid::ZERO);
    assert_eq!(zxids(&all), (1..=3072).map(Zxid).collect::<Vec<_>>());
    assert!(all.iter().all(|(_, t)| *t == big));
    assert_eq!(read_all(&log, Zxid(2000)).len(), 1073);
    assert_eq!(log.tail(Zxid(3000), 3).unwrap()[2].0, Zxid(3000));
}

/// What a crash leaves of an open store: its files copied as they are
/// (the groups RocksDB holds only in its memtable are not in them; their
/// durable copy is the journal).
fn crashed_copy(dir: &std::path::Path) -> tempfile::TempDir {
    let copy = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), copy.path().join(e.file_name())).unwrap();
        }
    }
    copy
}

#[test]
fn durable_groups_come_back_from_the_journal_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let log = store.log();
    // Far more than a journal segment of a unit test (16 KiB): the groups
    // span rounds, flushed into RocksDB's tables or not yet.
    let written: Vec<Zxid> = (1..=2000).map(|c| Zxid::new(Epoch(1), c)).collect();
    for chunk in written.chunks(25) {
        let batch = chunk.iter().map(|z| (*z, txn(*z))).collect();
        let (tx, rx) = channel();
        log.append_batch(batch, move |r| {
            let _ = tx.send(r);
        });
        rx.recv_timeout(WAIT).unwrap().unwrap();
    }
    let copy = crashed_copy(dir.path());
    drop(store);

    let reopened = open(copy.path());
    let entries = read_all(&reopened.log(), Zxid::ZERO);
    assert_eq!(zxids(&entries), written);
    assert!(entries.iter().all(|(z, t)| *t == txn(*z)));
    assert_eq!(reopened.log().last_zxid(), *written.last().unwrap());
    // And again: the replayed groups are RocksDB's now, the journal empty.
    let again = crashed_copy(copy.path());
    drop(reopened);
    assert_eq!(
        zxids(&read_all(&open(again.path()).log(), Zxid::ZERO)),
        written
    );
}

#[test]
fn a_crash_after_a_truncation_does_not_bring_back_what_it_removed() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let log = store.log();
    for c in 1..=300 {
        durable(&log, Zxid::new(Epoch(1), c));
    }
    log.truncate_after(Zxid::new(Epoch(1), 120)).unwrap();
    // The new history goes on from the truncation point.
    for c in 1..=10 {
        durable(&log, Zxid::new(Epoch(2), c));
    }
    let copy = crashed_copy(dir.path());
    drop(store);
    let expected: Vec<Zxid> = (1..=120)
        .map(|c| Zxid::new(Epoch(1), c))
        .chain((1..=10).map(|c| Zxid::new(Epoch(2), c)))
        .collect();
    assert_eq!(
        zxids(&read_all(&open(copy.path()).log(), Zxid::ZERO)),
        expected
    );
}
