//! Plain learner links: the same `QuorumBatch` messages as the tonic
//! stream, each as a 4-byte big-endian length and its protobuf bytes, on
//! the TCP socket itself. Under set 32×8 they carried 9–19 % more writes
//! than HTTP/2 streams at 8–20 % less CPU per write (BENCHMARKS.md, "the
//! learner links without HTTP/2"): no HTTP/2 framing, and one task fewer
//! between the socket and the core on each side.
//!
//! A learner opens a plain link only when it uses neither TLS nor SASL
//! towards its leader; otherwise it opens a tonic stream as before. Both
//! kinds meet on the quorum port: the listener tells them apart by the
//! first byte (`Z` here, `P` for HTTP/2's preface, 0x16 for a TLS
//! handshake). A plain link opens with [`MAGIC`]; the listener answers with
//! it and one verdict — admitted, or refused with the reason — and refuses where
//! the link would bypass what it requires: TLS (`sslQuorum`) or SASL
//! (`quorum.auth.serverRequireSasl`, the same admission a tonic stream
//! without SASL gets). A leader of an earlier zab, which knows only tonic
//! streams, does not answer with the magic, and the learner opens a tonic
//! stream instead.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use zab_election::PeerSecurity;
use zab_wire::proto::{QuorumBatch, QuorumPacket};
use zab_wire::quorum_auth::{self, Admission};

use super::{EventSink, LeaderLink, LinkEvent, LinkId, MAX_BATCH, MAX_BATCH_BYTES};
use crate::stage_trace::{self, Direction};

/// What a plain link sends first.
pub(super) const MAGIC: [u8; 8] = *b"ZABLINK1";
/// How long an accepted connection may take to show what it is.
const FIRST_BYTES_WITHIN: Duration = Duration::from_secs(10);
/// The verdict's first byte.
const ADMITTED: u8 = 0;
const REFUSED: u8 = 1;
/// The longest refusal reason read.
const MAX_REASON: usize = 4096;
/// Read buffer per link.
const READ_BUFFER: usize = 64 * 1024;

/// The plain side of a quorum listener.
#[derive(Clone)]
pub(super) struct PlainListener {
    pub events: Arc<dyn EventSink>,
    pub next: Arc<AtomicU64>,
    pub security: PeerSecurity,
    pub max_message: usize,
}

/// Routes an accepted connection by its first byte: a plain link here,
/// anything else to tonic. A connection that closes or stays silent is
/// dropped.
pub(super) async fn dispatch(
    sock: TcpStream,
    remote: SocketAddr,
    to_tonic: mpsc::UnboundedSender<std::io::Result<TcpStream>>,
    plain: PlainListener,
) {
    let mut first = [0u8; 1];
    match tokio::time::timeout(FIRST_BYTES_WITHIN, sock.peek(&mut first)).await {
        Ok(Ok(1)) if first[0] == MAGIC[0] => plain.serve(sock, remote).await,
        Ok(Ok(n)) if n > 0 => {
            let _ = to_tonic.send(Ok(sock));
        }
        _ => {}
    }
}

impl PlainListener {
    /// Why this listener refuses a plain link, if it does.
    fn refusal(&self) -> Option<String> {
        if self.security.tls.is_some() {
            return Some("this server requires TLS on quorum links (sslQuorum)".into());
        }
        match quorum_auth::admit(self.security.sasl.as_ref(), None) {
            Admission::Open => None,
            Admission::Refuse(why) => Some(why),
            // Only an opener that names a mechanism is asked to
            // authenticate, and a plain link names none.
            Admission::Authenticate(_) => Some("SASL on a plain link".into()),
        }
    }

    async fn serve(self, sock: TcpStream, remote: SocketAddr) {
        let (rd, mut wr) = sock.into_split();
        let mut rd = BufReader::with_capacity(READ_BUFFER, rd);
        let mut magic = [0u8; MAGIC.len()];
        match tokio::time::timeout(FIRST_BYTES_WITHIN, rd.read_exact(&mut magic)).await {
            Ok(Ok(_)) if magic == MAGIC => {}
            _ => {
                tracing::warn!(%remote, "quorum port: not a learner link, closed");
                return;
            }
        }
        if let Some(why) = self.refusal() {
            tracing::warn!(%remote, "learner link refused: {why}");
            let mut verdict = MAGIC.to_vec();
            verdict.push(REFUSED);
            verdict.extend_from_slice(&(why.len() as u32).to_be_bytes());
            verdict.extend_from_slice(why.as_bytes());
            let _ = wr.write_all(&verdict).await;
            return;
        }
        let mut verdict = MAGIC.to_vec();
        verdict.push(ADMITTED);
        if wr.write_all(&verdict).await.is_err() {
            return;
        }
        let link = LinkId(self.next.fetch_add(1, Ordering::Relaxed));
        let (out, out_rx) = mpsc::unbounded_channel();
        if !(self.events)(LinkEvent::Opened {
            link,
            remote: Some(remote),
            out,
        }) {
            return;
        }
        tokio::spawn(write_batches(wr, out_rx));
        let mut reader = PlainReader {
            rd,
            max_message: self.max_message,
        };
        let reason = loop {
            match reader.next().await {
                Ok(batch) if batch.packets.is_empty() => {}
                Ok(batch) => {
                    let packets = batch.packets;
                    stage_trace::packets(Direction::In(link.0), &packets);
                    if !(self.events)(LinkEvent::Packets { link, packets }) {
                        return;
                    }
                }
                Err(reason) => break reason,
            }
        };
        tracing::info!(?link, %reason, "learner link closed");
        (self.events)(LinkEvent::Closed { link });
    }
}

/// Opens a plain link to the leader at `addr` within `timeout`; messages
/// above `max_message` bytes break it.
pub(super) async fn connect(
    addr: SocketAddr,
    timeout: Duration,
    max_message: usize,
) -> anyhow::Result<LeaderLink> {
    let opened = async {
        let sock = TcpStream::connect(addr).await?;
        sock.set_nodelay(true)?;
        let (rd, mut wr) = sock.into_split();
        wr.write_all(&MAGIC).await?;
        let mut rd = BufReader::with_capacity(READ_BUFFER, rd);
        // The magic comes back first: an HTTP/2 server answers with its
        // SETTINGS frame, whose first byte would read as a verdict.
        let mut magic = [0u8; MAGIC.len()];
        rd.read_exact(&mut magic).await?;
        anyhow::ensure!(magic == MAGIC, "{addr} does not take plain links");
        let verdict = rd.read_u8().await?;
        if verdict != ADMITTED {
            let len = (rd.read_u32().await? as usize).min(MAX_REASON);
            let mut why = vec![0u8; len];
            rd.read_exact(&mut why).await?;
            return Err(anyhow::Error::new(Refused(format!(
                "the learner link to {addr} was refused: {}",
                String::from_utf8_lossy(&why)
            ))));
        }
        Ok((rd, wr))
    };
    let (rd, wr) = tokio::time::timeout(timeout, opened).await??;
    let (out, out_rx) = mpsc::unbounded_channel();
    tokio::spawn(write_batches(wr, out_rx));
    Ok(LeaderLink {
        out,
        inbound: super::Inbound {
            from: super::InboundFrom::Plain(PlainReader { rd, max_message }),
            early: Vec::new(),
        },
    })
}

/// The listener answered a plain link with a refusal (as opposed to not
/// answering it at all, as a leader of an earlier zab that knows only
/// tonic streams does).
#[derive(Debug)]
pub(super) struct Refused(String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

/// The read half of a plain link, a batch at a time.
pub(super) struct PlainReader {
    rd: BufReader<OwnedReadHalf>,
    max_message: usize,
}

impl PlainReader {
    /// The next batch, or why the link ended (closed, broken, or a message
    /// over the limit or not a batch).
    pub(super) async fn next(&mut self) -> Result<QuorumBatch, String> {
        let len = match self.rd.read_u32().await {
            Ok(len) => len as usize,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return Err("closed by the peer".into())
            }
            Err(e) => return Err(e.to_string()),
        };
        if len > self.max_message {
            return Err(format!(
                "message length too large: {len} bytes, the limit is {}",
                self.max_message
            ));
        }
        let mut bytes = vec![0u8; len];
        self.rd
            .read_exact(&mut bytes)
            .await
            .map_err(|e| e.to_string())?;
        // Decoded from `Bytes`, each packet's data is a slice of this
        // frame, not a copy (zab-wire's messages hold `Bytes`).
        QuorumBatch::decode(bytes::Bytes::from(bytes)).map_err(|e| format!("not a batch: {e}"))
    }
}

/// Drains a link's queue onto its socket: the first packet waits for
/// nothing, the rest of its batch is what queued up meanwhile, as tonic's
/// `Batches` does.
async fn write_batches(mut wr: OwnedWriteHalf, mut rx: mpsc::UnboundedReceiver<QuorumPacket>) {
    let mut frame = Vec::new();
    while let Some(first) = rx.recv().await {
        let mut bytes = first.encoded_len();
        let mut packets = vec![first];
        while packets.len() < MAX_BATCH && bytes < MAX_BATCH_BYTES {
            match rx.try_recv() {
                Ok(p) => {
                    bytes += p.encoded_len();
                    packets.push(p);
                }
                Err(_) => break,
            }
        }
        stage_trace::packets(Direction::Out, &packets);
        let batch = QuorumBatch { packets };
        frame.clear();
        frame.extend_from_slice(&(batch.encoded_len() as u32).to_be_bytes());
        batch.encode(&mut frame).expect("a Vec grows");
        if wr.write_all(&frame).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quorum_transport::connect_tonic;
    use crate::quorum_transport::sasl_tests::{listener, LIMIT};
    use crate::quorum_transport::tests::packet;
    use zab_election::PeerTls;
    use zab_wire::proto::PacketType;
    use zab_wire::ServerId;

    const WITHIN: Duration = Duration::from_secs(5);

    /// A learner's link to `addr` with `security`, as `quorum::Peer`
    /// opens one.
    async fn open(addr: SocketAddr, security: &PeerSecurity) -> anyhow::Result<LeaderLink> {
        crate::quorum_transport::connect(ServerId(1), addr, WITHIN, LIMIT, security).await
    }

    fn is_tonic(link: &LeaderLink) -> bool {
        matches!(
            link.inbound.from,
            crate::quorum_transport::InboundFrom::Tonic(_)
        )
    }

    /// One self-signed certificate as every side's identity and CA.
    fn tls() -> PeerSecurity {
        use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};
        let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
        let (pem, key) = (cert.cert.pem(), cert.key_pair.serialize_pem());
        let identity = Identity::from_pem(&pem, &key);
        let ca = Certificate::from_pem(&pem);
        PeerSecurity {
            tls: Some(PeerTls {
                server: ServerTlsConfig::new()
                    .identity(identity.clone())
                    .client_ca_root(ca.clone()),
                client: ClientTlsConfig::new().ca_certificate(ca).identity(identity),
            }),
            sasl: None,
        }
    }

    /// The link the next `Opened` event reports, after checking that a
    /// packet sent on `link` arrives on it and one sent back arrives too.
    async fn carries(link: &mut LeaderLink, events: &mut mpsc::UnboundedReceiver<LinkEvent>) {
        let out = match events.recv().await {
            Some(LinkEvent::Opened { out, .. }) => out,
            other => panic!("{other:?}"),
        };
        link.out.send(packet(PacketType::Followerinfo, 7)).unwrap();
        match events.recv().await {
            Some(LinkEvent::Packets { packets, .. }) => assert_eq!(packets[0].zxid, 7),
            other => panic!("{other:?}"),
        }
        out.send(packet(PacketType::Leaderinfo, 8)).unwrap();
        let got = link.inbound.recv_batch().await.expect("the link stays up");
        assert_eq!(got[0].zxid, 8);
    }

    #[tokio::test]
    async fn plain_and_tonic_links_meet_on_one_port() {
        let (addr, server, mut events) = listener(&PeerSecurity::default()).await;
        let mut plain = connect(addr, WITHIN, LIMIT).await.expect("a plain link");
        assert!(matches!(
            plain.inbound.from,
            crate::quorum_transport::InboundFrom::Plain(_)
        ));
        carries(&mut plain, &mut events).await;
        let mut tonic = connect_tonic(ServerId(1), addr, WITHIN, LIMIT, &PeerSecurity::default())
            .await
            .expect("a tonic link");
        carries(&mut tonic, &mut events).await;
        server.abort();
    }

    /// A plain link would bypass `sslQuorum`: refused with the reason,
    /// and never reported; a TLS learner on the same port gets in.
    #[tokio::test]
    async fn a_tls_listener_refuses_a_plain_link_and_admits_tls() {
        let security = tls();
        let (addr, server, mut events) = listener(&security).await;
        let err = open(addr, &PeerSecurity::default())
            .await
            .err()
            .expect("refused");
        assert!(err.to_string().contains("sslQuorum"), "{err}");
        let mut link = open(addr, &security).await.expect("a TLS link");
        assert!(is_tonic(&link));
        carries(&mut link, &mut events).await;
        server.abort();
    }

    /// A leader of an earlier zab takes only tonic streams: it closes a
    /// plain link unanswered, and the learner opens a tonic stream instead.
    #[tokio::test]
    async fn a_learner_falls_back_to_tonic_with_a_leader_that_knows_only_tonic() {
        use crate::quorum_transport::Service;
        use zab_wire::proto::quorum_peer_server::QuorumPeerServer;
        let (tx, mut events) = crate::quorum_transport::tests::channel_sink();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let incoming =
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
        let service = Service {
            events: Arc::new(tx),
            next: Arc::new(AtomicU64::new(1)),
            security: PeerSecurity::default(),
        };
        let server = tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(QuorumPeerServer::new(service))
                .serve_with_incoming(incoming),
        );
        let mut link = open(addr, &PeerSecurity::default())
            .await
            .expect("a tonic link after the plain one went unanswered");
        assert!(is_tonic(&link));
        carries(&mut link, &mut events).await;
        server.abort();
    }

    /// Something that starts like a plain link but is not one is closed
    /// without a word, and never reported.
    #[tokio::test]
    async fn a_connection_with_the_wrong_magic_is_closed() {
        let (addr, server, mut events) = listener(&PeerSecurity::default()).await;
        let mut sock = TcpStream::connect(addr).await.unwrap();
        sock.write_all(b"ZZZZZZZZ").await.unwrap();
        let mut rest = Vec::new();
        let read = tokio::time::timeout(WITHIN, sock.read_to_end(&mut rest)).await;
        assert!(matches!(read, Ok(Ok(0))), "{read:?} {rest:?}");
        server.abort();
        let _ = server.await;
        while let Some(event) = events.recv().await {
            assert!(!matches!(event, LinkEvent::Opened { .. }), "{event:?}");
        }
    }

    /// A frame above the limit ends the link with the reason, before
    /// the leader reads it.
    #[tokio::test]
    async fn a_plain_frame_above_the_limit_ends_the_link() {
        let (addr, server, mut events) = listener(&PeerSecurity::default()).await;
        let mut sock = TcpStream::connect(addr).await.unwrap();
        sock.write_all(&MAGIC).await.unwrap();
        let mut answer = [0u8; MAGIC.len() + 1];
        sock.read_exact(&mut answer).await.unwrap();
        assert_eq!(answer[..MAGIC.len()], MAGIC);
        assert_eq!(answer[MAGIC.len()], ADMITTED);
        sock.write_all(&(LIMIT as u32 + 1).to_be_bytes())
            .await
            .unwrap();
        assert!(matches!(
            events.recv().await,
            Some(LinkEvent::Opened { .. })
        ));
        assert!(matches!(
            events.recv().await,
            Some(LinkEvent::Closed { .. })
        ));
        server.abort();
    }
}
