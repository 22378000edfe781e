//! A leader's snapshot as its SNAP_CHUNK packets brought it.
//!
//! The chunks are kept as they came, not joined into one buffer: a
//! snapshot of a million znodes is ~170 MB, and a buffer grown chunk by
//! chunk would copy it again at each doubling and hold up to twice its
//! size (three times while it grows), on a follower that has the tree it
//! is restoring to hold as well. ZooKeeper's learner reads the snapshot
//! straight off its socket into the tree (`deserializeSnapshot`).

use std::io::{self, Read};

use bytes::{Buf, Bytes};

/// A snapshot's bytes in the chunks they arrived in. Two are equal when
/// their bytes are, however they were cut.
#[derive(Debug, Clone, Default)]
pub struct SnapshotChunks {
    chunks: Vec<Bytes>,
    len: usize,
}

impl SnapshotChunks {
    pub(crate) fn push(&mut self, chunk: Bytes) {
        if !chunk.is_empty() {
            self.len += chunk.len();
            self.chunks.push(chunk);
        }
    }

    /// The snapshot's length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Reads the snapshot from its first byte, chunk after chunk.
    pub fn reader(&self) -> impl Read + '_ {
        ChunkReader {
            chunks: &self.chunks,
            current: Bytes::new(),
            next: 0,
        }
    }

    /// The snapshot in one buffer (a copy, unless it came in one chunk).
    pub fn to_bytes(&self) -> Bytes {
        match &self.chunks[..] {
            [] => Bytes::new(),
            [one] => one.clone(),
            many => many.concat().into(),
        }
    }
}

impl PartialEq for SnapshotChunks {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.to_bytes() == other.to_bytes()
    }
}

impl Eq for SnapshotChunks {}

impl From<Bytes> for SnapshotChunks {
    fn from(bytes: Bytes) -> Self {
        let mut s = SnapshotChunks::default();
        s.push(bytes);
        s
    }
}

struct ChunkReader<'a> {
    chunks: &'a [Bytes],
    current: Bytes,
    next: usize,
}

impl Read for ChunkReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            let Some(chunk) = self.chunks.get(self.next) else {
                return Ok(0);
            };
            self.current = chunk.clone();
            self.next += 1;
        }
        let n = buf.len().min(self.current.len());
        self.current.copy_to_slice(&mut buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_back_what_came_in_any_chunking() {
        let whole: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
        for size in [1, 7, 4096, 10_000, 20_000] {
            let mut s = SnapshotChunks::default();
            for part in whole.chunks(size) {
                s.push(Bytes::copy_from_slice(part));
            }
            s.push(Bytes::new());
            assert_eq!(s.len(), whole.len());
            let mut read = Vec::new();
            s.reader().read_to_end(&mut read).unwrap();
            assert_eq!(read, whole, "chunks of {size}");
            // Small reads across chunk edges too.
            let mut r = s.reader();
            let mut small = Vec::new();
            let mut buf = [0u8; 3];
            loop {
                let n = r.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                small.extend_from_slice(&buf[..n]);
            }
            assert_eq!(small, whole);
            assert_eq!(s.to_bytes(), whole);
        }
        assert!(
            SnapshotChunks::default()
                .reader()
                .read(&mut [0; 4])
                .unwrap()
                == 0
        );
    }
}
