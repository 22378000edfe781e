//! SASL between servers: ZooKeeper's `quorum.auth.*` (its `QuorumAuth`,
//! `SaslQuorumAuthLearner` and `SaslQuorumAuthServer`), as plain steps over
//! [`proto::QuorumAuth`] messages with DIGEST-MD5 ([`crate::digest_md5`]).
//!
//! The server that opens a link (a learner to its leader or to a follower
//! hosting observers; the dialling side of an election link) is the SASL
//! client; the server that accepts it is the SASL server. The transports
//! (zab-election's and zab-server's) carry the steps before a link's first
//! protocol message: the opener says in the [`HEADER`] request header that
//! it will authenticate, since zab's links are tonic streams and ZooKeeper's
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
//! * the authorization id, if the opener sends one, must be its user name
//!   (`SaslQuorumServerCallbackHandler`).

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use prost::Message as _;

use crate::digest_md5::{self, ClientExchange, ServerExchange};
use crate::proto::{self, PacketType, QuorumPacket};

/// The request header in which a link's opener says it will authenticate,
/// naming the mechanism ([`MECHANISM`]).
pub const HEADER: &str = "zab-quorum-auth";

/// The only mechanism: ZooKeeper's quorum SASL without Kerberos.
pub const MECHANISM: &str = "DIGEST-MD5";

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

/// One server's quorum SASL, when `quorum.auth.enableSasl=true`.
#[derive(Clone, PartialEq, Eq)]
pub struct QuorumSasl {
    /// Set under `quorum.auth.learnerRequireSasl=true`: the links this
    /// server opens authenticate as this user, and fail if the other server
    /// does not accept it.
    pub learner: Option<Credentials>,
    /// The `QuorumServer` JAAS section's `user_<name>="<password>"`: who
    /// may authenticate to this server.
    pub users: HashMap<String, String>,
    /// `quorum.auth.serverRequireSasl`: refuse a link whose opener does not
    /// authenticate, or fails to.
    pub server_require: bool,
}

impl std::fmt::Debug for QuorumSasl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuorumSasl")
            .field("learner", &self.learner)
            .field("users", &self.users.keys().collect::<Vec<_>>())
            .field("server_require", &self.server_require)
            .finish()
    }
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
/// given whether its opener said it will authenticate.
pub fn admit(sasl: Option<&Arc<QuorumSasl>>, opener_authenticates: bool) -> Admission {
    match (sasl, opener_authenticates) {
        (None, false) => Admission::Open,
        (None, true) => Admission::Refuse(
            "this server has no SASL between servers (quorum.auth.enableSasl)".into(),
        ),
        (Some(s), false) if s.server_require => Admission::Refuse(
            "the server did not authenticate, and quorum.auth.serverRequireSasl requires it".into(),
        ),
        (Some(_), false) => Admission::Open,
        (Some(s), true) => Admission::Authenticate(ServerHandshake {
            sasl: s.clone(),
            exchange: ServerExchange::new(digest_md5::QUORUM, digest_md5::nonce()),
        }),
    }
}

/// The listening side's exchange.
#[derive(Debug)]
pub struct ServerHandshake {
    sasl: Arc<QuorumSasl>,
    exchange: ServerExchange,
}

/// What the listening side does after one of the opener's messages.
#[derive(Debug, PartialEq, Eq)]
pub enum ServerOutcome {
    /// Send this and wait for the opener's next message.
    Continue(proto::QuorumAuth),
    /// The exchange is over: send `reply`, then go on with the link's
    /// protocol if `keep`, else close it. `verdict` is the authenticated
    /// user, or why the opener failed (for the log).
    Done {
        reply: proto::QuorumAuth,
        verdict: Result<String, String>,
        keep: bool,
    },
}

impl ServerHandshake {
    /// One message from the opener (`SaslQuorumAuthServer.authenticate`'s
    /// loop: the opener's status is not read, only its token).
    pub fn on_message(&mut self, msg: &proto::QuorumAuth) -> ServerOutcome {
        let verdict = match self.exchange.step(&msg.token, &self.sasl.users) {
            Ok(step) => match step.authenticated {
                None => return ServerOutcome::Continue(message(Status::InProgress, step.token)),
                Some(user) => match step.authzid {
                    Some(z) if z != user => Err(format!("{user:?} asked to act as {z:?}")),
                    _ => {
                        return ServerOutcome::Done {
                            reply: message(Status::Success, step.token),
                            verdict: Ok(user),
                            keep: true,
                        }
                    }
                },
            },
            Err(e) => Err(e),
        };
        ServerOutcome::Done {
            reply: message(Status::Error, Vec::new()),
            verdict,
            keep: !self.sasl.server_require,
        }
    }
}

/// The opening side's exchange (`SaslQuorumAuthLearner.authenticate`).
#[derive(Debug)]
pub struct LearnerHandshake {
    exchange: ClientExchange,
}

/// What the opening side does after one of the listener's messages.
#[derive(Debug, PartialEq, Eq)]
pub enum LearnerOutcome {
    /// Send this and wait for the listener's next message.
    Send(proto::QuorumAuth),
    /// Both sides proved they know the password: the link may go on.
    Authenticated,
    /// Close the link: why.
    Failed(String),
}

impl LearnerHandshake {
    /// The exchange as `credentials`, and its first message (DIGEST-MD5 has
    /// no initial response: an empty token).
    pub fn start(credentials: &Credentials) -> (LearnerHandshake, proto::QuorumAuth) {
        let exchange = ClientExchange::new(
            digest_md5::QUORUM,
            &credentials.user,
            &credentials.password,
            digest_md5::nonce(),
        );
        (
            LearnerHandshake { exchange },
            message(Status::InProgress, Vec::new()),
        )
    }

    /// One message from the listener.
    pub fn on_message(&mut self, msg: &proto::QuorumAuth) -> LearnerOutcome {
        match Status::of(msg.status) {
            Some(Status::InProgress) => match self.exchange.step(&msg.token) {
                Ok(Some(response)) => LearnerOutcome::Send(message(Status::InProgress, response)),
                // ZooKeeper's `checkAuthStatus`: complete without SUCCESS
                // from the server is a failure.
                Ok(None) => LearnerOutcome::Failed("the server never said SUCCESS".into()),
                Err(e) => LearnerOutcome::Failed(e),
            },
            Some(Status::Success) => match self.exchange.step(&msg.token) {
                Ok(None) if self.exchange.is_complete() => LearnerOutcome::Authenticated,
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
        Arc::new(QuorumSasl {
            learner: learner.map(|(user, password)| Credentials {
                user: user.into(),
                password: password.into(),
            }),
            users: [("test".to_owned(), "test".to_owned())].into(),
            server_require: require,
        })
    }

    /// Runs an opener with `creds` against a listener with `server`, the
    /// messages passing through their encodings: the opener's outcome and
    /// the listener's last.
    fn exchange(creds: &Credentials, server: &Arc<QuorumSasl>) -> (LearnerOutcome, ServerOutcome) {
        let Admission::Authenticate(mut listener) = admit(Some(server), true) else {
            panic!("the listener authenticates an opener that asks to");
        };
        let (mut opener, mut msg) = LearnerHandshake::start(creds);
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
        assert!(matches!(admit(None, false), Admission::Open));
        assert!(matches!(admit(None, true), Admission::Refuse(_)));
        assert!(matches!(
            admit(Some(&sasl(None, false)), false),
            Admission::Open
        ));
        assert!(matches!(
            admit(Some(&sasl(None, true)), false),
            Admission::Refuse(_)
        ));
        assert!(matches!(
            admit(Some(&sasl(None, false)), true),
            Admission::Authenticate(_)
        ));
    }

    /// A listener that answers SUCCESS without proving the password, or
    /// with an unknown status, fails the opener.
    #[test]
    fn an_impostor_listener_fails_the_opener() {
        let (mut opener, _) = LearnerHandshake::start(&creds("test", "test"));
        let early = opener.on_message(&message(Status::Success, Vec::new()));
        assert!(matches!(early, LearnerOutcome::Failed(_)), "{early:?}");

        let (mut opener, _) = LearnerHandshake::start(&creds("test", "test"));
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

        let (mut opener, _) = LearnerHandshake::start(&creds("test", "test"));
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
            let Admission::Authenticate(mut listener) = admit(Some(&sasl(None, true)), true) else {
                unreachable!()
            };
            let (mut opener, _) = LearnerHandshake::start(&creds("test", "test"));
            for (status, token) in steps {
                let msg = proto::QuorumAuth { status, token: token.into() };
                let _ = listener.on_message(&msg);
                let _ = opener.on_message(&msg);
            }
        }
    }
}
