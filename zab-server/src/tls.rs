//! TLS: ZooKeeper's `secureClientPort`, and `sslQuorum` between servers.
//!
//! This module owns the settings ZooKeeper reads for them (`ClientX509Util`'s
//! `ssl.*` keys and the `x509` authentication provider; `QuorumX509Util`'s
//! `ssl.quorum.*`), turning them into rustls configurations, the client
//! port's TLS handshake with its timeout, and a client certificate's `x509`
//! identity as ZooKeeper's `X509AuthenticationProvider` names it. It does
//! not own the connection: once the handshake is done a TLS stream is
//! served as a plain one; the links between servers use the configurations
//! [`peer_tls`] builds.
//!
//! Stores are read in PEM form only (`ssl.keyStore.type=PEM`, or a file
//! ending in `.pem`): the key store holds the private key and the
//! certificate chain, the trust store the accepted CA certificates, as in
//! ZooKeeper's `PEMFileLoader`. JKS and PKCS#12 stores, encrypted keys,
//! and CRL and OCSP checks are refused or named at start-up rather than
//! silently ignored; so are listed cipher suites rustls does not have (the
//! CBC ones).

use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::x509::{AttributeTypeAndValue, X509Name};
use zab_election::peer_tls::{ChainOnly, NameCheck};
use zab_wire::jute::Id;

/// ZooKeeper's `X509AuthenticationProvider`: the class an `authProvider.*`
/// key must name for client certificates to become `x509` identities.
pub const X509_PROVIDER_CLASS: &str = "org.apache.zookeeper.server.auth.X509AuthenticationProvider";

/// `ssl.clientAuth` (ZooKeeper's `X509Util.ClientAuth`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ClientAuth {
    /// No client certificate asked for.
    None,
    /// Asked for; a client without one is let in without an `x509` id.
    Want,
    /// Required: ZooKeeper's default when the key is unset.
    #[default]
    Need,
}

impl ClientAuth {
    /// `ClientAuth.fromPropertyValue`: case-insensitive, empty means NEED.
    pub fn parse(value: &str) -> Option<ClientAuth> {
        match value.trim().to_ascii_uppercase().as_str() {
            "" | "NEED" => Some(ClientAuth::Need),
            "WANT" => Some(ClientAuth::Want),
            "NONE" => Some(ClientAuth::None),
            _ => None,
        }
    }
}

/// A key or trust store: `ssl.keyStore.*` or `ssl.trustStore.*`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Store {
    pub location: Option<PathBuf>,
    pub password: Option<String>,
    /// `PEM`, `JKS`, `PKCS12` or `BCFKS`; when unset, ZooKeeper goes by the
    /// file name's extension (`KeyStoreFileType.fromPropertyValueOrFileName`).
    pub kind: Option<String>,
}

/// What one side of TLS offers to negotiate: `ssl.protocol`,
/// `ssl.enabledProtocols` and `ssl.ciphersuites` for the client port, or
/// their `ssl.quorum.*` twins between servers (ZooKeeper's `X509Util`
/// reads the same three keys under either prefix, with the same defaults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    /// `protocol`, default `TLSv1.2` (`X509Util.DEFAULT_PROTOCOL`).
    pub protocol: String,
    /// `enabledProtocols`; unset means `protocol` alone, as in ZooKeeper
    /// 3.8 (so TLS 1.3 only when asked for).
    pub enabled_protocols: Option<Vec<String>>,
    /// `ciphersuites`, Java's names; unset means ZooKeeper's default list
    /// ([`DEFAULT_CIPHER_SUITES`]).
    pub cipher_suites: Option<Vec<String>>,
}

impl Default for Offer {
    fn default() -> Self {
        Offer {
            protocol: "TLSv1.2".to_owned(),
            enabled_protocols: None,
            cipher_suites: None,
        }
    }
}

/// The client port's TLS settings, as zoo.cfg (or `zookeeper.*` properties)
/// give them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsConfig {
    /// `secureClientPort`: no TLS listener when unset.
    pub secure_client_port: Option<u16>,
    /// `secureClientPortAddress`; `None` = all interfaces.
    pub secure_client_port_address: Option<IpAddr>,
    /// `client.portUnification`: the plain `clientPort` takes TLS clients
    /// too, told apart by their first byte (ZooKeeper's Netty
    /// `DualModeSslHandler`).
    pub port_unification: bool,
    pub key_store: Store,
    pub trust_store: Store,
    pub client_auth: ClientAuth,
    /// `ssl.protocol`, `ssl.enabledProtocols` and `ssl.ciphersuites`.
    pub offer: Offer,
    /// The x509 provider is registered: an `authProvider.*` key names
    /// [`X509_PROVIDER_CLASS`], or a TLS client port brought it. Without
    /// it ZooKeeper closes a connection that presents a certificate
    /// (`NettyServerCnxnFactory.CertificateVerifier`), and ACLs of the
    /// `x509` scheme are invalid.
    pub x509_provider: bool,
    /// `X509AuthenticationProvider.superUser`: the identity that is also
    /// `super`.
    pub x509_super_user: Option<String>,
    /// `client.certReload`: the key and trust stores are read again when
    /// their files change (ZooKeeper's `X509Util.enableCertFileReloading`).
    pub cert_reload: bool,
}

/// TLS between servers: ZooKeeper's `sslQuorum` with its
/// `ssl.quorum.keyStore.*` and `ssl.quorum.trustStore.*` (PEM, as for
/// clients). Every election and leader ⇄ learner link is TLS with a
/// certificate at each end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumTlsConfig {
    /// `sslQuorum`.
    pub enabled: bool,
    pub key_store: Store,
    pub trust_store: Store,
    /// `ssl.quorum.hostnameVerification`, default true: each end checks
    /// the other's certificate against the peer's address or host name
    /// (`zab_election::peer_tls`); `false` checks the chain only.
    pub hostname_verification: bool,
    /// `ssl.quorum.allowReverseDnsLookup`, default true for a quorum
    /// (`QuorumX509Util`): the listening end may name a dialer by the host
    /// name its address looks up to.
    pub allow_reverse_dns: bool,
    /// `ssl.quorum.protocol`, `ssl.quorum.enabledProtocols` and
    /// `ssl.quorum.ciphersuites`: on the election links and the leader ⇄
    /// learner links alike, at both ends.
    pub offer: Offer,
    /// `sslQuorumReloadCertFiles`: the stores are read again when their
    /// files change.
    pub reload_cert_files: bool,
    /// Quorum `portUnification`: the election and quorum ports take links
    /// with TLS (these stores) and without, whatever `enabled` is; links
    /// this server opens are TLS if `enabled`. ZooKeeper's way from a plain
    /// quorum to a TLS one (and back) by rolling restarts.
    pub port_unification: bool,
}

impl Default for QuorumTlsConfig {
    fn default() -> Self {
        QuorumTlsConfig {
            enabled: false,
            key_store: Store::default(),
            trust_store: Store::default(),
            hostname_verification: true,
            allow_reverse_dns: true,
            offer: Offer::default(),
            reload_cert_files: false,
            port_unification: false,
        }
    }
}

/// The peer links' TLS, or `None` with neither `sslQuorum` nor
/// `portUnification`. The stores are read here, so a bad one (or none)
/// stops the server at start-up.
pub fn peer_tls(cfg: &QuorumTlsConfig) -> Result<Option<zab_election::PeerTls>, TlsError> {
    if !cfg.enabled && !cfg.port_unification {
        return Ok(None);
    }
    // ZooKeeper starts with `portUnification` and no stores (a TLS peer
    // then fails its handshake): the ports take plain links alone.
    if !cfg.enabled && cfg.key_store.location.is_none() && cfg.trust_store.location.is_none() {
        tracing::warn!(
            "portUnification without ssl.quorum.keyStore/trustStore: the quorum ports take plain links only"
        );
        return Ok(None);
    }
    let key = pem_store(&cfg.key_store, "ssl.quorum.keyStore")?
        .ok_or(TlsError::NoQuorumStore("ssl.quorum.keyStore.location"))?;
    let trust = pem_store(&cfg.trust_store, "ssl.quorum.trustStore")?
        .ok_or(TlsError::NoQuorumStore("ssl.quorum.trustStore.location"))?;
    // Read with the client port's readers first: their errors name what
    // is wrong with a store.
    let (chain, private_key) = read_key_store(key)?;
    let roots = Arc::new(read_trust_store(trust)?);
    let offered = offered(&cfg.offer, "ssl.quorum.")?;
    if !offered.unsupported_suites.is_empty() {
        tracing::warn!(
            suites = offered.unsupported_suites.join(","),
            "ssl.quorum.ciphersuites names suites zab does not have; they are not offered"
        );
    }
    let verifier =
        WebPkiClientVerifier::builder_with_provider(roots.clone(), offered.provider.clone())
            .build()
            .map_err(|e| TlsError::Verifier(e.to_string()))?;
    let server = ServerConfig::builder_with_provider(offered.provider.clone())
        .with_protocol_versions(&offered.versions)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain.clone(), private_key.clone_key())?;
    let chains = rustls::client::WebPkiServerVerifier::builder_with_provider(
        roots,
        offered.provider.clone(),
    )
    .build()
    .map_err(|e| TlsError::Verifier(e.to_string()))?;
    let client = rustls::ClientConfig::builder_with_provider(offered.provider)
        .with_protocol_versions(&offered.versions)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(ChainOnly(chains)))
        .with_client_auth_cert(chain, private_key)?;
    let names = match cfg.hostname_verification {
        true => NameCheck::On {
            reverse_dns: cfg.allow_reverse_dns,
        },
        false => NameCheck::Off,
    };
    Ok(Some(zab_election::PeerTls::new(server, client, names)))
}

/// With `sslQuorumReloadCertFiles`, reads the quorum stores again
/// whenever their files change and gives every link opened from then on
/// the new certificate and CAs (`PeerTls::reload_from`), as ZooKeeper's
/// `X509Util.enableCertFileReloading` on its quorum context. Links already
/// open keep theirs.
pub fn reload_peer_tls_on_change(tls: &zab_election::PeerTls, cfg: &QuorumTlsConfig) {
    if !cfg.reload_cert_files {
        return;
    }
    let (tls, reread) = (tls.clone(), cfg.clone());
    on_store_change([&cfg.key_store, &cfg.trust_store], move || {
        match peer_tls(&reread) {
            Ok(Some(fresh)) => {
                tls.reload_from(&fresh);
                tracing::info!("quorum TLS stores read again (sslQuorumReloadCertFiles)");
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(
                error = %e,
                "sslQuorumReloadCertFiles: the changed stores do not load; keeping the current ones"
            ),
        }
        true
    });
}

/// How often a reload looks at the stores' files.
pub const CERT_RELOAD_EVERY: Duration = Duration::from_secs(1);

/// Calls `changed` each time one of `stores`' files changes (its
/// modification time or length, followed through symbolic links, as
/// Kubernetes swaps them), looking every [`CERT_RELOAD_EVERY`], until it
/// returns false.
fn on_store_change(stores: [&Store; 2], mut changed: impl FnMut() -> bool + Send + 'static) {
    let paths: Vec<PathBuf> = stores.iter().filter_map(|s| s.location.clone()).collect();
    let stamp = move || -> Vec<_> {
        paths
            .iter()
            .map(|p| {
                std::fs::metadata(p)
                    .ok()
                    .map(|m| (m.modified().ok(), m.len()))
            })
            .collect()
    };
    tokio::spawn(async move {
        let mut seen = stamp();
        loop {
            tokio::time::sleep(CERT_RELOAD_EVERY).await;
            let now = stamp();
            if now != seen {
                seen = now;
                if !changed() {
                    return;
                }
            }
        }
    });
}

/// Why the TLS listener cannot be set up; reported at start-up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("secureClientPort needs ssl.keyStore.location")]
    NoKeyStore,
    #[error("sslQuorum and portUnification need {0}")]
    NoQuorumStore(&'static str),
    #[error("ssl.clientAuth={0:?} needs ssl.trustStore.location (zab has no default trust store)")]
    NoTrustStore(ClientAuth),
    #[error("{key}: {kind} stores are not supported, only PEM (convert with `openssl pkcs12 -nodes` or `keytool -importkeystore`)")]
    StoreType { key: &'static str, kind: String },
    #[error("reading {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{path}: {what}")]
    Pem { path: PathBuf, what: String },
    #[error("unknown TLS protocol {0:?} (zab offers TLSv1.2 and TLSv1.3)")]
    Protocol(String),
    #[error("{prefix}ciphersuites leaves no suite for {version} that zab has (it has the GCM and ChaCha20 suites)")]
    NoCipherSuite {
        prefix: &'static str,
        version: &'static str,
    },
    #[error("TLS setup: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("client certificate verifier: {0}")]
    Verifier(String),
}

/// ZooKeeper 3.8's default for Java 9 and later
/// (`X509Util.DEFAULT_CIPHERS_JAVA9`) without its CBC suites, which rustls
/// does not implement. It has no TLS 1.3 suite, as ZooKeeper's has none.
pub const DEFAULT_CIPHER_SUITES: &[&str] = &[
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
];

/// How long a client has for its TLS handshake: Netty's `SslHandler`
/// default, which ZooKeeper's client port keeps (its
/// `ssl.handshakeDetectionTimeoutMillis` is for the quorum port's
/// unification alone).
pub const CLIENT_HANDSHAKE_WITHIN: Duration = Duration::from_secs(10);

/// The TLS side of the secure client port, ready to accept.
pub struct ClientTls {
    /// Swapped whole when the stores are read again (`client.certReload`);
    /// each handshake takes the one current as it starts.
    acceptor: std::sync::RwLock<TlsAcceptor>,
    /// Suites `ssl.ciphersuites` names that rustls does not have: named in
    /// a start-up warning, as Java would refuse them.
    pub unsupported_suites: Vec<String>,
    x509_provider: bool,
    x509_super_user: Option<String>,
}

/// Why a TLS connection was dropped before it was served.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("TLS handshake: {0}")]
    Handshake(io::Error),
    #[error("no TLS handshake within {0:?}")]
    Timeout(Duration),
    #[error("a client certificate, but no x509 authentication provider (authProvider.x509)")]
    NoX509Provider,
    #[error("client certificate without a readable subject")]
    Subject,
}

impl ClientTls {
    /// Loads the stores and builds the server configuration.
    pub fn new(cfg: &TlsConfig) -> Result<ClientTls, TlsError> {
        let Offered {
            provider,
            versions,
            unsupported_suites,
        } = offered(&cfg.offer, "ssl.")?;
        let key_path = pem_store(&cfg.key_store, "ssl.keyStore")?.ok_or(TlsError::NoKeyStore)?;
        let (chain, key) = read_key_store(key_path)?;
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&versions)?;
        let builder = match cfg.client_auth {
            ClientAuth::None => builder.with_no_client_auth(),
            auth => {
                let trust = pem_store(&cfg.trust_store, "ssl.trustStore")?
                    .ok_or(TlsError::NoTrustStore(auth))?;
                let roots = read_trust_store(trust)?;
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
                let verifier = match auth {
                    ClientAuth::Want => verifier.allow_unauthenticated(),
                    _ => verifier,
                };
                let verifier = verifier
                    .build()
                    .map_err(|e| TlsError::Verifier(e.to_string()))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let server = builder.with_single_cert(chain, key)?;
        Ok(ClientTls {
            acceptor: std::sync::RwLock::new(TlsAcceptor::from(Arc::new(server))),
            unsupported_suites,
            x509_provider: cfg.x509_provider,
            x509_super_user: cfg.x509_super_user.clone(),
        })
    }

    /// With `client.certReload`, reads the stores again whenever their
    /// files change, for as long as this `ClientTls` lives: later
    /// handshakes present the new certificate and trust the new CAs.
    /// Stores that do not load are logged and the current ones kept, as
    /// ZooKeeper keeps its context when a reload fails.
    pub fn reload_on_change(self: &Arc<ClientTls>, cfg: &TlsConfig) {
        if !cfg.cert_reload {
            return;
        }
        let tls = Arc::downgrade(self);
        let reread = cfg.clone();
        on_store_change([&cfg.key_store, &cfg.trust_store], move || {
            let Some(tls) = tls.upgrade() else {
                return false;
            };
            match ClientTls::new(&reread) {
                Ok(fresh) => {
                    let acceptor = fresh
                        .acceptor
                        .into_inner()
                        .unwrap_or_else(|e| e.into_inner());
                    *tls.acceptor.write().unwrap_or_else(|e| e.into_inner()) = acceptor;
                    tracing::info!("client TLS stores read again (client.certReload)");
                }
                Err(e) => tracing::warn!(
                    error = %e,
                    "client.certReload: the changed stores do not load; keeping the current ones"
                ),
            }
            true
        });
    }

    /// The handshake, then the identities the client's certificate proves:
    /// `x509:<subject>`, and `super:<subject>` for the configured super
    /// user, added in ZooKeeper's order (`X509AuthenticationProvider.
    /// handleAuthentication`).
    pub async fn accept(
        &self,
        stream: TcpStream,
    ) -> Result<(TlsStream<TcpStream>, Vec<Id>), Refused> {
        let acceptor = self
            .acceptor
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let stream =
            match tokio::time::timeout(CLIENT_HANDSHAKE_WITHIN, acceptor.accept(stream)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => return Err(Refused::Handshake(e)),
                Err(_) => return Err(Refused::Timeout(CLIENT_HANDSHAKE_WITHIN)),
            };
        let Some(leaf) = stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first())
        else {
            return Ok((stream, Vec::new()));
        };
        if !self.x509_provider {
            return Err(Refused::NoX509Provider);
        }
        let subject = x509_identity(leaf).ok_or(Refused::Subject)?;
        let mut ids = Vec::with_capacity(2);
        if self.x509_super_user.as_deref() == Some(subject.as_str()) {
            ids.push(Id::new("super", &subject));
        }
        ids.push(Id::new("x509", &subject));
        Ok((stream, ids))
    }
}

/// What an [`Offer`] comes to in rustls.
struct Offered {
    /// `ring` with the offered suites only.
    provider: Arc<rustls::crypto::CryptoProvider>,
    versions: Vec<&'static rustls::SupportedProtocolVersion>,
    /// Suites the offer names that rustls does not have: named in a
    /// start-up warning, as Java would refuse them.
    unsupported_suites: Vec<String>,
}

/// The versions and suites `offer` enables, whose keys begin with `prefix`
/// (`ssl.` or `ssl.quorum.`). An offer that leaves a version it enables
/// alone with no suite is refused: every handshake would fail.
fn offered(offer: &Offer, prefix: &'static str) -> Result<Offered, TlsError> {
    let versions = protocol_versions(offer)?;
    // rustls deprecates its `ring` provider for lacking post-quantum key
    // exchange, which ZooKeeper's Java clients do not offer either; its
    // other provider (aws-lc-rs) needs a CMake build of AWS-LC on every
    // machine that builds zab.
    #[allow(deprecated)]
    let ring = rustls::crypto::ring::default_provider();
    let (suites, unsupported_suites) = cipher_suites(offer, &ring.cipher_suites);
    for v in &versions {
        if !suites.iter().any(|s| s.version() == *v) {
            let version = if v.version == rustls::ProtocolVersion::TLSv1_3 {
                "TLSv1.3"
            } else {
                "TLSv1.2"
            };
            // Java would negotiate another enabled version; with none
            // left, every handshake would fail. Refused at start-up.
            if versions.len() == 1 {
                return Err(TlsError::NoCipherSuite { prefix, version });
            }
        }
    }
    if suites.is_empty() {
        return Err(TlsError::NoCipherSuite {
            prefix,
            version: "any version",
        });
    }
    Ok(Offered {
        provider: Arc::new(rustls::crypto::CryptoProvider {
            cipher_suites: suites,
            ..ring
        }),
        versions,
        unsupported_suites,
    })
}

/// The rustls versions `enabledProtocols` (or `protocol`) names.
fn protocol_versions(
    cfg: &Offer,
) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, TlsError> {
    let names: Vec<&str> = match &cfg.enabled_protocols {
        Some(list) => list.iter().map(String::as_str).collect(),
        None => vec![cfg.protocol.as_str()],
    };
    names
        .into_iter()
        .map(|name| match name.trim() {
            "TLSv1.2" => Ok(&rustls::version::TLS12),
            "TLSv1.3" => Ok(&rustls::version::TLS13),
            other => Err(TlsError::Protocol(other.to_owned())),
        })
        .collect()
}

/// The suites `ciphersuites` (or ZooKeeper's default) names, in its
/// order, from those rustls has; and the names it does not have. Java's
/// TLS 1.3 names (`TLS_AES_128_GCM_SHA256`) are rustls's `TLS13_` ones.
fn cipher_suites(
    cfg: &Offer,
    available: &[rustls::SupportedCipherSuite],
) -> (Vec<rustls::SupportedCipherSuite>, Vec<String>) {
    let names: Vec<&str> = match &cfg.cipher_suites {
        Some(list) => list
            .iter()
            .map(|n| n.trim())
            .filter(|n| !n.is_empty())
            .collect(),
        None => DEFAULT_CIPHER_SUITES.to_vec(),
    };
    let mut chosen = Vec::new();
    let mut missing = Vec::new();
    for name in names {
        let rustls_name = match name.strip_prefix("TLS_") {
            Some(rest) if !rest.starts_with("ECDHE") && !rest.starts_with("RSA") => {
                format!("TLS13_{rest}")
            }
            _ => name.to_owned(),
        };
        match available
            .iter()
            .find(|s| s.suite().as_str() == Some(rustls_name.as_str()))
        {
            Some(s) if !chosen.contains(s) => chosen.push(*s),
            Some(_) => {}
            // The default's CBC suites are left out without a word.
            None if cfg.cipher_suites.is_some() => missing.push(name.to_owned()),
            None => {}
        }
    }
    (chosen, missing)
}

/// The store's path if it is set, refusing types other than PEM.
fn pem_store<'a>(store: &'a Store, key: &'static str) -> Result<Option<&'a Path>, TlsError> {
    let Some(path) = store.location.as_deref() else {
        return Ok(None);
    };
    let kind = match &store.kind {
        Some(kind) => kind.to_ascii_uppercase(),
        // ZooKeeper's file-name rule; anything else defaults to JKS.
        None => match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("pem") => "PEM".to_owned(),
            Some(e) if e.eq_ignore_ascii_case("p12") || e.eq_ignore_ascii_case("pfx") => {
                "PKCS12".to_owned()
            }
            Some(e) if e.eq_ignore_ascii_case("bcfks") => "BCFKS".to_owned(),
            _ => "JKS".to_owned(),
        },
    };
    if kind != "PEM" {
        return Err(TlsError::StoreType { key, kind });
    }
    Ok(Some(path))
}

fn read_pem(path: &Path) -> Result<Vec<rustls_pemfile::Item>, TlsError> {
    let bytes = std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })?;
    // rustls-pemfile skips an encrypted key as an unknown section; say why
    // the store has no usable key instead.
    if bytes.windows(21).any(|w| w == b"ENCRYPTED PRIVATE KEY") {
        return Err(TlsError::Pem {
            path: path.to_owned(),
            what: "encrypted private keys are not supported; decrypt it with `openssl pkcs8`"
                .to_owned(),
        });
    }
    rustls_pemfile::read_all(&mut bytes.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            path: path.to_owned(),
            what: format!("not PEM: {e}"),
        })
}

/// A PEM key store: the private key and its certificate chain, leaf first.
fn read_key_store(
    path: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let pem_error = |what: &str| TlsError::Pem {
        path: path.to_owned(),
        what: what.to_owned(),
    };
    let mut chain = Vec::new();
    let mut key = None;
    for item in read_pem(path)? {
        match item {
            rustls_pemfile::Item::X509Certificate(c) => chain.push(c),
            rustls_pemfile::Item::Pkcs8Key(k) if key.is_none() => key = Some(k.into()),
            rustls_pemfile::Item::Pkcs1Key(k) if key.is_none() => key = Some(k.into()),
            rustls_pemfile::Item::Sec1Key(k) if key.is_none() => key = Some(k.into()),
            _ => {}
        }
    }
    let key = key.ok_or_else(|| pem_error("no private key"))?;
    if chain.is_empty() {
        return Err(pem_error("no certificate"));
    }
    Ok((chain, key))
}

/// A PEM trust store: the CA certificates client certificates must chain to.
fn read_trust_store(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for item in read_pem(path)? {
        if let rustls_pemfile::Item::X509Certificate(c) = item {
            roots.add(c).map_err(|e| TlsError::Pem {
                path: path.to_owned(),
                what: format!("unusable CA certificate: {e}"),
            })?;
        }
    }
    if roots.is_empty() {
        return Err(TlsError::Pem {
            path: path.to_owned(),
            what: "no certificate".to_owned(),
        });
    }
    Ok(roots)
}

/// A certificate's `x509` identity: its subject as Java's
/// `X500Principal.getName()` prints it (RFC 2253), which is what
/// ZooKeeper's `X509AuthenticationProvider.getClientId` returns.
pub fn x509_identity(cert_der: &[u8]) -> Option<String> {
    let (_, cert) = X509Certificate::from_der(cert_der).ok()?;
    Some(rfc2253(cert.subject()))
}

/// Java's RFC 2253 form: RDNs last first, joined by `,`; the values of a
/// multi-valued RDN in their encoded order, joined by `+`.
fn rfc2253(name: &X509Name) -> String {
    let rdns: Vec<String> = name
        .iter_rdn()
        .map(|rdn| rdn.iter().map(ava).collect::<Vec<_>>().join("+"))
        .collect();
    rdns.into_iter().rev().collect::<Vec<_>>().join(",")
}

/// One `type=value`: the RFC 2253 keyword Java knows for the type, with the
/// value escaped; any other type as its OID with the value's DER in hex
/// (`AVA.toRFC2253String`).
fn ava(a: &AttributeTypeAndValue) -> String {
    let oid = a.attr_type().to_id_string();
    let keyword = match oid.as_str() {
        "2.5.4.3" => Some("CN"),
        "2.5.4.6" => Some("C"),
        "2.5.4.7" => Some("L"),
        "2.5.4.8" => Some("ST"),
        "2.5.4.10" => Some("O"),
        "2.5.4.11" => Some("OU"),
        "2.5.4.9" => Some("STREET"),
        "0.9.2342.19200300.100.1.25" => Some("DC"),
        "0.9.2342.19200300.100.1.1" => Some("UID"),
        _ => None,
    };
    match (keyword, a.as_str()) {
        (Some(k), Ok(value)) => format!("{k}={}", escape_rfc2253(value)),
        (k, _) => {
            let any = a.attr_value();
            let mut der = Vec::with_capacity(any.data.len() + 6);
            der.push(any.tag().0 as u8 | if any.header.is_constructed() { 0x20 } else { 0 });
            let len = any.data.len();
            if len < 0x80 {
                der.push(len as u8);
            } else {
                let bytes: Vec<u8> = len
                    .to_be_bytes()
                    .into_iter()
                    .skip_while(|b| *b == 0)
                    .collect();
                der.push(0x80 | bytes.len() as u8);
                der.extend(bytes);
            }
            der.extend_from_slice(any.data);
            let hex: String = der.iter().map(|b| format!("{b:02x}")).collect();
            format!("{}=#{hex}", k.map(str::to_owned).unwrap_or(oid))
        }
    }
}

/// RFC 2253 §2.4 as Java applies it: a backslash before `,=+<>#;"\`, and
/// before a leading or trailing space.
fn escape_rfc2253(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 4);
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        let special = ",=+<>#;\"\\".contains(c) || (c == ' ' && (i == 0 || i == last));
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A CA, its certificate written to `dir` as `{name}-ca.pem`.
    struct TestCa {
        key: rcgen::KeyPair,
        cert: rcgen::Certificate,
        path: std::path::PathBuf,
    }

    fn test_ca(dir: &std::path::Path, name: &str) -> TestCa {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
        let key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name.push(DnType::CommonName, "quorum CA");
        let cert = ca.self_signed(&key).unwrap();
        let path = dir.join(format!("{name}-ca.pem"));
        std::fs::write(&path, cert.pem()).unwrap();
        TestCa { key, cert, path }
    }

    /// A CA in `dir`, and a key store it signed for `sans` (DNS names or
    /// IP addresses; none at all: the common name alone); the quorum TLS
    /// settings for that store.
    fn quorum_store(dir: &std::path::Path, name: &str, sans: &[&str]) -> QuorumTlsConfig {
        quorum_store_of(dir, &test_ca(dir, name), name, sans)
    }

    /// [`quorum_store`] with a key store signed by `ca`.
    fn quorum_store_of(
        dir: &std::path::Path,
        ca: &TestCa,
        name: &str,
        sans: &[&str],
    ) -> QuorumTlsConfig {
        use rcgen::{CertificateParams, DnType, KeyPair};
        let mut leaf =
            CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        leaf.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().unwrap();
        let leaf = leaf.signed_by(&key, &ca.cert, &ca.key).unwrap();
        let key_path = dir.join(format!("{name}.pem"));
        std::fs::write(&key_path, format!("{}{}", key.serialize_pem(), leaf.pem())).unwrap();
        let store = |p: &std::path::Path| Store {
            location: Some(p.to_owned()),
            ..Store::default()
        };
        QuorumTlsConfig {
            enabled: true,
            key_store: store(&key_path),
            trust_store: store(&ca.path),
            ..QuorumTlsConfig::default()
        }
    }

    /// Whether a server of `cfg` dialing `host` at a listener of `cfg` on
    /// 127.0.0.1 accepts the listener's certificate (which the listener,
    /// checking no names, takes back from the dialer).
    async fn dials(cfg: &QuorumTlsConfig, host: &str) -> bool {
        let listening = QuorumTlsConfig {
            hostname_verification: false,
            ..cfg.clone()
        };
        let listening = peer_tls(&listening).unwrap().unwrap();
        handshake(&listening, &peer_tls(cfg).unwrap().unwrap(), host).await
    }

    /// Whether `dialer`, dialing `host` at a listener of `listening` on
    /// 127.0.0.1, completes its handshake and accepts the certificate.
    async fn handshake(
        listening: &zab_election::PeerTls,
        dialer: &zab_election::PeerTls,
        host: &str,
    ) -> bool {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let listening = listening.clone();
        let served = tokio::spawn(async move {
            let (sock, remote) = listener.accept().await.unwrap();
            listening.accept_link(sock, remote.ip()).await.is_ok()
        });
        let sock = tokio::net::TcpStream::connect(addr).await.unwrap();
        let dialed = dialer.dial(host, addr, sock).await;
        let accepted = served.await.unwrap();
        dialed.is_ok() && accepted
    }

    /// `sslQuorumReloadCertFiles=true`: stores replaced in place are read
    /// again, and links opened from then on use them: a server of a new
    /// CA is refused before and taken after, with no restart.
    #[tokio::test]
    async fn quorum_stores_replaced_in_place_are_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let old = quorum_store(dir.path(), "old", &["127.0.0.1"]);
        let new = quorum_store(dir.path(), "new", &["127.0.0.1"]);
        let (key, ca) = (dir.path().join("live.pem"), dir.path().join("live-ca.pem"));
        let place = |from: &QuorumTlsConfig| {
            for (src, dst) in [(&from.key_store, &key), (&from.trust_store, &ca)] {
                let tmp = dst.with_extension("tmp");
                std::fs::copy(src.location.as_ref().unwrap(), &tmp).unwrap();
                std::fs::rename(&tmp, dst).unwrap();
            }
        };
        place(&old);
        let live_cfg = QuorumTlsConfig {
            key_store: Store {
                location: Some(key.clone()),
                ..Store::default()
            },
            trust_store: Store {
                location: Some(ca.clone()),
                ..Store::default()
            },
            reload_cert_files: true,
            ..old.clone()
        };
        let live = peer_tls(&live_cfg).unwrap().unwrap();
        reload_peer_tls_on_change(&live, &live_cfg);
        let newcomer = peer_tls(&new).unwrap().unwrap();
        assert!(!handshake(&live, &newcomer, "zk9.test").await);
        place(&new);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !handshake(&live, &newcomer, "zk9.test").await {
            assert!(
                std::time::Instant::now() < deadline,
                "the new stores were never read"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// A peer's certificate is checked as ZooKeeper's `ZKTrustManager`
    /// checks it: its address, else the `server.N` host name against the
    /// DNS names, or the common name of a certificate with no alternative
    /// names (ZooKeeper's own quorum TLS recipe). Not the IP alone.
    #[tokio::test]
    async fn a_peer_certificate_is_checked_for_the_peers_address_or_host_name() {
        let dir = tempfile::tempdir().unwrap();
        let by_ip = quorum_store(dir.path(), "by-ip", &["127.0.0.1"]);
        assert!(dials(&by_ip, "zk9.test").await, "the address matches");
        let by_dns = quorum_store(dir.path(), "zk1.test", &["zk1.test"]);
        assert!(dials(&by_dns, "zk1.test").await);
        assert!(dials(&by_dns, "ZK1.test").await, "names ignore case");
        assert!(!dials(&by_dns, "zk2.test").await);
        let wildcard = quorum_store(dir.path(), "any", &["*.zk.test"]);
        assert!(dials(&wildcard, "zk1.zk.test").await);
        let by_cn = quorum_store(dir.path(), "zk1.test", &[]);
        assert!(
            dials(&by_cn, "zk1.test").await,
            "the CN of a certificate without SANs"
        );
        assert!(!dials(&by_cn, "zk2.test").await);
        // With SANs, the CN does not count.
        let cn_and_sans = quorum_store(dir.path(), "zk1.test", &["other.test"]);
        assert!(!dials(&cn_and_sans, "zk1.test").await);
        // `ssl.quorum.hostnameVerification=false`: the chain alone.
        let unchecked = QuorumTlsConfig {
            hostname_verification: false,
            ..by_dns
        };
        assert!(dials(&unchecked, "zk2.test").await);
    }

    /// The listening end checks the dialer's certificate as ZooKeeper's
    /// `ZKTrustManager.checkClientTrusted` checks a quorum socket's: its
    /// address, else the host name the address looks up to
    /// (`ssl.quorum.allowReverseDnsLookup`, on by default), or the common
    /// name of a certificate without alternative names. Any certificate of
    /// the trusted CA used to join.
    #[tokio::test]
    async fn a_dialers_certificate_is_checked_for_its_address() {
        let dir = tempfile::tempdir().unwrap();
        let ca = test_ca(dir.path(), "shared");
        let peer = |name: &str, sans: &[&str]| quorum_store_of(dir.path(), &ca, name, sans);
        let listening = peer_tls(&peer("listener", &["127.0.0.1"]))
            .unwrap()
            .unwrap();
        let admitted = |cfg: QuorumTlsConfig| {
            let listening = listening.clone();
            async move {
                let dialer = peer_tls(&cfg).unwrap().unwrap();
                handshake(&listening, &dialer, "zk1.test").await
            }
        };
        assert!(admitted(peer("by-ip", &["127.0.0.1"])).await);
        assert!(
            !admitted(peer("elsewhere", &["10.9.9.9", "zk9.test"])).await,
            "a certificate for another peer"
        );
        assert!(
            admitted(peer("127.0.0.1", &[])).await,
            "the CN of one without SANs"
        );
        assert!(!admitted(peer("zk9.test", &[])).await);
        // 127.0.0.1 looks up to `localhost` in every Debian's /etc/hosts,
        // as Java's `InetAddress.getHostName` finds it.
        assert!(
            admitted(peer("by-name", &["localhost"])).await,
            "the host name of the dialer's address"
        );
        let listening = peer_tls(&QuorumTlsConfig {
            allow_reverse_dns: false,
            ..peer("listener-no-dns", &["127.0.0.1"])
        })
        .unwrap()
        .unwrap();
        let dialer = peer_tls(&peer("by-name-2", &["localhost"]))
            .unwrap()
            .unwrap();
        assert!(
            !handshake(&listening, &dialer, "zk1.test").await,
            "no reverse lookup: the address alone"
        );
        // `ssl.quorum.hostnameVerification=false`: the chain alone.
        let listening = peer_tls(&QuorumTlsConfig {
            hostname_verification: false,
            ..peer("unchecking", &["127.0.0.1"])
        })
        .unwrap()
        .unwrap();
        let dialer = peer_tls(&peer("elsewhere-2", &["10.9.9.9"]))
            .unwrap()
            .unwrap();
        assert!(handshake(&listening, &dialer, "zk1.test").await);
    }

    /// `portUnification` with no quorum stores starts, as ZooKeeper does,
    /// taking plain links alone; `sslQuorum` without them is refused.
    #[test]
    fn port_unification_without_stores_takes_plain_links_alone() {
        let unified = QuorumTlsConfig {
            port_unification: true,
            ..QuorumTlsConfig::default()
        };
        assert!(peer_tls(&unified).unwrap().is_none());
        let ssl_quorum = QuorumTlsConfig {
            enabled: true,
            ..unified
        };
        assert!(peer_tls(&ssl_quorum).is_err());
    }

    #[test]
    fn client_auth_is_parsed_as_zookeeper_does() {
        assert_eq!(ClientAuth::parse(""), Some(ClientAuth::Need));
        assert_eq!(ClientAuth::parse("want"), Some(ClientAuth::Want));
        assert_eq!(ClientAuth::parse("NONE"), Some(ClientAuth::None));
        assert_eq!(ClientAuth::parse("maybe"), None);
    }

    #[test]
    fn stores_other_than_pem_are_refused_by_name() {
        let store = |loc: &str, kind: Option<&str>| Store {
            location: Some(loc.into()),
            password: None,
            kind: kind.map(str::to_owned),
        };
        assert!(pem_store(&store("a.pem", None), "k").unwrap().is_some());
        assert!(pem_store(&store("a.crt", Some("pem")), "k")
            .unwrap()
            .is_some());
        for (loc, kind, want) in [
            ("a.jks", None, "JKS"),
            ("a.p12", None, "PKCS12"),
            ("a.crt", None, "JKS"),
            ("a.pem", Some("PKCS12"), "PKCS12"),
        ] {
            match pem_store(&store(loc, kind), "k") {
                Err(TlsError::StoreType { kind, .. }) => assert_eq!(kind, want),
                other => panic!("{loc}: {other:?}"),
            }
        }
        assert!(pem_store(&Store::default(), "k").unwrap().is_none());
    }

    #[test]
    fn protocols_default_to_tls_1_2_alone() {
        let cfg = Offer::default();
        let v = protocol_versions(&cfg).unwrap();
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].version, rustls::ProtocolVersion::TLSv1_2);
        let both = Offer {
            enabled_protocols: Some(vec!["TLSv1.3".into(), "TLSv1.2".into()]),
            ..Offer::default()
        };
        assert_eq!(protocol_versions(&both).unwrap().len(), 2);
        let old = Offer {
            protocol: "TLSv1.1".into(),
            ..Offer::default()
        };
        assert!(matches!(protocol_versions(&old), Err(TlsError::Protocol(p)) if p == "TLSv1.1"));
    }

    #[test]
    fn cipher_suites_follow_zookeeper_and_name_what_rustls_lacks() {
        #[allow(deprecated)]
        let ring = rustls::crypto::ring::default_provider();
        let names = |suites: &[rustls::SupportedCipherSuite]| -> Vec<&str> {
            suites.iter().filter_map(|s| s.suite().as_str()).collect()
        };
        let (default, missing) = cipher_suites(&Offer::default(), &ring.cipher_suites);
        assert_eq!(names(&default), DEFAULT_CIPHER_SUITES);
        assert!(missing.is_empty());
        let cfg = Offer {
            cipher_suites: Some(vec![
                "TLS_AES_256_GCM_SHA384".into(),
                "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256".into(),
                "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256".into(),
            ]),
            ..Offer::default()
        };
        let (chosen, missing) = cipher_suites(&cfg, &ring.cipher_suites);
        assert_eq!(
            names(&chosen),
            [
                "TLS13_AES_256_GCM_SHA384",
                "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"
            ]
        );
        assert_eq!(missing, ["TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256"]);
    }

    /// Java would fail every handshake; zab refuses at start-up, naming
    /// the key of the side (`ssl.` or `ssl.quorum.`) that left no suite.
    #[test]
    fn an_offer_without_a_suite_for_its_only_version_is_refused_by_its_key() {
        let offer = Offer {
            cipher_suites: Some(vec!["TLS_AES_128_GCM_SHA256".into()]),
            ..Offer::default()
        };
        let err = offered(&offer, "ssl.quorum.").err().expect("refused");
        assert!(err
            .to_string()
            .starts_with("ssl.quorum.ciphersuites leaves no suite for TLSv1.2"));
        let both = Offer {
            enabled_protocols: Some(vec!["TLSv1.2".into(), "TLSv1.3".into()]),
            ..offer
        };
        let ok = offered(&both, "ssl.").expect("a suite for TLS 1.3");
        assert_eq!(ok.versions.len(), 2);
        assert_eq!(ok.provider.cipher_suites.len(), 1);
    }

    #[test]
    fn an_encrypted_key_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.pem");
        std::fs::write(
            &path,
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
        )
        .unwrap();
        match read_key_store(&path) {
            Err(TlsError::Pem { what, .. }) => assert!(what.contains("encrypted"), "{what}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn values_are_escaped_as_java_escapes_them() {
        assert_eq!(escape_rfc2253("zab, test"), "zab\\, test");
        assert_eq!(
            escape_rfc2253("a=b+c<d>e#f;g\"h\\i"),
            "a\\=b\\+c\\<d\\>e\\#f\\;g\\\"h\\\\i"
        );
        assert_eq!(escape_rfc2253(" x "), "\\ x\\ ");
        assert_eq!(escape_rfc2253("plain"), "plain");
    }

    /// Self-signed certificates made with `openssl req -subj` for these
    /// tests; the expected names are what Java 17's
    /// `X509Certificate.getSubjectX500Principal().getName()` printed for
    /// them. The first is the subject ZooKeeper 3.8.0's `whoami` showed
    /// over TLS; the second has an escaped value, a UTF-8 one, and types
    /// Java prints as OIDs with the value's DER in hex.
    const MULTI_VALUED: &str = "-----BEGIN CERTIFICATE-----\n\
MIIB9jCCAZugAwIBAgIUbX6eg2NTF3LZh3NkuquNB7O4G6MwCgYIKoZIzj0EAwIw\n\
UDELMAkGA1UEBhMCVVMxEjAQBgNVBAoMCXphYiwgdGVzdDEYMAoGA1UECwwDZGV2\n\
MAoGA1UECwwDb3BzMRMwEQYDVQQDDApjbGllbnQgb25lMB4XDTI2MTIwNjA0MzUy\n\
MVoXDTI2MTIwOTA0MzUyMVowUDELMAkGA1UEBhMCVVMxEjAQBgNVBAoMCXphYiwg\n\
dGVzdDEYMAoGA1UECwwDZGV2MAoGA1UECwwDb3BzMRMwEQYDVQQDDApjbGllbnQg\n\
b25lMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE46iWmmLjbjqev6YcurmB0h3y\n\
efBV0GGNh8e9inZuHvblYe/UKV7nx9wBA1dUa3aQ3enrr095Yf7JOv0pyQrEsaNT\n\
MFEwHQYDVR0OBBYEFAF9yUSYuNK3DKQfhwZNcnaR1l4pMB8GA1UdIwQYMBaAFAF9\n\
yUSYuNK3DKQfhwZNcnaR1l4pMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwID\n\
SQAwRgIhALgUXF+RSw+olysIyps0qu2OQIg1pmeC5lgdKx4luq57AiEAm41x+kAg\n\
kC3O3+IrIWoyuEpU/0vWKb3ntTOP91x2AMs=\n\
-----END CERTIFICATE-----";
    const SPECIAL: &str = "-----BEGIN CERTIFICATE-----\n\
MIICUDCCAfegAwIBAgIUTkim0scDyMPrQzcLfFQ1r836UP0wCgYIKoZIzj0EAwIw\n\
fjEXMBUGCgmSJomT8ixkARkWB2V4YW1wbGUxEjAQBgoJkiaJk/IsZAEBDAJ1MTEL\n\
MAkGA1UEBRMCNDIxFDASBgkqhkiG9w0BCQEWBWFAYi5jMRAwDgYDVQQIDAdaw7xy\n\
aWNoMRowGAYDVQQDDBEgbGVhZCN4PXk8ej47InFcIDAeFw0yNjEyMDYwNDM1MjFa\n\
Fw0yNjEyMDkwNDM1MjFaMH4xFzAVBgoJkiaJk/IsZAEZFgdleGFtcGxlMRIwEAYK\n\
CZImiZPyLGQBAQwCdTExCzAJBgNVBAUTAjQyMRQwEgYJKoZIhvcNAQkBFgVhQGIu\n\
YzEQMA4GA1UECAwHWsO8cmljaDEaMBgGA1UEAwwRIGxlYWQjeD15PHo+OyJxXCAw\n\
WTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAARrh1nFtFWZNlUtJLt8hV6Ew7k5+oYi\n\
JU5UZcaETUc+lY4DPNHvic439AWpNxJEdFZndWFF+4IOi5hCIge3fRbeo1MwUTAd\n\
BgNVHQ4EFgQUfoziH73HD/GCMisKzmpMIwdKx54wHwYDVR0jBBgwFoAUfoziH73H\n\
D/GCMisKzmpMIwdKx54wDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNHADBE\n\
AiBnXP5UGiS5rBtfB7KyRSptaBBnEma4L7ZVBvDmItrx/wIgQjQrkXJq/LX+BI3M\n\
drOfW0lm4ElfPHP7ZdIFSpsmpPM=\n\
-----END CERTIFICATE-----";

    #[test]
    fn subjects_read_as_java_prints_them() {
        let der = |pem: &str| match rustls_pemfile::read_one(&mut pem.as_bytes()) {
            Ok(Some(rustls_pemfile::Item::X509Certificate(c))) => c,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            x509_identity(&der(MULTI_VALUED)).unwrap(),
            "CN=client one,OU=dev+OU=ops,O=zab\\, test,C=US"
        );
        assert_eq!(
            x509_identity(&der(SPECIAL)).unwrap(),
            "CN=\\ lead\\#x\\=y\\<z\\>\\;\\\"q\\\\\\ ,ST=Zürich,\
             1.2.840.113549.1.9.1=#16056140622e63,2.5.4.5=#13023432,UID=u1,DC=example"
        );
        assert_eq!(x509_identity(b"not a certificate"), None);
    }
}
