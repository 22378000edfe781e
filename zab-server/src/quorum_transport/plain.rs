//! Plain learner links: the same `QuorumBatch` messages as the tonic
//! stream, each as a 4-byte big-endian length and its protobuf bytes, on
//! the TCP socket itself or inside TLS. Under set 32×8 they carried 9–19 %
//! more writes than HTTP/2 streams at 8–20 % less CPU per write
//! (BENCHMARKS.md, "the learner links without HTTP/2"): no HTTP/2
//! framing, and one task fewer between the socket and the core on each
//! side.
//!
//! Both kinds meet on the quorum port: the listener tells them apart by
//! the first byte (`Z` here, `P` for HTTP/2's preface, 0x16 for a TLS
//! handshake, which tonic terminates). A plain link opens with [`MAGIC`],
//! or, from a learner that authenticates (`quorum.auth.learnerRequireSasl`),
//! with [`SASL_MAGIC`] and the name of its mechanism. The listener answers
//! with the same magic and one verdict: admitted; authenticate, after which
//! the SASL exchange runs as QUORUM_AUTH packets in the link's frames,
//! exactly as on a tonic stream; or refused with the reason. It decides on
//! SASL as for a tonic stream (`quorum_auth::admit`: a learner that does not
//! authenticate to a listener with `quorum.auth.serverRequireSasl` is
//! refused).
//!
//! A learner with TLS towards its leader (`sslQuorum`) first sends
//! [`TLS_MAGIC`] in the clear; the listener echoes it with a verdict
//! (admitted, or refused when it has no TLS), the two run the TLS
//! handshake with the `sslQuorum` identities and CAs tonic's streams use,
//! and the link above opens inside it. The listener refuses a link
//! without TLS when it has TLS, as it would bypass `sslQuorum`, unless it
//! takes both (quorum `portUnification`).
//!
//! A leader of an earlier zab does not answer a magic it does not know
//! (before plain links: any; before SASL on them: [`SASL_MAGIC`]; before
//! TLS on them: [`TLS_MAGIC`]), and the learner opens a tonic stream
//! instead.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use prost::Message;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use zab_election::quorum_sasl;
use zab_election::PeerSecurity;
use zab_wire::proto::{QuorumBatch, QuorumPacket};
use zab_wire::quorum_auth::{self, Admission};
use zab_wire::ServerId;

use super::{
    log_verdict, Batcher, EventSink, LeaderLink, LinkEvent, LinkId, LinkSteps, StepSource,
};
use crate::stage_trace::{self, Direction};

/// What a plain link sends first.
pub(super) const MAGIC: [u8; 8] = *b"ZABLINK1";
/// What a plain link whose learner authenticates sends first, followed by
/// its mechanism's name: one length byte, then the name.
pub(super) const SASL_MAGIC: [u8; 8] = *b"ZABLINKS";
/// What a learner sends in the clear before the TLS handshake of a plain
/// link inside TLS.
pub(super) const TLS_MAGIC: [u8; 8] = *b"ZABLINKT";
/// How long an accepted connection may take to show what it is, and its
/// TLS handshake.
const FIRST_BYTES_WITHIN: Duration = Duration::from_secs(10);
/// The verdict's first byte.
const ADMITTED: u8 = 0;
const REFUSED: u8 = 1;
/// The SASL exchange follows, then the link's protocol.
const AUTHENTICATE: u8 = 2;
/// The longest refusal reason read.
const MAX_REASON: usize = 4096;
/// Read buffer per link.
const READ_BUFFER: usize = 64 * 1024;

/// A link's read side: a socket's, or a TLS stream's.
type LinkRead = Box<dyn AsyncRead + Send + Unpin>;
/// A link's write side.
type LinkWrite = Box<dyn AsyncWrite + Send + Unpin>;

/// A TLS stream's halves.
fn halves<S: AsyncRead + AsyncWrite + Send + 'static>(stream: S) -> (LinkRead, LinkWrite) {
    let (rd, wr) = tokio::io::split(stream);
    (Box::new(rd), Box::new(wr))
}

/// A socket as a TLS stream reads it: through a buffer, as rustls asks
/// for 4 KiB at a time, and a batch of proposals is tens of KiB.
fn under_tls(sock: TcpStream) -> BufReader<TcpStream> {
    BufReader::with_capacity(READ_BUFFER, sock)
}

/// A socket's halves, which need no lock between them.
fn socket_halves(sock: TcpStream) -> (LinkRead, LinkWrite) {
    let (rd, wr) = sock.into_split();
    (Box::new(rd), Box::new(wr))
}

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

/// How a plain link opened: the magic it sent, and the mechanism its
/// learner authenticates with, if it does.
struct Opening {
    magic: [u8; MAGIC.len()],
    mechanism: Option<String>,
}

/// Reads the rest of a plain link's opening, whose magic was `magic`;
/// `None` if it is not one.
async fn read_opening(rd: &mut BufReader<LinkRead>, magic: [u8; 8]) -> Option<Opening> {
    let mechanism = if magic == MAGIC {
        None
    } else if magic == SASL_MAGIC {
        let mut name = vec![0u8; usize::from(rd.read_u8().await.ok()?)];
        rd.read_exact(&mut name).await.ok()?;
        // A name that is not text names no mechanism this server has;
        // the exchange's first step says so.
        Some(String::from_utf8_lossy(&name).into_owned())
    } else {
        return None;
    };
    Some(Opening { magic, mechanism })
}

/// `magic` echoed and a refusal: why, for the learner.
fn refusal(magic: [u8; 8], why: &str) -> Vec<u8> {
    let mut answer = magic.to_vec();
    answer.push(REFUSED);
    answer.extend_from_slice(&(why.len() as u32).to_be_bytes());
    answer.extend_from_slice(why.as_bytes());
    answer
}

/// The reason after a refusal's verdict byte.
async fn read_refusal(rd: &mut (impl AsyncRead + Unpin)) -> std::io::Result<String> {
    let len = (rd.read_u32().await? as usize).min(MAX_REASON);
    let mut why = vec![0u8; len];
    rd.read_exact(&mut why).await?;
    Ok(String::from_utf8_lossy(&why).into_owned())
}

impl PlainListener {
    /// How a plain link whose learner named `mechanism` (if any) opens:
    /// as a tonic stream would, save that one without TLS (`over_tls`)
    /// would bypass `sslQuorum` (unless `portUnification` takes both).
    fn admission(&self, mechanism: Option<&str>, over_tls: bool) -> Admission {
        if !self.security.takes_plain() && !over_tls {
            return Admission::Refuse(
                "this server requires TLS on quorum links (sslQuorum)".into(),
            );
        }
        quorum_auth::admit(self.security.sasl.as_ref(), mechanism)
    }

    async fn serve(self, mut sock: TcpStream, remote: SocketAddr) {
        let mut magic = [0u8; MAGIC.len()];
        if !matches!(
            tokio::time::timeout(FIRST_BYTES_WITHIN, sock.read_exact(&mut magic)).await,
            Ok(Ok(_))
        ) {
            tracing::warn!(%remote, "quorum port: not a learner link, closed");
            return;
        }
        if magic != TLS_MAGIC {
            let (rd, wr) = socket_halves(sock);
            return self.serve_link(rd, wr, remote, magic, false).await;
        }
        let Some(tls) = self.security.accepting_tls() else {
            let why = "this server has no TLS between servers (sslQuorum)";
            tracing::warn!(%remote, "learner link refused: {why}");
            let _ = sock.write_all(&refusal(TLS_MAGIC, why)).await;
            return;
        };
        let mut answer = TLS_MAGIC.to_vec();
        answer.push(ADMITTED);
        if sock.write_all(&answer).await.is_err() {
            return;
        }
        let (rd, wr) = match tokio::time::timeout(FIRST_BYTES_WITHIN, async {
            let (mut rd, wr) = halves(tls.accept_link(under_tls(sock), remote.ip()).await?);
            let mut magic = [0u8; MAGIC.len()];
            rd.read_exact(&mut magic).await?;
            std::io::Result::Ok((rd, wr, magic))
        })
        .await
        {
            Ok(Ok((rd, wr, inner))) => {
                magic = inner;
                (rd, wr)
            }
            Ok(Err(e)) => {
                tracing::warn!(%remote, error = %e, "learner link: TLS refused");
                return;
            }
            Err(_) => {
                tracing::warn!(%remote, "learner link: no TLS handshake in time");
                return;
            }
        };
        self.serve_link(rd, wr, remote, magic, true).await
    }

    /// Serves a plain link that opened with `magic`, inside TLS if
    /// `over_tls`.
    async fn serve_link(
        self,
        rd: LinkRead,
        mut wr: LinkWrite,
        remote: SocketAddr,
        magic: [u8; 8],
        over_tls: bool,
    ) {
        let mut rd = BufReader::with_capacity(READ_BUFFER, rd);
        let opening =
            match tokio::time::timeout(FIRST_BYTES_WITHIN, read_opening(&mut rd, magic)).await {
                Ok(Some(opening)) => opening,
                _ => {
                    tracing::warn!(%remote, "quorum port: not a learner link, closed");
                    return;
                }
            };
        let mut answer = opening.magic.to_vec();
        let handshake = match self.admission(opening.mechanism.as_deref(), over_tls) {
            Admission::Refuse(why) => {
                tracing::warn!(%remote, "learner link refused: {why}");
                let _ = wr.write_all(&refusal(opening.magic, &why)).await;
                let _ = wr.flush().await;
                return;
            }
            Admission::Open => {
                answer.push(ADMITTED);
                None
            }
            Admission::Authenticate(handshake) => {
                answer.push(AUTHENTICATE);
                Some(handshake)
            }
        };
        if wr.write_all(&answer).await.is_err() || wr.flush().await.is_err() {
            return;
        }
        let link = LinkId(self.next.fetch_add(1, Ordering::Relaxed));
        let (out, out_rx) = mpsc::unbounded_channel();
        // The writer drains what is queued (a SASL refusal, say) once the
        // link's sender goes; only a leader dropping the link aborts it.
        let writer = tokio::spawn(write_batches(wr, out_rx));
        let (keep, mut dropped) = tokio::sync::oneshot::channel();
        let mut reader = PlainReader {
            rd,
            max_message: self.max_message,
        };
        let mut early = Vec::new();
        if let Some(handshake) = handshake {
            let mut steps = LinkSteps::new(&out, StepSource::Plain(&mut reader));
            let verdict = quorum_sasl::admit(handshake, &mut steps).await;
            early.extend(steps.queued);
            log_verdict(link, Some(remote), &verdict);
            if !verdict.keep {
                return;
            }
        }
        if !(self.events)(LinkEvent::Opened {
            link,
            remote: Some(remote),
            out,
            keep,
        }) {
            return;
        }
        if !early.is_empty()
            && !(self.events)(LinkEvent::Packets {
                link,
                packets: early,
            })
        {
            return;
        }
        let reason = loop {
            let next = tokio::select! {
                next = reader.next() => next,
                _ = &mut dropped => {
                    tracing::info!(?link, "learner link dropped; closing its socket");
                    writer.abort();
                    return;
                }
            };
            match next {
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

/// The first bytes of a plain link from a learner that authenticates
/// with `mechanism`, if it does.
fn opening(mechanism: Option<&str>) -> Vec<u8> {
    match mechanism {
        None => MAGIC.to_vec(),
        Some(name) => {
            let mut opening = SASL_MAGIC.to_vec();
            // Mechanism names are a few ASCII letters ("DIGEST-MD5",
            // "GSSAPI"); a longer one is cut and fails the exchange.
            let name = &name.as_bytes()[..name.len().min(usize::from(u8::MAX))];
            opening.push(name.len() as u8);
            opening.extend_from_slice(name);
            opening
        }
    }
}

/// The TLS layer of a plain link from a learner with `sslQuorum`: the
/// magic in the clear, the listener's verdict, then the handshake, in
/// which the learner checks the listener's certificate against `addr`.
async fn start_tls(
    mut sock: TcpStream,
    host: &str,
    addr: SocketAddr,
    tls: &zab_election::PeerTls,
) -> anyhow::Result<(LinkRead, LinkWrite)> {
    sock.write_all(&TLS_MAGIC).await?;
    let mut magic = [0u8; MAGIC.len()];
    sock.read_exact(&mut magic).await?;
    anyhow::ensure!(
        magic == TLS_MAGIC,
        "{addr} does not take plain links in TLS"
    );
    match sock.read_u8().await? {
        ADMITTED => {}
        REFUSED => {
            let why = read_refusal(&mut sock).await?;
            return Err(anyhow::Error::new(Refused(format!(
                "the learner link to {addr} was refused: {why}"
            ))));
        }
        verdict => anyhow::bail!("{addr} answered TLS with verdict {verdict}"),
    }
    let stream = tls.dial(host, addr, under_tls(sock)).await?;
    Ok(halves(stream))
}

/// Opens a plain link to the leader `peer` at `addr` within `timeout`,
/// inside TLS and authenticating first if `security` says this server
/// does; messages above `max_message` bytes break it.
pub(super) async fn connect(
    peer: ServerId,
    host: &str,
    addr: SocketAddr,
    timeout: Duration,
    max_message: usize,
    security: &PeerSecurity,
) -> anyhow::Result<LeaderLink> {
    let mechanism = security.opener_mechanism();
    let opened = async {
        let sock = TcpStream::connect(addr).await?;
        sock.set_nodelay(true)?;
        let (rd, mut wr) = match &security.tls {
            None => socket_halves(sock),
            Some(tls) => start_tls(sock, host, addr, tls).await?,
        };
        let hello = opening(mechanism);
        wr.write_all(&hello).await?;
        wr.flush().await?;
        let mut rd = BufReader::with_capacity(READ_BUFFER, rd);
        // The magic comes back first: an HTTP/2 server answers with its
        // SETTINGS frame, whose first byte would read as a verdict.
        let mut magic = [0u8; MAGIC.len()];
        rd.read_exact(&mut magic).await?;
        anyhow::ensure!(
            hello.starts_with(&magic),
            "{addr} does not take this plain link"
        );
        match (rd.read_u8().await?, mechanism) {
            (ADMITTED, None) | (AUTHENTICATE, Some(_)) => Ok((rd, wr)),
            (REFUSED, _) => {
                let why = read_refusal(&mut rd).await?;
                Err(anyhow::Error::new(Refused(format!(
                    "the learner link to {addr} was refused: {why}"
                ))))
            }
            (verdict, _) => anyhow::bail!("{addr} answered the plain link with verdict {verdict}"),
        }
    };
    let (rd, wr) = tokio::time::timeout(timeout, opened).await??;
    let (out, out_rx) = mpsc::unbounded_channel();
    tokio::spawn(write_batches(wr, out_rx));
    let mut reader = PlainReader { rd, max_message };
    let mut early = Vec::new();
    if mechanism.is_some() {
        let mut steps = LinkSteps::new(&out, StepSource::Plain(&mut reader));
        let authenticated = security.authenticate(peer, &mut steps).await;
        early.extend(steps.queued);
        // Final: a tonic stream would fail the same exchange.
        authenticated.map_err(|why| {
            anyhow::Error::new(Refused(format!("SASL authentication with {addr}: {why}")))
        })?;
    }
    Ok(LeaderLink {
        out,
        inbound: super::Inbound {
            from: super::InboundFrom::Plain(reader),
            early,
        },
    })
}

/// The listener answered a plain link and it cannot go on: refused, or
/// the learner failed the SASL exchange (as opposed to a listener that
/// does not answer at all, as a leader of an earlier zab that does not
/// know this kind of plain link does).
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
    rd: BufReader<LinkRead>,
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

/// Drains a link's queue onto its socket in [`Batcher`]'s batches, as
/// tonic's `Batches` does.
async fn write_batches(mut wr: LinkWrite, mut rx: mpsc::UnboundedReceiver<QuorumPacket>) {
    let mut frame = Vec::new();
    let mut batcher = Batcher::default();
    loop {
        let first = match batcher.take_held() {
            Some(p) => p,
            None => match rx.recv().await {
                Some(p) => p,
                None => return,
            },
        };
        let batch = QuorumBatch {
            packets: batcher.batch(first, &mut rx),
        };
        frame.clear();
        frame.extend_from_slice(&(batch.encoded_len() as u32).to_be_bytes());
        batch.encode(&mut frame).expect("a Vec grows");
        // A flush hands a TLS stream's records to the socket; on a socket
        // it does nothing.
        if wr.write_all(&frame).await.is_err() || wr.flush().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quorum_transport::connect_tonic;
    use crate::quorum_transport::sasl_tests::{listener, security as sasl, LIMIT};
    use crate::quorum_transport::tests::packet;
    use zab_wire::proto::PacketType;
    use zab_wire::ServerId;

    const WITHIN: Duration = Duration::from_secs(5);

    /// A learner's link to `addr` with `security`, as `quorum::Peer`
    /// opens one.
    async fn open(addr: SocketAddr, security: &PeerSecurity) -> anyhow::Result<LeaderLink> {
        crate::quorum_transport::connect(ServerId(1), "127.0.0.1", addr, WITHIN, LIMIT, security)
            .await
    }

    fn is_tonic(link: &LeaderLink) -> bool {
        matches!(
            link.inbound.from,
            crate::quorum_transport::InboundFrom::Tonic(_)
        )
    }

    /// One self-signed certificate for 127.0.0.1 as every side's identity
    /// and CA, read as `sslQuorum` reads its stores; each call makes a new
    /// one, which the others do not trust.
    fn tls() -> PeerSecurity {
        use crate::tls::{peer_tls, QuorumTlsConfig, Store};
        let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (key_store, trust_store) = (dir.path().join("key.pem"), dir.path().join("ca.pem"));
        let pem = cert.cert.pem();
        std::fs::write(
            &key_store,
            format!("{}{pem}", cert.key_pair.serialize_pem()),
        )
        .unwrap();
        std::fs::write(&trust_store, pem).unwrap();
        let store = |path: std::path::PathBuf| Store {
            location: Some(path),
            password: None,
            kind: Some("PEM".into()),
        };
        let cfg = QuorumTlsConfig {
            enabled: true,
            key_store: store(key_store),
            trust_store: store(trust_store),
            ..QuorumTlsConfig::default()
        };
        PeerSecurity {
            tls: peer_tls(&cfg).unwrap(),
            ..PeerSecurity::default()
        }
    }

    /// `tls()` with `sasl`'s SASL.
    fn tls_and(sasl: PeerSecurity) -> PeerSecurity {
        PeerSecurity {
            sasl: sasl.sasl,
            ..tls()
        }
    }

    /// Stops the listener, then checks that it never reported a link.
    async fn none_opened(
        server: tokio::task::JoinHandle<()>,
        mut events: mpsc::UnboundedReceiver<LinkEvent>,
    ) {
        server.abort();
        let _ = server.await;
        while let Some(event) = events.recv().await {
            assert!(!matches!(event, LinkEvent::Opened { .. }), "{event:?}");
        }
    }

    /// The link the next `Opened` event reports, after checking that a
    /// packet sent on `link` arrives on it and one sent back arrives too.
    async fn carries(link: &mut LeaderLink, events: &mut mpsc::UnboundedReceiver<LinkEvent>) {
        // The link lives while `_keep` does.
        let (out, _keep) = match events.recv().await {
            Some(LinkEvent::Opened { out, keep, .. }) => (out, keep),
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
        let mut plain = open(addr, &PeerSecurity::default())
            .await
            .expect("a plain link");
        assert!(matches!(
            plain.inbound.from,
            crate::quorum_transport::InboundFrom::Plain(_)
        ));
        carries(&mut plain, &mut events).await;
        let mut tonic = connect_tonic(
            ServerId(1),
            "127.0.0.1",
            addr,
            WITHIN,
            LIMIT,
            &PeerSecurity::default(),
        )
        .await
        .expect("a tonic link");
        carries(&mut tonic, &mut events).await;
        server.abort();
    }

    /// A plain link without TLS would bypass `sslQuorum`: refused with
    /// the reason, and never reported. A learner with TLS gets a plain
    /// link inside TLS, with SASL too; one of an earlier zab, a tonic
    /// stream, which the same TLS carries.
    #[tokio::test]
    async fn a_tls_listener_refuses_a_link_without_tls_and_admits_tls() {
        let security = tls_and(sasl(Some("pw"), true));
        let (addr, server, mut events) = listener(&security).await;
        let err = open(addr, &PeerSecurity::default())
            .await
            .err()
            .expect("refused");
        assert!(err.is::<Refused>(), "{err}");
        assert!(err.to_string().contains("sslQuorum"), "{err}");
        let learner = PeerSecurity {
            sasl: None,
            ..security.clone()
        };
        let err = open(addr, &learner).await.err().expect("refused");
        assert!(err.to_string().contains("serverRequireSasl"), "{err}");
        let mut link = open(addr, &security).await.expect("a TLS link");
        assert!(!is_tonic(&link));
        carries(&mut link, &mut events).await;
        let mut link = connect_tonic(ServerId(1), "127.0.0.1", addr, WITHIN, LIMIT, &security)
            .await
            .expect("a tonic stream in TLS");
        carries(&mut link, &mut events).await;
        server.abort();
    }

    /// Quorum `portUnification`: a listener takes plain links and links in
    /// TLS alike, whether its own links are TLS (`sslQuorum`) or not, so
    /// that a rolling restart moves an ensemble between the two. On plain
    /// links and tonic streams both.
    #[tokio::test]
    async fn a_unified_listener_takes_links_with_and_without_tls() {
        let secure = tls();
        for ssl_quorum in [false, true] {
            let unified = PeerSecurity {
                tls: secure.tls.clone().filter(|_| ssl_quorum),
                unified: secure.tls.clone(),
                sasl: None,
            };
            let (addr, server, mut events) = listener(&unified).await;
            // Each link is kept open: a closed one would be reported.
            let mut open_links = Vec::new();
            for learner in [PeerSecurity::default(), secure.clone()] {
                let with_tls = learner.tls.is_some();
                let mut link = open(addr, &learner)
                    .await
                    .unwrap_or_else(|e| panic!("sslQuorum={ssl_quorum}, TLS {with_tls}: {e}"));
                assert!(!is_tonic(&link));
                carries(&mut link, &mut events).await;
                open_links.push(link);
                let mut link =
                    connect_tonic(ServerId(1), "127.0.0.1", addr, WITHIN, LIMIT, &learner)
                        .await
                        .unwrap_or_else(|e| {
                            panic!("tonic, sslQuorum={ssl_quorum}, TLS {with_tls}: {e}")
                        });
                carries(&mut link, &mut events).await;
                open_links.push(link);
            }
            server.abort();
        }
    }

    /// A learner with TLS is refused by a listener without it, finally:
    /// it does not try again without TLS.
    #[tokio::test]
    async fn a_listener_without_tls_refuses_a_learner_with_it() {
        let (addr, server, events) = listener(&PeerSecurity::default()).await;
        let err = open(addr, &tls()).await.err().expect("refused");
        assert!(err.is::<Refused>(), "{err}");
        assert!(err.to_string().contains("no TLS"), "{err}");
        none_opened(server, events).await;
    }

    /// A learner whose certificate the listener's CAs do not vouch for
    /// (nor the learner the listener's) fails the handshake, on a plain
    /// link and then on a tonic stream, and is never reported.
    #[tokio::test]
    async fn a_learner_with_an_untrusted_certificate_is_not_admitted() {
        let (addr, server, events) = listener(&tls()).await;
        let err = open(addr, &tls()).await.err().expect("not admitted");
        assert!(!err.is::<Refused>(), "{err}");
        none_opened(server, events).await;
    }

    /// A leader of an earlier zab takes only tonic streams: it closes a
    /// plain link unanswered, and the learner opens a tonic stream instead,
    /// with TLS and SASL or without.
    #[tokio::test]
    async fn a_learner_falls_back_to_tonic_with_a_leader_that_knows_only_tonic() {
        use crate::quorum_transport::Service;
        use zab_wire::proto::quorum_peer_server::QuorumPeerServer;
        let secure = tls_and(sasl(Some("pw"), true));
        for (leader, learner) in [
            (PeerSecurity::default(), PeerSecurity::default()),
            (sasl(None, true), sasl(Some("pw"), false)),
            (secure.clone(), secure),
        ] {
            let (tx, mut events) = crate::quorum_transport::tests::channel_sink();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let incoming =
                tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
            let service = Service {
                events: Arc::new(tx),
                next: Arc::new(AtomicU64::new(1)),
                security: leader,
            };
            // A leader of an earlier zab, which knows only tonic streams.
            let tls = service.security.tls.clone();
            let router =
                tonic::transport::Server::builder().add_service(QuorumPeerServer::new(service));
            let server = tokio::spawn(async move {
                match &tls {
                    None => router.serve_with_incoming(incoming).await,
                    Some(tls) => {
                        router
                            .serve_with_incoming(tls.accept(incoming, false))
                            .await
                    }
                }
            });
            let mut link = open(addr, &learner)
                .await
                .expect("a tonic link after the plain one went unanswered");
            assert!(is_tonic(&link));
            carries(&mut link, &mut events).await;
            server.abort();
        }
    }

    /// A learner that authenticates gets a plain link too: the exchange
    /// runs in the link's frames, and the link carries packets after it.
    #[tokio::test]
    async fn a_learner_that_authenticates_gets_a_plain_link() {
        for required in [true, false] {
            let (addr, server, mut events) = listener(&sasl(None, required)).await;
            let mut link = open(addr, &sasl(Some("pw"), false))
                .await
                .expect("authenticated");
            assert!(!is_tonic(&link));
            carries(&mut link, &mut events).await;
            server.abort();
        }
    }

    /// A failed exchange on a plain link is final: the learner does not
    /// try it again on a tonic stream, and the leader never reports the
    /// link. So is a listener without SASL refusing a learner with it.
    #[tokio::test]
    async fn a_failed_exchange_or_a_listener_without_sasl_is_final() {
        let (addr, server, events) = listener(&sasl(None, true)).await;
        let err = open(addr, &sasl(Some("guess"), false))
            .await
            .err()
            .expect("a wrong password fails");
        assert!(err.is::<Refused>(), "{err}");
        assert!(err.to_string().contains("SASL authentication"), "{err}");
        none_opened(server, events).await;
        let (addr, server, _events) = listener(&PeerSecurity::default()).await;
        let err = open(addr, &sasl(Some("pw"), false))
            .await
            .err()
            .expect("refused");
        assert!(err.is::<Refused>(), "{err}");
        assert!(err.to_string().contains("quorum.auth.enableSasl"), "{err}");
        server.abort();
    }

    /// An opening cut short inside the mechanism's name is closed without
    /// a word, and never reported.
    #[tokio::test]
    async fn a_truncated_sasl_opening_is_closed() {
        let (addr, server, events) = listener(&sasl(None, true)).await;
        let mut sock = TcpStream::connect(addr).await.unwrap();
        sock.write_all(&SASL_MAGIC).await.unwrap();
        sock.write_all(&[10, b'D', b'I']).await.unwrap();
        sock.shutdown().await.unwrap();
        let mut rest = Vec::new();
        let read = tokio::time::timeout(WITHIN, sock.read_to_end(&mut rest)).await;
        assert!(matches!(read, Ok(Ok(0))), "{read:?} {rest:?}");
        none_opened(server, events).await;
    }

    /// Something that starts like a plain link but is not one is closed
    /// without a word, and never reported.
    #[tokio::test]
    async fn a_connection_with_the_wrong_magic_is_closed() {
        let (addr, server, events) = listener(&PeerSecurity::default()).await;
        let mut sock = TcpStream::connect(addr).await.unwrap();
        sock.write_all(b"ZZZZZZZZ").await.unwrap();
        let mut rest = Vec::new();
        let read = tokio::time::timeout(WITHIN, sock.read_to_end(&mut rest)).await;
        assert!(matches!(read, Ok(Ok(0))), "{read:?} {rest:?}");
        none_opened(server, events).await;
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
        // Held, as the leader holds it: dropped, it would close the link.
        let opened = events.recv().await;
        assert!(matches!(opened, Some(LinkEvent::Opened { .. })));
        assert!(matches!(
            events.recv().await,
            Some(LinkEvent::Closed { .. })
        ));
        drop(opened);
        server.abort();
    }

    /// A link the leader drops closes at once, inside TLS too, where
    /// dropping the write half of a split stream closes nothing: the
    /// learner's read fails instead of waiting out its syncLimit, as
    /// ZooKeeper's `LearnerHandler.shutdown` closes the socket.
    #[tokio::test]
    async fn a_link_the_leader_drops_closes_at_once() {
        for security in [PeerSecurity::default(), tls()] {
            let (addr, server, mut events) = listener(&security).await;
            let mut link = open(addr, &security).await.expect("a link");
            let (out, keep) = match events.recv().await {
                Some(LinkEvent::Opened { out, keep, .. }) => (out, keep),
                other => panic!("{other:?}"),
            };
            out.send(packet(PacketType::Leaderinfo, 8)).unwrap();
            assert_eq!(link.inbound.recv_batch().await.unwrap()[0].zxid, 8);
            // The leader drops the learner: its sender and its keep go.
            drop((out, keep));
            let closed = tokio::time::timeout(WITHIN, link.inbound.recv_batch()).await;
            assert!(
                matches!(closed, Ok(Err(_))),
                "tls {}: {closed:?}",
                security.tls.is_some()
            );
            server.abort();
        }
    }
}
