//! Importing a ZooKeeper data directory, so that an ensemble's data moves
//! to zab: `zab-server --import-zookeeper DATADIR [DATALOGDIR] zoo.cfg`.
//! As `FileTxnSnapLog` does, the snapshots are read from ZooKeeper's
//! `dataDir` and the txn logs from its `dataLogDir` (the same directory
//! unless named); a layout that would lose txns (logs without a snapshot,
//! or a snapshot of data with no log after it, which is what a `dataDir`
//! named without its separate `dataLogDir` looks like) is refused.
//!
//! This module owns ZooKeeper 3.x's on-disk formats — the newest
//! `snapshot.<zxid>` (`FileSnap`, `SerializeUtils.serializeSnapshot`) and
//! the `log.<zxid>` files after it (`FileTxnLog`) — and the mapping of
//! ZooKeeper's txn records onto zab's. The tree (`zab-tree`) applies them
//! as ZooKeeper's `FileTxnSnapLog.restore` would, and the store
//! (`zab-store`) keeps the snapshot as its first and the txns after it in
//! its txn log, as ZooKeeper keeps them, with the
//! server's `currentEpoch` and `acceptedEpoch` as ZooKeeper reads them. Snapshots may be compressed (`snapshot.compression.
//! method`: `.gz`, or `.snappy` in snappy-java's stream format); every
//! snapshot's seal (the Adler-32 of its content) is checked, so a torn or
//! damaged one gives way to the one before, as in ZooKeeper.
//!
//! ZooKeeper 3.6+ also writes its tree's digest at the end of a snapshot
//! and after every logged txn. zab computes the same digest
//! (`zab_tree::digest`), so the import checks the tree it builds against
//! ZooKeeper's own word for it, txn by txn, as ZooKeeper's restore does
//! (`DataTree.compareSnapshotDigests`, `compareDigest`).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use bytes::Bytes;
use prost::Message;
use zab_store::{Store, StoreOptions};
use zab_tree::digest::{ZxidDigest, DIGEST_VERSION};
use zab_tree::node::{ttl_owner, CONTAINER_OWNER};
use zab_tree::DataTree;
use zab_wire::jute::{Acl, DecodeError, Jute, Reader};
use zab_wire::proto::{self, txn_body::Op, SessionEntry, SnapshotHeader, Txn, TxnBody, Znode};
use zab_wire::{Epoch, Zxid};

use crate::config::Config;

/// A log record's `TxnDigest` (version, tree digest), which 3.6+ writes
/// after the txn (`Util.marshallTxnEntry`).
const TXN_DIGEST_LEN: usize = 4 + 8;

/// `FileSnap.SNAP_MAGIC` ("ZKSN") and `FileTxnLog.TXNLOG_MAGIC` ("ZKLG").
const SNAP_MAGIC: i32 = 0x5a4b_534e;
const LOG_MAGIC: i32 = 0x5a4b_4c47;

/// What an import did.
#[derive(Debug)]
pub struct Imported {
    /// The snapshot read, if the directory had one.
    pub snapshot: Option<PathBuf>,
    pub zxid: Zxid,
    pub nodes: usize,
    pub sessions: usize,
    /// Txns applied from the logs after the snapshot (and kept in zab's
    /// txn log after its copy of the snapshot).
    pub replayed: u64,
    /// What ZooKeeper's digests said of the tree built.
    pub digests: DigestCheck,
}

/// What ZooKeeper's own digests say of the imported tree: the one at the
/// end of its snapshot (`ZxidDigest`) and the one after every logged txn
/// (`TxnDigest`), compared as `DataTree.compareSnapshotDigests` and
/// `compareDigest` compare them. A mismatch is reported, not refused, as
/// ZooKeeper's restore reports it: the data are ZooKeeper's either way.
#[derive(Debug, Default, Clone, Copy)]
pub struct DigestCheck {
    pub checked: u64,
    pub mismatched: u64,
    pub first_mismatch: Option<Zxid>,
    /// Replayed txns not compared because they fell inside the snapshot's
    /// fuzzy range (`compareDigest` skips them while
    /// `digestFromLoadedSnapshot` is set). How many depends on how many
    /// txns ZooKeeper applied while it wrote the snapshot.
    pub fuzzy: u64,
    /// The snapshot's digest, until the replay reaches its zxid: until
    /// then the tree is a fuzzy mix of states, which no digest describes.
    pending: Option<ZxidDigest>,
}

impl DigestCheck {
    /// The check of a tree read from a snapshot that ended with `digest`.
    fn after_snapshot(digest: Option<ZxidDigest>, tree: &DataTree) -> DigestCheck {
        let mut check = DigestCheck::default();
        match digest {
            // Nothing changed while the snapshot was written.
            Some(d) if d.zxid == tree.last_zxid() => check.compare(d.zxid, d.digest, tree),
            Some(d) if d.zxid > tree.last_zxid() => check.pending = Some(d),
            // Older than the snapshot (a new leader's snapshot at epoch +
            // 0), or none (before 3.6, or digests off): from the first txn.
            _ => {}
        }
        check
    }

    /// After `tree` applied the txn `zxid`, logged with `logged`.
    fn after_txn(&mut self, zxid: Zxid, logged: Option<i64>, tree: &DataTree) {
        if let Some(d) = self.pending {
            if zxid < d.zxid {
                self.fuzzy += 1;
                return;
            }
            self.pending = None;
            if zxid == d.zxid {
                self.compare(zxid, d.digest, tree);
            }
            // Past it without meeting it, the fuzzy range is over all the
            // same (ZooKeeper would stop comparing for good).
        }
        if let Some(digest) = logged {
            self.compare(zxid, digest, tree);
        }
    }

    fn compare(&mut self, zxid: Zxid, expected: i64, tree: &DataTree) {
        self.checked += 1;
        if tree.digest() == expected {
            return;
        }
        self.mismatched += 1;
        if self.first_mismatch.is_none() {
            self.first_mismatch = Some(zxid);
            // ZooKeeper's "First digest mismatch on txn" error.
            tracing::error!(
                %zxid,
                expected,
                actual = tree.digest(),
                "first digest mismatch: the imported tree differs from ZooKeeper's"
            );
        }
    }
}

/// Imports ZooKeeper's data from `zk_dir` (a `dataDir`, or its
/// `version-2`) and its txn logs from `zk_log_dir` (its `dataLogDir`;
/// `zk_dir` when `None`) into the store of `cfg` (`dataDir/zab`), which
/// must be empty.
pub fn import(zk_dir: &Path, zk_log_dir: Option<&Path>, cfg: &Config) -> anyhow::Result<Imported> {
    let version2 = |d: &Path| {
        if d.join("version-2").is_dir() {
            d.join("version-2")
        } else {
            d.to_owned()
        }
    };
    let dir = version2(zk_dir);
    let log_dir = zk_log_dir.map_or_else(|| dir.clone(), version2);
    let (read, snapshot) = newest_snapshot(&dir)?;
    let (mut tree, snapshot_digest) = read.unwrap_or_default();
    let mut digests = DigestCheck::after_snapshot(snapshot_digest, &tree);
    // zab's snapshot is ZooKeeper's, at its zxid, and the txns after it go
    // to zab's txn log, as ZooKeeper keeps them in its own: the last of
    // them may never have been committed, and a leader's TRUNC must be
    // able to take them back (a snapshot cannot be truncated).
    let snapshot_zxid = tree.last_zxid();
    let logs = logs_from(&log_dir, snapshot_zxid)?;
    check_layout(
        snapshot.as_deref(),
        &logs,
        zk_log_dir.is_some(),
        &dir,
        &log_dir,
    )?;
    let mut snapshot_bytes = Vec::new();
    tree.snapshot().write_to(&mut snapshot_bytes)?;
    let mut replayed = Vec::new();
    for log in logs {
        replayed.extend(
            replay_log(&log, &mut tree, &mut digests)
                .with_context(|| format!("replaying {}", log.display()))?,
        );
    }
    let zxid = tree.last_zxid();
    // Everything that can refuse the data is asked before the store is
    // touched.
    let (current, accepted) = epochs(&dir, zxid)?;

    let store_dir = cfg.data_dir.join("zab");
    let unfinished = unfinished_import_marker(cfg);
    if unfinished.exists() {
        bail!("{}", unfinished_import(cfg));
    }
    let store = Store::open(
        &store_dir,
        StoreOptions {
            sync: cfg.force_sync,
            wal_dir: (cfg.data_log_dir != cfg.data_dir).then(|| cfg.data_log_dir.join("zab")),
            ..Default::default()
        },
    )
    .with_context(|| format!("opening the store in {}", store_dir.display()))?;
    // A server started on the dataDir and stopped before any write left
    // only the empty snapshot at zxid 0: that holds no data.
    let snapshot_has_data = store
        .snapshots()
        .latest()?
        .is_some_and(|(info, _)| info.zxid != Zxid::ZERO);
    if snapshot_has_data || store.log().last_zxid() != Zxid::ZERO {
        bail!(
            "{} already holds data; import into an empty dataDir",
            store_dir.display()
        );
    }
    // Until the marker goes, the store holds part of the data, and
    // neither a server nor another import takes it. Durable before the
    // synced writes that follow, or a power loss could keep them and lose it.
    std::fs::File::create(&unfinished)
        .and_then(|f| f.sync_all())
        .and_then(|()| std::fs::File::open(&cfg.data_dir)?.sync_all())
        .with_context(|| format!("writing {}", unfinished.display()))?;
    store
        .snapshots()
        .save(snapshot_zxid, &mut snapshot_bytes.as_slice())
        .context("saving the imported snapshot")?;
    for batch in replayed.chunks(IMPORT_BATCH) {
        let entries = batch
            .iter()
            .map(|txn| (Zxid(txn.zxid), Bytes::from(txn.encode_to_vec())))
            .collect();
        let (tx, rx) = std::sync::mpsc::channel();
        store.log().append_batch(entries, move |res| {
            let _ = tx.send(res);
        });
        rx.recv()
            .context("the txn log closed")?
            .context("logging the txns after the snapshot")?;
    }
    store.set_accepted_epoch(accepted)?;
    store.set_current_epoch(current)?;
    drop(store);
    std::fs::remove_file(&unfinished)
        .with_context(|| format!("removing {}", unfinished.display()))?;
    Ok(Imported {
        snapshot,
        zxid,
        nodes: tree.node_count(),
        sessions: tree.sessions().count(),
        replayed: replayed.len() as u64,
        digests,
    })
}

/// How many replayed txns go to zab's log per append.
const IMPORT_BATCH: usize = 1000;

/// The file beside the store that says an import into it has begun and
/// not finished (`dataDir/zab.importing`).
pub fn unfinished_import_marker(cfg: &Config) -> PathBuf {
    cfg.data_dir.join("zab.importing")
}

/// Why a store with [`unfinished_import_marker`] is refused.
pub fn unfinished_import(cfg: &Config) -> String {
    let store = cfg.data_dir.join("zab");
    let wal = if cfg.data_log_dir == cfg.data_dir {
        String::new()
    } else {
        format!(" and {}", cfg.data_log_dir.join("zab").display())
    };
    format!(
        "an import of ZooKeeper's data into {} did not finish ({} is there): \
         remove {}{wal} and that file, and import again",
        store.display(),
        unfinished_import_marker(cfg).display(),
        store.display()
    )
}

/// The server's `(currentEpoch, acceptedEpoch)`, as ZooKeeper's
/// `QuorumPeer.loadDataBase` reads them from `dir` for data ending at
/// `last`: each file, or the last zxid's epoch where it is missing; a
/// `currentEpoch.tmp` (a write that a crash cut short) stands for a
/// current epoch older than the data, and without one such a directory is
/// refused, as ZooKeeper refuses to start on it.
///
/// The two are kept apart: a server that ACKed a new leader's epoch which
/// never took over has acceptedEpoch above currentEpoch, and taking the
/// higher for both would let its possibly shorter history win the
/// election and truncate committed txns on the others.
fn epochs(dir: &Path, last: Zxid) -> anyhow::Result<(Epoch, Epoch)> {
    let read = |name: &str| -> anyhow::Result<Option<Epoch>> {
        match std::fs::read_to_string(dir.join(name)) {
            Ok(text) => text
                .trim()
                .parse()
                .map(|e| Some(Epoch(e)))
                .with_context(|| format!("{} is not an epoch", dir.join(name).display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", dir.join(name).display())),
        }
    };
    let of_data = last.epoch();
    let mut current = read("currentEpoch")?.unwrap_or(of_data);
    if of_data > current {
        current = read("currentEpoch.tmp")?.with_context(|| {
            format!(
                "currentEpoch {current} is older than the last zxid {last}; \
                 ZooKeeper would not start on this directory either"
            )
        })?;
    }
    let accepted = read("acceptedEpoch")?.unwrap_or(of_data);
    if accepted < current {
        bail!("acceptedEpoch {accepted} is below currentEpoch {current}; ZooKeeper would not start on this directory either");
    }
    Ok((current, accepted))
}

/// The zxid in a `snapshot.<hex>[.gz|.snappy]` or `log.<hex>` file name.
fn file_zxid(path: &Path, prefix: &str) -> Option<i64> {
    let name = path.file_name()?.to_str()?;
    let rest = name.strip_prefix(prefix)?.strip_prefix('.')?;
    let (hex, suffix) = rest.split_once('.').unwrap_or((rest, ""));
    let known = match prefix {
        "snapshot" => ["", "gz", "snappy"].contains(&suffix),
        _ => suffix.is_empty(),
    };
    known.then(|| i64::from_str_radix(hex, 16).ok()).flatten()
}

/// A snapshot's content, decompressed as its name says (`SnapStream`).
fn snapshot_content(path: &Path) -> anyhow::Result<Bytes> {
    use std::io::Read as _;
    let raw = std::fs::read(path)?;
    let name = path.to_string_lossy();
    if name.ends_with(".gz") {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(raw.as_slice()).read_to_end(&mut out)?;
        Ok(out.into())
    } else if name.ends_with(".snappy") {
        Ok(snappy_java_stream(&raw)?.into())
    } else {
        Ok(raw.into())
    }
}

/// snappy-java's `SnappyOutputStream` format: an 8-byte magic, two
/// version ints, then blocks of a big-endian length and a raw snappy block.
fn snappy_java_stream(raw: &[u8]) -> anyhow::Result<Vec<u8>> {
    const MAGIC: &[u8] = b"\x82SNAPPY\x00";
    let mut rest = raw
        .strip_prefix(MAGIC)
        .context("not a snappy-java stream")?
        .get(8..)
        .context("snappy-java header cut short")?;
    let mut out = Vec::new();
    let mut decoder = snap::raw::Decoder::new();
    while !rest.is_empty() {
        let (len, tail) = rest
            .split_at_checked(4)
            .context("snappy block length cut short")?;
        let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
        let (block, tail) = tail
            .split_at_checked(len)
            .context("snappy block cut short")?;
        out.extend_from_slice(&decoder.decompress_vec(block)?);
        rest = tail;
    }
    Ok(out)
}

fn files(dir: &Path, prefix: &str) -> anyhow::Result<Vec<(i64, PathBuf)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if let Some(z) = file_zxid(&path, prefix) {
            out.push((z, path));
        }
    }
    out.sort();
    Ok(out)
}

/// The newest snapshot that reads whole, as ZooKeeper's `FileSnap`
/// deserialize tries the newest few.
#[allow(clippy::type_complexity)]
fn newest_snapshot(
    dir: &Path,
) -> anyhow::Result<(Option<(DataTree, Option<ZxidDigest>)>, Option<PathBuf>)> {
    let snaps = files(dir, "snapshot")?;
    if snaps.is_empty() {
        return Ok((None, None));
    }
    let mut last_error = None;
    for (zxid, path) in snaps.into_iter().rev() {
        match read_snapshot(&path, Zxid(zxid)) {
            Ok(tree) => return Ok((Some(tree), Some(path))),
            Err(e) => {
                tracing::warn!(snapshot = %path.display(), error = %e, "skipping unreadable snapshot");
                last_error = Some(e);
            }
        }
    }
    Err(last_error.unwrap_or_else(|| anyhow::anyhow!("no snapshot")))
}

/// One ZooKeeper snapshot: header, sessions, the ACL cache, then the nodes
/// in pre-order until the path `/` (`DataTree.serialize`), the seal, and
/// (3.6+) the tree's digest with a seal of its own (`FileSnap.serialize`).
fn read_snapshot(path: &Path, zxid: Zxid) -> anyhow::Result<(DataTree, Option<ZxidDigest>)> {
    let bytes = snapshot_content(path)?;
    let mut r = Reader::new(bytes.clone());
    let (magic, _version, _dbid) = (r.read_i32()?, r.read_i32()?, r.read_i64()?);
    if magic != SNAP_MAGIC {
        bail!("not a ZooKeeper snapshot (magic {magic:#x})");
    }
    let sessions = (0..r.read_i32()?.max(0))
        .map(|_| {
            Ok(SessionEntry {
                session_id: r.read_i64()?,
                timeout: r.read_i32()?,
            })
        })
        .collect::<Result<Vec<_>, DecodeError>>()?;
    // `ReferenceCountedACLCache.serialize`: id → ACL list.
    let mut acls = std::collections::HashMap::new();
    for _ in 0..r.read_i32()?.max(0) {
        let id = r.read_i64()?;
        let list = read_acls(&mut r)?;
        acls.insert(id, list);
    }
    let mut nodes = Vec::new();
    loop {
        let path = r.read_string()?;
        if path == "/" {
            // The seal: the checksum of everything before it
            // (`SnapStream.checkSealIntegrity`).
            let sealed = adler32(&bytes[..r.position()]);
            if r.read_i64()? != i64::from(sealed) {
                bail!("checksum mismatch: the snapshot is damaged");
            }
            break;
        }
        let data = r.read_buffer()?;
        let acl_id = r.read_i64()?;
        let mut z = Znode {
            path: if path.is_empty() { "/".into() } else { path },
            data,
            acl: Vec::new(),
            czxid: r.read_i64()?,
            mzxid: r.read_i64()?,
            ctime: r.read_i64()?,
            mtime: r.read_i64()?,
            version: r.read_i32()?,
            cversion: r.read_i32()?,
            aversion: r.read_i32()?,
            ephemeral_owner: r.read_i64()?,
            pzxid: r.read_i64()?,
        };
        // -1 is `OPEN_ACL_UNSAFE` (`ReferenceCountedACLCache.convertLong`).
        let acl = match acl_id {
            -1 => Acl::open_unsafe(),
            id => acls
                .get(&id)
                .cloned()
                .with_context(|| format!("{}: ACL {id} missing from the cache", z.path))?,
        };
        z.acl = acl.iter().map(acl_proto).collect();
        nodes.push(z);
    }
    let mut stream = Vec::new();
    SnapshotHeader {
        zxid: zxid.0,
        sessions,
        node_count: nodes.len() as u64,
    }
    .encode_length_delimited(&mut stream)?;
    for z in &nodes {
        z.encode_length_delimited(&mut stream)?;
    }
    let digest = snapshot_digest(&mut r, &bytes)?;
    Ok((DataTree::restore(&mut stream.as_slice())?, digest))
}

/// What follows a snapshot's seal: the seal's `/`, then (3.6+, unless
/// digests are off) the `ZxidDigest` of the tree as it stood when the
/// snapshot ended and a second seal (`SnapStream.sealStream`). `None` for
/// an empty digest (zxid 0) or one of another digest version.
fn snapshot_digest(r: &mut Reader, bytes: &[u8]) -> anyhow::Result<Option<ZxidDigest>> {
    if r.remaining() == 0 {
        return Ok(None);
    }
    r.read_string()?;
    if r.remaining() == 0 {
        return Ok(None);
    }
    let zxid = r.read_i64()?;
    let version = r.read_i32()?;
    // Version 1 wrote the digest as a hex string (`ZxidDigest.deserialize`).
    let digest = match version {
        ..2 => i64::from_str_radix(&r.read_string()?, 16).ok(),
        _ => Some(r.read_i64()?),
    };
    let sealed = adler32(&bytes[..r.position()]);
    if r.read_i64()? != i64::from(sealed) {
        bail!("checksum mismatch after the tree's digest: the snapshot is damaged");
    }
    Ok(digest
        .filter(|_| zxid > 0 && version == DIGEST_VERSION)
        .map(|digest| ZxidDigest {
            zxid: Zxid(zxid),
            digest,
        }))
}

fn read_acls(r: &mut Reader) -> Result<Vec<Acl>, DecodeError> {
    let n = r.read_count()?.unwrap_or(0);
    (0..n).map(|_| Acl::read(r)).collect()
}

fn acl_proto(a: &Acl) -> proto::Acl {
    proto::Acl {
        perms: a.perms,
        id: Some(proto::Id {
            scheme: a.id.scheme.clone(),
            id: a.id.id.clone(),
        }),
    }
}

/// The logs that can hold txns after `snapshot`, as `FileTxnLog.
/// getLogFiles` picks them: the newest that starts at or before it, and
/// every later one. Older logs (autopurge is off by default) are not read.
fn logs_from(dir: &Path, snapshot: Zxid) -> anyhow::Result<Vec<PathBuf>> {
    let logs = files(dir, "log")?;
    let start = logs
        .iter()
        .map(|&(z, _)| z)
        .filter(|&z| z <= snapshot.0)
        .max()
        .unwrap_or(0);
    Ok(logs
        .into_iter()
        .filter(|&(z, _)| z >= start)
        .map(|(_, p)| p)
        .collect())
}

/// Refuses what ZooKeeper's own restore would refuse, or would read with
/// txns a plain reading here loses:
/// - logs and no snapshot (`FileTxnSnapLog.restore`: "No snapshot found,
///   but there are log entries. Something is broken!"): the logs of a
///   `dataLogDir` alone, whose earliest txns were purged;
/// - unless the log directory was named, a snapshot of data (zxid above
///   0) and no log at all: most likely the logs are elsewhere, in a
///   `dataLogDir` apart from the `dataDir`, and the txns since the
///   snapshot would be lost. (A server synced by a SNAP and idle since has
///   no log either: naming its directory twice imports the snapshot
///   alone.)
fn check_layout(
    snapshot: Option<&Path>,
    logs: &[PathBuf],
    log_dir_named: bool,
    dir: &Path,
    log_dir: &Path,
) -> anyhow::Result<()> {
    match snapshot {
        None if !logs.is_empty() => bail!(
            "{} holds txn logs but {} no snapshot; ZooKeeper refuses to start on that too. \
             Name ZooKeeper's dataDir, then its dataLogDir: \
             zab-server --import-zookeeper DATADIR DATALOGDIR zoo.cfg",
            log_dir.display(),
            dir.display()
        ),
        Some(snap)
            if !log_dir_named
                && logs.is_empty()
                && file_zxid(snap, "snapshot").is_some_and(|z| z > 0) =>
        {
            bail!(
                "{} has no txn log after it in {}: the txns since the snapshot would be lost. \
                 If ZooKeeper's dataLogDir is not its dataDir, name both: \
                 zab-server --import-zookeeper DATADIR DATALOGDIR zoo.cfg \
                 (naming the same directory twice imports the snapshot alone)",
                snap.display(),
                log_dir.display()
            )
        }
        _ => Ok(()),
    }
}

/// Applies a log's txns newer than the tree; returns them. A log ends
/// at its preallocated zeros, or at a torn last record (as ZooKeeper's
/// `FileTxnIterator` reads it: a record cut short or without its end
/// marker ends the log). A whole record whose checksum is wrong is an
/// error, as ZooKeeper's "CRC check failed": reading on past it, or into
/// the next log, would leave a gap in the history.
fn replay_log(
    path: &Path,
    tree: &mut DataTree,
    digests: &mut DigestCheck,
) -> anyhow::Result<Vec<Txn>> {
    let bytes = Bytes::from(std::fs::read(path)?);
    let mut r = Reader::new(bytes);
    let (magic, _version, _dbid) = (r.read_i32()?, r.read_i32()?, r.read_i64()?);
    if magic != LOG_MAGIC {
        bail!("not a ZooKeeper txn log (magic {magic:#x})");
    }
    let mut applied = Vec::new();
    let mut last_read = None;
    while r.remaining() >= 12 {
        let crc = r.read_i64()?;
        let len = r.read_i32()?;
        if len <= 0 || r.remaining() < len as usize + 1 {
            break;
        }
        let entry = r.read_raw(len as usize)?;
        if r.read_u8()? != b'B' {
            break;
        }
        if adler32(&entry) as i64 != crc {
            match last_read {
                Some(zxid) => bail!("CRC check failed on the record after zxid {zxid:#x}"),
                None => bail!("CRC check failed on the first record"),
            }
        }
        // The header's zxid first: as `fastForwardFromEdits` reads only
        // from the snapshot's zxid on, a txn the snapshot holds is not
        // even decoded.
        let zxid = {
            let mut header = Reader::new(entry.clone());
            header.read_i64()?; // session
            header.read_i32()?; // cxid
            header.read_i64()?
        };
        last_read = Some(zxid);
        if zxid <= tree.last_zxid().0 {
            continue;
        }
        let (txn, logged) = convert(entry).context("a logged txn")?;
        tree.apply(&txn);
        digests.after_txn(Zxid(txn.zxid), logged, tree);
        applied.push(txn);
    }
    Ok(applied)
}

/// Adler-32, the checksum `FileTxnLog` keeps per record.
fn adler32(data: &[u8]) -> u32 {
    const MOD: u32 = 65_521;
    let (mut a, mut b) = (1u32, 0u32);
    for chunk in data.chunks(5_552) {
        for &x in chunk {
            a += u32::from(x);
            b += a;
        }
        a %= MOD;
        b %= MOD;
    }
    (b << 16) | a
}

/// One log record (`TxnHeader`, its txn record, then in 3.6+ the tree's
/// digest after it) as a zab txn, and that digest.
fn convert(entry: Bytes) -> anyhow::Result<(Txn, Option<i64>)> {
    let mut r = Reader::new(entry);
    let session_id = r.read_i64()?;
    let cxid = r.read_i32()?;
    let zxid = r.read_i64()?;
    let time = r.read_i64()?;
    let kind = r.read_i32()?;
    let op = body(kind, session_id, &mut r)?;
    // `TxnDigest`: its version, then the digest.
    let digest = match r.remaining() {
        TXN_DIGEST_LEN => (r.read_i32()? == DIGEST_VERSION)
            .then(|| r.read_i64())
            .transpose()?,
        _ => None,
    };
    let txn = Txn {
        origin: 0,
        session_id,
        cxid,
        zxid,
        time,
        body: Some(TxnBody { op: Some(op) }),
    };
    Ok((txn, digest))
}

/// ZooKeeper's txn record of type `kind` (`SerializeUtils.deserializeTxn`).
fn body(kind: i32, session: i64, r: &mut Reader) -> anyhow::Result<Op> {
    let acl = |r: &mut Reader| -> Result<Vec<proto::Acl>, DecodeError> {
        Ok(read_acls(r)?.iter().map(acl_proto).collect())
    };
    Ok(match kind {
        // createSession, closeSession
        -10 => Op::CreateSession(proto::CreateSessionTxn {
            timeout: r.read_i32()?,
        }),
        -11 => {
            // 3.6+ logs the session's paths (`CloseSessionTxn`) unless
            // `closeSessionTxn.enabled=false`, which logs no body, as
            // every release before 3.6 did (the tree then deletes the
            // session's ephemerals itself); 3.6+ follows either with the
            // record's `TxnDigest`. The body is what leaves 0 bytes or a
            // digest after it.
            let read_paths = |r: &mut Reader| -> Result<Vec<String>, DecodeError> {
                let n = r.read_count()?.unwrap_or(0);
                (0..n).map(|_| r.read_string()).collect()
            };
            let mut as_paths = r.clone();
            let paths = match read_paths(&mut as_paths) {
                Ok(paths) if matches!(as_paths.remaining(), 0 | TXN_DIGEST_LEN) => {
                    *r = as_paths;
                    paths
                }
                _ if matches!(r.remaining(), 0 | TXN_DIGEST_LEN) => Vec::new(),
                Ok(_) => bail!("a closeSession record with bytes after its paths"),
                Err(e) => return Err(e.into()),
            };
            Op::CloseSession(proto::CloseSessionTxn {
                paths_to_delete: paths,
            })
        }
        -1 => Op::Error(proto::ErrorTxn { err: r.read_i32()? }),
        // create, create2: CreateTxn; createContainer; createTTL
        1 | 15 | 19 | 21 => {
            let path = r.read_string()?;
            let data = r.read_buffer()?;
            let acl = acl(r)?;
            let (owner, parent_cversion) = match kind {
                19 => (CONTAINER_OWNER, r.read_i32()?),
                21 => {
                    let parent_cversion = r.read_i32()?;
                    (ttl_owner(r.read_i64()?), parent_cversion)
                }
                _ => {
                    let ephemeral = r.read_bool()?;
                    (if ephemeral { session } else { 0 }, r.read_i32()?)
                }
            };
            Op::Create(proto::CreateTxn {
                path,
                data,
                acl,
                op: kind,
                ephemeral_owner: owner,
                parent_cversion,
            })
        }
        // delete, deleteContainer
        2 | 20 => Op::Delete(proto::DeleteTxn {
            path: r.read_string()?,
            op: kind,
        }),
        // setData, and reconfig (a setData of /zookeeper/config)
        5 | 16 => Op::SetData(proto::SetDataTxn {
            path: r.read_string()?,
            data: r.read_buffer()?,
            version: r.read_i32()?,
        }),
        7 => Op::SetAcl(proto::SetAclTxn {
            path: r.read_string()?,
            acl: acl(r)?,
            version: r.read_i32()?,
        }),
        13 => Op::Check(proto::CheckTxn {
            path: r.read_string()?,
            version: r.read_i32()?,
        }),
        14 => {
            let n = r.read_count()?.unwrap_or(0);
            // The count is the file's word: no allocation of its size.
            let mut ops = Vec::with_capacity(n.min(64));
            for _ in 0..n {
                let kind = r.read_i32()?;
                let data = r.read_buffer()?.unwrap_or_default();
                let op = body(kind, session, &mut Reader::new(data))?;
                ops.push(TxnBody { op: Some(op) });
            }
            Op::Multi(proto::MultiTxn { ops })
        }
        other => bail!("unknown txn type {other}"),
    })
}

/// Paths of a tree, for comparisons in tests.
#[cfg(test)]
fn paths(tree: &DataTree) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    let mut stack = vec!["/".to_owned()];
    while let Some(p) = stack.pop() {
        for c in tree.children(&p).unwrap_or_default() {
            stack.push(zab_tree::path::join(&p, &c));
        }
        out.insert(p);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adler32_matches_known_values() {
        // RFC 1950's checksum: "Wikipedia" is 0x11E60398.
        assert_eq!(adler32(b"Wikipedia"), 0x11E6_0398);
        assert_eq!(adler32(b""), 1);
        let long = vec![0xffu8; 100_000];
        let naive = long.iter().fold((1u64, 0u64), |(a, b), &x| {
            let a = (a + u64::from(x)) % 65_521;
            (a, (b + a) % 65_521)
        });
        assert_eq!(adler32(&long), ((naive.1 << 16) | naive.0) as u32);
    }

    #[test]
    fn epochs_are_read_apart_as_zookeeper_reads_them() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, v: &str| std::fs::write(dir.path().join(name), v).unwrap();
        let last = Zxid::new(Epoch(4), 10);
        // No files: both from the data.
        assert_eq!(epochs(dir.path(), last).unwrap(), (Epoch(4), Epoch(4)));
        // A server that ACKed epoch 5 whose leader never took over keeps
        // currentEpoch 4 (it was 5 for both before).
        write("currentEpoch", "4\n");
        write("acceptedEpoch", "5\n");
        assert_eq!(epochs(dir.path(), last).unwrap(), (Epoch(4), Epoch(5)));
        // Data newer than currentEpoch: refused, unless a cut-short write
        // left currentEpoch.tmp.
        write("currentEpoch", "3");
        assert!(epochs(dir.path(), last).is_err());
        write("currentEpoch.tmp", "4");
        assert_eq!(epochs(dir.path(), last).unwrap(), (Epoch(4), Epoch(5)));
        write("acceptedEpoch", "3");
        assert!(epochs(dir.path(), last).is_err());
        write("acceptedEpoch", "x");
        assert!(epochs(dir.path(), last).is_err());
    }

    #[test]
    fn file_names_carry_hex_zxids() {
        assert_eq!(
            file_zxid(Path::new("/d/snapshot.100000002"), "snapshot"),
            Some(0x1_0000_0002)
        );
        assert_eq!(file_zxid(Path::new("log.1"), "log"), Some(1));
        assert_eq!(
            file_zxid(Path::new("snapshot.1.snappy"), "snapshot"),
            Some(1)
        );
        assert_eq!(file_zxid(Path::new("snapshot.1.gz"), "snapshot"), Some(1));
        assert_eq!(file_zxid(Path::new("snapshot.1.zip"), "snapshot"), None);
        assert_eq!(file_zxid(Path::new("log.1.gz"), "log"), None);
        assert_eq!(file_zxid(Path::new("logfile"), "log"), None);
    }

    #[test]
    fn an_empty_directory_imports_an_empty_tree() {
        let zk = tempfile::tempdir().unwrap();
        let (tree, snap) = newest_snapshot(zk.path()).unwrap();
        assert!(tree.is_none() && snap.is_none());
        assert!(logs_from(zk.path(), Zxid::ZERO).unwrap().is_empty());
        assert_eq!(
            paths(&DataTree::default()),
            ["/", "/zookeeper", "/zookeeper/config", "/zookeeper/quota"]
                .into_iter()
                .map(String::from)
                .collect()
        );
    }

    /// Damaged files are errors, never a panic or a huge allocation: a
    /// snapshot cut anywhere, a snapshot and a log of garbage after a
    /// valid header, and a log record whose checksum is wrong (ZooKeeper's
    /// "CRC check failed").
    #[test]
    fn damaged_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let header = |magic: i32| {
            let mut h = magic.to_be_bytes().to_vec();
            h.extend_from_slice(&2i32.to_be_bytes());
            h.extend_from_slice(&0i64.to_be_bytes());
            h
        };
        let snap = dir.path().join("snapshot.5");
        let mut bytes = header(SNAP_MAGIC);
        bytes.extend_from_slice(&[0x7f; 64]);
        std::fs::write(&snap, &bytes).unwrap();
        assert!(read_snapshot(&snap, Zxid(5)).is_err());
        for cut in 0..bytes.len() {
            std::fs::write(&snap, &bytes[..cut]).unwrap();
            assert!(read_snapshot(&snap, Zxid(5)).is_err(), "cut at {cut}");
        }
        std::fs::write(&snap, header(LOG_MAGIC)).unwrap();
        assert!(
            read_snapshot(&snap, Zxid(5)).is_err(),
            "a log is no snapshot"
        );

        let log = dir.path().join("log.1");
        let mut bytes = header(LOG_MAGIC);
        let entry = [0u8; 40];
        bytes.extend_from_slice(&(adler32(&entry) as i64 ^ 1).to_be_bytes());
        bytes.extend_from_slice(&(entry.len() as i32).to_be_bytes());
        bytes.extend_from_slice(&entry);
        bytes.push(b'B');
        std::fs::write(&log, &bytes).unwrap();
        let mut tree = DataTree::new();
        let err = replay_log(&log, &mut tree, &mut DigestCheck::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("CRC check failed"), "{err}");
        // A record cut short, or without its end marker, ends the log.
        let mut torn = bytes.clone();
        *torn.last_mut().unwrap() = 0;
        std::fs::write(&log, &torn).unwrap();
        assert!(replay_log(&log, &mut tree, &mut DigestCheck::default())
            .unwrap()
            .is_empty());
        std::fs::write(&log, &bytes[..bytes.len() - 10]).unwrap();
        assert!(replay_log(&log, &mut tree, &mut DigestCheck::default())
            .unwrap()
            .is_empty());
        // A good checksum over a txn of an unknown type is an error.
        let mut entry = Vec::new();
        entry.extend_from_slice(&1i64.to_be_bytes()); // session
        entry.extend_from_slice(&1i32.to_be_bytes()); // cxid
        entry.extend_from_slice(&1i64.to_be_bytes()); // zxid
        entry.extend_from_slice(&1i64.to_be_bytes()); // time
        entry.extend_from_slice(&999i32.to_be_bytes()); // type
        let mut bytes = header(LOG_MAGIC);
        bytes.extend_from_slice(&(adler32(&entry) as i64).to_be_bytes());
        bytes.extend_from_slice(&(entry.len() as i32).to_be_bytes());
        bytes.extend_from_slice(&entry);
        bytes.push(b'B');
        std::fs::write(&log, &bytes).unwrap();
        assert!(replay_log(&log, &mut tree, &mut DigestCheck::default()).is_err());
    }

    /// A snapshot as ZooKeeper writes one: the root ("") with data, no
    /// sessions, one ACL in the cache, then "/" and the seal.
    fn minimal_snapshot() -> Vec<u8> {
        let mut b = Vec::new();
        let string = |b: &mut Vec<u8>, s: &str| {
            b.extend_from_slice(&(s.len() as i32).to_be_bytes());
            b.extend_from_slice(s.as_bytes());
        };
        b.extend_from_slice(&SNAP_MAGIC.to_be_bytes());
        b.extend_from_slice(&2i32.to_be_bytes());
        b.extend_from_slice(&(-1i64).to_be_bytes());
        b.extend_from_slice(&0i32.to_be_bytes()); // sessions
        b.extend_from_slice(&0i32.to_be_bytes()); // ACL cache entries
        string(&mut b, ""); // the root
        string(&mut b, "root data");
        b.extend_from_slice(&(-1i64).to_be_bytes()); // OPEN_ACL_UNSAFE
        for v in [0i64, 0, 0, 0] {
            b.extend_from_slice(&v.to_be_bytes()); // czxid mzxid ctime mtime
        }
        for v in [0i32, 0, 0] {
            b.extend_from_slice(&v.to_be_bytes()); // version cversion aversion
        }
        b.extend_from_slice(&0i64.to_be_bytes()); // ephemeralOwner
        b.extend_from_slice(&0i64.to_be_bytes()); // pzxid
        string(&mut b, "/");
        let seal = adler32(&b);
        b.extend_from_slice(&i64::from(seal).to_be_bytes());
        string(&mut b, "/");
        b
    }

    #[test]
    fn a_snapshot_reads_plain_gzipped_and_snappy_and_its_seal_is_checked() {
        use std::io::Write as _;
        let dir = tempfile::tempdir().unwrap();
        let plain = minimal_snapshot();
        let root_data = |tree: &DataTree| tree.data("/").map(|d| d.to_vec());

        let path = dir.path().join("snapshot.0");
        std::fs::write(&path, &plain).unwrap();
        let (tree, _) = read_snapshot(&path, Zxid(0)).unwrap();
        assert_eq!(root_data(&tree), Some(b"root data".to_vec()));

        let gz = dir.path().join("snapshot.0.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(&plain).unwrap();
        std::fs::write(&gz, enc.finish().unwrap()).unwrap();
        assert_eq!(
            root_data(&read_snapshot(&gz, Zxid(0)).unwrap().0),
            Some(b"root data".to_vec())
        );

        let sn = dir.path().join("snapshot.0.snappy");
        let mut framed = b"\x82SNAPPY\x00".to_vec();
        framed.extend_from_slice(&1i32.to_be_bytes());
        framed.extend_from_slice(&1i32.to_be_bytes());
        for part in plain.chunks(40) {
            let block = snap::raw::Encoder::new().compress_vec(part).unwrap();
            framed.extend_from_slice(&(block.len() as u32).to_be_bytes());
            framed.extend_from_slice(&block);
        }
        std::fs::write(&sn, framed).unwrap();
        assert_eq!(
            root_data(&read_snapshot(&sn, Zxid(0)).unwrap().0),
            Some(b"root data".to_vec())
        );

        // One flipped byte of data breaks the seal.
        let mut damaged = plain.clone();
        let at = damaged.windows(4).position(|w| w == b"root").unwrap();
        damaged[at] ^= 0x20;
        std::fs::write(&path, &damaged).unwrap();
        let err = read_snapshot(&path, Zxid(0)).unwrap_err().to_string();
        assert!(err.contains("checksum"), "{err}");
    }

    /// 3.6+ ends a snapshot with the tree's digest and a second seal
    /// (`FileSnap.serialize`); a damaged digest fails the snapshot, and an
    /// empty digest (zxid 0) says nothing.
    #[test]
    fn a_snapshot_ends_with_its_digest_under_a_seal_of_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("snapshot.0");
        let with_digest = |zxid: i64, digest: i64| {
            let mut b = minimal_snapshot();
            b.extend_from_slice(&zxid.to_be_bytes());
            b.extend_from_slice(&DIGEST_VERSION.to_be_bytes());
            b.extend_from_slice(&digest.to_be_bytes());
            let seal = adler32(&b);
            b.extend_from_slice(&i64::from(seal).to_be_bytes());
            b.extend_from_slice(&1i32.to_be_bytes());
            b.push(b'/');
            b
        };
        std::fs::write(&path, with_digest(7, -42)).unwrap();
        let (_, digest) = read_snapshot(&path, Zxid(0)).unwrap();
        assert_eq!(
            digest,
            Some(ZxidDigest {
                zxid: Zxid(7),
                digest: -42
            })
        );
        std::fs::write(&path, with_digest(0, 0)).unwrap();
        assert_eq!(read_snapshot(&path, Zxid(0)).unwrap().1, None);
        let mut damaged = with_digest(7, -42);
        let at = damaged.len() - 14;
        damaged[at] ^= 1;
        std::fs::write(&path, &damaged).unwrap();
        let err = read_snapshot(&path, Zxid(0)).unwrap_err().to_string();
        assert!(err.contains("checksum"), "{err}");
    }

    /// As `DataTree.compareSnapshotDigests` and `compareDigest`: while the
    /// replay is inside the snapshot's fuzzy range, no digest is
    /// compared; at the snapshot digest's zxid both it and the txn's are;
    /// after it every logged digest is.
    #[test]
    fn digests_are_compared_once_the_fuzzy_range_is_replayed() {
        let mut tree = DataTree::new();
        let at = |zxid: i64| proto::Txn {
            zxid,
            body: Some(TxnBody {
                op: Some(Op::Create(proto::CreateTxn {
                    path: format!("/n{zxid}"),
                    op: 1,
                    parent_cversion: -1,
                    ..Default::default()
                })),
            }),
            ..Default::default()
        };
        tree.apply(&at(10));
        // The tree as the snapshot saw it began at 10; it ended at 12.
        let mut ahead = tree.clone();
        ahead.apply(&at(11));
        ahead.apply(&at(12));
        let end = ZxidDigest {
            zxid: Zxid(12),
            digest: ahead.digest(),
        };
        let mut check = DigestCheck::after_snapshot(Some(end), &tree);
        tree.apply(&at(11));
        check.after_txn(Zxid(11), Some(12345), &tree);
        assert_eq!(
            (check.checked, check.mismatched, check.fuzzy),
            (0, 0, 1),
            "fuzzy: not compared"
        );
        tree.apply(&at(12));
        check.after_txn(Zxid(12), Some(tree.digest()), &tree);
        assert_eq!((check.checked, check.mismatched), (2, 0));
        tree.apply(&at(13));
        check.after_txn(Zxid(13), Some(tree.digest() ^ 1), &tree);
        check.after_txn(Zxid(13), None, &tree);
        assert_eq!((check.checked, check.mismatched, check.fuzzy), (3, 1, 1));
        assert_eq!(check.first_mismatch, Some(Zxid(13)));
        // A snapshot that ended where it began is compared at once.
        let now = ZxidDigest {
            zxid: tree.last_zxid(),
            digest: tree.digest(),
        };
        let check = DigestCheck::after_snapshot(Some(now), &tree);
        assert_eq!((check.checked, check.mismatched), (1, 0));
    }

    /// A txn log as `FileTxnLog` writes one, of `create <path>` records
    /// (no ACL, persistent) at the given zxids.
    fn log_of_creates(creates: &[(i64, &str)]) -> Vec<u8> {
        let mut log = LOG_MAGIC.to_be_bytes().to_vec();
        log.extend_from_slice(&2i32.to_be_bytes());
        log.extend_from_slice(&0i64.to_be_bytes());
        for &(zxid, path) in creates {
            let mut entry = Vec::new();
            entry.extend_from_slice(&1i64.to_be_bytes()); // session
            entry.extend_from_slice(&1i32.to_be_bytes()); // cxid
            entry.extend_from_slice(&zxid.to_be_bytes());
            entry.extend_from_slice(&0i64.to_be_bytes()); // time
            entry.extend_from_slice(&1i32.to_be_bytes()); // create
            entry.extend_from_slice(&(path.len() as i32).to_be_bytes());
            entry.extend_from_slice(path.as_bytes());
            entry.extend_from_slice(&(-1i32).to_be_bytes()); // no data
            entry.extend_from_slice(&0i32.to_be_bytes()); // no ACL entries
            entry.push(0); // not ephemeral
            entry.extend_from_slice(&1i32.to_be_bytes()); // parent cversion
            log.extend_from_slice(&i64::from(adler32(&entry)).to_be_bytes());
            log.extend_from_slice(&(entry.len() as i32).to_be_bytes());
            log.extend_from_slice(&entry);
            log.push(b'B');
        }
        log
    }

    /// A closeSession record: with its paths or (`closeSessionTxn.
    /// enabled=false`, and before 3.6) without a body, each with or
    /// without the digest 3.6+ appends.
    #[test]
    fn close_session_records_read_with_and_without_a_body() {
        let record = |body: &[u8]| {
            let mut entry = Vec::new();
            entry.extend_from_slice(&7i64.to_be_bytes()); // session
            entry.extend_from_slice(&0i32.to_be_bytes()); // cxid
            entry.extend_from_slice(&9i64.to_be_bytes()); // zxid
            entry.extend_from_slice(&0i64.to_be_bytes()); // time
            entry.extend_from_slice(&(-11i32).to_be_bytes());
            entry.extend_from_slice(body);
            convert(Bytes::from(entry))
        };
        let digest = [
            2i32.to_be_bytes().to_vec(),
            0x1234_5678_9abc_def0i64.to_be_bytes().to_vec(),
        ]
        .concat();
        let mut paths = 1i32.to_be_bytes().to_vec();
        paths.extend_from_slice(&2i32.to_be_bytes());
        paths.extend_from_slice(b"/e");
        let closed = |(txn, _): (Txn, Option<i64>)| match txn.body.and_then(|b| b.op) {
            Some(Op::CloseSession(c)) => c.paths_to_delete,
            other => panic!("{other:?}"),
        };
        assert!(closed(record(&[]).unwrap()).is_empty());
        assert!(
            closed(record(&digest).unwrap()).is_empty(),
            "a digest alone"
        );
        assert_eq!(record(&digest).unwrap().1, Some(0x1234_5678_9abc_def0));
        assert_eq!(closed(record(&paths).unwrap()), ["/e"]);
        assert_eq!(record(&paths).unwrap().1, None);
        let with_digest = [paths.clone(), digest.clone()].concat();
        assert_eq!(closed(record(&with_digest).unwrap()), ["/e"]);
        assert_eq!(record(&with_digest).unwrap().1, Some(0x1234_5678_9abc_def0));
        assert!(record(&[paths, vec![0; 3]].concat()).is_err());
    }

    /// ZooKeeper with a `dataLogDir` apart from its `dataDir`: the import
    /// reads the snapshot from one and the logs from the other. Named
    /// alone, either directory would lose txns, and is refused, as
    /// ZooKeeper's own restore refuses logs without a snapshot.
    #[test]
    fn a_data_log_dir_apart_is_read_and_a_lossy_layout_refused() {
        let zk = tempfile::tempdir().unwrap();
        let (data, logs) = (zk.path().join("data"), zk.path().join("txlog"));
        std::fs::create_dir_all(data.join("version-2")).unwrap();
        std::fs::create_dir_all(logs.join("version-2")).unwrap();
        // A snapshot at zxid 2 (of a tree that has nothing yet: the
        // content does not matter here), and the log it was taken in.
        std::fs::write(data.join("version-2/snapshot.2"), minimal_snapshot()).unwrap();
        std::fs::write(
            logs.join("version-2/log.1"),
            log_of_creates(&[(1, "/a"), (2, "/b"), (3, "/a/c")]),
        )
        .unwrap();
        let zab = |name: &str| {
            let dir = zk.path().join(name);
            Config::parse(&format!("dataDir={}\n", dir.display()), None).unwrap()
        };

        let err = import(&data, None, &zab("zab1")).unwrap_err().to_string();
        assert!(err.contains("no txn log after it"), "{err}");
        let err = import(&logs, None, &zab("zab2")).unwrap_err().to_string();
        assert!(err.contains("no snapshot"), "{err}");

        let zab3 = zab("zab3");
        let done = import(&data, Some(&logs), &zab3).unwrap();
        assert_eq!(done.replayed, 1, "the txn after the snapshot");
        assert_eq!(done.zxid, Zxid(3));
        // zab keeps ZooKeeper's snapshot and the txn after it in its log,
        // which a leader's TRUNC can still take back.
        let store = Store::open(&zab3.data_dir.join("zab"), StoreOptions::default()).unwrap();
        let snapshots = store.snapshots().list().unwrap();
        assert_eq!(snapshots.last().map(|s| s.zxid), Some(Zxid(2)));
        assert_eq!(store.log().last_zxid(), Zxid(3));
        let (tree, _) = crate::server::recover(&store).unwrap();
        assert_eq!(tree.last_zxid(), Zxid(3));
        store.log().truncate_after(Zxid(2)).unwrap();
        let (tree, _) = crate::server::recover(&store).unwrap();
        assert_eq!(tree.last_zxid(), Zxid(2));
        assert!(!unfinished_import_marker(&zab3).exists());

        // The directory named twice: the snapshot alone, on purpose.
        let done = import(&data, Some(&data), &zab("zab4")).unwrap();
        assert_eq!((done.replayed, done.zxid), (0, Zxid(2)));

        // An import that stopped half-way leaves its marker: neither a
        // server nor another import takes that store.
        let zab5 = zab("zab5");
        std::fs::create_dir_all(&zab5.data_dir).unwrap();
        std::fs::write(unfinished_import_marker(&zab5), b"").unwrap();
        let err = import(&data, Some(&logs), &zab5).unwrap_err().to_string();
        assert!(err.contains("did not finish"), "{err}");
        let err = crate::server::open_state(&zab5).err().expect("refused");
        assert!(format!("{err:#}").contains("did not finish"), "{err:#}");
    }

    /// The logs read are those `FileTxnLog.getLogFiles` picks: the newest
    /// that starts at or before the snapshot, and every later one.
    #[test]
    fn logs_before_the_snapshots_own_are_not_read() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["log.1", "log.5", "log.9"] {
            std::fs::write(dir.path().join(name), b"").unwrap();
        }
        let names = |z: i64| -> Vec<String> {
            logs_from(dir.path(), Zxid(z))
                .unwrap()
                .iter()
                .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
                .collect()
        };
        assert_eq!(names(6), ["log.5", "log.9"]);
        assert_eq!(names(5), ["log.5", "log.9"]);
        assert_eq!(names(0), ["log.1", "log.5", "log.9"]);
        assert_eq!(names(20), ["log.9"]);
    }

    proptest::proptest! {
        /// A snapshot or a log with bytes changed anywhere reads as an
        /// error or as data, never as a panic.
        #[test]
        fn damaged_snapshots_and_logs_never_panic(
            at in 0usize..200,
            value in proptest::num::u8::ANY,
            cut in 0usize..220,
        ) {
            let dir = tempfile::tempdir().unwrap();
            let mut snap = minimal_snapshot();
            let i = at % snap.len();
            snap[i] = value;
            snap.truncate(cut.max(1).min(snap.len()));
            let path = dir.path().join("snapshot.0");
            std::fs::write(&path, &snap).unwrap();
            let _ = read_snapshot(&path, Zxid(0));

            let mut log = LOG_MAGIC.to_be_bytes().to_vec();
            log.extend_from_slice(&2i32.to_be_bytes());
            log.extend_from_slice(&0i64.to_be_bytes());
            let mut entry = Vec::new();
            for v in [7i64, 0, 1, 0] {
                entry.extend_from_slice(&v.to_be_bytes());
            }
            entry.truncate(12 + 8 + 8);
            entry.extend_from_slice(&1i32.to_be_bytes()); // create
            entry.extend_from_slice(&snap); // a body of damaged bytes
            log.extend_from_slice(&i64::from(adler32(&entry)).to_be_bytes());
            log.extend_from_slice(&(entry.len() as i32).to_be_bytes());
            log.extend_from_slice(&entry);
            log.push(b'B');
            let path = dir.path().join("log.1");
            std::fs::write(&path, &log).unwrap();
            let _ = replay_log(&path, &mut DataTree::new(), &mut DigestCheck::default());
        }
    }
}
