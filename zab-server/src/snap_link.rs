//! A snapshot streamed onto one learner's link, as the leader's SNAP sync
//! sends it: SNAP_CHUNK packets then SNAP_END (the framing is
//! `zab_leader::SnapChunks`'s), serialized on a blocking thread only as fast
//! as the link takes the chunks.
//!
//! The link's queue is unbounded (the core never waits on a learner), so
//! without a bound here the whole serialized snapshot would sit in it: at a
//! million znodes, ≈ 170 MB more on the leader for each learner syncing.
//! Each chunk instead carries a credit that returns when the transport drops
//! the chunk's bytes (once it has encoded them), and the serializer waits
//! for a credit before cutting the next chunk. ZooKeeper's LearnerHandler
//! gets the same bound from writing to the learner's socket directly.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::sync::mpsc::UnboundedSender;
use zab_leader::SNAP_CHUNK_SIZE;
use zab_wire::proto::{PacketType, QuorumPacket};

/// SNAP chunks that may wait on one link at once (2 MiB).
pub const CHUNKS_IN_FLIGHT: usize = 8;

/// How often a serializer waiting for credit checks whether its learner is
/// gone.
const CANCEL_CHECK: Duration = Duration::from_millis(100);

/// Credits for the chunks one link may hold at once.
pub struct ChunkCredit {
    credits: Receiver<()>,
    give_back: SyncSender<()>,
    /// Set when the leader drops the link: the serializer stops rather than
    /// wait for credit a link nobody reads will never return.
    cancelled: Arc<AtomicBool>,
}

impl ChunkCredit {
    pub fn new(chunks: usize, cancelled: Arc<AtomicBool>) -> ChunkCredit {
        let (give_back, credits) = sync_channel(chunks);
        for _ in 0..chunks {
            let _ = give_back.try_send(());
        }
        ChunkCredit {
            credits,
            give_back,
            cancelled,
        }
    }

    /// Waits for a credit; an error once the link is cancelled.
    fn take(&self) -> io::Result<Credit> {
        loop {
            if self.cancelled.load(Ordering::SeqCst) {
                return Err(gone());
            }
            match self.credits.recv_timeout(CANCEL_CHECK) {
                Ok(()) => return Ok(Credit(self.give_back.clone())),
                Err(RecvTimeoutError::Timeout) => {}
                // Unreachable while `give_back` lives in `self`.
                Err(RecvTimeoutError::Disconnected) => return Err(gone()),
            }
        }
    }
}

fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "learner gone")
}

/// One chunk's credit, returned when dropped.
struct Credit(SyncSender<()>);

impl Drop for Credit {
    fn drop(&mut self) {
        let _ = self.0.try_send(());
    }
}

/// A chunk's bytes with the credit they hold, so that dropping the last
/// `Bytes` handle to them returns it.
struct CreditedChunk {
    data: Bytes,
    _credit: Credit,
}

impl AsRef<[u8]> for CreditedChunk {
    fn as_ref(&self) -> &[u8] {
        &self.data
    }
}

/// An `io::Write` that cuts what is written into SNAP_CHUNK packets on a
/// learner's link; [`ChunkSink::finish`] sends the rest and SNAP_END.
pub struct ChunkSink<'a> {
    out: &'a UnboundedSender<QuorumPacket>,
    credit: ChunkCredit,
    buf: BytesMut,
    sent: u64,
}

impl<'a> ChunkSink<'a> {
    pub fn new(out: &'a UnboundedSender<QuorumPacket>, credit: ChunkCredit) -> Self {
        ChunkSink {
            out,
            credit,
            buf: BytesMut::with_capacity(SNAP_CHUNK_SIZE),
            sent: 0,
        }
    }

    fn send_chunk(&mut self, chunk: Bytes) -> io::Result<()> {
        let credit = self.credit.take()?;
        let data = Bytes::from_owner(CreditedChunk {
            data: chunk,
            _credit: credit,
        });
        self.send(PacketType::SnapChunk, data)
    }

    fn send(&mut self, kind: PacketType, data: Bytes) -> io::Result<()> {
        self.sent += data.len() as u64;
        let packet = QuorumPacket {
            r#type: kind as i32,
            zxid: 0,
            data,
            authinfo: Vec::new(),
        };
        self.out.send(packet).map_err(|_| gone())
    }

    /// Sends what is left and SNAP_END; returns the bytes sent.
    pub fn finish(&mut self) -> io::Result<u64> {
        if !self.buf.is_empty() {
            let rest = self.buf.split().freeze();
            self.send_chunk(rest)?;
        }
        self.send(PacketType::SnapEnd, Bytes::new())?;
        Ok(self.sent)
    }
}

impl io::Write for ChunkSink<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        while self.buf.len() >= SNAP_CHUNK_SIZE {
            let chunk = self.buf.split_to(SNAP_CHUNK_SIZE).freeze();
            self.send_chunk(chunk)?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn sink_thread(
        credit: ChunkCredit,
        chunks: usize,
    ) -> (
        tokio::sync::mpsc::UnboundedReceiver<QuorumPacket>,
        std::thread::JoinHandle<io::Result<u64>>,
    ) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let writer = std::thread::spawn(move || {
            let mut sink = ChunkSink::new(&tx, credit);
            sink.write_all(&vec![7u8; chunks * SNAP_CHUNK_SIZE])?;
            sink.finish()
        });
        (rx, writer)
    }

    /// The serializer stops at the credit and goes on as the link drops
    /// the chunks it took: every byte arrives, never more than the credit
    /// waiting at once.
    #[test]
    fn no_more_chunks_wait_than_the_credit() {
        let credit = ChunkCredit::new(2, Arc::new(AtomicBool::new(false)));
        let (mut rx, writer) = sink_thread(credit, 10);
        let (mut chunks, mut bytes, mut ended) = (0, 0, false);
        let mut held: Vec<QuorumPacket> = Vec::new();
        while !ended {
            let p = rx.blocking_recv().expect("packets until SNAP_END");
            ended = p.r#type == PacketType::SnapEnd as i32;
            held.push(p);
            if held.len() == 2 {
                // Both credits are out, held here: the writer must wait.
                // (Only SNAP_END, which takes no credit, may follow.)
                std::thread::sleep(Duration::from_millis(20));
                if let Ok(p) = rx.try_recv() {
                    assert_eq!(
                        p.r#type,
                        PacketType::SnapEnd as i32,
                        "a chunk without credit"
                    );
                    ended = true;
                    held.push(p);
                }
            }
            if held.len() >= 2 || ended {
                for p in held.drain(..) {
                    if p.r#type == PacketType::SnapChunk as i32 {
                        chunks += 1;
                        bytes += p.data.len();
                    }
                }
            }
        }
        assert_eq!(
            writer.join().unwrap().unwrap(),
            (10 * SNAP_CHUNK_SIZE) as u64
        );
        assert_eq!((chunks, bytes), (10, 10 * SNAP_CHUNK_SIZE));
    }

    /// A learner dropped while the serializer waits for credit ends it with
    /// an error (no SNAP_END), rather than leaving it waiting forever.
    #[test]
    fn a_cancelled_link_stops_the_serializer() {
        let cancelled = Arc::new(AtomicBool::new(false));
        let credit = ChunkCredit::new(1, Arc::clone(&cancelled));
        let (mut rx, writer) = sink_thread(credit, 4);
        let first = rx.blocking_recv().expect("one chunk on credit");
        assert_eq!(first.r#type, PacketType::SnapChunk as i32);
        cancelled.store(true, Ordering::SeqCst);
        let err = writer.join().unwrap().expect_err("stopped");
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
        // Nothing after the first chunk, SNAP_END least of all.
        assert!(rx.try_recv().is_err());
    }
}
