//! The SNAP payload on zab's wire: a snapshot byte stream cut into
//! SNAP_CHUNK packets and closed by SNAP_END (the shared quorum protocol;
//! ZooKeeper streams the snapshot raw and ends it with "BenWasHere").
//!
//! [`SnapChunks`] is a lazy iterator over any [`Read`]: the connection's
//! writer pulls one chunk at a time, so a large snapshot is never held in
//! memory whole and never blocks the leader's state machine.

use std::io::{self, Read};

use bytes::{Bytes, BytesMut};
use zab_wire::proto::{PacketType, QuorumPacket};
use zab_wire::Zxid;

use crate::learner_handler::packet;

/// Chunk size used unless told otherwise (any chunking is valid).
pub const SNAP_CHUNK_SIZE: usize = 256 * 1024;

/// SNAP_CHUNK packets (zxid 0) with up to `chunk_size` bytes each, then one
/// SNAP_END. A read error ends the stream after yielding the error: the
/// caller must then close the connection, never send SNAP_END.
pub struct SnapChunks<R> {
    reader: R,
    chunk_size: usize,
    done: bool,
}

impl<R: Read> SnapChunks<R> {
    pub fn new(reader: R) -> Self {
        SnapChunks::with_chunk_size(reader, SNAP_CHUNK_SIZE)
    }

    pub fn with_chunk_size(reader: R, chunk_size: usize) -> Self {
        SnapChunks {
            reader,
            chunk_size: chunk_size.max(1),
            done: false,
        }
    }

    /// Fills a chunk as far as the reader allows (short reads are merged,
    /// so chunks are full except the last).
    fn fill(&mut self) -> io::Result<Bytes> {
        let mut buf = BytesMut::zeroed(self.chunk_size);
        let mut n = 0;
        while n < buf.len() {
            match self.reader.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        buf.truncate(n);
        Ok(buf.freeze())
    }
}

impl<R: Read> Iterator for SnapChunks<R> {
    type Item = io::Result<QuorumPacket>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.fill() {
            Ok(chunk) if chunk.is_empty() => {
                self.done = true;
                Some(Ok(packet(PacketType::SnapEnd, Zxid::ZERO, Bytes::new())))
            }
            Ok(chunk) => Some(Ok(packet(PacketType::SnapChunk, Zxid::ZERO, chunk))),
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hands out at most 3 bytes per read, then fails if asked to.
    struct Trickle {
        data: Vec<u8>,
        pos: usize,
        fail_at_end: bool,
    }

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.pos == self.data.len() && self.fail_at_end {
                return Err(io::Error::other("disk gone"));
            }
            let n = buf.len().min(3).min(self.data.len() - self.pos);
            buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        }
    }

    #[test]
    fn chunks_then_end_and_the_bytes_reassemble() {
        let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let r = Trickle {
            data: data.clone(),
            pos: 0,
            fail_at_end: false,
        };
        let packets: Vec<QuorumPacket> = SnapChunks::with_chunk_size(r, 128)
            .collect::<io::Result<_>>()
            .unwrap();
        assert_eq!(packets.len(), 8 + 1, "ceil(1000/128) chunks + SNAP_END");
        let (end, chunks) = packets.split_last().unwrap();
        assert_eq!(end.r#type, PacketType::SnapEnd as i32);
        assert!(chunks
            .iter()
            .all(|p| p.r#type == PacketType::SnapChunk as i32));
        assert!(chunks[..7].iter().all(|p| p.data.len() == 128));
        let joined: Vec<u8> = chunks.iter().flat_map(|p| p.data.iter().copied()).collect();
        assert_eq!(joined, data);
    }

    #[test]
    fn an_empty_snapshot_is_just_the_end() {
        let packets: Vec<_> = SnapChunks::new(io::empty()).collect();
        assert_eq!(packets.len(), 1);
        assert_eq!(
            packets[0].as_ref().unwrap().r#type,
            PacketType::SnapEnd as i32
        );
    }

    #[test]
    fn a_read_error_ends_the_stream_without_snap_end() {
        let r = Trickle {
            data: vec![1; 10],
            pos: 0,
            fail_at_end: true,
        };
        let items: Vec<_> = SnapChunks::with_chunk_size(r, 4).collect();
        // 4 + 4 + (2 then error inside the same fill) → the third fill fails.
        assert_eq!(items.len(), 3);
        assert!(items[..2].iter().all(|i| i.is_ok()));
        assert!(items[2].is_err());
    }
}
