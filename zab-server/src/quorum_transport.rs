//! The leader ⇄ learner link, opened by the learner on the leader's quorum
//! port: a plain link (`plain`: length-prefixed `QuorumBatch`es on the
//! socket, or inside TLS under `sslQuorum`), or, with a leader of an
//! earlier zab that does not take one, a tonic bidirectional stream
//! (`QuorumPeer.Learn`); the listener takes both on one port. Packets
//! queued while the previous batch was being written go out together as
//! one `QuorumBatch` (batching on the wire, as SOFAJRaft's replicator
//! does; seed 003). Only bytes move here: the protocol is in `zab-leader`
//! and `zab-learner`.
//!
//! Packets go from the caller's queue into tonic and from tonic to the
//! caller without tasks of their own in between (a plain link has one
//! writer task, where tonic has its connection task): on the critical path
//! of a write (PROPOSAL, ACK, COMMIT) every extra task is another wake-up.
//!
//! Under `quorum.auth.*` a link opens with the SASL exchange
//! (`zab_election::quorum_sasl`, its steps as QUORUM_AUTH packets on either
//! kind of link), as ZooKeeper's `Learner.connectToLeader` and
//! `LearnerHandler.run` do before the first protocol packet; the listener
//! reports the link only once it is admitted.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use prost::Message;
use tokio::sync::mpsc;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};
use zab_wire::proto::quorum_peer_client::QuorumPeerClient;
use zab_wire::proto::quorum_peer_server::{QuorumPeer, QuorumPeerServer};
use zab_wire::proto::{QuorumBatch, QuorumPacket};

use crate::stage_trace::{self, Direction};

mod plain;
use plain::{connect as connect_plain, dispatch, PlainListener, PlainReader};
use zab_election::quorum_sasl::Verdict;
use zab_election::quorum_sasl::{self, Steps};
use zab_election::{PeerSecurity, PeerTls};
use zab_wire::proto;
use zab_wire::quorum_auth::{self, Admission};
use zab_wire::ServerId;

/// Most packets in one batch: bounds a batch's latency.
const MAX_BATCH: usize = 1024;

/// A batch takes no packet that would take it past this many bytes; a
/// larger packet goes alone. Without a byte bound, a snapshot queued whole
/// as 256 KiB SNAP_CHUNKs went out as one message of up to 1024 chunks,
/// which the learner refused as oversized: a learner that needed a SNAP of
/// more than a few MiB could never join.
const MAX_BATCH_BYTES: usize = 1 << 20;

/// The largest message either side of a link accepts, for a server whose
/// clients may send requests of up to `jute_max_buffer` bytes: a batch of
/// several packets is at most `MAX_BATCH_BYTES` (1 MiB), and a packet alone
/// carries a client request, a txn or a SNAP_CHUNK, plus its framing. A
/// txn may be larger than the request behind it (a closeSession lists the
/// session's ephemerals; `auth` ACLs expand to the session's ids), so a
/// packet may take twice `jute.maxbuffer`, as ZooKeeper's learners accept
/// (`jute.maxbuffer` plus `zookeeper.jute.maxbuffer.extrasize`, which
/// defaults to the same).
pub fn max_message_bytes(jute_max_buffer: u32) -> usize {
    const FRAMING: usize = 64 * 1024;
    let packet = (2 * jute_max_buffer as usize).max(zab_leader::SNAP_CHUNK_SIZE);
    MAX_BATCH_BYTES.max(packet) + FRAMING
}

/// Cuts a link's queue into batches: the first packet waits for nothing,
/// the rest of its batch is what queued up meanwhile (while the previous
/// batch was being written), up to [`MAX_BATCH`] packets and
/// [`MAX_BATCH_BYTES`]. A packet that would take a batch past the byte
/// bound waits for the next batch, so a batch is either within the bound
/// or one packet alone, which [`max_message_bytes`] bounds.
#[derive(Default)]
struct Batcher {
    held: Option<QuorumPacket>,
}

impl Batcher {
    /// The packet held back from the last batch, which starts the next.
    fn take_held(&mut self) -> Option<QuorumPacket> {
        self.held.take()
    }

    /// The batch that starts with `first`.
    fn batch(
        &mut self,
        first: QuorumPacket,
        rx: &mut mpsc::UnboundedReceiver<QuorumPacket>,
    ) -> Vec<QuorumPacket> {
        let mut bytes = first.encoded_len();
        let mut packets = vec![first];
        while packets.len() < MAX_BATCH {
            let Ok(p) = rx.try_recv() else { break };
            let len = p.encoded_len();
            if bytes + len > MAX_BATCH_BYTES {
                self.held = Some(p);
                break;
            }
            bytes += len;
            packets.push(p);
        }
        stage_trace::packets(Direction::Out, &packets);
        packets
    }
}

/// One learner connection on the leader.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LinkId(pub u64);

/// What the leader's listener reports.
#[derive(Debug)]
pub enum LinkEvent {
    Opened {
        link: LinkId,
        remote: Option<SocketAddr>,
        out: mpsc::UnboundedSender<QuorumPacket>,
        /// The link lives while this is held: dropping it (the leader
        /// drops a learner, or stops leading) closes the link's socket and
        /// frees what is queued for it at once, as ZooKeeper's
        /// `LearnerHandler.shutdown` closes its socket, even while its
        /// writer is stuck on a learner that stopped reading.
        keep: tokio::sync::oneshot::Sender<()>,
    },
    /// A batch of packets off the link, in order (never empty).
    Packets {
        link: LinkId,
        packets: Vec<QuorumPacket>,
    },
    Closed {
        link: LinkId,
    },
}

/// Where the listener reports [`LinkEvent`]s; `false` means nobody
/// listens any more (the role ended) and the link may stop.
pub trait EventSink: Fn(LinkEvent) -> bool + Send + Sync + 'static {}
impl<F: Fn(LinkEvent) -> bool + Send + Sync + 'static> EventSink for F {}

struct Service {
    events: Arc<dyn EventSink>,
    next: Arc<AtomicU64>,
    security: PeerSecurity,
}

/// Why a link's inbound stream ended, for the log: a clean close, or the
/// error that broke it (an oversized or undecodable message among them).
fn end_reason(end: Option<Result<QuorumBatch, Status>>) -> String {
    match end {
        None => "closed by the peer".into(),
        Some(Err(status)) => format!("{}: {}", status.code(), status.message()),
        Some(Ok(_)) => "ended".into(),
    }
}

type BatchStream = Pin<Box<dyn Stream<Item = Result<QuorumBatch, Status>> + Send>>;

#[tonic::async_trait]
impl QuorumPeer for Service {
    type LearnStream = BatchStream;

    async fn learn(
        &self,
        request: Request<Streaming<QuorumBatch>>,
    ) -> Result<Response<Self::LearnStream>, Status> {
        let handshake = match self.security.admit(&request) {
            Admission::Open => None,
            Admission::Refuse(why) => {
                tracing::warn!(remote = ?request.remote_addr(), "learner link refused: {why}");
                return Err(Status::unauthenticated(why));
            }
            Admission::Authenticate(h) => Some(h),
        };
        let link = LinkId(self.next.fetch_add(1, Ordering::Relaxed));
        let remote = request.remote_addr();
        let mut inbound = request.into_inner();
        let (out_tx, out_rx) = mpsc::unbounded_channel();
        let mut early = Vec::new();
        // A tonic stream ends when its sender goes; it has no socket of
        // its own to close.
        if handshake.is_none()
            && !(self.events)(LinkEvent::Opened {
                link,
                remote,
                out: out_tx.clone(),
                keep: tokio::sync::oneshot::channel().0,
            })
        {
            return Err(Status::unavailable("not leading"));
        }
        let events = self.events.clone();
        tokio::spawn(async move {
            if let Some(handshake) = handshake {
                // The exchange answers on the response stream, so the
                // response goes back first and the link is reported only
                // once the opener is admitted.
                let mut steps = LinkSteps::new(&out_tx, StepSource::Tonic(&mut inbound));
                let verdict = quorum_sasl::admit(handshake, &mut steps).await;
                early.extend(steps.queued);
                log_verdict(link, remote, &verdict);
                if !verdict.keep
                    || !events(LinkEvent::Opened {
                        link,
                        remote,
                        out: out_tx.clone(),
                        keep: tokio::sync::oneshot::channel().0,
                    })
                {
                    return;
                }
            }
            drop(out_tx);
            if !early.is_empty()
                && !events(LinkEvent::Packets {
                    link,
                    packets: early,
                })
            {
                return;
            }
            let end = loop {
                match inbound.next().await {
                    Some(Ok(batch)) if batch.packets.is_empty() => {}
                    Some(Ok(batch)) => {
                        let packets = batch.packets;
                        stage_trace::packets(Direction::In(link.0), &packets);
                        if !events(LinkEvent::Packets { link, packets }) {
                            return;
                        }
                    }
                    end => break end,
                }
            };
            tracing::info!(?link, reason = %end_reason(end), "learner link closed");
            events(LinkEvent::Closed { link });
        });
        Ok(Response::new(Box::pin(Batches::new(out_rx).map(Ok))))
    }
}

/// Logs how a learner's SASL exchange ended, on the leader.
fn log_verdict(link: LinkId, remote: Option<SocketAddr>, verdict: &Verdict) {
    match &verdict.result {
        Ok(user) => tracing::info!(?link, ?remote, user, "learner authenticated"),
        Err(why) => tracing::warn!(
            ?link,
            ?remote,
            keep = verdict.keep,
            "learner failed SASL authentication: {why}"
        ),
    }
}

/// The queue of outgoing packets as a stream of batches ([`Batcher`]),
/// for tonic.
struct Batches {
    rx: mpsc::UnboundedReceiver<QuorumPacket>,
    batcher: Batcher,
}

impl Batches {
    fn new(rx: mpsc::UnboundedReceiver<QuorumPacket>) -> Batches {
        Batches {
            rx,
            batcher: Batcher::default(),
        }
    }
}

impl Stream for Batches {
    type Item = QuorumBatch;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<QuorumBatch>> {
        let this = &mut *self;
        let first = match this.batcher.take_held() {
            Some(p) => p,
            None => match this.rx.poll_recv(cx) {
                Poll::Ready(Some(p)) => p,
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            },
        };
        let packets = this.batcher.batch(first, &mut this.rx);
        Poll::Ready(Some(QuorumBatch { packets }))
    }
}

/// Binds `addr` and returns the server: it serves learners for as long as
/// the returned future is polled, and dropping it closes the listener (so a
/// leader that steps down frees its quorum port).
/// Messages above `max_message` bytes (see [`max_message_bytes`]) break
/// the link.
pub async fn listen(
    addr: SocketAddr,
    events: impl EventSink,
    max_message: usize,
    security: &PeerSecurity,
) -> anyhow::Result<impl std::future::Future<Output = ()>> {
    let listener = crate::listen::bind(addr)?;
    // Connections that are not plain links go on to tonic.
    let (to_tonic, incoming) = mpsc::unbounded_channel::<std::io::Result<tokio::net::TcpStream>>();
    let incoming = tokio_stream::wrappers::UnboundedReceiverStream::new(incoming);
    let events: Arc<dyn EventSink> = Arc::new(events);
    let next = Arc::new(AtomicU64::new(1));
    let plain = PlainListener {
        events: events.clone(),
        next: next.clone(),
        security: security.clone(),
        max_message,
    };
    let service = Service {
        events,
        next,
        security: security.clone(),
    };
    let router = tonic::transport::Server::builder().add_service(
        QuorumPeerServer::new(service)
            .max_decoding_message_size(max_message)
            .max_encoding_message_size(max_message),
    );
    let plain_too = security.takes_plain();
    let server: std::pin::Pin<Box<dyn std::future::Future<Output = _> + Send>> =
        match security.accepting_tls() {
            None => Box::pin(router.serve_with_incoming(incoming)),
            Some(tls) => Box::pin(router.serve_with_incoming(tls.accept(incoming, plain_too))),
        };
    let accept = async move {
        loop {
            match listener.accept().await {
                Ok((sock, remote)) => {
                    let remote = crate::listen::canonical(remote);
                    // Without it Nagle held back small PROPOSAL/COMMIT
                    // batches behind the learners' delayed ACKs, and 1 % of
                    // writes took 40–50 ms.
                    let _ = sock.set_nodelay(true);
                    tokio::spawn(dispatch(sock, remote, to_tonic.clone(), plain.clone()));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "quorum listener: accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    };
    // Dropping this future drops the listener and frees the port.
    Ok(async move {
        tokio::select! {
            () = accept => {}
            result = server => if let Err(e) = result {
                tracing::warn!(error = %e, "quorum listener stopped");
            }
        }
    })
}

/// A learner's link to its leader: send packets with `out`, receive with
/// `inbound` (it ends when the link breaks).
pub struct LeaderLink {
    pub out: mpsc::UnboundedSender<QuorumPacket>,
    pub inbound: Inbound,
}

/// The packets the leader sends, a batch at a time, straight from the
/// stream.
pub struct Inbound {
    from: InboundFrom,
    /// Packets that came in one batch with the last SASL step.
    early: Vec<QuorumPacket>,
}

enum InboundFrom {
    Tonic(Streaming<QuorumBatch>),
    Plain(PlainReader),
}

impl Inbound {
    /// The packets of the next batch the leader sent (never empty), in
    /// order, or `Err` with the reason once the link is closed or broken.
    /// The core handles a batch in one step, so the proposals in it reach
    /// the txn log as one append.
    pub async fn recv_batch(&mut self) -> Result<Vec<QuorumPacket>, String> {
        if !self.early.is_empty() {
            return Ok(std::mem::take(&mut self.early));
        }
        let mut source = match &mut self.from {
            InboundFrom::Tonic(stream) => StepSource::Tonic(stream),
            InboundFrom::Plain(reader) => StepSource::Plain(reader),
        };
        loop {
            let packets = source.next_batch().await?;
            if !packets.is_empty() {
                stage_trace::packets(Direction::In(0), &packets);
                return Ok(packets);
            }
        }
    }
}

/// Opens the stream to the leader (or the follower hosting observers)
/// `peer`, named `host`, at `addr`, within `timeout`; messages above
/// `max_message` bytes break it.
pub async fn connect(
    peer: ServerId,
    host: &str,
    addr: SocketAddr,
    timeout: Duration,
    max_message: usize,
    security: &PeerSecurity,
) -> anyhow::Result<LeaderLink> {
    // Plain links are faster: see `plain`.
    match connect_plain(peer, host, addr, timeout, max_message, security).await {
        Ok(link) => return Ok(link),
        Err(e) if e.is::<plain::Refused>() => return Err(e),
        // Closed without a verdict: a leader of an earlier zab, which
        // takes only tonic streams or plain links of fewer kinds (a rolling
        // upgrade), or a link that broke; a tonic stream serves all.
        Err(e) => tracing::debug!(%addr, error = %e, "no plain link; opening a tonic stream"),
    }
    connect_tonic(peer, host, addr, timeout, max_message, security).await
}

/// Opens a tonic stream to `peer` at `addr`: what a learner uses when
/// its leader, one of an earlier zab, does not answer a plain link.
async fn connect_tonic(
    peer: ServerId,
    host: &str,
    addr: SocketAddr,
    timeout: Duration,
    max_message: usize,
    security: &PeerSecurity,
) -> anyhow::Result<LeaderLink> {
    let channel = tokio::time::timeout(
        timeout,
        PeerTls::connect(security.tls.as_ref(), host, addr, timeout),
    )
    .await??;
    let mut client = QuorumPeerClient::new(channel)
        .max_decoding_message_size(max_message)
        .max_encoding_message_size(max_message);
    let (out_tx, out_rx) = mpsc::unbounded_channel();
    let mut request = Request::new(Batches::new(out_rx));
    security.mark(&mut request);
    let response = tokio::time::timeout(timeout, client.learn(request)).await??;
    let mut stream = response.into_inner();
    let mut steps = LinkSteps::new(&out_tx, StepSource::Tonic(&mut stream));
    let authenticated = security.authenticate(peer, &mut steps).await;
    let early = Vec::from(steps.queued);
    authenticated.map_err(|why| anyhow::anyhow!("SASL authentication with {addr}: {why}"))?;
    Ok(LeaderLink {
        out: out_tx,
        inbound: Inbound {
            from: InboundFrom::Tonic(stream),
            early,
        },
    })
}

/// A link during its SASL exchange: each step is a QUORUM_AUTH packet.
/// Packets that arrive in a batch after a step are kept for the link's
/// protocol (`queued`).
struct LinkSteps<'a> {
    out: &'a mpsc::UnboundedSender<QuorumPacket>,
    inbound: StepSource<'a>,
    queued: VecDeque<QuorumPacket>,
}

impl<'a> LinkSteps<'a> {
    fn new(out: &'a mpsc::UnboundedSender<QuorumPacket>, inbound: StepSource<'a>) -> Self {
        LinkSteps {
            out,
            inbound,
            queued: VecDeque::new(),
        }
    }
}

/// Where a learner's link, or a link's SASL exchange, reads the other
/// side's batches.
enum StepSource<'a> {
    Tonic(&'a mut Streaming<QuorumBatch>),
    Plain(&'a mut PlainReader),
}

impl StepSource<'_> {
    /// The packets of the next batch, or why the link ended.
    async fn next_batch(&mut self) -> Result<Vec<QuorumPacket>, String> {
        match self {
            StepSource::Tonic(stream) => match stream.next().await {
                Some(Ok(batch)) => Ok(batch.packets),
                end => Err(end_reason(end)),
            },
            StepSource::Plain(reader) => reader.next().await.map(|batch| batch.packets),
        }
    }
}

impl Steps for LinkSteps<'_> {
    fn send(&mut self, step: proto::QuorumAuth) -> Result<(), String> {
        self.out
            .send(quorum_auth::to_packet(&step))
            .map_err(|_| "link closed".to_owned())
    }

    async fn recv(&mut self) -> Result<proto::QuorumAuth, String> {
        while self.queued.is_empty() {
            let batch = self.inbound.next_batch().await?;
            self.queued.extend(batch);
        }
        let packet = self.queued.pop_front().expect("not empty");
        quorum_auth::from_packet(&packet)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use zab_wire::proto::PacketType;

    /// A packet of type `t` for `zxid`, nothing else set.
    pub(crate) fn packet(t: PacketType, zxid: i64) -> QuorumPacket {
        QuorumPacket {
            r#type: t as i32,
            zxid,
            ..Default::default()
        }
    }

    /// The default `jute.maxbuffer`'s limit.
    const LIMIT: usize = 0xfffff + (1 << 20) + 64 * 1024;

    /// The listener's events, into a channel the test reads.
    pub(crate) fn channel_sink() -> (impl EventSink + Clone, mpsc::UnboundedReceiver<LinkEvent>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (move |e| tx.send(e).is_ok(), rx)
    }

    /// A listener on a free port and a learner's link to it, with messages
    /// up to `limit` bytes.
    async fn linked(
        limit: usize,
    ) -> (
        tokio::task::JoinHandle<()>,
        LeaderLink,
        mpsc::UnboundedReceiver<LinkEvent>,
    ) {
        let (tx, events) = channel_sink();
        let addr = free_addr();
        let server = tokio::spawn(
            listen(addr, tx, limit, &PeerSecurity::default())
                .await
                .unwrap(),
        );
        let link = connect(
            ServerId(1),
            "127.0.0.1",
            addr,
            Duration::from_secs(5),
            limit,
            &PeerSecurity::default(),
        )
        .await
        .unwrap();
        (server, link, events)
    }

    #[tokio::test]
    async fn packets_flow_both_ways_in_order() {
        let (server, mut link, mut events) = linked(LIMIT).await;
        for z in 1..=500 {
            link.out.send(packet(PacketType::Ack, z)).unwrap();
        }
        // The link lives while `_keep` does.
        let (out, _keep) = match events.recv().await {
            Some(LinkEvent::Opened { out, keep, .. }) => (out, keep),
            other => panic!("{other:?}"),
        };
        let mut got = Vec::new();
        while got.len() < 500 {
            match events.recv().await {
                Some(LinkEvent::Packets { packets, .. }) => {
                    assert!(!packets.is_empty());
                    got.extend(packets.iter().map(|p| p.zxid));
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(got, (1..=500).collect::<Vec<i64>>());
        for z in 1..=500 {
            out.send(packet(PacketType::Commit, z)).unwrap();
        }
        let got: Vec<i64> = read(&mut link.inbound, 500)
            .await
            .iter()
            .map(|p| p.zxid)
            .collect();
        assert_eq!(got, (1..=500).collect::<Vec<i64>>());
        drop(link);
        loop {
            match events.recv().await {
                Some(LinkEvent::Closed { .. }) | None => break,
                _ => {}
            }
        }
        server.abort();
    }

    /// The next `n` packets off the leader's stream; no batch is empty.
    async fn read(inbound: &mut Inbound, n: usize) -> Vec<QuorumPacket> {
        let mut got = Vec::new();
        while got.len() < n {
            let batch = inbound.recv_batch().await.expect("the link stays up");
            assert!(!batch.is_empty());
            got.extend(batch);
        }
        got
    }

    fn chunk(zxid: i64, len: usize) -> QuorumPacket {
        QuorumPacket {
            r#type: PacketType::SnapChunk as i32,
            zxid,
            data: bytes::Bytes::from(vec![zxid as u8; len]),
            ..Default::default()
        }
    }

    /// A snapshot is queued whole, as 256 KiB chunks, before the link
    /// writes any of it: 64 chunks (16 MiB) must arrive, in order, in
    /// batches each under the limit. (Batched by count alone they went
    /// out as one 16 MiB message, refused as oversized, and a learner
    /// needing a SNAP of more than a few MiB could never join.)
    #[tokio::test]
    async fn a_queued_snapshot_of_many_chunks_goes_through() {
        let limit = max_message_bytes(0xfffff);
        let (server, mut link, mut events) = linked(limit).await;
        // The link lives while `_keep` does.
        let (out, _keep) = match events.recv().await {
            Some(LinkEvent::Opened { out, keep, .. }) => (out, keep),
            other => panic!("{other:?}"),
        };
        let size = zab_leader::SNAP_CHUNK_SIZE;
        for z in 1..=64 {
            out.send(chunk(z, size)).unwrap();
        }
        let got: Vec<(i64, usize)> = read(&mut link.inbound, 64)
            .await
            .iter()
            .map(|p| (p.zxid, p.data.len()))
            .collect();
        assert_eq!(got, (1..=64).map(|z| (z, size)).collect::<Vec<_>>());
        // The other way too: a learner's queued packets.
        for z in 1..=64 {
            link.out.send(chunk(z, size)).unwrap();
        }
        let mut got = Vec::new();
        while got.len() < 64 {
            match events.recv().await {
                Some(LinkEvent::Packets { packets, .. }) => {
                    got.extend(packets.iter().map(|p| (p.zxid, p.data.len())));
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(got, (1..=64).map(|z| (z, size)).collect::<Vec<_>>());
        server.abort();
    }

    /// A txn may be larger than the request behind it, up to twice
    /// `jute.maxbuffer` (ZooKeeper's learners take that much): queued
    /// behind 990 KiB of smaller packets, a 1.9 MiB one goes in a batch of
    /// its own and arrives. (Batches that took a packet while under 1 MiB
    /// put it in a 2.9 MiB message the learner refused, and the link broke
    /// at every resync.)
    #[tokio::test]
    async fn a_packet_up_to_twice_jute_maxbuffer_goes_through_behind_others() {
        let limit = max_message_bytes(0xfffff);
        let (server, mut link, mut events) = linked(limit).await;
        // The link lives while `_keep` does.
        let (out, _keep) = match events.recv().await {
            Some(LinkEvent::Opened { out, keep, .. }) => (out, keep),
            other => panic!("{other:?}"),
        };
        let sizes = [330 << 10, 330 << 10, 330 << 10, 2 * 0xfffff - 128 * 1024];
        for (z, &size) in (1..).zip(&sizes) {
            out.send(chunk(z, size)).unwrap();
        }
        let got: Vec<usize> = read(&mut link.inbound, sizes.len())
            .await
            .iter()
            .map(|p| p.data.len())
            .collect();
        assert_eq!(got, sizes);
        server.abort();
    }

    /// One packet above the peer's limit breaks the link with a reason
    /// naming it, rather than a silent close.
    #[tokio::test]
    async fn a_message_above_the_limit_breaks_the_link_with_a_reason() {
        let (tx, mut events) = channel_sink();
        let addr = free_addr();
        let server = tokio::spawn(
            listen(addr, tx, 4 << 20, &PeerSecurity::default())
                .await
                .unwrap(),
        );
        let mut link = connect(
            ServerId(1),
            "127.0.0.1",
            addr,
            Duration::from_secs(5),
            1 << 20,
            &PeerSecurity::default(),
        )
        .await
        .unwrap();
        // The link lives while `_keep` does.
        let (out, _keep) = match events.recv().await {
            Some(LinkEvent::Opened { out, keep, .. }) => (out, keep),
            other => panic!("{other:?}"),
        };
        out.send(chunk(1, 2 << 20)).unwrap();
        let reason = link
            .inbound
            .recv_batch()
            .await
            .expect_err("the link breaks");
        assert!(reason.contains("message length too large"), "{reason}");
        server.abort();
    }

    fn free_addr() -> SocketAddr {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap()
    }
}

#[cfg(test)]
pub(crate) mod sasl_tests {
    use super::tests::{channel_sink, packet};
    use super::*;
    use zab_wire::proto::PacketType;
    use zab_wire::quorum_auth::{Credentials, QuorumSasl};

    pub(crate) const LIMIT: usize = 4 << 20;

    /// DIGEST-MD5 between servers: user "test", whose password is "pw",
    /// authenticating with `password` if given.
    pub(crate) fn security(password: Option<&str>, server_require: bool) -> PeerSecurity {
        PeerSecurity {
            tls: None,
            unified: None,
            sasl: Some(Arc::new(QuorumSasl::digest(
                password.map(|p| Credentials {
                    user: "test".into(),
                    password: p.into(),
                }),
                [("test".to_owned(), "pw".to_owned())].into(),
                server_require,
            ))),
        }
    }

    /// A listener with `security` on a free port, its task, and its
    /// events.
    pub(crate) async fn listener(
        security: &PeerSecurity,
    ) -> (
        SocketAddr,
        tokio::task::JoinHandle<()>,
        mpsc::UnboundedReceiver<LinkEvent>,
    ) {
        let (tx, events) = channel_sink();
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = probe.local_addr().unwrap();
        drop(probe);
        let server = tokio::spawn(listen(addr, tx, LIMIT, security).await.unwrap());
        (addr, server, events)
    }

    /// An authenticated link is reported once admitted, and packets flow
    /// both ways after the exchange as on any link.
    #[tokio::test]
    async fn an_authenticated_link_carries_packets() {
        let (addr, server, mut events) = listener(&security(None, true)).await;
        let mut link = connect(
            ServerId(1),
            "127.0.0.1",
            addr,
            Duration::from_secs(5),
            LIMIT,
            &security(Some("pw"), false),
        )
        .await
        .expect("the learner authenticates");
        link.out.send(packet(PacketType::Followerinfo, 7)).unwrap();
        // The link lives while `_keep` does.
        let (out, _keep) = match events.recv().await {
            Some(LinkEvent::Opened { out, keep, .. }) => (out, keep),
            other => panic!("{other:?}"),
        };
        match events.recv().await {
            Some(LinkEvent::Packets { packets, .. }) => {
                assert_eq!(packets.len(), 1);
                assert_eq!(packets[0].r#type, PacketType::Followerinfo as i32);
            }
            other => panic!("{other:?}"),
        }
        out.send(packet(PacketType::Leaderinfo, 8)).unwrap();
        let got = link.inbound.recv_batch().await.expect("the link stays up");
        assert_eq!(got[0].r#type, PacketType::Leaderinfo as i32);
        server.abort();
    }

    /// A wrong password fails the learner's connect with the reason, and
    /// the leader never sees the link; so does a learner that does not
    /// authenticate to a listener that requires it.
    #[tokio::test]
    async fn a_wrong_password_or_none_is_refused_before_the_link_opens() {
        let (addr, server, mut events) = listener(&security(None, true)).await;
        let err = connect(
            ServerId(1),
            "127.0.0.1",
            addr,
            Duration::from_secs(5),
            LIMIT,
            &security(Some("guess"), false),
        )
        .await
        .err()
        .expect("refused");
        assert!(err.to_string().contains("SASL"), "{err}");
        let err = connect(
            ServerId(1),
            "127.0.0.1",
            addr,
            Duration::from_secs(5),
            LIMIT,
            &PeerSecurity::default(),
        )
        .await
        .err()
        .expect("refused");
        assert!(err.to_string().contains("serverRequireSasl"), "{err}");
        server.abort();
        let _ = server.await;
        while let Some(event) = events.recv().await {
            assert!(
                !matches!(event, LinkEvent::Opened { .. }),
                "a refused learner was reported"
            );
        }
    }

    /// A listener that does not require SASL lets a learner without it
    /// in (a rolling upgrade's first step).
    #[tokio::test]
    async fn a_lenient_listener_admits_a_learner_without_sasl() {
        let (addr, server, mut events) = listener(&security(None, false)).await;
        let _link = connect(
            ServerId(1),
            "127.0.0.1",
            addr,
            Duration::from_secs(5),
            LIMIT,
            &PeerSecurity::default(),
        )
        .await
        .expect("admitted");
        assert!(matches!(
            events.recv().await,
            Some(LinkEvent::Opened { .. })
        ));
        server.abort();
    }
}

#[cfg(test)]
mod listener_tests {
    use super::*;

    #[tokio::test]
    async fn dropping_the_server_frees_the_port() {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = probe.local_addr().unwrap();
        drop(probe);
        let (tx, _events) = super::tests::channel_sink();
        let limit = max_message_bytes(0xfffff);
        let task = tokio::spawn(
            listen(addr, tx.clone(), limit, &PeerSecurity::default())
                .await
                .unwrap(),
        );
        task.abort();
        let _ = task.await;
        // A leader that steps down and wins again binds the same port.
        let again = listen(addr, tx, limit, &PeerSecurity::default()).await;
        assert!(
            again.is_ok(),
            "the quorum port is still bound after the server was dropped"
        );
    }
}
