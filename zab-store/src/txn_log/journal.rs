//! The txn log's journal: what makes an appended group durable.
//!
//! RocksDB's WAL grows its file, and on ext4 an `fdatasync` of a file
//! whose size changed (or whose extents were only preallocated) also
//! writes the inode: a group-sized sync then costs about twice the time
//! and CPU of one that overwrites blocks already written (BENCHMARKS.md,
//! "The sync of a growing log"). ZooKeeper pads its log with zeros for
//! the same reason. The journal does the same for zab: two segment files,
//! filled with zeros ahead of the writer and then overwritten in place,
//! round after round. The log writer syncs a group here and puts it into
//! RocksDB's `log` column family without RocksDB's WAL; a segment is
//! written over only once RocksDB has flushed what it held into table
//! files (`TxnLog`'s writer sees to that).
//!
//! A record holds one synced group: a header — magic, the round's random
//! id and its number, the payload's length, a CRC-32 of all of it — then
//! the payload, the group's `log` puts (key, value length, value). A
//! segment holds the records of one round from offset 0; what follows the
//! round's last record is zeros or an older round's bytes, which the id
//! tells apart. Reading stops at the first record that is not the round's,
//! or torn (its CRC fails with nothing of the round after it); a CRC
//! failure *followed* by more of the round's records is corruption in the
//! middle, refused as ZooKeeper refuses a txn log whose CRC check fails.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::StoreError;

const MAGIC: u32 = 0x5a41_424a; // "ZABJ"
/// The two segment files.
pub(crate) const SEGMENT_NAMES: [&str; 2] = ["journal-0", "journal-1"];
const HEADER: usize = 4 + 8 + 8 + 4 + 4;
/// Zeros are written ahead of the writer in steps of this many bytes: a
/// sync that crosses into a new step writes the inode once, the rest only
/// data.
const ZERO_STEP: u64 = 1 << 20;

/// One put of a group into the `log` column family.
pub(crate) type Put = ([u8; 8], Vec<u8>);

struct Segment {
    path: PathBuf,
    file: File,
    /// Bytes known to be zeros or written (the file's length).
    zeroed: u64,
}

/// The two segments and where the writer is.
pub(crate) struct Journal {
    segments: [Segment; 2],
    /// The segment being written, and the offset of its next record.
    active: usize,
    offset: u64,
    /// The active round: random id and number.
    round_id: u64,
    round: u64,
    /// A record that does not fit in a segment of this size starts a new
    /// round in the other segment (a record larger than it still goes in,
    /// alone).
    segment_bytes: u64,
    sync: bool,
}

/// A fresh random round id (no RNG crate: the standard library's hasher
/// keys are random per process, mixed with the clock).
fn new_round_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish() | 1 // never 0: a zeroed header's id
}

fn crc(round_id: u64, round: u64, payload: &[u8]) -> u32 {
    let mut c = crc32fast::Hasher::new();
    c.update(&round_id.to_le_bytes());
    c.update(&round.to_le_bytes());
    c.update(&(payload.len() as u32).to_le_bytes());
    c.update(payload);
    c.finalize()
}

/// Bytes of a record's payload for `puts`.
fn payload_len(puts: &[(&[u8; 8], &[u8])]) -> usize {
    puts.iter().map(|(_, v)| 12 + v.len()).sum()
}

fn decode_payload(mut p: &[u8], path: &Path) -> Result<Vec<Put>, StoreError> {
    let bad = || StoreError::Corrupt(format!("{}: malformed journal record", path.display()));
    let mut puts = Vec::new();
    while !p.is_empty() {
        if p.len() < 12 {
            return Err(bad());
        }
        let key: [u8; 8] = p[..8].try_into().map_err(|_| bad())?;
        let len = u32::from_le_bytes(p[8..12].try_into().map_err(|_| bad())?) as usize;
        let value = p.get(12..12 + len).ok_or_else(bad)?;
        puts.push((key, value.to_vec()));
        p = &p[12 + len..];
    }
    Ok(puts)
}

/// A record's header fields, if `bytes` starts with one.
fn header(bytes: &[u8]) -> Option<(u64, u64, usize, u32)> {
    if bytes.len() < HEADER || u32::from_le_bytes(bytes[..4].try_into().ok()?) != MAGIC {
        return None;
    }
    let round_id = u64::from_le_bytes(bytes[4..12].try_into().ok()?);
    let round = u64::from_le_bytes(bytes[12..20].try_into().ok()?);
    let len = u32::from_le_bytes(bytes[20..24].try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(bytes[24..28].try_into().ok()?);
    Some((round_id, round, len, crc))
}

/// The round a segment holds: its number and its groups' puts, in order.
struct Round {
    round: u64,
    puts: Vec<Put>,
}

/// The round `segment` holds, keeping only the puts `keep` wants. Reads a
/// record at a time; the rest of the file only to tell a torn last record
/// from a corrupt one.
fn read_round(
    segment: &mut Segment,
    keep: &dyn Fn(&[u8; 8]) -> bool,
) -> Result<Option<Round>, StoreError> {
    let len = segment.file.metadata()?.len();
    let read_at = |file: &File, at: u64, n: usize| -> Result<Option<Vec<u8>>, StoreError> {
        if at + n as u64 > len {
            return Ok(None);
        }
        let mut buf = vec![0; n];
        file.read_exact_at(&mut buf, at)?;
        Ok(Some(buf))
    };
    let Some(first) = read_at(&segment.file, 0, HEADER)? else {
        return Ok(None);
    };
    let Some((round_id, round, _, _)) = header(&first).filter(|(id, ..)| *id != 0) else {
        return Ok(None);
    };
    let mut puts = Vec::new();
    let mut at = 0u64;
    while let Some(h) = read_at(&segment.file, at, HEADER)? {
        let Some((id, r, n, sum)) = header(&h).filter(|(id, r, ..)| *id == round_id && *r == round)
        else {
            break;
        };
        let payload = read_at(&segment.file, at + HEADER as u64, n)?;
        match payload.filter(|p| crc(id, r, p) == sum) {
            Some(p) => {
                let group = decode_payload(&p, &segment.path)?;
                puts.extend(group.into_iter().filter(|(k, _)| keep(k)));
                at += (HEADER + n) as u64;
            }
            None => {
                // Torn at the end, or corrupt in the middle: the round goes
                // on after it only in the second case.
                let mut rest = Vec::new();
                segment.file.seek(SeekFrom::Start(at + 1))?;
                segment.file.read_to_end(&mut rest)?;
                if holds_record_of(&rest, round_id, round) {
                    return Err(StoreError::Corrupt(format!(
                        "{}: journal record at {at} fails its CRC check",
                        segment.path.display()
                    )));
                }
                break;
            }
        }
    }
    Ok(Some(Round { round, puts }))
}

/// Whether a valid record of the round starts anywhere in `bytes`.
fn holds_record_of(bytes: &[u8], round_id: u64, round: u64) -> bool {
    let id = round_id.to_le_bytes();
    (0..bytes.len().saturating_sub(HEADER)).any(|at| {
        bytes[at + 4..at + 12] == id
            && header(&bytes[at..]).is_some_and(|(i, r, len, sum)| {
                i == round_id
                    && r == round
                    && bytes
                        .get(at + HEADER..at + HEADER + len)
                        .is_some_and(|p| crc(i, r, p) == sum)
            })
    })
}

impl Segment {
    fn open(path: PathBuf) -> Result<Segment, StoreError> {
        let existed = path.exists();
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)?;
        if !existed {
            // Acked groups live in this file until RocksDB flushes them:
            // its directory entry must be durable too (`fdatasync` of the
            // file does not promise that on every file system).
            if let Some(dir) = path.parent() {
                File::open(dir)?.sync_all()?;
            }
        }
        let zeroed = file.metadata()?.len();
        Ok(Segment { path, file, zeroed })
    }

    /// Makes sure `[0, end)` is zeros or written, ahead in [`ZERO_STEP`]s.
    fn zero_to(&mut self, end: u64) -> Result<(), StoreError> {
        if end <= self.zeroed {
            return Ok(());
        }
        let target = end.div_ceil(ZERO_STEP) * ZERO_STEP;
        let zeros = vec![0u8; (target - self.zeroed) as usize];
        self.file.write_all_at(&zeros, self.zeroed)?;
        self.zeroed = target;
        Ok(())
    }

    /// Durably turns the segment's first header into zeros: the segment
    /// then holds no round.
    fn invalidate(&mut self, sync: bool) -> Result<(), StoreError> {
        self.zero_to(HEADER as u64)?;
        self.file.write_all_at(&[0u8; HEADER], 0)?;
        if sync {
            self.file.sync_data()?;
        }
        Ok(())
    }
}

impl Journal {
    /// Opens the journal in `dir` (creating its segments if missing) and
    /// returns the groups it holds, oldest first: the newest round, after
    /// the other segment's round if that is the one just before it. The
    /// caller makes them durable elsewhere, then calls [`Journal::reset`]
    /// before the first append. Only the puts `keep` wants are returned
    /// (the replay needs those RocksDB lost, not a whole round it mostly
    /// has).
    pub(crate) fn open(
        dir: &Path,
        segment_bytes: u64,
        sync: bool,
        keep: &dyn Fn(&[u8; 8]) -> bool,
    ) -> Result<(Journal, Vec<Put>), StoreError> {
        let mut segments = [
            Segment::open(dir.join(SEGMENT_NAMES[0]))?,
            Segment::open(dir.join(SEGMENT_NAMES[1]))?,
        ];
        let rounds = [
            read_round(&mut segments[0], keep)?,
            read_round(&mut segments[1], keep)?,
        ];
        let mut held: Vec<Round> = rounds.into_iter().flatten().collect();
        held.sort_by_key(|r| r.round);
        if let [older, newer] = &held[..] {
            if older.round + 1 != newer.round {
                held.remove(0); // an older round, already flushed when the newer began
            }
        }
        let puts = held.into_iter().flat_map(|r| r.puts).collect();
        let journal = Journal {
            segments,
            active: 0,
            offset: 0,
            round_id: new_round_id(),
            round: 0,
            segment_bytes,
            sync,
        };
        Ok((journal, puts))
    }

    /// Empties the journal durably: what it held must be durable elsewhere
    /// (flushed into RocksDB's table files, or written through its WAL and
    /// synced). The next record starts a new round in segment 0.
    pub(crate) fn reset(&mut self) -> Result<(), StoreError> {
        for s in &mut self.segments {
            s.invalidate(self.sync)?;
        }
        self.active = 0;
        self.offset = 0;
        self.round_id = new_round_id();
        self.round = 1;
        Ok(())
    }

    /// Whether a record of `puts` still fits in the active segment (if
    /// not, the caller switches first; an empty segment takes any record).
    pub(crate) fn fits(&self, puts: &[(&[u8; 8], &[u8])]) -> bool {
        let len = (HEADER + payload_len(puts)) as u64;
        self.offset == 0 || self.offset + len <= self.segment_bytes
    }

    /// Starts the next round in the other segment. Its previous round must
    /// be durable elsewhere (the caller checks that the flush it asked for
    /// when that round ended has finished).
    pub(crate) fn switch(&mut self) {
        self.active = 1 - self.active;
        self.offset = 0;
        self.round_id = new_round_id();
        self.round += 1;
        // The first record overwrites the header; until it is synced, the
        // other segment's round (the newest durable one) is what counts.
    }

    /// Writes one group as a record of the active round, synced (under
    /// `forceSync`) before this returns; says whether it synced.
    pub(crate) fn append(&mut self, puts: &[(&[u8; 8], &[u8])]) -> Result<bool, StoreError> {
        let payload = payload_len(puts);
        let len = u32::try_from(payload)
            .map_err(|_| StoreError::Corrupt("journal record over 4 GiB".into()))?;
        // The header, its CRC left for last; then the payload, copied once.
        let mut record = Vec::with_capacity(HEADER + payload);
        record.extend_from_slice(&MAGIC.to_le_bytes());
        record.extend_from_slice(&self.round_id.to_le_bytes());
        record.extend_from_slice(&self.round.to_le_bytes());
        record.extend_from_slice(&len.to_le_bytes());
        record.extend_from_slice(&[0; 4]);
        for (key, value) in puts {
            record.extend_from_slice(*key);
            record.extend_from_slice(&(value.len() as u32).to_le_bytes());
            record.extend_from_slice(value);
        }
        let sum = crc(self.round_id, self.round, &record[HEADER..]);
        record[HEADER - 4..HEADER].copy_from_slice(&sum.to_le_bytes());
        let segment = &mut self.segments[self.active];
        let end = self.offset + record.len() as u64;
        segment.zero_to(end)?;
        segment.file.write_all_at(&record, self.offset)?;
        let synced = if self.sync {
            segment.file.sync_data()?;
            true
        } else {
            false
        };
        self.offset = end;
        Ok(synced)
    }

    /// The active round's number (1 after a reset, one more per switch).
    #[cfg(test)]
    pub(crate) fn round(&self) -> u64 {
        self.round
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(key: u64, value: &str) -> ([u8; 8], Vec<u8>) {
        (key.to_be_bytes(), value.as_bytes().to_vec())
    }

    fn append(j: &mut Journal, puts: &[([u8; 8], Vec<u8>)]) {
        let refs: Vec<(&[u8; 8], &[u8])> = puts.iter().map(|(k, v)| (k, &v[..])).collect();
        if !j.fits(&refs) {
            j.switch();
        }
        j.append(&refs).unwrap();
    }

    /// An empty journal, ready for appends.
    fn fresh(dir: &Path, segment_bytes: u64) -> Journal {
        let (mut j, _) = Journal::open(dir, segment_bytes, true, &|_| true).unwrap();
        j.reset().unwrap();
        j
    }

    /// Overwrites segment 0 at `at` with `bytes`, as a crash or the disk
    /// might.
    fn damage(dir: &Path, at: u64, bytes: &[u8]) {
        let f = OpenOptions::new()
            .write(true)
            .open(dir.join(SEGMENT_NAMES[0]))
            .unwrap();
        f.write_all_at(bytes, at).unwrap();
    }

    fn reopen(dir: &Path, segment_bytes: u64) -> Vec<Put> {
        Journal::open(dir, segment_bytes, true, &|_| true)
            .unwrap()
            .1
    }

    #[test]
    fn groups_written_are_read_back_in_order_until_a_reset() {
        let dir = tempfile::tempdir().unwrap();
        let (mut j, held) = Journal::open(dir.path(), 1 << 20, true, &|_| true).unwrap();
        assert!(held.is_empty());
        j.reset().unwrap();
        append(&mut j, &[put(1, "a"), put(2, "bb")]);
        append(&mut j, &[put(3, "ccc")]);
        drop(j);
        assert_eq!(
            reopen(dir.path(), 1 << 20),
            [put(1, "a"), put(2, "bb"), put(3, "ccc")]
        );

        drop(fresh(dir.path(), 1 << 20)); // a reset
        assert!(reopen(dir.path(), 1 << 20).is_empty());
    }

    #[test]
    fn a_new_round_hides_the_older_bytes_it_writes_over() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = fresh(dir.path(), 1 << 20);
        for k in 1..=20 {
            append(&mut j, &[put(k, "old old old old")]);
        }
        // Rounds 2 and 3: segment 1, then segment 0 again, over round 1.
        j.switch();
        append(&mut j, &[put(21, "x")]);
        j.switch();
        append(&mut j, &[put(22, "y")]);
        drop(j);
        // Round 3 (22) follows round 2 (21); round 1's tail in segment 0 is
        // not read as round 3's.
        assert_eq!(reopen(dir.path(), 1 << 20), [put(21, "x"), put(22, "y")]);
    }

    #[test]
    fn segments_switch_when_full_and_an_older_round_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = fresh(dir.path(), 200);
        for k in 1..=10 {
            append(&mut j, &[put(k, &"v".repeat(60))]);
        }
        assert!(j.round() > 2);
        drop(j);
        let held = reopen(dir.path(), 200);
        // Only the last two rounds: a consecutive pair, newest last.
        let keys: Vec<u64> = held.iter().map(|(k, _)| u64::from_be_bytes(*k)).collect();
        assert_eq!(keys.last(), Some(&10));
        assert!(keys.windows(2).all(|w| w[0] + 1 == w[1]), "{keys:?}");
        assert!(keys.len() < 10, "{keys:?}");
    }

    #[test]
    fn a_torn_last_record_ends_the_round() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = fresh(dir.path(), 1 << 20);
        append(&mut j, &[put(1, "kept")]);
        let torn_at = j.offset;
        append(&mut j, &[put(2, "torn in the crash")]);
        drop(j);
        // The second record's payload never reached the disk.
        damage(dir.path(), torn_at + HEADER as u64 + 4, &[0u8; 8]);
        assert_eq!(reopen(dir.path(), 1 << 20), [put(1, "kept")]);
    }

    #[test]
    fn a_corrupt_record_in_the_middle_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = fresh(dir.path(), 1 << 20);
        append(&mut j, &[put(1, "one")]);
        let bad_at = j.offset;
        append(&mut j, &[put(2, "two")]);
        append(&mut j, &[put(3, "three")]);
        drop(j);
        damage(dir.path(), bad_at + HEADER as u64 + 12, b"X");
        let err = Journal::open(dir.path(), 1 << 20, true, &|_| true)
            .err()
            .unwrap();
        assert!(err.to_string().contains("CRC"), "{err}");
    }

    #[test]
    fn zeros_are_written_ahead_in_steps() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = fresh(dir.path(), 8 << 20);
        append(&mut j, &[put(1, "x")]);
        let len = |i: usize| {
            std::fs::metadata(dir.path().join(format!("journal-{i}")))
                .unwrap()
                .len()
        };
        assert_eq!(len(0), ZERO_STEP);
        append(&mut j, &[put(2, &"y".repeat(ZERO_STEP as usize))]);
        assert_eq!(len(0), 2 * ZERO_STEP);
    }
}
