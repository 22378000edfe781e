//! Snapshots of the tree, tagged with the zxid they were taken at.
//!
//! A snapshot is an opaque byte stream (zab-tree serializes itself). It is
//! stored as chunks in the `snapshots` column family and becomes visible
//! only when its manifest is written:
//!
//! 1. chunks are written, under a save id no other save uses, straight into
//!    an SST file of their own (`SstFileWriter`), which RocksDB then ingests
//!    (synced): no WAL and no memtable. A snapshot is written once and read
//!    rarely; through the WAL it would double its I/O and slow the txn
//!    log's syncs, and through the memtable it held up to 64 MiB (at a
//!    million znodes) of extra resident memory until flushed;
//! 2. one write batch puts the manifest (and, when the zxid already had a
//!    snapshot, drops the old chunks), synced through the WAL.
//!
//! A crash before step 2 leaves chunks with no manifest (or a half-written
//! file no one ingested): the snapshot never existed, and
//! [`SnapshotStore::open`] deletes such orphans. A crash during step 2 is
//! covered by RocksDB's atomic batches. Saving never takes a lock the txn
//! log uses, so writes continue while a snapshot streams in.

use std::collections::BTreeSet;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rocksdb::{IngestExternalFileOptions, Options, SstFileWriter, WriteBatch, WriteOptions, DB};
use zab_wire::Zxid;

use crate::layout::{
    chunk_key, chunk_range, decode_chunk_id, decode_manifest_key, is_manifest_key, manifest_key,
    saved_at_key, Manifest, CF_SNAPSHOTS, CHUNK_START, MANIFEST_END, MANIFEST_START,
};
use crate::timings::{TimingRecorder, Timings};
use crate::{cf, StoreError};

/// Where save `id` writes its SST file before RocksDB ingests it: in the
/// DB's directory, under a name RocksDB never uses for its own files.
fn unfinished_file(db_dir: &Path, id: u64) -> PathBuf {
    db_dir.join(format!("{UNFINISHED_PREFIX}{id}.sst"))
}

const UNFINISHED_PREFIX: &str = "zab-snapshot-";

/// Deletes SST files of saves that a crash interrupted before ingestion.
fn remove_unfinished_files(db_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(db_dir) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(UNFINISHED_PREFIX))
        {
            if let Err(err) = std::fs::remove_file(e.path()) {
                tracing::warn!(file = %e.path().display(), error = %err, "cannot delete an unfinished snapshot file");
            }
        }
    }
}

/// A visible snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// The last zxid applied to the tree when the snapshot was taken.
    pub zxid: Zxid,
    /// Its size in bytes.
    pub size: u64,
}

/// A handle on the snapshots. Cheap to clone; `Send + Sync`.
#[derive(Clone)]
pub struct SnapshotStore {
    db: Arc<DB>,
    chunk_size: usize,
    sync: bool,
    /// Saves are rare; serializing them makes replacing a snapshot of the
    /// same zxid simple.
    save_lock: Arc<Mutex<()>>,
    next_id: Arc<AtomicU64>,
    /// Each snapshot saved, timed (ZooKeeper's `snapshottime`).
    save_times: Arc<TimingRecorder>,
    /// Whether a periodic snapshot is on its way (see
    /// [`SnapshotStore::claim_periodic`]).
    periodic: Arc<AtomicBool>,
}

/// The one periodic snapshot that may be on its way at a time, from
/// [`SnapshotStore::claim_periodic`]; the next can be claimed once this is
/// dropped.
#[derive(Debug)]
pub struct PeriodicClaim(Arc<AtomicBool>);

impl Drop for PeriodicClaim {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl SnapshotStore {
    /// Opens the snapshots of `db`, deleting chunks of interrupted saves.
    pub(crate) fn open(db: Arc<DB>, chunk_size: usize, sync: bool) -> Result<Self, StoreError> {
        let manifests = list_manifests(&db)?;
        let live: BTreeSet<u64> = manifests.iter().map(|(_, m)| m.id).collect();
        let mut max_id = live.iter().next_back().copied().unwrap_or(0);
        let cf = cf(&db, CF_SNAPSHOTS)?;
        let mut orphans = Vec::new();
        {
            // One seek per save id, not one step per chunk.
            let mut it = db.raw_iterator_cf(cf);
            it.seek(CHUNK_START);
            while let Some(k) = it.key() {
                let Some(id) = decode_chunk_id(k)? else { break };
                max_id = max_id.max(id);
                if !live.contains(&id) {
                    orphans.push(id);
                }
                let (_, end) = chunk_range(id);
                it.seek(end);
            }
            it.status()?;
        }
        remove_unfinished_files(db.path());
        if !orphans.is_empty() {
            let mut batch = WriteBatch::default();
            for id in &orphans {
                let (start, end) = chunk_range(*id);
                batch.delete_range_cf(cf, start, end);
            }
            db.write(batch)?;
            tracing::info!(
                count = orphans.len(),
                "deleted chunks of interrupted snapshot saves"
            );
        }
        Ok(SnapshotStore {
            db,
            chunk_size: chunk_size.max(1),
            sync,
            save_lock: Arc::new(Mutex::new(())),
            next_id: Arc::new(AtomicU64::new(max_id + 1)),
            save_times: Arc::default(),
            periodic: Arc::default(),
        })
    }

    /// Claims the right to take a periodic snapshot, `None` while an
    /// earlier claim is held: as ZooKeeper's `SyncRequestProcessor` skips
    /// a snapshot while the last one is still being written ("Too busy to
    /// snap, skipping"). Otherwise, with a tree that takes longer to write
    /// than writes take to call for the next, snapshots would queue
    /// without end, each keeping a version of the tree alive.
    pub fn claim_periodic(&self) -> Option<PeriodicClaim> {
        self.periodic
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .ok()
            .map(|_| PeriodicClaim(self.periodic.clone()))
    }

    /// Streams a snapshot in and makes it visible atomically once complete
    /// (see the module docs). A snapshot already saved at `zxid` is replaced.
    /// If `data` fails, nothing becomes visible and the chunks are dropped.
    ///
    /// A save that succeeds is timed, from its first read of `data` to its
    /// snapshot being visible: with `data` a tree being serialized, as
    /// ZooKeeper's `takeSnapshot` times serializing it to its file.
    pub fn save(&self, zxid: Zxid, data: &mut impl Read) -> Result<SnapshotInfo, StoreError> {
        let started = std::time::Instant::now();
        let info = self.save_untimed(zxid, data)?;
        self.save_times.record(started.elapsed().as_millis() as u64);
        Ok(info)
    }

    /// How long the saves since the last reset took.
    pub fn save_times(&self) -> Timings {
        self.save_times.read()
    }

    /// Starts the save timings afresh (`srst`).
    pub fn reset_save_times(&self) {
        self.save_times.reset();
    }

    /// [`SnapshotStore::save`] without counting it in the save timings, as
    /// ZooKeeper's `FileTxnSnapLog.restore` saves an empty database's first
    /// snapshot outside `takeSnapshot` (and its `snapshottime`).
    pub fn save_untimed(
        &self,
        zxid: Zxid,
        data: &mut impl Read,
    ) -> Result<SnapshotInfo, StoreError> {
        if zxid.0 < 0 {
            return Err(StoreError::InvalidZxid(zxid));
        }
        let _one_at_a_time = self.save_lock.lock().unwrap_or_else(|e| e.into_inner());
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        match self.write_chunks(id, data) {
            Ok((size, chunks)) => self.publish(zxid, Manifest { id, size, chunks }),
            Err(e) => {
                let (start, end) = chunk_range(id);
                let cleanup = cf(&self.db, CF_SNAPSHOTS)
                    .and_then(|cf| Ok(self.db.delete_range_cf(cf, start, end)?));
                if let Err(c) = cleanup {
                    // Orphans are deleted on the next open anyway.
                    tracing::warn!(error = %c, "could not drop chunks of a failed snapshot save");
                }
                Err(e)
            }
        }
    }

    fn write_chunks(&self, id: u64, data: &mut impl Read) -> Result<(u64, u32), StoreError> {
        let cf = cf(&self.db, CF_SNAPSHOTS)?;
        let path = unfinished_file(self.db.path(), id);
        let written = self.write_sst(&path, id, data);
        let result = match written {
            // Ingesting syncs the file and links it into the DB before the
            // manifest can point at its chunks.
            Ok((size, chunks)) if chunks > 0 => {
                let mut ingest = IngestExternalFileOptions::default();
                ingest.set_move_files(true);
                self.db
                    .ingest_external_file_cf_opts(cf, &ingest, vec![&path])
                    .map(|()| (size, chunks))
                    .map_err(StoreError::from)
            }
            other => other,
        };
        // Moved into the DB, or never finished: either way not ours to keep.
        let _ = std::fs::remove_file(&path);
        result
    }

    /// Writes the chunks of save `id` into a new SST file at `path`, in key
    /// order (an SST file is sorted): (bytes, chunks). No file is finished
    /// for an empty stream (RocksDB refuses an SST without entries).
    fn write_sst(
        &self,
        path: &Path,
        id: u64,
        data: &mut impl Read,
    ) -> Result<(u64, u32), StoreError> {
        let opts = Options::default();
        let mut writer = SstFileWriter::create(&opts);
        let mut buf = vec![0u8; self.chunk_size];
        let (mut size, mut chunks) = (0u64, 0u32);
        loop {
            let n = read_full(data, &mut buf)?;
            if n == 0 {
                break;
            }
            if chunks == 0 {
                writer.open(path)?;
            }
            writer.put(chunk_key(id, chunks), &buf[..n])?;
            size += n as u64;
            chunks = chunks
                .checked_add(1)
                .ok_or_else(|| StoreError::Corrupt("snapshot has too many chunks".into()))?;
            if n < buf.len() {
                break;
            }
        }
        if chunks > 0 {
            writer.finish()?;
        }
        Ok((size, chunks))
    }

    fn publish(&self, zxid: Zxid, manifest: Manifest) -> Result<SnapshotInfo, StoreError> {
        let cf = cf(&self.db, CF_SNAPSHOTS)?;
        let key = manifest_key(zxid);
        let mut batch = WriteBatch::default();
        if let Some(old) = self.db.get_pinned_cf(cf, key)? {
            let old = Manifest::decode(&old)?;
            let (start, end) = chunk_range(old.id);
            batch.delete_range_cf(cf, start, end);
        }
        batch.put_cf(cf, key, manifest.encode());
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        batch.put_cf(cf, saved_at_key(zxid), now.to_be_bytes());
        let mut opts = WriteOptions::default();
        opts.set_sync(self.sync);
        self.db.write_opt(batch, &opts)?;
        tracing::info!(zxid = %zxid, size = manifest.size, "snapshot saved");
        Ok(SnapshotInfo {
            zxid,
            size: manifest.size,
        })
    }

    /// The newest snapshot and a reader over its bytes.
    pub fn latest(&self) -> Result<Option<(SnapshotInfo, SnapshotReader)>, StoreError> {
        let cf = cf(&self.db, CF_SNAPSHOTS)?;
        let mut it = self.db.raw_iterator_cf(cf);
        it.seek_for_prev(MANIFEST_END);
        let found = match it.item() {
            Some((k, v)) if is_manifest_key(k) => {
                Some((decode_manifest_key(k)?, Manifest::decode(v)?))
            }
            _ => None,
        };
        it.status()?;
        Ok(found.map(|(zxid, m)| (info(zxid, &m), self.reader_for(zxid, m))))
    }

    /// A reader over the snapshot at exactly `zxid`, if there is one (for
    /// falling back to an older snapshot when the newest does not load).
    pub fn read(&self, zxid: Zxid) -> Result<Option<(SnapshotInfo, SnapshotReader)>, StoreError> {
        if zxid.0 < 0 {
            return Ok(None);
        }
        let cf = cf(&self.db, CF_SNAPSHOTS)?;
        match self.db.get_pinned_cf(cf, manifest_key(zxid))? {
            Some(v) => {
                let m = Manifest::decode(&v)?;
                Ok(Some((info(zxid, &m), self.reader_for(zxid, m))))
            }
            None => Ok(None),
        }
    }

    /// Every visible snapshot, oldest first.
    pub fn list(&self) -> Result<Vec<SnapshotInfo>, StoreError> {
        Ok(list_manifests(&self.db)?
            .iter()
            .map(|(zxid, m)| info(*zxid, m))
            .collect())
    }

    /// Deletes the snapshot at `zxid` (manifest and chunks, in one batch).
    /// Returns whether there was one.
    pub fn delete(&self, zxid: Zxid) -> Result<bool, StoreError> {
        Ok(self.delete_returning_id(zxid)?.is_some())
    }

    /// Like [`SnapshotStore::delete`], returning the save id of the deleted
    /// snapshot (purge compacts its chunk range).
    pub(crate) fn delete_returning_id(&self, zxid: Zxid) -> Result<Option<u64>, StoreError> {
        if zxid.0 < 0 {
            return Ok(None);
        }
        let _one_at_a_time = self.save_lock.lock().unwrap_or_else(|e| e.into_inner());
        let cf = cf(&self.db, CF_SNAPSHOTS)?;
        let key = manifest_key(zxid);
        let Some(old) = self.db.get_pinned_cf(cf, key)? else {
            return Ok(None);
        };
        let old = Manifest::decode(&old)?;
        let (start, end) = chunk_range(old.id);
        let mut batch = WriteBatch::default();
        batch.delete_cf(cf, key);
        batch.delete_cf(cf, saved_at_key(zxid));
        batch.delete_range_cf(cf, start, end);
        self.db.write(batch)?;
        Ok(Some(old.id))
    }

    /// When the snapshot at `zxid` was saved, in Unix seconds: `None` if
    /// there is no such snapshot, or it was saved by a build that did not
    /// record the time.
    pub fn saved_at(&self, zxid: Zxid) -> Result<Option<u64>, StoreError> {
        let cf = cf(&self.db, CF_SNAPSHOTS)?;
        if zxid.0 < 0 || self.db.get_pinned_cf(cf, manifest_key(zxid))?.is_none() {
            return Ok(None);
        }
        match self.db.get_pinned_cf(cf, saved_at_key(zxid))? {
            Some(v) => {
                let raw: [u8; 8] = v[..].try_into().map_err(|_| {
                    StoreError::Corrupt(format!("snapshot time of {} bytes", v.len()))
                })?;
                Ok(Some(u64::from_be_bytes(raw)))
            }
            None => Ok(None),
        }
    }

    fn reader_for(&self, zxid: Zxid, manifest: Manifest) -> SnapshotReader {
        SnapshotReader {
            db: Arc::clone(&self.db),
            zxid,
            manifest,
            next_chunk: 0,
            read: 0,
            chunk: Vec::new(),
            pos: 0,
        }
    }
}

fn info(zxid: Zxid, m: &Manifest) -> SnapshotInfo {
    SnapshotInfo { zxid, size: m.size }
}

fn list_manifests(db: &DB) -> Result<Vec<(Zxid, Manifest)>, StoreError> {
    let cf = cf(db, CF_SNAPSHOTS)?;
    let mut it = db.raw_iterator_cf(cf);
    it.seek(MANIFEST_START);
    let mut out = Vec::new();
    while let Some((k, v)) = it.item() {
        if !is_manifest_key(k) {
            break;
        }
        out.push((decode_manifest_key(k)?, Manifest::decode(v)?));
        it.next();
    }
    it.status()?;
    Ok(out)
}

/// Reads until `buf` is full or `r` is at its end.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// `std::io::Read` over a snapshot's chunks, one chunk in memory at a time.
///
/// A chunk that is missing (the snapshot was purged while being read) or a
/// size that does not match the manifest is an `InvalidData` error, never a
/// short snapshot passed off as whole.
pub struct SnapshotReader {
    db: Arc<DB>,
    zxid: Zxid,
    manifest: Manifest,
    next_chunk: u32,
    read: u64,
    chunk: Vec<u8>,
    pos: usize,
}

impl SnapshotReader {
    /// The zxid of the snapshot being read.
    pub fn zxid(&self) -> Zxid {
        self.zxid
    }

    fn load_next_chunk(&mut self) -> Result<bool, StoreError> {
        if self.next_chunk == self.manifest.chunks {
            if self.read != self.manifest.size {
                return Err(StoreError::Corrupt(format!(
                    "snapshot {}: {} bytes, manifest says {}",
                    self.zxid, self.read, self.manifest.size
                )));
            }
            return Ok(false);
        }
        let cf = cf(&self.db, CF_SNAPSHOTS)?;
        let key = chunk_key(self.manifest.id, self.next_chunk);
        let Some(chunk) = self.db.get_pinned_cf(cf, key)? else {
            return Err(StoreError::ChangedWhileReading);
        };
        self.read += chunk.len() as u64;
        if self.read > self.manifest.size {
            return Err(StoreError::Corrupt(format!(
                "snapshot {}: longer than its manifest's {} bytes",
                self.zxid, self.manifest.size
            )));
        }
        self.chunk.clear();
        self.chunk.extend_from_slice(&chunk);
        self.pos = 0;
        self.next_chunk += 1;
        Ok(true)
    }
}

impl Read for SnapshotReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.chunk.len() {
            if !self.load_next_chunk()? {
                return Ok(0);
            }
        }
        let n = buf.len().min(self.chunk.len() - self.pos);
        buf[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
