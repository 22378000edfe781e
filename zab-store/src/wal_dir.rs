//! Where RocksDB's write-ahead log lives: in the store's own directory, or
//! in a separate one (zoo.cfg `dataLogDir`, which ZooKeeper's admin guide
//! puts on a dedicated device because every commit waits on its sync).
//!
//! The WAL — and the txn log's journal beside it (`txn_log/journal.rs`) —
//! hold the txns not yet flushed into RocksDB's tables, and are looked for
//! only where the store is told to. A store opened with a
//! different WAL directory than it was written with would therefore come
//! up without its newest acknowledged txns, and say nothing. So the store
//! records its WAL directory in a small file beside its tables
//! ([`WAL_DIR_FILE`], absent when the WAL is in the store directory), and
//! when the setting changes, `Store::open` first opens the store with the
//! recorded directory, replays the old journal into it and flushes every
//! column family — after which the old directory holds nothing that is
//! needed, so its journal and WAL files are removed — and only then
//! records and uses the new one. A recorded directory that is gone is
//! refused: its txns are gone with it, and the operator must know. So is a
//! new directory that already holds another store's log files.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::StoreError;

/// The file in the store directory that names the WAL directory.
pub(crate) const WAL_DIR_FILE: &str = "ZAB_WAL_DIR";

// Throughout, a WAL directory of `None` is the store's own directory.

/// The WAL directory `configured` for the store whose canonical directory
/// is `home`: created if missing and made canonical, so that two spellings
/// of one directory compare equal; `None` if it is `home` itself.
pub(crate) fn resolve(
    home: &Path,
    configured: Option<&Path>,
) -> Result<Option<PathBuf>, StoreError> {
    let Some(wal) = configured else {
        return Ok(None);
    };
    fs::create_dir_all(wal)?;
    let wal = fs::canonicalize(wal)?;
    Ok((wal != home).then_some(wal))
}

/// The separate WAL directory the store in `dir` was written with, as
/// recorded in [`WAL_DIR_FILE`]; `None` if there is no such file.
pub(crate) fn recorded(dir: &Path) -> Result<Option<PathBuf>, StoreError> {
    match fs::read(dir.join(WAL_DIR_FILE)) {
        Ok(bytes) => {
            let text = String::from_utf8(bytes)
                .map_err(|_| StoreError::Corrupt(format!("{WAL_DIR_FILE} is not UTF-8")))?;
            let path = PathBuf::from(text.trim_end_matches('\n'));
            if path.is_absolute() {
                Ok(Some(path))
            } else {
                Err(StoreError::Corrupt(format!(
                    "{WAL_DIR_FILE} names `{}`, not an absolute path",
                    path.display()
                )))
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Records `wal` (from [`resolve`]) as the store's WAL directory,
/// durably: written to a temporary file, synced, renamed over the old
/// record, and the directory synced. `None` removes the record.
pub(crate) fn record(dir: &Path, wal: Option<&Path>) -> Result<(), StoreError> {
    let file = dir.join(WAL_DIR_FILE);
    if let Some(wal) = wal {
        let text = wal.to_str().ok_or_else(|| {
            StoreError::Io(std::sync::Arc::new(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("WAL directory {} is not valid UTF-8", wal.display()),
            )))
        })?;
        let tmp = dir.join(format!("{WAL_DIR_FILE}.tmp"));
        let mut f = fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        fs::rename(&tmp, &file)?;
    } else {
        match fs::remove_file(&file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
    fs::File::open(dir)?.sync_all()?;
    Ok(())
}

/// Whether `wal` already holds RocksDB log files (`*.log`): a store must
/// not start writing its WAL to a directory another store writes to, or
/// the two would replay each other's txns.
pub(crate) fn holds_wal_files(wal: &Path) -> Result<bool, StoreError> {
    for entry in fs::read_dir(wal)? {
        let name = entry?.file_name();
        if Path::new(&name).extension().is_some_and(|e| e == "log")
            || crate::txn_log::is_journal_file(&name)
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Removes RocksDB's WAL files (`NNNNNN.log`) from `wal`, a WAL directory
/// the store has just moved away from: the store was flushed through it
/// and closed, so they hold nothing needed, and left behind they would
/// make [`holds_wal_files`] refuse the directory if it is configured again.
pub(crate) fn remove_wal_files(wal: &Path) -> Result<(), StoreError> {
    for entry in fs::read_dir(wal)? {
        let path = entry?.path();
        let is_wal = path.extension().is_some_and(|e| e == "log")
            && path
                .file_stem()
                .and_then(|s| s.to_str())
                .is_some_and(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()));
        if is_wal {
            fs::remove_file(&path)?;
        }
    }
    // Durably gone (the journal's segments too, removed just before):
    // back after a crash, they would refuse the directory again.
    fs::File::open(wal)?.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc::channel;
    use std::time::Duration;

    use bytes::Bytes;
    use zab_wire::Zxid;

    use super::*;
    use crate::{open_db, Store, StoreOptions};

    fn open(dir: &Path, wal: Option<&Path>) -> Result<Store, StoreError> {
        Store::open(
            dir,
            StoreOptions {
                wal_dir: wal.map(Path::to_path_buf),
                ..StoreOptions::default()
            },
        )
    }

    /// Appends txns `from..=to`, synced, and returns them.
    fn write(store: &Store, from: i64, to: i64) -> Vec<(Zxid, Bytes)> {
        let txns: Vec<(Zxid, Bytes)> = (from..=to)
            .map(|z| (Zxid(z), Bytes::from(format!("txn {z}"))))
            .collect();
        let (tx, rx) = channel();
        store.log().append_batch(txns.clone(), move |r| {
            let _ = tx.send(r);
        });
        rx.recv_timeout(Duration::from_secs(20)).unwrap().unwrap();
        txns
    }

    fn read(store: &Store) -> Vec<(Zxid, Bytes)> {
        store
            .log()
            .read_from(Zxid::ZERO)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    fn wal_files(dir: &Path) -> usize {
        fs::read_dir(dir)
            .unwrap()
            .filter(|e| {
                let name = e.as_ref().unwrap().file_name();
                Path::new(&name).extension().is_some_and(|x| x == "log")
            })
            .count()
    }

    fn copy_dir(from: &Path, to: &Path) {
        fs::create_dir_all(to).unwrap();
        for e in fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_file() {
                fs::copy(e.path(), to.join(e.file_name())).unwrap();
            }
        }
    }

    #[test]
    fn a_separate_wal_dir_takes_the_log_and_is_replayed_on_reopen() {
        let root = tempfile::tempdir().unwrap();
        let (dir, wal) = (root.path().join("store"), root.path().join("wal"));
        let written = {
            let store = open(&dir, Some(&wal)).unwrap();
            assert_eq!(store.wal_dir(), fs::canonicalize(&wal).unwrap());
            write(&store, 1, 50)
        };
        assert!(wal_files(&wal) > 0, "no WAL file in the WAL directory");
        assert_eq!(wal_files(&dir), 0, "a WAL file in the store directory");
        assert!(dir.join(WAL_DIR_FILE).is_file());
        let store = open(&dir, Some(&wal)).unwrap();
        assert_eq!(read(&store), written);
        // Recovery flushed the replayed txns and began an empty WAL file.
        write(&store, 51, 60);
        assert!(store.wal_disk_usage() > 0);
    }

    #[test]
    fn changing_the_wal_dir_loses_nothing() {
        let root = tempfile::tempdir().unwrap();
        let (dir, a) = (root.path().join("store"), root.path().join("a"));
        // What a crash leaves: the store and its WAL directory copied while
        // it is open, its newest txns durable but not yet in RocksDB's
        // tables (a clean close would flush them there).
        let (crashed, crashed_a) = (root.path().join("crashed"), root.path().join("crashed-a"));
        let mut written = {
            let store = open(&dir, Some(&a)).unwrap();
            let written = write(&store, 1, 30);
            copy_dir(&dir, &crashed);
            copy_dir(&a, &crashed_a);
            written
        };
        record(&crashed, Some(&fs::canonicalize(&crashed_a).unwrap())).unwrap();
        // Control: the txns are in the old WAL directory alone (the txn
        // log's journal), so opening the tables with another WAL directory,
        // without the move, would lose them.
        let (copy, empty) = (root.path().join("copy"), root.path().join("empty"));
        copy_dir(&crashed, &copy);
        fs::create_dir_all(&empty).unwrap();
        {
            let db = open_db(&copy, Some(&fs::canonicalize(&empty).unwrap())).unwrap();
            let log = crate::cf(&db, crate::CF_LOG).unwrap();
            assert_eq!(
                db.iterator_cf(log, rocksdb::IteratorMode::Start).count(),
                0,
                "the control expected the txns in the old WAL directory only"
            );
        }

        let b = root.path().join("b");
        {
            let store = open(&crashed, Some(&b)).unwrap();
            assert_eq!(read(&store), written);
            assert_eq!(
                recorded(&crashed).unwrap(),
                Some(fs::canonicalize(&b).unwrap())
            );
            written.extend(write(&store, 31, 40));
        }
        // Back into the store directory: the record goes away.
        let store = open(&crashed, None).unwrap();
        assert_eq!(read(&store), written);
        assert!(!crashed.join(WAL_DIR_FILE).exists());
        assert_eq!(store.wal_dir(), fs::canonicalize(&crashed).unwrap());
        drop(store);
        // The move took the journal out of `b` with it.
        assert!(!b.join("journal-0").exists() && !b.join("journal-1").exists());
        // The original, closed cleanly, has everything too.
        assert_eq!(read(&open(&dir, Some(&a)).unwrap()), written[..30]);
    }

    /// An operator who moves `dataLogDir` and then moves it back: the old
    /// directory was emptied by the first move, so it is not another
    /// store's.
    #[test]
    fn a_wal_dir_can_be_moved_back_to() {
        let root = tempfile::tempdir().unwrap();
        let (dir, a, b) = (
            root.path().join("store"),
            root.path().join("a"),
            root.path().join("b"),
        );
        let mut written = write(&open(&dir, Some(&a)).unwrap(), 1, 20);
        written.extend(write(&open(&dir, Some(&b)).unwrap(), 21, 40));
        assert_eq!(wal_files(&a), 0, "the move left RocksDB's WAL files in a");
        let store = open(&dir, Some(&a)).unwrap();
        assert_eq!(read(&store), written);
        assert_eq!(store.wal_dir(), fs::canonicalize(&a).unwrap());
    }

    /// A crash during a move, after the old directory was emptied but
    /// before the new one was recorded: the store reopens from the old,
    /// empty directory with everything (it was flushed first).
    #[test]
    fn a_crash_after_the_old_wal_dir_was_emptied_loses_nothing() {
        let root = tempfile::tempdir().unwrap();
        let (dir, a) = (root.path().join("store"), root.path().join("a"));
        let written = write(&open(&dir, Some(&a)).unwrap(), 1, 20);
        let a = fs::canonicalize(&a).unwrap();
        {
            let db = open_db(&dir, Some(&a)).unwrap();
            crate::txn_log::recover_journal(&db, &a, true).unwrap();
            crate::flush_all(&db).unwrap();
        }
        crate::txn_log::remove_journal(&a).unwrap();
        remove_wal_files(&a).unwrap();
        assert_eq!(fs::read_dir(&a).unwrap().count(), 0);
        let store = open(&dir, Some(&a)).unwrap();
        assert_eq!(read(&store), written);
    }

    #[test]
    fn a_missing_recorded_wal_dir_is_refused_whatever_is_configured() {
        let root = tempfile::tempdir().unwrap();
        let (dir, wal) = (root.path().join("store"), root.path().join("wal"));
        drop(open(&dir, Some(&wal)).unwrap());
        let recorded = fs::canonicalize(&wal).unwrap();
        fs::remove_dir_all(&wal).unwrap();
        for configured in [Some(wal.as_path()), Some(root.path()), None] {
            match open(&dir, configured) {
                Err(StoreError::WalDirMissing(p)) => assert_eq!(p, recorded),
                Err(e) => panic!("{configured:?}: {e}"),
                Ok(_) => panic!("{configured:?}: opened without its log"),
            }
        }
    }

    #[test]
    fn a_new_store_refuses_a_wal_dir_another_store_writes_to() {
        let root = tempfile::tempdir().unwrap();
        let wal = root.path().join("wal");
        let first = open(&root.path().join("one"), Some(&wal)).unwrap();
        write(&first, 1, 3);
        // A new store, and an existing one moving its log there.
        let existing = root.path().join("three");
        drop(open(&existing, None).unwrap());
        for dir in [root.path().join("two"), existing] {
            match open(&dir, Some(&wal)) {
                Err(StoreError::WalDirInUse(p)) => assert_eq!(p, fs::canonicalize(&wal).unwrap()),
                Err(e) => panic!("{e}"),
                Ok(_) => panic!("two stores share one WAL directory"),
            }
        }
    }

    #[test]
    fn a_damaged_record_is_an_error_not_a_panic() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("store");
        drop(open(&dir, Some(&root.path().join("wal"))).unwrap());
        for bad in [&b"relative/path\n"[..], &[0xff, 0xfe][..]] {
            fs::write(dir.join(WAL_DIR_FILE), bad).unwrap();
            assert!(matches!(open(&dir, None), Err(StoreError::Corrupt(_))));
        }
    }
}
