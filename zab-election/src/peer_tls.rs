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

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::codegen::http::Uri;
use tonic::codegen::Service;
use tonic::transport::{Channel, Endpoint};
use tracing::warn;

/// How long a link that was accepted has to finish its TLS handshake
/// before it is dropped, so that a peer that connects and says nothing
/// holds nothing for long.
pub const HANDSHAKE_WITHIN: Duration = Duration::from_secs(5);

/// TLS between servers: each end presents its certificate, and the
/// dialing end checks the listener's against the peer's address.
#[derive(Clone, Debug)]
pub struct PeerTls {
    /// The listening side: its identity, and the CAs a dialer's
    /// certificate must chain to (a certificate is required).
    pub server: Arc<rustls::ServerConfig>,
    /// The dialing side: its identity and the CAs; the name verified is
    /// the peer's address.
    pub client: Arc<rustls::ClientConfig>,
    /// `server` and `client` with HTTP/2 as their application protocol,
    /// for the tonic links (a tonic peer of an earlier zab asks for it).
    h2_server: Arc<rustls::ServerConfig>,
    h2_client: Arc<rustls::ClientConfig>,
}

impl PeerTls {
    pub fn new(server: rustls::ServerConfig, client: rustls::ClientConfig) -> PeerTls {
        let h2 = vec![b"h2".to_vec()];
        let mut h2_server = server.clone();
        h2_server.alpn_protocols = h2.clone();
        let mut h2_client = client.clone();
        h2_client.alpn_protocols = h2;
        PeerTls {
            server: Arc::new(server),
            client: Arc::new(client),
            h2_server: Arc::new(h2_server),
            h2_client: Arc::new(h2_client),
        }
    }

    /// A tonic channel to `addr`, inside TLS if `tls` is set, opened
    /// within `timeout`.
    pub async fn connect(
        tls: Option<&PeerTls>,
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
                    addr,
                    tls: TlsConnector::from(tls.h2_client.clone()),
                };
                endpoint.connect_with_connector(dial).await
            }
        }
    }

    /// `incoming` connections once their TLS handshake is done, for a
    /// tonic server's `serve_with_incoming`. Handshakes run side by side,
    /// so a slow peer holds up no other; one that fails or takes longer
    /// than [`HANDSHAKE_WITHIN`] is dropped with a warning. `incoming` is
    /// dropped (closing its listener) when the returned stream is.
    pub fn accept<S>(&self, incoming: S) -> impl Stream<Item = io::Result<TlsStream<TcpStream>>>
    where
        S: Stream<Item = io::Result<TcpStream>> + Send + 'static,
    {
        let acceptor = TlsAcceptor::from(self.h2_server.clone());
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
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    let remote = sock.peer_addr().ok();
                    match tokio::time::timeout(HANDSHAKE_WITHIN, acceptor.accept(sock)).await {
                        Ok(Ok(stream)) => {
                            let _ = tx.send(Ok(stream)).await;
                        }
                        Ok(Err(e)) => warn!(?remote, error = %e, "peer link: TLS handshake failed"),
                        Err(_) => warn!(?remote, "peer link: no TLS handshake in time"),
                    }
                });
            }
        });
        ReceiverStream::new(rx)
    }
}

/// The connector of a TLS tonic channel: TCP to the peer, then TLS with
/// the peer's address as the name its certificate must carry.
#[derive(Clone)]
struct Dial {
    addr: SocketAddr,
    tls: TlsConnector,
}

impl Service<Uri> for Dial {
    type Response = TokioIo<tokio_rustls::client::TlsStream<TcpStream>>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Uri) -> Self::Future {
        let Dial { addr, tls } = self.clone();
        Box::pin(async move {
            let sock = TcpStream::connect(addr).await?;
            // As the plain links and tonic's own connector do: small
            // messages must not wait for Nagle.
            sock.set_nodelay(true)?;
            let stream = tls.connect(ServerName::from(addr.ip()), sock).await?;
            Ok(TokioIo::new(stream))
        })
    }
}
