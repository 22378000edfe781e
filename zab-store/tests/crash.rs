//! Crash test: a txn reported durable survives `kill -9`.
//!
//! The test re-executes its own binary as a child in "appender" mode. The
//! child appends self-checking txns from several threads and prints each
//! zxid only after its durable callback. The parent kills it with SIGKILL
//! (`Child::kill` sends SIGKILL on Unix) after some thousands of acks,
//! reopens the store and checks that every acknowledged txn is there, in
//! order, with no gap before it and no torn value anywhere.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc::{channel, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use zab_store::{Store, StoreOptions};
use zab_wire::{Epoch, Zxid};

const CHILD_ENV: &str = "ZAB_STORE_CRASH_APPENDER_DIR";
const ACKS_BEFORE_KILL: usize = 20_000;
const DEADLINE: Duration = Duration::from_secs(120);
const EPOCH: Epoch = Epoch(1);

/// FNV-1a, 64 bit: enough to tell a torn or mixed-up value from a whole one.
fn fnv64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ *b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// `zxid (8) | len (4) | payload (len) | fnv64 of everything before (8)`,
/// with a payload length that varies with the zxid.
fn encode_txn(zxid: Zxid) -> Bytes {
    let len = 16 + (zxid.counter() as usize * 37) % 300;
    let mut v = Vec::with_capacity(20 + len + 8);
    v.extend_from_slice(&zxid.0.to_be_bytes());
    v.extend_from_slice(&(len as u32).to_be_bytes());
    v.extend((0..len).map(|i| (zxid.0 as usize).wrapping_add(i) as u8));
    let sum = fnv64(&v);
    v.extend_from_slice(&sum.to_be_bytes());
    Bytes::from(v)
}

/// Checks a value read back: it must be exactly what `encode_txn(zxid)` wrote.
fn check_txn(zxid: Zxid, v: &[u8]) -> Result<(), String> {
    if v.len() < 20 {
        return Err(format!("{zxid}: {} bytes", v.len()));
    }
    let (body, sum) = v.split_at(v.len() - 8);
    let mut s = [0u8; 8];
    s.copy_from_slice(sum);
    if fnv64(body) != u64::from_be_bytes(s) {
        return Err(format!("{zxid}: checksum mismatch"));
    }
    if v != encode_txn(zxid).as_ref() {
        return Err(format!("{zxid}: value belongs to another zxid"));
    }
    Ok(())
}

/// Snapshot contents: a bit over two 1 MiB chunks, different per `seq`
/// and per position, so a mixed-up or short snapshot cannot pass.
fn snapshot_bytes(seq: u64) -> Vec<u8> {
    let len = (2 << 20) + 4096 + (seq as usize % 7) * 1000;
    (0..len as u64)
        .map(|i| (i.wrapping_mul(2_654_435_761) ^ seq.wrapping_mul(0x9e37_79b9)) as u8)
        .collect()
}

/// The child: runs only when the parent sets `CHILD_ENV`.
#[test]
fn crash_appender_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    run_appender(Path::new(&dir));
}

fn run_appender(dir: &Path) {
    let store = Store::open(dir, StoreOptions::default()).expect("open store");
    let log = store.log();
    // Zxids are handed out and appended under one lock, as the leader does:
    // appends must reach the log in zxid order.
    let next = Arc::new(Mutex::new(0u32));
    let (acks, acked) = channel::<Zxid>();
    let printer = std::thread::spawn(move || {
        let stdout = std::io::stdout();
        for z in acked {
            let mut out = stdout.lock();
            if writeln!(out, "ack {}", z.0)
                .and_then(|_| out.flush())
                .is_err()
            {
                return;
            }
        }
    });
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (log, next, acks) = (log.clone(), Arc::clone(&next), acks.clone());
            std::thread::spawn(move || {
                // At most this many of this thread's appends in flight.
                let (done_tx, done_rx) = channel::<()>();
                let mut in_flight = 0;
                loop {
                    while in_flight >= 64 {
                        if done_rx.recv().is_err() {
                            return;
                        }
                        in_flight -= 1;
                    }
                    let mut n = next.lock().unwrap();
                    *n += 1;
                    let z = Zxid::new(EPOCH, *n);
                    let (acks, done) = (acks.clone(), done_tx.clone());
                    log.append(z, encode_txn(z), move |r| {
                        if r.is_ok() {
                            let _ = acks.send(z);
                        } else {
                            eprintln!("append {z} failed: {r:?}");
                        }
                        let _ = done.send(());
                    });
                    drop(n);
                    in_flight += 1;
                }
            })
        })
        .collect();
    drop(acks);
    // Meanwhile, snapshots stream in, so the kill can land mid-save too.
    let snaps = store.snapshots();
    let snapshotter = std::thread::spawn(move || {
        for seq in 1u64.. {
            let zxid = Zxid::new(EPOCH, seq as u32);
            let data = snapshot_bytes(seq);
            if snaps.save(zxid, &mut &data[..]).is_err() {
                return;
            }
            let mut out = std::io::stdout().lock();
            if writeln!(out, "snap {}", zxid.0)
                .and_then(|_| out.flush())
                .is_err()
            {
                return;
            }
        }
    });
    // The parent kills us long before this; the bound only keeps a child
    // from outliving a parent that died.
    std::thread::sleep(DEADLINE);
    drop(threads);
    drop(printer);
    drop(snapshotter);
    std::process::exit(3);
}

#[test]
fn acknowledged_txns_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "crash_appender_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = channel::<Zxid>();
    let saved = Arc::new(Mutex::new(Vec::<Zxid>::new()));
    let reader = {
        let saved = Arc::clone(&saved);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if let Some(z) = line.strip_prefix("ack ").and_then(|z| z.parse().ok()) {
                    if tx.send(Zxid(z)).is_err() {
                        return;
                    }
                } else if let Some(z) = line.strip_prefix("snap ").and_then(|z| z.parse().ok()) {
                    saved.lock().unwrap().push(Zxid(z));
                }
            }
        })
    };

    let start = Instant::now();
    let mut acked = Vec::new();
    while acked.len() < ACKS_BEFORE_KILL {
        let left = DEADLINE.saturating_sub(start.elapsed());
        match rx.recv_timeout(left) {
            Ok(z) => acked.push(z),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("child gave {} acks, then {e:?}", acked.len());
            }
        }
    }
    let elapsed = start.elapsed();
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // Acks already in the pipe were printed after their sync: they count too.
    loop {
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(z) => acked.push(z),
            Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => panic!("pipe not closed after the child died"),
        }
    }
    reader.join().unwrap();
    eprintln!(
        "{} acks in {:?} before kill -9 ({:.0} txn/s)",
        acked.len(),
        elapsed,
        ACKS_BEFORE_KILL as f64 / elapsed.as_secs_f64()
    );

    // Durable callbacks run in zxid order, so the acks do too.
    assert!(acked.windows(2).all(|w| w[0] < w[1]), "acks out of order");
    let max_acked = *acked.last().unwrap();

    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let log = store.log();
    assert!(log.last_zxid() >= max_acked);
    let mut present = BTreeSet::new();
    let mut expect = Zxid::new(EPOCH, 1);
    for entry in log.read_from(Zxid::ZERO).unwrap() {
        let (z, v) = entry.unwrap();
        // In order, no gap: exactly the prefix of what the child appended.
        assert_eq!(z, expect, "gap or reorder in the log");
        check_txn(z, &v).unwrap();
        present.insert(z);
        expect = z.next();
    }
    for z in &acked {
        assert!(present.contains(z), "acknowledged txn {z} lost");
    }
    assert_eq!(log.last_zxid(), *present.last().unwrap());

    // Every snapshot the child was told is saved is there, and every visible
    // snapshot (including one whose save the kill interrupted, if its
    // manifest made it) reads back whole.
    let saved = saved.lock().unwrap().clone();
    eprintln!("{} snapshots saved before kill -9", saved.len());
    let snaps = store.snapshots();
    let listed: Vec<Zxid> = snaps.list().unwrap().iter().map(|s| s.zxid).collect();
    for z in &saved {
        assert!(listed.contains(z), "saved snapshot {z} lost");
    }
    for z in &listed {
        let (info, mut r) = snaps.read(*z).unwrap().unwrap();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut r, &mut data).unwrap();
        let want = snapshot_bytes(z.counter() as u64);
        assert_eq!(info.size, want.len() as u64);
        assert!(data == want, "snapshot {z} does not read back as written");
    }

    // The recovered log takes new appends right after its last entry.
    let next = log.last_zxid().next();
    let (tx, rx) = channel();
    log.append(next, encode_txn(next), move |r| {
        let _ = tx.send(r);
    });
    rx.recv_timeout(Duration::from_secs(20)).unwrap().unwrap();
}

#[test]
fn self_check_catches_damage() {
    let z = Zxid::new(EPOCH, 42);
    let good = encode_txn(z);
    check_txn(z, &good).unwrap();
    let mut torn = good.to_vec();
    torn.truncate(torn.len() - 3);
    assert!(check_txn(z, &torn).is_err());
    let mut flipped = good.to_vec();
    flipped[25] ^= 1;
    assert!(check_txn(z, &flipped).is_err());
    assert!(check_txn(z.next(), &good).is_err());
}
