//! Txn log appends with group commit on RocksDB, synced (`forceSync=yes`):
//! how throughput grows with the number of writers and the appends each
//! keeps in flight (issue 4), with the group commit policy zab servers use
//! by default (busy groups held open up to 1 ms, `GroupCommit::default`)
//! and with every group synced at once (`GroupCommit::IMMEDIATE`,
//! ZooKeeper's `flushDelay=0`). 100-byte txns, a fresh store per benchmark
//! in a temporary directory on the same disk as the servers' data.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::channel;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use zab_store::{GroupCommit, Store, StoreOptions, TxnLog};
use zab_wire::{Epoch, Zxid};

/// Appends `total` txns from `writers` threads, each keeping up to
/// `in_flight` appends outstanding, and waits until all are durable.
/// Zxids come from one counter, so they increase across writers as the
/// log requires; the counter's lock is held across the append.
fn run(log: &TxnLog, next: &Arc<AtomicU32>, writers: usize, in_flight: usize, total: u32) {
    let lock = Arc::new(std::sync::Mutex::new(()));
    let end = next.load(Ordering::SeqCst) + total;
    let payload = Bytes::from(vec![0x5a; 100]);
    let handles: Vec<_> = (0..writers)
        .map(|_| {
            let (log, next, lock, payload) = (
                log.clone(),
                Arc::clone(next),
                Arc::clone(&lock),
                payload.clone(),
            );
            std::thread::spawn(move || {
                let (done_tx, done_rx) = channel();
                let mut outstanding = 0;
                loop {
                    while outstanding >= in_flight {
                        let ok: bool = done_rx.recv().expect("a callback per append");
                        assert!(ok, "append failed");
                        outstanding -= 1;
                    }
                    let guard = lock.lock().unwrap_or_else(|e| e.into_inner());
                    let n = next.load(Ordering::SeqCst);
                    if n >= end {
                        break;
                    }
                    next.store(n + 1, Ordering::SeqCst);
                    let done = done_tx.clone();
                    log.append(Zxid::new(Epoch(1), n + 1), payload.clone(), move |r| {
                        let _ = done.send(r.is_ok());
                    });
                    drop(guard);
                    outstanding += 1;
                }
                for _ in 0..outstanding {
                    assert!(done_rx.recv().expect("a callback per append"));
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("writer thread");
    }
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("txn_log_append_synced");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    let policies = [
        ("held", GroupCommit::default()),
        ("immediate", GroupCommit::IMMEDIATE),
    ];
    for ((writers, in_flight, batch), (policy, group_commit)) in [
        (1, 1, 200u32),
        (1, 64, 5_000),
        (4, 64, 20_000),
        (4, 256, 50_000),
        (8, 512, 100_000),
    ]
    .into_iter()
    .flat_map(|shape| policies.map(|p| (shape, p)))
    {
        let dir = tempfile::tempdir().expect("temp dir");
        let opts = StoreOptions {
            group_commit,
            ..StoreOptions::default()
        };
        let store = Store::open(dir.path(), opts).expect("store");
        let log = store.log();
        let next = Arc::new(AtomicU32::new(0));
        g.throughput(Throughput::Elements(u64::from(batch)));
        g.bench_function(
            BenchmarkId::new(
                format!("{writers}w"),
                format!("{in_flight}-in-flight/{policy}"),
            ),
            |b| {
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    for _ in 0..iters {
                        run(&log, &next, writers, in_flight, batch);
                    }
                    start.elapsed()
                })
            },
        );
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
