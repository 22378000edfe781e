use std::io::{self, Read};
use std::sync::mpsc::channel;
use std::time::Duration;

use bytes::Bytes;
use zab_wire::{Epoch, Zxid};

use crate::layout::{
    chunk_key, decode_u32, encode_u32, CF_META, CF_SNAPSHOTS, CURRENT_EPOCH_KEY, FORMAT_KEY,
    FORMAT_VERSION,
};
use crate::{cf, open_db, Store, StoreError, StoreOptions};

fn open(dir: &std::path::Path) -> Store {
    Store::open(
        dir,
        StoreOptions {
            // Small chunks so that tests cross chunk boundaries.
            snapshot_chunk_size: 1000,
            ..StoreOptions::default()
        },
    )
    .unwrap()
}

/// Deterministic, position-dependent bytes: a reordered or dropped chunk
/// shows up as a mismatch.
fn pattern(seed: u64, len: usize) -> Vec<u8> {
    (0..len as u64)
        .map(|i| (i.wrapping_mul(31).wrapping_add(seed * 7919) % 251) as u8)
        .collect()
}

fn read_to_end(mut r: impl Read) -> io::Result<Vec<u8>> {
    let mut v = Vec::new();
    r.read_to_end(&mut v)?;
    Ok(v)
}

fn log_upto(store: &Store, n: i64) {
    append_log(store, n, 10);
}

/// Appends txns of `len` bytes after the log's last, up to zxid `n`, and
/// waits until they are durable.
fn append_log(store: &Store, n: i64, len: usize) {
    let log = store.log();
    let (tx, rx) = channel();
    log.append_batch(
        (log.last_zxid().0 + 1..=n)
            .map(|c| (Zxid(c), Bytes::from(vec![c as u8; len])))
            .collect(),
        move |r| {
            let _ = tx.send(r);
        },
    );
    rx.recv_timeout(Duration::from_secs(20)).unwrap().unwrap();
}

/// One periodic snapshot at a time, whichever handle of the store asks.
#[test]
fn one_periodic_snapshot_may_be_claimed_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let claim = store.snapshots().claim_periodic().expect("none held yet");
    assert!(store.snapshots().claim_periodic().is_none(), "busy");
    drop(claim);
    let again = store.snapshots().claim_periodic();
    assert!(again.is_some(), "free once the first is done");
}

#[test]
fn epochs_persist_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        assert_eq!(store.current_epoch().unwrap(), None);
        assert_eq!(store.accepted_epoch().unwrap(), None);
        store.set_accepted_epoch(Epoch(5)).unwrap();
        store.set_current_epoch(Epoch(4)).unwrap();
        store.set_current_epoch(Epoch(5)).unwrap();
    }
    let store = open(dir.path());
    assert_eq!(store.current_epoch().unwrap(), Some(Epoch(5)));
    assert_eq!(store.accepted_epoch().unwrap(), Some(Epoch(5)));
}

/// Disk actually allocated under `dir` (blocks, not lengths: RocksDB
/// preallocates past a file's end).
fn allocated(dir: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| {
            let m = e.metadata().unwrap();
            if m.is_dir() {
                allocated(&e.path())
            } else {
                m.blocks() * 512
            }
        })
        .sum()
}

#[test]
fn a_new_store_takes_megabytes_of_disk_not_a_preallocated_wal() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.set_accepted_epoch(Epoch(1)).unwrap();
    store.set_current_epoch(Epoch(1)).unwrap();
    log_upto(&store, 10);
    // Each WAL file once took 1.1 × the largest write buffer (70 MiB) for
    // a few hundred bytes of `meta` writes. What is left: RocksDB's 4 MiB
    // manifest, one capped WAL file, the journal's first zeroed steps.
    let used = allocated(dir.path());
    assert!(used < 16 << 20, "a new store allocates {used} bytes");
}

/// RocksDB's WAL files (`NNNNNN.log`) in `dir`.
fn wal_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.strip_suffix(".log")
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
        .count()
}

#[test]
fn rarely_written_column_families_do_not_keep_wal_files_alive() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    // Written through the WAL once, as at an election.
    store.set_accepted_epoch(Epoch(1)).unwrap();
    store.set_current_epoch(Epoch(1)).unwrap();
    let log = store.log();
    for round in 0..24u64 {
        // A snapshot's manifest goes through the WAL...
        let zxid = log.last_zxid();
        store
            .snapshots()
            .save(Zxid(zxid.0.max(1)), &mut &pattern(round, 100)[..])
            .unwrap();
        // ...and a journal round's worth of log (16 KiB segments in tests)
        // makes the log flush, which begins a new WAL file.
        append_log(&store, zxid.0 + 20, 1000);
    }
    // Flushes run in the background: poll until the old files are gone.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut files = wal_files(dir.path());
    while files > 4 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        files = wal_files(dir.path());
    }
    assert!(files <= 4, "{files} WAL files alive after 24 rounds");
}

#[test]
fn rocksdb_rolls_its_info_log_and_keeps_a_few() {
    let dir = tempfile::tempdir().unwrap();
    // Each opening starts a new info log and renames the last to LOG.old.*.
    for _ in 0..6 {
        drop(open(dir.path()));
    }
    let _store = open(dir.path());
    // RocksDB records the options it runs with in OPTIONS-NNNNNN files.
    let options = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("OPTIONS-"))
        .max_by_key(|e| e.file_name())
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .expect("an OPTIONS file");
    let value = |key: &str| {
        options
            .lines()
            .find_map(|l| l.trim().strip_prefix(&format!("{key}=")))
            .map(str::to_owned)
    };
    assert_eq!(value("max_log_file_size").as_deref(), Some("16777216"));
    assert_eq!(value("keep_log_file_num").as_deref(), Some("4"));
    let info_logs = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("LOG"))
        .count();
    assert!((1..=4).contains(&info_logs), "{info_logs} info logs");
}

#[test]
fn a_corrupt_epoch_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let meta = cf(&store.db, CF_META).unwrap();
    store
        .db
        .put_cf(meta, CURRENT_EPOCH_KEY, b"garbage!!")
        .unwrap();
    assert!(matches!(store.current_epoch(), Err(StoreError::Corrupt(_))));
}

#[test]
fn snapshots_save_latest_list_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let sizes = [(Zxid(10), 0usize), (Zxid(30), 2500), (Zxid(20), 1000)];
    {
        let store = open(dir.path());
        let snaps = store.snapshots();
        assert!(snaps.latest().unwrap().is_none());
        for (z, len) in sizes {
            let info = snaps.save(z, &mut &pattern(z.0 as u64, len)[..]).unwrap();
            assert_eq!((info.zxid, info.size), (z, len as u64));
        }
    }
    let store = open(dir.path());
    let snaps = store.snapshots();
    let listed: Vec<_> = snaps
        .list()
        .unwrap()
        .iter()
        .map(|s| (s.zxid, s.size))
        .collect();
    assert_eq!(listed, [(Zxid(10), 0), (Zxid(20), 1000), (Zxid(30), 2500)]);
    let (info, reader) = snaps.latest().unwrap().unwrap();
    assert_eq!(info.zxid, Zxid(30));
    assert_eq!(reader.zxid(), Zxid(30));
    assert_eq!(read_to_end(reader).unwrap(), pattern(30, 2500));
    let (_, older) = snaps.read(Zxid(20)).unwrap().unwrap();
    assert_eq!(read_to_end(older).unwrap(), pattern(20, 1000));
    assert!(snaps.read(Zxid(25)).unwrap().is_none());
}

/// `last_snapshot` reports when a snapshot was saved, as ZooKeeper
/// reports its snapshot file's mtime: the time lives beside the manifest,
/// survives a reopen, and goes with the snapshot.
#[test]
fn a_snapshot_keeps_the_time_it_was_saved() {
    let dir = tempfile::tempdir().unwrap();
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    let before = now();
    {
        let store = open(dir.path());
        store
            .snapshots()
            .save(Zxid(5), &mut &pattern(5, 100)[..])
            .unwrap();
    }
    let after = now();
    let store = open(dir.path());
    let snaps = store.snapshots();
    let saved = snaps.saved_at(Zxid(5)).unwrap().expect("a time");
    assert!(
        (before..=after).contains(&saved),
        "{before} <= {saved} <= {after}"
    );
    assert_eq!(snaps.saved_at(Zxid(6)).unwrap(), None);
    assert!(snaps.delete(Zxid(5)).unwrap());
    assert_eq!(snaps.saved_at(Zxid(5)).unwrap(), None);
    // The time is neither a manifest nor a chunk: listing and reopening
    // pass it by.
    snaps.save(Zxid(9), &mut &pattern(9, 10)[..]).unwrap();
    drop((snaps, store));
    let store = open(dir.path());
    let listed: Vec<Zxid> = store
        .snapshots()
        .list()
        .unwrap()
        .iter()
        .map(|s| s.zxid)
        .collect();
    assert_eq!(listed, [Zxid(9)]);
    assert!(store.snapshots().saved_at(Zxid(9)).unwrap().is_some());
}

#[test]
fn saving_the_same_zxid_again_replaces_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let snaps = store.snapshots();
    snaps.save(Zxid(7), &mut &pattern(1, 3000)[..]).unwrap();
    snaps.save(Zxid(7), &mut &pattern(2, 1500)[..]).unwrap();
    assert_eq!(snaps.list().unwrap().len(), 1);
    let (info, r) = snaps.latest().unwrap().unwrap();
    assert_eq!(info.size, 1500);
    assert_eq!(read_to_end(r).unwrap(), pattern(2, 1500));
}

/// A source that fails after `ok` bytes, like a tree serializer hitting an
/// error or a process dying mid-save.
struct FailingAfter {
    ok: usize,
    sent: usize,
}

impl Read for FailingAfter {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.sent >= self.ok {
            return Err(io::Error::other("source died"));
        }
        let n = buf.len().min(self.ok - self.sent);
        buf[..n].fill(0xAB);
        self.sent += n;
        Ok(n)
    }
}

#[test]
fn a_failed_save_is_invisible() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let snaps = store.snapshots();
    snaps.save(Zxid(5), &mut &pattern(5, 1200)[..]).unwrap();
    let err = snaps.save(Zxid(9), &mut FailingAfter { ok: 4500, sent: 0 });
    assert!(matches!(err, Err(StoreError::Io(_))));
    assert_eq!(
        snaps
            .list()
            .unwrap()
            .iter()
            .map(|s| s.zxid)
            .collect::<Vec<_>>(),
        [Zxid(5)]
    );
    assert_eq!(snaps.latest().unwrap().unwrap().0.zxid, Zxid(5));
}

#[test]
fn a_half_written_snapshot_file_is_deleted_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let leftover = dir.path().join("zab-snapshot-42.sst");
    {
        let store = open(dir.path());
        store
            .snapshots()
            .save(Zxid(5), &mut &pattern(5, 1200)[..])
            .unwrap();
        // What a crash while the chunks were being written leaves behind.
        std::fs::write(&leftover, b"not an sst file yet").unwrap();
    }
    let store = open(dir.path());
    assert!(!leftover.exists());
    let (info, reader) = store.snapshots().latest().unwrap().unwrap();
    assert_eq!(info.zxid, Zxid(5));
    assert_eq!(read_to_end(reader).unwrap(), pattern(5, 1200));
}

#[test]
fn saving_leaves_no_file_behind_and_an_empty_stream_saves_an_empty_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let snaps = store.snapshots();
    snaps.save(Zxid(3), &mut &pattern(3, 2500)[..]).unwrap();
    let info = snaps.save(Zxid(4), &mut &b""[..]).unwrap();
    assert_eq!(info.size, 0);
    let (latest, reader) = snaps.latest().unwrap().unwrap();
    assert_eq!(latest.zxid, Zxid(4));
    assert!(read_to_end(reader).unwrap().is_empty());
    let strays: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("zab-snapshot-"))
        .collect();
    assert!(strays.is_empty(), "{strays:?}");
}

#[test]
fn a_save_interrupted_by_a_crash_is_invisible_and_cleaned_up() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        store
            .snapshots()
            .save(Zxid(5), &mut &pattern(5, 1200)[..])
            .unwrap();
        // What a crash between writing chunks and the manifest leaves behind:
        // chunks of a save id that no manifest names.
        let snapshots = cf(&store.db, CF_SNAPSHOTS).unwrap();
        for i in 0..3 {
            store
                .db
                .put_cf(snapshots, chunk_key(999, i), [1u8; 1000])
                .unwrap();
        }
    }
    let store = open(dir.path());
    let snaps = store.snapshots();
    assert_eq!(
        snaps
            .list()
            .unwrap()
            .iter()
            .map(|s| s.zxid)
            .collect::<Vec<_>>(),
        [Zxid(5)]
    );
    let snapshots = cf(&store.db, CF_SNAPSHOTS).unwrap();
    assert!(store
        .db
        .get_cf(snapshots, chunk_key(999, 0))
        .unwrap()
        .is_none());
    // New saves never reuse the orphan's id.
    snaps.save(Zxid(6), &mut &pattern(6, 10)[..]).unwrap();
    assert_eq!(
        read_to_end(snaps.latest().unwrap().unwrap().1).unwrap(),
        pattern(6, 10)
    );
}

#[test]
fn a_snapshot_with_a_missing_chunk_does_not_read_as_whole() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let snaps = store.snapshots();
    snaps.save(Zxid(5), &mut &pattern(5, 3500)[..]).unwrap();
    let (_, reader) = snaps.latest().unwrap().unwrap();
    // Drop every chunk (whatever save id it has) under the reader.
    let snapshots = cf(&store.db, CF_SNAPSHOTS).unwrap();
    store.db.delete_range_cf(snapshots, b"C", b"D").unwrap();
    assert!(read_to_end(reader).is_err());
}

#[test]
fn purge_keeps_exactly_what_is_needed() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    log_upto(&store, 100);
    let snaps = store.snapshots();
    for z in [10, 30, 50, 70, 90] {
        snaps
            .save(Zxid(z), &mut &pattern(z as u64, 1500)[..])
            .unwrap();
    }
    assert!(matches!(store.purge(2), Err(StoreError::RetainTooSmall(2))));

    let report = store.purge(3).unwrap();
    assert_eq!(report.snapshots_removed, [Zxid(10), Zxid(30)]);
    assert_eq!(report.snapshots_kept, [Zxid(50), Zxid(70), Zxid(90)]);
    assert_eq!(report.log_kept_from, Some(Zxid(50)));
    assert_eq!(
        snaps
            .list()
            .unwrap()
            .iter()
            .map(|s| s.zxid)
            .collect::<Vec<_>>(),
        [Zxid(50), Zxid(70), Zxid(90)]
    );
    let log = store.log();
    assert_eq!(log.first_zxid(), Some(Zxid(50)));
    assert_eq!(log.last_zxid(), Zxid(100));
    let kept: Vec<Zxid> = log
        .read_from(Zxid::ZERO)
        .unwrap()
        .map(|e| e.unwrap().0)
        .collect();
    assert_eq!(kept, (50..=100).map(Zxid).collect::<Vec<_>>());
    // The kept snapshots still read whole.
    for s in snaps.list().unwrap() {
        let (_, r) = snaps.read(s.zxid).unwrap().unwrap();
        assert_eq!(read_to_end(r).unwrap(), pattern(s.zxid.0 as u64, 1500));
    }
    // Purging again changes nothing.
    let again = store.purge(3).unwrap();
    assert!(again.snapshots_removed.is_empty());
    assert_eq!(again.log_kept_from, Some(Zxid(50)));
    drop(log);
    drop(snaps);
    drop(store);
    let store = open(dir.path());
    assert_eq!(store.log().first_zxid(), Some(Zxid(50)));
    assert_eq!(store.snapshots().list().unwrap().len(), 3);
}

#[test]
fn purge_keeps_the_entry_at_or_before_the_oldest_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    // Log holds only even zxids; the snapshot at 35 needs 34 (the last txn
    // it contains) to be findable for a DIFF from the log.
    let log = store.log();
    let (tx, rx) = channel();
    log.append_batch(
        (1..=30)
            .map(|c| (Zxid(2 * c), Bytes::from_static(b"x")))
            .collect(),
        move |r| {
            let _ = tx.send(r);
        },
    );
    rx.recv_timeout(Duration::from_secs(20)).unwrap().unwrap();
    let snaps = store.snapshots();
    for z in [35, 45, 55] {
        snaps.save(Zxid(z), &mut &b"tree"[..]).unwrap();
    }
    let report = store.purge(3).unwrap();
    assert!(report.snapshots_removed.is_empty());
    assert_eq!(report.log_kept_from, Some(Zxid(34)));
    assert_eq!(
        log.read_from(Zxid::ZERO)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .0,
        Zxid(34)
    );
}

#[test]
fn a_reader_notices_a_purge_of_what_it_has_yet_to_read() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let n = 3 * crate::txn_log::tests_support::PAGE_ENTRIES as i64;
    log_upto(&store, n);
    let mut it = store.log().read_from(Zxid::ZERO).unwrap();
    assert_eq!(it.next().unwrap().unwrap().0, Zxid(1));
    let snaps = store.snapshots();
    for z in [n - 3, n - 2, n - 1] {
        snaps.save(Zxid(z), &mut &b"tree"[..]).unwrap();
    }
    store.purge(3).unwrap();
    let rest: Vec<_> = it.collect();
    assert!(matches!(
        rest.last(),
        Some(Err(StoreError::ChangedWhileReading))
    ));
}

#[test]
fn disk_usage_counts_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let before = store.disk_usage();
    assert!(before > 0);
    store
        .snapshots()
        .save(Zxid(1), &mut &pattern(1, 200_000)[..])
        .unwrap();
    assert!(store.disk_usage() > before);
}

/// A snapshot source that hands out `first` bytes, then blocks until told
/// to go on — a tree serializer still walking a big tree.
struct Paused {
    first: Vec<u8>,
    sent: bool,
    go: std::sync::mpsc::Receiver<()>,
}

impl Read for Paused {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.sent {
            self.sent = true;
            let n = buf.len().min(self.first.len());
            buf[..n].copy_from_slice(&self.first[..n]);
            return Ok(n);
        }
        let _ = self.go.recv();
        Ok(0)
    }
}

#[test]
fn appends_stay_durable_while_a_snapshot_is_being_saved() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (go, wait) = channel();
    let snaps = store.snapshots();
    let saver = std::thread::spawn(move || {
        snaps.save(
            Zxid(1),
            &mut Paused {
                first: pattern(1, 999),
                sent: false,
                go: wait,
            },
        )
    });
    // The save is stuck mid-stream; the log must not be.
    log_upto(&store, 100);
    assert_eq!(store.log().last_zxid(), Zxid(100));
    assert!(store.snapshots().latest().unwrap().is_none());
    go.send(()).unwrap();
    let info = saver.join().unwrap().unwrap();
    assert_eq!(info.size, 999);
    assert_eq!(store.snapshots().latest().unwrap().unwrap().0.zxid, Zxid(1));
}

#[test]
fn recover_epochs_creates_missing_ones_and_refuses_contradictions() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        let e = store.recover_epochs(Zxid::new(Epoch(2), 7)).unwrap();
        assert_eq!((e.current, e.accepted), (Epoch(2), Epoch(2)));
    }
    let store = open(dir.path());
    assert_eq!(store.current_epoch().unwrap(), Some(Epoch(2)));
    assert_eq!(store.accepted_epoch().unwrap(), Some(Epoch(2)));
    store.set_accepted_epoch(Epoch(3)).unwrap();
    let e = store.recover_epochs(Zxid::new(Epoch(2), 9)).unwrap();
    assert_eq!((e.current, e.accepted), (Epoch(2), Epoch(3)));
    // Data from epoch 3 while currentEpoch says 2: an update was lost.
    assert!(matches!(
        store.recover_epochs(Zxid::new(Epoch(3), 1)),
        Err(StoreError::Epoch(
            crate::EpochError::CurrentBehindData { .. }
        ))
    ));
}

#[test]
fn autopurge_runs_on_its_interval_and_stops_on_drop() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    assert!(matches!(
        store.start_autopurge(1, Duration::from_millis(10)),
        Err(StoreError::RetainTooSmall(1))
    ));
    assert!(store.start_autopurge(3, Duration::ZERO).unwrap().is_none());
    log_upto(&store, 60);
    let snaps = store.snapshots();
    for z in [10, 20, 30, 40, 50] {
        snaps.save(Zxid(z), &mut &b"tree"[..]).unwrap();
    }
    let purge = store
        .start_autopurge(3, Duration::from_millis(20))
        .unwrap()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while snaps.list().unwrap().len() > 3 {
        assert!(std::time::Instant::now() < deadline, "autopurge never ran");
        std::thread::sleep(Duration::from_millis(5));
    }
    drop(purge);
    assert_eq!(store.log().first_zxid(), Some(Zxid(30)));
    // Dropping joined the thread: nothing purges any more.
    snaps.save(Zxid(5), &mut &b"tree"[..]).unwrap();
    assert_eq!(snaps.list().unwrap().len(), 4);
}

/// Stamps the closed store in `dir` with layout `v`, as another build of
/// zab would have.
fn stamp_layout(dir: &std::path::Path, v: u32) {
    let db = open_db(dir, None).unwrap();
    let mut opts = rocksdb::WriteOptions::default();
    opts.set_sync(true);
    db.put_cf_opt(cf(&db, CF_META).unwrap(), FORMAT_KEY, encode_u32(v), &opts)
        .unwrap();
}

/// The layout the closed store in `dir` is stamped with.
fn stamped_layout(dir: &std::path::Path) -> u32 {
    let db = open_db(dir, None).unwrap();
    let v = db
        .get_pinned_cf(cf(&db, CF_META).unwrap(), FORMAT_KEY)
        .unwrap()
        .expect("a stamp");
    decode_u32("format", &v).unwrap()
}

#[test]
fn a_new_store_is_stamped_with_the_current_layout() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path()));
    assert_eq!(stamped_layout(dir.path()), FORMAT_VERSION);
}

#[test]
fn a_layout_2_store_opens_with_every_txn_and_is_restamped() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        log_upto(&store, 50);
    }
    stamp_layout(dir.path(), 2);
    {
        let store = open(dir.path());
        let log = store.log();
        assert_eq!(log.last_zxid(), Zxid(50));
        let got: Vec<Zxid> = log
            .read_from(Zxid::ZERO)
            .unwrap()
            .map(|e| e.unwrap().0)
            .collect();
        assert_eq!(got, (1..=50).map(Zxid).collect::<Vec<_>>());
    }
    // A build of layout 2 would not read the journal: it must now refuse
    // the store rather than miss its newest txns.
    assert_ne!(stamped_layout(dir.path()), 2);
    assert_eq!(stamped_layout(dir.path()), FORMAT_VERSION);
}

#[test]
fn a_store_of_a_layout_this_version_does_not_open_is_refused_untouched() {
    for layout in [1, FORMAT_VERSION + 1] {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = open(dir.path());
            log_upto(&store, 20);
        }
        stamp_layout(dir.path(), layout);
        let refused = |r: Result<Store, StoreError>| match r {
            Err(StoreError::UnsupportedFormat(got)) => assert_eq!(got, layout),
            Err(e) => panic!("layout {layout}: wrong error {e}"),
            Ok(_) => panic!("layout {layout} opened"),
        };
        refused(Store::open(dir.path(), StoreOptions::default()));
        // Nor is it flushed and moved to a new WAL directory first.
        let elsewhere = tempfile::tempdir().unwrap();
        refused(Store::open(
            dir.path(),
            StoreOptions {
                wal_dir: Some(elsewhere.path().to_path_buf()),
                ..StoreOptions::default()
            },
        ));
        assert!(dir.path().join("journal-0").exists(), "journal kept");
        assert_eq!(stamped_layout(dir.path()), layout);
    }
}

/// Saved snapshots are timed (`snapshottime`); a failed save is not, and
/// a reset starts afresh.
#[test]
fn snapshot_saves_are_timed() {
    struct Failing;
    impl std::io::Read for Failing {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("the serializer failed"))
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let snaps = store.snapshots();
    assert_eq!(snaps.save_times(), crate::Timings::default());
    snaps.save(Zxid(5), &mut &b"tree"[..]).unwrap();
    snaps.save(Zxid(9), &mut &b"tree"[..]).unwrap();
    assert!(snaps.save(Zxid(12), &mut Failing).is_err());
    let t = snaps.save_times();
    assert_eq!(t.count, 2);
    assert!(t.min_ms <= t.max_ms && t.max_ms <= t.total_ms);
    snaps.reset_save_times();
    assert_eq!(snaps.save_times(), crate::Timings::default());
}
