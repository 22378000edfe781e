//! `zoo.cfg` and `myid`: turning a ZooKeeper operator's configuration into a
//! typed [`Config`].
//!
//! This module owns the reading of the configuration text (Java properties
//! syntax), the mapping of every key ZooKeeper 3.8 understands onto typed
//! fields with ZooKeeper's defaults, the `server.N` membership lines, the
//! `myid` file, and the start-up checks of ZooKeeper's
//! `QuorumPeerConfig.checkValidity` (reference H). It does no networking and
//! no name resolution: host names in `server.N` lines are kept as text for the
//! transport to resolve.
//!
//! ZooKeeper turns any zoo.cfg key it does not parse itself into the system
//! property `zookeeper.<key>`; operators also pass settings such as
//! `zookeeper.extendedTypesEnabled` or `jute.maxbuffer` as `-D` flags. zab
//! accepts all of those spellings as zoo.cfg keys (see [`canonical_key`]).
//! Keys that ZooKeeper knows but zab does not implement, and keys nobody
//! knows, are collected in [`Config::unsupported`] so that the server can name
//! them in one start-up line instead of ignoring them silently.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use zab_store::GroupCommit;
use zab_wire::jute::FourLetterWord;
use zab_wire::types::ServerId;

use crate::sasl::SaslConfig;
use crate::tls::{ClientAuth, QuorumTlsConfig, TlsConfig, X509_PROVIDER_CLASS};

/// ZooKeeper's `SASLAuthenticationProvider`: the class an `authProvider.*`
/// key names for `sasl` ids to be valid in ACLs.
pub const SASL_PROVIDER_CLASS: &str = "org.apache.zookeeper.server.auth.SASLAuthenticationProvider";

/// SASL settings. ZooKeeper reads the JAAS file from the JVM property
/// `java.security.auth.login.config`; zab reads it from zoo.cfg under the
/// same name, and [`Config::load`] loads its users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaslSettings {
    /// `java.security.auth.login.config`: the JAAS file; no SASL without.
    pub jaas_file: Option<PathBuf>,
    /// `zookeeper.sasl.serverconfig`: its section, default `Server`.
    pub section: String,
    /// The users and `zookeeper.superUser`.
    pub server: SaslConfig,
    /// The section's `Krb5LoginModule` entry (principal, keytab), if it
    /// logs in with one: clients then authenticate with Kerberos (GSSAPI)
    /// instead of DIGEST-MD5 ([`SaslSettings::kerberos`]).
    pub kerberos_login: Option<(String, Option<PathBuf>)>,
    /// `java.security.krb5.conf` (a JVM property for ZooKeeper).
    pub krb5_conf: Option<PathBuf>,
    /// `security.auth_to_local`, `kerberos.removeHostFromPrincipal` and
    /// `kerberos.removeRealmFromPrincipal` (ZooKeeper's system properties).
    pub kerberos_names: crate::kerberos_name::NameMapping,
    /// The JAAS file has the section: clients may authenticate. As in
    /// ZooKeeper's `ServerCnxnFactory.configureSaslLogin`, a file without
    /// it (one with only the quorum sections, say) leaves client SASL off
    /// rather than stopping the server.
    pub for_clients: bool,
    /// Some `authProvider.*` names [`SASL_PROVIDER_CLASS`].
    pub provider: bool,
    /// `zookeeper.allowSaslFailedClients`: a client that fails SASL keeps
    /// its connection (without a `sasl` id) instead of being closed.
    pub allow_failed_clients: bool,
    /// `zookeeper.enforce.auth.enabled` with `zookeeper.enforce.auth.
    /// schemes` (or `zookeeper.sessionRequireClientSASLAuth`, which means
    /// `sasl`): a connection must hold an id of one of these schemes before
    /// any request but auth and SASL (ZooKeeper's `AuthenticationHelper`).
    pub enforce_auth: Option<Vec<String>>,
}

impl SaslSettings {
    /// Kerberos for clients, when the JAAS section logs in with it.
    pub fn kerberos(&self) -> Option<crate::sasl_gssapi::KerberosSettings> {
        let (principal, keytab) = self.kerberos_login.clone()?;
        Some(crate::sasl_gssapi::KerberosSettings {
            principal,
            keytab,
            krb5_conf: self.krb5_conf.clone(),
            names: self.kerberos_names.clone(),
        })
    }
}

impl Default for SaslSettings {
    fn default() -> Self {
        SaslSettings {
            jaas_file: None,
            section: "Server".to_owned(),
            server: SaslConfig::default(),
            kerberos_login: None,
            krb5_conf: None,
            kerberos_names: crate::kerberos_name::NameMapping::default(),
            for_clients: false,
            provider: false,
            allow_failed_clients: false,
            enforce_auth: None,
        }
    }
}

/// SASL between servers: ZooKeeper's `quorum.auth.*` keys (its
/// `QuorumPeerConfig` reads them from zoo.cfg), with the logins of two
/// sections of the same JAAS file as clients' (DIGEST-MD5 users, or
/// Kerberos principals). [`Config::load`] turns them into
/// [`Config::quorum_sasl`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumAuthSettings {
    /// `quorum.auth.enableSasl`, default false.
    pub enable_sasl: bool,
    /// `quorum.auth.learnerRequireSasl`, default false: the links this
    /// server opens authenticate, and fail if refused.
    pub learner_require: bool,
    /// `quorum.auth.serverRequireSasl`, default false: links opened to this
    /// server must authenticate.
    pub server_require: bool,
    /// `quorum.auth.learner.saslLoginContext`: the JAAS section with this
    /// server's own login (`username` and `password`, or a
    /// `Krb5LoginModule` principal), default `QuorumLearner`.
    pub learner_context: String,
    /// `quorum.auth.server.saslLoginContext`: the JAAS section with the
    /// users other servers may authenticate as (or the Kerberos principal
    /// they authenticate to), default `QuorumServer`.
    pub server_context: String,
    /// `quorum.auth.kerberos.servicePrincipal`, default
    /// `zkquorum/localhost`: the principal a Kerberos learner asks for,
    /// `_HOST` standing for the host of the server it connects to.
    pub service_principal: String,
}

impl Default for QuorumAuthSettings {
    fn default() -> Self {
        QuorumAuthSettings {
            enable_sasl: false,
            learner_require: false,
            server_require: false,
            learner_context: "QuorumLearner".to_owned(),
            server_context: "QuorumServer".to_owned(),
            service_principal: zab_wire::quorum_auth::DEFAULT_SERVICE_PRINCIPAL.to_owned(),
        }
    }
}

/// The largest server id usable with extended types (TTL nodes): the top
/// byte 0xff of an ephemeral owner marks an extended type (reference H).
pub const MAX_EXTENDED_SERVER_ID: u64 = 0xfe;

/// Why a configuration was refused. Every message names the key and the
/// offending value, like ZooKeeper's `ConfigException`s.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid value {value:?} for {key}: {reason}")]
    InvalidValue {
        key: String,
        value: String,
        reason: String,
    },
    #[error("serverid {0:?} in myid is not a number")]
    BadMyId(String),
    #[error("JAAS configuration: {0}")]
    Jaas(#[from] crate::sasl::JaasError),
    #[error("enforce.auth.enabled is true: enforce.auth.schemes must be configured")]
    EnforceAuthWithoutSchemes,
    #[error("enforce.auth.schemes: authentication scheme {0} is not available")]
    EnforceAuthScheme(String),
    /// ZooKeeper's `QuorumPeerConfig` refuses these three combinations.
    #[error("quorum.auth.enableSasl is disabled, so cannot enable {0}")]
    QuorumSaslNotEnabled(&'static str),
    #[error(
        "quorum.auth.learnerRequireSasl is disabled, so cannot enable quorum.auth.serverRequireSasl"
    )]
    QuorumServerSaslWithoutLearnerSasl,
    #[error("quorum.auth.enableSasl needs a JAAS file: set java.security.auth.login.config")]
    QuorumSaslWithoutJaas,
    #[error("dataDir is not set")]
    MissingDataDir,
    #[error("tickTime is not set (or is 0)")]
    TickTimeZero,
    #[error("minSessionTimeout ({min}) must not be larger than maxSessionTimeout ({max})")]
    SessionTimeoutRange { min: i32, max: i32 },
    #[error("clientPortAddress is set but clientPort is not set")]
    ClientPortAddressWithoutPort,
    #[error("secureClientPortAddress is set but secureClientPort is not set")]
    SecureClientPortAddressWithoutPort,
    #[error("initLimit is not set")]
    MissingInitLimit,
    #[error("syncLimit is not set")]
    MissingSyncLimit,
    #[error("myid file is missing")]
    MissingMyId,
    #[error("my id {0} is not in the server.N list")]
    MyIdNotInServers(ServerId),
    #[error("server.{id}: quorum and election port must be different (both {port})")]
    SamePorts { id: ServerId, port: u16 },
    #[error("Observers w/o participants is an invalid configuration")]
    ObserversWithoutParticipants,
    #[error("standaloneEnabled = false then number of participants should be > 0")]
    NoParticipants,
    #[error("Observers w/o quorum is an invalid configuration (one participant and standaloneEnabled=true)")]
    ObserversWithoutQuorum,
    #[error(
        "client address for server {id} is {static_addr} in clientPort/clientPortAddress but {server_addr} in its server line"
    )]
    ClientAddressMismatch {
        id: ServerId,
        static_addr: String,
        server_addr: String,
    },
    #[error("server id {0} is larger than 254, which extendedTypesEnabled requires")]
    ServerIdTooLargeForExtendedTypes(ServerId),
    #[error("dynamicConfigFile is set but its contents were not supplied")]
    DynamicConfigNotLoaded,
    #[error("{key} must be in the dynamic config file when dynamicConfigFile is set")]
    StaticMembershipWithDynamicFile { key: String },
    #[error("{key} is not supported by zab: {reason}")]
    Unsupported { key: String, reason: String },
}

/// A quorum member's role (`LearnerType`); the number is what `conf` prints.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PeerType {
    #[default]
    Participant,
    Observer,
}

impl PeerType {
    /// ZooKeeper's `LearnerType.ordinal()`, printed as `peerType=` by `conf`.
    pub fn ordinal(self) -> u8 {
        match self {
            PeerType::Participant => 0,
            PeerType::Observer => 1,
        }
    }
    fn parse(key: &str, value: &str) -> Result<PeerType, ConfigError> {
        match value.trim().to_ascii_lowercase().as_str() {
            "participant" => Ok(PeerType::Participant),
            "observer" => Ok(PeerType::Observer),
            _ => Err(invalid(key, value, "Unrecognised peertype")),
        }
    }
}

impl fmt::Display for PeerType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PeerType::Participant => "participant",
            PeerType::Observer => "observer",
        })
    }
}

/// A host (name or address literal, unresolved) and a port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPort {
    pub host: String,
    pub port: u16,
}

impl fmt::Display for HostPort {
    /// `host:port`, with IPv6 literals in brackets as ZooKeeper's
    /// `delimitedHostString` writes them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// The class `metricsProvider.className` names to turn on ZooKeeper's
/// Prometheus endpoint.
pub const PROMETHEUS_PROVIDER: &str =
    "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider";

/// ZooKeeper's Prometheus metrics provider (`metricsProvider.*`,
/// `PrometheusMetricsProvider`'s defaults): off unless
/// `metricsProvider.className` names it; then `/metrics` on
/// `0.0.0.0:7000`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrometheusConfig {
    pub enabled: bool,
    /// `metricsProvider.httpHost`, default 0.0.0.0.
    pub host: IpAddr,
    /// `metricsProvider.httpPort`, default 7000.
    pub port: u16,
    /// `metricsProvider.exportJvmInfo`, default true: for zab, the
    /// standard `process_*` metrics of the JVM's exports.
    pub export_process_info: bool,
}

impl Default for PrometheusConfig {
    fn default() -> Self {
        PrometheusConfig {
            enabled: false,
            host: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            port: 7000,
            export_process_info: true,
        }
    }
}

/// ZooKeeper's AdminServer settings (`admin.*`, `JettyAdminServer`'s
/// defaults): on, on every interface, port 8080, under `/commands`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminServerConfig {
    /// `admin.enableServer`, default true.
    pub enabled: bool,
    /// `admin.serverAddress`, default 0.0.0.0.
    pub address: IpAddr,
    /// `admin.serverPort`, default 8080.
    pub port: u16,
    /// `admin.commandURL`, default `/commands` (kept without a trailing `/`).
    pub command_url: String,
}

impl Default for AdminServerConfig {
    fn default() -> Self {
        AdminServerConfig {
            enabled: true,
            address: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            port: 8080,
            command_url: "/commands".to_owned(),
        }
    }
}

/// One `server.N=host:quorumPort:electionPort[:type][;[clientHost:]clientPort]`
/// line (ZooKeeper's `QuorumPeer.QuorumServer`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuorumServer {
    pub id: ServerId,
    pub host: String,
    pub quorum_port: u16,
    pub election_port: u16,
    pub peer_type: PeerType,
    /// The client address given after `;`; a bare port means `0.0.0.0`.
    pub client_addr: Option<HostPort>,
}

impl QuorumServer {
    pub fn quorum_addr(&self) -> HostPort {
        HostPort {
            host: self.host.clone(),
            port: self.quorum_port,
        }
    }
    pub fn election_addr(&self) -> HostPort {
        HostPort {
            host: self.host.clone(),
            port: self.election_port,
        }
    }
}

impl fmt::Display for QuorumServer {
    /// The value part of the membership line as `QuorumServer.toString()`
    /// prints it in `conf` (3.8): `host:q:e:type[;clientHost:clientPort]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}",
            self.quorum_addr(),
            self.election_port,
            self.peer_type
        )?;
        if let Some(c) = &self.client_addr {
            write!(f, ";{c}")?;
        }
        Ok(())
    }
}

/// Which four-letter words may run (`4lw.commands.whitelist`, reference E).
///
/// Unset means only `srvr`; `*` means every known word; `srvr` is always
/// enabled because `zkServer.sh status` depends on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FourLetterWhitelist {
    words: BTreeSet<String>,
}

impl Default for FourLetterWhitelist {
    fn default() -> Self {
        FourLetterWhitelist {
            words: BTreeSet::from(["srvr".to_owned()]),
        }
    }
}

impl FourLetterWhitelist {
    /// Parses the comma-separated list as `FourLetterCommands.isEnabled`
    /// does: entries are trimmed, empty ones skipped, `*` enables all.
    pub fn parse(value: &str) -> FourLetterWhitelist {
        let mut list = FourLetterWhitelist::default();
        for word in value.split(',').map(str::trim) {
            if word == "*" {
                list.words
                    .extend(FourLetterWord::ALL.iter().map(|w| w.as_str().to_owned()));
                break;
            }
            if !word.is_empty() {
                list.words.insert(word.to_owned());
            }
        }
        list
    }
    /// Every known word.
    pub fn all() -> FourLetterWhitelist {
        FourLetterWhitelist::parse("*")
    }
    pub fn allows(&self, word: &str) -> bool {
        self.words.contains(word)
    }
    pub fn words(&self) -> impl Iterator<Item = &str> {
        self.words.iter().map(String::as_str)
    }
}

/// A parsed and validated `zoo.cfg` plus `myid`.
///
/// Field defaults are ZooKeeper 3.8's (reference H). Times are milliseconds
/// in the integer width ZooKeeper uses, since they travel in `int` fields of
/// the client protocol (session timeouts) or are multiplied by ticks.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// `tickTime`, default 3000.
    pub tick_time_ms: i32,
    /// `initLimit` in ticks; 0 = unset (required in distributed mode).
    pub init_limit: i32,
    /// `syncLimit` in ticks; 0 = unset (required in distributed mode).
    pub sync_limit: i32,
    /// `connectToLearnerMasterLimit` in ticks; 0 means use `initLimit`.
    pub connect_to_learner_master_limit: i32,
    /// `dataDir`: snapshots and epochs (in `version-2`) and `myid`. A relative
    /// path is relative to the working directory, as in Java.
    pub data_dir: PathBuf,
    /// `dataLogDir`, defaults to `data_dir`. When it differs, the store's
    /// write-ahead log (what every commit syncs) lives in `dataLogDir/zab`,
    /// as ZooKeeper's txn logs live in `dataLogDir/version-2`: the admin
    /// guide's dedicated log device. Changing it between runs is safe: the
    /// store flushes itself before it uses the new directory.
    pub data_log_dir: PathBuf,
    /// `clientPort`; `None` when unset (a server line may still give one).
    pub client_port: Option<u16>,
    /// `clientPortAddress`; `None` = all interfaces.
    pub client_port_address: Option<IpAddr>,
    /// `clientPortListenBacklog`, -1 = OS default.
    pub client_port_listen_backlog: i32,
    /// `minSessionTimeout`, default 2 × tickTime.
    pub min_session_timeout_ms: i32,
    /// `maxSessionTimeout`, default 20 × tickTime.
    pub max_session_timeout_ms: i32,
    /// `maxClientCnxns` per client IP, default 60, 0 = unlimited.
    pub max_client_cnxns: u32,
    /// `maxCnxns` in total, default 0 = unlimited.
    pub max_cnxns: u32,
    /// `snapCount`, default 100000, raised to 2 if lower (as ZooKeeper does).
    pub snap_count: u32,
    /// `snapSizeLimitInKb`, default 4 GiB in KiB; ≤ 0 disables.
    pub snap_size_limit_kb: i64,
    /// `autopurge.snapRetainCount`, default 3, raised to 3 if lower.
    pub autopurge_snap_retain_count: u32,
    /// `autopurge.purgeInterval` in hours, 0 = purge off.
    pub autopurge_purge_interval_hours: u32,
    /// `4lw.commands.whitelist`.
    pub four_letter_whitelist: FourLetterWhitelist,
    /// `jute.maxbuffer`, default 0xfffff (behaviour 15).
    pub jute_max_buffer: u32,
    /// `standaloneEnabled`, default true.
    pub standalone_enabled: bool,
    /// `extendedTypesEnabled` (TTL nodes), default false.
    pub extended_types_enabled: bool,
    /// `enforceQuota`: hard quotas refuse writes past them, default false.
    pub enforce_quota: bool,
    /// `fsync.warningthresholdms`: a log sync slower than this is warned
    /// of and counted, default 1000.
    pub fsync_warning_threshold_ms: u64,
    /// `znode.container.checkIntervalMs`, default 60000.
    pub container_check_interval_ms: u64,
    /// `znode.container.maxPerMinute`, default 10000.
    pub container_max_per_minute: u32,
    /// `znode.container.maxNeverUsedIntervalMs`, default 0 = never.
    pub container_max_never_used_interval_ms: u64,
    /// `DigestAuthenticationProvider.superDigest` (`super:<base64 hash>`).
    pub super_digest: Option<String>,
    /// `DigestAuthenticationProvider.digestAlg`, default SHA1.
    pub digest_alg: zab_tree::acl::DigestAlg,
    /// `skipACL` (`yes` disables ACL checks).
    pub skip_acl: bool,
    /// `forceSync` (`no` skips fsync of the txn log).
    pub force_sync: bool,
    /// `datadir.autocreate`, default true: with `false` a missing store
    /// directory stops the server (exit 3) instead of being made, so that
    /// a data disk that failed to mount is not taken for a new server.
    pub datadir_autocreate: bool,
    /// `db.autocreate`, default true: with `false` an empty store is not
    /// trusted unless `dataDir/initialize` says to start it empty
    /// (`FileTxnSnapLog.restore`); zab then refuses to start.
    pub db_autocreate: bool,
    /// `commitLogCount`, default 500 (reference F.4).
    pub commit_log_count: u32,
    /// `snapshotSizeFactor`, default 0.33; < 0 disables txn-log sync.
    pub snapshot_size_factor: f64,
    /// `zab.connectHoldMs` (zab's own key), default 1000: how long a quorum
    /// server that is electing or syncing holds a new client connection
    /// before closing it (ZooKeeper closes it at once; see
    /// [`crate::held_clients`]). 0 closes at once, as ZooKeeper does.
    pub connect_hold_ms: u64,
    /// `zab.workerThreads` (zab's own key): threads of the async runtime
    /// that serves clients and peers; 0 (the default) means one per CPU,
    /// and 1 a current-thread runtime (the main thread runs every task).
    /// Servers that share a machine do better with fewer: with three
    /// servers on two CPUs, one each did more writes/s than two each in
    /// every interleaved pair of runs, by 1 to 80 % (BENCHMARKS.md), as
    /// idle workers woken to steal work cost more than they gain when the
    /// CPUs are already shared.
    pub worker_threads: usize,
    /// `globalOutstandingLimit` (ZooKeeper's `zookeeper.globalOutstandingLimit`,
    /// default 1000): past this many requests read and not yet answered, a
    /// connection with requests outstanding is not read (`client_flow`).
    pub global_outstanding_limit: u32,
    /// `flushDelay` (ZooKeeper's `zookeeper.flushDelay`), in ms: the longest
    /// the txn log holds a group of appends open before its sync. zab's
    /// default is 1, ZooKeeper's 0 (sync at once), and zab holds only while
    /// the log is busy, until the group is as large as the previous one
    /// (`zab_store::GroupCommit`); 0 gives ZooKeeper's behaviour.
    pub flush_delay_ms: u64,
    /// `maxBatchSize` (ZooKeeper's `zookeeper.maxBatchSize`), default 1000:
    /// a held group is synced once it has this many txns, and no sync covers
    /// more, as in ZooKeeper; 0 means no limit, as in ZooKeeper.
    pub max_batch_size: usize,
    /// `electionAlg`; only 3 is accepted.
    pub election_alg: u32,
    /// `quorumListenOnAllIPs`.
    pub quorum_listen_on_all_ips: bool,
    /// `syncEnabled` (default true): an observer logs the txns it applies
    /// and snapshots as a follower does. With false it does neither, as
    /// ZooKeeper's `ObserverZooKeeperServer` without its sync processor: it
    /// spares the observer's disk, and a restarted observer catches up
    /// from the leader (DIFF, or SNAP if it is too far behind). Voters
    /// always log. `observer.syncEnabled` (ZooKeeper's system property
    /// `zookeeper.observer.syncEnabled`) wins over it.
    pub sync_enabled: bool,
    /// `observerMasterPort`: a follower in sync listens on this port (on
    /// its quorum address) for observers, and an observer syncs from a
    /// voter on it instead of from the leader (ZooKeeper 3.6+'s
    /// `ObserverMaster`). Unset, or 0 or below as ZooKeeper reads it: off.
    pub observer_master_port: Option<u16>,
    /// `leaderServes` (`no`: the leader takes no clients; its followers
    /// and observers serve them all).
    pub leader_serves: bool,
    /// Membership: every `server.N` line (voters and observers).
    pub servers: BTreeMap<ServerId, QuorumServer>,
    /// Membership version: 0 for a static config, else the hex suffix of
    /// the dynamic config file name (printed by `conf` as `version=`).
    pub membership_version: u64,
    /// This server's role; the server line's type wins over `peerType`.
    pub peer_type: PeerType,
    /// From `dataDir/myid`; required in distributed mode.
    pub my_id: Option<ServerId>,
    /// The TLS client port and its `ssl.*` settings (`secureClientPort`).
    pub tls: TlsConfig,
    /// SASL for clients (DIGEST-MD5 users, or a Kerberos login, from a
    /// JAAS file).
    pub sasl: SaslSettings,
    /// TLS between servers (`sslQuorum`).
    pub quorum_tls: QuorumTlsConfig,
    /// SASL between servers, as configured (`quorum.auth.*`).
    pub quorum_auth: QuorumAuthSettings,
    /// SASL between servers with its users and credentials read from the
    /// JAAS file: set by [`Config::load`] on a distributed server with
    /// `quorum.auth.enableSasl=true`.
    pub quorum_sasl: Option<std::sync::Arc<zab_wire::quorum_auth::QuorumSasl>>,
    /// `localSessionsEnabled`, default false.
    pub local_sessions: bool,
    /// `readonlymode.enabled` (a JVM property in ZooKeeper): a server cut
    /// off from its quorum serves read-only clients.
    pub read_only_mode: bool,
    /// `localSessionsUpgradingEnabled`, default false.
    pub local_sessions_upgrading: bool,
    /// ZooKeeper's AdminServer: the four-letter words as JSON over HTTP
    /// (`admin.*`).
    pub admin: AdminServerConfig,
    /// ZooKeeper's Prometheus metrics provider (`metricsProvider.*`).
    pub prometheus: PrometheusConfig,
    /// The zoo.cfg text as read, for the admin server's
    /// `initial_configuration` (ZooKeeper's `QuorumPeerConfig` keeps the
    /// file's bytes); empty when the config did not come from a file.
    pub initial_config: String,
    /// Keys accepted but not implemented, and unknown keys, in file order,
    /// each as `key (reason)`. Logged in one start-up line.
    pub unsupported: Vec<String>,
}

impl Config {
    /// The txn log's group commit policy, from `flushDelay` and
    /// `maxBatchSize` (0 means no limit, as in ZooKeeper).
    pub fn group_commit(&self) -> GroupCommit {
        GroupCommit {
            max_delay: Duration::from_millis(self.flush_delay_ms),
            max_batch: match self.max_batch_size {
                0 => usize::MAX,
                n => n,
            },
            ..GroupCommit::default()
        }
    }

    /// Reads `path`, then `dataDir/myid` if it is a file (standalone servers
    /// need none), then the `dynamicConfigFile` if one is named.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = read(path)?;
        let props = Properties::parse(&text);
        let data_dir = props.get("dataDir").map(|(_, v)| PathBuf::from(v));
        let myid_text = match &data_dir {
            Some(dir) => {
                let myid = dir.join("myid");
                if myid.is_file() {
                    Some(read(&myid)?)
                } else {
                    None
                }
            }
            None => None,
        };
        let dynamic = match props.get("dynamicConfigFile") {
            Some((_, file)) => {
                let file = PathBuf::from(file);
                Some((read(&file)?, dynamic_file_version(&file)))
            }
            None => None,
        };
        let mut cfg = Config::parse_parts(
            &props,
            dynamic.as_ref().map(|(t, v)| (t.as_str(), *v)),
            myid_text.as_deref(),
        )?;
        cfg.initial_config = text;
        if let Some(jaas) = &cfg.sasl.jaas_file {
            match crate::sasl::load_server_login(jaas, &cfg.sasl.section) {
                Ok(crate::sasl::ServerLogin::Digest(users)) => {
                    cfg.sasl.server.users = users;
                    cfg.sasl.for_clients = true;
                }
                Ok(crate::sasl::ServerLogin::Kerberos { principal, keytab }) => {
                    cfg.sasl.kerberos_login = Some((principal, keytab));
                    cfg.sasl.for_clients = true;
                }
                Err(crate::sasl::JaasError::NoSection { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        cfg.quorum_sasl = cfg.load_quorum_sasl()?.map(std::sync::Arc::new);
        Ok(cfg)
    }

    /// `quorum.auth.*` with the JAAS file's sections, on a distributed
    /// server (ZooKeeper's standalone server has no quorum and reads none).
    /// As in ZooKeeper's `QuorumPeer.initialize`, both sections must exist
    /// whenever SASL is on, and the server does not start without them.
    fn load_quorum_sasl(&self) -> Result<Option<zab_wire::quorum_auth::QuorumSasl>, ConfigError> {
        let qa = &self.quorum_auth;
        if !qa.enable_sasl || !self.is_distributed() {
            return Ok(None);
        }
        let jaas = self
            .sasl
            .jaas_file
            .as_deref()
            .ok_or(ConfigError::QuorumSaslWithoutJaas)?;
        use zab_wire::quorum_auth::{LearnerLogin, QuorumSasl, ServerLogin};
        // Each side's mechanism follows its own section, as in ZooKeeper
        // (`SecurityUtils.createSaslServer` / `createSaslClient`: a login
        // with a Kerberos principal means GSSAPI).
        let server = match crate::sasl::load_server_login(jaas, &qa.server_context)? {
            crate::sasl::ServerLogin::Digest(users) => ServerLogin::Digest(users),
            crate::sasl::ServerLogin::Kerberos { principal, keytab } => ServerLogin::Kerberos(
                std::sync::Arc::new(crate::sasl_gssapi::QuorumAcceptor::new(principal, keytab)),
            ),
        };
        let learner = match crate::sasl::load_learner_login(jaas, &qa.learner_context) {
            Ok(login) if qa.learner_require => Some(match login {
                crate::sasl::LearnerLogin::Digest(credentials) => LearnerLogin::Digest(credentials),
                crate::sasl::LearnerLogin::Kerberos { principal, keytab } => {
                    LearnerLogin::Kerberos {
                        initiator: std::sync::Arc::new(crate::sasl_gssapi::QuorumInitiator::new(
                            principal, keytab,
                        )),
                        service_principal: qa.service_principal.clone(),
                    }
                }
            }),
            Ok(_) => None,
            // Without learnerRequireSasl the section's login is never
            // used (ZooKeeper's learner then skips SASL), but the section
            // must be there.
            Err(crate::sasl::JaasError::NoLogin { .. }) if !qa.learner_require => None,
            Err(e) => return Err(e.into()),
        };
        Ok(Some(QuorumSasl {
            learner,
            server,
            server_require: qa.server_require,
            // ZooKeeper's `authzHosts` are its view's hostnames, observers'
            // included (`QuorumPeer.initialize`).
            hosts: self
                .servers
                .values()
                .map(|s| (s.id, s.host.clone()))
                .collect(),
        }))
    }

    /// Parses zoo.cfg text and the content of `myid` (if the file exists),
    /// applies ZooKeeper's defaults and runs [`Config::validate`].
    pub fn parse(text: &str, myid: Option<&str>) -> Result<Config, ConfigError> {
        Config::parse_parts(&Properties::parse(text), None, myid)
    }

    /// As [`Config::parse`], with the text of the `dynamicConfigFile` and its
    /// version (the hex suffix of its file name).
    pub fn parse_with_dynamic(
        text: &str,
        dynamic: &str,
        dynamic_version: u64,
        myid: Option<&str>,
    ) -> Result<Config, ConfigError> {
        Config::parse_parts(
            &Properties::parse(text),
            Some((dynamic, dynamic_version)),
            myid,
        )
    }

    fn parse_parts(
        props: &Properties,
        dynamic: Option<(&str, u64)>,
        myid: Option<&str>,
    ) -> Result<Config, ConfigError> {
        let mut b = Builder::default();
        let has_dynamic_file = props.get("dynamicConfigFile").is_some();
        for (key, value) in props.entries() {
            b.apply(key, value, has_dynamic_file)?;
        }
        match (has_dynamic_file, dynamic) {
            (true, None) => return Err(ConfigError::DynamicConfigNotLoaded),
            (true, Some((text, version))) => {
                for (key, value) in Properties::parse(text).entries() {
                    b.apply_membership(key, value)?;
                }
                b.membership_version = version;
            }
            (false, _) => {}
        }
        let my_id = myid.map(parse_myid).transpose()?;
        let cfg = b.finish(my_id)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Distributed mode = more than one voter, or `standaloneEnabled=false`
    /// (reference H, `QuorumPeerConfig.isDistributed`).
    pub fn is_distributed(&self) -> bool {
        !self.standalone_enabled || self.voters().count() > 1
    }

    /// The `server.N` entries that vote.
    pub fn voters(&self) -> impl Iterator<Item = &QuorumServer> {
        self.servers
            .values()
            .filter(|s| s.peer_type == PeerType::Participant)
    }

    /// The `server.N` entries that observe.
    pub fn observers(&self) -> impl Iterator<Item = &QuorumServer> {
        self.servers
            .values()
            .filter(|s| s.peer_type == PeerType::Observer)
    }

    /// This server's own `server.N` entry, if it has an id and is listed.
    pub fn my_server(&self) -> Option<&QuorumServer> {
        self.my_id.and_then(|id| self.servers.get(&id))
    }

    /// The authentication providers registered beside `ip` and `digest`
    /// (`authProvider.*`): only their ACL entries can match.
    pub fn providers(&self) -> zab_tree::acl::Providers {
        zab_tree::acl::Providers {
            x509: self.tls.x509_provider,
            sasl: self.sasl.provider,
        }
    }

    /// Where to listen for clients: this server's line's client address
    /// wins over `clientPort`/`clientPortAddress` (`setupClientPort`).
    pub fn client_listen_addr(&self) -> Option<HostPort> {
        if let Some(addr) = self.my_server().and_then(|s| s.client_addr.clone()) {
            return Some(addr);
        }
        self.client_port.map(|port| HostPort {
            host: self
                .client_port_address
                .map(|a| a.to_string())
                .unwrap_or_else(|| "0.0.0.0".to_owned()),
            port,
        })
    }

    /// The membership text `conf` prints after `membership: `
    /// (`QuorumMaj.toString`): one `server.N=…` line per member, then
    /// `version=<hex>` without a trailing newline.
    pub fn membership_text(&self) -> String {
        let mut out = String::new();
        for s in self.servers.values() {
            out.push_str(&format!("server.{}={}\n", s.id, s));
        }
        out.push_str(&format!("version={:x}", self.membership_version));
        out
    }

    /// How long a learner keeps trying to connect to its leader:
    /// `connectToLearnerMasterLimit` ticks when set, else `initLimit`
    /// (ZooKeeper's `Learner.connectToLeader`).
    pub fn leader_connect_limit(&self) -> Duration {
        let ticks = match self.connect_to_learner_master_limit {
            n if n > 0 => n,
            _ => self.init_limit.max(1),
        };
        Duration::from_millis(self.tick_time_ms.max(0) as u64 * ticks as u64)
    }

    /// The single start-up line naming every unsupported key, or `None`.
    pub fn unsupported_summary(&self) -> Option<String> {
        if self.unsupported.is_empty() {
            None
        } else {
            Some(format!(
                "zoo.cfg keys that zab does not support (ignored): {}",
                self.unsupported.join(", ")
            ))
        }
    }

    /// `setupClientPort`: a client address in this server's own line must
    /// agree with `clientPort`/`clientPortAddress` when both are given.
    fn check_client_address(&self) -> Result<(), ConfigError> {
        let (Some(port), Some(server)) = (self.client_port, self.my_server()) else {
            return Ok(());
        };
        let Some(addr) = &server.client_addr else {
            return Ok(());
        };
        let same = match self.client_port_address {
            Some(a) if !a.is_unspecified() => addr.port == port && ip_of(&addr.host) == Some(a),
            _ => addr.port == port,
        };
        if same {
            return Ok(());
        }
        let host = self
            .client_port_address
            .map(|a| a.to_string())
            .unwrap_or_else(|| "0.0.0.0".to_owned());
        Err(ConfigError::ClientAddressMismatch {
            id: server.id,
            static_addr: HostPort { host, port }.to_string(),
            server_addr: addr.to_string(),
        })
    }

    /// ZooKeeper's start-up checks (`parseProperties`, `parseDynamicConfig`,
    /// `QuorumServer`, `checkValidity`), in ZooKeeper's order.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.data_dir.as_os_str().is_empty() {
            return Err(ConfigError::MissingDataDir);
        }
        let qa = &self.quorum_auth;
        if !qa.enable_sasl && qa.server_require {
            return Err(ConfigError::QuorumSaslNotEnabled(
                "quorum.auth.serverRequireSasl",
            ));
        }
        if !qa.enable_sasl && qa.learner_require {
            return Err(ConfigError::QuorumSaslNotEnabled(
                "quorum.auth.learnerRequireSasl",
            ));
        }
        if !qa.learner_require && qa.server_require {
            return Err(ConfigError::QuorumServerSaslWithoutLearnerSasl);
        }
        if self.client_port.is_none() && self.client_port_address.is_some() {
            return Err(ConfigError::ClientPortAddressWithoutPort);
        }
        if self.tls.secure_client_port.is_none() && self.tls.secure_client_port_address.is_some() {
            return Err(ConfigError::SecureClientPortAddressWithoutPort);
        }
        if self.tick_time_ms == 0 {
            return Err(ConfigError::TickTimeZero);
        }
        if self.min_session_timeout_ms > self.max_session_timeout_ms {
            return Err(ConfigError::SessionTimeoutRange {
                min: self.min_session_timeout_ms,
                max: self.max_session_timeout_ms,
            });
        }
        for s in self.servers.values() {
            if s.quorum_port == s.election_port {
                return Err(ConfigError::SamePorts {
                    id: s.id,
                    port: s.quorum_port,
                });
            }
        }
        let voters = self.voters().count();
        let observers = self.observers().count();
        if voters == 0 {
            if !self.standalone_enabled {
                return Err(ConfigError::NoParticipants);
            }
            if observers > 0 {
                return Err(ConfigError::ObserversWithoutParticipants);
            }
        } else if voters == 1 && self.standalone_enabled && observers > 0 {
            return Err(ConfigError::ObserversWithoutQuorum);
        }
        self.check_client_address()?;
        if self.is_distributed() {
            if self.init_limit == 0 {
                return Err(ConfigError::MissingInitLimit);
            }
            if self.sync_limit == 0 {
                return Err(ConfigError::MissingSyncLimit);
            }
            let Some(id) = self.my_id else {
                return Err(ConfigError::MissingMyId);
            };
            // ZooKeeper fails later, when the peer cannot find its own
            // address; zab refuses at start-up with the reason.
            if !self.servers.contains_key(&id) {
                return Err(ConfigError::MyIdNotInServers(id));
            }
        }
        if self.extended_types_enabled {
            if let Some(id) = self.my_id {
                if id.0 > MAX_EXTENDED_SERVER_ID {
                    return Err(ConfigError::ServerIdTooLargeForExtendedTypes(id));
                }
            }
        }
        Ok(())
    }
}

/// Maps every accepted spelling of a key to the one zab's parser matches:
/// ZooKeeper turns an unknown zoo.cfg key `k` into the system property
/// `zookeeper.k`, so `zookeeper.k` is accepted as `k`; the few `-D`
/// properties ZooKeeper reads without that prefix keep their own names.
pub fn canonical_key(key: &str) -> &str {
    let stripped = key.strip_prefix("zookeeper.").unwrap_or(key);
    if !stripped.is_empty() && stripped != key && is_known_key(stripped) {
        stripped
    } else {
        key
    }
}

fn is_known_key(key: &str) -> bool {
    SUPPORTED_KEYS.contains(&key)
        || unsupported_reason(key).is_some()
        || key.starts_with("server.")
        || key.starts_with("superUser.")
        || key.starts_with("group.")
        || key.starts_with("weight.")
}

/// Keys zab parses into [`Config`] fields.
const SUPPORTED_KEYS: &[&str] = &[
    "dataDir",
    "dataLogDir",
    "clientPort",
    "clientPortAddress",
    "clientPortListenBacklog",
    "tickTime",
    "initLimit",
    "syncLimit",
    "connectToLearnerMasterLimit",
    "minSessionTimeout",
    "maxSessionTimeout",
    "maxClientCnxns",
    "maxCnxns",
    "snapCount",
    "snapSizeLimitInKb",
    "autopurge.snapRetainCount",
    "autopurge.purgeInterval",
    "4lw.commands.whitelist",
    "jute.maxbuffer",
    "standaloneEnabled",
    "extendedTypesEnabled",
    "enforceQuota",
    "fsync.warningthresholdms",
    "znode.container.checkIntervalMs",
    "znode.container.maxPerMinute",
    "znode.container.maxNeverUsedIntervalMs",
    "DigestAuthenticationProvider.superDigest",
    "DigestAuthenticationProvider.digestAlg",
    "DigestAuthenticationProvider.enabled",
    "skipACL",
    "forceSync",
    "datadir.autocreate",
    "db.autocreate",
    "globalOutstandingLimit",
    "commitLogCount",
    "snapshotSizeFactor",
    "zab.connectHoldMs",
    "zab.workerThreads",
    "flushDelay",
    "maxBatchSize",
    "electionAlg",
    "quorumListenOnAllIPs",
    "syncEnabled",
    "observer.syncEnabled",
    "observerMasterPort",
    "leaderServes",
    "peerType",
    "dynamicConfigFile",
    "secureClientPort",
    "secureClientPortAddress",
    "client.portUnification",
    "ssl.keyStore.location",
    "ssl.keyStore.password",
    "ssl.keyStore.type",
    "ssl.trustStore.location",
    "ssl.trustStore.password",
    "ssl.trustStore.type",
    "ssl.clientAuth",
    "ssl.protocol",
    "ssl.enabledProtocols",
    "ssl.handshakeDetectionTimeoutMillis",
    "client.certReload",
    "sslQuorumReloadCertFiles",
    "ssl.ciphersuites",
    "ssl.quorum.keyStore.location",
    "ssl.quorum.keyStore.password",
    "ssl.quorum.keyStore.type",
    "ssl.quorum.trustStore.location",
    "ssl.quorum.trustStore.password",
    "ssl.quorum.trustStore.type",
    "ssl.quorum.hostnameVerification",
    "ssl.quorum.allowReverseDnsLookup",
    "ssl.quorum.protocol",
    "ssl.quorum.enabledProtocols",
    "ssl.quorum.ciphersuites",
    "ssl.authProvider",
    "X509AuthenticationProvider.superUser",
    "java.security.auth.login.config",
    "sasl.serverconfig",
    "java.security.krb5.conf",
    "kerberos.removeHostFromPrincipal",
    "kerberos.removeRealmFromPrincipal",
    "security.auth_to_local",
    "quorum.auth.enableSasl",
    "quorum.auth.learnerRequireSasl",
    "quorum.auth.serverRequireSasl",
    "quorum.auth.learner.saslLoginContext",
    "quorum.auth.server.saslLoginContext",
    "quorum.auth.kerberos.servicePrincipal",
    "superUser",
    "allowSaslFailedClients",
    "enforce.auth.enabled",
    "enforce.auth.schemes",
    "sessionRequireClientSASLAuth",
    // Hostname checks of the peer's certificate: ZooKeeper makes none of a
    // client's (`ClientX509Util` turns client hostname verification off),
    // so on the client port they change nothing.
    "ssl.hostnameVerification",
    "ssl.clientHostnameVerification",
    "ssl.allowReverseDnsLookup",
    // Netty's is the listener zab's behaves like (connections in `dump`);
    // ZooKeeper needs it for TLS.
    "serverCnxnFactory",
    // Accepted when they ask for what zab does anyway (their defaults).
    "reconfigEnabled",
    "localSessionsEnabled",
    "localSessionsUpgradingEnabled",
    "readonlymode.enabled",
    "sslQuorum",
    "portUnification",
    "multiAddress.enabled",
    "digest.enabled",
    "snapshot.compression.method",
    "admin.enableServer",
    "admin.serverAddress",
    "admin.serverPort",
    "admin.commandURL",
    "admin.portUnification",
    "admin.forceHttps",
    "metricsProvider.className",
    "metricsProvider.httpHost",
    "metricsProvider.httpPort",
    "metricsProvider.exportJvmInfo",
];

/// Keys ZooKeeper knows that zab accepts but does not implement, with why.
fn unsupported_reason(key: &str) -> Option<&'static str> {
    let exact = match key {
        "preAllocSize" => "the txn log is RocksDB, no preallocation",
        "closeSessionTxn.enabled" => "close-session txns always carry paths",
        "quorum.cnxn.threads.size" => "each election link authenticates on a task of its own",
        "quorum.auth.kerberos.servicePrincipal" => {
            "no Kerberos between servers (SASL there is DIGEST-MD5 only)"
        }
        "oraclePath" => "no quorum oracle",
        "authProvider" => "pluggable auth providers are Java classes",
        "requireClientAuthScheme" => "not implemented",
        "ssl.crl" | "ssl.ocsp" => "no revocation checks",
        "clientCnxnSocket" => "a client setting",
        "admin.idleTimeout" => "idle admin connections stay open until the client closes them",
        "admin.httpVersion" => "the admin server speaks HTTP/1.1",
        "jvm.pause.info-threshold.ms"
        | "jvm.pause.warn-threshold.ms"
        | "jvm.pause.sleep-time.ms"
        | "jvm.pause.monitor" => "no JVM",
        "maxWriteQueuePollTime" => {
            "a held group is synced once it is as large as the previous one instead"
        }
        "watchManagerName" => "zab has one watch manager",
        "leaderConnectDelayDuringRetryMs" => "not implemented",
        "request.throttle.enabled" | "requestThrottleLimit" => "not implemented",
        _ => "",
    };
    if !exact.is_empty() {
        return Some(exact);
    }
    const PREFIXES: &[(&str, &str)] = &[
        ("ssl.quorum.", "not implemented for TLS between servers"),
        ("ssl.", "not implemented"),
        ("quorum.ssl.", "not implemented for TLS between servers"),
        ("admin.", "not implemented"),
        ("metricsProvider.", "not implemented"),
        ("multiAddress.", "one address per server"),
        ("authProvider.", "pluggable auth providers are Java classes"),
        ("kerberos.", "not implemented"),
        ("sasl.", "not implemented"),
        ("jute.", "not implemented"),
    ];
    PREFIXES
        .iter()
        .find(|(p, _)| key.starts_with(p) && key != "jute.maxbuffer")
        .map(|(_, r)| *r)
}

/// Java `Properties.load`, reduced to what zoo.cfg uses: `#`/`!` comment
/// lines, `key=value`, `key:value` or `key value`, backslash escapes and
/// line continuations. Later duplicates win, as in a `Hashtable`.
#[derive(Debug, Default)]
struct Properties {
    entries: Vec<(String, String)>,
}

impl Properties {
    fn parse(text: &str) -> Properties {
        let mut entries: Vec<(String, String)> = Vec::new();
        let mut lines = text.lines();
        while let Some(first) = lines.next() {
            let mut logical = first.trim_start().to_owned();
            if logical.is_empty() || logical.starts_with('#') || logical.starts_with('!') {
                continue;
            }
            while ends_with_odd_backslashes(&logical) {
                logical.pop();
                match lines.next() {
                    Some(next) => logical.push_str(next.trim_start()),
                    None => break,
                }
            }
            let (key, value) = split_key_value(&logical);
            let (key, value) = (unescape(key), unescape(value));
            let (key, value) = (key.trim().to_owned(), value.trim().to_owned());
            entries.retain(|(k, _)| *k != key);
            entries.push((key, value));
        }
        Properties { entries }
    }

    fn entries(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Looks a key up under any accepted spelling.
    fn get(&self, canonical: &str) -> Option<(&str, &str)> {
        self.entries().find(|(k, _)| canonical_key(k) == canonical)
    }
}

fn ends_with_odd_backslashes(s: &str) -> bool {
    s.chars().rev().take_while(|c| *c == '\\').count() % 2 == 1
}

fn split_key_value(line: &str) -> (&str, &str) {
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '=' | ':' => return (&line[..i], &line[i + 1..]),
            c if c.is_whitespace() => {
                let rest = line[i..].trim_start();
                let rest = rest
                    .strip_prefix('=')
                    .or_else(|| rest.strip_prefix(':'))
                    .unwrap_or(rest);
                return (&line[..i], rest);
            }
            _ => {}
        }
    }
    (line, "")
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\u{c}'),
            Some('u') => {
                let hex: String = chars.clone().take(4).collect();
                match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    Some(ch) if hex.len() == 4 => {
                        out.push(ch);
                        for _ in 0..4 {
                            chars.next();
                        }
                    }
                    _ => out.push('u'),
                }
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// Collects fields while the keys are read; `finish` applies the defaults
/// that depend on other keys.
struct Builder {
    cfg: Config,
    data_dir: Option<PathBuf>,
    data_log_dir: Option<PathBuf>,
    min_session_timeout: i32,
    max_session_timeout: i32,
    config_peer_type: PeerType,
    /// `observer.syncEnabled` (the system property
    /// `zookeeper.observer.syncEnabled`), which wins over `syncEnabled`.
    observer_sync_property: Option<bool>,
    membership_version: u64,
    /// Which keys were given without the `zookeeper.` prefix: those win over
    /// the prefixed spelling, as the zoo.cfg key overwrites the property.
    plain_keys: BTreeSet<String>,
    enforce_auth: bool,
    enforce_schemes: Vec<String>,
    require_sasl: bool,
    /// Whether `authProvider.x509` was given, whatever its value: without
    /// it a TLS client port registers the x509 provider by itself.
    x509_provider_key: bool,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            cfg: Config {
                tick_time_ms: 3000,
                init_limit: 0,
                sync_limit: 0,
                connect_to_learner_master_limit: 0,
                data_dir: PathBuf::new(),
                data_log_dir: PathBuf::new(),
                client_port: None,
                client_port_address: None,
                client_port_listen_backlog: -1,
                min_session_timeout_ms: -1,
                max_session_timeout_ms: -1,
                max_client_cnxns: 60,
                max_cnxns: 0,
                snap_count: 100_000,
                snap_size_limit_kb: 4_194_304,
                autopurge_snap_retain_count: 3,
                autopurge_purge_interval_hours: 0,
                four_letter_whitelist: FourLetterWhitelist::default(),
                jute_max_buffer: 0xfffff,
                standalone_enabled: true,
                extended_types_enabled: false,
                enforce_quota: false,
                fsync_warning_threshold_ms: 1000,
                container_check_interval_ms: 60_000,
                container_max_per_minute: 10_000,
                container_max_never_used_interval_ms: 0,
                super_digest: None,
                digest_alg: zab_tree::acl::DigestAlg::Sha1,
                skip_acl: false,
                force_sync: true,
                datadir_autocreate: true,
                db_autocreate: true,
                commit_log_count: 500,
                snapshot_size_factor: 0.33,
                connect_hold_ms: crate::held_clients::HOLD_MS,
                worker_threads: 0,
                global_outstanding_limit: 1000,
                flush_delay_ms: 1,
                max_batch_size: 1000,
                election_alg: 3,
                quorum_listen_on_all_ips: false,
                sync_enabled: true,
                observer_master_port: None,
                leader_serves: true,
                servers: BTreeMap::new(),
                membership_version: 0,
                peer_type: PeerType::Participant,
                my_id: None,
                tls: TlsConfig::default(),
                sasl: SaslSettings::default(),
                quorum_tls: QuorumTlsConfig::default(),
                quorum_auth: QuorumAuthSettings::default(),
                quorum_sasl: None,
                local_sessions: false,
                local_sessions_upgrading: false,
                read_only_mode: false,
                admin: AdminServerConfig::default(),
                prometheus: PrometheusConfig::default(),
                initial_config: String::new(),
                unsupported: Vec::new(),
            },
            data_dir: None,
            data_log_dir: None,
            min_session_timeout: -1,
            max_session_timeout: -1,
            config_peer_type: PeerType::Participant,
            observer_sync_property: None,
            membership_version: 0,
            plain_keys: BTreeSet::new(),
            enforce_auth: false,
            enforce_schemes: Vec::new(),
            require_sasl: false,
            x509_provider_key: false,
        }
    }
}

impl Builder {
    fn apply(
        &mut self,
        raw_key: &str,
        value: &str,
        has_dynamic_file: bool,
    ) -> Result<(), ConfigError> {
        let key = canonical_key(raw_key);
        if key == raw_key {
            self.plain_keys.insert(key.to_owned());
        } else if self.plain_keys.contains(key) {
            return Ok(());
        }
        // `configureSSLAuth` looks for this key, whatever class it names.
        self.x509_provider_key |= key == "authProvider.x509";
        let c = &mut self.cfg;
        match key {
            "dataDir" => self.data_dir = Some(PathBuf::from(value)),
            "dataLogDir" => self.data_log_dir = Some(PathBuf::from(value)),
            // 0 is "not set" (`QuorumPeerConfig`: "clientPort is not set"),
            // not a port picked at random.
            "clientPort" => c.client_port = Some(parse_port(raw_key, value)?).filter(|&p| p != 0),
            "clientPortAddress" => {
                c.client_port_address = Some(ip_of(value).ok_or_else(|| {
                    invalid(
                        raw_key,
                        value,
                        "UnknownHostException: not an address, nor a host name that resolves",
                    )
                })?);
            }
            "clientPortListenBacklog" => c.client_port_listen_backlog = parse_num(raw_key, value)?,
            "tickTime" => c.tick_time_ms = parse_non_negative(raw_key, value)?,
            "initLimit" => c.init_limit = parse_non_negative(raw_key, value)?,
            "syncLimit" => c.sync_limit = parse_non_negative(raw_key, value)?,
            "connectToLearnerMasterLimit" => {
                c.connect_to_learner_master_limit = parse_non_negative(raw_key, value)?
            }
            "minSessionTimeout" => self.min_session_timeout = parse_num(raw_key, value)?,
            "maxSessionTimeout" => self.max_session_timeout = parse_num(raw_key, value)?,
            // Both factories limit only a positive count
            // (`maxClientCnxns > 0 && …`), and `ServerCnxnFactory.
            // initMaxCnxns` takes a negative `maxCnxns` as 0: unlimited.
            "maxClientCnxns" => {
                c.max_client_cnxns = parse_num::<i32>(raw_key, value)?.max(0) as u32
            }
            "maxCnxns" => c.max_cnxns = parse_num::<i32>(raw_key, value)?.max(0) as u32,
            // ZooKeeperServer raises a snapCount below 2 to 2.
            "snapCount" => {
                c.snap_count = parse_num::<i64>(raw_key, value)?.clamp(2, u32::MAX as i64) as u32
            }
            "snapSizeLimitInKb" => c.snap_size_limit_kb = parse_num(raw_key, value)?,
            // PurgeTxnLog refuses to keep fewer than 3 snapshots.
            "autopurge.snapRetainCount" => {
                c.autopurge_snap_retain_count =
                    parse_num::<i64>(raw_key, value)?.clamp(3, u32::MAX as i64) as u32
            }
            // A negative interval disables purge in ZooKeeper, like 0.
            "autopurge.purgeInterval" => {
                c.autopurge_purge_interval_hours =
                    parse_num::<i64>(raw_key, value)?.clamp(0, u32::MAX as i64) as u32
            }
            "4lw.commands.whitelist" => c.four_letter_whitelist = FourLetterWhitelist::parse(value),
            "jute.maxbuffer" => c.jute_max_buffer = parse_num(raw_key, value)?,
            "standaloneEnabled" => c.standalone_enabled = parse_bool(raw_key, value)?,
            "extendedTypesEnabled" => c.extended_types_enabled = parse_bool(raw_key, value)?,
            "znode.container.checkIntervalMs" => {
                c.container_check_interval_ms = parse_num(raw_key, value)?
            }
            "znode.container.maxPerMinute" => {
                c.container_max_per_minute = parse_num(raw_key, value)?
            }
            "znode.container.maxNeverUsedIntervalMs" => {
                c.container_max_never_used_interval_ms = parse_num(raw_key, value)?
            }
            "DigestAuthenticationProvider.superDigest" => c.super_digest = Some(value.to_owned()),
            "DigestAuthenticationProvider.digestAlg" => {
                c.digest_alg = zab_tree::acl::DigestAlg::from_java_name(value).ok_or_else(|| {
                    invalid(
                        raw_key,
                        value,
                        "zab hashes digest ids with SHA1, SHA-256, SHA-384 or SHA-512",
                    )
                })?
            }
            // `Boolean.parseBoolean`: anything but "true" is false. Turned
            // off, ZooKeeper refuses digest logins and ACLs; zab cannot, and
            // says so rather than keep them on behind the operator's back.
            "DigestAuthenticationProvider.enabled" => {
                if !value.trim().eq_ignore_ascii_case("true") {
                    return Err(invalid(
                        raw_key,
                        value,
                        "zab cannot turn digest authentication off; remove the key",
                    ));
                }
            }
            // ZooKeeper compares with "yes"/"no" exactly; anything else is
            // refused here rather than silently read as the default.
            // ZooKeeper reads these as `"yes".equals` (skipACL) and
            // `!"no".equals` (forceSync, leaderServes): any other word is
            // their default, which zab keeps too, and names at start-up.
            "skipACL" => c.skip_acl = yes_or_no(raw_key, value, false, &mut c.unsupported),
            "forceSync" => c.force_sync = yes_or_no(raw_key, value, true, &mut c.unsupported),
            "leaderServes" => c.leader_serves = yes_or_no(raw_key, value, true, &mut c.unsupported),
            "globalOutstandingLimit" => c.global_outstanding_limit = parse_num(raw_key, value)?,
            // ZKDatabase keeps at least 500 committed txns for DIFF sync.
            "commitLogCount" => c.commit_log_count = parse_num::<u32>(raw_key, value)?.max(500),
            "snapshotSizeFactor" => {
                let f: f64 = parse_num(raw_key, value)?;
                // ZKDatabase resets a factor above 1 to the default.
                c.snapshot_size_factor = if f > 1.0 { 0.33 } else { f };
            }
            "zab.connectHoldMs" => c.connect_hold_ms = parse_num(raw_key, value)?,
            "zab.workerThreads" => c.worker_threads = parse_num(raw_key, value)?,
            "flushDelay" => c.flush_delay_ms = parse_num(raw_key, value)?,
            "maxBatchSize" => c.max_batch_size = parse_num(raw_key, value)?,
            "electionAlg" => {
                if parse_num::<i32>(raw_key, value)? != 3 {
                    return Err(invalid(raw_key, value, "Only 3 is supported"));
                }
                c.election_alg = 3;
            }
            "quorumListenOnAllIPs" => c.quorum_listen_on_all_ips = parse_bool(raw_key, value)?,
            "observerMasterPort" => {
                let port: i32 = parse_num(raw_key, value)?;
                c.observer_master_port = match port {
                    ..=0 => None,
                    1..=65535 => Some(port as u16),
                    _ => return Err(invalid(raw_key, value, "not a port number (0-65535)")),
                };
            }
            "syncEnabled" => c.sync_enabled = parse_bool(raw_key, value)?,
            // ZooKeeper's unknown keys become `zookeeper.`-prefixed system
            // properties, and `QuorumPeer.getSyncEnabled` prefers this one,
            // read with `Boolean.getBoolean`: "true" in any case, else false.
            "observer.syncEnabled" => {
                self.observer_sync_property = Some(value.eq_ignore_ascii_case("true"));
            }
            "peerType" => self.config_peer_type = PeerType::parse(raw_key, value)?,
            "dynamicConfigFile" => {}
            "secureClientPort" => {
                c.tls.secure_client_port = Some(parse_port(raw_key, value)?).filter(|&p| p != 0)
            }
            "client.portUnification" => c.tls.port_unification = parse_bool(raw_key, value)?,
            "client.certReload" => c.tls.cert_reload = parse_bool(raw_key, value)?,
            "sslQuorumReloadCertFiles" => {
                c.quorum_tls.reload_cert_files = parse_bool(raw_key, value)?
            }
            "secureClientPortAddress" => {
                c.tls.secure_client_port_address = Some(ip_of(value).ok_or_else(|| {
                    invalid(
                        raw_key,
                        value,
                        "UnknownHostException: not an address, nor a host name that resolves",
                    )
                })?);
            }
            "ssl.keyStore.location" => c.tls.key_store.location = Some(PathBuf::from(value)),
            "ssl.keyStore.password" => c.tls.key_store.password = Some(value.to_owned()),
            "ssl.keyStore.type" => c.tls.key_store.kind = Some(value.to_owned()),
            "ssl.trustStore.location" => c.tls.trust_store.location = Some(PathBuf::from(value)),
            "ssl.trustStore.password" => c.tls.trust_store.password = Some(value.to_owned()),
            "ssl.trustStore.type" => c.tls.trust_store.kind = Some(value.to_owned()),
            "ssl.clientAuth" => {
                c.tls.client_auth = ClientAuth::parse(value)
                    .ok_or_else(|| invalid(raw_key, value, "not NONE, WANT or NEED"))?
            }
            "ssl.protocol" => c.tls.offer.protocol = value.trim().to_owned(),
            "ssl.enabledProtocols" => c.tls.offer.enabled_protocols = Some(list(value)),
            // Read by ZooKeeper only to detect TLS on a quorum port with
            // `portUnification` (a value below 1 means 5000); zab gives a
            // peer 5 s for its first byte and handshake together
            // (`peer_tls::HANDSHAKE_WITHIN`), and the client port's
            // handshake keeps Netty's 10 s (`tls::CLIENT_HANDSHAKE_WITHIN`).
            "ssl.handshakeDetectionTimeoutMillis" => {
                parse_num::<i32>(raw_key, value.trim())?;
            }
            "ssl.ciphersuites" => c.tls.offer.cipher_suites = Some(list(value)),
            "ssl.authProvider" => {
                if value.trim() != "x509" {
                    c.unsupported.push(format!(
                        "{raw_key}={value} (client certificates go to the x509 provider)"
                    ));
                }
            }
            "X509AuthenticationProvider.superUser" => {
                c.tls.x509_super_user = Some(value.to_owned())
            }
            "ssl.hostnameVerification"
            | "ssl.clientHostnameVerification"
            | "ssl.allowReverseDnsLookup" => {
                parse_bool(raw_key, value)?;
            }
            "serverCnxnFactory" => {
                if !value.ends_with("NettyServerCnxnFactory")
                    && !value.ends_with("NIOServerCnxnFactory")
                {
                    c.unsupported.push(format!(
                        "{raw_key}={value} (zab has its own client listener)"
                    ));
                }
            }
            // ZooKeeper registers a provider for every `zookeeper.
            // authProvider.*` property; only the x509 one is a provider zab
            // has (digest and ip are always there).
            k if k.starts_with("authProvider.") && value.trim() == X509_PROVIDER_CLASS => {
                c.tls.x509_provider = true
            }
            k if k.starts_with("authProvider.") && value.trim() == SASL_PROVIDER_CLASS => {
                c.sasl.provider = true
            }
            "java.security.auth.login.config" => c.sasl.jaas_file = Some(PathBuf::from(value)),
            "sasl.serverconfig" => c.sasl.section = value.trim().to_owned(),
            "java.security.krb5.conf" => c.sasl.krb5_conf = Some(PathBuf::from(value.trim())),
            "kerberos.removeHostFromPrincipal" => {
                c.sasl.kerberos_names.remove_host = parse_bool(raw_key, value)?
            }
            "kerberos.removeRealmFromPrincipal" => {
                c.sasl.kerberos_names.remove_realm = parse_bool(raw_key, value)?
            }
            "security.auth_to_local" => {
                c.sasl.kerberos_names.rules = crate::kerberos_name::Rules::parse(value)
                    .map_err(|reason| invalid(raw_key, value, &reason))?
            }
            // `isSaslSuperUser`: `zookeeper.superUser` and any
            // `zookeeper.superUser.*` name a super user.
            k if k == "superUser" || k.starts_with("superUser.") => {
                c.sasl.server.super_users.push(value.trim().to_owned())
            }
            "enforce.auth.enabled" => self.enforce_auth = parse_bool(raw_key, value)?,
            "enforce.auth.schemes" => {
                self.enforce_schemes = value.split(',').map(|s| s.trim().to_owned()).collect()
            }
            "sessionRequireClientSASLAuth" => self.require_sasl = parse_bool(raw_key, value)?,
            "allowSaslFailedClients" => c.sasl.allow_failed_clients = parse_bool(raw_key, value)?,
            "reconfigEnabled" => {
                if parse_bool(raw_key, value)? {
                    c.unsupported
                        .push(format!("{raw_key}=true (no dynamic reconfiguration)"));
                }
            }
            "localSessionsEnabled" => c.local_sessions = parse_bool(raw_key, value)?,
            "localSessionsUpgradingEnabled" => {
                c.local_sessions_upgrading = parse_bool(raw_key, value)?
            }
            "quorum.auth.enableSasl" => c.quorum_auth.enable_sasl = parse_bool(raw_key, value)?,
            "quorum.auth.learnerRequireSasl" => {
                c.quorum_auth.learner_require = parse_bool(raw_key, value)?
            }
            "quorum.auth.serverRequireSasl" => {
                c.quorum_auth.server_require = parse_bool(raw_key, value)?
            }
            "quorum.auth.learner.saslLoginContext" => {
                c.quorum_auth.learner_context = value.trim().to_owned()
            }
            "quorum.auth.kerberos.servicePrincipal" => {
                c.quorum_auth.service_principal = value.trim().to_owned()
            }
            "quorum.auth.server.saslLoginContext" => {
                c.quorum_auth.server_context = value.trim().to_owned()
            }
            "sslQuorum" => c.quorum_tls.enabled = parse_bool(raw_key, value)?,
            "ssl.quorum.keyStore.location" => {
                c.quorum_tls.key_store.location = Some(PathBuf::from(value))
            }
            "ssl.quorum.keyStore.password" => {
                c.quorum_tls.key_store.password = Some(value.to_owned())
            }
            "ssl.quorum.keyStore.type" => c.quorum_tls.key_store.kind = Some(value.to_owned()),
            "ssl.quorum.trustStore.location" => {
                c.quorum_tls.trust_store.location = Some(PathBuf::from(value))
            }
            "ssl.quorum.trustStore.password" => {
                c.quorum_tls.trust_store.password = Some(value.to_owned())
            }
            "ssl.quorum.trustStore.type" => c.quorum_tls.trust_store.kind = Some(value.to_owned()),
            "ssl.quorum.protocol" => c.quorum_tls.offer.protocol = value.trim().to_owned(),
            "ssl.quorum.enabledProtocols" => {
                c.quorum_tls.offer.enabled_protocols = Some(list(value))
            }
            "ssl.quorum.ciphersuites" => c.quorum_tls.offer.cipher_suites = Some(list(value)),
            "ssl.quorum.hostnameVerification" => {
                c.quorum_tls.hostname_verification = parse_bool(raw_key, value)?
            }
            "ssl.quorum.allowReverseDnsLookup" => {
                c.quorum_tls.allow_reverse_dns = parse_bool(raw_key, value)?
            }
            "readonlymode.enabled" => c.read_only_mode = parse_bool(raw_key, value)?,
            "enforceQuota" => c.enforce_quota = parse_bool(raw_key, value)?,
            // `FileTxnSnapLog` reads both with `Boolean.parseBoolean`:
            // anything but `true` (in any case) is false.
            "datadir.autocreate" => c.datadir_autocreate = value.eq_ignore_ascii_case("true"),
            "db.autocreate" => c.db_autocreate = value.eq_ignore_ascii_case("true"),
            "fsync.warningthresholdms" => c.fsync_warning_threshold_ms = parse_num(raw_key, value)?,
            "portUnification" => c.quorum_tls.port_unification = parse_bool(raw_key, value)?,
            "multiAddress.enabled" => {
                if parse_bool(raw_key, value)? {
                    c.unsupported
                        .push(format!("{raw_key}=true (not implemented)"));
                }
            }
            "digest.enabled" => {
                if !parse_bool(raw_key, value)? {
                    c.unsupported
                        .push(format!("{raw_key}=false (digests are always kept)"));
                }
            }
            "admin.enableServer" => c.admin.enabled = parse_bool(raw_key, value)?,
            "admin.serverAddress" => {
                c.admin.address = ip_of(value).ok_or_else(|| {
                    invalid(
                        raw_key,
                        value,
                        "UnknownHostException: not an address, nor a host name that resolves",
                    )
                })?
            }
            "admin.serverPort" => c.admin.port = parse_num(raw_key, value)?,
            "admin.commandURL" => {
                if !value.starts_with('/') {
                    return Err(invalid(raw_key, value, "must start with /"));
                }
                // The admin server's router reads these as captures and
                // wildcards.
                if value.contains([':', '*', '{', '}']) {
                    return Err(invalid(raw_key, value, "may not hold : * { or }"));
                }
                c.admin.command_url = value.trim_end_matches('/').to_owned()
            }
            "metricsProvider.className" => match value {
                PROMETHEUS_PROVIDER => c.prometheus.enabled = true,
                // ZooKeeper's default: no provider.
                "org.apache.zookeeper.metrics.impl.DefaultMetricsProvider"
                | "org.apache.zookeeper.metrics.impl.NullMetricsProvider" => {
                    c.prometheus.enabled = false
                }
                _ => c
                    .unsupported
                    .push(format!("{raw_key}={value} (only {PROMETHEUS_PROVIDER})")),
            },
            "metricsProvider.httpHost" => {
                c.prometheus.host = ip_of(value).ok_or_else(|| {
                    invalid(
                        raw_key,
                        value,
                        "UnknownHostException: not an address, nor a host name that resolves",
                    )
                })?
            }
            "metricsProvider.httpPort" => c.prometheus.port = parse_num(raw_key, value)?,
            "metricsProvider.exportJvmInfo" => {
                c.prometheus.export_process_info = parse_bool(raw_key, value)?
            }
            "admin.portUnification" | "admin.forceHttps" => {
                if parse_bool(raw_key, value)? {
                    c.unsupported.push(format!(
                        "{raw_key}=true (the admin server speaks plain HTTP)"
                    ));
                }
            }
            "snapshot.compression.method" => {
                if !value.is_empty() {
                    c.unsupported
                        .push(format!("{raw_key}={value} (RocksDB compresses on its own)"));
                }
            }
            k if k.starts_with("server.")
                || k.starts_with("group.")
                || k.starts_with("weight.") =>
            {
                if has_dynamic_file {
                    return Err(ConfigError::StaticMembershipWithDynamicFile {
                        key: raw_key.to_owned(),
                    });
                }
                self.apply_membership(raw_key, value)?;
            }
            // A static membership's version (`QuorumMaj` reads it in hex
            // from zoo.cfg); beside a dynamic file, the file's name gives
            // it and this key is only a system property to ZooKeeper.
            "version" if !has_dynamic_file => {
                self.membership_version = u64::from_str_radix(value, 16)
                    .map_err(|_| invalid(raw_key, value, "not a hexadecimal version"))?;
            }
            "version" => {}
            k => match unsupported_reason(k) {
                Some(reason) => c.unsupported.push(format!("{raw_key} ({reason})")),
                None => c.unsupported.push(format!("{raw_key} (unknown key)")),
            },
        }
        Ok(())
    }

    /// A line of the membership: `server.N`, and hierarchical `group.N` /
    /// `weight.N` (refused: ignoring them would change what a quorum is).
    /// A dynamic file holds nothing else: ZooKeeper refuses a `version` in
    /// it ("dynamic file shouldn't have version inside"), which its name
    /// carries.
    fn apply_membership(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        if let Some(id) = key.strip_prefix("server.") {
            let id = ServerId(
                id.parse()
                    .map_err(|_| invalid(key, id, "server id is not a number"))?,
            );
            let server = parse_server_line(key, id, value)?;
            self.cfg.servers.insert(id, server);
            Ok(())
        } else if key.starts_with("group") || key.starts_with("weight") {
            Err(ConfigError::Unsupported {
                key: key.to_owned(),
                reason: "hierarchical quorums are not implemented".to_owned(),
            })
        } else if key == "version" {
            Err(invalid(
                key,
                value,
                "dynamic file shouldn't have version inside",
            ))
        } else {
            Err(invalid(
                key,
                value,
                "Unrecognised parameter in the dynamic config file",
            ))
        }
    }

    fn finish(mut self, my_id: Option<ServerId>) -> Result<Config, ConfigError> {
        let mut c = self.cfg;
        // `FourLetterCommands.isEnabled` adds `isro` under read-only mode:
        // clients of a read-only server ask the others with it which one
        // serves writes again.
        if c.read_only_mode {
            c.four_letter_whitelist.words.insert("isro".to_owned());
        }
        c.data_dir = self.data_dir.take().ok_or(ConfigError::MissingDataDir)?;
        c.data_log_dir = self
            .data_log_dir
            .take()
            .unwrap_or_else(|| c.data_dir.clone());
        c.min_session_timeout_ms = if self.min_session_timeout == -1 {
            c.tick_time_ms.saturating_mul(2)
        } else {
            self.min_session_timeout
        };
        c.max_session_timeout_ms = if self.max_session_timeout == -1 {
            c.tick_time_ms.saturating_mul(20)
        } else {
            self.max_session_timeout
        };
        c.my_id = my_id;
        c.membership_version = self.membership_version;
        if let Some(sync) = self.observer_sync_property {
            c.sync_enabled = sync;
        }
        // `QuorumPeerConfig.configureSSLAuth`: a secure client port (or
        // port unification, `NettyServerCnxnFactory`) registers the x509
        // provider unless `authProvider.x509` names something already, so
        // that its clients' certificates are their identities.
        if (c.tls.secure_client_port.is_some() || c.tls.port_unification) && !self.x509_provider_key
        {
            c.tls.x509_provider = true;
        }
        // `AuthenticationHelper`: sessionRequireClientSASLAuth means sasl;
        // every scheme needs its provider.
        let enforce = if self.require_sasl {
            Some(vec!["sasl".to_owned()])
        } else {
            self.enforce_auth.then_some(self.enforce_schemes)
        };
        if let Some(schemes) = &enforce {
            if schemes.iter().all(|s| s.is_empty()) {
                return Err(ConfigError::EnforceAuthWithoutSchemes);
            }
            for scheme in schemes.iter().filter(|s| !s.is_empty()) {
                let available = match scheme.as_str() {
                    "ip" | "digest" => true,
                    "x509" => c.tls.x509_provider,
                    "sasl" => c.sasl.provider,
                    _ => false,
                };
                if !available {
                    return Err(ConfigError::EnforceAuthScheme(scheme.clone()));
                }
            }
        }
        c.sasl.enforce_auth = enforce;
        // setupPeerType: the server list's role wins over `peerType`.
        c.peer_type = match my_id.and_then(|id| c.servers.get(&id)) {
            Some(s) => s.peer_type,
            None => self.config_peer_type,
        };
        // setupClientPort: the client address of this server's own line is
        // the one it listens on; a host name there is resolved as
        // `InetSocketAddress` resolves it (and one that does not resolve
        // yet stays only in `client_listen_addr`).
        c.check_client_address()?;
        if let Some(addr) = c.my_server().and_then(|s| s.client_addr.clone()) {
            c.client_port = Some(addr.port);
            c.client_port_address = ip_of(&addr.host).filter(|a| !a.is_unspecified());
        }
        Ok(c)
    }
}

/// `host:quorumPort:electionPort[:type][;[clientHost:]clientPort]`.
fn parse_server_line(key: &str, id: ServerId, value: &str) -> Result<QuorumServer, ConfigError> {
    const FORMAT: &str =
        "expected host:quorumPort:electionPort[:participant|:observer][;[clientHost:]clientPort]";
    let mut parts = value.split(';');
    let server_part = parts.next().unwrap_or_default().trim();
    let client_part = parts.next().map(str::trim).filter(|s| !s.is_empty());
    if let Some(secure) = parts.next().map(str::trim).filter(|s| !s.is_empty()) {
        return Err(ConfigError::Unsupported {
            key: key.to_owned(),
            reason: format!("secure client address {secure:?}: no TLS client port"),
        });
    }
    if server_part.contains('|') {
        return Err(ConfigError::Unsupported {
            key: key.to_owned(),
            reason: "several addresses per server (multiAddress) are not implemented".to_owned(),
        });
    }
    let fields = split_host_and_ports(server_part).ok_or_else(|| invalid(key, value, FORMAT))?;
    if !(3..=4).contains(&fields.len()) {
        return Err(invalid(key, value, FORMAT));
    }
    let host = fields[0].clone();
    let quorum_port = parse_port(key, &fields[1])?;
    let election_port = parse_port(key, &fields[2])?;
    let peer_type = match fields.get(3) {
        Some(t) => PeerType::parse(key, t)?,
        None => PeerType::Participant,
    };
    let client_addr = match client_part {
        None => None,
        Some(c) => {
            let f = split_host_and_ports(c).ok_or_else(|| invalid(key, value, FORMAT))?;
            match f.as_slice() {
                [port] => Some(HostPort {
                    host: "0.0.0.0".to_owned(),
                    port: parse_port(key, port)?,
                }),
                [host, port] => Some(HostPort {
                    host: host.clone(),
                    port: parse_port(key, port)?,
                }),
                _ => return Err(invalid(key, value, FORMAT)),
            }
        }
    };
    Ok(QuorumServer {
        id,
        host,
        quorum_port,
        election_port,
        peer_type,
        client_addr,
    })
}

/// Splits `host:p1:p2…`, where the host may be a bracketed IPv6 literal
/// (ZooKeeper's `ConfigUtils.getHostAndPort`). `None` on an unclosed bracket.
fn split_host_and_ports(s: &str) -> Option<Vec<String>> {
    if let Some(rest) = s.strip_prefix('[') {
        let end = rest.find(']')?;
        let host = rest[..end].to_owned();
        let tail = &rest[end + 1..];
        let mut out = vec![host];
        if !tail.is_empty() {
            let tail = tail.strip_prefix(':')?;
            out.extend(tail.split(':').map(|p| p.trim().to_owned()));
        }
        Some(out)
    } else {
        Some(s.split(':').map(|p| p.trim().to_owned()).collect())
    }
}

/// An address literal (IPv6 with or without brackets), or the address a
/// host name resolves to, as `InetAddress.getByName` gives it: the first,
/// IPv4 before IPv6 (the JVM's default order). `localhost` is 127.0.0.1
/// without asking the resolver.
fn ip_of(host: &str) -> Option<IpAddr> {
    if host.eq_ignore_ascii_case("localhost") {
        return Some(IpAddr::from([127, 0, 0, 1]));
    }
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = host.parse() {
        return Some(ip);
    }
    use std::net::ToSocketAddrs as _;
    let resolved: Vec<IpAddr> = (host, 0).to_socket_addrs().ok()?.map(|a| a.ip()).collect();
    resolved
        .iter()
        .find(|a| a.is_ipv4())
        .or(resolved.first())
        .copied()
}

fn parse_myid(text: &str) -> Result<ServerId, ConfigError> {
    // Java reads the first line and parses it as a decimal long; surrounding
    // blanks (a CRLF file, a trailing space) are tolerated here.
    let line = text.lines().next().unwrap_or("").trim();
    line.parse::<u64>()
        .map(ServerId)
        .map_err(|_| ConfigError::BadMyId(line.to_owned()))
}

/// The membership version of a dynamic config file: the hex suffix of
/// `zoo.cfg.dynamic.<hex>`, 0 when there is none.
/// `QuorumPeerConfig.getVersionFromFilename`: whatever follows the path's
/// last `.`, if it reads as hexadecimal; else 0.
fn dynamic_file_version(path: &Path) -> u64 {
    path.to_str()
        .and_then(|p| p.rsplit_once('.'))
        .and_then(|(_, v)| u64::from_str_radix(v, 16).ok())
        .unwrap_or(0)
}

/// A file's text: UTF-8, or where it is not, ISO-8859-1, as Java's
/// `Properties.load(InputStream)` reads every byte of a zoo.cfg (a Latin-1
/// comment does not stop ZooKeeper).
fn read(path: &Path) -> Result<String, ConfigError> {
    let bytes = std::fs::read(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    Ok(match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => e.into_bytes().into_iter().map(char::from).collect(),
    })
}

fn invalid(key: &str, value: &str, reason: &str) -> ConfigError {
    ConfigError::InvalidValue {
        key: key.to_owned(),
        value: value.to_owned(),
        reason: reason.to_owned(),
    }
}

fn parse_num<T: std::str::FromStr>(key: &str, value: &str) -> Result<T, ConfigError> {
    value.parse().map_err(|_| {
        invalid(
            key,
            value,
            &format!("not a valid {}", std::any::type_name::<T>()),
        )
    })
}

fn parse_non_negative(key: &str, value: &str) -> Result<i32, ConfigError> {
    let n: i32 = parse_num(key, value)?;
    if n < 0 {
        return Err(invalid(key, value, "must not be negative"));
    }
    Ok(n)
}

fn parse_port(key: &str, value: &str) -> Result<u16, ConfigError> {
    value
        .trim()
        .parse::<u16>()
        .map_err(|_| invalid(key, value, "not a port number (0-65535)"))
}

/// A comma-separated list (`X509Util` splits `enabledProtocols` and
/// `ciphersuites` at commas), each item trimmed.
fn list(value: &str) -> Vec<String> {
    value.split(',').map(|p| p.trim().to_owned()).collect()
}

/// `QuorumPeerConfig.parseBoolean`: `true`/`false`, any case.
fn parse_bool(key: &str, value: &str) -> Result<bool, ConfigError> {
    match value.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(invalid(key, value, "Choose 'true' or 'false'")),
    }
}

/// A `yes`/`no` key: any other word is `default`, as ZooKeeper's reader
/// takes it, and is named among the keys zab ignores.
fn yes_or_no(key: &str, value: &str, default: bool, ignored: &mut Vec<String>) -> bool {
    match value {
        "yes" => true,
        "no" => false,
        _ => {
            let default = if default { "yes" } else { "no" };
            ignored.push(format!(
                "{key}={value} (not yes or no: {default}, as ZooKeeper reads it)"
            ));
            default == "yes"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The settings and layout of Debian's `/etc/zookeeper/conf_example/zoo.cfg`
    /// (ZooKeeper's sample config; comments paraphrased, commented-out keys,
    /// `##` headers and trailing blanks kept as they are).
    const DEBIAN_EXAMPLE: &str = "# milliseconds per tick
tickTime=2000
# ticks for the initial \n# synchronization phase
initLimit=10
# ticks between a request \n# and its acknowledgement
syncLimit=5
# where snapshots are stored; not /tmp in production \n# example only.
dataDir=/tmp/zookeeper
# the client port
clientPort=2181
# connections per client
#maxClientCnxns=60
#
# read the maintenance section first \n#
# https://zookeeper.apache.org/doc/current/zookeeperAdmin.html#sc_maintenance
#
#autopurge.snapRetainCount=3
# Set to \"0\" to disable auto purge feature
#autopurge.purgeInterval=1

## Metrics Providers
#
#metricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider
#metricsProvider.httpHost=0.0.0.0
#metricsProvider.httpPort=7000
#metricsProvider.exportJvmInfo=true

";

    /// Debian's `/etc/zookeeper/conf_example/myid` placeholder.
    const DEBIAN_MYID: &str =
        "replace this text with the cluster-unique zookeeper's instance id (1-255)\n";

    fn parse(text: &str) -> Config {
        match Config::parse(text, None) {
            Ok(c) => c,
            Err(e) => panic!("{text:?} should parse: {e}"),
        }
    }

    fn parse_err(text: &str, myid: Option<&str>) -> ConfigError {
        match Config::parse(text, myid) {
            Ok(c) => panic!("{text:?} should be refused, got {c:?}"),
            Err(e) => e,
        }
    }

    const QUORUM: &str = "tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir=/d\nclientPort=2181\n\
        server.1=zk1:2888:3888\nserver.2=zk2:2888:3888\nserver.3=zk3:2888:3888\n";

    #[test]
    fn debian_example() {
        let c = parse(DEBIAN_EXAMPLE);
        assert_eq!(c.tick_time_ms, 2000);
        assert_eq!(c.init_limit, 10);
        assert_eq!(c.sync_limit, 5);
        assert_eq!(c.data_dir, PathBuf::from("/tmp/zookeeper"));
        assert_eq!(c.data_log_dir, PathBuf::from("/tmp/zookeeper"));
        assert_eq!(c.client_port, Some(2181));
        assert_eq!(c.max_client_cnxns, 60);
        assert_eq!(c.autopurge_purge_interval_hours, 0);
        assert_eq!(c.autopurge_snap_retain_count, 3);
        assert_eq!(c.min_session_timeout_ms, 4000);
        assert_eq!(c.max_session_timeout_ms, 40000);
        assert!(c.servers.is_empty());
        assert!(!c.is_distributed());
        assert!(c.unsupported.is_empty(), "{:?}", c.unsupported);
        assert_eq!(c.unsupported_summary(), None);
        // ZooKeeper parses myid whenever the file exists, so the shipped
        // placeholder stops even a standalone server.
        assert!(matches!(
            Config::parse(DEBIAN_EXAMPLE, Some(DEBIAN_MYID)),
            Err(ConfigError::BadMyId(_))
        ));
    }

    #[test]
    fn every_default() {
        let c = parse("dataDir=data");
        assert_eq!(c.tick_time_ms, 3000);
        assert_eq!(c.init_limit, 0);
        assert_eq!(c.sync_limit, 0);
        assert_eq!(c.connect_to_learner_master_limit, 0);
        assert_eq!(
            c.data_dir,
            PathBuf::from("data"),
            "relative dataDir stays relative to the cwd"
        );
        assert_eq!(c.data_log_dir, PathBuf::from("data"));
        assert_eq!(c.client_port, None);
        assert_eq!(c.client_port_address, None);
        assert_eq!(c.client_port_listen_backlog, -1);
        assert_eq!(c.min_session_timeout_ms, 6000);
        assert_eq!(c.max_session_timeout_ms, 60000);
        assert_eq!(c.max_client_cnxns, 60);
        assert_eq!(c.max_cnxns, 0);
        assert_eq!(c.snap_count, 100_000);
        assert_eq!(c.snap_size_limit_kb, 4_194_304);
        assert_eq!(c.autopurge_snap_retain_count, 3);
        assert_eq!(c.autopurge_purge_interval_hours, 0);
        assert_eq!(c.four_letter_whitelist, FourLetterWhitelist::default());
        // Read-only mode adds `isro`, which its clients ask other servers.
        let ro = parse("dataDir=/d\nreadonlymode.enabled=true\n");
        assert!(ro.four_letter_whitelist.allows("isro"));
        assert!(!c.four_letter_whitelist.allows("isro"));
        assert_eq!(c.jute_max_buffer, 0xfffff);
        assert!(c.standalone_enabled);
        assert!(!c.extended_types_enabled);
        assert_eq!(c.container_check_interval_ms, 60_000);
        assert_eq!(c.container_max_per_minute, 10_000);
        assert_eq!(c.container_max_never_used_interval_ms, 0);
        assert_eq!(c.super_digest, None);
        assert!(!c.skip_acl);
        assert!(c.force_sync);
        assert_eq!(c.commit_log_count, 500);
        assert_eq!(c.snapshot_size_factor, 0.33);
        assert_eq!(c.election_alg, 3);
        assert!(!c.quorum_listen_on_all_ips);
        assert_eq!(c.membership_version, 0);
        assert_eq!(c.peer_type, PeerType::Participant);
        assert_eq!(c.my_id, None);
        assert!(c.unsupported.is_empty());
        assert_eq!(c.client_listen_addr(), None);
    }

    #[test]
    fn every_key_is_read() {
        let c = parse(
            "dataDir=/d\ndataLogDir=/l\nclientPort=2182\nclientPortAddress=127.0.0.1\n\
             clientPortListenBacklog=50\ntickTime=100\nconnectToLearnerMasterLimit=7\n\
             minSessionTimeout=300\nmaxSessionTimeout=900\nmaxClientCnxns=0\nmaxCnxns=5\n\
             snapCount=10\nsnapSizeLimitInKb=-1\nautopurge.snapRetainCount=4\nautopurge.purgeInterval=1\n\
             4lw.commands.whitelist=stat, ruok ,,conf\njute.maxbuffer=2000000\nstandaloneEnabled=true\n\
             extendedTypesEnabled=true\nznode.container.checkIntervalMs=100\n\
             znode.container.maxPerMinute=7\nznode.container.maxNeverUsedIntervalMs=9\n\
             DigestAuthenticationProvider.superDigest=super:abc=\nskipACL=yes\nforceSync=no\n\
             globalOutstandingLimit=3\ncommitLogCount=900\nsnapshotSizeFactor=-1\nelectionAlg=3\n\
             quorumListenOnAllIPs=true\nsyncEnabled=false\nleaderServes=no\npeerType=observer\n",
        );
        assert_eq!(c.data_log_dir, PathBuf::from("/l"));
        assert_eq!(c.client_port, Some(2182));
        assert_eq!(c.client_port_address, Some(IpAddr::from([127, 0, 0, 1])));
        assert_eq!(
            c.client_listen_addr(),
            Some(HostPort {
                host: "127.0.0.1".into(),
                port: 2182
            })
        );
        assert_eq!(c.client_port_listen_backlog, 50);
        for (text, ip) in [
            ("localhost", IpAddr::from([127, 0, 0, 1])),
            ("[::1]", IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1])),
            ("0.0.0.0", IpAddr::from([0, 0, 0, 0])),
        ] {
            let c = parse(&format!(
                "dataDir=/d\nclientPort=1\nclientPortAddress={text}"
            ));
            assert_eq!(c.client_port_address, Some(ip), "{text}");
        }
        assert_eq!(c.tick_time_ms, 100);
        assert_eq!(c.connect_to_learner_master_limit, 7);
        assert_eq!(
            (c.min_session_timeout_ms, c.max_session_timeout_ms),
            (300, 900)
        );
        assert_eq!((c.max_client_cnxns, c.max_cnxns), (0, 5));
        assert_eq!(c.snap_count, 10);
        assert_eq!(c.snap_size_limit_kb, -1);
        assert_eq!(c.autopurge_snap_retain_count, 4);
        assert_eq!(c.autopurge_purge_interval_hours, 1);
        let words: Vec<&str> = c.four_letter_whitelist.words().collect();
        assert_eq!(words, ["conf", "ruok", "srvr", "stat"]);
        assert_eq!(c.jute_max_buffer, 2_000_000);
        assert!(c.extended_types_enabled);
        assert_eq!(c.container_check_interval_ms, 100);
        assert_eq!(c.container_max_per_minute, 7);
        assert_eq!(c.container_max_never_used_interval_ms, 9);
        assert_eq!(c.super_digest.as_deref(), Some("super:abc="));
        assert!(c.skip_acl);
        assert!(!c.force_sync);
        assert_eq!(c.commit_log_count, 900);
        assert_eq!(c.snapshot_size_factor, -1.0);
        assert!(c.quorum_listen_on_all_ips);
        assert_eq!(c.peer_type, PeerType::Observer);
        assert!(!c.leader_serves);
        assert_eq!(c.global_outstanding_limit, 3);
        assert!(!c.sync_enabled);
        assert!(c.unsupported.is_empty(), "{:?}", c.unsupported);
    }

    #[test]
    fn flush_delay_and_max_batch_size_default_to_a_held_busy_group() {
        let c = parse("dataDir=/d");
        assert_eq!((c.flush_delay_ms, c.max_batch_size), (1, 1000));
        assert_eq!(c.group_commit(), GroupCommit::default());
        let c = parse("dataDir=/d\nflushDelay=0\nmaxBatchSize=50");
        assert_eq!((c.flush_delay_ms, c.max_batch_size), (0, 50));
        assert_eq!(c.group_commit().max_delay, Duration::ZERO);
        assert_eq!(c.group_commit().max_batch, 50);
        let c = parse("dataDir=/d\nzookeeper.flushDelay=5\nmaxBatchSize=0");
        assert_eq!(c.group_commit().max_delay, Duration::from_millis(5));
        assert_eq!(c.group_commit().max_batch, usize::MAX);
        assert!(Config::parse("dataDir=/d\nflushDelay=-1", None).is_err());
        assert!(Config::parse("dataDir=/d\nmaxBatchSize=lots", None).is_err());
    }

    #[test]
    fn worker_threads_is_zabs_own_key_defaulting_to_one_per_cpu() {
        assert_eq!(parse("dataDir=/d").worker_threads, 0);
        assert_eq!(parse("dataDir=/d\nzab.workerThreads=1").worker_threads, 1);
        assert!(Config::parse("dataDir=/d\nzab.workerThreads=-1", None).is_err());
        assert!(Config::parse("dataDir=/d\nzab.workerThreads=many", None).is_err());
    }

    #[test]
    fn connect_hold_is_zabs_own_key_with_a_one_second_default() {
        assert_eq!(parse("dataDir=/d").connect_hold_ms, 1000);
        let c = parse("dataDir=/d\nzab.connectHoldMs=0");
        assert_eq!(c.connect_hold_ms, 0);
        assert!(c.unsupported.is_empty(), "{:?}", c.unsupported);
        assert_eq!(
            parse("dataDir=/d\nzab.connectHoldMs=30000").connect_hold_ms,
            30_000
        );
        assert!(Config::parse("dataDir=/d\nzab.connectHoldMs=-1", None).is_err());
        assert!(Config::parse("dataDir=/d\nzab.connectHoldMs=soon", None).is_err());
    }

    #[test]
    fn minimums_and_resets_follow_zookeeper() {
        let c = parse(
            "dataDir=/d\nsnapCount=1\nautopurge.snapRetainCount=1\ncommitLogCount=10\n\
             snapshotSizeFactor=5\nautopurge.purgeInterval=-3",
        );
        assert_eq!(c.snap_count, 2);
        assert_eq!(c.autopurge_snap_retain_count, 3);
        assert_eq!(c.commit_log_count, 500);
        assert_eq!(c.snapshot_size_factor, 0.33);
        assert_eq!(c.autopurge_purge_interval_hours, 0);
    }

    #[test]
    fn every_prefix_form() {
        for (key, check) in [
            (
                "zookeeper.extendedTypesEnabled=true",
                (|c: &Config| c.extended_types_enabled) as fn(&Config) -> bool,
            ),
            ("extendedTypesEnabled=true", |c| c.extended_types_enabled),
            ("zookeeper.snapCount=77", |c| c.snap_count == 77),
            ("snapCount=77", |c| c.snap_count == 77),
            ("znode.container.checkIntervalMs=5", |c| {
                c.container_check_interval_ms == 5
            }),
            ("zookeeper.znode.container.checkIntervalMs=5", |c| {
                c.container_check_interval_ms == 5
            }),
            ("znode.container.maxPerMinute=5", |c| {
                c.container_max_per_minute == 5
            }),
            ("zookeeper.znode.container.maxPerMinute=5", |c| {
                c.container_max_per_minute == 5
            }),
            (
                "zookeeper.DigestAuthenticationProvider.superDigest=super:x",
                |c| c.super_digest.as_deref() == Some("super:x"),
            ),
            ("DigestAuthenticationProvider.superDigest=super:x", |c| {
                c.super_digest.as_deref() == Some("super:x")
            }),
            ("jute.maxbuffer=5", |c| c.jute_max_buffer == 5),
            ("zookeeper.jute.maxbuffer=5", |c| c.jute_max_buffer == 5),
            ("zookeeper.4lw.commands.whitelist=*", |c| {
                c.four_letter_whitelist.allows("mntr")
            }),
            ("4lw.commands.whitelist=*", |c| {
                c.four_letter_whitelist.allows("mntr")
            }),
            ("zookeeper.skipACL=yes", |c| c.skip_acl),
            ("enforceQuota=true", |c| c.enforce_quota),
            ("client.portUnification=true", |c| c.tls.port_unification),
            ("zookeeper.client.portUnification=true", |c| {
                c.tls.port_unification
            }),
            ("zookeeper.enforceQuota=true", |c| c.enforce_quota),
            ("fsync.warningthresholdms=20", |c| {
                c.fsync_warning_threshold_ms == 20
            }),
            ("zookeeper.fsync.warningthresholdms=20", |c| {
                c.fsync_warning_threshold_ms == 20
            }),
            ("zookeeper.forceSync=no", |c| !c.force_sync),
            ("zookeeper.commitLogCount=501", |c| {
                c.commit_log_count == 501
            }),
            ("zookeeper.snapshotSizeFactor=0.5", |c| {
                c.snapshot_size_factor == 0.5
            }),
            ("zookeeper.maxCnxns=4", |c| c.max_cnxns == 4),
            ("zookeeper.snapSizeLimitInKb=4", |c| {
                c.snap_size_limit_kb == 4
            }),
            ("zookeeper.znode.container.maxNeverUsedIntervalMs=4", |c| {
                c.container_max_never_used_interval_ms == 4
            }),
        ] {
            let c = parse(&format!("dataDir=/d\n{key}\n"));
            assert!(check(&c), "{key} was not applied: {c:?}");
            assert!(c.unsupported.is_empty(), "{key}: {:?}", c.unsupported);
        }
    }

    #[test]
    fn observer_master_port_is_read_as_zookeeper_reads_it() {
        assert_eq!(parse("dataDir=/d\n").observer_master_port, None);
        assert_eq!(
            parse("dataDir=/d\nobserverMasterPort=2191\n").observer_master_port,
            Some(2191)
        );
        // `QuorumPeerConfig`: 0 or below leaves it unset.
        for off in ["0", "-1"] {
            let cfg = format!("dataDir=/d\nobserverMasterPort={off}\n");
            assert_eq!(parse(&cfg).observer_master_port, None, "{off}");
        }
        for bad in ["65536", "x", "2191.0"] {
            let text = format!("dataDir=/d\nobserverMasterPort={bad}\n");
            assert!(
                matches!(parse_err(&text, None), ConfigError::InvalidValue { .. }),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_observer_sync_property_wins_over_sync_enabled() {
        assert!(parse("dataDir=/d\n").sync_enabled);
        assert!(!parse("dataDir=/d\nsyncEnabled=false\n").sync_enabled);
        for (text, want) in [
            ("observer.syncEnabled=false\nsyncEnabled=true\n", false),
            (
                "syncEnabled=false\nzookeeper.observer.syncEnabled=TRUE\n",
                true,
            ),
            // Boolean.getBoolean: anything but "true" is false.
            ("observer.syncEnabled=yes\n", false),
        ] {
            let c = parse(&format!("dataDir=/d\n{text}"));
            assert_eq!(c.sync_enabled, want, "{text}");
            assert!(c.unsupported.is_empty(), "{text}: {:?}", c.unsupported);
        }
    }

    #[test]
    fn defaults_spelled_out_are_not_named_as_unsupported() {
        let c =
            parse("dataDir=/d\nglobalOutstandingLimit=1000\nsyncEnabled=true\nleaderServes=yes\n");
        assert!(c.unsupported.is_empty(), "{:?}", c.unsupported);
    }

    /// ZooKeeper reads `skipACL` as `"yes".equals` and `forceSync` and
    /// `leaderServes` as `!"no".equals`: another word is the default, not
    /// an error (zab names it at start-up). A negative `maxClientCnxns` or
    /// `maxCnxns` is no limit, as both connection factories read it.
    #[test]
    fn values_zookeeper_reads_leniently_are_taken_as_it_reads_them() {
        let c = parse(
            "dataDir=/d\nskipACL=true\nforceSync=false\nleaderServes=maybe\n\
             maxClientCnxns=-1\nmaxCnxns=-5\nelectionAlg=+3\n",
        );
        assert!(!c.skip_acl && c.force_sync && c.leader_serves);
        assert_eq!((c.max_client_cnxns, c.max_cnxns), (0, 0));
        assert_eq!(c.election_alg, 3);
        assert_eq!(
            c.unsupported,
            [
                "skipACL=true (not yes or no: no, as ZooKeeper reads it)",
                "forceSync=false (not yes or no: yes, as ZooKeeper reads it)",
                "leaderServes=maybe (not yes or no: yes, as ZooKeeper reads it)",
            ]
        );
    }

    #[test]
    fn a_learner_tries_its_leader_for_connect_to_learner_master_limit_ticks() {
        let init = parse("dataDir=/d\ntickTime=100\ninitLimit=5\n");
        assert_eq!(init.leader_connect_limit(), Duration::from_millis(500));
        let own = parse("dataDir=/d\ntickTime=100\ninitLimit=5\nconnectToLearnerMasterLimit=2\n");
        assert_eq!(own.leader_connect_limit(), Duration::from_millis(200));
    }

    #[test]
    fn plain_key_wins_over_prefixed_in_either_order() {
        let a = parse("dataDir=/d\nsnapCount=10\nzookeeper.snapCount=20\n");
        let b = parse("dataDir=/d\nzookeeper.snapCount=20\nsnapCount=10\n");
        assert_eq!(a.snap_count, 10);
        assert_eq!(b.snap_count, 10);
    }

    #[test]
    fn properties_syntax() {
        let c = parse(
            "  # comment\n! also a comment\ndataDir : /with\\\n    /continuation\n\
             tickTime 1000\nclientPort=2181\nclientPort = 2182  \nsnapCount\t=\t\\u0035\n",
        );
        assert_eq!(c.data_dir, PathBuf::from("/with/continuation"));
        assert_eq!(c.tick_time_ms, 1000);
        assert_eq!(c.client_port, Some(2182), "the later duplicate wins");
        assert_eq!(c.snap_count, 5);
    }

    /// `DigestAuthenticationProvider.digestAlg` picks the digest ids' hash
    /// (a FIPS ZooKeeper's SHA-256 ACLs keep matching); one zab cannot
    /// compute is refused, and so is turning digest off, which zab cannot
    /// do, rather than ignored.
    #[test]
    fn the_digest_algorithm_is_configured_and_digest_cannot_be_turned_off() {
        use zab_tree::acl::DigestAlg;
        assert_eq!(parse("dataDir=/d").digest_alg, DigestAlg::Sha1);
        let c = parse("dataDir=/d\nzookeeper.DigestAuthenticationProvider.digestAlg=SHA-256\n");
        assert_eq!(c.digest_alg, DigestAlg::Sha256);
        assert!(c.unsupported.is_empty(), "{:?}", c.unsupported);
        let c = parse("dataDir=/d\nDigestAuthenticationProvider.enabled=true\n");
        assert!(c.unsupported.is_empty(), "{:?}", c.unsupported);
        for bad in [
            "DigestAuthenticationProvider.digestAlg=MD5",
            "DigestAuthenticationProvider.enabled=false",
            "zookeeper.DigestAuthenticationProvider.enabled=no",
        ] {
            let text = format!("dataDir=/d\n{bad}\n");
            assert!(
                matches!(parse_err(&text, None), ConfigError::InvalidValue { .. }),
                "{bad}"
            );
        }
    }

    /// `clientPort=0` (and `secureClientPort=0`) is 3.8's "not set", not a
    /// port picked at random: with a client address it is refused, as
    /// `QuorumPeerConfig` refuses "clientPortAddress is set but clientPort
    /// is not set".
    #[test]
    fn a_client_port_of_0_is_not_set() {
        let c = parse("dataDir=/d\nclientPort=2181\nclientPort=0\nsecureClientPort=0\n");
        assert_eq!(c.client_port, None);
        assert_eq!(c.tls.secure_client_port, None);
    }

    #[test]
    fn the_admin_server_is_on_at_8080_unless_configured() {
        let d = parse("dataDir=/d");
        assert_eq!(d.admin, AdminServerConfig::default());
        assert!(d.admin.enabled && d.admin.port == 8080 && d.admin.command_url == "/commands");
        let c = parse(
            "dataDir=/d\nadmin.enableServer=false\nzookeeper.admin.serverPort=9090\n\
             admin.serverAddress=127.0.0.1\nadmin.commandURL=/zk/\n",
        );
        assert!(c.unsupported.is_empty(), "{:?}", c.unsupported);
        assert_eq!(
            c.admin,
            AdminServerConfig {
                enabled: false,
                address: "127.0.0.1".parse().unwrap(),
                port: 9090,
                command_url: "/zk".into(),
            }
        );
        assert!(Config::parse("dataDir=/d\nadmin.serverPort=80800", None).is_err());
        // The Prometheus endpoint: off unless its provider is named.
        assert!(!d.prometheus.enabled);
        let p = parse(
            "dataDir=/d\nmetricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider\n\
             metricsProvider.httpHost=127.0.0.1\nmetricsProvider.httpPort=7001\n\
             metricsProvider.exportJvmInfo=false\n",
        );
        assert!(p.unsupported.is_empty(), "{:?}", p.unsupported);
        assert_eq!(
            p.prometheus,
            PrometheusConfig {
                enabled: true,
                host: "127.0.0.1".parse().unwrap(),
                port: 7001,
                export_process_info: false,
            }
        );
        assert!(Config::parse("dataDir=/d\nadmin.commandURL=commands", None).is_err());
        assert!(Config::parse("dataDir=/d\nadmin.commandURL=/c/:id", None).is_err());
        let root = parse("dataDir=/d\nadmin.commandURL=/\n");
        assert_eq!(root.admin.command_url, "");
        assert!(Config::parse("dataDir=/d\nadmin.serverAddress=zk.example", None).is_err());
    }

    #[test]
    fn unsupported_and_unknown_keys_are_listed_in_order() {
        let c = parse(
            "dataDir=/d\nssl.ocsp=true\nssl.quorum.clientAuth=none\n\
             reconfigEnabled=true\nreconfigEnabled=false\nadmin.forceHttps=true\n\
             metricsProvider.className=x\nmultiAddress.enabled=true\n\
             noSuchKey=1\npreAllocSize=10\nauthProvider.sasl=org.example.Sasl\n",
        );
        assert_eq!(
            c.unsupported,
            [
                "ssl.ocsp (no revocation checks)",
                "ssl.quorum.clientAuth (not implemented for TLS between servers)",
                "admin.forceHttps=true (the admin server speaks plain HTTP)",
                "metricsProvider.className=x (only org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider)",
                "multiAddress.enabled=true (not implemented)",
                "noSuchKey (unknown key)",
                "preAllocSize (the txn log is RocksDB, no preallocation)",
                "authProvider.sasl (pluggable auth providers are Java classes)",
            ]
        );
        let line = c.unsupported_summary().unwrap_or_default();
        assert!(line.starts_with("zoo.cfg keys that zab does not support (ignored): ssl.ocsp"));
        assert!(!line.contains('\n'));
        // Defaults of those features are not "unsupported".
        let d = parse("dataDir=/d\nreconfigEnabled=false\nlocalSessionsEnabled=false\nsslQuorum=false\nadmin.enableServer=false\n");
        // TLS between servers: its stores, and a hostname check that zab
        // cannot turn off.
        let q = parse(
            "dataDir=/d\nsslQuorum=true\nssl.quorum.keyStore.location=/k.pem\n\
             zookeeper.ssl.quorum.trustStore.location=/t.pem\n\
             ssl.quorum.enabledProtocols=TLSv1.3, TLSv1.2\n\
             ssl.quorum.ciphersuites=TLS_AES_128_GCM_SHA256\n",
        );
        assert!(q.unsupported.is_empty(), "{:?}", q.unsupported);
        assert_eq!(
            q.quorum_tls.offer.enabled_protocols,
            Some(vec!["TLSv1.3".to_owned(), "TLSv1.2".to_owned()])
        );
        assert_eq!(
            q.quorum_tls.offer.cipher_suites,
            Some(vec!["TLS_AES_128_GCM_SHA256".to_owned()])
        );
        assert_eq!(q.quorum_tls.offer.protocol, "TLSv1.2");
        // The client port's offer is its own.
        assert_eq!(q.tls.offer, crate::tls::Offer::default());
        assert!(q.quorum_tls.enabled && q.quorum_tls.hostname_verification);
        assert!(q.quorum_tls.allow_reverse_dns, "on by default for a quorum");
        assert_eq!(
            q.quorum_tls.trust_store.location.as_deref(),
            Some(Path::new("/t.pem"))
        );
        let off = parse("dataDir=/d\nsslQuorum=true\nssl.quorum.hostnameVerification=false\n");
        assert!(!off.quorum_tls.hostname_verification);
        assert!(!q.quorum_tls.port_unification);
        let unified = parse("dataDir=/d\nportUnification=true\n");
        assert!(unified.quorum_tls.port_unification && !unified.tls.port_unification);
        let no_dns = parse("dataDir=/d\nssl.quorum.allowReverseDnsLookup=false\n");
        assert!(!no_dns.quorum_tls.allow_reverse_dns);
        assert!(no_dns.unsupported.is_empty(), "{:?}", no_dns.unsupported);
        assert!(crate::tls::peer_tls(&d.quorum_tls).unwrap().is_none());
        assert!(d.unsupported.is_empty(), "{:?}", d.unsupported);
    }

    /// The client port's TLS keys, as ZooKeeper's admin guide sets them up
    /// (with or without the `zookeeper.` prefix of their system properties).
    #[test]
    fn tls_keys_configure_the_secure_client_port() {
        let c = parse(
            "dataDir=/d\nclientPort=2181\nsecureClientPort=2281\n\
             secureClientPortAddress=127.0.0.1\n\
             serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory\n\
             ssl.keyStore.location=/k.pem\nzookeeper.ssl.keyStore.password=pw\n\
             ssl.trustStore.location=/t.pem\nssl.trustStore.type=PEM\nssl.clientAuth=want\n\
             ssl.enabledProtocols=TLSv1.3,TLSv1.2\nssl.hostnameVerification=false\n\
             authProvider.x509=org.apache.zookeeper.server.auth.X509AuthenticationProvider\n\
             zookeeper.X509AuthenticationProvider.superUser=CN=admin\n",
        );
        assert!(c.unsupported.is_empty(), "{:?}", c.unsupported);
        let t = &c.tls;
        assert_eq!(t.secure_client_port, Some(2281));
        assert_eq!(
            t.secure_client_port_address,
            Some("127.0.0.1".parse().unwrap())
        );
        assert_eq!(t.key_store.location.as_deref(), Some(Path::new("/k.pem")));
        assert_eq!(t.key_store.password.as_deref(), Some("pw"));
        assert_eq!(t.trust_store.kind.as_deref(), Some("PEM"));
        assert_eq!(t.client_auth, ClientAuth::Want);
        assert_eq!(
            t.offer.enabled_protocols,
            Some(vec!["TLSv1.3".to_owned(), "TLSv1.2".to_owned()])
        );
        assert!(t.x509_provider);
        assert_eq!(t.x509_super_user.as_deref(), Some("CN=admin"));
        // ZooKeeper's defaults: client certificates required, TLS 1.2.
        let d = parse("dataDir=/d\nsecureClientPort=2281\n").tls;
        assert_eq!(d.client_auth, ClientAuth::Need);
        assert_eq!(d.offer.protocol, "TLSv1.2");
        // `configureSSLAuth`: a TLS client port brings the x509 provider,
        // unless `authProvider.x509` is given otherwise; a plain port does
        // not.
        assert!(d.x509_provider);
        let unified = parse("dataDir=/d\nclientPort=2181\nclient.portUnification=true\n");
        assert!(unified.tls.x509_provider);
        assert!(!parse("dataDir=/d\nclientPort=2181\n").tls.x509_provider);
        let off = parse("dataDir=/d\nsecureClientPort=2281\nauthProvider.x509=\n");
        assert!(!off.tls.x509_provider);
        // ZooKeeper reads a value below 1 as its default: it starts.
        for ok in ["0", "-1", "5000"] {
            let c = parse(&format!(
                "dataDir=/d\nssl.handshakeDetectionTimeoutMillis={ok}\n"
            ));
            assert!(c.unsupported.is_empty(), "{:?}", c.unsupported);
        }
        assert!(matches!(
            parse_err(
                "dataDir=/d\nssl.handshakeDetectionTimeoutMillis=soon\n",
                None
            ),
            ConfigError::InvalidValue { .. }
        ));
        assert!(matches!(
            Config::parse("dataDir=/d\nclientPort=1\nssl.clientAuth=maybe\n", None),
            Err(ConfigError::InvalidValue { .. })
        ));
        assert!(matches!(
            Config::parse(
                "dataDir=/d\nclientPort=1\nsecureClientPortAddress=127.0.0.1\n",
                None
            ),
            Err(ConfigError::SecureClientPortAddressWithoutPort)
        ));
    }

    /// SASL: the JAAS file named in zoo.cfg is loaded with the rest, its
    /// `Server` section (or `sasl.serverconfig`'s) giving the users.
    #[test]
    fn sasl_users_come_from_the_jaas_file() {
        let dir = tempfile::tempdir().unwrap();
        let jaas = dir.path().join("jaas.conf");
        std::fs::write(
            &jaas,
            "Zab { org.apache.zookeeper.server.auth.DigestLoginModule required user_bob=\"pw\"; };",
        )
        .unwrap();
        let cfg_path = dir.path().join("zoo.cfg");
        let text = format!(
            "dataDir={}\nclientPort=2181\njava.security.auth.login.config={}\n\
             zookeeper.sasl.serverconfig=Zab\nzookeeper.superUser=bob\n\
             authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider\n",
            dir.path().display(),
            jaas.display()
        );
        std::fs::write(&cfg_path, &text).unwrap();
        let c = Config::load(&cfg_path).unwrap();
        assert!(c.unsupported.is_empty(), "{:?}", c.unsupported);
        assert_eq!(
            c.sasl.server.users.get("bob").map(String::as_str),
            Some("pw")
        );
        assert_eq!(c.sasl.server.super_users, ["bob"]);
        assert!(c.sasl.provider);
        assert!(c.sasl.for_clients);
        // ZooKeeper starts without client SASL when the file lacks the
        // section (`configureSaslLogin` returns), and refuses a file it
        // cannot read.
        std::fs::write(
            &cfg_path,
            text.replace("serverconfig=Zab", "serverconfig=Other"),
        )
        .unwrap();
        let c = Config::load(&cfg_path).unwrap();
        assert!(!c.sasl.for_clients && c.sasl.server.users.is_empty());
        std::fs::write(&jaas, "Zab { unclosed").unwrap();
        assert!(matches!(Config::load(&cfg_path), Err(ConfigError::Jaas(_))));
    }

    /// A `Krb5LoginModule` entry in the client section makes Kerberos the
    /// clients' mechanism, with the krb5.conf and name rules of zoo.cfg
    /// (ZooKeeper's system properties, with or without `zookeeper.`).
    #[test]
    fn kerberos_for_clients_comes_from_the_jaas_entry_and_its_keys() {
        let dir = tempfile::tempdir().unwrap();
        let jaas = dir.path().join("jaas.conf");
        std::fs::write(
            &jaas,
            "Server { com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true \
             keyTab=\"/k/zk.keytab\" principal=\"zookeeper/host@EXAMPLE.COM\"; };",
        )
        .unwrap();
        let cfg_path = dir.path().join("zoo.cfg");
        std::fs::write(
            &cfg_path,
            format!(
                "dataDir={}\nclientPort=2181\njava.security.auth.login.config={}\n\
                 java.security.krb5.conf=/k/krb5.conf\n\
                 zookeeper.kerberos.removeRealmFromPrincipal=true\n\
                 zookeeper.security.auth_to_local=RULE:[2:$1] DEFAULT\n",
                dir.path().display(),
                jaas.display()
            ),
        )
        .unwrap();
        let c = Config::load(&cfg_path).unwrap();
        assert!(c.unsupported.is_empty(), "{:?}", c.unsupported);
        assert!(c.sasl.for_clients);
        assert_eq!(
            c.sasl.kerberos(),
            Some(crate::sasl_gssapi::KerberosSettings {
                principal: "zookeeper/host@EXAMPLE.COM".into(),
                keytab: Some("/k/zk.keytab".into()),
                krb5_conf: Some("/k/krb5.conf".into()),
                names: crate::kerberos_name::NameMapping {
                    rules: crate::kerberos_name::Rules::parse("RULE:[2:$1] DEFAULT").unwrap(),
                    remove_host: false,
                    remove_realm: true,
                },
            })
        );
    }

    /// `quorum.auth.*`: ZooKeeper's three refused combinations, then the
    /// JAAS sections read at load on a distributed server: the server
    /// section's users always, the learner section's login only under
    /// learnerRequireSasl, both sections required.
    #[test]
    fn quorum_sasl_comes_from_its_keys_and_the_jaas_file() {
        for (keys, want) in [
            (
                "quorum.auth.serverRequireSasl=true\n",
                "cannot enable quorum.auth.serverRequireSasl",
            ),
            (
                "quorum.auth.learnerRequireSasl=true\n",
                "cannot enable quorum.auth.learnerRequireSasl",
            ),
            (
                "quorum.auth.enableSasl=true\nquorum.auth.serverRequireSasl=true\n",
                "learnerRequireSasl is disabled",
            ),
        ] {
            let err = Config::parse(&format!("dataDir=/d\n{keys}"), None).unwrap_err();
            assert!(err.to_string().contains(want), "{keys}: {err}");
        }

        let dir = tempfile::tempdir().unwrap();
        let jaas = dir.path().join("jaas.conf");
        std::fs::write(
            &jaas,
            "QuorumServer { org.apache.zookeeper.server.auth.DigestLoginModule required \
             user_test=\"pw\"; };\n\
             QuorumLearner { org.apache.zookeeper.server.auth.DigestLoginModule required \
             username=\"test\" password=\"pw\"; };\n\
             Anonymous { org.apache.zookeeper.server.auth.DigestLoginModule required; };\n\
             KrbServer { com.sun.security.auth.module.Krb5LoginModule required \
             useKeyTab=true keyTab=\"/k/server.keytab\" principal=\"zkquorum/h1@R\"; };\n\
             KrbLearner { com.sun.security.auth.module.Krb5LoginModule required \
             useKeyTab=true keyTab=\"/k/learner.keytab\" principal=\"zkquorum/h1@R\"; };\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("myid"), "1\n").unwrap();
        let cfg_path = dir.path().join("zoo.cfg");
        let load = |extra: &str| {
            let text = format!(
                "dataDir={}\ntickTime=2000\ninitLimit=5\nsyncLimit=2\n\
                 server.1=127.0.0.1:2888:3888\nserver.2=127.0.0.2:2888:3888\n\
                 quorum.auth.enableSasl=true\n{extra}",
                dir.path().display(),
            );
            std::fs::write(&cfg_path, text).unwrap();
            Config::load(&cfg_path)
        };
        assert!(matches!(load(""), Err(ConfigError::QuorumSaslWithoutJaas)));
        let jaas_line = format!("java.security.auth.login.config={}\n", jaas.display());
        let c = load(&format!(
            "{jaas_line}quorum.auth.learnerRequireSasl=true\nquorum.auth.serverRequireSasl=true\n"
        ))
        .unwrap();
        assert!(c.unsupported.is_empty(), "{:?}", c.unsupported);
        let q = c.quorum_sasl.as_deref().expect("quorum SASL on");
        use zab_wire::quorum_auth::{LearnerLogin, ServerLogin};
        assert!(matches!(&q.server, ServerLogin::Digest(users) if users["test"] == "pw"));
        assert!(matches!(&q.learner, Some(LearnerLogin::Digest(c)) if c.user == "test"));
        assert!(q.server_require);
        assert_eq!(
            q.hosts,
            [
                (ServerId(1), "127.0.0.1".to_owned()),
                (ServerId(2), "127.0.0.2".to_owned())
            ]
            .into()
        );
        // Sections that log in with Kerberos: GSSAPI both ways, and the
        // service principal from its key (default zkquorum/localhost).
        let kerberos = |extra: &str| {
            load(&format!(
                "{jaas_line}quorum.auth.learnerRequireSasl=true
                 quorum.auth.server.saslLoginContext=KrbServer
                 quorum.auth.learner.saslLoginContext=KrbLearner
{extra}"
            ))
            .unwrap()
            .quorum_sasl
            .expect("quorum SASL on")
        };
        let q = kerberos("");
        assert!(matches!(&q.server, ServerLogin::Kerberos(a) if a.principal() == "zkquorum/h1@R"));
        let Some(LearnerLogin::Kerberos {
            initiator,
            service_principal,
        }) = &q.learner
        else {
            panic!("{:?}", q.learner);
        };
        assert_eq!(initiator.principal(), "zkquorum/h1@R");
        assert_eq!(service_principal, "zkquorum/localhost");
        let q = kerberos(
            "quorum.auth.kerberos.servicePrincipal=zkquorum/_HOST
",
        );
        assert!(matches!(
            &q.learner,
            Some(LearnerLogin::Kerberos { service_principal, .. }) if service_principal == "zkquorum/_HOST"
        ));
        // Without learnerRequireSasl this server does not authenticate; a
        // learner section without a login is then fine, a missing one not.
        let c = load(&format!(
            "{jaas_line}quorum.auth.learner.saslLoginContext=Anonymous\n"
        ))
        .unwrap();
        let q = c.quorum_sasl.as_deref().expect("quorum SASL on");
        assert!(q.learner.is_none() && !q.server_require);
        for missing in [
            "quorum.auth.learner.saslLoginContext=Nowhere\n",
            "quorum.auth.server.saslLoginContext=Nowhere\n",
            "quorum.auth.learnerRequireSasl=true\nquorum.auth.learner.saslLoginContext=Anonymous\n",
        ] {
            assert!(
                matches!(
                    load(&format!("{jaas_line}{missing}")),
                    Err(ConfigError::Jaas(_))
                ),
                "{missing}"
            );
        }
        // A standalone server has no quorum links to secure.
        let text = format!(
            "dataDir={}\nclientPort=2181\nquorum.auth.enableSasl=true\n",
            dir.path().display()
        );
        std::fs::write(&cfg_path, text).unwrap();
        assert!(Config::load(&cfg_path).unwrap().quorum_sasl.is_none());
    }

    /// `AuthenticationHelper`'s settings: the enforced schemes, which must
    /// be named and have providers; `sessionRequireClientSASLAuth` means
    /// sasl. Several super users as `superUser.*`.
    #[test]
    fn enforced_auth_needs_schemes_with_providers() {
        let c = parse("dataDir=/d\nenforce.auth.enabled=true\nenforce.auth.schemes=digest, ip\n");
        assert_eq!(
            c.sasl.enforce_auth,
            Some(vec!["digest".to_owned(), "ip".to_owned()])
        );
        assert_eq!(
            parse("dataDir=/d\nenforce.auth.schemes=digest\n")
                .sasl
                .enforce_auth,
            None
        );
        for (text, why) in [
            ("enforce.auth.enabled=true\n", "no schemes"),
            (
                "enforce.auth.enabled=true\nenforce.auth.schemes=sasl\n",
                "no sasl provider",
            ),
            ("sessionRequireClientSASLAuth=true\n", "no sasl provider"),
            (
                "enforce.auth.enabled=true\nenforce.auth.schemes=kerberos\n",
                "unknown",
            ),
        ] {
            assert!(
                Config::parse(&format!("dataDir=/d\n{text}"), None).is_err(),
                "{why}"
            );
        }
        let c = parse(
            "dataDir=/d\nsessionRequireClientSASLAuth=true\n\
             authProvider.sasl=org.apache.zookeeper.server.auth.SASLAuthenticationProvider\n\
             zookeeper.superUser.1=alice\nsuperUser.2=bob\n",
        );
        assert_eq!(c.sasl.enforce_auth, Some(vec!["sasl".to_owned()]));
        assert_eq!(c.sasl.server.super_users, ["alice", "bob"]);
        assert!(c.unsupported.is_empty(), "{:?}", c.unsupported);
    }

    /// `clientPortAddress` (and the other address keys) may be a host name,
    /// resolved as `InetAddress.getByName` resolves it: the machine's own
    /// name is in every Debian's /etc/hosts.
    #[test]
    fn address_keys_take_host_names() {
        use std::net::ToSocketAddrs as _;
        let host = crate::four_letter::Environment::from_process().host_name;
        let expected = (host.as_str(), 0)
            .to_socket_addrs()
            .expect("the machine's own name resolves")
            .map(|a| a.ip())
            .find(IpAddr::is_ipv4);
        let c = parse(&format!(
            "dataDir=/d\nclientPort=2181\nclientPortAddress={host}\n"
        ));
        assert_eq!(c.client_port_address, expected, "{host}");
        assert!(c.client_port_address.is_some());
    }

    /// A zoo.cfg that is not UTF-8 reads as ISO-8859-1, as Java reads it.
    #[test]
    fn a_latin_1_zoo_cfg_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("zoo.cfg");
        std::fs::write(
            &path,
            b"# r\xe9pertoire des donn\xe9es\ntickTime=2000\ndataDir=/tmp/x\nclientPort=2181\n",
        )
        .unwrap();
        let c = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.tick_time_ms, 2000);
    }

    #[test]
    fn bad_values_name_key_and_value() {
        for (line, key, value) in [
            ("tickTime=abc", "tickTime", "abc"),
            ("clientPort=70000", "clientPort", "70000"),
            (
                "clientPortAddress=not-an-ip.invalid",
                "clientPortAddress",
                "not-an-ip.invalid",
            ),
            ("standaloneEnabled=yes", "standaloneEnabled", "yes"),
            ("maxClientCnxns=many", "maxClientCnxns", "many"),
            ("electionAlg=1", "electionAlg", "1"),
            ("peerType=voter", "peerType", "voter"),
            ("zookeeper.snapCount=lots", "zookeeper.snapCount", "lots"),
            ("initLimit=-1", "initLimit", "-1"),
        ] {
            let err = parse_err(&format!("dataDir=/d\nclientPort=1\n{line}\n"), None);
            match &err {
                ConfigError::InvalidValue {
                    key: k, value: v, ..
                } => {
                    assert_eq!((k.as_str(), v.as_str()), (key, value), "{line}");
                }
                other => panic!("{line}: unexpected {other:?}"),
            }
            let msg = err.to_string();
            assert!(msg.contains(key) && msg.contains(value), "{msg}");
        }
    }

    #[test]
    fn validation_errors() {
        use ConfigError as E;
        let check = |text: &str, myid: Option<&str>, ok: fn(&ConfigError) -> bool| {
            let e = parse_err(text, myid);
            assert!(ok(&e), "{text:?}: got {e:?}");
        };
        check("tickTime=2000", None, |e| matches!(e, E::MissingDataDir));
        check("dataDir=/d\ntickTime=0", None, |e| {
            matches!(e, E::TickTimeZero)
        });
        check(
            "dataDir=/d\nminSessionTimeout=5000\nmaxSessionTimeout=4000",
            None,
            |e| {
                matches!(
                    e,
                    E::SessionTimeoutRange {
                        min: 5000,
                        max: 4000
                    }
                )
            },
        );
        // Defaults from tickTime count too: max 20×100 = 2000 < 3000.
        check(
            "dataDir=/d\ntickTime=100\nminSessionTimeout=3000",
            None,
            |e| {
                matches!(
                    e,
                    E::SessionTimeoutRange {
                        min: 3000,
                        max: 2000
                    }
                )
            },
        );
        for cfg in [
            "dataDir=/d\nclientPortAddress=127.0.0.1",
            "dataDir=/d\nclientPort=0\nclientPortAddress=127.0.0.1",
        ] {
            check(cfg, None, |e| matches!(e, E::ClientPortAddressWithoutPort));
        }
        let no_init = QUORUM.replace("initLimit=10\n", "");
        check(&no_init, Some("1"), |e| matches!(e, E::MissingInitLimit));
        let no_sync = QUORUM.replace("syncLimit=5\n", "");
        check(&no_sync, Some("1"), |e| matches!(e, E::MissingSyncLimit));
        check(QUORUM, None, |e| matches!(e, E::MissingMyId));
        check(QUORUM, Some("4"), |e| {
            matches!(e, E::MyIdNotInServers(ServerId(4)))
        });
        check(
            "dataDir=/d\nserver.1=a:2888:2888\nserver.2=b:2888:3888",
            Some("1"),
            |e| {
                matches!(
                    e,
                    E::SamePorts {
                        id: ServerId(1),
                        port: 2888
                    }
                )
            },
        );
        check(
            "dataDir=/d\nserver.1=a:1:2\nserver.2=b:1:2:observer",
            Some("1"),
            |e| matches!(e, E::ObserversWithoutQuorum),
        );
        check("dataDir=/d\nserver.2=b:1:2:observer", None, |e| {
            matches!(e, E::ObserversWithoutParticipants)
        });
        check("dataDir=/d\nstandaloneEnabled=false", None, |e| {
            matches!(e, E::NoParticipants)
        });
        check(
            "dataDir=/d\nstandaloneEnabled=false\ninitLimit=5\nsyncLimit=2\nserver.1=a:1:2",
            None,
            |e| matches!(e, E::MissingMyId),
        );
        check(
            "dataDir=/d\nclientPort=2181",
            Some("x1"),
            |e| matches!(e, E::BadMyId(s) if s == "x1"),
        );
        check("dataDir=/d\nclientPort=2181", Some(""), |e| {
            matches!(e, E::BadMyId(_))
        });
        check(
            &format!("{QUORUM}extendedTypesEnabled=true\nserver.255=z:1:2\n"),
            Some("255"),
            |e| matches!(e, E::ServerIdTooLargeForExtendedTypes(ServerId(255))),
        );
        let mismatch = QUORUM.replace("server.1=zk1:2888:3888", "server.1=zk1:2888:3888;2999");
        check(&mismatch, Some("1"), |e| {
            matches!(
                e,
                E::ClientAddressMismatch {
                    id: ServerId(1),
                    ..
                }
            )
        });
        check("dataDir=/d\nserver.1=a:1:2\ngroup.1=1\n", None, |e| {
            matches!(e, E::Unsupported { .. })
        });
        check(
            "dataDir=/d\ndynamicConfigFile=/x/zoo.cfg.dynamic.100\n",
            None,
            |e| matches!(e, E::DynamicConfigNotLoaded),
        );
    }

    #[test]
    fn validate_on_a_hand_made_config() {
        let mut c = parse("dataDir=/d");
        assert!(c.validate().is_ok());
        c.tick_time_ms = 0;
        assert!(matches!(c.validate(), Err(ConfigError::TickTimeZero)));
    }

    #[test]
    fn quorum_with_client_ports_and_observers() {
        let text = "tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir=/d\n\
            server.1=zk1:2888:3888\n\
            server.2=zk2:2888:3888:participant;2182\n\
            server.3=10.0.0.3:2888:3888;10.0.0.3:2183\n\
            server.4=[::1]:2888:3888:observer;[::1]:2184\n\
            server.5=zk5 : 2888 : 3888 : OBSERVER\n";
        let c = Config::parse(text, Some("4\n")).unwrap_or_else(|e| panic!("{e}"));
        assert!(c.is_distributed());
        assert_eq!(c.my_id, Some(ServerId(4)));
        assert_eq!(
            c.peer_type,
            PeerType::Observer,
            "the server line's type wins"
        );
        assert_eq!(c.voters().count(), 3);
        assert_eq!(c.observers().count(), 2);
        let s1 = &c.servers[&ServerId(1)];
        assert_eq!(
            (s1.host.as_str(), s1.quorum_port, s1.election_port),
            ("zk1", 2888, 3888)
        );
        assert_eq!(s1.peer_type, PeerType::Participant);
        assert_eq!(s1.client_addr, None);
        assert_eq!(
            c.servers[&ServerId(2)].client_addr,
            Some(HostPort {
                host: "0.0.0.0".into(),
                port: 2182
            })
        );
        assert_eq!(
            c.servers[&ServerId(3)].client_addr,
            Some(HostPort {
                host: "10.0.0.3".into(),
                port: 2183
            })
        );
        let s4 = &c.servers[&ServerId(4)];
        assert_eq!(s4.host, "::1");
        assert_eq!(
            s4.client_addr,
            Some(HostPort {
                host: "::1".into(),
                port: 2184
            })
        );
        assert_eq!(c.client_listen_addr(), s4.client_addr);
        assert_eq!(c.servers[&ServerId(5)].peer_type, PeerType::Observer);
        assert_eq!(
            c.membership_text(),
            "server.1=zk1:2888:3888:participant\n\
             server.2=zk2:2888:3888:participant;0.0.0.0:2182\n\
             server.3=10.0.0.3:2888:3888:participant;10.0.0.3:2183\n\
             server.4=[::1]:2888:3888:observer;[::1]:2184\n\
             server.5=zk5:2888:3888:observer\n\
             version=0"
        );
    }

    #[test]
    fn own_server_line_gives_the_client_address() {
        let text = "tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir=/d\n\
            server.1=zk1:2888:3888;10.0.0.1:2191\nserver.2=zk2:2888:3888;2192\n\
            server.3=zk3:2888:3888;zk3.example:2193\n";
        let parse_as = |id: &str| Config::parse(text, Some(id)).unwrap_or_else(|e| panic!("{e}"));
        let c = parse_as("1");
        assert_eq!(c.client_port, Some(2191));
        assert_eq!(c.client_port_address, Some(IpAddr::from([10, 0, 0, 1])));
        let c = parse_as("2");
        assert_eq!((c.client_port, c.client_port_address), (Some(2192), None));
        let c = parse_as("3");
        assert_eq!((c.client_port, c.client_port_address), (Some(2193), None));
        assert_eq!(
            c.client_listen_addr(),
            Some(HostPort {
                host: "zk3.example".into(),
                port: 2193
            })
        );
        // The same address given twice is fine; a different one is not.
        let same = format!("{text}clientPort=2191\nclientPortAddress=10.0.0.1\n");
        assert!(Config::parse(&same, Some("1")).is_ok());
        let other = format!("{text}clientPort=2191\nclientPortAddress=10.0.0.9\n");
        assert!(matches!(
            Config::parse(&other, Some("1")),
            Err(ConfigError::ClientAddressMismatch { .. })
        ));
    }

    #[test]
    fn bad_server_lines() {
        for line in [
            "server.1=zk1:2888",
            "server.1=zk1:2888:3888:participant:extra",
            "server.1=zk1:x:3888",
            "server.1=zk1:2888:3888:leader",
            "server.x=zk1:2888:3888",
            "server.1=zk1:2888:3888;a:b:c",
            "server.1=[::1:2888:3888",
        ] {
            let e = parse_err(&format!("dataDir=/d\n{line}\n"), None);
            assert!(
                matches!(e, ConfigError::InvalidValue { .. }),
                "{line}: {e:?}"
            );
        }
        for line in ["server.1=a:1:2|b:1:2", "server.1=a:1:2;2181;2281"] {
            let e = parse_err(&format!("dataDir=/d\n{line}\n"), None);
            assert!(
                matches!(e, ConfigError::Unsupported { .. }),
                "{line}: {e:?}"
            );
        }
    }

    #[test]
    fn single_server_line_is_standalone_unless_disabled() {
        let c = parse("dataDir=/d\nclientPort=2181\nserver.1=a:1:2\n");
        assert!(!c.is_distributed());
        let c = Config::parse(
            "dataDir=/d\nclientPort=2181\nstandaloneEnabled=false\ninitLimit=5\nsyncLimit=2\nserver.1=a:1:2\n",
            Some("1"),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(c.is_distributed());
    }

    #[test]
    fn myid_parsing() {
        for (text, id) in [("1", 1), ("2\n", 2), ("3\r\n", 3), (" 42 \nignored\n", 42)] {
            let c =
                Config::parse("dataDir=/d", Some(text)).unwrap_or_else(|e| panic!("{text:?}: {e}"));
            assert_eq!(c.my_id, Some(ServerId(id)), "{text:?}");
        }
        for text in ["", "\n1", "-1", "one", "1.0"] {
            assert!(
                matches!(
                    Config::parse("dataDir=/d", Some(text)),
                    Err(ConfigError::BadMyId(_))
                ),
                "{text:?}"
            );
        }
    }

    #[test]
    fn whitelist() {
        let d = FourLetterWhitelist::default();
        assert!(d.allows("srvr"));
        assert!(!d.allows("ruok"));
        let all = FourLetterWhitelist::parse("ruok, *");
        for w in FourLetterWord::ALL {
            assert!(all.allows(w.as_str()), "{w}");
        }
        let some = FourLetterWhitelist::parse(" mntr ,");
        assert!(some.allows("mntr") && some.allows("srvr") && !some.allows("stat"));
        assert!(FourLetterWhitelist::parse("").allows("srvr"));
    }

    #[test]
    fn dynamic_config_file() {
        let main = "dataDir=/d\ninitLimit=5\nsyncLimit=2\ndynamicConfigFile=/c/zoo.cfg.dynamic.100000000\n";
        let dynamic = "server.1=a:1:2;2181\nserver.2=b:1:2;2181\nserver.3=c:1:2;2181\n";
        let c = Config::parse_with_dynamic(main, dynamic, 0x1_0000_0000, Some("2"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.servers.len(), 3);
        assert!(c.membership_text().ends_with("version=100000000"));
        assert_eq!(
            dynamic_file_version(Path::new("/c/zoo.cfg.dynamic.100000000")),
            0x1_0000_0000
        );
        // ZooKeeper's `getVersionFromFilename`: any hex after the last dot.
        assert_eq!(dynamic_file_version(Path::new("/etc/zk/ensemble.1a")), 0x1a);
        assert_eq!(
            dynamic_file_version(Path::new("/etc/zk/zoo.cfg.dynamic")),
            0
        );
        assert!(
            Config::parse_with_dynamic(main, &format!("{dynamic}version=1\n"), 1, Some("2"))
                .is_err(),
            "a version inside the dynamic file"
        );
        // A static membership carries its own version, in hex.
        let static_cfg = Config::parse(
            "dataDir=/d\ninitLimit=5\nsyncLimit=2\nversion=100000000\n\
             server.1=a:1:2\nserver.2=b:1:2\n",
            Some("1"),
        )
        .unwrap();
        assert_eq!(static_cfg.membership_version, 0x1_0000_0000);
        assert!(
            static_cfg.unsupported.is_empty(),
            "{:?}",
            static_cfg.unsupported
        );
        let static_too = format!("{main}server.1=a:1:2\n");
        assert!(matches!(
            Config::parse_with_dynamic(&static_too, dynamic, 1, Some("2")),
            Err(ConfigError::StaticMembershipWithDynamicFile { .. })
        ));
    }

    #[test]
    fn load_reads_myid_from_data_dir() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(data.join("myid"), "2\n").unwrap_or_else(|e| panic!("{e}"));
        let cfg_path = dir.path().join("zoo.cfg");
        let text = QUORUM.replace("dataDir=/d", &format!("dataDir={}", data.display()));
        std::fs::write(&cfg_path, text).unwrap_or_else(|e| panic!("{e}"));
        let c = Config::load(&cfg_path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.my_id, Some(ServerId(2)));
        assert!(c.is_distributed());
        std::fs::remove_file(data.join("myid")).unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            Config::load(&cfg_path),
            Err(ConfigError::MissingMyId)
        ));
        assert!(matches!(
            Config::load(&dir.path().join("missing.cfg")),
            Err(ConfigError::Read { .. })
        ));
    }
}
