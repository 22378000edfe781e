//! The on-disk layout: column families, key and value encodings.
//!
//! Everything that turns a Rust value into RocksDB bytes (and back) lives
//! here, so the layout can be read in one place:
//!
//! | column family | key                         | value                         |
//! |---------------|-----------------------------|-------------------------------|
//! | `log`         | first zxid of a group, 8 BE | the group (see [`LogGroup`])  |
//! | `snapshots`   | `M` + zxid (8 BE)           | manifest (see [`Manifest`])   |
//! | `snapshots`   | `C` + save id (8 BE) + chunk index (4 BE) | one chunk of a snapshot |
//! | `meta`        | `format`                    | u32 BE format version         |
//! | `meta`        | `currentEpoch` / `acceptedEpoch` | u64 BE epoch             |
//!
//! Big-endian keys make RocksDB's bytewise order equal zxid order.
//! Decoders never panic: a value of the wrong shape is [`StoreError::Corrupt`].

use bytes::Bytes;
use zab_wire::{Epoch, Zxid};

use crate::StoreError;

pub(crate) const CF_LOG: &str = "log";
pub(crate) const CF_SNAPSHOTS: &str = "snapshots";
pub(crate) const CF_META: &str = "meta";

pub(crate) const FORMAT_KEY: &[u8] = b"format";
/// The store's layout, stamped under [`FORMAT_KEY`]:
/// - 1: one log key per txn (no longer opened);
/// - 2: one log key per synced group of txns;
/// - 3: as 2, and a group's durable copy is the txn log's journal
///   (`journal-0`, `journal-1` beside the WAL) until RocksDB flushes the
///   group into a table file. A build of layout 2 does not read the
///   journal, so after a crash it would miss the newest acknowledged txns:
///   the new stamp makes it refuse the store instead.
pub(crate) const FORMAT_VERSION: u32 = 3;
/// Older layouts this version opens, restamping them [`FORMAT_VERSION`]: a
/// layout-2 store's newest groups are in RocksDB's WAL, which opening
/// replays, and it has no journal yet.
pub(crate) const UPGRADABLE_FORMATS: [u32; 1] = [2];
pub(crate) const CURRENT_EPOCH_KEY: &[u8] = b"currentEpoch";
pub(crate) const ACCEPTED_EPOCH_KEY: &[u8] = b"acceptedEpoch";

const MANIFEST_PREFIX: u8 = b'M';
const CHUNK_PREFIX: u8 = b'C';
const SAVED_AT_PREFIX: u8 = b'T';
const MANIFEST_VERSION: u8 = 1;

/// Key of a log entry. Zxids are validated non-negative before they get here.
pub(crate) fn log_key(zxid: Zxid) -> [u8; 8] {
    (zxid.0 as u64).to_be_bytes()
}

/// Exclusive upper bound above every log key.
pub(crate) const LOG_KEY_END: [u8; 8] = [0xff; 8];

/// The txns one synced write made durable, stored under the first one's
/// zxid: for each, in zxid order, its zxid (8 BE), its length (4 BE) and its
/// bytes. One key per group instead of one per txn saves RocksDB's per-key
/// work (memtable insert, flush) on the write path: −6 % server CPU per
/// write under load (BENCHMARKS.md).
pub(crate) struct LogGroup;

impl LogGroup {
    /// Appends the encoding of one txn to a group's value.
    pub(crate) fn push(value: &mut Vec<u8>, zxid: Zxid, txn: &[u8]) {
        value.extend_from_slice(&(zxid.0 as u64).to_be_bytes());
        value.extend_from_slice(&(txn.len() as u32).to_be_bytes());
        value.extend_from_slice(txn);
    }

    /// The txns of the group stored under `key`, borrowed from `value`.
    /// Refuses a group whose zxids are not strictly increasing from the key
    /// or whose bytes do not parse exactly.
    pub(crate) fn entries<'a>(
        key: &[u8],
        value: &'a [u8],
    ) -> Result<Vec<(Zxid, &'a [u8])>, StoreError> {
        let first = decode_log_key(key)?;
        let corrupt = |why: &str| StoreError::Corrupt(format!("log group {first}: {why}"));
        let mut out = Vec::new();
        let mut rest = value;
        while !rest.is_empty() {
            if rest.len() < 12 {
                return Err(corrupt("truncated entry header"));
            }
            let zxid = decode_log_key(&rest[..8])?;
            let len = u32::from_be_bytes(rest[8..12].try_into().expect("4 bytes")) as usize;
            let Some(txn) = rest.get(12..12 + len) else {
                return Err(corrupt("entry longer than the group"));
            };
            let expected = match out.last() {
                None => zxid == first,
                Some((prev, _)) => zxid > *prev,
            };
            if !expected {
                return Err(corrupt("zxids out of order"));
            }
            out.push((zxid, txn));
            rest = &rest[12 + len..];
        }
        if out.is_empty() {
            return Err(corrupt("empty"));
        }
        Ok(out)
    }

    /// [`LogGroup::entries`], owned: one copy of the value, shared by the
    /// txns' `Bytes`.
    pub(crate) fn decode(key: &[u8], value: &[u8]) -> Result<Vec<(Zxid, Bytes)>, StoreError> {
        let owned = Bytes::copy_from_slice(value);
        let entries = LogGroup::entries(key, value)?;
        Ok(entries
            .into_iter()
            .map(|(z, txn)| {
                let start = txn.as_ptr() as usize - value.as_ptr() as usize;
                (z, owned.slice(start..start + txn.len()))
            })
            .collect())
    }

    /// The encoding of `entries` as one group (its key is the first zxid).
    pub(crate) fn encode<'a>(entries: impl IntoIterator<Item = (Zxid, &'a [u8])>) -> Vec<u8> {
        let mut value = Vec::new();
        for (zxid, txn) in entries {
            LogGroup::push(&mut value, zxid, txn);
        }
        value
    }
}

pub(crate) fn decode_log_key(key: &[u8]) -> Result<Zxid, StoreError> {
    let raw: [u8; 8] = key
        .try_into()
        .map_err(|_| StoreError::Corrupt(format!("log key of {} bytes", key.len())))?;
    let z = u64::from_be_bytes(raw);
    i64::try_from(z)
        .map(Zxid)
        .map_err(|_| StoreError::Corrupt(format!("log key {z:#x} is not a zxid")))
}

pub(crate) fn encode_u32(v: u32) -> [u8; 4] {
    v.to_be_bytes()
}

pub(crate) fn decode_u32(what: &str, v: &[u8]) -> Result<u32, StoreError> {
    let raw: [u8; 4] = v
        .try_into()
        .map_err(|_| StoreError::Corrupt(format!("{what}: {} bytes, want 4", v.len())))?;
    Ok(u32::from_be_bytes(raw))
}

pub(crate) fn encode_epoch(e: Epoch) -> [u8; 8] {
    e.0.to_be_bytes()
}

pub(crate) fn decode_epoch(what: &str, v: &[u8]) -> Result<Epoch, StoreError> {
    let raw: [u8; 8] = v
        .try_into()
        .map_err(|_| StoreError::Corrupt(format!("{what}: {} bytes, want 8", v.len())))?;
    Ok(Epoch(u64::from_be_bytes(raw)))
}

/// Key of the manifest that makes the snapshot at `zxid` visible.
pub(crate) fn manifest_key(zxid: Zxid) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = MANIFEST_PREFIX;
    k[1..].copy_from_slice(&log_key(zxid));
    k
}

/// First and (exclusive) last manifest keys.
pub(crate) const MANIFEST_START: [u8; 1] = [MANIFEST_PREFIX];
pub(crate) const MANIFEST_END: [u8; 1] = [MANIFEST_PREFIX + 1];

pub(crate) fn is_manifest_key(key: &[u8]) -> bool {
    key.first() == Some(&MANIFEST_PREFIX)
}

pub(crate) fn decode_manifest_key(key: &[u8]) -> Result<Zxid, StoreError> {
    match key.split_first() {
        Some((&MANIFEST_PREFIX, rest)) => decode_log_key(rest),
        _ => Err(StoreError::Corrupt("not a snapshot manifest key".into())),
    }
}

/// Key of the time the snapshot at `zxid` was saved, in Unix seconds
/// (ZooKeeper's `last_snapshot` reports its snapshot file's mtime so). It
/// sorts after the manifests and chunks, which builds before it scan
/// alone: they pass it by.
pub(crate) fn saved_at_key(zxid: Zxid) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = SAVED_AT_PREFIX;
    k[1..].copy_from_slice(&log_key(zxid));
    k
}

/// Key of chunk `index` of the snapshot save `id`.
pub(crate) fn chunk_key(id: u64, index: u32) -> [u8; 13] {
    let mut k = [0u8; 13];
    k[0] = CHUNK_PREFIX;
    k[1..9].copy_from_slice(&id.to_be_bytes());
    k[9..].copy_from_slice(&index.to_be_bytes());
    k
}

/// `[start, end)` covering every chunk of save `id`.
pub(crate) fn chunk_range(id: u64) -> ([u8; 13], [u8; 13]) {
    let start = chunk_key(id, 0);
    let end = match id.checked_add(1) {
        Some(next) => chunk_key(next, 0),
        // Ids come from a counter starting at 1; u64::MAX is never reached,
        // but the bound must still cover it: `D` sorts after every `C` key.
        None => {
            let mut k = [0u8; 13];
            k[0] = CHUNK_PREFIX + 1;
            k
        }
    };
    (start, end)
}

pub(crate) const CHUNK_START: [u8; 1] = [CHUNK_PREFIX];

/// The save id of a chunk key, or `None` if the key is not a chunk key.
pub(crate) fn decode_chunk_id(key: &[u8]) -> Result<Option<u64>, StoreError> {
    match key.split_first() {
        Some((&CHUNK_PREFIX, rest)) if rest.len() == 12 => {
            let mut id = [0u8; 8];
            id.copy_from_slice(&rest[..8]);
            Ok(Some(u64::from_be_bytes(id)))
        }
        Some((&CHUNK_PREFIX, rest)) => Err(StoreError::Corrupt(format!(
            "snapshot chunk key of {} bytes",
            rest.len() + 1
        ))),
        _ => Ok(None),
    }
}

/// What makes a snapshot visible: written in one batch after all its chunks
/// are durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Manifest {
    /// Which save wrote the chunks (unique per save, so a re-save of the same
    /// zxid never mixes its chunks with the previous one's).
    pub id: u64,
    /// Total bytes over all chunks.
    pub size: u64,
    pub chunks: u32,
}

impl Manifest {
    const LEN: usize = 1 + 8 + 8 + 4;

    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut v = [0u8; Self::LEN];
        v[0] = MANIFEST_VERSION;
        v[1..9].copy_from_slice(&self.id.to_be_bytes());
        v[9..17].copy_from_slice(&self.size.to_be_bytes());
        v[17..].copy_from_slice(&self.chunks.to_be_bytes());
        v
    }

    pub fn decode(v: &[u8]) -> Result<Manifest, StoreError> {
        if v.len() != Self::LEN {
            return Err(StoreError::Corrupt(format!(
                "snapshot manifest of {} bytes",
                v.len()
            )));
        }
        if v[0] != MANIFEST_VERSION {
            return Err(StoreError::Corrupt(format!(
                "snapshot manifest version {}",
                v[0]
            )));
        }
        let u64_at = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&v[i..i + 8]);
            u64::from_be_bytes(b)
        };
        let mut c = [0u8; 4];
        c.copy_from_slice(&v[17..21]);
        Ok(Manifest {
            id: u64_at(1),
            size: u64_at(9),
            chunks: u32::from_be_bytes(c),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_groups_round_trip_and_refuse_bad_bytes() {
        let entries = [
            (Zxid(5), &b"a"[..]),
            (Zxid(6), &b""[..]),
            (Zxid(9), &b"xyz"[..]),
        ];
        let value = LogGroup::encode(entries);
        let key = log_key(Zxid(5));
        let decoded = LogGroup::decode(&key, &value).unwrap();
        let got: Vec<(Zxid, &[u8])> = decoded.iter().map(|(z, b)| (*z, &b[..])).collect();
        assert_eq!(got, entries);
        // Key and first zxid disagree.
        assert!(LogGroup::entries(&log_key(Zxid(4)), &value).is_err());
        // A value cut between entries is a shorter group; cut anywhere
        // else (or empty), or with trailing garbage, it is refused.
        for cut in 0..value.len() {
            let r = LogGroup::entries(&key, &value[..cut]);
            match cut {
                13 => assert_eq!(r.unwrap().len(), 1),
                25 => assert_eq!(r.unwrap().len(), 2),
                _ => assert!(r.is_err(), "cut at {cut}"),
            }
        }
        let mut longer = value.clone();
        longer.push(0);
        assert!(LogGroup::entries(&key, &longer).is_err());
        // Zxids must increase.
        let unordered = LogGroup::encode([(Zxid(5), &b"a"[..]), (Zxid(5), &b"b"[..])]);
        assert!(LogGroup::entries(&key, &unordered).is_err());
    }

    #[test]
    fn log_keys_sort_in_zxid_order() {
        let zxids = [
            Zxid(1),
            Zxid(0xff),
            Zxid(0x100),
            Zxid::new(Epoch(1), 0),
            Zxid::new(Epoch(1), 1),
            Zxid::new(Epoch(2), 0),
            Zxid(i64::MAX),
        ];
        for w in zxids.windows(2) {
            assert!(log_key(w[0]) < log_key(w[1]));
        }
        for z in zxids {
            assert_eq!(decode_log_key(&log_key(z)).unwrap(), z);
            assert!(log_key(z) < LOG_KEY_END);
        }
    }

    #[test]
    fn malformed_values_are_errors_not_panics() {
        assert!(decode_log_key(b"short").is_err());
        assert!(decode_log_key(&u64::MAX.to_be_bytes()).is_err());
        assert!(decode_epoch("e", b"1234567").is_err());
        assert!(decode_u32("f", b"").is_err());
        assert!(Manifest::decode(&[]).is_err());
        let mut bad = Manifest {
            id: 1,
            size: 2,
            chunks: 3,
        }
        .encode();
        bad[0] = 9;
        assert!(Manifest::decode(&bad).is_err());
        assert!(decode_chunk_id(b"Cxx").is_err());
        assert_eq!(decode_chunk_id(b"Mxx").unwrap(), None);
    }

    #[test]
    fn manifest_round_trips() {
        let m = Manifest {
            id: 42,
            size: 3 << 20,
            chunks: 3,
        };
        assert_eq!(Manifest::decode(&m.encode()).unwrap(), m);
    }

    #[test]
    fn chunk_ranges_do_not_overlap() {
        let (s1, e1) = chunk_range(1);
        let (s2, _) = chunk_range(2);
        assert!(s1 < chunk_key(1, u32::MAX) && chunk_key(1, u32::MAX) < e1);
        assert_eq!(e1, s2);
        let (_, e_max) = chunk_range(u64::MAX);
        assert!(chunk_key(u64::MAX, u32::MAX) < e_max);
        assert!(manifest_key(Zxid(i64::MAX)).as_slice() < MANIFEST_END.as_slice());
        assert!(CHUNK_START.as_slice() < MANIFEST_START.as_slice());
        assert!(MANIFEST_END.as_slice() < saved_at_key(Zxid(0)).as_slice());
    }
}
