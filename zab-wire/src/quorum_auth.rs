//! SASL between servers: ZooKeeper's `quorum.auth.*` (its `QuorumAuth`,
//! `SaslQuorumAuthLearner`, `SaslQuorumAuthServer` and
//! `SaslQuorumServerCallbackHandler`), as plain steps over
//! [`proto::QuorumAuth`] messages, with DIGEST-MD5 ([`crate::digest_md5`])
//! or Kerberos (GSSAPI). This crate links no Kerberos library: a server
//! that has one supplies the GSSAPI halves through [`KerberosInitiator`]
//! and [`KerberosAcceptor`].
//!
//! The server that opens a link (a learner to its leader or to a follower
//! hosting observers; the dialling side of an election link) is the SASL
//! client; the server that accepts it is the SASL server. The transports
//! (zab-election's and zab-server's) carry the steps before a link's first
//! protocol message: the opener names its mechanism in the [`HEADER`]
//! request header, since zab's links are tonic streams and ZooKeeper's
//! trick of peeking at the next 8 bytes for a magic number has no
//! equivalent there. Nothing else crosses a link until the exchange is over.
//!
//! ZooKeeper's rules, kept:
//! * `quorum.auth.learnerRequireSasl`: only then does an opener
//!   authenticate, and a failed exchange fails the link
//!   (`SaslQuorumAuthLearner.authenticate` skips everything without it);
//! * `quorum.auth.serverRequireSasl`: an opener that does not authenticate
//!   or fails is refused; without it, both are let through (a rolling
//!   upgrade to SASL);
//! * a listener whose SASL is off cannot answer an opener that
//!   authenticates (ZooKeeper's `NullQuorumAuthServer` reads the auth packet
//!   as a protocol message and the link breaks): here it refuses it with a
//!   reason;
//! * each side's mechanism follows its own JAAS section (a
//!   `Krb5LoginModule` login means GSSAPI), so an opener and a listener
//!   that differ fail the exchange, as ZooKeeper's do;
//! * the authorization id, if the opener sends one, must be the id it
//!   authenticated as, and a principal of the form `service/host@REALM`
//!   must name the host of one of the ensemble's server lines
//!   (`SaslQuorumServerCallbackHandler.handleAuthorizeCallback`, its
//!   `authzHosts`);
//! * a Kerberos opener asks for `quorum.auth.kerberos.servicePrincipal`
//!   with `_HOST` replaced by the host of the server it opens the link to
//!   (`SecurityUtils.getServerPrincipal`, [`service_principal`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use bytes::Bytes;
use prost::Message as _;

use crate::digest_md5::{self, ClientExchange, ServerExchange};
use crate::proto::{self, PacketType, QuorumPacket};
use crate::types::ServerId;

/// The request header in which a link's opener says it will authenticate,
/// naming its mechanism ([`DIGEST_MD5`] or [`GSSAPI`]).
pub const HEADER: &str = "zab-quorum-auth";

/// The mechanism of logins with a user name and password.
pub const DIGEST_MD5: &str = "DIGEST-MD5";

/// The mechanism of Kerberos logins.
pub const GSSAPI: &str = "GSSAPI";

/// `quorum.auth.kerberos.servicePrincipal`'s default
/// (`QuorumAuth.QUORUM_KERBEROS_SERVICE_PRINCIPAL_DEFAULT_VALUE`).
pub const DEFAULT_SERVICE_PRINCIPAL: &str = "zkquorum/localhost";

/// A user and password: the `QuorumLearner` JAAS section's `username` and
/// `password`.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// The opening side of a mechanism (a `SaslClient`).
pub trait ClientMechanism: Send {
    /// The first token (`hasInitialResponse`); DIGEST-MD5's is empty.
    fn initial(&mut self) -> Result<Vec<u8>, String>;
    /// Evaluates the listener's challenge: the response to send, or `None`
    /// when there is nothing to send.
    fn step(&mut self, challenge: &[u8]) -> Result<Option<Vec<u8>>, String>;
    /// Whether this side has finished (`isComplete`).
    fn is_complete(&self) -> bool;
}

/// The listening side of a mechanism (a `SaslServer`).
pub trait ServerMechanism: Send {
    /// Evaluates the opener's response (`evaluateResponse`).
    fn step(&mut self, response: &[u8]) -> Result<ServerStep, String>;
}

/// What a listening mechanism's step gives.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ServerStep {
    /// The challenge to send (empty for none).
    pub token: Vec<u8>,
    /// Set once the opener has proved who it is.
    pub authenticated: Option<Authenticated>,
}

/// Who an opener proved to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    /// The authentication id: a DIGEST-MD5 user, or a Kerberos principal.
    pub id: String,
    /// The authorization id the opener asked for, if any.
    pub authzid: Option<String>,
}

/// Kerberos's opening side, from a library that speaks GSS-API: a
/// login (principal and keytab) that opens exchanges.
pub trait KerberosInitiator: Send + Sync + std::fmt::Debug {
    /// The principal this server logs in as (`principal` of the
    /// `QuorumLearner` section's `Krb5LoginModule` entry).
    fn principal(&self) -> &str;
    /// An exchange that authenticates to `service` (a whole principal,
    /// `service/host@REALM`).
    fn initiate(&self, service: &str) -> Result<Box<dyn ClientMechanism>, String>;
}

/// Kerberos's listening side: the `QuorumServer` section's login.
pub trait KerberosAcceptor: Send + Sync + std::fmt::Debug {
    /// The principal whose key accepts.
    fn principal(&self) -> &str;
    /// A fresh exchange for one link.
    fn accept(&self) -> Result<Box<dyn ServerMechanism>, String>;
}

/// How this server authenticates the links it opens: the `QuorumLearner`
/// JAAS section.
#[derive(Clone, Debug)]
pub enum LearnerLogin {
    Digest(Credentials),
    Kerberos {
        initiator: Arc<dyn KerberosInitiator>,
        /// `quorum.auth.kerberos.servicePrincipal`, `_HOST` and all.
        service_principal: String,
    },
}

impl LearnerLogin {
    /// The mechanism's name, for [`HEADER`].
    pub fn mechanism(&self) -> &'static str {
        match self {
            LearnerLogin::Digest(_) => DIGEST_MD5,
            LearnerLogin::Kerberos { .. } => GSSAPI,
        }
    }
}

impl PartialEq for LearnerLogin {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (LearnerLogin::Digest(a), LearnerLogin::Digest(b)) => a == b,
            (
                LearnerLogin::Kerberos {
                    initiator: a,
                    service_principal: sa,
                },
                LearnerLogin::Kerberos {
                    initiator: b,
                    service_principal: sb,
                },
            ) => a.principal() == b.principal() && sa == sb,
            _ => false,
        }
    }
}

impl Eq for LearnerLogin {}

/// Who may open links to this server: the `QuorumServer` JAAS section.
#[derive(Clone)]
pub enum ServerLogin {
    /// `user_<name>="<password>"` entries.
    Digest(HashMap<String, String>),
    Kerberos(Arc<dyn KerberosAcceptor>),
}

impl ServerLogin {
    /// The mechanism's name, as openers put it in [`HEADER`].
    pub fn mechanism(&self) -> &'static str {
        match self {
            ServerLogin::Digest(_) => DIGEST_MD5,
            ServerLogin::Kerberos(_) => GSSAPI,
        }
    }
}

impl std::fmt::Debug for ServerLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServerLogin::Digest(users) => f
                .debug_tuple("Digest")
                .field(&users.keys().collect::<Vec<_>>())
                .finish(),
            ServerLogin::Kerberos(a) => f.debug_tuple("Kerberos").field(&a.principal()).finish(),
        }
    }
}

impl PartialEq for ServerLogin {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (ServerLogin::Digest(a), ServerLogin::Digest(b)) => a == b,
            (ServerLogin::Kerberos(a), ServerLogin::Kerberos(b)) => a.principal() == b.principal(),
            _ => false,
        }
    }
}

impl Eq for ServerLogin {}

/// One server's quorum SASL, when `quorum.auth.enableSasl=true`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuorumSasl {
    /// Set under `quorum.auth.learnerRequireSasl=true`: the links this
    /// server opens authenticate so, and fail if the other server does not
    /// accept it.
    pub learner: Option<LearnerLogin>,
    /// Who may authenticate to this server.
    pub server: ServerLogin,
    /// `quorum.auth.serverRequireSasl`: refuse a link whose opener does not
    /// authenticate, or fails to.
    pub server_require: bool,
    /// The host of every server line (observers' too): where a Kerberos
    /// opener finds `_HOST`, and ZooKeeper's `authzHosts`.
    pub hosts: BTreeMap<ServerId, String>,
}

impl QuorumSasl {
    /// DIGEST-MD5 both ways: `learner` to open links with (`None`: this
    /// server's links do not authenticate), `users` to admit.
    pub fn digest(
        learner: Option<Credentials>,
        users: HashMap<String, String>,
        server_require: bool,
    ) -> QuorumSasl {
        QuorumSasl {
            learner: learner.map(LearnerLogin::Digest),
            server: ServerLogin::Digest(users),
            server_require,
            hosts: BTreeMap::new(),
        }
    }

    /// The mechanism this server names when it opens a link, if it
    /// authenticates its links.
    pub fn opener_mechanism(&self) -> Option<&'static str> {
        self.learner.as_ref().map(LearnerLogin::mechanism)
    }

    /// ZooKeeper's authorization of an authenticated opener
    /// (`SaslQuorumServerCallbackHandler.handleAuthorizeCallback`): the
    /// authorization id, if given, is the authentication id, and an id of
    /// three parts (`service/host@REALM`) names an ensemble's host.
    fn authorize(&self, who: &Authenticated) -> Result<(), String> {
        if let Some(z) = who.authzid.as_deref().filter(|z| *z != who.id) {
            return Err(format!("{:?} asked to act as {z:?}", who.id));
        }
        let parts = java_split(&who.id, &['/', '@']);
        if parts.len() == 3 && !self.hosts.values().any(|h| h == parts[1]) {
            return Err(format!(
                "{:?}: host {:?} is not a server of the ensemble, so it is not authorized to connect",
                who.id, parts[1]
            ));
        }
        Ok(())
    }
}

/// Java's `String.split` on single characters: trailing empty parts go.
fn java_split<'a>(s: &'a str, on: &[char]) -> Vec<&'a str> {
    let mut parts: Vec<&str> = s.split(on).collect();
    while parts.len() > 1 && parts.last() == Some(&"") {
        parts.pop();
    }
    parts
}

/// The principal a Kerberos opener authenticates to, for a link to `host`:
/// `configured` (`quorum.auth.kerberos.servicePrincipal`) with `_HOST`
/// replaced by the host in lower case, only when it is exactly
/// `<service>/_HOST` (ZooKeeper's `SecurityUtils.getServerPrincipal`: so
/// `zkquorum/_HOST@REALM` is left as it is), then with `@<realm>` added if
/// it names no realm (`SecurityUtils.createSaslClient` takes the opener's
/// own realm).
pub fn service_principal(configured: &str, host: &str, realm: Option<&str>) -> String {
    let parts = java_split(configured, &['/']);
    let mut principal = if parts.len() == 2 && parts[1] == "_HOST" {
        format!("{}/{}", parts[0], host.to_lowercase())
    } else {
        configured.to_owned()
    };
    if let Some(realm) = realm.filter(|_| !principal.contains('@')) {
        principal = format!("{principal}@{realm}");
    }
    principal
}

/// `QuorumAuth.Status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    InProgress = 0,
    Success = 1,
    Error = -1,
}

impl Status {
    fn of(value: i32) -> Option<Status> {
        match value {
            0 => Some(Status::InProgress),
            1 => Some(Status::Success),
            -1 => Some(Status::Error),
            _ => None,
        }
    }
}

fn message(status: Status, token: Vec<u8>) -> proto::QuorumAuth {
    proto::QuorumAuth {
        status: status as i32,
        token: token.into(),
    }
}

/// What a listening server does with a link just opened.
#[derive(Debug)]
pub enum Admission {
    /// Go on with the link's protocol at once.
    Open,
    /// Close the link: why, for the log and the opener.
    Refuse(String),
    /// Run the exchange first.
    Authenticate(ServerHandshake),
}

/// Decides how a link opens on a server with `sasl` (`None`: SASL off),
/// given the mechanism its opener named (`None`: it will not
/// authenticate).
pub fn admit(sasl: Option<&Arc<QuorumSasl>>, opener: Option<&str>) -> Admission {
    match (sasl, opener) {
        (None, None) => Admission::Open,
        (None, Some(_)) => Admission::Refuse(
            "this server has no SASL between servers (quorum.auth.enableSasl)".into(),
        ),
        (Some(s), None) if s.server_require => Admission::Refuse(
            "the server did not authenticate, and quorum.auth.serverRequireSasl requires it".into(),
        ),
        (Some(_), None) => Admission::Open,
        (Some(s), Some(mechanism)) => Admission::Authenticate(ServerHandshake::new(s, mechanism)),
    }
}

/// The listening side's exchange.
pub struct ServerHandshake {
    sasl: Arc<QuorumSasl>,
    mechanism: Listening,
}

enum Listening {
    Digest(ServerExchange),
    Other(Box<dyn ServerMechanism>),
    /// The exchange cannot succeed (the opener uses another mechanism, or
    /// this server's own login failed): the opener's first step gets an
    /// error.
    Failing(String),
}

impl std::fmt::Debug for ServerHandshake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerHandshake")
            .field("mechanism", &self.sasl.server.mechanism())
            .finish_non_exhaustive()
    }
}

/// What the listening side does after one of the opener's messages.
#[derive(Debug, PartialEq, Eq)]
pub enum ServerOutcome {
    /// Send this and wait for the opener's next message.
    Continue(proto::QuorumAuth),
    /// The exchange is over: send `reply`, then go on with the link's
    /// protocol if `keep`, else close it. `verdict` is the authenticated
    /// id, or why the opener failed (for the log).
    Done {
        reply: proto::QuorumAuth,
        verdict: Result<String, String>,
        keep: bool,
    },
}

impl ServerHandshake {
    fn new(sasl: &Arc<QuorumSasl>, opener: &str) -> ServerHandshake {
        let ours = sasl.server.mechanism();
        let mechanism = if opener != ours {
            Listening::Failing(format!(
                "the opener uses {opener:?}; this server's {} login takes {ours}",
                "QuorumServer"
            ))
        } else {
            match &sasl.server {
                ServerLogin::Digest(_) => {
                    Listening::Digest(ServerExchange::new(digest_md5::QUORUM, digest_md5::nonce()))
                }
                ServerLogin::Kerberos(acceptor) => match acceptor.accept() {
                    Ok(m) => Listening::Other(m),
                    Err(e) => Listening::Failing(format!("this server's Kerberos login: {e}")),
                },
            }
        };
        ServerHandshake {
            sasl: sasl.clone(),
            mechanism,
        }
    }

    /// One message from the opener (`SaslQuorumAuthServer.authenticate`'s
    /// loop: the opener's status is not read, only its token).
    pub fn on_message(&mut self, msg: &proto::QuorumAuth) -> ServerOutcome {
        let step = match &mut self.mechanism {
            Listening::Digest(exchange) => {
                let ServerLogin::Digest(users) = &self.sasl.server else {
                    unreachable!("a DIGEST-MD5 exchange runs on a DIGEST-MD5 login")
                };
                exchange.step(&msg.token, users).map(|s| ServerStep {
                    token: s.token,
                    authenticated: s.authenticated.map(|id| Authenticated {
                        id,
                        authzid: s.authzid,
                    }),
                })
            }
            Listening::Other(m) => m.step(&msg.token),
            Listening::Failing(why) => Err(why.clone()),
        };
        let verdict = match step {
            Ok(ServerStep {
                token,
                authenticated: None,
            }) => return ServerOutcome::Continue(message(Status::InProgress, token)),
            Ok(ServerStep {
                token,
                authenticated: Some(who),
            }) => match self.sasl.authorize(&who) {
                Ok(()) => {
                    return ServerOutcome::Done {
                        reply: message(Status::Success, token),
                        verdict: Ok(who.id),
                        keep: true,
                    }
                }
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        self.mechanism = Listening::Failing("the exchange already failed".into());
        ServerOutcome::Done {
            reply: message(Status::Error, Vec::new()),
            verdict,
            keep: !self.sasl.server_require,
        }
    }
}

/// The opening side's exchange (`SaslQuorumAuthLearner.authenticate`).
pub struct LearnerHandshake {
    mechanism: Box<dyn ClientMechanism>,
}

impl std::fmt::Debug for LearnerHandshake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LearnerHandshake")
            .field("complete", &self.mechanism.is_complete())
            .finish()
    }
}

/// What the opening side does after one of the listener's messages.
#[derive(Debug, PartialEq, Eq)]
pub enum LearnerOutcome {
    /// Send this and wait for the listener's next message.
    Send(proto::QuorumAuth),
    /// Both sides proved who they are: the link may go on.
    Authenticated,
    /// Close the link: why.
    Failed(String),
}

/// DIGEST-MD5's opening side.
struct DigestClient(ClientExchange);

impl ClientMechanism for DigestClient {
    fn initial(&mut self) -> Result<Vec<u8>, String> {
        // DIGEST-MD5 has no initial response.
        Ok(Vec::new())
    }

    fn step(&mut self, challenge: &[u8]) -> Result<Option<Vec<u8>>, String> {
        self.0.step(challenge)
    }

    fn is_complete(&self) -> bool {
        self.0.is_complete()
    }
}

impl LearnerHandshake {
    /// The exchange `sasl`'s learner login opens on a link to server
    /// `peer`, and its first message. `Err` if this server does not
    /// authenticate its links, or its login cannot start one.
    pub fn start(
        sasl: &QuorumSasl,
        peer: ServerId,
    ) -> Result<(LearnerHandshake, proto::QuorumAuth), String> {
        let mut mechanism: Box<dyn ClientMechanism> = match &sasl.learner {
            None => return Err("this server does not authenticate its links".into()),
            Some(LearnerLogin::Digest(c)) => Box::new(DigestClient(ClientExchange::new(
                digest_md5::QUORUM,
                &c.user,
                &c.password,
                digest_md5::nonce(),
            ))),
            Some(LearnerLogin::Kerberos {
                initiator,
                service_principal: configured,
            }) => {
                let host = sasl
                    .hosts
                    .get(&peer)
                    .ok_or_else(|| format!("{peer} has no server line"))?;
                let realm = initiator.principal().split_once('@').map(|(_, r)| r);
                initiator.initiate(&service_principal(configured, host, realm))?
            }
        };
        let first = mechanism.initial()?;
        Ok((
            LearnerHandshake { mechanism },
            message(Status::InProgress, first),
        ))
    }

    /// One message from the listener.
    pub fn on_message(&mut self, msg: &proto::QuorumAuth) -> LearnerOutcome {
        let complete = self.mechanism.is_complete();
        match Status::of(msg.status) {
            // ZooKeeper's `checkAuthStatus`: complete without SUCCESS from
            // the server is a failure.
            Some(Status::InProgress) if complete => {
                LearnerOutcome::Failed("the server never said SUCCESS".into())
            }
            Some(Status::InProgress) => match self.mechanism.step(&msg.token) {
                Ok(Some(response)) => LearnerOutcome::Send(message(Status::InProgress, response)),
                Ok(None) => LearnerOutcome::Failed("the server never said SUCCESS".into()),
                Err(e) => LearnerOutcome::Failed(e),
            },
            // The learner's loop ends once its side is complete; SUCCESS is
            // then only checked.
            Some(Status::Success) if complete => LearnerOutcome::Authenticated,
            Some(Status::Success) => match self.mechanism.step(&msg.token) {
                Ok(None) if self.mechanism.is_complete() => LearnerOutcome::Authenticated,
                Ok(_) => LearnerOutcome::Failed(
                    "protocol error: SUCCESS before the exchange was complete".into(),
                ),
                Err(e) => LearnerOutcome::Failed(e),
            },
            Some(Status::Error) => {
                LearnerOutcome::Failed("the server refused the credentials".into())
            }
            None => LearnerOutcome::Failed(format!("unknown status {}", msg.status)),
        }
    }
}

/// A step as a leader ⇄ learner link's packet.
pub fn to_packet(msg: &proto::QuorumAuth) -> QuorumPacket {
    QuorumPacket {
        r#type: PacketType::QuorumAuth as i32,
        data: Bytes::from(msg.encode_to_vec()),
        ..Default::default()
    }
}

/// The step a leader ⇄ learner link's packet carries; an error for any
/// other packet or an undecodable one.
pub fn from_packet(packet: &QuorumPacket) -> Result<proto::QuorumAuth, String> {
    if packet.r#type != PacketType::QuorumAuth as i32 {
        return Err(format!(
            "expected a SASL step, got packet type {}",
            packet.r#type
        ));
    }
    proto::QuorumAuth::decode(packet.data.clone()).map_err(|e| format!("bad SASL step: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sasl(learner: Option<(&str, &str)>, require: bool) -> Arc<QuorumSasl> {
        Arc::new(QuorumSasl::digest(
            learner.map(|(user, password)| creds(user, password)),
            [("test".to_owned(), "test".to_owned())].into(),
            require,
        ))
    }

    fn opener(creds: &Credentials) -> (LearnerHandshake, proto::QuorumAuth) {
        let login = QuorumSasl::digest(Some(creds.clone()), HashMap::new(), false);
        LearnerHandshake::start(&login, ServerId(1)).expect("a DIGEST-MD5 login opens")
    }

    /// Runs an opener with `creds` against a listener with `server`, the
    /// messages passing through their encodings: the opener's outcome and
    /// the listener's last.
    fn exchange(creds: &Credentials, server: &Arc<QuorumSasl>) -> (LearnerOutcome, ServerOutcome) {
        let (mut opener, msg) = opener(creds);
        run(&mut opener, msg, server, DIGEST_MD5)
    }

    fn run(
        opener: &mut LearnerHandshake,
        mut msg: proto::QuorumAuth,
        server: &Arc<QuorumSasl>,
        mechanism: &str,
    ) -> (LearnerOutcome, ServerOutcome) {
        let Admission::Authenticate(mut listener) = admit(Some(server), Some(mechanism)) else {
            panic!("the listener authenticates an opener that asks to");
        };
        for _ in 0..4 {
            let out = listener.on_message(&from_packet(&to_packet(&msg)).unwrap());
            let reply = match &out {
                ServerOutcome::Continue(m) | ServerOutcome::Done { reply: m, .. } => m.clone(),
            };
            match opener.on_message(&reply) {
                LearnerOutcome::Send(next) => {
                    assert!(matches!(out, ServerOutcome::Continue(_)));
                    msg = next;
                }
                done => return (done, out),
            }
        }
        panic!("the exchange did not end");
    }

    fn creds(user: &str, password: &str) -> Credentials {
        Credentials {
            user: user.into(),
            password: password.into(),
        }
    }

    #[test]
    fn the_right_password_authenticates_both_sides() {
        let (learner, server) = exchange(&creds("test", "test"), &sasl(None, true));
        assert_eq!(learner, LearnerOutcome::Authenticated);
        let ServerOutcome::Done {
            verdict,
            keep,
            reply,
        } = server
        else {
            panic!("{server:?}");
        };
        assert_eq!(verdict.as_deref(), Ok("test"));
        assert!(keep);
        assert_eq!(reply.status, Status::Success as i32);
    }

    /// A wrong password fails on both sides; the listener keeps the link
    /// only when it does not require SASL (ZooKeeper lets such a learner
    /// through, and the learner itself then gives up).
    #[test]
    fn a_wrong_password_fails_and_only_a_lenient_listener_keeps_the_link() {
        for require in [true, false] {
            let (learner, server) = exchange(&creds("test", "guess"), &sasl(None, require));
            assert!(matches!(learner, LearnerOutcome::Failed(_)), "{learner:?}");
            let ServerOutcome::Done {
                verdict,
                keep,
                reply,
            } = server
            else {
                panic!("{server:?}");
            };
            assert!(verdict.unwrap_err().contains("wrong password"));
            assert_eq!(keep, !require);
            assert_eq!(reply.status, Status::Error as i32);
        }
        let (learner, _) = exchange(&creds("nobody", "test"), &sasl(None, true));
        assert!(matches!(learner, LearnerOutcome::Failed(_)));
    }

    #[test]
    fn admission_follows_zookeepers_rules() {
        let digest = Some(DIGEST_MD5);
        assert!(matches!(admit(None, None), Admission::Open));
        assert!(matches!(admit(None, digest), Admission::Refuse(_)));
        assert!(matches!(
            admit(Some(&sasl(None, false)), None),
            Admission::Open
        ));
        assert!(matches!(
            admit(Some(&sasl(None, true)), None),
            Admission::Refuse(_)
        ));
        assert!(matches!(
            admit(Some(&sasl(None, false)), digest),
            Admission::Authenticate(_)
        ));
    }

    /// A listener that answers SUCCESS without proving the password, or
    /// with an unknown status, fails the opener.
    #[test]
    fn an_impostor_listener_fails_the_opener() {
        let (mut opener, _) = opener(&creds("test", "test"));
        let early = opener.on_message(&message(Status::Success, Vec::new()));
        assert!(matches!(early, LearnerOutcome::Failed(_)), "{early:?}");

        let (mut opener, _) = self::opener(&creds("test", "test"));
        let mut fake = ServerExchange::new(digest_md5::QUORUM, "n".into());
        let challenge = fake.step(b"", &HashMap::new()).unwrap().token;
        assert!(matches!(
            opener.on_message(&message(Status::InProgress, challenge)),
            LearnerOutcome::Send(_)
        ));
        let forged = opener.on_message(&message(
            Status::Success,
            b"rspauth=0123456789abcdef0123456789abcdef".to_vec(),
        ));
        assert!(matches!(forged, LearnerOutcome::Failed(_)), "{forged:?}");

        let (mut opener, _) = self::opener(&creds("test", "test"));
        let odd = opener.on_message(&proto::QuorumAuth {
            status: 7,
            token: Bytes::new(),
        });
        assert!(matches!(odd, LearnerOutcome::Failed(_)));
    }

    #[test]
    fn other_packets_are_not_steps() {
        let ping = QuorumPacket {
            r#type: PacketType::Ping as i32,
            ..Default::default()
        };
        assert!(from_packet(&ping).is_err());
        let garbage = QuorumPacket {
            r#type: PacketType::QuorumAuth as i32,
            data: Bytes::from_static(&[0xff, 0xff, 0xff]),
            ..Default::default()
        };
        assert!(from_packet(&garbage).is_err());
    }

    /// `SecurityUtils.getServerPrincipal` with the realm
    /// `createSaslClient` adds.
    #[test]
    fn the_service_principal_follows_zookeeper() {
        let p = |configured, realm| service_principal(configured, "Node1.Example", realm);
        assert_eq!(p("zkquorum/_HOST", Some("R")), "zkquorum/node1.example@R");
        assert_eq!(p("zkquorum/_HOST", None), "zkquorum/node1.example");
        // Only exactly `<service>/_HOST` is a pattern.
        assert_eq!(p("zkquorum/_HOST@R2", Some("R")), "zkquorum/_HOST@R2");
        assert_eq!(p("a/_HOST/b", Some("R")), "a/_HOST/b@R");
        assert_eq!(p("zkquorum/_HOST/", Some("R")), "zkquorum/node1.example@R");
        assert_eq!(
            p(DEFAULT_SERVICE_PRINCIPAL, Some("R")),
            "zkquorum/localhost@R"
        );
        assert_eq!(p("zkquorum/fixed@R2", Some("R")), "zkquorum/fixed@R2");
    }

    /// A stand-in for a GSS-API library: the opener's only token is
    /// `<id>|<authzid>` and the listener takes it at its word; the opener
    /// remembers whom it was asked to authenticate to.
    #[derive(Debug, Default)]
    struct Toy {
        id: String,
        authzid: String,
        asked: std::sync::Mutex<Vec<String>>,
    }

    struct ToyClient {
        token: Vec<u8>,
        done: bool,
    }

    impl ClientMechanism for ToyClient {
        fn initial(&mut self) -> Result<Vec<u8>, String> {
            self.done = true;
            Ok(self.token.clone())
        }
        fn step(&mut self, _: &[u8]) -> Result<Option<Vec<u8>>, String> {
            Err("nothing more to say".into())
        }
        fn is_complete(&self) -> bool {
            self.done
        }
    }

    struct ToyServer;

    impl ServerMechanism for ToyServer {
        fn step(&mut self, response: &[u8]) -> Result<ServerStep, String> {
            let text = String::from_utf8_lossy(response);
            let (id, authzid) = text.split_once('|').ok_or("not a toy token")?;
            Ok(ServerStep {
                token: Vec::new(),
                authenticated: Some(Authenticated {
                    id: id.to_owned(),
                    authzid: Some(authzid.to_owned()).filter(|z| !z.is_empty()),
                }),
            })
        }
    }

    impl KerberosInitiator for Toy {
        fn principal(&self) -> &str {
            &self.id
        }
        fn initiate(&self, service: &str) -> Result<Box<dyn ClientMechanism>, String> {
            self.asked.lock().unwrap().push(service.to_owned());
            Ok(Box::new(ToyClient {
                token: format!("{}|{}", self.id, self.authzid).into_bytes(),
                done: false,
            }))
        }
    }

    impl KerberosAcceptor for Toy {
        fn principal(&self) -> &str {
            "zkquorum/server@R"
        }
        fn accept(&self) -> Result<Box<dyn ServerMechanism>, String> {
            Ok(Box::new(ToyServer))
        }
    }

    fn kerberos(id: &str, authzid: &str, require: bool) -> (Arc<Toy>, Arc<QuorumSasl>) {
        let toy = Arc::new(Toy {
            id: id.into(),
            authzid: authzid.into(),
            ..Toy::default()
        });
        let sasl = QuorumSasl {
            learner: Some(LearnerLogin::Kerberos {
                initiator: toy.clone(),
                service_principal: "zkquorum/_HOST".into(),
            }),
            server: ServerLogin::Kerberos(toy.clone()),
            server_require: require,
            hosts: [
                (ServerId(1), "127.0.0.1".to_owned()),
                (ServerId(2), "Node2".to_owned()),
            ]
            .into(),
        };
        (toy, Arc::new(sasl))
    }

    fn kerberos_exchange(
        id: &str,
        authzid: &str,
        require: bool,
    ) -> (LearnerOutcome, ServerOutcome) {
        let (_, sasl) = kerberos(id, authzid, require);
        let (mut opener, first) = LearnerHandshake::start(&sasl, ServerId(2)).unwrap();
        run(&mut opener, first, &sasl, GSSAPI)
    }

    /// The opener asks for the service principal of the server it opens
    /// the link to, in its own realm; a server without a line is an error.
    #[test]
    fn a_kerberos_opener_names_the_peers_host() {
        let (toy, sasl) = kerberos("zkquorum/127.0.0.1@R", "", true);
        LearnerHandshake::start(&sasl, ServerId(2)).unwrap();
        LearnerHandshake::start(&sasl, ServerId(1)).unwrap();
        assert_eq!(
            *toy.asked.lock().unwrap(),
            ["zkquorum/node2@R", "zkquorum/127.0.0.1@R"]
        );
        assert!(LearnerHandshake::start(&sasl, ServerId(3)).is_err());
        assert_eq!(sasl.opener_mechanism(), Some(GSSAPI));
    }

    /// `handleAuthorizeCallback`: the authorization id must be the
    /// principal, and a principal with a host must name a server line's.
    #[test]
    fn only_principals_of_the_ensembles_hosts_are_authorized() {
        for ok in [
            "zkquorum/127.0.0.1@R",
            "zkquorum/Node2@R",
            "learner@R",
            "plain",
        ] {
            let (learner, server) = kerberos_exchange(ok, "", true);
            assert_eq!(learner, LearnerOutcome::Authenticated, "{ok}");
            assert!(
                matches!(server, ServerOutcome::Done { keep: true, verdict: Ok(ref id), .. } if id == ok)
            );
        }
        let (learner, _) = kerberos_exchange("zkquorum/127.0.0.1@R", "zkquorum/127.0.0.1@R", true);
        assert_eq!(learner, LearnerOutcome::Authenticated);
        for (id, authzid, why) in [
            ("zkquorum/127.0.0.9@R", "", "not a server of the ensemble"),
            ("zkquorum/node2@R", "", "not a server of the ensemble"),
            ("zkquorum/127.0.0.1@R", "someone@R", "asked to act as"),
        ] {
            for require in [true, false] {
                let (learner, server) = kerberos_exchange(id, authzid, require);
                assert!(
                    matches!(learner, LearnerOutcome::Failed(_)),
                    "{id}: {learner:?}"
                );
                let ServerOutcome::Done {
                    verdict,
                    keep,
                    reply,
                } = server
                else {
                    panic!("{server:?}");
                };
                assert!(verdict.unwrap_err().contains(why), "{id}");
                assert_eq!(keep, !require);
                assert_eq!(reply.status, Status::Error as i32);
            }
        }
    }

    /// An opener whose mechanism is not the listener's fails, as a
    /// DIGEST-MD5 learner fails against ZooKeeper's GSSAPI server; a
    /// lenient listener still keeps the link.
    #[test]
    fn different_mechanisms_fail_the_exchange() {
        for require in [true, false] {
            let server = sasl(None, require);
            let Admission::Authenticate(mut listener) = admit(Some(&server), Some(GSSAPI)) else {
                panic!("an opener that authenticates gets an exchange");
            };
            let out = listener.on_message(&message(Status::InProgress, b"token".to_vec()));
            let ServerOutcome::Done {
                verdict,
                keep,
                reply,
            } = out
            else {
                panic!("{out:?}");
            };
            assert!(verdict.unwrap_err().contains("GSSAPI"));
            assert_eq!(keep, !require);
            assert_eq!(reply.status, Status::Error as i32);
        }
        let (_, kerberos) = kerberos("zkquorum/127.0.0.1@R", "", true);
        let (mut digest, first) = opener(&creds("test", "test"));
        let (learner, server) = run(&mut digest, first, &kerberos, DIGEST_MD5);
        assert!(matches!(learner, LearnerOutcome::Failed(_)), "{learner:?}");
        assert!(
            matches!(server, ServerOutcome::Done { verdict: Err(ref why), .. } if why.contains("DIGEST-MD5")),
            "{server:?}"
        );
    }

    proptest::proptest! {
        /// Any message, in any order, to either side: an outcome, never a
        /// panic.
        #[test]
        fn arbitrary_messages_never_panic(
            steps in proptest::collection::vec(
                (-2i32..3, proptest::collection::vec(proptest::num::u8::ANY, 0..200)),
                0..5,
            ),
        ) {
            let Admission::Authenticate(mut listener) =
                admit(Some(&sasl(None, true)), Some(DIGEST_MD5))
            else {
                unreachable!()
            };
            let (mut opener, _) = opener(&creds("test", "test"));
            for (status, token) in steps {
                let msg = proto::QuorumAuth { status, token: token.into() };
                let _ = listener.on_message(&msg);
                let _ = opener.on_message(&msg);
            }
        }
    }
}
