//! The one error type of the store.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use zab_wire::Zxid;

/// Everything that can go wrong in the store.
///
/// `Clone` because one failed group-commit write is reported to every
/// callback of the batch it covered.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// RocksDB reported an error (I/O, corruption it detected, ...).
    #[error("rocksdb: {0}")]
    Rocks(#[from] rocksdb::Error),
    /// An I/O error outside RocksDB (the snapshot source stream, the data dir).
    #[error("i/o: {0}")]
    Io(Arc<io::Error>),
    /// A key or value in the database does not have the layout this crate
    /// writes. Never a panic: the caller decides (usually: refuse to start).
    #[error("corrupt store: {0}")]
    Corrupt(String),
    /// The store was written in a layout this version neither writes nor
    /// upgrades: by a newer (or much older) version of this crate.
    #[error("store layout {0} is not one this version of zab opens (it writes layout {current} and upgrades layouts {older:?})", current = crate::layout::FORMAT_VERSION, older = crate::layout::UPGRADABLE_FORMATS)]
    UnsupportedFormat(u32),
    /// Appends must carry strictly increasing zxids.
    #[error("zxid {zxid} is not above the last queued zxid {last}")]
    NotIncreasing { zxid: Zxid, last: Zxid },
    /// Zxids are `epoch << 32 | counter` with a 32-bit epoch: never negative.
    #[error("invalid zxid {0}")]
    InvalidZxid(Zxid),
    /// An earlier write of the txn log failed; its durable state is unknown,
    /// so the log refuses every later write (ZooKeeper exits in this case).
    #[error("txn log unusable after an earlier write failure: {0}")]
    LogFailed(Arc<StoreError>),
    /// The log writer thread is gone (the store is being dropped).
    #[error("txn log writer has stopped")]
    Closed,
    /// A blocking log operation (truncate, purge) was called from a durable
    /// callback, which runs on the writer thread it would wait for.
    #[error("blocking txn log call from a durable callback would deadlock")]
    CalledFromCallback,
    /// A `LogIter` or `SnapshotReader` saw the data under it truncated or
    /// purged; the caller should start over (or fall back to SNAP).
    #[error("the data being read was truncated or purged concurrently")]
    ChangedWhileReading,
    /// The stored epochs contradict the data or each other (reference F.7).
    #[error(transparent)]
    Epoch(#[from] crate::EpochError),
    /// `autopurge.snapRetainCount` has a minimum of 3 (reference H).
    #[error("snapshot retain count must be at least 3, got {0}")]
    RetainTooSmall(usize),
    /// The store's recorded WAL directory (its newest txns) is gone.
    #[error(
        "the store's txn log directory {} is missing: the txns in it would be lost; \
         restore it (or point dataLogDir back at it)",
        .0.display()
    )]
    WalDirMissing(PathBuf),
    /// A new store was pointed at a WAL directory another store writes to.
    #[error(
        "{} already holds another store's txn log (*.log files): give every server its own \
         dataLogDir, or empty that directory if the store it belonged to is gone",
        .0.display()
    )]
    WalDirInUse(PathBuf),
}

impl From<io::Error> for StoreError {
    fn from(e: io::Error) -> Self {
        StoreError::Io(Arc::new(e))
    }
}

impl From<StoreError> for io::Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Io(inner) => io::Error::new(inner.kind(), inner.to_string()),
            other => io::Error::new(io::ErrorKind::InvalidData, other),
        }
    }
}
