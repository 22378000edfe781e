//! zab's durability on RocksDB.
//!
//! This crate owns everything a zab server keeps on disk, in one RocksDB
//! instance under one directory, its write-ahead log optionally in another
//! ([`StoreOptions::wal_dir`], zoo.cfg `dataLogDir`):
//!
//! * the txn log ([`TxnLog`]): appends with group commit — one synced write
//!   covers every txn queued while the previous sync ran (under load, for
//!   up to [`GroupCommit::max_delay`] more), and a txn is reported durable
//!   only after its sync (in the log's journal, beside the WAL, until
//!   RocksDB has flushed it into its tables) — reads from a zxid, truncation
//!   after a zxid (TRUNC sync), the last logged zxid;
//! * snapshots of the tree ([`SnapshotStore`]), opaque byte streams tagged
//!   with their zxid, visible only once completely written;
//! * the epoch metadata `currentEpoch` and `acceptedEpoch` (reference F.7),
//!   synced before the setter returns, and ZooKeeper's start-up checks on
//!   them ([`Store::recover_epochs`]);
//! * purge ([`Store::purge`]): keep the newest N snapshots and the log
//!   needed to replay from the oldest of them (`autopurge.snapRetainCount`).
//!
//! It knows nothing about networks or roles, and has no async: the writer is
//! a std thread and completion is reported through callbacks, so async
//! callers just send on a channel from them.
//!
//! # Building
//!
//! It links RocksDB through `rocksdb = "=0.20.1"` (RocksDB 7.9's C API,
//! every symbol of which Debian's `librocksdb-dev` 7.8 has). Cargo's
//! `[env]` settings do not travel with a dependency: outside zab's
//! workspace, set `ROCKSDB_LIB_DIR` and `ROCKSDB_INCLUDE_DIR` to a system
//! RocksDB (and `LIBCLANG_PATH` for bindgen), as zab's
//! `.cargo/config.toml` does, or `librocksdb-sys` builds its bundled C++,
//! which takes about a quarter of an hour. The exact pin is deliberate: a
//! later `rocksdb` may call C functions that Debian's library lacks, and
//! `librocksdb-sys` declares `links = "rocksdb"`, so a graph holds one
//! version of it. [`StoreError`] carries RocksDB's own errors.

mod epochs;
mod error;
mod layout;
mod purge;
mod snapshot;
mod timings;
mod txn_log;
mod wal_dir;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rocksdb::{ColumnFamily, ColumnFamilyDescriptor, Options, WriteOptions, DB};
use zab_wire::{Epoch, Zxid};

pub use epochs::{EpochError, Epochs};
pub use error::StoreError;
pub use purge::{AutoPurge, PurgeReport, MIN_RETAIN};
pub use snapshot::{PeriodicClaim, SnapshotInfo, SnapshotReader, SnapshotStore};
pub use timings::Timings;
pub use txn_log::{GroupCommit, LogIter, LogStats, TxnLog};

use layout::{
    decode_epoch, decode_u32, encode_epoch, encode_u32, ACCEPTED_EPOCH_KEY, CF_LOG, CF_META,
    CF_SNAPSHOTS, CURRENT_EPOCH_KEY, FORMAT_KEY, FORMAT_VERSION, UPGRADABLE_FORMATS,
};
use purge::Purger;

/// How the store behaves.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// fsync the txn log before reporting txns durable (zoo.cfg `forceSync`,
    /// default yes). Epochs are synced regardless, as ZooKeeper's atomic
    /// epoch files are.
    pub sync: bool,
    /// Snapshots are stored in chunks of this many bytes.
    pub snapshot_chunk_size: usize,
    /// When the txn log syncs a group of appends.
    pub group_commit: GroupCommit,
    /// Where RocksDB keeps its write-ahead log — the bytes every commit
    /// syncs — when not in the store's own directory (zoo.cfg
    /// `dataLogDir`). Changing it between opens moves the log; see
    /// `wal_dir.rs`.
    pub wal_dir: Option<PathBuf>,
    /// A synced write of the log taking longer than this many ms is
    /// warned of and counted (zoo.cfg `fsync.warningthresholdms`, default
    /// 1000, as ZooKeeper's `FileTxnLog`).
    pub fsync_warning_threshold_ms: u64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            sync: true,
            snapshot_chunk_size: 1 << 20,
            group_commit: GroupCommit::default(),
            wal_dir: None,
            fsync_warning_threshold_ms: 1000,
        }
    }
}

/// One RocksDB instance with column families `log`, `snapshots` and `meta`.
pub struct Store {
    db: Arc<DB>,
    dir: PathBuf,
    /// Where the WAL is (canonical): `dir` unless `StoreOptions::wal_dir`.
    wal: PathBuf,
    log: TxnLog,
    snapshots: SnapshotStore,
}

/// The column family `name`, or a clear error if the DB lacks it.
pub(crate) fn cf<'a>(db: &'a DB, name: &str) -> Result<&'a ColumnFamily, StoreError> {
    db.cf_handle(name)
        .ok_or_else(|| StoreError::Corrupt(format!("column family {name} missing")))
}

/// Per column family options. The log's memtable is capped well below
/// RocksDB's 64 MiB default (issue 4: RSS per server is a goal): the log is
/// appended and read back only for syncs and recovery, so a large memtable
/// buys nothing but resident memory, and at a million znodes it held
/// anywhere between 0 and 64 MiB of txns depending on when it last flushed.
fn cf_options(name: &str) -> Options {
    let mut o = Options::default();
    if name == CF_LOG {
        o.set_write_buffer_size(LOG_MEMTABLE_BYTES);
    }
    o
}

/// The most RocksDB's live WAL files may hold, and the disk preallocated
/// for each.
const WAL_BYTES_CAP: u64 = 4 << 20;

/// RocksDB's info `LOG` is rolled at this size...
const INFO_LOG_BYTES: usize = 16 << 20;
/// ...and this many of them are kept.
const INFO_LOG_FILES: usize = 4;

/// Memtable size of the `log` column family.
const LOG_MEMTABLE_BYTES: usize = 16 << 20;

impl Store {
    /// Opens (creating if needed) the store in `dir`. Snapshot chunks left by
    /// a save that a crash interrupted are deleted here. If `opts.wal_dir`
    /// is not the WAL directory the store was written with, the store is
    /// first flushed through the old one (`wal_dir.rs`); a recorded WAL
    /// directory that is missing, or a new one holding another store's
    /// log, is refused.
    pub fn open(dir: &Path, opts: StoreOptions) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir)?;
        let home = std::fs::canonicalize(dir)?;
        // RocksDB's CURRENT file names the live manifest: the store exists.
        let exists = dir.join("CURRENT").exists();
        let recorded = wal_dir::recorded(dir)?;
        if let Some(r) = recorded.as_ref().filter(|r| exists && !r.is_dir()) {
            // Checked before `resolve` may create the configured directory:
            // an empty new one in its place would open without complaint.
            return Err(StoreError::WalDirMissing(r.clone()));
        }
        let wal = wal_dir::resolve(&home, opts.wal_dir.as_deref())?;
        if !exists || recorded != wal {
            if let Some(w) = &wal {
                if wal_dir::holds_wal_files(w)? {
                    // Another store's log: RocksDB would replay it into this one.
                    return Err(StoreError::WalDirInUse(w.clone()));
                }
            }
            if exists {
                // Opening replays the old WAL, and RocksDB's recovery already
                // flushes what it replays (`avoid_flush_during_recovery` is
                // off by default); the explicit flush does not rely on that.
                // The txn log's journal is beside the old WAL: its groups
                // go in first.
                let old = open_db(dir, recorded.as_deref())?;
                // Before its journal is read as this version's.
                check_format(&old)?;
                let old_dir = recorded.as_deref().unwrap_or(&home);
                txn_log::recover_journal(&old, old_dir, opts.sync)?;
                flush_all(&old)?;
                drop(old);
                // Emptied and no longer needed; left behind, they would make
                // the old directory look like another store's if it is
                // configured again later.
                txn_log::remove_journal(old_dir)?;
                if let Some(r) = &recorded {
                    // A separate directory is the store's alone; in the
                    // store's own directory RocksDB keeps managing them.
                    wal_dir::remove_wal_files(r)?;
                }
                let shown = |w: &Option<PathBuf>| w.as_ref().unwrap_or(&home).display().to_string();
                tracing::info!(
                    from = %shown(&recorded),
                    to = %shown(&wal),
                    "txn log directory changed: the store is flushed, the old directory is no longer needed"
                );
            }
            wal_dir::record(dir, wal.as_deref())?;
        }
        let db = Arc::new(open_db(dir, wal.as_deref())?);
        check_format(&db)?;
        // The txn log's journal lives with the WAL: on `dataLogDir`'s device
        // when there is one, as ZooKeeper's txn log does.
        let journal_dir = wal.as_deref().unwrap_or(&home);
        let log = TxnLog::open(
            Arc::clone(&db),
            journal_dir,
            opts.sync,
            opts.group_commit,
            opts.fsync_warning_threshold_ms,
        )?;
        let snapshots = SnapshotStore::open(Arc::clone(&db), opts.snapshot_chunk_size, opts.sync)?;
        Ok(Store {
            db,
            dir: dir.to_path_buf(),
            wal: wal.unwrap_or(home),
            log,
            snapshots,
        })
    }

    /// The txn log.
    pub fn log(&self) -> TxnLog {
        self.log.clone()
    }

    /// The snapshots.
    pub fn snapshots(&self) -> SnapshotStore {
        self.snapshots.clone()
    }

    /// The epoch whose history this server adopted (reference F.7).
    pub fn current_epoch(&self) -> Result<Option<Epoch>, StoreError> {
        self.get_epoch(CURRENT_EPOCH_KEY, "currentEpoch")
    }

    /// Synced before returning: a server acts on it right after.
    pub fn set_current_epoch(&self, e: Epoch) -> Result<(), StoreError> {
        self.put_epoch(CURRENT_EPOCH_KEY, e)
    }

    /// The epoch this server promised (reference F.7).
    pub fn accepted_epoch(&self) -> Result<Option<Epoch>, StoreError> {
        self.get_epoch(ACCEPTED_EPOCH_KEY, "acceptedEpoch")
    }

    /// Synced before returning: ACKEPOCH is sent right after.
    pub fn set_accepted_epoch(&self, e: Epoch) -> Result<(), StoreError> {
        self.put_epoch(ACCEPTED_EPOCH_KEY, e)
    }

    /// Applies ZooKeeper's start-up rules (reference F.7) given the last
    /// zxid processed by the database loaded from snapshot and log: creates
    /// missing epochs from it, and refuses epochs that contradict the data
    /// or each other.
    pub fn recover_epochs(&self, last_processed: Zxid) -> Result<Epochs, StoreError> {
        let r = epochs::recover(
            self.current_epoch()?,
            self.accepted_epoch()?,
            last_processed,
        )?;
        if r.write_current {
            self.set_current_epoch(r.epochs.current)?;
        }
        if r.write_accepted {
            self.set_accepted_epoch(r.epochs.accepted)?;
        }
        Ok(r.epochs)
    }

    fn get_epoch(&self, key: &[u8], what: &str) -> Result<Option<Epoch>, StoreError> {
        let meta = cf(&self.db, CF_META)?;
        match self.db.get_pinned_cf(meta, key)? {
            Some(v) => Ok(Some(decode_epoch(what, &v)?)),
            None => Ok(None),
        }
    }

    fn put_epoch(&self, key: &[u8], e: Epoch) -> Result<(), StoreError> {
        let meta = cf(&self.db, CF_META)?;
        let mut opts = WriteOptions::default();
        opts.set_sync(true);
        self.db.put_cf_opt(meta, key, encode_epoch(e), &opts)?;
        Ok(())
    }

    /// Keeps the newest `retain` (>= 3) snapshots and the log entries needed
    /// to replay from the oldest kept one; deletes the rest. With no
    /// snapshot at all nothing is deleted: the log is the only history.
    pub fn purge(&self, retain: usize) -> Result<PurgeReport, StoreError> {
        self.purger().purge(retain)
    }

    /// Runs [`Store::purge`] every `interval` on a background thread
    /// (`autopurge.purgeInterval`; ZooKeeper counts it in hours, and 0 turns
    /// it off, hence `None`). Dropping the returned handle stops the thread;
    /// it holds the store open until then.
    pub fn start_autopurge(
        &self,
        retain: usize,
        interval: std::time::Duration,
    ) -> Result<Option<AutoPurge>, StoreError> {
        AutoPurge::start(self.purger(), retain, interval)
    }

    fn purger(&self) -> Purger {
        Purger {
            db: Arc::clone(&self.db),
            log: self.log.clone(),
            snapshots: self.snapshots.clone(),
        }
    }

    /// Bytes used by the store's directory (for the `dirs` four-letter word:
    /// reference E; zab keeps log and snapshots in one directory).
    pub fn disk_usage(&self) -> u64 {
        dir_size(&self.dir)
    }

    /// The directory the store lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The directory RocksDB keeps its write-ahead log in: the store's own
    /// unless [`StoreOptions::wal_dir`] named another.
    pub fn wal_dir(&self) -> &Path {
        &self.wal
    }

    /// Bytes used by [`Store::wal_dir`] (everything, when that is the
    /// store's own directory).
    pub fn wal_disk_usage(&self) -> u64 {
        dir_size(&self.wal)
    }
}

/// Opens (creating if needed) the RocksDB instance in `dir`, with its WAL
/// in `wal` if given (as from `wal_dir::resolve`), else in `dir`.
fn open_db(dir: &Path, wal: Option<&Path>) -> Result<DB, StoreError> {
    let mut db_opts = Options::default();
    db_opts.create_if_missing(true);
    db_opts.create_missing_column_families(true);
    // Only rare, small writes go through the WAL (`meta`, snapshot
    // manifests, log truncations and purges; the log's groups skip it, see
    // `txn_log`). The cap is a backstop: `meta`'s and `snapshots`' stale
    // memtables would keep every WAL file alive, and the txn log flushes
    // them at each journal round. It also bounds the disk RocksDB
    // preallocates for each WAL file: 1.1 × the largest write buffer
    // otherwise, 70 MiB on disk for a file that holds a few hundred bytes.
    db_opts.set_max_total_wal_size(WAL_BYTES_CAP);
    // RocksDB's own info `LOG` grows by every flush's events (≈ 8 KiB a
    // second under a full write load) and, by default, is never rolled
    // while the server runs, with a thousand old ones kept across
    // restarts. ZooKeeper's log4j configuration rolls its logs; so does
    // this: at most `INFO_LOG_FILES` files of `INFO_LOG_BYTES`.
    db_opts.set_max_log_file_size(INFO_LOG_BYTES);
    db_opts.set_keep_log_file_num(INFO_LOG_FILES);
    if let Some(wal) = wal {
        db_opts.set_wal_dir(wal);
    }
    let cfs = [CF_LOG, CF_SNAPSHOTS, CF_META]
        .map(|name| ColumnFamilyDescriptor::new(name, cf_options(name)));
    Ok(DB::open_cf_descriptors(&db_opts, dir, cfs)?)
}

/// Flushes every column family's memtable into table files and waits, so
/// that nothing the store holds is in its WAL alone.
fn flush_all(db: &DB) -> Result<(), StoreError> {
    db.flush()?;
    for name in [CF_LOG, CF_SNAPSHOTS, CF_META] {
        db.flush_cf(cf(db, name)?)?;
    }
    Ok(())
}

/// Refuses a store written in a layout this version does not know; stamps
/// a new one, and restamps an upgradable one, synced before anything is
/// written in the new layout.
fn check_format(db: &DB) -> Result<(), StoreError> {
    let meta = cf(db, CF_META)?;
    let stamped = match db.get_pinned_cf(meta, FORMAT_KEY)? {
        Some(v) => Some(decode_u32("format", &v)?),
        None => None,
    };
    match stamped {
        Some(FORMAT_VERSION) => return Ok(()),
        Some(old) if UPGRADABLE_FORMATS.contains(&old) => {
            tracing::info!(from = old, to = FORMAT_VERSION, "store layout upgraded");
        }
        Some(other) => return Err(StoreError::UnsupportedFormat(other)),
        None => {}
    }
    let mut opts = WriteOptions::default();
    opts.set_sync(true);
    db.put_cf_opt(meta, FORMAT_KEY, encode_u32(FORMAT_VERSION), &opts)?;
    Ok(())
}

/// Sum of file sizes under `dir`; unreadable entries count as 0 (this is a
/// statistic, and files come and go under RocksDB's feet).
fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests;
