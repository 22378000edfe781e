//! Measures group-commit append throughput of the txn log.
//!
//! `cargo run --release -p zab-store --example append_throughput -- [threads] [txns] [bytes] [in_flight]`
//!
//! Two runs on a fresh store in a temporary directory:
//! * one-at-a-time: append, wait for durable, repeat (one fsync per txn);
//! * pipelined: `threads` producers, each with up to `in_flight` appends
//!   outstanding (like a leader with many proposals in flight).

use std::sync::mpsc::channel;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use zab_store::{Store, StoreOptions};
use zab_wire::{Epoch, Zxid};

fn arg(i: usize, default: usize) -> usize {
    std::env::args()
        .nth(i)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let threads = arg(1, 4);
    let txns = arg(2, 200_000);
    let size = arg(3, 100);
    let in_flight = arg(4, 256);
    let payload = Bytes::from(vec![0x5a; size]);

    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path(), StoreOptions::default())?;
    let log = store.log();

    // One at a time: every txn pays a full sync.
    let serial = 2_000.min(txns);
    let start = Instant::now();
    for c in 1..=serial as u32 {
        let (tx, rx) = channel();
        log.append(Zxid::new(Epoch(1), c), payload.clone(), move |r| {
            let _ = tx.send(r);
        });
        rx.recv_timeout(Duration::from_secs(30))??;
    }
    let t = start.elapsed();
    println!(
        "one-at-a-time: {serial} txns in {t:?}: {:.0} txn/s, {:.1} µs per synced write",
        serial as f64 / t.as_secs_f64(),
        t.as_micros() as f64 / serial as f64
    );

    // Pipelined producers.
    let before = log.stats();
    let next = Arc::new(Mutex::new(0u32));
    let start = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (log, next, payload) = (log.clone(), Arc::clone(&next), payload.clone());
            std::thread::spawn(move || {
                let (done_tx, done_rx) = channel();
                let mut outstanding = 0;
                loop {
                    while outstanding >= in_flight {
                        if done_rx.recv().is_err() {
                            return;
                        }
                        outstanding -= 1;
                    }
                    let mut n = next.lock().unwrap_or_else(|e| e.into_inner());
                    if *n as usize == txns {
                        break;
                    }
                    *n += 1;
                    let done = done_tx.clone();
                    log.append(Zxid::new(Epoch(2), *n), payload.clone(), move |r| {
                        let _ = done.send(r.is_ok());
                    });
                    drop(n);
                    outstanding += 1;
                }
                for _ in 0..outstanding {
                    let _ = done_rx.recv();
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
    let t = start.elapsed();
    let s = log.stats();
    let writes = s.sync_writes - before.sync_writes;
    println!(
        "pipelined ({threads} threads, {in_flight} in flight each, {size} B): {txns} txns in {t:?}: \
         {:.0} txn/s, {:.1} MB/s, {writes} synced writes ({:.1} txns per write)",
        txns as f64 / t.as_secs_f64(),
        (s.bytes - before.bytes) as f64 / t.as_secs_f64() / 1e6,
        (s.txns - before.txns) as f64 / writes.max(1) as f64
    );
    Ok(())
}
