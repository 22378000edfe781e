//! TLS between servers (ZooKeeper's `sslQuorum`), for the election links
//! and the leader ⇄ learner links alike.
//!
//! zab terminates the TLS of its tonic links itself rather than through
//! tonic's own TLS settings, which cannot restrict the protocol versions
//! or cipher suites: with rustls configurations built by the server from
//! `ssl.quorum.protocol`, `ssl.quorum.enabledProtocols` and
//! `ssl.quorum.ciphersuites`, both ends of every link offer only what
//! those keys allow, as ZooKeeper's `X509Util` configures both ends of a
//! quorum socket.
//!
//! Both ends check the other's certificate against the peer as
//! ZooKeeper's `ZKTrustManager` and `ZKHostnameVerifier` do for a quorum
//! socket (`ssl.quorum.hostnameVerification`, on by default): an IP
//! address entry matching the peer's address, else a DNS name entry
//! matching the peer's host name (wildcards included), else, for a
//! certificate with no alternative names at all, its common name
//! (ZooKeeper's own quorum TLS recipe makes certificates with
//! `CN=$(hostname -f)` alone). The dialing end knows the listener's host
//! name from its `server.N` line; the listening end knows only the
//! dialer's address, and finds its name by a reverse lookup confirmed by a
//! forward one, as Java's `InetAddress.getHostName` does
//! (`ssl.quorum.allowReverseDnsLookup`, on by default for a quorum). The
//! chain is checked in the handshake ([`ChainOnly`], and rustls's client
//! verifier at the listener); the names once the handshake is done, so a
//! reverse lookup never stalls the runtime inside it.

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::codegen::http::Uri;
use tonic::codegen::Service;
use tonic::transport::server::{Connected, TcpConnectInfo};
use tonic::transport::{Channel, Endpoint};
use tracing::warn;

/// How long a link that was accepted has to finish its TLS handshake
/// before it is dropped, so that a peer that connects and says nothing
/// holds nothing for long.
pub const HANDSHAKE_WITHIN: Duration = Duration::from_secs(5);

/// TLS between servers: each end presents its certificate, and checks the
/// other's against the peer's names ([`NameCheck`]). A clone
/// shares its configurations: [`PeerTls::reload_from`] replaces them for
/// every clone at once (`sslQuorumReloadCertFiles`).
#[derive(Clone, Debug)]
pub struct PeerTls {
    current: Arc<std::sync::RwLock<Arc<Configs>>>,
}

/// The configurations one reading of the stores makes.
#[derive(Debug)]
struct Configs {
    /// The listening side: its identity, and the CAs a dialer's
    /// certificate must chain to (a certificate is required).
    server: Arc<rustls::ServerConfig>,
    /// The dialing side: its identity and the CAs ([`ChainOnly`]).
    client: Arc<rustls::ClientConfig>,
    /// `server` and `client` with HTTP/2 as their application protocol,
    /// for the tonic links (a tonic peer of an earlier zab asks for it).
    h2_server: Arc<rustls::ServerConfig>,
    h2_client: Arc<rustls::ClientConfig>,
    /// Whether and how a peer's certificate must name it.
    names: NameCheck,
}

/// Whether a peer's certificate must name the peer, beyond chaining to a
/// trusted CA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameCheck {
    /// `ssl.quorum.hostnameVerification=false`: the chain alone.
    Off,
    /// Its address or host name, at both ends of a link.
    On {
        /// `ssl.quorum.allowReverseDnsLookup`: a dialer whose certificate
        /// does not name its address may be named by the host name its
        /// address looks up to. Without it, only the address counts at
        /// the listening end.
        reverse_dns: bool,
    },
}

impl PeerTls {
    /// `server` must require a certificate that chains to the trusted CAs,
    /// and `client` must check the listener's chain with [`ChainOnly`]:
    /// `names` are checked once a handshake is done.
    pub fn new(
        server: rustls::ServerConfig,
        client: rustls::ClientConfig,
        names: NameCheck,
    ) -> PeerTls {
        let h2 = vec![b"h2".to_vec()];
        let mut h2_server = server.clone();
        h2_server.alpn_protocols = h2.clone();
        let mut h2_client = client.clone();
        h2_client.alpn_protocols = h2;
        let configs = Configs {
            server: Arc::new(server),
            client: Arc::new(client),
            h2_server: Arc::new(h2_server),
            h2_client: Arc::new(h2_client),
            names,
        };
        PeerTls {
            current: Arc::new(std::sync::RwLock::new(Arc::new(configs))),
        }
    }

    fn configs(&self) -> Arc<Configs> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// TLS on `sock`, a link a peer at `remote` dialed, with the plain
    /// links' configuration: the handshake, then the certificate's names.
    pub async fn accept_link<S>(&self, sock: S, remote: IpAddr) -> io::Result<TlsStream<S>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        self.accept_with(false, sock, remote).await
    }

    /// [`PeerTls::accept_link`] with the plain links' or (`h2`) the tonic
    /// links' configuration, as it is when the link comes.
    async fn accept_with<S>(&self, h2: bool, sock: S, remote: IpAddr) -> io::Result<TlsStream<S>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let configs = self.configs();
        let config = if h2 {
            &configs.h2_server
        } else {
            &configs.server
        };
        let stream = TlsAcceptor::from(config.clone()).accept(sock).await?;
        if let NameCheck::On { reverse_dns } = configs.names {
            let leaf = leaf_of(stream.get_ref().1).map(|c| c.clone().into_owned());
            check_dialer(leaf, remote, reverse_dns)
                .await
                .map_err(|e| not_for(&format!("the peer at {remote}"), e))?;
        }
        Ok(stream)
    }

    /// Takes `fresh`'s configurations (the stores read again): handshakes
    /// from now on, on every clone of this one, use them; links already
    /// open keep theirs.
    pub fn reload_from(&self, fresh: &PeerTls) {
        let configs = fresh.configs();
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = configs;
    }

    /// TLS on `sock` to the peer named `host` at `addr`, with the plain
    /// links' configuration: the handshake, then the certificate's names.
    pub async fn dial<S>(
        &self,
        host: &str,
        addr: SocketAddr,
        sock: S,
    ) -> io::Result<tokio_rustls::client::TlsStream<S>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        self.dial_with(false, host, addr, sock).await
    }

    /// [`PeerTls::dial`] with the plain links' or (`h2`) the tonic links'
    /// configuration.
    async fn dial_with<S>(
        &self,
        h2: bool,
        host: &str,
        addr: SocketAddr,
        sock: S,
    ) -> io::Result<tokio_rustls::client::TlsStream<S>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let configs = self.configs();
        let config = if h2 {
            &configs.h2_client
        } else {
            &configs.client
        };
        let stream = TlsConnector::from(config.clone())
            .connect(ServerName::from(addr.ip()), sock)
            .await?;
        if let NameCheck::On { .. } = configs.names {
            names_peer(leaf_of(stream.get_ref().1), addr.ip(), Some(host))
                .map_err(|e| not_for(&format!("{host} ({addr})"), e))?;
        }
        Ok(stream)
    }

    /// A tonic channel to `addr`, inside TLS if `tls` is set, opened
    /// within `timeout`.
    pub async fn connect(
        tls: Option<&PeerTls>,
        host: &str,
        addr: SocketAddr,
        timeout: Duration,
    ) -> Result<Channel, tonic::transport::Error> {
        let endpoint = Endpoint::from_shared(format!("http://{addr}"))?
            .connect_timeout(timeout)
            .tcp_nodelay(true);
        match tls {
            None => endpoint.connect().await,
            Some(tls) => {
                let dial = Dial {
                    host: host.into(),
                    addr,
                    tls: tls.clone(),
                };
                endpoint.connect_with_connector(dial).await
            }
        }
    }

    /// `incoming` connections once their TLS handshake is done, or (with
    /// `plain_too`) as they are if they do not open with one, for a tonic
    /// server's `serve_with_incoming`. Handshakes run side by side, so a
    /// slow peer holds up no other; one that fails or takes longer than
    /// [`HANDSHAKE_WITHIN`] is dropped with a warning. `incoming` is
    /// dropped (closing its listener) when the returned stream is.
    pub fn accept<S>(
        &self,
        incoming: S,
        plain_too: bool,
    ) -> impl Stream<Item = io::Result<PeerStream>>
    where
        S: Stream<Item = io::Result<TcpStream>> + Send + 'static,
    {
        let tls = self.clone();
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(async move {
            let mut incoming = std::pin::pin!(incoming);
            loop {
                let sock = tokio::select! {
                    () = tx.closed() => return,
                    next = incoming.next() => match next {
                        Some(Ok(sock)) => sock,
                        Some(Err(e)) => {
                            warn!(error = %e, "peer listener: accept failed");
                            continue;
                        }
                        None => return,
                    },
                };
                let (tls, tx) = (tls.clone(), tx.clone());
                tokio::spawn(async move {
                    let Ok(remote) = sock.peer_addr() else {
                        return;
                    };
                    let accept = async {
                        if plain_too && !opens_tls(&sock).await? {
                            return Ok(PeerStream::Plain(sock));
                        }
                        let stream = tls.accept_with(true, sock, remote.ip()).await?;
                        io::Result::Ok(PeerStream::Tls(Box::new(stream)))
                    };
                    match tokio::time::timeout(HANDSHAKE_WITHIN, accept).await {
                        Ok(Ok(stream)) => {
                            let _ = tx.send(Ok(stream)).await;
                        }
                        Ok(Err(e)) => warn!(%remote, error = %e, "peer link: refused"),
                        Err(_) => warn!(%remote, "peer link: no TLS handshake in time"),
                    }
                });
            }
        });
        ReceiverStream::new(rx)
    }
}

/// Whether the first byte `sock` brings is a TLS handshake record's, as
/// ZooKeeper's `UnifiedServerSocket` tells TLS from plain.
async fn opens_tls(sock: &TcpStream) -> io::Result<bool> {
    const HANDSHAKE_RECORD: u8 = 0x16;
    let mut first = [0u8; 1];
    match sock.peek(&mut first).await? {
        0 => Err(io::ErrorKind::UnexpectedEof.into()),
        _ => Ok(first[0] == HANDSHAKE_RECORD),
    }
}

/// A link a peer opened to a tonic listener: inside TLS, or plain where
/// the listener takes both (quorum `portUnification`).
pub enum PeerStream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for PeerStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            PeerStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            PeerStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for PeerStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            PeerStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            PeerStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            PeerStream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            PeerStream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            PeerStream::Plain(s) => s.is_write_vectored(),
            PeerStream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            PeerStream::Plain(s) => Pin::new(s).poll_flush(cx),
            PeerStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            PeerStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            PeerStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Either kind is a TCP connection, and tonic's requests see its addresses.
impl Connected for PeerStream {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        match self {
            PeerStream::Plain(s) => s.connect_info(),
            PeerStream::Tls(s) => s.get_ref().0.connect_info(),
        }
    }
}

/// The connector of a TLS tonic channel: TCP to the peer, then TLS, its
/// certificate checked for the peer's names.
#[derive(Clone)]
struct Dial {
    host: Arc<str>,
    addr: SocketAddr,
    tls: PeerTls,
}

impl Service<Uri> for Dial {
    type Response = TokioIo<tokio_rustls::client::TlsStream<TcpStream>>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Uri) -> Self::Future {
        let Dial { host, addr, tls } = self.clone();
        Box::pin(async move {
            let sock = TcpStream::connect(addr).await?;
            // As the plain links and tonic's own connector do: small
            // messages must not wait for Nagle.
            sock.set_nodelay(true)?;
            let stream = tls.dial_with(true, &host, addr, sock).await?;
            Ok(TokioIo::new(stream))
        })
    }
}

/// A server certificate verifier that checks the chain (and signatures) as
/// `inner` does but leaves the name to [`PeerTls`], which knows the peer's
/// host name as well as its address.
#[derive(Debug)]
pub struct ChainOnly(pub Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            // webpki checks the name only once the chain is good.
            Err(e) if not_for_name(&e) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

fn not_for_name(e: &rustls::Error) -> bool {
    matches!(
        e,
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }
        )
    )
}

/// The certificate the other end of a finished handshake presented.
fn leaf_of(conn: &rustls::CommonState) -> Option<&CertificateDer<'static>> {
    conn.peer_certificates().and_then(|c| c.first())
}

/// A link refused because the certificate of `peer` does not name it.
fn not_for(peer: &str, why: String) -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        format!("the certificate of {peer} is not for it: {why}"),
    )
}

/// Whether `leaf` is the certificate of the peer at `ip`, named `host`
/// where the name is known, as `ZKHostnameVerifier` decides: the address,
/// else the host name, each against the alternative names of their kind,
/// or the common name of a certificate that has none. The chain was
/// checked in the handshake.
fn names_peer(
    leaf: Option<&CertificateDer<'_>>,
    ip: IpAddr,
    host: Option<&str>,
) -> Result<(), String> {
    let leaf = leaf.ok_or("no certificate")?;
    let host = host.map(|h| h.trim_start_matches('[').trim_end_matches(']'));
    let cert = webpki::EndEntityCert::try_from(leaf).map_err(|e| e.to_string())?;
    let mut names = vec![ServerName::from(ip)];
    if let Some(name) = host.and_then(|h| ServerName::try_from(h.to_owned()).ok()) {
        names.push(name);
    }
    if names
        .iter()
        .any(|name| cert.verify_is_valid_for_subject_name(name).is_ok())
    {
        return Ok(());
    }
    // `ZKHostnameVerifier`: with no subjectAltName at all, the first CN.
    use x509_parser::prelude::{FromDer, X509Certificate};
    let (_, cert) = X509Certificate::from_der(leaf.as_ref()).map_err(|e| e.to_string())?;
    let has_alt_names = matches!(cert.subject_alternative_name(), Ok(Some(_)));
    let cn = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok());
    match cn {
        Some(cn) if !has_alt_names && cn_matches(cn, host, ip) => Ok(()),
        _ => Err(format!(
            "it names neither {ip} nor {} (subject {})",
            host.unwrap_or("a host name of it"),
            cert.subject()
        )),
    }
}

/// Whether `leaf` is the certificate of the peer that dialed from
/// `remote`: as `ZKTrustManager.performHostVerification` checks a quorum
/// socket's client, its address, else (with `reverse_dns`) the host name
/// its address looks up to. An IPv4 peer on a dual-stack listener is
/// checked as IPv4, as Java sees it.
async fn check_dialer(
    leaf: Option<CertificateDer<'static>>,
    remote: IpAddr,
    reverse_dns: bool,
) -> Result<(), String> {
    let remote = remote.to_canonical();
    let by_address = names_peer(leaf.as_ref(), remote, None);
    if by_address.is_ok() || !reverse_dns {
        return by_address;
    }
    // getnameinfo blocks, for as long as a resolver takes.
    let host = tokio::task::spawn_blocking(move || host_name_of(remote))
        .await
        .ok()
        .flatten();
    match host {
        Some(host) => names_peer(leaf.as_ref(), remote, Some(&host)),
        None => by_address.map_err(|e| format!("{e}; {remote} has no host name")),
    }
}

/// The host name `ip` looks up to, if that name looks up to `ip` again:
/// Java's `InetAddress.getHostName`, which falls back to the address
/// itself (no name) when the two lookups disagree. Answers are kept as
/// the JVM keeps them (`networkaddress.cache.ttl` 30 s, and 10 s for a
/// failure), so that a slow resolver is not asked again for every link a
/// peer opens.
fn host_name_of(ip: IpAddr) -> Option<String> {
    use std::collections::HashMap;
    use std::sync::{LazyLock, Mutex};
    use std::time::Instant;
    type Known = HashMap<IpAddr, (Instant, Option<String>)>;
    static KNOWN: LazyLock<Mutex<Known>> = LazyLock::new(Mutex::default);
    let now = Instant::now();
    let fresh = |(at, name): &(Instant, Option<String>)| {
        let ttl = if name.is_some() { 30 } else { 10 };
        now.duration_since(*at) < Duration::from_secs(ttl)
    };
    let lock = || KNOWN.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, name)) = lock().get(&ip).filter(|k| fresh(k)) {
        return name.clone();
    }
    let name = dns_lookup::lookup_addr(&ip).ok().filter(|name| {
        dns_lookup::lookup_host(name).is_ok_and(|back| back.iter().any(|a| a.to_canonical() == ip))
    });
    let mut known = lock();
    known.retain(|_, k| fresh(k));
    known.insert(ip, (now, name.clone()));
    name
}

/// A common name against the peer: the address as written, or the host
/// name (where known) with at most a leading `*.` wildcard for one label,
/// ignoring case (`ZKHostnameVerifier.matchIdentityStrict`).
fn cn_matches(cn: &str, host: Option<&str>, ip: IpAddr) -> bool {
    if cn.parse::<IpAddr>().is_ok_and(|a| a == ip) {
        return true;
    }
    let Some(host) = host else {
        return false;
    };
    let (cn, host) = (cn.to_ascii_lowercase(), host.to_ascii_lowercase());
    match cn.strip_prefix("*.") {
        Some(domain) => host
            .split_once('.')
            .is_some_and(|(label, rest)| !label.is_empty() && rest == domain),
        None => !host.is_empty() && cn == host,
    }
}

#[cfg(test)]
mod tests {
    use super::cn_matches;

    #[test]
    fn common_names_match_as_zookeepers_hostname_verifier() {
        let ip = "10.0.0.1".parse().unwrap();
        assert!(cn_matches("zk1.example.com", Some("ZK1.example.com"), ip));
        assert!(cn_matches("*.example.com", Some("zk1.example.com"), ip));
        assert!(!cn_matches("*.example.com", Some("a.zk1.example.com"), ip));
        assert!(!cn_matches("*.example.com", Some("example.com"), ip));
        assert!(cn_matches("10.0.0.1", Some("zk1"), ip));
        assert!(cn_matches("10.0.0.1", None, ip), "a dialer, by its address");
        assert!(!cn_matches("zk1.example.com", None, ip));
        assert!(!cn_matches("", None, ip));
        assert!(!cn_matches("zk2.example.com", Some("zk1.example.com"), ip));
    }
}
