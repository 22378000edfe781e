//! The TLS client port (`secureClientPort`) end to end. ZooKeeper's own
//! `zkCli.sh` connects over TLS with a client certificate, and the `x509`
//! identity the certificate gives decides ACLs as on ZooKeeper; clients
//! without a trusted certificate, or without TLS, are refused. The
//! certificates are made afresh by every run.
//!
//! Between servers (`sslQuorum`) a zab ensemble elects and replicates over
//! TLS and its peer ports speak nothing else; that part is zab's own (zab
//! servers do not talk to ZooKeeper's).
//!
//! `ZAB_TEST_TARGET=zookeeper` runs the client tests against ZooKeeper 3.8, whose
//! TLS needs its Netty connection factory (set in the zoo.cfg below, which
//! zab accepts as it is).

#[path = "support/cluster.rs"]
mod cluster;
mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use cluster::{ClusterSpec, ServerCommand, TestCluster};
use support::zkcli::{self, assert_lines_in_order, NETTY_CLASS_PATH};
use support::{bounded, free_port, TestServer};

/// The client certificate's subject, in the order it is encoded; Java
/// prints it last RDN first, with the comma escaped.
const CLIENT_SUBJECT: &[(DnType, &str)] = &[
    (DnType::OrganizationName, "zab, test"),
    (DnType::CommonName, "client one"),
];
const CLIENT_ID: &str = "CN=client one,O=zab\\, test";

/// A CA, the server's key store and two clients' key stores (PEM files):
/// one signed by the CA, one by a CA the server does not trust.
struct Pki {
    dir: TempDir,
    client: Identity,
    stranger: Identity,
    /// The CA, to sign a server certificate anew (`client.certReload`).
    ca: rcgen::Certificate,
    ca_key: KeyPair,
}

/// A key store file, and its certificate and key for a Rust client.
struct Identity {
    key_store: PathBuf,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().expect("temp dir");
        let ca_key = KeyPair::generate().expect("CA key");
        let ca = ca_params("zab test CA").self_signed(&ca_key).expect("CA");
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).expect("write CA");

        write_server_key_store(dir.path(), "localhost", &ca, &ca_key);

        let issue = |name: &str, subject: &[(DnType, &str)], ca: &rcgen::Certificate, ca_key| {
            let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
            params.distinguished_name = DistinguishedName::new();
            for (ty, value) in subject {
                params.distinguished_name.push(ty.clone(), *value);
            }
            let key = KeyPair::generate().expect("client key");
            let cert = params
                .signed_by(&key, ca, ca_key)
                .expect("client certificate");
            let key_store = dir.path().join(format!("{name}.pem"));
            std::fs::write(&key_store, format!("{}{}", key.serialize_pem(), cert.pem()))
                .expect("write client key store");
            Identity {
                key_store,
                chain: vec![cert.der().clone()],
                key: PrivateKeyDer::try_from(key.serialize_der()).expect("client key DER"),
            }
        };
        let client = issue("client", CLIENT_SUBJECT, &ca, &ca_key);
        let other_key = KeyPair::generate().expect("other CA key");
        let other = ca_params("another CA")
            .self_signed(&other_key)
            .expect("other CA");
        let stranger = issue("stranger", CLIENT_SUBJECT, &other, &other_key);
        Pki {
            dir,
            client,
            stranger,
            ca,
            ca_key,
        }
    }

    /// Writes the server's key store anew, its certificate named `cn`;
    /// the certificate's DER.
    fn reissue_server(&self, cn: &str) -> Vec<u8> {
        write_server_key_store(self.dir.path(), cn, &self.ca, &self.ca_key)
    }

    /// A 3-node ensemble with `sslQuorum` on these stores and `more`
    /// settings, serving, and its leader's index: a zkCli write of `path`
    /// through node 0 reads back through node 2 after a sync.
    fn ssl_quorum_ensemble(&self, more: &str, path: &str) -> (TestCluster, usize) {
        let mut spec = ClusterSpec::new(ServerCommand::binary(env!("CARGO_BIN_EXE_zab-server")), 3);
        spec.extra_cfg = format!(
            "sslQuorum=true\nssl.quorum.keyStore.location={}\n\
             ssl.quorum.trustStore.location={}\n{more}",
            self.dir.path().join("server.pem").display(),
            self.ca().display()
        );
        let mut ensemble = TestCluster::start(spec);
        let leader = ensemble.wait_until_serving(Duration::from_secs(60));
        let write = zkcli::run(
            &ensemble.connect_string_of(0),
            &format!("create {path} replicated"),
            &[],
        );
        assert_lines_in_order(&write, &[&format!("Created {path}")]);
        let read = zkcli::run(
            &ensemble.connect_string_of(2),
            &format!("sync /\nget {path}"),
            &[],
        );
        assert_lines_in_order(&read, &["replicated"]);
        (ensemble, leader)
    }

    fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The servers' own identity (`server.pem`: `localhost` and
    /// 127.0.0.1), as a peer of the ensemble presents it.
    fn server_identity(&self) -> Identity {
        let key_store = self.dir.path().join("server.pem");
        let pem = std::fs::read(&key_store).expect("read the server key store");
        let chain = rustls_pemfile::certs(&mut pem.as_slice())
            .collect::<Result<Vec<_>, _>>()
            .expect("certificates");
        let key = rustls_pemfile::private_key(&mut pem.as_slice())
            .expect("key")
            .expect("a key");
        Identity {
            key_store,
            chain,
            key,
        }
    }

    /// zoo.cfg lines for a TLS port on `port`; `more` adds or overrides.
    /// No `authProvider.x509`: a secure port brings the x509 provider by
    /// itself, as ZooKeeper's `configureSSLAuth`.
    fn server_cfg(&self, port: u16, more: &str) -> String {
        format!(
            "secureClientPort={port}\n\
             secureClientPortAddress=127.0.0.1\n\
             serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory\n\
             ssl.keyStore.location={}\n\
             ssl.keyStore.type=PEM\n\
             ssl.trustStore.location={}\n\
             ssl.trustStore.type=PEM\n\
             {more}",
            self.dir.path().join("server.pem").display(),
            self.ca().display(),
        )
    }

    /// `CLIENT_JVMFLAGS` for a zkCli over TLS, with `key_store` as its
    /// certificate if given (ZooKeeper's client settings for TLS).
    fn zkcli_flags(&self, key_store: Option<&Path>) -> Vec<String> {
        let mut flags = vec![
            "-cp".to_owned(),
            NETTY_CLASS_PATH.to_owned(),
            "-Dzookeeper.clientCnxnSocket=org.apache.zookeeper.ClientCnxnSocketNetty".to_owned(),
            "-Dzookeeper.client.secure=true".to_owned(),
            format!(
                "-Dzookeeper.ssl.trustStore.location={}",
                self.ca().display()
            ),
            "-Dzookeeper.ssl.trustStore.type=PEM".to_owned(),
        ];
        if let Some(k) = key_store {
            flags.push(format!("-Dzookeeper.ssl.keyStore.location={}", k.display()));
            flags.push("-Dzookeeper.ssl.keyStore.type=PEM".to_owned());
        }
        flags
    }
}

/// The server's key store in `dir` (`server.pem`): a certificate for
/// localhost and 127.0.0.1 named `cn`, signed by `ca`; its DER.
fn write_server_key_store(
    dir: &Path,
    cn: &str,
    ca: &rcgen::Certificate,
    ca_key: &KeyPair,
) -> Vec<u8> {
    let mut params = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
        .expect("server params");
    params.distinguished_name.push(DnType::CommonName, cn);
    let key = KeyPair::generate().expect("server key");
    let cert = params
        .signed_by(&key, ca, ca_key)
        .expect("server certificate");
    // Written whole and renamed into place, as tools that rotate
    // certificates do: the server never reads half a file.
    let tmp = dir.join("server.pem.new");
    std::fs::write(&tmp, format!("{}{}", key.serialize_pem(), cert.pem()))
        .expect("write server key store");
    std::fs::rename(&tmp, dir.join("server.pem")).expect("move the key store into place");
    cert.der().to_vec()
}

fn ca_params(name: &str) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params
}

fn secure(port: u16) -> String {
    format!("127.0.0.1:{port}")
}

/// Starts a server with a TLS port on `port` and waits until that port
/// accepts: ZooKeeper opens it after the plain port the harness polls.
fn start(pki: &Pki, port: u16, more: &str) -> TestServer {
    let server = TestServer::start(&pki.server_cfg(port, more));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the TLS port {port} never opened\n{}",
            server.output()
        );
        std::thread::sleep(Duration::from_millis(25));
    }
    server
}

/// zkCli over TLS with a certificate: its session is the certificate's
/// `x509` identity (whoami), `auth` ACLs expand to it, and it is what lets
/// the same certificate back in (after an `addauth x509` too), while a
/// plain connection is refused by the ACL. `conf` names the secure port.
#[test]
fn zkcli_over_tls_is_its_certificates_x509_identity() {
    let pki = Pki::new();
    let port = free_port();
    let server = start(&pki, port, "");
    let with_cert = pki.zkcli_flags(Some(&pki.client.key_store));
    let output = zkcli::run(
        &secure(port),
        "create /tls hello\nget /tls\nwhoami\nsetAcl /tls auth::cdrwa\ngetAcl /tls",
        &with_cert,
    );
    let x509_line = format!("x509: {CLIENT_ID}");
    // zkCli's getAcl prints an id's commas as `%2C`.
    let acl_line = format!("'x509,'{}", CLIENT_ID.replace(',', "%2C"));
    assert_lines_in_order(
        &output,
        &[
            "Created /tls",
            "hello",
            "Auth scheme: User",
            // In ZooKeeper's order of the identity set.
            &x509_line,
            "ip: 127.0.0.1",
            &acl_line,
            ": cdrwa",
        ],
    );

    let plain = zkcli::run(&server.connect_string(), "get /tls", &[]);
    assert_lines_in_order(&plain, &["Insufficient permission : /tls"]);
    // `addauth x509` checks the certificate again: the session goes on.
    let again = zkcli::run(&secure(port), "addauth x509 again\nget /tls", &with_cert);
    assert_lines_in_order(&again, &["hello"]);
    assert!(!again.contains("AuthFailed"), "{again}");

    let conf = server.four_letter_word("conf").expect("conf");
    assert!(
        conf.lines()
            .any(|l| l == format!("secureClientPort={port}")),
        "{conf}"
    );
}

/// `ssl.clientAuth=want`: a client without a certificate is served, with
/// no `x509` identity.
#[test]
fn with_client_auth_wanted_a_client_without_a_certificate_is_served() {
    let pki = Pki::new();
    let port = free_port();
    let _server = start(&pki, port, "ssl.clientAuth=want\n");
    let output = zkcli::run(
        &secure(port),
        "create /anon x\nwhoami",
        &pki.zkcli_flags(None),
    );
    assert_lines_in_order(
        &output,
        &["Created /anon", "Auth scheme: User", "ip: 127.0.0.1"],
    );
    assert!(!output.contains("x509:"), "{output}");
}

/// A ConnectRequest, sent after the TLS handshake if there is one: whether
/// the server answered it. The handshake may fail on the client's side
/// (TLS 1.2 refuses a missing certificate in the handshake) or the server
/// may close right after it; both count as refused.
async fn served(port: u16, tls: Option<Option<&Identity>>, ca: &Path) -> bool {
    #[allow(deprecated)]
    let ring = rustls::crypto::ring::default_provider();
    served_with(port, tls, ca, ring).await
}

/// As [`served`], the client offering what `provider` has.
async fn served_with(
    port: u16,
    tls: Option<Option<&Identity>>,
    ca: &Path,
    provider: rustls::crypto::CryptoProvider,
) -> bool {
    let tcp = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let connect = support::raw::connect_request(30_000, 0, &[0; 16]).frame();
    let Some(identity) = tls else {
        return answered(tcp, &connect).await;
    };
    let provider = Arc::new(provider);
    let mut roots = rustls::RootCertStore::empty();
    let ca_pem = std::fs::read(ca).expect("read CA");
    for cert in rustls_pemfile::certs(&mut ca_pem.as_slice()) {
        roots.add(cert.expect("CA PEM")).expect("add CA");
    }
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots);
    let config = match identity {
        Some(id) => config
            .with_client_auth_cert(id.chain.clone(), id.key.clone_key())
            .expect("client certificate"),
        None => config.with_no_client_auth(),
    };
    let name = ServerName::try_from("127.0.0.1").expect("server name");
    match TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
    {
        Ok(stream) => answered(stream, &connect).await,
        Err(_) => false,
    }
}

async fn answered(
    mut stream: impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    request: &[u8],
) -> bool {
    if stream.write_all(request).await.is_err() || stream.flush().await.is_err() {
        return false;
    }
    // A ConnectResponse is 36 or 37 bytes; a TLS alert the server sends
    // before closing does not read as one.
    let read = async {
        let mut len = [0u8; 4];
        stream.read_exact(&mut len).await?;
        let len = i32::from_be_bytes(len);
        if !(36..=37).contains(&len) {
            return Ok(false);
        }
        let mut body = vec![0; len as usize];
        stream.read_exact(&mut body).await?;
        Ok::<_, std::io::Error>(true)
    };
    match tokio::time::timeout(Duration::from_secs(10), read).await {
        Ok(Ok(answered)) => answered,
        Ok(Err(_)) => false,
        Err(_) => panic!("the server neither answered nor closed"),
    }
}

/// With ZooKeeper's default `ssl.clientAuth` (NEED) only a certificate the
/// trust store vouches for gets a session; so does nothing that does not
/// speak TLS. A certificate with no x509 provider configured is refused
/// too (ZooKeeper's `CertificateVerifier`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_without_a_trusted_certificate_are_refused() {
    bounded(async {
        let pki = Pki::new();
        let port = free_port();
        let _server = start(&pki, port, "");
        let ca = pki.ca();
        assert!(
            served(port, Some(Some(&pki.client)), &ca).await,
            "the trusted client"
        );
        assert!(!served(port, Some(None), &ca).await, "no certificate");
        assert!(
            !served(port, Some(Some(&pki.stranger)), &ca).await,
            "a certificate from another CA"
        );
        assert!(!served(port, None, &ca).await, "no TLS");

        let port = free_port();
        let _server = start(&pki, port, "authProvider.x509=\n");
        assert!(
            !served(port, Some(Some(&pki.client)), &ca).await,
            "a certificate without the x509 provider"
        );
    })
    .await;
}

/// `ssl.ciphersuites` limits what the server accepts: a client offering
/// only another suite is refused, one offering the listed suite served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_listed_cipher_suites_are_accepted() {
    bounded(async {
        let pki = Pki::new();
        let port = free_port();
        let _server = start(
            &pki,
            port,
            "ssl.ciphersuites=TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384\n",
        );
        #[allow(deprecated)]
        let offering = |name: &str| {
            let mut ring = rustls::crypto::ring::default_provider();
            ring.cipher_suites
                .retain(|s| s.suite().as_str() == Some(name));
            assert_eq!(ring.cipher_suites.len(), 1, "{name}");
            ring
        };
        let ca = pki.ca();
        let client = Some(Some(&pki.client));
        assert!(
            served_with(
                port,
                client,
                &ca,
                offering("TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384")
            )
            .await,
            "the listed suite"
        );
        assert!(
            !served_with(
                port,
                client,
                &ca,
                offering("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256")
            )
            .await,
            "another suite"
        );
    })
    .await;
}

/// The certificate the TLS port at `addr` presents to a client with
/// `identity`.
async fn served_certificate(addr: std::net::SocketAddr, pki: &Pki, identity: &Identity) -> Vec<u8> {
    #[allow(deprecated)]
    let provider = rustls::crypto::ring::default_provider();
    let stream = tls_connect(addr, pki, identity, provider, rustls::DEFAULT_VERSIONS)
        .await
        .expect("TLS handshake");
    stream
        .get_ref()
        .1
        .peer_certificates()
        .expect("a server certificate")[0]
        .to_vec()
}

/// `client.certReload=true` (ZooKeeper 3.8.1's): a key store rotated in
/// place is read again, and later handshakes present the new certificate,
/// as when cert-manager renews it; the server is not restarted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_certificate_is_served_with_cert_reload() {
    if support::target() == support::Target::ZooKeeper {
        eprintln!("skipped: Debian's ZooKeeper 3.8.0 has no client.certReload (3.8.1)");
        return;
    }
    bounded(async {
        let pki = Pki::new();
        let port = free_port();
        let _server = start(&pki, port, "client.certReload=true\n");
        let addr = ([127, 0, 0, 1], port).into();
        let first = served_certificate(addr, &pki, &pki.client).await;
        let rotated = pki.reissue_server("rotated");
        assert_ne!(first, rotated);
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while served_certificate(addr, &pki, &pki.client).await != rotated {
            assert!(
                std::time::Instant::now() < deadline,
                "the rotated certificate was never served"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
}

/// Whether a TLS client with `identity` completes a handshake at `addr`.
async fn tls_handshake(addr: std::net::SocketAddr, pki: &Pki, identity: &Identity) -> bool {
    #[allow(deprecated)]
    let provider = rustls::crypto::ring::default_provider();
    tls_handshake_offering(addr, pki, identity, provider, rustls::DEFAULT_VERSIONS).await
}

/// Whether a TLS client with `identity`, offering only `provider`'s suites
/// and `versions`, completes a handshake at `addr`.
async fn tls_handshake_offering(
    addr: std::net::SocketAddr,
    pki: &Pki,
    identity: &Identity,
    provider: rustls::crypto::CryptoProvider,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> bool {
    tls_connect(addr, pki, identity, provider, versions)
        .await
        .is_ok()
}

/// A TLS client with `identity`, trusting `pki`'s CA and offering
/// `provider`'s suites and `versions`, connected to `addr`.
async fn tls_connect(
    addr: std::net::SocketAddr,
    pki: &Pki,
    identity: &Identity,
    provider: rustls::crypto::CryptoProvider,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let mut roots = rustls::RootCertStore::empty();
    let ca_pem = std::fs::read(pki.ca()).expect("read CA");
    for cert in rustls_pemfile::certs(&mut ca_pem.as_slice()) {
        roots.add(cert.expect("CA PEM")).expect("add CA");
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(versions)
        .expect("versions")
        .with_root_certificates(roots)
        .with_client_auth_cert(identity.chain.clone(), identity.key.clone_key())
        .expect("client certificate");
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let name = ServerName::try_from("127.0.0.1").expect("server name");
    TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
}

/// Whether a plain HTTP/2 (gRPC) client gets the server's SETTINGS frame
/// back at `addr`, as it would from a peer port without TLS.
async fn plain_http2_answers(addr: std::net::SocketAddr) -> bool {
    http2_answers(TcpStream::connect(addr).await.expect("connect")).await
}

/// Whether an HTTP/2 client inside TLS with `identity` gets the server's
/// SETTINGS frame back at `addr`.
async fn tls_http2_answers(addr: std::net::SocketAddr, pki: &Pki, identity: &Identity) -> bool {
    #[allow(deprecated)]
    let provider = rustls::crypto::ring::default_provider();
    match tls_connect(addr, pki, identity, provider, rustls::DEFAULT_VERSIONS).await {
        Ok(tls) => http2_answers(tls).await,
        Err(_) => false,
    }
}

/// Whether the server at the other end of `tcp` answers an HTTP/2
/// preface with its SETTINGS frame.
async fn http2_answers(mut tcp: impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin) -> bool {
    let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    hello.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]); // empty SETTINGS
    if tcp.write_all(&hello).await.is_err() {
        return false;
    }
    let mut frame = [0u8; 9];
    match tokio::time::timeout(Duration::from_secs(10), tcp.read_exact(&mut frame)).await {
        Ok(Ok(_)) => frame[3] == 4, // a SETTINGS frame
        Ok(Err(_)) => false,
        Err(_) => panic!("the peer port neither answered nor closed"),
    }
}

/// `sslQuorum`: the ensemble elects a leader and replicates over TLS
/// links, and its election and quorum ports serve a TLS peer whose
/// certificate names its address, but not one whose certificate of the
/// same CA does not (`ZKTrustManager.checkClientTrusted`), nor plain
/// HTTP/2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ensemble_with_ssl_quorum_replicates_over_tls() {
    if !matches!(support::target(), support::Target::Zab) {
        return; // zab's own peer protocol
    }
    bounded(async {
        let pki = Pki::new();
        let (ensemble, leader) = pki.ssl_quorum_ensemble("", "/over-tls");
        let peer = pki.server_identity();
        for addr in [ensemble.election_addr(0), ensemble.quorum_addr(leader)] {
            assert!(
                tls_http2_answers(addr, &pki, &peer).await,
                "a peer's certificate at {addr}"
            );
            // A trusted chain, with no name of 127.0.0.1: the handshake
            // completes, and the link is closed.
            assert!(
                tls_handshake(addr, &pki, &pki.client).await,
                "TLS at {addr}"
            );
            assert!(
                !tls_http2_answers(addr, &pki, &pki.client).await,
                "a certificate not for 127.0.0.1 at {addr}"
            );
            assert!(!plain_http2_answers(addr).await, "plain HTTP/2 at {addr}");
        }
    })
    .await;
}

/// `ssl.quorum.enabledProtocols` and `ssl.quorum.ciphersuites`: the
/// ensemble replicates over TLS 1.3 with the one listed suite, and its
/// election and quorum ports refuse a peer that offers TLS 1.2 alone or
/// only another suite, as ZooKeeper's `QuorumX509Util` sockets do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssl_quorum_offers_only_the_listed_protocols_and_suites() {
    if !matches!(support::target(), support::Target::Zab) {
        return; // zab's own peer protocol
    }
    bounded(async {
        let pki = Pki::new();
        let (ensemble, leader) = pki.ssl_quorum_ensemble(
            "ssl.quorum.enabledProtocols=TLSv1.3\n\
             ssl.quorum.ciphersuites=TLS_AES_256_GCM_SHA384\n",
            "/tls13",
        );
        let log = ensemble.output(leader);
        assert!(!log.contains("names suites zab does not have"), "{log}");

        #[allow(deprecated)]
        let offering = |name: &str| {
            let mut ring = rustls::crypto::ring::default_provider();
            ring.cipher_suites
                .retain(|s| s.suite().as_str() == Some(name));
            assert_eq!(ring.cipher_suites.len(), 1, "{name}");
            ring
        };
        let tls13: &[&'static rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];
        let tls12: &[&'static rustls::SupportedProtocolVersion] = &[&rustls::version::TLS12];
        for addr in [ensemble.election_addr(0), ensemble.quorum_addr(leader)] {
            let handshake = |suite: &str, versions| {
                tls_handshake_offering(addr, &pki, &pki.client, offering(suite), versions)
            };
            assert!(
                handshake("TLS13_AES_256_GCM_SHA384", tls13).await,
                "the listed version and suite at {addr}"
            );
            assert!(
                !handshake("TLS13_AES_128_GCM_SHA256", tls13).await,
                "another TLS 1.3 suite at {addr}"
            );
            assert!(
                !handshake("TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", tls12).await,
                "TLS 1.2 at {addr}"
            );
        }
    })
    .await;
}

/// ZooKeeper's rolling move from a plain quorum to a TLS one (admin guide,
/// "Upgrading existing non-TLS cluster with no downtime"), each step a
/// restart of one server at a time while the ensemble keeps serving:
/// `portUnification=true` with the stores (each server takes both kinds of
/// links, opens plain ones), then `sslQuorum=true` (opens TLS ones), then
/// `portUnification=false` (takes TLS alone).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_quorum_moves_to_tls_by_rolling_restarts() {
    if !matches!(support::target(), support::Target::Zab) {
        return; // zab's own peer protocol
    }
    bounded(async {
        let pki = Pki::new();
        let mut spec = ClusterSpec::new(ServerCommand::binary(env!("CARGO_BIN_EXE_zab-server")), 3);
        spec.extra_cfg = format!(
            "ssl.quorum.keyStore.location={}
ssl.quorum.trustStore.location={}
\
             sslQuorum=false
portUnification=true
",
            pki.dir.path().join("server.pem").display(),
            pki.ca().display()
        );
        let mut ensemble = TestCluster::start(spec);
        ensemble.wait_until_serving(Duration::from_secs(60));
        let mut writes = 0;
        let mut write_and_read = |ensemble: &mut TestCluster, through: usize| {
            writes += 1;
            let path = format!("/rolling{writes}");
            let write = zkcli::run(
                &ensemble.connect_string_of(through),
                &format!("create {path} step"),
                &[],
            );
            assert_lines_in_order(&write, &[&format!("Created {path}")]);
            let read = zkcli::run(
                &ensemble.connect_string_of((through + 1) % 3),
                &format!("sync /\nget {path}"),
                &[],
            );
            assert_lines_in_order(&read, &["step"]);
        };
        write_and_read(&mut ensemble, 0);
        // Unified ports take plain HTTP/2 as well as TLS.
        assert!(plain_http2_answers(ensemble.election_addr(0)).await);
        assert!(tls_http2_answers(ensemble.election_addr(0), &pki, &pki.server_identity()).await);
        for (from, to) in [
            ("sslQuorum=false", "sslQuorum=true"),
            ("portUnification=true", "portUnification=false"),
        ] {
            for i in 0..3 {
                let cfg = std::fs::read_to_string(ensemble.cfg_path(i)).expect("read zoo.cfg");
                std::fs::write(ensemble.cfg_path(i), cfg.replace(from, to)).expect("zoo.cfg");
                ensemble.stop(i);
                ensemble.restart(i);
                ensemble.wait_until_serving(Duration::from_secs(60));
                write_and_read(&mut ensemble, i);
            }
        }
        // TLS alone now.
        for i in 0..3 {
            assert!(
                !plain_http2_answers(ensemble.election_addr(i)).await,
                "node {i}"
            );
        }
        let leader = ensemble.wait_until_serving(Duration::from_secs(10));
        assert!(!plain_http2_answers(ensemble.quorum_addr(leader)).await);
    })
    .await;
}

/// `sslQuorum` and `quorum.auth.*` together: the SASL exchange runs inside
/// the TLS links, and the ensemble replicates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssl_quorum_and_quorum_sasl_work_together() {
    if !matches!(support::target(), support::Target::Zab) {
        return; // zab's own peer protocol
    }
    bounded(async {
        let pki = Pki::new();
        let jaas = pki.dir.path().join("quorum.jaas");
        std::fs::write(
            &jaas,
            "QuorumServer { org.apache.zookeeper.server.auth.DigestLoginModule required \
             user_test=\"pw\"; };\n\
             QuorumLearner { org.apache.zookeeper.server.auth.DigestLoginModule required \
             username=\"test\" password=\"pw\"; };\n",
        )
        .unwrap();
        let (ensemble, leader) = pki.ssl_quorum_ensemble(
            &format!(
                "java.security.auth.login.config={}\nquorum.auth.enableSasl=true\n\
                 quorum.auth.learnerRequireSasl=true\nquorum.auth.serverRequireSasl=true\n",
                jaas.display()
            ),
            "/tls-sasl",
        );
        let log = ensemble.output(leader);
        // Both followers (again, should one resync; none serves unadmitted).
        assert!(log.matches("learner authenticated").count() >= 2, "{log}");
    })
    .await;
}

/// `client.portUnification=true`: the plain client port serves TLS clients
/// too, each by what it sends first — zkCli over TLS gets its certificate's
/// identity there, and a plain zkCli is served as before. Without it, the
/// plain port refuses a TLS client.
#[test]
fn port_unification_serves_tls_and_plain_clients_on_the_client_port() {
    let pki = Pki::new();
    let port = free_port();
    let server = start(&pki, port, "client.portUnification=true\n");
    let plain_port = server.addr().port();
    let over_tls = zkcli::run(
        &server.connect_string(),
        "create /unified hello\nwhoami",
        &pki.zkcli_flags(Some(&pki.client.key_store)),
    );
    let x509_line = format!("x509: {CLIENT_ID}");
    assert_lines_in_order(
        &over_tls,
        &[
            "Created /unified",
            "Auth scheme: User",
            &x509_line,
            "ip: 127.0.0.1",
        ],
    );
    let plain = zkcli::run(&server.connect_string(), "get /unified\nwhoami", &[]);
    assert_lines_in_order(&plain, &["hello", "Auth scheme: User", "ip: 127.0.0.1"]);
    assert!(!plain.contains("x509:"), "{plain}");
    assert_eq!(server.four_letter_word("ruok").expect("ruok"), "imok");

    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let ca = pki.ca();
    runtime.block_on(bounded(async {
        assert!(served(plain_port, Some(Some(&pki.client)), &ca).await);
        assert!(served(plain_port, None, &ca).await);
        // A certificate the trust store does not vouch for is refused here
        // as on the secure port.
        assert!(!served(plain_port, Some(Some(&pki.stranger)), &ca).await);
    }));

    let separate = start(&pki, free_port(), "");
    let separate_port = separate.addr().port();
    runtime.block_on(bounded(async {
        assert!(!served(separate_port, Some(Some(&pki.client)), &ca).await);
        assert!(served(separate_port, None, &ca).await);
    }));
}
